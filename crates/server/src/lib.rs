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
mod jobs;
pub mod stream;
mod worker;

pub use api::{Config, router, serve};

/// Opens the server's own database the one way both of its users (jobs, API keys) need it:
/// WAL, every commit fsynced, waiting on a busy writer, with `schema` applied.
pub(crate) fn open_server_db(
    db: &std::path::Path,
    schema: &str,
) -> Result<rusqlite::Connection, String> {
    let conn = rusqlite::Connection::open(db).map_err(|e| format!("{}: {e}", db.display()))?;
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .and_then(|_| conn.pragma_update(None, "journal_mode", "WAL"))
        .and_then(|_| conn.pragma_update(None, "synchronous", "FULL"))
        .and_then(|_| conn.execute_batch(schema))
        .map_err(|e| format!("{}: {e}", db.display()))?;
    Ok(conn)
}

/// The server's own database (jobs, API keys) inside a data directory.
pub fn server_db(data_dir: &std::path::Path) -> std::path::PathBuf {
    data_dir.join("server.sqlite")
}
pub use jobs::{JobState, JobStore};
