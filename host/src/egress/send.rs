//! Sending an allowed request: resolve, check the addresses, connect to the
//! checked one (or reuse an open connection to it), attach the credential,
//! and guard the response.

use super::guard::{GuardedBody, guard_head};
use super::pool::{PoolKey, Returning};
use super::{CallContext, Sent};
use crate::audit::Decision;
use crate::manifest::pattern::{HostName, Scheme};
use crate::policy::{self, DenyReason, Grant, Target};
use crate::secret::Secret;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt as _;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::time::timeout;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody};

/// Largest response head (status line and headers) read from an upstream.
const MAX_RESPONSE_HEAD: usize = 64 * 1024;

/// Name resolution with fixed answers for some names.
#[derive(Debug, Clone, Default)]
pub struct Resolver {
    overrides: BTreeMap<String, Vec<IpAddr>>,
}

impl Resolver {
    /// A resolver that answers `overrides` itself and asks the system for
    /// every other name.
    pub fn new(overrides: BTreeMap<String, Vec<IpAddr>>) -> Resolver {
        Resolver { overrides }
    }

    /// Addresses of `host` at `port`.
    pub async fn resolve(&self, host: &HostName, port: u16) -> std::io::Result<Vec<SocketAddr>> {
        match host {
            HostName::V4(ip) => Ok(vec![SocketAddr::new(IpAddr::V4(*ip), port)]),
            HostName::V6(ip) => Ok(vec![SocketAddr::new(IpAddr::V6(*ip), port)]),
            HostName::Domain(name) => match self.overrides.get(name) {
                Some(ips) => Ok(ips.iter().map(|ip| SocketAddr::new(*ip, port)).collect()),
                None => Ok(tokio::net::lookup_host((name.as_str(), port))
                    .await?
                    .collect()),
            },
        }
    }
}

/// Why an allowed request did not produce a response.
pub(super) enum SendError {
    /// Refused after resolution (private or metadata address).
    Denied(DenyReason),
    /// A network or protocol failure; `code` is the audit reason.
    Failed {
        error: HttpError,
        code: &'static str,
    },
}

/// The audit event of a request sent but not answered yet, recorded with
/// reason `unanswered` if the call ends before the answer comes.
struct Unanswered {
    call: Arc<CallContext>,
    event: Option<crate::audit::Event>,
    started: Instant,
    bytes_out: Arc<AtomicU64>,
}

impl Unanswered {
    fn new(
        call: &Arc<CallContext>,
        target: &Target,
        grant: &Grant,
        method: &str,
        started: Instant,
        bytes_out: &Arc<AtomicU64>,
    ) -> Unanswered {
        let mut event = call.event(Some(target), method);
        event.connection = grant.connection.clone();
        if grant.connection.is_some() {
            event.scopes = call.scopes_of(grant);
        }
        event.decision = Some(Decision::Allow);
        event.reason = Some("unanswered".to_string());
        Unanswered {
            call: call.clone(),
            event: Some(event),
            started,
            bytes_out: bytes_out.clone(),
        }
    }

    /// The exchange finished (with an answer or an error, each audited
    /// where it is handled).
    fn disarm(&mut self) {
        self.event = None;
    }
}

impl Drop for Unanswered {
    fn drop(&mut self) {
        if let Some(mut event) = self.event.take() {
            event.bytes_out = self.bytes_out.load(Ordering::Relaxed);
            event.duration_ms = Some(self.started.elapsed().as_millis() as u64);
            self.call.record(event);
        }
    }
}

fn failed(error: HttpError, code: &'static str) -> SendError {
    SendError::Failed { error, code }
}

pub(super) fn tls_config() -> Arc<rustls::ClientConfig> {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("ring supports the default protocol versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

pub(super) async fn send(
    call: &Arc<CallContext>,
    target: &Target,
    grant: &Grant,
    request: http::Request<WasiBody>,
    options: Option<RequestOptions>,
    credential: Option<(Secret, String, String)>,
    started: Instant,
) -> Result<Sent, SendError> {
    let limits = &call.tool.limits;
    let method = request.method().as_str().to_string();
    let cap = Duration::from_millis(limits.request_timeout_ms);
    let clamp = |d: Option<Duration>| d.map_or(cap, |d| d.min(cap));
    let connect_timeout = clamp(options.and_then(|o| o.connect_timeout));
    let first_byte_timeout = clamp(options.and_then(|o| o.first_byte_timeout));
    let between_bytes_timeout = clamp(options.and_then(|o| o.between_bytes_timeout));

    // Resolve once, check every answer, and connect only to a checked one.
    let addrs = timeout(
        connect_timeout,
        call.egress.resolver.resolve(&target.host, target.port),
    )
    .await
    .map_err(|_| failed(HttpError::DnsTimeout, "dns_timeout"))?
    .map_err(|_| failed(HttpError::DestinationNotFound, "dns_error"))?;
    let mut refusal = None;
    let addr =
        addrs.into_iter().find(
            |a| match policy::check_address(a.ip(), grant.allow_private) {
                Ok(()) => true,
                Err(reason) => {
                    refusal.get_or_insert(reason);
                    false
                }
            },
        );
    let Some(addr) = addr else {
        return Err(refusal.map_or_else(
            || failed(HttpError::DestinationNotFound, "dns_no_address"),
            SendError::Denied,
        ));
    };
    let key = PoolKey {
        scheme: target.scheme,
        host: target.host.clone(),
        port: target.port,
        addr,
    };

    let (mut parts, body) = request.into_parts();
    let declared = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits.max_request_bytes) {
        call.trip("max_request_bytes", limits.max_request_bytes);
        return Err(failed(
            HttpError::HttpRequestBodySize(Some(limits.max_request_bytes)),
            "request_too_large",
        ));
    }
    parts.uri = target
        .path_and_query()
        .parse()
        .map_err(|_| failed(HttpError::HttpRequestUriInvalid, "invalid_uri"))?;
    parts.version = http::Version::HTTP_11;
    let host = http::HeaderValue::from_str(&target.authority())
        .map_err(|_| failed(HttpError::HttpRequestUriInvalid, "invalid_uri"))?;
    parts.headers.insert(http::header::HOST, host);
    let redactor = credential.map(|(secret, header, prefix)| {
        let name = http::HeaderName::from_bytes(header.as_bytes())
            .expect("header names are checked when the config is read");
        parts.headers.insert(name, secret.header_value(&prefix));
        // The guard can only see echoes in an unencoded body.
        parts.headers.insert(
            http::header::ACCEPT_ENCODING,
            http::HeaderValue::from_static("identity"),
        );
        let connection = grant.connection.as_deref().unwrap_or_default();
        call.egress.redactors.get(&call.user, connection, &secret)
    });
    let bytes_out = Arc::new(AtomicU64::new(0));
    let body = LimitedBody {
        inner: body,
        limit: limits.max_request_bytes,
        sent: bytes_out.clone(),
        call: call.clone(),
    };
    let request = http::Request::from_parts(parts, body);

    // The request may go out from here on. A call that ends before the
    // upstream answers (its time ran out, it was cancelled) drops this
    // future; the request is audited all the same.
    let mut unanswered = Unanswered::new(call, target, grant, &method, started, &bytes_out);
    let exchanged = exchange(call, &key, request, connect_timeout, first_byte_timeout).await;
    unanswered.disarm();
    let (response, sender) = exchanged?;
    let (mut parts, incoming) = response.into_parts();
    let incoming = Returning::new(incoming, call.egress.pool.clone(), key, sender);
    let (header_redactions, decoder) = match &redactor {
        Some(r) => guard_head(r, &mut parts, limits.max_response_bytes)
            .map_err(|e| failed(e, "unsupported_coding"))?,
        None => (0, None),
    };

    let mut event = call.event(Some(target), &method);
    event.connection = grant.connection.clone();
    if grant.connection.is_some() {
        event.scopes = call.scopes_of(grant);
    }
    event.decision = Some(Decision::Allow);
    event.status = Some(parts.status.as_u16());
    let audit_call = call.clone();
    let on_end = Box::new(move |stats: &super::guard::BodyStats| {
        event.bytes_out = bytes_out.load(Ordering::Relaxed);
        event.bytes_in = stats.bytes.load(Ordering::Relaxed);
        event.redactions = header_redactions + stats.redactions.load(Ordering::Relaxed);
        event.duration_ms = Some(started.elapsed().as_millis() as u64);
        audit_call.record(event);
    });
    let body = GuardedBody::new(
        incoming,
        redactor,
        decoder,
        limits.max_response_bytes,
        between_bytes_timeout,
        call.clone(),
        on_end,
    );
    // The connection is driven by its own task, which outlives this
    // response when the connection is reused; nothing is left to drive here.
    let io = Box::new(async { Ok(()) });
    Ok((http::Response::from_parts(parts, body.boxed_unsync()), io))
}

/// Sends `request` over an idle pooled connection for `key`, or over a new
/// one; returns the response head and the connection's sender.
async fn exchange(
    call: &CallContext,
    key: &PoolKey,
    mut request: http::Request<LimitedBody>,
    connect_timeout: Duration,
    first_byte: Duration,
) -> Result<
    (
        http::Response<hyper::body::Incoming>,
        SendRequest<LimitedBody>,
    ),
    SendError,
> {
    let response_timeout = || failed(HttpError::HttpResponseTimeout, "response_timeout");
    let upstream_error = |err: hyper::Error| {
        tracing::debug!(%err, "upstream request failed");
        if err.is_parse_too_large() {
            let size = Some(MAX_RESPONSE_HEAD as u32);
            return failed(
                HttpError::HttpResponseHeaderSectionSize(size),
                "head_too_large",
            );
        }
        failed(HttpError::HttpProtocolError, "upstream_error")
    };

    while let Some(mut sender) = call.egress.pool.checkout(key) {
        // A returned connection may still be finishing its last exchange.
        if !matches!(timeout(connect_timeout, sender.ready()).await, Ok(Ok(()))) {
            continue;
        }
        match timeout(first_byte, sender.try_send_request(request)).await {
            Ok(Ok(response)) => return Ok((response, sender)),
            Ok(Err(mut err)) => match err.take_message() {
                // The upstream closed the connection before the request was
                // written: nothing was sent, so try the next connection.
                Some(unsent) => request = unsent,
                None => return Err(upstream_error(err.into_error())),
            },
            Err(_) => return Err(response_timeout()),
        }
    }

    let mut sender = connect(call, key, connect_timeout).await?;
    let response = timeout(first_byte, sender.send_request(request))
        .await
        .map_err(|_| response_timeout())?
        .map_err(upstream_error)?;
    Ok((response, sender))
}

/// Opens a connection to the checked address of `key`, with TLS for
/// `https`, and starts the task that drives it.
async fn connect(
    call: &CallContext,
    key: &PoolKey,
    connect_timeout: Duration,
) -> Result<SendRequest<LimitedBody>, SendError> {
    let tcp = timeout(connect_timeout, tokio::net::TcpStream::connect(key.addr))
        .await
        .map_err(|_| failed(HttpError::ConnectionTimeout, "connect_timeout"))?
        .map_err(|_| failed(HttpError::ConnectionRefused, "connect_refused"))?;
    let _ = tcp.set_nodelay(true);
    match key.scheme {
        Scheme::Http => handshake(TokioIo::new(tcp)).await,
        Scheme::Https => {
            let name = match &key.host {
                HostName::Domain(d) => rustls::pki_types::ServerName::try_from(d.clone()),
                HostName::V4(ip) => Ok(rustls::pki_types::ServerName::IpAddress(
                    IpAddr::V4(*ip).into(),
                )),
                HostName::V6(ip) => Ok(rustls::pki_types::ServerName::IpAddress(
                    IpAddr::V6(*ip).into(),
                )),
            }
            .map_err(|_| failed(HttpError::HttpRequestUriInvalid, "invalid_tls_name"))?;
            let connector = tokio_rustls::TlsConnector::from(call.egress.tls.clone());
            let tls = timeout(connect_timeout, connector.connect(name, tcp))
                .await
                .map_err(|_| failed(HttpError::ConnectionTimeout, "tls_timeout"))?
                .map_err(|_| failed(HttpError::TlsProtocolError, "tls_error"))?;
            handshake(TokioIo::new(tls)).await
        }
    }
}

async fn handshake<I>(io: I) -> Result<SendRequest<LimitedBody>, SendError>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (sender, connection) = hyper::client::conn::http1::Builder::new()
        .max_buf_size(MAX_RESPONSE_HEAD)
        .handshake(io)
        .await
        .map_err(|_| failed(HttpError::HttpProtocolError, "handshake_failed"))?;
    // The connection is driven by its own task until the upstream closes it
    // or its sender is dropped (body not read to the end, or idle too long).
    tokio::spawn(async move {
        if let Err(err) = connection.await {
            tracing::debug!(%err, "upstream connection ended with an error");
        }
    });
    Ok(sender)
}

/// The guest's request body, cut off at the request size limit.
pub(super) struct LimitedBody {
    inner: WasiBody,
    limit: u64,
    sent: Arc<AtomicU64>,
    call: Arc<CallContext>,
}

impl Body for LimitedBody {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let n = frame.data_ref().map_or(0, |d| d.len() as u64);
                if this.sent.fetch_add(n, Ordering::Relaxed) + n > this.limit {
                    this.call.trip("max_request_bytes", this.limit);
                    return Poll::Ready(Some(Err(HttpError::HttpRequestBodySize(Some(
                        this.limit,
                    )))));
                }
                Poll::Ready(Some(Ok(frame)))
            }
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
