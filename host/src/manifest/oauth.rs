//! The OAuth part of a connection: which provider issues its tokens, the
//! client registered there, and the scopes asked for at consent.
//!
//! ```toml
//! [connections.github]
//! audience = ["https://api.github.com"]
//! provider = "github"        # github, google, microsoft, slack, box, oidc, custom
//! client_id = "Iv1.0123456789abcdef"
//! client_secret_env = "GITHUB_CLIENT_SECRET"   # or client_secret_file = "..."
//! scopes = ["repo", "read:user"]
//! # redirect_url = "https://airlock.example.com/consent/callback"
//! # issuer = "https://id.example.com"          # provider = "oidc"
//! # tenant = "contoso.onmicrosoft.com"         # provider = "microsoft"
//! # authorize_url / token_url / revoke_url     # provider = "custom", or to
//! #                                            # move a preset's endpoints
//! # client_auth = "basic"                      # or "post"
//! ```
//!
//! A client secret is never written in the config itself: it names an
//! environment variable or a file, read when the broker starts.

use serde::Deserialize;
use std::path::PathBuf;
use url::Url;

/// How a connection obtains and refreshes tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthSettings {
    /// The provider preset.
    pub provider: ProviderKind,
    /// The client id registered with the provider.
    pub client_id: String,
    /// Where the client secret is read from; `None` for a public client.
    pub client_secret: Option<SecretSource>,
    /// Scopes asked for at consent (the tool's scopes are added to them).
    pub scopes: Vec<String>,
    /// Where the provider sends the user back; default: the host's
    /// `consent_base_url` followed by `/consent/callback`.
    pub redirect_url: Option<Url>,
    /// Endpoints that replace the preset's (required for `custom`).
    pub endpoints: EndpointOverrides,
    /// How the client authenticates at the token endpoint; default: the
    /// preset's.
    pub client_auth: Option<ClientAuth>,
}

/// A provider preset: its endpoints and its known quirks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderKind {
    /// GitHub (OAuth apps and GitHub apps).
    Github,
    /// Google.
    Google,
    /// Microsoft identity platform v2.0, for one tenant (or `common`).
    Microsoft {
        /// Tenant id, domain, `common`, `organizations` or `consumers`.
        tenant: String,
    },
    /// Slack, user tokens.
    Slack,
    /// Box.
    Box,
    /// Any OpenID Connect provider, found by discovery on its issuer.
    Oidc {
        /// The issuer; discovery must report exactly this value.
        issuer: Url,
    },
    /// Endpoints given in the config.
    Custom,
}

/// Endpoint URLs given in the config.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointOverrides {
    /// Authorization endpoint.
    pub authorize: Option<Url>,
    /// Token endpoint.
    pub token: Option<Url>,
    /// Revocation endpoint (RFC 7009).
    pub revoke: Option<Url>,
}

/// Where a client secret comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// An environment variable.
    Env(String),
    /// A file; surrounding whitespace is ignored.
    File(PathBuf),
}

/// How the client authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuth {
    /// HTTP Basic (`client_secret_basic`).
    Basic,
    /// Form parameters (`client_secret_post`).
    Post,
}

/// The OAuth keys of a `[connections.NAME]` table, as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOAuth {
    pub provider: Option<String>,
    pub client_id: Option<String>,
    pub client_secret_env: Option<String>,
    pub client_secret_file: Option<String>,
    /// Present only to refuse it with a clear message.
    pub client_secret: Option<toml::Value>,
    #[serde(default)]
    pub scopes: Vec<String>,
    pub redirect_url: Option<String>,
    pub issuer: Option<String>,
    pub tenant: Option<String>,
    pub authorize_url: Option<String>,
    pub token_url: Option<String>,
    pub revoke_url: Option<String>,
    pub client_auth: Option<ClientAuth>,
}

impl RawOAuth {
    /// Checks the keys of connection `name`; `base` anchors a relative
    /// secret file. `Ok(None)` when the connection has no provider.
    pub(super) fn parse(
        self,
        name: &str,
        base: &std::path::Path,
    ) -> Result<Option<OAuthSettings>, String> {
        let key = |k: &str| format!("connections.{name}.{k}");
        if self.client_secret.is_some() {
            return Err(format!(
                "{}: a client secret is never written in the config; name an environment variable with client_secret_env or a file with client_secret_file",
                key("client_secret")
            ));
        }
        let Some(provider) = self.provider else {
            let stray = [
                ("client_id", self.client_id.is_some()),
                ("client_secret_env", self.client_secret_env.is_some()),
                ("client_secret_file", self.client_secret_file.is_some()),
                ("issuer", self.issuer.is_some()),
                ("tenant", self.tenant.is_some()),
                ("token_url", self.token_url.is_some()),
                ("authorize_url", self.authorize_url.is_some()),
            ];
            if let Some((k, _)) = stray.iter().find(|(_, set)| *set) {
                return Err(format!(
                    "{}: set provider = \"github\", \"google\", \"microsoft\", \"slack\", \"box\", \"oidc\" or \"custom\" to use OAuth keys",
                    key(k)
                ));
            }
            return Ok(None);
        };

        let url = |k: &str, v: Option<String>| -> Result<Option<Url>, String> {
            v.map(|v| parse_endpoint(&v).map_err(|m| format!("{}: {m}", key(k))))
                .transpose()
        };
        let endpoints = EndpointOverrides {
            authorize: url("authorize_url", self.authorize_url)?,
            token: url("token_url", self.token_url)?,
            revoke: url("revoke_url", self.revoke_url)?,
        };
        let redirect_url = url("redirect_url", self.redirect_url)?;
        let issuer = url("issuer", self.issuer)?;
        let only_for = |k: &str, set: bool, kind: &str| {
            if set {
                Err(format!("{}: only used with provider = {kind:?}", key(k)))
            } else {
                Ok(())
            }
        };

        let provider = match provider.as_str() {
            "github" | "google" | "slack" | "box" | "custom" | "oidc" | "microsoft" => {
                only_for("issuer", issuer.is_some() && provider != "oidc", "oidc")?;
                only_for(
                    "tenant",
                    self.tenant.is_some() && provider != "microsoft",
                    "microsoft",
                )?;
                match provider.as_str() {
                    "github" => ProviderKind::Github,
                    "google" => ProviderKind::Google,
                    "slack" => ProviderKind::Slack,
                    "box" => ProviderKind::Box,
                    "microsoft" => ProviderKind::Microsoft {
                        tenant: check_tenant(self.tenant.as_deref().unwrap_or("common"))
                            .map_err(|m| format!("{}: {m}", key("tenant")))?,
                    },
                    "oidc" => ProviderKind::Oidc {
                        issuer: issuer.ok_or_else(|| {
                            format!(
                                "{}: provider = \"oidc\" needs the issuer URL",
                                key("issuer")
                            )
                        })?,
                    },
                    _ => {
                        if endpoints.authorize.is_none() || endpoints.token.is_none() {
                            return Err(format!(
                                "{}: provider = \"custom\" needs authorize_url and token_url",
                                key("provider")
                            ));
                        }
                        ProviderKind::Custom
                    }
                }
            }
            other => {
                return Err(format!(
                    "{}: unknown provider {other:?}; expected github, google, microsoft, slack, box, oidc or custom",
                    key("provider")
                ));
            }
        };

        let client_id = self
            .client_id
            .filter(|id| !id.trim().is_empty())
            .ok_or_else(|| format!("{}: the provider's client id is required", key("client_id")))?;
        let client_secret = match (self.client_secret_env, self.client_secret_file) {
            (Some(_), Some(_)) => {
                return Err(format!(
                    "{}: set client_secret_env or client_secret_file, not both",
                    key("client_secret_env")
                ));
            }
            (Some(var), None) => Some(SecretSource::Env(var)),
            (None, Some(file)) => Some(SecretSource::File(base.join(file))),
            (None, None) => None,
        };
        if let Some(scope) = self.scopes.iter().find(|s| {
            s.is_empty() || s.contains([' ', ',', '"', '\\']) || s.chars().any(char::is_control)
        }) {
            return Err(format!(
                "{}: {scope:?} is not a scope: list each scope as its own string",
                key("scopes")
            ));
        }
        Ok(Some(OAuthSettings {
            provider,
            client_id,
            client_secret,
            scopes: self.scopes,
            redirect_url,
            endpoints,
            client_auth: self.client_auth,
        }))
    }
}

/// Parses an endpoint URL: `https`, or `http` to a loopback host only.
pub fn parse_endpoint(text: &str) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|e| format!("{text:?} is not a URL: {e}"))?;
    if !url.username().is_empty() || url.password().is_some() || url.fragment().is_some() {
        return Err(format!("{text:?} must not carry credentials or a fragment"));
    }
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback(&url) => Ok(url),
        "http" => Err(format!(
            "{text:?} uses http; only https is allowed, except to a loopback address"
        )),
        other => Err(format!("{text:?} has scheme {other:?}; expected https")),
    }
}

/// Whether `url` points at this machine (127.0.0.0/8, ::1 or `localhost`).
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

fn check_tenant(tenant: &str) -> Result<String, String> {
    let ok = !tenant.is_empty()
        && tenant.len() <= 128
        && tenant
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b));
    if ok {
        Ok(tenant.to_string())
    } else {
        Err(format!(
            "{tenant:?} is not a tenant id or domain (letters, digits, '-', '.', '_')"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn parse(text: &str) -> Result<Option<OAuthSettings>, String> {
        let raw: RawOAuth = toml::from_str(text).map_err(|e| e.to_string())?;
        raw.parse("gh", Path::new("/etc/airlock"))
    }

    #[test]
    fn github_preset_with_secret_from_env() {
        let s = parse(
            "provider = \"github\"\nclient_id = \"abc\"\nclient_secret_env = \"GH\"\nscopes = [\"repo\"]",
        )
        .unwrap()
        .unwrap();
        assert_eq!(s.provider, ProviderKind::Github);
        assert_eq!(s.client_secret, Some(SecretSource::Env("GH".into())));
        assert_eq!(s.scopes, ["repo"]);
    }

    #[test]
    fn inline_secret_is_refused() {
        let err = parse("provider = \"github\"\nclient_id = \"abc\"\nclient_secret = \"s3cr3t\"")
            .unwrap_err();
        assert!(err.contains("never written in the config"), "{err}");
        assert!(!err.contains("s3cr3t"), "{err}");
    }

    #[test]
    fn secret_file_is_relative_to_the_config() {
        let s =
            parse("provider = \"box\"\nclient_id = \"abc\"\nclient_secret_file = \"box.secret\"")
                .unwrap()
                .unwrap();
        assert_eq!(
            s.client_secret,
            Some(SecretSource::File("/etc/airlock/box.secret".into()))
        );
    }

    #[test]
    fn custom_needs_endpoints_and_http_only_to_loopback() {
        let err = parse("provider = \"custom\"\nclient_id = \"abc\"").unwrap_err();
        assert!(err.contains("authorize_url and token_url"), "{err}");
        let err = parse(
            "provider = \"custom\"\nclient_id = \"a\"\nauthorize_url = \"http://id.example.com/a\"\ntoken_url = \"https://id.example.com/t\"",
        )
        .unwrap_err();
        assert!(err.contains("only https"), "{err}");
        assert!(
            parse("provider = \"custom\"\nclient_id = \"a\"\nauthorize_url = \"http://127.0.0.1:9/a\"\ntoken_url = \"http://localhost:9/t\"")
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn oidc_needs_an_issuer_and_microsoft_takes_a_tenant() {
        assert!(
            parse("provider = \"oidc\"\nclient_id = \"a\"")
                .unwrap_err()
                .contains("issuer")
        );
        let s = parse("provider = \"microsoft\"\nclient_id = \"a\"\ntenant = \"contoso.com\"")
            .unwrap()
            .unwrap();
        assert_eq!(
            s.provider,
            ProviderKind::Microsoft {
                tenant: "contoso.com".into()
            }
        );
        assert!(
            parse("provider = \"google\"\nclient_id = \"a\"\ntenant = \"x\"")
                .unwrap_err()
                .contains("only used with provider = \"microsoft\"")
        );
    }

    #[test]
    fn oauth_keys_without_provider_and_unknown_providers_are_refused() {
        assert!(
            parse("client_id = \"a\"")
                .unwrap_err()
                .contains("set provider")
        );
        assert!(
            parse("provider = \"gitlab\"\nclient_id = \"a\"")
                .unwrap_err()
                .contains("unknown provider \"gitlab\"")
        );
        assert_eq!(parse("").unwrap(), None);
    }

    #[test]
    fn space_separated_scopes_are_refused() {
        let err = parse("provider = \"github\"\nclient_id = \"a\"\nscopes = [\"repo user\"]")
            .unwrap_err();
        assert!(err.contains("own string"), "{err}");
    }
}
