//! Opus packets through libopus 1.3.1, the reference decoder, as `unsafe-libopus` carries it:
//! translated to Rust (c2rust), so no C compiler, cmake or system library is needed and the
//! decoder is the reference's own code, not a rewrite.
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

/// One libopus decoder state, freed when dropped.
struct Decoder(*mut unsafe_libopus::OpusDecoder);

// SAFETY: the state is heap memory owned by this value alone, used from one thread at a time.
unsafe impl Send for Decoder {}

impl Decoder {
    fn new(rate: u32, channels: usize) -> Result<Self, String> {
        let mut error = 0;
        let rate = i32::try_from(rate).map_err(|e| e.to_string())?;
        let channels = i32::try_from(channels).map_err(|e| e.to_string())?;
        // SAFETY: a plain constructor; it reports failure through `error` and a null pointer.
        let state = unsafe { unsafe_libopus::opus_decoder_create(rate, channels, &mut error) };
        if state.is_null() || error != unsafe_libopus::OPUS_OK {
            return Err(format!("libopus error {error}"));
        }
        Ok(Self(state))
    }

    /// Decodes one packet into `out` (interleaved); returns the frames per channel written.
    fn decode_float(
        &mut self,
        packet: &[u8],
        out: &mut [f32],
        channels: usize,
    ) -> Result<usize, String> {
        let len = i32::try_from(packet.len()).map_err(|_| "packet too large".to_owned())?;
        let capacity = i32::try_from(out.len() / channels).unwrap_or(i32::MAX);
        // SAFETY: `packet` and `out` are valid for the lengths passed; libopus writes at most
        // `capacity` frames of `channels` samples.
        let frames = unsafe {
            unsafe_libopus::opus_decode_float(
                self.0,
                packet.as_ptr(),
                len,
                out.as_mut_ptr(),
                capacity,
                0,
            )
        };
        usize::try_from(frames).map_err(|_| format!("libopus error {frames}"))
    }
}

impl Drop for Decoder {
    fn drop(&mut self) {
        // SAFETY: created by opus_decoder_create and freed exactly once.
        unsafe { unsafe_libopus::opus_decoder_destroy(self.0) }
    }
}

pub(super) struct OpusTrack {
    decoder: Decoder,
    channels: usize,
    rate: u32,
    interleaved: Vec<f32>,
    /// Output frames still to drop at the start: the encoder's pre-skip (RFC 7845 §4.2), which
    /// Symphonia reports as the track's delay rather than trimming packets.
    pre_skip: usize,
}

impl OpusTrack {
    /// `pre_skip_48k`: the OpusHead pre-skip, in 48 kHz frames.
    pub fn new(
        channels: usize,
        preferred_rate: Option<u32>,
        pre_skip_48k: u32,
    ) -> Result<Self, Problem> {
        let rate = preferred_rate
            .filter(|r| matches!(r, 8_000 | 12_000 | 16_000 | 24_000 | 48_000))
            .unwrap_or(OPUS_CLOCK);
        // libopus renders mono or stereo; more channels (Ogg mapping family 1) are not read.
        let channels = channels.clamp(1, 2);
        let decoder = Decoder::new(rate, channels)
            .map_err(|e| Problem::Internal(format!("libopus decoder: {e}")))?;
        Ok(Self {
            decoder,
            channels,
            rate,
            interleaved: vec![0.0; MAX_FRAMES_PER_PACKET * channels],
            pre_skip: (pre_skip_48k / (OPUS_CLOCK / rate)) as usize,
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
            .decode_float(&packet.data, &mut self.interleaved, self.channels)
            .map_err(|e| format!("opus: {e}"))?;
        let scale = (OPUS_CLOCK / self.rate) as u64;
        let trim_start = (packet.trim_start.get() / scale).min(frames as u64) as usize;
        let trim_end = (packet.trim_end.get() / scale).min((frames - trim_start) as u64) as usize;
        let skip = self.pre_skip.min(frames - trim_start - trim_end);
        self.pre_skip -= skip;
        let kept = &self.interleaved
            [(trim_start + skip) * self.channels..(frames - trim_end) * self.channels];
        downmix_interleaved(kept, self.channels, out);
        Ok(())
    }
}
