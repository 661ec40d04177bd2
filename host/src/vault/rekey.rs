//! Re-encrypting every record under a new master key.
//!
//! A key file is replaced in three steps, each of which is atomic on its
//! own: the new key is written beside the old one as `<key>.new`; the vault
//! file is rewritten (temporary file, sync, rename) with every record sealed
//! under the new key and the new key's fingerprint in its header; then
//! `<key>.new` is renamed over the key file. [`recover`], run whenever the
//! vault is opened, finishes or undoes an interrupted rekey by comparing the
//! vault file's fingerprint with the pending key, so no crash point leaves
//! records sealed under a key that is not on disk.
//!
//! When the key comes from an environment variable, the new key comes from
//! another variable; the vault file is rewritten in one atomic step and the
//! operator moves the variable afterwards. Processes still holding the old
//! key refuse to write once the file names another key.

use super::key::write_new;
use super::local::VaultFile;
use super::seal;
use super::{KeySource, LocalVault, MasterKey, VaultError};
use fs4::fs_std::FileExt as _;
use std::path::{Path, PathBuf};

/// What a rekey did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RekeyReport {
    /// Records re-encrypted.
    pub records: usize,
    /// Fingerprint of the old key.
    pub old_key: String,
    /// Fingerprint of the new key.
    pub new_key: String,
}

impl LocalVault {
    /// Generates a new master key, re-encrypts every record under it and
    /// replaces the key file at `key_path` (the file this vault was opened
    /// with).
    pub fn rekey_file(&self, key_path: &Path) -> Result<RekeyReport, VaultError> {
        let _lock = self.lock()?;
        let pending = pending_path(key_path);
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| VaultError::Io { path, source }
        };
        match std::fs::remove_file(&pending) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(&pending)(e)),
            _ => {}
        }

        let new = MasterKey::generate();
        write_new(&pending, &new).map_err(io(&pending))?;
        sync_dir(key_path)?;
        let report = self.reseal(&new)?;
        std::fs::rename(&pending, key_path).map_err(io(key_path))?;
        sync_dir(key_path)?;
        Ok(report)
    }

    /// Re-encrypts every record under `new` in one atomic write; the caller
    /// then makes `new` the configured key (for example, moves an
    /// environment variable).
    pub fn rekey_to(&self, new: &MasterKey) -> Result<RekeyReport, VaultError> {
        let _lock = self.lock()?;
        self.reseal(new)
    }

    /// Opens every record with the current key and seals it with `new`.
    /// The caller holds the vault lock.
    fn reseal(&self, new: &MasterKey) -> Result<RekeyReport, VaultError> {
        let file = self.read()?;
        let old = self.key();
        if let Some(check) = &file.key_check
            && *check != old.fingerprint()
        {
            return Err(VaultError::KeyMismatch {
                path: self.file(),
                file_key: check.clone(),
                loaded_key: old.fingerprint(),
            });
        }
        let mut records = Vec::with_capacity(file.records.len());
        for sealed in &file.records {
            let record = seal::open(old, &sealed.user, &sealed.connection, sealed)?;
            records.push(seal::seal(new, &sealed.user, &sealed.connection, &record));
        }
        let count = records.len();
        self.write(&VaultFile {
            format: file.format,
            version: file.version,
            key_check: Some(new.fingerprint()),
            records,
        })?;
        Ok(RekeyReport {
            records: count,
            old_key: old.fingerprint(),
            new_key: new.fingerprint(),
        })
    }
}

/// Finishes or undoes a rekey of `key_path` that was interrupted.
pub(super) fn recover(dir: &Path, key_path: &Path) -> Result<(), VaultError> {
    let pending = pending_path(key_path);
    if !pending.exists() {
        return Ok(());
    }
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| VaultError::Io { path, source }
    };
    let lock_path = dir.join("vault.lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(io(&lock_path))?;
    lock.lock_exclusive().map_err(io(&lock_path))?;
    if !pending.exists() {
        // Another process finished it while this one waited.
        return Ok(());
    }

    let new = MasterKey::load(&KeySource::File(pending.clone()))?;
    let vault_file = dir.join("vault.json");
    let sealed_under = match std::fs::read(&vault_file) {
        Ok(bytes) => serde_json::from_slice::<VaultFile>(&bytes)
            .ok()
            .and_then(|f| f.key_check),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(io(&vault_file)(e)),
    };
    if sealed_under.as_deref() == Some(new.fingerprint().as_str()) {
        tracing::warn!(key = %key_path.display(), "finishing an interrupted vault rekey");
        std::fs::rename(&pending, key_path).map_err(io(key_path))?;
    } else {
        tracing::warn!(key = %key_path.display(), "undoing an interrupted vault rekey");
        std::fs::remove_file(&pending).map_err(io(&pending))?;
    }
    sync_dir(key_path)
}

fn pending_path(key_path: &Path) -> PathBuf {
    let mut name = key_path.as_os_str().to_owned();
    name.push(".new");
    PathBuf::from(name)
}

fn sync_dir(key_path: &Path) -> Result<(), VaultError> {
    let dir = key_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| VaultError::Io {
            path: dir.to_path_buf(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;
    use crate::vault::TokenRecord;

    fn record(token: &str) -> TokenRecord {
        TokenRecord {
            access_token: Secret::new(token.as_bytes().to_vec()).unwrap(),
            refresh_token: Some(Secret::new(format!("{token}-refresh").into_bytes()).unwrap()),
            expires_at: Some(2_000_000_000),
            issued_at: None,
            scopes: vec!["repo".into()],
            version: 0,
        }
    }

    fn setup() -> (tempfile::TempDir, PathBuf, LocalVault) {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("vault.key");
        let v = LocalVault::open(dir.path(), &KeySource::File(key.clone())).unwrap();
        v.put("alice", "github", record("canary-alice-0123456789"))
            .unwrap();
        v.put("bob", "slack", record("canary-bob-0123456789"))
            .unwrap();
        (dir, key, v)
    }

    fn assert_readable(dir: &Path, key: &Path) {
        let v = LocalVault::open(dir, &KeySource::File(key.to_path_buf())).unwrap();
        let alice = v.get("alice", "github").unwrap().unwrap();
        assert_eq!(
            alice,
            TokenRecord {
                version: 1,
                ..record("canary-alice-0123456789")
            }
        );
        assert!(v.get("bob", "slack").unwrap().is_some());
        assert!(!pending_path(key).exists());
    }

    #[test]
    fn rekey_changes_the_key_and_keeps_every_record() {
        let (dir, key, v) = setup();
        let before = std::fs::read(&key).unwrap();
        let report = v.rekey_file(&key).unwrap();
        assert_eq!(report.records, 2);
        assert_ne!(report.old_key, report.new_key);
        assert_ne!(std::fs::read(&key).unwrap(), before);
        assert_readable(dir.path(), &key);

        // The process that still holds the old key refuses to write.
        let err = v
            .put("carol", "github", record("canary-carol-0123456789"))
            .unwrap_err();
        assert!(matches!(err, VaultError::KeyMismatch { .. }), "{err}");
    }

    #[test]
    fn crash_after_writing_the_new_key_is_undone() {
        let (dir, key, _v) = setup();
        write_new(&pending_path(&key), &MasterKey::generate()).unwrap();
        assert_readable(dir.path(), &key);
    }

    #[test]
    fn crash_after_resealing_is_finished() {
        let (dir, key, v) = setup();
        let new = MasterKey::generate();
        write_new(&pending_path(&key), &new).unwrap();
        v.rekey_to(&new).unwrap();
        // The key file still holds the old key; opening finishes the rename.
        assert_readable(dir.path(), &key);
        assert_eq!(
            MasterKey::load(&KeySource::File(key))
                .unwrap()
                .fingerprint(),
            new.fingerprint()
        );
    }
}
