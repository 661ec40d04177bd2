//! Consent interrupts with the MCP Python SDK as the client: a user without
//! a link gets a URL-mode elicitation with the consent URL; once the user
//! has linked the account and accepts, the same call succeeds.
//!
//! The first tests go all the way: the consent URL is the broker's
//! `/consent/start`, served by `airlock serve --http`; the test opens it as
//! a browser would, through the local OAuth server (`oidc-provider`) and
//! back to `/consent/callback`, which stores the token; then the client
//! accepts and the retried call reaches httpbin with that token. The others
//! use the operator's `consent_fallback_url` and link the account with
//! `airlock vault put` from the elicitation callback.

use crate::oauth_support::{Browser, plain, query};
use crate::serve_support::{
    ANY_KEY, ConsentFixture, HttpServer, assert_no_error, fallback_url, fixture, http_plan,
    key_headers, mcp, mcp_asking, stdio_plan,
};
use crate::support::{Fixture, canary};
use serde_json::{Value, json};

/// Runs `future` to completion on a runtime of its own (the tests here are
/// synchronous: they wait on the MCP client process).
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

/// Checks that `params` is a URL-mode elicitation whose URL starts consent
/// at this host for `user` and the `demo` connection, and returns the URL.
fn consent_url_in(cx: &ConsentFixture, params: &Value, user: &str) -> String {
    assert_eq!(params["mode"], "url", "{params:#}");
    let url = params["url"].as_str().unwrap().to_string();
    assert_consent_url(cx, &url, user);
    url
}

/// Checks that `url` starts consent at this host for `user` and `demo`.
fn assert_consent_url(cx: &ConsentFixture, url: &str, user: &str) {
    assert!(url.starts_with(&cx.consent_start()), "{url}");
    let q = query(url);
    assert_eq!(q["user"], user, "{url}");
    assert_eq!(q["connection"], "demo", "{url}");
}

/// The URL a consent tool error tells the user to open.
fn url_in_error(text: &str) -> String {
    let (_, rest) = text.split_once(". Open ").expect("a URL to open");
    let (url, _) = rest.split_once(' ').expect("text after the URL");
    url.to_string()
}

/// Opens `url` as the user's browser: through the OAuth server's login and
/// consent pages and back to the host's callback, which must say the
/// account is linked.
fn complete_consent(cx: &ConsentFixture, url: &str, user: &str) {
    let (last, page) = block_on(Browser::default().follow(url));
    assert!(last.starts_with(&cx.consent_callback()), "{last}");
    assert_eq!(page.status, 200, "{last}: {}", page.body);
    let linked = format!("linked connection \"demo\" for user \"{user}\"");
    assert!(page.body.contains(&linked), "{}", page.body);
}

/// The call succeeded, httpbin saw the stored access token as the bearer
/// (its echo came back redacted), and the token is nowhere in the report.
fn assert_upstream_got_the_linked_token(cx: &ConsentFixture, report: &Value, user: &str) {
    let result = report["steps"].as_array().unwrap().last().unwrap();
    assert_eq!(result["is_error"], false, "{report:#}");
    assert_eq!(result["structured"]["status"], 200, "{result:#}");
    let body: Value = serde_json::from_str(result["structured"]["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["authenticated"], true, "{body:#}");
    assert_eq!(body["token"], "[REDACTED]", "{body:#}");

    let record = cx.record(user).expect("the callback stored a record");
    let access = plain(&record.access_token);
    assert!(!report.to_string().contains(&access), "token leaked");
    let refresh = record.refresh_token.as_ref().expect("a refresh token");
    assert!(!report.to_string().contains(&plain(refresh)));
}

#[test]
fn http_consent_through_the_oauth_server_then_the_same_call_succeeds() {
    let cx = ConsentFixture::new();
    let server = cx.serve();
    for (mode, user) in [("auto", "bob"), ("legacy", "carol")] {
        let headers = key_headers(ANY_KEY, Some(user));
        let plan = http_plan(&server, headers, mode, bearer_call(&cx.fx));
        let mut asked = 0;
        let report = mcp_asking(plan, |params| {
            asked += 1;
            let url = consent_url_in(&cx, params, user);
            complete_consent(&cx, &url, user);
            json!({ "action": "accept" })
        });
        assert_no_error(&report);
        assert_eq!(asked, 1, "{mode}: {report:#}");
        assert_upstream_got_the_linked_token(&cx, &report, user);
    }
    assert_eq!(block_on(cx.op.stats())["grants"]["authorization_code"], 2);
}

#[test]
fn stdio_consent_through_the_oauth_server_then_the_same_call_succeeds() {
    let cx = ConsentFixture::new();
    // The stdio session gives out consent URLs of the HTTP server beside
    // it; both share the vault, and with it the key that signs the URLs.
    let _consent = cx.serve_beside();
    for (mode, user) in [("auto", "bob"), ("legacy", "carol")] {
        let plan = stdio_plan(&cx.fx, user, mode, bearer_call(&cx.fx));
        let mut asked = 0;
        let report = mcp_asking(plan, |params| {
            asked += 1;
            let url = consent_url_in(&cx, params, user);
            complete_consent(&cx, &url, user);
            json!({ "action": "accept" })
        });
        assert_no_error(&report);
        assert_eq!(asked, 1, "{mode}: {report:#}");
        assert_upstream_got_the_linked_token(&cx, &report, user);
    }
}

#[test]
fn unfinished_consent_ends_in_a_tool_error_with_the_consent_url() {
    let cx = ConsentFixture::new();
    let server = cx.serve();
    for (mode, user) in [("auto", "bob"), ("legacy", "carol")] {
        let headers = key_headers(ANY_KEY, Some(user));
        let plan = http_plan(&server, headers.clone(), mode, bearer_call(&cx.fx));
        let mut asked = 0;
        let report = mcp_asking(plan, |params| {
            asked += 1;
            let url = consent_url_in(&cx, params, user);
            // The user gets as far as the OAuth server's approval, but the
            // way back to the host never happens.
            block_on(Browser::default().walk(&url, &cx.consent_callback()));
            json!({ "action": "accept" })
        });
        assert_no_error(&report);
        assert_eq!(asked, 1, "{mode}: {report:#}");
        let result = &report["steps"][0];
        assert_eq!(result["is_error"], true, "{mode}: {result:#}");
        let text = result["text"][0].as_str().unwrap();
        assert!(text.contains("not completed"), "{mode}: {text}");
        let url = url_in_error(text);
        assert_consent_url(&cx, &url, user);
        assert!(
            cx.record(user).is_none(),
            "{mode}: linked without a callback"
        );

        // The user opens the URL from the error later; the next call needs
        // no prompt.
        complete_consent(&cx, &url, user);
        let plan = http_plan(&server, headers, mode, bearer_call(&cx.fx));
        let report = mcp_asking(plan, |params| panic!("asked again: {params:#}"));
        assert_no_error(&report);
        assert_upstream_got_the_linked_token(&cx, &report, user);
    }
}

#[test]
fn declined_consent_ends_in_a_tool_error_with_the_consent_url() {
    let cx = ConsentFixture::new();
    let server = cx.serve();
    let headers = key_headers(ANY_KEY, Some("bob"));
    let plan = http_plan(&server, headers, "legacy", bearer_call(&cx.fx));
    let mut elicited = None;
    let report = mcp_asking(plan, |params| {
        elicited = Some(consent_url_in(&cx, params, "bob"));
        json!({ "action": "decline" })
    });
    assert_no_error(&report);
    let result = &report["steps"][0];
    assert_eq!(result["is_error"], true, "{result:#}");
    let text = result["text"][0].as_str().unwrap();
    assert!(text.contains("declined"), "{text}");
    assert_eq!(url_in_error(text), elicited.unwrap(), "{text}");
}

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
