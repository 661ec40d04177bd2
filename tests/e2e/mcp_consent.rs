//! Consent interrupts with the MCP Python SDK as the client: a user without
//! a link gets a URL-mode elicitation with the consent URL; once the user
//! has linked the account and accepts, the same call succeeds.
//!
//! The broker's consent routes do not exist yet, so the consent URL here is
//! the operator's `consent_fallback_url`, and "completing consent" is the
//! elicitation callback linking the account with `airlock vault put`.
//! FIXME(#6): once the broker (#4) serves `/consent/start` and
//! `/consent/callback`, add the test that follows the elicited URL through
//! the local OAuth server and then retries the call.

use crate::serve_support::{
    ANY_KEY, HttpServer, assert_no_error, fallback_url, fixture, http_plan, key_headers, mcp,
    stdio_plan,
};
use crate::support::{Fixture, canary};
use serde_json::{Value, json};

fn bearer_call(fx: &Fixture) -> Value {
    json!([{ "op": "call", "tool": "fetch.fetch",
             "arguments": { "url": format!("{}/bearer", fx.upstream) } }])
}

/// An elicitation answer that first links `user` with `token`.
fn accept_after_linking(fx: &Fixture, user: &str, token: &str) -> Value {
    json!({
        "action": "accept",
        "run": [env!("CARGO_BIN_EXE_airlock"), "--config", fx.config_path,
                "vault", "put", "--user", user, "--connection", "demo"],
        "stdin": token,
    })
}

fn assert_elicited(report: &Value, user: &str) {
    let elicitations = report["elicitations"].as_array().unwrap();
    assert_eq!(elicitations.len(), 1, "{report:#}");
    let e = &elicitations[0];
    assert_eq!(e["mode"], "url");
    assert_eq!(e["url"], fallback_url(user));
    assert!(e["message"].as_str().unwrap().contains("demo"), "{e:#}");
}

fn assert_authenticated(report: &Value, token: &str) {
    let result = report["steps"].as_array().unwrap().last().unwrap();
    assert_eq!(result["is_error"], false, "{report:#}");
    assert_eq!(result["structured"]["status"], 200);
    assert!(!report.to_string().contains(token), "token leaked");
}

#[test]
fn stdio_elicits_consent_and_the_same_call_then_succeeds() {
    for mode in ["auto", "legacy"] {
        let fx = fixture("", "");
        let token = canary();
        let mut plan = stdio_plan(&fx, "bob", mode, bearer_call(&fx));
        plan["elicitation"] = accept_after_linking(&fx, "bob", &token);
        let report = mcp(plan);
        assert_no_error(&report);
        assert_elicited(&report, "bob");
        assert_authenticated(&report, &token);
    }
}

#[test]
fn http_elicits_consent_and_the_same_call_then_succeeds() {
    for mode in ["auto", "legacy"] {
        let fx = fixture("", "");
        let server = HttpServer::start(&fx);
        let token = canary();
        let headers = key_headers(ANY_KEY, Some("carol"));
        let mut plan = http_plan(&server, headers, mode, bearer_call(&fx));
        plan["elicitation"] = accept_after_linking(&fx, "carol", &token);
        let report = mcp(plan);
        assert_no_error(&report);
        assert_elicited(&report, "carol");
        assert_authenticated(&report, &token);
    }
}

#[test]
fn declined_consent_is_a_tool_error_with_the_url() {
    for mode in ["auto", "legacy"] {
        let fx = fixture("", "");
        let mut plan = stdio_plan(&fx, "bob", mode, bearer_call(&fx));
        plan["elicitation"] = json!({ "action": "decline" });
        let report = mcp(plan);
        assert_no_error(&report);
        assert_elicited(&report, "bob");
        let result = &report["steps"][0];
        assert_eq!(result["is_error"], true, "{result:#}");
        let text = result["text"][0].as_str().unwrap();
        assert!(
            text.contains("declined") && text.contains(&fallback_url("bob")),
            "{text}"
        );
    }
}

#[test]
fn accepting_without_linking_asks_only_once() {
    for mode in ["auto", "legacy"] {
        let fx = fixture("", "");
        let mut plan = stdio_plan(&fx, "bob", mode, bearer_call(&fx));
        plan["elicitation"] = json!({ "action": "accept" });
        let report = mcp(plan);
        assert_no_error(&report);
        assert_elicited(&report, "bob");
        let text = report["steps"][0]["text"][0].as_str().unwrap();
        assert!(text.contains("not completed"), "{mode}: {text}");
    }
}

#[test]
fn without_a_consent_url_the_tool_error_says_to_ask_the_operator() {
    // No fallback page and no broker URL: nothing to elicit.
    let fx = Fixture::with_endpoints(&[]);
    let mut plan = stdio_plan(&fx, "bob", "auto", bearer_call(&fx));
    plan["elicitation"] = json!({ "action": "accept" });
    let report = mcp(plan);
    assert_no_error(&report);
    assert!(report["elicitations"].as_array().unwrap().is_empty());
    let text = report["steps"][0]["text"][0].as_str().unwrap();
    assert!(text.contains("ask the operator"), "{text}");
}
