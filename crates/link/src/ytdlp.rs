//! yt-dlp, the maintained extractor for the sites where deepfakes spread (YouTube, TikTok,
//! Instagram, VK, Facebook, X, Telegram…), run as an external program the way intake relies on
//! system libraries. Every request it makes goes through [`crate::proxy::PolicyProxy`], so the
//! address policy holds for it too; it downloads into a private temporary folder, one format
//! with audio per item (no merging, so no ffmpeg), within the size and duration caps, which
//! it applies before a download starts when the site states them.

use crate::fetch::FetchLimits;
use crate::proxy::PolicyProxy;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The version the tests and the README name.
pub const TESTED_VERSION: &str = "2026.10.26";

/// The environment variable that names the program when it is not `yt-dlp` on `PATH`.
pub const PROGRAM_ENV: &str = "AQIQAT_YT_DLP";

/// A yt-dlp found on this machine.
#[derive(Debug, Clone)]
pub struct YtDlp {
    pub program: PathBuf,
    /// What `--version` printed.
    pub version: String,
}

/// One item yt-dlp downloaded.
#[derive(Debug, Clone)]
pub struct Downloaded {
    /// The media URL it came from (for segmented streams, the playlist's).
    pub media_url: String,
    pub title: Option<String>,
    pub bytes: Vec<u8>,
}

impl YtDlp {
    /// The program named by `AQIQAT_YT_DLP`, or `yt-dlp` on `PATH`; `None` when neither runs.
    pub fn find() -> Option<Self> {
        let program = match std::env::var_os(PROGRAM_ENV).filter(|p| !p.is_empty()) {
            Some(p) => PathBuf::from(p),
            None => std::env::split_paths(&std::env::var_os("PATH")?)
                .map(|dir| dir.join("yt-dlp"))
                .find(|p| p.is_file())?,
        };
        Self::at(&program)
    }

    /// The program at `program`, if it runs and says its version.
    pub fn at(program: &Path) -> Option<Self> {
        let out = Command::new(program)
            .arg("--version")
            .stdin(Stdio::null())
            .output()
            .ok()?;
        let version = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        (out.status.success() && !version.is_empty()).then(|| Self {
            program: program.to_owned(),
            version,
        })
    }

    /// Downloads the media of the post at `url`: at most `max_items` items, each within
    /// `limits.max_bytes` and `max_duration_s`, all by `deadline`.
    pub fn download(
        &self,
        url: &str,
        limits: &FetchLimits,
        max_items: usize,
        max_duration_s: f64,
        deadline: Instant,
    ) -> Result<Vec<Downloaded>, String> {
        let proxy = PolicyProxy::start(limits.policy(), deadline)
            .map_err(|e| format!("cannot start the policy proxy: {e}"))?;
        let dir = tempfile::tempdir().map_err(|e| format!("no temporary folder: {e}"))?;
        let socket_timeout = limits.timeout.as_secs().clamp(1, 30);
        let mut child = Command::new(&self.program)
            .args(["--ignore-config", "--no-cache-dir", "--no-progress"])
            .args(["--no-warnings", "--no-mtime", "--restrict-filenames"])
            // `--print` would silence the lines that say why an item was skipped.
            .arg("--no-quiet")
            // One format that has audio: the best audio alone, else the best with both.
            .args(["-f", "ba/b"])
            .args(["--proxy", &proxy.url()])
            .args(["--socket-timeout", &socket_timeout.to_string()])
            .args(["--max-filesize", &limits.max_bytes.to_string()])
            .args([
                "--match-filter",
                &format!("duration <=? {}", max_duration_s.floor()),
            ])
            .args(["-I", &format!("1:{max_items}")])
            .arg("-P")
            .arg(dir.path())
            .args(["-o", "%(autonumber)s.%(ext)s"])
            .args(["--print", "after_move:%(.{url,title,filepath,duration})j"])
            .arg("--")
            .arg(url)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("{}: {e}", self.program.display()))?;
        let drain = |r: Option<Box<dyn Read + Send>>| {
            std::thread::spawn(move || {
                let mut text = String::new();
                if let Some(mut r) = r {
                    let _ = r.read_to_string(&mut text);
                }
                text
            })
        };
        let stdout = drain(child.stdout.take().map(|s| Box::new(s) as _));
        let stderr = drain(child.stderr.take().map(|s| Box::new(s) as _));
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() >= deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break None;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(25)),
                Err(e) => return Err(format!("yt-dlp: {e}")),
            }
        };
        let (stdout, stderr) = (
            stdout.join().unwrap_or_default(),
            stderr.join().unwrap_or_default(),
        );
        if status.is_none() {
            return Err(format!("yt-dlp did not finish within {:?}", limits.timeout));
        }
        let mut items = Vec::new();
        let mut said = Vec::new();
        for line in stdout.lines() {
            match serde_json::from_str::<serde_json::Value>(line) {
                Ok(info) if info.is_object() => {
                    let path = info["filepath"].as_str().map(PathBuf::from);
                    // Only what it wrote inside the folder given, never a path it was told.
                    let Some(path) = path.filter(|p| p.starts_with(dir.path())) else {
                        continue;
                    };
                    let bytes = std::fs::read(&path).map_err(|e| format!("yt-dlp output: {e}"))?;
                    if bytes.len() as u64 > limits.max_bytes {
                        return Err(format!("an item is larger than {} bytes", limits.max_bytes));
                    }
                    items.push(Downloaded {
                        media_url: info["url"].as_str().unwrap_or(url).to_owned(),
                        title: info["title"].as_str().map(str::to_owned),
                        bytes,
                    });
                }
                _ => said.push(line.trim().to_owned()),
            }
        }
        if items.is_empty() {
            let mut why: Vec<String> = proxy
                .refusals()
                .into_iter()
                .map(|r| format!("refused: {r}"))
                .collect();
            why.extend(
                said.iter()
                    .map(String::as_str)
                    .chain(stderr.lines().map(str::trim))
                    .filter(|l| {
                        l.starts_with("ERROR")
                            || l.contains("does not pass filter")
                            || l.contains("File is larger than max-filesize")
                    })
                    .map(|l| l.trim_start_matches("ERROR: ").to_owned()),
            );
            if why.is_empty() {
                why.push("it found no media".into());
            }
            return Err(why.join("; "));
        }
        Ok(items)
    }
}
