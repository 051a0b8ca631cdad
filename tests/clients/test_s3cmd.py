"""s3cmd (signs every header, asks for ?location first, lists with v1)."""
import os

from conftest import AK, BIN_DIR, SK, run

S3CMD = str(BIN_DIR / "s3cmd")


def s3cmd(keel, tmp_path, *args, check=True):
    cfg = tmp_path / "s3cfg"
    cfg.write_text(
        "[default]\n"
        f"access_key = {AK}\nsecret_key = {SK}\n"
        f"host_base = {keel.addr}\nhost_bucket = {keel.addr}\n"
        "use_https = False\nsignature_v2 = False\nbucket_location = us-east-1\n"
    )
    return run([S3CMD, "-c", str(cfg), *args], check=check)


def test_s3cmd_basics(keel, tmp_path):
    f = tmp_path / "file.bin"
    data = os.urandom(300_000)
    f.write_bytes(data)
    s3cmd(keel, tmp_path, "mb", "s3://s3cmd-bucket")
    assert "s3cmd-bucket" in s3cmd(keel, tmp_path, "ls").stdout
    s3cmd(keel, tmp_path, "put", str(f), "s3://s3cmd-bucket/dir/file.bin")
    ls = s3cmd(keel, tmp_path, "ls", "s3://s3cmd-bucket/dir/").stdout
    assert "300000" in ls and "s3://s3cmd-bucket/dir/file.bin" in ls
    out = tmp_path / "out.bin"
    s3cmd(keel, tmp_path, "get", "s3://s3cmd-bucket/dir/file.bin", str(out))
    assert out.read_bytes() == data
    info = s3cmd(keel, tmp_path, "info", "s3://s3cmd-bucket/dir/file.bin").stdout
    import hashlib
    assert hashlib.md5(data).hexdigest() in info
    assert "s3cmd-bucket" in s3cmd(keel, tmp_path, "du", "s3://s3cmd-bucket").stdout
    s3cmd(keel, tmp_path, "del", "s3://s3cmd-bucket/dir/file.bin")
    s3cmd(keel, tmp_path, "rb", "s3://s3cmd-bucket")
    assert "s3cmd-bucket" not in s3cmd(keel, tmp_path, "ls").stdout
