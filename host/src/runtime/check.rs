//! Checking a whole config and every component it names, reporting each
//! problem rather than stopping at the first.
//!
//! The config is read table by table ([`Config::load_partial`]); then every
//! tool that could be read is loaded as [`Host::load`](super::Host::load)
//! would load it (file, digest, exports, compilation, linking, declaration,
//! effective grant), without opening the vault or running anything.

use super::{LoadError, engine, load_tool, state};
use crate::manifest::{Config, ConfigError, Finding, FindingKind};
use std::fmt;
use std::path::{Path, PathBuf};
use wasmtime::component::Linker;

/// How bad a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// The config or a component cannot be used as it is.
    Error,
    /// It loads, but something does not line up (a declared need not
    /// granted, a grant not used, no declaration).
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// One problem, located in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// How bad it is.
    pub severity: Severity,
    /// The config file, a declaration file, or
    /// `<component>#airlock-declaration`.
    pub file: PathBuf,
    /// 1-based line; 0 when the problem is about the file as a whole.
    pub line: usize,
    /// 1-based column; 0 when unknown.
    pub column: usize,
    /// The key it is about, such as `tools.fetch.sha256`; may be empty.
    pub key: String,
    /// What is wrong, with what would fix it when known.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}", self.line)?;
        }
        if self.column > 0 {
            write!(f, ":{}", self.column)?;
        }
        write!(f, ": {}: ", self.severity)?;
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        f.write_str(&self.message)
    }
}

impl Problem {
    fn from_config(error: ConfigError) -> Problem {
        match error {
            ConfigError::Invalid {
                file,
                line,
                column,
                key,
                message,
            } => Problem {
                severity: Severity::Error,
                file,
                line,
                column,
                key,
                message,
            },
            ConfigError::Read { file, source } => Problem {
                severity: Severity::Error,
                file,
                line: 0,
                column: 0,
                key: String::new(),
                message: format!("cannot read the file: {source}"),
            },
        }
    }

    fn from_finding(file: &Path, finding: &Finding, severity: Severity) -> Problem {
        Problem {
            severity,
            file: file.to_path_buf(),
            line: finding.line,
            column: 0,
            key: finding.key.clone(),
            message: finding.describe(),
        }
    }
}

/// The outcome of [`check`].
#[derive(Debug, Clone)]
pub struct CheckReport {
    /// The config file checked.
    pub file: PathBuf,
    /// Every problem, config problems first, then tools by name.
    pub problems: Vec<Problem>,
    /// Tools whose component loaded.
    pub components: usize,
    /// Tools (exported functions) those components offer.
    pub tools: usize,
    /// Connections defined.
    pub connections: usize,
}

impl CheckReport {
    /// Number of problems of `severity`.
    pub fn count(&self, severity: Severity) -> usize {
        self.problems
            .iter()
            .filter(|p| p.severity == severity)
            .count()
    }
}

/// Checks the config at `path` and every component it names.
pub fn check(path: &Path) -> CheckReport {
    let (config, errors) = Config::load_partial(path);
    let mut report = CheckReport {
        file: path.to_path_buf(),
        problems: errors.into_iter().map(Problem::from_config).collect(),
        components: 0,
        tools: 0,
        connections: config.connections.len(),
    };
    // What `airlock tools` would refuse before loading anything.
    let text = std::fs::read_to_string(path).unwrap_or_default();
    for (name, connection) in &config.connections {
        let Some(oauth) = &connection.oauth else {
            continue;
        };
        if let Err(err) = crate::broker::check_client_secret(name, oauth) {
            let header = format!("[connections.{name}]");
            let line = text
                .lines()
                .position(|l| l.trim() == header)
                .map_or(0, |i| i + 1);
            report.problems.push(Problem {
                severity: Severity::Error,
                file: path.to_path_buf(),
                line,
                column: 0,
                key: format!("connections.{name}"),
                message: err.to_string(),
            });
        }
    }
    if config.tools.is_empty() {
        return report;
    }

    // Nothing runs here: a pool of one instance is enough to link.
    let size = engine::EngineSize::for_config(&config, config.host.wasm_stack_kib, 1);
    let linked = engine::new_engine(size).and_then(|engine| {
        let mut linker = Linker::new(&engine);
        state::link(&mut linker)?;
        Ok((engine, linker))
    });
    let (engine, linker) = match linked {
        Ok(pair) => pair,
        Err(e) => {
            report.problems.push(Problem {
                severity: Severity::Error,
                file: path.to_path_buf(),
                line: 0,
                column: 0,
                key: String::new(),
                message: format!("cannot create the engine: {e:#}"),
            });
            return report;
        }
    };

    for (name, tool) in &config.tools {
        // A tool whose own table has problems was read without the broken
        // parts; what its declaration would say about them is noise.
        let prefix = format!("tools.{name}");
        let broken = report
            .problems
            .iter()
            .any(|p| p.key == prefix || p.key.starts_with(&format!("{prefix}.")));
        // No compile cache: checking writes nothing.
        match load_tool(&engine, None, &linker, name, tool, &config) {
            Ok(loaded) => {
                report.components += 1;
                report.tools += loaded.defs.len();
                if !broken {
                    report.problems.extend(
                        loaded
                            .findings
                            .iter()
                            .map(|f| Problem::from_finding(&config.file, f, Severity::Warning)),
                    );
                }
            }
            Err(err) => report.problems.extend(load_problems(&config, name, err)),
        }
    }
    report
}

/// The problems behind a tool that did not load, located as closely as
/// the error allows.
fn load_problems(config: &Config, name: &str, err: LoadError) -> Vec<Problem> {
    let tool = &config.tools[name];
    let at = |line: usize, key: String, message: String| Problem {
        severity: Severity::Error,
        file: config.file.clone(),
        line,
        column: 0,
        key,
        message,
    };
    match err {
        LoadError::Strict {
            findings, warnings, ..
        } => findings
            .iter()
            .map(|f| {
                let mut p = Problem::from_finding(&config.file, f, Severity::Error);
                if f.kind == FindingKind::NoDeclaration {
                    p.message
                        .push_str("; strict = true refuses a tool without a declaration");
                } else {
                    p.message = format!("strict = true refuses to load: {}", p.message);
                }
                p
            })
            .chain(
                warnings
                    .iter()
                    .map(|f| Problem::from_finding(&config.file, f, Severity::Warning)),
            )
            .collect(),
        LoadError::Declaration {
            source: super::DeclarationError::Invalid(errors),
            ..
        } => errors.into_iter().map(Problem::from_config).collect(),
        LoadError::Digest {
            path,
            expected,
            actual,
            ..
        } => vec![at(
            tool.lines.sha256,
            format!("tools.{name}.sha256"),
            format!(
                "{} has sha256 {actual}, but the config pins {expected}",
                path.display()
            ),
        )],
        LoadError::Memory { .. } => vec![at(
            tool.lines.table,
            format!("tools.{name}.limits.memory_mib"),
            strip_tool(&err, name),
        )],
        LoadError::Read { path, source, .. } => vec![at(
            tool.lines.table,
            format!("tools.{name}.source"),
            format!("cannot read {}: {source}", path.display()),
        )],
        other => vec![at(
            tool.lines.table,
            format!("tools.{name}"),
            strip_tool(&other, name),
        )],
    }
}

/// A load error's message without the `tool "name": ` prefix, which the
/// key already says.
fn strip_tool(err: &LoadError, name: &str) -> String {
    let text = err.to_string();
    let prefix = format!("tool {name:?}: ");
    text.strip_prefix(&prefix)
        .map_or(text.clone(), str::to_owned)
}
