//! Support for the serving tests: `airlock serve --http` as a child process,
//! the MCP Python SDK driven by `tests/mcp/client.py`, a plain HTTP client,
//! and an OIDC issuer with a key pair made in the test.

use crate::oauth_support::{CLIENT_ID, Op};
use crate::support::{Fixture, sha256_file};
use airlock_tests::{guests, peers};
use serde_json::{Value, json};
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// API key of the caller that may act only for alice.
pub const ALICE_KEY: &str = "ak-alice-0b8f3c2d9e7a41f6a5c4d3e2f1a0b9c8";
/// API key of the caller that may act for any user.
pub const ANY_KEY: &str = "ak-any-5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b";

/// The `[serve]` and `[callers]` sections of the serving tests, plus `extra`.
pub fn serve_config(extra: &str) -> String {
    use sha2::Digest as _;
    let hash = |key: &str| hex::encode(sha2::Sha256::digest(key.as_bytes()));
    format!(
        r#"
[serve]
consent_fallback_url = "http://127.0.0.1:9/link?connection={{connection}}&user={{user}}"
progress_interval_ms = 200
shutdown_grace_ms = 10000
{extra}

[callers.keys.agent-alice]
sha256 = "{alice}"
users = ["alice"]

[callers.keys.agent-any]
sha256 = "{any}"
users = ["*"]
"#,
        alice = hash(ALICE_KEY),
        any = hash(ANY_KEY),
    )
}

/// The consent URL the fallback gives `user` for the `demo` connection.
pub fn fallback_url(user: &str) -> String {
    format!("http://127.0.0.1:9/link?connection=demo&user={user}")
}

/// A fixture with the serving sections; `extra` goes into `[serve]`, and
/// `callers` is appended as it is (for `[callers.oidc]`).
pub fn fixture(extra: &str, callers: &str) -> Fixture {
    let config = format!("{}{callers}", serve_config(extra));
    Fixture::with_endpoints(&[&config])
}

/// A fixture whose `demo` connection is a real OAuth server (`oidc-provider`)
/// and whose consent routes are those of `airlock serve --http` on
/// `consent_port`; the fetch tool may GET anything on httpbin with the
/// `demo` token.
pub struct ConsentFixture {
    pub fx: Fixture,
    pub op: Op,
    pub consent_port: u16,
}

impl ConsentFixture {
    pub fn new() -> ConsentFixture {
        let op = Op::start(json!({}));
        let httpbin = peers::httpbin();
        let consent_port = free_port();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("client.secret"), &op.client_secret).unwrap();
        let wasm = guests::FETCH;
        let config = format!(
            r#"
[vault]
dir = "data"

[audit]
dir = "audit"

[host]
consent_base_url = "http://127.0.0.1:{consent_port}"

[connections.demo]
audience = ["http://127.0.0.1:{port}"]
provider = "oidc"
issuer = "{issuer}"
client_id = "{CLIENT_ID}"
client_secret_file = "client.secret"
scopes = ["openid", "profile"]

[tools.fetch]
source = "{wasm}"
sha256 = "{digest}"

[[tools.fetch.endpoints]]
url = "http://127.0.0.1:{port}/**"
methods = ["GET"]
connection = "demo"
allow_private = true
{serve}"#,
            port = httpbin.port,
            issuer = op.issuer,
            digest = sha256_file(Path::new(wasm)),
            serve = serve_config(""),
        );
        let config_path = dir.path().join("airlock.toml");
        std::fs::write(&config_path, config).unwrap();
        let fx = Fixture {
            dir,
            config_path,
            upstream: httpbin.url.clone(),
            port: httpbin.port,
        };
        ConsentFixture {
            fx,
            op,
            consent_port,
        }
    }

    /// `airlock serve --http` on the consent port, with this config.
    pub fn serve(&self) -> HttpServer {
        HttpServer::start_on(&self.fx.config_path, self.consent_port)
    }

    /// `airlock serve --http` on the consent port with a copy of the config
    /// that audits to `audit-consent` (an audit directory has one writer),
    /// for a stdio session that needs the consent routes beside it.
    pub fn serve_beside(&self) -> HttpServer {
        let text = std::fs::read_to_string(&self.fx.config_path)
            .unwrap()
            .replace("dir = \"audit\"", "dir = \"audit-consent\"");
        let path: PathBuf = self.fx.dir.path().join("airlock-consent.toml");
        std::fs::write(&path, text).unwrap();
        HttpServer::start_on(&path, self.consent_port)
    }

    /// Where consent starts for this host.
    pub fn consent_start(&self) -> String {
        format!("http://127.0.0.1:{}/consent/start?", self.consent_port)
    }

    /// Where the provider sends the browser back.
    pub fn consent_callback(&self) -> String {
        format!("http://127.0.0.1:{}/consent/callback?", self.consent_port)
    }

    /// The stored record of (user, demo).
    pub fn record(&self, user: &str) -> Option<airlock::vault::TokenRecord> {
        self.vault().get(user, "demo").unwrap()
    }

    /// Marks the stored access token of (user, demo) as expired, so the
    /// next call refreshes it.
    pub fn expire(&self, user: &str) {
        let vault = self.vault();
        let record = vault.get(user, "demo").unwrap().unwrap();
        let now = crate::oauth_support::now();
        let expired = airlock::vault::TokenRecord {
            expires_at: Some(now - 10),
            issued_at: Some(now - 3600),
            ..record
        };
        vault.put(user, "demo", expired).unwrap();
    }

    fn vault(&self) -> airlock::vault::LocalVault {
        let config = self.fx.config();
        airlock::vault::LocalVault::open(&config.vault.dir, &config.vault.key).unwrap()
    }
}

/// `airlock serve --http 127.0.0.1:0`, killed when dropped.
pub struct HttpServer {
    pub child: Child,
    pub base: String,
    pub port: u16,
}

impl HttpServer {
    pub fn start(fx: &Fixture) -> HttpServer {
        HttpServer::spawn(fx, "warn", Stdio::inherit())
    }

    /// Starts the server with debug logging written to `log`.
    pub fn start_logged(fx: &Fixture, log: &std::path::Path) -> HttpServer {
        let file = std::fs::File::create(log).unwrap();
        HttpServer::spawn(fx, "debug", Stdio::from(file))
    }

    /// Starts the server with the config at `config` on `port` of
    /// 127.0.0.1 (see [`free_port`]), for configs that name the server's
    /// address before it starts.
    pub fn start_on(config: &Path, port: u16) -> HttpServer {
        HttpServer::spawn_at(config, port, "warn", Stdio::inherit())
    }

    fn spawn(fx: &Fixture, log_level: &str, stderr: Stdio) -> HttpServer {
        HttpServer::spawn_at(&fx.config_path, 0, log_level, stderr)
    }

    fn spawn_at(config: &Path, port: u16, log_level: &str, stderr: Stdio) -> HttpServer {
        let mut child = Command::new(env!("CARGO_BIN_EXE_airlock"))
            .arg("--config")
            .arg(config)
            .args(["serve", "--http", &format!("127.0.0.1:{port}")])
            .env("AIRLOCK_LOG", log_level)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("starting airlock serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let base = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("airlock serve printed {line:?}"))
            .to_string();
        let port = base.rsplit(':').next().unwrap().parse().unwrap();
        HttpServer { child, base, port }
    }

    pub fn mcp_url(&self) -> String {
        format!("{}/mcp", self.base)
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit, up to `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Runs `tests/mcp/client.py` with `plan`, whose elicitation action is
/// `ask`: each elicitation the client receives is handed to `answer`, which
/// acts as the user and returns the client's answer (`{"action": ...}`).
/// Returns the report.
pub fn mcp_asking(mut plan: Value, mut answer: impl FnMut(&Value) -> Value) -> Value {
    plan["elicitation"] = json!({ "action": "ask" });
    let mut child = Command::new(peers::python())
        .arg(peers::root().join("tests/mcp/client.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starting the MCP client");
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "{plan}").unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut report = None;
    for line in lines.by_ref() {
        let line: Value = serde_json::from_str(&line.unwrap()).expect("a JSON line");
        match line.get("elicit") {
            Some(params) => {
                let reply = answer(params);
                writeln!(stdin, "{reply}").unwrap();
            }
            None => report = Some(line),
        }
    }
    let status = child.wait().unwrap();
    report.unwrap_or_else(|| panic!("MCP client wrote no report ({status})"))
}

/// Runs `tests/mcp/client.py` with `plan` and returns its report.
pub fn mcp(plan: Value) -> Value {
    let mut child = Command::new(peers::python())
        .arg(peers::root().join("tests/mcp/client.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting the MCP client");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(plan.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.trim()).unwrap_or_else(|_| {
        panic!(
            "MCP client report is not JSON ({}):\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// A plan against the HTTP server with `headers` (API key, user).
pub fn http_plan(server: &HttpServer, headers: Value, mode: &str, steps: Value) -> Value {
    json!({
        "server": { "url": server.mcp_url(), "headers": headers },
        "mode": mode,
        "elicitation": null,
        "steps": steps,
    })
}

/// A plan that starts `airlock serve --stdio --user USER` itself.
pub fn stdio_plan(fx: &Fixture, user: &str, mode: &str, steps: Value) -> Value {
    json!({
        "server": {
            "command": env!("CARGO_BIN_EXE_airlock"),
            "args": ["--config", fx.config_path, "serve", "--stdio", "--user", user],
            "env": { "AIRLOCK_LOG": "warn" },
        },
        "mode": mode,
        "elicitation": null,
        "steps": steps,
    })
}

/// Bearer headers for `key`, acting for `user` when given.
pub fn key_headers(key: &str, user: Option<&str>) -> Value {
    let mut h = json!({ "Authorization": format!("Bearer {key}") });
    if let Some(user) = user {
        h["Airlock-User"] = user.into();
    }
    h
}

/// The report's session error, or a panic naming the report.
pub fn assert_no_error(report: &Value) {
    assert!(report["error"].is_null(), "MCP session failed: {report:#}");
}

/// One plain HTTP/1.1 request on loopback; returns status and body.
pub fn http(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> (u16, String) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(http_async(method, url, headers, body))
}

async fn http_async(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> (u16, String) {
    use http_body_util::{BodyExt as _, Full};
    let uri: http::Uri = url.parse().unwrap();
    let authority = uri.authority().unwrap().to_string();
    let stream = tokio::net::TcpStream::connect(&authority).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let mut request = http::Request::builder()
        .method(method)
        .uri(uri.path_and_query().unwrap().as_str());
    if !headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("host"))
    {
        request = request.header("host", authority);
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if body.is_some() {
        request = request.header("content-type", "application/json");
    }
    let request = request
        .body(Full::new(bytes::Bytes::from(
            body.unwrap_or("").to_string(),
        )))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

/// Checks that `airlock audit verify` accepts the audit of `fx` and that
/// every `call_start` in it has a `call_end`; returns the reasons of the
/// call ends, by call id.
pub fn assert_audit_whole(fx: &Fixture) -> std::collections::BTreeMap<String, String> {
    use airlock::audit::EventKind;
    let out = fx.airlock(&["audit", "verify"], None);
    assert!(
        out.status.success(),
        "audit verify failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let events = audit_events(fx, Default::default());
    let ends: std::collections::BTreeMap<String, String> = events
        .iter()
        .filter(|e| e.kind == EventKind::CallEnd)
        .map(|e| (e.call_id.clone(), e.reason.clone().unwrap_or_default()))
        .collect();
    for start in events.iter().filter(|e| e.kind == EventKind::CallStart) {
        assert!(
            ends.contains_key(&start.call_id),
            "call {} started but never ended: {events:#?}",
            start.call_id
        );
    }
    ends
}

/// Audit events of `fx` that match `filter`.
pub fn audit_events(fx: &Fixture, filter: airlock::audit::Filter) -> Vec<airlock::audit::Event> {
    // A running server's writer appends recorded events within a few
    // milliseconds (it lets them gather for 2 ms), not before `record`
    // returns: give the last ones time to reach the file.
    std::thread::sleep(std::time::Duration::from_millis(100));
    airlock::audit::query(&fx.audit_dir(), &filter).unwrap()
}

/// An OIDC issuer on loopback with an ES256 key pair made for this test: it
/// serves its discovery document and JWKS, and mints tokens.
pub struct Issuer {
    pub url: String,
    key: jsonwebtoken::EncodingKey,
    _runtime: tokio::runtime::Runtime,
}

/// The key id the issuer publishes.
pub const KID: &str = "test-key-1";

impl Issuer {
    pub fn start() -> Issuer {
        let (pkcs8, jwk) = es256_key(KID);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let discovery = json!({ "issuer": url, "jwks_uri": format!("{url}/jwks") });
        let jwks = json!({ "keys": [jwk] });
        let app = axum::Router::new()
            .route(
                "/.well-known/openid-configuration",
                axum::routing::get(move || async move { axum::Json(discovery) }),
            )
            .route(
                "/jwks",
                axum::routing::get(move || async move { axum::Json(jwks) }),
            );
        runtime.spawn(async move { axum::serve(listener, app).await });
        Issuer {
            url,
            key: jsonwebtoken::EncodingKey::from_ec_der(&pkcs8),
            _runtime: runtime,
        }
    }

    /// The `[callers.oidc]` section for this issuer.
    pub fn config(&self) -> String {
        format!(
            "\n[callers.oidc]\nissuer = \"{}\"\naudience = \"airlock-test\"\n",
            self.url
        )
    }

    /// A token with `claims` over the defaults (this issuer, the audience,
    /// subject alice, valid for 5 minutes), signed with this issuer's key.
    pub fn mint(&self, claims: Value) -> String {
        sign(&self.key, KID, self.claims(claims))
    }

    /// The default claims with `overrides` applied.
    pub fn claims(&self, overrides: Value) -> Value {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let mut claims = json!({
            "iss": self.url,
            "aud": "airlock-test",
            "sub": "alice",
            "azp": "test-agent",
            "iat": now,
            "exp": now + 300,
        });
        for (k, v) in overrides.as_object().unwrap() {
            claims[k] = v.clone();
        }
        claims
    }
}

/// Signs `claims` as ES256 with `key` under `kid`.
pub fn sign(key: &jsonwebtoken::EncodingKey, kid: &str, claims: Value) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some(kid.into());
    jsonwebtoken::encode(&header, &claims, key).unwrap()
}

/// A fresh P-256 key pair: its PKCS#8 document and its public JWK.
pub fn es256_key(kid: &str) -> (Vec<u8>, Value) {
    use base64::Engine as _;
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let pair =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    // Uncompressed point: 0x04, then x and y of 32 bytes each.
    let point = pair.public_key().as_ref();
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let jwk = json!({
        "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": kid,
        "x": b64(&point[1..33]), "y": b64(&point[33..65]),
    });
    (pkcs8.as_ref().to_vec(), jwk)
}

/// A key made for signing forgeries: same kid as the issuer's, other key.
pub fn forger_key() -> jsonwebtoken::EncodingKey {
    let (pkcs8, _) = es256_key(KID);
    jsonwebtoken::EncodingKey::from_ec_der(&pkcs8)
}
