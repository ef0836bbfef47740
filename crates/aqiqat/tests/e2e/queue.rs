//! Scanning across machines: `serve --queue nats://…` and `aqiqat worker` processes, with a real
//! `nats-server` (JetStream, file storage; Debian's package) and the PostgreSQL test server on
//! loopback. Workers are killed, NATS is restarted, the stream fills up, a job fails on every
//! delivery, and two servers answer for the same jobs.

use crate::common;

use common::{Backend, Nats, Server, Worker, agent, smoke};
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn call(
    r: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
) -> (u16, ureq::http::HeaderMap, Value) {
    let r = common::reply(r);
    let body = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    (r.status, r.headers, body)
}

fn upload(server: &Server, bytes: &[u8], query: &str) -> (u16, ureq::http::HeaderMap, Value) {
    call(
        agent()
            .post(&server.url(&format!("/v1/scans{query}")))
            .header("Content-Type", "application/octet-stream")
            .send(bytes),
    )
}

fn job(server: &Server, id: &str) -> Value {
    call(agent().get(&server.url(&format!("/v1/scans/{id}"))).call()).2
}

fn serve_on_nats(backend: &Backend, data: &Path, nats: &Nats, extra: &[&str]) -> Server {
    let mut args = vec!["--queue", nats.url().leak() as &str, "--ack-wait", "2"];
    args.extend_from_slice(extra);
    Server::start_on(backend, data, &args)
}

/// A long recording (ten minutes of a smoke clip, repeated), so a scan lasts long enough to
/// kill its worker in the middle.
fn long_recording(dir: &Path) -> Vec<u8> {
    let clip = common::decode_with_aqiqat(&smoke(0), 16_000, dir);
    let wav = dir.join("long.wav");
    common::write_wav_16k(
        &wav,
        clip.iter()
            .cycle()
            .take(16_000 * 600)
            .map(|x| (x * 32_767.0) as i16),
    );
    std::fs::read(wav).unwrap()
}

#[test]
fn jobs_survive_a_restarted_nats_and_a_worker_killed_mid_job() {
    let backend = Backend::postgres();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut nats = Nats::start(&dir.path().join("nats"));
    let server = serve_on_nats(&backend, &data, &nats, &[]);

    // Accepted while no worker runs, then NATS dies and comes back: nothing is lost.
    let short: Vec<String> = (0..3)
        .map(|n| {
            let (status, _, body) = upload(&server, &std::fs::read(smoke(n)).unwrap(), "");
            assert_eq!(status, 202, "{body}");
            body["id"].as_str().unwrap().to_owned()
        })
        .collect();
    nats = nats.restart();
    let long = long_recording(dir.path());
    let (status, _, body) = upload(&server, &long, "?name=long.wav");
    assert_eq!(status, 202, "{body}");
    let long_id = body["id"].as_str().unwrap().to_owned();

    // One worker takes jobs; killed while it scans the long one.
    let first = Worker::start(&backend, &data, &nats, &["--ack-wait", "2"]);
    for id in &short {
        server.wait_for(id, &["done"], Duration::from_secs(60));
    }
    server.wait_for(&long_id, &["running"], Duration::from_secs(60));
    first.kill();
    assert_eq!(job(&server, &long_id)["state"], "running");

    // Another worker gets it once the first has stopped reporting progress.
    let _second = Worker::start(&backend, &data, &nats, &["--ack-wait", "2"]);
    let done = server.wait_for(&long_id, &["done", "failed"], Duration::from_secs(120));
    assert_eq!(done["state"], "done", "{done}");
    assert!((done["result"]["media"]["duration_s"].as_f64().unwrap() - 600.0).abs() < 1.0);

    // One record per job in the shared log, whoever ran it and however often.
    let mut indices: Vec<u64> = short
        .iter()
        .chain([&long_id])
        .map(|id| job(&server, id)["record"]["index"].as_u64().unwrap())
        .collect();
    indices.sort();
    assert_eq!(indices, vec![0, 1, 2, 3]);
    let head = call(agent().get(&server.url("/v1/log/head")).call()).2;
    assert_eq!(head["tree_size"], 4, "{head}");
    let _ = nats;
}

#[test]
fn a_job_failing_on_every_delivery_ends_failed_and_the_others_pass() {
    let backend = Backend::postgres();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let nats = Nats::start(&dir.path().join("nats"));
    let server = serve_on_nats(&backend, &data, &nats, &["--max-deliver", "2"]);

    // A voiceprint enrolled through the server, sealed under the server's voiceprint key.
    let manifest = std::fs::read_to_string(common::smoke_dir().join("smoke.tsv")).unwrap();
    let lj: Vec<Vec<u8>> = manifest
        .lines()
        .filter(|l| l.contains("\topenseq2seq-centaur\tLJ-voice\t"))
        .take(4)
        .map(|l| std::fs::read(common::smoke_dir().join(l.split('\t').next().unwrap())).unwrap())
        .collect();
    let boundary = "q0boundary";
    let mut form = Vec::new();
    form.extend_from_slice(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nLJ\r\n")
            .as_bytes(),
    );
    for clip in &lj {
        form.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"m.flac\"\r\nContent-Type: audio/flac\r\n\r\n").as_bytes());
        form.extend_from_slice(clip);
        form.extend_from_slice(b"\r\n");
    }
    form.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    let (status, _, body) = call(
        agent()
            .post(&server.url("/v1/voiceprints"))
            .header(
                "Content-Type",
                &format!("multipart/form-data; boundary={boundary}"),
            )
            .send(&form[..]),
    );
    assert_eq!(status, 201, "{body}");

    // A worker set up without the voiceprint key: every delivery of a claimed job fails on
    // its side, never on the upload's.
    let worker_data = dir.path().join("worker");
    std::fs::create_dir_all(worker_data.join("keys")).unwrap();
    for key in ["signing-key.pem", "public-key.pem"] {
        std::fs::copy(
            data.join("keys").join(key),
            worker_data.join("keys").join(key),
        )
        .unwrap();
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            worker_data.join("keys"),
            std::fs::Permissions::from_mode(0o700),
        )
        .unwrap();
        std::fs::set_permissions(
            worker_data.join("keys/signing-key.pem"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
    }
    let claimed = upload(&server, &std::fs::read(smoke(30)).unwrap(), "?claimed=LJ");
    assert_eq!(claimed.0, 202, "{}", claimed.2);
    let plain = upload(&server, &std::fs::read(smoke(1)).unwrap(), "");
    let _worker = Worker::start(
        &backend,
        &worker_data,
        &nats,
        &["--max-deliver", "2", "--ack-wait", "2"],
    );
    let failed = server.wait_for(
        claimed.2["id"].as_str().unwrap(),
        &["failed", "done"],
        Duration::from_secs(60),
    );
    assert_eq!(failed["state"], "failed", "{failed}");
    assert_eq!(failed["error"]["kind"], "internal");
    assert!(
        failed["error"]["message"]
            .as_str()
            .unwrap()
            .contains("cannot be opened"),
        "{failed}"
    );
    let done = server.wait_for(
        plain.2["id"].as_str().unwrap(),
        &["done", "failed"],
        Duration::from_secs(60),
    );
    assert_eq!(done["state"], "done", "{done}");
}

#[test]
fn a_full_stream_answers_503_and_two_servers_share_the_jobs() {
    let backend = Backend::postgres();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let nats = Nats::start(&dir.path().join("nats"));
    let first = serve_on_nats(&backend, &data, &nats, &["--queue-size", "2"]);
    let clip = std::fs::read(smoke(2)).unwrap();
    let accepted: Vec<String> = (0..2)
        .map(|_| {
            let (status, _, body) = upload(&first, &clip, "");
            assert_eq!(status, 202, "{body}");
            body["id"].as_str().unwrap().to_owned()
        })
        .collect();
    let (status, headers, body) = upload(&first, &clip, "");
    assert_eq!(status, 503, "{body}");
    assert!(headers.contains_key("retry-after"));
    let jobs_stored = |s: &Server| {
        let mut r = agent().get(&s.url("/metrics")).call().unwrap();
        let text = r.body_mut().read_to_string().unwrap();
        text.lines()
            .filter(|l| l.starts_with("aqiqat_jobs{"))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
            .sum::<u64>()
    };
    assert_eq!(
        jobs_stored(&first),
        2,
        "the refused upload left nothing behind"
    );

    // A second server on the same database and queue, with the same keys, answers for the
    // first one's jobs.
    let other = dir.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    let copied = Command::new("cp")
        .arg("-a")
        .arg(data.join("keys"))
        .arg(&other)
        .status()
        .unwrap();
    assert!(copied.success());
    let second = serve_on_nats(&backend, &other, &nats, &["--queue-size", "2"]);
    let _worker = Worker::start(&backend, &data, &nats, &[]);
    for id in &accepted {
        let done = second.wait_for(id, &["done", "failed"], Duration::from_secs(60));
        assert_eq!(done["state"], "done", "{done}");
        let (status, _, record) = call(
            agent()
                .get(&second.url(&format!("/v1/scans/{id}/record")))
                .call(),
        );
        assert_eq!(status, 200, "{record}");
    }
    // Room again: the queue drained.
    assert_eq!(upload(&second, &clip, "").0, 202);
    // The operator sees the workers' side of the queue.
    let start = Instant::now();
    loop {
        let mut r = agent().get(&first.url("/metrics")).call().unwrap();
        let text = r.body_mut().read_to_string().unwrap();
        let waiting = text
            .lines()
            .find_map(|l| l.strip_prefix("aqiqat_workers_waiting "))
            .map(|v| v.parse::<u64>().unwrap());
        if waiting.is_some_and(|w| w >= 1) {
            assert!(text.contains("aqiqat_queue_redelivered 0"), "{text}");
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "{text}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A job that stops its worker on every delivery (here: the worker is killed mid-scan each
/// time) is given up by NATS after `--max-deliver`, and the server marks it failed.
#[test]
fn a_job_that_kills_every_worker_is_given_up_and_failed() {
    let backend = Backend::postgres();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let nats = Nats::start(&dir.path().join("nats"));
    let settings = ["--max-deliver", "2", "--ack-wait", "1"];
    let server = serve_on_nats(&backend, &data, &nats, &settings[..2]);
    let (status, _, body) = upload(&server, &long_recording(dir.path()), "?name=poison.wav");
    assert_eq!(status, 202, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    let mut last_start = String::new();
    for delivery in 1..=2 {
        let worker = Worker::start(&backend, &data, &nats, &settings);
        let start = Instant::now();
        loop {
            let j = job(&server, &id);
            if j["state"] == "running" && j["updated_at"].as_str() != Some(&last_start) {
                last_start = j["updated_at"].as_str().unwrap().to_owned();
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "delivery {delivery}: {j}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        worker.kill();
    }
    // NATS gives up when it would deliver a third time, that is when a worker asks for work.
    let _third = Worker::start(&backend, &data, &nats, &settings);
    let failed = server.wait_for(&id, &["failed", "done"], Duration::from_secs(30));
    assert_eq!(failed["state"], "failed", "{failed}");
    assert!(
        failed["error"]["message"]
            .as_str()
            .unwrap()
            .contains("given up"),
        "{failed}"
    );
}

/// A job delivered twice (here: its id published again by hand, past the queue's duplicate
/// check) is scanned and logged once: the second delivery finds it done and leaves it.
#[test]
fn a_job_delivered_twice_has_one_record() {
    let backend = Backend::postgres();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let nats = Nats::start(&dir.path().join("nats"));
    let server = serve_on_nats(&backend, &data, &nats, &[]);
    let _worker = Worker::start(&backend, &data, &nats, &[]);
    let (status, _, body) = upload(&server, &std::fs::read(smoke(5)).unwrap(), "");
    assert_eq!(status, 202, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    let first = server.wait_for(&id, &["done"], Duration::from_secs(60));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = async_nats::connect(nats.url()).await.unwrap();
        let js = async_nats::jetstream::new(client);
        js.publish(aqiqat_server::queue::SUBJECT, id.clone().into())
            .await
            .unwrap()
            .await
            .unwrap();
    });
    // Delivered and acknowledged: the stream empties again.
    let start = Instant::now();
    loop {
        let health = call(agent().get(&server.url("/healthz")).call()).2;
        if health["queue_free"] == health["queue_capacity"] {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "{health}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let again = job(&server, &id);
    assert_eq!(again["record"], first["record"]);
    assert_eq!(
        again["updated_at"], first["updated_at"],
        "the done job was left alone"
    );
    let head = call(agent().get(&server.url("/v1/log/head")).call()).2;
    assert_eq!(head["tree_size"], 1, "{head}");
}
