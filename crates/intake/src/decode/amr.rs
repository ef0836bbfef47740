//! AMR-NB storage format (RFC 4867 §5, the `.amr` files of phone call recorders), decoded by
//! `rvoip-codec-core`'s pure-Rust port of the 3GPP TS 26.073 fixed-point decoder, so the binary
//! links no C library for it. Lost frames, comfort noise (SID) and damaged frames (Q bit clear)
//! take the reference's receiver paths.

use super::{ErrorBudget, OpenedTrack, SampleSource, TrackFacts};
use crate::Problem;
use codec_core::codecs::amr::AmrCodec;
use codec_core::types::{CodecConfig, CodedFrame, FrameKind, VariableRateCodec};
use std::io::{BufReader, Read};
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
/// The largest payload any frame type carries.
const MAX_PAYLOAD: usize = 31;
/// Frame type 8: an AMR-NB SID (comfort noise description).
const SID: usize = 8;

fn codec() -> Result<AmrCodec, Problem> {
    AmrCodec::new(&CodecConfig::amr_nb())
        .map_err(|e| Problem::Internal(format!("AMR-NB decoder: {e}")))
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
    let codec = codec()?;
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
            codec,
            errors: ErrorBudget::default(),
        }),
    })
}

struct AmrSource {
    reader: BufReader<Box<dyn MediaSource>>,
    codec: AmrCodec,
    errors: ErrorBudget,
}

impl SampleSource for AmrSource {
    fn next_mono(&mut self, out: &mut Vec<f32>) -> Result<bool, Problem> {
        let mut toc = [0u8; 1];
        match self.reader.read(&mut toc) {
            Ok(0) => return Ok(false),
            Ok(_) => {}
            Err(e) => return Err(Problem::Io(e)),
        }
        let frame_type = usize::from((toc[0] >> 3) & 0x0F);
        let quality_ok = toc[0] & 0x04 != 0;
        let Some(len) = PAYLOAD_LEN[frame_type] else {
            self.errors.failed("reserved AMR frame type")?;
            return Ok(true);
        };
        let mut payload = [0u8; MAX_PAYLOAD];
        if let Err(e) = self.reader.read_exact(&mut payload[..len]) {
            return Err(if e.kind() == std::io::ErrorKind::UnexpectedEof {
                Problem::Truncated {
                    decoded_s: 0.0,
                    declared_s: None,
                }
            } else {
                Problem::Io(e)
            });
        }
        let kind = match frame_type {
            0..=7 => FrameKind::Speech,
            SID => FrameKind::ComfortNoise,
            // 9-11 are other systems' SIDs, 15 is "nothing sent": the silence goes on.
            _ => FrameKind::NoData,
        };
        let frame = CodedFrame {
            kind,
            mode: u8::try_from(frame_type).unwrap_or(0),
            quality_ok,
            data: payload[..len].to_vec(),
        };
        match self.codec.decode_frame(&frame) {
            Ok(pcm) => {
                out.extend(pcm.iter().map(|&s| f32::from(s) / 32768.0));
                self.errors.ok();
            }
            Err(e) => {
                // A frame the decoder cannot read still lasts 20 ms: keep the timeline honest.
                out.extend(std::iter::repeat_n(0.0, FRAME_SAMPLES));
                self.errors.failed(&format!("AMR-NB frame: {e}"))?;
            }
        }
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
    let mut encoder = codec().expect("the AMR-NB encoder starts");
    let mut file = MAGIC.to_vec();
    let mut block = [0i16; FRAME_SAMPLES];
    for chunk in pcm_8k.chunks(FRAME_SAMPLES) {
        block.fill(0);
        block[..chunk.len()].copy_from_slice(chunk);
        let frame = encoder.encode_frame(&block).expect("a whole frame encodes");
        let frame_type = match frame.kind {
            FrameKind::Speech => frame.mode,
            FrameKind::ComfortNoise => SID as u8,
            FrameKind::NoData | FrameKind::Lost => 15,
        };
        file.push(frame_type << 3 | u8::from(frame.quality_ok) << 2);
        file.extend_from_slice(&frame.data);
    }
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
