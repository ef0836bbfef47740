//! Bulk scanning on one machine: the same folder scanned by `aqiqat scan DIR --jsonl OUT` with
//! `--jobs 1` and then `--jobs 2` (and more, with `AQIQAT_BENCH_JOBS=1,2,4`), in one run. The
//! folder holds every smoke clip `AQIQAT_BENCH_COPIES` times (default 4: 192 files, about
//! 12 minutes of audio), each copy a distinct file so nothing is cached by content.
//!
//! `cargo bench -p aqiqat --bench bulk` (release build of the binary it runs).

use std::path::Path;
use std::process::Command;
use std::time::Instant;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let smoke = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/voice/smoke");
    let copies: usize = env_or("AQIQAT_BENCH_COPIES", 4);
    let jobs: Vec<usize> = std::env::var("AQIQAT_BENCH_JOBS")
        .unwrap_or_else(|_| "1,2".into())
        .split(',')
        .filter_map(|j| j.trim().parse().ok())
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let inputs = dir.path().join("in");
    std::fs::create_dir(&inputs).unwrap();
    let mut files = 0;
    for entry in std::fs::read_dir(&smoke).expect("../shared/data/voice/smoke beside the checkout")
    {
        let path = entry.unwrap().path();
        for c in 0..copies {
            let name = format!("{c}-{}", path.file_name().unwrap().to_string_lossy());
            std::fs::copy(&path, inputs.join(name)).unwrap();
            files += 1;
        }
    }
    println!("bulk scan of {files} files ({copies} copies of the smoke set), release binary");
    let mut baseline = None;
    for j in jobs {
        let out = dir.path().join(format!("out-{j}.jsonl"));
        let started = Instant::now();
        let run = Command::new(env!("CARGO_BIN_EXE_aqiqat"))
            .args([
                "scan",
                inputs.to_str().unwrap(),
                "--jsonl",
                out.to_str().unwrap(),
            ])
            .args(["--jobs", &j.to_string()])
            .env("AQIQAT_DATA_DIR", dir.path().join("data"))
            .output()
            .unwrap();
        let seconds = started.elapsed().as_secs_f64();
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        let audio: f64 = std::fs::read_to_string(&out)
            .unwrap()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|v| v["media"]["duration_s"].as_f64())
            .sum();
        let base = *baseline.get_or_insert(seconds);
        println!(
            "--jobs {j}: {seconds:6.2} s, {:6.1} files/s, {:6.0}× real time ({:.1} min of audio), {:.2}× the --jobs 1 throughput",
            files as f64 / seconds,
            audio / seconds,
            audio / 60.0,
            base / seconds
        );
    }
}
