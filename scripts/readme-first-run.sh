#!/usr/bin/env bash
# Runs README.md's first command verbatim, as a newcomer on a fresh clone would: waits for the
# banner, uses the credentials it prints with the aws CLI (mb, cp up, cp down, compare), then
# stops it with SIGTERM and expects a clean exit. `.ci/run` calls it so the command can never
# break silently again. Needs the aws CLI (.venv/bin/aws, or on PATH).
set -euo pipefail
cd "$(dirname "$0")/.."

# The first line of the first ```sh block, without its trailing comment.
cmd=$(awk '/^```sh/ { getline; print; exit }' README.md | sed 's/[[:space:]]*#.*$//')
[ -n "$cmd" ] || { echo "readme-first-run: no command in README.md" >&2; exit 1; }
aws=aws
[ -x .venv/bin/aws ] && aws=.venv/bin/aws
echo "readme-first-run: $cmd"

log=$(mktemp)
work=$(mktemp -d)
# `cargo run` replaces itself with keel (exec), so this pid is the server once it runs.
bash -c "exec $cmd" >"$log" 2>&1 &
pid=$!
cleanup() {
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  rm -rf "$work" "$log"
}
trap cleanup EXIT

# A release build comes first on a fresh clone: give it up to 40 minutes.
for _ in $(seq 1 2400); do
  grep -q "listening on http://" "$log" && break
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "readme-first-run: the command exited before serving:" >&2
    cat "$log" >&2
    exit 1
  fi
  sleep 1
done
grep -q "listening on http://" "$log" || { echo "readme-first-run: no banner" >&2; cat "$log" >&2; exit 1; }
endpoint=$(grep -o 'listening on http://[^ ]*' "$log" | head -1 | sed 's/listening on //')
ak=$(sed -n 's/^ *access key //p' "$log" | head -1)
sk=$(sed -n 's/^ *secret key //p' "$log" | head -1)
[ -n "$ak" ] && [ -n "$sk" ] || { echo "readme-first-run: the banner printed no credentials" >&2; cat "$log" >&2; exit 1; }

export AWS_ACCESS_KEY_ID="$ak" AWS_SECRET_ACCESS_KEY="$sk" AWS_DEFAULT_REGION=us-east-1
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
bucket="readme-$(date +%s)-$$"
head -c 3000000 /dev/urandom >"$work/up"
"$aws" --endpoint-url "$endpoint" s3 mb "s3://$bucket"
"$aws" --endpoint-url "$endpoint" s3 cp --only-show-errors "$work/up" "s3://$bucket/first-object"
"$aws" --endpoint-url "$endpoint" s3 cp --only-show-errors "s3://$bucket/first-object" "$work/down"
cmp "$work/up" "$work/down"
"$aws" --endpoint-url "$endpoint" s3 ls "s3://$bucket" | grep -q first-object

kill -TERM "$pid"
status=0
wait "$pid" || status=$?
[ "$status" -eq 0 ] || { echo "readme-first-run: keel exited $status after SIGTERM" >&2; cat "$log" >&2; exit 1; }
echo "readme-first-run: ok ($endpoint, bucket $bucket)"
