use super::*;

const GOOD: &str = r#"
name = "issues"
version = "1.2.0"

[connections.github]
scopes = ["repo", "read:user", "repo"]

[[endpoints]]
url = "https://api.github.com/repos/*/*/issues"
methods = ["GET", "POST"]
connection = "github"

[[endpoints]]
url = "*"
methods = "GET"
unauthenticated = true

[config.per_page]
default = "50"
description = "issues per request"

[config."feature.flag"]
"#;

fn parse(text: &str) -> Result<Declaration, Vec<ConfigError>> {
    Declaration::parse(text, Path::new("issues.airlock.toml"))
}

/// Every error message, one per line.
fn errors(text: &str) -> String {
    parse(text)
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn good_declaration_parses_into_typed_values() {
    let d = parse(GOOD).unwrap();
    assert_eq!((d.name.as_str(), d.version.as_str()), ("issues", "1.2.0"));
    assert_eq!(
        d.scopes("github"),
        ["read:user", "repo"],
        "sorted, deduplicated"
    );
    assert_eq!(d.connections["github"].line, 5);
    assert_eq!(d.endpoints.len(), 2);
    let issues = &d.endpoints[0];
    assert_eq!(issues.connection.as_deref(), Some("github"));
    assert_eq!(
        issues.url.to_string(),
        "https://api.github.com/repos/*/*/issues"
    );
    assert!(issues.methods.contains("post") && !issues.methods.contains("DELETE"));
    assert_eq!(issues.line, 8, "the [[endpoints]] header");
    assert_eq!(d.endpoints[1].url, DeclaredUrl::Any);
    assert_eq!(d.endpoints[1].connection, None);
    assert_eq!(d.config["per_page"].default.as_deref(), Some("50"));
    assert_eq!(d.config["feature.flag"].default, None);
    assert_eq!(d.source, Path::new("issues.airlock.toml"));
}

#[test]
fn unknown_keys_are_errors_with_line_and_column() {
    let text = GOOD.replace(
        "connection = \"github\"",
        "connection = \"github\"\nretries = 3",
    );
    let err = errors(&text);
    assert!(
        err.starts_with("issues.airlock.toml:12:1: endpoints[0]:"),
        "{err}"
    );
    assert!(err.contains("retries"), "{err}");

    let err = errors(&format!("{GOOD}\n[permissions]\nall = true\n"));
    assert!(
        err.contains("permissions: unknown key; expected one of name, version"),
        "{err}"
    );
}

#[test]
fn every_problem_is_reported_in_file_order() {
    let text = GOOD
        .replace("version = \"1.2.0\"", "version = \"1.2 beta\"")
        .replace("\"read:user\"", "\"read user\"")
        .replace("methods = \"GET\"", "methods = \"TRACE\"")
        .replace("description = \"issues per request\"", "descripton = \"x\"");
    let all = parse(&text).unwrap_err();
    let lines: Vec<usize> = all.iter().map(|e| e.position().0).collect();
    assert_eq!(lines, [3, 6, 15, 20], "{all:#?}");
    let err = errors(&text);
    assert!(err.contains("version: \"1.2 beta\" must be"), "{err}");
    assert!(err.contains("\"read user\" is not an OAuth scope"), "{err}");
    assert!(err.contains("never allowed"), "{err}");
    assert!(err.contains("descripton"), "{err}");
}

#[test]
fn endpoints_must_bind_to_a_declared_connection_or_none() {
    let err = errors(&GOOD.replace("connection = \"github\"", "connection = \"gitlab\""));
    assert!(
        err.contains("\"gitlab\" is not declared; add [connections.gitlab] (declared: github)"),
        "{err}"
    );
    // github is now unused as well, but that is the same mistake.
    assert!(!err.contains("no endpoint uses it"), "{err}");
    let err = errors(&format!("{GOOD}\n[connections.slack]\n"));
    assert!(
        err.contains("connections.slack: no endpoint uses it"),
        "{err}"
    );

    let err = errors(&GOOD.replace("unauthenticated = true", ""));
    assert!(err.contains("endpoints[1]: set connection"), "{err}");
    let err = errors(&GOOD.replace(
        "unauthenticated = true",
        "unauthenticated = true\nconnection = \"github\"",
    ));
    assert!(err.contains("not both"), "{err}");
}

#[test]
fn urls_and_names_are_checked() {
    let err = errors(&GOOD.replace(
        "https://api.github.com/repos/*/*/issues",
        "https://user@api.github.com/**",
    ));
    assert!(
        err.starts_with("issues.airlock.toml:9:7: endpoints[0].url:"),
        "{err}"
    );
    assert!(err.contains("userinfo"), "{err}");
    let err = errors(&GOOD.replace("https://api.github.com/repos/*/*/issues", "https://*/**"));
    assert!(err.contains("endpoints[0].url"), "{err}");
    let err = errors(&GOOD.replace("name = \"issues\"", "name = \"has space\""));
    assert!(
        err.contains("name: name \"has space\" must be 1 to 64"),
        "{err}"
    );
    let err = errors(&GOOD.replace("[config.per_page]", "[config.\"per page\"]"));
    assert!(
        err.contains("config.per page: key \"per page\" must be"),
        "{err}"
    );
}

#[test]
fn name_and_version_are_required() {
    let err = errors("[[endpoints]]\nurl = \"*\"\nmethods = \"*\"\nunauthenticated = true\n");
    assert!(err.contains("name: is missing"), "{err}");
    assert!(err.contains("version: is missing"), "{err}");
}

#[test]
fn wrong_types_and_syntax_are_located() {
    let err = errors(&GOOD.replace("[[endpoints]]\nurl = \"*\"", "[endpoints2]\nurl = \"*\""));
    assert!(err.contains("endpoints2: unknown key"), "{err}");
    let err = errors("name = \"x\"\nversion = \"1\"\nendpoints = \"all\"\n");
    assert!(
        err.starts_with("issues.airlock.toml:3:13: endpoints: expected an array, found a string"),
        "{err}"
    );
    let err = errors("name = \"x\"\nversion = [\n");
    assert!(err.starts_with("issues.airlock.toml:2:"), "{err}");
}

#[test]
fn oversized_declarations_are_refused_before_parsing() {
    let text = format!("{GOOD}#{}", "x".repeat(MAX_BYTES));
    assert!(errors(&text).contains("at most 65536"));
}

#[test]
fn scope_tokens_follow_rfc_6749() {
    for good in [
        "repo",
        "read:user",
        "https://www.googleapis.com/auth/drive",
        "a!#[]~",
    ] {
        assert!(is_scope(good), "{good}");
    }
    for bad in ["", "a b", "a\"b", "a\\b", "ü", "a\tb", &"x".repeat(257)] {
        assert!(!is_scope(bad), "{bad:?}");
    }
}

#[test]
fn scopes_are_a_list_or_a_star() {
    let base = "name = \"t\"\nversion = \"1.0.0\"\n[[endpoints]]\nurl = \"*\"\nmethods = \"*\"\nconnection = \"github\"\n[connections.github]\n";
    let any = parse(&format!("{base}scopes = \"*\"\n")).unwrap();
    assert!(any.any_scopes("github"));
    assert!(any.scopes("github").is_empty());
    let listed = parse(&format!("{base}scopes = [\"repo\"]\n")).unwrap();
    assert!(!listed.any_scopes("github"));
    assert_eq!(listed.scopes("github"), ["repo"]);

    let err = errors(&format!("{base}scopes = \"repo\"\n"));
    assert!(
        err.starts_with("issues.airlock.toml:8:") && err.contains("got the string \"repo\""),
        "{err}"
    );
    let err = errors(&format!("{base}scopes = 3\n"));
    assert!(
        err.starts_with("issues.airlock.toml:8:") && err.contains("a list of scopes"),
        "{err}"
    );
}
