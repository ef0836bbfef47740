//! A live call over `/v1/stream`, as a telephony gateway would send it: µ-law frames of 20 ms.

use crate::common;

use common::{Server, decode_with_aqiqat, mulaw_encode, smoke_first};
use serde_json::Value;
use tungstenite::Message;

#[test]
fn a_call_gets_a_verdict_at_two_seconds_then_every_second_and_a_final_one() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    // Two smoke clips back to back, decoded to 8 kHz by aqiqat itself.
    let clip = smoke_first("spoof");
    let samples = decode_with_aqiqat(&clip, 8000, dir.path());
    let call: Vec<u8> = samples
        .iter()
        .chain(samples.iter())
        .map(|&x| mulaw_encode(x))
        .collect();

    let (verdicts, final_message) = stream_call(&server, &call);
    let seconds = call.len() as f64 / 8000.0;
    let times: Vec<f64> = verdicts
        .iter()
        .map(|v| v["t_s"].as_f64().unwrap())
        .collect();
    let expected: Vec<f64> = (2..=seconds.floor() as u32).map(f64::from).collect();
    assert_eq!(times, expected);
    for v in &verdicts {
        assert!(["synthetic", "human", "inconclusive"].contains(&v["verdict"].as_str().unwrap()));
        assert!(
            v["window"]["end_s"].as_f64().unwrap() - v["window"]["start_s"].as_f64().unwrap()
                <= 4.0 + 1e-9
        );
    }
    assert_eq!(
        final_message["windows"].as_u64().unwrap() as usize,
        verdicts
            .iter()
            .filter(|v| !v["window"]["probability_synthetic"].is_null())
            .count()
    );
    assert!(
        final_message["probability_synthetic"].as_f64().is_some(),
        "{final_message}"
    );

    // A bad encoding is refused before the upgrade.
    let refused = tungstenite::connect(format!(
        "{}/v1/stream?encoding=opus",
        server.base.replace("http://", "ws://")
    ));
    assert!(refused.is_err());
}

#[test]
fn a_call_claiming_an_enrolled_voice_gets_speaker_checks_and_the_joint_answer() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = std::fs::read_to_string(common::smoke_dir().join("smoke.tsv")).unwrap();
    let clips = |system: &str| {
        let mut lj: Vec<std::path::PathBuf> = manifest
            .lines()
            .filter(|l| l.contains(&format!("\t{system}\tLJ-voice\t")))
            .map(|l| common::smoke_dir().join(l.split('\t').next().unwrap()))
            .collect();
        lj.sort_by_key(|p| std::cmp::Reverse(std::fs::metadata(p).unwrap().len()));
        lj
    };
    // Enrolled from one system's clips of the voice, called with another's.
    let lj = clips("openseq2seq-centaur");
    let mut enrol = std::process::Command::new(env!("CARGO_BIN_EXE_aqiqat"));
    enrol
        .args(["voiceprint", "enrol", "LJ"])
        .args(&lj[..4])
        .env("AQIQAT_DATA_DIR", dir.path());
    assert!(enrol.output().unwrap().status.success());
    let server = Server::start(dir.path(), &[]);
    // Four clips of the voice, about 14 s, as a phone line carries them.
    let call: Vec<u8> = clips("openseq2seq-tacotron2-gst")[..4]
        .iter()
        .flat_map(|clip| decode_with_aqiqat(clip, 8000, dir.path()))
        .map(mulaw_encode)
        .collect();
    assert!(call.len() > 8000 * 10, "{} s", call.len() / 8000);
    let (messages, final_message) = stream_call_with(&server, &call, "&claimed=LJ");
    let speaker: Vec<&Value> = messages.iter().filter(|m| m["type"] == "speaker").collect();
    let times: Vec<f64> = speaker.iter().map(|m| m["t_s"].as_f64().unwrap()).collect();
    assert_eq!(times.len(), 2, "checks at 5 and 10 s: {times:?}");
    for m in &speaker {
        assert_eq!(m["speaker"]["claimed"]["name"], "LJ");
        assert!(m["speaker"]["similarity"].as_f64().is_some(), "{m}");
    }
    assert_eq!(
        final_message["speaker"]["decision"], "same_speaker",
        "{final_message}"
    );
    assert!(
        ["clone_of_claimed", "inconclusive"]
            .contains(&final_message["claim"]["verdict"].as_str().unwrap()),
        "{final_message}"
    );

    // A voiceprint that does not exist is refused before the upgrade.
    let refused = tungstenite::connect(format!(
        "{}/v1/stream?claimed=nobody",
        server.base.replace("http://", "ws://")
    ));
    assert!(refused.is_err());
}

/// Sends `call` (µ-law bytes at 8 kHz) in 20 ms frames and ends it; returns the rolling
/// verdicts and the final message.
fn stream_call(server: &Server, call: &[u8]) -> (Vec<Value>, Value) {
    let (messages, final_message) = stream_call_with(server, call, "");
    for m in &messages {
        assert_eq!(m["type"], "verdict", "{m}");
    }
    (messages, final_message)
}

/// [`stream_call`] with more query parameters (`&name=value…`); returns every message before
/// the final one.
fn stream_call_with(server: &Server, call: &[u8], query: &str) -> (Vec<Value>, Value) {
    let url = format!(
        "{}/v1/stream?encoding=mulaw&rate=8000{query}",
        server.base.replace("http://", "ws://")
    );
    let (mut ws, _) = tungstenite::connect(url).expect("the WebSocket opens");
    let ready: Value = serde_json::from_str(ws.read().unwrap().to_text().unwrap()).unwrap();
    assert_eq!(ready["type"], "ready");
    assert_eq!(ready["encoding"], "mulaw");
    for frame in call.chunks(160) {
        ws.send(Message::Binary(frame.to_vec().into())).unwrap();
    }
    ws.send(Message::Text(r#"{"type": "end"}"#.into())).unwrap();
    let mut verdicts = Vec::new();
    let final_message = loop {
        let m = ws.read().unwrap();
        let Message::Text(t) = m else { continue };
        let v: Value = serde_json::from_str(&t).unwrap();
        match v["type"].as_str().unwrap() {
            "verdict" | "speaker" => verdicts.push(v),
            "final" => break v,
            other => panic!("unexpected {other}: {v}"),
        }
    };
    (verdicts, final_message)
}

#[test]
fn a_call_drowned_in_noise_is_never_judged() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let samples = decode_with_aqiqat(&smoke_first("bonafide"), 8000, dir.path());
    let power = samples.iter().map(|x| x * x).sum::<f32>() / samples.len() as f32;
    // Seeded white noise (xorshift) as strong as the clip: 0 dB.
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut noise = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        ((state >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * (3.0 * power).sqrt()
    };
    let call: Vec<u8> = samples
        .iter()
        .chain(samples.iter())
        .map(|&x| mulaw_encode(0.5 * (x + noise())))
        .collect();
    let (verdicts, final_message) = stream_call(&server, &call);
    assert!(!verdicts.is_empty());
    for v in &verdicts {
        assert_eq!(v["verdict"], "inconclusive", "{v}");
        assert!(v["window"]["probability_synthetic"].is_null(), "{v}");
    }
    assert_eq!(final_message["verdict"], "inconclusive", "{final_message}");
    assert_eq!(final_message["reason_code"], "too_noisy", "{final_message}");
    assert_eq!(final_message["windows"], 0, "{final_message}");
    assert!(final_message["refused_windows"].as_u64().unwrap() >= 1);
}

// ---- telephony platforms ----

/// A webhook receiver on loopback: every JSON body posted to it, in order.
fn webhook_receiver() -> (String, std::sync::Arc<std::sync::Mutex<Vec<Value>>>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = got.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0;
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                    break;
                }
                if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0u8; length];
            let _ = reader.read_exact(&mut body);
            if let Ok(v) = serde_json::from_slice(&body) {
                sink.lock().unwrap().push(v);
            }
            let mut stream = stream;
            let _ = stream.write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
        }
    });
    (url, got)
}

fn twilio_socket(
    server: &Server,
) -> tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<std::net::TcpStream>> {
    let url = format!(
        "{}/v1/calls/twilio",
        server.base.replace("http://", "ws://")
    );
    tungstenite::connect(url).expect("the WebSocket opens").0
}

fn twilio_start(params: Value, encoding: &str) -> Message {
    Message::Text(
        serde_json::json!({"event": "start", "sequenceNumber": "1", "streamSid": "MZ0001",
            "start": {"accountSid": "AC1", "streamSid": "MZ0001", "callSid": "CA0001",
                "tracks": ["inbound", "outbound"],
                "mediaFormat": {"encoding": encoding, "sampleRate": 8000, "channels": 1},
                "customParameters": params}})
        .to_string()
        .into(),
    )
}

fn twilio_media(track: &str, chunk: usize, bytes: &[u8]) -> Message {
    use base64::Engine;
    Message::Text(
        serde_json::json!({"event": "media", "streamSid": "MZ0001", "media": {"track": track,
            "chunk": chunk.to_string(), "timestamp": (chunk * 20).to_string(),
            "payload": base64::engine::general_purpose::STANDARD.encode(bytes)}})
        .to_string()
        .into(),
    )
}

/// Reads the `aqiqat` messages until the server closes; the unwrapped messages.
fn read_until_closed(
    ws: &mut tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<std::net::TcpStream>>,
) -> Vec<Value> {
    let mut got = Vec::new();
    while let Ok(m) = ws.read() {
        if let Message::Text(t) = m {
            let v: Value = serde_json::from_str(&t).unwrap();
            assert_eq!(v["event"], "aqiqat", "{v}");
            got.push(v["aqiqat"].clone());
        }
    }
    got
}

/// A recorded call replayed in the Twilio Media Streams protocol at real-time pace: the
/// inbound track is judged on the same timeline as `/v1/stream` (first verdict at 2 s, then
/// every second), the outbound track, marks and unknown events are passed over, and the
/// webhook gets the start, the verdict's changes and the final verdict. FreeSWITCH-style
/// binary L16 with a metadata message goes through `/v1/stream` the same way.
#[test]
fn telephony_calls_replayed_in_real_time_get_the_verdict_timeline() {
    let dir = tempfile::tempdir().unwrap();
    let (hook, posted) = webhook_receiver();
    let server = Server::start(dir.path(), &["--call-webhook", &hook]);
    let samples = decode_with_aqiqat(&smoke_first("spoof"), 8000, dir.path());
    let call: Vec<u8> = samples
        .iter()
        .take(8000 * 5)
        .map(|&x| mulaw_encode(x))
        .collect();
    let seconds = call.len() / 8000;
    assert!(seconds >= 3, "{seconds} s");

    let mut ws = twilio_socket(&server);
    ws.send(Message::Text(
        r#"{"event": "connected", "protocol": "Call", "version": "1.0.0"}"#.into(),
    ))
    .unwrap();
    ws.send(twilio_start(serde_json::json!({}), "audio/x-mulaw"))
        .unwrap();
    let ready: Value = serde_json::from_str(ws.read().unwrap().to_text().unwrap()).unwrap();
    assert_eq!(ready["streamSid"], "MZ0001");
    assert_eq!(ready["aqiqat"]["type"], "ready");
    assert_eq!(ready["aqiqat"]["track"], "inbound");
    let started = std::time::Instant::now();
    for (n, frame) in call.chunks(160).enumerate() {
        ws.send(twilio_media("inbound", n, frame)).unwrap();
        // The agent's side of the call, silence: not judged.
        ws.send(twilio_media("outbound", n, &[0xff; 160])).unwrap();
        if n == 10 {
            ws.send(Message::Text(
                r#"{"event": "mark", "streamSid": "MZ0001", "mark": {"name": "greeting"}}"#.into(),
            ))
            .unwrap();
            ws.send(Message::Text(r#"{"event": "a-future-event"}"#.into()))
                .unwrap();
        }
        // Real-time pace: frame n is sent at n × 20 ms.
        let due = std::time::Duration::from_millis(20 * (n as u64 + 1));
        if let Some(wait) = due.checked_sub(started.elapsed()) {
            std::thread::sleep(wait);
        }
    }
    ws.send(Message::Text(
        r#"{"event": "stop", "streamSid": "MZ0001", "stop": {"callSid": "CA0001"}}"#.into(),
    ))
    .unwrap();
    let messages = read_until_closed(&mut ws);
    let (last, verdicts) = messages.split_last().unwrap();
    assert_eq!(last["type"], "final", "{last}");
    assert_eq!(last["media_messages"], call.chunks(160).len());
    assert!(last.get("ended_by").is_none(), "{last}");
    let times: Vec<f64> = verdicts
        .iter()
        .map(|v| {
            assert_eq!(v["type"], "verdict", "{v}");
            v["t_s"].as_f64().unwrap()
        })
        .collect();
    let expected: Vec<f64> = (2..=seconds as u32).map(f64::from).collect();
    assert_eq!(times, expected);

    // The webhook: the start, each change of the rolling verdict, the final verdict.
    let start = std::time::Instant::now();
    while posted
        .lock()
        .unwrap()
        .last()
        .map(|v| v["aqiqat"]["type"].clone())
        != Some(Value::from("final"))
    {
        assert!(
            start.elapsed().as_secs() < 10,
            "{:?}",
            posted.lock().unwrap()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let posted = posted.lock().unwrap().clone();
    assert_eq!(posted[0]["aqiqat"]["type"], "ready");
    assert_eq!(posted[0]["callSid"], "CA0001");
    let posted_verdicts: Vec<&Value> = posted
        .iter()
        .filter(|v| v["aqiqat"]["type"] == "verdict")
        .collect();
    assert!(!posted_verdicts.is_empty());
    for pair in posted_verdicts.windows(2) {
        assert_ne!(pair[0]["aqiqat"]["verdict"], pair[1]["aqiqat"]["verdict"]);
    }
    assert_eq!(posted.last().unwrap()["aqiqat"], *last);

    // FreeSWITCH (mod_audio_fork / mod_audio_stream): a JSON metadata message, then binary
    // 16-bit PCM at 16 kHz, at real-time pace.
    let wide = decode_with_aqiqat(&smoke_first("spoof"), 16000, dir.path());
    let pcm: Vec<u8> = wide
        .iter()
        .take(16000 * 7 / 2)
        .flat_map(|&x| ((x * 32767.0) as i16).to_le_bytes())
        .collect();
    let url = format!(
        "{}/v1/stream?encoding=pcm_s16le&rate=16000",
        server.base.replace("http://", "ws://")
    );
    let (mut ws, _) = tungstenite::connect(url).unwrap();
    let ready: Value = serde_json::from_str(ws.read().unwrap().to_text().unwrap()).unwrap();
    assert_eq!(ready["type"], "ready");
    ws.send(Message::Text(
        r#"{"uuid": "5b1c-freeswitch-call", "caller": "+77010000000"}"#.into(),
    ))
    .unwrap();
    let started = std::time::Instant::now();
    for (n, frame) in pcm.chunks(640).enumerate() {
        ws.send(Message::Binary(frame.to_vec().into())).unwrap();
        let due = std::time::Duration::from_millis(20 * (n as u64 + 1));
        if let Some(wait) = due.checked_sub(started.elapsed()) {
            std::thread::sleep(wait);
        }
    }
    ws.send(Message::Text(r#"{"type": "end"}"#.into())).unwrap();
    let mut times = Vec::new();
    let final_message = loop {
        let Message::Text(t) = ws.read().unwrap() else {
            continue;
        };
        let v: Value = serde_json::from_str(&t).unwrap();
        match v["type"].as_str().unwrap() {
            "verdict" => times.push(v["t_s"].as_f64().unwrap()),
            "final" => break v,
            other => panic!("{other}: {v}"),
        }
    };
    // 3.5 s of audio: windows end at 2 and 3 s (what the resampler to the analysis rate still
    // holds at the end is let out, but completes no window).
    assert_eq!(pcm.len(), 16000 * 7);
    assert_eq!(times, vec![2.0, 3.0]);
    assert_eq!(final_message["metadata"]["uuid"], "5b1c-freeswitch-call");
}

/// What a platform should never send gets an error message and a clean close, and no session
/// is left open, also when a client vanishes mid-call; a server with API keys takes the key
/// from the stream's parameters.
#[test]
fn twilio_protocol_faults_end_the_stream_cleanly_and_leave_no_session() {
    let dir = tempfile::tempdir().unwrap();
    let made = std::process::Command::new(env!("CARGO_BIN_EXE_aqiqat"))
        .args(["api-key", "create", "contact-centre"])
        .env("AQIQAT_DATA_DIR", dir.path())
        .output()
        .unwrap();
    assert!(made.status.success());
    let key = String::from_utf8(made.stdout).unwrap().trim().to_owned();
    let server = Server::start(dir.path(), &[]);
    let with_key = serde_json::json!({"key": key});
    let frame = [0xffu8; 160];

    let faults: Vec<(Vec<Message>, &str)> = vec![
        (vec![Message::Text("not json".into())], "not a JSON object"),
        (
            vec![twilio_media("inbound", 0, &frame)],
            "media before start",
        ),
        (
            vec![twilio_start(serde_json::json!({}), "audio/x-mulaw")],
            "API key",
        ),
        (
            vec![twilio_start(
                serde_json::json!({"key": "aqk_wrong"}),
                "audio/x-mulaw",
            )],
            "",
        ),
        (
            vec![twilio_start(with_key.clone(), "audio/x-l16")],
            "audio/x-mulaw or audio/x-alaw",
        ),
        (
            vec![
                twilio_start(with_key.clone(), "audio/x-mulaw"),
                twilio_media("inbound", 0, &[]),
            ],
            "a media payload of 0 bytes",
        ),
        (
            vec![
                twilio_start(with_key.clone(), "audio/x-mulaw"),
                twilio_media("inbound", 0, &vec![0xffu8; 20_000]),
            ],
            "a media payload of 20000 bytes",
        ),
        (
            vec![
                twilio_start(with_key.clone(), "audio/x-mulaw"),
                Message::Text(
                    r#"{"event": "media", "media": {"track": "inbound", "payload": "%%%"}}"#.into(),
                ),
            ],
            "not base64",
        ),
        (
            vec![
                twilio_start(with_key.clone(), "audio/x-mulaw"),
                Message::Binary(frame.to_vec().into()),
            ],
            "not binary audio",
        ),
        (
            vec![
                twilio_start(with_key.clone(), "audio/x-mulaw"),
                twilio_start(with_key.clone(), "audio/x-mulaw"),
            ],
            "a second start",
        ),
    ];
    for (sent, expected) in faults {
        let mut ws = twilio_socket(&server);
        for m in sent {
            ws.send(m).unwrap();
        }
        let got = read_until_closed(&mut ws);
        let error = got
            .iter()
            .find(|m| m["type"] == "error")
            .unwrap_or_else(|| panic!("no error for {expected:?}: {got:?}"));
        assert!(
            error["message"].as_str().unwrap().contains(expected),
            "{expected:?}: {error}"
        );
        // A stream that had started still gets its final message, saying why it ended.
        if let Some(last) = got.last().filter(|m| m["type"] == "final") {
            assert!(
                last["ended_by"].as_str().unwrap().contains(expected),
                "{last}"
            );
        }
    }

    // The key in the stream's parameters admits it.
    let mut ws = twilio_socket(&server);
    ws.send(twilio_start(with_key.clone(), "audio/x-mulaw"))
        .unwrap();
    let ready: Value = serde_json::from_str(ws.read().unwrap().to_text().unwrap()).unwrap();
    assert_eq!(ready["aqiqat"]["type"], "ready", "{ready}");
    for n in 0..50 {
        ws.send(twilio_media("inbound", n, &frame)).unwrap();
    }
    // The client vanishes: no close, no stop.
    drop(ws);
    let metrics = |server: &Server| {
        let mut r = common::agent()
            .get(&server.url("/metrics"))
            .header("Authorization", &format!("Bearer {key}"))
            .call()
            .unwrap();
        r.body_mut().read_to_string().unwrap()
    };
    let start = std::time::Instant::now();
    while !metrics(&server).contains("\naqiqat_calls_active 0\n") {
        assert!(start.elapsed().as_secs() < 10, "{}", metrics(&server));
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
