//! The HTTP client the broker talks to providers with: one request per
//! connection over hyper, TLS by rustls with the webpki roots, `http` only to
//! loopback addresses, no redirects, a time limit and a size cap.
//!
//! It implements what the `oauth2` crate needs of an asynchronous client:
//! a function from [`oauth2::HttpRequest`] to [`oauth2::HttpResponse`].

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::timeout;

/// Largest response body read from a provider.
const MAX_BODY: usize = 1 << 20;

/// Why a provider request got no response. Never carries request or
/// response bytes, which hold credentials.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// The URL is not usable.
    #[error("cannot send to {url}: {reason}")]
    Url {
        /// The URL, without its query.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Resolving, connecting, TLS or the exchange failed.
    #[error("request to {url} failed: {reason}")]
    Failed {
        /// The URL, without its query.
        url: String,
        /// What failed.
        reason: String,
    },
    /// No answer within the time limit.
    #[error("request to {url} timed out after {after:?}")]
    Timeout {
        /// The URL, without its query.
        url: String,
        /// The limit.
        after: Duration,
    },
}

/// A client for token, revocation and discovery endpoints.
#[derive(Clone)]
pub struct HttpClient {
    tls: Arc<rustls::ClientConfig>,
    timeout: Duration,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl HttpClient {
    /// A client that gives up on a request after `timeout`.
    pub fn new(timeout: Duration) -> HttpClient {
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let mut tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        HttpClient {
            tls: Arc::new(tls),
            timeout,
        }
    }

    /// Sends `request` and reads the whole response.
    pub async fn send(
        &self,
        request: oauth2::HttpRequest,
    ) -> Result<oauth2::HttpResponse, HttpError> {
        let url = url::Url::parse(&request.uri().to_string()).map_err(|_| HttpError::Url {
            url: "<unparsable>".into(),
            reason: "not an absolute URL",
        })?;
        let shown = shown(&url);
        match timeout(self.timeout, self.exchange(&url, request)).await {
            Ok(result) => result.map_err(|reason| match reason {
                Failure::Url(reason) => HttpError::Url { url: shown, reason },
                Failure::Other(reason) => HttpError::Failed { url: shown, reason },
            }),
            Err(_) => Err(HttpError::Timeout {
                url: shown,
                after: self.timeout,
            }),
        }
    }

    async fn exchange(
        &self,
        url: &url::Url,
        request: oauth2::HttpRequest,
    ) -> Result<oauth2::HttpResponse, Failure> {
        let tls = match url.scheme() {
            "https" => true,
            "http" if crate::manifest::oauth::is_loopback(url) => false,
            "http" => return Err(Failure::Url("http is allowed to loopback addresses only")),
            _ => return Err(Failure::Url("scheme is not https")),
        };
        let host = url
            .host_str()
            .ok_or(Failure::Url("no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = url.port_or_known_default().ok_or(Failure::Url("no port"))?;
        let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| Failure::Other(format!("connect: {}", e.kind())))?;
        let _ = tcp.set_nodelay(true);

        let (mut parts, body) = request.into_parts();
        let mut target = url.path().to_string();
        if let Some(q) = url.query() {
            target.push('?');
            target.push_str(q);
        }
        parts.uri = target.parse().map_err(|_| Failure::Url("bad path"))?;
        parts.version = http::Version::HTTP_11;
        let authority = match url.port() {
            Some(p) => format!("{}:{p}", url.host_str().unwrap_or_default()),
            None => url.host_str().unwrap_or_default().to_string(),
        };
        parts.headers.insert(
            http::header::HOST,
            http::HeaderValue::from_str(&authority).map_err(|_| Failure::Url("bad host"))?,
        );
        parts.headers.insert(
            http::header::USER_AGENT,
            http::HeaderValue::from_static(concat!("airlock/", env!("CARGO_PKG_VERSION"))),
        );
        let request = http::Request::from_parts(parts, Full::new(Bytes::from(body)));

        if tls {
            let name = rustls::pki_types::ServerName::try_from(host)
                .map_err(|_| Failure::Url("host is not a valid TLS name"))?;
            let connector = tokio_rustls::TlsConnector::from(self.tls.clone());
            let stream = connector
                .connect(name, tcp)
                .await
                .map_err(|e| Failure::Other(format!("tls: {e}")))?;
            roundtrip(TokioIo::new(stream), request).await
        } else {
            roundtrip(TokioIo::new(tcp), request).await
        }
    }
}

enum Failure {
    Url(&'static str),
    Other(String),
}

async fn roundtrip<I>(
    io: I,
    request: http::Request<Full<Bytes>>,
) -> Result<oauth2::HttpResponse, Failure>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| Failure::Other(format!("handshake: {e}")))?;
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| Failure::Other(format!("exchange: {e}")));
    let result = match response {
        Ok(response) => {
            let (parts, body) = response.into_parts();
            Limited::new(body, MAX_BODY)
                .collect()
                .await
                .map(|b| http::Response::from_parts(parts, b.to_bytes().to_vec()))
                .map_err(|_| {
                    Failure::Other(format!("response body over {MAX_BODY} bytes or cut off"))
                })
        }
        Err(e) => Err(e),
    };
    driver.abort();
    result
}

/// The URL as it may appear in messages: no query, which may carry tokens.
fn shown(url: &url::Url) -> String {
    let mut url = url.clone();
    url.set_query(None);
    url.to_string()
}
