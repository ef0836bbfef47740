//! `aqiqat-train open-set`: verdict thresholds set on what a model has never heard.
//!
//! A detector's development split holds the systems it trained on, so thresholds set there
//! say how it judges voices it knows. A fraud victim meets voices it does not know. This scores
//! every clip of a corpus's leave-one-page-out folds (`tools/voice-data/corpus.py`) whose page
//! and system the model never trained on, and sets
//! - the `human` threshold so that at most 5 % of those synthetic clips fall below it;
//! - the `synthetic` threshold so that at most 1 % of those genuine clips reach it.
//!
//! What falls between is `inconclusive`. Each fold is then judged with thresholds set on the
//! other nine, and the shares (caught, called human, inconclusive) go into the card with the
//! families the model heard and those it did not: the words a `human` verdict carries.

use aqiqat_intake::{AudioStream, Limits};
use aqiqat_voice::analysis::Outcome;
use aqiqat_voice::calibration::{
    MAX_BONAFIDE_CALLED_SYNTHETIC, MAX_SPOOF_CALLED_HUMAN, ScoreBands,
};
use aqiqat_voice::card::{FoldShares, OpenSetCard, Shares};
use aqiqat_voice::detector::VoiceDetector;
use aqiqat_voice::features::SAMPLE_RATE;
use aqiqat_voice::manifest::{self, Entry};
use aqiqat_voice::metrics;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

#[derive(clap::Args, Clone)]
pub struct OpenSetArgs {
    /// A corpus written by tools/voice-data/corpus.py (manifest.tsv with `page`, `system`,
    /// `family` and `fold` columns; rows of fold ≥ 0 are used).
    #[arg(long)]
    corpus: PathBuf,
    /// The run folder, holding voice-tdnn-mfm.safetensors and voice-tdnn-mfm.json (the card is
    /// rewritten).
    #[arg(long)]
    model: PathBuf,
    /// A page whose clips the model trained on (repeatable): left out.
    #[arg(long = "exclude-page")]
    exclude_pages: Vec<String>,
    /// A synthesis system the model trained on (repeatable): left out wherever it occurs.
    #[arg(long = "exclude-system")]
    exclude_systems: Vec<String>,
    /// A family of synthesis the model trained on, in plain words (repeatable; at least one).
    #[arg(long = "heard", required = true)]
    heard: Vec<String>,
    /// Also use the corpus's channel variants (manifest_aug.tsv) of the same clips.
    #[arg(long)]
    augmented: bool,
}

/// One held-out clip's score: `None` when it had too little speech to be scored.
struct Scored {
    entry: Entry,
    score: Option<f64>,
}

pub fn run(args: &OpenSetArgs) -> Result<(), Box<dyn std::error::Error>> {
    let card_path = args.model.join("voice-tdnn-mfm.json");
    let card_json = std::fs::read_to_string(&card_path)?;
    let weights = std::fs::read(args.model.join("voice-tdnn-mfm.safetensors"))?;
    let detector = VoiceDetector::load(&weights, &card_json)?;
    let mut card = detector.card().clone();

    let entries = held_out_entries(args)?;
    if entries.is_empty() {
        return Err("no held-out clips: every fold's page or system was excluded".into());
    }
    let scores = score_all(&detector, &args.model, entries)?;
    let scored: Vec<&Scored> = scores.iter().filter(|s| s.score.is_some()).collect();
    let values = |rows: &[&Scored], spoof: bool| -> Vec<f64> {
        rows.iter()
            .filter(|s| s.entry.label.is_spoof() == spoof)
            .filter_map(|s| s.score)
            .collect()
    };
    let (bonafide, spoof) = (values(&scored, false), values(&scored, true));
    if bonafide.is_empty() || spoof.is_empty() {
        return Err("the held-out clips hold only one label".into());
    }
    let platt = card.calibration;
    let bands = ScoreBands::from_held_out(&bonafide, &spoof);

    let fold_of = |s: &Scored| -> usize {
        s.entry
            .get("fold")
            .and_then(|f| f.parse().ok())
            .expect("held-out rows have a fold")
    };
    let folds: BTreeSet<usize> = scored.iter().map(|s| fold_of(s)).collect();
    let mut fold_shares = Vec::new();
    for &fold in &folds {
        let (inside, outside): (Vec<&Scored>, Vec<&Scored>) =
            scored.iter().partition(|s| fold_of(s) == fold);
        let (ob, os) = (values(&outside, false), values(&outside, true));
        if ob.is_empty() || os.is_empty() {
            return Err(format!("without fold {fold} one label is missing").into());
        }
        let others = ScoreBands::from_held_out(&ob, &os);
        let (ib, is) = (values(&inside, false), values(&inside, true));
        let pages: BTreeSet<String> = inside
            .iter()
            .filter_map(|s| s.entry.get("page").map(str::to_owned))
            .collect();
        fold_shares.push(FoldShares {
            fold,
            pages: pages.into_iter().collect(),
            n_bonafide: ib.len(),
            n_spoof: is.len(),
            eer: (!ib.is_empty() && !is.is_empty()).then(|| metrics::eer(&ib, &is).eer),
            spoof: shares(&is, &others),
            bonafide: shares(&ib, &others),
        });
    }

    let spoof_rows = scored.iter().filter(|s| s.entry.label.is_spoof());
    let column = |s: &Scored, c: &str| s.entry.get(c).unwrap_or("?").to_owned();
    let families_not_heard: BTreeSet<String> =
        spoof_rows.clone().map(|s| column(s, "family")).collect();
    let systems: BTreeSet<String> = spoof_rows.map(|s| column(s, "system")).collect();
    let pages: BTreeSet<String> = scored.iter().map(|s| column(s, "page")).collect();
    let development_thresholds = card.thresholds;
    card.thresholds = bands.thresholds(&platt);
    card.open_set = Some(OpenSetCard {
        command: std::env::args().collect::<Vec<_>>().join(" "),
        corpus_manifest_sha256: aqiqat_intake::hash::sha256_bytes(&std::fs::read(
            args.corpus.join("manifest.tsv"),
        )?),
        families_heard: args.heard.clone(),
        families_not_heard: families_not_heard.into_iter().collect(),
        pages: pages.len(),
        systems: systems.len(),
        n_bonafide: bonafide.len(),
        n_spoof: spoof.len(),
        unscored: scores.len() - scored.len(),
        eer: metrics::eer(&bonafide, &spoof).eer,
        max_spoof_called_human: MAX_SPOOF_CALLED_HUMAN,
        max_bonafide_called_synthetic: MAX_BONAFIDE_CALLED_SYNTHETIC,
        development_thresholds,
        folds: fold_shares,
    });
    print_report(&card, &scored, &bands);
    std::fs::write(&card_path, serde_json::to_string_pretty(&card)? + "\n")?;
    eprintln!(
        "thresholds {development_thresholds:?} -> {:?}\nwrote {}",
        card.thresholds,
        card_path.display()
    );
    Ok(())
}

/// The rows of the corpus's folds that the model never trained on.
fn held_out_entries(args: &OpenSetArgs) -> Result<Vec<Entry>, Box<dyn std::error::Error>> {
    let mut entries = manifest::read(&args.corpus.join("manifest.tsv"))?;
    if args.augmented {
        entries.extend(manifest::read(&args.corpus.join("manifest_aug.tsv"))?);
    }
    let in_fold = |e: &Entry| e.get("fold").and_then(|f| f.parse::<i64>().ok()) >= Some(0);
    let heard = |e: &Entry| {
        e.get("page")
            .is_some_and(|p| args.exclude_pages.iter().any(|x| x == p))
            || e.get("system")
                .is_some_and(|s| args.exclude_systems.iter().any(|x| x == s))
    };
    Ok(entries
        .into_iter()
        .filter(|e| in_fold(e) && !heard(e))
        .collect())
}

/// Scores every entry with the detector, on all cores. Scores are kept beside the run in
/// `open-set-scores.tsv`, keyed by the weights' hash and each clip's path, so that a rerun
/// (another exclusion, another report) does not decode the corpus again.
fn score_all(
    detector: &VoiceDetector,
    run: &Path,
    entries: Vec<Entry>,
) -> Result<Vec<Scored>, Box<dyn std::error::Error>> {
    let cache_path = run.join("open-set-scores.tsv");
    let key = &detector.card().weights_sha256;
    let mut cache: BTreeMap<String, Option<f64>> = BTreeMap::new();
    if let Ok(text) = std::fs::read_to_string(&cache_path)
        && text.lines().next() == Some(&format!("# weights {key}"))
    {
        for line in text.lines().skip(1) {
            if let Some((path, score)) = line.split_once('\t') {
                cache.insert(path.to_owned(), score.parse().ok());
            }
        }
    }
    let todo: Vec<&Entry> = entries
        .iter()
        .filter(|e| !cache.contains_key(&e.path.display().to_string()))
        .collect();
    eprintln!(
        "{} held-out clips, {} scored before, {} to score",
        entries.len(),
        entries.len() - todo.len(),
        todo.len()
    );
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let fresh: Vec<(String, Option<f64>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = todo
            .chunks(todo.len().div_ceil(threads).max(1))
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|e| (e.path.display().to_string(), score_one(detector, &e.path)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("scoring thread"))
            .collect()
    });
    cache.extend(fresh);
    let mut text = format!("# weights {key}\n");
    for (path, score) in &cache {
        let score = score.map_or("unscored".to_owned(), |s| s.to_string());
        text.push_str(&format!("{path}\t{score}\n"));
    }
    std::fs::write(&cache_path, text)?;
    Ok(entries
        .into_iter()
        .map(|entry| {
            let score = cache[&entry.path.display().to_string()];
            Scored { entry, score }
        })
        .collect())
}

/// The clip's raw score as `aqiqat scan` computes it; `None` when it is not scored (too little
/// speech, or a file that does not decode, which is reported).
fn score_one(detector: &VoiceDetector, path: &Path) -> Option<f64> {
    let samples = match AudioStream::open(path, SAMPLE_RATE, &Limits::default())
        .and_then(|s| s.read_to_end())
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!("skipping: {e}");
            return None;
        }
    };
    match detector.analyse(&samples) {
        Ok(a) => match a.outcome {
            Outcome::Scored(score) => Some(score),
            Outcome::Unscored(_) => None,
        },
        Err(e) => {
            eprintln!("{}: {e}", path.display());
            None
        }
    }
}

fn shares(scores: &[f64], bands: &ScoreBands) -> Shares {
    let n = scores.len().max(1) as f64;
    let human = scores.iter().filter(|&&s| s < bands.human).count() as f64;
    let synthetic = scores.iter().filter(|&&s| s >= bands.synthetic).count() as f64;
    Shares {
        synthetic: synthetic / n,
        human: human / n,
        inconclusive: (n - human - synthetic).max(0.0) / n,
    }
}

/// Markdown tables for the model card: each fold (bands from the other folds), then, with the
/// final bands, spoofs by family and genuine clips by language and channel.
fn print_report(card: &aqiqat_voice::card::ModelCard, scored: &[&Scored], bands: &ScoreBands) {
    let open = card.open_set.as_ref().expect("just written");
    let pct = |x: f64| format!("{:.1} %", x * 100.0);
    println!(
        "held out: {} pages, {} systems, {} genuine and {} synthetic clips ({} unscored); EER {}",
        open.pages,
        open.systems,
        open.n_bonafide,
        open.n_spoof,
        open.unscored,
        pct(open.eer)
    );
    println!(
        "thresholds: human below p {:.4} (score {:.3}), synthetic from p {:.4} (score {:.3}); \
         development alone gave {:.4} / {:.4}\n",
        card.thresholds.human_below,
        bands.human,
        card.thresholds.synthetic_above,
        bands.synthetic,
        open.development_thresholds.human_below,
        open.development_thresholds.synthetic_above
    );
    println!(
        "| fold | pages | genuine / synthetic | EER | synthetic caught | synthetic called human | \
         synthetic inconclusive | genuine called human | genuine called synthetic | genuine inconclusive |"
    );
    println!("|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|");
    for f in &open.folds {
        println!(
            "| {} | {} | {} / {} | {} | {} | {} | {} | {} | {} | {} |",
            f.fold,
            f.pages.len(),
            f.n_bonafide,
            f.n_spoof,
            f.eer.map_or("–".to_owned(), pct),
            pct(f.spoof.synthetic),
            pct(f.spoof.human),
            pct(f.spoof.inconclusive),
            pct(f.bonafide.human),
            pct(f.bonafide.synthetic),
            pct(f.bonafide.inconclusive)
        );
    }
    let mean = |get: &dyn Fn(&FoldShares) -> f64| {
        open.folds.iter().map(get).sum::<f64>() / open.folds.len() as f64
    };
    let worst = |get: &dyn Fn(&FoldShares) -> f64| open.folds.iter().map(get).fold(0.0, f64::max);
    println!(
        "| mean | | | | {} | {} | {} | {} | {} | {} |",
        pct(mean(&|f| f.spoof.synthetic)),
        pct(mean(&|f| f.spoof.human)),
        pct(mean(&|f| f.spoof.inconclusive)),
        pct(mean(&|f| f.bonafide.human)),
        pct(mean(&|f| f.bonafide.synthetic)),
        pct(mean(&|f| f.bonafide.inconclusive))
    );
    println!(
        "| worst | | | | | {} | | | {} | |\n",
        pct(worst(&|f| f.spoof.human)),
        pct(worst(&|f| f.bonafide.synthetic))
    );
    for (label, spoof, by) in [
        ("synthetic clips by family", true, "family"),
        ("genuine clips by language", false, "language"),
        ("synthetic clips by channel", true, "channel"),
        ("genuine clips by channel", false, "channel"),
    ] {
        let mut groups: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
        for s in scored.iter().filter(|s| s.entry.label.is_spoof() == spoof) {
            groups
                .entry(s.entry.get(by).unwrap_or("?"))
                .or_default()
                .extend(s.score);
        }
        println!("{label} (final thresholds, in sample):\n");
        println!("| {by} | clips | synthetic | human | inconclusive |\n|---|---:|---:|---:|---:|");
        for (name, scores) in groups {
            let s = shares(&scores, bands);
            println!(
                "| {name} | {} | {} | {} | {} |",
                scores.len(),
                pct(s.synthetic),
                pct(s.human),
                pct(s.inconclusive)
            );
        }
        println!();
    }
}
