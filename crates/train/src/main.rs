//! # aqiqat-train
//!
//! `aqiqat-train voice --data DIR --out DIR`: trains the synthetic-speech detector from the
//! corpus `tools/voice-data/prepare.py` or `corpus.py` writes (DIR/manifest.tsv, and
//! DIR/manifest_channel.tsv or DIR/manifest_aug.tsv for codec/channel variants; with `--fold K`
//! one leave-one-page-out fold of DIR/folds.json), and writes `voice-tdnn-mfm.safetensors` with
//! `voice-tdnn-mfm.json`, the model card (feature and network configuration, calibration,
//! thresholds, development figures, the exact command).
//!
//! `aqiqat-train calibrate --data DIR --model RUN` refits a run's calibration and thresholds
//! on the development split, keeping its weights: what `voice` would have written at the end,
//! for when the fitting rule changes and the weights need not.
//!
//! `aqiqat-train open-set --corpus DIR --model RUN ...` sets a run's verdict thresholds on
//! demo pages and systems it never trained on (see `open_set.rs`).
//!
//! Everything random (initial weights, crops, augmentation, example order) comes from one seeded
//! generator, so the same data, seed and thread count reproduce the same weights.

mod band_limit;
mod fuse;
mod image_clip;
mod image_clip_head;
mod image_cnn;
mod image_corpus;
mod image_folds;
mod image_model;
mod logistic;
mod open_set;
mod rawboost;
mod rng;
mod samples;
mod speaker_eval;
mod whisper_head;

use aqiqat_dsp::LfccConfig;
use aqiqat_dsp::vad::Segment;
use aqiqat_intake::{AudioStream, Limits};
use aqiqat_models::tdnn_mfm::{TdnnMfm, TdnnMfmConfig};
use aqiqat_voice::analysis::{self, Outcome};
use aqiqat_voice::calibration::{Platt, Thresholds};
use aqiqat_voice::card::{
    DevFigures, FeatureCard, ModelCard, NetworkCard, SpeechLoudLevel, TrainingCard,
};
use aqiqat_voice::detector::VoiceDetector;
use aqiqat_voice::features::{self, CMN_HALF_WIDTH, FeatureExtractor};
use aqiqat_voice::manifest::{self, Entry};
use aqiqat_voice::metrics;
use candle_core::{DType, Device, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW, VarBuilder, VarMap};
use clap::{Parser, Subcommand};
use rng::Rng;
use samples::Samples;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Parser)]
#[command(name = "aqiqat-train", about = "Trains aqiqat's detectors")]
struct Cli {
    #[command(subcommand)]
    what: What,
}

#[derive(Subcommand)]
enum What {
    /// The synthetic-speech detector (telephone-band LFCC + TDNN with max-feature-map).
    Voice(VoiceArgs),
    /// Refit a trained run's calibration and thresholds on the development split of its corpus,
    /// exactly as `voice` fits them, and rewrite its card; the weights stay as they are.
    Calibrate(CalibrateArgs),
    /// Set a trained run's verdict thresholds on demo pages and systems it never trained on
    /// (the folds of a corpus built by tools/voice-data/corpus.py), and record per fold how
    /// held-out clips are judged; rewrites its card, the weights stay as they are.
    OpenSet(open_set::OpenSetArgs),
    /// Fuse several candidates' networks into one detector: weights learnt on their
    /// leave-one-page-out folds, verdict bands set on the folds' clips scanned through the
    /// fused fold networks; writes the fused card beside the shipped members.
    Fuse(fuse::FuseArgs),
    /// Encode every clip of a corpus with the frozen front of Whisper base (stem + two
    /// blocks) and cache the frames, for `whisper-head`.
    WhisperCache(whisper_head::CacheArgs),
    /// Train the Whisper candidate's attentive-pooling head on cached frames.
    WhisperHead(whisper_head::HeadArgs),
    /// Measure voiceprints on a corpus's genuine speakers and their clones, and set the
    /// speaker check's thresholds on half of the speakers.
    SpeakerEval(speaker_eval::SpeakerEvalArgs),
    /// Normalise the image corpus that tools/image-data/extract.py took out of its sources:
    /// the same decode, JPEG history, border cut, rescale, off-grid crop and re-encoding for
    /// both classes, near-duplicates dropped, and the leakage check.
    ImageCorpus(image_corpus::ImageCorpusArgs),
    /// Measure an image detector candidate by leave-one-generator-out on a normalised image
    /// corpus, then on its test split of generators and a real source never used.
    ImageFolds(image_folds::ImageFoldsArgs),
    /// Train the image detector a scan ships (the residual CNN) with one seeded command, set
    /// its threshold on real photos it never saw, and read the test split at it.
    ImageModel(image_model::ImageModelArgs),
    /// Train the head that lets the frozen CLIP encoder decide a scan's image verdict, set its
    /// threshold on real photos it never saw, and read the test split through the scan's code.
    ImageClipHead(image_clip_head::ImageClipHeadArgs),
}

#[derive(clap::Args, Clone)]
struct CalibrateArgs {
    /// The corpus the run was trained on (its manifest hash must match the card's).
    #[arg(long)]
    data: PathBuf,
    /// The run folder, holding voice-tdnn-mfm.safetensors and voice-tdnn-mfm.json.
    #[arg(long)]
    model: PathBuf,
    /// The run was trained with `--no-channel`: calibrate on clean development clips only.
    #[arg(long)]
    no_channel: bool,
}

#[derive(clap::Args, Clone)]
struct VoiceArgs {
    /// Corpus folder with manifest.tsv (and manifest_channel.tsv).
    #[arg(long)]
    data: PathBuf,
    /// Where to write voice-tdnn-mfm.safetensors and voice-tdnn-mfm.json.
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = 30)]
    epochs: usize,
    /// Training crops per epoch, half of each label.
    #[arg(long, default_value_t = 8192)]
    examples: usize,
    /// Frames per training crop (10 ms each); scans use 400-frame windows, and the pooled
    /// statistics carry over, while shorter crops make each step cheaper.
    #[arg(long, default_value_t = 200)]
    crop: usize,
    /// Channels of the hidden trunk layers.
    #[arg(long, default_value_t = 32)]
    channels: usize,
    /// Channels of the pooled trunk layer.
    #[arg(long, default_value_t = 64)]
    embed: usize,
    /// Linear filters of the LFCC filterbank over 0–3.8 kHz (20: 190 Hz apart, the spectral
    /// envelope only; 80 and more resolve a voice's harmonics).
    #[arg(long, default_value_t = features::lfcc_config().n_filters)]
    filters: usize,
    /// Cepstral coefficients kept (with Δ and ΔΔ, three times this many values per frame).
    #[arg(long, default_value_t = features::lfcc_config().n_ceps)]
    ceps: usize,
    /// Analysis frame length in samples (200 at 8 kHz: 25 ms), at most `--n-fft`.
    #[arg(long, default_value_t = features::lfcc_config().win)]
    frame: usize,
    #[arg(long, default_value_t = features::lfcc_config().n_fft)]
    n_fft: usize,
    /// The rate clips are decoded at and features computed at: 8000 (the telephone band every
    /// scan uses) or 16000 (a wideband candidate; give it `--frame`, `--n-fft` and `--f-max`
    /// to match).
    #[arg(long, default_value_t = features::lfcc_config().sample_rate)]
    rate: u32,
    /// Top of the filterbank in Hz.
    #[arg(long, default_value_t = features::lfcc_config().f_max)]
    f_max: f32,
    /// RawBoost-style augmentation on half the crops of both labels: random band filtering
    /// with a nonlinear term, impulsive signal-dependent noise, coloured stationary noise.
    #[arg(long)]
    rawboost: bool,
    /// Low-pass this share of the crops of both labels at a random cutoff, 0.80–0.99 of
    /// Nyquist (a resampler's trace), before any other distortion: the wideband networks had
    /// learnt how full the top band is, which says where a clip was recorded. 0 (the default)
    /// draws nothing, so earlier recipes draw the same crops.
    #[arg(long, default_value_t = 0.0)]
    band_limit: f32,
    /// Trunk layers (0–5); 0 trains a linear-statistics baseline.
    #[arg(long, default_value_t = 5)]
    layers: usize,
    #[arg(long, default_value_t = 20_261_125)]
    seed: u64,
    #[arg(long, default_value_t = 32)]
    batch: usize,
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// Leave every spoof of this family out of training and development (leave-one-out runs).
    #[arg(long)]
    exclude_family: Option<String>,
    /// Train on clean clips only.
    #[arg(long)]
    no_channel: bool,
    /// Leave one page out: train on the train split without fold K's pages, systems and
    /// speakers (`folds.json` of a corpus from tools/voice-data/corpus.py) and develop on fold
    /// K's clips, instead of the train and dev splits.
    #[arg(long)]
    fold: Option<usize>,
    /// No gain, noise or clipping augmentation (for ablations).
    #[arg(long)]
    no_augment: bool,
    /// Score the development clips after the last epoch only. Scoring draws nothing from the
    /// seeded generator, so the last epoch's network and scores are the same to the bit; a
    /// fold run is spared scoring its held-out clips every epoch (a large share of its time),
    /// and no best epoch is chosen: OUT/ then holds the last epoch too.
    #[arg(long)]
    score_last_only: bool,
    /// Draw genuine crops page first, then clip, as synthetic crops are drawn family first:
    /// drawn uniformly over clips, a genuine source of a few hundred clips (LibriSpeech's
    /// readers) weighs little beside pages of thousands, and its recording chain can end up on
    /// the synthetic side. Off by default, so earlier recipes draw the same crops; measured
    /// worse than the clip-uniform draw on dev, test and the public set (model card, session
    /// 26).
    #[arg(long)]
    genuine_by_page: bool,
    /// With `--genuine-by-page`: a page is drawn with weight (its clips)^POWER; 0 draws every
    /// page alike, 1 is the same share per clip as without pages, 0.5 is between.
    #[arg(long, default_value_t = 0.0, requires = "genuine_by_page")]
    genuine_page_power: f64,
    /// The corpus splits to train on, comma-separated. `train,dev` also trains on the
    /// development split: corpus v2 deals whole systems into splits, so a system that landed
    /// in dev (Griffin-Lim copy-synthesis, 361 clips) is otherwise never heard by any run,
    /// while v2's bands come from the folds, not from dev. With `--fold`, dev clips of the
    /// fold's pages, systems and speakers stay out like its train clips; without it, the
    /// development figures become in-sample.
    #[arg(long, value_delimiter = ',', default_value = "train")]
    train_splits: Vec<String>,
    /// Append per-band phase statistics (instantaneous-frequency change and group-delay
    /// roughness, `aqiqat_dsp::phase`) in this many equal bands over the filterbank's range to
    /// every frame: the cue of vocoders that rebuild the magnitude and guess the phase, which
    /// no magnitude filterbank sees (tools/voice-data/phase_probe.py). 0: none.
    #[arg(long, default_value_t = 0)]
    phase_bands: usize,
    /// The speech finder's loud level: `every-frame` (every network before session 31) or
    /// `above-floor`, which digital silence around a clip cannot lower. The card records it
    /// and the detector finds speech the same way.
    #[arg(long, default_value = "every-frame")]
    speech_loud_level: SpeechLoudLevel,
}

/// The pools genuine crops are drawn from: all usable genuine clips as one, or one per page.
fn genuine_pools(train: &[Clip], bona: &[usize], by_page: bool) -> Vec<Vec<usize>> {
    if !by_page {
        return vec![bona.to_vec()];
    }
    let mut by_page: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for &i in bona {
        by_page.entry(train[i].page.as_str()).or_default().push(i);
    }
    by_page.into_values().collect()
}

/// Cumulative draw weights of the pools, each (its clips)^`power`.
fn page_weights(pools: &[Vec<usize>], power: f64) -> Vec<f64> {
    pools
        .iter()
        .scan(0.0, |sum, pool| {
            *sum += (pool.len() as f64).powf(power);
            Some(*sum)
        })
        .collect()
}

/// The pool whose cumulative weight first exceeds `u` (`u` in [0, total)).
fn weighted_pick(cumulative: &[f64], u: f64) -> usize {
    cumulative
        .partition_point(|&c| c <= u)
        .min(cumulative.len() - 1)
}

/// A decoded clip trimmed to its speech span, with its speech segments.
struct Clip {
    samples: Samples,
    segments: Vec<Segment>,
    spoof: bool,
    family: String,
    /// The demo page or source the clip came from (the corpus's `page` column).
    page: String,
    path: String,
}

impl Clip {
    /// Analysis frames of `win` samples each, `hop` apart.
    fn frames(&self, win: usize, hop: usize) -> usize {
        if self.samples.len() < win {
            0
        } else {
            (self.samples.len() - win) / hop + 1
        }
    }
}

fn main() {
    keep_freed_memory();
    let cli = Cli::parse();
    let done = match cli.what {
        What::Voice(args) => train_voice(&args),
        What::Calibrate(args) => calibrate(&args),
        What::OpenSet(args) => open_set::run(&args),
        What::Fuse(args) => fuse::run(&args),
        What::WhisperCache(args) => whisper_head::cache(&args),
        What::WhisperHead(args) => whisper_head::train(&args),
        What::SpeakerEval(args) => speaker_eval::run(&args),
        What::ImageCorpus(args) => image_corpus::run(&args).map_err(Into::into),
        What::ImageFolds(args) => image_folds::run(&args),
        What::ImageModel(args) => image_model::run(&args),
        What::ImageClipHead(args) => image_clip_head::run(&args),
    };
    if let Err(e) = done {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

/// Training allocates and frees tensors of tens of megabytes every step. glibc would return
/// each to the kernel and fault fresh zeroed pages in for the next: a fifth of the run spent in
/// page faults. Keeping freed memory in the process removes that (measured: 56 s → 45 s per
/// epoch) and changes no result.
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only tunes the allocator; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_TOP_PAD, 256 << 20);
    }
}

/// The corpus as a run reads it: its entries, and the SHA-256 of every manifest they came
/// from, each hashed from the very bytes that were parsed, so a card never names data the run
/// did not see.
struct CorpusRead {
    entries: Vec<Entry>,
    /// Of `manifest.tsv`: the corpus's identity as a card records it.
    manifest_sha256: String,
    /// Of each channel-variant manifest read (none with `--no-channel`).
    variants_sha256: BTreeMap<String, String>,
}

/// Channel variants: `manifest_channel.tsv` from prepare.py, `manifest_aug.tsv` from
/// corpus.py; each variant carries its parent's split, fold, page, system and speaker.
const VARIANT_MANIFESTS: [&str; 2] = ["manifest_channel.tsv", "manifest_aug.tsv"];

/// The corpus's entries that a run with these options trains and develops on, with the hashes
/// of the manifests they came from.
fn read_corpus(
    data: &Path,
    no_channel: bool,
    exclude_family: Option<&str>,
) -> Result<CorpusRead, Box<dyn std::error::Error>> {
    fn hashed(path: &Path) -> Result<(Vec<Entry>, String), manifest::ManifestError> {
        let (entries, bytes) = manifest::read_with_bytes(path)?;
        Ok((entries, aqiqat_intake::hash::sha256_bytes(&bytes)))
    }
    let (mut entries, manifest_sha256) = hashed(&data.join("manifest.tsv"))?;
    let mut variants_sha256 = BTreeMap::new();
    for variants in VARIANT_MANIFESTS {
        let path = data.join(variants);
        if !no_channel && path.exists() {
            let (more, sha256) = hashed(&path)?;
            entries.extend(more);
            variants_sha256.insert(variants.to_string(), sha256);
        }
    }
    if let Some(family) = exclude_family {
        entries.retain(|e| !(e.label.is_spoof() && e.get("family") == Some(family)));
    }
    Ok(CorpusRead {
        entries,
        manifest_sha256,
        variants_sha256,
    })
}

/// Fold `k` of a leave-one-page-out list: training is the train split without the fold's
/// pages, systems and speakers; development is the fold's own clips.
fn fold_split(
    data: &Path,
    entries: &[Entry],
    k: usize,
    train_splits: &[String],
) -> Result<(Vec<Entry>, Vec<Entry>), Box<dyn std::error::Error>> {
    #[derive(serde::Deserialize)]
    struct Fold {
        fold: usize,
        pages: Vec<String>,
        systems: Vec<String>,
        speakers: Vec<String>,
    }
    let folds: Vec<Fold> =
        serde_json::from_str(&std::fs::read_to_string(data.join("folds.json"))?)?;
    let fold = folds
        .iter()
        .find(|f| f.fold == k)
        .ok_or_else(|| format!("folds.json has no fold {k} (it has {})", folds.len()))?;
    let in_fold = |e: &Entry| e.get("fold").and_then(|f| f.parse::<usize>().ok()) == Some(k);
    let touches = |e: &Entry, column: &str, names: &[String]| {
        e.get(column).is_some_and(|v| names.iter().any(|n| n == v))
    };
    let dev: Vec<Entry> = entries.iter().filter(|e| in_fold(e)).cloned().collect();
    let train: Vec<Entry> = entries
        .iter()
        .filter(|e| in_splits(e, train_splits) && !in_fold(e))
        .filter(|e| {
            !touches(e, "page", &fold.pages)
                && !touches(e, "system", &fold.systems)
                && !touches(e, "speaker", &fold.speakers)
        })
        .cloned()
        .collect();
    if dev.is_empty() || train.is_empty() {
        return Err(format!(
            "fold {k} leaves {} training and {} development clips",
            train.len(),
            dev.len()
        )
        .into());
    }
    Ok((train, dev))
}

/// Training and development entries: fold `fold` of a leave-one-page-out list when given,
/// else the corpus's train and dev splits.
fn train_and_dev(
    data: &Path,
    entries: &[Entry],
    fold: Option<usize>,
    train_splits: &[String],
) -> Result<(Vec<Entry>, Vec<Entry>), Box<dyn std::error::Error>> {
    if let Some(bad) = train_splits
        .iter()
        .find(|s| !["train", "dev"].contains(&s.as_str()))
    {
        return Err(format!(
            "cannot train on the {bad:?} split (train and dev only: test is for reporting)"
        )
        .into());
    }
    Ok(match fold {
        Some(k) => fold_split(data, entries, k, train_splits)?,
        None => (
            entries
                .iter()
                .filter(|e| in_splits(e, train_splits))
                .cloned()
                .collect(),
            split_of(entries, "dev"),
        ),
    })
}

fn in_splits(e: &Entry, splits: &[String]) -> bool {
    e.get("split")
        .is_some_and(|s| splits.iter().any(|t| t == s))
}

/// Logs how many clips of each label each side holds (`true`: spoof).
fn report_sizes(
    train: impl Iterator<Item = bool>,
    dev: impl Iterator<Item = bool>,
    started: Instant,
) {
    let (train, dev): (Vec<bool>, Vec<bool>) = (train.collect(), dev.collect());
    let count = |labels: &[bool], spoof: bool| labels.iter().filter(|&&s| s == spoof).count();
    eprintln!(
        "train: {} bonafide, {} spoof; dev: {} bonafide, {} spoof ({:.0} s)",
        count(&train, false),
        count(&train, true),
        count(&dev, false),
        count(&dev, true),
        started.elapsed().as_secs_f64()
    );
}

fn split_of(entries: &[Entry], name: &str) -> Vec<Entry> {
    entries
        .iter()
        .filter(|e| e.get("split") == Some(name))
        .cloned()
        .collect()
}

/// Calibration and verdict thresholds from development scores: one rule for `voice` and
/// `calibrate`.
fn fit_calibration(bonafide: &[f64], spoof: &[f64]) -> (Platt, Thresholds) {
    let platt = Platt::fit(bonafide, spoof);
    let at_eer = metrics::eer(bonafide, spoof);
    let thresholds = Thresholds::from_development(&platt, bonafide, at_eer.threshold);
    (platt, thresholds)
}

fn calibrate(args: &CalibrateArgs) -> Result<(), Box<dyn std::error::Error>> {
    let card_path = args.model.join("voice-tdnn-mfm.json");
    let card_json = std::fs::read_to_string(&card_path)?;
    let weights = std::fs::read(args.model.join("voice-tdnn-mfm.safetensors"))?;
    let detector = VoiceDetector::load(&weights, &card_json)?;
    let mut card = detector
        .single_card()
        .ok_or("calibrate rewrites the card of a single network")?
        .clone();
    let CorpusRead {
        entries,
        manifest_sha256,
        ..
    } = read_corpus(
        &args.data,
        args.no_channel,
        card.training.exclude_family.as_deref(),
    )?;
    if manifest_sha256 != card.training.manifest_sha256 {
        return Err(format!(
            "{} is not the corpus this run was trained on (manifest {manifest_sha256}, the card names {})",
            args.data.display(),
            card.training.manifest_sha256
        )
        .into());
    }
    eprintln!("decoding…");
    let mut fx = FeatureExtractor::from_card(&card.features)?;
    let dev = load(
        &split_of(&entries, "dev"),
        fx.sample_rate(),
        card.features.speech_loud_level,
    )?;
    let (bonafide, spoof) = split_scores(&score_clips(detector.model(), &dev, &mut fx)?);
    let dev_eer = metrics::eer(&bonafide, &spoof).eer;
    if (bonafide.len(), spoof.len()) != (card.dev.n_bonafide, card.dev.n_spoof)
        || (dev_eer - card.dev.eer).abs() > 1e-9
    {
        return Err(format!(
            "the development split scores differently from the card ({} bonafide, {} spoof, EER {dev_eer}; the card: {}, {}, {})",
            bonafide.len(),
            spoof.len(),
            card.dev.n_bonafide,
            card.dev.n_spoof,
            card.dev.eer
        )
        .into());
    }
    let (platt, thresholds) = fit_calibration(&bonafide, &spoof);
    eprintln!(
        "calibration {:?} -> {platt:?}\nthresholds {:?} -> {thresholds:?}",
        card.calibration, card.thresholds
    );
    card.calibration = platt;
    card.thresholds = thresholds;
    if card.open_set.take().is_some() {
        eprintln!("the open-set bands no longer match the calibration: run `open-set` again");
    }
    std::fs::write(&card_path, serde_json::to_string_pretty(&card)? + "\n")?;
    eprintln!("wrote {}", card_path.display());
    Ok(())
}

fn train_voice(args: &VoiceArgs) -> Result<(), Box<dyn std::error::Error>> {
    let started = Instant::now();
    // Hashed as read, not when the card is written: a corpus rewritten during the run must not
    // lend the card a hash of data the run never saw.
    let CorpusRead {
        entries,
        manifest_sha256,
        variants_sha256,
    } = read_corpus(&args.data, args.no_channel, args.exclude_family.as_deref())?;
    let (train_entries, dev_entries) =
        train_and_dev(&args.data, &entries, args.fold, &args.train_splits)?;
    eprintln!("decoding…");
    let train = load(&train_entries, args.rate, args.speech_loud_level)?;
    let dev = load(&dev_entries, args.rate, args.speech_loud_level)?;
    report_audio_memory(train.iter().chain(&dev));
    report_sizes(
        train.iter().map(|c| c.spoof),
        dev.iter().map(|c| c.spoof),
        started,
    );
    let count = |clips: &[Clip], spoof: bool| clips.iter().filter(|c| c.spoof == spoof).count();

    let lfcc = LfccConfig {
        n_filters: args.filters,
        n_ceps: args.ceps,
        win: args.frame,
        n_fft: args.n_fft,
        f_max: args.f_max,
        ..features::lfcc_config_at(args.rate)
    };
    let feature_card = FeatureCard {
        phase_bands: args.phase_bands,
        speech_loud_level: args.speech_loud_level,
        ..FeatureCard::from_lfcc(&lfcc)
    };
    // The detector will refuse features it cannot compute; refuse them here, before training.
    let mut fx = FeatureExtractor::from_card(&feature_card)?;
    let dims = fx.dims();
    let device = Device::Cpu;
    let mut rng = Rng::new(args.seed);
    let varmap = VarMap::new();
    let config = TdnnMfmConfig {
        dims,
        channels: args.channels,
        embed: args.embed,
        layers: args.layers.min(5),
        ..TdnnMfmConfig::default()
    };
    let model = TdnnMfm::new(
        config,
        VarBuilder::from_varmap(&varmap, DType::F32, &device),
    )?;
    initialise(&varmap, &mut rng)?;
    let mut opt = optimiser(&varmap, args.lr)?;

    let usable = |spoof: bool| -> Vec<usize> {
        (0..train.len())
            .filter(|&i| train[i].spoof == spoof && train[i].frames(lfcc.win, lfcc.hop) >= 100)
            .collect()
    };
    let bona = usable(false);
    // Spoofs are drawn family first, then clip: with clips drawn uniformly, the family with
    // most clips (formant synthesis, the easiest) filled most batches and the network learnt
    // little else (measured: 2 % EER on espeak, 45–55 % on every other family of its own
    // training set).
    let mut by_family: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for i in usable(true) {
        by_family
            .entry(train[i].family.as_str())
            .or_default()
            .push(i);
    }
    let families: Vec<Vec<usize>> = by_family.into_values().collect();
    let genuine = genuine_pools(&train, &bona, args.genuine_by_page);
    let genuine_cumulative = page_weights(&genuine, args.genuine_page_power);
    let steps = args.examples.div_ceil(args.batch);
    // Every improvement is written at once, so an interrupted run keeps its best model; the
    // last epoch's goes to `OUT/last/` at the end.
    let write_model = |dir: &Path,
                       best_epoch: usize,
                       dev_eer: f64,
                       scores: &[DevScore]|
     -> Result<(), Box<dyn std::error::Error>> {
        let (b, s) = split_scores(scores);
        let (platt, thresholds) = fit_calibration(&b, &s);

        std::fs::create_dir_all(dir)?;
        let weights_path = dir.join("voice-tdnn-mfm.safetensors");
        varmap.save(&weights_path)?;
        let weights_sha256 = aqiqat_intake::hash::sha256_bytes(&std::fs::read(&weights_path)?);
        let parameters = varmap.all_vars().iter().map(|v| v.elem_count()).sum();
        let card = ModelCard {
            model: "voice-tdnn-mfm".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            weights: "voice-tdnn-mfm.safetensors".into(),
            weights_sha256,
            features: feature_card.clone(),
            network: NetworkCard {
                kind: "tdnn-mfm".into(),
                dims: config.dims,
                channels: config.channels,
                embed: config.embed,
                hidden: config.hidden,
                layers: config.layers,
                parameters,
            },
            calibration: platt,
            thresholds,
            dev: DevFigures {
                eer: dev_eer,
                auc: metrics::auc(&b, &s),
                n_bonafide: b.len(),
                n_spoof: s.len(),
                epoch: best_epoch,
            },
            training: TrainingCard {
                command: crate::command_line(),
                seed: args.seed,
                epochs: args.epochs,
                examples_per_epoch: steps * args.batch,
                batch: args.batch,
                lr: args.lr,
                exclude_family: args.exclude_family.clone(),
                fold: args.fold,
                train_splits: if args.train_splits == ["train"] {
                    Vec::new()
                } else {
                    args.train_splits.clone()
                },
                manifest_sha256: manifest_sha256.clone(),
                variants_sha256: variants_sha256.clone(),
                n_train_bonafide: count(&train, false),
                n_train_spoof: count(&train, true),
                threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
                seconds: started.elapsed().as_secs_f64(),
            },
            open_set: None,
        };
        std::fs::write(
            dir.join("voice-tdnn-mfm.json"),
            serde_json::to_string_pretty(&card)? + "\n",
        )?;
        eprintln!(
            "  wrote {} (epoch {best_epoch}, dev EER {:.2} %)",
            weights_path.display(),
            dev_eer * 100.0
        );
        Ok(())
    };
    let augment = Augment {
        noise: !args.no_augment,
        rawboost: args.rawboost,
        band_limit: args.band_limit,
        sample_rate: args.rate,
    };
    let mut epochs_log = EpochLog::new(&args.out)?;
    let mut last_scores = Vec::new();
    let mut last_eer = f64::NAN;
    let mut best: Option<(f64, usize, Snapshot)> = None;
    for epoch in 0..args.epochs {
        opt.set_learning_rate(cosine_rate(args.lr, epoch, args.epochs));
        let t0 = Instant::now();
        let mut loss_sum = 0.0;
        for _ in 0..steps {
            // One crop length per batch: mostly full windows, sometimes short ones, so that
            // short calls are scored by a network that has seen short inputs.
            let len = if rng.uniform(0.0, 1.0) < 0.7 {
                args.crop
            } else {
                100 + rng.below(args.crop.max(101) - 100)
            };
            let mut feats: Vec<f32> = Vec::with_capacity(args.batch * len * dims);
            let mut targets = Vec::with_capacity(args.batch);
            for b in 0..args.batch {
                // Only clips at least as long as the batch's crops: a short clip tiled to
                // length repeats itself, and short clips are mostly genuine (demo pages cut
                // their synthetic samples from whole sentences), so the network learnt
                // "repeats = human" instead of the voice.
                let mut clip = &train[bona[0]];
                for _ in 0..100 {
                    let pool = if b % 2 == 0 {
                        match &genuine[..] {
                            // One pool draws nothing to choose it: the default recipe's crops
                            // stay what they were.
                            [all] => all,
                            // Equal pages keep the draw they were first run with
                            // (runs/voice-v2/diag/lfcc-gbp), which the weighted pick would
                            // not reproduce.
                            pools if args.genuine_page_power == 0.0 => {
                                &pools[rng.below(pools.len())]
                            }
                            pools => {
                                let total = *genuine_cumulative.last().expect("pools");
                                let u = f64::from(rng.uniform(0.0, 1.0)) * total;
                                &pools[weighted_pick(&genuine_cumulative, u)]
                            }
                        }
                    } else {
                        &families[rng.below(families.len())]
                    };
                    clip = &train[pool[rng.below(pool.len())]];
                    if clip.frames(lfcc.win, lfcc.hop) >= len {
                        break;
                    }
                }
                let crop = crop_features(clip, len, &augment, &mut rng, &mut fx);
                // After 100 short draws (a family of short clips only) a crop is tiled.
                feats.extend(crop.iter().cycle().take(len * dims));
                targets.push(if clip.spoof { 1f32 } else { 0.0 });
            }
            let x = Tensor::from_vec(feats, (args.batch, len, dims), &device)?
                .transpose(1, 2)?
                .contiguous()?;
            let y = Tensor::from_vec(targets, args.batch, &device)?;
            let logits = model.forward_t(&x, true)?;
            let loss = bce_with_logits(&logits, &y)?;
            opt.backward_step(&loss)?;
            loss_sum += loss.to_scalar::<f32>()? as f64;
        }
        if args.score_last_only && epoch + 1 < args.epochs {
            eprintln!(
                "epoch {epoch:2}: loss {:.4} ({:.1} s, not scored)",
                loss_sum / steps as f64,
                t0.elapsed().as_secs_f64(),
            );
            epochs_log.record(epoch, loss_sum / steps as f64, f64::NAN, t0.elapsed())?;
            continue;
        }
        let scores = score_clips(&model, &dev, &mut fx)?;
        let (b, s) = split_scores(&scores);
        let eer = metrics::eer(&b, &s).eer;
        eprintln!(
            "epoch {epoch:2}: loss {:.4}, dev EER {:.2} % ({:.1} s){}",
            loss_sum / steps as f64,
            eer * 100.0,
            t0.elapsed().as_secs_f64(),
            family_breakdown(&scores)
        );
        epochs_log.record(epoch, loss_sum / steps as f64, eer, t0.elapsed())?;
        if best.as_ref().is_none_or(|(e, _, _)| eer <= *e) {
            best = Some((eer, epoch, snapshot(&varmap)?));
            write_model(&args.out, epoch, eer, &scores)?;
        }
        last_scores = scores;
        last_eer = eer;
    }
    // The fixed recipe's model, chosen by nothing but the epoch count: what a fold run's
    // held-out scores (`dev-scores-last.tsv`) come from, and what a fusion ships.
    write_model(
        &args.out.join("last"),
        args.epochs.saturating_sub(1),
        last_eer,
        &last_scores,
    )?;
    write_scores(
        &args.out.join("dev-scores-last.tsv"),
        last_scores
            .iter()
            .map(|s| (s.clip.path.as_str(), s.clip.spoof, s.score)),
    )?;
    let (dev_eer, best_epoch, weights) = best.ok_or("no epoch ran")?;
    // The last epoch's scores are at hand when it was the best (always with
    // --score-last-only): scoring the clips again would give the same figures.
    if best_epoch + 1 == args.epochs {
        report_hardest(&last_scores);
    } else {
        restore(&varmap, &weights)?;
        report_hardest(&score_clips(&model, &dev, &mut fx)?);
    }
    // With --score-last-only nothing was chosen: the one scored epoch is the last.
    let which = if args.score_last_only {
        "scored once, after the last"
    } else {
        "best"
    };
    eprintln!(
        "{which}: epoch {best_epoch}, dev EER {:.2} %, in {}",
        dev_eer * 100.0,
        args.out.display()
    );
    Ok(())
}

/// This run's command as a card records it: the program by its name (where it was built or
/// copied to says nothing about the run) and each argument quoted for a POSIX shell where it
/// needs it, so that the line can be pasted back (`--heard key=words with spaces`).
pub(crate) fn command_line() -> String {
    let mut args = std::env::args();
    let program = args
        .next()
        .map(|p| {
            std::path::Path::new(&p)
                .file_name()
                .map_or(p.clone(), |n| n.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "aqiqat-train".into());
    std::iter::once(program)
        .chain(args.map(|a| shell_quoted(&a)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `word` as one POSIX shell word.
fn shell_quoted(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

/// AdamW with light weight decay: every trainer's optimiser.
pub(crate) fn optimiser(varmap: &VarMap, lr: f64) -> candle_core::Result<AdamW> {
    AdamW::new(
        varmap.all_vars(),
        ParamsAdamW {
            lr,
            weight_decay: 1e-4,
            ..Default::default()
        },
    )
}

/// The learning rate of `epoch`: cosine decay from `base` over the run.
pub(crate) fn cosine_rate(base: f64, epoch: usize, epochs: usize) -> f64 {
    let progress = epoch as f64 / epochs as f64;
    base * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
}

/// `OUT/epochs.tsv`: every epoch's development EER, rewritten after each, so that folds can be
/// compared at a fixed epoch count rather than at each fold's best epoch (chosen on the fold
/// itself).
struct EpochLog {
    path: PathBuf,
    text: String,
}

impl EpochLog {
    fn new(out: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(out)?;
        Ok(Self {
            path: out.join("epochs.tsv"),
            text: String::from("epoch\tloss\tdev_eer\tseconds\n"),
        })
    }

    fn record(
        &mut self,
        epoch: usize,
        loss: f64,
        eer: f64,
        took: std::time::Duration,
    ) -> std::io::Result<()> {
        self.text += &format!("{epoch}\t{loss:.5}\t{eer:.5}\t{:.1}\n", took.as_secs_f64());
        std::fs::write(&self.path, &self.text)
    }
}

/// Binary cross-entropy on logits in the stable form `max(x, 0) − x·y + ln(1 + e^−|x|)`:
/// candle's version takes the log of a sigmoid, which saturates to `ln 0` for confident logits
/// and turns their gradients into NaN.
fn bce_with_logits(logits: &Tensor, targets: &Tensor) -> candle_core::Result<Tensor> {
    let softplus_tail = ((logits.abs()?.neg()?.exp()? + 1.0)?).log()?;
    (logits.relu()? - (logits * targets)?)?
        .add(&softplus_tail)?
        .mean_all()
}

/// What a training crop goes through besides a random gain.
struct Augment {
    /// Sometimes white noise, sometimes clipping.
    noise: bool,
    rawboost: bool,
    /// Share of crops low-passed first ([`band_limit`]).
    band_limit: f32,
    sample_rate: u32,
}

/// The features (row-major, `dims` per frame) of a random `len`-frame crop of `clip` (shorter
/// when the clip is), augmented for both labels alike: gain ±12 dB, then (see [`Augment`]) a low-pass
/// on the `--band-limit` share, RawBoost on half the crops, white noise (15–40 dB SNR) on 30 %, clipping on 10 %. Features
/// are computed over the crop plus the normalisation's context on either side, as a scan would
/// see them inside a longer recording.
fn crop_features(
    clip: &Clip,
    len: usize,
    augment: &Augment,
    rng: &mut Rng,
    fx: &mut FeatureExtractor,
) -> Vec<f32> {
    let (win, hop) = (fx.frame_len(), fx.hop());
    let total = clip.frames(win, hop);
    let n = len.min(total);
    let start = rng.below(total - n + 1);
    let ctx_start = start.saturating_sub(CMN_HALF_WIDTH);
    let ctx_end = (start + n + CMN_HALF_WIDTH).min(total);
    let (s0, s1) = (ctx_start * hop, (ctx_end - 1) * hop + win);
    let gain = 10f32.powf(rng.uniform(-12.0, 12.0) / 20.0);
    let mut audio = clip.samples.to_f32(s0..s1);
    for s in &mut audio {
        *s *= gain;
    }
    if augment.band_limit > 0.0 && rng.uniform(0.0, 1.0) < augment.band_limit {
        band_limit::apply(&mut audio, rng);
    }
    if augment.rawboost && rng.uniform(0.0, 1.0) < 0.5 {
        rawboost::apply(&mut audio, augment.sample_rate, rng);
    }
    let noise = augment.noise;
    if noise && rng.uniform(0.0, 1.0) < 0.3 {
        let power = audio.iter().map(|s| s * s).sum::<f32>() / audio.len() as f32;
        let sigma = (power / 10f32.powf(rng.uniform(15.0, 40.0) / 10.0)).sqrt();
        for s in &mut audio {
            *s += sigma * rng.gaussian();
        }
    }
    if noise && rng.uniform(0.0, 1.0) < 0.1 {
        let peak = audio.iter().fold(0f32, |m, s| m.max(s.abs()));
        let limit = peak * rng.uniform(0.3, 0.8);
        for s in &mut audio {
            *s = s.clamp(-limit, limit);
        }
    }
    let segments: Vec<Segment> = clip
        .segments
        .iter()
        .filter(|g| g.end > s0 && g.start < s1)
        .map(|g| Segment {
            start: g.start.max(s0) - s0,
            end: g.end.min(s1) - s0,
        })
        .collect();
    let frames = fx.compute(&audio, &segments);
    frames.slice(start - ctx_start, n).to_vec()
}

/// How the decoded audio is held: how many clips fit in 16 bits ([`Samples`]) and the bytes.
fn report_audio_memory<'a>(clips: impl Iterator<Item = &'a Clip>) {
    let (mut compact, mut total, mut bytes) = (0usize, 0usize, 0usize);
    for clip in clips {
        total += 1;
        compact += usize::from(clip.samples.is_pcm16());
        bytes += clip.samples.heap_bytes();
    }
    eprintln!(
        "audio: {compact} of {total} clips held as 16-bit, {:.1} GB",
        bytes as f64 / 1e9
    );
}

/// Decodes every entry to mono at `rate` and trims it to its speech span, found by the
/// network's own speech finder rule.
fn load(
    entries: &[Entry],
    rate: u32,
    loud_level: SpeechLoudLevel,
) -> Result<Vec<Clip>, Box<dyn std::error::Error>> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunks: Vec<&[Entry]> = entries
        .chunks(entries.len().div_ceil(threads).max(1))
        .collect();
    let parts: Vec<Vec<Clip>> = std::thread::scope(|scope| {
        let handles: Vec<_> = chunks
            .iter()
            .map(|part| {
                scope.spawn(move || {
                    let vad = features::vad_config_at(rate, loud_level.rule());
                    part.iter()
                        .filter_map(|e| {
                            let samples = match AudioStream::open(&e.path, rate, &Limits::default())
                                .and_then(|s| s.read_to_end())
                            {
                                Ok(s) => s,
                                Err(err) => {
                                    eprintln!("skipping: {err}");
                                    return None;
                                }
                            };
                            let segs = aqiqat_dsp::vad::speech_segments(&samples, &vad);
                            let (first, last) = (segs.first()?, segs.last()?);
                            let offset = first.start;
                            Some(Clip {
                                samples: Samples::new(&samples[first.start..last.end]),
                                segments: segs
                                    .iter()
                                    .map(|s| Segment {
                                        start: s.start - offset,
                                        end: s.end - offset,
                                    })
                                    .collect(),
                                spoof: e.label.is_spoof(),
                                family: e.get("family").unwrap_or("").to_string(),
                                page: e.get("page").unwrap_or("").to_string(),
                                path: e.path.display().to_string(),
                            })
                        })
                        .collect()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("decoder thread"))
            .collect()
    });
    Ok(parts.into_iter().flatten().collect())
}

/// A development clip's score, by the analysis `aqiqat scan` runs, on the clip cut to its speech
/// span at load. The speech detector run again on the cut clip finds other segments on about
/// 1 % of clips, which then score a little differently from a scan of the whole file (up to a
/// logit; `aqiqat-train fuse` measures it), so bands are set on scans, not on these.
struct DevScore<'a> {
    clip: &'a Clip,
    score: f64,
}

/// Scores every clip that gets a score; an unscored clip (too little speech) is left out, as
/// `aqiqat eval` leaves it out.
fn score_clips<'a>(
    model: &TdnnMfm,
    clips: &'a [Clip],
    fx: &mut FeatureExtractor,
) -> candle_core::Result<Vec<DevScore<'a>>> {
    let mut out = Vec::with_capacity(clips.len());
    for clip in clips {
        if let Outcome::Scored(score) = analysis::analyse(model, fx, &clip.samples.all())?.outcome {
            out.push(DevScore { clip, score });
        }
    }
    Ok(out)
}

/// The development clips the model gets most wrong: where to look for data problems.
fn report_hardest(scores: &[DevScore]) {
    let mut sorted: Vec<&DevScore> = scores.iter().collect();
    sorted.sort_by(|a, b| a.score.total_cmp(&b.score));
    let worst_spoof = sorted.iter().filter(|s| s.clip.spoof).take(5);
    let worst_bona = sorted.iter().rev().filter(|s| !s.clip.spoof).take(5);
    for s in worst_spoof.chain(worst_bona) {
        let label = if s.clip.spoof { "spoof" } else { "bonafide" };
        eprintln!("  hardest {label:8} {:8.3} {}", s.score, s.clip.path);
    }
}

/// Development scores, one clip per line (path, label, score), for figures per channel,
/// language or family from the manifest's columns.
fn write_scores<'a>(
    path: &Path,
    scores: impl Iterator<Item = (&'a str, bool, f64)>,
) -> std::io::Result<()> {
    let mut out = String::from("path\tlabel\tscore\n");
    for (clip, spoof, score) in scores {
        let label = if spoof { "spoof" } else { "bonafide" };
        out += &format!("{clip}\t{label}\t{score:.6}\n");
    }
    std::fs::write(path, out)
}

fn split_scores(scores: &[DevScore]) -> (Vec<f64>, Vec<f64>) {
    let pick = |spoof: bool| {
        scores
            .iter()
            .filter(|s| s.clip.spoof == spoof)
            .map(|s| s.score)
            .collect::<Vec<_>>()
    };
    (pick(false), pick(true))
}

/// Per-family EER against all development bonafide: where the model is weak.
fn family_breakdown(scores: &[DevScore]) -> String {
    let (bona, _) = split_scores(scores);
    let mut families: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for s in scores.iter().filter(|s| s.clip.spoof) {
        families.entry(&s.clip.family).or_default().push(s.score);
    }
    families
        .iter()
        .map(|(f, s)| format!(" {f}:{:.1}", metrics::eer(&bona, s).eer * 100.0))
        .collect()
}

/// He-uniform weights, zero biases, unit batch-norm scales, from the seeded generator.
pub(crate) fn initialise(varmap: &VarMap, rng: &mut Rng) -> candle_core::Result<()> {
    let data = varmap.data().lock().expect("varmap lock");
    let mut names: Vec<&String> = data.keys().collect();
    names.sort();
    for name in names {
        let var = &data[name];
        let dims = var.dims().to_vec();
        let n: usize = dims.iter().product();
        let values: Vec<f32> = if name.ends_with("running_var")
            || (name.contains("norm") && name.ends_with("weight"))
        {
            vec![1.0; n]
        } else if name.ends_with("bias") || name.ends_with("running_mean") {
            vec![0.0; n]
        } else {
            let fan_in: usize = dims[1..].iter().product();
            let bound = (6.0 / fan_in.max(1) as f32).sqrt();
            (0..n).map(|_| rng.uniform(-bound, bound)).collect()
        };
        var.set(&Tensor::from_vec(values, dims, &Device::Cpu)?)?;
    }
    Ok(())
}

/// Every variable's value by name.
type Snapshot = Vec<(String, Tensor)>;

fn snapshot(varmap: &VarMap) -> candle_core::Result<Snapshot> {
    let data = varmap.data().lock().expect("varmap lock");
    data.iter()
        .map(|(k, v)| Ok((k.clone(), v.as_tensor().copy()?)))
        .collect()
}

fn restore(varmap: &VarMap, weights: &[(String, Tensor)]) -> candle_core::Result<()> {
    let data = varmap.data().lock().expect("varmap lock");
    for (k, t) in weights {
        data[k].set(t)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aqiqat_voice::manifest::Label;

    #[test]
    fn a_recorded_argument_is_one_shell_word() {
        assert_eq!(shell_quoted("--runs"), "--runs");
        assert_eq!(shell_quoted("/w/a+/w/b"), "/w/a+/w/b");
        assert_eq!(
            shell_quoted("codec-lm=codec LM (VALL-E)"),
            "'codec-lm=codec LM (VALL-E)'"
        );
        assert_eq!(shell_quoted("it's"), "'it'\\''s'");
        assert_eq!(shell_quoted(""), "''");
        // The shell reads each back as the one argument it was.
        for word in ["a b", "it's", "$HOME", "x;y", ""] {
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("printf %s {}", shell_quoted(word)))
                .output()
                .unwrap();
            assert_eq!(String::from_utf8(out.stdout).unwrap(), word);
        }
    }

    #[test]
    fn genuine_crops_come_from_one_pool_or_one_per_page() {
        let clip = |page: &str| Clip {
            samples: Samples::Float(Vec::new()),
            segments: Vec::new(),
            spoof: false,
            family: "human".into(),
            page: page.into(),
            path: String::new(),
        };
        let train = [
            clip("big"),
            clip("small"),
            clip("big"),
            clip("big"),
            clip("other"),
        ];
        let bona = [0, 1, 2, 3];
        assert_eq!(genuine_pools(&train, &bona, false), vec![vec![0, 1, 2, 3]]);
        // Each page a pool of its own, only the usable clips given: the small page is drawn
        // as often as the big one.
        let pools = genuine_pools(&train, &bona, true);
        assert_eq!(pools, vec![vec![0, 2, 3], vec![1]]);
        // Weighted by clips^power: 1 gives the pages their clips' share, 0.5 their square root.
        assert_eq!(page_weights(&pools, 1.0), vec![3.0, 4.0]);
        let root = page_weights(&pools, 0.5);
        assert!((root[0] - 3f64.sqrt()).abs() < 1e-12 && (root[1] - root[0] - 1.0).abs() < 1e-12);
        let picks: Vec<usize> = [0.0, 2.9, 3.0, 3.99]
            .iter()
            .map(|&u| weighted_pick(&[3.0, 4.0], u))
            .collect();
        assert_eq!(picks, vec![0, 0, 1, 1]);
    }

    fn entry(
        label: Label,
        split: &str,
        fold: &str,
        page: &str,
        system: &str,
        speaker: &str,
    ) -> Entry {
        let columns = [
            ("split", split),
            ("fold", fold),
            ("page", page),
            ("system", system),
            ("speaker", speaker),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        Entry {
            path: PathBuf::from(format!("{page}-{system}-{speaker}.flac")),
            label,
            columns,
        }
    }

    #[test]
    fn a_card_names_the_manifests_it_read_hashed_from_the_bytes_it_parsed() {
        let dir = std::env::temp_dir().join(format!("aqiqat-variants-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let clean = "path\tlabel\na.flac\tbonafide\n";
        std::fs::write(dir.join("manifest.tsv"), clean).unwrap();
        let read = read_corpus(&dir, false, None).unwrap();
        assert_eq!(read.entries.len(), 1);
        assert_eq!(
            read.manifest_sha256,
            aqiqat_intake::hash::sha256_bytes(clean.as_bytes())
        );
        assert!(read.variants_sha256.is_empty());

        let aug = "path\tlabel\nb.flac\tspoof\n";
        std::fs::write(dir.join("manifest_aug.tsv"), aug).unwrap();
        let read = read_corpus(&dir, false, None).unwrap();
        assert_eq!(read.entries.len(), 2);
        assert_eq!(read.entries[1].path, dir.join("b.flac"));
        assert_eq!(
            read.variants_sha256
                .get("manifest_aug.tsv")
                .map(String::as_str),
            Some(aqiqat_intake::hash::sha256_bytes(aug.as_bytes()).as_str())
        );
        assert_eq!(read.variants_sha256.len(), 1);

        let clean_only = read_corpus(&dir, true, None).unwrap();
        assert_eq!(clean_only.entries.len(), 1, "--no-channel reads no variant");
        assert!(clean_only.variants_sha256.is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_fold_trains_without_its_pages_systems_and_speakers() {
        let dir = std::env::temp_dir().join(format!("aqiqat-fold-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("folds.json"),
            r#"[{"fold": 0, "pages": ["p0"], "systems": ["s0"], "speakers": ["a"], "bonafide": 1, "spoof": 1},
                {"fold": 1, "pages": ["p1"], "systems": ["s1"], "speakers": ["b"], "bonafide": 1, "spoof": 1}]"#,
        )
        .unwrap();
        use Label::{Bonafide, Spoof};
        let entries = vec![
            entry(Bonafide, "train", "0", "p0", "human", "a"),
            entry(Spoof, "train", "0", "p0", "s0", "v"),
            entry(Bonafide, "train", "1", "p1", "human", "b"),
            entry(Spoof, "train", "1", "p1", "s1", "w"),
            // Fold 0's system and speaker met on another page must not train fold 0.
            entry(Spoof, "train", "1", "p1", "s0", "w"),
            entry(Bonafide, "train", "1", "p1", "human", "a"),
            // Development and test clips train no fold.
            entry(Bonafide, "dev", "-1", "p2", "human", "c"),
            entry(Spoof, "test", "-1", "p3", "s3", "x"),
        ];
        let train_only = ["train".to_string()];
        let (train, dev) = fold_split(&dir, &entries, 0, &train_only).unwrap();
        let names = |v: &[Entry]| -> Vec<String> {
            v.iter().map(|e| e.path.display().to_string()).collect()
        };
        assert_eq!(names(&dev), ["p0-human-a.flac", "p0-s0-v.flac"]);
        assert_eq!(names(&train), ["p1-human-b.flac", "p1-s1-w.flac"]);
        assert!(fold_split(&dir, &entries, 7, &train_only).is_err());

        // With the development split trained on too, its clips join every fold's training,
        // except those of the fold's pages, systems and speakers; test clips never do.
        let mut with_dev = entries.clone();
        with_dev.push(entry(Spoof, "dev", "-1", "p0", "s4", "y"));
        with_dev.push(entry(Spoof, "dev", "-1", "p4", "s0", "z"));
        let splits = ["train".to_string(), "dev".to_string()];
        let (train, dev) = fold_split(&dir, &with_dev, 0, &splits).unwrap();
        assert_eq!(names(&dev), ["p0-human-a.flac", "p0-s0-v.flac"]);
        assert_eq!(
            names(&train),
            ["p1-human-b.flac", "p1-s1-w.flac", "p2-human-c.flac"]
        );
        let (train, dev) = train_and_dev(&dir, &with_dev, None, &splits).unwrap();
        assert_eq!(train.len(), 9, "every train and dev clip");
        assert_eq!(dev.len(), 3, "the dev split still scores");
        assert!(train_and_dev(&dir, &with_dev, None, &["test".to_string()]).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The trainer end to end on a corpus of the smoke clips (`../shared` beside the checkout):
    /// a run that scores only its last epoch keeps the very network and scores of one that
    /// scored every epoch, which is what lets fold runs skip the scoring.
    #[test]
    fn scoring_only_the_last_epoch_keeps_the_last_network_to_the_bit() {
        let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/voice");
        let dir = std::env::temp_dir().join(format!("aqiqat-train-last-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let smoke = std::fs::read_to_string(shared.join("smoke.tsv")).unwrap();
        // Every third clip of each label develops, the rest train.
        let mut manifest = String::from("path\tlabel\tfamily\tsplit\n");
        let mut seen = BTreeMap::<&str, usize>::new();
        for row in smoke.lines().skip(1) {
            let [path, label, generator, ..] = row.split('\t').collect::<Vec<_>>()[..] else {
                panic!("smoke.tsv row {row:?}");
            };
            let n = seen.entry(label).or_default();
            let split = if n.is_multiple_of(3) { "dev" } else { "train" };
            *n += 1;
            let path = shared.join(path);
            manifest += &format!("{}\t{label}\t{generator}\t{split}\n", path.display());
        }
        std::fs::write(dir.join("manifest.tsv"), manifest).unwrap();
        let run = |name: &str, last_only: bool| -> PathBuf {
            let out = dir.join(name);
            let mut argv: Vec<String> = ["aqiqat-train", "voice", "--epochs", "3"]
                .into_iter()
                .chain(["--examples", "32", "--batch", "8", "--crop", "120"])
                .map(String::from)
                .collect();
            argv.extend(["--data".into(), dir.display().to_string()]);
            argv.extend(["--out".into(), out.display().to_string()]);
            if last_only {
                argv.push("--score-last-only".into());
            }
            let What::Voice(args) = Cli::parse_from(argv).what else {
                unreachable!()
            };
            train_voice(&args).unwrap();
            out
        };
        let every = run("every", false);
        let last = run("last", true);
        let read =
            |p: PathBuf| std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        let weights = "last/voice-tdnn-mfm.safetensors";
        assert_eq!(read(every.join(weights)), read(last.join(weights)));
        let scores = read(every.join("dev-scores-last.tsv"));
        assert_eq!(scores, read(last.join("dev-scores-last.tsv")));
        // 8 genuine and 8 synthetic development clips, each scored once.
        assert_eq!(String::from_utf8(scores).unwrap().lines().count(), 17);
        // The run that skipped scoring says so in its epoch log instead of inventing figures.
        let log = String::from_utf8(read(last.join("epochs.tsv"))).unwrap();
        let eers: Vec<&str> = log
            .lines()
            .skip(1)
            .map(|l| l.split('\t').nth(2).unwrap())
            .collect();
        assert_eq!(eers[..2], ["NaN", "NaN"]);
        assert!(eers[2].parse::<f64>().unwrap().is_finite());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
