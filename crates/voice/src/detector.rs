//! The shipped detector: weights and model card compiled into the binary, so nothing is ever
//! fetched, and a scan turned into a timeline, a calibrated probability and a verdict.

use crate::analysis::{self, ClipAnalysis, Outcome};
use crate::calibration::{Platt, Thresholds};
use crate::card::{FusedCard, Fusion, ModelCard, OpenSetCard, ShortSpanWindows};
use crate::features::FeatureExtractor;
use aqiqat_dsp::quality::{self, QualityConfig, Unfit};
use aqiqat_dsp::vad::Segment;
use aqiqat_intake::resample::MonoResampler;
use aqiqat_models::tdnn_mfm::{TdnnMfm, TdnnMfmConfig};
use candle_core::{DType, Device};
use candle_nn::VarBuilder;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::borrow::Cow;

/// v1, `voice-tdnn-mfm`: one network on the telephone band, as `aqiqat-train voice` wrote it;
/// `weights/voice-tdnn-mfm.json` says how to remake it. Kept whatever ships, as the baseline
/// and as the network the fusion tests build detectors from.
pub const V1_WEIGHTS: &[u8] = include_bytes!("../weights/voice-tdnn-mfm.safetensors");
pub const V1_CARD: &str = include_str!("../weights/voice-tdnn-mfm.json");

/// v2, `voice-v2`: three networks fused by one card (`weights/voice-v2/voice-v2.json` says how
/// each was trained and how the fusion and its verdict bands were learnt on the folds).
const V2_CARD: &str = include_str!("../weights/voice-v2/voice-v2.json");
const V2_MEMBERS: &[(&[u8], &str)] = &[
    (
        include_bytes!("../weights/voice-v2/voice-v2-lfcc-phase16.safetensors"),
        include_str!("../weights/voice-v2/voice-v2-lfcc-phase16.json"),
    ),
    (
        include_bytes!("../weights/voice-v2/voice-v2-lfcc-phase16-s2.safetensors"),
        include_str!("../weights/voice-v2/voice-v2-lfcc-phase16-s2.json"),
    ),
    (
        include_bytes!("../weights/voice-v2/voice-v2-wide-band32.safetensors"),
        include_str!("../weights/voice-v2/voice-v2-wide-band32.json"),
    ),
];

/// The voice detector compiled into this binary.
pub const EMBEDDED: Embedded = Embedded::Fused {
    card: V2_CARD,
    members: V2_MEMBERS,
};

/// A detector's files as compiled in: one network and its card, or a fused card with each
/// member's weights and card in the card's order. Shipping another detector changes
/// [`EMBEDDED`] and the files it names, nothing else.
#[derive(Debug, Clone, Copy)]
pub enum Embedded {
    Single {
        weights: &'static [u8],
        card: &'static str,
    },
    Fused {
        card: &'static str,
        members: &'static [(&'static [u8], &'static str)],
    },
}

impl Embedded {
    /// The detector these files make, refused as any loaded from disk would be.
    pub fn detector(&self) -> Result<VoiceDetector, DetectorError> {
        match *self {
            Embedded::Single { weights, card } => VoiceDetector::load(weights, card),
            Embedded::Fused { card, members } => VoiceDetector::load_fused(card, members),
        }
    }

    /// The card that names the detector (the fused card for a fusion).
    pub fn card(&self) -> &'static str {
        match *self {
            Embedded::Single { card, .. } | Embedded::Fused { card, .. } => card,
        }
    }

    /// Every weights file, in the order a detector's id joins them for its hash.
    pub fn weights(&self) -> Vec<&'static [u8]> {
        match *self {
            Embedded::Single { weights, .. } => vec![weights],
            Embedded::Fused { members, .. } => members.iter().map(|&(w, _)| w).collect(),
        }
    }

    /// The id a detector made from these files carries: the card's name and version, and the
    /// SHA-256 of the bytes actually compiled in (not the card's claim), without loading any
    /// network. An unreadable card still leaves the hash, and says so in the name.
    pub fn id(&self) -> ModelId {
        #[derive(serde::Deserialize)]
        struct Named {
            model: String,
            version: String,
        }
        let (name, version) = match serde_json::from_str::<Named>(self.card()) {
            Ok(named) => (named.model, named.version),
            Err(e) => (
                format!("voice detector (unreadable card: {e})"),
                "?".to_owned(),
            ),
        };
        let mut joined = Sha256::new();
        for weights in self.weights() {
            joined.update(weights);
        }
        ModelId {
            name,
            version,
            weights_sha256: hex(&joined.finalize()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DetectorError {
    #[error("model card: {0}")]
    Card(#[from] serde_json::Error),
    #[error("weights hash {actual} differs from the card's {expected}")]
    WeightsHash { expected: String, actual: String },
    #[error("the weights were trained on other features than this build computes: {0}")]
    Features(String),
    #[error("model: {0}")]
    Model(#[from] candle_core::Error),
    #[error("fusion: {0}")]
    Fusion(String),
    /// A model file that cannot be read.
    #[error("{0}")]
    Files(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Synthetic,
    Human,
    Inconclusive,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Synthetic => "synthetic",
            Verdict::Human => "human",
            Verdict::Inconclusive => "inconclusive",
        }
    }
}

/// Which model spoke: enough to find its card and reproduce it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelId {
    pub name: String,
    pub version: String,
    pub weights_sha256: String,
}

/// Less speech than this gets no verdict, though it may get a score: a second of speech is
/// too little for a detector to weigh, and the error it risks is a false `human`.
pub const MIN_VERDICT_SPEECH_SECONDS: f64 = 1.5;

/// A stable name for why a verdict is what it is, for reports to put into their own words
/// (`reason` carries the same in English, with the figures).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReasonCode {
    /// `human`: no sign of synthesis, from a detector that has not heard every family.
    NoSignFound,
    NoSpeech,
    TooLittleSpeech,
    TooNoisy,
    Music,
    SeveralVoices,
    /// The probability lies between the `human` and `synthetic` thresholds.
    BetweenThresholds,
}

impl ReasonCode {
    /// The code as the scan JSON spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            ReasonCode::NoSignFound => "no_sign_found",
            ReasonCode::NoSpeech => "no_speech",
            ReasonCode::TooLittleSpeech => "too_little_speech",
            ReasonCode::TooNoisy => "too_noisy",
            ReasonCode::Music => "music",
            ReasonCode::SeveralVoices => "several_voices",
            ReasonCode::BetweenThresholds => "between_thresholds",
        }
    }

    /// A refusal for how the recording sounds (noise, music, two voices at once), whatever
    /// the amount of speech: what a live call leaves out of its rolling verdict, and what stops
    /// a speaker check too.
    pub fn is_condition(self) -> bool {
        matches!(
            self,
            ReasonCode::TooNoisy | ReasonCode::Music | ReasonCode::SeveralVoices
        )
    }

    /// A refusal for too little speech to judge (none, or under the minimum).
    pub fn is_too_little(self) -> bool {
        matches!(self, ReasonCode::NoSpeech | ReasonCode::TooLittleSpeech)
    }
}

/// What the detector has learnt and what it has not: the limit of a `human` verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reach {
    /// Families of speech synthesis in its training data, in plain words.
    pub families_heard: Vec<String>,
    /// Families it was measured on but never trained on.
    pub families_not_heard: Vec<String>,
}

/// How the recording sounds, measured before any verdict (`aqiqat_dsp::quality`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Conditions {
    /// Estimated speech-to-noise ratio, dB.
    pub snr_db: f64,
    /// Share of the recording that sounds like music.
    pub music_share: f64,
    /// Share of the voiced speech where a second voice sounds at the same time.
    pub overlap_share: f64,
}

/// One window of the timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimelineWindow {
    pub start_s: f64,
    pub end_s: f64,
    pub probability_synthetic: f64,
    pub speech_fraction: f64,
    /// Whether the window counts towards the overall score (mostly speech).
    pub counted: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpeechSpan {
    pub start_s: f64,
    pub end_s: f64,
}

/// What the voice detector found in one recording.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VoiceFinding {
    pub verdict: Verdict,
    /// Calibrated probability that the speech is synthetic; absent when it was not judged.
    pub probability_synthetic: Option<f64>,
    /// Why the verdict is inconclusive, or what a `human` verdict cannot rule out, in plain
    /// words.
    pub reason: Option<String>,
    pub reason_code: Option<ReasonCode>,
    /// Uncalibrated mean window logit (what the thresholds are applied to, after calibration).
    pub score: Option<f64>,
    pub duration_s: f64,
    pub speech_s: f64,
    pub speech: Vec<SpeechSpan>,
    pub timeline: Vec<TimelineWindow>,
    pub thresholds: crate::calibration::Thresholds,
    pub model: ModelId,
    /// Noise, music and overlapping voices; `null` when no speech was found.
    pub conditions: Option<Conditions>,
    /// What the detector has and has not heard; `null` for a model without an open-set card.
    pub reach: Option<Reach>,
}

/// One network of the detector.
struct Member {
    model: TdnnMfm,
    card: ModelCard,
    /// The filterbank and phase bands the card names (weights and features always travel
    /// together), built once at load and cloned for each analysis: building plans FFTs and
    /// fills the filterbank, work a live call would otherwise repeat for every window.
    features: FeatureExtractor,
    fusion: Fusion,
}

/// The synthetic-speech detector: one network, or several whose window logits are fused
/// (see [`analysis::analyse_fused`]), with the calibration and verdict bands of the score it
/// judges by.
pub struct VoiceDetector {
    /// Lowest rate first: the first member finds the speech and times the windows.
    members: Vec<Member>,
    id: ModelId,
    calibration: Platt,
    thresholds: Thresholds,
    open_set: Option<OpenSetCard>,
    /// The rate the input must have: the highest member's.
    input_rate: u32,
    /// How a fused card cuts short spans (see [`crate::card::ShortSpanWindows`]).
    short_spans: Option<ShortSpanWindows>,
}

/// The models compiled into this binary, as `aqiqat --version` names them.
pub fn embedded_models() -> Vec<ModelId> {
    vec![EMBEDDED.id()]
}

impl VoiceDetector {
    /// The detector compiled into this binary.
    pub fn embedded() -> Result<Self, DetectorError> {
        EMBEDDED.detector()
    }

    /// A detector from weights and their card, refusing weights that do not match the card's
    /// hash or a card whose features this build does not compute.
    pub fn load(weights: &[u8], card_json: &str) -> Result<Self, DetectorError> {
        let member = Member::load(weights, card_json, Fusion::ALONE)?;
        Ok(Self {
            id: ModelId {
                name: member.card.model.clone(),
                version: member.card.version.clone(),
                weights_sha256: member.card.weights_sha256.clone(),
            },
            calibration: member.card.calibration,
            thresholds: member.card.thresholds,
            open_set: member.card.open_set.clone(),
            input_rate: member.features.sample_rate(),
            members: vec![member],
            short_spans: None,
        })
    }

    /// A fused detector from its card and, in the card's order, each member's weights and
    /// card. Its id's `weights_sha256` is the SHA-256 of the members' weights files joined in
    /// that order (`cat A B | sha256sum`), so that a record names exactly the networks that
    /// spoke.
    pub fn load_fused(fused_json: &str, members: &[(&[u8], &str)]) -> Result<Self, DetectorError> {
        Self::from_fused_card(serde_json::from_str(fused_json)?, members)
    }

    /// [`Self::load_fused`] from a card already read (or made, as a training tool makes one
    /// per fold).
    pub fn from_fused_card(
        card: FusedCard,
        members: &[(&[u8], &str)],
    ) -> Result<Self, DetectorError> {
        if card.members.len() != members.len() || members.is_empty() {
            return Err(DetectorError::Fusion(format!(
                "the card names {} members, {} were given",
                card.members.len(),
                members.len()
            )));
        }
        let mut joined = Sha256::new();
        let mut loaded = Vec::with_capacity(members.len());
        for (named, &(weights, member_json)) in card.members.iter().zip(members) {
            if !named.fusion.is_sound() {
                return Err(DetectorError::Fusion(format!(
                    "member {}: unusable fusion term {:?}",
                    named.card, named.fusion
                )));
            }
            let member = Member::load(weights, member_json, named.fusion)?;
            if member.card.weights_sha256 != named.weights_sha256 {
                return Err(DetectorError::WeightsHash {
                    expected: named.weights_sha256.clone(),
                    actual: member.card.weights_sha256,
                });
            }
            joined.update(weights);
            loaded.push(member);
        }
        // One speech finder serves every member (the first's, see `analyse_fused`): members
        // trained to find speech by different rules would score frames unlike their training.
        if let Some(other) = loaded.iter().find(|m| {
            m.card.features.speech_loud_level != loaded[0].card.features.speech_loud_level
        }) {
            return Err(DetectorError::Fusion(format!(
                "the members find speech by different rules ({:?} and {:?})",
                loaded[0].card.features.speech_loud_level, other.card.features.speech_loud_level
            )));
        }
        if let Some(rule) = card.short_spans {
            let field = loaded
                .iter()
                .map(|m| m.model.receptive_field())
                .max()
                .expect("checked");
            rule.check(field).map_err(DetectorError::Fusion)?;
        }
        loaded.sort_by_key(|m| m.features.sample_rate());
        Ok(Self {
            id: ModelId {
                name: card.model,
                version: card.version,
                weights_sha256: hex(&joined.finalize()),
            },
            calibration: card.calibration,
            thresholds: card.thresholds,
            open_set: card.open_set,
            input_rate: loaded.last().expect("checked").features.sample_rate(),
            members: loaded,
            short_spans: card.short_spans,
        })
    }

    /// A fused detector from a folder holding its card and each member's card and weights
    /// (the card names the member cards; each member card names its weights file).
    pub fn load_fused_dir(dir: &std::path::Path, card: &str) -> Result<Self, DetectorError> {
        let read = |name: &str| {
            std::fs::read(dir.join(name)).map_err(|e| {
                DetectorError::Files(format!("cannot read {}: {e}", dir.join(name).display()))
            })
        };
        let text = |name: &str| {
            String::from_utf8(read(name)?).map_err(|_| {
                DetectorError::Files(format!("{} is not UTF-8", dir.join(name).display()))
            })
        };
        let fused: FusedCard = serde_json::from_str(&text(card)?)?;
        let mut files = Vec::new();
        for m in &fused.members {
            let member_json = text(&m.card)?;
            let member: ModelCard = serde_json::from_str(&member_json)?;
            files.push((read(&member.weights)?, member_json));
        }
        let members: Vec<(&[u8], &str)> = files
            .iter()
            .map(|(w, c)| (w.as_slice(), c.as_str()))
            .collect();
        Self::from_fused_card(fused, &members)
    }

    /// A detector from a path a person types: a training run's output folder
    /// (`voice-tdnn-mfm.json` and its weights), or a fused card file, which
    /// `aqiqat-train fuse` writes beside its members' cards and weights. Weights must match
    /// their cards' hashes.
    pub fn from_path(path: &std::path::Path) -> Result<Self, DetectorError> {
        if path.is_file() {
            let (Some(folder), Some(card)) = (path.parent(), path.file_name()) else {
                return Err(DetectorError::Files("not a fused card".to_owned()));
            };
            return Self::load_fused_dir(folder, &card.to_string_lossy());
        }
        if !path.exists() {
            return Err(DetectorError::Files(
                "cannot read it: no such file or folder (name a training run's folder or a fused card)"
                    .to_owned(),
            ));
        }
        // The caller names the folder the person typed; the errors name the file in it.
        let read = |name: &str| {
            std::fs::read(path.join(name))
                .map_err(|e| DetectorError::Files(format!("cannot read {name} in it: {e}")))
        };
        let weights = read("voice-tdnn-mfm.safetensors")?;
        let card = String::from_utf8(read("voice-tdnn-mfm.json")?).map_err(|_| {
            DetectorError::Files("its model card voice-tdnn-mfm.json is not UTF-8".to_owned())
        })?;
        Self::load(&weights, &card)
    }

    /// The first network (the only one of a single-network detector).
    pub fn model(&self) -> &TdnnMfm {
        &self.members[0].model
    }

    /// Every network with its card, lowest rate first (the first finds the speech): for
    /// benches that time each member's features and forward pass.
    pub fn networks(&self) -> impl Iterator<Item = (&ModelCard, &TdnnMfm)> {
        self.members.iter().map(|m| (&m.card, &m.model))
    }

    /// The card of a single-network detector, which tools that rewrite a card edit; `None`
    /// for a fusion, whose policy lives in its own card.
    pub fn single_card(&self) -> Option<&ModelCard> {
        match &self.members[..] {
            [only] if only.fusion == Fusion::ALONE => Some(&only.card),
            _ => None,
        }
    }

    /// The members' own cards, lowest rate first.
    pub fn member_cards(&self) -> impl Iterator<Item = &ModelCard> {
        self.members.iter().map(|m| &m.card)
    }

    pub fn thresholds(&self) -> Thresholds {
        self.thresholds
    }

    pub fn id(&self) -> ModelId {
        self.id.clone()
    }

    /// The rate samples must have for [`Self::analyse`] and [`Self::scan`]: the highest
    /// member's (8 kHz for a telephone-band model, 16 kHz once a wideband one is a member).
    /// Callers decode or resample to it; members at a lower rate get it resampled here.
    pub fn sample_rate(&self) -> u32 {
        self.input_rate
    }

    /// Raw analysis of mono samples at [`Self::sample_rate`] (for evaluation, which needs
    /// uncalibrated scores).
    pub fn analyse(&self, samples: &[f32]) -> Result<ClipAnalysis, DetectorError> {
        Ok(self.analyse_keeping_reference(samples)?.0)
    }

    /// [`Self::analyse`], and the input as the first (lowest-rate) member read it: the
    /// recording checks run on that, at the rate they were designed and tested at (8 kHz for
    /// every detector so far), and at no extra cost for a fused detector.
    fn analyse_keeping_reference<'s>(
        &self,
        samples: &'s [f32],
    ) -> Result<(ClipAnalysis, Cow<'s, [f32]>), DetectorError> {
        let mut inputs: Vec<Cow<'s, [f32]>> = self
            .members
            .iter()
            .map(|m| resampled(samples, self.input_rate, m.features.sample_rate()))
            .collect::<Result<_, _>>()?;
        let mut extractors: Vec<FeatureExtractor> =
            self.members.iter().map(|m| m.features.clone()).collect();
        let mut parts: Vec<analysis::Part<'_>> = self
            .members
            .iter()
            .zip(&mut extractors)
            .zip(&inputs)
            .map(|((m, fx), input)| analysis::Part {
                model: &m.model,
                fx,
                samples: input,
                fusion: m.fusion,
            })
            .collect();
        let analysis = analysis::analyse_fused(&mut parts, self.short_spans)?;
        drop(parts);
        Ok((analysis, inputs.swap_remove(0)))
    }

    /// Judges mono samples at [`Self::sample_rate`].
    pub fn scan(&self, samples: &[f32]) -> Result<VoiceFinding, DetectorError> {
        let (a, reference) = self.analyse_keeping_reference(samples)?;
        let measured = measure_conditions(&reference, self.members[0].features.sample_rate(), &a);
        Ok(self.finding(&a, measured))
    }

    pub fn probability(&self, score: f64) -> f64 {
        self.calibration.probability(score)
    }

    pub fn verdict(&self, probability: f64) -> Verdict {
        let t = &self.thresholds;
        if probability >= t.synthetic_above {
            Verdict::Synthetic
        } else if probability < t.human_below {
            Verdict::Human
        } else {
            Verdict::Inconclusive
        }
    }

    /// What this detector has and has not heard, from its card.
    pub fn reach(&self) -> Option<Reach> {
        self.open_set.as_ref().map(|o| Reach {
            families_heard: o.families_heard.clone(),
            families_not_heard: o.families_not_heard.clone(),
        })
    }

    /// The limit of a `human` verdict, in plain words.
    pub fn no_sign_found(&self) -> String {
        match self.reach() {
            Some(r) if !r.families_not_heard.is_empty() => format!(
                "no sign of synthetic speech was found by a detector trained on {} families of \
                 speech synthesis, from a few systems each; voices made by other systems can \
                 pass unnoticed, above all those of families it has never learnt ({}), so this \
                 does not prove the voice is human",
                r.families_heard.len(),
                r.families_not_heard.join(", ")
            ),
            _ => "no sign of synthetic speech was found; voices made by systems the detector \
                  has not learnt can pass unnoticed, so this does not prove the voice is human"
                .to_owned(),
        }
    }

    fn finding(
        &self,
        a: &ClipAnalysis,
        measured: Option<(Conditions, Option<Unfit>)>,
    ) -> VoiceFinding {
        let conditions = measured.map(|(c, _)| c);
        let unfit = measured.and_then(|(_, u)| u);
        let (verdict, probability, reason, code, score) = match &a.outcome {
            Outcome::Unscored(why) => {
                let code = if a.speech.is_empty() {
                    ReasonCode::NoSpeech
                } else {
                    ReasonCode::TooLittleSpeech
                };
                (
                    Verdict::Inconclusive,
                    None,
                    Some(why.clone()),
                    Some(code),
                    None,
                )
            }
            Outcome::Scored(score) if a.speech_s < MIN_VERDICT_SPEECH_SECONDS => (
                Verdict::Inconclusive,
                None,
                Some(format!(
                    "only {:.2} s of speech; at least {MIN_VERDICT_SPEECH_SECONDS:.1} s is needed \
                     for a verdict",
                    a.speech_s
                )),
                Some(ReasonCode::TooLittleSpeech),
                Some(*score),
            ),
            Outcome::Scored(score) if unfit.is_some() => {
                let (code, why) = unfit_reason(unfit.expect("checked"));
                (
                    Verdict::Inconclusive,
                    None,
                    Some(why),
                    Some(code),
                    Some(*score),
                )
            }
            Outcome::Scored(score) => {
                let p = self.probability(*score);
                let verdict = self.verdict(p);
                let (reason, code) = match verdict {
                    Verdict::Inconclusive => (
                        Some(format!(
                            "the probability {p:.2} lies between the human ({:.2}) and synthetic \
                             ({:.2}) thresholds",
                            self.thresholds.human_below, self.thresholds.synthetic_above
                        )),
                        Some(ReasonCode::BetweenThresholds),
                    ),
                    Verdict::Human => (Some(self.no_sign_found()), Some(ReasonCode::NoSignFound)),
                    Verdict::Synthetic => (None, None),
                };
                (verdict, Some(p), reason, code, Some(*score))
            }
        };
        VoiceFinding {
            verdict,
            probability_synthetic: probability,
            reason,
            reason_code: code,
            score,
            duration_s: a.duration_s,
            speech_s: a.speech_s,
            speech: a
                .speech
                .iter()
                .map(|&(start_s, end_s)| SpeechSpan { start_s, end_s })
                .collect(),
            timeline: a
                .windows
                .iter()
                .map(|w| TimelineWindow {
                    start_s: w.start_s,
                    end_s: w.end_s,
                    probability_synthetic: self.probability(w.logit as f64),
                    // Widened here once, so that every JSON writer prints the same digits.
                    speech_fraction: f64::from(w.speech_fraction),
                    counted: w.counted,
                })
                .collect(),
            thresholds: self.thresholds,
            model: self.id(),
            conditions,
            reach: self.reach(),
        }
    }
}

impl Member {
    fn load(weights: &[u8], card_json: &str, fusion: Fusion) -> Result<Self, DetectorError> {
        let card: ModelCard = serde_json::from_str(card_json)?;
        let actual = hex(&Sha256::digest(weights));
        if actual != card.weights_sha256 {
            return Err(DetectorError::WeightsHash {
                expected: card.weights_sha256,
                actual,
            });
        }
        let features =
            FeatureExtractor::from_card(&card.features).map_err(DetectorError::Features)?;
        let dims = features.dims();
        if card.network.dims != dims {
            return Err(DetectorError::Features(format!(
                "the network reads {} values per frame, the features give {dims}",
                card.network.dims,
            )));
        }
        let vb = VarBuilder::from_buffered_safetensors(weights.to_vec(), DType::F32, &Device::Cpu)?;
        let config = TdnnMfmConfig {
            dims: card.network.dims,
            channels: card.network.channels,
            embed: card.network.embed,
            hidden: card.network.hidden,
            layers: card.network.layers,
        };
        Ok(Self {
            model: TdnnMfm::new(config, vb)?,
            card,
            features,
            fusion,
        })
    }
}

/// `samples` at `to` Hz, as the detector gives each member its input: borrowed when already
/// there (benches time this step with it).
pub fn resampled(samples: &[f32], from: u32, to: u32) -> Result<Cow<'_, [f32]>, DetectorError> {
    if from == to {
        return Ok(Cow::Borrowed(samples));
    }
    let mut resampler = MonoResampler::new(from, to).map_err(DetectorError::Fusion)?;
    let mut out = Vec::with_capacity(samples.len() * to as usize / from as usize + 1);
    resampler.push(samples, &mut out);
    resampler.finish(&mut out);
    Ok(Cow::Owned(out))
}

/// Noise, music and overlapping voices over the speech the analysis found; `None` when it
/// found none.
fn measure_conditions(
    samples: &[f32],
    sample_rate: u32,
    a: &ClipAnalysis,
) -> Option<(Conditions, Option<Unfit>)> {
    if a.speech.is_empty() {
        return None;
    }
    let rate = f64::from(sample_rate);
    let speech: Vec<Segment> = a
        .speech
        .iter()
        .map(|&(start, end)| Segment {
            start: ((start * rate).round() as usize).min(samples.len()),
            end: ((end * rate).round() as usize).min(samples.len()),
        })
        .collect();
    let config = QualityConfig {
        sample_rate,
        ..QualityConfig::default()
    };
    let q = quality::assess(samples, &speech, &config);
    let conditions = Conditions {
        snr_db: f64::from(q.snr_db),
        music_share: f64::from(q.music_share),
        overlap_share: f64::from(q.overlap_share),
    };
    Some((conditions, q.unfit(&config)))
}

/// The code and plain words for a recording the detector should not judge.
fn unfit_reason(unfit: Unfit) -> (ReasonCode, String) {
    match unfit {
        Unfit::Music { share } => (
            ReasonCode::Music,
            format!(
                "{:.0} % of the recording sounds like music; the detector judges speech, and \
                 music over or instead of a voice makes its score meaningless",
                share * 100.0
            ),
        ),
        Unfit::SeveralVoices { share } => (
            ReasonCode::SeveralVoices,
            format!(
                "two voices sound at the same time in {:.0} % of the speech; the detector judges \
                 one voice at a time",
                share * 100.0
            ),
        ),
        Unfit::TooNoisy { snr_db } => (
            ReasonCode::TooNoisy,
            format!(
                "the speech is only {snr_db:.0} dB above the background noise; too noisy to judge"
            ),
        ),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::card::FusedMember;

    fn card_with(edit: impl FnOnce(&mut serde_json::Value)) -> String {
        let mut card: serde_json::Value = serde_json::from_str(V1_CARD).unwrap();
        edit(&mut card);
        card.to_string()
    }

    fn analysis(score: f64, speech_s: f64) -> ClipAnalysis {
        ClipAnalysis {
            duration_s: speech_s + 1.0,
            speech: vec![(0.5, 0.5 + speech_s)],
            speech_s,
            windows: Vec::new(),
            outcome: Outcome::Scored(score),
        }
    }

    #[test]
    fn the_embedded_card_sets_its_thresholds_on_pages_it_never_heard() {
        let d = VoiceDetector::embedded().unwrap();
        let open = d
            .open_set
            .as_ref()
            .expect("the shipped card has an open-set section");
        assert!(open.folds.len() >= 10, "{} folds", open.folds.len());
        assert!(!open.families_heard.is_empty() && !open.families_not_heard.is_empty());
        for heard in &open.families_heard {
            assert!(!open.families_not_heard.contains(heard), "{heard}");
        }
        let t = d.thresholds();
        assert!(t.human_below <= t.synthetic_above, "{t:?}");
        assert!(
            t != open.development_thresholds,
            "still the development thresholds"
        );
    }

    #[test]
    fn a_human_verdict_names_what_the_detector_has_not_heard() {
        let d = VoiceDetector::embedded().unwrap();
        let f = d.finding(&analysis(-30.0, 3.0), None);
        assert_eq!(f.verdict, Verdict::Human);
        assert_eq!(f.reason_code, Some(ReasonCode::NoSignFound));
        let reason = f.reason.unwrap();
        let reach = f.reach.unwrap();
        assert!(
            reason.contains("does not prove the voice is human"),
            "{reason}"
        );
        assert!(reason.contains(&format!(
            "trained on {} families",
            reach.families_heard.len()
        )));
        for family in &reach.families_not_heard {
            assert!(
                reason.contains(family.as_str()),
                "{family} missing from: {reason}"
            );
        }
        let f = d.finding(&analysis(30.0, 3.0), None);
        assert_eq!((f.verdict, f.reason_code), (Verdict::Synthetic, None));
        // `as_str` spells each code as the JSON does.
        for code in [
            ReasonCode::NoSignFound,
            ReasonCode::NoSpeech,
            ReasonCode::TooLittleSpeech,
            ReasonCode::TooNoisy,
            ReasonCode::Music,
            ReasonCode::SeveralVoices,
            ReasonCode::BetweenThresholds,
        ] {
            assert_eq!(serde_json::to_value(code).unwrap(), code.as_str());
        }
    }

    #[test]
    fn less_than_a_second_and_a_half_of_speech_gets_no_verdict() {
        let d = VoiceDetector::embedded().unwrap();
        for score in [-30.0, 30.0] {
            let f = d.finding(&analysis(score, 1.4), None);
            assert_eq!(f.verdict, Verdict::Inconclusive);
            assert_eq!(f.reason_code, Some(ReasonCode::TooLittleSpeech));
            assert_eq!(f.probability_synthetic, None);
            assert!(f.reason.unwrap().contains("1.5 s"));
            let f = d.finding(&analysis(score, 1.6), None);
            assert_ne!(f.verdict, Verdict::Inconclusive);
        }
    }

    #[test]
    fn an_unfit_recording_gets_its_reason_and_no_probability() {
        let d = VoiceDetector::embedded().unwrap();
        let conditions = Conditions {
            snr_db: 2.0,
            music_share: 0.0,
            overlap_share: 0.0,
        };
        for (unfit, code) in [
            (Unfit::TooNoisy { snr_db: 2.0 }, ReasonCode::TooNoisy),
            (Unfit::Music { share: 0.9 }, ReasonCode::Music),
            (
                Unfit::SeveralVoices { share: 0.6 },
                ReasonCode::SeveralVoices,
            ),
        ] {
            // However sure the score, a recording unfit to judge is not judged.
            for score in [-30.0, 30.0] {
                let f = d.finding(&analysis(score, 3.0), Some((conditions, Some(unfit))));
                assert_eq!(f.verdict, Verdict::Inconclusive, "{unfit:?}");
                assert_eq!(f.reason_code, Some(code));
                assert_eq!(f.probability_synthetic, None);
                assert_eq!(f.score, Some(score));
            }
        }
    }

    /// v1, the network the fusion tests build detectors from, whatever ships.
    fn v1() -> VoiceDetector {
        VoiceDetector::load(V1_WEIGHTS, V1_CARD).unwrap()
    }

    #[test]
    fn v1_reads_the_features_this_build_computes() {
        let d = v1();
        assert_eq!(d.members.len(), 1);
        assert_eq!(
            *d.members[0].features.lfcc_config(),
            crate::features::lfcc_config()
        );
    }

    /// `--version` names the built-in detector without loading it: the id it gives is the
    /// loaded detector's, for one network and for a fusion, whose hash joins the members'
    /// weights in the card's order.
    #[test]
    fn the_embedded_files_name_the_detector_they_make() {
        assert_eq!(EMBEDDED.id(), EMBEDDED.detector().unwrap().id());
        let single = Embedded::Single {
            weights: V1_WEIGHTS,
            card: V1_CARD,
        };
        assert_eq!(single.id(), v1().id());
        assert_eq!(single.id().weights_sha256, hex(&Sha256::digest(V1_WEIGHTS)));
        let card: &'static str =
            Box::leak(fused_card(&[Fusion::ALONE, Fusion::ALONE]).into_boxed_str());
        let fused = Embedded::Fused {
            card,
            members: &[(V1_WEIGHTS, V1_CARD), (V1_WEIGHTS, V1_CARD)],
        };
        let id = fused.id();
        assert_eq!(id, fused.detector().unwrap().id());
        assert_eq!(id.name, "voice-test-fusion");
        assert_eq!(
            id.weights_sha256,
            hex(&Sha256::digest([V1_WEIGHTS, V1_WEIGHTS].concat()))
        );
        // A card that cannot be read still leaves the hash, and says why the name is missing.
        let unreadable = Embedded::Single {
            weights: V1_WEIGHTS,
            card: "{",
        }
        .id();
        assert!(
            unreadable.name.contains("unreadable card"),
            "{unreadable:?}"
        );
        assert_eq!(unreadable.weights_sha256, single.id().weights_sha256);
    }

    #[test]
    fn a_card_whose_features_do_not_fit_its_network_is_refused() {
        let card = card_with(|c| {
            c["features"]["n_filters"] = 80.into();
            c["features"]["n_ceps"] = 40.into();
        });
        let err = VoiceDetector::load(V1_WEIGHTS, &card).err().unwrap();
        assert!(err.to_string().contains("values per frame"), "{err}");

        // 16 kHz with an 8 ms hop is no 10 ms framing at all.
        let card = card_with(|c| c["features"]["sample_rate"] = 16_000.into());
        let err = VoiceDetector::load(V1_WEIGHTS, &card).err().unwrap();
        assert!(err.to_string().contains("not usable"), "{err}");
        // A sound wideband filterbank loads, and asks for 16 kHz input.
        let wideband = VoiceDetector::load(V1_WEIGHTS, &wideband_card()).unwrap();
        assert_eq!(wideband.sample_rate(), 16_000);
        assert_eq!(v1().sample_rate(), 8_000);
    }

    /// A network over the embedded filterbank's 60 values and 2 × 10 phase values per frame
    /// (random weights): it loads, reads both, and its weights read as if without the phase
    /// values are refused.
    #[test]
    fn phase_bands_widen_the_frames_a_network_reads() {
        let mut card: ModelCard = serde_json::from_str(V1_CARD).unwrap();
        card.features.phase_bands = 10;
        card.network.dims = 80;
        let varmap = candle_nn::VarMap::new();
        TdnnMfm::new(
            TdnnMfmConfig {
                dims: 80,
                channels: card.network.channels,
                embed: card.network.embed,
                hidden: card.network.hidden,
                layers: card.network.layers,
            },
            VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
        )
        .unwrap();
        let file = std::env::temp_dir().join(format!("aqiqat-phase-{}.st", std::process::id()));
        varmap.save(&file).unwrap();
        let weights = std::fs::read(&file).unwrap();
        std::fs::remove_file(&file).unwrap();
        card.weights_sha256 = hex(&Sha256::digest(&weights));
        let detector =
            VoiceDetector::load(&weights, &serde_json::to_string(&card).unwrap()).unwrap();
        let mut fx =
            FeatureExtractor::with_phase_bands(*detector.members[0].features.lfcc_config(), 10)
                .unwrap();
        let clip = smoke(CLIPS[0], 8_000);
        let frames = fx.compute(&clip, &fx.speech_segments(&clip));
        assert_eq!(frames.dims, 80);
        let phase = frames.row(frames.frames / 2)[60..].to_vec();
        assert!(phase.iter().all(|v| (0.0..=1.0).contains(v)), "{phase:?}");
        assert!(phase.iter().any(|&v| v > 0.0), "{phase:?}");
        assert!(scores(&detector.analyse(&clip).unwrap()).is_finite());

        card.features.phase_bands = 0;
        let err = VoiceDetector::load(&weights, &serde_json::to_string(&card).unwrap())
            .err()
            .unwrap();
        assert!(err.to_string().contains("values per frame"), "{err}");
    }

    /// The speech finder's rule travels with the card: with `above-floor`, half a minute of
    /// digital silence on each side of a clip leaves its speech where it was; with the rule the
    /// embedded network was trained with, the silence pulls the loud level down and a voice
    /// 40 dB under the first (a second speaker far from the phone) becomes speech.
    #[test]
    fn the_cards_speech_finder_rule_decides_where_speech_is_found() {
        let mut clip = smoke(CLIPS[0], 8_000);
        let far: Vec<f32> = clip.iter().map(|s| s * 0.01).collect();
        clip.extend(far);
        let pad = 30 * 8_000;
        let mut padded = vec![0.0f32; pad];
        padded.extend(&clip);
        padded.extend(vec![0.0f32; pad]);
        let speech = |d: &VoiceDetector, x: &[f32], shift: f64| -> Vec<(f64, f64)> {
            let a = d.analyse(x).unwrap();
            a.speech
                .iter()
                .map(|&(s, e)| (s - shift, e - shift))
                .collect()
        };
        let close = |a: &[(f64, f64)], b: &[(f64, f64)]| {
            a.len() == b.len()
                && a.iter()
                    .zip(b)
                    .all(|(x, y)| (x.0 - y.0).abs() < 1e-6 && (x.1 - y.1).abs() < 1e-6)
        };
        let every = v1();
        let mut card: ModelCard = serde_json::from_str(V1_CARD).unwrap();
        card.features.speech_loud_level = crate::card::SpeechLoudLevel::AboveFloor;
        let above =
            VoiceDetector::load(V1_WEIGHTS, &serde_json::to_string(&card).unwrap()).unwrap();
        let plain = speech(&above, &clip, 0.0);
        assert!(!plain.is_empty());
        let moved = speech(&above, &padded, 30.0);
        assert!(close(&plain, &moved), "{plain:?} against {moved:?}");
        let (plain, moved) = (speech(&every, &clip, 0.0), speech(&every, &padded, 30.0));
        assert!(!close(&plain, &moved), "{plain:?} against {moved:?}");
    }

    fn smoke(name: &str, rate: u32) -> Vec<f32> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/data/voice/smoke")
            .join(name);
        aqiqat_intake::load(&path, rate, &aqiqat_intake::Limits::default())
            .unwrap_or_else(|e| {
                panic!(
                    "{}: {e} (CI puts ../shared beside the checkout)",
                    path.display()
                )
            })
            .1
    }

    const CLIPS: [&str; 2] = ["bonafide_103-1240-0000.flac", "spoof_centaur_LJ_14.flac"];

    /// The embedded network read through a wideband card: the same weights (a 20-filter bank
    /// keeps its 60 values per frame) at 16 kHz, so a test has a second member at another rate.
    fn wideband_card() -> String {
        card_with(|c| {
            let f = &mut c["features"];
            f["sample_rate"] = 16_000.into();
            f["hop"] = 160.into();
            f["win"] = 400.into();
            f["n_fft"] = 512.into();
            f["f_max"] = 8_000.0.into();
        })
    }

    fn fused_card(fusions: &[Fusion]) -> String {
        fused_card_cutting(fusions, None)
    }

    fn fused_card_cutting(fusions: &[Fusion], short_spans: Option<ShortSpanWindows>) -> String {
        let plain: ModelCard = serde_json::from_str(V1_CARD).unwrap();
        serde_json::to_string(&FusedCard {
            model: "voice-test-fusion".into(),
            version: "0".into(),
            members: fusions
                .iter()
                .enumerate()
                .map(|(i, &fusion)| FusedMember {
                    card: format!("member-{i}.json"),
                    weights_sha256: plain.weights_sha256.clone(),
                    fusion,
                })
                .collect(),
            calibration: plain.calibration,
            thresholds: plain.thresholds,
            command: "test".into(),
            open_set: plain.open_set,
            short_spans,
        })
        .unwrap()
    }

    const DENSE: ShortSpanWindows = ShortSpanWindows {
        up_to_frames: 600,
        window_frames: 250,
        hop_frames: 10,
    };

    #[test]
    fn a_short_span_is_scored_by_the_cards_dense_windows() {
        let dense = VoiceDetector::load_fused(
            &fused_card_cutting(&[Fusion::ALONE], Some(DENSE)),
            &[(V1_WEIGHTS, V1_CARD)],
        )
        .unwrap();
        let plain = v1();
        for clip in CLIPS {
            let samples = smoke(clip, 8_000);
            let (a, b) = (
                plain.analyse(&samples).unwrap(),
                dense.analyse(&samples).unwrap(),
            );
            // A 4 s clip is one standard window; its span is between 2.5 and 6 s.
            assert_eq!(a.windows.len(), 1, "{clip}");
            let span = a.windows[0].end_s - a.windows[0].start_s;
            assert!(span > 2.5 && span <= 6.0, "{clip}: {span}");
            let expected = ((span - 2.5) / 0.1).floor() as usize + 1;
            assert!(
                b.windows.len() == expected || b.windows.len() == expected + 1,
                "{clip}: {} windows over {span} s",
                b.windows.len()
            );
            for pair in b.windows.windows(2) {
                assert!(pair[1].start_s - pair[0].start_s <= 0.1 + 1e-9, "{clip}");
            }
            for w in &b.windows {
                assert!((w.end_s - w.start_s - 2.5).abs() < 1e-6, "{clip}: {w:?}");
            }
            assert_eq!(b.windows[0].start_s, a.windows[0].start_s);
            assert!((b.windows.last().unwrap().end_s - a.windows[0].end_s).abs() < 1e-6);
            let counted: Vec<f64> = b
                .windows
                .iter()
                .filter(|w| w.counted)
                .map(|w| f64::from(w.logit))
                .collect();
            let mean = counted.iter().sum::<f64>() / counted.len() as f64;
            assert!((scores(&b) - mean).abs() < 1e-4, "{clip}");
            assert_ne!(scores(&a), scores(&b), "{clip}");
        }
        // A span longer than the rule covers is cut as every span is.
        let long: Vec<f32> = CLIPS
            .iter()
            .take(2)
            .flat_map(|clip| smoke(clip, 8_000))
            .collect();
        let (a, b) = (plain.analyse(&long).unwrap(), dense.analyse(&long).unwrap());
        assert!(a.windows.len() > 1);
        assert_eq!(a, b);
    }

    #[test]
    fn short_span_windows_no_network_can_score_are_refused() {
        for (rule, words) in [
            (
                ShortSpanWindows {
                    window_frames: 10,
                    ..DENSE
                },
                "needs",
            ),
            (
                ShortSpanWindows {
                    window_frames: 500,
                    up_to_frames: 900,
                    ..DENSE
                },
                "needs",
            ),
            (
                ShortSpanWindows {
                    hop_frames: 0,
                    ..DENSE
                },
                "hop",
            ),
            (
                ShortSpanWindows {
                    up_to_frames: 250,
                    ..DENSE
                },
                "never apply",
            ),
        ] {
            let err = VoiceDetector::load_fused(
                &fused_card_cutting(&[Fusion::ALONE], Some(rule)),
                &[(V1_WEIGHTS, V1_CARD)],
            )
            .err()
            .unwrap_or_else(|| panic!("{rule:?} was accepted"));
            assert!(err.to_string().contains(words), "{rule:?}: {err}");
        }
        assert_eq!(
            "window=250,hop=10,up-to=600".parse::<ShortSpanWindows>(),
            Ok(DENSE)
        );
        for bad in [
            "window=250,hop=10",
            "window=250,hop=x,up-to=600",
            "size=1",
            "",
        ] {
            assert!(bad.parse::<ShortSpanWindows>().is_err(), "{bad}");
        }
    }

    fn scores(a: &ClipAnalysis) -> f64 {
        match a.outcome {
            Outcome::Scored(s) => s,
            Outcome::Unscored(ref why) => panic!("unscored: {why}"),
        }
    }

    #[test]
    fn one_member_alone_is_the_plain_detector() {
        let plain = v1();
        let fused =
            VoiceDetector::load_fused(&fused_card(&[Fusion::ALONE]), &[(V1_WEIGHTS, V1_CARD)])
                .unwrap();
        assert_eq!(fused.sample_rate(), 8_000);
        assert!(fused.single_card().is_some());
        for clip in CLIPS {
            let samples = smoke(clip, 8_000);
            let (a, b) = (plain.scan(&samples).unwrap(), fused.scan(&samples).unwrap());
            assert_eq!(b.model.name, "voice-test-fusion");
            assert_eq!(
                VoiceFinding {
                    model: a.model.clone(),
                    ..b
                },
                a,
                "{clip}"
            );
        }
    }

    #[test]
    fn two_members_add_their_standardised_window_logits() {
        let (f1, f2) = (
            Fusion {
                weight: 0.3,
                mean: 1.5,
                sd: 2.0,
            },
            Fusion {
                weight: 0.7,
                mean: -0.5,
                sd: 4.0,
            },
        );
        let fused = VoiceDetector::load_fused(
            &fused_card(&[f1, f2]),
            &[(V1_WEIGHTS, V1_CARD), (V1_WEIGHTS, V1_CARD)],
        )
        .unwrap();
        assert!(fused.single_card().is_none());
        let plain = v1();
        for clip in CLIPS {
            let samples = smoke(clip, 8_000);
            let (a, b) = (
                plain.analyse(&samples).unwrap(),
                fused.analyse(&samples).unwrap(),
            );
            assert_eq!(a.windows.len(), b.windows.len());
            assert!(!a.windows.is_empty());
            for (x, y) in a.windows.iter().zip(&b.windows) {
                let expected = f1.apply(f64::from(x.logit)) + f2.apply(f64::from(x.logit));
                assert!(
                    (f64::from(y.logit) - expected).abs() < 1e-4,
                    "{clip}: {x:?} {y:?}"
                );
                assert_eq!(
                    (x.start_s, x.end_s, x.counted),
                    (y.start_s, y.end_s, y.counted)
                );
            }
            let expected = f1.apply(scores(&a)) + f2.apply(scores(&a));
            assert!((scores(&b) - expected).abs() < 1e-4, "{clip}");
        }
    }

    #[test]
    fn members_at_two_rates_judge_the_same_seconds() {
        let (narrow, wide) = (
            Fusion {
                weight: 0.6,
                mean: 0.5,
                sd: 3.0,
            },
            Fusion {
                weight: 0.4,
                mean: -1.0,
                sd: 2.0,
            },
        );
        let wide_card = wideband_card();
        // Given in the other order: the lower rate leads whatever the card's order.
        let fused = VoiceDetector::load_fused(
            &fused_card(&[wide, narrow]),
            &[(V1_WEIGHTS, &wide_card), (V1_WEIGHTS, V1_CARD)],
        )
        .unwrap();
        assert_eq!(fused.sample_rate(), 16_000);
        let rates: Vec<u32> = fused
            .member_cards()
            .map(|c| c.features.sample_rate)
            .collect();
        assert_eq!(rates, [8_000, 16_000]);
        let joined = hex(&Sha256::digest([V1_WEIGHTS, V1_WEIGHTS].concat()));
        assert_eq!(fused.id().weights_sha256, joined);

        let plain = v1();
        let wide_alone = VoiceDetector::load(V1_WEIGHTS, &wide_card).unwrap();
        for clip in CLIPS {
            let wideband = smoke(clip, 16_000);
            let narrowband = resampled(&wideband, 16_000, 8_000).unwrap();
            let a = plain.analyse(&narrowband).unwrap();
            let f = fused.analyse(&wideband).unwrap();
            // Speech and windows are the 8 kHz member's, to the sample.
            assert_eq!(a.speech, f.speech, "{clip}");
            assert_eq!(a.windows.len(), f.windows.len(), "{clip}");
            for (x, y) in a.windows.iter().zip(&f.windows) {
                assert_eq!(
                    (x.start_s, x.end_s, x.counted),
                    (y.start_s, y.end_s, y.counted)
                );
            }
            // What is left after the narrowband term is the wideband network's own judgement
            // of the 16 kHz signal: its score alone, which finds speech itself at 16 kHz (the
            // same segments on these clips, though not to the sample on every recording).
            let wide_part =
                (scores(&f) - narrow.apply(scores(&a))) * wide.sd / wide.weight + wide.mean;
            let alone = scores(&wide_alone.analyse(&wideband).unwrap());
            assert!(
                (wide_part - alone).abs() < 0.01 * alone.abs().max(1.0),
                "{clip}: {wide_part} against {alone} alone (narrowband {})",
                scores(&a)
            );
            // The recording checks read what the 8 kHz member read, at the rate they were
            // tuned at: the same noise, music and overlap figures as v1 on the 8 kHz clip.
            let (v1, two) = (
                plain.scan(&narrowband).unwrap(),
                fused.scan(&wideband).unwrap(),
            );
            assert!(v1.conditions.is_some(), "{clip}");
            assert_eq!(v1.conditions, two.conditions, "{clip}");
        }
    }

    #[test]
    fn a_fused_detector_loads_from_its_folder() {
        let dir = std::env::temp_dir().join(format!("aqiqat-fused-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("member.safetensors"), V1_WEIGHTS).unwrap();
        let member = card_with(|c| c["weights"] = "member.safetensors".into());
        std::fs::write(dir.join("member-0.json"), member).unwrap();
        std::fs::write(dir.join("fused.json"), fused_card(&[Fusion::ALONE])).unwrap();
        let loaded = VoiceDetector::load_fused_dir(&dir, "fused.json");
        let missing = VoiceDetector::load_fused_dir(&dir, "absent.json").err();
        // The path a person types: the card file, or a run folder.
        let typed = VoiceDetector::from_path(&dir.join("fused.json"));
        std::fs::write(dir.join("voice-tdnn-mfm.safetensors"), V1_WEIGHTS).unwrap();
        std::fs::write(dir.join("voice-tdnn-mfm.json"), V1_CARD).unwrap();
        let run = VoiceDetector::from_path(&dir);
        let nowhere = VoiceDetector::from_path(&dir.join("nowhere")).err();
        std::fs::create_dir(dir.join("empty")).unwrap();
        let not_a_run = VoiceDetector::from_path(&dir.join("empty")).err();
        std::fs::remove_dir_all(&dir).unwrap();
        let loaded = loaded.unwrap();
        assert_eq!(loaded.id().name, "voice-test-fusion");
        assert_eq!(loaded.sample_rate(), 8_000);
        assert!(missing.unwrap().to_string().contains("cannot read"));
        assert_eq!(typed.unwrap().id(), loaded.id());
        let run = run.unwrap();
        assert_eq!(run.id(), v1().id());
        assert_eq!(run.networks().count(), 1);
        assert_eq!(loaded.networks().count(), 1);
        let nowhere = nowhere.unwrap().to_string();
        assert!(nowhere.contains("no such file or folder"), "{nowhere}");
        let not_a_run = not_a_run.unwrap().to_string();
        assert!(
            not_a_run.contains("cannot read") && not_a_run.contains("voice-tdnn-mfm.safetensors"),
            "{not_a_run}"
        );
        // `--model FOLDER: …` names the folder once; the error adds only the file's name.
        assert!(!not_a_run.contains(&*dir.to_string_lossy()), "{not_a_run}");
    }

    #[test]
    fn a_fusion_that_does_not_match_its_members_is_refused() {
        let one = [(V1_WEIGHTS, V1_CARD)];
        let two = [one[0], one[0]];
        let err = VoiceDetector::load_fused(&fused_card(&[Fusion::ALONE]), &two)
            .err()
            .unwrap();
        assert!(
            err.to_string().contains("names 1 members, 2 were given"),
            "{err}"
        );
        for bad in [
            Fusion {
                sd: 0.0,
                ..Fusion::ALONE
            },
            Fusion {
                weight: -1.0,
                ..Fusion::ALONE
            },
            Fusion {
                sd: -2.0,
                ..Fusion::ALONE
            },
        ] {
            let err = VoiceDetector::load_fused(&fused_card(&[bad]), &one)
                .err()
                .unwrap();
            assert!(err.to_string().contains("unusable fusion term"), "{err}");
        }
        let mut card: serde_json::Value =
            serde_json::from_str(&fused_card(&[Fusion::ALONE])).unwrap();
        card["members"][0]["weights_sha256"] = "00".repeat(32).into();
        let err = VoiceDetector::load_fused(&card.to_string(), &one)
            .err()
            .unwrap();
        assert!(matches!(err, DetectorError::WeightsHash { .. }), "{err}");
        let other = card_with(|c| c["weights_sha256"] = "11".repeat(32).into());
        let err = VoiceDetector::load_fused(&fused_card(&[Fusion::ALONE]), &[(V1_WEIGHTS, &other)])
            .err()
            .unwrap();
        assert!(matches!(err, DetectorError::WeightsHash { .. }), "{err}");
        // Members that find speech by different rules cannot share one speech finder.
        let above = card_with(|c| c["features"]["speech_loud_level"] = "above-floor".into());
        let halves = Fusion {
            weight: 0.5,
            ..Fusion::ALONE
        };
        let err = VoiceDetector::load_fused(
            &fused_card(&[halves, halves]),
            &[one[0], (V1_WEIGHTS, &above)],
        )
        .err()
        .unwrap();
        assert!(err.to_string().contains("different rules"), "{err}");
        VoiceDetector::load_fused(
            &fused_card(&[halves, halves]),
            &[(V1_WEIGHTS, &above), (V1_WEIGHTS, &above)],
        )
        .unwrap();
    }
}
