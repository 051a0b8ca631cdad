#!/usr/bin/env bash
# Runs every test: unit and integration tests (the real binary over raw sockets), the fuzz
# regression inputs, then the real clients (aws CLI, boto3, s3cmd) against the real binary.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --workspace --bins
cargo test --workspace

if [ ! -x .venv/bin/pytest ]; then
  python3 -m venv .venv
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -r tests/clients/requirements.txt
fi
KEEL_BIN="$PWD/target/debug/keel" .venv/bin/pytest -q tests/clients
