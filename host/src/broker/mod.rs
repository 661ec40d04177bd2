//! Gets the calling user's token for a connection, and links, refreshes and
//! revokes accounts with the connection's OAuth provider.
//!
//! [`Broker::token`] returns a token that stays valid for at least a safety
//! margin, refreshing it when needed, or an [`AuthorizationRequired`]
//! outcome naming the connection, what is missing and where the user can
//! grant it. Fresh tokens are served from memory ([`cache`]); refreshes are
//! single-flight per (user, connection) in a process and locked across
//! processes ([`refresh`]). Linking is authorization code with PKCE
//! ([`consent`]), reachable over HTTP through [`consent_routes`]. Tokens
//! never leave the broker except inside a [`Secret`].

mod cache;
mod consent;
mod http;
mod oauth;
mod presets;
mod refresh;
mod routes;

pub use consent::{LINK_TTL, STATE_TTL};
pub use http::HttpError;
pub use refresh::RefreshCount;
pub use routes::{Linked, consent_routes};

use crate::manifest::{Config, ConnectionConfig};
use crate::secret::Secret;
use crate::vault::{LocalVault, TokenRecord, VaultError};
use cache::{Cached, TokenCache};
use oauth::Provider;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A token is refreshed when less than this, or a tenth of its lifetime if
/// that is longer, remains.
pub const EXPIRY_MARGIN: Duration = Duration::from_secs(60);

/// Fetches, refreshes and links tokens for (user, connection). Cloning is
/// cheap and clones share the cache, the refresh flights and pending
/// consents.
#[derive(Clone)]
pub struct Broker {
    inner: Arc<Inner>,
}

struct Inner {
    vault: Arc<LocalVault>,
    providers: BTreeMap<String, Arc<Provider>>,
    cache: TokenCache,
    flights: refresh::Flights,
    consent: consent::ConsentStore,
    consent_base: Option<url::Url>,
    skew: i64,
    http: http::HttpClient,
    link_key: zeroize::Zeroizing<[u8; 32]>,
    lock_wait: Duration,
    /// Access tokens an upstream rejected, by (user, connection): the next
    /// lookup refreshes instead of handing them out again.
    rejected: Mutex<HashMap<(String, String), Secret>>,
    /// Refreshes sent to providers, for the metrics.
    refreshes: refresh::RefreshCounts,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("vault", &self.inner.vault.file())
            .field(
                "connections",
                &self.inner.providers.keys().collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// Settings of a broker beyond its connections.
#[derive(Debug, Clone)]
pub struct BrokerOptions {
    /// Base URL of this host's consent routes; consent URLs are given out
    /// only when it is set.
    pub consent_base_url: Option<url::Url>,
    /// Seconds added to the system clock (negative: behind). For hosts with
    /// a known-wrong clock, and for tests of clock skew.
    pub clock_skew_secs: i64,
    /// Longest wait for another process's refresh of the same record.
    pub lock_wait: Duration,
    /// Time limit of one request to a provider.
    pub http_timeout: Duration,
}

impl Default for BrokerOptions {
    fn default() -> BrokerOptions {
        BrokerOptions {
            consent_base_url: None,
            clock_skew_secs: 0,
            lock_wait: Duration::from_secs(30),
            http_timeout: Duration::from_secs(15),
        }
    }
}

/// The user must (re)link an account before the request can go out.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AuthorizationRequired {
    /// The connection that needs a link.
    pub connection: String,
    /// Why: `not_linked` (no record), `missing_scopes` (the record lacks a
    /// scope), `expired` (expired and nothing to refresh it with) or
    /// `refresh_rejected` (the provider refused the refresh token:
    /// revoked, expired or reused; the record was removed).
    pub reason: &'static str,
    /// Scopes the tool needs that the stored token lacks.
    pub missing_scopes: Vec<String>,
    /// Where the user grants consent, when the host serves consent routes.
    pub consent_url: Option<String>,
}

/// What a token request yields.
#[derive(Debug)]
pub enum TokenOutcome {
    /// A token valid for at least the refresh margin, or just issued.
    Token(Secret),
    /// The user has to link or re-link the account.
    AuthorizationRequired(AuthorizationRequired),
}

/// What `revoke` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Revoked {
    /// What the provider said.
    pub at_provider: AtProvider,
    /// A record was deleted.
    pub removed: bool,
}

/// What the provider made of a revocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AtProvider {
    /// The provider accepted it: the grant (or token) is revoked.
    Revoked,
    /// The provider no longer knew the grant or token (GitHub's 404 and
    /// 422), or refused to refresh it: there was nothing left to revoke.
    AlreadyGone,
    /// The provider has no revocation endpoint (or no record or provider
    /// was there to revoke): the grant stays until the user removes it at
    /// the provider.
    NoEndpoint,
}

/// Failures of the broker itself (not of the user's link). None carries a
/// token or a client secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BrokerError {
    /// The vault failed.
    #[error(transparent)]
    Vault(#[from] VaultError),
    /// A blocking vault task panicked or was cancelled.
    #[error("vault task failed: {0}")]
    Task(String),
    /// The connection does not exist or has no OAuth provider.
    #[error("connection {connection:?} {detail}")]
    Connection {
        /// The connection.
        connection: String,
        /// What is missing.
        detail: String,
    },
    /// The client secret could not be read.
    #[error("client secret of connection {connection:?}: {detail}")]
    ClientSecret {
        /// The connection.
        connection: String,
        /// Why.
        detail: String,
    },
    /// The provider could not be reached, refused the client, or answered
    /// something unusable.
    #[error("provider of connection {connection:?}: {detail}")]
    Provider {
        /// The connection.
        connection: String,
        /// What happened.
        detail: String,
    },
    /// A consent could not be started or completed.
    #[error("consent: {0}")]
    Consent(String),
}

/// Checks that connection `name`'s client secret can be read (the
/// environment variable is set, the file is readable and not empty),
/// without keeping it; for `airlock check`.
pub fn check_client_secret(
    name: &str,
    settings: &crate::manifest::OAuthSettings,
) -> Result<(), BrokerError> {
    Provider::new(name, settings).map(drop)
}

impl Broker {
    /// A broker over `vault` with no OAuth connections: it hands out stored
    /// tokens and never refreshes.
    pub fn new(vault: Arc<LocalVault>) -> Broker {
        Broker::with_options(vault, &BTreeMap::new(), BrokerOptions::default())
            .expect("a broker without connections has nothing to fail on")
    }

    /// A broker for the connections of `config`, with its consent base URL.
    pub fn from_config(config: &Config, vault: Arc<LocalVault>) -> Result<Broker, BrokerError> {
        let options = BrokerOptions {
            consent_base_url: config.host.consent_base_url.clone(),
            ..BrokerOptions::default()
        };
        Broker::with_options(vault, &config.connections, options)
    }

    /// A broker for `connections`; reads every client secret now, so a
    /// missing one is reported at start.
    pub fn with_options(
        vault: Arc<LocalVault>,
        connections: &BTreeMap<String, ConnectionConfig>,
        options: BrokerOptions,
    ) -> Result<Broker, BrokerError> {
        let mut providers = BTreeMap::new();
        for (name, connection) in connections {
            if let Some(oauth) = &connection.oauth {
                providers.insert(name.clone(), Arc::new(Provider::new(name, oauth)?));
            }
        }
        let link_key = vault.derive_key(consent::LINK_KEY_LABEL);
        let broker = Broker {
            inner: Arc::new(Inner {
                vault,
                providers,
                cache: TokenCache::default(),
                flights: refresh::Flights::default(),
                consent: consent::ConsentStore::default(),
                consent_base: options.consent_base_url,
                skew: options.clock_skew_secs,
                http: http::HttpClient::new(options.http_timeout),
                link_key,
                lock_wait: options.lock_wait,
                rejected: Mutex::new(HashMap::new()),
                refreshes: refresh::RefreshCounts::default(),
            }),
        };
        cache::watch(
            Arc::downgrade(&broker.inner),
            |inner: &Inner| &inner.cache,
            broker.inner.vault.file(),
        );
        Ok(broker)
    }

    /// The vault behind this broker.
    pub fn vault(&self) -> &Arc<LocalVault> {
        &self.inner.vault
    }

    /// Whether `connection` has an OAuth provider (can link and refresh).
    pub fn has_provider(&self, connection: &str) -> bool {
        self.inner.providers.contains_key(connection)
    }

    /// Returns `user`'s token for `connection` carrying every scope in
    /// `scopes`, refreshing it first when less than the margin remains.
    pub async fn token(
        &self,
        user: &str,
        connection: &str,
        scopes: &[String],
    ) -> Result<TokenOutcome, BrokerError> {
        let fresh = |expires_at, issued_at| self.fresh(expires_at, issued_at);
        if let Some(token) = self.inner.cache.get(user, connection, scopes, fresh) {
            return Ok(TokenOutcome::Token(token));
        }
        self.token_slow(user, connection, scopes).await
    }

    /// Reports that an upstream answered 401 to a request carrying `token`:
    /// it is dropped from memory, and the next lookup refreshes it (or, with
    /// nothing to refresh it with, reports the link expired).
    pub fn invalidate(&self, user: &str, connection: &str, token: &Secret) {
        self.inner.cache.remove(user, connection, Some(token));
        self.inner
            .rejected
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((user.to_string(), connection.to_string()), token.clone());
        tracing::info!(user, connection, "airlock.broker.token_rejected");
    }

    /// Revokes the link at the provider where it has a revocation endpoint
    /// (RFC 7009 with the refresh token, else the access token; GitHub's
    /// REST API with the access token, refreshed first when it has expired),
    /// then deletes the record. A provider that refuses is reported and the
    /// record kept; one that no longer knows the grant is not a refusal.
    pub async fn revoke(&self, user: &str, connection: &str) -> Result<Revoked, BrokerError> {
        let mut record = self.read(user, connection).await?;
        let mut at_provider = AtProvider::NoEndpoint;
        let mut refused = false;
        if let (Some(stored), Some(provider)) = (&record, self.inner.providers.get(connection))
            && provider.revocation() == presets::Revocation::GithubRest
            && stored.refresh_token.is_some()
            && !self.fresh(stored.expires_at, stored.issued_at)
        {
            // GitHub names the grant by a live access token only.
            record = match self.token(user, connection, &[]).await? {
                TokenOutcome::Token(_) => self.read(user, connection).await?,
                // The provider refused the refresh token, and the refresh
                // removed the record: the grant is gone already.
                TokenOutcome::AuthorizationRequired(_) => {
                    at_provider = AtProvider::AlreadyGone;
                    refused = true;
                    None
                }
            };
        }
        if let (Some(record), Some(provider)) = (&record, self.inner.providers.get(connection)) {
            at_provider = provider
                .revoke(&self.inner.http, record)
                .await
                .map_err(|failure| BrokerError::Provider {
                    connection: connection.to_string(),
                    detail: format!("revocation failed: {failure}"),
                })?;
        }
        self.inner.cache.remove(user, connection, None);
        let vault = self.inner.vault.clone();
        let (u, c) = (user.to_string(), connection.to_string());
        let removed = blocking(move || vault.remove(&u, &c)).await? || refused;
        tracing::info!(
            user,
            connection,
            at_provider = ?at_provider,
            removed,
            "airlock.broker.revoked"
        );
        Ok(Revoked {
            at_provider,
            removed,
        })
    }

    fn provider(&self, connection: &str) -> Result<&Arc<Provider>, BrokerError> {
        self.inner
            .providers
            .get(connection)
            .ok_or_else(|| BrokerError::Connection {
                connection: connection.to_string(),
                detail: "has no OAuth provider configured (set provider and client_id)".into(),
            })
    }

    /// The host's clock, in seconds since the Unix epoch, with the skew.
    fn now(&self) -> u64 {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        now.saturating_add_signed(self.inner.skew)
    }

    /// Whether a token with this expiry may be handed out without a refresh:
    /// more than max(60 s, a tenth of its lifetime) remains.
    fn fresh(&self, expires_at: Option<u64>, issued_at: Option<u64>) -> bool {
        let Some(expires_at) = expires_at else {
            return true;
        };
        let lifetime = issued_at.map_or(0, |i| expires_at.saturating_sub(i));
        let margin = EXPIRY_MARGIN.as_secs().max(lifetime / 10);
        expires_at.saturating_sub(self.now()) > margin
    }

    async fn read(&self, user: &str, connection: &str) -> Result<Option<TokenRecord>, BrokerError> {
        let vault = self.inner.vault.clone();
        let (u, c) = (user.to_string(), connection.to_string());
        blocking(move || vault.get(&u, &c)).await
    }

    /// Writes `record`: replacing any record when `expected` is `None`,
    /// else only over version `expected`. Returns it with its new version.
    async fn store(
        &self,
        user: &str,
        connection: &str,
        expected: Option<u64>,
        mut record: TokenRecord,
    ) -> Result<TokenRecord, BrokerError> {
        let vault = self.inner.vault.clone();
        let (u, c) = (user.to_string(), connection.to_string());
        let copy = record.clone();
        record.version = blocking(move || match expected {
            Some(v) => vault.compare_and_set(&u, &c, v, copy),
            None => vault.put(&u, &c, copy),
        })
        .await?;
        Ok(record)
    }

    fn required(
        &self,
        user: &str,
        connection: &str,
        reason: &'static str,
        missing_scopes: Vec<String>,
    ) -> TokenOutcome {
        TokenOutcome::AuthorizationRequired(AuthorizationRequired {
            connection: connection.to_string(),
            reason,
            consent_url: self.consent_url(user, connection, &missing_scopes),
            missing_scopes,
        })
    }
}

/// Runs a blocking vault operation off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, VaultError> + Send + 'static,
) -> Result<T, BrokerError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| BrokerError::Task(e.to_string()))?
        .map_err(BrokerError::from)
}

/// A record as the cache keeps it.
trait TokenRecordExt {
    fn cached(&self) -> Cached;
}

impl TokenRecordExt for TokenRecord {
    fn cached(&self) -> Cached {
        Cached {
            token: self.access_token.clone(),
            expires_at: self.expires_at,
            issued_at: self.issued_at,
            scopes: self.scopes.clone(),
            version: self.version,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vault::KeySource;

    fn broker(skew: i64) -> (tempfile::TempDir, Broker) {
        let dir = tempfile::tempdir().unwrap();
        let vault = LocalVault::open(dir.path(), &KeySource::File(dir.path().join("k"))).unwrap();
        let options = BrokerOptions {
            clock_skew_secs: skew,
            ..BrokerOptions::default()
        };
        let b = Broker::with_options(Arc::new(vault), &BTreeMap::new(), options).unwrap();
        (dir, b)
    }

    #[test]
    fn refresh_margin_is_a_minute_or_a_tenth_of_the_lifetime() {
        let (_dir, b) = broker(0);
        let now = b.now();
        assert!(b.fresh(None, None));
        assert!(b.fresh(Some(now + 61), None));
        assert!(!b.fresh(Some(now + 60), None));
        assert!(!b.fresh(Some(now - 5), None));
        // A 10-hour token is refreshed with an hour left.
        let issued = now - 9 * 3600;
        assert!(!b.fresh(Some(now + 3600), Some(issued)));
        assert!(b.fresh(Some(now + 3601), Some(issued - 1)));
        // A token issued with less than the margin is never fresh.
        assert!(!b.fresh(Some(now + 30), Some(now)));
        // Expiry far in the future or at the epoch does not overflow.
        assert!(b.fresh(Some(u64::MAX), Some(0)));
        assert!(!b.fresh(Some(0), Some(u64::MAX)));
    }

    #[test]
    fn clock_skew_moves_the_refresh_point() {
        let (_dir, ahead) = broker(120);
        let (_dir2, behind) = broker(-120);
        let real = behind.now() + 120;
        // 150 s left by the real clock: fresh for a clock behind, due for a
        // clock ahead (only 30 s left by its reckoning).
        assert!(behind.fresh(Some(real + 150), None));
        assert!(!ahead.fresh(Some(real + 150), None));
    }

    /// A record valid for an hour from `now`, with no refresh token.
    fn cached_record(now: u64, scopes: &[&str]) -> TokenRecord {
        TokenRecord {
            access_token: Secret::new(b"cached-token-0123456789".to_vec()).unwrap(),
            refresh_token: None,
            expires_at: Some(now + 3600),
            issued_at: Some(now),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            version: 0,
        }
    }

    #[tokio::test]
    async fn fresh_tokens_are_served_from_memory() {
        let (dir, b) = broker(0);
        b.vault()
            .put("alice", "demo", cached_record(b.now(), &["read"]))
            .unwrap();
        let scopes = vec!["read".to_string()];
        assert!(matches!(
            b.token("alice", "demo", &scopes).await.unwrap(),
            TokenOutcome::Token(_)
        ));

        // With the vault file garbled in place (same size, time and inode,
        // so the watcher sees no change), only memory can answer.
        let path = dir.path().join("vault.json");
        let meta = std::fs::metadata(&path).unwrap();
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        std::io::Write::write_all(&mut &file, &vec![b'x'; meta.len() as usize]).unwrap();
        file.set_modified(meta.modified().unwrap()).unwrap();
        drop(file);
        assert!(b.vault().get("alice", "demo").is_err());
        let started = std::time::Instant::now();
        let n = 100_000;
        for _ in 0..n {
            match b.token("alice", "demo", &scopes).await.unwrap() {
                TokenOutcome::Token(t) => assert_eq!(t.len(), 23),
                other => panic!("expected the cached token, got {other:?}"),
            }
        }
        eprintln!("cached lookup: {:?} each", started.elapsed() / n);

        // A scope the cached token lacks goes to the vault, which fails.
        assert!(b.token("alice", "demo", &["write".into()]).await.is_err());
    }

    #[tokio::test]
    async fn a_record_removed_by_another_process_leaves_the_cache_within_a_second() {
        let (dir, b) = broker(0);
        b.vault()
            .put("alice", "demo", cached_record(b.now(), &[]))
            .unwrap();
        assert!(matches!(
            b.token("alice", "demo", &[]).await.unwrap(),
            TokenOutcome::Token(_)
        ));

        // Another handle on the same directory stands for another process.
        let other = LocalVault::open(dir.path(), &KeySource::File(dir.path().join("k"))).unwrap();
        assert!(other.remove("alice", "demo").unwrap());
        tokio::time::sleep(cache::WATCH_INTERVAL * 3).await;
        match b.token("alice", "demo", &[]).await.unwrap() {
            TokenOutcome::AuthorizationRequired(r) => assert_eq!(r.reason, "not_linked"),
            other => panic!("a removed record was still served: {other:?}"),
        }
    }

    #[tokio::test]
    async fn connection_without_provider_cannot_start_consent() {
        let (_dir, b) = broker(0);
        let err = b.begin_consent("alice", "github", &[]).await.unwrap_err();
        assert!(err.to_string().contains("no OAuth provider"), "{err}");
        assert!(b.consent_url("alice", "github", &[]).is_none());
    }
}
