//! `aqiqat worker`: scans jobs from the JetStream work queue (`crate::queue`), on any machine
//! that reaches NATS and the PostgreSQL database. Each of its `workers` tasks pulls one job at a
//! time, runs it through the same `worker::run_job` the single-machine server uses, and only
//! then acknowledges. While a scan runs, the delivery is reported in progress every third of
//! `ack_wait`, so a long recording is not handed to a second worker; a worker that dies stops
//! reporting, and the job is delivered again.

use crate::queue::{JobQueue, QueueSettings};
use crate::worker::{Counters, Ended, Workers, run_job};
use async_nats::jetstream::AckKind;
use futures_util::StreamExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What `aqiqat worker` is started with.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Keys (signing, voiceprints) and the local scratch folder.
    pub data_dir: PathBuf,
    /// The shared PostgreSQL database: jobs, uploads, the evidence log, voiceprints.
    pub database: aqiqat_store::Location,
    pub queue: QueueSettings,
    /// Jobs scanned at once (default: the number of cores).
    pub workers: usize,
    pub limits: aqiqat_intake::Limits,
    /// The voice detector to run instead of the built-in one (`--model`); give the servers the
    /// same.
    pub voice_model: Option<PathBuf>,
}

fn open(config: &WorkerConfig) -> Result<Workers, String> {
    if !matches!(config.database, aqiqat_store::Location::Postgres(_)) {
        return Err(
            "a worker needs --database-url postgres://…, the database the servers use".into(),
        );
    }
    let storage = crate::Storage::new(&config.data_dir, Some(&config.database));
    let key_dir = aqiqat_evidence::keys::key_dir(&config.data_dir);
    let signer =
        aqiqat_evidence::Signer25519::load_or_create(&key_dir).map_err(|e| e.to_string())?;
    let log = aqiqat_evidence::Log::open_at(
        &storage.log,
        signer.clone(),
        aqiqat_evidence::log::Durability::Full,
    )
    .map_err(|e| e.to_string())?;
    let jobs = crate::JobStore::open(&storage.server, &config.data_dir.join("spool"))?;
    let scanner = crate::scanner(config.limits, config.voice_model.as_deref())?;
    let voiceprints =
        aqiqat_voiceprints::VoiceprintStore::open(&config.data_dir, Some(&config.database))
            .map_err(|e| e.to_string())?;
    Ok(Workers {
        scanner: Arc::new(scanner),
        jobs: Arc::new(jobs),
        group: aqiqat_evidence::group::GroupCommit::start(log),
        signer: Arc::new(signer),
        counters: Arc::new(Counters::default()),
        voiceprints: Arc::new(Mutex::new(voiceprints)),
    })
}

/// Runs until SIGINT or SIGTERM. Jobs in progress then are not acknowledged, so NATS delivers
/// them again to another worker.
pub async fn run_worker(config: WorkerConfig) -> Result<(), String> {
    let queue = JobQueue::connect(config.queue.clone()).await?;
    let consumer = queue.consumer().await?;
    let shared = {
        let config = config.clone();
        tokio::task::spawn_blocking(move || open(&config))
            .await
            .map_err(|e| e.to_string())??
    };
    let shared = Arc::new(shared);
    let n = config.workers.max(1);
    eprintln!(
        "aqiqat worker ready: {n} job(s) at a time from {}",
        config.queue.url
    );
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..n {
        let (consumer, shared, settings) =
            (consumer.clone(), Arc::clone(&shared), config.queue.clone());
        tasks.spawn(async move {
            loop {
                let batch = consumer
                    .fetch()
                    .max_messages(1)
                    .expires(Duration::from_secs(5))
                    .messages()
                    .await;
                let mut batch = match batch {
                    Ok(b) => b,
                    Err(e) => {
                        tracing::warn!("fetching a job: {e}");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                };
                while let Some(message) = batch.next().await {
                    match message {
                        Ok(m) => handle(&shared, m, &settings).await,
                        Err(e) => tracing::warn!("a job message: {e}"),
                    }
                }
            }
        });
    }
    crate::api::shutdown_signal().await;
    tasks.abort_all();
    Ok(())
}

async fn handle(
    shared: &Arc<Workers>,
    message: async_nats::jetstream::Message,
    settings: &QueueSettings,
) {
    let id = String::from_utf8_lossy(&message.payload).into_owned();
    let delivered = message.info().map_or(1, |i| i.delivered);
    let last = delivered >= settings.max_deliver;
    let work = {
        let (w, id) = (Arc::clone(shared), id.clone());
        tokio::task::spawn_blocking(move || {
            w.counters
                .busy_workers
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let ended = match w.jobs.upload(&id) {
                Ok(Some(bytes)) => run_job(&w, &id, bytes, last),
                // Finished already (its bytes are dropped then), or never made.
                Ok(None) => match w.jobs.get(&id) {
                    Ok(Some(job)) => match job.state {
                        crate::JobState::Done => Ended::Done,
                        crate::JobState::Failed => Ended::Failed,
                        _ => {
                            let _ = w.jobs.fail(&id, "internal", "the upload was lost");
                            Ended::Failed
                        }
                    },
                    Ok(None) => Ended::Unknown,
                    Err(e) => Ended::Retry(e),
                },
                Err(e) => Ended::Retry(e),
            };
            w.counters
                .busy_workers
                .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            ended
        })
    };
    tokio::pin!(work);
    let tick = (settings.ack_wait / 3).max(Duration::from_millis(100));
    let ended = loop {
        tokio::select! {
            ended = &mut work => break ended,
            _ = tokio::time::sleep(tick) => {
                let _ = message.ack_with(AckKind::Progress).await;
            }
        }
    };
    let ack = match ended {
        Ok(Ended::Retry(reason)) => {
            tracing::warn!("job {id}, delivery {delivered}: {reason}; it will be delivered again");
            message
                .ack_with(AckKind::Nak(Some(Duration::from_secs(1))))
                .await
        }
        Ok(_) => message.ack().await,
        // The blocking task panicked: leave the message to be delivered again.
        Err(e) => {
            tracing::error!("job {id}: {e}");
            Ok(())
        }
    };
    if let Err(e) = ack {
        tracing::warn!("job {id}: acknowledging: {e}");
    }
}
