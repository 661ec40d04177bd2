//! Sealing a record's tokens, bound to the record's identity.

use super::{MasterKey, TokenRecord, VaultError};
use crate::secret::Secret;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use zeroize::Zeroizing;

const AAD_TAG: &[u8] = b"airlock-vault-record-v1";

/// The encrypted form of a record, as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealedRecord {
    pub user: String,
    pub connection: String,
    pub version: u64,
    pub expires_at: Option<u64>,
    /// Absent in records written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_at: Option<u64>,
    pub scopes: Vec<String>,
    pub refreshable: bool,
    /// 24 bytes, hex.
    pub nonce: String,
    /// Ciphertext with tag, hex.
    pub sealed: String,
}

/// Encrypts `record` for (user, connection).
pub fn seal(key: &MasterKey, user: &str, connection: &str, record: &TokenRecord) -> SealedRecord {
    let mut nonce = [0u8; 24];
    rand::fill(&mut nonce);
    let refreshable = record.refresh_token.is_some();
    let aad = associated_data(
        user,
        connection,
        record.version,
        record.expires_at,
        record.issued_at,
        &record.scopes,
        refreshable,
    );

    let mut plaintext = Zeroizing::new(Vec::new());
    record
        .access_token
        .seal_with(|access| push_field(&mut plaintext, access));
    match &record.refresh_token {
        Some(refresh) => refresh.seal_with(|r| push_field(&mut plaintext, r)),
        None => push_field(&mut plaintext, &[]),
    }
    let cipher = XChaCha20Poly1305::new(key.bytes().into());
    let sealed = cipher
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: &plaintext,
                aad: &aad,
            },
        )
        .expect("encryption with a valid key and nonce cannot fail");

    SealedRecord {
        user: user.to_string(),
        connection: connection.to_string(),
        version: record.version,
        expires_at: record.expires_at,
        issued_at: record.issued_at,
        scopes: record.scopes.clone(),
        refreshable,
        nonce: hex::encode(nonce),
        sealed: hex::encode(sealed),
    }
}

/// Decrypts a stored record, checking that it belongs to (user, connection).
pub fn open(
    key: &MasterKey,
    user: &str,
    connection: &str,
    stored: &SealedRecord,
) -> Result<TokenRecord, VaultError> {
    let fail = || VaultError::Unseal {
        user: user.to_string(),
        connection: connection.to_string(),
    };
    let nonce: [u8; 24] = hex::decode(&stored.nonce)
        .ok()
        .and_then(|n| n.try_into().ok())
        .ok_or_else(fail)?;
    let sealed = hex::decode(&stored.sealed).map_err(|_| fail())?;
    let aad = associated_data(
        user,
        connection,
        stored.version,
        stored.expires_at,
        stored.issued_at,
        &stored.scopes,
        stored.refreshable,
    );

    let cipher = XChaCha20Poly1305::new(key.bytes().into());
    let plaintext = Zeroizing::new(
        cipher
            .decrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: &sealed,
                    aad: &aad,
                },
            )
            .map_err(|_| fail())?,
    );
    let (access, rest) = take_field(&plaintext).ok_or_else(fail)?;
    let (refresh, rest) = take_field(rest).ok_or_else(fail)?;
    if !rest.is_empty() {
        return Err(fail());
    }
    Ok(TokenRecord {
        access_token: Secret::new(access.to_vec())?,
        refresh_token: if refresh.is_empty() {
            None
        } else {
            Some(Secret::new(refresh.to_vec())?)
        },
        expires_at: stored.expires_at,
        issued_at: stored.issued_at,
        scopes: stored.scopes.clone(),
        version: stored.version,
    })
}

/// Length-prefixed encoding of everything the ciphertext is bound to, so no
/// two different identities can produce the same bytes.
fn associated_data(
    user: &str,
    connection: &str,
    version: u64,
    expires_at: Option<u64>,
    issued_at: Option<u64>,
    scopes: &[String],
    refreshable: bool,
) -> Vec<u8> {
    let mut aad = Vec::with_capacity(128);
    push_field(&mut aad, AAD_TAG);
    push_field(&mut aad, user.as_bytes());
    push_field(&mut aad, connection.as_bytes());
    aad.extend_from_slice(&version.to_be_bytes());
    match expires_at {
        Some(t) => {
            aad.push(1);
            aad.extend_from_slice(&t.to_be_bytes());
        }
        None => aad.push(0),
    }
    aad.extend_from_slice(&(scopes.len() as u32).to_be_bytes());
    for scope in scopes {
        push_field(&mut aad, scope.as_bytes());
    }
    aad.push(u8::from(refreshable));
    // Appended only when present, so records sealed before the field
    // existed still open.
    if let Some(t) = issued_at {
        aad.push(b'i');
        aad.extend_from_slice(&t.to_be_bytes());
    }
    aad
}

fn push_field(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(bytes);
}

fn take_field(input: &[u8]) -> Option<(&[u8], &[u8])> {
    let len = u32::from_be_bytes(input.get(..4)?.try_into().ok()?) as usize;
    let rest = &input[4..];
    (rest.len() >= len).then(|| rest.split_at(len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> TokenRecord {
        TokenRecord {
            access_token: Secret::new(b"access-canary-0123456789".to_vec()).unwrap(),
            refresh_token: Some(Secret::new(b"refresh-canary-0123456789".to_vec()).unwrap()),
            expires_at: Some(1_900_000_000),
            issued_at: Some(1_899_996_400),
            scopes: vec!["repo".into(), "read:user".into()],
            version: 3,
        }
    }

    #[test]
    fn round_trip() {
        let key = MasterKey::generate();
        let sealed = seal(&key, "alice", "github", &record());
        assert_eq!(open(&key, "alice", "github", &sealed).unwrap(), record());
    }

    #[test]
    fn record_moved_to_another_user_or_connection_fails() {
        let key = MasterKey::generate();
        let sealed = seal(&key, "alice", "github", &record());
        assert!(matches!(
            open(&key, "bob", "github", &sealed),
            Err(VaultError::Unseal { .. })
        ));
        assert!(matches!(
            open(&key, "alice", "slack", &sealed),
            Err(VaultError::Unseal { .. })
        ));
    }

    #[test]
    fn edited_metadata_fails() {
        let key = MasterKey::generate();
        let mut sealed = seal(&key, "alice", "github", &record());
        sealed.expires_at = Some(4_000_000_000);
        assert!(open(&key, "alice", "github", &sealed).is_err());
        let mut sealed = seal(&key, "alice", "github", &record());
        sealed.scopes.push("admin".into());
        assert!(open(&key, "alice", "github", &sealed).is_err());
        let mut sealed = seal(&key, "alice", "github", &record());
        sealed.issued_at = Some(1);
        assert!(open(&key, "alice", "github", &sealed).is_err());
    }

    #[test]
    fn wrong_key_fails_and_ciphertext_hides_tokens() {
        let sealed = seal(&MasterKey::generate(), "alice", "github", &record());
        assert!(open(&MasterKey::generate(), "alice", "github", &sealed).is_err());
        let text = serde_json::to_string(&sealed).unwrap();
        assert!(!text.contains("canary"));
        assert!(!text.contains(&hex::encode("access-canary")));
    }
}
