//! The operator config file (TOML).
//!
//! ```toml
//! [vault]
//! dir = ".airlock"                  # data directory, relative to this file
//! key_env = "AIRLOCK_VAULT_KEY"     # or key_file = "..."; default: <dir>/vault.key
//!
//! [host]
//! max_concurrent_calls = 64         # and max_concurrent_calls_per_user = 8
//! wasm_stack_kib = 512              # wasm stack of every guest
//!
//! [connections.github]
//! audience = ["https://api.github.com"]
//!
//! [tools.fetch]
//! source = "fetch.wasm"
//! sha256 = "<64 hex digits>"
//! config = { user_agent = "airlock" }
//! limits = { max_requests = 8 }   # per call; see runtime for every key
//!
//! [[tools.fetch.endpoints]]
//! url = "https://api.github.com/repos/**"
//! methods = ["GET"]
//! connection = "github"             # or: unauthenticated = true
//! ```
//!
//! The `[serve]` and `[callers]` sections of `airlock serve` are described
//! in [`super::serve`].

use super::pattern::{HostPattern, MethodSet, UrlPattern};
use super::serve::{CallersConfig, RawCallers, RawServe, ServeConfig};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// A parsed, checked operator config.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from (for messages), or `<embedded>`.
    pub file: PathBuf,
    /// Vault settings.
    pub vault: VaultConfig,
    /// Connections by name.
    pub connections: BTreeMap<String, ConnectionConfig>,
    /// Tools by name.
    pub tools: BTreeMap<String, ToolConfig>,
    /// Host-wide settings.
    pub host: HostConfig,
    /// Audit log settings.
    pub audit: AuditSettings,
    /// How `airlock serve` runs.
    pub serve: ServeConfig,
    /// Who may call the HTTP server, and for which users.
    pub callers: CallersConfig,
}

/// Where and how the audit log is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditSettings {
    /// Directory of the JSON Lines files.
    pub dir: PathBuf,
    /// Rotate before a file grows past this many bytes.
    pub max_file_bytes: u64,
    /// Rotate when the UTC day changes.
    pub rotate_daily: bool,
    /// Keep serving calls (and log an error) when an event cannot be
    /// written, instead of failing the call.
    pub continue_on_failure: bool,
    /// Longest wait for a write, in milliseconds.
    pub write_timeout_ms: u64,
}

/// Where tokens are kept.
#[derive(Debug, Clone)]
pub struct VaultConfig {
    /// Data directory of the local store.
    pub dir: PathBuf,
    /// Where the master key comes from.
    pub key: crate::vault::KeySource,
}

/// Host-wide settings.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// Fixed answers for name resolution, used instead of the system
    /// resolver for these names (split-horizon setups and tests).
    pub resolve: BTreeMap<String, Vec<IpAddr>>,
    /// Base URL at which this host serves its consent routes
    /// (`/consent/start`, `/consent/callback`); authorization-required
    /// outcomes carry a consent URL only when it is set.
    pub consent_base_url: Option<url::Url>,
    /// Tool calls running at once in this host; more are refused.
    pub max_concurrent_calls: u32,
    /// Tool calls running at once for one user; more are refused.
    pub max_concurrent_calls_per_user: u32,
    /// Wasm stack of every guest, in KiB. Host-wide because wasmtime sets
    /// it per engine.
    pub wasm_stack_kib: u32,
}

impl Default for HostConfig {
    fn default() -> HostConfig {
        HostConfig {
            resolve: BTreeMap::new(),
            max_concurrent_calls: 64,
            max_concurrent_calls_per_user: 8,
            wasm_stack_kib: 512,
            consent_base_url: None,
        }
    }
}

/// An upstream API that tokens are issued for.
#[derive(Debug, Clone)]
pub struct ConnectionConfig {
    /// Origins the connection's tokens may be sent to.
    pub audience: Vec<UrlPattern>,
    /// Header that carries the token.
    pub header: String,
    /// Text written before the token in that header.
    pub prefix: String,
    /// How tokens are obtained and refreshed; `None` when they are only
    /// stored by hand (`airlock vault put`).
    pub oauth: Option<super::oauth::OAuthSettings>,
}

/// A tool the operator loads.
#[derive(Debug, Clone)]
pub struct ToolConfig {
    /// Path of the component file.
    pub source: PathBuf,
    /// Expected sha256 of the component, lowercase hex.
    pub sha256: String,
    /// Endpoints the tool may call.
    pub endpoints: Vec<EndpointGrant>,
    /// Non-secret values the tool may read through `airlock:tool/config`.
    pub config: BTreeMap<String, String>,
    /// Resource limits per call.
    pub limits: Limits,
}

/// One granted endpoint.
#[derive(Debug, Clone)]
pub struct EndpointGrant {
    /// Allowed methods.
    pub methods: MethodSet,
    /// URL pattern.
    pub url: UrlPattern,
    /// Connection whose token is attached; `None` for unauthenticated calls.
    pub connection: Option<String>,
    /// Scopes the tool needs for this endpoint.
    pub scopes: Vec<String>,
    /// Whether addresses in loopback and private ranges may be reached.
    pub allow_private: bool,
}

/// Per-call resource limits.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Linear memory per instance, in MiB.
    pub memory_mib: u64,
    /// Guest CPU time per call, in milliseconds.
    pub cpu_ms: u64,
    /// Wall-clock time per call, in milliseconds.
    pub timeout_ms: u64,
    /// Outbound requests per call.
    pub max_requests: u32,
    /// Bytes of one outbound request body.
    pub max_request_bytes: u64,
    /// Bytes of one response body the tool may read.
    pub max_response_bytes: u64,
    /// Time for one outbound request to connect and answer, in milliseconds.
    pub request_timeout_ms: u64,
    /// Bytes of the tool's result once lifted out of the guest.
    pub max_output_bytes: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            memory_mib: 64,
            cpu_ms: 5_000,
            timeout_ms: 30_000,
            max_requests: 32,
            max_request_bytes: 1 << 20,
            max_response_bytes: 8 << 20,
            request_timeout_ms: 15_000,
            max_output_bytes: 1 << 20,
        }
    }
}

/// A config that could not be read, with where and why.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{file}: {source}")]
    Read {
        /// The file.
        file: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not valid, at a known place.
    #[error("{file}:{line}:{column}: {message}")]
    Invalid {
        /// The file.
        file: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong and what was expected.
        message: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    vault: Option<Spanned<RawVault>>,
    #[serde(default)]
    host: RawHost,
    #[serde(default)]
    audit: RawAudit,
    #[serde(default)]
    connections: BTreeMap<Spanned<String>, RawConnection>,
    #[serde(default)]
    tools: BTreeMap<Spanned<String>, RawTool>,
    #[serde(default)]
    serve: Option<Spanned<RawServe>>,
    #[serde(default)]
    callers: RawCallers,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVault {
    dir: Option<String>,
    key_env: Option<String>,
    key_file: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawAudit {
    dir: Option<String>,
    max_file_bytes: u64,
    rotate_daily: bool,
    on_failure: FailurePolicy,
    write_timeout_ms: u64,
}

impl Default for RawAudit {
    fn default() -> RawAudit {
        RawAudit {
            dir: None,
            max_file_bytes: 64 << 20,
            rotate_daily: true,
            on_failure: FailurePolicy::FailCall,
            write_timeout_ms: 2_000,
        }
    }
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
enum FailurePolicy {
    FailCall,
    Continue,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawHost {
    #[serde(default)]
    resolve: BTreeMap<String, Vec<Spanned<String>>>,
    max_concurrent_calls: Option<Spanned<u32>>,
    max_concurrent_calls_per_user: Option<Spanned<u32>>,
    wasm_stack_kib: Option<Spanned<u32>>,
    #[serde(default)]
    consent_base_url: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConnection {
    audience: Vec<Spanned<String>>,
    #[serde(default = "default_header")]
    header: String,
    #[serde(default = "default_prefix")]
    prefix: String,
    // The OAuth keys, checked by `oauth::RawOAuth` (serde cannot refuse
    // unknown keys next to a flattened struct, so they are listed here).
    provider: Option<String>,
    client_id: Option<String>,
    client_secret_env: Option<String>,
    client_secret_file: Option<String>,
    client_secret: Option<toml::Value>,
    #[serde(default)]
    scopes: Vec<String>,
    redirect_url: Option<String>,
    issuer: Option<String>,
    tenant: Option<String>,
    authorize_url: Option<String>,
    token_url: Option<String>,
    revoke_url: Option<String>,
    client_auth: Option<super::oauth::ClientAuth>,
}

impl RawConnection {
    fn oauth(&mut self) -> super::oauth::RawOAuth {
        super::oauth::RawOAuth {
            provider: self.provider.take(),
            client_id: self.client_id.take(),
            client_secret_env: self.client_secret_env.take(),
            client_secret_file: self.client_secret_file.take(),
            client_secret: self.client_secret.take(),
            scopes: std::mem::take(&mut self.scopes),
            redirect_url: self.redirect_url.take(),
            issuer: self.issuer.take(),
            tenant: self.tenant.take(),
            authorize_url: self.authorize_url.take(),
            token_url: self.token_url.take(),
            revoke_url: self.revoke_url.take(),
            client_auth: self.client_auth.take(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTool {
    source: String,
    sha256: Spanned<String>,
    #[serde(default)]
    endpoints: Vec<RawEndpoint>,
    #[serde(default)]
    config: BTreeMap<String, String>,
    #[serde(default)]
    limits: Limits,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEndpoint {
    url: Spanned<UrlPattern>,
    methods: MethodSet,
    connection: Option<Spanned<String>>,
    #[serde(default)]
    unauthenticated: Option<Spanned<bool>>,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default)]
    allow_private: bool,
}

fn default_header() -> String {
    "Authorization".into()
}

fn default_prefix() -> String {
    "Bearer ".into()
}

impl Config {
    /// Reads and checks the config at `path`. Relative paths inside it are
    /// resolved against its directory.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            file: path.to_path_buf(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Config::parse(&text, path, base)
    }

    /// Parses config `text`; `file` names it in errors and `base` anchors
    /// relative paths.
    pub fn parse(text: &str, file: &Path, base: &Path) -> Result<Config, ConfigError> {
        let at = |span: std::ops::Range<usize>, message: String| {
            let (line, column) = line_column(text, span.start);
            ConfigError::Invalid {
                file: file.to_path_buf(),
                line,
                column,
                message,
            }
        };
        let raw: RawConfig = toml::from_str(text)
            .map_err(|e| at(e.span().unwrap_or(0..0), e.message().to_string()))?;

        let vault = match raw.vault {
            None => VaultConfig {
                dir: base.join(".airlock"),
                key: crate::vault::KeySource::File(base.join(".airlock/vault.key")),
            },
            Some(v) => {
                let span = v.span();
                let v = v.into_inner();
                let dir = base.join(v.dir.as_deref().unwrap_or(".airlock"));
                let key = match (v.key_env, v.key_file) {
                    (Some(_), Some(_)) => {
                        return Err(at(span, "vault: set key_env or key_file, not both".into()));
                    }
                    (Some(var), None) => crate::vault::KeySource::Env(var),
                    (None, Some(f)) => crate::vault::KeySource::File(base.join(f)),
                    (None, None) => crate::vault::KeySource::File(dir.join("vault.key")),
                };
                VaultConfig { dir, key }
            }
        };

        let mut host = HostConfig::default();
        let counts = [
            ("max_concurrent_calls", raw.host.max_concurrent_calls, 1),
            (
                "max_concurrent_calls_per_user",
                raw.host.max_concurrent_calls_per_user,
                1,
            ),
            ("wasm_stack_kib", raw.host.wasm_stack_kib, 64),
        ];
        for (key, value, min) in counts {
            let Some(value) = value else { continue };
            if *value.get_ref() < min {
                return Err(at(
                    value.span(),
                    format!(
                        "host.{key}: expected at least {min}, got {}",
                        value.get_ref()
                    ),
                ));
            }
            let slot = match key {
                "max_concurrent_calls" => &mut host.max_concurrent_calls,
                "max_concurrent_calls_per_user" => &mut host.max_concurrent_calls_per_user,
                _ => &mut host.wasm_stack_kib,
            };
            *slot = value.into_inner();
        }
        for (name, addrs) in raw.host.resolve {
            let mut ips = Vec::new();
            for a in addrs {
                let ip = a.get_ref().parse().map_err(|_| {
                    at(
                        a.span(),
                        format!(
                            "host.resolve.{name}: {:?} is not an IP address",
                            a.get_ref()
                        ),
                    )
                })?;
                ips.push(ip);
            }
            host.resolve
                .insert(name.trim_end_matches('.').to_ascii_lowercase(), ips);
        }

        if let Some(u) = raw.host.consent_base_url {
            let url = super::oauth::parse_endpoint(u.get_ref())
                .map_err(|m| at(u.span(), format!("host.consent_base_url: {m}")))?;
            host.consent_base_url = Some(url);
        }

        let mut connections = BTreeMap::new();
        for (name, mut c) in raw.connections {
            check_identifier(&name).map_err(|m| at(name.span(), format!("connections: {m}")))?;
            if c.audience.is_empty() {
                return Err(at(
                    name.span(),
                    format!(
                        "connections.{}: audience must list at least one origin",
                        name.get_ref()
                    ),
                ));
            }
            let mut audience = Vec::new();
            for a in &c.audience {
                let origin = parse_origin(a.get_ref()).map_err(|m| {
                    at(
                        a.span(),
                        format!("connections.{}.audience: {m}", name.get_ref()),
                    )
                })?;
                audience.push(origin);
            }
            if http::HeaderName::from_bytes(c.header.as_bytes()).is_err() {
                return Err(at(
                    name.span(),
                    format!(
                        "connections.{}.header: {:?} is not a valid header name",
                        name.get_ref(),
                        c.header
                    ),
                ));
            }
            let oauth = c
                .oauth()
                .parse(name.get_ref(), base)
                .map_err(|m| at(name.span(), m))?;
            connections.insert(
                name.into_inner(),
                ConnectionConfig {
                    audience,
                    header: c.header,
                    prefix: c.prefix,
                    oauth,
                },
            );
        }

        let mut tools = BTreeMap::new();
        for (name, t) in raw.tools {
            check_identifier(&name).map_err(|m| at(name.span(), format!("tools: {m}")))?;
            let tool = name.get_ref().clone();
            let sha = t.sha256.get_ref().to_ascii_lowercase();
            if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(at(
                    t.sha256.span(),
                    format!(
                        "tools.{tool}.sha256: expected 64 hex digits, got {:?}",
                        t.sha256.get_ref()
                    ),
                ));
            }
            let mut endpoints = Vec::new();
            for (i, e) in t.endpoints.into_iter().enumerate() {
                let key = format!("tools.{tool}.endpoints[{i}]");
                let unauthenticated = e.unauthenticated.as_ref().is_some_and(|u| *u.get_ref());
                let connection = match (e.connection, unauthenticated) {
                    (Some(c), false) => {
                        let Some(conn) = connections.get(c.get_ref()) else {
                            return Err(at(
                                c.span(),
                                format!(
                                    "{key}.connection: no connection named {:?} (known: {})",
                                    c.get_ref(),
                                    known(&connections)
                                ),
                            ));
                        };
                        if !covered_by_audience(e.url.get_ref(), conn) {
                            return Err(at(
                                e.url.span(),
                                format!(
                                    "{key}.url: {:?} is outside the audience of connection {:?}; its token may only go to {}",
                                    e.url.get_ref().to_string(),
                                    c.get_ref(),
                                    conn.audience
                                        .iter()
                                        .map(|a| a.origin_string())
                                        .collect::<Vec<_>>()
                                        .join(", ")
                                ),
                            ));
                        }
                        Some(c.into_inner())
                    }
                    (None, true) => None,
                    (Some(c), true) => {
                        return Err(at(
                            c.span(),
                            format!("{key}: set connection or unauthenticated = true, not both"),
                        ));
                    }
                    (None, false) => {
                        return Err(at(
                            e.url.span(),
                            format!(
                                "{key}: set connection = \"<name>\" to attach a token, or unauthenticated = true"
                            ),
                        ));
                    }
                };
                endpoints.push(EndpointGrant {
                    methods: e.methods,
                    url: e.url.into_inner(),
                    connection,
                    scopes: e.scopes,
                    allow_private: e.allow_private,
                });
            }
            tools.insert(
                tool,
                ToolConfig {
                    source: base.join(&t.source),
                    sha256: sha,
                    endpoints,
                    config: t.config,
                    limits: t.limits,
                },
            );
        }

        let audit = AuditSettings {
            dir: raw
                .audit
                .dir
                .map_or_else(|| vault.dir.join("audit"), |d| base.join(d)),
            max_file_bytes: raw.audit.max_file_bytes,
            rotate_daily: raw.audit.rotate_daily,
            continue_on_failure: raw.audit.on_failure == FailurePolicy::Continue,
            write_timeout_ms: raw.audit.write_timeout_ms,
        };
        let serve = match raw.serve {
            None => ServeConfig::default(),
            Some(s) => {
                let span = s.span();
                super::serve::parse_serve(s.into_inner())
                    .map_err(|m| at(span, format!("serve: {m}")))?
            }
        };
        let callers = super::serve::parse_callers(raw.callers, &at)?;

        Ok(Config {
            file: file.to_path_buf(),
            vault,
            connections,
            tools,
            host,
            audit,
            serve,
            callers,
        })
    }
}

/// Whether every URL `url` can match is inside one of the connection's
/// audience origins.
fn covered_by_audience(url: &UrlPattern, conn: &ConnectionConfig) -> bool {
    conn.audience.iter().any(|a| {
        a.scheme == url.scheme
            && a.port == url.port
            && match (&a.host, &url.host) {
                (x, y) if x == y => true,
                (
                    HostPattern::Wildcard(suffix),
                    HostPattern::Exact(super::pattern::HostName::Domain(d)),
                ) => d.ends_with(&format!(".{suffix}")),
                (HostPattern::Wildcard(outer), HostPattern::Wildcard(inner)) => {
                    inner.ends_with(&format!(".{outer}"))
                }
                _ => false,
            }
    })
}

/// Parses an audience entry: an origin such as `https://api.example.com`,
/// optionally with a port, and no path.
fn parse_origin(text: &str) -> Result<UrlPattern, String> {
    let trimmed = text.strip_suffix('/').unwrap_or(text);
    let after_scheme = trimmed.split_once("://").map_or("", |(_, rest)| rest);
    if after_scheme.contains(['/', '?', '#']) {
        return Err(format!(
            "{text:?} must be an origin with no path, like \"https://api.example.com\""
        ));
    }
    format!("{trimmed}/**")
        .parse::<UrlPattern>()
        .map_err(|e| e.to_string())
}

pub(super) fn check_identifier(name: &Spanned<String>) -> Result<(), String> {
    let n = name.get_ref();
    let ok = !n.is_empty()
        && n.len() <= 64
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "name {n:?} must be 1 to 64 letters, digits, '-' or '_'"
        ))
    }
}

fn known(connections: &BTreeMap<String, ConnectionConfig>) -> String {
    if connections.is_empty() {
        return "none".into();
    }
    connections
        .keys()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rfind('\n')
        .map_or(before.len(), |nl| before.len() - nl - 1)
        + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[vault]
dir = "data"

[connections.demo]
audience = ["http://127.0.0.1:8080"]

[tools.fetch]
source = "fetch.wasm"
sha256 = "0000000000000000000000000000000000000000000000000000000000000000"

[[tools.fetch.endpoints]]
url = "http://127.0.0.1:8080/**"
methods = ["GET", "POST"]
connection = "demo"
allow_private = true
"#;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("airlock.toml"), Path::new("/etc/airlock"))
    }

    fn error(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn good_config_parses_with_paths_resolved() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.vault.dir, Path::new("/etc/airlock/data"));
        let t = &c.tools["fetch"];
        assert_eq!(t.source, Path::new("/etc/airlock/fetch.wasm"));
        assert_eq!(t.endpoints[0].connection.as_deref(), Some("demo"));
        assert_eq!(t.limits, Limits::default());
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let err = error(&GOOD.replace("allow_private = true", "allow_private = true\nretries = 3"));
        assert!(err.starts_with("airlock.toml:17:"), "{err}");
        assert!(err.contains("retries"), "{err}");
    }

    #[test]
    fn bad_digest_is_located() {
        let err = error(&GOOD.replace(
            "0000000000000000000000000000000000000000000000000000000000000000",
            "abc",
        ));
        assert!(err.starts_with("airlock.toml:10:"), "{err}");
        assert!(err.contains("64 hex digits"), "{err}");
    }

    #[test]
    fn unknown_connection_is_located() {
        let err = error(&GOOD.replace("connection = \"demo\"", "connection = \"github\""));
        assert!(err.starts_with("airlock.toml:15:"), "{err}");
        assert!(
            err.contains("no connection named \"github\"") && err.contains("known: demo"),
            "{err}"
        );
    }

    #[test]
    fn endpoint_outside_audience_is_refused() {
        let err = error(&GOOD.replace(
            "url = \"http://127.0.0.1:8080/**\"",
            "url = \"http://127.0.0.1:9090/**\"",
        ));
        assert!(err.contains("outside the audience"), "{err}");
    }

    #[test]
    fn endpoint_needs_connection_or_unauthenticated() {
        let err = error(&GOOD.replace("connection = \"demo\"", ""));
        assert!(err.contains("unauthenticated = true"), "{err}");
    }

    #[test]
    fn bad_pattern_is_located() {
        let err =
            error(&GOOD.replace("url = \"http://127.0.0.1:8080/**\"", "url = \"ftp://x/**\""));
        assert!(err.starts_with("airlock.toml:13:"), "{err}");
    }

    #[test]
    fn connection_with_oauth_keys_parses_and_unknown_keys_are_refused() {
        let text = GOOD.replace(
            "audience = [\"http://127.0.0.1:8080\"]",
            "audience = [\"http://127.0.0.1:8080\"]\nprovider = \"github\"\nclient_id = \"abc\"\nclient_secret_env = \"GH_SECRET\"",
        );
        let c = parse(&text).unwrap();
        let oauth = c.connections["demo"].oauth.as_ref().unwrap();
        assert_eq!(oauth.client_id, "abc");

        let err = error(&text.replace("client_id", "client_idd"));
        assert!(err.contains("client_idd"), "{err}");
        let err = error(&text.replace(
            "client_secret_env = \"GH_SECRET\"",
            "client_secret = \"GH_SECRET\"",
        ));
        assert!(
            err.starts_with("airlock.toml:5:") && err.contains("never written"),
            "{err}"
        );
        assert!(!err.contains("GH_SECRET"), "{err}");
    }

    #[test]
    fn consent_base_url_must_be_https_or_loopback() {
        let err = error(&format!(
            "[host]\nconsent_base_url = \"http://airlock.example.com\"\n{GOOD}"
        ));
        assert!(
            err.starts_with("airlock.toml:2:") && err.contains("only https"),
            "{err}"
        );
        let c = parse(&format!(
            "[host]\nconsent_base_url = \"http://127.0.0.1:8400\"\n{GOOD}"
        ))
        .unwrap();
        assert_eq!(
            c.host.consent_base_url.unwrap().as_str(),
            "http://127.0.0.1:8400/"
        );
    }

    #[test]
    fn bad_limit_type_is_located() {
        let err = error(&GOOD.replace(
            "[[tools.fetch.endpoints]]",
            "limits = { max_requests = \"many\" }\n[[tools.fetch.endpoints]]",
        ));
        assert!(err.starts_with("airlock.toml:12:"), "{err}");
    }

    #[test]
    fn host_limits_parse_and_default() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.host.max_concurrent_calls, 64);
        assert_eq!(c.host.max_concurrent_calls_per_user, 8);
        assert_eq!(c.host.wasm_stack_kib, 512);
        let text = format!(
            "[host]\nmax_concurrent_calls = 3\nmax_concurrent_calls_per_user = 1\nwasm_stack_kib = 128\n{GOOD}"
        );
        let c = parse(&text).unwrap();
        assert_eq!(c.host.max_concurrent_calls, 3);
        assert_eq!(c.host.max_concurrent_calls_per_user, 1);
        assert_eq!(c.host.wasm_stack_kib, 128);
    }

    #[test]
    fn host_limits_below_their_minimum_are_located() {
        let err = error(&format!("[host]\nmax_concurrent_calls = 0\n{GOOD}"));
        assert!(err.starts_with("airlock.toml:2:"), "{err}");
        assert!(
            err.contains("host.max_concurrent_calls: expected at least 1, got 0"),
            "{err}"
        );
        let err = error(&format!("[host]\nwasm_stack_kib = 8\n{GOOD}"));
        assert!(
            err.contains("host.wasm_stack_kib: expected at least 64, got 8"),
            "{err}"
        );
    }
}
