//! Band-limit augmentation: a steep low-pass at a random cutoff a little below Nyquist, the
//! trace a resampler leaves on its way to the analysis rate (rubato, ffmpeg and sox cut at
//! 0.9–0.99 of the lower Nyquist, each with its own slope).
//!
//! Why: a 16 kHz clip whose top band was emptied by a brick wall at 7.2 kHz moved the
//! wideband networks' scores by up to 4 logits, mostly towards `human`, while nothing below
//! changed (model card, session 34). The corpus's 16 kHz clips come from sources at 8 to
//! 48 kHz (16, 24, 22.05 and 44.1 kHz the most), so how full the top band is says where a
//! clip was recorded, not whether its voice is synthetic. Applied to both labels alike, so
//! that it cannot become a label cue. Measured: it shrinks the move, it does not remove it.

use std::cell::RefCell;

use realfft::RealFftPlanner;

use crate::rng::Rng;

/// Lowest and highest cutoff, as fractions of Nyquist.
const CUTOFF: (f32, f32) = (0.80, 0.99);
/// Width of the raised-cosine transition, as fractions of Nyquist (80–400 Hz at 16 kHz).
const TRANSITION: (f32, f32) = (0.01, 0.05);

thread_local! {
    static PLANNER: RefCell<RealFftPlanner<f32>> = RefCell::new(RealFftPlanner::new());
}

/// Low-passes `audio` in place at a random cutoff (see [`CUTOFF`] and [`TRANSITION`]).
pub fn apply(audio: &mut [f32], rng: &mut Rng) {
    let cutoff = rng.uniform(CUTOFF.0, CUTOFF.1);
    let width = rng.uniform(TRANSITION.0, TRANSITION.1);
    low_pass(audio, cutoff, width);
}

/// Zero-phase low-pass by FFT: bins below `cutoff - width` (fractions of Nyquist) pass, bins
/// above `cutoff` are removed, a raised cosine between. The crop is zero-padded to a power of
/// two with room for the response's tail, so that its end does not wrap onto its start.
fn low_pass(audio: &mut [f32], cutoff: f32, width: f32) {
    if audio.is_empty() {
        return;
    }
    let n = (audio.len() + audio.len() / 8 + 64).next_power_of_two();
    let (forward, inverse) = PLANNER.with(|p| {
        let mut p = p.borrow_mut();
        (p.plan_fft_forward(n), p.plan_fft_inverse(n))
    });
    let mut time = vec![0f32; n];
    time[..audio.len()].copy_from_slice(audio);
    let mut spectrum = forward.make_output_vec();
    forward
        .process(&mut time, &mut spectrum)
        .expect("buffers sized by the plan");
    let bins = spectrum.len() - 1; // bin `bins` is Nyquist
    let pass_end = cutoff - width;
    for (k, bin) in spectrum.iter_mut().enumerate() {
        let f = k as f32 / bins as f32;
        let gain = if f <= pass_end {
            1.0
        } else if f >= cutoff {
            0.0
        } else {
            0.5 + 0.5 * (std::f32::consts::PI * (f - pass_end) / width).cos()
        };
        *bin *= gain / n as f32;
    }
    inverse
        .process(&mut spectrum, &mut time)
        .expect("buffers sized by the plan");
    audio.copy_from_slice(&time[..audio.len()]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(rate: f32, hz: f32, n: usize) -> Vec<f32> {
        (0..n)
            .map(|i| (2.0 * std::f32::consts::PI * hz * i as f32 / rate).sin() * 0.5)
            .collect()
    }

    fn rms(x: &[f32]) -> f32 {
        (x.iter().map(|s| s * s).sum::<f32>() / x.len() as f32).sqrt()
    }

    #[test]
    fn the_top_band_goes_and_speech_band_stays() {
        let mut rng = Rng::new(7);
        for _ in 0..20 {
            // 7.95 kHz at 16 kHz is 0.994 of Nyquist, above every cutoff drawn; 3 kHz is far
            // below every passband's end.
            let mut high = tone(16_000.0, 7_950.0, 40_000);
            let mut low = tone(16_000.0, 3_000.0, 40_000);
            apply(&mut high, &mut rng);
            apply(&mut low, &mut rng);
            // Away from the crop's edges, where the cut-off response rings.
            let inner = 2_000..38_000;
            assert!(rms(&high[inner.clone()]) < 0.005, "{}", rms(&high[inner]));
            let kept = rms(&low[inner.clone()]) / rms(&tone(16_000.0, 3_000.0, 40_000)[inner]);
            assert!((kept - 1.0).abs() < 0.01, "3 kHz kept at {kept}");
        }
    }

    #[test]
    fn the_cutoff_falls_where_it_was_drawn() {
        // A tone just below the passband's end passes, one just above the cutoff does not.
        let (cutoff, width) = (0.85, 0.03);
        let nyquist = 8_000.0;
        let mut below = tone(16_000.0, (cutoff - width - 0.01) * nyquist, 32_000);
        let mut above = tone(16_000.0, (cutoff + 0.01) * nyquist, 32_000);
        low_pass(&mut below, cutoff, width);
        low_pass(&mut above, cutoff, width);
        assert!((rms(&below[2_000..30_000]) - 0.5f32 / 2f32.sqrt()).abs() < 0.01);
        assert!(rms(&above[2_000..30_000]) < 0.005);
    }
}
