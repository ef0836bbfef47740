//! # aqiqat-provenance
//!
//! Labels that say where a piece of media came from: invisible watermarks today; C2PA
//! Content Credentials and metadata markers (XMP/IPTC `DigitalSourceType`, EXIF, PNG text
//! chunks) are the next parts of issue 6. A label, when present and valid, is stronger
//! evidence than any detector score, and its absence proves nothing: labels are easy to
//! strip.
//!
//! **Owns:** finding and checking labels, and writing the project's own.
//! **Must not touch:** decoding audio, detector scores, the verdict policy (the scan crate
//! weighs findings), signing evidence.

pub mod markers;
pub mod watermark;
