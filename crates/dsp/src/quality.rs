//! When a recording is unfit for a synthetic-speech verdict: too noisy, music, or several
//! voices at once.
//!
//! A countermeasure scores the fine structure of one talker's voice. When that structure is
//! buried in noise, replaced by music or mixed with a second talker, its score says nothing
//! about whether the voice was synthesised, so the detector answers "inconclusive" with the
//! reason instead. [`assess`] measures three things on plain samples plus the speech segments
//! from [`crate::vad`]; [`SpeechQuality::unfit`] turns them into a reason.
//!
//! * **Speech-to-noise ratio.** Mean-removed power of 20 ms chunks. The noise floor is the 10th
//!   percentile of all chunks (pauses, or the quietest moments when noise fills the pauses);
//!   the speech level is the mean over the speech segments. The floor is subtracted from the
//!   speech level before the ratio, so speech and noise of equal power read about 0 dB, not
//!   +3 dB.
//! * **Music share.** Over 1 s blocks (0.5 s apart), two classic speech/music cues: the share
//!   of the block's energy carried by *steady partials* (peaks of 64 ms spectra that stay
//!   within 4 Hz or 0.4 % of where they started for six frames, ~160 ms: notes hold their
//!   pitch, voices glide), and
//!   Scheirer & Slaney's (1997) *low-energy-frame ratio* (syllables and pauses make many 20 ms
//!   frames quieter than half the block's mean RMS; music rarely does). A block is music when
//!   both say so; the share counts blocks that are mostly speech according to the segments.
//! * **Overlap share.** Multi-pitch analysis by harmonic cancellation (de Cheveigné 1993). In
//!   each speech frame the signal, band-limited to 60–1800 Hz, gets a YIN-style normalised
//!   periodicity over lags of 75–400 Hz. Where it is voiced, the dominant period T1 is cancelled
//!   (`y[t] = x[t] - x[t - T1]`, fractional T1), and the residual is searched for a clear
//!   second period T2 that is no multiple or sub-multiple of T1. One alternation refines both
//!   (cancel T2, re-estimate T1 without the second voice, cancel it, re-estimate T2). A frame
//!   has two voices when the residual holds a fair part of the power, is itself clearly
//!   periodic, and the second voice is not far below the recording's speech level. The share
//!   is over voiced frames.
//!
//! Everything runs on frames with a 20 ms hop and costs a few FFTs of 512 points per frame;
//! memory grows only with the number of frames. The analysis is deterministic.

use crate::stft::Stft;
use crate::vad::Segment;
use realfft::num_complex::Complex;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};
use std::sync::Arc;

/// Where the gates sit. The defaults are for the detector's 8 kHz input; every analysis length
/// is derived from `sample_rate`, so other rates work too.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QualityConfig {
    pub sample_rate: u32,
    /// Below this speech-to-noise ratio (dB) the recording is too noisy. At 5 dB the noise
    /// carries a quarter of the power even in the speech frames, and since speech power falls
    /// by ~6 dB per octave above 500 Hz, everything above about 1 kHz — where vocoder and
    /// waveform artefacts live — is then dominated by noise. Clean and lightly noisy speech
    /// reads 13–75 dB here; speech in 0 dB white or pink noise reads -1…+2 dB.
    pub min_snr_db: f32,
    /// Above this share of 1 s speech blocks that look like music, the recording is music.
    /// "Most blocks": a few music-like blocks happen where a held, flat-pitched vowel (common
    /// in TTS) or a pause filled by background music meets a quiet block.
    pub max_music_share: f32,
    /// Above this share of voiced frames with a second voice, several people speak at once.
    /// A single clean talker passes the per-frame test in at most ~0.7 % of voiced frames;
    /// over 150 voiced frames (a 4 s clip) reaching 3.5 % then takes six false frames, which
    /// a Poisson count with mean ~1 does with probability below 10⁻³. Two talkers at equal
    /// level are detected in roughly half the frames where both are voiced with different
    /// pitches, which made 0.04–0.16 on 11 of 12 real 0 dB mixtures of 4 s clips; the value
    /// sits between the highest single-talker clip (0.022) and those mixtures (0.042 and up).
    /// It is calibrated on those clips, with little room on either side.
    pub max_overlap_share: f32,
}

impl Default for QualityConfig {
    fn default() -> Self {
        Self {
            sample_rate: 8_000,
            min_snr_db: 5.0,
            max_music_share: 0.5,
            max_overlap_share: 0.035,
        }
    }
}

/// What [`assess`] measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpeechQuality {
    /// Speech-to-noise ratio in dB, clamped to [-60, 120]. Without speech segments, the chunks
    /// at least 3 dB above the floor stand in for speech; with nothing above the floor it is
    /// 0 dB.
    pub snr_db: f32,
    /// Share of the 1 s speech blocks that look like music, 0–1.
    pub music_share: f32,
    /// Share of voiced speech frames with a second voice, 0–1. Fewer than 1 s of voiced
    /// frames count as 1 s, so a handful of frames cannot make a large share.
    pub overlap_share: f32,
}

/// Why a recording is unfit for a verdict.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Unfit {
    TooNoisy { snr_db: f32 },
    Music { share: f32 },
    SeveralVoices { share: f32 },
}

impl SpeechQuality {
    /// The reason the recording is unfit, if any. When several apply, the most specific cause
    /// wins: music first (music fills the pauses and holds several notes, so it also reads as
    /// low SNR and as several voices), then several voices (a second talker also fills the
    /// pauses), then noise.
    pub fn unfit(&self, config: &QualityConfig) -> Option<Unfit> {
        if self.music_share > config.max_music_share {
            Some(Unfit::Music {
                share: self.music_share,
            })
        } else if self.overlap_share > config.max_overlap_share {
            Some(Unfit::SeveralVoices {
                share: self.overlap_share,
            })
        } else if self.snr_db < config.min_snr_db {
            Some(Unfit::TooNoisy {
                snr_db: self.snr_db,
            })
        } else {
            None
        }
    }
}

/// Frame advance, seconds: chunks for the energies, STFT frames and pitch frames all step by it.
const HOP_S: f32 = 0.02;
/// The noise floor is this percentile of chunk powers. Below 15 % so that clean speech with
/// only short pauses still finds its floor in them; above a few % so that the floor of steady
/// noise is not biased far below its mean (for white noise in 20 ms chunks the 10th percentile
/// sits ~0.7 dB under the mean).
const NOISE_PERCENTILE: f32 = 0.10;

/// Steady partials are looked for in this band (Hz): above the lowest voice harmonics, below
/// the 8 kHz band edge.
const PARTIAL_BAND_HZ: (f32, f32) = (150.0, 3_500.0);
/// A partial is steady once it has lasted this many frames: six 64 ms spectra 20 ms apart
/// span ~160 ms — a short note, but longer than a natural voice holds its pitch this still.
const PARTIAL_MIN_FRAMES: usize = 6;
/// A steady partial stays within this many Hz of where it started, or this relative deviation
/// when larger (0.4 % ≈ 7 cents; natural F0 drifts by more within 160 ms, flat TTS vowels
/// sometimes do not — the low-energy ratio below catches those).
const PARTIAL_TOL_HZ: f32 = 4.0;
const PARTIAL_TOL_REL: f32 = 0.004;
/// Spectra for the partials: Hann windows of at least this length (64 ms), which resolve the
/// partials of notes a major third apart down to about 200 Hz.
const PARTIAL_WIN_S: f32 = 0.064;
/// A spectral peak must rise this far (power ratio, 10 dB) above the lowest point within three
/// bins (47 Hz) on each side.
const PARTIAL_PROMINENCE: f32 = 10.0;
/// Music blocks: 1 s long, every 0.5 s.
const BLOCK_FRAMES: usize = 50;
const BLOCK_HOP_FRAMES: usize = 25;
/// A block is music-like when steady partials carry at least this share of its energy…
/// (measured: 90 % of speech blocks under 0.17, flat TTS vowels up to 0.72; every block of
/// synthesized music 0.72 or more).
const MUSIC_STEADY_SHARE: f32 = 0.3;
/// …and fewer than this share of its 20 ms frames are below half the mean RMS (Scheirer &
/// Slaney's low-energy ratio; speech blocks measured 0.36 and up where partials were steady,
/// plucked music with rests up to 0.26).
const MUSIC_MAX_LOW_ENERGY: f32 = 0.3;

/// Fundamental frequencies searched, Hz.
const F0_RANGE_HZ: (f32, f32) = (75.0, 400.0);
/// Integration window of the periodicity, seconds: about two periods of a low voice, short
/// enough that pitch moves little within it.
const PITCH_WIN_S: f32 = 0.032;
/// Band of the pitch analysis, Hz: where voice harmonics are strong and resolved, and a
/// fractional-lag error cancels well.
const PITCH_BAND_HZ: (f32, f32) = (60.0, 1_800.0);
/// A frame is voiced when its best normalised periodicity (1 − YIN's aperiodicity) reaches
/// this (Praat's default voicing threshold is 0.45 on a similar scale).
const VOICED_MIN: f32 = 0.45;
/// A second voice must leave at least this share of the power after the first is cancelled:
/// it is then at most ~7.5 dB below the dominant voice.
const SECOND_SHARE_MIN: f32 = 0.15;
/// …and the residual must be at least this periodic at its own period.
const SECOND_PERIODICITY_MIN: f32 = 0.7;
/// Periods within ±10 % (log ratio) of 1–4 times, or 1/2–1/4 of, the first period are that
/// voice's own remains (pitch moving within the window, octave errors), not a second voice.
const HARMONIC_TOL: f32 = 0.1;
const HARMONIC_MULTIPLES: usize = 4;
/// A second voice more than 6 dB below the recording's speech level (under a quarter of its
/// power) is background — music or chatter under the talker — not an overlapping talker.
const SECOND_LEVEL_DB: f32 = -6.0;
/// The overlap share is over at least this many voiced frames (1 s).
const MIN_VOICED_FRAMES: usize = 50;

/// Measures a recording: `samples` mono in [-1, 1] at `config.sample_rate`, `speech` the
/// segments [`crate::vad::speech_segments`] found in them (in any order).
pub fn assess(samples: &[f32], speech: &[Segment], config: &QualityConfig) -> SpeechQuality {
    let sr = config.sample_rate as f32;
    let hop = ((sr * HOP_S).round() as usize).max(1);

    // Chunk powers (mean removed) and which chunks are speech.
    let n_chunks = samples.len() / hop;
    let mut segments = speech.to_vec();
    segments.sort_by_key(|s| s.start);
    let mut chunk_power = Vec::with_capacity(n_chunks);
    let mut chunk_speech = Vec::with_capacity(n_chunks);
    let mut next_segment = 0;
    for (c, chunk) in samples.chunks_exact(hop).enumerate() {
        let mean = chunk.iter().sum::<f32>() / hop as f32;
        let power = chunk.iter().map(|s| (s - mean) * (s - mean)).sum::<f32>() / hop as f32;
        chunk_power.push(power);
        let centre = c * hop + hop / 2;
        while next_segment < segments.len() && segments[next_segment].end <= centre {
            next_segment += 1;
        }
        chunk_speech.push(
            segments
                .get(next_segment)
                .is_some_and(|s| s.start <= centre),
        );
    }
    let (snr_db, speech_power) = speech_to_noise(&chunk_power, &chunk_speech);

    let music_share = music_share(samples, sr, hop, &chunk_power, &chunk_speech);
    let overlap_share = overlap_share(samples, sr, hop, &chunk_power, &chunk_speech, speech_power);
    SpeechQuality {
        snr_db,
        music_share,
        overlap_share,
    }
}

/// (SNR in dB, speech power without the noise).
fn speech_to_noise(chunk_power: &[f32], chunk_speech: &[bool]) -> (f32, f32) {
    if chunk_power.is_empty() {
        return (0.0, 0.0);
    }
    let mut sorted = chunk_power.to_vec();
    let k = ((sorted.len() - 1) as f32 * NOISE_PERCENTILE) as usize;
    let (_, &mut floor, _) = sorted.select_nth_unstable_by(k, f32::total_cmp);
    let floor = floor.max(1e-12);
    let mean_of = |keep: &dyn Fn(usize) -> bool| {
        let (mut sum, mut n) = (0.0f64, 0usize);
        for (i, &p) in chunk_power.iter().enumerate() {
            if keep(i) {
                sum += p as f64;
                n += 1;
            }
        }
        (n > 0).then(|| (sum / n as f64) as f32)
    };
    let level = mean_of(&|i| chunk_speech[i])
        .or_else(|| mean_of(&|i| chunk_power[i] > 2.0 * floor))
        .unwrap_or(floor);
    let speech = (level - floor).max(0.0);
    let snr = 10.0 * (speech.max(1e-9 * floor) / floor).log10();
    let snr = if speech == 0.0 { 0.0 } else { snr };
    (snr.clamp(-60.0, 120.0), speech)
}

fn music_share(
    samples: &[f32],
    sr: f32,
    hop: usize,
    chunk_power: &[f32],
    chunk_speech: &[bool],
) -> f32 {
    let n_fft = ((sr * PARTIAL_WIN_S) as usize).next_power_of_two();
    let win = n_fft;
    let bin_hz = sr / n_fft as f32;
    let mut stft = Stft::new(n_fft, win, hop);
    let n_frames = stft.n_frames(samples.len());
    let mut tracker = PartialTracker::new(n_fft / 2 + 1, bin_hz);
    let mut power = Vec::with_capacity(stft.n_bins());
    let mut steady = Vec::with_capacity(n_frames);
    let mut total = Vec::with_capacity(n_frames);
    for f in 0..n_frames {
        power.clear();
        stft.power(&samples[f * hop..f * hop + win], &mut power);
        tracker.push(&power, &mut steady, &mut total);
    }

    let blocks: Vec<(usize, usize)> = if n_frames == 0 {
        Vec::new()
    } else if n_frames <= BLOCK_FRAMES {
        vec![(0, n_frames)]
    } else {
        (0..=(n_frames - BLOCK_FRAMES) / BLOCK_HOP_FRAMES)
            .map(|b| (b * BLOCK_HOP_FRAMES, b * BLOCK_HOP_FRAMES + BLOCK_FRAMES))
            .collect()
    };
    let (mut counted, mut music) = (0usize, 0usize);
    for (a, b) in blocks {
        // Frame f starts in chunk f: a block holds the chunks its frames start in.
        let speech_frames = chunk_speech[a..b].iter().filter(|&&s| s).count();
        if 2 * speech_frames < b - a {
            continue;
        }
        counted += 1;
        let energy: f32 = total[a..b].iter().sum();
        let steady_share = if energy > 0.0 {
            steady[a..b].iter().sum::<f32>() / energy
        } else {
            0.0
        };
        let chunks = &chunk_power[a..b];
        let mean_rms = chunks.iter().map(|p| p.sqrt()).sum::<f32>() / chunks.len() as f32;
        let low = chunks.iter().filter(|p| p.sqrt() < 0.5 * mean_rms).count();
        let low_energy_ratio = low as f32 / chunks.len() as f32;
        if steady_share >= MUSIC_STEADY_SHARE && low_energy_ratio < MUSIC_MAX_LOW_ENERGY {
            music += 1;
        }
    }
    if counted == 0 {
        0.0
    } else {
        music as f32 / counted as f32
    }
}

fn overlap_share(
    samples: &[f32],
    sr: f32,
    hop: usize,
    chunk_power: &[f32],
    chunk_speech: &[bool],
    speech_power: f32,
) -> f32 {
    let w = (sr * PITCH_WIN_S).round() as usize;
    let tau_min = (sr / F0_RANGE_HZ.1).ceil() as usize;
    let tau_max = (sr / F0_RANGE_HZ.0).floor() as usize;
    let mut pitch = MultiPitch::new(w, tau_min, tau_max);
    let mut band = Rolling {
        filter: BandLimit::new(sr, PITCH_BAND_HZ.0, PITCH_BAND_HZ.1),
        buf: Vec::new(),
        base: 0,
    };
    let min_second = speech_power * 10f32.powf(SECOND_LEVEL_DB / 10.0);
    let (before, after) = (pitch.before(), pitch.after());
    let (mut voiced, mut two) = (0usize, 0usize);
    for f in 0..chunk_power.len() {
        let start = f * hop;
        let (a, b) = (start.saturating_sub(before), start + after);
        if b > samples.len() {
            break;
        }
        band.advance(samples, a, b);
        // The pitch window covers this chunk and part of the next.
        let centre_chunk = (start + w / 2) / hop;
        if start < before || !chunk_speech.get(centre_chunk).copied().unwrap_or(false) {
            continue;
        }
        let Some(share) = pitch.second_voice(band.get(a, b)) else {
            continue;
        };
        voiced += 1;
        let frame_power = 0.5 * (chunk_power[f] + chunk_power.get(f + 1).copied().unwrap_or(0.0));
        if share.is_some_and(|e| e * frame_power >= min_second) {
            two += 1;
        }
    }
    two as f32 / voiced.max(MIN_VOICED_FRAMES) as f32
}

/// Frames a partial has to persist; its energies are kept until then.
#[derive(Clone, Copy)]
struct Track {
    /// Frames so far; 0 = no peak in this bin.
    len: usize,
    /// Frequency (fractional bin) where it started.
    start: f32,
    /// Peak energies of its first `PARTIAL_MIN_FRAMES - 1` frames.
    early: [f32; PARTIAL_MIN_FRAMES],
}

const NO_TRACK: Track = Track {
    len: 0,
    start: 0.0,
    early: [0.0; PARTIAL_MIN_FRAMES],
};

/// Follows spectral peaks from frame to frame and books the energy of those that stay put.
struct PartialTracker {
    lo: usize,
    hi: usize,
    tol_bins: f32,
    prev: Vec<Track>,
    cur: Vec<Track>,
}

impl PartialTracker {
    fn new(n_bins: usize, bin_hz: f32) -> Self {
        Self {
            lo: ((PARTIAL_BAND_HZ.0 / bin_hz).ceil() as usize).max(5),
            hi: ((PARTIAL_BAND_HZ.1 / bin_hz).floor() as usize).min(n_bins.saturating_sub(6)),
            tol_bins: PARTIAL_TOL_HZ / bin_hz,
            prev: vec![NO_TRACK; n_bins],
            cur: vec![NO_TRACK; n_bins],
        }
    }

    /// Appends this frame's band energy to `total` and its steady-partial energy to `steady`;
    /// a partial that just became steady also books its earlier frames.
    fn push(&mut self, p: &[f32], steady: &mut Vec<f32>, total: &mut Vec<f32>) {
        let f = steady.len();
        steady.push(0.0);
        if self.lo > self.hi {
            total.push(0.0);
            return;
        }
        total.push(p[self.lo..=self.hi].iter().sum());
        for t in &mut self.cur {
            t.len = 0;
        }
        let m = PARTIAL_MIN_FRAMES;
        for b in self.lo..=self.hi {
            let v = p[b];
            if !(v > p[b - 1] && v >= p[b + 1]) {
                continue;
            }
            let left = p[b - 3..b].iter().fold(f32::MAX, |m, &x| m.min(x));
            let right = p[b + 1..=b + 3].iter().fold(f32::MAX, |m, &x| m.min(x));
            if v <= PARTIAL_PROMINENCE * left.max(right) {
                continue;
            }
            // Parabolic interpolation of the log spectrum: the peak's fractional bin.
            let (l, c, r) = (p[b - 1].max(1e-30).ln(), v.ln(), p[b + 1].max(1e-30).ln());
            let den = l - 2.0 * c + r;
            let delta = if den < 0.0 {
                (0.5 * (l - r) / den).clamp(-0.5, 0.5)
            } else {
                0.0
            };
            let freq = b as f32 + delta;
            let tol = self.tol_bins.max(PARTIAL_TOL_REL * freq);
            let energy: f32 = p[b - 2..=b + 2].iter().sum();
            let continued = self.prev[b - 1..=b + 1]
                .iter()
                .filter(|t| t.len > 0 && (freq - t.start).abs() <= tol)
                .max_by_key(|t| t.len);
            let mut track = match continued {
                Some(t) => Track {
                    len: t.len + 1,
                    ..*t
                },
                None => Track {
                    len: 1,
                    start: freq,
                    early: [0.0; PARTIAL_MIN_FRAMES],
                },
            };
            if track.len < m {
                track.early[track.len - 1] = energy;
            } else {
                if track.len == m {
                    for (k, &e) in track.early[..m - 1].iter().enumerate() {
                        steady[f + 1 - m + k] += e;
                    }
                }
                steady[f] += energy;
            }
            self.cur[b] = track;
        }
        std::mem::swap(&mut self.prev, &mut self.cur);
    }
}

/// Second-order Butterworth low-pass after a one-pole DC blocker (bilinear transform).
struct BandLimit {
    b: [f32; 3],
    a: [f32; 2],
    state: [f32; 2],
    dc_pole: f32,
    dc_x: f32,
    dc_y: f32,
}

impl BandLimit {
    fn new(sample_rate: f32, high_pass_hz: f32, low_pass_hz: f32) -> Self {
        let cutoff = low_pass_hz.min(0.45 * sample_rate);
        let k = (std::f32::consts::PI * cutoff / sample_rate).tan();
        let q = std::f32::consts::FRAC_1_SQRT_2;
        let norm = 1.0 / (1.0 + k / q + k * k);
        let b0 = k * k * norm;
        Self {
            b: [b0, 2.0 * b0, b0],
            a: [2.0 * (k * k - 1.0) * norm, (1.0 - k / q + k * k) * norm],
            state: [0.0; 2],
            dc_pole: (-2.0 * std::f32::consts::PI * high_pass_hz / sample_rate).exp(),
            dc_x: 0.0,
            dc_y: 0.0,
        }
    }

    fn step(&mut self, x: f32) -> f32 {
        let y = x - self.dc_x + self.dc_pole * self.dc_y;
        self.dc_x = x;
        self.dc_y = y;
        // Transposed direct form II.
        let out = self.b[0] * y + self.state[0];
        self.state[0] = self.b[1] * y - self.a[0] * out + self.state[1];
        self.state[1] = self.b[2] * y - self.a[1] * out;
        out
    }
}

/// The band-limited signal over a sliding stretch `[base, base + buf.len())`, so that memory
/// does not grow with the input.
struct Rolling {
    filter: BandLimit,
    buf: Vec<f32>,
    base: usize,
}

impl Rolling {
    /// Filters up to `end` (exclusive) and forgets what lies before `start`.
    fn advance(&mut self, x: &[f32], start: usize, end: usize) {
        let mut next = self.base + self.buf.len();
        while next < end.min(x.len()) {
            let v = self.filter.step(x[next]);
            self.buf.push(v);
            next += 1;
        }
        if start > self.base {
            let k = (start - self.base).min(self.buf.len());
            self.buf.drain(..k);
            self.base += k;
        }
    }

    fn get(&self, start: usize, end: usize) -> &[f32] {
        &self.buf[start - self.base..end - self.base]
    }
}

/// `n[τ] = 2·Σ x[j]·x[j+τ] / (Σ x[j]² + Σ x[j+τ]²)` over `j < w`: one minus YIN's normalised
/// difference `Σ (x[j] - x[j+τ])² / (Σ x[j]² + Σ x[j+τ]²)`, 1 for a perfectly periodic
/// stretch at lag τ. The cross-correlation goes through one real FFT pair.
struct Periodicity {
    w: usize,
    tau_max: usize,
    fwd: Arc<dyn RealToComplex<f32>>,
    inv: Arc<dyn ComplexToReal<f32>>,
    a: Vec<f32>,
    b: Vec<f32>,
    sa: Vec<Complex<f32>>,
    sb: Vec<Complex<f32>>,
    scratch: Vec<Complex<f32>>,
    corr: Vec<f32>,
}

impl Periodicity {
    fn new(w: usize, tau_max: usize) -> Self {
        let n = (w + tau_max + 2).next_power_of_two();
        let mut planner = RealFftPlanner::<f32>::new();
        let fwd = planner.plan_fft_forward(n);
        let inv = planner.plan_fft_inverse(n);
        let scratch_len = fwd.get_scratch_len().max(inv.get_scratch_len());
        Self {
            w,
            tau_max,
            a: fwd.make_input_vec(),
            b: fwd.make_input_vec(),
            sa: fwd.make_output_vec(),
            sb: fwd.make_output_vec(),
            scratch: vec![Complex::default(); scratch_len],
            corr: inv.make_output_vec(),
            fwd,
            inv,
        }
    }

    /// `seg` holds at least `w + tau_max + 2` samples; fills `out[..tau_max + 2]` and returns
    /// the energy of the first `w` samples.
    fn compute(&mut self, seg: &[f32], out: &mut [f32]) -> f32 {
        let (w, span) = (self.w, self.w + self.tau_max + 2);
        self.a[..w].copy_from_slice(&seg[..w]);
        self.a[w..].fill(0.0);
        self.b[..span].copy_from_slice(&seg[..span]);
        self.b[span..].fill(0.0);
        self.fwd
            .process_with_scratch(&mut self.a, &mut self.sa, &mut self.scratch)
            .expect("buffers come from the plan itself");
        self.fwd
            .process_with_scratch(&mut self.b, &mut self.sb, &mut self.scratch)
            .expect("buffers come from the plan itself");
        for (a, b) in self.sa.iter_mut().zip(&self.sb) {
            *a = a.conj() * b;
        }
        let last = self.sa.len() - 1;
        self.sa[0].im = 0.0;
        self.sa[last].im = 0.0;
        self.inv
            .process_with_scratch(&mut self.sa, &mut self.corr, &mut self.scratch)
            .expect("buffers come from the plan itself");
        let scale = 1.0 / self.corr.len() as f32;
        let e0: f32 = seg[..w].iter().map(|v| v * v).sum();
        let mut et = e0;
        for (tau, o) in out[..self.tau_max + 2].iter_mut().enumerate() {
            if tau > 0 {
                et += seg[tau + w - 1] * seg[tau + w - 1] - seg[tau - 1] * seg[tau - 1];
            }
            let den = e0 + et.max(0.0);
            *o = if den > 0.0 {
                2.0 * self.corr[tau] * scale / den
            } else {
                0.0
            };
        }
        e0
    }
}

/// Dominant period, its cancellation, and the search for a second one.
struct MultiPitch {
    tau_min: usize,
    tau_max: usize,
    periodicity: Periodicity,
    nx: Vec<f32>,
    ny: Vec<f32>,
    y: Vec<f32>,
}

impl MultiPitch {
    fn new(w: usize, tau_min: usize, tau_max: usize) -> Self {
        Self {
            tau_min,
            tau_max,
            periodicity: Periodicity::new(w, tau_max),
            nx: vec![0.0; tau_max + 2],
            ny: vec![0.0; tau_max + 2],
            y: vec![0.0; w + tau_max + 2],
        }
    }

    /// Samples of history an analysis needs before its frame start (for the cancellation).
    fn before(&self) -> usize {
        self.tau_max + 2
    }

    /// Samples it needs from the frame start on.
    fn after(&self) -> usize {
        self.y.len()
    }

    /// `seg`: the band-limited signal from `before()` samples ahead of the frame start to
    /// `after()` samples past it. `None` when the frame is not voiced; otherwise the share of
    /// power a second voice takes, if there is one.
    fn second_voice(&mut self, seg: &[f32]) -> Option<Option<f32>> {
        let pre = self.before();
        if self.periodicity.compute(&seg[pre..], &mut self.nx) <= 0.0 {
            return None;
        }
        let (t1, h1) = best_peak(&self.nx, self.tau_min, self.tau_max, |_| true)?;
        if h1 < VOICED_MIN {
            return None;
        }
        let related = |a: f32, b: f32| {
            let q = (a / b).ln().abs();
            (1..=HARMONIC_MULTIPLES).any(|m| (q - (m as f32).ln()).abs() <= HARMONIC_TOL)
        };
        let (share, t2) = self.cancel_and_search(seg, t1, &related);
        let Some((t2, _)) = t2 else {
            return Some(None);
        };
        if share < SECOND_SHARE_MIN {
            return Some(None);
        }
        // Joint refinement: remove the second voice, re-estimate the first without it (near
        // T1), cancel that and search for the second voice again.
        cancel(seg, pre, t2, &mut self.y);
        self.periodicity.compute(&self.y, &mut self.ny);
        let t1 = best_peak(&self.ny, self.tau_min, self.tau_max, |tau| {
            (tau / t1).ln().abs() < HARMONIC_TOL
        })
        .map_or(t1, |(t, _)| t);
        let (share, t2) = self.cancel_and_search(seg, t1, &related);
        let second =
            t2.is_some_and(|(_, h2)| h2 >= SECOND_PERIODICITY_MIN) && share >= SECOND_SHARE_MIN;
        Some(second.then_some(share))
    }

    /// Cancels period `t1` from `seg`; returns the residual's share of the power (of `2·E`,
    /// what cancellation leaves of an aperiodic signal) and its best period unrelated to `t1`
    /// with that period's periodicity.
    fn cancel_and_search(
        &mut self,
        seg: &[f32],
        t1: f32,
        related: &dyn Fn(f32, f32) -> bool,
    ) -> (f32, Option<(f32, f32)>) {
        let pre = self.before();
        let ex: f32 = seg[pre..pre + self.periodicity.w]
            .iter()
            .map(|v| v * v)
            .sum();
        cancel(seg, pre, t1, &mut self.y);
        let ey = self.periodicity.compute(&self.y, &mut self.ny);
        let peak = best_peak(&self.ny, self.tau_min, self.tau_max, |tau| {
            !related(tau, t1)
        });
        (ey / (2.0 * ex).max(f32::MIN_POSITIVE), peak)
    }
}

/// `y[i] = x[i] - x[i - lag]` for the stretch after the first `pre` samples of `seg`, the
/// fractional part of the lag by linear interpolation.
fn cancel(seg: &[f32], pre: usize, lag: f32, y: &mut [f32]) {
    let whole = lag.floor() as usize;
    let frac = lag - whole as f32;
    for (i, out) in y.iter_mut().enumerate() {
        let j = pre + i;
        let delayed = (1.0 - frac) * seg[j - whole] + frac * seg[j - whole - 1];
        *out = seg[j] - delayed;
    }
}

/// The highest local maximum of `n` over lags `lo..=hi` whose refined lag passes `keep`,
/// refined by a parabola through its neighbours: (lag, value).
fn best_peak(n: &[f32], lo: usize, hi: usize, keep: impl Fn(f32) -> bool) -> Option<(f32, f32)> {
    let mut best: Option<(f32, f32)> = None;
    for tau in lo.max(1)..=hi {
        let (a, b, c) = (n[tau - 1], n[tau], n[tau + 1]);
        if !(b > a && b >= c) {
            continue;
        }
        let den = a - 2.0 * b + c;
        let delta = if den < 0.0 {
            (0.5 * (a - c) / den).clamp(-0.5, 0.5)
        } else {
            0.0
        };
        let lag = tau as f32 + delta;
        let value = b - 0.25 * (a - c) * delta;
        if keep(lag) && best.is_none_or(|(_, v)| value > v) {
            best = Some((lag, value));
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vad::{VadConfig, speech_segments};
    use std::f32::consts::TAU;

    const RATE: f32 = 8_000.0;

    fn segments(x: &[f32]) -> Vec<Segment> {
        speech_segments(
            x,
            &VadConfig {
                sample_rate: 8_000,
                ..VadConfig::default()
            },
        )
    }

    fn quality(x: &[f32]) -> SpeechQuality {
        assess(x, &segments(x), &QualityConfig::default())
    }

    /// Seeded Gaussian noise (xorshift + Box-Muller).
    fn noise(len: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut uniform = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 + 0.5) / (1u64 << 24) as f32
        };
        (0..len)
            .map(|_| (-2.0 * uniform().ln()).sqrt() * (TAU * uniform()).cos())
            .collect()
    }

    /// A voiced, talker-like signal: harmonics falling 6 dB per octave on an F0 that glides
    /// around `f0` (±12 % at 0.7 Hz plus a slower drift), cut into ~250 ms syllables by a
    /// 2 Hz envelope with pauses between them.
    fn talker(seconds: f32, f0: f32, phase: f32) -> Vec<f32> {
        let n = (seconds * RATE) as usize;
        let mut theta = 0.0f32;
        (0..n)
            .map(|i| {
                let t = i as f32 / RATE;
                let f = f0
                    * (1.0 + 0.12 * (TAU * 0.7 * t + phase).sin() + 0.05 * (TAU * 0.23 * t).sin());
                theta = (theta + TAU * f / RATE) % TAU;
                let env = (TAU * 2.0 * t + phase).sin().max(0.0).powi(2);
                let mut s = 0.0;
                let mut k = 1.0;
                while k * f < 3_500.0 {
                    s += (k * theta).sin() / k;
                    k += 1.0;
                }
                0.2 * env * s
            })
            .collect()
    }

    fn power(x: &[f32]) -> f32 {
        x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32
    }

    /// Mean power over the speech segments: the level an SNR refers to.
    fn active_level(x: &[f32]) -> f32 {
        let segs = segments(x);
        let n: usize = segs.iter().map(|s| s.end - s.start).sum();
        segs.iter()
            .map(|s| x[s.start..s.end].iter().map(|v| v * v).sum::<f32>())
            .sum::<f32>()
            / n as f32
    }

    fn add(x: &[f32], y: &[f32], gain: f32) -> Vec<f32> {
        x.iter().zip(y).map(|(a, b)| a + gain * b).collect()
    }

    #[test]
    fn snr_of_a_voiced_signal_in_white_noise() {
        let clean = talker(4.0, 130.0, 0.0);
        let level = active_level(&clean);
        for (snr, seed) in [(0.0f32, 1u64), (10.0, 2), (20.0, 3)] {
            let n = noise(clean.len(), seed);
            let gain = (level / 10f32.powf(snr / 10.0) / power(&n)).sqrt();
            let q = quality(&add(&clean, &n, gain));
            // Within 2 dB: a ratio taken without removing the floor from the speech level
            // would read 0 dB as +3 dB.
            assert!((q.snr_db - snr).abs() < 2.0, "{snr} dB read {q:?}");
            let noisy = matches!(
                q.unfit(&QualityConfig::default()),
                Some(Unfit::TooNoisy { .. })
            );
            assert_eq!(noisy, snr < 5.0, "{snr} dB: {q:?}");
        }
    }

    #[test]
    fn pauses_are_not_noise_and_steady_noise_is() {
        let clean = talker(4.0, 130.0, 0.0);
        let faint = add(&clean, &noise(clean.len(), 4), 1e-4);
        let q = quality(&faint);
        assert!(q.snr_db > 40.0, "{q:?}");
        assert_eq!(q.unfit(&QualityConfig::default()), None);

        let hiss: Vec<f32> = noise(32_000, 5).iter().map(|v| 0.05 * v).collect();
        let all = [Segment {
            start: 0,
            end: hiss.len(),
        }];
        let q = assess(&hiss, &all, &QualityConfig::default());
        assert!(q.snr_db < 3.0, "{q:?}");
    }

    #[test]
    fn one_gliding_voice_is_not_several_voices() {
        for (f0, phase) in [(110.0, 0.0), (150.0, 1.0), (210.0, 2.0)] {
            let q = quality(&talker(4.0, f0, phase));
            assert!(q.overlap_share < 0.01, "{f0} Hz: {q:?}");
            assert_eq!(q.unfit(&QualityConfig::default()), None, "{f0} Hz");
        }
    }

    #[test]
    fn a_sequence_of_harmonic_tones_is_one_voice() {
        // Notes of 200 ms on different pitches, each its own harmonic series.
        let mut x = Vec::new();
        for (i, f0) in [110.0f32, 165.0, 130.0, 220.0, 98.0, 147.0, 196.0, 123.0]
            .iter()
            .cycle()
            .take(20)
            .enumerate()
        {
            for j in 0..1_600 {
                let t = (i * 1_600 + j) as f32 / RATE;
                let s: f32 = (1..=12)
                    .map(|k| (TAU * k as f32 * f0 * t).sin() / k as f32)
                    .sum();
                x.push(0.2 * s);
            }
        }
        let q = quality(&x);
        assert!(
            q.overlap_share < 0.5 * QualityConfig::default().max_overlap_share,
            "{q:?}"
        );
    }

    #[test]
    fn two_voices_with_different_pitch_are_several() {
        let a = talker(4.0, 115.0, 0.0);
        let b = talker(4.0, 190.0, 0.8);
        let mix = add(&a, &b, (power(&a) / power(&b)).sqrt());
        let q = quality(&mix);
        // Each talker pauses half the time, so both are voiced in about a quarter of the frames.
        assert!(q.overlap_share > 0.1, "{q:?}");
        assert!(
            matches!(
                q.unfit(&QualityConfig::default()),
                Some(Unfit::SeveralVoices { .. })
            ),
            "{q:?}"
        );
    }

    #[test]
    fn held_chords_are_music_and_a_talker_is_not() {
        // Triads of organ-like tones, changing every 400 ms, each with a 20 ms attack and a
        // slow decay.
        let roots = [220.0f32, 174.6, 196.0, 261.6, 246.9];
        let mut x = Vec::new();
        for (i, &root) in roots.iter().cycle().take(10).enumerate() {
            for j in 0..3_200 {
                let t = (i * 3_200 + j) as f32 / RATE;
                let local = j as f32 / RATE;
                let env = (local / 0.02).min(1.0) * (-local / 1.5).exp();
                let mut s = 0.0;
                for ratio in [1.0, 1.26, 1.5] {
                    for k in 1..=6 {
                        s += (TAU * k as f32 * root * ratio * t).sin() / k as f32;
                    }
                }
                x.push(0.1 * env * s);
            }
        }
        let q = quality(&x);
        assert!(q.music_share > 0.9, "{q:?}");
        assert!(matches!(
            q.unfit(&QualityConfig::default()),
            Some(Unfit::Music { .. })
        ));

        let q = quality(&talker(4.0, 130.0, 0.0));
        assert_eq!(q.music_share, 0.0, "{q:?}");
    }

    #[test]
    fn the_most_specific_reason_wins() {
        let config = QualityConfig::default();
        let q = |snr_db, music_share, overlap_share| SpeechQuality {
            snr_db,
            music_share,
            overlap_share,
        };
        assert_eq!(q(30.0, 0.0, 0.0).unfit(&config), None);
        assert_eq!(
            q(2.0, 0.0, 0.0).unfit(&config),
            Some(Unfit::TooNoisy { snr_db: 2.0 })
        );
        assert_eq!(
            q(2.0, 0.0, 0.2).unfit(&config),
            Some(Unfit::SeveralVoices { share: 0.2 })
        );
        assert_eq!(
            q(2.0, 0.8, 0.2).unfit(&config),
            Some(Unfit::Music { share: 0.8 })
        );
    }

    #[test]
    fn short_and_silent_inputs_are_handled() {
        let config = QualityConfig::default();
        for len in [0, 1, 100, 500, 4_000] {
            let x = vec![0.0f32; len];
            let q = assess(&x, &[], &config);
            assert!(q.snr_db.is_finite() && q.music_share == 0.0 && q.overlap_share == 0.0);
        }
        let x = talker(0.3, 130.0, 0.0);
        let q = assess(
            &x,
            &[Segment {
                start: 0,
                end: x.len(),
            }],
            &config,
        );
        assert!(q.snr_db.is_finite());
    }

    #[test]
    fn deterministic() {
        let a = talker(2.0, 115.0, 0.0);
        let b = talker(2.0, 190.0, 0.8);
        let mix = add(&a, &b, 1.0);
        assert_eq!(quality(&mix), quality(&mix));
    }
}
