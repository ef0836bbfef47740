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

/// `dst[m×n] += lhs[m×k] · rhs[k×n]`, all row-major; `dst` and `lhs` rows `dst_stride` and
/// `lhs_stride` apart. One thread: the caller decides parallelism.
fn matmul_add(
    (m, n, k): (usize, usize, usize),
    dst: &mut [f32],
    dst_stride: usize,
    lhs: &[f32],
    lhs_stride: usize,
    rhs: &[f32],
) {
    assert!(
        m == 0 || dst.len() >= (m - 1) * dst_stride + n,
        "dst too small"
    );
    assert!(
        m == 0 || lhs.len() >= (m - 1) * lhs_stride + k,
        "lhs too small"
    );
    assert!(rhs.len() >= k * n, "rhs too small");
    assert!(n <= dst_stride && k <= lhs_stride);
    // SAFETY: the asserts above keep every element the strides reach inside the slices, and
    // `dst` is borrowed mutably, so it aliases neither input.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            dst_stride as isize,
            true,
            lhs.as_ptr(),
            1,
            lhs_stride as isize,
            rhs.as_ptr(),
            1,
            n as isize,
            1.0f32,
            1.0f32,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

struct LstmLayer {
    input: usize,
    /// (input, 4·hidden) and (hidden, 4·hidden), row-major: PyTorch's matrices transposed.
    w_ih: Vec<f32>,
    w_hh: Vec<f32>,
    /// The two biases summed.
    bias: Vec<f32>,
}

impl LstmLayer {
    fn new(input: usize, layer: usize, vb: &VarBuilder) -> Result<Self> {
        let w_ih = vb.get((4 * HIDDEN, input), &format!("weight_ih_l{layer}"))?;
        let w_hh = vb.get((4 * HIDDEN, HIDDEN), &format!("weight_hh_l{layer}"))?;
        let b_ih = vb.get(4 * HIDDEN, &format!("bias_ih_l{layer}"))?;
        let b_hh = vb.get(4 * HIDDEN, &format!("bias_hh_l{layer}"))?;
        let flat = |t: Tensor| t.t()?.contiguous()?.flatten_all()?.to_vec1::<f32>();
        Ok(Self {
            input,
            w_ih: flat(w_ih)?,
            w_hh: flat(w_hh)?,
            bias: (b_ih + b_hh)?.to_vec1::<f32>()?,
        })
    }

    /// `x`: (batch, time, input), row-major → every step's hidden state (batch, time, hidden),
    /// or only the last step's (batch, hidden) when `last_only`.
    ///
    /// One matrix product gives every step's input share of the gates; each step then adds the
    /// recurrent share in place and applies the gates in one pass, with no allocation per step.
    fn forward(&self, x: &[f32], batch: usize, time: usize, last_only: bool) -> Vec<f32> {
        let g = 4 * HIDDEN;
        let mut gates: Vec<f32> = self
            .bias
            .iter()
            .copied()
            .cycle()
            .take(batch * time * g)
            .collect();
        matmul_add(
            (batch * time, g, self.input),
            &mut gates,
            g,
            x,
            self.input,
            &self.w_ih,
        );
        let mut h = vec![0f32; batch * HIDDEN];
        let mut c = vec![0f32; batch * HIDDEN];
        let mut out = if last_only {
            Vec::new()
        } else {
            vec![0f32; batch * time * HIDDEN]
        };
        for step in 0..time {
            // Row b of this step's gates sits at (b·time + step)·g.
            let at = step * g;
            matmul_add(
                (batch, g, HIDDEN),
                &mut gates[at..],
                time * g,
                &h,
                HIDDEN,
                &self.w_hh,
            );
            for b in 0..batch {
                let row = &gates[at + b * time * g..][..g];
                let (i, rest) = row.split_at(HIDDEN);
                let (f, rest) = rest.split_at(HIDDEN);
                let (cell, o) = rest.split_at(HIDDEN);
                let hs = &mut h[b * HIDDEN..(b + 1) * HIDDEN];
                let cs = &mut c[b * HIDDEN..(b + 1) * HIDDEN];
                for j in 0..HIDDEN {
                    cs[j] = sigmoid(f[j]) * cs[j] + sigmoid(i[j]) * cell[j].tanh();
                    hs[j] = sigmoid(o[j]) * cs[j].tanh();
                }
                if !last_only {
                    out[(b * time + step) * HIDDEN..][..HIDDEN].copy_from_slice(hs);
                }
            }
        }
        if last_only { h } else { out }
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
        let (batch, time, _) = mels.dims3()?;
        let mut x = mels.flatten_all()?.to_vec1::<f32>()?;
        for (n, layer) in self.layers.iter().enumerate() {
            x = layer.forward(&x, batch, time, n + 1 == self.layers.len());
        }
        let last = Tensor::from_vec(x, (batch, HIDDEN), mels.device())?;
        let raw = self.linear.forward(&last)?.relu()?;
        let norm = raw.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?;
        raw.broadcast_div(&norm)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_nn::VarMap;

    /// The textbook recurrence, one scalar at a time, against the fused layer.
    #[test]
    fn fused_layer_is_the_textbook_lstm() {
        let (input, batch, time) = (3usize, 2usize, 4usize);
        let mut seed = 7u32;
        let mut next = || {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5
        };
        let g = 4 * HIDDEN;
        let layer = LstmLayer {
            input,
            w_ih: (0..input * g).map(|_| next()).collect(),
            w_hh: (0..HIDDEN * g).map(|_| next() * 0.2).collect(),
            bias: (0..g).map(|_| next()).collect(),
        };
        let x: Vec<f32> = (0..batch * time * input).map(|_| next()).collect();
        let fused = layer.forward(&x, batch, time, false);
        for b in 0..batch {
            let (mut h, mut c) = (vec![0f32; HIDDEN], vec![0f32; HIDDEN]);
            for t in 0..time {
                let xt = &x[(b * time + t) * input..][..input];
                let gate = |k: usize, j: usize| {
                    let col = k * HIDDEN + j;
                    layer.bias[col]
                        + (0..input)
                            .map(|i| xt[i] * layer.w_ih[i * g + col])
                            .sum::<f32>()
                        + (0..HIDDEN)
                            .map(|i| h[i] * layer.w_hh[i * g + col])
                            .sum::<f32>()
                };
                let gates: Vec<[f32; 4]> = (0..HIDDEN)
                    .map(|j| [gate(0, j), gate(1, j), gate(2, j), gate(3, j)])
                    .collect();
                for (j, [i, f, cell, o]) in gates.into_iter().enumerate() {
                    c[j] = sigmoid(f) * c[j] + sigmoid(i) * cell.tanh();
                    h[j] = sigmoid(o) * c[j].tanh();
                }
                let got = &fused[(b * time + t) * HIDDEN..][..HIDDEN];
                for j in 0..HIDDEN {
                    assert!(
                        (got[j] - h[j]).abs() < 1e-5,
                        "b{b} t{t} j{j}: {} vs {}",
                        got[j],
                        h[j]
                    );
                }
            }
            let last = layer.forward(&x, batch, time, true);
            assert_eq!(
                &last[b * HIDDEN..][..HIDDEN],
                &fused[(b * time + time - 1) * HIDDEN..][..HIDDEN]
            );
        }
    }

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
