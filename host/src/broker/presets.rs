//! Provider presets: where each provider's endpoints are and which of its
//! habits differ from RFC 6749.
//!
//! The quirks handled here, so that the `oauth2` crate sees standard
//! responses:
//!
//! - GitHub and Slack answer errors with status 200 (`{"error": ...}`,
//!   Slack's `{"ok": false, ...}`); they become status 400.
//! - GitHub and Slack list granted scopes comma-separated; they become
//!   space-separated.
//! - Slack puts the user token under `authed_user`; it is lifted to the top.
//! - Some servers send `expires_in` as a string; it becomes a number.
//! - Google returns a refresh token only with `access_type=offline`, and
//!   again on re-consent only with `prompt=consent`.
//! - Microsoft needs `offline_access` for a refresh token, puts the tenant
//!   in the endpoint path, and answers `.default` requests with the
//!   permissions behind them, so a requested `.default` scope counts as
//!   granted.
//! - Box refresh tokens are single use; rotation is the broker's default
//!   handling for every provider.
//! - GitHub has no RFC 7009 endpoint: a grant is revoked through its REST
//!   API ([`Revocation::GithubRest`]).

use crate::manifest::{ClientAuth, ProviderKind};
use url::Url;

/// How a provider differs from the standard.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Quirks {
    /// Granted scopes come comma-separated.
    pub comma_scopes: bool,
    /// Scopes go in the authorization request as `user_scope`,
    /// comma-separated (Slack user tokens).
    pub slack_user_scope: bool,
    /// The user token is under `authed_user` (Slack).
    pub slack_authed_user: bool,
    /// Requested `.default` scopes count as granted (Microsoft).
    pub default_scopes: bool,
    /// Scopes always requested at consent.
    pub always_scopes: &'static [&'static str],
    /// Extra authorization request parameters.
    pub authorize_params: &'static [(&'static str, &'static str)],
    /// Send the scopes again when refreshing (Microsoft asks for it).
    pub scopes_on_refresh: bool,
}

/// A preset's endpoints and quirks, before config overrides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preset {
    /// Authorization endpoint, when fixed.
    pub authorize: Option<Url>,
    /// Token endpoint, when fixed.
    pub token: Option<Url>,
    /// Revocation endpoint, when fixed. GitHub's depends on the client id
    /// and the API's host; see [`github_grant_url`].
    pub revoke: Option<Url>,
    /// How the provider's revocation endpoint is called.
    pub revocation: Revocation,
    /// How the client authenticates at the token endpoint by default.
    pub client_auth: ClientAuth,
    /// What differs from the standard.
    pub quirks: Quirks,
}

fn url(text: &str) -> Option<Url> {
    Some(Url::parse(text).expect("preset URLs are valid"))
}

/// How a provider's revocation endpoint is called. The endpoint itself is
/// the preset's, or the connection's `revoke_url`, which keeps the kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revocation {
    /// RFC 7009: `POST` of the form `token=...&token_type_hint=...`, the
    /// refresh token when there is one (revoking it ends the grant), with
    /// the client authenticated as at the token endpoint. Success is 200;
    /// the RFC has the server answer 200 for a token it does not know.
    Rfc7009,
    /// GitHub's REST API: `DELETE` with HTTP Basic `client_id:client_secret`
    /// and the JSON body `{"access_token": "..."}`. At
    /// `/applications/{client_id}/grant` (the default) it removes the whole
    /// authorization, every token with it; at `.../token` only that token.
    /// Success is 204; 404 and 422 mean the token or grant is already gone.
    GithubRest,
}

/// GitHub's public REST API.
const GITHUB_API: &str = "https://api.github.com";

/// The path of GitHub's OAuth token endpoint, on github.com and on GitHub
/// Enterprise Server alike.
const GITHUB_TOKEN_PATH: &str = "/login/oauth/access_token";

/// GitHub's grant revocation endpoint for `client_id`, at the REST API that
/// goes with `token_url`: `https://api.github.com` for github.com (and when
/// the token endpoint was not moved), `https://HOST/api/v3` for a GitHub
/// Enterprise Server whose token endpoint is
/// `https://HOST/login/oauth/access_token`.
///
/// Any other token endpoint gives an error rather than a guess: sending a
/// token and the client secret to the wrong API would hand them to another
/// server. The connection's `revoke_url` then names the endpoint.
pub fn github_grant_url(token_url: Option<&Url>, client_id: &str) -> Result<Url, String> {
    let mut api = match token_url {
        None => Url::parse(GITHUB_API).expect("the GitHub API URL is valid"),
        Some(t) if t.host_str() == Some("github.com") && t.path() == GITHUB_TOKEN_PATH => {
            Url::parse(GITHUB_API).expect("the GitHub API URL is valid")
        }
        Some(t) => match t.path().strip_suffix(GITHUB_TOKEN_PATH) {
            Some(prefix) if t.query().is_none() => {
                let mut api = t.clone();
                api.set_path(&format!("{prefix}/api/v3"));
                api
            }
            _ => {
                return Err(format!(
                    "cannot tell where the GitHub API is from token_url {:?}; set revoke_url to its grant endpoint, such as https://HOST/api/v3/applications/CLIENT_ID/grant",
                    t.as_str()
                ));
            }
        },
    };
    let shown = api.to_string();
    api.path_segments_mut()
        .map_err(|()| format!("{shown:?} cannot take a path"))?
        .pop_if_empty()
        .extend(["applications", client_id, "grant"]);
    Ok(api)
}

/// The preset for `kind`. `oidc` and `custom` have no fixed endpoints.
pub fn preset(kind: &ProviderKind) -> Preset {
    let standard = Preset {
        authorize: None,
        token: None,
        revoke: None,
        revocation: Revocation::Rfc7009,
        client_auth: ClientAuth::Basic,
        quirks: Quirks::default(),
    };
    match kind {
        ProviderKind::Github => Preset {
            authorize: url("https://github.com/login/oauth/authorize"),
            token: url("https://github.com/login/oauth/access_token"),
            // Built per connection by `github_grant_url`.
            revoke: None,
            revocation: Revocation::GithubRest,
            client_auth: ClientAuth::Post,
            quirks: Quirks {
                comma_scopes: true,
                ..Quirks::default()
            },
        },
        ProviderKind::Google => Preset {
            authorize: url("https://accounts.google.com/o/oauth2/v2/auth"),
            token: url("https://oauth2.googleapis.com/token"),
            revoke: url("https://oauth2.googleapis.com/revoke"),
            revocation: Revocation::Rfc7009,
            client_auth: ClientAuth::Post,
            quirks: Quirks {
                authorize_params: &[
                    ("access_type", "offline"),
                    ("prompt", "consent"),
                    ("include_granted_scopes", "true"),
                ],
                ..Quirks::default()
            },
        },
        ProviderKind::Microsoft { tenant } => {
            let base = format!("https://login.microsoftonline.com/{tenant}/oauth2/v2.0");
            Preset {
                authorize: url(&format!("{base}/authorize")),
                token: url(&format!("{base}/token")),
                revoke: None,
                revocation: Revocation::Rfc7009,
                client_auth: ClientAuth::Post,
                quirks: Quirks {
                    default_scopes: true,
                    always_scopes: &["offline_access"],
                    scopes_on_refresh: true,
                    ..Quirks::default()
                },
            }
        }
        ProviderKind::Slack => Preset {
            authorize: url("https://slack.com/oauth/v2/authorize"),
            token: url("https://slack.com/api/oauth.v2.access"),
            revoke: url("https://slack.com/api/auth.revoke"),
            revocation: Revocation::Rfc7009,
            client_auth: ClientAuth::Post,
            quirks: Quirks {
                comma_scopes: true,
                slack_user_scope: true,
                slack_authed_user: true,
                ..Quirks::default()
            },
        },
        ProviderKind::Box => Preset {
            authorize: url("https://account.box.com/api/oauth2/authorize"),
            token: url("https://api.box.com/oauth2/token"),
            revoke: url("https://api.box.com/oauth2/revoke"),
            revocation: Revocation::Rfc7009,
            client_auth: ClientAuth::Post,
            quirks: Quirks::default(),
        },
        ProviderKind::Oidc { .. } | ProviderKind::Custom => standard,
    }
}

/// Rewrites a token or revocation endpoint response into the RFC 6749
/// shape. Responses that are not JSON objects pass unchanged.
pub fn normalize(quirks: &Quirks, response: oauth2::HttpResponse) -> oauth2::HttpResponse {
    let (mut parts, body) = response.into_parts();
    let Ok(mut json) = serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&body)
    else {
        return http::Response::from_parts(parts, body);
    };
    use serde_json::Value;

    let failed = json.get("ok") == Some(&Value::Bool(false)) || json.contains_key("error");
    if failed {
        if parts.status.is_success() {
            parts.status = http::StatusCode::BAD_REQUEST;
        }
        json.retain(|k, _| matches!(k.as_str(), "error" | "error_description" | "error_uri"));
        if !matches!(json.get("error"), Some(Value::String(_))) {
            json.insert("error".into(), Value::String("unknown_error".into()));
        }
    } else if parts.status.is_success() {
        if quirks.slack_authed_user
            && let Some(Value::Object(user)) = json.remove("authed_user")
            && user.contains_key("access_token")
        {
            json = user;
        }
        if let Some(Value::String(s)) = json.get("expires_in") {
            match s.trim().parse::<u64>() {
                Ok(n) => json.insert("expires_in".into(), Value::from(n)),
                Err(_) => json.remove("expires_in"),
            };
        }
        if let Some(Value::String(scope)) = json.get_mut("scope")
            && quirks.comma_scopes
        {
            *scope = scope
                .split([',', ' '])
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(" ");
        }
        if !json.contains_key("token_type") && json.contains_key("access_token") {
            json.insert("token_type".into(), Value::String("bearer".into()));
        }
    }

    parts.headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    parts.headers.remove(http::header::CONTENT_LENGTH);
    let body = serde_json::to_vec(&json).expect("a JSON map serializes");
    http::Response::from_parts(parts, body)
}

/// The scopes to send with a refresh, from the scopes a record holds: a
/// `.default` request stands alone (Microsoft refuses it mixed with the
/// permissions it expanded to), with `offline_access`.
pub fn refresh_scopes(stored: &[String]) -> Vec<String> {
    if stored.iter().any(|s| s.ends_with("/.default")) {
        stored
            .iter()
            .filter(|s| s.ends_with("/.default") || *s == "offline_access")
            .cloned()
            .collect()
    } else {
        stored.to_vec()
    }
}

/// The scopes a token carries: what the provider says it granted, or, when
/// it says nothing, what was requested.
pub fn granted_scopes(
    quirks: &Quirks,
    requested: &[String],
    reply: Option<Vec<String>>,
) -> Vec<String> {
    let mut scopes = match reply {
        None => requested.to_vec(),
        Some(mut granted) => {
            if quirks.default_scopes {
                granted.extend(
                    requested
                        .iter()
                        .filter(|s| {
                            s.ends_with("/.default")
                                || matches!(
                                    s.as_str(),
                                    "offline_access" | "openid" | "profile" | "email"
                                )
                        })
                        .cloned(),
                );
            }
            granted
        }
    };
    scopes.sort();
    scopes.dedup();
    scopes
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn response(status: u16, body: Value) -> oauth2::HttpResponse {
        http::Response::builder()
            .status(status)
            .header("content-type", "application/json; charset=utf-8")
            .body(serde_json::to_vec(&body).unwrap())
            .unwrap()
    }

    fn body(r: &oauth2::HttpResponse) -> Value {
        serde_json::from_slice(r.body()).unwrap()
    }

    #[test]
    fn github_error_with_status_200_becomes_400() {
        let q = preset(&ProviderKind::Github).quirks;
        let r = normalize(
            &q,
            response(
                200,
                json!({"error": "bad_verification_code", "error_description": "The code passed is incorrect or expired.", "error_uri": "https://docs"}),
            ),
        );
        assert_eq!(r.status(), 400);
        assert_eq!(body(&r)["error"], "bad_verification_code");
    }

    #[test]
    fn slack_ok_false_becomes_400_and_authed_user_is_lifted() {
        let q = preset(&ProviderKind::Slack).quirks;
        let r = normalize(
            &q,
            response(200, json!({"ok": false, "error": "invalid_code"})),
        );
        assert_eq!(
            (r.status().as_u16(), body(&r)),
            (400, json!({"error": "invalid_code"}))
        );

        let r = normalize(
            &q,
            response(
                200,
                json!({
                    "ok": true, "access_token": "xoxb-bot", "token_type": "bot", "scope": "chat:write",
                    "authed_user": {"id": "U1", "access_token": "xoxp-user", "token_type": "user",
                        "scope": "search:read,users:read", "refresh_token": "xoxe-1", "expires_in": "43200"}
                }),
            ),
        );
        let b = body(&r);
        assert_eq!(b["access_token"], "xoxp-user");
        assert_eq!(b["scope"], "search:read users:read");
        assert_eq!(b["expires_in"], 43200);
        assert_eq!(r.headers()["content-type"], "application/json");
    }

    #[test]
    fn missing_token_type_and_string_expiry_are_filled_in() {
        let r = normalize(
            &Quirks::default(),
            response(
                200,
                json!({"access_token": "a", "expires_in": "soon", "scope": "a,b"}),
            ),
        );
        let b = body(&r);
        assert_eq!(b["token_type"], "bearer");
        assert!(b.get("expires_in").is_none());
        // Commas are part of a scope unless the provider is known to use them
        // as separators.
        assert_eq!(b["scope"], "a,b");
    }

    #[test]
    fn microsoft_default_scopes_count_as_granted() {
        let q = preset(&ProviderKind::Microsoft {
            tenant: "common".into(),
        })
        .quirks;
        let requested = vec![
            "https://graph.microsoft.com/.default".to_string(),
            "offline_access".into(),
        ];
        let got = granted_scopes(&q, &requested, Some(vec!["User.Read".into()]));
        assert_eq!(
            got,
            [
                "User.Read",
                "https://graph.microsoft.com/.default",
                "offline_access"
            ]
        );
        let plain = granted_scopes(
            &Quirks::default(),
            &requested,
            Some(vec!["User.Read".into()]),
        );
        assert_eq!(plain, ["User.Read"]);
    }

    #[test]
    fn tenant_is_in_the_microsoft_endpoints() {
        let p = preset(&ProviderKind::Microsoft {
            tenant: "contoso.com".into(),
        });
        assert_eq!(
            p.token.unwrap().as_str(),
            "https://login.microsoftonline.com/contoso.com/oauth2/v2.0/token"
        );
    }

    #[test]
    fn github_revokes_at_the_api_that_goes_with_its_token_endpoint() {
        let grant = |token: Option<&str>, id: &str| {
            let token = token.map(|t| Url::parse(t).unwrap());
            github_grant_url(token.as_ref(), id).map(|u| u.to_string())
        };
        assert_eq!(
            grant(None, "Iv1.abc").unwrap(),
            "https://api.github.com/applications/Iv1.abc/grant"
        );
        assert_eq!(
            grant(
                Some("https://github.com/login/oauth/access_token"),
                "Iv1.abc"
            )
            .unwrap(),
            "https://api.github.com/applications/Iv1.abc/grant"
        );
        // GitHub Enterprise Server: the API is under /api/v3 of the host.
        assert_eq!(
            grant(
                Some("https://ghe.example.com/login/oauth/access_token"),
                "Iv1.abc"
            )
            .unwrap(),
            "https://ghe.example.com/api/v3/applications/Iv1.abc/grant"
        );
        // The client id is one path segment, whatever it holds.
        assert_eq!(
            grant(None, "a b/../c").unwrap(),
            "https://api.github.com/applications/a%20b%2F..%2Fc/grant"
        );
        // A token endpoint of another shape is not guessed at.
        let err = grant(Some("http://127.0.0.1:9/github/token"), "Iv1.abc").unwrap_err();
        assert!(
            err.contains("revoke_url") && err.contains("http://127.0.0.1:9/github/token"),
            "{err}"
        );
    }

    #[test]
    fn only_github_revokes_through_a_rest_api() {
        assert_eq!(
            preset(&ProviderKind::Github).revocation,
            Revocation::GithubRest
        );
        for kind in [ProviderKind::Google, ProviderKind::Slack, ProviderKind::Box] {
            let p = preset(&kind);
            assert_eq!(p.revocation, Revocation::Rfc7009, "{kind:?}");
            assert!(p.revoke.is_some(), "{kind:?}");
        }
    }
}
