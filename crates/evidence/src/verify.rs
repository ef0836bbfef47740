//! Offline verification: given an envelope (record + inclusion proof + tree head), and
//! optionally the media file, a separately obtained tree head and a pinned public key, decide
//! whether everything holds, and say precisely what does not.

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::Path;

use crate::keys::PublicKey;
use crate::merkle;
use crate::record::{
    ENVELOPE_SCHEMA, INCLUSION_SCHEMA, InclusionProof, RECORD_SCHEMA, SignedRecord,
    TREE_HEAD_SCHEMA, TreeHead, parse_hash, verify_object,
};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Pass,
    Fail,
    /// Not checked, and why (no media given, no key pinned).
    Skipped,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub outcome: Outcome,
    pub detail: String,
}

/// Every check made, in order. `ok()` when none failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct Verification {
    pub checks: Vec<Check>,
}

impl Verification {
    pub fn ok(&self) -> bool {
        !self.checks.is_empty() && self.checks.iter().all(|c| c.outcome != Outcome::Fail)
    }

    pub fn failures(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| c.outcome == Outcome::Fail)
    }

    fn push(&mut self, name: &'static str, outcome: Outcome, detail: impl Into<String>) {
        self.checks.push(Check {
            name,
            outcome,
            detail: detail.into(),
        });
    }

    fn pass(&mut self, name: &'static str, detail: impl Into<String>) {
        self.push(name, Outcome::Pass, detail)
    }

    fn fail(&mut self, name: &'static str, detail: impl Into<String>) {
        self.push(name, Outcome::Fail, detail)
    }
}

/// What the verifier was given besides the envelope.
#[derive(Default)]
pub struct Inputs<'a> {
    /// The media file the record claims to describe.
    pub media: Option<&'a Path>,
    /// A tree head obtained independently of the envelope (published, or from the log
    /// operator), as JSON text; replaces the envelope's own head.
    pub tree_head: Option<&'a str>,
    /// The public key the verifier trusts; both signatures must be by it.
    pub pinned_key: Option<PublicKey>,
}

/// Verifies the envelope text (as read from the file, so that malformed JSON is reported, not
/// a panic).
pub fn verify_envelope(envelope_text: &str, inputs: &Inputs) -> Verification {
    let mut v = Verification::default();
    let envelope: Value = match serde_json::from_str(envelope_text) {
        Ok(value) => value,
        Err(e) => {
            v.fail(
                "envelope",
                format!("the record file is not valid JSON: {e}"),
            );
            return v;
        }
    };
    if envelope["schema"] != ENVELOPE_SCHEMA {
        v.fail(
            "envelope",
            format!(
                "the record file's schema is {}, expected {ENVELOPE_SCHEMA:?}",
                envelope["schema"]
            ),
        );
        return v;
    }

    // 1. The record's signature.
    let record_value = envelope["record"].clone();
    let record = SignedRecord::from_value(record_value.clone());
    let record_key = match verify_object(&record_value) {
        Ok(key) => {
            v.pass(
                "record signature",
                format!("valid Ed25519 signature by key {}", key.key_id()),
            );
            Some(key)
        }
        Err(e) => {
            v.fail(
                "record signature",
                format!("the record's signature does not hold: {e}"),
            );
            None
        }
    };
    let body = record.body();
    match &body {
        Ok(b) if b.schema == RECORD_SCHEMA => {}
        Ok(b) => v.fail(
            "record format",
            format!("record schema {:?} is not {RECORD_SCHEMA:?}", b.schema),
        ),
        Err(e) => v.fail(
            "record format",
            format!("the record is not a well-formed evidence record: {e}"),
        ),
    }

    // 2. The tree head: the one given separately, else the envelope's.
    let (head_value, head_source) = match inputs.tree_head {
        Some(text) => match serde_json::from_str::<Value>(text) {
            Ok(h) => (Some(h), "the given tree head"),
            Err(e) => {
                v.fail(
                    "tree head",
                    format!("the tree head file is not valid JSON: {e}"),
                );
                (None, "")
            }
        },
        None => (
            Some(envelope["tree_head"].clone()),
            "the envelope's tree head",
        ),
    };
    let mut head: Option<TreeHead> = None;
    let mut head_key = None;
    if let Some(hv) = head_value {
        match verify_object(&hv) {
            Ok(key) => match serde_json::from_value::<TreeHead>(hv) {
                Ok(h) if h.schema != TREE_HEAD_SCHEMA => v.fail(
                    "tree head signature",
                    format!(
                        "{head_source} has schema {:?}, not {TREE_HEAD_SCHEMA:?}",
                        h.schema
                    ),
                ),
                Ok(h) if h.log_id != key.key_id() => v.fail(
                    "tree head signature",
                    format!(
                        "{head_source} names log {} but is signed by key {}",
                        h.log_id,
                        key.key_id()
                    ),
                ),
                Ok(h) => {
                    v.pass(
                        "tree head signature",
                        format!(
                            "{head_source} (size {}, {}) is signed by key {}",
                            h.tree_size,
                            h.timestamp,
                            key.key_id()
                        ),
                    );
                    head = Some(h);
                    head_key = Some(key);
                }
                Err(e) => v.fail(
                    "tree head signature",
                    format!("{head_source} is malformed: {e}"),
                ),
            },
            Err(e) => v.fail(
                "tree head signature",
                format!("{head_source}'s signature does not hold: {e}"),
            ),
        }
    }

    // 3. Who signed: the same key for record and head, and the pinned key if one is given.
    match (&record_key, &head_key) {
        (Some(r), Some(h)) if r != h => v.fail(
            "signer",
            format!(
                "the record is signed by key {} but the tree head by key {}",
                r.key_id(),
                h.key_id()
            ),
        ),
        _ => {}
    }
    match (inputs.pinned_key, &record_key) {
        (Some(pinned), Some(key)) if pinned == *key => {
            v.pass("pinned key", format!("signed by the pinned key {}", pinned.key_id()))
        }
        (Some(pinned), Some(key)) => v.fail(
            "pinned key",
            format!("signed by key {}, not by the pinned key {}", key.key_id(), pinned.key_id()),
        ),
        (Some(_), None) => {}
        (None, _) => v.push(
            "pinned key",
            Outcome::Skipped,
            "no key pinned (--pubkey): the signatures are valid, but anyone can sign with a key of their own",
        ),
    }

    // 4. Inclusion of this exact record in the head's tree.
    match serde_json::from_value::<InclusionProof>(envelope["inclusion"].clone()) {
        Err(e) => v.fail(
            "inclusion proof",
            format!("the inclusion proof is malformed: {e}"),
        ),
        Ok(proof) if proof.schema != INCLUSION_SCHEMA => v.fail(
            "inclusion proof",
            format!(
                "the inclusion proof's schema {:?} is not {INCLUSION_SCHEMA:?}",
                proof.schema
            ),
        ),
        Ok(proof) => check_inclusion(&mut v, &record, &proof, head.as_ref()),
    }

    // 5. The media.
    match (inputs.media, &body) {
        (None, _) => v.push("media", Outcome::Skipped, "no media file given (--media)"),
        (Some(path), Ok(b)) => match sha256_file(path) {
            Ok((digest, size)) if digest == b.subject.sha256 && size == b.subject.size_bytes => v.pass(
                "media",
                format!("{} has SHA-256 {digest}, as recorded", path.display()),
            ),
            Ok((digest, size)) => v.fail(
                "media",
                format!(
                    "{} has SHA-256 {digest} ({size} bytes); the record describes {} ({} bytes): not the file that was analysed",
                    path.display(),
                    b.subject.sha256,
                    b.subject.size_bytes
                ),
            ),
            Err(e) => v.fail("media", format!("{}: {e}", path.display())),
        },
        (Some(_), Err(_)) => v.fail("media", "the record is malformed, so there is no hash to compare with"),
    }
    v
}

fn check_inclusion(
    v: &mut Verification,
    record: &SignedRecord,
    proof: &InclusionProof,
    head: Option<&TreeHead>,
) {
    const NAME: &str = "inclusion proof";
    let leaf = record.leaf_hash();
    if proof.leaf_hash != hex::encode(leaf) {
        v.fail(
            NAME,
            format!(
                "the proof is for leaf {}, but this record hashes to leaf {}",
                proof.leaf_hash,
                hex::encode(leaf)
            ),
        );
        return;
    }
    let Some(head) = head else {
        v.fail(NAME, "no valid tree head to check the proof against");
        return;
    };
    if proof.tree_size != head.tree_size {
        v.fail(
            NAME,
            format!(
                "the proof is for a tree of {} records, the tree head for {}: get a proof for this head with `aqiqat log proof`",
                proof.tree_size, head.tree_size
            ),
        );
        return;
    }
    let Some(root) = head.root() else {
        v.fail(
            NAME,
            format!(
                "the tree head's root {:?} is not a SHA-256 hash",
                head.root_hash
            ),
        );
        return;
    };
    let mut path = Vec::with_capacity(proof.path.len());
    for (i, h) in proof.path.iter().enumerate() {
        match parse_hash(h) {
            Some(h) => path.push(h),
            None => {
                v.fail(
                    NAME,
                    format!("path entry {i} ({h:?}) is not a SHA-256 hash"),
                );
                return;
            }
        }
    }
    if merkle::verify_inclusion(proof.leaf_index, proof.tree_size, &leaf, &path, &root) {
        v.pass(
            NAME,
            format!(
                "record {} is leaf {} of the {} in the signed tree",
                hex::encode(leaf),
                proof.leaf_index,
                proof.tree_size
            ),
        );
    } else {
        v.fail(
            NAME,
            format!(
                "the audit path from leaf {} does not lead to the tree head's root {}: the proof or the head was altered",
                proof.leaf_index, head.root_hash
            ),
        );
    }
}

/// Verifies that the log of `new` extends the log of `old`: both tree heads' signatures, one
/// key for both (and the pinned one, when given), and the RFC 9162 consistency proof between
/// them. Inputs are the files' text, so malformed JSON is a failed check, not a panic.
pub fn verify_consistency(
    old_head: &str,
    new_head: &str,
    proof: &str,
    pinned_key: Option<&PublicKey>,
) -> Verification {
    let mut v = Verification::default();
    let mut keys = Vec::new();
    let mut heads = Vec::new();
    for (name, text) in [("old tree head", old_head), ("new tree head", new_head)] {
        let value: Value = match serde_json::from_str(text) {
            Ok(value) => value,
            Err(e) => {
                v.fail(name, format!("not valid JSON: {e}"));
                continue;
            }
        };
        match verify_object(&value) {
            Ok(key) => {
                v.pass(
                    name,
                    format!("valid Ed25519 signature by key {}", key.key_id()),
                );
                keys.push(key);
            }
            Err(e) => v.fail(name, e.to_string()),
        }
        match serde_json::from_value::<crate::record::TreeHead>(value) {
            Ok(head) => heads.push(head),
            Err(e) => v.fail(name, format!("not a tree head: {e}")),
        }
    }
    if let [a, b] = keys.as_slice() {
        if a == b {
            v.pass("same key", "both heads are signed by one key");
        } else {
            v.fail(
                "same key",
                "the two tree heads are signed by different keys",
            );
        }
    }
    match (pinned_key, keys.first()) {
        (Some(pinned), Some(key)) if pinned != key => v.fail(
            "pinned key",
            format!(
                "signed by key {}, not the pinned key {}",
                key.key_id(),
                pinned.key_id()
            ),
        ),
        (Some(pinned), Some(_)) => v.pass("pinned key", format!("key {}", pinned.key_id())),
        (None, _) => v.push("pinned key", Outcome::Skipped, "no key pinned"),
        (Some(_), None) => {}
    }
    let proof: crate::record::ConsistencyProof = match serde_json::from_str(proof) {
        Ok(p) => p,
        Err(e) => {
            v.fail("consistency proof", format!("not a consistency proof: {e}"));
            return v;
        }
    };
    if let [old, new] = heads.as_slice() {
        let path: Option<Vec<merkle::Hash>> = proof.path.iter().map(|h| parse_hash(h)).collect();
        let holds = proof.old_size == old.tree_size
            && proof.new_size == new.tree_size
            && match (old.root(), new.root(), path) {
                (Some(o), Some(n), Some(path)) => {
                    merkle::verify_consistency(old.tree_size, new.tree_size, &o, &n, &path)
                }
                _ => false,
            };
        if holds {
            v.pass(
                "consistency proof",
                format!(
                    "the log of {} records is a prefix of the log of {}",
                    old.tree_size, new.tree_size
                ),
            );
        } else {
            v.fail(
                "consistency proof",
                format!(
                    "the proof does not show that the log of {} records is a prefix of the log of {}",
                    old.tree_size, new.tree_size
                ),
            );
        }
    }
    v
}

/// SHA-256 and length of a file, streamed.
pub fn sha256_file(path: &Path) -> std::io::Result<(String, u64)> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        total += n as u64;
        h.update(&buf[..n]);
    }
    Ok((hex::encode(h.finalize()), total))
}
