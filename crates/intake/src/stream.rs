use crate::decode::{self, SampleSource, TrackFacts};
use crate::resample::MonoResampler;
use crate::sniff::{self, Container, SNIFF_LEN, Sniffed};
use crate::{IntakeError, Limits, MediaFacts, Problem};
use std::fs::File;
use std::io::{Cursor, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use symphonia::core::io::MediaSource;

/// What is known about a stream once its headers are read, before any audio is decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamInfo {
    pub container: Container,
    pub track: TrackFacts,
    pub size_bytes: u64,
}

/// Source samples gathered before each resampling step: large enough to amortise per-call
/// overhead, small enough (≈ 0.1–0.5 s) to keep live latency and memory low.
const MIN_SOURCE_BLOCK: usize = 8_192;

/// A decoded audio track delivered as mono `f32` chunks at a fixed rate, in bounded memory.
///
/// Memory does not grow with the length of the input: only one block of source samples and
/// its resampled counterpart are held at a time.
pub struct AudioStream {
    path: PathBuf,
    info: StreamInfo,
    source: Box<dyn SampleSource>,
    resampler: MonoResampler,
    limits: Limits,
    decoded: Vec<f32>,
    chunk: Vec<f32>,
    source_frames: u64,
    finished: bool,
}

impl AudioStream {
    /// Opens `path` and prepares to deliver mono audio at `sample_rate` Hz.
    pub fn open(path: &Path, sample_rate: u32, limits: &Limits) -> Result<Self, IntakeError> {
        Self::open_inner(path, Some(sample_rate), limits)
    }

    /// Opens `path` delivering mono audio at the decoder's own rate (no resampling).
    pub fn open_native(path: &Path, limits: &Limits) -> Result<Self, IntakeError> {
        Self::open_inner(path, None, limits)
    }

    /// Opens bytes already in memory (an upload, a fuzz case). `label` names them in errors.
    /// `rate: None` delivers the decoder's own rate.
    pub fn from_bytes(
        label: &str,
        bytes: Vec<u8>,
        rate: Option<u32>,
        limits: &Limits,
    ) -> Result<Self, IntakeError> {
        let size = bytes.len() as u64;
        Self::from_source(
            Path::new(label),
            Box::new(Cursor::new(bytes)),
            size,
            rate,
            limits,
        )
    }

    fn open_inner(path: &Path, rate: Option<u32>, limits: &Limits) -> Result<Self, IntakeError> {
        let fail = |problem| IntakeError::new(path, problem);
        let file = File::open(path).map_err(|e| fail(Problem::Io(e)))?;
        let meta = file.metadata().map_err(|e| fail(Problem::Io(e)))?;
        if meta.is_dir() {
            return Err(fail(Problem::Io(std::io::Error::new(
                std::io::ErrorKind::IsADirectory,
                "is a directory",
            ))));
        }
        Self::from_source(path, Box::new(file), meta.len(), rate, limits)
    }

    fn from_source(
        path: &Path,
        mut input: Box<dyn MediaSource>,
        size_bytes: u64,
        rate: Option<u32>,
        limits: &Limits,
    ) -> Result<Self, IntakeError> {
        let fail = |problem| IntakeError::new(path, problem);
        if let Some(rate) = rate.filter(|r| !(1_000..=192_000).contains(r)) {
            return Err(fail(Problem::Internal(format!(
                "requested output rate {rate} Hz is not supported"
            ))));
        }
        if size_bytes == 0 {
            return Err(fail(Problem::Empty));
        }
        if size_bytes > limits.max_input_bytes {
            return Err(fail(Problem::TooLarge {
                size: size_bytes,
                limit: limits.max_input_bytes,
            }));
        }
        let mut head = Vec::with_capacity(SNIFF_LEN);
        (&mut input)
            .take(SNIFF_LEN as u64)
            .read_to_end(&mut head)
            .map_err(|e| fail(Problem::Io(e)))?;
        let container = match sniff::sniff(&head) {
            Sniffed::Media(c) => c,
            Sniffed::Unsupported(what) => return Err(fail(Problem::UnsupportedCodec(what.into()))),
            Sniffed::NotMedia(what) => return Err(fail(Problem::NotMedia(what))),
            Sniffed::Unknown => return Err(fail(Problem::UnrecognisedFormat)),
        };
        if container == Container::Wav {
            check_wav_format(&head, limits).map_err(fail)?;
        }
        input
            .seek(SeekFrom::Start(0))
            .map_err(|e| fail(Problem::Io(e)))?;

        let opened = decode::open(input, container, limits, rate).map_err(fail)?;
        let source_rate = opened.source.output_rate();
        let resampler = MonoResampler::new(source_rate, rate.unwrap_or(source_rate))
            .map_err(|e| fail(Problem::Implausible(e)))?;
        Ok(Self {
            path: path.to_path_buf(),
            info: StreamInfo {
                container,
                track: opened.facts,
                size_bytes,
            },
            source: opened.source,
            resampler,
            limits: *limits,
            decoded: Vec::with_capacity(MIN_SOURCE_BLOCK * 2),
            chunk: Vec::new(),
            source_frames: 0,
            finished: false,
        })
    }

    pub fn info(&self) -> &StreamInfo {
        &self.info
    }

    /// Rate of the samples [`AudioStream::next_chunk`] returns.
    pub fn sample_rate(&self) -> u32 {
        self.resampler.output_rate()
    }

    /// Seconds of audio decoded so far.
    pub fn decoded_seconds(&self) -> f64 {
        self.source_frames as f64 / self.source.output_rate() as f64
    }

    pub fn decode_errors(&self) -> u64 {
        self.source.decode_errors()
    }

    /// The next block of mono samples, or `None` once the whole track has been delivered.
    pub fn next_chunk(&mut self) -> Result<Option<&[f32]>, IntakeError> {
        self.chunk.clear();
        while self.chunk.is_empty() && !self.finished {
            self.decoded.clear();
            while self.decoded.len() < MIN_SOURCE_BLOCK {
                let more = match self.source.next_mono(&mut self.decoded) {
                    Ok(more) => more,
                    // A WAV written to a pipe cannot state its length, so its end is wherever
                    // the bytes stop.
                    Err(Problem::Truncated { .. }) if declares_unknown_length(&self.info) => false,
                    Err(p) => return Err(self.with_context(p)),
                };
                if !more {
                    self.finished = true;
                    break;
                }
            }
            self.source_frames += self.decoded.len() as u64;
            let seen_s = self.decoded_seconds();
            if seen_s > self.limits.max_duration_s {
                return Err(IntakeError::new(
                    &self.path,
                    Problem::TooLong {
                        limit_s: self.limits.max_duration_s,
                        seen_s,
                    },
                ));
            }
            self.resampler.push(&self.decoded, &mut self.chunk);
            if self.finished {
                self.check_complete()?;
                self.resampler.finish(&mut self.chunk);
            }
        }
        Ok((!self.chunk.is_empty()).then_some(self.chunk.as_slice()))
    }

    /// Decodes the rest of the track into memory. For clips; long inputs should stream.
    pub fn read_to_end(mut self) -> Result<Vec<f32>, IntakeError> {
        let mut all = Vec::new();
        while let Some(chunk) = self.next_chunk()? {
            all.extend_from_slice(chunk);
        }
        Ok(all)
    }

    fn with_context(&self, problem: Problem) -> IntakeError {
        let problem = match problem {
            Problem::Truncated { .. } => Problem::Truncated {
                decoded_s: (self.source_frames + self.decoded.len() as u64) as f64
                    / self.source.output_rate() as f64,
                declared_s: self.info.track.declared_duration_s,
            },
            other => other,
        };
        IntakeError::new(&self.path, problem)
    }

    /// At the end of the track: was there audio at all, and as much as the header promised?
    fn check_complete(&self) -> Result<(), IntakeError> {
        if self.source_frames == 0 {
            return Err(IntakeError::new(&self.path, Problem::NoSamples));
        }
        let decoded = self.decoded_seconds();
        if let Some(declared) = self.info.track.declared_duration_s {
            // Encoder priming and padding make a few milliseconds of difference legitimate.
            let missing = declared - decoded;
            if missing > 0.1_f64.max(declared * 0.01) && !declares_unknown_length(&self.info) {
                return Err(self.with_context(Problem::Truncated {
                    decoded_s: decoded,
                    declared_s: Some(declared),
                }));
            }
        }
        Ok(())
    }
}

/// Refuses WAV headers whose declared layout no recorder writes, before a parser does
/// arithmetic with it (Symphonia 0.6 overflows on some).
fn check_wav_format(head: &[u8], limits: &Limits) -> Result<(), Problem> {
    let Some((channels, rate, bits)) = sniff::wav_format(head) else {
        return Ok(());
    };
    limits.check_layout(rate, usize::from(channels))?;
    if bits > 64 {
        return Err(Problem::Implausible(format!("{bits} bits per sample")));
    }
    Ok(())
}

/// Streaming writers (`ffmpeg -f wav pipe:`, live recorders) put 0xFFFFFFFF or a running
/// count in the WAV data size because they cannot go back and fix it; such a length is a
/// placeholder, not a promise.
fn declares_unknown_length(info: &StreamInfo) -> bool {
    info.container == Container::Wav
        && info.track.declared_duration_s.is_none_or(|declared| {
            let bytes_per_second = info.track.sample_rate as f64
                * info.track.channels as f64
                * f64::from(info.track.bits_per_sample.unwrap_or(8))
                / 8.0;
            declared * bytes_per_second >= f64::from(u32::MAX) - 1.0 * 1024.0 * 1024.0
        })
}

/// Establishes the [`MediaFacts`] of `path` by hashing its bytes and decoding it to the end.
pub fn probe(path: &Path, limits: &Limits) -> Result<MediaFacts, IntakeError> {
    let stream = AudioStream::open_native(path, limits)?;
    hashed_while(path, limits, stream, |_| {})
}

/// [`probe`] for bytes already in memory; `label` stands in for the path.
pub fn probe_bytes(
    label: &str,
    bytes: Vec<u8>,
    limits: &Limits,
) -> Result<MediaFacts, IntakeError> {
    let sha256 = crate::hash::sha256_bytes(&bytes);
    let mut stream = AudioStream::from_bytes(label, bytes, None, limits)?;
    drain(&mut stream, |_| {})?;
    Ok(facts(&stream, sha256))
}

/// Decodes `path` completely to mono at `rate` and establishes its [`MediaFacts`] (the hash
/// is computed from the file's bytes on a second thread while decoding runs): what an
/// analysis needs, in one pass over the file.
pub fn load(
    path: &Path,
    rate: u32,
    limits: &Limits,
) -> Result<(MediaFacts, Vec<f32>), IntakeError> {
    let stream = AudioStream::open(path, rate, limits)?;
    let mut samples = Vec::new();
    let facts = hashed_while(path, limits, stream, |chunk| {
        samples.extend_from_slice(chunk)
    })?;
    Ok((facts, samples))
}

/// [`load`] for bytes already in memory; `label` stands in for the path.
pub fn load_bytes(
    label: &str,
    bytes: Vec<u8>,
    rate: u32,
    limits: &Limits,
) -> Result<(MediaFacts, Vec<f32>), IntakeError> {
    let sha256 = crate::hash::sha256_bytes(&bytes);
    let mut stream = AudioStream::from_bytes(label, bytes, Some(rate), limits)?;
    let mut samples = Vec::new();
    drain(&mut stream, |chunk| samples.extend_from_slice(chunk))?;
    Ok((facts(&stream, sha256), samples))
}

fn hashed_while(
    path: &Path,
    limits: &Limits,
    mut stream: AudioStream,
    sink: impl FnMut(&[f32]),
) -> Result<MediaFacts, IntakeError> {
    let (hashed, decoded) = std::thread::scope(|scope| {
        let hasher = scope.spawn(|| {
            File::open(path)
                .and_then(|f| crate::hash::sha256_reader(f.take(limits.max_input_bytes)))
        });
        let decoded = drain(&mut stream, sink);
        let hashed = hasher
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("hashing thread panicked")));
        (hashed, decoded)
    });
    decoded?;
    let (sha256, hashed_bytes) = hashed.map_err(|e| IntakeError::new(path, Problem::Io(e)))?;
    if hashed_bytes != stream.info().size_bytes {
        return Err(IntakeError::new(
            path,
            Problem::Io(std::io::Error::other(
                "the file changed size while it was being read",
            )),
        ));
    }
    Ok(facts(&stream, sha256))
}

fn drain(stream: &mut AudioStream, mut sink: impl FnMut(&[f32])) -> Result<(), IntakeError> {
    while let Some(chunk) = stream.next_chunk()? {
        sink(chunk);
    }
    Ok(())
}

fn facts(stream: &AudioStream, sha256: String) -> MediaFacts {
    let info = stream.info();
    let duration_s = stream.decoded_seconds();
    MediaFacts {
        path: stream.path.display().to_string(),
        sha256,
        size_bytes: info.size_bytes,
        container: info.container.name().to_string(),
        codec: info.track.codec.clone(),
        sample_rate: info.track.sample_rate,
        channels: info.track.channels,
        bits_per_sample: info.track.bits_per_sample,
        duration_s,
        declared_duration_s: info.track.declared_duration_s,
        bitrate_bps: (info.size_bytes as f64 * 8.0 / duration_s).round() as u64,
        decode_errors: stream.decode_errors(),
        audio_tracks: info.track.audio_tracks,
    }
}
