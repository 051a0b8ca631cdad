"""boto3 at its defaults (flexible checksums and all) against keel."""
import datetime
import hashlib
import io
import os

import boto3
import botocore
import pytest
from botocore.exceptions import ClientError


def code(e):
    return e.value.response["Error"]["Code"]


def test_objects_round_trip(s3):
    s3.create_bucket(Bucket="b3-objects")
    keys = ["plain", "a/b/c.txt", "sp ace", "plus+sign", "ümlaut/ключ", "..", "a//b", "trailing/", "k" * 1024]
    for i, k in enumerate(keys):
        data = os.urandom(i * 3000)
        r = s3.put_object(Bucket="b3-objects", Key=k, Body=data, Metadata={"idx": str(i)})
        assert r["ETag"] == '"%s"' % hashlib.md5(data).hexdigest()
        g = s3.get_object(Bucket="b3-objects", Key=k)
        assert g["Body"].read() == data
        assert g["Metadata"] == {"idx": str(i)}
        assert g["ContentLength"] == len(data)
    listed = [o["Key"] for p in s3.get_paginator("list_objects_v2").paginate(Bucket="b3-objects", PaginationConfig={"PageSize": 2})
              for o in p.get("Contents", [])]
    assert sorted(listed) == sorted(keys)
    v1 = [o["Key"] for p in s3.get_paginator("list_objects").paginate(Bucket="b3-objects", PaginationConfig={"PageSize": 3})
          for o in p.get("Contents", [])]
    assert sorted(v1) == sorted(keys)


def test_ranges_and_conditionals(s3):
    s3.create_bucket(Bucket="b3-ranges")
    data = os.urandom(200_000)
    etag = s3.put_object(Bucket="b3-ranges", Key="k", Body=data)["ETag"]
    for rng, want in [("bytes=0-99", data[:100]), ("bytes=199990-", data[199990:]), ("bytes=-5", data[-5:]),
                      ("bytes=100-999999", data[100:])]:
        g = s3.get_object(Bucket="b3-ranges", Key="k", Range=rng)
        assert g["Body"].read() == want
        assert g["ContentRange"].startswith("bytes ")
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket="b3-ranges", Key="k", Range="bytes=200000-")
    assert code(e) == "InvalidRange"
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket="b3-ranges", Key="k", IfNoneMatch=etag)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 304
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket="b3-ranges", Key="k", IfMatch='"0000"')
    assert code(e) == "PreconditionFailed"
    future = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1)
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket="b3-ranges", Key="k", IfModifiedSince=future)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 304
    assert s3.get_object(Bucket="b3-ranges", Key="k", IfMatch=etag, Range="bytes=0-0")["Body"].read() == data[:1]
    s3.put_object(Bucket="b3-ranges", Key="once", Body=b"1", IfNoneMatch="*")
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket="b3-ranges", Key="once", Body=b"2", IfNoneMatch="*")
    assert code(e) == "PreconditionFailed"


def test_transfer_manager_single_part(s3):
    s3.create_bucket(Bucket="b3-transfer")
    data = os.urandom(5 * 1024 * 1024 + 17)
    s3.upload_fileobj(io.BytesIO(data), "b3-transfer", "blob")
    out = io.BytesIO()
    s3.download_fileobj("b3-transfer", "blob", out)
    assert out.getvalue() == data


def test_buckets_versioning_copy_delete(s3):
    s3.create_bucket(Bucket="b3-buckets", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    # Creating a bucket you own again succeeds on a us-east-1 server, as on AWS.
    s3.create_bucket(Bucket="b3-buckets")
    assert "b3-buckets" in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert s3.head_bucket(Bucket="b3-buckets")["BucketRegion"] == "eu-west-1"
    # GetBucketLocation answers the constraint given at creation.
    assert s3.get_bucket_location(Bucket="b3-buckets")["LocationConstraint"] == "eu-west-1"
    s3.create_bucket(Bucket="b3-nowhere")
    assert s3.get_bucket_location(Bucket="b3-nowhere")["LocationConstraint"] is None
    assert "Status" not in s3.get_bucket_versioning(Bucket="b3-buckets")
    cluster = os.environ.get("KEEL_CLUSTER") == "1"
    if cluster:
        # Versions are a single node's feature for now: refused, never half done (D46).
        with pytest.raises(ClientError) as e:
            s3.put_bucket_versioning(Bucket="b3-buckets", VersioningConfiguration={"Status": "Enabled"})
        assert code(e) == "NotImplemented"
    else:
        s3.put_bucket_versioning(Bucket="b3-buckets", VersioningConfiguration={"Status": "Enabled"})
        assert s3.get_bucket_versioning(Bucket="b3-buckets")["Status"] == "Enabled"
    s3.put_object(Bucket="b3-buckets", Key="src", Body=b"copy me", ContentType="text/plain", Metadata={"m": "1"})
    r = s3.copy_object(Bucket="b3-buckets", Key="dst", CopySource={"Bucket": "b3-buckets", "Key": "src"})
    assert r["CopyObjectResult"]["ETag"] == '"%s"' % hashlib.md5(b"copy me").hexdigest()
    h = s3.head_object(Bucket="b3-buckets", Key="dst")
    assert h["ContentType"] == "text/plain" and h["Metadata"] == {"m": "1"}
    s3.copy_object(Bucket="b3-buckets", Key="dst", CopySource="b3-buckets/src", MetadataDirective="REPLACE",
                   ContentType="application/x-new")
    assert s3.head_object(Bucket="b3-buckets", Key="dst")["ContentType"] == "application/x-new"
    if cluster:
        versions = s3.list_object_versions(Bucket="b3-buckets")["Versions"]
        assert [(v["Key"], v["IsLatest"]) for v in versions] == [("dst", True), ("src", True)]
        with pytest.raises(ClientError) as e:
            s3.delete_bucket(Bucket="b3-buckets")
        assert code(e) == "BucketNotEmpty"
        r = s3.delete_objects(Bucket="b3-buckets", Delete={"Objects": [{"Key": "src"}, {"Key": "dst"}, {"Key": "ghost"}]})
        assert {d["Key"] for d in r["Deleted"]} == {"src", "dst", "ghost"}
    else:
        # The bucket keeps versions: dst's copy over it left the first one behind.
        versions = s3.list_object_versions(Bucket="b3-buckets")["Versions"]
        assert [(v["Key"], v["IsLatest"]) for v in versions] == [("dst", True), ("dst", False), ("src", True)]
        with pytest.raises(ClientError) as e:
            s3.delete_bucket(Bucket="b3-buckets")
        assert code(e) == "BucketNotEmpty"
        # Deletes write markers; the bucket goes once every version and marker is deleted by id.
        r = s3.delete_objects(Bucket="b3-buckets", Delete={"Objects": [{"Key": "src"}, {"Key": "dst"}, {"Key": "ghost"}]})
        assert {d["Key"] for d in r["Deleted"]} == {"src", "dst", "ghost"} and all(d["DeleteMarker"] for d in r["Deleted"])
        every = s3.list_object_versions(Bucket="b3-buckets")
        gone = [{"Key": v["Key"], "VersionId": v["VersionId"]} for v in every["Versions"] + every["DeleteMarkers"]]
        assert len(gone) == 6
        s3.delete_objects(Bucket="b3-buckets", Delete={"Objects": gone})
    s3.delete_bucket(Bucket="b3-buckets")
    with pytest.raises(ClientError) as e:
        s3.head_bucket(Bucket="b3-buckets")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_delimiters_and_prefixes(s3):
    s3.create_bucket(Bucket="b3-list")
    for k in ["x/1", "x/2", "x/y/3", "z", "w-a-1", "w-a-2"]:
        s3.put_object(Bucket="b3-list", Key=k, Body=b"")
    r = s3.list_objects_v2(Bucket="b3-list", Delimiter="/")
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["x/"]
    assert [o["Key"] for o in r["Contents"]] == ["w-a-1", "w-a-2", "z"]
    r = s3.list_objects_v2(Bucket="b3-list", Prefix="x/", Delimiter="/")
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["x/y/"]
    r = s3.list_objects(Bucket="b3-list", Delimiter="-a-")
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["w-a-"]
    r = s3.list_objects_v2(Bucket="b3-list", StartAfter="x/2", FetchOwner=True)
    assert [o["Key"] for o in r["Contents"]] == ["x/y/3", "z"] and "Owner" in r["Contents"][0]


def test_wrong_secret_is_refused(keel):
    bad = boto3.client("s3", endpoint_url=keel.endpoint, aws_access_key_id="AKIDCLIENTTEST",
                       aws_secret_access_key="wrong", region_name="us-east-1",
                       config=botocore.config.Config(retries={"max_attempts": 1}))
    with pytest.raises(ClientError) as e:
        bad.list_buckets()
    assert code(e) == "SignatureDoesNotMatch"
