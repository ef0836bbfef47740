//! # aqiqat-visual
//!
//! Traces of image generators in pixels (issue 21): what the image detector reads from an
//! image, patch by patch, so that a score can also say *where* an image looks generated.
//!
//! **Owns:** the forensic features of decoded pixels (`residual`: the high-pass residual's
//! spectrum and statistics, colours' residual correlations, neighbouring-pixel relations), the
//! image models (`residual_cnn`: a small network on the residual that scores each 16×16 cell;
//! `clip`: the frozen CLIP encoder's first six blocks, on `aqiqat-kernels`' 8-bit linear
//! layers, and the head on its features), and the detector a scan runs (`detector`: the
//! shipped weights and thresholds, which reader decides and which draws the heat map, what it
//! may say, and which pictures it refuses to judge and why).
//! **Must not touch:** decoding and its limits (`aqiqat-intake::image`), provenance labels and
//! watermarks (`aqiqat-provenance`), verdicts and evidence (`aqiqat-scan`, `aqiqat-evidence`).

pub mod clip;
pub mod detector;
pub mod residual;
pub mod residual_cnn;

pub use residual::{FEATURES, PATCH, Reader, image_features, patch_features, spectrum_features};
