//! # aqiqat-voiceprints
//!
//! Enrolled voiceprints, kept as what they are: biometric personal data. Each one is sealed
//! with XChaCha20-Poly1305 under the installation's voiceprint key (`keys/voiceprint-key`,
//! 32 random bytes made on first use, owner-only), bound to its row (id and owner as associated
//! data, so a sealed voiceprint moved to another row or owner does not open). The name, note,
//! vector and enrolment hashes are all inside the seal; the table holds only the id, the owner,
//! a keyed hash of the name (so names stay unique per owner and can be looked up without being
//! stored), the time of enrolment and the sealed bytes.
//!
//! Deleting is for good: SQLite runs with `secure_delete` (freed content is zeroed) and the
//! write-ahead log is checkpointed and truncated after every delete, so neither file keeps a
//! copy (`tests/store.rs` reads the raw files). PostgreSQL vacuums the table after a delete;
//! what its own WAL archive keeps is the operator's to govern, and it is ciphertext.
//!
//! **Owns:** the voiceprint table, its key, who may see which voiceprint.
//! **Must not touch:** audio, models, verdicts, HTTP.

use aqiqat_store::{Db, DbError, Dialect, Durability, Location, Sql, args};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::path::{Path, PathBuf};

/// The key's file name inside the key folder.
pub const KEY_FILE: &str = "voiceprint-key";
/// The SQLite file inside the data directory when no database URL is given.
pub const SQLITE_FILE: &str = "voiceprints.sqlite";
/// The longest name, in characters.
pub const MAX_NAME_CHARS: usize = 200;
/// The longest note, in characters.
pub const MAX_NOTE_CHARS: usize = 2_000;

#[derive(Debug, thiserror::Error)]
pub enum VoiceprintError {
    #[error("no voiceprint {0:?}")]
    NotFound(String),
    #[error("a voiceprint named {0:?} exists already; delete it first or choose another name")]
    NameTaken(String),
    #[error("{0:?} names voiceprints of several API keys; give the voiceprint's id instead")]
    Ambiguous(String),
    #[error("{0}")]
    BadName(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("voiceprint storage: {0}")]
    Db(#[from] DbError),
    #[error("{0}")]
    Key(String),
    #[error(
        "voiceprint {0} cannot be opened: its seal does not hold (wrong key, or the row was altered)"
    )]
    Unsealable(String),
}

impl VoiceprintError {
    /// The caller's fault (exit 2, HTTP 4xx) rather than the system's.
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            VoiceprintError::NotFound(_)
                | VoiceprintError::NameTaken(_)
                | VoiceprintError::Ambiguous(_)
                | VoiceprintError::BadName(_)
        )
    }
}

/// Who is asking: which voiceprints they may see, use and delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// The machine's own user (the CLI, or a server without API keys): every voiceprint.
    Local,
    /// One API key (its id): only the voiceprints it enrolled.
    Key(String),
}

impl Owner {
    /// The value of the `owner` column for voiceprints this owner enrols.
    fn column(&self) -> &str {
        match self {
            Owner::Local => "",
            Owner::Key(id) => id,
        }
    }
}

/// One enrolment recording, as the store keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnrolledFile {
    pub sha256: String,
    pub speech_s: f64,
    /// The file name it was given under (never a path on the server).
    pub name: String,
}

/// What is sealed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Sealed {
    name: String,
    note: Option<String>,
    files: Vec<EnrolledFile>,
    encoder_sha256: String,
    voiceprint: Vec<f32>,
}

/// A voiceprint without its vector: what listings show.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub id: String,
    pub name: String,
    pub note: Option<String>,
    /// RFC 3339, UTC.
    pub enrolled_at: String,
    pub files: Vec<EnrolledFile>,
    pub speech_s: f64,
    /// SHA-256 of the speaker encoder's weights that made it.
    pub encoder_sha256: String,
    /// The API key that enrolled it; `null` for the machine's own user.
    pub owner: Option<String>,
}

/// A whole voiceprint, to compare a recording with.
#[derive(Debug, Clone, PartialEq)]
pub struct Voiceprint {
    pub summary: Summary,
    pub vector: Vec<f32>,
}

/// What an enrolment stores.
pub struct NewVoiceprint<'a> {
    pub name: &'a str,
    pub note: Option<&'a str>,
    pub files: Vec<EnrolledFile>,
    pub encoder_sha256: &'a str,
    pub vector: &'a [f32],
}

pub struct VoiceprintStore {
    db: Db,
    seal: XChaCha20Poly1305,
    name_key: [u8; 32],
}

const SQLITE_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS voiceprints (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    name_tag BLOB NOT NULL,
    enrolled_at TEXT NOT NULL,
    nonce BLOB NOT NULL,
    sealed BLOB NOT NULL,
    UNIQUE (owner, name_tag)
);";

const POSTGRES_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS voiceprints (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    name_tag BYTEA NOT NULL,
    enrolled_at TEXT NOT NULL,
    nonce BYTEA NOT NULL,
    sealed BYTEA NOT NULL,
    UNIQUE (owner, name_tag)
);";

fn mac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut m = <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(key).expect("HMAC takes any key");
    for p in parts {
        m.update(&(p.len() as u64).to_be_bytes());
        m.update(p);
    }
    m.finalize().into_bytes().into()
}

/// Names compare without regard to case or surrounding space ("Арман" is "арман ").
fn normalised_name(name: &str) -> String {
    name.trim().to_lowercase()
}

fn check_name(name: &str) -> Result<(), VoiceprintError> {
    let trimmed = name.trim();
    if trimmed.is_empty() {
        return Err(VoiceprintError::BadName("a voiceprint needs a name".into()));
    }
    if trimmed.chars().count() > MAX_NAME_CHARS {
        return Err(VoiceprintError::BadName(format!(
            "a voiceprint name has at most {MAX_NAME_CHARS} characters"
        )));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(VoiceprintError::BadName(
            "a voiceprint name cannot hold control characters".into(),
        ));
    }
    if looks_like_id(trimmed) {
        return Err(VoiceprintError::BadName(format!(
            "{trimmed:?} looks like a voiceprint id; choose another name"
        )));
    }
    Ok(())
}

fn looks_like_id(text: &str) -> bool {
    text.strip_prefix("vp_")
        .is_some_and(|h| h.len() == 32 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Loads the voiceprint key in `key_dir`, making it on first use.
fn load_or_create_key(key_dir: &Path) -> Result<[u8; 32], VoiceprintError> {
    let path = key_dir.join(KEY_FILE);
    let io = |source| VoiceprintError::Io {
        path: path.clone(),
        source,
    };
    loop {
        match std::fs::read(&path) {
            Ok(bytes) => {
                if let Some(mode) = aqiqat_store::private::open_to_others(&path).map_err(io)? {
                    return Err(VoiceprintError::Key(format!(
                        "{}: the voiceprint key is readable by others (mode {mode:o}); restrict \
                         it with `chmod 600`",
                        path.display()
                    )));
                }
                return <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| {
                    VoiceprintError::Key(format!(
                        "{}: not a voiceprint key (expected 32 bytes, found {})",
                        path.display(),
                        bytes.len()
                    ))
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = [0u8; 32];
                getrandom::fill(&mut key).map_err(|e| VoiceprintError::Key(e.to_string()))?;
                // Whoever links first wins; the loop then reads the winner's key.
                aqiqat_store::private::write_new(&path, &key).map_err(io)?;
            }
            Err(e) => return Err(io(e)),
        }
    }
}

impl VoiceprintStore {
    /// The store in `data_dir` (`voiceprints.sqlite`), or in the database at `database`; the
    /// key always lives in `data_dir/keys`.
    pub fn open(data_dir: &Path, database: Option<&Location>) -> Result<Self, VoiceprintError> {
        let location = database
            .cloned()
            .unwrap_or_else(|| Location::Sqlite(data_dir.join(SQLITE_FILE)));
        let master = load_or_create_key(&data_dir.join("keys"))?;
        let mut db = Db::open(&location, Durability::Full)?;
        match db.dialect() {
            Dialect::Sqlite => {
                db.batch("PRAGMA secure_delete = ON;")?;
                db.batch(SQLITE_SCHEMA)?;
            }
            Dialect::Postgres => db.batch(POSTGRES_SCHEMA)?,
        }
        let seal_key = mac(&master, &[b"aqiqat voiceprint seal"]);
        Ok(Self {
            db,
            seal: XChaCha20Poly1305::new(&seal_key.into()),
            name_key: mac(&master, &[b"aqiqat voiceprint name"]),
        })
    }

    fn name_tag(&self, name: &str) -> [u8; 32] {
        mac(&self.name_key, &[normalised_name(name).as_bytes()])
    }

    fn aad(id: &str, owner: &str) -> Vec<u8> {
        [id.as_bytes(), b"\0", owner.as_bytes()].concat()
    }

    /// Stores a new voiceprint for `owner`; refused when that owner has one by that name.
    pub fn enrol(
        &mut self,
        owner: &Owner,
        new: NewVoiceprint<'_>,
    ) -> Result<Summary, VoiceprintError> {
        check_name(new.name)?;
        let note = new.note.map(str::trim).filter(|n| !n.is_empty());
        if note.is_some_and(|n| n.chars().count() > MAX_NOTE_CHARS) {
            return Err(VoiceprintError::BadName(format!(
                "a note has at most {MAX_NOTE_CHARS} characters"
            )));
        }
        let mut raw_id = [0u8; 16];
        let mut nonce = [0u8; 24];
        getrandom::fill(&mut raw_id).map_err(|e| VoiceprintError::Key(e.to_string()))?;
        getrandom::fill(&mut nonce).map_err(|e| VoiceprintError::Key(e.to_string()))?;
        let id = format!("vp_{}", hex::encode(raw_id));
        let sealed = Sealed {
            name: new.name.trim().to_owned(),
            note: note.map(str::to_owned),
            files: new.files,
            encoder_sha256: new.encoder_sha256.to_owned(),
            voiceprint: new.vector.to_vec(),
        };
        let plain = serde_json::to_vec(&sealed).expect("voiceprints serialise");
        let aad = Self::aad(&id, owner.column());
        let ciphertext = self
            .seal
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: &plain,
                    aad: &aad,
                },
            )
            .map_err(|_| VoiceprintError::Key("encryption failed".into()))?;
        let enrolled_at = jiff::Timestamp::now()
            .round(jiff::Unit::Second)
            .unwrap()
            .to_string();
        let tag = self.name_tag(new.name);
        let inserted = self.db.execute(
            "INSERT INTO voiceprints (id, owner, name_tag, enrolled_at, nonce, sealed) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            args![
                &id,
                owner.column(),
                &tag[..],
                &enrolled_at,
                &nonce[..],
                &ciphertext
            ],
        );
        match inserted {
            Ok(_) => {}
            Err(e) if e.is_constraint() => {
                return Err(VoiceprintError::NameTaken(sealed.name));
            }
            Err(e) => return Err(e.into()),
        }
        Ok(summary(id, enrolled_at, owner.column(), sealed).summary)
    }

    fn open_row(&self, row: &aqiqat_store::Row) -> Result<Voiceprint, VoiceprintError> {
        let (id, owner, enrolled_at) = (row.text(0)?, row.text(1)?, row.text(2)?);
        let nonce = <[u8; 24]>::try_from(row.blob(3)?.as_slice())
            .map_err(|_| VoiceprintError::Unsealable(id.clone()))?;
        let plain = self
            .seal
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: &row.blob(4)?,
                    aad: &Self::aad(&id, &owner),
                },
            )
            .map_err(|_| VoiceprintError::Unsealable(id.clone()))?;
        let sealed: Sealed =
            serde_json::from_slice(&plain).map_err(|_| VoiceprintError::Unsealable(id.clone()))?;
        Ok(summary(id, enrolled_at, &owner, sealed))
    }

    /// Every voiceprint `owner` may see, oldest first.
    pub fn list(&mut self, owner: &Owner) -> Result<Vec<Summary>, VoiceprintError> {
        let rows = match owner {
            Owner::Local => self.db.query(
                "SELECT id, owner, enrolled_at, nonce, sealed FROM voiceprints \
                 ORDER BY enrolled_at, id",
                &[],
            )?,
            Owner::Key(k) => self.db.query(
                "SELECT id, owner, enrolled_at, nonce, sealed FROM voiceprints WHERE owner = ?1 \
                 ORDER BY enrolled_at, id",
                args![k.as_str()],
            )?,
        };
        rows.iter()
            .map(|r| self.open_row(r).map(|v| v.summary))
            .collect()
    }

    /// The voiceprint `owner` calls `name_or_id` (its name, or its `vp_…` id).
    pub fn get(&mut self, owner: &Owner, name_or_id: &str) -> Result<Voiceprint, VoiceprintError> {
        let rows = if looks_like_id(name_or_id.trim()) {
            self.db.query(
                "SELECT id, owner, enrolled_at, nonce, sealed FROM voiceprints WHERE id = ?1",
                args![name_or_id.trim()],
            )?
        } else {
            let tag = self.name_tag(name_or_id);
            self.db.query(
                "SELECT id, owner, enrolled_at, nonce, sealed FROM voiceprints \
                 WHERE name_tag = ?1",
                args![&tag[..]],
            )?
        };
        let visible: Vec<_> = rows
            .iter()
            .filter(|r| match owner {
                Owner::Local => true,
                Owner::Key(k) => r.text(1).is_ok_and(|o| &o == k),
            })
            .collect();
        match visible.as_slice() {
            [] => Err(VoiceprintError::NotFound(name_or_id.trim().to_owned())),
            [row] => self.open_row(row),
            _ => Err(VoiceprintError::Ambiguous(name_or_id.trim().to_owned())),
        }
    }

    /// Deletes the voiceprint `owner` calls `name_or_id`, and every trace of it in the
    /// database's files; returns what it was.
    pub fn delete(&mut self, owner: &Owner, name_or_id: &str) -> Result<Summary, VoiceprintError> {
        let found = self.get(owner, name_or_id)?;
        self.db.execute(
            "DELETE FROM voiceprints WHERE id = ?1",
            args![found.summary.id.as_str()],
        )?;
        self.scrub()?;
        Ok(found.summary)
    }

    /// Leaves no deleted row's bytes in the database's files.
    fn scrub(&mut self) -> Result<(), VoiceprintError> {
        match self.db.dialect() {
            Dialect::Sqlite => {
                // secure_delete zeroed the row in its page; the checkpoint moves that page into
                // the main file and truncates the log, where the row's earlier versions were.
                for _ in 0..50 {
                    let row = self.db.query_one("PRAGMA wal_checkpoint(TRUNCATE)", &[])?;
                    if row.int(0)? == 0 {
                        return Ok(());
                    }
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                Err(VoiceprintError::Db(DbError::other(
                    "the deleted voiceprint is gone from the table, but a reader kept the \
                     database's log busy for 5 s, so its old bytes may remain there until the \
                     next delete or checkpoint",
                )))
            }
            Dialect::Postgres => {
                self.db.batch("VACUUM voiceprints")?;
                Ok(())
            }
        }
    }
}

fn summary(id: String, enrolled_at: String, owner: &str, sealed: Sealed) -> Voiceprint {
    Voiceprint {
        summary: Summary {
            id,
            name: sealed.name,
            note: sealed.note,
            enrolled_at,
            speech_s: sealed.files.iter().map(|f| f.speech_s).sum(),
            files: sealed.files,
            encoder_sha256: sealed.encoder_sha256,
            owner: (!owner.is_empty()).then(|| owner.to_owned()),
        },
        vector: sealed.voiceprint,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_and_compared_loosely() {
        assert!(check_name("  ").is_err());
        assert!(check_name("a\u{7}b").is_err());
        assert!(check_name(&"я".repeat(MAX_NAME_CHARS + 1)).is_err());
        assert!(check_name("vp_0123456789abcdef0123456789abcdef").is_err());
        assert!(check_name("Арман (son)").is_ok());
        assert_eq!(normalised_name(" Арман "), normalised_name("арман"));
    }
}
