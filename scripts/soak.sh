#!/usr/bin/env bash
# The long versions of the reliability tests: many rounds of kill -9 under concurrent PUT,
# overwrite, DELETE and multipart load (the test suite runs 5).
#   scripts/soak.sh [ROUNDS]    # default 200
set -euo pipefail
cd "$(dirname "$0")/.."
KEEL_CRASH_ROUNDS="${1:-200}" cargo test --release -p keel --test integration acknowledged_writes_survive_repeated -- --nocapture
