//! Tools written with the `wasi:http` client libraries tool authors use:
//! `wstd` (async) and `waki` (blocking), besides the raw bindings the other
//! example tools use. Each must be served every time, with the token
//! attached and its echo redacted, and refused where the grant ends.

use crate::support::{Fixture, canary, encodings, ok, sha256_file};
use airlock::runtime::{CallRequest, Host};
use airlock::tools::ToolOutput;
use airlock_tests::guests;
use serde_json::json;
use std::path::Path;

/// Requests each client sends in a row; a client that fails a few percent
/// of requests fails this many.
const REQUESTS: u32 = 300;

/// Refused calls each client makes, one request each.
const REFUSALS: usize = 50;

fn fixture() -> Fixture {
    let clients = guests::CLIENTS;
    let port = airlock_tests::peers::httpbin().port;
    Fixture::with_endpoints(&[&format!(
        r#"
[tools.clients]
source = {clients:?}
sha256 = "{}"
limits = {{ max_requests = {REQUESTS} }}

[[tools.clients.endpoints]]
url = "http://127.0.0.1:{port}/bearer"
methods = "GET"
connection = "demo"
allow_private = true
"#,
        sha256_file(Path::new(clients))
    )])
}

async fn call(host: &Host, function: &str, url: &str, count: u32) -> ToolOutput {
    let request = CallRequest {
        tool: format!("clients.{function}"),
        user: "alice".into(),
        caller: "e2e".into(),
        args: json!({ "url": url, "count": count }),
    };
    host.call(request).await.expect("the call ran").output
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_client_library_is_served_with_the_token_attached_and_redacted() {
    let fx = fixture();
    let token = canary();
    fx.link("alice", &token);
    let (host, audit) = fx.host();
    let url = format!("{}/bearer", fx.upstream);

    for function in ["get-with-wstd", "get-with-waki"] {
        let outcome = ok(Ok(call(&host, function, &url, REQUESTS).await));
        assert_eq!(outcome["ok"], REQUESTS, "{function}: {outcome}");
        // httpbin's /bearer echoes the token it was sent.
        let body = outcome["last-body"].as_str().unwrap();
        assert!(
            body.contains("\"authenticated\": true"),
            "{function}: {body}"
        );
        assert!(body.contains("[REDACTED]"), "{function}: {body}");
        for form in encodings(&token) {
            assert!(!outcome.to_string().contains(&form), "{function}: {body}");
        }
    }

    // Past the grant, each client gets the refusal (not a broken stream:
    // the refused request's body is still open to the guest) and nothing
    // goes out.
    let outside = format!("{}/headers", fx.upstream);
    for function in ["get-with-wstd", "get-with-waki"] {
        for _ in 0..REFUSALS {
            let ToolOutput::ToolError(error) = call(&host, function, &outside, 1).await else {
                panic!("{function}: a request outside the grant was not refused");
            };
            let error = error.to_string();
            assert!(
                error.contains("HttpRequestDenied") || error.contains("HTTP-request-denied"),
                "{function}: {error}"
            );
        }
    }

    drop(host);
    audit.flush().unwrap();
    drop(audit);
    let (text, events) = fx.audit_events();
    let requests: Vec<_> = events.iter().filter(|e| e["kind"] == "request").collect();
    let allowed = requests
        .iter()
        .filter(|e| e["decision"] == "allow" && e["status"] == 200)
        .count();
    assert_eq!(allowed, 2 * REQUESTS as usize);
    let denied = requests.iter().filter(|e| e["decision"] == "deny").count();
    assert_eq!(denied, 2 * REFUSALS);
    assert!(!text.contains(&token));
    fx.assert_audit_verifies();
}
