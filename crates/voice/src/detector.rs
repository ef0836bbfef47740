//! The shipped detector: weights and model card compiled into the binary, so nothing is ever
//! fetched, and a scan turned into a timeline, a calibrated probability and a verdict.

use crate::analysis::{self, ClipAnalysis, Outcome};
use crate::card::ModelCard;
use crate::features::FeatureExtractor;
use aqiqat_dsp::LfccConfig;
use aqiqat_models::tdnn_mfm::{TdnnMfm, TdnnMfmConfig};
use candle_core::{DType, Device};
use candle_nn::VarBuilder;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// The weights `aqiqat-train voice` wrote; `weights/voice-tdnn-mfm.json` says how to remake them.
pub const EMBEDDED_WEIGHTS: &[u8] = include_bytes!("../weights/voice-tdnn-mfm.safetensors");
pub const EMBEDDED_CARD: &str = include_str!("../weights/voice-tdnn-mfm.json");

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
    /// Why the verdict is inconclusive, in plain words.
    pub reason: Option<String>,
    /// Uncalibrated mean window logit (what the thresholds are applied to, after calibration).
    pub score: Option<f64>,
    pub duration_s: f64,
    pub speech_s: f64,
    pub speech: Vec<SpeechSpan>,
    pub timeline: Vec<TimelineWindow>,
    pub thresholds: crate::calibration::Thresholds,
    pub model: ModelId,
}

pub struct VoiceDetector {
    model: TdnnMfm,
    card: ModelCard,
    /// The filterbank the card names: weights and features always travel together.
    lfcc: LfccConfig,
}

/// The models compiled into this binary, as `aqiqat --version` names them: the card's name and
/// version, and the SHA-256 of the weights actually embedded (not the card's claim).
pub fn embedded_models() -> Vec<ModelId> {
    let card: Result<ModelCard, _> = serde_json::from_str(EMBEDDED_CARD);
    let (name, version) = card.map_or_else(
        |_| {
            (
                "voice-tdnn-mfm (unreadable card)".to_owned(),
                "?".to_owned(),
            )
        },
        |c| (c.model, c.version),
    );
    vec![ModelId {
        name,
        version,
        weights_sha256: hex(&Sha256::digest(EMBEDDED_WEIGHTS)),
    }]
}

impl VoiceDetector {
    /// The detector compiled into this binary.
    pub fn embedded() -> Result<Self, DetectorError> {
        Self::load(EMBEDDED_WEIGHTS, EMBEDDED_CARD)
    }

    /// A detector from weights and their card, refusing weights that do not match the card's
    /// hash or a card whose features this build does not compute.
    pub fn load(weights: &[u8], card_json: &str) -> Result<Self, DetectorError> {
        let card: ModelCard = serde_json::from_str(card_json)?;
        let actual = hex(&Sha256::digest(weights));
        if actual != card.weights_sha256 {
            return Err(DetectorError::WeightsHash {
                expected: card.weights_sha256,
                actual,
            });
        }
        let lfcc = card.features.lfcc().map_err(DetectorError::Features)?;
        if card.network.dims != lfcc.dims() {
            return Err(DetectorError::Features(format!(
                "the network reads {} values per frame, the features give {}",
                card.network.dims,
                lfcc.dims()
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
            lfcc,
        })
    }

    pub fn model(&self) -> &TdnnMfm {
        &self.model
    }

    pub fn card(&self) -> &ModelCard {
        &self.card
    }

    pub fn id(&self) -> ModelId {
        ModelId {
            name: self.card.model.clone(),
            version: self.card.version.clone(),
            weights_sha256: self.card.weights_sha256.clone(),
        }
    }

    /// Raw analysis of 8 kHz mono samples (for evaluation, which needs uncalibrated scores).
    pub fn analyse(&self, samples: &[f32]) -> Result<ClipAnalysis, DetectorError> {
        let mut fx = FeatureExtractor::new(self.lfcc);
        Ok(analysis::analyse(&self.model, &mut fx, samples)?)
    }

    /// Judges 8 kHz mono samples.
    pub fn scan(&self, samples: &[f32]) -> Result<VoiceFinding, DetectorError> {
        let a = self.analyse(samples)?;
        Ok(self.finding(&a))
    }

    pub fn probability(&self, score: f64) -> f64 {
        self.card.calibration.probability(score)
    }

    pub fn verdict(&self, probability: f64) -> Verdict {
        let t = &self.card.thresholds;
        if probability >= t.synthetic_above {
            Verdict::Synthetic
        } else if probability < t.human_below {
            Verdict::Human
        } else {
            Verdict::Inconclusive
        }
    }

    fn finding(&self, a: &ClipAnalysis) -> VoiceFinding {
        let (verdict, probability, reason, score) = match &a.outcome {
            Outcome::Scored(score) => {
                let p = self.probability(*score);
                let verdict = self.verdict(p);
                let reason = (verdict == Verdict::Inconclusive).then(|| {
                    format!(
                        "the probability {p:.2} lies between the human ({:.2}) and synthetic \
                         ({:.2}) thresholds",
                        self.card.thresholds.human_below, self.card.thresholds.synthetic_above
                    )
                });
                (verdict, Some(p), reason, Some(*score))
            }
            Outcome::Unscored(why) => (Verdict::Inconclusive, None, Some(why.clone()), None),
        };
        VoiceFinding {
            verdict,
            probability_synthetic: probability,
            reason,
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
            thresholds: self.card.thresholds,
            model: self.id(),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card_with(edit: impl FnOnce(&mut serde_json::Value)) -> String {
        let mut card: serde_json::Value = serde_json::from_str(EMBEDDED_CARD).unwrap();
        edit(&mut card);
        card.to_string()
    }

    #[test]
    fn the_embedded_pair_loads() {
        let d = VoiceDetector::embedded().unwrap();
        assert_eq!(d.lfcc, crate::features::lfcc_config());
    }

    #[test]
    fn a_card_whose_features_do_not_fit_its_network_is_refused() {
        let card = card_with(|c| {
            c["features"]["n_filters"] = 80.into();
            c["features"]["n_ceps"] = 40.into();
        });
        let err = VoiceDetector::load(EMBEDDED_WEIGHTS, &card).err().unwrap();
        assert!(err.to_string().contains("values per frame"), "{err}");

        let card = card_with(|c| c["features"]["sample_rate"] = 16_000.into());
        let err = VoiceDetector::load(EMBEDDED_WEIGHTS, &card).err().unwrap();
        assert!(err.to_string().contains("framing"), "{err}");
    }
}
