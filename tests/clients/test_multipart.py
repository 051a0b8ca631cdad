"""Multipart uploads with boto3 (transfer manager and the raw API) and s3cmd."""
import concurrent.futures
import hashlib
import os

import pytest
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

from conftest import AK, BIN_DIR, SK, run

MiB = 1024 * 1024


def code(e):
    return e.value.response["Error"]["Code"]


def test_boto3_upload_file_8_concurrent_8mib_parts(s3, tmp_path):
    s3.create_bucket(Bucket="mpu-boto3")
    src = tmp_path / "src"
    data = os.urandom(8 * 8 * MiB + 12345)
    src.write_bytes(data)
    cfg = TransferConfig(multipart_threshold=8 * MiB, multipart_chunksize=8 * MiB, max_concurrency=8)
    s3.upload_file(str(src), "mpu-boto3", "shard.tar", Config=cfg)
    head = s3.head_object(Bucket="mpu-boto3", Key="shard.tar")
    assert head["ContentLength"] == len(data)
    assert head["ETag"].endswith('-9"')
    dst = tmp_path / "dst"
    s3.download_file("mpu-boto3", "shard.tar", str(dst), Config=cfg)
    assert dst.read_bytes() == data
    assert s3.list_multipart_uploads(Bucket="mpu-boto3").get("Uploads", []) == []


def test_raw_api_rules(s3):
    s3.create_bucket(Bucket="mpu-rules")
    up = s3.create_multipart_upload(Bucket="mpu-rules", Key="k", ContentType="text/x-test", Metadata={"a": "b"})
    uid = up["UploadId"]
    parts = [os.urandom(5 * MiB), os.urandom(5 * MiB), os.urandom(1234)]
    etags = {}

    def put(n):
        etags[n] = s3.upload_part(Bucket="mpu-rules", Key="k", UploadId=uid, PartNumber=n, Body=parts[n - 1])["ETag"]

    # Out of order and concurrently.
    with concurrent.futures.ThreadPoolExecutor(3) as ex:
        list(ex.map(put, [3, 1, 2]))
    listed = s3.list_parts(Bucket="mpu-rules", Key="k", UploadId=uid)
    assert [p["PartNumber"] for p in listed["Parts"]] == [1, 2, 3]
    page = s3.list_parts(Bucket="mpu-rules", Key="k", UploadId=uid, MaxParts=2)
    assert page["IsTruncated"] and page["NextPartNumberMarker"] == 2
    page = s3.list_parts(Bucket="mpu-rules", Key="k", UploadId=uid, PartNumberMarker=2)
    assert [p["PartNumber"] for p in page["Parts"]] == [3]
    uploads = s3.list_multipart_uploads(Bucket="mpu-rules")["Uploads"]
    assert [(u["Key"], u["UploadId"]) for u in uploads] == [("k", uid)]

    def complete(part_list):
        return s3.complete_multipart_upload(Bucket="mpu-rules", Key="k", UploadId=uid,
                                            MultipartUpload={"Parts": part_list})

    with pytest.raises(ClientError) as e:
        complete([{"PartNumber": 1, "ETag": '"0123"'}])
    assert code(e) == "InvalidPart"
    with pytest.raises(ClientError) as e:
        complete([{"PartNumber": 2, "ETag": etags[2]}, {"PartNumber": 1, "ETag": etags[1]}])
    assert code(e) == "InvalidPartOrder"
    with pytest.raises(ClientError) as e:
        complete([{"PartNumber": 1, "ETag": etags[1]}, {"PartNumber": 7, "ETag": etags[1]}])
    assert code(e) == "InvalidPart"
    small = s3.create_multipart_upload(Bucket="mpu-rules", Key="small")["UploadId"]
    e1 = s3.upload_part(Bucket="mpu-rules", Key="small", UploadId=small, PartNumber=1, Body=b"tiny")["ETag"]
    e2 = s3.upload_part(Bucket="mpu-rules", Key="small", UploadId=small, PartNumber=2, Body=b"tiny")["ETag"]
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(Bucket="mpu-rules", Key="small", UploadId=small, MultipartUpload={
            "Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]})
    assert code(e) == "EntityTooSmall"
    s3.abort_multipart_upload(Bucket="mpu-rules", Key="small", UploadId=small)
    with pytest.raises(ClientError) as e:
        s3.upload_part(Bucket="mpu-rules", Key="small", UploadId=small, PartNumber=3, Body=b"late")
    assert code(e) == "NoSuchUpload"
    with pytest.raises(ClientError) as e:
        s3.list_parts(Bucket="mpu-rules", Key="k", UploadId="0" * 28)
    assert code(e) == "NoSuchUpload"

    # Unquoted ETags are accepted too.
    done = complete([{"PartNumber": n, "ETag": etags[n].strip('"')} for n in (1, 2, 3)])
    md5s = b"".join(hashlib.md5(p).digest() for p in parts)
    assert done["ETag"] == '"%s-3"' % hashlib.md5(md5s).hexdigest()
    whole = b"".join(parts)
    g = s3.get_object(Bucket="mpu-rules", Key="k")
    assert g["Body"].read() == whole
    assert g["ContentType"] == "text/x-test" and g["Metadata"] == {"a": "b"}
    # Ranges across part boundaries and the last byte; GET by part number.
    for start, end in [(5 * MiB - 10, 5 * MiB + 10), (0, 10 * MiB + 1233), (10 * MiB + 1233, 10 * MiB + 1233)]:
        r = s3.get_object(Bucket="mpu-rules", Key="k", Range=f"bytes={start}-{end}")
        assert r["Body"].read() == whole[start:end + 1]
    assert s3.get_object(Bucket="mpu-rules", Key="k", Range="bytes=-7")["Body"].read() == whole[-7:]
    p2 = s3.get_object(Bucket="mpu-rules", Key="k", PartNumber=2)
    assert p2["Body"].read() == parts[1] and p2["PartsCount"] == 3
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket="mpu-rules", Key="k", PartNumber=4)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 416
    with pytest.raises(ClientError) as e:
        s3.abort_multipart_upload(Bucket="mpu-rules", Key="k", UploadId=uid)
    assert code(e) == "NoSuchUpload"


def test_upload_part_copy_with_ranges(s3):
    s3.create_bucket(Bucket="mpu-copy")
    src = os.urandom(12 * MiB)
    s3.put_object(Bucket="mpu-copy", Key="src", Body=src)
    uid = s3.create_multipart_upload(Bucket="mpu-copy", Key="dst")["UploadId"]
    r1 = s3.upload_part_copy(Bucket="mpu-copy", Key="dst", UploadId=uid, PartNumber=1,
                             CopySource={"Bucket": "mpu-copy", "Key": "src"}, CopySourceRange=f"bytes=0-{6 * MiB - 1}")
    r2 = s3.upload_part_copy(Bucket="mpu-copy", Key="dst", UploadId=uid, PartNumber=2,
                             CopySource="mpu-copy/src", CopySourceRange=f"bytes={6 * MiB}-{12 * MiB - 1}")
    with pytest.raises(ClientError) as e:
        s3.upload_part_copy(Bucket="mpu-copy", Key="dst", UploadId=uid, PartNumber=3,
                            CopySource="mpu-copy/src", CopySourceRange=f"bytes=0-{12 * MiB}")
    assert code(e) == "InvalidRange"
    s3.complete_multipart_upload(Bucket="mpu-copy", Key="dst", UploadId=uid, MultipartUpload={"Parts": [
        {"PartNumber": 1, "ETag": r1["CopyPartResult"]["ETag"]},
        {"PartNumber": 2, "ETag": r2["CopyPartResult"]["ETag"]}]})
    assert s3.get_object(Bucket="mpu-copy", Key="dst")["Body"].read() == src


def test_s3cmd_multipart(keel, s3, tmp_path):
    cfg = tmp_path / "s3cfg"
    cfg.write_text(
        "[default]\n"
        f"access_key = {AK}\nsecret_key = {SK}\n"
        f"host_base = {keel.addr}\nhost_bucket = {keel.addr}\n"
        "use_https = False\nsignature_v2 = False\nbucket_location = us-east-1\n"
    )
    s3cmd = [str(BIN_DIR / "s3cmd"), "-c", str(cfg)]
    f = tmp_path / "file"
    data = os.urandom(12 * MiB + 7)
    f.write_bytes(data)
    run(s3cmd + ["mb", "s3://mpu-s3cmd"])
    run(s3cmd + ["put", "--multipart-chunk-size-mb=5", str(f), "s3://mpu-s3cmd/file"])
    assert s3.head_object(Bucket="mpu-s3cmd", Key="file")["ETag"].endswith('-3"')
    back = tmp_path / "back"
    run(s3cmd + ["get", "s3://mpu-s3cmd/file", str(back)])
    assert back.read_bytes() == data
