//! Detection quality from scores where higher means "more likely spoof".

/// Equal error rate and the score threshold where it occurs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Eer {
    pub eer: f64,
    pub threshold: f64,
}

/// EER by sweeping every distinct score as a threshold: the point where the false-acceptance
/// rate (spoof scored below threshold) meets the false-rejection rate (bonafide at or above).
/// Between the two closest points the rates are averaged.
pub fn eer(bonafide: &[f64], spoof: &[f64]) -> Eer {
    assert!(
        !bonafide.is_empty() && !spoof.is_empty(),
        "EER needs both classes"
    );
    let mut all: Vec<(f64, bool)> = bonafide
        .iter()
        .map(|&s| (s, false))
        .chain(spoof.iter().map(|&s| (s, true)))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (nb, ns) = (bonafide.len(), spoof.len());
    // Counted, not accumulated as fractions, so a perfect split gives exactly zero.
    // Threshold below everything: every bonafide rejected, no spoof accepted.
    let (mut spoof_accepted, mut bonafide_rejected) = (0usize, nb);
    let rates = |sa: usize, br: usize| (sa as f64 / ns as f64, br as f64 / nb as f64);
    let mut best = Eer {
        eer: 0.5,
        threshold: all[0].0,
    };
    let mut best_gap = f64::INFINITY;
    let mut i = 0;
    loop {
        let (far, frr) = rates(spoof_accepted, bonafide_rejected);
        let threshold = all.get(i).map_or(all[all.len() - 1].0 + 1e-9, |x| x.0);
        if (far - frr).abs() < best_gap {
            best_gap = (far - frr).abs();
            best = Eer {
                eer: (far + frr) / 2.0,
                threshold,
            };
        }
        if i == all.len() {
            return best;
        }
        let t = all[i].0;
        while i < all.len() && all[i].0 == t {
            if all[i].1 {
                spoof_accepted += 1;
            } else {
                bonafide_rejected -= 1;
            }
            i += 1;
        }
    }
}

/// Area under the ROC curve: the probability that a random spoof outscores a random
/// bonafide (ties count half).
pub fn auc(bonafide: &[f64], spoof: &[f64]) -> f64 {
    let mut wins = 0.0;
    for &s in spoof {
        for &b in bonafide {
            wins += if s > b {
                1.0
            } else if s == b {
                0.5
            } else {
                0.0
            };
        }
    }
    wins / (bonafide.len() * spoof.len()) as f64
}

/// Points of the ROC curve `(false positive rate, true positive rate)`, spoof as positive.
pub fn roc(bonafide: &[f64], spoof: &[f64]) -> Vec<(f64, f64)> {
    let mut thresholds: Vec<f64> = bonafide.iter().chain(spoof).copied().collect();
    thresholds.sort_by(|a, b| b.total_cmp(a));
    thresholds.dedup();
    let mut points = vec![(0.0, 0.0)];
    for t in thresholds {
        let fpr = bonafide.iter().filter(|&&b| b >= t).count() as f64 / bonafide.len() as f64;
        let tpr = spoof.iter().filter(|&&s| s >= t).count() as f64 / spoof.len() as f64;
        points.push((fpr, tpr));
    }
    points
}

/// Minimum normalised detection cost (NIST's speaker-recognition measure, C_miss = C_fa = 1):
/// the lowest `(P_miss·p_target + P_fa·(1 − p_target)) / min(p_target, 1 − p_target)` over every
/// threshold, where `positives` (scored higher) at or above the threshold are detected. 0 is a
/// perfect split; 1 is what a system that always answers the same way achieves.
pub fn min_dcf(negatives: &[f64], positives: &[f64], p_target: f64) -> f64 {
    assert!(
        !negatives.is_empty() && !positives.is_empty(),
        "minDCF needs both classes"
    );
    let mut all: Vec<(f64, bool)> = negatives
        .iter()
        .map(|&s| (s, false))
        .chain(positives.iter().map(|&s| (s, true)))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (np, nn) = (positives.len() as f64, negatives.len() as f64);
    let cost = |missed: usize, accepted: usize| {
        (missed as f64 / np * p_target + accepted as f64 / nn * (1.0 - p_target))
            / p_target.min(1.0 - p_target)
    };
    // Threshold below everything: nothing missed, every negative accepted.
    let (mut missed, mut accepted) = (0usize, negatives.len());
    let mut best = cost(missed, accepted);
    let mut i = 0;
    while i < all.len() {
        let t = all[i].0;
        while i < all.len() && all[i].0 == t {
            if all[i].1 {
                missed += 1;
            } else {
                accepted -= 1;
            }
            i += 1;
        }
        best = best.min(cost(missed, accepted));
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separated_scores_have_zero_eer_and_full_auc() {
        let e = eer(&[0.1, 0.2, 0.3], &[0.7, 0.8]);
        assert_eq!(e.eer, 0.0);
        assert!(e.threshold > 0.3 && e.threshold <= 0.7);
        assert_eq!(auc(&[0.1, 0.2, 0.3], &[0.7, 0.8]), 1.0);
    }

    #[test]
    fn identical_distributions_sit_at_one_half() {
        let scores: Vec<f64> = (0..100).map(f64::from).collect();
        assert!((eer(&scores, &scores).eer - 0.5).abs() < 0.02);
        assert!((auc(&scores, &scores) - 0.5).abs() < 1e-9);
    }

    #[test]
    fn one_overlap_in_ten() {
        let bona: Vec<f64> = (0..10).map(f64::from).collect();
        let mut spoof: Vec<f64> = (10..20).map(f64::from).collect();
        spoof[0] = 5.5; // one spoof scores like a bonafide
        let e = eer(&bona, &spoof);
        assert!((e.eer - 0.1).abs() < 0.051, "{e:?}");
    }

    #[test]
    fn min_dcf_is_zero_for_a_clean_split_and_one_for_no_information() {
        assert_eq!(min_dcf(&[0.1, 0.2], &[0.8, 0.9], 0.01), 0.0);
        let same = [0.1, 0.2, 0.3, 0.4];
        assert!((min_dcf(&same, &same, 0.01) - 1.0).abs() < 1e-12);
        // One negative among a hundred above every positive: accepting it costs
        // 0.01 · 0.99 / 0.01 = 0.99, missing every positive costs 1; a threshold between
        // gives 0.99.
        let mut negatives = vec![0.0; 99];
        negatives.push(1.0);
        let cost = min_dcf(&negatives, &[0.5, 0.6], 0.01);
        assert!((cost - 0.99).abs() < 1e-12, "{cost}");
    }
}
