//! The queue between recording threads and the writer thread, and the
//! writer thread itself.
//!
//! Recorders and the writer share one mutex-guarded [`State`]. Recorders
//! push lines (already given their place in the chain) and wait on
//! `progress`; the writer waits on `work`, takes everything queued as one
//! batch, writes it with a [`FileWriter`] outside the lock, then publishes
//! how far it got. A batch that fails goes back to the head of the queue and
//! is retried with backoff, so no seq is ever skipped in a file.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::audit::AuditError;
use crate::audit::sink::Clock;
use crate::audit::writer::FileWriter;

/// How long the writer lets events gather before writing them, unless a
/// flush or shutdown is waiting.
pub(crate) const LINGER: Duration = Duration::from_millis(2);

/// What the recording threads and the writer thread share.
pub(crate) struct Shared {
    pub(crate) state: Mutex<State>,
    /// Wakes the writer: new events, a flush, shutdown.
    pub(crate) work: Condvar,
    /// Wakes recorders and flushers: progress, failure, room in the queue.
    pub(crate) progress: Condvar,
    pub(crate) clock: Clock,
}

/// Where the chain and the queue stand.
pub(crate) struct State {
    /// Seq the next recorded event gets.
    pub(crate) next_seq: u64,
    /// Hash of the last recorded event.
    pub(crate) last_hash: String,
    /// Lines given a seq but not yet handed to the writer.
    pub(crate) queue: VecDeque<Pending>,
    /// Lines the writer is writing now.
    pub(crate) in_flight: usize,
    pub(crate) capacity: usize,
    /// Every seq below this is in a file.
    pub(crate) written: u64,
    /// Every seq below this is synced.
    pub(crate) synced: u64,
    /// A flush wants every seq below this synced.
    pub(crate) sync_wanted: u64,
    /// Failed write or sync attempts so far.
    pub(crate) failures: u64,
    pub(crate) last_error: Option<String>,
    pub(crate) shutdown: bool,
    pub(crate) stopped: bool,
    /// Test hook: the writer ignores work while set.
    pub(crate) stalled: bool,
}

impl State {
    /// The error of the last failed write, for whoever waited on it.
    pub(crate) fn write_error(&self) -> AuditError {
        let detail = self.last_error.as_deref().unwrap_or("unknown error");
        AuditError::Write {
            detail: detail.to_owned(),
        }
    }
}

/// A line waiting for the writer, with its seq.
pub(crate) struct Pending {
    pub(crate) seq: u64,
    pub(crate) line: String,
    /// The UTC day (`YYYYMMDD`) the event was recorded on, which decides
    /// its file when files rotate daily.
    pub(crate) date: u32,
}

impl Shared {
    /// The shared state of a chain whose next event gets `next_seq` and
    /// links to `last_hash`.
    pub(crate) fn new(next_seq: u64, last_hash: String, capacity: usize, clock: Clock) -> Shared {
        Shared {
            state: Mutex::new(State {
                next_seq,
                last_hash,
                queue: VecDeque::new(),
                in_flight: 0,
                capacity: capacity.max(1),
                written: next_seq,
                synced: next_seq,
                sync_wanted: next_seq,
                failures: 0,
                last_error: None,
                shutdown: false,
                stopped: false,
                stalled: false,
            }),
            work: Condvar::new(),
            progress: Condvar::new(),
            clock,
        }
    }

    /// Locks the state; a panic elsewhere does not make it unusable.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits on `progress` until notified or `deadline`. The flag is true,
    /// without waiting, once the deadline has passed.
    pub(crate) fn wait_progress<'a>(
        &self,
        st: MutexGuard<'a, State>,
        deadline: Instant,
    ) -> (MutexGuard<'a, State>, bool) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return (st, true);
        }
        let (st, _) = self
            .progress
            .wait_timeout(st, left)
            .unwrap_or_else(PoisonError::into_inner);
        (st, false)
    }
}

/// The writer thread: takes queued lines in batches, writes them, syncs on
/// request, retries failures with backoff, and stops on shutdown.
pub(crate) fn run_writer(shared: &Shared, mut out: FileWriter) {
    let mut retry_at: Option<Instant> = None;
    let mut failures_in_row: u32 = 0;
    let mut st = shared.lock();
    loop {
        // Sleep until there is work (or the retry delay has passed).
        loop {
            if st.shutdown {
                break;
            }
            let idle = st.queue.is_empty() && st.sync_wanted <= st.synced;
            let wait_for = retry_at.and_then(|at| at.checked_duration_since(Instant::now()));
            st = match (idle || st.stalled, wait_for) {
                (true, _) => shared.work.wait(st).unwrap_or_else(PoisonError::into_inner),
                (false, Some(left)) if !left.is_zero() => {
                    shared
                        .work
                        .wait_timeout(st, left)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
                (false, _) => break,
            };
        }

        // Let a busy host's events gather for a moment, so that one wake-up
        // and one write serve many of them. Recorders do not wake the writer
        // while the queue holds lines; a flush or shutdown does.
        if !st.shutdown && st.sync_wanted <= st.synced && retry_at.is_none() {
            st = shared
                .work
                .wait_timeout(st, LINGER)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }

        let shutting_down = st.shutdown;
        let batch: Vec<Pending> = st.queue.drain(..).collect();
        st.in_flight = batch.len();
        let sync = shutting_down || st.sync_wanted > st.synced;
        drop(st);

        let lines: Vec<(&str, u32)> = batch.iter().map(|p| (p.line.as_str(), p.date)).collect();
        let (written, mut result) = out.write(&lines);
        if result.is_ok() && sync {
            result = out.sync();
        }

        st = shared.lock();
        st.in_flight = 0;
        if written > 0 {
            st.written = batch[written - 1].seq + 1;
        }
        for pending in batch.into_iter().skip(written).rev() {
            st.queue.push_front(pending);
        }
        match &result {
            Ok(()) => {
                if sync {
                    st.synced = st.written;
                }
                st.last_error = None;
                failures_in_row = 0;
                retry_at = None;
            }
            Err(e) => {
                st.failures += 1;
                st.last_error = Some(e.to_string());
                failures_in_row += 1;
                let backoff = Duration::from_millis((25 << failures_in_row.min(6)).min(1_000));
                retry_at = Some(Instant::now() + backoff);
                tracing::error!(
                    error = %e,
                    unwritten = st.queue.len(),
                    "audit write failed; retrying"
                );
            }
        }
        shared.progress.notify_all();

        if shutting_down && (st.queue.is_empty() || result.is_err()) {
            if !st.queue.is_empty() {
                tracing::error!(
                    lost = st.queue.len(),
                    "audit log closed with events unwritten"
                );
            }
            st.stopped = true;
            shared.progress.notify_all();
            return;
        }
    }
}
