# Helpers the measuring scripts source (scale.sh, shard-costs.sh, ab-put64.sh, bench-cluster*.sh, bench-copies.sh,
# bench-rebalance.sh).

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
