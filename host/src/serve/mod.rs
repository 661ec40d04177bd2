//! Serving agent runtimes: MCP over stdio and streamable HTTP, an HTTP API
//! beside it, consent prompts and caller authentication.
//!
//! A [`Server`] wraps a loaded [`Host`] with what every front end shares:
//! who may call ([`Callers`]), the count of calls in flight (so that shutdown
//! can let them finish or cancel them within a bound), and the metrics.
//!
//! - [`serve_stdio`] runs one MCP session on standard input and output for a
//!   user the operator names.
//! - [`router`] builds the HTTP application: MCP at [`MCP_PATH`], the HTTP API
//!   under `/v1`, and `/metrics` in the Prometheus text format. Every route
//!   it builds requires a caller: an API key (stored hashed, listing the
//!   users it may act for) or an OIDC access token (the user is its `sub`).
//!   Routes passed in as `unauthenticated` (the broker's consent routes) are
//!   the only ones reachable without one. [`serve_http`] serves it until a
//!   shutdown signal.
//!
//! When a call needs the user to link an account, the user is asked through
//! the client: an MCP client that declared URL-mode elicitation gets one
//! with the consent URL, any other gets a tool error carrying the URL.

mod api;
mod auth;
mod consent;
mod fetch;
mod http;
mod mcp;
mod metrics;
mod oidc;
mod shutdown;

pub use auth::{Acting, AuthError, Callers, Principal, USER_HEADER};
pub use http::{MCP_PATH, router, serve_http};
pub use mcp::{McpHandler, serve_stdio};
pub use metrics::{HostCounts, Metrics};
pub use oidc::TokenError;
pub use shutdown::{CallGuard, CallTracker};

use crate::audit::AuditLog;
use crate::manifest::{Config, ServeConfig};
use crate::runtime::{CallError, CallOutput, CallRequest, Host};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

/// A loaded host and what its front ends share.
pub struct Server {
    host: Arc<Host>,
    audit: AuditLog,
    settings: ServeConfig,
    callers: Callers,
    metrics: Metrics,
    calls: CallTracker,
}

/// Why the server cannot start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// HTTP serving needs at least one way for callers to authenticate.
    #[error(
        "no callers are configured: add [callers.keys.<name>] or [callers.oidc] to {0} \
         (every HTTP request must be authenticated)"
    )]
    NoCallers(String),
    /// A stdio session needs a user.
    #[error("no user for the stdio session: pass --user or set [serve] user in {0}")]
    NoUser(String),
    /// The user name is not acceptable.
    #[error(transparent)]
    InvalidUser(crate::vault::VaultError),
    /// Binding, accepting or the transport failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The MCP session could not start.
    #[error("mcp session: {0}")]
    Session(String),
}

/// Why a call through the server produced no tool output.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CallFailure {
    /// The host refused or failed the call.
    #[error(transparent)]
    Host(#[from] CallError),
    /// The client cancelled the call, or shutdown cut it off; the guest was
    /// stopped.
    #[error("call cancelled")]
    Cancelled,
    /// The server is shutting down and takes no new calls.
    #[error("server is shutting down")]
    ShuttingDown,
}

impl Server {
    /// A server over `host`, with the `[serve]` and `[callers]` settings of
    /// `config`. `audit` must be the log the host writes to.
    pub fn new(host: Arc<Host>, audit: AuditLog, config: &Config) -> Server {
        Server {
            host,
            audit,
            settings: config.serve.clone(),
            callers: Callers::from_config(&config.callers),
            metrics: Metrics::default(),
            calls: CallTracker::default(),
        }
    }

    /// The loaded tools.
    pub fn host(&self) -> &Arc<Host> {
        &self.host
    }

    /// The `[serve]` settings.
    pub fn settings(&self) -> &ServeConfig {
        &self.settings
    }

    /// Who may call over HTTP.
    pub fn callers(&self) -> &Callers {
        &self.callers
    }

    /// Counters and histograms of this server.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The calls in flight.
    pub fn calls(&self) -> &CallTracker {
        &self.calls
    }

    /// The audit log calls are recorded in.
    pub fn audit(&self) -> &AuditLog {
        &self.audit
    }

    /// Registers a call that is about to start; refused once shutdown has
    /// begun. Hold the guard for as long as the call (and any consent prompt
    /// within it) lasts.
    pub fn begin_call(&self) -> Result<CallGuard, CallFailure> {
        self.calls.enter().ok_or(CallFailure::ShuttingDown)
    }

    /// Runs one call, stopping the guest when `cancel` fires or shutdown
    /// runs out of grace, and counts it in the metrics.
    ///
    /// The call runs in a task of its own, so a caller that goes away (an
    /// HTTP client hanging up drops this future) cancels it rather than
    /// cutting it off: every call that started ends with a `call_end` in
    /// the audit, `cancelled` when it did not finish.
    pub async fn call(
        &self,
        request: CallRequest,
        guard: &CallGuard,
        cancel: &CancellationToken,
    ) -> Result<CallOutput, CallFailure> {
        let tool = request.tool.clone();
        let started = Instant::now();
        let stop = cancel.child_token();
        let _stop_on_drop = stop.clone().drop_guard();
        let host = self.host.clone();
        let token = stop.clone();
        let mut task = tokio::spawn(
            async move { host.call_cancellable(request, &token).await }.in_current_span(),
        );

        let joined = tokio::select! {
            joined = &mut task => joined,
            () = guard.aborted() => {
                stop.cancel();
                task.await
            }
        };
        let result = match joined {
            Ok(Err(CallError::Cancelled { .. })) => Err(CallFailure::Cancelled),
            Ok(result) => result.map_err(CallFailure::Host),
            Err(err) => Err(CallFailure::Host(CallError::Trap {
                tool: tool.clone(),
                reason: format!("call task failed: {err}"),
            })),
        };
        self.metrics.record_call(&tool, &result, started.elapsed());
        result
    }

    /// Stops taking calls, lets those in flight finish for up to the
    /// configured grace, cancels the rest, and flushes the audit log.
    pub async fn shutdown(&self) {
        let grace = Duration::from_millis(self.settings.shutdown_grace_ms);
        let outcome = self.calls.drain(grace).await;
        if outcome.cancelled > 0 {
            tracing::warn!(
                cancelled = outcome.cancelled,
                "calls still running after the shutdown grace were cancelled"
            );
        }
        if let Err(err) = self.audit.flush() {
            tracing::error!(%err, "flushing the audit log at shutdown failed");
        }
    }
}
