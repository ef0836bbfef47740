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
