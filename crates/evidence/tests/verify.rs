//! Offline verification catches every single-byte change: in the record file (record, proof
//! and embedded tree head), in a separately given tree head, and in the media — each with a
//! message that names what failed.

use aqiqat_evidence::record::{AnalyserId, Context, RecordDraft, SignedRecord, Subject, ToolId};
use aqiqat_evidence::verify::{Inputs, Outcome, Verification, verify_consistency, verify_envelope};
use aqiqat_evidence::{Log, PublicKey, Signer25519};
use sha2::{Digest, Sha256};
use std::path::Path;

struct Fixture {
    _dir: tempfile::TempDir,
    envelope: String,
    head: String,
    media: std::path::PathBuf,
    key: PublicKey,
    /// The head at 3 records, and the consistency proof from it to the final head.
    old_head: String,
    consistency: String,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let media = dir.path().join("call.bin");
    let bytes: Vec<u8> = (0..4000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&media, &bytes).unwrap();
    let signer = Signer25519::from_seed([3; 32]);
    let key = signer.public();
    let mut log = Log::open(&dir.path().join("log.sqlite"), signer).unwrap();
    let sig = Signer25519::from_seed([3; 32]);
    // Some records before and after, so the proof has a real path.
    let mut old_head = String::new();
    for n in 0..6u64 {
        let sha = if n == 4 {
            hex::encode(Sha256::digest(&bytes))
        } else {
            format!("{n:064x}")
        };
        let draft = RecordDraft {
            id: format!("test-{n}"),
            subject: Subject {
                sha256: sha,
                size_bytes: if n == 4 { bytes.len() as u64 } else { n },
                name: Some("call.bin".into()),
                media: serde_json::json!({"container": "wav", "duration_s": 12.5}),
            },
            analysers: vec![AnalyserId {
                name: "voice-synthetic".into(),
                version: "1.0".into(),
                weights_sha256: Some("ab".repeat(32)),
            }],
            verdict: "synthetic".into(),
            result: serde_json::json!({
                "verdict": "synthetic",
                "probability_synthetic": 0.9731,
                "segments": [{"start_s": 0.0, "end_s": 4.0, "probability_synthetic": 0.97}],
            }),
            context: Context {
                case_id: None,
                operator: Some("Ержан".into()),
                note: Some("voice message, WhatsApp".into()),
            },
            tool: ToolId {
                name: "aqiqat".into(),
                version: "0.1.0".into(),
            },
        };
        log.append(
            &SignedRecord::sign(draft, "2026-11-26T10:00:00.000Z".into(), &sig),
            None,
        )
        .unwrap();
        if n == 2 {
            old_head = serde_json::to_string(&log.tree_head().unwrap()).unwrap();
        }
    }
    let consistency = serde_json::to_string(&log.consistency(3, 6).unwrap()).unwrap();
    let envelope = serde_json::to_string_pretty(&log.envelope(4).unwrap()).unwrap();
    let head = serde_json::to_string_pretty(&log.tree_head().unwrap()).unwrap();
    Fixture {
        _dir: dir,
        envelope,
        head,
        media,
        key,
        old_head,
        consistency,
    }
}

fn run(f: &Fixture, envelope: &str, head: Option<&str>, media: Option<&Path>) -> Verification {
    verify_envelope(
        envelope,
        &Inputs {
            media,
            tree_head: head,
            pinned_key: Some(f.key),
        },
    )
}

fn failed(v: &Verification) -> Vec<&'static str> {
    v.failures().map(|c| c.name).collect()
}

fn flip(text: &str, at: usize) -> Option<String> {
    let mut bytes = text.as_bytes().to_vec();
    bytes[at] ^= 0x01;
    // A flip that breaks UTF-8 is a file no JSON reader accepts; covered by its own case.
    String::from_utf8(bytes).ok()
}

#[test]
fn the_untouched_files_verify() {
    let f = fixture();
    let v = run(&f, &f.envelope, None, Some(&f.media));
    assert!(v.ok(), "{v:?}");
    assert!(v.checks.iter().all(|c| c.outcome == Outcome::Pass), "{v:?}");
    let v = run(&f, &f.envelope, Some(&f.head), Some(&f.media));
    assert!(v.ok(), "{v:?}");
}

#[test]
fn every_single_byte_flip_in_the_record_file_is_caught() {
    let f = fixture();
    let mut not_utf8 = 0;
    for at in 0..f.envelope.len() {
        let Some(changed) = flip(&f.envelope, at) else {
            not_utf8 += 1;
            continue;
        };
        let v = run(&f, &changed, None, None);
        assert!(
            !v.ok(),
            "flip at {at} ({:?}) went unnoticed",
            &f.envelope[at.saturating_sub(20)..(at + 20).min(f.envelope.len())]
        );
    }
    assert!(not_utf8 < f.envelope.len() / 10);
}

#[test]
fn every_single_byte_flip_in_a_given_tree_head_is_caught() {
    let f = fixture();
    for at in 0..f.head.len() {
        let Some(changed) = flip(&f.head, at) else {
            continue;
        };
        let v = run(&f, &f.envelope, Some(&changed), None);
        assert!(!v.ok(), "flip at {at} of the tree head went unnoticed");
    }
}

#[test]
fn every_single_byte_flip_in_the_media_is_caught() {
    let f = fixture();
    let original = std::fs::read(&f.media).unwrap();
    for at in (0..original.len()).step_by(97).chain([original.len() - 1]) {
        let mut bytes = original.clone();
        bytes[at] ^= 0x01;
        std::fs::write(&f.media, &bytes).unwrap();
        let v = run(&f, &f.envelope, None, Some(&f.media));
        assert_eq!(failed(&v), vec!["media"], "flip at {at}");
        let detail = &v.failures().next().unwrap().detail;
        assert!(
            detail.contains("not the file that was analysed"),
            "{detail}"
        );
    }
    // A truncated file too.
    std::fs::write(&f.media, &original[..original.len() - 1]).unwrap();
    assert_eq!(
        failed(&run(&f, &f.envelope, None, Some(&f.media))),
        vec!["media"]
    );
}

/// Targeted changes, each blamed on the right check.
#[test]
fn each_kind_of_change_is_named_precisely() {
    let f = fixture();
    let env: serde_json::Value = serde_json::from_str(&f.envelope).unwrap();
    let with = |edit: &dyn Fn(&mut serde_json::Value)| {
        let mut e = env.clone();
        edit(&mut e);
        let v = run(&f, &e.to_string(), None, None);
        (failed(&v), v)
    };

    let (names, v) = with(&|e| e["record"]["result"]["probability_synthetic"] = 0.0731.into());
    assert_eq!(names, vec!["record signature", "inclusion proof"], "{v:?}");
    assert!(
        v.failures()
            .next()
            .unwrap()
            .detail
            .contains("content or the signature was altered")
    );

    let (names, _) = with(&|e| e["record"]["verdict"] = "human".into());
    assert!(names.contains(&"record signature"));

    let (names, v) = with(&|e| {
        let p = e["inclusion"]["path"][1].as_str().unwrap().to_owned();
        let mut c: Vec<char> = p.chars().collect();
        c[10] = if c[10] == '0' { '1' } else { '0' };
        e["inclusion"]["path"][1] = c.into_iter().collect::<String>().into();
    });
    assert_eq!(names, vec!["inclusion proof"]);
    assert!(
        v.failures()
            .next()
            .unwrap()
            .detail
            .contains("does not lead to the tree head's root")
    );

    let (names, v) = with(&|e| e["inclusion"]["leaf_index"] = 3.into());
    assert_eq!(names, vec!["inclusion proof"], "{v:?}");

    let (names, v) = with(&|e| e["tree_head"]["root_hash"] = "00".repeat(32).into());
    assert_eq!(
        names,
        vec!["tree head signature", "inclusion proof"],
        "{v:?}"
    );

    // A record re-signed by someone else's key: valid signature, wrong signer.
    let (names, v) = with(&|e| {
        let forger = Signer25519::from_seed([66; 32]);
        e["record"] = aqiqat_evidence::record::sign_object(e["record"].clone(), &forger);
    });
    assert!(
        names.contains(&"signer") && names.contains(&"pinned key"),
        "{v:?}"
    );

    // A proof for another tree size than the head's.
    let (names, v) = with(&|e| e["inclusion"]["tree_size"] = 5.into());
    assert_eq!(names, vec!["inclusion proof"]);
    assert!(
        v.failures()
            .next()
            .unwrap()
            .detail
            .contains("tree of 5 records, the tree head for 6"),
        "{v:?}"
    );

    // Not JSON at all, or JSON of the wrong kind.
    assert_eq!(
        failed(&run(&f, "{\"schema\": ", None, None)),
        vec!["envelope"]
    );
    assert_eq!(failed(&run(&f, "[1,2]", None, None)), vec!["envelope"]);
}

#[test]
fn consistency_between_two_heads_is_verified_and_each_failure_named() {
    let f = fixture();
    let failed = |v: &Verification| -> Vec<&'static str> { v.failures().map(|c| c.name).collect() };
    let good = verify_consistency(&f.old_head, &f.head, &f.consistency, Some(&f.key));
    assert!(good.ok(), "{good:?}");

    // A head from a rewritten history.
    let mut forged: serde_json::Value = serde_json::from_str(&f.old_head).unwrap();
    forged["root_hash"] = "11".repeat(32).into();
    let v = verify_consistency(&forged.to_string(), &f.head, &f.consistency, None);
    assert_eq!(
        failed(&v),
        vec!["old tree head", "consistency proof"],
        "{v:?}"
    );

    // The same history re-signed by someone else's key.
    let other = Signer25519::from_seed([8; 32]);
    let mut body: serde_json::Value = serde_json::from_str(&f.old_head).unwrap();
    body.as_object_mut().unwrap().remove("signature");
    let resigned = aqiqat_evidence::record::sign_object(body, &other);
    let v = verify_consistency(&resigned.to_string(), &f.head, &f.consistency, Some(&f.key));
    assert_eq!(failed(&v), vec!["same key", "pinned key"], "{v:?}");

    // Heads given the wrong way round, and files that are not what they claim.
    let v = verify_consistency(&f.head, &f.old_head, &f.consistency, None);
    assert_eq!(failed(&v), vec!["consistency proof"], "{v:?}");
    let v = verify_consistency("{", &f.head, "[]", None);
    assert_eq!(
        failed(&v),
        vec!["old tree head", "consistency proof"],
        "{v:?}"
    );
}
