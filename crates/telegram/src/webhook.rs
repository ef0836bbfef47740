//! Webhook mode, for a bot on a server with a public address: Telegram POSTs each update to
//! `--webhook URL` (HTTPS, normally a reverse proxy in front of `--listen ADDR`) instead of
//! the bot asking for updates.
//!
//! The guarantees are long polling's. A request is answered `200` only once its update is
//! handled and its answers are in the outbox (the same transaction as in polling); anything
//! else (a crash, a stop, a store that cannot be written) leaves the request unanswered or
//! answered `503`, and Telegram delivers the update again. Because deliveries come several at
//! once and repeat, each handled update's id is kept and a repeat is acknowledged without a
//! second answer (see `crate::store`).
//!
//! Only Telegram can call the route: `setWebhook` is given a secret made anew at every start,
//! Telegram sends it back in `X-Telegram-Bot-Api-Secret-Token`, and a request without it is
//! refused before its body is read.

use crate::api::with_retries;
use crate::bot::Bot;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// Telegram's header carrying the secret given to `setWebhook`.
const SECRET_HEADER: &str = "x-telegram-bot-api-secret-token";

/// An update is a few kilobytes; Telegram sends nothing near this.
const MAX_UPDATE_BYTES: usize = 1 << 20;

/// Simultaneous deliveries Telegram may make (its default): the ones beyond a chunk of
/// scans wait their turn, and files beyond the bot's queue bound are answered "busy".
const MAX_CONNECTIONS: u32 = 40;

/// How often answers left in the outbox by a transient failure are tried again when no
/// update comes.
const OUTBOX_RETRY: Duration = Duration::from_secs(30);

/// Where Telegram delivers updates and where the bot listens for them.
#[derive(Debug, Clone)]
pub struct Webhook {
    /// The public HTTPS address given to Telegram; its path is the route served.
    pub url: String,
    /// The local address served (behind a reverse proxy that terminates TLS).
    pub listen: SocketAddr,
}

impl Webhook {
    /// The route the bot serves: the public URL's path.
    pub fn route(&self) -> Result<String, String> {
        let rest = self.url.strip_prefix("https://").ok_or_else(|| {
            format!(
                "--webhook {}: Telegram delivers updates only to an https:// address",
                self.url
            )
        })?;
        let path = rest.find('/').map_or("/", |i| &rest[i..]);
        let path = path.split(['?', '#']).next().unwrap_or("/");
        Ok(if path.is_empty() { "/" } else { path }.to_owned())
    }
}

/// One update delivered, and the request waiting for it to be handled.
struct Delivery {
    update_id: i64,
    update: Value,
    handled: oneshot::Sender<()>,
}

struct Route {
    secret: String,
    deliveries: mpsc::Sender<Delivery>,
}

/// Registers the webhook with Telegram and answers what it delivers until `stop` is set or
/// the bot's store fails.
pub fn serve(mut bot: Bot, hook: &Webhook, stop: &AtomicBool) -> Result<(), String> {
    let path = hook.route()?;
    let listener = std::net::TcpListener::bind(hook.listen)
        .map_err(|e| format!("--listen {}: {e}", hook.listen))?;
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    let secret = new_secret()?;
    with_retries(
        5,
        || {
            bot.api().call(
                "setWebhook",
                &json!({
                    "url": hook.url,
                    "secret_token": secret,
                    "allowed_updates": ["message"],
                    "max_connections": MAX_CONNECTIONS,
                }),
            )
        },
        std::thread::sleep,
    )
    .map_err(|e| e.to_string())?;
    tracing::info!("webhook {} set; listening on {local}{path}", hook.url);
    eprintln!(
        "aqiqat telegram bot listening on {local}{path} for {}",
        hook.url
    );

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let (deliveries, waiting) = mpsc::channel();
    let route = std::sync::Arc::new(Route { secret, deliveries });
    let app = axum::Router::new()
        .route(&path, axum::routing::post(deliver))
        .layer(DefaultBodyLimit::max(MAX_UPDATE_BYTES))
        .with_state(route);
    // Set when the bot stops answering: the server stops with it, so that no request is
    // acknowledged that nobody handles.
    let halt = std::sync::Arc::new(AtomicBool::new(false));
    std::thread::scope(|scope| {
        let answering = scope.spawn(|| {
            let outcome = answer(&mut bot, waiting, stop);
            halt.store(true, Ordering::Relaxed);
            outcome
        });
        let halted = halt.clone();
        let served = runtime.block_on(async {
            let listener = tokio::net::TcpListener::from_std(listener)?;
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    while !halted.load(Ordering::Relaxed) {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                })
                .await
        });
        // A server that failed stops the bot too; a bot that stopped has stopped the server.
        if served.is_err() {
            stop.store(true, Ordering::Relaxed);
        }
        let answered = answering
            .join()
            .unwrap_or_else(|_| Err("the bot stopped unexpectedly".into()));
        served.map_err(|e| e.to_string())?;
        answered
    })
}

/// The route Telegram POSTs updates to.
async fn deliver(
    State(route): State<std::sync::Arc<Route>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let given = headers
        .get(SECRET_HEADER)
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    if !same_secret(given, route.secret.as_bytes()) {
        return StatusCode::UNAUTHORIZED;
    }
    let Ok(update) = serde_json::from_slice::<Value>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    let Some(update_id) = update["update_id"].as_i64() else {
        return StatusCode::BAD_REQUEST;
    };
    let (handled, answered) = oneshot::channel();
    let delivery = Delivery {
        update_id,
        update,
        handled,
    };
    if route.deliveries.send(delivery).is_err() {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    match answered.await {
        Ok(()) => StatusCode::OK,
        // Not handled (the bot is stopping): Telegram will deliver it again.
        Err(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// The bot's side: takes every delivery waiting, acknowledges repeats, answers the rest as
/// one batch (scanned a chunk at a time, answered in order), and tells each request when its
/// update is handled.
fn answer(
    bot: &mut Bot,
    waiting: mpsc::Receiver<Delivery>,
    stop: &AtomicBool,
) -> Result<(), String> {
    bot.deliver();
    let mut outbox_tried = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let first = match waiting.recv_timeout(Duration::from_millis(200)) {
            Ok(d) => d,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if outbox_tried.elapsed() > OUTBOX_RETRY {
                    bot.deliver();
                    outbox_tried = Instant::now();
                }
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        let mut batch = Vec::new();
        let mut requests: HashMap<i64, Vec<oneshot::Sender<()>>> = HashMap::new();
        for d in std::iter::once(first).chain(waiting.try_iter()) {
            if bot.was_handled(d.update_id)? {
                let _ = d.handled.send(());
                continue;
            }
            let waiters = requests.entry(d.update_id).or_default();
            if waiters.is_empty() {
                batch.push((d.update_id, d.update));
            }
            waiters.push(d.handled);
        }
        bot.answer_batch(&batch, stop, |id| {
            for request in requests.remove(&id).unwrap_or_default() {
                let _ = request.send(());
            }
        })?;
        outbox_tried = Instant::now();
    }
    Ok(())
}

/// Compares the whole secret whatever the first difference, so timing does not tell how
/// much of a guess was right.
fn same_secret(given: &[u8], secret: &[u8]) -> bool {
    given.len() == secret.len()
        && given
            .iter()
            .zip(secret)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// 32 random bytes in hex: within the characters Telegram allows in a secret token.
fn new_secret() -> Result<String, String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| format!("no randomness for the secret: {e}"))?;
    Ok(hex::encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_route_is_the_public_urls_path_and_only_https_is_accepted() {
        let hook = |url: &str| Webhook {
            url: url.into(),
            listen: "127.0.0.1:0".parse().unwrap(),
        };
        assert_eq!(
            hook("https://bot.example.org/aqiqat/tg?x=1")
                .route()
                .unwrap(),
            "/aqiqat/tg"
        );
        assert_eq!(hook("https://bot.example.org").route().unwrap(), "/");
        assert_eq!(hook("https://bot.example.org:8443/").route().unwrap(), "/");
        assert!(hook("http://bot.example.org/tg").route().is_err());
    }

    #[test]
    fn secrets_are_compared_whole() {
        let secret = new_secret().unwrap();
        assert_eq!(secret.len(), 64);
        assert_ne!(secret, new_secret().unwrap());
        assert!(same_secret(secret.as_bytes(), secret.as_bytes()));
        assert!(!same_secret(&secret.as_bytes()[..63], secret.as_bytes()));
        let mut wrong = secret.clone().into_bytes();
        wrong[63] ^= 1;
        assert!(!same_secret(&wrong, secret.as_bytes()));
        assert!(!same_secret(b"", secret.as_bytes()));
    }
}
