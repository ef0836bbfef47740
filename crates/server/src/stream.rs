//! Live calls: `GET /v1/stream?encoding=mulaw&rate=8000` upgrades to a WebSocket; the client
//! sends the call's audio as binary frames (16-bit little-endian PCM, or G.711 µ-law / A-law,
//! at 8 or 16 kHz, as telephony gateways send it) and the server answers with JSON text
//! frames:
//!
//! - `{"type": "ready", ...}` once, with what the server understood;
//! - `{"type": "verdict", "t_s", "window", "verdict", "probability_synthetic", "windows", ...}`
//!   first when 2 s of audio have arrived, then after every further second: the latest window
//!   (the last 4 s, or all there is) and the rolling verdict over every window so far;
//! - with `claimed=VOICEPRINT` (an id or a name of the caller's), `{"type": "speaker",
//!   "t_s", "speaker", "claim"}` at 5, 10, 20 and 40 s of audio and every 30 s after: the
//!   speaker check over the last 30 s against that voiceprint, and the joint answer with the
//!   rolling verdict (a clone of the person, consistent with the person, not the person, or
//!   cannot say);
//! - `{"type": "final", ...}` when the client sends `{"type": "end"}` or closes (with the last
//!   `speaker` and `claim` when a voiceprint was claimed).
//!
//! The rolling score is the mean logit of the windows scored so far, calibrated by the same
//! card as files. Each window is judged on its own 4 s of audio, so a stream's windows can
//! differ slightly from a file scan's (which normalises features over the whole recording).

use aqiqat_intake::resample::MonoResampler;
use aqiqat_scan::Scanner;
use aqiqat_voice::detector::{MIN_VERDICT_SPEECH_SECONDS, ReasonCode, Verdict};
use axum::extract::ws::{Message, WebSocket};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

/// Analysis window, and the first verdict's delay.
const WINDOW_S: f64 = 4.0;
const FIRST_S: f64 = 2.0;
const HOP_S: f64 = 1.0;
/// The longest call a stream accepts (the same bound as an upload's duration is not known
/// up front): 4 hours.
const MAX_CALL_S: f64 = 4.0 * 3600.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    PcmS16le,
    Mulaw,
    Alaw,
}

#[derive(Debug, Deserialize)]
pub struct StreamQuery {
    pub encoding: Option<Encoding>,
    pub rate: Option<u32>,
    /// A voiceprint (id or name) the caller is claimed to be.
    pub claimed: Option<String>,
}

pub struct CallSettings {
    pub encoding: Encoding,
    pub rate: u32,
}

/// The audio the speaker check hears: the last [`SPEAKER_SPAN_S`] at the encoder's rate.
const SPEAKER_SPAN_S: f64 = 30.0;

/// When the speaker check runs: at these seconds of audio, then every 30 s.
fn next_speaker_check(after_s: f64) -> f64 {
    [5.0, 10.0, 20.0, 40.0]
        .into_iter()
        .find(|&t| t > after_s)
        .unwrap_or(after_s + 30.0)
}

struct SpeakerTrack {
    claimed: aqiqat_scan::ClaimedVoice,
    resampler: Option<MonoResampler>,
    recent: Vec<f32>,
    heard: u64,
    next_check_s: f64,
    checked_at: u64,
    last: Option<aqiqat_scan::SpeakerFinding>,
}

impl StreamQuery {
    pub fn settings(&self) -> Result<CallSettings, String> {
        let encoding = self.encoding.unwrap_or(Encoding::PcmS16le);
        let rate = self.rate.unwrap_or(8000);
        if rate != 8000 && rate != 16000 {
            return Err(format!("rate {rate}: choose 8000 or 16000"));
        }
        Ok(CallSettings { encoding, rate })
    }
}

/// ITU-T G.711 µ-law to linear, scaled to [-1, 1].
fn mulaw(byte: u8) -> f32 {
    let b = !byte;
    let sign = b & 0x80;
    let exponent = (b >> 4) & 0x07;
    let mantissa = b & 0x0f;
    let magnitude = ((i32::from(mantissa) << 3) + 0x84) << exponent;
    let value = magnitude - 0x84;
    (if sign != 0 { -value } else { value }) as f32 / 32768.0
}

/// ITU-T G.711 A-law to linear, scaled to [-1, 1].
fn alaw(byte: u8) -> f32 {
    let a = byte ^ 0x55;
    let sign = a & 0x80;
    let exponent = (a >> 4) & 0x07;
    let mantissa = i32::from(a & 0x0f);
    let magnitude = if exponent == 0 {
        (mantissa << 4) + 8
    } else {
        ((mantissa << 4) + 0x108) << (exponent - 1)
    };
    (if sign != 0 { magnitude } else { -magnitude }) as f32 / 32768.0
}

/// One call's state: decoding, resampling to the analysis rate, and the windows so far.
pub struct Call {
    settings: CallSettings,
    resampler: Option<MonoResampler>,
    /// A PCM byte left over from an odd-sized frame.
    carry: Option<u8>,
    /// The last `WINDOW_S` seconds at the analysis rate.
    recent: Vec<f32>,
    /// Samples at the analysis rate received so far.
    total: u64,
    next_emit: u64,
    logits: Vec<f64>,
    /// The most speech any counted window held: a verdict needs
    /// `MIN_VERDICT_SPEECH_SECONDS` of it in one window.
    most_speech_s: f64,
    /// Windows left out because they were unfit to judge (music, two voices, noise).
    refused: usize,
    /// The last reason a window was left out for.
    last_refusal: Option<(ReasonCode, String)>,
    scratch: Vec<f32>,
    analysis_rate: u32,
    speaker: Option<SpeakerTrack>,
}

impl Call {
    /// A call whose audio is analysed at `analysis_rate` (the detector's).
    pub fn new(settings: CallSettings, analysis_rate: u32) -> Result<Self, String> {
        let resampler = if settings.rate == analysis_rate {
            None
        } else {
            Some(MonoResampler::live(settings.rate, analysis_rate)?)
        };
        Ok(Self {
            settings,
            resampler,
            carry: None,
            recent: Vec::new(),
            total: 0,
            next_emit: (FIRST_S * f64::from(analysis_rate)) as u64,
            analysis_rate,
            logits: Vec::new(),
            most_speech_s: 0.0,
            refused: 0,
            last_refusal: None,
            scratch: Vec::new(),
            speaker: None,
        })
    }

    /// Also checks the voice against `claimed` as the call goes.
    pub fn claiming(mut self, claimed: aqiqat_scan::ClaimedVoice) -> Result<Self, String> {
        let rate = aqiqat_scan::aqiqat_speaker::SAMPLE_RATE;
        let resampler = if self.settings.rate == rate {
            None
        } else {
            Some(MonoResampler::live(self.settings.rate, rate)?)
        };
        self.speaker = Some(SpeakerTrack {
            claimed,
            resampler,
            recent: Vec::new(),
            heard: 0,
            next_check_s: next_speaker_check(0.0),
            checked_at: 0,
            last: None,
        });
        Ok(self)
    }

    /// The speaker check's audio when a check is due (`at_end`: the call is over and the last
    /// check did not hear all of it).
    fn speaker_due(&mut self, at_end: bool) -> Option<Vec<f32>> {
        let track = self.speaker.as_mut()?;
        let rate = f64::from(aqiqat_scan::aqiqat_speaker::SAMPLE_RATE);
        let due = if at_end {
            track.heard > track.checked_at
        } else {
            track.heard as f64 >= track.next_check_s * rate
        };
        if !due {
            return None;
        }
        track.next_check_s = next_speaker_check(track.heard as f64 / rate);
        track.checked_at = track.heard;
        Some(track.recent.clone())
    }

    pub fn seconds(&self) -> f64 {
        self.total as f64 / f64::from(self.analysis_rate)
    }

    /// Adds a frame of encoded audio; returns the windows (audio at the analysis rate, and
    /// the time they end at) that became due, oldest first.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<(f64, Vec<f32>)>, String> {
        self.scratch.clear();
        match self.settings.encoding {
            Encoding::Mulaw => self.scratch.extend(bytes.iter().map(|&b| mulaw(b))),
            Encoding::Alaw => self.scratch.extend(bytes.iter().map(|&b| alaw(b))),
            Encoding::PcmS16le => {
                let mut bytes = bytes;
                if let Some(low) = self.carry.take() {
                    if let Some((&high, rest)) = bytes.split_first() {
                        self.scratch
                            .push(f32::from(i16::from_le_bytes([low, high])) / 32768.0);
                        bytes = rest;
                    } else {
                        self.carry = Some(low);
                    }
                }
                let mut pairs = bytes.chunks_exact(2);
                self.scratch.extend(
                    pairs
                        .by_ref()
                        .map(|p| f32::from(i16::from_le_bytes([p[0], p[1]])) / 32768.0),
                );
                if let [last] = pairs.remainder() {
                    self.carry = Some(*last);
                }
            }
        }
        if let Some(track) = self.speaker.as_mut() {
            let before = track.recent.len();
            match track.resampler.as_mut() {
                Some(r) => r.push(&self.scratch, &mut track.recent),
                None => track.recent.extend_from_slice(&self.scratch),
            }
            track.heard += (track.recent.len() - before) as u64;
            let span =
                (SPEAKER_SPAN_S * f64::from(aqiqat_scan::aqiqat_speaker::SAMPLE_RATE)) as usize;
            if track.recent.len() > span + span / 2 {
                let excess = track.recent.len() - span;
                track.recent.drain(..excess);
            }
        }
        let mut at_rate = Vec::new();
        match self.resampler.as_mut() {
            Some(r) => r.push(&self.scratch, &mut at_rate),
            None => at_rate.extend_from_slice(&self.scratch),
        }
        let due = self.windows(&at_rate);
        if self.seconds() > MAX_CALL_S {
            return Err(format!("the call is longer than {MAX_CALL_S} s"));
        }
        Ok(due)
    }

    /// The call is over: the audio the resampler still holds (its last block and filter
    /// delay) is let out, and the windows it completes are returned as [`Self::push`] would.
    pub fn flush(&mut self) -> Vec<(f64, Vec<f32>)> {
        let mut at_rate = Vec::new();
        if let Some(r) = self.resampler.as_mut() {
            r.finish(&mut at_rate);
        }
        self.windows(&at_rate)
    }

    /// Appends audio at the analysis rate; the windows that became due.
    fn windows(&mut self, at_rate: &[f32]) -> Vec<(f64, Vec<f32>)> {
        let mut due = Vec::new();
        let window = (WINDOW_S * f64::from(self.analysis_rate)) as usize;
        let hop = (HOP_S * f64::from(self.analysis_rate)) as u64;
        let mut rest = at_rate;
        while !rest.is_empty() {
            // Feed up to the next emission point, so each window ends exactly on it.
            let room = (self.next_emit - self.total) as usize;
            let take = room.min(rest.len());
            self.recent.extend_from_slice(&rest[..take]);
            self.total += take as u64;
            rest = &rest[take..];
            if self.recent.len() > window {
                let excess = self.recent.len() - window;
                self.recent.drain(..excess);
            }
            if self.total == self.next_emit {
                due.push((self.seconds(), self.recent.clone()));
                self.next_emit += hop;
            }
        }
        due
    }
}

/// The JSON for one analysed window, and the rolling verdict after it. A window is judged as a
/// file would be: one that is music, two voices at once or too noisy is left out of the
/// rolling score, with its reason.
fn verdict_message(
    scanner: &Scanner,
    call: &mut Call,
    end_s: f64,
    samples: &[f32],
) -> Result<serde_json::Value, String> {
    let detector = scanner.voice();
    let finding = detector.scan(samples).map_err(|e| e.to_string())?;
    let start_s = end_s - samples.len() as f64 / f64::from(detector.sample_rate());
    let unfit = finding.reason_code.is_some_and(ReasonCode::is_condition);
    let window = match finding.score {
        Some(logit) if !unfit => {
            call.logits.push(logit);
            call.most_speech_s = call.most_speech_s.max(finding.speech_s);
            json!({"start_s": start_s, "end_s": end_s, "probability_synthetic": detector.probability(logit), "speech_s": finding.speech_s})
        }
        _ => {
            if let (true, Some(code), Some(why)) = (unfit, finding.reason_code, &finding.reason) {
                call.refused += 1;
                call.last_refusal = Some((code, why.clone()));
            }
            json!({"start_s": start_s, "end_s": end_s, "probability_synthetic": null, "speech_s": finding.speech_s, "reason": finding.reason, "reason_code": finding.reason_code})
        }
    };
    let mut message = rolling(scanner, call, "verdict");
    message["t_s"] = json!(end_s);
    message["window"] = window;
    Ok(message)
}

/// The rolling verdict over every window counted so far.
struct Rolling {
    verdict: Verdict,
    probability: Option<f64>,
    reason: Option<String>,
    code: Option<ReasonCode>,
}

fn rolling_verdict(scanner: &Scanner, call: &Call) -> Rolling {
    let detector = scanner.voice();
    let undecided = |code: ReasonCode, reason: String| Rolling {
        verdict: Verdict::Inconclusive,
        probability: None,
        reason: Some(reason),
        code: Some(code),
    };
    if call.logits.is_empty() {
        return match &call.last_refusal {
            Some((code, why)) => undecided(*code, why.clone()),
            None => undecided(
                ReasonCode::TooLittleSpeech,
                "no window with enough speech yet".into(),
            ),
        };
    }
    if call.most_speech_s < MIN_VERDICT_SPEECH_SECONDS {
        return undecided(
            ReasonCode::TooLittleSpeech,
            format!(
                "at most {:.2} s of speech in a window so far; {MIN_VERDICT_SPEECH_SECONDS:.1} s is needed",
                call.most_speech_s
            ),
        );
    }
    let mean = call.logits.iter().sum::<f64>() / call.logits.len() as f64;
    let p = detector.probability(mean);
    let verdict = detector.verdict(p);
    let (reason, code) = match verdict {
        Verdict::Human => (
            Some(detector.no_sign_found()),
            Some(ReasonCode::NoSignFound),
        ),
        Verdict::Inconclusive => (None, Some(ReasonCode::BetweenThresholds)),
        Verdict::Synthetic => (None, None),
    };
    Rolling {
        verdict,
        probability: Some(p),
        reason,
        code,
    }
}

/// The rolling verdict as a message of type `kind` (`verdict`, `final`).
fn rolling(scanner: &Scanner, call: &Call, kind: &str) -> serde_json::Value {
    rolling_message(&rolling_verdict(scanner, call), call, kind)
}

fn rolling_message(r: &Rolling, call: &Call, kind: &str) -> serde_json::Value {
    json!({"type": kind, "verdict": r.verdict, "probability_synthetic": r.probability,
        "reason": r.reason, "reason_code": r.code, "windows": call.logits.len(),
        "refused_windows": call.refused, "audio_s": call.seconds()})
}

/// The joint answer for `speaker` with the rolling verdict.
fn joint(speaker: &aqiqat_scan::SpeakerFinding, rolling: &Rolling) -> aqiqat_scan::Claim {
    aqiqat_scan::speaker::claim(speaker, rolling.verdict, rolling.reason.as_deref())
}

/// Runs the speaker check on `audio` off the async threads; the message, and the call back.
async fn speaker_message(
    scanner: &Arc<Scanner>,
    mut call: Call,
    audio: Vec<f32>,
) -> (Call, serde_json::Value) {
    let scanner = Arc::clone(scanner);
    tokio::task::spawn_blocking(move || {
        let track = call
            .speaker
            .as_mut()
            .expect("a speaker check is due only with a claim");
        let message = match scanner.check_speaker(&audio, &track.claimed) {
            Ok(finding) => {
                track.last = Some(finding.clone());
                let rolling = rolling_verdict(&scanner, &call);
                json!({"type": "speaker", "t_s": call.seconds(), "speaker": finding,
                    "claim": joint(&finding, &rolling)})
            }
            Err(e) => error_json(&e.to_string()),
        };
        (call, message)
    })
    .await
    .expect("the speaker check does not panic")
}

fn error_json(message: &str) -> serde_json::Value {
    json!({"type": "error", "message": message})
}

/// The message a call gets when something it sent cannot be used.
fn error_frame(message: &str) -> Message {
    Message::Text(error_json(message).to_string().into())
}

/// A call that sends nothing for this long has gone (a client that vanished without closing
/// leaves no session behind).
pub const IDLE_S: u64 = 20;

/// What one piece of audio gave: the call back, the messages due (oldest first), and the
/// reason the call must end, if it must.
pub(crate) async fn feed(
    scanner: &Arc<Scanner>,
    mut call: Call,
    bytes: &[u8],
) -> (Call, Vec<serde_json::Value>, Option<String>) {
    let due = match call.push(bytes) {
        Ok(d) => d,
        Err(e) => return (call, Vec::new(), Some(e)),
    };
    let (mut call, mut messages) = analyse_windows(scanner, call, due).await;
    if let Some(audio) = call.speaker_due(false) {
        let (back, message) = speaker_message(scanner, call, audio).await;
        call = back;
        messages.push(message);
    }
    (call, messages, None)
}

/// Each due window's verdict message, in order; the call comes back.
async fn analyse_windows(
    scanner: &Arc<Scanner>,
    mut call: Call,
    due: Vec<(f64, Vec<f32>)>,
) -> (Call, Vec<serde_json::Value>) {
    let mut messages = Vec::new();
    for (end_s, samples) in due {
        let scanner_for_job = Arc::clone(scanner);
        // The model is CPU work: off the async threads. The call's state moves along and
        // comes back.
        let (back, result) = tokio::task::spawn_blocking(move || {
            let r = verdict_message(&scanner_for_job, &mut call, end_s, &samples);
            (call, r)
        })
        .await
        .expect("the analysis task does not panic");
        call = back;
        messages.push(result.unwrap_or_else(|e| error_json(&e)));
    }
    (call, messages)
}

/// The call's last messages: the verdicts of windows completed by the audio the resampler
/// still held, then the final message, the rolling verdict over all of it, with the last
/// speaker check (run once more if audio arrived after the last one).
pub(crate) async fn finish(
    scanner: &Arc<Scanner>,
    mut call: Call,
) -> (Vec<serde_json::Value>, serde_json::Value) {
    let due = call.flush();
    let (mut call, last_verdicts) = analyse_windows(scanner, call, due).await;
    if let Some(audio) = call.speaker_due(true) {
        let (back, _) = speaker_message(scanner, call, audio).await;
        call = back;
    }
    let verdict = rolling_verdict(scanner, &call);
    let mut final_message = rolling_message(&verdict, &call, "final");
    if let Some(finding) = call.speaker.as_ref().and_then(|t| t.last.as_ref()) {
        final_message["speaker"] = json!(finding);
        final_message["claim"] = json!(joint(finding, &verdict));
    }
    (last_verdicts, final_message)
}

/// The next message, or `None` when the client closed, broke off or went quiet.
pub(crate) async fn next_message(socket: &mut WebSocket) -> Option<Message> {
    match tokio::time::timeout(std::time::Duration::from_secs(IDLE_S), socket.recv()).await {
        Ok(Some(Ok(message))) => Some(message),
        _ => None,
    }
}

/// Counts a call while it lasts, so that `/metrics` shows sessions that never ended.
pub struct Active(Arc<std::sync::atomic::AtomicU64>);

impl Active {
    pub fn enter(counter: &Arc<std::sync::atomic::AtomicU64>) -> Self {
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Self(Arc::clone(counter))
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Runs one call until the client ends it.
pub async fn run(
    mut socket: WebSocket,
    scanner: Arc<Scanner>,
    settings: CallSettings,
    claimed: Option<aqiqat_scan::ClaimedVoice>,
    _active: Active,
) {
    let ready = json!({"type": "ready", "encoding": settings.encoding_name(), "rate": settings.rate,
        "analysis_rate": scanner.voice().sample_rate(), "window_s": WINDOW_S, "first_s": FIRST_S, "hop_s": HOP_S,
        "model": scanner.voice().id()});
    let claimed_ref = claimed
        .as_ref()
        .map(|c| json!({"id": c.id, "name": c.name}));
    let call = Call::new(settings, scanner.voice().sample_rate()).and_then(|call| match claimed {
        Some(c) => call.claiming(c),
        None => Ok(call),
    });
    let mut ready = ready;
    ready["claimed"] = json!(claimed_ref);
    let mut call = match call {
        Ok(c) => c,
        Err(e) => {
            let _ = socket.send(error_frame(&e)).await;
            return;
        }
    };
    if socket
        .send(Message::Text(ready.to_string().into()))
        .await
        .is_err()
    {
        return;
    }
    // A gateway's own metadata (FreeSWITCH's mod_audio_fork sends a JSON object first); the
    // last one is returned with the final verdict.
    let mut metadata = None;
    while let Some(message) = next_message(&mut socket).await {
        match message {
            Message::Binary(bytes) => {
                let (back, messages, ended) = feed(&scanner, call, &bytes).await;
                call = back;
                for m in messages {
                    if socket
                        .send(Message::Text(m.to_string().into()))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                if let Some(e) = ended {
                    let _ = socket.send(error_frame(&e)).await;
                    break;
                }
            }
            Message::Text(text) => match serde_json::from_str::<serde_json::Value>(&text) {
                Ok(v) if v["type"] == "end" => break,
                Ok(v) if v.is_object() => metadata = Some(v),
                _ => {
                    let _ = socket
                        .send(error_frame(
                            "a text message must be a JSON object: {\"type\": \"end\"}, or the gateway's metadata",
                        ))
                        .await;
                }
            },
            Message::Close(_) => break,
            _ => {}
        }
    }
    let (last_verdicts, mut final_message) = finish(&scanner, call).await;
    for message in last_verdicts {
        let _ = socket.send(Message::Text(message.to_string().into())).await;
    }
    if let Some(m) = metadata {
        final_message["metadata"] = m;
    }
    let _ = socket
        .send(Message::Text(final_message.to_string().into()))
        .await;
    let _ = socket.send(Message::Close(None)).await;
}

impl CallSettings {
    fn encoding_name(&self) -> &'static str {
        match self.encoding {
            Encoding::PcmS16le => "pcm_s16le",
            Encoding::Mulaw => "mulaw",
            Encoding::Alaw => "alaw",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g711_matches_the_standard_table_points() {
        // µ-law: 0xFF and 0x7F are the two zeros, 0x00 the most negative, 0x80 the most positive.
        assert_eq!(mulaw(0xFF), 0.0);
        assert_eq!(mulaw(0x7F), 0.0);
        assert_eq!(mulaw(0x00), -32124.0 / 32768.0);
        assert_eq!(mulaw(0x80), 32124.0 / 32768.0);
        // A-law: 0xD5 and 0x55 are the smallest magnitudes (±8), 0xAA / 0x2A the largest.
        assert_eq!(alaw(0xD5), 8.0 / 32768.0);
        assert_eq!(alaw(0x55), -8.0 / 32768.0);
        assert_eq!(alaw(0xAA), 32256.0 / 32768.0);
        assert_eq!(alaw(0x2A), -32256.0 / 32768.0);
    }

    #[test]
    fn windows_fall_due_at_two_seconds_then_every_second_whatever_the_framing() {
        let settings = |rate| CallSettings {
            encoding: Encoding::PcmS16le,
            rate,
        };
        for frame in [1usize, 160, 333, 8000] {
            let mut call = Call::new(settings(8000), 8000).unwrap();
            let audio = vec![0u8; 8000 * 2 * 6];
            let mut times = Vec::new();
            for chunk in audio.chunks(frame) {
                for (t, samples) in call.push(chunk).unwrap() {
                    assert_eq!(samples.len(), ((t.min(4.0)) * 8000.0) as usize);
                    times.push(t);
                }
            }
            assert_eq!(times, vec![2.0, 3.0, 4.0, 5.0, 6.0], "frame {frame}");
        }
        // Through a resampler (a 16 kHz call to an 8 kHz detector, an 8 kHz call to a
        // 16 kHz one) the windows reach the same points, each within 30 ms of the audio that
        // completes it (a frame and the filter's delay), and the last one, which the
        // resampler still holds when the call ends, comes out at the end.
        for (call_rate, analysis_rate) in [(16000u32, 8000u32), (8000, 16000)] {
            let mut call = Call::new(settings(call_rate), analysis_rate).unwrap();
            let frame = call_rate as usize / 50 * 2;
            let audio = vec![0u8; call_rate as usize * 2 * 6];
            let mut times = Vec::new();
            for (i, chunk) in audio.chunks(frame).enumerate() {
                let heard_s = (i + 1) as f64 * 0.02;
                for (t, samples) in call.push(chunk).unwrap() {
                    assert!(heard_s - t <= 0.03, "{call_rate}: {t} s due at {heard_s} s");
                    assert_eq!(
                        samples.len(),
                        (t.min(4.0) * f64::from(analysis_rate)) as usize
                    );
                    times.push(t);
                }
            }
            assert_eq!(
                times,
                vec![2.0, 3.0, 4.0, 5.0],
                "{call_rate} -> {analysis_rate}"
            );
            let last: Vec<f64> = call.flush().into_iter().map(|(t, _)| t).collect();
            assert_eq!(last, vec![6.0], "{call_rate} -> {analysis_rate}");
            assert!(call.flush().is_empty());
        }
    }
}
