#!/usr/bin/env bash
# Installs the real peer servers the tests and the demo run against into the
# git-ignored .peers/ folder: httpbin and the MCP Python SDK (PyPI) in a
# virtual environment.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .peers/venv/bin/python ]; then
  python3 -m venv .peers/venv
fi
.peers/venv/bin/python -m pip install --quiet --disable-pip-version-check -r tests/peers/requirements.txt
