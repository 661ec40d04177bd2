//! The benchmark's upstream: a small HTTP/1.1 server on loopback, run in a
//! child process (this same binary with `--upstream`) so that its memory and
//! threads are not counted as the host's.
//!
//! `GET /small.json` answers a fixed 120-byte JSON document at once;
//! `GET /slow.json` answers it after [`SLOW`], to hold calls in flight.
//! `POST /token` is an OAuth 2.0 token endpoint for the refresh grant
//! (RFC 6749 section 6): after [`REFRESH_DELAY`], as a provider would take,
//! it issues a new access token and rotates the refresh token.
//! `GET /refreshes` answers how many refreshes it has served.

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How long `/slow.json` waits before answering.
pub const SLOW: Duration = Duration::from_millis(400);

/// How long the token endpoint takes to answer a refresh.
pub const REFRESH_DELAY: Duration = Duration::from_millis(100);

/// Refresh grants the token endpoint has served.
static REFRESHES: AtomicU64 = AtomicU64::new(0);

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

    /// How many refresh grants the token endpoint has served so far.
    pub async fn refreshes(&self) -> u64 {
        let stream = tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .expect("connecting to the upstream");
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("handshake with the upstream");
        tokio::spawn(connection);
        let request = http::Request::get("/refreshes")
            .header("host", "127.0.0.1")
            .body(http_body_util::Empty::<Bytes>::new())
            .unwrap();
        let response = sender.send_request(request).await.expect("GET /refreshes");
        let body = http_body_util::BodyExt::collect(response.into_body())
            .await
            .expect("reading /refreshes")
            .to_bytes();
        std::str::from_utf8(&body)
            .ok()
            .and_then(|t| t.parse().ok())
            .expect("/refreshes answers a count")
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
        "/token" => token(req).await,
        "/refreshes" => http::Response::new(Full::new(Bytes::from(
            REFRESHES.load(Ordering::SeqCst).to_string(),
        ))),
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

/// Answers a refresh grant with a new token pair; anything else with
/// `invalid_request`.
async fn token(req: http::Request<hyper::body::Incoming>) -> http::Response<Full<Bytes>> {
    use http_body_util::BodyExt as _;
    let body = req.into_body().collect().await.map(|b| b.to_bytes());
    let form = body.as_deref().unwrap_or_default();
    let is_refresh = form
        .split(|b| *b == b'&')
        .any(|pair| pair == b"grant_type=refresh_token");
    if !is_refresh {
        return http::Response::builder()
            .status(400)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from_static(
                br#"{"error":"invalid_request"}"#,
            )))
            .unwrap();
    }
    tokio::time::sleep(REFRESH_DELAY).await;
    let n = REFRESHES.fetch_add(1, Ordering::SeqCst) + 1;
    let reply = format!(
        r#"{{"access_token":"bench-refreshed-access-{n:08}-0123456789abcdef","token_type":"Bearer","expires_in":3600,"refresh_token":"bench-rotated-refresh-{n:08}-0123456789abcdef"}}"#
    );
    http::Response::builder()
        .header("content-type", "application/json")
        .header("cache-control", "no-store")
        .body(Full::new(Bytes::from(reply)))
        .unwrap()
}
