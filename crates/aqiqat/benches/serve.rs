//! Load on a real `aqiqat serve` over loopback, client and server on this machine:
//!
//! 1. **Live calls**: `AQIQAT_BENCH_CALLS` (default 50) concurrent calls, each µ-law at 8 kHz
//!    in 20 ms frames paced at real time for `AQIQAT_BENCH_CALL_S` seconds (default 30),
//!    starts spread over the first second; once over `/v1/stream` (binary frames, the
//!    baseline) and once in the Twilio Media Streams protocol on `/v1/calls/twilio` (JSON
//!    messages, base64 payloads), or only those named in `AQIQAT_BENCH_PROTOCOLS`
//!    (`native,twilio`). A verdict's latency is the time from sending the frame that completes
//!    its window to receiving the verdict.
//! 2. **Uploads**: closed-loop clients (`AQIQAT_BENCH_CLIENTS`, default 1, 2 and 8) each
//!    POST a 10 s voice WAV and poll the job until it is done, for `AQIQAT_BENCH_UPLOAD_S`
//!    seconds (default 20). Reported: completed scans per second and the end-to-end latency
//!    (POST sent → `done` seen; polls every 10 ms, so figures carry up to 10 ms of it).
//!
//! `AQIQAT_BENCH_MODEL=PATH` starts the server with `--model PATH` (a training run's folder or
//! a fused card), so that a candidate detector is measured under load before it is embedded.
//!
//! `cargo bench -p aqiqat --bench serve` (release build of the server and of this client).

#[path = "../tests/e2e/common.rs"]
#[allow(dead_code)] // the tests use more of it than this benchmark
mod common;
#[path = "support/inputs.rs"]
#[allow(dead_code)] // not every benchmark uses every input
mod inputs;
#[path = "support/load.rs"]
mod load;

use common::{Server, mulaw_encode};
use serde_json::Value;
use std::time::{Duration, Instant};
use tungstenite::Message;

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

struct CallResult {
    first_ms: Option<f64>,
    update_ms: Vec<f64>,
    verdicts: usize,
    expected: usize,
}

/// How a call's audio is carried.
#[derive(Clone, Copy, PartialEq)]
enum Protocol {
    /// `/v1/stream`: binary µ-law frames.
    Native,
    /// `/v1/calls/twilio`: JSON `media` messages with base64 payloads.
    Twilio,
}

fn one_call(base: &str, audio: &[u8], start_at: Instant, protocol: Protocol) -> CallResult {
    use base64::Engine;
    const FRAME: usize = 160; // 20 ms at 8 kHz
    let ws_base = base.replace("http://", "ws://");
    let url = match protocol {
        Protocol::Native => format!("{ws_base}/v1/stream?encoding=mulaw&rate=8000"),
        Protocol::Twilio => format!("{ws_base}/v1/calls/twilio"),
    };
    std::thread::sleep(start_at.saturating_duration_since(Instant::now()));
    let (mut ws, _) = tungstenite::connect(url).expect("the WebSocket opens");
    if protocol == Protocol::Twilio {
        ws.send(Message::Text(
            r#"{"event": "start", "streamSid": "MZ1", "start": {"streamSid": "MZ1", "callSid": "CA1",
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                "customParameters": {}}}"#
                .into(),
        ))
        .unwrap();
    }
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
            let frame = match protocol {
                Protocol::Native => Message::Binary(frames[next].to_vec().into()),
                Protocol::Twilio => Message::Text(
                    serde_json::json!({"event": "media", "streamSid": "MZ1", "media": {
                        "track": "inbound", "chunk": next.to_string(),
                        "payload": base64::engine::general_purpose::STANDARD.encode(frames[next])}})
                    .to_string()
                    .into(),
                ),
            };
            ws.send(frame).unwrap();
            sent_at.push(Instant::now());
            next += 1;
            if next == frames.len() {
                let end = match protocol {
                    Protocol::Native => r#"{"type": "end"}"#,
                    Protocol::Twilio => r#"{"event": "stop", "streamSid": "MZ1"}"#,
                };
                ws.send(Message::Text(end.into())).unwrap();
            }
        }
        match ws.read() {
            Ok(Message::Text(t)) => {
                let now = Instant::now();
                let mut v: Value = serde_json::from_str(&t).unwrap();
                if protocol == Protocol::Twilio {
                    v = v["aqiqat"].take();
                }
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

/// `--model PATH` when `AQIQAT_BENCH_MODEL` names a candidate detector, else nothing.
struct ModelArgs(Option<String>);

impl ModelArgs {
    fn as_strs(&self) -> Vec<&str> {
        self.0
            .as_deref()
            .map_or_else(Vec::new, |p| vec!["--model", p])
    }
}

fn model_args() -> ModelArgs {
    let path = std::env::var("AQIQAT_BENCH_MODEL")
        .ok()
        .filter(|p| !p.is_empty());
    if let Some(p) = &path {
        println!("voice detector: --model {p}");
    }
    ModelArgs(path)
}

fn live_calls(scratch: &std::path::Path) {
    let calls: usize = inputs::env_or("AQIQAT_BENCH_CALLS", 50);
    let seconds: f64 = inputs::env_or("AQIQAT_BENCH_CALL_S", 30.0);
    let audio: Vec<u8> = inputs::speech(8000, seconds, scratch)
        .iter()
        .map(|&x| mulaw_encode(x))
        .collect();
    let model = model_args();
    let server = Server::start(&scratch.join("stream-data"), &model.as_strs());
    let protocols: String = inputs::env_or("AQIQAT_BENCH_PROTOCOLS", "native,twilio".to_owned());
    let mut first_p50 = Vec::new();
    for name in protocols.split(',') {
        let protocol = match name.trim() {
            "native" => Protocol::Native,
            "twilio" => Protocol::Twilio,
            other => panic!("AQIQAT_BENCH_PROTOCOLS: {other:?}"),
        };
        let p50 = calls_over(&server, &audio, calls, seconds, protocol, name.trim());
        first_p50.push((name.trim().to_owned(), p50));
    }
    if let [(base_name, base), rest @ ..] = first_p50.as_slice() {
        for (name, p50) in rest {
            println!("first-verdict p50, {name} ÷ {base_name}: {:.2}", p50 / base);
        }
    }
}

/// One round of concurrent calls in one protocol; the first verdict's median latency.
fn calls_over(
    server: &Server,
    audio: &[u8],
    calls: usize,
    seconds: f64,
    protocol: Protocol,
    name: &str,
) -> f64 {
    let t0 = Instant::now() + Duration::from_millis(500);
    let results: Vec<CallResult> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..calls)
            .map(|i| {
                let (base, audio) = (&server.base, &audio);
                let start = t0 + Duration::from_millis((i as u64 * 1000) / calls as u64);
                scope.spawn(move || one_call(base, audio, start, protocol))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    println!(
        "live calls ({name}): {calls} concurrent, {seconds} s each, µ-law 8 kHz, 20 ms frames"
    );
    let missing: usize = results.iter().map(|r| r.expected - r.verdicts).sum();
    println!(
        "verdicts received {} of {} expected",
        results.iter().map(|r| r.verdicts).sum::<usize>(),
        results.iter().map(|r| r.expected).sum::<usize>()
    );
    let mut first: Vec<f64> = results.iter().filter_map(|r| r.first_ms).collect();
    first.sort_by(f64::total_cmp);
    let p50 = percentile(&first, 50.0);
    summary("first verdict (at 2.0 s of audio)", first);
    let updates: Vec<f64> = results.iter().flat_map(|r| r.update_ms.clone()).collect();
    let over = updates.iter().filter(|&&ms| ms > 200.0).count();
    summary("each later verdict", updates.clone());
    println!(
        "later verdicts over 200 ms: {over} of {} ({:.2} %); missing verdicts: {missing}",
        updates.len(),
        100.0 * over as f64 / updates.len().max(1) as f64
    );
    p50
}

fn uploads(scratch: &std::path::Path) {
    let seconds: f64 = inputs::env_or("AQIQAT_BENCH_UPLOAD_S", 20.0);
    let wav = scratch.join("ten-seconds.wav");
    let samples = inputs::speech(16000, 10.0, scratch);
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
    let model = model_args();
    let mut extra = vec!["--queue", "256"];
    extra.extend(model.as_strs());
    let server = Server::start(&scratch.join("upload-data"), &extra);
    println!(
        "uploads: a 10 s 16 kHz WAV ({} bytes), closed loop, {seconds} s per level",
        body.len()
    );
    for clients in levels {
        let (rate, latencies) =
            load::closed_loop_uploads(&server, "audio/wav", &body, clients, seconds);
        println!(
            "{clients} client(s): {rate:.2} scans/s ({:.1}× real time of audio)",
            rate * 10.0
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
