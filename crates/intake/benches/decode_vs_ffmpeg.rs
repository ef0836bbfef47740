//! Decode + resample to 16 kHz mono, single thread, for each format a victim receives, against
//! ffmpeg doing the same job in the same run.
//!
//! `cargo bench -p aqiqat-intake --bench decode_vs_ffmpeg [-- SECONDS] [-- NAME_FILTER]`
//!
//! Fixtures (10 minutes of a voiced, noisy signal by default) are made by ffmpeg and cached
//! under the target directory. aqiqat is timed in-process (open, decode, resample, drain);
//! ffmpeg is timed by its own `-benchmark` real time, which excludes process start-up and so
//! flatters ffmpeg slightly. Each figure is the best of five runs.

use aqiqat_intake::{AudioStream, Limits};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

struct Format {
    name: &'static str,
    file: &'static str,
    args: &'static [&'static str],
}

const FORMATS: &[Format] = &[
    Format {
        name: "WAV s16 44.1 kHz stereo",
        file: "s16.wav",
        args: &["-c:a", "pcm_s16le"],
    },
    Format {
        name: "WAV µ-law 8 kHz mono",
        file: "mulaw.wav",
        args: &["-ac", "1", "-ar", "8000", "-c:a", "pcm_mulaw"],
    },
    Format {
        name: "FLAC 44.1 kHz stereo",
        file: "a.flac",
        args: &["-c:a", "flac"],
    },
    Format {
        name: "MP3 128k 44.1 kHz stereo",
        file: "a.mp3",
        args: &["-c:a", "libmp3lame", "-b:a", "128k"],
    },
    Format {
        name: "AAC-LC 64k 48 kHz mono (M4A)",
        file: "memo.m4a",
        args: &["-ac", "1", "-ar", "48000", "-c:a", "aac", "-b:a", "64k"],
    },
    Format {
        name: "Opus 24k 48 kHz mono (Ogg)",
        file: "voice.opus",
        args: &["-ac", "1", "-ar", "48000", "-c:a", "libopus", "-b:a", "24k"],
    },
    Format {
        name: "Vorbis q4 44.1 kHz stereo",
        file: "a.ogg",
        args: &["-c:a", "libvorbis"],
    },
];

const RUNS: usize = 7;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let seconds: u32 = args.iter().find_map(|a| a.parse().ok()).unwrap_or(600);
    let filter = args.iter().find(|a| a.parse::<u32>().is_err()).cloned();
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("bench-audio-{seconds}s"));
    std::fs::create_dir_all(&dir).unwrap();
    let source = make_source(&dir, seconds);

    println!("decode + resample to 16 kHz mono, one thread, {seconds} s of audio, best of {RUNS}");
    println!("| format | aqiqat ×real-time | ffmpeg ×real-time | aqiqat / ffmpeg |");
    println!("|---|---:|---:|---:|");
    let mut files: Vec<(&str, PathBuf)> = FORMATS
        .iter()
        .map(|f| (f.name, encode(&source, &dir, f)))
        .collect();
    files.push(("AMR-NB 12.2k 8 kHz mono", amr_fixture(&source, &dir)));
    let wanted = |name: &str| filter.as_ref().is_none_or(|f| name.contains(f.as_str()));
    for (name, path) in files.iter().filter(|(name, _)| wanted(name)) {
        let ours = best_of(|| decode_ours(path));
        let theirs = best_of(|| decode_ffmpeg(path));
        let rt = f64::from(seconds);
        println!(
            "| {name} | {:.0}× | {:.0}× | {:.2} |",
            rt / ours,
            rt / theirs,
            theirs / ours
        );
    }
}

fn best_of(mut f: impl FnMut() -> f64) -> f64 {
    (0..RUNS).map(|_| f()).fold(f64::INFINITY, f64::min)
}

fn decode_ours(path: &Path) -> f64 {
    let start = Instant::now();
    let mut stream = AudioStream::open(path, 16_000, &Limits::default()).unwrap();
    let mut n = 0usize;
    while let Some(chunk) = stream.next_chunk().unwrap() {
        n += chunk.len();
    }
    let elapsed = start.elapsed().as_secs_f64();
    assert!(n > 0);
    elapsed
}

fn decode_ffmpeg(path: &Path) -> f64 {
    let out = Command::new("ffmpeg")
        .args([
            "-nostdin",
            "-hide_banner",
            "-benchmark",
            "-threads",
            "1",
            "-filter_threads",
            "1",
            "-i",
        ])
        .arg(path)
        .args(["-ac", "1", "-ar", "16000", "-f", "f32le", "-y", "/dev/null"])
        .output()
        .expect("ffmpeg is needed for the comparison: apt-get install ffmpeg");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = String::from_utf8_lossy(&out.stderr);
    log.split_whitespace()
        .find_map(|w| w.strip_prefix("rtime="))
        .and_then(|v| v.trim_end_matches('s').parse::<f64>().ok())
        .expect("ffmpeg -benchmark prints rtime")
}

/// A voiced signal with vibrato, syllable-rate amplitude modulation and noise, per channel.
fn make_source(dir: &Path, seconds: u32) -> PathBuf {
    let path = dir.join("source.wav");
    if path.exists() {
        return path;
    }
    let voice = |f0: u32, rate: u32| {
        format!(
            "0.25*sin(2*PI*({f0}+30*sin(2*PI*5*t))*t)*(0.55+0.45*sin(2*PI*{rate}*t))\
             +0.1*sin(4*PI*({f0}+30*sin(2*PI*5*t))*t)+0.03*(random(0)-0.5)"
        )
    };
    let expr = format!(
        "aevalsrc={}|{}:s=44100:d={seconds}",
        voice(140, 4),
        voice(210, 3)
    );
    let ok = Command::new("ffmpeg")
        .args([
            "-nostdin",
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            &expr,
            "-c:a",
            "pcm_s16le",
        ])
        .arg(&path)
        .status()
        .unwrap()
        .success();
    assert!(ok, "ffmpeg could not make the source signal");
    path
}

fn encode(source: &Path, dir: &Path, format: &Format) -> PathBuf {
    let path = dir.join(format.file);
    if !path.exists() {
        let ok = Command::new("ffmpeg")
            .args(["-nostdin", "-v", "error", "-y", "-i"])
            .arg(source)
            .args(format.args)
            .arg(&path)
            .status()
            .unwrap()
            .success();
        assert!(ok, "ffmpeg could not encode {}", format.file);
    }
    path
}

/// No Debian encoder writes AMR-NB, so the fixture goes through intake's own AMR-NB encoder.
fn amr_fixture(source: &Path, dir: &Path) -> PathBuf {
    let path = dir.join("call.amr");
    if !path.exists() {
        let pcm = Command::new("ffmpeg")
            .args(["-nostdin", "-v", "error", "-i"])
            .arg(source)
            .args(["-ac", "1", "-ar", "8000", "-f", "s16le", "-"])
            .output()
            .unwrap()
            .stdout;
        let samples: Vec<i16> = pcm
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]))
            .collect();
        std::fs::write(&path, aqiqat_intake::decode::amr::encode_amr_nb(&samples)).unwrap();
    }
    path
}
