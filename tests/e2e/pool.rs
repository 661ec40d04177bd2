//! Upstream connection reuse through the real fetch tool: a keep-alive
//! upstream (a small hyper server in this test, counting the connections it
//! accepts) sees one connection for many calls, and a connection whose
//! response was cut off by a limit is never reused.

use crate::support::{fetch, ok, sha256_file};
use airlock::audit::AuditLog;
use airlock::manifest::Config;
use airlock::runtime::{CallError, Host};
use airlock_tests::guests;
use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use serde_json::json;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Starts a keep-alive server on loopback: `/big` answers 64 KiB, anything
/// else a short JSON document. Returns its port and its accept counter.
async fn keep_alive_upstream() -> (u16, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            count.fetch_add(1, Ordering::SeqCst);
            let service =
                hyper::service::service_fn(|req: http::Request<hyper::body::Incoming>| {
                    let body = match req.uri().path() {
                        "/big" => vec![b'x'; 64 << 10],
                        _ => b"{\"ok\":true}".to_vec(),
                    };
                    async move {
                        Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(
                            Bytes::from(body),
                        )))
                    }
                });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), service),
            );
        }
    });
    (port, accepted)
}

fn host(dir: &Path, port: u16) -> Host {
    let config = format!(
        r#"
[vault]
dir = "data"

[tools.fetch]
source = "{wasm}"
sha256 = "{digest}"
limits = {{ max_response_bytes = 4096 }}

[[tools.fetch.endpoints]]
url = "http://127.0.0.1:{port}/**"
methods = ["GET"]
unauthenticated = true
allow_private = true
"#,
        wasm = guests::FETCH,
        digest = sha256_file(Path::new(guests::FETCH)),
    );
    let path = dir.join("airlock.toml");
    std::fs::write(&path, config).unwrap();
    Host::load(&Config::load(&path).unwrap(), AuditLog::disabled()).unwrap()
}

#[tokio::test]
async fn sequential_calls_reuse_one_upstream_connection() {
    let (port, accepted) = keep_alive_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let host = host(dir.path(), port);

    for _ in 0..4 {
        let url = format!("http://127.0.0.1:{port}/small");
        let response = ok(fetch(&host, "alice", json!({ "url": url })).await);
        assert_eq!(response["status"], 200);
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
    assert_eq!(host.egress().idle_connections(), 1);
}

#[tokio::test]
async fn connection_cut_off_by_the_response_limit_is_not_reused() {
    let (port, accepted) = keep_alive_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let host = host(dir.path(), port);

    let big = format!("http://127.0.0.1:{port}/big");
    // The response limit ends the call (and the body is not read on).
    match fetch(&host, "alice", json!({ "url": big })).await {
        Err(CallError::Limit { limit, .. }) => assert_eq!(limit, "max_response_bytes"),
        other => panic!("expected the response limit, got {other:?}"),
    }
    assert_eq!(host.egress().idle_connections(), 0);

    let small = format!("http://127.0.0.1:{port}/small");
    ok(fetch(&host, "alice", json!({ "url": small })).await);
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}
