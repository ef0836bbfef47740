//! `aqiqat serve` as a client meets it: the real binary on a loopback port, real uploads over
//! HTTP, and the same answers the CLI gives. Every test that stores something runs twice: on
//! the embedded SQLite default and on a real PostgreSQL server (`--database-url`).

use crate::common;

use common::{Backend, Reply, Server, agent, reply, smoke};
use serde_json::Value;
use std::io::Read;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// Runs a test body once per storage backend.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn sqlite() {
                super::$name(&super::Backend::Sqlite);
            }
            #[test]
            fn postgres() {
                super::$name(&super::Backend::postgres());
            }
        }
    )*};
}

on_both_backends!(
    an_upload_gets_the_cli_verdict_a_verifiable_record_and_reports,
    cases_through_multipart_uploads_and_the_case_endpoints,
    bad_requests_get_the_right_4xx_and_change_nothing,
    a_full_queue_answers_503_with_retry_after_and_accepted_work_survives_a_kill,
    api_keys_are_needed_once_one_exists_and_rates_are_enforced,
    voiceprints_belong_to_the_key_that_enrolled_them,
    a_link_becomes_one_job_per_media_item_each_recorded_with_the_post,
);

fn get(s: &Server, path: &str) -> Reply {
    reply(agent().get(&s.url(path)).call())
}

fn post(s: &Server, path: &str, content_type: &str, body: &[u8]) -> Reply {
    reply(
        agent()
            .post(&s.url(path))
            .header("Content-Type", content_type)
            .send(body),
    )
}

fn wait_done(s: &Server, id: &str) -> Value {
    s.wait_for(id, &["done", "failed"], Duration::from_secs(120))
}

fn cli(backend: &Backend, data: &Path, args: &[&str]) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_aqiqat"));
    backend
        .apply(&mut command)
        .args(args)
        .env("AQIQAT_DATA_DIR", data)
        .output()
        .unwrap()
}

fn multipart(boundary: &str, parts: &[(&str, Option<&str>, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, file, bytes) in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match file {
            Some(f) => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes(),
            ),
            None => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
            ),
        }
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    body
}

fn an_upload_gets_the_cli_verdict_a_verifiable_record_and_reports(backend: &Backend) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_on(backend, dir.path(), &["--workers", "2"]);
    let clip = smoke(7);
    let bytes = std::fs::read(&clip).unwrap();

    let accepted = post(
        &server,
        "/v1/scans?name=voice-message.flac&operator=%D0%90%D0%B9%D0%B3%D2%AF%D0%BB",
        "audio/flac",
        &bytes,
    );
    assert_eq!(accepted.status, 202, "{}", accepted.text());
    let id = accepted.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(accepted.headers["location"], format!("/v1/scans/{id}"));

    let job = wait_done(&server, &id);
    assert_eq!(job["state"], "done", "{job}");
    // The API's result is the CLI's result for the same bytes.
    let out = cli(
        backend,
        dir.path(),
        &["scan", clip.to_str().unwrap(), "--json"],
    );
    let local: Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in ["verdict", "probability_synthetic", "segments", "analysers"] {
        assert_eq!(job["result"][key], local[key], "{key}");
    }
    assert_eq!(job["result"]["media"]["sha256"], local["media"]["sha256"]);
    assert_eq!(job["name"], "voice-message.flac");

    // The evidence record verifies offline against the media, pinned to the server's key.
    let record = get(&server, &format!("/v1/scans/{id}/record"));
    assert_eq!(record.status, 200);
    let record_path = dir.path().join("record.json");
    std::fs::write(&record_path, &record.body).unwrap();
    let key = get(&server, "/v1/key");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&key_path, &key.body).unwrap();
    let verified = cli(
        backend,
        dir.path(),
        &[
            "verify",
            record_path.to_str().unwrap(),
            "--media",
            clip.to_str().unwrap(),
            "--pubkey",
            key_path.to_str().unwrap(),
        ],
    );
    assert_eq!(
        verified.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&verified.stdout)
    );
    assert_eq!(record.json()["record"]["context"]["operator"], "Айгүл");

    let html = get(&server, &format!("/v1/scans/{id}/report?lang=kk"));
    assert_eq!(html.status, 200);
    assert!(
        html.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(html.text().contains("Дәлелдеме есебі"));
    let pdf = get(
        &server,
        &format!("/v1/scans/{id}/report?lang=ru&format=pdf"),
    );
    assert_eq!(pdf.status, 200);
    assert!(pdf.body.starts_with(b"%PDF-"));

    let head = get(&server, "/v1/log/head").json();
    assert_eq!(head["tree_size"], 1);
    let health = get(&server, "/healthz").json();
    assert_eq!(health["status"], "ok");
    let metrics = get(&server, "/metrics").text();
    assert!(metrics.contains("aqiqat_scans_done_total 1"), "{metrics}");
    // With --database-url nothing goes to the SQLite files.
    let sqlite_used = ["evidence.sqlite", "server.sqlite"].map(|f| dir.path().join(f).exists());
    assert_eq!(
        sqlite_used,
        [matches!(backend, Backend::Sqlite); 2],
        "SQLite files present: {sqlite_used:?}"
    );
}

fn cases_through_multipart_uploads_and_the_case_endpoints(backend: &Backend) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_on(backend, dir.path(), &[]);
    let created = post(
        &server,
        "/v1/cases",
        "application/json",
        serde_json::json!({"title": "«Банк» звонит", "note": "заявление 17"})
            .to_string()
            .as_bytes(),
    );
    assert_eq!(created.status, 201, "{}", created.text());
    let case = created.json()["id"].as_str().unwrap().to_owned();

    let boundary = "aqiqat-test-boundary";
    let bytes = std::fs::read(smoke(0)).unwrap();
    let body = multipart(
        boundary,
        &[
            ("case", None, case.as_bytes()),
            ("note", None, "first call".as_bytes()),
            ("file", Some("../../etc/passwd.flac"), &bytes),
        ],
    );
    let accepted = post(
        &server,
        "/v1/scans",
        &format!("multipart/form-data; boundary={boundary}"),
        &body,
    );
    assert_eq!(accepted.status, 202, "{}", accepted.text());
    let id = accepted.json()["id"].as_str().unwrap().to_owned();
    // The client's file name is kept as a name, never as a path.
    assert_eq!(accepted.json()["name"], "passwd.flac");
    assert_eq!(wait_done(&server, &id)["state"], "done");

    let second = post(
        &server,
        "/v1/scans",
        "application/octet-stream",
        &std::fs::read(smoke(6)).unwrap(),
    );
    let id2 = second.json()["id"].as_str().unwrap().to_owned();
    wait_done(&server, &id2);
    let added = post(
        &server,
        &format!("/v1/cases/{case}/records"),
        "application/json",
        serde_json::json!({"records": [id2]}).to_string().as_bytes(),
    );
    assert_eq!(added.status, 200, "{}", added.text());
    let shown = get(&server, &format!("/v1/cases/{case}")).json();
    assert_eq!(shown["records"].as_array().unwrap().len(), 2);
    let report = get(&server, &format!("/v1/cases/{case}/report?lang=ru"));
    assert!(report.text().contains("Отчёт по делу") && report.text().contains("passwd.flac"));
    assert_eq!(
        get(&server, "/v1/cases").json().as_array().unwrap().len(),
        1
    );
}

fn bad_requests_get_the_right_4xx_and_change_nothing(backend: &Backend) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_on(backend, dir.path(), &["--max-upload", "200000"]);
    let good = std::fs::read(smoke(0)).unwrap();
    assert!(good.len() < 200_000);

    assert_eq!(post(&server, "/v1/scans", "audio/wav", b"").status, 400);
    let wrong_type = post(&server, "/v1/scans", "text/plain", b"hello");
    assert_eq!(wrong_type.status, 415);
    assert_eq!(wrong_type.json()["error"]["kind"], "bad_input");
    // JSON is a link request, and this one is not.
    let not_a_link = post(&server, "/v1/scans", "application/json", b"{\"file\": 1}");
    assert_eq!(not_a_link.status, 400, "{}", not_a_link.text());
    assert!(not_a_link.text().contains("url"), "{}", not_a_link.text());
    assert_eq!(
        post(&server, "/v1/scans", "audio/wav", &vec![7u8; 300_000]).status,
        413
    );
    // Without a Content-Length the limit is enforced while the bytes arrive.
    let mut endless = std::io::Read::take(std::io::repeat(7), 300_000);
    let chunked = reply(
        agent()
            .post(&server.url("/v1/scans"))
            .header("Content-Type", "audio/wav")
            .send(ureq::SendBody::from_reader(&mut endless)),
    );
    assert_eq!(chunked.status, 413);
    let boundary = "b0undary";
    let no_file = multipart(boundary, &[("note", None, b"hello")]);
    assert_eq!(
        post(
            &server,
            "/v1/scans",
            &format!("multipart/form-data; boundary={boundary}"),
            &no_file
        )
        .status,
        400
    );
    let big_part = multipart(boundary, &[("file", Some("x.wav"), &vec![1u8; 300_000])]);
    assert_eq!(
        post(
            &server,
            "/v1/scans",
            &format!("multipart/form-data; boundary={boundary}"),
            &big_part
        )
        .status,
        413
    );
    let broken = b"--b0undary\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nabc";
    assert_eq!(
        post(
            &server,
            "/v1/scans",
            "multipart/form-data; boundary=b0undary",
            broken
        )
        .status,
        400
    );
    assert_eq!(
        post(&server, "/v1/scans?case=nope", "audio/flac", &good).status,
        404
    );
    assert_eq!(
        post(&server, "/v1/scans?note=%07bell", "audio/flac", &good).status,
        400
    );

    for path in [
        "/v1/scans/..%2F..%2Fetc%2Fpasswd",
        "/v1/scans/../../etc/passwd",
        "/v1/scans/0123456789abcdef0123456789abcdef",
        "/v1/nothing",
        "/etc/passwd",
    ] {
        assert_eq!(get(&server, path).status, 404, "{path}");
    }
    let bad_json = reply(
        agent()
            .post(&server.url("/v1/cases"))
            .header("Content-Type", "application/json")
            .send(&b"{\"title\": "[..]),
    );
    assert_eq!(bad_json.status / 100, 4);

    // A picture cut short: accepted (the server cannot know before decoding), then failed as
    // bad input naming what it is.
    let png = post(
        &server,
        "/v1/scans",
        "application/octet-stream",
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
    );
    assert_eq!(png.status, 202);
    let job = wait_done(&server, png.json()["id"].as_str().unwrap());
    assert_eq!(job["state"], "failed");
    assert_eq!(job["error"]["kind"], "bad_input");
    assert!(
        job["error"]["message"].as_str().unwrap().contains("PNG"),
        "{job}"
    );
    let not_ready = get(
        &server,
        &format!("/v1/scans/{}/record", png.json()["id"].as_str().unwrap()),
    );
    assert_eq!(not_ready.status, 409);
    assert_eq!(
        get(
            &server,
            "/v1/scans/0123456789abcdef0123456789abcdef/report?lang=de"
        )
        .status,
        400
    );

    // Nothing was logged by any of that, and no upload was left behind in the spool.
    assert_eq!(get(&server, "/v1/log/head").json()["tree_size"], 0);
    let left: Vec<_> = std::fs::read_dir(dir.path().join("spool"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

fn a_full_queue_answers_503_with_retry_after_and_accepted_work_survives_a_kill(backend: &Backend) {
    let dir = tempfile::tempdir().unwrap();
    // Ten minutes of audio, so that each scan far outlasts an upload.
    let wav = dir.path().join("long.wav");
    let mut x = 1u32;
    let samples = (0..16_000 * 600).map(|i| {
        x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        let noise = ((x >> 16) as f32 / 65536.0 - 0.5) * 0.1;
        let voice = ((i as f32) * 0.03).sin() * (((i / 4000) % 3) as f32 * 0.2);
        ((voice + noise) * 20000.0) as i16
    });
    common::write_wav_16k(&wav, samples);
    let bytes = std::fs::read(&wav).unwrap();

    let server = Server::start_on(
        backend,
        dir.path().join("data").as_path(),
        &["--workers", "1", "--queue", "2"],
    );
    let results: Vec<Reply> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..10)
            .map(|_| scope.spawn(|| post(&server, "/v1/scans", "audio/wav", &bytes)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let accepted: Vec<String> = results
        .iter()
        .filter(|r| r.status == 202)
        .map(|r| r.json()["id"].as_str().unwrap().to_owned())
        .collect();
    let busy: Vec<&Reply> = results.iter().filter(|r| r.status == 503).collect();
    assert_eq!(accepted.len() + busy.len(), 10, "only 202 or 503");
    assert!(
        !busy.is_empty(),
        "one worker and a queue of 2 cannot take 10 at once"
    );
    assert!(accepted.len() >= 2);
    for b in &busy {
        assert_eq!(b.headers["retry-after"], "5");
        assert_eq!(b.json()["error"]["kind"], "busy");
    }

    // Kill the server while accepted jobs wait, start it again: every accepted job finishes.
    let waiting = accepted
        .iter()
        .filter(|id| get(&server, &format!("/v1/scans/{id}")).json()["state"] == "queued")
        .count();
    let data = server.data.clone();
    server.kill();
    assert!(
        waiting >= 1,
        "a job was still waiting when the server was killed"
    );
    let server = Server::start_on(backend, &data, &["--workers", "2"]);
    for id in &accepted {
        let job = wait_done(&server, id);
        assert_eq!(job["state"], "done", "{job}");
    }
    assert_eq!(
        get(&server, "/v1/log/head").json()["tree_size"],
        accepted.len()
    );
    drop(server);
    let check = cli(backend, &data, &["log", "check"]);
    assert!(String::from_utf8_lossy(&check.stdout).contains("intact"));
}

#[test]
fn an_uploaded_image_gets_its_provenance_checked_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let picture = dir.path().join("picture.png");
    std::fs::write(&picture, common::png_picture(9)).unwrap();
    let labelled = dir.path().join("labelled.png");
    let out = cli(
        &Backend::Sqlite,
        dir.path(),
        &[
            "label",
            picture.to_str().unwrap(),
            "--out",
            labelled.to_str().unwrap(),
            "--generator",
            "Acme ImageGen 3",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let server = Server::start(dir.path(), &[]);
    let accepted = post(
        &server,
        "/v1/scans?name=photo.png",
        "image/png",
        &std::fs::read(&labelled).unwrap(),
    );
    assert_eq!(accepted.status, 202, "{}", accepted.text());
    let id = accepted.json()["id"].as_str().unwrap().to_owned();
    let job = wait_done(&server, &id);
    assert_eq!(job["state"], "done", "{job}");
    let result = &job["result"];
    assert_eq!(result["verdict"], "synthetic");
    assert_eq!(result["verdict_basis"], "content_credentials");
    assert_eq!(
        result["provenance"]["digital_source_type"],
        "trainedAlgorithmicMedia"
    );
    assert_eq!(
        result["provenance"]["content_credentials"]["state"],
        "valid"
    );
    let report = get(&server, &format!("/v1/scans/{id}/report?lang=en"));
    assert_eq!(report.status, 200);
    assert!(report.text().contains("Provenance labels"));
    assert!(report.text().contains("Acme ImageGen 3"));
}

/// `serve --model` judges uploads with the voice detector it is given (here the fused v2 card
/// kept in `runs/voice-v2/fused/`), and the result and the signed record name that model, as
/// `scan --model` does; a model that cannot be loaded stops `serve`, `worker` and `scan` with
/// exit 2 before they listen, pull a job or read the input.
#[test]
fn serve_and_scan_judge_with_the_model_they_are_given_and_refuse_one_they_cannot_load() {
    let fused =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../runs/voice-v2/fused/voice-v2.json");
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        &["--workers", "1", "--model", fused.to_str().unwrap()],
    );
    let accepted = post(
        &server,
        "/v1/scans?name=m.flac",
        "audio/flac",
        &std::fs::read(smoke(7)).unwrap(),
    );
    assert_eq!(accepted.status, 202, "{}", accepted.text());
    let id = accepted.json()["id"].as_str().unwrap().to_owned();
    let job = wait_done(&server, &id);
    assert_eq!(job["state"], "done", "{job}");
    let given = &job["result"]["analysers"][0];
    assert_eq!(given["name"], "voice-v2", "{job}");
    let record = get(&server, &format!("/v1/scans/{id}/record")).text();
    assert!(record.contains("voice-v2"), "{record}");
    server.kill();
    // `scan --model` gives the same result for the same bytes.
    let out = cli(
        &Backend::Sqlite,
        dir.path(),
        &[
            "scan",
            smoke(7).to_str().unwrap(),
            "--json",
            "--model",
            fused.to_str().unwrap(),
        ],
    );
    let local: Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in ["verdict", "probability_synthetic", "segments", "analysers"] {
        assert_eq!(job["result"][key], local[key], "{key}");
    }

    // The built-in detector, on the same bytes, is another model.
    let built_in = Server::start(dir.path(), &["--workers", "1"]);
    let accepted = post(
        &built_in,
        "/v1/scans?name=m.flac",
        "audio/flac",
        &std::fs::read(smoke(7)).unwrap(),
    );
    let job = wait_done(&built_in, accepted.json()["id"].as_str().unwrap());
    // Compared by the weights' hash, not the name: a built-in v2 is also called `voice-v2`.
    let built = &job["result"]["analysers"][0];
    assert!(built["weights_sha256"].is_string(), "{job}");
    assert_ne!(built["weights_sha256"], given["weights_sha256"], "{job}");
    built_in.kill();

    let missing = dir.path().join("no-such-run");
    let clip = smoke(7);
    for command in [
        vec!["serve", "--addr", "127.0.0.1:0"],
        vec!["worker", "--queue", "nats://127.0.0.1:1"],
        vec!["scan", clip.to_str().unwrap()],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_aqiqat"))
            .args(&command)
            .args(["--model", missing.to_str().unwrap()])
            .env("AQIQAT_DATA_DIR", dir.path())
            .env_remove("AQIQAT_DATABASE_URL")
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{command:?}: {said}");
        assert!(
            said.contains("--model") && said.contains("cannot read"),
            "{command:?}: {said}"
        );
    }
}

#[test]
fn the_openapi_document_describes_every_route() {
    let backend = &Backend::Sqlite;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_on(backend, dir.path(), &[]);
    let spec = get(&server, "/openapi.json");
    assert_eq!(spec.status, 200);
    let spec = spec.json();
    assert_eq!(spec["openapi"], "3.1.0");
    let routes = include_str!("../../../server/src/api.rs");
    let mut n = 0;
    for line in routes.lines() {
        if let Some(rest) = line.trim().strip_prefix(".route(\"") {
            let path = rest.split('"').next().unwrap();
            assert!(
                spec["paths"].get(path).is_some(),
                "{path} is served but not documented"
            );
            n += 1;
        }
    }
    assert!(n >= 14);
}

fn get_with(s: &Server, path: &str, key: Option<&str>) -> Reply {
    let mut req = agent().get(&s.url(path));
    if let Some(k) = key {
        req = req.header("Authorization", &format!("Bearer {k}"));
    }
    reply(req.call())
}

fn api_keys_are_needed_once_one_exists_and_rates_are_enforced(backend: &Backend) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_on(backend, dir.path(), &[]);
    // A first local try needs no key.
    assert_eq!(get(&server, "/v1/log/head").status, 200);

    let made = cli(
        backend,
        dir.path(),
        &["api-key", "create", "bank-gateway", "--rate", "5"],
    );
    assert_eq!(made.status.code(), Some(0));
    let key = String::from_utf8(made.stdout).unwrap().trim().to_owned();
    assert!(key.starts_with("aqk_") && key.len() > 60);
    // Stored only as a hash, wherever it is stored.
    match backend {
        Backend::Sqlite => {
            let db = std::fs::read(dir.path().join("server.sqlite")).unwrap();
            assert!(!db.windows(key.len()).any(|w| w == key.as_bytes()));
        }
        Backend::Postgres(schema) => {
            use aqiqat_store::{Cell, Db, Durability, Sql};
            assert!(!dir.path().join("server.sqlite").exists());
            let mut db = Db::open(&schema.location(), Durability::Full).unwrap();
            let rows = db.query("SELECT * FROM api_keys", &[]).unwrap();
            assert_eq!(rows.len(), 1);
            for cell in &rows[0].0 {
                let bytes = match cell {
                    Cell::Text(t) => t.as_bytes(),
                    Cell::Blob(b) => b.as_slice(),
                    _ => continue,
                };
                assert!(!bytes.windows(key.len()).any(|w| w == key.as_bytes()));
            }
        }
    }

    let without = get(&server, "/v1/log/head");
    assert_eq!(without.status, 401);
    assert_eq!(without.headers["www-authenticate"], "Bearer");
    assert_eq!(
        get_with(&server, "/v1/log/head", Some("aqk_wrong")).status,
        401
    );
    assert_eq!(
        get(&server, "/healthz").status,
        200,
        "health checks stay open"
    );
    let statuses: Vec<u16> = (0..8)
        .map(|_| get_with(&server, "/v1/log/head", Some(&key)).status)
        .collect();
    assert_eq!(&statuses[..5], &[200; 5], "{statuses:?}");
    let limited = get_with(&server, "/v1/log/head", Some(&key));
    assert_eq!(limited.status, 429);
    assert!(
        limited.headers["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    // X-API-Key works too, and a revoked key stops working.
    let id = String::from_utf8(cli(backend, dir.path(), &["api-key", "list"]).stdout).unwrap();
    let id = id.split_whitespace().next().unwrap().to_owned();
    assert_eq!(
        cli(backend, dir.path(), &["api-key", "revoke", &id])
            .status
            .code(),
        Some(0)
    );
    let revoked = reply(
        agent()
            .get(&server.url("/v1/log/head"))
            .header("X-API-Key", &key)
            .call(),
    );
    assert_eq!(revoked.status, 401);
}

#[test]
fn serving_beyond_loopback_without_any_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_aqiqat"))
        .args(["serve", "--addr", "0.0.0.0:0"])
        .env("AQIQAT_DATA_DIR", dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("aqiqat api-key create"));
}

#[test]
fn slow_clients_are_cut_off() {
    let backend = &Backend::Sqlite;
    use std::io::Write;
    use std::net::TcpStream;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_on(
        backend,
        dir.path(),
        &["--header-timeout", "1", "--body-timeout", "1"],
    );
    let addr = server.base.trim_start_matches("http://").to_owned();
    let read_all = |mut s: TcpStream| {
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let start = Instant::now();
        // Until the server closes, or a whole response head has arrived.
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = s.read(&mut buf) {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
            if got.windows(4).any(|w| w == b"\r\n\r\n") {
                break;
            }
        }
        (start.elapsed(), String::from_utf8_lossy(&got).into_owned())
    };

    // Headers that never finish: the connection is closed after the header timeout.
    let mut s = TcpStream::connect(&addr).unwrap();
    s.write_all(b"POST /v1/scans HTTP/1.1\r\nHost: x\r\nContent-Type: audio/wav\r\n")
        .unwrap();
    let (waited, answer) = read_all(s);
    assert!(waited < Duration::from_secs(10), "held for {waited:?}");
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );

    // A body that stalls: 408 once it falls behind 64 kB/s plus the slack, and nothing is stored.
    let mut s = TcpStream::connect(&addr).unwrap();
    s.write_all(b"POST /v1/scans HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: audio/wav\r\nContent-Length: 100000\r\n\r\nRIFF").unwrap();
    let (waited, answer) = read_all(s);
    assert!(waited < Duration::from_secs(10), "held for {waited:?}");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(!get(&server, "/metrics").text().contains("aqiqat_jobs{"));
}

/// One HTTP/1.1 exchange written by hand, so that a test can send exactly the `Host`, `Origin`
/// and Fetch Metadata headers another website would make a browser send.
struct RawReply {
    status: u16,
    head: String,
    body: String,
}

impl RawReply {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
    fn kind(&self) -> String {
        serde_json::from_str::<Value>(&self.body)
            .map(|v| v["error"]["kind"].as_str().unwrap_or("").to_owned())
            .unwrap_or_default()
    }
}

fn raw(
    server: &Server,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> RawReply {
    use std::io::Write;
    let addr = server.base.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\n");
    if !headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("connection"))
    {
        request.push_str("Connection: close\r\n");
    }
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() {
        request.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    request.push_str("\r\n");
    s.write_all(request.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    // The head, then as much body as it announces (a 101 keeps the connection open).
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "the server closed without a response: {got:?}");
        got.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&got[..head_end]).into_owned();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let mut reply = RawReply {
        status,
        head,
        body: String::new(),
    };
    let length: usize = reply
        .header("content-length")
        .map_or(0, |v| v.parse().unwrap());
    let mut body = got[head_end + 4..].to_vec();
    while body.len() < length {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0);
        body.extend_from_slice(&buf[..n]);
    }
    reply.body = String::from_utf8_lossy(&body).into_owned();
    reply
}

/// An upload of `clip` as FLAC with these headers besides.
fn upload(server: &Server, headers: &[(&str, &str)], clip: &[u8]) -> RawReply {
    let mut all = headers.to_vec();
    all.push(("Content-Type", "audio/flac"));
    raw(server, "POST", "/v1/scans", &all, clip)
}

const WEBSOCKET: [(&str, &str); 4] = [
    ("Upgrade", "websocket"),
    ("Connection", "Upgrade"),
    ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ("Sec-WebSocket-Version", "13"),
];

/// What any website the person visits can make their browser send to `aqiqat serve` on its
/// defaults: reads through a rebound name, and uploads, changes and live streams from its own
/// page. Each is refused and leaves nothing behind; the page's own origin, clients without a
/// browser's `Origin`, and API keys still get through.
#[test]
fn other_websites_cannot_read_or_fill_the_local_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let own = server.base.trim_start_matches("http://").to_owned();
    let port = own.rsplit(':').next().unwrap().to_owned();
    let clip = std::fs::read(smoke(3)).unwrap();

    // DNS rebinding: the attacker's name now points here, and the browser says so in Host.
    let evil_host = format!("evil.example:{port}");
    for path in ["/v1/cases", "/v1/log/head", "/healthz", "/"] {
        let r = raw(&server, "GET", path, &[("Host", &evil_host)], b"");
        assert_eq!(r.status, 421, "{path}: {}", r.body);
        assert_eq!(r.kind(), "host_not_allowed");
        assert!(r.body.contains("--allowed-host evil.example"), "{}", r.body);
    }
    let mut stream_headers = WEBSOCKET.to_vec();
    stream_headers.push(("Host", &evil_host));
    let r = raw(
        &server,
        "GET",
        "/v1/stream?encoding=mulaw&rate=8000",
        &stream_headers,
        b"",
    );
    assert_eq!(r.status, 421, "{}", r.body);
    // The names it does answer to.
    for host in [
        own.clone(),
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
    ] {
        let r = raw(&server, "GET", "/v1/cases", &[("Host", &host)], b"");
        assert_eq!(r.status, 200, "{host}: {}", r.body);
        assert_eq!(
            r.header("cross-origin-resource-policy"),
            Some("same-origin")
        );
        assert_eq!(
            r.header("access-control-allow-origin"),
            None,
            "no CORS by default"
        );
    }

    // Cross-site writes: a form or fetch from another page, marked by Origin or Fetch Metadata.
    let host = ("Host", own.as_str());
    let neighbour = format!("http://localhost:{}", port.parse::<u16>().unwrap() + 1);
    let uploads = [
        ("Origin", "http://evil.example"),
        ("Sec-Fetch-Site", "cross-site"),
        ("Origin", "null"),
    ];
    let mut refused: Vec<RawReply> = uploads
        .iter()
        .map(|marker| upload(&server, &[host, *marker], &clip))
        .collect();
    refused.push(raw(
        &server,
        "POST",
        "/v1/cases",
        &[host, ("Origin", &neighbour), ("Content-Type", "text/plain")],
        br#"{"title":"planted"}"#,
    ));
    for r in &refused {
        assert_eq!(r.status, 403, "{}", r.body);
        assert_eq!(r.kind(), "cross_site");
    }
    let r = raw(
        &server,
        "GET",
        "/v1/stream?encoding=mulaw&rate=8000",
        &[
            WEBSOCKET.as_slice(),
            &[host, ("Origin", "http://evil.example")],
        ]
        .concat(),
        b"",
    );
    assert_eq!(r.status, 403, "the upgrade itself is refused: {}", r.body);
    // Nothing was stored: no job, no case, no record.
    assert_eq!(get(&server, "/v1/cases").json(), serde_json::json!([]));
    assert_eq!(get(&server, "/v1/log/head").json()["tree_size"], 0);
    assert!(!get(&server, "/metrics").text().contains("aqiqat_jobs{"));
    let options = raw(
        &server,
        "OPTIONS",
        "/v1/scans",
        &[
            host,
            ("Origin", "http://evil.example"),
            ("Access-Control-Request-Method", "POST"),
        ],
        b"",
    );
    assert_eq!(options.header("access-control-allow-origin"), None);

    // The page's own origin, a client that is not a browser, and the page's own live stream.
    let own_origin = server.base.clone();
    let from_page = upload(
        &server,
        &[
            host,
            ("Origin", &own_origin),
            ("Sec-Fetch-Site", "same-origin"),
        ],
        &clip,
    );
    assert_eq!(from_page.status, 202, "{}", from_page.body);
    let from_curl = upload(&server, &[host], &clip);
    assert_eq!(from_curl.status, 202, "{}", from_curl.body);
    let r = raw(
        &server,
        "GET",
        "/v1/stream?encoding=mulaw&rate=8000",
        &[WEBSOCKET.as_slice(), &[host, ("Origin", &own_origin)]].concat(),
        b"",
    );
    assert_eq!(r.status, 101, "{}", r.head);
    for reply in [from_page, from_curl] {
        let id = serde_json::from_str::<Value>(&reply.body).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(wait_done(&server, &id)["state"], "done");
    }

    // With an API key, a client may send any Origin (browsers never attach one cross-site).
    let made = cli(&Backend::Sqlite, dir.path(), &["api-key", "create", "desk"]);
    let key = String::from_utf8(made.stdout).unwrap().trim().to_owned();
    let bearer = format!("Bearer {key}");
    let keyed = upload(
        &server,
        &[
            host,
            ("Origin", "http://evil.example"),
            ("Authorization", &bearer),
        ],
        &clip,
    );
    assert_eq!(keyed.status, 202, "{}", keyed.body);
    let forged = upload(
        &server,
        &[
            host,
            ("Origin", "http://evil.example"),
            ("Authorization", "Bearer aqk_forged"),
        ],
        &clip,
    );
    assert_eq!(
        forged.status, 401,
        "a key that does not exist opens nothing: {}",
        forged.body
    );
}

/// A reverse proxy's name and a named web app: `--allowed-host` and `--allowed-origin` open
/// exactly those, with the CORS answers a browser needs, and nothing else.
#[test]
fn allowed_hosts_and_origins_open_only_what_they_name() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        &[
            "--allowed-host",
            "scanner.lan",
            "--allowed-origin",
            "https://desk.example",
        ],
    );
    let clip = std::fs::read(smoke(3)).unwrap();
    let host = ("Host", "scanner.lan");
    assert_eq!(raw(&server, "GET", "/v1/cases", &[host], b"").status, 200);
    assert_eq!(
        raw(&server, "GET", "/v1/cases", &[("Host", "other.lan")], b"").status,
        421
    );

    let preflight = raw(
        &server,
        "OPTIONS",
        "/v1/scans",
        &[
            host,
            ("Origin", "https://desk.example"),
            ("Access-Control-Request-Method", "POST"),
            ("Access-Control-Request-Headers", "content-type,x-api-key"),
        ],
        b"",
    );
    assert!(preflight.status < 300, "{}", preflight.head);
    assert_eq!(
        preflight.header("access-control-allow-origin"),
        Some("https://desk.example")
    );
    assert!(
        preflight
            .header("access-control-allow-methods")
            .unwrap()
            .contains("POST")
    );
    assert!(
        preflight
            .header("access-control-allow-headers")
            .unwrap()
            .contains("x-api-key")
    );

    let from_app = upload(&server, &[host, ("Origin", "https://desk.example")], &clip);
    assert_eq!(from_app.status, 202, "{}", from_app.body);
    assert_eq!(
        from_app.header("access-control-allow-origin"),
        Some("https://desk.example")
    );
    let from_other = upload(&server, &[host, ("Origin", "https://evil.example")], &clip);
    assert_eq!(from_other.status, 403, "{}", from_other.body);
    assert_eq!(from_other.header("access-control-allow-origin"), None);

    // A wildcard or a malformed origin is a usage error, before anything starts.
    for bad in [
        &["--allowed-origin", "*"][..],
        &["--allowed-host", "*"],
        &["--allowed-origin", "desk.example"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_aqiqat"))
            .args(["serve", "--addr", "127.0.0.1:0"])
            .args(bad)
            .env("AQIQAT_DATA_DIR", dir.path())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("--allowed-"),
            "{bad:?}"
        );
    }
}

fn with_key(
    s: &Server,
    method: &str,
    path: &str,
    key: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> Reply {
    let bearer = format!("Bearer {key}");
    let url = s.url(path);
    let a = agent();
    reply(match method {
        "GET" => a.get(&url).header("Authorization", &bearer).call(),
        "DELETE" => a.delete(&url).header("Authorization", &bearer).call(),
        _ => a
            .post(&url)
            .header("Authorization", &bearer)
            .header(
                "Content-Type",
                content_type.unwrap_or("application/octet-stream"),
            )
            .send(body),
    })
}

fn voiceprints_belong_to_the_key_that_enrolled_them(backend: &Backend) {
    let dir = tempfile::tempdir().unwrap();
    let key = |name: &str| {
        let made = cli(
            backend,
            dir.path(),
            &["api-key", "create", name, "--rate", "1000"],
        );
        assert_eq!(made.status.code(), Some(0));
        String::from_utf8(made.stdout).unwrap().trim().to_owned()
    };
    let (a, b) = (key("bank"), key("other-bank"));
    let server = Server::start_on(backend, dir.path(), &["--workers", "2"]);
    let manifest = std::fs::read_to_string(common::smoke_dir().join("smoke.tsv")).unwrap();
    let mut lj: Vec<std::path::PathBuf> = manifest
        .lines()
        .filter(|l| l.contains("\topenseq2seq-tacotron2-gst\tLJ-voice\t"))
        .map(|l| common::smoke_dir().join(l.split('\t').next().unwrap()))
        .collect();
    lj.sort_by_key(|p| std::cmp::Reverse(std::fs::metadata(p).unwrap().len()));
    let clips: Vec<Vec<u8>> = lj.iter().map(|p| std::fs::read(p).unwrap()).collect();
    let boundary = "vpb0undary";
    let form_type = format!("multipart/form-data; boundary={boundary}");
    let enrol_form = |name: &[u8], files: &[&[u8]]| {
        let mut parts: Vec<(&str, Option<&str>, &[u8])> = vec![("name", None, name)];
        parts.extend(files.iter().map(|f| ("file", Some("message.flac"), *f)));
        multipart(boundary, &parts)
    };
    let four: Vec<&[u8]> = clips[..4].iter().map(Vec::as_slice).collect();

    let made = with_key(
        &server,
        "POST",
        "/v1/voiceprints",
        &a,
        Some(&form_type),
        &enrol_form(b"LJ", &four),
    );
    assert_eq!(made.status, 201, "{}", made.text());
    let id = made.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(
        made.headers["location"],
        format!("/v1/voiceprints/{id}").as_str()
    );
    assert_eq!(made.json()["files"].as_array().unwrap().len(), 4);

    // The other key sees nothing, and cannot use or delete it.
    let listed = with_key(&server, "GET", "/v1/voiceprints", &b, None, b"").json();
    assert_eq!(listed["voiceprints"], serde_json::json!([]));
    assert_eq!(
        with_key(
            &server,
            "GET",
            &format!("/v1/voiceprints/{id}"),
            &b,
            None,
            b""
        )
        .status,
        404
    );
    assert_eq!(
        with_key(
            &server,
            "DELETE",
            &format!("/v1/voiceprints/{id}"),
            &b,
            None,
            b""
        )
        .status,
        404
    );
    let refused = with_key(
        &server,
        "POST",
        &format!("/v1/scans?claimed={id}"),
        &b,
        None,
        &clips[4],
    );
    assert_eq!(refused.status, 404, "{}", refused.text());
    let listed = with_key(&server, "GET", "/v1/voiceprints", &a, None, b"").json();
    assert_eq!(listed["voiceprints"][0]["id"], id.as_str());

    // Its own key scans against it, by name, through a form: a clone of the claimed person.
    let scan_form = multipart(
        boundary,
        &[
            ("claimed", None, b"lj"),
            ("file", Some("call.flac"), &clips[4]),
        ],
    );
    let accepted = with_key(
        &server,
        "POST",
        "/v1/scans",
        &a,
        Some(&form_type),
        &scan_form,
    );
    assert_eq!(accepted.status, 202, "{}", accepted.text());
    let job = accepted.json()["id"].as_str().unwrap().to_owned();
    let start = Instant::now();
    let done = loop {
        let j = with_key(&server, "GET", &format!("/v1/scans/{job}"), &a, None, b"").json();
        if j["state"] == "done" || j["state"] == "failed" {
            break j;
        }
        assert!(start.elapsed() < Duration::from_secs(120), "{j}");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(done["state"], "done", "{done}");
    assert_eq!(
        done["result"]["claim"]["verdict"], "clone_of_claimed",
        "{done}"
    );
    assert_eq!(done["result"]["speaker"]["claimed"]["id"], id.as_str());

    // Bad enrolments: 4xx, and nothing stored.
    let not_audio: &[u8] = b"just some text, not a recording of anyone's voice";
    let r = with_key(
        &server,
        "POST",
        "/v1/voiceprints",
        &a,
        Some(&form_type),
        &enrol_form(b"Text", &[not_audio]),
    );
    assert_eq!(r.status, 422, "{}", r.text());
    let r = with_key(
        &server,
        "POST",
        "/v1/voiceprints",
        &a,
        Some(&form_type),
        &enrol_form(b"Short", &four[..1]),
    );
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(r.headers["x-aqiqat-reason"], "too_little_speech");
    let r = with_key(
        &server,
        "POST",
        "/v1/voiceprints",
        &a,
        Some(&form_type),
        &enrol_form(b"lj", &four),
    );
    assert_eq!(r.status, 409, "{}", r.text());
    let nameless = multipart(boundary, &[("file", Some("a.flac"), four[0])]);
    let r = with_key(
        &server,
        "POST",
        "/v1/voiceprints",
        &a,
        Some(&form_type),
        &nameless,
    );
    assert_eq!(r.status, 400, "{}", r.text());
    let listed = with_key(&server, "GET", "/v1/voiceprints", &a, None, b"").json();
    assert_eq!(
        listed["voiceprints"].as_array().unwrap().len(),
        1,
        "{listed}"
    );

    // Deleted: gone, and no scan can claim it.
    assert_eq!(
        with_key(
            &server,
            "DELETE",
            &format!("/v1/voiceprints/{id}"),
            &a,
            None,
            b""
        )
        .status,
        204
    );
    assert_eq!(
        with_key(
            &server,
            "GET",
            &format!("/v1/voiceprints/{id}"),
            &a,
            None,
            b""
        )
        .status,
        404
    );
    let r = with_key(
        &server,
        "POST",
        &format!("/v1/scans?claimed={id}"),
        &a,
        None,
        &clips[4],
    );
    assert_eq!(r.status, 404, "{}", r.text());
}

/// `POST /v1/scans` with `{"url": …}`: the post's page and media are fetched by the server
/// (refused into the local network unless `--allow-private-urls`), each item becomes a job
/// whose result and record name the post, and bad links are answered 4xx before any job.
fn a_link_becomes_one_job_per_media_item_each_recorded_with_the_post(backend: &Backend) {
    use common::{link_server, sha256_hex};
    let one = std::fs::read(smoke(3)).unwrap();
    let two = std::fs::read(smoke(4)).unwrap();
    let post_page = "<html><head><meta property=\"og:video\" content=\"/one.flac\"></head>\
        <body><video><source src=\"/two.flac\"></video></body></html>";
    let base = link_server(vec![
        ("/post", "text/html", post_page.as_bytes().to_vec()),
        (
            "/text",
            "text/html",
            b"<html><body>words</body></html>".to_vec(),
        ),
        ("/one.flac", "audio/flac", one.clone()),
        ("/two.flac", "audio/flac", two.clone()),
    ]);
    let ask = |server: &Server, body: &str| {
        post(server, "/v1/scans", "application/json", body.as_bytes())
    };
    let link = format!("{base}/post");

    let dir = tempfile::tempdir().unwrap();
    let strict = Server::start_on(backend, dir.path(), &["--workers", "1"]);
    let refused = ask(&strict, &format!("{{\"url\": \"{link}\"}}"));
    assert_eq!(refused.status, 422, "{}", refused.text());
    assert!(refused.text().contains("loopback"), "{}", refused.text());
    let refused = ask(&strict, "{\"url\": \"file:///etc/passwd\"}");
    assert_eq!(refused.status, 422, "{}", refused.text());
    let refused = ask(&strict, "{\"link\": \"https://example.org\"}");
    assert_eq!(refused.status, 400, "{}", refused.text());
    drop(strict);

    let server = Server::start_on(
        backend,
        dir.path(),
        &[
            "--workers",
            "2",
            "--allow-private-urls",
            "--link-timeout",
            "20",
        ],
    );
    let accepted = ask(
        &server,
        &format!("{{\"url\": \"{link}\", \"note\": \"from a tip\"}}"),
    );
    assert_eq!(accepted.status, 202, "{}", accepted.text());
    let answer = accepted.json();
    assert_eq!(answer["url"], link.as_str());
    assert_eq!(answer["resolved_by"], "page");
    assert_eq!(
        answer["page_sha256"],
        sha256_hex(post_page.as_bytes()).as_str()
    );
    let items = answer["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    for (n, (item, bytes)) in items.iter().zip([&one, &two]).enumerate() {
        let job = wait_done(&server, item["id"].as_str().unwrap());
        assert_eq!(job["state"], "done", "{job}");
        let result = &job["result"];
        assert_eq!(result["media"]["sha256"], sha256_hex(bytes).as_str());
        assert_eq!(result["source"]["url"], link.as_str());
        assert_eq!(result["source"]["item"], n + 1);
        assert_eq!(result["source"]["items"], 2);
        assert_eq!(result["source"]["media_url"], item["media_url"]);
        assert_eq!(result["source"]["retrieved_at"], answer["retrieved_at"]);
        let record = get(
            &server,
            &format!("/v1/scans/{}/record", item["id"].as_str().unwrap()),
        );
        assert_eq!(record.status, 200);
        let envelope: Value = serde_json::from_slice(&record.body).unwrap();
        assert_eq!(envelope["record"]["result"]["source"]["url"], link.as_str());
        assert_eq!(envelope["record"]["context"]["note"], "from a tip");
    }
    let none = ask(&server, &format!("{{\"url\": \"{base}/text\"}}"));
    assert_eq!(none.status, 422, "{}", none.text());
    assert!(
        none.text().contains("declares no video or audio"),
        "{}",
        none.text()
    );
    let missing = ask(&server, &format!("{{\"url\": \"{base}/gone\"}}"));
    assert_eq!(missing.status, 422, "{}", missing.text());
    assert!(missing.text().contains("404"), "{}", missing.text());
}
