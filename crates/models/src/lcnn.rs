//! A light CNN with max-feature-map activations over LFCC frames (after Wu et al., "Light CNN",
//! and its use as the ASVspoof 2019/2021 LFCC-LCNN countermeasure baseline).
//!
//! Input: `[batch, 1, frames, dims]` features, mean-normalised per window. Output: one logit per
//! window, positive for synthetic speech. Max-feature-map halves the channels by taking the
//! element-wise maximum of two halves: a learned competition between feature maps that is cheap
//! and keeps the network small (≈ 0.1 M parameters here), which is what a CPU detector needs.

use candle_core::{D, Result, Tensor};
use candle_nn::{BatchNorm, Conv2d, Conv2dConfig, Linear, Module, ModuleT, VarBuilder};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LcnnConfig {
    /// Feature dimensions per frame (60 for LFCC with Δ and ΔΔ).
    pub dims: usize,
    /// Channel width of the first block after max-feature-map.
    pub width: usize,
    pub dropout: f32,
}

impl Default for LcnnConfig {
    fn default() -> Self {
        Self {
            dims: 60,
            width: 16,
            dropout: 0.3,
        }
    }
}

/// Convolution followed by max-feature-map: `2c` output maps compete pairwise down to `c`.
struct MfmConv {
    conv: Conv2d,
}

impl MfmConv {
    fn new(vb: VarBuilder, c_in: usize, c_out: usize, kernel: usize) -> Result<Self> {
        let cfg = Conv2dConfig {
            padding: kernel / 2,
            ..Default::default()
        };
        Ok(Self {
            conv: candle_nn::conv2d(c_in, 2 * c_out, kernel, cfg, vb)?,
        })
    }
}

impl Module for MfmConv {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = self.conv.forward(x)?;
        let halves = y.chunk(2, 1)?;
        halves[0].maximum(&halves[1])
    }
}

/// A 1×1 MFM convolution (channel mixing) then a 3×3 one, then batch norm.
struct Block {
    mix: MfmConv,
    conv: MfmConv,
    norm: BatchNorm,
}

impl Block {
    fn new(vb: VarBuilder, c_in: usize, c_out: usize) -> Result<Self> {
        Ok(Self {
            mix: MfmConv::new(vb.pp("mix"), c_in, c_in, 1)?,
            conv: MfmConv::new(vb.pp("conv"), c_in, c_out, 3)?,
            norm: candle_nn::batch_norm(c_out, 1e-5, vb.pp("norm"))?,
        })
    }

    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let y = self.conv.forward(&self.mix.forward(x)?)?;
        self.norm.forward_t(&y, train)
    }
}

pub struct Lcnn {
    config: LcnnConfig,
    stem: MfmConv,
    blocks: Vec<Block>,
    hidden: Linear,
    out: Linear,
}

impl Lcnn {
    pub fn new(config: LcnnConfig, vb: VarBuilder) -> Result<Self> {
        let w = config.width;
        let stem = MfmConv::new(vb.pp("stem"), 1, w, 5)?;
        let widths = [(w, w + w / 2), (w + w / 2, 2 * w), (2 * w, 2 * w)];
        let blocks = widths
            .iter()
            .enumerate()
            .map(|(i, &(a, b))| Block::new(vb.pp(format!("block{i}")), a, b))
            .collect::<Result<Vec<_>>>()?;
        // Four 2×2 poolings leave dims / 16 frequency rows; mean and std over time pool each.
        let pooled = 2 * 2 * w * (config.dims / 16);
        Ok(Self {
            hidden: candle_nn::linear(pooled, 2 * w, vb.pp("hidden"))?,
            out: candle_nn::linear(w, 1, vb.pp("out"))?,
            config,
            stem,
            blocks,
        })
    }

    pub fn config(&self) -> &LcnnConfig {
        &self.config
    }

    /// Logits `[batch]` for features `[batch, 1, frames, dims]`; `frames` must be ≥ 16.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let mut y = self.stem.forward(x)?.max_pool2d(2)?;
        for block in &self.blocks {
            y = block.forward_t(&y, train)?.max_pool2d(2)?;
        }
        // [b, c, t, f] -> statistics over time t -> [b, c * f * 2]
        let (b, c, _t, f) = y.dims4()?;
        let mean = y.mean_keepdim(2)?;
        let std = y
            .broadcast_sub(&mean)?
            .sqr()?
            .mean_keepdim(2)?
            .affine(1.0, 1e-5)?
            .sqrt()?;
        let pooled = Tensor::cat(&[mean, std], 2)?.reshape((b, c * 2 * f))?;
        let h = self.hidden.forward(&pooled)?;
        let halves = h.chunk(2, D::Minus1)?;
        let h = halves[0].maximum(&halves[1])?;
        let h = if train {
            candle_nn::ops::dropout(&h, self.config.dropout)?
        } else {
            h
        };
        self.out.forward(&h)?.squeeze(D::Minus1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};
    use candle_nn::VarMap;

    #[test]
    fn shapes_and_determinism() {
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let model = Lcnn::new(LcnnConfig::default(), vb).unwrap();
        let x = Tensor::randn(0f32, 1.0, (3, 1, 400, 60), &Device::Cpu).unwrap();
        let a = model.forward_t(&x, false).unwrap();
        assert_eq!(a.dims(), &[3]);
        let b = model.forward_t(&x, false).unwrap();
        assert_eq!(a.to_vec1::<f32>().unwrap(), b.to_vec1::<f32>().unwrap());
        let params: usize = varmap.all_vars().iter().map(|v| v.elem_count()).sum();
        assert!(params < 500_000, "{params} parameters");
    }
}
