//! Case bundles: one folder holding everything needed to verify a case without aqiqat's
//! store — and, through `verify.py`, without aqiqat at all (Python's standard library for
//! hashing and canonical JSON, OpenSSL for Ed25519).

use serde::Serialize;
use std::fs;
use std::path::{Path, PathBuf};

use crate::record::{TreeHead, signed_message};
use crate::{EvidenceError, Log};

const README: &str = include_str!("bundle/README.md");
const VERIFY_PY: &str = include_str!("bundle/verify.py");

#[derive(Debug, Serialize)]
struct CaseIndex<'a> {
    schema: &'static str,
    case_id: &'a str,
    title: &'a str,
    note: Option<&'a str>,
    created_at: &'a str,
    exported_at: String,
    key_id: String,
    tree_size: u64,
    records: Vec<IndexEntry>,
}

#[derive(Debug, Serialize)]
struct IndexEntry {
    index: u64,
    leaf_hash: String,
    file: String,
    media_sha256: String,
    verdict: String,
}

/// What was written.
#[derive(Debug)]
pub struct Exported {
    pub dir: PathBuf,
    pub records: usize,
    pub tree_head: TreeHead,
}

/// Writes the bundle for `case_id` into `out`, which must not exist. Every record's proof
/// leads to one tree head, the log's current one.
pub fn export_case(log: &mut Log, case_id: &str, out: &Path) -> Result<Exported, EvidenceError> {
    let case = log.case(case_id)?;
    if out.exists() {
        return Err(EvidenceError::BadInput(format!(
            "{} already exists; choose a new folder for the bundle",
            out.display()
        )));
    }
    let head = log.tree_head()?;
    let records_dir = out.join("records");
    fs::create_dir_all(&records_dir).map_err(|e| EvidenceError::io(&records_dir, e))?;
    let write = |path: PathBuf, bytes: &[u8]| -> Result<(), EvidenceError> {
        fs::write(&path, bytes).map_err(|e| EvidenceError::io(&path, e))
    };
    let public = log.signer().public();
    write(out.join("public-key.pem"), public.to_pem().as_bytes())?;
    write(
        out.join("tree-head.json"),
        crate::pretty_json(&head).as_bytes(),
    )?;
    let mut entries = Vec::new();
    for entry in &case.records {
        let envelope = log.envelope_at(entry.index, &head)?;
        let name = format!("{:08}", entry.index);
        write(
            records_dir.join(format!("{name}.json")),
            crate::pretty_json(&envelope).as_bytes(),
        )?;
        let record = log.record(entry.index)?;
        let body = record
            .body()
            .map_err(|e| EvidenceError::Internal(format!("record {}: {e}", entry.index)))?;
        entries.push(IndexEntry {
            index: entry.index,
            leaf_hash: entry.leaf_hash.clone(),
            file: format!("records/{name}.json"),
            media_sha256: body.subject.sha256,
            verdict: body.verdict,
        });
        // The exact signed bytes, for those who check signatures with other tools.
        let message =
            signed_message(&record.value).map_err(|e| EvidenceError::Internal(e.to_string()))?;
        write(records_dir.join(format!("{name}.signed")), &message)?;
    }
    let index = CaseIndex {
        schema: "aqiqat.case-bundle/1",
        case_id: &case.id,
        title: &case.title,
        note: case.note.as_deref(),
        created_at: &case.created_at,
        exported_at: crate::utc_now(),
        key_id: public.key_id(),
        tree_size: head.tree_size,
        records: entries,
    };
    write(out.join("case.json"), crate::pretty_json(&index).as_bytes())?;
    write(out.join("README.md"), README.as_bytes())?;
    write(out.join("verify.py"), VERIFY_PY.as_bytes())?;
    Ok(Exported {
        dir: out.to_owned(),
        records: case.records.len(),
        tree_head: head,
    })
}
