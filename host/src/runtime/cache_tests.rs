use super::*;

/// The smallest component: the preamble of component-model layer 1.
const EMPTY: &[u8] = b"\0asm\x0d\0\x01\0";

/// Another valid component: the empty one with a custom section.
const OTHER: &[u8] = b"\0asm\x0d\0\x01\0\x00\x04\x03abc";

fn engine() -> Engine {
    super::super::engine::new_engine(super::super::engine::EngineSize {
        max_wasm_stack: 512 << 10,
        max_memory_mib: 64,
        max_instances: 4,
    })
    .unwrap()
}

fn digest(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn cache(dir: &Path, engine: &Engine) -> CompileCache {
    CompileCache::open(&dir.join("cache"), engine).unwrap()
}

#[test]
fn second_load_is_a_hit() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine();
    let cache = cache(dir.path(), &engine);
    let (_, first) = cache.load(&engine, &digest(EMPTY), EMPTY).unwrap();
    let (_, second) = cache.load(&engine, &digest(EMPTY), EMPTY).unwrap();
    assert_eq!((first, second), (CacheOutcome::Compiled, CacheOutcome::Hit));
}

#[cfg(unix)]
#[test]
fn entries_and_directory_are_private() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let engine = engine();
    let cache = cache(dir.path(), &engine);
    cache.load(&engine, &digest(EMPTY), EMPTY).unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&cache.entry_for(&digest(EMPTY))), 0o600);
    assert_eq!(mode(&dir.path().join("cache")) & 0o077, 0);
}

#[test]
fn corrupt_artifact_is_recompiled_not_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine();
    let cache = cache(dir.path(), &engine);
    cache.load(&engine, &digest(OTHER), OTHER).unwrap();
    let entry = cache.entry_for(&digest(OTHER));
    let mut bytes = std::fs::read(&entry).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    std::fs::write(&entry, &bytes).unwrap();

    let (_, outcome) = cache.load(&engine, &digest(OTHER), OTHER).unwrap();
    assert_eq!(
        outcome,
        CacheOutcome::Replaced("artifact checksum mismatch".into())
    );
    let (_, again) = cache.load(&engine, &digest(OTHER), OTHER).unwrap();
    assert_eq!(
        again,
        CacheOutcome::Hit,
        "the corrupt entry was not replaced"
    );
}

#[test]
fn truncated_entry_is_recompiled() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine();
    let cache = cache(dir.path(), &engine);
    cache.load(&engine, &digest(EMPTY), EMPTY).unwrap();
    let entry = cache.entry_for(&digest(EMPTY));
    let bytes = std::fs::read(&entry).unwrap();
    for len in [0, 10, HEADER_LEN - 1, HEADER_LEN, bytes.len() - 1] {
        std::fs::write(&entry, &bytes[..len]).unwrap();
        let (_, outcome) = cache.load(&engine, &digest(EMPTY), EMPTY).unwrap();
        assert!(
            matches!(outcome, CacheOutcome::Replaced(_)),
            "entry cut to {len} bytes: {outcome:?}"
        );
    }
}

#[test]
fn entry_of_another_component_is_not_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine();
    let cache = cache(dir.path(), &engine);
    cache.load(&engine, &digest(OTHER), OTHER).unwrap();
    // A valid entry, checksum and all, moved under the other digest's name.
    std::fs::copy(
        cache.entry_for(&digest(OTHER)),
        cache.entry_for(&digest(EMPTY)),
    )
    .unwrap();

    let (_, outcome) = cache.load(&engine, &digest(EMPTY), EMPTY).unwrap();
    assert_eq!(
        outcome,
        CacheOutcome::Replaced("entry belongs to another component or engine".into())
    );
}

#[test]
fn other_engine_settings_use_other_entries() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine();
    let mut config = wasmtime::Config::new();
    config.cranelift_opt_level(wasmtime::OptLevel::None);
    let other = Engine::new(&config).unwrap();
    let ours = cache(dir.path(), &engine);
    let theirs = cache(dir.path(), &other);
    assert_ne!(
        ours.entry_for(&digest(EMPTY)),
        theirs.entry_for(&digest(EMPTY))
    );

    ours.load(&engine, &digest(EMPTY), EMPTY).unwrap();
    let (_, outcome) = theirs.load(&other, &digest(EMPTY), EMPTY).unwrap();
    assert_eq!(outcome, CacheOutcome::Compiled);
}

#[test]
fn non_entry_file_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine();
    let cache = cache(dir.path(), &engine);
    std::fs::write(cache.entry_for(&digest(EMPTY)), b"not an entry at all").unwrap();
    let (_, outcome) = cache.load(&engine, &digest(EMPTY), EMPTY).unwrap();
    assert_eq!(
        outcome,
        CacheOutcome::Replaced("not an airlock cache entry".into())
    );
}

#[cfg(unix)]
#[test]
fn directory_writable_by_others_is_refused() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cache");
    std::fs::create_dir(&path).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777)).unwrap();
    let err = CompileCache::open(&path, &engine()).unwrap_err();
    assert!(err.to_string().contains("mode 777"), "{err}");
}

#[cfg(unix)]
#[test]
fn symlinked_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real");
    std::fs::create_dir(&real).unwrap();
    let link = dir.path().join("cache");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let err = CompileCache::open(&link, &engine()).unwrap_err();
    assert!(matches!(err, CacheError::Unsafe { .. }), "{err}");
}

#[test]
fn wasmtime_version_matches_the_lock_file() {
    let lock = include_str!("../../../Cargo.lock");
    let pinned = format!("name = \"wasmtime\"\nversion = \"{WASMTIME_VERSION}\"\n");
    assert!(lock.contains(&pinned), "Cargo.lock pins another wasmtime");
}
