//! Linking accounts against a real authorization server (`oidc-provider`
//! from npm): `airlock connect` on a loopback listener, and the consent
//! routes the host serves, each ending in a stored, encrypted record and a
//! tool call that works with it.

use crate::oauth_support::{Browser, OAuthFixture, plain};
use crate::support::{fetch, ok};
use airlock::broker::{Broker, consent_routes};
use airlock::runtime::CallError;
use hyper_util::rt::TokioIo;
use serde_json::json;
use std::io::BufRead as _;

#[tokio::test]
async fn connect_links_the_account_and_the_tool_call_works() {
    let fx = OAuthFixture::new(json!({}), &["openid"], "");
    let mut child = fx
        .airlock_command(&["connect", "demo", "--user", "alice", "--no-browser"])
        .spawn()
        .unwrap();

    // Read what `connect` prints until the consent URL shows up.
    let stdout = child.stdout.take().unwrap();
    let (lines_tx, lines) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let line = line.unwrap();
            if lines_tx.send(line.clone()).is_err() {
                break;
            }
        }
    });
    let url = loop {
        let line = lines
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("connect printed no consent URL");
        if line.starts_with("http://") {
            break line;
        }
    };
    assert!(url.starts_with(&format!("{}/auth?", fx.op.issuer)), "{url}");
    let params = crate::oauth_support::query(&url);
    assert_eq!(params["code_challenge_method"], "S256");
    assert_eq!(params["response_type"], "code");
    assert!(params["redirect_uri"].starts_with("http://127.0.0.1:"));

    // The browser walks the provider's pages and lands on the listener.
    let (last, page) = Browser::default().follow(&url).await;
    assert_eq!(page.status, 200, "{last}: {}", page.body);
    assert!(
        page.body.contains("linked connection \"demo\""),
        "{}",
        page.body
    );
    let status = child.wait().unwrap();
    reader.join().unwrap();
    let printed: Vec<String> = lines.try_iter().collect();
    assert!(status.success(), "{printed:?}");
    assert!(
        printed.iter().any(|l| l.contains("linked connection")),
        "{printed:?}"
    );

    // The record is stored, refreshable, and its tokens are not readable
    // in the file.
    let record = fx.record("alice").expect("a stored record");
    let refresh = record.refresh_token.as_ref().expect("a refresh token");
    assert!(
        record.scopes.contains(&"openid".to_string()),
        "{:?}",
        record.scopes
    );
    let file = std::fs::read_to_string(fx.dir.path().join("data/vault.json")).unwrap();
    assert!(!file.contains(&plain(&record.access_token)));
    assert!(!file.contains(&plain(refresh)));

    let out = fx.call_me("alice");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("\"status\": 200") && stdout.contains("test-user"),
        "{stdout}"
    );
}

/// Serves the consent routes of `broker` on `listener` until the test ends.
fn serve(listener: tokio::net::TcpListener, broker: Broker) {
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let broker = broker.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    let broker = broker.clone();
                    async move {
                        Ok::<_, std::convert::Infallible>(consent_routes(&broker, &request).await)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
}

#[tokio::test]
async fn consent_routes_link_with_a_signed_link_and_a_single_use_state() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let fx = OAuthFixture::new(
        json!({}),
        &["openid", "email"],
        &format!("\n[host]\nconsent_base_url = \"{base}\"\n"),
    );
    let broker = Broker::from_config(&fx.config(), fx.vault()).unwrap();
    serve(listener, broker.clone());
    let host = fx.host(broker.clone());
    let me = json!({ "url": format!("{}/me", fx.op.issuer) });

    // Before linking: authorization required, with a consent URL.
    let required = match fetch(&host, "alice", me.clone()).await {
        Err(CallError::AuthorizationRequired(r)) => r,
        other => panic!("expected authorization required, got {other:?}"),
    };
    assert_eq!(required.reason, "not_linked");
    assert_eq!(required.missing_scopes, ["openid", "email"]);
    let link = required.consent_url.expect("a consent URL");
    assert!(
        link.starts_with(&format!("{base}/consent/start?")),
        "{link}"
    );

    // A link altered to another user is refused.
    let forged = link.replace("user=alice", "user=mallory");
    assert_eq!(Browser::default().get(&forged).await.status, 403);

    // The link leads through the provider back to the callback.
    let (last, page) = Browser::default().follow(&link).await;
    assert_eq!(page.status, 200, "{last}: {}", page.body);
    assert!(
        last.starts_with(&format!("{base}/consent/callback?")),
        "{last}"
    );
    assert!(
        page.body
            .contains("linked connection \"demo\" for user \"alice\"")
    );

    // The same callback again: the state was used up.
    let again = Browser::default().get(&last).await;
    assert_eq!(again.status, 400);
    assert!(again.body.contains("already used"), "{}", again.body);

    let response = ok(fetch(&host, "alice", me.clone()).await);
    assert_eq!(response["status"], 200);
    let body: serde_json::Value = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["sub"], "test-user");
    assert_eq!(body["email"], "test-user@example.test");

    // Another user is still not linked.
    assert!(matches!(
        fetch(&host, "bob", me).await,
        Err(CallError::AuthorizationRequired(_))
    ));
}

#[tokio::test]
async fn missing_scope_asks_for_consent_to_exactly_that_scope() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let fx = OAuthFixture::new(
        json!({}),
        &["openid", "email"],
        &format!("\n[host]\nconsent_base_url = \"{base}\"\n"),
    );
    let broker = Broker::from_config(&fx.config(), fx.vault()).unwrap();
    // Linked with the connection's scopes only: openid and profile.
    fx.link(&broker, "alice").await;
    let host = fx.host(broker);

    let required = match fetch(
        &host,
        "alice",
        json!({ "url": format!("{}/me", fx.op.issuer) }),
    )
    .await
    {
        Err(CallError::AuthorizationRequired(r)) => r,
        other => panic!("expected authorization required, got {other:?}"),
    };
    assert_eq!(required.reason, "missing_scopes");
    assert_eq!(required.missing_scopes, ["email"]);
    let link = required.consent_url.unwrap();
    assert_eq!(crate::oauth_support::query(&link)["scope"], "email");
}

#[tokio::test]
async fn consent_state_is_single_use_even_after_a_failed_exchange() {
    let fx = OAuthFixture::new(json!({}), &["openid"], "");
    let broker = fx.broker(Default::default());
    let redirect = url::Url::parse("http://127.0.0.1:9/consent/callback").unwrap();
    let url = broker
        .begin_consent_with_redirect("alice", "demo", &[], &redirect)
        .await
        .unwrap();
    let state = crate::oauth_support::query(&url)["state"].clone();
    assert!(state.len() >= 16, "{state}");

    // An unknown state is refused before anything is sent to the provider.
    let err = broker
        .complete_consent("not-a-state", "code")
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("unknown, already used or expired"),
        "{err}"
    );

    // A wrong code spends the state: it cannot be retried with a good one.
    let err = broker
        .complete_consent(&state, "wrong-code")
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("invalid_grant")
            || err.to_string().contains("code exchange failed"),
        "{err}"
    );
    let err = broker
        .complete_consent(&state, "wrong-code")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("already used"), "{err}");
    assert!(fx.record("alice").is_none());
}
