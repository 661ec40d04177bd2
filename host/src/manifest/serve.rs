//! The `[serve]` and `[callers]` sections of the operator config: how
//! `airlock serve` runs, and who may call it over HTTP for which users.
//!
//! ```toml
//! [serve]                           # every key optional
//! user = "alice"                    # user of --stdio sessions without --user
//! consent_fallback_url = "https://portal.example.com/link?c={connection}&u={user}"
//! allowed_hosts = ["localhost", "127.0.0.1", "::1"]
//! shutdown_grace_ms = 10000
//!
//! [callers.keys.agent-one]          # an API key of an agent runtime
//! sha256 = "<64 hex digits>"        # sha256 of the key; the key is never stored
//! users = ["alice", "bob"]          # users it may act for; ["*"] for any
//!
//! [callers.oidc]                    # OIDC access tokens; the user is `sub`
//! issuer = "https://idp.example.com"
//! audience = "airlock"
//! jwks_url = "https://idp.example.com/keys"   # default: from discovery
//! ```

use super::config::ConfigError;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::IpAddr;
use toml::Spanned;

/// How `airlock serve` runs (`[serve]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeConfig {
    /// User of `--stdio` sessions started without `--user`.
    pub user: Option<String>,
    /// A page where users link accounts, offered when the broker has no
    /// consent URL of its own. `{connection}` and `{user}` are replaced by
    /// the percent-encoded connection and user names.
    pub consent_fallback_url: Option<String>,
    /// `Host` header values the HTTP server answers to (a guard against DNS
    /// rebinding), with or without the port; `["*"]` turns the check off.
    /// Default: `localhost`, `127.0.0.1` and `::1`.
    pub allowed_hosts: Vec<String>,
    /// How long in-flight calls may run on after shutdown begins before
    /// they are cancelled, in milliseconds. Default 10 000.
    pub shutdown_grace_ms: u64,
    /// Interval of MCP progress notifications for a running call, for
    /// clients that ask for progress, in milliseconds. Default 1 000.
    pub progress_interval_ms: u64,
    /// Longest wait for the user to answer a consent prompt sent during a
    /// call, in milliseconds. Default 300 000.
    pub consent_timeout_ms: u64,
}

impl Default for ServeConfig {
    fn default() -> ServeConfig {
        ServeConfig {
            user: None,
            consent_fallback_url: None,
            allowed_hosts: vec!["localhost".into(), "127.0.0.1".into(), "::1".into()],
            shutdown_grace_ms: 10_000,
            progress_interval_ms: 1_000,
            consent_timeout_ms: 300_000,
        }
    }
}

/// Who may call the HTTP server (`[callers]`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallersConfig {
    /// API keys of agent runtimes, by name (the name is the audited caller).
    pub keys: BTreeMap<String, ApiKeyConfig>,
    /// OIDC access tokens, when configured.
    pub oidc: Option<OidcConfig>,
}

/// One agent runtime's API key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyConfig {
    /// sha256 of the key.
    pub sha256: [u8; 32],
    /// The users the key may act for.
    pub users: UserSet,
}

/// A set of users a caller may act for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserSet {
    /// Every user (`["*"]`).
    Any,
    /// Exactly these users.
    Only(Vec<String>),
}

impl UserSet {
    /// Whether `user` is in the set.
    pub fn contains(&self, user: &str) -> bool {
        match self {
            UserSet::Any => true,
            UserSet::Only(users) => users.iter().any(|u| u == user),
        }
    }
}

/// Validation of OIDC access tokens (`[callers.oidc]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcConfig {
    /// The `iss` every token must carry; also where discovery starts.
    pub issuer: String,
    /// The `aud` every token must contain.
    pub audience: String,
    /// Where the signing keys are; default: the `jwks_uri` of the issuer's
    /// `/.well-known/openid-configuration`.
    pub jwks_url: Option<http::Uri>,
    /// Clock skew allowed on `exp` and `nbf`, in seconds. Default 30.
    pub leeway_secs: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawServe {
    user: Option<String>,
    consent_fallback_url: Option<String>,
    allowed_hosts: Option<Vec<String>>,
    shutdown_grace_ms: Option<u64>,
    progress_interval_ms: Option<u64>,
    consent_timeout_ms: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCallers {
    #[serde(default)]
    keys: BTreeMap<Spanned<String>, RawApiKey>,
    oidc: Option<Spanned<RawOidc>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApiKey {
    sha256: Spanned<String>,
    users: Spanned<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOidc {
    issuer: String,
    audience: String,
    jwks_url: Option<String>,
    #[serde(default = "default_leeway")]
    leeway_secs: u64,
}

fn default_leeway() -> u64 {
    30
}

/// Checks the `[callers]` section; `at` locates an error at a span.
pub(super) fn parse_callers(
    raw: RawCallers,
    at: &impl Fn(std::ops::Range<usize>, String) -> ConfigError,
) -> Result<CallersConfig, ConfigError> {
    let mut callers = CallersConfig::default();
    for (name, key) in raw.keys {
        super::config::check_identifier(&name)
            .map_err(|m| at(name.span(), format!("callers.keys: {m}")))?;
        let key_name = format!("callers.keys.{}", name.get_ref());
        let sha256 = parse_sha256(key.sha256.get_ref())
            .map_err(|m| at(key.sha256.span(), format!("{key_name}.sha256: {m}")))?;
        let users = parse_users(key.users.get_ref())
            .map_err(|m| at(key.users.span(), format!("{key_name}.users: {m}")))?;
        callers
            .keys
            .insert(name.into_inner(), ApiKeyConfig { sha256, users });
    }
    if let Some(o) = raw.oidc {
        let span = o.span();
        let oidc =
            parse_oidc(o.into_inner()).map_err(|m| at(span, format!("callers.oidc: {m}")))?;
        callers.oidc = Some(oidc);
    }
    Ok(callers)
}

pub(super) fn parse_serve(raw: RawServe) -> Result<ServeConfig, String> {
    let defaults = ServeConfig::default();
    if let Some(user) = &raw.user {
        crate::vault::check_name("user", user).map_err(|e| format!("user: {e}"))?;
    }
    if let Some(url) = &raw.consent_fallback_url {
        let filled = url.replace("{connection}", "c").replace("{user}", "u");
        match filled.parse::<http::Uri>() {
            Ok(uri)
                if matches!(uri.scheme_str(), Some("http" | "https")) && uri.host().is_some() => {}
            _ => {
                return Err(format!(
                    "consent_fallback_url: {url:?} is not an absolute http or https URL"
                ));
            }
        }
    }
    let allowed_hosts = raw.allowed_hosts.unwrap_or(defaults.allowed_hosts);
    if allowed_hosts.is_empty() {
        return Err("allowed_hosts: list at least one host name".into());
    }
    Ok(ServeConfig {
        user: raw.user,
        consent_fallback_url: raw.consent_fallback_url,
        allowed_hosts,
        shutdown_grace_ms: raw.shutdown_grace_ms.unwrap_or(defaults.shutdown_grace_ms),
        progress_interval_ms: raw
            .progress_interval_ms
            .unwrap_or(defaults.progress_interval_ms)
            .max(10),
        consent_timeout_ms: raw
            .consent_timeout_ms
            .unwrap_or(defaults.consent_timeout_ms),
    })
}

fn parse_sha256(text: &str) -> Result<[u8; 32], String> {
    let mut out = [0u8; 32];
    match hex::decode_to_slice(text, &mut out) {
        Ok(()) => Ok(out),
        Err(_) => Err(format!("expected 64 hex digits, got {text:?}")),
    }
}

fn parse_users(users: &[String]) -> Result<UserSet, String> {
    match users {
        [] => Err("list at least one user, or [\"*\"] for any".into()),
        [any] if any == "*" => Ok(UserSet::Any),
        _ => {
            for user in users {
                crate::vault::check_name("user", user).map_err(|e| e.to_string())?;
            }
            Ok(UserSet::Only(users.to_vec()))
        }
    }
}

fn parse_oidc(raw: RawOidc) -> Result<OidcConfig, String> {
    fetchable_url(&raw.issuer).map_err(|m| format!("issuer: {m}"))?;
    if raw.audience.is_empty() {
        return Err("audience: must not be empty".into());
    }
    let jwks_url = match &raw.jwks_url {
        Some(url) => Some(fetchable_url(url).map_err(|m| format!("jwks_url: {m}"))?),
        None => None,
    };
    Ok(OidcConfig {
        issuer: raw.issuer,
        audience: raw.audience,
        jwks_url,
        leeway_secs: raw.leeway_secs,
    })
}

/// A URL the host may fetch signing keys from: https, or http to a loopback
/// address (a plain-text fetch elsewhere would let anyone on the path swap
/// the keys).
fn fetchable_url(text: &str) -> Result<http::Uri, String> {
    let uri: http::Uri = text
        .parse()
        .map_err(|_| format!("{text:?} is not a valid URL"))?;
    let host = uri.host().unwrap_or("");
    let loopback = host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match uri.scheme_str() {
        Some("https") if !host.is_empty() => Ok(uri),
        Some("http") if loopback => Ok(uri),
        Some("http") => Err(format!(
            "{text:?} uses http; only https is allowed except for loopback addresses"
        )),
        _ => Err(format!("{text:?} is not an absolute https URL")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Config;
    use std::path::Path;

    const GOOD: &str = "";

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("airlock.toml"), Path::new("/etc/airlock"))
    }

    fn error(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    const SERVE: &str = r#"
[serve]
user = "alice"
consent_fallback_url = "https://portal.example/link?c={connection}&u={user}"
shutdown_grace_ms = 500

[callers.keys.agent-one]
sha256 = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
users = ["alice", "bob"]

[callers.keys.trusted]
sha256 = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
users = ["*"]

[callers.oidc]
issuer = "https://idp.example.com"
audience = "airlock"
"#;

    #[test]
    fn serve_and_callers_parse() {
        let c = parse(&format!("{GOOD}{SERVE}")).unwrap();
        assert_eq!(c.serve.user.as_deref(), Some("alice"));
        assert_eq!(c.serve.shutdown_grace_ms, 500);
        assert_eq!(c.serve.progress_interval_ms, 1_000);
        assert_eq!(c.serve.allowed_hosts, ServeConfig::default().allowed_hosts);
        let key = &c.callers.keys["agent-one"];
        assert_eq!(key.sha256, [0xaa; 32]);
        assert!(key.users.contains("bob") && !key.users.contains("carol"));
        assert_eq!(c.callers.keys["trusted"].users, UserSet::Any);
        let oidc = c.callers.oidc.unwrap();
        assert_eq!(oidc.audience, "airlock");
        assert_eq!(oidc.leeway_secs, 30);
        assert_eq!(oidc.jwks_url, None);
    }

    #[test]
    fn serve_defaults_when_absent() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.serve, ServeConfig::default());
        assert_eq!(c.callers, CallersConfig::default());
    }

    #[test]
    fn bad_key_hash_is_located() {
        let text = format!("{GOOD}{SERVE}").replace(&"b".repeat(64), "beef");
        let err = error(&text);
        assert!(err.contains("callers.keys.trusted.sha256"), "{err}");
        assert!(err.contains("64 hex digits"), "{err}");
    }

    #[test]
    fn key_users_must_be_valid_names() {
        for users in ["[]", "[\"al ice\"]", "[\"*\", \"bob\"]"] {
            let text = format!("{GOOD}{SERVE}").replace("[\"alice\", \"bob\"]", users);
            let err = error(&text);
            assert!(
                err.contains("callers.keys.agent-one.users"),
                "{users}: {err}"
            );
        }
    }

    #[test]
    fn plain_http_issuer_is_refused_unless_loopback() {
        let text = format!("{GOOD}{SERVE}").replace("https://idp", "http://idp");
        let err = error(&text);
        assert!(
            err.contains("callers.oidc: issuer") && err.contains("only https"),
            "{err}"
        );
        let text =
            format!("{GOOD}{SERVE}").replace("https://idp.example.com", "http://127.0.0.1:8080");
        assert!(parse(&text).is_ok());
        let text = format!("{GOOD}{SERVE}").replace(
            "audience = \"airlock\"",
            "audience = \"airlock\"\njwks_url = \"http://10.0.0.1/jwks\"",
        );
        assert!(error(&text).contains("jwks_url"));
    }

    #[test]
    fn unknown_serve_key_and_bad_fallback_url_are_refused() {
        let err = error(&format!("{GOOD}{SERVE}").replace("shutdown_grace_ms", "grace_ms"));
        assert!(err.contains("grace_ms"), "{err}");
        let err = error(&format!("{GOOD}{SERVE}").replace("https://portal.example", "portal"));
        assert!(err.contains("consent_fallback_url"), "{err}");
    }
}
