//! Opus packets through libopus, the reference decoder (vendored by the `opus` crate).
//!
//! Opus decodes natively at 8, 12, 16, 24 or 48 kHz, so when the caller's analysis rate is one
//! of those the decoder renders straight at it and no resampler runs at all.

use super::downmix_interleaved;
use crate::Problem;
use symphonia::core::packet::Packet;

/// The rate every Opus timestamp is expressed in (RFC 7845 §4).
const OPUS_CLOCK: u32 = 48_000;
/// Longest Opus packet: 120 ms at 48 kHz.
const MAX_FRAMES_PER_PACKET: usize = 5_760;

pub(super) struct OpusTrack {
    decoder: opus::Decoder,
    channels: usize,
    rate: u32,
    interleaved: Vec<f32>,
}

impl OpusTrack {
    pub fn new(channels: usize, preferred_rate: Option<u32>) -> Result<Self, Problem> {
        let rate = preferred_rate
            .filter(|r| matches!(r, 8_000 | 12_000 | 16_000 | 24_000 | 48_000))
            .unwrap_or(OPUS_CLOCK);
        let layout = if channels == 1 {
            opus::Channels::Mono
        } else {
            opus::Channels::Stereo
        };
        let decoder = opus::Decoder::new(rate, layout)
            .map_err(|e| Problem::Internal(format!("libopus decoder: {e}")))?;
        Ok(Self {
            decoder,
            channels,
            rate,
            interleaved: vec![0.0; MAX_FRAMES_PER_PACKET * channels],
        })
    }

    pub fn output_rate(&self) -> u32 {
        self.rate
    }

    /// Decodes one packet, honouring the container's trims (pre-skip at the start, the end
    /// trim from the last granule position), and appends mono samples to `out`.
    pub fn decode(&mut self, packet: &Packet, out: &mut Vec<f32>) -> Result<(), String> {
        let frames = self
            .decoder
            .decode_float(&packet.data, &mut self.interleaved, false)
            .map_err(|e| format!("opus: {e}"))?;
        let scale = (OPUS_CLOCK / self.rate) as u64;
        let trim_start = (packet.trim_start.get() / scale).min(frames as u64) as usize;
        let trim_end = (packet.trim_end.get() / scale).min((frames - trim_start) as u64) as usize;
        let kept =
            &self.interleaved[trim_start * self.channels..(frames - trim_end) * self.channels];
        downmix_interleaved(kept, self.channels, out);
        Ok(())
    }
}
