//! Support for the OAuth tests: a real `oidc-provider` (npm) per test, a
//! config whose `demo` connection uses it through OpenID Connect discovery,
//! and a small cookie-keeping HTTP client that walks the consent redirects
//! the way a browser would (the provider's interaction step answers at once
//! for its test account).

use crate::support::{canary, sha256_file};
use airlock::audit::{AuditConfig, AuditLog};
use airlock::broker::{Broker, BrokerOptions};
use airlock::manifest::Config;
use airlock::runtime::Host;
use airlock::secret::Secret;
use airlock::vault::{LocalVault, TokenRecord};
use airlock_tests::guests;
use airlock_tests::peers::{self, Peer};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

pub const CLIENT_ID: &str = "airlock-test";

/// A running authorization server.
pub struct Op {
    _peer: Peer,
    pub issuer: String,
    pub client_secret: String,
}

impl Op {
    /// Starts one with `settings` (see tests/peers/oidc_server.mjs) and a
    /// canary client secret.
    pub fn start(mut settings: Value) -> Op {
        let client_secret = format!("client-secret-{}", canary());
        settings["client_id"] = json!(CLIENT_ID);
        settings["client_secret"] = json!(client_secret);
        let peer = peers::oidc_provider(&settings.to_string());
        Op {
            issuer: peer.url.clone(),
            _peer: peer,
            client_secret,
        }
    }

    /// The server's counters: successful grants by type, errors by text.
    pub async fn stats(&self) -> Value {
        let page = Browser::default()
            .get(&format!("{}/__stats", self.issuer))
            .await;
        serde_json::from_str(&page.body).unwrap()
    }

    /// Successful refresh grants so far.
    pub async fn refreshes(&self) -> u64 {
        self.stats().await["grants"]["refresh_token"]
            .as_u64()
            .unwrap_or(0)
    }

    /// Revokes `token` (and with it the whole grant) at the provider, as a
    /// user removing the app there would.
    pub async fn revoke(&self, token: &Secret) {
        let page = Browser::default()
            .post_form(
                &format!("{}/token/revocation", self.issuer),
                (CLIENT_ID, &self.client_secret),
                &[("token", &plain(token))],
            )
            .await;
        assert_eq!(page.status, 200, "{}", page.body);
    }

    /// Refresh tokens presented after they were already used.
    pub async fn reuses(&self) -> u64 {
        let stats = self.stats().await;
        stats["errors"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, _)| k.contains("already used"))
            .map(|(_, v)| v.as_u64().unwrap())
            .sum()
    }
}

/// A config, vault and audit directory around one provider.
pub struct OAuthFixture {
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
    pub op: Op,
}

impl OAuthFixture {
    /// The `fetch` tool may GET the provider's userinfo endpoint (`/me`)
    /// with the `demo` connection's token, which needs `scopes`.
    pub fn new(settings: Value, scopes: &[&str], extra: &str) -> OAuthFixture {
        let op = Op::start(settings);
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("client.secret"), &op.client_secret).unwrap();
        let wasm = guests::FETCH;
        let config = format!(
            r#"
[vault]
dir = "data"

[audit]
dir = "audit"
{extra}
[connections.demo]
audience = ["{issuer}"]
provider = "oidc"
issuer = "{issuer}"
client_id = "{CLIENT_ID}"
client_secret_file = "client.secret"
scopes = ["openid", "profile"]

[tools.fetch]
source = "{wasm}"
sha256 = "{digest}"

[[tools.fetch.endpoints]]
url = "{issuer}/me"
methods = ["GET"]
connection = "demo"
scopes = {scopes:?}
allow_private = true
"#,
            issuer = op.issuer,
            digest = sha256_file(Path::new(wasm)),
        );
        let config_path = dir.path().join("airlock.toml");
        std::fs::write(&config_path, config).unwrap();
        OAuthFixture {
            dir,
            config_path,
            op,
        }
    }

    pub fn config(&self) -> Config {
        Config::load(&self.config_path).unwrap()
    }

    pub fn vault(&self) -> Arc<LocalVault> {
        let c = self.config();
        Arc::new(LocalVault::open(&c.vault.dir, &c.vault.key).unwrap())
    }

    pub fn broker(&self, options: BrokerOptions) -> Broker {
        let config = self.config();
        Broker::with_options(self.vault(), &config.connections, options).unwrap()
    }

    /// A host over `broker`. Each host writes its own audit directory: an
    /// audit directory belongs to one writer at a time.
    pub fn host(&self, broker: Broker) -> Host {
        static HOSTS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = HOSTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let config = self.config();
        let audit =
            AuditLog::open(AuditConfig::new(config.audit.dir.join(format!("host-{n}")))).unwrap();
        Host::with_broker(&config, broker, audit).unwrap()
    }

    /// A copy of the config that writes audit events to `audit/NAME`, for a
    /// second process sharing the vault.
    pub fn second_config(&self, name: &str) -> PathBuf {
        let text = std::fs::read_to_string(&self.config_path)
            .unwrap()
            .replace("dir = \"audit\"", &format!("dir = \"audit/{name}\""));
        let path = self.dir.path().join(format!("airlock-{name}.toml"));
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Links `user` through the library: the consent redirects are walked
    /// until the provider sends the browser back, and the callback's
    /// parameters are handed to the broker.
    pub async fn link(&self, broker: &Broker, user: &str) {
        let redirect = url::Url::parse("http://127.0.0.1:9/consent/callback").unwrap();
        let start = broker
            .begin_consent_with_redirect(user, "demo", &[], &redirect)
            .await
            .unwrap();
        let back = Browser::default().walk(&start, "http://127.0.0.1:9/").await;
        let params = query(&back);
        let linked = broker
            .complete_consent_from(
                &params["state"],
                &params["code"],
                params.get("iss").map(String::as_str),
            )
            .await
            .unwrap();
        assert_eq!(linked, (user.to_string(), "demo".to_string()));
    }

    /// Marks the stored access token of (user, demo) as expired.
    pub fn expire(&self, user: &str) {
        let vault = self.vault();
        let record = vault.get(user, "demo").unwrap().unwrap();
        let now = now();
        vault
            .put(
                user,
                "demo",
                TokenRecord {
                    expires_at: Some(now - 10),
                    issued_at: Some(now - 3600),
                    ..record
                },
            )
            .unwrap();
    }

    /// The stored record of (user, demo).
    pub fn record(&self, user: &str) -> Option<TokenRecord> {
        self.vault().get(user, "demo").unwrap()
    }

    /// Runs the `airlock` binary with this fixture's config.
    pub fn airlock(&self, args: &[&str]) -> Output {
        self.airlock_command(args).output().unwrap()
    }

    pub fn airlock_command(&self, args: &[&str]) -> Command {
        self.airlock_command_with(&self.config_path, args)
    }

    /// Runs the binary with another config file.
    pub fn airlock_command_with(&self, config: &Path, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_airlock"));
        command
            .arg("--config")
            .arg(config)
            .args(args)
            .env("AIRLOCK_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    /// Calls fetch on `/me` as `user` through the CLI.
    pub fn call_me(&self, user: &str) -> Output {
        let args = json!({ "url": format!("{}/me", self.op.issuer) }).to_string();
        self.airlock(&["call", "fetch.fetch", "--user", user, "--args", &args])
    }
}

/// The plaintext of a secret, for comparisons and canary searches.
pub fn plain(secret: &Secret) -> String {
    String::from_utf8(secret.header_value("").as_bytes().to_vec()).unwrap()
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The query parameters of `url`.
pub fn query(url: &str) -> BTreeMap<String, String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

/// One answer.
#[derive(Debug)]
pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub body: String,
}

/// Keeps cookies and follows redirects, as a browser would on the
/// provider's consent pages.
#[derive(Debug, Default)]
pub struct Browser {
    cookies: BTreeMap<String, String>,
}

impl Browser {
    /// GETs `url` (http on loopback only).
    pub async fn get(&mut self, url: &str) -> Page {
        let parsed = url::Url::parse(url).unwrap();
        assert_eq!(parsed.scheme(), "http");
        let host = parsed.host_str().unwrap().to_string();
        assert!(host == "127.0.0.1" || host == "localhost", "{url}");
        let port = parsed.port().unwrap();
        let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
            .await
            .unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .unwrap();
        tokio::spawn(conn);
        let mut target = parsed.path().to_string();
        if let Some(q) = parsed.query() {
            target = format!("{target}?{q}");
        }
        let mut request = http::Request::get(target).header("host", format!("{host}:{port}"));
        if !self.cookies.is_empty() {
            let cookie = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ");
            request = request.header("cookie", cookie);
        }
        let response = sender
            .send_request(request.body(Empty::<Bytes>::new()).unwrap())
            .await
            .unwrap();
        for value in response.headers().get_all("set-cookie") {
            let text = value.to_str().unwrap();
            let pair = text.split(';').next().unwrap();
            if let Some((k, v)) = pair.split_once('=') {
                self.cookies.insert(k.trim().to_string(), v.to_string());
            }
        }
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get("location")
            .map(|l| parsed.join(l.to_str().unwrap()).unwrap().to_string());
        let body = response.into_body().collect().await.unwrap().to_bytes();
        Page {
            status,
            location,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }

    /// POSTs a form with HTTP Basic client authentication.
    pub async fn post_form(
        &mut self,
        url: &str,
        basic: (&str, &str),
        form: &[(&str, &str)],
    ) -> Page {
        use base64::Engine as _;
        let parsed = url::Url::parse(url).unwrap();
        let port = parsed.port().unwrap();
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .unwrap();
        tokio::spawn(conn);
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let auth =
            base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", basic.0, basic.1));
        let request = http::Request::post(parsed.path())
            .header("host", format!("127.0.0.1:{port}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("authorization", format!("Basic {auth}"))
            .body(http_body_util::Full::new(Bytes::from(body)))
            .unwrap();
        let response = sender.send_request(request).await.unwrap();
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        Page {
            status,
            location: None,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }

    /// Follows redirects from `url` until one points under `stop`, and
    /// returns that URL without fetching it.
    pub async fn walk(&mut self, url: &str, stop: &str) -> String {
        let mut url = url.to_string();
        for _ in 0..20 {
            if url.starts_with(stop) {
                return url;
            }
            let page = self.get(&url).await;
            match page.location {
                Some(next) if (300..400).contains(&page.status) => url = next,
                _ => panic!("consent stopped at {url}: {} {}", page.status, page.body),
            }
        }
        panic!("too many redirects from {url}")
    }

    /// Follows redirects from `url` to the first answer that is not one.
    pub async fn follow(&mut self, url: &str) -> (String, Page) {
        let mut url = url.to_string();
        for _ in 0..20 {
            let page = self.get(&url).await;
            match &page.location {
                Some(next) if (300..400).contains(&page.status) => url = next.clone(),
                _ => return (url, page),
            }
        }
        panic!("too many redirects from {url}")
    }
}
