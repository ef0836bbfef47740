//! Load on a real `aqiqat serve` over loopback, client and server on this machine:
//!
//! 1. **Live calls**: `AQIQAT_BENCH_CALLS` (default 50) concurrent calls over `/v1/stream`,
//!    each µ-law at 8 kHz in 20 ms frames paced at real time for `AQIQAT_BENCH_CALL_S`
//!    seconds (default 30), starts spread over the first second. A verdict's latency is the
//!    time from sending the frame that completes its window to receiving the verdict.
//! 2. **Uploads**: closed-loop clients (`AQIQAT_BENCH_CLIENTS`, default 1, 2 and 8) each
//!    POST a 10 s voice WAV and poll the job until it is done, for `AQIQAT_BENCH_UPLOAD_S`
//!    seconds (default 20). Reported: completed scans per second and the end-to-end latency
//!    (POST sent → `done` seen; polls every 10 ms, so figures carry up to 10 ms of it).
//!
//! `cargo bench -p aqiqat --bench serve` (release build of the server and of this client).

#[path = "../tests/e2e/common.rs"]
#[allow(dead_code)] // the tests use more of it than this benchmark
mod common;

use common::{Server, agent, decode_with_aqiqat, mulaw_encode, smoke_dir};
use serde_json::Value;
use std::io::Read;
use std::time::{Duration, Instant};
use tungstenite::Message;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn summary(name: &str, mut ms: Vec<f64>) {
    ms.sort_by(f64::total_cmp);
    println!(
        "{name:<34} n={:<6} p50={:>7.1} ms  p90={:>7.1} ms  p99={:>7.1} ms  max={:>7.1} ms",
        ms.len(),
        percentile(&ms, 50.0),
        percentile(&ms, 90.0),
        percentile(&ms, 99.0),
        ms.last().copied().unwrap_or(f64::NAN)
    );
}

/// Speech to send: the smoke set's clips, decoded by aqiqat, joined until `seconds` long.
fn speech(rate: u32, seconds: f64, scratch: &std::path::Path) -> Vec<f32> {
    let dir = smoke_dir();
    let manifest = std::fs::read_to_string(dir.join("smoke.tsv")).unwrap();
    let mut out = Vec::new();
    let want = (seconds * f64::from(rate)) as usize;
    for line in manifest.lines().skip(1).cycle() {
        if out.len() >= want {
            break;
        }
        let path = dir.join(line.split('\t').next().unwrap());
        out.extend(decode_with_aqiqat(&path, rate, scratch));
    }
    out.truncate(want);
    out
}

struct CallResult {
    first_ms: Option<f64>,
    update_ms: Vec<f64>,
    verdicts: usize,
    expected: usize,
}

fn one_call(base: &str, audio: &[u8], start_at: Instant) -> CallResult {
    const FRAME: usize = 160; // 20 ms at 8 kHz
    let url = format!(
        "{}/v1/stream?encoding=mulaw&rate=8000",
        base.replace("http://", "ws://")
    );
    std::thread::sleep(start_at.saturating_duration_since(Instant::now()));
    let (mut ws, _) = tungstenite::connect(url).expect("the WebSocket opens");
    let ready = ws.read().unwrap();
    assert!(ready.to_text().unwrap().contains("ready"));
    if let tungstenite::stream::MaybeTlsStream::Plain(tcp) = ws.get_ref() {
        tcp.set_read_timeout(Some(Duration::from_millis(2)))
            .unwrap();
        tcp.set_nodelay(true).unwrap();
    }
    let frames: Vec<&[u8]> = audio.chunks(FRAME).collect();
    let mut sent_at = Vec::with_capacity(frames.len());
    let started = Instant::now();
    let mut verdicts: Vec<(f64, Instant)> = Vec::new();
    let mut finished = false;
    let mut next = 0usize;
    while !finished {
        // Send every frame whose time has come (real-time pacing).
        while next < frames.len() && started.elapsed() >= Duration::from_millis(20 * next as u64) {
            ws.send(Message::Binary(frames[next].to_vec().into()))
                .unwrap();
            sent_at.push(Instant::now());
            next += 1;
            if next == frames.len() {
                ws.send(Message::Text(r#"{"type": "end"}"#.into())).unwrap();
            }
        }
        match ws.read() {
            Ok(Message::Text(t)) => {
                let now = Instant::now();
                let v: Value = serde_json::from_str(&t).unwrap();
                match v["type"].as_str() {
                    Some("verdict") => verdicts.push((v["t_s"].as_f64().unwrap(), now)),
                    Some("final") => finished = true,
                    _ => panic!("unexpected message {v}"),
                }
            }
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("the call broke: {e}"),
        }
    }
    let latency = |t_s: f64, at: Instant| {
        let frame = ((t_s * 8000.0).round() as usize / FRAME).saturating_sub(1);
        at.duration_since(sent_at[frame]).as_secs_f64() * 1000.0
    };
    let seconds = audio.len() as f64 / 8000.0;
    CallResult {
        first_ms: verdicts.first().map(|&(t, at)| latency(t, at)),
        update_ms: verdicts
            .iter()
            .skip(1)
            .map(|&(t, at)| latency(t, at))
            .collect(),
        verdicts: verdicts.len(),
        expected: seconds.floor() as usize - 1,
    }
}

fn live_calls(scratch: &std::path::Path) {
    let calls: usize = env_or("AQIQAT_BENCH_CALLS", 50);
    let seconds: f64 = env_or("AQIQAT_BENCH_CALL_S", 30.0);
    let audio: Vec<u8> = speech(8000, seconds, scratch)
        .iter()
        .map(|&x| mulaw_encode(x))
        .collect();
    let server = Server::start(&scratch.join("stream-data"), &[]);
    let t0 = Instant::now() + Duration::from_millis(500);
    let results: Vec<CallResult> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..calls)
            .map(|i| {
                let (base, audio) = (&server.base, &audio);
                let start = t0 + Duration::from_millis((i as u64 * 1000) / calls as u64);
                scope.spawn(move || one_call(base, audio, start))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    println!("live calls: {calls} concurrent, {seconds} s each, µ-law 8 kHz, 20 ms frames");
    let missing: usize = results.iter().map(|r| r.expected - r.verdicts).sum();
    println!(
        "verdicts received {} of {} expected",
        results.iter().map(|r| r.verdicts).sum::<usize>(),
        results.iter().map(|r| r.expected).sum::<usize>()
    );
    summary(
        "first verdict (at 2.0 s of audio)",
        results.iter().filter_map(|r| r.first_ms).collect(),
    );
    let updates: Vec<f64> = results.iter().flat_map(|r| r.update_ms.clone()).collect();
    let over = updates.iter().filter(|&&ms| ms > 200.0).count();
    summary("each later verdict", updates.clone());
    println!(
        "later verdicts over 200 ms: {over} of {} ({:.2} %); missing verdicts: {missing}",
        updates.len(),
        100.0 * over as f64 / updates.len().max(1) as f64
    );
}

fn uploads(scratch: &std::path::Path) {
    let seconds: f64 = env_or("AQIQAT_BENCH_UPLOAD_S", 20.0);
    let wav = scratch.join("ten-seconds.wav");
    let samples = speech(16000, 10.0, scratch);
    common::write_wav_16k(
        &wav,
        samples
            .iter()
            .map(|&x| (x.clamp(-1.0, 1.0) * 32767.0) as i16),
    );
    let body = std::fs::read(&wav).unwrap();
    let levels: Vec<usize> = std::env::var("AQIQAT_BENCH_CLIENTS")
        .ok()
        .map(|v| v.split(',').filter_map(|c| c.parse().ok()).collect())
        .unwrap_or_else(|| vec![1, 2, 8]);
    let server = Server::start(&scratch.join("upload-data"), &["--queue", "256"]);
    println!(
        "uploads: a 10 s 16 kHz WAV ({} bytes), closed loop, {seconds} s per level",
        body.len()
    );
    for clients in levels {
        let began = Instant::now();
        let until = began + Duration::from_secs_f64(seconds);
        let latencies: Vec<f64> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..clients)
                .map(|_| {
                    let (server, body) = (&server, &body);
                    scope.spawn(move || {
                        let agent = agent();
                        let mut out = Vec::new();
                        while Instant::now() < until {
                            let sent = Instant::now();
                            let mut r = agent
                                .post(&server.url("/v1/scans"))
                                .header("Content-Type", "audio/wav")
                                .send(&body[..])
                                .unwrap();
                            assert_eq!(r.status(), 202);
                            let job: Value =
                                serde_json::from_reader(r.body_mut().as_reader()).unwrap();
                            let url =
                                server.url(&format!("/v1/scans/{}", job["id"].as_str().unwrap()));
                            loop {
                                let mut text = String::new();
                                agent
                                    .get(&url)
                                    .call()
                                    .unwrap()
                                    .body_mut()
                                    .as_reader()
                                    .read_to_string(&mut text)
                                    .unwrap();
                                let v: Value = serde_json::from_str(&text).unwrap();
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
        // Scans started before the deadline all finish: the rate is over the whole span.
        let wall = began.elapsed().as_secs_f64();
        println!(
            "{clients} client(s): {:.2} scans/s ({:.1}× real time of audio)",
            latencies.len() as f64 / wall,
            latencies.len() as f64 * 10.0 / wall
        );
        summary("  POST → done", latencies);
    }
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument picks one part.
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let scratch = tempfile::tempdir().unwrap();
    let wants = |name: &str| filter.as_deref().is_none_or(|f| name.contains(f));
    println!(
        "machine: {} cores",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    if wants("stream") {
        live_calls(scratch.path());
    }
    if wants("uploads") {
        uploads(scratch.path());
    }
}
