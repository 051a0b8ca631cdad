#!/usr/bin/env bash
# HTTPS against nginx's HTTPS on the same files and the same self-signed certificate (issue 16,
# item 6; DESIGN D43): 4 KiB GETs (wrk -t1 -c32 over keep-alive TLS connections: req/s and the
# server's CPU µs per request from /proc) and 64 MiB GETs (curl, one stream, COUNT downloads
# in a row: MB/s), keel over HTTPS and over plain HTTP, nginx over HTTPS (`ssl_conf_command
# Options KTLS` set: it takes kernel TLS where the kernel has it). Servers alternate, RUNS
# times; medians. Server on CPU 0 (1 shard / 1 worker), clients on CPU 1; DEFAULTS=1: every
# server on every core, unpinned.
#   scripts/bench-tls.sh [SECS=6] [RUNS=3] [COUNT=8]   (needs target/release/keel, nginx, wrk, curl, openssl)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
SECS=${1:-6}
RUNS=${2:-3}
COUNT=${3:-8}
KEEL=${KEEL:-target/release/keel}
[ -x "$KEEL" ] || { echo "no binary $KEEL (cargo build --release)"; exit 1; }
for t in wrk nginx curl openssl; do command -v $t >/dev/null || { echo "$t is needed"; exit 1; }; done
bench_dir
PORT=19874
if [ -n "${DEFAULTS:-}" ]; then
  SRV=(); CLI=(); SHARDS=(); WORKERS="worker_processes $(nproc);"
  SETUP="unpinned, $(nproc) shards / workers, clients on the same cores"
else
  SRV=(taskset -c 0); CLI=(taskset -c 1); SHARDS=(--threads 1)
  WORKERS="worker_processes 1; worker_cpu_affinity 01;"; SETUP="server on CPU 0 (1 shard / 1 worker), client on CPU 1"
fi
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -keyout "$dir/key.pem" \
  -out "$dir/cert.pem" -subj /CN=localhost -addext subjectAltName=IP:127.0.0.1 \
  -addext basicConstraints=critical,CA:FALSE 2>/dev/null
mkdir -p "$dir/www/bench"
head -c 4096 /dev/urandom > "$dir/www/bench/obj4k"
head -c $((64 << 20)) /dev/urandom > "$dir/www/bench/obj64m"
cat > "$dir/nginx.conf" <<NGX
$WORKERS pid $dir/nginx.pid; error_log $dir/nginx.err;
events { worker_connections 4096; }
http { access_log off; sendfile on; tcp_nopush on; tcp_nodelay on; keepalive_requests 1000000;
  server { listen 127.0.0.1:$PORT ssl; root $dir/www;
    ssl_certificate $dir/cert.pem; ssl_certificate_key $dir/key.pem; ssl_protocols TLSv1.2 TLSv1.3;
    ssl_conf_command Options KTLS; } }
NGX
small() { # SCHEME PIDS... -> "req/s µs-per-request"
  local url="$1://127.0.0.1:$PORT/bench/obj4k"
  shift
  wrk_cost "$SECS" "$url" "$@"
}
large() { # SCHEME -> MB/s over COUNT downloads of 64 MiB in a row, one connection each
  local url="$1://127.0.0.1:$PORT/bench/obj64m" s e
  "${CLI[@]}" curl -sk -o /dev/null "$url"
  s=$(date +%s.%N)
  for _ in $(seq "$COUNT"); do "${CLI[@]}" curl -sfk -o /dev/null "$url"; done
  e=$(date +%s.%N)
  echo "$COUNT * 64 * 1.048576 / ($e - $s)" | bc -l | xargs printf "%.0f\n"
}
keel_run() { # SCHEME -> "req/s µs MB/s"
  local tls=()
  [ "$1" = https ] && tls=(--tls-cert "$dir/cert.pem" --tls-key "$dir/key.pem")
  "${SRV[@]}" "$KEEL" serve --listen 127.0.0.1:$PORT --anonymous --sync none "${SHARDS[@]}" "${tls[@]}" \
    --mountpath "$dir/data" >"$dir/out" 2>"$dir/log" &
  pid=$!
  wait_port $PORT || { cat "$dir/log"; exit 1; }
  curl -sfk -X PUT "$1://127.0.0.1:$PORT/bench" >/dev/null || true
  for o in obj4k obj64m; do
    curl -sfk -X PUT --data-binary @"$dir/www/bench/$o" "$1://127.0.0.1:$PORT/bench/$o" >/dev/null
  done
  echo "$(small "$1" "$pid") $(large "$1")"
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
}
nginx_run() {
  nginx -c "$dir/nginx.conf"
  wait_port $PORT
  echo "$(small https $(pgrep -f "nginx: worker process")) $(large https)"
  nginx_stop $PORT
}
declare -A rps cpu mbs
names=(nginx-https keel-https keel-http)
for _ in $(seq "$RUNS"); do
  for n in "${names[@]}"; do
    case $n in
      nginx-https) r=$(nginx_run) ;;
      keel-https) r=$(keel_run https) ;;
      keel-http) r=$(keel_run http) ;;
    esac
    read -r a b c <<<"$r"
    rps[$n]+="$a "; cpu[$n]+="$b "; mbs[$n]+="$c "
  done
done
med() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
echo "# $(date -u +%F) GET over TLS, $SETUP; 4 KiB: wrk -t1 -c32 ${SECS}s; 64 MiB: curl, $COUNT in a row; medians of $RUNS"
printf "%-12s %10s %12s %10s   %s\n" "server" "4K req/s" "CPU µs/req" "64M MB/s" "runs (req/s; µs; MB/s)"
for n in "${names[@]}"; do
  printf "%-12s %10s %12s %10s   %s; %s; %s\n" "$n" "$(med ${rps[$n]})" "$(med ${cpu[$n]})" "$(med ${mbs[$n]})" \
    "${rps[$n]}" "${cpu[$n]}" "${mbs[$n]}"
done
ratio() { echo "$1 / $2" | bc -l | xargs printf "%.2f"; }
echo "keel-https / nginx-https: 4 KiB req/s $(ratio "$(med ${rps[keel-https]})" "$(med ${rps[nginx-https]})")×," \
  "CPU per request nginx/keel $(ratio "$(med ${cpu[nginx-https]})" "$(med ${cpu[keel-https]})"), 64 MiB" \
  "$(ratio "$(med ${mbs[keel-https]})" "$(med ${mbs[nginx-https]})")× (targets ≥ 1.0, ≥ 1.0, ≥ 0.9)"
echo "keel-https / keel-http: 64 MiB $(ratio "$(med ${mbs[keel-https]})" "$(med ${mbs[keel-http]})")× (target ≥ 0.7)"
