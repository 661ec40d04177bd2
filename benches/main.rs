//! Airlock's benchmark suite. Run it with `scripts/bench.sh` (full, release
//! build, rewrites `BENCHMARKS.md`) or `scripts/bench.sh --quick` (few
//! iterations, writes `target/BENCHMARKS.quick.md`; the CI smoke check).
//!
//! Every measurement runs in this one process against the real host, with a
//! loopback upstream in a child process; the native baseline is measured in
//! the same run against the same upstream. Plain timing, many iterations,
//! nearest-rank percentiles. `--only N` runs item N alone, for a profiler;
//! `--workers N` runs on N runtime threads instead of one per core. Either
//! prints the table and writes no file.

mod report;
mod scenarios;
mod stats;
mod upstream;

use std::path::PathBuf;

/// The same allocator as the `airlock` binary, so the host is measured as it
/// runs there.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--upstream") {
        upstream::serve();
        return;
    }
    let quick = args.iter().any(|a| a == "--quick");
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf();
    let out = match args.iter().position(|a| a == "--out") {
        Some(i) => PathBuf::from(args.get(i + 1).expect("--out needs a path")),
        None if quick => root.join("target/BENCHMARKS.quick.md"),
        None => root.join("BENCHMARKS.md"),
    };

    // `--only N` runs one item (for profiling) and writes no file; so does
    // a run with `--workers`.
    let only = args.iter().position(|a| a == "--only").map(|i| {
        args[i + 1]
            .parse::<u8>()
            .expect("--only takes an item number")
    });

    // `--workers N` sets the runtime's worker threads (default: one per
    // core), to see what handing tasks between threads costs.
    let workers = args.iter().position(|a| a == "--workers").map(|i| {
        args.get(i + 1)
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|n| *n > 0)
            .expect("--workers takes a positive number")
    });
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = workers {
        builder.worker_threads(n);
    }
    let runtime = builder.enable_all().build().expect("building the runtime");
    let results = runtime.block_on(report::run(quick, only));
    print!("{}", report::table(&results));
    if only.is_some() || workers.is_some() {
        return;
    }
    let text = report::markdown(&results, quick);
    std::fs::write(&out, text).unwrap_or_else(|e| panic!("writing {}: {e}", out.display()));
    eprintln!("wrote {}", out.display());
}
