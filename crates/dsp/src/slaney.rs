//! Slaney-style mel filterbanks, as librosa builds them by default (and OpenAI's Whisper and
//! Resemblyzer's speaker encoder were trained on): the Auditory Toolbox's mel scale (linear
//! below 1 kHz, logarithmic above), triangles between neighbouring mel points from 0 Hz to
//! Nyquist, each normalised to unit area in Hz. Dense rows, so a port matches its reference
//! to the last bin.

/// Slaney's mel scale: 3 mels per 200 Hz below 1 kHz, then logarithmic.
fn hz_to_mel(hz: f64) -> f64 {
    if hz >= 1_000.0 {
        15.0 + (hz / 1_000.0).ln() / (6.4f64.ln() / 27.0)
    } else {
        hz / (200.0 / 3.0)
    }
}

fn mel_to_hz(mel: f64) -> f64 {
    if mel >= 15.0 {
        1_000.0 * ((6.4f64.ln() / 27.0) * (mel - 15.0)).exp()
    } else {
        mel * (200.0 / 3.0)
    }
}

/// `n_mels` rows of `n_fft / 2 + 1` weights.
pub fn filters(n_mels: usize, n_fft: usize, rate: u32) -> Vec<f32> {
    let bins = n_fft / 2 + 1;
    let top = hz_to_mel(f64::from(rate) / 2.0);
    let edges: Vec<f64> = (0..n_mels + 2)
        .map(|i| mel_to_hz(top * i as f64 / (n_mels + 1) as f64))
        .collect();
    let mut filters = vec![0f32; n_mels * bins];
    for (m, row) in filters.chunks_mut(bins).enumerate() {
        let (lo, centre, hi) = (edges[m], edges[m + 1], edges[m + 2]);
        for (b, w) in row.iter_mut().enumerate() {
            let f = b as f64 * f64::from(rate) / n_fft as f64;
            let rising = (f - lo) / (centre - lo);
            let falling = (hi - f) / (hi - centre);
            *w = (rising.min(falling).max(0.0) * 2.0 / (hi - lo)) as f32;
        }
    }
    filters
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_have_unit_area_in_hz() {
        for (n_mels, n_fft) in [(80, 400), (40, 400)] {
            let bins = n_fft / 2 + 1;
            let bin_hz = 16_000.0 / n_fft as f64;
            let fb = filters(n_mels, n_fft, 16_000);
            assert!(fb.iter().all(|w| *w >= 0.0));
            // Each triangle integrates to 1 over frequency, up to the sampling of its slopes at
            // 40 Hz bins (worst for the narrow low ones, skipped); without the normalisation
            // the areas would be tens to hundreds.
            for (m, row) in fb.chunks(bins).enumerate().skip(n_mels / 8) {
                let area: f64 = row.iter().map(|&w| f64::from(w) * bin_hz).sum();
                assert!(
                    (area - 1.0).abs() < 0.1,
                    "{n_mels} mels, filter {m}: area {area}"
                );
            }
        }
    }

    #[test]
    fn the_scale_is_linear_then_logarithmic_and_invertible() {
        assert!((hz_to_mel(600.0) - 9.0).abs() < 1e-12);
        assert!((hz_to_mel(1_000.0) - 15.0).abs() < 1e-12);
        for hz in [50.0, 999.0, 1_000.0, 4_000.0, 8_000.0] {
            assert!((mel_to_hz(hz_to_mel(hz)) - hz).abs() < 1e-9);
        }
    }
}
