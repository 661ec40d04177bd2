//! URL patterns, method sets and the host and path canonicalizers.
//!
//! An operator grant names endpoints as a method set plus a URL pattern such
//! as `https://api.github.com/repos/*/*/issues`. Both are parsed once, when
//! the configuration is read, into the typed values below. The host and path
//! canonicalizers here are the only ones in Airlock: `policy` runs every
//! request through the same functions before comparing it with a pattern, so
//! a pattern and a request can never disagree about what a name or a path
//! means. Nothing in this module does I/O.

use std::collections::BTreeSet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use idna::AsciiDenyList;
use idna::uts46::{DnsLength, Hyphens, Uts46};
use serde::{Deserialize, Serialize};

mod algebra;

/// Longest DNS name in bytes, without the trailing root dot (RFC 1035).
const MAX_NAME: usize = 253;
/// Longest DNS label in bytes (RFC 1035).
const MAX_LABEL: usize = 63;
/// Longest host input we look at; anything longer cannot map to a valid name
/// that anyone means.
const MAX_HOST_INPUT: usize = 1024;
/// Longest method token accepted.
const MAX_METHOD: usize = 32;
/// Methods that never go out, in canonical (uppercase) spelling.
pub const FORBIDDEN_METHODS: [&str; 3] = ["TRACE", "TRACK", "CONNECT"];

const HOST_EXPECTED: &str = "a DNS name, a dotted-quad IPv4 address or a bracketed IPv6 address";
const IPV4_EXPECTED: &str = "an IPv4 address as four decimal numbers from 0 to 255 without \
     leading zeros, such as \"127.0.0.1\"";

/// A URL scheme Airlock can send requests with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// Plain HTTP; only reachable through a grant that names `http`.
    Http,
    /// HTTP over TLS.
    Https,
}

impl Scheme {
    /// Parses a scheme name, ignoring ASCII case; `None` for anything but
    /// `http` and `https`.
    pub fn parse(s: &str) -> Option<Scheme> {
        if s.eq_ignore_ascii_case("https") {
            Some(Scheme::Https)
        } else if s.eq_ignore_ascii_case("http") {
            Some(Scheme::Http)
        } else {
            None
        }
    }

    /// The lowercase scheme name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    /// The port used when a URL names none: 80 or 443.
    pub fn default_port(&self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A canonical host: a DNS name in lowercase A-labels without a trailing
/// dot, or an IP address. Build it with [`parse_host`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum HostName {
    /// A DNS name in canonical form (see [`parse_host`]).
    Domain(String),
    /// An IPv4 literal, written as a canonical dotted quad.
    V4(Ipv4Addr),
    /// An IPv6 literal, written in brackets.
    V6(Ipv6Addr),
}

impl HostName {
    /// The address when the host is an IP literal.
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            HostName::Domain(_) => None,
            HostName::V4(ip) => Some(IpAddr::V4(*ip)),
            HostName::V6(ip) => Some(IpAddr::V6(*ip)),
        }
    }
}

impl fmt::Display for HostName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostName::Domain(name) => f.write_str(name),
            HostName::V4(ip) => write!(f, "{ip}"),
            HostName::V6(ip) => write!(f, "[{ip}]"),
        }
    }
}

impl FromStr for HostName {
    type Err = PatternError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_host(s)
    }
}

/// Canonicalizes a host as written in a URL (without port or userinfo).
///
/// This is the one host canonicalizer, used for patterns and requests alike.
/// Names go through UTS 46 to A-labels, are lowercased and lose one trailing
/// dot; empty labels, labels over 63 bytes and names over 253 bytes are
/// refused, as is any character outside letters, digits, `-` and `_` after
/// mapping. A name whose last label is numeric (`2130706433`, `0177.0.0.1`,
/// `0x7f.1`, `127.1`) must be a canonical dotted quad, because URL parsers
/// and resolvers read those spellings as IPv4 addresses. IPv6 literals must
/// be in brackets and carry no zone identifier.
pub fn parse_host(input: &str) -> Result<HostName, PatternError> {
    let fail = |problem, expected| Err(PatternError::new("host", input, problem, expected));

    // Cheap refusals first, so hostile input never reaches the IDNA tables.
    if input.is_empty() {
        return fail("is empty", HOST_EXPECTED);
    }
    if input.len() > MAX_HOST_INPUT {
        return fail("is too long", "a DNS name of at most 253 bytes");
    }
    if input.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return fail("contains whitespace or a control character", HOST_EXPECTED);
    }
    if input.contains('@') {
        return fail(
            "contains userinfo (\"@\")",
            "a host without a user name or password",
        );
    }
    if input.contains('\\') {
        return fail("contains a backslash", HOST_EXPECTED);
    }
    if let Some(inner) = input.strip_prefix('[') {
        return parse_bracketed_ipv6(input, inner);
    }
    if input.contains('%') {
        return fail("contains \"%\"", "a host without percent-encoding");
    }
    if input.contains(':') {
        return fail(
            "contains \":\"",
            "an IPv6 address in brackets, or a name with the port written after the host",
        );
    }

    // UTS 46 ToASCII with the WHATWG URL options (non-transitional, hyphens
    // allowed, URL forbidden code points denied). This is the mapping every
    // browser and the `url` crate apply, so a guest and Airlock agree on what
    // a name means. `domain_to_ascii_strict` is not used: it also refuses
    // real-world names (`_dmarc`, `r1---sn-x.googlevideo.com`) and a trailing
    // root dot; the DNS length and character checks below are done by hand.
    let mapped = Uts46::new().to_ascii(
        input.as_bytes(),
        AsciiDenyList::URL,
        Hyphens::Allow,
        DnsLength::Ignore,
    );
    let Ok(ascii) = mapped else {
        return fail(
            "is not a valid internationalized domain name",
            "a name that UTS 46 maps to A-labels",
        );
    };
    let name = ascii.strip_suffix('.').unwrap_or(&ascii);
    if name.is_empty() {
        return fail("is empty", HOST_EXPECTED);
    }
    if name.len() > MAX_NAME {
        return fail(
            "is longer than 253 bytes",
            "a DNS name of at most 253 bytes",
        );
    }
    for label in name.split('.') {
        if label.is_empty() {
            return fail("has an empty label", "labels separated by single dots");
        }
        if label.len() > MAX_LABEL {
            return fail(
                "has a label longer than 63 bytes",
                "labels of at most 63 bytes",
            );
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return fail(
                "contains a character not allowed in a DNS name",
                "letters, digits, \"-\" and \"_\"",
            );
        }
    }

    // A URL parser treats a name ending in a number as an IPv4 address in
    // some spelling; only the canonical dotted quad is accepted.
    if ends_in_number(name) {
        return match parse_dotted_quad(name) {
            Some(ip) => Ok(HostName::V4(ip)),
            None => fail("is not a canonical IPv4 address", IPV4_EXPECTED),
        };
    }
    Ok(HostName::Domain(name.to_owned()))
}

fn parse_bracketed_ipv6(input: &str, inner: &str) -> Result<HostName, PatternError> {
    let fail = |problem, expected| Err(PatternError::new("host", input, problem, expected));
    let Some(address) = inner.strip_suffix(']') else {
        return fail("has an unclosed \"[\"", "an IPv6 address such as \"[::1]\"");
    };
    if address.contains('%') {
        return fail(
            "has an IPv6 zone identifier",
            "an IPv6 address without \"%\" and zone",
        );
    }
    match address.parse::<Ipv6Addr>() {
        Ok(ip) => Ok(HostName::V6(ip)),
        Err(_) => fail(
            "is not a valid IPv6 address",
            "an IPv6 address such as \"[::1]\"",
        ),
    }
}

/// The WHATWG "ends in a number" test on a canonical name.
fn ends_in_number(name: &str) -> bool {
    let last = name.rsplit('.').next().unwrap_or(name);
    if !last.is_empty() && last.bytes().all(|b| b.is_ascii_digit()) {
        return true;
    }
    match last.strip_prefix("0x") {
        Some(hex) => hex.bytes().all(|b| b.is_ascii_hexdigit()),
        None => false,
    }
}

/// Four decimal parts, each 0 to 255 without leading zeros.
fn parse_dotted_quad(name: &str) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut parts = name.split('.');
    for octet in &mut octets {
        let part = parts.next()?;
        let canonical = !part.is_empty()
            && part.len() <= 3
            && part.bytes().all(|b| b.is_ascii_digit())
            && (part == "0" || !part.starts_with('0'));
        if !canonical {
            return None;
        }
        *octet = part.parse().ok()?;
    }
    match parts.next() {
        Some(_) => None,
        None => Some(Ipv4Addr::from(octets)),
    }
}

/// Splits an authority into host and optional port text, respecting IPv6
/// brackets. `None` when the shape is wrong (an unclosed bracket, text after
/// `]`, or more than one `:` outside brackets).
pub fn split_authority(authority: &str) -> Option<(&str, Option<&str>)> {
    if authority.starts_with('[') {
        let close = authority.find(']')?;
        let (host, rest) = authority.split_at(close + 1);
        return match rest {
            "" => Some((host, None)),
            _ => Some((host, Some(rest.strip_prefix(':')?))),
        };
    }
    match authority.split_once(':') {
        Some((_, port)) if port.contains(':') => None,
        Some((host, port)) => Some((host, Some(port))),
        None => Some((authority, None)),
    }
}

/// Parses a port: 1 to 5 decimal digits without sign or leading zero, in
/// 1..=65535.
pub fn parse_port(text: &str) -> Option<u16> {
    let digits = !text.is_empty() && text.len() <= 5 && text.bytes().all(|b| b.is_ascii_digit());
    if !digits || text.starts_with('0') {
        return None;
    }
    text.parse::<u16>().ok().filter(|port| *port != 0)
}

/// Why a path or query could not be canonicalized.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathProblem {
    /// The path does not start with `/`.
    NotAbsolute,
    /// A `%` is not followed by two hex digits.
    InvalidEscape,
    /// The path contains `%00`, which C-based servers read as its end.
    EncodedNul,
    /// Whitespace, a control character or a backslash.
    ForbiddenCharacter,
    /// A `?` or `#` where none may be.
    UnexpectedDelimiter,
}

impl PathProblem {
    /// A lowercase description for error messages.
    pub fn describe(&self) -> &'static str {
        match self {
            PathProblem::NotAbsolute => "path does not start with \"/\"",
            PathProblem::InvalidEscape => "percent sign not followed by two hex digits",
            PathProblem::EncodedNul => "path contains an encoded nul (\"%00\")",
            PathProblem::ForbiddenCharacter => {
                "whitespace, a control character or a backslash in the path or query"
            }
            PathProblem::UnexpectedDelimiter => "unexpected \"?\" or \"#\"",
        }
    }
}

/// Canonicalizes an absolute path (no query).
///
/// Percent-encoded unreserved characters are decoded, other escapes are
/// uppercased, characters that may not appear raw in a path and all non-ASCII
/// characters are percent-encoded as UTF-8, and then `.` and `..` segments
/// (in any encoding, such as `%2e%2E`) are removed as in RFC 3986 5.2.4.
/// `%2F` and `%5C` stay encoded and never separate segments; `%25` stays
/// encoded, so `%252e` is a literal segment, not a dot. The result is a fixed
/// point: canonicalizing it again returns it unchanged.
pub fn canonicalize_path(raw: &str) -> Result<String, PathProblem> {
    let rest = raw.strip_prefix('/').ok_or(PathProblem::NotAbsolute)?;
    let segments: Vec<String> = rest
        .split('/')
        .map(|segment| normalize_escapes(segment, false))
        .collect::<Result<_, _>>()?;
    if segments.iter().any(|segment| segment.contains("%00")) {
        return Err(PathProblem::EncodedNul);
    }

    let mut out: Vec<String> = Vec::with_capacity(segments.len());
    let last = segments.len() - 1;
    for (i, segment) in segments.into_iter().enumerate() {
        match segment.as_str() {
            "." => {}
            ".." => {
                out.pop();
            }
            _ => {
                out.push(segment);
                continue;
            }
        }
        // A trailing dot segment leaves a directory path, as RFC 3986 does.
        if i == last {
            out.push(String::new());
        }
    }
    Ok(format!("/{}", out.join("/")))
}

/// Canonicalizes a query string (without the leading `?`): escapes are
/// normalized as in [`canonicalize_path`]; nothing is reordered or dropped.
pub fn canonicalize_query(raw: &str) -> Result<String, PathProblem> {
    normalize_escapes(raw, true)
}

/// Normalizes percent-encoding in one path segment or a whole query.
fn normalize_escapes(input: &str, query: bool) -> Result<String, PathProblem> {
    let mut out = String::with_capacity(input.len());
    let mut chars = input.char_indices();
    while let Some((i, c)) = chars.next() {
        if c == '%' {
            let hex = input.get(i + 1..i + 3).ok_or(PathProblem::InvalidEscape)?;
            if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(PathProblem::InvalidEscape);
            }
            let byte = u8::from_str_radix(hex, 16).map_err(|_| PathProblem::InvalidEscape)?;
            chars.nth(1);
            // Only unreserved characters are decoded: for the rest, the raw
            // and the encoded form can mean different things (`/` vs `%2F`).
            if is_unreserved(byte) {
                out.push(byte as char);
            } else {
                push_escape(&mut out, byte);
            }
        } else if c.is_control() || c.is_whitespace() || c == '\\' {
            return Err(PathProblem::ForbiddenCharacter);
        } else if c == '#' || (c == '?' && !query) {
            return Err(PathProblem::UnexpectedDelimiter);
        } else if c.is_ascii() && (is_path_char(c as u8) || (query && matches!(c, '/' | '?'))) {
            out.push(c);
        } else {
            let mut buf = [0u8; 4];
            for byte in c.encode_utf8(&mut buf).bytes() {
                push_escape(&mut out, byte);
            }
        }
    }
    Ok(out)
}

/// RFC 3986 unreserved characters.
fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~')
}

/// Characters RFC 3986 allows raw inside a path segment (`pchar`, minus `%`).
fn is_path_char(byte: u8) -> bool {
    is_unreserved(byte) || b"!$&'()*+,;=:@".contains(&byte)
}

fn push_escape(out: &mut String, byte: u8) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.push('%');
    out.push(HEX[usize::from(byte >> 4)] as char);
    out.push(HEX[usize::from(byte & 0xf)] as char);
}

/// The host part of a URL pattern.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum HostPattern {
    /// Exactly this host.
    Exact(HostName),
    /// `*.suffix`: one or more whole labels before the canonical suffix
    /// (stored without `*.`). Never the bare suffix, never an IP literal.
    Wildcard(String),
}

impl HostPattern {
    /// Parses `host`, or `*.suffix` where the suffix is a DNS name of at
    /// least two labels.
    pub fn parse(input: &str) -> Result<HostPattern, PatternError> {
        let Some(suffix) = input.strip_prefix("*.") else {
            if input.contains('*') {
                return Err(PatternError::new(
                    "host pattern",
                    input,
                    "has a \"*\" that is not a whole leftmost label",
                    "an exact host or \"*.\" followed by a domain, such as \"*.example.com\"",
                ));
            }
            return parse_host(input).map(HostPattern::Exact);
        };
        let wildcard_error = |problem| {
            PatternError::new(
                "host pattern",
                input,
                problem,
                "\"*.\" followed by a domain of at least two labels, such as \"*.example.com\"",
            )
        };
        if suffix.contains('*') {
            return Err(wildcard_error("has more than one \"*\""));
        }
        match parse_host(suffix)? {
            HostName::Domain(name) if name.contains('.') => Ok(HostPattern::Wildcard(name)),
            HostName::Domain(_) => Err(wildcard_error("covers a whole top-level domain")),
            HostName::V4(_) | HostName::V6(_) => {
                Err(wildcard_error("is a wildcard over an IP address"))
            }
        }
    }

    /// Whether a canonical host matches.
    pub fn matches(&self, host: &HostName) -> bool {
        match (self, host) {
            (HostPattern::Exact(exact), host) => exact == host,
            (HostPattern::Wildcard(suffix), HostName::Domain(name)) => is_subdomain(name, suffix),
            (HostPattern::Wildcard(_), HostName::V4(_) | HostName::V6(_)) => false,
        }
    }

    /// Whether some host matches both patterns.
    pub fn overlaps(&self, other: &HostPattern) -> bool {
        match (self, other) {
            (HostPattern::Exact(a), b) | (b, HostPattern::Exact(a)) => b.matches(a),
            (HostPattern::Wildcard(a), HostPattern::Wildcard(b)) => {
                a == b || is_subdomain(a, b) || is_subdomain(b, a)
            }
        }
    }
}

/// `name` is one or more whole labels followed by `.suffix`.
fn is_subdomain(name: &str, suffix: &str) -> bool {
    name.strip_suffix(suffix)
        .and_then(|prefix| prefix.strip_suffix('.'))
        .is_some_and(|labels| !labels.is_empty())
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostPattern::Exact(host) => write!(f, "{host}"),
            HostPattern::Wildcard(suffix) => write!(f, "*.{suffix}"),
        }
    }
}

/// The path part of a URL pattern: `/`-separated segments, each a literal,
/// `*` (exactly one non-empty segment) or, as the last segment only, `**`
/// (zero or more segments).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PathPattern {
    segments: Vec<Segment>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Segment {
    Literal(String),
    One,
    Rest,
}

impl PathPattern {
    /// Parses a pattern path, canonicalizing it as request paths are.
    pub fn parse(input: &str) -> Result<PathPattern, PatternError> {
        let fail = |problem| {
            Err(PatternError::new(
                "path pattern",
                input,
                problem,
                "an absolute path whose segments are literals, \"*\" or a final \"**\"",
            ))
        };
        let canonical = match canonicalize_path(input) {
            Ok(path) => path,
            Err(problem) => return fail(problem.describe()),
        };
        let raw: Vec<&str> = canonical[1..].split('/').collect();
        let mut segments = Vec::with_capacity(raw.len());
        for (i, segment) in raw.iter().enumerate() {
            segments.push(match *segment {
                "*" => Segment::One,
                "**" if i + 1 == raw.len() => Segment::Rest,
                "**" => return fail("has \"**\" before the last segment"),
                s if s.contains('*') => return fail("has \"*\" inside a segment"),
                s => Segment::Literal(s.to_owned()),
            });
        }
        Ok(PathPattern { segments })
    }

    /// Whether a canonical path (see [`canonicalize_path`]) matches.
    pub fn matches(&self, canonical_path: &str) -> bool {
        let Some(rest) = canonical_path.strip_prefix('/') else {
            return false;
        };
        let path: Vec<&str> = rest.split('/').collect();
        let mut i = 0;
        for segment in &self.segments {
            match segment {
                Segment::Rest => return true,
                Segment::One if path.get(i).is_some_and(|s| !s.is_empty()) => {}
                Segment::Literal(lit) if path.get(i) == Some(&lit.as_str()) => {}
                _ => return false,
            }
            i += 1;
        }
        i == path.len()
    }

    /// How many leading pattern segments a canonical path matches; a measure
    /// of nearness for explaining a denial.
    pub fn matching_prefix(&self, canonical_path: &str) -> usize {
        let path = canonical_path.strip_prefix('/').unwrap_or(canonical_path);
        self.segments
            .iter()
            .zip(path.split('/'))
            .take_while(|(segment, s)| match segment {
                Segment::Literal(lit) => lit == s,
                Segment::One => !s.is_empty(),
                Segment::Rest => true,
            })
            .count()
    }

    /// Whether some path matches both patterns.
    pub fn overlaps(&self, other: &PathPattern) -> bool {
        let (mut a, mut b) = (self.segments.as_slice(), other.segments.as_slice());
        loop {
            match (a.first(), b.first()) {
                (Some(Segment::Rest), _) | (_, Some(Segment::Rest)) => return true,
                (None, None) => return true,
                (None, Some(_)) | (Some(_), None) => return false,
                (Some(x), Some(y)) => {
                    let compatible = match (x, y) {
                        (Segment::Literal(p), Segment::Literal(q)) => p == q,
                        (Segment::Literal(p), Segment::One)
                        | (Segment::One, Segment::Literal(p)) => !p.is_empty(),
                        _ => true,
                    };
                    if !compatible {
                        return false;
                    }
                }
            }
            (a, b) = (&a[1..], &b[1..]);
        }
    }
}

impl fmt::Display for PathPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for segment in &self.segments {
            match segment {
                Segment::Literal(lit) => write!(f, "/{lit}")?,
                Segment::One => f.write_str("/*")?,
                Segment::Rest => f.write_str("/**")?,
            }
        }
        Ok(())
    }
}

/// A granted URL: scheme, host pattern, port and path pattern. Query strings
/// are not part of a pattern; any query matches.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UrlPattern {
    /// The scheme, matched exactly.
    pub scheme: Scheme,
    /// The host, exact or `*.` wildcard.
    pub host: HostPattern,
    /// The port; the scheme's default when the pattern names none.
    pub port: u16,
    /// The path pattern.
    pub path: PathPattern,
}

impl UrlPattern {
    /// Whether a canonical request matches. `canonical_path` must come from
    /// [`canonicalize_path`] and carry no query.
    pub fn matches(
        &self,
        scheme: Scheme,
        host: &HostName,
        port: u16,
        canonical_path: &str,
    ) -> bool {
        self.scheme == scheme
            && self.port == port
            && self.host.matches(host)
            && self.path.matches(canonical_path)
    }

    /// Whether some request matches both patterns.
    pub fn overlaps(&self, other: &UrlPattern) -> bool {
        self.scheme == other.scheme
            && self.port == other.port
            && self.host.overlaps(&other.host)
            && self.path.overlaps(&other.path)
    }

    /// `scheme://host[:port]`, the port only when not the default.
    pub fn origin_string(&self) -> String {
        if self.port == self.scheme.default_port() {
            format!("{}://{}", self.scheme, self.host)
        } else {
            format!("{}://{}:{}", self.scheme, self.host, self.port)
        }
    }
}

impl FromStr for UrlPattern {
    type Err = PatternError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let fail = |problem, expected| Err(PatternError::new("url pattern", s, problem, expected));
        if s.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return fail(
                "contains whitespace or a control character",
                "a URL without spaces",
            );
        }
        if s.contains('\\') {
            return fail("contains a backslash", "\"/\" as the only path separator");
        }
        if s.contains('?') || s.contains('#') {
            return fail(
                "contains a query or fragment",
                "a pattern without \"?\" or \"#\" (any query string matches)",
            );
        }

        let Some((scheme_text, rest)) = s.split_once("://") else {
            return fail(
                "has no scheme",
                "a URL such as \"https://api.example.com/**\"",
            );
        };
        let Some(scheme) = Scheme::parse(scheme_text) else {
            return fail("has an unsupported scheme", "\"https://\" or \"http://\"");
        };
        let Some(slash) = rest.find('/') else {
            return fail(
                "has no path",
                "a path after the host: \"/\" for the root only or \"/**\" for any path",
            );
        };
        let (authority, path) = rest.split_at(slash);
        if authority.contains('@') {
            return fail(
                "contains userinfo (\"@\")",
                "a host without a user name or password",
            );
        }
        let Some((host, port)) = split_authority(authority) else {
            return fail(
                "has a malformed host and port",
                "\"host\", \"host:port\" or \"[ipv6]:port\"",
            );
        };

        let host = HostPattern::parse(host).map_err(|e| e.within("url pattern", s))?;
        let port = match port {
            None => scheme.default_port(),
            Some(text) => match parse_port(text) {
                Some(port) => port,
                None => return fail("has an invalid port", "a port from 1 to 65535"),
            },
        };
        let path = PathPattern::parse(path).map_err(|e| e.within("url pattern", s))?;
        Ok(UrlPattern {
            scheme,
            host,
            port,
            path,
        })
    }
}

impl TryFrom<String> for UrlPattern {
    type Error = PatternError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<UrlPattern> for String {
    fn from(pattern: UrlPattern) -> String {
        pattern.to_string()
    }
}

impl fmt::Display for UrlPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.origin_string(), self.path)
    }
}

/// A set of HTTP methods: listed methods, or `*` for every method except
/// TRACE, TRACK and CONNECT. Methods are stored uppercase.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MethodSet(Methods);

#[derive(Clone, Debug, PartialEq, Eq)]
enum Methods {
    Any,
    Only(BTreeSet<String>),
}

impl MethodSet {
    /// Every method that may go out at all.
    pub fn any() -> MethodSet {
        MethodSet(Methods::Any)
    }

    /// A set of listed methods; refuses an empty list, `*` mixed with
    /// methods, invalid tokens and forbidden methods.
    pub fn from_methods<I, S>(methods: I) -> Result<MethodSet, PatternError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let methods: Vec<S> = methods.into_iter().collect();
        if let [only] = methods.as_slice()
            && only.as_ref() == "*"
        {
            return Ok(MethodSet::any());
        }
        if methods.is_empty() {
            return Err(PatternError::new(
                "method list",
                "[]",
                "is empty",
                "at least one method, or \"*\"",
            ));
        }
        let set = methods
            .iter()
            .map(|method| parse_method(method.as_ref()))
            .collect::<Result<_, _>>()?;
        Ok(MethodSet(Methods::Only(set)))
    }

    /// Whether a method (any case) is in the set. Invalid and forbidden
    /// methods are never in a set.
    pub fn contains(&self, method: &str) -> bool {
        let Ok(method) = parse_method(method) else {
            return false;
        };
        match &self.0 {
            Methods::Any => true,
            Methods::Only(set) => set.contains(&method),
        }
    }

    /// Whether some method is in both sets.
    pub fn intersects(&self, other: &MethodSet) -> bool {
        match (&self.0, &other.0) {
            (Methods::Any, _) | (_, Methods::Any) => true,
            (Methods::Only(a), Methods::Only(b)) => !a.is_disjoint(b),
        }
    }

    /// Whether this is the `*` set.
    pub fn is_any(&self) -> bool {
        self.0 == Methods::Any
    }
}

/// Validates one method token and returns it uppercase. `*` is refused
/// here: it only means "every method" as a whole method list.
pub fn parse_method(method: &str) -> Result<String, PatternError> {
    if method == "*" {
        return Err(PatternError::new(
            "method",
            method,
            "is mixed with other methods",
            "\"*\" alone for every method, or a list of method names",
        ));
    }
    if !is_method_token(method) {
        return Err(PatternError::new(
            "method",
            method,
            "is not a valid HTTP method",
            "a method name such as \"GET\" or \"POST\"",
        ));
    }
    let upper = method.to_ascii_uppercase();
    if FORBIDDEN_METHODS.contains(&upper.as_str()) {
        return Err(PatternError::new(
            "method",
            method,
            "is never allowed",
            "a method other than TRACE, TRACK or CONNECT",
        ));
    }
    Ok(upper)
}

/// Whether `method` is an RFC 9110 token of at most 32 characters.
pub fn is_method_token(method: &str) -> bool {
    !method.is_empty()
        && method.len() <= MAX_METHOD
        && method
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

impl FromStr for MethodSet {
    type Err = PatternError;

    /// Parses `*`, one method, or a comma-separated list.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        MethodSet::from_methods(s.split(',').map(str::trim))
    }
}

impl fmt::Display for MethodSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Methods::Any => f.write_str("*"),
            Methods::Only(set) => {
                let list: Vec<&str> = set.iter().map(String::as_str).collect();
                f.write_str(&list.join(", "))
            }
        }
    }
}

impl Serialize for MethodSet {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match &self.0 {
            Methods::Any => serializer.serialize_str("*"),
            Methods::Only(set) if set.len() == 1 => serializer.collect_str(self),
            Methods::Only(set) => serializer.collect_seq(set),
        }
    }
}

impl<'de> Deserialize<'de> for MethodSet {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(MethodSetVisitor)
    }
}

struct MethodSetVisitor;

impl<'de> serde::de::Visitor<'de> for MethodSetVisitor {
    type Value = MethodSet;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a method such as \"GET\", \"*\", or a list of methods")
    }

    fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<MethodSet, E> {
        MethodSet::from_methods([value]).map_err(E::custom)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<MethodSet, A::Error> {
        let mut methods = Vec::new();
        while let Some(method) = seq.next_element::<String>()? {
            methods.push(method);
        }
        MethodSet::from_methods(methods).map_err(serde::de::Error::custom)
    }
}

/// A pattern, host or method that could not be parsed. The message names
/// the offending value (quoted and escaped) and what was expected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}{subject} {} {problem}; expected {expected}", context_prefix(.context), quote(.value))]
pub struct PatternError {
    context: Option<(&'static str, String)>,
    subject: &'static str,
    value: String,
    problem: &'static str,
    expected: &'static str,
}

impl PatternError {
    fn new(
        subject: &'static str,
        value: &str,
        problem: &'static str,
        expected: &'static str,
    ) -> Self {
        PatternError {
            context: None,
            subject,
            value: value.to_owned(),
            problem,
            expected,
        }
    }

    /// Names the larger value this error was found in, unless it already is.
    fn within(mut self, subject: &'static str, whole: &str) -> Self {
        if self.context.is_none() && self.value != whole {
            self.context = Some((subject, whole.to_owned()));
        }
        self
    }

    /// What was wrong, such as `"is not a canonical IPv4 address"`.
    pub fn problem(&self) -> &'static str {
        self.problem
    }

    /// The offending value.
    pub fn value(&self) -> &str {
        &self.value
    }
}

fn context_prefix(context: &Option<(&'static str, String)>) -> String {
    match context {
        Some((subject, whole)) => format!("in {subject} {}: ", quote(whole)),
        None => String::new(),
    }
}

/// Quotes a value for a message, escaping control characters and cutting
/// values long enough to flood a log line.
fn quote(value: &str) -> String {
    const LIMIT: usize = 120;
    match value.char_indices().nth(LIMIT) {
        Some((cut, _)) => format!("{:?}...", &value[..cut]),
        None => format!("{value:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(text: &str) -> UrlPattern {
        text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn error(text: &str) -> String {
        text.parse::<UrlPattern>().expect_err(text).to_string()
    }

    #[test]
    fn documented_examples_parse_and_render_canonically() {
        let cases = [
            (
                "https://api.github.com/repos/*/*/issues",
                "https://api.github.com/repos/*/*/issues",
            ),
            ("https://*.googleapis.com/**", "https://*.googleapis.com/**"),
            ("http://127.0.0.1:8080/**", "http://127.0.0.1:8080/**"),
            ("https://example.com/", "https://example.com/"),
            ("https://[::1]:8443/x/**", "https://[::1]:8443/x/**"),
            (
                "HTTPS://API.Example.COM.:443/a/./b/../%7e",
                "https://api.example.com/a/~",
            ),
            (
                "https://bücher.example/**",
                "https://xn--bcher-kva.example/**",
            ),
            ("http://example.com:80/", "http://example.com/"),
        ];
        for (text, shown) in cases {
            let parsed = pattern(text);
            assert_eq!(parsed.to_string(), shown);
            assert_eq!(
                pattern(shown),
                parsed,
                "{shown} re-parses to the same value"
            );
        }
    }

    #[test]
    fn explicit_default_port_equals_no_port() {
        assert_eq!(
            pattern("https://a.example:443/x"),
            pattern("https://a.example/x")
        );
        assert_eq!(pattern("https://a.example/x").port, 443);
        assert_eq!(pattern("http://a.example/x").port, 80);
        assert_ne!(
            pattern("https://a.example:80/x"),
            pattern("https://a.example/x")
        );
        assert_eq!(
            pattern("https://a.example:8443/x").origin_string(),
            "https://a.example:8443"
        );
    }

    #[test]
    fn path_wildcards_match_whole_segments() {
        let p = pattern("https://a.example/repos/*/*/issues");
        assert!(p.path.matches("/repos/o/r/issues"));
        assert!(!p.path.matches("/repos/o//issues"));
        assert!(!p.path.matches("/repos/o/r/x/issues"));
        assert!(!p.path.matches("/repos/o/r/issues/"));

        let rest = pattern("https://a.example/v1/**").path;
        for path in ["/v1", "/v1/", "/v1/a/b/c"] {
            assert!(rest.matches(path), "{path}");
        }
        for path in ["/", "/v10", "/v2/v1"] {
            assert!(!rest.matches(path), "{path}");
        }

        let root = pattern("https://a.example/").path;
        assert!(root.matches("/"));
        assert!(!root.matches("/x"));
    }

    #[test]
    fn wildcard_host_needs_at_least_one_more_label() {
        let host = HostPattern::parse("*.Example.COM").unwrap();
        assert_eq!(host, HostPattern::Wildcard("example.com".into()));
        let name = |s: &str| parse_host(s).unwrap();
        assert!(host.matches(&name("a.example.com")));
        assert!(host.matches(&name("a.b.example.com")));
        assert!(!host.matches(&name("example.com")));
        assert!(!host.matches(&name("badexample.com")));
        assert!(!host.matches(&name("example.com.evil.test")));
        assert!(!host.matches(&name("127.0.0.1")));
    }

    #[test]
    fn host_canonicalization() {
        let canonical = |s: &str| parse_host(s).map(|h| h.to_string());
        assert_eq!(
            canonical("API.GitHub.com.").as_deref(),
            Ok("api.github.com")
        );
        assert_eq!(
            canonical("api\u{ff0e}github\u{3002}com").as_deref(),
            Ok("api.github.com")
        );
        assert_eq!(canonical("straße.de").as_deref(), Ok("xn--strae-oqa.de"));
        assert_eq!(
            canonical("[0:0::FFFF:7F00:1]").as_deref(),
            Ok("[::ffff:127.0.0.1]")
        );
        assert_eq!(canonical("10.0.0.1").as_deref(), Ok("10.0.0.1"));
        assert_eq!(
            canonical("_dmarc.r1---sn.example").as_deref(),
            Ok("_dmarc.r1---sn.example")
        );
        for refused in [
            "2130706433",
            "0177.0.0.1",
            "0x7f.1",
            "127.1",
            "1.2.3.4.5",
            "01.2.3.4",
            "example.0x",
            "a..b",
            "a.b..",
            "",
            ".",
            "[fe80::1%25en0]",
            "::1",
            "a b",
            "a\\b",
            "u@h",
            "a%2eb",
            "a!b.example",
            "[::1]:80",
        ] {
            assert!(
                parse_host(refused).is_err(),
                "{refused:?} should be refused"
            );
        }
        let long_label = format!("{}.example", "a".repeat(64));
        assert_eq!(
            parse_host(&long_label).unwrap_err().problem(),
            "has a label longer than 63 bytes"
        );
    }

    #[test]
    fn errors_quote_the_value_and_say_what_was_expected() {
        assert_eq!(
            error("https://0177.0.0.1/x"),
            "in url pattern \"https://0177.0.0.1/x\": host \"0177.0.0.1\" is not a canonical \
             IPv4 address; expected an IPv4 address as four decimal numbers from 0 to 255 \
             without leading zeros, such as \"127.0.0.1\""
        );
        assert_eq!(
            error("https://example.com"),
            "url pattern \"https://example.com\" has no path; expected a path after the host: \
             \"/\" for the root only or \"/**\" for any path"
        );
        assert_eq!(
            error("ftp://example.com/"),
            "url pattern \"ftp://example.com/\" has an unsupported scheme; expected \"https://\" \
             or \"http://\""
        );
        let cases = [
            ("https://example.com/x?y=1", "contains a query or fragment"),
            ("https://u@example.com/", "contains userinfo"),
            ("https://example.com:0/", "has an invalid port"),
            (
                "https://example.com/a/**/b",
                "\"**\" before the last segment",
            ),
            ("https://example.com/a*", "\"*\" inside a segment"),
            ("https://api.*.com/", "not a whole leftmost label"),
            ("https://*.com/", "covers a whole top-level domain"),
            ("https://*.10.0.0.1/", "is a wildcard over an IP address"),
            ("https://*.0177.0.0.1/", "is not a canonical IPv4 address"),
            ("https://ex ample.com/", "whitespace"),
            ("https://[fe80::1%25eth0]/", "zone identifier"),
        ];
        for (text, problem) in cases {
            let message = error(text);
            assert!(message.contains(problem), "{text}: {message}");
            assert!(message.contains("; expected "), "{text}: {message}");
            assert!(
                message.starts_with(|c: char| c.is_ascii_lowercase()),
                "{message}"
            );
        }
    }

    #[test]
    fn error_messages_escape_and_cut_hostile_values() {
        let message = parse_host("a\r\nb").unwrap_err().to_string();
        assert!(message.starts_with("host \"a\\r\\nb\""), "{message}");
        let long = format!("{}\u{0}", "x".repeat(2000));
        let message = parse_host(&long).unwrap_err().to_string();
        assert!(message.len() < 300, "{message}");
    }

    #[test]
    fn method_sets_parse_from_strings_and_lists() {
        #[derive(Debug, Deserialize)]
        struct Grant {
            methods: MethodSet,
            url: UrlPattern,
        }
        let parse = |text: &str| toml::from_str::<Grant>(text).map_err(|e| e.to_string());

        let g = parse("methods = \"get\"\nurl = \"https://a.example/**\"").unwrap();
        assert_eq!(g.methods.to_string(), "GET");
        assert!(g.methods.contains("GET") && g.methods.contains("get"));
        assert!(!g.methods.contains("POST"));
        assert_eq!(g.url.to_string(), "https://a.example/**");

        let g = parse("methods = [\"POST\", \"get\"]\nurl = \"https://a.example/\"").unwrap();
        assert_eq!(g.methods.to_string(), "GET, POST");

        let any = parse("methods = \"*\"\nurl = \"https://a.example/\"")
            .unwrap()
            .methods;
        assert!(any.is_any() && any.contains("PROPFIND") && any.contains("delete"));
        assert!(!any.contains("TRACE") && !any.contains("connect") && !any.contains("GET /"));

        for (methods, problem) in [
            ("\"TRACE\"", "is never allowed"),
            ("[\"GET\", \"track\"]", "is never allowed"),
            ("[]", "is empty"),
            ("[\"GET\", \"*\"]", "is mixed with other methods"),
            ("\"GET POST\"", "not a valid HTTP method"),
        ] {
            let err = parse(&format!(
                "methods = {methods}\nurl = \"https://a.example/\""
            ))
            .unwrap_err();
            assert!(err.contains(problem), "{methods}: {err}");
        }
        let err = parse("methods = \"GET\"\nurl = \"https://a.example\"").unwrap_err();
        assert!(err.contains("has no path"), "{err}");
        assert!(err.contains("line 2"), "error points at the value: {err}");
    }

    #[test]
    fn method_sets_intersect() {
        let set = |s: &str| s.parse::<MethodSet>().unwrap();
        assert!(set("GET, POST").intersects(&set("post")));
        assert!(!set("GET").intersects(&set("POST, PUT")));
        assert!(set("*").intersects(&set("PATCH")));
        assert_eq!(set("*"), MethodSet::any());
    }

    #[test]
    fn path_canonicalization_is_exact() {
        let canonical = |s: &str| canonicalize_path(s);
        assert_eq!(canonical("/a/%2e%2E/b").as_deref(), Ok("/b"));
        assert_eq!(canonical("/a/.%2e").as_deref(), Ok("/"));
        assert_eq!(canonical("/a/b/.").as_deref(), Ok("/a/b/"));
        assert_eq!(canonical("/a%2fb/%5c").as_deref(), Ok("/a%2Fb/%5C"));
        assert_eq!(canonical("/%252e%252e").as_deref(), Ok("/%252e%252e"));
        assert_eq!(canonical("/%7E%41%2D").as_deref(), Ok("/~A-"));
        assert_eq!(
            canonical("/a!$&'()*+,;=:@b").as_deref(),
            Ok("/a!$&'()*+,;=:@b")
        );
        assert_eq!(canonical("/%zz"), Err(PathProblem::InvalidEscape));
        assert_eq!(canonical("/%4"), Err(PathProblem::InvalidEscape));
        assert_eq!(canonical("/%+4"), Err(PathProblem::InvalidEscape));
        assert_eq!(canonical("/a%00"), Err(PathProblem::EncodedNul));
        assert_eq!(canonical("a"), Err(PathProblem::NotAbsolute));
        assert_eq!(
            canonicalize_query("a=%2f&b=/?&c=%7e").as_deref(),
            Ok("a=%2F&b=/?&c=~")
        );
    }

    #[test]
    fn overlap_of_path_patterns() {
        let path = |s: &str| PathPattern::parse(s).unwrap();
        assert!(path("/a/*/c").overlaps(&path("/*/b/*")));
        assert!(path("/a/**").overlaps(&path("/a")));
        assert!(path("/**").overlaps(&path("/")));
        assert!(!path("/a/*").overlaps(&path("/a/")));
        assert!(!path("/a/*").overlaps(&path("/a/b/c")));
        assert!(!path("/a/b").overlaps(&path("/a/c")));
    }
}
