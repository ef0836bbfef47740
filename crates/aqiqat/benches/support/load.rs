//! Load shared by the server benchmarks (`serve`, `queue`).

use crate::common::{Server, agent};
use std::time::{Duration, Instant};

/// Closed-loop clients for `seconds`, each POSTing `body` and polling its job (every 10 ms)
/// until it is done, again and again: (jobs per second over the whole span, each job's
/// POST → done latency in ms). For the benchmarks.
pub fn closed_loop_uploads(
    server: &Server,
    content_type: &str,
    body: &[u8],
    clients: usize,
    seconds: f64,
) -> (f64, Vec<f64>) {
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
                            .header("Content-Type", content_type)
                            .send(body)
                            .unwrap();
                        assert_eq!(r.status(), 202);
                        let job: serde_json::Value =
                            serde_json::from_reader(r.body_mut().as_reader()).unwrap();
                        let url = server.url(&format!("/v1/scans/{}", job["id"].as_str().unwrap()));
                        loop {
                            let v: serde_json::Value = serde_json::from_reader(
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
