//! Requests a hostile tool shapes itself: forbidden headers, CR/LF smuggled
//! into names, values and URLs, targets outside the grant by every spelling
//! the policy corpus covers, and redirects followed by hand.

use super::{Hostile, Setup, get, header, ok, request, tool_error};
use airlock::tools::ToolOutput;
use serde_json::{Value, json};

/// What httpbin says it received, when a request got there.
fn echoed(result: &Result<ToolOutput, airlock::runtime::CallError>) -> Option<Value> {
    match result {
        Ok(ToolOutput::Ok(r)) if r["status"] == 200 => {
            serde_json::from_str(r["body"].as_str()?).ok()
        }
        _ => None,
    }
}

#[tokio::test]
async fn forbidden_headers_never_reach_the_upstream() {
    let mut t = Hostile::new("forbidden-headers", Setup::default());
    let names = [
        "Authorization",
        "authorization",
        "AUTHORIZATION",
        "Proxy-Authorization",
        "Cookie",
        "Host",
        "Connection",
        "Transfer-Encoding",
        "Upgrade",
        "TE",
        "Keep-Alive",
        "Proxy-Connection",
    ];
    for name in names {
        let args = request(
            "GET",
            "http",
            &t.httpbin(),
            "/headers",
            &[(name, "Bearer stolen-by-the-tool")],
            None,
        );
        let result = t.call("hostile.send", args).await;
        if let Some(seen) = echoed(&result) {
            let text = seen.to_string();
            assert!(
                !text.contains("stolen-by-the-tool"),
                "{name} went out: {text}"
            );
        } else {
            let err = tool_error(result);
            assert!(
                err.contains("Forbidden") || err == "HTTP-request-denied",
                "{name}: {err}"
            );
        }
    }
    t.finish().await;
}

#[tokio::test]
async fn cr_lf_smuggling_is_refused_everywhere() {
    let mut t = Hostile::new("crlf", Setup::default());
    let a = t.httpbin();
    let cases = [
        (
            "GET",
            a.clone(),
            "/headers".to_string(),
            ("X-A\r\nX-Injected", "1"),
        ),
        (
            "GET",
            a.clone(),
            "/headers".into(),
            ("X-A", "1\r\nX-Injected: 1"),
        ),
        (
            "GET",
            a.clone(),
            "/headers".into(),
            ("X-A", "1\nX-Injected: 1"),
        ),
        (
            "GET",
            a.clone(),
            "/headers".into(),
            ("X-A", "1\rX-Injected: 1"),
        ),
        (
            "GET",
            a.clone(),
            "/headers".into(),
            ("X-A", "1\0X-Injected: 1"),
        ),
        (
            "GET",
            a.clone(),
            "/headers\r\nX-Injected: 1".into(),
            ("X-A", "1"),
        ),
        (
            "GET",
            a.clone(),
            "/headers HTTP/1.1\r\nX-Injected: 1\r\n\r\nGET /".into(),
            ("X-A", "1"),
        ),
        (
            "GET",
            a.clone(),
            "/headers%0d%0aX-Injected:%201".into(),
            ("X-A", "1"),
        ),
        (
            "GET",
            format!("{a}\r\nX-Injected: 1"),
            "/headers".into(),
            ("X-A", "1"),
        ),
        (
            "GET\r\nX-Injected: 1",
            a.clone(),
            "/headers".into(),
            ("X-A", "1"),
        ),
        (
            "GET /headers HTTP/1.1\r\nX-Injected: 1\r\n\r\nGET",
            a.clone(),
            "/headers".into(),
            ("X-A", "1"),
        ),
    ];
    let mut refused = 0;
    for (method, authority, path, (name, value)) in cases {
        let args = request(method, "http", &authority, &path, &[(name, value)], None);
        let result = t.call("hostile.send", args).await;
        match echoed(&result) {
            Some(seen) => {
                let text = seen.to_string().to_ascii_lowercase();
                assert!(
                    !text.contains("x-injected\":"),
                    "{path:?} {name:?}={value:?}: {text}"
                );
            }
            None => refused += 1,
        }
    }
    // Only the percent-encoded path is a valid request; it stays a path.
    assert!(refused >= 10, "only {refused} refused");
    t.finish().await;
}

#[tokio::test]
async fn targets_outside_the_grant_are_denied_by_every_spelling() {
    let mut t = Hostile::new(
        "spellings",
        Setup {
            grant: "/anything/ok/**",
            methods: r#"["GET"]"#,
            ..Setup::default()
        },
    );
    let port = t.fx.port;
    let a = t.httpbin();
    // The grant itself works, so a denial below is the policy's doing.
    let baseline = t.call("hostile.send", get(&a, "/anything/ok/x")).await;
    let seen = echoed(&baseline).expect("the granted path is served");
    assert_eq!(seen["url"], format!("http://{a}/anything/ok/x"));

    let authorities = [
        format!("localhost:{port}"),
        format!("LOCALHOST:{port}"),
        format!("127.1:{port}"),
        format!("2130706433:{port}"),
        format!("0x7f.0.0.1:{port}"),
        format!("0177.0.0.1:{port}"),
        format!("127.0.0.01:{port}"),
        format!("[::1]:{port}"),
        format!("[::ffff:127.0.0.1]:{port}"),
        format!("[::ffff:7f00:1]:{port}"),
        format!("127.0.0.2:{port}"),
        format!("0.0.0.0:{port}"),
        format!("127.0.0.1:{}", port + 1),
        format!("127.0.0.1:0{port}"),
        format!("127.0.0.1:+{port}"),
        format!("127.0.0.1:{port}:{port}"),
        "127.0.0.1".to_string(),
        format!("user@127.0.0.1:{port}"),
        format!("127.0.0.1:{port}@localhost:{port}"),
        format!("localhost:{port}#@127.0.0.1:{port}"),
        format!("127%2E0.0.1:{port}"),
        format!(" 127.0.0.1:{port}"),
        format!("127.0.0.1\\@localhost:{port}"),
        format!("127。0。0。1:{port}"),
        format!("169.254.169.254:{port}"),
    ];
    let paths = [
        "/anything/secret",
        "/anything/ok/../secret",
        "/anything/ok/%2e%2e/secret",
        "/anything/ok/%2E%2E/secret",
        "/anything/ok/..%2fsecret",
        "/anything/ok/%2e%2e%2fsecret",
        "/anything/ok%2f..%2f..%2fsecret",
        "/anything/ok/.%2e/secret",
        "/anything/OK/x",
        "//anything/ok/x",
        "/anything/ok\\..\\secret",
        "/anything/ok/x#/../../secret",
        "anything/ok/x",
        "",
        "*",
        "http://127.0.0.1/anything/ok/x",
    ];
    let mut attempts: Vec<(String, String, String, String)> = Vec::new();
    for authority in &authorities {
        attempts.push((
            "GET".into(),
            "http".into(),
            authority.clone(),
            "/anything/ok/x".into(),
        ));
    }
    for path in paths {
        attempts.push(("GET".into(), "http".into(), a.clone(), path.into()));
    }
    for scheme in ["https", "HTTP", "ftp", "file", "ws", "gopher", ""] {
        attempts.push((
            "GET".into(),
            scheme.into(),
            a.clone(),
            "/anything/ok/x".into(),
        ));
    }
    for method in ["POST", "PUT", "DELETE", "TRACE", "CONNECT", "get ", "G\tET"] {
        attempts.push((
            method.into(),
            "http".into(),
            a.clone(),
            "/anything/ok/x".into(),
        ));
    }

    let mut denied = 0;
    for (method, scheme, authority, path) in &attempts {
        let args = request(method, scheme, authority, path, &[], None);
        let result = t.call("hostile.send", args).await;
        if let Some(seen) = echoed(&result) {
            // Anything that got through went where the grant says.
            let url = seen["url"].as_str().unwrap_or_default().to_string();
            assert!(
                url.starts_with(&format!("http://{a}/anything/ok/")) && seen["method"] == "GET",
                "{method} {scheme}://{authority}{path} reached {url}"
            );
            eprintln!("spellings: {method} {scheme}://{authority}{path} allowed as {url}");
        } else {
            let err = match result {
                Ok(ToolOutput::ToolError(Value::String(s))) => s,
                other => panic!("{method} {scheme}://{authority}{path}: {other:?}"),
            };
            assert!(!err.is_empty());
            denied += 1;
        }
    }
    eprintln!("spellings: {denied} of {} denied", attempts.len());
    assert!(
        denied >= attempts.len() - 2,
        "only {denied} of {} denied",
        attempts.len()
    );
    t.finish().await;
}

#[tokio::test]
async fn redirects_followed_by_hand_are_checked_again() {
    let outside = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    outside.set_nonblocking(true).unwrap();
    let outside_port = outside.local_addr().unwrap().port();
    let mut t = Hostile::new("redirects", Setup::default());
    let a = t.httpbin();
    let port = t.fx.port;

    for target in [
        format!("http://localhost:{port}/anything"),
        format!("http://127.0.0.1:{outside_port}/steal"),
        "http://169.254.169.254/latest/meta-data/".to_string(),
        "https://example.com/".to_string(),
    ] {
        let path = format!("/redirect-to?url={target}");
        let args = json!({ "request": get(&a, &path)["request"], "hops": 3 });
        let err = tool_error(t.call("hostile.follow", args).await);
        assert_eq!(err, "HTTP-request-denied", "{target}");
    }
    // A redirect within the grant is fine, and the token rides along only
    // because the follow-up is itself granted.
    let args = json!({ "request": get(&a, "/redirect-to?url=/bearer")["request"], "hops": 3 });
    let response = ok(t.call("hostile.follow", args).await);
    assert_eq!(response["status"], 200);
    assert!(header(&response, "headers", "content-type").is_some());

    assert!(outside.accept().is_err(), "the foreign origin was reached");
    t.finish().await;
}
