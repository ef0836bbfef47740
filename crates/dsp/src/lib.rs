//! # aqiqat-dsp
//!
//! Signal features on plain `&[f32]` at a known sample rate: short-time Fourier transform
//! ([`stft`]), triangular filterbanks on linear or mel frequency scales ([`filterbank`]),
//! linear-frequency cepstral coefficients with deltas ([`lfcc`]), per-band phase statistics
//! ([`phase`]), an energy-based speech
//! detector ([`vad`]), the band a recording really carries ([`bandwidth`]), Whisper's log-mel input ([`whisper_mel`]), and the measurements that say whether a recording is fit to judge at
//! all: speech-to-noise ratio, music, two voices at once ([`quality`]).
//!
//! **Owns:** the exact arithmetic that turns samples into the matrices models read. A model's
//! weights are only valid with the feature configuration they were trained on, so every
//! configuration type here is plain data that is stored beside the weights.
//!
//! **Must not touch:** files, decoding, models or verdicts. Hot loops allocate nothing per
//! frame: every extractor owns its scratch buffers and reuses them.

pub mod bandwidth;
pub mod filterbank;
pub mod lfcc;
pub mod phase;
pub mod quality;
pub mod slaney;
pub mod speaker_mel;
pub mod stft;
pub mod vad;
pub mod whisper_mel;

pub use lfcc::{Lfcc, LfccConfig};
pub use phase::{PhaseBands, PhaseConfig};
pub use stft::Stft;
