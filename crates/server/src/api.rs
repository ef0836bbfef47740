//! Routes. Every handler is a thin call into the crates that own the work; errors are JSON
//! `{"error": {"kind", "message"}}` with the status that fits (4xx: the request's fault).

// Helpers return the finished error response as their `Err`: that path is cold, and boxing
// every response would only add noise to every handler.
#![allow(clippy::result_large_err)]

use aqiqat_evidence::{Context, EvidenceError, Log, Signer25519};
use aqiqat_intake::Limits;
use aqiqat_report::{CaseView, Format, Lang, RecordView};
use aqiqat_scan::Scanner;
use axum::extract::{
    DefaultBodyLimit, Extension, FromRequest, Multipart, Path, Query, Request, State,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

use crate::jobs::{self, JobState, JobStore};

mod voiceprints;

/// Who is calling: the id of the API key presented, if any (set by [`authorise`]).
#[derive(Debug, Clone, Default)]
pub(crate) struct Caller(pub Option<String>);
use crate::worker::{self, Counters, Workers};

/// What `aqiqat serve` is started with.
#[derive(Debug, Clone)]
pub struct Config {
    pub addr: SocketAddr,
    /// Keys, the spool and (unless `database` is given) the SQLite databases.
    pub data_dir: PathBuf,
    /// A PostgreSQL database for the evidence log, jobs and API keys, instead of SQLite files
    /// in the data directory.
    pub database: Option<aqiqat_store::Location>,
    /// Scanning threads (default: the number of cores).
    pub workers: usize,
    /// Uploads accepted and waiting; beyond this the API answers 503 with Retry-After.
    pub queue: usize,
    pub limits: Limits,
    /// A client must send its request headers within this time.
    pub header_timeout: std::time::Duration,
    /// The slack an upload gets on top of arriving at 64 kB/s; slower uploads are cut off
    /// (408), so that a client trickling bytes cannot hold a connection and memory forever.
    pub body_timeout: std::time::Duration,
    /// Host names, beyond loopback and the listening address, that requests may be sent to
    /// (`--allowed-host`): the name a reverse proxy or the local network uses.
    pub allowed_hosts: Vec<String>,
    /// Web origins whose pages may call the API from a browser (`--allowed-origin`); they get
    /// CORS answers. None by default: only the server's own page.
    pub allowed_origins: Vec<String>,
    /// Queue jobs on this NATS JetStream instead of this process's own workers
    /// (`--queue nats://…`; needs a PostgreSQL `database`).
    pub nats: Option<crate::queue::QueueSettings>,
    /// How links sent to `POST /v1/scans` are followed.
    pub links: LinkSettings,
    /// Where live calls' verdicts are also posted (`--call-webhook`), for platforms that do not
    /// read messages sent back on their stream (Twilio).
    pub call_webhook: Option<String>,
    /// The voice detector to run instead of the built-in one (`--model`): a training run's
    /// folder or a fused card, for live calls and uploads alike.
    pub voice_model: Option<PathBuf>,
}

/// How the server follows links it is asked to scan.
#[derive(Debug, Clone)]
pub struct LinkSettings {
    /// Follow links into private networks (`--allow-private-urls`: tests, closed deployments).
    pub allow_private: bool,
    /// One deadline for a link: its page, yt-dlp and every media item.
    pub timeout: std::time::Duration,
}

impl Default for LinkSettings {
    fn default() -> Self {
        Self {
            allow_private: false,
            timeout: std::time::Duration::from_secs(60),
        }
    }
}

/// Where accepted uploads go to be scanned.
enum Dispatch {
    /// This process's worker threads, through a bounded channel.
    Local(mpsc::Sender<String>),
    /// Workers anywhere, through the JetStream work queue.
    Nats(Arc<crate::queue::JobQueue>),
}

struct Inner {
    scanner: Arc<Scanner>,
    voiceprints: Arc<Mutex<aqiqat_voiceprints::VoiceprintStore>>,
    keys: crate::auth::Keys,
    /// Listening beyond loopback: keys are mandatory even before one exists.
    keys_required: bool,
    jobs: Arc<JobStore>,
    dispatch: Dispatch,
    log: Mutex<Log>,
    counters: Arc<Counters>,
    limits: Limits,
    workers: usize,
    queue_capacity: usize,
    body_timeout: std::time::Duration,
    links: LinkSettings,
    call_webhook: Option<String>,
    /// Live calls now open, on every protocol.
    calls_active: Arc<std::sync::atomic::AtomicU64>,
    hosts: crate::guard::HostPolicy,
    origins: crate::guard::OriginPolicy,
}

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

impl AppState {
    /// The reading side of the evidence log. Database calls block (and the PostgreSQL
    /// client may not run on an executor thread at all), so every use goes through
    /// [`blocking`].
    fn log(&self) -> std::sync::MutexGuard<'_, Log> {
        self.0.log.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Runs a short database call from a handler: off the executor's duty, on this thread.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// Starts everything and serves until SIGINT/SIGTERM. Prints the bound address (useful with
/// port 0) on stderr as `aqiqat listening on http://ADDR`.
///
/// Connections are served by hyper directly (not `axum::serve`) for one reason: a client that
/// opens a connection and sends its headers slowly (slow loris) must be cut off, which needs
/// hyper's header read timeout. Bodies that stall are cut off by an idle timeout per chunk.
pub async fn serve(config: Config) -> Result<(), String> {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use hyper_util::server::conn::auto::Builder;
    use hyper_util::service::TowerToHyperService;

    let remote = match &config.nats {
        Some(settings) => Some(Arc::new(
            crate::queue::JobQueue::connect(settings.clone()).await?,
        )),
        None => None,
    };
    // Opening the stores may connect to PostgreSQL, whose client blocks.
    let (router, resume) = blocking(|| router(&config, remote.clone()))?;
    if let Some(queue) = remote {
        // The PostgreSQL client blocks: never on an executor thread.
        let jobs = blocking(|| {
            crate::JobStore::open(
                &crate::Storage::new(&config.data_dir, config.database.as_ref()).server,
                &config.data_dir.join("spool"),
            )
            .map(Arc::new)
        });
        let given_up = queue.given_up().await;
        if let (Ok(jobs), Ok(given_up)) = (jobs, given_up) {
            tokio::spawn(mark_given_up(jobs, given_up, queue.settings().max_deliver));
        }
    }
    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.addr))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    eprintln!("aqiqat listening on http://{addr}");
    tokio::spawn(resume);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown_signal());
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let service = TowerToHyperService::new(router.clone());
                let mut builder = Builder::new(TokioExecutor::new());
                builder
                    .http1()
                    .timer(TokioTimer::new())
                    .header_read_timeout(config.header_timeout);
                let connection = builder
                    .serve_connection_with_upgrades(TokioIo::new(stream), service)
                    .into_owned();
                let connection = graceful.watch(connection);
                tokio::spawn(async move {
                    let _ = connection.await;
                });
            }
            _ = &mut shutdown => break,
        }
    }
    drop(listener);
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), graceful.shutdown()).await;
    blocking(|| drop(router));
    Ok(())
}

/// Jobs NATS stopped delivering (each stopped its worker every time) end `failed`.
async fn mark_given_up(
    jobs: Arc<JobStore>,
    given_up: impl futures_util::Stream<Item = String>,
    attempts: i64,
) {
    use futures_util::StreamExt;
    let mut given_up = std::pin::pin!(given_up);
    while let Some(id) = given_up.next().await {
        let jobs = Arc::clone(&jobs);
        let _ = tokio::task::spawn_blocking(move || {
            if let Ok(Some(job)) = jobs.get(&id)
                && !matches!(job.state, JobState::Done | JobState::Failed)
            {
                let _ = jobs.fail(
                    &id,
                    "internal",
                    &format!(
                        "no worker finished this job in {attempts} deliveries (each stopped \
                         answering mid-scan); it was given up"
                    ),
                );
            }
        })
        .await;
    }
}

pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

/// Builds the application: stores, workers and routes. The returned future re-queues jobs a
/// previous process accepted but did not finish; run it once the server is up.
pub fn router(
    config: &Config,
    remote: Option<Arc<crate::queue::JobQueue>>,
) -> Result<
    (
        Router,
        impl std::future::Future<Output = ()> + Send + 'static,
    ),
    String,
> {
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| format!("{}: {e}", config.data_dir.display()))?;
    let storage = crate::Storage::new(&config.data_dir, config.database.as_ref());
    let keys = crate::auth::Keys::open(&storage.server)?;
    let keys_required = !config.addr.ip().is_loopback();
    if keys_required && !keys.any() {
        return Err(format!(
            "{} is reachable from other machines, so every request needs an API key, and none \
             exists yet: make one with `aqiqat api-key create NAME`",
            config.addr
        ));
    }
    let hosts = crate::guard::HostPolicy::new(config.addr.ip(), &config.allowed_hosts)?;
    let origins = crate::guard::OriginPolicy::new(&config.allowed_origins)?;
    let cors = (!origins.is_empty()).then(|| cors_layer(&origins));
    let key_dir = aqiqat_evidence::keys::key_dir(&config.data_dir);
    let signer = Signer25519::load_or_create(&key_dir).map_err(|e| e.to_string())?;
    let open_log = || {
        Log::open_at(
            &storage.log,
            signer.clone(),
            aqiqat_evidence::log::Durability::Full,
        )
        .map_err(|e| e.to_string())
    };
    let writer = open_log()?;
    let reader = open_log()?;
    let jobs = Arc::new(JobStore::open(
        &storage.server,
        &config.data_dir.join("spool"),
    )?);
    let scanner = crate::scanner(config.limits, config.voice_model.as_deref())?;
    if remote.is_some() && !matches!(config.database, Some(aqiqat_store::Location::Postgres(_))) {
        return Err(
            "--queue needs --database-url postgres://…: the jobs, their uploads and the log \
             must be where every worker can reach them"
                .into(),
        );
    }
    let counters = Arc::new(Counters::default());
    let capacity = match &remote {
        Some(q) => q.settings().capacity,
        None => config.queue.max(1),
    };
    let (queue, inbox) = mpsc::channel(capacity);
    // With a remote queue this process only takes uploads: `aqiqat worker` scans them.
    let workers = if remote.is_some() {
        0
    } else {
        config.workers.max(1)
    };
    let scanner = Arc::new(scanner);
    let voiceprints = Arc::new(Mutex::new(
        aqiqat_voiceprints::VoiceprintStore::open(&config.data_dir, config.database.as_ref())
            .map_err(|e| e.to_string())?,
    ));
    let unfinished = if workers > 0 {
        worker::spawn(
            workers,
            Workers {
                scanner: Arc::clone(&scanner),
                jobs: Arc::clone(&jobs),
                group: aqiqat_evidence::group::GroupCommit::start(writer),
                signer: Arc::new(signer),
                counters: Arc::clone(&counters),
                voiceprints: Arc::clone(&voiceprints),
            },
            inbox,
        );
        jobs.unfinished()?
    } else {
        Vec::new()
    };
    let resume_queue = queue.clone();
    let resume = async move {
        for id in unfinished {
            if resume_queue.send(id).await.is_err() {
                break;
            }
        }
    };
    let state = AppState(Arc::new(Inner {
        scanner,
        voiceprints,
        keys,
        keys_required,
        jobs,
        dispatch: match remote {
            Some(q) => Dispatch::Nats(q),
            None => Dispatch::Local(queue),
        },
        log: Mutex::new(reader),
        counters,
        limits: config.limits,
        workers,
        queue_capacity: capacity,
        body_timeout: config.body_timeout,
        links: config.links.clone(),
        call_webhook: config.call_webhook.clone(),
        calls_active: Arc::default(),
        hosts,
        origins,
    }));
    // Multipart framing on top of the largest accepted file, and the drain allowance.
    let body_limit = usize::try_from(config.limits.max_input_bytes)
        .unwrap_or(usize::MAX)
        .saturating_add(64 * 1024 + DRAIN_BYTES as usize);
    let app = Router::new()
        .route("/", get(page))
        .route("/ui/app.js", get(page_script))
        .route("/ui/app.css", get(page_style))
        .route("/ui/i18n/{lang}", get(page_texts))
        .route("/healthz", get(health))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .route("/v1/scans", post(create_scan))
        .route("/v1/scans/{id}", get(get_scan))
        .route("/v1/scans/{id}/record", get(get_record))
        .route("/v1/scans/{id}/report", get(get_report))
        .route(
            "/v1/voiceprints",
            get(voiceprints::list).post(voiceprints::enrol),
        )
        .route(
            "/v1/voiceprints/{id}",
            get(voiceprints::get).delete(voiceprints::delete),
        )
        .route("/v1/stream", get(live_stream))
        .route("/v1/calls/twilio", get(twilio_stream))
        .route("/v1/log/head", get(log_head))
        .route("/v1/log/consistency", get(log_consistency))
        .route("/v1/key", get(public_key))
        .route("/v1/cases", get(list_cases).post(create_case))
        .route("/v1/cases/{id}", get(get_case))
        .route("/v1/cases/{id}/records", post(add_to_case))
        .route("/v1/cases/{id}/report", get(case_report))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            authorise,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            refuse_cross_site,
        ));
    // CORS only for the origins named: without them a browser lets no other site read a thing.
    let app = match cors {
        Some(cors) => app.layer(cors),
        None => app,
    };
    let app = app
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            refuse_foreign_host,
        ))
        .with_state(state);
    Ok((app, resume))
}

/// The answers a browser needs before it lets an `--allowed-origin` page call the API.
fn cors_layer(origins: &crate::guard::OriginPolicy) -> tower_http::cors::CorsLayer {
    use axum::http::Method;
    use tower_http::cors::{AllowOrigin, CorsLayer};
    let list = origins
        .browser_origins()
        .into_iter()
        .filter_map(|o| HeaderValue::from_str(&o).ok());
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(list))
        .allow_methods([Method::GET, Method::POST, Method::DELETE])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::HeaderName::from_static("x-api-key"),
        ])
        .expose_headers([header::RETRY_AFTER, header::LOCATION])
        .max_age(std::time::Duration::from_secs(600))
}

// ---- errors ----

fn error(status: StatusCode, kind: &str, message: impl Into<String>) -> Response {
    (
        status,
        Json(json!({"error": {"kind": kind, "message": message.into()}})),
    )
        .into_response()
}

fn unprocessable(message: impl Into<String>) -> Response {
    error(StatusCode::UNPROCESSABLE_ENTITY, "bad_input", message)
}

fn bad_request(message: impl Into<String>) -> Response {
    error(StatusCode::BAD_REQUEST, "bad_input", message)
}

fn internal(message: impl Into<String>) -> Response {
    let message = message.into();
    tracing::error!("{message}");
    error(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
}

fn evidence_error(e: EvidenceError) -> Response {
    if e.is_bad_input() {
        let text = e.to_string();
        let status = if text.starts_with("no ") {
            StatusCode::NOT_FOUND
        } else {
            StatusCode::BAD_REQUEST
        };
        error(status, "bad_input", text)
    } else {
        internal(e.to_string())
    }
}

fn json_or_error<T: serde::Serialize>(result: Result<T, EvidenceError>) -> Response {
    match result {
        Ok(value) => Json(value).into_response(),
        Err(e) => evidence_error(e),
    }
}

/// DNS rebinding: a request addressed to a name this server does not answer to is refused
/// before anything else runs (see [`crate::guard`]).
async fn refuse_foreign_host(
    State(s): State<AppState>,
    request: Request,
    next: axum::middleware::Next,
) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| request.uri().authority().map(|a| a.as_str()));
    match s.0.hosts.check(host) {
        Ok(()) => with_resource_policy(next.run(request).await),
        Err(refusal) => error(
            StatusCode::MISDIRECTED_REQUEST,
            "host_not_allowed",
            refusal.0,
        ),
    }
}

/// No other site may embed this server's answers (reports, records) in its own page.
fn with_resource_policy(mut r: Response) -> Response {
    r.headers_mut().insert(
        header::HeaderName::from_static("cross-origin-resource-policy"),
        HeaderValue::from_static("same-origin"),
    );
    r
}

/// Cross-site requests: uploads and changes from other sites' pages, and WebSockets opened
/// by them, are refused (see [`crate::guard`]).
async fn refuse_cross_site(
    State(s): State<AppState>,
    request: Request,
    next: axum::middleware::Next,
) -> Response {
    match s.0.origins.check(request.method(), request.headers()) {
        Ok(()) => next.run(request).await,
        Err(refusal) => error(StatusCode::FORBIDDEN, "cross_site", refusal.0),
    }
}

/// API keys and rate limits, before any handler runs.
/// The API key a request presents: `Authorization: Bearer …` or `X-Api-Key`.
fn presented_key(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()))
        .map(|k| k.trim().to_owned())
}

async fn authorise(
    State(s): State<AppState>,
    mut request: Request,
    next: axum::middleware::Next,
) -> Response {
    // The page and its assets hold no data; the key is asked for inside it.
    let path = request.uri().path();
    if path == "/healthz" || path == "/" || path.starts_with("/ui/") {
        return next.run(request).await;
    }
    // Telephony platforms cannot always send a header: the key may come in the stream's
    // `start` message instead, where `twilio_stream` checks it.
    if path == "/v1/calls/twilio" {
        request.extensions_mut().insert(Caller(None));
        return next.run(request).await;
    }
    let presented = presented_key(request.headers());
    match blocking(|| s.0.keys.check(presented.as_deref(), s.0.keys_required)) {
        crate::auth::Decision::Allow(key) => {
            request.extensions_mut().insert(Caller(key));
            next.run(request).await
        }
        crate::auth::Decision::Unauthorised(why) => {
            let mut r = error(StatusCode::UNAUTHORIZED, "unauthorised", why);
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            r
        }
        crate::auth::Decision::Limited(seconds) => {
            let mut r = error(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!("this key's rate is used up; retry in {seconds} s"),
            );
            if let Ok(v) = HeaderValue::from_str(&seconds.to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            r
        }
    }
}

// ---- the web page ----

const SECURITY_HEADERS: [(header::HeaderName, &str); 3] = [
    (
        header::CONTENT_SECURITY_POLICY,
        "default-src 'self'; img-src 'self' data:; object-src 'none'; frame-ancestors 'none'",
    ),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::REFERRER_POLICY, "no-referrer"),
];

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut r = ([(header::CONTENT_TYPE, content_type)], body).into_response();
    for (name, value) in SECURITY_HEADERS {
        r.headers_mut()
            .insert(name, HeaderValue::from_static(value));
    }
    r
}

async fn page() -> Response {
    asset(
        "text/html; charset=utf-8",
        include_str!("../web/index.html"),
    )
}

async fn page_script() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("../web/app.js"),
    )
}

async fn page_style() -> Response {
    asset("text/css; charset=utf-8", include_str!("../web/app.css"))
}

async fn page_texts(Path(file): Path<String>) -> Response {
    let body = match file.as_str() {
        "kk.json" => include_str!("../web/i18n/kk.json"),
        "ru.json" => include_str!("../web/i18n/ru.json"),
        "en.json" => include_str!("../web/i18n/en.json"),
        _ => return not_found().await,
    };
    asset("application/json", body)
}

async fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such endpoint; see /openapi.json",
    )
}

// ---- health, metrics, spec ----

async fn health(State(s): State<AppState>) -> Response {
    Json(json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "workers": s.0.workers,
        "queue_capacity": s.0.queue_capacity,
        "queue_free": match &s.0.dispatch {
            Dispatch::Local(q) => Some(q.capacity() as u64),
            Dispatch::Nats(q) => q
                .depth()
                .await
                .ok()
                .map(|d| (s.0.queue_capacity as u64).saturating_sub(d)),
        },
        "queue": match &s.0.dispatch {
            Dispatch::Local(_) => "local",
            Dispatch::Nats(_) => "nats",
        },
    }))
    .into_response()
}

async fn metrics(State(s): State<AppState>) -> Response {
    let c = &s.0.counters;
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, value: String| {
        out.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
        ));
    };
    metric(
        "aqiqat_scans_done_total",
        "counter",
        "Scans finished and logged.",
        c.scans_done.load(Ordering::Relaxed).to_string(),
    );
    metric(
        "aqiqat_scans_failed_total",
        "counter",
        "Scans that ended in an error.",
        c.scans_failed.load(Ordering::Relaxed).to_string(),
    );
    metric(
        "aqiqat_scan_seconds_total",
        "counter",
        "Wall time spent scanning.",
        format!(
            "{:.3}",
            c.scan_seconds_total_ms.load(Ordering::Relaxed) as f64 / 1000.0
        ),
    );
    metric(
        "aqiqat_audio_seconds_total",
        "counter",
        "Audio scanned, in seconds.",
        format!(
            "{:.3}",
            c.audio_seconds_total_ms.load(Ordering::Relaxed) as f64 / 1000.0
        ),
    );
    metric(
        "aqiqat_calls_active",
        "gauge",
        "Live calls open now (every protocol).",
        s.0.calls_active.load(Ordering::Relaxed).to_string(),
    );
    metric(
        "aqiqat_workers_busy",
        "gauge",
        "Workers scanning now.",
        c.busy_workers.load(Ordering::Relaxed).to_string(),
    );
    metric(
        "aqiqat_queue_waiting",
        "gauge",
        "Uploads accepted and waiting for a worker.",
        match &s.0.dispatch {
            Dispatch::Local(q) => (s.0.queue_capacity - q.capacity()).to_string(),
            Dispatch::Nats(q) => q.depth().await.map_or("NaN".into(), |d| d.to_string()),
        },
    );
    if let Dispatch::Nats(q) = &s.0.dispatch
        && let Some((in_flight, redelivered, waiting)) = q.workers().await
    {
        metric(
            "aqiqat_queue_in_flight",
            "gauge",
            "Jobs a worker holds now (delivered, not yet acknowledged).",
            in_flight.to_string(),
        );
        metric(
            "aqiqat_queue_redelivered",
            "gauge",
            "Jobs delivered more than once and not yet acknowledged (a worker died or failed).",
            redelivered.to_string(),
        );
        metric(
            "aqiqat_workers_waiting",
            "gauge",
            "Worker tasks waiting for a job (idle capacity across all worker machines).",
            waiting.to_string(),
        );
    }
    out.push_str("# HELP aqiqat_jobs Jobs stored, by state.\n# TYPE aqiqat_jobs gauge\n");
    for (state, n) in blocking(|| s.0.jobs.counts()) {
        out.push_str(&format!("aqiqat_jobs{{state=\"{}\"}} {n}\n", state.label()));
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response()
}

async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        include_str!("openapi.json"),
    )
        .into_response()
}

// ---- scans ----

#[derive(Debug, Default, Deserialize)]
struct UploadMeta {
    name: Option<String>,
    /// A voiceprint (its id, or its name) the voice is claimed to be.
    claimed: Option<String>,
    case: Option<String>,
    operator: Option<String>,
    note: Option<String>,
}

const MAX_TEXT: usize = 2000;

fn clean_text(field: &str, value: Option<String>) -> Result<Option<String>, Response> {
    match value {
        Some(v) if v.chars().count() > MAX_TEXT => Err(bad_request(format!(
            "{field} is longer than {MAX_TEXT} characters"
        ))),
        Some(v) if v.chars().any(|c| c.is_control() && c != '\n' && c != '\t') => {
            Err(bad_request(format!("{field} contains control characters")))
        }
        Some(v) if v.trim().is_empty() => Ok(None),
        other => Ok(other),
    }
}

/// `POST /v1/scans`: the file as the raw body (any `audio/*`, `video/*`, `image/*` or
/// `application/octet-stream`; metadata in the query), or as the `file` part of a
/// `multipart/form-data` form (metadata as further parts).
async fn create_scan(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(mut meta): Query<UploadMeta>,
    headers: HeaderMap,
    request: Request,
) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream")
        .to_ascii_lowercase();
    if content_type.starts_with("application/json") {
        return create_link_scan(s, caller, meta, request).await;
    }
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    // Far too large: said at once (a client sending `Expect: 100-continue` never sends the
    // body). A little too large is read and dropped first; see `Incoming::write`.
    if declared.is_some_and(|n| n > s.0.limits.max_input_bytes.saturating_add(DRAIN_BYTES)) {
        return too_large(s.0.limits.max_input_bytes);
    }
    // A full queue is said before a byte of the body is read.
    if queue_is_full(&s).await {
        return queue_full();
    }
    let mut upload = match Incoming::create(&s.0.jobs, s.0.limits.max_input_bytes).await {
        Ok(u) => u,
        Err(e) => return internal(format!("spool: {e}")),
    };
    let read = async {
        if content_type.starts_with("multipart/form-data") {
            let mut form = match Multipart::from_request(request, &()).await {
                Ok(f) => f,
                Err(e) => return Err(error(e.status(), "bad_input", e.body_text())),
            };
            let mut has_file = false;
            loop {
                let mut field = match form.next_field().await {
                    Ok(Some(f)) => f,
                    Ok(None) => break,
                    Err(e) => return Err(error(e.status(), "bad_input", e.body_text())),
                };
                let name = field.name().unwrap_or_default().to_owned();
                match name.as_str() {
                    "file" if has_file => {
                        return Err(bad_request("send one `file` part per upload"));
                    }
                    "file" => {
                        has_file = true;
                        if meta.name.is_none() {
                            meta.name = field.file_name().map(str::to_owned);
                        }
                        loop {
                            match field.chunk().await {
                                Ok(Some(chunk)) => upload.write(&chunk).await?,
                                Ok(None) => break,
                                Err(e) => {
                                    return Err(error(e.status(), "bad_input", e.body_text()));
                                }
                            }
                        }
                    }
                    "case" | "operator" | "note" | "name" | "claimed" => {
                        let text = match field.text().await {
                            Ok(t) => t,
                            Err(e) => return Err(error(e.status(), "bad_input", e.body_text())),
                        };
                        let slot = match name.as_str() {
                            "case" => &mut meta.case,
                            "operator" => &mut meta.operator,
                            "note" => &mut meta.note,
                            "claimed" => &mut meta.claimed,
                            _ => &mut meta.name,
                        };
                        *slot = Some(text);
                    }
                    other => {
                        return Err(bad_request(format!(
                            "unexpected form field {other:?}; send the audio as `file`"
                        )));
                    }
                }
            }
            if !has_file {
                return Err(bad_request("the form has no `file` part"));
            }
        } else if content_type.starts_with("audio/")
            || content_type.starts_with("video/")
            || content_type.starts_with("image/")
            || content_type.starts_with("application/octet-stream")
        {
            use http_body_util::BodyExt;
            let mut body = request.into_body();
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|e| bad_request(format!("the upload broke off: {e}")))?;
                if let Ok(data) = frame.into_data() {
                    upload.write(&data).await?;
                }
            }
        } else {
            return Err(error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "bad_input",
                format!(
                    "content type {content_type:?}: send the file as the raw body (audio/*, video/*, image/*, application/octet-stream) or as multipart/form-data"
                ),
            ));
        }
        upload.finish().await?;
        Ok::<_, Response>(meta)
    };
    let meta = match within_upload_time(&s, declared.unwrap_or(0), read).await {
        Ok(meta) => meta,
        Err(response) => return response,
    };
    if upload.size == 0 {
        return bad_request("the upload is empty");
    }
    let (name, context, claimed) = match job_meta(&s, &caller, meta) {
        Ok(m) => m,
        Err(r) => return r,
    };
    let id = jobs::new_id();
    let size = upload.size;
    let spooled = Spooled::File(upload.keep(), size);
    if let Err(r) = enqueue(
        &s,
        vec![(id.clone(), spooled, None)],
        name.clone(),
        context,
        claimed,
    )
    .await
    {
        return r;
    }
    let location = format!("/v1/scans/{id}");
    (
        StatusCode::ACCEPTED,
        [(header::LOCATION, location.clone())],
        Json(json!({"id": id, "state": "queued", "name": name, "links": {"self": location}})),
    )
        .into_response()
}

/// A new job's checked details: its name, its evidence context (an existing case), and the
/// claimed voiceprint's id (which must be the caller's).
fn job_meta(
    s: &AppState,
    caller: &Caller,
    meta: UploadMeta,
) -> Result<(Option<String>, Context, Option<String>), Response> {
    // The name is kept as text for people; it never becomes a path.
    let name = clean_text("name", meta.name)?
        .map(|n| n.rsplit(['/', '\\']).next().unwrap_or_default().to_owned());
    let context = Context {
        case_id: clean_text("case", meta.case)?,
        operator: clean_text("operator", meta.operator)?,
        note: clean_text("note", meta.note)?,
    };
    if let Some(case) = &context.case_id
        && let Err(e) = blocking(|| s.log().case(case))
    {
        return Err(evidence_error(e));
    }
    // The job keeps the voiceprint's id, not its name.
    let claimed = match clean_text("claimed", meta.claimed)? {
        Some(c) => Some(voiceprints::resolve(s, caller, &c)?),
        None => None,
    };
    Ok((name, context, claimed))
}

/// The body of `POST /v1/scans` with `Content-Type: application/json`: a link to scan.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LinkRequest {
    url: String,
    claimed: Option<String>,
    case: Option<String>,
    operator: Option<String>,
    note: Option<String>,
}

/// The largest link request body.
const MAX_LINK_REQUEST: usize = 16 << 10;

/// `POST /v1/scans` with a link: resolved here (the page, its media items, within the limits
/// and the address policy), then one job per item, each with the link's record.
async fn create_link_scan(
    s: AppState,
    caller: Caller,
    query: UploadMeta,
    request: Request,
) -> Response {
    let read = async {
        axum::body::to_bytes(request.into_body(), MAX_LINK_REQUEST)
            .await
            .map_err(|_| {
                bad_request(format!(
                    "a link request is JSON of at most {MAX_LINK_REQUEST} bytes"
                ))
            })
    };
    let body = match within_upload_time(&s, 0, read).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let asked: LinkRequest = match serde_json::from_slice(&body) {
        Ok(a) => a,
        Err(e) => {
            return bad_request(format!(
                "the body must be {{\"url\": \"https://…\"}} (with optional claimed, case, operator, note): {e}"
            ));
        }
    };
    if let Err(refusal) = aqiqat_link::check_url(&asked.url) {
        return unprocessable(refusal.to_string());
    }
    let meta = UploadMeta {
        name: None,
        claimed: asked.claimed.or(query.claimed),
        case: asked.case.or(query.case),
        operator: asked.operator.or(query.operator),
        note: asked.note.or(query.note),
    };
    let (_, context, claimed) = match job_meta(&s, &caller, meta) {
        Ok(m) => m,
        Err(r) => return r,
    };
    if queue_is_full(&s).await {
        return queue_full();
    }
    let limits = aqiqat_scan::link_limits(&s.0.limits, s.0.links.allow_private, s.0.links.timeout);
    let url = asked.url.clone();
    let resolved = tokio::task::spawn_blocking(move || {
        let ytdlp = aqiqat_link::YtDlp::find();
        aqiqat_link::resolve(&url, &limits, ytdlp.as_ref())
    })
    .await;
    let resolved = match resolved {
        Ok(Ok(r)) => r,
        Ok(Err(e)) if e.is_bad_input() => return unprocessable(e.to_string()),
        Ok(Err(e)) => return error(StatusCode::BAD_GATEWAY, "upstream", e.to_string()),
        Err(e) => return internal(e.to_string()),
    };
    let skipped = resolved.skipped.clone();
    let resolved_by = resolved.resolved_by.label();
    let page_sha256 = resolved.page_sha256.clone();
    let retrieved_at = aqiqat_evidence::utc_now();
    let mut items = Vec::new();
    let mut listed = Vec::new();
    for (source, bytes) in aqiqat_scan::LinkSource::for_items(resolved, &retrieved_at) {
        let id = jobs::new_id();
        let location = format!("/v1/scans/{id}");
        listed.push(json!({
            "id": id,
            "state": "queued",
            "media_url": source.media_url.clone().unwrap_or_else(|| source.url.clone()),
            "size_bytes": bytes.len(),
            "links": {"self": location},
        }));
        let source = serde_json::to_string(&source).expect("sources serialise");
        items.push((id, Spooled::Bytes(bytes), Some(source)));
    }
    let first = items[0].0.clone();
    if let Err(r) = enqueue(&s, items, None, context, claimed).await {
        return r;
    }
    let location = format!("/v1/scans/{first}");
    (
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        Json(json!({
            "url": asked.url,
            "retrieved_at": retrieved_at,
            "resolved_by": resolved_by,
            "page_sha256": page_sha256,
            "items": listed,
            "skipped": skipped,
        })),
    )
        .into_response()
}

/// A job's bytes on their way in: an upload written to the spool, or a link's item in memory.
enum Spooled {
    File(PathBuf, u64),
    Bytes(Vec<u8>),
}

/// Makes jobs of `items` (id, bytes, link source as JSON) and queues them. A full local queue
/// takes none of them; on NATS, a refused publish removes that job and queues none after it.
async fn enqueue(
    s: &AppState,
    items: Vec<(String, Spooled, Option<String>)>,
    name: Option<String>,
    context: Context,
    claimed: Option<String>,
) -> Result<(), Response> {
    let jobs = Arc::clone(&s.0.jobs);
    match &s.0.dispatch {
        Dispatch::Local(queue) => {
            // Reserve the queue slots before making jobs: a full queue stores nothing.
            let mut permits = Vec::with_capacity(items.len());
            for _ in &items {
                match queue.clone().try_reserve_owned() {
                    Ok(p) => permits.push(p),
                    Err(_) => {
                        for (_, spooled, _) in &items {
                            if let Spooled::File(path, _) = spooled {
                                let _ = std::fs::remove_file(path);
                            }
                        }
                        return Err(queue_full());
                    }
                }
            }
            let ids: Vec<String> = items.iter().map(|(id, _, _)| id.clone()).collect();
            let stored = tokio::task::spawn_blocking(move || {
                for (id, spooled, source) in items {
                    let about = jobs::NewJob {
                        name: name.as_deref(),
                        context: &context,
                        claimed: claimed.as_deref(),
                        source: source.as_deref(),
                    };
                    let (path, size) = match spooled {
                        Spooled::File(path, size) => (path, size),
                        Spooled::Bytes(bytes) => {
                            let path = jobs.incoming_path();
                            std::fs::write(&path, &bytes).map_err(|e| format!("spool: {e}"))?;
                            (path, bytes.len() as u64)
                        }
                    };
                    jobs.create(&id, &path, size, &about)?;
                }
                Ok::<_, String>(())
            })
            .await;
            match stored {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(internal(e)),
                Err(e) => return Err(internal(e.to_string())),
            }
            for (permit, id) in permits.into_iter().zip(ids) {
                permit.send(id);
            }
        }
        Dispatch::Nats(queue) => {
            for (id, spooled, source) in items {
                // The row and the bytes in the shared database first, then the message: a
                // worker that gets the id finds everything it needs.
                let stored = {
                    let (id, name, jobs) = (id.clone(), name.clone(), Arc::clone(&jobs));
                    let (context, claimed) = (context.clone(), claimed.clone());
                    tokio::task::spawn_blocking(move || {
                        let bytes = match spooled {
                            Spooled::File(path, _) => {
                                let bytes = std::fs::read(&path).map_err(|e| format!("spool: {e}"));
                                let _ = std::fs::remove_file(&path);
                                bytes?
                            }
                            Spooled::Bytes(bytes) => bytes,
                        };
                        let about = jobs::NewJob {
                            name: name.as_deref(),
                            context: &context,
                            claimed: claimed.as_deref(),
                            source: source.as_deref(),
                        };
                        jobs.create_shared(&id, &bytes, &about)
                    })
                    .await
                };
                match stored {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => return Err(internal(e)),
                    Err(e) => return Err(internal(e.to_string())),
                }
                if let Err(e) = queue.publish(&id).await {
                    // Not queued: nothing of it stays.
                    let (jobs, gone) = (Arc::clone(&jobs), id.clone());
                    let _ = tokio::task::spawn_blocking(move || jobs.discard(&gone)).await;
                    return Err(match e {
                        crate::queue::PublishError::Full => queue_full(),
                        crate::queue::PublishError::Other(e) => internal(format!("queue: {e}")),
                    });
                }
            }
        }
    }
    Ok(())
}

/// Reads a request body within the server's slack plus 64 kB/s for `expected` bytes; a slower
/// client is cut off with `408`.
pub(crate) async fn within_upload_time<T>(
    s: &AppState,
    expected: u64,
    read: impl std::future::Future<Output = Result<T, Response>>,
) -> Result<T, Response> {
    let deadline = s.0.body_timeout + std::time::Duration::from_secs(expected / 65_536);
    match tokio::time::timeout(deadline, read).await {
        Ok(result) => result,
        Err(_) => Err(error(
            StatusCode::REQUEST_TIMEOUT,
            "bad_input",
            "the upload arrived too slowly and was cut off",
        )),
    }
}

/// Whether the scan queue has no room left (said before a byte of a body is read).
async fn queue_is_full(s: &AppState) -> bool {
    match &s.0.dispatch {
        Dispatch::Local(q) => q.capacity() == 0,
        Dispatch::Nats(q) => !q.has_room().await,
    }
}

fn queue_full() -> Response {
    let mut r = error(
        StatusCode::SERVICE_UNAVAILABLE,
        "busy",
        "the scan queue is full; retry later",
    );
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    r
}

fn too_large(limit: u64) -> Response {
    error(
        StatusCode::PAYLOAD_TOO_LARGE,
        "bad_input",
        format!("the upload is larger than {limit} bytes"),
    )
}

/// How far past the size limit an upload is still read (and dropped) before the 413.
const DRAIN_BYTES: u64 = 4 << 20;

/// An upload being written to the spool as it arrives, so that memory holds one chunk at a
/// time whatever the file's size. Removed on drop unless [`Incoming::keep`] hands it on.
struct Incoming {
    path: PathBuf,
    file: Option<tokio::fs::File>,
    size: u64,
    limit: u64,
}

impl Incoming {
    async fn create(jobs: &JobStore, limit: u64) -> std::io::Result<Self> {
        let path = jobs.incoming_path();
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .await?;
        Ok(Self {
            path,
            file: Some(file),
            size: 0,
            limit,
        })
    }

    async fn write(&mut self, chunk: &[u8]) -> Result<(), Response> {
        use tokio::io::AsyncWriteExt;
        self.size += chunk.len() as u64;
        if self.size > self.limit {
            // Read (and drop) a little past the limit before answering, so that a client
            // still sending gets the 413 rather than a reset connection; beyond that, cut.
            if self.size > self.limit.saturating_add(DRAIN_BYTES) {
                return Err(too_large(self.limit));
            }
            self.file = None;
            return Ok(());
        }
        let Some(file) = self.file.as_mut() else {
            return Err(internal("spool: the upload file is closed"));
        };
        file.write_all(chunk)
            .await
            .map_err(|e| internal(format!("spool: {e}")))
    }

    async fn finish(&mut self) -> Result<(), Response> {
        use tokio::io::AsyncWriteExt;
        if self.size > self.limit {
            return Err(too_large(self.limit));
        }
        if let Some(mut file) = self.file.take() {
            file.flush()
                .await
                .map_err(|e| internal(format!("spool: {e}")))?;
        }
        Ok(())
    }

    /// The finished file's path; from here on the job store owns it.
    fn keep(mut self) -> PathBuf {
        std::mem::take(&mut self.path)
    }
}

impl Drop for Incoming {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn job_json(job: &jobs::Job) -> serde_json::Value {
    let mut v = serde_json::to_value(job).expect("jobs serialise");
    let base = format!("/v1/scans/{}", job.id);
    let mut links = json!({"self": base});
    if job.state == JobState::Done {
        links["record"] = json!(format!("{base}/record"));
        links["report"] = json!(format!("{base}/report?lang=en&format=html"));
    }
    v["links"] = links;
    v
}

async fn get_scan(State(s): State<AppState>, Path(id): Path<String>) -> Response {
    match blocking(|| s.0.jobs.get(&id)) {
        Ok(Some(job)) => Json(job_json(&job)).into_response(),
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no scan {id:?}"),
        ),
        Err(e) => internal(e),
    }
}

/// The job's log index, or the response that explains why there is none.
fn done_index(s: &AppState, id: &str) -> Result<u64, Response> {
    match blocking(|| s.0.jobs.get(id)) {
        Ok(Some(job)) => match (job.state, job.record) {
            (JobState::Done, Some(r)) => Ok(r.index),
            (JobState::Failed, _) => Err(error(
                StatusCode::CONFLICT,
                "failed",
                "the scan failed, so there is no evidence record",
            )),
            _ => Err(error(
                StatusCode::CONFLICT,
                "not_ready",
                "the scan has not finished yet",
            )),
        },
        Ok(None) => Err(error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no scan {id:?}"),
        )),
        Err(e) => Err(internal(e)),
    }
}

async fn get_record(State(s): State<AppState>, Path(id): Path<String>) -> Response {
    let index = match done_index(&s, &id) {
        Ok(i) => i,
        Err(r) => return r,
    };
    let envelope = blocking(|| s.log().envelope(index));
    json_or_error(envelope)
}

#[derive(Debug, Deserialize)]
struct ReportQuery {
    lang: Option<String>,
    format: Option<String>,
}

fn report_options(q: &ReportQuery) -> Result<(Lang, Format), Response> {
    let lang = q
        .lang
        .as_deref()
        .unwrap_or("en")
        .parse::<Lang>()
        .map_err(|e| bad_request(format!("lang {e}")))?;
    let format = q
        .format
        .as_deref()
        .unwrap_or("html")
        .parse::<Format>()
        .map_err(|e| bad_request(format!("format {e}")))?;
    Ok((lang, format))
}

fn rendered(bytes: Result<Vec<u8>, String>, format: Format, name: &str) -> Response {
    match (bytes, format) {
        (Ok(b), Format::Html) => {
            ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], b).into_response()
        }
        (Ok(b), Format::Pdf) => (
            [
                (header::CONTENT_TYPE, "application/pdf".to_owned()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("inline; filename=\"{name}.pdf\""),
                ),
            ],
            b,
        )
            .into_response(),
        (Err(e), _) => internal(e),
    }
}

async fn get_report(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<ReportQuery>,
) -> Response {
    let (lang, format) = match report_options(&q) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let index = match done_index(&s, &id) {
        Ok(i) => i,
        Err(r) => return r,
    };
    let envelope = match blocking(|| s.log().envelope(index)) {
        Ok(e) => e,
        Err(e) => return evidence_error(e),
    };
    let bytes = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, String> {
        let text = serde_json::to_string(&envelope).expect("envelopes serialise");
        let view = RecordView::from_envelope_text(&text)?;
        aqiqat_report::render_record(&view, lang, format, &aqiqat_evidence::utc_now())
            .map_err(|e| e.to_string())
    })
    .await
    .unwrap_or_else(|e| Err(e.to_string()));
    rendered(bytes, format, &format!("aqiqat-{id}-{}", lang.code()))
}

// ---- live calls ----

async fn live_stream(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<crate::stream::StreamQuery>,
    ws: axum::extract::WebSocketUpgrade,
) -> Response {
    let settings = match q.settings() {
        Ok(settings) => settings,
        Err(e) => return bad_request(e),
    };
    // The claimed voiceprint is the caller's or the call is refused before the upgrade.
    let claimed = match q
        .claimed
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty())
    {
        Some(c) => match voiceprints::claimed_voice(&s, &caller, c) {
            Ok(v) => Some(v),
            Err(r) => return r,
        },
        None => None,
    };
    let scanner = Arc::clone(&s.0.scanner);
    let active = crate::stream::Active::enter(&s.0.calls_active);
    ws.max_message_size(1 << 20)
        .on_upgrade(move |socket| crate::stream::run(socket, scanner, settings, claimed, active))
}

#[derive(Debug, Deserialize)]
struct TwilioQuery {
    #[serde(default)]
    track: crate::twilio::Track,
}

/// `GET /v1/calls/twilio`: a live call in the Twilio Media Streams protocol. The API key is
/// the `Authorization`/`X-Api-Key` header, or the `key` parameter of the stream's `start`
/// (`<Parameter name="key" …>` in TwiML); `claimed` may come the same way.
async fn twilio_stream(
    State(s): State<AppState>,
    Query(q): Query<TwilioQuery>,
    headers: HeaderMap,
    ws: axum::extract::WebSocketUpgrade,
) -> Response {
    let header_key = presented_key(&headers);
    let state = s.clone();
    let admit: crate::twilio::Admit = Box::new(move |params: &serde_json::Value| {
        let presented = header_key.or_else(|| params["key"].as_str().map(str::to_owned));
        let caller = match blocking(|| {
            state
                .0
                .keys
                .check(presented.as_deref(), state.0.keys_required)
        }) {
            crate::auth::Decision::Allow(key) => Caller(key),
            crate::auth::Decision::Unauthorised(why) => return Err(why.to_owned()),
            crate::auth::Decision::Limited(seconds) => {
                return Err(format!("this key's rate is used up; retry in {seconds} s"));
            }
        };
        match params["claimed"]
            .as_str()
            .map(str::trim)
            .filter(|c| !c.is_empty())
        {
            Some(c) => voiceprints::claimed_voice(&state, &caller, c)
                .map(Some)
                .map_err(|_| format!("no voiceprint {c:?} for this key")),
            None => Ok(None),
        }
    });
    let scanner = Arc::clone(&s.0.scanner);
    let webhook = s.0.call_webhook.clone();
    let active = crate::stream::Active::enter(&s.0.calls_active);
    ws.max_message_size(1 << 20).on_upgrade(move |socket| {
        let webhook = webhook.map(crate::twilio::Webhook::start);
        crate::twilio::run(socket, scanner, q.track, admit, webhook, active)
    })
}

// ---- log ----

async fn log_head(State(s): State<AppState>) -> Response {
    let head = blocking(|| s.log().tree_head());
    json_or_error(head)
}

#[derive(Debug, Deserialize)]
struct ConsistencyQuery {
    old: u64,
    new: Option<u64>,
}

async fn log_consistency(State(s): State<AppState>, Query(q): Query<ConsistencyQuery>) -> Response {
    let proof = blocking(|| {
        let mut log = s.log();
        let new = match q.new {
            Some(n) => n,
            None => log.tree_head()?.tree_size,
        };
        log.consistency(q.old, new)
    });
    json_or_error(proof)
}

async fn public_key(State(s): State<AppState>) -> Response {
    let pem = s.log().signer().public().to_pem();
    ([(header::CONTENT_TYPE, "application/x-pem-file")], pem).into_response()
}

// ---- cases ----

async fn list_cases(State(s): State<AppState>) -> Response {
    let cases = blocking(|| s.log().cases());
    json_or_error(cases)
}

#[derive(Debug, Deserialize)]
struct NewCase {
    title: String,
    id: Option<String>,
    note: Option<String>,
}

async fn create_case(
    State(s): State<AppState>,
    body: Result<Json<NewCase>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Json(c) = match body {
        Ok(b) => b,
        Err(e) => return error(e.status(), "bad_input", e.body_text()),
    };
    let title = match clean_text("title", Some(c.title)) {
        Ok(Some(t)) => t,
        Ok(None) => return bad_request("a case needs a title"),
        Err(r) => return r,
    };
    let note = match clean_text("note", c.note) {
        Ok(n) => n,
        Err(r) => return r,
    };
    let created = blocking(|| s.log().case_new(c.id.as_deref(), &title, note.as_deref()));
    match created {
        Ok(case) => (StatusCode::CREATED, Json(case)).into_response(),
        Err(e) => evidence_error(e),
    }
}

async fn get_case(State(s): State<AppState>, Path(id): Path<String>) -> Response {
    let case = blocking(|| s.log().case(&id));
    json_or_error(case)
}

#[derive(Debug, Deserialize)]
struct AddRecords {
    /// Scan ids, log indices or leaf-hash prefixes.
    records: Vec<String>,
}

async fn add_to_case(
    State(s): State<AppState>,
    Path(id): Path<String>,
    body: Result<Json<AddRecords>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Json(add) = match body {
        Ok(b) => b,
        Err(e) => return error(e.status(), "bad_input", e.body_text()),
    };
    if add.records.is_empty() || add.records.len() > 10_000 {
        return bad_request("give 1 to 10000 records");
    }
    let mut indices = Vec::new();
    for r in &add.records {
        if jobs::valid_id(r) {
            match done_index(&s, r) {
                Ok(i) => indices.push(i),
                Err(resp) => return resp,
            }
            continue;
        }
        match blocking(|| s.log().find(r)) {
            Ok(e) => indices.push(e.index),
            Err(e) => return evidence_error(e),
        }
    }
    let case = blocking(|| s.log().case_add(&id, &indices));
    json_or_error(case)
}

async fn case_report(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<ReportQuery>,
) -> Response {
    let (lang, format) = match report_options(&q) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let envelopes = blocking(|| -> Result<_, EvidenceError> {
        let mut log = s.log();
        let case = log.case(&id)?;
        let head = log.tree_head()?;
        let envelopes = case
            .records
            .iter()
            .map(|e| log.envelope_at(e.index, &head))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((case, envelopes))
    });
    let envelopes = match envelopes {
        Ok(e) => e,
        Err(e) => return evidence_error(e),
    };
    let bytes = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, String> {
        let (case, envelopes) = envelopes;
        let mut records = Vec::new();
        for env in envelopes {
            let text = serde_json::to_string(&env).expect("envelopes serialise");
            records.push(RecordView::from_envelope_text(&text)?);
        }
        let view = CaseView {
            id: case.id,
            title: case.title,
            note: case.note,
            created_at: case.created_at,
            records,
        };
        aqiqat_report::render_case(&view, lang, format, &aqiqat_evidence::utc_now())
            .map_err(|e| e.to_string())
    })
    .await
    .unwrap_or_else(|e| Err(e.to_string()));
    rendered(bytes, format, &format!("aqiqat-case-{}", lang.code()))
}
