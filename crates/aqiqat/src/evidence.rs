//! `aqiqat scan --record`, `verify`, `key`, `log` and `case`: the evidence layer from the
//! command line. Data lives under the data directory (`--data-dir`, `AQIQAT_DATA_DIR`, else
//! `$XDG_DATA_HOME/aqiqat` or `~/.local/share/aqiqat`): `keys/` and `evidence.sqlite`.

use crate::Outcome;
use aqiqat_evidence::record::{Context, ToolId};
use aqiqat_evidence::verify::{Inputs, Outcome as Check, verify_envelope};
use aqiqat_evidence::{EvidenceError, Log, PublicKey, RecordDraft, SignedRecord, Signer25519};
use std::path::{Path, PathBuf};

/// The data directory, from the flag, the environment or XDG.
pub fn data_dir(flag: Option<&Path>) -> Result<PathBuf, Outcome> {
    if let Some(dir) = flag {
        return Ok(dir.to_owned());
    }
    if let Some(dir) = std::env::var_os("AQIQAT_DATA_DIR").filter(|d| !d.is_empty()) {
        return Ok(dir.into());
    }
    if let Some(dir) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir).join("aqiqat"));
    }
    if let Some(home) = std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(home).join(".local/share/aqiqat"));
    }
    eprintln!("error: no data directory: pass --data-dir or set AQIQAT_DATA_DIR");
    Err(Outcome::BadInput)
}

pub fn fail(err: EvidenceError) -> Outcome {
    eprintln!("error: {err}");
    if err.is_bad_input() {
        Outcome::BadInput
    } else {
        Outcome::Internal
    }
}

pub fn signer(data_dir: &Path) -> Result<Signer25519, Outcome> {
    Signer25519::load_or_create(&aqiqat_evidence::keys::key_dir(data_dir)).map_err(fail)
}

static DATABASE: std::sync::OnceLock<aqiqat_store::Location> = std::sync::OnceLock::new();

/// Sets the process's `--database-url` (once, at start-up).
pub fn use_database(location: aqiqat_store::Location) {
    let _ = DATABASE.set(location);
}

/// The `--database-url` given, if any.
pub fn database() -> Option<&'static aqiqat_store::Location> {
    DATABASE.get()
}

pub fn open_log(data_dir: &Path) -> Result<Log, Outcome> {
    let signer = signer(data_dir)?;
    let location = aqiqat_server::Storage::new(data_dir, database()).log;
    Log::open_at(&location, signer, aqiqat_evidence::log::Durability::Full).map_err(fail)
}

/// Writes `contents` to `path` through a temporary file and a rename, so that a reader never
/// sees half a file and a failed write leaves any earlier file intact.
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<(), Outcome> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let result = (|| {
        let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
        std::io::Write::write_all(&mut tmp, contents)?;
        tmp.as_file().sync_all()?;
        // Temporary files are created owner-only; these are meant to be handed on.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            tmp.as_file()
                .set_permissions(std::fs::Permissions::from_mode(0o644))?;
        }
        tmp.persist(path).map_err(|e| e.error)?;
        Ok::<_, std::io::Error>(())
    })();
    result.map_err(|e| {
        eprintln!("error: cannot write {}: {e}", path.display());
        Outcome::Internal
    })
}

pub use aqiqat_evidence::pretty_json as pretty;

/// What `scan --record` needs besides the result.
#[derive(Clone)]
pub struct RecordRequest {
    pub out: PathBuf,
    pub context: Context,
    pub data_dir: Option<PathBuf>,
}

/// Signs the scan result, appends it to the log, and writes the envelope.
pub fn record_scan(result: serde_json::Value, req: RecordRequest) -> Result<String, Outcome> {
    let data_dir = data_dir(req.data_dir.as_deref())?;
    let mut log = open_log(&data_dir)?;
    let tool = ToolId {
        name: "aqiqat".into(),
        version: env!("CARGO_PKG_VERSION").into(),
    };
    let draft = RecordDraft::from_scan(result, req.context.clone(), tool).map_err(|e| {
        eprintln!("internal error: {e}");
        Outcome::Internal
    })?;
    let record = SignedRecord::sign(draft, aqiqat_evidence::utc_now(), log.signer());
    let entry = log
        .append(&record, req.context.case_id.as_deref())
        .map_err(fail)?;
    let envelope = log.envelope(entry.index).map_err(fail)?;
    write_atomic(&req.out, pretty(&envelope).as_bytes())?;
    Ok(format!(
        "record {} (log index {}) written to {}",
        &entry.leaf_hash[..16],
        entry.index,
        req.out.display()
    ))
}

pub struct VerifyArgs<'a> {
    pub record: &'a Path,
    pub media: Option<&'a Path>,
    pub tree_head: Option<&'a Path>,
    pub pubkey: Option<&'a Path>,
    pub json: bool,
}

pub fn verify(args: VerifyArgs) -> Outcome {
    let read = |p: &Path| {
        std::fs::read_to_string(p).map_err(|e| {
            eprintln!("error: {}: {e}", p.display());
            Outcome::BadInput
        })
    };
    let envelope = match read(args.record) {
        Ok(t) => t,
        Err(o) => return o,
    };
    let head = match args.tree_head.map(read).transpose() {
        Ok(h) => h,
        Err(o) => return o,
    };
    let pinned = match args.pubkey {
        None => None,
        Some(p) => match read(p).map(|t| PublicKey::parse(&t)) {
            Ok(Some(k)) => Some(k),
            Ok(None) => {
                eprintln!(
                    "error: {}: not an Ed25519 public key (PEM or base64 of 32 bytes)",
                    p.display()
                );
                return Outcome::BadInput;
            }
            Err(o) => return o,
        },
    };
    let result = verify_envelope(
        &envelope,
        &Inputs {
            media: args.media,
            tree_head: head.as_deref(),
            pinned_key: pinned,
        },
    );
    if args.json {
        println!(
            "{}",
            serde_json::json!({"ok": result.ok(), "checks": result.checks})
        );
    } else {
        print_checks(&result);
        println!(
            "{}",
            if result.ok() {
                "VERIFIED: every check that was made holds."
            } else {
                "NOT VERIFIED: see the failed checks above."
            }
        );
    }
    if result.ok() {
        Outcome::Ok
    } else {
        Outcome::Verification
    }
}

/// One line per check: `ok`, `FAIL` or `--` (skipped), the check's name and its detail.
pub fn print_checks(result: &aqiqat_evidence::verify::Verification) {
    for c in &result.checks {
        let mark = match c.outcome {
            Check::Pass => "ok  ",
            Check::Fail => "FAIL",
            Check::Skipped => "--  ",
        };
        println!("{mark} {:<20} {}", c.name, c.detail);
    }
}

/// A record named on the command line: a log index, a leaf-hash prefix, or an envelope file.
pub fn resolve_record(log: &Log, spec: &str) -> Result<u64, Outcome> {
    let path = Path::new(spec);
    if path.is_file() {
        let text = std::fs::read_to_string(path).map_err(|e| {
            eprintln!("error: {spec}: {e}");
            Outcome::BadInput
        })?;
        let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
            eprintln!("error: {spec}: not an evidence file: {e}");
            Outcome::BadInput
        })?;
        let record = if value.get("record").is_some() {
            value["record"].clone()
        } else {
            value
        };
        let leaf = hex::encode(SignedRecord::from_value(record).leaf_hash());
        return log.find(&leaf).map(|e| e.index).map_err(fail);
    }
    log.find(spec).map(|e| e.index).map_err(fail)
}
