#!/usr/bin/env bash
# Reproduces the comparison table of BENCHMARKS.md on this machine: keel against nginx (GET),
# fio (4 KiB writes with fdatasync), MD5 (large PUTs) and s3s-fs (a Rust S3 server), each pair in
# the same session, alternating, RUNS times, medians and ratios. Server on core 0, client on core 1.
#
#   scripts/bench-compare.sh            # DUR=8 RUNS=3 LIST_OBJECTS=1000000
# Installs what it needs: wrk, nginx, fio (Debian), s3s-fs 0.14.1 (cargo install).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
DUR=${DUR:-8}
RUNS=${RUNS:-3}
LIST_OBJECTS=${LIST_OBJECTS:-1000000}
S=core0; C=core1
# Foreground client commands. Servers and other background processes are started with taskset
# itself (not through a function, whose subshell would be what $! names and what cleanup kills,
# leaving the server running on its port for the next run to measure by mistake).
cli() { taskset -c 1 "$@"; }

need() { command -v "$1" >/dev/null || { apt-get install -y -q "$2" >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q "$2" >/dev/null; }; }; }
need wrk wrk; need nginx nginx-light; need fio fio
command -v s3s-fs >/dev/null || cargo install s3s-fs --version 0.14.1 --features binary --locked
cargo build --release -q -p keel -p keel-benches

# Refuse to start while anything (a server left by an earlier run) holds one of the ports.
for p in 18181 18182 18183 18184 18185; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
    echo "port $p is in use (a server left by an earlier run?); stop it first" >&2
    exit 1
  fi
done

W=$(mktemp -d /tmp/keel-compare-XXXX)
chmod 755 "$W"  # nginx's workers must read the files
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for _ in $(seq 60); do
    alive=0; for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break; sleep 0.5
  done
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  nginx -c "$W/nginx.conf" -s stop 2>/dev/null || true
  if [ -n "${KEEP:-}" ]; then echo "kept $W" >&2; else rm -rf "$W"; fi
}
trap cleanup EXIT

mkdir -p "$W/www"
head -c 4096 /dev/urandom > "$W/www/obj4k"
head -c $((64 << 20)) /dev/urandom > "$W/www/obj64m"
cat > "$W/nginx.conf" <<NGX
worker_processes 1; worker_cpu_affinity 01; pid $W/nginx.pid; error_log $W/nginx.err;
events { worker_connections 4096; }
http { access_log off; sendfile on; tcp_nopush on; tcp_nodelay on; keepalive_requests 1000000;
  server { listen 127.0.0.1:18181; root $W/www; } }
NGX
nginx -c "$W/nginx.conf"

start_keel() { # port, extra args...
  local port=$1; shift
  taskset -c 0 target/release/keel serve --listen 127.0.0.1:$port --mountpath "$W/keel-$port" --threads 1 "$@" > "$W/keel-$port.out" 2>&1 &
  PIDS+=($!); sleep 1
}
start_keel 18182 --anonymous --sync none
start_keel 18183 --anonymous --sync always
start_keel 18184 --access-key AK --secret-key SK --sync none
mkdir -p "$W/s3s"; taskset -c 0 s3s-fs --host 127.0.0.1 --port 18185 "$W/s3s" > "$W/s3s.out" 2>&1 & PIDS+=($!); sleep 1

for p in "${PIDS[@]}"; do
  kill -0 "$p" 2>/dev/null || { echo "a server did not start; see $W/*.out" >&2; KEEP=1; exit 1; }
done
for p in 18182 18183 18185; do
  curl -sf -X PUT "http://127.0.0.1:$p/bench" >/dev/null
  curl -sf -X PUT --data-binary @"$W/www/obj4k" "http://127.0.0.1:$p/bench/obj4k" >/dev/null
  curl -sf -X PUT -T "$W/www/obj64m" "http://127.0.0.1:$p/bench/obj64m" >/dev/null
  # Every server must serve what it was given before anything is measured.
  cmp -s <(curl -sf "http://127.0.0.1:$p/bench/obj64m") "$W/www/obj64m" || { echo "server on $p does not serve obj64m" >&2; exit 1; }
done

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
wrk_rps() { cli wrk -t1 -c"$1" -d"${DUR}s" "${@:2}" | awk '/Requests\/sec/ {print $2}'; }
wrk_bps() { cli wrk -t1 -c"$1" -d"${DUR}s" "${@:2}" | awk '/Transfer\/sec/ {v=$2; if (v ~ /GB/) {sub("GB","",v); v*=1e9} else if (v ~ /MB/) {sub("MB","",v); v*=1e6} print v}'; }
curl_get() { for _ in 1 2 3 4 5; do cli curl -s -o /dev/null -w '%{speed_download}\n' "$1"; done | median; }
curl_put() { for i in 1 2 3 4 5; do cli curl -s -X PUT -T "$W/www/obj64m" -o /dev/null -w '%{speed_upload}\n' "$1"; done | median; }
# a / b with two decimals. awk, not bc: the medians may come in exponent form (wrk's GB/s
# scaled to bytes prints as 2.29e+09), which bc rejects (the ratio printed as 0.00).
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 > 0) printf "%.2f", a / b; else print "n/a" }'; }
pair() { # label, cmd-a, cmd-b (each prints one number); alternates RUNS times
  local a=() b=()
  for _ in $(seq "$RUNS"); do a+=("$(eval "$2")"); b+=("$(eval "$3")"); done
  local ma mb; ma=$(printf '%s\n' "${a[@]}" | median); mb=$(printf '%s\n' "${b[@]}" | median)
  printf '| %-44s | %14.0f | %14.0f | %5.2fx |\n' "$1" "$ma" "$mb" "$(ratio "$ma" "$mb")"
}

# Server CPU per request: the user + system ticks of the server's processes over a wrk run,
# divided by the requests wrk counted (lower is better: the ratio printed is reference / keel).
CLI=(taskset -c 1)
wrk_cpu() { wrk_cost "$DUR" "$@" | cut -d' ' -f2; } # URL PID... -> µs of server CPU per request
pair_lower() { # as pair, for a measure where lower is better: the ratio is reference / keel
  local a=() b=()
  for _ in $(seq "$RUNS"); do a+=("$(eval "$2")"); b+=("$(eval "$3")"); done
  local ma mb; ma=$(printf '%s\n' "${a[@]}" | median); mb=$(printf '%s\n' "${b[@]}" | median)
  printf '| %-44s | %14.2f | %14.2f | %5.2fx |\n' "$1" "$ma" "$mb" "$(ratio "$mb" "$ma")"
}
KEEL_GET_PID=${PIDS[0]}
NGINX_WORKERS=$(pgrep -P "$(cat "$W/nginx.pid")" | tr '\n' ' ')

echo "| comparison | keel | reference | ratio |"
echo "| --- | --- | --- | --- |"
pair "GET 4 KiB req/s vs nginx (wrk -c32)" "wrk_rps 32 http://127.0.0.1:18182/bench/obj4k" "wrk_rps 32 http://127.0.0.1:18181/obj4k"
pair_lower "server CPU µs per 4 KiB GET vs nginx (nginx/keel)" "wrk_cpu http://127.0.0.1:18182/bench/obj4k $KEEL_GET_PID" "wrk_cpu http://127.0.0.1:18181/obj4k $NGINX_WORKERS"
pair "GET 64 MiB B/s vs nginx (wrk -c8)" "wrk_bps 8 http://127.0.0.1:18182/bench/obj64m" "wrk_bps 8 http://127.0.0.1:18181/obj64m"
pair "GET 64 MiB B/s vs nginx (curl)" "curl_get http://127.0.0.1:18182/bench/obj64m" "curl_get http://127.0.0.1:18181/obj64m"
kb() { local ep=$1; shift; cli target/release/keel-bench --endpoint "$ep" --workload get --size 4KiB --objects 100 --concurrency 32 --duration "${DUR}s" "$@" 2>/dev/null | awk '$1=="GET" {print $4}'; }
kb http://127.0.0.1:18184 --access-key AK --secret-key SK --ops 100 >/dev/null
kb http://127.0.0.1:18182 --anonymous --ops 100 >/dev/null
pair "GET 4 KiB signed vs unsigned req/s (keel-bench)" "kb http://127.0.0.1:18184 --access-key AK --secret-key SK --no-prepare" "kb http://127.0.0.1:18182 --anonymous --no-prepare"
md5_bps=$(python3 -c "import hashlib,os,time; d=os.urandom(256<<20); t=time.time(); hashlib.md5(d).digest(); print(256*2**20/(time.time()-t))")
pair "PUT 64 MiB B/s (sync none) vs MD5 B/s" "curl_put http://127.0.0.1:18182/bench/up" "echo $md5_bps"
fio_iops() { (cd "$W" && cli fio --name=w --directory="$W" --rw=write --bs=4k --size=64m --fdatasync=1 --numjobs=32 --group_reporting --runtime="$DUR" --time_based --output-format=terse 2>/dev/null | awk -F';' '{print $49}'); rm -f "$W"/w.*; }
pair "PUT 4 KiB req/s (sync always) vs fio 4k+fdatasync x32" "wrk_rps 32 -s scripts/bench/put_rand.lua http://127.0.0.1:18183 -- bench 4096" "fio_iops"
pair "GET 4 KiB req/s vs s3s-fs (wrk -c32)" "wrk_rps 32 http://127.0.0.1:18182/bench/obj4k" "wrk_rps 32 http://127.0.0.1:18185/bench/obj4k"
pair "PUT 4 KiB req/s vs s3s-fs (wrk -c32)" "wrk_rps 32 -s scripts/bench/put_rand.lua http://127.0.0.1:18182 -- bench 4096" "wrk_rps 32 -s scripts/bench/put_rand.lua http://127.0.0.1:18185 -- bench 4096"
pair "GET 64 MiB B/s vs s3s-fs (curl)" "curl_get http://127.0.0.1:18182/bench/obj64m" "curl_get http://127.0.0.1:18185/bench/obj64m"
pair "PUT 64 MiB B/s vs s3s-fs (curl)" "curl_put http://127.0.0.1:18182/bench/up" "curl_put http://127.0.0.1:18185/bench/up"

# ListObjectsV2: a 1000-key page in a large bucket (median of 30, curl, includes connect).
curl -s -X PUT http://127.0.0.1:18182/list >/dev/null
taskset -c 1 wrk -t1 -c16 -d600s -s scripts/bench/put_seq.lua http://127.0.0.1:18182 -- list "$LIST_OBJECTS" 0 >/dev/null &
WRK=$!; PIDS+=($WRK)
while [ "$(curl -s "http://127.0.0.1:18182/list?list-type=2&max-keys=1&start-after=$(printf 'obj-%07d' $((LIST_OBJECTS - 2)))" | grep -c '<Key>')" = 0 ]; do sleep 2; done
kill $WRK 2>/dev/null || true
lt=$(for _ in $(seq 30); do cli curl -s -o /dev/null -w '%{time_total}\n' "http://127.0.0.1:18182/list?list-type=2&max-keys=1000&start-after=$(printf 'obj-%07d' $((LIST_OBJECTS / 2)))"; done | median)
printf '| %-44s | %11.2f ms | %14s | %6s |\n' "ListObjectsV2 1000 keys of $LIST_OBJECTS (median)" "$(awk -v t="$lt" 'BEGIN {print t * 1000}')" "<= 10 ms" ""
