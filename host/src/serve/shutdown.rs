//! Calls in flight, and shutting down without cutting them off early.
//!
//! Every call registers with the [`CallTracker`] and holds a [`CallGuard`]
//! while it runs. Shutdown first refuses new calls, then waits for the
//! running ones up to a grace period, then aborts whatever is left: each
//! call watches [`CallGuard::aborted`] and drops its guest when it fires.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Longest wait for aborted calls to unwind after the grace period.
const ABORT_WAIT: Duration = Duration::from_secs(2);

/// Counts the calls in flight and ends them at shutdown.
#[derive(Debug)]
pub struct CallTracker {
    count: watch::Sender<usize>,
    draining: AtomicBool,
    abort: CancellationToken,
}

/// One registered call; dropping it ends the registration.
#[derive(Debug)]
pub struct CallGuard {
    count: watch::Sender<usize>,
    abort: CancellationToken,
}

/// What a drain did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DrainOutcome {
    /// Calls that were still running when the grace period ended.
    pub cancelled: usize,
}

impl Default for CallTracker {
    fn default() -> CallTracker {
        CallTracker {
            count: watch::Sender::new(0),
            draining: AtomicBool::new(false),
            abort: CancellationToken::new(),
        }
    }
}

impl CallTracker {
    /// Registers a call, or `None` once shutdown has begun.
    pub fn enter(&self) -> Option<CallGuard> {
        if self.draining.load(Ordering::SeqCst) {
            return None;
        }
        self.count.send_modify(|n| *n += 1);
        // A drain that began between the check and the increment must not
        // miss this call, and must not wait for one it already refused.
        if self.draining.load(Ordering::SeqCst) {
            self.count.send_modify(|n| *n -= 1);
            return None;
        }
        Some(CallGuard {
            count: self.count.clone(),
            abort: self.abort.clone(),
        })
    }

    /// Calls running now.
    pub fn in_flight(&self) -> usize {
        *self.count.borrow()
    }

    /// Whether shutdown has begun.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Refuses new calls, waits up to `grace` for the running ones, then
    /// aborts the rest and waits briefly for them to unwind.
    pub async fn drain(&self, grace: Duration) -> DrainOutcome {
        self.draining.store(true, Ordering::SeqCst);
        let mut count = self.count.subscribe();
        let idle = tokio::time::timeout(grace, count.wait_for(|n| *n == 0))
            .await
            .is_ok();
        if idle {
            return DrainOutcome { cancelled: 0 };
        }

        let cancelled = *count.borrow();
        self.abort.cancel();
        let unwound = tokio::time::timeout(ABORT_WAIT, count.wait_for(|n| *n == 0))
            .await
            .is_ok();
        if !unwound {
            tracing::warn!("aborted calls did not unwind in time");
        }
        DrainOutcome { cancelled }
    }
}

impl CallGuard {
    /// Resolves when shutdown aborts the calls still running.
    pub async fn aborted(&self) {
        self.abort.cancelled().await
    }
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        self.count.send_modify(|n| *n -= 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn drain_waits_for_a_call_that_finishes_within_the_grace() {
        let tracker = std::sync::Arc::new(CallTracker::default());
        let guard = tracker.enter().unwrap();
        let finisher = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            drop(guard);
        });
        let outcome = tracker.drain(Duration::from_secs(5)).await;
        assert_eq!(outcome.cancelled, 0);
        assert_eq!(tracker.in_flight(), 0);
        finisher.await.unwrap();
    }

    #[tokio::test]
    async fn drain_aborts_a_call_that_outlives_the_grace() {
        let tracker = std::sync::Arc::new(CallTracker::default());
        let guard = tracker.enter().unwrap();
        let call = tokio::spawn(async move {
            tokio::select! {
                () = guard.aborted() => "aborted",
                () = tokio::time::sleep(Duration::from_secs(60)) => "finished",
            }
        });
        let outcome = tracker.drain(Duration::from_millis(50)).await;
        assert_eq!(outcome.cancelled, 1);
        assert_eq!(call.await.unwrap(), "aborted");
        assert_eq!(tracker.in_flight(), 0);
    }

    #[tokio::test]
    async fn no_call_starts_once_draining() {
        let tracker = CallTracker::default();
        assert!(tracker.enter().is_some());
        tracker.drain(Duration::from_millis(10)).await;
        assert!(tracker.enter().is_none());
        assert!(tracker.is_draining());
    }
}
