//! Tests of the operator config reader.

use super::*;

const GOOD: &str = r#"
[vault]
dir = "data"

[connections.demo]
audience = ["http://127.0.0.1:8080"]

[tools.fetch]
source = "fetch.wasm"
sha256 = "0000000000000000000000000000000000000000000000000000000000000000"

[[tools.fetch.endpoints]]
url = "http://127.0.0.1:8080/**"
methods = ["GET", "POST"]
connection = "demo"
allow_private = true
"#;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, Path::new("airlock.toml"), Path::new("/etc/airlock"))
}

fn error(text: &str) -> String {
    parse(text).unwrap_err().to_string()
}

#[test]
fn good_config_parses_with_paths_resolved() {
    let c = parse(GOOD).unwrap();
    assert_eq!(c.vault.dir, Path::new("/etc/airlock/data"));
    let t = &c.tools["fetch"];
    assert_eq!(t.source, Path::new("/etc/airlock/fetch.wasm"));
    assert_eq!(t.endpoints[0].connection.as_deref(), Some("demo"));
    assert_eq!(t.limits, Limits::default());
}

#[test]
fn unknown_key_names_file_line_and_key() {
    let err = error(&GOOD.replace("allow_private = true", "allow_private = true\nretries = 3"));
    assert!(err.starts_with("airlock.toml:17:"), "{err}");
    assert!(err.contains("retries"), "{err}");
}

#[test]
fn bad_digest_is_located() {
    let err = error(&GOOD.replace(
        "0000000000000000000000000000000000000000000000000000000000000000",
        "abc",
    ));
    assert!(err.starts_with("airlock.toml:10:"), "{err}");
    assert!(err.contains("64 hex digits"), "{err}");
}

#[test]
fn unknown_connection_is_located() {
    let err = error(&GOOD.replace("connection = \"demo\"", "connection = \"github\""));
    assert!(err.starts_with("airlock.toml:15:"), "{err}");
    assert!(
        err.contains("no connection named \"github\"") && err.contains("known: demo"),
        "{err}"
    );
}

#[test]
fn endpoint_outside_audience_is_refused() {
    let err = error(&GOOD.replace(
        "url = \"http://127.0.0.1:8080/**\"",
        "url = \"http://127.0.0.1:9090/**\"",
    ));
    assert!(err.contains("outside the audience"), "{err}");
}

#[test]
fn endpoint_needs_connection_or_unauthenticated() {
    let err = error(&GOOD.replace("connection = \"demo\"", ""));
    assert!(err.contains("unauthenticated = true"), "{err}");
}

#[test]
fn bad_pattern_is_located() {
    let err = error(&GOOD.replace("url = \"http://127.0.0.1:8080/**\"", "url = \"ftp://x/**\""));
    assert!(err.starts_with("airlock.toml:13:"), "{err}");
}

#[test]
fn every_problem_is_reported_in_file_order() {
    let text = GOOD
        .replace("dir = \"data\"", "dir = \"data\"\nsize = 1")
        .replace("audience = [\"http://127.0.0.1:8080\"]", "audience = []")
        .replace("sha256 = \"0000", "sha256 = \"zz00")
        .replace(
            "methods = [\"GET\", \"POST\"]",
            "methods = [\"GET\", \"TRACE\"]",
        );
    let errors = Config::parse_all(&text, Path::new("airlock.toml"), Path::new("/")).unwrap_err();
    let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
    let lines: Vec<usize> = errors.iter().map(|e| e.position().0).collect();
    assert_eq!(lines, [4, 6, 11, 15], "{shown:#?}");
    assert!(
        shown[0].contains("vault: unknown field `size`"),
        "{shown:#?}"
    );
    assert!(
        shown[1].contains("connections.demo.audience: must list"),
        "{shown:#?}"
    );
    assert!(
        shown[2].contains("tools.fetch.sha256: expected 64 hex digits"),
        "{shown:#?}"
    );
    assert!(shown[3].contains("tools.fetch.endpoints[0]:"), "{shown:#?}");
    // The first-error form returns the first of them.
    assert_eq!(error(&text), shown[0]);
}

#[test]
fn an_endpoint_naming_a_broken_connection_gets_no_second_error() {
    let text = GOOD.replace("audience = [\"http://127.0.0.1:8080\"]", "audience = \"x\"");
    let errors = Config::parse_all(&text, Path::new("airlock.toml"), Path::new("/")).unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(
        errors[0].to_string().contains("connections.demo"),
        "{}",
        errors[0]
    );
}

#[test]
fn strict_and_lines_are_read() {
    let text = GOOD.replace(
        "[[tools.fetch.endpoints]]",
        "strict = true\nconfig = { a = \"1\" }\n\n[[tools.fetch.endpoints]]",
    );
    let c = parse(&text).unwrap();
    let t = &c.tools["fetch"];
    assert!(t.strict);
    assert!(
        !parse(GOOD).unwrap().tools["fetch"].strict,
        "off by default"
    );
    assert_eq!(t.lines.table, 8);
    assert_eq!(t.lines.sha256, 10);
    assert_eq!(t.lines.config["a"], 13);
    assert_eq!(t.endpoints[0].line, 15);
}

#[test]
fn unknown_top_level_sections_are_errors() {
    let err = error(&format!("{GOOD}\n[plugins]\nx = 1\n"));
    assert!(
        err.contains("plugins: unknown section; expected one of vault"),
        "{err}"
    );
    let err = error("tools = 3\n");
    assert!(
        err.starts_with("airlock.toml:1:9: tools: expected a table"),
        "{err}"
    );
}

#[test]
fn bad_limit_type_is_located() {
    let err = error(&GOOD.replace(
        "[[tools.fetch.endpoints]]",
        "limits = { max_requests = \"many\" }\n[[tools.fetch.endpoints]]",
    ));
    assert!(err.starts_with("airlock.toml:12:"), "{err}");
}

#[test]
fn connection_with_oauth_keys_parses_and_unknown_keys_are_refused() {
    let text = GOOD.replace(
        "audience = [\"http://127.0.0.1:8080\"]",
        "audience = [\"http://127.0.0.1:8080\"]\nprovider = \"github\"\nclient_id = \"abc\"\nclient_secret_env = \"GH_SECRET\"",
    );
    let c = parse(&text).unwrap();
    let oauth = c.connections["demo"].oauth.as_ref().unwrap();
    assert_eq!(oauth.client_id, "abc");

    let err = error(&text.replace("client_id", "client_idd"));
    assert!(err.contains("client_idd"), "{err}");
    let err = error(&text.replace(
        "client_secret_env = \"GH_SECRET\"",
        "client_secret = \"GH_SECRET\"",
    ));
    assert!(
        err.starts_with("airlock.toml:5:") && err.contains("never written"),
        "{err}"
    );
    assert!(!err.contains("GH_SECRET"), "{err}");
}

#[test]
fn consent_base_url_must_be_https_or_loopback() {
    let err = error(&format!(
        "[host]\nconsent_base_url = \"http://airlock.example.com\"\n{GOOD}"
    ));
    assert!(
        err.starts_with("airlock.toml:2:") && err.contains("only https"),
        "{err}"
    );
    let c = parse(&format!(
        "[host]\nconsent_base_url = \"http://127.0.0.1:8400\"\n{GOOD}"
    ))
    .unwrap();
    assert_eq!(
        c.host.consent_base_url.unwrap().as_str(),
        "http://127.0.0.1:8400/"
    );
}

#[test]
fn host_limits_parse_and_default() {
    let c = parse(GOOD).unwrap();
    assert_eq!(c.host.max_concurrent_calls, 64);
    assert_eq!(c.host.max_concurrent_calls_per_user, 8);
    assert_eq!(c.host.wasm_stack_kib, 512);
    let text = format!(
        "[host]\nmax_concurrent_calls = 3\nmax_concurrent_calls_per_user = 1\nwasm_stack_kib = 128\n{GOOD}"
    );
    let c = parse(&text).unwrap();
    assert_eq!(c.host.max_concurrent_calls, 3);
    assert_eq!(c.host.max_concurrent_calls_per_user, 1);
    assert_eq!(c.host.wasm_stack_kib, 128);
}

#[test]
fn host_limits_below_their_minimum_are_located() {
    let err = error(&format!("[host]\nmax_concurrent_calls = 0\n{GOOD}"));
    assert!(err.starts_with("airlock.toml:2:"), "{err}");
    assert!(
        err.contains("host.max_concurrent_calls: expected at least 1, got 0"),
        "{err}"
    );
    let err = error(&format!("[host]\nwasm_stack_kib = 8\n{GOOD}"));
    assert!(
        err.contains("host.wasm_stack_kib: expected at least 64, got 8"),
        "{err}"
    );
}

#[test]
fn wasm_stack_is_checked_per_tool_and_for_the_host() {
    let with = |limits: &str| {
        GOOD.replace(
            "sha256 = \"0000000000000000000000000000000000000000000000000000000000000000\"",
            &format!(
                "sha256 = \"0000000000000000000000000000000000000000000000000000000000000000\"\nlimits = {{ {limits} }}"
            ),
        )
    };
    let c = parse(&with("wasm_stack_kib = 256")).unwrap();
    assert_eq!(c.tools["fetch"].limits.wasm_stack_kib, Some(256));
    assert_eq!(
        parse(GOOD).unwrap().tools["fetch"].limits.wasm_stack_kib,
        None
    );

    let err = error(&with("wasm_stack_kib = 8"));
    assert!(
        err.starts_with("airlock.toml:")
            && err.contains("tools.fetch.limits.wasm_stack_kib: expected 64 to 16384 KiB, got 8"),
        "{err}"
    );
    let err = error(&format!("[host]\nwasm_stack_kib = 100000\n{GOOD}"));
    assert!(
        err.starts_with("airlock.toml:2:")
            && err.contains("host.wasm_stack_kib: expected at most 16384, got 100000"),
        "{err}"
    );
}
