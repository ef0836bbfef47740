//! Helpers shared by the test binaries that talk to a running `aqiqat serve`.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use std::time::{Duration, Instant};

/// The real binary with these arguments.
pub fn aqiqat(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_aqiqat"))
        .args(args)
        .output()
        .expect("the aqiqat binary runs")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A command's standard output as one JSON value.
pub fn json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", text(&out.stdout), text(&out.stderr)))
}

/// Pages and media served on loopback for the link tests: `/go` redirects to
/// `/message.flac`; `/slow` answers after 5 s; other paths are looked up in `routes`.
pub fn link_server(routes: Vec<(&'static str, &'static str, Vec<u8>)>) -> String {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let routes = std::sync::Arc::new(routes);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let routes = routes.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                let _ = reader.read_line(&mut line);
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                        break;
                    }
                }
                let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let mut stream = stream;
                let head = |status: &str, content_type: &str, len: usize| {
                    format!(
                        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n\
                         Content-Length: {len}\r\nConnection: close\r\n\r\n"
                    )
                };
                if path == "/go" {
                    let _ = stream.write_all(
                        b"HTTP/1.1 302 Found\r\nLocation: /message.flac\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    );
                } else if path == "/slow" {
                    std::thread::sleep(std::time::Duration::from_secs(5));
                    let _ = stream.write_all(head("200 OK", "audio/flac", 0).as_bytes());
                } else if let Some((_, content_type, body)) =
                    routes.iter().find(|(p, _, _)| *p == path)
                {
                    let _ = stream.write_all(head("200 OK", content_type, body.len()).as_bytes());
                    let _ = stream.write_all(body);
                } else {
                    let _ = stream.write_all(head("404 Not Found", "text/plain", 0).as_bytes());
                }
            });
        }
    });
    base
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Where a test's server keeps its log, jobs and keys: SQLite files in the data directory,
/// or a fresh schema on the PostgreSQL test server (`AQIQAT_TEST_DATABASE_URL`).
pub enum Backend {
    Sqlite,
    Postgres(aqiqat_store::testing::TestSchema),
}

impl Backend {
    pub fn postgres() -> Self {
        Backend::Postgres(aqiqat_store::testing::TestSchema::create())
    }

    /// Points a command of the real binary at this backend.
    pub fn apply<'c>(&self, cmd: &'c mut Command) -> &'c mut Command {
        match self {
            Backend::Sqlite => cmd.env_remove("AQIQAT_DATABASE_URL"),
            Backend::Postgres(schema) => cmd.env("AQIQAT_DATABASE_URL", &schema.url),
        }
    }
}

pub struct Server {
    child: Child,
    pub base: String,
    pub data: PathBuf,
}

impl Server {
    pub fn start(data: &Path, extra: &[&str]) -> Self {
        Self::start_on(&Backend::Sqlite, data, extra)
    }

    pub fn start_on(backend: &Backend, data: &Path, extra: &[&str]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_aqiqat"));
        let mut child = backend
            .apply(&mut command)
            .args(["serve", "--addr", "127.0.0.1:0"])
            .args(extra)
            .env("AQIQAT_DATA_DIR", data)
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("aqiqat serve starts");
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        let mut said = String::new();
        let base = loop {
            line.clear();
            if stderr.read_line(&mut line).unwrap() == 0 {
                panic!("the server ended before listening: {said}");
            }
            said.push_str(&line);
            if let Some(addr) = line.trim().strip_prefix("aqiqat listening on ") {
                break addr.to_owned();
            }
        };
        // Keep draining stderr so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut sink = String::new();
            let _ = stderr.read_to_string(&mut sink);
        });
        Self {
            child,
            base,
            data: data.to_owned(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Polls a scan job until its state is one of `states`; fails the test after `within`.
    pub fn wait_for(&self, id: &str, states: &[&str], within: Duration) -> serde_json::Value {
        let start = Instant::now();
        loop {
            let j = reply(agent().get(&self.url(&format!("/v1/scans/{id}"))).call()).json();
            if states.contains(&j["state"].as_str().unwrap_or_default()) {
                return j;
            }
            assert!(
                start.elapsed() < within,
                "job {id} never reached {states:?}: {j}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

/// The shared smoke set's folder.
pub fn smoke_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/voice");
    assert!(
        dir.join("smoke.tsv").exists(),
        "the shared smoke set must lie at {}",
        dir.display()
    );
    dir
}

/// The `n`-th clip of the smoke set.
pub fn smoke(n: usize) -> PathBuf {
    let dir = smoke_dir();
    let manifest = std::fs::read_to_string(dir.join("smoke.tsv")).unwrap();
    let rel = manifest
        .lines()
        .nth(1 + n)
        .unwrap()
        .split('\t')
        .next()
        .unwrap()
        .to_owned();
    dir.join(rel)
}

/// The first smoke clip with this label (`bonafide` or `spoof`).
pub fn smoke_first(label: &str) -> PathBuf {
    let dir = smoke_dir();
    let manifest = std::fs::read_to_string(dir.join("smoke.tsv")).unwrap();
    let row = manifest
        .lines()
        .skip(1)
        .find(|l| l.split('\t').nth(1) == Some(label))
        .unwrap();
    dir.join(row.split('\t').next().unwrap())
}

/// Writes 16 kHz mono 16-bit PCM.
pub fn write_wav_16k(path: &Path, samples: impl IntoIterator<Item = i16>) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 16_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for s in samples {
        w.write_sample(s).unwrap();
    }
    w.finalize().unwrap();
}

/// G.711 µ-law, the encoder's side of the server's decoder.
pub fn mulaw_encode(x: f32) -> u8 {
    let s = (x.clamp(-1.0, 1.0) * 32124.0) as i32;
    let sign = if s < 0 { 0x80 } else { 0 };
    let mut m = s.unsigned_abs() as i32 + 0x84;
    let mut exponent = 7;
    while exponent > 0 && m & (0x4000 >> (7 - exponent)) == 0 {
        exponent -= 1;
    }
    m >>= exponent + 3;
    !(sign | ((exponent as u8) << 4) | (m as u8 & 0x0f))
}

/// A file decoded by `aqiqat decode` itself (mono, resampled to `rate`), as float samples.
pub fn decode_with_aqiqat(file: &Path, rate: u32, scratch: &Path) -> Vec<f32> {
    let wav = scratch.join(format!("decoded-{rate}.wav"));
    let out = Command::new(env!("CARGO_BIN_EXE_aqiqat"))
        .args([
            "decode",
            file.to_str().unwrap(),
            "--rate",
            &rate.to_string(),
            "-o",
        ])
        .arg(&wav)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    hound::WavReader::open(&wav)
        .unwrap()
        .samples::<f32>()
        .map(Result::unwrap)
        .collect()
}

/// A 96×64 RGB picture written by the `png` crate; `seed` varies its pixels.
pub fn png_picture(seed: u8) -> Vec<u8> {
    let (w, h) = (96u32, 64u32);
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, w, h);
        encoder.set_color(png::ColorType::Rgb);
        let mut writer = encoder.write_header().unwrap();
        let pixels: Vec<u8> = (0..(w * h * 3) as usize)
            .map(|i| ((i * 11 + seed as usize * 17) % 253) as u8)
            .collect();
        writer.write_image_data(&pixels).unwrap();
    }
    out
}

/// A photo-like PNG big enough for the image detector: smooth light with seeded noise.
pub fn photo_png(w: u32, h: u32) -> Vec<u8> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut pixels = Vec::with_capacity((w * h * 3) as usize);
    for y in 0..h {
        for x in 0..w {
            for (c, base) in [60 + 120 * x / w, 50 + 110 * y / h, 140 - 50 * x / w]
                .into_iter()
                .enumerate()
            {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let noise = (state % 15) as i64 - 7 + c as i64 % 2;
                pixels.push((i64::from(base) + noise).clamp(0, 255) as u8);
            }
        }
    }
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, w, h);
        encoder.set_color(png::ColorType::Rgb);
        let mut writer = encoder.write_header().unwrap();
        writer.write_image_data(&pixels).unwrap();
    }
    out
}

/// A temporary working folder with its own data directory, where the real binary runs as a
/// user would run it.
pub struct CliEnv {
    pub dir: tempfile::TempDir,
}

impl CliEnv {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn run(&self, args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_aqiqat"))
            .args(args)
            .env("AQIQAT_DATA_DIR", self.data())
            .env_remove("AQIQAT_C2PA_TRUST_ANCHORS")
            .current_dir(self.dir.path())
            .output()
            .expect("the aqiqat binary runs")
    }

    /// Runs and expects exit code 0; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

/// An HTTP answer, read whole.
pub struct Reply {
    pub status: u16,
    pub headers: ureq::http::HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

pub fn reply(r: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Reply {
    let mut r = r.expect("the request reaches the server");
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let body = r
        .body_mut()
        .with_config()
        .limit(50 << 20)
        .read_to_vec()
        .unwrap();
    Reply {
        status,
        headers,
        body,
    }
}

/// A `nats-server` with JetStream on a free loopback port, its store in `dir`.
pub struct Nats {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Nats {
    pub fn start(dir: &Path) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Self::start_on(dir, port)
    }

    fn start_on(dir: &Path, port: u16) -> Self {
        let child = Command::new("nats-server")
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server (Debian: nats-server) is installed");
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "nats-server did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            child,
            port,
            dir: dir.to_owned(),
        }
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Killed outright and started again on the same port and store.
    pub fn restart(mut self) -> Self {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let (dir, port) = (self.dir.clone(), self.port);
        std::mem::forget(self);
        Self::start_on(&dir, port)
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Worker(Child);

impl Worker {
    pub fn start(backend: &Backend, data: &Path, nats: &Nats, extra: &[&str]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_aqiqat"));
        let mut child = backend
            .apply(&mut command)
            .args(["worker", "--queue", &nats.url(), "--workers", "1"])
            .args(extra)
            .env("AQIQAT_DATA_DIR", data)
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        loop {
            line.clear();
            assert!(
                stderr.read_line(&mut line).unwrap() > 0,
                "the worker ended before it was ready"
            );
            if line.starts_with("aqiqat worker ready") {
                break;
            }
        }
        std::thread::spawn(move || {
            let mut sink = String::new();
            let _ = stderr.read_to_string(&mut sink);
        });
        Self(child)
    }

    pub fn kill(mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
