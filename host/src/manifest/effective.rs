//! A tool's effective grant: its declaration intersected with the
//! operator's grant.
//!
//! - An endpoint is usable when the operator granted it *and* the tool
//!   declared it, with the same binding (the same connection, or both
//!   unauthenticated). Each pair of a grant and a declared endpoint yields
//!   their exact intersection: the common methods and the URLs both
//!   patterns match ([`UrlPattern::intersect`]). A declared `url = "*"`
//!   takes the operator's URL as it is.
//! - The scopes required of the user's token for an endpoint are the
//!   scopes the operator lists for it that the tool also declared for that
//!   connection (all of them when the tool declared `scopes = "*"`).
//! - Config values are the declared defaults with the operator's values
//!   over them, for declared keys only.
//!
//! What does not line up becomes a [`Finding`]: a declared need the
//! operator did not grant (with the config lines that would grant it), an
//! operator grant or config key the tool did not declare (not used), and a
//! component with no declaration at all. Without a declaration the
//! operator's grants apply as they are written; a tool marked `strict`
//! refuses to load in that case and when a need is not granted.
//!
//! Everything here is a pure function of the parsed config and declaration.

use super::config::{ConnectionConfig, EndpointGrant, ToolConfig};
use super::declaration::{Declaration, DeclaredEndpoint, DeclaredUrl};
use super::pattern::{MethodSet, UrlPattern};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

/// What a tool may use after intersecting its declaration with its grant.
#[derive(Debug, Clone)]
pub struct Effective {
    /// Endpoints the tool may call, in the operator's order.
    pub endpoints: Vec<EndpointGrant>,
    /// Config values the tool sees.
    pub config: BTreeMap<String, String>,
    /// What did not line up, in the order found.
    pub findings: Vec<Finding>,
}

/// Something about a tool's declaration and grant that the operator should
/// know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// What kind of mismatch.
    pub kind: FindingKind,
    /// Line in the operator config it is about (the tool's table when
    /// there is nothing closer).
    pub line: usize,
    /// The config key it is about, such as `tools.fetch.endpoints`.
    pub key: String,
    /// What is wrong.
    pub message: String,
    /// Config lines that would grant a missing need; empty otherwise.
    pub grant_lines: Vec<String>,
}

/// The kinds of [`Finding`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FindingKind {
    /// The tool declared a need the operator did not grant; requests that
    /// need it are denied. Refuses a strict tool.
    NotGranted,
    /// The component carries no declaration; the operator's grants apply
    /// as written. Refuses a strict tool.
    NoDeclaration,
    /// The operator granted an endpoint the tool did not declare; it is not
    /// used.
    UnusedGrant,
    /// The operator set a config key the tool did not declare; it is not
    /// passed to the tool.
    UndeclaredConfig,
}

impl FindingKind {
    /// Whether a tool with `strict = true` refuses to load because of it.
    pub fn refuses_strict(self) -> bool {
        matches!(self, FindingKind::NotGranted | FindingKind::NoDeclaration)
    }
}

impl Finding {
    /// The message followed by the grant lines, indented, for logs and
    /// `airlock check`.
    pub fn describe(&self) -> String {
        let mut text = self.message.clone();
        if !self.grant_lines.is_empty() {
            text.push_str("; to grant it, add:");
            for line in &self.grant_lines {
                let _ = write!(text, "\n    {line}");
            }
        }
        text
    }
}

/// Computes the effective grant of tool `name`, configured as `grant`,
/// that ships `declaration` (or none). `connections` are the operator's.
pub fn effective(
    name: &str,
    grant: &ToolConfig,
    connections: &BTreeMap<String, ConnectionConfig>,
    declaration: Option<&Declaration>,
) -> Effective {
    let Some(declaration) = declaration else {
        return Effective {
            endpoints: grant.endpoints.clone(),
            config: grant.config.clone(),
            findings: vec![Finding {
                kind: FindingKind::NoDeclaration,
                line: grant.lines.table,
                key: format!("tools.{name}"),
                message: format!(
                    "{} carries no declaration and has no {} beside it; the grants \
                     in this config apply as written",
                    grant.source.display(),
                    beside_name(&grant.source)
                ),
                grant_lines: Vec::new(),
            }],
        };
    };

    let mut findings = Vec::new();
    let endpoints = intersect_endpoints(name, grant, declaration, &mut findings);
    missing_connections(name, grant, connections, declaration, &mut findings);
    for (i, endpoint) in declaration.endpoints.iter().enumerate() {
        missing_endpoint(name, grant, declaration, i, endpoint, &mut findings);
    }
    missing_scopes(name, grant, declaration, &mut findings);
    let config = merge_config(name, grant, declaration, &mut findings);
    Effective {
        endpoints,
        config,
        findings,
    }
}

/// The file name of a declaration kept beside a component:
/// `<component file name>.airlock.toml`.
pub fn beside_name(component: &std::path::Path) -> String {
    let file = component
        .file_name()
        .map_or_else(|| "component".into(), |f| f.to_string_lossy());
    format!("{file}.airlock.toml")
}

fn intersect_endpoints(
    name: &str,
    grant: &ToolConfig,
    declaration: &Declaration,
    findings: &mut Vec<Finding>,
) -> Vec<EndpointGrant> {
    let mut endpoints: Vec<EndpointGrant> = Vec::new();
    for g in &grant.endpoints {
        let mut used = false;
        for d in &declaration.endpoints {
            if d.connection != g.connection {
                continue;
            }
            let Some(methods) = g.methods.intersect(&d.methods) else {
                continue;
            };
            let url = match &d.url {
                DeclaredUrl::Any => Some(g.url.clone()),
                DeclaredUrl::Pattern(p) => g.url.intersect(p),
            };
            let Some(url) = url else {
                continue;
            };
            used = true;
            let scopes = match &g.connection {
                Some(c) if declaration.any_scopes(c) => g.scopes.clone(),
                Some(c) => {
                    let declared = declaration.scopes(c);
                    g.scopes
                        .iter()
                        .filter(|s| declared.contains(s))
                        .cloned()
                        .collect()
                }
                None => g.scopes.clone(),
            };
            let effective = EndpointGrant {
                methods,
                url,
                connection: g.connection.clone(),
                scopes,
                allow_private: g.allow_private,
                line: g.line,
            };
            if !endpoints.iter().any(|e| same_grant(e, &effective)) {
                endpoints.push(effective);
            }
        }
        if !used {
            findings.push(Finding {
                kind: FindingKind::UnusedGrant,
                line: g.line,
                key: format!("tools.{name}.endpoints"),
                message: format!(
                    "grant {} {} ({}) is not used: the tool's declaration ({}) does not ask for it",
                    g.methods,
                    g.url,
                    binding(&g.connection),
                    declaration.source.display()
                ),
                grant_lines: Vec::new(),
            });
        }
    }
    endpoints
}

fn same_grant(a: &EndpointGrant, b: &EndpointGrant) -> bool {
    a.methods == b.methods
        && a.url == b.url
        && a.connection == b.connection
        && a.scopes == b.scopes
        && a.allow_private == b.allow_private
}

/// Declared connections the config does not define at all.
fn missing_connections(
    name: &str,
    grant: &ToolConfig,
    connections: &BTreeMap<String, ConnectionConfig>,
    declaration: &Declaration,
    findings: &mut Vec<Finding>,
) {
    for (connection, declared) in &declaration.connections {
        if connections.contains_key(connection) {
            continue;
        }
        // Only a connection some specific endpoint needs is a need; a
        // generic `*` endpoint is satisfied by whatever is granted.
        let origins: BTreeSet<String> = declaration
            .endpoints
            .iter()
            .filter(|e| e.connection.as_ref() == Some(connection))
            .filter_map(|e| match &e.url {
                DeclaredUrl::Pattern(p) => Some(p.origin_string()),
                DeclaredUrl::Any => None,
            })
            .collect();
        if origins.is_empty() {
            continue;
        }
        let audience: Vec<String> = origins.iter().map(|o| format!("{o:?}")).collect();
        findings.push(Finding {
            kind: FindingKind::NotGranted,
            line: grant.lines.table,
            key: format!("connections.{connection}"),
            message: format!(
                "tool {name:?} wants connection {connection:?}{} (declared at {}:{}), \
                 which this config does not define",
                scopes_note(&declared.scopes),
                declaration.source.display(),
                declared.line
            ),
            grant_lines: vec![
                format!("[connections.{connection}]"),
                format!("audience = [{}]", audience.join(", ")),
            ],
        });
    }
}

/// A declared endpoint, or some of its methods, that no single grant with
/// the same binding covers.
///
/// Coverage is decided one grant at a time (per method), on purpose: a
/// declared URL pattern that only the union of several grants covers is
/// reported as not granted, with the one grant line that would cover it.
/// The rule stays explainable in one line of config, and it errs towards
/// a warning (or, for a strict tool, refusing to load), never towards
/// allowing more.
fn missing_endpoint(
    name: &str,
    grant: &ToolConfig,
    declaration: &Declaration,
    index: usize,
    declared: &DeclaredEndpoint,
    findings: &mut Vec<Finding>,
) {
    let DeclaredUrl::Pattern(url) = &declared.url else {
        return;
    };
    let candidates: Vec<&EndpointGrant> = grant
        .endpoints
        .iter()
        .filter(|g| g.connection == declared.connection && g.url.covers(url))
        .collect();
    let missing: Option<MethodSet> = match declared.methods.listed() {
        None if candidates.iter().any(|g| g.methods.is_any()) => None,
        None => Some(MethodSet::any()),
        Some(methods) => {
            let uncovered: Vec<&str> = methods
                .into_iter()
                .filter(|m| !candidates.iter().any(|g| g.methods.contains(m)))
                .collect();
            if uncovered.is_empty() {
                None
            } else {
                Some(MethodSet::from_methods(uncovered).expect("methods came from a method set"))
            }
        }
    };
    let Some(missing) = missing else {
        return;
    };

    // Some of its URLs may be granted for those methods, just not all.
    let partly = grant.endpoints.iter().any(|g| {
        g.connection == declared.connection
            && g.url.intersect(url).is_some()
            && g.methods.intersect(&missing).is_some()
    });
    findings.push(Finding {
        kind: FindingKind::NotGranted,
        line: grant.lines.table,
        key: format!("tools.{name}.endpoints"),
        message: format!(
            "the tool's declared endpoint {index} ({} {url}, {}; {}:{}) is {} for {}",
            declared.methods,
            binding(&declared.connection),
            declaration.source.display(),
            declared.line,
            if partly {
                "only partly granted"
            } else {
                "not granted"
            },
            if missing == declared.methods {
                "any of its methods".to_owned()
            } else {
                format!("method(s) {missing}")
            }
        ),
        grant_lines: endpoint_lines(name, &missing, url, &declared.connection, declaration),
    });
}

/// Declared scopes that no grant for the connection lists.
fn missing_scopes(
    name: &str,
    grant: &ToolConfig,
    declaration: &Declaration,
    findings: &mut Vec<Finding>,
) {
    for (connection, declared) in &declaration.connections {
        let grants: Vec<&EndpointGrant> = grant
            .endpoints
            .iter()
            .filter(|g| g.connection.as_ref() == Some(connection))
            .collect();
        let missing: Vec<&String> = declared
            .scopes
            .iter()
            .filter(|s| !grants.iter().any(|g| g.scopes.contains(s)))
            .collect();
        let Some(first) = grants.first() else {
            continue;
        };
        if missing.is_empty() {
            continue;
        }
        let all: Vec<String> = declared.scopes.iter().map(|s| format!("{s:?}")).collect();
        findings.push(Finding {
            kind: FindingKind::NotGranted,
            line: first.line,
            key: format!("tools.{name}.endpoints"),
            message: format!(
                "the tool needs scope(s) {} of connection {connection:?} ({}:{}), \
                 which no endpoint grant for it lists",
                missing
                    .iter()
                    .map(|s| format!("{s:?}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                declaration.source.display(),
                declared.line
            ),
            grant_lines: vec![format!(
                "scopes = [{}]    # in each [[tools.{name}.endpoints]] with connection = {connection:?}",
                all.join(", ")
            )],
        });
    }
}

fn merge_config(
    name: &str,
    grant: &ToolConfig,
    declaration: &Declaration,
    findings: &mut Vec<Finding>,
) -> BTreeMap<String, String> {
    let mut config = BTreeMap::new();
    for (key, declared) in &declaration.config {
        if let Some(value) = grant.config.get(key).or(declared.default.as_ref()) {
            config.insert(key.clone(), value.clone());
        }
    }
    for key in grant.config.keys() {
        if declaration.config.contains_key(key) {
            continue;
        }
        let declared: Vec<&str> = declaration.config.keys().map(String::as_str).collect();
        findings.push(Finding {
            kind: FindingKind::UndeclaredConfig,
            line: grant
                .lines
                .config
                .get(key)
                .copied()
                .unwrap_or(grant.lines.table),
            key: format!("tools.{name}.config.{key}"),
            message: format!(
                "the tool does not declare config key {key:?}, so it is not passed to it \
                 (declared: {})",
                if declared.is_empty() {
                    "none".to_owned()
                } else {
                    declared.join(", ")
                }
            ),
            grant_lines: Vec::new(),
        });
    }
    config
}

/// The `[[tools.NAME.endpoints]]` table that would grant `methods` on
/// `url` with the given binding.
fn endpoint_lines(
    name: &str,
    methods: &MethodSet,
    url: &UrlPattern,
    connection: &Option<String>,
    declaration: &Declaration,
) -> Vec<String> {
    let methods = match methods.listed() {
        None => "\"*\"".to_owned(),
        Some(list) => {
            let quoted: Vec<String> = list.iter().map(|m| format!("{m:?}")).collect();
            format!("[{}]", quoted.join(", "))
        }
    };
    let mut lines = vec![
        format!("[[tools.{name}.endpoints]]"),
        format!("url = \"{url}\""),
        format!("methods = {methods}"),
    ];
    match connection {
        Some(c) => {
            lines.push(format!("connection = {c:?}"));
            let scopes = declaration.scopes(c);
            if !scopes.is_empty() {
                let quoted: Vec<String> = scopes.iter().map(|s| format!("{s:?}")).collect();
                lines.push(format!("scopes = [{}]", quoted.join(", ")));
            }
        }
        None => lines.push("unauthenticated = true".to_owned()),
    }
    lines
}

fn binding(connection: &Option<String>) -> String {
    match connection {
        Some(c) => format!("connection {c:?}"),
        None => "unauthenticated".to_owned(),
    }
}

fn scopes_note(scopes: &[String]) -> String {
    if scopes.is_empty() {
        String::new()
    } else {
        let quoted: Vec<String> = scopes.iter().map(|s| format!("{s:?}")).collect();
        format!(" with scopes {}", quoted.join(", "))
    }
}

#[cfg(test)]
mod tests;
