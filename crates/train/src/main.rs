//! # aqiqat-train
//!
//! `aqiqat-train voice --data DIR --out DIR`: trains the synthetic-speech detector from the
//! corpus `tools/voice-data/prepare.py` writes (DIR/manifest.tsv, and DIR/manifest_channel.tsv
//! for codec/channel variants), and writes `voice-lcnn.safetensors` with `voice-lcnn.json`
//! (feature and model configuration, calibration, thresholds, dev figures, the exact command).
//!
//! Everything random (initial weights, crops, augmentation, batch order) comes from one seeded
//! generator, so the same data, seed and thread count reproduce the same weights.

mod rng;

use aqiqat_dsp::vad::{VadConfig, speech_segments};
use aqiqat_intake::{AudioStream, Limits};
use aqiqat_models::lcnn::{Lcnn, LcnnConfig};
use aqiqat_voice::calibration::{Platt, Thresholds};
use aqiqat_voice::features::{self, WINDOW_FRAMES, WINDOW_SAMPLES, WindowFeatures};
use aqiqat_voice::manifest::{self, Entry, Label};
use aqiqat_voice::metrics;
use candle_core::{DType, Device, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW, VarBuilder, VarMap};
use clap::{Parser, Subcommand};
use rng::Rng;
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "aqiqat-train", about = "Trains aqiqat's detectors")]
struct Cli {
    #[command(subcommand)]
    what: What,
}

#[derive(Subcommand)]
enum What {
    /// The synthetic-speech detector (LFCC + LCNN).
    Voice(VoiceArgs),
}

#[derive(clap::Args, Clone)]
struct VoiceArgs {
    /// Corpus folder with manifest.tsv (and manifest_channel.tsv).
    #[arg(long)]
    data: PathBuf,
    /// Where to write voice-lcnn.safetensors and voice-lcnn.json.
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = 20)]
    epochs: usize,
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
}

struct Clip {
    samples: Vec<f32>,
    spoof: bool,
}

fn main() {
    let cli = Cli::parse();
    let What::Voice(args) = cli.what;
    if let Err(e) = train_voice(&args) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn train_voice(args: &VoiceArgs) -> Result<(), Box<dyn std::error::Error>> {
    let mut entries = manifest::read(&args.data.join("manifest.tsv"))?;
    let channel = args.data.join("manifest_channel.tsv");
    if !args.no_channel && channel.exists() {
        entries.extend(manifest::read(&channel)?);
    }
    if let Some(family) = &args.exclude_family {
        entries.retain(|e| !(e.label.is_spoof() && e.get("family") == Some(family.as_str())));
    }
    let split = |name: &str| -> Vec<Entry> {
        entries
            .iter()
            .filter(|e| e.get("split") == Some(name))
            .cloned()
            .collect()
    };
    eprintln!("decoding…");
    let train = load(&split("train"))?;
    let dev = load(&split("dev"))?;
    let count = |clips: &[Clip], spoof: bool| clips.iter().filter(|c| c.spoof == spoof).count();
    eprintln!(
        "train: {} bonafide, {} spoof; dev: {} bonafide, {} spoof",
        count(&train, false),
        count(&train, true),
        count(&dev, false),
        count(&dev, true)
    );

    let device = Device::Cpu;
    let mut rng = Rng::new(args.seed);
    let varmap = VarMap::new();
    let config = LcnnConfig {
        dims: features::lfcc_config().dims(),
        ..LcnnConfig::default()
    };
    let model = Lcnn::new(
        config,
        VarBuilder::from_varmap(&varmap, DType::F32, &device),
    )?;
    initialise(&varmap, &mut rng)?;
    let mut opt = AdamW::new(
        varmap.all_vars(),
        ParamsAdamW {
            lr: args.lr,
            weight_decay: 1e-4,
            ..Default::default()
        },
    )?;

    let bona: Vec<usize> = (0..train.len()).filter(|&i| !train[i].spoof).collect();
    let spoof: Vec<usize> = (0..train.len()).filter(|&i| train[i].spoof).collect();
    let mut wf = WindowFeatures::default();
    let mut best: Option<(f64, Vec<(String, Tensor)>)> = None;
    for epoch in 0..args.epochs {
        // Balanced: every bonafide clip once, and as many spoofs drawn at random.
        let mut order: Vec<usize> = bona.clone();
        order.extend((0..bona.len()).map(|_| spoof[rng.below(spoof.len())]));
        rng.shuffle(&mut order);
        let (mut loss_sum, mut batches) = (0.0, 0);
        for batch in order.chunks(args.batch) {
            let mut feats = Vec::with_capacity(batch.len() * WINDOW_FRAMES * wf.dims());
            let mut targets = Vec::with_capacity(batch.len());
            for &i in batch {
                let crop = augment(&train[i].samples, &mut rng);
                wf.window(&crop, &mut feats);
                targets.push(if train[i].spoof { 1f32 } else { 0.0 });
            }
            let x = Tensor::from_vec(feats, (batch.len(), 1, WINDOW_FRAMES, wf.dims()), &device)?;
            let y = Tensor::from_vec(targets, batch.len(), &device)?;
            let logits = model.forward_t(&x, true)?;
            let loss = candle_nn::loss::binary_cross_entropy_with_logit(&logits, &y)?;
            opt.backward_step(&loss)?;
            loss_sum += loss.to_scalar::<f32>()? as f64;
            batches += 1;
        }
        let (b, s) = score_clips(&model, &dev, &mut wf)?;
        let eer = metrics::eer(&b, &s).eer;
        eprintln!(
            "epoch {epoch:2}: loss {:.4}, dev EER {:.2} %",
            loss_sum / batches as f64,
            eer * 100.0
        );
        if best.as_ref().is_none_or(|(e, _)| eer <= *e) {
            let snapshot = snapshot(&varmap)?;
            best = Some((eer, snapshot));
        }
    }
    let (dev_eer, weights) = best.ok_or("no epoch ran")?;
    restore(&varmap, &weights)?;
    let (b, s) = score_clips(&model, &dev, &mut wf)?;
    let platt = Platt::fit(&b, &s);
    let at_eer = metrics::eer(&b, &s);
    let p_eer = platt.probability(at_eer.threshold);
    // The inconclusive band spans the dev scores' equal-error point ± 0.15 in probability.
    let thresholds = Thresholds {
        human_below: (p_eer - 0.15).clamp(0.05, 0.5),
        synthetic_above: (p_eer + 0.15).clamp(0.5, 0.95),
    };

    std::fs::create_dir_all(&args.out)?;
    let weights_path = args.out.join("voice-lcnn.safetensors");
    varmap.save(&weights_path)?;
    let weights_sha256 = aqiqat_intake::hash::sha256_bytes(&std::fs::read(&weights_path)?);
    let card = serde_json::json!({
        "model": "voice-lcnn",
        "version": env!("CARGO_PKG_VERSION"),
        "weights": "voice-lcnn.safetensors",
        "weights_sha256": weights_sha256,
        "features": {
            "kind": "lfcc",
            "sample_rate": features::SAMPLE_RATE,
            "n_fft": features::lfcc_config().n_fft,
            "win": features::lfcc_config().win,
            "hop": features::lfcc_config().hop,
            "n_filters": features::lfcc_config().n_filters,
            "n_ceps": features::lfcc_config().n_ceps,
            "deltas": features::lfcc_config().deltas,
            "window_frames": WINDOW_FRAMES,
            "normalisation": "per-window mean",
        },
        "lcnn": { "dims": config.dims, "width": config.width },
        "calibration": platt,
        "thresholds": thresholds,
        "dev": { "eer": dev_eer, "n_bonafide": b.len(), "n_spoof": s.len() },
        "training": {
            "command": std::env::args().collect::<Vec<_>>().join(" "),
            "seed": args.seed,
            "epochs": args.epochs,
            "exclude_family": args.exclude_family,
            "manifest_sha256": aqiqat_intake::hash::sha256_bytes(&std::fs::read(args.data.join("manifest.tsv"))?),
        },
    });
    std::fs::write(
        args.out.join("voice-lcnn.json"),
        serde_json::to_string_pretty(&card)?,
    )?;
    eprintln!(
        "wrote {} (dev EER {:.2} %)",
        weights_path.display(),
        dev_eer * 100.0
    );
    Ok(())
}

/// Decodes every entry to 16 kHz mono and trims it to its speech, so leading and trailing
/// silence (which differs between sources) cannot become a cue.
fn load(entries: &[Entry]) -> Result<Vec<Clip>, Box<dyn std::error::Error>> {
    let vad = VadConfig::default();
    let chunks: Vec<&[Entry]> = entries.chunks(entries.len().div_ceil(2).max(1)).collect();
    let results: Vec<Result<Vec<Clip>, String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = chunks
            .iter()
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .filter_map(|e| {
                            let samples = match AudioStream::open(
                                &e.path,
                                features::SAMPLE_RATE,
                                &Limits::default(),
                            )
                            .and_then(|s| s.read_to_end())
                            {
                                Ok(s) => s,
                                Err(err) => {
                                    eprintln!("skipping: {err}");
                                    return None;
                                }
                            };
                            let segs = speech_segments(&samples, &vad);
                            let (first, last) = (segs.first()?, segs.last()?);
                            Some(Ok(Clip {
                                samples: samples[first.start..last.end].to_vec(),
                                spoof: e.label == Label::Spoof,
                            }))
                        })
                        .collect::<Result<Vec<_>, String>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("decoder thread"))
            .collect()
    });
    let mut clips = Vec::new();
    for r in results {
        clips.extend(r?);
    }
    Ok(clips)
}

/// A random 4 s crop with a random gain, sometimes white noise (15–40 dB SNR) and sometimes
/// clipping: for both labels alike.
fn augment(samples: &[f32], rng: &mut Rng) -> Vec<f32> {
    let start = if samples.len() > WINDOW_SAMPLES {
        rng.below(samples.len() - WINDOW_SAMPLES)
    } else {
        0
    };
    let end = (start + WINDOW_SAMPLES).min(samples.len());
    let gain = 10f32.powf(rng.uniform(-12.0, 12.0) / 20.0);
    let mut out: Vec<f32> = samples[start..end].iter().map(|s| s * gain).collect();
    if rng.uniform(0.0, 1.0) < 0.3 {
        let power = out.iter().map(|s| s * s).sum::<f32>() / out.len() as f32;
        let sigma = (power / 10f32.powf(rng.uniform(15.0, 40.0) / 10.0)).sqrt();
        for s in &mut out {
            *s += sigma * rng.gaussian();
        }
    }
    if rng.uniform(0.0, 1.0) < 0.1 {
        let peak = out.iter().fold(0f32, |m, s| m.max(s.abs()));
        let limit = peak * rng.uniform(0.3, 0.8);
        for s in &mut out {
            *s = s.clamp(-limit, limit);
        }
    }
    out
}

/// Clip scores: the mean logit over 4 s windows with a 1 s hop.
fn score_clips(
    model: &Lcnn,
    clips: &[Clip],
    wf: &mut WindowFeatures,
) -> candle_core::Result<(Vec<f64>, Vec<f64>)> {
    let (mut bona, mut spoof) = (Vec::new(), Vec::new());
    for clip in clips {
        let starts = features::window_starts(clip.samples.len(), features::SAMPLE_RATE as usize);
        let mut feats = Vec::new();
        for &s in &starts {
            let end = (s + WINDOW_SAMPLES).min(clip.samples.len());
            wf.window(&clip.samples[s..end], &mut feats);
        }
        let x = Tensor::from_vec(
            feats,
            (starts.len(), 1, WINDOW_FRAMES, wf.dims()),
            &Device::Cpu,
        )?;
        let logits = model.forward_t(&x, false)?.to_vec1::<f32>()?;
        let score = logits.iter().map(|&l| l as f64).sum::<f64>() / logits.len() as f64;
        if clip.spoof {
            spoof.push(score)
        } else {
            bona.push(score)
        }
    }
    Ok((bona, spoof))
}

/// He-uniform weights, zero biases, unit batch-norm scales, from the seeded generator.
fn initialise(varmap: &VarMap, rng: &mut Rng) -> candle_core::Result<()> {
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

fn snapshot(varmap: &VarMap) -> candle_core::Result<Vec<(String, Tensor)>> {
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
