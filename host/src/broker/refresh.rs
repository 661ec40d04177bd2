//! The slow path of a token lookup: read the vault, and refresh when the
//! token is due.
//!
//! Lookups of one (user, connection) that miss the cache queue on one
//! in-process lock (a flight); the first refreshes and caches, the rest find
//! the new token in the cache. Across processes sharing the local store, the
//! vault's refresh lock serializes refreshes, and the record is read again
//! under it, so a token another process refreshed is used, not refreshed a
//! second time. The new tokens are stored (a rotated refresh token with
//! them, the old one kept when the reply has none) before the access token
//! is handed out. On `invalid_grant` the record is read again: if another
//! refresher rotated it meanwhile, its tokens are used; otherwise the link
//! is dead and removed. Every refresh sent to a provider is counted by
//! connection and outcome ([`Broker::refresh_counts`]).
//!
//! One loss no client can prevent: with a provider that rotates refresh
//! tokens strictly (the old one dies the moment the new one is issued, as
//! Box and oidc-provider's default do), a crash or SIGKILL after the
//! provider rotated and before the reply reached the disk leaves the
//! record holding a spent refresh token, and the only copy of its
//! successor died with the process. Storing first is impossible (the new
//! token is not known before the reply), and retrying with the spent one
//! is refused, by many providers with the whole grant revoked. The next
//! refresh then gets `invalid_grant`, the record is removed, and the
//! lookup answers [`AuthorizationRequired`](super::AuthorizationRequired)
//! with reason `refresh_rejected` and a consent URL: the user links again.
//! Providers with a reuse interval (Auth0, Okta) let the stored token
//! recover instead. Both cases are pinned in `tests/e2e/oauth_kill.rs`.

use super::oauth::Failure;
use super::{Broker, BrokerError, TokenOutcome, TokenRecordExt as _, blocking};
use crate::vault::{TokenRecord, VaultError};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, Weak};

/// The in-process lock of one (user, connection).
type Gate = tokio::sync::Mutex<()>;

/// One in-process lock per (user, connection) with a lookup in flight.
#[derive(Debug, Default)]
pub(super) struct Flights {
    gates: Mutex<HashMap<(String, String), Weak<Gate>>>,
}

impl Flights {
    fn gate(&self, user: &str, connection: &str) -> Arc<Gate> {
        let mut gates = self.gates.lock().unwrap_or_else(|e| e.into_inner());
        let key = (user.to_string(), connection.to_string());
        if let Some(gate) = gates.get(&key).and_then(Weak::upgrade) {
            return gate;
        }
        if gates.len() > 1024 {
            gates.retain(|_, g| g.strong_count() > 0);
        }
        let gate = Arc::new(Gate::new(()));
        gates.insert(key, Arc::downgrade(&gate));
        gate
    }
}

/// How many refreshes of one connection ended one way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshCount {
    /// The connection, as configured.
    pub connection: String,
    /// `ok` (new tokens stored), `conflict` (another writer changed the
    /// record meanwhile; it is read again), `rejected` (the provider refused
    /// the refresh token; the link was removed) or `failed` (the provider
    /// could not be reached or answered something unusable, or the new
    /// tokens could not be stored).
    pub outcome: &'static str,
    /// Refreshes so far.
    pub count: u64,
}

/// Refreshes sent to a provider, by (connection, outcome).
#[derive(Debug, Default)]
pub(super) struct RefreshCounts {
    counts: Mutex<BTreeMap<(String, &'static str), u64>>,
}

impl RefreshCounts {
    fn add(&self, connection: &str, outcome: &'static str) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        *counts.entry((connection.to_string(), outcome)).or_default() += 1;
    }

    fn snapshot(&self) -> Vec<RefreshCount> {
        let counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        counts
            .iter()
            .map(|((connection, outcome), count)| RefreshCount {
                connection: connection.clone(),
                outcome,
                count: *count,
            })
            .collect()
    }
}

impl Broker {
    /// Refreshes this broker (and its clones) sent to providers so far,
    /// sorted by connection and outcome. Only configured connections with
    /// a provider appear.
    pub fn refresh_counts(&self) -> Vec<RefreshCount> {
        self.inner.refreshes.snapshot()
    }

    pub(super) async fn token_slow(
        &self,
        user: &str,
        connection: &str,
        scopes: &[String],
    ) -> Result<TokenOutcome, BrokerError> {
        let gate = self.inner.flights.gate(user, connection);
        let _flight = gate.lock().await;

        // Whoever held the flight before may have refreshed already.
        let fresh = |e, i| self.fresh(e, i);
        if let Some(token) = self.inner.cache.get(user, connection, scopes, fresh) {
            return Ok(TokenOutcome::Token(token));
        }

        let Some(record) = self.read(user, connection).await? else {
            return Ok(self.required(user, connection, "not_linked", scopes.to_vec()));
        };
        tracing::debug!(
            user,
            connection,
            version = record.version,
            expires_at = record.expires_at,
            "airlock.broker.read"
        );
        let missing: Vec<String> = scopes
            .iter()
            .filter(|s| !record.scopes.contains(s))
            .cloned()
            .collect();
        if !missing.is_empty() {
            return Ok(self.required(user, connection, "missing_scopes", missing));
        }
        if self.usable(user, connection, &record) {
            self.inner.cache.put(user, connection, record.cached());
            return Ok(TokenOutcome::Token(record.access_token));
        }
        if record.refresh_token.is_none() || !self.has_provider(connection) {
            return Ok(self.required(user, connection, "expired", vec![]));
        }
        self.refresh(user, connection).await
    }

    /// Fresh, and not a token an upstream has rejected.
    fn usable(&self, user: &str, connection: &str, record: &TokenRecord) -> bool {
        if !self.fresh(record.expires_at, record.issued_at) {
            return false;
        }
        let rejected = self
            .inner
            .rejected
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        rejected
            .get(&(user.to_string(), connection.to_string()))
            .is_none_or(|bad| *bad != record.access_token)
    }

    /// Refreshes under the cross-process lock. The caller holds the flight.
    async fn refresh(&self, user: &str, connection: &str) -> Result<TokenOutcome, BrokerError> {
        let vault = self.inner.vault.clone();
        let (u, c, wait) = (
            user.to_string(),
            connection.to_string(),
            self.inner.lock_wait,
        );
        let _lock = blocking(move || vault.lock_refresh(&u, &c, wait)).await?;

        // Two rounds: a second only when another writer changed the record
        // while this one was talking to the provider.
        for _ in 0..2 {
            // Another process may have refreshed while this one waited.
            let Some(record) = self.read(user, connection).await? else {
                return Ok(self.required(user, connection, "not_linked", vec![]));
            };
            if self.usable(user, connection, &record) {
                self.inner.cache.put(user, connection, record.cached());
                return Ok(TokenOutcome::Token(record.access_token));
            }
            let Some(refresh_token) = record.refresh_token.clone() else {
                return Ok(self.required(user, connection, "expired", vec![]));
            };

            let provider = self.provider(connection)?.clone();
            let started = self.now();
            tracing::debug!(user, connection, "airlock.broker.refresh");
            match provider
                .refresh(&self.inner.http, &refresh_token, &record.scopes)
                .await
            {
                Ok(reply) => {
                    let new = TokenRecord {
                        access_token: reply.access,
                        // A reply without a refresh token keeps the old one.
                        refresh_token: reply.refresh.or(Some(refresh_token)),
                        expires_at: reply.expires_in.map(|s| started.saturating_add(s)),
                        issued_at: Some(started),
                        scopes: provider.granted(&record.scopes, reply.scopes),
                        version: 0,
                    };
                    // Stored before use: a rotated refresh token is on disk
                    // before the access token that came with it goes out.
                    // (A kill before this store completes loses the link
                    // with a strictly rotating provider; see the module
                    // doc.)
                    match self
                        .store(user, connection, Some(record.version), new)
                        .await
                    {
                        Ok(stored) => {
                            self.inner.refreshes.add(connection, "ok");
                            self.forget_rejection(user, connection);
                            self.inner.cache.put(user, connection, stored.cached());
                            tracing::info!(user, connection, "airlock.broker.refreshed");
                            return Ok(TokenOutcome::Token(stored.access_token));
                        }
                        Err(BrokerError::Vault(VaultError::Conflict { .. })) => {
                            self.inner.refreshes.add(connection, "conflict");
                            tracing::warn!(
                                user,
                                connection,
                                "record changed during refresh; reading it again"
                            );
                            continue;
                        }
                        Err(e) => {
                            self.inner.refreshes.add(connection, "failed");
                            return Err(e);
                        }
                    }
                }
                Err(Failure::InvalidGrant) => {
                    // Someone else may have spent the token and stored the
                    // one they got back.
                    let now = self.read(user, connection).await?;
                    if now.as_ref().is_some_and(|n| n.version != record.version) {
                        continue;
                    }
                    let vault = self.inner.vault.clone();
                    let (u, c, v) = (user.to_string(), connection.to_string(), record.version);
                    self.inner.refreshes.add(connection, "rejected");
                    blocking(move || vault.remove_if_version(&u, &c, v)).await?;
                    self.inner.cache.remove(user, connection, None);
                    tracing::info!(user, connection, "airlock.broker.refresh_rejected");
                    return Ok(self.required(user, connection, "refresh_rejected", vec![]));
                }
                Err(failure) => {
                    self.inner.refreshes.add(connection, "failed");
                    // An access token that has not yet expired is still
                    // better than failing the request.
                    if record.expires_at.is_some_and(|t| t > self.now())
                        && self.usable_ignoring_margin(user, connection, &record)
                    {
                        tracing::warn!(user, connection, %failure, "refresh failed; using the current token until it expires");
                        return Ok(TokenOutcome::Token(record.access_token));
                    }
                    return Err(BrokerError::Provider {
                        connection: connection.to_string(),
                        detail: format!("refresh failed: {failure}"),
                    });
                }
            }
        }
        Err(BrokerError::Provider {
            connection: connection.to_string(),
            detail: "the record kept changing during refresh".into(),
        })
    }

    fn usable_ignoring_margin(&self, user: &str, connection: &str, record: &TokenRecord) -> bool {
        let rejected = self
            .inner
            .rejected
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        rejected
            .get(&(user.to_string(), connection.to_string()))
            .is_none_or(|bad| *bad != record.access_token)
    }

    fn forget_rejection(&self, user: &str, connection: &str) {
        self.inner
            .rejected
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(user.to_string(), connection.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refreshes_are_counted_by_connection_and_outcome() {
        let counts = RefreshCounts::default();
        counts.add("github", "ok");
        counts.add("demo", "failed");
        counts.add("github", "ok");
        let snapshot = counts.snapshot();
        let flat: Vec<(&str, &str, u64)> = snapshot
            .iter()
            .map(|r| (r.connection.as_str(), r.outcome, r.count))
            .collect();
        assert_eq!(flat, [("demo", "failed", 1), ("github", "ok", 2)]);
    }
}
