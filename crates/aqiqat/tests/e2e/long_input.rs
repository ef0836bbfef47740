//! A three-hour recording is decoded, resampled and hashed in bounded memory. The issue asks
//! for under 200 MB; the design holds one block of samples, so the test holds it to 64 MB.

use std::process::Command;

/// Runs the binary: (exit code, stdout, peak resident set size in bytes). It measures its peak resident memory from `/proc/PID/status`'s `VmHWM`,
/// read every 2 ms while it runs. Not from `wait4`'s `ru_maxrss`: Linux carries the parent's
/// peak into a child spawned with vfork, and this test shares its process with the other
/// end-to-end tests, so that figure would be theirs. A rise in the last 2 ms before exit
/// would be missed; the commands measured here reach their plateau long before.
fn run_measured(args: &[&str]) -> (i32, String, u64) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_aqiqat"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let status_file = format!("/proc/{}/status", child.id());
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || std::io::read_to_string(stdout).unwrap());
    let mut peak_kib = 0u64;
    let status = loop {
        if let Ok(text) = std::fs::read_to_string(&status_file)
            && let Some(kib) = text
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        {
            peak_kib = peak_kib.max(kib);
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    };
    assert!(peak_kib > 0, "no VmHWM read for {args:?}");
    (
        status.code().unwrap_or(-1),
        reader.join().unwrap(),
        peak_kib * 1024,
    )
}

#[test]
fn three_hours_of_audio_stay_under_200_mb() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("three-hour-call.wav");
    let rate = 8_000u32;
    let seconds: u32 = 3 * 3600;
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(&path, spec).unwrap();
    // One second per buffered block: the file is written without holding it in memory.
    for _ in 0..seconds {
        let mut block = w.get_i16_writer(rate);
        for i in 0..rate {
            block.write_sample(((i % 80) as i16 - 40) * 200);
        }
        block.flush().unwrap();
    }
    w.finalize().unwrap();
    let size = std::fs::metadata(&path).unwrap().len();
    assert!(
        size > 170_000_000,
        "the input is larger than the memory bound"
    );

    let file = path.to_str().unwrap();
    let (code, stdout, peak) = run_measured(&["decode", file, "--rate", "16000", "--json"]);
    assert_eq!(code, 0, "{stdout}");
    let summary: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(summary["samples"], u64::from(16_000 * seconds));
    eprintln!("decode + resample of 3 h: peak RSS {} MB", peak >> 20);
    assert!(
        peak < 64 << 20,
        "decode + resample peaked at {} MB",
        peak >> 20
    );

    let (code, stdout, peak) = run_measured(&["probe", "--json", file]);
    assert_eq!(code, 0, "{stdout}");
    let facts: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(facts["duration_s"], f64::from(seconds));
    eprintln!("probe of 3 h: peak RSS {} MB", peak >> 20);
    assert!(
        peak < 64 << 20,
        "probe (decode + hash) peaked at {} MB",
        peak >> 20
    );
}
