//! # aqiqat-scan
//!
//! One input in, one result out: decodes through intake, runs every analyser that applies
//! (today the voice detector), and merges their findings into the result `aqiqat scan --json`
//! prints and the server returns. The top-level verdict policy lives here and only here.
//!
//! **Owns:** the shape of a scan result and the policy that merges analysers' findings.
//! **Must not touch:** decoding details (intake's), features and models (the analysers'),
//! storage, signing and reports (evidence's).

use aqiqat_intake::{IntakeError, Limits, MediaFacts};
use aqiqat_voice::detector::{
    DetectorError, ModelId, SpeechSpan, TimelineWindow, Verdict, VoiceDetector, VoiceFinding,
};
use aqiqat_voice::features::SAMPLE_RATE;
use serde::Serialize;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// The input could not be read or decoded (bad input, limits, I/O).
    #[error(transparent)]
    Intake(#[from] IntakeError),
    /// An analyser failed on input intake accepted: a defect of aqiqat, not of the input.
    #[error("analyser failed: {0}")]
    Analyser(#[from] DetectorError),
}

impl ScanError {
    pub fn is_bad_input(&self) -> bool {
        matches!(self, ScanError::Intake(e) if e.is_bad_input())
    }
}

/// The voice detector's part of a result, without the timeline (which is top-level).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VoiceSummary {
    pub verdict: Verdict,
    pub probability_synthetic: Option<f64>,
    pub score: Option<f64>,
    pub reason: Option<String>,
    pub speech_s: f64,
    pub thresholds: aqiqat_voice::calibration::Thresholds,
    pub model: ModelId,
}

/// The version of the result's shape; bumped on any change a reader could notice.
pub const SCAN_SCHEMA: &str = "aqiqat.scan/1";

/// One analyser that ran: what the evidence record names it by.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnalyserRef {
    pub name: String,
    pub version: String,
    /// SHA-256 of its weights; `null` for analysers without any.
    pub weights_sha256: Option<String>,
}

/// Everything one scan established.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScanResult {
    /// Always [`SCAN_SCHEMA`].
    pub schema: &'static str,
    /// `synthetic`, `human` or `inconclusive`.
    pub verdict: Verdict,
    /// Calibrated probability that the speech is synthetic; `null` when not judged.
    pub probability_synthetic: Option<f64>,
    /// Why the verdict is inconclusive, in plain words.
    pub reason: Option<String>,
    /// The timeline: 4 s windows with a 1 s hop over the speech.
    pub segments: Vec<TimelineWindow>,
    /// Where speech was found.
    pub speech: Vec<SpeechSpan>,
    /// The input: hash of its exact bytes, container, codec, duration.
    pub media: MediaFacts,
    pub voice: VoiceSummary,
    /// Every analyser that contributed, with its exact version and weights.
    pub analysers: Vec<AnalyserRef>,
    pub tool: Tool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tool {
    pub name: &'static str,
    pub version: &'static str,
}

pub const TOOL: Tool = Tool {
    name: "aqiqat",
    version: env!("CARGO_PKG_VERSION"),
};

/// Holds the loaded analysers; build once, scan many (it is `Sync`).
pub struct Scanner {
    voice: VoiceDetector,
    limits: Limits,
}

impl Scanner {
    /// The analysers compiled into this binary.
    pub fn embedded(limits: Limits) -> Result<Self, ScanError> {
        Ok(Self {
            voice: VoiceDetector::embedded()?,
            limits,
        })
    }

    pub fn voice(&self) -> &VoiceDetector {
        &self.voice
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub fn scan_file(&self, path: &Path) -> Result<ScanResult, ScanError> {
        let (media, samples) = aqiqat_intake::load(path, SAMPLE_RATE, &self.limits)?;
        self.scan_decoded(media, &samples)
    }

    /// Scans bytes already in memory (an upload); `label` names them in messages.
    pub fn scan_bytes(&self, label: &str, bytes: Vec<u8>) -> Result<ScanResult, ScanError> {
        let (media, samples) = aqiqat_intake::load_bytes(label, bytes, SAMPLE_RATE, &self.limits)?;
        self.scan_decoded(media, &samples)
    }

    fn scan_decoded(&self, media: MediaFacts, samples: &[f32]) -> Result<ScanResult, ScanError> {
        let voice = self.voice.scan(samples)?;
        Ok(merge(media, voice))
    }
}

/// With one analyser the result is its finding; the policy for weighing several (a valid
/// provenance label above any detector score) will live here.
fn merge(media: MediaFacts, voice: VoiceFinding) -> ScanResult {
    let analysers = vec![AnalyserRef {
        name: voice.model.name.clone(),
        version: voice.model.version.clone(),
        weights_sha256: Some(voice.model.weights_sha256.clone()),
    }];
    ScanResult {
        schema: SCAN_SCHEMA,
        verdict: voice.verdict,
        probability_synthetic: voice.probability_synthetic,
        reason: voice.reason.clone(),
        segments: voice.timeline,
        speech: voice.speech,
        media,
        voice: VoiceSummary {
            verdict: voice.verdict,
            probability_synthetic: voice.probability_synthetic,
            score: voice.score,
            reason: voice.reason,
            speech_s: voice.speech_s,
            thresholds: voice.thresholds,
            model: voice.model,
        },
        analysers,
        tool: TOOL,
    }
}
