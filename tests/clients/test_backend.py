"""Backend buckets against moto: a real S3 API server (moto_server, started here on a loopback
port) behind a keel bucket, driven with boto3 and `keel bucket props` as a user would."""
import os
import socket
import subprocess
import time

import boto3
import pytest

from conftest import AK, BIN_DIR, SK, Keel, keel_bin

MOTO_KEYS = ("testing", "testing")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def moto():
    port = free_port()
    proc = subprocess.Popen([str(BIN_DIR / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("moto_server did not start")
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(scope="module")
def front(moto, tmp_path_factory):
    cfg = tmp_path_factory.mktemp("cfg") / "keel.toml"
    cfg.write_text(
        "backend_timeout = 10\n\n[backends.moto]\nprovider = \"s3\"\n"
        f"endpoint = \"{moto}\"\nregion = \"us-east-1\"\n"
        f"access_key = \"{MOTO_KEYS[0]}\"\nsecret_key = \"{MOTO_KEYS[1]}\"\n")
    k = Keel("--config", str(cfg))
    yield k
    k.stop()


def client(endpoint, keys):
    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=keys[0],
                        aws_secret_access_key=keys[1], region_name="us-east-1")


def test_a_moto_bucket_behind_keel(moto, front):
    remote = client(moto, MOTO_KEYS)
    remote.create_bucket(Bucket="dataset")
    shards = {f"train/shard-{i:03}.tar": os.urandom(200_000 + i) for i in range(5)}
    for key, body in shards.items():
        remote.put_object(Bucket="dataset", Key=key, Body=body, ContentType="application/x-tar")
    remote.put_object(Bucket="dataset", Key="README", Body=b"the dataset")

    k = client(front.endpoint, (AK, SK))
    k.create_bucket(Bucket="cache")
    p = subprocess.run([keel_bin(), "bucket", "props", "cache", "backend=moto/dataset",
                        "--endpoint", front.endpoint, "--access-key", AK, "--secret-key", SK],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert '"backend":"moto/dataset"' in p.stdout

    # The listing is the remote's: paged, with prefix and delimiter.
    pages = k.get_paginator("list_objects_v2").paginate(Bucket="cache", PaginationConfig={"PageSize": 2})
    keys = [o["Key"] for page in pages for o in page.get("Contents", [])]
    assert keys == ["README"] + sorted(shards)
    top = k.list_objects_v2(Bucket="cache", Delimiter="/")
    assert [o["Key"] for o in top["Contents"]] == ["README"]
    assert [c["Prefix"] for c in top["CommonPrefixes"]] == ["train/"]
    assert k.list_objects_v2(Bucket="cache", Prefix="train/shard-00")["KeyCount"] == 5

    # A HEAD asks the remote; a GET fetches, keeps the remote's ETag, and serves ranges.
    key = "train/shard-002.tar"
    want_etag = remote.head_object(Bucket="dataset", Key=key)["ETag"]
    head = k.head_object(Bucket="cache", Key=key)
    assert head["ContentLength"] == len(shards[key])
    assert head["ContentType"] == "application/x-tar"
    got = k.get_object(Bucket="cache", Key=key)
    assert got["Body"].read() == shards[key]
    assert got["ETag"] == want_etag
    part = k.get_object(Bucket="cache", Key=key, Range="bytes=100-199")["Body"].read()
    assert part == shards[key][100:200]

    # Writes go through to moto; deletes too.
    k.put_object(Bucket="cache", Key="out/result.json", Body=b'{"loss": 0.1}', ContentType="application/json")
    r = remote.get_object(Bucket="dataset", Key="out/result.json")
    assert r["Body"].read() == b'{"loss": 0.1}'
    assert r["ContentType"] == "application/json"
    k.delete_object(Bucket="cache", Key="README")
    with pytest.raises(remote.exceptions.ClientError):
        remote.head_object(Bucket="dataset", Key="README")
    k.delete_objects(Bucket="cache", Delete={"Objects": [{"Key": "train/shard-000.tar"}]})
    assert "train/shard-000.tar" not in [o["Key"] for o in remote.list_objects_v2(Bucket="dataset")["Contents"]]
