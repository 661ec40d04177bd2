//! MCP over streamable HTTP with the official MCP Python SDK as the client:
//! tools, calls, progress, cancellation, 200 concurrent calls, and a
//! graceful shutdown that lets a running call finish.

use crate::serve_support::{
    ALICE_KEY, HttpServer, assert_audit_whole, assert_no_error, fixture, http, http_plan,
    key_headers, mcp, serve_config,
};
use crate::support::{Fixture, canary};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

fn metric(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

fn metrics(server: &HttpServer) -> String {
    let auth = format!("Bearer {ALICE_KEY}");
    let (status, text) = http(
        "GET",
        &format!("{}/metrics", server.base),
        &[("authorization", &auth)],
        None,
    );
    assert_eq!(status, 200, "{text}");
    text
}

#[test]
fn http_lists_tools_and_calls_fetch_in_both_protocol_modes() {
    let fx = fixture("", "");
    let token = canary();
    fx.link("alice", &token);
    let server = HttpServer::start(&fx);
    for (mode, version) in [("auto", "2026-07-28"), ("legacy", "2025-11-25")] {
        let steps = json!([
            { "op": "list" },
            { "op": "call", "tool": "fetch.fetch",
              "arguments": { "url": format!("{}/bearer", fx.upstream) } },
        ]);
        let report = mcp(http_plan(
            &server,
            key_headers(ALICE_KEY, None),
            mode,
            steps,
        ));
        assert_no_error(&report);
        assert_eq!(report["protocol_version"], version);
        let tools = &report["steps"][0]["tools"];
        assert_eq!(tools[0]["name"], "fetch.fetch", "{report:#}");
        assert_eq!(tools[0]["input_schema"]["required"], json!(["url"]));
        let call = &report["steps"][1];
        assert_eq!(call["is_error"], false, "{call:#}");
        let body: Value =
            serde_json::from_str(call["structured"]["body"].as_str().unwrap()).unwrap();
        assert_eq!(body["token"], "[REDACTED]");
        assert!(!report.to_string().contains(&token));
    }
}

#[test]
fn two_hundred_concurrent_calls_complete_without_failure() {
    // The host refuses calls past its concurrency caps (64 in all, 8 per
    // user by default); lift them so all 200 calls run at once.
    let fx = fixture(
        "",
        "\n[host]\nmax_concurrent_calls = 256\nmax_concurrent_calls_per_user = 256\n",
    );
    fx.link("alice", &canary());
    let server = HttpServer::start(&fx);
    let steps = json!([{ "op": "concurrent", "n": 200, "tool": "fetch.fetch",
                         "arguments": { "url": format!("{}/get", fx.upstream) } }]);
    let report = mcp(http_plan(
        &server,
        key_headers(ALICE_KEY, None),
        "auto",
        steps,
    ));
    assert_no_error(&report);
    let outcome = &report["steps"][0];
    assert_eq!(outcome["ok"], 200, "{outcome:#}");
    eprintln!("200 concurrent MCP calls took {} s", outcome["seconds"]);

    let text = metrics(&server);
    let ok = metric(
        &text,
        "airlock_calls_total{tool=\"fetch.fetch\",outcome=\"ok\"}",
    );
    assert_eq!(ok, Some(200.0), "{text}");
    assert_eq!(metric(&text, "airlock_calls_in_flight"), Some(0.0));
}

#[test]
fn long_calls_report_progress() {
    let fx = fixture("", "");
    fx.link("alice", &canary());
    let server = HttpServer::start(&fx);
    let steps = json!([{ "op": "call", "tool": "fetch.fetch", "progress": true,
                         "arguments": { "url": format!("{}/delay/1", fx.upstream) } }]);
    let report = mcp(http_plan(
        &server,
        key_headers(ALICE_KEY, None),
        "auto",
        steps,
    ));
    assert_no_error(&report);
    let result = &report["steps"][0];
    assert_eq!(result["is_error"], false, "{result:#}");
    // Every 200 ms for a call of at least one second.
    let progress = result["progress"].as_array().unwrap();
    assert!(progress.len() >= 2, "{result:#}");
    assert!(progress[0]["message"].as_str().unwrap().contains("running"));
}

#[test]
fn cancelling_a_call_stops_it_and_audits_its_end() {
    let fx = fixture("", "");
    fx.link("alice", &canary());
    let mut server = HttpServer::start(&fx);
    for mode in ["auto", "legacy"] {
        let steps = json!([{ "op": "cancel", "tool": "fetch.fetch", "after": 0.5,
                             "arguments": { "url": format!("{}/delay/8", fx.upstream) } }]);
        let report = mcp(http_plan(
            &server,
            key_headers(ALICE_KEY, None),
            mode,
            steps,
        ));
        assert_eq!(report["steps"][0]["cancelled"], true, "{report:#}");
    }

    // Both calls end long before httpbin would have answered them.
    let deadline = Instant::now() + Duration::from_secs(4);
    let mut text = metrics(&server);
    while metric(&text, "airlock_calls_in_flight") != Some(0.0) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        text = metrics(&server);
    }
    assert_eq!(
        metric(&text, "airlock_calls_in_flight"),
        Some(0.0),
        "{text}"
    );
    let cancelled = "airlock_calls_total{tool=\"fetch.fetch\",outcome=\"cancelled\"}";
    assert_eq!(metric(&text, cancelled), Some(2.0), "{text}");

    // Each call that started has its end in the audit, as cancelled.
    server.terminate();
    let exit = server.wait_exit(Duration::from_secs(10));
    assert!(exit.is_some_and(|s| s.success()), "{exit:?}");
    let ends = assert_audit_whole(&fx);
    assert_eq!(ends.len(), 2, "{ends:?}");
    assert!(ends.values().all(|r| r == "cancelled"), "{ends:?}");
}

#[test]
fn shutdown_cancels_a_call_past_the_grace_and_audits_its_end() {
    let serve = serve_config("").replace("shutdown_grace_ms = 10000", "shutdown_grace_ms = 300");
    let fx = Fixture::with_endpoints(&[&serve]);
    fx.link("alice", &canary());
    let mut server = HttpServer::start(&fx);
    let url = format!("{}/v1/tools/fetch.fetch/call", server.base);
    let body = json!({ "arguments": { "url": format!("{}/delay/8", fx.upstream) } }).to_string();
    let started = Instant::now();
    let call = std::thread::spawn(move || {
        let auth = format!("Bearer {ALICE_KEY}");
        http("POST", &url, &[("authorization", &auth)], Some(&body))
    });

    std::thread::sleep(Duration::from_millis(700));
    server.terminate();
    let (status, body) = call.join().unwrap();
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("cancelled"), "{body}");
    let exit = server.wait_exit(Duration::from_secs(10));
    assert!(exit.is_some_and(|s| s.success()), "{exit:?}");
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );

    let ends = assert_audit_whole(&fx);
    assert_eq!(ends.values().collect::<Vec<_>>(), ["cancelled"], "{ends:?}");
}

#[test]
fn shutdown_lets_a_running_call_finish_and_leaves_the_audit_whole() {
    let fx = fixture("", "");
    fx.link("alice", &canary());
    let mut server = HttpServer::start(&fx);
    let url = format!("{}/v1/tools/fetch.fetch/call", server.base);
    let body = json!({ "arguments": { "url": format!("{}/delay/2", fx.upstream) } }).to_string();
    let call = std::thread::spawn(move || {
        let auth = format!("Bearer {ALICE_KEY}");
        http("POST", &url, &[("authorization", &auth)], Some(&body))
    });

    std::thread::sleep(Duration::from_millis(700));
    server.terminate();
    let (status, body) = call.join().unwrap();
    assert_eq!(status, 200, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["is_error"], false);
    assert_eq!(body["output"]["status"], 200);

    let exit = server.wait_exit(Duration::from_secs(10));
    assert!(exit.is_some_and(|s| s.success()), "{exit:?}");
    // No new connection is taken after shutdown.
    assert!(std::net::TcpStream::connect(("127.0.0.1", server.port)).is_err());

    let out = fx.airlock(&["audit", "verify"], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let events = crate::serve_support::audit_events(&fx, Default::default());
    let ends = events
        .iter()
        .filter(|e| e.kind == airlock::audit::EventKind::CallEnd)
        .count();
    assert_eq!(ends, 1, "{events:#?}");
}
