//! The tool declaration: what a component says it needs (TOML).
//!
//! ```toml
//! name = "issues"
//! version = "1.2.0"
//!
//! [connections.github]
//! scopes = ["repo"]                  # scopes the tool needs from the user
//!
//! [[endpoints]]
//! url = "https://api.github.com/repos/*/*/issues"
//! methods = ["GET", "POST"]
//! connection = "github"              # or: unauthenticated = true
//!
//! [config.per_page]
//! default = "50"                      # optional
//! description = "issues fetched per request"
//! ```
//!
//! A declaration is written by the tool author and travels with the
//! component: inside it as the custom section [`SECTION`] (see
//! [`crate::manifest::section`]), or beside it as `<component>.airlock.toml`.
//! It grants nothing: the operator's config does, and the tool gets the
//! intersection of the two ([`crate::manifest::effective`]).
//!
//! A generic tool that calls whatever URL it is given (an HTTP client, a
//! crawler) cannot name its origins; it declares `url = "*"`, meaning "any
//! URL the operator grants with this binding". For the same reason it may
//! declare `scopes = "*"` for a connection: whatever scopes the operator
//! lists on the grants it uses.

use super::ConfigError;
use super::doc::{Doc, Value};
use super::pattern::{MethodSet, UrlPattern};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// Name of the custom section that carries a declaration in a component.
pub const SECTION: &str = "airlock-declaration";

/// Largest declaration accepted, in bytes; a component is untrusted input.
pub const MAX_BYTES: usize = 64 * 1024;

/// A parsed, checked tool declaration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declaration {
    /// Where it was read from, for messages: a file, or
    /// `<component>#airlock-declaration`.
    pub source: PathBuf,
    /// The tool's name, as its author calls it.
    pub name: String,
    /// The tool's version.
    pub version: String,
    /// Connections the tool wants, by name.
    pub connections: BTreeMap<String, DeclaredConnection>,
    /// Endpoints the tool calls.
    pub endpoints: Vec<DeclaredEndpoint>,
    /// Config keys the tool reads, by name.
    pub config: BTreeMap<String, DeclaredKey>,
}

/// A connection a tool wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclaredConnection {
    /// OAuth scopes the tool needs from the user's token, sorted.
    pub scopes: Vec<String>,
    /// `scopes = "*"`: the tool needs whatever scopes the operator lists
    /// on its grants for this connection (a generic client); `scopes` is
    /// then empty.
    pub any_scopes: bool,
    /// Line of the connection's table in the declaration.
    pub line: usize,
}

/// An endpoint a tool calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclaredEndpoint {
    /// The methods it uses.
    pub methods: MethodSet,
    /// The URLs it calls.
    pub url: DeclaredUrl,
    /// The declared connection whose token it needs; `None` when it calls
    /// the endpoint without credentials.
    pub connection: Option<String>,
    /// Line of the endpoint in the declaration.
    pub line: usize,
}

/// The URLs of a declared endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeclaredUrl {
    /// `*`: whatever URL the operator grants (generic tools).
    Any,
    /// URLs matching this pattern.
    Pattern(UrlPattern),
}

impl fmt::Display for DeclaredUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeclaredUrl::Any => f.write_str("*"),
            DeclaredUrl::Pattern(p) => write!(f, "{p}"),
        }
    }
}

/// A config key a tool reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclaredKey {
    /// The value the tool sees when the operator sets none.
    pub default: Option<String>,
    /// What the key means, for the operator.
    pub description: Option<String>,
    /// Line of the key in the declaration.
    pub line: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConnection {
    #[serde(default)]
    scopes: RawScopes,
}

/// `scopes = ["a", "b"]` or `scopes = "*"`.
#[derive(Default)]
enum RawScopes {
    #[default]
    None,
    Any,
    List(Vec<Spanned<String>>),
}

impl<'de> Deserialize<'de> for RawScopes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<RawScopes, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = RawScopes;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of scopes, or \"*\" for whatever the operator grants")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RawScopes, E> {
                if v == "*" {
                    Ok(RawScopes::Any)
                } else {
                    Err(E::custom(format!(
                        "expected a list of scopes or \"*\", got the string {v:?}"
                    )))
                }
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<RawScopes, A::Error> {
                let mut list = Vec::new();
                while let Some(scope) = seq.next_element::<Spanned<String>>()? {
                    list.push(scope);
                }
                Ok(RawScopes::List(list))
            }
        }
        d.deserialize_any(Visit)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEndpoint {
    url: Spanned<String>,
    methods: MethodSet,
    connection: Option<Spanned<String>>,
    unauthenticated: Option<Spanned<bool>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKey {
    default: Option<String>,
    description: Option<String>,
}

const TOP_LEVEL: &str = "name, version, connections, endpoints, config";

impl Declaration {
    /// Parses declaration `text`; `source` names it in errors. Reports every
    /// problem found, in file order.
    pub fn parse(text: &str, source: &Path) -> Result<Declaration, Vec<ConfigError>> {
        let doc = Doc::new(text, source);
        if text.len() > MAX_BYTES {
            return Err(vec![doc.error(
                0..0,
                "",
                format!(
                    "declaration is {} bytes; at most {MAX_BYTES} are accepted",
                    text.len()
                ),
            )]);
        }
        let mut reader = Reader {
            doc: &doc,
            errors: Vec::new(),
        };
        let declaration = reader.declaration(doc.root()?);
        let mut errors = reader.errors;
        match declaration {
            Some(d) if errors.is_empty() => Ok(d),
            _ => {
                errors.sort_by_key(ConfigError::position);
                Err(errors)
            }
        }
    }

    /// Whether the tool declared `scopes = "*"` for `connection`.
    pub fn any_scopes(&self, connection: &str) -> bool {
        self.connections
            .get(connection)
            .is_some_and(|c| c.any_scopes)
    }

    /// The declared scopes of `connection`, empty when it is not declared.
    pub fn scopes(&self, connection: &str) -> &[String] {
        self.connections
            .get(connection)
            .map_or(&[], |c| c.scopes.as_slice())
    }
}

/// Reads the sections of a declaration, keeping every error it finds.
struct Reader<'d, 'a> {
    doc: &'d Doc<'a>,
    errors: Vec<ConfigError>,
}

impl<'a> Reader<'_, 'a> {
    fn declaration(&mut self, root: Vec<(Spanned<String>, Value<'a>)>) -> Option<Declaration> {
        let (mut name, mut version) = (None, None);
        let mut connections = BTreeMap::new();
        let mut endpoint_values = Vec::new();
        let mut config = BTreeMap::new();
        for (key, value) in root {
            match key.get_ref().as_str() {
                "name" => name = self.keep(self.name(value)),
                "version" => version = self.keep(self.version(value)),
                "connections" => connections = self.connections(value),
                "endpoints" => {
                    endpoint_values = self
                        .keep(self.doc.array("endpoints", value))
                        .unwrap_or_default();
                }
                "config" => config = self.config(value),
                other => self.errors.push(self.doc.error(
                    key.span(),
                    other,
                    format!("unknown key; expected one of {TOP_LEVEL}"),
                )),
            }
        }
        for (key, example) in [("name", "\"my-tool\""), ("version", "\"0.1.0\"")] {
            let missing = if key == "name" {
                name.is_none()
            } else {
                version.is_none()
            };
            if missing && !self.errors.iter().any(|e| is_about(e, key)) {
                self.errors.push(self.doc.error(
                    0..0,
                    key,
                    format!("is missing; expected {key} = {example}"),
                ));
            }
        }

        let mut endpoints = Vec::new();
        let count = endpoint_values.len();
        for (i, value) in endpoint_values.into_iter().enumerate() {
            let read = self.endpoint(&format!("endpoints[{i}]"), value, &connections);
            endpoints.extend(self.keep(read));
        }
        // With a broken endpoint, an unused connection is most likely the
        // same mistake; say it once.
        if endpoints.len() == count {
            self.unused_connections(&connections, &endpoints);
        }
        Some(Declaration {
            source: self.doc.file().to_path_buf(),
            name: name?,
            version: version?,
            connections: connections
                .into_iter()
                .map(|(name, (_, c))| (name, c))
                .collect(),
            endpoints,
            config,
        })
    }

    fn keep<T>(&mut self, read: Result<T, ConfigError>) -> Option<T> {
        read.map_err(|e| self.errors.push(e)).ok()
    }

    fn name(&self, value: Value<'a>) -> Result<String, ConfigError> {
        let name: Spanned<String> = self.doc.de("name", value)?;
        check_identifier(name.get_ref()).map_err(|m| self.doc.error(name.span(), "name", m))?;
        Ok(name.into_inner())
    }

    fn version(&self, value: Value<'a>) -> Result<String, ConfigError> {
        let version: Spanned<String> = self.doc.de("version", value)?;
        let v = version.get_ref();
        let ok = !v.is_empty()
            && v.len() <= 64
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".+-".contains(&b));
        if !ok {
            return Err(self.doc.error(
                version.span(),
                "version",
                format!(
                    "{v:?} must be 1 to 64 letters, digits, '.', '+' or '-', such as \"1.2.0\""
                ),
            ));
        }
        Ok(version.into_inner())
    }

    /// Connections by name, each with the span of its name (for the
    /// "declared but unused" check).
    fn connections(
        &mut self,
        value: Value<'a>,
    ) -> BTreeMap<String, (std::ops::Range<usize>, DeclaredConnection)> {
        let mut connections = BTreeMap::new();
        let Some(entries) = self.keep(self.doc.table("connections", value)) else {
            return connections;
        };
        for (name, value) in entries {
            let key = format!("connections.{}", name.get_ref());
            let read = check_identifier(name.get_ref())
                .map_err(|m| self.doc.error(name.span(), &key, m))
                .and_then(|()| self.doc.de::<RawConnection>(&key, value));
            let Some(raw) = self.keep(read) else {
                // Already reported; an endpoint naming it gets no second
                // error. The declaration is refused either way.
                let placeholder = DeclaredConnection {
                    scopes: Vec::new(),
                    any_scopes: false,
                    line: self.doc.line(name.span().start),
                };
                connections.insert(name.get_ref().clone(), (name.span(), placeholder));
                continue;
            };
            let mut scopes = BTreeSet::new();
            let any_scopes = matches!(raw.scopes, RawScopes::Any);
            let listed = match raw.scopes {
                RawScopes::List(list) => list,
                RawScopes::None | RawScopes::Any => Vec::new(),
            };
            for scope in listed {
                if is_scope(scope.get_ref()) {
                    scopes.insert(scope.into_inner());
                } else {
                    self.errors.push(self.doc.error(
                        scope.span(),
                        format!("{key}.scopes"),
                        format!(
                            "{:?} is not an OAuth scope; expected 1 to 256 printable ASCII \
                             characters without spaces, '\"' or '\\'",
                            scope.get_ref()
                        ),
                    ));
                }
            }
            let line = self.doc.line(name.span().start);
            let connection = DeclaredConnection {
                scopes: scopes.into_iter().collect(),
                any_scopes,
                line,
            };
            connections.insert(name.get_ref().clone(), (name.span(), connection));
        }
        connections
    }

    fn endpoint(
        &self,
        key: &str,
        value: Value<'a>,
        connections: &BTreeMap<String, (std::ops::Range<usize>, DeclaredConnection)>,
    ) -> Result<DeclaredEndpoint, ConfigError> {
        let line = self.doc.line(value.span().start);
        let e: RawEndpoint = self.doc.de(key, value)?;
        let url = match e.url.get_ref().as_str() {
            "*" => DeclaredUrl::Any,
            text => DeclaredUrl::Pattern(text.parse().map_err(|err| {
                self.doc
                    .error(e.url.span(), format!("{key}.url"), format!("{err}"))
            })?),
        };
        let binding = self.doc.binding(
            key,
            e.url.span(),
            e.connection,
            e.unauthenticated.as_ref(),
            "when the endpoint needs a token",
        )?;
        let connection = match binding {
            Some(c) => {
                if !connections.contains_key(c.get_ref()) {
                    let declared: Vec<&str> = connections.keys().map(String::as_str).collect();
                    return Err(self.doc.error(
                        c.span(),
                        format!("{key}.connection"),
                        format!(
                            "{:?} is not declared; add [connections.{}] (declared: {})",
                            c.get_ref(),
                            c.get_ref(),
                            if declared.is_empty() {
                                "none".to_owned()
                            } else {
                                declared.join(", ")
                            }
                        ),
                    ));
                }
                Some(c.into_inner())
            }
            None => None,
        };
        Ok(DeclaredEndpoint {
            methods: e.methods,
            url,
            connection,
            line,
        })
    }

    fn config(&mut self, value: Value<'a>) -> BTreeMap<String, DeclaredKey> {
        let mut keys = BTreeMap::new();
        let Some(entries) = self.keep(self.doc.table("config", value)) else {
            return keys;
        };
        for (name, value) in entries {
            let key = format!("config.{}", name.get_ref());
            let read = check_config_key(name.get_ref())
                .map_err(|m| self.doc.error(name.span(), &key, m))
                .and_then(|()| self.doc.de::<RawKey>(&key, value));
            if let Some(raw) = self.keep(read) {
                let line = self.doc.line(name.span().start);
                keys.insert(
                    name.into_inner(),
                    DeclaredKey {
                        default: raw.default,
                        description: raw.description,
                        line,
                    },
                );
            }
        }
        keys
    }

    /// A connection no endpoint uses can never carry a token: most likely a
    /// mistake in the declaration.
    fn unused_connections(
        &mut self,
        connections: &BTreeMap<String, (std::ops::Range<usize>, DeclaredConnection)>,
        endpoints: &[DeclaredEndpoint],
    ) {
        for (name, (span, _)) in connections {
            if !endpoints
                .iter()
                .any(|e| e.connection.as_ref() == Some(name))
            {
                self.errors.push(self.doc.error(
                    span.clone(),
                    format!("connections.{name}"),
                    format!("no endpoint uses it; bind an endpoint with connection = {name:?} or remove it"),
                ));
            }
        }
    }
}

fn is_about(error: &ConfigError, key: &str) -> bool {
    matches!(error, ConfigError::Invalid { key: k, .. } if k == key)
}

fn check_identifier(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "name {name:?} must be 1 to 64 letters, digits, '-' or '_'"
        ))
    }
}

fn check_config_key(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "key {name:?} must be 1 to 64 letters, digits, '-', '_' or '.'"
        ))
    }
}

/// An OAuth scope token (RFC 6749 section 3.3), at most 256 bytes.
fn is_scope(scope: &str) -> bool {
    !scope.is_empty()
        && scope.len() <= 256
        && scope
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
}

#[cfg(test)]
mod tests;
