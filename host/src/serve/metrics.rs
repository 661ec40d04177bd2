//! Counters and latency histograms, written in the Prometheus text format.
//!
//! Label values come only from names the host knows (loaded tool names,
//! configured connection names, fixed outcome and reason codes), never from
//! what a caller sent, so a caller cannot grow the label set.
//!
//! [`Metrics`] counts what the server sees: calls, their outcomes and
//! outbound request counts, caller refusals, consent prompts. Egress policy
//! denials and token refreshes happen below it, in the egress gate and the
//! broker, which keep their own counts; [`HostCounts`] carries those into
//! each scrape.

use super::CallFailure;
use crate::broker::RefreshCount;
use crate::runtime::{CallError, CallOutput, Host};
use crate::tools::ToolOutput;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the latency histogram buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Label used for calls naming no loaded tool.
const UNKNOWN_TOOL: &str = "_unknown";

/// The server's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

/// Counts kept by the host itself, read at each scrape.
#[derive(Debug, Clone, Default)]
pub struct HostCounts {
    /// Requests the egress gate denied, by reason code.
    pub denials: Vec<(&'static str, u64)>,
    /// Token refreshes, by connection and outcome.
    pub refreshes: Vec<RefreshCount>,
}

impl HostCounts {
    /// The counts of `host`'s egress gate and broker now.
    pub fn of(host: &Host) -> HostCounts {
        let egress = host.egress();
        HostCounts {
            denials: egress.denials(),
            refreshes: egress.broker.refresh_counts(),
        }
    }
}

#[derive(Debug, Default)]
struct Inner {
    calls: BTreeMap<(String, &'static str), u64>,
    requests: BTreeMap<String, u64>,
    latency: BTreeMap<String, Histogram>,
    refusals: BTreeMap<&'static str, u64>,
    consent: BTreeMap<&'static str, u64>,
}

#[derive(Debug, Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Metrics {
    /// Counts one finished call.
    pub fn record_call(
        &self,
        tool: &str,
        result: &Result<CallOutput, CallFailure>,
        elapsed: Duration,
    ) {
        let outcome = outcome(result);
        let tool = match result {
            Err(CallFailure::Host(CallError::UnknownTool(_))) => UNKNOWN_TOOL,
            _ => tool,
        };
        let mut inner = self.lock();
        *inner.calls.entry((tool.to_string(), outcome)).or_default() += 1;
        if let Ok(out) = result {
            *inner.requests.entry(tool.to_string()).or_default() += u64::from(out.requests);
        }
        if tool != UNKNOWN_TOOL {
            inner
                .latency
                .entry(tool.to_string())
                .or_default()
                .observe(elapsed.as_secs_f64());
        }
    }

    /// Counts a request refused before any call ran, by reason code.
    pub fn record_refusal(&self, reason: &'static str) {
        *self.lock().refusals.entry(reason).or_default() += 1;
    }

    /// Counts a consent prompt, by how it reached the user.
    pub fn record_consent(&self, via: &'static str) {
        *self.lock().consent.entry(via).or_default() += 1;
    }

    /// Calls of `tool` that ended with `outcome` so far.
    pub fn calls(&self, tool: &str, outcome: &str) -> u64 {
        let inner = self.lock();
        inner
            .calls
            .iter()
            .filter(|((t, o), _)| t == tool && *o == outcome)
            .map(|(_, n)| *n)
            .sum()
    }

    /// Everything, in the Prometheus text exposition format (0.0.4), with
    /// the host's own counts; `in_flight` is the current number of running
    /// calls.
    pub fn render(&self, in_flight: usize, host: &HostCounts) -> String {
        let inner = self.lock();
        let mut out = String::new();

        header(
            &mut out,
            "airlock_calls_total",
            "counter",
            "Tool calls by outcome.",
        );
        for ((tool, outcome), n) in &inner.calls {
            let _ = writeln!(
                out,
                "airlock_calls_total{{tool=\"{}\",outcome=\"{outcome}\"}} {n}",
                escape(tool)
            );
        }

        header(
            &mut out,
            "airlock_calls_in_flight",
            "gauge",
            "Tool calls running now.",
        );
        let _ = writeln!(out, "airlock_calls_in_flight {in_flight}");

        header(
            &mut out,
            "airlock_outbound_requests_total",
            "counter",
            "Outbound HTTP requests attempted by finished calls.",
        );
        for (tool, n) in &inner.requests {
            let _ = writeln!(
                out,
                "airlock_outbound_requests_total{{tool=\"{}\"}} {n}",
                escape(tool)
            );
        }

        header(
            &mut out,
            "airlock_call_duration_seconds",
            "histogram",
            "Wall-clock time of tool calls.",
        );
        for (tool, h) in &inner.latency {
            let tool = escape(tool);
            let mut cumulative = 0;
            for (bound, n) in BUCKETS.iter().zip(h.counts) {
                cumulative += n;
                let _ = writeln!(
                    out,
                    "airlock_call_duration_seconds_bucket{{tool=\"{tool}\",le=\"{bound}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "airlock_call_duration_seconds_bucket{{tool=\"{tool}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "airlock_call_duration_seconds_sum{{tool=\"{tool}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "airlock_call_duration_seconds_count{{tool=\"{tool}\"}} {}",
                h.count
            );
        }

        header(
            &mut out,
            "airlock_caller_refusals_total",
            "counter",
            "Requests refused before any call ran (authentication, entitlement).",
        );
        for (reason, n) in &inner.refusals {
            let _ = writeln!(
                out,
                "airlock_caller_refusals_total{{reason=\"{reason}\"}} {n}"
            );
        }

        header(
            &mut out,
            "airlock_consent_prompts_total",
            "counter",
            "Users asked to link an account, by how the prompt was delivered.",
        );
        for (via, n) in &inner.consent {
            let _ = writeln!(out, "airlock_consent_prompts_total{{via=\"{via}\"}} {n}");
        }

        header(
            &mut out,
            "airlock_egress_denials_total",
            "counter",
            "Outbound requests the egress policy denied, by reason code.",
        );
        for (reason, n) in &host.denials {
            let _ = writeln!(
                out,
                "airlock_egress_denials_total{{reason=\"{}\"}} {n}",
                escape(reason)
            );
        }

        header(
            &mut out,
            "airlock_token_refreshes_total",
            "counter",
            "Token refreshes sent to OAuth providers, by connection and outcome.",
        );
        for r in &host.refreshes {
            let _ = writeln!(
                out,
                "airlock_token_refreshes_total{{connection=\"{}\",outcome=\"{}\"}} {}",
                escape(&r.connection),
                escape(r.outcome),
                r.count
            );
        }
        out
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves counters that are still
        // usable; keep counting rather than fail every later call.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        if let Some(i) = BUCKETS.iter().position(|b| seconds <= *b) {
            self.counts[i] += 1;
        }
        self.count += 1;
        self.sum += seconds;
    }
}

/// The outcome code of a finished call.
fn outcome(result: &Result<CallOutput, CallFailure>) -> &'static str {
    match result {
        Ok(out) => match out.output {
            ToolOutput::Ok(_) => "ok",
            ToolOutput::ToolError(_) => "tool_error",
        },
        Err(CallFailure::Host(err)) => match err {
            CallError::UnknownTool(_) => "unknown_tool",
            CallError::InvalidUser(_) | CallError::InvalidArguments { .. } => "invalid_arguments",
            CallError::AuthorizationRequired(_) => "authorization_required",
            CallError::Limit { .. } => "limit",
            CallError::Cancelled { .. } => "cancelled",
            _ => "trap",
        },
        Err(CallFailure::Cancelled) => "cancelled",
        Err(CallFailure::ShuttingDown) => "shutting_down",
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Escapes a label value for the text format.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok() -> Result<CallOutput, CallFailure> {
        Ok(CallOutput {
            output: ToolOutput::Ok(serde_json::json!({})),
            call_id: "c".into(),
            requests: 2,
        })
    }

    #[test]
    fn calls_are_counted_by_tool_and_outcome_with_latency() {
        let m = Metrics::default();
        m.record_call("fetch.fetch", &ok(), Duration::from_millis(30));
        m.record_call("fetch.fetch", &ok(), Duration::from_millis(700));
        m.record_call("fetch.fetch", &Err(CallFailure::Cancelled), Duration::ZERO);
        let text = m.render(1, &HostCounts::default());
        assert!(text.contains("airlock_calls_total{tool=\"fetch.fetch\",outcome=\"ok\"} 2"));
        assert!(text.contains("outcome=\"cancelled\"} 1"), "{text}");
        assert!(text.contains("airlock_outbound_requests_total{tool=\"fetch.fetch\"} 4"));
        assert!(text.contains("le=\"0.005\"} 1"), "{text}");
        assert!(text.contains("le=\"0.05\"} 2"), "{text}");
        assert!(text.contains("le=\"0.5\"} 2"), "{text}");
        assert!(text.contains("le=\"1\"} 3"), "{text}");
        assert!(text.contains("le=\"+Inf\"} 3"), "{text}");
        assert!(text.contains("airlock_calls_in_flight 1"));
    }

    #[test]
    fn unknown_tool_names_do_not_become_labels() {
        let m = Metrics::default();
        let err = Err(CallFailure::Host(CallError::UnknownTool("x\"} 9".into())));
        m.record_call("x\"} 9", &err, Duration::ZERO);
        let text = m.render(0, &HostCounts::default());
        assert!(!text.contains("x\\\"} 9"), "{text}");
        assert!(text.contains("tool=\"_unknown\",outcome=\"unknown_tool\"} 1"));
    }

    #[test]
    fn refusals_and_consent_prompts_are_counted() {
        let m = Metrics::default();
        m.record_refusal("not_entitled");
        m.record_refusal("not_entitled");
        m.record_consent("elicitation");
        let text = m.render(0, &HostCounts::default());
        assert!(text.contains("airlock_caller_refusals_total{reason=\"not_entitled\"} 2"));
        assert!(text.contains("airlock_consent_prompts_total{via=\"elicitation\"} 1"));
    }

    #[test]
    fn host_denials_and_refreshes_are_rendered_with_their_labels() {
        let m = Metrics::default();
        let host = HostCounts {
            denials: vec![("no_matching_grant", 3), ("private_address", 1)],
            refreshes: vec![
                RefreshCount {
                    connection: "demo".into(),
                    outcome: "ok",
                    count: 2,
                },
                RefreshCount {
                    connection: "demo".into(),
                    outcome: "rejected",
                    count: 1,
                },
            ],
        };
        let text = m.render(0, &host);
        assert!(text.contains("# TYPE airlock_egress_denials_total counter"));
        assert!(text.contains("airlock_egress_denials_total{reason=\"no_matching_grant\"} 3"));
        assert!(text.contains("airlock_egress_denials_total{reason=\"private_address\"} 1"));
        assert!(
            text.contains("airlock_token_refreshes_total{connection=\"demo\",outcome=\"ok\"} 2"),
            "{text}"
        );
        assert!(
            text.contains(
                "airlock_token_refreshes_total{connection=\"demo\",outcome=\"rejected\"} 1"
            ),
            "{text}"
        );
        let empty = m.render(0, &HostCounts::default());
        assert!(!empty.contains("airlock_egress_denials_total{"), "{empty}");
    }
}
