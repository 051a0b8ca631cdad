# Helpers the measuring scripts source (scale.sh, shard-costs.sh, ab-put64.sh, bench-cluster*.sh, bench-copies.sh,
# bench-rebalance.sh, bench-get-cost.sh, bench-tls.sh, bench-get-picture.sh, bench-compare.sh).

# Waits (10 s at most) until something accepts connections on 127.0.0.1:PORT.
wait_port() {
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

# Stops process PID: SIGTERM (keel drains), SIGKILL after 5 s, then reaps it.
stop_pid() {
  kill "$1" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

# Starts a one-member etcd in the background (its pid in $!): data in DIR/etcd, clients on
# LISTEN (advertised as URL), peers on 127.0.0.1:PEER_PORT. Call start_etcd, then wait_etcd.
start_etcd() { # DIR LISTEN URL PEER_PORT
  etcd --name bench --data-dir "$1/etcd" --listen-client-urls "$2" --advertise-client-urls "$3" \
    --listen-peer-urls "http://127.0.0.1:$4" --initial-advertise-peer-urls "http://127.0.0.1:$4" \
    --initial-cluster "bench=http://127.0.0.1:$4" >"$1/etcd.log" 2>&1 &
}

# Waits (10 s at most) until the etcd at URL answers.
wait_etcd() {
  for _ in $(seq 50); do curl -sf "$1/health" >/dev/null && return 0; sleep 0.2; done
  return 1
}

# Column C of operation OP's line in a keel-bench result.
col() { awk -v op="$1" -v c="$2" '$1==op {print $c}'; }

# The copies comparison (bench-copies.sh, bench-cluster-copies.sh): buckets `one` (copies 1),
# `two` and `fgload` (copies=2) made through $EP, then RUNS rounds of PUT 4 KiB, PUT 64 MiB and
# GET 4 KiB, each on `one` then `two`, DUR seconds each, under the header line given. Needs kb.
copies_buckets() { # one (copies=1), two and fgload (copies=2), through $EP
  for b in one two fgload; do curl -sf -X PUT "$EP/$b" >/dev/null; done
  for b in two fgload; do curl -sf -X PUT "$EP/_keel/buckets/$b/props?copies=2" | grep -q '"copies":2'; done
  sleep 1
}
copies_table() { # HEADER
  copies_buckets
  echo "$1"
  printf "%-28s %12s %12s %8s\n" "workload" "copies=1" "copies=2" "ratio"
  local r
  for r in $(seq "$RUNS"); do
    OP=PUT copies_row "PUT 4 KiB ops/s (run $r)" 4 --workload put --size 4KiB --objects 1000 --concurrency 32 --duration "${DUR}s"
    OP=PUT copies_row "PUT 64 MiB MB/s (run $r)" 5 --workload put --size 64MiB --objects 8 --concurrency 4 --duration "${DUR}s"
    OP=GET copies_row "GET 4 KiB ops/s (run $r)" 4 --workload get --size 4KiB --objects 1000 --concurrency 32 --duration "${DUR}s"
  done
}

copies_row() { # NAME COLUMN KEEL-BENCH-ARGS...
  local name=$1 c=$2 a b
  shift 2
  a=$(kb --bucket one "$@" | col "$OP" "$c")
  b=$(kb --bucket two "$@" | col "$OP" "$c")
  printf "%-28s %12s %12s %8.2f\n" "$name" "$a" "$b" "$(echo "$b / $a" | bc -l)"
}

# The p99 (ms) of N back-to-back 2 s runs of 4 KiB GETs in bucket `fgload` (8 in flight), one a line.
p99s() {
  for _ in $(seq "$1"); do
    kb --bucket fgload --workload get --size 4KiB --objects 1000 --no-prepare --concurrency 8 --duration 2s | col GET 9
  done
}

# The median and max of numbers read one a line.
summary() { sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)] " ms (median of " NR " runs, max " v[NR] ")"}'; }

# The measurements against nginx (bench-get-cost.sh, bench-tls.sh, bench-get-picture.sh): a
# scratch directory $dir that nginx's workers can read, and an EXIT trap that stops what ran
# there (the keel whose pid is in $pid, the nginx of $dir/nginx.conf) and removes it.
bench_dir() {
  dir=$(mktemp -d -p "${BENCH_DIR:-/tmp}")
  chmod 755 "$dir"
  pid=
  trap bench_cleanup EXIT
}
bench_cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  nginx -c "$dir/nginx.conf" -s stop 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$dir"
}

# Stops the nginx of $dir/nginx.conf and waits until nothing accepts on 127.0.0.1:PORT.
nginx_stop() { # PORT
  nginx -c "$dir/nginx.conf" -s stop
  while (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; do sleep 0.1; done
}

# User + system CPU ticks the processes PID... have used.
ticks() { for p in "$@"; do awk '{print $14 + $15}' "/proc/$p/stat"; done | awk '{t += $1} END {print t}'; }

# wrk -t1 -c32 against URL for SECS seconds after a 1 s warm-up, run under the command prefix
# in the array CLI (empty: none): prints "req/s server-CPU-µs-per-request", the CPU being what
# the server processes PID... used over the timed run.
wrk_cost() { # SECS URL PID...   (WRK_ARGS: more wrk arguments, e.g. -H 'Origin: x')
  local secs=$1 url=$2 t0 out t1
  shift 2
  "${CLI[@]}" wrk -t1 -c32 -d1s ${WRK_ARGS[@]+"${WRK_ARGS[@]}"} "$url" >/dev/null
  t0=$(ticks "$@")
  out=$("${CLI[@]}" wrk -t1 -c32 -d"${secs}s" ${WRK_ARGS[@]+"${WRK_ARGS[@]}"} "$url")
  t1=$(ticks "$@")
  echo "$out" | awk -v t=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" '
    /requests in/ {n = $1} /Requests\/sec/ {r = $2}
    END {printf "%.0f %.2f\n", r, (t / hz) * 1e6 / n}'
}
