//! # aqiqat-speaker
//!
//! Who is speaking. A recording's voice becomes a voiceprint: a 256-value unit vector from
//! Resemblyzer's GE2E speaker encoder (`aqiqat_models::ge2e`, frozen, weights converted from a
//! pinned PyPI package and compiled in), computed exactly as Resemblyzer's `embed_utterance`
//! computes it: the level raised to −30 dBFS if quieter, 1.6 s partial utterances at 1.3 per
//! second, each embedded, averaged and renormalised. Two voiceprints compare by cosine.
//!
//! **Owns:** the voiceprint arithmetic and its configuration.
//! **Must not touch:** decoding (it takes 16 kHz samples), storage, verdicts on synthetic
//! speech, HTTP.

use aqiqat_dsp::speaker_mel::{self, N_MELS, SpeakerMel};
pub use aqiqat_models::ge2e::Precision;
use aqiqat_models::ge2e::{EMBEDDING, Ge2e};
use candle_core::{Device, Tensor};

/// The rate samples must have.
pub const SAMPLE_RATE: u32 = speaker_mel::RATE;
/// Mel frames per partial utterance (1.6 s).
pub const PARTIAL_FRAMES: usize = 160;
/// Partial utterances per second in Resemblyzer's `embed_utterance` (each 1.6 s partial
/// overlaps the next by about half).
pub const RESEMBLYZER_PARTIALS_PER_SECOND: f64 = 1.3;
/// Partial utterances per second in aqiqat's voiceprints: Resemblyzer's. The encoder's cost
/// grows with this rate (`docs/model-card-speaker.md` measures a lower one).
pub const PARTIALS_PER_SECOND: f64 = RESEMBLYZER_PARTIALS_PER_SECOND;
/// A last partial is kept only if the audio covers at least this share of it.
pub const MIN_COVERAGE: f64 = 0.75;
/// Quieter recordings are raised to this level before the mel (the encoder reads power, not
/// its logarithm, so level matters).
pub const TARGET_DBFS: f64 = -30.0;

pub static EMBEDDED_WEIGHTS: &[u8] = include_bytes!("../weights/ge2e-resemblyzer.safetensors");

/// Speech an enrolment needs, over all its recordings, in seconds.
pub const ENROL_SECONDS: f64 = 10.0;
/// Speech a recording needs before its voice is compared with a voiceprint, in seconds: about
/// one partial utterance and a half. Less is answered "cannot say", never guessed.
pub const CHECK_MIN_SPEECH_S: f64 = 2.0;

/// Where the cosine similarity between a recording and an enrolled voiceprint is read as one
/// answer or the other; between them the check cannot say.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Thresholds {
    /// From here up: the same speaker (set so that at most 1 % of different speakers reach it).
    pub same_speaker: f64,
    /// Below this: a different speaker (set so that at most 5 % of genuine same-speaker trials
    /// fall below it).
    pub different_speaker: f64,
}

/// The thresholds in force, measured by `aqiqat-train speaker-eval` on corpus v2's genuine
/// speakers (set on one half of them, checked on the other; `docs/model-card-speaker.md`).
pub const THRESHOLDS: Thresholds = Thresholds {
    same_speaker: 0.776,
    different_speaker: 0.716,
};

/// What a similarity says about who is speaking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    SameSpeaker,
    DifferentSpeaker,
    /// Between the thresholds, or the recording was not fit to compare.
    Inconclusive,
}

impl Thresholds {
    pub fn decide(&self, similarity: f64) -> Decision {
        if similarity >= self.same_speaker {
            Decision::SameSpeaker
        } else if similarity < self.different_speaker {
            Decision::DifferentSpeaker
        } else {
            Decision::Inconclusive
        }
    }
}

/// The stretch of `samples` (16 kHz) from the first to the last speech the energy detector
/// finds, and the seconds of speech in it: what a voiceprint is taken from. Pauses inside are
/// kept (the encoder was trained on running speech); silence before and after is not.
pub fn speech_span(samples: &[f32]) -> Option<(std::ops::Range<usize>, f64)> {
    let vad = aqiqat_dsp::vad::VadConfig {
        sample_rate: SAMPLE_RATE,
        ..Default::default()
    };
    let segments = aqiqat_dsp::vad::speech_segments(samples, &vad);
    let (first, last) = (segments.first()?, segments.last()?);
    let seconds =
        segments.iter().map(|s| s.end - s.start).sum::<usize>() as f64 / f64::from(SAMPLE_RATE);
    Some((first.start..last.end, seconds))
}

#[derive(Debug, thiserror::Error)]
pub enum SpeakerError {
    #[error("the speaker encoder failed: {0}")]
    Model(#[from] candle_core::Error),
    #[error("no audio to take a voiceprint from")]
    Empty,
}

/// A voice as a unit vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Voiceprint(pub Vec<f32>);

impl Voiceprint {
    /// Cosine similarity: 1 for the same direction.
    pub fn similarity(&self, other: &Voiceprint) -> f64 {
        self.0
            .iter()
            .zip(&other.0)
            .map(|(a, b)| f64::from(*a) * f64::from(*b))
            .sum()
    }

    /// The renormalised mean of several voiceprints (one person's recordings).
    pub fn mean(prints: &[Voiceprint]) -> Option<Voiceprint> {
        let first = prints.first()?;
        let mut sum = vec![0f32; first.0.len()];
        for p in prints {
            for (s, v) in sum.iter_mut().zip(&p.0) {
                *s += v;
            }
        }
        Some(Voiceprint(normalised(sum)))
    }
}

fn normalised(mut v: Vec<f32>) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v
}

/// Where each partial utterance starts, in mel frames, for `len` samples at `per_second`
/// partials a second (Resemblyzer's `compute_partial_slices`); and how many samples the audio
/// must be zero-padded to.
pub fn partial_starts(len: usize, per_second: f64) -> (Vec<usize>, usize) {
    let hop = speaker_mel::HOP;
    let n_frames = (len + 1).div_ceil(hop);
    let step = ((f64::from(SAMPLE_RATE) / per_second) / hop as f64)
        .round()
        .max(1.0) as usize;
    let steps = (n_frames + step + 1).saturating_sub(PARTIAL_FRAMES).max(1);
    let mut starts: Vec<usize> = (0..steps).step_by(step).collect();
    let last = *starts.last().expect("at least one");
    let coverage = (len as f64 - (last * hop) as f64) / (PARTIAL_FRAMES * hop) as f64;
    if coverage < MIN_COVERAGE && starts.len() > 1 {
        starts.pop();
    }
    let needed = (starts.last().expect("at least one") + PARTIAL_FRAMES) * hop;
    (starts, needed)
}

/// Raises `samples` to [`TARGET_DBFS`] if they are quieter (never lowers them).
pub fn raise_level(samples: &mut [f32]) {
    let int16 = 32_767.0f64;
    let mean_square = samples
        .iter()
        .map(|&s| (f64::from(s) * int16).powi(2))
        .sum::<f64>()
        / samples.len().max(1) as f64;
    let dbfs = 20.0 * (mean_square.sqrt() / int16).log10();
    let change = TARGET_DBFS - dbfs;
    if change.is_finite() && change > 0.0 {
        let gain = 10f64.powf(change / 20.0) as f32;
        samples.iter_mut().for_each(|s| *s *= gain);
    }
}

pub struct SpeakerEncoder {
    model: Ge2e,
    partials_per_second: f64,
    precision: Precision,
}

impl SpeakerEncoder {
    /// The encoder with the weights compiled into this build.
    pub fn embedded() -> Result<Self, SpeakerError> {
        Ok(Self {
            model: Ge2e::from_safetensors(EMBEDDED_WEIGHTS.to_vec())?,
            partials_per_second: PARTIALS_PER_SECOND,
            precision: Precision::Int16,
        })
    }

    /// The same encoder on another arithmetic (the shipped one is 16-bit integer products;
    /// f32 is what they are measured against).
    pub fn with_precision(mut self, precision: Precision) -> Self {
        self.precision = precision;
        self
    }

    /// The same encoder taking `per_second` partial utterances a second.
    pub fn with_partials_per_second(mut self, per_second: f64) -> Self {
        self.partials_per_second = per_second;
        self
    }

    /// The voiceprint of one recording's speech (16 kHz mono), and each partial's.
    pub fn embed(&self, samples: &[f32]) -> Result<(Voiceprint, Vec<Voiceprint>), SpeakerError> {
        if samples.is_empty() {
            return Err(SpeakerError::Empty);
        }
        let (starts, needed) = partial_starts(samples.len(), self.partials_per_second);
        let mut audio = samples.to_vec();
        raise_level(&mut audio);
        if needed >= audio.len() {
            audio.resize(needed, 0.0);
        }
        let mel = SpeakerMel::new().compute(&audio);
        let frames = mel.len() / N_MELS;
        let batch: Vec<f32> = starts
            .iter()
            .flat_map(|&s| {
                assert!(s + PARTIAL_FRAMES <= frames, "padding covers every partial");
                mel[s * N_MELS..(s + PARTIAL_FRAMES) * N_MELS]
                    .iter()
                    .copied()
            })
            .collect();
        let x = Tensor::from_vec(batch, (starts.len(), PARTIAL_FRAMES, N_MELS), &Device::Cpu)?;
        let partials: Vec<Voiceprint> = self
            .model
            .forward_with(&x, self.precision)?
            .to_vec2::<f32>()?
            .into_iter()
            .map(Voiceprint)
            .collect();
        debug_assert!(partials.iter().all(|p| p.0.len() == EMBEDDING));
        let whole = Voiceprint::mean(&partials).ok_or(SpeakerError::Empty)?;
        Ok((whole, partials))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partials_cover_the_recording_like_resemblyzer() {
        // 1 s: shorter than one partial, which is kept and padded.
        let r = RESEMBLYZER_PARTIALS_PER_SECOND;
        assert_eq!(partial_starts(16_000, r), (vec![0], 25_600));
        // 4 s: 401 frames; partials every 77 frames while they fit, the last kept if it
        // covers three quarters.
        let (starts, needed) = partial_starts(64_000, r);
        assert_eq!(starts, vec![0, 77, 154, 231]);
        assert_eq!(needed, (231 + 160) * 160);
        // At 0.625 a second the partials tile the audio without overlap.
        assert_eq!(partial_starts(64_000, 0.625).0, vec![0, 160]);
    }

    #[test]
    fn thresholds_split_three_ways() {
        let t = THRESHOLDS;
        assert_eq!(t.decide(0.9), Decision::SameSpeaker);
        assert_eq!(t.decide(t.same_speaker), Decision::SameSpeaker);
        assert_eq!(t.decide(0.75), Decision::Inconclusive);
        assert_eq!(t.decide(t.different_speaker), Decision::Inconclusive);
        assert_eq!(t.decide(0.2), Decision::DifferentSpeaker);
    }

    #[test]
    fn speech_span_drops_the_silence_around_speech() {
        let rate = SAMPLE_RATE as usize;
        let mut samples = vec![0f32; 3 * rate];
        for (i, s) in samples[rate..2 * rate].iter_mut().enumerate() {
            *s = 0.3 * (i as f32 * 0.07).sin();
        }
        let (range, seconds) = speech_span(&samples).unwrap();
        assert!(range.start.abs_diff(rate) < rate / 20, "{range:?}");
        assert!(range.end.abs_diff(2 * rate) < rate / 20, "{range:?}");
        assert!((seconds - 1.0).abs() < 0.05, "{seconds}");
        assert_eq!(speech_span(&vec![0f32; rate]), None);
    }

    #[test]
    fn level_is_raised_to_minus_30_dbfs_never_lowered() {
        let mut quiet = vec![0.001f32; 1000];
        raise_level(&mut quiet);
        let dbfs = 20.0 * (f64::from(quiet[0])).log10();
        assert!((dbfs + 30.0).abs() < 0.01, "{dbfs}");
        let mut loud = vec![0.5f32; 10];
        raise_level(&mut loud);
        assert_eq!(loud[0], 0.5);
        let mut silent = vec![0f32; 10];
        raise_level(&mut silent);
        assert_eq!(silent[0], 0.0);
    }
}
