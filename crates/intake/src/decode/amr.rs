//! AMR-NB storage format (RFC 4867 §5, the `.amr` files of phone call recorders), decoded by
//! opencore-amrnb, the 3GPP reference decoder packaged by Debian.

use super::{ErrorBudget, OpenedTrack, SampleSource, TrackFacts};
use crate::Problem;
use std::ffi::c_void;
use std::io::{BufReader, Read};
use std::os::raw::{c_int, c_short, c_uchar};
use symphonia::core::io::MediaSource;

const MAGIC: &[u8] = b"#!AMR\n";
const RATE: u32 = 8_000;
const FRAME_SAMPLES: usize = 160;
/// Payload bytes after the TOC byte, by frame type (3GPP TS 26.101); `None` for reserved types.
const PAYLOAD_LEN: [Option<usize>; 16] = [
    Some(12),
    Some(13),
    Some(15),
    Some(17),
    Some(19),
    Some(20),
    Some(26),
    Some(31),
    Some(5),
    Some(0),
    Some(0),
    Some(0),
    None,
    None,
    None,
    Some(0),
];
/// The decoder reads as many bytes as the TOC's mode needs, never more than this.
const MAX_FRAME: usize = 32;

#[link(name = "opencore-amrnb")]
unsafe extern "C" {
    fn Decoder_Interface_init() -> *mut c_void;
    fn Decoder_Interface_exit(state: *mut c_void);
    fn Decoder_Interface_Decode(
        state: *mut c_void,
        input: *const c_uchar,
        out: *mut c_short,
        bfi: c_int,
    );
    fn Encoder_Interface_init(dtx: c_int) -> *mut c_void;
    fn Encoder_Interface_exit(state: *mut c_void);
    fn Encoder_Interface_Encode(
        state: *mut c_void,
        mode: c_int,
        speech: *const c_short,
        out: *mut c_uchar,
        force_speech: c_int,
    ) -> c_int;
}

/// Owns one opencore decoder state.
struct DecoderState(*mut c_void);

// SAFETY: the state is plain heap memory owned by this value and used from one thread at a time.
unsafe impl Send for DecoderState {}

impl Drop for DecoderState {
    fn drop(&mut self) {
        // SAFETY: created by Decoder_Interface_init and released exactly once.
        unsafe { Decoder_Interface_exit(self.0) }
    }
}

pub(super) fn open(input: Box<dyn MediaSource>) -> Result<OpenedTrack, Problem> {
    let mut reader = BufReader::with_capacity(1 << 16, input);
    let mut magic = [0u8; MAGIC.len()];
    reader
        .read_exact(&mut magic)
        .map_err(|_| Problem::CorruptHeader {
            container: "amr",
            detail: "the file ends inside its header".into(),
        })?;
    if magic != MAGIC {
        return Err(Problem::CorruptHeader {
            container: "amr",
            detail: "missing #!AMR magic".into(),
        });
    }
    // SAFETY: plain constructor; a null result is handled.
    let state = unsafe { Decoder_Interface_init() };
    if state.is_null() {
        return Err(Problem::Internal(
            "opencore-amrnb failed to initialise".into(),
        ));
    }
    Ok(OpenedTrack {
        facts: TrackFacts {
            codec: "amr_nb".into(),
            sample_rate: RATE,
            channels: 1,
            bits_per_sample: None,
            declared_duration_s: None,
            audio_tracks: 1,
        },
        source: Box::new(AmrSource {
            reader,
            state: DecoderState(state),
            pcm: [0; FRAME_SAMPLES],
            errors: ErrorBudget::default(),
        }),
    })
}

struct AmrSource {
    reader: BufReader<Box<dyn MediaSource>>,
    state: DecoderState,
    pcm: [c_short; FRAME_SAMPLES],
    errors: ErrorBudget,
}

impl SampleSource for AmrSource {
    fn next_mono(&mut self, out: &mut Vec<f32>) -> Result<bool, Problem> {
        let mut frame = [0u8; MAX_FRAME];
        match self.reader.read(&mut frame[..1]) {
            Ok(0) => return Ok(false),
            Ok(_) => {}
            Err(e) => return Err(Problem::Io(e)),
        }
        let frame_type = usize::from((frame[0] >> 3) & 0x0F);
        let Some(len) = PAYLOAD_LEN[frame_type] else {
            self.errors.failed("reserved AMR frame type")?;
            return Ok(true);
        };
        if let Err(e) = self.reader.read_exact(&mut frame[1..1 + len]) {
            return Err(if e.kind() == std::io::ErrorKind::UnexpectedEof {
                Problem::Truncated {
                    decoded_s: 0.0,
                    declared_s: None,
                }
            } else {
                Problem::Io(e)
            });
        }
        // SAFETY: `frame` holds MAX_FRAME bytes, more than any mode reads; `pcm` holds the 160
        // samples one frame decodes to.
        unsafe {
            Decoder_Interface_Decode(self.state.0, frame.as_ptr(), self.pcm.as_mut_ptr(), 0);
        }
        out.extend(self.pcm.iter().map(|&s| f32::from(s) / 32768.0));
        self.errors.ok();
        Ok(true)
    }

    fn output_rate(&self) -> u32 {
        RATE
    }

    fn decode_errors(&self) -> u64 {
        self.errors.total
    }
}

/// Encodes 8 kHz mono PCM as an AMR-NB file at 12.2 kbit/s.
///
/// Intake itself only decodes; this exists so tests and benchmarks can make AMR fixtures,
/// which no Debian command-line encoder writes.
pub fn encode_amr_nb(pcm_8k: &[i16]) -> Vec<u8> {
    const MR122: c_int = 7;
    let mut file = MAGIC.to_vec();
    // SAFETY: plain constructor, released below.
    let state = unsafe { Encoder_Interface_init(0) };
    assert!(
        !state.is_null(),
        "opencore-amrnb encoder failed to initialise"
    );
    let mut out = [0u8; MAX_FRAME * 2];
    let mut block = [0 as c_short; FRAME_SAMPLES];
    for chunk in pcm_8k.chunks(FRAME_SAMPLES) {
        block.fill(0);
        block[..chunk.len()].copy_from_slice(chunk);
        // SAFETY: `block` is one 160-sample frame; `out` is larger than any encoded frame.
        let n =
            unsafe { Encoder_Interface_Encode(state, MR122, block.as_ptr(), out.as_mut_ptr(), 0) };
        file.extend_from_slice(&out[..n.max(0) as usize]);
    }
    // SAFETY: created above, released once.
    unsafe { Encoder_Interface_exit(state) };
    file
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_a_tone() {
        let pcm: Vec<i16> = (0..8_000)
            .map(|i| {
                ((i as f32 * 2.0 * std::f32::consts::PI * 440.0 / 8_000.0).sin() * 8_000.0) as i16
            })
            .collect();
        let bytes = encode_amr_nb(&pcm);
        assert!(bytes.starts_with(MAGIC));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tone.amr");
        std::fs::write(&path, &bytes).unwrap();
        let mut opened = open(Box::new(std::fs::File::open(&path).unwrap())).unwrap();
        let mut out = Vec::new();
        while opened.source.next_mono(&mut out).unwrap() {}
        assert_eq!(out.len(), 8_000);
        let rms = (out[2_000..].iter().map(|s| s * s).sum::<f32>() / 6_000.0).sqrt();
        assert!(rms > 0.1, "a 440 Hz tone survives AMR-NB (rms {rms})");
    }
}
