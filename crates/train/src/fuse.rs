//! `aqiqat-train fuse`: one detector from several networks, their scores fused with weights
//! learnt on the leave-one-page-out folds, and its verdict bands set on what no member heard.
//!
//! Each candidate has been trained on every fold of a corpus v2 build with one fixed recipe
//! (`tools/voice-data/folds.sh`), and once more on the whole train split with the same recipe
//! (the member that ships). This
//! 1. standardises each candidate's held-out clip scores (pooled over the folds) and picks the
//!    weights, on a grid, that give the lowest pooled equal error rate over all folds;
//! 2. scans every fold's held-out clips the way `aqiqat scan` does, through the fused detector
//!    made of that fold's networks (each run's last epoch, `fold-K/last/`: the best epoch was
//!    chosen on these clips): one speech detector, aligned windows, scan's refusals;
//! 3. fits the calibration and sets the `human` and `synthetic` bands on those scans
//!    (`ScoreBands::from_held_out`), and judges each fold with bands set on the others;
//! 4. writes the fused card and the shipped members' cards and weights.
//!
//! A candidate may be one recipe trained with several seeds (`--runs A+A2 --final F+F2`): its
//! networks' logits are averaged before it is standardised, which cuts the part of a recipe's
//! error that is only the luck of its seed. The card lists each network as a member with an
//! equal share of the candidate's weight and the candidate's standardisation, which is the
//! same sum.
//!
//! The bands are set on the fold networks and carried over to the members trained on
//! everything: that the recipe's score scale does not move between the two is an assumption,
//! which the printed spread of per-fold bands and an evaluation of the final detector check.

use crate::open_set::{self, Scored};
use aqiqat_voice::calibration::{Platt, Thresholds};
use aqiqat_voice::card::{FusedCard, FusedMember, Fusion, ModelCard, ShortSpanWindows};
use aqiqat_voice::detector::VoiceDetector;
use aqiqat_voice::manifest::Entry;
use aqiqat_voice::metrics;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

#[derive(clap::Args, Clone)]
pub struct FuseArgs {
    /// The corpus the folds were cut from (tools/voice-data/corpus.py: folds.json and the
    /// manifests).
    #[arg(long)]
    corpus: PathBuf,
    /// One candidate's fold runs: a folder of `fold-K/` runs written by
    /// tools/voice-data/folds.sh (repeatable: two or three candidates), or several joined by
    /// `+`, one recipe trained with different seeds, whose logits are averaged. Each folder's
    /// name names its member.
    #[arg(long = "runs", required = true, num_args = 1)]
    runs: Vec<String>,
    /// The shipped network of each candidate, in the same order (and as many joined by `+`,
    /// seed for seed): the last epoch (`RUN/last`) of a run of the same recipe on the whole
    /// train split.
    #[arg(long = "final", required = true, num_args = 1)]
    finals: Vec<String>,
    /// Where the fused card (`NAME.json`) and the members' cards and weights
    /// (`NAME-MEMBER.json`, `NAME-MEMBER.safetensors`) are written.
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value = "voice-v2")]
    name: String,
    /// Where the scans of the folds' clips are kept, so that a rerun does not decode again.
    #[arg(long)]
    work: PathBuf,
    /// Plain words for a family the members trained on, as `KEY=WORDS` (repeatable); a family
    /// without words is named by its key.
    #[arg(long = "heard", value_parser = open_set::parse_heard)]
    heard: Vec<(String, String)>,
    /// Step of the weight grid (weights are multiples of it that sum to one).
    #[arg(long, default_value_t = 0.05)]
    step: f64,
    /// Only these folds (repeatable; default every fold of folds.json): for a trial run.
    #[arg(long = "fold")]
    only: Vec<usize>,
    /// Cut short speech spans into shorter, denser windows, as `window=W,hop=H,up-to=U` in
    /// 10 ms frames (written into the card; the folds' scans and the bands use it). Without
    /// it, a span of up to 4 s is one window.
    #[arg(long = "short-spans")]
    short_spans: Option<ShortSpanWindows>,
}

/// One held-out clip: its path, its label and each candidate's score for it.
#[derive(Debug, Clone, PartialEq)]
struct Clip {
    path: String,
    spoof: bool,
    scores: Vec<f64>,
}

/// One candidate: the fold runs of its seeds and, seed for seed, their shipped networks.
struct Candidate {
    runs: Vec<PathBuf>,
    finals: Vec<PathBuf>,
}

/// `A` or `A+A2+…` as folders.
fn seeds(arg: &str) -> Vec<PathBuf> {
    arg.split('+').map(PathBuf::from).collect()
}

fn folder_name(path: &Path) -> Result<String, String> {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| format!("{} has no folder name", path.display()))
}

pub fn run(args: &FuseArgs) -> Result<(), Box<dyn std::error::Error>> {
    if !(2..=3).contains(&args.runs.len()) || args.runs.len() != args.finals.len() {
        return Err(format!(
            "give two or three --runs and as many --final (got {} and {})",
            args.runs.len(),
            args.finals.len()
        )
        .into());
    }
    let candidates: Vec<Candidate> = args
        .runs
        .iter()
        .zip(&args.finals)
        .map(|(runs, finals)| Candidate {
            runs: seeds(runs),
            finals: seeds(finals),
        })
        .collect();
    if let Some(c) = candidates.iter().find(|c| c.runs.len() != c.finals.len()) {
        return Err(format!(
            "{} seeds' fold runs and {} shipped networks: give one per seed",
            c.runs.len(),
            c.finals.len()
        )
        .into());
    }
    // Networks per candidate, and every network's fold runs in candidate order.
    let sizes: Vec<usize> = candidates.iter().map(|c| c.runs.len()).collect();
    let all_runs: Vec<&PathBuf> = candidates.iter().flat_map(|c| &c.runs).collect();
    let member_names: Vec<String> = all_runs
        .iter()
        .map(|r| folder_name(r))
        .collect::<Result<_, _>>()?;
    if member_names.iter().collect::<BTreeSet<_>>().len() != member_names.len() {
        return Err(format!("two runs share a folder name: {member_names:?}").into());
    }
    let names: Vec<String> = candidates
        .iter()
        .map(|c| {
            c.runs
                .iter()
                .map(|r| folder_name(r))
                .collect::<Result<Vec<_>, _>>()
                .map(|n| n.join("+"))
        })
        .collect::<Result<_, _>>()?;
    let mut folds = fold_numbers(&args.corpus)?;
    if !args.only.is_empty() {
        if let Some(k) = args.only.iter().find(|k| !folds.contains(k)) {
            return Err(format!("folds.json has no fold {k}").into());
        }
        folds.retain(|k| args.only.contains(k));
    }

    // 1. The weights, from the scores the folds wrote.
    let mut by_fold: BTreeMap<usize, Vec<Clip>> = BTreeMap::new();
    for &k in &folds {
        let tables: Vec<BTreeMap<String, (bool, f64)>> = all_runs
            .iter()
            .map(|r| read_scores(&r.join(format!("fold-{k}/dev-scores-last.tsv"))))
            .collect::<Result<_, _>>()?;
        by_fold.insert(k, seeds_averaged(shared_clips(&tables), &sizes));
    }
    let pooled: Vec<&Clip> = by_fold.values().flatten().collect();
    let standard: Vec<(f64, f64)> = (0..names.len())
        .map(|i| mean_sd(pooled.iter().map(|c| c.scores[i])))
        .collect();
    let grid = weight_grid(names.len(), args.step);
    let weights = best_weights(&grid, &standard, pooled.iter().copied())?;
    let terms = fusion_terms(&weights, &standard);
    let network_terms = per_network(&terms, &sizes);
    eprintln!("pooled over {} folds, {} clips:", folds.len(), pooled.len());
    for (i, name) in names.iter().enumerate() {
        let alone = pooled_eer(pooled.iter().copied(), |c| c.scores[i]);
        eprintln!(
            "  {name}: EER {:.2} % alone; fusion term {:?}",
            alone * 100.0,
            terms[i]
        );
    }
    let fused_eer = pooled_eer(pooled.iter().copied(), |c| fused(&terms, &c.scores));
    eprintln!("  fused: EER {:.2} %", fused_eer * 100.0);
    // The same choice made without each fold in turn: the figure a fold can honestly report.
    eprintln!(
        "| fold | weights learnt on the other folds | EER | {} |",
        names.join(" | ")
    );
    for (&k, clips) in &by_fold {
        let others = by_fold
            .iter()
            .filter(|(j, _)| **j != k)
            .flat_map(|(_, c)| c);
        let w = best_weights(&grid, &standard, others)?;
        let t = fusion_terms(&w, &standard);
        let alone: Vec<String> = (0..names.len())
            .map(|i| percent(pooled_eer(clips.iter(), |c| c.scores[i])))
            .collect();
        eprintln!(
            "| {k} | {w:?} | {} | {} |",
            percent(pooled_eer(clips.iter(), |c| fused(&t, &c.scores))),
            alone.join(" | ")
        );
    }

    // 2. Every fold's clips scanned through that fold's networks, fused.
    let entries = crate::read_corpus(&args.corpus, false, None)?.entries;
    std::fs::create_dir_all(&args.work)?;
    let mut scans: Vec<Scored> = Vec::new();
    let mut drift: Vec<f64> = Vec::new();
    for &k in &folds {
        // The last epoch's networks: the best ones were chosen on these very clips.
        let runs: Vec<PathBuf> = all_runs
            .iter()
            .map(|r| r.join(format!("fold-{k}/last")))
            .collect();
        let detector = fused_detector(&runs, &network_terms, args.short_spans)?;
        // Every clip of the fold, those too short to score included: scan answers them too.
        let held_out: Vec<Entry> = entries
            .iter()
            .filter(|e| e.get("fold").and_then(|f| f.parse::<usize>().ok()) == Some(k))
            .cloned()
            .collect();
        let mut key = format!("{} fused {network_terms:?}", detector.id().weights_sha256);
        if let Some(rule) = args.short_spans {
            key += &format!(" {rule:?}");
        }
        let cache = args.work.join(format!("fold-{k}-scans.tsv"));
        eprintln!("fold {k}:");
        let scanned = open_set::score_all(&detector, &key, &cache, held_out)?;
        // What the scan gives against what the folds' own scores fuse to: the runtime finds
        // speech once and reads the lower-rate member from the resampled input.
        let own: BTreeMap<&str, &Clip> = by_fold[&k].iter().map(|c| (c.path.as_str(), c)).collect();
        for s in &scanned {
            let path = s.entry.path.display().to_string();
            if let (Some(score), Some(clip)) = (s.score, own.get(path.as_str())) {
                drift.push((score - fused(&terms, &clip.scores)).abs());
            }
        }
        scans.extend(scanned);
    }
    drift.sort_by(f64::total_cmp);
    if let (Some(median), Some(worst)) = (drift.get(drift.len() / 2), drift.last()) {
        eprintln!(
            "scan against the folds' own scores, fused: |difference| median {median:.4}, 99th \
             percentile {:.4}, worst {worst:.4} (over {} clips)",
            drift[(drift.len() * 99 / 100).min(drift.len() - 1)],
            drift.len()
        );
    }

    // 3. Calibration and bands on the scans.
    let judged = |spoof: bool| -> Vec<f64> {
        scans
            .iter()
            .filter(|s| s.entry.label.is_spoof() == spoof)
            .filter_map(Scored::judged)
            .collect()
    };
    let (bonafide, spoof) = (judged(false), judged(true));
    if bonafide.is_empty() || spoof.is_empty() {
        return Err("the folds' clips hold only one label once scan's refusals are out".into());
    }
    let platt = Platt::fit(&bonafide, &spoof);
    let development =
        Thresholds::from_development(&platt, &bonafide, metrics::eer(&bonafide, &spoof).threshold);
    let train_families = families(&entries, |e| e.get("split") == Some("train"));
    // A family in the words users read, by its key where no words were given.
    let words = |key: &String| {
        args.heard
            .iter()
            .find(|(k, _)| k == key)
            .map_or_else(|| key.clone(), |(_, w)| w.clone())
    };
    let heard: Vec<(String, String)> = train_families
        .iter()
        .map(|key| (key.clone(), words(key)))
        .collect();
    let (mut open, bands) = open_set::judge(&scans, &heard, &args.corpus, development)?;
    // The shipped members heard every family of the train split; what they did not hear is
    // what the corpus holds elsewhere (the folds' own unheard families are in `folds`).
    open.families_not_heard = families(&entries, |_| true)
        .difference(&train_families)
        .map(words)
        .collect();
    let thresholds = bands.thresholds(&platt);
    let everything: Vec<&Scored> = scans.iter().collect();
    open_set::print_report(&thresholds, &open, &everything, &bands);

    // 4. The shipped members and the card.
    std::fs::create_dir_all(&args.out)?;
    let recipe = |card: &ModelCard| {
        (
            card.features.clone(),
            card.network.clone(),
            card.training.seed,
            card.training.epochs,
            card.training.examples_per_epoch,
            card.training.batch,
            card.training.lr,
        )
    };
    let read_card = |path: PathBuf| -> Result<ModelCard, Box<dyn std::error::Error>> {
        Ok(serde_json::from_str(&std::fs::read_to_string(path)?)?)
    };
    let mut members = Vec::new();
    let mut terms_left = network_terms.iter();
    let mut names_left = member_names.iter();
    for candidate in &candidates {
        let mut seeds_seen = BTreeSet::new();
        let mut first_recipe = None;
        for (finished, runs) in candidate.finals.iter().zip(&candidate.runs) {
            let (term, name) = (
                terms_left.next().expect("a term per network"),
                names_left.next().expect("a name per network"),
            );
            let mut card = read_card(finished.join("voice-tdnn-mfm.json"))?;
            let fold_card =
                read_card(runs.join(format!("fold-{}/last/voice-tdnn-mfm.json", folds[0])))?;
            if let Some(k) = card.training.fold {
                return Err(format!(
                    "{}: trained on fold {k}, not on the whole train split",
                    finished.display()
                )
                .into());
            }
            if card.dev.epoch + 1 != card.training.epochs {
                return Err(format!(
                    "{}: the network of epoch {} of {}, chosen on its development split; the \
                     folds measured the last epoch's (give the run's `last/` folder)",
                    finished.display(),
                    card.dev.epoch,
                    card.training.epochs
                )
                .into());
            }
            if recipe(&card) != recipe(&fold_card) {
                return Err(format!(
                    "{}: not the folds' recipe ({:?} against the folds' {:?})",
                    finished.display(),
                    recipe(&card),
                    recipe(&fold_card)
                )
                .into());
            }
            // A candidate's networks are one recipe with different seeds: anything else
            // would be a fusion whose weights nobody chose.
            let mut unseeded = recipe(&card);
            unseeded.2 = 0;
            if first_recipe.get_or_insert_with(|| unseeded.clone()) != &unseeded
                || !seeds_seen.insert(card.training.seed)
            {
                return Err(format!(
                    "{}: the networks joined by `+` must be one recipe with different seeds",
                    finished.display()
                )
                .into());
            }
            let stem = format!("{}-{name}", args.name);
            card.weights = format!("{stem}.safetensors");
            std::fs::copy(
                finished.join("voice-tdnn-mfm.safetensors"),
                args.out.join(&card.weights),
            )?;
            std::fs::write(
                args.out.join(format!("{stem}.json")),
                serde_json::to_string_pretty(&card)? + "\n",
            )?;
            members.push(FusedMember {
                card: format!("{stem}.json"),
                weights_sha256: card.weights_sha256.clone(),
                fusion: *term,
            });
        }
    }
    let card = FusedCard {
        model: args.name.clone(),
        version: env!("CARGO_PKG_VERSION").into(),
        members,
        calibration: platt,
        thresholds,
        command: crate::command_line(),
        open_set: Some(open),
        short_spans: args.short_spans,
    };
    let card_name = format!("{}.json", args.name);
    std::fs::write(
        args.out.join(&card_name),
        serde_json::to_string_pretty(&card)? + "\n",
    )?;
    let shipped = VoiceDetector::load_fused_dir(&args.out, &card_name)?;
    eprintln!(
        "wrote {} ({}; input at {} Hz)",
        args.out.join(&card_name).display(),
        shipped.id().weights_sha256,
        shipped.sample_rate()
    );
    Ok(())
}

/// The fused detector of one fold's runs; its calibration is a placeholder (the scans are
/// of raw scores).
fn fused_detector(
    runs: &[PathBuf],
    terms: &[Fusion],
    short_spans: Option<ShortSpanWindows>,
) -> Result<VoiceDetector, Box<dyn std::error::Error>> {
    let mut files = Vec::new();
    let mut members = Vec::new();
    for (run, &fusion) in runs.iter().zip(terms) {
        let json = std::fs::read_to_string(run.join("voice-tdnn-mfm.json"))?;
        let card: ModelCard = serde_json::from_str(&json)?;
        members.push(FusedMember {
            card: run.display().to_string(),
            weights_sha256: card.weights_sha256,
            fusion,
        });
        files.push((std::fs::read(run.join("voice-tdnn-mfm.safetensors"))?, json));
    }
    let card = FusedCard {
        model: "fold".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        members,
        calibration: Platt { a: 1.0, b: 0.0 },
        thresholds: Thresholds {
            human_below: 0.5,
            synthetic_above: 0.5,
        },
        command: String::new(),
        open_set: None,
        short_spans,
    };
    let given: Vec<(&[u8], &str)> = files
        .iter()
        .map(|(w, c)| (w.as_slice(), c.as_str()))
        .collect();
    Ok(VoiceDetector::from_fused_card(card, &given)?)
}

fn fold_numbers(corpus: &Path) -> Result<Vec<usize>, Box<dyn std::error::Error>> {
    #[derive(serde::Deserialize)]
    struct Fold {
        fold: usize,
    }
    let folds: Vec<Fold> =
        serde_json::from_str(&std::fs::read_to_string(corpus.join("folds.json"))?)?;
    Ok(folds.into_iter().map(|f| f.fold).collect())
}

/// A run's `dev-scores-last.tsv`: clip path → (spoof?, raw score).
fn read_scores(path: &Path) -> Result<BTreeMap<String, (bool, f64)>, Box<dyn std::error::Error>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "cannot read {}: {e} (is that fold finished?)",
            path.display()
        )
    })?;
    let mut out = BTreeMap::new();
    for (n, line) in text.lines().enumerate().skip(1) {
        let bad = || format!("{}:{}: not `path label score`", path.display(), n + 1);
        let [clip, label, score] = line.split('\t').collect::<Vec<_>>()[..] else {
            return Err(bad().into());
        };
        let spoof = match label {
            "spoof" => true,
            "bonafide" => false,
            _ => return Err(bad().into()),
        };
        out.insert(clip.to_owned(), (spoof, score.parse().map_err(|_| bad())?));
    }
    Ok(out)
}

/// The clips every candidate scored, with each one's score, in path order.
fn shared_clips(tables: &[BTreeMap<String, (bool, f64)>]) -> Vec<Clip> {
    tables[0]
        .iter()
        .filter_map(|(path, &(spoof, first))| {
            let mut scores = vec![first];
            for t in &tables[1..] {
                scores.push(t.get(path)?.1);
            }
            Some(Clip {
                path: path.clone(),
                spoof,
                scores,
            })
        })
        .collect()
}

/// Each candidate's score as the mean of its seeds' (`sizes[i]` consecutive scores each).
fn seeds_averaged(clips: Vec<Clip>, sizes: &[usize]) -> Vec<Clip> {
    clips
        .into_iter()
        .map(|clip| {
            let mut left = clip.scores.iter();
            let scores = sizes
                .iter()
                .map(|&n| left.by_ref().take(n).sum::<f64>() / n as f64)
                .collect();
            Clip { scores, ..clip }
        })
        .collect()
}

/// A candidate's fusion term as its networks' terms: each an equal share of the weight with
/// the candidate's standardisation, so that their sum is the term of their mean logit.
fn per_network(terms: &[Fusion], sizes: &[usize]) -> Vec<Fusion> {
    terms
        .iter()
        .zip(sizes)
        .flat_map(|(t, &n)| {
            std::iter::repeat_n(
                Fusion {
                    weight: t.weight / n as f64,
                    ..*t
                },
                n,
            )
        })
        .collect()
}

/// Mean and population standard deviation (1 when the values do not spread).
fn mean_sd(values: impl Iterator<Item = f64> + Clone) -> (f64, f64) {
    let n = values.clone().count().max(1) as f64;
    let mean = values.clone().sum::<f64>() / n;
    let sd = (values.map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
    (mean, if sd > 0.0 { sd } else { 1.0 })
}

/// Every weight vector of `n` non-negative multiples of `step` summing to one.
fn weight_grid(n: usize, step: f64) -> Vec<Vec<f64>> {
    let units = (1.0 / step).round() as usize;
    fn fill(left: usize, slots: usize, prefix: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
        if slots == 1 {
            prefix.push(left);
            out.push(prefix.clone());
            prefix.pop();
            return;
        }
        for take in (0..=left).rev() {
            prefix.push(take);
            fill(left - take, slots - 1, prefix, out);
            prefix.pop();
        }
    }
    let mut out = Vec::new();
    fill(units, n, &mut Vec::new(), &mut out);
    out.into_iter()
        .map(|v| v.into_iter().map(|u| u as f64 / units as f64).collect())
        .collect()
}

/// Each candidate's weight with its standardisation (pooled mean and spread).
fn fusion_terms(weights: &[f64], standard: &[(f64, f64)]) -> Vec<Fusion> {
    weights
        .iter()
        .zip(standard)
        .map(|(&weight, &(mean, sd))| Fusion { weight, mean, sd })
        .collect()
}

fn fused(terms: &[Fusion], scores: &[f64]) -> f64 {
    terms.iter().zip(scores).map(|(t, &s)| t.apply(s)).sum()
}

fn pooled_eer<'a>(clips: impl Iterator<Item = &'a Clip>, score: impl Fn(&Clip) -> f64) -> f64 {
    let (mut bonafide, mut spoof) = (Vec::new(), Vec::new());
    for c in clips {
        if c.spoof { &mut spoof } else { &mut bonafide }.push(score(c));
    }
    if bonafide.is_empty() || spoof.is_empty() {
        return f64::NAN;
    }
    metrics::eer(&bonafide, &spoof).eer
}

/// The grid point with the lowest pooled EER; where several tie (the EER counts clips, so
/// neighbouring weights often give the same figure), the centre of those that tie. Taking the
/// first of equals would make the choice depend on the order the candidates are named in.
fn best_weights<'a>(
    grid: &[Vec<f64>],
    standard: &[(f64, f64)],
    clips: impl Iterator<Item = &'a Clip> + Clone,
) -> Result<Vec<f64>, String> {
    let eer_at = |w: &[f64]| {
        let terms = fusion_terms(w, standard);
        pooled_eer(clips.clone(), |c| fused(&terms, &c.scores))
    };
    let mut best: Option<(f64, Vec<&Vec<f64>>)> = None;
    for w in grid {
        let eer = eer_at(w);
        if eer.is_nan() {
            return Err("the folds' clips hold only one label".into());
        }
        match &mut best {
            Some((b, tied)) if eer == *b => tied.push(w),
            Some((b, _)) if eer > *b => {}
            _ => best = Some((eer, vec![w])),
        }
    }
    let (eer, tied) = best.expect("a grid has points");
    Ok(centre_of_ties(&tied, eer, eer_at))
}

/// The mean of the tied weightings when it scores as well as they do (ties next to each other
/// on the grid); otherwise, for ties apart with worse weightings between them, the tied one
/// nearest that mean, so that the choice is always one that scored best.
fn centre_of_ties(tied: &[&Vec<f64>], best: f64, eer_at: impl Fn(&[f64]) -> f64) -> Vec<f64> {
    let n = tied.len() as f64;
    let centre: Vec<f64> = (0..tied[0].len())
        .map(|i| tied.iter().map(|w| w[i]).sum::<f64>() / n)
        .collect();
    if tied.len() == 1 || eer_at(&centre) <= best {
        return centre;
    }
    let distance = |w: &[f64]| -> f64 { w.iter().zip(&centre).map(|(a, b)| (a - b).powi(2)).sum() };
    tied.iter()
        .min_by(|a, b| distance(a).total_cmp(&distance(b)))
        .map(|w| w.to_vec())
        .expect("at least one tie")
}

/// The spoof families of the entries that pass `keep`.
fn families(entries: &[Entry], keep: impl Fn(&Entry) -> bool) -> BTreeSet<String> {
    entries
        .iter()
        .filter(|e| e.label.is_spoof() && keep(e))
        .filter_map(|e| e.get("family").map(str::to_owned))
        .collect()
}

fn percent(x: f64) -> String {
    format!("{:.1} %", x * 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grid_holds_every_split_of_one_into_steps() {
        let two = weight_grid(2, 0.25);
        assert_eq!(
            two,
            [
                [1.0, 0.0],
                [0.75, 0.25],
                [0.5, 0.5],
                [0.25, 0.75],
                [0.0, 1.0]
            ]
        );
        let three = weight_grid(3, 0.1);
        // Compositions of 10 into 3 parts: C(12, 2).
        assert_eq!(three.len(), 66);
        for w in &three {
            assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-12, "{w:?}");
            assert!(w.iter().all(|&x| x >= 0.0));
        }
    }

    #[test]
    fn tied_weightings_apart_give_one_of_them_not_their_worse_mean() {
        let (a, b, c) = (vec![0.2, 0.8], vec![0.5, 0.5], vec![0.8, 0.2]);
        // Best at 0.2 and 0.8, worse between: the mean (0.5) would be a weighting that lost.
        let eer = |w: &[f64]| if (w[0] - 0.5).abs() < 0.2 { 0.3 } else { 0.1 };
        let chosen = centre_of_ties(&[&a, &c], 0.1, eer);
        assert!(chosen == a || chosen == c, "{chosen:?}");
        // Neighbours that tie with their mean keep the mean.
        let flat = |_: &[f64]| 0.1;
        assert_eq!(centre_of_ties(&[&a, &b], 0.1, flat), vec![0.35, 0.65]);
        assert_eq!(centre_of_ties(&[&b], 0.1, eer), b);
    }

    #[test]
    fn the_weights_go_to_the_candidate_that_separates_the_labels() {
        // Candidate 0 separates the labels; candidate 1 is noise on a scale a hundred times
        // larger, which a sum without standardisation would let drown the first.
        let clips: Vec<Clip> = (0..200)
            .map(|i| {
                let spoof = i % 2 == 0;
                let noise = ((i * 7919) % 101) as f64 - 50.0;
                Clip {
                    path: i.to_string(),
                    spoof,
                    scores: vec![
                        if spoof { 1.0 } else { -1.0 } + noise * 0.001,
                        noise * 100.0,
                    ],
                }
            })
            .collect();
        let standard: Vec<(f64, f64)> = (0..2)
            .map(|i| mean_sd(clips.iter().map(|c| c.scores[i])))
            .collect();
        let w = best_weights(&weight_grid(2, 0.1), &standard, clips.iter()).unwrap();
        // Every weighting from 0.7 on the first separates the labels: the centre of those.
        assert!(
            (w[0] - 0.85).abs() < 1e-12 && (w[1] - 0.15).abs() < 1e-12,
            "{w:?}"
        );
        let terms = fusion_terms(&w, &standard);
        assert_eq!(pooled_eer(clips.iter(), |c| fused(&terms, &c.scores)), 0.0);
        assert_eq!(pooled_eer(clips.iter(), |c| c.scores[0]), 0.0);

        // Two halves of one signal: each alone errs, only their even sum does not.
        let clips: Vec<Clip> = (0..200)
            .map(|i| {
                let spoof = i % 2 == 0;
                let sign = if spoof { 1.0 } else { -1.0 };
                let shift = if (i / 2) % 2 == 0 { 10.0 } else { -10.0 };
                Clip {
                    path: i.to_string(),
                    spoof,
                    scores: vec![sign + shift, sign - shift],
                }
            })
            .collect();
        let standard: Vec<(f64, f64)> = (0..2)
            .map(|i| mean_sd(clips.iter().map(|c| c.scores[i])))
            .collect();
        assert!(pooled_eer(clips.iter(), |c| c.scores[0]) > 0.2);
        let w = best_weights(&weight_grid(2, 0.1), &standard, clips.iter()).unwrap();
        assert_eq!(w, [0.5, 0.5]);
        let terms = fusion_terms(&w, &standard);
        assert_eq!(pooled_eer(clips.iter(), |c| fused(&terms, &c.scores)), 0.0);
    }

    #[test]
    fn naming_the_candidates_in_another_order_swaps_their_weights() {
        // Two noisy views of one signal: several weightings tie for the lowest EER.
        let clips: Vec<Clip> = (0..60)
            .map(|i| {
                let spoof = i % 2 == 0;
                let sign = if spoof { 1.0 } else { -1.0 };
                let a = ((i * 37) % 11) as f64 / 5.0 - 1.0;
                let b = ((i * 53) % 13) as f64 / 6.0 - 1.0;
                Clip {
                    path: i.to_string(),
                    spoof,
                    scores: vec![sign + a, sign + b],
                }
            })
            .collect();
        let swapped: Vec<Clip> = clips
            .iter()
            .map(|c| Clip {
                scores: vec![c.scores[1], c.scores[0]],
                ..c.clone()
            })
            .collect();
        let grid = weight_grid(2, 0.1);
        let standard = |clips: &[Clip]| -> Vec<(f64, f64)> {
            (0..2)
                .map(|i| mean_sd(clips.iter().map(|c| c.scores[i])))
                .collect()
        };
        let eers = grid
            .iter()
            .map(|w| {
                let terms = fusion_terms(w, &standard(&clips));
                pooled_eer(clips.iter(), |c| fused(&terms, &c.scores))
            })
            .collect::<Vec<_>>();
        let lowest = eers.iter().copied().fold(f64::INFINITY, f64::min);
        assert!(
            eers.iter().filter(|&&e| e == lowest).count() > 1,
            "{eers:?}"
        );
        let w = best_weights(&grid, &standard(&clips), clips.iter()).unwrap();
        let v = best_weights(&grid, &standard(&swapped), swapped.iter()).unwrap();
        assert!(
            (w[0] - v[1]).abs() < 1e-12 && (w[1] - v[0]).abs() < 1e-12,
            "{w:?} {v:?}"
        );
    }

    #[test]
    fn only_clips_every_candidate_scored_are_fused() {
        let table = |rows: &[(&str, bool, f64)]| -> BTreeMap<String, (bool, f64)> {
            rows.iter()
                .map(|&(p, s, v)| (p.to_owned(), (s, v)))
                .collect()
        };
        let a = table(&[("x", true, 1.0), ("y", false, -1.0), ("z", true, 2.0)]);
        let b = table(&[("z", true, 20.0), ("x", true, 10.0)]);
        assert_eq!(
            shared_clips(&[a, b]),
            [
                Clip {
                    path: "x".into(),
                    spoof: true,
                    scores: vec![1.0, 10.0]
                },
                Clip {
                    path: "z".into(),
                    spoof: true,
                    scores: vec![2.0, 20.0]
                },
            ]
        );
        assert_eq!(mean_sd([3.0, 3.0].into_iter()), (3.0, 1.0));
        assert_eq!(mean_sd([1.0, 3.0].into_iter()), (2.0, 1.0));
    }

    #[test]
    fn seeds_of_a_candidate_count_as_their_mean_logit() {
        let clip = Clip {
            path: "x".into(),
            spoof: true,
            // Candidate 0: one network; candidate 1: three seeds.
            scores: vec![4.0, 1.0, 2.0, 6.0],
        };
        let averaged = seeds_averaged(vec![clip.clone()], &[1, 3]);
        assert_eq!(averaged[0].scores, [4.0, 3.0]);
        let terms = [
            Fusion {
                weight: 0.4,
                mean: 1.0,
                sd: 2.0,
            },
            Fusion {
                weight: 0.6,
                mean: -1.0,
                sd: 0.5,
            },
        ];
        let networks = per_network(&terms, &[1, 3]);
        assert_eq!(networks.len(), 4);
        assert!((networks[1].weight - 0.2).abs() < 1e-12);
        assert_eq!((networks[3].mean, networks[3].sd), (-1.0, 0.5));
        // What the runtime sums over the card's members is what the candidates' terms say.
        let by_candidate = fused(&terms, &averaged[0].scores);
        let by_network = fused(&networks, &clip.scores);
        assert!(
            (by_candidate - by_network).abs() < 1e-12,
            "{by_candidate} {by_network}"
        );
        assert_eq!(
            seeds("runs/a+runs/a-s2"),
            [PathBuf::from("runs/a"), PathBuf::from("runs/a-s2")]
        );
    }
}
