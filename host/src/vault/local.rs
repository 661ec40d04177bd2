//! The embedded local store: one JSON file of sealed records.
//!
//! Every write takes an exclusive lock on `vault.lock`, reads the current
//! file, changes it, writes `vault.json.tmp`, syncs it and renames it over
//! `vault.json`, then syncs the directory. A reader never sees a half-written
//! file, and a process killed mid-write leaves the previous file intact.

use super::seal::{self, SealedRecord};
use super::{KeySource, MasterKey, RecordInfo, TokenRecord, VaultError, check_name};
use fs4::fs_std::FileExt as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

const FORMAT: &str = "airlock-vault";
const FORMAT_VERSION: u32 = 1;

/// The local vault under a data directory.
#[derive(Debug)]
pub struct LocalVault {
    dir: PathBuf,
    key: MasterKey,
}

#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct VaultFile {
    pub format: String,
    pub version: u32,
    /// Fingerprint of the master key that sealed the records; absent in
    /// files written before rekeying existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_check: Option<String>,
    pub records: Vec<SealedRecord>,
}

impl LocalVault {
    /// Opens (creating when absent) the vault in `dir`, with the master key
    /// from `key`.
    pub fn open(dir: &Path, key: &KeySource) -> Result<LocalVault, VaultError> {
        std::fs::create_dir_all(dir).map_err(|source| VaultError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        if let KeySource::File(path) = key {
            super::rekey::recover(dir, path)?;
        }
        let key = MasterKey::load(key)?;
        Ok(LocalVault {
            dir: dir.to_path_buf(),
            key,
        })
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A key for another purpose, derived from the master key (see
    /// [`MasterKey::derive`]).
    pub fn derive_key(&self, label: &str) -> zeroize::Zeroizing<[u8; 32]> {
        self.key.derive(label)
    }

    pub(super) fn key(&self) -> &MasterKey {
        &self.key
    }

    /// Path of the vault file.
    pub fn file(&self) -> PathBuf {
        self.dir.join("vault.json")
    }

    /// Reads and decrypts the record for (user, connection).
    pub fn get(&self, user: &str, connection: &str) -> Result<Option<TokenRecord>, VaultError> {
        let file = self.read()?;
        self.check_key(&file)?;
        file.records
            .iter()
            .find(|r| r.user == user && r.connection == connection)
            .map(|r| seal::open(&self.key, user, connection, r))
            .transpose()
    }

    /// Stores `record` for (user, connection), replacing any existing one.
    /// The stored version is one more than the previous record's.
    pub fn put(
        &self,
        user: &str,
        connection: &str,
        record: TokenRecord,
    ) -> Result<u64, VaultError> {
        self.update(user, connection, None, record)
    }

    /// Stores `record` only if the current version is `expected`
    /// (0 meaning "no record"); otherwise returns [`VaultError::Conflict`].
    pub fn compare_and_set(
        &self,
        user: &str,
        connection: &str,
        expected: u64,
        record: TokenRecord,
    ) -> Result<u64, VaultError> {
        self.update(user, connection, Some(expected), record)
    }

    /// Deletes the record; returns whether there was one.
    pub fn remove(&self, user: &str, connection: &str) -> Result<bool, VaultError> {
        self.remove_matching(user, connection, None)
    }

    /// Deletes the record only while its version is still `version`;
    /// returns whether it was deleted.
    pub fn remove_if_version(
        &self,
        user: &str,
        connection: &str,
        version: u64,
    ) -> Result<bool, VaultError> {
        self.remove_matching(user, connection, Some(version))
    }

    fn remove_matching(
        &self,
        user: &str,
        connection: &str,
        version: Option<u64>,
    ) -> Result<bool, VaultError> {
        check_name("user", user)?;
        check_name("connection", connection)?;
        let _lock = self.lock()?;
        let mut file = self.read()?;
        self.check_key(&file)?;
        let before = file.records.len();
        file.records.retain(|r| {
            !(r.user == user
                && r.connection == connection
                && version.is_none_or(|v| v == r.version))
        });
        let removed = file.records.len() != before;
        if removed {
            self.write(&file)?;
        }
        Ok(removed)
    }

    /// Lists records without opening them; needs no key.
    pub fn list(&self) -> Result<Vec<RecordInfo>, VaultError> {
        let mut infos: Vec<_> = self
            .read()?
            .records
            .into_iter()
            .map(|r| RecordInfo {
                user: r.user,
                connection: r.connection,
                expires_at: r.expires_at,
                scopes: r.scopes,
                refreshable: r.refreshable,
                version: r.version,
            })
            .collect();
        infos.sort_by(|a, b| (&a.user, &a.connection).cmp(&(&b.user, &b.connection)));
        Ok(infos)
    }

    fn update(
        &self,
        user: &str,
        connection: &str,
        expected: Option<u64>,
        mut record: TokenRecord,
    ) -> Result<u64, VaultError> {
        check_name("user", user)?;
        check_name("connection", connection)?;
        let _lock = self.lock()?;
        let mut file = self.read()?;
        self.check_key(&file)?;
        file.key_check = Some(self.key.fingerprint());
        let existing = file
            .records
            .iter()
            .position(|r| r.user == user && r.connection == connection);
        let current = existing.map_or(0, |i| file.records[i].version);
        if expected.is_some_and(|v| v != current) {
            return Err(VaultError::Conflict {
                user: user.into(),
                connection: connection.into(),
            });
        }

        record.version = current + 1;
        let sealed = seal::seal(&self.key, user, connection, &record);
        match existing {
            Some(i) => file.records[i] = sealed,
            None => file.records.push(sealed),
        }
        self.write(&file)?;
        Ok(record.version)
    }

    /// Refuses a file sealed under another key than the one loaded.
    fn check_key(&self, file: &VaultFile) -> Result<(), VaultError> {
        match &file.key_check {
            Some(check) if *check != self.key.fingerprint() => Err(VaultError::KeyMismatch {
                path: self.file(),
                file_key: check.clone(),
                loaded_key: self.key.fingerprint(),
            }),
            _ => Ok(()),
        }
    }

    pub(super) fn read(&self) -> Result<VaultFile, VaultError> {
        let path = self.file();
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(VaultFile {
                    format: FORMAT.into(),
                    version: FORMAT_VERSION,
                    key_check: None,
                    records: vec![],
                });
            }
            Err(source) => return Err(VaultError::Io { path, source }),
        };
        let file: VaultFile = serde_json::from_str(&text).map_err(|e| VaultError::Corrupt {
            path: path.clone(),
            detail: e.to_string(),
        })?;
        if file.format != FORMAT || file.version != FORMAT_VERSION {
            return Err(VaultError::Corrupt {
                path,
                detail: format!(
                    "format {:?} version {} is not {FORMAT:?} version {FORMAT_VERSION}",
                    file.format, file.version
                ),
            });
        }
        Ok(file)
    }

    pub(super) fn write(&self, file: &VaultFile) -> Result<(), VaultError> {
        let path = self.file();
        let tmp = self.dir.join("vault.json.tmp");
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| VaultError::Io { path, source }
        };
        let bytes = serde_json::to_vec_pretty(file).expect("vault records serialize");
        let mut out = std::fs::File::create(&tmp).map_err(io(&tmp))?;
        out.write_all(&bytes)
            .and_then(|()| out.sync_all())
            .map_err(io(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(io(&path))?;
        std::fs::File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(io(&self.dir))
    }

    pub(super) fn lock(&self) -> Result<std::fs::File, VaultError> {
        let path = self.dir.join("vault.lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|source| VaultError::Io {
                path: path.clone(),
                source,
            })?;
        file.lock_exclusive()
            .map_err(|source| VaultError::Io { path, source })?;
        Ok(file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    fn vault(dir: &Path) -> LocalVault {
        LocalVault::open(dir, &KeySource::File(dir.join("vault.key"))).unwrap()
    }

    fn record(token: &str) -> TokenRecord {
        TokenRecord {
            access_token: Secret::new(token.as_bytes().to_vec()).unwrap(),
            refresh_token: None,
            expires_at: None,
            issued_at: None,
            scopes: vec![],
            version: 0,
        }
    }

    #[test]
    fn put_get_list_remove() {
        let dir = tempfile::tempdir().unwrap();
        let v = vault(dir.path());
        assert_eq!(
            v.put("alice", "demo", record("canary-token-aaaaaaaa"))
                .unwrap(),
            1
        );
        assert_eq!(
            v.put("alice", "demo", record("canary-token-bbbbbbbb"))
                .unwrap(),
            2
        );
        let got = v.get("alice", "demo").unwrap().unwrap();
        assert_eq!(
            got.access_token,
            Secret::new(b"canary-token-bbbbbbbb".to_vec()).unwrap()
        );
        assert_eq!(got.version, 2);
        assert!(v.get("bob", "demo").unwrap().is_none());
        assert_eq!(v.list().unwrap().len(), 1);
        assert!(v.remove("alice", "demo").unwrap());
        assert!(!v.remove("alice", "demo").unwrap());
        assert!(v.get("alice", "demo").unwrap().is_none());
    }

    #[test]
    fn file_never_holds_the_token() {
        let dir = tempfile::tempdir().unwrap();
        let v = vault(dir.path());
        v.put("alice", "demo", record("canary-token-plaintext"))
            .unwrap();
        let text = std::fs::read_to_string(v.file()).unwrap();
        assert!(!text.contains("canary-token-plaintext"));
        assert!(!text.contains(&hex::encode("canary-token-plaintext")));
    }

    #[test]
    fn compare_and_set_detects_a_concurrent_write() {
        let dir = tempfile::tempdir().unwrap();
        let v = vault(dir.path());
        v.compare_and_set("alice", "demo", 0, record("canary-token-aaaaaaaa"))
            .unwrap();
        let err = v.compare_and_set("alice", "demo", 0, record("canary-token-bbbbbbbb"));
        assert!(matches!(err, Err(VaultError::Conflict { .. })));
        assert_eq!(
            v.compare_and_set("alice", "demo", 1, record("canary-token-cccccccc"))
                .unwrap(),
            2
        );
    }

    #[test]
    fn row_copied_to_another_user_fails_to_open() {
        let dir = tempfile::tempdir().unwrap();
        let v = vault(dir.path());
        v.put("alice", "demo", record("canary-token-aaaaaaaa"))
            .unwrap();
        let text = std::fs::read_to_string(v.file()).unwrap();
        let mut file: serde_json::Value = serde_json::from_str(&text).unwrap();
        let mut copy = file["records"][0].clone();
        copy["user"] = "mallory".into();
        file["records"].as_array_mut().unwrap().push(copy);
        std::fs::write(v.file(), serde_json::to_vec(&file).unwrap()).unwrap();
        assert!(matches!(
            v.get("mallory", "demo"),
            Err(VaultError::Unseal { .. })
        ));
        assert!(v.get("alice", "demo").unwrap().is_some());
    }

    #[test]
    fn corrupt_file_is_reported_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let v = vault(dir.path());
        std::fs::write(v.file(), "{not json").unwrap();
        let err = v.get("alice", "demo").unwrap_err().to_string();
        assert!(
            err.contains("vault.json") && err.contains("corrupt"),
            "{err}"
        );
    }

    #[test]
    fn bad_names_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let v = vault(dir.path());
        let err = v
            .put("al ice", "demo", record("canary-token-aaaaaaaa"))
            .unwrap_err();
        assert!(err.to_string().contains("invalid user"), "{err}");
    }
}
