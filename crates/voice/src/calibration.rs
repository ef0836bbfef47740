//! Raw detector scores to probabilities (Platt scaling), and the thresholds that turn a
//! probability into a verdict.

use serde::{Deserialize, Serialize};

/// `p(spoof | score) = 1 / (1 + exp(-(a · score + b)))`, fitted on held-out data.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Platt {
    pub a: f64,
    pub b: f64,
}

impl Platt {
    pub fn probability(&self, score: f64) -> f64 {
        1.0 / (1.0 + (-(self.a * score + self.b)).exp())
    }

    /// Maximum-likelihood fit by Newton's method, with Platt's smoothed targets so that a
    /// perfectly separated development set still yields finite slopes.
    pub fn fit(bonafide: &[f64], spoof: &[f64]) -> Self {
        let (nb, ns) = (bonafide.len() as f64, spoof.len() as f64);
        let (t_pos, t_neg) = ((ns + 1.0) / (ns + 2.0), 1.0 / (nb + 2.0));
        let data: Vec<(f64, f64)> = bonafide
            .iter()
            .map(|&s| (s, t_neg))
            .chain(spoof.iter().map(|&s| (s, t_pos)))
            .collect();
        let (mut a, mut b) = (1.0f64, 0.0f64);
        for _ in 0..100 {
            let (mut ga, mut gb, mut haa, mut hab, mut hbb) = (0.0, 0.0, 1e-9, 0.0, 1e-9);
            for &(s, t) in &data {
                let p = 1.0 / (1.0 + (-(a * s + b)).exp());
                let (d, w) = (p - t, p * (1.0 - p));
                ga += d * s;
                gb += d;
                haa += w * s * s;
                hab += w * s;
                hbb += w;
            }
            let det = haa * hbb - hab * hab;
            if det.abs() < 1e-12 {
                break;
            }
            let (da, db) = ((hbb * ga - hab * gb) / det, (haa * gb - hab * ga) / det);
            a -= da;
            b -= db;
            if da.abs() + db.abs() < 1e-9 {
                break;
            }
        }
        Self { a, b }
    }
}

/// Probability bands: below `human_below` the verdict is human, at or above
/// `synthetic_above` synthetic, and in between inconclusive.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    pub human_below: f64,
    pub synthetic_above: f64,
}

/// Highest share of development bonafide clips that may score `synthetic`.
pub const MAX_FALSE_SYNTHETIC: f64 = 0.01;

impl Thresholds {
    /// The verdict bands from development scores and their fitted calibration.
    ///
    /// `human` stays below the equal-error point − 0.15 (at most ½). `synthetic` needs both the
    /// equal-error point + 0.15 and a score above all but [`MAX_FALSE_SYNTHETIC`] of the
    /// development bonafide: calling a real voice synthetic is the error that harms the person
    /// it protects, and an equal-error point set by hard spoof families (copy-synthesis scores
    /// low) can lie well inside the bonafide scores.
    pub fn from_development(platt: &Platt, bonafide: &[f64], eer_threshold: f64) -> Self {
        let p_eer = platt.probability(eer_threshold);
        let mut sorted = bonafide.to_vec();
        sorted.sort_by(f64::total_cmp);
        let allowed = (MAX_FALSE_SYNTHETIC * sorted.len() as f64).floor() as usize;
        // Midway between the last bonafide score that must stay below and the next one up.
        let guard = match sorted.len().checked_sub(allowed + 1) {
            Some(i) if i + 1 < sorted.len() => platt.probability((sorted[i] + sorted[i + 1]) / 2.0),
            Some(i) => platt.probability(sorted[i]).next_up(),
            None => 0.5,
        };
        Self {
            human_below: (p_eer - 0.15).clamp(0.05, 0.5),
            synthetic_above: (p_eer + 0.15).max(guard).clamp(0.5, 0.99),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_threshold_bounds_false_alarms_on_development_bonafide() {
        let platt = Platt { a: 1.0, b: 0.0 };
        // 200 bonafide spread over −4..4: the equal-error point alone (score 0, p 0.5) would
        // put the synthetic threshold at p 0.65, above which 38 % of these lie.
        let bona: Vec<f64> = (0..200).map(|i| -4.0 + i as f64 * 0.04).collect();
        let t = Thresholds::from_development(&platt, &bona, 0.0);
        assert!((t.human_below - 0.35).abs() < 1e-12, "{t:?}");
        let above = bona
            .iter()
            .filter(|&&s| platt.probability(s) >= t.synthetic_above)
            .count();
        assert_eq!(above, 2, "{t:?}");
        // Development bonafide that all score low leave the equal-error rule in charge.
        let low: Vec<f64> = (0..200).map(|i| -6.0 + i as f64 * 0.01).collect();
        let t = Thresholds::from_development(&platt, &low, 0.0);
        assert!((t.synthetic_above - 0.65).abs() < 1e-12, "{t:?}");
    }

    #[test]
    fn fitted_probabilities_rise_with_the_score_and_straddle_the_boundary() {
        let bona: Vec<f64> = (0..50).map(|i| -2.0 + i as f64 * 0.05).collect();
        let spoof: Vec<f64> = (0..50).map(|i| 0.5 + i as f64 * 0.05).collect();
        let platt = Platt::fit(&bona, &spoof);
        assert!(platt.a > 0.0);
        assert!(platt.probability(-2.0) < 0.05);
        assert!(platt.probability(3.0) > 0.95);
        // The classes meet between 0.45 and 0.5: that is where the probability crosses ½.
        let mid = platt.probability(0.475);
        assert!((0.3..0.7).contains(&mid), "{mid}");
        assert!(platt.probability(0.0) < 0.3);
    }
}
