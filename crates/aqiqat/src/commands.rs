//! `aqiqat key`, `aqiqat log` and `aqiqat case`.

use crate::evidence::{data_dir, fail, open_log, pretty, resolve_record, signer, write_atomic};
use crate::{ApiKeyCommand, CaseCommand, KeyCommand, LogCommand, Outcome};
use aqiqat_evidence::PublicKey;
use aqiqat_evidence::record::TreeHead;
use std::path::Path;

fn emit(out: Option<&Path>, text: &str) -> Outcome {
    match out {
        Some(path) => match write_atomic(path, text.as_bytes()) {
            Ok(()) => {
                eprintln!("written to {}", path.display());
                Outcome::Ok
            }
            Err(o) => o,
        },
        None => {
            print!("{text}");
            Outcome::Ok
        }
    }
}

macro_rules! tri {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(o) => return o,
        }
    };
}

pub fn api_key(dir: Option<&Path>, cmd: ApiKeyCommand) -> Outcome {
    let dir = tri!(data_dir(dir));
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("error: {}: {e}", dir.display());
        return Outcome::Internal;
    }
    let storage = aqiqat_server::Storage::new(&dir, crate::evidence::database());
    let keys = match aqiqat_server::auth::Keys::open(&storage.server) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("error: {e}");
            return Outcome::Internal;
        }
    };
    let result = match cmd {
        ApiKeyCommand::Create { name, rate } => keys.create(&name, rate).map(|(k, secret)| {
            eprintln!(
                "key {} for {:?}, {} requests/minute; shown once, store it now:",
                k.id, k.name, k.rate_per_minute
            );
            println!("{secret}");
        }),
        ApiKeyCommand::List => keys.list().map(|list| {
            for k in list {
                println!(
                    "{}  {:<24} {:>6}/min  {}{}",
                    k.id,
                    k.name,
                    k.rate_per_minute,
                    k.created_at,
                    if k.revoked { "  REVOKED" } else { "" }
                );
            }
        }),
        ApiKeyCommand::Revoke { id } => match keys.revoke(&id) {
            Ok(true) => {
                println!("revoked {id}");
                Ok(())
            }
            Ok(false) => {
                eprintln!("error: no API key {id:?}");
                return Outcome::BadInput;
            }
            Err(e) => Err(e),
        },
    };
    match result {
        Ok(()) => Outcome::Ok,
        Err(e) => {
            eprintln!("error: {e}");
            Outcome::Internal
        }
    }
}

pub fn key(dir: Option<&Path>, cmd: KeyCommand) -> Outcome {
    let dir = tri!(data_dir(dir));
    let signer = tri!(signer(&dir));
    match cmd {
        KeyCommand::Export { out } => emit(out.as_deref(), &signer.public().to_pem()),
        KeyCommand::Show => {
            println!("key id   {}", signer.public().key_id());
            println!(
                "key      {}",
                aqiqat_evidence::keys::key_dir(&dir)
                    .join(aqiqat_evidence::keys::SIGNING_KEY_FILE)
                    .display()
            );
            let storage = aqiqat_server::Storage::new(&dir, crate::evidence::database());
            println!("log      {}", storage.log.describe());
            Outcome::Ok
        }
    }
}

pub fn log(dir: Option<&Path>, cmd: LogCommand) -> Outcome {
    if let LogCommand::VerifyConsistency {
        old,
        new,
        proof,
        pubkey,
    } = cmd
    {
        return verify_consistency(&old, &new, &proof, pubkey.as_deref());
    }
    let dir = tri!(data_dir(dir));
    let mut log = tri!(open_log(&dir));
    match cmd {
        LogCommand::Head { out } => {
            let head = tri!(log.tree_head().map_err(fail));
            emit(out.as_deref(), &pretty(&head))
        }
        LogCommand::Proof { record, out } => {
            let index = tri!(resolve_record(&log, &record));
            let envelope = tri!(log.envelope(index).map_err(fail));
            emit(out.as_deref(), &pretty(&envelope))
        }
        LogCommand::Consistency { old, out } => {
            let head: TreeHead = tri!(read_json(&old));
            let now = tri!(log.tree_head().map_err(fail));
            let proof = tri!(log.consistency(head.tree_size, now.tree_size).map_err(fail));
            emit(out.as_deref(), &pretty(&proof))
        }
        LogCommand::Check { json } => {
            let report = tri!(log.check().map_err(fail));
            if json {
                println!("{}", serde_json::to_string(&report).expect("serialises"));
            } else {
                println!(
                    "{} records, root {}, {} signed tree heads checked",
                    report.tree_size, report.root_hash, report.tree_heads_checked
                );
                for p in &report.problems {
                    println!("PROBLEM {p}");
                }
                println!(
                    "{}",
                    if report.problems.is_empty() {
                        "the log is intact"
                    } else {
                        "the log is NOT intact"
                    }
                );
            }
            if report.problems.is_empty() {
                Outcome::Ok
            } else {
                Outcome::Verification
            }
        }
        LogCommand::VerifyConsistency { .. } => unreachable!("handled above"),
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, Outcome> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        eprintln!("error: {}: {e}", path.display());
        Outcome::BadInput
    })?;
    serde_json::from_str(&text).map_err(|e| {
        eprintln!("error: {}: {e}", path.display());
        Outcome::BadInput
    })
}

fn verify_consistency(old: &Path, new: &Path, proof: &Path, pubkey: Option<&Path>) -> Outcome {
    let read = |path: &Path| {
        std::fs::read_to_string(path).map_err(|e| {
            eprintln!("error: {}: {e}", path.display());
            Outcome::BadInput
        })
    };
    let (old, new, proof) = (tri!(read(old)), tri!(read(new)), tri!(read(proof)));
    let pinned = match pubkey {
        None => None,
        Some(p) => match std::fs::read_to_string(p)
            .ok()
            .and_then(|t| PublicKey::parse(&t))
        {
            Some(k) => Some(k),
            None => {
                eprintln!("error: {}: not an Ed25519 public key", p.display());
                return Outcome::BadInput;
            }
        },
    };
    let result = aqiqat_evidence::verify::verify_consistency(&old, &new, &proof, pinned.as_ref());
    crate::evidence::print_checks(&result);
    if result.ok() {
        println!("CONSISTENT: the newer log extends the older one; nothing was changed or removed");
        Outcome::Ok
    } else {
        println!("NOT CONSISTENT: see the failed checks above.");
        Outcome::Verification
    }
}

pub fn case(dir: Option<&Path>, cmd: CaseCommand) -> Outcome {
    let dir = tri!(data_dir(dir));
    let mut log = tri!(open_log(&dir));
    match cmd {
        CaseCommand::New { title, id, note } => {
            let case = tri!(
                log.case_new(id.as_deref(), &title, note.as_deref())
                    .map_err(fail)
            );
            println!("{}", case.id);
            Outcome::Ok
        }
        CaseCommand::Add { case, records } => {
            let mut indices = Vec::new();
            for r in &records {
                indices.push(tri!(resolve_record(&log, r)));
            }
            let case = tri!(log.case_add(&case, &indices).map_err(fail));
            println!("{}: {} records", case.id, case.records.len());
            Outcome::Ok
        }
        CaseCommand::Show { case, json } => {
            let case = tri!(log.case(&case).map_err(fail));
            if json {
                println!("{}", serde_json::to_string(&case).expect("serialises"));
                return Outcome::Ok;
            }
            println!("{}  {}", case.id, case.title);
            println!("opened   {}", case.created_at);
            if let Some(note) = &case.note {
                println!("note     {note}");
            }
            for e in &case.records {
                let rec = tri!(log.record(e.index).map_err(fail));
                let body = rec.body().ok();
                println!(
                    "  #{:<6} {}  {:<12} {}  {}",
                    e.index,
                    &e.leaf_hash[..16],
                    body.as_ref().map_or("?", |b| b.verdict.as_str()),
                    body.as_ref().map_or("?", |b| b.created_at.as_str()),
                    body.as_ref()
                        .and_then(|b| b.subject.name.clone())
                        .unwrap_or_default()
                );
            }
            Outcome::Ok
        }
        CaseCommand::List { json } => {
            let cases = tri!(log.cases().map_err(fail));
            if json {
                println!("{}", serde_json::to_string(&cases).expect("serialises"));
            } else {
                for c in cases {
                    println!("{}  {} records  {}", c.id, c.records.len(), c.title);
                }
            }
            Outcome::Ok
        }
        CaseCommand::Export { case, out } => {
            let exported =
                tri!(aqiqat_evidence::bundle::export_case(&mut log, &case, &out).map_err(fail));
            tri!(crate::reports::write_case_reports(
                &mut log,
                &case,
                &out.join("reports")
            ));
            println!(
                "{} records exported to {} (tree size {})",
                exported.records,
                exported.dir.display(),
                exported.tree_head.tree_size
            );
            Outcome::Ok
        }
    }
}
