//! The canary sweep for OAuth: link, call, refresh and revoke through the
//! CLI with debug logging, then search everything that was printed or
//! written for the access tokens, the refresh tokens and the client secret.

use crate::oauth_support::{Browser, OAuthFixture, plain};
use crate::support::{files_under, find_canary};
use serde_json::json;
use std::io::BufRead as _;

#[tokio::test]
async fn no_token_or_client_secret_in_output_logs_audit_or_files() {
    let fx = OAuthFixture::new(json!({ "access_ttl": 3600 }), &["openid"], "");
    let mut haystacks: Vec<(String, Vec<u8>)> = Vec::new();
    let mut secrets = vec![fx.op.client_secret.clone()];

    // Link through `airlock connect`.
    let mut child = fx
        .airlock_command(&["connect", "demo", "--user", "alice", "--no-browser"])
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut printed = String::new();
    let url = loop {
        let mut line = String::new();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "no URL: {printed}"
        );
        printed.push_str(&line);
        if line.starts_with("http://") {
            break line.trim().to_string();
        }
    };
    let (_, page) = Browser::default().follow(&url).await;
    haystacks.push(("callback page".into(), page.body.into_bytes()));
    let out = child.wait_with_output().unwrap();
    printed.push_str(&String::from_utf8_lossy(&out.stdout));
    haystacks.push(("connect stdout".into(), printed.into_bytes()));
    haystacks.push(("connect stderr".into(), out.stderr));
    assert!(out.status.success());
    let linked = fx.record("alice").unwrap();
    secrets.push(plain(&linked.access_token));
    secrets.push(plain(linked.refresh_token.as_ref().unwrap()));

    let mut run = |name: &str, out: std::process::Output| {
        haystacks.push((format!("{name} stdout"), out.stdout.clone()));
        haystacks.push((format!("{name} stderr"), out.stderr.clone()));
        out
    };
    assert!(run("call", fx.call_me("alice")).status.success());
    fx.expire("alice");
    assert!(run("refreshing call", fx.call_me("alice")).status.success());
    let refreshed = fx.record("alice").unwrap();
    secrets.push(plain(&refreshed.access_token));
    secrets.push(plain(refreshed.refresh_token.as_ref().unwrap()));
    run("list", fx.airlock(&["vault", "list"]));
    let revoke = run(
        "revoke",
        fx.airlock(&["vault", "revoke", "--user", "alice", "--connection", "demo"]),
    );
    assert!(
        String::from_utf8_lossy(&revoke.stdout).contains("revoked at the provider"),
        "{}",
        String::from_utf8_lossy(&revoke.stderr)
    );
    let after = run("call after revoke", fx.call_me("alice"));
    assert_eq!(
        after.status.code(),
        Some(3),
        "authorization required after revoke"
    );

    // A refresh the provider refuses, and a client secret it refuses.
    fx.link(&fx.broker(Default::default()), "bob").await;
    let bob = fx.record("bob").unwrap();
    secrets.push(plain(&bob.access_token));
    secrets.push(plain(bob.refresh_token.as_ref().unwrap()));
    let wrong = format!("wrong-{}", fx.op.client_secret);
    std::fs::write(fx.dir.path().join("client.secret"), &wrong).unwrap();
    secrets.push(wrong);
    fx.expire("bob");
    let refused = run("refresh with a wrong client secret", fx.call_me("bob"));
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("invalid_client"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    for dir in ["data", "audit"] {
        for f in files_under(&fx.dir.path().join(dir)) {
            haystacks.push((f.display().to_string(), std::fs::read(&f).unwrap()));
        }
    }
    assert!(haystacks.iter().any(|(n, _)| n.ends_with("vault.json")));
    for secret in &secrets {
        let found = find_canary(secret, &haystacks);
        assert!(found.is_empty(), "secret found: {found:#?}");
    }
    // The sweep sees a token where there is one (base64 of a log line).
    use base64::Engine as _;
    let planted = base64::engine::general_purpose::STANDARD.encode(format!("token={}", secrets[1]));
    assert!(!find_canary(&secrets[1], &[("planted".into(), planted.into_bytes())]).is_empty());
}
