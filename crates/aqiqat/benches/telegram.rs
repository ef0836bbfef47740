//! The Telegram bot under load, against the Bot API stand-in on loopback (the one the
//! end-to-end test uses), with the release `aqiqat telegram` binary:
//!
//! 1. **Latency**: a 20 s voice message (Opus, as Telegram sends voice notes), sent
//!    `AQIQAT_BENCH_REPEAT` times (default 10) one after another: the time from the update
//!    being available to the answer arriving at the stand-in. Baseline in the same run: the
//!    scan alone (`Scanner::scan_bytes` on the same bytes, in this process).
//! 2. **Throughput**: `AQIQAT_BENCH_UPDATES` (default 60) voice messages from as many users,
//!    all available at once: updates answered per second.
//!
//! `cargo bench -p aqiqat --bench telegram` (needs ffmpeg on PATH to make the Opus file).

#[path = "../tests/e2e/bot_api.rs"]
#[allow(dead_code)] // the end-to-end test uses more of it
mod bot_api;
#[path = "../tests/e2e/common.rs"]
#[allow(dead_code)]
mod common;
#[path = "support/inputs.rs"]
#[allow(dead_code)] // not every benchmark uses every input
mod inputs;

use serde_json::json;
use std::time::Instant;

fn main() {
    let repeat: usize = inputs::env_or("AQIQAT_BENCH_REPEAT", 10);
    let updates: usize = inputs::env_or("AQIQAT_BENCH_UPDATES", 60);
    let scratch = tempfile::tempdir().unwrap();
    // 20 s of the smoke set's speech, as a voice note.
    let speech = inputs::speech_i16(16000, 20.0, scratch.path());
    let wav = scratch.path().join("speech.wav");
    common::write_wav_16k(&wav, speech);
    let voice = bot_api::encoded(
        &wav,
        scratch.path(),
        "voice.ogg",
        &["-c:a", "libopus", "-b:a", "24k"],
    );

    let scanner = aqiqat_scan::Scanner::embedded(aqiqat_intake::Limits::default()).unwrap();
    let mut scan_ms = Vec::new();
    for _ in 0..repeat {
        let began = Instant::now();
        std::hint::black_box(scanner.scan_bytes("voice.ogg", voice.clone()).unwrap());
        scan_ms.push(began.elapsed().as_secs_f64() * 1000.0);
    }
    scan_ms.sort_by(f64::total_cmp);

    let api = bot_api::StandIn::start();
    api.file("voice", voice.clone());
    let data = scratch.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let _bot = bot_api::Bot::start(&data, &api.base, &["--rate", "100000", "--queue", "100000"]);
    // Warm-up: the first answer includes loading the models.
    let first = api.push(json!({"voice": {"file_id": "voice", "duration": 20}}));
    bot_api::wait_reply(&api, first);

    let mut latency_ms = Vec::new();
    for _ in 0..repeat {
        let sent = Instant::now();
        let id = api.push(json!({"voice": {"file_id": "voice", "duration": 20}}));
        bot_api::wait_reply(&api, id);
        let answered = api
            .calls_at("sendMessage")
            .into_iter()
            .find(|(v, _)| v["reply_parameters"]["message_id"] == id)
            .map(|(_, at)| at)
            .unwrap();
        latency_ms.push(answered.duration_since(sent).as_secs_f64() * 1000.0);
    }
    latency_ms.sort_by(f64::total_cmp);

    let messages: Vec<_> = (0..updates)
        .map(|i| {
            json!({"voice": {"file_id": "voice", "duration": 20},
                "from": {"id": 50_000 + i, "is_bot": false, "first_name": "U", "language_code": "ru"}})
        })
        .collect();
    let began = Instant::now();
    let ids = api.push_batch(messages);
    for id in &ids {
        bot_api::wait_reply(&api, *id);
    }
    let wall = began.elapsed();

    let median = |v: &[f64]| v[v.len() / 2];
    println!(
        "machine: {} cores; a 20 s voice message (Opus 24 kb/s, {} bytes)",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        voice.len()
    );
    println!(
        "scan alone (baseline, in process)      median {:>7.1} ms  best {:>7.1} ms",
        median(&scan_ms),
        scan_ms[0]
    );
    println!(
        "update → answer (bot, {repeat} in a row)     median {:>7.1} ms  best {:>7.1} ms  max {:>7.1} ms  ({:.2}× the scan alone)",
        median(&latency_ms),
        latency_ms[0],
        latency_ms[latency_ms.len() - 1],
        median(&latency_ms) / median(&scan_ms)
    );
    println!(
        "throughput: {updates} voice messages at once answered in {:.1} s: {:.2} updates/s ({:.0}× real time of audio)",
        wall.as_secs_f64(),
        updates as f64 / wall.as_secs_f64(),
        updates as f64 * 20.0 / wall.as_secs_f64()
    );
}
