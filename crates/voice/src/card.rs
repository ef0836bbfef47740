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
    pub manifest_sha256: String,
    pub n_train_bonafide: usize,
    pub n_train_spoof: usize,
    pub threads: usize,
    pub seconds: f64,
}

impl FeatureCard {
    /// The configuration this build computes; a card that differs cannot be used with it.
    pub fn current() -> Self {
        let c = crate::features::lfcc_config();
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
        }
    }
}
