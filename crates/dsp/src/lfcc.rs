//! Linear-frequency cepstral coefficients with first and second derivatives.

use crate::filterbank::{Filterbank, Scale};
use crate::stft::Stft;

/// The feature configuration; stored beside model weights, which are only valid with it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LfccConfig {
    pub sample_rate: u32,
    pub n_fft: usize,
    /// Frame length in samples (20 ms at 16 kHz).
    pub win: usize,
    /// Frame advance in samples (10 ms at 16 kHz).
    pub hop: usize,
    pub n_filters: usize,
    /// Band the filterbank spans, in Hz.
    pub f_min: f32,
    pub f_max: f32,
    pub n_ceps: usize,
    /// Append Δ and ΔΔ (regression over ±2 frames): 3 × `n_ceps` values per frame.
    pub deltas: bool,
}

impl Default for LfccConfig {
    fn default() -> Self {
        Self {
            sample_rate: 16_000,
            n_fft: 512,
            win: 320,
            hop: 160,
            n_filters: 20,
            f_min: 0.0,
            f_max: 8_000.0,
            n_ceps: 20,
            deltas: true,
        }
    }
}

impl LfccConfig {
    pub fn dims(&self) -> usize {
        if self.deltas {
            3 * self.n_ceps
        } else {
            self.n_ceps
        }
    }
}

/// A clone shares the FFT plan and copies the filterbank: what a caller that analyses many
/// clips keeps built once.
#[derive(Clone)]
pub struct Lfcc {
    config: LfccConfig,
    stft: Stft,
    filterbank: Filterbank,
    dct: Vec<f32>,
    power: Vec<f32>,
    energies: Vec<f32>,
    ceps: Vec<f32>,
}

impl Lfcc {
    pub fn new(config: LfccConfig) -> Self {
        assert!(config.n_ceps <= config.n_filters);
        let filterbank = Filterbank::new(
            Scale::Linear,
            config.n_filters,
            config.n_fft,
            config.sample_rate,
            config.f_min,
            config.f_max.min(config.sample_rate as f32 / 2.0),
        );
        // Orthonormal DCT-II, row k = coefficient k.
        let n = config.n_filters;
        let dct = (0..config.n_ceps)
            .flat_map(|k| {
                let scale = if k == 0 {
                    (1.0 / n as f32).sqrt()
                } else {
                    (2.0 / n as f32).sqrt()
                };
                (0..n).map(move |i| {
                    scale * (std::f32::consts::PI * k as f32 * (i as f32 + 0.5) / n as f32).cos()
                })
            })
            .collect();
        Self {
            stft: Stft::new(config.n_fft, config.win, config.hop),
            energies: vec![0.0; n],
            config,
            filterbank,
            dct,
            power: Vec::new(),
            ceps: Vec::new(),
        }
    }

    pub fn config(&self) -> &LfccConfig {
        &self.config
    }

    /// Computes features for `samples`, writing `frames × dims` values row-major into `out`
    /// (cleared first). Returns the number of frames.
    pub fn compute(&mut self, samples: &[f32], out: &mut Vec<f32>) -> usize {
        out.clear();
        self.power.clear();
        let frames = self.stft.power(samples, &mut self.power);
        let (bins, nc, nf) = (
            self.stft.n_bins(),
            self.config.n_ceps,
            self.config.n_filters,
        );
        self.ceps.clear();
        self.ceps.reserve(frames * nc);
        for f in 0..frames {
            self.filterbank
                .apply(&self.power[f * bins..(f + 1) * bins], &mut self.energies);
            for e in &mut self.energies {
                *e = (*e + 1e-10).ln();
            }
            for k in 0..nc {
                let row = &self.dct[k * nf..(k + 1) * nf];
                self.ceps
                    .push(row.iter().zip(&self.energies).map(|(a, b)| a * b).sum());
            }
        }
        if !self.config.deltas {
            out.extend_from_slice(&self.ceps);
            return frames;
        }
        let dims = 3 * nc;
        out.resize(frames * dims, 0.0);
        for f in 0..frames {
            out[f * dims..f * dims + nc].copy_from_slice(&self.ceps[f * nc..(f + 1) * nc]);
        }
        delta(out, frames, dims, 0, nc);
        delta(out, frames, dims, nc, 2 * nc);
        frames
    }
}

/// Writes the ±2-frame regression slope of columns `src..src+n` into `dst..dst+n`, repeating
/// the edge frames.
fn delta(m: &mut [f32], frames: usize, dims: usize, src: usize, dst: usize) {
    let n = dst - src;
    let at = |f: isize| f.clamp(0, frames as isize - 1) as usize * dims;
    for f in 0..frames as isize {
        for c in 0..n {
            let v = (m[at(f + 1) + src + c] - m[at(f - 1) + src + c])
                + 2.0 * (m[at(f + 2) + src + c] - m[at(f - 2) + src + c]);
            m[f as usize * dims + dst + c] = v / 10.0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noise(n: usize, seed: u32) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (s >> 8) as f32 / (1u32 << 24) as f32 - 0.5
            })
            .collect()
    }

    #[test]
    fn shape_and_gain_behaviour() {
        let mut lfcc = Lfcc::new(LfccConfig::default());
        let x = noise(16_000, 7);
        let mut a = Vec::new();
        let frames = lfcc.compute(&x, &mut a);
        assert_eq!(frames, 99);
        assert_eq!(a.len(), 99 * 60);
        // A gain is a constant added to every log energy: only c0 moves, deltas stay put.
        let louder: Vec<f32> = x.iter().map(|s| s * 4.0).collect();
        let mut b = Vec::new();
        lfcc.compute(&louder, &mut b);
        for f in 0..frames {
            let row_a = &a[f * 60..(f + 1) * 60];
            let row_b = &b[f * 60..(f + 1) * 60];
            let shift = (4.0f32 * 4.0).ln() * (20f32).sqrt();
            assert!((row_b[0] - row_a[0] - shift).abs() < 1e-2);
            for c in 1..60 {
                assert!((row_a[c] - row_b[c]).abs() < 1e-2, "frame {f} coeff {c}");
            }
        }
    }

    #[test]
    fn deltas_of_a_steady_signal_are_small() {
        let mut lfcc = Lfcc::new(LfccConfig::default());
        let tone: Vec<f32> = (0..16_000).map(|i| (i as f32 * 0.3).sin() * 0.5).collect();
        let mut out = Vec::new();
        let frames = lfcc.compute(&tone, &mut out);
        let mid = frames / 2 * 60;
        assert!(out[mid + 20..mid + 60].iter().all(|d| d.abs() < 0.05));
    }
}
