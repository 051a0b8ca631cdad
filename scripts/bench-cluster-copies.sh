#!/usr/bin/env bash
# Copies on distinct nodes (issue 15, DESIGN D38): three keel nodes and one etcd member on
# loopback, all on this machine's cores (what a second copy costs in CPU, not in network).
#  1. PUT and GET through one node (it forwards 2/3 of the keys to their primary), a bucket with
#     copies=2 against one with copies=1, same cluster, same session, alternated RUNS times:
#     4 KiB (32 in flight) and 64 MiB (4 in flight) PUTs, 4 KiB GETs.
#  2. Repair: OBJECTS objects of SIZE in a copies=2 bucket, kill -9 of the third node; the time
#     from the kill until `keel cluster status` says under_replicated 0 (its lease, 2 s, lapses
#     first), the bytes the survivors copied (their log), GB/min; and a 4 KiB GET load's p99
#     through the first node during the repair (from "down" on) against before.
#   scripts/bench-cluster-copies.sh [SECS=6] [RUNS=2] [OBJECTS=5000] [SIZE=64KiB]
# Environment: RATE (the nodes' --rebalance-rate, which paces the repair; default keel's),
# REPAIR_ONLY=1 (skip the PUT/GET table).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
DUR=${1:-6}
RUNS=${2:-2}
OBJECTS=${3:-5000}
SIZE=${4:-64KiB}
KEEL=${KEEL_BIN:-target/release/keel}
BENCH=${BENCH_BIN:-target/release/keel-bench}
[ -x "$KEEL" ] && [ -x "$BENCH" ] || cargo build --release -q -p keel -p keel-benches
dir=$(mktemp -d -p "${BENCH_DIR:-/tmp}")
pids=()
cleanup() {
  kill "${pids[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
E=http://127.0.0.1:23993
start_etcd "$dir" "$E" "$E" 23994
pids+=($!)
wait_etcd "$E" || { echo "etcd did not start"; cat "$dir/etcd.log"; exit 1; }
for i in 1 2 3; do
  "$KEEL" serve --listen 127.0.0.1:1995$i --anonymous --sync none --threads 1 --mountpath "$dir/n$i" \
    --cluster "$E" --cluster-name bcc --node-id n$i --advertise http://127.0.0.1:1995$i --lease-ttl 2 \
    ${RATE:+--rebalance-rate "$RATE"} \
    >"$dir/n$i.out" 2>"$dir/n$i.log" &
  pids+=($!)
  wait_port 1995$i || { echo "n$i did not start"; cat "$dir/n$i.log"; exit 1; }
done
EP=http://127.0.0.1:19951
status() { "$KEEL" cluster status --cluster "$E" --cluster-name bcc --json; }
# Every node active and reconciled, and the members' copies counted whole.
for _ in $(seq 300); do
  status | python3 -c 'import json,sys; s=json.load(sys.stdin); sys.exit(0 if all(n["state"]=="active" and not n["reconciling"] for n in s["nodes"]) and len(s["nodes"])==3 else 1)' && break
  sleep 0.2
done
kb() { "$BENCH" --endpoint "$EP" --anonymous "$@" 2>/dev/null; }
if [ -n "${REPAIR_ONLY:-}" ]; then copies_buckets; else copies_table "# $(date -u +%F) copies=2 vs copies=1 across 3 nodes on loopback (one etcd), through one node, --sync none, ${DUR}s runs"; fi

echo
echo "# repair: $OBJECTS objects of $SIZE in a copies=2 bucket, then kill -9 of n3 (lease 2 s), --rebalance-rate ${RATE:-default}"
kb --bucket two --workload get --size "$SIZE" --objects "$OBJECTS" --concurrency 16 --duration 1s >/dev/null
kb --bucket fgload --workload get --size 4KiB --objects 1000 --concurrency 8 --duration 1s >/dev/null
until status | grep -q '"under_replicated":0'; do sleep 0.5; done
before=$(p99s 4 | summary)
t0=$(date +%s.%N)
kill -9 "${pids[3]}"
# Down (lease lapsed), then the survivors' passes end with nothing short. The foreground load
# runs from "down" (the repair's start) on: the seconds before, requests to the dead node's keys
# wait on its connections and fall back, which is the failover's cost, not the repair's.
until status | grep -q '"state":"down"'; do sleep 0.1; done
t1=$(date +%s.%N)
(
  while [ ! -e "$dir/done" ]; do p99s 1 >>"$dir/during"; done
) &
load=$!
until status | grep -q '"under_replicated":0'; do sleep 0.1; done
t2=$(date +%s.%N)
touch "$dir/done"
wait "$load" 2>/dev/null || true
bytes=$(grep -h "copies: repair pass" "$dir/n1.log" "$dir/n2.log" | sed -n 's/.* bytes=\([0-9]*\).*/\1/p' | awk '{s+=$1} END {print s+0}')
copied=$(grep -h "copies: repair pass" "$dir/n1.log" "$dir/n2.log" | sed -n 's/.* copied=\([0-9]*\).*/\1/p' | awk '{s+=$1} END {print s+0}')
awk -v a="$t0" -v b="$t1" -v c="$t2" -v bytes="$bytes" -v n="$copied" 'BEGIN {
  printf "kill -9 -> down %.1f s; down -> under_replicated 0 %.1f s (%.1f s from the kill)\n", b - a, c - b, c - a
  printf "copied %d objects, %.2f GB: %.2f GB/min, %.0f objects/s (from down)\n", n, bytes / 1e9, bytes / 1e9 / ((c - b) / 60), n / (c - b)
}'
echo "GET 4 KiB p99 through n1 before: $before"
echo "GET 4 KiB p99 during the repair: $(summary <"$dir/during")"
