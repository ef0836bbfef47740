//! `aqiqat-train image-folds`: an image detector candidate measured on generators it never saw
//! (issue 21).
//!
//! Leave-one-generator-out over the corpus's families with at least 100 images that are not
//! kept for the test split: each fold trains on every other fold family and on the real photos
//! of the other folds, and is read on the held-out family against its own held-out real photos.
//! Then one model trained on all fold families is read on the test split, generators never used
//! in training or selection (Midjourney, DALL-E 2, Disco and Majesty Diffusion, the ComfyUI
//! models) against a real source never used either (the camera JPEGs).
//!
//! The figure the issue asks for is the share of a held-out generator's images caught at 1 %
//! false positives on held-out real photos, with a bootstrap interval; the photoreal subset
//! (faces and people) is read on its own. The first candidate is the residual features of
//! `aqiqat-visual` under a logistic regression: no network, so it shows what the features
//! alone carry.

use crate::logistic::{Logistic, auc};
use crate::rng::Rng;
use aqiqat_visual::{FEATURES, Reader, image_features};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Families held out one at a time (each ≥ 100 images).
pub const FOLD_FAMILIES: [&str; 7] = [
    "stable-diffusion-2",
    "dalle-mini",
    "latent-diffusion",
    "glid-3",
    "stable-diffusion-3",
    "dall-e-3",
    "stable-diffusion-1",
];

/// Generators never trained or selected on.
pub const TEST_FAMILIES: [&str; 5] = [
    "midjourney",
    "dall-e-2",
    "disco-diffusion",
    "majesty-diffusion",
    "comfyui",
];

/// The real source kept for the test split.
pub const TEST_REAL: &str = "camera";

/// The false-positive rate the detection rate is read at.
pub(crate) const FALSE_POSITIVES: f64 = 0.01;

const BOOTSTRAP: usize = 1000;

#[derive(clap::Args, Clone)]
pub struct ImageFoldsArgs {
    /// The corpus folder built by `image-corpus` (corpus.tsv, images/).
    #[arg(long)]
    corpus: PathBuf,
    /// Where the figures go (JSON).
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = 20_261_130)]
    seed: u64,
    /// `residual-logistic` (the residual features under a logistic regression),
    /// `spectrum-logistic` (only the residual's radial spectrum: a frequency model) or
    /// `residual-cnn` (the small network on the residual) or `clip-logistic` (the frozen CLIP
    /// encoder's first six blocks: class token and mean patch token, under the same regression).
    #[arg(long, default_value = "residual-logistic")]
    candidate: String,
    #[command(flatten)]
    cnn: crate::image_cnn::CnnOptions,
}

/// Row weights for a regression on `train`: all 1, or with `balance_content` the AI rows'
/// content mix made the real rows' (each AI row of tag T weighs real share of T / AI share of
/// T, over the tags both classes have), and rows of a tag only one class has weighing 0, so
/// that content (AI art, real people scenes) cannot become the cue.
pub(crate) fn row_weights(
    content: &[String],
    ai: &[bool],
    train: &[usize],
    balance_content: bool,
) -> Vec<f64> {
    if !balance_content {
        return vec![1.0; content.len()];
    }
    let mut weight = vec![0.0; content.len()];
    let mut counts: std::collections::BTreeMap<&str, [usize; 2]> = Default::default();
    for &r in train {
        counts.entry(content[r].as_str()).or_default()[usize::from(ai[r])] += 1;
    }
    counts.retain(|_, [real, generated]| *real > 0 && *generated > 0);
    let totals = counts
        .values()
        .fold([0usize; 2], |[r, g], [real, generated]| {
            [r + real, g + generated]
        });
    for &r in train {
        if let Some([real, generated]) = counts.get(content[r].as_str()) {
            weight[r] = if ai[r] {
                (*real as f64 / totals[0] as f64) / (*generated as f64 / totals[1] as f64)
            } else {
                1.0
            };
        }
    }
    weight
}

pub(crate) struct Item {
    pub family: String,
    pub content: String,
    pub ai: bool,
    /// The fold a real photo is read in (by a hash of its name).
    pub real_fold: usize,
    pub features: Vec<f64>,
    pub image: aqiqat_intake::image::RgbImage,
}

fn fold_of(name: &str) -> usize {
    let h = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    (h % FOLD_FAMILIES.len() as u64) as usize
}

/// The share of `positives` above the threshold that lets `FALSE_POSITIVES` of `negatives`
/// through, and that threshold.
pub fn caught_at(positives: &[f64], negatives: &[f64], false_positives: f64) -> (f64, f64) {
    let mut neg = negatives.to_vec();
    neg.sort_by(|a, b| b.total_cmp(a));
    // The highest threshold count with at most `false_positives` of negatives above it.
    let allowed = (false_positives * neg.len() as f64).floor() as usize;
    let threshold = neg.get(allowed).copied().unwrap_or(f64::NEG_INFINITY);
    let caught = positives.iter().filter(|&&p| p > threshold).count();
    (caught as f64 / positives.len().max(1) as f64, threshold)
}

/// A 95 % bootstrap interval of [`caught_at`], resampling both sides.
fn interval(positives: &[f64], negatives: &[f64], rng: &mut Rng) -> (f64, f64) {
    let mut rates: Vec<f64> = (0..BOOTSTRAP)
        .map(|_| {
            let p: Vec<f64> = (0..positives.len())
                .map(|_| positives[rng.below(positives.len())])
                .collect();
            let n: Vec<f64> = (0..negatives.len())
                .map(|_| negatives[rng.below(negatives.len())])
                .collect();
            caught_at(&p, &n, FALSE_POSITIVES).0
        })
        .collect();
    rates.sort_by(f64::total_cmp);
    (
        rates[BOOTSTRAP * 25 / 1000],
        rates[BOOTSTRAP * 975 / 1000 - 1],
    )
}

pub(crate) fn read(corpus: &std::path::Path) -> Result<Vec<Item>, String> {
    let text = std::fs::read_to_string(corpus.join("corpus.tsv")).map_err(|e| e.to_string())?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split('\t').collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .ok_or(format!("no {name} column"))
    };
    let (file, family, content, label) =
        (col("file")?, col("family")?, col("content")?, col("label")?);
    let rows: Vec<Vec<String>> = lines
        .filter(|l| !l.is_empty())
        .map(|l| l.split('\t').map(str::to_owned).collect())
        .collect();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let next = std::sync::atomic::AtomicUsize::new(0);
    let out = std::sync::Mutex::new(vec![None; rows.len()]);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                let reader = Reader::new();
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(row) = rows.get(i) else { break };
                    let read = std::fs::read(corpus.join("images").join(&row[file]))
                        .ok()
                        .and_then(|b| image::load_from_memory(&b).ok())
                        .map(|d| {
                            let rgb = d.to_rgb8();
                            aqiqat_intake::image::RgbImage {
                                width: rgb.width(),
                                height: rgb.height(),
                                pixels: rgb.into_raw(),
                            }
                        })
                        .and_then(|img| image_features(&reader, &img).map(|f| (f, img)));
                    out.lock().expect("no panics")[i] = read;
                }
            });
        }
    });
    let features = out.into_inner().expect("no panics");
    rows.iter()
        .zip(features)
        .map(|(row, f)| {
            let (f, image) = f.ok_or(format!("{}: no features", row[file]))?;
            Ok(Item {
                family: row[family].clone(),
                content: row[content].clone(),
                ai: row[label] == "ai",
                real_fold: fold_of(&row[file]),
                features: f.iter().map(|&v| f64::from(v)).collect(),
                image,
            })
        })
        .collect()
}

pub(crate) fn figures(positives: &[f64], negatives: &[f64], rng: &mut Rng) -> serde_json::Value {
    let labels: Vec<bool> = positives
        .iter()
        .map(|_| true)
        .chain(negatives.iter().map(|_| false))
        .collect();
    let scores: Vec<f64> = positives.iter().chain(negatives).copied().collect();
    let (caught, threshold) = caught_at(positives, negatives, FALSE_POSITIVES);
    let (lo, hi) = interval(positives, negatives, rng);
    serde_json::json!({
        "ai": positives.len(),
        "real": negatives.len(),
        "auc": auc(&scores, &labels),
        "caught_at_1pct": caught,
        "interval_95": [lo, hi],
        "threshold": threshold,
    })
}

pub(crate) fn photoreal(content: &str) -> bool {
    matches!(content, "faces" | "people")
}

pub fn run(args: &ImageFoldsArgs) -> Result<(), Box<dyn std::error::Error>> {
    let started = std::time::Instant::now();
    let items = read(&args.corpus)?;
    eprintln!(
        "{} images, {FEATURES} features each ({:.0?})",
        items.len(),
        started.elapsed()
    );
    let features: Vec<Vec<f64>> = items.iter().map(|i| i.features.clone()).collect();
    let labels: Vec<bool> = items.iter().map(|i| i.ai).collect();
    let contents: Vec<String> = items.iter().map(|i| i.content.clone()).collect();
    let spectrum: Vec<Vec<f64>> = features
        .iter()
        .map(|f| aqiqat_visual::spectrum_features().map(|k| f[k]).collect())
        .collect();
    let in_folds = |i: &Item| {
        if i.ai {
            FOLD_FAMILIES.contains(&i.family.as_str())
        } else {
            i.family != TEST_REAL
        }
    };
    let images: Vec<aqiqat_intake::image::RgbImage> =
        items.iter().map(|i| i.image.clone()).collect();
    let clip = if args.candidate == "clip-logistic" {
        crate::image_clip::features(&args.corpus, &images)?
    } else {
        Vec::new()
    };
    // Trains the candidate on `train` and scores `score`.
    let fit_score = |train: &[usize], score: &[usize], split: u64| -> Result<Vec<f64>, String> {
        match args.candidate.as_str() {
            "residual-logistic" => {
                let model = Logistic::fit(&features, &labels, train);
                Ok(score.iter().map(|&r| model.score(&features[r])).collect())
            }
            "spectrum-logistic" => {
                let model = Logistic::fit(&spectrum, &labels, train);
                Ok(score.iter().map(|&r| model.score(&spectrum[r])).collect())
            }
            "clip-logistic" => {
                let weight = row_weights(&contents, &labels, train, args.cnn.balance_content);
                let model = Logistic::fit_weighted(&clip, &labels, train, &weight);
                Ok(score.iter().map(|&r| model.score(&clip[r])).collect())
            }
            "residual-cnn" => crate::image_cnn::fit_score(
                &images,
                &labels,
                &contents,
                train,
                score,
                &args.cnn,
                args.seed ^ split.wrapping_mul(0x9E37_79B9_7F4A_7C15),
            )
            .map_err(|e| e.to_string()),
            other => Err(format!("no candidate {other}")),
        }
    };
    let mut rng = Rng::new(args.seed);
    let mut folds = BTreeMap::new();
    // Every real photo's score from the fold that held it out: the threshold a deployed
    // model would use comes from these, not from the test split.
    let mut held_out_real = Vec::new();
    for (k, family) in FOLD_FAMILIES.iter().enumerate() {
        let held = |i: &Item| {
            if i.ai {
                i.family == *family
            } else {
                i.real_fold == k
            }
        };
        let train: Vec<usize> = (0..items.len())
            .filter(|&r| in_folds(&items[r]) && !held(&items[r]))
            .collect();
        let test: Vec<usize> = (0..items.len())
            .filter(|&r| in_folds(&items[r]) && held(&items[r]))
            .collect();
        eprintln!("fold {k} ({family}): training on {} images", train.len());
        let scores: BTreeMap<usize, f64> = test
            .iter()
            .copied()
            .zip(fit_score(&train, &test, k as u64)?)
            .collect();
        let score = |r: usize| scores[&r];
        let negatives: Vec<f64> = test
            .iter()
            .filter(|&&r| !items[r].ai)
            .map(|&r| score(r))
            .collect();
        let positives: Vec<f64> = test
            .iter()
            .filter(|&&r| items[r].ai)
            .map(|&r| score(r))
            .collect();
        let real_photoreal: Vec<f64> = negatives.clone();
        let positives_photoreal: Vec<f64> = test
            .iter()
            .filter(|&&r| items[r].ai && photoreal(&items[r].content))
            .map(|&r| score(r))
            .collect();
        held_out_real.extend(negatives.iter().copied());
        let mut entry = figures(&positives, &negatives, &mut rng);
        if !positives_photoreal.is_empty() {
            entry["photoreal"] = figures(&positives_photoreal, &real_photoreal, &mut rng);
        }
        eprintln!(
            "fold {k} ({family}): AUC {:.3}, caught at 1 % FP {:.1} % [{:.1}, {:.1}]",
            entry["auc"].as_f64().unwrap_or_default(),
            100.0 * entry["caught_at_1pct"].as_f64().unwrap_or_default(),
            100.0 * entry["interval_95"][0].as_f64().unwrap_or_default(),
            100.0 * entry["interval_95"][1].as_f64().unwrap_or_default(),
        );
        folds.insert(family.to_string(), entry);
    }
    // The test split: one model on every fold's data.
    let train: Vec<usize> = (0..items.len()).filter(|&r| in_folds(&items[r])).collect();
    let test_rows: Vec<usize> = (0..items.len()).filter(|&r| !in_folds(&items[r])).collect();
    eprintln!("test split: training on {} images", train.len());
    let test_scores: BTreeMap<usize, f64> = test_rows
        .iter()
        .copied()
        .zip(fit_score(&train, &test_rows, FOLD_FAMILIES.len() as u64)?)
        .collect();
    let camera: Vec<f64> = (0..items.len())
        .filter(|&r| !items[r].ai && items[r].family == TEST_REAL)
        .map(|r| test_scores[&r])
        .collect();
    let (_, deployed) = caught_at(&[], &held_out_real, FALSE_POSITIVES);
    let camera_false_positives =
        camera.iter().filter(|&&s| s > deployed).count() as f64 / camera.len().max(1) as f64;
    let mut test = BTreeMap::new();
    for family in TEST_FAMILIES {
        let positives: Vec<f64> = (0..items.len())
            .filter(|&r| items[r].ai && items[r].family == family)
            .map(|r| test_scores[&r])
            .collect();
        let mut entry = figures(&positives, &camera, &mut rng);
        entry["caught_at_deployed_threshold"] = serde_json::json!(
            positives.iter().filter(|&&s| s > deployed).count() as f64
                / positives.len().max(1) as f64
        );
        eprintln!(
            "test {family}: AUC {:.3}, caught at 1 % FP {:.1} %",
            entry["auc"].as_f64().unwrap_or_default(),
            100.0 * entry["caught_at_1pct"].as_f64().unwrap_or_default(),
        );
        test.insert(family.to_string(), entry);
    }
    let mean = |key: &str| {
        folds
            .values()
            .map(|f: &serde_json::Value| f[key].as_f64().unwrap_or_default())
            .sum::<f64>()
            / folds.len() as f64
    };
    let summary = serde_json::json!({
        "candidate": args.candidate,
        "cnn": format!("{:?}", args.cnn),
        "features": FEATURES,
        "seed": args.seed,
        "folds": folds,
        "mean_auc": mean("auc"),
        "mean_caught_at_1pct": mean("caught_at_1pct"),
        "test": test,
        "deployed_threshold": deployed,
        "camera_false_positives_at_deployed_threshold": camera_false_positives,
        "seconds": started.elapsed().as_secs_f64(),
    });
    std::fs::write(&args.out, serde_json::to_string_pretty(&summary)?)?;
    eprintln!(
        "mean over folds: AUC {:.3}, caught {:.1} %; camera photos above the deployed threshold {:.1} % ({:.0?})",
        mean("auc"),
        100.0 * mean("caught_at_1pct"),
        100.0 * camera_false_positives,
        started.elapsed()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caught_at_reads_the_threshold_from_the_negatives() {
        let negatives: Vec<f64> = (0..200).map(f64::from).collect();
        // 1 % of 200 is 2: the threshold is the third highest negative (197).
        let (caught, threshold) = caught_at(&[196.5, 197.5, 198.5, 300.0], &negatives, 0.01);
        assert_eq!(threshold, 197.0);
        assert_eq!(caught, 0.75);
        let (none, _) = caught_at(&[-1.0, 0.0], &negatives, 0.01);
        assert_eq!(none, 0.0);
        // Fewer than 100 negatives: no false positive is allowed.
        let (_, strict) = caught_at(&[1.0], &[0.1, 0.5, 0.3], 0.01);
        assert_eq!(strict, 0.5);
    }

    #[test]
    fn balanced_weights_give_the_ai_rows_the_real_content_mix() {
        // Real: 30 faces, 10 scenes. AI: 10 faces, 40 scenes, 5 art.
        let tags = [("faces", false, 30), ("scenes", false, 10)]
            .into_iter()
            .chain([("faces", true, 10), ("scenes", true, 40), ("art", true, 5)]);
        let (content, ai): (Vec<String>, Vec<bool>) = tags
            .flat_map(|(t, a, n)| std::iter::repeat_n((t.to_owned(), a), n))
            .unzip();
        let train: Vec<usize> = (0..content.len()).collect();
        assert!(
            row_weights(&content, &ai, &train, false)
                .iter()
                .all(|&w| w == 1.0)
        );
        let w = row_weights(&content, &ai, &train, true);
        let mass = |tag: &str, generated: bool| -> f64 {
            train
                .iter()
                .filter(|&&r| content[r] == tag && ai[r] == generated)
                .map(|&r| w[r])
                .sum()
        };
        let ai_total = mass("faces", true) + mass("scenes", true);
        assert!((mass("faces", true) / ai_total - 0.75).abs() < 1e-12);
        assert!((mass("scenes", true) / ai_total - 0.25).abs() < 1e-12);
        assert_eq!(mass("art", true), 0.0);
        assert_eq!(mass("faces", false), 30.0);
    }

    #[test]
    fn test_families_and_fold_families_never_overlap() {
        for f in TEST_FAMILIES {
            assert!(!FOLD_FAMILIES.contains(&f));
        }
        let spread: std::collections::BTreeSet<usize> = (0..100)
            .map(|i| fold_of(&format!("imagenet-{i:04}.jpg")))
            .collect();
        assert_eq!(spread.len(), FOLD_FAMILIES.len());
    }
}
