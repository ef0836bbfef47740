//! The log against the in-memory reference tree: roots, inclusion and consistency proofs at
//! every size, persistence across reopen, several writers, append-only enforcement and
//! detection of tampering behind its back. Every test runs twice, on SQLite and on the
//! PostgreSQL server named by `AQIQAT_TEST_DATABASE_URL` (`.ci/postgres` starts one).

use aqiqat_evidence::log::Durability;
use aqiqat_evidence::merkle::{self, MemoryTree};
use aqiqat_evidence::record::{
    AnalyserId, Context, RecordDraft, SignedRecord, Subject, ToolId, parse_hash, verify_object,
};
use aqiqat_evidence::{Log, Signer25519};
use aqiqat_store::testing::TestSchema;
use aqiqat_store::{Db, Dialect, Location, Sql};

/// A fresh, empty database of either kind, removed afterwards.
enum Store {
    Sqlite(tempfile::TempDir),
    Postgres(TestSchema),
}

impl Store {
    fn location(&self) -> Location {
        match self {
            Store::Sqlite(dir) => Location::Sqlite(dir.path().join("log.sqlite")),
            Store::Postgres(schema) => schema.location(),
        }
    }

    fn open(&self, signer: Signer25519) -> Result<Log, aqiqat_evidence::EvidenceError> {
        Log::open_at(&self.location(), signer, Durability::Full)
    }

    /// A plain SQL connection beside the log, as a person with database access has.
    fn raw(&self) -> Db {
        Db::open(&self.location(), Durability::Full).unwrap()
    }
}

/// Runs a test body once per backend.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn sqlite() {
                super::$name(&super::Store::Sqlite(tempfile::tempdir().unwrap()));
            }
            #[test]
            fn postgres() {
                super::$name(&super::Store::Postgres(aqiqat_store::testing::TestSchema::create()));
            }
        }
    )*};
}

on_both_backends!(
    proofs_from_the_store_match_the_reference_at_every_size,
    heads_are_signed_stable_and_survive_reopening,
    two_writers_on_one_database_interleave_into_one_tree,
    history_cannot_be_rewritten_and_tampering_behind_its_back_is_found,
    records_are_found_by_index_and_hash_prefix_and_filed_in_cases,
    a_keyed_append_happens_once_however_often_it_is_asked_for,
);

fn signer() -> Signer25519 {
    Signer25519::from_seed([9; 32])
}

fn record(n: u64) -> SignedRecord {
    let draft = RecordDraft {
        id: format!("test-{n}"),
        subject: Subject {
            sha256: format!("{n:064x}"),
            size_bytes: n,
            name: None,
            media: serde_json::json!({}),
        },
        analysers: vec![AnalyserId {
            name: "voice-synthetic".into(),
            version: "1".into(),
            weights_sha256: None,
        }],
        verdict: "inconclusive".into(),
        result: serde_json::json!({"n": n}),
        context: Context::default(),
        tool: ToolId {
            name: "test".into(),
            version: "0".into(),
        },
    };
    SignedRecord::sign(draft, "2026-01-01T00:00:00.000Z".into(), &signer())
}

fn hashes(path: &[String]) -> Vec<merkle::Hash> {
    path.iter().map(|h| parse_hash(h).unwrap()).collect()
}

fn proofs_from_the_store_match_the_reference_at_every_size(store: &Store) {
    let mut log = store.open(signer()).unwrap();
    let mut reference = MemoryTree::default();
    let mut roots = vec![merkle::empty_root()];
    for n in 0..37u64 {
        let rec = record(n);
        // Mix single appends and a batch.
        if n == 20 {
            let batch: Vec<_> = (20..25).map(record).collect();
            let entries = log.append_all(&batch, None).unwrap();
            assert_eq!(
                entries.iter().map(|e| e.index).collect::<Vec<_>>(),
                (20..25).collect::<Vec<_>>()
            );
            for r in &batch {
                reference.push(r.leaf_hash());
                let len = reference.len();
                roots.push(merkle::root(&mut reference, len).unwrap());
            }
            continue;
        }
        if (21..25).contains(&n) {
            continue;
        }
        let entry = log.append(&rec, None).unwrap();
        assert_eq!(entry.index, reference.len());
        assert_eq!(entry.leaf_hash, hex::encode(rec.leaf_hash()));
        reference.push(rec.leaf_hash());
        let len = reference.len();
        roots.push(merkle::root(&mut reference, len).unwrap());
    }
    let size = log.size().unwrap();
    assert_eq!(size, 37);
    for n in 1..=size {
        assert_eq!(log.root_at(n).unwrap(), roots[n as usize], "root at {n}");
        for m in 0..n {
            let p = log.inclusion(m, n).unwrap();
            let leaf = parse_hash(&p.leaf_hash).unwrap();
            assert!(merkle::verify_inclusion(
                m,
                n,
                &leaf,
                &hashes(&p.path),
                &roots[n as usize]
            ));
        }
        for old in 1..=n {
            let c = log.consistency(old, n).unwrap();
            assert!(merkle::verify_consistency(
                old,
                n,
                &roots[old as usize],
                &roots[n as usize],
                &hashes(&c.path)
            ));
        }
    }
    // Out-of-range requests are refused as bad input, not answered.
    assert!(log.inclusion(5, 38).unwrap_err().is_bad_input());
    assert!(log.inclusion(37, 37).unwrap_err().is_bad_input());
    assert!(log.consistency(0, 3).unwrap_err().is_bad_input());
    assert!(log.consistency(4, 3).unwrap_err().is_bad_input());
}

fn heads_are_signed_stable_and_survive_reopening(store: &Store) {
    let (head3, envelope) = {
        let mut log = store.open(signer()).unwrap();
        let empty = log.tree_head().unwrap();
        assert_eq!(empty.tree_size, 0);
        assert_eq!(empty.root_hash, hex::encode(merkle::empty_root()));
        for n in 0..3 {
            log.append(&record(n), None).unwrap();
        }
        let head = log.tree_head().unwrap();
        assert_eq!(log.tree_head().unwrap(), head, "same size, same head");
        assert!(verify_object(&serde_json::to_value(&head).unwrap()).is_ok());
        (head, log.envelope(1).unwrap())
    };
    assert_eq!(envelope.tree_head, head3);
    assert_eq!(envelope.inclusion.leaf_index, 1);

    let mut log = store.open(signer()).unwrap();
    assert_eq!(log.size().unwrap(), 3);
    assert_eq!(log.tree_head().unwrap(), head3);
    log.append(&record(3), None).unwrap();
    let head4 = log.tree_head().unwrap();
    assert_eq!(head4.tree_size, 4);
    let c = log.consistency(3, 4).unwrap();
    assert!(merkle::verify_consistency(
        3,
        4,
        &head3.root().unwrap(),
        &head4.root().unwrap(),
        &hashes(&c.path)
    ));
    assert_eq!(log.record(2).unwrap(), record(2));
    // The same record twice is refused.
    assert!(log.append(&record(2), None).unwrap_err().is_bad_input());
    // Another key cannot take over the log.
    drop(log);
    assert!(store.open(Signer25519::from_seed([1; 32])).is_err());
}

fn two_writers_on_one_database_interleave_into_one_tree(store: &Store) {
    let mut a = store.open(signer()).unwrap();
    let mut b = store.open(signer()).unwrap();
    let mut reference = MemoryTree::default();
    for n in 0..20u64 {
        let log = if n.is_multiple_of(3) { &mut b } else { &mut a };
        let entry = log.append(&record(n), None).unwrap();
        assert_eq!(entry.index, n);
        reference.push(record(n).leaf_hash());
    }
    let expected = merkle::root(&mut reference, 20).unwrap();
    assert_eq!(a.tree_head().unwrap().root().unwrap(), expected);
    assert_eq!(b.tree_head().unwrap().root().unwrap(), expected);
    assert!(a.check().unwrap().problems.is_empty());
}

fn history_cannot_be_rewritten_and_tampering_behind_its_back_is_found(store: &Store) {
    let mut log = store.open(signer()).unwrap();
    for n in 0..10 {
        log.append(&record(n), None).unwrap();
    }
    log.tree_head().unwrap();
    let clean = log.check().unwrap();
    assert!(clean.problems.is_empty(), "{:?}", clean.problems);
    assert_eq!(clean.tree_heads_checked, 1);

    let mut raw = store.raw();
    let err = raw
        .execute(
            "UPDATE leaves SET data = ?1 WHERE idx = 3",
            aqiqat_store::args![&b"\x00"[..]],
        )
        .unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");
    assert!(
        raw.execute("DELETE FROM nodes WHERE level = 1", &[])
            .is_err()
    );
    assert!(raw.execute("DELETE FROM tree_heads", &[]).is_err());
    if raw.dialect() == Dialect::Postgres {
        assert!(raw.batch("TRUNCATE tree_heads").is_err());
    }

    // Someone with write access drops the guard and edits a record's verdict.
    raw.batch(match raw.dialect() {
        Dialect::Sqlite => "DROP TRIGGER leaves_append_only_u",
        Dialect::Postgres => "DROP TRIGGER leaves_append_only ON leaves",
    })
    .unwrap();
    let data = raw
        .query_one("SELECT data FROM leaves WHERE idx = 4", &[])
        .unwrap()
        .blob(0)
        .unwrap();
    let forged = String::from_utf8(data)
        .unwrap()
        .replace("inconclusive", "synthetic");
    raw.execute(
        "UPDATE leaves SET data = ?1 WHERE idx = 4",
        aqiqat_store::args![forged.as_bytes()],
    )
    .unwrap();
    let report = log.check().unwrap();
    let text = report.problems.join("\n");
    assert!(
        text.contains("record 4: stored leaf hash does not match"),
        "{text}"
    );
    assert!(text.contains("record 4: signature"), "{text}");
}

fn records_are_found_by_index_and_hash_prefix_and_filed_in_cases(store: &Store) {
    let mut log = store.open(signer()).unwrap();
    for n in 0..5 {
        log.append(&record(n), None).unwrap();
    }
    let leaf = hex::encode(record(3).leaf_hash());
    assert_eq!(log.find("3").unwrap().leaf_hash, leaf);
    assert_eq!(log.find(&leaf[..10]).unwrap().index, 3);
    assert_eq!(log.find(&leaf.to_uppercase()).unwrap().index, 3);
    assert!(log.find("99").unwrap_err().is_bad_input());
    assert!(log.find("abc").unwrap_err().is_bad_input());
    assert!(log.find("../../etc").unwrap_err().is_bad_input());

    let case = log
        .case_new(None, "Fake bank call, Almaty", Some("reported by a client"))
        .unwrap();
    assert_eq!(case.id, "case-1");
    assert!(
        log.case_new(Some("case-1"), "dup", None)
            .unwrap_err()
            .is_bad_input()
    );
    assert!(
        log.case_new(Some("../x"), "bad id", None)
            .unwrap_err()
            .is_bad_input()
    );
    let case = log.case_add("case-1", &[3, 1, 3]).unwrap();
    assert_eq!(
        case.records.iter().map(|e| e.index).collect::<Vec<_>>(),
        vec![1, 3]
    );
    assert!(log.case_add("case-1", &[7]).unwrap_err().is_bad_input());
    assert!(log.case_add("nope", &[1]).unwrap_err().is_bad_input());
    // Appending straight into a case, and into a missing case (which appends nothing).
    let e = log.append(&record(5), Some("case-1")).unwrap();
    assert_eq!(
        log.case("case-1").unwrap().records.last().unwrap().index,
        e.index
    );
    assert!(
        log.append(&record(6), Some("nope"))
            .unwrap_err()
            .is_bad_input()
    );
    assert_eq!(log.size().unwrap(), 6);
    assert_eq!(log.cases().unwrap().len(), 1);
}

/// A job delivered twice (two workers, or a worker that died after appending) asks twice to
/// append its record; the log keeps one, and both askers get its entry.
fn a_keyed_append_happens_once_however_often_it_is_asked_for(store: &Store) {
    use aqiqat_evidence::group::GroupCommit;
    use aqiqat_evidence::log::Append;
    let mut log = store.open(signer()).unwrap();
    let first = log
        .append_keyed(&[Append {
            record: &record(1),
            case: None,
            key: Some("job-a"),
        }])
        .unwrap();
    // The second delivery signs afresh (another time, so another record) under the same key.
    let again = log
        .append_keyed(&[
            Append {
                record: &record(2),
                case: None,
                key: Some("job-a"),
            },
            Append {
                record: &record(3),
                case: None,
                key: Some("job-b"),
            },
        ])
        .unwrap();
    assert_eq!(again[0], first[0]);
    assert_eq!(again[1].index, 1);
    assert_eq!(log.size().unwrap(), 2);

    // Through the group-commit writer, from many threads at once, one key: one record.
    drop(log);
    let group = GroupCommit::start(store.open(signer()).unwrap());
    let entries: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|n| {
                let group = group.clone();
                s.spawn(move || {
                    group
                        .append_once(record(10 + n), None, Some("job-c".into()))
                        .unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(entries.iter().all(|e| *e == entries[0]), "{entries:?}");
    drop(group);
    let log = store.open(signer()).unwrap();
    assert_eq!(log.size().unwrap(), 3);
    // The key table is append-only like the rest.
    let mut raw = store.raw();
    assert!(raw.execute("DELETE FROM append_keys", &[]).is_err());
}
