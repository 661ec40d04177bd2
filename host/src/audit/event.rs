//! The audit record: one [`Event`], its canonical line and its hash.
//!
//! # What an event may hold
//!
//! An event says who asked for what and what the host decided. It never
//! holds a credential, a request or response body, a header value or a query
//! value: no field is meant for one, the path is stored without query values,
//! and the reason is a short code, not free text (free text such as an
//! upstream error message could quote a URL with a token in it). A test pins
//! the exact set of field names, so adding a field means revisiting this
//! rule.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The `prev` of the first event of a chain: 64 zeros.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Longest reason code accepted.
const MAX_REASON_LEN: usize = 64;

/// What an event records.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A tool call began.
    CallStart,
    /// A tool call finished (with its outcome in `decision`, if any).
    CallEnd,
    /// The egress gate decided on one outbound request.
    Request,
    /// A caller asked to act for a user it is not entitled to act for; no
    /// tool ran, so the component digest is all zeros.
    CallerRefused,
}

/// What the host decided.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// The request went out (or the call succeeded).
    Allow,
    /// Policy refused the request.
    Deny,
    /// The user has not linked the connection the request needs.
    AuthorizationRequired,
    /// The host failed (upstream unreachable, limit hit, internal error).
    Error,
}

/// One audit event. The field names are the JSON keys, and the field order
/// is the order of the canonical line.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// Position in the chain, from 0; set by the log.
    pub seq: u64,
    /// RFC 3339 UTC with milliseconds; set by the log when empty.
    pub time: String,
    /// What happened.
    pub kind: EventKind,
    /// The tool call this event belongs to.
    pub call_id: String,
    /// The user on whose behalf the call runs.
    pub user: String,
    /// Who made the call: `cli`, `mcp-stdio`, an API key id.
    pub caller: String,
    /// The tool's name.
    pub tool: String,
    /// Lowercase hex sha256 of the component build.
    pub component: String,
    /// The connection whose token the request used or would use.
    pub connection: Option<String>,
    /// The scopes the request relied on.
    pub scopes: Vec<String>,
    /// HTTP method of the request.
    pub method: Option<String>,
    /// URL scheme of the request.
    pub scheme: Option<String>,
    /// Target host of the request.
    pub host: Option<String>,
    /// Target port of the request.
    pub port: Option<u16>,
    /// Request path; query parameter names are kept, values never.
    pub path: Option<String>,
    /// What the host decided.
    pub decision: Option<Decision>,
    /// Reason code for the decision, such as `no_matching_grant`.
    pub reason: Option<String>,
    /// Upstream HTTP status.
    pub status: Option<u16>,
    /// Request body bytes sent.
    pub bytes_out: u64,
    /// Response body bytes received.
    pub bytes_in: u64,
    /// How long the call or request took.
    pub duration_ms: Option<u64>,
    /// How many token echoes the response guard removed.
    pub redactions: u64,
    /// `hash` of the previous event in the chain; set by the log.
    pub prev: String,
    /// Hex sha256 of this event's canonical line; set by the log.
    pub hash: String,
}

impl Event {
    /// An event of `kind` for the given call; every other field is empty,
    /// zero or `None`, and the log fills in `seq`, `time`, `prev` and `hash`.
    pub fn new(
        kind: EventKind,
        call_id: &str,
        user: &str,
        caller: &str,
        tool: &str,
        component: &str,
    ) -> Event {
        Event {
            seq: 0,
            time: String::new(),
            kind,
            call_id: call_id.to_owned(),
            user: user.to_owned(),
            caller: caller.to_owned(),
            tool: tool.to_owned(),
            component: component.to_owned(),
            connection: None,
            scopes: Vec::new(),
            method: None,
            scheme: None,
            host: None,
            port: None,
            path: None,
            decision: None,
            reason: None,
            status: None,
            bytes_out: 0,
            bytes_in: 0,
            duration_ms: None,
            redactions: 0,
            prev: String::new(),
            hash: String::new(),
        }
    }

    /// The canonical line that `hash` covers: this event serialized with
    /// `hash` set to the empty string.
    pub fn canonical_line(&self) -> String {
        let mut unhashed = self.clone();
        unhashed.hash.clear();
        serialize(&unhashed)
    }

    /// Lowercase hex sha256 of [`Event::canonical_line`].
    pub fn compute_hash(&self) -> String {
        hex::encode(Sha256::digest(self.canonical_line().as_bytes()))
    }

    /// The line stored in an audit file, without its newline.
    pub fn to_line(&self) -> String {
        serialize(self)
    }

    /// Checks the rules a recorded event must follow; the message names the
    /// field and never quotes a value that could be sensitive.
    pub(crate) fn validate(&self) -> Result<(), String> {
        for (name, value) in [
            ("call_id", &self.call_id),
            ("user", &self.user),
            ("caller", &self.caller),
            ("tool", &self.tool),
        ] {
            if value.is_empty() {
                return Err(format!("{name} is empty"));
            }
        }
        if self.component.len() != 64
            || !self
                .component
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err("component is not 64 lowercase hex digits".to_owned());
        }

        if self.kind == EventKind::Request {
            if self.decision.is_none() {
                return Err("a request event has no decision".to_owned());
            }
            if self.method.is_none() || self.host.is_none() {
                return Err("a request event has no method or host".to_owned());
            }
        }
        if matches!(self.decision, Some(d) if d != Decision::Allow) && self.reason.is_none() {
            return Err("a decision other than allow has no reason code".to_owned());
        }
        if let Some(reason) = &self.reason
            && !is_reason_code(reason)
        {
            return Err(format!(
                "reason is not a code of up to {MAX_REASON_LEN} characters [a-z0-9_], \
                 starting with a letter"
            ));
        }
        Ok(())
    }
}

/// Removes query values and any fragment from a request path, keeping the
/// parameter names: `/v1/items?access_token=abc&limit=5#top` becomes
/// `/v1/items?access_token=&limit=`. A path without a query is unchanged,
/// and applying it twice changes nothing more.
pub fn strip_query_values(path: &str) -> String {
    let path = path.split_once('#').map_or(path, |(before, _)| before);
    let Some((base, query)) = path.split_once('?') else {
        return path.to_owned();
    };

    let names: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) => format!("{name}="),
            None => pair.to_owned(),
        })
        .collect();
    format!("{base}?{}", names.join("&"))
}

fn is_reason_code(s: &str) -> bool {
    s.len() <= MAX_REASON_LEN
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

fn serialize(event: &Event) -> String {
    // An Event holds only strings, integers, options and unit enums, which
    // serde_json cannot fail to write.
    serde_json::to_string(event).expect("an audit event always serializes")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const COMPONENT: &str =
        "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    /// A request event with every field that could carry a value set.
    pub(crate) fn request(user: &str, decision: Decision) -> Event {
        let mut e = Event::new(
            EventKind::Request,
            "call-1",
            user,
            "cli",
            "weather",
            COMPONENT,
        );
        e.connection = Some("github".into());
        e.scopes = vec!["repo:read".into()];
        e.method = Some("GET".into());
        e.scheme = Some("https".into());
        e.host = Some("api.github.com".into());
        e.port = Some(443);
        e.path = Some("/repos?per_page=".into());
        e.decision = Some(decision);
        if decision != Decision::Allow {
            e.reason = Some("no_matching_grant".into());
        }
        e
    }

    #[test]
    fn canonical_line_has_an_empty_hash_and_fixed_field_order() {
        let mut e = request("alice", Decision::Allow);
        e.hash = "ff".into();
        let line = e.canonical_line();
        assert!(line.starts_with(r#"{"seq":0,"time":"","kind":"request","call_id":"call-1""#));
        assert!(line.ends_with(r#""prev":"","hash":""}"#), "{line}");
        assert!(
            line.contains(r#""duration_ms":null"#),
            "absent options are written"
        );
    }

    #[test]
    fn hash_covers_every_field_but_itself() {
        let base = request("alice", Decision::Allow);
        let h = base.compute_hash();
        assert_eq!(h.len(), 64);

        let mut with_hash = base.clone();
        with_hash.hash = h.clone();
        assert_eq!(with_hash.compute_hash(), h);

        let mut changed = base.clone();
        changed.bytes_in = 1;
        assert_ne!(changed.compute_hash(), h);
        let mut changed = base;
        changed.prev = GENESIS_HASH.into();
        assert_ne!(changed.compute_hash(), h);
    }

    #[test]
    fn stored_line_round_trips() {
        let mut e = request("alice", Decision::Deny);
        e.hash = e.compute_hash();
        let back: Event = serde_json::from_str(&e.to_line()).unwrap();
        assert_eq!(back, e);
        assert!(e.to_line().contains(r#""decision":"deny""#));
        let mut auth = e.clone();
        auth.decision = Some(Decision::AuthorizationRequired);
        assert!(
            auth.to_line()
                .contains(r#""decision":"authorization_required""#)
        );
    }

    #[test]
    fn unknown_json_keys_are_refused() {
        let line = request("alice", Decision::Allow).to_line().replacen(
            '{',
            r#"{"authorization":"x","#,
            1,
        );
        assert!(serde_json::from_str::<Event>(&line).is_err());
    }

    #[test]
    fn query_values_are_stripped_and_names_kept() {
        assert_eq!(
            strip_query_values("/v1/items?access_token=abc&limit=5&flag#frag"),
            "/v1/items?access_token=&limit=&flag"
        );
        assert_eq!(strip_query_values("/plain"), "/plain");
        assert_eq!(strip_query_values("/a#x?y=1"), "/a");
        let once = strip_query_values("/s?q=secret=more");
        assert_eq!(once, "/s?q=");
        assert_eq!(strip_query_values(&once), once);
    }

    #[test]
    fn denials_need_a_reason_code() {
        let mut e = request("alice", Decision::Deny);
        assert_eq!(e.validate(), Ok(()));
        e.reason = None;
        assert!(e.validate().unwrap_err().contains("reason code"));
        e.reason = Some("upstream said: https://x/?token=abc".into());
        assert!(e.validate().unwrap_err().contains("not a code"));
        e.reason = Some("a".repeat(65));
        assert!(e.validate().is_err());
    }

    #[test]
    fn validation_requires_identity_and_a_digest() {
        let mut e = request("", Decision::Allow);
        assert_eq!(e.validate(), Err("user is empty".into()));
        e.user = "alice".into();
        e.component = "sha256:abc".into();
        assert!(e.validate().unwrap_err().contains("component"));
        e.component = COMPONENT.to_uppercase();
        assert!(e.validate().is_err());
        let mut r = request("alice", Decision::Allow);
        r.decision = None;
        assert!(r.validate().unwrap_err().contains("no decision"));
    }

    /// The no-secrets rule, pinned: the exact key set, and no key named like a
    /// place a credential, header or body would go.
    #[test]
    fn event_has_no_field_that_could_hold_a_secret() {
        let value = serde_json::to_value(request("alice", Decision::Allow)).unwrap();
        let keys: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let expected = [
            "seq",
            "time",
            "kind",
            "call_id",
            "user",
            "caller",
            "tool",
            "component",
            "connection",
            "scopes",
            "method",
            "scheme",
            "host",
            "port",
            "path",
            "decision",
            "reason",
            "status",
            "bytes_out",
            "bytes_in",
            "duration_ms",
            "redactions",
            "prev",
            "hash",
        ];
        let mut sorted_keys = keys.clone();
        sorted_keys.sort_unstable();
        let mut sorted_expected = expected.to_vec();
        sorted_expected.sort_unstable();
        assert_eq!(sorted_keys, sorted_expected, "review the no-secrets rule");

        let forbidden = [
            "token",
            "auth",
            "secret",
            "password",
            "credential",
            "cookie",
            "header",
            "body",
            "query",
            "key",
            "bearer",
        ];
        for key in keys {
            for word in forbidden {
                assert!(
                    !key.contains(word),
                    "field {key:?} looks like it holds a {word}"
                );
            }
        }
    }
}
