#!/usr/bin/env bash
# What access control costs per request (issue 18, D49/D50): anonymous 4 KiB GETs from one keel
# (server on CPU 0, one shard; wrk -t1 -c32 on CPU 1), of
#   acl     an object whose canned ACL is public-read (the D25 path, no policy),
#   policy  a private object in a bucket whose policy allows s3:GetObject to "*" and has two
#           Deny statements with conditions (aws:SourceIp, s3:x-amz-acl) evaluated on every GET,
#   cors    the public-read object requested with an Origin header its bucket's CORS rules allow.
# Requests per second and server CPU µs per request (/proc ticks over the run); cases alternate,
# RUNS times; medians, and each case against `acl`.
#   scripts/bench-access.sh [SECS=6] [RUNS=3] [KEEL_BINARY=target/release/keel]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
SECS=${1:-6}
RUNS=${2:-3}
BIN=${3:-target/release/keel}
[ -x "$BIN" ] || { echo "no binary $BIN (cargo build --release)"; exit 1; }
command -v wrk >/dev/null || { echo "wrk is needed (apt-get install wrk)"; exit 1; }
bench_dir
PORT=19874
SRV=(taskset -c 0); CLI=(taskset -c 1)
AK=benchak; SK=benchsecretkey
"${SRV[@]}" "$BIN" serve --listen 127.0.0.1:$PORT --threads 1 --sync none --access-key $AK --secret-key $SK \
  --mountpath "$dir/data" >"$dir/out" 2>"$dir/log" &
pid=$!
trap 'kill $pid 2>/dev/null; bench_cleanup' EXIT
wait_port $PORT || { cat "$dir/log"; exit 1; }
# curl signs a valueless query parameter as `policy` where S3 (and keel) sign `policy=`: name
# the `=` in URLs.
s3() { curl -sf --aws-sigv4 "aws:amz:us-east-1:s3" --user "$AK:$SK" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "$@"; }
U=http://127.0.0.1:$PORT
head -c 4096 /dev/urandom > "$dir/obj4k"
s3 -X PUT "$U/acl" >/dev/null
s3 -X PUT -H "x-amz-acl: public-read" --data-binary @"$dir/obj4k" "$U/acl/obj4k" >/dev/null
s3 -X PUT "$U/pol" >/dev/null
s3 -X PUT --data-binary @"$dir/obj4k" "$U/pol/obj4k" >/dev/null
cat > "$dir/policy.json" <<JSON
{"Version":"2012-10-17","Statement":[
 {"Sid":"Read","Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::pol/*"},
 {"Sid":"Local","Effect":"Deny","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::pol/*","Condition":{"NotIpAddress":{"aws:SourceIp":["127.0.0.0/8","::1"]}}},
 {"Sid":"Private","Effect":"Deny","Principal":"*","Action":"s3:PutObject","Resource":"arn:aws:s3:::pol/*","Condition":{"StringEquals":{"s3:x-amz-acl":"public-read-write"}}}]}
JSON
s3 -X PUT --data-binary @"$dir/policy.json" "$U/pol?policy=" >/dev/null
s3 -X PUT --data-binary '<CORSConfiguration><CORSRule><AllowedMethod>GET</AllowedMethod><AllowedOrigin>https://*.example.com</AllowedOrigin><ExposeHeader>ETag</ExposeHeader></CORSRule></CORSConfiguration>' "$U/acl?cors=" >/dev/null
for c in acl pol; do curl -sf "$U/$c/obj4k" -o /dev/null || { echo "anonymous GET of $c/obj4k refused"; exit 1; }; done
declare -A rps cpu
for _ in $(seq "$RUNS"); do
  for c in acl policy cors; do
    WRK_ARGS=()
    case $c in
      acl) url=$U/acl/obj4k ;;
      policy) url=$U/pol/obj4k ;;
      cors) url=$U/acl/obj4k; WRK_ARGS=(-H "Origin: https://app.example.com") ;;
    esac
    r=$(wrk_cost "$SECS" "$url" $pid)
    rps[$c]+="${r% *} "; cpu[$c]+="${r#* } "
  done
done
med() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
echo "| case | req/s | server µs/request | vs acl (req/s) |"
echo "| --- | --- | --- | --- |"
base=$(echo "${rps[acl]}" | med)
for c in acl policy cors; do
  r=$(echo "${rps[$c]}" | med); u=$(echo "${cpu[$c]}" | med)
  echo "| $c | $r | $u | $(awk -v a="$r" -v b="$base" 'BEGIN {printf "%.2f", a / b}')× |"
done
echo "($(date -u +%F), $SECS s x $RUNS runs, server on CPU 0 with one shard, wrk -t1 -c32 on CPU 1, $BIN)"
