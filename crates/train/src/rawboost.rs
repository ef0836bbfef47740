//! RawBoost-style data boosting (after Tak et al., ICASSP 2022): distortions a real channel adds
//! to a waveform, drawn at random, so that a detector learns the generator's traces rather than
//! a corpus's recording chain. Three kinds, each on its own chance, in series:
//!
//! - **convolutive, linear and nonlinear**: the signal and its square through random multi-band
//!   FIR filters (a microphone's or a codec's colouring, an amplifier's harmonics);
//! - **impulsive, signal-dependent**: a few percent of samples pushed by a fraction of their own
//!   value (clicks, quantisation and packet errors);
//! - **stationary, signal-independent**: white noise through a random filter, 10–40 dB below
//!   the signal (hum, hiss, room tone).
//!
//! Applied to both labels alike, so none of it can become a label cue.

use crate::rng::Rng;

/// Distorts `audio` (mono at `rate`) in place.
pub fn apply(audio: &mut [f32], rate: u32, rng: &mut Rng) {
    if audio.is_empty() {
        return;
    }
    let rms_before = rms(audio);
    if rng.uniform(0.0, 1.0) < 0.7 {
        convolutive(audio, rate, rng);
    }
    if rng.uniform(0.0, 1.0) < 0.5 {
        impulsive(audio, rng);
    }
    if rng.uniform(0.0, 1.0) < 0.5 {
        stationary(audio, rate, rng);
    }
    // The level is the gain augmentation's job: keep the crop's loudness where it was.
    let rms_after = rms(audio);
    if rms_after > 0.0 && rms_before > 0.0 {
        let k = rms_before / rms_after;
        audio.iter_mut().for_each(|s| *s *= k);
    }
}

fn rms(audio: &[f32]) -> f32 {
    (audio.iter().map(|s| s * s).sum::<f32>() / audio.len() as f32).sqrt()
}

/// A random FIR: unity plus 1–5 band-pass responses, each boosting or cutting its band.
fn random_filter(rate: u32, rng: &mut Rng) -> Vec<f32> {
    let taps = 2 * (15 + rng.below(36)) + 1; // 31..=101, odd, so the delay is whole samples
    let nyquist = rate as f32 / 2.0;
    let mut h = vec![0f32; taps];
    let mid = taps / 2;
    h[mid] = 1.0;
    for _ in 0..1 + rng.below(5) {
        let centre = rng.uniform(100.0, nyquist - 100.0);
        let width = rng.uniform(100.0, 1_000.0);
        let lo = (centre - width / 2.0).max(20.0) / rate as f32;
        let hi = (centre + width / 2.0).min(nyquist - 20.0) / rate as f32;
        let gain = rng.uniform(-0.9, 1.0);
        for (n, tap) in h.iter_mut().enumerate() {
            let t = n as f32 - mid as f32;
            // Band-pass = difference of two windowed-sinc low-passes.
            let sinc = |fc: f32| {
                if t == 0.0 {
                    2.0 * fc
                } else {
                    (2.0 * std::f32::consts::PI * fc * t).sin() / (std::f32::consts::PI * t)
                }
            };
            let hann =
                0.5 - 0.5 * (2.0 * std::f32::consts::PI * n as f32 / (taps - 1) as f32).cos();
            *tap += gain * (sinc(hi) - sinc(lo)) * hann;
        }
    }
    h
}

/// `x` through `h`, same length, aligned on the filter's centre. One pass per tap over the
/// zero-padded signal, so the inner loop is a vectorisable `y += h·x`.
fn filter(x: &[f32], h: &[f32]) -> Vec<f32> {
    let mid = h.len() / 2;
    let mut padded = vec![0f32; x.len() + 2 * mid];
    padded[mid..mid + x.len()].copy_from_slice(x);
    let mut y = vec![0f32; x.len()];
    for (k, &tap) in h.iter().enumerate() {
        // y[i] += h[k]·x[i + mid − k] = h[k]·padded[i + 2·mid − k]
        let shifted = &padded[2 * mid - k..2 * mid - k + x.len()];
        for (out, v) in y.iter_mut().zip(shifted) {
            *out += tap * v;
        }
    }
    y
}

fn convolutive(audio: &mut [f32], rate: u32, rng: &mut Rng) {
    let linear = filter(audio, &random_filter(rate, rng));
    let peak = audio.iter().fold(0f32, |m, s| m.max(s.abs())).max(1e-9);
    // The square of the peak-normalised signal: harmonics at a level set apart from the signal.
    let squared: Vec<f32> = audio
        .iter()
        .map(|s| (s / peak) * (s / peak) * peak)
        .collect();
    let nonlinear = filter(&squared, &random_filter(rate, rng));
    let amount = rng.uniform(0.0, 0.2);
    for ((s, l), q) in audio.iter_mut().zip(&linear).zip(&nonlinear) {
        *s = l + amount * q;
    }
}

fn impulsive(audio: &mut [f32], rng: &mut Rng) {
    let share = rng.uniform(0.0, 0.1);
    let strength = rng.uniform(0.5, 3.0);
    for s in audio.iter_mut() {
        if rng.uniform(0.0, 1.0) < share {
            *s += *s * strength * rng.uniform(-1.0, 1.0);
        }
    }
}

fn stationary(audio: &mut [f32], rate: u32, rng: &mut Rng) {
    let white: Vec<f32> = (0..audio.len()).map(|_| rng.gaussian()).collect();
    let coloured = filter(&white, &random_filter(rate, rng));
    let snr_db = rng.uniform(10.0, 40.0);
    let signal = rms(audio);
    let noise = rms(&coloured).max(1e-12);
    let k = signal / noise / 10f32.powf(snr_db / 20.0);
    for (s, n) in audio.iter_mut().zip(&coloured) {
        *s += k * n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(rate: u32, seconds: f32) -> Vec<f32> {
        (0..(rate as f32 * seconds) as usize)
            .map(|i| 0.3 * (i as f32 * 2.0 * std::f32::consts::PI * 220.0 / rate as f32).sin())
            .collect()
    }

    #[test]
    fn keeps_level_and_length_and_changes_the_wave() {
        let clean = tone(16_000, 1.0);
        let mut changed = 0;
        for seed in 0..20 {
            let mut audio = clean.clone();
            apply(&mut audio, 16_000, &mut Rng::new(seed));
            assert_eq!(audio.len(), clean.len());
            assert!(audio.iter().all(|s| s.is_finite()));
            assert!((rms(&audio) / rms(&clean) - 1.0).abs() < 1e-3);
            let diff = audio
                .iter()
                .zip(&clean)
                .map(|(a, b)| (a - b).abs())
                .sum::<f32>();
            changed += (diff > 1.0) as usize;
        }
        // Each kind has its own chance; only a draw of none leaves the wave as it was.
        assert!(changed >= 15, "{changed} of 20 crops changed");
    }

    #[test]
    fn a_unity_filter_passes_the_signal() {
        let x = tone(8_000, 0.1);
        let mut h = vec![0f32; 31];
        h[15] = 1.0;
        assert_eq!(filter(&x, &h), x);
    }
}
