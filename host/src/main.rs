//! The `airlock` binary.

#![forbid(unsafe_code)]

mod cli;

/// Calls hand work between threads (a request's task, the connection's
/// task, the audit writer), so memory is often freed on another thread than
/// the one that allocated it; glibc's allocator takes a lock for that, and
/// under load those locks put threads to sleep (see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    std::process::exit(cli::main());
}
