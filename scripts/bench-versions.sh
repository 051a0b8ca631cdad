#!/usr/bin/env bash
# Versioning's cost (issue 17, D46), on this machine, --sync none, one node:
#   for each BIN given (e.g. the build before versioning, then this one): PUT 4 KiB, GET 4 KiB
#   and LIST (1000-key pages) in an unversioned bucket; for the last BIN also in a versioned one;
#   then ListObjectVersions pages of 1000 of one key with 2,000 and with 20,000 versions (the
#   first page and a page from the middle): a page's time must not grow with the chain.
# Usage: scripts/bench-versions.sh [SECS] BIN...   (keel-bench from target/release)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
SECS=${1:-5}; shift
KB=target/release/keel-bench
PY=.venv/bin/python
PORT=18777
EP=http://127.0.0.1:$PORT
run() { # BIN LABEL VERSIONED
  local dir; dir=$(mktemp -d /tmp/keel-bv-XXXX)
  "$1" serve --listen 127.0.0.1:$PORT --mountpath "$dir" --sync none --user AK:SK >"$dir/log" 2>&1 &
  local pid=$!
  wait_port $PORT
  $PY - "$EP" "$3" <<'PY'
import sys, boto3
s3 = boto3.client("s3", endpoint_url=sys.argv[1], aws_access_key_id="AK", aws_secret_access_key="SK", region_name="us-east-1")
s3.create_bucket(Bucket="keel-bench")
if sys.argv[2] == "1":
    s3.put_bucket_versioning(Bucket="keel-bench", VersioningConfiguration={"Status": "Enabled"})
PY
  for w in put get list; do
    printf '%-22s %-5s ' "$2" "$w"
    $KB --endpoint $EP --access-key AK --secret-key SK --workload $w --size 4KiB --objects 1000 \
      --duration "${SECS}s" --no-prepare 2>/dev/null | awk '$1 ~ /^(PUT|GET|LIST)$/ {print $4" ops/s, p50 "$6" ms, p99 "$8" ms"; exit}'
  done
  stop_pid $pid
  rm -rf "$dir"
}
for b in "$@"; do run "$b" "$(basename "$(dirname "$(dirname "$b")")")/$(basename "$b")" 0; done
last=${*: -1}
run "$last" "versioned" 1
# Long chains: one key with N versions, pages of 1000.
dir=$(mktemp -d /tmp/keel-bv-XXXX)
"$last" serve --listen 127.0.0.1:$PORT --mountpath "$dir" --sync none --user AK:SK >"$dir/log" 2>&1 &
pid=$!
wait_port $PORT
$PY - "$EP" "$KB" <<'PY'
import subprocess, sys, time, boto3
ep, kb = sys.argv[1], sys.argv[2]
s3 = boto3.client("s3", endpoint_url=ep, aws_access_key_id="AK", aws_secret_access_key="SK", region_name="us-east-1")
s3.create_bucket(Bucket="keel-bench")
s3.put_bucket_versioning(Bucket="keel-bench", VersioningConfiguration={"Status": "Enabled"})
have = 0
for n in (2000, 20000):
    subprocess.run([kb, "--endpoint", ep, "--access-key", "AK", "--secret-key", "SK", "--workload", "put", "--size", "1KiB",
                    "--objects", "1", "--ops", str(n - have), "--duration", "600s", "--no-prepare"], check=True,
                   capture_output=True)
    have = n
    first = s3.list_object_versions(Bucket="keel-bench", MaxKeys=1000)
    mid = first["Versions"][-1]["VersionId"]
    for name, kw in (("first page", {}), ("a middle page", {"KeyMarker": first["Versions"][0]["Key"], "VersionIdMarker": mid})):
        best = float("inf")
        for _ in range(5):
            t = time.perf_counter()
            page = s3.list_object_versions(Bucket="keel-bench", MaxKeys=1000, **kw)
            best = min(best, time.perf_counter() - t)
        assert len(page["Versions"]) == 1000
        print(f"ListObjectVersions, 1 key x {n} versions, {name} of 1000: {best * 1000:.1f} ms (best of 5, boto3)")
PY
stop_pid $pid
rm -rf "$dir"
