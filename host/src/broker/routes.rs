//! The consent routes, as one async function the HTTP server mounts.
//!
//! [`consent_routes`] answers two `GET` routes, matched on the end of the
//! path so they can live under any prefix:
//!
//! - `…/consent/start?user=&connection=&scope=&expires=&sig=`: checks the
//!   signature the broker put on the consent URL it gave out, then
//!   redirects (303) to the provider's authorization URL.
//! - `…/consent/callback?state=&code=` (and `iss=` per RFC 9207, or
//!   `error=` when the user declined): completes the consent and stores
//!   the tokens; the response then carries a [`Linked`] extension.
//!
//! Anything else is 404. Bodies are short plain text that names no secret.
//! The request body is never read.

use super::Broker;
use bytes::Bytes;
use http::{Method, Response, StatusCode, header};
use http_body_util::Full;
use std::collections::HashMap;

/// Put in the extensions of a callback response that linked an account:
/// (user, connection).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Linked {
    /// The user whose account was linked.
    pub user: String,
    /// The connection it was linked for.
    pub connection: String,
}

/// Answers a consent route for `broker`; see the module documentation.
pub async fn consent_routes<B>(
    broker: &Broker,
    request: &http::Request<B>,
) -> Response<Full<Bytes>> {
    let path = request.uri().path();
    let route = if path.ends_with("/consent/start") {
        Route::Start
    } else if path.ends_with("/consent/callback") {
        Route::Callback
    } else {
        return text(StatusCode::NOT_FOUND, "no such consent route");
    };
    if request.method() != Method::GET {
        return text(StatusCode::METHOD_NOT_ALLOWED, "use GET");
    }
    let query: HashMap<String, String> = request
        .uri()
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let get = |k: &str| query.get(k).map(String::as_str);

    match route {
        Route::Start => start(broker, get).await,
        Route::Callback => callback(broker, get).await,
    }
}

enum Route {
    Start,
    Callback,
}

async fn start<'a>(
    broker: &Broker,
    get: impl Fn(&str) -> Option<&'a str>,
) -> Response<Full<Bytes>> {
    let (Some(user), Some(connection), Some(expires), Some(sig)) =
        (get("user"), get("connection"), get("expires"), get("sig"))
    else {
        return text(
            StatusCode::BAD_REQUEST,
            "consent start needs user, connection, expires and sig; use the consent URL the host gave out",
        );
    };
    let scope = get("scope").unwrap_or("");
    let signed = expires
        .parse::<u64>()
        .is_ok_and(|e| broker.verify_link(user, connection, scope, e, sig));
    if !signed {
        return text(
            StatusCode::FORBIDDEN,
            "this consent link is not valid or has expired; ask the agent for a new one",
        );
    }
    let scopes: Vec<String> = scope
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    match broker.begin_consent(user, connection, &scopes).await {
        Ok(url) => Response::builder()
            .status(StatusCode::SEE_OTHER)
            .header(header::LOCATION, url)
            .header(header::CACHE_CONTROL, "no-store")
            .body(Full::new(Bytes::new()))
            .expect("a redirect response builds"),
        Err(err) => {
            tracing::warn!(%err, connection, "airlock.broker.consent_start_failed");
            text(
                StatusCode::BAD_GATEWAY,
                &format!("could not start consent: {err}"),
            )
        }
    }
}

async fn callback<'a>(
    broker: &Broker,
    get: impl Fn(&str) -> Option<&'a str>,
) -> Response<Full<Bytes>> {
    if let Some(error) = get("error") {
        // Drop the pending state so it cannot be completed later.
        if let Some(state) = get("state") {
            let _ = broker.inner.consent.take(state);
        }
        let error: String = error
            .chars()
            .filter(|c| c.is_ascii_graphic())
            .take(64)
            .collect();
        return text(
            StatusCode::BAD_REQUEST,
            &format!("the provider did not grant access ({error}); nothing was linked"),
        );
    }
    let (Some(state), Some(code)) = (get("state"), get("code")) else {
        return text(StatusCode::BAD_REQUEST, "the callback needs state and code");
    };
    match broker.complete_consent_from(state, code, get("iss")).await {
        Ok((user, connection)) => {
            let mut response = text(
                StatusCode::OK,
                &format!(
                    "linked connection {connection:?} for user {user:?}; you can close this window"
                ),
            );
            response
                .extensions_mut()
                .insert(Linked { user, connection });
            response
        }
        Err(err) => {
            tracing::warn!(%err, "airlock.broker.consent_failed");
            text(StatusCode::BAD_REQUEST, &format!("linking failed: {err}"))
        }
    }
}

fn text(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-store")
        .header("x-content-type-options", "nosniff")
        .body(Full::new(Bytes::from(format!("{body}\n"))))
        .expect("a text response builds")
}
