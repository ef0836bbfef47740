//! Live calls from telephony platforms in the Twilio Media Streams protocol, which Twilio
//! sends for a `<Stream>` in TwiML and Telnyx and others send in compatible modes: JSON text
//! messages over one WebSocket, `connected`, then `start` (the stream and call ids, the media
//! format, and the `<Parameter>`s given in TwiML), `media` (base64 G.711, 20 ms per message,
//! per track) and `stop`; `mark` and `dtmf` are passed over.
//!
//! The call is analysed exactly as on `/v1/stream` (the same windows, rolling verdict and
//! speaker checks); each message back is the native one wrapped as
//! `{"event": "aqiqat", "streamSid", "aqiqat": {…}}`, and, with `serve --call-webhook URL`,
//! also posted to that URL (the call's start, every change of the rolling verdict, every
//! speaker check and the final verdict), because Twilio itself does not act on messages sent
//! back on a stream.
//!
//! Defined behaviour for what a platform should never send: a message that is not JSON, a
//! `media` before `start`, a payload that is not base64 or is empty or longer than 2 s, an
//! unsupported media format: an error message, then the socket is closed. An unknown event
//! is passed over (the protocol grows). A client that vanishes ends the session after
//! [`crate::stream::IDLE_S`] seconds of silence.

use crate::stream::{self, Active, CallSettings, Encoding};
use aqiqat_scan::Scanner;
use axum::extract::ws::{Message, WebSocket};
use base64::Engine;
use serde_json::{Value, json};
use std::sync::Arc;

/// The largest audio payload accepted in one `media` message: 2 s at 8 kHz G.711 (Twilio
/// sends 160 bytes, 20 ms).
const MAX_PAYLOAD: usize = 16_000;

/// Which side of the call is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Track {
    /// The caller: the voice a fraudster would clone.
    #[default]
    Inbound,
    Outbound,
}

impl Track {
    fn name(self) -> &'static str {
        match self {
            Track::Inbound => "inbound",
            Track::Outbound => "outbound",
        }
    }
}

/// Decides whether a stream may start, from its `start` message's custom parameters (`key`,
/// `claimed`): the voiceprint to compare with, or why not.
pub type Admit =
    Box<dyn FnOnce(&Value) -> Result<Option<aqiqat_scan::ClaimedVoice>, String> + Send>;

/// Posts messages to the operator's webhook in order, off the call's path: a slow or failing
/// webhook never holds up the analysis.
#[derive(Clone)]
pub struct Webhook(tokio::sync::mpsc::UnboundedSender<Value>);

impl Webhook {
    pub fn start(url: String) -> Self {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Value>();
        tokio::spawn(async move {
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .timeout_global(Some(std::time::Duration::from_secs(5)))
                .http_status_as_error(false)
                .build()
                .into();
            while let Some(message) = rx.recv().await {
                let (agent, url) = (agent.clone(), url.clone());
                let sent = tokio::task::spawn_blocking(move || {
                    agent
                        .post(&url)
                        .header("Content-Type", "application/json")
                        .send(message.to_string().as_bytes())
                        .map(|r| r.status().as_u16())
                })
                .await;
                match sent {
                    Ok(Ok(status)) if (200..300).contains(&status) => {}
                    Ok(Ok(status)) => tracing::warn!("call webhook answered {status}"),
                    Ok(Err(e)) => tracing::warn!("call webhook: {e}"),
                    Err(e) => tracing::warn!("call webhook: {e}"),
                }
            }
        });
        Self(tx)
    }

    fn post(&self, message: Value) {
        let _ = self.0.send(message);
    }
}

/// The media formats understood, as Twilio and Telnyx name them.
fn settings(format: &Value) -> Result<CallSettings, String> {
    let name = format["encoding"].as_str().unwrap_or("audio/x-mulaw");
    let encoding = match name.to_ascii_lowercase().as_str() {
        "audio/x-mulaw" | "pcmu" => Encoding::Mulaw,
        "audio/x-alaw" | "pcma" => Encoding::Alaw,
        _ => {
            return Err(format!(
                "media format {name:?}: send audio/x-mulaw or audio/x-alaw"
            ));
        }
    };
    let rate = format["sampleRate"].as_u64().unwrap_or(8000);
    if rate != 8000 && rate != 16000 {
        return Err(format!("sample rate {rate}: send 8000 or 16000"));
    }
    if format["channels"].as_u64().is_some_and(|c| c != 1) {
        return Err("send one channel per track".into());
    }
    Ok(CallSettings {
        encoding,
        rate: rate as u32,
    })
}

/// One stream's state once `start` has arrived.
struct Started {
    /// Away while a piece of audio is analysed.
    call: Option<stream::Call>,
    stream_sid: String,
    call_sid: Option<String>,
    /// The rolling verdict last posted to the webhook.
    last_posted: Option<String>,
    media_messages: u64,
}

/// Runs one Twilio-protocol stream until `stop`, a close, an error or silence.
pub async fn run(
    mut socket: WebSocket,
    scanner: Arc<Scanner>,
    track: Track,
    admit: Admit,
    webhook: Option<Webhook>,
    _active: Active,
) {
    let mut admit = Some(admit);
    let mut started: Option<Started> = None;
    // Sends a message on the socket (wrapped) and, when it is worth it, to the webhook.
    async fn emit(
        socket: &mut WebSocket,
        webhook: Option<&Webhook>,
        s: &mut Started,
        message: Value,
    ) -> bool {
        let kind = message["type"].as_str().unwrap_or_default().to_owned();
        let wrapped = json!({"event": "aqiqat", "streamSid": s.stream_sid, "aqiqat": message});
        if let Some(hook) = webhook {
            let verdict = message["verdict"].as_str().map(str::to_owned);
            let worth = match kind.as_str() {
                "verdict" => verdict != s.last_posted,
                _ => true,
            };
            if worth {
                if kind == "verdict" {
                    s.last_posted = verdict;
                }
                let mut posted = wrapped.clone();
                posted["callSid"] = json!(s.call_sid);
                hook.post(posted);
            }
        }
        socket
            .send(Message::Text(wrapped.to_string().into()))
            .await
            .is_ok()
    }
    let fail = |why: String| {
        Message::Text(
            json!({"event": "aqiqat", "aqiqat": {"type": "error", "message": why}})
                .to_string()
                .into(),
        )
    };
    let ended_by_error = loop {
        let Some(message) = stream::next_message(&mut socket).await else {
            break None;
        };
        let text = match message {
            Message::Text(t) => t,
            Message::Close(_) => break None,
            Message::Binary(_) => {
                break Some("this endpoint speaks the Twilio Media Streams protocol: JSON text messages, not binary audio".to_owned());
            }
            _ => continue,
        };
        let event: Value = match serde_json::from_str(&text) {
            Ok(v @ Value::Object(_)) => v,
            _ => break Some("a message that is not a JSON object".to_owned()),
        };
        match event["event"].as_str().unwrap_or_default() {
            "connected" | "mark" | "dtmf" => {}
            "start" if started.is_some() => break Some("a second start on one stream".to_owned()),
            "start" => {
                let start = &event["start"];
                let stream_sid = event["streamSid"]
                    .as_str()
                    .or_else(|| start["streamSid"].as_str())
                    .unwrap_or_default()
                    .to_owned();
                let admitted = admit.take().expect("admitted once")(&start["customParameters"]);
                let claimed = match admitted {
                    Ok(c) => c,
                    Err(why) => break Some(why),
                };
                let call = settings(&start["mediaFormat"])
                    .and_then(|settings| stream::Call::new(settings, scanner.voice().sample_rate()))
                    .and_then(|call| match claimed.clone() {
                        Some(c) => call.claiming(c),
                        None => Ok(call),
                    });
                let call = match call {
                    Ok(c) => c,
                    Err(why) => break Some(why),
                };
                let mut s = Started {
                    call: Some(call),
                    stream_sid,
                    call_sid: start["callSid"].as_str().map(str::to_owned),
                    last_posted: None,
                    media_messages: 0,
                };
                let ready = json!({"type": "ready", "track": track.name(),
                    "analysis_rate": scanner.voice().sample_rate(), "model": scanner.voice().id(),
                    "claimed": claimed.as_ref().map(|c| json!({"id": c.id, "name": c.name}))});
                if !emit(&mut socket, webhook.as_ref(), &mut s, ready).await {
                    return;
                }
                started = Some(s);
            }
            "media" => {
                let Some(s) = started.as_mut() else {
                    break Some("media before start".to_owned());
                };
                let media = &event["media"];
                if media["track"].as_str().unwrap_or("inbound") != track.name() {
                    continue;
                }
                let payload = media["payload"].as_str().unwrap_or_default();
                let bytes = match base64::engine::general_purpose::STANDARD.decode(payload) {
                    Ok(b) if !b.is_empty() && b.len() <= MAX_PAYLOAD => b,
                    Ok(b) => {
                        break Some(format!(
                            "a media payload of {} bytes: between 1 and {MAX_PAYLOAD} expected",
                            b.len()
                        ));
                    }
                    Err(_) => break Some("a media payload that is not base64".to_owned()),
                };
                s.media_messages += 1;
                let call = s.call.take().expect("the call is home between messages");
                let (back, messages, ended) = stream::feed(&scanner, call, &bytes).await;
                s.call = Some(back);
                for m in messages {
                    if !emit(&mut socket, webhook.as_ref(), s, m).await {
                        return;
                    }
                }
                if let Some(why) = ended {
                    break Some(why);
                }
            }
            "stop" => break None,
            // Events this version does not know: passed over.
            _ => {}
        }
    };
    if let Some(why) = &ended_by_error {
        let _ = socket.send(fail(why.clone())).await;
    }
    if let Some(mut s) = started
        && let Some(call) = s.call.take()
    {
        let (last_verdicts, mut final_message) = stream::finish(&scanner, call).await;
        for message in last_verdicts {
            let _ = emit(&mut socket, webhook.as_ref(), &mut s, message).await;
        }
        final_message["media_messages"] = json!(s.media_messages);
        if let Some(why) = ended_by_error {
            final_message["ended_by"] = json!(why);
        }
        let _ = emit(&mut socket, webhook.as_ref(), &mut s, final_message).await;
    }
    let _ = socket.send(Message::Close(None)).await;
}
