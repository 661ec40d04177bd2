//! Who is calling over HTTP, and for which user.
//!
//! Every request carries `Authorization: Bearer <credential>`. A credential
//! shaped like a JWT (three dot-separated parts) is validated as an OIDC
//! access token when `[callers.oidc]` is configured; anything else is looked
//! up as an API key. API keys are stored only as their sha256: a key is
//! random and long, so a fast hash is enough, and the comparison takes the
//! same time whatever the stored hashes are.
//!
//! The user a request acts for comes from the [`USER_HEADER`] header, or,
//! when it is absent, from the credential itself: an OIDC token acts for
//! its `sub`, an API key listing exactly one user acts for that user. A
//! request naming a user the credential may not act for is refused.

use super::oidc::{OidcVerifier, TokenError};
use crate::manifest::{CallersConfig, UserSet};
use sha2::{Digest as _, Sha256};

/// Header naming the user a request acts for.
pub const USER_HEADER: &str = "airlock-user";

/// The credentials the server accepts.
#[derive(Debug)]
pub struct Callers {
    keys: Vec<ApiKey>,
    oidc: Option<OidcVerifier>,
}

#[derive(Debug)]
struct ApiKey {
    name: String,
    sha256: [u8; 32],
    users: UserSet,
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The caller as audited: `key:<name>` or `oidc:<client>`.
    pub caller: String,
    users: Entitlement,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Entitlement {
    Users(UserSet),
    Subject(String),
}

/// A caller and the user it acts for in one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acting {
    /// The caller, as audited.
    pub caller: String,
    /// The user.
    pub user: String,
}

/// Why a request was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// No `Authorization: Bearer` header.
    #[error("missing credentials: send Authorization: Bearer <api key or access token>")]
    Missing,
    /// The API key is not configured.
    #[error("unknown api key")]
    UnknownKey,
    /// The access token is invalid.
    #[error("invalid access token: {0}")]
    InvalidToken(#[from] TokenError),
    /// The credential may not act for the requested user.
    #[error("caller {caller:?} may not act for user {user:?}")]
    NotEntitled {
        /// The caller.
        caller: String,
        /// The requested user.
        user: String,
    },
    /// The credential may act for several users and the request names none.
    #[error("caller {0:?} may act for several users: name one in the airlock-user header")]
    NoUser(String),
    /// The user header is not a valid user name.
    #[error("invalid user in the airlock-user header: {0}")]
    InvalidUser(String),
}

impl AuthError {
    /// The reason code counted in metrics and returned to the caller.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::Missing => "missing_credentials",
            AuthError::UnknownKey => "unknown_key",
            AuthError::InvalidToken(_) => "invalid_token",
            AuthError::NotEntitled { .. } => "not_entitled",
            AuthError::NoUser(_) => "no_user",
            AuthError::InvalidUser(_) => "invalid_user",
        }
    }

    /// The HTTP status of the refusal.
    pub fn status(&self) -> http::StatusCode {
        match self {
            AuthError::Missing | AuthError::UnknownKey | AuthError::InvalidToken(_) => {
                http::StatusCode::UNAUTHORIZED
            }
            AuthError::NotEntitled { .. } => http::StatusCode::FORBIDDEN,
            AuthError::NoUser(_) | AuthError::InvalidUser(_) => http::StatusCode::BAD_REQUEST,
        }
    }
}

impl Callers {
    /// The callers of `config`.
    pub fn from_config(config: &CallersConfig) -> Callers {
        Callers {
            keys: config
                .keys
                .iter()
                .map(|(name, key)| ApiKey {
                    name: name.clone(),
                    sha256: key.sha256,
                    users: key.users.clone(),
                })
                .collect(),
            oidc: config.oidc.clone().map(OidcVerifier::new),
        }
    }

    /// Whether no credential at all is accepted.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty() && self.oidc.is_none()
    }

    /// Authenticates the credential in `headers`.
    pub async fn authenticate(&self, headers: &http::HeaderMap) -> Result<Principal, AuthError> {
        let credential = bearer(headers).ok_or(AuthError::Missing)?;
        if let Some(oidc) = &self.oidc
            && looks_like_jwt(credential)
        {
            let verified = oidc.verify(credential).await?;
            let client = verified.client.as_deref().unwrap_or("unknown");
            return Ok(Principal {
                caller: format!("oidc:{client}"),
                users: Entitlement::Subject(verified.subject),
            });
        }

        let digest: [u8; 32] = Sha256::digest(credential.as_bytes()).into();
        // Compare with every key, without stopping early, so the time taken
        // does not depend on which stored hash shares a prefix with it.
        let mut found = None;
        for key in &self.keys {
            if constant_time_eq(&key.sha256, &digest) {
                found = Some(key);
            }
        }
        let key = found.ok_or(AuthError::UnknownKey)?;
        Ok(Principal {
            caller: format!("key:{}", key.name),
            users: Entitlement::Users(key.users.clone()),
        })
    }
}

impl Principal {
    /// The user this caller acts for in a request that names `requested`
    /// (the [`USER_HEADER`] value), or is refused.
    pub fn act_for(&self, requested: Option<&str>) -> Result<Acting, AuthError> {
        if let Some(user) = requested {
            crate::vault::check_name("user", user)
                .map_err(|e| AuthError::InvalidUser(e.to_string()))?;
        }
        let user = match (&self.users, requested) {
            (Entitlement::Subject(sub), None) => sub.clone(),
            (Entitlement::Subject(sub), Some(user)) if sub == user => sub.clone(),
            (Entitlement::Users(set), Some(user)) if set.contains(user) => user.to_string(),
            (Entitlement::Users(UserSet::Only(users)), None) if users.len() == 1 => {
                users[0].clone()
            }
            (Entitlement::Users(_), None) => return Err(AuthError::NoUser(self.caller.clone())),
            (_, Some(user)) => {
                return Err(AuthError::NotEntitled {
                    caller: self.caller.clone(),
                    user: user.to_string(),
                });
            }
        };
        Ok(Acting {
            caller: self.caller.clone(),
            user,
        })
    }
}

/// The credential of an `Authorization: Bearer` header.
fn bearer(headers: &http::HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, credential) = value.split_once(' ')?;
    let credential = credential.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !credential.is_empty()).then_some(credential)
}

fn looks_like_jwt(credential: &str) -> bool {
    credential.split('.').count() == 3
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::ApiKeyConfig;

    fn callers(keys: &[(&str, &str, UserSet)]) -> Callers {
        let mut config = CallersConfig::default();
        for (name, secret, users) in keys {
            config.keys.insert(
                name.to_string(),
                ApiKeyConfig {
                    sha256: Sha256::digest(secret.as_bytes()).into(),
                    users: users.clone(),
                },
            );
        }
        Callers::from_config(&config)
    }

    fn headers(bearer: &str) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        h.insert(
            http::header::AUTHORIZATION,
            format!("Bearer {bearer}").parse().unwrap(),
        );
        h
    }

    fn only(users: &[&str]) -> UserSet {
        UserSet::Only(users.iter().map(|u| u.to_string()).collect())
    }

    #[tokio::test]
    async fn api_key_acts_only_for_its_users() {
        let c = callers(&[("agent", "k-alice", only(&["alice"]))]);
        let p = c.authenticate(&headers("k-alice")).await.unwrap();
        assert_eq!(p.caller, "key:agent");
        assert_eq!(p.act_for(None).unwrap().user, "alice");
        assert_eq!(p.act_for(Some("alice")).unwrap().user, "alice");
        let err = p.act_for(Some("bob")).unwrap_err();
        assert_eq!(err.code(), "not_entitled");
        assert_eq!(err.status(), http::StatusCode::FORBIDDEN);
        assert!(err.to_string().contains("\"bob\""), "{err}");
    }

    #[tokio::test]
    async fn key_for_several_users_must_name_one() {
        let c = callers(&[("multi", "k", only(&["alice", "bob"]))]);
        let p = c.authenticate(&headers("k")).await.unwrap();
        assert_eq!(p.act_for(None).unwrap_err().code(), "no_user");
        assert_eq!(p.act_for(Some("bob")).unwrap().user, "bob");
        let any = callers(&[("any", "k", UserSet::Any)]);
        let p = any.authenticate(&headers("k")).await.unwrap();
        assert_eq!(p.act_for(Some("carol")).unwrap().user, "carol");
        assert_eq!(p.act_for(None).unwrap_err().code(), "no_user");
    }

    #[tokio::test]
    async fn unknown_or_missing_credentials_are_refused() {
        let c = callers(&[("agent", "k-alice", only(&["alice"]))]);
        let err = c.authenticate(&headers("k-alicf")).await.unwrap_err();
        assert_eq!(err.code(), "unknown_key");
        assert_eq!(err.status(), http::StatusCode::UNAUTHORIZED);
        let err = c.authenticate(&http::HeaderMap::new()).await.unwrap_err();
        assert_eq!(err.code(), "missing_credentials");
        let mut basic = http::HeaderMap::new();
        basic.insert(
            http::header::AUTHORIZATION,
            "Basic k-alice".parse().unwrap(),
        );
        assert!(c.authenticate(&basic).await.is_err());
    }

    #[tokio::test]
    async fn invalid_user_header_is_refused_before_entitlement() {
        let c = callers(&[("any", "k", UserSet::Any)]);
        let p = c.authenticate(&headers("k")).await.unwrap();
        let err = p.act_for(Some("../bob")).unwrap_err();
        assert_eq!(err.code(), "invalid_user");
    }

    #[test]
    fn oidc_subject_acts_only_for_itself() {
        let p = Principal {
            caller: "oidc:agent".into(),
            users: Entitlement::Subject("alice".into()),
        };
        assert_eq!(p.act_for(None).unwrap().user, "alice");
        assert_eq!(p.act_for(Some("bob")).unwrap_err().code(), "not_entitled");
    }
}
