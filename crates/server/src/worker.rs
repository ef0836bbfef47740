//! The worker pool: threads that take job ids off the bounded queue, scan the spooled bytes,
//! sign and log the result, and store it on the job. Scanning is CPU-bound and synchronous,
//! so it runs on plain threads, never on the async runtime's.

use aqiqat_evidence::group::GroupCommit;
use aqiqat_evidence::record::ToolId;
use aqiqat_evidence::{RecordDraft, SignedRecord, Signer25519};
use aqiqat_scan::Scanner;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

use crate::jobs::JobStore;

/// Counters the `/metrics` endpoint shows.
#[derive(Default)]
pub struct Counters {
    pub scans_done: AtomicU64,
    pub scans_failed: AtomicU64,
    pub scan_seconds_total_ms: AtomicU64,
    pub audio_seconds_total_ms: AtomicU64,
    pub busy_workers: AtomicU64,
}

pub struct Workers {
    pub scanner: Arc<Scanner>,
    pub jobs: Arc<JobStore>,
    pub group: GroupCommit,
    pub signer: Arc<Signer25519>,
    pub counters: Arc<Counters>,
    pub voiceprints: Arc<Mutex<aqiqat_voiceprints::VoiceprintStore>>,
}

pub fn spawn(workers: usize, shared: Workers, queue: mpsc::Receiver<String>) {
    let queue = Arc::new(Mutex::new(queue));
    let shared = Arc::new(shared);
    for n in 0..workers.max(1) {
        let queue = Arc::clone(&queue);
        let shared = Arc::clone(&shared);
        std::thread::Builder::new()
            .name(format!("scan-worker-{n}"))
            .spawn(move || {
                loop {
                    let next = queue
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .blocking_recv();
                    let Some(id) = next else { break };
                    shared.counters.busy_workers.fetch_add(1, Ordering::Relaxed);
                    process(&shared, &id);
                    shared.counters.busy_workers.fetch_sub(1, Ordering::Relaxed);
                }
            })
            .expect("worker threads start");
    }
}

fn process(w: &Workers, id: &str) {
    let bytes = match std::fs::read(w.jobs.spool_path(id)) {
        Ok(b) => b,
        Err(e) => {
            if matches!(w.jobs.get(id), Ok(Some(_))) {
                let _ = w
                    .jobs
                    .fail(id, "internal", &format!("the upload was lost: {e}"));
                w.counters.scans_failed.fetch_add(1, Ordering::Relaxed);
            }
            return;
        }
    };
    run_job(w, id, bytes, true);
}

/// How a run of a job ended.
#[derive(Debug, PartialEq)]
pub enum Ended {
    /// The job is `done` (now, or already before: a job delivered again is left alone).
    Done,
    /// The job is `failed` for good.
    Failed,
    /// Our fault, and attempts remain: the job stays unfinished for another delivery.
    Retry(String),
    /// No such job.
    Unknown,
}

/// Scans job `id`'s `bytes` (with its claimed voiceprint), signs and logs the result (once per
/// job, whatever the deliveries), and stores it on the job. An internal failure marks the job
/// `failed` only on its `last_attempt`; a bad input always does. Local and remote workers both
/// run jobs through here.
pub fn run_job(w: &Workers, id: &str, bytes: Vec<u8>, last_attempt: bool) -> Ended {
    let job = match w.jobs.get(id) {
        Ok(Some(job)) => job,
        Ok(None) => return Ended::Unknown,
        Err(e) => return Ended::Retry(e),
    };
    match job.state {
        crate::JobState::Done => return Ended::Done,
        crate::JobState::Failed => return Ended::Failed,
        _ => {}
    }
    let fail = |kind: &str, message: String| {
        if kind == "internal" && !last_attempt {
            return Ended::Retry(message);
        }
        let _ = w.jobs.fail(id, kind, &message);
        w.counters.scans_failed.fetch_add(1, Ordering::Relaxed);
        Ended::Failed
    };
    // The claimed voiceprint, checked against the caller's key when the job was made.
    let claimed = match w.jobs.claimed(id) {
        Ok(None) => None,
        Ok(Some(voiceprint)) => {
            let found = w
                .voiceprints
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&aqiqat_voiceprints::Owner::Local, &voiceprint);
            match found {
                Ok(v) => Some(crate::claimed_voice(v)),
                Err(aqiqat_voiceprints::VoiceprintError::NotFound(_)) => {
                    return fail(
                        "bad_input",
                        format!(
                            "the claimed voiceprint {voiceprint} was deleted before the scan ran"
                        ),
                    );
                }
                Err(other) => return fail("internal", other.to_string()),
            }
        }
        Err(e) => return Ended::Retry(e),
    };
    // Where the bytes came from, when the job came from a link.
    let source = match w.jobs.source(id) {
        Ok(None) => None,
        Ok(Some(text)) => match serde_json::from_str::<aqiqat_scan::LinkSource>(&text) {
            Ok(source) => Some(source),
            Err(e) => return fail("internal", format!("the job's link record: {e}")),
        },
        Err(e) => return Ended::Retry(e),
    };
    let _ = w.jobs.mark_running(id);
    let started = std::time::Instant::now();
    let label = job.name.clone().unwrap_or_else(|| "upload".into());
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match source {
        Some(source) => w.scanner.scan_link(source, bytes, claimed.as_ref()),
        None => w
            .scanner
            .scan_bytes_claiming(&label, bytes, claimed.as_ref()),
    }));
    let result = match outcome {
        Ok(Ok(result)) => result,
        Ok(Err(e)) => {
            let kind = if e.is_bad_input() {
                "bad_input"
            } else {
                "internal"
            };
            return fail(kind, e.to_string());
        }
        Err(_) => return fail("internal", "the scan crashed".into()),
    };
    let audio_ms = (result.media.duration_s().unwrap_or(0.0) * 1000.0) as u64;
    let value = serde_json::to_value(&result).expect("scan results serialise");
    let tool = ToolId {
        name: "aqiqat".into(),
        version: env!("CARGO_PKG_VERSION").into(),
    };
    let logged = RecordDraft::from_scan(value.clone(), job.context.clone(), tool)
        .map_err(|e| e.to_string())
        .and_then(|draft| {
            let record = SignedRecord::sign(draft, aqiqat_evidence::utc_now(), &w.signer);
            // Keyed by the job: a job run again after a crash between the append and the
            // job's update (or delivered twice) gets its first record back, not a second one.
            w.group
                .append_once(
                    record,
                    job.context.case_id.clone(),
                    Some(format!("job:{id}")),
                )
                .map_err(|e| e.to_string())
        });
    match logged {
        Ok(entry) => {
            if let Err(e) = w.jobs.finish(id, &value, entry.index, &entry.leaf_hash) {
                return Ended::Retry(e);
            }
            w.counters.scans_done.fetch_add(1, Ordering::Relaxed);
            w.counters
                .scan_seconds_total_ms
                .fetch_add(started.elapsed().as_millis() as u64, Ordering::Relaxed);
            w.counters
                .audio_seconds_total_ms
                .fetch_add(audio_ms, Ordering::Relaxed);
            Ended::Done
        }
        Err(e) => fail("internal", format!("evidence: {e}")),
    }
}
