//! What the bot keeps: where it is in Telegram's update stream, answers not yet delivered (the
//! outbox), each user's language, and which evidence records are whose. Users are known only
//! by a salted hash of their Telegram id (the salt is a private file beside the signing key),
//! so the database alone does not say who asked.
//!
//! The update stream is acknowledged the way the issue asks: an update's answers go into the
//! outbox and the offset moves past it in one transaction, and only then are the answers
//! sent (and deleted). A crash before the transaction refetches the update; a crash after it
//! finds the answers still in the outbox.
//!
//! A webhook delivers updates one request each, several at once and again when an answer
//! went missing, so an offset is not enough there: every handled update's id is kept (for two
//! days, longer than Telegram keeps an update) and a repeated one is acknowledged, not
//! answered twice.

use aqiqat_store::{Db, DbError, Durability, Location, Sql, args};
use sha2::{Digest, Sha256};
use std::path::Path;

const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS telegram_offset (
        id INTEGER PRIMARY KEY,
        next_update BIGINT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS telegram_handled (
        update_id BIGINT PRIMARY KEY,
        handled_at BIGINT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS telegram_handled_at ON telegram_handled(handled_at);
    CREATE TABLE IF NOT EXISTS telegram_outbox (
        seq BIGINT PRIMARY KEY,
        update_id BIGINT NOT NULL,
        answer TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS telegram_users (
        user_hash TEXT PRIMARY KEY,
        lang TEXT,
        keep INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE IF NOT EXISTS telegram_records (
        user_hash TEXT NOT NULL,
        record_id TEXT NOT NULL,
        leaf_index BIGINT NOT NULL,
        created_at TEXT NOT NULL,
        media_kept INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (user_hash, record_id)
    );";

/// Where kept media lives, under the data directory: one owner-only file per record, named by
/// the record's leaf hash.
pub const MEDIA_DIR: &str = "telegram-media";

/// How long a handled update's id is remembered: Telegram keeps an undelivered update for
/// 24 hours, so a repeat can come no later than that.
const HANDLED_KEPT_S: i64 = 2 * 24 * 3600;

/// The SQLite file in the data directory when no database URL is given.
pub const SQLITE_FILE: &str = "telegram.sqlite";

pub struct BotStore {
    db: Db,
    salt: [u8; 32],
    media: std::path::PathBuf,
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
        Ok(Self {
            db,
            salt,
            media: data_dir.join(MEDIA_DIR),
        })
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

    /// Whether `update_id` was handled already (a webhook's repeated delivery).
    pub fn was_handled(&mut self, update_id: i64) -> Result<bool, DbError> {
        Ok(self
            .db
            .query_opt(
                "SELECT 1 FROM telegram_handled WHERE update_id = ?1",
                args![update_id],
            )?
            .is_some())
    }

    /// Marks `update_id` handled and queues its answers, in one transaction.
    pub fn handled(&mut self, update_id: i64, answers: &[String]) -> Result<(), DbError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        self.db.write_transaction(|tx| {
            tx.execute(
                "INSERT INTO telegram_handled(update_id, handled_at) VALUES (?1, ?2) \
                 ON CONFLICT DO NOTHING",
                args![update_id, now],
            )?;
            tx.execute(
                "DELETE FROM telegram_handled WHERE handled_at < ?1",
                args![now - HANDLED_KEPT_S],
            )?;
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

    /// Whether `user` asked to keep their media as evidence (`/keep`).
    pub fn keeps(&mut self, user: &str) -> Result<bool, DbError> {
        Ok(self
            .db
            .query_opt(
                "SELECT keep FROM telegram_users WHERE user_hash = ?1",
                args![user],
            )?
            .map(|r| r.int(0))
            .transpose()?
            .unwrap_or(0)
            != 0)
    }

    pub fn set_keep(&mut self, user: &str, keep: bool) -> Result<(), DbError> {
        self.db
            .execute(
                "INSERT INTO telegram_users(user_hash, keep) VALUES (?1, ?2)
                 ON CONFLICT (user_hash) DO UPDATE SET keep = excluded.keep",
                args![user, i64::from(keep)],
            )
            .map(|_| ())
    }

    /// Remembers that `user` asked for the record `record_id` (at `leaf_index` in the log),
    /// and keeps `media` beside it when given (the user asked to keep evidence).
    pub fn remember(
        &mut self,
        user: &str,
        record_id: &str,
        leaf_index: u64,
        at: &str,
        media: Option<&[u8]>,
    ) -> Result<(), String> {
        if let Some(bytes) = media {
            std::fs::create_dir_all(&self.media)
                .map_err(|e| format!("{}: {e}", self.media.display()))?;
            let path = self.media.join(record_id);
            if !path.exists() {
                write_private(&path, bytes).map_err(|e| format!("{}: {e}", path.display()))?;
            }
        }
        self.db
            .execute(
                "INSERT INTO telegram_records(user_hash, record_id, leaf_index, created_at, media_kept)
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
                args![user, record_id, leaf_index, at, i64::from(media.is_some())],
            )
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// `/forget`: deletes the media kept for `user`'s records and every link between the user
    /// and their records and settings. The log keeps the signed records (hashes and results,
    /// no user). Returns (records unlinked, media files deleted).
    pub fn forget(&mut self, user: &str) -> Result<(u64, u64), String> {
        let rows = self
            .db
            .query(
                "SELECT record_id FROM telegram_records WHERE user_hash = ?1 AND media_kept = 1",
                args![user],
            )
            .map_err(|e| e.to_string())?;
        let mut deleted = 0;
        for r in &rows {
            let id = r.text(0).map_err(|e| e.to_string())?;
            // Record ids are hex leaf hashes made here; anything else is not a file name.
            if id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
                match std::fs::remove_file(self.media.join(&id)) {
                    Ok(()) => deleted += 1,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(format!("{id}: {e}")),
                }
            }
        }
        let unlinked = self
            .db
            .write_transaction(|tx| {
                let n = tx.execute(
                    "DELETE FROM telegram_records WHERE user_hash = ?1",
                    args![user],
                )?;
                tx.execute(
                    "DELETE FROM telegram_users WHERE user_hash = ?1",
                    args![user],
                )?;
                Ok::<_, DbError>(n)
            })
            .map_err(|e| e.to_string())?;
        Ok((unlinked, deleted))
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
        // Handled ids are remembered, in any order, however often they come.
        assert!(store.was_handled(41).unwrap() && store.was_handled(10).unwrap());
        assert!(!store.was_handled(11).unwrap());
        store.handled(41, &[]).unwrap();
        assert!(store.was_handled(41).unwrap());
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
                None,
            )
            .unwrap();
        assert_eq!(
            store.record_of(&alice, "01234567").unwrap(),
            Some(("0123456789abcdef0123456789abcdef".into(), 7))
        );
        assert_eq!(store.record_of(&bob, "01234567").unwrap(), None);
        assert_eq!(store.record_of(&alice, "0123").unwrap(), None, "too short");
    }

    #[test]
    fn kept_media_is_deleted_and_the_user_unlinked_by_forget() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = BotStore::open(dir.path(), None).unwrap();
        let (alice, bob) = (store.user(1), store.user(2));
        assert!(!store.keeps(&alice).unwrap());
        store.set_keep(&alice, true).unwrap();
        store.set_lang(&alice, "kk").unwrap();
        assert!(
            store.keeps(&alice).unwrap(),
            "setting the language keeps /keep"
        );
        let (a, b) = ("a".repeat(64), "b".repeat(64));
        store
            .remember(&alice, &a, 1, "t", Some(b"voice bytes"))
            .unwrap();
        store
            .remember(&bob, &b, 2, "t", Some(b"other bytes"))
            .unwrap();
        let kept = dir.path().join(MEDIA_DIR).join(&a);
        assert_eq!(std::fs::read(&kept).unwrap(), b"voice bytes");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&kept).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "owner-only");
        }
        assert_eq!(store.forget(&alice).unwrap(), (1, 1));
        assert!(!kept.exists());
        assert_eq!(store.record_of(&alice, &a[..8]).unwrap(), None);
        assert!(!store.keeps(&alice).unwrap());
        assert_eq!(store.lang(&alice).unwrap(), None);
        // Bob's are untouched.
        assert!(dir.path().join(MEDIA_DIR).join(&b).exists());
        assert_eq!(
            store.record_of(&bob, &b[..8]).unwrap(),
            Some((b.clone(), 2))
        );
    }
}
