//! Gets the calling user's token for a connection.
//!
//! [`Broker::token`] returns a token that stays valid for at least a safety
//! margin, or an [`AuthorizationRequired`] outcome naming the connection and
//! what is missing. Tokens never leave the broker except inside a [`Secret`].

use crate::secret::Secret;
use crate::vault::{LocalVault, VaultError};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A token is not handed out when it expires sooner than this.
pub const EXPIRY_MARGIN: Duration = Duration::from_secs(60);

/// Fetches tokens from the vault for (user, connection).
#[derive(Debug, Clone)]
pub struct Broker {
    vault: Arc<LocalVault>,
}

/// The user must (re)link an account before the request can go out.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AuthorizationRequired {
    /// The connection that needs a link.
    pub connection: String,
    /// Why: `not_linked`, `expired` or `missing_scopes`.
    pub reason: &'static str,
    /// Scopes the tool needs that the stored token lacks.
    pub missing_scopes: Vec<String>,
    /// Where the user grants consent, when the host serves consent routes.
    pub consent_url: Option<String>,
}

/// What a token request yields.
#[derive(Debug)]
pub enum TokenOutcome {
    /// A token valid for at least [`EXPIRY_MARGIN`].
    Token(Secret),
    /// The user has to link or re-link the account.
    AuthorizationRequired(AuthorizationRequired),
}

/// Failures of the broker itself (not of the user's link).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BrokerError {
    /// The vault failed.
    #[error(transparent)]
    Vault(#[from] VaultError),
    /// A blocking vault task panicked or was cancelled.
    #[error("vault task failed: {0}")]
    Task(String),
}

impl Broker {
    /// A broker over `vault`.
    pub fn new(vault: Arc<LocalVault>) -> Broker {
        Broker { vault }
    }

    /// The vault behind this broker.
    pub fn vault(&self) -> &Arc<LocalVault> {
        &self.vault
    }

    /// Returns `user`'s token for `connection` carrying every scope in `scopes`.
    pub async fn token(
        &self,
        user: &str,
        connection: &str,
        scopes: &[String],
    ) -> Result<TokenOutcome, BrokerError> {
        let vault = self.vault.clone();
        let (u, c) = (user.to_string(), connection.to_string());
        let record = tokio::task::spawn_blocking(move || vault.get(&u, &c))
            .await
            .map_err(|e| BrokerError::Task(e.to_string()))??;

        let required = |reason, missing_scopes| {
            Ok(TokenOutcome::AuthorizationRequired(AuthorizationRequired {
                connection: connection.to_string(),
                reason,
                missing_scopes,
                // FIXME(#4): consent URLs come with the OAuth linking routes.
                consent_url: None,
            }))
        };
        let Some(record) = record else {
            return required("not_linked", scopes.to_vec());
        };

        let missing: Vec<String> = scopes
            .iter()
            .filter(|s| !record.scopes.contains(s))
            .cloned()
            .collect();
        if !missing.is_empty() {
            return required("missing_scopes", missing);
        }

        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        if record
            .expires_at
            .is_some_and(|t| t < now + EXPIRY_MARGIN.as_secs())
        {
            // FIXME(#4): refresh with the stored refresh token instead.
            return required("expired", vec![]);
        }
        Ok(TokenOutcome::Token(record.access_token))
    }
}
