#!/usr/bin/env bash
# Runs Airlock's benchmark suite in one go: builds the host and the example
# tools in release mode, starts a loopback upstream, measures the host next
# to a native client in the same run, prints the table and rewrites
# BENCHMARKS.md.
#
#   scripts/bench.sh           full run (a few minutes), rewrites BENCHMARKS.md
#   scripts/bench.sh --quick   few iterations, dev build, writes
#                              target/BENCHMARKS.quick.md: the CI smoke check
#                              that the suite still runs, not a measurement
set -euo pipefail
cd "$(dirname "$0")/.."

rustup target add wasm32-wasip2 >/dev/null 2>&1 || true
jobs="${CARGO_BUILD_JOBS:-1}"
if [[ "${1:-}" == "--quick" ]]; then
    # The dev profile reuses the test build's artifacts (dependencies are
    # optimized there too), so the smoke check adds no release build.
    exec cargo bench --locked -j "$jobs" -p airlock --bench airlock --profile dev -- --quick
fi
exec cargo bench --locked -j "$jobs" -p airlock --bench airlock -- "$@"
