//! `aqiqat scan` and `aqiqat eval`: the voice detector from the command line.

use crate::{Outcome, error_json};
use aqiqat_intake::Limits;
use aqiqat_provenance::credentials::{CredentialState, CredentialsOutcome};
use aqiqat_provenance::{ProvenanceFindings, WatermarkFinding};
use aqiqat_scan::aqiqat_speaker::Decision;
use aqiqat_scan::{ClaimVerdict, ScanError, ScanResult, Scanner, VerdictBasis};
use aqiqat_voice::analysis::Outcome as Analysis;
use aqiqat_voice::detector::{TimelineWindow, Verdict, VoiceDetector};
use aqiqat_voice::eval::{EvalReport, Scored, evaluate};
use aqiqat_voice::manifest;
use std::path::Path;

fn scanner(limits: Limits) -> Result<Scanner, Outcome> {
    Scanner::embedded(limits).map_err(|e| {
        eprintln!("internal error: the built-in detector cannot be loaded: {e}");
        Outcome::Internal
    })
}

/// The voice detector a person names with `--model` (a training run's folder or a fused card);
/// one that cannot be loaded is the caller's mistake (exit 2).
pub fn load_model(path: &Path) -> Result<VoiceDetector, Outcome> {
    VoiceDetector::from_path(path).map_err(|e| {
        eprintln!("error: --model {}: {e}", path.display());
        Outcome::BadInput
    })
}

/// The scanner with the trust anchors and voice model given, and the claimed voiceprint, if any.
fn prepare(
    trust_anchors: Option<&Path>,
    model: Option<&Path>,
    claimed: Option<&str>,
    data_dir: Option<&Path>,
    limits: Limits,
) -> Result<(Scanner, Option<aqiqat_scan::ClaimedVoice>), Outcome> {
    let anchors = trust_anchors
        .map(std::fs::read_to_string)
        .transpose()
        .map_err(|e| {
            eprintln!("error: the trust anchors cannot be read: {e}");
            Outcome::BadInput
        })?;
    let claimed = claimed
        .map(|name| crate::voiceprint::claimed(data_dir, name))
        .transpose()?;
    let mut scanner = scanner(limits)?.with_trust_anchors(anchors);
    if let Some(path) = model {
        scanner = scanner.with_voice(load_model(path)?);
    }
    Ok((scanner, claimed))
}

/// What one scan reads.
pub enum Input<'a> {
    File(&'a Path),
    /// A direct link to a media file, fetched within the input limits.
    Link {
        url: &'a str,
        allow_private: bool,
        timeout: std::time::Duration,
    },
}

/// Resolves a link within `limits`: every media item it carries, with where each came from.
fn resolve_link(
    url: &str,
    allow_private: bool,
    timeout: std::time::Duration,
    limits: &Limits,
) -> Result<Vec<(aqiqat_scan::LinkSource, Vec<u8>)>, Outcome> {
    let ytdlp = aqiqat_link::YtDlp::find();
    let resolved = aqiqat_link::resolve(
        url,
        &aqiqat_scan::link_limits(limits, allow_private, timeout),
        ytdlp.as_ref(),
    )
    .map_err(|e| {
        eprintln!("error: {e}");
        if e.is_bad_input() {
            Outcome::BadInput
        } else {
            Outcome::Internal
        }
    })?;
    for skipped in &resolved.skipped {
        eprintln!("note: not taken: {skipped}");
    }
    Ok(aqiqat_scan::LinkSource::for_items(
        resolved,
        &aqiqat_evidence::utc_now(),
    ))
}

/// Where item `n` of `count` is recorded: `OUT` itself for a single input, `OUT` with `-n`
/// before its extension for each item of a post that carried several.
fn record_path(out: &Path, n: usize, count: usize) -> std::path::PathBuf {
    if count == 1 {
        return out.to_owned();
    }
    let stem = out.file_stem().unwrap_or_default().to_string_lossy();
    let name = match out.extension() {
        Some(ext) => format!("{stem}-{n}.{}", ext.to_string_lossy()),
        None => format!("{stem}-{n}"),
    };
    out.with_file_name(name)
}

#[allow(clippy::too_many_arguments)]
pub fn scan(
    input: Input<'_>,
    json: bool,
    claimed: Option<&str>,
    data_dir: Option<&Path>,
    trust_anchors: Option<&Path>,
    model: Option<&Path>,
    limits: Limits,
    record: Option<crate::evidence::RecordRequest>,
) -> Outcome {
    let (scanner, claimed) = match prepare(trust_anchors, model, claimed, data_dir, limits) {
        Ok(x) => x,
        Err(o) => return o,
    };
    let scanned: Vec<Result<ScanResult, ScanError>> = match input {
        Input::File(path) => vec![scanner.scan_file_claiming(path, claimed.as_ref())],
        Input::Link {
            url,
            allow_private,
            timeout,
        } => match resolve_link(url, allow_private, timeout, &limits) {
            Ok(items) => items
                .into_iter()
                .map(|(source, bytes)| scanner.scan_link(source, bytes, claimed.as_ref()))
                .collect(),
            Err(o) => return o,
        },
    };
    let count = scanned.len();
    let mut outcome = Outcome::Ok;
    for (i, scanned) in scanned.into_iter().enumerate() {
        if count > 1 && !json {
            if i > 0 {
                println!();
            }
            println!("item {} of {count}", i + 1);
        }
        match scanned {
            Ok(result) => {
                // Record first: a result printed but not recorded would look recorded.
                if let Some(req) = &record {
                    let value = serde_json::to_value(&result).expect("scan results serialise");
                    let req = crate::evidence::RecordRequest {
                        out: record_path(&req.out, i + 1, count),
                        ..req.clone()
                    };
                    match crate::evidence::record_scan(value, req) {
                        Ok(msg) => eprintln!("{msg}"),
                        Err(o) => return o,
                    }
                }
                if json {
                    println!(
                        "{}",
                        serde_json::to_string(&result).expect("scan results serialise")
                    );
                } else {
                    print_scan(&result);
                }
            }
            Err(err) => {
                eprintln!("error: {err}");
                if let (true, ScanError::Intake(e)) = (json, &err) {
                    println!("{}", error_json(e));
                }
                // One bad item does not hide the others; the exit status reports the worst.
                let this = if err.is_bad_input() {
                    Outcome::BadInput
                } else {
                    Outcome::Internal
                };
                outcome = outcome.max(this);
            }
        }
    }
    outcome
}

/// Several inputs: every core, one line per input (`crate::bulk`).
pub fn bulk(
    args: crate::bulk::BulkArgs,
    json: bool,
    claimed: Option<&str>,
    trust_anchors: Option<&Path>,
    model: Option<&Path>,
    limits: Limits,
) -> Outcome {
    let (scanner, claimed) = match prepare(
        trust_anchors,
        model,
        claimed,
        args.data_dir.as_deref(),
        limits,
    ) {
        Ok(x) => x,
        Err(o) => return o,
    };
    crate::bulk::run(args, scanner, claimed, json)
}

fn print_scan(r: &ScanResult) {
    println!("{}", r.media.path());
    let words = match (r.verdict, r.verdict_basis, r.probability_synthetic) {
        (Verdict::Synthetic, VerdictBasis::VoiceDetector, Some(p)) => {
            format!("SYNTHETIC: signs of machine-generated or cloned speech (probability {p:.2})")
        }
        (Verdict::Synthetic, VerdictBasis::ImageDetector, _) => format!(
            "SYNTHETIC: {}",
            r.reason.as_deref().unwrap_or("traces of image generation")
        ),
        (Verdict::Human, _, Some(p)) => format!(
            "HUMAN, NOT PROVEN (probability synthetic {p:.2}): {}",
            r.reason
                .as_deref()
                .unwrap_or("no sign of synthetic speech was found")
        ),
        (Verdict::Synthetic, _, _) => format!(
            "SYNTHETIC (by label): {}",
            r.reason.as_deref().unwrap_or("a label declares it")
        ),
        _ => format!(
            "INCONCLUSIVE: {}",
            r.reason.as_deref().unwrap_or("no decision")
        ),
    };
    println!("  verdict      {words}");
    if let Some(src) = &r.source {
        println!(
            "  link         {} (retrieved {})",
            src.url, src.retrieved_at
        );
        for hop in &src.redirects {
            println!("               → {hop}");
        }
        if let Some(media) = &src.media_url {
            let found = src.found_in.as_deref().unwrap_or(&src.resolved_by);
            println!(
                "  media        {media} (item {} of {}, {found})",
                src.item, src.items
            );
            for hop in &src.media_redirects {
                println!("               → {hop}");
            }
        }
        if let Some(page) = &src.page_sha256 {
            println!("  page sha256  {page}");
        }
    }
    print_claim(r);
    if let (Some(voice), Some(duration)) = (&r.voice, r.media.duration_s()) {
        println!("  speech       {:.1} s of {duration:.1} s", voice.speech_s);
        if let Some(c) = &voice.conditions {
            println!(
                "  conditions   speech {:.0} dB above the noise, music {:.0} %, two voices at once {:.0} %",
                c.snr_db,
                c.music_share * 100.0,
                c.overlap_share * 100.0
            );
        }
    }
    if !r.segments.is_empty() {
        println!("  timeline     window          p(synthetic)");
        let shown = readable_timeline(&r.segments);
        for w in shown.iter().copied() {
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
        if shown.len() < r.segments.len() {
            println!(
                "               ({} of {} windows, about one a second; every one in --json)",
                shown.len(),
                r.segments.len()
            );
        }
    }
    print_provenance(&r.provenance);
    if let Some(image) = &r.image {
        print_image(image);
    }
    if let Some(voice) = &r.voice {
        println!(
            "  thresholds   human below {:.2}, synthetic from {:.2}",
            voice.thresholds.human_below, voice.thresholds.synthetic_above
        );
        println!(
            "  model        {} {} (weights sha256 {})",
            voice.model.name,
            voice.model.version,
            &voice.model.weights_sha256[..16]
        );
    }
    println!("  sha256       {}", r.media.sha256());
}

fn print_image(image: &aqiqat_scan::ImageFinding) {
    match (image.score, image.analysed) {
        (Some(score), Some((w, h))) => println!(
            "  image        score {score:.2} (synthetic above {:.2}; {}), read at {w}×{h}",
            image.threshold, image.model.name
        ),
        _ => println!("  image        not judged: {}", image.reason),
    }
    if let Some(map) = &image.heatmap {
        let (cols, rows, cells) = map.coarse(24);
        println!(
            "  heat map     the residual network's cells: █ above its threshold {:.2}, ▒ within 1 of it",
            map.threshold
        );
        for row in cells.chunks(cols).take(rows) {
            let line: String = row
                .iter()
                .map(|&v| {
                    if f64::from(v) > map.threshold {
                        '█'
                    } else if f64::from(v) > map.threshold - 1.0 {
                        '▒'
                    } else {
                        '·'
                    }
                })
                .collect();
            println!("               {line}");
        }
    }
    println!(
        "  image model  {} {} (weights sha256 {}), trained on {} generator families",
        image.model.name,
        image.model.version,
        &image.model.weights_sha256[..16],
        image.generators_seen.len()
    );
}

/// The windows a person reads: a detector that scores short speech by dense windows (a tenth
/// of a second apart) would fill the screen with near-copies, so rows start at least a second
/// apart, and the last window is always shown so that the end of the recording is there.
fn readable_timeline(windows: &[TimelineWindow]) -> Vec<&TimelineWindow> {
    let mut shown: Vec<&TimelineWindow> = Vec::new();
    for (i, w) in windows.iter().enumerate() {
        let spaced = shown
            .last()
            .is_none_or(|last| w.start_s - last.start_s >= 1.0 - 1e-6);
        if spaced || i + 1 == windows.len() {
            shown.push(w);
        }
    }
    shown
}

fn print_claim(r: &ScanResult) {
    let (Some(claim), Some(s)) = (&r.claim, &r.speaker) else {
        return;
    };
    let words = match claim.verdict {
        ClaimVerdict::CloneOfClaimed => "A CLONE OF THE CLAIMED PERSON'S VOICE",
        ClaimVerdict::ConsistentWithClaimed => "CONSISTENT WITH THE CLAIMED PERSON (not proof)",
        ClaimVerdict::NotClaimedPerson => "NOT THE CLAIMED PERSON",
        ClaimVerdict::Inconclusive => "CANNOT SAY WHETHER IT IS THE CLAIMED PERSON",
    };
    println!(
        "  claimed      {} ({}): {words}",
        s.claimed.name, s.claimed.id
    );
    println!("               {}", claim.reason);
    let decision = match s.decision {
        Decision::SameSpeaker => "same speaker",
        Decision::DifferentSpeaker => "different speaker",
        Decision::Inconclusive => "cannot say",
    };
    match s.similarity {
        Some(sim) => println!(
            "  speaker      {decision}: similarity {sim:.3} (different below {:.3}, same from {:.3}), {:.1} s of speech against {:.1} s enrolled",
            s.thresholds.different_speaker,
            s.thresholds.same_speaker,
            s.speech_s,
            s.claimed.enrolled_speech_s
        ),
        None => println!("  speaker      {decision}"),
    }
}

fn print_provenance(p: &ProvenanceFindings) {
    match &p.content_credentials {
        CredentialsOutcome::Absent => println!("  credentials  none (C2PA)"),
        CredentialsOutcome::Unsupported { media_type } => {
            println!("  credentials  not readable in {media_type}")
        }
        CredentialsOutcome::Unreadable { reason } => {
            println!("  credentials  UNREADABLE: {reason}")
        }
        CredentialsOutcome::Found(c) => {
            let state = match c.state {
                CredentialState::Trusted => "TRUSTED",
                CredentialState::Valid => "VALID",
                CredentialState::Invalid => "INVALID",
            };
            println!("  credentials  {state}: {}", c.summary);
            if let Some(dst) = &c.digital_source_type {
                println!(
                    "               declares {dst}{}",
                    c.digital_source_meaning
                        .as_deref()
                        .map(|m| format!(" ({m})"))
                        .unwrap_or_default()
                );
            }
            if let Some(signer) = &c.signer {
                println!(
                    "               signed by {} (issuer {}){}",
                    signer.common_name.as_deref().unwrap_or("?"),
                    signer.issuer.as_deref().unwrap_or("?"),
                    signer
                        .signed_at
                        .as_deref()
                        .map(|t| format!(" at {t}"))
                        .unwrap_or_default()
                );
            }
            for a in &c.actions {
                println!(
                    "               action {}{}",
                    a.action,
                    a.software_agent
                        .as_deref()
                        .map(|s| format!(" by {s}"))
                        .unwrap_or_default()
                );
            }
            for i in &c.ingredients {
                println!(
                    "               ingredient {} ({}){}",
                    i.title.as_deref().unwrap_or("untitled"),
                    i.relationship,
                    i.digital_source_type
                        .as_deref()
                        .map(|d| format!(", its credentials declare {d}"))
                        .unwrap_or_default()
                );
            }
            for f in &c.failures {
                println!("               ✗ {}: {}", f.code, f.meaning);
            }
        }
    }
    for m in &p.metadata.markers {
        let flag = if m.declares_ai { "AI " } else { "" };
        println!("  metadata     {flag}{}: {}", m.location, m.meaning);
    }
    for problem in &p.metadata.problems {
        println!("  metadata     (unreadable) {problem}");
    }
    if let WatermarkFinding::Checked { detection, .. } = &p.watermark {
        println!(
            "  watermark    Stable Diffusion mark {} ({:.0} % of {} bits)",
            if detection.detected {
                "FOUND"
            } else {
                "not found"
            },
            detection.bit_agreement * 100.0,
            detection.bits
        );
    }
}

pub fn eval(
    manifest_path: &Path,
    json: bool,
    plot: Option<&Path>,
    jobs: Option<usize>,
    model: Option<&Path>,
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
    let candidate = match model.map(load_model).transpose() {
        Ok(c) => c,
        Err(o) => return o,
    };
    let detector = candidate.as_ref().unwrap_or(scanner.voice());
    let per_job = entries.len().div_ceil(jobs).max(1);
    let scored: Result<Vec<Scored>, String> = std::thread::scope(|scope| {
        let handles: Vec<_> = entries
            .chunks(per_job)
            .map(|part| {
                let limits = scanner.limits();
                scope.spawn(move || {
                    part.iter()
                        .map(|entry| {
                            let decoded = aqiqat_intake::AudioStream::open(
                                &entry.path,
                                detector.sample_rate(),
                                limits,
                            )
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
    let report = match evaluate(&scored, detector.thresholds(), |s| detector.probability(s)) {
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
    for (label, v) in [
        ("bonafide", r.bonafide_verdicts),
        ("spoof", r.spoof_verdicts),
    ] {
        let n = (v.human + v.inconclusive + v.synthetic).max(1) as f64;
        println!(
            "  {label:12} human {:.1} %, inconclusive {:.1} %, synthetic {:.1} % (by score alone)",
            100.0 * v.human as f64 / n,
            100.0 * v.inconclusive as f64 / n,
            100.0 * v.synthetic as f64 / n
        );
    }
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
