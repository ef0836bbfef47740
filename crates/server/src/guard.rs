//! Keeps other websites out of a server that a person runs on their own machine.
//!
//! Two attacks reach a server on loopback through the browser of the person running it:
//! - **DNS rebinding**: a site points its own name at 127.0.0.1, and its page then reads this
//!   server as if it were the site itself (same origin in the browser's eyes). The request
//!   still says `Host: attacker.example`, so every request whose `Host` is not a name this
//!   server answers to is refused ([`HostPolicy`]), on every route, the WebSocket included.
//! - **Cross-site requests**: any page may *send* a form or multipart upload to
//!   127.0.0.1 without a CORS preflight; it only cannot read the answer. State-changing
//!   requests and WebSocket upgrades that a browser marks as coming from another origin are
//!   refused ([`OriginPolicy`]) unless they carry an API key, which a browser never attaches
//!   to a cross-site request on its own.
//!
//! Clients that are not browsers (curl, scripts, other services) send no `Origin`, so
//! neither check gets in their way; the page served from the server itself is same-origin.

use axum::http::{HeaderMap, Method, header};

/// The `Host` names the server answers to.
#[derive(Debug, Clone)]
pub struct HostPolicy {
    /// The IP address the server listens on.
    listen: std::net::IpAddr,
    /// Names given with `--allowed-host`, lower-case, without port or trailing dot.
    extra: Vec<String>,
}

/// Why a request was refused, in words that name the setting that would allow it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal(pub String);

impl HostPolicy {
    pub fn new(listen: std::net::IpAddr, allowed_hosts: &[String]) -> Result<Self, String> {
        let extra = allowed_hosts
            .iter()
            .map(|h| {
                let (name, _) = split_host_port(h.trim())
                    .ok_or_else(|| format!("--allowed-host {h:?} is not a host name"))?;
                if name == "*" || name.is_empty() {
                    return Err(format!(
                        "--allowed-host {h:?}: name each host; a wildcard would let any site \
                         rebind its name to this server"
                    ));
                }
                Ok(name)
            })
            .collect::<Result<_, String>>()?;
        Ok(Self { listen, extra })
    }

    /// Checks the request's `Host` (or, in HTTP/2, its `:authority`).
    pub fn check(&self, host: Option<&str>) -> Result<(), Refusal> {
        let Some(host) = host else {
            return Err(Refusal(
                "the request names no Host; this server answers only to the names it was \
                 started for"
                    .into(),
            ));
        };
        let Some((name, _)) = split_host_port(host) else {
            return Err(Refusal(format!("Host {host:?} is not a host name")));
        };
        if self.allows(&name) {
            return Ok(());
        }
        Err(Refusal(format!(
            "Host {name:?} is not a name this server answers to (it answers to localhost, \
             127.0.0.1, [::1], the address it listens on, and the names given with \
             --allowed-host or AQIQAT_ALLOWED_HOSTS); if {name:?} really is this server, start \
             it with --allowed-host {name}"
        )))
    }

    fn allows(&self, name: &str) -> bool {
        if matches!(name, "localhost" | "127.0.0.1" | "[::1]")
            || self.extra.iter().any(|h| h == name)
        {
            return true;
        }
        let Some(ip) = parse_ip(name) else {
            return false;
        };
        // Listening on every address: each of the machine's addresses is one it listens on.
        // An address literal cannot be rebound, so it is safe to answer to any of them.
        ip == self.listen || self.listen.is_unspecified()
    }
}

/// The origins whose pages may change state here: the server's own, and `--allowed-origin`s.
#[derive(Debug, Clone, Default)]
pub struct OriginPolicy {
    /// Normalised `scheme://host:port`.
    allowed: Vec<String>,
}

impl OriginPolicy {
    pub fn new(allowed_origins: &[String]) -> Result<Self, String> {
        let allowed = allowed_origins
            .iter()
            .map(|o| {
                let origin = Origin::parse(o.trim()).ok_or_else(|| {
                    format!(
                        "--allowed-origin {o:?} is not an origin: give scheme, host and port \
                         if not the default, e.g. https://fraud-desk.example or \
                         http://localhost:3000 (no path, no wildcard)"
                    )
                })?;
                Ok(origin.normalised())
            })
            .collect::<Result<_, String>>()?;
        Ok(Self { allowed })
    }

    /// The allowed origins exactly as a browser sends them (default ports left out), for the
    /// CORS layer, which compares the `Origin` header byte for byte.
    pub fn browser_origins(&self) -> Vec<String> {
        self.allowed
            .iter()
            .filter_map(|o| Origin::parse(o))
            .map(|o| o.as_browser_sends())
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.allowed.is_empty()
    }

    /// Decides a request from its method and headers. `Ok` for anything that changes nothing,
    /// comes from the server's own origin or an allowed one, is not marked cross-site by the
    /// browser, or carries an API key (whose validity the key check decides next).
    pub fn check(&self, method: &Method, headers: &HeaderMap) -> Result<(), Refusal> {
        let changes_state = matches!(
            *method,
            Method::POST | Method::PUT | Method::PATCH | Method::DELETE
        ) || is_websocket_upgrade(headers);
        if !changes_state || carries_api_key(headers) {
            return Ok(());
        }
        let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let host = text(header::HOST.as_str());
        match text(header::ORIGIN.as_str()) {
            Some(origin) => {
                if self.is_own_or_allowed(origin, host) {
                    Ok(())
                } else {
                    Err(Refusal(format!(
                        "a request from the web page at {origin} was refused: this server takes \
                         uploads and changes only from its own page, from clients that are not \
                         browsers, or with an API key; to let that web app call it, start it \
                         with --allowed-origin {origin}"
                    )))
                }
            }
            // Browsers send Origin on every such request; Fetch Metadata is the second word.
            None => match text("sec-fetch-site") {
                Some(site @ ("cross-site" | "same-site")) => Err(Refusal(format!(
                    "a {site} request from another web page was refused: this server takes \
                     uploads and changes only from its own page, from clients that are not \
                     browsers, or with an API key"
                ))),
                _ => Ok(()),
            },
        }
    }

    fn is_own_or_allowed(&self, origin: &str, host: Option<&str>) -> bool {
        let Some(origin) = Origin::parse(origin) else {
            // `null` (sandboxed frames, files) and anything unparsable.
            return false;
        };
        if self.allowed.contains(&origin.normalised()) {
            return true;
        }
        let Some((host_name, host_port)) = host.and_then(split_host_port) else {
            return false;
        };
        // The page this server served is at the very address the browser asked for.
        origin.host == host_name
            && match host_port {
                Some(port) => port == origin.port,
                // A Host without a port is the scheme's default; behind a proxy that ends TLS
                // the browser says https while the proxy forwards plain http.
                None => origin.port == 80 || origin.port == 443,
            }
    }
}

/// The key check reads exactly these two forms; anything else (`Authorization: Basic …`) is
/// no key, and must not let a request skip the Origin check.
fn carries_api_key(headers: &HeaderMap) -> bool {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("Bearer "));
    bearer || headers.contains_key("x-api-key")
}

fn is_websocket_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("websocket"))
}

/// A web origin: scheme, host, port (the scheme's default when not written).
#[derive(Debug, PartialEq, Eq)]
struct Origin {
    scheme: &'static str,
    host: String,
    port: u16,
}

impl Origin {
    fn parse(text: &str) -> Option<Self> {
        let (scheme, rest) = text.split_once("://")?;
        let (scheme, default_port) = match scheme.to_ascii_lowercase().as_str() {
            "http" => ("http", 80),
            "https" => ("https", 443),
            _ => return None,
        };
        // An origin has no path; a trailing slash is forgiven in configuration.
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains(['/', '?', '#', '@']) {
            return None;
        }
        let (host, port) = split_host_port(authority)?;
        if host.is_empty() || host.contains('*') {
            return None;
        }
        Some(Self {
            scheme,
            host,
            port: port.unwrap_or(default_port),
        })
    }

    fn normalised(&self) -> String {
        format!("{}://{}:{}", self.scheme, self.host, self.port)
    }

    fn as_browser_sends(&self) -> String {
        let default = if self.scheme == "https" { 443 } else { 80 };
        if self.port == default {
            format!("{}://{}", self.scheme, self.host)
        } else {
            self.normalised()
        }
    }
}

/// Splits `host[:port]` (IPv6 in brackets) into a lower-case name without trailing dot, with
/// IPv6 kept in brackets, and the port if one is written. `None` for what is not a host.
fn split_host_port(text: &str) -> Option<(String, Option<u16>)> {
    let (name, port) = if let Some(rest) = text.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        inside.parse::<std::net::Ipv6Addr>().ok()?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?.parse().ok()?),
        };
        (format!("[{inside}]"), port)
    } else {
        match text.rsplit_once(':') {
            Some((name, port)) => (name.to_owned(), Some(port.parse().ok()?)),
            None => (text.to_owned(), None),
        }
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let valid = name.bytes().all(|b| {
        b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'[' | b']' | b':' | b'*')
    });
    valid.then_some((normalise_ipv6(&name), port))
}

/// `[0:0::1]` and `[::1]` are one address; names compare in one form.
fn normalise_ipv6(name: &str) -> String {
    name.strip_prefix('[')
        .and_then(|n| n.strip_suffix(']'))
        .and_then(|n| n.parse::<std::net::Ipv6Addr>().ok())
        .map_or_else(|| name.to_owned(), |ip| format!("[{ip}]"))
}

fn parse_ip(name: &str) -> Option<std::net::IpAddr> {
    let bare = name
        .strip_prefix('[')
        .and_then(|n| n.strip_suffix(']'))
        .unwrap_or(name);
    bare.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn loopback(extra: &[&str]) -> HostPolicy {
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        HostPolicy::new("127.0.0.1".parse().unwrap(), &extra).unwrap()
    }

    #[test]
    fn hosts_a_local_server_answers_to() {
        let p = loopback(&[]);
        for ok in [
            "localhost:8080",
            "LOCALHOST.",
            "127.0.0.1",
            "127.0.0.1:9",
            "[::1]:8080",
            "[0:0:0:0:0:0:0:1]",
        ] {
            assert_eq!(p.check(Some(ok)), Ok(()), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:8080",
            "localhost.evil.example",
            "127.0.0.2",
            "10.0.0.5:8080",
            "",
            "a b",
            "[::1",
        ] {
            let refusal = p.check(Some(bad)).unwrap_err();
            assert!(!refusal.0.is_empty(), "{bad}");
        }
        assert!(p.check(None).is_err());
        let named = p.check(Some("evil.example:8080")).unwrap_err().0;
        assert!(named.contains("--allowed-host evil.example"), "{named}");
    }

    #[test]
    fn allowed_hosts_and_the_listening_address() {
        let p = loopback(&["Aqiqat.Bank.example", "scanner.lan:8080"]);
        assert_eq!(p.check(Some("aqiqat.bank.example")), Ok(()));
        assert_eq!(p.check(Some("scanner.lan:443")), Ok(()));
        assert!(p.check(Some("bank.example")).is_err());

        let lan = HostPolicy::new("192.168.1.20".parse().unwrap(), &[]).unwrap();
        assert_eq!(lan.check(Some("192.168.1.20:8080")), Ok(()));
        assert!(lan.check(Some("192.168.1.21:8080")).is_err());
        assert!(lan.check(Some("scanner.lan")).is_err());

        let every = HostPolicy::new("0.0.0.0".parse().unwrap(), &[]).unwrap();
        assert_eq!(every.check(Some("192.168.1.21:8080")), Ok(()));
        assert!(
            every.check(Some("rebind.evil.example")).is_err(),
            "names still need --allowed-host"
        );
        assert!(HostPolicy::new("0.0.0.0".parse().unwrap(), &["*".into()]).is_err());
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        h
    }

    #[test]
    fn cross_site_state_changes_are_refused_and_the_rest_pass() {
        let p = OriginPolicy::new(&["https://fraud-desk.example/".into()]).unwrap();
        let host = ("host", "127.0.0.1:8080");
        let refused = |m: Method, h: &[(&'static str, &str)]| p.check(&m, &headers(h)).is_err();

        assert!(refused(
            Method::POST,
            &[host, ("origin", "http://evil.example")]
        ));
        assert!(refused(Method::DELETE, &[host, ("origin", "null")]));
        assert!(refused(
            Method::POST,
            &[host, ("origin", "http://127.0.0.1:9999")]
        ));
        assert!(refused(
            Method::POST,
            &[host, ("origin", "http://localhost:8080")]
        ));
        assert!(refused(
            Method::POST,
            &[host, ("sec-fetch-site", "cross-site")]
        ));
        assert!(refused(
            Method::POST,
            &[host, ("sec-fetch-site", "same-site")]
        ));
        assert!(refused(
            Method::GET,
            &[
                host,
                ("upgrade", "websocket"),
                ("origin", "http://evil.example")
            ]
        ));

        assert!(!refused(
            Method::GET,
            &[host, ("origin", "http://evil.example")]
        ));
        assert!(!refused(Method::POST, &[host]));
        assert!(!refused(
            Method::POST,
            &[host, ("sec-fetch-site", "same-origin")]
        ));
        assert!(!refused(
            Method::POST,
            &[host, ("origin", "http://127.0.0.1:8080")]
        ));
        assert!(!refused(
            Method::POST,
            &[host, ("origin", "https://fraud-desk.example")]
        ));
        assert!(!refused(
            Method::POST,
            &[host, ("origin", "https://fraud-desk.example:443")]
        ));
        assert!(!refused(
            Method::POST,
            &[
                host,
                ("origin", "http://evil.example"),
                ("x-api-key", "aqk_x")
            ]
        ));
        assert!(refused(
            Method::POST,
            &[
                host,
                ("origin", "http://evil.example"),
                ("authorization", "Basic eDp5")
            ]
        ));
        // Behind a TLS proxy that forwards its own Host without a port.
        assert!(!refused(
            Method::POST,
            &[
                ("host", "scan.bank.example"),
                ("origin", "https://scan.bank.example")
            ]
        ));

        let message = p
            .check(
                &Method::POST,
                &headers(&[host, ("origin", "http://evil.example")]),
            )
            .unwrap_err()
            .0;
        assert!(
            message.contains("--allowed-origin http://evil.example"),
            "{message}"
        );
    }

    #[test]
    fn allowed_origins_must_be_origins() {
        for bad in [
            "*",
            "evil.example",
            "ftp://x",
            "https://x/path",
            "https://*.x",
            "https://u@x",
        ] {
            assert!(OriginPolicy::new(&[bad.into()]).is_err(), "{bad}");
        }
        let p = OriginPolicy::new(&[
            "HTTPS://Desk.Example:443".into(),
            "http://localhost:3000".into(),
        ])
        .unwrap();
        assert_eq!(
            p.browser_origins(),
            ["https://desk.example", "http://localhost:3000"]
        );
    }
}
