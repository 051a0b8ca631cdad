#!/usr/bin/env bash
# Server CPU per 4 KiB GET and requests per second (issue 16): keel builds against nginx
# (sendfile, one worker), each server alone on CPU 0 with one shard/worker, wrk -t1 -c32 on
# CPU 1; CPU from the server's /proc/PID/stat (user + system ticks) over the timed run, divided
# by the requests wrk counted. Servers alternate, RUNS times; medians.
#   scripts/bench-get-cost.sh [SECS=6] [RUNS=3] [KEEL_BINARY...]   (default: target/release/keel)
# Give several binaries (e.g. a build of the commit before a change, then this one) to compare
# them in the same session. DEFAULTS=1: each server at its defaults on every core instead (keel
# with a shard per core, nginx with a worker per core, nothing pinned, wrk on the same cores);
# THREADS=N with DEFAULTS=1: keel --threads N and nginx N workers, still unpinned.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
SECS=${1:-6}
RUNS=${2:-3}
shift $(( $# >= 2 ? 2 : $# ))
BINS=("$@")
[ ${#BINS[@]} -gt 0 ] || BINS=(target/release/keel)
for b in "${BINS[@]}"; do [ -x "$b" ] || { echo "no binary $b (cargo build --release)"; exit 1; }; done
for t in wrk nginx; do command -v $t >/dev/null || { echo "$t is needed (apt-get install $t)"; exit 1; }; done
bench_dir
PORT=19873
if [ -n "${DEFAULTS:-}" ]; then
  SRV=(); CLI=(); SHARDS=(${THREADS:+--threads $THREADS}); WORKERS="worker_processes ${THREADS:-$(nproc)};"
  SETUP="unpinned, ${THREADS:-$(nproc)} shards / workers, wrk on the same $(nproc) cores"
else
  SRV=(taskset -c 0); CLI=(taskset -c 1); SHARDS=(--threads 1)
  WORKERS="worker_processes 1; worker_cpu_affinity 01;"; SETUP="server on CPU 0 (1 shard / 1 worker), wrk on CPU 1"
fi
mkdir -p "$dir/www/bench"
head -c 4096 /dev/urandom > "$dir/www/bench/obj4k"
cat > "$dir/nginx.conf" <<NGX
$WORKERS pid $dir/nginx.pid; error_log $dir/nginx.err;
events { worker_connections 4096; }
http { access_log off; sendfile on; tcp_nopush on; tcp_nodelay on; keepalive_requests 1000000;
  server { listen 127.0.0.1:$PORT; root $dir/www; } }
NGX
# wrk against the server whose processes are "$@": "req/s µs-per-request".
measure() { wrk_cost "$SECS" "http://127.0.0.1:$PORT/bench/obj4k" "$@"; }
keel_run() { # BINARY -> "req/s µs"
  "${SRV[@]}" "$1" serve --listen 127.0.0.1:$PORT --anonymous --sync none "${SHARDS[@]}" \
    --mountpath "$dir/data" >"$dir/out" 2>"$dir/log" &
  pid=$!
  wait_port $PORT || { cat "$dir/log"; exit 1; }
  curl -sf -X PUT "http://127.0.0.1:$PORT/bench" >/dev/null || true
  curl -sf -X PUT --data-binary @"$dir/www/bench/obj4k" "http://127.0.0.1:$PORT/bench/obj4k" >/dev/null
  measure "$pid"
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
}
nginx_run() {
  nginx -c "$dir/nginx.conf"
  wait_port $PORT
  measure $(pgrep -f "nginx: worker process")
  nginx_stop $PORT
}
declare -A rps cpu
names=(nginx "${BINS[@]}")
for _ in $(seq "$RUNS"); do
  for n in "${names[@]}"; do
    if [ "$n" = nginx ]; then r=$(nginx_run); else r=$(keel_run "$n"); fi
    rps[$n]+="${r% *} "; cpu[$n]+="${r#* } "
  done
done
med() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
echo "# $(date -u +%F) 4 KiB GET, $SETUP, wrk -t1 -c32 ${SECS}s, medians of $RUNS"
printf "%-40s %10s %14s   %s\n" "server" "req/s" "CPU µs/req" "runs (req/s; µs)"
for n in "${names[@]}"; do
  printf "%-40s %10s %14s   %s; %s\n" "$n" "$(med ${rps[$n]})" "$(med ${cpu[$n]})" "${rps[$n]}" "${cpu[$n]}"
done
