//! Which request headers and methods a guest may use.
//!
//! Credentials are attached by the host alone, and framing and routing
//! headers belong to the HTTP client, so a guest may set none of them.

use crate::manifest::pattern::{FORBIDDEN_METHODS, is_method_token};

use super::DenyReason;

/// Header names a guest may never set (compared ignoring ASCII case), in
/// addition to every `proxy-*` name.
const FORBIDDEN_HEADERS: [&str; 11] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "host",
    "connection",
    "transfer-encoding",
    "te",
    "upgrade",
    "keep-alive",
    "http2-settings",
    // A `Proxy` request header becomes `HTTP_PROXY` in CGI upstreams
    // (httpoxy); no tool needs it.
    "proxy",
];

/// Whether a guest may not set this header: credentials, `Host`, hop-by-hop
/// and upgrade headers, and every `proxy-*` name, ignoring ASCII case.
pub fn is_forbidden_header(name: &str) -> bool {
    FORBIDDEN_HEADERS
        .iter()
        .any(|forbidden| forbidden.eq_ignore_ascii_case(name))
        || name
            .get(..6)
            .is_some_and(|prefix| prefix.eq_ignore_ascii_case("proxy-"))
}

/// Whether a method never goes out: TRACE, TRACK or CONNECT in any case.
pub fn is_forbidden_method(method: &str) -> bool {
    FORBIDDEN_METHODS
        .iter()
        .any(|forbidden| forbidden.eq_ignore_ascii_case(method))
}

/// Checks one guest header: the name must be a valid token and not
/// forbidden, the value free of control characters other than tab.
pub fn check_header(name: &str, value: &[u8]) -> Result<(), DenyReason> {
    if !is_token(name) {
        return Err(DenyReason::InvalidHeader(
            "header name is not a valid token",
        ));
    }
    if is_forbidden_header(name) {
        return Err(DenyReason::ForbiddenHeader(name.to_ascii_lowercase()));
    }
    if value.iter().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
        return Err(DenyReason::InvalidHeader(
            "header value contains cr, lf or nul",
        ));
    }
    if value
        .iter()
        .any(|b| (*b < 0x20 && *b != b'\t') || *b == 0x7f)
    {
        return Err(DenyReason::InvalidHeader(
            "header value contains a control character",
        ));
    }
    Ok(())
}

/// The uppercase form of a method the guest may use, checked as a token and
/// against the forbidden methods. The caller should send this form.
pub fn canonical_method(method: &str) -> Result<String, DenyReason> {
    if is_forbidden_method(method) {
        return Err(DenyReason::ForbiddenMethod);
    }
    // `*` is a token, but in a grant it means "every method"; as a
    // request method it is never meaningful.
    if !is_method_token(method) || method == "*" {
        return Err(DenyReason::InvalidMethod);
    }
    Ok(method.to_ascii_uppercase())
}

/// RFC 9110 token, as for header names.
fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_headers_ignore_case() {
        for name in [
            "Authorization",
            "COOKIE",
            "host",
            "Proxy-Authorization",
            "proxy-foo",
            "Te",
        ] {
            assert!(is_forbidden_header(name), "{name}");
        }
        for name in [
            "accept",
            "x-proxy-id",
            "cookie2",
            "te-x",
            "hostname",
            "proxyx",
        ] {
            assert!(!is_forbidden_header(name), "{name}");
        }
    }

    #[test]
    fn forbidden_methods_ignore_case() {
        for method in ["TRACE", "trace", "TrAcK", "connect"] {
            assert!(is_forbidden_method(method), "{method}");
            assert_eq!(canonical_method(method), Err(DenyReason::ForbiddenMethod));
        }
        assert!(!is_forbidden_method("TRACES"));
        assert_eq!(canonical_method("patch").as_deref(), Ok("PATCH"));
        assert_eq!(canonical_method("GET /"), Err(DenyReason::InvalidMethod));
        assert_eq!(canonical_method("*"), Err(DenyReason::InvalidMethod));
    }
}
