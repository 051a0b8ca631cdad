#!/usr/bin/env bash
# Cold GETs of a backend bucket, optionally under perf: a remote keel in a network namespace
# behind a veth pair shaped to LINK (default 5gbit; root), a front keel whose bucket `cache` is
# attached to it, twelve 64 MiB objects; curl reads two directly and ten through the front
# (cold), printing bytes/s. PERF=1 records the front (perf.data in the work directory, kept);
# FRONT_ARGS adds flags to the front (e.g. --odirect).
#
#   [PERF=1] [LINK=5gbit] [FRONT_ARGS=...] scripts/profile-cold-get.sh
set -euo pipefail
BIN=${KEEL_BIN:-$PWD/target/release/keel}
W=${WORKDIR:-$(mktemp -d /tmp/keel-cold-get-XXXX)}
cd "$W"
NS=kpf; ip netns del $NS 2>/dev/null || true; ip link del kp-front 2>/dev/null || true
ip netns add $NS; ip link add kp-front type veth peer name kp-remote; ip link set kp-remote netns $NS
ip addr add 10.78.0.1/24 dev kp-front; ip link set kp-front up
ip netns exec $NS ip addr add 10.78.0.2/24 dev kp-remote; ip netns exec $NS ip link set kp-remote up; ip netns exec $NS ip link set lo up
ip netns exec $NS tc qdisc add dev kp-remote root tbf rate ${LINK:-5gbit} burst 4mb latency 50ms
rm -rf r f
ip netns exec $NS $BIN serve --mountpath r --listen 10.78.0.2:18371 --sync none --threads 1 --anonymous > r.log 2>&1 &
RP=$!
printf '[backends.up]\nprovider = "s3"\nendpoint = "http://10.78.0.2:18371"\nregion = "us-east-1"\nanonymous = true\n' > k.toml
$BIN serve --mountpath f --listen 127.0.0.1:18372 --sync none --threads 1 --anonymous --config k.toml ${FRONT_ARGS:-} > f.log 2>&1 &
FP=$!
sleep 1.5
curl -sf -X PUT http://10.78.0.2:18371/data >/dev/null
head -c $((64<<20)) /dev/urandom > obj
for i in $(seq 0 11); do curl -sf -X PUT --data-binary @obj http://10.78.0.2:18371/data/k$i >/dev/null; done
curl -sf -X PUT http://127.0.0.1:18372/cache >/dev/null
curl -sf -X PUT "http://127.0.0.1:18372/_keel/buckets/cache/props?backend=up/data" >/dev/null
for i in 0 1; do curl -s -o /dev/null -w "direct %{speed_download}\n" http://10.78.0.2:18371/data/k$i; done
if [ -n "${PERF:-}" ]; then perf record -F 999 -g -p $FP -o perf.data 2>/dev/null & PP=$!; sleep 0.5; fi
for i in $(seq 2 11); do curl -s -o /dev/null -w "cold %{speed_download}\n" http://127.0.0.1:18372/cache/k$i; done
[ -n "${PERF:-}" ] && { kill -INT $PP; sleep 2; }
kill $RP $FP; ip netns del $NS
if [ -n "${PERF:-}" ]; then echo "perf data: $W/perf.data"; else rm -rf "$W"; fi
