//! Malformed values returned through the canonical ABI by a component
//! written in WAT. Each is a trap that ends only its own call; the tool and
//! the host go on serving.

use super::wat::bad_component;
use super::{Hostile, Setup, limit, ok};
use airlock::runtime::CallError;
use serde_json::json;

fn setup() -> Setup {
    Setup {
        wat: vec![("abi", bad_component())],
        limits: "cpu_ms = 300, memory_mib = 16",
        host: "wasm_stack_kib = 128",
        ..Setup::default()
    }
}

#[tokio::test]
async fn malformed_results_trap_with_a_reason() {
    let mut t = Hostile::new("abi", setup());
    assert_eq!(ok(t.call("abi.text-ok", json!({})).await), "fine");

    let cases = [
        ("abi.text-out-of-bounds", "out of bounds"),
        ("abi.text-huge-length", "out of bounds"),
        ("abi.text-bad-utf8", "utf-8"),
        ("abi.text-unaligned", "not aligned"),
        ("abi.outcome-bad-discriminant", "discriminant"),
        ("abi.color-bad-discriminant", "discriminant"),
        ("abi.maybe-bad-discriminant", "discriminant"),
        ("abi.letter-surrogate", "char"),
        ("abi.many", "out of bounds"),
    ];
    for (tool, expected) in cases {
        match t.call(tool, json!({})).await {
            Err(CallError::Trap { reason, .. }) => assert!(
                reason.to_ascii_lowercase().contains(expected),
                "{tool}: {reason}"
            ),
            other => panic!("{tool}: expected a trap, got {other:?}"),
        }
        // The same tool still answers well-formed calls.
        assert_eq!(
            ok(t.call("abi.text-ok", json!({})).await),
            "fine",
            "after {tool}"
        );
    }
    t.finish().await;
}

#[tokio::test]
async fn realloc_returning_garbage_traps() {
    let mut t = Hostile::new("abi-realloc", setup());
    match t.call("abi.echo", json!({ "text": "hello" })).await {
        Err(CallError::Trap { reason, .. }) => {
            assert!(
                reason.contains("realloc return: beyond end of memory"),
                "{reason}"
            )
        }
        other => panic!("expected a trap, got {other:?}"),
    }
    t.finish().await;
}

#[tokio::test]
async fn compute_bombs_without_a_runtime_trip_their_limits() {
    let mut t = Hostile::new("abi-bombs", setup());
    assert_eq!(limit(t.call("abi.spin", json!({})).await).0, "cpu_ms");
    let (name, value, _) = limit(t.call("abi.recurse", json!({})).await);
    assert_eq!((name, value), ("wasm_stack_kib", 128));
    let (name, value, _) = limit(t.call("abi.grow", json!({})).await);
    assert_eq!((name, value), ("memory_mib", 16));
    assert_eq!(ok(t.call("abi.text-ok", json!({})).await), "fine");
    t.finish().await;
}
