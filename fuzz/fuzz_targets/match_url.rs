//! URL canonicalization and grant matching.
//!
//! The input is five lines: a URL pattern, a method, a scheme, an authority
//! and a path with query. Checked on every input:
//! - canonicalization is idempotent: a parsed target, written out and
//!   parsed again, is the same target;
//! - a pattern shows as text that parses back to the same pattern;
//! - a request the policy allows matches the grant's scheme, host, port and
//!   path, and its method is not TRACE, TRACK or CONNECT.

#![no_main]

use airlock::manifest::pattern::{MethodSet, UrlPattern, parse_host};
use airlock::policy::{Grant, Policy, Target};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut parts = text.splitn(5, '\n');
    let (Some(pattern), Some(method), Some(scheme), Some(authority), Some(path)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return;
    };

    if let Ok(host) = parse_host(authority) {
        assert_eq!(parse_host(&host.to_string()).as_ref(), Ok(&host));
    }

    let target = Target::parse(scheme, authority, path);
    if let Ok(t) = &target {
        let again = Target::parse(t.scheme.as_str(), &t.authority(), &t.path_and_query());
        assert_eq!(again.as_ref(), Ok(t), "not idempotent");
    }

    let Ok(url) = pattern.parse::<UrlPattern>() else {
        return;
    };
    assert_eq!(url.to_string().parse::<UrlPattern>().as_ref(), Ok(&url));
    let grant = Grant {
        methods: MethodSet::any(),
        url: url.clone(),
        connection: Some("c".into()),
        allow_private: true,
    };
    let policy = Policy::new(vec![grant]).expect("one grant cannot conflict");
    let Ok(t) = target else {
        return;
    };
    if policy.decide(method, &t).is_ok() {
        assert!(url.matches(t.scheme, &t.host, t.port, &t.path));
        assert_eq!((t.scheme, t.port), (url.scheme, url.port));
        assert!(url.host.matches(&t.host));
        let upper = method.to_ascii_uppercase();
        assert!(!["TRACE", "TRACK", "CONNECT"].contains(&upper.as_str()));
    }
});
