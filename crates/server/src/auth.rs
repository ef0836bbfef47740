//! API keys and per-key rate limits.
//!
//! Keys are stored hashed (SHA-256; a key is 256 random bits, so no salt or slow hash is
//! needed) in the server's database (`server.sqlite`, or PostgreSQL), made and revoked with `aqiqat api-key`. Once any key exists, or
//! whenever the server listens beyond loopback, every request but `/healthz` must carry one
//! (`Authorization: Bearer KEY` or `X-API-Key: KEY`); a first local try needs none. Each key
//! has a rate in requests per minute, enforced by a token bucket; over it the answer is `429`
//! with `Retry-After`.

use aqiqat_store::{Db, Location, Sql, args};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

pub const KEY_PREFIX: &str = "aqk_";

#[derive(Debug, Clone, Serialize)]
pub struct ApiKey {
    pub id: String,
    pub name: String,
    pub created_at: String,
    pub rate_per_minute: u32,
    pub revoked: bool,
}

pub struct Keys {
    conn: Mutex<Db>,
    buckets: Mutex<HashMap<String, Bucket>>,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

pub enum Decision {
    /// Let through; with the id of the key presented, if one was.
    Allow(Option<String>),
    /// No or unknown key.
    Unauthorised(&'static str),
    /// Over the key's rate: retry after this many seconds.
    Limited(u64),
}

fn digest(key: &str) -> Vec<u8> {
    Sha256::digest(key.as_bytes()).to_vec()
}

impl Keys {
    pub fn open(db: &Location) -> Result<Self, String> {
        let conn = crate::open_server_db(
            db,
            "CREATE TABLE IF NOT EXISTS api_keys (
                id TEXT PRIMARY KEY,
                name TEXT NOT NULL,
                key_sha256 BLOB NOT NULL UNIQUE,
                created_at TEXT NOT NULL,
                rate_per_minute INTEGER NOT NULL,
                revoked INTEGER NOT NULL DEFAULT 0
            )",
            "CREATE TABLE IF NOT EXISTS api_keys (
                id TEXT PRIMARY KEY,
                name TEXT NOT NULL,
                key_sha256 BYTEA NOT NULL UNIQUE,
                created_at TEXT NOT NULL,
                rate_per_minute BIGINT NOT NULL,
                revoked BIGINT NOT NULL DEFAULT 0
            )",
        )?;
        Ok(Self {
            conn: Mutex::new(conn),
            buckets: Mutex::new(HashMap::new()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Db> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes a key; returns its record and the secret, which is shown once and never stored.
    pub fn create(&self, name: &str, rate_per_minute: u32) -> Result<(ApiKey, String), String> {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(|e| e.to_string())?;
        let key = format!("{KEY_PREFIX}{}", hex::encode(secret));
        let id = hex::encode(&digest(&key)[..6]);
        let created_at = aqiqat_evidence::utc_now();
        self.lock()
            .execute(
                "INSERT INTO api_keys(id, name, key_sha256, created_at, rate_per_minute) VALUES (?1, ?2, ?3, ?4, ?5)",
                args![&id, name, &digest(&key), &created_at, rate_per_minute],
            )
            .map_err(|e| e.to_string())?;
        Ok((
            ApiKey {
                id,
                name: name.to_owned(),
                created_at,
                rate_per_minute,
                revoked: false,
            },
            key,
        ))
    }

    pub fn list(&self) -> Result<Vec<ApiKey>, String> {
        let rows = self
            .lock()
            .query(
                "SELECT id, name, created_at, rate_per_minute, revoked FROM api_keys ORDER BY created_at",
                &[],
            )
            .map_err(|e| e.to_string())?;
        rows.iter()
            .map(|r| {
                Ok(ApiKey {
                    id: r.text(0)?,
                    name: r.text(1)?,
                    created_at: r.text(2)?,
                    rate_per_minute: u32::try_from(r.int(3)?).unwrap_or(u32::MAX),
                    revoked: r.bool(4)?,
                })
            })
            .collect::<Result<_, aqiqat_store::DbError>>()
            .map_err(|e| e.to_string())
    }

    pub fn revoke(&self, id: &str) -> Result<bool, String> {
        self.lock()
            .execute("UPDATE api_keys SET revoked = 1 WHERE id = ?1", args![id])
            .map(|n| n > 0)
            .map_err(|e| e.to_string())
    }

    /// Whether any usable key exists (then every request needs one). A database that cannot
    /// answer counts as "yes": failing closed.
    pub fn any(&self) -> bool {
        self.lock()
            .query_one(
                "SELECT EXISTS(SELECT 1 FROM api_keys WHERE revoked = 0)",
                &[],
            )
            .and_then(|r| r.bool(0))
            .unwrap_or(true)
    }

    /// Decides one request. `required` is true when keys are mandatory even if none exist.
    pub fn check(&self, presented: Option<&str>, required: bool) -> Decision {
        let Some(key) = presented else {
            return if required || self.any() {
                Decision::Unauthorised("this server needs an API key: Authorization: Bearer KEY")
            } else {
                Decision::Allow(None)
            };
        };
        let found: Option<(String, u32)> = self
            .lock()
            .query_opt(
                "SELECT id, rate_per_minute FROM api_keys WHERE key_sha256 = ?1 AND revoked = 0",
                args![&digest(key)],
            )
            .ok()
            .flatten()
            .and_then(|r| {
                Some((
                    r.text(0).ok()?,
                    u32::try_from(r.int(1).ok()?).unwrap_or(u32::MAX),
                ))
            });
        let Some((id, rate)) = found else {
            return Decision::Unauthorised("unknown or revoked API key");
        };
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let capacity = f64::from(rate.max(1));
        let per_second = capacity / 60.0;
        let now = Instant::now();
        let bucket = buckets.entry(id.clone()).or_insert(Bucket {
            tokens: capacity,
            at: now,
        });
        bucket.tokens = (bucket.tokens + now.duration_since(bucket.at).as_secs_f64() * per_second)
            .min(capacity);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Decision::Allow(Some(id))
        } else {
            Decision::Limited(((1.0 - bucket.tokens) / per_second).ceil().max(1.0) as u64)
        }
    }
}
