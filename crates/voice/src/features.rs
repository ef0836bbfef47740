//! Fixed-length feature windows: LFCC (20 + Δ + ΔΔ) over 4 s of 16 kHz speech, mean-normalised
//! per window. Mean normalisation removes a constant gain (it only shifts c0) and a stationary
//! channel colouring, two things a detector must not learn.

use aqiqat_dsp::{Lfcc, LfccConfig};

pub const SAMPLE_RATE: u32 = 16_000;
/// Frames per window: 4 s at a 10 ms hop.
pub const WINDOW_FRAMES: usize = 400;
/// Samples that produce exactly [`WINDOW_FRAMES`] frames.
pub const WINDOW_SAMPLES: usize = (WINDOW_FRAMES - 1) * 160 + 320;

pub fn lfcc_config() -> LfccConfig {
    LfccConfig::default()
}

/// Computes windows of features, reusing its buffers.
pub struct WindowFeatures {
    lfcc: Lfcc,
    tiled: Vec<f32>,
}

impl Default for WindowFeatures {
    fn default() -> Self {
        Self {
            lfcc: Lfcc::new(lfcc_config()),
            tiled: Vec::new(),
        }
    }
}

impl WindowFeatures {
    pub fn dims(&self) -> usize {
        self.lfcc.config().dims()
    }

    /// Appends one window (`WINDOW_FRAMES × dims`, row-major) for `samples` to `out`. Shorter
    /// input is repeated until it fills the window, so a 1.5 s clip is judged on its own sound
    /// rather than on padding; longer input is cut at [`WINDOW_SAMPLES`].
    pub fn window(&mut self, samples: &[f32], out: &mut Vec<f32>) {
        assert!(!samples.is_empty(), "a window needs samples");
        self.tiled.clear();
        while self.tiled.len() < WINDOW_SAMPLES {
            let take = (WINDOW_SAMPLES - self.tiled.len()).min(samples.len());
            self.tiled.extend_from_slice(&samples[..take]);
        }
        let mut feats = Vec::new();
        let frames = self.lfcc.compute(&self.tiled, &mut feats);
        debug_assert_eq!(frames, WINDOW_FRAMES);
        let dims = self.dims();
        for d in 0..dims {
            let mean = (0..frames).map(|f| feats[f * dims + d]).sum::<f32>() / frames as f32;
            for f in 0..frames {
                feats[f * dims + d] -= mean;
            }
        }
        out.extend_from_slice(&feats);
    }
}

/// Start offsets (in samples) of the windows covering `len` samples with `hop` advance: the
/// last window is aligned to the end so no speech is left out.
pub fn window_starts(len: usize, hop: usize) -> Vec<usize> {
    if len <= WINDOW_SAMPLES {
        return vec![0];
    }
    let mut starts: Vec<usize> = (0..=len - WINDOW_SAMPLES).step_by(hop).collect();
    if *starts.last().expect("at least one") != len - WINDOW_SAMPLES {
        starts.push(len - WINDOW_SAMPLES);
    }
    starts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_have_fixed_shape_and_zero_mean() {
        let mut wf = WindowFeatures::default();
        let short: Vec<f32> = (0..24_000).map(|i| (i as f32 * 0.01).sin()).collect();
        let mut out = Vec::new();
        wf.window(&short, &mut out);
        assert_eq!(out.len(), WINDOW_FRAMES * 60);
        let mean_c0 = (0..WINDOW_FRAMES).map(|f| out[f * 60]).sum::<f32>() / WINDOW_FRAMES as f32;
        assert!(mean_c0.abs() < 1e-3);
    }

    #[test]
    fn starts_cover_the_end() {
        assert_eq!(window_starts(10, 16_000), vec![0]);
        let s = window_starts(WINDOW_SAMPLES + 20_000, 16_000);
        assert_eq!(s, vec![0, 16_000, 20_000]);
    }
}
