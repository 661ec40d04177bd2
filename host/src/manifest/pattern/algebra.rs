//! Set operations on patterns: intersection and containment.
//!
//! A tool's effective grant is its declaration intersected with the
//! operator's grant, and a declared need counts as granted when some grant
//! contains it. Both are exact on the sets of requests the patterns match:
//! `a.intersect(b)` matches a request exactly when `a` and `b` both do, and
//! `a.covers(b)` holds only when every request `b` matches, `a` matches too.

use super::is_subdomain;
use super::{HostPattern, MethodSet, Methods, PathPattern, Segment, UrlPattern};

impl MethodSet {
    /// The methods in both sets, or `None` when they share none.
    pub fn intersect(&self, other: &MethodSet) -> Option<MethodSet> {
        match (&self.0, &other.0) {
            (Methods::Any, _) => Some(other.clone()),
            (_, Methods::Any) => Some(self.clone()),
            (Methods::Only(a), Methods::Only(b)) => {
                let both: std::collections::BTreeSet<String> = a.intersection(b).cloned().collect();
                (!both.is_empty()).then_some(MethodSet(Methods::Only(both)))
            }
        }
    }

    /// Whether every method in `other` is in this set.
    pub fn covers(&self, other: &MethodSet) -> bool {
        match (&self.0, &other.0) {
            (Methods::Any, _) => true,
            (Methods::Only(_), Methods::Any) => false,
            (Methods::Only(a), Methods::Only(b)) => b.is_subset(a),
        }
    }

    /// The listed methods, uppercase and sorted; `None` for the `*` set.
    pub fn listed(&self) -> Option<Vec<&str>> {
        match &self.0 {
            Methods::Any => None,
            Methods::Only(set) => Some(set.iter().map(String::as_str).collect()),
        }
    }
}

impl HostPattern {
    /// The hosts both patterns match, or `None` when no host does.
    pub fn intersect(&self, other: &HostPattern) -> Option<HostPattern> {
        match (self, other) {
            (HostPattern::Exact(host), pattern) | (pattern, HostPattern::Exact(host)) => pattern
                .matches(host)
                .then(|| HostPattern::Exact(host.clone())),
            (HostPattern::Wildcard(a), HostPattern::Wildcard(b)) => {
                if a == b || is_subdomain(a, b) {
                    Some(self.clone())
                } else if is_subdomain(b, a) {
                    Some(other.clone())
                } else {
                    None
                }
            }
        }
    }

    /// Whether every host `other` matches, this pattern matches too.
    pub fn covers(&self, other: &HostPattern) -> bool {
        match (self, other) {
            (_, HostPattern::Exact(host)) => self.matches(host),
            (HostPattern::Exact(_), HostPattern::Wildcard(_)) => false,
            (HostPattern::Wildcard(a), HostPattern::Wildcard(b)) => a == b || is_subdomain(b, a),
        }
    }
}

impl PathPattern {
    /// The paths both patterns match, or `None` when no path does.
    pub fn intersect(&self, other: &PathPattern) -> Option<PathPattern> {
        let (mut a, mut b) = (self.segments.as_slice(), other.segments.as_slice());
        let mut segments = Vec::new();
        loop {
            // `**` matches any rest, so the other side's rest is the answer.
            match (a.first(), b.first()) {
                (Some(Segment::Rest), _) => {
                    segments.extend_from_slice(b);
                    break;
                }
                (_, Some(Segment::Rest)) => {
                    segments.extend_from_slice(a);
                    break;
                }
                (None, None) => break,
                (None, Some(_)) | (Some(_), None) => return None,
                (Some(x), Some(y)) => segments.push(match (x, y) {
                    (Segment::Literal(p), Segment::Literal(q)) if p == q => x.clone(),
                    (Segment::Literal(p), Segment::One) if !p.is_empty() => x.clone(),
                    (Segment::One, Segment::Literal(q)) if !q.is_empty() => y.clone(),
                    (Segment::One, Segment::One) => Segment::One,
                    _ => return None,
                }),
            }
            (a, b) = (&a[1..], &b[1..]);
        }
        Some(PathPattern { segments })
    }

    /// Whether every path `other` matches, this pattern matches too.
    pub fn covers(&self, other: &PathPattern) -> bool {
        let (mut a, mut b) = (self.segments.as_slice(), other.segments.as_slice());
        loop {
            match (a.first(), b.first()) {
                (Some(Segment::Rest), _) => return true,
                (None, None) => return true,
                (_, Some(Segment::Rest)) | (None, Some(_)) | (Some(_), None) => return false,
                (Some(x), Some(y)) => {
                    let covered = match (x, y) {
                        (Segment::Literal(p), Segment::Literal(q)) => p == q,
                        (Segment::One, Segment::Literal(q)) => !q.is_empty(),
                        (Segment::One, Segment::One) => true,
                        _ => false,
                    };
                    if !covered {
                        return false;
                    }
                }
            }
            (a, b) = (&a[1..], &b[1..]);
        }
    }
}

impl UrlPattern {
    /// The requests both patterns match, or `None` when none does.
    pub fn intersect(&self, other: &UrlPattern) -> Option<UrlPattern> {
        if self.scheme != other.scheme || self.port != other.port {
            return None;
        }
        Some(UrlPattern {
            scheme: self.scheme,
            host: self.host.intersect(&other.host)?,
            port: self.port,
            path: self.path.intersect(&other.path)?,
        })
    }

    /// Whether every request `other` matches, this pattern matches too.
    pub fn covers(&self, other: &UrlPattern) -> bool {
        self.scheme == other.scheme
            && self.port == other.port
            && self.host.covers(&other.host)
            && self.path.covers(&other.path)
    }
}

#[cfg(test)]
mod tests {
    use super::super::canonicalize_path;
    use super::*;
    use proptest::prelude::*;

    fn url(text: &str) -> UrlPattern {
        text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn methods(text: &str) -> MethodSet {
        text.parse().unwrap()
    }

    #[test]
    fn method_sets_intersect_and_cover() {
        let get_post = methods("GET, POST");
        assert_eq!(
            get_post.intersect(&methods("post, PUT")),
            Some(methods("POST"))
        );
        assert_eq!(get_post.intersect(&methods("PUT")), None);
        assert_eq!(
            MethodSet::any().intersect(&get_post),
            Some(get_post.clone())
        );
        assert!(MethodSet::any().covers(&get_post));
        assert!(get_post.covers(&methods("GET")));
        assert!(!get_post.covers(&MethodSet::any()));
        assert!(!get_post.covers(&methods("GET, PUT")));
    }

    #[test]
    fn url_patterns_intersect_to_the_narrower_pattern() {
        let cases = [
            (
                "https://api.example.com/**",
                "https://*.example.com/v1/*",
                Some("https://api.example.com/v1/*"),
            ),
            (
                "https://*.example.com/**",
                "https://*.api.example.com/a",
                Some("https://*.api.example.com/a"),
            ),
            (
                "https://a.example/x/**",
                "https://a.example/*/y",
                Some("https://a.example/x/y"),
            ),
            (
                "https://a.example/x/**",
                "https://a.example/x",
                Some("https://a.example/x"),
            ),
            (
                "https://a.example/**",
                "https://a.example/",
                Some("https://a.example/"),
            ),
            ("https://a.example/x", "https://a.example/y", None),
            ("https://a.example/x/*", "https://a.example/x", None),
            ("https://a.example/**", "http://a.example/**", None),
            ("https://a.example/**", "https://a.example:8443/**", None),
            ("https://*.example.com/**", "https://*.example.org/**", None),
            ("https://*.example.com/**", "https://example.com/**", None),
            ("https://*.example.com/**", "https://10.0.0.1/**", None),
        ];
        for (a, b, expected) in cases {
            let got = url(a).intersect(&url(b)).map(|p| p.to_string());
            assert_eq!(got.as_deref(), expected, "{a} ∩ {b}");
            let swapped = url(b).intersect(&url(a)).map(|p| p.to_string());
            assert_eq!(swapped, got, "{b} ∩ {a} is symmetric");
        }
    }

    #[test]
    fn covers_is_containment() {
        assert!(url("https://*.example.com/**").covers(&url("https://api.example.com/v1/x")));
        assert!(url("https://*.example.com/**").covers(&url("https://*.a.example.com/*")));
        assert!(!url("https://*.example.com/**").covers(&url("https://example.com/")));
        assert!(!url("https://api.example.com/v1/*").covers(&url("https://api.example.com/v1/**")));
        assert!(url("https://api.example.com/v1/*").covers(&url("https://api.example.com/v1/x")));
        assert!(!url("https://api.example.com/v1/*").covers(&url("https://api.example.com/v1/")));
        assert!(!url("https://a.example/**").covers(&url("https://*.a.example/**")));
    }

    const HOSTS: &[&str] = &[
        "a.example.com",
        "b.example.com",
        "x.a.example.com",
        "example.com",
        "10.0.0.1",
    ];
    const HOST_PATTERNS: &[&str] = &[
        "a.example.com",
        "example.com",
        "*.example.com",
        "*.a.example.com",
        "10.0.0.1",
        "b.example.com",
    ];
    const PATHS: &[&str] = &["/", "/a", "/a/", "/a/b", "/b", "/a/b/c", "/x/b", "//"];
    const PATH_PATTERNS: &[&str] = &[
        "/", "/**", "/a", "/a/**", "/*", "/*/b", "/a/*", "/*/**", "/a/b/**", "/x/b",
    ];

    fn pattern() -> impl Strategy<Value = UrlPattern> {
        (
            prop::sample::select(&["http", "https"][..]),
            prop::sample::select(HOST_PATTERNS),
            prop::sample::select(&["", ":8443"][..]),
            prop::sample::select(PATH_PATTERNS),
        )
            .prop_map(|(s, h, p, path)| url(&format!("{s}://{h}{p}{path}")))
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

        /// A request matches `a ∩ b` exactly when it matches both, and
        /// `a.covers(b)` never lets through a request `a` does not match.
        #[test]
        fn intersection_and_cover_agree_with_matching(
            a in pattern(),
            b in pattern(),
            scheme in prop::sample::select(&["http", "https"][..]),
            host in prop::sample::select(HOSTS),
            port in prop::sample::select(&[80u16, 443, 8443][..]),
            path in prop::sample::select(PATHS),
        ) {
            let scheme = super::super::Scheme::parse(scheme).unwrap();
            let host = super::super::parse_host(host).unwrap();
            let path = canonicalize_path(path).unwrap();
            let in_a = a.matches(scheme, &host, port, &path);
            let in_b = b.matches(scheme, &host, port, &path);
            let in_both = a.intersect(&b).is_some_and(|c| c.matches(scheme, &host, port, &path));
            prop_assert_eq!(in_both, in_a && in_b, "{} ∩ {}", a, b);
            if a.covers(&b) && in_b {
                prop_assert!(in_a, "{} covers {} but not the request", a, b);
            }
        }
    }
}
