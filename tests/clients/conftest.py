"""Fixtures: the real keel binary on 127.0.0.1 with two temporary mountpaths.

KEEL_BIN points at the binary (default: target/debug/keel under the repository root).
KEEL_CLUSTER=1 runs every `Keel` as a cluster instead (issue 14): three etcd members for the
session, and per `Keel` three data nodes plus a gateway (a member that holds no object), each
with two mountpaths; the tests talk to the gateway, so every key is forwarded to its owner.
"""
import atexit
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
AK = "AKIDCLIENTTEST"
SK = "client/secret+key"
BIN_DIR = pathlib.Path(sys.executable).parent


def keel_bin():
    return os.environ.get("KEEL_BIN", str(ROOT / "target" / "debug" / "keel"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Etcd:
    """Three etcd members on loopback ports, in a temporary directory."""

    def __init__(self, members=3):
        self.dir = tempfile.mkdtemp(prefix="keel-etcd-")
        names = [f"e{i}" for i in range(members)]
        self.peer = {n: free_port() for n in names}
        self.client = {n: free_port() for n in names}
        initial = ",".join(f"{n}=http://127.0.0.1:{self.peer[n]}" for n in names)
        self.procs = {}
        for n in names:
            self.procs[n] = subprocess.Popen(
                ["etcd", "--name", n, "--data-dir", os.path.join(self.dir, n),
                 "--listen-client-urls", f"http://127.0.0.1:{self.client[n]}",
                 "--advertise-client-urls", f"http://127.0.0.1:{self.client[n]}",
                 "--listen-peer-urls", f"http://127.0.0.1:{self.peer[n]}",
                 "--initial-advertise-peer-urls", f"http://127.0.0.1:{self.peer[n]}",
                 "--initial-cluster", initial, "--initial-cluster-state", "new",
                 "--heartbeat-interval", "50", "--election-timeout", "500"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.endpoints = ",".join(f"http://127.0.0.1:{self.client[n]}" for n in names)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.client[names[0]]}/health", timeout=2) as r:
                    if b'"true"' in r.read():
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError("etcd did not become healthy")

    def stop(self):
        for p in self.procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


_ETCD = []


def etcd():
    """The session's etcd members (started on first use, stopped at exit)."""
    if not _ETCD:
        _ETCD.append(Etcd())
        atexit.register(_ETCD[0].stop)
    return _ETCD[0]


class Node:
    """One keel process of a cluster."""

    def __init__(self, base, node_id, cluster, name, extra, gateway=False, port=None):
        self.dir = os.path.join(base, node_id)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.node_id = node_id
        args = [keel_bin(), "serve", "--listen", f"127.0.0.1:{self.port}", "--threads", "2",
                "--access-key", AK, "--secret-key", SK,
                "--mountpath", os.path.join(self.dir, "mp1"), "--mountpath", os.path.join(self.dir, "mp2"),
                "--cluster", cluster, "--cluster-name", name, "--node-id", node_id,
                "--advertise", self.url, *extra]
        if gateway:
            args.append("--gateway")
        # The log goes to a file: a pipe nobody reads would stall the node once full.
        self.log = os.path.join(base, f"{node_id}.log")
        with open(self.log, "a") as log:
            self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=log, text=True)

    def stderr(self):
        with open(self.log) as f:
            return f.read()

    def wait_listening(self):
        line = self.proc.stdout.readline()
        if "listening on http://" not in line:
            raise AssertionError(f"{self.node_id} did not start: {line}{self.stderr()}")

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=30)


class Keel:
    def __init__(self, *extra):
        if os.environ.get("KEEL_CLUSTER"):
            self._start_cluster(extra)
            return
        self.dir = tempfile.mkdtemp(prefix="keel-clients-")
        self.mountpaths = [os.path.join(self.dir, "mp1"), os.path.join(self.dir, "mp2")]
        args = [keel_bin(), "serve", "--listen", "127.0.0.1:0", "--threads", "2",
                "--access-key", AK, "--secret-key", SK]
        for m in self.mountpaths:
            args += ["--mountpath", m]
        args += list(extra)
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        assert "listening on http://" in line or "listening on https://" in line, line
        self.endpoint = line.split("listening on ")[1].split(" ")[0]
        self.addr = self.endpoint.split("//")[1].split("/")[0]

    def _start_cluster(self, extra):
        self.dir = tempfile.mkdtemp(prefix="keel-cluster-")
        self.cluster_name = "t" + os.urandom(6).hex()
        self.etcd = etcd()
        self.nodes = [Node(self.dir, f"n{i}", self.etcd.endpoints, self.cluster_name, extra) for i in range(3)]
        self.nodes.append(Node(self.dir, "gw", self.etcd.endpoints, self.cluster_name, extra, gateway=True))
        for n in self.nodes:
            n.wait_listening()
        gw = self.nodes[-1]
        prefix = ""
        for i, a in enumerate(extra):
            if a == "--s3-prefix":
                prefix = extra[i + 1]
        self.endpoint = gw.url + prefix
        self.addr = f"127.0.0.1:{gw.port}"
        self.mountpaths = [os.path.join(gw.dir, "mp1"), os.path.join(gw.dir, "mp2")]
        self.proc = gw.proc

    def stop(self):
        for n in getattr(self, "nodes", []):
            n.stop()
            assert n.proc.returncode == 0, f"{n.node_id} exited {n.proc.returncode}"
        if not hasattr(self, "nodes") and self.proc.poll() is None:
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
