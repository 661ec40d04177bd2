//! Fresh access tokens kept in memory, so that a lookup for a token that is
//! still fresh neither reads nor decrypts the vault.
//!
//! Entries are keyed by user, then connection, so a lookup borrows the
//! caller's strings and allocates nothing but the returned copy. An entry is
//! served only while it is fresh by the same rule the vault path uses; a
//! stale entry is simply passed over and replaced by the next slow lookup.
//!
//! Another process may remove or replace a record (`airlock vault revoke`
//! while a server runs). A watcher thread per broker ([`watch`]) looks at
//! the vault file once every [`WATCH_INTERVAL`] and empties the cache when
//! the file changed, so such a change reaches this process within about a
//! second without costing the lookup itself anything.

use crate::secret::Secret;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{RwLock, Weak};
use std::time::{Duration, SystemTime};

/// How often the watcher looks at the vault file.
pub(super) const WATCH_INTERVAL: Duration = Duration::from_millis(500);

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

    /// Drops every entry.
    pub fn clear(&self) {
        self.users
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
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

/// Empties `cache` whenever `file` changes (size, modification time or
/// inode), until the cache is dropped.
pub(super) fn watch<T: Send + Sync + 'static>(
    owner: Weak<T>,
    cache: impl Fn(&T) -> &TokenCache + Send + 'static,
    file: PathBuf,
) {
    let stamp = move || {
        std::fs::metadata(&file).ok().map(|m| {
            #[cfg(unix)]
            let inode = std::os::unix::fs::MetadataExt::ino(&m);
            #[cfg(not(unix))]
            let inode = 0u64;
            (
                m.len(),
                m.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                inode,
            )
        })
    };
    let spawned = std::thread::Builder::new()
        .name("airlock-vault-watch".into())
        .spawn(move || {
            let mut last = stamp();
            loop {
                std::thread::sleep(WATCH_INTERVAL);
                let Some(owner) = owner.upgrade() else {
                    return;
                };
                let now = stamp();
                if now != last {
                    cache(&owner).clear();
                    last = now;
                }
            }
        });
    if let Err(err) = spawned {
        tracing::warn!(%err, "cannot watch the vault file; cached tokens follow only this process's changes");
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
