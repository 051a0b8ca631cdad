"""Copies on distinct nodes of a cluster (issue 15, DESIGN D38), with real etcd members and real
keel nodes on loopback: kill -9 of a node under a 4-writer load loses no acknowledged object,
the survivors make the lost copies again (`under_replicated` back to 0), then a second node
killed still loses nothing; a node back from the dead drops the copies that missed overwrites
and deletes while it was away, and serves the newest versions only.
"""
import concurrent.futures
import glob
import os
import random
import signal
import subprocess
import threading
import time

import pytest

from conftest import AK, SK, keel_bin
from test_cluster import Cluster, client, codes, held_keys, peer_call

pytestmark = pytest.mark.skipif(os.environ.get("KEEL_CLUSTER") == "1",
                                reason="starts its own clusters")


def wait(what, check, timeout=90):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.3)
    raise AssertionError(f"{what}: not in {timeout} s (last: {last})")


def settled(c):
    """Every live member reconciled and the copies complete (as the members count them)."""
    def check():
        st = c.status()
        if any(n["reconciling"] for n in st["nodes"] if n["state"] == "active"):
            return None
        return st if st["under_replicated"] == 0 else None
    return wait("copies complete", check)


def holders(c, nodes, bucket):
    """How many of `nodes` hold each key."""
    count = {}
    for n in nodes:
        for k in held_keys(c, n, bucket):
            count[k] = count.get(k, 0) + 1
    return count


def fill(c, bucket, bodies):
    """A bucket made through n0 with `bodies` (key -> bytes) in it, on two nodes each."""
    s0 = client(c.nodes[0].url)
    s0.create_bucket(Bucket=bucket)
    for k, b in bodies.items():
        s0.put_object(Bucket=bucket, Key=k, Body=b)
    wait("two copies of each key", lambda: set(holders(c, c.nodes, bucket).values()) == {2})
    return s0


def set_copies(node, bucket, n):
    p = subprocess.run([keel_bin(), "bucket", "props", bucket, f"copies={n}", "--endpoint", node.url,
                        "--access-key", AK, "--secret-key", SK], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert f'"copies":{n}' in p.stdout, p.stdout


def test_kill_9_of_a_node_under_load_then_of_another_loses_nothing():
    c = Cluster(n=4, extra=["--lease-ttl", "2", "--copies", "2"])
    try:
        settled(c)
        s0 = client(c.nodes[0].url)
        s0.create_bucket(Bucket="safe")
        # Before any load: every object on exactly two nodes.
        for i in range(40):
            s0.put_object(Bucket="safe", Key=f"pre{i:03d}", Body=f"pre{i}".encode() * 100)
        assert set(holders(c, c.nodes, "safe").values()) == {2}
        acked, lock, stop = {}, threading.Lock(), threading.Event()
        failures = []

        def writer(w):
            rnd = random.Random(w)
            # Through the three nodes that stay up (each forwards to the key's primary).
            s3s = [client(n.url) for n in c.nodes[:3]]
            i = 0
            deadline = time.time() + 60  # bounded even if the main thread never sets `stop`
            while not stop.is_set() and time.time() < deadline:
                key, body = f"w{w}-{i:05d}", os.urandom(rnd.choice([100, 5000, 70_000]))
                try:
                    s3s[i % 3].put_object(Bucket="safe", Key=key, Body=body)
                    with lock:
                        acked[key] = body
                except Exception as e:  # unacknowledged: may or may not exist
                    failures.append(repr(e)[:200])
                i += 1

        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            futures = [pool.submit(writer, w) for w in range(4)]
            try:
                time.sleep(2)
                c.nodes[3].stop(signal.SIGKILL)
                time.sleep(5)
            finally:
                stop.set()  # else a failure above leaves the writers running
            for f in futures:
                f.result()
        assert len(acked) > 100, (len(acked), failures[:5])
        c.wait_state("n3", "down")
        survivors = c.nodes[:3]

        def read_all(nodes):
            for j, (key, body) in enumerate(sorted(acked.items())):
                got = client(nodes[j % len(nodes)].url).get_object(Bucket="safe", Key=key)["Body"].read()
                assert got == body, key
            for i in range(40):
                got = client(nodes[i % len(nodes)].url).get_object(Bucket="safe", Key=f"pre{i:03d}")
                assert got["Body"].read() == f"pre{i}".encode() * 100

        read_all(survivors)
        # The survivors copy what n3 held to the next node of each key's order.
        settled(c)
        count = holders(c, survivors, "safe")
        assert all(count.get(k) == 2 for k in acked), {k: count.get(k) for k in acked if count.get(k) != 2}
        # A second node killed once under_replicated is 0: still nothing lost.
        c.nodes[2].stop(signal.SIGKILL)
        c.wait_state("n2", "down")
        read_all(c.nodes[:2])
        listed = set()
        for page in s0.get_paginator("list_objects_v2").paginate(Bucket="safe"):
            listed |= {o["Key"] for o in page.get("Contents", [])}
        assert set(acked) <= listed
    finally:
        c.stop()


def test_a_node_back_from_the_dead_drops_what_it_missed_and_serves_the_newest():
    # No --copies: the bucket's prop asks for two.
    c = Cluster(n=3, extra=["--lease-ttl", "2"])
    try:
        settled(c)
        s0 = client(c.nodes[0].url)
        s0.create_bucket(Bucket="back")
        set_copies(c.nodes[1], "back", 2)
        keys = [f"k{i:02d}" for i in range(40)]
        for k in keys:
            s0.put_object(Bucket="back", Key=k, Body=b"v1 " + k.encode())
        # (A write answered before every node saw the new prop may have made one copy: the
        # repair makes the second.)
        wait("two copies of each key", lambda: set(holders(c, c.nodes, "back").values()) == {2})
        settled(c)
        c.nodes[2].stop(signal.SIGKILL)
        c.wait_state("n2", "down")
        # While n2 is away: overwrites and deletes, through both survivors.
        s1 = client(c.nodes[1].url)
        for i, k in enumerate(keys[:20]):
            (s0 if i % 2 else s1).put_object(Bucket="back", Key=k, Body=b"v2 " + k.encode())
        for k in keys[20:30]:
            s1.delete_object(Bucket="back", Key=k)
        settled(c)
        # Back with its old data: it reconciles before it holds any copy.
        c.nodes[2] = c.start("n2", port=c.nodes[2].port)
        c.nodes[2].wait_listening()
        c.wait_state("n2", "active")
        settled(c)
        for node in c.nodes:
            s3 = client(node.url)
            for k in keys[:20]:
                assert s3.get_object(Bucket="back", Key=k)["Body"].read() == b"v2 " + k.encode(), (node.node_id, k)
            for k in keys[20:30]:
                assert codes(lambda k=k: s3.head_object(Bucket="back", Key=k)) == "404", (node.node_id, k)
            for k in keys[30:]:
                assert s3.get_object(Bucket="back", Key=k)["Body"].read() == b"v1 " + k.encode()
            listed = [o["Key"] for o in s3.list_objects_v2(Bucket="back")["Contents"]]
            assert listed == keys[:20] + keys[30:], node.node_id
        # Strays handed back: each live key on exactly two nodes again, n2 among them where
        # its order says so.
        wait("two copies of each key", lambda: set(holders(c, c.nodes, "back").values()) == {2})
        assert set(holders(c, c.nodes, "back")) == set(keys[:20] + keys[30:])
        assert held_keys(c, c.nodes[2], "back"), "n2 holds its share again"
    finally:
        c.stop()


def test_an_unreachable_primary_is_read_around_and_a_delete_reaches_every_copy():
    c = Cluster(n=3, extra=["--lease-ttl", "30", "--copies", "2"])
    try:
        settled(c)
        s0 = client(c.nodes[0].url)
        s0.create_bucket(Bucket="around")
        keys = [f"a{i:02d}" for i in range(30)]
        for k in keys:
            s0.put_object(Bucket="around", Key=k, Body=k.encode())
        s0.delete_object(Bucket="around", Key=keys[0])
        assert holders(c, c.nodes, "around").get(keys[0]) is None, "deleted on every holder"
        on_n2 = set(held_keys(c, c.nodes[2], "around"))
        assert on_n2 and on_n2 != set(keys[1:])
        # kill -9 with a long lease: n2 stays "active" in the map for 30 s, unreachable. Reads
        # of the keys it is primary of go to their other holder meanwhile.
        c.nodes[2].stop(signal.SIGKILL)
        for k in keys[1:]:
            assert s0.get_object(Bucket="around", Key=k)["Body"].read() == k.encode(), k
            assert client(c.nodes[1].url).head_object(Bucket="around", Key=k)["ContentLength"] == len(k)
        # Writes of the keys n2 holds cannot get their second copy: 503, never 200; the others
        # are written.
        for k in keys[1:]:
            got = codes(lambda k=k: s0.put_object(Bucket="around", Key=k, Body=b"v2"))
            assert got == ("ServiceUnavailable" if k in on_n2 else "ok"), (k, got)
    finally:
        c.stop()


def test_decommission_leaves_no_object_short_of_copies():
    c = Cluster(n=4, extra=["--lease-ttl", "2", "--copies", "2"])
    try:
        settled(c)
        keys = [f"d{i:03d}" for i in range(80)]
        fill(c, "drain", {k: k.encode() * 50 for k in keys})
        assert held_keys(c, c.nodes[3], "drain")
        out = subprocess.run([keel_bin(), "cluster", "decommission", "n3", "--cluster", c.etcd.endpoints,
                              "--cluster-name", c.name], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0 and "n3 left cluster" in out.stdout, out.stderr
        # The moment it is gone: every object on two of the three nodes left (and the members'
        # next passes, under the new membership, find nothing short).
        count = holders(c, c.nodes[:3], "drain")
        assert sorted(count) == keys and set(count.values()) == {2}, count
        st = settled(c)
        assert [n["id"] for n in st["nodes"]] == ["n0", "n1", "n2"], st
        c.nodes[3].stop(signal.SIGKILL)
        for i, k in enumerate(keys):
            assert client(c.nodes[i % 3].url).get_object(Bucket="drain", Key=k)["Body"].read() == k.encode() * 50
    finally:
        c.stop()


def test_bit_rot_in_a_primarys_copy_is_served_from_another_node_and_rewritten():
    import glob
    c = Cluster(n=3, extra=["--lease-ttl", "2", "--copies", "2"])
    try:
        settled(c)
        s0 = client(c.nodes[0].url)
        s0.create_bucket(Bucket="rot")
        p = subprocess.run([keel_bin(), "bucket", "props", "rot", "validate_on_read=true", "--endpoint", c.nodes[0].url,
                            "--access-key", AK, "--secret-key", SK], capture_output=True, text=True, timeout=60)
        assert p.returncode == 0 and '"validate_on_read":true' in p.stdout, p.stdout + p.stderr
        bodies = {f"r{i:02d}": os.urandom(20_000 + i) for i in range(30)}
        for k, b in bodies.items():
            s0.put_object(Bucket="rot", Key=k, Body=b)
        wait("two copies of each key", lambda: set(holders(c, c.nodes, "rot").values()) == {2})
        # Every data file of n0 gets one byte flipped (its copies of about two thirds of the keys).
        files = [f for f in glob.glob(os.path.join(c.nodes[0].dir, "mp*", "objects", "*", "*")) if os.path.isfile(f)]
        assert files
        for f in files:
            with open(f, "r+b") as fh:
                fh.seek(100)
                b = fh.read(1)
                fh.seek(100)
                fh.write(bytes([b[0] ^ 0xFF]))
        # Every read, through every node, gets the right bytes: a primary whose copy fails its
        # checksum rewrites it from the other holder's first.
        for node in c.nodes:
            s3 = client(node.url)
            for k, b in bodies.items():
                assert s3.get_object(Bucket="rot", Key=k)["Body"].read() == b, (node.node_id, k)
        # The copies n0 read as primary were rewritten (new files; the flipped ones removed).
        left = [f for f in files if os.path.exists(f)]
        assert len(left) < len(files), "no bad copy was rewritten"
        assert "a corrupt copy rewritten from another node" in open(c.nodes[0].log).read()
    finally:
        c.stop()


def test_a_primary_that_lost_its_copies_reads_them_from_the_other_holder():
    import urllib.parse
    c = Cluster(n=3, extra=["--lease-ttl", "2", "--copies", "2"])
    try:
        settled(c)
        keys = [f"l{i:02d}" for i in range(30)]
        fill(c, "lost", {k: k.encode() * 300 for k in keys})
        # n1 loses every copy it holds (as a drive replaced empty would), through the
        # node-to-node drop endpoint.
        gone = held_keys(c, c.nodes[1], "lost")
        assert gone
        body = "".join(urllib.parse.quote(k, safe="") + "\n" for k in gone).encode()
        status, answer = peer_call(c, c.nodes[1], "POST", "/_keel/peer/drop?bucket=lost", body)
        assert status == 200, answer
        # The repair may already be giving some back (it starts as soon as a read misses):
        # what matters is that n1 lost them.
        assert len(held_keys(c, c.nodes[1], "lost")) < len(gone)
        # Every key read through n1 at once: the ones it is primary of come from the other holder.
        s1 = client(c.nodes[1].url)
        for k in keys:
            assert s1.get_object(Bucket="lost", Key=k)["Body"].read() == k.encode() * 300, k
            assert s1.head_object(Bucket="lost", Key=k)["ContentLength"] == len(k) * 300
        assert codes(lambda: s1.get_object(Bucket="lost", Key="never")) == "NoSuchKey"
        # The repair gives n1 its copies back.
        wait("n1's copies back", lambda: sorted(held_keys(c, c.nodes[1], "lost")) == sorted(gone), timeout=90)
    finally:
        c.stop()


def test_a_multipart_upload_reaches_every_holder():
    c = Cluster(n=3, extra=["--lease-ttl", "2", "--copies", "2"])
    try:
        settled(c)
        s0 = client(c.nodes[0].url)
        s0.create_bucket(Bucket="mpu")
        parts = [os.urandom(5 << 20) for _ in range(3)] + [b"tail"]
        up = s0.create_multipart_upload(Bucket="mpu", Key="big")["UploadId"]
        # Parts in parallel through different nodes (each forwarded to the primary).
        def send(i):
            s3 = client(c.nodes[i % 3].url)
            r = s3.upload_part(Bucket="mpu", Key="big", UploadId=up, PartNumber=i + 1, Body=parts[i])
            return {"PartNumber": i + 1, "ETag": r["ETag"]}
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            done = list(pool.map(send, range(len(parts))))
        # The parts were copied to the other holder as they arrived (D40): two nodes hold
        # every 5 MiB part file before the completion, the third none.
        before = {n.node_id: part_files(n) for n in c.nodes}
        assert sorted(len(f) for f in before.values()) == [0, 3, 3], before
        etag = s0.complete_multipart_upload(Bucket="mpu", Key="big", UploadId=up,
                                            MultipartUpload={"Parts": done})["ETag"]
        # On both holders before the answer, from the parts in place: the same files (no byte
        # pulled again), none left over.
        count = holders(c, c.nodes, "mpu")
        assert count == {"big": 2}, count
        assert {n.node_id: part_files(n) for n in c.nodes} == before
        whole = b"".join(parts)
        for node in c.nodes:
            got = client(node.url).get_object(Bucket="mpu", Key="big")
            assert got["ETag"] == etag and got["Body"].read() == whole
        # Either holder alone serves it, parts and all.
        held = [n for n in c.nodes if held_keys(c, n, "mpu")]
        held[0].stop(signal.SIGKILL)
        c.wait_state(held[0].node_id, "down")
        via = client(next(n for n in c.nodes if n is not held[0]).url)
        got = via.get_object(Bucket="mpu", Key="big", PartNumber=2)
        assert got["Body"].read() == parts[1] and got["PartsCount"] == 4
        assert via.get_object(Bucket="mpu", Key="big")["Body"].read() == whole
    finally:
        c.stop()


def part_files(node):
    """The inodes and mtimes of a node's 5 MiB data files (the multipart tests' parts)."""
    files = glob.glob(os.path.join(node.dir, "mp*", "objects", "*", "*"))
    return sorted((os.stat(f).st_ino, os.stat(f).st_mtime_ns) for f in files if os.path.getsize(f) == 5 << 20)


def test_an_aborted_upload_leaves_no_part_on_any_holder():
    c = Cluster(n=3, extra=["--lease-ttl", "2", "--copies", "2"])
    try:
        settled(c)
        s0 = client(c.nodes[0].url)
        s0.create_bucket(Bucket="gone")
        up = s0.create_multipart_upload(Bucket="gone", Key="k")["UploadId"]
        for i in (1, 2):
            s0.upload_part(Bucket="gone", Key="k", UploadId=up, PartNumber=i, Body=os.urandom(5 << 20))
        # Re-sent part 2: the holder's copy of the first one goes too.
        s0.upload_part(Bucket="gone", Key="k", UploadId=up, PartNumber=2, Body=os.urandom(5 << 20))
        assert sorted(len(part_files(n)) for n in c.nodes) == [0, 2, 2]
        client(c.nodes[2].url).abort_multipart_upload(Bucket="gone", Key="k", UploadId=up)
        assert [part_files(n) for n in c.nodes] == [[], [], []]
        # A completion whose holder lacks a part (one sent while the holder could not take it
        # is simulated by a part copied nowhere: the upload made before copies were on) still
        # reaches both holders, pulled whole.
        s0.create_bucket(Bucket="late")
        set_copies(c.nodes[0], "late", 1)
        up = s0.create_multipart_upload(Bucket="late", Key="k")["UploadId"]
        first = os.urandom(5 << 20)
        e1 = s0.upload_part(Bucket="late", Key="k", UploadId=up, PartNumber=1, Body=first)["ETag"]
        set_copies(c.nodes[0], "late", 2)
        e2 = s0.upload_part(Bucket="late", Key="k", UploadId=up, PartNumber=2, Body=b"end")["ETag"]
        s0.complete_multipart_upload(Bucket="late", Key="k", UploadId=up, MultipartUpload={"Parts": [
            {"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]})
        wait("two copies", lambda: holders(c, c.nodes, "late") == {"k": 2})
        assert sorted(len(part_files(n)) for n in c.nodes) == [0, 1, 1]
        for n in c.nodes:
            assert client(n.url).get_object(Bucket="late", Key="k")["Body"].read() == first + b"end"
    finally:
        c.stop()


def test_deletes_and_overwrites_during_a_repair_never_come_back():
    c = Cluster(n=4, extra=["--lease-ttl", "2", "--copies", "2"])
    try:
        settled(c)
        s0 = client(c.nodes[0].url)
        s0.create_bucket(Bucket="race")
        keys = [f"x{i:03d}" for i in range(300)]
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda k: client(c.nodes[hash(k) % 3].url).put_object(Bucket="race", Key=k, Body=b"old" * 3000), keys))
        wait("two copies of each key", lambda: set(holders(c, c.nodes, "race").values()) == {2})
        # n3 dies: the survivors re-copy its share while half the keys are deleted and a
        # quarter overwritten through them.
        c.nodes[3].stop(signal.SIGKILL)
        c.wait_state("n3", "down")
        deleted, rewritten = keys[::2], keys[1::4]

        def change(i):
            s3 = client(c.nodes[i % 3].url)
            if i % 2 == 0:
                s3.delete_object(Bucket="race", Key=keys[i])
            elif i % 4 == 1:
                s3.put_object(Bucket="race", Key=keys[i], Body=b"new" * 3000)
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            list(pool.map(change, range(len(keys))))
        settled(c)
        survivors = c.nodes[:3]
        count = holders(c, survivors, "race")
        live = sorted(set(keys) - set(deleted))
        assert sorted(count) == live, sorted(set(count) - set(live))
        assert set(count.values()) == {2}, count
        for i, k in enumerate(live):
            body = client(survivors[i % 3].url).get_object(Bucket="race", Key=k)["Body"].read()
            assert body == (b"new" if k in rewritten else b"old") * 3000, k
        listed = [o["Key"] for p in s0.get_paginator("list_objects_v2").paginate(Bucket="race") for o in p.get("Contents", [])]
        assert listed == live
    finally:
        c.stop()


def test_two_nodes_restarting_together_keep_what_only_they_hold():
    c = Cluster(n=3, extra=["--lease-ttl", "2", "--copies", "2"])
    try:
        settled(c)
        keys = [f"b{i:02d}" for i in range(60)]
        fill(c, "both", {k: k.encode() * 100 for k in keys})
        only_12 = set(held_keys(c, c.nodes[1], "both")) & set(held_keys(c, c.nodes[2], "both"))
        assert only_12, "some keys live on n1 and n2 only"
        # n1 and n2 killed and back together: while they reconcile, n0 stands in for both and
        # never had the keys they alone hold; those must not be dropped.
        for i in (1, 2):
            c.nodes[i].stop(signal.SIGKILL)
        c.wait_state("n1", "down")
        c.wait_state("n2", "down")
        for i in (1, 2):
            c.nodes[i] = c.start(f"n{i}", port=c.nodes[i].port)
        for i in (1, 2):
            c.nodes[i].wait_listening()
        settled(c)
        for i, k in enumerate(keys):
            assert client(c.nodes[i % 3].url).get_object(Bucket="both", Key=k)["Body"].read() == k.encode() * 100, k
        wait("two copies of each key", lambda: set(holders(c, c.nodes, "both").values()) == {2}
             and sorted(holders(c, c.nodes, "both")) == keys)
    finally:
        c.stop()


def test_lowering_copies_drops_the_extras_and_a_later_raise_brings_back_nothing_deleted():
    """copies 2 → 1: the copies beyond the primary go (no space kept for nothing); a key deleted
    or overwritten while the bucket had one copy never comes back from an old extra when the
    bucket gets two copies again."""
    c = Cluster(n=3, extra=["--lease-ttl", "2"])
    try:
        bodies = {f"d{i:02d}": f"v1-{i}".encode() * 200 for i in range(24)}
        s0 = client(c.nodes[0].url)
        s0.create_bucket(Bucket="lower")
        set_copies(c.nodes[0], "lower", 2)
        for k, b in bodies.items():
            s0.put_object(Bucket="lower", Key=k, Body=b)
        wait("two copies of each key", lambda: set(holders(c, c.nodes, "lower").values()) == {2})
        set_copies(c.nodes[0], "lower", 1)
        wait("one copy of each key", lambda: set(holders(c, c.nodes, "lower").values()) == {1}, timeout=120)
        deleted = [k for k in bodies if k < "d08"]
        for k in deleted:
            s0.delete_object(Bucket="lower", Key=k)
        rewritten = {k: b"v2" * 300 for k in bodies if "d08" <= k < "d16"}
        for k, b in rewritten.items():
            s0.put_object(Bucket="lower", Key=k, Body=b)
        set_copies(c.nodes[0], "lower", 2)
        want = {k: rewritten.get(k, b) for k, b in bodies.items() if k not in deleted}
        wait("two copies of each key again", lambda: holders(c, c.nodes, "lower") == {k: 2 for k in want})
        for node in c.nodes:
            s = client(node.url)
            listed = {o["Key"] for o in s.list_objects_v2(Bucket="lower").get("Contents", [])}
            assert listed == set(want), sorted(listed ^ set(want))
            for k, b in want.items():
                assert s.get_object(Bucket="lower", Key=k)["Body"].read() == b, k
    finally:
        c.stop()


def test_an_acl_or_tag_change_reaches_every_holder():
    """PutObjectAcl and object tagging keep the object's version: the holders take the
    primary's new ACL and tags anyway (else a failover would serve a private object as
    public-read, or other tags), and a holder that missed a change gets it from the repair."""
    import urllib.parse
    from conftest import http
    c = Cluster(n=3, extra=["--lease-ttl", "2", "--copies", "2"])
    try:
        settled(c)
        s0 = client(c.nodes[0].url)
        s0.create_bucket(Bucket="acls")
        keys = [f"a{i}" for i in range(6)]
        for k in keys:
            s0.put_object(Bucket="acls", Key=k, Body=b"x" * 1000, ACL="public-read")

        def attrs(node):
            """What `node` holds of each key: the code of its ACL and tags, asked node-to-node."""
            body = "".join(urllib.parse.quote(k, safe="") + "\n" for k in keys).encode()
            status, answer = peer_call(c, node, "POST", "/_keel/peer/have?bucket=acls", body)
            assert status == 200, answer
            lines = answer.decode().splitlines()
            return {k: l.split(" ")[2] for k, l in zip(keys, lines) if l != "-"}

        def agreed():
            """Each key's code, if every copy of every key agrees with the others."""
            held = [attrs(n) for n in c.nodes]
            codes = {k: {h[k] for h in held if k in h} for k in keys}
            return {k: v.pop() for k, v in codes.items()} if all(len(v) == 1 for v in codes.values()) else None

        held = [attrs(n) for n in c.nodes]
        assert all(sum(k in h for h in held) == 2 for k in keys), held
        public = agreed()
        assert public is not None and len(set(public.values())) == 1, held
        for k in keys:
            s0.put_object_acl(Bucket="acls", Key=k, ACL="private")
        private = agreed()  # private on every holder
        assert private is not None and not set(private.values()) & set(public.values()), [attrs(n) for n in c.nodes]
        # Anonymous reads through every node: refused.
        for n in c.nodes:
            status, _, _ = http("GET", f"{n.url}/acls/{keys[0]}")
            assert status == 403, (n.node_id, status)
        # Tags: every holder takes them, and every node answers them.
        for k in keys:
            s0.put_object_tagging(Bucket="acls", Key=k, Tagging={"TagSet": [{"Key": "t", "Value": k}]})
        tagged = agreed()
        assert tagged is not None and all(tagged[k] != private[k] for k in keys), [attrs(n) for n in c.nodes]
        for n in c.nodes:
            got = client(n.url).get_object_tagging(Bucket="acls", Key=keys[1])["TagSet"]
            assert got == [{"Key": "t", "Value": keys[1]}], (n.node_id, got)
        for k in keys:
            s0.delete_object_tagging(Bucket="acls", Key=k)
        assert agreed() == private
        # n2 away while the ACLs change back: when it returns, its copies keep their version
        # (nothing to drop) and the repair gives them the primaries' ACL.
        settled(c)
        c.nodes[2].stop(signal.SIGKILL)
        c.wait_state("n2", "down")
        for k in keys:
            s0.put_object_acl(Bucket="acls", Key=k, ACL="public-read")
        c.nodes[2] = c.start("n2", port=c.nodes[2].port)
        c.nodes[2].wait_listening()
        c.wait_state("n2", "active")
        settled(c)
        wait("every copy public-read", lambda: agreed() == public)
    finally:
        c.stop()
