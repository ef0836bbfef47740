//! Hostile and broken inputs: each gets a typed bad-input error that names the file, and none
//! panics, hangs or allocates without bound.

mod common;

use aqiqat_intake::{AudioStream, IntakeError, Limits, probe};
use common::*;
use std::path::{Path, PathBuf};

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn refused(path: &Path, limits: &Limits) -> IntakeError {
    let err = probe(path, limits).expect_err(&format!("{} must be refused", path.display()));
    assert!(err.is_bad_input(), "{err} must count as bad input");
    let name = path.file_name().unwrap().to_str().unwrap();
    assert!(
        err.to_string().contains(name),
        "message names the file: {err}"
    );
    err
}

fn code(path: &Path) -> &'static str {
    refused(path, &Limits::default()).problem.code()
}

#[test]
fn empty_and_impostor_files() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_eq!(code(&write(d, "empty.wav", b"")), "empty");
    let text = refused(
        &write(d, "notes.wav", "қаржы алаяқтығы\n".as_bytes()),
        &Limits::default(),
    );
    assert!(text.to_string().contains("text file"), "{text}");
    let png = refused(
        &write(
            d,
            "photo.wav",
            b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR\0\0\0\x01\0\0\0\x01\x08\x02\0\0\0",
        ),
        &Limits::default(),
    );
    assert!(png.to_string().contains("PNG image"), "{png}");
    let elf_bytes = std::fs::read(std::env::current_exe().unwrap()).unwrap();
    let elf = refused(
        &write(d, "program.wav", &elf_bytes[..4096]),
        &Limits::default(),
    );
    assert!(elf.to_string().contains("ELF executable"), "{elf}");
    assert_eq!(
        code(&write(d, "noise.mp3", &[0x00, 0x13, 0x37, 0x42, 0x99])),
        "unrecognised_format"
    );
}

#[test]
fn missing_files_and_directories_are_the_callers_fault() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(code(&dir.path().join("nowhere.wav")), "io");
    let sub = dir.path().join("folder.wav");
    std::fs::create_dir(&sub).unwrap();
    assert_eq!(code(&sub), "io");
}

#[test]
fn truncated_streams_are_named_as_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let source = source_wav(dir.path());
    let formats: &[(&str, &[&str])] = &[
        ("full.wav", &["-c:a", "pcm_s16le"]),
        ("full.flac", &["-c:a", "flac"]),
        ("full.mp3", &["-c:a", "libmp3lame"]),
        ("full.ogg", &["-c:a", "libvorbis"]),
        ("full.opus", &["-c:a", "libopus"]),
        ("fast.m4a", &["-c:a", "aac", "-movflags", "+faststart"]),
    ];
    for (name, args) in formats {
        let full = ffmpeg(&source, args, &dir.path().join(name));
        let bytes = std::fs::read(&full).unwrap();
        let cut = write(
            dir.path(),
            &format!("cut_{name}"),
            &bytes[..bytes.len() / 2],
        );
        let err = refused(&cut, &Limits::default());
        assert!(
            matches!(err.problem.code(), "truncated" | "corrupt_stream"),
            "{name}: {err}"
        );
    }
    // An MP4 whose index (moov) sits at the end loses it when cut: a header problem.
    let m4a = ffmpeg(&source, &["-c:a", "aac"], &dir.path().join("tail.m4a"));
    let bytes = std::fs::read(&m4a).unwrap();
    let cut = write(dir.path(), "cut_tail.m4a", &bytes[..bytes.len() / 2]);
    assert_eq!(code(&cut), "corrupt_header");
}

#[test]
fn zero_length_audio() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("silent_nothing.wav");
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 16_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    hound::WavWriter::create(&path, spec)
        .unwrap()
        .finalize()
        .unwrap();
    assert_eq!(code(&path), "no_samples");
}

/// A canonical 44-byte-header WAV, so tests can lie in exact header fields.
fn plain_wav(channels: u16, rate: u32, bits: u16, frames: u32) -> Vec<u8> {
    let block = channels * bits / 8;
    let data_len = frames * u32::from(block);
    let mut v = Vec::new();
    v.extend_from_slice(b"RIFF");
    v.extend_from_slice(&(36 + data_len).to_le_bytes());
    v.extend_from_slice(b"WAVEfmt ");
    v.extend_from_slice(&16u32.to_le_bytes());
    v.extend_from_slice(&1u16.to_le_bytes());
    v.extend_from_slice(&channels.to_le_bytes());
    v.extend_from_slice(&rate.to_le_bytes());
    v.extend_from_slice(&(rate * u32::from(block)).to_le_bytes());
    v.extend_from_slice(&block.to_le_bytes());
    v.extend_from_slice(&bits.to_le_bytes());
    v.extend_from_slice(b"data");
    v.extend_from_slice(&data_len.to_le_bytes());
    v.extend((0..data_len).map(|i| (i * 7 % 251) as u8));
    v
}

#[test]
fn absurd_declared_sizes_are_not_believed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A data chunk that claims 2 GiB in a 20 kB file: truncated, and nothing of 2 GiB allocated.
    let mut wav = plain_wav(1, 16_000, 16, 10_000);
    wav[40..44].copy_from_slice(&0x7FFF_FFF0u32.to_le_bytes());
    wav[4..8].copy_from_slice(&(0x7FFF_FFF0u32 + 36).to_le_bytes());
    let err = refused(&write(d, "liar.wav", &wav), &Limits::default());
    assert_eq!(err.problem.code(), "truncated", "{err}");

    // Header fields no recorder writes.
    let mut rate0 = plain_wav(1, 16_000, 16, 1_000);
    rate0[24..28].copy_from_slice(&0u32.to_le_bytes());
    refused(&write(d, "rate0.wav", &rate0), &Limits::default());
    let mut fast = plain_wav(1, 16_000, 16, 1_000);
    fast[24..28].copy_from_slice(&4_000_000_000u32.to_le_bytes());
    refused(&write(d, "rate4g.wav", &fast), &Limits::default());
    let mut many = plain_wav(1, 16_000, 16, 1_000);
    many[22..24].copy_from_slice(&60_000u16.to_le_bytes());
    refused(&write(d, "channels.wav", &many), &Limits::default());
    let mut bits = plain_wav(1, 16_000, 16, 1_000);
    bits[34..36].copy_from_slice(&0xFFFFu16.to_le_bytes());
    refused(&write(d, "bits.wav", &bits), &Limits::default());

    // A FLAC whose STREAMINFO claims 2^36 - 1 samples.
    let source = source_wav(d);
    let flac = ffmpeg(&source, &["-c:a", "flac"], &d.join("ok.flac"));
    let mut bytes = std::fs::read(flac).unwrap();
    // STREAMINFO body starts at 8; total samples are its last 36 bits before the MD5 (13..18).
    bytes[21] |= 0x0F;
    bytes[22..26].copy_from_slice(&[0xFF; 4]);
    let err = refused(&write(d, "endless.flac", &bytes), &Limits::default());
    assert_eq!(err.problem.code(), "truncated", "{err}");
}

#[test]
fn corrupted_headers() {
    let dir = tempfile::tempdir().unwrap();
    let source = source_wav(dir.path());
    let mut wav = std::fs::read(&source).unwrap();
    wav[12..36].fill(0xFF);
    refused(&write(dir.path(), "fmt.wav", &wav), &Limits::default());
    let flac = ffmpeg(&source, &["-c:a", "flac"], &dir.path().join("a.flac"));
    let mut bytes = std::fs::read(flac).unwrap();
    bytes[8..40].fill(0xFF);
    assert_eq!(
        code(&write(dir.path(), "streaminfo.flac", &bytes)),
        "corrupt_header"
    );
}

#[test]
fn limits_hold() {
    let dir = tempfile::tempdir().unwrap();
    let source = source_wav(dir.path());
    let short = Limits {
        max_duration_s: 1.0,
        ..Limits::default()
    };
    let err = refused(&source, &short);
    assert_eq!(err.problem.code(), "too_long");
    assert!(err.to_string().contains("limit of 1.0s"), "{err}");
    // The streaming path stops at the limit too, instead of decoding to the end first.
    let mut stream = AudioStream::open(&source, 16_000, &short).unwrap();
    let mut delivered = 0;
    let err = loop {
        match stream.next_chunk() {
            Ok(Some(chunk)) => delivered += chunk.len(),
            Ok(None) => panic!("a 3 s file passed a 1 s limit"),
            Err(e) => break e,
        }
    };
    assert_eq!(err.problem.code(), "too_long");
    assert!(
        delivered <= 24_000,
        "{delivered} samples delivered past the limit"
    );

    let tiny = Limits {
        max_input_bytes: 1_000,
        ..Limits::default()
    };
    assert_eq!(refused(&source, &tiny).problem.code(), "too_large");
}

#[test]
fn unsupported_codecs_and_missing_audio() {
    let dir = tempfile::tempdir().unwrap();
    let source = source_wav(dir.path());
    let ac3 = ffmpeg(&source, &["-c:a", "ac3"], &dir.path().join("film.mkv"));
    let err = refused(&ac3, &Limits::default());
    assert_eq!(err.problem.code(), "unsupported_codec", "{err}");
    assert!(err.to_string().contains("ac3"), "{err}");
    assert_eq!(
        code(&write(
            dir.path(),
            "wideband.amr",
            b"#!AMR-WB\n\x04\x00\x00"
        )),
        "unsupported_codec"
    );

    let silent_video = dir.path().join("silent.mp4");
    let status = std::process::Command::new("ffmpeg")
        .args([
            "-nostdin",
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=64x48:rate=10:duration=1",
        ])
        .args(["-c:v", "mpeg4"])
        .arg(&silent_video)
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(code(&silent_video), "no_audio_track");
}

/// A small deterministic generator, so every run mutates the same bytes.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn mutated_files_never_panic_or_fail_internally() {
    let dir = tempfile::tempdir().unwrap();
    let source = source_wav(dir.path());
    let seeds: Vec<PathBuf> = [
        ("m.wav", &["-ar", "8000", "-c:a", "pcm_mulaw"][..]),
        ("m.flac", &["-c:a", "flac"]),
        ("m.mp3", &["-c:a", "libmp3lame"]),
        ("m.ogg", &["-c:a", "libvorbis"]),
        ("m.opus", &["-c:a", "libopus"]),
        ("m.m4a", &["-c:a", "aac", "-movflags", "+faststart"]),
        ("m.mka", &["-c:a", "libopus"]),
    ]
    .iter()
    .map(|(name, args)| ffmpeg(&source, args, &dir.path().join(name)))
    .collect();
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let target = dir.path().join("mutant.bin");
    for seed in &seeds {
        let original = std::fs::read(seed).unwrap();
        for round in 0..40 {
            let mut bytes = original.clone();
            let flips = 1 + (rng.next() % 8) as usize;
            // Half the rounds hit the header, where parsers are most fragile.
            let span = if round % 2 == 0 {
                bytes.len().min(256)
            } else {
                bytes.len()
            };
            for _ in 0..flips {
                let at = (rng.next() as usize) % span;
                bytes[at] ^= 1 << (rng.next() % 8);
            }
            if round % 5 == 4 {
                bytes.truncate((rng.next() as usize) % bytes.len() + 1);
            }
            std::fs::write(&target, &bytes).unwrap();
            if let Err(err) = probe(&target, &Limits::default()) {
                assert!(
                    err.is_bad_input(),
                    "{} round {round}: internal error on bad input: {err}",
                    seed.display()
                );
            }
        }
    }
}

/// Inputs the fuzzer found (`fuzz/`), kept as files: each must be refused cleanly.
#[test]
fn fuzzer_findings_stay_fixed() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/regressions");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let expected = match path.file_name().unwrap().to_str().unwrap() {
            "wav-fmt-channel-overflow.bin" => "implausible_parameters",
            other => panic!("{other}: add its expected outcome here"),
        };
        assert_eq!(refused(&path, &Limits::default()).problem.code(), expected);
        seen += 1;
    }
    assert!(seen > 0);
}
