//! The on-disk cache of compiled components.
//!
//! Compiling a component with Cranelift takes hundreds of milliseconds; loading
//! the compiled artifact takes a few. An entry is keyed by the component's
//! sha256, the engine's compilation settings (target, Cranelift flags,
//! tunables, enabled wasm features) and the wasmtime version, so a change to
//! any of them misses the cache instead of loading code built for something
//! else.
//!
//! An entry file holds a header and the artifact:
//!
//! ```text
//! magic "airlock-cwasm\n" | format u32 | key [32] | length u64 | sha256 [32] | artifact
//! ```
//!
//! Loading reads the whole file into memory, checks the magic, the key, the
//! length and the sha256 of the artifact, and only then hands those same
//! bytes to wasmtime. A corrupt, truncated or foreign entry is reported,
//! recompiled and overwritten; it is never loaded. Entries are written to a
//! temporary file and renamed into place, so a reader never sees half an
//! entry. The directory must belong to the host's user and be writable by
//! nobody else.

use sha2::{Digest as _, Sha256};
use std::fs::File;
use std::hash::{Hash as _, Hasher};
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use wasmtime::Engine;
use wasmtime::component::Component;

/// The wasmtime release whose artifacts the cache holds; part of every key.
pub const WASMTIME_VERSION: &str = "48.0.8";

const MAGIC: &[u8; 14] = b"airlock-cwasm\n";
const FORMAT: u32 = 1;
const HEADER_LEN: usize = MAGIC.len() + 4 + 32 + 8 + 32;

/// A directory of compiled components for one engine configuration.
#[derive(Debug)]
pub struct CompileCache {
    dir: PathBuf,
    engine_key: [u8; 32],
}

/// How a component was obtained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Loaded from a verified cache entry.
    Hit,
    /// Not cached yet: compiled and stored.
    Compiled,
    /// The entry was unusable (the reason says why): compiled and replaced.
    Replaced(String),
}

/// Why the cache directory cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CacheError {
    /// The directory could not be created or inspected.
    #[error("compile cache {dir}: {source}")]
    Io {
        /// The cache directory.
        dir: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Someone other than the host's user could change the entries.
    #[error("compile cache {dir}: {reason}")]
    Unsafe {
        /// The cache directory.
        dir: PathBuf,
        /// What is wrong with its ownership or permissions.
        reason: String,
    },
}

impl CompileCache {
    /// Opens (creating it with mode 0700 if missing) the cache directory
    /// `dir` for `engine`. Fails when the directory is a symlink, is not owned
    /// by this process's user, or is writable by group or others.
    pub fn open(dir: &Path, engine: &Engine) -> Result<CompileCache, CacheError> {
        let io = |source| CacheError::Io {
            dir: dir.to_path_buf(),
            source,
        };
        create_private_dir(dir).map_err(io)?;
        check_private_dir(dir)?;
        Ok(CompileCache {
            dir: dir.to_path_buf(),
            engine_key: engine_key(engine),
        })
    }

    /// The component whose bytes are `wasm` and whose sha256 (lowercase
    /// hex) is `digest`: from the cache when a verified entry exists,
    /// otherwise compiled and stored. A failure to store is logged, not
    /// returned.
    pub fn load(
        &self,
        engine: &Engine,
        digest: &str,
        wasm: &[u8],
    ) -> wasmtime::Result<(Component, CacheOutcome)> {
        let key = self.key(digest);
        let path = self.entry_path(&key);
        let outcome = match read_entry(&path, &key) {
            Ok(Some(artifact)) => match deserialize_verified(engine, &artifact) {
                Ok(component) => return Ok((component, CacheOutcome::Hit)),
                Err(err) => CacheOutcome::Replaced(format!("wasmtime refused it: {err}")),
            },
            Ok(None) => CacheOutcome::Compiled,
            Err(reason) => CacheOutcome::Replaced(reason),
        };
        if let CacheOutcome::Replaced(reason) = &outcome {
            tracing::warn!(entry = %path.display(), reason, "airlock.runtime.cache: recompiling");
        }

        let component = Component::from_binary(engine, wasm)?;
        match component.serialize() {
            Ok(artifact) => {
                if let Err(err) = write_entry(&self.dir, &path, &key, &artifact) {
                    tracing::warn!(entry = %path.display(), %err, "airlock.runtime.cache: cannot store");
                }
            }
            Err(err) => tracing::warn!(%err, "airlock.runtime.cache: cannot serialize"),
        }
        Ok((component, outcome))
    }

    /// The file an entry for `digest` is stored in.
    pub fn entry_for(&self, digest: &str) -> PathBuf {
        self.entry_path(&self.key(digest))
    }

    fn key(&self, digest: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(b"airlock compile cache\0");
        h.update(WASMTIME_VERSION.as_bytes());
        h.update([0]);
        h.update(self.engine_key);
        h.update(digest.as_bytes());
        h.finalize().into()
    }

    fn entry_path(&self, key: &[u8; 32]) -> PathBuf {
        self.dir.join(format!("{}.cwasm", hex::encode(key)))
    }
}

/// Loads an artifact whose integrity was verified by [`read_entry`].
#[allow(
    unsafe_code,
    reason = "wasmtime maps a deserialized artifact as executable code without checking it"
)]
fn deserialize_verified(engine: &Engine, artifact: &[u8]) -> wasmtime::Result<Component> {
    // SAFETY: wasmtime requires that the bytes were produced by
    // `serialize`/`precompile_component` of a compatible wasmtime, and not
    // altered since. `artifact` is exactly the buffer `read_entry` verified:
    // its sha256 matches the one written beside it by `write_entry`, which
    // stored the output of `Component::serialize`, so a truncated, corrupt or
    // partly written file never gets here. The entry's key binds it to this
    // component digest, these engine settings and this wasmtime version, and
    // wasmtime checks version and settings again itself. An attacker who could
    // rewrite artifact and checksum together would have to write to the cache
    // directory, which `check_private_dir` ensures only this process's user
    // can do (owner-only permissions, no symlink); that user can already
    // replace the host binary. The bytes are in our memory, not mapped from
    // the file, so the file changing after the check changes nothing.
    unsafe { Component::deserialize(engine, artifact) }
}

/// Reads and verifies an entry. `Ok(None)` when there is none; `Err` names
/// what makes an existing entry unusable.
fn read_entry(path: &Path, key: &[u8; 32]) -> Result<Option<Vec<u8>>, String> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot open: {e}")),
    };
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot inspect: {e}"))?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    check_private_file(&meta)?;
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read: {e}"))?;

    if bytes.len() < HEADER_LEN || &bytes[..MAGIC.len()] != MAGIC {
        return Err("not an airlock cache entry".into());
    }
    let (format, rest) = bytes[MAGIC.len()..].split_at(4);
    if format != FORMAT.to_le_bytes() {
        return Err(format!("entry format {format:?} is not {FORMAT}"));
    }
    let (stored_key, rest) = rest.split_at(32);
    if stored_key != key {
        return Err("entry belongs to another component or engine".into());
    }
    let (len, rest) = rest.split_at(8);
    let (sum, artifact) = rest.split_at(32);
    let len = u64::from_le_bytes(len.try_into().expect("8 bytes"));
    if len != artifact.len() as u64 {
        return Err(format!(
            "entry holds {} artifact bytes, its header says {len}",
            artifact.len()
        ));
    }
    if Sha256::digest(artifact).as_slice() != sum {
        return Err("artifact checksum mismatch".into());
    }
    bytes.drain(..HEADER_LEN);
    Ok(Some(bytes))
}

/// Writes an entry atomically: a private temporary file, then a rename.
fn write_entry(dir: &Path, path: &Path, key: &[u8; 32], artifact: &[u8]) -> std::io::Result<()> {
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        hex::encode(&key[..8]),
        std::process::id()
    ));
    let result = (|| {
        let mut file = create_private_file(&tmp)?;
        file.write_all(MAGIC)?;
        file.write_all(&FORMAT.to_le_bytes())?;
        file.write_all(key)?;
        file.write_all(&(artifact.len() as u64).to_le_bytes())?;
        file.write_all(&Sha256::digest(artifact))?;
        file.write_all(artifact)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// A stable digest of everything in `engine` that compiled code depends on.
fn engine_key(engine: &Engine) -> [u8; 32] {
    let mut hasher = Sha256Hasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hasher.0.finalize().into()
}

/// Feeds `Hash` output into sha256, which, unlike the std hashers, is the
/// same in every process and every build.
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    fn finish(&self) -> u64 {
        let digest = self.0.clone().finalize();
        u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"))
    }
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    match std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
    {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(unix)]
fn check_private_dir(dir: &Path) -> Result<(), CacheError> {
    use std::os::unix::fs::MetadataExt as _;
    let unsafe_dir = |reason: String| CacheError::Unsafe {
        dir: dir.to_path_buf(),
        reason,
    };
    let io = |source| CacheError::Io {
        dir: dir.to_path_buf(),
        source,
    };
    let meta = std::fs::symlink_metadata(dir).map_err(io)?;
    if !meta.is_dir() {
        return Err(unsafe_dir("is not a directory (or is a symlink)".into()));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(unsafe_dir(format!(
            "mode {:o} lets group or others write; expected 700",
            meta.mode() & 0o777
        )));
    }
    let uid = own_uid(dir).map_err(io)?;
    if meta.uid() != uid {
        return Err(unsafe_dir(format!(
            "owned by uid {}, not by this process's uid {uid}",
            meta.uid()
        )));
    }
    Ok(())
}

/// The uid files created by this process get, found by creating one.
#[cfg(unix)]
fn own_uid(dir: &Path) -> std::io::Result<u32> {
    use std::os::unix::fs::MetadataExt as _;
    let probe = dir.join(format!(".probe.{}", std::process::id()));
    let file = create_private_file(&probe)?;
    let uid = file.metadata().map(|m| m.uid());
    let _ = std::fs::remove_file(&probe);
    uid
}

#[cfg(unix)]
fn check_private_file(meta: &std::fs::Metadata) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt as _;
    if meta.mode() & 0o022 != 0 {
        return Err(format!(
            "mode {:o} lets group or others write",
            meta.mode() & 0o777
        ));
    }
    Ok(())
}

#[cfg(unix)]
fn create_private_file(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
}

// Without unix permissions there is no way to tell who may write the
// directory, so the cache is not used.
#[cfg(not(unix))]
fn create_private_dir(_dir: &Path) -> std::io::Result<()> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "the compile cache needs unix permissions",
    ))
}

#[cfg(not(unix))]
fn check_private_dir(_dir: &Path) -> Result<(), CacheError> {
    unreachable!("create_private_dir fails first")
}

#[cfg(not(unix))]
fn check_private_file(_meta: &std::fs::Metadata) -> Result<(), String> {
    Err("the compile cache needs unix permissions".into())
}

#[cfg(not(unix))]
fn create_private_file(_path: &Path) -> std::io::Result<File> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "the compile cache needs unix permissions",
    ))
}

#[cfg(test)]
#[path = "cache_tests.rs"]
mod tests;
