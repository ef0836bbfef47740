//! Jobs: one row per upload in the server's database (`server.sqlite` in the data directory,
//! or the PostgreSQL database of `--database-url`) and the upload's bytes in the local spool
//! folder under a name the server made (never one derived from the request). A job is
//! durable before its `202` is sent; a job the process was killed in the middle of is queued
//! again when the server starts.

use aqiqat_evidence::Context;
use aqiqat_store::{Arg, Db, DbError, Dialect, Location, Row, Sql, args};
use serde::Serialize;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Queued,
    Running,
    Done,
    Failed,
}

impl JobState {
    fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Done => "done",
            JobState::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "queued" => JobState::Queued,
            "running" => JobState::Running,
            "done" => JobState::Done,
            _ => JobState::Failed,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct JobError {
    /// `bad_input` (the upload's fault) or `internal`.
    pub kind: String,
    pub message: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct RecordRef {
    pub index: u64,
    pub leaf_hash: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Job {
    pub id: String,
    pub state: JobState,
    pub created_at: String,
    pub updated_at: String,
    pub name: Option<String>,
    pub size_bytes: u64,
    #[serde(skip)]
    pub context: Context,
    /// The scan result, exactly as `aqiqat scan --json` prints it.
    pub result: Option<Value>,
    pub error: Option<JobError>,
    /// Where the signed record sits in the evidence log.
    pub record: Option<RecordRef>,
}

pub struct JobStore {
    conn: Mutex<Db>,
    spool: PathBuf,
}

/// One schema for both dialects: SQLite reads `BIGINT` as its INTEGER.
const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS jobs (
        id TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        name TEXT,
        size_bytes BIGINT NOT NULL,
        case_id TEXT,
        operator TEXT,
        note TEXT,
        result TEXT,
        error_kind TEXT,
        error_message TEXT,
        leaf_index BIGINT,
        leaf_hash TEXT
    );
    CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state);
    CREATE TABLE IF NOT EXISTS job_claims (
        job_id TEXT PRIMARY KEY,
        voiceprint_id TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS job_sources (
        job_id TEXT PRIMARY KEY,
        source TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS job_uploads (
        job_id TEXT PRIMARY KEY,
        bytes BYTEA NOT NULL
    );";

fn jobs_error(e: DbError) -> String {
    format!("jobs: {e}")
}

/// Job ids are 32 lowercase hex digits made here; anything else names no job.
pub fn valid_id(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

pub fn new_id() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the OS has randomness");
    hex::encode(bytes)
}

impl JobStore {
    pub fn open(db: &Location, spool: &Path) -> Result<Self, String> {
        std::fs::create_dir_all(spool).map_err(|e| format!("{}: {e}", spool.display()))?;
        let conn = crate::open_server_db(db, SCHEMA, SCHEMA)?;
        let store = Self {
            conn: Mutex::new(conn),
            spool: spool.to_owned(),
        };
        store.remove_orphans();
        Ok(store)
    }

    pub fn spool_path(&self, id: &str) -> PathBuf {
        debug_assert!(valid_id(id));
        self.spool.join(id)
    }

    /// Spool files without a job row: a crash between writing the bytes and the row.
    fn remove_orphans(&self) {
        let Ok(entries) = std::fs::read_dir(&self.spool) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let known = valid_id(&name) && self.get(&name).ok().flatten().is_some();
            if !known {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Db> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A fresh spool path for an upload while it arrives. Its name is not a job id, so a
    /// crash mid-upload leaves a file the next start removes.
    pub fn incoming_path(&self) -> PathBuf {
        self.spool.join(format!(".incoming-{}", new_id()))
    }

    /// Makes a job of a complete upload written at `incoming`: the bytes are fsynced and
    /// moved to the job's spool file, then the row is committed. After this returns the job
    /// survives a crash; on failure nothing of it remains.
    pub fn create(
        &self,
        id: &str,
        incoming: &Path,
        size: u64,
        about: &NewJob<'_>,
    ) -> Result<(), String> {
        let path = self.spool_path(id);
        let settle = || -> std::io::Result<()> {
            std::fs::File::open(incoming)?.sync_all()?;
            std::fs::rename(incoming, &path)?;
            // The rename itself must reach the disk before the row says the file is there.
            std::fs::File::open(&self.spool)?.sync_all()
        };
        settle().map_err(|e| {
            let _ = std::fs::remove_file(incoming);
            format!("spool: {e}")
        })?;
        let now = aqiqat_evidence::utc_now();
        self.lock()
            .write_transaction(|tx| insert_job(tx, id, &now, size, about))
            .map_err(|e| {
                let _ = std::fs::remove_file(&path);
                jobs_error(e)
            })?;
        Ok(())
    }

    /// Makes a job whose upload every worker can read: the row, the claim and the bytes in
    /// one transaction of the shared database (for `serve --queue`). After this returns the
    /// job survives a crash of this machine.
    pub fn create_shared(&self, id: &str, bytes: &[u8], about: &NewJob<'_>) -> Result<(), String> {
        let now = aqiqat_evidence::utc_now();
        self.lock()
            .write_transaction(|tx| {
                insert_job(tx, id, &now, bytes.len() as u64, about)?;
                tx.execute(
                    "INSERT INTO job_uploads(job_id, bytes) VALUES (?1, ?2)",
                    args![id, bytes],
                )?;
                Ok::<_, DbError>(())
            })
            .map_err(jobs_error)
    }

    /// A shared job's upload, while the job is unfinished.
    pub fn upload(&self, id: &str) -> Result<Option<Vec<u8>>, String> {
        let row = self
            .lock()
            .query_opt("SELECT bytes FROM job_uploads WHERE job_id = ?1", args![id])
            .map_err(jobs_error)?;
        row.map(|r| r.blob(0).map_err(jobs_error)).transpose()
    }

    /// Removes a job that could not be queued: row, claim and upload.
    pub fn discard(&self, id: &str) -> Result<(), String> {
        self.lock()
            .write_transaction(|tx| {
                for table in [
                    "job_uploads WHERE job_id",
                    "job_claims WHERE job_id",
                    "job_sources WHERE job_id",
                    "jobs WHERE id",
                ] {
                    tx.execute(&format!("DELETE FROM {table} = ?1"), args![id])?;
                }
                Ok::<_, DbError>(())
            })
            .map_err(jobs_error)
    }

    /// The voiceprint a job's scan is to compare the voice with, if one was claimed.
    pub fn claimed(&self, id: &str) -> Result<Option<String>, String> {
        let row = self
            .lock()
            .query_opt(
                "SELECT voiceprint_id FROM job_claims WHERE job_id = ?1",
                args![id],
            )
            .map_err(jobs_error)?;
        row.map(|r| r.text(0).map_err(jobs_error)).transpose()
    }

    /// Where a job's bytes were fetched from (the scan result's `source`, as JSON), when the
    /// job came from a link.
    pub fn source(&self, id: &str) -> Result<Option<String>, String> {
        let row = self
            .lock()
            .query_opt(
                "SELECT source FROM job_sources WHERE job_id = ?1",
                args![id],
            )
            .map_err(jobs_error)?;
        row.map(|r| r.text(0).map_err(jobs_error)).transpose()
    }

    fn set(&self, id: &str, sql: &str, extra: &[Arg<'_>]) -> Result<(), String> {
        let now = aqiqat_evidence::utc_now();
        let mut all = vec![Arg::from(id), Arg::from(&now)];
        all.extend_from_slice(extra);
        self.lock()
            .execute(sql, &all)
            .map(|_| ())
            .map_err(jobs_error)
    }

    pub fn mark_running(&self, id: &str) -> Result<(), String> {
        self.set(
            id,
            "UPDATE jobs SET state = 'running', updated_at = ?2 WHERE id = ?1",
            &[],
        )
    }

    pub fn finish(&self, id: &str, result: &Value, index: u64, leaf: &str) -> Result<(), String> {
        let text = result.to_string();
        self.set(
            id,
            "UPDATE jobs SET state = 'done', updated_at = ?2, result = ?3, leaf_index = ?4, leaf_hash = ?5 WHERE id = ?1",
            args![&text, index, leaf],
        )?;
        self.drop_upload(id);
        Ok(())
    }

    pub fn fail(&self, id: &str, kind: &str, message: &str) -> Result<(), String> {
        self.set(
            id,
            "UPDATE jobs SET state = 'failed', updated_at = ?2, error_kind = ?3, error_message = ?4 WHERE id = ?1",
            args![kind, message],
        )?;
        self.drop_upload(id);
        Ok(())
    }

    /// A finished job's bytes are not kept, wherever they were.
    fn drop_upload(&self, id: &str) {
        let _ = std::fs::remove_file(self.spool_path(id));
        let _ = self
            .lock()
            .execute("DELETE FROM job_uploads WHERE job_id = ?1", args![id]);
    }

    pub fn get(&self, id: &str) -> Result<Option<Job>, String> {
        if !valid_id(id) {
            return Ok(None);
        }
        let row = self
            .lock()
            .query_opt(
                "SELECT id, state, created_at, updated_at, name, size_bytes, case_id, operator, note,
                        result, error_kind, error_message, leaf_index, leaf_hash
                 FROM jobs WHERE id = ?1",
                args![id],
            )
            .map_err(jobs_error)?;
        row.map(|r| job_from_row(&r).map_err(jobs_error))
            .transpose()
    }

    /// Jobs accepted but not finished, oldest first: the work a restart must resume. On a
    /// shared PostgreSQL database only those whose upload is in this machine's spool: the
    /// others belong to another server.
    pub fn unfinished(&self) -> Result<Vec<String>, String> {
        let mut conn = self.lock();
        let shared = conn.dialect() == Dialect::Postgres;
        let rows = conn
            .query(
                "SELECT id FROM jobs WHERE state IN ('queued', 'running') ORDER BY created_at",
                &[],
            )
            .map_err(jobs_error)?;
        let ids = rows
            .iter()
            .map(|r| r.text(0))
            .collect::<Result<Vec<_>, _>>()
            .map_err(jobs_error)?;
        Ok(ids
            .into_iter()
            .filter(|id| !shared || (valid_id(id) && self.spool_path(id).exists()))
            .collect())
    }

    pub fn counts(&self) -> Vec<(JobState, u64)> {
        let rows = self
            .lock()
            .query("SELECT state, count(*) FROM jobs GROUP BY state", &[])
            .unwrap_or_default();
        rows.iter()
            .filter_map(|r| Some((JobState::parse(&r.text(0).ok()?), r.int(1).ok()? as u64)))
            .collect()
    }
}

/// What a new job is, beyond its bytes.
#[derive(Debug, Clone, Copy)]
pub struct NewJob<'a> {
    /// The upload's name, for people.
    pub name: Option<&'a str>,
    pub context: &'a Context,
    /// The voiceprint id the voice is to be compared with.
    pub claimed: Option<&'a str>,
    /// The scan result's `source` (JSON) when the bytes came from a link.
    pub source: Option<&'a str>,
}

/// A new job's row, its claimed voiceprint and its link.
fn insert_job(
    tx: &mut aqiqat_store::Tx<'_>,
    id: &str,
    now: &str,
    size: u64,
    about: &NewJob<'_>,
) -> Result<(), DbError> {
    let NewJob {
        name,
        context,
        claimed,
        source,
    } = *about;
    tx.execute(
        "INSERT INTO jobs(id, state, created_at, updated_at, name, size_bytes, case_id, operator, note)
         VALUES (?1, 'queued', ?2, ?2, ?3, ?4, ?5, ?6, ?7)",
        args![
            id,
            now,
            name,
            size,
            &context.case_id,
            &context.operator,
            &context.note
        ],
    )?;
    if let Some(voiceprint) = claimed {
        tx.execute(
            "INSERT INTO job_claims(job_id, voiceprint_id) VALUES (?1, ?2)",
            args![id, voiceprint],
        )?;
    }
    if let Some(source) = source {
        tx.execute(
            "INSERT INTO job_sources(job_id, source) VALUES (?1, ?2)",
            args![id, source],
        )?;
    }
    Ok(())
}

fn job_from_row(r: &Row) -> Result<Job, DbError> {
    let result = r.opt_text(9)?;
    let kind = r.opt_text(10)?;
    Ok(Job {
        id: r.text(0)?,
        state: JobState::parse(&r.text(1)?),
        created_at: r.text(2)?,
        updated_at: r.text(3)?,
        name: r.opt_text(4)?,
        size_bytes: r.int(5)? as u64,
        context: Context {
            case_id: r.opt_text(6)?,
            operator: r.opt_text(7)?,
            note: r.opt_text(8)?,
        },
        result: result.and_then(|t| serde_json::from_str(&t).ok()),
        error: match kind {
            Some(kind) => Some(JobError {
                kind,
                message: r.opt_text(11)?.unwrap_or_default(),
            }),
            None => None,
        },
        record: match (r.opt_int(12)?, r.opt_text(13)?) {
            (Some(i), Some(h)) => Some(RecordRef {
                index: i as u64,
                leaf_hash: h,
            }),
            _ => None,
        },
    })
}

impl JobState {
    pub fn label(self) -> &'static str {
        self.as_str()
    }
}
