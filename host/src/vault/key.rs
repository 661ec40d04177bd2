//! The vault master key: where it comes from and how it is held.

use super::VaultError;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// Where the master key is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// An environment variable holding 32 bytes as base64 or 64 hex digits.
    Env(String),
    /// A file holding the key in the same encodings. Created with mode 0600
    /// on first use when it does not exist; refused when group or others can
    /// read it.
    File(PathBuf),
}

/// 32 bytes of key material, wiped on drop.
pub struct MasterKey(Zeroizing<[u8; 32]>);

impl MasterKey {
    /// Loads the key from `source`, creating a key file if needed.
    pub fn load(source: &KeySource) -> Result<MasterKey, VaultError> {
        match source {
            KeySource::Env(var) => {
                let value = Zeroizing::new(std::env::var(var).map_err(|_| {
                    VaultError::Key(format!("environment variable {var} is not set"))
                })?);
                decode(&value).map_err(|e| VaultError::Key(format!("{var}: {e}")))
            }
            KeySource::File(path) => load_or_create(path),
        }
    }

    /// A fresh random key.
    pub fn generate() -> MasterKey {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rand::fill(&mut bytes[..]);
        MasterKey(bytes)
    }

    pub(super) fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// A short public name of this key (not usable to recover it), written
    /// into the vault file to tell which key sealed it.
    pub fn fingerprint(&self) -> String {
        use sha2::Digest as _;
        let mut h = sha2::Sha256::new();
        h.update(b"airlock-vault-key-fingerprint-v1\0");
        h.update(&self.0[..]);
        hex::encode(&h.finalize()[..8])
    }

    /// A 32-byte key for another purpose (`label`), derived from this one
    /// with HMAC-SHA256, so that every process holding the vault key agrees
    /// on it and none can recover the master key from it.
    pub fn derive(&self, label: &str) -> Zeroizing<[u8; 32]> {
        use hmac::Mac as _;
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&self.0[..])
            .expect("HMAC takes a key of any length");
        mac.update(label.as_bytes());
        Zeroizing::new(mac.finalize().into_bytes().into())
    }

    /// The key as base64, for writing a new key file.
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(STANDARD.encode(&self.0[..]))
    }
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey([redacted])")
    }
}

fn decode(text: &str) -> Result<MasterKey, String> {
    let text = text.trim();
    let bytes = Zeroizing::new(
        if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex::decode(text).map_err(|e| e.to_string())?
        } else {
            STANDARD
                .decode(text)
                .map_err(|_| "expected 32 bytes as base64 or 64 hex digits".to_string())?
        },
    );
    let array: [u8; 32] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| format!("expected 32 bytes, got {}", bytes.len()))?;
    Ok(MasterKey(Zeroizing::new(array)))
}

/// Writes `key` to a new file at `path` with mode 0600 and syncs it.
pub(super) fn write_new(path: &Path, key: &MasterKey) -> std::io::Result<()> {
    let mut file = create_private(path)?;
    file.write_all(key.to_base64().as_bytes())?;
    file.sync_all()
}

fn load_or_create(path: &Path) -> Result<MasterKey, VaultError> {
    let err = |detail: String| VaultError::Key(format!("{}: {detail}", path.display()));
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let text = Zeroizing::new(text);
            check_private(path).map_err(err)?;
            decode(&text).map_err(err)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|e| err(e.to_string()))?;
            }
            let key = MasterKey::generate();
            let mut file = create_private(path).map_err(|e| err(e.to_string()))?;
            file.write_all(key.to_base64().as_bytes())
                .and_then(|()| file.sync_all())
                .map_err(|e| err(e.to_string()))?;
            Ok(key)
        }
        Err(e) => Err(err(e.to_string())),
    }
}

#[cfg(unix)]
fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}

#[cfg(unix)]
fn check_private(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(path)
        .map_err(|e| e.to_string())?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(format!(
            "key file mode is {:o}; it must not be readable by group or others (chmod 600)",
            mode & 0o777
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_: &Path) -> Result<(), String> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_file_is_created_private_and_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k/vault.key");
        let first = MasterKey::load(&KeySource::File(path.clone())).unwrap();
        let second = MasterKey::load(&KeySource::File(path.clone())).unwrap();
        assert_eq!(first.bytes(), second.bytes());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[cfg(unix)]
    #[test]
    fn readable_key_file_is_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vault.key");
        MasterKey::load(&KeySource::File(path.clone())).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = MasterKey::load(&KeySource::File(path))
            .unwrap_err()
            .to_string();
        assert!(err.contains("chmod 600"), "{err}");
    }

    #[test]
    fn malformed_keys_are_refused() {
        assert!(decode("not base64!").is_err());
        assert!(
            decode(&STANDARD.encode([1u8; 16]))
                .unwrap_err()
                .contains("32 bytes")
        );
        assert!(decode(&"ab".repeat(32)).is_ok());
    }
}
