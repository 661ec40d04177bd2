//! The audit log: assigns each event its place in the chain and hands it to
//! one writer thread.
//!
//! [`AuditLog::record`] takes a lock, waits (bounded) for room in the queue,
//! gives the event its `seq`, `time`, `prev` and `hash`, and queues its line,
//! all under that one lock so queue order is chain order. It does not wait
//! for the file: the writer takes everything queued as one batch, appends
//! it, and syncs the file when a flush asks for it, on rotation and on
//! shutdown. A failed write keeps the batch at the head of the queue and is
//! retried with backoff, so a chain never skips an event that was given a
//! seq; while the writer is failing, `record` reports the failure.
//!
//! # Durability
//!
//! An event `record` accepted is in memory until the writer appends it,
//! within a few milliseconds (the writer lets events gather for up to
//! 2 ms to write them in one go); it is on disk once a [`AuditLog::flush`]
//! returns, and when the last clone of the log is dropped (the writer
//! writes and syncs what is queued before it stops). A process that dies
//! without either can lose the events still queued, at most the queue's
//! capacity, always from the end of the chain: what was written still
//! verifies, and nothing is missing from its middle.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use crate::audit::AuditError;
use crate::audit::event::{Event, strip_query_values};
use crate::audit::files;
use crate::audit::queue::{Pending, Shared, run_writer};
use crate::audit::time::{date_stamp, rfc3339_millis};
use crate::audit::writer::FileWriter;

/// What the host does when an event cannot be written in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureMode {
    /// `record` returns the error, and the caller fails the tool call.
    FailCall,
    /// `record` logs the error at error level and returns `Ok`; the call goes
    /// on without its audit event.
    ContinueAndAlert,
}

/// Where and how the audit log writes.
#[derive(Debug, Clone)]
pub struct AuditConfig {
    /// Directory of the `audit-YYYYMMDD-NNNN.jsonl` files; created if missing.
    pub dir: PathBuf,
    /// Start a new file before one would grow past this many bytes; 0 means
    /// no size limit. A single line longer than the limit gets a file of its
    /// own.
    pub max_file_bytes: u64,
    /// Start a new file when the UTC day changes.
    pub rotate_daily: bool,
    /// What `record` does when writing fails or times out.
    pub on_failure: FailureMode,
    /// Longest time `record` and `flush` wait for the writer.
    pub write_timeout: Duration,
}

impl AuditConfig {
    /// Defaults for `dir`: 64 MiB files, daily rotation, fail the call on
    /// failure, a 2 second write timeout.
    pub fn new(dir: impl Into<PathBuf>) -> AuditConfig {
        AuditConfig {
            dir: dir.into(),
            max_file_bytes: 64 * 1024 * 1024,
            rotate_daily: true,
            on_failure: FailureMode::FailCall,
            write_timeout: Duration::from_secs(2),
        }
    }
}

/// The source of "now" for event times and file days.
pub(crate) type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// Settings tests change; the defaults are what [`AuditLog::open`] uses.
pub(crate) struct Options {
    pub clock: Clock,
    /// Events queued but not yet written, at most.
    pub capacity: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            clock: Arc::new(SystemTime::now),
            capacity: 4096,
        }
    }
}

/// The audit log of one host. Cloning is cheap and every clone records into
/// the same chain; the writer stops (after writing and syncing what is
/// queued) when the last clone is dropped.
#[derive(Clone)]
pub struct AuditLog {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    shared: Arc<Shared>,
    dir: PathBuf,
    on_failure: FailureMode,
    write_timeout: Duration,
    thread: Option<JoinHandle<()>>,
}

impl AuditLog {
    /// Opens the log in `cfg.dir`, creating the directory, and continues the
    /// chain after the last line of the newest file.
    ///
    /// Fails if that line is cut off or is not a sound event: writing on
    /// would hide the damage, so the operator has to look first.
    pub fn open(cfg: AuditConfig) -> Result<AuditLog, AuditError> {
        AuditLog::open_with(cfg, Options::default())
    }

    pub(crate) fn open_with(cfg: AuditConfig, opts: Options) -> Result<AuditLog, AuditError> {
        let dir_err = |source| AuditError::Dir {
            path: cfg.dir.clone(),
            source,
        };
        std::fs::create_dir_all(&cfg.dir).map_err(dir_err)?;
        let lock = files::lock_dir(&cfg.dir)?;
        let listed = files::list(&cfg.dir).map_err(dir_err)?;
        let (next_seq, last_hash) = files::resume(&listed)?;

        let newest = match listed.last() {
            Some(file) => {
                let len = std::fs::metadata(&file.path)
                    .map_err(|source| AuditError::Read {
                        path: file.path.clone(),
                        source,
                    })?
                    .len();
                Some((file.clone(), len))
            }
            None => None,
        };
        let out = FileWriter::new(&cfg.dir, cfg.max_file_bytes, cfg.rotate_daily, newest);

        let shared = Arc::new(Shared::new(next_seq, last_hash, opts.capacity, opts.clock));
        let for_writer = shared.clone();
        let thread = std::thread::Builder::new()
            .name("airlock-audit-writer".into())
            .spawn(move || {
                run_writer(&for_writer, out);
                drop(lock);
            })
            .map_err(|e| AuditError::Write {
                detail: format!("cannot start the audit writer thread: {e}"),
            })?;

        Ok(AuditLog {
            inner: Some(Arc::new(Inner {
                shared,
                dir: cfg.dir,
                on_failure: cfg.on_failure,
                write_timeout: cfg.write_timeout,
                thread: Some(thread),
            })),
        })
    }

    /// A log that records nothing; `record` and `flush` return `Ok`.
    pub fn disabled() -> AuditLog {
        AuditLog { inner: None }
    }

    /// Records `event`: gives it its place in the chain and queues it for
    /// the writer, without waiting for the file (see the module's
    /// durability notes; [`AuditLog::flush`] waits until it is synced).
    ///
    /// The log sets `seq`, `prev` and `hash`, sets `time` when it is empty,
    /// and strips query values from `path`. An event that breaks the rules
    /// of the record is refused with [`AuditError::InvalidEvent`] whatever
    /// the failure mode. When the queue stays full for the write timeout the
    /// event is refused ([`AuditError::QueueFull`], no seq used); while the
    /// writer's last attempt failed, the event is queued (it keeps its place
    /// and is written when the writer recovers) and the failure reported
    /// ([`AuditError::Write`]). Either is logged at error level and, under
    /// [`FailureMode::FailCall`], returned; under
    /// [`FailureMode::ContinueAndAlert`] `record` returns `Ok`.
    pub fn record(&self, event: Event) -> Result<(), AuditError> {
        let Some(inner) = &self.inner else {
            return Ok(());
        };
        event.validate().map_err(AuditError::InvalidEvent)?;

        match inner.append(event) {
            Ok(()) => Ok(()),
            Err(e) => {
                tracing::error!(dir = %inner.dir.display(), error = %e, "audit event not written");
                match inner.on_failure {
                    FailureMode::FailCall => Err(e),
                    FailureMode::ContinueAndAlert => Ok(()),
                }
            }
        }
    }

    /// Waits, at most the write timeout, until every event recorded so far
    /// is written and synced. Unlike `record`, a failure is returned under
    /// either failure mode: whoever flushes needs to know.
    pub fn flush(&self) -> Result<(), AuditError> {
        let Some(inner) = &self.inner else {
            return Ok(());
        };
        inner.flush().inspect_err(|e| {
            tracing::error!(dir = %inner.dir.display(), error = %e, "audit flush failed");
        })
    }

    /// Test hook: while `on`, the writer leaves queued events alone.
    #[cfg(test)]
    pub(crate) fn set_stalled(&self, on: bool) {
        if let Some(inner) = &self.inner {
            inner.shared.lock().stalled = on;
            inner.shared.work.notify_all();
        }
    }
}

impl fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner {
            Some(inner) => f.debug_struct("AuditLog").field("dir", &inner.dir).finish(),
            None => f.write_str("AuditLog(disabled)"),
        }
    }
}

impl Inner {
    fn append(&self, mut event: Event) -> Result<(), AuditError> {
        let shared = &self.shared;
        let deadline = Instant::now() + self.write_timeout;
        let timeout_ms = self.write_timeout.as_millis();

        // Stamp and serialize before taking the chain lock; under it only
        // `seq`, `prev` and the hash are filled in.
        let now = (shared.clock)();
        let date = date_stamp(now);
        if event.time.is_empty() {
            event.time = rfc3339_millis(now);
        }
        event.path = event.path.as_deref().map(strip_query_values);
        let unchained = event.unchained_line();

        // Wait for room; the event gets no seq until it is queued, so giving
        // up here leaves no gap in the chain.
        let mut st = shared.lock();
        while st.queue.len() + st.in_flight >= st.capacity && !st.shutdown {
            let (guard, expired) = shared.wait_progress(st, deadline);
            st = guard;
            if expired {
                return Err(AuditError::QueueFull { timeout_ms });
            }
        }
        if st.shutdown {
            return Err(AuditError::Closed);
        }

        let seq = st.next_seq;
        let (mut line, hash) = Event::chain(&unchained, seq, &st.last_hash);
        line.push('\n');

        st.next_seq += 1;
        st.last_hash = hash;
        // The writer sleeps only with an empty queue; otherwise it is busy
        // and takes this line with the next batch.
        if st.queue.is_empty() {
            shared.work.notify_one();
        }
        st.queue.push_back(Pending { seq, line, date });

        // The writer's last attempt failed and it has not recovered since.
        if st.last_error.is_some() {
            return Err(st.write_error());
        }
        Ok(())
    }

    fn flush(&self) -> Result<(), AuditError> {
        let shared = &self.shared;
        let deadline = Instant::now() + self.write_timeout;
        let mut st = shared.lock();
        let target = st.next_seq;
        if st.synced >= target {
            return Ok(());
        }
        st.sync_wanted = st.sync_wanted.max(target);
        let failures_before = st.failures;
        shared.work.notify_one();

        loop {
            if st.synced >= target {
                return Ok(());
            }
            if st.failures > failures_before {
                return Err(st.write_error());
            }
            if st.stopped {
                return Err(AuditError::Closed);
            }
            let (guard, expired) = shared.wait_progress(st, deadline);
            st = guard;
            if expired {
                let timeout_ms = self.write_timeout.as_millis();
                return Err(AuditError::Timeout { timeout_ms });
            }
        }
    }
}

impl Drop for Inner {
    /// Asks the writer to write and sync what is queued, and waits for it at
    /// most the write timeout.
    fn drop(&mut self) {
        let deadline = Instant::now() + self.write_timeout;
        let mut st = self.shared.lock();
        st.shutdown = true;
        self.shared.work.notify_all();
        while !st.stopped {
            let (guard, expired) = self.shared.wait_progress(st, deadline);
            st = guard;
            if expired {
                break;
            }
        }
        let stopped = st.stopped;
        let unwritten = st.next_seq - st.written;
        drop(st);

        if stopped {
            if let Some(thread) = self.thread.take() {
                let _ = thread.join();
            }
        } else {
            tracing::error!(
                dir = %self.dir.display(),
                unwritten,
                "audit writer did not finish within the write timeout"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::event::tests::request;
    use crate::audit::testutil::*;
    use crate::audit::{Decision, GENESIS_HASH, verify};
    use std::sync::atomic::Ordering;
    use std::time::UNIX_EPOCH;

    #[test]
    fn recorded_events_form_a_chain_in_one_file() {
        let dir = tempfile::tempdir().unwrap();
        write_events(&config(dir.path()), 3);

        let files = audit_files(dir.path());
        assert_eq!(files.len(), 1);
        let events = all_events(dir.path());
        assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), [0, 1, 2]);
        assert_eq!(events[0].prev, GENESIS_HASH);
        assert_eq!(events[1].prev, events[0].hash);
        assert_eq!(events[2].prev, events[1].hash);
        assert!(events.iter().all(|e| e.hash == e.compute_hash()));
        assert!(
            crate::audit::time::is_time_prefix(&events[0].time),
            "{}",
            events[0].time
        );
        assert_eq!(verify(dir.path()).unwrap().events, 3);
    }

    #[test]
    fn rotation_by_size_links_the_files() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = AuditConfig {
            max_file_bytes: 2_000,
            ..config(dir.path())
        };
        write_events(&cfg, 40);

        let files = audit_files(dir.path());
        assert!(files.len() >= 4, "{} files", files.len());
        for file in &files {
            let len = std::fs::metadata(file).unwrap().len();
            assert!(len <= 2_000, "{} is {len} bytes", file.display());
        }
        let first = read_lines(&files[0]);
        let second = read_lines(&files[1]);
        let last_of_first: Event = serde_json::from_str(first.last().unwrap()).unwrap();
        let first_of_second: Event = serde_json::from_str(&second[0]).unwrap();
        assert_eq!(first_of_second.prev, last_of_first.hash);
        assert_eq!(first_of_second.seq, last_of_first.seq + 1);

        let report = verify(dir.path()).unwrap();
        assert_eq!((report.files, report.events), (files.len(), 40));
    }

    #[test]
    fn rotation_by_day_names_files_by_utc_day_and_never_goes_back() {
        let dir = tempfile::tempdir().unwrap();
        // 2025-03-01T23:59:00Z
        let (clock, now) = settable_clock(UNIX_EPOCH + Duration::from_secs(1_740_873_540));
        let cfg = AuditConfig {
            rotate_daily: true,
            ..config(dir.path())
        };
        let log = AuditLog::open_with(cfg, with_clock(clock)).unwrap();

        log.record(sample(0)).unwrap();
        log.record(sample(1)).unwrap();
        now.fetch_add(120_000, Ordering::SeqCst);
        log.record(sample(2)).unwrap();
        // The clock goes back a day: the next file must not sort earlier.
        now.fetch_sub(86_400_000, Ordering::SeqCst);
        log.record(sample(3)).unwrap();
        log.flush().unwrap();

        let names: Vec<String> = audit_files(dir.path())
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            ["audit-20250301-0001.jsonl", "audit-20250302-0001.jsonl"]
        );
        let events = all_events(dir.path());
        assert_eq!(events[2].time, "2025-03-02T00:01:00.000Z");
        assert_eq!(verify(dir.path()).unwrap().events, 4);
    }

    #[test]
    fn reopening_continues_the_chain() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path());
        write_events(&cfg, 5);
        write_events(&cfg, 5);

        assert_eq!(
            audit_files(dir.path()).len(),
            1,
            "appends to the newest file"
        );
        let seqs: Vec<u64> = all_events(dir.path()).iter().map(|e| e.seq).collect();
        assert_eq!(seqs, (0..10).collect::<Vec<_>>());
        let report = verify(dir.path()).unwrap();
        assert_eq!(report.events, 10);
        assert_eq!(report.last_hash, all_events(dir.path())[9].hash);
    }

    #[test]
    fn a_second_log_on_the_same_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let first = AuditLog::open(config(dir.path())).unwrap();
        let err = AuditLog::open(config(dir.path())).unwrap_err();
        assert!(matches!(err, AuditError::Locked { .. }), "{err}");

        drop(first);
        AuditLog::open(config(dir.path())).unwrap();
    }

    #[test]
    fn reopening_after_a_cut_off_write_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path());
        write_events(&cfg, 3);
        let file = &audit_files(dir.path())[0];
        let text = std::fs::read_to_string(file).unwrap();
        std::fs::write(file, &text[..text.len() - 20]).unwrap();

        let err = AuditLog::open(cfg).unwrap_err();
        assert!(matches!(err, AuditError::Resume { .. }), "{err}");
        assert!(err.to_string().contains("cut off"), "{err}");
    }

    #[test]
    fn a_thousand_events_from_sixteen_threads_make_one_chain() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open(AuditConfig {
            max_file_bytes: 64 * 1024,
            ..config(dir.path())
        })
        .unwrap();

        let threads: Vec<_> = (0..16u64)
            .map(|t| {
                let log = log.clone();
                std::thread::spawn(move || {
                    for i in (t..1000).step_by(16) {
                        log.record(sample(i)).unwrap();
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        log.flush().unwrap();

        let seqs: Vec<u64> = all_events(dir.path()).iter().map(|e| e.seq).collect();
        assert_eq!(seqs, (0..1000).collect::<Vec<_>>());
        let report = verify(dir.path()).unwrap();
        assert_eq!(report.events, 1000);
        assert!(report.files > 1, "rotated into {} files", report.files);
    }

    #[test]
    fn a_write_failure_fails_the_call_or_alerts_and_is_retried() {
        let dir = tempfile::tempdir().unwrap();
        let open = |name: &str, on_failure| {
            let path = dir.path().join(name);
            let mut cfg = config(&path);
            cfg.write_timeout = Duration::from_secs(2);
            cfg.on_failure = on_failure;
            (AuditLog::open(cfg).unwrap(), path)
        };
        let (strict, strict_dir) = open("strict", FailureMode::FailCall);
        let (lenient, lenient_dir) = open("lenient", FailureMode::ContinueAndAlert);

        // A regular file where the directory was: creating a file fails.
        for path in [&strict_dir, &lenient_dir] {
            std::fs::remove_dir_all(path).unwrap();
            std::fs::write(path, "").unwrap();
        }
        // Recording does not wait for the file; the failure shows in a
        // flush, and in every record while the writer has not recovered.
        strict.record(sample(0)).unwrap();
        lenient.record(sample(0)).unwrap();
        assert!(matches!(strict.flush(), Err(AuditError::Write { .. })));
        assert!(matches!(lenient.flush(), Err(AuditError::Write { .. })));
        let err = strict.record(sample(1)).unwrap_err();
        assert!(matches!(err, AuditError::Write { .. }), "{err}");
        assert!(lenient.record(sample(1)).is_ok());

        // Once the directory is back, the queued events are written in place.
        for path in [&strict_dir, &lenient_dir] {
            std::fs::remove_file(path).unwrap();
            std::fs::create_dir(path).unwrap();
        }
        strict.flush().unwrap();
        lenient.flush().unwrap();
        assert_eq!(verify(&strict_dir).unwrap().events, 2);
        assert_eq!(verify(&lenient_dir).unwrap().events, 2);
    }

    #[test]
    fn a_stuck_writer_never_blocks_a_call_past_the_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = config(dir.path());
        cfg.write_timeout = Duration::from_millis(150);
        let strict = AuditLog::open(cfg.clone()).unwrap();
        strict.set_stalled(true);

        let started = Instant::now();
        strict.record(sample(0)).unwrap();
        assert!(
            started.elapsed() < Duration::from_millis(100),
            "record waited for the writer"
        );
        assert!(matches!(strict.flush(), Err(AuditError::Timeout { .. })));
        assert!(started.elapsed() < Duration::from_secs(2));

        strict.set_stalled(false);
        strict.flush().unwrap();
        assert_eq!(
            verify(dir.path()).unwrap().events,
            1,
            "the late event keeps its place"
        );
    }

    #[test]
    fn a_full_queue_refuses_without_using_a_seq() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = config(dir.path());
        cfg.write_timeout = Duration::from_millis(100);
        let opts = Options {
            capacity: 2,
            ..Options::default()
        };
        let log = AuditLog::open_with(cfg, opts).unwrap();
        log.set_stalled(true);

        log.record(sample(0)).unwrap();
        log.record(sample(1)).unwrap();
        assert!(matches!(
            log.record(sample(2)),
            Err(AuditError::QueueFull { .. })
        ));

        log.set_stalled(false);
        log.record(sample(3)).unwrap();
        log.flush().unwrap();
        let seqs: Vec<u64> = all_events(dir.path()).iter().map(|e| e.seq).collect();
        assert_eq!(seqs, [0, 1, 2]);
        assert_eq!(verify(dir.path()).unwrap().events, 3);
    }

    #[test]
    fn continue_and_alert_returns_ok_when_the_writer_is_stuck() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = config(dir.path());
        cfg.write_timeout = Duration::from_millis(100);
        cfg.on_failure = FailureMode::ContinueAndAlert;
        let opts = Options {
            capacity: 1,
            ..Options::default()
        };
        let log = AuditLog::open_with(cfg, opts).unwrap();
        log.set_stalled(true);
        assert!(log.record(sample(0)).is_ok());
        assert!(
            log.record(sample(1)).is_ok(),
            "a full queue is not an error"
        );
        assert!(log.flush().is_err(), "flush reports failure in either mode");
    }

    #[test]
    fn invalid_events_are_refused_in_either_mode_and_not_written() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = config(dir.path());
        cfg.on_failure = FailureMode::ContinueAndAlert;
        let log = AuditLog::open(cfg).unwrap();
        let mut denial = request("alice", Decision::Deny);
        denial.reason = None;

        let err = log.record(denial).unwrap_err();
        assert!(matches!(err, AuditError::InvalidEvent(_)), "{err}");
        log.flush().unwrap();
        assert!(audit_files(dir.path()).is_empty());
    }

    #[test]
    fn the_log_can_be_shared_across_threads() {
        fn shareable<T: Send + Sync + Clone + 'static>() {}
        shareable::<AuditLog>();
    }

    #[test]
    fn a_disabled_log_records_nothing() {
        let log = AuditLog::disabled();
        log.record(sample(0)).unwrap();
        log.flush().unwrap();
        assert_eq!(format!("{log:?}"), "AuditLog(disabled)");
    }

    /// The canary: a request URL carrying a secret in its query reaches the
    /// log, and no audit file holds the secret afterwards.
    #[test]
    fn no_audit_file_holds_a_query_secret() {
        const CANARY: &str = "CANARY-7d1e0c55b2a94f3e";
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open(AuditConfig {
            max_file_bytes: 1_500,
            ..config(dir.path())
        })
        .unwrap();
        for i in 0..20 {
            let mut e = request("alice", Decision::Allow);
            e.path = Some(format!(
                "/v1/items/{i}?access_token={CANARY}&limit=5#{CANARY}"
            ));
            log.record(e).unwrap();
        }
        log.flush().unwrap();

        let files = audit_files(dir.path());
        assert!(files.len() > 1);
        for file in files {
            let bytes = std::fs::read(&file).unwrap();
            let text = String::from_utf8(bytes).unwrap();
            assert!(
                !text.contains(CANARY),
                "{} holds the canary",
                file.display()
            );
            assert!(text.contains("?access_token=&limit="), "names are kept");
        }
    }
}
