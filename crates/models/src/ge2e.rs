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

use aqiqat_kernels::activation::lstm_cell;
use aqiqat_kernels::int16::{Linear16, Scratch16};
use aqiqat_kernels::matmul::{View, product};
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
    // A row of lhs must not run into the next: the gates read each input once.
    assert!(k <= lhs_stride);
    product(
        (m, k, n),
        View::rows(lhs, lhs_stride),
        View::rows(rhs, n),
        dst,
        dst_stride,
        true,
        1.0,
    );
}

/// Which arithmetic a forward pass runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// The products with hidden states in 16-bit integers (`aqiqat_kernels::int16`): the
    /// shipped path, held to Resemblyzer by the reference test.
    Int16,
    /// Every product in f32, as converted: the path the integer one is measured against.
    F32,
}

struct LstmLayer {
    input: usize,
    /// `[w_ih; w_hh]` stacked, (input + hidden, 4·hidden) row-major: PyTorch's matrices
    /// transposed, so that one product of `[x_t, h_t−1]` gives all four gates.
    stacked: Vec<f32>,
    /// The two biases summed.
    bias: Vec<f32>,
    /// The rows of `stacked` that read hidden states, in 16 bits: above the first layer one
    /// product reads `[x_t, h_t−1]` (both hidden states, on one scale) and carries the bias;
    /// in the first, `w_hh` alone. The first layer's input, 40 mel powers spread over many
    /// orders of magnitude, stays in f32 (3 % of the work): on one scale with the hidden state
    /// the voiceprints' cosine to the f32 path fell to 0.96, and on a 15-bit scale of its own
    /// to 0.993, against 0.99998 with it in f32.
    quant: Linear16,
}

/// One layer's state and the buffers its steps work in, for a batch.
struct LayerState {
    c: Vec<f32>,
    /// Per row, the part of the step's input the layer's main product reads, then `h_t−1`:
    /// `[x_t, h_t−1]` above the first layer, `h_t−1` alone in it. The cell update writes the
    /// new hidden state in place, where the next step and the layer above read it.
    joined: Vec<f32>,
    gates: Vec<f32>,
}

impl LayerState {
    fn width(&self) -> usize {
        self.joined.len() / (self.c.len() / HIDDEN)
    }

    /// Row `b`'s hidden state.
    fn h(&self, b: usize) -> &[f32] {
        let width = self.width();
        &self.joined[(b + 1) * width - HIDDEN..(b + 1) * width]
    }
}

impl LstmLayer {
    fn new(input: usize, layer: usize, vb: &VarBuilder) -> Result<Self> {
        let w_ih = vb.get((4 * HIDDEN, input), &format!("weight_ih_l{layer}"))?;
        let w_hh = vb.get((4 * HIDDEN, HIDDEN), &format!("weight_hh_l{layer}"))?;
        let b_ih = vb.get(4 * HIDDEN, &format!("bias_ih_l{layer}"))?;
        let b_hh = vb.get(4 * HIDDEN, &format!("bias_hh_l{layer}"))?;
        let stacked = Tensor::cat(&[w_ih, w_hh], 1)?
            .t()?
            .contiguous()?
            .flatten_all()?
            .to_vec1::<f32>()?;
        Ok(Self::from_parts(
            input,
            stacked,
            (b_ih + b_hh)?.to_vec1::<f32>()?,
        ))
    }

    fn from_parts(input: usize, stacked: Vec<f32>, bias: Vec<f32>) -> Self {
        let g = 4 * HIDDEN;
        assert_eq!(stacked.len(), (input + HIDDEN) * g);
        let quant = if Self::reads_hidden_input(input) {
            Linear16::from_f32(input + HIDDEN, g, &stacked, bias.clone())
        } else {
            Linear16::from_f32(HIDDEN, g, &stacked[input * g..], vec![0.0; g])
        };
        Self {
            input,
            stacked,
            bias,
            quant,
        }
    }

    /// Whether the layer's input is a hidden state (a layer above the first).
    fn reads_hidden_input(input: usize) -> bool {
        input == HIDDEN
    }

    /// Input columns the main product reads beside `h_t−1`.
    fn joined_input(&self) -> usize {
        if Self::reads_hidden_input(self.input) {
            self.input
        } else {
            0
        }
    }

    fn state(&self, batch: usize) -> LayerState {
        LayerState {
            c: vec![0.0; batch * HIDDEN],
            joined: vec![0.0; batch * (self.joined_input() + HIDDEN)],
            gates: vec![0.0; batch * 4 * HIDDEN],
        }
    }

    /// The first layer's step: `x` the step's input rows `[batch, input]`.
    #[inline(always)]
    fn step_first(
        &self,
        x: &[f32],
        state: &mut LayerState,
        precision: Precision,
        scratch: &mut Scratch16,
    ) {
        let g = 4 * HIDDEN;
        let batch = state.c.len() / HIDDEN;
        for row in state.gates.chunks_exact_mut(g) {
            row.copy_from_slice(&self.bias);
        }
        let (w_ih, w_hh) = self.stacked.split_at(self.input * g);
        matmul_add(
            (batch, g, self.input),
            &mut state.gates,
            g,
            x,
            self.input,
            w_ih,
        );
        match precision {
            Precision::Int16 => self
                .quant
                .add_into(&state.joined, &mut state.gates, g, scratch),
            Precision::F32 => matmul_add(
                (batch, g, HIDDEN),
                &mut state.gates,
                g,
                &state.joined,
                HIDDEN,
                w_hh,
            ),
        }
        update_cells(state);
    }

    /// A step above the first layer, reading the hidden states `below` just wrote.
    #[inline(always)]
    fn step_upper(
        &self,
        below: &LayerState,
        state: &mut LayerState,
        precision: Precision,
        scratch: &mut Scratch16,
    ) {
        let (g, width) = (4 * HIDDEN, self.input + HIDDEN);
        let batch = state.c.len() / HIDDEN;
        for b in 0..batch {
            state.joined[b * width..][..self.input].copy_from_slice(below.h(b));
        }
        match precision {
            Precision::Int16 => {
                self.quant
                    .forward_into(&state.joined, &mut state.gates, g, scratch)
            }
            Precision::F32 => {
                for row in state.gates.chunks_exact_mut(g) {
                    row.copy_from_slice(&self.bias);
                }
                matmul_add(
                    (batch, g, width),
                    &mut state.gates,
                    g,
                    &state.joined,
                    width,
                    &self.stacked,
                )
            }
        }
        update_cells(state);
    }
}

/// The cell update of every row from its gates, the new hidden state written into `joined`.
#[inline(always)]
fn update_cells(state: &mut LayerState) {
    let (g, width) = (4 * HIDDEN, state.width());
    for (b, row) in state.gates.chunks_exact(g).enumerate() {
        let (i, rest) = row.split_at(HIDDEN);
        let (f, rest) = rest.split_at(HIDDEN);
        let (cell, o) = rest.split_at(HIDDEN);
        let hs = &mut state.joined[(b + 1) * width - HIDDEN..(b + 1) * width];
        let cs = &mut state.c[b * HIDDEN..(b + 1) * HIDDEN];
        for j in 0..HIDDEN {
            hs[j] = lstm_cell(i[j], f[j], cell[j], o[j], &mut cs[j]);
        }
    }
}

/// The stacked layers over `x` (batch, time, input of the first layer), row-major → the last
/// layer's last hidden state (batch, hidden).
///
/// The layers advance together, one step at a time (each layer's step reads the one below's
/// fresh hidden state), so that no layer's whole output sequence is ever stored: the working
/// set is the weights and a few rows per example, which stay in cache.
fn run_layers(
    layers: &[LstmLayer],
    x: &[f32],
    (batch, time): (usize, usize),
    precision: Precision,
) -> Vec<f32> {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512dq")
    {
        // SAFETY: the CPU has the features the function is compiled for.
        return unsafe { run_layers_avx512(layers, x, (batch, time), precision) };
    }
    run_layers_portable(layers, x, (batch, time), precision)
}

/// The same code compiled for AVX-512, so that the gates' loop runs 16 lanes wide.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")]
unsafe fn run_layers_avx512(
    layers: &[LstmLayer],
    x: &[f32],
    shape: (usize, usize),
    precision: Precision,
) -> Vec<f32> {
    run_layers_portable(layers, x, shape, precision)
}

#[inline(always)]
fn run_layers_portable(
    layers: &[LstmLayer],
    x: &[f32],
    (batch, time): (usize, usize),
    precision: Precision,
) -> Vec<f32> {
    let (first, upper) = layers.split_first().expect("at least one layer");
    let input = first.input;
    assert_eq!(x.len(), batch * time * input);
    // Step-major, so that each step's input rows lie together.
    let mut by_step = vec![0f32; x.len()];
    for (b, example) in x.chunks_exact(time * input).enumerate() {
        for (t, frame) in example.chunks_exact(input).enumerate() {
            by_step[(t * batch + b) * input..][..input].copy_from_slice(frame);
        }
    }
    let mut states: Vec<LayerState> = layers.iter().map(|l| l.state(batch)).collect();
    let mut scratch = Scratch16::default();
    for rows in by_step.chunks_exact(batch * input) {
        first.step_first(rows, &mut states[0], precision, &mut scratch);
        for (n, layer) in upper.iter().enumerate() {
            let (below, rest) = states.split_at_mut(n + 1);
            layer.step_upper(&below[n], &mut rest[0], precision, &mut scratch);
        }
    }
    let last = states.last().expect("at least one layer");
    (0..batch).flat_map(|b| last.h(b).to_vec()).collect()
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

    /// `mels`: (batch, frames, 40) mel power → (batch, 256) unit vectors, on the shipped
    /// 16-bit path.
    pub fn forward(&self, mels: &Tensor) -> Result<Tensor> {
        self.forward_with(mels, Precision::Int16)
    }

    /// The same on the chosen arithmetic.
    pub fn forward_with(&self, mels: &Tensor, precision: Precision) -> Result<Tensor> {
        let (batch, time, _) = mels.dims3()?;
        let x = mels.flatten_all()?.to_vec1::<f32>()?;
        let last = run_layers(&self.layers, &x, (batch, time), precision);
        let last = Tensor::from_vec(last, (batch, HIDDEN), mels.device())?;
        let raw = self.linear.forward(&last)?.relu()?;
        let norm = raw.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?;
        raw.broadcast_div(&norm)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_nn::VarMap;

    /// The textbook recurrence, one scalar at a time, against the fused step on both paths
    /// (the first layer's form: an input that is no hidden state, in f32 on either path).
    #[test]
    fn fused_step_is_the_textbook_lstm() {
        let (input, batch, time) = (4usize, 2usize, 4usize);
        let mut seed = 7u32;
        let mut next = || {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5
        };
        let g = 4 * HIDDEN;
        let w_ih: Vec<f32> = (0..input * g).map(|_| next()).collect();
        let w_hh: Vec<f32> = (0..HIDDEN * g).map(|_| next() * 0.2).collect();
        let bias: Vec<f32> = (0..g).map(|_| next()).collect();
        let layer = LstmLayer::from_parts(input, [&w_ih[..], &w_hh[..]].concat(), bias.clone());
        let x: Vec<f32> = (0..batch * time * input).map(|_| next()).collect();
        for (precision, tolerance) in [(Precision::F32, 1e-5), (Precision::Int16, 2e-3)] {
            for b in 0..batch {
                let (mut h, mut c) = (vec![0f32; HIDDEN], vec![0f32; HIDDEN]);
                for t in 0..time {
                    let xt = &x[(b * time + t) * input..][..input];
                    let gate = |k: usize, j: usize| {
                        let col = k * HIDDEN + j;
                        bias[col]
                            + (0..input).map(|i| xt[i] * w_ih[i * g + col]).sum::<f32>()
                            + (0..HIDDEN).map(|i| h[i] * w_hh[i * g + col]).sum::<f32>()
                    };
                    let gates: Vec<[f32; 4]> = (0..HIDDEN)
                        .map(|j| [gate(0, j), gate(1, j), gate(2, j), gate(3, j)])
                        .collect();
                    for (j, [i, f, cell, o]) in gates.into_iter().enumerate() {
                        let sigmoid = |x: f32| 1.0 / (1.0 + (-x).exp());
                        c[j] = sigmoid(f) * c[j] + sigmoid(i) * cell.tanh();
                        h[j] = sigmoid(o) * c[j].tanh();
                    }
                    // The first t + 1 steps of every example, run as one batch.
                    let prefix: Vec<f32> = (0..batch)
                        .flat_map(|e| x[e * time * input..][..(t + 1) * input].to_vec())
                        .collect();
                    let ran = run_layers(
                        std::slice::from_ref(&layer),
                        &prefix,
                        (batch, t + 1),
                        precision,
                    );
                    let got = &ran[b * HIDDEN..][..HIDDEN];
                    for j in 0..HIDDEN {
                        assert!(
                            (got[j] - h[j]).abs() < tolerance,
                            "{precision:?} b{b} t{t} j{j}: {} vs {}",
                            got[j],
                            h[j]
                        );
                    }
                }
            }
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
