#!/usr/bin/env bash
# Shard scaling on a many-core machine: 4 KiB GET and 4 KiB PUT (--sync none) with N shards.
# "isolated": keel on CPUs 0..N-1, keel-bench on the CPUs left (N < CPUs); "shared": keel with all
# CPUs as shards and keel-bench on the same CPUs. Prints ops/s, the ratio to one shard, and
# requests per server CPU-second (from /proc/PID/stat), which shows whether a shard slows down as
# shards are added, independently of how much CPU the client could get; then, per run, the server's
# threads by CPU use (cores), busiest first. Last, PUT with PUT_MPS mountpaths (default 4; empty
# skips it) at the largest isolated shard count.
#
#   cargo build --release -p keel -p keel-benches && scripts/scale.sh
#   BIN=dir-with-keel-and-keel-bench DUR=5 SHARDS="1 2 4 8" scripts/scale.sh
#   OPS=put SHARED=0 PUT_MPS= TMPDIR=/dev/shm scripts/scale.sh   # PUTs only, data in memory
# Needs only bash, taskset, python3 and the two binaries (nothing is installed).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
BIN=${BIN:-target/release}
DUR=${DUR:-5}
CPUS=$(nproc)
SHARDS=${SHARDS:-"1 2 4 8"}
PUT_MPS=${PUT_MPS-4}
OPS=${OPS:-"get put"}
SHARED=${SHARED:-1}
PORT=18400
# The data lives under TMPDIR (default /tmp); TMPDIR=/dev/shm takes the disk out of the picture.
W=$(mktemp -d "${TMPDIR:-/tmp}/keel-scale-XXXX")
TCK=$(getconf CLK_TCK)
PID=
MPS=1
cleanup() { [ -n "$PID" ] && kill -9 "$PID" 2>/dev/null; rm -rf "$W"; }
trap cleanup EXIT

start() { # shards, cpu list; MPS mountpaths (directories of one file system)
  local m=()
  for i in $(seq "$MPS"); do m+=(--mountpath "$W/data-$MPS-$i"); done
  taskset -c "$2" "$BIN/keel" serve --listen 127.0.0.1:$PORT "${m[@]}" --anonymous \
    --sync none --threads "$1" > "$W/keel.out" 2>&1 &
  PID=$!
  wait_port "$PORT" || { cat "$W/keel.out"; return 1; }
}
stop() { stop_pid "$PID"; PID=; }
ticks() { awk '{print $14 + $15}' "/proc/$PID/stat"; }
# Per-thread CPU ticks of the server, summed by thread name without digits (keel-shard-N).
threads() {
  local t name
  for t in /proc/"$PID"/task/*; do
    name=$(cat "$t/comm" 2>/dev/null) || continue
    awk -v n="${name//[0-9]/}" '{sub(/^.*\) /, ""); print n, $12 + $13}' "$t/stat" 2>/dev/null || true
  done | awk '{s[$1] += $2} END {for (k in s) printf "%s=%d ", k, s[k]}'
}
busiest() { # before, after: each thread group's CPU use in cores, busiest first
  python3 - "$1" "$2" "$TCK" "$DUR" <<'PY'
import sys
a = dict(x.split("=") for x in sys.argv[1].split())
b = dict(x.split("=") for x in sys.argv[2].split())
tck, dur = float(sys.argv[3]), float(sys.argv[4])
d = sorted(((int(v) - int(a.get(k, 0))) / tck / dur, k) for k, v in b.items())[::-1]
print(" ".join(f"{k}:{v:.2f}" for v, k in d if v >= 0.05))
PY
}
bench() { # workload, client cpus, client threads, concurrency, extra...
  taskset -c "$2" "$BIN/keel-bench" --endpoint http://127.0.0.1:$PORT --anonymous --workload "$1" \
    --size 4KiB --objects 10000 --threads "$3" --concurrency "$4" --duration "${DUR}s" "${@:5}" \
    --json "$W/r.json" > "$W/bench.out" 2>&1
  python3 -c "import json; d=json.load(open('$W/r.json')); o=list(d['ops'].values())[0]; print(o['ops'], o['ops_per_sec'], o['errors'], o['latency_ms']['p50'], o['latency_ms']['p99'])"
}
prepare() { # one set of objects for the runs that follow (keel-bench's prepare step PUTs them)
  start "$CPUS" "0-$((CPUS - 1))"
  taskset -c "0-$((CPUS - 1))" "$BIN/keel-bench" --endpoint http://127.0.0.1:$PORT --anonymous --workload get \
    --size 4KiB --objects 10000 --ops 1 --threads 1 --concurrency 1 > /dev/null 2>&1
  stop
}
BASE_get=; BASE_put=; BUSY=()
row() { # label, shards, server cpus, client cpus, client threads, workload
  start "$2" "$3"
  local t0 t1 r ops rate errs p50 p99 base eff th0 th1
  t0=$(ticks); th0=$(threads)
  r=$(bench "$6" "$4" "$5" $((32 * $2 < 64 ? 64 : 32 * $2)) --no-prepare)
  t1=$(ticks); th1=$(threads)
  stop
  BUSY+=("$6 $1, $2 shards, $MPS mountpath(s): $(busiest "$th0" "$th1")")
  read -r ops rate errs p50 p99 <<< "$r"
  eval "base=\${BASE_$6:-}"; [ -z "$base" ] && { base=$rate; eval "BASE_$6=$rate"; }
  eff=$(python3 -c "print(round($ops / max(($t1 - $t0) / $TCK, 1e-9)))")
  printf '| %-4s | %-8s | %6s | %-9s | %-9s | %10.0f | %6.2fx | %8s | %6s | %6s | %s |\n' \
    "$6" "$1" "$2" "$3" "$4" "$rate" "$(python3 -c "print($rate / $base)")" "$eff" "$p50" "$p99" "$errs"
}

echo "machine: $CPUS CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), kernel $(uname -r)"
lscpu 2>/dev/null | grep -E '^(Thread|Core|Socket|NUMA node\(s\))' || true
start "$CPUS" "0-$((CPUS - 1))"
grep -m1 -iE 'listening' "$W/keel.out" || head -3 "$W/keel.out"
stop
echo "| op   | mode     | shards | keel CPUs | load CPUs | ops/s      | vs 1   | ops/CPU-s | p50 ms | p99 ms | errors |"
echo "| ---- | -------- | ------ | --------- | --------- | ---------- | ------ | -------- | ------ | ------ | ------ |"
prepare
for op in $OPS; do
  for n in $SHARDS; do
    [ "$n" -ge "$CPUS" ] && continue
    row isolated "$n" "0-$((n - 1))" "$n-$((CPUS - 1))" $((CPUS - n)) "$op"
  done
  [ "$SHARED" = 1 ] && row shared "$CPUS" "0-$((CPUS - 1))" "0-$((CPUS - 1))" "$CPUS" "$op"
done
if [ -n "$PUT_MPS" ]; then
  n=$(for x in $SHARDS; do [ "$x" -lt "$CPUS" ] && echo "$x"; done | tail -1)
  MPS=$PUT_MPS; prepare
  row "${MPS} mp" "$n" "0-$((n - 1))" "$n-$((CPUS - 1))" $((CPUS - n)) put
  MPS=1
fi
echo
echo "server threads, busiest first (cores used during each run):"
printf '  %s\n' "${BUSY[@]}"
