//! `airlock vault rekey` and `airlock vault revoke` through the real binary.

use crate::support::{Fixture, canary, files_under, find_canary};
use serde_json::json;

#[test]
fn rekey_replaces_the_key_file_and_every_record_still_works() {
    let fx = Fixture::new();
    let (alice, bob) = (canary(), canary());
    fx.link("alice", &alice);
    let out = fx.airlock(
        &["vault", "put", "--user", "bob", "--connection", "demo"],
        Some(&bob),
    );
    assert!(out.status.success());
    let key_file = fx.data_dir().join("vault.key");
    let old_key = std::fs::read(&key_file).unwrap();
    let old_vault = std::fs::read(fx.data_dir().join("vault.json")).unwrap();

    let out = fx.airlock(&["vault", "rekey"], None);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("re-encrypted 2 records"), "{stdout}");
    assert_ne!(std::fs::read(&key_file).unwrap(), old_key);
    assert_ne!(
        std::fs::read(fx.data_dir().join("vault.json")).unwrap(),
        old_vault
    );
    assert!(!fx.data_dir().join("vault.key.new").exists());

    // The old key no longer opens the vault; the new one does, for both.
    let args = json!({ "url": format!("{}/bearer", fx.upstream) }).to_string();
    for user in ["alice", "bob"] {
        let out = fx.airlock(
            &["call", "fetch.fetch", "--user", user, "--args", &args],
            None,
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains("\\\"authenticated\\\": true"),
            "{user}: {stdout}"
        );
    }
    std::fs::write(&key_file, &old_key).unwrap();
    let out = fx.airlock(
        &["call", "fetch.fetch", "--user", "alice", "--args", &args],
        None,
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("sealed under key"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut haystacks = vec![("rekey stdout".to_string(), out.stdout.clone())];
    for f in files_under(&fx.data_dir()) {
        haystacks.push((f.display().to_string(), std::fs::read(&f).unwrap()));
    }
    for token in [&alice, &bob] {
        assert!(find_canary(token, &haystacks).is_empty());
    }
}

#[test]
fn revoke_without_a_provider_removes_the_record_and_says_the_grant_remains() {
    let fx = Fixture::new();
    fx.link("alice", &canary());
    let out = fx.airlock(
        &["vault", "revoke", "--user", "alice", "--connection", "demo"],
        None,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("no revocation endpoint"), "{stdout}");
    let out = fx.airlock(
        &["vault", "revoke", "--user", "alice", "--connection", "demo"],
        None,
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no token stored"));
}
