//! The canonical form of an outbound request's URL.
//!
//! A guest hands `wasi:http` a scheme, an authority and a path with query as
//! three strings. [`Target::parse`] refuses every spelling that could mean
//! different things to Airlock and to the upstream, and turns the rest into
//! one canonical value. That value is what the policy matches and also what
//! is sent: the connection goes to its host and port, and its
//! [`Target::authority`] and [`Target::path_and_query`] are written on the
//! wire, so there is no second parser to disagree with.

use crate::manifest::pattern::{
    HostName, PathProblem, Scheme, canonicalize_path, canonicalize_query, parse_host, parse_port,
    split_authority,
};

use super::DenyReason;

/// Longest path with query accepted, in bytes.
const MAX_PATH_AND_QUERY: usize = 16 * 1024;

/// A canonical request URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The scheme.
    pub scheme: Scheme,
    /// The canonical host.
    pub host: HostName,
    /// The port, filled from the scheme when the request names none.
    pub port: u16,
    /// The canonical path (see `canonicalize_path`), without query.
    pub path: String,
    /// The canonical query without `?`; `Some("")` for a bare `?`.
    pub query: Option<String>,
}

impl Target {
    /// Parses and canonicalizes a request URL given as separate parts.
    ///
    /// Refuses userinfo (`@` anywhere in the authority), fragments,
    /// backslashes, whitespace and control characters anywhere (CR, LF and
    /// NUL included), hosts that [`parse_host`] refuses, ports outside
    /// 1..=65535 or written with a sign, leading zero or no digits, paths
    /// that do not start with `/`, and malformed percent escapes.
    pub fn parse(
        scheme: &str,
        authority: &str,
        path_and_query: &str,
    ) -> Result<Target, DenyReason> {
        let scheme = Scheme::parse(scheme).ok_or(DenyReason::UnsupportedScheme)?;

        // Characters first: a CR or a space must be reported as such, not
        // as whatever part of the URL it happens to break.
        check_characters(authority)?;
        check_characters(path_and_query)?;
        if authority.contains('@') {
            return Err(DenyReason::Userinfo);
        }
        if authority.contains('#') || path_and_query.contains('#') {
            return Err(DenyReason::Fragment);
        }
        if path_and_query.len() > MAX_PATH_AND_QUERY {
            return Err(DenyReason::InvalidUrl("path and query longer than 16 KiB"));
        }

        let (host, port) = split_authority(authority)
            .ok_or(DenyReason::InvalidHost("is not host or host:port"))?;
        let host = parse_host(host).map_err(|e| DenyReason::InvalidHost(e.problem()))?;
        let port = match port {
            None => scheme.default_port(),
            Some(text) => parse_port(text).ok_or(DenyReason::InvalidPort)?,
        };

        let (path, query) = match path_and_query.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (path_and_query, None),
        };
        let path = canonicalize_path(path).map_err(path_reason)?;
        let query = query
            .map(canonicalize_query)
            .transpose()
            .map_err(path_reason)?;
        Ok(Target {
            scheme,
            host,
            port,
            path,
            query,
        })
    }

    /// The value for the `Host` header: the canonical host, IPv6 in
    /// brackets, and `:port` only when it is not the scheme's default.
    pub fn authority(&self) -> String {
        if self.port == self.scheme.default_port() {
            self.host.to_string()
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The canonical path and query, as sent on the wire.
    pub fn path_and_query(&self) -> String {
        match &self.query {
            Some(query) => format!("{}?{query}", self.path),
            None => self.path.clone(),
        }
    }

    /// The path and the query's parameter names with every value removed
    /// (`/search?q=&page=`), for logs and audit. A parameter without `=`
    /// is all value and is dropped to an empty string.
    pub fn redacted_path(&self) -> String {
        let Some(query) = &self.query else {
            return self.path.clone();
        };
        let names: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((name, _)) => format!("{name}="),
                None => String::new(),
            })
            .collect();
        format!("{}?{}", self.path, names.join("&"))
    }

    /// `scheme://host[:port]`, the port only when it is not the default.
    pub fn origin(&self) -> String {
        format!("{}://{}", self.scheme, self.authority())
    }
}

/// Refuses characters that have no business in any part of a URL.
fn check_characters(text: &str) -> Result<(), DenyReason> {
    for c in text.chars() {
        let what = match c {
            '\r' | '\n' | '\0' => "cr, lf or nul",
            '\\' => "a backslash",
            c if c.is_control() => "a control character",
            c if c.is_whitespace() => "whitespace",
            _ => continue,
        };
        return Err(DenyReason::ForbiddenCharacter(what));
    }
    Ok(())
}

fn path_reason(problem: PathProblem) -> DenyReason {
    match problem {
        PathProblem::NotAbsolute => DenyReason::InvalidUrl("path does not start with \"/\""),
        PathProblem::InvalidEscape => DenyReason::InvalidUrl("invalid percent escape"),
        PathProblem::EncodedNul => DenyReason::InvalidUrl("encoded nul in the path"),
        PathProblem::ForbiddenCharacter => DenyReason::ForbiddenCharacter("a forbidden character"),
        PathProblem::UnexpectedDelimiter => DenyReason::Fragment,
    }
}

/// Whether a canonical path has a segment that some server could still read
/// as `.` or `..`: after decoding `%2F`/`%5C` into separators, after a
/// second or third round of percent-decoding (`%252e`), or after cutting a
/// `;parameter` (`..;`). Such a path is refused rather than guessed at.
pub fn is_ambiguous_path(canonical_path: &str) -> bool {
    canonical_path.split('/').any(|segment| {
        let mut text = segment.to_owned();
        for _ in 0..4 {
            let dotted = text
                .split(['/', '\\'])
                .map(|part| part.split(';').next().unwrap_or(part))
                .any(|part| part == "." || part == "..");
            if dotted {
                return true;
            }
            match percent_decode(&text) {
                Some(decoded) if decoded != text => text = decoded,
                _ => break,
            }
        }
        false
    })
}

/// One round of percent-decoding; `None` if the bytes are not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes: Vec<u8> = percent_encoding::percent_decode_str(text).collect();
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(authority: &str, path_and_query: &str) -> Target {
        Target::parse("https", authority, path_and_query).expect("valid target")
    }

    #[test]
    fn renders_canonical_authority_and_origin() {
        let t = target("API.Example.COM.:443", "/a");
        assert_eq!(t.authority(), "api.example.com");
        assert_eq!(t.origin(), "https://api.example.com");

        let t = Target::parse("HTTP", "[0:0::1]:8080", "/").unwrap();
        assert_eq!(t.authority(), "[::1]:8080");
        assert_eq!(t.origin(), "http://[::1]:8080");
    }

    #[test]
    fn canonicalizes_path_and_keeps_query_order() {
        let t = target("example.com", "/a/./b/../%7euser/%2fx/%2E/c?z=%7e&a=%2f");
        assert_eq!(t.path, "/a/~user/%2Fx/c");
        assert_eq!(t.query.as_deref(), Some("z=~&a=%2F"));
        assert_eq!(t.path_and_query(), "/a/~user/%2Fx/c?z=~&a=%2F");

        // `..` removes the whole previous segment, `%2F` and all.
        assert_eq!(target("example.com", "/a/b%2Fc/%2e%2E/d").path, "/a/d");
    }

    #[test]
    fn keeps_double_encoding_literally() {
        let t = target("example.com", "/a/%252e%252e/b");
        assert_eq!(t.path, "/a/%252e%252e/b");
    }

    #[test]
    fn encodes_non_ascii_and_unsafe_ascii() {
        let t = target("example.com", "/wiki/Ünï\"{x}?q=ü&r=[1]");
        assert_eq!(t.path, "/wiki/%C3%9Cn%C3%AF%22%7Bx%7D");
        assert_eq!(t.query.as_deref(), Some("q=%C3%BC&r=%5B1%5D"));
    }

    #[test]
    fn redacted_path_drops_every_query_value() {
        let t = target("example.com", "/search?q=secret&token=abc&flag&empty=");
        assert_eq!(t.redacted_path(), "/search?q=&token=&&empty=");
        assert!(!t.redacted_path().contains("secret"));
        assert!(!t.redacted_path().contains("abc"));
        assert_eq!(target("example.com", "/x").redacted_path(), "/x");
        assert_eq!(target("example.com", "/x?").redacted_path(), "/x?");
    }

    #[test]
    fn bare_question_mark_is_an_empty_query() {
        let t = target("example.com", "/x?");
        assert_eq!(t.query.as_deref(), Some(""));
        assert_eq!(t.path_and_query(), "/x?");
    }

    #[test]
    fn refusals_name_their_cause() {
        let reason = |a: &str, p: &str| Target::parse("https", a, p).unwrap_err();
        assert_eq!(reason("a@b.com", "/"), DenyReason::Userinfo);
        assert_eq!(reason("b.com", "/x#y"), DenyReason::Fragment);
        assert_eq!(
            reason("b.com", "/x\r\n"),
            DenyReason::ForbiddenCharacter("cr, lf or nul")
        );
        assert_eq!(
            reason("b.com", "/a\\b"),
            DenyReason::ForbiddenCharacter("a backslash")
        );
        assert_eq!(reason("b.com:0", "/"), DenyReason::InvalidPort);
        assert_eq!(
            reason("b.com", "x"),
            DenyReason::InvalidUrl("path does not start with \"/\"")
        );
        assert_eq!(
            reason("b.com", "/%zz"),
            DenyReason::InvalidUrl("invalid percent escape")
        );
        let long = format!("/{}", "a".repeat(MAX_PATH_AND_QUERY));
        assert_eq!(
            reason("b.com", &long),
            DenyReason::InvalidUrl("path and query longer than 16 KiB")
        );
        assert!(matches!(reason("0x7f.1", "/"), DenyReason::InvalidHost(_)));
    }

    #[test]
    fn ambiguous_segments_are_detected() {
        for path in [
            "/a/..%2Fb",
            "/a/%252e%252e/b",
            "/a/..;/b",
            "/a/x%5C..%5Cy",
            "/%25252e%25252e",
        ] {
            assert!(is_ambiguous_path(path), "{path} should be ambiguous");
        }
        for path in ["/a/b%2Fc", "/a/...", "/a/.b", "/a/b;c", "/a/%25", "/a/x..y"] {
            assert!(!is_ambiguous_path(path), "{path} should not be ambiguous");
        }
    }
}
