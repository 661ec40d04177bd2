//! Fresh access tokens kept in memory, so that a lookup for a token that is
//! still fresh neither reads nor decrypts the vault.
//!
//! Entries are keyed by user, then connection, so a lookup borrows the
//! caller's strings and allocates nothing but the returned copy. An entry is
//! served only while it is fresh by the same rule the vault path uses; a
//! stale entry is simply passed over and replaced by the next slow lookup.

use crate::secret::Secret;
use std::collections::HashMap;
use std::sync::RwLock;

/// One cached token.
#[derive(Debug, Clone)]
pub(super) struct Cached {
    pub token: Secret,
    pub expires_at: Option<u64>,
    pub issued_at: Option<u64>,
    pub scopes: Vec<String>,
    pub version: u64,
}

/// The cache of one broker.
#[derive(Debug, Default)]
pub(super) struct TokenCache {
    users: RwLock<HashMap<String, HashMap<String, Cached>>>,
}

impl TokenCache {
    /// The cached token of (user, connection) if it carries every scope in
    /// `scopes` and `fresh` accepts its expiry.
    pub fn get(
        &self,
        user: &str,
        connection: &str,
        scopes: &[String],
        fresh: impl Fn(Option<u64>, Option<u64>) -> bool,
    ) -> Option<Secret> {
        let users = self.users.read().unwrap_or_else(|e| e.into_inner());
        let entry = users.get(user)?.get(connection)?;
        if !fresh(entry.expires_at, entry.issued_at) {
            return None;
        }
        if !scopes.iter().all(|s| entry.scopes.contains(s)) {
            return None;
        }
        Some(entry.token.clone())
    }

    /// Stores `entry` unless a newer version is already cached.
    pub fn put(&self, user: &str, connection: &str, entry: Cached) {
        let mut users = self.users.write().unwrap_or_else(|e| e.into_inner());
        let slot = users.entry(user.to_string()).or_default();
        match slot.get(connection) {
            Some(old) if old.version > entry.version => {}
            _ => {
                slot.insert(connection.to_string(), entry);
            }
        }
    }

    /// Drops the entry of (user, connection); with `only`, only while it
    /// still holds that token.
    pub fn remove(&self, user: &str, connection: &str, only: Option<&Secret>) {
        let mut users = self.users.write().unwrap_or_else(|e| e.into_inner());
        if let Some(slot) = users.get_mut(user) {
            if only.is_none_or(|t| slot.get(connection).is_some_and(|e| e.token == *t)) {
                slot.remove(connection);
            }
            if slot.is_empty() {
                users.remove(user);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(token: &str, version: u64) -> Cached {
        Cached {
            token: Secret::new(token.as_bytes().to_vec()).unwrap(),
            expires_at: Some(1_000),
            issued_at: None,
            scopes: vec!["read".into()],
            version,
        }
    }

    #[test]
    fn serves_fresh_entries_with_the_scopes_asked_for() {
        let cache = TokenCache::default();
        cache.put("alice", "gh", entry("token-aaaaaaaaaaaaaaaa", 1));
        let fresh = |_: Option<u64>, _: Option<u64>| true;
        assert!(cache.get("alice", "gh", &["read".into()], fresh).is_some());
        assert!(cache.get("alice", "gh", &["write".into()], fresh).is_none());
        assert!(cache.get("bob", "gh", &[], fresh).is_none());
        assert!(cache.get("alice", "gh", &[], |_, _| false).is_none());
    }

    #[test]
    fn older_versions_do_not_replace_newer_ones() {
        let cache = TokenCache::default();
        cache.put("alice", "gh", entry("token-bbbbbbbbbbbbbbbb", 2));
        cache.put("alice", "gh", entry("token-aaaaaaaaaaaaaaaa", 1));
        let got = cache.get("alice", "gh", &[], |_, _| true).unwrap();
        assert_eq!(
            got,
            Secret::new(b"token-bbbbbbbbbbbbbbbb".to_vec()).unwrap()
        );
    }

    #[test]
    fn removal_of_a_specific_token_spares_a_newer_one() {
        let cache = TokenCache::default();
        cache.put("alice", "gh", entry("token-bbbbbbbbbbbbbbbb", 2));
        let old = Secret::new(b"token-aaaaaaaaaaaaaaaa".to_vec()).unwrap();
        cache.remove("alice", "gh", Some(&old));
        assert!(cache.get("alice", "gh", &[], |_, _| true).is_some());
        cache.remove("alice", "gh", None);
        assert!(cache.get("alice", "gh", &[], |_, _| true).is_none());
    }
}
