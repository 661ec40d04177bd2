use super::*;
use http_body_util::{BodyExt as _, Empty, Full};
use hyper_util::rt::TokioIo;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};

type Req = Empty<Bytes>;

/// A loopback HTTP/1.1 server that counts the connections it accepts.
/// `/big` answers 1 MiB, anything else a few bytes.
async fn server() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            count.fetch_add(1, Ordering::SeqCst);
            let service =
                hyper::service::service_fn(|req: http::Request<hyper::body::Incoming>| {
                    let size = if req.uri().path() == "/big" {
                        1 << 20
                    } else {
                        5
                    };
                    async move {
                        Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(
                            Bytes::from(vec![b'x'; size]),
                        )))
                    }
                });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), service),
            );
        }
    });
    (addr, accepted)
}

fn key(addr: SocketAddr) -> PoolKey {
    PoolKey {
        scheme: Scheme::Http,
        host: HostName::V4(std::net::Ipv4Addr::LOCALHOST),
        port: addr.port(),
        addr,
    }
}

async fn connect(addr: SocketAddr) -> SendRequest<Req> {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    sender
}

/// Sends GET `path` over a pooled connection (or a new one) and returns the
/// body, wrapped so that it hands the connection back.
async fn get(
    pool: &Arc<Pool<Req>>,
    addr: SocketAddr,
    path: &str,
) -> Returning<hyper::body::Incoming, Req> {
    let mut sender = match pool.checkout(&key(addr)) {
        Some(s) => s,
        None => connect(addr).await,
    };
    sender.ready().await.unwrap();
    let request = http::Request::get(path)
        .header("host", "127.0.0.1")
        .body(Empty::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    Returning::new(response.into_body(), pool.clone(), key(addr), sender)
}

#[tokio::test]
async fn connection_is_reused_once_the_body_is_read() {
    let (addr, accepted) = server().await;
    let pool = Arc::new(Pool::default());
    for _ in 0..5 {
        let body = get(&pool, addr, "/").await.collect().await.unwrap();
        assert_eq!(body.to_bytes().len(), 5);
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
    assert_eq!(pool.idle_count(), 1);
}

#[tokio::test]
async fn body_dropped_before_its_end_closes_the_connection() {
    let (addr, accepted) = server().await;
    let pool = Arc::new(Pool::default());
    let mut body = get(&pool, addr, "/big").await;
    body.frame().await.unwrap().unwrap();
    drop(body);
    assert_eq!(pool.idle_count(), 0);

    get(&pool, addr, "/").await.collect().await.unwrap();
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn connection_is_never_handed_to_another_address_or_origin() {
    let (addr, _) = server().await;
    let pool = Arc::new(Pool::default());
    get(&pool, addr, "/").await.collect().await.unwrap();
    assert_eq!(pool.idle_count(), 1);

    let other_addr = SocketAddr::new(IpAddr::from([127, 0, 0, 2]), addr.port());
    let other_host = PoolKey {
        host: HostName::Domain("api.example".into()),
        ..key(addr)
    };
    let other_scheme = PoolKey {
        scheme: Scheme::Https,
        ..key(addr)
    };
    for other in [
        PoolKey {
            addr: other_addr,
            ..key(addr)
        },
        other_host,
        other_scheme,
    ] {
        assert!(
            pool.checkout(&other).is_none(),
            "{other:?} got a connection"
        );
    }
    assert!(pool.checkout(&key(addr)).is_some());
}

#[tokio::test]
async fn idle_connections_per_key_are_capped() {
    let (addr, _) = server().await;
    let pool = Pool::<Req>::default();
    for _ in 0..MAX_IDLE_PER_KEY + 3 {
        pool.checkin(key(addr), connect(addr).await);
    }
    assert_eq!(pool.idle_count(), MAX_IDLE_PER_KEY);
}
