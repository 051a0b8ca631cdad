#!/usr/bin/env bash
# A/B of two keel binaries on per-request cost: one shard on core 0 (--sync none), keel-bench
# from core 1 (32 in flight), signed GET 4 KiB, signed PUT 4 KiB and anonymous GET 4 KiB, rounds
# alternating between the binaries. Prints requests/s per round; compare medians.
#
#   scripts/ab-requests.sh /tmp/keel-old target/release/keel [ROUNDS] [SECONDS] [KEEL_BENCH]
set -euo pipefail
. "$(dirname "$0")/lib.sh"
A=$1; B=$2; ROUNDS=${3:-3}; DUR=${4:-6}; KB=${5:-target/release/keel-bench}
W=$(mktemp -d /tmp/keel-ab-XXXX)
PID=
trap '[ -n "$PID" ] && kill -9 "$PID" 2>/dev/null; rm -rf "$W"' EXIT
bench() { taskset -c 1 "$KB" --endpoint http://127.0.0.1:18341 --size 4KiB --objects 100 --concurrency 32 --duration "${DUR}s" "$@" 2>/dev/null; }
rate() { awk -v op="$1" '$1==op {print $4}'; }
for round in $(seq "$ROUNDS"); do
  for bin in "$A" "$B"; do
    rm -rf "$W/d"
    taskset -c 0 "$bin" serve --mountpath "$W/d" --listen 127.0.0.1:18341 --sync none --threads 1 \
      --access-key AK --secret-key SK > "$W/log" 2>&1 &
    PID=$!
    wait_port 18341
    get=$(bench --workload get --access-key AK --secret-key SK | rate GET)
    put=$(bench --workload put --access-key AK --secret-key SK --no-prepare | rate PUT)
    stop_pid "$PID"; PID=
    rm -rf "$W/d"
    taskset -c 0 "$bin" serve --mountpath "$W/d" --listen 127.0.0.1:18341 --sync none --threads 1 --anonymous \
      > "$W/log" 2>&1 &
    PID=$!
    wait_port 18341
    anon=$(bench --workload get --anonymous | rate GET)
    stop_pid "$PID"; PID=
    printf 'round %s  %-44s GET signed %8s/s  PUT signed %8s/s  GET anonymous %8s/s\n' "$round" "$bin" "$get" "$put" "$anon"
  done
done
