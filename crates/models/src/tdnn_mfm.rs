//! A time-delay network with max-feature-map activations, over cepstral frames.
//!
//! Five 1-D convolutions along time (kernels 5, 5, 3, 3, 1; 13 frames of receptive field, about
//! 130 ms, on top of the ±40 ms the Δ/ΔΔ features already see), each followed by
//! max-feature-map and batch norm, then mean and standard deviation pooled over the frames,
//! then a small max-feature-map head that gives one logit, positive for synthetic speech.
//!
//! Max-feature-map (from Light CNN, and the LFCC-LCNN anti-spoofing baseline) makes each layer
//! emit `2c` maps and keep the element-wise maximum of the two halves: a learned competition
//! that acts as both activation and feature selection, and keeps the model small
//! (≈ 0.1 M parameters). The convolutions are *valid* (unpadded) on purpose: an output frame
//! depends only on input frames inside the window, so the network can run once over a long
//! chunk and any window's pooled statistics equal those of running it on that window alone.

use candle_core::{D, Result, Tensor};
use candle_nn::{BatchNorm, Linear, Module, ModuleT, VarBuilder};

/// Temporal kernel of each trunk layer.
pub const KERNELS: [usize; 5] = [5, 5, 3, 3, 1];

/// Frames consumed at the edges: a window of `n` frames yields `n - RECEPTIVE_FIELD + 1`
/// trunk frames.
pub const RECEPTIVE_FIELD: usize = 1
    + (KERNELS[0] - 1)
    + (KERNELS[1] - 1)
    + (KERNELS[2] - 1)
    + (KERNELS[3] - 1)
    + (KERNELS[4] - 1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TdnnMfmConfig {
    /// Feature dimensions per frame (60 for LFCC with Δ and ΔΔ).
    pub dims: usize,
    /// Channels of the hidden trunk layers.
    pub channels: usize,
    /// Channels of the last trunk layer, whose mean and deviation are pooled.
    pub embed: usize,
    /// Width of the head's hidden layer.
    pub hidden: usize,
    /// Trunk layers used, 0 to 5. With none, the head reads the pooled statistics of the
    /// normalised features themselves: a linear-statistics baseline in the same harness.
    pub layers: usize,
}

impl Default for TdnnMfmConfig {
    fn default() -> Self {
        Self {
            dims: 60,
            channels: 64,
            embed: 96,
            hidden: 32,
            layers: KERNELS.len(),
        }
    }
}

fn mfm(x: &Tensor, dim: usize) -> Result<Tensor> {
    let halves = x.chunk(2, dim)?;
    halves[0].maximum(&halves[1])
}

/// A valid (unpadded), stride-1 convolution along time, computed as a matrix product over the
/// unfolded input: `y[o, t] = b[o] + Σ_{i,j} w[o, i, j] · x[i, t + j]`.
///
/// Not `candle_nn::Conv1d`: in candle 0.11.1 on CPU, `conv_transpose1d` (the gradient with
/// respect to the input) and `conv1d` with a non-contiguous kernel (the gradient with respect to
/// the weights) give wrong values, so every convolutional run trained on wrong gradients (the
/// test `gradients_match_finite_differences` fails with `Conv1d` in its place). Narrow, stack
/// and matmul have correct
/// gradients, and their forward pass is the same im2col product candle runs. The weights keep
/// `Conv1d`'s names and layout, `[c_out, c_in, kernel]`.
struct TimeConv {
    weight: Tensor,
    bias: Tensor,
}

impl TimeConv {
    fn new(vb: VarBuilder, c_in: usize, c_out: usize, kernel: usize) -> Result<Self> {
        let bound = 1.0 / ((c_in * kernel) as f64).sqrt();
        Ok(Self {
            weight: vb.get_with_hints(
                (c_out, c_in, kernel),
                "weight",
                candle_nn::Init::Uniform {
                    lo: -bound,
                    up: bound,
                },
            )?,
            bias: vb.get_with_hints(c_out, "bias", candle_nn::Init::Const(0.0))?,
        })
    }

    /// `[batch, c_in, frames]` → `[batch, c_out, frames - kernel + 1]`.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (c_out, c_in, kernel) = self.weight.dims3()?;
        let (batch, _, frames) = x.dims3()?;
        let out_frames = frames + 1 - kernel;
        let taps = (0..kernel)
            .map(|j| x.narrow(2, j, out_frames))
            .collect::<Result<Vec<_>>>()?;
        // [batch, c_in, kernel, t] flattened so that row i·kernel + j holds x[i, t + j].
        let unfolded = Tensor::stack(&taps, 2)?.reshape((batch, c_in * kernel, out_frames))?;
        let w = self.weight.reshape((c_out, c_in * kernel))?;
        w.broadcast_left(batch)?
            .matmul(&unfolded)?
            .broadcast_add(&self.bias.reshape((1, c_out, 1))?)
    }
}

struct Layer {
    conv: TimeConv,
    norm: BatchNorm,
}

impl Layer {
    fn new(vb: VarBuilder, c_in: usize, c_out: usize, kernel: usize) -> Result<Self> {
        Ok(Self {
            conv: TimeConv::new(vb.pp("conv"), c_in, 2 * c_out, kernel)?,
            norm: candle_nn::batch_norm(c_out, 1e-5, vb.pp("norm"))?,
        })
    }

    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.norm.forward_t(&mfm(&self.conv.forward(x)?, 1)?, train)
    }
}

pub struct TdnnMfm {
    config: TdnnMfmConfig,
    /// Feature dimensions differ in scale by orders of magnitude (c0 against c19, cepstra
    /// against their deltas); normalising them first keeps the first layer well conditioned.
    input_norm: BatchNorm,
    layers: Vec<Layer>,
    hidden: Linear,
    out: Linear,
}

impl TdnnMfm {
    pub fn new(config: TdnnMfmConfig, vb: VarBuilder) -> Result<Self> {
        let mut layers = Vec::with_capacity(config.layers);
        let mut c_in = config.dims;
        for (i, &k) in KERNELS.iter().take(config.layers).enumerate() {
            let c_out = if i + 1 == config.layers {
                config.embed
            } else {
                config.channels
            };
            layers.push(Layer::new(vb.pp(format!("trunk.{i}")), c_in, c_out, k)?);
            c_in = c_out;
        }
        Ok(Self {
            config,
            input_norm: candle_nn::batch_norm(config.dims, 1e-5, vb.pp("input_norm"))?,
            layers,
            hidden: candle_nn::linear(2 * c_in, 2 * config.hidden, vb.pp("head.hidden"))?,
            out: candle_nn::linear(config.hidden, 1, vb.pp("head.out"))?,
        })
    }

    pub fn config(&self) -> &TdnnMfmConfig {
        &self.config
    }

    /// Frames consumed at the edges by this trunk: a window of `n` frames yields
    /// `n - receptive_field() + 1` trunk frames.
    pub fn receptive_field(&self) -> usize {
        1 + KERNELS[..self.config.layers]
            .iter()
            .map(|k| k - 1)
            .sum::<usize>()
    }

    /// `[batch, dims, frames]` → `[batch, embed, frames - receptive_field() + 1]`.
    pub fn trunk_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let mut y = self.input_norm.forward_t(x, train)?;
        for layer in &self.layers {
            y = layer.forward_t(&y, train)?;
        }
        Ok(y)
    }

    /// Mean and standard deviation over frames: `[batch, c, frames]` → `[batch, 2c]`.
    pub fn pool(y: &Tensor) -> Result<Tensor> {
        let mean = y.mean_keepdim(D::Minus1)?;
        let var = y.broadcast_sub(&mean)?.sqr()?.mean_keepdim(D::Minus1)?;
        let std = (var + 1e-5)?.sqrt()?;
        Tensor::cat(&[mean.squeeze(D::Minus1)?, std.squeeze(D::Minus1)?], 1)
    }

    /// Pooled statistics `[batch, 2 · embed]` → logits `[batch]`.
    pub fn head(&self, stats: &Tensor) -> Result<Tensor> {
        let h = mfm(&self.hidden.forward(stats)?, 1)?;
        self.out.forward(&h)?.squeeze(D::Minus1)
    }

    /// `[batch, dims, frames]` → one logit per item.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.head(&Self::pool(&self.trunk_t(x, train)?)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};
    use candle_nn::VarMap;

    fn model() -> (VarMap, TdnnMfm) {
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let m = TdnnMfm::new(TdnnMfmConfig::default(), vb).unwrap();
        (varmap, m)
    }

    #[test]
    fn shapes_and_size() {
        let (varmap, m) = model();
        let x = Tensor::randn(0f32, 1.0, (3, 60, 400), &Device::Cpu).unwrap();
        let y = m.trunk_t(&x, false).unwrap();
        assert_eq!(y.dims(), &[3, 96, 400 - RECEPTIVE_FIELD + 1]);
        assert_eq!(m.forward_t(&x, false).unwrap().dims(), &[3]);
        let params: usize = varmap.all_vars().iter().map(|v| v.elem_count()).sum();
        assert!(params < 200_000, "{params} parameters");
    }

    #[test]
    fn a_window_scores_the_same_inside_a_longer_chunk() {
        let (_, m) = model();
        let x = Tensor::randn(0f32, 1.0, (1, 60, 700), &Device::Cpu).unwrap();
        let whole = m.trunk_t(&x, false).unwrap();
        let start = 123;
        let inside = whole.narrow(2, start, 400 - RECEPTIVE_FIELD + 1).unwrap();
        let alone = m.trunk_t(&x.narrow(2, start, 400).unwrap(), false).unwrap();
        let diff = crate::max_abs_difference(&inside, &alone).unwrap();
        assert!(diff < 1e-4, "{diff}");
    }

    #[test]
    fn time_conv_is_the_cross_correlation_it_claims() {
        let dev = Device::Cpu;
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F64, &dev);
        let conv = TimeConv::new(vb, 3, 4, 5).unwrap();
        for v in varmap.all_vars() {
            v.set(&Tensor::randn(0f64, 1.0, v.dims(), &dev).unwrap())
                .unwrap();
        }
        let x = Tensor::randn(0f64, 1.0, (2, 3, 12), &dev).unwrap();
        let y: Vec<Vec<Vec<f64>>> = conv.forward(&x).unwrap().to_vec3().unwrap();
        let xv: Vec<Vec<Vec<f64>>> = x.to_vec3().unwrap();
        let wv: Vec<Vec<Vec<f64>>> = conv.weight.to_vec3().unwrap();
        let bv: Vec<f64> = conv.bias.to_vec1().unwrap();
        assert_eq!((y.len(), y[0].len(), y[0][0].len()), (2, 4, 8));
        for b in 0..2 {
            for o in 0..4 {
                for t in 0..8 {
                    let mut want = bv[o];
                    for i in 0..3 {
                        for j in 0..5 {
                            want += wv[o][i][j] * xv[b][i][t + j];
                        }
                    }
                    assert!((y[b][o][t] - want).abs() < 1e-9, "{b} {o} {t}");
                }
            }
        }
    }

    /// Back-propagated gradients of every trained variable, in training mode, against central
    /// differences in f64. candle 0.11.1's own `Conv1d` fails this (see `TimeConv`).
    #[test]
    fn gradients_match_finite_differences() {
        let dev = Device::Cpu;
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F64, &dev);
        let config = TdnnMfmConfig {
            dims: 6,
            channels: 4,
            embed: 4,
            hidden: 4,
            layers: 3,
        };
        let m = TdnnMfm::new(config, vb).unwrap();
        for v in varmap.all_vars() {
            v.set(&Tensor::randn(0f64, 0.5, v.dims(), &dev).unwrap())
                .unwrap();
        }
        let x = Tensor::randn(0f64, 1.0, (3, 6, 24), &dev).unwrap();
        let w = Tensor::new(&[1.0f64, -2.0, 0.7], &dev).unwrap();
        let loss = || {
            (m.forward_t(&x, true).unwrap() * &w)
                .unwrap()
                .sum_all()
                .unwrap()
        };
        let grads = loss().backward().unwrap();
        let data = varmap.data().lock().unwrap();
        let mut checked = 0;
        for (name, var) in data.iter() {
            let Some(grad) = grads.get(var.as_tensor()) else {
                assert!(name.contains("running"), "{name} has no gradient");
                continue;
            };
            let grad: Vec<f64> = grad.flatten_all().unwrap().to_vec1().unwrap();
            let base: Vec<f64> = var.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
            let value_at = |i: usize, delta: f64| {
                let mut p = base.clone();
                p[i] += delta;
                var.set(&Tensor::from_vec(p, var.dims(), &dev).unwrap())
                    .unwrap();
                loss().to_scalar::<f64>().unwrap()
            };
            for i in (0..base.len()).step_by(base.len().div_ceil(12)) {
                let eps = 1e-5;
                let numeric = (value_at(i, eps) - value_at(i, -eps)) / (2.0 * eps);
                assert!(
                    (numeric - grad[i]).abs() < 1e-5 * (1.0 + numeric.abs()),
                    "{name}[{i}]: back-propagated {} but finite differences {numeric}",
                    grad[i]
                );
                checked += 1;
            }
            var.set(&Tensor::from_vec(base, var.dims(), &dev).unwrap())
                .unwrap();
        }
        assert!(checked > 100, "{checked}");
    }
}
