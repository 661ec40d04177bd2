//! The hostile-guest suite: tools that each try one escape, run through the
//! real host against real upstreams on loopback, with canary tokens that the
//! canary sweep then looks for everywhere.
//!
//! The Rust tool `guest-examples/hostile` attacks the way real code would;
//! components built here from WAT (see [`wat`]) break the canonical ABI on
//! purpose. [`upstream`] is a hostile upstream for what httpbin cannot do.

mod abi;
mod echo;
mod escape;
mod limits;
mod requests;
pub mod upstream;
pub mod wat;

use crate::support::{Fixture, canary, sha256_file};
use crate::sweep::Sweep;
use airlock::audit::{AuditConfig, AuditLog};
use airlock::runtime::{CallError, CallRequest, Host};
use airlock::tools::ToolOutput;
use airlock_tests::guests;
use serde_json::{Value, json};
use upstream::Upstream;

/// How to set up one hostile test.
#[derive(Default)]
pub struct Setup {
    /// Entries of the hostile tool's `limits` table, such as `cpu_ms = 200`.
    pub limits: &'static str,
    /// Extra keys of the `[host]` table.
    pub host: &'static str,
    /// URL path pattern granted on httpbin; `/**` when empty.
    pub grant: &'static str,
    /// Methods granted on httpbin; `["GET", "POST", "PUT"]` when empty.
    pub methods: &'static str,
    /// A hostile upstream, granted to the `rogue` connection.
    pub upstream: Option<Upstream>,
    /// Components built from WAT, by tool name.
    pub wat: Vec<(&'static str, Vec<u8>)>,
}

/// A host loaded with the hostile tools, users with canary tokens, and the
/// sweep that checks those tokens never come out.
pub struct Hostile {
    pub fx: Fixture,
    pub host: Host,
    pub sweep: Sweep,
    pub upstream: Option<Upstream>,
    /// Alice's token for httpbin (`demo`).
    pub token: String,
    /// Alice's token for the hostile upstream (`rogue`).
    pub rogue_token: String,
    calls: usize,
    health: String,
    _wat: tempfile::TempDir,
}

impl Hostile {
    /// Loads the hostile tools as `setup` says and links alice and bob.
    pub fn new(name: &str, setup: Setup) -> Hostile {
        let wasm = guests::HOSTILE;
        let port = airlock_tests::peers::httpbin().port;
        let grant = if setup.grant.is_empty() {
            "/**"
        } else {
            setup.grant
        };
        let methods = if setup.methods.is_empty() {
            r#"["GET", "POST", "PUT"]"#
        } else {
            setup.methods
        };
        let mut extra = format!(
            r#"
[host]
{host}

[tools.hostile]
source = "{wasm}"
sha256 = "{digest}"
limits = {{ {limits} }}

[[tools.hostile.endpoints]]
url = "http://127.0.0.1:{port}{grant}"
methods = {methods}
connection = "demo"
allow_private = true
"#,
            host = setup.host,
            digest = sha256_file(std::path::Path::new(wasm)),
            limits = setup.limits,
        );
        if let Some(up) = &setup.upstream {
            extra = format!(
                "[connections.rogue]\naudience = [\"http://127.0.0.1:{0}\"]\n{extra}
[[tools.hostile.endpoints]]
url = \"http://127.0.0.1:{0}/**\"
methods = [\"GET\", \"POST\"]
connection = \"rogue\"
allow_private = true
",
                up.port
            );
        }
        let dir = tempfile::tempdir().unwrap();
        for (tool, bytes) in &setup.wat {
            let path = dir.path().join(format!("{tool}.wasm"));
            std::fs::write(&path, bytes).unwrap();
            extra.push_str(&format!(
                "\n[tools.{tool}]\nsource = {:?}\nsha256 = \"{}\"\nlimits = {{ {} }}\n",
                path.display().to_string(),
                sha256_file(&path),
                setup.limits
            ));
        }
        let fx = Fixture::with_endpoints(&[&extra]);

        let (token, rogue_token, bob_token) = (canary(), canary(), canary());
        fx.link("alice", &token);
        fx.link("bob", &bob_token);
        if setup.upstream.is_some() {
            fx.link_to("alice", "rogue", &rogue_token);
        }
        let sweep = Sweep::new(name, &[&token, &rogue_token, &bob_token]);
        let config = fx.config();
        let audit = AuditLog::open(AuditConfig::new(&config.audit.dir)).unwrap();
        let host = Host::load(&config, audit).unwrap();
        Hostile {
            fx,
            host,
            sweep,
            upstream: setup.upstream,
            token,
            rogue_token,
            calls: 0,
            health: grant.replace("**", "health"),
            _wat: dir,
        }
    }

    /// Calls `tool` as alice; the result goes into the sweep.
    pub async fn call(&mut self, tool: &str, args: Value) -> Result<ToolOutput, CallError> {
        self.call_as("alice", tool, args).await
    }

    /// Calls `tool` as `user`; the result goes into the sweep.
    pub async fn call_as(
        &mut self,
        user: &str,
        tool: &str,
        args: Value,
    ) -> Result<ToolOutput, CallError> {
        let request = CallRequest {
            tool: tool.into(),
            user: user.into(),
            caller: "hostile-e2e".into(),
            args,
        };
        let result = self.host.call(request).await.map(|out| out.output);
        self.calls += 1;
        self.sweep
            .result(&format!("call {} {tool} as {user}", self.calls), &result);
        result
    }

    /// httpbin's authority, `127.0.0.1:<port>`.
    pub fn httpbin(&self) -> String {
        format!("127.0.0.1:{}", self.fx.port)
    }

    /// The hostile upstream's authority.
    pub fn rogue(&self) -> String {
        self.upstream.as_ref().expect("an upstream").authority()
    }

    /// Checks the host still serves a normal call, then runs the sweep.
    pub async fn finish(mut self) {
        let health = match self.health.as_str() {
            "/health" => "/anything/health".to_string(),
            path => path.to_string(),
        };
        let response = ok(self
            .call("hostile.send", get(&self.httpbin(), &health))
            .await);
        assert_eq!(response["status"], 200, "the host no longer serves calls");
        let Hostile { fx, sweep, .. } = self;
        sweep.finish(&fx);
    }
}

/// The arguments of `hostile.send` for a plain GET.
pub fn get(authority: &str, path: &str) -> Value {
    request("GET", "http", authority, path, &[], None)
}

/// The arguments of `hostile.send` (and the `request` of the other web
/// functions) with every part given.
pub fn request(
    method: &str,
    scheme: &str,
    authority: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Value {
    let headers: Vec<Value> = headers
        .iter()
        .map(|(n, v)| json!({ "name": n, "value": v }))
        .collect();
    json!({ "request": {
        "method": method, "scheme": scheme, "authority": authority, "path": path,
        "headers": headers, "body": body,
    }})
}

/// The `ok` value of a call, or a panic naming what came back.
pub fn ok(result: Result<ToolOutput, CallError>) -> Value {
    match result {
        Ok(ToolOutput::Ok(v)) => v,
        other => panic!("expected a value, got {other:?}"),
    }
}

/// The tool's own error string, or a panic.
pub fn tool_error(result: Result<ToolOutput, CallError>) -> String {
    match result {
        Ok(ToolOutput::ToolError(Value::String(s))) => s,
        other => panic!("expected a tool error, got {other:?}"),
    }
}

/// The limit that ended a call and its value, or a panic.
pub fn limit(result: Result<ToolOutput, CallError>) -> (&'static str, u64, String) {
    match result {
        Err(e @ CallError::Limit { limit, value, .. }) => (limit, value, e.to_string()),
        other => panic!("expected a limit error, got {other:?}"),
    }
}

/// The header `name` of a `hostile.send` response.
pub fn header<'a>(response: &'a Value, list: &str, name: &str) -> Option<&'a str> {
    response[list]
        .as_array()?
        .iter()
        .find(|h| {
            h["name"]
                .as_str()
                .is_some_and(|n| n.eq_ignore_ascii_case(name))
        })
        .and_then(|h| h["value"].as_str())
}
