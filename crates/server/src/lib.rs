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

/// The server's own database (jobs, API keys) inside a data directory.
pub fn server_db(data_dir: &std::path::Path) -> std::path::PathBuf {
    data_dir.join("server.sqlite")
}
pub use jobs::{JobState, JobStore};
