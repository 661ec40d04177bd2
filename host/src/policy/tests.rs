//! Unit tests for grant overlap detection and denial explanations.

use super::*;

pub(super) fn grant(methods: &str, url: &str, connection: Option<&str>) -> Grant {
    Grant {
        methods: methods.parse().expect("valid methods"),
        url: url.parse().expect("valid url pattern"),
        connection: connection.map(str::to_owned),
        allow_private: false,
    }
}

fn overlap(a: Grant, b: Grant) -> Option<PolicyError> {
    Policy::new(vec![a, b]).err()
}

#[test]
fn overlapping_grants_of_two_connections_are_refused() {
    let pairs = [
        (
            "GET",
            "https://api.example.com/**",
            "GET",
            "https://api.example.com/v1/x",
        ),
        (
            "GET",
            "https://*.example.com/**",
            "GET",
            "https://api.example.com/v1/**",
        ),
        (
            "GET",
            "https://*.example.com/**",
            "GET",
            "https://*.api.example.com/**",
        ),
        (
            "GET",
            "https://api.example.com/a/*/c",
            "GET",
            "https://api.example.com/*/b/*",
        ),
        (
            "*",
            "https://api.example.com/x",
            "DELETE",
            "https://api.example.com/x",
        ),
        (
            "GET, POST",
            "https://api.example.com/v1/**",
            "POST",
            "https://api.example.com/**",
        ),
        (
            "GET",
            "https://api.example.com/",
            "GET",
            "https://api.example.com/**",
        ),
        (
            "GET",
            "https://api.example.com:443/x",
            "GET",
            "https://API.example.com./x",
        ),
    ];
    for (m1, u1, m2, u2) in pairs {
        let err = overlap(grant(m1, u1, Some("a")), grant(m2, u2, Some("b")));
        assert!(err.is_some(), "{m1} {u1} vs {m2} {u2} should conflict");
        // No connection is its own value, and conflicts with a named one.
        let err = overlap(grant(m1, u1, None), grant(m2, u2, Some("b")));
        assert!(
            err.is_some(),
            "{m1} {u1} (none) vs {m2} {u2} should conflict"
        );
    }
}

#[test]
fn disjoint_grants_are_accepted() {
    let pairs = [
        (
            "GET",
            "https://api.example.com/**",
            "POST",
            "https://api.example.com/**",
        ),
        (
            "GET",
            "https://api.example.com/**",
            "GET",
            "http://api.example.com/**",
        ),
        (
            "GET",
            "https://api.example.com/**",
            "GET",
            "https://api.example.com:8443/**",
        ),
        (
            "GET",
            "https://*.example.com/**",
            "GET",
            "https://example.com/**",
        ),
        (
            "GET",
            "https://*.example.com/**",
            "GET",
            "https://*.example.org/**",
        ),
        (
            "GET",
            "https://*.a.example.com/**",
            "GET",
            "https://*.b.example.com/**",
        ),
        (
            "GET",
            "https://api.example.com/a/*",
            "GET",
            "https://api.example.com/a/*/b",
        ),
        (
            "GET",
            "https://api.example.com/a/*",
            "GET",
            "https://api.example.com/a/",
        ),
        (
            "GET",
            "https://api.example.com/v1/**",
            "GET",
            "https://api.example.com/v2/**",
        ),
        (
            "GET",
            "https://api.example.com/",
            "GET",
            "https://api.example.com/x/**",
        ),
        (
            "GET",
            "https://127.0.0.1/**",
            "GET",
            "https://[::ffff:127.0.0.1]/**",
        ),
    ];
    for (m1, u1, m2, u2) in pairs {
        let err = overlap(grant(m1, u1, Some("a")), grant(m2, u2, Some("b")));
        assert_eq!(err, None, "{m1} {u1} vs {m2} {u2} should not conflict");
    }
}

#[test]
fn overlapping_grants_of_one_connection_are_fine() {
    let a = grant("GET", "https://api.example.com/**", Some("a"));
    let b = grant("GET", "https://api.example.com/v1/**", Some("a"));
    assert!(Policy::new(vec![a.clone(), b]).is_ok());
    let c = grant("GET", "https://api.example.com/**", None);
    let d = grant("GET", "https://api.example.com/x", None);
    assert!(Policy::new(vec![c, d]).is_ok());
}

#[test]
fn overlap_error_names_both_grants_and_connections() {
    let err = overlap(
        grant("GET", "https://*.example.com/**", Some("github")),
        grant("GET, POST", "https://api.example.com/v1/**", None),
    )
    .unwrap();
    let message = err.to_string();
    assert!(
        message.contains("grant 0 (GET https://*.example.com/**, connection \"github\")"),
        "{message}"
    );
    assert!(
        message.contains("grant 1 (GET, POST https://api.example.com/v1/**, no connection)"),
        "{message}"
    );
    assert!(message.starts_with("grant 0"), "{message}");
    assert!(!message.ends_with('.'), "{message}");
}

fn sample_policy() -> Policy {
    Policy::new(vec![
        grant("GET", "https://api.example.com/v1/**", Some("ex")),
        grant("GET", "https://api.example.com/v2/items/*", Some("ex")),
        grant("GET", "https://*.example.org/**", None),
        grant("GET", "https://10.0.0.1/**", None),
    ])
    .unwrap()
}

fn deny(method: &str, authority: &str, path: &str) -> Denial {
    sample_policy()
        .check(method, "https", authority, path)
        .unwrap_err()
}

#[test]
fn hint_for_a_missing_method_names_the_grant() {
    let d = deny("POST", "api.example.com", "/v1/x?secret=1");
    assert_eq!(d.reason, DenyReason::MethodNotGranted);
    assert_eq!(d.nearest, Some(0));
    assert_eq!(
        d.hint,
        "add \"POST\" to methods of grant 0 (https://api.example.com/v1/**)"
    );
}

#[test]
fn hint_for_another_path_picks_the_longest_prefix() {
    let d = deny("GET", "api.example.com", "/v2/items/1/x?token=abc");
    assert_eq!(d.reason, DenyReason::NoMatchingGrant);
    assert_eq!(d.nearest, Some(1));
    assert!(
        d.hint.contains("path /v2/items/1/x is outside grant 1"),
        "{}",
        d.hint
    );
    assert!(
        d.hint
            .contains("url = \"https://api.example.com/v2/items/1/x\""),
        "{}",
        d.hint
    );
    assert!(
        !d.hint.contains("token") && !d.hint.contains("abc"),
        "{}",
        d.hint
    );
}

#[test]
fn hint_for_another_port_names_the_origin() {
    let d = deny("GET", "api.example.com:8443", "/v1/x");
    assert_eq!(d.nearest, Some(0));
    assert!(
        d.hint
            .contains("is for origin https://api.example.com, not https://api.example.com:8443"),
        "{}",
        d.hint
    );
}

#[test]
fn hint_for_an_unknown_origin_suggests_a_grant() {
    let d = deny("GET", "evil.test", "/x/y?q=secret");
    assert_eq!(d.reason, DenyReason::NoMatchingGrant);
    assert_eq!(d.nearest, None);
    assert_eq!(
        d.hint,
        "no grant for origin https://evil.test; a grant would need \
         methods = \"GET\", url = \"https://evil.test/x/y\""
    );
}

#[test]
fn hint_for_a_bare_wildcard_suffix_names_the_wildcard() {
    let d = deny("get", "example.org", "/x");
    assert_eq!(d.nearest, Some(2));
    assert!(d.hint.contains("methods = \"GET\""), "{}", d.hint);
    assert!(
        d.hint
            .ends_with("nearest is grant 2 (GET https://*.example.org/**)"),
        "{}",
        d.hint
    );
}

#[test]
fn look_alike_suffixes_have_no_nearest_grant() {
    assert_eq!(
        deny("GET", "api.example.com.evil.test", "/v1/x").nearest,
        None
    );
    assert_eq!(deny("GET", "evilexample.org", "/v1/x").nearest, None);
}

#[test]
fn private_literal_is_denied_after_the_grant_matches() {
    let d = deny("GET", "10.0.0.1", "/x");
    assert_eq!(d.reason, DenyReason::PrivateAddress(AddrClass::Private));
    assert_eq!(d.nearest, Some(3));
    assert!(d.hint.contains("set allow_private = true"), "{}", d.hint);
}

#[test]
fn first_matching_grant_wins() {
    let policy = Policy::new(vec![
        grant("GET", "https://api.example.com/v1/x", Some("a")),
        grant("GET", "https://api.example.com/v1/**", Some("a")),
    ])
    .unwrap();
    let decide = |path| {
        policy
            .check("GET", "https", "api.example.com", path)
            .map(|(i, _)| i)
    };
    assert_eq!(decide("/v1/x"), Ok(0));
    assert_eq!(decide("/v1/y"), Ok(1));
}

#[test]
fn empty_policy_denies_everything() {
    let policy = Policy::new(Vec::new()).unwrap();
    let err = policy
        .check("GET", "https", "example.com", "/")
        .unwrap_err();
    assert_eq!(err.reason.code(), "no_matching_grant");
}

#[test]
fn reason_codes_are_snake_case_and_messages_lowercase() {
    let reasons = [
        DenyReason::UnsupportedScheme,
        DenyReason::Userinfo,
        DenyReason::ForbiddenCharacter("whitespace"),
        DenyReason::InvalidHost("is empty"),
        DenyReason::PrivateAddress(AddrClass::Cgnat),
        DenyReason::UnroutableAddress(AddrClass::Multicast),
        DenyReason::ForbiddenHeader("cookie".into()),
        DenyReason::MetadataAddress,
    ];
    for reason in reasons {
        let code = reason.code();
        assert!(
            code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
            "{code}"
        );
        let message = reason.to_string();
        assert!(
            message.starts_with(|c: char| c.is_ascii_lowercase()),
            "{message}"
        );
        assert!(!message.ends_with('.'), "{message}");
    }
}
