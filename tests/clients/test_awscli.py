"""The aws CLI, as AIStore's S3 document walks through it, against keel under /s3."""
import hashlib
import json
import os

from conftest import BIN_DIR, run

AWS = str(BIN_DIR / "aws")


def aws(endpoint, *args, check=True):
    return run([AWS, "--endpoint-url", endpoint, *args], check=check)


def test_seed_walkthrough(keel_s3_prefix, tmp_path):
    ep = keel_s3_prefix.endpoint
    assert ep.endswith("/s3")
    readme = tmp_path / "README.md"
    readme.write_bytes(os.urandom(17242))
    lic = tmp_path / "LICENSE"
    lic.write_bytes(os.urandom(1075))

    assert "make_bucket: abc" in aws(ep, "s3", "mb", "s3://abc").stdout
    aws(ep, "s3api", "put-object", "--bucket", "abc", "--key", "LICENSE", "--body", str(lic))
    aws(ep, "s3api", "put-object", "--bucket", "abc", "--key", "README.md", "--body", str(readme))

    out = tmp_path / "readme"
    got = json.loads(aws(ep, "s3api", "get-object", "--bucket", "abc", "--key", "README.md", str(out)).stdout)
    assert got["ContentLength"] == 17242
    assert out.read_bytes() == readme.read_bytes()

    part = tmp_path / "README-partial.md"
    got = json.loads(aws(ep, "s3api", "get-object", "--bucket", "abc", "--key", "README.md",
                         "--range", "bytes=0-99", str(part)).stdout)
    assert got["ContentLength"] == 100
    assert got["ContentRange"] == "bytes 0-99/17242"
    assert got["AcceptRanges"] == "bytes"
    assert part.read_bytes() == readme.read_bytes()[:100]

    head = json.loads(aws(ep, "s3api", "head-object", "--bucket", "abc", "--key", "LICENSE").stdout)
    assert head["ContentLength"] == 1075
    assert head["ETag"] == '"%s"' % hashlib.md5(lic.read_bytes()).hexdigest()

    ls = aws(ep, "s3", "ls", "s3://abc").stdout
    assert "LICENSE" in ls and "README.md" in ls and "17242" in ls
    assert "abc" in aws(ep, "s3", "ls").stdout

    # Multipart, as the document walks through it: two small parts, list-parts, complete with
    # the parts JSON copied from list-parts (without sizes), then read back.
    upload_id = json.loads(aws(ep, "s3api", "create-multipart-upload", "--bucket", "abc", "--key", "large-test-file").stdout)["UploadId"]
    e1 = json.loads(aws(ep, "s3api", "upload-part", "--bucket", "abc", "--key", "large-test-file", "--part-number", "1",
                        "--body", str(readme), "--upload-id", upload_id).stdout)["ETag"]
    e2 = json.loads(aws(ep, "s3api", "upload-part", "--bucket", "abc", "--key", "large-test-file", "--part-number", "2",
                        "--body", str(lic), "--upload-id", upload_id).stdout)["ETag"]
    listed = json.loads(aws(ep, "s3api", "list-parts", "--bucket", "abc", "--key", "large-test-file",
                            "--upload-id", upload_id).stdout)
    assert [(p["PartNumber"], p["ETag"], p["Size"]) for p in listed["Parts"]] == [(1, e1, 17242), (2, e2, 1075)]
    up = tmp_path / "up.json"
    up.write_text(json.dumps({"Parts": [{"PartNumber": p["PartNumber"], "ETag": p["ETag"]} for p in listed["Parts"]]}))
    done = json.loads(aws(ep, "s3api", "complete-multipart-upload", "--bucket", "abc", "--key", "large-test-file",
                          "--multipart-upload", f"file://{up}", "--upload-id", upload_id).stdout)
    assert done["Key"] == "large-test-file" and done["Bucket"] == "abc"
    md5s = hashlib.md5(hashlib.md5(readme.read_bytes()).digest() + hashlib.md5(lic.read_bytes()).digest()).hexdigest()
    assert done["ETag"] == f'"{md5s}-2"'
    whole = tmp_path / "whole"
    aws(ep, "s3api", "get-object", "--bucket", "abc", "--key", "large-test-file", str(whole))
    assert whole.read_bytes() == readme.read_bytes() + lic.read_bytes()
    assert str(17242 + 1075) in aws(ep, "s3", "ls", "s3://abc").stdout

    # rb refuses a non-empty bucket, then works after removing the objects.
    assert aws(ep, "s3", "rb", "s3://abc", check=False).returncode != 0
    aws(ep, "s3", "rm", "s3://abc", "--recursive")
    assert "remove_bucket: abc" in aws(ep, "s3", "rb", "s3://abc").stdout


def test_cp_sync_and_presence(keel, tmp_path):
    ep = keel.endpoint
    aws(ep, "s3", "mb", "s3://cli-bucket")
    src = tmp_path / "src"
    src.mkdir()
    for i in range(5):
        (src / f"f{i}.bin").write_bytes(os.urandom(1000 * (i + 1)))
    (src / "sub").mkdir()
    (src / "sub" / "deep.txt").write_text("deep")
    aws(ep, "s3", "cp", str(src / "f0.bin"), "s3://cli-bucket/one/f0.bin")
    aws(ep, "s3", "sync", str(src), "s3://cli-bucket/tree")
    ls = aws(ep, "s3", "ls", "s3://cli-bucket/tree/").stdout
    assert "PRE sub/" in ls and "f4.bin" in ls
    dst = tmp_path / "dst"
    aws(ep, "s3", "sync", "s3://cli-bucket/tree", str(dst))
    for p in src.rglob("*"):
        if p.is_file():
            assert (dst / p.relative_to(src)).read_bytes() == p.read_bytes()
    # A second sync copies nothing.
    assert aws(ep, "s3", "sync", str(src), "s3://cli-bucket/tree").stdout.strip() == ""
    listing = json.loads(aws(ep, "s3api", "list-objects-v2", "--bucket", "cli-bucket", "--prefix", "tree/",
                             "--max-items", "3").stdout)
    assert len(listing["Contents"]) == 3
    aws(ep, "s3", "rm", "s3://cli-bucket", "--recursive")
    aws(ep, "s3", "rb", "s3://cli-bucket")


def test_cp_40mib_multipart(keel, tmp_path):
    ep = keel.endpoint
    aws(ep, "s3", "mb", "s3://cli-large")
    big = tmp_path / "big"
    big.write_bytes(os.urandom(40 * 1024 * 1024))
    aws(ep, "s3", "cp", "--only-show-errors", str(big), "s3://cli-large/big")
    head = json.loads(aws(ep, "s3api", "head-object", "--bucket", "cli-large", "--key", "big").stdout)
    assert head["ContentLength"] == 40 * 1024 * 1024
    assert head["ETag"].endswith('-5"')  # 8 MiB parts
    back = tmp_path / "back"
    aws(ep, "s3", "cp", "--only-show-errors", "s3://cli-large/big", str(back))
    assert back.read_bytes() == big.read_bytes()
    part = json.loads(aws(ep, "s3api", "head-object", "--bucket", "cli-large", "--key", "big", "--part-number", "5").stdout)
    assert part["PartsCount"] == 5 and part["ContentLength"] == 8 * 1024 * 1024
    assert part["ContentRange"] == f"bytes {32 * 1024 * 1024}-{40 * 1024 * 1024 - 1}/{40 * 1024 * 1024}"


def test_errors_reach_the_cli(keel, tmp_path):
    ep = keel.endpoint
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    p = aws(ep, "s3api", "head-bucket", "--bucket", "no-such-bucket-here", check=False)
    assert p.returncode != 0 and "404" in p.stderr
    aws(ep, "s3", "mb", "s3://cli-errs")
    # Creating a bucket you own again succeeds in us-east-1, as on AWS.
    aws(ep, "s3", "mb", "s3://cli-errs")
    aws(ep, "s3api", "put-object", "--bucket", "cli-errs", "--key", "full", "--body", str(empty))
    p = aws(ep, "s3api", "delete-bucket", "--bucket", "cli-errs", check=False)
    assert "BucketNotEmpty" in p.stderr
    aws(ep, "s3api", "delete-object", "--bucket", "cli-errs", "--key", "full")
    p = aws(ep, "s3api", "get-object", "--bucket", "cli-errs", "--key", "nope", "/dev/null", check=False)
    assert "NoSuchKey" in p.stderr
