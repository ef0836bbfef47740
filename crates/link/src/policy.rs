//! Where a link may lead.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};

/// Why a link is not followed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{0:?} is not a web link: only http:// and https:// are followed")]
    Scheme(String),
    #[error("{0:?} is not a link aqiqat can read: {1}")]
    Malformed(String, &'static str),
    #[error(
        "{host} resolves to {address}, {why}; links into the local network are refused \
         (--allow-private-urls lifts this for tests and closed deployments)"
    )]
    Private {
        host: String,
        address: IpAddr,
        why: &'static str,
    },
    #[error("{0} does not resolve: {1}")]
    Dns(String, String),
}

/// The host and port of an `http(s)` URL, or why it is refused. Only the parts the policy
/// needs are parsed: scheme, optional user info, host (a name, an IPv4 address or a bracketed
/// IPv6 address) and port.
pub fn check_url(url: &str) -> Result<(String, u16), Refusal> {
    let url = url.trim();
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| Refusal::Scheme(url.to_owned()))?;
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "http" => 80,
        "https" => 443,
        _ => return Err(Refusal::Scheme(url.to_owned())),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = if let Some(bracketed) = host_port.strip_prefix('[') {
        let (host, after) = bracketed
            .split_once(']')
            .ok_or_else(|| Refusal::Malformed(url.to_owned(), "an unclosed IPv6 bracket"))?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => return Err(Refusal::Malformed(url.to_owned(), "text after the address")),
        };
        (host.to_owned(), port)
    } else {
        match host_port.rsplit_once(':') {
            Some((h, p)) => (h.to_owned(), Some(p)),
            None => (host_port.to_owned(), None),
        }
    };
    if host.is_empty() {
        return Err(Refusal::Malformed(url.to_owned(), "no host"));
    }
    let port = match port {
        Some(p) => p
            .parse::<u16>()
            .map_err(|_| Refusal::Malformed(url.to_owned(), "a port that is not a number"))?,
        None => default_port,
    };
    Ok((host.to_ascii_lowercase(), port))
}

/// Why `address` is inside a network rather than on the internet; `None` when it is public.
pub fn check_address(address: IpAddr) -> Option<&'static str> {
    match address {
        IpAddr::V4(v4) => check_v4(v4),
        IpAddr::V6(v6) => {
            // An IPv4 address written as IPv6 reaches the IPv4 host.
            if let Some(v4) = v6.to_ipv4_mapped() {
                return check_v4(v4);
            }
            check_v6(v6)
        }
    }
}

fn check_v4(a: Ipv4Addr) -> Option<&'static str> {
    let [b0, b1, ..] = a.octets();
    if a == Ipv4Addr::new(169, 254, 169, 254) {
        Some("the cloud metadata address")
    } else if a.is_loopback() {
        Some("a loopback address (this machine)")
    } else if a.is_private() {
        Some("a private network address")
    } else if a.is_link_local() {
        Some("a link-local address")
    } else if b0 == 100 && (64..128).contains(&b1) {
        Some("a carrier-grade NAT address")
    } else if a.is_unspecified() || b0 == 0 {
        Some("an address of this network")
    } else if a.is_multicast() || a.is_broadcast() || b0 >= 240 {
        Some("a multicast, broadcast or reserved address")
    } else if (b0 == 192 && b1 == 0 && a.octets()[2] == 0) || (b0 == 198 && (18..20).contains(&b1))
    {
        Some("a protocol-assignment or benchmarking address")
    } else {
        None
    }
}

fn check_v6(a: Ipv6Addr) -> Option<&'static str> {
    let first = a.segments()[0];
    if a.is_loopback() {
        Some("a loopback address (this machine)")
    } else if a.is_unspecified() {
        Some("the unspecified address")
    } else if first & 0xfe00 == 0xfc00 {
        Some("a unique local (private) address")
    } else if first & 0xffc0 == 0xfe80 {
        Some("a link-local address")
    } else if a.is_multicast() {
        Some("a multicast address")
    } else if first == 0x64 && a.segments()[1] == 0xff9b {
        // NAT64 carries an IPv4 address in its last 32 bits.
        let [.., c, d] = a.segments();
        check_v4(Ipv4Addr::new(
            (c >> 8) as u8,
            c as u8,
            (d >> 8) as u8,
            d as u8,
        ))
    } else {
        None
    }
}

/// Resolves `host:port` and returns its addresses, or refuses when any of them lies inside a
/// network (a name with one public and one private address could be steered to the private
/// one). Callers connect only to the addresses returned, so DNS cannot change its answer
/// between this check and the connection.
pub fn resolve(host: &str, port: u16, allow_private: bool) -> Result<Vec<SocketAddr>, Refusal> {
    let addresses: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => (host, port)
            .to_socket_addrs()
            .map_err(|e| Refusal::Dns(host.to_owned(), e.to_string()))?
            .collect(),
    };
    if addresses.is_empty() {
        return Err(Refusal::Dns(host.to_owned(), "no addresses".into()));
    }
    if !allow_private {
        for a in &addresses {
            if let Some(why) = check_address(a.ip()) {
                return Err(Refusal::Private {
                    host: host.to_owned(),
                    address: a.ip(),
                    why,
                });
            }
        }
    }
    Ok(addresses)
}

/// Where connections may go: the address rules, or none of them (`allow_private`), with
/// exceptions for named addresses (a test server on loopback).
#[derive(Debug, Clone, Default)]
pub struct AddressPolicy {
    pub allow_private: bool,
    pub also_allow: Vec<IpAddr>,
}

impl AddressPolicy {
    /// The addresses `host:port` may be reached at, or why it may not be reached at all.
    pub fn connectable(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, Refusal> {
        let addresses = resolve(host, port, true)?;
        if !self.allow_private {
            for a in &addresses {
                if let Some(why) = check_address(a.ip())
                    && !self.also_allow.contains(&a.ip())
                {
                    return Err(Refusal::Private {
                        host: host.to_owned(),
                        address: a.ip(),
                        why,
                    });
                }
            }
        }
        Ok(addresses)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_web_links_are_followed() {
        assert_eq!(
            check_url("https://www.instagram.com/reel/abc/?x=1").unwrap(),
            ("www.instagram.com".into(), 443)
        );
        assert_eq!(
            check_url("HTTP://Example.org:8080").unwrap(),
            ("example.org".into(), 8080)
        );
        assert_eq!(
            check_url("http://user:pw@[::1]:81/x").unwrap(),
            ("::1".into(), 81)
        );
        for bad in [
            "file:///etc/passwd",
            "ftp://example.org/a",
            "gopher://x",
            "javascript:alert(1)",
            "example.org",
        ] {
            assert!(matches!(check_url(bad), Err(Refusal::Scheme(_))), "{bad}");
        }
        for bad in ["http://", "http://:80/", "http://[::1/", "http://h:port/"] {
            assert!(
                matches!(check_url(bad), Err(Refusal::Malformed(..))),
                "{bad}"
            );
        }
    }

    #[test]
    fn addresses_inside_a_network_are_named() {
        let inside = [
            "127.0.0.1",
            "127.8.9.10",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "169.254.1.1",
            "100.64.0.1",
            "100.127.255.255",
            "0.0.0.0",
            "0.1.2.3",
            "224.0.0.1",
            "255.255.255.255",
            "240.0.0.1",
            "192.0.0.8",
            "198.18.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
            "64:ff9b::a9fe:a9fe",
        ];
        for a in inside {
            assert!(check_address(a.parse().unwrap()).is_some(), "{a} passed");
        }
        assert_eq!(
            check_address("169.254.169.254".parse().unwrap()),
            Some("the cloud metadata address")
        );
        let outside = [
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "93.184.216.34",
            "2a00:1450:4001::1",
            "64:ff9b::808:808",
        ];
        for a in outside {
            assert_eq!(check_address(a.parse().unwrap()), None, "{a} refused");
        }
    }

    #[test]
    fn resolving_refuses_private_answers_unless_allowed() {
        match resolve("localhost", 80, false) {
            Err(Refusal::Private { address, .. }) => assert!(address.is_loopback()),
            other => panic!("{other:?}"),
        }
        let allowed = resolve("127.0.0.1", 8080, true).unwrap();
        assert_eq!(allowed, vec!["127.0.0.1:8080".parse().unwrap()]);
        let err = resolve("10.0.0.7", 443, false).unwrap_err().to_string();
        assert!(
            err.contains("private network") && err.contains("--allow-private-urls"),
            "{err}"
        );
    }
}
