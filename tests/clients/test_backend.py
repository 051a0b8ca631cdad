"""Backend buckets against real servers started here on loopback ports: moto_server (the S3 API)
and Azurite (Azure Blob Storage's emulator), each behind a keel bucket, driven with boto3 and
`keel bucket props` as a user would; the remote side is checked with its own client (boto3,
azure-storage-blob)."""
import io
import os
import socket
import subprocess
import time

import boto3
import pytest

from conftest import AK, BIN_DIR, ROOT, SK, Keel, keel_bin

MOTO_KEYS = ("testing", "testing")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(args, port, name):
    """Starts a server process and waits until its port accepts connections."""
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    pytest.fail(f"{name} did not start")


@pytest.fixture(scope="module")
def moto():
    port = free_port()
    proc = serve([str(BIN_DIR / "moto_server"), "-H", "127.0.0.1", "-p", str(port)], port, "moto_server")
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=10)


# Azurite's well-known development account (documented by Microsoft; not a secret).
AZ_ACCOUNT = "devstoreaccount1"
AZ_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
AZURITE = ROOT / "tests" / "clients" / "node_modules" / ".bin" / "azurite-blob"


@pytest.fixture(scope="module")
def azurite(tmp_path_factory):
    """Azurite's blob service (npm `azurite`, installed by scripts/test.sh under
    tests/clients/node_modules)."""
    assert AZURITE.exists(), "Azurite is missing: npm install --prefix tests/clients"
    port = free_port()
    data = tmp_path_factory.mktemp("azurite")
    proc = serve([str(AZURITE), "--blobHost", "127.0.0.1", "--blobPort", str(port), "--location", str(data),
                  "--skipApiVersionCheck", "--loose", "--silent"], port, "azurite-blob")
    yield f"http://127.0.0.1:{port}/{AZ_ACCOUNT}"
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(scope="module")
def front(moto, azurite, tmp_path_factory):
    cfg = tmp_path_factory.mktemp("cfg") / "keel.toml"
    cfg.write_text(
        "backend_timeout = 10\n\n[backends.moto]\nprovider = \"s3\"\n"
        f"endpoint = \"{moto}\"\nregion = \"us-east-1\"\n"
        f"access_key = \"{MOTO_KEYS[0]}\"\nsecret_key = \"{MOTO_KEYS[1]}\"\npassthrough = true\n\n"
        "[backends.az]\nprovider = \"azure\"\n"
        f"endpoint = \"{azurite}\"\naccount = \"{AZ_ACCOUNT}\"\nsecret_key = \"{AZ_KEY}\"\n")
    k = Keel("--config", str(cfg))
    yield k
    k.stop()


def client(endpoint, keys):
    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=keys[0],
                        aws_secret_access_key=keys[1], region_name="us-east-1")


def cached_keys(front, bucket):
    """The keys keel holds of a backend bucket: a ListObjectsV2 with `x-keel-cached=true` added
    to the query before it is signed."""
    k = client(front.endpoint, (AK, SK))
    k.meta.events.register(
        "before-sign.s3.ListObjectsV2", lambda request, **_: setattr(request, "url", request.url + "&x-keel-cached=true"))
    return [o["Key"] for o in k.list_objects_v2(Bucket=bucket).get("Contents", [])]


def attach(front, bucket, backend):
    p = subprocess.run([keel_bin(), "bucket", "props", bucket, f"backend={backend}",
                        "--endpoint", front.endpoint, "--access-key", AK, "--secret-key", SK],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert f'"backend":"{backend}"' in p.stdout


def test_a_moto_bucket_behind_keel(moto, front):
    remote = client(moto, MOTO_KEYS)
    remote.create_bucket(Bucket="dataset")
    shards = {f"train/shard-{i:03}.tar": os.urandom(200_000 + i) for i in range(5)}
    for key, body in shards.items():
        remote.put_object(Bucket="dataset", Key=key, Body=body, ContentType="application/x-tar")
    remote.put_object(Bucket="dataset", Key="README", Body=b"the dataset")

    k = client(front.endpoint, (AK, SK))
    k.create_bucket(Bucket="cache")
    attach(front, "cache", "moto/dataset")

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


def test_an_azurite_container_behind_keel(azurite, front):
    from azure.storage.blob import BlobServiceClient, ContentSettings
    conn = (f"DefaultEndpointsProtocol=http;AccountName={AZ_ACCOUNT};AccountKey={AZ_KEY};"
            f"BlobEndpoint={azurite};")
    remote = BlobServiceClient.from_connection_string(conn).get_container_client("images")
    remote.create_container()
    blobs = {f"val/img-{i:04}.jpg": os.urandom(50_000 + 7 * i) for i in range(7)}
    for key, body in blobs.items():
        remote.upload_blob(key, body, content_settings=ContentSettings(content_type="image/jpeg"))
    remote.upload_blob("labels.csv", b"img,label\n")

    k = client(front.endpoint, (AK, SK))
    k.create_bucket(Bucket="azcache")
    attach(front, "azcache", "az/images")

    # The container's listing, paged, with prefix and delimiter.
    pages = k.get_paginator("list_objects_v2").paginate(Bucket="azcache", PaginationConfig={"PageSize": 3})
    keys = [o["Key"] for page in pages for o in page.get("Contents", [])]
    assert keys == ["labels.csv"] + sorted(blobs)
    top = k.list_objects_v2(Bucket="azcache", Delimiter="/")
    assert [o["Key"] for o in top["Contents"]] == ["labels.csv"]
    assert [c["Prefix"] for c in top["CommonPrefixes"]] == ["val/"]

    # HEAD and GET carry the blob's size, type and ETag; a range is served; the second GET is local.
    key = "val/img-0003.jpg"
    props = remote.get_blob_client(key).get_blob_properties()
    head = k.head_object(Bucket="azcache", Key=key)
    assert head["ContentLength"] == len(blobs[key])
    assert head["ContentType"] == "image/jpeg"
    got = k.get_object(Bucket="azcache", Key=key)
    assert got["Body"].read() == blobs[key]
    assert got["ETag"].strip('"') == props.etag.strip('"')
    assert k.get_object(Bucket="azcache", Key=key, Range="bytes=-10")["Body"].read() == blobs[key][-10:]
    # `x-keel-cached=true` lists only what keel holds (added to the query before signing).
    assert cached_keys(front, "azcache") == [key]

    # Writes and deletes go through to the container.
    k.put_object(Bucket="azcache", Key="preds/run1.json", Body=b'{"top1": 0.76}', ContentType="application/json")
    blob = remote.get_blob_client("preds/run1.json")
    assert blob.download_blob().readall() == b'{"top1": 0.76}'
    assert blob.get_blob_properties().content_settings.content_type == "application/json"
    k.delete_object(Bucket="azcache", Key="labels.csv")
    k.delete_objects(Bucket="azcache", Delete={"Objects": [{"Key": "val/img-0000.jpg"}]})
    left = sorted(b.name for b in remote.list_blobs())
    assert "labels.csv" not in left and "val/img-0000.jpg" not in left
    assert "preds/run1.json" in left and key in left
    with pytest.raises(k.exceptions.NoSuchKey):
        k.get_object(Bucket="azcache", Key="labels.csv")


def test_a_url_presigned_for_the_remote_is_passed_through(moto, front):
    """The README's recipe: presign for the real S3 (here moto), send the same path and query to
    keel. (moto does not check signatures; the integration test checks that a refused URL is
    refused through keel too.)"""
    import urllib.error
    import urllib.parse
    import urllib.request
    remote = client(moto, MOTO_KEYS)
    remote.create_bucket(Bucket="shared")
    body = os.urandom(300_000)
    remote.put_object(Bucket="shared", Key="papers/a b.pdf", Body=body, ContentType="application/pdf")
    k = client(front.endpoint, (AK, SK))
    k.create_bucket(Bucket="shared")
    attach(front, "shared", "moto/shared")

    url = remote.generate_presigned_url("get_object", Params={"Bucket": "shared", "Key": "papers/a b.pdf"},
                                        ExpiresIn=600)
    u = urllib.parse.urlsplit(url)
    assert u.path == "/shared/papers/a%20b.pdf"
    via_keel = f"{front.endpoint}{u.path}?{u.query}"

    def fetch(**headers):
        try:
            with urllib.request.urlopen(urllib.request.Request(via_keel, headers=headers), timeout=30) as r:
                return r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            raise AssertionError(e.read())

    status, headers, got = fetch()
    assert (status, got, headers["Content-Type"]) == (200, body, "application/pdf")
    # Cached: listed as such, and read again (a range) through the same URL.
    assert cached_keys(front, "shared") == ["papers/a b.pdf"]
    status, _, got = fetch(Range="bytes=10-19")
    assert (status, got) == (206, body[10:20])


def test_a_multipart_upload_into_a_backend_bucket_lands_on_the_remote(moto, front, tmp_path):
    """boto3's managed transfer (multipart above 8 MiB, parts in parallel), as `aws s3 cp` does."""
    from boto3.s3.transfer import TransferConfig
    remote = client(moto, MOTO_KEYS)
    remote.create_bucket(Bucket="uploads")
    k = client(front.endpoint, (AK, SK))
    k.create_bucket(Bucket="upcache")
    attach(front, "upcache", "moto/uploads")
    src = tmp_path / "ckpt.bin"
    body = os.urandom(21 << 20)
    src.write_bytes(body)
    k.upload_file(str(src), "upcache", "ckpt/step-100.bin",
                  Config=TransferConfig(multipart_threshold=8 << 20, multipart_chunksize=8 << 20))
    assert remote.get_object(Bucket="uploads", Key="ckpt/step-100.bin")["Body"].read() == body
    assert cached_keys(front, "upcache") == ["ckpt/step-100.bin"], "kept here as it went through"
    got = k.get_object(Bucket="upcache", Key="ckpt/step-100.bin")
    assert got["Body"].read() == body
    assert got["ETag"] == remote.head_object(Bucket="uploads", Key="ckpt/step-100.bin")["ETag"]


def test_boto3_takes_a_completion_answered_with_spaces_first(moto, tmp_path):
    """A completion still sending to the remote answers 200 at once and keeps the connection
    with spaces (KEEL_COMPLETE_KEEPALIVE_MS=0: from its start); boto3 reads the result after
    them, as it does S3's."""
    from boto3.s3.transfer import TransferConfig
    cfg = tmp_path / "keel.toml"
    cfg.write_text("[backends.moto]\nprovider = \"s3\"\n"
                   f"endpoint = \"{moto}\"\nregion = \"us-east-1\"\n"
                   f"access_key = \"{MOTO_KEYS[0]}\"\nsecret_key = \"{MOTO_KEYS[1]}\"\n")
    os.environ["KEEL_COMPLETE_KEEPALIVE_MS"] = "0"
    try:
        slow = Keel("--config", str(cfg))
    finally:
        del os.environ["KEEL_COMPLETE_KEEPALIVE_MS"]
    try:
        remote = client(moto, MOTO_KEYS)
        remote.create_bucket(Bucket="slowdone")
        k = client(slow.endpoint, (AK, SK))
        k.create_bucket(Bucket="slowdone")
        attach(slow, "slowdone", "moto/slowdone")
        body = os.urandom(13 << 20)
        k.upload_fileobj(io.BytesIO(body), "slowdone", "big.bin",
                         Config=TransferConfig(multipart_threshold=5 << 20, multipart_chunksize=5 << 20))
        assert remote.get_object(Bucket="slowdone", Key="big.bin")["Body"].read() == body
        assert k.get_object(Bucket="slowdone", Key="big.bin")["Body"].read() == body
    finally:
        slow.stop()


def test_a_put_presigned_for_the_remote_is_passed_through(moto, front):
    """boto3 presigns a PUT for moto (SigV2 by default: Content-Type is signed); the same path
    and query sent to keel puts the object on moto and a copy in keel."""
    import urllib.parse
    import urllib.request
    remote = client(moto, MOTO_KEYS)
    remote.create_bucket(Bucket="drop")
    k = client(front.endpoint, (AK, SK))
    k.create_bucket(Bucket="drop")
    attach(front, "drop", "moto/drop")
    url = remote.generate_presigned_url("put_object", ExpiresIn=600,
                                        Params={"Bucket": "drop", "Key": "in/report.csv", "ContentType": "text/csv"})
    u = urllib.parse.urlsplit(url)
    body = b"a,b\n" * 50_000
    req = urllib.request.Request(f"{front.endpoint}{u.path}?{u.query}", data=body, method="PUT",
                                 headers={"Content-Type": "text/csv"})
    with urllib.request.urlopen(req, timeout=30) as r:
        assert r.status == 200
        etag = r.headers["ETag"]
    got = remote.get_object(Bucket="drop", Key="in/report.csv")
    assert got["Body"].read() == body
    assert got["ETag"] == etag
    assert got["ContentType"] == "text/csv"
    assert cached_keys(front, "drop") == ["in/report.csv"], "kept here as it went through"
    assert k.get_object(Bucket="drop", Key="in/report.csv")["Body"].read() == body
