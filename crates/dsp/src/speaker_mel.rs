//! The power mel spectrogram Resemblyzer's GE2E speaker encoder reads, to the arithmetic:
//! librosa's `melspectrogram` at 16 kHz with 40 Slaney bands, 400-sample (25 ms) periodic-Hann
//! frames every 160 samples (10 ms), centred (the signal zero-padded by half a frame at each
//! end, as librosa ≥ 0.10 pads), power spectra, no logarithm.

use crate::stft::Stft;

pub const RATE: u32 = 16_000;
pub const N_FFT: usize = 400;
pub const HOP: usize = 160;
pub const N_MELS: usize = 40;

pub struct SpeakerMel {
    stft: Stft,
    filters: Vec<f32>,
    padded: Vec<f32>,
    power: Vec<f32>,
}

impl Default for SpeakerMel {
    fn default() -> Self {
        Self::new()
    }
}

impl SpeakerMel {
    pub fn new() -> Self {
        Self {
            stft: Stft::new(N_FFT, N_FFT, HOP),
            filters: crate::slaney::filters(N_MELS, N_FFT, RATE),
            padded: Vec::new(),
            power: Vec::new(),
        }
    }

    /// Frames `len` samples yield: one per hop, plus one (centred framing).
    pub fn n_frames(len: usize) -> usize {
        1 + len / HOP
    }

    /// The mel power of `samples` (16 kHz), frame-major (`n_frames` rows of [`N_MELS`]), as
    /// the encoder's LSTM reads it.
    pub fn compute(&mut self, samples: &[f32]) -> Vec<f32> {
        let pad = N_FFT / 2;
        self.padded.clear();
        self.padded.resize(pad, 0.0);
        self.padded.extend_from_slice(samples);
        self.padded.resize(samples.len() + 2 * pad, 0.0);
        self.power.clear();
        let frames = self.stft.power(&self.padded, &mut self.power);
        let bins = self.stft.n_bins();
        let mut out = Vec::with_capacity(frames * N_MELS);
        for spectrum in self.power.chunks(bins).take(frames) {
            out.extend(
                self.filters
                    .chunks(bins)
                    .map(|row| row.iter().zip(spectrum).map(|(w, p)| w * p).sum::<f32>()),
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn centred_frames_and_power_scaling() {
        let samples: Vec<f32> = (0..16_000)
            .map(|i| (i as f32 * 2.0 * std::f32::consts::PI * 500.0 / 16_000.0).sin() * 0.1)
            .collect();
        let mut mel = SpeakerMel::new();
        let a = mel.compute(&samples);
        assert_eq!(a.len(), SpeakerMel::n_frames(samples.len()) * N_MELS);
        let louder: Vec<f32> = samples.iter().map(|s| s * 2.0).collect();
        let b = mel.compute(&louder);
        // Power, not log: twice the amplitude is four times the value.
        let middle = 50 * N_MELS;
        for m in 0..N_MELS {
            let (x, y) = (a[middle + m], b[middle + m]);
            assert!(
                (y - 4.0 * x).abs() <= 1e-4 * y.abs().max(1e-6),
                "band {m}: {x} {y}"
            );
        }
    }
}
