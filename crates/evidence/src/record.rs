//! The signed formats: evidence records, tree heads, inclusion proofs and the envelope that
//! carries all three. Each signed object is a JSON object whose `signature` member signs the
//! RFC 8785 canonical form of the object without that member.

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::canonical;
use crate::keys::{PublicKey, Signer25519};
use crate::merkle::{self, Hash};

pub const RECORD_SCHEMA: &str = "aqiqat.evidence/1";
pub const TREE_HEAD_SCHEMA: &str = "aqiqat.tree-head/1";
pub const INCLUSION_SCHEMA: &str = "aqiqat.inclusion/1";
pub const ENVELOPE_SCHEMA: &str = "aqiqat.evidence-bundle/1";
pub const CONSISTENCY_SCHEMA: &str = "aqiqat.consistency/1";

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// What was analysed: the exact bytes, by hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subject {
    /// SHA-256 of the exact bytes received, lowercase hex.
    pub sha256: String,
    pub size_bytes: u64,
    /// The name the file arrived under; informative only (names prove nothing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Media facts as intake found them (container, codec, rate, duration…).
    #[serde(default)]
    pub media: Value,
}

/// One analyser that contributed to the result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnalyserId {
    pub name: String,
    pub version: String,
    /// SHA-256 of the weights it ran with; `null` for analysers without weights.
    pub weights_sha256: Option<String>,
}

/// Who asked and why: free text that the signature covers but aqiqat does not interpret.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Context {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolId {
    pub name: String,
    pub version: String,
}

/// A record before it is signed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordDraft {
    /// Names this one analysis: random for every scan, so that the same file analysed twice
    /// in the same millisecond still makes two records (two leaves), never a collision.
    pub id: String,
    pub subject: Subject,
    pub analysers: Vec<AnalyserId>,
    /// The top-level verdict of the result, repeated so that a reader need not know the
    /// result's schema to find it.
    pub verdict: String,
    /// The whole scan result, exactly as `aqiqat scan --json` prints it.
    pub result: Value,
    pub context: Context,
    pub tool: ToolId,
}

impl RecordDraft {
    /// A draft from a scan result as JSON (`aqiqat scan --json`'s shape: top-level `media`
    /// with `sha256`, `size_bytes` and `path`, `verdict`, and `analysers`). Reading the JSON
    /// rather than a typed result is what lets new analysers arrive without a change here.
    pub fn from_scan(result: Value, context: Context, tool: ToolId) -> Result<Self, String> {
        let media = &result["media"];
        let sha256 = media["sha256"]
            .as_str()
            .filter(|h| parse_hash(h).is_some())
            .ok_or("the scan result has no media.sha256")?
            .to_owned();
        let size_bytes = media["size_bytes"]
            .as_u64()
            .ok_or("the scan result has no media.size_bytes")?;
        let verdict = result["verdict"]
            .as_str()
            .ok_or("the scan result has no verdict")?
            .to_owned();
        let analysers: Vec<AnalyserId> = serde_json::from_value(result["analysers"].clone())
            .map_err(|e| format!("the scan result's analysers: {e}"))?;
        if analysers.is_empty() {
            return Err("the scan result names no analyser".into());
        }
        // Only the file name: the folder it sat in says nothing about the evidence and may
        // say too much about the machine.
        let name = media["path"].as_str().and_then(|p| {
            std::path::Path::new(p)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
        });
        let mut media = media.clone();
        if let Some(m) = media.as_object_mut() {
            m.remove("path");
        }
        let mut result = result;
        if let Some(m) = result.get_mut("media").and_then(Value::as_object_mut) {
            m.remove("path");
        }
        let mut id = [0u8; 16];
        getrandom::fill(&mut id).map_err(|e| format!("no randomness for a record id: {e}"))?;
        Ok(Self {
            id: hex::encode(id),
            subject: Subject {
                sha256,
                size_bytes,
                name,
                media,
            },
            analysers,
            verdict,
            result,
            context,
            tool,
        })
    }
}

/// The body of a record as signed (the draft plus schema and time).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordBody {
    pub schema: String,
    /// Absent from records made before it existed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    pub created_at: String,
    pub tool: ToolId,
    pub subject: Subject,
    pub analysers: Vec<AnalyserId>,
    pub verdict: String,
    pub result: Value,
    pub context: Context,
}

/// The `signature` member of every signed object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignatureBlock {
    pub alg: String,
    /// SHA-256 of the raw public key, hex.
    pub key_id: String,
    /// The raw 32-byte public key, base64.
    pub public_key: String,
    /// The 64-byte signature, base64.
    pub value: String,
}

/// A signed record: its JSON value and the canonical bytes that are its log leaf.
#[derive(Debug, Clone, PartialEq)]
pub struct SignedRecord {
    pub value: Value,
    pub canonical: Vec<u8>,
}

impl SignedRecord {
    pub fn sign(draft: RecordDraft, created_at: String, signer: &Signer25519) -> Self {
        let body = RecordBody {
            schema: RECORD_SCHEMA.into(),
            id: draft.id,
            created_at,
            tool: draft.tool,
            subject: draft.subject,
            analysers: draft.analysers,
            verdict: draft.verdict,
            result: draft.result,
            context: draft.context,
        };
        let value = sign_object(
            serde_json::to_value(body).expect("records serialise"),
            signer,
        );
        Self::from_value(value)
    }

    pub fn from_value(value: Value) -> Self {
        let canonical = canonical::to_vec(&value);
        Self { value, canonical }
    }

    /// `SHA-256(0x00 ‖ canonical bytes)`: the record's name in the log.
    pub fn leaf_hash(&self) -> Hash {
        merkle::leaf_hash(&self.canonical)
    }

    /// The typed body, when the value is a well-formed record.
    pub fn body(&self) -> Result<RecordBody, serde_json::Error> {
        let mut v = self.value.clone();
        if let Some(m) = v.as_object_mut() {
            m.remove("signature");
        }
        serde_json::from_value(v)
    }
}

/// A signed statement of the log's size and root at a time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TreeHead {
    pub schema: String,
    /// The key id of the log's signing key.
    pub log_id: String,
    pub tree_size: u64,
    /// Hex of the RFC 9162 root hash.
    pub root_hash: String,
    pub timestamp: String,
    pub signature: SignatureBlock,
}

impl TreeHead {
    pub fn sign(tree_size: u64, root: &Hash, timestamp: String, signer: &Signer25519) -> Self {
        let body = serde_json::json!({
            "schema": TREE_HEAD_SCHEMA,
            "log_id": signer.public().key_id(),
            "tree_size": tree_size,
            "root_hash": hex::encode(root),
            "timestamp": timestamp,
        });
        serde_json::from_value(sign_object(body, signer)).expect("tree heads round-trip")
    }

    pub fn root(&self) -> Option<Hash> {
        parse_hash(&self.root_hash)
    }
}

/// The audit path from one leaf to the root of a tree of `tree_size` leaves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InclusionProof {
    pub schema: String,
    pub leaf_index: u64,
    pub tree_size: u64,
    pub leaf_hash: String,
    /// Sibling hashes, hex, leaf first.
    pub path: Vec<String>,
}

impl InclusionProof {
    pub fn new(leaf_index: u64, tree_size: u64, leaf: &Hash, path: &[Hash]) -> Self {
        Self {
            schema: INCLUSION_SCHEMA.into(),
            leaf_index,
            tree_size,
            leaf_hash: hex::encode(leaf),
            path: path.iter().map(hex::encode).collect(),
        }
    }
}

/// Proof that one tree head's tree is a prefix of another's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsistencyProof {
    pub schema: String,
    pub old_size: u64,
    pub new_size: u64,
    pub path: Vec<String>,
}

/// What `aqiqat scan --record` writes and `aqiqat verify` reads: a record with the proof of
/// its inclusion and the signed tree head the proof leads to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub schema: String,
    pub record: Value,
    pub inclusion: InclusionProof,
    pub tree_head: TreeHead,
}

/// Signs `body` (a JSON object) and returns it with its `signature` member.
pub fn sign_object(body: Value, signer: &Signer25519) -> Value {
    let Value::Object(mut map) = body else {
        panic!("only JSON objects are signed");
    };
    map.remove("signature");
    let message = canonical::to_vec(&map);
    let public = signer.public();
    let block = SignatureBlock {
        alg: "Ed25519".into(),
        key_id: public.key_id(),
        public_key: B64.encode(public.raw()),
        value: B64.encode(signer.sign(&message)),
    };
    map.insert(
        "signature".into(),
        serde_json::to_value(block).expect("signature blocks serialise"),
    );
    Value::Object(map)
}

/// Why a signed object's signature does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureProblem {
    #[error("it is not a JSON object")]
    NotAnObject,
    #[error("it has no `signature` member")]
    Missing,
    #[error("its `signature` member is malformed: {0}")]
    Malformed(String),
    #[error("its key id {stated} does not match the public key it carries ({actual})")]
    KeyIdMismatch { stated: String, actual: String },
    #[error(
        "the Ed25519 signature does not match the content: the content or the signature was altered"
    )]
    Invalid,
}

/// The canonical bytes a signed object's signature covers.
pub fn signed_message(value: &Value) -> Result<Vec<u8>, SignatureProblem> {
    let Value::Object(map) = value else {
        return Err(SignatureProblem::NotAnObject);
    };
    let mut body: Map<String, Value> = map.clone();
    body.remove("signature");
    Ok(canonical::to_vec(&body))
}

/// Checks a signed object's signature against the key it names; returns that key.
pub fn verify_object(value: &Value) -> Result<PublicKey, SignatureProblem> {
    let Value::Object(map) = value else {
        return Err(SignatureProblem::NotAnObject);
    };
    let block = map.get("signature").ok_or(SignatureProblem::Missing)?;
    let block: SignatureBlock = serde_json::from_value(block.clone())
        .map_err(|e| SignatureProblem::Malformed(e.to_string()))?;
    if block.alg != "Ed25519" {
        return Err(SignatureProblem::Malformed(format!(
            "algorithm {:?} is not Ed25519",
            block.alg
        )));
    }
    let raw = B64
        .decode(&block.public_key)
        .map_err(|e| SignatureProblem::Malformed(format!("public key: {e}")))?;
    let key = PublicKey::from_raw(&raw)
        .ok_or_else(|| SignatureProblem::Malformed("public key is not an Ed25519 point".into()))?;
    if key.key_id() != block.key_id {
        return Err(SignatureProblem::KeyIdMismatch {
            stated: block.key_id,
            actual: key.key_id(),
        });
    }
    let sig = B64
        .decode(&block.value)
        .map_err(|e| SignatureProblem::Malformed(format!("signature value: {e}")))?;
    if sig.len() != 64 {
        return Err(SignatureProblem::Malformed(format!(
            "signature is {} bytes, not 64",
            sig.len()
        )));
    }
    let message = signed_message(value)?;
    if key.verify(&message, &sig) {
        Ok(key)
    } else {
        Err(SignatureProblem::Invalid)
    }
}

/// 64 lowercase hex digits to a hash.
pub fn parse_hash(text: &str) -> Option<Hash> {
    if text.len() != 64 || text.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    hex::decode(text).ok()?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_scan_signed_twice_in_one_millisecond_makes_two_distinct_records() {
        let scan = serde_json::json!({
            "verdict": "human",
            "media": {"sha256": "cd".repeat(32), "size_bytes": 10, "path": "/tmp/x/call.wav"},
            "analysers": [{"name": "voice-synthetic", "version": "1"}],
        });
        let tool = ToolId {
            name: "aqiqat".into(),
            version: "0".into(),
        };
        let signer = Signer25519::from_seed([3; 32]);
        let [a, b] = [0, 1].map(|_| {
            let draft =
                RecordDraft::from_scan(scan.clone(), Context::default(), tool.clone()).unwrap();
            assert_eq!(draft.id.len(), 32);
            assert_eq!(draft.subject.name.as_deref(), Some("call.wav"));
            SignedRecord::sign(draft, "2026-01-01T00:00:00.000Z".into(), &signer)
        });
        assert_ne!(a.value["id"], b.value["id"]);
        assert_ne!(a.leaf_hash(), b.leaf_hash());
    }

    fn draft() -> RecordDraft {
        RecordDraft {
            id: "test-draft".into(),
            subject: Subject {
                sha256: "ab".repeat(32),
                size_bytes: 1234,
                name: Some("call.wav".into()),
                media: serde_json::json!({"codec": "pcm_s16le"}),
            },
            analysers: vec![AnalyserId {
                name: "voice".into(),
                version: "1".into(),
                weights_sha256: Some("cd".repeat(32)),
            }],
            verdict: "synthetic".into(),
            result: serde_json::json!({"verdict": "synthetic", "probability_synthetic": 0.97}),
            context: Context {
                case_id: Some("case-1".into()),
                operator: Some("Айгүл".into()),
                note: None,
            },
            tool: ToolId {
                name: "aqiqat".into(),
                version: "0.1.0".into(),
            },
        }
    }

    #[test]
    fn a_signed_record_verifies_and_any_change_breaks_it() {
        let signer = Signer25519::from_seed([7; 32]);
        let rec = SignedRecord::sign(draft(), "2026-11-26T00:00:00.000Z".into(), &signer);
        assert_eq!(verify_object(&rec.value).unwrap(), signer.public());
        assert_eq!(rec.body().unwrap().verdict, "synthetic");

        let mut changed = rec.value.clone();
        changed["result"]["probability_synthetic"] = serde_json::json!(0.96);
        assert_eq!(verify_object(&changed), Err(SignatureProblem::Invalid));

        let mut changed = rec.value.clone();
        changed["context"]["note"] = serde_json::json!("added later");
        assert_eq!(verify_object(&changed), Err(SignatureProblem::Invalid));

        // Another key's signature over the same content names another key id.
        let other = Signer25519::from_seed([8; 32]);
        let resigned = sign_object(rec.value.clone(), &other);
        assert_eq!(verify_object(&resigned).unwrap(), other.public());
        assert_ne!(other.public(), signer.public());
    }

    #[test]
    fn key_order_and_whitespace_do_not_matter() {
        let signer = Signer25519::from_seed([7; 32]);
        let rec = SignedRecord::sign(draft(), "2026-11-26T00:00:00.000Z".into(), &signer);
        let pretty = serde_json::to_string_pretty(&rec.value).unwrap();
        let reparsed: Value = serde_json::from_str(&pretty).unwrap();
        assert!(verify_object(&reparsed).is_ok());
        assert_eq!(SignedRecord::from_value(reparsed).canonical, rec.canonical);
    }

    #[test]
    fn tree_heads_sign_and_verify() {
        let signer = Signer25519::from_seed([1; 32]);
        let head = TreeHead::sign(5, &[3; 32], "t".into(), &signer);
        let v = serde_json::to_value(&head).unwrap();
        assert!(verify_object(&v).is_ok());
        let mut v2 = v.clone();
        v2["tree_size"] = serde_json::json!(6);
        assert_eq!(verify_object(&v2), Err(SignatureProblem::Invalid));
        assert_eq!(head.root(), Some([3; 32]));
    }
}
