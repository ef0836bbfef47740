//! Links against a real HTTP server on loopback. Fetching: a file, a redirect chain, redirects
//! into private networks and to other schemes, a redirect loop, oversized bodies (declared and
//! not), a slow server and a 404. Resolving: pages with OpenGraph tags and media elements, a
//! player page, a page without media, media in private networks or too large, and pages only
//! yt-dlp reads (through the policy proxy). Each ends in media or a precise refusal, never a
//! hang.

use aqiqat_link::{
    FetchError, FetchLimits, Refusal, ResolveError, ResolveLimits, ResolvedBy, YtDlp, fetch,
    resolve,
};
use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, TcpListener, TcpStream};
use std::time::Duration;

const FILE: &[u8] = b"RIFF....WAVEfmt pretend audio bytes for the fetch test";
const OTHER_FILE: &[u8] = b"ID3 another pretend item";

/// `/declares-long` sends this many 256 KiB chunks if nobody stops it, and counts those sent.
const LONG_CHUNKS: usize = 64;
static LONG_SENT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
static LONG_DONE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn page(body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn media(content_type: &str, bytes: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        bytes.len()
    )
    .into_bytes();
    r.extend_from_slice(bytes);
    r
}

/// A page that names its video only in JSON-LD, which yt-dlp reads and this crate does not.
fn json_ld(content_url: &str) -> Vec<u8> {
    page(&format!(
        "<html><head><title>Post</title><script type=\"application/ld+json\">\
         {{\"@context\":\"https://schema.org\",\"@type\":\"VideoObject\",\"name\":\"clip\",\
         \"contentUrl\":\"{content_url}\",\"uploadDate\":\"2026-01-01\"}}</script></head>\
         <body>post</body></html>"
    ))
}

fn answer(mut stream: TcpStream) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    // Drain the headers, keeping the host the client asked for.
    let mut host = String::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
            break;
        }
        if let Some(v) = h.strip_prefix("Host:").or_else(|| h.strip_prefix("host:")) {
            host = v.trim().to_owned();
        }
    }
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let redirect =
        |to: &str| format!("HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\n\r\n");
    let reply = match path.as_str() {
        "/file" => {
            let mut r = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: audio/wav\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                FILE.len()
            )
            .into_bytes();
            r.extend_from_slice(FILE);
            r
        }
        "/other" => media("audio/mpeg", OTHER_FILE),
        "/clip.mp4" => media("video/mp4", FILE),
        "/og" => page(
            "<!DOCTYPE html><html><head><meta property=\"og:video\" content=\"/file\">\
             </head><body><audio controls src=\"other\"></audio></body></html>",
        ),
        "/video-element" => page(
            "<html><body><video controls><source src=\"/r1\" type=\"video/mp4\"></video>\
             </body></html>",
        ),
        "/player" => {
            page("<html><head><meta property=\"og:video\" content=\"/embed\"></head></html>")
        }
        "/embed" => page("<html><body><script>player()</script></body></html>"),
        "/no-media" => page("<html><head><title>Text</title></head><body>words</body></html>"),
        "/og-private" => page(
            "<html><head><meta property=\"og:video\" content=\"http://10.0.0.1/v.mp4\">\
             </head></html>",
        ),
        "/og-big" => {
            page("<html><head><meta property=\"og:video\" content=\"/declared-big\"></head></html>")
        }
        "/json-ld" => json_ld(&format!("http://{host}/clip.mp4")),
        "/json-ld-private" => json_ld("http://10.0.0.1/clip.mp4"),
        "/json-ld-big" => json_ld(&format!("http://{host}/big-clip.mp4")),
        "/big-clip.mp4" => media("video/mp4", &[0u8; 64 << 10]),
        "/declares-long" => {
            // A header, then more than the prefix the check sees, sent slowly: refused before
            // the rest arrives.
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: audio/wav\r\nConnection: close\r\n\r\nLONG",
            );
            let chunk = vec![0u8; 256 << 10];
            for _ in 0..LONG_CHUNKS {
                if stream.write_all(&chunk).is_err() {
                    break;
                }
                LONG_SENT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(20));
            }
            LONG_DONE.store(true, std::sync::atomic::Ordering::SeqCst);
            return;
        }
        "/r1" => redirect("/r2").into_bytes(),
        "/r2" => redirect("file").into_bytes(),
        "/loop" => redirect("/loop").into_bytes(),
        "/private" => redirect("http://10.0.0.1/x").into_bytes(),
        "/metadata" => redirect("http://169.254.169.254/latest/meta-data/").into_bytes(),
        "/ftp" => redirect("ftp://example.org/a.wav").into_bytes(),
        "/declared-big" => {
            b"HTTP/1.1 200 OK\r\nContent-Length: 10000000\r\nConnection: close\r\n\r\nxxxx".to_vec()
        }
        "/endless" => {
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
            let chunk = vec![7u8; 64 << 10];
            while stream.write_all(&chunk).is_ok() {}
            return;
        }
        "/slow" => {
            std::thread::sleep(Duration::from_secs(3));
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec()
        }
        _ => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec(),
    };
    let _ = stream.write_all(&reply);
}

/// A server on loopback, and limits that allow exactly its address.
fn server() -> (String, FetchLimits) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || answer(stream));
        }
    });
    let limits = FetchLimits {
        max_bytes: 1 << 20,
        timeout: Duration::from_secs(1),
        max_redirects: 3,
        allow_private: false,
        also_allow: vec![IpAddr::from([127, 0, 0, 1])],
        prefix_check: None,
    };
    (base, limits)
}

#[test]
fn a_direct_file_and_a_redirect_chain_give_their_bytes_and_the_urls_followed() {
    let (base, limits) = server();
    let got = fetch(&format!("{base}/file"), &limits).unwrap();
    assert_eq!(got.bytes, FILE);
    assert_eq!(got.content_type.as_deref(), Some("audio/wav"));
    assert!(got.redirects.is_empty());
    let got = fetch(&format!("{base}/r1"), &limits).unwrap();
    assert_eq!(got.bytes, FILE);
    assert_eq!(
        got.redirects,
        vec![format!("{base}/r2"), format!("{base}/file")]
    );
    assert_eq!(got.final_url(), format!("{base}/file"));
}

#[test]
fn links_into_private_networks_and_other_schemes_are_refused() {
    let (base, limits) = server();
    match fetch(&format!("{base}/private"), &limits) {
        Err(FetchError::Refused(Refusal::Private { address, .. })) => {
            assert_eq!(address, IpAddr::from([10, 0, 0, 1]))
        }
        other => panic!("{other:?}"),
    }
    let err = fetch(&format!("{base}/metadata"), &limits).unwrap_err();
    assert!(err.to_string().contains("cloud metadata"), "{err}");
    assert!(matches!(
        fetch(&format!("{base}/ftp"), &limits),
        Err(FetchError::Refused(Refusal::Scheme(_)))
    ));
    // The test server itself is loopback: refused unless allowed.
    let strict = FetchLimits {
        also_allow: Vec::new(),
        ..limits.clone()
    };
    let err = fetch(&format!("{base}/file"), &strict).unwrap_err();
    assert!(err.to_string().contains("loopback"), "{err}");
    assert!(err.is_bad_input());
}

#[test]
fn a_body_whose_first_bytes_are_refused_is_not_downloaded_further() {
    let (base, limits) = server();
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = seen.clone();
    let limits = FetchLimits {
        max_bytes: 64 << 20,
        timeout: Duration::from_secs(20),
        prefix_check: Some(aqiqat_link::PrefixCheck(std::sync::Arc::new(
            move |prefix: &[u8]| {
                counter.store(prefix.len(), std::sync::atomic::Ordering::Relaxed);
                if prefix.starts_with(b"LONG") {
                    Err("it declares 5 hours".to_owned())
                } else {
                    Ok(())
                }
            },
        ))),
        ..limits
    };
    match fetch(&format!("{base}/declares-long"), &limits) {
        Err(e @ FetchError::Rejected(..)) => {
            assert!(e.is_bad_input());
            assert!(e.to_string().contains("it declares 5 hours"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        seen.load(std::sync::atomic::Ordering::Relaxed),
        aqiqat_link::PREFIX_BYTES
    );
    // The connection was dropped at the refusal: the server could not send all 16 MiB.
    let waited = std::time::Instant::now();
    while !LONG_DONE.load(std::sync::atomic::Ordering::SeqCst) {
        assert!(
            waited.elapsed() < Duration::from_secs(30),
            "the server never stopped"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let sent = LONG_SENT.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        sent < LONG_CHUNKS,
        "{sent} chunks sent: the download went on"
    );
    // A short body is checked whole, and passes.
    let got = fetch(&format!("{base}/file"), &limits).unwrap();
    assert_eq!(got.bytes, FILE);
    assert_eq!(seen.load(std::sync::atomic::Ordering::Relaxed), FILE.len());
}

#[test]
fn loops_oversized_bodies_slow_servers_and_missing_files_end_in_clear_errors() {
    let (base, limits) = server();
    let looped = fetch(&format!("{base}/loop"), &limits);
    assert!(
        matches!(looped, Err(FetchError::TooManyRedirects(_, 3))),
        "{looped:?}"
    );
    assert!(matches!(
        fetch(&format!("{base}/declared-big"), &limits),
        Err(FetchError::TooLarge(..))
    ));
    assert!(matches!(
        fetch(&format!("{base}/endless"), &limits),
        Err(FetchError::TooLarge(..))
    ));
    let started = std::time::Instant::now();
    let slow = fetch(&format!("{base}/slow"), &limits);
    assert!(matches!(slow, Err(FetchError::Timeout(..))), "{slow:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the deadline held"
    );
    match fetch(&format!("{base}/missing"), &limits) {
        Err(FetchError::Status { status: 404, .. }) => {}
        other => panic!("{other:?}"),
    }
}

fn resolve_limits(limits: FetchLimits) -> ResolveLimits {
    ResolveLimits {
        fetch: FetchLimits {
            timeout: Duration::from_secs(20),
            ..limits
        },
        ..ResolveLimits::default()
    }
}

#[test]
fn a_direct_link_is_one_item_without_a_page() {
    let (base, limits) = server();
    let got = resolve(&format!("{base}/r1"), &resolve_limits(limits), None).unwrap();
    assert_eq!(got.resolved_by, ResolvedBy::Direct);
    assert_eq!(got.page_sha256, None);
    assert_eq!(got.items.len(), 1);
    assert_eq!(got.items[0].bytes, FILE);
    assert_eq!(got.items[0].media_url, format!("{base}/r1"));
    assert_eq!(got.items[0].redirects.last(), Some(&format!("{base}/file")));
}

#[test]
fn a_page_gives_every_medium_it_declares_with_its_own_hash() {
    let (base, limits) = server();
    let limits = resolve_limits(limits);
    let got = resolve(&format!("{base}/og"), &limits, None).unwrap();
    assert_eq!(got.resolved_by, ResolvedBy::Page);
    let items: Vec<(&str, Option<&str>, &[u8])> = got
        .items
        .iter()
        .map(|i| (i.media_url.as_str(), i.found_in.as_deref(), &i.bytes[..]))
        .collect();
    let (file, other) = (format!("{base}/file"), format!("{base}/other"));
    assert_eq!(
        items,
        vec![
            (file.as_str(), Some("og:video"), FILE),
            (other.as_str(), Some("<audio>"), OTHER_FILE)
        ]
    );
    let sha = got.page_sha256.unwrap();
    assert_eq!(sha.len(), 64);
    let got = resolve(&format!("{base}/video-element"), &limits, None).unwrap();
    assert_eq!(got.items.len(), 1);
    assert_eq!(got.items[0].found_in.as_deref(), Some("<video>"));
    assert_eq!(got.items[0].bytes, FILE);
    assert_eq!(
        got.items[0].redirects,
        vec![format!("{base}/r2"), format!("{base}/file")]
    );
    assert_ne!(got.page_sha256.unwrap(), sha, "each page hashed as served");
}

#[test]
fn pages_without_media_and_media_out_of_bounds_are_refused_with_the_reason() {
    let (base, limits) = server();
    let limits = resolve_limits(limits);
    match resolve(&format!("{base}/player"), &limits, None) {
        Err(ResolveError::NoMedia { why, .. }) => {
            assert!(
                why.contains("a player page") && why.contains("yt-dlp"),
                "{why}"
            )
        }
        other => panic!("{other:?}"),
    }
    match resolve(&format!("{base}/no-media"), &limits, None) {
        Err(e @ ResolveError::NoMedia { .. }) => {
            assert!(e.is_bad_input());
            assert!(e.to_string().contains("declares no video or audio"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    match resolve(&format!("{base}/og-private"), &limits, None) {
        Err(ResolveError::Fetch(FetchError::Refused(Refusal::Private { address, .. }))) => {
            assert_eq!(address, IpAddr::from([10, 0, 0, 1]))
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        resolve(&format!("{base}/og-big"), &limits, None),
        Err(ResolveError::Fetch(FetchError::TooLarge(..)))
    ));
    assert!(matches!(
        resolve(&format!("{base}/missing"), &limits, None),
        Err(ResolveError::Fetch(FetchError::Status { status: 404, .. }))
    ));
}

/// yt-dlp as CI installs it (`bash .ci/run`); these tests fail rather than pass without it.
fn ytdlp() -> YtDlp {
    YtDlp::find().unwrap_or_else(|| {
        panic!(
            "yt-dlp is not on PATH (nor named by {}): `bash .ci/run` installs it",
            aqiqat_link::ytdlp::PROGRAM_ENV
        )
    })
}

#[test]
fn yt_dlp_takes_what_the_page_does_not_declare_through_the_policy_proxy() {
    let ytdlp = ytdlp();
    assert_eq!(
        ytdlp.version,
        aqiqat_link::ytdlp::TESTED_VERSION,
        "the README names the version tested"
    );
    let (base, limits) = server();
    let limits = resolve_limits(limits);
    let got = resolve(&format!("{base}/json-ld"), &limits, Some(&ytdlp)).unwrap();
    assert_eq!(got.resolved_by, ResolvedBy::YtDlp(ytdlp.version.clone()));
    assert_eq!(got.items.len(), 1);
    assert_eq!(got.items[0].bytes, FILE);
    assert_eq!(got.items[0].media_url, format!("{base}/clip.mp4"));
    assert_eq!(got.items[0].title.as_deref(), Some("clip"));
    assert!(got.page_sha256.is_some(), "the page was read here first");

    // The media sits in a private network: the proxy refuses yt-dlp's request and says why.
    match resolve(&format!("{base}/json-ld-private"), &limits, Some(&ytdlp)) {
        Err(e @ ResolveError::YtDlp { .. }) => {
            let e = e.to_string();
            assert!(
                e.contains("10.0.0.1") && e.contains("private network"),
                "{e}"
            )
        }
        other => panic!("{other:?}"),
    }
    // Nothing anywhere: yt-dlp finds nothing either, and the page's own reason is given.
    match resolve(&format!("{base}/no-media"), &limits, Some(&ytdlp)) {
        Err(e @ (ResolveError::NoMedia { .. } | ResolveError::YtDlp { .. })) => {
            assert!(e.to_string().contains("declares no video or audio"), "{e}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn yt_dlp_is_held_to_the_size_cap_before_the_download_completes() {
    let ytdlp = ytdlp();
    let (base, limits) = server();
    let limits = ResolveLimits {
        fetch: FetchLimits {
            max_bytes: 8 << 10,
            ..resolve_limits(limits).fetch
        },
        ..ResolveLimits::default()
    };
    match resolve(&format!("{base}/json-ld-big"), &limits, Some(&ytdlp)) {
        Err(e) => assert!(e.to_string().contains("max-filesize"), "{e}"),
        Ok(r) => panic!("{} items", r.items.len()),
    }
}

#[test]
fn the_policy_proxy_tunnels_only_to_allowed_addresses() {
    use aqiqat_link::proxy::PolicyProxy;
    use std::io::Read;
    let (base, limits) = server();
    let target = base.trim_start_matches("http://").to_owned();
    let proxy = PolicyProxy::start(
        limits.policy(),
        std::time::Instant::now() + Duration::from_secs(10),
    )
    .unwrap();
    let ask = |request: String| {
        let mut s = TcpStream::connect(proxy.url().trim_start_matches("http://")).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(request.as_bytes()).unwrap();
        let mut answer = Vec::new();
        let _ = s.read_to_end(&mut answer);
        String::from_utf8_lossy(&answer).into_owned()
    };
    // HTTPS goes by CONNECT: a tunnel to the allowed server carries a request through.
    let tunnelled = ask(format!(
        "CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\nGET /file HTTP/1.1\r\nHost: {target}\r\n\r\n"
    ));
    assert!(
        tunnelled.starts_with("HTTP/1.1 200 Connection established"),
        "{tunnelled}"
    );
    assert!(
        tunnelled.ends_with(std::str::from_utf8(FILE).unwrap()),
        "{tunnelled}"
    );
    let refused = ask("CONNECT 169.254.169.254:443 HTTP/1.1\r\n\r\n".into());
    assert!(
        refused.starts_with("HTTP/1.1 403") && refused.contains("cloud metadata"),
        "{refused}"
    );
    // Plain HTTP in absolute form is forwarded, or refused the same way.
    let forwarded = ask(format!(
        "GET {base}/other HTTP/1.1\r\nHost: {target}\r\n\r\n"
    ));
    assert!(
        forwarded.ends_with(std::str::from_utf8(OTHER_FILE).unwrap()),
        "{forwarded}"
    );
    let refused = ask("GET http://10.1.2.3/x HTTP/1.1\r\nHost: 10.1.2.3\r\n\r\n".into());
    assert!(
        refused.starts_with("HTTP/1.1 403") && refused.contains("private network"),
        "{refused}"
    );
    let refused = ask("GET file:///etc/passwd HTTP/1.1\r\n\r\n".into());
    assert!(refused.starts_with("HTTP/1.1 403"), "{refused}");
    assert_eq!(proxy.refusals().len(), 3, "{:?}", proxy.refusals());
}

/// The real sites, which CI cannot reach: `AQIQAT_REAL_LINKS="URL …" cargo test -p aqiqat-link
/// --test links -- --ignored` resolves each public post given (yt-dlp on PATH) and checks that
/// media came back. Not run in CI: it needs the internet.
#[test]
#[ignore = "needs the internet; see the doc comment"]
fn real_posts_resolve_to_media() {
    let links = std::env::var("AQIQAT_REAL_LINKS").expect("AQIQAT_REAL_LINKS names the posts");
    let ytdlp = YtDlp::find();
    for link in links.split_whitespace() {
        let got = resolve(link, &ResolveLimits::default(), ytdlp.as_ref())
            .unwrap_or_else(|e| panic!("{link}: {e}"));
        assert!(!got.items.is_empty(), "{link}");
        for item in &got.items {
            assert!(!item.bytes.is_empty(), "{link}: {}", item.media_url);
        }
    }
}
