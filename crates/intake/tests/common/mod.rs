//! Fixtures made at test time: a known stereo signal, encoded by Debian's ffmpeg into every
//! format intake claims to read. Nothing is committed; nothing is downloaded.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

pub const LEFT_HZ: f32 = 440.0;
pub const RIGHT_HZ: f32 = 1_000.0;
pub const SOURCE_RATE: u32 = 44_100;
pub const SOURCE_SECONDS: f32 = 3.0;

/// Writes a 3 s, 44.1 kHz, 16-bit stereo WAV: 440 Hz on the left, 1 kHz on the right, so a
/// correct down-mix carries both tones at half level.
pub fn source_wav(dir: &Path) -> PathBuf {
    let path = dir.join("source.wav");
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: SOURCE_RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(&path, spec).unwrap();
    for i in 0..(SOURCE_RATE as f32 * SOURCE_SECONDS) as usize {
        let t = i as f32 / SOURCE_RATE as f32;
        for hz in [LEFT_HZ, RIGHT_HZ] {
            let s = (t * hz * 2.0 * std::f32::consts::PI).sin() * 0.4;
            w.write_sample((s * 32767.0) as i16).unwrap();
        }
    }
    w.finalize().unwrap();
    path
}

/// Runs ffmpeg (required: CI installs Debian's package) and returns `out`.
pub fn ffmpeg(input: &Path, args: &[&str], out: &Path) -> PathBuf {
    let status = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y", "-i"])
        .arg(input)
        .args(args)
        .arg(out)
        .status()
        .expect("ffmpeg is required for the intake tests: apt-get install ffmpeg");
    assert!(status.success(), "ffmpeg failed making {}", out.display());
    out.to_path_buf()
}

/// Power of `hz` in `samples` (Goertzel), normalised so a full-scale sine gives ~0.25.
pub fn tone_power(samples: &[f32], rate: u32, hz: f32) -> f32 {
    let w = 2.0 * std::f32::consts::PI * hz / rate as f32;
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f32, 0.0f32);
    for &x in samples {
        let s0 = x + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    power / (samples.len() as f32).powi(2)
}

pub fn sha256sum(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8(out.stdout).unwrap()[..64].to_string()
}
