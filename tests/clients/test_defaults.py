"""What clients do at their defaults: presigned URLs (SigV2 by default in boto3 and `aws s3 presign`,
SigV4 when configured), SigV2 header auth (s3cmd), flexible checksums of every algorithm (aws CLI
and boto3), and per-user buckets with public-read."""
import base64
import hashlib
import json
import os
import time
import zlib

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import AK, BIN_DIR, SK, Keel, http, run

AWS = str(BIN_DIR / "aws")


def test_presigned_urls_at_boto3_defaults(s3, keel):
    s3.create_bucket(Bucket="presign")
    s3.put_object(Bucket="presign", Key="a b+c", Body=b"presigned bytes")
    # boto3's default presigned URL is SigV2 (AWSAccessKeyId, Signature, Expires).
    url = s3.generate_presigned_url("get_object", Params={"Bucket": "presign", "Key": "a b+c"}, ExpiresIn=300)
    assert "AWSAccessKeyId=" in url and "Signature=" in url
    assert http("GET", url)[:2] == (200, b"presigned bytes")
    # PUT through a presigned URL, then HEAD through another.
    put_url = s3.generate_presigned_url("put_object", Params={"Bucket": "presign", "Key": "up"}, ExpiresIn=300)
    assert http("PUT", put_url, data=b"uploaded")[0] == 200
    head_url = s3.generate_presigned_url("head_object", Params={"Bucket": "presign", "Key": "up"}, ExpiresIn=300)
    status, _, headers = http("HEAD", head_url)
    assert status == 200 and headers["Content-Length"] == "8"
    # SigV4 when asked for.
    v4 = boto3.client("s3", endpoint_url=keel.endpoint, aws_access_key_id=AK, aws_secret_access_key=SK,
                      region_name="us-east-1", config=Config(signature_version="s3v4"))
    url = v4.generate_presigned_url("get_object", Params={"Bucket": "presign", "Key": "up"}, ExpiresIn=300)
    assert "X-Amz-Signature=" in url
    assert http("GET", url)[:2] == (200, b"uploaded")
    put_url = v4.generate_presigned_url("put_object", Params={"Bucket": "presign", "Key": "up4"}, ExpiresIn=300)
    assert http("PUT", put_url, data=b"v4 upload")[0] == 200
    assert s3.get_object(Bucket="presign", Key="up4")["Body"].read() == b"v4 upload"
    # Tampered: another key with the same signature.
    status, body, _ = http("GET", url.replace("/up?", "/up4?"))
    assert status == 403 and b"SignatureDoesNotMatch" in body
    # Expired, both versions.
    for client in (s3, v4):
        url = client.generate_presigned_url("get_object", Params={"Bucket": "presign", "Key": "up"}, ExpiresIn=1)
        time.sleep(2.1)
        status, body, _ = http("GET", url)
        assert status == 403 and b"AccessDenied" in body, body
    # Out-of-range expiry.
    url = v4.generate_presigned_url("get_object", Params={"Bucket": "presign", "Key": "up"}, ExpiresIn=604801)
    assert http("GET", url)[0] == 403


def test_aws_s3_presign(keel):
    run([AWS, "--endpoint-url", keel.endpoint, "s3", "mb", "s3://cli-presign"])
    boto3.client("s3", endpoint_url=keel.endpoint, aws_access_key_id=AK, aws_secret_access_key=SK,
                 region_name="us-east-1").put_object(Bucket="cli-presign", Key="f", Body=b"cli presigned")
    url = run([AWS, "--endpoint-url", keel.endpoint, "s3", "presign", "s3://cli-presign/f", "--expires-in", "60"]).stdout.strip()
    assert http("GET", url)[:2] == (200, b"cli presigned")


def test_s3cmd_signature_v2(keel, tmp_path):
    cfg = tmp_path / "s3cfg"
    cfg.write_text(
        "[default]\n"
        f"access_key = {AK}\nsecret_key = {SK}\n"
        f"host_base = {keel.addr}\nhost_bucket = {keel.addr}\n"
        "use_https = False\nsignature_v2 = True\n"
    )
    s3cmd = [str(BIN_DIR / "s3cmd"), "-c", str(cfg)]
    f = tmp_path / "f"
    f.write_bytes(os.urandom(70_000))
    run(s3cmd + ["mb", "s3://sigv2-bucket"])
    run(s3cmd + ["put", str(f), "s3://sigv2-bucket/dir/f", "--add-header=x-amz-meta-note:v2"])
    back = tmp_path / "back"
    run(s3cmd + ["get", str("s3://sigv2-bucket/dir/f"), str(back)])
    assert back.read_bytes() == f.read_bytes()
    assert "sigv2-bucket/dir/f" in run(s3cmd + ["ls", "-r", "s3://sigv2-bucket"]).stdout
    bad = tmp_path / "bad"
    bad.write_text(cfg.read_text().replace(f"secret_key = {SK}", "secret_key = wrong"))
    p = run([str(BIN_DIR / "s3cmd"), "-c", str(bad), "ls", "s3://sigv2-bucket"], check=False)
    assert p.returncode != 0 and "SignatureDoesNotMatch" in (p.stderr + p.stdout)


ALGORITHMS = ["CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"]


def local_checksum(alg, data):
    if alg == "CRC32":
        return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
    if alg == "SHA1":
        return base64.b64encode(hashlib.sha1(data).digest()).decode()
    if alg == "SHA256":
        return base64.b64encode(hashlib.sha256(data).digest()).decode()
    return None  # CRC32C and CRC64NVME: compared against what the client computed


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_aws_cli_checksum_algorithms(keel, tmp_path, alg):
    ep = keel.endpoint
    bucket = "cli-ck-" + alg.lower()
    run([AWS, "--endpoint-url", ep, "s3", "mb", f"s3://{bucket}"])
    f = tmp_path / "body"
    data = os.urandom(100_000)
    f.write_bytes(data)
    put = json.loads(run([AWS, "--endpoint-url", ep, "s3api", "put-object", "--bucket", bucket, "--key", "k",
                          "--body", str(f), "--checksum-algorithm", alg]).stdout)
    value = put[f"Checksum{alg}"]
    want = local_checksum(alg, data)
    assert want is None or value == want
    out = tmp_path / "out"
    got = json.loads(run([AWS, "--endpoint-url", ep, "s3api", "get-object", "--bucket", bucket, "--key", "k",
                          "--checksum-mode", "ENABLED", str(out)]).stdout)
    assert got[f"Checksum{alg}"] == value and out.read_bytes() == data
    head = json.loads(run([AWS, "--endpoint-url", ep, "s3api", "head-object", "--bucket", bucket, "--key", "k",
                           "--checksum-mode", "ENABLED"]).stdout)
    assert head[f"Checksum{alg}"] == value
    # Never on a partial answer.
    part = json.loads(run([AWS, "--endpoint-url", ep, "s3api", "get-object", "--bucket", bucket, "--key", "k",
                           "--checksum-mode", "ENABLED", "--range", "bytes=0-9", str(out)]).stdout)
    assert f"Checksum{alg}" not in part


def test_boto3_checksums_verified_and_composite(s3):
    s3.create_bucket(Bucket="b3-checksums")
    data = b"checksummed body" * 1000
    # boto3 sends CRC32 by default; a wrong value is refused.
    r = s3.put_object(Bucket="b3-checksums", Key="k", Body=data)
    assert r["ChecksumCRC32"] == local_checksum("CRC32", data)
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket="b3-checksums", Key="bad", Body=data, ChecksumCRC32="AAAAAA==")
    assert e.value.response["Error"]["Code"] == "BadDigest"
    with pytest.raises(ClientError):
        s3.head_object(Bucket="b3-checksums", Key="bad")
    g = s3.get_object(Bucket="b3-checksums", Key="k", ChecksumMode="ENABLED")
    assert g["ChecksumCRC32"] == r["ChecksumCRC32"] and g["Body"].read() == data
    # Multipart with SHA256: a composite checksum over the parts ("-N").
    up = s3.create_multipart_upload(Bucket="b3-checksums", Key="mp", ChecksumAlgorithm="SHA256")
    parts = [os.urandom(5 * 1024 * 1024), os.urandom(1000)]
    listed = []
    for n, p in enumerate(parts, 1):
        pr = s3.upload_part(Bucket="b3-checksums", Key="mp", UploadId=up["UploadId"], PartNumber=n, Body=p,
                            ChecksumAlgorithm="SHA256")
        assert pr["ChecksumSHA256"] == local_checksum("SHA256", p)
        listed.append({"PartNumber": n, "ETag": pr["ETag"], "ChecksumSHA256": pr["ChecksumSHA256"]})
    done = s3.complete_multipart_upload(Bucket="b3-checksums", Key="mp", UploadId=up["UploadId"],
                                        MultipartUpload={"Parts": listed})
    composite = base64.b64encode(hashlib.sha256(b"".join(hashlib.sha256(p).digest() for p in parts)).digest()).decode()
    assert done["ChecksumSHA256"] == f"{composite}-2"
    h = s3.head_object(Bucket="b3-checksums", Key="mp", ChecksumMode="ENABLED")
    assert h["ChecksumSHA256"] == f"{composite}-2"
    # CRC32 full-object multipart: the CRC of the whole object, combined without reading.
    up = s3.create_multipart_upload(Bucket="b3-checksums", Key="full", ChecksumAlgorithm="CRC32",
                                    ChecksumType="FULL_OBJECT")
    listed = []
    for n, p in enumerate(parts, 1):
        pr = s3.upload_part(Bucket="b3-checksums", Key="full", UploadId=up["UploadId"], PartNumber=n, Body=p,
                            ChecksumAlgorithm="CRC32")
        listed.append({"PartNumber": n, "ETag": pr["ETag"], "ChecksumCRC32": pr["ChecksumCRC32"]})
    done = s3.complete_multipart_upload(Bucket="b3-checksums", Key="full", UploadId=up["UploadId"],
                                        MultipartUpload={"Parts": listed})
    assert done["ChecksumCRC32"] == local_checksum("CRC32", b"".join(parts))


def test_users_own_their_buckets():
    k = Keel("--user", "alice:alice-secret", "--user", "bob:bob-secret")
    try:
        def client(ak, sk):
            return boto3.client("s3", endpoint_url=k.endpoint, aws_access_key_id=ak, aws_secret_access_key=sk,
                                region_name="us-east-1", config=Config(retries={"max_attempts": 1}))
        alice, bob = client("alice", "alice-secret"), client("bob", "bob-secret")
        alice.create_bucket(Bucket="alices")
        alice.put_object(Bucket="alices", Key="doc", Body=b"private")
        assert [b["Name"] for b in bob.list_buckets()["Buckets"]] == []
        for call in (lambda: bob.get_object(Bucket="alices", Key="doc"),
                     lambda: bob.put_object(Bucket="alices", Key="x", Body=b"x"),
                     lambda: bob.list_objects_v2(Bucket="alices")):
            with pytest.raises(ClientError) as e:
                call()
            assert e.value.response["Error"]["Code"] == "AccessDenied"
        with pytest.raises(ClientError) as e:
            bob.create_bucket(Bucket="alices")
        assert e.value.response["Error"]["Code"] == "BucketAlreadyExists"
        assert http("GET", f"{k.endpoint}/alices/doc")[0] == 403
        # A public-read bucket: anyone may list it; its objects' own ACLs decide who reads them;
        # only the owner may write.
        alice.put_bucket_acl(Bucket="alices", ACL="public-read")
        assert http("GET", f"{k.endpoint}/alices?list-type=2")[0] == 200
        assert [o["Key"] for o in bob.list_objects_v2(Bucket="alices")["Contents"]] == ["doc"]
        assert http("GET", f"{k.endpoint}/alices/doc")[0] == 403
        with pytest.raises(ClientError) as e:
            bob.get_object(Bucket="alices", Key="doc")
        assert e.value.response["Error"]["Code"] == "AccessDenied"
        alice.put_object_acl(Bucket="alices", Key="doc", ACL="public-read")
        assert http("GET", f"{k.endpoint}/alices/doc")[:2] == (200, b"private")
        assert bob.get_object(Bucket="alices", Key="doc")["Body"].read() == b"private"
        alice.put_object(Bucket="alices", Key="members", Body=b"m", ACL="authenticated-read")
        assert http("GET", f"{k.endpoint}/alices/members")[0] == 403
        assert bob.get_object(Bucket="alices", Key="members")["Body"].read() == b"m"
        grants = alice.get_object_acl(Bucket="alices", Key="members")["Grants"]
        assert {(g["Grantee"].get("URI"), g["Permission"]) for g in grants} == {
            (None, "FULL_CONTROL"), ("http://acs.amazonaws.com/groups/global/AuthenticatedUsers", "READ")}
        with pytest.raises(ClientError) as e:
            bob.put_object(Bucket="alices", Key="x", Body=b"x")
        assert e.value.response["Error"]["Code"] == "AccessDenied"
        assert http("PUT", f"{k.endpoint}/alices/anon", data=b"x")[0] == 403
        grants = alice.get_bucket_acl(Bucket="alices")["Grants"]
        assert {g["Permission"] for g in grants} == {"FULL_CONTROL", "READ"}
    finally:
        k.stop()


def test_get_object_attributes(s3):
    s3.create_bucket(Bucket="b3-attrs")
    s3.put_object(Bucket="b3-attrs", Key="single", Body=b"attributes", ChecksumAlgorithm="SHA256")
    a = s3.get_object_attributes(Bucket="b3-attrs", Key="single",
                                 ObjectAttributes=["ETag", "Checksum", "ObjectSize", "StorageClass"])
    assert a["ETag"] == hashlib.md5(b"attributes").hexdigest()
    assert a["ObjectSize"] == 10 and a["StorageClass"] == "STANDARD"
    assert a["Checksum"]["ChecksumSHA256"] == local_checksum("SHA256", b"attributes")
    up = s3.create_multipart_upload(Bucket="b3-attrs", Key="mp")
    etags = []
    for n, size in ((1, 5 * 1024 * 1024), (2, 123)):
        etags.append({"PartNumber": n, "ETag": s3.upload_part(Bucket="b3-attrs", Key="mp", UploadId=up["UploadId"],
                                                             PartNumber=n, Body=b"x" * size)["ETag"]})
    s3.complete_multipart_upload(Bucket="b3-attrs", Key="mp", UploadId=up["UploadId"], MultipartUpload={"Parts": etags})
    a = s3.get_object_attributes(Bucket="b3-attrs", Key="mp", ObjectAttributes=["ObjectParts", "ObjectSize"])
    assert a["ObjectParts"]["TotalPartsCount"] == 2
    assert [p["Size"] for p in a["ObjectParts"]["Parts"]] == [5 * 1024 * 1024, 123]


def test_minio_sdk(keel, tmp_path):
    from minio import Minio
    m = Minio(keel.addr, access_key=AK, secret_key=SK, secure=False, region="us-east-1")
    m.make_bucket("minio-sdk")
    assert m.bucket_exists("minio-sdk")
    import io
    data = os.urandom(300_000)
    m.put_object("minio-sdk", "dir/obj", io.BytesIO(data), len(data), metadata={"x-amz-meta-k": "v"})
    assert m.get_object("minio-sdk", "dir/obj").read() == data
    assert m.get_object("minio-sdk", "dir/obj", offset=10, length=20).read() == data[10:30]
    assert [o.object_name for o in m.list_objects("minio-sdk", recursive=True)] == ["dir/obj"]
    st = m.stat_object("minio-sdk", "dir/obj")
    assert st.size == len(data) and st.metadata.get("x-amz-meta-k") == "v"
    # Streaming from an unknown-length source: multipart in 5 MiB parts.
    big = os.urandom(11 * 1024 * 1024)
    m.put_object("minio-sdk", "big", io.BytesIO(big), -1, part_size=5 * 1024 * 1024)
    assert m.get_object("minio-sdk", "big").read() == big
    f = tmp_path / "f"
    m.fget_object("minio-sdk", "big", str(f))
    assert f.read_bytes() == big
    url = m.presigned_get_object("minio-sdk", "dir/obj")
    assert http("GET", url)[1] == data
    m.remove_object("minio-sdk", "dir/obj")
    m.remove_object("minio-sdk", "big")
    m.remove_bucket("minio-sdk")
