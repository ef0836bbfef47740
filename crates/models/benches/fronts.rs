//! Speed of each candidate network's forward pass, on one thread, in multiples of real time,
//! and each against the shipped detector's network measured in the same run.
//!
//!     cargo bench -p aqiqat-models --bench fronts [-- SECONDS] [ge2e]
//!
//! With `ge2e`, only the speaker encoder runs (beside the baseline), on both of its paths.
//!
//! Input: SECONDS (default 60) of feature frames laid out as a scan lays them out. The networks
//! carry their real shapes (weights random, which costs the same, except the converted Whisper
//! weights, which are real; GE2E's are random too, and its 16-bit path quantises them as it
//! would the real ones):
//! - `tdnn-mfm`: v1's network (60-value LFCC frames, 32 channels, 5 layers), one pass over the
//!   whole chunk, then the 4 s windows' pooled statistics and head (as `analysis` runs it);
//! - `whisper-base L2`: the Whisper front (stem + two blocks) over 4 s windows of 80-band
//!   log-mel, one window per second of audio (the scan's hop) and once per 4 s (no overlap);
//! - `attentive head`: the Whisper candidate's head over those windows' frames;
//! - `ge2e`: the speaker encoder over 1.6 s partials at 1.3 per second (Resemblyzer's overlap)
//!   and at 0.625 per second (partials tiling the audio), on its shipped 16-bit integer path,
//!   and at 1.3 per second on its f32 path.

use aqiqat_models::attentive_head::{AttentiveHead, AttentiveHeadConfig};
use aqiqat_models::ge2e::{Ge2e, Precision};
use aqiqat_models::tdnn_mfm::{TdnnMfm, TdnnMfmConfig};
use aqiqat_models::whisper_encoder::{BASE_L2_WEIGHTS, WhisperEncoder, WhisperEncoderConfig};
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use std::path::Path;
use std::time::Instant;

fn best_of<T>(runs: usize, mut f: impl FnMut() -> T) -> f64 {
    (0..runs)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(f());
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn random_vb(varmap: &VarMap) -> VarBuilder<'_> {
    VarBuilder::from_varmap(varmap, DType::F32, &Device::Cpu)
}

fn main() {
    // SAFETY: set before candle starts its thread pool; nothing else runs yet.
    unsafe { std::env::set_var("RAYON_NUM_THREADS", "1") };
    let seconds: f64 = std::env::args()
        .filter_map(|a| a.parse().ok())
        .next()
        .unwrap_or(60.0);
    let only_speaker = std::env::args().any(|a| a == "ge2e");
    let windows = seconds as usize;
    let cpu = Device::Cpu;
    let weights = Path::new(env!("CARGO_MANIFEST_DIR")).join("weights");
    let runs = 3;

    // The shipped network over the chunk, then its 4 s windows every second.
    let varmap = VarMap::new();
    let tdnn = TdnnMfm::new(TdnnMfmConfig::default(), random_vb(&varmap)).unwrap();
    let frames = (seconds * 100.0) as usize;
    let dims = TdnnMfmConfig::default().dims;
    let x = Tensor::randn(0f32, 1.0, (1, dims, frames), &cpu).unwrap();
    let window_starts: Vec<usize> = (0..=frames.saturating_sub(400)).step_by(100).collect();
    let baseline = best_of(runs, || {
        let trunk = tdnn.trunk_t(&x, false).unwrap();
        let valid = 400 - aqiqat_models::tdnn_mfm::RECEPTIVE_FIELD + 1;
        let stats: Vec<Tensor> = window_starts
            .iter()
            .map(|&s| TdnnMfm::pool(&trunk.narrow(2, s, valid).unwrap()).unwrap())
            .collect();
        tdnn.head(&Tensor::cat(&stats, 0).unwrap()).unwrap()
    });

    let fronts = (!only_speaker).then(|| {
        let whisper = WhisperEncoder::from_safetensors(
            WhisperEncoderConfig::base(2),
            std::fs::read(weights.join(BASE_L2_WEIGHTS)).unwrap(),
        )
        .unwrap();
        let mel = Tensor::randn(0f32, 1.0, (1, 80, 400), &cpu).unwrap();
        let one_window = best_of(runs, || whisper.forward(&mel).unwrap());
        let head_vars = VarMap::new();
        let head = AttentiveHead::new(
            AttentiveHeadConfig {
                dims: 512,
                hidden: 128,
            },
            random_vb(&head_vars),
        )
        .unwrap();
        let encoded = Tensor::randn(0f32, 1.0, (windows, 200, 512), &cpu).unwrap();
        let head_time = best_of(runs, || head.forward_t(&encoded, false).unwrap());
        (one_window, head_time)
    });

    let ge2e_vars = VarMap::new();
    let ge2e = Ge2e::new(random_vb(&ge2e_vars)).unwrap();
    let speaker_at = |per_second: f64, precision: Precision| {
        let partials = (seconds * per_second).ceil() as usize;
        let mels = Tensor::rand(0f32, 1.0, (partials, 160, 40), &cpu).unwrap();
        best_of(runs, || ge2e.forward_with(&mels, precision).unwrap())
    };
    let speaker = speaker_at(1.3, Precision::Int16);
    let speaker_tiled = speaker_at(0.625, Precision::Int16);
    let speaker_f32 = speaker_at(1.3, Precision::F32);

    println!("network speed, one thread, {seconds:.0} s of audio; × real time (higher is faster)");
    let row = |name: &str, time: f64| {
        println!(
            "{name:34} {:>9.1}×   {:>6.3} of tdnn-mfm's speed",
            seconds / time,
            baseline / time
        );
    };
    row("tdnn-mfm (shipped)", baseline);
    if let Some((one_window, head_time)) = fronts {
        row(
            "whisper-base L2, window every 1 s",
            one_window * windows as f64,
        );
        row(
            "whisper-base L2, window every 4 s",
            one_window * (windows as f64 / 4.0).ceil(),
        );
        row("attentive head (1 s hop)", head_time);
    }
    row("ge2e speaker encoder, 1.3 partials/s", speaker);
    row("ge2e, 0.625 partials/s (no overlap)", speaker_tiled);
    row("ge2e 1.3/s, f32 products", speaker_f32);
    println!(
        "ge2e's 16-bit path: {:.2}× its f32 path's speed",
        speaker_f32 / speaker
    );
}
