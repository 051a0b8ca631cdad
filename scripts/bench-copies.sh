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
metric() { curl -s "$EP/metrics" | awk -v m="$1" '$1==m {print $2}'; }

serve
# `two` is measured; `fgload` (also copies=2) carries the foreground load during the repair, apart
# from the repaired objects (keel-bench's keys would overwrite them).
copies_table "# $(date -u +%F) copies=2 vs copies=1, one node, 3 mountpaths on one disk, --sync $SYNC, ${DUR}s runs"

echo
echo "# repair: $OBJECTS objects of $SIZE in a copies=2 bucket, then $dir/a removed; --repair-rate $REPAIR_RATE"
kb --bucket two --workload get --size "$SIZE" --objects "$OBJECTS" --concurrency 32 --duration 1s >/dev/null
# The foreground load: back-to-back 2 s runs of 4 KiB GETs, each one's p99 kept (before the
# failure, during the repair, after it).
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
