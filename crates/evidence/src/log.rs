//! The append-only transparency log, stored in SQLite (the default) or PostgreSQL.
//!
//! Tables: `leaves` (index, leaf hash, the record's canonical bytes), `nodes` (the root of
//! every complete perfect subtree above the leaves), `tree_heads` (every signed head
//! handed out), `cases` and `case_records`. Triggers refuse any UPDATE or DELETE (and, on
//! PostgreSQL, TRUNCATE) on the first three, so even a careless SQL session cannot rewrite
//! history without dropping them.
//!
//! Crash safety comes from the database: one append is one write transaction (SQLite: `BEGIN
//! IMMEDIATE` in WAL mode with `synchronous=FULL`; PostgreSQL: a transaction holding an
//! advisory lock, `synchronous_commit=on`), so an append either is entirely on disk before
//! `append` returns or not visible at all. The in-memory [`Frontier`] is only a cache of the
//! right edge, rebuilt whenever another process has appended since.

use aqiqat_store::{Db, DbError, Dialect, Location, Sql, args};
use serde::Serialize;
use std::cell::RefCell;
use std::path::Path;

use crate::merkle::{self, Frontier, Hash, SubtreeHashes};
use crate::record::{
    CONSISTENCY_SCHEMA, ConsistencyProof, ENVELOPE_SCHEMA, Envelope, InclusionProof, SignedRecord,
    TreeHead,
};
use crate::{EvidenceError, Signer25519, utc_now};

pub use aqiqat_store::Durability;

const SCHEMA_VERSION: i64 = 1;

/// The tables, for both dialects: `INT`, `BYTES` and `NODES_OPTIONS` are filled in by
/// [`schema`]. On SQLite `leaves.idx` stays `INTEGER PRIMARY KEY` (the rowid itself).
const TABLES: &str = "
    CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS leaves (
        idx INT PRIMARY KEY,
        leaf_hash BYTES NOT NULL UNIQUE,
        data BYTES NOT NULL,
        media_sha256 TEXT,
        created_at TEXT
    );
    CREATE TABLE IF NOT EXISTS nodes (
        level INT NOT NULL,
        idx INT NOT NULL,
        hash BYTES NOT NULL,
        PRIMARY KEY (level, idx)
    )NODES_OPTIONS;
    CREATE TABLE IF NOT EXISTS tree_heads (
        tree_size INT PRIMARY KEY,
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
        leaf_idx INT NOT NULL REFERENCES leaves(idx),
        added_at TEXT NOT NULL,
        PRIMARY KEY (case_id, leaf_idx)
    );
    CREATE TABLE IF NOT EXISTS append_keys (
        key TEXT PRIMARY KEY,
        leaf_idx INT NOT NULL REFERENCES leaves(idx)
    );";

/// The append-only guards: the dialects share no trigger syntax.
const SQLITE_GUARDS: &str = "
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
    CREATE TRIGGER IF NOT EXISTS keys_append_only_u BEFORE UPDATE ON append_keys
        BEGIN SELECT RAISE(ABORT, 'the evidence log is append-only'); END;
    CREATE TRIGGER IF NOT EXISTS keys_append_only_d BEFORE DELETE ON append_keys
        BEGIN SELECT RAISE(ABORT, 'the evidence log is append-only'); END;";

const POSTGRES_GUARDS: &str = "
    CREATE OR REPLACE FUNCTION aqiqat_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'the evidence log is append-only'
                USING ERRCODE = 'integrity_constraint_violation';
        END $$;
    CREATE OR REPLACE TRIGGER leaves_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON leaves
        FOR EACH STATEMENT EXECUTE FUNCTION aqiqat_append_only();
    CREATE OR REPLACE TRIGGER nodes_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON nodes
        FOR EACH STATEMENT EXECUTE FUNCTION aqiqat_append_only();
    CREATE OR REPLACE TRIGGER heads_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON tree_heads
        FOR EACH STATEMENT EXECUTE FUNCTION aqiqat_append_only();
    CREATE OR REPLACE TRIGGER keys_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON append_keys
        FOR EACH STATEMENT EXECUTE FUNCTION aqiqat_append_only();";

fn schema(dialect: Dialect) -> String {
    let (int, bytes, nodes_options, guards) = match dialect {
        Dialect::Sqlite => ("INTEGER", "BLOB", " WITHOUT ROWID", SQLITE_GUARDS),
        Dialect::Postgres => ("BIGINT", "BYTEA", "", POSTGRES_GUARDS),
    };
    let tables = TABLES
        .replace("NODES_OPTIONS", nodes_options)
        .replace(" INT ", &format!(" {int} "))
        .replace("BYTES", bytes);
    format!("{tables}{guards}")
}

/// One record to append: filed under `case` when given; appended at most once per `key`.
#[derive(Debug, Clone, Copy)]
pub struct Append<'a> {
    pub record: &'a SignedRecord,
    pub case: Option<&'a str>,
    pub key: Option<&'a str>,
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
    // Reads need the connection mutably too (PostgreSQL's client is `&mut`); a log is used
    // by one thread at a time, so a RefCell keeps the read methods `&self`.
    db: RefCell<Db>,
    signer: Signer25519,
    frontier: Frontier,
}

struct StoredNodes<'a>(&'a mut dyn Sql);

impl SubtreeHashes for StoredNodes<'_> {
    type Error = DbError;
    fn perfect(&mut self, level: u32, index: u64) -> Result<Hash, Self::Error> {
        // Level 0 is the leaves' own hash column: storing it twice would cost every append
        // one more B-tree page.
        let row = if level == 0 {
            self.0
                .query_one("SELECT leaf_hash FROM leaves WHERE idx = ?1", args![index])?
        } else {
            self.0.query_one(
                "SELECT hash FROM nodes WHERE level = ?1 AND idx = ?2",
                args![level, index],
            )?
        };
        row.blob(0)?
            .try_into()
            .map_err(|_| DbError::other(format!("stored hash ({level}, {index}) is not 32 bytes")))
    }
}

fn stored_size(db: &mut dyn Sql) -> Result<u64, DbError> {
    let max = db
        .query_one("SELECT max(idx) FROM leaves", &[])?
        .opt_int(0)?;
    Ok(max.map_or(0, |m| m as u64 + 1))
}

fn require_case(db: &mut dyn Sql, id: &str) -> Result<(), EvidenceError> {
    let exists = db
        .query_one(
            "SELECT EXISTS(SELECT 1 FROM cases WHERE id = ?1)",
            args![id],
        )?
        .bool(0)?;
    if exists {
        Ok(())
    } else {
        Err(EvidenceError::BadInput(format!(
            "no case {id:?}; create it with `aqiqat case new`"
        )))
    }
}

impl Log {
    /// Opens (creating when absent) the SQLite log at `path`, bound to `signer`'s key: a log
    /// never changes key, so opening it with another is refused.
    pub fn open(path: &Path, signer: Signer25519) -> Result<Self, EvidenceError> {
        Self::open_with(path, signer, Durability::Full)
    }

    pub fn open_with(
        path: &Path,
        signer: Signer25519,
        durability: Durability,
    ) -> Result<Self, EvidenceError> {
        Self::open_at(&Location::Sqlite(path.to_owned()), signer, durability)
    }

    /// Opens the log in an SQLite file or a PostgreSQL database.
    pub fn open_at(
        location: &Location,
        signer: Signer25519,
        durability: Durability,
    ) -> Result<Self, EvidenceError> {
        let mut db = Db::open(location, durability)?;
        if let Some(conn) = db.as_sqlite() {
            // Appends insert a random 32-byte key into the leaf-hash index; past a few
            // hundred thousand records SQLite's default 2 MB page cache no longer holds its
            // inner pages.
            conn.pragma_update(None, "cache_size", -65_536)
                .map_err(DbError::from)?;
        }
        Self::migrate(&mut db, &signer)?;
        let size = stored_size(&mut db)?;
        let frontier = Frontier::load(&mut StoredNodes(&mut db), size)?;
        Ok(Self {
            db: RefCell::new(db),
            signer,
            frontier,
        })
    }

    fn migrate(db: &mut Db, signer: &Signer25519) -> Result<(), EvidenceError> {
        let key_id = signer.public().key_id();
        db.write_transaction(|tx| {
            tx.batch(&schema(tx.dialect()))?;
            let stored = tx.query_opt("SELECT value FROM meta WHERE key = 'log_id'", &[])?;
            match stored.map(|r| r.text(0)).transpose()? {
                None => {
                    tx.execute(
                        "INSERT INTO meta(key, value) VALUES ('log_id', ?1), ('schema_version', ?2)
                         ON CONFLICT DO NOTHING",
                        args![&key_id, &SCHEMA_VERSION.to_string()],
                    )?;
                    Ok(())
                }
                Some(id) if id == key_id => Ok(()),
                Some(id) => Err(EvidenceError::Internal(format!(
                    "this evidence log belongs to key {id}, but the signing key is {key_id}: \
                     a log never changes key"
                ))),
            }
        })
    }

    /// SQLite: copies the write-ahead log into the database file and empties it (before a
    /// backup, or to start a measurement from a settled state). PostgreSQL: nothing to do.
    pub fn checkpoint(&self) -> Result<(), EvidenceError> {
        if let Some(conn) = self.db.borrow().as_sqlite() {
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
                .map_err(DbError::from)?;
        }
        Ok(())
    }

    /// Where the log is stored (a PostgreSQL URL comes without its password).
    pub fn describe(&self) -> String {
        self.db.borrow().location().describe()
    }

    pub fn signer(&self) -> &Signer25519 {
        &self.signer
    }

    pub fn size(&self) -> Result<u64, EvidenceError> {
        Ok(stored_size(&mut *self.db.borrow_mut())?)
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
        let keyed: Vec<Append<'_>> = items
            .iter()
            .map(|&(record, case)| Append {
                record,
                case,
                key: None,
            })
            .collect();
        self.append_keyed(&keyed)
    }

    /// Appends records in one transaction, all or none; a record whose `key` was appended
    /// before is not appended again, and its entry is the earlier one. The way to make "one
    /// record per job" hold when a job is delivered twice: the key is the job's id.
    pub fn append_keyed(&mut self, items: &[Append<'_>]) -> Result<Vec<LogEntry>, EvidenceError> {
        let cached = &self.frontier;
        let (entries, frontier) = self.db.get_mut().write_transaction(|tx| {
            let size = stored_size(tx)?;
            let mut frontier = if size == cached.size() {
                cached.clone()
            } else {
                Frontier::load(&mut StoredNodes(tx), size)?
            };
            for case in items.iter().filter_map(|a| a.case) {
                require_case(tx, case)?;
            }
            let now = utc_now();
            let mut entries = Vec::with_capacity(items.len());
            for &Append { record, case, key } in items {
                if let Some(key) = key {
                    let earlier = tx.query_opt(
                        "SELECT k.leaf_idx, l.leaf_hash FROM append_keys k
                         JOIN leaves l ON l.idx = k.leaf_idx WHERE k.key = ?1",
                        args![key],
                    )?;
                    if let Some(row) = earlier {
                        entries.push(LogEntry {
                            index: row.int(0)? as u64,
                            leaf_hash: hex::encode(row.blob(1)?),
                        });
                        continue;
                    }
                }
                let index = frontier.size();
                let leaf = record.leaf_hash();
                let media = record.value["subject"]["sha256"].as_str();
                let created = record.value["created_at"].as_str();
                tx.execute(
                    "INSERT INTO leaves(idx, leaf_hash, data, media_sha256, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    args![index, &leaf[..], &record.canonical, media, created],
                )
                .map_err(|e| {
                    if e.is_constraint() {
                        EvidenceError::BadInput(format!(
                            "record {} is already in the log",
                            hex::encode(leaf)
                        ))
                    } else {
                        e.into()
                    }
                })?;
                for (level, idx, hash) in frontier.push(leaf).into_iter().skip(1) {
                    tx.execute(
                        "INSERT INTO nodes(level, idx, hash) VALUES (?1, ?2, ?3)",
                        args![level, idx, &hash[..]],
                    )?;
                }
                if let Some(case) = case {
                    tx.execute(
                        "INSERT INTO case_records(case_id, leaf_idx, added_at) VALUES (?1, ?2, ?3)",
                        args![case, index, &now],
                    )?;
                }
                if let Some(key) = key {
                    tx.execute(
                        "INSERT INTO append_keys(key, leaf_idx) VALUES (?1, ?2)",
                        args![key, index],
                    )?;
                }
                entries.push(LogEntry {
                    index,
                    leaf_hash: hex::encode(leaf),
                });
            }
            Ok::<_, EvidenceError>((entries, frontier))
        })?;
        self.frontier = frontier;
        Ok(entries)
    }

    /// The signed head for the log as it is now; the same head (not a new signature) for as
    /// long as the size does not change.
    pub fn tree_head(&mut self) -> Result<TreeHead, EvidenceError> {
        let size = self.size()?;
        if size != self.frontier.size() {
            self.frontier = Frontier::load(&mut StoredNodes(self.db.get_mut()), size)?;
        }
        if let Some(head) = self.stored_head(size)? {
            return Ok(head);
        }
        let head = TreeHead::sign(size, &self.frontier.root(), utc_now(), &self.signer);
        let body = serde_json::to_string(&head).expect("tree heads serialise");
        self.db.get_mut().execute(
            "INSERT INTO tree_heads(tree_size, body) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
            args![size, &body],
        )?;
        // Another process may have signed this size first; everyone returns the stored one.
        Ok(self.stored_head(size)?.expect("just stored"))
    }

    /// A head handed out earlier for `size`, if any.
    pub fn stored_head(&self, size: u64) -> Result<Option<TreeHead>, EvidenceError> {
        let body = self.db.borrow_mut().query_opt(
            "SELECT body FROM tree_heads WHERE tree_size = ?1",
            args![size],
        )?;
        body.map(|row| {
            serde_json::from_str(&row.text(0)?)
                .map_err(|e| EvidenceError::Internal(format!("stored tree head {size}: {e}")))
        })
        .transpose()
    }

    pub fn root_at(&self, size: u64) -> Result<Hash, EvidenceError> {
        self.check_size(size)?;
        Ok(merkle::root(
            &mut StoredNodes(&mut *self.db.borrow_mut()),
            size,
        )?)
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
        let mut db = self.db.borrow_mut();
        let mut nodes = StoredNodes(&mut *db);
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
        let path =
            merkle::consistency_path(&mut StoredNodes(&mut *self.db.borrow_mut()), old, new)?;
        Ok(ConsistencyProof {
            schema: CONSISTENCY_SCHEMA.into(),
            old_size: old,
            new_size: new,
            path: path.iter().map(hex::encode).collect(),
        })
    }

    pub fn record(&self, index: u64) -> Result<SignedRecord, EvidenceError> {
        let row = self
            .db
            .borrow_mut()
            .query_opt("SELECT data FROM leaves WHERE idx = ?1", args![index])?;
        let data = row
            .ok_or_else(|| EvidenceError::BadInput(format!("no record {index} in the log")))?
            .blob(0)?;
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
        let mut db = self.db.borrow_mut();
        let found = if let Ok(index) = query.parse::<u64>() {
            db.query_opt(
                "SELECT idx, leaf_hash FROM leaves WHERE idx = ?1",
                args![index],
            )?
        } else {
            let q = query.to_ascii_lowercase();
            if q.len() < 8 || q.len() > 64 || !q.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(EvidenceError::BadInput(format!(
                    "{query:?} is neither a record index nor a leaf hash (8 to 64 hex digits)"
                )));
            }
            // Prefix search over a byte-string key: the range [prefix00…, prefixff…].
            let lo = hex::decode(format!("{q:0<64}")).expect("hex");
            let hi = hex::decode(format!("{q:f<64}")).expect("hex");
            let rows = db.query(
                "SELECT idx, leaf_hash FROM leaves WHERE leaf_hash BETWEEN ?1 AND ?2 LIMIT 2",
                args![&lo, &hi],
            )?;
            if rows.len() > 1 {
                return Err(EvidenceError::BadInput(format!(
                    "{query} names more than one record; give more digits"
                )));
            }
            rows.into_iter().next()
        };
        let row = found
            .ok_or_else(|| EvidenceError::BadInput(format!("no record {query} in the log")))?;
        Ok(LogEntry {
            index: row.int(0)? as u64,
            leaf_hash: hex::encode(row.blob(1)?),
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
        const PAGE: u64 = 512;
        let mut db = self.db.borrow_mut();
        let mut problems = Vec::new();
        let mut frontier = Frontier::default();
        let mut heads: Vec<(u64, String)> = db
            .query(
                "SELECT tree_size, body FROM tree_heads ORDER BY tree_size",
                &[],
            )?
            .iter()
            .map(|r| Ok((r.int(0)? as u64, r.text(1)?)))
            .collect::<Result<_, DbError>>()?;
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
        // Page through the records rather than hold millions of them in memory at once.
        'pages: loop {
            let rows = db.query(
                "SELECT idx, leaf_hash, data FROM leaves WHERE idx >= ?1 ORDER BY idx LIMIT ?2",
                args![frontier.size(), PAGE],
            )?;
            if rows.is_empty() {
                break;
            }
            for row in &rows {
                let index = row.int(0)?;
                let stored_leaf = row.blob(1)?;
                let data = row.blob(2)?;
                if index as u64 != frontier.size() {
                    problems.push(format!("record {} is missing", frontier.size()));
                    break 'pages;
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
                    let stored = db
                        .query_opt(
                            "SELECT hash FROM nodes WHERE level = ?1 AND idx = ?2",
                            args![level, idx],
                        )?
                        .map(|r| r.blob(0))
                        .transpose()?;
                    if stored.as_deref() != Some(&hash[..]) {
                        problems.push(format!("node ({level}, {idx}) is missing or wrong"));
                    }
                }
                check_heads(&frontier, &mut heads, &mut problems);
            }
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

    /// Opens a case; `id` defaults to `case-N`.
    pub fn case_new(
        &mut self,
        id: Option<&str>,
        title: &str,
        note: Option<&str>,
    ) -> Result<Case, EvidenceError> {
        if let Some(id) = id
            && (id.is_empty()
                || id.len() > 64
                || !id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
                || id.starts_with('.'))
        {
            return Err(EvidenceError::BadInput(format!(
                "case id {id:?}: use 1 to 64 letters, digits, '-', '_' or '.', not starting with '.'"
            )));
        }
        let id = self.db.get_mut().write_transaction(|tx| {
            let id = match id {
                Some(id) => id.to_owned(),
                None => {
                    let mut n = tx.query_one("SELECT count(*) FROM cases", &[])?.int(0)? + 1;
                    loop {
                        let candidate = format!("case-{n}");
                        let taken = tx
                            .query_one(
                                "SELECT EXISTS(SELECT 1 FROM cases WHERE id = ?1)",
                                args![&candidate],
                            )?
                            .bool(0)?;
                        if !taken {
                            break candidate;
                        }
                        n += 1;
                    }
                }
            };
            tx.execute(
                "INSERT INTO cases(id, title, created_at, note) VALUES (?1, ?2, ?3, ?4)",
                args![&id, title, &utc_now(), note],
            )
            .map_err(|e| {
                if e.is_constraint() {
                    EvidenceError::BadInput(format!("case {id:?} already exists"))
                } else {
                    e.into()
                }
            })?;
            Ok::<_, EvidenceError>(id)
        })?;
        self.case(&id)
    }

    /// Files records under a case; a record already there is left as it is.
    pub fn case_add(&mut self, id: &str, indices: &[u64]) -> Result<Case, EvidenceError> {
        self.db.get_mut().write_transaction(|tx| {
            require_case(tx, id)?;
            let size = stored_size(tx)?;
            let now = utc_now();
            for &index in indices {
                if index >= size {
                    return Err(EvidenceError::BadInput(format!(
                        "no record {index} in the log"
                    )));
                }
                tx.execute(
                    "INSERT INTO case_records(case_id, leaf_idx, added_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT DO NOTHING",
                    args![id, index, &now],
                )?;
            }
            Ok(())
        })?;
        self.case(id)
    }

    pub fn case(&self, id: &str) -> Result<Case, EvidenceError> {
        let mut db = self.db.borrow_mut();
        let row = db.query_opt(
            "SELECT title, created_at, note FROM cases WHERE id = ?1",
            args![id],
        )?;
        let row = row.ok_or_else(|| {
            EvidenceError::BadInput(format!("no case {id:?}; `aqiqat case list` shows them"))
        })?;
        let records = db
            .query(
                "SELECT l.idx, l.leaf_hash FROM case_records c JOIN leaves l ON l.idx = c.leaf_idx
                 WHERE c.case_id = ?1 ORDER BY l.idx",
                args![id],
            )?
            .iter()
            .map(|r| {
                Ok(LogEntry {
                    index: r.int(0)? as u64,
                    leaf_hash: hex::encode(r.blob(1)?),
                })
            })
            .collect::<Result<_, DbError>>()?;
        Ok(Case {
            id: id.to_owned(),
            title: row.text(0)?,
            created_at: row.text(1)?,
            note: row.opt_text(2)?,
            records,
        })
    }

    pub fn cases(&self) -> Result<Vec<Case>, EvidenceError> {
        let ids: Vec<String> = self
            .db
            .borrow_mut()
            .query("SELECT id FROM cases ORDER BY created_at, id", &[])?
            .iter()
            .map(|r| r.text(0))
            .collect::<Result<_, _>>()?;
        ids.iter().map(|id| self.case(id)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_dialect_gets_its_own_types_and_no_placeholder_is_left() {
        let sqlite = schema(Dialect::Sqlite);
        assert!(sqlite.contains("idx INTEGER PRIMARY KEY,"), "the rowid key");
        assert!(sqlite.contains(") WITHOUT ROWID;"));
        assert!(sqlite.contains("leaf_hash BLOB NOT NULL"));
        let postgres = schema(Dialect::Postgres);
        assert!(postgres.contains("idx BIGINT PRIMARY KEY,"));
        assert!(postgres.contains("hash BYTEA NOT NULL"));
        for text in [sqlite, postgres] {
            for token in [" INT ", "BYTES", "NODES_OPTIONS"] {
                assert!(!text.contains(token), "{token} left in the schema");
            }
        }
    }
}
