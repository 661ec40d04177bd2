//! Typed operator configuration and tool declarations.
//!
//! Everything here is parsed once into typed values (URL patterns, method
//! sets, digests, sizes, durations); unknown keys are errors, and every error
//! names the file, the line and what was expected.

pub mod config;
pub mod declaration;
mod doc;
pub mod effective;
pub mod oauth;
pub mod pattern;
pub mod section;
pub mod serve;

pub use config::{
    AuditSettings, Config, ConfigError, ConnectionConfig, EndpointGrant, Limits, ToolConfig,
    ToolLines, VaultConfig,
};
pub use declaration::{
    Declaration, DeclaredConnection, DeclaredEndpoint, DeclaredKey, DeclaredUrl,
};
pub use effective::{Effective, Finding, FindingKind};
pub use oauth::{ClientAuth, OAuthSettings, ProviderKind, SecretSource};
pub use serve::{ApiKeyConfig, CallersConfig, OidcConfig, ServeConfig, UserSet};
