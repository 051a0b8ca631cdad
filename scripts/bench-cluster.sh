#!/usr/bin/env bash
# Forwarding cost in a cluster (issue 14): the same keel-bench load straight at the owner of every
# key, and through a member that owns nothing (a gateway), which forwards each request; then
# `--redirect` (a gateway answering 307 to the owner, followed by the client).
#
# One etcd member, an owner and two gateways on loopback, all on this machine's cores (the
# gateway's own work competes with the owner's and the client's: that is the cost measured).
# With LINK=RATE (tc syntax, e.g. LINK=2gbit; root) the owner and the gateways each run in a
# network namespace behind a veth shaped to RATE both ways, as nodes on their own machines
# would be: the network, not these two cores, is then the limit.
#   scripts/bench-cluster.sh [SECONDS] [RUNS]     (KEEL_BIN, BENCH_BIN: other builds)
set -euo pipefail
[ -n "${TRACE:-}" ] && set -x
cd "$(dirname "$0")/.."
. scripts/lib.sh
DUR=${1:-8}
RUNS=${2:-3}
KEEL=${KEEL_BIN:-target/release/keel}
BENCH=${BENCH_BIN:-target/release/keel-bench}
[ -x "$KEEL" ] && [ -x "$BENCH" ] || cargo build --release -q -p keel -p keel-benches
dir=$(mktemp -d)
pids=()
cleanup() {
  kill "${pids[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$dir"
  [ -z "${LINK:-}" ] || { ip netns del kc-owner; ip netns del kc-gw; } 2>/dev/null || true
}
trap cleanup EXIT

OWNER_IP=127.0.0.1 GW_IP=127.0.0.1 ETCD_IP=127.0.0.1
IN_OWNER=() IN_GW=()
if [ -n "${LINK:-}" ]; then
  OWNER_IP=10.78.1.2 GW_IP=10.78.2.2 ETCD_IP=10.78.1.1
  echo 1 >/proc/sys/net/ipv4/ip_forward
  for i in 1 2; do
    ns=$([ $i = 1 ] && echo kc-owner || echo kc-gw)
    ip netns del $ns 2>/dev/null || true
    ip netns add $ns
    ip link add kc-h$i type veth peer name kc-n$i
    ip link set kc-n$i netns $ns
    ip addr add 10.78.$i.1/24 dev kc-h$i && ip link set kc-h$i up
    ip netns exec $ns ip addr add 10.78.$i.2/24 dev kc-n$i
    ip netns exec $ns ip link set kc-n$i up
    ip netns exec $ns ip link set lo up
    ip netns exec $ns ip route add default via 10.78.$i.1
    tc qdisc add dev kc-h$i root tbf rate "$LINK" burst 4mb latency 50ms
    ip netns exec $ns tc qdisc add dev kc-n$i root tbf rate "$LINK" burst 4mb latency 50ms
  done
  IN_OWNER=(ip netns exec kc-owner) IN_GW=(ip netns exec kc-gw)
fi

E=http://$ETCD_IP:23791
start_etcd "$dir" http://0.0.0.0:23791 "$E" 23801
pids+=($!)
wait_etcd $E

node() { # id ip port [flags...]
  local id=$1 ip=$2 port=$3; shift 3
  local -a run=("${IN_GW[@]}")
  [ "$id" = owner ] && run=("${IN_OWNER[@]}")
  "${run[@]}" "$KEEL" serve --listen $ip:$port --mountpath "$dir/$id" --sync none --threads 1 --user AK:SK \
    --cluster $E --node-id "$id" --advertise http://$ip:$port "$@" >"$dir/$id.out" 2>"$dir/$id.log" &
  pids+=($!)
  for _ in $(seq 100); do grep -q "listening on" "$dir/$id.out" 2>/dev/null && return; sleep 0.1; done
  echo "$id did not start"; cat "$dir/$id.log"; exit 1
}
node owner $OWNER_IP 19101
node gw $GW_IP 19102 --gateway
node rgw $GW_IP 19103 --gateway --redirect

# keel-bench's table: op ops errors ops/s MB/s ...
kb() { # endpoint workload size objects concurrency -> "ops/s MB/s errors"
  "$BENCH" --endpoint "$1" --access-key AK --secret-key SK --workload "$2" --size "$3" --objects "$4" \
    --concurrency "$5" --duration "${DUR}s" --bucket "b-${3,,}" 2>/dev/null | awk -v op="${2^^}" '$1==op {print $4, $5, $3}'
}
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "# $(date -u +%F) forwarding cost, ${DUR}s x $RUNS runs, medians${LINK:+, each node behind a $LINK veth}"
printf "%-26s %14s %14s %8s\n" "workload" "owner" "via gateway" "ratio"
for spec in "get 4KiB 1000 32" "put 4KiB 1000 32" "get 64MiB 4 4" "put 64MiB 4 4"; do
  set -- $spec
  unit=ops/s; col=1
  [ "$2" = 64MiB ] && unit=MB/s && col=2
  o=(); g=()
  for _ in $(seq "$RUNS"); do
    o+=("$(kb http://$OWNER_IP:19101 "$@" | cut -d' ' -f$col)")
    g+=("$(kb http://$GW_IP:19102 "$@" | cut -d' ' -f$col)")
  done
  mo=$(printf "%s\n" "${o[@]}" | median)
  mg=$(printf "%s\n" "${g[@]}" | median)
  printf "%-26s %14s %14s %8s\n" "$1 $2 c$4 ($unit)" "$mo" "$mg" "$(awk -v a="$mg" -v b="$mo" 'BEGIN {printf "%.2f", a / b}')"
done

# --redirect: anonymous reads of a public bucket (a signature over the gateway's Host would not
# hold on the owner), one keep-alive connection each, following the 307 by hand.
"$KEEL" bucket props b-4kib policy=public-read --endpoint $OWNER_IP:19101 --access-key AK --secret-key SK >/dev/null
"$KEEL" bucket props b-64mib policy=public-read --endpoint $OWNER_IP:19101 --access-key AK --secret-key SK >/dev/null
python3 - "$DUR" "$OWNER_IP" "$GW_IP" <<'EOF'
import http.client, sys, time, urllib.parse
dur = float(sys.argv[1])
owner_ip, gw_ip = sys.argv[2], sys.argv[3]
def run(first, key, follow):
    conns = {}
    def conn(host, port):
        if (host, port) not in conns:
            conns[(host, port)] = http.client.HTTPConnection(host, port, timeout=30)
        return conns[(host, port)]
    n = nbytes = 0
    t0 = time.time()
    while time.time() - t0 < dur:
        c = conn(*first)
        c.request("GET", key)
        r = c.getresponse()
        body = r.read()
        if r.status == 307 and follow:
            u = urllib.parse.urlsplit(r.getheader("Location"))
            c = conn(u.hostname, u.port)
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
    direct = run((owner_ip, 19101), key, False)
    redirected = run((gw_ip, 19103), key, True)
    i = 0 if unit == "req/s" else 1
    print(f"redirect GET {bucket[2:]} c1 ({unit}): owner {direct[i]:.1f}, via 307 {redirected[i]:.1f}, "
          f"ratio {redirected[i] / direct[i]:.2f}")
EOF
