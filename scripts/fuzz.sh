#!/usr/bin/env bash
# Runs every fuzz target for N seconds (default 10). Needs a nightly toolchain and cargo-fuzz
# (`cargo install cargo-fuzz --locked`). Crashes land in fuzz/artifacts/<target>/; copy the
# input into fuzz/regressions/<target>/ once fixed so `cargo test` replays it on stable.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-10}"
for t in $(sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v keel-fuzz); do
  mkdir -p "fuzz/corpus/$t"
  cp -n fuzz/regressions/"$t"/* "fuzz/corpus/$t/" 2>/dev/null || true
  echo "== fuzz $t for ${secs}s"
  # A target that does not build fails the run (the run below hides its own output).
  if ! cargo +nightly fuzz build "$t" >"fuzz/build-$t.log" 2>&1; then
    cat "fuzz/build-$t.log" >&2
    echo "fuzz target $t does not build" >&2
    exit 1
  fi
  rm -f "fuzz/build-$t.log"
  cargo +nightly fuzz run "$t" "fuzz/corpus/$t" -- -max_total_time="$secs" -max_len=8192 2>&1 | grep -E "^(Done [0-9]+ runs|==[0-9]+==|SUMMARY|thread)" || true
  if [ -n "$(ls -A "fuzz/artifacts/$t" 2>/dev/null)" ]; then
    echo "fuzz target $t found a failing input: fuzz/artifacts/$t" >&2
    exit 1
  fi
done
