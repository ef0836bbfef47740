//! A forward proxy on loopback that holds an external program (yt-dlp) to the address
//! policy: the program is told to send every request through it, and the proxy resolves
//! each destination itself, refuses the ones inside the network, and connects only to the
//! addresses it checked. Without it, yt-dlp would follow a post's redirects and API calls
//! wherever they lead, including into the network it runs in.
//!
//! Two request forms arrive: `CONNECT host:port` (HTTPS, tunnelled after the check) and
//! absolute-form plain HTTP (`GET http://host/path`), forwarded as origin-form with
//! `Connection: close` so that one connection never carries a second destination.

use crate::policy::{AddressPolicy, check_url};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The longest request head accepted.
const MAX_HEAD: usize = 32 << 10;

/// A running proxy; it stops when dropped.
pub struct PolicyProxy {
    address: SocketAddr,
    stopping: Arc<AtomicBool>,
    refusals: Arc<Mutex<Vec<String>>>,
}

impl PolicyProxy {
    /// Starts a proxy on a free loopback port; connections end by `deadline` at the latest.
    pub fn start(policy: AddressPolicy, deadline: Instant) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0))?;
        let address = listener.local_addr()?;
        let stopping = Arc::new(AtomicBool::new(false));
        let refusals = Arc::new(Mutex::new(Vec::new()));
        let (stop, refused) = (stopping.clone(), refusals.clone());
        let policy = Arc::new(policy);
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(client) = client else { continue };
                let (policy, refused) = (policy.clone(), refused.clone());
                std::thread::spawn(move || {
                    if let Err(why) = serve(client, &policy, deadline, &refused) {
                        refused.lock().unwrap_or_else(|p| p.into_inner()).push(why);
                    }
                });
            }
        });
        Ok(Self {
            address,
            stopping,
            refusals,
        })
    }

    /// What to pass as the program's proxy.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Why requests were refused, in order.
    pub fn refusals(&self) -> Vec<String> {
        self.refusals
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl Drop for PolicyProxy {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::Relaxed);
        // Wake the accepting thread so that it sees the flag.
        let _ = TcpStream::connect_timeout(&self.address, Duration::from_millis(200));
    }
}

fn remaining(deadline: Instant) -> Option<Duration> {
    deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
}

/// Serves one client connection; refusals go to `refused` before the client hears them, and
/// `Err` carries a failure worth reporting.
fn serve(
    client: TcpStream,
    policy: &AddressPolicy,
    deadline: Instant,
    refused: &Mutex<Vec<String>>,
) -> Result<(), String> {
    let refuse = |status: u16, why: String| deny(&client, status, why, refused);
    let Some(left) = remaining(deadline) else {
        return Ok(());
    };
    let _ = client.set_read_timeout(Some(left));
    let _ = client.set_write_timeout(Some(left));
    let mut reader = BufReader::new(client.try_clone().map_err(|e| e.to_string())?);
    let mut head = Vec::new();
    loop {
        let before = head.len();
        let n = reader
            .read_until(b'\n', &mut head)
            .map_err(|e| e.to_string())?;
        if n == 0 {
            return Ok(());
        }
        if head.len() > MAX_HEAD {
            return refuse(431, "request head too large".into());
        }
        let line = &head[before..];
        if line == b"\r\n" || line == b"\n" {
            break;
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let mut lines = head.lines();
    let request = lines.next().unwrap_or_default().to_owned();
    let mut parts = request.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if method.eq_ignore_ascii_case("CONNECT") {
        let (host, port) = match target.rsplit_once(':').map(|(h, p)| (h, p.parse::<u16>())) {
            Some((h, Ok(p))) => (h.trim_start_matches('[').trim_end_matches(']'), p),
            _ => return refuse(400, format!("CONNECT {target:?}: not host:port")),
        };
        let upstream = match connect(policy, host, port, deadline) {
            Ok(s) => s,
            Err(why) => return refuse(403, why),
        };
        (&client)
            .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
            .map_err(|e| e.to_string())?;
        splice(reader, client, upstream, Vec::new());
        return Ok(());
    }
    let (host, port) = match check_url(target) {
        Ok(hp) => hp,
        Err(refusal) => return refuse(403, refusal.to_string()),
    };
    let upstream = match connect(policy, &host, port, deadline) {
        Ok(s) => s,
        Err(why) => return refuse(403, why),
    };
    // Origin-form for the server, and one request per connection.
    let after_authority = target.split_once("://").map_or("", |(_, r)| r);
    let path = after_authority
        .find('/')
        .map_or("/", |i| &after_authority[i..]);
    let version = parts.next().unwrap_or("HTTP/1.1");
    let mut forwarded = format!("{method} {path} {version}\r\n");
    for line in lines {
        let name = line.split(':').next().unwrap_or_default().trim();
        if line.is_empty()
            || name.eq_ignore_ascii_case("connection")
            || name.eq_ignore_ascii_case("proxy-connection")
            || name.eq_ignore_ascii_case("proxy-authorization")
            || name.eq_ignore_ascii_case("keep-alive")
        {
            continue;
        }
        forwarded.push_str(line);
        forwarded.push_str("\r\n");
    }
    forwarded.push_str("Connection: close\r\n\r\n");
    splice(reader, client, upstream, forwarded.into_bytes());
    Ok(())
}

/// Connects to `host:port` at an address the policy allows, or says why not.
fn connect(
    policy: &AddressPolicy,
    host: &str,
    port: u16,
    deadline: Instant,
) -> Result<TcpStream, String> {
    let addresses = policy
        .connectable(host, port)
        .map_err(|refusal| refusal.to_string())?;
    let mut last = String::from("no address");
    for a in addresses {
        let Some(left) = remaining(deadline) else {
            return Err(format!("{host}:{port}: out of time"));
        };
        match TcpStream::connect_timeout(&a, left.min(Duration::from_secs(15))) {
            Ok(s) => {
                let left = remaining(deadline).unwrap_or(Duration::from_millis(1));
                let _ = s.set_read_timeout(Some(left));
                let _ = s.set_write_timeout(Some(left));
                return Ok(s);
            }
            Err(e) => last = format!("{host}:{port} ({a}): {e}"),
        }
    }
    Err(last)
}

/// Records the refusal, then answers the client with `status` and the reason: in that order,
/// so that whoever reads the answer also finds the refusal recorded.
fn deny(
    mut client: &TcpStream,
    status: u16,
    why: String,
    refused: &Mutex<Vec<String>>,
) -> Result<(), String> {
    let body = format!("aqiqat refused this request: {why}\n");
    refused.lock().unwrap_or_else(|p| p.into_inner()).push(why);
    let _ = write!(
        client,
        "HTTP/1.1 {status} Refused\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = client.shutdown(Shutdown::Both);
    Ok(())
}

/// Copies both ways until either side closes (or the deadline's timeouts end it); `first` is
/// sent upstream before anything else, and whatever the client sent beyond its head follows.
fn splice(
    mut from_client: BufReader<TcpStream>,
    client: TcpStream,
    upstream: TcpStream,
    first: Vec<u8>,
) {
    let Ok(mut to_upstream) = upstream.try_clone() else {
        return;
    };
    let up = std::thread::spawn(move || {
        let buffered = from_client.buffer().to_vec();
        from_client.consume(buffered.len());
        let ok = to_upstream.write_all(&first).is_ok() && to_upstream.write_all(&buffered).is_ok();
        if ok {
            let _ = std::io::copy(from_client.get_mut(), &mut to_upstream);
        }
        let _ = to_upstream.shutdown(Shutdown::Write);
    });
    let (mut upstream, mut client) = (upstream, client);
    let mut buf = vec![0u8; 64 << 10];
    loop {
        match upstream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if client.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = client.shutdown(Shutdown::Both);
    let _ = upstream.shutdown(Shutdown::Both);
    let _ = up.join();
}
