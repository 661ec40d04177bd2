use super::*;
use crate::manifest::Config;
use std::path::Path;

const CONFIG: &str = r#"
[connections.github]
audience = ["https://api.github.com"]

[tools.issues]
source = "issues.wasm"
sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
config = { per_page = "10", colour = "blue" }

[[tools.issues.endpoints]]
url = "https://api.github.com/repos/**"
methods = ["GET", "DELETE"]
connection = "github"
scopes = ["repo", "admin:org"]

[[tools.issues.endpoints]]
url = "https://status.example.com/**"
methods = "GET"
unauthenticated = true
"#;

const DECLARATION: &str = r#"
name = "issues"
version = "1.0.0"

[connections.github]
scopes = ["repo", "read:user"]

[connections.slack]
scopes = ["chat:write"]

[[endpoints]]
url = "https://api.github.com/repos/*/*/issues"
methods = ["GET", "POST"]
connection = "github"

[[endpoints]]
url = "https://slack.com/api/chat.postMessage"
methods = "POST"
connection = "slack"

[config.per_page]
default = "50"

[config.label]
default = "bug"

[config.optional]
"#;

fn config() -> Config {
    Config::parse(CONFIG, Path::new("airlock.toml"), Path::new("/srv")).unwrap()
}

fn declaration(text: &str) -> Declaration {
    Declaration::parse(text, Path::new("issues.wasm#airlock-declaration")).unwrap()
}

fn compute(config: &Config, declaration: Option<&Declaration>) -> Effective {
    effective(
        "issues",
        &config.tools["issues"],
        &config.connections,
        declaration,
    )
}

fn of_kind(e: &Effective, kind: FindingKind) -> Vec<&Finding> {
    e.findings.iter().filter(|f| f.kind == kind).collect()
}

#[test]
fn endpoints_are_the_exact_intersection() {
    let config = config();
    let e = compute(&config, Some(&declaration(DECLARATION)));
    let shown: Vec<String> = e
        .endpoints
        .iter()
        .map(|g| format!("{} {} {:?} {:?}", g.methods, g.url, g.connection, g.scopes))
        .collect();
    // GET only (POST not granted, DELETE not declared), the declared path
    // only, and only the declared one of the granted scopes.
    assert_eq!(
        shown,
        ["GET https://api.github.com/repos/*/*/issues Some(\"github\") [\"repo\"]"]
    );
    assert_eq!(e.endpoints[0].line, 10, "keeps the operator grant's line");
}

#[test]
fn missing_needs_come_with_the_lines_that_would_grant_them() {
    let config = config();
    let e = compute(&config, Some(&declaration(DECLARATION)));
    let missing = of_kind(&e, FindingKind::NotGranted);
    let described: Vec<String> = missing.iter().map(|f| f.describe()).collect();
    let all = described.join("\n---\n");
    assert_eq!(missing.len(), 4, "{all}");

    // slack is not configured at all.
    let slack = missing
        .iter()
        .find(|f| f.key == "connections.slack")
        .expect(&all);
    assert_eq!(
        slack.grant_lines,
        ["[connections.slack]", "audience = [\"https://slack.com\"]"]
    );
    // POST on issues is not granted; GET is.
    let post = missing
        .iter()
        .find(|f| f.message.contains("endpoint 0"))
        .expect(&all);
    assert!(
        post.message.contains("is not granted for method(s) POST"),
        "{}",
        post.message
    );
    assert!(
        post.message.contains("issues.wasm#airlock-declaration:11"),
        "{}",
        post.message
    );
    assert_eq!(
        post.grant_lines,
        [
            "[[tools.issues.endpoints]]",
            "url = \"https://api.github.com/repos/*/*/issues\"",
            "methods = [\"POST\"]",
            "connection = \"github\"",
            "scopes = [\"read:user\", \"repo\"]",
        ]
    );
    assert_eq!(post.line, 5, "points at the tool's table");
    // The slack endpoint itself.
    assert!(
        all.contains("endpoint 1 (POST https://slack.com/api/chat.postMessage"),
        "{all}"
    );
    // read:user is declared for github but no grant lists it.
    let scopes = missing
        .iter()
        .find(|f| f.message.contains("needs scope"))
        .expect(&all);
    assert!(
        scopes.message.contains("\"read:user\""),
        "{}",
        scopes.message
    );
    assert!(
        !scopes.message.contains("\"repo\","),
        "repo is granted: {}",
        scopes.message
    );
}

#[test]
fn undeclared_grants_and_config_keys_are_reported_and_not_used() {
    let config = config();
    let e = compute(&config, Some(&declaration(DECLARATION)));
    let unused = of_kind(&e, FindingKind::UnusedGrant);
    assert_eq!(unused.len(), 1);
    assert!(
        unused[0].message.contains("https://status.example.com/**"),
        "{}",
        unused[0].message
    );
    assert_eq!(unused[0].line, 16);

    let undeclared = of_kind(&e, FindingKind::UndeclaredConfig);
    assert_eq!(undeclared.len(), 1);
    assert_eq!(undeclared[0].key, "tools.issues.config.colour");
    assert_eq!(undeclared[0].line, 8);

    // Operator value over the default; default when unset; undeclared dropped.
    let expected: BTreeMap<String, String> = [("label", "bug"), ("per_page", "10")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    assert_eq!(e.config, expected);
}

#[test]
fn a_generic_declaration_takes_the_operators_urls() {
    let config = config();
    let generic = declaration(
        r#"
name = "fetch"
version = "0.1.0"

[connections.github]

[[endpoints]]
url = "*"
methods = "*"
connection = "github"
"#,
    );
    let e = compute(&config, Some(&generic));
    assert_eq!(e.endpoints.len(), 1);
    assert_eq!(
        e.endpoints[0].url.to_string(),
        "https://api.github.com/repos/**"
    );
    assert_eq!(e.endpoints[0].methods.to_string(), "DELETE, GET");
    assert!(
        e.endpoints[0].scopes.is_empty(),
        "no scope declared, none required"
    );
    // The unauthenticated grant has no declared counterpart.
    assert_eq!(of_kind(&e, FindingKind::UnusedGrant).len(), 1);
    assert!(
        of_kind(&e, FindingKind::NotGranted).is_empty(),
        "{:?}",
        e.findings
    );
}

#[test]
fn without_a_declaration_the_grants_apply_as_written() {
    let config = config();
    let e = compute(&config, None);
    assert_eq!(e.endpoints.len(), 2);
    assert_eq!(e.config, config.tools["issues"].config);
    assert_eq!(e.findings.len(), 1);
    let f = &e.findings[0];
    assert_eq!(f.kind, FindingKind::NoDeclaration);
    assert!(f.kind.refuses_strict());
    assert!(
        f.message.contains("issues.wasm.airlock.toml"),
        "{}",
        f.message
    );
}

#[test]
fn needs_split_across_grants_count_as_granted() {
    let text = CONFIG.replace(
        "[[tools.issues.endpoints]]\nurl = \"https://status",
        "[[tools.issues.endpoints]]\nurl = \"https://api.github.com/repos/*/*/issues\"\nmethods = \"POST\"\nconnection = \"github\"\nscopes = [\"read:user\"]\n\n[[tools.issues.endpoints]]\nurl = \"https://status",
    );
    let config = Config::parse(&text, Path::new("airlock.toml"), Path::new("/")).unwrap();
    let only_github = DECLARATION
        .split("[connections.slack]")
        .next()
        .unwrap()
        .to_owned()
        + r#"
[[endpoints]]
url = "https://api.github.com/repos/*/*/issues"
methods = ["GET", "POST"]
connection = "github"
"#;
    let e = compute(&config, Some(&declaration(&only_github)));
    assert!(
        of_kind(&e, FindingKind::NotGranted).is_empty(),
        "{:#?}",
        e.findings
    );
    assert!(!FindingKind::UnusedGrant.refuses_strict());
    assert!(!FindingKind::UndeclaredConfig.refuses_strict());
}

#[test]
fn a_need_granted_for_some_of_its_urls_is_partly_granted() {
    let config = config();
    let wide = declaration(
        r#"
name = "issues"
version = "1.0.0"

[connections.github]

[[endpoints]]
url = "https://api.github.com/**"
methods = "GET"
connection = "github"
"#,
    );
    let e = compute(&config, Some(&wide));
    let missing = of_kind(&e, FindingKind::NotGranted);
    assert_eq!(missing.len(), 1, "{:#?}", e.findings);
    assert!(
        missing[0]
            .message
            .contains("is only partly granted for any of its methods"),
        "{}",
        missing[0].message
    );
    // What is granted is the part both sides name.
    assert_eq!(
        e.endpoints[0].url.to_string(),
        "https://api.github.com/repos/**"
    );
}

#[test]
fn a_generic_declaration_with_any_scopes_takes_the_operators_scopes() {
    let config = config();
    let generic = declaration(
        r#"
name = "fetch"
version = "0.1.0"

[connections.github]
scopes = "*"

[[endpoints]]
url = "*"
methods = "*"
connection = "github"
"#,
    );
    assert!(generic.any_scopes("github") && !generic.any_scopes("slack"));
    let e = compute(&config, Some(&generic));
    assert_eq!(e.endpoints.len(), 1);
    assert_eq!(e.endpoints[0].scopes, ["repo", "admin:org"]);
    assert!(
        of_kind(&e, FindingKind::NotGranted).is_empty(),
        "{:?}",
        e.findings
    );
}
