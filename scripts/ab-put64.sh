#!/usr/bin/env bash
# A/B of two keel binaries on PUT 64 MiB: one shard on core 0 (--sync none), curl -T from core 1,
# overwriting one key; per round and binary the median of 5 uploads (after one warm-up), rounds
# alternating. Prints MB/s, then python3's hashlib (OpenSSL) MD5 on one core for reference.
#
#   scripts/ab-put64.sh /tmp/keel-old target/release/keel [ROUNDS]
set -euo pipefail
. "$(dirname "$0")/lib.sh"
A=$1; B=$2; ROUNDS=${3:-3}
W=$(mktemp -d /tmp/keel-ab-XXXX)
PID=
trap '[ -n "$PID" ] && kill -9 "$PID" 2>/dev/null; rm -rf "$W"' EXIT
head -c $((64 << 20)) /dev/urandom > "$W/obj"
for round in $(seq "$ROUNDS"); do
  for bin in "$A" "$B"; do
    rm -rf "$W/d"
    taskset -c 0 "$bin" serve --mountpath "$W/d" --listen 127.0.0.1:18340 --anonymous --sync none --threads 1 > "$W/log" 2>&1 &
    PID=$!
    wait_port 18340
    curl -sf -X PUT http://127.0.0.1:18340/bench > /dev/null
    r=$(for _ in 1 2 3 4 5 6; do
      taskset -c 1 curl -sf -X PUT -T "$W/obj" -o /dev/null -w '%{speed_upload}\n' http://127.0.0.1:18340/bench/up
    done | tail -5 | sort -g | sed -n 3p)
    stop_pid "$PID"; PID=
    printf 'round %s  %-40s %6.0f MB/s\n' "$round" "$bin" "$(echo "$r / 1000000" | bc -l)"
  done
done
python3 -c "import hashlib,os,time; d=os.urandom(256<<20); t=time.time(); hashlib.md5(d).digest(); print('hashlib MD5, one core: %.0f MB/s' % (256*2**20/(time.time()-t)/1e6))"
