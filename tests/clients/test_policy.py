"""Bucket policies and the public access block through boto3 (issue 18 item 2; DESIGN D49):
alice shares parts of her bucket with bob and the public by policy, denies what she wants
denied (herself included), and the public access block overrides public grants. Runs on one
node and, with KEEL_CLUSTER=1, through a cluster's gateway (the policy lives in etcd)."""
import json

import boto3
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import Keel, http


@pytest.fixture(scope="module")
def users():
    k = Keel("--user", "alice:alice-secret", "--user", "bob:bob-secret")
    yield k
    k.stop()


def client(k, ak=None, sk=None):
    cfg = Config(retries={"max_attempts": 1}, signature_version=UNSIGNED) if ak is None else \
        Config(retries={"max_attempts": 1})
    return boto3.client("s3", endpoint_url=k.endpoint, aws_access_key_id=ak, aws_secret_access_key=sk,
                        region_name="us-east-1", config=cfg)


def code(e):
    return e.value.response["Error"]["Code"], e.value.response["ResponseMetadata"]["HTTPStatusCode"]


def policy(*statements):
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def test_sharing_by_policy(users):
    alice, bob, anon = client(users, "alice", "alice-secret"), client(users, "bob", "bob-secret"), client(users)
    alice.create_bucket(Bucket="pol-share")
    for key in ["public/a.txt", "team/b.txt", "private/c.txt"]:
        alice.put_object(Bucket="pol-share", Key=key, Body=key.encode())
    with pytest.raises(ClientError) as e:
        alice.get_bucket_policy(Bucket="pol-share")
    assert code(e) == ("NoSuchBucketPolicy", 404)
    doc = policy(
        {"Sid": "PublicRead", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
         "Resource": "arn:aws:s3:::pol-share/public/*"},
        {"Sid": "TeamList", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::bob:root"},
         "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::pol-share",
         "Condition": {"StringLike": {"s3:prefix": ["team/*", "public/*"]}}},
        {"Sid": "TeamRW", "Effect": "Allow", "Principal": {"AWS": ["bob"]},
         "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"], "Resource": "arn:aws:s3:::pol-share/team/*"},
        {"Sid": "KeepPublic", "Effect": "Deny", "Principal": "*", "Action": "s3:DeleteObject",
         "Resource": "arn:aws:s3:::pol-share/public/*"})
    alice.put_bucket_policy(Bucket="pol-share", Policy=doc)
    assert alice.get_bucket_policy(Bucket="pol-share")["Policy"] == doc
    assert alice.get_bucket_policy_status(Bucket="pol-share")["PolicyStatus"]["IsPublic"] is True
    # Anyone reads public/, nothing else.
    assert anon.get_object(Bucket="pol-share", Key="public/a.txt")["Body"].read() == b"public/a.txt"
    assert http("GET", f"{users.endpoint}/pol-share/public/a.txt")[0] == 200
    for call in (lambda: anon.get_object(Bucket="pol-share", Key="private/c.txt"),
                 lambda: anon.list_objects_v2(Bucket="pol-share")):
        with pytest.raises(ClientError) as e:
            call()
        assert code(e) == ("AccessDenied", 403)
    # bob lists team/ and public/, reads and writes team/.
    got = bob.list_objects_v2(Bucket="pol-share", Prefix="team/")
    assert [o["Key"] for o in got["Contents"]] == ["team/b.txt"]
    with pytest.raises(ClientError) as e:
        bob.list_objects_v2(Bucket="pol-share", Prefix="private/")
    assert code(e) == ("AccessDenied", 403)
    bob.put_object(Bucket="pol-share", Key="team/from-bob.txt", Body=b"hi alice")
    assert alice.get_object(Bucket="pol-share", Key="team/from-bob.txt")["Body"].read() == b"hi alice"
    with pytest.raises(ClientError) as e:
        bob.head_object(Bucket="pol-share", Key="team/none")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404, "bob may list team/: a missing key is 404"
    with pytest.raises(ClientError) as e:
        bob.put_object(Bucket="pol-share", Key="private/x", Body=b"x")
    assert code(e) == ("AccessDenied", 403)
    # DeleteObjects: each key decided on its own.
    out = bob.delete_objects(Bucket="pol-share", Delete={"Objects": [{"Key": "team/from-bob.txt"},
                                                                     {"Key": "private/c.txt"}]})
    assert [d["Key"] for d in out.get("Deleted", [])] == ["team/from-bob.txt"]
    assert [(x["Key"], x["Code"]) for x in out["Errors"]] == [("private/c.txt", "AccessDenied")]
    # The Deny binds alice too; the policy itself stays hers to change.
    with pytest.raises(ClientError) as e:
        alice.delete_object(Bucket="pol-share", Key="public/a.txt")
    assert code(e) == ("AccessDenied", 403)
    with pytest.raises(ClientError) as e:
        bob.get_bucket_policy(Bucket="pol-share")
    assert code(e) == ("AccessDenied", 403)
    alice.delete_bucket_policy(Bucket="pol-share")
    alice.delete_object(Bucket="pol-share", Key="public/a.txt")
    with pytest.raises(ClientError) as e:
        bob.get_object(Bucket="pol-share", Key="team/b.txt")
    assert code(e) == ("AccessDenied", 403)


def test_malformed_policies_say_why(users):
    alice = client(users, "alice", "alice-secret")
    alice.create_bucket(Bucket="pol-bad")
    for doc, why in [
        ("{", "JSON"),
        (policy({"Effect": "Allow", "Principal": "*", "Action": "s3:GetObjects",
                 "Resource": "arn:aws:s3:::pol-bad/*"}), "invalid action"),
        (policy({"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                 "Resource": "arn:aws:s3:::someone-else/*"}), "invalid resource"),
        (policy({"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::pol-bad/*",
                 "Condition": {"IpAddress": {"aws:SourceIp": "not-an-ip"}}}), "IP"),
    ]:
        with pytest.raises(ClientError) as e:
            alice.put_bucket_policy(Bucket="pol-bad", Policy=doc)
        assert code(e) == ("MalformedPolicy", 400), doc
        assert why in e.value.response["Error"]["Message"], e.value.response["Error"]["Message"]


def test_public_access_block(users):
    alice, anon = client(users, "alice", "alice-secret"), client(users)
    alice.create_bucket(Bucket="pol-block")
    alice.put_object(Bucket="pol-block", Key="k", Body=b"v")
    with pytest.raises(ClientError) as e:
        alice.get_public_access_block(Bucket="pol-block")
    assert code(e) == ("NoSuchPublicAccessBlockConfiguration", 404)
    public = policy({"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                     "Resource": "arn:aws:s3:::pol-block/*"})
    alice.put_bucket_policy(Bucket="pol-block", Policy=public)
    assert anon.get_object(Bucket="pol-block", Key="k")["Body"].read() == b"v"
    conf = {"BlockPublicAcls": True, "IgnorePublicAcls": False, "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True}
    alice.put_public_access_block(Bucket="pol-block", PublicAccessBlockConfiguration=conf)
    assert alice.get_public_access_block(Bucket="pol-block")["PublicAccessBlockConfiguration"] == conf
    with pytest.raises(ClientError) as e:
        anon.get_object(Bucket="pol-block", Key="k")
    assert code(e) == ("AccessDenied", 403)
    assert alice.get_object(Bucket="pol-block", Key="k")["Body"].read() == b"v"
    with pytest.raises(ClientError) as e:
        alice.put_bucket_policy(Bucket="pol-block", Policy=public)
    assert code(e) == ("AccessDenied", 403)
    with pytest.raises(ClientError) as e:
        alice.put_object(Bucket="pol-block", Key="open", Body=b"x", ACL="public-read")
    assert code(e) == ("AccessDenied", 403)
    alice.delete_public_access_block(Bucket="pol-block")
    assert anon.get_object(Bucket="pol-block", Key="k")["Body"].read() == b"v"


def raw_get(endpoint, path, source):
    """An unsigned GET sent from the loopback address `source`: the status."""
    import socket
    import urllib.parse
    u = urllib.parse.urlsplit(endpoint)
    with socket.create_connection((u.hostname, u.port), timeout=10, source_address=(source, 0)) as s:
        s.sendall(f"GET {u.path.rstrip('/')}{path} HTTP/1.1\r\nHost: {u.netloc}\r\nConnection: close\r\n\r\n".encode())
        head = s.recv(65536).split(b"\r\n", 1)[0]
    return int(head.split()[1])


def test_source_ip_conditions_see_the_client(users):
    """aws:SourceIp is the client's address, also when a cluster member forwarded the request
    to the key's owner (x-keel-client-ip, D49): two loopback addresses tell the cases apart."""
    alice = client(users, "alice", "alice-secret")
    alice.create_bucket(Bucket="pol-ip")
    keys = [f"k{i}" for i in range(8)]  # in a cluster, some of them live on other nodes
    for k in keys:
        alice.put_object(Bucket="pol-ip", Key=k, Body=b"x")
    alice.put_bucket_policy(Bucket="pol-ip", Policy=policy(
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::pol-ip/*",
         "Condition": {"IpAddress": {"aws:SourceIp": "127.0.0.2/32"}}}))
    for k in keys:
        assert raw_get(users.endpoint, f"/pol-ip/{k}", "127.0.0.2") == 200, k
        assert raw_get(users.endpoint, f"/pol-ip/{k}", "127.0.0.1") == 403, k
