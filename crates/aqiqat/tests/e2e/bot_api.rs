//! A stand-in for the Telegram Bot API on loopback, and the real `aqiqat telegram` binary
//! pointed at it: what the bot's end-to-end test and its benchmark drive. The stand-in answers
//! `getUpdates`, `getFile`, file downloads, `sendMessage`, `sendDocument`, `sendPhoto`,
//! `setWebhook` and `deleteWebhook` (each call kept with its parameters and arrival time), and
//! returns faults on demand; `post_update` plays Telegram's side of a webhook.

use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const TOKEN: &str = "123456:test-token-of-the-stand-in";

#[derive(Default)]
pub struct State {
    /// Updates not yet acknowledged (an offset past them drops them).
    updates: Vec<Value>,
    next_update: i64,
    /// file_id → bytes.
    files: HashMap<String, Vec<u8>>,
    /// Every method call answered normally, with its parameters (files: the multipart
    /// body's parts). Calls answered with a fault are not in it.
    calls: Vec<(String, Value, Instant)>,
    /// Answers to give instead of the normal one, per method, in order.
    faults: HashMap<String, VecDeque<(u16, Value)>>,
}

#[derive(Clone)]
pub struct StandIn {
    pub base: String,
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
    pub fn start() -> Self {
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
    pub fn push_batch(&self, messages: Vec<Value>) -> Vec<i64> {
        let ids: Vec<(Value, i64)> = messages.into_iter().map(|m| self.stage(m)).collect();
        let mut s = self.state.lock().unwrap();
        let mut out = Vec::new();
        for (update, id) in ids {
            s.updates.push(update);
            out.push(id);
        }
        out
    }

    /// An update with its id taken, not made visible to `getUpdates`: what a webhook
    /// delivery carries. Returns it with its message's id.
    pub fn stage(&self, message: Value) -> (Value, i64) {
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

    pub fn push(&self, message: Value) -> i64 {
        self.push_batch(vec![message])[0]
    }

    pub fn file(&self, id: &str, bytes: Vec<u8>) {
        self.state.lock().unwrap().files.insert(id.into(), bytes);
    }

    pub fn fault(&self, method: &str, status: u16, body: Value) {
        self.state
            .lock()
            .unwrap()
            .faults
            .entry(method.into())
            .or_default()
            .push_back((status, body));
    }

    pub fn calls(&self, method: &str) -> Vec<Value> {
        self.calls_at(method).into_iter().map(|(v, _)| v).collect()
    }

    /// When each call of `method` arrived, with its parameters.
    pub fn calls_at(&self, method: &str) -> Vec<(Value, Instant)> {
        self.state
            .lock()
            .unwrap()
            .calls
            .iter()
            .filter(|(m, _, _)| m == method)
            .map(|(_, v, at)| (v.clone(), *at))
            .collect()
    }

    /// The messages sent in reply to `message_id`.
    pub fn replies(&self, message_id: i64) -> Vec<String> {
        self.calls("sendMessage")
            .iter()
            .filter(|v| v["reply_parameters"]["message_id"] == message_id)
            .map(|v| v["text"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// Waits for `n` calls of `method`; returns them.
    pub fn wait_calls(&self, method: &str, n: usize) -> Vec<Value> {
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
            s.calls
                .push((method.to_owned(), params.clone(), Instant::now()));
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

/// Delivers `update` to a webhook bot as Telegram does: POSTed with the secret the bot gave
/// `setWebhook` (`None`: without one). The HTTP status, or 0 when no answer came.
pub fn post_update(url: &str, secret: Option<&str>, update: &Value) -> u16 {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into();
    let mut request = agent.post(url).header("Content-Type", "application/json");
    if let Some(secret) = secret {
        request = request.header("X-Telegram-Bot-Api-Secret-Token", secret);
    }
    match request.send(update.to_string().as_bytes()) {
        Ok(r) => r.status().as_u16(),
        Err(_) => 0,
    }
}

/// The real bot binary, killed when dropped.
pub struct Bot(Child);

impl Bot {
    pub fn start(data: &std::path::Path, api: &str, extra: &[&str]) -> Self {
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

    pub fn kill(mut self) -> String {
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
pub fn encoded(
    clip: &std::path::Path,
    dir: &std::path::Path,
    name: &str,
    args: &[&str],
) -> Vec<u8> {
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

/// The one reply to `message_id`, once it comes.
pub fn wait_reply(api: &StandIn, message_id: i64) -> String {
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
