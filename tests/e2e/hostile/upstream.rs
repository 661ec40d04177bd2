//! A hostile upstream on loopback, for the behaviours httpbin cannot
//! produce: echoes in trailers, status text and header names, gzip bombs,
//! oversized heads and bytes dripped slowly.
//!
//! Each connection reads one request head (and its body, when it declares a
//! length), asks the test's script what to do, does it, and closes.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request as the upstream received it.
#[derive(Debug, Clone)]
pub struct Received {
    /// The request line, such as `GET /x HTTP/1.1`.
    pub line: String,
    /// Header names (lowercase) and values, in order.
    pub headers: Vec<(String, String)>,
}

impl Received {
    /// The value of header `name`, if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The token the airlock attached, without its `Bearer ` prefix.
    pub fn token(&self) -> String {
        let auth = self.header("authorization").unwrap_or_default();
        auth.strip_prefix("Bearer ").unwrap_or(auth).to_string()
    }
}

/// What the upstream does with a connection.
pub enum Step {
    /// Writes these bytes.
    Write(Vec<u8>),
    /// Waits.
    Sleep(Duration),
    /// Writes `bytes` `times` times, waiting `every` before each.
    Drip {
        bytes: Vec<u8>,
        every: Duration,
        times: usize,
    },
}

type Script = dyn Fn(&Received) -> Vec<Step> + Send + Sync;

/// A running hostile upstream. Stops accepting when dropped.
pub struct Upstream {
    /// Port on 127.0.0.1.
    pub port: u16,
    /// Every request received, in order.
    pub received: Arc<Mutex<Vec<Received>>>,
    stop: Arc<AtomicBool>,
}

impl Upstream {
    /// Starts serving `script` on a kernel-chosen loopback port.
    pub fn start(script: impl Fn(&Received) -> Vec<Step> + Send + Sync + 'static) -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let script: Arc<Script> = Arc::new(script);
        let (r, s) = (received.clone(), stop.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if s.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (r, script, s) = (r.clone(), script.clone(), s.clone());
                std::thread::spawn(move || serve(stream, &r, &*script, &s));
            }
        });
        Upstream {
            port,
            received,
            stop,
        }
    }

    /// `127.0.0.1:<port>`.
    pub fn authority(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Requests received so far.
    pub fn requests(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn serve(stream: TcpStream, received: &Mutex<Vec<Received>>, script: &Script, stop: &AtomicBool) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() || line.is_empty() {
        return;
    }
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).is_err() || h.trim_end().is_empty() {
            break;
        }
        if let Some((n, v)) = h.trim_end().split_once(':') {
            headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let request = Received {
        line: line.trim_end().to_string(),
        headers,
    };
    if let Some(n) = request
        .header("content-length")
        .and_then(|v| v.parse::<u64>().ok())
    {
        let _ = std::io::copy(&mut (&mut reader).take(n), &mut std::io::sink());
    }
    received.lock().unwrap().push(request.clone());

    let mut stream = stream;
    for step in script(&request) {
        let ok = match step {
            Step::Write(bytes) => stream.write_all(&bytes).is_ok(),
            Step::Sleep(d) => {
                std::thread::sleep(d);
                true
            }
            Step::Drip {
                bytes,
                every,
                times,
            } => (0..times).all(|_| {
                std::thread::sleep(every);
                !stop.load(Ordering::Relaxed) && stream.write_all(&bytes).is_ok()
            }),
        };
        if !ok {
            return;
        }
    }
    let _ = stream.flush();
}

/// A complete response with `head` lines (no final blank line) and `body`,
/// framed by `Content-Length`.
pub fn response(status_line: &str, head: &[String], body: &[u8]) -> Vec<u8> {
    let mut out = format!("{status_line}\r\n");
    for h in head {
        out.push_str(h);
        out.push_str("\r\n");
    }
    out.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    ));
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

/// `data` in one gzip member.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}
