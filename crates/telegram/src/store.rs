//! What the bot keeps: where it is in Telegram's update stream, answers not yet delivered (the
//! outbox), each user's language, and which evidence records are whose. Users are known only
//! by a salted hash of their Telegram id (the salt is a private file beside the signing key),
//! so the database alone does not say who asked.
//!
//! The update stream is acknowledged the way the issue asks: an update's answers go into the
//! outbox and the offset moves past it in one transaction, and only then are the answers
//! sent (and deleted). A crash before the transaction refetches the update; a crash after it
//! finds the answers still in the outbox.

use aqiqat_store::{Db, DbError, Durability, Location, Sql, args};
use sha2::{Digest, Sha256};
use std::path::Path;

const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS telegram_offset (
        id INTEGER PRIMARY KEY,
        next_update BIGINT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS telegram_outbox (
        seq BIGINT PRIMARY KEY,
        update_id BIGINT NOT NULL,
        answer TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS telegram_users (
        user_hash TEXT PRIMARY KEY,
        lang TEXT
    );
    CREATE TABLE IF NOT EXISTS telegram_records (
        user_hash TEXT NOT NULL,
        record_id TEXT NOT NULL,
        leaf_index BIGINT NOT NULL,
        created_at TEXT NOT NULL,
        PRIMARY KEY (user_hash, record_id)
    );";

/// The SQLite file in the data directory when no database URL is given.
pub const SQLITE_FILE: &str = "telegram.sqlite";

pub struct BotStore {
    db: Db,
    salt: [u8; 32],
}

/// One answer waiting to be sent (JSON, see `crate::bot::Answer`).
pub struct Queued {
    pub seq: i64,
    pub answer: String,
}

impl BotStore {
    pub fn open(data_dir: &Path, database: Option<&Location>) -> Result<Self, String> {
        let location = database
            .cloned()
            .unwrap_or_else(|| Location::Sqlite(data_dir.join(SQLITE_FILE)));
        let mut db = Db::open(&location, Durability::Full).map_err(|e| e.to_string())?;
        db.batch(SCHEMA).map_err(|e| e.to_string())?;
        let salt = load_or_create_salt(&data_dir.join("keys"))?;
        Ok(Self { db, salt })
    }

    /// The salted hash a user is known by.
    pub fn user(&self, telegram_id: i64) -> String {
        let mut h = Sha256::new();
        h.update(self.salt);
        h.update(telegram_id.to_le_bytes());
        hex::encode(h.finalize())
    }

    /// The first update not yet handled.
    pub fn next_update(&mut self) -> Result<i64, DbError> {
        Ok(self
            .db
            .query_opt("SELECT next_update FROM telegram_offset WHERE id = 1", &[])?
            .map(|r| r.int(0))
            .transpose()?
            .unwrap_or(0))
    }

    /// Marks `update_id` handled and queues its answers, in one transaction.
    pub fn handled(&mut self, update_id: i64, answers: &[String]) -> Result<(), DbError> {
        self.db.write_transaction(|tx| {
            let seq: i64 = tx
                .query_one("SELECT COALESCE(MAX(seq), 0) FROM telegram_outbox", &[])?
                .int(0)?;
            for (i, answer) in answers.iter().enumerate() {
                tx.execute(
                    "INSERT INTO telegram_outbox(seq, update_id, answer) VALUES (?1, ?2, ?3)",
                    args![seq + 1 + i as i64, update_id, answer.as_str()],
                )?;
            }
            let next = update_id + 1;
            let changed = tx.execute(
                "UPDATE telegram_offset SET next_update = ?1 WHERE id = 1 AND next_update < ?1",
                args![next],
            )?;
            if changed == 0 {
                let exists = tx
                    .query_opt("SELECT 1 FROM telegram_offset WHERE id = 1", &[])?
                    .is_some();
                if !exists {
                    tx.execute(
                        "INSERT INTO telegram_offset(id, next_update) VALUES (1, ?1)",
                        args![next],
                    )?;
                }
            }
            Ok::<_, DbError>(())
        })
    }

    /// Answers not yet delivered, oldest first.
    pub fn outbox(&mut self) -> Result<Vec<Queued>, DbError> {
        let rows = self
            .db
            .query("SELECT seq, answer FROM telegram_outbox ORDER BY seq", &[])?;
        rows.iter()
            .map(|r| {
                Ok(Queued {
                    seq: r.int(0)?,
                    answer: r.text(1)?,
                })
            })
            .collect()
    }

    pub fn delivered(&mut self, seq: i64) -> Result<(), DbError> {
        self.db
            .execute("DELETE FROM telegram_outbox WHERE seq = ?1", args![seq])
            .map(|_| ())
    }

    pub fn lang(&mut self, user: &str) -> Result<Option<String>, DbError> {
        self.db
            .query_opt(
                "SELECT lang FROM telegram_users WHERE user_hash = ?1",
                args![user],
            )?
            .map(|r| r.opt_text(0))
            .transpose()
            .map(Option::flatten)
    }

    pub fn set_lang(&mut self, user: &str, lang: &str) -> Result<(), DbError> {
        // The same upsert in both dialects.
        self.db
            .execute(
                "INSERT INTO telegram_users(user_hash, lang) VALUES (?1, ?2)
                 ON CONFLICT (user_hash) DO UPDATE SET lang = excluded.lang",
                args![user, lang],
            )
            .map(|_| ())
    }

    /// Remembers that `user` asked for the record `record_id` (at `leaf_index` in the log).
    pub fn remember(
        &mut self,
        user: &str,
        record_id: &str,
        leaf_index: u64,
        at: &str,
    ) -> Result<(), DbError> {
        self.db
            .execute(
                "INSERT INTO telegram_records(user_hash, record_id, leaf_index, created_at)
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
                args![user, record_id, leaf_index, at],
            )
            .map(|_| ())
    }

    /// The log index of `user`'s record whose id starts with `prefix` (at least 8 hex digits),
    /// if exactly one does.
    pub fn record_of(
        &mut self,
        user: &str,
        prefix: &str,
    ) -> Result<Option<(String, u64)>, DbError> {
        let prefix = prefix.trim().to_ascii_lowercase();
        if prefix.len() < 8 || !prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(None);
        }
        let rows = self.db.query(
            "SELECT record_id, leaf_index FROM telegram_records WHERE user_hash = ?1",
            args![user],
        )?;
        let mut found = Vec::new();
        for r in &rows {
            let id = r.text(0)?;
            if id.starts_with(&prefix) {
                found.push((id, r.int(1)? as u64));
            }
        }
        Ok(if found.len() == 1 { found.pop() } else { None })
    }
}

fn load_or_create_salt(keys: &Path) -> Result<[u8; 32], String> {
    let path = keys.join("telegram-salt");
    if let Ok(bytes) = std::fs::read(&path) {
        return <[u8; 32]>::try_from(bytes.as_slice())
            .map_err(|_| format!("{}: not 32 bytes", path.display()));
    }
    std::fs::create_dir_all(keys).map_err(|e| format!("{}: {e}", keys.display()))?;
    let mut salt = [0u8; 32];
    getrandom::fill(&mut salt).map_err(|e| format!("no randomness: {e}"))?;
    write_private(&path, &salt).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(salt)
}

/// Writes a file only its owner can read, created anew.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handled_updates_move_the_offset_and_queue_their_answers_together() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = BotStore::open(dir.path(), None).unwrap();
        assert_eq!(store.next_update().unwrap(), 0);
        store.handled(41, &["a".into(), "b".into()]).unwrap();
        store.handled(42, &[]).unwrap();
        assert_eq!(store.next_update().unwrap(), 43);
        let queued = store.outbox().unwrap();
        assert_eq!(
            queued.iter().map(|q| q.answer.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        store.delivered(queued[0].seq).unwrap();
        drop(store);
        // Reopened: the offset and the undelivered answer are still there.
        let mut store = BotStore::open(dir.path(), None).unwrap();
        assert_eq!(store.next_update().unwrap(), 43);
        assert_eq!(store.outbox().unwrap().len(), 1);
        // An old update handled again never moves the offset back.
        store.handled(10, &[]).unwrap();
        assert_eq!(store.next_update().unwrap(), 43);
    }

    #[test]
    fn users_are_salted_hashes_and_records_are_found_by_their_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = BotStore::open(dir.path(), None).unwrap();
        let (alice, bob) = (store.user(1001), store.user(1002));
        assert_ne!(alice, bob);
        assert_eq!(alice.len(), 64);
        let other = tempfile::tempdir().unwrap();
        assert_ne!(
            BotStore::open(other.path(), None).unwrap().user(1001),
            alice
        );
        store.set_lang(&alice, "kk").unwrap();
        store.set_lang(&alice, "ru").unwrap();
        assert_eq!(store.lang(&alice).unwrap().as_deref(), Some("ru"));
        assert_eq!(store.lang(&bob).unwrap(), None);
        store
            .remember(
                &alice,
                "0123456789abcdef0123456789abcdef",
                7,
                "2026-11-30T00:00:00Z",
            )
            .unwrap();
        assert_eq!(
            store.record_of(&alice, "01234567").unwrap(),
            Some(("0123456789abcdef0123456789abcdef".into(), 7))
        );
        assert_eq!(store.record_of(&bob, "01234567").unwrap(), None);
        assert_eq!(store.record_of(&alice, "0123").unwrap(), None, "too short");
    }
}
