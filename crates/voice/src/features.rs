//! What the detector hears: telephone-band LFCC frames, normalised against their speech.
//!
//! Everything is analysed at 8 kHz and the filterbank stops at 3.8 kHz, the band a phone line
//! carries. A clip arriving at 8, 16, 22.05 or 44.1 kHz is therefore judged on the same sound,
//! and the model cannot learn "wideband = human, narrowband = machine" (or the reverse) from a
//! corpus whose sources differ in sample rate. The price is the upper band, where some vocoders
//! leave traces; the model card says so.
//!
//! Normalisation is a sliding cepstral mean over ±1.5 s, weighted by the speech mask: a gain
//! change only shifts c0 and a stationary channel colouring only shifts the means, and both
//! cancel; pauses do not drag the mean towards silence. Because the normalisation is local and
//! the network's convolutions are "valid", the features of a window are the same whether it was
//! cut out before or after analysis, which is what lets a scan run the network once per chunk
//! rather than once per window.

use aqiqat_dsp::vad::{LoudLevel, Segment, VadConfig, speech_segments};
use aqiqat_dsp::{Lfcc, LfccConfig, PhaseBands, PhaseConfig};

pub const SAMPLE_RATE: u32 = 8_000;
/// Feature frames per second (10 ms hop).
pub const FRAME_RATE: usize = 100;
pub const HOP: usize = SAMPLE_RATE as usize / FRAME_RATE;
/// Frames per scoring window: 4 s.
pub const WINDOW_FRAMES: usize = 400;
/// Window advance of the timeline: 1 s.
pub const WINDOW_HOP_FRAMES: usize = 100;
/// Half-width of the sliding mean, in frames (1.5 s).
pub const CMN_HALF_WIDTH: usize = 150;

pub fn lfcc_config() -> LfccConfig {
    LfccConfig {
        sample_rate: SAMPLE_RATE,
        n_fft: 256,
        win: 200,
        hop: HOP,
        n_filters: 20,
        f_min: 0.0,
        f_max: 3_800.0,
        n_ceps: 20,
        deltas: true,
    }
}

/// The same filterbank and 10 ms framing at another rate (hop scaled to it): the starting
/// point of a wideband filterbank, and what a speech detector at that rate needs.
pub fn lfcc_config_at(sample_rate: u32) -> LfccConfig {
    LfccConfig {
        sample_rate,
        hop: sample_rate as usize / FRAME_RATE,
        ..lfcc_config()
    }
}

pub fn vad_config() -> VadConfig {
    vad_config_at(SAMPLE_RATE, LoudLevel::default())
}

/// The speech finder of every network's features at another rate and loud-level rule: what
/// cuts a training clip to its speech without building a whole extractor.
pub fn vad_config_at(sample_rate: u32, loud_level: LoudLevel) -> VadConfig {
    VadConfig {
        sample_rate,
        loud_level,
        ..VadConfig::default()
    }
}

/// Normalised features of one stretch of audio: `frames × dims`, row-major.
#[derive(Debug, Clone, Default)]
pub struct Frames {
    pub data: Vec<f32>,
    pub frames: usize,
    pub dims: usize,
    /// Per frame: does it lie inside a speech segment?
    pub speech: Vec<bool>,
}

impl Frames {
    pub fn row(&self, f: usize) -> &[f32] {
        &self.data[f * self.dims..(f + 1) * self.dims]
    }

    /// Frames `start..start + len` as a new, contiguous block.
    pub fn slice(&self, start: usize, len: usize) -> &[f32] {
        &self.data[start * self.dims..(start + len) * self.dims]
    }

    /// Fraction of frames in `start..start + len` that are speech.
    pub fn speech_fraction(&self, start: usize, len: usize) -> f32 {
        let n = self.speech[start..start + len]
            .iter()
            .filter(|&&s| s)
            .count();
        n as f32 / len.max(1) as f32
    }
}

/// Computes [`Frames`] for mono audio at its filterbank's rate (8 kHz unless a training run
/// explores a wideband one), reusing its buffers. Building one plans FFTs and fills filterbank
/// matrices, so callers that analyse many clips build one and clone it (clones share the plans).
#[derive(Clone)]
pub struct FeatureExtractor {
    lfcc: Lfcc,
    /// Per-band phase statistics appended to each frame, when the model card asks for them
    /// (`phase_bands`): not mean-normalised, since a vocoder's phase is wrong all through a
    /// clip and a sliding mean would cancel exactly that.
    phase: Option<PhaseBands>,
    phase_rows: Vec<f32>,
    vad: VadConfig,
}

impl Default for FeatureExtractor {
    fn default() -> Self {
        Self::new(lfcc_config())
    }
}

impl FeatureExtractor {
    /// An extractor for another filterbank over 10 ms-hop frames: what a model card names (see
    /// [`crate::card::FeatureCard::lfcc`]), or what a training run explores. Speech is found
    /// at the filterbank's own rate.
    pub fn new(lfcc: LfccConfig) -> Self {
        Self {
            vad: vad_config_at(lfcc.sample_rate, LoudLevel::default()),
            lfcc: Lfcc::new(lfcc),
            phase: None,
            phase_rows: Vec::new(),
        }
    }

    /// [`Self::new`] with `bands` phase bands over the filterbank's frames and range appended
    /// to every frame (none when `bands` is 0); the reason when they cannot be computed.
    pub fn with_phase_bands(lfcc: LfccConfig, bands: usize) -> Result<Self, String> {
        let mut fx = Self::new(lfcc);
        if bands > 0 {
            fx.phase = Some(PhaseBands::new(PhaseConfig {
                sample_rate: lfcc.sample_rate,
                n_fft: lfcc.n_fft,
                win: lfcc.win,
                hop: lfcc.hop,
                bands,
                f_min: lfcc.f_min,
                f_max: lfcc.f_max,
            })?);
        }
        Ok(fx)
    }

    /// The extractor a model card's features name: filterbank, phase bands and the speech
    /// finder's rule (weights and features always travel together); the reason when this
    /// build cannot compute them.
    pub fn from_card(card: &crate::card::FeatureCard) -> Result<Self, String> {
        Ok(Self::with_phase_bands(card.lfcc()?, card.phase_bands)?
            .with_loud_level(card.speech_loud_level.rule()))
    }

    /// This extractor finding speech by another loud level (what a training run chooses).
    pub fn with_loud_level(mut self, loud_level: LoudLevel) -> Self {
        self.vad.loud_level = loud_level;
        self
    }

    /// Whether `other` computes the same frames and finds the same speech from the same
    /// samples: networks of one recipe (seeds averaged in a fusion) then share one analysis.
    pub fn same_features(&self, other: &Self) -> bool {
        // Over the same filterbank, equal widths mean the same number of phase bands.
        self.lfcc.config() == other.lfcc.config()
            && self.dims() == other.dims()
            && self.vad.loud_level == other.vad.loud_level
    }

    /// The filterbank these features are computed with.
    pub fn lfcc_config(&self) -> &LfccConfig {
        self.lfcc.config()
    }

    /// The rate the samples must have.
    pub fn sample_rate(&self) -> u32 {
        self.lfcc.config().sample_rate
    }

    /// Samples between frames (10 ms).
    pub fn hop(&self) -> usize {
        self.lfcc.config().hop
    }

    /// Samples per analysis frame.
    pub fn frame_len(&self) -> usize {
        self.lfcc.config().win
    }

    pub fn dims(&self) -> usize {
        self.lfcc.config().dims() + self.phase.as_ref().map_or(0, PhaseBands::dims)
    }

    pub fn speech_segments(&self, samples: &[f32]) -> Vec<Segment> {
        speech_segments(samples, &self.vad)
    }

    /// Features of `samples` with the given speech segments (sample offsets into `samples`).
    pub fn compute(&mut self, samples: &[f32], segments: &[Segment]) -> Frames {
        let mut data = Vec::new();
        let frames = self.lfcc.compute(samples, &mut data);
        let dims = self.lfcc.config().dims();
        let (win, hop) = (self.lfcc.config().win, self.hop());
        let speech: Vec<bool> = (0..frames)
            .map(|f| {
                let centre = f * hop + win / 2;
                segments.iter().any(|s| s.start <= centre && centre < s.end)
            })
            .collect();
        sliding_mean_normalise(&mut data, frames, dims, &speech, CMN_HALF_WIDTH);
        let Some(phase) = &mut self.phase else {
            return Frames {
                data,
                frames,
                dims,
                speech,
            };
        };
        let extra = phase.dims();
        let phase_frames = phase.compute(samples, &mut self.phase_rows);
        debug_assert_eq!(phase_frames, frames, "both read the same frames");
        let data = data
            .chunks_exact(dims.max(1))
            .zip(self.phase_rows.chunks_exact(extra))
            .flat_map(|(a, b)| a.iter().chain(b).copied())
            .collect();
        Frames {
            data,
            frames,
            dims: dims + extra,
            speech,
        }
    }
}

/// Subtracts from every frame the mean of the speech frames within ±`half` frames of it (all
/// frames there when none is speech). Prefix sums make it linear in the number of frames.
pub fn sliding_mean_normalise(
    data: &mut [f32],
    frames: usize,
    dims: usize,
    speech: &[bool],
    half: usize,
) {
    if frames == 0 {
        return;
    }
    // prefix[f] = sums over frames < f; one table for speech frames, one for all.
    let mut speech_sum = vec![0f64; (frames + 1) * dims];
    let mut all_sum = vec![0f64; (frames + 1) * dims];
    let mut speech_count = vec![0usize; frames + 1];
    for f in 0..frames {
        let (prev, next) = (f * dims, (f + 1) * dims);
        for d in 0..dims {
            let v = data[f * dims + d] as f64;
            all_sum[next + d] = all_sum[prev + d] + v;
            speech_sum[next + d] = speech_sum[prev + d] + if speech[f] { v } else { 0.0 };
        }
        speech_count[f + 1] = speech_count[f] + speech[f] as usize;
    }
    for f in 0..frames {
        let lo = f.saturating_sub(half);
        let hi = (f + half + 1).min(frames);
        let n_speech = speech_count[hi] - speech_count[lo];
        let (table, n) = if n_speech > 0 {
            (&speech_sum, n_speech)
        } else {
            (&all_sum, hi - lo)
        };
        for d in 0..dims {
            let mean = (table[hi * dims + d] - table[lo * dims + d]) / n as f64;
            data[f * dims + d] -= mean as f32;
        }
    }
}

/// First frames of the scoring windows over `frames` frames: every [`WINDOW_HOP_FRAMES`], the
/// last aligned to the end so no speech is left out. Input shorter than a window is one window.
pub fn window_starts(frames: usize) -> Vec<usize> {
    window_starts_every(frames, WINDOW_FRAMES, WINDOW_HOP_FRAMES)
}

/// [`window_starts`] for windows of `len` frames every `hop` frames.
pub fn window_starts_every(frames: usize, len: usize, hop: usize) -> Vec<usize> {
    if frames <= len {
        return vec![0];
    }
    let mut starts: Vec<usize> = (0..=frames - len).step_by(hop.max(1)).collect();
    if *starts.last().expect("at least one") != frames - len {
        starts.push(frames - len);
    }
    starts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalised_speech_frames_have_zero_local_mean() {
        let frames = 1000;
        let dims = 3;
        let mut data: Vec<f32> = (0..frames * dims)
            .map(|i| 5.0 + (i % 7) as f32 * 0.1)
            .collect();
        let speech = vec![true; frames];
        sliding_mean_normalise(&mut data, frames, dims, &speech, 10_000);
        for d in 0..dims {
            let mean: f32 = (0..frames).map(|f| data[f * dims + d]).sum::<f32>() / frames as f32;
            assert!(mean.abs() < 1e-4, "dim {d}: {mean}");
        }
    }

    #[test]
    fn silence_does_not_move_the_mean_of_speech() {
        // Speech frames at 1.0, silent frames at -50: the speech frames must end near zero.
        let frames = 600;
        let speech: Vec<bool> = (0..frames).map(|f| (200..400).contains(&f)).collect();
        let mut data: Vec<f32> = speech
            .iter()
            .map(|&s| if s { 1.0 } else { -50.0 })
            .collect();
        sliding_mean_normalise(&mut data, frames, 1, &speech, 150);
        assert!(data[200..400].iter().all(|v| v.abs() < 1e-5));
    }

    #[test]
    fn another_rate_keeps_the_10_ms_framing() {
        assert_eq!(lfcc_config_at(SAMPLE_RATE), lfcc_config());
        let wide = lfcc_config_at(16_000);
        assert_eq!((wide.sample_rate, wide.hop), (16_000, 160));
    }

    #[test]
    fn starts_cover_the_end() {
        assert_eq!(window_starts(10), vec![0]);
        assert_eq!(window_starts(WINDOW_FRAMES), vec![0]);
        assert_eq!(window_starts(WINDOW_FRAMES + 150), vec![0, 100, 150]);
        assert_eq!(window_starts_every(300, 250, 20), vec![0, 20, 40, 50]);
        assert_eq!(window_starts_every(290, 250, 20), vec![0, 20, 40]);
    }

    #[test]
    fn a_gain_change_leaves_features_unchanged() {
        // Broadband (seeded noise under a tone), so no band sits at the log floor, where a gain
        // cannot be a pure shift.
        let mut state = 1u32;
        let samples: Vec<f32> = (0..24_000)
            .map(|i| {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                let noise = (state >> 8) as f32 / (1u32 << 24) as f32 - 0.5;
                ((i as f32 * 0.05).sin() * 0.5 + noise) * 0.2
            })
            .collect();
        let louder: Vec<f32> = samples.iter().map(|s| s * 4.0).collect();
        let mut fx = FeatureExtractor::default();
        let segs = fx.speech_segments(&samples);
        let a = fx.compute(&samples, &segs);
        let b = fx.compute(&louder, &segs);
        let worst = a
            .data
            .iter()
            .zip(&b.data)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        assert!(worst < 1e-3, "{worst}");
    }

    /// The detector builds one extractor per member and clones it for every analysis: a clone
    /// of an extractor that has already read other audio must give exactly what a new one
    /// gives (no phase history or buffer contents carried over).
    #[test]
    fn a_clone_after_use_computes_what_a_new_extractor_computes() {
        let config = lfcc_config();
        let clip = |seed: u32, len: usize| -> Vec<f32> {
            let mut state = seed;
            (0..len)
                .map(|i| {
                    state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    let noise = (state >> 8) as f32 / (1u32 << 24) as f32 - 0.5;
                    ((i as f32 * 0.07).sin() * 0.4 + noise) * 0.3
                })
                .collect()
        };
        let (first, second) = (clip(7, 20_000), clip(11, 11_500));
        let mut used = FeatureExtractor::with_phase_bands(config, 16).unwrap();
        let segs = used.speech_segments(&first);
        let before = used.compute(&first, &segs);
        assert_eq!(before.dims, config.dims() + 32);
        let mut clone = used.clone();
        let mut new = FeatureExtractor::with_phase_bands(config, 16).unwrap();
        let segs = new.speech_segments(&second);
        let (a, b) = (clone.compute(&second, &segs), new.compute(&second, &segs));
        assert_eq!((a.frames, a.dims), (b.frames, b.dims));
        assert_eq!(a.data, b.data);
        assert_eq!(a.speech, b.speech);
    }

    #[test]
    fn extractors_that_differ_in_any_part_of_the_card_do_not_share_features() {
        let card = crate::card::FeatureCard::current();
        let plain = FeatureExtractor::from_card(&card).unwrap();
        assert!(plain.same_features(&FeatureExtractor::default()));
        assert!(plain.same_features(&plain.clone()));
        let others = [
            crate::card::FeatureCard {
                phase_bands: 8,
                ..card.clone()
            },
            crate::card::FeatureCard {
                speech_loud_level: crate::card::SpeechLoudLevel::AboveFloor,
                ..card.clone()
            },
            crate::card::FeatureCard {
                n_filters: 40,
                ..card.clone()
            },
        ];
        for other in others {
            let fx = FeatureExtractor::from_card(&other).unwrap();
            assert!(!plain.same_features(&fx), "{other:?}");
            assert!(!fx.same_features(&plain), "{other:?}");
        }
    }
}
