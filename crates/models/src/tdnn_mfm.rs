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
use candle_nn::{BatchNorm, Conv1d, Conv1dConfig, Linear, Module, ModuleT, VarBuilder};

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

struct Layer {
    conv: Conv1d,
    norm: BatchNorm,
}

impl Layer {
    fn new(vb: VarBuilder, c_in: usize, c_out: usize, kernel: usize) -> Result<Self> {
        Ok(Self {
            conv: candle_nn::conv1d(
                c_in,
                2 * c_out,
                kernel,
                Conv1dConfig::default(),
                vb.pp("conv"),
            )?,
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
        let diff = (inside - alone)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(diff < 1e-4, "{diff}");
    }
}
