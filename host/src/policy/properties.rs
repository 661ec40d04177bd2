//! Property tests: canonicalization is a fixed point, nothing outside the
//! granted origins is ever allowed, and wildcards never match IP literals.

use std::net::{Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;

use super::tests::grant;
use super::*;
use crate::manifest::pattern::{canonicalize_path, parse_host};

/// Pieces of hostile authorities: real grant hosts, look-alike fragments,
/// IDNA mappings, IP spellings, separators and stray delimiters.
const HOST_PIECES: &[&str] = &[
    "api.example.com",
    "example.com",
    "www.googleapis.com",
    "googleapis.com",
    "evil.test",
    "API",
    "Example",
    ".",
    "..",
    "\u{ff0e}",
    "\u{3002}",
    "ß",
    "ss",
    "ü",
    "xn--bcher-kva",
    "a",
    "x-",
    "_",
    "0",
    "1",
    "127",
    "0x7f",
    "0177",
    "255",
    "256",
    "08",
    ":",
    ":443",
    ":8443",
    ":0",
    ":+80",
    "[",
    "]",
    "::1",
    "::ffff:127.0.0.1",
    "%25",
    "%",
    "@",
    "#",
    "\\",
    " ",
    "\t",
    "*",
    "\u{ad}",
    "\u{200b}",
    "\u{430}",
];

/// Hosts the test policy grants, in several spellings.
const BASE_HOSTS: &[&str] = &[
    "api.example.com",
    "API.EXAMPLE.COM.",
    "www.googleapis.com",
    "a.b.googleapis.com",
    "example.com:8443",
    "[::1]",
    "[0::1]:443",
    "127.0.0.1",
    "bücher.example",
    "xn--bcher-kva.example",
    "googleapis.com",
    "evil.test",
];

/// Pieces of hostile paths.
const PATH_PIECES: &[&str] = &[
    "/", "v1", "users", "a", "A", ".", "..", "%2e", "%2E", "%2f", "%2F", "%5c", "%25", "%252e",
    "%41", "%7e", "~", "%zz", "%", ";", "*", "**", "ü", "%C3%BC", "?", "=", "&", "#", " ", "\r",
    "\\", "@", ":", "%00", "\"", "[",
];

fn joined(pieces: &'static [&'static str], max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(pieces), 0..max).prop_map(|parts| parts.concat())
}

/// Mostly a plausible host with hostile decorations, sometimes pure noise.
fn authority() -> impl Strategy<Value = String> {
    let decoration = || prop_oneof![3 => Just(String::new()), 1 => joined(HOST_PIECES, 3)];
    let base = prop::sample::select(BASE_HOSTS).prop_map(str::to_owned);
    prop_oneof![
        4 => (decoration(), base, decoration()).prop_map(|(a, b, c)| a + &b + &c),
        1 => joined(HOST_PIECES, 6),
    ]
}

/// Mostly an absolute path, sometimes anything.
fn path() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => joined(PATH_PIECES, 8).prop_map(|p| format!("/{p}")),
        1 => joined(PATH_PIECES, 8),
    ]
}

fn scheme() -> impl Strategy<Value = &'static str> {
    prop::sample::select(&["https", "http", "HTTPS", "Http", "ftp"][..])
}

fn method() -> impl Strategy<Value = &'static str> {
    prop::sample::select(&["GET", "get", "POST", "PUT", "DELETE", "TRACE", "PROPFIND"][..])
}

fn policy() -> Policy {
    Policy::new(vec![
        grant("GET", "https://api.example.com/v1/**", Some("ex")),
        grant("GET, POST", "https://*.googleapis.com/**", Some("google")),
        grant("*", "http://example.com:8443/a/*", None),
        grant("GET", "https://[::1]/**", None),
        grant("GET", "https://127.0.0.1/x", None),
        grant("GET", "https://xn--bcher-kva.example/**", None),
    ])
    .unwrap()
}

/// An independent, string-level reading of "the target's origin is this
/// grant's origin", for exact and wildcard hosts alike.
fn same_origin(target: &Target, pattern: &UrlPattern) -> bool {
    let origin = target.origin();
    let granted = pattern.origin_string();
    match granted.split_once("://*.") {
        None => origin == granted,
        Some((scheme, suffix_and_port)) => {
            let prefix = format!("{scheme}://");
            let suffix = format!(".{suffix_and_port}");
            let labels = origin
                .strip_prefix(&prefix)
                .and_then(|rest| rest.strip_suffix(&suffix));
            matches!(labels, Some(l) if !l.is_empty()
                && !l.starts_with('.')
                && !l.contains([':', '[', ']']))
        }
    }
}

proptest! {
    // Failures are not persisted: the regression file would land in the
    // source tree; a failing case is printed and belongs in the corpus.
    #![proptest_config(ProptestConfig {
        cases: 2000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn target_canonicalization_is_idempotent(
        scheme in scheme(),
        authority in authority(),
        path in path(),
    ) {
        if let Ok(target) = Target::parse(scheme, &authority, &path) {
            let again = Target::parse(
                target.scheme.as_str(),
                &target.authority(),
                &target.path_and_query(),
            );
            prop_assert_eq!(again, Ok(target));
        }
    }

    #[test]
    fn host_and_path_canonicalization_are_idempotent(
        host in authority(),
        path in path(),
    ) {
        if let Ok(canonical) = parse_host(&host) {
            prop_assert_eq!(parse_host(&canonical.to_string()), Ok(canonical));
        }
        if let Ok(canonical) = canonicalize_path(&path) {
            prop_assert_eq!(canonicalize_path(&canonical), Ok(canonical));
        }
    }

    #[test]
    fn url_pattern_display_reparses_to_the_same_value(
        scheme in scheme(),
        host in authority(),
        path in path(),
    ) {
        let text = format!("{scheme}://{host}{path}");
        if let Ok(pattern) = text.parse::<UrlPattern>() {
            let shown = pattern.to_string();
            prop_assert_eq!(shown.parse::<UrlPattern>(), Ok(pattern));
        }
    }

    #[test]
    fn nothing_outside_a_granted_origin_is_allowed(
        method in method(),
        scheme in scheme(),
        authority in authority(),
        path in path(),
    ) {
        let policy = policy();
        if let Ok((index, target)) = policy.check(method, scheme, &authority, &path) {
            let pattern = &policy.grants()[index].url;
            prop_assert!(
                same_origin(&target, pattern),
                "{} allowed by grant {} ({})", target.origin(), index, pattern
            );
        }
    }

    #[test]
    fn wildcards_never_match_ip_literals(
        v4 in any::<u32>(),
        v6 in any::<u128>(),
        suffix in joined(HOST_PIECES, 4),
    ) {
        let ips = [HostName::V4(Ipv4Addr::from(v4)), HostName::V6(Ipv6Addr::from(v6))];
        let patterns = [
            HostPattern::Wildcard(suffix.clone()),
            HostPattern::Wildcard(Ipv4Addr::from(v4).to_string()),
        ];
        for pattern in patterns.iter().chain(HostPattern::parse(&format!("*.{suffix}")).ok().as_ref()) {
            for ip in &ips {
                prop_assert!(!pattern.matches(ip), "{pattern} matched {ip}");
            }
        }
        // And through the whole pipeline, in every spelling of the address:
        // a wildcard-only policy never allows a request to an IP host.
        let policy = Policy::new(vec![grant("*", "https://*.googleapis.com/**", None)]).unwrap();
        let v4 = Ipv4Addr::from(v4);
        let spellings = [
            v4.to_string(),
            format!("[{}]", Ipv6Addr::from(v6)),
            format!("[{}]", v4.to_ipv6_mapped()),
            u32::from(v4).to_string(),
            format!("{:#x}", u32::from(v4)),
        ];
        for authority in &spellings {
            prop_assert!(policy.check("GET", "https", authority, "/").is_err(), "{authority}");
        }
    }
}

/// The generators must reach the interesting branch often enough for the
/// properties above to mean something.
#[test]
fn generators_produce_valid_requests() {
    let mut runner = TestRunner::deterministic();
    let strategy = (scheme(), authority(), path());
    let policy = policy();
    let (mut parsed, mut allowed) = (0, 0);
    for _ in 0..5000 {
        let (scheme, authority, path) = strategy.new_tree(&mut runner).unwrap().current();
        if Target::parse(scheme, &authority, &path).is_ok() {
            parsed += 1;
        }
        if policy.check("GET", scheme, &authority, &path).is_ok() {
            allowed += 1;
        }
    }
    assert!(
        parsed > 250,
        "only {parsed} of 5000 generated requests parsed"
    );
    assert!(
        allowed > 25,
        "only {allowed} of 5000 generated requests were allowed"
    );
}
