"""Object and bucket tagging through boto3 at its defaults (issue 17, item 3)."""
import pytest
from botocore.exceptions import ClientError


def code(e):
    return e.value.response["Error"]["Code"]


def tagset(n):
    return [{"Key": str(i), "Value": str(i)} for i in range(n)]


def test_object_tagging_round_trip(s3):
    b = "b3-tags"
    s3.create_bucket(Bucket=b)
    s3.put_object(Bucket=b, Key="k", Body=b"data", Tagging="team=ml&stage=raw data")
    # In key order, as S3 answers.
    assert s3.get_object_tagging(Bucket=b, Key="k")["TagSet"] == [
        {"Key": "stage", "Value": "raw data"}, {"Key": "team", "Value": "ml"}]
    head = s3.head_object(Bucket=b, Key="k")
    assert head["ResponseMetadata"]["HTTPHeaders"]["x-amz-tagging-count"] == "2"
    assert s3.get_object(Bucket=b, Key="k")["TagCount"] == 2
    # Replacing keeps the object and its ETag.
    s3.put_object_tagging(Bucket=b, Key="k", Tagging={"TagSet": tagset(10)})
    assert s3.get_object_tagging(Bucket=b, Key="k")["TagSet"] == tagset(10)
    assert s3.head_object(Bucket=b, Key="k")["ETag"] == head["ETag"]
    with pytest.raises(ClientError) as e:
        s3.put_object_tagging(Bucket=b, Key="k", Tagging={"TagSet": tagset(11)})
    assert code(e) == "InvalidTag"
    with pytest.raises(ClientError) as e:
        s3.put_object_tagging(Bucket=b, Key="k", Tagging={"TagSet": [{"Key": "k" * 129, "Value": "v"}]})
    assert code(e) == "InvalidTag"
    assert s3.get_object_tagging(Bucket=b, Key="k")["TagSet"] == tagset(10)
    r = s3.delete_object_tagging(Bucket=b, Key="k")
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert s3.get_object_tagging(Bucket=b, Key="k")["TagSet"] == []
    with pytest.raises(ClientError) as e:
        s3.get_object_tagging(Bucket=b, Key="missing")
    assert code(e) == "NoSuchKey"


def test_copy_and_multipart_tagging(s3):
    b = "b3-tags-copy"
    s3.create_bucket(Bucket=b)
    s3.put_object(Bucket=b, Key="src", Body=b"x", Tagging="a=1")
    s3.copy_object(Bucket=b, Key="same", CopySource={"Bucket": b, "Key": "src"})
    assert s3.get_object_tagging(Bucket=b, Key="same")["TagSet"] == [{"Key": "a", "Value": "1"}]
    s3.copy_object(Bucket=b, Key="new", CopySource={"Bucket": b, "Key": "src"}, TaggingDirective="REPLACE",
                   Tagging="b=2")
    assert s3.get_object_tagging(Bucket=b, Key="new")["TagSet"] == [{"Key": "b", "Value": "2"}]
    up = s3.create_multipart_upload(Bucket=b, Key="mp", Tagging="Hello=World&foo=bar")
    part = s3.upload_part(Bucket=b, Key="mp", UploadId=up["UploadId"], PartNumber=1, Body=b"p" * 10)
    s3.complete_multipart_upload(Bucket=b, Key="mp", UploadId=up["UploadId"],
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})
    assert s3.get_object_tagging(Bucket=b, Key="mp")["TagSet"] == [
        {"Key": "Hello", "Value": "World"}, {"Key": "foo", "Value": "bar"}]


def test_bucket_tagging(s3):
    b = "b3-bucket-tags"
    s3.create_bucket(Bucket=b)
    with pytest.raises(ClientError) as e:
        s3.get_bucket_tagging(Bucket=b)
    assert code(e) == "NoSuchTagSet"
    s3.put_bucket_tagging(Bucket=b, Tagging={"TagSet": [{"Key": "Hello", "Value": "World"}]})
    assert s3.get_bucket_tagging(Bucket=b)["TagSet"] == [{"Key": "Hello", "Value": "World"}]
    r = s3.delete_bucket_tagging(Bucket=b)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as e:
        s3.get_bucket_tagging(Bucket=b)
    assert code(e) == "NoSuchTagSet"
