//! The refresh lock: one lock file per record, held while a token is
//! refreshed, so that processes sharing a local store never spend the same
//! refresh token twice.
//!
//! The lock is an advisory exclusive lock (`flock`) on
//! `locks/<digest>.lock`, where the digest names (user, connection) without
//! spelling them out. The kernel drops it when its holder exits, killed or
//! not, so a crashed refresher never leaves the record locked.

use super::{LocalVault, VaultError, check_name};
use fs4::fs_std::FileExt;
use sha2::Digest as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// A held refresh lock; released on drop.
#[derive(Debug)]
pub struct RefreshLock {
    file: std::fs::File,
    path: PathBuf,
}

impl LocalVault {
    /// Takes the refresh lock of (user, connection), waiting up to `wait`.
    /// Blocks the thread: call it from a blocking task.
    pub fn lock_refresh(
        &self,
        user: &str,
        connection: &str,
        wait: Duration,
    ) -> Result<RefreshLock, VaultError> {
        check_name("user", user)?;
        check_name("connection", connection)?;
        let dir = self.dir().join("locks");
        let io = |path: &PathBuf| {
            let path = path.clone();
            move |source| VaultError::Io { path, source }
        };
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let digest = sha2::Sha256::digest(format!("{user}\0{connection}"));
        let path = dir.join(format!("{}.lock", hex::encode(&digest[..16])));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io(&path))?;

        // Poll rather than block, so a stuck holder yields an error instead
        // of a hung request.
        let deadline = Instant::now() + wait;
        let mut pause = Duration::from_millis(1);
        loop {
            if file.try_lock_exclusive().map_err(io(&path))? {
                return Ok(RefreshLock { file, path });
            }
            if Instant::now() >= deadline {
                return Err(VaultError::LockTimeout {
                    user: user.into(),
                    connection: connection.into(),
                    waited: wait,
                });
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(25));
        }
    }
}

impl Drop for RefreshLock {
    fn drop(&mut self) {
        if let Err(err) = FileExt::unlock(&self.file) {
            tracing::warn!(%err, path = %self.path.display(), "releasing the refresh lock failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vault::KeySource;

    #[test]
    fn second_holder_waits_then_times_out_and_gets_it_after_release() {
        let dir = tempfile::tempdir().unwrap();
        let v = LocalVault::open(dir.path(), &KeySource::File(dir.path().join("k"))).unwrap();
        let held = v
            .lock_refresh("alice", "demo", Duration::from_secs(1))
            .unwrap();

        // flock locks belong to the open file, so a second open in the same
        // process contends like another process would.
        let err = v
            .lock_refresh("alice", "demo", Duration::from_millis(50))
            .unwrap_err();
        assert!(matches!(err, VaultError::LockTimeout { .. }), "{err}");
        assert!(
            v.lock_refresh("bob", "demo", Duration::from_millis(50))
                .is_ok()
        );

        drop(held);
        assert!(
            v.lock_refresh("alice", "demo", Duration::from_millis(50))
                .is_ok()
        );
    }
}
