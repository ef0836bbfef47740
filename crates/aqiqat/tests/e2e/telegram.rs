//! `aqiqat telegram` against a stand-in for the Bot API on loopback (`bot_api`): the real bot
//! binary polls it, downloads the files it serves, and its answers are read back from what it
//! sent.

use crate::bot_api::{Bot, StandIn, TOKEN, encoded, post_update, wait_reply};
use crate::common;

use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// A data directory, a stand-in serving a spoof clip as the Opus voice message `voice-1`.
struct Setup {
    dir: tempfile::TempDir,
    data: std::path::PathBuf,
    api: StandIn,
    clip: std::path::PathBuf,
}

impl Setup {
    fn new() -> Self {
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
        Self {
            dir,
            data,
            api,
            clip,
        }
    }
}

/// Kills `bot` once the stand-in has served `downloads` files in all (a batch under way);
/// returns what the bot logged, which never holds the token.
fn kill_while_downloading(api: &StandIn, bot: Bot, downloads: usize) -> String {
    let start = Instant::now();
    while api.calls("getFile").len() < downloads {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the batch never started"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    let said = bot.kill();
    assert!(!said.contains(TOKEN), "the token never reaches the log");
    said
}

#[test]
fn the_bot_answers_voice_messages_files_and_commands_and_loses_no_update() {
    let Setup {
        dir,
        data,
        api,
        clip,
    } = Setup::new();
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
    kill_while_downloading(&api, bot, downloads_before + 1);
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

/// The secret the latest `setWebhook` gave Telegram, once the bot has called it `n` times.
fn webhook_secret(api: &StandIn, n: usize) -> String {
    let set = api.wait_calls("setWebhook", n);
    let last = set.last().unwrap();
    assert_eq!(last["url"], "https://bot.example.org/aqiqat/tg");
    assert_eq!(last["allowed_updates"], json!(["message"]));
    last["secret_token"].as_str().unwrap().to_owned()
}

#[test]
fn a_webhook_bot_answers_only_telegram_once_per_update_and_loses_none_across_a_restart() {
    let Setup {
        dir: _dir,
        data,
        api,
        clip: _,
    } = Setup::new();
    let listen = {
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        free.local_addr().unwrap().to_string()
    };
    let hook_args = [
        "--webhook",
        "https://bot.example.org/aqiqat/tg",
        "--listen",
        listen.as_str(),
    ];
    let route = format!("http://{listen}/aqiqat/tg");
    let bot = Bot::start(&data, &api.base, &hook_args);
    let secret = webhook_secret(&api, 1);
    assert_eq!(secret.len(), 64);

    // Only a request carrying the secret is taken.
    let (voice, voice_msg) = api.stage(json!({"voice": {"file_id": "voice-1", "duration": 4}}));
    let start = Instant::now();
    while post_update(&route, None, &voice) != 401 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the route never came up"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(post_update(&route, Some(&"0".repeat(64)), &voice), 401);
    assert_eq!(
        post_update(&route, Some(&secret), &json!({"no": "update_id"})),
        400
    );
    assert!(
        api.calls("getFile").is_empty(),
        "nothing refused was handled"
    );

    // Acknowledged (200) only once handled; the answer follows. Delivered again: acknowledged,
    // not answered twice.
    assert_eq!(post_update(&route, Some(&secret), &voice), 200);
    assert!(wait_reply(&api, voice_msg).contains("Record "));
    assert_eq!(post_update(&route, Some(&secret), &voice), 200);
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(api.replies(voice_msg).len(), 1);
    assert_eq!(
        api.calls("getFile").len(),
        1,
        "a repeat is not scanned again"
    );

    // Several deliveries at once, and a restart in the middle: killed while it downloads.
    let batch: Vec<(Value, i64)> = vec![
        api.stage(json!({"text": "/help"})),
        api.stage(json!({"voice": {"file_id": "voice-1", "duration": 4}})),
        api.stage(json!({"voice": {"file_id": "voice-1", "duration": 4}})),
        api.stage(json!({"sticker": {"file_id": "s-2"}})),
    ];
    let first_round: Vec<_> = batch
        .iter()
        .map(|(update, _)| {
            let (route, secret, update) = (route.clone(), secret.clone(), update.clone());
            std::thread::spawn(move || post_update(&route, Some(&secret), &update))
        })
        .collect();
    let said = kill_while_downloading(&api, bot, 2);
    assert!(
        !said.contains(&secret),
        "the webhook's secret never reaches the log"
    );
    let acknowledged: Vec<bool> = first_round
        .into_iter()
        .map(|t| t.join().unwrap() == 200)
        .collect();
    // Telegram delivers again whatever was not acknowledged; this stand-in delivers all.
    let _bot = Bot::start(&data, &api.base, &hook_args);
    let secret = webhook_secret(&api, 2);
    for (update, _) in &batch {
        let start = Instant::now();
        while post_update(&route, Some(&secret), update) != 200 {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "not taken after the restart"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    std::thread::sleep(Duration::from_millis(1500));
    for ((_, message), acked) in batch.iter().zip(&acknowledged) {
        let replies = api.replies(*message);
        assert_eq!(
            replies.len(),
            1,
            "update {message} (acknowledged before the kill: {acked}) answered {} times",
            replies.len()
        );
    }
    drop(_bot);

    // Back to polling: getUpdates is refused while the webhook is set, so the bot removes it
    // and the updates come by polling.
    api.fault(
        "getUpdates",
        409,
        json!({"ok": false, "error_code": 409,
            "description": "Conflict: can't use getUpdates method while webhook is active"}),
    );
    let _poller = Bot::start(&data, &api.base, &[]);
    let polled = api.push(json!({"text": "/help"}));
    assert!(wait_reply(&api, polled).contains("not a guarantee"));
    let deleted = api.wait_calls("deleteWebhook", 1);
    assert_eq!(deleted[0]["drop_pending_updates"], false);
}
