//! Starving the host: busy loops, deep recursion, memory bombs, huge
//! results, floods of requests and log lines, a trap halfway through a
//! request, and more calls at once than allowed. Each ends the call with an
//! error naming the limit and its value, and the next call is served.

use super::{Hostile, Setup, get, limit, ok, request};
use airlock::runtime::{CallError, CallRequest};
use serde_json::json;
use std::time::{Duration, Instant};

#[tokio::test]
async fn busy_loop_trips_the_cpu_limit() {
    let mut t = Hostile::new(
        "cpu",
        Setup {
            limits: "cpu_ms = 300",
            ..Setup::default()
        },
    );
    let started = Instant::now();
    let (name, value, message) = limit(t.call("hostile.spin", json!({})).await);
    assert_eq!((name, value), ("cpu_ms", 300));
    assert!(message.contains("cpu_ms limit of 300"), "{message}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    t.finish().await;
}

#[tokio::test]
async fn busy_loop_trips_the_wall_clock_when_cpu_allows_more() {
    let mut t = Hostile::new(
        "wall-clock",
        Setup {
            limits: "cpu_ms = 60000, timeout_ms = 400",
            ..Setup::default()
        },
    );
    let started = Instant::now();
    let (name, value, _) = limit(t.call("hostile.spin", json!({})).await);
    assert_eq!((name, value), ("timeout_ms", 400));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    t.finish().await;
}

#[tokio::test]
async fn waiting_on_the_network_does_not_count_as_cpu() {
    let mut t = Hostile::new(
        "cpu-io",
        Setup {
            limits: "cpu_ms = 300",
            ..Setup::default()
        },
    );
    // Two seconds asleep in httpbin is over six times the CPU limit.
    let a = t.httpbin();
    let response = ok(t.call("hostile.send", get(&a, "/delay/2")).await);
    assert_eq!(response["status"], 200);
    t.finish().await;
}

#[tokio::test]
async fn busy_guest_does_not_starve_other_calls() {
    let t = Hostile::new(
        "fairness",
        Setup {
            limits: "cpu_ms = 3000",
            ..Setup::default()
        },
    );
    let spin = t.host.call(CallRequest {
        tool: "hostile.spin".into(),
        user: "alice".into(),
        caller: "e2e".into(),
        args: json!({}),
    });
    let quick = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let started = Instant::now();
        let out = t
            .host
            .call(CallRequest {
                tool: "hostile.recall".into(),
                user: "bob".into(),
                caller: "e2e".into(),
                args: json!({}),
            })
            .await;
        (out, started.elapsed())
    };
    // Both run on this test's single thread: the spinning guest must yield.
    let (spun, (quick, took)) = tokio::join!(spin, quick);
    assert!(
        matches!(
            spun,
            Err(CallError::Limit {
                limit: "cpu_ms",
                ..
            })
        ),
        "{spun:?}"
    );
    assert!(quick.is_ok(), "{quick:?}");
    assert!(
        took < Duration::from_millis(2000),
        "the quick call waited {took:?}"
    );
    t.finish().await;
}

#[tokio::test]
async fn deep_recursion_trips_the_stack_limit() {
    let mut t = Hostile::new(
        "stack",
        Setup {
            host: "wasm_stack_kib = 256",
            ..Setup::default()
        },
    );
    let (name, value, _) = limit(
        t.call("hostile.recurse", json!({ "depth": 10_000_000 }))
            .await,
    );
    assert_eq!((name, value), ("wasm_stack_kib", 256));
    // Shallow recursion is fine.
    assert_eq!(
        ok(t.call("hostile.recurse", json!({ "depth": 100 })).await),
        0
    );
    t.finish().await;
}

#[tokio::test]
async fn the_stack_limit_is_per_tool() {
    // The host's default is large; this tool asks for a small stack.
    let mut small = Hostile::new(
        "stack-small",
        Setup {
            host: "wasm_stack_kib = 4096",
            limits: "wasm_stack_kib = 128",
            ..Setup::default()
        },
    );
    // The fixture's fetch tool keeps the host's default: two engines.
    assert_eq!(small.host.engine_count(), 2);
    let (name, value, _) = limit(
        small
            .call("hostile.recurse", json!({ "depth": 10_000_000 }))
            .await,
    );
    assert_eq!((name, value), ("wasm_stack_kib", 128));
    // The shallowest depth (in steps of 500) that overflows 128 KiB ...
    let mut depth = 500;
    loop {
        match small
            .call("hostile.recurse", json!({ "depth": depth }))
            .await
        {
            Ok(_) => depth += 500,
            Err(e) => {
                let (name, value, _) = limit(Err(e));
                assert_eq!((name, value), ("wasm_stack_kib", 128));
                break;
            }
        }
        assert!(depth < 1_000_000, "128 KiB never overflowed");
    }
    small.finish().await;
    // ... fits in a tool whose own limit is larger, on a host whose
    // default is the small one.
    let mut large = Hostile::new(
        "stack-large",
        Setup {
            host: "wasm_stack_kib = 128",
            limits: "wasm_stack_kib = 4096",
            ..Setup::default()
        },
    );
    assert_eq!(
        ok(large
            .call("hostile.recurse", json!({ "depth": depth }))
            .await),
        0
    );
    large.finish().await;
}

#[tokio::test]
async fn memory_bomb_trips_the_memory_limit() {
    let mut t = Hostile::new(
        "memory",
        Setup {
            limits: "memory_mib = 32",
            ..Setup::default()
        },
    );
    let (name, value, message) = limit(t.call("hostile.hog", json!({ "mib": 1024 })).await);
    assert_eq!((name, value), ("memory_mib", 32));
    assert!(message.contains("memory_mib limit of 32"), "{message}");
    assert_eq!(ok(t.call("hostile.hog", json!({ "mib": 8 })).await), 8);
    t.finish().await;
}

#[tokio::test]
async fn huge_result_trips_the_output_limit() {
    let mut t = Hostile::new(
        "output",
        Setup {
            limits: "max_output_bytes = 100000",
            ..Setup::default()
        },
    );
    let (name, value, _) = limit(
        t.call("hostile.shout", json!({ "bytes": 20_000_000 }))
            .await,
    );
    assert_eq!((name, value), ("max_output_bytes", 100_000));
    assert_eq!(
        ok(t.call("hostile.shout", json!({ "bytes": 10 })).await),
        "AAAAAAAAAA"
    );
    t.finish().await;
}

#[tokio::test]
async fn log_flood_is_capped() {
    let mut t = Hostile::new("log-flood", Setup::default());
    let before = crate::sweep::log_len();
    assert_eq!(
        ok(t.call("hostile.chatter", json!({ "lines": 5000 })).await),
        5000
    );
    let written = crate::sweep::log_len() - before;
    // 256 messages of 4 KiB at most, and the warning; other tests may log
    // at the same time, so allow some slack.
    assert!(written < 2 << 20, "{written} bytes of log");
    assert!(written > 256 * 4096, "{written} bytes of log");
    t.finish().await;
}

#[tokio::test]
async fn thousands_of_requests_trip_the_request_limit() {
    let mut t = Hostile::new(
        "burst",
        Setup {
            limits: "max_requests = 20",
            ..Setup::default()
        },
    );
    let a = t.httpbin();
    let args = json!({ "request": get(&a, "/get")["request"], "count": 5000 });
    let (name, value, _) = limit(t.call("hostile.burst", args).await);
    assert_eq!((name, value), ("max_requests", 20));
    let args = json!({ "request": get(&a, "/get")["request"], "count": 5 });
    assert_eq!(ok(t.call("hostile.burst", args).await), 5);
    t.finish().await;
}

#[tokio::test]
async fn trap_halfway_through_a_request_leaves_the_host_healthy() {
    let mut t = Hostile::new("trap-mid-request", Setup::default());
    let a = t.httpbin();
    for _ in 0..3 {
        let args = request("POST", "http", &a, "/anything", &[], None);
        match t.call("hostile.trap-mid-request", args).await {
            Err(CallError::Trap { reason, .. }) => {
                assert!(reason.contains("unreachable"), "{reason}")
            }
            other => panic!("expected a trap, got {other:?}"),
        }
    }
    t.finish().await;
}

#[tokio::test]
async fn concurrent_calls_over_the_caps_are_refused() {
    let t = Hostile::new(
        "concurrency",
        Setup {
            host: "max_concurrent_calls = 3\nmax_concurrent_calls_per_user = 2",
            ..Setup::default()
        },
    );
    let a = t.httpbin();
    let slow = |user: &str| {
        t.host.call(CallRequest {
            tool: "hostile.send".into(),
            user: user.into(),
            caller: "e2e".into(),
            args: get(&a, "/delay/1"),
        })
    };
    let late = |user: &'static str| {
        let call = t.host.call(CallRequest {
            tool: "hostile.recall".into(),
            user: user.into(),
            caller: "e2e".into(),
            args: json!({}),
        });
        async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            call.await
        }
    };
    // Two of alice's calls and one of bob's fill the host.
    let (a1, a2, b1, alice_third, carol) = tokio::join!(
        slow("alice"),
        slow("alice"),
        slow("bob"),
        late("alice"),
        late("carol")
    );
    for r in [&a1, &a2, &b1] {
        assert!(r.is_ok(), "{r:?}");
    }
    let refused = |r: &Result<_, CallError>, which: &str, value: u64| match r {
        Err(CallError::Limit {
            limit, value: v, ..
        }) => *limit == which && *v == value,
        _ => false,
    };
    // late() starts its call only after its sleep, while the others run.
    assert!(
        refused(&alice_third, "max_concurrent_calls_per_user", 2),
        "{alice_third:?}"
    );
    assert!(refused(&carol, "max_concurrent_calls", 3), "{carol:?}");
    t.finish().await;
}
