//! Power spectra of overlapping Hann-windowed frames.

use realfft::{RealFftPlanner, RealToComplex};
use std::sync::Arc;

/// A reusable short-time Fourier transform: frame length `win`, zero-padded to `n_fft`, advanced
/// by `hop` samples. Frames are taken only where they fit entirely (no padding at the edges), so
/// `n_frames = 1 + (len - win) / hop` for `len >= win`, else 0.
///
/// A clone shares the FFT plan (planning is the costly part of building one) and has its own
/// buffers.
#[derive(Clone)]
pub struct Stft {
    n_fft: usize,
    win: usize,
    hop: usize,
    window: Vec<f32>,
    fft: Arc<dyn RealToComplex<f32>>,
    frame: Vec<f32>,
    spectrum: Vec<realfft::num_complex::Complex<f32>>,
    scratch: Vec<realfft::num_complex::Complex<f32>>,
}

impl Stft {
    pub fn new(n_fft: usize, win: usize, hop: usize) -> Self {
        assert!(win <= n_fft && hop > 0 && win > 0, "invalid STFT geometry");
        let fft = RealFftPlanner::<f32>::new().plan_fft_forward(n_fft);
        let window = periodic_hann(win);
        Self {
            frame: fft.make_input_vec(),
            spectrum: fft.make_output_vec(),
            scratch: fft.make_scratch_vec(),
            n_fft,
            win,
            hop,
            window,
            fft,
        }
    }

    pub fn n_bins(&self) -> usize {
        self.n_fft / 2 + 1
    }

    pub fn n_fft(&self) -> usize {
        self.n_fft
    }

    pub fn n_frames(&self, len: usize) -> usize {
        frame_count(len, self.win, self.hop)
    }

    /// Appends the power spectrum (`|X|²`, `n_bins` values per frame) of every frame of
    /// `samples` to `out`, row after row. Returns the number of frames.
    pub fn power(&mut self, samples: &[f32], out: &mut Vec<f32>) -> usize {
        let n = self.n_frames(samples.len());
        out.reserve(n * self.n_bins());
        for f in 0..n {
            let start = f * self.hop;
            for ((dst, &s), &w) in self
                .frame
                .iter_mut()
                .zip(&samples[start..start + self.win])
                .zip(&self.window)
            {
                *dst = s * w;
            }
            self.frame[self.win..].fill(0.0);
            self.fft
                .process_with_scratch(&mut self.frame, &mut self.spectrum, &mut self.scratch)
                .expect("buffers come from the plan itself");
            out.extend(self.spectrum.iter().map(|c| c.norm_sqr()));
        }
        n
    }
}

/// The periodic Hann window of every frame analysed here: overlapping frames at hop = win/2
/// sum to a constant.
pub(crate) fn periodic_hann(win: usize) -> Vec<f32> {
    (0..win)
        .map(|i| 0.5 - 0.5 * (2.0 * std::f32::consts::PI * i as f32 / win as f32).cos())
        .collect()
}

/// Frames of `win` samples every `hop` that fit entirely in `len` samples.
pub(crate) fn frame_count(len: usize, win: usize, hop: usize) -> usize {
    if len < win { 0 } else { 1 + (len - win) / hop }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tone_lands_in_its_bin() {
        let rate = 16_000.0;
        let tone: Vec<f32> = (0..4_000)
            .map(|i| (2.0 * std::f32::consts::PI * 1_000.0 * i as f32 / rate).sin())
            .collect();
        let mut stft = Stft::new(512, 320, 160);
        let mut out = Vec::new();
        let frames = stft.power(&tone, &mut out);
        assert_eq!(frames, 1 + (4_000 - 320) / 160);
        assert_eq!(out.len(), frames * 257);
        let first = &out[..257];
        let peak = (0..257)
            .max_by(|&a, &b| first[a].total_cmp(&first[b]))
            .unwrap();
        assert_eq!(peak, 32, "1 kHz in a 512-point FFT at 16 kHz is bin 32");
    }

    #[test]
    fn short_input_has_no_frames() {
        let mut stft = Stft::new(512, 320, 160);
        let mut out = Vec::new();
        assert_eq!(stft.power(&[0.0; 319], &mut out), 0);
        assert!(out.is_empty());
    }
}
