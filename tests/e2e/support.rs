//! A test fixture: a config, a vault and an audit directory in a temporary
//! directory, pointing the `fetch` tool at the shared httpbin.

use airlock::audit::{AuditConfig, AuditLog};
use airlock::manifest::Config;
use airlock::runtime::{CallError, CallRequest, Host};
use airlock::tools::ToolOutput;
use airlock_tests::{guests, peers};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
    pub upstream: String,
    pub port: u16,
}

/// A fresh canary token: unique, long, and shaped like a real bearer token.
pub fn canary() -> String {
    format!("airlock-canary-{}", hex::encode(rand::random::<[u8; 18]>()))
}

impl Fixture {
    pub fn new() -> Fixture {
        Fixture::with_endpoints(&[])
    }

    /// A fixture whose fetch tool has the standard grants plus `extra` TOML.
    pub fn with_endpoints(extra: &[&str]) -> Fixture {
        let peer = peers::httpbin();
        let dir = tempfile::tempdir().unwrap();
        let wasm = guests::FETCH;
        let digest = sha256_file(Path::new(wasm));
        let mut config = format!(
            r#"
[vault]
dir = "data"

[audit]
dir = "audit"

[connections.demo]
audience = ["http://127.0.0.1:{port}"]

[tools.fetch]
source = "{wasm}"
sha256 = "{digest}"
config = {{ user_agent = "airlock-e2e" }}

[[tools.fetch.endpoints]]
url = "http://127.0.0.1:{port}/**"
methods = ["GET", "POST", "PUT"]
connection = "demo"
allow_private = true
"#,
            port = peer.port
        );
        for e in extra {
            config.push_str(e);
        }
        let config_path = dir.path().join("airlock.toml");
        std::fs::write(&config_path, config).unwrap();
        Fixture {
            dir,
            config_path,
            upstream: peer.url.clone(),
            port: peer.port,
        }
    }

    pub fn config(&self) -> Config {
        Config::load(&self.config_path).unwrap()
    }

    pub fn host(&self) -> (Host, AuditLog) {
        let config = self.config();
        let audit = AuditLog::open(AuditConfig::new(&config.audit.dir)).unwrap();
        (Host::load(&config, audit.clone()).unwrap(), audit)
    }

    /// Runs `airlock call fetch.fetch` for `user` with `args`.
    pub fn call_fetch(&self, user: &str, args: &serde_json::Value) -> Output {
        let args = args.to_string();
        self.airlock(
            &["call", "fetch.fetch", "--user", user, "--args", &args],
            None,
        )
    }

    /// The recorded audit events as `airlock audit query --json` prints
    /// them, with the text they were read from.
    pub fn audit_events(&self) -> (String, Vec<serde_json::Value>) {
        let out = self.airlock(&["audit", "query", "--json"], None);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let events = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        (text, events)
    }

    /// Asserts that `airlock audit verify` accepts the chain.
    pub fn assert_audit_verifies(&self) {
        let out = self.airlock(&["audit", "verify"], None);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Runs the `airlock` binary with this fixture's config.
    pub fn airlock(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut child = Command::new(env!("CARGO_BIN_EXE_airlock"))
            .arg("--config")
            .arg(&self.config_path)
            .args(args)
            .env("AIRLOCK_LOG", "debug")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        if let Some(input) = stdin {
            use std::io::Write as _;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
        }
        drop(child.stdin.take());
        child.wait_with_output().unwrap()
    }

    /// Stores `token` for (user, `demo`) through the CLI.
    pub fn link(&self, user: &str, token: &str) {
        self.link_to(user, "demo", token);
    }

    /// Stores `token` for (user, connection) through the CLI.
    pub fn link_to(&self, user: &str, connection: &str, token: &str) {
        let out = self.airlock(
            &["vault", "put", "--user", user, "--connection", connection],
            Some(token),
        );
        assert!(
            out.status.success(),
            "vault put failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn audit_dir(&self) -> PathBuf {
        self.dir.path().join("audit")
    }
}

/// Calls the fetch tool and returns its JSON output.
pub async fn fetch(
    host: &Host,
    user: &str,
    args: serde_json::Value,
) -> Result<ToolOutput, CallError> {
    let request = CallRequest {
        tool: "fetch.fetch".into(),
        user: user.into(),
        caller: "e2e".into(),
        args,
    };
    host.call(request).await.map(|out| out.output)
}

/// The `ok` response of a fetch, or a panic naming what came back instead.
pub fn ok(result: Result<ToolOutput, CallError>) -> serde_json::Value {
    match result {
        Ok(ToolOutput::Ok(v)) => v,
        other => panic!("expected a response, got {other:?}"),
    }
}

/// The tool's own error string, or a panic.
pub fn tool_error(result: Result<ToolOutput, CallError>) -> String {
    match result {
        Ok(ToolOutput::ToolError(serde_json::Value::String(s))) => s,
        other => panic!("expected a tool error, got {other:?}"),
    }
}

pub fn sha256_file(path: &Path) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))
}

/// Every encoding of `secret` the canary sweep looks for.
pub fn encodings(secret: &str) -> Vec<String> {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    let mut forms = vec![
        secret.to_string(),
        hex::encode(secret),
        hex::encode_upper(secret),
        percent_encoding::utf8_percent_encode(secret, percent_encoding::NON_ALPHANUMERIC)
            .to_string(),
    ];
    // Lowercase escapes (`%2d`) decode the same.
    let lower = secret
        .bytes()
        .map(|b| match b.is_ascii_alphanumeric() {
            true => (b as char).to_string(),
            false => format!("%{b:02x}"),
        })
        .collect();
    forms.push(lower);
    // Base64 at each alignment: the stable middle of the encoding.
    for offset in 0..3 {
        let padded = format!("{}{secret}", "x".repeat(offset));
        for encoded in [STANDARD.encode(&padded), URL_SAFE_NO_PAD.encode(&padded)] {
            let skip = if offset == 0 { 0 } else { 4 };
            let take = (secret.len() * 4 / 3).saturating_sub(8);
            forms.push(encoded.chars().skip(skip).take(take).collect());
        }
    }
    forms
}

/// Every file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p)
            } else {
                out.push(p)
            }
        }
    }
    out
}

/// Where each form of `secret` occurs in `haystacks` (name, bytes).
pub fn find_canary(secret: &str, haystacks: &[(String, Vec<u8>)]) -> Vec<String> {
    let mut found = Vec::new();
    for form in encodings(secret) {
        for (name, bytes) in haystacks {
            if bytes.windows(form.len()).any(|w| w == form.as_bytes()) {
                found.push(format!("{form:?} in {name}"));
            }
        }
    }
    found
}
