#!/usr/bin/env bash
# Pinning shards or not (`--pin`, DESIGN D39), 4 KiB GETs with wrk on the same machine and the
# same cores as keel (how most people benchmark a server they just installed): keel with 2
# shards and with 1, each pinned (`--pin on`) and not (`--pin off`), alternated RUNS times,
# wrk -t1 -c32 for SECS seconds each; medians of requests per second.
#   scripts/bench-pin.sh [SECS=6] [RUNS=3]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
SECS=${1:-6}
RUNS=${2:-3}
KEEL=${KEEL_BIN:-target/release/keel}
[ -x "$KEEL" ] || cargo build --release -q -p keel
command -v wrk >/dev/null || { echo "wrk is needed (apt-get install wrk)"; exit 1; }
dir=$(mktemp -d -p "${BENCH_DIR:-/tmp}")
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
PORT=19871
one() { # THREADS PIN -> req/s
  "$KEEL" serve --listen 127.0.0.1:$PORT --anonymous --sync none --threads "$1" --pin "$2" \
    --mountpath "$dir/data" >"$dir/out" 2>"$dir/log" &
  pid=$!
  wait_port $PORT || { cat "$dir/log"; exit 1; }
  curl -sf -X PUT "http://127.0.0.1:$PORT/bench" >/dev/null || true
  head -c 4096 /dev/urandom | curl -sf -X PUT --data-binary @- "http://127.0.0.1:$PORT/bench/obj4k" >/dev/null
  wrk -t1 -c32 -d1s "http://127.0.0.1:$PORT/bench/obj4k" >/dev/null
  wrk -t1 -c32 -d"${SECS}s" "http://127.0.0.1:$PORT/bench/obj4k" | awk '/Requests\/sec/ {print $2}'
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  pid=
}
declare -A got
configs=("2 on" "2 off" "1 on" "1 off")
for _ in $(seq "$RUNS"); do
  for c in "${configs[@]}"; do
    got[$c]+="$(one $c) "
  done
done
echo "# $(date -u +%F) 4 KiB GET, wrk -t1 -c32 ${SECS}s on the same $(nproc) cores, --sync none, medians of $RUNS"
printf "%-22s %12s   %s\n" "keel" "req/s" "runs"
for c in "${configs[@]}"; do
  set -- $c
  med=$(printf '%s\n' ${got[$c]} | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}')
  printf "%-22s %12.0f   %s\n" "--threads $1 --pin $2" "$med" "${got[$c]}"
done
