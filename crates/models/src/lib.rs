//! # aqiqat-models
//!
//! Network definitions, one self-contained file per model, built on candle. Weights live in
//! safetensors files trained by this project's own code (`crates/train`); nothing is ever
//! downloaded.
//!
//! **Owns:** layer shapes, parameter names, the forward pass.
//! **Must not touch:** decoding, features, files other than its weights, scores' meaning or
//! verdicts.

pub mod tdnn_mfm;
