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
//! A tool may also set `strict = true`: it then refuses to load when its
//! declaration asks for something this file does not grant, or when it
//! ships no declaration at all (see [`crate::manifest::effective`]).
//!
//! The `[serve]` and `[callers]` sections of `airlock serve` are described
//! in [`super::serve`], and the OAuth keys of a connection in
//! [`super::oauth`].
//!
//! Each table is read on its own, so [`Config::parse_all`] reports every
//! problem in the file, each with its line, column and key.

use super::doc::{Doc, Value};
use super::pattern::{HostPattern, MethodSet, UrlPattern};
use super::serve::{CallersConfig, RawCallers, RawServe, ServeConfig};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
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
    /// Refuse to load when the tool's declaration asks for more than is
    /// granted here, or when it has no declaration.
    pub strict: bool,
    /// Where the tool's settings are written in the config file.
    pub lines: ToolLines,
}

/// Lines (1-based) of a tool's settings in the config file, for messages
/// found after parsing, such as a digest mismatch or a declared need that
/// is not granted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolLines {
    /// The tool's table (`[tools.NAME]`).
    pub table: usize,
    /// The `sha256` key.
    pub sha256: usize,
    /// Each key of the tool's `config` table.
    pub config: BTreeMap<String, usize>,
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
    /// Line (1-based) of the grant in the config file; 0 when it was not
    /// read from one.
    pub line: usize,
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
    /// Wasm stack of this tool's guests, in KiB; `None` takes
    /// `[host] wasm_stack_kib`.
    pub wasm_stack_kib: Option<u32>,
}

/// Smallest and largest wasm stack, in KiB, for a tool or the host.
pub const WASM_STACK_KIB: std::ops::RangeInclusive<u32> = 64..=16_384;

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
            wasm_stack_kib: None,
        }
    }
}

/// A config or tool declaration that could not be read, with where and
/// why.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{}: {source}", file.display())]
    Read {
        /// The file.
        file: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not valid, at a known place.
    #[error("{}:{line}:{column}: {}", file.display(), keyed(key, message))]
    Invalid {
        /// The file.
        file: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The key the problem is about, such as `tools.fetch.sha256`;
        /// empty for a syntax error.
        key: String,
        /// What is wrong and what was expected.
        message: String,
    },
}

impl ConfigError {
    /// Line and column, for sorting problems in file order; a file that
    /// could not be read sorts first.
    pub fn position(&self) -> (usize, usize) {
        match self {
            ConfigError::Read { .. } => (0, 0),
            ConfigError::Invalid { line, column, .. } => (*line, *column),
        }
    }
}

fn keyed(key: &str, message: &str) -> String {
    if key.is_empty() {
        message.to_owned()
    } else {
        format!("{key}: {message}")
    }
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

/// A tool table without its `endpoints`, which are read one by one.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTool {
    source: String,
    sha256: Spanned<String>,
    #[serde(default)]
    config: BTreeMap<Spanned<String>, String>,
    limits: Option<Spanned<Limits>>,
    #[serde(default)]
    strict: bool,
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

/// The top-level tables a config may have.
const TOP_LEVEL: &str = "vault, host, audit, connections, tools, serve, callers";

impl Config {
    /// Reads and checks the config at `path`. Relative paths inside it are
    /// resolved against its directory. Returns the first problem; see
    /// [`Config::load_all`] for every problem.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Config::load_all(path).map_err(first)
    }

    /// Like [`Config::load`], but reports every problem found, in file
    /// order.
    pub fn load_all(path: &Path) -> Result<Config, Vec<ConfigError>> {
        match Config::load_partial(path) {
            (config, errors) if errors.is_empty() => Ok(config),
            (_, errors) => Err(errors),
        }
    }

    /// Reads the config at `path` as far as it can; see
    /// [`Config::parse_partial`].
    pub fn load_partial(path: &Path) -> (Config, Vec<ConfigError>) {
        let base = path.parent().unwrap_or(Path::new("."));
        match std::fs::read_to_string(path) {
            Ok(text) => Config::parse_partial(&text, path, base),
            Err(source) => {
                let (config, _) = Config::parse_partial("", path, base);
                let error = ConfigError::Read {
                    file: path.to_path_buf(),
                    source,
                };
                (config, vec![error])
            }
        }
    }

    /// Parses config `text`; `file` names it in errors and `base` anchors
    /// relative paths. Returns the first problem.
    pub fn parse(text: &str, file: &Path, base: &Path) -> Result<Config, ConfigError> {
        Config::parse_all(text, file, base).map_err(first)
    }

    /// Parses config `text` and reports every problem found, in file order.
    pub fn parse_all(text: &str, file: &Path, base: &Path) -> Result<Config, Vec<ConfigError>> {
        match Config::parse_partial(text, file, base) {
            (config, errors) if errors.is_empty() => Ok(config),
            (_, errors) => Err(errors),
        }
    }

    /// Parses config `text` as far as it can: every part that could be read
    /// (a part with a problem is left out, or set to its default), and
    /// every problem found, in file order. For tools that check a whole
    /// config, such as `airlock check`; anything that runs tools must use a
    /// config without problems.
    pub fn parse_partial(text: &str, file: &Path, base: &Path) -> (Config, Vec<ConfigError>) {
        let doc = Doc::new(text, file);
        let mut reader = Reader {
            doc: &doc,
            base,
            errors: Vec::new(),
            broken_connections: BTreeSet::new(),
        };
        let root = match doc.root() {
            Ok(root) => root,
            Err(errors) => {
                reader.errors = errors;
                Vec::new()
            }
        };
        let config = reader.config(root);
        let mut errors = reader.errors;
        errors.sort_by_key(ConfigError::position);
        (config, errors)
    }
}

fn first(mut errors: Vec<ConfigError>) -> ConfigError {
    errors.swap_remove(0)
}

/// Reads the sections of a config, keeping every error it finds.
struct Reader<'d, 'a> {
    doc: &'d Doc<'a>,
    base: &'d Path,
    errors: Vec<ConfigError>,
    /// Connections that are defined but invalid: endpoints naming them get
    /// no second error.
    broken_connections: BTreeSet<String>,
}

impl<'a> Reader<'_, 'a> {
    fn config(&mut self, root: Vec<(Spanned<String>, Value<'a>)>) -> Config {
        let mut sections: BTreeMap<&str, Value<'a>> = BTreeMap::new();
        for (key, value) in root {
            let name = match key.get_ref().as_str() {
                "vault" => "vault",
                "host" => "host",
                "audit" => "audit",
                "connections" => "connections",
                "tools" => "tools",
                "serve" => "serve",
                "callers" => "callers",
                other => {
                    self.errors.push(self.doc.error(
                        key.span(),
                        other,
                        format!("unknown section; expected one of {TOP_LEVEL}"),
                    ));
                    continue;
                }
            };
            sections.insert(name, value);
        }

        let vault = self.vault(sections.remove("vault"));
        let host = self.host(sections.remove("host"));
        let audit = self.audit(sections.remove("audit"), &vault);
        let connections = self.connections(sections.remove("connections"));
        let tools = self.tools(sections.remove("tools"), &connections);
        let serve = self.serve(sections.remove("serve"));
        let callers = self.callers(sections.remove("callers"));
        Config {
            file: self.doc.file().to_path_buf(),
            vault,
            connections,
            tools,
            host,
            audit,
            serve,
            callers,
        }
    }

    /// Runs `read`, keeping its error; `None` when it failed.
    fn keep<T>(&mut self, read: Result<T, ConfigError>) -> Option<T> {
        read.map_err(|e| self.errors.push(e)).ok()
    }

    fn vault(&mut self, value: Option<Value<'a>>) -> VaultConfig {
        let base = self.base;
        let default = VaultConfig {
            dir: base.join(".airlock"),
            key: crate::vault::KeySource::File(base.join(".airlock/vault.key")),
        };
        let Some(value) = value else {
            return default;
        };
        let span = value.span();
        let Some(v) = self.keep(self.doc.de::<RawVault>("vault", value)) else {
            return default;
        };
        let dir = base.join(v.dir.as_deref().unwrap_or(".airlock"));
        let key = match (v.key_env, v.key_file) {
            (Some(_), Some(_)) => {
                self.errors.push(self.doc.error(
                    span,
                    "vault",
                    "set key_env or key_file, not both",
                ));
                crate::vault::KeySource::File(dir.join("vault.key"))
            }
            (Some(var), None) => crate::vault::KeySource::Env(var),
            (None, Some(f)) => crate::vault::KeySource::File(base.join(f)),
            (None, None) => crate::vault::KeySource::File(dir.join("vault.key")),
        };
        VaultConfig { dir, key }
    }

    fn host(&mut self, value: Option<Value<'a>>) -> HostConfig {
        let mut host = HostConfig::default();
        let Some(raw) = value.and_then(|v| self.keep(self.doc.de::<RawHost>("host", v))) else {
            return host;
        };
        for (name, addrs) in raw.resolve {
            let mut ips = Vec::new();
            for a in addrs {
                match a.get_ref().parse() {
                    Ok(ip) => ips.push(ip),
                    Err(_) => self.errors.push(self.doc.error(
                        a.span(),
                        format!("host.resolve.{name}"),
                        format!("{:?} is not an IP address", a.get_ref()),
                    )),
                }
            }
            host.resolve
                .insert(name.trim_end_matches('.').to_ascii_lowercase(), ips);
        }
        let counts = [
            ("max_concurrent_calls", raw.max_concurrent_calls, 1),
            (
                "max_concurrent_calls_per_user",
                raw.max_concurrent_calls_per_user,
                1,
            ),
            (
                "wasm_stack_kib",
                raw.wasm_stack_kib,
                *WASM_STACK_KIB.start(),
            ),
        ];
        for (key, value, min) in counts {
            let Some(value) = value else { continue };
            if *value.get_ref() < min {
                self.errors.push(self.doc.error(
                    value.span(),
                    format!("host.{key}"),
                    format!("expected at least {min}, got {}", value.get_ref()),
                ));
                continue;
            }
            if key == "wasm_stack_kib" && *value.get_ref() > *WASM_STACK_KIB.end() {
                self.errors.push(self.doc.error(
                    value.span(),
                    "host.wasm_stack_kib",
                    format!(
                        "expected at most {}, got {}",
                        WASM_STACK_KIB.end(),
                        value.get_ref()
                    ),
                ));
                continue;
            }
            let slot = match key {
                "max_concurrent_calls" => &mut host.max_concurrent_calls,
                "max_concurrent_calls_per_user" => &mut host.max_concurrent_calls_per_user,
                _ => &mut host.wasm_stack_kib,
            };
            *slot = value.into_inner();
        }
        if let Some(u) = raw.consent_base_url {
            match super::oauth::parse_endpoint(u.get_ref()) {
                Ok(url) => host.consent_base_url = Some(url),
                Err(m) => self
                    .errors
                    .push(self.doc.error(u.span(), "host.consent_base_url", m)),
            }
        }
        host
    }

    fn serve(&mut self, value: Option<Value<'a>>) -> ServeConfig {
        let Some(value) = value else {
            return ServeConfig::default();
        };
        let span = value.span();
        let parsed = self.doc.de::<RawServe>("serve", value).and_then(|raw| {
            super::serve::parse_serve(raw).map_err(|m| self.doc.error(span, "serve", m))
        });
        self.keep(parsed).unwrap_or_default()
    }

    fn callers(&mut self, value: Option<Value<'a>>) -> CallersConfig {
        let Some(value) = value else {
            return CallersConfig::default();
        };
        let doc = self.doc;
        let parsed = doc.de::<RawCallers>("callers", value).and_then(|raw| {
            super::serve::parse_callers(raw, &|span, message| doc.error(span, "", message))
        });
        self.keep(parsed).unwrap_or_default()
    }

    fn audit(&mut self, value: Option<Value<'a>>, vault: &VaultConfig) -> AuditSettings {
        let raw = value
            .and_then(|v| self.keep(self.doc.de::<RawAudit>("audit", v)))
            .unwrap_or_default();
        AuditSettings {
            dir: raw
                .dir
                .map_or_else(|| vault.dir.join("audit"), |d| self.base.join(d)),
            max_file_bytes: raw.max_file_bytes,
            rotate_daily: raw.rotate_daily,
            continue_on_failure: raw.on_failure == FailurePolicy::Continue,
            write_timeout_ms: raw.write_timeout_ms,
        }
    }

    fn connections(&mut self, value: Option<Value<'a>>) -> BTreeMap<String, ConnectionConfig> {
        let mut connections = BTreeMap::new();
        let Some(entries) = value.and_then(|v| self.keep(self.doc.table("connections", v))) else {
            return connections;
        };
        for (name, value) in entries {
            match self.connection(&name, value) {
                Ok(connection) => {
                    connections.insert(name.into_inner(), connection);
                }
                Err(e) => {
                    self.errors.push(e);
                    self.broken_connections.insert(name.into_inner());
                }
            }
        }
        connections
    }

    fn connection(
        &self,
        name: &Spanned<String>,
        value: Value<'a>,
    ) -> Result<ConnectionConfig, ConfigError> {
        let key = format!("connections.{}", name.get_ref());
        check_identifier(name).map_err(|m| self.doc.error(name.span(), &key, m))?;
        let mut c: RawConnection = self.doc.de(&key, value)?;
        if c.audience.is_empty() {
            return Err(self.doc.error(
                name.span(),
                format!("{key}.audience"),
                "must list at least one origin",
            ));
        }
        let mut audience = Vec::new();
        for a in &c.audience {
            let origin = parse_origin(a.get_ref())
                .map_err(|m| self.doc.error(a.span(), format!("{key}.audience"), m))?;
            audience.push(origin);
        }
        if http::HeaderName::from_bytes(c.header.as_bytes()).is_err() {
            return Err(self.doc.error(
                name.span(),
                format!("{key}.header"),
                format!("{:?} is not a valid header name", c.header),
            ));
        }
        let oauth = c
            .oauth()
            .parse(name.get_ref(), self.base)
            .map_err(|m| self.doc.error(name.span(), "", m))?;
        Ok(ConnectionConfig {
            audience,
            header: c.header,
            prefix: c.prefix,
            oauth,
        })
    }

    fn tools(
        &mut self,
        value: Option<Value<'a>>,
        connections: &BTreeMap<String, ConnectionConfig>,
    ) -> BTreeMap<String, ToolConfig> {
        let mut tools = BTreeMap::new();
        let Some(entries) = value.and_then(|v| self.keep(self.doc.table("tools", v))) else {
            return tools;
        };
        for (name, value) in entries {
            if let Some(tool) = self.tool(&name, value, connections) {
                tools.insert(name.into_inner(), tool);
            }
        }
        tools
    }

    /// Reads one tool; its endpoints are read one by one so that each bad
    /// endpoint is reported.
    fn tool(
        &mut self,
        name: &Spanned<String>,
        value: Value<'a>,
        connections: &BTreeMap<String, ConnectionConfig>,
    ) -> Option<ToolConfig> {
        let tool = name.get_ref().clone();
        let key = format!("tools.{tool}");
        let span = value.span();
        self.keep(check_identifier(name).map_err(|m| self.doc.error(name.span(), "tools", m)))?;
        let mut entries = self.keep(self.doc.table(&key, value))?;

        let mut endpoints = Vec::new();
        if let Some(at) = entries.iter().position(|(k, _)| k.get_ref() == "endpoints") {
            let (_, list) = entries.remove(at);
            let items = self
                .keep(self.doc.array(&format!("{key}.endpoints"), list))
                .unwrap_or_default();
            for (i, item) in items.into_iter().enumerate() {
                let read = self.endpoint(&format!("{key}.endpoints[{i}]"), item, connections);
                endpoints.extend(read.transpose().and_then(|r| self.keep(r)));
            }
        }
        let t: RawTool = self.keep(self.doc.de(&key, Doc::rebuild(entries, span)))?;

        let sha = t.sha256.get_ref().to_ascii_lowercase();
        if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
            self.errors.push(self.doc.error(
                t.sha256.span(),
                format!("{key}.sha256"),
                format!("expected 64 hex digits, got {:?}", t.sha256.get_ref()),
            ));
            return None;
        }
        let (limits, limits_span) = match t.limits {
            Some(l) => (l.get_ref().clone(), l.span()),
            None => (Limits::default(), name.span()),
        };
        if let Some(kib) = limits.wasm_stack_kib
            && !WASM_STACK_KIB.contains(&kib)
        {
            self.errors.push(self.doc.error(
                limits_span,
                format!("{key}.limits.wasm_stack_kib"),
                format!(
                    "expected {} to {} KiB, got {kib}",
                    WASM_STACK_KIB.start(),
                    WASM_STACK_KIB.end()
                ),
            ));
            return None;
        }
        let lines = ToolLines {
            table: self.doc.line(name.span().start),
            sha256: self.doc.line(t.sha256.span().start),
            config: t
                .config
                .keys()
                .map(|k| (k.get_ref().clone(), self.doc.line(k.span().start)))
                .collect(),
        };
        Some(ToolConfig {
            source: self.base.join(&t.source),
            sha256: sha,
            endpoints,
            config: t
                .config
                .into_iter()
                .map(|(k, v)| (k.into_inner(), v))
                .collect(),
            limits,
            strict: t.strict,
            lines,
        })
    }

    /// Reads one endpoint grant; `Ok(None)` when it names a connection
    /// whose own definition was already reported as broken.
    fn endpoint(
        &self,
        key: &str,
        value: Value<'a>,
        connections: &BTreeMap<String, ConnectionConfig>,
    ) -> Result<Option<EndpointGrant>, ConfigError> {
        let line = self.doc.line(value.span().start);
        let e: RawEndpoint = self.doc.de(key, value)?;
        let binding = self.doc.binding(
            key,
            e.url.span(),
            e.connection,
            e.unauthenticated.as_ref(),
            "to attach a token",
        )?;
        let connection = match binding {
            Some(c) => {
                if self.broken_connections.contains(c.get_ref()) {
                    return Ok(None);
                }
                let Some(conn) = connections.get(c.get_ref()) else {
                    return Err(self.doc.error(
                        c.span(),
                        format!("{key}.connection"),
                        format!(
                            "no connection named {:?} (known: {})",
                            c.get_ref(),
                            known(connections)
                        ),
                    ));
                };
                if !covered_by_audience(e.url.get_ref(), conn) {
                    return Err(self.doc.error(
                        e.url.span(),
                        format!("{key}.url"),
                        format!(
                            "{:?} is outside the audience of connection {:?}; its token may only go to {}",
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
            None => None,
        };
        Ok(Some(EndpointGrant {
            methods: e.methods,
            url: e.url.into_inner(),
            connection,
            scopes: e.scopes,
            allow_private: e.allow_private,
            line,
        }))
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

#[cfg(test)]
mod tests;
