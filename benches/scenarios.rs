//! The measurements: each one runs against the real host (`echo` and
//! `fetch` components, vault, audit log) and, where there is one, against a
//! native baseline doing the same work in the same process.

use crate::stats::{Samples, concurrent, sequential};
use crate::upstream::{SLOW, Upstream};
use airlock::audit::{AuditConfig, AuditLog};
use airlock::broker::TokenOutcome;
use airlock::manifest::Config;
use airlock::runtime::cache::{CacheOutcome, CompileCache};
use airlock::runtime::{CallError, CallRequest, Host};
use airlock::secret::Secret;
use airlock::tools::ToolOutput;
use airlock::vault::TokenRecord;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty};
use sha2::Digest as _;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The user whose token is valid.
const USER: &str = "bench-user";
/// The user whose token has expired.
const EXPIRED_USER: &str = "bench-expired";
/// The token stored for both (also sent by the native client).
const TOKEN: &str = "bench-token-0123456789abcdef0123456789abcdef";

/// How many operations each measurement runs.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    pub trivial: usize,
    pub get_c1: usize,
    pub get_c32: usize,
    pub compiles: usize,
    pub hits: usize,
    pub tokens: usize,
    pub warmup: usize,
}

impl Sizes {
    pub fn full() -> Sizes {
        Sizes {
            trivial: 20_000,
            get_c1: 5_000,
            get_c32: 20_000,
            compiles: 3,
            hits: 50,
            tokens: 20_000,
            warmup: 500,
        }
    }

    pub fn quick() -> Sizes {
        Sizes {
            trivial: 300,
            get_c1: 200,
            get_c32: 640,
            compiles: 1,
            hits: 5,
            tokens: 300,
            warmup: 20,
        }
    }
}

/// The host under test and what it talks to.
pub struct Bench {
    pub host: Arc<Host>,
    /// The same tools with the audit log disabled, to show what it costs.
    pub unaudited: Arc<Host>,
    pub upstream: Upstream,
    pub dir: tempfile::TempDir,
    pub rss_after_load: u64,
    echo: String,
}

impl Bench {
    /// Writes a config for the `echo` and `fetch` tools, loads the host and
    /// stores a valid and an expired token.
    pub fn start() -> Bench {
        let upstream = Upstream::start();
        let dir = tempfile::tempdir().expect("creating a temporary directory");
        let config_path = dir.path().join("airlock.toml");
        std::fs::write(&config_path, config_toml(upstream.port)).unwrap();
        let config = Config::load(&config_path).expect("loading the benchmark config");
        let audit = AuditLog::open(AuditConfig::new(&config.audit.dir)).unwrap();
        let host = Host::load(&config, audit).expect("loading the host");
        let rss_after_load = rss_bytes();
        let unaudited = Host::load(&config, AuditLog::disabled()).expect("loading the host");

        let vault = host.egress().broker.vault();
        let now = now_secs();
        for (user, expires_at) in [(USER, now + 86_400), (EXPIRED_USER, now - 10)] {
            let record = TokenRecord {
                access_token: Secret::new(TOKEN.as_bytes().to_vec()).unwrap(),
                refresh_token: Some(
                    Secret::new(b"bench-refresh-token-0123456789abcdef".to_vec()).unwrap(),
                ),
                expires_at: Some(expires_at),
                issued_at: Some(expires_at.saturating_sub(86_400)),
                scopes: vec![],
                version: 0,
            };
            vault.put(user, "demo", record).unwrap();
        }
        let echo = host
            .tools()
            .into_iter()
            .map(|t| t.name)
            .find(|n| n.starts_with("echo."))
            .expect("the echo tool is listed");
        Bench {
            host: Arc::new(host),
            unaudited: Arc::new(unaudited),
            upstream,
            dir,
            rss_after_load,
            echo,
        }
    }

    fn echo_call(&self) -> CallRequest {
        CallRequest {
            tool: self.echo.clone(),
            user: USER.into(),
            caller: "bench".into(),
            args: serde_json::json!({ "message": "hello" }),
        }
    }

    fn fetch_call(&self, user: &str, path: &str) -> CallRequest {
        CallRequest {
            tool: "fetch.fetch".into(),
            user: user.into(),
            caller: "bench".into(),
            args: serde_json::json!({ "url": format!("{}{path}", self.upstream.url()) }),
        }
    }

    /// Item 1: a trivial call, each in a fresh instance; one caller, then
    /// two (one per core).
    pub async fn trivial(&self, host: &Arc<Host>, sizes: Sizes) -> (Samples, Samples) {
        let (host, request) = (host.clone(), self.echo_call());
        let call = move || {
            let (host, request) = (host.clone(), request.clone());
            async move {
                let out = host.call(request).await.expect("echo call failed");
                assert!(matches!(out.output, ToolOutput::Ok(_)), "{:?}", out.output);
            }
        };
        sequential(sizes.warmup, call.clone()).await;
        let one = sequential(sizes.trivial, call.clone()).await;
        let two = concurrent(2, sizes.trivial, call).await;
        (one, two)
    }

    /// Item 2: the same keep-alive GET through the fetch tool and through a
    /// native hyper client, at `workers` concurrent callers.
    pub async fn get(
        &self,
        host: &Arc<Host>,
        workers: usize,
        n: usize,
        warmup: usize,
    ) -> (Samples, Samples) {
        let native = NativeClient::new(&self.upstream.url());
        let native_op = move || {
            let native = native.clone();
            async move { native.get().await }
        };
        let host = host.clone();
        let request = self.fetch_call(USER, "/small.json");
        let airlock_op = move || {
            let (host, request) = (host.clone(), request.clone());
            async move { expect_ok(host.call(request).await) }
        };
        concurrent(workers, warmup * workers, native_op.clone()).await;
        concurrent(workers, warmup * workers, airlock_op.clone()).await;
        // Alternate halves, so that drift in the machine's load falls on both.
        let mut native = concurrent(workers, n / 2, native_op.clone()).await;
        let mut airlock = concurrent(workers, n / 2, airlock_op.clone()).await;
        let native2 = concurrent(workers, n / 2, native_op).await;
        let airlock2 = concurrent(workers, n / 2, airlock_op).await;
        native.extend(native2);
        airlock.extend(airlock2);
        (airlock, native)
    }

    /// Item 2, attribution: a fetch call whose URL the policy denies, so
    /// the instance and the gate run but no request goes out.
    pub async fn denied(&self, n: usize) -> Samples {
        // Not granted (another port): refused before any name lookup.
        let mut request = self.fetch_call(USER, "");
        request.args = serde_json::json!({ "url": "http://127.0.0.1:1/denied" });
        let host = self.host.clone();
        // On a worker thread, like the GETs it is compared with.
        concurrent(1, n, move || {
            let (host, request) = (host.clone(), request.clone());
            async move {
                match host.call(request).await {
                    Ok(out) if matches!(out.output, ToolOutput::ToolError(_)) => {}
                    other => panic!("the denied fetch did not fail: {other:?}"),
                }
            }
        })
        .await
    }

    /// Item 2, attribution: building the redactor for one token, which the
    /// egress gate does once per (user, connection, token).
    pub async fn redactor_build(&self, n: usize) -> Samples {
        let secret = Secret::new(TOKEN.as_bytes().to_vec()).unwrap();
        sequential(n, || {
            std::hint::black_box(airlock::egress::Redactor::new(&[&secret]));
            async {}
        })
        .await
    }

    /// Item 3: compiling the fetch component into an empty cache, and
    /// loading it from a warm one.
    pub fn compile_vs_hit(&self, sizes: Sizes) -> (Samples, Samples) {
        let wasm = std::fs::read(airlock_tests::guests::FETCH).unwrap();
        let digest = hex::encode(sha2::Sha256::digest(&wasm));
        let engine = self.host.engine("fetch").expect("the bench loads fetch");

        let mut compile = Samples::with_capacity(sizes.compiles);
        for i in 0..sizes.compiles {
            let cache = CompileCache::open(&self.dir.path().join(format!("cold-{i}")), engine);
            let t = Instant::now();
            let (_, outcome) = cache.unwrap().load(engine, &digest, &wasm).unwrap();
            compile.push(t.elapsed());
            assert_eq!(outcome, CacheOutcome::Compiled);
        }

        let cache = CompileCache::open(&self.dir.path().join("warm"), engine).unwrap();
        cache.load(engine, &digest, &wasm).unwrap();
        let mut hit = Samples::with_capacity(sizes.hits);
        for _ in 0..sizes.hits {
            let t = Instant::now();
            let (_, outcome) = cache.load(engine, &digest, &wasm).unwrap();
            hit.push(t.elapsed());
            assert_eq!(outcome, CacheOutcome::Hit);
        }
        (compile, hit)
    }

    /// Item 4: the broker's token lookup for a linked user.
    pub async fn token(&self, sizes: Sizes) -> Samples {
        let broker = &self.host.egress().broker;
        let lookup = || async {
            match broker.token(USER, "demo", &[]).await {
                Ok(TokenOutcome::Token(_)) => {}
                other => panic!("token lookup failed: {other:?}"),
            }
        };
        sequential(sizes.warmup, lookup).await;
        sequential(sizes.tokens, lookup).await
    }

    /// Item 5: 64 concurrent calls for a user whose token has expired, with
    /// the upstream's token endpoint refreshing it. Returns the latencies,
    /// how many calls ended in each outcome and how many refreshes the
    /// token endpoint served.
    pub async fn expired(&self) -> (Samples, ExpiredOutcomes) {
        let before = self.upstream.refreshes().await;
        let mut tasks = Vec::new();
        let start = Instant::now();
        for _ in 0..64 {
            let (host, request) = (
                self.host.clone(),
                self.fetch_call(EXPIRED_USER, "/small.json"),
            );
            tasks.push(tokio::spawn(async move {
                let t = Instant::now();
                let result = host.call(request).await;
                (t.elapsed(), result)
            }));
        }
        let mut samples = Samples::with_capacity(64);
        let mut outcomes = ExpiredOutcomes::default();
        for task in tasks {
            let (elapsed, result) = task.await.unwrap();
            samples.push(elapsed);
            match result {
                Ok(out) if matches!(out.output, ToolOutput::Ok(_)) => outcomes.ok += 1,
                Err(CallError::AuthorizationRequired(_)) => outcomes.authorization_required += 1,
                _ => outcomes.other += 1,
            }
        }
        samples.wall = start.elapsed();
        outcomes.refreshes = self.upstream.refreshes().await - before;
        (samples, outcomes)
    }

    /// Item 6: resident memory while `n` calls are each held in flight by
    /// a slow upstream, per call, over the host at rest just before.
    pub async fn memory(&self, n: usize) -> (u64, u64) {
        let before = rss_bytes();
        let mut tasks = Vec::new();
        for _ in 0..n {
            let (host, request) = (self.host.clone(), self.fetch_call(USER, "/slow.json"));
            tasks.push(tokio::spawn(
                async move { expect_ok(host.call(request).await) },
            ));
        }
        tokio::time::sleep(SLOW / 2).await;
        let during = rss_bytes();
        for task in tasks {
            task.await.unwrap();
        }
        (before, during.saturating_sub(before) / n as u64)
    }
}

/// How the 64 calls on an expired token ended.
#[derive(Debug, Default)]
pub struct ExpiredOutcomes {
    pub ok: usize,
    pub authorization_required: usize,
    pub other: usize,
    /// Refresh grants the token endpoint served during the 64 calls.
    pub refreshes: u64,
}

/// A native keep-alive client: hyper's pooled client, as reqwest uses it.
#[derive(Clone)]
struct NativeClient {
    client: hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        Empty<Bytes>,
    >,
    uri: http::Uri,
}

impl NativeClient {
    fn new(base: &str) -> NativeClient {
        let mut connector = hyper_util::client::legacy::connect::HttpConnector::new();
        connector.set_nodelay(true);
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .pool_max_idle_per_host(64)
                .build(connector);
        NativeClient {
            client,
            uri: format!("{base}/small.json").parse().unwrap(),
        }
    }

    async fn get(&self) {
        let request = http::Request::get(self.uri.clone())
            .header("authorization", format!("Bearer {TOKEN}"))
            .body(Empty::new())
            .unwrap();
        let response = self.client.request(request).await.expect("native GET");
        assert_eq!(response.status(), 200);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert!(!body.is_empty());
    }
}

fn expect_ok(result: Result<airlock::runtime::CallOutput, CallError>) {
    match result {
        Ok(out) => match out.output {
            ToolOutput::Ok(v) if v["status"] == 200 => {}
            other => panic!("fetch did not return 200: {other:?}"),
        },
        Err(err) => panic!("fetch call failed: {err}"),
    }
}

fn config_toml(port: u16) -> String {
    let tool = |name: &str, path: &str| {
        let digest = hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()));
        format!("[tools.{name}]\nsource = \"{path}\"\nsha256 = \"{digest}\"\n")
    };
    format!(
        r#"
[vault]
dir = "data"

[audit]
dir = "audit"

[host]
# The benchmark's callers all act for one user.
max_concurrent_calls = 128
max_concurrent_calls_per_user = 64

[connections.demo]
audience = ["http://127.0.0.1:{port}"]
provider = "custom"
client_id = "airlock-bench"
authorize_url = "http://127.0.0.1:{port}/authorize"
token_url = "http://127.0.0.1:{port}/token"

{echo}
{fetch}
[[tools.fetch.endpoints]]
url = "http://127.0.0.1:{port}/**"
methods = ["GET"]
connection = "demo"
allow_private = true
"#,
        echo = tool("echo", airlock_tests::guests::ECHO),
        fetch = tool("fetch", airlock_tests::guests::FETCH),
    )
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs()
}

/// Resident set size of this process, from `/proc/self/status`.
pub fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}
