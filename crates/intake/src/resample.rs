//! Streaming mono sample-rate conversion with rubato's FFT resampler.
//!
//! The ratio between two fixed rates never changes, so the synchronous FFT resampler is the
//! right tool: rubato documents it as its fastest, and it is as clean as its best sinc mode.
//! This wrapper turns rubato's fixed-size chunks into a push interface that accepts any
//! amount of input, removes the filter delay, and emits exactly `ceil(n_in * to / from)`
//! samples in total, so timestamps computed downstream stay exact.

use rubato::audioadapter_buffers::direct::SequentialSlice;
use rubato::{Fft, FixedSync, Indexing, Resampler};

pub struct MonoResampler {
    from: u32,
    to: u32,
    engine: Option<Engine>,
    in_total: u64,
    out_total: u64,
}

struct Engine {
    fft: Fft<f32>,
    pending: Vec<f32>,
    scratch: Vec<f32>,
    delay_left: usize,
}

/// Output and input frames per FFT block for files, at least. rubato's FFT resampler builds
/// its anti-aliasing filter as long as its block and sets the cutoff from that length, so a
/// fixed input block gave each ratio its own cutoff: 48 -> 16 kHz cut from 7.68 kHz, 22.05 ->
/// 16 kHz from 7.89, 48 -> 8 kHz from 3.68. Sizing the block from the ratio's reduced terms
/// puts every file conversion's cutoff at 0.987 of the lower Nyquist (7.89 / 3.95 kHz), so
/// the same voice reaches the detector with the same band whatever rate it was recorded at.
const MIN_FFT: usize = 1024;
/// Input per FFT block for live audio: 20 ms, one telephony frame. Output waits for a whole
/// block, so a file's 1,024 frames (128 ms at 8 kHz) would hold back every verdict of a call.
const LIVE_BLOCK_S: f64 = 0.02;

impl MonoResampler {
    pub fn new(from: u32, to: u32) -> Result<Self, String> {
        Self::with_blocks(from, to, file_block(from, to))
    }

    /// A resampler for live audio: the same conversion in 20 ms blocks, so that output lags
    /// input by one frame and the filter's delay instead of a file's block (at some cost in
    /// throughput, which a call's real-time pace leaves plenty of).
    pub fn live(from: u32, to: u32) -> Result<Self, String> {
        let block = (f64::from(from) * LIVE_BLOCK_S).round() as usize;
        Self::with_blocks(from, to, block.max(1))
    }

    fn with_blocks(from: u32, to: u32, chunk: usize) -> Result<Self, String> {
        let engine = if from == to {
            None
        } else {
            let fft = Fft::<f32>::new_custom(
                from as usize,
                to as usize,
                chunk,
                1, // sub-chunks: ignored with FixedSync::Both, whose block is one FFT
                1,
                rubato::WindowFunction::BlackmanHarris2,
                FixedSync::Both,
            )
            .map_err(|e| format!("resampler {from} -> {to} Hz: {e}"))?;
            Some(Engine {
                scratch: vec![0.0; fft.output_frames_max()],
                delay_left: fft.output_delay(),
                pending: Vec::with_capacity(fft.input_frames_max()),
                fft,
            })
        };
        Ok(Self {
            from,
            to,
            engine,
            in_total: 0,
            out_total: 0,
        })
    }

    pub fn output_rate(&self) -> u32 {
        self.to
    }

    /// Feeds `input` and appends every output sample that is ready to `out`.
    pub fn push(&mut self, input: &[f32], out: &mut Vec<f32>) {
        self.in_total += input.len() as u64;
        let Some(engine) = &mut self.engine else {
            out.extend_from_slice(input);
            self.out_total += input.len() as u64;
            return;
        };
        // Whole blocks are resampled straight from `input`; only a remainder shorter than one
        // block is staged in `pending` until a later push completes it.
        let mut input = input;
        if !engine.pending.is_empty() {
            let need = engine.fft.input_frames_next();
            let take = (need - engine.pending.len()).min(input.len());
            engine.pending.extend_from_slice(&input[..take]);
            input = &input[take..];
            if engine.pending.len() < need {
                return;
            }
            let block = std::mem::take(&mut engine.pending);
            self.out_total += engine.run(&block, None, out) as u64;
            engine.pending = block;
            engine.pending.clear();
        }
        loop {
            let need = engine.fft.input_frames_next();
            if input.len() < need {
                break;
            }
            self.out_total += engine.run(&input[..need], None, out) as u64;
            input = &input[need..];
        }
        engine.pending.extend_from_slice(input);
    }

    /// Flushes the filter tail; afterwards exactly `ceil(n_in * to / from)` samples have been
    /// emitted in total.
    pub fn finish(&mut self, out: &mut Vec<f32>) {
        let expected = (self.in_total * self.to as u64).div_ceil(self.from as u64);
        let Some(engine) = &mut self.engine else {
            return;
        };
        // The staged remainder goes first, then silence until the delayed tail is out.
        let mut block = std::mem::take(&mut engine.pending);
        for _ in 0..64 {
            if self.out_total >= expected {
                break;
            }
            let need = engine.fft.input_frames_next();
            let real = block.len().min(need);
            block.resize(need.max(block.len()), 0.0);
            let before = out.len();
            engine.run(&block[..need], Some(real), out);
            block.clear();
            let room = (expected - self.out_total) as usize;
            out.truncate(before + (out.len() - before).min(room));
            self.out_total += (out.len() - before) as u64;
        }
    }
}

/// Input frames per block for a file conversion: whole multiples of the reduced ratio's input
/// term, enough of them that both sides of the FFT have at least [`MIN_FFT`] points.
fn file_block(from: u32, to: u32) -> usize {
    let (from, to) = (from as usize, to as usize);
    if from == 0 || to == 0 {
        return MIN_FFT; // refused by rubato with its own message
    }
    let (mut a, mut b) = (from, to);
    while b != 0 {
        (a, b) = (b, a % b);
    }
    let (from_units, to_units) = (from / a, to / a);
    MIN_FFT.div_ceil(from_units.min(to_units)) * from_units
}

impl Engine {
    /// Resamples one block (of which only `partial` frames are real when given) and appends
    /// the output past the initial filter delay. Returns samples appended.
    fn run(&mut self, block: &[f32], partial: Option<usize>, out: &mut Vec<f32>) -> usize {
        let input =
            SequentialSlice::new(block, 1, block.len()).expect("input view sized to the block");
        let frames_out = self.scratch.len();
        let mut output = SequentialSlice::new_mut(&mut self.scratch, 1, frames_out)
            .expect("output view sized to output_frames_max");
        let indexing = partial.map(|p| Indexing::new().partial_len(p));
        let (_, produced) = self
            .fft
            .process_into_buffer(&input, &mut output, indexing.as_ref())
            .expect("buffers are sized from the resampler's own figures");
        let skip = self.delay_left.min(produced);
        self.delay_left -= skip;
        out.extend_from_slice(&self.scratch[skip..produced]);
        produced - skip
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(rate: u32, hz: f32, seconds: f32) -> Vec<f32> {
        (0..(rate as f32 * seconds) as usize)
            .map(|i| (i as f32 * 2.0 * std::f32::consts::PI * hz / rate as f32).sin() * 0.5)
            .collect()
    }

    #[test]
    fn length_is_exact_whatever_the_push_sizes() {
        for (from, to) in [
            (44_100, 16_000),
            (48_000, 16_000),
            (8_000, 16_000),
            (22_050, 8_000),
        ] {
            let input = tone(from, 440.0, 1.37);
            let mut r = MonoResampler::new(from, to).unwrap();
            let mut out = Vec::new();
            for piece in input.chunks(777) {
                r.push(piece, &mut out);
            }
            r.finish(&mut out);
            let expected = (input.len() as u64 * to as u64).div_ceil(from as u64) as usize;
            assert_eq!(out.len(), expected, "{from} -> {to}");
        }
    }

    /// How far output trails input, in milliseconds, at the worst point of a call fed in
    /// 20 ms frames.
    fn worst_lag_ms(mut r: MonoResampler, from: u32, to: u32) -> f64 {
        let input = tone(from, 440.0, 2.0);
        let mut out = Vec::new();
        let mut worst = 0.0f64;
        for frame in input.chunks(from as usize / 50) {
            r.push(frame, &mut out);
            let due = r.in_total as f64 * f64::from(to) / f64::from(from);
            worst = worst.max((due - out.len() as f64) / f64::from(to) * 1_000.0);
        }
        worst
    }

    #[test]
    fn a_live_resampler_trails_a_call_by_little_more_than_a_frame() {
        for (from, to) in [
            (8_000, 16_000),
            (16_000, 8_000),
            (48_000, 16_000),
            (44_100, 16_000),
        ] {
            let live = worst_lag_ms(MonoResampler::live(from, to).unwrap(), from, to);
            assert!(live <= 30.0, "{from} -> {to}: {live:.1} ms behind");
            // A file's blocks hold a call back by over 100 ms at telephone rates.
            if from == 8_000 {
                let file = worst_lag_ms(MonoResampler::new(from, to).unwrap(), from, to);
                assert!(file > 100.0, "{from} -> {to}: {file:.1} ms");
            }
            // And it is the same conversion: exact length, same samples within rounding.
            let input = tone(from, 440.0, 1.37);
            let (mut a, mut b) = (Vec::new(), Vec::new());
            let mut live = MonoResampler::live(from, to).unwrap();
            let mut file = MonoResampler::new(from, to).unwrap();
            for piece in input.chunks(333) {
                live.push(piece, &mut a);
                file.push(piece, &mut b);
            }
            live.finish(&mut a);
            file.finish(&mut b);
            assert_eq!(a.len(), b.len(), "{from} -> {to}");
            let worst = a[200..a.len() - 200]
                .iter()
                .zip(&b[200..b.len() - 200])
                .map(|(x, y)| (x - y).abs())
                .fold(0.0f32, f32::max);
            assert!(worst < 0.02, "{from} -> {to}: {worst}");
        }
    }

    #[test]
    fn a_tone_keeps_its_phase_and_level() {
        let (from, to) = (44_100, 16_000);
        let mut r = MonoResampler::new(from, to).unwrap();
        let mut out = Vec::new();
        r.push(&tone(from, 440.0, 1.0), &mut out);
        r.finish(&mut out);
        let reference = tone(to, 440.0, 1.0);
        // Away from the edges the output matches a tone generated at the target rate: the
        // filter delay has been removed, not merely the length fixed. rubato reports its delay
        // in whole output samples, so a fraction of a sample (tens of µs) may remain.
        let max_err = |shift: i32| {
            (1_000..15_000)
                .map(|i| (out[i] - reference[(i as i32 + shift) as usize]).abs())
                .fold(0.0f32, f32::max)
        };
        assert!(max_err(0) < 0.025, "aligned error {}", max_err(0));
        assert!(max_err(-1) > 2.0 * max_err(0) && max_err(1) > 2.0 * max_err(0));
        let peak = out[1_000..15_000]
            .iter()
            .fold(0.0f32, |a, b| a.max(b.abs()));
        assert!((peak - 0.5).abs() < 0.005, "level {peak}");
    }

    /// The level a tone at `hz` keeps through a file conversion, in dB.
    fn gain_db(from: u32, to: u32, hz: f32) -> f32 {
        let mut r = MonoResampler::new(from, to).unwrap();
        let mut out = Vec::new();
        r.push(&tone(from, hz, 1.0), &mut out);
        r.finish(&mut out);
        let inner = &out[to as usize / 8..out.len() - to as usize / 8];
        let rms = (inner.iter().map(|s| s * s).sum::<f32>() / inner.len() as f32).sqrt();
        20.0 * (rms / (0.5 / 2f32.sqrt())).log10()
    }

    #[test]
    fn every_ratio_keeps_the_same_band() {
        // 0.96 of the lower Nyquist passes whole whatever the ratio; a fixed block had cut it
        // by 6 dB at 48 -> 16 kHz, 20 dB at 44.1 -> 8 kHz and 37 dB at 48 -> 8 kHz.
        let mut cut = Vec::new();
        for (from, to) in [
            (48_000, 16_000),
            (44_100, 16_000),
            (22_050, 16_000),
            (32_000, 16_000),
            (48_000, 8_000),
            (44_100, 8_000),
            (16_000, 8_000),
        ] {
            let edge = 0.96 * to as f32 / 2.0;
            let gain = gain_db(from, to, edge);
            if gain.abs() >= 0.5 {
                cut.push(format!("{from} -> {to}: {edge} Hz at {gain:.2} dB"));
            }
        }
        assert!(cut.is_empty(), "{cut:?}");
    }

    #[test]
    fn content_above_the_new_nyquist_is_removed() {
        let mut r = MonoResampler::new(48_000, 16_000).unwrap();
        let mut out = Vec::new();
        r.push(&tone(48_000, 11_000.0, 1.0), &mut out);
        r.finish(&mut out);
        let rms = (out[1_000..15_000].iter().map(|s| s * s).sum::<f32>() / 14_000.0).sqrt();
        assert!(
            rms < 0.01,
            "an 11 kHz tone must not alias into 16 kHz audio (rms {rms})"
        );
    }
}
