#!/usr/bin/env bash
# The main job on the embedded defaults: build Airlock and the fetch tool,
# start httpbin on loopback, link user alice with a demo token, and let the
# tool call httpbin's /bearer through the airlock. The tool never sees the
# token: httpbin confirms the request was authenticated, and its echo of the
# token comes back as [REDACTED].
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

rustup target add wasm32-wasip2 >/dev/null 2>&1 || true
scripts/peers.sh
# Building airlock-tests compiles the example tools for wasm32-wasip2 and
# embeds their documented WIT into target/guests/NAME.wasm.
cargo build --quiet --locked -p airlock -p airlock-tests
airlock="$root/target/debug/airlock"
wasm="$root/target/guests/fetch.wasm"

# httpbin serves until this script exits and closes its standard input.
coproc HTTPBIN { exec "$root/.peers/venv/bin/python" "$root/tests/peers/httpbin_server.py"; }
read -r port <&"${HTTPBIN[0]}"

demo=$(mktemp -d)
# Embed the tool's declaration (what it needs) in a copy of the component.
"$airlock" pack "$wasm" guest-examples/fetch/airlock.toml -o "$demo/fetch.wasm" >/dev/null
wasm="$demo/fetch.wasm"
cat > "$demo/airlock.toml" <<TOML
[connections.demo]
audience = ["http://127.0.0.1:$port"]

[tools.fetch]
source = "$wasm"
sha256 = "$(sha256sum "$wasm" | cut -d' ' -f1)"

[[tools.fetch.endpoints]]
url = "http://127.0.0.1:$port/**"
methods = ["GET", "POST"]
connection = "demo"
allow_private = true
TOML
cd "$demo"

echo "== what the component declares"
"$airlock" inspect fetch.wasm | sed -n '/^declaration/,/^tools/p'
echo "== the config and the component check out"
"$airlock" check
echo

echo "== a demo token for alice, read from stdin"
echo "demo-token-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')" | "$airlock" vault put --user alice --connection demo
echo
echo "== the fetch tool calls httpbin /bearer as alice"
"$airlock" call fetch.fetch --user alice --args "{\"url\": \"http://127.0.0.1:$port/bearer\"}"
echo
echo "== a URL outside the grant is denied"
"$airlock" call fetch.fetch --user alice --args "{\"url\": \"http://localhost:$port/bearer\"}" || true
echo
echo "== bob has no linked account"
"$airlock" call fetch.fetch --user bob --args "{\"url\": \"http://127.0.0.1:$port/bearer\"}" || true
rm -rf "$demo"
