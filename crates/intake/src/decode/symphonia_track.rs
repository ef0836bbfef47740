//! Every container, and every codec with a pure-Rust decoder, through Symphonia.

use super::opus::OpusTrack;
use super::{ErrorBudget, OpenedTrack, SampleSource, TrackFacts, downmix_planar};
use crate::Problem;
use crate::sniff::Container;
use symphonia::core::codecs::CodecParameters;
use symphonia::core::codecs::audio::CODEC_ID_NULL_AUDIO;
use symphonia::core::codecs::audio::well_known::*;
use symphonia::core::codecs::audio::{
    AudioCodecId, AudioCodecParameters, AudioDecoder, AudioDecoderOptions,
};
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, FormatReader, Track};
use symphonia::core::io::{MediaSource, MediaSourceStream, MediaSourceStreamOptions};
use symphonia::core::meta::MetadataOptions;

pub(super) fn open(
    input: Box<dyn MediaSource>,
    container: Container,
    preferred_rate: Option<u32>,
) -> Result<OpenedTrack, Problem> {
    let mss = MediaSourceStream::new(input, MediaSourceStreamOptions::default());
    let mut hint = Hint::new();
    hint.with_extension(hint_extension(container));
    let reader = symphonia::default::get_probe()
        .probe(
            &hint,
            mss,
            FormatOptions::default(),
            MetadataOptions::default(),
        )
        .map_err(|e| header_problem(container, e))?;

    let audio_tracks: Vec<&Track> = reader
        .tracks()
        .iter()
        .filter(|t| matches!(t.codec_params, Some(CodecParameters::Audio(_))))
        .collect();
    if audio_tracks.is_empty() {
        return Err(Problem::NoAudioTrack);
    }
    let n_audio = audio_tracks.len();
    let track = audio_tracks
        .iter()
        .find(|t| audio_params(t).is_some_and(|p| p.codec != CODEC_ID_NULL_AUDIO))
        .copied()
        .unwrap_or(audio_tracks[0]);
    let params = audio_params(track).ok_or(Problem::NoAudioTrack)?.clone();
    let codec = codec_name(params.codec);

    let sample_rate = params.sample_rate.ok_or_else(|| Problem::CorruptHeader {
        container: container.name(),
        detail: "the audio track declares no sample rate".into(),
    })?;
    let channels = params.channels.as_ref().map(|c| c.count()).unwrap_or(0);
    let declared_duration_s = match (track.time_base, track.duration) {
        (Some(tb), Some(d)) => Some(d.get() as f64 * tb.numer.get() as f64 / tb.denom.get() as f64),
        _ => track.num_frames.map(|n| n as f64 / sample_rate as f64),
    };
    let facts = TrackFacts {
        codec: codec.clone(),
        sample_rate,
        channels,
        bits_per_sample: params.bits_per_sample.filter(|_| is_pcm(params.codec)),
        declared_duration_s,
        audio_tracks: n_audio,
    };

    let decoder = if params.codec == CODEC_ID_OPUS {
        if channels == 0 || channels > 2 {
            return Err(Problem::UnsupportedCodec(format!(
                "Opus with {channels} channels (multistream Opus is not supported)"
            )));
        }
        TrackDecoder::Opus(OpusTrack::new(
            channels,
            preferred_rate,
            track.delay.unwrap_or(0),
        )?)
    } else {
        let made = symphonia::default::get_codecs()
            .make_audio_decoder(&params, &AudioDecoderOptions::default());
        match made {
            Ok(d) => TrackDecoder::Native(d),
            Err(SymError::Unsupported(what)) => {
                return Err(Problem::UnsupportedCodec(format!("{codec} ({what})")));
            }
            Err(e) => {
                return Err(Problem::CorruptHeader {
                    container: container.name(),
                    detail: format!("cannot set up the {codec} decoder: {e}"),
                });
            }
        }
    };
    let output_rate = match &decoder {
        TrackDecoder::Opus(o) => o.output_rate(),
        TrackDecoder::Native(_) => sample_rate,
    };

    Ok(OpenedTrack {
        facts,
        source: Box::new(SymphoniaSource {
            track_id: track.id,
            reader,
            decoder,
            output_rate,
            planes: Vec::new(),
            errors: ErrorBudget::default(),
        }),
    })
}

enum TrackDecoder {
    Native(Box<dyn AudioDecoder>),
    Opus(OpusTrack),
}

struct SymphoniaSource {
    reader: Box<dyn FormatReader>,
    track_id: u32,
    decoder: TrackDecoder,
    output_rate: u32,
    planes: Vec<Vec<f32>>,
    errors: ErrorBudget,
}

impl SampleSource for SymphoniaSource {
    fn next_mono(&mut self, out: &mut Vec<f32>) -> Result<bool, Problem> {
        loop {
            let packet = match self.reader.next_packet() {
                Ok(Some(p)) => p,
                Ok(None) => return Ok(false),
                Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    // Symphonia reports a clean end as `Ok(None)`; EOF inside a packet or page
                    // means the bytes stop where the container says there is more.
                    return Err(Problem::Truncated {
                        decoded_s: 0.0,
                        declared_s: None,
                    });
                }
                Err(SymError::IoError(e)) => return Err(Problem::Io(e)),
                Err(SymError::DecodeError(msg)) => {
                    self.errors.failed(msg)?;
                    continue;
                }
                Err(SymError::ResetRequired) => return Ok(false),
                Err(e) => {
                    return Err(Problem::CorruptStream {
                        detail: e.to_string(),
                    });
                }
            };
            if packet.track_id != self.track_id {
                continue;
            }
            let decoded = match &mut self.decoder {
                TrackDecoder::Opus(opus) => opus.decode(&packet, out),
                TrackDecoder::Native(dec) => match dec.decode(&packet) {
                    Ok(buf) => {
                        let frames = buf.frames();
                        if buf.num_planes() == 1 {
                            // Mono: convert straight into the output, no intermediate plane.
                            let start = out.len();
                            out.resize(start + frames, 0.0);
                            buf.copy_to_slice_planar::<f32, _>(&mut [&mut out[start..]]);
                        } else {
                            buf.copy_to_vecs_planar::<f32>(&mut self.planes);
                            downmix_planar(&self.planes, frames, out);
                        }
                        Ok(())
                    }
                    Err(SymError::DecodeError(msg)) => Err(msg.to_string()),
                    Err(SymError::IoError(e)) => Err(e.to_string()),
                    Err(SymError::Unsupported(what)) => {
                        return Err(Problem::UnsupportedCodec(what.to_string()));
                    }
                    Err(e) => {
                        return Err(Problem::CorruptStream {
                            detail: e.to_string(),
                        });
                    }
                },
            };
            match decoded {
                Ok(()) => self.errors.ok(),
                Err(detail) => self.errors.failed(&detail)?,
            }
            return Ok(true);
        }
    }

    fn output_rate(&self) -> u32 {
        self.output_rate
    }

    fn decode_errors(&self) -> u64 {
        self.errors.total
    }
}

fn audio_params(track: &Track) -> Option<&AudioCodecParameters> {
    match &track.codec_params {
        Some(CodecParameters::Audio(p)) => Some(p),
        _ => None,
    }
}

fn header_problem(container: Container, err: SymError) -> Problem {
    match err {
        SymError::IoError(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            Problem::CorruptHeader {
                container: container.name(),
                detail: "the file ends inside its header".into(),
            }
        }
        SymError::IoError(e) => Problem::Io(e),
        SymError::Unsupported(what) => Problem::CorruptHeader {
            container: container.name(),
            detail: format!("unsupported or unreadable layout ({what})"),
        },
        other => Problem::CorruptHeader {
            container: container.name(),
            detail: other.to_string(),
        },
    }
}

fn hint_extension(container: Container) -> &'static str {
    match container {
        Container::Wav => "wav",
        Container::Aiff => "aiff",
        Container::Flac => "flac",
        Container::Mpa => "mp3",
        Container::Adts => "aac",
        Container::Ogg => "ogg",
        Container::Mp4 => "mp4",
        Container::Matroska => "mkv",
        Container::Caf => "caf",
        Container::AmrNb => "amr",
    }
}

fn is_pcm(codec: AudioCodecId) -> bool {
    codec_name(codec).starts_with("pcm_")
}

fn codec_name(codec: AudioCodecId) -> String {
    let known = [
        (CODEC_ID_PCM_S8, "pcm_s8"),
        (CODEC_ID_PCM_U8, "pcm_u8"),
        (CODEC_ID_PCM_S16LE, "pcm_s16le"),
        (CODEC_ID_PCM_S16BE, "pcm_s16be"),
        (CODEC_ID_PCM_S24LE, "pcm_s24le"),
        (CODEC_ID_PCM_S24BE, "pcm_s24be"),
        (CODEC_ID_PCM_S32LE, "pcm_s32le"),
        (CODEC_ID_PCM_S32BE, "pcm_s32be"),
        (CODEC_ID_PCM_F32LE, "pcm_f32le"),
        (CODEC_ID_PCM_F32BE, "pcm_f32be"),
        (CODEC_ID_PCM_F64LE, "pcm_f64le"),
        (CODEC_ID_PCM_F64BE, "pcm_f64be"),
        (CODEC_ID_PCM_MULAW, "pcm_mulaw"),
        (CODEC_ID_PCM_ALAW, "pcm_alaw"),
        (CODEC_ID_ADPCM_MS, "adpcm_ms"),
        (CODEC_ID_ADPCM_IMA_WAV, "adpcm_ima_wav"),
        (CODEC_ID_ADPCM_IMA_QT, "adpcm_ima_qt"),
        (CODEC_ID_ADPCM_G722, "g722"),
        (CODEC_ID_ADPCM_G726, "g726"),
        (CODEC_ID_FLAC, "flac"),
        (CODEC_ID_ALAC, "alac"),
        (CODEC_ID_MP1, "mp1"),
        (CODEC_ID_MP2, "mp2"),
        (CODEC_ID_MP3, "mp3"),
        (CODEC_ID_AAC, "aac"),
        (CODEC_ID_VORBIS, "vorbis"),
        (CODEC_ID_OPUS, "opus"),
        (CODEC_ID_SPEEX, "speex"),
        (CODEC_ID_AC3, "ac3"),
        (CODEC_ID_EAC3, "eac3"),
        (CODEC_ID_WMA, "wma"),
        (CODEC_ID_NULL_AUDIO, "unknown"),
    ];
    known
        .iter()
        .find(|(id, _)| *id == codec)
        .map(|(_, name)| name.to_string())
        .unwrap_or_else(|| {
            symphonia::default::get_codecs()
                .get_audio_decoder(codec)
                .map(|d| d.codec.info.short_name.to_string())
                .unwrap_or_else(|| format!("{codec:?}"))
        })
}
