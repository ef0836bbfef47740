//! A logistic regression small enough to write out: standardised features, classes weighted
//! equally, L2-regularised gradient descent. The image corpus's leakage probes and the image
//! detector's feature baseline both use it, so their figures are read the same way.

/// A fitted regression: the features' standardisation and the weights on them.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Logistic {
    pub mean: Vec<f64>,
    pub sd: Vec<f64>,
    pub weights: Vec<f64>,
    pub bias: f64,
}

const STEPS: usize = 300;
const RATE: f64 = 0.5;
const L2: f64 = 1e-3;

impl Logistic {
    /// Fits on the rows `train` of `features` (labels: true is the positive class).
    pub fn fit(features: &[Vec<f64>], labels: &[bool], train: &[usize]) -> Self {
        Self::fit_weighted(features, labels, train, &vec![1.0; features.len()])
    }

    /// As [`Logistic::fit`], each row counting `row_weight[row]` times within its class
    /// (a row of weight 0 is left out of the loss; each class still weighs half in all).
    pub fn fit_weighted(
        features: &[Vec<f64>],
        labels: &[bool],
        train: &[usize],
        row_weight: &[f64],
    ) -> Self {
        let dims = features.first().map_or(0, Vec::len);
        let n = train.len().max(1) as f64;
        let mut mean = vec![0.0; dims];
        let mut sd = vec![0.0; dims];
        for &r in train {
            for (m, x) in mean.iter_mut().zip(&features[r]) {
                *m += x / n;
            }
        }
        for &r in train {
            for ((v, m), x) in sd.iter_mut().zip(&mean).zip(&features[r]) {
                *v += (x - m).powi(2) / n;
            }
        }
        let sd: Vec<f64> = sd.iter().map(|v| v.sqrt().max(1e-9)).collect();
        let mut model = Self {
            mean,
            sd,
            weights: vec![0.0; dims],
            bias: 0.0,
        };
        let z: Vec<Vec<f64>> = train
            .iter()
            .map(|&r| model.standard(&features[r]))
            .collect();
        let class_weight = |positive: bool| {
            let sum: f64 = train
                .iter()
                .filter(|&&r| labels[r] == positive)
                .map(|&r| row_weight[r])
                .sum();
            if sum > 0.0 { sum } else { 1.0 }
        };
        let (pos, neg) = (class_weight(true), class_weight(false));
        for _ in 0..STEPS {
            let mut gw = vec![0.0; dims];
            let mut gb = 0.0;
            for (x, &r) in z.iter().zip(train) {
                let p = 1.0 / (1.0 + (-model.linear(x)).exp());
                let (y, weight) = if labels[r] {
                    (1.0, 0.5 * row_weight[r] / pos)
                } else {
                    (0.0, 0.5 * row_weight[r] / neg)
                };
                let g = (p - y) * weight;
                gb += g;
                for (gd, xd) in gw.iter_mut().zip(x) {
                    *gd += g * xd;
                }
            }
            model.bias -= RATE * gb;
            for (wd, gd) in model.weights.iter_mut().zip(&gw) {
                *wd -= RATE * (gd + L2 * *wd);
            }
        }
        model
    }

    fn standard(&self, x: &[f64]) -> Vec<f64> {
        x.iter()
            .zip(&self.mean)
            .zip(&self.sd)
            .map(|((x, m), s)| (x - m) / s)
            .collect()
    }

    fn linear(&self, z: &[f64]) -> f64 {
        self.bias + self.weights.iter().zip(z).map(|(w, x)| w * x).sum::<f64>()
    }

    /// The log-odds of the positive class.
    pub fn score(&self, x: &[f64]) -> f64 {
        self.linear(&self.standard(x))
    }
}

/// Area under the ROC curve of `scores` for `labels` (true: positive), ties counted half.
pub fn auc(scores: &[f64], labels: &[bool]) -> f64 {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let (mut rank_sum, mut i) = (0.0, 0);
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        rank_sum += (i..=j).filter(|&k| labels[order[k]]).count() as f64 * rank;
        i = j + 1;
    }
    let pos = labels.iter().filter(|&&l| l).count() as f64;
    let neg = labels.len() as f64 - pos;
    if pos == 0.0 || neg == 0.0 {
        return 0.5;
    }
    (rank_sum - pos * (pos + 1.0) / 2.0) / (pos * neg)
}

#[cfg(test)]
mod tests {
    use super::Logistic;

    /// Feature 0 says the label; rows 40..60 say the opposite.
    fn data() -> (Vec<Vec<f64>>, Vec<bool>) {
        let rows = (0..60)
            .map(|i| {
                let positive = i % 2 == 0;
                let x = if positive == (i < 40) { 1.0 } else { -1.0 };
                (vec![x, (i % 7) as f64], positive)
            })
            .collect::<Vec<_>>();
        rows.into_iter().unzip()
    }

    #[test]
    fn a_row_of_weight_zero_is_left_out_and_a_heavy_one_counts_more() {
        let (features, labels) = data();
        let train: Vec<usize> = (0..60).collect();
        let agrees = |m: &Logistic| {
            (0..40)
                .filter(|&r| (m.score(&features[r]) > 0.0) == labels[r])
                .count()
        };
        let plain = Logistic::fit(&features, &labels, &train);
        let mut weight = vec![1.0; 60];
        weight[40..].fill(0.0);
        let without = Logistic::fit_weighted(&features, &labels, &train, &weight);
        weight[40..].fill(10.0);
        let against = Logistic::fit_weighted(&features, &labels, &train, &weight);
        assert_eq!(agrees(&without), 40);
        assert!(without.weights[0] > plain.weights[0]);
        assert!(against.weights[0] < 0.0, "{:?}", against.weights);
    }
}
