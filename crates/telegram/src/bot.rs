//! The bot: updates in, answers out. One update at a time, in order: classify the message,
//! download and scan what can be scanned, sign and log the result, word the answer in the
//! user's language, then hand the answers to the store's outbox together with the update's
//! acknowledgement (see `crate::store`) and deliver them.

use crate::api::{ApiError, BotApi, with_retries};
use crate::store::BotStore;
use aqiqat_evidence::log::Append;
use aqiqat_evidence::record::ToolId;
use aqiqat_evidence::{Context, Log, RecordDraft, SignedRecord};
use aqiqat_scan::Scanner;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How the bot behaves.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The largest file downloaded: 20 MB is all the official Bot API serves to bots; a
    /// self-hosted Bot API server lifts it.
    pub max_download: u64,
    /// Long-polling wait per `getUpdates`.
    pub poll_s: u64,
    /// Files one user may have checked per minute (a burst of this many, refilled evenly).
    pub per_user_per_minute: u32,
    /// Files waiting in one batch of updates beyond which the rest are answered "busy".
    pub queue: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            max_download: 20 << 20,
            poll_s: 30,
            per_user_per_minute: 10,
            queue: 32,
        }
    }
}

/// The languages answers come in.
const LANGS: [&str; 3] = ["kk", "ru", "en"];

/// The words of one language: the web page's (verdicts and reasons, so the bot and the page
/// say the same thing) and the bot's own.
struct Words {
    page: Value,
    bot: Value,
}

impl Words {
    /// The words of `lang` (English for any other), parsed once per process.
    fn of(lang: &str) -> &'static Self {
        static PARSED: std::sync::OnceLock<[Words; 3]> = std::sync::OnceLock::new();
        let all = PARSED.get_or_init(|| {
            let parse = |page: &str, bot: &str| Words {
                page: serde_json::from_str(page).expect("the page's texts are JSON"),
                bot: serde_json::from_str(bot).expect("the bot's texts are JSON"),
            };
            [
                parse(
                    include_str!("../../server/web/i18n/kk.json"),
                    include_str!("../i18n/kk.json"),
                ),
                parse(
                    include_str!("../../server/web/i18n/ru.json"),
                    include_str!("../i18n/ru.json"),
                ),
                parse(
                    include_str!("../../server/web/i18n/en.json"),
                    include_str!("../i18n/en.json"),
                ),
            ]
        });
        match lang {
            "kk" => &all[0],
            "ru" => &all[1],
            _ => &all[2],
        }
    }

    fn page(&self, key: &str) -> String {
        self.page[key].as_str().unwrap_or_default().to_owned()
    }

    fn bot(&self, key: &str) -> String {
        self.bot[key].as_str().unwrap_or_default().to_owned()
    }
}

fn fill(template: &str, vars: &[(&str, String)]) -> String {
    let mut out = template.to_owned();
    for (k, v) in vars {
        out = out.replace(&format!("{{{k}}}"), v);
    }
    out
}

fn number(x: f64, decimals: usize, lang: &str) -> String {
    let s = format!("{x:.decimals$}");
    if lang == "en" { s } else { s.replace('.', ",") }
}

/// Who sent a message: its sender, or the chat itself where Telegram names no sender
/// (a channel's post). Rate limits, languages and records are keyed by this.
fn sender(msg: &Value) -> i64 {
    msg["from"]["id"]
        .as_i64()
        .or_else(|| msg["chat"]["id"].as_i64())
        .unwrap_or_default()
}

/// The verdict in words, as the web page puts it (`crates/server/web/app.js`).
pub fn verdict_text(result: &Value, lang: &str) -> String {
    let w = Words::of(lang);
    let verdict = result["verdict"].as_str().unwrap_or("inconclusive");
    let labelled = verdict == "synthetic"
        && ["content_credentials", "watermark", "metadata"]
            .contains(&result["verdict_basis"].as_str().unwrap_or_default());
    let mut lines = Vec::new();
    if labelled {
        lines.push(w.page("verdict_synthetic_label"));
        if let Some(r) = result["reason"].as_str() {
            lines.push(r.to_owned());
        }
        return lines.join("\n");
    }
    let key = match verdict {
        "synthetic" | "human" => format!("verdict_{verdict}"),
        _ => "verdict_inconclusive".to_owned(),
    };
    lines.push(w.page(&key));
    if let Some(p) = result["probability_synthetic"].as_f64() {
        lines.push(format!("{} {}", w.page("probability"), number(p, 2, lang)));
    }
    let voice = &result["voice"];
    let c = &voice["conditions"];
    let pct = |x: &Value| number(100.0 * x.as_f64().unwrap_or(0.0), 0, lang);
    let reason = match result["reason_code"].as_str() {
        None => String::new(),
        Some("no_sign_found") => match voice["reach"]["families_heard"].as_array() {
            Some(heard) => fill(
                &w.page("reason_no_sign_found"),
                &[
                    ("n", heard.len().to_string()),
                    (
                        "families",
                        voice["reach"]["families_not_heard"]
                            .as_array()
                            .map(|a| {
                                a.iter()
                                    .filter_map(Value::as_str)
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            })
                            .unwrap_or_default(),
                    ),
                ],
            ),
            None => w.page("reason_no_sign_found_plain"),
        },
        Some("too_noisy") => fill(
            &w.page("reason_too_noisy"),
            &[("snr", number(c["snr_db"].as_f64().unwrap_or(0.0), 0, lang))],
        ),
        Some("music") => fill(
            &w.page("reason_music"),
            &[("share", pct(&c["music_share"]))],
        ),
        Some("several_voices") => fill(
            &w.page("reason_several_voices"),
            &[("share", pct(&c["overlap_share"]))],
        ),
        Some("too_little_speech") => fill(
            &w.page("reason_too_little_speech"),
            &[(
                "s",
                number(voice["speech_s"].as_f64().unwrap_or(0.0), 1, lang),
            )],
        ),
        Some("no_speech") => w.page("reason_no_speech"),
        Some("between_thresholds") => w.page("reason_between_thresholds"),
        Some(_) => result["reason"].as_str().unwrap_or_default().to_owned(),
    };
    if !reason.is_empty() {
        lines.push(reason);
    }
    lines.join("\n")
}

/// One answer to deliver, as the outbox keeps it.
fn message(chat: i64, text: String, reply_to: Option<i64>) -> String {
    json!({"kind": "message", "chat": chat, "text": text, "reply_to": reply_to}).to_string()
}

/// The verdict timeline as a picture, worded in `lang`; `None` when there is no timeline
/// (no speech windows).
fn timeline_png(result: &Value, lang: &str) -> Option<Vec<u8>> {
    let segments = result["segments"].as_array().filter(|s| !s.is_empty())?;
    let windows: Vec<aqiqat_charts::Window> = segments
        .iter()
        .map(|w| aqiqat_charts::Window {
            start_s: w["start_s"].as_f64().unwrap_or(0.0),
            end_s: w["end_s"].as_f64().unwrap_or(0.0),
            probability: w["probability_synthetic"].as_f64().unwrap_or(0.0),
            counted: w["counted"].as_bool().unwrap_or(false),
        })
        .collect();
    let t = &result["voice"]["thresholds"];
    let thresholds = t["human_below"].as_f64().zip(t["synthetic_above"].as_f64());
    let w = Words::of(lang);
    let svg = aqiqat_charts::timeline_svg(
        &w.page("timeline"),
        &w.page("seconds"),
        &windows,
        thresholds,
        result["media"]["duration_s"].as_f64().unwrap_or(0.0),
    );
    match aqiqat_charts::png(&svg) {
        Ok(png) => Some(png),
        Err(e) => {
            tracing::error!("timeline: {e}");
            None
        }
    }
}

fn photo(chat: i64, png: &[u8]) -> String {
    json!({"kind": "photo", "chat": chat, "name": "timeline.png", "content_type": "image/png",
        "hex": hex::encode(png)})
    .to_string()
}

fn document(chat: i64, name: &str, content_type: &str, bytes: &[u8], caption: String) -> String {
    json!({"kind": "document", "chat": chat, "name": name, "content_type": content_type,
        "hex": hex::encode(bytes), "caption": caption})
    .to_string()
}

/// What a message asks for.
enum Asked {
    /// A file to check: its id, its declared size, a name for it.
    Media {
        file_id: String,
        size: Option<u64>,
        name: String,
    },
    Command {
        name: String,
        argument: String,
    },
    Other,
}

fn classify(msg: &Value) -> Asked {
    for (field, name) in [
        ("voice", "voice.ogg"),
        ("audio", "audio"),
        ("video_note", "video-note.mp4"),
        ("video", "video.mp4"),
    ] {
        let m = &msg[field];
        if let Some(id) = m["file_id"].as_str() {
            return Asked::Media {
                file_id: id.to_owned(),
                size: m["file_size"].as_u64(),
                name: m["file_name"].as_str().unwrap_or(name).to_owned(),
            };
        }
    }
    let d = &msg["document"];
    if let Some(id) = d["file_id"].as_str() {
        let mime = d["mime_type"].as_str().unwrap_or_default();
        let file_name = d["file_name"].as_str().unwrap_or("document");
        let media_name = [
            ".ogg", ".opus", ".oga", ".mp3", ".m4a", ".wav", ".flac", ".amr", ".mp4", ".mov",
            ".webm", ".aac",
        ]
        .iter()
        .any(|ext| file_name.to_ascii_lowercase().ends_with(ext));
        if mime.starts_with("audio/") || mime.starts_with("video/") || media_name {
            return Asked::Media {
                file_id: id.to_owned(),
                size: d["file_size"].as_u64(),
                name: file_name.to_owned(),
            };
        }
        return Asked::Other;
    }
    if let Some(text) = msg["text"].as_str().map(str::trim)
        && let Some(command) = text.strip_prefix('/')
    {
        let (name, argument) = command
            .split_once(char::is_whitespace)
            .unwrap_or((command, ""));
        // `/report@aqiqat_bot ID` in groups.
        let name = name
            .split('@')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        return Asked::Command {
            name,
            argument: argument.trim().to_owned(),
        };
    }
    Asked::Other
}

/// Whether a file may be checked now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Gate {
    Go {
        /// The user asked to keep their recordings (`/keep`).
        keep: bool,
    },
    /// Too many files wait in this batch.
    Busy,
    /// Over the user's rate.
    Limited,
}

/// A file downloaded and scanned, or why not.
enum Scanned {
    TooBig,
    Failed,
    NotAudio(String),
    Done {
        /// The scan result as JSON.
        result: Value,
        /// The file's bytes, when the user keeps their recordings.
        kept: Option<Vec<u8>>,
    },
}

/// Downloads a file (within `max` bytes, retrying transient failures) and scans it: the part
/// of answering a file that runs on every core at once.
fn fetch_and_scan(
    api: &BotApi,
    scanner: &Scanner,
    max: u64,
    file_id: &str,
    size: Option<u64>,
    name: &str,
    keep: bool,
) -> Scanned {
    if size.is_some_and(|n| n > max) {
        return Scanned::TooBig;
    }
    let bytes = match with_retries(5, || api.download(file_id, max), std::thread::sleep) {
        Ok(b) => b,
        Err(ApiError::TooLarge(_)) => return Scanned::TooBig,
        Err(ApiError::Refused { description, .. })
            if description.to_ascii_lowercase().contains("too big") =>
        {
            return Scanned::TooBig;
        }
        Err(e) => {
            tracing::warn!("download: {e}");
            return Scanned::Failed;
        }
    };
    let kept = keep.then(|| bytes.clone());
    match scanner.scan_bytes(name, bytes) {
        Ok(r) => Scanned::Done {
            result: serde_json::to_value(&r).expect("scan results serialise"),
            kept,
        },
        Err(e) if e.is_bad_input() => Scanned::NotAudio(e.to_string()),
        Err(e) => {
            tracing::error!("scan: {e}");
            Scanned::Failed
        }
    }
}

pub struct Bot {
    api: BotApi,
    scanner: Scanner,
    log: Log,
    store: BotStore,
    settings: Settings,
    /// Each user's token bucket: (tokens, when last refilled).
    buckets: std::collections::HashMap<String, (f64, std::time::Instant)>,
}

impl Bot {
    pub fn new(
        api: BotApi,
        scanner: Scanner,
        log: Log,
        store: BotStore,
        settings: Settings,
    ) -> Self {
        Self {
            api,
            scanner,
            log,
            store,
            settings,
            buckets: std::collections::HashMap::new(),
        }
    }

    /// The Bot API client the bot answers through.
    pub fn api(&self) -> &BotApi {
        &self.api
    }

    /// Takes one file from `user`'s allowance, if there is one.
    fn allow(&mut self, user: &str) -> bool {
        let rate = f64::from(self.settings.per_user_per_minute.max(1));
        let now = std::time::Instant::now();
        let (tokens, at) = self.buckets.entry(user.to_owned()).or_insert((rate, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * rate / 60.0).min(rate);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Polls for updates and answers them until `stop` is set.
    pub fn run(&mut self, stop: &AtomicBool) -> Result<(), String> {
        self.deliver();
        let mut backoff = Duration::from_secs(1);
        let mut webhook_removed = false;
        while !stop.load(Ordering::Relaxed) {
            let offset = self.store.next_update().map_err(|e| e.to_string())?;
            let updates = match self.api.get_updates(offset, self.settings.poll_s) {
                Ok(u) => {
                    backoff = Duration::from_secs(1);
                    u
                }
                Err(ApiError::RetryAfter { seconds, .. }) => {
                    std::thread::sleep(Duration::from_secs(seconds.min(60)));
                    continue;
                }
                // `getUpdates` is refused while a webhook is set (this bot ran with
                // `--webhook` before): polling now means the webhook goes. Updates waiting
                // for it stay and come by polling.
                Err(ApiError::Refused { code: 409, .. }) if !webhook_removed => {
                    webhook_removed = true;
                    tracing::warn!("a webhook was set; removing it to poll");
                    self.api
                        .call("deleteWebhook", &json!({"drop_pending_updates": false}))
                        .map_err(|e| e.to_string())?;
                    continue;
                }
                Err(e) if e.is_transient() => {
                    tracing::warn!("{e}; polling again in {backoff:?}");
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                    continue;
                }
                Err(e) => return Err(e.to_string()),
            };
            let fresh: Vec<(i64, Value)> = updates
                .into_iter()
                .filter_map(|u| u["update_id"].as_i64().map(|id| (id, u)))
                .filter(|(id, _)| *id >= offset)
                .collect();
            self.answer_batch(&fresh, stop, |_| {})?;
        }
        Ok(())
    }

    /// Answers a batch of updates: a chunk of them (one per core) is downloaded and scanned
    /// at once; their answers are recorded, queued and delivered in the updates' order. Files
    /// beyond the queue bound are answered "busy". `done` hears of each update once its
    /// answers are queued durably (a webhook acknowledges it then); updates left when `stop`
    /// is set are not handled.
    pub fn answer_batch(
        &mut self,
        batch: &[(i64, Value)],
        stop: &AtomicBool,
        mut done: impl FnMut(i64),
    ) -> Result<(), String> {
        let mut files_in_batch = 0;
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        for chunk in batch.chunks(cores) {
            let mut planned = Vec::with_capacity(chunk.len());
            let mut users = Vec::with_capacity(chunk.len());
            for (_, update) in chunk {
                let msg = &update["message"];
                let user = self.store.user(sender(msg));
                let gate = match classify(msg) {
                    Asked::Media { .. } => {
                        files_in_batch += 1;
                        if files_in_batch > self.settings.queue {
                            Gate::Busy
                        } else if !self.allow(&user) {
                            Gate::Limited
                        } else {
                            Gate::Go {
                                keep: self.store.keeps(&user).unwrap_or(false),
                            }
                        }
                    }
                    _ => Gate::Go { keep: false },
                };
                planned.push(gate);
                users.push(user);
            }
            let (api, scanner, max) = (&self.api, &self.scanner, self.settings.max_download);
            let scanned: Vec<Option<Scanned>> = std::thread::scope(|scope| {
                let tasks: Vec<_> = chunk
                    .iter()
                    .zip(&planned)
                    .map(|((_, update), gate)| {
                        scope.spawn(move || match (classify(&update["message"]), gate) {
                            (
                                Asked::Media {
                                    file_id,
                                    size,
                                    name,
                                },
                                Gate::Go { keep },
                            ) => Some(fetch_and_scan(
                                api, scanner, max, &file_id, size, &name, *keep,
                            )),
                            _ => None,
                        })
                    })
                    .collect();
                tasks
                    .into_iter()
                    .map(|t| t.join().unwrap_or(Some(Scanned::Failed)))
                    .collect()
            });
            for ((((id, update), gate), scanned), user) in
                chunk.iter().zip(planned).zip(scanned).zip(users)
            {
                let answers = self.handle(*id, update, &user, gate, scanned);
                self.store
                    .handled(*id, &answers)
                    .map_err(|e| e.to_string())?;
                done(*id);
                self.deliver();
            }
            if stop.load(Ordering::Relaxed) {
                break;
            }
        }
        Ok(())
    }

    /// Whether an update was handled already (a webhook may deliver one again).
    pub fn was_handled(&mut self, update_id: i64) -> Result<bool, String> {
        self.store.was_handled(update_id).map_err(|e| e.to_string())
    }

    /// Sends what the outbox holds, oldest first. An answer Telegram refuses for good (the
    /// user blocked the bot, the chat is gone) is dropped; one that keeps failing for a
    /// transient reason stays for the next round.
    pub fn deliver(&mut self) {
        let queued = match self.store.outbox() {
            Ok(q) => q,
            Err(e) => {
                tracing::error!("the outbox cannot be read: {e}");
                return;
            }
        };
        for q in queued {
            let Ok(a) = serde_json::from_str::<Value>(&q.answer) else {
                let _ = self.store.delivered(q.seq);
                continue;
            };
            let chat = a["chat"].as_i64().unwrap_or_default();
            let sent = with_retries(
                5,
                || match a["kind"].as_str() {
                    Some(kind @ ("document" | "photo")) => self.api.send_file(
                        chat,
                        kind,
                        a["name"].as_str().unwrap_or("file"),
                        a["content_type"]
                            .as_str()
                            .unwrap_or("application/octet-stream"),
                        &hex::decode(a["hex"].as_str().unwrap_or_default()).unwrap_or_default(),
                        a["caption"].as_str(),
                    ),
                    _ => self.api.send_message(
                        chat,
                        a["text"].as_str().unwrap_or_default(),
                        a["reply_to"].as_i64(),
                    ),
                },
                std::thread::sleep,
            );
            match sent {
                Ok(()) => {}
                Err(e) if e.is_transient() => {
                    tracing::warn!("an answer stays in the outbox: {e}");
                    return;
                }
                Err(e) => tracing::warn!("an answer was refused and dropped: {e}"),
            }
            if let Err(e) = self.store.delivered(q.seq) {
                tracing::error!("the outbox cannot be updated: {e}");
                return;
            }
        }
    }

    /// The answers to one update (JSON for the outbox): `gate` says whether a file may be
    /// checked, `scanned` is its download and scan when it was done ahead.
    fn handle(
        &mut self,
        update_id: i64,
        update: &Value,
        user: &str,
        gate: Gate,
        scanned: Option<Scanned>,
    ) -> Vec<String> {
        let msg = &update["message"];
        let Some(chat) = msg["chat"]["id"].as_i64() else {
            return Vec::new();
        };
        let reply_to = msg["message_id"].as_i64();
        let lang = match self.store.lang(user) {
            Ok(Some(l)) if LANGS.contains(&l.as_str()) => l,
            _ => match msg["from"]["language_code"].as_str().unwrap_or_default() {
                "kk" => "kk",
                "ru" | "uk" | "be" | "ky" | "uz" => "ru",
                _ => "en",
            }
            .to_owned(),
        };
        let w = Words::of(&lang);
        let say = |text: String| vec![message(chat, text, reply_to)];
        match classify(msg) {
            Asked::Other => say(w.bot("unsupported")),
            Asked::Command { name, argument } => match name.as_str() {
                "start" | "help" => say(format!("{}\n\n{}", w.bot("help"), w.bot("help_privacy"))),
                "keep" => {
                    let on = !matches!(argument.to_ascii_lowercase().as_str(), "off" | "0" | "no");
                    match self.store.set_keep(user, on) {
                        Ok(()) => say(w.bot(if on { "keep_on" } else { "keep_off" })),
                        Err(e) => {
                            tracing::error!("{e}");
                            say(w.bot("failed"))
                        }
                    }
                }
                "forget" => match self.store.forget(user) {
                    Ok((records, files)) => say(fill(
                        &w.bot("forgotten"),
                        &[
                            ("records", records.to_string()),
                            ("files", files.to_string()),
                        ],
                    )),
                    Err(e) => {
                        tracing::error!("forget: {e}");
                        say(w.bot("failed"))
                    }
                },
                "lang" => {
                    let chosen = argument.to_ascii_lowercase();
                    if LANGS.contains(&chosen.as_str()) {
                        if let Err(e) = self.store.set_lang(user, &chosen) {
                            tracing::error!("{e}");
                            return say(w.bot("failed"));
                        }
                        say(Words::of(&chosen).bot("lang_set"))
                    } else {
                        say(w.bot("lang_usage"))
                    }
                }
                "report" | "record" => self.evidence(chat, reply_to, user, &name, &argument, &lang),
                _ => say(w.bot("unsupported")),
            },
            Asked::Media { .. } if gate == Gate::Busy => say(w.bot("busy")),
            Asked::Media { .. } if gate == Gate::Limited => say(w.bot("rate_limited")),
            Asked::Media {
                file_id,
                size,
                name,
            } => {
                let keep = matches!(gate, Gate::Go { keep: true });
                let scanned = scanned.unwrap_or_else(|| {
                    fetch_and_scan(
                        &self.api,
                        &self.scanner,
                        self.settings.max_download,
                        &file_id,
                        size,
                        &name,
                        keep,
                    )
                });
                self.answer(update_id, chat, reply_to, user, &lang, scanned)
            }
        }
    }

    /// `/report ID` (the PDF in the user's language) or `/record ID` (the signed JSON).
    fn evidence(
        &mut self,
        chat: i64,
        reply_to: Option<i64>,
        user: &str,
        what: &str,
        id: &str,
        lang: &str,
    ) -> Vec<String> {
        let w = Words::of(lang);
        let found = match self.store.record_of(user, id) {
            Ok(f) => f,
            Err(e) => {
                tracing::error!("{e}");
                return vec![message(chat, w.bot("failed"), reply_to)];
            }
        };
        let Some((record_id, index)) = found else {
            return vec![message(
                chat,
                fill(
                    &w.bot("no_record"),
                    &[("id", id.chars().take(64).collect())],
                ),
                reply_to,
            )];
        };
        let short = &record_id[..16];
        let envelope = match self.log.envelope(index) {
            Ok(e) => serde_json::to_string_pretty(&e).expect("envelopes serialise"),
            Err(e) => {
                tracing::error!("{e}");
                return vec![message(chat, w.bot("failed"), reply_to)];
            }
        };
        if what == "record" {
            return vec![document(
                chat,
                &format!("aqiqat-{short}.json"),
                "application/json",
                envelope.as_bytes(),
                short.to_owned(),
            )];
        }
        let report_lang = aqiqat_report::Lang::ALL
            .into_iter()
            .find(|l| l.code() == lang)
            .unwrap_or(aqiqat_report::Lang::En);
        let pdf = aqiqat_report::RecordView::from_envelope_text(&envelope).and_then(|view| {
            aqiqat_report::render_record(
                &view,
                report_lang,
                aqiqat_report::Format::Pdf,
                &aqiqat_evidence::utc_now(),
            )
            .map_err(|e| e.to_string())
        });
        match pdf {
            Ok(bytes) => vec![document(
                chat,
                &format!("aqiqat-{short}-{lang}.pdf"),
                "application/pdf",
                &bytes,
                short.to_owned(),
            )],
            Err(e) => {
                tracing::error!("report: {e}");
                vec![message(chat, w.bot("failed"), reply_to)]
            }
        }
    }

    /// Records a checked file and words its answer.
    fn answer(
        &mut self,
        update_id: i64,
        chat: i64,
        reply_to: Option<i64>,
        user: &str,
        lang: &str,
        scanned: Scanned,
    ) -> Vec<String> {
        let w = Words::of(lang);
        let say = |text: String| vec![message(chat, text, reply_to)];
        let (result, kept) = match scanned {
            Scanned::TooBig => {
                return say(fill(
                    &w.bot("too_big"),
                    &[("mb", (self.settings.max_download >> 20).to_string())],
                ));
            }
            Scanned::Failed => return say(w.bot("failed")),
            Scanned::NotAudio(why) => return say(fill(&w.bot("not_audio"), &[("error", why)])),
            Scanned::Done { result, kept } => (result, kept),
        };
        let value = result;
        let recorded = self
            .record(update_id, value.clone())
            .and_then(|(leaf, index)| {
                self.store
                    .remember(
                        user,
                        &leaf,
                        index,
                        &aqiqat_evidence::utc_now(),
                        kept.as_deref(),
                    )
                    .map(|()| leaf)
            });
        let mut text = verdict_text(&value, lang);
        match recorded {
            Ok(leaf) => {
                let short = &leaf[..16];
                text.push_str("\n\n");
                text.push_str(&fill(
                    &w.bot("record"),
                    &[("id", leaf.clone()), ("short", short.to_owned())],
                ));
            }
            Err(e) => tracing::error!("record: {e}"),
        }
        let mut answers = say(text);
        if let Some(png) = timeline_png(&value, lang) {
            answers.push(photo(chat, &png));
        }
        answers
    }

    /// Signs the result and appends it to the log, once per update however often it is
    /// handled: (the record's leaf hash, its index).
    fn record(&mut self, update_id: i64, result: Value) -> Result<(String, u64), String> {
        let context = Context {
            case_id: None,
            operator: Some("telegram".into()),
            note: None,
        };
        let tool = ToolId {
            name: "aqiqat".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        };
        let draft = RecordDraft::from_scan(result, context, tool)?;
        let record = SignedRecord::sign(draft, aqiqat_evidence::utc_now(), self.log.signer());
        let key = format!("telegram:{update_id}");
        let entry = self
            .log
            .append_keyed(&[Append {
                record: &record,
                case: None,
                key: Some(&key),
            }])
            .map_err(|e| e.to_string())?
            .pop()
            .ok_or("no log entry")?;
        Ok((entry.leaf_hash, entry.index))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_told_apart() {
        let voice = json!({"voice": {"file_id": "V", "file_size": 12000, "duration": 9}});
        assert!(
            matches!(classify(&voice), Asked::Media { file_id, size: Some(12000), .. } if file_id == "V")
        );
        let doc = json!({"document": {"file_id": "D", "file_name": "call.M4A", "mime_type": "application/octet-stream"}});
        assert!(matches!(classify(&doc), Asked::Media { name, .. } if name == "call.M4A"));
        let pdf = json!({"document": {"file_id": "P", "file_name": "x.pdf", "mime_type": "application/pdf"}});
        assert!(matches!(classify(&pdf), Asked::Other));
        let sticker = json!({"sticker": {"file_id": "S"}});
        assert!(matches!(classify(&sticker), Asked::Other));
        let cmd = json!({"text": "/report@aqiqat_bot  0123abcd "});
        assert!(
            matches!(classify(&cmd), Asked::Command { name, argument } if name == "report" && argument == "0123abcd")
        );
    }

    #[test]
    fn verdicts_read_as_on_the_web_page() {
        let human = json!({"verdict": "human", "verdict_basis": "voice_detector", "probability_synthetic": 0.034,
            "reason_code": "no_sign_found", "voice": {"reach": {"families_heard": ["a", "b"], "families_not_heard": ["diffusion"]}}});
        let en = verdict_text(&human, "en");
        assert!(en.starts_with("NO SIGN of synthetic speech"), "{en}");
        assert!(
            en.contains("0.03") && en.contains("2 families") && en.contains("diffusion"),
            "{en}"
        );
        let ru = verdict_text(&human, "ru");
        assert!(ru.contains("0,03"), "{ru}");
        let noisy = json!({"verdict": "inconclusive", "probability_synthetic": null, "reason_code": "too_noisy",
            "voice": {"conditions": {"snr_db": 3.4}}});
        let kk = verdict_text(&noisy, "kk");
        assert_eq!(kk.lines().count(), 2, "{kk}");
        assert!(kk.contains('3'), "{kk}");
    }
}
