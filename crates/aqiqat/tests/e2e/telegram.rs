//! `aqiqat telegram` against a stand-in for the Bot API on loopback (`bot_api`): the real bot
//! binary polls it, downloads the files it serves, and its answers are read back from what it
//! sent.

use crate::bot_api::{Bot, StandIn, TOKEN, encoded, wait_reply};
use crate::common;

use serde_json::{Value, json};
use std::time::{Duration, Instant};

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
