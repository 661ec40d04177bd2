//! `tracing` spans that mirror audit events, for OpenTelemetry export.
//!
//! The spans carry the same non-secret fields as the events. Fields known
//! only later (decision, status, bytes) are declared empty so that the
//! caller can fill them with `span.record(..)`; a field that was not declared
//! here cannot be recorded, which keeps anything else out of the span.

use tracing::Span;
use tracing::field::Empty;

use crate::audit::event::strip_query_values;

/// The span of one tool call, named `airlock.call`.
///
/// Declared empty, to record later: `decision`, `reason`, `duration_ms`.
pub fn span_for_call(tool: &str, user: &str, caller: &str, call_id: &str) -> Span {
    tracing::info_span!(
        "airlock.call",
        tool,
        user,
        caller,
        call_id,
        decision = Empty,
        reason = Empty,
        duration_ms = Empty,
    )
}

/// The span of one outbound request, named `airlock.egress.request`. Query
/// values are removed from `path` first.
///
/// Declared empty, to record later: `connection`, `decision`, `reason`,
/// `status`, `bytes_out`, `bytes_in`, `redactions`.
pub fn span_for_request(method: &str, host: &str, path: &str) -> Span {
    let path = strip_query_values(path);
    tracing::info_span!(
        "airlock.egress.request",
        method,
        host,
        path = path.as_str(),
        connection = Empty,
        decision = Empty,
        reason = Empty,
        status = Empty,
        bytes_out = Empty,
        bytes_in = Empty,
        redactions = Empty,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt::Debug;
    use std::sync::{Arc, Mutex};
    use tracing::field::{Field, Visit};
    use tracing::span::{Attributes, Id, Record};
    use tracing::{Event, Metadata, Subscriber};

    /// Every span name and every recorded field, as text.
    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<(String, String, String)>>>);

    struct Fields<'a>(&'a Capture, &'static str);

    impl Visit for Fields<'_> {
        fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
            let entry = (
                self.1.to_owned(),
                field.name().to_owned(),
                format!("{value:?}"),
            );
            self.0.0.lock().unwrap().push(entry);
        }
        fn record_str(&mut self, field: &Field, value: &str) {
            let entry = (self.1.to_owned(), field.name().to_owned(), value.to_owned());
            self.0.0.lock().unwrap().push(entry);
        }
    }

    impl Subscriber for Capture {
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, span: &Attributes<'_>) -> Id {
            span.record(&mut Fields(self, span.metadata().name()));
            let mut spans = self.0.lock().unwrap();
            spans.push((
                span.metadata().name().to_owned(),
                String::new(),
                String::new(),
            ));
            Id::from_u64(spans.len() as u64)
        }
        fn record(&self, _: &Id, values: &Record<'_>) {
            values.record(&mut Fields(self, "record"));
        }
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, _: &Event<'_>) {}
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }

    #[test]
    fn spans_carry_the_audit_fields_without_query_values() {
        let capture = Capture::default();
        tracing::subscriber::with_default(capture.clone(), || {
            let call = span_for_call("weather", "alice", "mcp-stdio", "call-7");
            let request =
                span_for_request("GET", "api.example.com", "/v1?api_key=CANARY-1f2e3d&q=x");
            request.record("status", 200u16);
            request.record("decision", "allow");
            drop((call, request));
        });

        let seen = capture.0.lock().unwrap().clone();
        let names: Vec<&str> = seen
            .iter()
            .filter(|e| e.1.is_empty())
            .map(|e| e.0.as_str())
            .collect();
        assert_eq!(names, ["airlock.call", "airlock.egress.request"]);

        let field = |span: &str, name: &str| {
            seen.iter()
                .find(|e| e.0 == span && e.1 == name)
                .map(|e| e.2.clone())
        };
        assert_eq!(field("airlock.call", "user").as_deref(), Some("alice"));
        assert_eq!(field("airlock.call", "call_id").as_deref(), Some("call-7"));
        assert_eq!(
            field("airlock.egress.request", "host").as_deref(),
            Some("api.example.com")
        );
        assert_eq!(
            field("airlock.egress.request", "path").as_deref(),
            Some("/v1?api_key=&q=")
        );
        assert_eq!(field("record", "status").as_deref(), Some("200"));
        assert!(seen.iter().all(|e| !e.2.contains("CANARY")), "{seen:?}");
    }
}
