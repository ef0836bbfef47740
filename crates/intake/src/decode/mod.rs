//! Demuxing and decoding to mono `f32` at the source's own rate, one packet at a time.
//!
//! Symphonia demuxes every container and decodes every codec it has a pure-Rust decoder for;
//! Opus packets (Ogg, WebM/MKV) go to libopus (the reference decoder, translated to Rust), and
//! the AMR-NB storage format to a pure-Rust port of the 3GPP decoder: no C library is linked.
//! Each backend implements [`SampleSource`], so the stream above
//! never knows which one it is reading.

pub mod amr;
mod opus;
mod symphonia_track;

use crate::sniff::Container;
use crate::{Limits, Problem};
use symphonia::core::io::MediaSource;

/// Facts about the decoded track, known once the container's headers are read.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackFacts {
    pub codec: String,
    /// The track's own rate, as the container declares it.
    pub sample_rate: u32,
    pub channels: usize,
    pub bits_per_sample: Option<u32>,
    pub declared_duration_s: Option<f64>,
    pub audio_tracks: usize,
}

/// A decoded audio track delivered one packet at a time.
pub(crate) trait SampleSource: Send {
    /// Appends the next packet's audio, down-mixed to mono, to `out`. Returns `Ok(false)` at
    /// the end of the track.
    fn next_mono(&mut self, out: &mut Vec<f32>) -> Result<bool, Problem>;
    /// Rate of the samples [`SampleSource::next_mono`] appends (a decoder may produce a
    /// different rate than the track's native one when that saves a resampling step).
    fn output_rate(&self) -> u32;
    /// Packets skipped because they could not be decoded.
    fn decode_errors(&self) -> u64;
}

pub(crate) struct OpenedTrack {
    pub facts: TrackFacts,
    pub source: Box<dyn SampleSource>,
}

/// Opens the first decodable audio track of `file`. `preferred_rate` lets a decoder that can
/// render at several rates (Opus) skip resampling.
pub(crate) fn open(
    input: Box<dyn MediaSource>,
    container: Container,
    limits: &Limits,
    preferred_rate: Option<u32>,
) -> Result<OpenedTrack, Problem> {
    let opened = contain_panics(|| match container {
        Container::AmrNb => amr::open(input),
        _ => symphonia_track::open(input, container, preferred_rate),
    })?;
    limits.check_layout(opened.facts.sample_rate, opened.facts.channels)?;
    Ok(OpenedTrack {
        facts: opened.facts,
        source: Box::new(PanicFence(opened.source)),
    })
}

/// Runs third-party parsing code so that a panic on malformed input (an arithmetic overflow
/// deep in a demuxer, say) becomes a refusal of that input instead of a crash of the process.
pub(crate) fn contain_panics<T>(f: impl FnOnce() -> Result<T, Problem>) -> Result<T, Problem> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|payload| {
        let msg = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        Err(Problem::CorruptStream {
            detail: format!("the decoder failed on malformed data ({msg})"),
        })
    })
}

/// A source whose every call goes through [`contain_panics`]. After a panic the decoder's state
/// is unknown, so the fence refuses further reads.
struct PanicFence(Box<dyn SampleSource>);

impl SampleSource for PanicFence {
    fn next_mono(&mut self, out: &mut Vec<f32>) -> Result<bool, Problem> {
        contain_panics(|| self.0.next_mono(out))
    }

    fn output_rate(&self) -> u32 {
        self.0.output_rate()
    }

    fn decode_errors(&self) -> u64 {
        self.0.decode_errors()
    }
}

/// Averages `channels` planes into `out`, appending `frames` mono samples.
pub(crate) fn downmix_planar(planes: &[Vec<f32>], frames: usize, out: &mut Vec<f32>) {
    match planes {
        [] => {}
        [mono] => out.extend_from_slice(&mono[..frames]),
        [left, right] => out.extend(
            left[..frames]
                .iter()
                .zip(&right[..frames])
                .map(|(l, r)| 0.5 * (l + r)),
        ),
        _ => {
            let start = out.len();
            out.extend_from_slice(&planes[0][..frames]);
            for plane in &planes[1..] {
                for (acc, s) in out[start..].iter_mut().zip(&plane[..frames]) {
                    *acc += s;
                }
            }
            let scale = 1.0 / planes.len() as f32;
            out[start..].iter_mut().for_each(|s| *s *= scale);
        }
    }
}

/// Averages interleaved frames of `channels` samples into `out`.
pub(crate) fn downmix_interleaved(interleaved: &[f32], channels: usize, out: &mut Vec<f32>) {
    match channels {
        1 => out.extend_from_slice(interleaved),
        2 => out.extend(
            interleaved
                .chunks_exact(2)
                .map(|frame| 0.5 * (frame[0] + frame[1])),
        ),
        n => {
            let scale = 1.0 / n as f32;
            out.extend(
                interleaved
                    .chunks_exact(n)
                    .map(|frame| frame.iter().sum::<f32>() * scale),
            )
        }
    }
}

/// Stops a run of undecodable packets from being skipped forever: a stream where nothing
/// decodes is corrupt, not merely damaged.
#[derive(Debug, Default)]
pub(crate) struct ErrorBudget {
    pub total: u64,
    consecutive: u32,
    good: u64,
}

impl ErrorBudget {
    const MAX_CONSECUTIVE: u32 = 64;

    pub fn ok(&mut self) {
        self.consecutive = 0;
        self.good += 1;
    }

    pub fn failed(&mut self, detail: &str) -> Result<(), Problem> {
        self.total += 1;
        self.consecutive += 1;
        tracing::debug!(detail, total = self.total, "skipping undecodable packet");
        if self.consecutive >= Self::MAX_CONSECUTIVE || self.total > self.good + 16 {
            return Err(Problem::CorruptStream {
                detail: format!(
                    "{} packets failed to decode ({} decoded); last: {detail}",
                    self.total, self.good
                ),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downmix_averages_channels() {
        let mut out = Vec::new();
        downmix_planar(
            &[vec![1.0, 0.0], vec![0.0, 1.0], vec![0.5, 0.5]],
            2,
            &mut out,
        );
        assert_eq!(out, vec![0.5, 0.5]);
        out.clear();
        downmix_interleaved(&[1.0, -1.0, 0.5, 0.25], 2, &mut out);
        assert_eq!(out, vec![0.0, 0.375]);
    }

    #[test]
    fn error_budget_refuses_streams_that_never_decode() {
        let mut budget = ErrorBudget::default();
        let mut last = Ok(());
        for _ in 0..100 {
            last = budget.failed("bad");
            if last.is_err() {
                break;
            }
        }
        assert!(matches!(last, Err(Problem::CorruptStream { .. })));

        let mut budget = ErrorBudget::default();
        for _ in 0..1000 {
            budget.ok();
        }
        for _ in 0..10 {
            budget.failed("a damaged packet").unwrap();
            budget.ok();
        }
        assert_eq!(budget.total, 10);
    }
}
