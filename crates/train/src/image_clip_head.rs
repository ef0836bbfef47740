//! `aqiqat-train image-clip-head`: the head that lets the frozen CLIP encoder decide a scan's
//! image verdict, trained by one seeded command.
//!
//! The data are `image-model`'s: every fold family and the real photos except one fold of
//! them, kept out to set the threshold, and the test split (generators never trained on, the
//! camera photos) read at that threshold. The features come from the cache `image-folds`
//! keeps beside the corpus (the same encoder on the same squares); the held-out photos and
//! the test split are read again through [`ImageDetector::scan`] itself, so the threshold and
//! the figures are those of the code a scan runs.
//!
//! The threshold is the highest score among the held-out real photos, not their 1 % point:
//! at the 1 % point, 2.8 % of the camera photos (a real source never used) came out above it,
//! so the 1 % did not carry over to photos from another source. The card records both.

use crate::image_folds::{FOLD_FAMILIES, TEST_FAMILIES, TEST_REAL, caught_at, row_weights};
use crate::image_model::{kept_for_threshold, read_through_scan, training_rows};
use crate::logistic::Logistic;
use aqiqat_visual::clip::{ClipHead, EMBEDDED_ENCODER};
use aqiqat_visual::detector::{EMBEDDED_CARD, EMBEDDED_WEIGHTS, ImageDetector};
use std::collections::BTreeMap;
use std::path::PathBuf;

pub const NAME: &str = "image-clip-logistic";
pub const VERSION: &str = "1";

#[derive(clap::Args, Clone)]
pub struct ImageClipHeadArgs {
    /// The corpus folder built by `image-corpus`.
    #[arg(long)]
    corpus: PathBuf,
    /// Where `image-clip-head.json` goes.
    #[arg(long)]
    out: PathBuf,
    /// Weigh the AI training images to the real ones' content mix (`image-folds
    /// --balance-content` measures it on the folds).
    #[arg(long)]
    balance_content: bool,
}

pub fn run(args: &ImageClipHeadArgs) -> Result<(), Box<dyn std::error::Error>> {
    let started = std::time::Instant::now();
    let items = crate::image_folds::read(&args.corpus)?;
    let images: Vec<_> = items.iter().map(|i| i.image.clone()).collect();
    let features = crate::image_clip::features(&args.corpus, &images)?;
    let labels: Vec<bool> = items.iter().map(|i| i.ai).collect();
    let real_kept = |r: usize| kept_for_threshold(&items[r]);
    let train = training_rows(&items);
    eprintln!(
        "training on {} images ({} AI)",
        train.len(),
        train.iter().filter(|&&r| items[r].ai).count()
    );
    let contents: Vec<String> = items.iter().map(|i| i.content.clone()).collect();
    let weight = row_weights(&contents, &labels, &train, args.balance_content);
    let model = Logistic::fit_weighted(&features, &labels, &train, &weight);
    let mut generators: Vec<String> = FOLD_FAMILIES.iter().map(|f| f.to_string()).collect();
    generators.sort();
    let mut head = ClipHead {
        name: NAME.into(),
        version: VERSION.into(),
        encoder_sha256: aqiqat_intake::hash::sha256_bytes(EMBEDDED_ENCODER),
        mean: model.mean.clone(),
        sd: model.sd.clone(),
        weights: model.weights.clone(),
        bias: model.bias,
        threshold: 0.0,
        generators,
        held_out_real: 0,
        held_out_false_positives: 0.0,
        command: format!(
            "aqiqat-train image-clip-head --corpus CORPUS --out crates/visual/weights{}",
            if args.balance_content {
                " --balance-content"
            } else {
                ""
            }
        ),
        measured: serde_json::Value::Null,
    };
    // Read through the scan's own code: the held-out real photos and the test split.
    let detector = ImageDetector::load(EMBEDDED_WEIGHTS, EMBEDDED_CARD)?
        .with_clip(EMBEDDED_ENCODER, &serde_json::to_string(&head)?)?;
    let read: Vec<usize> = (0..items.len())
        .filter(|&r| {
            real_kept(r)
                || items[r].family == TEST_REAL
                || (items[r].ai && TEST_FAMILIES.contains(&items[r].family.as_str()))
        })
        .collect();
    eprintln!("reading {} images through the detector", read.len());
    let (scanned, not_judged) = read_through_scan(&detector, &items, &images, &read)?;
    // The scan's score is rounded to 0.001; the cached features must give it.
    let mut scores: BTreeMap<usize, f64> = BTreeMap::new();
    let mut largest_gap = 0.0f64;
    for (r, s) in scanned {
        let cached = model.score(&features[r]);
        largest_gap = largest_gap.max((cached - s).abs());
        scores.insert(r, cached);
    }
    if largest_gap > 0.01 {
        return Err(format!(
            "the scan's CLIP scores differ from the cached features' by up to {largest_gap:.4}: \
             the cache {} is stale",
            args.corpus.join("clip-features.f32").display()
        )
        .into());
    }
    let kept: Vec<f64> = (0..items.len())
        .filter(|&r| real_kept(r))
        .filter_map(|r| scores.get(&r).copied())
        .collect();
    let highest = kept.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    head.threshold = (highest * 100.0).ceil() / 100.0 + 0.01;
    head.held_out_real = kept.len();
    head.held_out_false_positives =
        kept.iter().filter(|&&s| s > head.threshold).count() as f64 / kept.len().max(1) as f64;
    let (_, one_percent) = caught_at(&[], &kept, 0.01);
    let share_above = |rows: &mut dyn Iterator<Item = usize>, threshold: f64, all: bool| {
        let (mut above, mut n) = (0usize, 0usize);
        for r in rows {
            let score = if all {
                Some(model.score(&features[r]))
            } else {
                scores.get(&r).copied()
            };
            n += 1;
            if score.is_some_and(|s| s > threshold) {
                above += 1;
            }
        }
        serde_json::json!({ "images": n, "flagged": above, "share": above as f64 / n.max(1) as f64 })
    };
    let figures = |threshold: f64| {
        let mut test = serde_json::Map::new();
        for family in TEST_FAMILIES {
            test.insert(
                family.into(),
                share_above(
                    &mut (0..items.len()).filter(|&r| items[r].ai && items[r].family == family),
                    threshold,
                    false,
                ),
            );
        }
        serde_json::json!({
            "threshold": threshold,
            "test_generators_flagged": test,
            "camera_photos_flagged": share_above(
                &mut (0..items.len()).filter(|&r| !items[r].ai && items[r].family == TEST_REAL),
                threshold,
                false,
            ),
            // Read from the cached features (the same encoder and head as the scan).
            "training_generators_flagged": share_above(
                &mut train.iter().copied().filter(|&r| items[r].ai),
                threshold,
                true,
            ),
        })
    };
    head.measured = serde_json::json!({
        "training_images": train.len(),
        "shipped": figures(head.threshold),
        "at_one_percent_of_held_out_real": figures(one_percent),
        "not_judged": not_judged,
        "largest_gap_scan_vs_cache": largest_gap,
        "seconds": started.elapsed().as_secs_f64().round(),
    });
    std::fs::create_dir_all(&args.out)?;
    std::fs::write(
        args.out.join("image-clip-head.json"),
        serde_json::to_string_pretty(&head)? + "\n",
    )?;
    eprintln!(
        "threshold {:.2} (1 % point {one_percent:.2}): {:.1} % of {} held-out real photos above; {} ({:.0?})",
        head.threshold,
        100.0 * head.held_out_false_positives,
        head.held_out_real,
        head.measured["shipped"],
        started.elapsed()
    );
    Ok(())
}
