//! The audit trail: who caused which outbound request, through which tool,
//! and what the host decided.
//!
//! One [`Event`] is recorded when a tool call starts, one when it ends, and
//! one for every outbound request decision. Each event names the user, the
//! caller, the tool and the sha256 digest of the component build, the target
//! (method, scheme, host, port, path without query values) and the decision
//! with its reason code. An event never carries a token, a body, a header
//! value or a query value; the type has no field that could hold one, and
//! [`AuditLog::record`] strips query values from the path again before
//! writing (see [`strip_query_values`]).
//!
//! # Files and the hash chain
//!
//! [`AuditLog`] writes JSON Lines files named `audit-YYYYMMDD-NNNN.jsonl` in
//! one directory, so that lexical order is chain order. Files rotate by size
//! and, optionally, by UTC day. Events form one chain across all files:
//!
//! - `seq` counts from 0 without gaps;
//! - `prev` is the `hash` of the event before (64 zeros for seq 0), also
//!   across a file boundary, so rotation links the files;
//! - `hash` is the lowercase hex sha256 of the event's *canonical line*: the
//!   `serde_json` serialization of the [`Event`] with `hash` set to the empty
//!   string. `serde_json` writes struct fields in declaration order, with no
//!   whitespace and a fixed escaping, and every `Option` is written (as
//!   `null` when absent), so the canonical line is deterministic. The stored
//!   line is the same serialization with `hash` filled in, and [`verify()`]
//!   requires it byte for byte.
//!
//! Only one log may write a directory at a time: [`AuditLog::open`] holds
//! the lock file `audit.lock` there until the log is dropped.
//!
//! [`verify()`] walks every file and names the file, line and seq of the first
//! event that was edited, deleted, inserted, reordered or cut off.
//!
//! # What the chain does not prove
//!
//! The chain has no key. Someone who can write the files can append
//! well-formed events after the last one, drop events from the end, or
//! rewrite the whole chain from some point on. Keep [`VerifyReport::last_hash`]
//! somewhere the host cannot write to detect those.
//!
//! # I/O
//!
//! `DESIGN.md` says `audit` does no I/O; the file sink ([`AuditLog`]),
//! [`verify()`] and [`query()`] here do, because the module was assigned the sink
//! as well as the record. The record, hashing and chain rules ([`Event`]) are
//! pure and could move out on their own.

mod event;
mod files;
mod query;
mod queue;
mod sink;
mod time;
mod trace;
mod verify;
mod writer;

#[cfg(test)]
mod testutil;

use std::path::PathBuf;

pub use event::{Decision, Event, EventKind, GENESIS_HASH, strip_query_values};
pub use query::{Filter, query, render_table};
pub use sink::{AuditConfig, AuditLog, FailureMode};
pub use trace::{span_for_call, span_for_request};
pub use verify::{Problem, VerifyError, VerifyReport, verify};

/// Why the audit log could not open, record, flush or be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// The audit directory could not be created or listed.
    #[error("cannot use audit directory {path:?}: {source}")]
    Dir {
        /// The directory.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// Another audit log, in this process or another, holds the
    /// directory's lock file; two writers would fork the chain.
    #[error("audit directory is in use by another audit log (lock {path:?} is held)")]
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// An audit file could not be read.
    #[error("cannot read audit file {path:?}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The chain cannot be continued from the newest file: its last line is
    /// cut off or is not a sound event. Run `airlock audit verify`.
    #[error("cannot continue the audit chain from {path:?}: {detail}")]
    Resume {
        /// The newest audit file.
        path: PathBuf,
        /// What is wrong with its last line.
        detail: String,
    },
    /// The event breaks a rule of the record (for example, a denial without a
    /// reason code). This is a host bug and is returned whatever the
    /// [`FailureMode`].
    #[error("invalid audit event: {0}")]
    InvalidEvent(String),
    /// The writer did not take the event within the write timeout because
    /// its queue stayed full. The event was not recorded.
    #[error("audit queue stayed full for {timeout_ms} ms; event seq not assigned")]
    QueueFull {
        /// The configured write timeout.
        timeout_ms: u128,
    },
    /// The event was queued but not written within the write timeout. It
    /// keeps its place in the chain and is written when the writer recovers.
    #[error("audit write did not complete within {timeout_ms} ms")]
    Timeout {
        /// The configured write timeout.
        timeout_ms: u128,
    },
    /// Writing or syncing an audit file failed. The writer keeps the events
    /// and retries them in order.
    #[error("audit write failed: {detail}")]
    Write {
        /// The operating system's error, as text.
        detail: String,
    },
    /// The log has shut down.
    #[error("audit log is closed")]
    Closed,
    /// A query filter value is malformed.
    #[error("invalid audit filter {field}: {value:?} (expected {expected})")]
    InvalidFilter {
        /// The filter field.
        field: &'static str,
        /// The value given.
        value: String,
        /// What was expected.
        expected: &'static str,
    },
    /// A line of an audit file is not an event (query does not verify; run
    /// `airlock audit verify` to find out why).
    #[error("{path:?} line {line}: not an audit event: {detail}")]
    BadLine {
        /// The file.
        path: PathBuf,
        /// The 1-based line number.
        line: usize,
        /// What the parser said.
        detail: String,
    },
}
