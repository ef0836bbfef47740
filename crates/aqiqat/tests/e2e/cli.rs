//! The command line as a user meets it: real binary, real files, exit codes and output.

use crate::common::{aqiqat, text};
use std::path::{Path, PathBuf};
use std::process::Command;

fn tone_wav(dir: &Path, name: &str, seconds: f32) -> PathBuf {
    let path = dir.join(name);
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 22_050,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(&path, spec).unwrap();
    for i in 0..(22_050.0 * seconds) as usize {
        w.write_sample(((i as f32 * 0.05).sin() * 10_000.0) as i16)
            .unwrap();
    }
    w.finalize().unwrap();
    path
}

#[test]
fn probe_prints_the_facts_of_a_good_file() {
    let dir = tempfile::tempdir().unwrap();
    let wav = tone_wav(dir.path(), "call.wav", 2.0);
    let out = aqiqat(&["probe", wav.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    for expected in [
        "container    wav",
        "pcm_s16le, 16-bit",
        "22050 Hz, 1 channel",
        "duration     2.000 s",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in\n{stdout}"
        );
    }
    let sha = text(&Command::new("sha256sum").arg(&wav).output().unwrap().stdout)[..64].to_string();
    assert!(stdout.contains(&sha));
}

#[test]
fn probe_json_has_one_object_per_file_and_reports_failures_in_band() {
    let dir = tempfile::tempdir().unwrap();
    let good = tone_wav(dir.path(), "good.wav", 1.0);
    let bad = dir.path().join("fake.wav");
    std::fs::write(&bad, "not audio at all\n").unwrap();
    let out = aqiqat(&[
        "probe",
        "--json",
        good.to_str().unwrap(),
        bad.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "bad input decides the exit code"
    );
    let lines: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["container"], "wav");
    assert_eq!(lines[0]["sample_rate"], 22_050);
    assert_eq!(lines[0]["channels"], 1);
    assert_eq!(lines[0]["sha256"].as_str().unwrap().len(), 64);
    assert!((lines[0]["duration_s"].as_f64().unwrap() - 1.0).abs() < 1e-9);
    assert_eq!(lines[1]["error"]["kind"], "bad_input");
    assert_eq!(lines[1]["error"]["code"], "not_media");
    assert!(text(&out.stderr).contains("fake.wav: this is a text file, not audio or video"));
}

#[test]
fn bad_input_exits_2_with_a_message_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("voice-note.ogg");
    std::fs::write(&empty, b"").unwrap();
    let out = aqiqat(&["probe", empty.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("voice-note.ogg: the file is empty"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");

    let long = tone_wav(dir.path(), "long.wav", 3.0);
    let out = aqiqat(&["probe", "--max-duration", "2", long.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("longer than the limit"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn usage_errors_exit_2_and_help_exits_0() {
    assert_eq!(aqiqat(&[]).status.code(), Some(2));
    assert_eq!(aqiqat(&["probe"]).status.code(), Some(2));
    assert_eq!(aqiqat(&["frobnicate"]).status.code(), Some(2));
    let help = aqiqat(&["--help"]);
    assert_eq!(help.status.code(), Some(0));
    assert!(text(&help.stdout).contains("probe"));
    assert_eq!(
        aqiqat(&["decode", "x.wav", "--rate", "7"]).status.code(),
        Some(2)
    );
}

#[test]
fn decode_writes_what_the_analysers_hear() {
    let dir = tempfile::tempdir().unwrap();
    let wav = tone_wav(dir.path(), "in.wav", 1.5);
    let target = dir.path().join("out.wav");
    let out = aqiqat(&[
        "decode",
        wav.to_str().unwrap(),
        "--rate",
        "8000",
        "--json",
        "-o",
        target.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["samples"], 12_000);
    let written = hound::WavReader::open(&target).unwrap();
    assert_eq!(written.spec().sample_rate, 8_000);
    assert_eq!(written.spec().channels, 1);
    assert_eq!(written.len(), 12_000);
}

/// A copied binary runs on another machine of the same architecture: it links only the C
/// runtime, no codec, font or TLS library that machine may lack. (Debug and release builds
/// link the same libraries; the tests have the debug one.)
#[test]
fn the_binary_links_only_the_c_runtime() {
    let out = Command::new("ldd")
        .arg(env!("CARGO_BIN_EXE_aqiqat"))
        .output()
        .expect("ldd (Debian's libc-bin) runs");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listing = text(&out.stdout);
    let c_runtime = [
        "linux-vdso.so",
        "libc.so",
        "libm.so",
        "libgcc_s.so",
        "ld-linux",
        "libpthread.so",
        "libdl.so",
        "librt.so",
    ];
    let others: Vec<&str> = listing
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|lib| !c_runtime.iter().any(|c| lib.contains(c)))
        .collect();
    assert!(others.is_empty(), "links {others:?}:\n{listing}");
    assert!(listing.contains("libc.so"), "{listing}");
}

/// `--version` ties a binary to its code and its models: the commit and each embedded model
/// with the SHA-256 of the weights actually compiled in.
#[test]
fn version_names_the_commit_and_every_embedded_model() {
    for flag in ["--version", "-V"] {
        let out = aqiqat(&[flag]);
        assert!(out.status.success());
        let shown = text(&out.stdout);
        assert!(
            shown.starts_with(&format!("aqiqat {}", env!("CARGO_PKG_VERSION"))),
            "{shown}"
        );
        assert!(shown.contains("(commit "), "{shown}");
        // A fused detector's hash joins its members' weights in the card's order.
        let embedded = aqiqat_voice::detector::EMBEDDED;
        let card: serde_json::Value = serde_json::from_str(embedded.card()).unwrap();
        let digest = sha256_hex(&embedded.weights().concat());
        let line = format!(
            "model {} {} sha256 {digest}",
            card["model"].as_str().unwrap(),
            card["version"].as_str().unwrap()
        );
        assert!(shown.lines().any(|l| l == line), "{line} in\n{shown}");
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}
