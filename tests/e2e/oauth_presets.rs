//! What each provider preset sends, checked against a local server that
//! records every request and answers the way that provider does (errors
//! with status 200, comma-separated scopes, Slack's `authed_user`,
//! `expires_in` as a string, no refresh token in a refresh reply, Box's
//! single-use refresh tokens). The recorder is only a recorder: the point
//! is the requests the broker makes and what it stores from the replies.

use crate::oauth_support::{now, plain, query};
use airlock::broker::{AtProvider, Broker, BrokerOptions, TokenOutcome};
use airlock::manifest::Config;
use airlock::vault::{LocalVault, TokenRecord};
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex};

const SECRET: &str = "preset-client-secret-0123456789";

/// One request as the recorder saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    headers: http::HeaderMap,
    form: BTreeMap<String, String>,
    body: Bytes,
}

#[derive(Default)]
struct State {
    seen: Vec<Seen>,
    replies: HashMap<String, VecDeque<(u16, Value)>>,
}

struct Recorder {
    port: u16,
    state: Arc<Mutex<State>>,
}

impl Recorder {
    async fn start() -> Recorder {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let state = shared.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        move |request: http::Request<hyper::body::Incoming>| {
                            let state = state.clone();
                            async move {
                                let (parts, body) = request.into_parts();
                                let body = body.collect().await.unwrap().to_bytes();
                                let form =
                                    url::form_urlencoded::parse(&body).into_owned().collect();
                                let path = parts.uri.path().to_string();
                                let mut state = state.lock().unwrap();
                                state.seen.push(Seen {
                                    method: parts.method.to_string(),
                                    path: path.clone(),
                                    headers: parts.headers,
                                    form,
                                    body: body.clone(),
                                });
                                let (status, reply) = state
                                    .replies
                                    .get_mut(&path)
                                    .and_then(VecDeque::pop_front)
                                    .unwrap_or((200, json!({})));
                                let response = http::Response::builder()
                                    .status(status)
                                    .header("content-type", "application/json; charset=utf-8")
                                    .body(Full::new(Bytes::from(reply.to_string())))
                                    .unwrap();
                                Ok::<_, std::convert::Infallible>(response)
                            }
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Recorder { port, state }
    }

    fn reply(&self, path: &str, status: u16, body: Value) {
        let mut state = self.state.lock().unwrap();
        state
            .replies
            .entry(path.to_string())
            .or_default()
            .push_back((status, body));
    }

    fn take(&self) -> Vec<Seen> {
        std::mem::take(&mut self.state.lock().unwrap().seen)
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

/// A broker whose connection `name` uses preset `provider` with its
/// endpoints moved to the recorder.
struct Setup {
    _dir: tempfile::TempDir,
    config: Config,
    broker: Broker,
    vault: Arc<LocalVault>,
    recorder: Recorder,
}

async fn setup(name: &str, keys: impl Fn(u16) -> String) -> Setup {
    let recorder = Recorder::start().await;
    let keys = keys(recorder.port);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("client.secret"), format!("{SECRET}\n")).unwrap();
    let text = format!(
        r#"
[vault]
dir = "data"

[connections.{name}]
audience = ["https://api.example.com"]
client_id = "client id/{name}"
client_secret_file = "client.secret"
authorize_url = "{authorize}"
token_url = "{token}"
{keys}
"#,
        authorize = recorder.url(&format!("/{name}/authorize")),
        token = recorder.url(&format!("/{name}/token")),
    );
    let config = Config::parse(&text, Path::new("airlock.toml"), dir.path()).unwrap();
    let vault = Arc::new(LocalVault::open(&config.vault.dir, &config.vault.key).unwrap());
    let broker =
        Broker::with_options(vault.clone(), &config.connections, BrokerOptions::default()).unwrap();
    Setup {
        _dir: dir,
        config,
        broker,
        vault,
        recorder,
    }
}

const REDIRECT: &str = "http://127.0.0.1:9/consent/callback";

impl Setup {
    /// Starts consent and returns the authorization URL's parameters.
    async fn begin(&self, name: &str) -> BTreeMap<String, String> {
        let redirect = url::Url::parse(REDIRECT).unwrap();
        let url = self
            .broker
            .begin_consent_with_redirect("alice", name, &[], &redirect)
            .await
            .unwrap();
        assert!(
            url.starts_with(&self.recorder.url(&format!("/{name}/authorize?"))),
            "{url}"
        );
        query(&url)
    }

    /// Runs a whole consent with the token endpoint answering `reply`.
    async fn link(&self, name: &str, reply: Value) -> BTreeMap<String, String> {
        let params = self.begin(name).await;
        self.recorder.reply(&format!("/{name}/token"), 200, reply);
        self.broker
            .complete_consent(&params["state"], "the-code")
            .await
            .unwrap();
        params
    }

    fn record(&self, name: &str) -> TokenRecord {
        self.vault.get("alice", name).unwrap().unwrap()
    }

    /// Makes the stored token expired and starts a new broker, as a host
    /// started after the token's lifetime would be (the old broker would
    /// still serve the token it cached while fresh).
    fn expire(&mut self, name: &str) {
        let record = self.record(name);
        let t = now();
        let expired = TokenRecord {
            expires_at: Some(t - 1),
            issued_at: Some(t - 3600),
            ..record
        };
        self.vault.put("alice", name, expired).unwrap();
        self.broker = Broker::with_options(
            self.vault.clone(),
            &self.config.connections,
            BrokerOptions::default(),
        )
        .unwrap();
    }

    async fn token(&self, name: &str) -> String {
        match self.broker.token("alice", name, &[]).await.unwrap() {
            TokenOutcome::Token(t) => plain(&t),
            other => panic!("expected a token, got {other:?}"),
        }
    }
}

/// Checks the common shape of an authorization request.
fn assert_authorize(params: &BTreeMap<String, String>, name: &str) {
    assert_eq!(params["client_id"], format!("client id/{name}"));
    assert_eq!(params["response_type"], "code");
    assert_eq!(params["redirect_uri"], REDIRECT);
    assert_eq!(params["code_challenge_method"], "S256");
    assert_eq!(params["code_challenge"].len(), 43);
    assert!(params["state"].len() >= 16);
}

/// Checks a token request and returns its form.
fn assert_token_request(
    seen: &Seen,
    name: &str,
    grant: &str,
    post_auth: bool,
) -> BTreeMap<String, String> {
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.path, format!("/{name}/token"));
    assert_eq!(
        seen.headers["content-type"],
        "application/x-www-form-urlencoded"
    );
    assert_eq!(seen.headers["accept"], "application/json");
    assert_eq!(seen.form["grant_type"], grant);
    if post_auth {
        assert_eq!(seen.form["client_id"], format!("client id/{name}"));
        assert_eq!(seen.form["client_secret"], SECRET);
        assert!(!seen.headers.contains_key("authorization"));
    } else {
        // RFC 6749 2.3.1: id and secret form-encoded, then Basic.
        let expected = base64::engine::general_purpose::STANDARD
            .encode(format!("client+id%2F{name}:{SECRET}"));
        assert_eq!(seen.headers["authorization"], format!("Basic {expected}"));
        assert!(!seen.form.contains_key("client_secret"));
    }
    seen.form.clone()
}

#[tokio::test]
async fn github_sends_post_auth_and_reads_comma_scopes_and_errors_sent_with_200() {
    let s = setup("github", |_| {
        "provider = \"github\"\nscopes = [\"repo\", \"read:user\"]".into()
    })
    .await;
    let params = s
        .link(
            "github",
            json!({"access_token": "gho_access_0123456789abcdef", "token_type": "bearer", "scope": "repo,read:user"}),
        )
        .await;
    assert_authorize(&params, "github");
    assert_eq!(params["scope"], "repo read:user");

    let seen = s.recorder.take();
    assert_eq!(seen.len(), 1);
    let form = assert_token_request(&seen[0], "github", "authorization_code", true);
    assert_eq!(form["code"], "the-code");
    assert_eq!(form["redirect_uri"], REDIRECT);
    assert_eq!(form["code_verifier"].len(), 43);

    let record = s.record("github");
    assert_eq!(record.scopes, ["read:user", "repo"]);
    assert!(record.refresh_token.is_none() && record.expires_at.is_none());
    // No expiry: served as is, nothing sent.
    assert_eq!(s.token("github").await, "gho_access_0123456789abcdef");
    assert!(s.recorder.take().is_empty());

    // An error answered with status 200 is an error.
    let params = s.begin("github").await;
    s.recorder.reply(
        "/github/token",
        200,
        json!({"error": "bad_verification_code", "error_description": "The code passed is incorrect or expired."}),
    );
    let err = s
        .broker
        .complete_consent(&params["state"], "stale")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("bad_verification_code"), "{err}");
    assert_eq!(s.token("github").await, "gho_access_0123456789abcdef");

    // GitHub revokes through its REST API, which goes with its token
    // endpoint; moved to an address of no known shape, the broker does not
    // guess where the API is, and keeps the record.
    s.recorder.take();
    let err = s.broker.revoke("alice", "github").await.unwrap_err();
    assert!(err.to_string().contains("set revoke_url"), "{err}");
    assert!(s.recorder.take().is_empty());
    assert!(s.vault.get("alice", "github").unwrap().is_some());
}

const GITHUB_GRANT: &str = "/api/v3/applications/client%20id%2Fgithub/grant";

#[tokio::test]
async fn github_revokes_the_grant_through_its_rest_api() {
    let mut s = setup("github", |port| {
        format!("provider = \"github\"\nrevoke_url = \"http://127.0.0.1:{port}{GITHUB_GRANT}\"")
    })
    .await;
    let access = "ghu_access_0123456789abcdef";
    s.link(
        "github",
        json!({"access_token": access, "token_type": "bearer", "expires_in": 28800, "refresh_token": "ghr_refresh_0123456789abcdef"}),
    )
    .await;
    s.recorder.take();

    s.recorder.reply(GITHUB_GRANT, 204, json!(null));
    let revoked = s.broker.revoke("alice", "github").await.unwrap();
    assert_eq!(revoked.at_provider, AtProvider::Revoked);
    assert!(revoked.removed);
    assert!(s.vault.get("alice", "github").unwrap().is_none());
    let seen = s.recorder.take();
    assert_eq!(seen.len(), 1);
    assert_github_revocation(&seen[0], access);

    // An expired access token cannot name the grant: it is refreshed
    // first, and the fresh one goes in the body.
    s.link(
        "github",
        json!({"access_token": access, "token_type": "bearer", "expires_in": 28800, "refresh_token": "ghr_refresh_0123456789abcdef"}),
    )
    .await;
    s.expire("github");
    s.recorder.take();
    s.recorder.reply(
        "/github/token",
        200,
        json!({"access_token": "ghu_fresh_0123456789abcdef", "token_type": "bearer", "expires_in": 28800, "refresh_token": "ghr_next_0123456789abcdef"}),
    );
    s.recorder.reply(GITHUB_GRANT, 204, json!(null));
    let revoked = s.broker.revoke("alice", "github").await.unwrap();
    assert_eq!(revoked.at_provider, AtProvider::Revoked);
    let seen = s.recorder.take();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].form["grant_type"], "refresh_token");
    assert_github_revocation(&seen[1], "ghu_fresh_0123456789abcdef");

    // 404 and 422: the grant is already gone; the record goes too.
    for status in [404, 422] {
        s.link(
            "github",
            json!({"access_token": access, "token_type": "bearer"}),
        )
        .await;
        s.recorder
            .reply(GITHUB_GRANT, status, json!({"message": "Not Found"}));
        let revoked = s.broker.revoke("alice", "github").await.unwrap();
        assert_eq!(revoked.at_provider, AtProvider::AlreadyGone, "{status}");
        assert!(revoked.removed && s.vault.get("alice", "github").unwrap().is_none());
    }

    // A refusal keeps the record and says why, quoting GitHub's message
    // unless it repeats a credential.
    s.link(
        "github",
        json!({"access_token": access, "token_type": "bearer"}),
    )
    .await;
    s.recorder.reply(
        GITHUB_GRANT,
        403,
        json!({"message": "Must have admin rights"}),
    );
    s.recorder.reply(
        GITHUB_GRANT,
        401,
        json!({"message": format!("bad credentials {SECRET} for {access}")}),
    );
    let err = s
        .broker
        .revoke("alice", "github")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("revocation failed: status 403 Forbidden: \"Must have admin rights\""),
        "{err}"
    );
    let err = s
        .broker
        .revoke("alice", "github")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("status 401"), "{err}");
    for secret in [SECRET, access, "bad credentials"] {
        assert!(!err.contains(secret), "{err}");
    }
    assert!(s.vault.get("alice", "github").unwrap().is_some());
}

/// Checks a revocation through GitHub's REST API.
fn assert_github_revocation(seen: &Seen, access: &str) {
    assert_eq!(seen.method, "DELETE");
    assert_eq!(seen.path, GITHUB_GRANT);
    // Plain Basic credentials, not form-encoded as at a token endpoint.
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("client id/github:{SECRET}"));
    assert_eq!(seen.headers["authorization"], format!("Basic {basic}"));
    assert_eq!(seen.headers["accept"], "application/vnd.github+json");
    assert_eq!(seen.headers["content-type"], "application/json");
    let body: Value = serde_json::from_slice(&seen.body).unwrap();
    assert_eq!(body, json!({ "access_token": access }));
}

#[tokio::test]
async fn google_asks_for_offline_access_and_keeps_the_refresh_token_a_reply_omits() {
    let mut s = setup("google", |port| {
        format!("provider = \"google\"\nscopes = [\"openid\", \"https://www.googleapis.com/auth/drive.readonly\"]\nrevoke_url = \"http://127.0.0.1:{port}/google/revoke\"")
    })
    .await;

    let params = s
        .link(
            "google",
            json!({"access_token": "ya29.access-0123456789", "expires_in": 3599, "refresh_token": "1//refresh-0123456789",
                   "scope": "openid https://www.googleapis.com/auth/drive.readonly", "token_type": "Bearer", "id_token": "x.y.z"}),
        )
        .await;
    assert_authorize(&params, "google");
    assert_eq!(params["access_type"], "offline");
    assert_eq!(params["prompt"], "consent");
    assert_eq!(params["include_granted_scopes"], "true");
    assert_eq!(
        params["scope"],
        "openid https://www.googleapis.com/auth/drive.readonly"
    );
    assert_token_request(&s.recorder.take()[0], "google", "authorization_code", true);

    s.expire("google");
    s.recorder.reply(
        "/google/token",
        200,
        json!({"access_token": "ya29.second-0123456789", "expires_in": 3599, "token_type": "Bearer"}),
    );
    assert_eq!(s.token("google").await, "ya29.second-0123456789");
    let seen = s.recorder.take();
    let form = assert_token_request(&seen[0], "google", "refresh_token", true);
    assert_eq!(form["refresh_token"], "1//refresh-0123456789");
    assert!(!form.contains_key("scope"));
    let record = s.record("google");
    assert_eq!(
        plain(record.refresh_token.as_ref().unwrap()),
        "1//refresh-0123456789"
    );
    assert!(record.expires_at.unwrap() >= now() + 3590);

    let revoked = s.broker.revoke("alice", "google").await.unwrap();
    assert!(revoked.at_provider == AtProvider::Revoked && revoked.removed);
    let seen = s.recorder.take();
    assert_eq!(
        (seen[0].method.as_str(), seen[0].path.as_str()),
        ("POST", "/google/revoke")
    );
    assert_eq!(seen[0].form["token"], "1//refresh-0123456789");
    assert_eq!(seen[0].form["token_type_hint"], "refresh_token");
    assert_eq!(seen[0].form["client_secret"], SECRET);
}

#[tokio::test]
async fn microsoft_adds_offline_access_reads_string_expiry_and_refreshes_default_scope_alone() {
    let mut s = setup("microsoft", |_| {
        "provider = \"microsoft\"\ntenant = \"contoso.com\"\nscopes = [\"https://graph.microsoft.com/.default\"]".into()
    })
    .await;
    let params = s
        .link(
            "microsoft",
            json!({"token_type": "Bearer", "scope": "User.Read Mail.Read", "expires_in": "3600", "ext_expires_in": "3600",
                   "access_token": "eyJ0eXAi.access-0123456789", "refresh_token": "0.AAAA-refresh-0123456789"}),
        )
        .await;
    assert_authorize(&params, "microsoft");
    assert_eq!(
        params["scope"],
        "https://graph.microsoft.com/.default offline_access"
    );
    assert_token_request(
        &s.recorder.take()[0],
        "microsoft",
        "authorization_code",
        true,
    );

    let record = s.record("microsoft");
    let expires = record.expires_at.expect("expires_in as a string is read");
    assert!(
        (now() + 3590..=now() + 3600).contains(&expires),
        "{expires}"
    );
    assert!(
        record
            .scopes
            .contains(&"https://graph.microsoft.com/.default".to_string())
    );
    match s
        .broker
        .token(
            "alice",
            "microsoft",
            &["https://graph.microsoft.com/.default".to_string()],
        )
        .await
        .unwrap()
    {
        TokenOutcome::Token(_) => {}
        other => panic!("the .default scope counts as granted: {other:?}"),
    }

    s.expire("microsoft");
    s.recorder.reply(
        "/microsoft/token",
        200,
        json!({"token_type": "Bearer", "scope": "User.Read Mail.Read", "expires_in": 3600,
               "access_token": "eyJ0eXAi.second-0123456789", "refresh_token": "0.AAAA-second-0123456789"}),
    );
    assert_eq!(s.token("microsoft").await, "eyJ0eXAi.second-0123456789");
    let seen = s.recorder.take();
    let form = assert_token_request(&seen[0], "microsoft", "refresh_token", true);
    assert_eq!(
        form["scope"],
        "https://graph.microsoft.com/.default offline_access"
    );
    assert_eq!(
        plain(s.record("microsoft").refresh_token.as_ref().unwrap()),
        "0.AAAA-second-0123456789"
    );
}

#[tokio::test]
async fn slack_asks_with_user_scope_and_stores_the_user_token_from_authed_user() {
    let mut s = setup("slack", |port| {
        format!("provider = \"slack\"\nscopes = [\"search:read\", \"users:read\"]\nrevoke_url = \"http://127.0.0.1:{port}/slack/revoke\"")
    })
    .await;
    let params = s
        .link(
            "slack",
            json!({"ok": true, "app_id": "A1", "access_token": "xoxb-bot-0123456789", "token_type": "bot", "scope": "chat:write",
                   "authed_user": {"id": "U1", "scope": "search:read,users:read", "access_token": "xoxp-user-0123456789",
                                   "token_type": "user", "refresh_token": "xoxe-1-refresh-0123456789", "expires_in": 43200},
                   "team": {"id": "T1"}}),
        )
        .await;
    assert_authorize(&params, "slack");
    assert_eq!(params["user_scope"], "search:read,users:read");
    assert!(!params.contains_key("scope"));
    assert_token_request(&s.recorder.take()[0], "slack", "authorization_code", true);

    let record = s.record("slack");
    assert_eq!(plain(&record.access_token), "xoxp-user-0123456789");
    assert_eq!(record.scopes, ["search:read", "users:read"]);

    // A refresh Slack refuses with ok:false and status 200 ends the link.
    s.expire("slack");
    s.recorder.reply(
        "/slack/token",
        200,
        json!({"ok": false, "error": "invalid_refresh_token"}),
    );
    match s.broker.token("alice", "slack", &[]).await.unwrap() {
        TokenOutcome::AuthorizationRequired(r) => assert_eq!(r.reason, "refresh_rejected"),
        other => panic!("expected authorization required, got {other:?}"),
    }
    let seen = s.recorder.take();
    let form = assert_token_request(&seen[0], "slack", "refresh_token", true);
    assert_eq!(form["refresh_token"], "xoxe-1-refresh-0123456789");
    assert!(s.vault.get("alice", "slack").unwrap().is_none());
}

#[tokio::test]
async fn box_refresh_tokens_are_single_use_and_each_refresh_sends_the_newest() {
    let mut s = setup("box", |port| {
        format!("provider = \"box\"\nrevoke_url = \"http://127.0.0.1:{port}/box/revoke\"")
    })
    .await;
    s.link(
        "box",
        json!({"access_token": "box-access-1-0123456789", "expires_in": 3600, "restricted_to": [],
               "refresh_token": "box-refresh-1-0123456789", "token_type": "bearer"}),
    )
    .await;
    s.recorder.take();
    for n in 2..=3 {
        s.expire("box");
        s.recorder.reply(
            "/box/token",
            200,
            json!({"access_token": format!("box-access-{n}-0123456789"), "expires_in": 3600, "restricted_to": [],
                   "refresh_token": format!("box-refresh-{n}-0123456789"), "token_type": "bearer"}),
        );
        assert_eq!(s.token("box").await, format!("box-access-{n}-0123456789"));
        let seen = s.recorder.take();
        let form = assert_token_request(&seen[0], "box", "refresh_token", true);
        assert_eq!(
            form["refresh_token"],
            format!("box-refresh-{}-0123456789", n - 1)
        );
    }

    let revoked = s.broker.revoke("alice", "box").await.unwrap();
    assert_eq!(revoked.at_provider, AtProvider::Revoked);
    let seen = s.recorder.take();
    assert_eq!(seen[0].path, "/box/revoke");
    assert_eq!(seen[0].form["token"], "box-refresh-3-0123456789");
    assert_eq!(seen[0].form["client_id"], "client id/box");
}

#[tokio::test]
async fn custom_endpoints_use_basic_auth_and_a_rejected_revocation_keeps_the_record() {
    let s = setup("custom", |port| {
        format!("provider = \"custom\"\nscopes = [\"read\"]\nrevoke_url = \"http://127.0.0.1:{port}/custom/revoke\"")
    })
    .await;
    s.link(
        "custom",
        json!({"access_token": "custom-access-0123456789", "token_type": "Bearer", "expires_in": 600, "refresh_token": "custom-refresh-0123456789"}),
    )
    .await;
    assert_token_request(&s.recorder.take()[0], "custom", "authorization_code", false);
    assert_eq!(s.record("custom").scopes, ["read"]);

    s.recorder.reply(
        "/custom/revoke",
        503,
        json!({"error": "temporarily_unavailable"}),
    );
    let err = s.broker.revoke("alice", "custom").await.unwrap_err();
    assert!(err.to_string().contains("temporarily_unavailable"), "{err}");
    assert!(s.vault.get("alice", "custom").unwrap().is_some());
    let seen = s.recorder.take();
    assert!(seen[0].headers.contains_key("authorization"));
    assert_eq!(seen[0].form["token_type_hint"], "refresh_token");
}
