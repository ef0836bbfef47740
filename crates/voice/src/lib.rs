//! # aqiqat-voice
//!
//! The synthetic-speech detector's shared ground: how 16 kHz mono audio becomes the feature
//! windows the model reads ([`features`]), how labelled manifests are read ([`manifest`]), how
//! detection quality is measured ([`metrics`]) and how raw scores become calibrated
//! probabilities ([`calibration`]).
//!
//! Training (`crates/train`), `aqiqat eval` and `aqiqat scan` all go through this crate, so the
//! features a model was trained on are, by construction, the features it is scored on.
//!
//! A detector is one network or several fused at the window level ([`card::FusedCard`],
//! [`analysis::analyse_fused`]).
//!
//! **Must not touch:** decoding (that is intake's; only intake's resampler is used here, for
//! fused members at a lower rate than the input), network definitions (models'), verdict
//! policy beyond the detector's own thresholds, storage.

pub mod analysis;
pub mod calibration;
pub mod card;
pub mod detector;
pub mod eval;
pub mod features;
pub mod manifest;
pub mod metrics;
