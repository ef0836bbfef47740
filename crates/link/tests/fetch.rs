//! Fetching against a real HTTP server on loopback: a file, a redirect chain, redirects into
//! private networks and to other schemes, a redirect loop, oversized bodies (declared and not),
//! a slow server and a 404. Each ends in bytes or a precise refusal, never a hang.

use aqiqat_link::{FetchError, FetchLimits, Refusal, fetch};
use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, TcpListener, TcpStream};
use std::time::Duration;

const FILE: &[u8] = b"RIFF....WAVEfmt pretend audio bytes for the fetch test";

fn answer(mut stream: TcpStream) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    // Drain the headers.
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
            break;
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
