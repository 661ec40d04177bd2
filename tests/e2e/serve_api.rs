//! The HTTP API beside MCP: list tools, call one, health and metrics.

use crate::oauth_support::{Browser, plain};
use crate::serve_support::{
    ALICE_KEY, ANY_KEY, ConsentFixture, HttpServer, assert_audit_whole, fallback_url, fixture, http,
};
use crate::support::canary;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

fn get(server: &HttpServer, path: &str) -> (u16, String) {
    let auth = format!("Bearer {ALICE_KEY}");
    http(
        "GET",
        &format!("{}{path}", server.base),
        &[("authorization", &auth)],
        None,
    )
}

fn call(server: &HttpServer, key: &str, user: &str, tool: &str, body: Value) -> (u16, Value) {
    let auth = format!("Bearer {key}");
    let (status, text) = http(
        "POST",
        &format!("{}/v1/tools/{tool}/call", server.base),
        &[("authorization", &auth), ("airlock-user", user)],
        Some(&body.to_string()),
    );
    let json = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
    (status, json)
}

#[test]
fn api_lists_tools_and_calls_them() {
    let fx = fixture("", "");
    let token = canary();
    fx.link("alice", &token);
    let server = HttpServer::start(&fx);

    let (status, text) = get(&server, "/v1/tools");
    assert_eq!(status, 200, "{text}");
    let tools: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(tools["tools"][0]["name"], "fetch.fetch");
    assert_eq!(
        tools["tools"][0]["input_schema"]["required"],
        json!(["url"])
    );

    let args = json!({ "arguments": { "url": format!("{}/bearer", fx.upstream) } });
    let (status, out) = call(&server, ALICE_KEY, "alice", "fetch.fetch", args);
    assert_eq!(status, 200, "{out:#}");
    assert_eq!(out["is_error"], false);
    assert_eq!(out["output"]["status"], 200);
    assert_eq!(out["requests"], 1);
    assert!(!out.to_string().contains(&token));

    // The tool's own error value is a result, not a failure of the API.
    let denied = json!({ "arguments": { "url": format!("http://localhost:{}/", fx.port) } });
    let (status, out) = call(&server, ALICE_KEY, "alice", "fetch.fetch", denied);
    assert_eq!(status, 200);
    assert_eq!(out["is_error"], true);
    assert_eq!(out["output"], "HTTP-request-denied");
}

#[test]
fn api_failures_have_codes_and_statuses() {
    let fx = fixture("", "");
    let server = HttpServer::start(&fx);
    let args = json!({ "arguments": { "url": format!("{}/bearer", fx.upstream) } });

    let (status, out) = call(&server, ANY_KEY, "dave", "fetch.fetch", args.clone());
    assert_eq!(status, 403, "{out:#}");
    assert_eq!(out["error"]["code"], "authorization_required");
    assert_eq!(out["error"]["connection"], "demo");
    assert_eq!(out["error"]["reason"], "not_linked");
    assert_eq!(out["error"]["consent_url"], fallback_url("dave"));

    let (status, out) = call(&server, ANY_KEY, "dave", "nope.nope", args);
    assert_eq!(status, 404, "{out:#}");
    assert_eq!(out["error"]["code"], "unknown_tool");
    let bad = json!({ "arguments": { "url": 5 } });
    let (status, out) = call(&server, ANY_KEY, "dave", "fetch.fetch", bad);
    assert_eq!(status, 400, "{out:#}");
    assert_eq!(out["error"]["code"], "invalid_arguments");
    let (status, out) = call(&server, ANY_KEY, "../x", "fetch.fetch", json!({}));
    assert_eq!(status, 400, "{out:#}");
    assert_eq!(out["error"]["code"], "invalid_user");
}

#[test]
fn a_broken_limit_is_422_and_a_busy_user_429() {
    let extra = "\n[host]\nmax_concurrent_calls_per_user = 1\n\n[tools.fetch.limits]\nmax_response_bytes = 2000\n";
    let fx = fixture(extra, "");
    fx.link("alice", &canary());
    let server = HttpServer::start(&fx);

    let big = json!({ "arguments": { "url": format!("{}/bytes/5000", fx.upstream) } });
    let (status, out) = call(&server, ALICE_KEY, "alice", "fetch.fetch", big);
    assert_eq!(status, 422, "{out:#}");
    assert_eq!(out["error"]["code"], "limit");
    assert!(
        out["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_response_bytes"),
        "{out:#}"
    );

    // One slow call holds alice's only slot; a second one is refused.
    let slow = json!({ "arguments": { "url": format!("{}/delay/3", fx.upstream) } });
    let (base, upstream) = (server.base.clone(), fx.upstream.clone());
    let first = std::thread::spawn(move || {
        let auth = format!("Bearer {ALICE_KEY}");
        http(
            "POST",
            &format!("{base}/v1/tools/fetch.fetch/call"),
            &[("authorization", &auth), ("airlock-user", "alice")],
            Some(&slow.to_string()),
        )
        .0
    });
    std::thread::sleep(Duration::from_millis(700));
    let quick = json!({ "arguments": { "url": format!("{upstream}/get") } });
    let (status, out) = call(&server, ALICE_KEY, "alice", "fetch.fetch", quick.clone());
    assert_eq!(status, 429, "{out:#}");
    assert_eq!(out["error"]["code"], "busy");
    assert_eq!(first.join().unwrap(), 200);
    // With the slot free again, the same call runs.
    let (status, out) = call(&server, ALICE_KEY, "alice", "fetch.fetch", quick);
    assert_eq!(status, 200, "{out:#}");
}

#[test]
fn health_and_metrics_in_prometheus_text_format() {
    let fx = fixture("", "");
    fx.link("alice", &canary());
    let server = HttpServer::start(&fx);

    let (status, text) = get(&server, "/v1/health");
    assert_eq!(status, 200, "{text}");
    let health: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["tools"], 1);

    let ok = json!({ "arguments": { "url": format!("{}/get", fx.upstream) } });
    let unlinked = json!({ "arguments": { "url": format!("{}/get", fx.upstream) } });
    call(&server, ALICE_KEY, "alice", "fetch.fetch", ok);
    call(&server, ANY_KEY, "erin", "fetch.fetch", unlinked);
    http("GET", &format!("{}/v1/tools", server.base), &[], None);

    let (status, text) = get(&server, "/metrics");
    assert_eq!(status, 200);
    for line in [
        "# TYPE airlock_calls_total counter",
        "airlock_calls_total{tool=\"fetch.fetch\",outcome=\"ok\"} 1",
        "airlock_calls_total{tool=\"fetch.fetch\",outcome=\"authorization_required\"} 1",
        "airlock_outbound_requests_total{tool=\"fetch.fetch\"} 1",
        "# TYPE airlock_call_duration_seconds histogram",
        "airlock_call_duration_seconds_count{tool=\"fetch.fetch\"} 2",
        "airlock_call_duration_seconds_bucket{tool=\"fetch.fetch\",le=\"+Inf\"} 2",
        "airlock_caller_refusals_total{reason=\"missing_credentials\"} 1",
        "airlock_calls_in_flight 0",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "{line:?} missing from:\n{text}"
        );
    }
}

/// The value of the sample named exactly `name` (with its labels), if any.
fn sample(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn metrics_count_egress_denials_by_reason_and_refreshes_by_outcome() {
    let cx = ConsentFixture::new();
    let server = cx.serve();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let bearer = json!({ "arguments": { "url": format!("{}/bearer", cx.fx.upstream) } });
    let denials = "airlock_egress_denials_total{reason=\"method_not_granted\"}";
    let refreshed = "airlock_token_refreshes_total{connection=\"demo\",outcome=\"ok\"}";
    let rejected = "airlock_token_refreshes_total{connection=\"demo\",outcome=\"rejected\"}";
    let (_, text) = get(&server, "/metrics");
    assert_eq!(sample(&text, denials), None, "{text}");
    assert_eq!(sample(&text, refreshed), None, "{text}");

    // Only GET is granted: a DELETE is denied before any token is looked up.
    let delete = json!({ "arguments": { "url": format!("{}/delete", cx.fx.upstream),
                                        "method": "DELETE" } });
    for _ in 0..2 {
        let (status, body) = call(&server, ANY_KEY, "alice", "fetch.fetch", delete.clone());
        assert_eq!((status, &body["is_error"]), (200, &json!(true)), "{body}");
    }
    let (_, text) = get(&server, "/metrics");
    assert_eq!(sample(&text, denials), Some(2), "{text}");
    assert!(text.contains("# TYPE airlock_egress_denials_total counter"));

    // Link alice through the consent URL the host gives out.
    let (status, body) = call(&server, ANY_KEY, "alice", "fetch.fetch", bearer.clone());
    assert_eq!(status, 403, "{body}");
    let link = body["error"]["consent_url"].as_str().unwrap().to_string();
    let (last, page) = rt.block_on(Browser::default().follow(&link));
    assert_eq!(page.status, 200, "{last}: {}", page.body);
    let (status, body) = call(&server, ANY_KEY, "alice", "fetch.fetch", bearer.clone());
    assert_eq!(status, 200, "{body}");
    let (_, text) = get(&server, "/metrics");
    assert_eq!(sample(&text, refreshed), None, "no refresh yet:\n{text}");

    // An expired token is refreshed at the provider on the next call, once
    // the server has seen the vault change (its cache follows the file).
    cx.expire("alice");
    let deadline = Instant::now() + Duration::from_secs(10);
    while rt.block_on(cx.op.refreshes()) == 0 {
        assert!(Instant::now() < deadline, "no refresh happened");
        std::thread::sleep(Duration::from_millis(300));
        let (status, body) = call(&server, ANY_KEY, "alice", "fetch.fetch", bearer.clone());
        assert_eq!(status, 200, "{body}");
    }
    let (_, text) = get(&server, "/metrics");
    assert_eq!(sample(&text, refreshed), Some(1), "{text}");
    assert_eq!(sample(&text, rejected), None, "{text}");

    // A refresh token the provider revoked is rejected: the user must link
    // again, and the metric says so.
    let record = cx.record("alice").unwrap();
    rt.block_on(cx.op.revoke(record.refresh_token.as_ref().unwrap()));
    cx.expire("alice");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let (status, body) = call(&server, ANY_KEY, "alice", "fetch.fetch", bearer.clone());
        if status == 403 {
            assert_eq!(body["error"]["reason"], "refresh_rejected", "{body}");
            break;
        }
        assert!(Instant::now() < deadline, "the revoked link kept working");
    }
    let (_, text) = get(&server, "/metrics");
    assert_eq!(sample(&text, rejected), Some(1), "{text}");
    assert_eq!(sample(&text, refreshed), Some(1), "{text}");
    assert!(
        !text.contains(&plain(&record.access_token)),
        "token in metrics"
    );
}

#[test]
fn a_client_that_hangs_up_cancels_its_call_and_the_audit_says_so() {
    use std::io::Write as _;
    let fx = fixture("", "");
    fx.link("alice", &canary());
    let mut server = HttpServer::start(&fx);
    let body = json!({ "arguments": { "url": format!("{}/delay/8", fx.upstream) } }).to_string();
    let mut tcp = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    write!(
        tcp,
        "POST /v1/tools/fetch.fetch/call HTTP/1.1\r\nhost: 127.0.0.1:{}\r\n\
         authorization: Bearer {ALICE_KEY}\r\ncontent-type: application/json\r\n\
         content-length: {}\r\n\r\n{body}",
        server.port,
        body.len()
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    let (_, text) = get(&server, "/metrics");
    assert_eq!(sample(&text, "airlock_calls_in_flight"), Some(1), "{text}");

    // The client goes away long before httpbin would answer.
    drop(tcp);
    let hung_up = Instant::now();
    loop {
        let (_, text) = get(&server, "/metrics");
        if sample(&text, "airlock_calls_in_flight") == Some(0) {
            break;
        }
        assert!(
            hung_up.elapsed() < Duration::from_secs(4),
            "the call outlived its client:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    server.terminate();
    let exit = server.wait_exit(Duration::from_secs(10));
    assert!(exit.is_some_and(|s| s.success()), "{exit:?}");
    let ends = assert_audit_whole(&fx);
    assert_eq!(ends.values().collect::<Vec<_>>(), ["cancelled"], "{ends:?}");
}

#[test]
fn canary_token_and_caller_keys_never_appear_in_answers_logs_or_audit() {
    use crate::serve_support::{http_plan, key_headers, mcp};
    use crate::support::{files_under, find_canary};

    let fx = fixture("", "");
    let token = canary();
    fx.link("alice", &token);
    let log = fx.dir.path().join("serve.log");
    let mut server = HttpServer::start_logged(&fx, &log);
    let mut haystacks: Vec<(String, Vec<u8>)> = Vec::new();

    // MCP: echoes of the token in headers and body, a denial, no link.
    let steps = json!([
        { "op": "call", "tool": "fetch.fetch", "arguments": { "url": format!("{}/bearer", fx.upstream) } },
        { "op": "call", "tool": "fetch.fetch", "arguments": { "url": format!("{}/headers", fx.upstream) } },
        { "op": "call", "tool": "fetch.fetch", "arguments": { "url": format!("{}/response-headers?X-Leak={token}", fx.upstream) } },
        { "op": "call", "tool": "fetch.fetch", "arguments": { "url": format!("http://localhost:{}/", fx.port) } },
    ]);
    for mode in ["auto", "legacy"] {
        let report = mcp(http_plan(
            &server,
            key_headers(ALICE_KEY, None),
            mode,
            steps.clone(),
        ));
        assert!(report["error"].is_null(), "{report:#}");
        haystacks.push((
            format!("mcp report {mode}"),
            report.to_string().into_bytes(),
        ));
    }
    let report = mcp(http_plan(
        &server,
        key_headers(ANY_KEY, Some("bob")),
        "auto",
        steps,
    ));
    haystacks.push(("mcp report bob".into(), report.to_string().into_bytes()));
    // The HTTP API, including a refused caller.
    let args = json!({ "arguments": { "url": format!("{}/anything", fx.upstream) } });
    let (_, out) = call(&server, ALICE_KEY, "alice", "fetch.fetch", args.clone());
    haystacks.push(("api call".into(), out.to_string().into_bytes()));
    let (_, out) = call(&server, ALICE_KEY, "bob", "fetch.fetch", args);
    haystacks.push(("api refusal".into(), out.to_string().into_bytes()));

    server.terminate();
    assert!(
        server
            .wait_exit(std::time::Duration::from_secs(10))
            .is_some()
    );
    for file in files_under(fx.dir.path()) {
        // The vault holds the token sealed; everything else must not hold it.
        if file.ends_with("vault.json") || file.ends_with("vault.key") {
            continue;
        }
        haystacks.push((file.display().to_string(), std::fs::read(&file).unwrap()));
    }
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(log_text.contains("DEBUG"), "debug logging was not on");

    for secret in [token.as_str(), ALICE_KEY, ANY_KEY] {
        let found = find_canary(secret, &haystacks);
        assert!(found.is_empty(), "secret found: {found:#?}");
    }
}

#[test]
fn consent_routes_are_the_only_unauthenticated_ones() {
    let fx = fixture("", "");
    let server = HttpServer::start(&fx);

    // Without a caller credential the API refuses, but the consent routes
    // answer (here: the link is unsigned, so the broker refuses it itself).
    let (status, _) = http("GET", &format!("{}/v1/tools", server.base), &[], None);
    assert_eq!(status, 401);
    for path in [
        "/consent/start?user=alice&connection=demo",
        "/consent/callback?state=x&code=y",
    ] {
        let (status, body) = http("GET", &format!("{}{path}", server.base), &[], None);
        assert!(status == 400 || status == 403, "{path}: {status} {body}");
    }
}
