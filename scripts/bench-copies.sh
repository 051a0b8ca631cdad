#!/usr/bin/env bash
# Copies on distinct mountpaths (issue 15), one node with three mountpaths (directories on this
# machine's one disk: what copies cost in CPU and page cache, not a second drive's bandwidth).
#  1. PUT and GET, bucket prop copies=2 against copies=1, same server, same session, alternated
#     RUNS times: 4 KiB (32 in flight) and 64 MiB (4 in flight) PUTs, 4 KiB GETs.
#  2. Repair: OBJECTS objects of SIZE in a copies=2 bucket, one mountpath's directory removed;
#     the time until `keel_under_replicated_objects` is 0 (the prober notices within 2 s), the
#     repair's GB/min and objects/s, and a 4 KiB GET load's p99 during the repair against before.
#   scripts/bench-copies.sh [SECS=6] [RUNS=2] [OBJECTS=10000] [SIZE=64KiB] [SYNC=none] [REPAIR_RATE=256MiB]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
DUR=${1:-6}
RUNS=${2:-2}
OBJECTS=${3:-10000}
SIZE=${4:-64KiB}
SYNC=${5:-none}
REPAIR_RATE=${6:-256MiB}
cargo build --release -q -p keel -p keel-benches
dir=$(mktemp -d -p "${BENCH_DIR:-/tmp}")
pid=""
cleanup() {
  [ -n "$pid" ] && stop_pid "$pid"
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
EP=http://127.0.0.1:19931
serve() {
  target/release/keel serve --listen 127.0.0.1:19931 --anonymous --sync "$SYNC" --threads 2 \
    --mountpath "$dir/a" --mountpath "$dir/b" --mountpath "$dir/c" --repair-rate "$REPAIR_RATE" "$@" >>"$dir/log" 2>&1 &
  pid=$!
  wait_port 19931 || { echo "keel did not start"; cat "$dir/log"; exit 1; }
}
kb() { target/release/keel-bench --endpoint "$EP" --anonymous "$@" 2>/dev/null; }
# ops/s and p99 ms of a keel-bench run's result line.
col() { awk -v op="$1" -v c="$2" '$1==op {print $c}'; }
metric() { curl -s "$EP/metrics" | awk -v m="$1" '$1==m {print $2}'; }

serve
for b in one two fgload; do curl -sf -X PUT "$EP/$b" >/dev/null; done
# `two` is measured; `fgload` (also copies=2) carries the foreground load during the repair, apart
# from the repaired objects (keel-bench's keys would overwrite them).
for b in two fgload; do curl -sf -X PUT "$EP/_keel/buckets/$b/props?copies=2" | grep -q '"copies":2'; done
echo "# $(date -u +%F) copies=2 vs copies=1, one node, 3 mountpaths on one disk, --sync $SYNC, ${DUR}s runs"
printf "%-28s %12s %12s %8s\n" "workload" "copies=1" "copies=2" "ratio"
row() {
  local name=$1 c=$2; shift 2
  local a b
  a=$(kb --bucket one "$@" | col "$OP" "$c")
  b=$(kb --bucket two "$@" | col "$OP" "$c")
  printf "%-28s %12s %12s %8.2f\n" "$name" "$a" "$b" "$(echo "$b / $a" | bc -l)"
}
for r in $(seq "$RUNS"); do
  OP=PUT row "PUT 4 KiB ops/s (run $r)" 4 --workload put --size 4KiB --objects 1000 --concurrency 32 --duration "${DUR}s"
  OP=PUT row "PUT 64 MiB MB/s (run $r)" 5 --workload put --size 64MiB --objects 8 --concurrency 4 --duration "${DUR}s"
  OP=GET row "GET 4 KiB ops/s (run $r)" 4 --workload get --size 4KiB --objects 1000 --concurrency 32 --duration "${DUR}s"
done

echo
echo "# repair: $OBJECTS objects of $SIZE in a copies=2 bucket, then $dir/a removed; --repair-rate $REPAIR_RATE"
kb --bucket two --workload get --size "$SIZE" --objects "$OBJECTS" --concurrency 32 --duration 1s >/dev/null
# The foreground load: back-to-back 2 s runs of 4 KiB GETs, each one's p99 kept (before the
# failure, during the repair, after it).
p99s() {
  for _ in $(seq "$1"); do
    kb --bucket fgload --workload get --size 4KiB --objects 1000 --no-prepare --concurrency 8 --duration 2s | col GET 9
  done
}
summary() { sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)] " ms (median of " NR " runs, max " v[NR] ")"}'; }
kb --bucket fgload --workload get --size 4KiB --objects 1000 --concurrency 8 --duration 1s >/dev/null
before=$(p99s 4 | summary)
passes=$(metric keel_repair_passes_total)
objs0=$(metric keel_repaired_objects_total)
bytes0=$(metric keel_repaired_bytes_total)
(
  while [ ! -e "$dir/done" ]; do p99s 1 >>"$dir/during"; done
) &
load=$!
t0=$(date +%s.%N)
rm -rf "$dir/a"
until [ "$(curl -s "$EP/metrics" | grep -c 'keel_mountpath_poisoned{.*} 1')" = 1 ]; do sleep 0.1; done
passes=$(metric keel_repair_passes_total)
while :; do
  sleep 0.2
  p=$(metric keel_repair_passes_total)
  u=$(metric keel_under_replicated_objects)
  if [ "$p" -gt "$passes" ] && [ "$u" = 0 ]; then break; fi
done
t1=$(date +%s.%N)
touch "$dir/done"
wait $load 2>/dev/null || true
during=$(summary <"$dir/during")
after=$(p99s 4 | summary)
objs=$(( $(metric keel_repaired_objects_total) - objs0 ))
bytes=$(( $(metric keel_repaired_bytes_total) - bytes0 ))
secs=$(echo "$t1 - $t0" | bc -l)
printf "death to under_replicated=0: %.1f s; repaired %d objects, %.2f GB: %.2f GB/min, %.0f objects/s\n" \
  "$secs" "$objs" "$(echo "$bytes / 1000000000" | bc -l)" "$(echo "$bytes / 1000000000 / $secs * 60" | bc -l)" "$(echo "$objs / $secs" | bc -l)"
echo "GET 4 KiB p99 (8 in flight, 2 s runs): before $before; during the repair $during; after $after"
