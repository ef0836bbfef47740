//! Detection quality over a labelled manifest: EER, AUC, accuracy at the shipped thresholds,
//! and breakdowns by every descriptive column the manifest carries.

use crate::calibration::Thresholds;
use crate::manifest::{Entry, Label};
use crate::metrics;
use serde::Serialize;
use std::collections::BTreeMap;

/// Columns whose values get their own figures when present.
pub const BREAKDOWN_COLUMNS: [&str; 5] = ["generator", "family", "source", "channel", "language"];

/// One manifest entry after scanning.
#[derive(Debug, Clone)]
pub struct Scored {
    pub entry: Entry,
    /// The raw score and its calibrated probability, or why there is none.
    pub outcome: Result<(f64, f64), String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Breakdown {
    pub n_bonafide: usize,
    pub n_spoof: usize,
    /// Against the bonafide of the same value when there is any, else against all bonafide
    /// (a generator has only spoofs); likewise for a value with only bonafide.
    pub eer: Option<f64>,
    pub auc: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    pub eer: f64,
    /// The calibrated probability at which the EER occurs.
    pub eer_probability: f64,
    pub auc: f64,
    pub n_bonafide: usize,
    pub n_spoof: usize,
    /// Clips that got no score (no speech, too short, undecodable), with the reason.
    pub unscored: Vec<(String, String)>,
    /// Share of scored clips whose verdict (at the shipped thresholds) is right; an
    /// inconclusive verdict counts as not right.
    pub accuracy: f64,
    /// Share of decided (not inconclusive) clips whose verdict is right.
    pub accuracy_decided: f64,
    pub inconclusive: usize,
    /// How the scored genuine clips fall at the shipped thresholds: the share called
    /// `synthetic` is the false alarm a bank would act on.
    pub bonafide_verdicts: Verdicts,
    /// How the scored synthetic clips fall: the share called `human` is the costliest error.
    pub spoof_verdicts: Verdicts,
    pub thresholds: Thresholds,
    pub breakdown: BTreeMap<String, BTreeMap<String, Breakdown>>,
    /// ROC points (false-positive rate, true-positive rate), spoof as positive.
    pub roc: Vec<(f64, f64)>,
}

/// Clips of one label by the verdict their probability gets at the shipped thresholds. Only the
/// score decides here: `scan` also answers `inconclusive` for recordings it cannot judge (too
/// little speech, music, several voices, too noisy), which this does not apply.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Verdicts {
    pub human: usize,
    pub inconclusive: usize,
    pub synthetic: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error(
        "the manifest needs scored clips of both labels (bonafide: {bonafide}, spoof: {spoof})"
    )]
    OneClass { bonafide: usize, spoof: usize },
}

pub fn evaluate(
    scored: &[Scored],
    thresholds: Thresholds,
    probability: impl Fn(f64) -> f64,
) -> Result<EvalReport, EvalError> {
    let ok: Vec<(&Entry, f64, f64)> = scored
        .iter()
        .filter_map(|s| s.outcome.as_ref().ok().map(|&(r, p)| (&s.entry, r, p)))
        .collect();
    let unscored = scored
        .iter()
        .filter_map(|s| {
            s.outcome
                .as_ref()
                .err()
                .map(|why| (s.entry.path.display().to_string(), why.clone()))
        })
        .collect();
    let scores = |label: Label| -> Vec<f64> {
        ok.iter()
            .filter(|(e, _, _)| e.label == label)
            .map(|&(_, r, _)| r)
            .collect()
    };
    let (bona, spoof) = (scores(Label::Bonafide), scores(Label::Spoof));
    if bona.is_empty() || spoof.is_empty() {
        return Err(EvalError::OneClass {
            bonafide: bona.len(),
            spoof: spoof.len(),
        });
    }
    let at_eer = metrics::eer(&bona, &spoof);
    let (mut right, mut decided_right, mut decided) = (0usize, 0usize, 0usize);
    let (mut bonafide_verdicts, mut spoof_verdicts) = (Verdicts::default(), Verdicts::default());
    for &(e, _, p) in &ok {
        let verdict = if p >= thresholds.synthetic_above {
            Some(Label::Spoof)
        } else if p < thresholds.human_below {
            Some(Label::Bonafide)
        } else {
            None
        };
        let tally = match e.label {
            Label::Bonafide => &mut bonafide_verdicts,
            Label::Spoof => &mut spoof_verdicts,
        };
        match verdict {
            Some(Label::Bonafide) => tally.human += 1,
            Some(Label::Spoof) => tally.synthetic += 1,
            None => tally.inconclusive += 1,
        }
        if let Some(v) = verdict {
            decided += 1;
            if v == e.label {
                right += 1;
                decided_right += 1;
            }
        }
    }
    let mut breakdown = BTreeMap::new();
    for column in BREAKDOWN_COLUMNS {
        let mut values: BTreeMap<String, (Vec<f64>, Vec<f64>)> = BTreeMap::new();
        for &(e, r, _) in &ok {
            if let Some(v) = e.get(column).filter(|v| !v.is_empty()) {
                let slot = values.entry(v.to_string()).or_default();
                match e.label {
                    Label::Bonafide => slot.0.push(r),
                    Label::Spoof => slot.1.push(r),
                }
            }
        }
        if values.len() < 2 {
            continue;
        }
        let rows = values
            .into_iter()
            .map(|(value, (b, s))| {
                let (against_b, against_s) = match (b.is_empty(), s.is_empty()) {
                    (false, false) => (&b, &s),
                    (true, false) => (&bona, &s),
                    (false, true) => (&b, &spoof),
                    (true, true) => unreachable!("a value comes from at least one clip"),
                };
                let row = Breakdown {
                    n_bonafide: b.len(),
                    n_spoof: s.len(),
                    eer: Some(metrics::eer(against_b, against_s).eer),
                    auc: Some(metrics::auc(against_b, against_s)),
                };
                (value, row)
            })
            .collect();
        breakdown.insert(column.to_string(), rows);
    }
    Ok(EvalReport {
        eer: at_eer.eer,
        eer_probability: probability(at_eer.threshold),
        auc: metrics::auc(&bona, &spoof),
        n_bonafide: bona.len(),
        n_spoof: spoof.len(),
        unscored,
        accuracy: right as f64 / ok.len() as f64,
        accuracy_decided: if decided == 0 {
            0.0
        } else {
            decided_right as f64 / decided as f64
        },
        inconclusive: ok.len() - decided,
        bonafide_verdicts,
        spoof_verdicts,
        thresholds,
        breakdown,
        roc: metrics::roc(&bona, &spoof),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn entry(label: Label, generator: &str) -> Entry {
        let mut columns = BTreeMap::new();
        columns.insert("generator".to_string(), generator.to_string());
        Entry {
            path: PathBuf::from(format!("{generator}.wav")),
            label,
            columns,
        }
    }

    #[test]
    fn breakdown_and_accuracy() {
        let t = Thresholds {
            human_below: 0.4,
            synthetic_above: 0.6,
        };
        let mut scored = Vec::new();
        for i in 0..10 {
            let s = -1.0 - i as f64 * 0.1;
            scored.push(Scored {
                entry: entry(Label::Bonafide, "human"),
                outcome: Ok((s, 0.1)),
            });
        }
        // "good" spoofs are caught; "sly" ones score like humans.
        for _ in 0..5 {
            scored.push(Scored {
                entry: entry(Label::Spoof, "good"),
                outcome: Ok((2.0, 0.9)),
            });
            scored.push(Scored {
                entry: entry(Label::Spoof, "sly"),
                outcome: Ok((-5.0, 0.5)),
            });
        }
        scored.push(Scored {
            entry: entry(Label::Spoof, "sly"),
            outcome: Err("no speech found".into()),
        });
        let r = evaluate(&scored, t, |x| x).unwrap();
        assert_eq!((r.n_bonafide, r.n_spoof, r.unscored.len()), (10, 10, 1));
        assert_eq!(r.inconclusive, 5);
        let verdicts = |human, inconclusive, synthetic| Verdicts {
            human,
            inconclusive,
            synthetic,
        };
        assert_eq!(r.bonafide_verdicts, verdicts(10, 0, 0));
        assert_eq!(
            r.spoof_verdicts,
            verdicts(0, 5, 5),
            "the unscored sly clip is in neither"
        );
        assert!((r.accuracy - 15.0 / 20.0).abs() < 1e-12);
        assert_eq!(r.accuracy_decided, 1.0);
        let g = &r.breakdown["generator"];
        assert_eq!(g["good"].eer, Some(0.0));
        assert_eq!(g["sly"].eer, Some(1.0));
        assert!(r.eer > 0.2 && r.eer < 0.6);
    }

    #[test]
    fn one_class_is_refused() {
        let scored = vec![Scored {
            entry: entry(Label::Spoof, "x"),
            outcome: Ok((1.0, 0.7)),
        }];
        let t = Thresholds {
            human_below: 0.4,
            synthetic_above: 0.6,
        };
        assert!(evaluate(&scored, t, |x| x).is_err());
    }
}
