//! Getting the token echoed back: by httpbin (headers, bodies, gzip, base64)
//! and by a hostile upstream that sends it in every encoding, byte by byte,
//! compressed, in trailers, in header names and in the status text. Also
//! the upstream's own attacks on the host: oversized heads, gzip bombs and
//! bytes dripped slowly.

use super::upstream::{Received, Step, Upstream, gzip, response};
use super::{Hostile, Setup, get, header, limit, ok, request, tool_error};
use base64::Engine as _;
use std::time::{Duration, Instant};

fn engines() -> [&'static base64::engine::GeneralPurpose; 4] {
    use base64::engine::general_purpose::*;
    [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD]
}

/// The upstream's answer for a path: the echo it makes of the token.
fn echo_script(r: &Received) -> Vec<Step> {
    let token = r.token();
    let auth = r.header("authorization").unwrap_or_default().to_string();
    let path = r.line.split(' ').nth(1).unwrap_or("/").to_string();
    let ok =
        |head: &[String], body: &[u8]| vec![Step::Write(response("HTTP/1.1 200 OK", head, body))];
    match path.as_str() {
        "/encoded" => {
            let mut body = String::new();
            for engine in engines() {
                for prefix in ["", "a", "ab", "Bearer "] {
                    body.push_str(&engine.encode(format!("{prefix}{token}")));
                    body.push('\n');
                    body.push_str(&engine.encode(format!("{prefix}{auth}")));
                    body.push('\n');
                }
            }
            body.push_str(&hex::encode(&token));
            body.push('\n');
            body.push_str(&hex::encode_upper(&auth));
            body.push('\n');
            body.push_str(
                &percent_encoding::utf8_percent_encode(&auth, percent_encoding::NON_ALPHANUMERIC)
                    .to_string(),
            );
            body.push('\n');
            body.push_str(&format!("{{\"token\":{}}}", serde_json::to_string(&token).unwrap()));
            ok(&[], body.as_bytes())
        }
        "/case" => {
            // The token with its case changed, raw and encoded.
            let upper = token.to_ascii_uppercase();
            let body = [
                upper.clone(),
                auth.to_ascii_lowercase(),
                hex::encode_upper(&token).to_ascii_lowercase(),
                percent_encoding::utf8_percent_encode(&token, percent_encoding::NON_ALPHANUMERIC)
                    .to_string()
                    .to_ascii_lowercase(),
                base64::engine::general_purpose::STANDARD
                    .encode(&token)
                    .to_ascii_lowercase(),
            ]
            .join("\n");
            ok(&[format!("x-upper: {upper}")], body.as_bytes())
        }
        "/header-name" => ok(&[format!("x-{token}: 1"), "x-fine: yes".into()], b"ok"),
        "/header-values" => ok(
            &[
                format!("x-echo: {auth}"),
                format!("set-cookie: s={token}; Path=/"),
                format!("x-b64: {}", base64::engine::general_purpose::STANDARD.encode(&auth)),
                format!("location: http://example.invalid/?t={token}"),
            ],
            b"ok",
        ),
        "/status-text" => vec![Step::Write(response(&format!("HTTP/1.1 200 {token}"), &[], b"ok"))],
        "/drip-token" => {
            // One byte per chunk, each in its own TCP write.
            let mut steps = vec![Step::Write(
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n".to_vec(),
            )];
            for b in format!("<{auth}>").bytes() {
                steps.push(Step::Write(format!("1\r\n{}\r\n", b as char).into_bytes()));
                steps.push(Step::Sleep(Duration::from_millis(2)));
            }
            steps.push(Step::Write(b"0\r\n\r\n".to_vec()));
            steps
        }
        "/trailers" => vec![Step::Write(
            format!(
                "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ntrailer: x-echo\r\nconnection: close\r\n\r\n\
                 5\r\nhello\r\n0\r\nx-echo: {auth}\r\nx-{token}: 1\r\nx-fine: yes\r\n\r\n"
            )
            .into_bytes(),
        )],
        "/gzip" => ok(
            &["content-encoding: gzip".into()],
            &gzip(format!("{{\"headers\":{{\"Authorization\":\"{auth}\"}}}}").as_bytes()),
        ),
        "/gzip-transfer" => {
            let packed = gzip(format!("token={token}").as_bytes());
            let mut bytes = b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\nconnection: close\r\n\r\n".to_vec();
            bytes.extend(format!("{:x}\r\n", packed.len()).into_bytes());
            bytes.extend(packed);
            bytes.extend(b"\r\n0\r\n\r\n");
            vec![Step::Write(bytes)]
        }
        "/deflate" => {
            let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
            std::io::Write::write_all(&mut z, format!("token={token}").as_bytes()).unwrap();
            ok(&["content-encoding: deflate".into()], &z.finish().unwrap())
        }
        "/brotli" => ok(&["content-encoding: br".into()], b"\x0b\x02\x80token\x03"),
        "/double-gzip" => ok(
            &["content-encoding: gzip, gzip".into()],
            &gzip(&gzip(format!("token={token}").as_bytes())),
        ),
        "/gzip-bomb" => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            let zeros = vec![0u8; 1 << 20];
            for _ in 0..64 {
                std::io::Write::write_all(&mut e, &zeros).unwrap();
            }
            std::io::Write::write_all(&mut e, token.as_bytes()).unwrap();
            ok(&["content-encoding: gzip".into()], &e.finish().unwrap())
        }
        "/huge-head" => {
            let filler: Vec<String> = (0..400).map(|i| format!("x-filler-{i}: {}", "f".repeat(200))).collect();
            ok(&filler, b"never read")
        }
        "/many-headers" => {
            let many: Vec<String> = (0..500).map(|i| format!("x-h{i}: {i}")).collect();
            ok(&many, b"never read")
        }
        "/slow-head" => vec![
            Step::Write(b"HTTP/1.1 200 OK\r\n".to_vec()),
            Step::Drip {
                bytes: b"x-slow: 1\r\n".to_vec(),
                every: Duration::from_millis(200),
                times: 100,
            },
        ],
        "/slow-body" => vec![
            Step::Write(b"HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n".to_vec()),
            Step::Drip {
                bytes: b"z".to_vec(),
                every: Duration::from_millis(100),
                times: 1000,
            },
        ],
        "/stall-body" => vec![
            Step::Write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nfirst".to_vec()),
            Step::Sleep(Duration::from_secs(5)),
        ],
        _ => ok(&[], b"unknown path"),
    }
}

fn rogue() -> Setup {
    Setup {
        upstream: Some(Upstream::start(echo_script)),
        limits: "max_response_bytes = 1048576, request_timeout_ms = 800, timeout_ms = 3000",
        ..Setup::default()
    }
}

#[tokio::test]
async fn httpbin_echoes_come_back_redacted() {
    let mut t = Hostile::new("echo-httpbin", Setup::default());
    let a = t.httpbin();
    for path in [
        "/headers",
        "/anything/x?y=1",
        "/bearer",
        "/gzip",
        "/deflate",
        "/brotli",
    ] {
        let result = t.call("hostile.send", get(&a, path)).await;
        match path {
            // httpbin compresses whatever it is asked; brotli cannot be read.
            "/brotli" => {
                let err = tool_error(result);
                assert!(err.contains("HttpResponseContentCoding"), "{err}");
            }
            _ => {
                let response = ok(result);
                let body = response["body"].as_str().unwrap();
                assert_eq!(response["status"], 200, "{path}");
                assert!(body.contains("[REDACTED]"), "{path}: {body}");
                assert!(
                    header(&response, "headers", "content-encoding").is_none(),
                    "{path}"
                );
            }
        }
    }
    // Echoes the tool asks for itself, in each encoding.
    let token = t.token.clone();
    for engine in engines() {
        for prefix in ["", "x", "xy"] {
            let value = engine.encode(format!("{prefix}{token}"));
            let path = format!("/response-headers?x-a={value}&x-b=plain");
            let response = ok(t.call("hostile.send", get(&a, &path)).await);
            assert!(!response.to_string().contains(&value), "{value}");
            assert_eq!(header(&response, "headers", "x-b"), Some("plain"));
        }
    }
    // (An echo through a path, such as httpbin's /base64/<value>, would put
    // the token in the audit record of the path: only a tool that already
    // knows the token could send one, so fetch.rs checks it without a sweep.)
    t.finish().await;
}

#[tokio::test]
async fn rogue_upstream_echoes_come_back_redacted() {
    let mut t = Hostile::new("echo-rogue", rogue());
    let up = t.rogue();
    for path in [
        "/encoded",
        "/header-values",
        "/drip-token",
        "/gzip",
        "/deflate",
        "/gzip-transfer",
    ] {
        let response = ok(t.call("hostile.send", get(&up, path)).await);
        assert_eq!(response["status"], 200, "{path}");
        assert!(
            response.to_string().contains("[REDACTED]"),
            "{path}: {response}"
        );
    }
    let response = ok(t.call("hostile.send", get(&up, "/gzip-transfer")).await);
    assert_eq!(response["body"], "token=[REDACTED]");

    // A header whose name is the token is dropped; its neighbours stay.
    let response = ok(t.call("hostile.send", get(&up, "/header-name")).await);
    assert_eq!(header(&response, "headers", "x-fine"), Some("yes"));
    // Status text never reaches a wasi:http guest.
    let response = ok(t.call("hostile.send", get(&up, "/status-text")).await);
    assert_eq!(response["status"], 200);
    // Trailers are redacted like headers.
    let response = ok(t.call("hostile.send", get(&up, "/trailers")).await);
    assert_eq!(response["body"], "hello");
    assert_eq!(
        header(&response, "trailers", "x-echo"),
        Some("Bearer [REDACTED]")
    );
    assert_eq!(header(&response, "trailers", "x-fine"), Some("yes"));
    assert_eq!(
        response["trailers"].as_array().unwrap().len(),
        2,
        "{response}"
    );

    // The upstream did receive the token: the echoes were real.
    let seen = t.upstream.as_ref().unwrap().requests();
    assert!(seen.iter().all(|r| r.token() == t.rogue_token));
    t.finish().await;
}

#[tokio::test]
async fn case_changed_echoes_come_back_redacted() {
    let mut t = Hostile::new("echo-case", rogue());
    let up = t.rogue();
    let response = ok(t.call("hostile.send", get(&up, "/case")).await);
    assert_eq!(response["status"], 200);
    let body = response["body"].as_str().unwrap();
    assert_eq!(
        body, "[REDACTED]\nbearer [REDACTED]\n[REDACTED]\n[REDACTED]\n[REDACTED]",
        "{response}"
    );
    assert_eq!(header(&response, "headers", "x-upper"), Some("[REDACTED]"));
    // The canary's random part in any case, anywhere in what came back.
    let random = &t.rogue_token["airlock-canary-".len()..];
    let seen = response.to_string().to_ascii_lowercase();
    assert!(!seen.contains(random), "{seen}");
    assert!(!seen.contains(&hex::encode(random)), "{seen}");
    t.finish().await;
}

#[tokio::test]
async fn codings_the_guard_cannot_read_are_refused() {
    let mut t = Hostile::new("codings", rogue());
    let up = t.rogue();
    for (path, named) in [
        ("/brotli", "Some(\"br\")"),
        ("/double-gzip", "Some(\"gzip, gzip\")"),
    ] {
        let err = tool_error(t.call("hostile.send", get(&up, path)).await);
        assert!(
            err.contains("HttpResponseContentCoding") && err.contains(named),
            "{path}: {err}"
        );
    }
    t.finish().await;
}

#[tokio::test]
async fn gzip_bomb_trips_the_response_limit() {
    let mut t = Hostile::new("gzip-bomb", rogue());
    let up = t.rogue();
    let (name, value, message) = limit(t.call("hostile.send", get(&up, "/gzip-bomb")).await);
    assert_eq!((name, value), ("max_response_bytes", 1 << 20));
    assert!(
        message.contains("max_response_bytes limit of 1048576"),
        "{message}"
    );
    t.finish().await;
}

#[tokio::test]
async fn oversized_response_heads_are_refused() {
    let mut t = Hostile::new("huge-heads", rogue());
    let up = t.rogue();
    let err = tool_error(t.call("hostile.send", get(&up, "/huge-head")).await);
    assert!(err.contains("HttpResponseHeaderSectionSize"), "{err}");
    let err = tool_error(t.call("hostile.send", get(&up, "/many-headers")).await);
    assert!(
        err.contains("HttpProtocolError") || err.contains("HeaderSection"),
        "{err}"
    );
    // httpbin cannot send a head larger than the URL that asks for it, and
    // a URL is capped below 64 KiB, so the rogue upstream stands in for it.
    t.finish().await;
}

#[tokio::test]
async fn slow_upstreams_are_cut_off() {
    let mut t = Hostile::new("slowloris", rogue());
    let up = t.rogue();

    // A head that never ends: the first-byte timeout (request_timeout_ms).
    let started = Instant::now();
    let err = tool_error(t.call("hostile.send", get(&up, "/slow-head")).await);
    assert!(err.contains("HttpResponseTimeout"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );

    // A body that stalls: the between-bytes timeout.
    let err = tool_error(t.call("hostile.send", get(&up, "/stall-body")).await);
    assert!(err.contains("connection read timeout"), "{err}");

    // A body dripped just fast enough: the call's wall clock.
    let started = Instant::now();
    let (name, value, _) = limit(t.call("hostile.send", get(&up, "/slow-body")).await);
    assert_eq!((name, value), ("timeout_ms", 3000));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    // httpbin's own drip, within the limits, still works.
    let a = t.httpbin();
    let response = ok(t
        .call(
            "hostile.send",
            get(&a, "/drip?numbytes=5&duration=1&delay=0"),
        )
        .await);
    assert_eq!(response["body"], "*****");
    t.finish().await;
}

#[tokio::test]
async fn request_bodies_over_the_limit_are_cut() {
    let mut t = Hostile::new(
        "request-bytes",
        Setup {
            limits: "max_request_bytes = 65536",
            ..Setup::default()
        },
    );
    let a = t.httpbin();
    let args = serde_json::json!({ "request": request("POST", "http", &a, "/anything", &[], None)["request"], "bytes": 1_000_000 });
    let (name, value, _) = limit(t.call("hostile.upload", args).await);
    assert_eq!((name, value), ("max_request_bytes", 65536));
    // A declared length over the limit is refused before sending.
    let body = "d".repeat(100_000);
    let args = request("POST", "http", &a, "/anything", &[], Some(&body));
    let (name, _, _) = limit(t.call("hostile.send", args).await);
    assert_eq!(name, "max_request_bytes");
    t.finish().await;
}

#[tokio::test]
async fn range_requests_carrying_a_token_are_refused() {
    // A guard that sees one response at a time cannot find a token echoed
    // a slice per response, so a request with a token may not ask for one.
    let mut t = Hostile::new("range", Setup::default());
    let a = t.httpbin();
    for (name, value) in [
        ("Range", "bytes=0-9"),
        ("range", "bytes=10-"),
        ("RANGE", "bytes=-5"),
        ("If-Range", "\"etag\""),
    ] {
        let args = request("GET", "http", &a, "/range/64", &[(name, value)], None);
        let err = tool_error(t.call("hostile.send", args).await);
        assert_eq!(err, "HTTP-request-denied", "{name}");
    }
    // The same request without the header goes out whole.
    let response = ok(t.call("hostile.send", get(&a, "/range/64")).await);
    assert_eq!(response["status"], 200);
    assert_eq!(response["body"].as_str().unwrap().len(), 64);

    let denied: Vec<_> = airlock::audit::query(&t.fx.audit_dir(), &Default::default())
        .unwrap()
        .into_iter()
        .filter(|e| e.decision == Some(airlock::audit::Decision::Deny))
        .collect();
    assert_eq!(denied.len(), 4, "{denied:?}");
    assert!(
        denied
            .iter()
            .all(|e| e.reason.as_deref() == Some("forbidden_header")
                && e.path.as_deref() == Some("/range/64")),
        "{denied:?}"
    );
    t.finish().await;
}
