//! The benchmark's upstream: a small HTTP/1.1 server on loopback, run in a
//! child process (this same binary with `--upstream`) so that its memory and
//! threads are not counted as the host's.
//!
//! `GET /small.json` answers a fixed 120-byte JSON document at once;
//! `GET /slow.json` answers it after [`SLOW`], to hold calls in flight.

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// How long `/slow.json` waits before answering.
pub const SLOW: Duration = Duration::from_millis(400);

/// The document every route answers.
pub const SMALL_JSON: &str = r#"{"id":12345,"name":"airlock-bench","private":false,"owner":{"login":"octo","id":1},"stars":42,"topics":["wasm","oauth"]}"#;

/// The running upstream child process; killed when dropped.
pub struct Upstream {
    /// Its port on 127.0.0.1.
    pub port: u16,
    child: Child,
}

impl Upstream {
    /// Starts this binary as the upstream and waits for its port.
    pub fn start() -> Upstream {
        let exe = std::env::current_exe().expect("finding the benchmark binary");
        let mut child = Command::new(exe)
            .arg("--upstream")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting the upstream process");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("reading the upstream's port");
        let port = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("upstream printed {line:?} instead of its port"));
        Upstream { port, child }
    }

    /// Base URL, such as `http://127.0.0.1:40123`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the server (child mode): prints the port, serves until killed or
/// until its parent goes away.
pub fn serve() {
    // One thread, like a single nginx worker: the upstream stays cheap and
    // leaves the second core to the client under test.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("building the upstream runtime");
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the upstream");
        println!("{}", listener.local_addr().unwrap().port());
        let parent = std::os::unix::process::parent_id();
        loop {
            let accepted = tokio::time::timeout(Duration::from_secs(1), listener.accept()).await;
            // The benchmark is bounded: stop when its process is gone.
            if std::os::unix::process::parent_id() != parent {
                return;
            }
            let Ok(Ok((tcp, _))) = accepted else { continue };
            let _ = tcp.set_nodelay(true);
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), hyper::service::service_fn(answer)),
            );
        }
    });
}

async fn answer(
    req: http::Request<hyper::body::Incoming>,
) -> Result<http::Response<Full<Bytes>>, std::convert::Infallible> {
    let response = match req.uri().path() {
        "/small.json" => json(),
        "/slow.json" => {
            tokio::time::sleep(SLOW).await;
            json()
        }
        _ => http::Response::builder()
            .status(404)
            .body(Full::new(Bytes::new()))
            .unwrap(),
    };
    Ok(response)
}

fn json() -> http::Response<Full<Bytes>> {
    http::Response::builder()
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(SMALL_JSON.as_bytes())))
        .unwrap()
}
