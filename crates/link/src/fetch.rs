//! Fetching a direct media link within bounds: every connection's addresses pass the policy
//! (the resolver applies it, so DNS cannot answer one thing to the check and another to the
//! connection), redirects are followed here one at a time and each is checked again, the size
//! is capped before the download completes, and the whole fetch has a deadline.

use crate::policy::{self, Refusal};
use std::net::IpAddr;

use std::time::Duration;

/// How far a fetch may go.
#[derive(Debug, Clone)]
pub struct FetchLimits {
    /// The largest body read; a larger one is refused as soon as it is known to be larger.
    pub max_bytes: u64,
    /// The whole fetch, redirects included.
    pub timeout: Duration,
    pub max_redirects: usize,
    /// Follow links into private networks (tests, closed deployments).
    pub allow_private: bool,
    /// Addresses allowed although private (a test server on loopback).
    pub also_allow: Vec<IpAddr>,
    /// Asked once about the first [`PREFIX_BYTES`] of a body (or all of it, if shorter),
    /// before the rest is downloaded: a media file whose header declares it too long is
    /// refused then, not after the whole download.
    pub prefix_check: Option<PrefixCheck>,
}

/// How much of a body [`FetchLimits::prefix_check`] sees.
pub const PREFIX_BYTES: usize = 1 << 20;

/// The function behind a [`PrefixCheck`].
pub type PrefixJudge = dyn Fn(&[u8]) -> Result<(), String> + Send + Sync;

/// A judgement on a body's first bytes: `Err(why)` stops the download.
#[derive(Clone)]
pub struct PrefixCheck(pub std::sync::Arc<PrefixJudge>);

impl std::fmt::Debug for PrefixCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PrefixCheck")
    }
}

impl Default for FetchLimits {
    fn default() -> Self {
        Self {
            max_bytes: 256 << 20,
            timeout: Duration::from_secs(60),
            max_redirects: 5,
            allow_private: false,
            also_allow: Vec::new(),
            prefix_check: None,
        }
    }
}

/// What a link gave: enough for a record to show what the post carried at that moment.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The link as given.
    pub url: String,
    /// Every URL followed after it, in order; the last is where the bytes came from.
    pub redirects: Vec<String>,
    pub content_type: Option<String>,
    pub bytes: Vec<u8>,
}

impl Fetched {
    /// Where the bytes came from.
    pub fn final_url(&self) -> &str {
        self.redirects.last().unwrap_or(&self.url)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error("{url}: the server answered {status}")]
    Status { url: String, status: u16 },
    #[error("{0}: more than {1} redirects")]
    TooManyRedirects(String, usize),
    #[error("{url}: redirects to {location:?}, which is not a link")]
    BadRedirect { url: String, location: String },
    #[error("{0}: larger than {1} bytes")]
    TooLarge(String, u64),
    #[error("{0}: no answer within {1:?}")]
    Timeout(String, Duration),
    #[error("{0}: {1}")]
    Network(String, String),
    #[error("{0}: {1}")]
    Rejected(String, String),
}

impl FetchError {
    /// The link's fault (HTTP 4xx, exit 2) rather than aqiqat's.
    pub fn is_bad_input(&self) -> bool {
        !matches!(self, FetchError::Network(..))
    }
}

impl FetchLimits {
    /// The address rules these limits carry.
    pub fn policy(&self) -> policy::AddressPolicy {
        policy::AddressPolicy {
            allow_private: self.allow_private,
            also_allow: self.also_allow.clone(),
        }
    }
}

/// The resolver every connection goes through: the policy on what DNS returns.
#[derive(Debug)]
struct PolicyResolver(policy::AddressPolicy);

impl ureq::unversioned::resolver::Resolver for PolicyResolver {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        _config: &ureq::config::Config,
        _timeout: ureq::unversioned::transport::NextTimeout,
    ) -> Result<ureq::unversioned::resolver::ResolvedSocketAddrs, ureq::Error> {
        let host = uri
            .host()
            .ok_or(ureq::Error::HostNotFound)?
            .trim_start_matches('[')
            .trim_end_matches(']');
        let port = uri
            .port_u16()
            .unwrap_or(if uri.scheme_str() == Some("https") {
                443
            } else {
                80
            });
        let addresses = self
            .0
            .connectable(host, port)
            .map_err(|e| ureq::Error::Other(Box::new(e)))?;
        let mut out = ureq::unversioned::resolver::ResolvedSocketAddrs::from_fn(|_| {
            std::net::SocketAddr::from(([0, 0, 0, 0], 0))
        });
        out.truncate(0);
        for a in addresses.into_iter().take(16) {
            out.push(a);
        }
        Ok(out)
    }
}

/// Resolves a link found at `base` (a `Location`, a page's `src`) to an absolute URL.
pub(crate) fn join(base: &str, location: &str) -> Option<String> {
    let joined = url::Url::parse(base).ok()?.join(location.trim()).ok()?;
    Some(joined.to_string())
}

/// Reads a body within the size cap and deadline, asking the prefix check once on the way.
fn read_body(body: ureq::Body, url: &str, limits: &FetchLimits) -> Result<Vec<u8>, FetchError> {
    use std::io::Read;
    let failed = |e: std::io::Error| match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<ureq::Error>())
    {
        Some(ureq::Error::BodyExceedsLimit(_)) => {
            FetchError::TooLarge(url.to_owned(), limits.max_bytes)
        }
        Some(ureq::Error::Timeout(_)) => FetchError::Timeout(url.to_owned(), limits.timeout),
        _ if e.kind() == std::io::ErrorKind::TimedOut => {
            FetchError::Timeout(url.to_owned(), limits.timeout)
        }
        _ => FetchError::Network(url.to_owned(), e.to_string()),
    };
    let mut reader = body.into_with_config().limit(limits.max_bytes).reader();
    let mut bytes = Vec::new();
    let mut chunk = vec![0u8; 64 << 10];
    let mut checked = limits.prefix_check.is_none();
    loop {
        let n = reader.read(&mut chunk).map_err(failed)?;
        bytes.extend_from_slice(&chunk[..n]);
        if !checked && (n == 0 || bytes.len() >= PREFIX_BYTES) {
            checked = true;
            if let Some(PrefixCheck(check)) = &limits.prefix_check {
                check(&bytes[..bytes.len().min(PREFIX_BYTES)])
                    .map_err(|why| FetchError::Rejected(url.to_owned(), why))?;
            }
        }
        if n == 0 {
            return Ok(bytes);
        }
    }
}

/// Fetches `url` within `limits`.
pub fn fetch(url: &str, limits: &FetchLimits) -> Result<Fetched, FetchError> {
    let config = ureq::Agent::config_builder()
        .max_redirects(0)
        // One-off fetches: a pooled connection the server has closed would fail the next hop.
        .max_idle_connections(0)
        .http_status_as_error(false)
        .timeout_global(Some(limits.timeout))
        .build();
    let agent = ureq::Agent::with_parts(
        config,
        ureq::unversioned::transport::DefaultConnector::new(),
        PolicyResolver(limits.policy()),
    );
    let mut current = url.trim().to_owned();
    let mut redirects = Vec::new();
    loop {
        policy::check_url(&current)?;
        let response = agent.get(&current).call().map_err(|e| match e {
            ureq::Error::Other(inner) => match inner.downcast::<Refusal>() {
                Ok(refusal) => FetchError::Refused(*refusal),
                Err(other) => FetchError::Network(current.clone(), other.to_string()),
            },
            ureq::Error::Timeout(_) => FetchError::Timeout(current.clone(), limits.timeout),
            other => FetchError::Network(current.clone(), other.to_string()),
        })?;
        let status = response.status().as_u16();
        if (300..400).contains(&status) {
            let location = response
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            let next = join(&current, &location).ok_or_else(|| FetchError::BadRedirect {
                url: current.clone(),
                location: location.clone(),
            })?;
            if redirects.len() == limits.max_redirects {
                return Err(FetchError::TooManyRedirects(
                    url.to_owned(),
                    limits.max_redirects,
                ));
            }
            redirects.push(next.clone());
            current = next;
            continue;
        }
        if status != 200 {
            return Err(FetchError::Status {
                url: current,
                status,
            });
        }
        let declared = response
            .headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > limits.max_bytes) {
            return Err(FetchError::TooLarge(current, limits.max_bytes));
        }
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = read_body(response.into_body(), &current, limits)?;
        return Ok(Fetched {
            url: url.trim().to_owned(),
            redirects,
            content_type,
            bytes,
        });
    }
}
