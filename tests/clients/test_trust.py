"""Trust, with real clients: headers a signature does not cover are refused (SigV4 headers and
presigned URLs; SigV2 signs every x-amz-* header), presigned URLs' x-amz-* query parameters act
as headers, botocore's SigV2 and Date forms authenticate, and S3 behaviours Ceph's s3-tests
check (DeleteBucket with uploads, repeated completion, ListBuckets paging, part checksums)."""
import base64
import hashlib
import os
import subprocess
import sys
import textwrap
import zlib

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import AK, SK, http


def client(keel, **config):
    return boto3.client("s3", endpoint_url=keel.endpoint, aws_access_key_id=AK, aws_secret_access_key=SK,
                        region_name="us-east-1", config=Config(retries={"max_attempts": 1}, **config))


def add_after_signing(c, name, value):
    """Adds a header to every request after botocore signed it (as a replay would)."""
    def hook(request, **_):
        request.headers[name] = value
    c.meta.events.register("before-send.s3.*", hook)


def code(e):
    return e.value.response["Error"]["Code"]


def test_unsigned_headers_are_refused(keel):
    s3 = client(keel)
    s3.create_bucket(Bucket="tr-secret")
    s3.put_object(Bucket="tr-secret", Key="key", Body=b"private bytes")
    s3.create_bucket(Bucket="tr-public", ACL="public-read")
    for name, value in [("x-amz-copy-source", "/tr-secret/key"), ("x-amz-acl", "public-read"),
                        ("x-amz-meta-note", "added"), ("x-amz-server-side-encryption", "AES256")]:
        # SigV4 in the header: refused with S3's error.
        v4 = client(keel, signature_version="s3v4")
        add_after_signing(v4, name, value)
        with pytest.raises(ClientError) as e:
            v4.put_object(Bucket="tr-public", Key="copy", Body=b"x")
        assert code(e) == "AccessDenied", name
        assert "not signed" in e.value.response["Error"]["Message"]
        # SigV2 signs every x-amz-* header: the signature no longer matches.
        v2 = client(keel, signature_version="s3")
        add_after_signing(v2, name, value)
        with pytest.raises(ClientError) as e:
            v2.put_object(Bucket="tr-public", Key="copy", Body=b"x")
        assert code(e) == "SignatureDoesNotMatch", name
        # Presigned URLs, SigV4 and SigV2.
        for sv in ("s3v4", "s3"):
            url = client(keel, signature_version=sv).generate_presigned_url(
                "put_object", Params={"Bucket": "tr-public", "Key": "copy"}, ExpiresIn=300)
            status, body, _ = http("PUT", url, data=b"", headers={name: value})
            assert status == 403, (sv, name, body)
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket="tr-public", Key="copy")
    assert e.value.response["Error"]["Code"] == "404", "nothing was copied or written"


def test_presigned_query_headers_act_as_headers(keel):
    s3 = client(keel)
    s3.create_bucket(Bucket="tr-query")
    # SigV2 presigned URLs carry x-amz-* headers in the query: they are signed and applied.
    url = client(keel, signature_version="s3").generate_presigned_url(
        "put_object", Params={"Bucket": "tr-query", "Key": "open", "ACL": "public-read"}, ExpiresIn=300)
    assert "x-amz-acl=public-read" in url
    status, body, _ = http("PUT", url, data=b"published")
    assert status == 200, body
    assert http("GET", f"{keel.endpoint}/tr-query/open")[:2] == (200, b"published")
    # A feature keel lacks, asked for the same way, is refused rather than dropped.
    url = client(keel, signature_version="s3").generate_presigned_url(
        "put_object", Params={"Bucket": "tr-query", "Key": "enc", "ServerSideEncryption": "AES256"}, ExpiresIn=300)
    status, body, _ = http("PUT", url, data=b"x")
    assert status == 501, body


def test_botocore_sigv2_on_buckets(keel):
    v2 = client(keel, signature_version="s3")
    v2.create_bucket(Bucket="tr-v2")
    v2.put_object(Bucket="tr-v2", Key="a b", Body=b"v2")
    assert [o["Key"] for o in v2.list_objects(Bucket="tr-v2")["Contents"]] == ["a b"]
    assert v2.get_bucket_acl(Bucket="tr-v2")["Grants"]
    assert v2.get_bucket_location(Bucket="tr-v2")["LocationConstraint"] is None
    v2.delete_object(Bucket="tr-v2", Key="a b")
    v2.delete_bucket(Bucket="tr-v2")


def test_sigv4_with_a_date_header_and_no_x_amz_date(keel):
    """Pure-Python botocore (no awscrt) turns a Date header into `... -0000` and drops
    X-Amz-Date; with awscrt both are sent, Date possibly empty. Both authenticate."""
    script = textwrap.dedent(f"""
        import boto3, email.utils
        from botocore.config import Config
        c = boto3.client("s3", endpoint_url={keel.endpoint!r}, aws_access_key_id={AK!r},
                         aws_secret_access_key={SK!r}, region_name="us-east-1",
                         config=Config(signature_version="s3v4"))
        c.create_bucket(Bucket="tr-dates")
        sent = []
        def add(params, **_):
            params["headers"]["Date"] = email.utils.formatdate(usegmt=True)
        def seen(request, **_):
            sent.append((request.headers.get("Date"), request.headers.get("X-Amz-Date")))
        c.meta.events.register("before-call.s3.PutObject", add)
        c.meta.events.register("before-send.s3.PutObject", seen)
        c.put_object(Bucket="tr-dates", Key="k", Body=b"dated")
        print(sent)
    """)
    for crt in ("true", "false"):
        env = dict(os.environ, BOTO_DISABLE_CRT=crt, AWS_CONFIG_FILE="/dev/null",
                   AWS_SHARED_CREDENTIALS_FILE="/dev/null")
        p = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        if crt == "true":
            assert "-0000" in p.stdout and "None)" in p.stdout, p.stdout


def test_delete_bucket_takes_its_uploads(keel):
    s3 = client(keel)
    s3.create_bucket(Bucket="tr-uploads")
    uid = s3.create_multipart_upload(Bucket="tr-uploads", Key="k")["UploadId"]
    s3.upload_part(Bucket="tr-uploads", Key="k", UploadId=uid, PartNumber=1, Body=b"x" * 1000)
    s3.delete_bucket(Bucket="tr-uploads")
    with pytest.raises(ClientError):
        s3.head_bucket(Bucket="tr-uploads")


def test_repeated_completion_and_composite_checksums(keel):
    s3 = client(keel)
    s3.create_bucket(Bucket="tr-mpu")
    uid = s3.create_multipart_upload(Bucket="tr-mpu", Key="k", ChecksumAlgorithm="SHA256")["UploadId"]
    data = [os.urandom(5 << 20), b"tail bytes"]
    parts = []
    for n, d in enumerate(data, 1):
        r = s3.upload_part(Bucket="tr-mpu", Key="k", UploadId=uid, PartNumber=n, Body=d, ChecksumAlgorithm="SHA256")
        parts.append({"PartNumber": n, "ETag": r["ETag"], "ChecksumSHA256": r["ChecksumSHA256"]})
    composite = hashlib.sha256(b"".join(hashlib.sha256(d).digest() for d in data)).digest()
    whole = base64.b64encode(composite).decode() + "-2"
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(Bucket="tr-mpu", Key="k", UploadId=uid, MultipartUpload={"Parts": parts},
                                     ChecksumSHA256="bad")
    assert code(e) == "BadDigest"
    first = s3.complete_multipart_upload(Bucket="tr-mpu", Key="k", UploadId=uid, MultipartUpload={"Parts": parts},
                                         ChecksumSHA256=whole)
    again = s3.complete_multipart_upload(Bucket="tr-mpu", Key="k", UploadId=uid, MultipartUpload={"Parts": parts},
                                         ChecksumSHA256=whole)
    assert first["ETag"] == again["ETag"] and first["ChecksumSHA256"] == again["ChecksumSHA256"] == whole
    for n, d in enumerate(data, 1):
        r = s3.get_object(Bucket="tr-mpu", Key="k", PartNumber=n, ChecksumMode="ENABLED")
        assert r["Body"].read() == d
        assert r["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(d).digest()).decode()
        assert r["ChecksumType"] == "COMPOSITE"
    attrs = s3.get_object_attributes(Bucket="tr-mpu", Key="k", ObjectAttributes=["ObjectParts", "Checksum"])
    assert [p["ChecksumSHA256"] for p in attrs["ObjectParts"]["Parts"]] == [p["ChecksumSHA256"] for p in parts]


def test_list_buckets_in_pages(keel):
    s3 = client(keel)
    names = [f"tr-page-{i}" for i in range(5)]
    for n in names:
        s3.create_bucket(Bucket=n)
    seen, token = [], None
    while True:
        kw = {"MaxBuckets": 2, "Prefix": "tr-page-"}
        if token:
            kw["ContinuationToken"] = token
        r = s3.list_buckets(**kw)
        seen += [b["Name"] for b in r["Buckets"]]
        token = r.get("ContinuationToken")
        if not token:
            break
    assert seen == names


def test_crc32_part_checksums_match_what_clients_compute(keel):
    s3 = client(keel)
    s3.create_bucket(Bucket="tr-crc")
    uid = s3.create_multipart_upload(Bucket="tr-crc", Key="k", ChecksumAlgorithm="CRC32",
                                     ChecksumType="FULL_OBJECT")["UploadId"]
    data = [os.urandom(5 << 20), b"end"]
    parts = []
    for n, d in enumerate(data, 1):
        r = s3.upload_part(Bucket="tr-crc", Key="k", UploadId=uid, PartNumber=n, Body=d, ChecksumAlgorithm="CRC32")
        parts.append({"PartNumber": n, "ETag": r["ETag"], "ChecksumCRC32": r["ChecksumCRC32"]})
    whole = base64.b64encode(zlib.crc32(b"".join(data)).to_bytes(4, "big")).decode()
    r = s3.complete_multipart_upload(Bucket="tr-crc", Key="k", UploadId=uid, MultipartUpload={"Parts": parts},
                                     ChecksumCRC32=whole, ChecksumType="FULL_OBJECT")
    assert r["ChecksumCRC32"] == whole
    # Each part answers with its own checksum, which botocore checks against the bytes it gets.
    for n, d in enumerate(data, 1):
        got = s3.get_object(Bucket="tr-crc", Key="k", PartNumber=n, ChecksumMode="ENABLED")
        assert got["Body"].read() == d and got["ChecksumType"] == "FULL_OBJECT"


@pytest.mark.parametrize("date,expected", [
    ("Tue, 07 Jul 2010 21:53:04 GMT", "RequestTimeTooSkewed"),  # a Wednesday: still a date
    ("Tue, 07 Jul 2030 21:53:04 GMT", "RequestTimeTooSkewed"),
    ("Tue, 07 Jul 1950 21:53:04 GMT", "AccessDenied"),
    ("Bad Date", "AccessDenied"),
])
def test_sigv2_dates_as_s3_judges_them(keel, date, expected):
    """s3-tests' aws2 date cases: x-amz-date decides the request time; a wrong weekday does not
    make a date invalid (the skew does), dates before 1970 and garbage do."""
    v2 = client(keel, signature_version="s3")
    v2.create_bucket(Bucket="tr-v2dates")

    def add(params, **_):
        params["headers"]["x-amz-date"] = date
    v2.meta.events.register("before-call.s3.PutObject", add)
    with pytest.raises(ClientError) as e:
        v2.put_object(Bucket="tr-v2dates", Key="k", Body=b"x")
    assert code(e) == expected
