"""Fixtures: the real keel binary on 127.0.0.1 with two temporary mountpaths.

KEEL_BIN points at the binary (default: target/debug/keel under the repository root).
"""
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
AK = "AKIDCLIENTTEST"
SK = "client/secret+key"
BIN_DIR = pathlib.Path(sys.executable).parent


def keel_bin():
    return os.environ.get("KEEL_BIN", str(ROOT / "target" / "debug" / "keel"))


class Keel:
    def __init__(self, *extra):
        self.dir = tempfile.mkdtemp(prefix="keel-clients-")
        self.mountpaths = [os.path.join(self.dir, "mp1"), os.path.join(self.dir, "mp2")]
        args = [keel_bin(), "serve", "--listen", "127.0.0.1:0", "--threads", "2",
                "--access-key", AK, "--secret-key", SK]
        for m in self.mountpaths:
            args += ["--mountpath", m]
        args += list(extra)
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        assert "listening on http://" in line, line
        self.endpoint = line.split("listening on ")[1].split(" ")[0]
        self.addr = self.endpoint.split("//")[1].split("/")[0]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            assert self.proc.wait(timeout=30) == 0
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def keel():
    k = Keel()
    yield k
    k.stop()


@pytest.fixture(scope="module")
def keel_s3_prefix():
    """AIStore-style endpoint: the API under /s3, parts of any size (the seed document uploads a
    10 KiB and a 1 KiB part)."""
    k = Keel("--s3-prefix", "/s3", "--min-part-size", "0")
    yield k
    k.stop()


def client_env():
    env = dict(os.environ)
    env.update({
        "AWS_ACCESS_KEY_ID": AK,
        "AWS_SECRET_ACCESS_KEY": SK,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        "PATH": f"{BIN_DIR}:{env.get('PATH', '')}",
    })
    return env


def run(cmd, check=True, **kw):
    """Runs a client command; returns CompletedProcess with text output."""
    p = subprocess.run(cmd, env=client_env(), capture_output=True, text=True, timeout=300, **kw)
    if check and p.returncode != 0:
        raise AssertionError(f"{cmd} failed ({p.returncode}):\nstdout: {p.stdout}\nstderr: {p.stderr}")
    return p


@pytest.fixture
def s3(keel):
    import boto3
    return boto3.client("s3", endpoint_url=keel.endpoint, aws_access_key_id=AK,
                        aws_secret_access_key=SK, region_name="us-east-1")


def http(method, url, data=None, headers=None):
    """One plain HTTP request (presigned URLs, anonymous access): (status, body, headers)."""
    headers = dict(headers or {})
    # urllib would add a form Content-Type to bodies; presigned PUTs signed none.
    if data is not None:
        headers.setdefault("Content-Type", "")
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read(), dict(e.headers)
