//! Redactors kept between requests.
//!
//! Building the automaton that finds every encoding of a token costs
//! hundreds of microseconds, more than the rest of a request; a token is
//! used for many requests. The cache keeps, per (user, connection), the
//! token it was built for and reuses the redactor only while the broker
//! hands out that same token; a refreshed token gets a new one.

use super::guard::Redactor;
use crate::secret::Secret;
use std::collections::HashMap;
use std::sync::Mutex;

/// Most (user, connection) pairs kept; past it, one entry is dropped per
/// new one. Each redactor holds a few tens of KiB.
pub const MAX_REDACTORS: usize = 256;

/// Redactors by (user, connection), each with the token it finds.
#[derive(Default)]
pub struct Redactors {
    by_link: Mutex<HashMap<(String, String), (Secret, Redactor)>>,
}

impl Redactors {
    /// The redactor for `secret`, the token of `user` for `connection`.
    pub fn get(&self, user: &str, connection: &str, secret: &Secret) -> Redactor {
        let key = (user.to_string(), connection.to_string());
        if let Some((cached, redactor)) = self.lock().get(&key)
            && cached == secret
        {
            return redactor.clone();
        }

        let redactor = Redactor::new(&[secret]);
        let mut map = self.lock();
        if map.len() >= MAX_REDACTORS && !map.contains_key(&key) {
            let evict = map.keys().next().cloned();
            if let Some(evict) = evict {
                map.remove(&evict);
            }
        }
        map.insert(key, (secret.clone(), redactor.clone()));
        redactor
    }

    /// Number of redactors kept.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), (Secret, Redactor)>> {
        self.by_link.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(s: &str) -> Secret {
        Secret::new(s.as_bytes().to_vec()).unwrap()
    }

    #[test]
    fn a_new_token_gets_a_redactor_that_finds_it() {
        let cache = Redactors::default();
        let old = secret("first-token-0123456789abcdef");
        let new = secret("second-token-0123456789abcdef");
        cache.get("alice", "github", &old);

        let redactor = cache.get("alice", "github", &new);
        let (_, found) = redactor.redact(b"x second-token-0123456789abcdef y");
        assert_eq!(found, 1, "the redactor of the old token was reused");
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn the_same_token_reuses_its_redactor() {
        let cache = Redactors::default();
        let token = secret("some-token-0123456789abcdef");
        cache.get("alice", "github", &token);
        cache.get("alice", "github", &token);
        cache.get("bob", "github", &token);
        assert_eq!(cache.len(), 2);
        let (_, found) = cache
            .get("alice", "github", &token)
            .redact(b"some-token-0123456789abcdef");
        assert_eq!(found, 1);
    }

    #[test]
    fn the_cache_is_bounded() {
        let cache = Redactors::default();
        let token = secret("some-token-0123456789abcdef");
        for i in 0..MAX_REDACTORS + 5 {
            cache.get(&format!("user{i}"), "github", &token);
        }
        assert_eq!(cache.len(), MAX_REDACTORS);
    }
}
