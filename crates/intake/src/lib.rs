//! # aqiqat-intake
//!
//! Turns untrusted bytes into clean, bounded, trustworthy audio — or a clear refusal.
//!
//! **Owns:** sniffing the real format from magic bytes ([`sniff`]), demuxing and decoding every
//! audio format a fraud victim is likely to receive (WAV PCM/float/G.711, FLAC, MP3, Ogg Vorbis,
//! Ogg Opus, AAC in MP4/M4A, the audio of MP4/MOV/WebM/MKV, raw AMR-NB), down-mixing to mono,
//! resampling to the analysis rate ([`resample`]), the SHA-256 of the exact input bytes
//! ([`hash`]), the [`MediaFacts`] that describe a file, and the [`Limits`] that keep memory and
//! time bounded whatever the input claims.
//!
//! Still images ([`image`]) are recognised, hashed, bounded and decoded to RGB here too, so
//! that provenance checks and (later) visual detectors get pixels from one place.
//!
//! **Must not touch:** models, scores, storage, HTTP or anything about verdicts. It reports
//! what the bytes are, never what they mean.
//!
//! ## Shape
//! Decoding is streaming: [`AudioStream`] yields mono `f32` chunks at the requested rate, so a
//! three-hour recording is processed in the same memory as a three-second one. [`probe`] is that
//! stream run to the end without keeping samples, which is why it reports the *decoded*
//! duration and notices truncation instead of trusting headers.
//!
//! Every failure is an [`IntakeError`] naming the file and the problem, classified by
//! [`IntakeError::is_bad_input`] into the user's fault (exit code 2, HTTP 4xx) or ours.

pub mod decode;
mod error;
mod facts;
pub mod hash;
pub mod image;
mod limits;
pub mod resample;
pub mod sniff;
mod stream;

pub use error::{IntakeError, Problem};
pub use facts::MediaFacts;
pub use limits::Limits;
pub use stream::{AudioStream, StreamInfo, load, load_bytes, probe, probe_bytes};

/// The analysis rate used when nothing else is asked for.
pub const DEFAULT_SAMPLE_RATE: u32 = 16_000;
/// The rate of narrow-band telephony (G.711, AMR-NB).
pub const TELEPHONY_SAMPLE_RATE: u32 = 8_000;
