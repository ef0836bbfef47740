//! Recordings the detector must not judge get `inconclusive` with their reason, and no
//! probability, whatever the network would have said: speech drowned in noise, two people
//! talking at once, too little speech. Each is made from the shared smoke set's genuine
//! clips, written to a real file and scanned through intake.

use crate::invariance::{decode, smoke_dir, write_wav};
use aqiqat_intake::Limits;
use aqiqat_scan::{ScanResult, Scanner};
use aqiqat_voice::detector::{ReasonCode, Verdict};
use std::path::PathBuf;

const RATE: u32 = 16_000;

/// The smoke set's genuine clips, in manifest order (24 speakers).
fn bonafide() -> Vec<PathBuf> {
    let dir = smoke_dir();
    std::fs::read_to_string(dir.join("smoke.tsv"))
        .unwrap()
        .lines()
        .skip(1)
        .filter(|l| l.split('\t').nth(1) == Some("bonafide"))
        .map(|l| dir.join(l.split('\t').next().unwrap()))
        .collect()
}

fn scan(samples: &[f32]) -> ScanResult {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clip.wav");
    write_wav(&path, samples, RATE);
    Scanner::embedded(Limits::default())
        .unwrap()
        .scan_file(&path)
        .unwrap()
}

fn power(x: &[f32]) -> f64 {
    x.iter().map(|&s| f64::from(s) * f64::from(s)).sum::<f64>() / x.len() as f64
}

/// A seeded uniform generator (xorshift), so the noise is the same on every run.
fn noise(n: usize, seed: u64) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f32 / (1u64 << 53) as f32 * 2.0 - 1.0
        })
        .collect()
}

/// Checks what a refusal must hold: the verdict, its code in the result and the voice
/// summary, the measured conditions, and no probability.
fn assert_refused(r: &ScanResult, code: ReasonCode, what: &str) {
    assert_eq!(r.verdict, Verdict::Inconclusive, "{what}: {:?}", r.reason);
    assert_eq!(r.reason_code, Some(code), "{what}: {:?}", r.reason);
    assert_eq!(r.probability_synthetic, None, "{what}");
    let voice = r.voice.as_ref().unwrap();
    assert_eq!(voice.reason_code, Some(code));
    assert!(r.reason.as_deref().is_some_and(|s| !s.is_empty()), "{what}");
}

#[test]
fn speech_drowned_in_noise_is_too_noisy_to_judge() {
    for (i, clip) in bonafide().iter().take(4).enumerate() {
        let speech = decode(clip, RATE);
        let raw = noise(speech.len(), i as u64 + 1);
        // Noise as strong as the whole clip, pauses included: 0 dB.
        let gain = (power(&speech) / power(&raw)).sqrt() as f32;
        let noisy: Vec<f32> = speech
            .iter()
            .zip(&raw)
            .map(|(s, n)| 0.5 * (s + gain * n))
            .collect();
        let r = scan(&noisy);
        assert_refused(&r, ReasonCode::TooNoisy, &clip.display().to_string());
        let snr = r.voice.unwrap().conditions.unwrap().snr_db;
        assert!(snr < 6.0, "{}: {snr} dB", clip.display());
        // The clean clip is fit to judge: whatever its verdict, not for noise.
        let clean = scan(&speech);
        assert_ne!(
            clean.reason_code,
            Some(ReasonCode::TooNoisy),
            "{}",
            clip.display()
        );
        let clean_snr = clean.voice.unwrap().conditions.unwrap().snr_db;
        assert!(
            clean_snr > snr + 8.0,
            "{}: {clean_snr} dB clean",
            clip.display()
        );
    }
}

#[test]
fn two_people_talking_at_once_are_not_judged() {
    let clips = bonafide();
    let mut refused = 0;
    let pairs = 6;
    for i in 0..pairs {
        let (a, b) = (decode(&clips[i], RATE), decode(&clips[i + 12], RATE));
        let n = a.len().min(b.len());
        let gain = (power(&a[..n]) / power(&b[..n])).sqrt() as f32;
        let both: Vec<f32> = (0..n).map(|t| 0.5 * (a[t] + gain * b[t])).collect();
        let r = scan(&both);
        if r.reason_code == Some(ReasonCode::SeveralVoices) {
            assert_refused(&r, ReasonCode::SeveralVoices, "pair");
            refused += 1;
        }
        for single in [&a, &b] {
            let r = scan(single);
            assert_ne!(r.reason_code, Some(ReasonCode::SeveralVoices), "pair {i}");
        }
    }
    assert!(
        refused >= MIN_OVERLAPS_REFUSED,
        "{refused} of {pairs} overlaps refused"
    );
}

/// Of the six equal-level pairs above (measured: 6 of 6 through intake; on all twelve pairs of
/// the smoke set `crates/dsp/tests/quality.rs` measured 11). One miss is allowed: the
/// detector finds a second voice in a few percent of the voiced frames of a 4 s clip, so a
/// pair whose voices share a pitch range sits near its threshold.
const MIN_OVERLAPS_REFUSED: usize = 5;

#[test]
fn a_second_of_speech_is_too_little_for_a_verdict() {
    let clip = &bonafide()[0];
    let speech = decode(clip, RATE);
    let scanned = scan(&speech);
    let first = scanned.speech.first().expect("the clip has speech").start_s;
    // 1.2 s from the first word on, then a second of silence.
    let start = (first * f64::from(RATE)) as usize;
    let mut short = speech[start..start + (1.2 * f64::from(RATE)) as usize].to_vec();
    short.resize(short.len() + RATE as usize, 0.0);
    let r = scan(&short);
    assert_refused(&r, ReasonCode::TooLittleSpeech, "1.2 s");
    let speech_s = r.voice.unwrap().speech_s;
    assert!(speech_s < 1.5, "{speech_s}");
}
