#!/usr/bin/env bash
# A 1000-key ListObjectsV2 page through a cluster of 4 nodes against a cluster of one (issue 14:
# target ≤ 2× one node's time). Each cluster: one etcd member, nodes on loopback (--threads 1),
# OBJECTS keys of 1 byte; keel-bench lists pages of 1000 from random start-after keys through
# the first node, one request at a time, for SECONDS.
#   scripts/bench-cluster-list.sh [OBJECTS=20000] [SECONDS=8]     (KEEL_BIN, BENCH_BIN)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
N=${1:-20000}
DUR=${2:-8}
KEEL=${KEEL_BIN:-target/release/keel}
BENCH=${BENCH_BIN:-target/release/keel-bench}
[ -x "$KEEL" ] && [ -x "$BENCH" ] || cargo build --release -q -p keel -p keel-benches
dir=$(mktemp -d)
pids=()
cleanup() {
  kill "${pids[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
E=http://127.0.0.1:23793
start_etcd "$dir" $E "$E" 23803
pids+=($!)
wait_etcd $E

echo "# $(date -u +%F) ListObjectsV2 max-keys=1000, $N keys, ${DUR}s, one request at a time, through node 0"
printf "%-8s %10s %10s %10s\n" nodes "pages/s" "p50 ms" "p99 ms"
declare -A p50
for n in ${SIZES:-1 4}; do
  for i in $(seq 0 $((n - 1))); do
    port=$((19300 + n * 10 + i))
    "$KEEL" serve --listen 127.0.0.1:$port --mountpath "$dir/c$n-$i" --sync none --threads 1 --user AK:SK \
      --cluster $E --cluster-name list$n --node-id n$i --advertise http://127.0.0.1:$port \
      >"$dir/c$n-$i.out" 2>"$dir/c$n-$i.log" &
    pids+=($!)
    for _ in $(seq 300); do grep -q "listening on" "$dir/c$n-$i.out" 2>/dev/null && break; sleep 0.1; done
  done
  read -r ops p50ms p99ms < <("$BENCH" --endpoint http://127.0.0.1:$((19300 + n * 10)) --access-key AK --secret-key SK \
    --workload list --size 1 --objects "$N" --concurrency 1 --duration "${DUR}s" --bucket list-bench 2>/dev/null |
    awk '$1=="LIST" {print $4, $6, $8}')
  p50[$n]=$p50ms
  printf "%-8s %10s %10s %10s\n" "$n" "$ops" "$p50ms" "$p99ms"
done
last=${SIZES:-1 4}; last=${last##* }
echo "p50 of $last nodes / 1 node: $(awk -v a="${p50[$last]}" -v b="${p50[1]}" 'BEGIN {printf "%.2f", a / b}') (target <= 2)"
