//! `aqiqat-train image-model`: the image detector a scan ships, trained by one seeded command.
//!
//! The network is the `residual-cnn` candidate of `image-folds`, trained on the same data as
//! that command's test-split model (every fold family and the real photos) except one fold of
//! real photos, kept out to set the threshold: the logit that lets at most 1 % of those
//! never-seen real photos through, read with exactly the code a scan runs
//! ([`ImageDetector::scan`]). The test split (generators never trained on, and the camera
//! photos) is then read at that threshold, and every figure goes into the card beside the
//! weights.

use crate::image_folds::{FALSE_POSITIVES, FOLD_FAMILIES, TEST_FAMILIES, TEST_REAL, caught_at};
use aqiqat_visual::detector::{ImageDetector, ImageInput, ImageModelCard, ImageReason};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The real photos' fold kept out of training to set the threshold.
const THRESHOLD_FOLD: usize = 0;

pub const NAME: &str = "image-residual-cnn";
pub const VERSION: &str = "1";

#[derive(clap::Args, Clone)]
pub struct ImageModelArgs {
    /// The corpus folder built by `image-corpus`.
    #[arg(long)]
    corpus: PathBuf,
    /// Where `image-residual-cnn.safetensors` and `image-residual-cnn.json` go.
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = 20_261_201)]
    seed: u64,
    #[command(flatten)]
    cnn: crate::image_cnn::CnnOptions,
}

/// A real photo kept out of training to set the threshold.
pub(crate) fn kept_for_threshold(item: &crate::image_folds::Item) -> bool {
    !item.ai && item.family != TEST_REAL && item.real_fold == THRESHOLD_FOLD
}

/// The rows a shipped model trains on: every fold family, and the real photos of the folds
/// less those kept for the threshold.
pub(crate) fn training_rows(items: &[crate::image_folds::Item]) -> Vec<usize> {
    (0..items.len())
        .filter(|&r| {
            if items[r].ai {
                FOLD_FAMILIES.contains(&items[r].family.as_str())
            } else {
                items[r].family != TEST_REAL && !kept_for_threshold(&items[r])
            }
        })
        .collect()
}

/// Rows a scan did not judge, by label and reason.
pub(crate) type NotJudged = BTreeMap<String, usize>;

/// Each row's score from [`ImageDetector::scan`] itself, and a tally of the rows it did not
/// judge (`"ai flat"`, `"real too_small"`, …).
pub(crate) fn read_through_scan(
    detector: &ImageDetector,
    items: &[crate::image_folds::Item],
    images: &[aqiqat_intake::image::RgbImage],
    rows: &[usize],
) -> Result<(BTreeMap<usize, f64>, NotJudged), Box<dyn std::error::Error>> {
    let mut scores = BTreeMap::new();
    let mut not_judged = NotJudged::new();
    for &r in rows {
        let finding = detector.scan(&images[r], ImageInput::default())?;
        match finding.score {
            Some(s) => {
                scores.insert(r, s);
            }
            None => {
                let reason = match finding.reason_code {
                    ImageReason::Flat => "flat",
                    ImageReason::TooSmall => "too_small",
                    _ => "other",
                };
                *not_judged
                    .entry(format!(
                        "{} {reason}",
                        if items[r].ai { "ai" } else { "real" }
                    ))
                    .or_default() += 1;
            }
        }
    }
    Ok((scores, not_judged))
}

pub fn run(args: &ImageModelArgs) -> Result<(), Box<dyn std::error::Error>> {
    let started = std::time::Instant::now();
    let items = crate::image_folds::read(&args.corpus)?;
    let images: Vec<_> = items.iter().map(|i| i.image.clone()).collect();
    let labels: Vec<bool> = items.iter().map(|i| i.ai).collect();
    let contents: Vec<String> = items.iter().map(|i| i.content.clone()).collect();
    let real_kept = |r: usize| kept_for_threshold(&items[r]);
    let train = training_rows(&items);
    eprintln!(
        "training on {} images ({} AI), {} real photos kept out for the threshold",
        train.len(),
        train.iter().filter(|&&r| items[r].ai).count(),
        (0..items.len()).filter(|&r| real_kept(r)).count()
    );
    let (varmap, _) =
        crate::image_cnn::fit(&images, &labels, &contents, &train, &args.cnn, args.seed)?;
    std::fs::create_dir_all(&args.out)?;
    let weights_path = args.out.join(format!("{NAME}.safetensors"));
    varmap.save(&weights_path)?;
    let weights = std::fs::read(&weights_path)?;
    let mut generators: Vec<String> = FOLD_FAMILIES.iter().map(|f| f.to_string()).collect();
    generators.sort();
    let mut card = ImageModelCard {
        name: NAME.into(),
        version: VERSION.into(),
        weights_sha256: aqiqat_intake::hash::sha256_bytes(&weights),
        threshold: 0.0,
        generators,
        held_out_real: 0,
        held_out_false_positives: 0.0,
        command: format!(
            "aqiqat-train image-model --corpus CORPUS --out crates/visual/weights --seed {} \
             --epochs {} --examples {} --crop {} --batch {} --lr {}",
            args.seed,
            args.cnn.epochs,
            args.cnn.examples,
            args.cnn.crop,
            args.cnn.batch,
            args.cnn.lr
        ),
        measured: serde_json::Value::Null,
    };
    // Scored through the scan's own code; answers without a score (flat images) are counted.
    let detector = ImageDetector::load(&weights, &serde_json::to_string(&card)?)?;
    let rows: Vec<usize> = (0..items.len()).collect();
    let (scores, not_judged) = read_through_scan(&detector, &items, &images, &rows)?;
    let kept: Vec<f64> = (0..items.len())
        .filter(|&r| real_kept(r))
        .filter_map(|r| scores.get(&r).copied())
        .collect();
    let (_, threshold) = caught_at(&[], &kept, FALSE_POSITIVES);
    card.threshold = (threshold * 1000.0).round() / 1000.0 + 0.001;
    card.held_out_real = kept.len();
    card.held_out_false_positives =
        kept.iter().filter(|&&s| s > card.threshold).count() as f64 / kept.len().max(1) as f64;
    let share_above = |rows: &mut dyn Iterator<Item = usize>| {
        let (mut above, mut n) = (0usize, 0usize);
        for r in rows {
            n += 1;
            if scores.get(&r).is_some_and(|&s| s > card.threshold) {
                above += 1;
            }
        }
        serde_json::json!({ "images": n, "flagged": above, "share": above as f64 / n.max(1) as f64 })
    };
    let mut test = serde_json::Map::new();
    for family in TEST_FAMILIES {
        test.insert(
            family.into(),
            share_above(
                &mut (0..items.len()).filter(|&r| items[r].ai && items[r].family == family),
            ),
        );
    }
    let camera = share_above(
        &mut (0..items.len()).filter(|&r| !items[r].ai && items[r].family == TEST_REAL),
    );
    let trained_families = share_above(&mut train.iter().copied().filter(|&r| items[r].ai));
    card.measured = serde_json::json!({
        "seed": args.seed,
        "training_images": train.len(),
        "test_generators_flagged": test,
        "camera_photos_flagged": camera,
        "training_generators_flagged": trained_families,
        "not_judged": not_judged,
        "seconds": started.elapsed().as_secs_f64().round(),
    });
    std::fs::write(
        args.out.join(format!("{NAME}.json")),
        serde_json::to_string_pretty(&card)? + "\n",
    )?;
    eprintln!(
        "threshold {:.3}: {:.1} % of {} held-out real photos above; camera {}; test {}; not judged {:?} ({:.0?})",
        card.threshold,
        100.0 * card.held_out_false_positives,
        card.held_out_real,
        card.measured["camera_photos_flagged"],
        card.measured["test_generators_flagged"],
        card.measured["not_judged"],
        started.elapsed()
    );
    Ok(())
}
