//! MCP over stdio with the official MCP Python SDK as the client: it starts
//! `airlock serve --stdio --user U` itself, lists the tools and calls fetch
//! against httpbin, in the SDK's default (2026-07-28, no handshake) and
//! legacy (initialize handshake) modes.

use crate::serve_support::{
    assert_audit_whole, assert_no_error, fallback_url, fixture, mcp, stdio_plan,
};
use crate::support::canary;
use airlock::audit::AuditLog;
use serde_json::{Value, json};

fn fetch_step(url: String) -> Value {
    json!({ "op": "call", "tool": "fetch.fetch", "arguments": { "url": url } })
}

#[test]
fn stdio_lists_tools_with_their_schemas() {
    let fx = fixture("", "");
    for (mode, version) in [("auto", "2026-07-28"), ("legacy", "2025-11-25")] {
        let report = mcp(stdio_plan(&fx, "alice", mode, json!([{ "op": "list" }])));
        assert_no_error(&report);
        assert_eq!(report["protocol_version"], version, "{mode}");

        let tools = report["steps"][0]["tools"].as_array().unwrap();
        assert_eq!(tools.len(), 1, "{report:#}");
        let fetch = &tools[0];
        assert_eq!(fetch["name"], "fetch.fetch");
        let input = &fetch["input_schema"];
        assert_eq!(input["type"], "object");
        assert_eq!(input["properties"]["url"]["type"], "string");
        assert_eq!(input["required"], json!(["url"]), "{input:#}");
        assert_eq!(input["additionalProperties"], false);
        let output = &fetch["output_schema"];
        assert_eq!(output["type"], "object", "{fetch:#}");
        assert_eq!(output["properties"]["status"]["type"], "integer");
        assert_eq!(output["properties"]["status"]["maximum"], 65535);

        // Exactly what the host derives from the component's WIT.
        let host = airlock::runtime::Host::load(&fx.config(), AuditLog::disabled()).unwrap();
        let info = &host.tools()[0];
        assert_eq!(*input, info.input_schema);
        assert_eq!(Some(output), info.output_schema.as_ref());
        let description = fetch["description"].as_str().unwrap_or("");
        assert_eq!(description, info.description);
    }
}

#[test]
fn stdio_call_is_authenticated_and_the_echo_redacted() {
    let fx = fixture("", "");
    let token = canary();
    fx.link("alice", &token);
    for mode in ["auto", "legacy"] {
        let step = fetch_step(format!("{}/bearer", fx.upstream));
        let report = mcp(stdio_plan(&fx, "alice", mode, json!([step])));
        assert_no_error(&report);
        let result = &report["steps"][0];
        assert_eq!(result["is_error"], false, "{result:#}");
        assert_eq!(result["structured"]["status"], 200);
        let body: Value =
            serde_json::from_str(result["structured"]["body"].as_str().unwrap()).unwrap();
        assert_eq!(body["authenticated"], true);
        assert_eq!(body["token"], "[REDACTED]");
        assert!(!report.to_string().contains(&token), "{mode}: token leaked");
    }
}

#[test]
fn stdio_tool_error_and_unknown_tool_are_told_apart() {
    let fx = fixture("", "");
    fx.link("alice", &canary());
    let denied = fetch_step(format!("http://localhost:{}/get", fx.port));
    let unknown = json!({ "op": "call", "tool": "nope.nope", "arguments": {} });
    let bad_args = json!({ "op": "call", "tool": "fetch.fetch", "arguments": { "url": 5 } });
    let report = mcp(stdio_plan(
        &fx,
        "alice",
        "auto",
        json!([denied, unknown, bad_args]),
    ));
    assert_no_error(&report);

    // The tool's own `err` value is a tool error the model can read.
    let denied = &report["steps"][0];
    assert_eq!(denied["is_error"], true, "{denied:#}");
    assert_eq!(denied["text"], json!(["HTTP-request-denied"]));
    // An unknown tool is a protocol error.
    let unknown = &report["steps"][1]["error"];
    assert_eq!(unknown["code"], -32602, "{report:#}");
    assert!(unknown["message"].as_str().unwrap().contains("nope.nope"));
    // Arguments that do not fit are a tool error naming the field.
    let bad_args = &report["steps"][2];
    assert_eq!(bad_args["is_error"], true, "{bad_args:#}");
    assert!(bad_args["text"][0].as_str().unwrap().contains("\"url\""));
}

#[test]
fn stdio_user_without_a_link_gets_a_tool_error_with_the_consent_url() {
    let fx = fixture("", "");
    fx.link("alice", &canary());
    for mode in ["auto", "legacy"] {
        // No elicitation callback: the client declares no elicitation support.
        let step = fetch_step(format!("{}/bearer", fx.upstream));
        let report = mcp(stdio_plan(&fx, "bob", mode, json!([step])));
        assert_no_error(&report);
        let result = &report["steps"][0];
        assert_eq!(result["is_error"], true, "{result:#}");
        let text = result["text"][0].as_str().unwrap();
        assert!(text.contains(&fallback_url("bob")), "{text}");
        assert!(
            text.contains("\"demo\"") && text.contains("not_linked"),
            "{text}"
        );
        assert!(report["elicitations"].as_array().unwrap().is_empty());
    }
}

#[test]
fn stdio_shutdown_lets_a_running_call_finish() {
    use std::io::{BufRead as _, BufReader, Write as _};
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    let fx = fixture("", "");
    fx.link("alice", &canary());
    let mut child = Command::new(env!("CARGO_BIN_EXE_airlock"))
        .arg("--config")
        .arg(&fx.config_path)
        .args(["serve", "--stdio", "--user", "alice"])
        .env("AIRLOCK_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut send = |message: Value| {
        writeln!(stdin, "{message}").unwrap();
        stdin.flush().unwrap();
    };

    // Plain JSON-RPC: the handshake, then one call that takes two seconds.
    send(
        json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": { "name": "e2e", "version": "0" } } }),
    );
    let init: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(init["result"]["protocolVersion"], "2025-11-25", "{init}");
    send(json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }));
    send(
        json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
        "name": "fetch.fetch",
        "arguments": { "url": format!("{}/delay/2", fx.upstream) } } }),
    );

    std::thread::sleep(Duration::from_millis(700));
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());

    let reply: Value = lines
        .map(|l| serde_json::from_str::<Value>(&l.unwrap()).unwrap())
        .find(|m| m["id"] == 2)
        .expect("an answer to the call");
    assert_eq!(reply["result"]["isError"], false, "{reply}");
    assert_eq!(reply["result"]["structuredContent"]["status"], 200);

    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "airlock serve --stdio did not exit"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
    let out = fx.airlock(&["audit", "verify"], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn stdio_cancelled_call_is_audited_as_cancelled() {
    let fx = fixture("", "");
    fx.link("alice", &canary());
    for mode in ["auto", "legacy"] {
        let steps = json!([{ "op": "cancel", "tool": "fetch.fetch", "after": 0.5,
                             "arguments": { "url": format!("{}/delay/8", fx.upstream) } }]);
        let report = mcp(stdio_plan(&fx, "alice", mode, steps));
        assert_no_error(&report);
        assert_eq!(report["steps"][0]["cancelled"], true, "{report:#}");
    }

    // The client closed each session, and the server exited with it.
    let ends = assert_audit_whole(&fx);
    assert_eq!(ends.len(), 2, "{ends:?}");
    assert!(ends.values().all(|r| r == "cancelled"), "{ends:?}");
}
