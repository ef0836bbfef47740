//! The GE2E speaker encoder of Resemblyzer (Wan et al., "Generalized End-to-End Loss for
//! Speaker Verification", 2018): who is speaking, as a 256-value unit vector.
//!
//! Three stacked LSTM layers of 256 units over 40-band mel power frames (see
//! `aqiqat_dsp::speaker_mel`); the last layer's final hidden state through a linear layer,
//! ReLU, and L2 normalisation. Two recordings of one person land close together (cosine near
//! 1), different people further apart, whatever was said.
//!
//! Weights: `weights/ge2e-resemblyzer.safetensors`, converted from the pinned PyPI package
//! `resemblyzer==0.1.4` by `tools/speaker/convert.py`, which also writes the reference outputs
//! the port is held to. Names follow PyTorch's (`lstm.weight_ih_l0`, …); gates in PyTorch's
//! order (input, forget, cell, output).

use candle_core::{D, DType, Device, Result, Tensor};
use candle_nn::{Linear, Module, VarBuilder};

pub const N_MELS: usize = 40;
pub const HIDDEN: usize = 256;
pub const LAYERS: usize = 3;
pub const EMBEDDING: usize = 256;

/// The converted weights (f32, 5.7 MB).
pub const WEIGHTS: &str = "ge2e-resemblyzer.safetensors";

struct LstmLayer {
    /// (4·hidden, input), (4·hidden, hidden), and the two biases summed.
    w_ih: Tensor,
    w_hh: Tensor,
    bias: Tensor,
}

impl LstmLayer {
    fn new(input: usize, layer: usize, vb: &VarBuilder) -> Result<Self> {
        let w_ih = vb.get((4 * HIDDEN, input), &format!("weight_ih_l{layer}"))?;
        let w_hh = vb.get((4 * HIDDEN, HIDDEN), &format!("weight_hh_l{layer}"))?;
        let b_ih = vb.get(4 * HIDDEN, &format!("bias_ih_l{layer}"))?;
        let b_hh = vb.get(4 * HIDDEN, &format!("bias_hh_l{layer}"))?;
        Ok(Self {
            w_ih: w_ih.t()?.contiguous()?,
            w_hh: w_hh.t()?.contiguous()?,
            bias: (b_ih + b_hh)?,
        })
    }

    /// `x`: (batch, time, input) → every step's hidden state, (batch, time, hidden).
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (b, t, input) = x.dims3()?;
        // The input's share of every gate, for all steps in one product.
        let projected = x
            .reshape((b * t, input))?
            .matmul(&self.w_ih)?
            .broadcast_add(&self.bias)?
            .reshape((b, t, 4 * HIDDEN))?;
        let mut h = Tensor::zeros((b, HIDDEN), DType::F32, x.device())?;
        let mut c = h.clone();
        let mut out = Vec::with_capacity(t);
        for step in 0..t {
            let gates = (projected.narrow(1, step, 1)?.squeeze(1)? + h.matmul(&self.w_hh)?)?;
            let gates = gates.chunk(4, D::Minus1)?;
            let input_gate = candle_nn::ops::sigmoid(&gates[0])?;
            let forget_gate = candle_nn::ops::sigmoid(&gates[1])?;
            let cell = gates[2].tanh()?;
            let output_gate = candle_nn::ops::sigmoid(&gates[3])?;
            c = ((forget_gate * &c)? + (input_gate * cell)?)?;
            h = (output_gate * c.tanh()?)?;
            out.push(h.clone());
        }
        Tensor::stack(&out, 1)
    }
}

pub struct Ge2e {
    layers: Vec<LstmLayer>,
    linear: Linear,
}

impl Ge2e {
    pub fn new(vb: VarBuilder) -> Result<Self> {
        let lstm = vb.pp("lstm");
        let layers = (0..LAYERS)
            .map(|l| LstmLayer::new(if l == 0 { N_MELS } else { HIDDEN }, l, &lstm))
            .collect::<Result<_>>()?;
        Ok(Self {
            layers,
            linear: candle_nn::linear(HIDDEN, EMBEDDING, vb.pp("linear"))?,
        })
    }

    /// The encoder from converted weights (safetensors bytes), on the CPU.
    pub fn from_safetensors(bytes: Vec<u8>) -> Result<Self> {
        Self::new(VarBuilder::from_buffered_safetensors(
            bytes,
            DType::F32,
            &Device::Cpu,
        )?)
    }

    /// `mels`: (batch, frames, 40) mel power → (batch, 256) unit vectors.
    pub fn forward(&self, mels: &Tensor) -> Result<Tensor> {
        let mut x = mels.clone();
        for layer in &self.layers {
            x = layer.forward(&x)?;
        }
        let last = x.narrow(1, x.dim(1)? - 1, 1)?.squeeze(1)?;
        let raw = self.linear.forward(&last)?.relu()?;
        let norm = raw.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?;
        raw.broadcast_div(&norm)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_nn::VarMap;

    #[test]
    fn unit_vectors_one_per_example() {
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let model = Ge2e::new(vb).unwrap();
        // VarMap starts the biases at zero and the weights small; move the linear bias up so
        // the ReLU lets something through.
        for (name, var) in varmap.data().lock().unwrap().iter() {
            if name == "linear.bias" {
                var.set(&Tensor::ones(EMBEDDING, DType::F32, &Device::Cpu).unwrap())
                    .unwrap();
            }
        }
        let mels = Tensor::rand(0f32, 1.0, (3, 20, N_MELS), &Device::Cpu).unwrap();
        let e = model.forward(&mels).unwrap();
        assert_eq!(e.dims(), &[3, EMBEDDING]);
        for n in e.sqr().unwrap().sum(1).unwrap().to_vec1::<f32>().unwrap() {
            assert!((n - 1.0).abs() < 1e-5, "{n}");
        }
    }
}
