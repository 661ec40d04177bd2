//! The keyless path: a tool calls httpbin for a user; the host attaches the
//! user's token and removes every echo of it before the tool sees it.

use crate::support::{Fixture, canary, fetch, ok, tool_error};
use airlock::runtime::CallError;
use base64::Engine as _;
use serde_json::json;

#[tokio::test]
async fn bearer_call_is_authenticated_and_the_echo_is_redacted() {
    let fx = Fixture::new();
    let token = canary();
    fx.link("alice", &token);
    let (host, _audit) = fx.host();

    let response = ok(fetch(
        &host,
        "alice",
        json!({ "url": format!("{}/bearer", fx.upstream) }),
    )
    .await);
    assert_eq!(response["status"], 200);
    let body: serde_json::Value = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["authenticated"], true);
    assert_eq!(body["token"], "[REDACTED]");
    assert!(!response.to_string().contains(&token));
}

#[tokio::test]
async fn header_and_anything_echoes_are_redacted() {
    let fx = Fixture::new();
    let token = canary();
    fx.link("alice", &token);
    let (host, _audit) = fx.host();

    for path in ["/headers", "/anything/some/path?q=1", "/get"] {
        let response = ok(fetch(
            &host,
            "alice",
            json!({ "url": format!("{}{path}", fx.upstream) }),
        )
        .await);
        let text = response.to_string();
        assert_eq!(response["status"], 200, "{path}");
        assert!(text.contains("Bearer [REDACTED]"), "{path}: {text}");
        assert!(!text.contains(&token), "{path}");
    }
}

#[tokio::test]
async fn echoes_in_response_headers_are_redacted() {
    let fx = Fixture::new();
    let token = canary();
    fx.link("alice", &token);
    let (host, _audit) = fx.host();

    // The upstream is told to send the token back as a header of its own.
    let url = format!(
        "{}/response-headers?X-Leak={token}&X-Other=fine",
        fx.upstream
    );
    let response = ok(fetch(&host, "alice", json!({ "url": url })).await);
    let headers = response["headers"].as_array().unwrap();
    let leak = headers
        .iter()
        .find(|h| h["name"] == "x-leak")
        .expect("x-leak header");
    assert_eq!(leak["value"], "[REDACTED]");
    let other = headers
        .iter()
        .find(|h| h["name"] == "x-other")
        .expect("x-other header");
    assert_eq!(other["value"], "fine");
    assert!(!response.to_string().contains(&token));
}

#[tokio::test]
async fn base64_and_percent_encoded_echoes_are_redacted() {
    let fx = Fixture::new();
    let token = canary();
    fx.link("alice", &token);
    let (host, _audit) = fx.host();

    // httpbin returns a request body under "data": send the token's base64
    // and base64url forms at each alignment, and its percent-encoded form.
    let engines = [
        &base64::engine::general_purpose::STANDARD,
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
    ];
    for prefix in ["", "a", "ab", "Authorization: Bearer "] {
        for engine in engines {
            let encoded = engine.encode(format!("{prefix}{token}"));
            let response = ok(fetch(&host, "alice", json!({ "url": format!("{}/anything", fx.upstream), "method": "POST", "body": encoded })).await);
            let text = response.to_string();
            assert!(
                !text.contains(&encoded),
                "base64 of {prefix:?}+token came back"
            );
            assert!(text.contains("[REDACTED]"), "{prefix:?}: {text}");
        }
    }
    let percent = token.replace('-', "%2D");
    let response = ok(fetch(
        &host,
        "alice",
        json!({ "url": format!("{}/anything?echo={percent}", fx.upstream) }),
    )
    .await);
    let text = response.to_string();
    assert!(!text.contains(&token) && !text.contains(&percent), "{text}");

    // httpbin decodes /base64/<value> and sends the raw bytes back.
    let url = format!(
        "{}/base64/{}",
        fx.upstream,
        base64::engine::general_purpose::URL_SAFE.encode(format!("token={token}"))
    );
    let response = ok(fetch(&host, "alice", json!({ "url": url })).await);
    assert_eq!(response["body"], "token=[REDACTED]");
}

#[tokio::test]
async fn url_outside_the_grant_is_denied() {
    let fx = Fixture::new();
    fx.link("alice", &canary());
    let (host, _audit) = fx.host();

    for url in [
        format!("http://localhost:{}/get", fx.port),
        "https://example.com/".to_string(),
        format!("http://127.0.0.1:{}/get", fx.port + 1),
        format!("http://user@127.0.0.1:{}/get", fx.port),
    ] {
        let err = tool_error(fetch(&host, "alice", json!({ "url": url })).await);
        assert_eq!(err, "HTTP-request-denied", "{url}");
    }
}

#[tokio::test]
async fn user_without_a_link_gets_authorization_required() {
    let fx = Fixture::new();
    fx.link("alice", &canary());
    let (host, _audit) = fx.host();

    let result = fetch(
        &host,
        "bob",
        json!({ "url": format!("{}/bearer", fx.upstream) }),
    )
    .await;
    match result {
        Err(CallError::AuthorizationRequired(required)) => {
            assert_eq!(required.connection, "demo");
            assert_eq!(required.reason, "not_linked");
        }
        other => panic!("expected authorization required, got {other:?}"),
    }
}

#[tokio::test]
async fn tool_setting_its_own_authorization_is_refused() {
    let fx = Fixture::new();
    fx.link("alice", &canary());
    let (host, _audit) = fx.host();

    for name in ["Authorization", "proxy-authorization", "Cookie", "Host"] {
        let args = json!({ "url": format!("{}/headers", fx.upstream), "headers": [{ "name": name, "value": "Bearer stolen-by-the-tool" }] });
        let err = tool_error(fetch(&host, "alice", args).await);
        assert!(
            err.contains("refused") && err.contains("Forbidden"),
            "{name}: {err}"
        );
    }
}

#[tokio::test]
async fn redirect_to_another_origin_is_returned_and_the_follow_up_denied() {
    let fx = Fixture::new();
    let token = canary();
    fx.link("alice", &token);
    let (host, _audit) = fx.host();

    // localhost is the same server under another origin: following the
    // redirect would reach a live upstream, so a denial proves the gate.
    let elsewhere = format!("http://localhost:{}/anything", fx.port);
    let url = format!("{}/redirect-to?url={elsewhere}", fx.upstream);
    let response = ok(fetch(&host, "alice", json!({ "url": url })).await);
    assert_eq!(response["status"], 302);
    let location = response["headers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["name"] == "location")
        .unwrap();
    assert_eq!(location["value"], elsewhere);

    let err = tool_error(fetch(&host, "alice", json!({ "url": elsewhere })).await);
    assert_eq!(err, "HTTP-request-denied");
}

#[tokio::test]
async fn arguments_that_do_not_fit_are_rejected_before_the_guest_runs() {
    let fx = Fixture::new();
    let (host, _audit) = fx.host();
    let result = fetch(&host, "alice", json!({ "url": 5 })).await;
    let err = result.unwrap_err().to_string();
    assert!(
        err.contains("\"url\"") && err.contains("expected string"),
        "{err}"
    );
    let err = fetch(&host, "alice", json!({ "uri": "x" }))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("uri"), "{err}");
}

#[tokio::test]
async fn record_copied_to_another_user_fails_to_open() {
    let fx = Fixture::new();
    fx.link("alice", &canary());

    let file = fx.data_dir().join("vault.json");
    let mut vault: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let mut copy = vault["records"][0].clone();
    copy["user"] = "bob".into();
    vault["records"].as_array_mut().unwrap().push(copy);
    std::fs::write(&file, serde_json::to_vec(&vault).unwrap()).unwrap();

    let (host, _audit) = fx.host();
    let result = fetch(
        &host,
        "bob",
        json!({ "url": format!("{}/bearer", fx.upstream) }),
    )
    .await;
    let err = tool_error(result);
    assert!(err.contains("InternalError"), "{err}");
    // Alice's own record still works.
    let response = ok(fetch(
        &host,
        "alice",
        json!({ "url": format!("{}/bearer", fx.upstream) }),
    )
    .await);
    assert_eq!(response["status"], 200);
}

#[tokio::test]
async fn digest_mismatch_refuses_to_load() {
    let fx = Fixture::new();
    let text = std::fs::read_to_string(&fx.config_path).unwrap();
    let digest = crate::support::sha256_file(std::path::Path::new(airlock_tests::guests::FETCH));
    std::fs::write(&fx.config_path, text.replace(&digest, &"0".repeat(64))).unwrap();
    let config = fx.config();
    let err = airlock::runtime::Host::load(&config, airlock::audit::AuditLog::disabled())
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("has sha256") && err.contains(&digest), "{err}");
}

#[tokio::test]
async fn tools_are_listed_with_descriptions_and_schemas() {
    let fx = Fixture::new();
    let (host, _audit) = fx.host();
    let tools = host.tools();
    assert_eq!(tools.len(), 1);
    let fetch = &tools[0];
    assert_eq!(fetch.name, "fetch.fetch");
    assert!(
        fetch
            .description
            .starts_with("Sends one HTTP request and returns the response."),
        "{}",
        fetch.description
    );
    assert_eq!(fetch.input_schema["required"], json!(["url"]));
    assert_eq!(fetch.input_schema["properties"]["url"]["type"], "string");
    assert_eq!(fetch.input_schema["additionalProperties"], false);
    let output = fetch
        .output_schema
        .as_ref()
        .expect("the response record is an object");
    assert_eq!(output["properties"]["status"]["maximum"], 65535);
    assert_eq!(
        output["properties"]["headers"]["items"]["properties"]["name"]["description"],
        "Header name, such as `accept`."
    );
}
