"""s3fs/fsspec reading and writing (runs in .venv-fsspec; skipped where s3fs is not installed)."""
import os

import pytest

s3fs = pytest.importorskip("s3fs")

from conftest import AK, SK  # noqa: E402


def test_s3fs_read_write(keel):
    fs = s3fs.S3FileSystem(key=AK, secret=SK, client_kwargs={"endpoint_url": keel.endpoint, "region_name": "us-east-1"})
    fs.mkdir("fsspec-bucket")
    fs.pipe("fsspec-bucket/small.txt", b"hello fsspec")
    assert fs.cat("fsspec-bucket/small.txt") == b"hello fsspec"
    big = os.urandom(12 * 1024 * 1024 + 3)
    with fs.open("fsspec-bucket/dir/big.bin", "wb", block_size=5 * 1024 * 1024) as f:
        for i in range(0, len(big), 1024 * 1024):
            f.write(big[i:i + 1024 * 1024])
    assert fs.size("fsspec-bucket/dir/big.bin") == len(big)
    with fs.open("fsspec-bucket/dir/big.bin", "rb", block_size=1024 * 1024) as f:
        f.seek(5 * 1024 * 1024 - 10)
        assert f.read(20) == big[5 * 1024 * 1024 - 10:5 * 1024 * 1024 + 10]
        f.seek(-7, 2)
        assert f.read() == big[-7:]
    assert sorted(fs.ls("fsspec-bucket", detail=False)) == ["fsspec-bucket/dir", "fsspec-bucket/small.txt"]
    assert fs.find("fsspec-bucket") == ["fsspec-bucket/dir/big.bin", "fsspec-bucket/small.txt"]
    fs.rm("fsspec-bucket", recursive=True)
    assert not fs.exists("fsspec-bucket/small.txt")
