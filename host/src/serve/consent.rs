//! Consent prompts: turning "the user must link an account" into a question
//! for the user instead of an error for the model.
//!
//! The consent URL is the broker's (`AuthorizationRequired::consent_url`)
//! or, when the broker has none, the operator's `consent_fallback_url` with
//! the connection and user filled in. Then:
//!
//! - a client on protocol 2026-07-28 or later that declared URL-mode
//!   elicitation gets an `input_required` result holding a URL-mode
//!   elicitation; when it retries with the user's answer, the call runs
//!   again;
//! - an older client that declared URL-mode elicitation gets an
//!   `elicitation/create` request in the middle of the call; when the user
//!   accepts, the call runs again;
//! - any other client gets a tool error (`isError: true`) carrying the URL.
//!
//! A call that still needs consent after the user answered ends in a tool
//! error with the URL, so a client is never asked twice for one call.
//!
//! `tests/e2e/mcp_consent.rs` walks the whole round with the MCP Python SDK:
//! the elicited URL is the broker's `/consent/start`, the user completes
//! consent at the local OAuth server, and the retried call reaches the
//! upstream with the new token.

use super::CallGuard;
use super::mcp::{McpHandler, protocol_error, to_response};
use crate::broker::AuthorizationRequired;
use crate::runtime::{CallError, CallRequest};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ElicitRequest,
    ElicitRequestParams, ElicitationAction, ErrorData, InputRequest, InputRequests,
    InputRequiredResult, ProtocolVersion,
};
use rmcp::service::{RequestContext, RoleServer};
use std::time::Duration;

/// Key of the consent elicitation in `inputRequests` and `inputResponses`.
pub const INPUT_KEY: &str = "airlock_consent";

/// The opaque `requestState` of a consent round. It is not trusted for
/// anything: it only marks the retry of a call that asked for consent.
const REQUEST_STATE: &str = "airlock-consent-v1";

/// What the user said to a consent prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Accepted,
    Refused,
}

/// Asks the user to link the account `required` names, and runs the call
/// again when the user says it is done.
pub(super) async fn ask(
    handler: &McpHandler,
    params: &CallToolRequestParams,
    context: &RequestContext<RoleServer>,
    guard: &CallGuard,
    request: CallRequest,
    required: AuthorizationRequired,
) -> Result<CallToolResponse, ErrorData> {
    let server = handler.server();
    let Some(url) = consent_url(&required, &request.user, server.settings()) else {
        server.metrics().record_consent("tool_error");
        return Ok(needs_link(&required, &request.user, None, None).into());
    };

    // This call is the retry of one that already asked: do not ask again.
    if let Some(answer) = answer_in(params) {
        server.metrics().record_consent("tool_error");
        let note = match answer {
            Answer::Accepted => "consent was not completed",
            Answer::Refused => "the user declined to link the account",
        };
        return Ok(needs_link(&required, &request.user, Some(&url), Some(note)).into());
    }

    if !supports_url_elicitation(context) {
        server.metrics().record_consent("tool_error");
        return Ok(needs_link(&required, &request.user, Some(&url), None).into());
    }
    let message = prompt(&required);

    if is_stateless(context) {
        server.metrics().record_consent("input_required");
        let elicitation = ElicitRequest::new(ElicitRequestParams::UrlElicitationParams {
            meta: None,
            message,
            url,
            elicitation_id: String::new(),
        });
        let mut requests = InputRequests::new();
        requests.insert(INPUT_KEY.into(), InputRequest::Elicitation(elicitation));
        return Ok(InputRequiredResult::new(Some(requests), Some(REQUEST_STATE.into())).into());
    }

    server.metrics().record_consent("elicitation");
    let timeout = Duration::from_millis(server.settings().consent_timeout_ms);
    let elicitation = context.peer.create_elicitation_with_timeout(
        ElicitRequestParams::UrlElicitationParams {
            meta: None,
            message,
            url: url.clone(),
            elicitation_id: new_elicitation_id(),
        },
        Some(timeout),
    );
    let answer = tokio::select! {
        answer = elicitation => answer,
        () = context.ct.cancelled() => return Err(protocol_error(super::CallFailure::Cancelled)),
        () = guard.aborted() => return Err(protocol_error(super::CallFailure::Cancelled)),
    };
    match answer.map(|a| a.action) {
        Ok(ElicitationAction::Accept) => {}
        Ok(_) => {
            let note = "the user declined to link the account";
            return Ok(needs_link(&required, &request.user, Some(&url), Some(note)).into());
        }
        Err(err) => {
            tracing::info!(%err, "consent prompt got no answer");
            let note = "the consent prompt got no answer";
            return Ok(needs_link(&required, &request.user, Some(&url), Some(note)).into());
        }
    }

    let user = request.user.clone();
    match handler.run(request, guard, context).await {
        Err(super::CallFailure::Host(CallError::AuthorizationRequired(still))) => {
            let note = "consent was not completed";
            Ok(needs_link(&still, &user, Some(&url), Some(note)).into())
        }
        result => to_response(result),
    }
}

/// The consent URL for `required`: the broker's, else the operator's
/// fallback page with the connection and user filled in.
pub(super) fn consent_url(
    required: &AuthorizationRequired,
    user: &str,
    settings: &crate::manifest::ServeConfig,
) -> Option<String> {
    if let Some(url) = &required.consent_url {
        return Some(url.clone());
    }
    let template = settings.consent_fallback_url.as_ref()?;
    let encode = |s: &str| {
        percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    Some(
        template
            .replace("{connection}", &encode(&required.connection))
            .replace("{user}", &encode(user)),
    )
}

/// The tool error a client gets when it cannot be prompted (or was already).
pub(super) fn needs_link(
    required: &AuthorizationRequired,
    user: &str,
    url: Option<&str>,
    note: Option<&str>,
) -> CallToolResult {
    let mut text = format!(
        "authorization required: user {user:?} must link connection {:?} ({})",
        required.connection, required.reason
    );
    if !required.missing_scopes.is_empty() {
        text.push_str(&format!(
            "; missing scopes: {}",
            required.missing_scopes.join(" ")
        ));
    }
    if let Some(note) = note {
        text.push_str(&format!("; {note}"));
    }
    match url {
        Some(url) => text.push_str(&format!(". Open {url} to link it, then call again.")),
        None => text.push_str(". No consent URL is configured: ask the operator to link it."),
    }
    CallToolResult::error(vec![ContentBlock::text(text)])
}

fn prompt(required: &AuthorizationRequired) -> String {
    let what = match required.reason {
        "missing_scopes" => "grant more access to",
        "expired" => "link again",
        _ => "link",
    };
    format!(
        "A tool needs you to {what} your {} account. Open the link, finish there, then accept.",
        required.connection
    )
}

/// The user's answer when this call is the retry of a consent round.
fn answer_in(params: &CallToolRequestParams) -> Option<Answer> {
    let response = params.input_responses.as_ref()?.get(INPUT_KEY)?;
    match response.get("action").and_then(|a| a.as_str()) {
        Some("accept") => Some(Answer::Accepted),
        _ => Some(Answer::Refused),
    }
}

fn supports_url_elicitation(context: &RequestContext<RoleServer>) -> bool {
    context
        .client_capabilities()
        .and_then(|caps| caps.elicitation)
        .is_some_and(|e| e.url.is_some())
}

/// Whether the request's protocol forbids server-to-client requests
/// (2026-07-28 and later), so consent must go through `input_required`.
fn is_stateless(context: &RequestContext<RoleServer>) -> bool {
    context
        .protocol_version()
        .is_some_and(|v| v.as_str() >= ProtocolVersion::V_2026_07_28.as_str())
}

fn new_elicitation_id() -> String {
    hex::encode(rand::random::<[u8; 12]>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::ServeConfig;

    fn required(consent_url: Option<&str>) -> AuthorizationRequired {
        AuthorizationRequired {
            connection: "demo".into(),
            reason: "not_linked",
            missing_scopes: vec!["repo".into()],
            consent_url: consent_url.map(str::to_string),
        }
    }

    fn text(result: &CallToolResult) -> String {
        serde_json::to_value(&result.content).unwrap()[0]["text"]
            .as_str()
            .unwrap()
            .to_string()
    }

    #[test]
    fn broker_url_wins_over_the_fallback() {
        let settings = ServeConfig {
            consent_fallback_url: Some("https://portal/link?c={connection}".into()),
            ..ServeConfig::default()
        };
        let url = consent_url(
            &required(Some("https://airlock/consent/start?s=1")),
            "a",
            &settings,
        );
        assert_eq!(url.as_deref(), Some("https://airlock/consent/start?s=1"));
    }

    #[test]
    fn fallback_fills_in_percent_encoded_names() {
        let settings = ServeConfig {
            consent_fallback_url: Some("https://portal/link?c={connection}&u={user}".into()),
            ..ServeConfig::default()
        };
        let url = consent_url(&required(None), "a.b@c", &settings).unwrap();
        assert_eq!(url, "https://portal/link?c=demo&u=a%2Eb%40c");
        assert_eq!(
            consent_url(&required(None), "a", &ServeConfig::default()),
            None
        );
    }

    #[test]
    fn tool_error_carries_the_url_connection_and_scopes() {
        let result = needs_link(&required(None), "bob", Some("https://x/link"), None);
        assert_eq!(result.is_error, Some(true));
        let text = text(&result);
        assert!(
            text.contains("\"bob\"") && text.contains("\"demo\""),
            "{text}"
        );
        assert!(
            text.contains("https://x/link") && text.contains("repo"),
            "{text}"
        );
        let none = text_of_none();
        assert!(none.contains("No consent URL"), "{none}");
    }

    fn text_of_none() -> String {
        text(&needs_link(&required(None), "bob", None, None))
    }

    #[test]
    fn retry_answers_are_read_from_input_responses() {
        let mut params = CallToolRequestParams::new("fetch.fetch");
        assert_eq!(answer_in(&params), None);
        let mut responses = rmcp::model::InputResponses::new();
        responses.insert(INPUT_KEY.into(), serde_json::json!({"action": "accept"}));
        params.input_responses = Some(responses.clone());
        assert_eq!(answer_in(&params), Some(Answer::Accepted));
        responses.insert(INPUT_KEY.into(), serde_json::json!({"action": "decline"}));
        params.input_responses = Some(responses);
        assert_eq!(answer_in(&params), Some(Answer::Refused));
    }
}
