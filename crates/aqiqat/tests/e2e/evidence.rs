//! The evidence commands as a user meets them: the real binary, a real key and SQLite log in a
//! temporary data directory, clips from the shared smoke set.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::CliEnv as Env;

trait Clips {
    fn clip(&self, n: usize, name: &str) -> PathBuf;
}

impl Clips for Env {
    fn clip(&self, n: usize, name: &str) -> PathBuf {
        let to = self.path(name);
        std::fs::copy(common::smoke(n), &to).unwrap();
        to
    }
}

fn numbers_as_f64(v: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::Number(n) => serde_json::json!(n.as_f64().unwrap()),
        Value::Array(a) => Value::Array(a.iter().map(numbers_as_f64).collect()),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), numbers_as_f64(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn scan_record_verify_and_tampering() {
    let env = Env::new();
    let clip = env.clip(0, "call.flac");
    let record = env.path("call.evidence.json");
    let out = env.run(&[
        "scan",
        s(&clip),
        "--json",
        "--record",
        s(&record),
        "--operator",
        "Айгүл",
        "--note",
        "bank complaint 17",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let scan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let env_json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&record).unwrap()).unwrap();
    let rec = &env_json["record"];
    // The record holds what the issue lists.
    assert_eq!(rec["subject"]["sha256"], scan["media"]["sha256"]);
    assert_eq!(rec["subject"]["name"], "call.flac");
    assert_eq!(rec["verdict"], scan["verdict"]);
    // Canonical JSON writes 1.0 as 1: compare numbers as numbers.
    assert_eq!(
        numbers_as_f64(&rec["result"]["segments"]),
        numbers_as_f64(&scan["segments"])
    );
    assert!(!scan["segments"].as_array().unwrap().is_empty());
    assert_eq!(
        rec["analysers"][0]["weights_sha256"],
        scan["voice"]["model"]["weights_sha256"]
    );
    assert_eq!(rec["context"]["operator"], "Айгүл");
    assert!(rec["created_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(rec["signature"]["alg"], "Ed25519");
    // The folder it was scanned from stays on this machine.
    assert!(
        !std::fs::read_to_string(&record)
            .unwrap()
            .contains(env.dir.path().to_str().unwrap())
    );

    // The key is owner-only; its public half exports and pins.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let key = env.data().join("keys/signing-key.pem");
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            std::fs::metadata(env.data().join("keys"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o700
        );
    }
    let pubkey = env.path("key.pem");
    env.ok(&["key", "export", "--out", s(&pubkey)]);

    let verified = env.ok(&[
        "verify",
        s(&record),
        "--media",
        s(&clip),
        "--pubkey",
        s(&pubkey),
    ]);
    assert!(verified.contains("VERIFIED"), "{verified}");

    // Another file as media: exit 3 and the media check names it.
    let other = env.clip(1, "other.flac");
    let out = env.run(&[
        "verify",
        s(&record),
        "--media",
        s(&other),
        "--pubkey",
        s(&pubkey),
    ]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        text(&out.stdout).contains("FAIL media"),
        "{}",
        text(&out.stdout)
    );

    // One changed character in the record's score: the signature check says so.
    let original = std::fs::read_to_string(&record).unwrap();
    let p = scan["probability_synthetic"]
        .as_f64()
        .map(|p| format!("{p}"));
    let tampered = match p {
        Some(p) if original.contains(&p) => original.replacen(&p, "0.0123", 1),
        _ => original.replacen("\"operator\": \"Айгүл\"", "\"operator\": \"Айгул\"", 1),
    };
    assert_ne!(tampered, original);
    std::fs::write(&record, &tampered).unwrap();
    let out = env.run(&["verify", s(&record), "--pubkey", s(&pubkey), "--json"]);
    assert_eq!(out.status.code(), Some(3));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], false);
    let failed: Vec<&str> = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["outcome"] == "fail")
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert!(failed.contains(&"record signature"), "{v}");
    std::fs::write(&record, &original).unwrap();

    // A key that is not the signer's.
    let stranger = env.path("stranger.pem");
    std::fs::write(&stranger, "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n").unwrap();
    let out = env.run(&["verify", s(&record), "--pubkey", s(&stranger)]);
    assert_eq!(out.status.code(), Some(3));
    assert!(text(&out.stdout).contains("FAIL pinned key"));

    // Not a record at all, and a missing file.
    std::fs::write(env.path("junk.json"), b"\x00\x01not json").unwrap();
    assert_eq!(env.run(&["verify", "junk.json"]).status.code(), Some(3));
    assert_eq!(env.run(&["verify", "missing.json"]).status.code(), Some(2));
}

#[test]
fn tree_heads_proofs_and_consistency_through_the_cli() {
    let env = Env::new();
    let first = env.clip(0, "a.flac");
    let second = env.clip(1, "b.flac");
    env.ok(&["scan", s(&first), "--record", "a.json"]);
    env.ok(&["log", "head", "--out", "head1.json"]);
    env.ok(&["scan", s(&second), "--record", "b.json"]);
    env.ok(&["log", "head", "--out", "head2.json"]);

    // a.json's proof is for a tree of 1; against the newer head it needs a fresh proof.
    let out = env.run(&["verify", "a.json", "--tree-head", "head2.json"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        text(&out.stdout).contains("aqiqat log proof"),
        "{}",
        text(&out.stdout)
    );
    env.ok(&["log", "proof", "a.json", "--out", "a2.json"]);
    env.ok(&[
        "verify",
        "a2.json",
        "--tree-head",
        "head2.json",
        "--media",
        s(&first),
    ]);
    // Found by hash prefix too.
    let leaf: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(env.path("a2.json")).unwrap()).unwrap();
    let prefix = &leaf["inclusion"]["leaf_hash"].as_str().unwrap()[..12];
    env.ok(&["log", "proof", prefix, "--out", "a3.json"]);

    env.ok(&["log", "consistency", "head1.json", "--out", "c.json"]);
    let ok = env.ok(&[
        "log",
        "verify-consistency",
        "head1.json",
        "head2.json",
        "c.json",
    ]);
    assert!(ok.contains("CONSISTENT"));
    // A head from a rewritten history does not fit.
    let mut forged: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(env.path("head1.json")).unwrap()).unwrap();
    forged["root_hash"] = "11".repeat(32).into();
    std::fs::write(env.path("forged.json"), forged.to_string()).unwrap();
    let out = env.run(&[
        "log",
        "verify-consistency",
        "forged.json",
        "head2.json",
        "c.json",
    ]);
    assert_eq!(out.status.code(), Some(3));

    let check = env.ok(&["log", "check"]);
    assert!(check.contains("the log is intact"), "{check}");
    assert!(check.starts_with("2 records"), "{check}");
}

#[test]
fn bad_input_records_nothing_and_loses_nothing() {
    let env = Env::new();
    let clip = env.clip(0, "a.flac");
    env.ok(&["scan", s(&clip), "--record", "a.json"]);
    std::fs::write(env.path("trunc.wav"), b"RIFF\x24\x00\x00\x00WAVEfmt ").unwrap();
    let out = env.run(&["scan", "trunc.wav", "--record", "t.json"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(!env.path("t.json").exists());
    // A case that does not exist: refused before anything is appended.
    let out = env.run(&["scan", s(&clip), "--record", "x.json", "--case", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("no case"),
        "{}",
        text(&out.stderr)
    );
    let check = env.ok(&["log", "check"]);
    assert!(
        check.starts_with("1 records") && check.contains("intact"),
        "{check}"
    );
    env.ok(&["verify", "a.json", "--media", s(&clip)]);
}

#[test]
fn cases_export_as_bundles_that_verify_with_and_without_aqiqat() {
    let env = Env::new();
    let id = env.ok(&[
        "case",
        "new",
        "Мошеннический звонок из «банка»",
        "--note",
        "заявление №17",
    ]);
    assert_eq!(id.trim(), "case-1");
    let a = env.clip(0, "a.flac");
    let b = env.clip(5, "b.flac");
    env.ok(&["scan", s(&a), "--record", "a.json", "--case", "case-1"]);
    env.ok(&["scan", s(&b), "--record", "b.json"]);
    env.ok(&["case", "add", "case-1", "b.json"]);
    let shown = env.ok(&["case", "show", "case-1"]);
    assert!(
        shown.contains("a.flac") && shown.contains("b.flac"),
        "{shown}"
    );
    let listed = env.ok(&["case", "list", "--json"]);
    let cases: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(cases[0]["records"].as_array().unwrap().len(), 2);

    env.ok(&["case", "export", "case-1", "--out", "bundle"]);
    let bundle = env.path("bundle");
    for f in [
        "README.md",
        "case.json",
        "public-key.pem",
        "tree-head.json",
        "verify.py",
        "records/00000000.json",
        "records/00000001.json",
        "records/00000000.signed",
        "reports/case.kk.html",
        "reports/case.ru.pdf",
        "reports/case.en.pdf",
    ] {
        assert!(bundle.join(f).is_file(), "{f} missing from the bundle");
    }
    // Exporting over an existing folder is refused.
    assert_eq!(
        env.run(&["case", "export", "case-1", "--out", "bundle"])
            .status
            .code(),
        Some(2)
    );

    // With aqiqat, using only the bundle's files.
    for r in ["records/00000000.json", "records/00000001.json"] {
        env.ok(&[
            "verify",
            &format!("bundle/{r}"),
            "--pubkey",
            "bundle/public-key.pem",
            "--tree-head",
            "bundle/tree-head.json",
        ]);
    }
    // Without aqiqat: Python's standard library and OpenSSL.
    let py = |args: &[&str]| {
        Command::new("python3")
            .arg("verify.py")
            .args(args)
            .current_dir(&bundle)
            .output()
            .expect("python3 runs")
    };
    let out = py(&[s(&a), s(&b)]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(text(&out.stdout).contains("VERIFIED"));
    // ...and it is not a rubber stamp: a changed record fails there too.
    let path = bundle.join("records/00000001.json");
    let original = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        original.replacen("\"verdict\": \"", "\"verdict\": \"x", 1),
    )
    .unwrap();
    let out = py(&[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("FAIL records/00000001.json: Ed25519 signature"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn reports_in_three_languages_as_html_and_pdf() {
    let env = Env::new();
    let clip = env.clip(0, "a.flac");
    env.ok(&[
        "scan",
        s(&clip),
        "--record",
        "a.json",
        "--operator",
        "Ержан",
    ]);
    let expectations = [
        ("kk", "Дәлелдеме есебі", "Нені білдірмейді"),
        ("ru", "Доказательный отчёт", "Чего они не означают"),
        ("en", "Evidence report", "What they do not mean"),
    ];
    for (lang, title, limits) in expectations {
        let html = env.ok(&["report", "a.json", "--lang", lang]);
        assert!(html.contains(&format!("<html lang=\"{lang}\">")));
        assert!(html.contains(title) && html.contains(limits), "{lang}");
        assert!(html.contains("<svg class=\"timeline\""));
        assert!(html.contains("Ержан"));
        assert!(
            html.contains("class=\"pass\""),
            "the report shows the verification it made"
        );
        let pdf = env.path(&format!("r.{lang}.pdf"));
        env.ok(&[
            "report",
            "0",
            "--lang",
            lang,
            "--format",
            "pdf",
            "--out",
            s(&pdf),
        ]);
        let bytes = std::fs::read(&pdf).unwrap();
        assert!(bytes.starts_with(b"%PDF-") && bytes.len() > 5_000);
        // The text is real text in the right script (fonts embedded with their Unicode maps),
        // as a reader's PDF viewer will extract it.
        let out = Command::new("pdftotext")
            .arg(&pdf)
            .arg("-")
            .output()
            .expect("pdftotext (poppler-utils) runs");
        let extracted = text(&out.stdout);
        assert!(
            extracted.contains(title) && extracted.contains(limits),
            "{lang}: {extracted}"
        );
    }
    // A font folder without the faces is the user's to fix: exit 2, saying what is missing.
    let out = Command::new(env!("CARGO_BIN_EXE_aqiqat"))
        .args(["report", "0", "--format", "pdf", "--out"])
        .arg(env.path("nofont.pdf"))
        .env("AQIQAT_DATA_DIR", env.data())
        .env("AQIQAT_FONT_DIR", env.path("no-such-fonts"))
        .current_dir(env.dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("DejaVuSans.ttf"));
    // Hostile text in the record is escaped, not executed.
    env.ok(&[
        "scan",
        s(&clip),
        "--record",
        "x.json",
        "--note",
        "<script>alert(1)</script>",
    ]);
    let html = env.ok(&["report", "x.json"]);
    assert!(!html.contains("<script>") && html.contains("&lt;script&gt;"));
    // An inconclusive record explains itself in the report's language.
    let silence = env.path("silence.wav");
    common::write_wav_16k(&silence, std::iter::repeat_n(0i16, 48_000));
    env.ok(&["scan", s(&silence), "--record", "silence.json"]);
    let kk = env.ok(&["report", "silence.json", "--lang", "kk"]);
    assert!(
        kk.contains("АНЫҚТАЛМАДЫ") && kk.contains("жазбада сөз табылмады"),
        "{kk}"
    );
    let ru = env.ok(&["report", "silence.json", "--lang", "ru"]);
    assert!(ru.contains("в записи не найдено речи"));
    // So does a recording too noisy to judge, from its reason code and measured SNR.
    let speech = common::decode_with_aqiqat(&clip, 16_000, &env.path(""));
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let noisy = speech.iter().map(|&x| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let n = (state >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0;
        ((x + 0.3 * n) * 0.5 * 32767.0) as i16
    });
    let noisy_wav = env.path("noisy.wav");
    common::write_wav_16k(&noisy_wav, noisy);
    env.ok(&["scan", s(&noisy_wav), "--record", "noisy.json"]);
    for (lang, words) in [
        ("kk", "бағалау үшін тым шулы"),
        ("ru", "слишком шумно для оценки"),
        ("en", "too noisy to judge"),
    ] {
        let html = env.ok(&["report", "noisy.json", "--lang", lang]);
        assert!(html.contains(words), "{lang}: {html}");
    }
    assert_eq!(
        env.run(&["report", "a.json", "--lang", "de"]).status.code(),
        Some(2)
    );
    assert_eq!(
        env.run(&["report", "a.json", "--format", "pdf"])
            .status
            .code(),
        Some(2)
    );
}
