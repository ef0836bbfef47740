//! Triangular filterbanks over STFT bins, stored sparsely (first bin + weights per filter).

/// Spacing of the filter centres.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// Even spacing in Hz: keeps the high band as finely resolved as the low one, which is
    /// where vocoders leave their traces (the reason LFCC beats MFCC for spoof detection).
    Linear,
    /// Mel spacing, for perceptual features.
    Mel,
}

#[derive(Debug, Clone)]
pub struct Filterbank {
    filters: Vec<(usize, Vec<f32>)>,
}

fn hz_to_mel(hz: f32) -> f32 {
    2595.0 * (1.0 + hz / 700.0).log10()
}

fn mel_to_hz(mel: f32) -> f32 {
    700.0 * (10f32.powf(mel / 2595.0) - 1.0)
}

impl Filterbank {
    pub fn new(
        scale: Scale,
        n_filters: usize,
        n_fft: usize,
        rate: u32,
        f_min: f32,
        f_max: f32,
    ) -> Self {
        let warp = |hz: f32| match scale {
            Scale::Linear => hz,
            Scale::Mel => hz_to_mel(hz),
        };
        let unwarp = |x: f32| match scale {
            Scale::Linear => x,
            Scale::Mel => mel_to_hz(x),
        };
        let (lo, hi) = (warp(f_min), warp(f_max));
        let edges: Vec<f32> = (0..n_filters + 2)
            .map(|i| unwarp(lo + (hi - lo) * i as f32 / (n_filters + 1) as f32))
            .collect();
        let bin_hz = rate as f32 / n_fft as f32;
        let n_bins = n_fft / 2 + 1;
        let filters = edges
            .windows(3)
            .map(|e| {
                let (left, centre, right) = (e[0], e[1], e[2]);
                let first = ((left / bin_hz).floor() as usize).min(n_bins - 1);
                let last = ((right / bin_hz).ceil() as usize).min(n_bins - 1);
                let weights = (first..=last)
                    .map(|b| {
                        let f = b as f32 * bin_hz;
                        if f <= left || f >= right {
                            0.0
                        } else if f <= centre {
                            (f - left) / (centre - left)
                        } else {
                            (right - f) / (right - centre)
                        }
                    })
                    .collect();
                (first, weights)
            })
            .collect();
        Self { filters }
    }

    pub fn len(&self) -> usize {
        self.filters.len()
    }

    pub fn is_empty(&self) -> bool {
        self.filters.is_empty()
    }

    /// Writes each filter's energy for one power spectrum into `out` (length [`Self::len`]).
    pub fn apply(&self, power: &[f32], out: &mut [f32]) {
        for ((first, weights), dst) in self.filters.iter().zip(out.iter_mut()) {
            *dst = weights
                .iter()
                .zip(&power[*first..*first + weights.len()])
                .map(|(w, p)| w * p)
                .sum();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_cover_the_band_and_peak_at_their_centres() {
        let fb = Filterbank::new(Scale::Linear, 20, 512, 16_000, 0.0, 8_000.0);
        assert_eq!(fb.len(), 20);
        // A flat spectrum gives each equal-width linear filter the same energy.
        let flat = vec![1.0; 257];
        let mut e = vec![0.0; 20];
        fb.apply(&flat, &mut e);
        let (min, max) = e
            .iter()
            .fold((f32::MAX, f32::MIN), |(a, b), &x| (a.min(x), b.max(x)));
        assert!((max - min) / max < 0.05, "{e:?}");

        let mel = Filterbank::new(Scale::Mel, 40, 512, 16_000, 0.0, 8_000.0);
        mel.apply(&flat, &mut [0.0; 40]);
        let widths: Vec<usize> = mel.filters.iter().map(|(_, w)| w.len()).collect();
        assert!(
            widths[39] > 3 * widths[0],
            "mel filters widen with frequency: {widths:?}"
        );
    }
}
