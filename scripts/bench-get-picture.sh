#!/usr/bin/env bash
# A picture for BENCHMARKS.md (issue 16 item 7): keel-bench's 4 KiB GET load against nginx
# (sendfile, one worker on CPU 0) and keel (one shard on CPU 0, --sync none), the same 1000
# objects, keel-bench on CPU 1 (-c32, SECS seconds); both result JSONs and one overlaid SVG.
#   scripts/bench-get-picture.sh OUT_DIR [SECS=10]   (needs target/release/keel and keel-bench, nginx)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
OUT=$1
SECS=${2:-10}
KEEL=target/release/keel
KB=target/release/keel-bench
for b in $KEEL $KB; do [ -x "$b" ] || { echo "no $b (cargo build --release -p keel -p keel-benches)"; exit 1; }; done
mkdir -p "$OUT"
bench_dir
PORT=19875
mkdir -p "$dir/www/keel-bench"
head -c 4096 /dev/urandom > "$dir/obj"
for i in $(seq 0 999); do cp "$dir/obj" "$dir/www/keel-bench/$(printf 'obj-%08d' "$i")"; done
cat > "$dir/nginx.conf" <<NGX
worker_processes 1; worker_cpu_affinity 01; pid $dir/nginx.pid; error_log $dir/nginx.err;
events { worker_connections 4096; }
http { access_log off; sendfile on; tcp_nopush on; tcp_nodelay on; keepalive_requests 1000000;
  server { listen 127.0.0.1:$PORT; root $dir/www; } }
NGX
load() { # NAME [--no-prepare]
  taskset -c 1 $KB --endpoint "http://127.0.0.1:$PORT" --anonymous --workload get --size 4KiB --objects 1000 \
    --concurrency 32 --duration "${SECS}s" --json "$OUT/$1.json" "${@:2}" | tail -n +2
}
nginx -c "$dir/nginx.conf"
wait_port $PORT
echo "nginx: $(load nginx --no-prepare)"
nginx_stop $PORT
taskset -c 0 $KEEL serve --listen 127.0.0.1:$PORT --anonymous --sync none --threads 1 --mountpath "$dir/data" \
  >"$dir/out" 2>"$dir/log" &
pid=$!
wait_port $PORT
echo "keel:  $(load keel)"
$KB --compare "$OUT/keel.json,$OUT/nginx.json" --labels keel,nginx --svg "$OUT/get-4k-keel-vs-nginx.svg"
echo "wrote $OUT/get-4k-keel-vs-nginx.svg"
