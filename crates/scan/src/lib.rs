//! # aqiqat-scan
//!
//! One input in, one result out: decodes through intake, runs every analyser that applies (the
//! synthetic-speech detector, the image detector, provenance, and the speaker check when a
//! voiceprint is claimed),
//! and merges their findings ([`Finding`]) into the result `aqiqat scan --json` prints and the
//! server returns. The verdict policy ([`decide`]) lives here and only here.
//!
//! **Owns:** the shape of a scan result and the policy that merges analysers' findings.
//! **Must not touch:** decoding details (intake's), features and models (the analysers'),
//! storage, signing and reports (evidence's).

use aqiqat_intake::image::{ImageFacts, ImageLimits, load_image_into, sniff_image};
use aqiqat_intake::sniff::SNIFF_LEN;
use aqiqat_intake::{IntakeError, Limits, MediaFacts, Problem};
use aqiqat_provenance::credentials::TrustAnchors;
use aqiqat_provenance::{LabelKind, ProvenanceFindings, watermark};
use aqiqat_visual::detector::{ImageDetector, ImageDetectorError, ImageInput};
use aqiqat_voice::detector::{
    Conditions, DetectorError, ModelId, Reach, ReasonCode, SpeechSpan, TimelineWindow, Verdict,
    VoiceDetector, VoiceFinding,
};
use serde::Serialize;
use std::io::{Cursor, Read, Seek};
use std::path::Path;

pub mod speaker;

pub use aqiqat_speaker::{self, Voiceprint};
pub use aqiqat_visual::detector::{
    HeatMap, ImageFinding, ImageReader, ImageReason, ImageVerdict, ReaderRole,
};
pub use speaker::{
    Claim, ClaimVerdict, ClaimedVoice, EnrolError, EnrolmentFile, EnrolmentSample, SpeakerFinding,
};

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// The input could not be read or decoded (bad input, limits, I/O).
    #[error(transparent)]
    Intake(#[from] IntakeError),
    /// An analyser failed on input intake accepted: a defect of aqiqat, not of the input.
    #[error("analyser failed: {0}")]
    Analyser(#[from] DetectorError),
    /// The speaker encoder failed on audio intake accepted: a defect of aqiqat.
    #[error("speaker check failed: {0}")]
    Speaker(#[from] aqiqat_speaker::SpeakerError),
    /// The image detector failed on pixels intake decoded: a defect of aqiqat.
    #[error("image detector failed: {0}")]
    Image(#[from] ImageDetectorError),
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
pub const SCAN_SCHEMA: &str = "aqiqat.scan/6";

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
    /// The image detector's score above its strict threshold.
    ImageDetector,
    /// Nothing could judge the input.
    Nothing,
}

/// A link's part of a result: what an investigator needs to show what the link carried at that
/// moment, even after the post is gone.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct LinkSource {
    /// The link as given.
    pub url: String,
    /// Every URL followed after it: to the bytes for a direct link, to the page for a post.
    pub redirects: Vec<String>,
    /// When the link was resolved and its media retrieved (RFC 3339, UTC).
    pub retrieved_at: String,
    /// The media's `Content-Type`, as its server said it.
    pub content_type: Option<String>,
    /// How the media was found: `direct` (the link was the media), `page` (the page declared
    /// it: OpenGraph tags, `<video>`/`<audio>`) or `yt-dlp VERSION`.
    pub resolved_by: String,
    /// SHA-256 of the page as it was served, when the link was a page read by aqiqat.
    pub page_sha256: Option<String>,
    /// The media's own URL, when the link was a post.
    pub media_url: Option<String>,
    /// URLs followed from `media_url` to the bytes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub media_redirects: Vec<String>,
    /// Where the page declared it (`og:video`, `<video>`…, or `yt-dlp`).
    pub found_in: Option<String>,
    /// The item's title, when yt-dlp read one.
    pub title: Option<String>,
    /// This item's place among the post's media (from 1), and how many it had.
    pub item: usize,
    pub items: usize,
}

/// How far a link may go for a scan with these input limits: each item and all together
/// within `max_input_bytes`, durations checked from the first MiB, one `timeout`.
pub fn link_limits(
    limits: &Limits,
    allow_private: bool,
    timeout: std::time::Duration,
) -> aqiqat_link::ResolveLimits {
    aqiqat_link::ResolveLimits {
        fetch: aqiqat_link::FetchLimits {
            max_bytes: limits.max_input_bytes,
            timeout,
            allow_private,
            prefix_check: Some(declared_duration_check(limits)),
            ..Default::default()
        },
        max_duration_s: limits.max_duration_s,
        ..Default::default()
    }
}

/// A link's first bytes judged against the duration limit: a media file whose header declares
/// more than `limits.max_duration_s` is refused before the rest is downloaded. Headers that do
/// not state a duration (or a prefix too short to open) pass; the decoder's own check then
/// applies to the whole file.
pub fn declared_duration_check(limits: &Limits) -> aqiqat_link::PrefixCheck {
    let limits = *limits;
    aqiqat_link::PrefixCheck(std::sync::Arc::new(move |prefix: &[u8]| {
        let Ok(stream) =
            aqiqat_intake::AudioStream::from_bytes("link", prefix.to_vec(), None, &limits)
        else {
            return Ok(());
        };
        match stream.info().track.declared_duration_s {
            Some(declared) if declared > limits.max_duration_s => Err(format!(
                "the media declares {declared:.0} s, longer than the {:.0} s limit (--max-duration)",
                limits.max_duration_s
            )),
            _ => Ok(()),
        }
    }))
}

impl LinkSource {
    /// One source per media item a link resolved to, with its bytes, in the post's order.
    pub fn for_items(
        resolved: aqiqat_link::Resolved,
        retrieved_at: &str,
    ) -> Vec<(LinkSource, Vec<u8>)> {
        let items = resolved.items.len();
        let direct = resolved.resolved_by == aqiqat_link::ResolvedBy::Direct;
        let resolved_by = resolved.resolved_by.label();
        resolved
            .items
            .into_iter()
            .enumerate()
            .map(|(i, item)| {
                let (redirects, media_url, media_redirects) = if direct {
                    (item.redirects, None, Vec::new())
                } else {
                    (
                        resolved.redirects.clone(),
                        Some(item.media_url),
                        item.redirects,
                    )
                };
                let source = LinkSource {
                    url: resolved.url.clone(),
                    redirects,
                    retrieved_at: retrieved_at.to_owned(),
                    content_type: item.content_type,
                    resolved_by: resolved_by.clone(),
                    page_sha256: resolved.page_sha256.clone(),
                    media_url,
                    media_redirects,
                    found_in: item.found_in,
                    title: item.title,
                    item: i + 1,
                    items,
                };
                (source, item.bytes)
            })
            .collect()
    }

    /// Where the bytes came from.
    pub fn bytes_url(&self) -> &str {
        match &self.media_url {
            Some(m) => self.media_redirects.last().unwrap_or(m),
            None => self.redirects.last().unwrap_or(&self.url),
        }
    }
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
    /// The image detector's finding, with its heat map; `null` for audio.
    pub image: Option<ImageFinding>,
    /// Content Credentials, metadata markers, watermark.
    pub provenance: ProvenanceFindings,
    /// The speaker check against a claimed voiceprint; `null` when none was claimed.
    pub speaker: Option<SpeakerFinding>,
    /// The joint answer about the claimed person (speaker check and synthetic check together);
    /// `null` when no voiceprint was claimed.
    pub claim: Option<Claim>,
    /// Where the input was fetched from when it came by a link; `null` for files and uploads.
    pub source: Option<LinkSource>,
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
    image: ImageDetector,
    speaker: speaker::SpeakerCheck,
    limits: Limits,
    image_limits: ImageLimits,
    trust: TrustAnchors,
}

impl Scanner {
    /// The analysers compiled into this binary.
    pub fn embedded(limits: Limits) -> Result<Self, ScanError> {
        Ok(Self {
            voice: VoiceDetector::embedded()?,
            image: ImageDetector::embedded()?,
            speaker: speaker::SpeakerCheck::embedded()?,
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

    /// Another voice detector in place of the embedded one (a candidate being measured).
    pub fn with_voice(mut self, voice: VoiceDetector) -> Self {
        self.voice = voice;
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
        self.scan_file_claiming(path, None)
    }

    /// [`Scanner::scan_file`], and with `claimed` the speaker check against that voiceprint.
    pub fn scan_file_claiming(
        &self,
        path: &Path,
        claimed: Option<&ClaimedVoice>,
    ) -> Result<ScanResult, ScanError> {
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
            return self.scan_image(
                &path.display().to_string(),
                &bytes,
                sidecar.as_deref(),
                claimed,
            );
        }
        let media_type = audio_media_type(&head);
        let (media, samples) = aqiqat_intake::load(path, self.voice.sample_rate(), &self.limits)?;
        let speaker_audio = match claimed {
            Some(_) => Some(self.speaker_audio(&samples, || {
                aqiqat_intake::load(path, aqiqat_speaker::SAMPLE_RATE, &self.limits)
            })?),
            None => None,
        };
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
        self.scan_audio(media, &samples, provenance, claimed, speaker_audio)
    }

    /// Scans bytes already in memory (an upload); `label` names them in messages.
    pub fn scan_bytes(&self, label: &str, bytes: Vec<u8>) -> Result<ScanResult, ScanError> {
        self.scan_bytes_claiming(label, bytes, None)
    }

    /// [`Scanner::scan_bytes`], and with `claimed` the speaker check against that voiceprint.
    pub fn scan_bytes_claiming(
        &self,
        label: &str,
        bytes: Vec<u8>,
        claimed: Option<&ClaimedVoice>,
    ) -> Result<ScanResult, ScanError> {
        if sniff_image(&bytes).is_some() {
            return self.scan_image(label, &bytes, None, claimed);
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
        // The speaker check's copy is decoded first when it needs another rate, while the
        // bytes are still here.
        let wideband = match claimed {
            Some(_) if self.voice.sample_rate() != aqiqat_speaker::SAMPLE_RATE => Some(
                aqiqat_intake::load_bytes(
                    label,
                    bytes.clone(),
                    aqiqat_speaker::SAMPLE_RATE,
                    &self.limits,
                )?
                .1,
            ),
            _ => None,
        };
        let (media, samples) =
            aqiqat_intake::load_bytes(label, bytes, self.voice.sample_rate(), &self.limits)?;
        let speaker_audio = match (claimed, wideband) {
            (None, _) => None,
            (Some(_), Some(w)) => Some(w),
            (Some(_), None) => Some(samples.clone()),
        };
        self.scan_audio(media, &samples, provenance, claimed, speaker_audio)
    }

    /// Scans bytes fetched from a link; the result names the link (`source`).
    pub fn scan_link(
        &self,
        source: LinkSource,
        bytes: Vec<u8>,
        claimed: Option<&ClaimedVoice>,
    ) -> Result<ScanResult, ScanError> {
        let label = source.bytes_url().to_owned();
        let mut result = self.scan_bytes_claiming(&label, bytes, claimed)?;
        result.source = Some(source);
        Ok(result)
    }

    /// The speaker check alone, on audio already at the speaker encoder's rate
    /// ([`aqiqat_speaker::SAMPLE_RATE`]): for live calls, which judge their own windows.
    pub fn check_speaker(
        &self,
        samples: &[f32],
        claimed: &ClaimedVoice,
    ) -> Result<SpeakerFinding, ScanError> {
        Ok(self.speaker.check(Some(samples), None, claimed)?)
    }

    /// The voiceprint of one known-genuine recording (a file), for an enrolment.
    pub fn enrolment_sample_file(&self, path: &Path) -> Result<EnrolmentSample, EnrolError> {
        let label = path.display().to_string();
        let head =
            read_head(path).map_err(|e| ScanError::from(IntakeError::new(path, Problem::Io(e))))?;
        if sniff_image(&head).is_some() {
            return Err(not_audio(&label));
        }
        let (media, samples) = aqiqat_intake::load(path, self.voice.sample_rate(), &self.limits)
            .map_err(ScanError::from)?;
        let wideband = self.speaker_audio(&samples, || {
            aqiqat_intake::load(path, aqiqat_speaker::SAMPLE_RATE, &self.limits)
        })?;
        self.enrolment_sample(label, media.sha256, &samples, &wideband)
    }

    /// The voiceprint of one known-genuine recording (bytes in memory), for an enrolment.
    pub fn enrolment_sample_bytes(
        &self,
        label: &str,
        bytes: Vec<u8>,
    ) -> Result<EnrolmentSample, EnrolError> {
        if sniff_image(&bytes).is_some() {
            return Err(not_audio(label));
        }
        let wideband = if self.voice.sample_rate() != aqiqat_speaker::SAMPLE_RATE {
            Some(
                aqiqat_intake::load_bytes(
                    label,
                    bytes.clone(),
                    aqiqat_speaker::SAMPLE_RATE,
                    &self.limits,
                )
                .map_err(ScanError::from)?
                .1,
            )
        } else {
            None
        };
        let (media, samples) =
            aqiqat_intake::load_bytes(label, bytes, self.voice.sample_rate(), &self.limits)
                .map_err(ScanError::from)?;
        let wideband = wideband.unwrap_or_else(|| samples.clone());
        self.enrolment_sample(label.to_owned(), media.sha256, &samples, &wideband)
    }

    fn enrolment_sample(
        &self,
        label: String,
        sha256: String,
        samples: &[f32],
        wideband: &[f32],
    ) -> Result<EnrolmentSample, EnrolError> {
        let voice = self.voice.scan(samples).map_err(ScanError::from)?;
        speaker::refuse_unfit(&label, &voice)?;
        let Some((voiceprint, speech_s)) = self.speaker.voiceprint(wideband)? else {
            return Err(EnrolError::Unfit {
                label,
                code: ReasonCode::NoSpeech,
                reason: "cannot enrol from it: no speech was found".into(),
            });
        };
        Ok(EnrolmentSample {
            label,
            file: EnrolmentFile { sha256, speech_s },
            voiceprint,
            synthetic_check: voice.verdict,
        })
    }

    /// The recording at the speaker encoder's rate: `samples` themselves when the detector
    /// already runs at it, else decoded again by `load` (decoding costs far less than either
    /// network, and each analyser then sees exactly what a scan of its own would).
    fn speaker_audio(
        &self,
        samples: &[f32],
        load: impl FnOnce() -> Result<(MediaFacts, Vec<f32>), IntakeError>,
    ) -> Result<Vec<f32>, ScanError> {
        if self.voice.sample_rate() == aqiqat_speaker::SAMPLE_RATE {
            Ok(samples.to_vec())
        } else {
            Ok(load()?.1)
        }
    }

    fn scan_audio(
        &self,
        media: MediaFacts,
        samples: &[f32],
        provenance: ProvenanceFindings,
        claimed: Option<&ClaimedVoice>,
        speaker_audio: Option<Vec<f32>>,
    ) -> Result<ScanResult, ScanError> {
        let voice = self.voice.scan(samples)?;
        let mut findings = Vec::with_capacity(3);
        if let Some(claimed) = claimed {
            findings.push(Finding::Speaker(self.speaker.check(
                speaker_audio.as_deref(),
                Some(&voice),
                claimed,
            )?));
        }
        findings.push(Finding::Voice(voice));
        findings.push(Finding::Provenance(provenance));
        Ok(merge(Media::Audio(media), findings))
    }

    fn scan_image(
        &self,
        label: &str,
        bytes: &[u8],
        sidecar: Option<&[u8]>,
        claimed: Option<&ClaimedVoice>,
    ) -> Result<ScanResult, ScanError> {
        let (facts, pixels) =
            load_image_into(label, bytes, &self.image_limits, PIXEL_BUFFER.take())?;
        let image = match &pixels {
            Some(p) => self.image.scan(
                p,
                ImageInput {
                    palette: facts.container == "gif",
                    jpeg_quality: aqiqat_visual::detector::jpeg_quality(bytes),
                },
            )?,
            None => self.image.not_decoded("HEIF/AVIF"),
        };
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
        if let Some(pixels) = pixels.filter(|p| p.data.capacity() <= KEPT_PIXEL_BUFFER) {
            PIXEL_BUFFER.set(pixels.data);
        }
        let mut findings = vec![Finding::Image(image), Finding::Provenance(provenance)];
        if let Some(claimed) = claimed {
            findings.push(Finding::Speaker(self.speaker.check(None, None, claimed)?));
        }
        Ok(merge(Media::Image(facts), findings))
    }
}

thread_local! {
    /// The last picture's pixel memory, for the next picture this thread decodes: a
    /// 12-megapixel photo's 36 MB is more than the system allocator recycles, and fresh
    /// memory costs some 9,000 page faults per picture (`load_image_into` says more).
    static PIXEL_BUFFER: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

/// The largest pixel buffer a thread keeps between pictures (a 20-megapixel photo's), so that
/// one huge picture does not hold hundreds of megabytes for the thread's life.
const KEPT_PIXEL_BUFFER: usize = 64 << 20;

fn read_head(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(SNIFF_LEN);
    std::fs::File::open(path)?
        .take(SNIFF_LEN as u64)
        .read_to_end(&mut head)?;
    Ok(head)
}

fn not_audio(label: &str) -> EnrolError {
    EnrolError::Unfit {
        label: label.to_owned(),
        code: ReasonCode::NoSpeech,
        reason: "cannot enrol from it: it is an image, not a recording of a voice".into(),
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

/// One analyser's findings on one input: what [`decide`] weighs and the result carries. A new
/// analyser (images, video) is a new variant here, a field in [`ScanResult`], and a step in
/// [`decide`].
#[derive(Debug, Clone)]
pub enum Finding {
    /// The synthetic-speech detector.
    Voice(VoiceFinding),
    /// Content Credentials, metadata markers, the watermark.
    Provenance(ProvenanceFindings),
    /// The speaker check against a claimed voiceprint.
    Speaker(SpeakerFinding),
    /// The image detector.
    Image(ImageFinding),
}

/// What [`decide`] concludes.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub verdict: Verdict,
    pub basis: VerdictBasis,
    pub reason: Option<String>,
    /// The joint answer about a claimed person; `None` when no voiceprint was claimed.
    pub claim: Option<Claim>,
}

/// The verdict policy, in order:
/// 1. Content Credentials that hold and declare generative AI decide `synthetic`: the
///    producer signed it about these exact bytes. No detector score outranks that.
/// 2. The Stable Diffusion watermark decides `synthetic` (a chance hit is ~3×10⁻⁹).
/// 3. The voice detector decides when it can judge (`synthetic` or `human`); the image
///    detector decides `synthetic` when its score is above its strict threshold, and never
///    decides anything else: it cannot vouch for an image.
/// 4. A metadata marker declaring AI decides `synthetic` only when no detector could judge:
///    it is a claim anyone can write, so it never overrules a detector.
/// 5. Otherwise `inconclusive`, with the reason.
/// 6. When a voiceprint is claimed, the speaker check joins the verdict of steps 1–5: a
///    different speaker is not the claimed person, whatever made the voice; the same speaker
///    with a `synthetic` verdict is a clone of that person; the same speaker with `human` is
///    consistent with that person (never proof: a clone is made to match); anything the
///    speaker check cannot judge, or a match whose synthetic check could not judge, is
///    inconclusive with the reason. The speaker check never changes steps 1–5.
///
/// A label that says nothing about AI, or credentials that do not hold, never decide;
/// nothing in provenance can make a verdict `human`.
pub fn decide(findings: &[Finding]) -> Decision {
    let mut voice = None;
    let mut provenance = None;
    let mut speaker = None;
    let mut image = None;
    for f in findings {
        match f {
            Finding::Voice(v) => voice = Some(v),
            Finding::Provenance(p) => provenance = Some(p),
            Finding::Speaker(s) => speaker = Some(s),
            Finding::Image(i) => image = Some(i),
        }
    }
    let (verdict, basis, reason) = synthetic_verdict(voice, image, provenance);
    let claim = speaker.map(|s| speaker::claim(s, verdict, reason.as_deref()));
    Decision {
        verdict,
        basis,
        reason,
        claim,
    }
}

/// Steps 1–5 of [`decide`].
fn synthetic_verdict(
    voice: Option<&VoiceFinding>,
    image: Option<&ImageFinding>,
    provenance: Option<&ProvenanceFindings>,
) -> (Verdict, VerdictBasis, Option<String>) {
    let declared = provenance.and_then(|p| p.declares_ai.as_ref());
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
    if let Some(i) = image.filter(|i| i.verdict == ImageVerdict::Synthetic) {
        return (
            Verdict::Synthetic,
            VerdictBasis::ImageDetector,
            Some(capitalise(&i.reason)),
        );
    }
    if let Some(d) = declared {
        let mut reason = format!(
            "{}. Metadata can be forged; no detector could judge this input",
            capitalise(&d.says)
        );
        if let Some(why) = voice
            .and_then(|v| v.reason.as_deref())
            .or(image.map(|i| i.reason.as_str()))
        {
            reason.push_str(&format!(" ({why})"));
        }
        reason.push('.');
        return (Verdict::Synthetic, VerdictBasis::Metadata, Some(reason));
    }
    let reason = match (voice, image) {
        (Some(v), _) => v.reason.clone(),
        (None, Some(i)) => Some(format!(
            "No label declares this image AI-made, and {}; the absence of a label proves nothing",
            i.reason
        )),
        (None, None) => Some(
            "no label declares this image AI-made, and no detector judged it; the absence of a \
             label proves nothing"
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
fn merge(media: Media, findings: Vec<Finding>) -> ScanResult {
    let Decision {
        verdict,
        basis: verdict_basis,
        reason,
        claim,
    } = decide(&findings);
    let (mut voice, mut provenance, mut speaker, mut image) = (None, None, None, None);
    for f in findings {
        match f {
            Finding::Voice(v) => voice = Some(v),
            Finding::Provenance(p) => provenance = Some(p),
            Finding::Speaker(s) => speaker = Some(s),
            Finding::Image(i) => image = Some(i),
        }
    }
    let provenance = provenance.expect("every scan examines provenance");
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
    if let Some(i) = &image {
        // Every model that read the image; the deciding one alone when none ran.
        if i.readers.is_empty() {
            analysers.push(AnalyserRef {
                name: i.model.name.clone(),
                version: i.model.version.clone(),
                weights_sha256: Some(i.model.weights_sha256.clone()),
            });
        }
        for r in &i.readers {
            analysers.push(AnalyserRef {
                name: r.name.clone(),
                version: r.version.clone(),
                weights_sha256: Some(r.weights_sha256.clone()),
            });
        }
    }
    analysers.push(provenance_ref());
    if let Some(s) = &speaker {
        analysers.push(AnalyserRef {
            name: s.model.name.clone(),
            version: s.model.version.clone(),
            weights_sha256: Some(s.model.weights_sha256.clone()),
        });
    }
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
        image,
        provenance,
        speaker,
        claim,
        source: None,
        analysers,
        tool: TOOL,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aqiqat_visual::detector::{ImageModelId, ImageReason, ImageVerdict};

    fn image_finding(verdict: ImageVerdict, reason_code: ImageReason) -> ImageFinding {
        ImageFinding {
            verdict,
            reason_code,
            reason: "what the detector said".into(),
            score: Some(0.5),
            threshold: 1.0,
            generators_seen: vec!["g".into()],
            analysed: Some((200, 150)),
            heatmap: None,
            model: ImageModelId {
                name: "m".into(),
                version: "1".into(),
                weights_sha256: "0".repeat(64),
            },
            readers: Vec::new(),
        }
    }

    #[test]
    fn the_image_detector_decides_only_synthetic() {
        let flagged = decide(&[Finding::Image(image_finding(
            ImageVerdict::Synthetic,
            ImageReason::SignsOfGeneration,
        ))]);
        assert_eq!(flagged.verdict, Verdict::Synthetic);
        assert_eq!(flagged.basis, VerdictBasis::ImageDetector);
        assert_eq!(flagged.reason.as_deref(), Some("What the detector said"));

        let below = decide(&[Finding::Image(image_finding(
            ImageVerdict::Inconclusive,
            ImageReason::NoSignFound,
        ))]);
        assert_eq!(below.verdict, Verdict::Inconclusive);
        assert_eq!(below.basis, VerdictBasis::Nothing);
        let reason = below.reason.unwrap();
        assert!(
            reason.contains("what the detector said") && reason.contains("proves nothing"),
            "{reason}"
        );
    }
}
