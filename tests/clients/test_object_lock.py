"""Object lock through boto3 (issue 17, item 2; DESIGN D47): buckets created with lock keep
versioning on, retention and legal holds protect versions in the engine, GOVERNANCE yields to
x-amz-bypass-governance-retention and COMPLIANCE to nobody."""
import datetime

import os

import pytest
from botocore.exceptions import ClientError

# A single node's feature: a cluster answers 501 (DESIGN D46-D48; test_cluster.py checks that).
pytestmark = pytest.mark.skipif(os.environ.get("KEEL_CLUSTER") == "1", reason="object lock is not kept in a cluster yet")


def code(e):
    return e.value.response["Error"]["Code"], e.value.response["ResponseMetadata"]["HTTPStatusCode"]


def later(days=365):
    return (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=days)).replace(microsecond=0)


def test_configuration_and_bucket_state(s3):
    b = "b3-lock-conf"
    s3.create_bucket(Bucket=b, ObjectLockEnabledForBucket=True)
    assert s3.get_bucket_versioning(Bucket=b)["Status"] == "Enabled"
    conf = {"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}}}
    s3.put_object_lock_configuration(Bucket=b, ObjectLockConfiguration=conf)
    assert s3.get_object_lock_configuration(Bucket=b)["ObjectLockConfiguration"] == conf
    for bad, want in [({"Mode": "GOVERNANCE", "Days": 1, "Years": 1}, "MalformedXML"),
                      ({"Mode": "GOVERNANCE", "Days": 0}, "InvalidRetentionPeriod"),
                      ({"Mode": "governance", "Years": 1}, "MalformedXML")]:
        with pytest.raises(ClientError) as e:
            s3.put_object_lock_configuration(
                Bucket=b, ObjectLockConfiguration={"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": bad}})
        assert code(e) == (want, 400), bad
    with pytest.raises(ClientError) as e:
        s3.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Suspended"})
    assert code(e) == ("InvalidBucketState", 409)
    # The default retention applies to a version written without its own.
    v = s3.put_object(Bucket=b, Key="k", Body=b"x")["VersionId"]
    r = s3.get_object_retention(Bucket=b, Key="k")["Retention"]
    assert r["Mode"] == "GOVERNANCE" and r["RetainUntilDate"] > later(0)
    s3.delete_object(Bucket=b, Key="k", VersionId=v, BypassGovernanceRetention=True)
    plain = "b3-lock-plain"
    s3.create_bucket(Bucket=plain)
    with pytest.raises(ClientError) as e:
        s3.put_object_lock_configuration(Bucket=plain, ObjectLockConfiguration=conf)
    assert code(e) == ("InvalidBucketState", 409)
    # A versioned bucket may turn it on, for good.
    later_on = "b3-lock-later"
    s3.create_bucket(Bucket=later_on)
    s3.put_bucket_versioning(Bucket=later_on, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object_lock_configuration(Bucket=later_on, ObjectLockConfiguration=conf)
    assert s3.get_object_lock_configuration(Bucket=later_on)["ObjectLockConfiguration"] == conf
    with pytest.raises(ClientError) as e:
        s3.put_bucket_versioning(Bucket=later_on, VersioningConfiguration={"Status": "Suspended"})
    assert code(e) == ("InvalidBucketState", 409)
    with pytest.raises(ClientError) as e:
        s3.get_object_lock_configuration(Bucket=plain)
    assert code(e) == ("ObjectLockConfigurationNotFoundError", 404)
    s3.put_object(Bucket=plain, Key="k", Body=b"x")
    with pytest.raises(ClientError) as e:
        s3.put_object_retention(Bucket=plain, Key="k", Retention={"Mode": "GOVERNANCE", "RetainUntilDate": later()})
    assert code(e) == ("InvalidRequest", 400)


def test_retention_and_legal_hold_protect_versions(s3):
    b = "b3-lock-objects"
    s3.create_bucket(Bucket=b, ObjectLockEnabledForBucket=True)
    until = later()
    v = s3.put_object(Bucket=b, Key="k", Body=b"abc", ObjectLockMode="GOVERNANCE", ObjectLockRetainUntilDate=until,
                      ObjectLockLegalHoldStatus="ON")["VersionId"]
    h = s3.head_object(Bucket=b, Key="k")
    assert (h["ObjectLockMode"], h["ObjectLockRetainUntilDate"], h["ObjectLockLegalHoldStatus"]) == ("GOVERNANCE", until, "ON")
    # A legal hold stops even a bypass.
    with pytest.raises(ClientError) as e:
        s3.delete_object(Bucket=b, Key="k", VersionId=v, BypassGovernanceRetention=True)
    assert code(e) == ("AccessDenied", 403)
    s3.put_object_legal_hold(Bucket=b, Key="k", LegalHold={"Status": "OFF"})
    assert s3.get_object_legal_hold(Bucket=b, Key="k")["LegalHold"] == {"Status": "OFF"}
    # GOVERNANCE: no delete, no shortening, no switch to COMPLIANCE without the bypass.
    with pytest.raises(ClientError) as e:
        s3.delete_object(Bucket=b, Key="k", VersionId=v)
    assert code(e) == ("AccessDenied", 403)
    for r in [{"Mode": "GOVERNANCE", "RetainUntilDate": later(10)}, {"Mode": "COMPLIANCE", "RetainUntilDate": until}]:
        with pytest.raises(ClientError) as e:
            s3.put_object_retention(Bucket=b, Key="k", Retention=r)
        assert code(e) == ("AccessDenied", 403)
    s3.put_object_retention(Bucket=b, Key="k", Retention={"Mode": "GOVERNANCE", "RetainUntilDate": later(400)})
    s3.put_object_retention(Bucket=b, Key="k", Retention={"Mode": "GOVERNANCE", "RetainUntilDate": later(10)},
                            BypassGovernanceRetention=True)
    # A delete without a version only writes a marker: allowed.
    marker = s3.delete_object(Bucket=b, Key="k")
    assert marker["DeleteMarker"] is True
    # DeleteObjects: the locked version is refused (with its id), others go.
    v2 = s3.put_object(Bucket=b, Key="free", Body=b"x")["VersionId"]
    r = s3.delete_objects(Bucket=b, Delete={"Objects": [{"Key": "k", "VersionId": v}, {"Key": "free", "VersionId": v2}]})
    assert [(d["Key"], d["VersionId"]) for d in r["Deleted"]] == [("free", v2)]
    assert [(x["Key"], x["VersionId"], x["Code"]) for x in r["Errors"]] == [("k", v, "AccessDenied")]
    r = s3.delete_objects(Bucket=b, Delete={"Objects": [{"Key": "k", "VersionId": v}]}, BypassGovernanceRetention=True)
    assert [(d["Key"], d["VersionId"]) for d in r["Deleted"]] == [("k", v)]
    # COMPLIANCE: nobody shortens it or deletes the version, bypass or not; it may grow.
    c = s3.put_object(Bucket=b, Key="c", Body=b"x", ObjectLockMode="COMPLIANCE",
                      ObjectLockRetainUntilDate=later(1))["VersionId"]
    with pytest.raises(ClientError) as e:
        s3.delete_object(Bucket=b, Key="c", VersionId=c, BypassGovernanceRetention=True)
    assert code(e) == ("AccessDenied", 403)
    with pytest.raises(ClientError) as e:
        s3.put_object_retention(Bucket=b, Key="c", VersionId=c, BypassGovernanceRetention=True,
                                Retention={"Mode": "GOVERNANCE", "RetainUntilDate": later(1)})
    assert code(e) == ("AccessDenied", 403)
    s3.put_object_retention(Bucket=b, Key="c", VersionId=c, Retention={"Mode": "COMPLIANCE", "RetainUntilDate": later(2)})
    assert s3.get_object_retention(Bucket=b, Key="c", VersionId=c)["Retention"]["Mode"] == "COMPLIANCE"
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=b, Key="p", Body=b"x", ObjectLockMode="GOVERNANCE",
                      ObjectLockRetainUntilDate=datetime.datetime(2001, 1, 1, tzinfo=datetime.timezone.utc))
    assert code(e) == ("InvalidArgument", 400)


def test_multipart_uploads_take_their_lock(s3):
    b = "b3-lock-mpu"
    s3.create_bucket(Bucket=b, ObjectLockEnabledForBucket=True)
    up = s3.create_multipart_upload(Bucket=b, Key="m", ObjectLockLegalHoldStatus="ON")
    part = s3.upload_part(Bucket=b, Key="m", UploadId=up["UploadId"], PartNumber=1, Body=b"abc")
    done = s3.complete_multipart_upload(Bucket=b, Key="m", UploadId=up["UploadId"],
                                        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})
    with pytest.raises(ClientError) as e:
        s3.delete_object(Bucket=b, Key="m", VersionId=done["VersionId"])
    assert code(e) == ("AccessDenied", 403)
    s3.put_object_legal_hold(Bucket=b, Key="m", LegalHold={"Status": "OFF"})
    s3.delete_object(Bucket=b, Key="m", VersionId=done["VersionId"])
