//! The voiceprint store against real SQLite files and a real PostgreSQL server (`.ci/postgres`).

use aqiqat_store::testing::TestSchema;
use aqiqat_store::{Db, Durability, Location, Sql, args};
use aqiqat_voiceprints::{EnrolledFile, NewVoiceprint, Owner, VoiceprintError, VoiceprintStore};
use std::path::Path;

fn vector(seed: f32) -> Vec<f32> {
    (0..256)
        .map(|i| ((i as f32 + seed) * 0.37).sin() / 11.3)
        .collect()
}

fn new<'a>(name: &'a str, note: Option<&'a str>, v: &'a [f32]) -> NewVoiceprint<'a> {
    NewVoiceprint {
        name,
        note,
        files: vec![EnrolledFile {
            sha256: "ab".repeat(32),
            speech_s: 12.5,
            name: "voice-1.ogg".into(),
        }],
        encoder_sha256: "cd",
        vector: v,
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Every byte of every file in `dir`, recursively.
fn raw_bytes(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(raw_bytes(&path));
        } else {
            out.push((path.display().to_string(), std::fs::read(&path).unwrap()));
        }
    }
    out
}

fn scoping_and_lookup(data_dir: &Path, database: Option<&Location>) {
    let mut store = VoiceprintStore::open(data_dir, database).unwrap();
    let a = Owner::Key("key-a".into());
    let b = Owner::Key("key-b".into());
    let v = vector(1.0);
    let arman = store.enrol(&a, new("Арман", Some("son"), &v)).unwrap();
    assert!(arman.id.starts_with("vp_"));
    assert_eq!(arman.owner.as_deref(), Some("key-a"));
    assert_eq!(arman.speech_s, 12.5);

    // Names are unique per owner, compared without case; another owner may use the same.
    assert!(matches!(
        store.enrol(&a, new(" арман ", None, &v)),
        Err(VoiceprintError::NameTaken(_))
    ));
    let other = store.enrol(&b, new("Арман", None, &vector(2.0))).unwrap();

    // Each key sees, uses and deletes only its own.
    let got = store.get(&a, "арман").unwrap();
    assert_eq!(got.summary.id, arman.id);
    assert_eq!(got.vector, v, "the vector comes back bit for bit");
    assert_eq!(
        store.get(&b, &arman.id).unwrap_err().to_string(),
        format!("no voiceprint {:?}", arman.id)
    );
    assert!(matches!(
        store.delete(&b, &arman.id),
        Err(VoiceprintError::NotFound(_))
    ));
    assert_eq!(store.list(&a).unwrap().len(), 1);
    assert_eq!(store.list(&b).unwrap()[0].id, other.id);
    // The machine's own user sees all, and must use the id where a name is shared.
    assert_eq!(store.list(&Owner::Local).unwrap().len(), 2);
    assert!(matches!(
        store.get(&Owner::Local, "Арман"),
        Err(VoiceprintError::Ambiguous(_))
    ));
    assert_eq!(
        store
            .get(&Owner::Local, &other.id)
            .unwrap()
            .summary
            .owner
            .as_deref(),
        Some("key-b")
    );
    assert!(matches!(
        store.get(&a, "nobody"),
        Err(VoiceprintError::NotFound(_))
    ));

    // Deleted is gone, and the name is free again; the other key's voiceprint stays.
    assert_eq!(store.delete(&a, "Арман").unwrap().id, arman.id);
    assert!(matches!(
        store.get(&a, &arman.id),
        Err(VoiceprintError::NotFound(_))
    ));
    store.enrol(&a, new("Арман", None, &v)).unwrap();
    assert_eq!(store.get(&b, "Арман").unwrap().summary.id, other.id);

    // What was stored survives a reopen.
    drop(store);
    let mut store = VoiceprintStore::open(data_dir, database).unwrap();
    assert_eq!(store.list(&Owner::Local).unwrap().len(), 2);
}

#[test]
fn each_key_sees_only_its_own_voiceprints_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    scoping_and_lookup(dir.path(), None);
}

#[test]
fn each_key_sees_only_its_own_voiceprints_postgres() {
    let schema = TestSchema::create();
    let dir = tempfile::tempdir().unwrap();
    scoping_and_lookup(dir.path(), Some(&schema.location()));
}

#[test]
fn nothing_readable_at_rest_and_nothing_left_after_delete() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = VoiceprintStore::open(dir.path(), None).unwrap();
    let v = vector(3.0);
    let name = "Gulnara Seitkali";
    let note = "enrolled from the family chat";
    let kept = store
        .enrol(&Owner::Local, new("Keeper", None, &vector(4.0)))
        .unwrap();
    let gone = store
        .enrol(&Owner::Local, new(name, Some(note), &v))
        .unwrap();

    // The sealed bytes, read straight from the table.
    let mut db = Db::open(
        &Location::Sqlite(dir.path().join("voiceprints.sqlite")),
        Durability::Full,
    )
    .unwrap();
    let sealed = db
        .query_one(
            "SELECT sealed FROM voiceprints WHERE id = ?1",
            args![gone.id.as_str()],
        )
        .unwrap()
        .blob(0)
        .unwrap();
    drop(db);
    let plain_vector = serde_json::to_string(&v[..8]).unwrap();
    for (path, bytes) in raw_bytes(dir.path()) {
        for secret in [name, note, plain_vector.trim_matches(['[', ']'])] {
            assert!(
                !contains(&bytes, secret.as_bytes()),
                "{path} holds {secret:?} in the clear"
            );
        }
    }
    assert!(
        raw_bytes(dir.path())
            .iter()
            .any(|(_, b)| contains(b, &sealed[..32])),
        "the sealed bytes are somewhere before the delete (else this test proves nothing)"
    );

    store.delete(&Owner::Local, &gone.id).unwrap();
    for (path, bytes) in raw_bytes(dir.path()) {
        assert!(
            !contains(&bytes, &sealed[..32]),
            "{path} still holds the deleted voiceprint"
        );
    }
    assert_eq!(
        store.get(&Owner::Local, &kept.id).unwrap().summary.name,
        "Keeper"
    );

    // The key is the owner's alone.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("keys/voiceprint-key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[test]
fn a_store_opened_with_another_key_cannot_read_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = VoiceprintStore::open(dir.path(), None).unwrap();
    store
        .enrol(&Owner::Local, new("Someone", None, &vector(5.0)))
        .unwrap();
    drop(store);
    let key = dir.path().join("keys/voiceprint-key");
    std::fs::remove_file(&key).unwrap();
    let mut store = VoiceprintStore::open(dir.path(), None).unwrap();
    let err = store.list(&Owner::Local).unwrap_err();
    assert!(matches!(err, VoiceprintError::Unsealable(_)), "{err}");

    // A key others can read is refused.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = VoiceprintStore::open(dir.path(), None).err().unwrap();
        assert!(err.to_string().contains("readable by others"), "{err}");
    }
}
