//! The append-only transparency log, stored in SQLite.
//!
//! Tables: `leaves` (index, leaf hash, the record's canonical bytes), `nodes` (the root of
//! every complete perfect subtree above the leaves), `tree_heads` (every signed head
//! handed out), `cases` and `case_records`. Triggers refuse any UPDATE or DELETE on the first
//! three, so even a careless SQL session cannot rewrite history without dropping them.
//!
//! Crash safety comes from SQLite: one append is one `BEGIN IMMEDIATE` transaction in WAL
//! mode with `synchronous=FULL`, so an append either is entirely on disk before `append`
//! returns or not visible at all. The in-memory [`Frontier`] is only a cache of the right edge,
//! rebuilt whenever another process has appended since.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde::Serialize;
use std::path::{Path, PathBuf};

use crate::merkle::{self, Frontier, Hash, SubtreeHashes};
use crate::record::{
    CONSISTENCY_SCHEMA, ConsistencyProof, ENVELOPE_SCHEMA, Envelope, InclusionProof, SignedRecord,
    TreeHead,
};
use crate::{EvidenceError, Signer25519, utc_now};

const SCHEMA_VERSION: i64 = 1;

/// Durability of each append against *power loss*; both survive a killed process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// fsync on every commit (the default: evidence is worth a millisecond).
    Full,
    /// fsync at checkpoints only: a power cut may lose the last appends, never corrupt.
    Normal,
}

/// One record's place in the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogEntry {
    pub index: u64,
    pub leaf_hash: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Case {
    pub id: String,
    pub title: String,
    pub created_at: String,
    pub note: Option<String>,
    pub records: Vec<LogEntry>,
}

/// What [`Log::check`] found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckReport {
    pub tree_size: u64,
    pub root_hash: String,
    pub tree_heads_checked: u64,
    pub problems: Vec<String>,
}

pub struct Log {
    conn: Connection,
    signer: Signer25519,
    frontier: Frontier,
    path: PathBuf,
}

struct StoredNodes<'a>(&'a Connection);

impl SubtreeHashes for StoredNodes<'_> {
    type Error = rusqlite::Error;
    fn perfect(&mut self, level: u32, index: u64) -> Result<Hash, Self::Error> {
        // Level 0 is the leaves' own hash column: storing it twice would cost every append
        // one more B-tree page.
        let bytes: Vec<u8> = if level == 0 {
            let mut stmt = self
                .0
                .prepare_cached("SELECT leaf_hash FROM leaves WHERE idx = ?1")?;
            stmt.query_row([index as i64], |r| r.get(0))?
        } else {
            let mut stmt = self
                .0
                .prepare_cached("SELECT hash FROM nodes WHERE level = ?1 AND idx = ?2")?;
            stmt.query_row(params![level, index as i64], |r| r.get(0))?
        };
        bytes.try_into().map_err(|_| {
            rusqlite::Error::InvalidColumnType(0, "hash".into(), rusqlite::types::Type::Blob)
        })
    }
}

impl Log {
    /// Opens (creating when absent) the log at `path`, bound to `signer`'s key: a log never
    /// changes key, so opening it with another is refused.
    pub fn open(path: &Path, signer: Signer25519) -> Result<Self, EvidenceError> {
        Self::open_with(path, signer, Durability::Full)
    }

    pub fn open_with(
        path: &Path,
        signer: Signer25519,
        durability: Durability,
    ) -> Result<Self, EvidenceError> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| EvidenceError::io(parent, e))?;
        }
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(
            None,
            "synchronous",
            match durability {
                Durability::Full => "FULL",
                Durability::Normal => "NORMAL",
            },
        )?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // Appends insert a random 32-byte key into the leaf-hash index; past a few hundred
        // thousand records SQLite's default 2 MB page cache no longer holds its inner pages.
        conn.pragma_update(None, "cache_size", -65_536)?;
        Self::migrate(&conn, &signer)?;
        let size = Self::stored_size(&conn)?;
        let frontier = Frontier::load(&mut StoredNodes(&conn), size)?;
        Ok(Self {
            conn,
            signer,
            frontier,
            path: path.to_owned(),
        })
    }

    fn migrate(conn: &Connection, signer: &Signer25519) -> Result<(), EvidenceError> {
        conn.execute_batch(
            "BEGIN IMMEDIATE;
             CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS leaves (
                 idx INTEGER PRIMARY KEY,
                 leaf_hash BLOB NOT NULL UNIQUE,
                 data BLOB NOT NULL,
                 media_sha256 TEXT,
                 created_at TEXT
             );
             CREATE TABLE IF NOT EXISTS nodes (
                 level INTEGER NOT NULL,
                 idx INTEGER NOT NULL,
                 hash BLOB NOT NULL,
                 PRIMARY KEY (level, idx)
             ) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS tree_heads (
                 tree_size INTEGER PRIMARY KEY,
                 body TEXT NOT NULL
             );
             CREATE TABLE IF NOT EXISTS cases (
                 id TEXT PRIMARY KEY,
                 title TEXT NOT NULL,
                 created_at TEXT NOT NULL,
                 note TEXT
             );
             CREATE TABLE IF NOT EXISTS case_records (
                 case_id TEXT NOT NULL REFERENCES cases(id),
                 leaf_idx INTEGER NOT NULL REFERENCES leaves(idx),
                 added_at TEXT NOT NULL,
                 PRIMARY KEY (case_id, leaf_idx)
             );
             CREATE TRIGGER IF NOT EXISTS leaves_append_only_u BEFORE UPDATE ON leaves
                 BEGIN SELECT RAISE(ABORT, 'the evidence log is append-only'); END;
             CREATE TRIGGER IF NOT EXISTS leaves_append_only_d BEFORE DELETE ON leaves
                 BEGIN SELECT RAISE(ABORT, 'the evidence log is append-only'); END;
             CREATE TRIGGER IF NOT EXISTS nodes_append_only_u BEFORE UPDATE ON nodes
                 BEGIN SELECT RAISE(ABORT, 'the evidence log is append-only'); END;
             CREATE TRIGGER IF NOT EXISTS nodes_append_only_d BEFORE DELETE ON nodes
                 BEGIN SELECT RAISE(ABORT, 'the evidence log is append-only'); END;
             CREATE TRIGGER IF NOT EXISTS heads_append_only_u BEFORE UPDATE ON tree_heads
                 BEGIN SELECT RAISE(ABORT, 'the evidence log is append-only'); END;
             CREATE TRIGGER IF NOT EXISTS heads_append_only_d BEFORE DELETE ON tree_heads
                 BEGIN SELECT RAISE(ABORT, 'the evidence log is append-only'); END;
             COMMIT;",
        )?;
        let key_id = signer.public().key_id();
        let stored: Option<String> = conn
            .query_row("SELECT value FROM meta WHERE key = 'log_id'", [], |r| {
                r.get(0)
            })
            .optional()?;
        match stored {
            None => {
                conn.execute(
                    "INSERT OR IGNORE INTO meta(key, value) VALUES ('log_id', ?1), ('schema_version', ?2)",
                    params![key_id, SCHEMA_VERSION.to_string()],
                )?;
            }
            Some(id) if id == key_id => {}
            Some(id) => {
                return Err(EvidenceError::Internal(format!(
                    "this evidence log belongs to key {id}, but the signing key is {key_id}: \
                     a log never changes key"
                )));
            }
        }
        Ok(())
    }

    fn stored_size(conn: &Connection) -> Result<u64, rusqlite::Error> {
        let max: Option<i64> = conn.query_row("SELECT max(idx) FROM leaves", [], |r| r.get(0))?;
        Ok(max.map_or(0, |m| m as u64 + 1))
    }

    /// Copies the write-ahead log into the database file and empties it (before a backup,
    /// or to start a measurement from a settled state).
    pub fn checkpoint(&self) -> Result<(), EvidenceError> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn signer(&self) -> &Signer25519 {
        &self.signer
    }

    pub fn size(&self) -> Result<u64, EvidenceError> {
        Ok(Self::stored_size(&self.conn)?)
    }

    /// Appends one record (and files it under `case` when given) in one transaction.
    pub fn append(
        &mut self,
        record: &SignedRecord,
        case: Option<&str>,
    ) -> Result<LogEntry, EvidenceError> {
        let mut entries = self.append_all(std::slice::from_ref(record), case)?;
        Ok(entries.pop().expect("one record in, one entry out"))
    }

    /// Appends records in one transaction: all or none. The way to reach high rates, since
    /// each transaction costs one fsync.
    pub fn append_all(
        &mut self,
        records: &[SignedRecord],
        case: Option<&str>,
    ) -> Result<Vec<LogEntry>, EvidenceError> {
        let items: Vec<(&SignedRecord, Option<&str>)> = records.iter().map(|r| (r, case)).collect();
        self.append_items(&items)
    }

    /// Appends records, each with its own case (or none), in one transaction: all or none.
    pub fn append_items(
        &mut self,
        items: &[(&SignedRecord, Option<&str>)],
    ) -> Result<Vec<LogEntry>, EvidenceError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let size = Self::stored_size(&tx)?;
        let mut frontier = if size == self.frontier.size() {
            self.frontier.clone()
        } else {
            Frontier::load(&mut StoredNodes(&tx), size)?
        };
        for case in items.iter().filter_map(|(_, c)| *c) {
            Self::require_case(&tx, case)?;
        }
        let now = utc_now();
        let mut entries = Vec::with_capacity(items.len());
        {
            let mut leaf_stmt = tx.prepare_cached(
                "INSERT INTO leaves(idx, leaf_hash, data, media_sha256, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            let mut node_stmt =
                tx.prepare_cached("INSERT INTO nodes(level, idx, hash) VALUES (?1, ?2, ?3)")?;
            let mut case_stmt = tx.prepare_cached(
                "INSERT INTO case_records(case_id, leaf_idx, added_at) VALUES (?1, ?2, ?3)",
            )?;
            for &(record, case) in items {
                let index = frontier.size();
                let leaf = record.leaf_hash();
                let media = record.value["subject"]["sha256"].as_str();
                let created = record.value["created_at"].as_str();
                leaf_stmt
                    .execute(params![
                        index as i64,
                        &leaf[..],
                        &record.canonical,
                        media,
                        created
                    ])
                    .map_err(|e| match e {
                        rusqlite::Error::SqliteFailure(f, _)
                            if f.code == rusqlite::ErrorCode::ConstraintViolation =>
                        {
                            EvidenceError::BadInput(format!(
                                "record {} is already in the log",
                                hex::encode(leaf)
                            ))
                        }
                        e => e.into(),
                    })?;
                for (level, idx, hash) in frontier.push(leaf).into_iter().skip(1) {
                    node_stmt.execute(params![level, idx as i64, &hash[..]])?;
                }
                if let Some(case) = case {
                    case_stmt.execute(params![case, index as i64, &now])?;
                }
                entries.push(LogEntry {
                    index,
                    leaf_hash: hex::encode(leaf),
                });
            }
        }
        tx.commit()?;
        self.frontier = frontier;
        Ok(entries)
    }

    /// The signed head for the log as it is now; the same head (not a new signature) for as
    /// long as the size does not change.
    pub fn tree_head(&mut self) -> Result<TreeHead, EvidenceError> {
        let size = self.size()?;
        if size != self.frontier.size() {
            self.frontier = Frontier::load(&mut StoredNodes(&self.conn), size)?;
        }
        if let Some(head) = self.stored_head(size)? {
            return Ok(head);
        }
        let head = TreeHead::sign(size, &self.frontier.root(), utc_now(), &self.signer);
        let body = serde_json::to_string(&head).expect("tree heads serialise");
        self.conn.execute(
            "INSERT OR IGNORE INTO tree_heads(tree_size, body) VALUES (?1, ?2)",
            params![size as i64, body],
        )?;
        // Another process may have signed this size first; everyone returns the stored one.
        Ok(self.stored_head(size)?.expect("just stored"))
    }

    /// A head handed out earlier for `size`, if any.
    pub fn stored_head(&self, size: u64) -> Result<Option<TreeHead>, EvidenceError> {
        let body: Option<String> = self
            .conn
            .query_row(
                "SELECT body FROM tree_heads WHERE tree_size = ?1",
                [size as i64],
                |r| r.get(0),
            )
            .optional()?;
        body.map(|b| {
            serde_json::from_str(&b)
                .map_err(|e| EvidenceError::Internal(format!("stored tree head {size}: {e}")))
        })
        .transpose()
    }

    pub fn root_at(&self, size: u64) -> Result<Hash, EvidenceError> {
        self.check_size(size)?;
        Ok(merkle::root(&mut StoredNodes(&self.conn), size)?)
    }

    fn check_size(&self, size: u64) -> Result<(), EvidenceError> {
        let current = self.size()?;
        if size > current {
            return Err(EvidenceError::BadInput(format!(
                "the log holds {current} records, not {size}"
            )));
        }
        Ok(())
    }

    pub fn inclusion(&self, index: u64, tree_size: u64) -> Result<InclusionProof, EvidenceError> {
        self.check_size(tree_size)?;
        if index >= tree_size {
            return Err(EvidenceError::BadInput(format!(
                "record {index} is not in a tree of {tree_size} records"
            )));
        }
        let mut nodes = StoredNodes(&self.conn);
        let leaf = nodes.perfect(0, index)?;
        let path = merkle::inclusion_path(&mut nodes, index, tree_size)?;
        Ok(InclusionProof::new(index, tree_size, &leaf, &path))
    }

    pub fn consistency(&self, old: u64, new: u64) -> Result<ConsistencyProof, EvidenceError> {
        self.check_size(new)?;
        if old == 0 || old > new {
            return Err(EvidenceError::BadInput(format!(
                "no consistency proof from {old} to {new} records: need 0 < old <= new"
            )));
        }
        let path = merkle::consistency_path(&mut StoredNodes(&self.conn), old, new)?;
        Ok(ConsistencyProof {
            schema: CONSISTENCY_SCHEMA.into(),
            old_size: old,
            new_size: new,
            path: path.iter().map(hex::encode).collect(),
        })
    }

    pub fn record(&self, index: u64) -> Result<SignedRecord, EvidenceError> {
        let data: Option<Vec<u8>> = self
            .conn
            .query_row(
                "SELECT data FROM leaves WHERE idx = ?1",
                [index as i64],
                |r| r.get(0),
            )
            .optional()?;
        let data =
            data.ok_or_else(|| EvidenceError::BadInput(format!("no record {index} in the log")))?;
        let value = serde_json::from_slice(&data)
            .map_err(|e| EvidenceError::Internal(format!("stored record {index}: {e}")))?;
        Ok(SignedRecord {
            value,
            canonical: data,
        })
    }

    /// Finds a record by log index or by (a prefix of at least 8 digits of) its leaf hash.
    pub fn find(&self, query: &str) -> Result<LogEntry, EvidenceError> {
        let query = query.trim();
        let found: Option<(i64, Vec<u8>)> = if let Ok(index) = query.parse::<u64>() {
            self.conn
                .query_row(
                    "SELECT idx, leaf_hash FROM leaves WHERE idx = ?1",
                    [index as i64],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?
        } else {
            let q = query.to_ascii_lowercase();
            if q.len() < 8 || q.len() > 64 || !q.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(EvidenceError::BadInput(format!(
                    "{query:?} is neither a record index nor a leaf hash (8 to 64 hex digits)"
                )));
            }
            // Prefix search over a BLOB key: the range [prefix00…, prefixff…].
            let lo = hex::decode(format!("{q:0<64}")).expect("hex");
            let hi = hex::decode(format!("{q:f<64}")).expect("hex");
            let mut stmt = self.conn.prepare_cached(
                "SELECT idx, leaf_hash FROM leaves WHERE leaf_hash BETWEEN ?1 AND ?2 LIMIT 2",
            )?;
            let rows: Vec<(i64, Vec<u8>)> = stmt
                .query_map(params![lo, hi], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?;
            if rows.len() > 1 {
                return Err(EvidenceError::BadInput(format!(
                    "{query} names more than one record; give more digits"
                )));
            }
            rows.into_iter().next()
        };
        let (index, hash) = found
            .ok_or_else(|| EvidenceError::BadInput(format!("no record {query} in the log")))?;
        Ok(LogEntry {
            index: index as u64,
            leaf_hash: hex::encode(hash),
        })
    }

    /// A record with its inclusion proof against the current signed tree head.
    pub fn envelope(&mut self, index: u64) -> Result<Envelope, EvidenceError> {
        let head = self.tree_head()?;
        self.envelope_at(index, &head)
    }

    pub fn envelope_at(&self, index: u64, head: &TreeHead) -> Result<Envelope, EvidenceError> {
        let record = self.record(index)?;
        Ok(Envelope {
            schema: ENVELOPE_SCHEMA.into(),
            record: record.value,
            inclusion: self.inclusion(index, head.tree_size)?,
            tree_head: head.clone(),
        })
    }

    /// Recomputes the whole tree from the stored records and compares it with the stored
    /// nodes and every signed head. Reads everything: minutes at millions of records.
    pub fn check(&self) -> Result<CheckReport, EvidenceError> {
        let mut problems = Vec::new();
        let mut frontier = Frontier::default();
        let mut heads: Vec<(u64, String)> = {
            let mut stmt = self
                .conn
                .prepare("SELECT tree_size, body FROM tree_heads ORDER BY tree_size")?;
            stmt.query_map([], |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?)))?
                .collect::<Result<_, _>>()?
        };
        heads.reverse();
        let mut checked_heads = 0u64;
        let mut check_heads = |frontier: &Frontier,
                               heads: &mut Vec<(u64, String)>,
                               problems: &mut Vec<String>| {
            while let Some((size, body)) = heads.last() {
                if *size != frontier.size() {
                    break;
                }
                checked_heads += 1;
                match serde_json::from_str::<serde_json::Value>(body) {
                    Ok(v) => {
                        if crate::record::verify_object(&v).is_err() {
                            problems
                                .push(format!("tree head at size {size}: signature does not hold"));
                        }
                        if v["root_hash"].as_str() != Some(&hex::encode(frontier.root())) {
                            problems.push(format!(
                                "tree head at size {size}: its root is not the root of the stored records"
                            ));
                        }
                    }
                    Err(e) => problems.push(format!("tree head at size {size}: {e}")),
                }
                heads.pop();
            }
        };
        check_heads(&frontier, &mut heads, &mut problems);
        let mut stmt = self
            .conn
            .prepare("SELECT idx, leaf_hash, data FROM leaves ORDER BY idx")?;
        let mut rows = stmt.query([])?;
        let mut node_stmt = self
            .conn
            .prepare_cached("SELECT hash FROM nodes WHERE level = ?1 AND idx = ?2")?;
        while let Some(row) = rows.next()? {
            let index: i64 = row.get(0)?;
            let stored_leaf: Vec<u8> = row.get(1)?;
            let data: Vec<u8> = row.get(2)?;
            if index as u64 != frontier.size() {
                problems.push(format!("record {} is missing", frontier.size()));
                break;
            }
            let leaf = merkle::leaf_hash(&data);
            if stored_leaf != leaf {
                problems.push(format!(
                    "record {index}: stored leaf hash does not match its bytes"
                ));
            }
            match serde_json::from_slice::<serde_json::Value>(&data) {
                Ok(v) => {
                    if crate::canonical::to_vec(&v) != data {
                        problems.push(format!("record {index}: bytes are not canonical JSON"));
                    }
                    if let Err(e) = crate::record::verify_object(&v) {
                        problems.push(format!("record {index}: signature: {e}"));
                    }
                }
                Err(e) => problems.push(format!("record {index}: not JSON: {e}")),
            }
            for (level, idx, hash) in frontier.push(leaf).into_iter().skip(1) {
                let stored: Option<Vec<u8>> = node_stmt
                    .query_row(params![level, idx as i64], |r| r.get(0))
                    .optional()?;
                if stored.as_deref() != Some(&hash[..]) {
                    problems.push(format!("node ({level}, {idx}) is missing or wrong"));
                }
            }
            check_heads(&frontier, &mut heads, &mut problems);
        }
        for (size, _) in heads {
            problems.push(format!(
                "a tree head claims {size} records; the log holds fewer"
            ));
        }
        Ok(CheckReport {
            tree_size: frontier.size(),
            root_hash: hex::encode(frontier.root()),
            tree_heads_checked: checked_heads,
            problems,
        })
    }

    // ---- cases ----

    fn require_case(conn: &Connection, id: &str) -> Result<(), EvidenceError> {
        let exists: bool = conn.query_row(
            "SELECT EXISTS(SELECT 1 FROM cases WHERE id = ?1)",
            [id],
            |r| r.get(0),
        )?;
        if exists {
            Ok(())
        } else {
            Err(EvidenceError::BadInput(format!(
                "no case {id:?}; create it with `aqiqat case new`"
            )))
        }
    }

    /// Opens a case; `id` defaults to `case-N`.
    pub fn case_new(
        &mut self,
        id: Option<&str>,
        title: &str,
        note: Option<&str>,
    ) -> Result<Case, EvidenceError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let id = match id {
            Some(id) => {
                if id.is_empty()
                    || id.len() > 64
                    || !id
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
                    || id.starts_with('.')
                {
                    return Err(EvidenceError::BadInput(format!(
                        "case id {id:?}: use 1 to 64 letters, digits, '-', '_' or '.', not starting with '.'"
                    )));
                }
                id.to_owned()
            }
            None => {
                let n: i64 = tx.query_row("SELECT count(*) FROM cases", [], |r| r.get(0))?;
                let mut n = n + 1;
                loop {
                    let candidate = format!("case-{n}");
                    let taken: bool = tx.query_row(
                        "SELECT EXISTS(SELECT 1 FROM cases WHERE id = ?1)",
                        [&candidate],
                        |r| r.get(0),
                    )?;
                    if !taken {
                        break candidate;
                    }
                    n += 1;
                }
            }
        };
        let created = utc_now();
        tx.execute(
            "INSERT INTO cases(id, title, created_at, note) VALUES (?1, ?2, ?3, ?4)",
            params![id, title, created, note],
        )
        .map_err(|e| match e {
            rusqlite::Error::SqliteFailure(f, _)
                if f.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                EvidenceError::BadInput(format!("case {id:?} already exists"))
            }
            e => e.into(),
        })?;
        tx.commit()?;
        self.case(&id)
    }

    /// Files records under a case; a record already there is left as it is.
    pub fn case_add(&mut self, id: &str, indices: &[u64]) -> Result<Case, EvidenceError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        Self::require_case(&tx, id)?;
        let size = Self::stored_size(&tx)?;
        let now = utc_now();
        for &index in indices {
            if index >= size {
                return Err(EvidenceError::BadInput(format!(
                    "no record {index} in the log"
                )));
            }
            tx.execute(
                "INSERT OR IGNORE INTO case_records(case_id, leaf_idx, added_at) VALUES (?1, ?2, ?3)",
                params![id, index as i64, now],
            )?;
        }
        tx.commit()?;
        self.case(id)
    }

    pub fn case(&self, id: &str) -> Result<Case, EvidenceError> {
        let row: Option<(String, String, Option<String>)> = self
            .conn
            .query_row(
                "SELECT title, created_at, note FROM cases WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let (title, created_at, note) = row.ok_or_else(|| {
            EvidenceError::BadInput(format!("no case {id:?}; `aqiqat case list` shows them"))
        })?;
        let mut stmt = self.conn.prepare_cached(
            "SELECT l.idx, l.leaf_hash FROM case_records c JOIN leaves l ON l.idx = c.leaf_idx
             WHERE c.case_id = ?1 ORDER BY l.idx",
        )?;
        let records = stmt
            .query_map([id], |r| {
                Ok(LogEntry {
                    index: r.get::<_, i64>(0)? as u64,
                    leaf_hash: hex::encode(r.get::<_, Vec<u8>>(1)?),
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(Case {
            id: id.to_owned(),
            title,
            created_at,
            note,
            records,
        })
    }

    pub fn cases(&self) -> Result<Vec<Case>, EvidenceError> {
        let ids: Vec<String> = {
            let mut stmt = self
                .conn
                .prepare("SELECT id FROM cases ORDER BY created_at, id")?;
            stmt.query_map([], |r| r.get(0))?
                .collect::<Result<_, _>>()?
        };
        ids.iter().map(|id| self.case(id)).collect()
    }
}
