#!/usr/bin/env bash
# Forwarding cost in a cluster (issue 14): the same keel-bench load straight at the owner of every
# key, and through a member that owns nothing (a gateway), which forwards each request; then
# `--redirect` (a gateway answering 307 to the owner, followed by the client).
#
# One etcd member, an owner and two gateways on loopback, all on this machine's cores (the
# gateway's own work competes with the owner's and the client's: that is the cost measured).
#   scripts/bench-cluster.sh [SECONDS] [RUNS]     (KEEL_BIN, BENCH_BIN: other builds)
set -euo pipefail
[ -n "${TRACE:-}" ] && set -x
cd "$(dirname "$0")/.."
DUR=${1:-8}
RUNS=${2:-3}
KEEL=${KEEL_BIN:-target/release/keel}
BENCH=${BENCH_BIN:-target/release/keel-bench}
[ -x "$KEEL" ] && [ -x "$BENCH" ] || cargo build --release -q -p keel -p keel-benches
dir=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT

E=http://127.0.0.1:23791
etcd --name bench --data-dir "$dir/etcd" --listen-client-urls $E --advertise-client-urls $E \
  --listen-peer-urls http://127.0.0.1:23801 --initial-advertise-peer-urls http://127.0.0.1:23801 \
  --initial-cluster bench=http://127.0.0.1:23801 >"$dir/etcd.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do curl -sf $E/health >/dev/null && break; sleep 0.2; done

node() { # id port [flags...]
  local id=$1 port=$2; shift 2
  "$KEEL" serve --listen 127.0.0.1:$port --mountpath "$dir/$id" --sync none --threads 1 --user AK:SK \
    --cluster $E --node-id "$id" --advertise http://127.0.0.1:$port "$@" >"$dir/$id.out" 2>"$dir/$id.log" &
  pids+=($!)
  for _ in $(seq 100); do grep -q "listening on" "$dir/$id.out" 2>/dev/null && return; sleep 0.1; done
  echo "$id did not start"; cat "$dir/$id.log"; exit 1
}
node owner 19101
node gw 19102 --gateway
node rgw 19103 --gateway --redirect

# keel-bench's table: op ops errors ops/s MB/s ...
kb() { # endpoint workload size objects concurrency -> "ops/s MB/s errors"
  "$BENCH" --endpoint "$1" --access-key AK --secret-key SK --workload "$2" --size "$3" --objects "$4" \
    --concurrency "$5" --duration "${DUR}s" --bucket "b-${3,,}" 2>/dev/null | awk -v op="${2^^}" '$1==op {print $4, $5, $3}'
}
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "# $(date -u +%F) forwarding cost, ${DUR}s x $RUNS runs, medians"
printf "%-26s %14s %14s %8s\n" "workload" "owner" "via gateway" "ratio"
for spec in "get 4KiB 1000 32" "put 4KiB 1000 32" "get 64MiB 4 4" "put 64MiB 4 4"; do
  set -- $spec
  unit=ops/s; col=1
  [ "$2" = 64MiB ] && unit=MB/s && col=2
  o=(); g=()
  for _ in $(seq "$RUNS"); do
    o+=("$(kb http://127.0.0.1:19101 "$@" | cut -d' ' -f$col)")
    g+=("$(kb http://127.0.0.1:19102 "$@" | cut -d' ' -f$col)")
  done
  mo=$(printf "%s\n" "${o[@]}" | median)
  mg=$(printf "%s\n" "${g[@]}" | median)
  printf "%-26s %14s %14s %8s\n" "$1 $2 c$4 ($unit)" "$mo" "$mg" "$(awk -v a="$mg" -v b="$mo" 'BEGIN {printf "%.2f", a / b}')"
done

# --redirect: anonymous reads of a public bucket (a signature over the gateway's Host would not
# hold on the owner), one keep-alive connection each, following the 307 by hand.
"$KEEL" bucket props b-4kib policy=public-read --endpoint 127.0.0.1:19101 --access-key AK --secret-key SK >/dev/null
"$KEEL" bucket props b-64mib policy=public-read --endpoint 127.0.0.1:19101 --access-key AK --secret-key SK >/dev/null
python3 - "$DUR" <<'EOF'
import http.client, sys, time, urllib.parse
dur = float(sys.argv[1])
def run(first_port, key, follow):
    conns = {}
    def conn(port):
        if port not in conns:
            conns[port] = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        return conns[port]
    n = nbytes = 0
    t0 = time.time()
    while time.time() - t0 < dur:
        c = conn(first_port)
        c.request("GET", key)
        r = c.getresponse()
        body = r.read()
        if r.status == 307 and follow:
            u = urllib.parse.urlsplit(r.getheader("Location"))
            c = conn(u.port)
            c.request("GET", u.path)
            r = c.getresponse()
            body = r.read()
        assert r.status == 200, r.status
        n += 1
        nbytes += len(body)
    el = time.time() - t0
    return n / el, nbytes / el / 1e6
for bucket, unit in [("b-4kib", "req/s"), ("b-64mib", "MB/s")]:
    key = f"/{bucket}/obj-00000000"  # keel-bench's first object
    direct = run(19101, key, False)
    redirected = run(19103, key, True)
    i = 0 if unit == "req/s" else 1
    print(f"redirect GET {bucket[2:]} c1 ({unit}): owner {direct[i]:.1f}, via 307 {redirected[i]:.1f}, "
          f"ratio {redirected[i] / direct[i]:.2f}")
EOF
