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
    let job = match w.jobs.get(id) {
        Ok(Some(job)) => job,
        Ok(None) => return,
        Err(e) => {
            tracing::error!("job {id}: {e}");
            return;
        }
    };
    let bytes = match std::fs::read(w.jobs.spool_path(id)) {
        Ok(b) => b,
        Err(e) => {
            let _ = w
                .jobs
                .fail(id, "internal", &format!("the upload was lost: {e}"));
            w.counters.scans_failed.fetch_add(1, Ordering::Relaxed);
            return;
        }
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
                Err(e) => {
                    let (kind, message) = match e {
                        aqiqat_voiceprints::VoiceprintError::NotFound(_) => (
                            "bad_input",
                            format!(
                                "the claimed voiceprint {voiceprint} was deleted before the scan ran"
                            ),
                        ),
                        other => ("internal", other.to_string()),
                    };
                    let _ = w.jobs.fail(id, kind, &message);
                    w.counters.scans_failed.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
        }
        Err(e) => {
            tracing::error!("job {id}: {e}");
            return;
        }
    };
    let _ = w.jobs.mark_running(id);
    let started = std::time::Instant::now();
    let label = job.name.clone().unwrap_or_else(|| "upload".into());
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        w.scanner
            .scan_bytes_claiming(&label, bytes, claimed.as_ref())
    }));
    let result = match outcome {
        Ok(Ok(result)) => result,
        Ok(Err(e)) => {
            let kind = if e.is_bad_input() {
                "bad_input"
            } else {
                "internal"
            };
            let _ = w.jobs.fail(id, kind, &e.to_string());
            w.counters.scans_failed.fetch_add(1, Ordering::Relaxed);
            return;
        }
        Err(_) => {
            let _ = w.jobs.fail(id, "internal", "the scan crashed");
            w.counters.scans_failed.fetch_add(1, Ordering::Relaxed);
            return;
        }
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
            // job's update gets its first record back, not a second one.
            w.group
                .append_once(record, job.context.case_id.clone(), Some(format!("job:{id}")))
                .map_err(|e| e.to_string())
        });
    match logged {
        Ok(entry) => {
            if let Err(e) = w.jobs.finish(id, &value, entry.index, &entry.leaf_hash) {
                tracing::error!("job {id}: {e}");
            }
            w.counters.scans_done.fetch_add(1, Ordering::Relaxed);
            w.counters
                .scan_seconds_total_ms
                .fetch_add(started.elapsed().as_millis() as u64, Ordering::Relaxed);
            w.counters
                .audio_seconds_total_ms
                .fetch_add(audio_ms, Ordering::Relaxed);
        }
        Err(e) => {
            let _ = w.jobs.fail(id, "internal", &format!("evidence: {e}"));
            w.counters.scans_failed.fetch_add(1, Ordering::Relaxed);
        }
    }
}
