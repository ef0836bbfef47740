//! The model card stored beside the weights: everything needed to use them correctly (feature
//! and network configuration, calibration, thresholds) and to reproduce them (the command, the
//! seed, the data's hash).

use crate::calibration::{Platt, Thresholds};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelCard {
    pub model: String,
    /// aqiqat version that trained it.
    pub version: String,
    pub weights: String,
    pub weights_sha256: String,
    pub features: FeatureCard,
    pub network: NetworkCard,
    pub calibration: Platt,
    pub thresholds: Thresholds,
    /// Development-set figures at the chosen checkpoint.
    pub dev: DevFigures,
    pub training: TrainingCard,
    /// What the model has heard, and the verdict bands set on pages it never heard
    /// (`aqiqat-train open-set`); when present, `thresholds` are these bands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_set: Option<OpenSetCard>,
}

/// The open world, measured: the thresholds are set on demo pages and systems the model never
/// trained on, so that a `human` verdict means what it says on voices nobody here has heard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenSetCard {
    /// The command that wrote this section.
    pub command: String,
    /// SHA-256 of the held-out corpus's `manifest.tsv`.
    pub corpus_manifest_sha256: String,
    /// Families of speech synthesis in the model's training data, in plain words.
    pub families_heard: Vec<String>,
    /// Families of the held-out synthetic clips: none of them was in training.
    pub families_not_heard: Vec<String>,
    pub pages: usize,
    pub systems: usize,
    pub n_bonafide: usize,
    pub n_spoof: usize,
    /// Clips with too little speech to score.
    pub unscored: usize,
    /// Clips scan refuses to judge whatever their score, by reason (they count as
    /// `inconclusive` in the folds' shares and are left out of the bands).
    #[serde(default)]
    pub refused: Vec<RefusalCount>,
    /// Equal error rate over all held-out clips.
    pub eer: f64,
    pub max_spoof_called_human: f64,
    pub max_bonafide_called_synthetic: f64,
    /// What the development split alone gave, for comparison.
    pub development_thresholds: Thresholds,
    /// Each fold of held-out pages judged with bands set on the other folds.
    pub folds: Vec<FoldShares>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RefusalCount {
    /// The scan's reason code (`too_little_speech`, `music`, `several_voices`, `too_noisy`).
    pub reason: String,
    pub bonafide: usize,
    pub spoof: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FoldShares {
    pub fold: usize,
    pub pages: Vec<String>,
    pub n_bonafide: usize,
    pub n_spoof: usize,
    /// `null` when the fold holds only one label.
    pub eer: Option<f64>,
    pub spoof: Shares,
    pub bonafide: Shares,
}

/// How the clips of one label were judged.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Shares {
    pub synthetic: f64,
    pub human: f64,
    pub inconclusive: f64,
}

/// How one network's window logits join a fusion: `weight · (logit − mean) / sd`. The mean and
/// spread are those of its held-out clip scores, so that networks whose logits live on
/// different scales are weighed alike before the weight says how much each counts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Fusion {
    pub weight: f64,
    pub mean: f64,
    pub sd: f64,
}

impl Fusion {
    /// A network on its own: its logit unchanged.
    pub const ALONE: Fusion = Fusion {
        weight: 1.0,
        mean: 0.0,
        sd: 1.0,
    };

    pub fn apply(&self, logit: f64) -> f64 {
        self.weight * (logit - self.mean) / self.sd
    }

    /// A usable term: finite, a positive spread and a weight that is not negative (a network
    /// whose evidence counted against its own scores would be a training fault, not a fusion).
    pub fn is_sound(&self) -> bool {
        self.weight.is_finite()
            && self.weight >= 0.0
            && self.mean.is_finite()
            && self.sd.is_finite()
            && self.sd > 0.0
    }
}

/// The card of a detector made of several networks whose scores are fused: each member keeps
/// its own card (and weights file) as `aqiqat-train voice` wrote it; this card says how they
/// join and holds the verdict policy of the fused score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FusedCard {
    pub model: String,
    /// aqiqat version that wrote it.
    pub version: String,
    pub members: Vec<FusedMember>,
    /// Platt scaling of the fused score.
    pub calibration: Platt,
    pub thresholds: Thresholds,
    /// The command that wrote this card.
    pub command: String,
    /// What the fused detector has heard, and its bands set on pages none of its members heard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_set: Option<OpenSetCard>,
    /// How short speech spans are cut into windows; absent, as every span is
    /// ([`crate::features::window_starts`]). The calibration and bands above were set with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub short_spans: Option<ShortSpanWindows>,
}

/// Shorter, denser windows for a short speech span.
///
/// A span no longer than one 4 s window is scored as that one window, which weighs its first
/// and last frames as much as its middle: cutting 0.15 s from each end of a 4 s clip moved a
/// fused candidate's probability by up to 0.078 (the invariance test allows 0.05). Windows
/// shorter than the span, a few frames apart, weigh the edges less, as the 1 s hop already does
/// on long recordings; the trunk still runs once over the span, so only pooling and the head
/// run per window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShortSpanWindows {
    /// Spans of more than `window_frames` and at most this many frames are cut this way.
    pub up_to_frames: usize,
    pub window_frames: usize,
    pub hop_frames: usize,
}

impl ShortSpanWindows {
    /// Refuses a rule no network here could score: windows shorter than `receptive_field`,
    /// longer than the standard window, or a rule that never applies.
    pub fn check(&self, receptive_field: usize) -> Result<(), String> {
        let standard = crate::features::WINDOW_FRAMES;
        if self.hop_frames == 0 {
            return Err("short-span windows need a hop of at least one frame".into());
        }
        if self.window_frames < receptive_field || self.window_frames > standard {
            return Err(format!(
                "short-span windows of {} frames: a network here needs {receptive_field} to \
                 {standard}",
                self.window_frames
            ));
        }
        if self.up_to_frames <= self.window_frames {
            return Err(format!(
                "short-span windows of {} frames for spans up to {} frames would never apply",
                self.window_frames, self.up_to_frames
            ));
        }
        Ok(())
    }
}

impl std::str::FromStr for ShortSpanWindows {
    type Err = String;

    /// `window=250,hop=10,up-to=600`, in 10 ms frames.
    fn from_str(s: &str) -> Result<Self, String> {
        let (mut window, mut hop, mut up_to) = (None, None, None);
        for part in s.split(',') {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| format!("`{part}`: expected KEY=FRAMES"))?;
            let value: usize = value.trim().parse().map_err(|e| format!("`{part}`: {e}"))?;
            let slot = match key.trim() {
                "window" => &mut window,
                "hop" => &mut hop,
                "up-to" => &mut up_to,
                other => return Err(format!("`{other}`: expected window, hop or up-to")),
            };
            *slot = Some(value);
        }
        match (window, hop, up_to) {
            (Some(window_frames), Some(hop_frames), Some(up_to_frames)) => Ok(Self {
                up_to_frames,
                window_frames,
                hop_frames,
            }),
            _ => Err(format!("`{s}`: give window=, hop= and up-to= (frames)")),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FusedMember {
    /// The member's own card file, beside this one.
    pub card: String,
    /// The SHA-256 of the member's weights (its card says the same; both are checked).
    pub weights_sha256: String,
    pub fusion: Fusion,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureCard {
    pub kind: String,
    pub sample_rate: u32,
    pub n_fft: usize,
    pub win: usize,
    pub hop: usize,
    pub n_filters: usize,
    pub f_min: f32,
    pub f_max: f32,
    pub n_ceps: usize,
    pub deltas: bool,
    pub window_frames: usize,
    pub window_hop_frames: usize,
    pub normalisation: String,
    /// Per-band phase statistics appended to each frame (`aqiqat_dsp::phase`; 0: none).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub phase_bands: usize,
    /// The speech finder's loud level, which decides the frames a network trained and scores
    /// on: absent from the cards of networks trained before the choice existed, which used
    /// every frame.
    #[serde(default, skip_serializing_if = "SpeechLoudLevel::is_every_frame")]
    pub speech_loud_level: SpeechLoudLevel,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// [`aqiqat_dsp::vad::LoudLevel`] as a card and a command line name it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SpeechLoudLevel {
    #[default]
    EveryFrame,
    AboveFloor,
}

impl SpeechLoudLevel {
    fn is_every_frame(&self) -> bool {
        *self == Self::EveryFrame
    }

    pub fn rule(self) -> aqiqat_dsp::vad::LoudLevel {
        match self {
            Self::EveryFrame => aqiqat_dsp::vad::LoudLevel::EveryFrame,
            Self::AboveFloor => aqiqat_dsp::vad::LoudLevel::AboveFloor,
        }
    }
}

impl std::str::FromStr for SpeechLoudLevel {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "every-frame" => Ok(Self::EveryFrame),
            "above-floor" => Ok(Self::AboveFloor),
            _ => Err(format!("{s}: not every-frame or above-floor")),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetworkCard {
    pub kind: String,
    pub dims: usize,
    pub channels: usize,
    pub embed: usize,
    pub hidden: usize,
    pub layers: usize,
    pub parameters: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DevFigures {
    pub eer: f64,
    pub auc: f64,
    pub n_bonafide: usize,
    pub n_spoof: usize,
    pub epoch: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingCard {
    pub command: String,
    pub seed: u64,
    pub epochs: usize,
    pub examples_per_epoch: usize,
    pub batch: usize,
    pub lr: f64,
    pub exclude_family: Option<String>,
    /// The leave-one-page-out fold held out (its clips are the development set), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fold: Option<usize>,
    /// The corpus splits trained on, when more than `train` (the development split joins
    /// training with `--train-splits train,dev`; its figures are then in-sample).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub train_splits: Vec<String>,
    pub manifest_sha256: String,
    /// The channel-variant manifests trained on beside `manifest.tsv` (file name → SHA-256):
    /// their audio differs between machines (Opus builds), so the clean manifest's hash alone
    /// does not name the data.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub variants_sha256: std::collections::BTreeMap<String, String>,
    pub n_train_bonafide: usize,
    pub n_train_spoof: usize,
    pub threads: usize,
    pub seconds: f64,
}

impl FeatureCard {
    /// The filterbank this build ships with; a card may name another one over the same framing
    /// (see [`FeatureCard::lfcc`]).
    pub fn current() -> Self {
        Self::from_lfcc(&crate::features::lfcc_config())
    }

    /// The card of a filterbank computed over this build's frames, windows and normalisation.
    pub fn from_lfcc(c: &aqiqat_dsp::LfccConfig) -> Self {
        Self {
            kind: "lfcc".into(),
            sample_rate: c.sample_rate,
            n_fft: c.n_fft,
            win: c.win,
            hop: c.hop,
            n_filters: c.n_filters,
            f_min: c.f_min,
            f_max: c.f_max,
            n_ceps: c.n_ceps,
            deltas: c.deltas,
            window_frames: crate::features::WINDOW_FRAMES,
            window_hop_frames: crate::features::WINDOW_HOP_FRAMES,
            normalisation: format!(
                "speech-weighted sliding mean, ±{} frames",
                crate::features::CMN_HALF_WIDTH
            ),
            phase_bands: 0,
            speech_loud_level: SpeechLoudLevel::EveryFrame,
        }
    }

    /// The filterbank this card asks for, when this build computes everything around it the
    /// same way (10 ms hop, 4 s windows with a 1 s hop, the same normalisation), at 8 kHz or,
    /// for a wideband filterbank, 16 kHz, and the filterbank itself is sound; the reason
    /// otherwise.
    pub fn lfcc(&self) -> Result<aqiqat_dsp::LfccConfig, String> {
        let c = aqiqat_dsp::LfccConfig {
            sample_rate: self.sample_rate,
            n_fft: self.n_fft,
            win: self.win,
            hop: self.hop,
            n_filters: self.n_filters,
            f_min: self.f_min,
            f_max: self.f_max,
            n_ceps: self.n_ceps,
            deltas: self.deltas,
        };
        let build = Self::current();
        let around = |card: &Self| {
            (
                card.kind.clone(),
                card.window_frames,
                card.window_hop_frames,
                card.normalisation.clone(),
            )
        };
        if around(self) != around(&build) {
            return Err(format!(
                "the card's framing {:?} is not this build's {:?}",
                around(self),
                around(&build)
            ));
        }
        let nyquist = self.sample_rate as f32 / 2.0;
        let sound = (self.sample_rate == 8_000 || self.sample_rate == 16_000)
            && self.hop * crate::features::FRAME_RATE == self.sample_rate as usize
            && self.win >= self.hop
            && self.win <= self.n_fft
            && self.n_ceps >= 1
            && self.n_ceps <= self.n_filters
            && self.n_filters <= self.n_fft / 2
            && 0.0 <= self.f_min
            && self.f_min < self.f_max
            && self.f_max <= nyquist;
        if !sound {
            return Err(format!("the card's filterbank is not usable: {self:?}"));
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::{FeatureExtractor, lfcc_config};

    #[test]
    fn a_card_names_its_speech_finders_rule_only_when_it_is_not_the_first_one() {
        let mut card = FeatureCard::current();
        let json = serde_json::to_string(&card).unwrap();
        assert!(!json.contains("speech_loud_level"), "{json}");
        assert_eq!(serde_json::from_str::<FeatureCard>(&json).unwrap(), card);
        card.speech_loud_level = "above-floor".parse().unwrap();
        let json = serde_json::to_string(&card).unwrap();
        assert!(
            json.contains(r#""speech_loud_level":"above-floor""#),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<FeatureCard>(&json).unwrap(), card);
        assert!("loudest".parse::<SpeechLoudLevel>().is_err());
    }

    #[test]
    fn this_builds_card_names_this_builds_filterbank() {
        assert_eq!(FeatureCard::current().lfcc(), Ok(lfcc_config()));
    }

    #[test]
    fn a_finer_filterbank_over_the_same_frames_is_computed_as_named() {
        let finer = aqiqat_dsp::LfccConfig {
            n_filters: 80,
            n_ceps: 40,
            ..lfcc_config()
        };
        let card = FeatureCard::from_lfcc(&finer);
        assert_eq!(card.lfcc(), Ok(finer));
        assert_eq!(FeatureExtractor::new(card.lfcc().unwrap()).dims(), 120);
    }

    #[test]
    fn framing_or_a_filterbank_this_build_cannot_compute_is_refused() {
        let broken = [
            // A hop other than 10 ms would change what a window and its timeline mean.
            aqiqat_dsp::LfccConfig {
                sample_rate: 16_000,
                ..lfcc_config()
            },
            // Only telephone-band and wideband rates are decoded for.
            aqiqat_dsp::LfccConfig {
                sample_rate: 44_100,
                hop: 441,
                win: 1_000,
                n_fft: 1_024,
                ..lfcc_config()
            },
            aqiqat_dsp::LfccConfig {
                hop: 160,
                ..lfcc_config()
            },
            aqiqat_dsp::LfccConfig {
                n_ceps: 30,
                n_filters: 20,
                ..lfcc_config()
            },
            aqiqat_dsp::LfccConfig {
                win: 300,
                ..lfcc_config()
            },
            aqiqat_dsp::LfccConfig {
                f_max: 4_500.0,
                ..lfcc_config()
            },
        ];
        for c in broken {
            assert!(FeatureCard::from_lfcc(&c).lfcc().is_err(), "{c:?}");
        }
        let wideband = aqiqat_dsp::LfccConfig {
            sample_rate: 16_000,
            hop: 160,
            win: 400,
            n_fft: 512,
            n_filters: 60,
            f_max: 8_000.0,
            ..lfcc_config()
        };
        assert_eq!(FeatureCard::from_lfcc(&wideband).lfcc(), Ok(wideband));
        let mut renamed = FeatureCard::current();
        renamed.normalisation = "none".into();
        assert!(renamed.lfcc().unwrap_err().contains("framing"));
    }
}
