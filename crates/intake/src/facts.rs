use serde::Serialize;

/// What a media file is, as established by reading and decoding all of it.
///
/// `duration_s` is the decoded duration; `declared_duration_s` is what the container claimed,
/// kept because a mismatch between the two is itself a finding.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MediaFacts {
    pub path: String,
    /// SHA-256 of the exact bytes read, lowercase hex.
    pub sha256: String,
    pub size_bytes: u64,
    /// Container as sniffed from the bytes (`wav`, `flac`, `mp3`, `ogg`, `mp4`, `matroska`, `amr`…).
    pub container: String,
    /// Audio codec of the track that was decoded (`pcm_s16le`, `pcm_mulaw`, `flac`, `mp3`, `aac`,
    /// `opus`, `vorbis`, `amr_nb`…).
    pub codec: String,
    pub sample_rate: u32,
    pub channels: usize,
    /// Bits per sample for PCM-like codecs; absent for perceptual codecs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bits_per_sample: Option<u32>,
    pub duration_s: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub declared_duration_s: Option<f64>,
    /// Average bitrate of the whole file: `size_bytes * 8 / duration_s`.
    pub bitrate_bps: u64,
    /// Packets that failed to decode and were skipped (concealed as silence-free gaps).
    pub decode_errors: u64,
    /// Number of audio tracks in the container; the first decodable one is analysed.
    pub audio_tracks: usize,
}
