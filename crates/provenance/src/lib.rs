//! # aqiqat-provenance
//!
//! Labels that say where a piece of media came from: C2PA Content Credentials
//! ([`credentials`], validated by the Content Authenticity Initiative's `c2pa` SDK, and
//! written by [`credentials::label`]), metadata markers ([`markers`]: XMP/IPTC
//! `DigitalSourceType`, EXIF, generators' PNG text chunks) and the invisible watermark of
//! Stable Diffusion's reference scripts ([`watermark`]). A label, when present and valid, is
//! stronger evidence than any detector score, and its absence proves nothing: labels are easy
//! to strip.
//!
//! **Owns:** finding and checking labels, and writing the project's own.
//! **Must not touch:** decoding audio, detector scores, the verdict policy (the scan crate
//! weighs findings), signing evidence.

mod audio_tags;
pub mod credentials;
mod examine;
pub mod markers;
pub mod watermark;

pub use examine::{
    AiDeclaration, CAVEAT, Input, LabelKind, ProvenanceFindings, WatermarkFinding, examine,
};
