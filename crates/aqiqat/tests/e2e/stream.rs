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

/// Sends `call` (µ-law bytes at 8 kHz) in 20 ms frames and ends it; returns the rolling
/// verdicts and the final message.
fn stream_call(server: &Server, call: &[u8]) -> (Vec<Value>, Value) {
    let url = format!(
        "{}/v1/stream?encoding=mulaw&rate=8000",
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
            "verdict" => verdicts.push(v),
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
