"""Versioning through boto3 at its defaults (issue 17, item 1; DESIGN D46)."""
import os

import pytest
from botocore.exceptions import ClientError

# A single node's feature: a cluster answers 501 (DESIGN D46-D48; test_cluster.py checks that).
pytestmark = pytest.mark.skipif(os.environ.get("KEEL_CLUSTER") == "1", reason="versions are not kept in a cluster yet")


def code(e):
    return e.value.response["Error"]["Code"]


def enable(s3, bucket, status="Enabled"):
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"MFADelete": "Disabled", "Status": status})


def test_versions_markers_and_restores(s3):
    b = "b3-versions"
    s3.create_bucket(Bucket=b)
    enable(s3, b)
    ids = [s3.put_object(Bucket=b, Key="k", Body=f"content-{i}".encode())["VersionId"] for i in range(5)]
    assert len(set(ids)) == 5
    for i, v in enumerate(ids):
        assert s3.get_object(Bucket=b, Key="k", VersionId=v)["Body"].read() == f"content-{i}".encode()
    listed = s3.list_object_versions(Bucket=b)["Versions"]
    assert [v["VersionId"] for v in listed] == ids[::-1]
    assert [v["IsLatest"] for v in listed] == [True, False, False, False, False]
    # A delete hides the key behind a marker; GET says so.
    d = s3.delete_object(Bucket=b, Key="k")
    assert d["DeleteMarker"] is True
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=b, Key="k")
    assert code(e) == "NoSuchKey"
    assert e.value.response["ResponseMetadata"]["HTTPHeaders"]["x-amz-delete-marker"] == "true"
    markers = s3.list_object_versions(Bucket=b)["DeleteMarkers"]
    assert [(m["VersionId"], m["IsLatest"]) for m in markers] == [(d["VersionId"], True)]
    # Restore an older version by copying it onto the key.
    r = s3.copy_object(Bucket=b, Key="k", CopySource={"Bucket": b, "Key": "k", "VersionId": ids[1]})
    assert r["CopySourceVersionId"] == ids[1]
    assert s3.get_object(Bucket=b, Key="k")["Body"].read() == b"content-1"
    # Remove everything by version: the bucket can then go.
    every = s3.list_object_versions(Bucket=b)
    objects = [{"Key": v["Key"], "VersionId": v["VersionId"]} for v in every["Versions"] + every["DeleteMarkers"]]
    r = s3.delete_objects(Bucket=b, Delete={"Objects": objects})
    assert len(r["Deleted"]) == len(objects) == 7
    assert "Versions" not in s3.list_object_versions(Bucket=b)
    s3.delete_bucket(Bucket=b)


def test_suspended_and_null_versions(s3):
    b = "b3-versions-null"
    s3.create_bucket(Bucket=b)
    s3.put_object(Bucket=b, Key="k", Body=b"before")
    enable(s3, b)
    v1 = s3.put_object(Bucket=b, Key="k", Body=b"v1")["VersionId"]
    assert s3.get_object(Bucket=b, Key="k", VersionId="null")["Body"].read() == b"before"
    enable(s3, b, "Suspended")
    assert s3.put_object(Bucket=b, Key="k", Body=b"s1").get("VersionId") is None
    assert s3.head_object(Bucket=b, Key="k")["VersionId"] == "null"
    listed = s3.list_object_versions(Bucket=b)["Versions"]
    # The null version written while suspended replaced the one from before versioning.
    assert [(v["VersionId"], v["Size"]) for v in listed] == [("null", 2), (v1, 2)]
    s3.delete_object(Bucket=b, Key="k", VersionId="null")
    assert s3.get_object(Bucket=b, Key="k")["Body"].read() == b"v1"
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=b, Key="k", VersionId="0" * 32)
    assert code(e) == "NoSuchVersion"


def test_paging_a_key_with_many_versions(s3):
    b = "b3-versions-pages"
    s3.create_bucket(Bucket=b)
    enable(s3, b)
    ids = [s3.put_object(Bucket=b, Key="many", Body=b"x")["VersionId"] for _ in range(25)]
    pages = s3.get_paginator("list_object_versions").paginate(Bucket=b, PaginationConfig={"PageSize": 7})
    seen = [v["VersionId"] for p in pages for v in p.get("Versions", [])]
    assert seen == ids[::-1]
