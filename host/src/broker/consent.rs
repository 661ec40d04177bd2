//! Linking an account: authorization code with PKCE (S256).
//!
//! [`Broker::begin_consent`] makes an authorization URL whose `state` is
//! bound to (user, connection), kept in memory, usable once and for
//! [`STATE_TTL`]; [`Broker::complete_consent`] takes it back with the code,
//! exchanges the code and stores the tokens.
//!
//! The consent URL in an authorization-required outcome points at this
//! host's `/consent/start` route instead. It is signed with a key derived
//! from the vault key, so it starts consent only for the user and
//! connection it was issued for, and only until it expires.

use super::{Broker, BrokerError, TokenRecordExt as _};
use crate::vault::{TokenRecord, check_name};
use hmac::Mac as _;
use oauth2::PkceCodeVerifier;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use url::Url;

/// How long a consent `state` stays usable.
pub const STATE_TTL: Duration = Duration::from_secs(600);

/// How long a signed `/consent/start` URL stays usable.
pub const LINK_TTL: Duration = Duration::from_secs(24 * 3600);

/// Pending consents kept at once; more are refused.
const MAX_PENDING: usize = 10_000;

/// Label of the key that signs consent start URLs.
pub(super) const LINK_KEY_LABEL: &str = "airlock-consent-link-v1";

/// A consent waiting for its callback.
pub(super) struct Pending {
    user: String,
    connection: String,
    verifier: PkceCodeVerifier,
    redirect: Url,
    scopes: Vec<String>,
    created: Instant,
}

/// Pending consents by state.
#[derive(Default)]
pub(super) struct ConsentStore {
    pending: Mutex<HashMap<String, Pending>>,
}

impl std::fmt::Debug for ConsentStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConsentStore")
    }
}

impl ConsentStore {
    fn insert(&self, state: String, pending: Pending) -> Result<(), BrokerError> {
        let mut map = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, p| p.created.elapsed() < STATE_TTL);
        if map.len() >= MAX_PENDING {
            return Err(BrokerError::Consent(format!(
                "{MAX_PENDING} consents are already pending; try again later"
            )));
        }
        map.insert(state, pending);
        Ok(())
    }

    pub(super) fn take(&self, state: &str) -> Option<Pending> {
        let mut map = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(state)
            .filter(|p| p.created.elapsed() < STATE_TTL)
    }
}

impl Broker {
    /// Starts linking `user`'s account for `connection`: returns the
    /// provider's authorization URL, asking for the connection's configured
    /// scopes plus `scopes`. The provider sends the user back to the
    /// connection's `redirect_url`, or to `consent_base_url` +
    /// `/consent/callback`.
    pub async fn begin_consent(
        &self,
        user: &str,
        connection: &str,
        scopes: &[String],
    ) -> Result<String, BrokerError> {
        let provider = self.provider(connection)?;
        let redirect = match (&provider.settings().redirect_url, &self.inner.consent_base) {
            (Some(url), _) => url.clone(),
            (None, Some(base)) => join(base, "consent/callback"),
            (None, None) => {
                return Err(BrokerError::Consent(format!(
                    "connection {connection:?} has no redirect URL: set host.consent_base_url or connections.{connection}.redirect_url"
                )));
            }
        };
        self.begin_consent_with_redirect(user, connection, scopes, &redirect)
            .await
    }

    /// Like [`Broker::begin_consent`], with the redirect URI given (the
    /// loopback listener of `airlock connect`).
    pub async fn begin_consent_with_redirect(
        &self,
        user: &str,
        connection: &str,
        scopes: &[String],
        redirect: &Url,
    ) -> Result<String, BrokerError> {
        check_name("user", user)?;
        let provider = self.provider(connection)?;
        let scopes = provider.consent_scopes(scopes);
        let (url, state, verifier) = provider
            .authorize_url(&self.inner.http, redirect, &scopes)
            .await?;
        self.inner.consent.insert(
            state.secret().clone(),
            Pending {
                user: user.to_string(),
                connection: connection.to_string(),
                verifier,
                redirect: redirect.clone(),
                scopes,
                created: Instant::now(),
            },
        )?;
        tracing::info!(user, connection, "airlock.broker.consent_started");
        Ok(url.to_string())
    }

    /// Finishes a consent: takes `state` (once), exchanges `code` and stores
    /// the tokens, replacing any earlier link. Returns (user, connection).
    pub async fn complete_consent(
        &self,
        state: &str,
        code: &str,
    ) -> Result<(String, String), BrokerError> {
        self.complete_consent_from(state, code, None).await
    }

    /// [`Broker::complete_consent`] with the callback's `iss` parameter
    /// (RFC 9207), checked against the issuer when the provider has one.
    pub async fn complete_consent_from(
        &self,
        state: &str,
        code: &str,
        iss: Option<&str>,
    ) -> Result<(String, String), BrokerError> {
        let pending = self.inner.consent.take(state).ok_or_else(|| {
            BrokerError::Consent("the consent state is unknown, already used or expired".into())
        })?;
        let provider = self.provider(&pending.connection)?;
        if let (Some(iss), Some(issuer)) = (iss, provider.issuer())
            && Url::parse(iss).ok().as_ref() != Some(issuer)
        {
            return Err(BrokerError::Consent(format!(
                "the callback names issuer {iss:?}, not {:?}",
                issuer.as_str()
            )));
        }

        let reply = provider
            .exchange(&self.inner.http, code, pending.verifier, &pending.redirect)
            .await
            .map_err(|failure| BrokerError::Provider {
                connection: pending.connection.clone(),
                detail: format!("code exchange failed: {failure}"),
            })?;
        let now = self.now();
        let record = TokenRecord {
            access_token: reply.access,
            refresh_token: reply.refresh,
            expires_at: reply.expires_in.map(|s| now.saturating_add(s)),
            issued_at: Some(now),
            scopes: provider.granted(&pending.scopes, reply.scopes),
            version: 0,
        };
        let (user, connection) = (pending.user, pending.connection);
        let stored = self.store(&user, &connection, None, record).await?;
        self.inner.cache.put(&user, &connection, stored.cached());
        tracing::info!(user = %user, connection = %connection, "airlock.broker.linked");
        Ok((user, connection))
    }

    /// The signed `/consent/start` URL for (user, connection), when the
    /// host has a consent base URL.
    pub fn consent_url(&self, user: &str, connection: &str, scopes: &[String]) -> Option<String> {
        let base = self.inner.consent_base.as_ref()?;
        self.inner.providers.get(connection)?;
        let expires = self.now() + LINK_TTL.as_secs();
        let scope = scopes.join(" ");
        let sig = self.sign_link(user, connection, &scope, expires);
        let mut url = join(base, "consent/start");
        url.query_pairs_mut()
            .append_pair("user", user)
            .append_pair("connection", connection)
            .append_pair("scope", &scope)
            .append_pair("expires", &expires.to_string())
            .append_pair("sig", &sig);
        Some(url.to_string())
    }

    /// Checks a `/consent/start` signature and expiry.
    pub(super) fn verify_link(
        &self,
        user: &str,
        connection: &str,
        scope: &str,
        expires: u64,
        sig: &str,
    ) -> bool {
        if expires < self.now() {
            return false;
        }
        let Ok(sig) = hex::decode(sig) else {
            return false;
        };
        self.link_mac(user, connection, scope, expires)
            .verify_slice(&sig)
            .is_ok()
    }

    fn sign_link(&self, user: &str, connection: &str, scope: &str, expires: u64) -> String {
        hex::encode(
            self.link_mac(user, connection, scope, expires)
                .finalize()
                .into_bytes(),
        )
    }

    fn link_mac(
        &self,
        user: &str,
        connection: &str,
        scope: &str,
        expires: u64,
    ) -> hmac::Hmac<sha2::Sha256> {
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&self.inner.link_key[..])
            .expect("HMAC takes a key of any length");
        for part in [user, connection, scope, &expires.to_string()] {
            mac.update(&(part.len() as u32).to_be_bytes());
            mac.update(part.as_bytes());
        }
        mac
    }
}

/// `base` with `path` appended to its path.
fn join(base: &Url, path: &str) -> Url {
    let mut url = base.clone();
    let joined = format!("{}/{path}", base.path().trim_end_matches('/'));
    url.set_path(&joined);
    url.set_query(None);
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(age: Duration) -> Pending {
        Pending {
            user: "alice".into(),
            connection: "demo".into(),
            verifier: PkceCodeVerifier::new("v".repeat(43)),
            redirect: Url::parse("http://127.0.0.1:9/consent/callback").unwrap(),
            scopes: vec![],
            created: Instant::now().checked_sub(age).unwrap(),
        }
    }

    #[test]
    fn a_state_is_taken_once_and_not_after_it_expires() {
        let store = ConsentStore::default();
        store
            .insert("fresh".into(), pending(Duration::ZERO))
            .unwrap();
        store
            .insert("old".into(), pending(STATE_TTL + Duration::from_secs(1)))
            .unwrap();
        let taken = store.take("fresh").unwrap();
        assert_eq!(
            (taken.user.as_str(), taken.connection.as_str()),
            ("alice", "demo")
        );
        assert!(store.take("fresh").is_none());
        assert!(store.take("old").is_none());
    }

    #[test]
    fn join_appends_to_the_base_path() {
        let base = Url::parse("https://airlock.example.com/tools/").unwrap();
        assert_eq!(
            join(&base, "consent/start").as_str(),
            "https://airlock.example.com/tools/consent/start"
        );
    }
}
