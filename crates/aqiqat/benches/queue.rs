//! Jobs through the API end to end, on this machine's loopback: closed-loop clients
//! (`AQIQAT_BENCH_CLIENTS`, default 4) each POST a 4 s voice message and poll its job until it is
//! done, for `AQIQAT_BENCH_SECONDS` (default 15) per setup, in one run:
//!
//! 1. one process, `aqiqat serve --workers 2` on its SQLite default (the baseline);
//! 2. `serve --queue nats://…` on PostgreSQL with one `aqiqat worker --workers 1` process;
//! 3. the same with two worker processes.
//!
//! Reported: jobs per second and the time from POST to `done` seen (p50, p99; polls every
//! 10 ms). Needs `nats-server` and the PostgreSQL test server (`bash .ci/postgres`).
//!
//! `cargo bench -p aqiqat --bench queue`

#[path = "../tests/e2e/common.rs"]
#[allow(dead_code)] // the tests use more of it than this benchmark
mod common;

use common::{Backend, Nats, Server, Worker, agent, smoke};
use serde_json::Value;
use std::time::{Duration, Instant};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// (jobs per second, latencies in ms)
fn load(server: &Server, body: &[u8], clients: usize, seconds: f64) -> (f64, Vec<f64>) {
    let began = Instant::now();
    let until = began + Duration::from_secs_f64(seconds);
    let latencies: Vec<f64> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..clients)
            .map(|_| {
                scope.spawn(move || {
                    let agent = agent();
                    let mut out = Vec::new();
                    while Instant::now() < until {
                        let sent = Instant::now();
                        let mut r = agent
                            .post(&server.url("/v1/scans"))
                            .header("Content-Type", "audio/flac")
                            .send(body)
                            .unwrap();
                        assert_eq!(r.status(), 202);
                        let job: Value = serde_json::from_reader(r.body_mut().as_reader()).unwrap();
                        let url = server.url(&format!("/v1/scans/{}", job["id"].as_str().unwrap()));
                        loop {
                            let v: Value = serde_json::from_reader(
                                agent.get(&url).call().unwrap().body_mut().as_reader(),
                            )
                            .unwrap();
                            match v["state"].as_str() {
                                Some("done") => break,
                                Some("failed") => panic!("scan failed: {v}"),
                                _ => std::thread::sleep(Duration::from_millis(10)),
                            }
                        }
                        out.push(sent.elapsed().as_secs_f64() * 1000.0);
                    }
                    out
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    (
        latencies.len() as f64 / began.elapsed().as_secs_f64(),
        latencies,
    )
}

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

fn main() {
    let clients: usize = env_or("AQIQAT_BENCH_CLIENTS", 4);
    let seconds: f64 = env_or("AQIQAT_BENCH_SECONDS", 15.0);
    let body = std::fs::read(smoke(0)).unwrap();
    let scratch = tempfile::tempdir().unwrap();
    println!(
        "jobs through the API: {clients} closed-loop clients, a {} byte FLAC voice message, {seconds} s per setup",
        body.len()
    );

    let local = Server::start(
        &scratch.path().join("local"),
        &["--workers", "2", "--queue", "256"],
    );
    let baseline = load(&local, &body, clients, seconds);
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
            load(&server, &body, clients, seconds),
            base_rate,
        );
        drop(pool);
        drop(server);
        drop(nats);
    }
}
