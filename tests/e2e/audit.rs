//! The audit trail end to end: every call and request decision is recorded
//! per user, the chain verifies, tampering is found, and queries work.

use crate::support::{Fixture, canary, fetch};
use serde_json::json;
use std::sync::Arc;

#[test]
fn cli_verifies_queries_and_finds_tampering() {
    let fx = Fixture::new();
    fx.link("alice", &canary());
    let calls = [
        ("alice", format!("{}/bearer", fx.upstream)),
        ("alice", format!("http://localhost:{}/bearer", fx.port)),
        ("bob", format!("{}/bearer", fx.upstream)),
    ];
    for (user, url) in &calls {
        fx.call_fetch(user, &json!({ "url": url }));
    }

    let out = fx.airlock(&["audit", "verify"], None);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("chain ok, 9 event(s)"), "{stdout}");

    let out = fx.airlock(
        &["audit", "query", "--user", "alice", "--decision", "deny"],
        None,
    );
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("no_matching_grant") && table.contains("localhost"),
        "{table}"
    );
    assert!(!table.contains("bob"), "{table}");

    let out = fx.airlock(&["audit", "query", "--user", "bob", "--json"], None);
    let events: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), 3, "bob: call start, request, call end");
    assert!(
        events
            .iter()
            .all(|e| e["user"] == "bob" && e["caller"] == "cli")
    );
    let request = events.iter().find(|e| e["kind"] == "request").unwrap();
    assert_eq!(request["decision"], "authorization_required");
    assert_eq!(request["connection"], "demo");
    assert_eq!(request["reason"], "not_linked");

    // Rewrite who made the fifth event: verify must name exactly that event.
    let file = crate::support::files_under(&fx.audit_dir())
        .into_iter()
        .find(|f| f.extension().is_some_and(|e| e == "jsonl"))
        .unwrap();
    let text = std::fs::read_to_string(&file).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    assert!(lines[4].contains("\"user\":\"alice\""), "{}", lines[4]);
    lines[4] = lines[4].replace("\"user\":\"alice\"", "\"user\":\"mallory\"");
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let out = fx.airlock(&["audit", "verify"], None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(".jsonl:5: event seq 4: event was edited"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_calls_leave_a_valid_chain() {
    // Lift the host's concurrency caps so all 1,000 calls run at once.
    let fx = Fixture::with_endpoints(&[
        "\n[host]\nmax_concurrent_calls = 1000\nmax_concurrent_calls_per_user = 1000\n",
    ]);
    fx.link("alice", &canary());
    let (host, audit) = fx.host();
    let host = Arc::new(host);

    let mut tasks = Vec::new();
    for i in 0..1000 {
        let host = host.clone();
        // Most calls are denied at the gate (no network); every 50th goes
        // out to httpbin as alice, so allowed and denied events interleave.
        let url = if i % 50 == 0 {
            format!("{}/get", fx.upstream)
        } else {
            format!("http://localhost:{}/get", fx.port)
        };
        let user = if i % 2 == 0 { "alice" } else { "carol" };
        tasks.push(tokio::spawn(async move {
            fetch(&host, user, json!({ "url": url })).await.is_ok()
        }));
    }
    let mut finished = 0;
    for t in tasks {
        assert!(t.await.unwrap(), "every call returns a tool result");
        finished += 1;
    }
    assert_eq!(finished, 1000);
    audit.flush().unwrap();

    let report = airlock::audit::verify(&fx.audit_dir()).unwrap();
    assert_eq!(
        report.events, 3000,
        "call start, request decision and call end per call"
    );
    let denied = airlock::audit::query(
        &fx.audit_dir(),
        &airlock::audit::Filter {
            decision: Some(airlock::audit::Decision::Deny),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(denied.len(), 980);
    assert!(
        denied
            .iter()
            .all(|e| e.reason.as_deref() == Some("no_matching_grant"))
    );
}

#[test]
fn a_request_cut_off_by_the_end_of_its_call_is_still_audited() {
    let fx = Fixture::with_endpoints(&["\n[tools.fetch.limits]\ntimeout_ms = 1000\n"]);
    let token = canary();
    fx.link("alice", &token);
    let out = fx.call_fetch(
        "alice",
        &json!({ "url": format!("{}/delay/4", fx.upstream) }),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("timeout_ms"),
        "{stderr}"
    );

    let (text, events) = fx.audit_events();
    // The request is recorded when it is cut off, which can come after
    // its call's end; the call id ties them together.
    assert_eq!(
        kinds(&events),
        ["call_end", "call_start", "request"],
        "{text}"
    );
    let request = events.iter().find(|e| e["kind"] == "request").unwrap();
    assert_eq!(request["call_id"], events[0]["call_id"], "{request}");
    assert_eq!(request["decision"], "allow", "{request}");
    assert_eq!(request["reason"], "unanswered", "{request}");
    assert_eq!(request["connection"], "demo", "{request}");
    assert_eq!(request["path"], "/delay/4", "{request}");
    assert!(!text.contains(&token));
    fx.assert_audit_verifies();
}

/// The kinds of `events`, sorted.
fn kinds(events: &[serde_json::Value]) -> Vec<&str> {
    let mut kinds: Vec<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    kinds.sort_unstable();
    kinds
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_whose_future_is_dropped_still_ends_in_the_audit() {
    let fx = Fixture::new();
    let token = canary();
    fx.link("alice", &token);
    let (host, audit) = fx.host();
    let call = host.call(airlock::runtime::CallRequest {
        tool: "fetch.fetch".into(),
        user: "alice".into(),
        caller: "embedder".into(),
        args: json!({ "url": format!("{}/delay/4", fx.upstream) }),
    });
    // The embedder gives up on the call (its own timeout) and drops it.
    let given_up = tokio::time::timeout(std::time::Duration::from_millis(500), call).await;
    assert!(given_up.is_err(), "the call ended before it was dropped");

    // The cut-off request is recorded when its aborted task is dropped,
    // which the runtime does on its own time.
    let (mut text, mut events) = (String::new(), Vec::new());
    for _ in 0..40 {
        audit.flush().unwrap();
        (text, events) = fx.audit_events();
        if events.len() >= 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        kinds(&events),
        ["call_end", "call_start", "request"],
        "{text}"
    );
    let end = events.iter().find(|e| e["kind"] == "call_end").unwrap();
    assert_eq!(end["call_id"], events[0]["call_id"], "{end}");
    assert_eq!(end["decision"], "error", "{end}");
    assert_eq!(end["reason"], "cancelled", "{end}");
    assert_eq!(end["caller"], "embedder", "{end}");
    let request = events.iter().find(|e| e["kind"] == "request").unwrap();
    assert_eq!(request["reason"], "unanswered", "{request}");
    assert!(!text.contains(&token));
    fx.assert_audit_verifies();
}
