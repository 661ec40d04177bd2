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

/// The sweep over the hostile tool run through the CLI: every attack that
/// could make the host print, log or store something, with trace logging.
#[test]
fn canary_never_appears_when_hostile_tools_run_through_the_cli() {
    use crate::support::sha256_file;
    let wasm = airlock_tests::guests::HOSTILE;
    let fx = Fixture::with_endpoints(&[&format!(
        r#"
[tools.hostile]
source = "{wasm}"
sha256 = "{}"
limits = {{ cpu_ms = 300, memory_mib = 32, max_requests = 4, max_output_bytes = 4096 }}

[[tools.hostile.endpoints]]
url = "http://127.0.0.1:{}/**"
methods = ["GET", "POST"]
connection = "demo"
allow_private = true
"#,
        sha256_file(std::path::Path::new(wasm)),
        airlock_tests::peers::httpbin().port
    )]);
    let token = canary();
    let mut sweep = crate::sweep::Sweep::new("cli-hostile", &[&token]);
    let out = fx.airlock(
        &["vault", "put", "--user", "alice", "--connection", "demo"],
        Some(&token),
    );
    assert!(out.status.success());
    let get = |path: &str| {
        json!({ "request": { "method": "GET", "scheme": "http",
            "authority": format!("127.0.0.1:{}", fx.port), "path": path,
            "headers": [], "body": null } })
    };
    let vault = fx.data_dir().join("vault.json");
    let calls = [
        ("hostile.env", json!({})),
        (
            "hostile.read-file",
            json!({ "path": vault.display().to_string() }),
        ),
        ("hostile.send", get("/headers")),
        ("hostile.send", get("/gzip")),
        ("hostile.send", get("/deflate")),
        (
            "hostile.send",
            get(&format!("/redirect-to?url=http://localhost:{}/", fx.port)),
        ),
        (
            "hostile.follow",
            json!({ "request": get(&format!("/redirect-to?url=http://localhost:{}/headers", fx.port))["request"], "hops": 2 }),
        ),
        (
            "hostile.burst",
            json!({ "request": get("/bearer")["request"], "count": 50 }),
        ),
        ("hostile.spin", json!({})),
        ("hostile.hog", json!({ "mib": 512 })),
        ("hostile.shout", json!({ "bytes": 100000 })),
        ("hostile.trap-mid-request", get("/anything")),
        ("hostile.chatter", json!({ "lines": 3 })),
        ("hostile.print", json!({ "bytes": 1_000_000 })),
    ];
    let mut refused = 0;
    for (i, (tool, args)) in calls.iter().enumerate() {
        let out = fx.airlock(
            &["call", tool, "--user", "alice", "--args", &args.to_string()],
            None,
        );
        refused += usize::from(!out.status.success());
        // What a tool prints to stdio goes nowhere.
        for stream in [&out.stdout, &out.stderr] {
            let text = String::from_utf8_lossy(stream);
            assert!(
                !text.contains("PRINTED-BY-THE-TOOL"),
                "{tool} printed through"
            );
        }
        if *tool == "hostile.print" {
            // The tool did write: 782 blocks of 1280 bytes.
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(stdout.contains("1000960"), "{stdout}");
        }
        sweep.add(format!("{i} {tool} stdout"), out.stdout);
        sweep.add(format!("{i} {tool} stderr"), out.stderr);
    }
    // The limits and traps really were hit (and printed).
    assert!(refused >= 5, "only {refused} calls failed");
    sweep.finish(&fx);
}
