//! Refresh against a real authorization server that rotates refresh tokens
//! and revokes the whole grant when a spent one comes back: on expiry,
//! under 64 concurrent calls, from two processes at once, after
//! `invalid_grant`, after revocation, and with the host clock two minutes
//! ahead or behind.

use crate::oauth_support::{OAuthFixture, plain};
use crate::support::{fetch, ok};
use airlock::broker::{BrokerOptions, TokenOutcome};
use airlock::runtime::CallError;
use serde_json::json;
use std::time::Duration;

fn me(fx: &OAuthFixture) -> serde_json::Value {
    json!({ "url": format!("{}/me", fx.op.issuer) })
}

fn skewed(secs: i64) -> BrokerOptions {
    BrokerOptions {
        clock_skew_secs: secs,
        ..BrokerOptions::default()
    }
}

#[tokio::test]
async fn expired_token_is_refreshed_and_the_rotated_refresh_token_stored() {
    let fx = OAuthFixture::new(json!({ "access_ttl": 3600 }), &["openid"], "");
    fx.link(&fx.broker(Default::default()), "alice").await;
    let linked = fx.record("alice").unwrap();
    fx.expire("alice");

    let host = fx.host(fx.broker(Default::default()));
    assert_eq!(ok(fetch(&host, "alice", me(&fx)).await)["status"], 200);
    assert_eq!(fx.op.refreshes().await, 1);

    let refreshed = fx.record("alice").unwrap();
    assert_ne!(plain(&refreshed.access_token), plain(&linked.access_token));
    assert_ne!(
        plain(refreshed.refresh_token.as_ref().unwrap()),
        plain(linked.refresh_token.as_ref().unwrap()),
        "the server rotates; the new refresh token must be the stored one"
    );
    assert!(refreshed.expires_at.unwrap() > crate::oauth_support::now() + 3000);

    // Fresh now: further calls are served without another refresh, and the
    // rotated token keeps working for the next refresh.
    assert_eq!(ok(fetch(&host, "alice", me(&fx)).await)["status"], 200);
    assert_eq!(fx.op.refreshes().await, 1);
    fx.expire("alice");
    let host = fx.host(fx.broker(Default::default()));
    assert_eq!(ok(fetch(&host, "alice", me(&fx)).await)["status"], 200);
    assert_eq!(fx.op.refreshes().await, 2);
    assert_eq!(fx.op.reuses().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_concurrent_calls_on_an_expired_token_refresh_once() {
    // All 64 calls are alice's: lift the per-user cap (8 by default).
    let fx = OAuthFixture::new(
        json!({ "access_ttl": 3600, "refresh_delay_ms": 300 }),
        &["openid"],
        "[host]\nmax_concurrent_calls = 64\nmax_concurrent_calls_per_user = 64\n",
    );
    fx.link(&fx.broker(Default::default()), "alice").await;
    fx.expire("alice");
    let host = std::sync::Arc::new(fx.host(fx.broker(Default::default())));

    let calls = (0..64).map(|_| {
        let (host, args) = (host.clone(), me(&fx));
        tokio::spawn(async move { fetch(&host, "alice", args).await })
    });
    let results = futures::future::join_all(calls).await;
    for result in results {
        let response = ok(result.unwrap());
        assert_eq!(response["status"], 200, "{response}");
    }
    assert_eq!(fx.op.refreshes().await, 1);
    assert_eq!(fx.op.reuses().await, 0);
}

#[tokio::test]
async fn two_processes_refreshing_the_same_record_lose_no_refresh_token() {
    let fx = OAuthFixture::new(
        json!({ "access_ttl": 3600, "refresh_delay_ms": 2000 }),
        &["openid"],
        "",
    );
    fx.link(&fx.broker(Default::default()), "alice").await;
    fx.expire("alice");

    // The provider holds each refresh for 2 s, so the second process comes
    // for the record while the first one's refresh is still in flight.
    let args = me(&fx).to_string();
    let argv = ["call", "fetch.fetch", "--user", "alice", "--args", &args];
    // Quiet logs: debug output from the compiler slows one process enough
    // that the two would no longer meet.
    let first = fx
        .airlock_command(&argv)
        .env("AIRLOCK_LOG", "info")
        .spawn()
        .unwrap();
    let second = fx
        .airlock_command_with(&fx.second_config("second"), &argv)
        .env("AIRLOCK_LOG", "info")
        .spawn()
        .unwrap();
    for child in [first, second] {
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("\"status\": 200"), "{stdout}");
    }
    assert_eq!(
        fx.op.refreshes().await,
        1,
        "the second process used the first one's refresh"
    );
    assert_eq!(fx.op.reuses().await, 0);

    // The stored refresh token is the live one.
    fx.expire("alice");
    let out = fx.call_me("alice");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(fx.op.refreshes().await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_grant_uses_the_record_another_writer_stored_meanwhile() {
    let fx = OAuthFixture::new(
        json!({ "access_ttl": 3600, "refresh_delay_ms": 1500 }),
        &["openid"],
        "",
    );
    fx.link(&fx.broker(Default::default()), "alice").await;
    let old = fx.record("alice").unwrap();
    fx.expire("alice");

    // A refresh starts and waits at the server...
    let broker = fx.broker(Default::default());
    let scopes = vec!["openid".to_string()];
    let pending = tokio::spawn({
        let broker = broker.clone();
        async move { broker.token("alice", "demo", &scopes).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;

    // ...while the user removes the app at the provider and links again.
    fx.op.revoke(old.refresh_token.as_ref().unwrap()).await;
    fx.link(&fx.broker(Default::default()), "alice").await;
    let relinked = fx.record("alice").unwrap();

    // The refresh fails with invalid_grant; the broker reads the record
    // again and hands out the new link's token instead of giving up.
    match pending.await.unwrap().unwrap() {
        TokenOutcome::Token(token) => assert_eq!(plain(&token), plain(&relinked.access_token)),
        other => panic!("expected the re-linked token, got {other:?}"),
    }
    assert_eq!(fx.op.refreshes().await, 0);
    assert!(fx.record("alice").is_some());
}

#[tokio::test]
async fn refresh_token_revoked_at_the_provider_ends_the_link() {
    let fx = OAuthFixture::new(json!({ "access_ttl": 3600 }), &["openid"], "");
    fx.link(&fx.broker(Default::default()), "alice").await;
    let record = fx.record("alice").unwrap();
    fx.op.revoke(record.refresh_token.as_ref().unwrap()).await;
    fx.expire("alice");

    let broker = fx.broker(Default::default());
    match broker.token("alice", "demo", &[]).await.unwrap() {
        TokenOutcome::AuthorizationRequired(r) => {
            assert_eq!(r.reason, "refresh_rejected");
            assert_eq!(r.connection, "demo");
        }
        other => panic!("expected authorization required, got {other:?}"),
    }
    assert!(fx.record("alice").is_none(), "a dead link is removed");
}

#[tokio::test]
async fn upstream_401_for_a_revoked_token_refreshes_then_asks_for_consent() {
    let fx = OAuthFixture::new(json!({ "access_ttl": 3600 }), &["openid"], "");
    let broker = fx.broker(Default::default());
    fx.link(&broker, "alice").await;
    let host = fx.host(broker);
    assert_eq!(ok(fetch(&host, "alice", me(&fx)).await)["status"], 200);

    // Revoked at the provider while the host still holds a token that looks
    // fresh: the upstream answers 401, the broker drops the token, tries to
    // refresh, learns the grant is gone, and the call ends asking for
    // consent.
    fx.op
        .revoke(fx.record("alice").unwrap().refresh_token.as_ref().unwrap())
        .await;
    match fetch(&host, "alice", me(&fx)).await {
        Err(CallError::AuthorizationRequired(r)) => assert_eq!(r.reason, "refresh_rejected"),
        other => panic!("expected authorization required, got {other:?}"),
    }
    assert!(fx.record("alice").is_none());
}

#[tokio::test]
async fn host_clock_two_minutes_ahead_refreshes_early() {
    // Tokens live 150 s; the refresh margin is 60 s.
    let fx = OAuthFixture::new(json!({ "access_ttl": 150 }), &["openid"], "");
    fx.link(&fx.broker(Default::default()), "alice").await;

    let exact = fx.host(fx.broker(Default::default()));
    assert_eq!(ok(fetch(&exact, "alice", me(&fx)).await)["status"], 200);
    assert_eq!(fx.op.refreshes().await, 0);

    // Two minutes ahead, only 30 s seem left: refresh first, then call.
    let ahead = fx.host(fx.broker(skewed(120)));
    assert_eq!(ok(fetch(&ahead, "alice", me(&fx)).await)["status"], 200);
    assert_eq!(fx.op.refreshes().await, 1);
}

#[tokio::test]
async fn host_clock_two_minutes_behind_recovers_through_the_upstream_401() {
    // The server expires tokens after 5 s; a host two minutes behind still
    // believes the token has two minutes left.
    let fx = OAuthFixture::new(json!({ "access_ttl": 5 }), &["openid"], "");
    fx.link(&fx.broker(Default::default()), "alice").await;
    tokio::time::sleep(Duration::from_secs(6)).await;

    let behind = fx.host(fx.broker(skewed(-120)));
    // The first attempt gets 401; the token is dropped, refreshed, and the
    // GET is sent once more.
    let response = ok(fetch(&behind, "alice", me(&fx)).await);
    assert_eq!(response["status"], 200, "{response}");
    assert_eq!(fx.op.refreshes().await, 1);
}
