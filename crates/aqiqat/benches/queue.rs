//! Jobs through the API end to end, on this machine's loopback: closed-loop clients
//! (`AQIQAT_BENCH_CLIENTS`, default 4) each POST a 4 s voice message and poll its job until it is
//! done, for `AQIQAT_BENCH_SECONDS` (default 15) per setup, in one run:
//!
//! 1. one process, `aqiqat serve --workers 2` on its SQLite default (the baseline);
//! 2. `serve --queue nats://…` on PostgreSQL with one `aqiqat worker --workers 1` process;
//! 3. the same with two worker processes.
//!
//! Reported: jobs per second and the time from POST to `done` seen (p50, p99; polls every
//! 10 ms). Before that, the two shared parts on their own, as a cluster's limits
//! (docs/deployment.md): evidence-log appends on PostgreSQL (one transaction each, and eight
//! threads through group commit) and the job stream (publish with its acknowledgement, then
//! fetch and acknowledge). Needs `nats-server` and the PostgreSQL test server
//! (`bash .ci/postgres`).
//!
//! `cargo bench -p aqiqat --bench queue`

#[path = "../tests/e2e/common.rs"]
#[allow(dead_code)] // the tests use more of it than this benchmark
mod common;
#[path = "support/inputs.rs"]
#[allow(dead_code)] // not every benchmark uses every input
mod inputs;
#[path = "support/load.rs"]
mod load;

use common::{Backend, Nats, Server, Worker, smoke};
use std::time::Instant;

fn report(name: &str, (rate, mut ms): (f64, Vec<f64>), baseline: f64) {
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
    println!(
        "{name:44} {rate:6.1} jobs/s ({:.2}× the baseline)   POST→done p50 {:6.1} ms  p99 {:6.1} ms  ({} jobs)",
        rate / baseline,
        at(0.5),
        at(0.99),
        ms.len()
    );
}

/// A signed record the size of a 10 s voice message's (about 1.6 kB canonical).
fn record(n: u64, signer: &aqiqat_evidence::Signer25519) -> aqiqat_evidence::SignedRecord {
    use aqiqat_evidence::record::{AnalyserId, Context, RecordDraft, Subject, ToolId};
    let draft = RecordDraft {
        id: format!("bench-{n}"),
        subject: Subject {
            sha256: format!("{:064x}", n.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
            size_bytes: 160_000,
            name: Some(format!("voice-{n}.ogg")),
            media: serde_json::json!({"container": "ogg", "codec": "opus", "duration_s": 10.0}),
        },
        analysers: vec![AnalyserId {
            name: "voice-tdnn-mfm".into(),
            version: "0.1.0".into(),
            weights_sha256: Some("9c".repeat(32)),
        }],
        verdict: "human".into(),
        result: serde_json::json!({"schema": "aqiqat.scan/6", "padding": "x".repeat(1100)}),
        context: Context::default(),
        tool: ToolId {
            name: "aqiqat".into(),
            version: "0.1.0".into(),
        },
    };
    aqiqat_evidence::SignedRecord::sign(draft, "2026-11-30T12:00:00.000Z".into(), signer)
}

/// Evidence-log appends on the PostgreSQL test server: the serialised part of every job.
fn log_appends() {
    use aqiqat_evidence::log::Durability;
    let n: u64 = inputs::env_or("AQIQAT_BENCH_APPENDS", 2000);
    let signer = aqiqat_evidence::Signer25519::from_seed([5; 32]);
    let records: Vec<_> = (0..n).map(|i| record(i, &signer)).collect();
    let schema = aqiqat_store::testing::TestSchema::create();
    let mut log =
        aqiqat_evidence::Log::open_at(&schema.location(), signer.clone(), Durability::Full)
            .unwrap();
    let start = Instant::now();
    for r in &records[..n as usize / 2] {
        log.append(r, None).unwrap();
    }
    let single = (n / 2) as f64 / start.elapsed().as_secs_f64();
    let group = aqiqat_evidence::group::GroupCommit::start(log);
    let start = Instant::now();
    std::thread::scope(|s| {
        for chunk in records[n as usize / 2..].chunks(n as usize / 16) {
            let group = group.clone();
            s.spawn(move || {
                for r in chunk {
                    group.append(r.clone(), None).unwrap();
                }
            });
        }
    });
    let grouped = (n / 2) as f64 / start.elapsed().as_secs_f64();
    println!(
        "evidence log on PostgreSQL: {single:.0} appends/s one transaction each, {grouped:.0}/s from 8 threads through group commit"
    );
}

/// The job stream alone: publish (each acknowledged by JetStream, file storage), then fetch and
/// acknowledge.
fn stream_alone(scratch: &std::path::Path) {
    use futures_util::StreamExt;
    let n: usize = inputs::env_or("AQIQAT_BENCH_MESSAGES", 5000);
    let nats = Nats::start(&scratch.join("stream-only"));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut settings = aqiqat_server::queue::QueueSettings::new(&nats.url());
        settings.capacity = n + 10;
        let queue = aqiqat_server::queue::JobQueue::connect(settings).await.unwrap();
        let consumer = queue.consumer().await.unwrap();
        let start = Instant::now();
        for i in 0..n {
            queue.publish(&format!("{i:032x}")).await.ok().unwrap();
        }
        let published = n as f64 / start.elapsed().as_secs_f64();
        let start = Instant::now();
        let mut done = 0;
        while done < n {
            let mut batch = consumer.fetch().max_messages(100).messages().await.unwrap();
            while let Some(m) = batch.next().await {
                m.unwrap().ack().await.unwrap();
                done += 1;
            }
        }
        let consumed = n as f64 / start.elapsed().as_secs_f64();
        println!(
            "job stream alone: {published:.0} publishes/s (each awaited), {consumed:.0} fetch+acks/s"
        );
    });
}

fn main() {
    let clients: usize = inputs::env_or("AQIQAT_BENCH_CLIENTS", 4);
    let seconds: f64 = inputs::env_or("AQIQAT_BENCH_SECONDS", 15.0);
    let body = std::fs::read(smoke(0)).unwrap();
    let scratch = tempfile::tempdir().unwrap();
    log_appends();
    stream_alone(scratch.path());
    println!(
        "jobs through the API: {clients} closed-loop clients, a {} byte FLAC voice message, {seconds} s per setup",
        body.len()
    );

    let local = Server::start(
        &scratch.path().join("local"),
        &["--workers", "2", "--queue", "256"],
    );
    let baseline = load::closed_loop_uploads(&local, "audio/flac", &body, clients, seconds);
    let base_rate = baseline.0;
    report(
        "one process, 2 workers, SQLite (baseline)",
        baseline,
        base_rate,
    );
    drop(local);

    for workers in [1usize, 2] {
        let backend = Backend::postgres();
        let data = scratch.path().join(format!("nats-{workers}"));
        let nats = Nats::start(&data.join("nats"));
        let server = Server::start_on(
            &backend,
            &data,
            &["--queue", &nats.url(), "--queue-size", "1000"],
        );
        let pool: Vec<Worker> = (0..workers)
            .map(|_| Worker::start(&backend, &data, &nats, &[]))
            .collect();
        report(
            &format!("NATS + PostgreSQL, {workers} worker process(es)"),
            load::closed_loop_uploads(&server, "audio/flac", &body, clients, seconds),
            base_rate,
        );
        drop(pool);
        drop(server);
        drop(nats);
    }
}
