#!/usr/bin/env bash
# Backend buckets, measured: a remote keel (the "cloud") and a front keel whose bucket `cache`
# is attached to the remote's bucket `data`, both release builds on loopback, --sync none.
# For N objects of SIZE: GET each straight from the remote, then through the front cold (first
# read: fetched and cached), then warm (local), and from a plain bucket on the front holding the
# same bytes. Prints MB/s per object and the medians; boto3 reads whole bodies.
#
# With PREFETCH=M, also M objects of 1 MiB: `keel prefetch` of them into the cache against
# `aws s3 sync` of them from the remote to a local directory (both 16 at a time).
#
# With LINK=RATE (tc syntax, e.g. LINK=2gbit; root), the remote runs in a network namespace
# behind a veth pair whose remote-to-front direction is shaped to RATE: a remote across a
# network link, as a cloud bucket is, instead of one on loopback sharing the CPUs' copy budget.
# The direct GETs cross the same link. With FLOWRATE=RATE instead, each TCP connection from
# the remote is paced to RATE (tc fq maxrate) and the link is not: a cloud store, whose one
# connection moves far less than the machine's network can.
#
#   scripts/bench-backend.sh [N=4] [SIZE_MIB=64]
set -euo pipefail
. "$(dirname "$0")/lib.sh"
N=${1:-4}; SIZE_MIB=${2:-64}
BIN=${KEEL_BIN:-target/release/keel}
W=$(mktemp -d /tmp/keel-backend-bench-XXXX)
PIDS=()
NS=keel-bench-remote
SHAPED=${LINK:-}${FLOWRATE:-}
trap 'for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done; rm -rf "$W"; [ -z "$SHAPED" ] || ip netns del $NS 2>/dev/null' EXIT
REMOTE_HOST=127.0.0.1
IN_NS=()
if [ -n "$SHAPED" ]; then
  ip netns del $NS 2>/dev/null || true
  ip netns add $NS
  ip link add kb-front type veth peer name kb-remote
  ip link set kb-remote netns $NS
  ip addr add 10.77.0.1/24 dev kb-front && ip link set kb-front up
  ip netns exec $NS ip addr add 10.77.0.2/24 dev kb-remote
  ip netns exec $NS ip link set kb-remote up
  ip netns exec $NS ip link set lo up
  if [ -n "${LINK:-}" ]; then
    ip netns exec $NS tc qdisc add dev kb-remote root tbf rate "$LINK" burst 4mb latency 50ms
  else
    ip netns exec $NS tc qdisc add dev kb-remote root fq maxrate "$FLOWRATE"
  fi
  REMOTE_HOST=10.77.0.2
  IN_NS=(ip netns exec $NS)
fi
"${IN_NS[@]}" "$BIN" serve --mountpath "$W/remote" --listen $REMOTE_HOST:18361 --sync none --threads 1 \
  --access-key AK --secret-key SK > "$W/remote.log" 2>&1 &
PIDS+=($!)
cat > "$W/keel.toml" <<EOF
[backends.up]
provider = "s3"
endpoint = "http://$REMOTE_HOST:18361"
region = "us-east-1"
access_key = "AK"
secret_key = "SK"
EOF
"$BIN" serve --mountpath "$W/front" --listen 127.0.0.1:18362 --sync none --threads 1 \
  --access-key AK --secret-key SK --config "$W/keel.toml" > "$W/front.log" 2>&1 &
PIDS+=($!)
[ -n "$SHAPED" ] && sleep 1 || wait_port 18361
wait_port 18362
.venv/bin/python - "$N" "$SIZE_MIB" "$BIN" "$REMOTE_HOST" <<'EOF'
import os, statistics, subprocess, sys, time
import boto3
n, size, binary, remote_host = int(sys.argv[1]), int(sys.argv[2]) << 20, sys.argv[3], sys.argv[4]
def c(port, host="127.0.0.1"):
    return boto3.client("s3", endpoint_url=f"http://{host}:{port}", aws_access_key_id="AK",
                        aws_secret_access_key="SK", region_name="us-east-1")
remote, front = c(18361, remote_host), c(18362)
remote.create_bucket(Bucket="data")
front.create_bucket(Bucket="cache")
front.create_bucket(Bucket="plain")
p = subprocess.run([binary, "bucket", "props", "cache", "backend=up/data", "--endpoint", "http://127.0.0.1:18362",
                    "--access-key", "AK", "--secret-key", "SK"], capture_output=True, text=True)
assert p.returncode == 0, p.stderr
body = os.urandom(size)
for i in range(n):
    remote.put_object(Bucket="data", Key=f"k{i}", Body=body)
    front.put_object(Bucket="plain", Key=f"k{i}", Body=body)
def rate(client, bucket, key):
    t = time.perf_counter()
    got = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    dt = time.perf_counter() - t
    assert len(got) == size
    return size / dt / 1e6
rows = {"direct from the remote": [], "through keel, cold": [], "through keel, warm": [], "plain keel bucket": []}
for i in range(n):
    rows["direct from the remote"].append(rate(remote, "data", f"k{i}"))
    rows["through keel, cold"].append(rate(front, "cache", f"k{i}"))
    rows["through keel, warm"].append(rate(front, "cache", f"k{i}"))
    rows["plain keel bucket"].append(rate(front, "plain", f"k{i}"))
# A cold ranged read (the last 64 KiB, as pyarrow reads a Parquet footer): time to the range,
# through keel (fresh keys, never read) against the same range read straight from the remote.
for i in range(n):
    remote.put_object(Bucket="data", Key=f"r{i}", Body=body)
def range_ms(client, bucket, key):
    t = time.perf_counter()
    got = client.get_object(Bucket=bucket, Key=key, Range="bytes=-65536")["Body"].read()
    assert len(got) == 65536
    return (time.perf_counter() - t) * 1000
lat = {"direct": [range_ms(remote, "data", f"r{i}") for i in range(n)], "keel cold": []}
for i in range(n):
    lat["keel cold"].append(range_ms(front, "cache", f"r{i}"))
    time.sleep(size / 100e6)  # the copy behind the range lands (at 100 MB/s or better) first
lat["keel warm"] = [range_ms(front, "cache", f"r{i}") for i in range(n)]
for k, v in lat.items():
    print(f"64 KiB suffix range, {k:10} " + " ".join(f"{x:6.1f}" for x in v) + f"   median {statistics.median(v):6.1f} ms")
med = {k: statistics.median(v) for k, v in rows.items()}
for k, v in rows.items():
    print(f"{k:26} " + " ".join(f"{x:7.0f}" for x in v) + f"   median {med[k]:7.0f} MB/s")
print(f"cold / direct {med['through keel, cold'] / med['direct from the remote']:.2f}x, "
      f"warm / plain {med['through keel, warm'] / med['plain keel bucket']:.2f}x")
EOF
if [ -n "${PREFETCH:-}" ]; then
  .venv/bin/python - "$PREFETCH" "$REMOTE_HOST" <<'EOF'
import concurrent.futures, os, sys
import boto3
m = int(sys.argv[1])
r = boto3.client("s3", endpoint_url=f"http://{sys.argv[2]}:18361", aws_access_key_id="AK",
                 aws_secret_access_key="SK", region_name="us-east-1")
body = os.urandom(1 << 20)
with concurrent.futures.ThreadPoolExecutor(16) as ex:
    list(ex.map(lambda i: r.put_object(Bucket="data", Key=f"ds/{i:05}", Body=body), range(m)))
EOF
  export AWS_ACCESS_KEY_ID=AK AWS_SECRET_ACCESS_KEY=SK AWS_DEFAULT_REGION=us-east-1
  export AWS_CONFIG_FILE="$W/aws-config"
  printf '[default]\ns3 =\n  max_concurrent_requests = 16\n' > "$AWS_CONFIG_FILE"
  t0=$(date +%s.%N)
  "$BIN" prefetch cache --prefix ds/ --parallel 16 --endpoint http://127.0.0.1:18362 2>/dev/null
  t1=$(date +%s.%N)
  .venv/bin/aws --endpoint-url http://$REMOTE_HOST:18361 s3 sync s3://data/ds "$W/sync" --only-show-errors
  t2=$(date +%s.%N)
  python3 -c "m=$PREFETCH; a=$t1-$t0; b=$t2-$t1; print(f'prefetch {m} x 1 MiB: keel prefetch {a:.1f} s ({m/a:.0f} obj/s), aws s3 sync {b:.1f} s ({m/b:.0f} obj/s), sync/prefetch time {b/a:.2f}x')"
fi
