//! Token records and where they are kept.
//!
//! A record is keyed by (user, connection) and holds the access token, the
//! refresh token, the expiry, the granted scopes and a version for
//! compare-and-set. At rest the tokens are sealed with XChaCha20-Poly1305
//! under the vault's master key ([`seal`]); the associated data binds the
//! sealed bytes to the record's user, connection, version, expiry and scopes,
//! so a sealed record copied to another key, or edited, fails to open.
//!
//! The default backend is [`LocalVault`], one file under the data directory.
//! Refreshes of one record are serialized across processes by a lock file
//! ([`RefreshLock`]), and `rekey` moves every record to a new master key
//! without losing one if interrupted ([`LocalVault::rekey`]).

mod key;
mod local;
mod lock;
mod rekey;
mod seal;

pub use key::{KeySource, MasterKey};
pub use local::LocalVault;
pub use lock::RefreshLock;
pub use rekey::RekeyReport;

use crate::secret::{Secret, SecretError};
use std::path::PathBuf;

/// The tokens of one linked account, decrypted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// The bearer token attached to requests.
    pub access_token: Secret,
    /// The token used to obtain a new access token, when the provider issued one.
    pub refresh_token: Option<Secret>,
    /// When the access token stops working, in seconds since the Unix epoch.
    pub expires_at: Option<u64>,
    /// When the access token was issued (host clock), in seconds since the
    /// Unix epoch; with `expires_at` it gives the token's lifetime.
    pub issued_at: Option<u64>,
    /// Scopes the provider granted.
    pub scopes: Vec<String>,
    /// Incremented on every write; used for compare-and-set.
    pub version: u64,
}

/// What `vault list` shows of a record: everything but the tokens.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RecordInfo {
    /// The user the tokens act for.
    pub user: String,
    /// The connection they were issued for.
    pub connection: String,
    /// Expiry in seconds since the Unix epoch, when known.
    pub expires_at: Option<u64>,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// Whether a refresh token is stored.
    pub refreshable: bool,
    /// Record version.
    pub version: u64,
}

/// Errors from the vault. None of them carries a token.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VaultError {
    /// A file could not be read or written.
    #[error("vault file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The vault file is not in the expected format.
    #[error("vault file {path} is corrupt: {detail}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        detail: String,
    },
    /// The master key could not be loaded or created.
    #[error("vault key: {0}")]
    Key(String),
    /// A record failed authentication: wrong key, edited, or copied from
    /// another user or connection.
    #[error(
        "record for user {user:?} and connection {connection:?} failed to open (wrong key, or the record was altered or moved)"
    )]
    Unseal {
        /// The record's user.
        user: String,
        /// The record's connection.
        connection: String,
    },
    /// A user or connection name is not acceptable.
    #[error(
        "invalid {what} {value:?}: expected 1 to 128 characters of letters, digits and . _ - @ +"
    )]
    InvalidName {
        /// "user" or "connection".
        what: &'static str,
        /// The offending name.
        value: String,
    },
    /// A token is not acceptable.
    #[error("invalid token: {0}")]
    InvalidToken(#[from] SecretError),
    /// The refresh lock of a record stayed taken for too long.
    #[error(
        "refresh lock for user {user:?} and connection {connection:?} still held after {waited:?}"
    )]
    LockTimeout {
        /// The record's user.
        user: String,
        /// The record's connection.
        connection: String,
        /// How long the caller waited.
        waited: std::time::Duration,
    },
    /// The vault file was sealed under another master key (for example,
    /// after `airlock vault rekey` by another process).
    #[error(
        "vault file {path} is sealed under key {file_key}, not the loaded key {loaded_key}; was the vault rekeyed? restart with the new key"
    )]
    KeyMismatch {
        /// The file.
        path: PathBuf,
        /// Fingerprint recorded in the file.
        file_key: String,
        /// Fingerprint of the key this process holds.
        loaded_key: String,
    },
    /// A compare-and-set lost against a concurrent writer.
    #[error("record for user {user:?} and connection {connection:?} changed concurrently")]
    Conflict {
        /// The record's user.
        user: String,
        /// The record's connection.
        connection: String,
    },
}

/// Checks a user or connection name: 1 to 128 characters of ASCII letters,
/// digits and `. _ - @ +`.
pub fn check_name(what: &'static str, value: &str) -> Result<(), VaultError> {
    let ok = !value.is_empty()
        && value.len() <= 128
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-@+".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(VaultError::InvalidName {
            what,
            value: value.chars().take(140).collect(),
        })
    }
}
