//! # aqiqat-server
//!
//! `aqiqat serve`: the HTTP face of the same code the CLI runs. An upload becomes a **job**
//! (persisted before the answer `202 Accepted` leaves), a bounded pool of worker threads scans
//! it with [`aqiqat_scan::Scanner`], signs the result and appends it to the evidence log
//! through group commit, and the job's state, result, evidence record and reports are then
//! served from there. When the queue is full the API says so (`503` with `Retry-After`)
//! instead of taking more than it can hold.
//!
//! **Owns:** routes, the job store and spool, the worker pool, API keys and rate limits, the
//! OpenAPI description.
//! **Must not touch:** scan logic, verdict policy, signing or report layout — it calls the
//! crates that own them, so the API can never disagree with the CLI.

mod api;
pub mod auth;
pub mod guard;
mod jobs;
pub mod queue;
pub mod remote;
pub mod stream;
pub mod twilio;
mod worker;

pub use api::{Config, LinkSettings, router, serve};

/// Opens the server's own database the one way both of its users (jobs, API keys) need it:
/// every commit durable, waiting on a busy writer, with the dialect's `schema` applied.
pub(crate) fn open_server_db(
    db: &aqiqat_store::Location,
    sqlite_schema: &str,
    postgres_schema: &str,
) -> Result<aqiqat_store::Db, String> {
    use aqiqat_store::{Db, Dialect, Durability, Sql};
    let fail = |e: aqiqat_store::DbError| format!("{}: {e}", db.describe());
    let mut conn = Db::open(db, Durability::Full).map_err(fail)?;
    let schema = match conn.dialect() {
        Dialect::Sqlite => sqlite_schema,
        Dialect::Postgres => postgres_schema,
    };
    // Two servers starting at once on one PostgreSQL database must not race to create the
    // same tables.
    conn.write_transaction(|tx| tx.batch(schema))
        .map_err(fail)?;
    Ok(conn)
}

/// Where the server keeps its data: the evidence log and its own tables (jobs, API keys).
/// Both are SQLite files in the data directory unless a `--database-url` names a PostgreSQL
/// database, which then holds both.
#[derive(Debug, Clone)]
pub struct Storage {
    pub log: aqiqat_store::Location,
    pub server: aqiqat_store::Location,
}

impl Storage {
    pub fn new(data_dir: &std::path::Path, database: Option<&aqiqat_store::Location>) -> Self {
        match database {
            Some(db) => Self {
                log: db.clone(),
                server: db.clone(),
            },
            None => Self {
                log: aqiqat_store::Location::Sqlite(data_dir.join("evidence.sqlite")),
                server: aqiqat_store::Location::Sqlite(server_db(data_dir)),
            },
        }
    }
}

/// The server's own SQLite database (jobs, API keys) inside a data directory.
/// The scanner a server or a worker runs: the built-in detectors, with the voice detector
/// read from `voice_model` instead when one is given (`--model`: a training run's folder or a
/// fused card). Every verdict and evidence record names the detector that made it, so a
/// server and its workers started with different models stay told apart.
pub(crate) fn scanner(
    limits: aqiqat_intake::Limits,
    voice_model: Option<&std::path::Path>,
) -> Result<aqiqat_scan::Scanner, String> {
    let scanner = aqiqat_scan::Scanner::embedded(limits)
        .map_err(|e| format!("the built-in detector cannot be loaded: {e}"))?;
    Ok(match voice_model {
        None => scanner,
        Some(path) => scanner.with_voice(
            aqiqat_voice::detector::VoiceDetector::from_path(path)
                .map_err(|e| format!("--model {}: {e}", path.display()))?,
        ),
    })
}

pub fn server_db(data_dir: &std::path::Path) -> std::path::PathBuf {
    data_dir.join("server.sqlite")
}
pub use jobs::{JobState, JobStore};

/// One recording given for an enrolment.
pub enum Recording {
    /// A file on this machine (the CLI).
    File(std::path::PathBuf),
    /// Bytes that arrived, with the name they came under (an upload).
    Bytes(String, Vec<u8>),
}

/// Why an enrolment was refused or failed; nothing was stored.
#[derive(Debug, thiserror::Error)]
pub enum EnrolFailure {
    #[error(transparent)]
    Recording(#[from] aqiqat_scan::EnrolError),
    #[error(transparent)]
    Store(#[from] aqiqat_voiceprints::VoiceprintError),
}

/// An enrolment that was stored, and the recordings the synthetic-speech check calls synthetic.
pub struct Enrolled {
    pub summary: aqiqat_voiceprints::Summary,
    pub synthetic: Vec<String>,
}

/// Enrols `name` from `recordings` for `owner`: each recording's voiceprint (refused when it
/// carries no usable voice), combined (at least 10 s of speech), stored sealed. `each` sees every
/// recording's share as it is measured. The CLI and the API both enrol through here.
pub fn enrol(
    scanner: &aqiqat_scan::Scanner,
    store: &std::sync::Mutex<aqiqat_voiceprints::VoiceprintStore>,
    owner: &aqiqat_voiceprints::Owner,
    name: &str,
    note: Option<&str>,
    recordings: Vec<Recording>,
    mut each: impl FnMut(&aqiqat_scan::EnrolmentSample),
) -> Result<Enrolled, EnrolFailure> {
    let mut samples = Vec::with_capacity(recordings.len());
    let mut names = Vec::with_capacity(recordings.len());
    let mut synthetic = Vec::new();
    for recording in recordings {
        let sample = match recording {
            Recording::File(path) => scanner.enrolment_sample_file(&path)?,
            Recording::Bytes(label, bytes) => scanner.enrolment_sample_bytes(&label, bytes)?,
        };
        each(&sample);
        let file_name = std::path::Path::new(&sample.label).file_name().map_or_else(
            || sample.label.clone(),
            |n| n.to_string_lossy().into_owned(),
        );
        if sample.synthetic_check == aqiqat_voice::detector::Verdict::Synthetic {
            synthetic.push(file_name.clone());
        }
        names.push((sample.file.sha256.clone(), file_name));
        samples.push(sample);
    }
    let (print, enrolled) = aqiqat_scan::speaker::combine(samples)?;
    let files = enrolled
        .into_iter()
        .map(|f| aqiqat_voiceprints::EnrolledFile {
            name: names
                .iter()
                .find(|(h, _)| *h == f.sha256)
                .map(|(_, n)| n.clone())
                .unwrap_or_default(),
            sha256: f.sha256,
            speech_s: f.speech_s,
        })
        .collect();
    let encoder = aqiqat_scan::speaker::encoder_id().weights_sha256;
    let summary = store.lock().unwrap_or_else(|p| p.into_inner()).enrol(
        owner,
        aqiqat_voiceprints::NewVoiceprint {
            name,
            note,
            files,
            encoder_sha256: &encoder,
            vector: &print.0,
        },
    )?;
    Ok(Enrolled { summary, synthetic })
}

/// A stored voiceprint as the scanner compares recordings with it.
pub fn claimed_voice(v: aqiqat_voiceprints::Voiceprint) -> aqiqat_scan::ClaimedVoice {
    aqiqat_scan::ClaimedVoice {
        enrolment: v
            .summary
            .files
            .iter()
            .map(|f| aqiqat_scan::EnrolmentFile {
                sha256: f.sha256.clone(),
                speech_s: f.speech_s,
            })
            .collect(),
        id: v.summary.id,
        name: v.summary.name,
        voiceprint: aqiqat_scan::Voiceprint(v.vector),
        encoder_sha256: v.summary.encoder_sha256,
    }
}
