//! A small HTTPS GET for the server's own needs: the OIDC discovery document
//! and the issuer's signing keys. The operator names these URLs; tool
//! traffic never comes here (it goes through the egress gate).

use http_body_util::{BodyExt as _, Empty, Limited};
use hyper_util::rt::TokioIo;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::net::TcpStream;

/// Why a document could not be fetched.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FetchError {
    /// The URL has no host or an unknown scheme.
    #[error("{0:?} is not a fetchable URL")]
    Url(String),
    /// Connecting, TLS or HTTP failed.
    #[error("{url}: {reason}")]
    Transport {
        /// The URL.
        url: String,
        /// What failed.
        reason: String,
    },
    /// The server answered with a status other than 200.
    #[error("{url}: status {status}")]
    Status {
        /// The URL.
        url: String,
        /// The status.
        status: u16,
    },
    /// The body is too large or not JSON.
    #[error("{url}: {reason}")]
    Body {
        /// The URL.
        url: String,
        /// What is wrong.
        reason: String,
    },
}

/// GETs `uri` and parses the body as JSON; bounded in time and size.
pub(crate) async fn get_json(
    uri: &http::Uri,
    timeout: Duration,
    max_bytes: usize,
) -> Result<serde_json::Value, FetchError> {
    let url = uri.to_string();
    let transport = |reason: String| FetchError::Transport {
        url: url.clone(),
        reason,
    };
    let fetch = async {
        let host = uri.host().ok_or_else(|| FetchError::Url(url.clone()))?;
        let bare_host = host.trim_start_matches('[').trim_end_matches(']');
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(FetchError::Url(url.clone())),
        };
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let tcp = TcpStream::connect((bare_host, port))
            .await
            .map_err(|e| transport(format!("connect: {e}")))?;

        let authority = uri.authority().map(|a| a.as_str()).unwrap_or(host);
        let request = http::Request::get(uri.path_and_query().map_or("/", |p| p.as_str()))
            .header(http::header::HOST, authority)
            .header(http::header::ACCEPT, "application/json")
            .header(http::header::USER_AGENT, "airlock")
            .body(Empty::<bytes::Bytes>::new())
            .map_err(|e| transport(e.to_string()))?;
        let response = if https {
            let name = rustls::pki_types::ServerName::try_from(bare_host.to_string())
                .map_err(|e| transport(format!("server name: {e}")))?;
            let tls = tokio_rustls::TlsConnector::from(tls_config())
                .connect(name, tcp)
                .await
                .map_err(|e| transport(format!("tls: {e}")))?;
            exchange(TokioIo::new(tls), request).await
        } else {
            exchange(TokioIo::new(tcp), request).await
        }
        .map_err(transport)?;

        let status = response.status();
        if status != http::StatusCode::OK {
            return Err(FetchError::Status {
                url: url.clone(),
                status: status.as_u16(),
            });
        }
        let body = Limited::new(response.into_body(), max_bytes)
            .collect()
            .await
            .map_err(|e| FetchError::Body {
                url: url.clone(),
                reason: format!("reading the body: {e}"),
            })?
            .to_bytes();
        serde_json::from_slice(&body).map_err(|e| FetchError::Body {
            url: url.clone(),
            reason: format!("not JSON: {e}"),
        })
    };
    match tokio::time::timeout(timeout, fetch).await {
        Ok(result) => result,
        Err(_) => Err(transport(format!("no answer within {timeout:?}"))),
    }
}

async fn exchange<I>(
    io: I,
    request: http::Request<Empty<bytes::Bytes>>,
) -> Result<http::Response<hyper::body::Incoming>, String>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| format!("http: {e}"))?;
    tokio::spawn(async move {
        // The connection ends with the exchange; its error, if any, is
        // reported through the response.
        let _ = connection.await;
    });
    sender
        .send_request(request)
        .await
        .map_err(|e| format!("http: {e}"))
}

fn tls_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let roots = rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            };
            let config = rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
            Arc::new(config)
        })
        .clone()
}
