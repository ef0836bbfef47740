//! `aqiqat scan PATH...` over many inputs: every core, one JSON line per input as each
//! finishes, resumable, with a progress bar on a terminal and a summary at the end.
//!
//! A bad file never stops the run; it becomes an error line. Lines are written whole and
//! flushed one by one, so a crash or Ctrl-C leaves a valid JSON Lines file whose last line at
//! worst is torn, and `--resume` cuts a torn tail off before appending.

use crate::Outcome;
use aqiqat_evidence::record::ToolId;
use aqiqat_evidence::{Context, Log, RecordDraft, SignedRecord};
use aqiqat_scan::{ClaimedVoice, ScanError, Scanner};
use aqiqat_voice::detector::Verdict;
use std::collections::HashSet;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

pub struct BulkArgs {
    pub paths: Vec<PathBuf>,
    pub recursive: bool,
    pub jobs: Option<usize>,
    pub jsonl: Option<PathBuf>,
    pub record_dir: Option<PathBuf>,
    pub resume: bool,
    pub context: Context,
    pub data_dir: Option<PathBuf>,
}

/// What one input came to.
enum Done {
    Scanned { verdict: Verdict, audio_s: f64 },
    Failed { bad_input: bool },
    Skipped,
}

/// The inputs `paths` name: files as given; in folders, the files whose first bytes are audio,
/// video or an image (so that a folder's notes and sidecars are not reported as bad input),
/// their subfolders too with `recursive`. Sorted, so that runs are reproducible.
fn expand(paths: &[PathBuf], recursive: bool) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            walk(p, recursive, &mut out);
        } else {
            // Missing files too: they become error lines, not a silent omission.
            out.push(p.clone());
        }
    }
    out
}

fn walk(dir: &Path, recursive: bool, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        out.push(dir.to_owned());
        return;
    };
    let mut entries: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            if recursive {
                walk(&path, recursive, out);
            }
        } else if looks_like_media(&path) {
            out.push(path);
        }
    }
}

fn looks_like_media(path: &Path) -> bool {
    use std::io::Read;
    let mut head = Vec::with_capacity(aqiqat_intake::sniff::SNIFF_LEN);
    let read = std::fs::File::open(path).and_then(|f| {
        f.take(aqiqat_intake::sniff::SNIFF_LEN as u64)
            .read_to_end(&mut head)
    });
    read.is_ok()
        && (aqiqat_scan::media_type(&head).is_some()
            || matches!(
                aqiqat_intake::sniff::sniff(&head),
                aqiqat_intake::sniff::Sniffed::Media(_)
            ))
}

/// The SHA-256 of every input already in `out`, after cutting off a torn last line.
fn already_done(out: &Path) -> Result<HashSet<String>, String> {
    let mut done = HashSet::new();
    let bytes = match std::fs::read(out) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(done),
        Err(e) => return Err(format!("{}: {e}", out.display())),
    };
    let whole = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    if whole < bytes.len() {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(out)
            .map_err(|e| format!("{}: {e}", out.display()))?;
        f.set_len(whole as u64)
            .map_err(|e| format!("{}: {e}", out.display()))?;
        eprintln!(
            "{}: cut off a torn last line ({} bytes) left by an interrupted run",
            out.display(),
            bytes.len() - whole
        );
    }
    for line in bytes[..whole].lines() {
        let Ok(line) = line else { continue };
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        let sha = v["media"]["sha256"].as_str().or(v["sha256"].as_str());
        if let Some(sha) = sha {
            done.insert(sha.to_owned());
        }
    }
    Ok(done)
}

fn file_sha256(path: &Path) -> Option<String> {
    let f = std::fs::File::open(path).ok()?;
    aqiqat_intake::hash::sha256_reader(std::io::BufReader::new(f))
        .ok()
        .map(|(h, _)| h)
}

struct Shared {
    scanner: Scanner,
    claimed: Option<ClaimedVoice>,
    inputs: Vec<PathBuf>,
    next: AtomicUsize,
    skip: HashSet<String>,
    sink: Mutex<Box<dyn Write + Send>>,
    log: Option<Mutex<Log>>,
    record_dir: Option<PathBuf>,
    context: Context,
    progress: Progress,
}

pub fn run(
    args: BulkArgs,
    scanner: Scanner,
    claimed: Option<ClaimedVoice>,
    json_stdout: bool,
) -> Outcome {
    let started = Instant::now();
    let inputs = expand(&args.paths, args.recursive);
    if inputs.is_empty() {
        eprintln!("error: no audio, video or image files found in the paths given");
        return Outcome::BadInput;
    }
    let skip = match (&args.jsonl, args.resume) {
        (Some(out), true) => match already_done(out) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: {e}");
                return Outcome::BadInput;
            }
        },
        _ => HashSet::new(),
    };
    let sink: Box<dyn Write + Send> = match &args.jsonl {
        Some(out) => {
            let opened = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(out);
            match opened {
                Ok(f) => Box::new(f),
                Err(e) => {
                    eprintln!("error: cannot write {}: {e}", out.display());
                    return Outcome::BadInput;
                }
            }
        }
        None => Box::new(std::io::stdout()),
    };
    let log = match &args.record_dir {
        None => None,
        Some(dir) => {
            if let Err(e) = std::fs::create_dir_all(dir) {
                eprintln!("error: cannot make {}: {e}", dir.display());
                return Outcome::BadInput;
            }
            let data_dir = match crate::evidence::data_dir(args.data_dir.as_deref()) {
                Ok(d) => d,
                Err(o) => return o,
            };
            match crate::evidence::open_log(&data_dir) {
                Ok(log) => Some(Mutex::new(log)),
                Err(o) => return o,
            }
        }
    };
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .clamp(1, inputs.len());
    let total = inputs.len();
    // Without --jsonl the lines go to stdout: JSON lines with --json, else a line of words.
    let shared = Arc::new(Shared {
        scanner,
        claimed,
        inputs,
        next: AtomicUsize::new(0),
        skip,
        sink: Mutex::new(sink),
        log,
        record_dir: args.record_dir.clone(),
        context: args.context,
        progress: Progress::new(total),
    });
    let words = args.jsonl.is_none() && !json_stdout;
    let threads: Vec<_> = (0..jobs)
        .map(|n| {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name(format!("scan-{n}"))
                .spawn(move || {
                    let mut done = Vec::new();
                    loop {
                        let i = shared.next.fetch_add(1, Ordering::Relaxed);
                        let Some(path) = shared.inputs.get(i) else {
                            break;
                        };
                        let outcome = scan_one(&shared, path, words);
                        shared.progress.finished(path, &outcome);
                        done.push(outcome);
                    }
                    done
                })
                .expect("scan threads start")
        })
        .collect();
    let mut outcomes = Vec::with_capacity(total);
    for t in threads {
        match t.join() {
            Ok(d) => outcomes.extend(d),
            Err(_) => outcomes.push(Done::Failed { bad_input: false }),
        }
    }
    shared.progress.clear();
    summary(&outcomes, started.elapsed().as_secs_f64(), jobs)
}

fn scan_one(shared: &Shared, path: &Path, words: bool) -> Done {
    let sha = if shared.skip.is_empty() {
        None
    } else {
        file_sha256(path)
    };
    if sha.as_ref().is_some_and(|h| shared.skip.contains(h)) {
        return Done::Skipped;
    }
    let scanned = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        shared
            .scanner
            .scan_file_claiming(path, shared.claimed.as_ref())
    }))
    .unwrap_or_else(|_| {
        Err(ScanError::Intake(aqiqat_intake::IntakeError::new(
            path,
            aqiqat_intake::Problem::Io(std::io::Error::other("the scan crashed")),
        )))
    });
    match scanned {
        Ok(result) => {
            let mut value = serde_json::to_value(&result).expect("scan results serialise");
            if let Some(dir) = &shared.record_dir {
                match record(shared, dir, value.clone()) {
                    Ok(at) => value["record"] = serde_json::json!(at.display().to_string()),
                    Err(e) => {
                        write_line(shared, &error_line(path, "internal", "record", &e, None));
                        return Done::Failed { bad_input: false };
                    }
                }
            }
            if words {
                let line = format!(
                    "{}\t{}\t{}",
                    result.media.path(),
                    result.verdict.as_str(),
                    result
                        .probability_synthetic
                        .map_or("-".into(), |p| format!("{p:.2}"))
                );
                write_line(shared, &line);
            } else {
                write_line(shared, &value.to_string());
            }
            Done::Scanned {
                verdict: result.verdict,
                audio_s: result.media.duration_s().unwrap_or(0.0),
            }
        }
        Err(e) => {
            let bad_input = e.is_bad_input();
            let code = match &e {
                ScanError::Intake(i) => i.problem.code(),
                _ => "internal",
            };
            let kind = if bad_input { "bad_input" } else { "internal" };
            let sha = sha.or_else(|| file_sha256(path));
            let line = if words {
                format!("{}\terror\t{e}", path.display())
            } else {
                error_line(path, kind, code, &e.to_string(), sha.as_deref())
            };
            write_line(shared, &line);
            Done::Failed { bad_input }
        }
    }
}

fn error_line(path: &Path, kind: &str, code: &str, message: &str, sha: Option<&str>) -> String {
    serde_json::json!({
        "path": path.display().to_string(),
        "sha256": sha,
        "error": {"kind": kind, "code": code, "message": message},
    })
    .to_string()
}

fn write_line(shared: &Shared, line: &str) {
    let mut bytes = Vec::with_capacity(line.len() + 1);
    bytes.extend_from_slice(line.as_bytes());
    bytes.push(b'\n');
    let mut sink = shared.sink.lock().unwrap_or_else(|p| p.into_inner());
    // One write per line: a reader (or a crash) sees whole lines.
    if sink.write_all(&bytes).and_then(|_| sink.flush()).is_err() {
        shared.progress.warn("cannot write the output; stopping");
        std::process::exit(Outcome::Internal as i32);
    }
}

/// Signs and logs one result; writes its envelope as `DIR/SHA256.json` (or `SHA256-N.json`
/// for a second input with the same bytes).
fn record(shared: &Shared, dir: &Path, result: serde_json::Value) -> Result<PathBuf, String> {
    let sha = result["media"]["sha256"]
        .as_str()
        .unwrap_or("unknown")
        .to_owned();
    let log = shared.log.as_ref().expect("a record dir comes with a log");
    let mut log = log.lock().unwrap_or_else(|p| p.into_inner());
    let tool = ToolId {
        name: "aqiqat".into(),
        version: env!("CARGO_PKG_VERSION").into(),
    };
    let draft =
        RecordDraft::from_scan(result, shared.context.clone(), tool).map_err(|e| e.to_string())?;
    let record = SignedRecord::sign(draft, aqiqat_evidence::utc_now(), log.signer());
    let entry = log
        .append(&record, shared.context.case_id.as_deref())
        .map_err(|e| e.to_string())?;
    let envelope = log.envelope(entry.index).map_err(|e| e.to_string())?;
    drop(log);
    let mut at = dir.join(format!("{sha}.json"));
    if at.exists() {
        at = dir.join(format!("{sha}-{}.json", entry.index));
    }
    crate::evidence::write_atomic(&at, crate::evidence::pretty(&envelope).as_bytes())
        .map_err(|_| format!("cannot write {}", at.display()))?;
    Ok(at)
}

fn summary(outcomes: &[Done], seconds: f64, jobs: usize) -> Outcome {
    let count = |v: Verdict| {
        outcomes
            .iter()
            .filter(|o| matches!(o, Done::Scanned { verdict, .. } if *verdict == v))
            .count()
    };
    let bad = outcomes
        .iter()
        .filter(|o| matches!(o, Done::Failed { bad_input: true }))
        .count();
    let internal = outcomes
        .iter()
        .filter(|o| matches!(o, Done::Failed { bad_input: false }))
        .count();
    let skipped = outcomes
        .iter()
        .filter(|o| matches!(o, Done::Skipped))
        .count();
    let audio: f64 = outcomes
        .iter()
        .map(|o| match o {
            Done::Scanned { audio_s, .. } => *audio_s,
            _ => 0.0,
        })
        .sum();
    eprintln!(
        "done: {} inputs in {seconds:.1} s with {jobs} job(s): {} synthetic, {} human, {} \
         inconclusive, {bad} bad input(s), {internal} internal error(s), {skipped} already done; \
         {:.2} h of audio ({:.0}× real time)",
        outcomes.len(),
        count(Verdict::Synthetic),
        count(Verdict::Human),
        count(Verdict::Inconclusive),
        audio / 3600.0,
        audio / seconds.max(1e-9)
    );
    if internal > 0 {
        Outcome::Internal
    } else if bad > 0 {
        Outcome::BadInput
    } else {
        Outcome::Ok
    }
}

/// A bar on a terminal; a plain line per input otherwise.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    total: usize,
    done: AtomicUsize,
    audio_ms: AtomicUsize,
    started: Instant,
}

impl Progress {
    fn new(total: usize) -> Self {
        use std::io::IsTerminal;
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(total as u64);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{bar:30} {pos}/{len} files · {msg} · ETA {eta}",
                )
                .expect("a valid template"),
            );
            bar
        });
        Self {
            bar,
            total,
            done: AtomicUsize::new(0),
            audio_ms: AtomicUsize::new(0),
            started: Instant::now(),
        }
    }

    fn finished(&self, path: &Path, outcome: &Done) {
        let n = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        if let Done::Scanned { audio_s, .. } = outcome {
            self.audio_ms
                .fetch_add((audio_s * 1000.0) as usize, Ordering::Relaxed);
        }
        let audio_h = self.audio_ms.load(Ordering::Relaxed) as f64 / 3.6e6;
        let rate = audio_h * 3600.0 / self.started.elapsed().as_secs_f64().max(1e-9);
        let what = match outcome {
            Done::Scanned { verdict, .. } => verdict.as_str(),
            Done::Failed { .. } => "error",
            Done::Skipped => "already done",
        };
        match &self.bar {
            Some(bar) => {
                bar.set_message(format!("{audio_h:.2} h of audio, {rate:.0}× real time"));
                bar.inc(1);
            }
            None => eprintln!(
                "[{n}/{}] {}: {what} ({audio_h:.2} h of audio so far, {rate:.0}× real time)",
                self.total,
                path.display()
            ),
        }
    }

    fn warn(&self, message: &str) {
        match &self.bar {
            Some(bar) => bar.println(message),
            None => eprintln!("{message}"),
        }
    }

    fn clear(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
