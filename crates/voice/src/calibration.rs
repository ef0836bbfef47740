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

#[cfg(test)]
mod tests {
    use super::*;

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
