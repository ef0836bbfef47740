//! A small head over frozen frame embeddings (Whisper's, or any encoder's): a per-frame
//! projection, attentive statistics pooling, and one logit, positive for synthetic speech.
//!
//! Each frame is normalised and projected to `hidden` values (GELU); a linear score per frame,
//! softmaxed over time, weights the mean and standard deviation of the projected frames
//! (attentive statistics pooling, as in ECAPA-TDNN), so frames that carry a generator's trace
//! can outweigh the many that carry only the voice. Dropout on the projection while training.

use candle_core::{D, Result, Tensor};
use candle_nn::{LayerNorm, Linear, Module, VarBuilder};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttentiveHeadConfig {
    /// Values per input frame (512 for Whisper base).
    pub dims: usize,
    pub hidden: usize,
}

pub struct AttentiveHead {
    norm: LayerNorm,
    project: Linear,
    attend: Linear,
    out: Linear,
    config: AttentiveHeadConfig,
}

impl AttentiveHead {
    pub fn new(config: AttentiveHeadConfig, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            norm: candle_nn::layer_norm(config.dims, 1e-5, vb.pp("norm"))?,
            project: candle_nn::linear(config.dims, config.hidden, vb.pp("project"))?,
            attend: candle_nn::linear(config.hidden, 1, vb.pp("attend"))?,
            out: candle_nn::linear(2 * config.hidden, 1, vb.pp("out"))?,
            config,
        })
    }

    pub fn config(&self) -> &AttentiveHeadConfig {
        &self.config
    }

    /// `frames`: (batch, time, dims) → (batch,) logits.
    pub fn forward_t(&self, frames: &Tensor, train: bool) -> Result<Tensor> {
        let mut h = self
            .project
            .forward(&self.norm.forward(frames)?)?
            .gelu_erf()?;
        if train {
            h = candle_nn::ops::dropout(&h, 0.2)?;
        }
        // (batch, time, 1) weights summing to one over time.
        let weights = candle_nn::ops::softmax(&self.attend.forward(&h)?, 1)?;
        let mean = h.broadcast_mul(&weights)?.sum(1)?;
        let second = h.sqr()?.broadcast_mul(&weights)?.sum(1)?;
        let std = (second - mean.sqr()?)?.clamp(1e-6, f64::MAX)?.sqrt()?;
        let pooled = Tensor::cat(&[&mean, &std], D::Minus1)?;
        self.out.forward(&pooled)?.squeeze(D::Minus1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};
    use candle_nn::VarMap;

    #[test]
    fn one_logit_per_example_whatever_the_length() {
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let head = AttentiveHead::new(AttentiveHeadConfig { dims: 6, hidden: 4 }, vb).unwrap();
        for t in [1, 7, 50] {
            let x = Tensor::randn(0f32, 1.0, (3, t, 6), &Device::Cpu).unwrap();
            let y = head.forward_t(&x, false).unwrap();
            assert_eq!(y.dims(), &[3]);
            assert!(y.to_vec1::<f32>().unwrap().iter().all(|v| v.is_finite()));
        }
    }
}
