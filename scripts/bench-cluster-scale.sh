#!/usr/bin/env bash
# Cluster scaling (issue 14): aggregate GET and PUT throughput of 1, 2 and 4 nodes, each in its
# own network namespace behind a veth shaped to RATE both ways (tc tbf), so the network, not this
# machine's cores, is the limit. Root (network namespaces).
#
# Clients reach every key's owner with one hop: the nodes run `--redirect --anonymous`, and the
# client (a Python load generator, THREADS connections) sends each request to a random node and
# follows the 307 — a PUT sends `Expect: 100-continue` and its body only to the node that
# answers 100, so no byte crosses a link twice. Objects of SIZE MiB.
#   scripts/bench-cluster-scale.sh [RATE=400mbit] [SECONDS=10] [SIZE=8] [THREADS=8]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
RATE=${1:-400mbit}
DUR=${2:-10}
SIZE=${3:-8}
THREADS=${4:-8}
KEEL=${KEEL_BIN:-target/release/keel}
[ -x "$KEEL" ] || cargo build --release -q -p keel
dir=$(mktemp -d)
pids=()
cleanup() {
  kill "${pids[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
  for i in 1 2 3 4; do ip netns del ks-n$i 2>/dev/null || true; done
  rm -rf "$dir"
}
trap cleanup EXIT
echo 1 >/proc/sys/net/ipv4/ip_forward

E=http://10.79.1.1:23792
start_etcd "$dir" http://0.0.0.0:23792 "$E" 23802
pids+=($!)

for i in 1 2 3 4; do
  ns=ks-n$i
  ip netns del $ns 2>/dev/null || true
  ip netns add $ns
  ip link add ks-h$i type veth peer name ks-v$i
  ip link set ks-v$i netns $ns
  ip addr add 10.79.$i.1/24 dev ks-h$i && ip link set ks-h$i up
  ip netns exec $ns ip addr add 10.79.$i.2/24 dev ks-v$i
  ip netns exec $ns ip link set ks-v$i up
  ip netns exec $ns ip link set lo up
  ip netns exec $ns ip route add default via 10.79.$i.1
  tc qdisc add dev ks-h$i root tbf rate "$RATE" burst 4mb latency 50ms
  ip netns exec $ns tc qdisc add dev ks-v$i root tbf rate "$RATE" burst 4mb latency 50ms
done
wait_etcd $E

echo "# $(date -u +%F) cluster scaling: each node behind a $RATE veth, ${SIZE} MiB objects, $THREADS connections, ${DUR}s"
printf "%-6s %12s %12s %12s %12s\n" nodes "GET MB/s" "x one node" "PUT MB/s" "x one node"
one_get="" one_put=""
for n in 1 2 4; do
  # A fresh cluster of n nodes (its own name: nodes join an empty cluster).
  name=s$n
  nodes=()
  for i in $(seq "$n"); do
    ip netns exec ks-n$i "$KEEL" serve --listen 10.79.$i.2:9000 --mountpath "$dir/$name-$i" --sync none \
      --threads 1 --anonymous --redirect --cluster $E --cluster-name $name --node-id n$i \
      --advertise http://10.79.$i.2:9000 >"$dir/$name-$i.out" 2>"$dir/$name-$i.log" &
    pids+=($!)
    nodes+=("10.79.$i.2:9000")
    for _ in $(seq 100); do grep -q "listening on" "$dir/$name-$i.out" 2>/dev/null && break; sleep 0.1; done
  done
  sleep 1
  read -r get put < <(python3 - "$DUR" "$SIZE" "$THREADS" "${nodes[@]}" <<'EOF'
import random, socket, sys, threading, time, urllib.parse
dur, size, threads = float(sys.argv[1]), int(sys.argv[2]) << 20, int(sys.argv[3])
nodes = sys.argv[4:]
body = b"k" * size
conns = threading.local()

def conn(node):
    c = getattr(conns, "c", None)
    if c is None:
        c = conns.c = {}
    if node not in c:
        host, port = node.split(":")
        s = socket.create_connection((host, int(port)), timeout=60)
        c[node] = (s, s.makefile("rb"))
    return c[node]

def head(f):
    status = int(f.readline().split()[1])
    hdrs = {}
    while True:
        line = f.readline().decode().strip()
        if not line:
            return status, hdrs
        k, v = line.split(":", 1)
        hdrs[k.lower()] = v.strip()

def request(method, path, send_body):
    node = random.choice(nodes)
    for _ in range(2):
        s, f = conn(node)
        extra = f"Content-Length: {size}\r\nExpect: 100-continue\r\n" if send_body else ""
        s.sendall(f"{method} {path} HTTP/1.1\r\nHost: {node}\r\n{extra}\r\n".encode())
        status, hdrs = head(f)
        if status == 100:
            s.sendall(body)
            status, hdrs = head(f)
        n = int(hdrs.get("content-length", "0"))
        got = f.read(n) if method != "HEAD" else b""
        if hdrs.get("connection", "").lower() == "close":
            s.close()
            del conns.c[node]
        if status == 307:
            node = urllib.parse.urlsplit(hdrs["location"]).netloc
            continue
        assert status == 200, (status, got[:200])
        return len(got) if method == "GET" else size
    raise AssertionError("redirected twice")

def load(method, keys):
    done = [0]
    lock = threading.Lock()
    stop = time.time() + dur
    def worker(w):
        i = 0
        while time.time() < stop:
            k = keys[(w * 7919 + i) % len(keys)] if keys else f"o-{w}-{i}"
            n = request(method, f"/scale/{k}", method == "PUT")
            with lock:
                done[0] += n
            i += 1
    t0 = time.time()
    ts = [threading.Thread(target=worker, args=(w,)) for w in range(threads)]
    for t in ts: t.start()
    for t in ts: t.join()
    return done[0] / (time.time() - t0) / 1e6

s, f = conn(nodes[0])
s.sendall(f"PUT /scale HTTP/1.1\r\nHost: {nodes[0]}\r\nContent-Length: 0\r\n\r\n".encode())
assert head(f)[0] == 200
put = load("PUT", None)
keys = [f"g{i}" for i in range(8 * len(nodes))]
for k in keys:
    request("PUT", f"/scale/{k}", True)
get = load("GET", keys)
print(f"{get:.1f} {put:.1f}")
EOF
)
  [ -n "$one_get" ] || { one_get=$get; one_put=$put; }
  printf "%-6s %12s %12s %12s %12s\n" "$n" "$get" "$(awk -v a="$get" -v b="$one_get" -v n="$n" 'BEGIN {printf "%.2f / %d", a / b, n}')" \
    "$put" "$(awk -v a="$put" -v b="$one_put" -v n="$n" 'BEGIN {printf "%.2f / %d", a / b, n}')"
  pkill -f -- "--cluster-name $name " 2>/dev/null || true
  sleep 1
done
