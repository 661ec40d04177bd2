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

/// A fixture with a GitHub connection `gh` whose revocation endpoint is
/// httpbin's `path`, and alice's canary token stored for it.
fn github_at(path: &str) -> (Fixture, String, String) {
    let port = airlock_tests::peers::httpbin().port;
    let fx = Fixture::with_endpoints(&[&format!(
        r#"
[connections.gh]
audience = ["https://api.github.com"]
provider = "github"
client_id = "Iv1.airlock-e2e"
client_secret_file = "gh.secret"
revoke_url = "http://127.0.0.1:{port}{path}"
"#
    )]);
    let client_secret = format!("client-secret-{}", canary());
    std::fs::write(fx.dir.path().join("gh.secret"), &client_secret).unwrap();
    let token = canary();
    fx.link_to("alice", "gh", &token);
    (fx, token, client_secret)
}

fn revoke_gh(fx: &Fixture) -> (bool, String, String) {
    let out = fx.airlock(
        &["vault", "revoke", "--user", "alice", "--connection", "gh"],
        None,
    );
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn github_revoke_deletes_at_httpbin_and_removes_the_record() {
    // httpbin's /anything takes the DELETE and answers 200; /status/204 is
    // GitHub's own answer.
    for path in [
        "/anything/applications/Iv1.airlock-e2e/grant",
        "/status/204",
    ] {
        let (fx, _, _) = github_at(path);
        let (ok, stdout, stderr) = revoke_gh(&fx);
        assert!(ok, "{path}: {stderr}");
        assert!(
            stdout.contains("revoked at the provider"),
            "{path}: {stdout}"
        );
        let (ok, _, stderr) = revoke_gh(&fx);
        assert!(
            !ok && stderr.contains("no token stored"),
            "{path}: {stderr}"
        );
    }
    // httpbin's /status/... takes only the methods it lists: the request
    // went out as a DELETE, or this would be 405 and a failure.
    let (fx, _, _) = github_at("/status/404");
    let (ok, stdout, stderr) = revoke_gh(&fx);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("no longer knew the grant"), "{stdout}");
    let (ok, _, stderr) = revoke_gh(&fx);
    assert!(!ok && stderr.contains("no token stored"), "{stderr}");
}

#[test]
fn github_revoke_refused_keeps_the_record_and_names_no_secret() {
    let (fx, token, client_secret) = github_at("/status/401");
    let (ok, stdout, stderr) = revoke_gh(&fx);
    assert!(!ok, "{stdout}");
    assert!(stderr.contains("revocation failed: status 401"), "{stderr}");
    let haystacks = vec![
        ("stdout".to_string(), stdout.into_bytes()),
        ("stderr".to_string(), stderr.into_bytes()),
    ];
    for secret in [&token, &client_secret] {
        assert!(find_canary(secret, &haystacks).is_empty());
    }
    // Still stored: a second try reaches the provider again.
    let (ok, _, stderr) = revoke_gh(&fx);
    assert!(!ok && stderr.contains("status 401"), "{stderr}");
}
