//! Escapes that do not use HTTP: the environment, arguments, files,
//! preopened directories, stdin, sockets and name lookups. The host gives
//! a tool none of these, whatever the process running it has.

use super::{Hostile, Setup, ok, tool_error};
use serde_json::json;
use std::net::{TcpListener, UdpSocket};
use std::time::Duration;

#[tokio::test]
async fn environment_arguments_and_preopens_are_empty() {
    // The host process has variables and arguments the tool must not see.
    assert!(std::env::var_os("PATH").is_some());
    assert!(std::env::args_os().count() > 0);
    let mut t = Hostile::new("escape-env", Setup::default());

    assert_eq!(ok(t.call("hostile.env", json!({})).await), json!([]));
    assert_eq!(ok(t.call("hostile.args", json!({})).await), json!([]));
    assert_eq!(ok(t.call("hostile.preopens", json!({})).await), json!([]));
    t.finish().await;
}

#[tokio::test]
async fn files_are_unreachable() {
    let mut t = Hostile::new("escape-files", Setup::default());
    let vault = t.fx.data_dir().join("vault.json");
    for path in [
        "/etc/passwd",
        vault.to_str().unwrap(),
        "vault.json",
        "../../../../etc/hostname",
        ".",
    ] {
        let err = tool_error(t.call("hostile.read-file", json!({ "path": path })).await);
        assert!(!err.is_empty(), "{path}");
    }
    t.finish().await;
}

#[tokio::test]
async fn stdin_is_closed() {
    let mut t = Hostile::new("escape-stdin", Setup::default());
    assert_eq!(ok(t.call("hostile.read-stdin", json!({})).await), "");
    t.finish().await;
}

#[tokio::test]
async fn sockets_and_name_lookups_are_refused() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let tcp = listener.local_addr().unwrap().to_string();
    let udp_peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp_peer
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let udp = udp_peer.local_addr().unwrap().to_string();
    let mut t = Hostile::new("escape-sockets", Setup::default());

    for address in [tcp.clone(), t.httpbin()] {
        let err = tool_error(
            t.call("hostile.tcp-connect", json!({ "address": address }))
                .await,
        );
        assert!(err.contains("access-denied"), "tcp {address}: {err}");
    }
    let err = tool_error(t.call("hostile.udp-send", json!({ "address": udp })).await);
    assert!(err.contains("access-denied"), "udp: {err}");
    for name in ["localhost", "example.com", "metadata.google.internal"] {
        let err = tool_error(t.call("hostile.resolve", json!({ "name": name })).await);
        assert!(
            err.contains("access-denied") || err.contains("permanent-resolver-failure"),
            "{name}: {err}"
        );
    }

    // Nothing arrived at either socket.
    assert!(listener.accept().is_err(), "a tcp connection got through");
    let mut buf = [0u8; 64];
    assert!(
        udp_peer.recv_from(&mut buf).is_err(),
        "a datagram got through"
    );
    t.finish().await;
}

#[tokio::test]
async fn state_kept_in_a_global_is_gone_by_the_next_call() {
    let mut t = Hostile::new("state-between-calls", Setup::default());

    // Alice's call reads her own token echo and leaves it in a global.
    let response = ok(t
        .call("hostile.send", super::get(&t.httpbin(), "/bearer"))
        .await);
    let note = response["body"].as_str().unwrap().to_string();
    assert!(note.contains("[REDACTED]"), "{note}");
    let before = ok(t.call("hostile.remember", json!({ "note": note })).await);
    assert_eq!(before, json!(null), "a fresh instance starts empty");

    // Bob's next call, and alice's, find nothing.
    for user in ["bob", "alice"] {
        let seen = ok(t.call_as(user, "hostile.recall", json!({})).await);
        assert_eq!(seen, json!(null), "{user} saw state of an earlier call");
        let before = ok(t
            .call_as(
                user,
                "hostile.remember",
                json!({ "note": format!("{user} was here") }),
            )
            .await);
        assert_eq!(before, json!(null), "{user}");
    }
    t.finish().await;
}
