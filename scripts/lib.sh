# Helpers the measuring scripts source (scale.sh, shard-costs.sh, ab-put64.sh).

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
