//! OIDC access tokens: JWTs signed by the issuer's keys, validated against
//! its JWKS, with the user taken from `sub`.
//!
//! A token is accepted only when all of these hold: it is a JWS signed with
//! an asymmetric algorithm (RSA, RSA-PSS, ECDSA or EdDSA; never `none` or an
//! HMAC, so a public key can never be used as a shared secret); its `kid`
//! names a signing key of the issuer whose type, curve and declared `alg`
//! agree with the token's `alg`; the signature verifies; `iss` is the
//! configured issuer; `aud` contains the configured audience; `exp` is in
//! the future and `nbf`, if present, in the past (both with the configured
//! leeway); and `sub` is a valid user name.
//!
//! The key set is fetched on first use (from `jwks_url`, or the `jwks_uri`
//! of the issuer's discovery document), kept for [`KEYS_TTL`], and fetched
//! again early when a token names a key the set lacks, at most once per
//! [`REFETCH_INTERVAL`], so a stream of tokens with made-up key ids cannot
//! make the host hammer the issuer.

use super::fetch::{FetchError, get_json};
use crate::manifest::OidcConfig;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, errors::ErrorKind};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// How long a fetched key set is used before it is fetched again.
pub const KEYS_TTL: Duration = Duration::from_secs(600);

/// Shortest time between two fetches of the key set.
pub const REFETCH_INTERVAL: Duration = Duration::from_secs(30);

/// Longest wait for the issuer, and the largest document accepted.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_DOCUMENT_BYTES: usize = 512 << 10;

/// Validates access tokens of one issuer.
#[derive(Debug)]
pub(crate) struct OidcVerifier {
    config: OidcConfig,
    keys: Mutex<KeyCache>,
}

#[derive(Debug, Default)]
struct KeyCache {
    keys: Vec<Jwk>,
    fetched: Option<Instant>,
}

/// Who a valid token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Verified {
    /// The user: the token's `sub`.
    pub subject: String,
    /// The client the token was issued to (`azp` or `client_id`), if named.
    pub client: Option<String>,
}

/// Why a token was refused. Messages name the failed check, never the token.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Not a JWS in compact form.
    #[error("malformed token")]
    Malformed,
    /// The `alg` is not an accepted asymmetric algorithm.
    #[error("algorithm {0} is not accepted")]
    Algorithm(String),
    /// No signing key of the issuer has the token's `kid`.
    #[error("no signing key {0:?} at the issuer")]
    UnknownKey(String),
    /// The key with that `kid` is not for this algorithm.
    #[error("key {0:?} does not fit the token's algorithm")]
    KeyMismatch(String),
    /// The signature does not verify.
    #[error("bad signature")]
    Signature,
    /// `exp` has passed.
    #[error("token expired")]
    Expired,
    /// `nbf` is in the future.
    #[error("token not yet valid")]
    NotYetValid,
    /// `iss` is not the configured issuer.
    #[error("wrong issuer")]
    Issuer,
    /// `aud` does not contain the configured audience.
    #[error("wrong audience")]
    Audience,
    /// A required claim is missing.
    #[error("missing claim {0}")]
    MissingClaim(String),
    /// `sub` is not a valid user name.
    #[error("sub is not a valid user name")]
    Subject,
    /// The issuer's keys could not be fetched.
    #[error("signing keys unavailable: {0}")]
    Keys(String),
}

#[derive(serde::Deserialize)]
struct Claims {
    sub: String,
    #[serde(default)]
    azp: Option<String>,
    #[serde(default)]
    client_id: Option<String>,
}

impl OidcVerifier {
    /// A verifier for `config`; nothing is fetched until the first token.
    pub(crate) fn new(config: OidcConfig) -> OidcVerifier {
        OidcVerifier {
            config,
            keys: Mutex::new(KeyCache::default()),
        }
    }

    /// Checks `token` and returns who it speaks for.
    pub(crate) async fn verify(&self, token: &str) -> Result<Verified, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        let alg = header.alg;
        if !is_asymmetric(alg) {
            return Err(TokenError::Algorithm(format!("{alg:?}")));
        }
        let kid = header.kid.unwrap_or_default();
        let jwk = self.key(&kid).await?;
        if !fits(&jwk, alg) {
            return Err(TokenError::KeyMismatch(kid));
        }
        let key = DecodingKey::from_jwk(&jwk).map_err(|_| TokenError::KeyMismatch(kid))?;

        let mut validation = Validation::new(alg);
        validation.leeway = self.config.leeway_secs;
        validation.validate_nbf = true;
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_audience(&[&self.config.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let data = jsonwebtoken::decode::<Claims>(token, &key, &validation).map_err(|e| match e
            .into_kind()
        {
            ErrorKind::InvalidSignature | ErrorKind::Crypto(_) => TokenError::Signature,
            ErrorKind::ExpiredSignature => TokenError::Expired,
            ErrorKind::ImmatureSignature => TokenError::NotYetValid,
            ErrorKind::InvalidIssuer => TokenError::Issuer,
            ErrorKind::InvalidAudience => TokenError::Audience,
            ErrorKind::MissingRequiredClaim(claim) => TokenError::MissingClaim(claim),
            ErrorKind::InvalidAlgorithm => TokenError::KeyMismatch(String::new()),
            _ => TokenError::Malformed,
        })?;

        let claims = data.claims;
        crate::vault::check_name("user", &claims.sub).map_err(|_| TokenError::Subject)?;
        Ok(Verified {
            subject: claims.sub,
            client: claims.azp.or(claims.client_id),
        })
    }

    /// The issuer's key with id `kid` (or its only key, for tokens without
    /// one), fetching the set when it is stale or lacks the key.
    async fn key(&self, kid: &str) -> Result<Jwk, TokenError> {
        let mut cache = self.keys.lock().await;
        let stale = cache.fetched.is_none_or(|t| t.elapsed() > KEYS_TTL);
        if !stale && let Some(key) = find(&cache.keys, kid) {
            return Ok(key);
        }
        let may_fetch = cache.fetched.is_none_or(|t| t.elapsed() > REFETCH_INTERVAL);
        if stale || may_fetch {
            match self.fetch_keys().await {
                Ok(keys) => {
                    cache.keys = keys;
                    cache.fetched = Some(Instant::now());
                }
                // Keep using the keys we have if the issuer is briefly
                // unreachable; with none, nothing can be verified.
                Err(err) if cache.keys.is_empty() => return Err(TokenError::Keys(err.to_string())),
                Err(err) => tracing::warn!(%err, "refreshing the issuer's signing keys failed"),
            }
        }
        find(&cache.keys, kid).ok_or_else(|| TokenError::UnknownKey(kid.to_string()))
    }

    async fn fetch_keys(&self) -> Result<Vec<Jwk>, FetchError> {
        let jwks_url = match &self.config.jwks_url {
            Some(url) => url.clone(),
            None => self.discover().await?,
        };
        let document = get_json(&jwks_url, FETCH_TIMEOUT, MAX_DOCUMENT_BYTES).await?;
        // Keys of types this host cannot use are skipped, not fatal: an
        // issuer may publish them beside the ones that sign its tokens.
        let keys: Vec<Jwk> = document
            .get("keys")
            .and_then(|k| k.as_array())
            .map(|keys| {
                keys.iter()
                    .filter_map(|k| serde_json::from_value::<Jwk>(k.clone()).ok())
                    .filter(|k| !matches!(k.algorithm, AlgorithmParameters::OctetKey(_)))
                    .filter(|k| !matches!(k.common.public_key_use, Some(ref u) if *u != PublicKeyUse::Signature))
                    .collect()
            })
            .unwrap_or_default();
        tracing::info!(url = %jwks_url, keys = keys.len(), "fetched the issuer's signing keys");
        Ok(keys)
    }

    /// The `jwks_uri` of the issuer's discovery document, which must name
    /// the same issuer.
    async fn discover(&self) -> Result<http::Uri, FetchError> {
        let issuer = self.config.issuer.trim_end_matches('/');
        let url: http::Uri = format!("{issuer}/.well-known/openid-configuration")
            .parse()
            .map_err(|_| FetchError::Url(issuer.to_string()))?;
        let document = get_json(&url, FETCH_TIMEOUT, MAX_DOCUMENT_BYTES).await?;
        let bad = |reason: &str| FetchError::Body {
            url: url.to_string(),
            reason: reason.to_string(),
        };
        let named = document
            .get("issuer")
            .and_then(|i| i.as_str())
            .unwrap_or("");
        if named.trim_end_matches('/') != issuer {
            return Err(bad("the discovery document names another issuer"));
        }
        let jwks = document
            .get("jwks_uri")
            .and_then(|j| j.as_str())
            .ok_or_else(|| bad("no jwks_uri"))?;
        let jwks: http::Uri = jwks.parse().map_err(|_| bad("jwks_uri is not a URL"))?;
        // The keys must travel as safely as the discovery document did.
        if jwks.scheme_str() != Some("https") && url.scheme_str() == Some("https") {
            return Err(bad("jwks_uri is not https"));
        }
        Ok(jwks)
    }
}

fn find(keys: &[Jwk], kid: &str) -> Option<Jwk> {
    if kid.is_empty() {
        return match keys {
            [only] => Some(only.clone()),
            _ => None,
        };
    }
    keys.iter()
        .find(|k| k.common.key_id.as_deref() == Some(kid))
        .cloned()
}

fn is_asymmetric(alg: Algorithm) -> bool {
    !matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)
}

/// Whether `jwk` may verify a token signed with `alg`.
fn fits(jwk: &Jwk, alg: Algorithm) -> bool {
    if let Some(declared) = jwk.common.key_algorithm
        && format!("{declared:?}") != format!("{alg:?}")
    {
        return false;
    }
    match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => matches!(
            alg,
            Algorithm::RS256
                | Algorithm::RS384
                | Algorithm::RS512
                | Algorithm::PS256
                | Algorithm::PS384
                | Algorithm::PS512
        ),
        AlgorithmParameters::EllipticCurve(ec) => matches!(
            (&ec.curve, alg),
            (EllipticCurve::P256, Algorithm::ES256) | (EllipticCurve::P384, Algorithm::ES384)
        ),
        AlgorithmParameters::OctetKeyPair(okp) => {
            okp.curve == EllipticCurve::Ed25519 && alg == Algorithm::EdDSA
        }
        AlgorithmParameters::OctetKey(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use jsonwebtoken::{EncodingKey, Header};
    use ring::signature::{self, KeyPair as _};
    use serde_json::{Value, json};

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    /// A P-256 key: its signing key and public JWK.
    fn es256(kid: &str) -> (EncodingKey, Value) {
        let rng = ring::rand::SystemRandom::new();
        let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
        let pkcs8 = signature::EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
        let pair = signature::EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap();
        let point = pair.public_key().as_ref();
        let jwk = json!({ "kty": "EC", "crv": "P-256", "alg": "ES256", "kid": kid,
                          "x": b64(&point[1..33]), "y": b64(&point[33..65]) });
        (EncodingKey::from_ec_der(pkcs8.as_ref()), jwk)
    }

    /// An Ed25519 key: its signing key and public JWK.
    fn ed25519(kid: &str) -> (EncodingKey, Value) {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let pair = signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let jwk = json!({ "kty": "OKP", "crv": "Ed25519", "kid": kid,
                          "x": b64(pair.public_key().as_ref()) });
        (EncodingKey::from_ed_der(pkcs8.as_ref()), jwk)
    }

    /// Serves `jwks` (and a discovery document) on loopback; returns the
    /// issuer URL and a count of key set fetches.
    async fn issuer(jwks: Value) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let fetches = std::sync::Arc::new(AtomicUsize::new(0));
        let counter = fetches.clone();
        let discovery = json!({ "issuer": url, "jwks_uri": format!("{url}/keys") });
        let app = axum::Router::new()
            .route(
                "/.well-known/openid-configuration",
                axum::routing::get(move || async move { axum::Json(discovery) }),
            )
            .route(
                "/keys",
                axum::routing::get(move || {
                    counter.fetch_add(1, Ordering::SeqCst);
                    let jwks = jwks.clone();
                    async move { axum::Json(jwks) }
                }),
            );
        tokio::spawn(async move { axum::serve(listener, app).await });
        (url, fetches)
    }

    fn verifier(issuer: &str) -> OidcVerifier {
        OidcVerifier::new(OidcConfig {
            issuer: issuer.into(),
            audience: "airlock".into(),
            jwks_url: None,
            leeway_secs: 5,
        })
    }

    fn claims(issuer: &str, overrides: Value) -> Value {
        let now = jsonwebtoken::get_current_timestamp();
        let mut c = json!({ "iss": issuer, "aud": ["airlock", "other"], "sub": "alice",
                            "client_id": "runtime-1", "exp": now + 60 });
        for (k, v) in overrides.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    }

    fn sign(key: &EncodingKey, alg: Algorithm, kid: &str, claims: &Value) -> String {
        let mut header = Header::new(alg);
        header.kid = Some(kid.into());
        jsonwebtoken::encode(&header, claims, key).unwrap()
    }

    #[tokio::test]
    async fn valid_tokens_of_discovered_keys_verify() {
        let (ec, ec_jwk) = es256("ec");
        let (ed, ed_jwk) = ed25519("ed");
        let (url, _) = issuer(json!({ "keys": [ec_jwk, ed_jwk] })).await;
        let v = verifier(&url);
        let ok = v
            .verify(&sign(&ec, Algorithm::ES256, "ec", &claims(&url, json!({}))))
            .await
            .unwrap();
        assert_eq!(ok.subject, "alice");
        assert_eq!(ok.client.as_deref(), Some("runtime-1"));
        let ok = v
            .verify(&sign(
                &ed,
                Algorithm::EdDSA,
                "ed",
                &claims(&url, json!({"sub": "bob"})),
            ))
            .await
            .unwrap();
        assert_eq!(ok.subject, "bob");
    }

    #[tokio::test]
    async fn each_failed_check_is_named() {
        let (key, jwk) = es256("k1");
        let (other, _) = es256("k1");
        let (url, _) = issuer(json!({ "keys": [jwk] })).await;
        let v = verifier(&url);
        let now = jsonwebtoken::get_current_timestamp();
        let cases = [
            (
                sign(&other, Algorithm::ES256, "k1", &claims(&url, json!({}))),
                "bad signature",
            ),
            (
                sign(
                    &key,
                    Algorithm::ES256,
                    "k1",
                    &claims(&url, json!({"exp": now - 60})),
                ),
                "token expired",
            ),
            (
                sign(
                    &key,
                    Algorithm::ES256,
                    "k1",
                    &claims(&url, json!({"nbf": now + 60})),
                ),
                "token not yet valid",
            ),
            (
                sign(
                    &key,
                    Algorithm::ES256,
                    "k1",
                    &claims(&url, json!({"aud": "airlock2"})),
                ),
                "wrong audience",
            ),
            (
                sign(
                    &key,
                    Algorithm::ES256,
                    "k1",
                    &claims("https://evil", json!({})),
                ),
                "wrong issuer",
            ),
            (
                sign(&key, Algorithm::ES256, "k2", &claims(&url, json!({}))),
                "no signing key \"k2\"",
            ),
            (
                sign(
                    &key,
                    Algorithm::ES256,
                    "k1",
                    &claims(&url, json!({"sub": "a/b"})),
                ),
                "sub is not a valid user name",
            ),
            ("not.a.jwt".to_string(), "malformed token"),
        ];
        for (token, expected) in cases {
            let err = v.verify(&token).await.unwrap_err().to_string();
            assert!(err.contains(expected), "{expected}: {err}");
        }
    }

    #[tokio::test]
    async fn public_key_is_never_an_hmac_secret_and_none_is_refused() {
        let (_, jwk) = es256("k1");
        let (url, _) = issuer(json!({ "keys": [jwk.clone()] })).await;
        let v = verifier(&url);
        let c = claims(&url, json!({}));
        // HS256 keyed with the published key material.
        let secret = EncodingKey::from_secret(jwk["x"].as_str().unwrap().as_bytes());
        let err = v
            .verify(&sign(&secret, Algorithm::HS256, "k1", &c))
            .await
            .unwrap_err();
        assert!(matches!(err, TokenError::Algorithm(_)), "{err}");
        // alg none: the header parser of the library refuses it outright.
        let none = format!(
            "{}.{}.",
            b64(br#"{"alg":"none","kid":"k1"}"#),
            b64(c.to_string().as_bytes())
        );
        assert!(v.verify(&none).await.is_err());
        // An ES384 token against a P-256 key.
        let (key, _) = es256("k1");
        let mut header = Header::new(Algorithm::ES384);
        header.kid = Some("k1".into());
        let forged = format!(
            "{}.{}.{}",
            b64(serde_json::to_string(&header).unwrap().as_bytes()),
            b64(c.to_string().as_bytes()),
            sign(&key, Algorithm::ES256, "k1", &c)
                .rsplit('.')
                .next()
                .unwrap()
        );
        let err = v.verify(&forged).await.unwrap_err();
        assert!(matches!(err, TokenError::KeyMismatch(_)), "{err}");
    }

    #[tokio::test]
    async fn unknown_key_ids_do_not_hammer_the_issuer() {
        let (key, jwk) = es256("k1");
        let (url, fetches) = issuer(json!({ "keys": [jwk] })).await;
        let v = verifier(&url);
        v.verify(&sign(
            &key,
            Algorithm::ES256,
            "k1",
            &claims(&url, json!({})),
        ))
        .await
        .unwrap();
        for i in 0..20 {
            let token = sign(
                &key,
                Algorithm::ES256,
                &format!("made-up-{i}"),
                &claims(&url, json!({})),
            );
            assert!(matches!(
                v.verify(&token).await,
                Err(TokenError::UnknownKey(_))
            ));
        }
        assert_eq!(fetches.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn unreachable_issuer_is_a_key_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let (key, _) = es256("k1");
        let err = verifier(&url)
            .verify(&sign(
                &key,
                Algorithm::ES256,
                "k1",
                &claims(&url, json!({})),
            ))
            .await
            .unwrap_err();
        assert!(matches!(err, TokenError::Keys(_)), "{err}");
    }
}
