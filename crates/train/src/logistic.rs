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
        let pos = train.iter().filter(|&&r| labels[r]).count().max(1) as f64;
        let neg = (train.len() as f64 - pos).max(1.0);
        for _ in 0..STEPS {
            let mut gw = vec![0.0; dims];
            let mut gb = 0.0;
            for (x, &r) in z.iter().zip(train) {
                let p = 1.0 / (1.0 + (-model.linear(x)).exp());
                let (y, weight) = if labels[r] {
                    (1.0, 0.5 / pos)
                } else {
                    (0.0, 0.5 / neg)
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
