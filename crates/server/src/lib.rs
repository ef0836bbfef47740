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
pub mod stream;
mod worker;

pub use api::{Config, router, serve};

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
pub fn server_db(data_dir: &std::path::Path) -> std::path::PathBuf {
    data_dir.join("server.sqlite")
}
pub use jobs::{JobState, JobStore};

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
