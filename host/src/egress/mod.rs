//! The egress gate: the `wasi:http` hook every outbound request passes.
//!
//! For each request the guest sends, [`Gate`] canonicalizes the target,
//! matches it against the tool's grants (default deny), fetches the calling
//! user's token for the grant's connection, connects to an address it has
//! checked itself, attaches the token, and wraps the response in the guard
//! that removes any echo of it. Every decision is audited. A denial reaches
//! the guest as `HTTP-request-denied` with no detail; the operator's log says
//! why and what grant would allow it, and [`Egress::denials`] counts it by
//! reason code.

mod decode;
mod guard;
mod pool;
mod redactors;
mod send;

pub use guard::{REDACTED, Redactor};
pub use send::Resolver;

use crate::audit::{AuditLog, Decision, Event, EventKind};
use crate::broker::{AuthorizationRequired, Broker, TokenOutcome};
use crate::manifest::{ConnectionConfig, Limits};
use crate::policy::{self, DenyReason, Grant, Policy, Target};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tracing::Instrument as _;
use wasmtime_wasi_http::WasiHttpHooks;
use wasmtime_wasi_http::{Error as HttpError, ForbiddenHeaderFilter, RequestOptions, WasiBody};

/// Host-wide egress state shared by every call.
pub struct Egress {
    /// Token source.
    pub broker: Broker,
    /// Name resolution with operator overrides.
    pub resolver: Resolver,
    /// Audit sink.
    pub audit: AuditLog,
    /// Connections by name.
    pub connections: BTreeMap<String, ConnectionConfig>,
    tls: Arc<rustls::ClientConfig>,
    pool: Arc<pool::Pool<send::LimitedBody>>,
    redactors: redactors::Redactors,
    denials: Mutex<BTreeMap<&'static str, u64>>,
}

impl Egress {
    /// Builds the shared state.
    pub fn new(
        broker: Broker,
        resolver: Resolver,
        audit: AuditLog,
        connections: BTreeMap<String, ConnectionConfig>,
    ) -> Egress {
        Egress {
            broker,
            resolver,
            audit,
            connections,
            tls: send::tls_config(),
            pool: Arc::default(),
            redactors: redactors::Redactors::default(),
            denials: Mutex::new(BTreeMap::new()),
        }
    }

    /// Upstream connections open and unused, kept for reuse.
    pub fn idle_connections(&self) -> usize {
        self.pool.idle_count()
    }

    /// Requests denied so far by every call of this host, by reason code
    /// ([`DenyReason::code`]), sorted by code.
    pub fn denials(&self) -> Vec<(&'static str, u64)> {
        let denials = self.denials.lock().unwrap_or_else(|e| e.into_inner());
        denials.iter().map(|(code, n)| (*code, *n)).collect()
    }

    fn count_denial(&self, code: &'static str) {
        let mut denials = self.denials.lock().unwrap_or_else(|e| e.into_inner());
        *denials.entry(code).or_default() += 1;
    }
}

/// What the gate knows about one tool.
#[derive(Debug)]
pub struct ToolEgress {
    /// Tool name, for logs and audit.
    pub tool: String,
    /// Component digest.
    pub component: String,
    /// The tool's effective grants.
    pub policy: Policy,
    /// Scopes needed per grant, by grant index.
    pub scopes: Vec<Vec<String>>,
    /// Per-call limits.
    pub limits: Limits,
    /// The operator's grants as written, kept when the tool's declaration
    /// narrowed them: a denial the declaration caused gets a hint that
    /// says so, not one that asks for a grant that already exists.
    pub operator: Option<Policy>,
}

/// One call's view of the gate: who the call is for and what it has used.
pub struct CallContext {
    /// Shared host state.
    pub egress: Arc<Egress>,
    /// The tool being called.
    pub tool: Arc<ToolEgress>,
    /// The tool's name as listed (`<tool>.<function>`), for audit and logs.
    pub name: String,
    /// The user the call acts for.
    pub user: String,
    /// Who made the call (runtime, API key id).
    pub caller: String,
    /// Unique id of the call.
    pub call_id: String,
    requests: AtomicU32,
    auth_required: Mutex<Option<AuthorizationRequired>>,
    tripped: Mutex<Option<Tripped>>,
}

/// A per-call limit that a request of the call broke. The runtime ends the
/// call with an error naming it, whatever the guest does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tripped {
    /// The limit's config key, such as `max_requests`.
    pub limit: &'static str,
    /// Its configured value.
    pub value: u64,
}

impl CallContext {
    /// A fresh context for one call.
    pub fn new(
        egress: Arc<Egress>,
        tool: Arc<ToolEgress>,
        name: String,
        user: String,
        caller: String,
        call_id: String,
    ) -> CallContext {
        CallContext {
            egress,
            tool,
            name,
            user,
            caller,
            call_id,
            requests: AtomicU32::new(0),
            auth_required: Mutex::new(None),
            tripped: Mutex::new(None),
        }
    }

    /// The first authorization-required outcome a request of this call hit.
    pub fn take_authorization_required(&self) -> Option<AuthorizationRequired> {
        self.auth_required
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    /// Records that `limit` (configured as `value`) was broken; the first
    /// limit broken is the one reported.
    pub fn trip(&self, limit: &'static str, value: u64) {
        let mut slot = self.tripped.lock().unwrap_or_else(|e| e.into_inner());
        slot.get_or_insert(Tripped { limit, value });
    }

    /// The first limit a request of this call broke.
    pub fn tripped(&self) -> Option<Tripped> {
        *self.tripped.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Number of outbound requests the call attempted.
    pub fn requests(&self) -> u32 {
        self.requests.load(Ordering::Relaxed)
    }

    fn event(&self, target: Option<&Target>, method: &str) -> Event {
        let mut e = Event::new(
            EventKind::Request,
            &self.call_id,
            &self.user,
            &self.caller,
            &self.name,
            &self.tool.component,
        );
        e.method = Some(method.to_string());
        match target {
            Some(t) => {
                e.scheme = Some(t.scheme.as_str().to_string());
                e.host = Some(t.host.to_string());
                e.port = Some(t.port);
                e.path = Some(t.redacted_path());
            }
            // The guest's raw URL is not recorded: it failed to parse and may
            // carry anything.
            None => e.host = Some("invalid".to_string()),
        }
        e
    }

    /// Records a denial and returns the error the guest sees.
    fn deny(
        &self,
        target: Option<&Target>,
        method: &str,
        reason: &DenyReason,
        hint: &str,
    ) -> HttpError {
        tracing::info!(
            tool = %self.name, user = %self.user, method, host = target.map(|t| t.host.to_string()).unwrap_or_default(),
            path = target.map(|t| t.redacted_path()).unwrap_or_default(), reason = reason.code(), hint,
            "airlock.egress.denied"
        );
        self.egress.count_denial(reason.code());
        let mut e = self.event(target, method);
        e.decision = Some(Decision::Deny);
        e.reason = Some(reason.code().to_string());
        self.record(e);
        HttpError::HttpRequestDenied
    }

    /// Records that the user must link an account and returns the error the
    /// guest sees; the call ends as authorization-required.
    fn authorization_required(
        &self,
        target: &Target,
        method: &str,
        grant: &Grant,
        required: AuthorizationRequired,
    ) -> HttpError {
        let mut e = self.event(Some(target), method);
        e.connection = grant.connection.clone();
        e.scopes = self.scopes_of(grant);
        e.decision = Some(Decision::AuthorizationRequired);
        e.reason = Some(required.reason.to_string());
        self.record(e);
        let mut slot = self.auth_required.lock().unwrap_or_else(|e| e.into_inner());
        slot.get_or_insert(required);
        HttpError::HttpRequestDenied
    }

    /// The scopes the tool needs for `grant`, recorded with each request
    /// that carries a credential.
    fn scopes_of(&self, grant: &Grant) -> Vec<String> {
        let grants = self.tool.policy.grants();
        grants
            .iter()
            .position(|g| std::ptr::eq(g, grant))
            .map(|i| self.tool.scopes[i].clone())
            .unwrap_or_default()
    }

    fn record(&self, event: Event) {
        if let Err(err) = self.egress.audit.record(event) {
            tracing::error!(%err, call_id = %self.call_id, "audit write failed");
        }
    }
}

/// The hook installed in each call's store.
pub struct Gate {
    call: Arc<CallContext>,
}

impl Gate {
    /// The gate for one call.
    pub fn new(call: Arc<CallContext>) -> Gate {
        Gate { call }
    }
}

impl WasiHttpHooks for Gate {
    fn forbidden_header_filter(&mut self) -> ForbiddenHeaderFilter {
        Arc::new(|name| policy::is_forbidden_header(name.as_str()))
    }

    fn set_host_header(&mut self) -> bool {
        // The gate writes `Host` from the canonical target itself.
        false
    }

    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _response_errors: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> Box<dyn Future<Output = Result<Sent, HttpError>> + Send> {
        let call = self.call.clone();
        Box::new(async move { gate(call, request, options).await })
    }
}

type Sent = (
    http::Response<WasiBody>,
    Box<dyn Future<Output = Result<(), HttpError>> + Send>,
);

async fn gate(
    call: Arc<CallContext>,
    request: http::Request<WasiBody>,
    options: Option<RequestOptions>,
) -> Result<Sent, HttpError> {
    let request = request.map(|body| {
        use http_body_util::BodyExt as _;
        DrainOnDrop(Some(body)).boxed_unsync()
    });
    let started = Instant::now();
    let limits = &call.tool.limits;
    let mut request = request;
    let method = match policy::canonical_method(request.method().as_str()) {
        Ok(m) => m,
        Err(reason) => {
            let raw = request.method().as_str().to_string();
            return Err(call.deny(
                None,
                &raw,
                &reason,
                "TRACE, TRACK and CONNECT never go out, and a method must be an HTTP token",
            ));
        }
    };
    // Send exactly the method that was matched against the grants.
    *request.method_mut() = http::Method::from_bytes(method.as_bytes())
        .map_err(|_| HttpError::HttpRequestMethodInvalid)?;

    if call.requests.fetch_add(1, Ordering::Relaxed) >= limits.max_requests {
        call.trip("max_requests", limits.max_requests.into());
        let hint = format!(
            "raise limits.max_requests (now {}) for tool {}",
            limits.max_requests, call.tool.tool
        );
        return Err(call.deny(None, &method, &DenyReason::RequestLimit, &hint));
    }

    let uri = request.uri();
    let scheme = uri.scheme_str().unwrap_or("");
    let authority = uri.authority().map(|a| a.as_str()).unwrap_or("");
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let target = match Target::parse(scheme, authority, path) {
        Ok(t) => t,
        Err(reason) => {
            return Err(call.deny(
                None,
                &method,
                &reason,
                "the request URL is malformed or non-canonical",
            ));
        }
    };

    let span =
        crate::audit::span_for_request(&method, &target.host.to_string(), &target.redacted_path());
    decide_and_send(call, target, method, request, options, started)
        .instrument(span)
        .await
}

/// The hint for a request the operator grants but the tool's declaration
/// left out, or `None` when the operator's grants do not allow it either.
fn undeclared_hint(tool: &ToolEgress, method: &str, target: &Target) -> Option<String> {
    let index = tool.operator.as_ref()?.decide(method, target).ok()?;
    let grant = &tool.operator.as_ref()?.grants()[index];
    Some(format!(
        "grant {index} of tool {} ({grant}) allows this, but the tool's declaration \
         does not ask for it, so it is not part of the tool's effective grant; \
         `airlock inspect` shows the declaration",
        tool.tool
    ))
}

async fn decide_and_send(
    call: Arc<CallContext>,
    target: Target,
    method: String,
    request: http::Request<WasiBody>,
    options: Option<RequestOptions>,
    started: Instant,
) -> Result<Sent, HttpError> {
    let index = match call.tool.policy.decide(&method, &target) {
        Ok(i) => i,
        Err(denial) => {
            let hint = undeclared_hint(&call.tool, &method, &target).unwrap_or(denial.hint);
            return Err(call.deny(Some(&target), &method, &denial.reason, &hint));
        }
    };
    let grant = &call.tool.policy.grants()[index];
    // Headers the host sets itself, and, on a request that carries a
    // token, the range headers: the response guard sees one response at a
    // time, so the slices of an echo fetched with `Range` would each pass.
    let refused = request.headers().keys().find_map(|n| {
        if policy::is_forbidden_header(n.as_str()) {
            Some((n, "the host sets this header itself"))
        } else if grant.connection.is_some() && guard::is_slicing_header(n.as_str()) {
            Some((
                n,
                "a request that carries a connection's token may not ask for a byte range",
            ))
        } else {
            None
        }
    });
    if let Some((name, hint)) = refused {
        let reason = DenyReason::ForbiddenHeader(name.as_str().to_string());
        return Err(call.deny(Some(&target), &method, &reason, hint));
    }

    // Fetch the token before connecting: no credential, no connection.
    let mut credential = None;
    if let Some(connection) = &grant.connection {
        let scopes = &call.tool.scopes[index];
        match call
            .egress
            .broker
            .token(&call.user, connection, scopes)
            .await
        {
            Ok(TokenOutcome::Token(secret)) => {
                let placement = &call.egress.connections[connection];
                credential = Some((secret, placement.header.clone(), placement.prefix.clone()));
            }
            Ok(TokenOutcome::AuthorizationRequired(required)) => {
                return Err(call.authorization_required(&target, &method, grant, required));
            }
            Err(err) => {
                tracing::error!(%err, tool = %call.name, user = %call.user, connection = %connection, "token lookup failed");
                return Err(HttpError::InternalError(Some(
                    "credential lookup failed".into(),
                )));
            }
        }
    }

    // A 401 to a request carrying a token drops that token, and a request
    // that can be replayed (idempotent method, no body) goes once more with
    // a fresh one.
    let injected = credential.as_ref().map(|(secret, _, _)| secret.clone());
    let replay = replayable(&request).then(|| request_head(&request));
    let (request, body_seen) = watch_body(request);
    let mut result = send::send(&call, &target, grant, request, options, credential, started).await;
    if let (Ok((response, _)), Some(token), Some(connection)) =
        (&result, &injected, &grant.connection)
        && response.status() == http::StatusCode::UNAUTHORIZED
    {
        call.egress.broker.invalidate(&call.user, connection, token);
        if let Some(head) = replay
            && !body_seen.load(Ordering::Relaxed)
        {
            let scopes = &call.tool.scopes[index];
            match call
                .egress
                .broker
                .token(&call.user, connection, scopes)
                .await
            {
                Ok(TokenOutcome::Token(fresh)) if fresh != *token => {
                    tracing::info!(tool = %call.name, user = %call.user, connection = %connection, "airlock.egress.retry_after_401");
                    drop(result);
                    let placement = &call.egress.connections[connection];
                    let credential =
                        Some((fresh, placement.header.clone(), placement.prefix.clone()));
                    let request = http::Request::from_parts(head, empty_body());
                    result =
                        send::send(&call, &target, grant, request, options, credential, started)
                            .await;
                }
                Ok(TokenOutcome::AuthorizationRequired(required)) => {
                    return Err(call.authorization_required(&target, &method, grant, required));
                }
                Ok(TokenOutcome::Token(_)) => {}
                Err(err) => {
                    tracing::warn!(%err, tool = %call.name, user = %call.user, connection = %connection, "token refresh after 401 failed");
                }
            }
        }
    }
    match result {
        Ok(sent) => Ok(sent),
        Err(send::SendError::Denied(reason)) => {
            Err(call.deny(Some(&target), &method, &reason, PRIVATE_HINT))
        }
        Err(send::SendError::Failed { error, code }) => {
            tracing::info!(tool = %call.name, user = %call.user, host = %target.host, code, "airlock.egress.failed");
            let mut e = call.event(Some(&target), &method);
            e.connection = grant.connection.clone();
            e.scopes = call.scopes_of(grant);
            e.decision = Some(Decision::Error);
            e.reason = Some(code.to_string());
            e.duration_ms = Some(started.elapsed().as_millis() as u64);
            call.record(e);
            Err(error)
        }
    }
}

/// Whether a request may be sent twice: an idempotent method that carries
/// no body (checked again once it has been sent).
fn replayable(request: &http::Request<WasiBody>) -> bool {
    matches!(
        *request.method(),
        http::Method::GET | http::Method::HEAD | http::Method::OPTIONS
    )
}

fn request_head(request: &http::Request<WasiBody>) -> http::request::Parts {
    let (mut parts, ()) = http::Request::new(()).into_parts();
    parts.method = request.method().clone();
    parts.uri = request.uri().clone();
    parts.version = request.version();
    parts.headers = request.headers().clone();
    parts
}

/// The guest's request body, read to its end and dropped in a task of its
/// own if the host lets go of it first: refused before it was sent, or
/// dropped by hyper, which needs no body for a `content-length: 0` request
/// or after an early answer. The guest may still be writing into it, even
/// only to close it, and a guest whose write finds the stream closed
/// reports its request as failed instead of reading the answer (the `wstd`
/// client does). The task ends when the guest finishes the body or its call
/// ends.
struct DrainOnDrop(Option<WasiBody>);

impl http_body::Body for DrainOnDrop {
    type Data = bytes::Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, HttpError>>> {
        match self.0.as_mut() {
            Some(body) => std::pin::Pin::new(body).poll_frame(cx),
            None => std::task::Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.0.as_ref().is_none_or(http_body::Body::is_end_stream)
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.0.as_ref().map_or_else(
            || http_body::SizeHint::with_exact(0),
            http_body::Body::size_hint,
        )
    }
}

impl Drop for DrainOnDrop {
    fn drop(&mut self) {
        use http_body_util::BodyExt as _;
        let Some(mut rest) = self.0.take() else {
            return;
        };
        if http_body::Body::is_end_stream(&rest) {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move { while let Some(Ok(_)) = rest.frame().await {} });
        }
    }
}

fn empty_body() -> WasiBody {
    use http_body_util::BodyExt as _;
    http_body_util::Empty::new()
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// Wraps the guest's body so the gate learns whether it carried data.
fn watch_body(
    request: http::Request<WasiBody>,
) -> (http::Request<WasiBody>, Arc<std::sync::atomic::AtomicBool>) {
    use http_body_util::BodyExt as _;
    let seen = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = seen.clone();
    let (parts, body) = request.into_parts();
    let body = body
        .map_frame(move |frame| {
            if frame.data_ref().is_some_and(|d| !d.is_empty()) {
                flag.store(true, Ordering::Relaxed);
            }
            frame
        })
        .boxed_unsync();
    (http::Request::from_parts(parts, body), seen)
}

const PRIVATE_HINT: &str = "the name resolved only to addresses this grant may not reach; \
     set allow_private = true on the grant to reach loopback or private networks";
