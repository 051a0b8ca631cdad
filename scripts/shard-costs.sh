#!/usr/bin/env bash
# What one shard costs per request when the client does not share its CPU: keel with one shard on
# CPU 0, keel-bench with every other CPU. Meant for a many-core machine (on two cores the client's
# own signing and hashing bound the numbers). Prints:
#   - GET 4 KiB, SigV4-signed against anonymous (the server's signature check);
#   - PUT 64 MiB (sync none) against MD5 on one core of the same machine (python3's hashlib, which
#     is OpenSSL's MD5): MD5 bounds a PUT, which must return the ETag;
#   - GET 64 MiB from the page cache (splice path).
#
#   cargo build --release -p keel -p keel-benches && scripts/shard-costs.sh
#   BIN=dir-with-keel-and-keel-bench DUR=5 scripts/shard-costs.sh
set -euo pipefail
. "$(dirname "$0")/lib.sh"
BIN=${BIN:-target/release}
DUR=${DUR:-5}
CPUS=$(nproc)
LOAD="1-$((CPUS - 1))"
CT=$((CPUS - 1 > 8 ? 8 : CPUS - 1))
PORT=18410
W=$(mktemp -d /tmp/keel-costs-XXXX)
PID=
cleanup() { [ -n "$PID" ] && kill -9 "$PID" 2>/dev/null; rm -rf "$W"; }
trap cleanup EXIT

start() { # extra keel args...
  taskset -c 0 "$BIN/keel" serve --listen 127.0.0.1:$PORT --mountpath "$W/data" --sync none --threads 1 "$@" \
    > "$W/keel.out" 2>&1 &
  PID=$!
  wait_port "$PORT" || { cat "$W/keel.out"; return 1; }
}
stop() { stop_pid "$PID"; PID=; }
bench() { # field (ops_per_sec|mb_per_sec), keel-bench args...
  local f=$1; shift
  taskset -c "$LOAD" "$BIN/keel-bench" --endpoint http://127.0.0.1:$PORT --duration "${DUR}s" --threads "$CT" \
    "$@" --json "$W/r.json" > "$W/bench.out" 2>&1 || { cat "$W/bench.out"; return 1; }
  python3 -c "import json; d=json.load(open('$W/r.json')); o=list(d['ops'].values())[0]; assert o['errors'] == 0, o; print(o['$f'])"
}
SIGNED=(--access-key AK --secret-key SK)
echo "machine: $CPUS CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); keel on CPU 0, keel-bench ($CT threads) on $LOAD"

# GET 4 KiB: the objects are written once (signed), then read with and without signatures.
start "${SIGNED[@]}"
bench ops_per_sec "${SIGNED[@]}" --workload get --size 4KiB --objects 1000 --concurrency 64 --ops 1 > /dev/null
s=(); a=()
for _ in 1 2 3; do
  s+=("$(bench ops_per_sec "${SIGNED[@]}" --workload get --size 4KiB --objects 1000 --concurrency 64 --no-prepare)")
  stop; start --anonymous
  a+=("$(bench ops_per_sec --anonymous --workload get --size 4KiB --objects 1000 --concurrency 64 --no-prepare)")
  stop; start "${SIGNED[@]}"
done
stop
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
ms=$(median "${s[@]}"); ma=$(median "${a[@]}")
printf '| GET 4 KiB req/s, SigV4 vs anonymous | %.0f | %.0f | %.2fx |   (runs: %s / %s)\n' "$ms" "$ma" \
  "$(python3 -c "print($ms / $ma)")" "${s[*]}" "${a[*]}"

# PUT 64 MiB (sync none, anonymous, overwriting 4 keys) against MD5 on one core; through the
# page cache and with --odirect.
start --anonymous
put=$(bench mb_per_sec --anonymous --workload put --size 64MiB --objects 4 --concurrency 4)
get=$(bench mb_per_sec --anonymous --workload get --size 64MiB --objects 4 --concurrency 8 --no-prepare)
stop
start --anonymous --odirect
putd=$(bench mb_per_sec --anonymous --workload put --size 64MiB --objects 4 --concurrency 4)
stop
md5=$(taskset -c 0 python3 -c "
import hashlib, time
b = bytes(range(256)) * 4096 * 4  # 4 MiB
h = hashlib.md5(); n = 0; t = time.perf_counter()
while time.perf_counter() - t < 3: h.update(b); n += len(b)
print(n / (time.perf_counter() - t) / 1e6)")
printf '| PUT 64 MiB MB/s (sync none) vs hashlib MD5 MB/s, one core | %.0f | %.0f | %.2fx |\n' "$put" "$md5" \
  "$(python3 -c "print($put / $md5)")"
printf '| PUT 64 MiB MB/s (sync none, --odirect) vs hashlib MD5 MB/s, one core | %.0f | %.0f | %.2fx |\n' "$putd" "$md5" \
  "$(python3 -c "print($putd / $md5)")"
printf '| GET 64 MiB MB/s (page cache, splice), one shard | %.0f | | |\n' "$get"
