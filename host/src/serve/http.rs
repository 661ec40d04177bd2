//! The HTTP server: MCP over streamable HTTP beside the HTTP API, every
//! route behind caller authentication except the ones passed in as
//! unauthenticated.
//!
//! | route | what |
//! |---|---|
//! | `/mcp` | MCP, streamable HTTP; acts for the request's user |
//! | `GET /v1/tools` | the tools with their JSON Schemas |
//! | `POST /v1/tools/{name}/call` | one call: `{"arguments": {...}}` |
//! | `GET /v1/health` | liveness; 503 once shutdown has begun |
//! | `GET /metrics` | Prometheus text format |
//!
//! A request whose `Host` is not one of `[serve] allowed_hosts` is refused
//! on every route (a guard against DNS rebinding), unless the list is
//! `["*"]`.

use super::api;
use super::auth::{Acting, AuthError, Principal, USER_HEADER};
use super::mcp::McpHandler;
use super::{ServeError, Server};
use crate::audit::{Decision, Event, EventKind, GENESIS_HASH};
use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Where MCP is served.
pub const MCP_PATH: &str = "/mcp";

/// Longest wait for connections to close once calls have drained.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// The HTTP application of `server`, with `unauthenticated` merged in as
/// the only routes reachable without credentials (the broker's consent
/// routes). `sessions` ends the open MCP sessions when cancelled.
pub fn router(server: Arc<Server>, unauthenticated: Router, sessions: CancellationToken) -> Router {
    let hosts = &server.settings().allowed_hosts;
    let mcp_config = if any_host(hosts) {
        StreamableHttpServerConfig::default().disable_allowed_hosts()
    } else {
        StreamableHttpServerConfig::default().with_allowed_hosts(hosts.clone())
    }
    .with_cancellation_token(sessions);
    let handler = McpHandler::for_http(server.clone());
    let mcp = StreamableHttpService::new(
        move || Ok(handler.clone()),
        Arc::new(LocalSessionManager::default()),
        mcp_config,
    );
    let mcp = Router::new()
        .nest_service(MCP_PATH, mcp)
        .layer(middleware::from_fn_with_state(server.clone(), act));

    let authenticated = Router::new()
        .route("/v1/tools", axum::routing::get(api::list))
        .route("/v1/tools/{name}/call", axum::routing::post(api::call))
        .route("/v1/health", axum::routing::get(api::health))
        .route("/metrics", axum::routing::get(api::metrics))
        .with_state(server.clone())
        .merge(mcp)
        .layer(middleware::from_fn_with_state(server.clone(), authenticate));

    authenticated
        .merge(unauthenticated)
        .layer(middleware::from_fn_with_state(server, check_host))
}

/// Serves `app` on `listener` until `shutdown` fires; then stops accepting,
/// lets calls in flight finish within the grace, ends MCP sessions through
/// `sessions`, and waits briefly for connections to close.
pub async fn serve_http(
    server: Arc<Server>,
    listener: tokio::net::TcpListener,
    app: Router,
    sessions: CancellationToken,
    shutdown: CancellationToken,
) -> Result<(), ServeError> {
    let stop = shutdown.clone();
    let serving = axum::serve(listener, app).with_graceful_shutdown(async move {
        stop.cancelled().await;
    });
    let serving = async move { serving.await };
    tokio::pin!(serving);

    tokio::select! {
        result = &mut serving => {
            server.shutdown().await;
            return result.map_err(|source| ServeError::Io {
                context: "serving http".into(),
                source,
            });
        }
        () = shutdown.cancelled() => {}
    }
    tracing::info!(in_flight = server.calls().in_flight(), "shutting down");
    server.shutdown().await;
    sessions.cancel();
    if tokio::time::timeout(CLOSE_WAIT, serving).await.is_err() {
        tracing::warn!("connections still open after shutdown were closed");
    }
    Ok(())
}

/// Authenticates the request's caller and puts the [`Principal`] in its
/// extensions.
async fn authenticate(
    State(server): State<Arc<Server>>,
    mut request: Request,
    next: Next,
) -> Response {
    match server.callers().authenticate(request.headers()).await {
        Ok(principal) => {
            request.extensions_mut().insert(principal);
            next.run(request).await
        }
        Err(err) => {
            tracing::info!(reason = err.code(), "request refused: {err}");
            server.metrics().record_refusal(err.code());
            refusal(&err)
        }
    }
}

/// Resolves the user an MCP request acts for, refusing (and auditing) a
/// user the caller may not act for.
async fn act(State(server): State<Arc<Server>>, mut request: Request, next: Next) -> Response {
    let Some(principal) = request.extensions().get::<Principal>().cloned() else {
        return error_response(
            http::StatusCode::UNAUTHORIZED,
            "missing_credentials",
            "no caller",
        );
    };
    match acting_for(&server, &principal, request.headers(), "*") {
        Ok(acting) => {
            request.extensions_mut().insert(acting);
            next.run(request).await
        }
        Err(err) => refusal(&err),
    }
}

/// The user `principal` acts for given the request's [`USER_HEADER`]; a
/// refusal is counted, and a caller asking for a user it may not act for
/// is audited.
pub(super) fn acting_for(
    server: &Server,
    principal: &Principal,
    headers: &http::HeaderMap,
    tool: &str,
) -> Result<Acting, AuthError> {
    let requested = match headers.get(USER_HEADER).map(|v| v.to_str()) {
        None => None,
        Some(Ok(user)) => Some(user),
        Some(Err(_)) => {
            let err = AuthError::InvalidUser("not visible ASCII".into());
            server.metrics().record_refusal(err.code());
            return Err(err);
        }
    };
    principal.act_for(requested).inspect_err(|err| {
        server.metrics().record_refusal(err.code());
        if let AuthError::NotEntitled { caller, user } = err {
            tracing::warn!(%caller, %user, "caller refused: not entitled to act for the user");
            audit_refusal(server, caller, user, tool);
        }
    })
}

/// Records that `caller` was refused acting for `user`: a `caller_refused`
/// event, denied with reason `caller_not_entitled`, for tool `*` when the
/// request named none, with a zero component digest since no component ran.
fn audit_refusal(server: &Server, caller: &str, user: &str, tool: &str) {
    let call_id = hex::encode(rand::random::<[u8; 12]>());
    let mut event = Event::new(
        EventKind::CallerRefused,
        &call_id,
        user,
        caller,
        tool,
        GENESIS_HASH,
    );
    event.decision = Some(Decision::Deny);
    event.reason = Some("caller_not_entitled".into());
    if let Err(err) = server.audit().record(event) {
        tracing::error!(%err, "auditing a refused caller failed");
    }
}

/// Refuses requests for hosts the server does not answer to.
async fn check_host(State(server): State<Arc<Server>>, request: Request, next: Next) -> Response {
    let host = request
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| request.uri().host())
        .unwrap_or("");
    let name = host_name(host);
    let hosts = &server.settings().allowed_hosts;
    let allowed = any_host(hosts)
        || hosts
            .iter()
            .any(|a| a.eq_ignore_ascii_case(host) || a.eq_ignore_ascii_case(name));
    if !allowed {
        server.metrics().record_refusal("host_not_allowed");
        return error_response(
            http::StatusCode::FORBIDDEN,
            "host_not_allowed",
            &format!("host {host:?} is not in [serve] allowed_hosts"),
        );
    }
    next.run(request).await
}

/// Whether the operator turned the `Host` check off (`["*"]`), for a server
/// behind a proxy that checks it.
fn any_host(hosts: &[String]) -> bool {
    hosts.iter().any(|h| h == "*")
}

/// The name part of a `Host` value: without the port, IPv6 without brackets.
fn host_name(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    host.rsplit_once(':').map_or(host, |(name, _)| name)
}

fn refusal(err: &AuthError) -> Response {
    let mut response = error_response(err.status(), err.code(), &err.to_string());
    if err.status() == http::StatusCode::UNAUTHORIZED {
        let challenge = match err {
            AuthError::InvalidToken(_) => "Bearer realm=\"airlock\", error=\"invalid_token\"",
            _ => "Bearer realm=\"airlock\"",
        };
        response.headers_mut().insert(
            http::header::WWW_AUTHENTICATE,
            http::HeaderValue::from_static(challenge),
        );
    }
    response
}

/// A JSON error body: `{"error": {"code": ..., "message": ...}}`.
pub(super) fn error_response(status: http::StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({ "error": { "code": code, "message": message } });
    (status, axum::Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_name_drops_the_port() {
        assert_eq!(host_name("127.0.0.1:8080"), "127.0.0.1");
        assert_eq!(host_name("localhost"), "localhost");
        assert_eq!(host_name("[::1]:80"), "::1");
        assert_eq!(host_name("[::1]"), "::1");
    }

    #[test]
    fn star_turns_the_host_check_off() {
        assert!(any_host(&["*".into()]));
        assert!(!any_host(&["localhost".into()]));
    }
}
