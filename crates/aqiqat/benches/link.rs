//! From a link to a verdict, for a post on a server on loopback whose page declares a 1-minute
//! video (H.264 and AAC in MP4, made here with ffmpeg from the smoke set's speech): how long each
//! step takes, and the whole path.
//!
//! - **page**: fetching the post's page and finding its media (`og:video`);
//! - **download**: fetching the video under the address policy;
//! - **resolve**: both, as `aqiqat_link::resolve` does them;
//! - **decode**: the video's audio track decoded and resampled to the detector's rate;
//! - **scan**: `Scanner::scan_link` (decode, detector, provenance), what `scan URL` runs after
//!   resolving.
//!
//! Each step runs `AQIQAT_BENCH_REPEAT` times (default 5); the median and the best are
//! printed, and each step's share of the whole. The server is on loopback, so the download
//! measures aqiqat's side only: a real site adds its own network time.
//!
//! `cargo bench -p aqiqat --bench link` (needs ffmpeg on PATH to make the video).

#[path = "../tests/e2e/common.rs"]
#[allow(dead_code)] // the tests use more of it than this benchmark
mod common;
#[path = "support/inputs.rs"]
#[allow(dead_code)] // not every benchmark uses every input
mod inputs;

use std::time::{Duration, Instant};

/// A 1-minute MP4 (64×64 H.264, AAC mono 16 kHz) of the smoke set's speech.
fn minute_of_video(scratch: &std::path::Path) -> Vec<u8> {
    let speech = inputs::speech_i16(16000, 60.0, scratch);
    let wav = scratch.join("speech.wav");
    common::write_wav_16k(&wav, speech);
    let mp4 = scratch.join("post.mp4");
    let status = std::process::Command::new("ffmpeg")
        .args(["-loglevel", "error", "-y", "-i"])
        .arg(&wav)
        .args(["-f", "lavfi", "-i", "color=c=gray:s=64x64:r=25:d=60"])
        .args(["-shortest", "-c:v", "libx264", "-pix_fmt", "yuv420p"])
        .args(["-c:a", "aac", "-b:a", "64k"])
        .arg(&mp4)
        .status()
        .expect("ffmpeg is on PATH");
    assert!(status.success());
    std::fs::read(&mp4).unwrap()
}

/// A server on loopback with the post's page at `/post` and its video at `/video.mp4`.
fn site(video: Vec<u8>) -> String {
    let page = "<!DOCTYPE html><html><head><title>A minister endorses a fund</title>\
        <meta property=\"og:video\" content=\"/video.mp4\"><meta property=\"og:video:type\" \
        content=\"video/mp4\"></head><body><p>Invest now.</p></body></html>";
    common::link_server(vec![
        ("/post", "text/html", page.as_bytes().to_vec()),
        ("/video.mp4", "video/mp4", video),
    ])
}

fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> (Vec<f64>, T) {
    let mut ms = Vec::with_capacity(runs);
    let mut last = None;
    for _ in 0..runs {
        let began = Instant::now();
        last = Some(std::hint::black_box(f()));
        ms.push(began.elapsed().as_secs_f64() * 1000.0);
    }
    ms.sort_by(f64::total_cmp);
    (ms, last.expect("at least one run"))
}

fn main() {
    let runs: usize = inputs::env_or("AQIQAT_BENCH_REPEAT", 5);
    let scratch = tempfile::tempdir().unwrap();
    let video = minute_of_video(scratch.path());
    let size = video.len();
    let base = site(video);
    let link = format!("{base}/post");
    let limits = aqiqat_link::ResolveLimits {
        fetch: aqiqat_link::FetchLimits {
            allow_private: true,
            timeout: Duration::from_secs(60),
            ..Default::default()
        },
        ..Default::default()
    };
    let scanner = aqiqat_scan::Scanner::embedded(aqiqat_intake::Limits::default()).unwrap();
    let rate = scanner.voice().sample_rate();

    let (page_ms, media_url) = time(runs, || {
        let page = aqiqat_link::fetch(&link, &limits.fetch).unwrap();
        let html = String::from_utf8_lossy(&page.bytes).into_owned();
        aqiqat_link::page::media_in_page(&html, page.final_url())[0]
            .url
            .clone()
    });
    let (download_ms, _) = time(runs, || {
        aqiqat_link::fetch(&media_url, &limits.fetch)
            .unwrap()
            .bytes
            .len()
    });
    let (resolve_ms, resolved) = time(runs, || aqiqat_link::resolve(&link, &limits, None).unwrap());
    let bytes = resolved.items[0].bytes.clone();
    let (decode_ms, samples) = time(runs, || {
        aqiqat_intake::load_bytes(
            "post.mp4",
            bytes.clone(),
            rate,
            &aqiqat_intake::Limits::default(),
        )
        .unwrap()
        .1
        .len()
    });
    let (scan_ms, verdict) = time(runs, || {
        let (source, bytes) =
            aqiqat_scan::LinkSource::for_items(resolved.clone(), "2026-11-30T00:00:00Z").remove(0);
        scanner.scan_link(source, bytes, None).unwrap().verdict
    });
    let (total_ms, _) = time(runs, || {
        let resolved = aqiqat_link::resolve(&link, &limits, None).unwrap();
        let (source, bytes) =
            aqiqat_scan::LinkSource::for_items(resolved, "2026-11-30T00:00:00Z").remove(0);
        scanner.scan_link(source, bytes, None).unwrap().verdict
    });

    println!(
        "link to verdict: a post whose page declares a 60 s MP4 ({size} bytes; {} samples at {rate} Hz), {runs} runs, one thread",
        samples
    );
    println!("verdict: {verdict:?}");
    let median = |ms: &[f64]| ms[ms.len() / 2];
    let whole = median(&total_ms);
    for (name, ms) in [
        ("page (fetch + find og:video)", &page_ms),
        ("download (60 s video)", &download_ms),
        ("resolve (page + download)", &resolve_ms),
        ("decode (audio track, resampled)", &decode_ms),
        ("scan (decode + detector + provenance)", &scan_ms),
        ("link → verdict", &total_ms),
    ] {
        println!(
            "{name:<40} median {:>8.1} ms  best {:>8.1} ms  {:>5.1} % of link → verdict",
            median(ms),
            ms[0],
            100.0 * median(ms) / whole
        );
    }
    println!(
        "link → verdict runs {:.0}× faster than the video plays",
        60_000.0 / whole
    );
}
