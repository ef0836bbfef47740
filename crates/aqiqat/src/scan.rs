//! `aqiqat scan` and `aqiqat eval`: the voice detector from the command line.

use crate::{Outcome, error_json};
use aqiqat_intake::Limits;
use aqiqat_scan::{ScanError, ScanResult, Scanner};
use aqiqat_voice::analysis::Outcome as Analysis;
use aqiqat_voice::detector::Verdict;
use aqiqat_voice::eval::{EvalReport, Scored, evaluate};
use aqiqat_voice::features::SAMPLE_RATE;
use aqiqat_voice::manifest;
use std::path::Path;

fn scanner(limits: Limits) -> Result<Scanner, Outcome> {
    Scanner::embedded(limits).map_err(|e| {
        eprintln!("internal error: the built-in detector cannot be loaded: {e}");
        Outcome::Internal
    })
}

pub fn scan(
    path: &Path,
    json: bool,
    limits: Limits,
    record: Option<crate::evidence::RecordRequest>,
) -> Outcome {
    let scanner = match scanner(limits) {
        Ok(s) => s,
        Err(o) => return o,
    };
    match scanner.scan_file(path) {
        Ok(result) => {
            // Record first: a result printed but not recorded would look recorded.
            let recorded = match record {
                None => None,
                Some(req) => {
                    let value = serde_json::to_value(&result).expect("scan results serialise");
                    match crate::evidence::record_scan(value, req) {
                        Ok(msg) => Some(msg),
                        Err(o) => return o,
                    }
                }
            };
            if let Some(msg) = recorded {
                eprintln!("{msg}");
            }
            if json {
                println!(
                    "{}",
                    serde_json::to_string(&result).expect("scan results serialise")
                );
            } else {
                print_scan(&result);
            }
            Outcome::Ok
        }
        Err(err) => {
            eprintln!("error: {err}");
            if let (true, ScanError::Intake(e)) = (json, &err) {
                println!("{}", error_json(e));
            }
            if err.is_bad_input() {
                Outcome::BadInput
            } else {
                Outcome::Internal
            }
        }
    }
}

fn print_scan(r: &ScanResult) {
    println!("{}", r.media.path);
    let words = match (r.verdict, r.probability_synthetic) {
        (Verdict::Synthetic, Some(p)) => {
            format!("SYNTHETIC: the voice is most likely machine-generated (probability {p:.2})")
        }
        (Verdict::Human, Some(p)) => {
            format!("HUMAN: no sign of synthetic speech was found (probability synthetic {p:.2})")
        }
        _ => format!(
            "INCONCLUSIVE: {}",
            r.reason.as_deref().unwrap_or("no decision")
        ),
    };
    println!("  verdict      {words}");
    println!(
        "  speech       {:.1} s of {:.1} s",
        r.voice.speech_s, r.media.duration_s
    );
    if !r.segments.is_empty() {
        println!("  timeline     window          p(synthetic)");
        for w in &r.segments {
            let bar = "█".repeat((w.probability_synthetic * 20.0).round() as usize);
            let note = if w.counted {
                ""
            } else {
                "  (mostly pause, not counted)"
            };
            println!(
                "               {:6.1}–{:<6.1} s {:.2} {bar}{note}",
                w.start_s, w.end_s, w.probability_synthetic
            );
        }
    }
    println!(
        "  thresholds   human below {:.2}, synthetic from {:.2}",
        r.voice.thresholds.human_below, r.voice.thresholds.synthetic_above
    );
    println!(
        "  model        {} {} (weights sha256 {})",
        r.voice.model.name,
        r.voice.model.version,
        &r.voice.model.weights_sha256[..16]
    );
    println!("  sha256       {}", r.media.sha256);
}

pub fn eval(
    manifest_path: &Path,
    json: bool,
    plot: Option<&Path>,
    jobs: Option<usize>,
    limits: Limits,
) -> Outcome {
    let entries = match manifest::read(manifest_path) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: {e}");
            return Outcome::BadInput;
        }
    };
    let scanner = match scanner(limits) {
        Ok(s) => s,
        Err(o) => return o,
    };
    let jobs = jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let detector = scanner.voice();
    let per_job = entries.len().div_ceil(jobs).max(1);
    let scored: Result<Vec<Scored>, String> = std::thread::scope(|scope| {
        let handles: Vec<_> = entries
            .chunks(per_job)
            .map(|part| {
                let limits = scanner.limits();
                scope.spawn(move || {
                    part.iter()
                        .map(|entry| {
                            let decoded =
                                aqiqat_intake::AudioStream::open(&entry.path, SAMPLE_RATE, limits)
                                    .and_then(|s| s.read_to_end());
                            let outcome = match decoded {
                                Err(e) => Err(e.to_string()),
                                Ok(samples) => match detector.analyse(&samples) {
                                    Err(e) => return Err(format!("{}: {e}", entry.path.display())),
                                    Ok(a) => match a.outcome {
                                        Analysis::Scored(s) => Ok((s, detector.probability(s))),
                                        Analysis::Unscored(why) => Err(why),
                                    },
                                },
                            };
                            Ok(Scored {
                                entry: entry.clone(),
                                outcome,
                            })
                        })
                        .collect::<Result<Vec<_>, String>>()
                })
            })
            .collect();
        let mut all = Vec::new();
        for h in handles {
            all.extend(h.join().expect("scoring thread")?);
        }
        Ok(all)
    });
    let scored = match scored {
        Ok(s) => s,
        Err(e) => {
            eprintln!("internal error: {e}");
            return Outcome::Internal;
        }
    };
    let card = detector.card();
    let report = match evaluate(&scored, card.thresholds, |s| detector.probability(s)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {}: {e}", manifest_path.display());
            return Outcome::BadInput;
        }
    };
    if let Some(target) = plot {
        let title = format!(
            "{} — EER {:.2} %, AUC {:.4}",
            manifest_path
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default(),
            report.eer * 100.0,
            report.auc
        );
        let label = format!("{} bonafide, {} spoof", report.n_bonafide, report.n_spoof);
        let svg = aqiqat_charts::roc_svg(
            &title,
            &[aqiqat_charts::Curve {
                label: &label,
                points: &report.roc,
            }],
        );
        let written = aqiqat_charts::png(&svg)
            .map_err(|e| e.to_string())
            .and_then(|png| std::fs::write(target, png).map_err(|e| e.to_string()));
        if let Err(e) = written {
            eprintln!("error: cannot write {}: {e}", target.display());
            return Outcome::Internal;
        }
    }
    if json {
        let mut value = serde_json::to_value(&report).expect("reports serialise");
        value["manifest"] = manifest_path.display().to_string().into();
        value["model"] = serde_json::to_value(detector.id()).expect("ids serialise");
        println!("{value}");
    } else {
        print_report(manifest_path, &report);
    }
    Outcome::Ok
}

fn print_report(path: &Path, r: &EvalReport) {
    println!("{}", path.display());
    println!(
        "  clips        {} bonafide, {} spoof scored; {} unscored",
        r.n_bonafide,
        r.n_spoof,
        r.unscored.len()
    );
    println!("  EER          {:.2} %", r.eer * 100.0);
    println!("  AUC          {:.4}", r.auc);
    println!(
        "  accuracy     {:.2} % at the shipped thresholds ({} inconclusive; {:.2} % of decided)",
        r.accuracy * 100.0,
        r.inconclusive,
        r.accuracy_decided * 100.0
    );
    for (column, rows) in &r.breakdown {
        println!("  by {column}:");
        for (value, b) in rows {
            println!(
                "    {value:32} {:4} bonafide {:4} spoof   EER {:>6.2} %",
                b.n_bonafide,
                b.n_spoof,
                b.eer.unwrap_or(f64::NAN) * 100.0
            );
        }
    }
    for (path, why) in r.unscored.iter().take(10) {
        println!("  unscored     {path}: {why}");
    }
}
