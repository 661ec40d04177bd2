//! Finding a component's declaration and turning it into the tool's
//! effective grant at load.
//!
//! A declaration is embedded in the component (the `airlock-declaration`
//! custom section, covered by the operator's sha256 pin) or kept beside it
//! as `<component file name>.airlock.toml`. The file beside it is not
//! covered by the pin; that is acceptable because a declaration only ever
//! narrows what the operator granted. Both at once are refused unless their
//! text is identical, so there is never a question of which one applies.

use crate::manifest::effective::{self, Effective, Finding, beside_name};
use crate::manifest::section::{self, SectionError};
use crate::manifest::{Config, ConfigError, Declaration, ToolConfig};
use std::path::{Path, PathBuf};

/// Why a component's declaration cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeclarationError {
    /// The component's sections could not be read.
    #[error("{}: {source}", path.display())]
    Section {
        /// The component.
        path: PathBuf,
        /// The cause.
        source: SectionError,
    },
    /// The file beside the component exists but could not be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The declaration file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The component carries one declaration and another lies beside it.
    #[error(
        "{} carries a declaration and {} holds a different one; keep one of them",
        component.display(),
        beside.display()
    )]
    Conflict {
        /// The component.
        component: PathBuf,
        /// The file beside it.
        beside: PathBuf,
    },
    /// The declaration is not valid.
    #[error("invalid declaration: {}", join(.0))]
    Invalid(Vec<ConfigError>),
}

fn join(errors: &[ConfigError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// The declaration of the component whose bytes are `bytes`, read from
/// `path`: embedded, beside it, or none.
pub fn find_declaration(
    bytes: &[u8],
    path: &Path,
) -> Result<Option<Declaration>, DeclarationError> {
    let embedded = section::read(bytes).map_err(|source| DeclarationError::Section {
        path: path.to_path_buf(),
        source,
    })?;
    let beside_path = path.with_file_name(beside_name(path));
    let beside = match std::fs::read_to_string(&beside_path) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(source) => {
            return Err(DeclarationError::Read {
                path: beside_path,
                source,
            });
        }
    };

    let (text, source) = match (embedded, beside) {
        (None, None) => return Ok(None),
        (Some(inside), Some(outside)) if inside != outside => {
            return Err(DeclarationError::Conflict {
                component: path.to_path_buf(),
                beside: beside_path,
            });
        }
        (Some(inside), _) => (
            inside.to_owned(),
            PathBuf::from(format!(
                "{}#{}",
                path.display(),
                crate::manifest::declaration::SECTION
            )),
        ),
        (None, Some(outside)) => (outside, beside_path),
    };
    Declaration::parse(&text, &source)
        .map(Some)
        .map_err(DeclarationError::Invalid)
}

/// Intersects tool `name`'s grant with its declaration. A strict tool with
/// a finding that refuses it gets those findings back as the error.
pub(super) fn effective_grant(
    name: &str,
    tool: &ToolConfig,
    operator: &Config,
    declaration: Option<&Declaration>,
) -> Result<Effective, (Vec<Finding>, Vec<Finding>)> {
    let effective = effective::effective(name, tool, &operator.connections, declaration);
    let (refusing, others): (Vec<Finding>, Vec<Finding>) = effective
        .findings
        .iter()
        .cloned()
        .partition(|f| f.kind.refuses_strict());
    if tool.strict && !refusing.is_empty() {
        return Err((refusing, others));
    }
    Ok(effective)
}

/// Logs what did not line up between a loaded tool's declaration and its
/// grant, each with the config line it is about.
pub(super) fn log_findings(name: &str, operator: &Config, findings: &[Finding]) {
    let _span = tracing::info_span!("airlock.runtime.load", tool = name).entered();
    for finding in findings {
        tracing::warn!(
            key = %finding.key,
            "{}:{}: {}",
            operator.file.display(),
            finding.line,
            finding.describe()
        );
    }
}

/// The operator's grants for tool `name` as written, before any
/// declaration narrows them. Two of them for different connections that
/// one request could match are a config error, whether or not the
/// declaration uses them.
pub(super) fn operator_policy(
    name: &str,
    config: &ToolConfig,
) -> Result<crate::policy::Policy, super::LoadError> {
    crate::policy::Policy::new(config.endpoints.iter().map(grant_of).collect()).map_err(|source| {
        super::LoadError::Policy {
            tool: name.into(),
            source,
        }
    })
}

/// The policy's form of one granted endpoint.
pub(super) fn grant_of(e: &crate::manifest::EndpointGrant) -> crate::policy::Grant {
    crate::policy::Grant {
        methods: e.methods.clone(),
        url: e.url.clone(),
        connection: e.connection.clone(),
        allow_private: e.allow_private,
    }
}
