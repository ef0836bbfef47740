//! `aqiqat telegram` against a stand-in for the Bot API on loopback: the real bot binary polls
//! it, downloads the files it serves, and its answers are read back from what it sent. The
//! stand-in answers `getUpdates`, `getFile`, file downloads, `sendMessage` and `sendDocument`,
//! and returns `429` on demand.

use crate::common;

use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TOKEN: &str = "123456:test-token-of-the-stand-in";

#[derive(Default)]
struct State {
    /// Updates not yet acknowledged (an offset past them drops them).
    updates: Vec<Value>,
    next_update: i64,
    /// file_id → bytes.
    files: HashMap<String, Vec<u8>>,
    /// Every method call answered normally, with its parameters (files: the multipart
    /// body's parts). Calls answered with a fault are not in it.
    calls: Vec<(String, Value)>,
    /// Answers to give instead of the normal one, per method, in order.
    faults: HashMap<String, VecDeque<(u16, Value)>>,
}

#[derive(Clone)]
struct StandIn {
    base: String,
    state: Arc<Mutex<State>>,
}

/// The parts of a multipart body: name → (file name, bytes).
fn multipart(content_type: &str, body: &[u8]) -> Value {
    let boundary = content_type.split("boundary=").nth(1).unwrap_or_default();
    let delimiter = format!("--{boundary}");
    let text = body;
    let mut out = serde_json::Map::new();
    let mut rest = text;
    while let Some(start) = find(rest, delimiter.as_bytes()) {
        rest = &rest[start + delimiter.len()..];
        if rest.starts_with(b"--") {
            break;
        }
        let Some(head_end) = find(rest, b"\r\n\r\n") else {
            break;
        };
        let head = String::from_utf8_lossy(&rest[..head_end]).into_owned();
        let content = &rest[head_end + 4..];
        let end = find(content, format!("\r\n{delimiter}").as_bytes()).unwrap_or(content.len());
        let name = head
            .split("name=\"")
            .nth(1)
            .and_then(|n| n.split('"').next())
            .unwrap_or_default()
            .to_owned();
        let file_name = head
            .split("filename=\"")
            .nth(1)
            .and_then(|n| n.split('"').next());
        let value = match file_name {
            Some(f) => json!({"file_name": f, "hex": hex::encode(&content[..end])}),
            None => json!(String::from_utf8_lossy(&content[..end])),
        };
        out.insert(name, value);
        rest = &content[end..];
    }
    Value::Object(out)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

impl StandIn {
    fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State {
            next_update: 1000,
            ..State::default()
        }));
        let shared = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let state = shared.clone();
                std::thread::spawn(move || serve(stream, &state));
            }
        });
        Self { base, state }
    }

    /// Several updates made visible at once, so that one `getUpdates` returns them together.
    fn push_batch(&self, messages: Vec<Value>) -> Vec<i64> {
        let ids: Vec<(Value, i64)> = messages.into_iter().map(|m| self.stage(m)).collect();
        let mut s = self.state.lock().unwrap();
        let mut out = Vec::new();
        for (update, id) in ids {
            s.updates.push(update);
            out.push(id);
        }
        out
    }

    /// An update with its id taken, not yet visible.
    fn stage(&self, message: Value) -> (Value, i64) {
        let mut s = self.state.lock().unwrap();
        let id = s.next_update;
        s.next_update += 1;
        let mut message = message;
        message["message_id"] = json!(id * 10);
        message["date"] = json!(1_764_460_800);
        if message["chat"].is_null() {
            message["chat"] = json!({"id": 42, "type": "private"});
        }
        if message["from"].is_null() {
            message["from"] =
                json!({"id": 7001, "is_bot": false, "first_name": "A", "language_code": "en"});
        }
        (json!({"update_id": id, "message": message}), id * 10)
    }

    fn push(&self, message: Value) -> i64 {
        self.push_batch(vec![message])[0]
    }

    fn file(&self, id: &str, bytes: Vec<u8>) {
        self.state.lock().unwrap().files.insert(id.into(), bytes);
    }

    fn fault(&self, method: &str, status: u16, body: Value) {
        self.state
            .lock()
            .unwrap()
            .faults
            .entry(method.into())
            .or_default()
            .push_back((status, body));
    }

    fn calls(&self, method: &str) -> Vec<Value> {
        self.state
            .lock()
            .unwrap()
            .calls
            .iter()
            .filter(|(m, _)| m == method)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// The messages sent in reply to `message_id`.
    fn replies(&self, message_id: i64) -> Vec<String> {
        self.calls("sendMessage")
            .iter()
            .filter(|v| v["reply_parameters"]["message_id"] == message_id)
            .map(|v| v["text"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// Waits for `n` calls of `method`; returns them.
    fn wait_calls(&self, method: &str, n: usize) -> Vec<Value> {
        let start = Instant::now();
        loop {
            let got = self.calls(method);
            if got.len() >= n {
                return got;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "{n} {method} calls expected, {} came: {got:?}",
                got.len()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn respond(stream: &mut std::net::TcpStream, status: u16, content_type: &str, body: &[u8]) {
    let _ = write!(
        stream,
        "HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(body);
}

fn serve(stream: std::net::TcpStream, state: &Mutex<State>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let mut length = 0usize;
    let mut content_type = String::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
            break;
        }
        let lower = h.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
        if lower.starts_with("content-type:") {
            content_type = h["content-type:".len()..].trim().to_owned();
        }
    }
    let mut body = vec![0u8; length];
    let _ = reader.read_exact(&mut body);
    let mut stream = stream;
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
    if let Some(file_path) = path.strip_prefix(&format!("/file/bot{TOKEN}/")) {
        let bytes = state.lock().unwrap().files.get(file_path).cloned();
        match bytes {
            Some(b) => respond(&mut stream, 200, "application/octet-stream", &b),
            None => respond(&mut stream, 404, "text/plain", b"no such file"),
        }
        return;
    }
    let Some(method) = path.strip_prefix(&format!("/bot{TOKEN}/")) else {
        respond(
            &mut stream,
            401,
            "application/json",
            br#"{"ok":false,"error_code":401,"description":"Unauthorized"}"#,
        );
        return;
    };
    let params: Value = if content_type.starts_with("multipart/") {
        multipart(&content_type, &body)
    } else {
        serde_json::from_slice(&body).unwrap_or(Value::Null)
    };
    let fault = {
        let mut s = state.lock().unwrap();
        let fault = s.faults.get_mut(method).and_then(VecDeque::pop_front);
        if fault.is_none() {
            s.calls.push((method.to_owned(), params.clone()));
        }
        fault
    };
    if let Some((status, answer)) = fault {
        respond(
            &mut stream,
            status,
            "application/json",
            answer.to_string().as_bytes(),
        );
        return;
    }
    let result = match method {
        "getUpdates" => {
            let offset = params["offset"].as_i64().unwrap_or(0);
            let waited = Instant::now();
            loop {
                let pending: Vec<Value> = {
                    let mut s = state.lock().unwrap();
                    s.updates
                        .retain(|u| u["update_id"].as_i64().unwrap() >= offset);
                    s.updates.clone()
                };
                if !pending.is_empty() || waited.elapsed() > Duration::from_millis(500) {
                    break json!(pending);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        "getFile" => {
            let id = params["file_id"].as_str().unwrap_or_default();
            match state.lock().unwrap().files.get(id) {
                Some(b) => json!({"file_id": id, "file_size": b.len(), "file_path": id}),
                None => {
                    respond(
                        &mut stream,
                        400,
                        "application/json",
                        br#"{"ok":false,"error_code":400,"description":"Bad Request: invalid file_id"}"#,
                    );
                    return;
                }
            }
        }
        "sendMessage" | "sendDocument" | "sendPhoto" => json!({"message_id": 1}),
        _ => json!(true),
    };
    respond(
        &mut stream,
        200,
        "application/json",
        json!({"ok": true, "result": result}).to_string().as_bytes(),
    );
}

struct Bot(Child);

impl Bot {
    fn start(data: &std::path::Path, api: &str, extra: &[&str]) -> Self {
        let token = data.join("token");
        std::fs::write(&token, TOKEN).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_aqiqat"))
            .args(["telegram", "--token-file"])
            .arg(&token)
            .args(["--api-url", api, "--poll", "1", "--max-download", "5000000"])
            .args(extra)
            .env("AQIQAT_DATA_DIR", data)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("aqiqat telegram starts");
        Bot(child)
    }

    fn kill(mut self) -> String {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let mut said = String::new();
        if let Some(mut e) = self.0.stderr.take() {
            let _ = e.read_to_string(&mut said);
        }
        said
    }
}

impl Drop for Bot {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A smoke clip re-encoded by ffmpeg as Telegram carries it.
fn encoded(clip: &std::path::Path, dir: &std::path::Path, name: &str, args: &[&str]) -> Vec<u8> {
    let out = dir.join(name);
    let status = Command::new("ffmpeg")
        .args(["-loglevel", "error", "-y", "-i"])
        .arg(clip)
        .args(args)
        .arg(&out)
        .status()
        .expect("ffmpeg is installed (bash .ci/run installs it)");
    assert!(status.success());
    std::fs::read(out).unwrap()
}

#[test]
fn the_bot_answers_voice_messages_files_and_commands_and_loses_no_update() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let api = StandIn::start();
    let clip = common::smoke_first("spoof");
    api.file(
        "voice-1",
        encoded(
            &clip,
            dir.path(),
            "voice.ogg",
            &["-c:a", "libopus", "-b:a", "24k"],
        ),
    );
    api.file("audio-1", std::fs::read(&clip).unwrap());
    api.file(
        "note-1",
        encoded(
            &clip,
            dir.path(),
            "note.mp4",
            &[
                "-f",
                "lavfi",
                "-i",
                "color=c=black:s=64x64:d=10",
                "-shortest",
                "-c:a",
                "aac",
                "-c:v",
                "libx264",
            ],
        ),
    );
    api.file("pdf-1", b"%PDF-1.4 not audio".to_vec());
    let bot = Bot::start(&data, &api.base, &[]);

    // The first answer is refused once with 429: the bot waits and sends it again.
    api.fault(
        "sendMessage",
        429,
        json!({"ok": false, "error_code": 429, "description": "Too Many Requests: retry after 1",
            "parameters": {"retry_after": 1}}),
    );
    let voice =
        api.push(json!({"voice": {"file_id": "voice-1", "duration": 4, "mime_type": "audio/ogg"}}));
    let forwarded = api.push(
        json!({"forward_origin": {"type": "hidden_user", "sender_user_name": "Bank"},
        "audio": {"file_id": "audio-1", "file_name": "message.flac", "mime_type": "audio/flac"}}),
    );
    let note = api.push(json!({"video_note": {"file_id": "note-1", "length": 64, "duration": 4}}));
    let sticker = api.push(json!({"sticker": {"file_id": "s-1", "emoji": "👍"}}));
    let huge = api.push(json!({"voice": {"file_id": "voice-big", "file_size": 30_000_000}}));
    let pdf = api.push(json!({"document": {"file_id": "pdf-1", "file_name": "x.pdf", "mime_type": "application/pdf"}}));
    let help = api.push(json!({"text": "/start"}));
    api.wait_calls("sendMessage", 7);

    // Each checked file's answer comes with its timeline as a picture.
    let photos = api.calls("sendPhoto");
    assert_eq!(photos.len(), 3, "{} timelines", photos.len());
    for p in &photos {
        let png = hex::decode(p["photo"]["hex"].as_str().unwrap()).unwrap();
        assert!(png.starts_with(b"\x89PNG"), "a PNG timeline");
    }
    for id in [voice, forwarded, note] {
        let replies = api.replies(id);
        assert_eq!(replies.len(), 1, "{id}: {replies:?}");
        let text = &replies[0];
        assert!(
            ["SYNTHETIC", "NO SIGN", "INCONCLUSIVE"]
                .iter()
                .any(|v| text.contains(v)),
            "{text}"
        );
        assert!(
            text.contains("Record ") && text.contains("/report "),
            "{text}"
        );
    }
    assert!(
        api.replies(sticker)[0].contains("voice message"),
        "{:?}",
        api.replies(sticker)
    );
    assert!(
        api.replies(huge)[0].contains("larger than 4 MB"),
        "{:?}",
        api.replies(huge)
    );
    assert!(
        api.calls("getFile")
            .iter()
            .all(|c| c["file_id"] != "voice-big"),
        "no download tried"
    );
    assert!(
        api.replies(pdf)[0].contains("voice message"),
        "{:?}",
        api.replies(pdf)
    );
    assert!(
        api.replies(help)[0].contains("not a guarantee"),
        "{:?}",
        api.replies(help)
    );

    // /lang kk, then the same voice again: answered in Kazakh.
    let lang = api.push(json!({"text": "/lang kk"}));
    let again = api.push(json!({"voice": {"file_id": "voice-1", "duration": 4}}));
    api.wait_calls("sendMessage", 9);
    assert!(
        api.replies(lang)[0].contains("Қазақша"),
        "{:?}",
        api.replies(lang)
    );
    let kk = &api.replies(again)[0];
    assert!(kk.contains("Жазба "), "{kk}");

    // /report and /record: the PDF and the signed record, which verifies offline.
    let record_id = api.replies(voice)[0]
        .split("/record ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    api.push(json!({"text": format!("/report {record_id}")}));
    api.push(json!({"text": format!("/record {record_id}")}));
    let docs = api.wait_calls("sendDocument", 2);
    let pdf_bytes = hex::decode(docs[0]["document"]["hex"].as_str().unwrap()).unwrap();
    assert!(pdf_bytes.starts_with(b"%PDF"), "a PDF report");
    assert!(
        docs[0]["document"]["file_name"]
            .as_str()
            .unwrap()
            .ends_with("-kk.pdf")
    );
    let envelope = hex::decode(docs[1]["document"]["hex"].as_str().unwrap()).unwrap();
    let record_file = dir.path().join("record.json");
    std::fs::write(&record_file, &envelope).unwrap();
    let verified = common::aqiqat(&["verify", record_file.to_str().unwrap()]);
    assert!(
        verified.status.success(),
        "{}",
        common::text(&verified.stdout)
    );
    // Another user cannot fetch it.
    let stranger = api.push(json!({"text": format!("/record {record_id}"),
        "from": {"id": 9999, "is_bot": false, "first_name": "B", "language_code": "ru"}}));
    api.wait_calls("sendMessage", 10);
    let answered = api.replies(stranger);
    assert!(
        answered.len() == 1 && answered[0].contains("нет записи"),
        "{answered:?} among {:?}",
        api.calls("sendMessage")
    );

    // A restart in the middle of a batch: killed while it downloads the second update's file.
    let batch = [
        api.push(json!({"text": "/help"})),
        api.push(json!({"voice": {"file_id": "voice-1", "duration": 4}})),
        api.push(json!({"sticker": {"file_id": "s-2"}})),
    ];
    let downloads_before = api.calls("getFile").len();
    let start = Instant::now();
    while api.calls("getFile").len() == downloads_before {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the batch never started"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    let said = bot.kill();
    assert!(!said.contains(TOKEN), "the token never reaches the log");
    let _bot = Bot::start(&data, &api.base, &["--rate", "2", "--queue", "1"]);
    let start = Instant::now();
    while batch.iter().any(|&id| api.replies(id).is_empty()) {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "an update was lost"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(1500));
    for id in batch
        .iter()
        .chain([voice, forwarded, note, sticker, huge, pdf, help].iter())
    {
        assert_eq!(
            api.replies(*id).len(),
            1,
            "update {id} answered more than once or never"
        );
    }

    // This bot takes one file per batch and two per user per minute: three voices at once from
    // a new user → one checked, two "busy"; then a third file within the minute → "wait".
    let newcomer = json!({"id": 8001, "is_bot": false, "first_name": "C", "language_code": "en"});
    let voice_from = |from: &Value| json!({"voice": {"file_id": "voice-1"}, "from": from});
    let three = api.push_batch(vec![
        voice_from(&newcomer),
        voice_from(&newcomer),
        voice_from(&newcomer),
    ]);
    let answered = |id: i64| wait_reply(&api, id);
    assert!(answered(three[0]).contains("Record "));
    for id in &three[1..] {
        assert!(answered(*id).contains("send it again in a minute"));
    }
    let second = api.push(voice_from(&newcomer));
    assert!(answered(second).contains("Record "));
    let third = api.push(voice_from(&newcomer));
    assert!(answered(third).contains("wait a minute"));

    // /keep: the next recording is kept beside its record; /forget deletes it and the links.
    let keeper = json!({"id": 8002, "is_bot": false, "first_name": "D", "language_code": "en"});
    let keep = api.push(json!({"text": "/keep", "from": keeper}));
    assert!(answered(keep).contains("keep each recording"));
    let kept_voice = api.push(
        json!({"audio": {"file_id": "audio-1", "file_name": "m.flac"},
        "from": keeper}),
    );
    let reply = answered(kept_voice);
    let kept_id = reply
        .split("/record ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("{reply}"))
        .to_owned();
    let media_dir = data.join("telegram-media");
    let kept: Vec<_> = std::fs::read_dir(&media_dir).unwrap().flatten().collect();
    assert_eq!(kept.len(), 1);
    assert_eq!(
        std::fs::read(kept[0].path()).unwrap(),
        std::fs::read(&clip).unwrap()
    );
    let forget = api.push(json!({"text": "/forget", "from": keeper}));
    assert!(answered(forget).contains("1 kept recordings are deleted"));
    assert_eq!(std::fs::read_dir(&media_dir).unwrap().count(), 0);
    let after = api.push(json!({"text": format!("/record {kept_id}"), "from": keeper}));
    assert!(answered(after).contains("no record"));
}

/// The one reply to `message_id`, once it comes.
fn wait_reply(api: &StandIn, message_id: i64) -> String {
    let start = Instant::now();
    loop {
        if let Some(text) = api.replies(message_id).pop() {
            return text;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no reply to {message_id}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
