//! # aqiqat-evidence
//!
//! What a court can check without trusting aqiqat: every scan becomes a **record** (the exact
//! input's SHA-256, each analyser's name, version and weights hash, scores, timeline, verdict,
//! UTC time, tool version, case context), canonicalised by RFC 8785 and signed with the
//! installation's Ed25519 key. Records are appended to a **transparency log**, a Merkle tree
//! hashed as RFC 9162 prescribes, kept in SQLite or PostgreSQL; the log hands out **signed tree heads**,
//! **inclusion proofs** and **consistency proofs**. [`verify`] checks a record, its proof,
//! a tree head and the media offline, with nothing but those files. Records group into
//! **cases**, which export as self-contained bundles.
//!
//! **Owns:** the record and tree-head formats, canonical JSON, keys and signatures, the Merkle
//! log and its storage, cases, bundles, offline verification.
//! **Must not touch:** any analyser. A scan result arrives as an opaque JSON value plus the
//! list of analysers that made it, so new analysers need no change here.

pub mod bundle;
pub mod canonical;
pub mod group;
pub mod keys;
pub mod log;
pub mod merkle;
pub mod record;
pub mod verify;

use std::path::Path;

pub use keys::{PublicKey, Signer25519};
pub use log::{Case, Log, LogEntry};
pub use record::ConsistencyProof;
pub use record::{
    AnalyserId, Context, Envelope, InclusionProof, RecordDraft, SignedRecord, Subject, TreeHead,
};

#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("evidence store: {0}")]
    Store(#[from] aqiqat_store::DbError),
    /// Something the user gave us is wrong (unknown record, unknown case, unreadable file).
    #[error("{0}")]
    BadInput(String),
    #[error("{0}")]
    Internal(String),
}

impl EvidenceError {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.display().to_string(),
            source,
        }
    }

    pub fn is_bad_input(&self) -> bool {
        matches!(self, Self::BadInput(_))
    }
}

/// Indented JSON with a final newline: how evidence files are written for people to read
/// (verification never depends on the layout).
pub fn pretty_json(value: &impl serde::Serialize) -> String {
    let mut s = serde_json::to_string_pretty(value).expect("JSON values serialise");
    s.push('\n');
    s
}

/// UTC now, RFC 3339 with milliseconds (`2026-11-26T18:20:36.123Z`).
pub fn utc_now() -> String {
    let now = jiff::Timestamp::now();
    let ms = now.as_millisecond();
    jiff::Timestamp::from_millisecond(ms)
        .expect("now is representable")
        .strftime("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}
