#!/usr/bin/env bash
# Installs the real peer servers the tests and the demo run against into the
# git-ignored .peers/ folder: httpbin and the MCP Python SDK (PyPI) in a
# virtual environment, and oidc-provider (npm) in .peers/node.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .peers/venv/bin/python ]; then
  python3 -m venv .peers/venv
fi
.peers/venv/bin/python -m pip install --quiet --disable-pip-version-check -r tests/peers/requirements.txt

# oidc-provider (npm), pinned by tests/peers/node/package-lock.json, in
# .peers/node; reinstalled only when the lock file changes.
mkdir -p .peers/node
if ! cmp -s tests/peers/node/package-lock.json .peers/node/package-lock.json \
  || [ ! -d .peers/node/node_modules/oidc-provider ]; then
  cp tests/peers/node/package.json tests/peers/node/package-lock.json .peers/node/
  (cd .peers/node && npm ci --no-audit --no-fund --silent)
fi
