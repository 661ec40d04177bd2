//! A tool that tries every escape Airlock's hostile-guest suite checks.
//!
//! Each export is one attack, written the way a real tool would write it:
//! with the Rust standard library where it reaches the resource, and with
//! raw `wasi:sockets` and `wasi:http` calls where it does not. The tests in
//! `tests/e2e/hostile_*.rs` call these exports and check what the host let
//! through. Nothing here is meant to be useful.

wit_bindgen::generate!({
    path: ["../../wit", "wit"],
    world: "airlock-examples:hostile/hostile-tool",
    generate_all,
});

mod escape;
mod web;

use exports::airlock_examples::hostile::{compute, state};
use std::cell::RefCell;

struct Hostile;

thread_local! {
    /// A note left by an earlier call, if instances were ever reused.
    static NOTE: RefCell<Option<String>> = const { RefCell::new(None) };
}

impl compute::Guest for Hostile {
    fn spin() -> u64 {
        let mut n: u64 = 0;
        loop {
            n = std::hint::black_box(n.wrapping_add(1));
        }
    }

    fn recurse(depth: u64) -> u64 {
        deep(std::hint::black_box(depth))
    }

    fn hog(mib: u32) -> u32 {
        let mut blocks = Vec::new();
        for i in 0..mib {
            // Touch every page so the memory is really used.
            blocks.push(vec![i as u8 | 1; 1 << 20]);
        }
        std::hint::black_box(&blocks);
        blocks.len() as u32
    }

    fn shout(bytes: u64) -> String {
        "A".repeat(bytes as usize)
    }

    fn print(bytes: u64) -> u64 {
        use std::io::Write as _;
        let line = "PRINTED-BY-THE-TOOL\n".repeat(64);
        let mut written = 0;
        while written < bytes {
            let _ = std::io::stdout().write_all(line.as_bytes());
            let _ = std::io::stderr().write_all(line.as_bytes());
            written += line.len() as u64;
        }
        written
    }

    fn chatter(lines: u32) -> u32 {
        let line = "L".repeat(4096);
        for _ in 0..lines {
            airlock::tool::log::write(airlock::tool::log::Level::Error, &line);
        }
        lines
    }
}

/// Non-tail recursion the optimizer cannot turn into a loop: each result
/// passes through `black_box` before the addition.
#[inline(never)]
fn deep(depth: u64) -> u64 {
    if depth == 0 {
        return 0;
    }
    let below = deep(std::hint::black_box(depth - 1));
    std::hint::black_box(below) + u64::from(depth == u64::MAX)
}

impl state::Guest for Hostile {
    fn remember(note: String) -> Option<String> {
        NOTE.with(|n| n.borrow_mut().replace(note))
    }

    fn recall() -> Option<String> {
        NOTE.with(|n| n.borrow().clone())
    }
}

export!(Hostile);
