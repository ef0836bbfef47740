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
    ///
    /// Each Newton step is shortened until the likelihood improves (backtracking, as in Lin,
    /// Lin and Weng's note on Platt scaling): raw scores spread over tens of logits saturate
    /// the sigmoid, the Hessian nearly vanishes there, and a full step then flies off to slopes
    /// of thousands, which is what an undamped fit did on one training run.
    pub fn fit(bonafide: &[f64], spoof: &[f64]) -> Self {
        let (nb, ns) = (bonafide.len() as f64, spoof.len() as f64);
        let data = smoothed_targets(bonafide, spoof);
        // Start flat, at the prior odds: the one point where no score is yet trusted.
        let (mut a, mut b) = (0.0f64, ((ns + 1.0) / (nb + 1.0)).ln());
        let mut loss = negative_log_likelihood(&data, a, b);
        for _ in 0..100 {
            let (mut ga, mut gb, mut haa, mut hab, mut hbb) = (0.0, 0.0, 1e-12, 0.0, 1e-12);
            for &(s, t) in &data {
                let p = sigmoid(a * s + b);
                let (d, w) = (p - t, p * (1.0 - p));
                ga += d * s;
                gb += d;
                haa += w * s * s;
                hab += w * s;
                hbb += w;
            }
            if ga.abs() < 1e-9 && gb.abs() < 1e-9 {
                break;
            }
            let det = haa * hbb - hab * hab;
            let (da, db) = ((hbb * ga - hab * gb) / det, (haa * gb - hab * ga) / det);
            let descent = ga * da + gb * db;
            let mut step = 1.0;
            let improved = loop {
                let (na, nb) = (a - step * da, b - step * db);
                let next = negative_log_likelihood(&data, na, nb);
                if next <= loss - 1e-4 * step * descent {
                    break Some((na, nb, next));
                }
                step /= 2.0;
                if step < 1e-10 {
                    break None;
                }
            };
            let Some((na, nb, next)) = improved else {
                break;
            };
            let moved = (na - a).abs() + (nb - b).abs();
            (a, b, loss) = (na, nb, next);
            if moved < 1e-10 {
                break;
            }
        }
        Self { a, b }
    }
}

/// Each score with Platt's target: `1/(n+2)` for bonafide, `(n+1)/(n+2)` for spoof.
fn smoothed_targets(bonafide: &[f64], spoof: &[f64]) -> Vec<(f64, f64)> {
    let (nb, ns) = (bonafide.len() as f64, spoof.len() as f64);
    let (t_pos, t_neg) = ((ns + 1.0) / (ns + 2.0), 1.0 / (nb + 2.0));
    bonafide
        .iter()
        .map(|&s| (s, t_neg))
        .chain(spoof.iter().map(|&s| (s, t_pos)))
        .collect()
}

fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// `ln(1 + e^x)` without overflow.
fn softplus(x: f64) -> f64 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

fn negative_log_likelihood(data: &[(f64, f64)], a: f64, b: f64) -> f64 {
    data.iter()
        .map(|&(s, t)| {
            let z = a * s + b;
            t * softplus(-z) + (1.0 - t) * softplus(z)
        })
        .sum()
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

/// Highest share of held-out synthetic clips that may be called `human`.
pub const MAX_SPOOF_CALLED_HUMAN: f64 = 0.05;
/// Highest share of held-out genuine clips that may be called `synthetic`.
pub const MAX_BONAFIDE_CALLED_SYNTHETIC: f64 = 0.01;

/// Raw-score cut points for the open world: `human` below `human`, `synthetic` at or above
/// `synthetic`, `inconclusive` between.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoreBands {
    pub human: f64,
    pub synthetic: f64,
}

impl ScoreBands {
    /// The bands from scores of pages and systems the model never trained on.
    ///
    /// `human` is the highest cut that leaves at most [`MAX_SPOOF_CALLED_HUMAN`] of the held-out
    /// synthetic clips below it; `synthetic` the lowest that leaves at most
    /// [`MAX_BONAFIDE_CALLED_SYNTHETIC`] of the held-out genuine clips at or above it. Each cut
    /// sits midway between the last clip allowed past it and the first that is not, so that a
    /// score on either side of the gap is judged alike. When the two cuts cross, the model
    /// separates these clips well enough that both bounds hold at any cut between them: both
    /// take the middle one, and nothing is inconclusive.
    pub fn from_held_out(bonafide: &[f64], spoof: &[f64]) -> Self {
        assert!(
            !bonafide.is_empty() && !spoof.is_empty(),
            "held-out bands need both labels"
        );
        let mut spoof = spoof.to_vec();
        spoof.sort_by(f64::total_cmp);
        let below = (MAX_SPOOF_CALLED_HUMAN * spoof.len() as f64).floor() as usize;
        let human = match below {
            0 => spoof[0],
            k => (spoof[k - 1] + spoof[k]) / 2.0,
        };
        let mut bonafide = bonafide.to_vec();
        bonafide.sort_by(|a, b| b.total_cmp(a));
        let above = (MAX_BONAFIDE_CALLED_SYNTHETIC * bonafide.len() as f64).floor() as usize;
        let synthetic = match above {
            0 => bonafide[0].next_up(),
            k => (bonafide[k - 1] + bonafide[k]) / 2.0,
        };
        if human > synthetic {
            let middle = (human + synthetic) / 2.0;
            return Self {
                human: middle,
                synthetic: middle,
            };
        }
        Self { human, synthetic }
    }

    /// The same bands as probabilities under `platt` (which must rise with the score).
    pub fn thresholds(&self, platt: &Platt) -> Thresholds {
        assert!(
            platt.a > 0.0,
            "a calibration that falls with the score: {platt:?}"
        );
        Thresholds {
            human_below: platt.probability(self.human),
            synthetic_above: platt.probability(self.synthetic),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_out_bands_bound_both_errors_and_leave_the_middle_open() {
        // 100 spoofs from -2 to 7.9, 200 genuine from -8 to 1.95: heavily overlapping.
        let spoof: Vec<f64> = (0..100).map(|i| -2.0 + i as f64 * 0.1).collect();
        let bona: Vec<f64> = (0..200).map(|i| -8.0 + i as f64 * 0.05).collect();
        let bands = ScoreBands::from_held_out(&bona, &spoof);
        let human_spoofs = spoof.iter().filter(|&&s| s < bands.human).count();
        let synthetic_bona = bona.iter().filter(|&&s| s >= bands.synthetic).count();
        assert_eq!(human_spoofs, 5, "{bands:?}");
        assert_eq!(synthetic_bona, 2, "{bands:?}");
        // One more spoof below or one more genuine clip above would break a bound.
        assert!(
            spoof[5] > bands.human && bona[197] < bands.synthetic,
            "{bands:?}"
        );
        assert!(bands.human < bands.synthetic);
        let inconclusive = spoof
            .iter()
            .chain(&bona)
            .filter(|&&s| s >= bands.human && s < bands.synthetic)
            .count();
        assert!(inconclusive > 100, "{inconclusive}");
        // The probabilities keep the order and the bounds.
        let t = bands.thresholds(&Platt { a: 0.5, b: -1.0 });
        assert!(t.human_below < t.synthetic_above);
    }

    #[test]
    fn held_out_bands_of_separated_scores_meet_in_the_middle() {
        let bona: Vec<f64> = (0..50).map(|i| -5.0 + i as f64 * 0.01).collect();
        let spoof: Vec<f64> = (0..50).map(|i| 3.0 + i as f64 * 0.01).collect();
        let bands = ScoreBands::from_held_out(&bona, &spoof);
        assert_eq!(bands.human, bands.synthetic);
        assert!(bands.human > -4.51 && bands.human < 3.0, "{bands:?}");
        // With few clips no error is allowed at all: the extremes decide.
        let bands = ScoreBands::from_held_out(&[0.0, 1.0], &[-1.0, 2.0]);
        assert_eq!((bands.human, bands.synthetic), (-1.0, 1.0_f64.next_up()));
    }

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

    #[test]
    fn fit_is_the_likelihood_maximum_when_scores_span_many_logits() {
        // Overlapping classes spread over ±8 and ±30 logits: an undamped Newton fit went to
        // slopes of −36,000 and 6,800,000 here.
        for spread in [8.0, 30.0] {
            let bona: Vec<f64> = (0..160)
                .map(|i| -spread + i as f64 * 1.25 * spread / 159.0)
                .collect();
            let spoof: Vec<f64> = (0..770)
                .map(|i| -spread / 2.0 + i as f64 * 2.5 * spread / 769.0)
                .collect();
            let platt = Platt::fit(&bona, &spoof);
            assert!(platt.a > 0.0 && platt.a < 10.0, "{spread}: {platt:?}");
            let data = smoothed_targets(&bona, &spoof);
            let best = negative_log_likelihood(&data, platt.a, platt.b);
            for a in [0.01, 0.05, 0.1, 0.3, 1.0, 3.0] {
                for b in [-5.0, -2.0, -1.0, 0.0, 1.0, 2.0, 5.0] {
                    let other = negative_log_likelihood(&data, a, b);
                    assert!(
                        best <= other + 1e-9,
                        "{spread}: ({a}, {b}) gives {other} < {best}"
                    );
                }
            }
        }
    }
}
