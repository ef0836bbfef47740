//! The Whisper candidate: an attentive-pooling head trained over the frozen front of Whisper
//! base (stem + two blocks, `aqiqat_models::whisper_encoder`).
//!
//! The encoder is frozen, so its frames are computed once per clip and cached
//! (`whisper-cache`): 50 frames of 512 values per second of speech, fp16, one file per clip
//! under the cache folder, named by the SHA-256 of the clip's corpus path. Clips are decoded
//! at 16 kHz, trimmed to their speech span and cut into 4 s pieces, each encoded on its own,
//! as a scan would encode its windows. `whisper-head` then trains only the head, on random
//! crops of those frames, by the same folds and with the same outputs as `voice` (epochs.tsv,
//! dev-scores-last.tsv), so `folds.sh`/`folds_summary.py` compare it with the others.

use crate::rng::Rng;
use crate::{
    CorpusRead, EpochLog, bce_with_logits, cosine_rate, initialise, optimiser, read_corpus,
    report_sizes, train_and_dev,
};
use aqiqat_dsp::vad::{LoudLevel, VadConfig};
use aqiqat_dsp::whisper_mel::{self, N_MELS, WhisperMel};
use aqiqat_intake::{AudioStream, Limits};
use aqiqat_models::attentive_head::{AttentiveHead, AttentiveHeadConfig};
use aqiqat_models::whisper_encoder::{BASE_L2_WEIGHTS, WhisperEncoder, WhisperEncoderConfig};
use aqiqat_voice::features;
use aqiqat_voice::manifest::Entry;
use aqiqat_voice::metrics;
use candle_core::{DType, Device, Tensor};
use candle_nn::{Optimizer, VarBuilder, VarMap};
use half::f16;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// Values per encoder frame.
const DIMS: usize = 512;
/// Encoder frames per second.
const FRAMES_PER_SECOND: usize = 50;
/// Samples per encoded piece: 4 s, a scan window.
const PIECE: usize = 4 * whisper_mel::RATE as usize;
/// A tail shorter than this (0.5 s) is not encoded.
const MIN_PIECE: usize = whisper_mel::RATE as usize / 2;

#[derive(clap::Args, Clone)]
pub struct CacheArgs {
    /// Corpus folder (manifest.tsv, and manifest_aug.tsv unless --no-channel).
    #[arg(long)]
    data: PathBuf,
    /// Where the frames go (one file per clip; existing ones are kept, so a run resumes).
    #[arg(long)]
    cache: PathBuf,
    #[arg(long)]
    no_channel: bool,
    /// The converted encoder weights.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../models/weights/whisper-base-encoder-L2.safetensors"))]
    weights: PathBuf,
}

#[derive(clap::Args, Clone)]
pub struct HeadArgs {
    #[arg(long)]
    data: PathBuf,
    #[arg(long)]
    cache: PathBuf,
    #[arg(long)]
    out: PathBuf,
    /// Leave one page out (see `voice --fold`); without it, the train and dev splits.
    #[arg(long)]
    fold: Option<usize>,
    #[arg(long)]
    no_channel: bool,
    #[arg(long, default_value_t = 8)]
    epochs: usize,
    #[arg(long, default_value_t = 4096)]
    examples: usize,
    /// Encoder frames per training crop (20 ms each).
    #[arg(long, default_value_t = 100)]
    crop: usize,
    #[arg(long, default_value_t = 128)]
    hidden: usize,
    #[arg(long, default_value_t = 20_261_125)]
    seed: u64,
    #[arg(long, default_value_t = 32)]
    batch: usize,
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
}

/// The cache file of a clip, by its path as the manifest names it.
fn cache_file(cache: &Path, entry: &Entry) -> PathBuf {
    let key = aqiqat_intake::hash::sha256_bytes(entry.path.to_string_lossy().as_bytes());
    cache.join(&key[..2]).join(format!("{key}.f16"))
}

/// Encoder frames of one clip: decoded at 16 kHz, trimmed to its speech, in 4 s pieces.
fn encode_clip(
    path: &Path,
    encoder: &WhisperEncoder,
    mel: &mut WhisperMel,
    vad: &VadConfig,
) -> Result<Vec<f16>, Box<dyn std::error::Error>> {
    let samples = AudioStream::open(path, whisper_mel::RATE, &Limits::default())?.read_to_end()?;
    let segments = aqiqat_dsp::vad::speech_segments(&samples, vad);
    let (Some(first), Some(last)) = (segments.first(), segments.last()) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for piece in samples[first.start..last.end].chunks(PIECE) {
        if piece.len() < MIN_PIECE {
            continue;
        }
        let frames = WhisperMel::n_frames(piece.len());
        let input = Tensor::from_vec(mel.compute(piece), (1, N_MELS, frames), &Device::Cpu)?;
        let encoded = encoder.forward(&input)?.squeeze(0)?.flatten_all()?;
        out.extend(encoded.to_vec1::<f32>()?.into_iter().map(f16::from_f32));
    }
    Ok(out)
}

pub fn cache(args: &CacheArgs) -> Result<(), Box<dyn std::error::Error>> {
    let entries = read_corpus(&args.data, args.no_channel, None)?.entries;
    let weights = std::fs::read(&args.weights)?;
    let todo: Vec<&Entry> = entries
        .iter()
        .filter(|e| !cache_file(&args.cache, e).exists())
        .collect();
    eprintln!(
        "{} clips, {} already cached",
        entries.len(),
        entries.len() - todo.len()
    );
    let started = Instant::now();
    let done = AtomicUsize::new(0);
    let seconds = AtomicUsize::new(0);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    std::thread::scope(|scope| -> Result<(), String> {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let (todo, weights, done, seconds) = (&todo, &weights, &done, &seconds);
                scope.spawn(move || -> Result<(), String> {
                    let encoder = WhisperEncoder::from_safetensors(
                        WhisperEncoderConfig::base(2),
                        weights.clone(),
                    )
                    .map_err(|e| e.to_string())?;
                    let mut mel = WhisperMel::new();
                    // The cache was built with the every-frame rule (the default).
                    let vad = features::vad_config_at(whisper_mel::RATE, LoudLevel::default());
                    for entry in todo.iter().skip(t).step_by(threads) {
                        let frames = match encode_clip(&entry.path, &encoder, &mut mel, &vad) {
                            Ok(f) => f,
                            Err(e) => {
                                eprintln!("skipping {}: {e}", entry.path.display());
                                continue;
                            }
                        };
                        let file = cache_file(&args.cache, entry);
                        let bytes: Vec<u8> =
                            frames.iter().flat_map(|v| v.to_le_bytes()).collect();
                        // Written whole under a temporary name, so a killed run leaves no
                        // half file that a resumed one would take for done.
                        let partial = file.with_extension("part");
                        std::fs::create_dir_all(file.parent().expect("a parent"))
                            .and_then(|_| std::fs::write(&partial, bytes))
                            .and_then(|_| std::fs::rename(&partial, &file))
                            .map_err(|e| e.to_string())?;
                        seconds.fetch_add(frames.len() / DIMS, Ordering::Relaxed);
                        let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                        if n % 1000 == 0 {
                            let audio = seconds.load(Ordering::Relaxed) / FRAMES_PER_SECOND;
                            let spent = started.elapsed().as_secs_f64();
                            eprintln!(
                                "{n}/{} clips, {audio} s of speech in {spent:.0} s ({:.1}× real time)",
                                todo.len(),
                                audio as f64 / spent
                            );
                        }
                    }
                    Ok(())
                })
            })
            .collect();
        for w in workers {
            w.join().expect("encoder thread")?;
        }
        Ok(())
    })?;
    eprintln!(
        "cached {} clips in {:.0} s",
        done.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// One clip's cached frames.
struct Cached {
    frames: Vec<f16>,
    spoof: bool,
    path: String,
}

impl Cached {
    fn len(&self) -> usize {
        self.frames.len() / DIMS
    }

    fn rows(&self, start: usize, n: usize) -> impl Iterator<Item = f32> + '_ {
        self.frames[start * DIMS..(start + n) * DIMS]
            .iter()
            .map(|v| v.to_f32())
    }
}

fn load_cached(cache: &Path, entries: &[Entry]) -> Vec<Cached> {
    let mut missing = 0;
    let clips: Vec<Cached> = entries
        .iter()
        .filter_map(|e| {
            let Ok(bytes) = std::fs::read(cache_file(cache, e)) else {
                missing += 1;
                return None;
            };
            let frames: Vec<f16> = bytes
                .chunks_exact(2)
                .map(|b| f16::from_le_bytes([b[0], b[1]]))
                .collect();
            (frames.len() >= DIMS * FRAMES_PER_SECOND).then(|| Cached {
                frames,
                spoof: e.label.is_spoof(),
                path: e.path.display().to_string(),
            })
        })
        .collect();
    if missing > 0 {
        eprintln!("{missing} clips are not cached (run whisper-cache) and are left out");
    }
    clips
}

/// Windows of 4 s (200 frames) every second, the last aligned to the end: a clip's score is
/// their mean logit, as a scan scores its windows.
fn score(head: &AttentiveHead, clip: &Cached) -> candle_core::Result<f64> {
    let (n, window) = (clip.len(), 4 * FRAMES_PER_SECOND);
    let len = window.min(n);
    let mut starts: Vec<usize> = (0..=n - len).step_by(FRAMES_PER_SECOND).collect();
    if *starts.last().expect("one") != n - len {
        starts.push(n - len);
    }
    let data: Vec<f32> = starts.iter().flat_map(|&s| clip.rows(s, len)).collect();
    let x = Tensor::from_vec(data, (starts.len(), len, DIMS), &Device::Cpu)?;
    let logits = head.forward_t(&x, false)?.to_vec1::<f32>()?;
    Ok(logits.iter().map(|&l| l as f64).sum::<f64>() / logits.len() as f64)
}

pub fn train(args: &HeadArgs) -> Result<(), Box<dyn std::error::Error>> {
    let started = Instant::now();
    let CorpusRead {
        entries,
        manifest_sha256,
        ..
    } = read_corpus(&args.data, args.no_channel, None)?;
    let (train_entries, dev_entries) =
        train_and_dev(&args.data, &entries, args.fold, &["train".to_string()])?;
    let train = load_cached(&args.cache, &train_entries);
    let dev = load_cached(&args.cache, &dev_entries);
    report_sizes(
        train.iter().map(|c| c.spoof),
        dev.iter().map(|c| c.spoof),
        started,
    );
    let device = Device::Cpu;
    let varmap = VarMap::new();
    let config = AttentiveHeadConfig {
        dims: DIMS,
        hidden: args.hidden,
    };
    let head = AttentiveHead::new(
        config,
        VarBuilder::from_varmap(&varmap, DType::F32, &device),
    )?;
    let mut rng = Rng::new(args.seed);
    initialise(&varmap, &mut rng)?;
    let mut opt = optimiser(&varmap, args.lr)?;
    let pool = |spoof: bool| -> Vec<usize> {
        (0..train.len())
            .filter(|&i| train[i].spoof == spoof)
            .collect()
    };
    let (bona, spoofs) = (pool(false), pool(true));
    let steps = args.examples.div_ceil(args.batch);
    let mut epochs_log = EpochLog::new(&args.out)?;
    let mut last = Vec::new();
    for epoch in 0..args.epochs {
        opt.set_learning_rate(cosine_rate(args.lr, epoch, args.epochs));
        let t0 = Instant::now();
        let mut loss_sum = 0.0;
        for _ in 0..steps {
            let len = if rng.uniform(0.0, 1.0) < 0.7 {
                args.crop
            } else {
                FRAMES_PER_SECOND + rng.below(4 * FRAMES_PER_SECOND - FRAMES_PER_SECOND)
            };
            let mut data: Vec<f32> = Vec::with_capacity(args.batch * len * DIMS);
            let mut targets = Vec::with_capacity(args.batch);
            for b in 0..args.batch {
                let from = if b % 2 == 0 { &bona } else { &spoofs };
                // Only clips as long as the crop (see `voice`: no tiling cue).
                let mut clip = &train[from[rng.below(from.len())]];
                for _ in 0..100 {
                    if clip.len() >= len {
                        break;
                    }
                    clip = &train[from[rng.below(from.len())]];
                }
                let n = len.min(clip.len());
                let start = rng.below(clip.len() - n + 1);
                let crop: Vec<f32> = clip.rows(start, n).collect();
                data.extend(crop.iter().cycle().take(len * DIMS));
                targets.push(if clip.spoof { 1f32 } else { 0.0 });
            }
            let x = Tensor::from_vec(data, (args.batch, len, DIMS), &device)?;
            let y = Tensor::from_vec(targets, args.batch, &device)?;
            let loss = bce_with_logits(&head.forward_t(&x, true)?, &y)?;
            opt.backward_step(&loss)?;
            loss_sum += loss.to_scalar::<f32>()? as f64;
        }
        let scores: Vec<(String, bool, f64)> = dev
            .iter()
            .map(|c| Ok((c.path.clone(), c.spoof, score(&head, c)?)))
            .collect::<candle_core::Result<_>>()?;
        let pick = |spoof: bool| -> Vec<f64> {
            scores
                .iter()
                .filter(|s| s.1 == spoof)
                .map(|s| s.2)
                .collect()
        };
        let eer = metrics::eer(&pick(false), &pick(true)).eer;
        eprintln!(
            "epoch {epoch:2}: loss {:.4}, dev EER {:.2} % ({:.1} s)",
            loss_sum / steps as f64,
            eer * 100.0,
            t0.elapsed().as_secs_f64()
        );
        epochs_log.record(epoch, loss_sum / steps as f64, eer, t0.elapsed())?;
        last = scores;
    }
    crate::write_scores(
        &args.out.join("dev-scores-last.tsv"),
        last.iter().map(|(p, s, v)| (p.as_str(), *s, *v)),
    )?;
    varmap.save(args.out.join("whisper-head.safetensors"))?;
    let card = serde_json::json!({
        "model": "whisper-base-L2 + attentive head",
        "encoder_weights": BASE_L2_WEIGHTS,
        "hidden": args.hidden,
        "command": crate::command_line(),
        "seed": args.seed,
        "fold": args.fold,
        "manifest_sha256": manifest_sha256,
        "seconds": started.elapsed().as_secs_f64(),
    });
    std::fs::write(
        args.out.join("whisper-head.json"),
        serde_json::to_string_pretty(&card)? + "\n",
    )?;
    Ok(())
}
