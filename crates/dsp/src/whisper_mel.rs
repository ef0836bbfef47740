//! Whisper's log-mel spectrogram: the input OpenAI's Whisper encoders were trained on, to the
//! arithmetic, so that their weights mean what they meant in training.
//!
//! 16 kHz audio, reflect-padded by half a frame at each end, 400-sample periodic-Hann frames
//! every 160 samples (the last frame dropped, as Whisper drops it), power spectra through 80
//! Slaney-style mel filters normalised to unit area, `log10` floored at 1e-10 and at 8 decades
//! below the loudest value of the input, then `(x + 4) / 4`.

use crate::stft::Stft;

pub const RATE: u32 = 16_000;
pub const N_FFT: usize = 400;
pub const HOP: usize = 160;
pub const N_MELS: usize = 80;

/// Computes Whisper log-mel frames, reusing its buffers.
pub struct WhisperMel {
    stft: Stft,
    /// `N_MELS` rows of `N_FFT / 2 + 1` weights.
    filters: Vec<f32>,
    padded: Vec<f32>,
    power: Vec<f32>,
}

impl Default for WhisperMel {
    fn default() -> Self {
        Self::new()
    }
}

impl WhisperMel {
    pub fn new() -> Self {
        let filters = crate::slaney::filters(N_MELS, N_FFT, RATE);
        Self {
            stft: Stft::new(N_FFT, N_FFT, HOP),
            filters,
            padded: Vec::new(),
            power: Vec::new(),
        }
    }

    /// Frames `samples` (16 kHz) yields: one per hop.
    pub fn n_frames(len: usize) -> usize {
        len / HOP
    }

    /// The log-mel of `samples` (16 kHz), channel-major (`N_MELS` rows of [`Self::n_frames`]
    /// values), as the encoder's first convolution reads it.
    pub fn compute(&mut self, samples: &[f32]) -> Vec<f32> {
        let pad = N_FFT / 2;
        self.padded.clear();
        self.padded.reserve(samples.len() + 2 * pad);
        // Reflection (without repeating the edge sample), as numpy's and torch's "reflect";
        // zeros where the input is too short to reflect.
        let reflect = |i: usize| samples.get(i).copied().unwrap_or(0.0);
        self.padded.extend((1..=pad).rev().map(reflect));
        self.padded.extend_from_slice(samples);
        let n = samples.len();
        self.padded
            .extend((0..pad).map(|i| n.checked_sub(2 + i).map_or(0.0, reflect)));
        self.power.clear();
        let frames = self.stft.power(&self.padded, &mut self.power);
        let frames = frames.saturating_sub(1).min(Self::n_frames(n));
        let bins = self.stft.n_bins();
        let mut out = vec![0f32; N_MELS * frames];
        for f in 0..frames {
            let spectrum = &self.power[f * bins..(f + 1) * bins];
            for (m, row) in self.filters.chunks(bins).enumerate() {
                let energy: f32 = row.iter().zip(spectrum).map(|(w, p)| w * p).sum();
                out[m * frames + f] = energy.max(1e-10).log10();
            }
        }
        let peak = out.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        for v in &mut out {
            *v = (v.max(peak - 8.0) + 4.0) / 4.0;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tone_lights_the_band_it_falls_in() {
        let samples: Vec<f32> = (0..16_000)
            .map(|i| (i as f32 * 2.0 * std::f32::consts::PI * 1_000.0 / 16_000.0).sin() * 0.5)
            .collect();
        let out = WhisperMel::new().compute(&samples);
        let frames = WhisperMel::n_frames(samples.len());
        assert_eq!(out.len(), N_MELS * frames);
        let middle = frames / 2;
        let loudest = (0..N_MELS)
            .max_by(|&a, &b| out[a * frames + middle].total_cmp(&out[b * frames + middle]))
            .unwrap();
        // 1 kHz is mel 15 of 0..~45.2 over 81 steps: the 26th filter, counting from 0.
        assert!((25..=27).contains(&loudest), "{loudest}");
    }
}
