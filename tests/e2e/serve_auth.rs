//! Caller authentication over HTTP, with the MCP Python SDK as the client:
//! an API key acts only for its users (a refusal is audited), and OIDC
//! access tokens are checked against a JWKS served by an issuer this test
//! starts with a key pair it makes.

use crate::serve_support::{
    ALICE_KEY, HttpServer, Issuer, KID, assert_no_error, audit_events, fixture, forger_key, http,
    http_plan, key_headers, mcp, sign,
};
use crate::support::canary;
use airlock::audit::{Decision, Filter};
use serde_json::{Value, json};

fn list_and_call(upstream: &str) -> Value {
    json!([
        { "op": "list" },
        { "op": "call", "tool": "fetch.fetch", "arguments": { "url": format!("{upstream}/bearer") } },
    ])
}

/// Whether the session was refused with `status` before any step ran.
fn assert_refused(report: &Value, status: u16) {
    assert!(
        !report["error"].is_null(),
        "session was not refused: {report:#}"
    );
    assert!(report["steps"].as_array().unwrap().is_empty(), "{report:#}");
    let statuses = report["http_statuses"].as_array().unwrap();
    assert!(statuses.contains(&json!(status)), "{report:#}");
}

#[test]
fn a_key_for_alice_cannot_act_as_bob_and_the_refusal_is_audited() {
    let fx = fixture("", "");
    fx.link("alice", &canary());
    fx.link("bob", &canary());
    let server = HttpServer::start(&fx);

    // As alice (the key's only user, named or not) the call goes through.
    for user in [None, Some("alice")] {
        let plan = http_plan(
            &server,
            key_headers(ALICE_KEY, user),
            "auto",
            list_and_call(&fx.upstream),
        );
        let report = mcp(plan);
        assert_no_error(&report);
        assert_eq!(report["steps"][1]["is_error"], false, "{report:#}");
    }

    // As bob, over MCP in both protocol modes and over the HTTP API.
    for mode in ["auto", "legacy"] {
        let plan = http_plan(
            &server,
            key_headers(ALICE_KEY, Some("bob")),
            mode,
            list_and_call(&fx.upstream),
        );
        assert_refused(&mcp(plan), 403);
    }
    let auth = format!("Bearer {ALICE_KEY}");
    let body = json!({ "arguments": { "url": format!("{}/bearer", fx.upstream) } }).to_string();
    let (status, text) = http(
        "POST",
        &format!("{}/v1/tools/fetch.fetch/call", server.base),
        &[("authorization", &auth), ("airlock-user", "bob")],
        Some(&body),
    );
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("not_entitled"), "{text}");

    // No call ran for bob; each refusal is in the audit with the caller.
    let bob = Filter {
        user: Some("bob".into()),
        ..Filter::default()
    };
    let events = audit_events(&fx, bob);
    assert!(!events.is_empty());
    for e in &events {
        assert_eq!(e.kind, airlock::audit::EventKind::CallerRefused, "{e:?}");
        assert_eq!(e.decision, Some(Decision::Deny), "{e:?}");
        assert_eq!(e.reason.as_deref(), Some("caller_not_entitled"));
        assert_eq!(e.caller, "key:agent-alice");
    }
    assert!(
        events.iter().any(|e| e.tool == "fetch.fetch"),
        "{events:#?}"
    );
}

#[test]
fn valid_oidc_token_acts_for_its_subject() {
    let issuer = Issuer::start();
    let fx = fixture("", &issuer.config());
    fx.link("alice", &canary());
    let server = HttpServer::start(&fx);
    let token = issuer.mint(json!({}));
    let headers = json!({ "Authorization": format!("Bearer {token}") });
    let report = mcp(http_plan(
        &server,
        headers,
        "auto",
        list_and_call(&fx.upstream),
    ));
    assert_no_error(&report);
    assert_eq!(report["steps"][1]["is_error"], false, "{report:#}");

    // The subject is the user: the token cannot name another one.
    let headers = json!({ "Authorization": format!("Bearer {token}"), "Airlock-User": "bob" });
    assert_refused(
        &mcp(http_plan(
            &server,
            headers,
            "auto",
            list_and_call(&fx.upstream),
        )),
        403,
    );
    let events = audit_events(
        &fx,
        Filter {
            user: Some("alice".into()),
            ..Filter::default()
        },
    );
    assert!(
        events.iter().any(|e| e.caller == "oidc:test-agent"),
        "{events:#?}"
    );
}

#[test]
fn forged_expired_and_wrong_audience_tokens_are_refused() {
    let issuer = Issuer::start();
    let fx = fixture("", &issuer.config());
    fx.link("alice", &canary());
    let server = HttpServer::start(&fx);

    let now = json!(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    );
    let hour_ago = json!(now.as_u64().unwrap() - 3600);
    let cases = [
        ("forged", sign(&forger_key(), KID, issuer.claims(json!({})))),
        ("expired", issuer.mint(json!({ "exp": hour_ago }))),
        (
            "wrong audience",
            issuer.mint(json!({ "aud": "someone-else" })),
        ),
        (
            "wrong issuer",
            issuer.mint(json!({ "iss": "http://127.0.0.1:1" })),
        ),
        (
            "unknown key",
            sign(&forger_key(), "other-key", issuer.claims(json!({}))),
        ),
        ("no subject", issuer.mint(json!({ "sub": null }))),
    ];
    for (name, token) in &cases {
        let headers = json!({ "Authorization": format!("Bearer {token}") });
        let report = mcp(http_plan(
            &server,
            headers,
            "auto",
            list_and_call(&fx.upstream),
        ));
        assert_refused(&report, 401);
        let (status, body) = http(
            "GET",
            &format!("{}/v1/tools", server.base),
            &[("authorization", &format!("Bearer {token}"))],
            None,
        );
        assert_eq!(status, 401, "{name}: {body}");
        assert!(body.contains("invalid_token"), "{name}: {body}");
    }

    // An unsigned token ("alg": "none") is refused before any key is used.
    use base64::Engine as _;
    let b64 = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let unsigned = format!(
        "{}.{}.",
        b64(json!({ "alg": "none", "typ": "JWT" })),
        b64(issuer.claims(json!({})))
    );
    let (status, body) = http(
        "GET",
        &format!("{}/v1/tools", server.base),
        &[("authorization", &format!("Bearer {unsigned}"))],
        None,
    );
    assert_eq!(status, 401, "{body}");
    // Nothing ran for any refused token.
    assert!(
        audit_events(&fx, Filter::default())
            .iter()
            .all(|e| e.caller == "oidc:test-agent")
    );
}

#[test]
fn missing_or_unknown_credentials_and_foreign_hosts_are_refused() {
    let fx = fixture("", "");
    let server = HttpServer::start(&fx);
    let tools = format!("{}/v1/tools", server.base);

    let (status, body) = http("GET", &tools, &[], None);
    assert_eq!(status, 401, "{body}");
    let (status, _) = http(
        "GET",
        &tools,
        &[("authorization", "Bearer ak-unknown")],
        None,
    );
    assert_eq!(status, 401);
    let report = mcp(http_plan(
        &server,
        json!({}),
        "auto",
        json!([{ "op": "list" }]),
    ));
    assert_refused(&report, 401);

    // A DNS-rebinding page reaches the server under a foreign Host.
    let auth = format!("Bearer {ALICE_KEY}");
    let (status, body) = http(
        "GET",
        &tools,
        &[("authorization", &auth), ("host", "evil.example")],
        None,
    );
    assert_eq!(status, 403, "{body}");
    let (status, _) = http("GET", &tools, &[("authorization", &auth)], None);
    assert_eq!(status, 200);
}
