//! Airlock's benchmark suite. Run it with `scripts/bench.sh` (full, release
//! build, rewrites `BENCHMARKS.md`) or `scripts/bench.sh --quick` (few
//! iterations, writes `target/BENCHMARKS.quick.md`; the CI smoke check).
//!
//! Every measurement runs in this one process against the real host, with a
//! loopback upstream in a child process; the native baseline is measured in
//! the same run against the same upstream. Plain timing, many iterations,
//! nearest-rank percentiles. `--only N` runs item N alone, for a profiler.

mod report;
mod scenarios;
mod stats;
mod upstream;

use std::path::PathBuf;

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

    // `--only N` runs one item (for profiling) and writes no file.
    let only = args.iter().position(|a| a == "--only").map(|i| {
        args[i + 1]
            .parse::<u8>()
            .expect("--only takes an item number")
    });

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("building the runtime");
    let results = runtime.block_on(report::run(quick, only));
    print!("{}", report::table(&results));
    if only.is_some() {
        return;
    }
    let text = report::markdown(&results, quick);
    std::fs::write(&out, text).unwrap_or_else(|e| panic!("writing {}: {e}", out.display()));
    eprintln!("wrote {}", out.display());
}
