//! The egress policy: which outbound requests a tool may make.
//!
//! A [`Policy`] holds a tool's effective grants, each a method set and a URL
//! pattern bound to at most one connection. Every request is first turned
//! into a canonical [`Target`], then [`Policy::decide`] finds the grant it
//! falls under or explains the denial: a stable reason code for the audit
//! and, for the operator only, the nearest grant and the config that would
//! allow the request. The default is deny. After DNS resolution the caller
//! checks each address with [`check_address`]. Everything here is a pure
//! function; nothing does I/O.

mod address;
mod headers;
mod target;

use std::fmt::{self, Write as _};

use crate::manifest::pattern::{HostName, HostPattern, MethodSet, UrlPattern};

pub use address::{AddrClass, check_address, classify};
pub use headers::{canonical_method, check_header, is_forbidden_header, is_forbidden_method};
pub use target::{Target, is_ambiguous_path};

/// One granted endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    /// The methods granted.
    pub methods: MethodSet,
    /// The URLs granted.
    pub url: UrlPattern,
    /// The connection whose token is attached; `None` sends no credential.
    pub connection: Option<String>,
    /// Whether loopback, private, link-local, CGNAT and unique-local
    /// addresses may be reached. Metadata addresses never may.
    pub allow_private: bool,
}

impl fmt::Display for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.methods, self.url)
    }
}

/// A tool's effective grants, checked so that no request can match grants
/// of two different connections.
#[derive(Clone, Debug)]
pub struct Policy {
    grants: Vec<Grant>,
}

impl Policy {
    /// Builds a policy. Two grants with different connections (no
    /// connection counts as its own value) whose methods intersect and whose
    /// URL patterns overlap are an error naming both: one request could
    /// otherwise carry either token.
    pub fn new(grants: Vec<Grant>) -> Result<Policy, PolicyError> {
        for (i, a) in grants.iter().enumerate() {
            for (j, b) in grants.iter().enumerate().skip(i + 1) {
                let conflict = a.connection != b.connection
                    && a.methods.intersects(&b.methods)
                    && a.url.overlaps(&b.url);
                if conflict {
                    return Err(PolicyError::ConnectionOverlap {
                        first: i,
                        first_grant: a.to_string(),
                        first_connection: describe_connection(&a.connection),
                        second: j,
                        second_grant: b.to_string(),
                        second_connection: describe_connection(&b.connection),
                    });
                }
            }
        }
        Ok(Policy { grants })
    }

    /// The grants, in the order given; indexes in decisions refer to it.
    pub fn grants(&self) -> &[Grant] {
        &self.grants
    }

    /// Finds the grant a request falls under and returns its index; the
    /// first matching grant wins. Forbidden and malformed methods are denied
    /// first, then paths a server could read as a dot segment. A request to
    /// an IP literal is also checked with [`check_address`] here; a request
    /// to a name must be checked after resolution by the caller.
    pub fn decide(&self, method: &str, target: &Target) -> Result<usize, Denial> {
        let method = canonical_method(method).map_err(Denial::from)?;
        if is_ambiguous_path(&target.path) {
            return Err(Denial {
                reason: DenyReason::AmbiguousPath,
                nearest: None,
                hint: format!(
                    "path {} has a segment that decodes to \".\" or \"..\"",
                    target.path
                ),
            });
        }

        let found = self.grants.iter().position(|grant| {
            grant.methods.contains(&method)
                && grant
                    .url
                    .matches(target.scheme, &target.host, target.port, &target.path)
        });
        let Some(index) = found else {
            return Err(self.explain(&method, target));
        };
        if let Some(ip) = target.host.ip() {
            check_address(ip, self.grants[index].allow_private)
                .map_err(|reason| self.address_denial(index, reason, &target.host))?;
        }
        Ok(index)
    }

    /// Parses a request and decides it; the target is returned with the
    /// grant index so the caller sends exactly what was checked.
    pub fn check(
        &self,
        method: &str,
        scheme: &str,
        authority: &str,
        path_and_query: &str,
    ) -> Result<(usize, Target), Denial> {
        let target = Target::parse(scheme, authority, path_and_query)?;
        let index = self.decide(method, &target)?;
        Ok((index, target))
    }

    /// Explains why no grant matched, naming the nearest one. Never uses the
    /// query: it may carry secrets.
    fn explain(&self, method: &str, target: &Target) -> Denial {
        let origin = target.origin();
        let suggestion = format!("methods = \"{method}\", url = \"{origin}{}\"", target.path);
        let grants = self.grants.iter().enumerate();

        let url_match = grants.clone().find(|(_, g)| {
            g.url
                .matches(target.scheme, &target.host, target.port, &target.path)
        });
        if let Some((i, g)) = url_match {
            let hint = format!("add \"{method}\" to methods of grant {i} ({})", g.url);
            return Denial {
                reason: DenyReason::MethodNotGranted,
                nearest: Some(i),
                hint,
            };
        }

        // Same origin, other path: the grant sharing the longest path prefix.
        let same_origin = grants
            .clone()
            .filter(|(_, g)| {
                g.url.scheme == target.scheme
                    && g.url.port == target.port
                    && g.url.host.matches(&target.host)
            })
            .max_by_key(|(i, g)| (g.url.path.matching_prefix(&target.path), usize::MAX - i));
        if let Some((i, g)) = same_origin {
            let hint = format!(
                "path {} is outside grant {i} ({g}); a grant would need {suggestion}",
                target.path
            );
            return Denial {
                reason: DenyReason::NoMatchingGrant,
                nearest: Some(i),
                hint,
            };
        }

        let same_host = grants
            .clone()
            .find(|(_, g)| g.url.host.matches(&target.host));
        if let Some((i, g)) = same_host {
            let hint = format!(
                "grant {i} ({g}) is for origin {}, not {origin}; a grant would need {suggestion}",
                g.url.origin_string()
            );
            return Denial {
                reason: DenyReason::NoMatchingGrant,
                nearest: Some(i),
                hint,
            };
        }

        let nearest = grants
            .map(|(i, g)| (i, shared_labels(&g.url.host, &target.host)))
            .filter(|(_, shared)| *shared >= 2)
            .max_by_key(|(i, shared)| (*shared, usize::MAX - i))
            .map(|(i, _)| i);
        let mut hint = format!("no grant for origin {origin}; a grant would need {suggestion}");
        if let Some(i) = nearest {
            let _ = write!(hint, "; nearest is grant {i} ({})", self.grants[i]);
        }
        Denial {
            reason: DenyReason::NoMatchingGrant,
            nearest,
            hint,
        }
    }

    fn address_denial(&self, index: usize, reason: DenyReason, host: &HostName) -> Denial {
        let grant = &self.grants[index];
        let hint = match &reason {
            DenyReason::PrivateAddress(class) => format!(
                "grant {index} ({grant}) matches, but {host} is a {class} address; \
                 set allow_private = true on that grant to reach it"
            ),
            _ => {
                format!("grant {index} ({grant}) matches, but {host} is never reachable: {reason}")
            }
        };
        Denial {
            reason,
            nearest: Some(index),
            hint,
        }
    }
}

/// How many trailing DNS labels a host pattern and a host share.
fn shared_labels(pattern: &HostPattern, host: &HostName) -> usize {
    let (HostPattern::Exact(HostName::Domain(a)) | HostPattern::Wildcard(a), HostName::Domain(b)) =
        (pattern, host)
    else {
        return 0;
    };
    a.rsplit('.')
        .zip(b.rsplit('.'))
        .take_while(|(x, y)| x == y)
        .count()
}

fn describe_connection(connection: &Option<String>) -> String {
    match connection {
        Some(name) => format!("connection {name:?}"),
        None => "no connection".to_owned(),
    }
}

/// A grant set that cannot be used as a policy.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// Two grants for different connections can match one request.
    #[error(
        "grant {first} ({first_grant}, {first_connection}) and grant {second} \
         ({second_grant}, {second_connection}) can match the same request; \
         expected every endpoint to belong to one connection, so narrow the \
         methods or url of one of them"
    )]
    ConnectionOverlap {
        /// Index of the earlier grant.
        first: usize,
        /// The earlier grant, as `METHODS url`.
        first_grant: String,
        /// The earlier grant's connection, described.
        first_connection: String,
        /// Index of the later grant.
        second: usize,
        /// The later grant, as `METHODS url`.
        second_grant: String,
        /// The later grant's connection, described.
        second_connection: String,
    },
}

/// A denied request: the reason, the nearest grant and an operator-facing
/// hint. Only the reason may be shown to the guest, and only as a code.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct Denial {
    /// Why the request was denied.
    pub reason: DenyReason,
    /// Index of the grant closest to allowing the request, if any.
    pub nearest: Option<usize>,
    /// For the operator log: the nearest grant and what config would allow
    /// the request. Never contains the query string.
    pub hint: String,
}

impl From<DenyReason> for Denial {
    fn from(reason: DenyReason) -> Denial {
        let hint = reason.to_string();
        Denial {
            reason,
            nearest: None,
            hint,
        }
    }
}

/// Why a request was denied. [`DenyReason::code`] gives the stable code
/// recorded in the audit.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DenyReason {
    /// The scheme is neither `http` nor `https`.
    #[error("scheme is not http or https")]
    UnsupportedScheme,
    /// The authority contains `@`.
    #[error("url carries userinfo (\"@\" in the authority)")]
    Userinfo,
    /// The URL contains `#`.
    #[error("url carries a fragment (\"#\")")]
    Fragment,
    /// Whitespace, a control character (CR, LF, NUL included) or a
    /// backslash somewhere in the URL.
    #[error("url contains {0}")]
    ForbiddenCharacter(&'static str),
    /// The host is not a canonical name or IP literal.
    #[error("host {0}")]
    InvalidHost(&'static str),
    /// The port is not 1..=65535 written in plain digits.
    #[error("invalid port")]
    InvalidPort,
    /// Another structural problem with the URL.
    #[error("invalid url: {0}")]
    InvalidUrl(&'static str),
    /// A path segment that decodes to `.` or `..` on a second look.
    #[error("path has a segment that decodes to a dot segment")]
    AmbiguousPath,
    /// The method is not a valid token.
    #[error("invalid method")]
    InvalidMethod,
    /// TRACE, TRACK or CONNECT.
    #[error("method is never allowed")]
    ForbiddenMethod,
    /// A header the guest may not set (lowercase name).
    #[error("header {0:?} may not be set by a tool")]
    ForbiddenHeader(String),
    /// A malformed header name or value.
    #[error("invalid header: {0}")]
    InvalidHeader(&'static str),
    /// No grant covers the request's origin and path.
    #[error("no grant matches the request")]
    NoMatchingGrant,
    /// A grant covers the URL, but not with this method.
    #[error("method is not granted for this url")]
    MethodNotGranted,
    /// A private-network address without `allow_private`.
    #[error("address is {0} and the grant does not allow private networks")]
    PrivateAddress(AddrClass),
    /// A cloud metadata address, refused always.
    #[error("address is a cloud metadata endpoint")]
    MetadataAddress,
    /// An address that is never a valid destination.
    #[error("address is {0} and never reachable")]
    UnroutableAddress(AddrClass),
    /// The call already made as many requests as its limits allow.
    #[error("the call reached its limit on outbound requests")]
    RequestLimit,
}

impl DenyReason {
    /// The stable snake_case code for this reason.
    pub fn code(&self) -> &'static str {
        match self {
            DenyReason::UnsupportedScheme => "unsupported_scheme",
            DenyReason::Userinfo => "userinfo",
            DenyReason::Fragment => "fragment",
            DenyReason::ForbiddenCharacter(_) => "forbidden_character",
            DenyReason::InvalidHost(_) => "invalid_host",
            DenyReason::InvalidPort => "invalid_port",
            DenyReason::InvalidUrl(_) => "invalid_url",
            DenyReason::AmbiguousPath => "ambiguous_path",
            DenyReason::InvalidMethod => "invalid_method",
            DenyReason::ForbiddenMethod => "forbidden_method",
            DenyReason::ForbiddenHeader(_) => "forbidden_header",
            DenyReason::InvalidHeader(_) => "invalid_header",
            DenyReason::NoMatchingGrant => "no_matching_grant",
            DenyReason::MethodNotGranted => "method_not_granted",
            DenyReason::PrivateAddress(_) => "private_address",
            DenyReason::MetadataAddress => "metadata_address",
            DenyReason::UnroutableAddress(_) => "unroutable_address",
            DenyReason::RequestLimit => "request_limit",
        }
    }
}

#[cfg(test)]
mod corpus;
#[cfg(test)]
mod properties;
#[cfg(test)]
mod tests;
