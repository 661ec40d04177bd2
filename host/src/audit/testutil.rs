//! Helpers shared by the audit tests: configs, sample events, a settable
//! clock, and reading and rewriting audit files.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::audit::event::tests::COMPONENT;
use crate::audit::sink::{Clock, Options};
use crate::audit::{AuditConfig, AuditLog, Decision, Event, EventKind, FailureMode, files};

/// A config for `dir` with no rotation and a generous timeout.
pub(crate) fn config(dir: &Path) -> AuditConfig {
    AuditConfig {
        dir: dir.to_owned(),
        max_file_bytes: 0,
        rotate_daily: false,
        on_failure: FailureMode::FailCall,
        write_timeout: Duration::from_secs(10),
    }
}

/// The `i`th sample event: users, tools, connections and decisions vary.
pub(crate) fn sample(i: u64) -> Event {
    let users = ["alice", "bob", "carol"];
    let tools = ["weather", "github"];
    let user = users[(i % 3) as usize];
    let tool = tools[(i % 2) as usize];
    let call_id = format!("call-{}", i / 4);

    if i.is_multiple_of(4) {
        return Event::new(EventKind::CallStart, &call_id, user, "cli", tool, COMPONENT);
    }
    let mut e = Event::new(EventKind::Request, &call_id, user, "cli", tool, COMPONENT);
    e.connection = Some(
        if i.is_multiple_of(2) {
            "github"
        } else {
            "google"
        }
        .into(),
    );
    e.method = Some("GET".into());
    e.scheme = Some("https".into());
    e.host = Some("api.example.com".into());
    e.port = Some(443);
    e.path = Some(format!("/items/{i}"));
    if i.is_multiple_of(5) {
        e.decision = Some(Decision::Deny);
        e.reason = Some("no_matching_grant".into());
    } else {
        e.decision = Some(Decision::Allow);
        e.status = Some(200);
        e.bytes_in = 100 + i;
    }
    e
}

/// Records `n` sample events through a log opened on `cfg`, then closes it.
pub(crate) fn write_events(cfg: &AuditConfig, n: u64) {
    let log = AuditLog::open(cfg.clone()).unwrap();
    for i in 0..n {
        log.record(sample(i)).unwrap();
    }
    log.flush().unwrap();
}

/// The audit files of `dir`, in chain order.
pub(crate) fn audit_files(dir: &Path) -> Vec<PathBuf> {
    files::list(dir)
        .unwrap()
        .into_iter()
        .map(|f| f.path)
        .collect()
}

/// The lines of `path`, without newlines.
pub(crate) fn read_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Replaces `path` with `lines`, each followed by a newline.
pub(crate) fn write_lines(path: &Path, lines: &[String]) {
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(path, text).unwrap();
}

/// The events of every file in `dir`, in file order.
pub(crate) fn all_events(dir: &Path) -> Vec<Event> {
    audit_files(dir)
        .iter()
        .flat_map(|p| read_lines(p))
        .map(|l| serde_json::from_str(&l).unwrap())
        .collect()
}

/// A clock that reads the millisecond count it holds.
pub(crate) fn settable_clock(start: SystemTime) -> (Clock, Arc<AtomicU64>) {
    let millis = start.duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
    let now = Arc::new(AtomicU64::new(millis));
    let read = now.clone();
    let clock: Clock =
        Arc::new(move || UNIX_EPOCH + Duration::from_millis(read.load(Ordering::SeqCst)));
    (clock, now)
}

/// Options with `clock` and the default capacity.
pub(crate) fn with_clock(clock: Clock) -> Options {
    Options {
        clock,
        ..Options::default()
    }
}
