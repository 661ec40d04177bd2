//! The HTTP API beside MCP: list tools, call one, health, metrics.
//!
//! A call answers 200 with `{"call_id", "requests", "is_error", "output"}`
//! when the tool ran (`is_error` is true when `output` is the tool's own
//! error value). Anything else is `{"error": {"code", "message"}}`:
//! 403 `authorization_required` (with `connection`, `reason`,
//! `missing_scopes` and `consent_url`), 404 `unknown_tool`, 400
//! `invalid_arguments`, 500 `limit` or `trap`, 503 `shutting_down`.

use super::http::{acting_for, error_response};
use super::{CallFailure, Server, consent};
use crate::runtime::{CallError, CallRequest};
use crate::tools::ToolOutput;
use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// The body of a call.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CallBody {
    #[serde(default)]
    arguments: Option<serde_json::Value>,
}

/// `GET /v1/tools`.
pub(super) async fn list(State(server): State<Arc<Server>>) -> Response {
    Json(serde_json::json!({ "tools": server.host().tools() })).into_response()
}

/// `POST /v1/tools/{name}/call`.
pub(super) async fn call(
    State(server): State<Arc<Server>>,
    Extension(principal): Extension<super::Principal>,
    Path(name): Path<String>,
    headers: http::HeaderMap,
    body: Option<Json<CallBody>>,
) -> Response {
    let acting = match acting_for(&server, &principal, &headers, &name) {
        Ok(acting) => acting,
        Err(err) => return error_response(err.status(), err.code(), &err.to_string()),
    };
    let guard = match server.begin_call() {
        Ok(guard) => guard,
        Err(err) => return failure(&server, err, &acting.user),
    };
    let request = CallRequest {
        tool: name,
        user: acting.user.clone(),
        caller: acting.caller,
        args: body
            .and_then(|Json(b)| b.arguments)
            .unwrap_or_else(|| serde_json::json!({})),
    };
    // A client that hangs up drops this future, which cancels the call.
    match server
        .call(request, &guard, &CancellationToken::new())
        .await
    {
        Ok(out) => {
            let (is_error, output) = match out.output {
                ToolOutput::Ok(v) => (false, v),
                ToolOutput::ToolError(v) => (true, v),
            };
            Json(serde_json::json!({
                "call_id": out.call_id,
                "requests": out.requests,
                "is_error": is_error,
                "output": output,
            }))
            .into_response()
        }
        Err(err) => failure(&server, err, &acting.user),
    }
}

/// `GET /v1/health`.
pub(super) async fn health(State(server): State<Arc<Server>>) -> Response {
    let draining = server.calls().is_draining();
    let status = if draining {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    let body = serde_json::json!({
        "status": if draining { "shutting_down" } else { "ok" },
        "tools": server.host().tools().len(),
        "in_flight": server.calls().in_flight(),
    });
    (status, Json(body)).into_response()
}

/// `GET /metrics`.
pub(super) async fn metrics(State(server): State<Arc<Server>>) -> Response {
    let host = super::metrics::HostCounts::of(server.host());
    let text = server.metrics().render(server.calls().in_flight(), &host);
    (
        [(http::header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        text,
    )
        .into_response()
}

fn failure(server: &Server, err: CallFailure, user: &str) -> Response {
    let (status, code) = match &err {
        CallFailure::Host(CallError::AuthorizationRequired(required)) => {
            server.metrics().record_consent("api");
            let url = consent::consent_url(required, user, server.settings());
            let body = serde_json::json!({ "error": {
                "code": "authorization_required",
                "message": err.to_string(),
                "connection": required.connection,
                "reason": required.reason,
                "missing_scopes": required.missing_scopes,
                "consent_url": url,
            }});
            return (StatusCode::FORBIDDEN, Json(body)).into_response();
        }
        CallFailure::Host(CallError::UnknownTool(_)) => (StatusCode::NOT_FOUND, "unknown_tool"),
        CallFailure::Host(CallError::InvalidArguments { .. } | CallError::InvalidUser(_)) => {
            (StatusCode::BAD_REQUEST, "invalid_arguments")
        }
        // More calls at once than allowed: the caller may retry later.
        CallFailure::Host(CallError::Limit { limit, .. })
            if limit.starts_with("max_concurrent") =>
        {
            (StatusCode::TOO_MANY_REQUESTS, "busy")
        }
        // The tool broke one of its limits: not a fault of the server.
        CallFailure::Host(CallError::Limit { .. }) => (StatusCode::UNPROCESSABLE_ENTITY, "limit"),
        CallFailure::ShuttingDown => (StatusCode::SERVICE_UNAVAILABLE, "shutting_down"),
        CallFailure::Cancelled => (StatusCode::SERVICE_UNAVAILABLE, "cancelled"),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "trap"),
    };
    error_response(status, code, &err.to_string())
}
