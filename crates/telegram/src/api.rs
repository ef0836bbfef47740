//! The Telegram Bot API, as much of it as the bot uses: `getUpdates`, `getFile` and file
//! downloads, `sendMessage`, `sendDocument`, `sendPhoto`. JSON requests over HTTPS (or plain
//! HTTP to a self-hosted Bot API server or the tests' stand-in). The token is part of every
//! URL, so no error, log line or panic message here carries a URL: [`ApiError`] is built
//! from the method's name and Telegram's own words only.

use serde_json::{Value, json};
use std::time::Duration;

/// The official Bot API.
pub const TELEGRAM_API: &str = "https://api.telegram.org";

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// `429`: Telegram asks the bot to wait this many seconds.
    #[error("{method}: Telegram asks to wait {seconds} s")]
    RetryAfter { method: String, seconds: u64 },
    /// Telegram answered, and refused.
    #[error("{method}: Telegram answered {code}: {description}")]
    Refused {
        method: String,
        code: u16,
        description: String,
    },
    /// No answer, or one that was not the Bot API's.
    #[error("{method}: {reason}")]
    Network { method: String, reason: String },
    #[error("the file is larger than {0} bytes")]
    TooLarge(u64),
}

impl ApiError {
    /// Worth trying again after a pause.
    pub fn is_transient(&self) -> bool {
        match self {
            ApiError::RetryAfter { .. } | ApiError::Network { .. } => true,
            ApiError::Refused { code, .. } => *code >= 500,
            ApiError::TooLarge(_) => false,
        }
    }
}

pub struct BotApi {
    base: String,
    token: String,
    agent: ureq::Agent,
}

impl BotApi {
    /// A client of the Bot API at `api_url` (no trailing slash needed) with this token.
    pub fn new(api_url: &str, token: String) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(90)))
            .build()
            .into();
        Self {
            base: api_url.trim_end_matches('/').to_owned(),
            token,
            agent,
        }
    }

    fn url(&self, method: &str) -> String {
        format!("{}/bot{}/{method}", self.base, self.token)
    }

    fn network(&self, method: &str, e: impl std::fmt::Display) -> ApiError {
        // A message may quote the URL, which holds the token.
        let reason = e.to_string().replace(&self.token, "<token>");
        ApiError::Network {
            method: method.to_owned(),
            reason,
        }
    }

    /// Reads the Bot API's envelope: `{"ok": true, "result": …}` or the error with its
    /// `retry_after`.
    fn answer(method: &str, status: u16, body: &[u8]) -> Result<Value, ApiError> {
        let v: Value = serde_json::from_slice(body).map_err(|_| ApiError::Network {
            method: method.to_owned(),
            reason: format!("an answer that is not the Bot API's (HTTP {status})"),
        })?;
        if v["ok"] == true {
            return Ok(v["result"].clone());
        }
        if let Some(seconds) = v["parameters"]["retry_after"].as_u64() {
            return Err(ApiError::RetryAfter {
                method: method.to_owned(),
                seconds,
            });
        }
        Err(ApiError::Refused {
            method: method.to_owned(),
            code: v["error_code"].as_u64().unwrap_or(u64::from(status)) as u16,
            description: v["description"].as_str().unwrap_or_default().to_owned(),
        })
    }

    /// POSTs `body` to `method` and reads the Bot API's answer (at most `limit` bytes).
    fn post(
        &self,
        method: &str,
        content_type: &str,
        body: &[u8],
        limit: u64,
    ) -> Result<Value, ApiError> {
        let mut response = self
            .agent
            .post(&self.url(method))
            .header("Content-Type", content_type)
            .send(body)
            .map_err(|e| self.network(method, e))?;
        let status = response.status().as_u16();
        let answer = response
            .body_mut()
            .with_config()
            .limit(limit)
            .read_to_vec()
            .map_err(|e| self.network(method, e))?;
        Self::answer(method, status, &answer)
    }

    /// Calls `method` with JSON parameters.
    pub fn call(&self, method: &str, params: &Value) -> Result<Value, ApiError> {
        self.post(
            method,
            "application/json",
            params.to_string().as_bytes(),
            16 << 20,
        )
    }

    /// Updates from `offset` on, waiting up to `poll_s` seconds for one (long polling).
    pub fn get_updates(&self, offset: i64, poll_s: u64) -> Result<Vec<Value>, ApiError> {
        let result = self.call(
            "getUpdates",
            &json!({"offset": offset, "timeout": poll_s, "allowed_updates": ["message"]}),
        )?;
        Ok(result.as_array().cloned().unwrap_or_default())
    }

    /// Downloads a file the bot was sent, refusing one larger than `max_bytes`.
    pub fn download(&self, file_id: &str, max_bytes: u64) -> Result<Vec<u8>, ApiError> {
        let file = self.call("getFile", &json!({"file_id": file_id}))?;
        if file["file_size"].as_u64().is_some_and(|n| n > max_bytes) {
            return Err(ApiError::TooLarge(max_bytes));
        }
        let path = file["file_path"]
            .as_str()
            .ok_or_else(|| ApiError::Network {
                method: "getFile".into(),
                reason: "no file_path in the answer".into(),
            })?;
        let url = format!("{}/file/bot{}/{path}", self.base, self.token);
        let mut response = self
            .agent
            .get(&url)
            .call()
            .map_err(|e| self.network("download", e))?;
        let status = response.status().as_u16();
        if status == 429 || status >= 500 {
            return Err(ApiError::Network {
                method: "download".into(),
                reason: format!("HTTP {status}"),
            });
        }
        if status != 200 {
            return Err(ApiError::Refused {
                method: "download".into(),
                code: status,
                description: "the file could not be downloaded".into(),
            });
        }
        response
            .body_mut()
            .with_config()
            .limit(max_bytes)
            .read_to_vec()
            .map_err(|e| match e {
                ureq::Error::BodyExceedsLimit(_) => ApiError::TooLarge(max_bytes),
                other => self.network("download", other),
            })
    }

    pub fn send_message(
        &self,
        chat_id: i64,
        text: &str,
        reply_to: Option<i64>,
    ) -> Result<(), ApiError> {
        let mut params = json!({"chat_id": chat_id, "text": text,
            "link_preview_options": {"is_disabled": true}});
        if let Some(id) = reply_to {
            params["reply_parameters"] =
                json!({"message_id": id, "allow_sending_without_reply": true});
        }
        self.call("sendMessage", &params).map(|_| ())
    }

    /// Sends a file: `field` is `document` (`sendDocument`) or `photo` (`sendPhoto`).
    pub fn send_file(
        &self,
        chat_id: i64,
        field: &str,
        file_name: &str,
        content_type: &str,
        bytes: &[u8],
        caption: Option<&str>,
    ) -> Result<(), ApiError> {
        let method = if field == "photo" {
            "sendPhoto"
        } else {
            "sendDocument"
        };
        let mut boundary = [0u8; 12];
        getrandom::fill(&mut boundary).map_err(|e| self.network(method, e))?;
        let boundary = format!("aqiqat{}", hex::encode(boundary));
        let mut body = Vec::with_capacity(bytes.len() + 512);
        let mut text_part = |name: &str, value: &str| {
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
                )
                .as_bytes(),
            );
        };
        text_part("chat_id", &chat_id.to_string());
        if let Some(c) = caption {
            text_part("caption", c);
        }
        let safe_name: String = file_name
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c))
            .collect();
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{safe_name}\"\r\nContent-Type: {content_type}\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        self.post(
            method,
            &format!("multipart/form-data; boundary={boundary}"),
            &body,
            1 << 20,
        )
        .map(|_| ())
    }
}

/// Runs `call` until it succeeds or fails for good: Telegram's `retry_after` is honoured (at
/// most a minute at a time), other transient failures back off 1, 2, 4, 8, 16 s; after
/// `attempts` tries the last error is returned.
pub fn with_retries<T>(
    attempts: u32,
    mut call: impl FnMut() -> Result<T, ApiError>,
    mut wait: impl FnMut(Duration),
) -> Result<T, ApiError> {
    let mut backoff = Duration::from_secs(1);
    let mut tried = 0;
    loop {
        tried += 1;
        match call() {
            Ok(v) => return Ok(v),
            Err(e) if e.is_transient() && tried < attempts => {
                let pause = match &e {
                    ApiError::RetryAfter { seconds, .. } => Duration::from_secs((*seconds).min(60)),
                    _ => backoff,
                };
                tracing::warn!("{e}; trying again in {pause:?}");
                wait(pause);
                backoff = (backoff * 2).min(Duration::from_secs(16));
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_envelope_is_read_with_its_retry_after() {
        assert_eq!(
            BotApi::answer("m", 200, br#"{"ok":true,"result":[1]}"#).unwrap(),
            json!([1])
        );
        match BotApi::answer(
            "m",
            429,
            br#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 7","parameters":{"retry_after":7}}"#,
        ) {
            Err(ApiError::RetryAfter { seconds: 7, .. }) => {}
            other => panic!("{other:?}"),
        }
        match BotApi::answer(
            "m",
            400,
            br#"{"ok":false,"error_code":400,"description":"Bad Request: file is too big"}"#,
        ) {
            Err(e @ ApiError::Refused { code: 400, .. }) => assert!(!e.is_transient()),
            other => panic!("{other:?}"),
        }
        assert!(
            BotApi::answer("m", 502, b"<html>bad gateway</html>")
                .unwrap_err()
                .is_transient()
        );
    }

    #[test]
    fn retries_honour_retry_after_and_back_off_then_give_up() {
        let mut waits = Vec::new();
        let mut n = 0;
        let got = with_retries(
            5,
            || {
                n += 1;
                match n {
                    1 => Err(ApiError::RetryAfter {
                        method: "m".into(),
                        seconds: 3,
                    }),
                    2 | 3 => Err(ApiError::Network {
                        method: "m".into(),
                        reason: "reset".into(),
                    }),
                    _ => Ok(n),
                }
            },
            |d| waits.push(d.as_secs()),
        );
        assert_eq!(got.unwrap(), 4);
        assert_eq!(waits, vec![3, 2, 4]);
        let mut tries = 0;
        let failed: Result<(), _> = with_retries(
            3,
            || {
                tries += 1;
                Err(ApiError::Network {
                    method: "m".into(),
                    reason: "down".into(),
                })
            },
            |_| {},
        );
        assert!(failed.is_err());
        assert_eq!(tries, 3);
        let mut tries = 0;
        let refused: Result<(), _> = with_retries(
            3,
            || {
                tries += 1;
                Err(ApiError::Refused {
                    method: "m".into(),
                    code: 403,
                    description: "blocked".into(),
                })
            },
            |_| {},
        );
        assert!(refused.is_err());
        assert_eq!(tries, 1, "a refusal is final");
    }
}
