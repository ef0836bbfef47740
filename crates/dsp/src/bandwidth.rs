//! The band a recording really carries, measured from its speech, not read from its header.
//!
//! A phone call resampled to 48 kHz still carries only 0.3–3.4 kHz; an AMR-NB voice note
//! uploaded as a 44.1 kHz MP3 still stops at 4 kHz. A detector that reads the band above 4 kHz
//! must know whether there is anything there. The long-term average spectrum of the speech
//! frames is compared with its own loudest region (0.1–3.5 kHz, where every channel carries
//! speech): the bandwidth is the highest frequency whose smoothed level stays within
//! [`BandwidthConfig::range_db`] of it. Natural speech keeps energy up to 8 kHz and beyond at
//! 30–50 dB below its peak; a resampler's or a codec's stop band lies 70 dB and more below.

use crate::stft::Stft;
use crate::vad::Segment;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BandwidthConfig {
    pub sample_rate: u32,
    /// How far below the speech peak a band may lie and still count as carried.
    pub range_db: f32,
    /// Width of the smoothing over frequency, Hz: single tones or harmonics of a narrowband
    /// signal's aliasing residue do not make a band.
    pub smooth_hz: f32,
}

impl BandwidthConfig {
    pub fn at(sample_rate: u32) -> Self {
        Self {
            sample_rate,
            range_db: 60.0,
            smooth_hz: 250.0,
        }
    }
}

const N_FFT: usize = 512;

/// The highest frequency (Hz) the speech in `samples` carries; `None` without speech frames.
pub fn effective_bandwidth(
    samples: &[f32],
    speech: &[Segment],
    config: &BandwidthConfig,
) -> Option<f32> {
    let mut stft = Stft::new(N_FFT, N_FFT, N_FFT / 2);
    let bins = stft.n_bins();
    let mut average = vec![0f64; bins];
    let mut frames = 0usize;
    let mut power = Vec::new();
    for s in speech {
        let end = s.end.min(samples.len());
        if s.start >= end {
            continue;
        }
        power.clear();
        let n = stft.power(&samples[s.start..end], &mut power);
        for row in power.chunks(bins).take(n) {
            for (a, p) in average.iter_mut().zip(row) {
                *a += f64::from(*p);
            }
        }
        frames += n;
    }
    if frames == 0 {
        return None;
    }
    let bin_hz = config.sample_rate as f32 / N_FFT as f32;
    let half = ((config.smooth_hz / bin_hz / 2.0).round() as usize).max(1);
    let smoothed: Vec<f64> = (0..bins)
        .map(|b| {
            let (lo, hi) = (b.saturating_sub(half), (b + half + 1).min(bins));
            average[lo..hi].iter().sum::<f64>() / (hi - lo) as f64
        })
        .collect();
    let db = |p: f64| 10.0 * (p.max(1e-20)).log10();
    let bin_of = |hz: f32| ((hz / bin_hz).round() as usize).min(bins - 1);
    let peak = smoothed[bin_of(100.0)..=bin_of(3_500.0)]
        .iter()
        .copied()
        .fold(0f64, f64::max);
    if peak <= 0.0 {
        return None;
    }
    let floor = db(peak) - f64::from(config.range_db);
    let top = (0..bins).rev().find(|&b| db(smoothed[b]) >= floor)?;
    Some(top as f32 * bin_hz)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Seeded noise, optionally through a steep low-pass made of a windowed-sinc FIR.
    fn noise(len: usize, cutoff: Option<f32>, rate: u32) -> Vec<f32> {
        let mut state = 7u64;
        let white: Vec<f32> = (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
            })
            .collect();
        let Some(cutoff) = cutoff else {
            return white;
        };
        let taps = 511;
        let fc = cutoff / rate as f32;
        let h: Vec<f32> = (0..taps)
            .map(|n| {
                let t = n as f32 - (taps / 2) as f32;
                let sinc = if t == 0.0 {
                    2.0 * fc
                } else {
                    (2.0 * std::f32::consts::PI * fc * t).sin() / (std::f32::consts::PI * t)
                };
                let blackman = 0.42
                    - 0.5 * (2.0 * std::f32::consts::PI * n as f32 / (taps - 1) as f32).cos()
                    + 0.08 * (4.0 * std::f32::consts::PI * n as f32 / (taps - 1) as f32).cos();
                sinc * blackman
            })
            .collect();
        (0..len - taps)
            .map(|i| h.iter().zip(&white[i..i + taps]).map(|(a, b)| a * b).sum())
            .collect()
    }

    fn all(samples: &[f32]) -> Vec<Segment> {
        vec![Segment {
            start: 0,
            end: samples.len(),
        }]
    }

    #[test]
    fn full_band_noise_carries_the_whole_band() {
        let x = noise(32_000, None, 16_000);
        let bw = effective_bandwidth(&x, &all(&x), &BandwidthConfig::at(16_000)).unwrap();
        assert!(bw > 7_500.0, "{bw}");
    }

    #[test]
    fn a_telephone_band_upsampled_to_16_khz_stops_near_4_khz() {
        let x = noise(32_000, Some(3_600.0), 16_000);
        let bw = effective_bandwidth(&x, &all(&x), &BandwidthConfig::at(16_000)).unwrap();
        assert!((3_400.0..4_600.0).contains(&bw), "{bw}");
        let x = noise(32_000, Some(6_000.0), 16_000);
        let bw = effective_bandwidth(&x, &all(&x), &BandwidthConfig::at(16_000)).unwrap();
        assert!((5_800.0..7_000.0).contains(&bw), "{bw}");
    }

    #[test]
    fn no_speech_no_answer() {
        let x = vec![0f32; 16_000];
        assert_eq!(
            effective_bandwidth(&x, &[], &BandwidthConfig::at(16_000)),
            None
        );
        assert_eq!(
            effective_bandwidth(&x, &all(&x), &BandwidthConfig::at(16_000)),
            None
        );
    }
}
