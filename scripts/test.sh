#!/usr/bin/env bash
# Runs the whole test suite: installs the toolchain target and the peer
# servers, builds the example tools from source, and runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

rustup target add wasm32-wasip2 >/dev/null 2>&1 || true
scripts/peers.sh
cargo test --workspace --locked "$@"
