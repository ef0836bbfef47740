//! Recording-quality gates on real speech: the 48 smoke clips (LibriSpeech and two TTS systems),
//! alone, under white and pink noise, over synthesized music, and two speakers at once.

use aqiqat_dsp::quality::{QualityConfig, SpeechQuality, Unfit, assess};
use aqiqat_dsp::vad::{Segment, VadConfig, speech_segments};
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub const RATE: u32 = 8_000;

pub struct Clip {
    pub path: String,
    pub bonafide: bool,
    pub speaker: String,
    /// 8 kHz mono.
    pub samples: Vec<f32>,
}

pub fn voice_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/voice")
}

/// The smoke clips at 8 kHz, decoded once per test binary.
pub fn clips() -> &'static [Clip] {
    static CLIPS: OnceLock<Vec<Clip>> = OnceLock::new();
    CLIPS.get_or_init(|| {
        let dir = voice_dir();
        let tsv = std::fs::read_to_string(dir.join("smoke.tsv"))
            .unwrap_or_else(|e| panic!("{}: {e}", dir.join("smoke.tsv").display()));
        tsv.lines()
            .skip(1)
            .filter(|l| !l.trim().is_empty())
            .map(|line| {
                let cols: Vec<&str> = line.split('\t').collect();
                let (rate, audio) = decode_flac(&dir.join(cols[0]));
                assert_eq!(rate, 16_000, "{}", cols[0]);
                Clip {
                    path: cols[0].to_string(),
                    bonafide: cols[1] == "bonafide",
                    speaker: cols[3].to_string(),
                    samples: halve_rate(&audio),
                }
            })
            .collect()
    })
}

pub fn bonafide() -> Vec<&'static Clip> {
    clips().iter().filter(|c| c.bonafide).collect()
}

/// Mono samples and rate of a FLAC file.
pub fn decode_flac(path: &Path) -> (u32, Vec<f32>) {
    use symphonia::core::codecs::CodecParameters;
    use symphonia::core::codecs::audio::AudioDecoderOptions;
    use symphonia::core::formats::FormatOptions;
    use symphonia::core::formats::probe::Hint;
    use symphonia::core::io::{MediaSourceStream, MediaSourceStreamOptions};
    use symphonia::core::meta::MetadataOptions;

    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mss = MediaSourceStream::new(Box::new(file), MediaSourceStreamOptions::default());
    let mut hint = Hint::new();
    hint.with_extension("flac");
    let mut reader = symphonia::default::get_probe()
        .probe(
            &hint,
            mss,
            FormatOptions::default(),
            MetadataOptions::default(),
        )
        .expect("a FLAC stream");
    let (track_id, params) = reader
        .tracks()
        .iter()
        .find_map(|t| match &t.codec_params {
            Some(CodecParameters::Audio(p)) => Some((t.id, p.clone())),
            _ => None,
        })
        .expect("an audio track");
    let rate = params.sample_rate.expect("a sample rate");
    let mut decoder = symphonia::default::get_codecs()
        .make_audio_decoder(&params, &AudioDecoderOptions::default())
        .expect("a FLAC decoder");
    let mut out = Vec::new();
    let mut planes: Vec<Vec<f32>> = Vec::new();
    while let Some(packet) = reader.next_packet().expect("readable packets") {
        if packet.track_id != track_id {
            continue;
        }
        let buf = decoder.decode(&packet).expect("decodable packets");
        let frames = buf.frames();
        buf.copy_to_vecs_planar::<f32>(&mut planes);
        let start = out.len();
        out.resize(start + frames, 0.0);
        for plane in &planes {
            for (o, s) in out[start..].iter_mut().zip(plane) {
                *o += s / planes.len() as f32;
            }
        }
    }
    (rate, out)
}

/// 2:1 decimation behind a Blackman-windowed sinc low-pass (cut-off 3.7 kHz at 16 kHz input,
/// stop band from 4 kHz).
pub fn halve_rate(x: &[f32]) -> Vec<f32> {
    lowpass_3700(x, 2)
}

/// `x` (16 kHz) through the same 3.7 kHz low-pass, every `step`-th output sample.
fn lowpass_3700(x: &[f32], step: usize) -> Vec<f32> {
    const HALF: usize = 64;
    let fc = 3_700.0 / 16_000.0;
    let n = 2 * HALF + 1;
    let mut h: Vec<f64> = (0..n)
        .map(|i| {
            let m = i as f64 - HALF as f64;
            let sinc = if m == 0.0 {
                2.0 * fc
            } else {
                (2.0 * std::f64::consts::PI * fc * m).sin() / (std::f64::consts::PI * m)
            };
            let a = 2.0 * std::f64::consts::PI * i as f64 / (n - 1) as f64;
            sinc * (0.42 - 0.5 * a.cos() + 0.08 * (2.0 * a).cos())
        })
        .collect();
    let sum: f64 = h.iter().sum();
    h.iter_mut().for_each(|v| *v /= sum);
    (0..x.len() / step)
        .map(|o| {
            let centre = step * o;
            let mut acc = 0.0f64;
            for (i, &c) in h.iter().enumerate() {
                let j = centre as isize + i as isize - HALF as isize;
                if j >= 0 && (j as usize) < x.len() {
                    acc += c * x[j as usize] as f64;
                }
            }
            acc as f32
        })
        .collect()
}

pub fn vad(x: &[f32]) -> Vec<Segment> {
    speech_segments(
        x,
        &VadConfig {
            sample_rate: RATE,
            ..VadConfig::default()
        },
    )
}

pub fn quality(x: &[f32]) -> SpeechQuality {
    assess(x, &vad(x), &QualityConfig::default())
}

/// Mean power of the speech the VAD finds in a clean clip: the level an SNR refers to.
pub fn active_level(x: &[f32]) -> f32 {
    let segs = vad(x);
    let (mut sum, mut n) = (0.0f64, 0usize);
    for s in &segs {
        for &v in &x[s.start..s.end] {
            sum += (v * v) as f64;
        }
        n += s.end - s.start;
    }
    assert!(n > 0, "no speech found");
    (sum / n as f64) as f32
}

pub fn mean_power(x: &[f32]) -> f32 {
    (x.iter().map(|&v| (v * v) as f64).sum::<f64>() / x.len() as f64) as f32
}

/// `x` plus `other` scaled to `level_db` below the active speech level of `x`.
pub fn mix_below(x: &[f32], other: &[f32], level_db: f32) -> Vec<f32> {
    let target = active_level(x) / 10f32.powf(level_db / 10.0);
    let gain = (target / mean_power(other)).sqrt();
    x.iter().zip(other).map(|(a, b)| a + gain * b).collect()
}

/// ChaCha8 from `rand_chacha`: seeded, and the same stream on every platform.
pub struct Rng(ChaCha8Rng);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(ChaCha8Rng::seed_from_u64(seed))
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f32 {
        (self.0.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.0.next_u64() % n as u64) as usize
    }

    pub fn gaussian(&mut self) -> f32 {
        let u1 = (self.uniform() as f64).max(1e-12);
        let u2 = self.uniform() as f64;
        ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
    }
}

pub fn white_noise(len: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    (0..len).map(|_| rng.gaussian()).collect()
}

/// Gaussian noise with a 1/f power spectrum (3 dB per octave down), from 20 Hz up.
pub fn pink_noise(len: usize, seed: u64) -> Vec<f32> {
    use realfft::RealFftPlanner;
    let mut planner = RealFftPlanner::<f32>::new();
    let fwd = planner.plan_fft_forward(len);
    let inv = planner.plan_fft_inverse(len);
    let mut x = white_noise(len, seed);
    let mut spec = fwd.make_output_vec();
    fwd.process(&mut x, &mut spec).unwrap();
    let bin_hz = RATE as f32 / len as f32;
    for (k, c) in spec.iter_mut().enumerate() {
        let f = k as f32 * bin_hz;
        *c *= if f < 20.0 { 0.0 } else { 1.0 / f.sqrt() };
    }
    spec.last_mut().unwrap().im = 0.0;
    let mut out = inv.make_output_vec();
    inv.process(&mut spec, &mut out).unwrap();
    out
}

/// A few bars of synthesized music at 8 kHz: a melody, chords and a bass line of harmonic
/// instruments with attack/decay envelopes over a steady beat, optionally with percussion.
/// Notes and chords change every 150–500 ms.
pub fn music(seed: u64, seconds: f32) -> Vec<f32> {
    #[derive(Clone, Copy)]
    enum Instrument {
        /// Struck string: bright attack, exponential decay, upper partials die first.
        Pluck,
        /// Steady harmonics 1, 2, 3, 4, 6, 8 with a soft attack.
        Organ,
        /// Odd harmonics, soft attack, sustained.
        Reed,
        /// Sawtooth-like bowed tone, slow attack.
        Bowed,
    }
    let rate = RATE as f32;
    let len = (seconds * rate) as usize;
    let mut out = vec![0.0f32; len];
    let mut rng = Rng::new(seed);
    let beat = 0.3 + 0.2 * rng.uniform();
    let pick = |rng: &mut Rng| match rng.below(4) {
        0 => Instrument::Pluck,
        1 => Instrument::Organ,
        2 => Instrument::Reed,
        _ => Instrument::Bowed,
    };
    // Even seeds: everything plucked (guitar/piano-like), decaying between notes, with rests.
    let plucked = seed.is_multiple_of(2);
    let (lead, pad, bass) = if plucked {
        (Instrument::Pluck, Instrument::Pluck, Instrument::Pluck)
    } else {
        (pick(&mut rng), pick(&mut rng), pick(&mut rng))
    };
    let percussion = plucked || rng.below(3) != 0;
    let scale = [0, 2, 4, 5, 7, 9, 11];
    let key = 45 + rng.below(10) as i32;
    let degree_to_midi = |d: i32| key + 12 * d.div_euclid(7) + scale[d.rem_euclid(7) as usize];
    let midi_hz = |m: i32| 440.0 * 2f32.powf((m - 69) as f32 / 12.0);

    let note =
        |out: &mut [f32], rng: &mut Rng, inst: Instrument, hz: f32, t0: f32, dur: f32, amp: f32| {
            let start = (t0 * rate) as usize;
            let end = (((t0 + dur + 0.15) * rate) as usize).min(out.len());
            let harmonics: Vec<(f32, f32)> = (1..=24)
                .filter_map(|k| {
                    let f = k as f32 * hz;
                    if f > 3_600.0 {
                        return None;
                    }
                    let a = match inst {
                        Instrument::Pluck => 1.0 / (k as f32).powf(1.2),
                        Instrument::Organ => match k {
                            1 => 1.0,
                            2 => 0.7,
                            3 => 0.5,
                            4 => 0.4,
                            6 => 0.25,
                            8 => 0.15,
                            _ => 0.0,
                        },
                        Instrument::Reed => {
                            if k % 2 == 1 {
                                1.0 / k as f32
                            } else {
                                0.05 / k as f32
                            }
                        }
                        Instrument::Bowed => 1.0 / k as f32,
                    };
                    (a > 0.0).then_some((k as f32, a))
                })
                .collect();
            let phases: Vec<f32> = harmonics
                .iter()
                .map(|_| rng.uniform() * std::f32::consts::TAU)
                .collect();
            for (i, o) in out[start..end].iter_mut().enumerate() {
                let t = i as f32 / rate;
                let (attack, decay) = match inst {
                    Instrument::Pluck => (0.005, 0.35),
                    Instrument::Organ => (0.02, 5.0),
                    Instrument::Reed => (0.03, 2.0),
                    Instrument::Bowed => (0.06, 1.5),
                };
                let mut env = (t / attack).min(1.0) * (-t / decay).exp();
                if t > dur {
                    env *= (-(t - dur) / 0.03).exp();
                }
                let mut s = 0.0;
                for (&(k, a), &ph) in harmonics.iter().zip(&phases) {
                    let fade = match inst {
                        Instrument::Pluck => (-t * k * 0.8).exp(),
                        _ => 1.0,
                    };
                    s += a * fade * (std::f32::consts::TAU * k * hz * t + ph).sin();
                }
                *o += amp * env * s;
            }
        };

    // Chords and bass change every beat, the melody every half or whole beat.
    let mut t = 0.0;
    let mut root = rng.below(7) as i32;
    while t < seconds {
        root = (root + [3, 4, 5, 1, 6][rng.below(5)]) % 7;
        for third in [0, 2, 4] {
            let hz = midi_hz(degree_to_midi(root + third + 7));
            note(&mut out, &mut rng, pad, hz, t, beat, 0.35);
        }
        note(
            &mut out,
            &mut rng,
            bass,
            midi_hz(degree_to_midi(root)),
            t,
            beat,
            0.6,
        );
        t += beat;
    }
    let mut t = 0.0;
    while t < seconds {
        let dur = if rng.below(2) == 0 { beat } else { beat / 2.0 }.max(0.15);
        let hz = midi_hz(degree_to_midi(14 + rng.below(9) as i32));
        if !(plucked && rng.below(4) == 0) {
            note(&mut out, &mut rng, lead, hz, t, dur, 0.8);
        }
        t += dur;
    }
    if percussion {
        let mut t = 0.0;
        let mut i = 0;
        while t < seconds {
            let start = (t * rate) as usize;
            let (decay, amp) = if i % 2 == 0 {
                (0.06, 0.8)
            } else {
                (0.025, 0.4)
            };
            let end = (start + (0.3 * rate) as usize).min(len);
            for (j, o) in out[start..end].iter_mut().enumerate() {
                *o += amp * (-(j as f32 / rate) / decay).exp() * rng.gaussian() * 0.5;
            }
            t += beat / 2.0;
            i += 1;
        }
    }
    let peak = out.iter().fold(0.0f32, |a, &b| a.max(b.abs()));
    out.iter_mut().for_each(|v| *v *= 0.5 / peak);
    out
}

/// Two clips at the same active speech level, summed and scaled to keep the peak below 1.
pub fn two_voices(a: &[f32], b: &[f32]) -> Vec<f32> {
    let n = a.len().min(b.len());
    let gain = (active_level(a) / active_level(b)).sqrt();
    let mut out: Vec<f32> = (0..n).map(|i| a[i] + gain * b[i]).collect();
    let peak = out.iter().fold(0.0f32, |m, &v| m.max(v.abs()));
    if peak > 0.99 {
        out.iter_mut().for_each(|v| *v *= 0.99 / peak);
    }
    out
}

#[test]
fn speech_carries_its_real_band_whatever_the_rate() {
    use aqiqat_dsp::bandwidth::{BandwidthConfig, effective_bandwidth};
    let dir = voice_dir();
    let config = BandwidthConfig::at(16_000);
    let vad = VadConfig {
        sample_rate: 16_000,
        ..VadConfig::default()
    };
    for clip in bonafide() {
        let (_, wide) = decode_flac(&dir.join(&clip.path));
        let speech = speech_segments(&wide, &vad);
        let full = effective_bandwidth(&wide, &speech, &config).unwrap();
        // The same speech as a phone line carries it, still at 16 kHz.
        let narrow = lowpass_3700(&wide, 1);
        let phone = effective_bandwidth(&narrow, &speech, &config).unwrap();
        assert!(full > 6_000.0, "{}: {full} Hz", clip.path);
        assert!(
            phone < 4_500.0,
            "{}: {phone} Hz after a 3.7 kHz low-pass",
            clip.path
        );
    }
}

fn reason(q: &SpeechQuality) -> &'static str {
    match q.unfit(&QualityConfig::default()) {
        None => "fit",
        Some(Unfit::TooNoisy { .. }) => "too noisy",
        Some(Unfit::Music { .. }) => "music",
        Some(Unfit::SeveralVoices { .. }) => "several voices",
    }
}

/// (a) Clean read speech and clean TTS are fit. Measured: SNR 13–75 dB, music share 0 for all
/// 48, overlap share at most 0.022 (threshold 0.035).
#[test]
fn clean_clips_are_fit() {
    assert_eq!(clips().len(), 48);
    for clip in clips() {
        let q = quality(&clip.samples);
        assert_eq!(reason(&q), "fit", "{}: {q:?}", clip.path);
        assert!(q.snr_db > 10.0, "{}: {q:?}", clip.path);
    }
}

/// (b) Each bonafide clip in seeded white and pink noise. Measured on the 2 × 24 mixtures:
/// 0 dB reads -0.9…+2.1 dB, 10 dB reads 8.2…11.2 dB, 20 dB reads 12.1…20.6 dB (the low ones
/// are clips with their own background, e.g. 13 dB clean). Held: every 0 dB mixture is too
/// noisy, every 20 dB mixture is fit, every 10 dB estimate within ±3 dB.
#[test]
fn noise_makes_clips_too_noisy() {
    let mut worst_10db = 0.0f32;
    for (i, clip) in bonafide().iter().enumerate() {
        let x = &clip.samples;
        let noises = [
            ("white", white_noise(x.len(), 1_000 + i as u64)),
            ("pink", pink_noise(x.len(), 2_000 + i as u64)),
        ];
        for (kind, noise) in &noises {
            let q0 = quality(&mix_below(x, noise, 0.0));
            assert_eq!(
                reason(&q0),
                "too noisy",
                "{} {kind} 0 dB: {q0:?}",
                clip.path
            );
            let q10 = quality(&mix_below(x, noise, 10.0));
            assert!(
                (q10.snr_db - 10.0).abs() <= 3.0,
                "{} {kind} 10 dB: {q10:?}",
                clip.path
            );
            worst_10db = worst_10db.max((q10.snr_db - 10.0).abs());
            let q20 = quality(&mix_below(x, noise, 20.0));
            assert_eq!(reason(&q20), "fit", "{} {kind} 20 dB: {q20:?}", clip.path);
        }
    }
    eprintln!("largest 10 dB error: {worst_10db:.1} dB");
}

/// (c) Synthesized music is music; speech over music 15 dB down is not. Measured: every
/// piece of 12 has music share 1.0 (all its blocks); speech over quiet music at most 0.33 and
/// fit. Music as loud as the speech or louder mostly reads as music (19/24 at 0 dB, 24/24 at
/// +5 dB), the rest as several voices.
#[test]
fn music_is_music_and_quiet_background_music_is_not() {
    for seed in 1..=6 {
        let piece = music(seed, 4.0);
        let q = quality(&piece);
        assert_eq!(reason(&q), "music", "piece {seed}: {q:?}");
        assert!(q.music_share > 0.9, "piece {seed}: {q:?}");
    }
    for (i, clip) in bonafide().iter().enumerate() {
        let background = music(1 + i as u64 % 6, 4.0);
        let q = quality(&mix_below(&clip.samples, &background, 15.0));
        assert_eq!(reason(&q), "fit", "{} over music: {q:?}", clip.path);
        assert!(q.music_share <= 0.34, "{} over music: {q:?}", clip.path);
    }
}

/// (d) Two different LibriSpeech talkers at the same level. Measured: 11 of the 12 pairs read
/// several voices (overlap share 0.042–0.158); one pair (1235 + 446) reads 0.012, below every
/// single-talker clip's maximum of 0.022. Harmonic cancellation only sees a second voice where
/// both are voiced with different pitches at once — a fifth of the voiced frames here — and
/// then in about half of them, so a 4 s mixture gives few frames to count. The test holds 9 of
/// 12: what was measured, less two for that counting noise.
#[test]
fn two_talkers_are_several_voices() {
    let b = bonafide();
    assert_eq!(b.len(), 24);
    let mut several = 0;
    let mut shares = Vec::new();
    for i in 0..12 {
        assert_ne!(b[i].speaker, b[i + 12].speaker);
        let q = quality(&two_voices(&b[i].samples, &b[i + 12].samples));
        shares.push(q.overlap_share);
        if reason(&q) == "several voices" {
            several += 1;
        }
    }
    eprintln!("{several}/12 pairs read several voices; shares {shares:.3?}");
    assert!(several >= 9, "{several}/12: {shares:?}");
}
