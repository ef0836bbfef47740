//! No shortcuts: the score of a recording must not follow things that say nothing about the
//! voice. Each test takes clips of both labels from the shared smoke set, changes one such
//! thing, writes a real file, scans it through intake, and holds the calibrated probability to
//! within 0.05 of the original's.

use aqiqat_intake::{AudioStream, Limits};
use aqiqat_scan::Scanner;
use std::path::{Path, PathBuf};

const TOLERANCE: f64 = 0.05;

pub(crate) fn smoke_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/voice");
    assert!(
        dir.join("smoke.tsv").exists(),
        "the shared smoke set must lie at {} (CI puts ../shared beside the checkout)",
        dir.display()
    );
    dir
}

/// Four bonafide and four spoof clips (both generators), fixed by name.
fn clips() -> Vec<PathBuf> {
    let dir = smoke_dir();
    let manifest = std::fs::read_to_string(dir.join("smoke.tsv")).unwrap();
    let rows: Vec<(&str, &str, &str)> = manifest
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f[0], f[1], f[2])
        })
        .collect();
    let mut picked = Vec::new();
    for (label, generator, n) in [
        ("bonafide", "human", 4),
        ("spoof", "openseq2seq-tacotron2-gst", 2),
        ("spoof", "openseq2seq-centaur", 2),
    ] {
        picked.extend(
            rows.iter()
                .filter(|r| r.1 == label && r.2 == generator)
                .take(n)
                .map(|r| dir.join(r.0)),
        );
    }
    assert_eq!(picked.len(), 8);
    picked
}

pub(crate) fn decode(path: &Path, rate: u32) -> Vec<f32> {
    AudioStream::open(path, rate, &Limits::default())
        .unwrap()
        .read_to_end()
        .unwrap()
}

pub(crate) fn write_wav(path: &Path, samples: &[f32], rate: u32) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for &s in samples {
        w.write_sample((s.clamp(-1.0, 1.0) * 32767.0).round() as i16)
            .unwrap();
    }
    w.finalize().unwrap();
}

fn probability(scanner: &Scanner, path: &Path) -> f64 {
    scanner
        .scan_file(path)
        .unwrap()
        .probability_synthetic
        .unwrap_or_else(|| panic!("{} was not judged", path.display()))
}

/// Scans each clip as given at 16 kHz and after `change`, and returns the worst difference.
fn worst_shift(change: impl Fn(&[f32]) -> (Vec<f32>, u32)) -> f64 {
    let scanner = Scanner::embedded(Limits::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut worst = 0f64;
    for (i, clip) in clips().iter().enumerate() {
        let original = decode(clip, 16_000);
        let before = dir.path().join(format!("{i}-before.wav"));
        write_wav(&before, &original, 16_000);
        let (changed, rate) = change(&original);
        let after = dir.path().join(format!("{i}-after.wav"));
        write_wav(&after, &changed, rate);
        let (p0, p1) = (
            probability(&scanner, &before),
            probability(&scanner, &after),
        );
        eprintln!("{}: {p0:.4} → {p1:.4}", clip.display());
        worst = worst.max((p0 - p1).abs());
    }
    worst
}

#[test]
fn added_silence_does_not_move_the_score() {
    let worst = worst_shift(|x| {
        let mut padded = vec![0.0; 16_000 * 2];
        padded.extend_from_slice(x);
        padded.extend(vec![0.0; 16_000 * 3]);
        (padded, 16_000)
    });
    assert!(worst < TOLERANCE, "worst shift {worst:.4}");
}

#[test]
fn trimmed_edges_do_not_move_the_score() {
    // Cut 0.15 s from each end: the clips' own leading and trailing pauses, mostly.
    let worst = worst_shift(|x| (x[2_400..x.len() - 2_400].to_vec(), 16_000));
    assert!(worst < TOLERANCE, "worst shift {worst:.4}");
}

#[test]
fn twelve_decibels_either_way_do_not_move_the_score() {
    for db in [-12.0f32, 12.0] {
        let gain = 10f32.powf(db / 20.0);
        // +12 dB could clip a loud clip: keep the peak below full scale so that only the gain
        // changes (clipping is a different distortion).
        let worst = worst_shift(|x| {
            let peak = x.iter().fold(0f32, |m, s| m.max(s.abs())) * gain;
            let g = if peak > 0.99 {
                gain * 0.99 / peak
            } else {
                gain
            };
            (x.iter().map(|s| s * g).collect(), 16_000)
        });
        assert!(worst < TOLERANCE, "{db:+} dB: worst shift {worst:.4}");
    }
}

#[test]
fn the_same_clip_at_other_sample_rates_scores_the_same() {
    for rate in [8_000u32, 22_050, 44_100] {
        let worst = worst_shift(|x| {
            // Resampled by ffmpeg (swresample), not by intake's own resampler, so the test does
            // not pass merely because one resampler undoes itself.
            let dir = tempfile::tempdir().unwrap();
            let (src, dst) = (dir.path().join("src.wav"), dir.path().join("dst.wav"));
            write_wav(&src, x, 16_000);
            let status = std::process::Command::new("ffmpeg")
                .args(["-nostdin", "-v", "error", "-y", "-i"])
                .arg(&src)
                .args(["-ar", &rate.to_string(), "-c:a", "pcm_f32le"])
                .arg(&dst)
                .status()
                .expect("ffmpeg runs (CI installs Debian's package)");
            assert!(status.success());
            (decode(&dst, rate), rate)
        });
        assert!(worst < TOLERANCE, "{rate} Hz: worst shift {worst:.4}");
    }
}
