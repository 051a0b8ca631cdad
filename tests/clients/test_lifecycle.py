"""Lifecycle configurations through boto3 (issue 17, item 4; DESIGN D48): what is put is what is
read back, S3's refusals, and NotImplemented for transitions. The worker that applies the rules
is tested over raw HTTP (`server/tests/integration/expiry.rs`)."""
import os

import pytest
from botocore.exceptions import ClientError

# A single node's feature: a cluster answers 501 (DESIGN D46-D48; test_cluster.py checks that).
pytestmark = pytest.mark.skipif(os.environ.get("KEEL_CLUSTER") == "1", reason="lifecycle rules are not kept in a cluster yet")


def code(e):
    return e.value.response["Error"]["Code"], e.value.response["ResponseMetadata"]["HTTPStatusCode"]


def test_configurations_round_trip(s3):
    b = "b3-lifecycle"
    s3.create_bucket(Bucket=b)
    with pytest.raises(ClientError) as e:
        s3.get_bucket_lifecycle_configuration(Bucket=b)
    assert code(e) == ("NoSuchLifecycleConfiguration", 404)
    assert s3.delete_bucket_lifecycle(Bucket=b)["ResponseMetadata"]["HTTPStatusCode"] == 204
    rules = [{"ID": "test1/", "Expiration": {"Days": 31}, "Prefix": "test1/", "Status": "Enabled"},
             {"ID": "test2/", "Expiration": {"Days": 120}, "Prefix": "test2/", "Status": "Disabled"}]
    s3.put_bucket_lifecycle_configuration(Bucket=b, LifecycleConfiguration={"Rules": rules})
    assert s3.get_bucket_lifecycle_configuration(Bucket=b)["Rules"] == rules
    filtered = [
        {"ID": "f", "Filter": {"And": {"Prefix": "p/", "Tags": [{"Key": "k", "Value": "v"}], "ObjectSizeGreaterThan": 5}},
         "Status": "Enabled", "NoncurrentVersionExpiration": {"NoncurrentDays": 2, "NewerNoncurrentVersions": 3}},
        {"ID": "m", "Filter": {}, "Status": "Enabled", "Expiration": {"ExpiredObjectDeleteMarker": True}},
        {"ID": "u", "Filter": {"Prefix": "up/"}, "Status": "Enabled", "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 2}},
    ]
    s3.put_bucket_lifecycle_configuration(Bucket=b, LifecycleConfiguration={"Rules": filtered})
    assert s3.get_bucket_lifecycle_configuration(Bucket=b)["Rules"] == filtered
    # A rule without an ID gets one.
    s3.put_bucket_lifecycle_configuration(Bucket=b, LifecycleConfiguration={"Rules": [
        {"Expiration": {"Days": 1}, "Prefix": "x/", "Status": "Enabled"}]})
    assert "ID" in s3.get_bucket_lifecycle_configuration(Bucket=b)["Rules"][0]
    s3.put_bucket_lifecycle_configuration(Bucket=b, LifecycleConfiguration={"Rules": [
        {"ID": "d", "Expiration": {"Date": "2017-09-27"}, "Prefix": "d/", "Status": "Enabled"}]})
    assert s3.delete_bucket_lifecycle(Bucket=b)["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as e:
        s3.get_bucket_lifecycle_configuration(Bucket=b)
    assert code(e) == ("NoSuchLifecycleConfiguration", 404)


def test_refusals(s3):
    b = "b3-lifecycle-bad"
    s3.create_bucket(Bucket=b)
    cases = [
        ([{"ID": "a" * 256, "Expiration": {"Days": 2}, "Prefix": "p", "Status": "Enabled"}], ("InvalidArgument", 400)),
        ([{"ID": "r", "Expiration": {"Days": 1}, "Prefix": "a", "Status": "Enabled"},
          {"ID": "r", "Expiration": {"Days": 2}, "Prefix": "b", "Status": "Enabled"}], ("InvalidArgument", 400)),
        ([{"ID": "r", "Expiration": {"Days": 2}, "Prefix": "p", "Status": "enabled"}], ("MalformedXML", 400)),
        ([{"ID": "r", "Expiration": {"Days": 0}, "Prefix": "p", "Status": "Enabled"}], ("InvalidArgument", 400)),
        ([{"ID": "r", "Transitions": [{"Days": 1, "StorageClass": "GLACIER"}], "Prefix": "p", "Status": "Enabled"}],
         ("NotImplemented", 501)),
    ]
    for rules, want in cases:
        with pytest.raises(ClientError) as e:
            s3.put_bucket_lifecycle_configuration(Bucket=b, LifecycleConfiguration={"Rules": rules})
        assert code(e) == want, rules
    with pytest.raises(ClientError) as e:
        s3.get_bucket_lifecycle_configuration(Bucket=b)
    assert code(e) == ("NoSuchLifecycleConfiguration", 404)
