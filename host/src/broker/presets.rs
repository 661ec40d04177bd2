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
    /// Revocation endpoint, when the provider has an RFC 7009 one.
    pub revoke: Option<Url>,
    /// How the client authenticates at the token endpoint by default.
    pub client_auth: ClientAuth,
    /// What differs from the standard.
    pub quirks: Quirks,
}

fn url(text: &str) -> Option<Url> {
    Some(Url::parse(text).expect("preset URLs are valid"))
}

/// The preset for `kind`. `oidc` and `custom` have no fixed endpoints.
pub fn preset(kind: &ProviderKind) -> Preset {
    let standard = Preset {
        authorize: None,
        token: None,
        revoke: None,
        client_auth: ClientAuth::Basic,
        quirks: Quirks::default(),
    };
    match kind {
        ProviderKind::Github => Preset {
            authorize: url("https://github.com/login/oauth/authorize"),
            token: url("https://github.com/login/oauth/access_token"),
            // FIXME(#4): GitHub revokes through its REST API
            // (DELETE /applications/{client_id}/grant), not RFC 7009;
            // `vault revoke` deletes the record and says the grant remains.
            revoke: None,
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
}
