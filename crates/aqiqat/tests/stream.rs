//! A live call over `/v1/stream`, as a telephony gateway would send it: µ-law frames of 20 ms.

mod common;

use common::{Server, smoke_first};
use serde_json::Value;
use tungstenite::Message;

fn mulaw_encode(x: f32) -> u8 {
    // G.711 µ-law, the encoder's side of the server's decoder.
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

#[test]
fn a_call_gets_a_verdict_at_two_seconds_then_every_second_and_a_final_one() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    // Two smoke clips back to back, decoded to 8 kHz by aqiqat itself.
    let clip = smoke_first("spoof");
    let wav = dir.path().join("8k.wav");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_aqiqat"))
        .args([
            "decode",
            clip.to_str().unwrap(),
            "--rate",
            "8000",
            "-o",
            wav.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let samples: Vec<f32> = hound::WavReader::open(&wav)
        .unwrap()
        .samples::<f32>()
        .map(Result::unwrap)
        .collect();
    let call: Vec<u8> = samples
        .iter()
        .chain(samples.iter())
        .map(|&x| mulaw_encode(x))
        .collect();

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
