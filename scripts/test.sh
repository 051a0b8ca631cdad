#!/usr/bin/env bash
# Runs every test: unit and integration tests (the real binary over raw sockets), the fuzz
# regression inputs, then the real clients (aws CLI, boto3, s3cmd) against the real binary.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/check-layers.sh
cargo build --workspace --bins
cargo test --workspace

# The real clients live in venvs made on first use: .venv (aws CLI, boto3, s3cmd, minio at their
# latest releases) and .venv-fsspec (s3fs, whose aiobotocore pins an older botocore).
# A venv older than requirements.txt is brought up to date.
if [ ! -x .venv/bin/pytest ] || [ tests/clients/requirements.txt -nt .venv/.requirements ]; then
  [ -x .venv/bin/python ] || python3 -m venv .venv
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -r tests/clients/requirements.txt
  touch .venv/.requirements
fi
# Azurite (Azure Blob Storage's emulator) for the backend-bucket tests, from npm.
if [ ! -x tests/clients/node_modules/.bin/azurite-blob ]; then
  npm install --prefix tests/clients --silent --no-audit --no-fund
fi
if [ ! -x .venv-fsspec/bin/pytest ]; then
  python3 -m venv .venv-fsspec
  .venv-fsspec/bin/pip install -q --upgrade pip
  .venv-fsspec/bin/pip install -q -r tests/clients/requirements-fsspec.txt
fi
export KEEL_BIN="$PWD/target/debug/keel"
.venv/bin/pytest -q tests/clients
# The same client tests against a cluster (three etcd members; three data nodes and a gateway
# per test module, the clients talking to the gateway: every key is forwarded to its owner).
KEEL_CLUSTER=1 .venv/bin/pytest -q tests/clients --ignore=tests/clients/test_backend.py \
  --ignore=tests/clients/test_s3fs.py --ignore=tests/clients/test_cluster.py
.venv-fsspec/bin/pytest -q tests/clients/test_s3fs.py
