use std::fmt;
use std::path::{Path, PathBuf};

/// A refusal or failure of intake, naming the file it concerns.
#[derive(Debug, thiserror::Error)]
#[error("{}: {problem}", path.display())]
pub struct IntakeError {
    pub path: PathBuf,
    pub problem: Problem,
}

impl IntakeError {
    pub fn new(path: &Path, problem: Problem) -> Self {
        Self {
            path: path.to_path_buf(),
            problem,
        }
    }

    /// `true` when the input is at fault (exit code 2, HTTP 4xx); `false` for our own failures.
    pub fn is_bad_input(&self) -> bool {
        self.problem.is_bad_input()
    }
}

/// What went wrong. Every variant but [`Problem::Internal`] and most [`Problem::Io`] errors is
/// the input's fault.
#[derive(Debug, thiserror::Error)]
pub enum Problem {
    #[error("the file is empty")]
    Empty,
    #[error("this is {0}, not audio or video")]
    NotMedia(&'static str),
    #[error("unrecognised format: the first bytes match no supported audio or video container")]
    UnrecognisedFormat,
    #[error("unsupported codec: {0}")]
    UnsupportedCodec(String),
    #[error("the file contains no audio track")]
    NoAudioTrack,
    #[error("the audio track holds no samples (zero-length audio)")]
    NoSamples,
    #[error("corrupted {container} header: {detail}")]
    CorruptHeader {
        container: &'static str,
        detail: String,
    },
    #[error("corrupted audio stream: {detail}")]
    CorruptStream { detail: String },
    #[error("corrupted {format} image: {detail}")]
    CorruptImage {
        format: &'static str,
        detail: String,
    },
    #[error(
        "truncated stream: it ends after {decoded_s:.2} s of audio{}",
        declared_s.map(|d| format!(" but its header declares {d:.2} s")).unwrap_or_default()
    )]
    Truncated {
        decoded_s: f64,
        declared_s: Option<f64>,
    },
    #[error("implausible stream parameters: {0}")]
    Implausible(String),
    #[error("longer than the limit of {}: refused after {} of audio", Hms(*limit_s), Hms(*seen_s))]
    TooLong { limit_s: f64, seen_s: f64 },
    #[error("file of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge { size: u64, limit: u64 },
    #[error("cannot read: {0}")]
    Io(#[source] std::io::Error),
    #[error("internal error: {0}")]
    Internal(String),
}

impl Problem {
    pub fn is_bad_input(&self) -> bool {
        match self {
            Problem::Internal(_) => false,
            // A missing or unreadable file is the caller's mistake; a failing disk is not.
            Problem::Io(err) => matches!(
                err.kind(),
                std::io::ErrorKind::NotFound
                    | std::io::ErrorKind::PermissionDenied
                    | std::io::ErrorKind::IsADirectory
                    | std::io::ErrorKind::InvalidInput
                    | std::io::ErrorKind::UnexpectedEof
            ),
            _ => true,
        }
    }

    /// A stable machine-readable name for the problem, for JSON output and APIs.
    pub fn code(&self) -> &'static str {
        match self {
            Problem::Empty => "empty",
            Problem::NotMedia(_) => "not_media",
            Problem::UnrecognisedFormat => "unrecognised_format",
            Problem::UnsupportedCodec(_) => "unsupported_codec",
            Problem::NoAudioTrack => "no_audio_track",
            Problem::NoSamples => "no_samples",
            Problem::CorruptHeader { .. } => "corrupt_header",
            Problem::CorruptStream { .. } => "corrupt_stream",
            Problem::CorruptImage { .. } => "corrupt_image",
            Problem::Truncated { .. } => "truncated",
            Problem::Implausible(_) => "implausible_parameters",
            Problem::TooLong { .. } => "too_long",
            Problem::TooLarge { .. } => "too_large",
            Problem::Io(_) => "io",
            Problem::Internal(_) => "internal",
        }
    }
}

/// Seconds shown as `1h02m03s` in messages a person reads.
struct Hms(f64);

impl fmt::Display for Hms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total = self.0.max(0.0).round() as u64;
        let (h, m, s) = (total / 3600, total / 60 % 60, total % 60);
        if h > 0 {
            write!(f, "{h}h{m:02}m{s:02}s")
        } else if m > 0 {
            write!(f, "{m}m{s:02}s")
        } else {
            write!(f, "{:.1}s", self.0)
        }
    }
}
