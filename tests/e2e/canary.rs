//! The canary sweep: run the CLI through every path with a canary token and
//! debug logging, then search every byte it produced for the canary in raw,
//! hex, percent-encoded, base64 and base64url form.

use crate::support::{Fixture, canary, files_under, find_canary};
use serde_json::json;

#[test]
fn canary_never_appears_in_output_logs_audit_or_vault() {
    let fx = Fixture::new();
    let token = canary();
    let mut haystacks: Vec<(String, Vec<u8>)> = Vec::new();
    let mut run = |name: &str, args: &[&str], stdin: Option<&str>| {
        let out = fx.airlock(args, stdin);
        haystacks.push((format!("{name} stdout"), out.stdout.clone()));
        haystacks.push((format!("{name} stderr"), out.stderr.clone()));
        out
    };

    run(
        "vault put",
        &["vault", "put", "--user", "alice", "--connection", "demo"],
        Some(&token),
    );
    run("vault list", &["vault", "list"], None);
    let calls = [
        (
            "bearer",
            "alice",
            json!({ "url": format!("{}/bearer", fx.upstream) }),
        ),
        (
            "headers",
            "alice",
            json!({ "url": format!("{}/headers", fx.upstream) }),
        ),
        (
            "denied",
            "alice",
            json!({ "url": format!("http://localhost:{}/headers", fx.port) }),
        ),
        (
            "no link",
            "bob",
            json!({ "url": format!("{}/bearer", fx.upstream) }),
        ),
        (
            "forbidden header",
            "alice",
            json!({ "url": format!("{}/headers", fx.upstream), "headers": [{ "name": "Authorization", "value": "x" }] }),
        ),
        (
            "redirect",
            "alice",
            json!({ "url": format!("{}/redirect-to?url=http://localhost:{}/", fx.upstream, fx.port) }),
        ),
    ];
    for (name, user, args) in &calls {
        run(
            name,
            &[
                "call",
                "fetch.fetch",
                "--user",
                user,
                "--args",
                &args.to_string(),
            ],
            None,
        );
    }

    let bearer = String::from_utf8_lossy(
        &haystacks
            .iter()
            .find(|(n, _)| n == "bearer stdout")
            .unwrap()
            .1,
    )
    .to_string();
    assert!(
        bearer.contains("[REDACTED]") && bearer.contains("\\\"authenticated\\\": true"),
        "{bearer}"
    );
    let no_link = String::from_utf8_lossy(
        &haystacks
            .iter()
            .find(|(n, _)| n == "no link stderr")
            .unwrap()
            .1,
    )
    .to_string();
    assert!(
        no_link.contains("authorization required") && no_link.contains("\"demo\""),
        "{no_link}"
    );

    let mut files = files_under(&fx.data_dir());
    files.extend(files_under(&fx.audit_dir()));
    assert!(
        files.iter().any(|f| f.ends_with("vault.json")),
        "vault file exists"
    );
    assert!(
        files
            .iter()
            .any(|f| f.extension().is_some_and(|e| e == "jsonl")),
        "audit file exists"
    );
    for f in files {
        haystacks.push((f.display().to_string(), std::fs::read(&f).unwrap()));
    }

    let found = find_canary(&token, &haystacks);
    assert!(found.is_empty(), "canary found: {found:#?}");
    // The sweep must be able to see a canary where there is one.
    let planted = vec![(
        "planted".to_string(),
        format!("x{}y", hex::encode(&token)).into_bytes(),
    )];
    assert_eq!(find_canary(&token, &planted).len(), 1);
}
