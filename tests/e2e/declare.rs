//! Tool declarations: `airlock pack` and `inspect`, the effective grant
//! (declaration ∩ operator grant) at load, strict mode, and `airlock check`
//! reporting every problem of a config.

use crate::support::{Fixture, canary, fetch, ok, sha256_file, tool_error};
use airlock::runtime::{Host, LoadError};
use airlock_tests::guests;
use serde_json::json;
use std::path::{Path, PathBuf};

/// A declaration asking for GET /get (granted), DELETE /delete (not
/// granted) and a scope the operator does not list.
fn narrow_declaration(port: u16) -> String {
    format!(
        r#"
name = "fetch"
version = "0.1.0"

[connections.demo]
scopes = ["read"]

[[endpoints]]
url = "http://127.0.0.1:{port}/get"
methods = "GET"
connection = "demo"

[[endpoints]]
url = "http://127.0.0.1:{port}/delete"
methods = ["DELETE"]
connection = "demo"

[config.user_agent]
default = "declared-default"
"#
    )
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Packs `declaration` into a copy of the fetch component with
/// `airlock pack` and points the fixture's tool at the copy.
fn pack_into_fixture(fx: &Fixture, declaration: &str) -> PathBuf {
    let declaration_path = fx.dir.path().join("narrow.toml");
    std::fs::write(&declaration_path, declaration).unwrap();
    let packed = fx.dir.path().join("fetch-narrow.wasm");
    let out = fx.airlock(
        &[
            "pack",
            guests::FETCH,
            declaration_path.to_str().unwrap(),
            "-o",
            packed.to_str().unwrap(),
        ],
        None,
    );
    assert!(out.status.success(), "pack: {}", text(&out.stderr));
    let digest = sha256_file(&packed);
    let stdout = text(&out.stdout);
    assert!(stdout.contains(&format!("sha256 {digest}")), "{stdout}");
    assert_ne!(digest, sha256_file(Path::new(guests::FETCH)));

    let config = std::fs::read_to_string(&fx.config_path).unwrap();
    let config = config
        .replace(guests::FETCH, packed.to_str().unwrap())
        .replace(&sha256_file(Path::new(guests::FETCH)), &digest);
    std::fs::write(&fx.config_path, config).unwrap();
    packed
}

/// Adds `line` to the fixture's `[tools.fetch]` table.
fn add_to_tool(fx: &Fixture, line: &str) {
    let config = std::fs::read_to_string(&fx.config_path).unwrap();
    let config = config.replace("[tools.fetch]\n", &format!("[tools.fetch]\n{line}\n"));
    std::fs::write(&fx.config_path, config).unwrap();
}

#[test]
fn inspect_shows_digest_declaration_and_tools() {
    let fx = Fixture::new();
    let packed = pack_into_fixture(&fx, &narrow_declaration(fx.port));
    let out = fx.airlock(&["inspect", packed.to_str().unwrap()], None);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        stdout.contains(&format!("sha256 {}", sha256_file(&packed))),
        "{stdout}"
    );
    assert!(stdout.contains("declaration fetch (from "), "{stdout}");
    assert!(
        stdout.contains("fetch-narrow.wasm#airlock-declaration)"),
        "{stdout}"
    );
    assert!(stdout.contains("demo: scopes read"), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "DELETE http://127.0.0.1:{}/delete (connection demo)",
            fx.port
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("user_agent: default \"declared-default\""),
        "{stdout}"
    );
    assert!(stdout.contains("fetch.fetch"), "{stdout}");
    assert!(
        stdout.contains("input: {") && stdout.contains("\"url\""),
        "{stdout}"
    );

    // The built component ships its declaration beside it.
    let out = fx.airlock(&["inspect", guests::FETCH], None);
    let stdout = text(&out.stdout);
    assert!(stdout.contains("fetch.wasm.airlock.toml)"), "{stdout}");
    assert!(
        stdout.contains("* * (any URL the operator grants) (unauthenticated)"),
        "{stdout}"
    );
}

#[tokio::test]
async fn a_declaration_beyond_the_grant_loads_with_a_warning_and_extras_are_denied() {
    let fx = Fixture::new();
    pack_into_fixture(&fx, &narrow_declaration(fx.port));
    let token = canary();
    fx.link("alice", &token);

    // Loading warns with the exact lines that would grant what is missing.
    let url = format!("{}/get", fx.upstream);
    let out = fx.call_fetch("alice", &json!({ "url": url }));
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    for line in [
        "[[tools.fetch.endpoints]]".to_owned(),
        format!("url = \"http://127.0.0.1:{}/delete\"", fx.port),
        "methods = [\"DELETE\"]".to_owned(),
        "connection = \"demo\"".to_owned(),
        "scopes = [\"read\"]".to_owned(),
    ] {
        assert!(stderr.contains(&line), "missing {line:?} in:\n{stderr}");
    }
    assert!(stderr.contains("WARN"), "{stderr}");
    assert!(!stderr.contains(&token));

    // Declared and granted: allowed, with the operator's config value.
    let (host, _audit) = fx.host();
    let response = ok(fetch(&host, "alice", json!({ "url": url })).await);
    assert_eq!(response["status"], 200);
    assert!(
        response["body"].as_str().unwrap().contains("airlock-e2e"),
        "{response}"
    );

    // Declared but not granted, and granted but not declared: both denied.
    let denied = [
        json!({ "url": format!("{}/delete", fx.upstream), "method": "DELETE" }),
        json!({ "url": format!("{}/put", fx.upstream), "method": "PUT", "body": "x" }),
        json!({ "url": format!("{}/headers", fx.upstream) }),
    ];
    for args in denied {
        let err = tool_error(fetch(&host, "alice", args.clone()).await);
        assert_eq!(err, "HTTP-request-denied", "{args}");
    }
    // The operator's log says which of the two each denial is (the CLI
    // opens the audit log this host holds).
    drop((host, _audit));
    let denial_hint = |args: serde_json::Value| {
        let out = fx.call_fetch("alice", &args);
        let stderr = text(&out.stderr);
        stderr
            .lines()
            .find(|l| l.contains("airlock.egress.denied"))
            .unwrap_or_else(|| panic!("no denial logged for {args}:\n{stderr}"))
            .to_owned()
    };
    let undeclared = denial_hint(json!({ "url": format!("{}/headers", fx.upstream) }));
    assert!(
        undeclared.contains("grant 0 of tool fetch")
            && undeclared.contains("the tool's declaration does not ask for it"),
        "{undeclared}"
    );
    let ungranted =
        denial_hint(json!({ "url": format!("{}/delete", fx.upstream), "method": "DELETE" }));
    assert!(
        !ungranted.contains("does not ask for it") && ungranted.contains("DELETE"),
        "{ungranted}"
    );

    // `airlock check` reports the same as warnings and succeeds.
    let out = fx.airlock(&["check"], None);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("warning: tools.fetch.endpoints: the tool's declared endpoint 1"),
        "{stdout}"
    );
    assert!(stdout.contains("0 error(s), 2 warning(s)"), "{stdout}");
}

#[test]
fn a_strict_tool_asking_for_more_than_the_grant_does_not_load() {
    let fx = Fixture::new();
    pack_into_fixture(&fx, &narrow_declaration(fx.port));
    add_to_tool(&fx, "strict = true");

    let err = Host::load(&fx.config(), airlock::audit::AuditLog::disabled())
        .err()
        .expect("a strict tool with an ungranted need must not load");
    let LoadError::Strict { tool, findings, .. } = &err else {
        panic!("expected a strict refusal, got {err}");
    };
    assert_eq!(tool, "fetch");
    assert_eq!(findings.len(), 2, "{err}");
    assert!(err.to_string().contains("methods = [\"DELETE\"]"), "{err}");

    let out = fx.airlock(&["tools"], None);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("is strict and was not loaded"),
        "{}",
        text(&out.stderr)
    );

    let out = fx.airlock(&["check"], None);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("error: tools.fetch.endpoints: strict = true refuses to load"),
        "{stdout}"
    );
    assert!(stdout.contains("2 error(s), 0 warning(s)"), "{stdout}");

    // What does not refuse a strict tool is still reported beside what does.
    let unused = format!(
        "\n[[tools.fetch.endpoints]]\nurl = \"http://127.0.0.1:{}/unused/**\"\nmethods = \"GET\"\nunauthenticated = true\nallow_private = true\n",
        fx.port
    );
    let mut config = std::fs::read_to_string(&fx.config_path).unwrap();
    config.push_str(&unused);
    std::fs::write(&fx.config_path, config).unwrap();
    let out = fx.airlock(&["check"], None);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("2 error(s), 1 warning(s)"), "{stdout}");
    assert!(stdout.contains("is not used"), "{stdout}");
}

#[test]
fn a_strict_tool_without_a_declaration_does_not_load() {
    let fx = Fixture::new();
    let bare = fx.dir.path().join("bare.wasm");
    std::fs::copy(guests::FETCH, &bare).unwrap();
    let config = std::fs::read_to_string(&fx.config_path)
        .unwrap()
        .replace(guests::FETCH, bare.to_str().unwrap());
    std::fs::write(&fx.config_path, config).unwrap();

    // Not strict: loads, with a warning.
    let out = fx.airlock(&["check"], None);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("carries no declaration"), "{stdout}");

    add_to_tool(&fx, "strict = true");
    let err = Host::load(&fx.config(), airlock::audit::AuditLog::disabled()).err();
    assert!(matches!(err, Some(LoadError::Strict { .. })), "{err:?}");
}

#[tokio::test]
async fn declared_config_defaults_sit_under_operator_values() {
    let fx = Fixture::new();
    let config = std::fs::read_to_string(&fx.config_path)
        .unwrap()
        .replace("config = { user_agent = \"airlock-e2e\" }\n", "");
    std::fs::write(&fx.config_path, config).unwrap();
    fx.link("alice", &canary());
    let (host, _audit) = fx.host();
    let response = ok(fetch(
        &host,
        "alice",
        json!({ "url": format!("{}/headers", fx.upstream) }),
    )
    .await);
    let body = response["body"].as_str().unwrap();
    assert!(
        body.contains("\"User-Agent\": \"airlock-fetch/0.1.0\""),
        "{body}"
    );
}

#[test]
fn pack_refuses_an_invalid_declaration_and_writes_nothing() {
    let fx = Fixture::new();
    let bad = fx.dir.path().join("bad.toml");
    std::fs::write(&bad, "name = \"fetch\"\nversion = \"1\"\nretries = 3\n[[endpoints]]\nurl = \"*\"\nmethods = \"TRACE\"\n").unwrap();
    let out_path = fx.dir.path().join("out.wasm");
    let out = fx.airlock(
        &[
            "pack",
            guests::FETCH,
            bad.to_str().unwrap(),
            "-o",
            out_path.to_str().unwrap(),
        ],
        None,
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("bad.toml:3:1: retries: unknown key"),
        "{stderr}"
    );
    assert!(stderr.contains("bad.toml:6:"), "{stderr}");
    assert!(!out_path.exists());
}

#[test]
fn check_reports_every_problem_with_file_line_and_key() {
    let fx = Fixture::new();
    let wasm = guests::FETCH;
    let digest = sha256_file(Path::new(wasm));
    let config = format!(
        r#"[vault]
dri = "data"

[connections.demo]
audience = ["http://127.0.0.1:{port}"]

[connections.broken]
audience = ["https://api.example.com/v1"]

[tools.wrongdigest]
source = "{wasm}"
sha256 = "{zeros}"

[tools.missing]
source = "nowhere.wasm"
sha256 = "{digest}"

[tools.overlap]
source = "{wasm}"
sha256 = "{digest}"

[[tools.overlap.endpoints]]
url = "http://127.0.0.1:{port}/**"
methods = "GET"
connection = "demo"

[[tools.overlap.endpoints]]
url = "http://127.0.0.1:{port}/a/*"
methods = ["GET", "POST"]
unauthenticated = true

[tools.fetch]
source = "{wasm}"
sha256 = "{digest}"
config = {{ colour = "blue" }}

[[tools.fetch.endpoints]]
url = "http://127.0.0.1:{port}/**"
methods = "GET"
connection = "nope"

[[tools.fetch.endpoints]]
url = "http://127.0.0.1:{port}/**"
methods = "GET"
unauthenticated = true
retries = 3

[[tools.fetch.endpoints]]
url = "http://127.0.0.1:{port}/x/**"
methods = "GET"
connection = "broken"
"#,
        port = fx.port,
        zeros = "0".repeat(64),
    );
    std::fs::write(&fx.config_path, config).unwrap();
    let file = fx.config_path.display().to_string();
    let port = fx.port;

    let out = fx.airlock(&["check"], None);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    let expected = [
        format!("{file}:2:1: error: vault: unknown field `dri`"),
        format!(
            "{file}:8:13: error: connections.broken.audience: \"https://api.example.com/v1\" must be an origin"
        ),
        format!(
            "{file}:40:14: error: tools.fetch.endpoints[0].connection: no connection named \"nope\" (known: demo)"
        ),
        format!("{file}:46:1: error: tools.fetch.endpoints[1]: unknown field `retries`"),
        format!("{file}:14: error: tools.missing.source: cannot read"),
        format!(
            "{file}:12: error: tools.wrongdigest.sha256: {wasm} has sha256 {digest}, but the config pins"
        ),
        format!(
            "{file}:18: error: tools.overlap: grant 0 (GET http://127.0.0.1:{port}/**, connection \"demo\") and grant 1"
        ),
    ];
    for line in &expected {
        assert!(
            stdout.contains(line.as_str()),
            "missing {line:?} in:\n{stdout}"
        );
    }
    // The endpoint naming the broken connection gets no second error, and
    // the fetch tool's declaration findings are not piled on its errors.
    assert!(!stdout.contains("endpoints[2]"), "{stdout}");
    assert!(!stdout.contains("colour"), "{stdout}");
    assert!(
        stdout.contains("failed, 7 error(s), 0 warning(s)"),
        "{stdout}"
    );
}

#[test]
fn check_reports_a_client_secret_that_cannot_be_read() {
    let fx = Fixture::new();
    let secret_file = fx.dir.path().join("client.secret");
    let config = std::fs::read_to_string(&fx.config_path).unwrap().replace(
        "[connections.demo]\n",
        &format!(
            "[connections.demo]\nprovider = \"github\"\nclient_id = \"abc\"\nclient_secret_file = {:?}\n",
            secret_file.display().to_string()
        ),
    );
    assert!(config.contains("client_secret_file"), "{config}");
    std::fs::write(&fx.config_path, config).unwrap();

    let out = fx.airlock(&["check"], None);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains(": error: connections.demo: client secret of connection \"demo\"")
            && stdout.contains("client.secret"),
        "{stdout}"
    );

    let secret = canary();
    std::fs::write(&secret_file, &secret).unwrap();
    let out = fx.airlock(&["check"], None);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(!stdout.contains(&secret) && !text(&out.stderr).contains(&secret));
}

#[test]
fn a_memory_limit_below_the_components_own_memory_is_named() {
    let echo = guests::ECHO;
    let fx = Fixture::with_endpoints(&[&format!(
        "\n[tools.echo]\nsource = {echo:?}\nsha256 = \"{}\"\nlimits = {{ memory_mib = 1 }}\n",
        sha256_file(Path::new(echo))
    )]);
    // The echo component starts with a little more than 1 MiB of memory
    // (Rust's 1 MiB stack and its data).
    let err = Host::load(&fx.config(), airlock::audit::AuditLog::disabled())
        .err()
        .expect("a host whose tool cannot start loaded");
    let LoadError::Memory {
        tool,
        bytes,
        memory_mib,
        needed_mib,
    } = &err
    else {
        panic!("not a memory error: {err}");
    };
    assert_eq!((tool.as_str(), *memory_mib, *needed_mib), ("echo", 1, 2));
    assert!(*bytes > 1 << 20 && *bytes <= 2 << 20, "{bytes}");

    let out = fx.airlock(&["check"], None);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains(": error: tools.echo.limits.memory_mib: its component starts with")
            && stdout.contains("set memory_mib to at least 2"),
        "{stdout}"
    );

    let fixed = std::fs::read_to_string(&fx.config_path)
        .unwrap()
        .replace("memory_mib = 1 ", "memory_mib = 2 ");
    std::fs::write(&fx.config_path, fixed).unwrap();
    let out = fx.airlock(&["check"], None);
    assert!(out.status.success(), "{}", text(&out.stdout));
}
