//! Reading events back: filtering and printing them as a table.
//!
//! [`query`] reads the files in chain order and keeps the events that match
//! every set field of a [`Filter`]. It does not check the chain; that is
//! [`verify`](crate::audit::verify())'s job.

use std::path::Path;

use crate::audit::AuditError;
use crate::audit::event::{Decision, Event, EventKind};
use crate::audit::files;
use crate::audit::time::is_time_prefix;

/// Widest a table column gets; longer values are cut with `…`.
const MAX_COLUMN: usize = 48;

/// Which events [`query`] returns. Unset fields match everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Exactly this user.
    pub user: Option<String>,
    /// Exactly this tool.
    pub tool: Option<String>,
    /// Exactly this connection.
    pub connection: Option<String>,
    /// Exactly this decision.
    pub decision: Option<Decision>,
    /// At or after this UTC time: a prefix of `YYYY-MM-DDTHH:MM:SS.mmmZ`
    /// that ends at a field, such as `2025-03-01` or `2025-03-01T09:30`.
    pub since: Option<String>,
    /// Before this UTC time, in the same form as `since`.
    pub until: Option<String>,
}

impl Filter {
    /// Whether `event` passes. `since` and `until` compare as strings, which
    /// orders times written by the log correctly.
    pub fn matches(&self, event: &Event) -> bool {
        let same = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        same(&self.user, &event.user)
            && same(&self.tool, &event.tool)
            && self
                .connection
                .as_deref()
                .is_none_or(|c| event.connection.as_deref() == Some(c))
            && self.decision.is_none_or(|d| event.decision == Some(d))
            && self
                .since
                .as_deref()
                .is_none_or(|s| event.time.as_str() >= time_bound(s))
            && self
                .until
                .as_deref()
                .is_none_or(|u| event.time.as_str() < time_bound(u))
    }

    fn validate(&self) -> Result<(), AuditError> {
        for (field, value) in [("since", &self.since), ("until", &self.until)] {
            if let Some(value) = value
                && !is_time_prefix(value)
            {
                return Err(AuditError::InvalidFilter {
                    field,
                    value: value.clone(),
                    expected: "a UTC time such as 2025-03-01 or 2025-03-01T09:30:00Z",
                });
            }
        }
        Ok(())
    }
}

/// The events in `dir` that match `filter`, in chain order.
///
/// A last line cut off by a crash is skipped with a warning; any other line
/// that is not an event is an error naming it.
pub fn query(dir: &Path, filter: &Filter) -> Result<Vec<Event>, AuditError> {
    filter.validate()?;
    let listed = files::list(dir).map_err(|source| AuditError::Dir {
        path: dir.to_owned(),
        source,
    })?;

    let mut found = Vec::new();
    for file in listed {
        let text = std::fs::read(&file.path).map_err(|source| AuditError::Read {
            path: file.path.clone(),
            source,
        })?;
        let complete = text.ends_with(b"\n");
        let lines: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
        let count = lines.len() - usize::from(complete);

        for (i, line) in lines.into_iter().take(count).enumerate() {
            let parsed = std::str::from_utf8(line)
                .map_err(|e| e.to_string())
                .and_then(|s| serde_json::from_str::<Event>(s).map_err(|e| e.to_string()));
            match parsed {
                Ok(event) if filter.matches(&event) => found.push(event),
                Ok(_) => {}
                Err(_) if i + 1 == count && !complete => {
                    tracing::warn!(file = %file.path.display(), line = i + 1, "skipping a cut-off last line");
                }
                Err(detail) => {
                    return Err(AuditError::BadLine {
                        path: file.path.clone(),
                        line: i + 1,
                        detail,
                    });
                }
            }
        }
    }
    Ok(found)
}

/// Formats `events` as a fixed-width text table with a header row, for a
/// terminal. Control characters in values are shown as `?`, and long values
/// are cut.
pub fn render_table(events: &[Event]) -> String {
    const HEADERS: [&str; 12] = [
        "SEQ",
        "TIME",
        "KIND",
        "USER",
        "CALLER",
        "TOOL",
        "CONNECTION",
        "METHOD",
        "TARGET",
        "DECISION",
        "REASON",
        "STATUS",
    ];
    let rows: Vec<[String; 12]> = events.iter().map(row).collect();

    let mut widths = HEADERS.map(|h| h.chars().count());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }

    let mut out = String::new();
    push_row(&mut out, &HEADERS.map(str::to_owned), &widths);
    for row in &rows {
        push_row(&mut out, row, &widths);
    }
    out
}

/// The table cells of one event.
fn row(e: &Event) -> [String; 12] {
    let opt = |v: &Option<String>| v.as_deref().map_or("-".to_owned(), cell);
    let target = match (&e.host, &e.path) {
        (None, _) => "-".to_owned(),
        (Some(host), path) => {
            let port = e.port.map(|p| format!(":{p}")).unwrap_or_default();
            cell(&format!("{host}{port}{}", path.as_deref().unwrap_or("")))
        }
    };
    [
        e.seq.to_string(),
        cell(&e.time),
        kind_name(e.kind).to_owned(),
        cell(&e.user),
        cell(&e.caller),
        cell(&e.tool),
        opt(&e.connection),
        opt(&e.method),
        target,
        e.decision.map_or("-", decision_name).to_owned(),
        opt(&e.reason),
        e.status.map_or("-".to_owned(), |s| s.to_string()),
    ]
}

fn push_row(out: &mut String, cells: &[String; 12], widths: &[usize; 12]) {
    let mut line = String::new();
    for (cell, width) in cells.iter().zip(widths) {
        line.push_str(cell);
        line.extend(std::iter::repeat_n(' ', width - cell.chars().count() + 2));
    }
    out.push_str(line.trim_end());
    out.push('\n');
}

/// A value made safe and short for a table cell.
fn cell(value: &str) -> String {
    let clean: String = value
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if clean.chars().count() <= MAX_COLUMN {
        return clean;
    }
    let mut cut: String = clean.chars().take(MAX_COLUMN - 1).collect();
    cut.push('…');
    cut
}

/// The name a time filter value compares as: without a trailing `Z`, so that
/// `…:00Z` does not sort after `…:00.500Z`.
fn time_bound(value: &str) -> &str {
    value.strip_suffix('Z').unwrap_or(value)
}

fn kind_name(kind: EventKind) -> &'static str {
    match kind {
        EventKind::CallStart => "call_start",
        EventKind::CallEnd => "call_end",
        EventKind::Request => "request",
        EventKind::CallerRefused => "caller_refused",
    }
}

fn decision_name(decision: Decision) -> &'static str {
    match decision {
        Decision::Allow => "allow",
        Decision::Deny => "deny",
        Decision::AuthorizationRequired => "authorization_required",
        Decision::Error => "error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::AuditLog;
    use crate::audit::event::tests::request;
    use crate::audit::testutil::*;

    /// Six events at known times, 2025-03-01 to 2025-03-06.
    fn six_events() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open(config(dir.path())).unwrap();
        let rows = [
            ("alice", "github", Some("github"), Decision::Allow),
            ("bob", "github", Some("github"), Decision::Deny),
            ("alice", "weather", None, Decision::Deny),
            (
                "carol",
                "github",
                Some("github"),
                Decision::AuthorizationRequired,
            ),
            ("alice", "github", Some("gitlab"), Decision::Allow),
            ("bob", "weather", None, Decision::Error),
        ];
        for (day, (user, tool, connection, decision)) in rows.into_iter().enumerate() {
            let mut e = request(user, decision);
            e.tool = tool.into();
            e.connection = connection.map(str::to_owned);
            e.time = format!("2025-03-0{}T12:00:00.000Z", day + 1);
            if decision == Decision::Error {
                e.reason = Some("upstream_unreachable".into());
            }
            log.record(e).unwrap();
        }
        log.flush().unwrap();
        dir
    }

    fn seqs(dir: &Path, filter: Filter) -> Vec<u64> {
        query(dir, &filter).unwrap().iter().map(|e| e.seq).collect()
    }

    #[test]
    fn filters_combine() {
        let dir = six_events();
        let d = dir.path();
        assert_eq!(seqs(d, Filter::default()), [0, 1, 2, 3, 4, 5]);
        let alice = || Filter {
            user: Some("alice".into()),
            ..Filter::default()
        };
        assert_eq!(seqs(d, alice()), [0, 2, 4]);
        let alice_github = Filter {
            tool: Some("github".into()),
            ..alice()
        };
        assert_eq!(seqs(d, alice_github), [0, 4]);
        let github = Filter {
            connection: Some("github".into()),
            ..Filter::default()
        };
        assert_eq!(seqs(d, github), [0, 1, 3]);
        let denied = Filter {
            decision: Some(Decision::Deny),
            ..Filter::default()
        };
        assert_eq!(seqs(d, denied), [1, 2]);
        let nobody = Filter {
            user: Some("mallory".into()),
            ..Filter::default()
        };
        assert_eq!(seqs(d, nobody), Vec::<u64>::new());
    }

    #[test]
    fn since_is_inclusive_and_until_exclusive() {
        let dir = six_events();
        let d = dir.path();
        let window = |since: &str, until: &str| Filter {
            since: Some(since.into()),
            until: Some(until.into()),
            ..Filter::default()
        };
        assert_eq!(seqs(d, window("2025-03-02", "2025-03-04")), [1, 2]);
        assert_eq!(
            seqs(
                d,
                window("2025-03-02T12:00:00Z", "2025-03-03T12:00:00.000Z")
            ),
            [1]
        );
        assert_eq!(
            seqs(d, window("2025-03-02T12:00:00.001Z", "2025-03-07")),
            [2, 3, 4, 5]
        );
    }

    #[test]
    fn a_malformed_time_filter_is_refused() {
        let dir = six_events();
        let filter = Filter {
            since: Some("last tuesday".into()),
            ..Filter::default()
        };
        let err = query(dir.path(), &filter).unwrap_err();
        assert!(
            matches!(err, AuditError::InvalidFilter { field: "since", .. }),
            "{err}"
        );
        assert!(err.to_string().contains("\"last tuesday\""), "{err}");
    }

    #[test]
    fn a_cut_off_last_line_is_skipped_but_a_bad_middle_line_is_an_error() {
        let dir = six_events();
        let file = audit_files(dir.path()).remove(0);
        let text = std::fs::read_to_string(&file).unwrap();

        std::fs::write(&file, &text[..text.len() - 10]).unwrap();
        assert_eq!(seqs(dir.path(), Filter::default()), [0, 1, 2, 3, 4]);

        std::fs::write(&file, text.replacen("\n", "\nnot json\n", 1)).unwrap();
        let err = query(dir.path(), &Filter::default()).unwrap_err();
        assert!(matches!(err, AuditError::BadLine { line: 2, .. }), "{err}");
    }

    #[test]
    fn the_table_aligns_columns_and_neutralizes_control_characters() {
        let dir = six_events();
        let mut events = query(dir.path(), &Filter::default()).unwrap();
        events[1].path = Some(format!("/x\u{1b}[2J{}", "y".repeat(100)));

        let table = render_table(&events);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 7);
        assert!(lines[0].starts_with("SEQ  TIME"), "{}", lines[0]);
        assert!(
            !table.contains('\u{1b}'),
            "escape sequences are neutralized"
        );
        assert!(table.contains("api.github.com:443/x?[2Jyyy"), "{table}");
        assert!(table.contains('…'), "long values are cut");

        // Every row puts DECISION at the same column as the header.
        let at = lines[0].find("DECISION").unwrap();
        let decisions = [
            "allow",
            "deny",
            "deny",
            "authorization_required",
            "allow",
            "error",
        ];
        for (line, decision) in lines[1..].iter().zip(decisions) {
            let cells: String = line.chars().skip(at).collect();
            assert!(cells.starts_with(decision), "{line}");
        }
        assert!(lines[2].contains("no_matching_grant"));
        assert_eq!(render_table(&[]).lines().count(), 1);
    }
}
