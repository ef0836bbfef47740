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
use aqiqat_voice::calibration::{
    MAX_BONAFIDE_CALLED_SYNTHETIC, MAX_SPOOF_CALLED_HUMAN, ScoreBands, Thresholds,
};
use aqiqat_voice::card::{FoldShares, OpenSetCard, RefusalCount, Shares};
use aqiqat_voice::detector::{ReasonCode, VoiceDetector};
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
    /// A family of synthesis the model trained on, as `KEY=WORDS`: the corpus's `family`
    /// name, then plain words for users (repeatable; at least one). Held-out families with a
    /// heard key are not listed as unheard.
    #[arg(long = "heard", required = true, value_parser = parse_heard)]
    heard: Vec<(String, String)>,
    /// Also use the corpus's channel variants (manifest_aug.tsv) of the same clips.
    #[arg(long)]
    augmented: bool,
}

/// One held-out clip as `aqiqat scan` sees it: its score (`None` with too little speech to
/// score), and the reason code when scan refuses to judge it whatever the score (too little
/// speech for a verdict, music, several voices, too noisy).
pub(crate) struct Scored {
    pub(crate) entry: Entry,
    pub(crate) score: Option<f64>,
    pub(crate) refused: Option<String>,
}

impl Scored {
    /// The score when scan would judge the clip by it.
    pub(crate) fn judged(&self) -> Option<f64> {
        self.score.filter(|_| self.refused.is_none())
    }
}

pub fn run(args: &OpenSetArgs) -> Result<(), Box<dyn std::error::Error>> {
    let card_path = args.model.join("voice-tdnn-mfm.json");
    let card_json = std::fs::read_to_string(&card_path)?;
    let weights = std::fs::read(args.model.join("voice-tdnn-mfm.safetensors"))?;
    let detector = VoiceDetector::load(&weights, &card_json)?;
    let mut card = detector
        .single_card()
        .ok_or("open-set rewrites the card of a single network")?
        .clone();

    let entries = held_out_entries(args)?;
    if entries.is_empty() {
        return Err("no held-out clips: every fold's page or system was excluded".into());
    }
    let cache = args.model.join("open-set-scores.tsv");
    let scores = score_all(&detector, &card.weights_sha256, &cache, entries)?;
    // A card that went through here before keeps what its development split gave.
    let development_thresholds = card
        .open_set
        .as_ref()
        .map_or(card.thresholds, |o| o.development_thresholds);
    let (open_set, bands) = judge(&scores, &args.heard, &args.corpus, development_thresholds)?;
    card.thresholds = bands.thresholds(&card.calibration);
    card.open_set = Some(open_set);
    let everything: Vec<&Scored> = scores.iter().collect();
    print_report(
        &card.thresholds,
        card.open_set.as_ref().expect("just written"),
        &everything,
        &bands,
    );
    std::fs::write(&card_path, serde_json::to_string_pretty(&card)? + "\n")?;
    eprintln!(
        "thresholds {development_thresholds:?} -> {:?}\nwrote {}",
        card.thresholds,
        card_path.display()
    );
    Ok(())
}

/// The open-set section from held-out clips as scan judged them: bands on all of them, each
/// fold's shares with bands set on the others, the families heard and not heard.
pub(crate) fn judge(
    scores: &[Scored],
    heard: &[(String, String)],
    corpus: &Path,
    development_thresholds: Thresholds,
) -> Result<(OpenSetCard, ScoreBands), Box<dyn std::error::Error>> {
    // The bands come from the clips scan would judge by their score; the shares count every
    // clip, a refused or unscored one as `inconclusive`, which is what scan answers for it.
    let scored: Vec<&Scored> = scores.iter().filter(|s| s.judged().is_some()).collect();
    let values = |rows: &[&Scored], spoof: bool| -> Vec<f64> {
        rows.iter()
            .filter(|s| s.entry.label.is_spoof() == spoof)
            .filter_map(|s| s.judged())
            .collect()
    };
    let outcomes = |rows: &[&Scored], spoof: bool| -> Vec<Option<f64>> {
        rows.iter()
            .filter(|s| s.entry.label.is_spoof() == spoof)
            .map(|s| s.judged())
            .collect()
    };
    let everything: Vec<&Scored> = scores.iter().collect();
    let (bonafide, spoof) = (values(&scored, false), values(&scored, true));
    if bonafide.is_empty() || spoof.is_empty() {
        return Err("the held-out clips hold only one label".into());
    }
    let bands = ScoreBands::from_held_out(&bonafide, &spoof);

    let fold_of = |s: &Scored| -> usize {
        s.entry
            .get("fold")
            .and_then(|f| f.parse().ok())
            .expect("held-out rows have a fold")
    };
    let folds: BTreeSet<usize> = everything.iter().map(|s| fold_of(s)).collect();
    let mut fold_shares = Vec::new();
    for &fold in &folds {
        let (inside, outside): (Vec<&Scored>, Vec<&Scored>) =
            everything.iter().partition(|s| fold_of(s) == fold);
        let (ob, os) = (values(&outside, false), values(&outside, true));
        if ob.is_empty() || os.is_empty() {
            return Err(format!("without fold {fold} one label is missing").into());
        }
        let others = ScoreBands::from_held_out(&ob, &os);
        let (ib, is) = (values(&inside, false), values(&inside, true));
        let (all_b, all_s) = (outcomes(&inside, false), outcomes(&inside, true));
        let pages: BTreeSet<String> = inside
            .iter()
            .filter_map(|s| s.entry.get("page").map(str::to_owned))
            .collect();
        fold_shares.push(FoldShares {
            fold,
            pages: pages.into_iter().collect(),
            n_bonafide: all_b.len(),
            n_spoof: all_s.len(),
            eer: (!ib.is_empty() && !is.is_empty()).then(|| metrics::eer(&ib, &is).eer),
            spoof: shares(&all_s, &others),
            bonafide: shares(&all_b, &others),
        });
    }

    let spoof_rows = everything.iter().filter(|s| s.entry.label.is_spoof());
    let column = |s: &Scored, c: &str| s.entry.get(c).unwrap_or("?").to_owned();
    let families_not_heard: BTreeSet<String> = spoof_rows
        .clone()
        .map(|s| column(s, "family"))
        .filter(|f| !heard.iter().any(|(key, _)| key == f))
        .collect();
    let systems: BTreeSet<String> = spoof_rows.map(|s| column(s, "system")).collect();
    let pages: BTreeSet<String> = everything.iter().map(|s| column(s, "page")).collect();
    let open_set = OpenSetCard {
        command: crate::command_line(),
        corpus_manifest_sha256: aqiqat_intake::hash::sha256_bytes(&std::fs::read(
            corpus.join("manifest.tsv"),
        )?),
        families_heard: heard.iter().map(|(_, words)| words.clone()).collect(),
        families_not_heard: families_not_heard.into_iter().collect(),
        pages: pages.len(),
        systems: systems.len(),
        n_bonafide: bonafide.len(),
        n_spoof: spoof.len(),
        unscored: scores.iter().filter(|s| s.score.is_none()).count(),
        refused: refusals(scores),
        eer: metrics::eer(&bonafide, &spoof).eer,
        max_spoof_called_human: MAX_SPOOF_CALLED_HUMAN,
        max_bonafide_called_synthetic: MAX_BONAFIDE_CALLED_SYNTHETIC,
        development_thresholds,
        folds: fold_shares,
    };
    Ok((open_set, bands))
}

pub(crate) fn parse_heard(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, words)) if !key.trim().is_empty() && !words.trim().is_empty() => {
            Ok((key.trim().to_owned(), words.trim().to_owned()))
        }
        _ => Err(format!(
            "{text:?}: give KEY=WORDS, e.g. formant=formant synthesis (eSpeak NG)"
        )),
    }
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

/// Scans every entry with the detector, on all cores. Results are kept in `cache_path`, keyed
/// by `key` (what makes the detector's scores what they are: its weights' hash, and for a
/// fusion its terms) and each clip's path, so that a rerun (another exclusion, another report)
/// does not decode the corpus again.
pub(crate) fn score_all(
    detector: &VoiceDetector,
    key: &str,
    cache_path: &Path,
    entries: Vec<Entry>,
) -> Result<Vec<Scored>, Box<dyn std::error::Error>> {
    type Outcome = (Option<f64>, Option<String>);
    let header = format!("# weights {key} with refusals");
    let mut cache: BTreeMap<String, Outcome> = BTreeMap::new();
    if let Ok(text) = std::fs::read_to_string(cache_path)
        && text.lines().next() == Some(header.as_str())
    {
        for line in text.lines().skip(1) {
            if let [path, score, refused] = line.split('\t').collect::<Vec<_>>()[..] {
                let refused = (!refused.is_empty()).then(|| refused.to_owned());
                cache.insert(path.to_owned(), (score.parse().ok(), refused));
            }
        }
    }
    let todo: Vec<&Entry> = entries
        .iter()
        .filter(|e| !cache.contains_key(&e.path.display().to_string()))
        .collect();
    eprintln!(
        "{} held-out clips, {} scanned before, {} to scan",
        entries.len(),
        entries.len() - todo.len(),
        todo.len()
    );
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let fresh: Vec<(String, Outcome)> = std::thread::scope(|scope| {
        let handles: Vec<_> = todo
            .chunks(todo.len().div_ceil(threads).max(1))
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|e| (e.path.display().to_string(), scan_one(detector, &e.path)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("scanning thread"))
            .collect()
    });
    cache.extend(fresh);
    let mut text = format!("{header}\n");
    for (path, (score, refused)) in &cache {
        let score = score.map_or("unscored".to_owned(), |s| s.to_string());
        text.push_str(&format!(
            "{path}\t{score}\t{}\n",
            refused.as_deref().unwrap_or("")
        ));
    }
    std::fs::write(cache_path, text)?;
    Ok(entries
        .into_iter()
        .map(|entry| {
            let (score, refused) = cache[&entry.path.display().to_string()].clone();
            Scored {
                entry,
                score,
                refused,
            }
        })
        .collect())
}

/// The clip's raw score and scan's refusal as `aqiqat scan` computes them; no score when the
/// clip has too little speech to score, or does not decode (which is reported).
fn scan_one(detector: &VoiceDetector, path: &Path) -> (Option<f64>, Option<String>) {
    let samples = match AudioStream::open(path, detector.sample_rate(), &Limits::default())
        .and_then(|s| s.read_to_end())
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!("skipping: {e}");
            return (None, None);
        }
    };
    match detector.scan(&samples) {
        Ok(f) => {
            let refused = f
                .reason_code
                .filter(|c| !matches!(c, ReasonCode::NoSignFound | ReasonCode::BetweenThresholds));
            (f.score, refused.map(|c| c.as_str().to_owned()))
        }
        Err(e) => {
            eprintln!("{}: {e}", path.display());
            (None, None)
        }
    }
}

/// How many clips of each label scan refuses to judge, by reason.
fn refusals(scores: &[Scored]) -> Vec<RefusalCount> {
    let mut by: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for s in scores {
        if let Some(reason) = &s.refused {
            let counts = by.entry(reason.clone()).or_default();
            if s.entry.label.is_spoof() {
                counts.1 += 1;
            } else {
                counts.0 += 1;
            }
        }
    }
    by.into_iter()
        .map(|(reason, (bonafide, spoof))| RefusalCount {
            reason,
            bonafide,
            spoof,
        })
        .collect()
}

/// How clips of one label are judged: `None` (not judged) counts as inconclusive.
fn shares(outcomes: &[Option<f64>], bands: &ScoreBands) -> Shares {
    let n = outcomes.len().max(1) as f64;
    let human = outcomes
        .iter()
        .flatten()
        .filter(|&&s| s < bands.human)
        .count() as f64;
    let synthetic = outcomes
        .iter()
        .flatten()
        .filter(|&&s| s >= bands.synthetic)
        .count() as f64;
    Shares {
        synthetic: synthetic / n,
        human: human / n,
        inconclusive: (n - human - synthetic).max(0.0) / n,
    }
}

/// Markdown tables for the model card: each fold (bands from the other folds), then, with the
/// final bands, spoofs by family and genuine clips by language and channel.
pub(crate) fn print_report(
    thresholds: &Thresholds,
    open: &OpenSetCard,
    all: &[&Scored],
    bands: &ScoreBands,
) {
    let pct = |x: f64| format!("{:.1} %", x * 100.0);
    println!(
        "held out: {} pages, {} systems; {} genuine and {} synthetic clips judged by their score ({} unscored, the rest refused: table at the end); EER {}",
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
        thresholds.human_below,
        bands.human,
        thresholds.synthetic_above,
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
        let mut groups: BTreeMap<&str, Vec<Option<f64>>> = BTreeMap::new();
        for s in all.iter().filter(|s| s.entry.label.is_spoof() == spoof) {
            groups
                .entry(s.entry.get(by).unwrap_or("?"))
                .or_default()
                .push(s.judged());
        }
        println!(
            "{label} (final thresholds, in sample; refused and unscored count as inconclusive):\n"
        );
        println!("| {by} | clips | synthetic | human | inconclusive |\n|---|---:|---:|---:|---:|");
        for (name, outcomes) in groups {
            let s = shares(&outcomes, bands);
            println!(
                "| {name} | {} | {} | {} | {} |",
                outcomes.len(),
                pct(s.synthetic),
                pct(s.human),
                pct(s.inconclusive)
            );
        }
        println!();
    }
    let count = |spoof: bool| {
        all.iter()
            .filter(|s| s.entry.label.is_spoof() == spoof)
            .count()
    };
    let (nb, ns) = (count(false).max(1) as f64, count(true).max(1) as f64);
    println!("refused by scan, whatever the score (share of all held-out clips of the label):\n");
    println!("| reason | genuine | synthetic |\n|---|---:|---:|");
    for r in &open.refused {
        println!(
            "| {} | {} ({}) | {} ({}) |",
            r.reason,
            r.bonafide,
            pct(r.bonafide as f64 / nb),
            r.spoof,
            pct(r.spoof as f64 / ns)
        );
    }
    println!();
}
