#!/usr/bin/env bash
# Rebalance when a fourth node joins a three-node cluster (issue 14): the share of objects that
# moves (HRW: about 1/4), how fast they move (unpaced: --rebalance-rate 0), and GETs through a
# node meanwhile (errors must be 0; throughput against the same load before the join).
#
# One etcd member and the nodes on loopback, all on this machine's cores.
#   scripts/bench-rebalance.sh [OBJECTS] [SIZE]     (defaults 20000 4KiB; KEEL_BIN, BENCH_BIN)
set -euo pipefail
[ -n "${TRACE:-}" ] && set -x
cd "$(dirname "$0")/.."
. scripts/lib.sh
N=${1:-20000}
SIZE=${2:-4KiB}
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

E=http://127.0.0.1:23792
start_etcd "$dir" $E "$E" 23802
pids+=($!)
wait_etcd $E

node() { # id port [flags...]
  local id=$1 port=$2; shift 2
  "$KEEL" serve --listen 127.0.0.1:$port --mountpath "$dir/$id" --sync none --threads 1 --user AK:SK \
    --cluster $E --node-id "$id" --advertise http://127.0.0.1:$port "$@" >"$dir/$id.out" 2>"$dir/$id.log" &
  pids+=($!)
  for _ in $(seq 300); do grep -q "listening on" "$dir/$id.out" 2>/dev/null && return; sleep 0.1; done
  echo "$id did not start"; cat "$dir/$id.log"; exit 1
}
status() { "$KEEL" cluster status --cluster $E --json; }
for i in 0 1 2; do node n$i 1920$i --rebalance-rate 0; done
while status | grep -q '"rebalancing":true'; do sleep 0.2; done

kb() { # duration [flags] -> "ops/s errors"
  local d=$1; shift
  "$BENCH" --endpoint http://127.0.0.1:19200 --access-key AK --secret-key SK --workload get --size "$SIZE" \
    --objects "$N" --concurrency 16 --duration "$d" --bucket rebal "$@" 2>/dev/null | awk '$1=="GET" {print $4, $3}'
}
# Fills the bucket (keel-bench writes its objects first), then GETs for 5 s: the baseline.
before=$(kb 5s)
bytes_each=$(numfmt --from=iec "${SIZE%B}" 2>/dev/null || numfmt --from=iec-i "${SIZE%B}")

# GETs through n0 while the fourth node joins and objects move, 2 s at a time (errors must be 0).
( while [ ! -e "$dir/stop" ]; do kb 2s --no-prepare >>"$dir/during.txt"; done ) &
loop=$!
sleep 1
t0=$(date +%s.%N)
node n3 19203 --rebalance-rate 0
while status | grep -q '"rebalancing":true'; do sleep 0.2; done
t1=$(date +%s.%N)
touch "$dir/stop"
wait $loop
during=$(awk '{ops += $1; err += $2; n++} END {printf "%.0f %d", ops / n, err}' "$dir/during.txt")
st=$(status)
moved=$(sed -E 's/.*"moved_objects":([0-9]+).*/\1/' <<<"$st")
moved_bytes=$(sed -E 's/.*"moved_bytes":([0-9]+).*/\1/' <<<"$st")
secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", b - a}')
echo "# $(date -u +%F) rebalance: 3 nodes + 1 joining, $N x $SIZE objects, loopback, --rebalance-rate 0"
echo "moved: $moved of $N objects ($(awk -v m="$moved" -v n="$N" 'BEGIN {printf "%.3f", m / n}') of them; HRW expects 0.250)"
echo "moved bytes: $moved_bytes ($(awk -v m="$moved_bytes" -v n="$N" -v b="$bytes_each" 'BEGIN {printf "%.3f", m / (n * b)}') of the data)"
echo "join to rebalanced: ${secs}s, $(awk -v m="$moved" -v s="$secs" 'BEGIN {printf "%.0f", m / s}') objects/s, $(awk -v m="$moved_bytes" -v s="$secs" 'BEGIN {printf "%.1f", m / s / 1e6}') MB/s"
echo "GET through n0 before: ${before% *} ops/s (errors ${before#* }); during: ${during% *} ops/s (errors ${during#* })"
