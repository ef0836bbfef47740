//! # aqiqat-scan
//!
//! One input in, one result out: decodes through intake, runs every analyser that applies
//! (today the voice detector), and merges their findings into the result `aqiqat scan --json`
//! prints and the server returns. The top-level verdict policy lives here and only here.
//!
//! **Owns:** the shape of a scan result and the policy that merges analysers' findings.
//! **Must not touch:** decoding details (intake's), features and models (the analysers'),
//! storage, signing and reports (evidence's).

use aqiqat_intake::image::{ImageFacts, ImageLimits, load_image, sniff_image};
use aqiqat_intake::sniff::SNIFF_LEN;
use aqiqat_intake::{IntakeError, Limits, MediaFacts, Problem};
use aqiqat_provenance::credentials::TrustAnchors;
use aqiqat_provenance::{LabelKind, ProvenanceFindings, watermark};
use aqiqat_voice::detector::{
    Conditions, DetectorError, ModelId, Reach, ReasonCode, SpeechSpan, TimelineWindow, Verdict,
    VoiceDetector, VoiceFinding,
};
use serde::Serialize;
use std::io::{Cursor, Read, Seek};
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
    pub reason_code: Option<ReasonCode>,
    pub speech_s: f64,
    pub thresholds: aqiqat_voice::calibration::Thresholds,
    pub model: ModelId,
    pub conditions: Option<Conditions>,
    pub reach: Option<Reach>,
}

/// The version of the result's shape; bumped on any change a reader could notice.
pub const SCAN_SCHEMA: &str = "aqiqat.scan/3";

/// One analyser that ran: what the evidence record names it by.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnalyserRef {
    pub name: String,
    pub version: String,
    /// SHA-256 of its weights; `null` for analysers without any.
    pub weights_sha256: Option<String>,
}

/// What the input is: audio (decoded by intake) or a still image.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Media {
    Audio(MediaFacts),
    Image(ImageFacts),
}

impl Media {
    pub fn sha256(&self) -> &str {
        match self {
            Media::Audio(m) => &m.sha256,
            Media::Image(m) => &m.sha256,
        }
    }

    pub fn path(&self) -> &str {
        match self {
            Media::Audio(m) => &m.path,
            Media::Image(m) => &m.path,
        }
    }

    /// Seconds of audio; `None` for images.
    pub fn duration_s(&self) -> Option<f64> {
        match self {
            Media::Audio(m) => Some(m.duration_s),
            Media::Image(_) => None,
        }
    }
}

/// What the top-level verdict rests on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VerdictBasis {
    /// Content Credentials that hold and declare generative AI.
    ContentCredentials,
    /// The Stable Diffusion invisible watermark.
    Watermark,
    /// A metadata marker declaring AI, with no detector able to judge.
    Metadata,
    /// The synthetic-speech detector's calibrated score.
    VoiceDetector,
    /// Nothing could judge the input.
    Nothing,
}

/// Everything one scan established.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScanResult {
    /// Always [`SCAN_SCHEMA`].
    pub schema: &'static str,
    /// `synthetic`, `human` or `inconclusive`.
    pub verdict: Verdict,
    /// What the verdict rests on (see [`decide`] for the order).
    pub verdict_basis: VerdictBasis,
    /// Calibrated probability that the speech is synthetic, from the detector; `null` when it
    /// did not judge. A provenance label never sets it: a label is a statement, not a score.
    pub probability_synthetic: Option<f64>,
    /// Why the verdict is what it is when it does not come from the detector's score, why it
    /// is inconclusive, or what a `human` verdict cannot rule out, in plain words.
    pub reason: Option<String>,
    /// The same as a stable code, when the reason is the voice detector's.
    pub reason_code: Option<ReasonCode>,
    /// The timeline: 4 s windows with a 1 s hop over the speech (empty for images).
    pub segments: Vec<TimelineWindow>,
    /// Where speech was found.
    pub speech: Vec<SpeechSpan>,
    /// The input: hash of its exact bytes, container, and what it is.
    pub media: Media,
    /// The voice detector's finding; `null` for images.
    pub voice: Option<VoiceSummary>,
    /// Content Credentials, metadata markers, watermark.
    pub provenance: ProvenanceFindings,
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

/// The provenance analyser as evidence records name it.
fn provenance_ref() -> AnalyserRef {
    AnalyserRef {
        name: "provenance".into(),
        version: format!(
            "aqiqat-provenance {} with c2pa-rs {}",
            env!("CARGO_PKG_VERSION"),
            aqiqat_provenance::credentials::C2PA_SDK_VERSION
        ),
        weights_sha256: None,
    }
}

/// How much of an audio file metadata markers are looked for in: tags sit at the start (ID3)
/// or in an MP4's `moov`, which a file this size is read whole to find.
const AUDIO_MARKER_BYTES: u64 = 64 << 20;
/// How much of it is kept when the file is larger: the tags at its start.
const AUDIO_MARKER_HEAD: u64 = 4 << 20;
/// The largest `.c2pa` sidecar read.
const MAX_SIDECAR_BYTES: u64 = 16 << 20;

/// Holds the loaded analysers; build once, scan many (it is `Sync`).
pub struct Scanner {
    voice: VoiceDetector,
    limits: Limits,
    image_limits: ImageLimits,
    trust: TrustAnchors,
}

impl Scanner {
    /// The analysers compiled into this binary.
    pub fn embedded(limits: Limits) -> Result<Self, ScanError> {
        Ok(Self {
            voice: VoiceDetector::embedded()?,
            limits,
            image_limits: ImageLimits::default(),
            trust: TrustAnchors::default(),
        })
    }

    /// Root certificates (PEM) whose Content Credentials signers are trusted.
    pub fn with_trust_anchors(mut self, pem: Option<String>) -> Self {
        self.trust = TrustAnchors { pem };
        self
    }

    pub fn voice(&self) -> &VoiceDetector {
        &self.voice
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Scans a file: an image is read whole (within [`ImageLimits`]); audio streams through
    /// intake, and provenance reads the file again as a stream. A `.c2pa` file beside it
    /// (same name, extension `.c2pa`) is used as a sidecar manifest store.
    pub fn scan_file(&self, path: &Path) -> Result<ScanResult, ScanError> {
        let io = |e| IntakeError::new(path, Problem::Io(e));
        let mut file = std::fs::File::open(path).map_err(io)?;
        let size = file.metadata().map_err(io)?.len();
        let mut head = Vec::with_capacity(SNIFF_LEN);
        (&mut file)
            .take(SNIFF_LEN as u64)
            .read_to_end(&mut head)
            .map_err(io)?;
        let sidecar = read_sidecar(path).map_err(io)?;
        if sniff_image(&head).is_some() {
            self.image_limits
                .check_size(size)
                .map_err(|problem| IntakeError::new(path, problem))?;
            // The rest of the picture after the bytes already read.
            let mut bytes = head;
            file.read_to_end(&mut bytes).map_err(io)?;
            return self.scan_image(&path.display().to_string(), &bytes, sidecar.as_deref());
        }
        let media_type = audio_media_type(&head);
        let (media, samples) = aqiqat_intake::load(path, self.voice.sample_rate(), &self.limits)?;
        let keep = if size <= AUDIO_MARKER_BYTES {
            size
        } else {
            AUDIO_MARKER_HEAD
        };
        // The markers' bytes, then the same handle rewound as the stream C2PA reads.
        file.rewind().map_err(io)?;
        let mut markers = Vec::new();
        (&mut file)
            .take(keep)
            .read_to_end(&mut markers)
            .map_err(io)?;
        file.rewind().map_err(io)?;
        let provenance = aqiqat_provenance::examine(
            aqiqat_provenance::Input {
                stream: std::io::BufReader::new(file),
                head: &markers,
                media_type,
                sidecar: sidecar.as_deref(),
                pixels: None,
            },
            &self.trust,
        );
        self.scan_audio(media, &samples, provenance)
    }

    /// Scans bytes already in memory (an upload); `label` names them in messages.
    pub fn scan_bytes(&self, label: &str, bytes: Vec<u8>) -> Result<ScanResult, ScanError> {
        if sniff_image(&bytes).is_some() {
            return self.scan_image(label, &bytes, None);
        }
        // Provenance first, so that the bytes can then move into intake uncopied.
        let provenance = aqiqat_provenance::examine(
            aqiqat_provenance::Input {
                stream: Cursor::new(&bytes[..]),
                head: &bytes,
                media_type: audio_media_type(&bytes),
                sidecar: None,
                pixels: None,
            },
            &self.trust,
        );
        let (media, samples) =
            aqiqat_intake::load_bytes(label, bytes, self.voice.sample_rate(), &self.limits)?;
        self.scan_audio(media, &samples, provenance)
    }

    fn scan_audio(
        &self,
        media: MediaFacts,
        samples: &[f32],
        provenance: ProvenanceFindings,
    ) -> Result<ScanResult, ScanError> {
        let voice = self.voice.scan(samples)?;
        Ok(merge(Media::Audio(media), Some(voice), provenance))
    }

    fn scan_image(
        &self,
        label: &str,
        bytes: &[u8],
        sidecar: Option<&[u8]>,
    ) -> Result<ScanResult, ScanError> {
        let (facts, pixels) = load_image(label, bytes, &self.image_limits)?;
        let pixels = pixels.map(|p| watermark::RgbImage {
            width: p.width as usize,
            height: p.height as usize,
            data: p.pixels,
        });
        let provenance = aqiqat_provenance::examine(
            aqiqat_provenance::Input {
                stream: Cursor::new(bytes),
                head: bytes,
                media_type: facts.media_type,
                sidecar,
                pixels: pixels.as_ref(),
            },
            &self.trust,
        );
        Ok(merge(Media::Image(facts), None, provenance))
    }
}

fn read_sidecar(path: &Path) -> std::io::Result<Option<Vec<u8>>> {
    let sidecar = path.with_extension("c2pa");
    if sidecar == path {
        return Ok(None);
    }
    match std::fs::File::open(&sidecar) {
        Ok(f) => {
            let mut bytes = Vec::new();
            f.take(MAX_SIDECAR_BYTES).read_to_end(&mut bytes)?;
            Ok(Some(bytes))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// The media type of the image or audio file `head` (its first bytes) begins, as Content
/// Credentials tools name it; `None` for anything aqiqat does not scan.
pub fn media_type(head: &[u8]) -> Option<&'static str> {
    if let Some(format) = sniff_image(head) {
        return Some(format.media_type(head));
    }
    Some(audio_media_type(head)).filter(|t| *t != "application/octet-stream")
}

/// The media type Content Credentials tools use for the audio container `head` begins.
fn audio_media_type(head: &[u8]) -> &'static str {
    use aqiqat_intake::sniff::{Container, Sniffed, sniff};
    match sniff(&head[..head.len().min(SNIFF_LEN)]) {
        Sniffed::Media(Container::Wav) => "audio/wav",
        Sniffed::Media(Container::Mpa) => "audio/mpeg",
        Sniffed::Media(Container::Mp4) => "audio/mp4",
        Sniffed::Media(Container::Flac) => "audio/flac",
        Sniffed::Media(Container::Ogg) => "audio/ogg",
        Sniffed::Media(Container::Aiff) => "audio/aiff",
        _ => "application/octet-stream",
    }
}

/// The verdict policy, in order:
/// 1. Content Credentials that hold and declare generative AI decide `synthetic`: the
///    producer signed it about these exact bytes. No detector score outranks that.
/// 2. The Stable Diffusion watermark decides `synthetic` (a chance hit is ~3×10⁻⁹).
/// 3. The voice detector decides when it can judge (`synthetic` or `human`).
/// 4. A metadata marker declaring AI decides `synthetic` only when no detector could judge:
///    it is a claim anyone can write, so it never overrules a detector.
/// 5. Otherwise `inconclusive`, with the reason.
///
/// A label that says nothing about AI, or credentials that do not hold, never decide;
/// nothing in provenance can make a verdict `human`.
pub fn decide(
    voice: Option<&VoiceFinding>,
    provenance: &ProvenanceFindings,
) -> (Verdict, VerdictBasis, Option<String>) {
    let declared = provenance.declares_ai.as_ref();
    if let Some(d) = declared.filter(|d| d.by != LabelKind::Metadata) {
        let basis = match d.by {
            LabelKind::ContentCredentials => VerdictBasis::ContentCredentials,
            _ => VerdictBasis::Watermark,
        };
        let mut reason = format!("{}.", capitalise(&d.says));
        if let Some(v) = voice.filter(|v| v.verdict == Verdict::Human) {
            reason.push_str(&format!(
                " The voice detector alone would have said human (probability synthetic {:.2}); \
                 the label outranks it.",
                v.probability_synthetic.unwrap_or(0.0)
            ));
        }
        return (Verdict::Synthetic, basis, Some(reason));
    }
    if let Some(v) = voice.filter(|v| v.verdict != Verdict::Inconclusive) {
        return (v.verdict, VerdictBasis::VoiceDetector, v.reason.clone());
    }
    if let Some(d) = declared {
        let mut reason = format!(
            "{}. Metadata can be forged; no detector could judge this input",
            capitalise(&d.says)
        );
        if let Some(why) = voice.and_then(|v| v.reason.as_deref()) {
            reason.push_str(&format!(" ({why})"));
        }
        reason.push('.');
        return (Verdict::Synthetic, VerdictBasis::Metadata, Some(reason));
    }
    let reason = match voice {
        Some(v) => v.reason.clone(),
        None => Some(
            "no label declares this image AI-made, and aqiqat has no detector for images yet; \
             the absence of a label proves nothing"
                .to_owned(),
        ),
    };
    (Verdict::Inconclusive, VerdictBasis::Nothing, reason)
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Joins the analysers' findings into one result under [`decide`]'s policy.
fn merge(media: Media, voice: Option<VoiceFinding>, provenance: ProvenanceFindings) -> ScanResult {
    let (verdict, verdict_basis, reason) = decide(voice.as_ref(), &provenance);
    let reason_code = match verdict_basis {
        VerdictBasis::VoiceDetector | VerdictBasis::Nothing => {
            voice.as_ref().and_then(|v| v.reason_code)
        }
        _ => None,
    };
    let mut analysers = Vec::new();
    if let Some(v) = &voice {
        analysers.push(AnalyserRef {
            name: v.model.name.clone(),
            version: v.model.version.clone(),
            weights_sha256: Some(v.model.weights_sha256.clone()),
        });
    }
    analysers.push(provenance_ref());
    let probability_synthetic = voice.as_ref().and_then(|v| v.probability_synthetic);
    let (segments, speech, voice) = match voice {
        Some(v) => (
            v.timeline,
            v.speech,
            Some(VoiceSummary {
                verdict: v.verdict,
                probability_synthetic: v.probability_synthetic,
                score: v.score,
                reason: v.reason,
                reason_code: v.reason_code,
                speech_s: v.speech_s,
                thresholds: v.thresholds,
                model: v.model,
                conditions: v.conditions,
                reach: v.reach,
            }),
        ),
        None => (Vec::new(), Vec::new(), None),
    };
    ScanResult {
        schema: SCAN_SCHEMA,
        verdict,
        verdict_basis,
        probability_synthetic,
        reason,
        reason_code,
        segments,
        speech,
        media,
        voice,
        provenance,
        analysers,
        tool: TOOL,
    }
}
