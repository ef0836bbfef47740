//! From 8 kHz samples to window and clip scores: the one path training's development scoring,
//! `aqiqat eval` and `aqiqat scan` share.
//!
//! Silence is never scored. The speech detector finds the speech; the analysis covers the span
//! from its first to its last segment, so silence added before or after a clip changes nothing.
//! Windows that are mostly pause are left out of the clip score. The network runs once per
//! chunk of consecutive windows (its convolutions are unpadded, so this equals running it per
//! window) and the clip's raw score is the mean of its windows' logits.

use crate::card::{Fusion, ShortSpanWindows};
use crate::features::{
    FeatureExtractor, Frames, WINDOW_FRAMES, window_starts, window_starts_every,
};
use aqiqat_dsp::vad::Segment;
use aqiqat_models::tdnn_mfm::TdnnMfm;
use candle_core::{Device, Tensor};

/// Less speech than this is not judged.
pub const MIN_SPEECH_SECONDS: f64 = 1.0;
/// A window counts towards the clip score when at least this share of it is speech.
pub const MIN_WINDOW_SPEECH: f32 = 0.5;
/// Windows per network run: bounds memory on long inputs (≈ 64 s of frames).
const WINDOWS_PER_CHUNK: usize = 60;

/// One scored window of the timeline; times in seconds from the start of the input.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowScore {
    pub start_s: f64,
    pub end_s: f64,
    pub speech_fraction: f32,
    pub logit: f32,
    /// Whether it counts towards the clip score.
    pub counted: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The mean logit of the counted windows.
    Scored(f64),
    /// Why no score was given.
    Unscored(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ClipAnalysis {
    pub duration_s: f64,
    /// Speech segments, in seconds.
    pub speech: Vec<(f64, f64)>,
    pub speech_s: f64,
    pub windows: Vec<WindowScore>,
    pub outcome: Outcome,
}

/// Scores mono `samples` (at `fx`'s rate) with `model`.
pub fn analyse(
    model: &TdnnMfm,
    fx: &mut FeatureExtractor,
    samples: &[f32],
) -> candle_core::Result<ClipAnalysis> {
    analyse_fused(
        &mut [Part {
            model,
            fx,
            samples,
            fusion: Fusion::ALONE,
        }],
        None,
    )
}

/// One network's part in an analysis: the network, its feature extractor, the input at the
/// extractor's rate, and how its logits join the others'.
pub struct Part<'a> {
    pub model: &'a TdnnMfm,
    pub fx: &'a mut FeatureExtractor,
    pub samples: &'a [f32],
    pub fusion: Fusion,
}

/// Scores the same recording with every part and fuses their window logits.
///
/// The first part is the reference: speech is found once, at its rate, and every other part
/// reads the same segments scaled to its own rate, so that all of them cut the same windows
/// (every card has 10 ms frames and 4 s windows; [`crate::card::FeatureCard::lfcc`] refuses
/// any other) and a window's fused logit is the weighted sum of what each network said about
/// the same seconds. The clip score is the mean of the counted windows' fused logits, which is
/// the fusion of the parts' clip scores. One part with [`Fusion::ALONE`] is the plain analysis.
/// `short_spans`, when given, cuts a short span into its windows instead (see [`windows`]).
pub fn analyse_fused(
    parts: &mut [Part<'_>],
    short_spans: Option<ShortSpanWindows>,
) -> candle_core::Result<ClipAnalysis> {
    let reference = parts.first().expect("an analysis needs a network");
    let (rate, hop) = (reference.fx.sample_rate() as f64, reference.fx.hop());
    let samples_len = reference.samples.len();
    let segments = reference.fx.speech_segments(reference.samples);
    let speech_samples: usize = segments.iter().map(|s| s.end - s.start).sum();
    let mut analysis = ClipAnalysis {
        duration_s: samples_len as f64 / rate,
        speech: segments
            .iter()
            .map(|s| (s.start as f64 / rate, s.end as f64 / rate))
            .collect(),
        speech_s: speech_samples as f64 / rate,
        windows: Vec::new(),
        outcome: Outcome::Unscored(String::new()),
    };
    let (Some(first), Some(last)) = (segments.first(), segments.last()) else {
        analysis.outcome = Outcome::Unscored("no speech found".into());
        return Ok(analysis);
    };
    if analysis.speech_s < MIN_SPEECH_SECONDS {
        analysis.outcome = Outcome::Unscored(format!(
            "only {:.2} s of speech; at least {MIN_SPEECH_SECONDS:.1} s is needed",
            analysis.speech_s
        ));
        return Ok(analysis);
    }
    let offset = first.start;
    // Parts that compute the same features from the same samples (one recipe's seeds) read
    // one computation: features cost as much as a network's forward pass.
    let source: Vec<usize> = (0..parts.len())
        .map(|i| {
            (0..i)
                .find(|&j| {
                    parts[j].fx.same_features(parts[i].fx) && parts[j].samples == parts[i].samples
                })
                .unwrap_or(i)
        })
        .collect();
    let mut computed: Vec<Option<Frames>> = Vec::with_capacity(parts.len());
    for (i, part) in parts.iter_mut().enumerate() {
        if source[i] != i {
            computed.push(None);
            continue;
        }
        // The reference's sample offsets at this part's rate (the same ones at its own).
        let scale = part.fx.sample_rate() as f64 / rate;
        let at = |i: usize| ((i as f64 * scale).round() as usize).min(part.samples.len());
        let (from, to) = (at(offset), at(last.end));
        let local: Vec<Segment> = segments
            .iter()
            .map(|s| Segment {
                start: at(s.start) - from,
                end: at(s.end) - from,
            })
            .collect();
        computed.push(Some(part.fx.compute(&part.samples[from..to], &local)));
    }
    let frames: Vec<&Frames> = source
        .iter()
        .map(|&j| {
            computed[j]
                .as_ref()
                .expect("a source part computes its frames")
        })
        .collect();
    // Rounding can leave one part a frame short of another: all read the frames they share.
    let shared = frames.iter().map(|f| f.frames).min().unwrap_or(0);
    let (starts, len) = window_span(shared, short_spans);
    let mut fused = vec![0f64; starts.len()];
    for (part, &frames) in parts.iter().zip(&frames) {
        for (sum, logit) in fused
            .iter_mut()
            .zip(window_logits(part.model, frames, &starts, len)?)
        {
            *sum += part.fusion.apply(f64::from(logit));
        }
    }
    let fractions: Vec<f32> = starts
        .iter()
        .map(|&s| frames[0].speech_fraction(s, len))
        .collect();
    let counted = counted_windows(&fractions);
    let offset_s = offset as f64 / rate;
    analysis.windows = starts
        .iter()
        .zip(&fused)
        .zip(&fractions)
        .enumerate()
        .map(|(i, ((&s, &logit), &fraction))| WindowScore {
            start_s: offset_s + (s * hop) as f64 / rate,
            end_s: (offset_s + ((s + len) * hop) as f64 / rate).min(analysis.duration_s),
            speech_fraction: fraction,
            logit: logit as f32,
            counted: counted[i],
        })
        .collect();
    let used: Vec<f64> = analysis
        .windows
        .iter()
        .filter(|w| w.counted)
        .map(|w| w.logit as f64)
        .collect();
    analysis.outcome = Outcome::Scored(used.iter().sum::<f64>() / used.len() as f64);
    Ok(analysis)
}

/// Window starts and the window length: 4 s every 1 s, shorter only for short input, or a
/// span that `short_spans` covers cut as it says.
pub fn windows(frames: &Frames, short_spans: Option<ShortSpanWindows>) -> (Vec<usize>, usize) {
    window_span(frames.frames, short_spans)
}

/// [`windows`] over a count of frames.
fn window_span(frames: usize, short_spans: Option<ShortSpanWindows>) -> (Vec<usize>, usize) {
    if let Some(rule) = short_spans
        && frames > rule.window_frames
        && frames <= rule.up_to_frames
    {
        return (
            window_starts_every(frames, rule.window_frames, rule.hop_frames),
            rule.window_frames,
        );
    }
    (window_starts(frames), frames.min(WINDOW_FRAMES))
}

/// Which windows count: those that are mostly speech, or, when none is, the one with the most.
pub fn counted_windows(fractions: &[f32]) -> Vec<bool> {
    let mut counted: Vec<bool> = fractions.iter().map(|&f| f >= MIN_WINDOW_SPEECH).collect();
    if !counted.iter().any(|&c| c)
        && let Some((best, _)) = fractions
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
    {
        counted[best] = true;
    }
    counted
}

/// Logits of the windows `starts[i]..starts[i] + len` of `frames`, running the trunk once per
/// chunk of consecutive windows.
pub fn window_logits(
    model: &TdnnMfm,
    frames: &Frames,
    starts: &[usize],
    len: usize,
) -> candle_core::Result<Vec<f32>> {
    let field = model.receptive_field();
    assert!(len >= field, "a window needs {field} frames");
    let mut logits = Vec::with_capacity(starts.len());
    for chunk in starts.chunks(WINDOWS_PER_CHUNK) {
        let first = chunk[0];
        let end = chunk[chunk.len() - 1] + len;
        let x = frames_tensor(frames.slice(first, end - first), end - first, frames.dims)?;
        let trunk = model.trunk_t(&x, false)?;
        let pooled: Vec<Tensor> = chunk
            .iter()
            .map(|&s| TdnnMfm::pool(&trunk.narrow(2, s - first, len - field + 1)?))
            .collect::<candle_core::Result<_>>()?;
        let stats = Tensor::cat(&pooled, 0)?;
        logits.extend(model.head(&stats)?.to_vec1::<f32>()?);
    }
    Ok(logits)
}

/// Row-major `frames × dims` values as the network's `[1, dims, frames]` input.
pub fn frames_tensor(values: &[f32], frames: usize, dims: usize) -> candle_core::Result<Tensor> {
    Tensor::from_slice(values, (1, frames, dims), &Device::Cpu)?
        .transpose(1, 2)?
        .contiguous()
}
