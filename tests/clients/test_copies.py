"""Copies on distinct mountpaths (issue 15): one keel node with several mountpaths and
`--copies 2` (or the bucket prop `copies=2`) keeps every object on two drives, reads around a
failed drive or a bad copy, and makes lost copies again. Real processes, real directories: a
mountpath "fails" by having its directory removed under the running keel (the prober poisons
it), and bit rot is a byte flipped in a data file."""
import concurrent.futures
import glob
import hashlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.request

import boto3
import botocore
import pytest

from conftest import AK, SK, free_port, keel_bin

pytestmark = pytest.mark.skipif(bool(os.environ.get("KEEL_CLUSTER")), reason="single-node copies")


class Node:
    """A keel with `n` mountpaths under one temporary directory."""

    def __init__(self, n, *extra, base=None, mountpaths=None):
        self.dir = base or tempfile.mkdtemp(prefix="keel-copies-")
        self.mountpaths = mountpaths or [os.path.join(self.dir, f"mp{i}") for i in range(n)]
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        args = [keel_bin(), "serve", "--listen", f"127.0.0.1:{self.port}", "--threads", "2",
                "--access-key", AK, "--secret-key", SK, *extra]
        for m in self.mountpaths:
            args += ["--mountpath", m]
        self.log = open(os.path.join(self.dir, f"keel-{self.port}.log"), "w")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self.log, text=True)
        line = self.proc.stdout.readline()
        if "listening on http://" not in line:
            self.proc.wait(timeout=30)
            raise AssertionError(f"keel did not start: {line}{open(self.log.name).read()}")

    def s3(self, retries=0):
        cfg = botocore.config.Config(s3={"addressing_style": "path"}, retries={"max_attempts": retries + 1,
                                                                               "mode": "standard"})
        return boto3.client("s3", endpoint_url=self.url, aws_access_key_id=AK, aws_secret_access_key=SK,
                            region_name="us-east-1", config=cfg)

    def metrics(self):
        text = urllib.request.urlopen(self.url + "/metrics", timeout=10).read().decode()
        out = {}
        for line in text.splitlines():
            m = re.match(r'^(keel_[a-z_]+)(\{mountpath="([^"]*)"\})? (-?\d+)$', line)
            if m:
                out[(m.group(1), m.group(3))] = int(m.group(4))
        return out

    def wait(self, what, pred, timeout=90):
        deadline = time.time() + timeout
        while time.time() < deadline:
            m = self.metrics()
            if pred(m):
                return m
            time.sleep(0.3)
        raise AssertionError(f"{what}: not within {timeout} s; metrics {self.metrics()}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            assert self.proc.wait(timeout=30) == 0
        self.log.close()

    def keel(self, *args, mountpaths=None, check=True):
        cmd = [keel_bin(), *args]
        for m in mountpaths or self.mountpaths:
            cmd += ["--mountpath", m]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if check:
            assert p.returncode == 0, p.stdout + p.stderr
        return p


def body(key, size):
    seed = hashlib.sha256(key.encode()).digest()
    return (seed * (size // len(seed) + 1))[:size]


def data_files(mountpath):
    return [f for f in glob.glob(os.path.join(mountpath, "objects", "*", "*")) if os.path.isfile(f)]


def remove_drive(path):
    """rm -rf of a drive's directory while the node writes into it: a file made meanwhile fails
    a pass (directory not empty), so passes repeat until the directory is gone."""
    for _ in range(50):
        shutil.rmtree(path, ignore_errors=True)
        if not os.path.exists(path):
            return
        time.sleep(0.1)
    raise AssertionError(f"{path} could not be removed")


def test_a_drive_removed_under_four_writers_loses_no_acknowledged_object():
    node = Node(3, "--copies", "2", "--repair-interval", "2")
    try:
        s3 = node.s3(retries=0)
        s3.create_bucket(Bucket="copies")
        acked, lock, stop = {}, threading.Lock(), threading.Event()
        sizes = [100, 9000, 70_000, 1_200_000]

        def writer(w):
            c = node.s3(retries=0)
            i = 0
            # Bounded whatever happens to the main thread (it sets `stop` after 5 s).
            deadline = time.time() + 60
            while not stop.is_set() and time.time() < deadline:
                key = f"w{w}/{i:05d}"
                data = body(key, sizes[i % len(sizes)])
                try:
                    if w == 0 and i % 10 == 9:
                        # A multipart upload now and then (two parts, copied before the answer).
                        up = c.create_multipart_upload(Bucket="copies", Key=key)["UploadId"]
                        data = body(key, 6 << 20)
                        parts = []
                        for n, chunk in enumerate([data[:5 << 20], data[5 << 20:]], 1):
                            e = c.upload_part(Bucket="copies", Key=key, UploadId=up, PartNumber=n, Body=chunk)
                            parts.append({"PartNumber": n, "ETag": e["ETag"]})
                        c.complete_multipart_upload(Bucket="copies", Key=key, UploadId=up,
                                                    MultipartUpload={"Parts": parts})
                    else:
                        c.put_object(Bucket="copies", Key=key, Body=data)
                    with lock:
                        acked[key] = hashlib.md5(data).hexdigest()
                except (botocore.exceptions.ClientError, botocore.exceptions.ConnectionError):
                    pass  # not acknowledged: may or may not have landed
                i += 1

        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            futures = [pool.submit(writer, w) for w in range(4)]
            try:
                time.sleep(2)
                gone = node.mountpaths[1]
                remove_drive(gone)
                time.sleep(3)
            finally:
                # Else a failure above would leave the writers filling the disk while the
                # pool waits for them.
                stop.set()
            for f in futures:
                f.result()
        assert len(acked) > 40, len(acked)
        # The drive is poisoned, and the repair brings every object back to two copies: a whole
        # pass begun after the writers stopped finds nothing short.
        node.wait("the removed drive poisoned", lambda m: m.get(("keel_mountpath_poisoned", gone)) == 1)
        passes = node.metrics()[("keel_repair_passes_total", None)]
        m = node.wait("nothing under-replicated after the repair",
                      lambda m: m[("keel_under_replicated_objects", None)] == 0
                      and m[("keel_repair_passes_total", None)] >= passes + 2)
        assert m[("keel_repaired_objects_total", None)] > 0

        def check_all():
            c = node.s3(retries=0)
            for key, md5 in acked.items():
                got = c.get_object(Bucket="copies", Key=key)["Body"].read()
                assert hashlib.md5(got).hexdigest() == md5, key
            listed = set()
            for page in c.get_paginator("list_objects_v2").paginate(Bucket="copies"):
                listed |= {o["Key"] for o in page.get("Contents", [])}
            assert set(acked) <= listed

        check_all()
        # A second drive gone: every object still has a copy on the third.
        second = node.mountpaths[2]
        shutil.rmtree(second)
        node.wait("the second drive poisoned", lambda m: m.get(("keel_mountpath_poisoned", second)) == 1)
        check_all()
        # One drive cannot hold two copies: a write is refused, not half done.
        with pytest.raises(botocore.exceptions.ClientError) as e:
            s3.put_object(Bucket="copies", Key="one-drive-left", Body=b"x")
        assert e.value.response["Error"]["Code"] == "ServiceUnavailable"
        node.stop()
        # The operator detaches the two dead drives: the node restarts on the survivor, whole.
        survivor = node.mountpaths[0]
        for dead in (gone, second):
            node.keel("mountpath", "detach", dead, mountpaths=[survivor])
        again = Node(1, base=node.dir, mountpaths=[survivor])
        try:
            c = again.s3()
            for key, md5 in acked.items():
                assert hashlib.md5(c.get_object(Bucket="copies", Key=key)["Body"].read()).hexdigest() == md5, key
        finally:
            again.stop()
    finally:
        node.stop()
        shutil.rmtree(node.dir, ignore_errors=True)


def test_a_completion_whose_drive_vanished_is_not_acknowledged_with_one_copy():
    """A multipart upload's parts go to both holders as they arrive. One of the two drives'
    directory removed just before the completion (the prober has not noticed yet; the index still
    takes commits through its open files): the completion must answer 503, or 200 only with two
    good copies — the object readable once the drive is poisoned, and repaired to two copies."""
    for which in (0, 1):
        node = Node(3, "--copies", "2", "--repair-interval", "2")
        try:
            s3 = node.s3()
            s3.create_bucket(Bucket="mpu")
            key = f"big{which}"
            data = body(key, 6 << 20)
            up = s3.create_multipart_upload(Bucket="mpu", Key=key)["UploadId"]
            parts = []
            for n, chunk in enumerate([data[:5 << 20], data[5 << 20:]], 1):
                e = s3.upload_part(Bucket="mpu", Key=key, UploadId=up, PartNumber=n, Body=chunk)
                parts.append({"PartNumber": n, "ETag": e["ETag"]})
            # Mirrored as they arrive: two mountpaths hold the parts before the completion.
            holding = [m for m in node.mountpaths if any(os.path.getsize(f) == 5 << 20 for f in data_files(m))]
            assert len(holding) == 2, holding
            shutil.rmtree(holding[which])
            try:
                s3.complete_multipart_upload(Bucket="mpu", Key=key, UploadId=up, MultipartUpload={"Parts": parts})
                acknowledged = True
            except botocore.exceptions.ClientError as e:
                assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 503, e.response
                acknowledged = False
            node.wait("the removed drive poisoned",
                      lambda m, gone=holding[which]: m.get(("keel_mountpath_poisoned", gone)) == 1)
            if acknowledged:
                assert s3.get_object(Bucket="mpu", Key=key)["Body"].read() == data
                node.wait("two copies again", lambda m: m[("keel_under_replicated_objects", None)] == 0)
        finally:
            node.stop()
            shutil.rmtree(node.dir, ignore_errors=True)


def test_a_replaced_drive_is_attached_and_resilvered():
    """A drive dies while keel is stopped; a new, empty drive is mounted where it was. keel refuses
    to start on it (the member's data is missing), `keel mountpath attach` records the new drive
    in place of the dead one, and the next start resilvers it: the repair gives it its share of
    copies, after which losing another drive still loses nothing."""
    node = Node(3, "--copies", "2", "--repair-interval", "2")
    keys = {f"o{i:02d}": 3000 + i * 9000 for i in range(30)}
    try:
        s3 = node.s3()
        s3.create_bucket(Bucket="swap")
        for k, size in keys.items():
            s3.put_object(Bucket="swap", Key=k, Body=body(k, size))
        node.stop()
        dead = node.mountpaths[1]
        shutil.rmtree(dead)
        os.mkdir(dead)  # the replacement drive, mounted at the same place
        with pytest.raises(AssertionError, match="holds no keel data"):
            Node(3, base=node.dir, mountpaths=node.mountpaths)
        others = [node.mountpaths[0], node.mountpaths[2]]
        out = node.keel("mountpath", "attach", dead, mountpaths=others).stdout
        assert "attached" in out and "replaces member" in out, out
        listed = node.keel("mountpath", "list").stdout
        assert listed.count(" active ") == 3 and "detached" not in listed, listed
        again = node.keel("mountpath", "attach", dead, check=False)
        assert again.returncode != 0 and "member of this node already" in again.stderr, again.stderr
        node = Node(3, "--copies", "2", "--repair-interval", "2", base=node.dir, mountpaths=node.mountpaths)
        m = node.wait("the new drive resilvered", lambda m: m[("keel_under_replicated_objects", None)] == 0
                      and m[("keel_repaired_objects_total", None)] > 0)
        assert len(data_files(dead)) >= 10, "the new drive holds its share of copies"
        # Every object has two good copies: the first drive lost too, the other two serve all.
        node.stop()
        gone = node.mountpaths[0]
        shutil.rmtree(gone)
        node.keel("mountpath", "detach", gone, mountpaths=node.mountpaths[1:])
        node = Node(2, base=node.dir, mountpaths=node.mountpaths[1:])
        s3 = node.s3()
        for k, size in keys.items():
            assert s3.get_object(Bucket="swap", Key=k)["Body"].read() == body(k, size), k
        assert m[("keel_repaired_objects_total", None)] <= len(keys)
    finally:
        node.stop()
        shutil.rmtree(node.dir, ignore_errors=True)


def test_bit_rot_in_one_copy_is_served_from_the_good_one_and_rewritten():
    node = Node(2, "--copies", "2", "--validate-on-read")
    try:
        s3 = node.s3()
        s3.create_bucket(Bucket="rot")
        keys = [f"k{i:02d}" for i in range(20)]
        for k in keys:
            s3.put_object(Bucket="rot", Key=k, Body=body(k, 50_000))
        files = data_files(node.mountpaths[0])
        assert len(files) == len(keys) and len(data_files(node.mountpaths[1])) == len(keys)
        # Rot on one drive: a byte flipped in every copy there.
        for f in files:
            with open(f, "r+b") as fh:
                fh.seek(1000)
                b = fh.read(1)
                fh.seek(1000)
                fh.write(bytes([b[0] ^ 0xFF]))
        for k in keys:
            assert s3.get_object(Bucket="rot", Key=k)["Body"].read() == body(k, 50_000), k
        # The copies read first and found bad were rewritten from the good ones (one by one,
        # each synced: the count is read once it has stopped growing).
        node.wait("bad copies rewritten", lambda m: m[("keel_repaired_objects_total", None)] > 0)
        seen = []
        m = node.wait("the rewrites done", lambda m: (seen.append(m[("keel_repaired_objects_total", None)])
                                                      or seen[-4:] == [seen[-1]] * 4))
        rewritten = m[("keel_repaired_objects_total", None)]
        node.stop()
        # The rest (their good copy was read first) are found by a scrub, which rewrites them.
        first = node.keel("scrub", "--copies", "2", check=False)
        assert f"{len(keys) - rewritten} corrupt" in first.stdout, first.stdout + first.stderr
        assert f"copies: {len(keys) - rewritten} objects rewritten from a good copy" in first.stdout, first.stdout
        second = node.keel("scrub", "--copies", "2")
        assert " 0 corrupt" in second.stdout, second.stdout
        for f in files:
            # Every copy on the rotten drive now matches its twin on the other drive.
            twin = os.path.join(node.mountpaths[1], os.path.relpath(f, node.mountpaths[0]))
            assert open(f, "rb").read() == open(twin, "rb").read()
    finally:
        node.stop()
        shutil.rmtree(node.dir, ignore_errors=True)


def test_the_copies_prop_copies_what_a_bucket_holds_and_is_checked():
    node = Node(2)
    try:
        s3 = node.s3()
        s3.create_bucket(Bucket="later")
        for i in range(30):
            s3.put_object(Bucket="later", Key=f"o{i}", Body=body(f"o{i}", 40_000))
        assert sum(len(data_files(m)) for m in node.mountpaths) == 30
        props = node.keel("bucket", "props", "later", "copies=2", "--endpoint", node.url,
                          "--access-key", AK, "--secret-key", SK, mountpaths=[])
        assert '"copies":2' in props.stdout, props.stdout
        node.wait("the bucket's objects copied",
                  lambda m: m[("keel_repaired_objects_total", None)] == 30
                  and m[("keel_under_replicated_objects", None)] == 0)
        assert [len(data_files(m)) for m in node.mountpaths] == [30, 30]
        # More copies than drives: refused.
        bad = node.keel("bucket", "props", "later", "copies=3", "--endpoint", node.url,
                        "--access-key", AK, "--secret-key", SK, mountpaths=[], check=False)
        assert bad.returncode != 0 and "needs as many mountpaths" in bad.stdout + bad.stderr
        # A delete removes both copies.
        s3.delete_object(Bucket="later", Key="o0")
        assert [len(data_files(m)) for m in node.mountpaths] == [29, 29]
        # Back to one copy: the copies beyond each key's owner go (the repair after the change).
        one = node.keel("bucket", "props", "later", "copies=1", "--endpoint", node.url,
                        "--access-key", AK, "--secret-key", SK, mountpaths=[])
        assert '"copies":1' in one.stdout, one.stdout
        node.wait("the extra copies dropped",
                  lambda m: sum(len(data_files(mp)) for mp in node.mountpaths) == 29, timeout=60)
        assert all(len(data_files(mp)) > 0 for mp in node.mountpaths)
        for i in range(1, 30):
            assert s3.get_object(Bucket="later", Key=f"o{i}")["Body"].read() == body(f"o{i}", 40_000)
        node.stop()
        stat = node.keel("stat")
        assert "under_replicated 0" in stat.stdout, stat.stdout
        # --copies larger than the mountpaths given: keel says so and does not start.
        p = subprocess.run([keel_bin(), "serve", "--listen", "127.0.0.1:0", "--copies", "3",
                            "--mountpath", node.mountpaths[0], "--mountpath", node.mountpaths[1]],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode != 0 and "needs at least 3 mountpaths" in p.stderr, p.stderr
    finally:
        node.stop()
        shutil.rmtree(node.dir, ignore_errors=True)
