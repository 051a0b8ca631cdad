"""HTTPS (DESIGN D43): keel with --tls-cert/--tls-key and a self-signed certificate, driven by
boto3 (verify=the certificate), the aws CLI (--ca-bundle), curl (--cacert) and s3cmd
(--no-check-certificate, as the seed document shows); the certificate reloaded on SIGHUP while a
connection stays open; bad pairs refused; a silent TLS client cut at the head timeout."""
import hashlib
import http.client
import os
import signal
import socket
import ssl
import subprocess
import time

import boto3
import botocore
import pytest

from conftest import AK, BIN_DIR, SK, Keel, keel_bin, run

pytestmark = pytest.mark.skipif(bool(os.environ.get("KEEL_CLUSTER")),
                                reason="HTTPS is not served in a cluster yet")


def make_pair(d, name, cn="localhost"):
    cert, key = d / f"{name}.crt", d / f"{name}.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", f"/CN={cn}",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    # Not a CA: webpki (keel's own commands) refuses a CA certificate as a server's.
                    "-addext", "basicConstraints=critical,CA:FALSE"],
                   check=True, capture_output=True)
    return cert, key


def served_cert(addr):
    """The DER certificate a new handshake with `addr` presents."""
    host, port = addr.split(":")
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection((host, int(port)), timeout=10) as s, ctx.wrap_socket(s) as t:
        return t.getpeercert(binary_form=True)


def der_of(pem_path):
    return ssl.PEM_cert_to_DER_cert(pem_path.read_text())


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    d = tmp_path_factory.mktemp("tls")
    cert, key = make_pair(d, "server")
    k = Keel("--tls-cert", str(cert), "--tls-key", str(key))
    k.cert, k.key, k.certdir = cert, key, d
    yield k
    k.stop()


def s3_of(k):
    return boto3.client("s3", endpoint_url=k.endpoint, aws_access_key_id=AK, aws_secret_access_key=SK,
                        region_name="us-east-1", verify=str(k.cert))


def test_boto3_over_https_put_get_range_multipart_list(tls):
    assert tls.endpoint.startswith("https://")
    s3 = s3_of(tls)
    s3.create_bucket(Bucket="tls-boto")
    big = os.urandom(5 * 1024 * 1024 + 12345)
    s3.put_object(Bucket="tls-boto", Key="big", Body=big)
    got = s3.get_object(Bucket="tls-boto", Key="big")
    assert got["Body"].read() == big and got["ETag"].strip('"') == hashlib.md5(big).hexdigest()
    part = s3.get_object(Bucket="tls-boto", Key="big", Range="bytes=1000000-1999999")["Body"].read()
    assert part == big[1000000:2000000]
    # Managed transfer: a multipart upload over several connections.
    cfg = boto3.s3.transfer.TransferConfig(multipart_threshold=5 << 20, multipart_chunksize=5 << 20)
    data = os.urandom(11 << 20)
    import io
    s3.upload_fileobj(io.BytesIO(data), "tls-boto", "multi", Config=cfg)
    assert s3.get_object(Bucket="tls-boto", Key="multi")["Body"].read() == data
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="tls-boto")["Contents"]] == ["big", "multi"]
    # A client that does not trust the certificate refuses it.
    untrusting = boto3.client("s3", endpoint_url=tls.endpoint, aws_access_key_id=AK, aws_secret_access_key=SK,
                              region_name="us-east-1")
    with pytest.raises(botocore.exceptions.SSLError):
        untrusting.list_buckets()


def test_aws_cli_and_curl_over_https(tls, tmp_path):
    src = tmp_path / "src.bin"
    data = os.urandom(3_000_000)
    src.write_bytes(data)
    aws = [str(BIN_DIR / "aws"), "--endpoint-url", tls.endpoint, "--ca-bundle", str(tls.cert)]
    run(aws + ["s3", "mb", "s3://tls-cli"])
    run(aws + ["s3", "cp", str(src), "s3://tls-cli/f.bin"])
    out = tmp_path / "out.bin"
    run(aws + ["s3api", "get-object", "--bucket", "tls-cli", "--key", "f.bin", "--range", "bytes=-1000", str(out)])
    assert out.read_bytes() == data[-1000:]
    url = s3_of(tls).generate_presigned_url("get_object", Params={"Bucket": "tls-cli", "Key": "f.bin"})
    whole = tmp_path / "curl.bin"
    p = subprocess.run(["curl", "-sS", "--cacert", str(tls.cert), "-o", str(whole), "-w", "%{http_code} %{http_version}",
                        url], capture_output=True, text=True, timeout=60)
    assert p.stdout == "200 1.1", p.stdout + p.stderr
    assert whole.read_bytes() == data


def test_s3cmd_without_certificate_checks(tls, tmp_path):
    cfg = tmp_path / "s3cfg"
    cfg.write_text("[default]\n"
                   f"access_key = {AK}\nsecret_key = {SK}\n"
                   f"host_base = {tls.addr}\nhost_bucket = {tls.addr}\n"
                   "use_https = True\ncheck_ssl_certificate = False\nsignature_v2 = False\n"
                   "bucket_location = us-east-1\n")
    f = tmp_path / "f.bin"
    data = os.urandom(200_000)
    f.write_bytes(data)
    s3cmd = [str(BIN_DIR / "s3cmd"), "-c", str(cfg), "--no-check-certificate"]
    run(s3cmd + ["mb", "s3://tls-s3cmd"])
    run(s3cmd + ["put", str(f), "s3://tls-s3cmd/f.bin"])
    out = tmp_path / "out.bin"
    run(s3cmd + ["get", "s3://tls-s3cmd/f.bin", str(out)])
    assert out.read_bytes() == data


def test_plain_http_to_the_https_port_gets_no_answer(tls):
    host, port = tls.addr.split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        got = b""
        try:
            while chunk := s.recv(4096):
                got += chunk
        except ConnectionResetError:
            pass
    assert not got.startswith(b"HTTP/"), got[:100]


def test_sighup_reloads_the_certificate_and_open_connections_keep_going(tls):
    assert served_cert(tls.addr) == der_of(tls.cert)
    s3_of(tls).create_bucket(Bucket="tls-reload")
    # A keep-alive connection opened under the first certificate.
    ctx = ssl.create_default_context(cafile=str(tls.cert))
    host, port = tls.addr.split(":")
    conn = http.client.HTTPSConnection(host, int(port), context=ctx, timeout=10)
    conn.request("GET", "/")
    r = conn.getresponse()
    r.read()
    assert r.status == 403
    first = der_of(tls.cert)
    new_cert, new_key = make_pair(tls.certdir, "next", cn="next")
    os.replace(new_key, tls.key)
    os.replace(new_cert, tls.cert)
    tls.proc.send_signal(signal.SIGHUP)
    deadline = time.time() + 10
    while served_cert(tls.addr) == first and time.time() < deadline:
        time.sleep(0.1)
    assert served_cert(tls.addr) == der_of(tls.cert) != first
    # The connection from before still works, on its old session.
    conn.request("GET", "/")
    r = conn.getresponse()
    r.read()
    assert r.status == 403
    conn.close()
    # A broken pair on the next SIGHUP leaves the current one in use.
    tls.key.write_text("not a key\n")
    tls.proc.send_signal(signal.SIGHUP)
    time.sleep(1)
    assert tls.proc.poll() is None
    assert served_cert(tls.addr) == der_of(tls.cert)
    assert "tls-reload" in [b["Name"] for b in s3_of(tls).list_buckets()["Buckets"]]
    # SIGHUPs in a burst (a reload script run twice): none of them ends the process.
    for _ in range(20):
        tls.proc.send_signal(signal.SIGHUP)
    time.sleep(1)
    assert tls.proc.poll() is None
    assert served_cert(tls.addr) == der_of(tls.cert)


def test_a_key_that_does_not_fit_the_certificate_is_refused_at_start(tmp_path):
    cert, _ = make_pair(tmp_path, "a")
    _, other_key = make_pair(tmp_path, "b")
    p = subprocess.run([keel_bin(), "serve", "--listen", "127.0.0.1:0", "--mountpath", str(tmp_path / "mp"),
                        "--tls-cert", str(cert), "--tls-key", str(other_key)],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode != 0 and "does not fit" in p.stderr, p.stderr
    p = subprocess.run([keel_bin(), "serve", "--listen", "127.0.0.1:0", "--mountpath", str(tmp_path / "mp"),
                        "--tls-cert", str(cert)], capture_output=True, text=True, timeout=30)
    assert p.returncode != 0 and "go together" in p.stderr, p.stderr


def test_a_client_that_never_finishes_its_handshake_is_cut(tmp_path):
    cert, key = make_pair(tmp_path, "s")
    os.environ["KEEL_HEAD_TIMEOUT_MS"] = "1000"
    try:
        k = Keel("--tls-cert", str(cert), "--tls-key", str(key))
    finally:
        del os.environ["KEEL_HEAD_TIMEOUT_MS"]
    try:
        host, port = k.addr.split(":")
        with socket.create_connection((host, int(port)), timeout=20) as s:
            s.sendall(b"\x16\x03\x01")  # the start of a ClientHello, never finished
            began = time.time()
            try:
                got = s.recv(100)
            except ConnectionResetError:
                got = b""
            took = time.time() - began
        # Closed (at most with a TLS alert) well before the client's own 20 s timeout.
        assert got == b"" or got[0] == 0x15, got
        assert took < 8, took
    finally:
        k.stop()


def test_keel_bucket_props_talks_https_with_aws_ca_bundle(tls):
    s3_of(tls).create_bucket(Bucket="tls-props")
    base = [keel_bin(), "bucket", "props", "tls-props", "--endpoint", tls.endpoint,
            "--access-key", AK, "--secret-key", SK]
    env = dict(os.environ, AWS_CA_BUNDLE=str(tls.cert))
    p = subprocess.run(base + ["validate_on_read=true"], capture_output=True, text=True, timeout=30, env=env)
    assert p.returncode == 0, p.stderr
    p = subprocess.run(base, capture_output=True, text=True, timeout=30, env=env)
    assert p.returncode == 0 and "validate_on_read" in p.stdout and "true" in p.stdout, p.stdout + p.stderr
    # Without the bundle the self-signed certificate is not trusted.
    env.pop("AWS_CA_BUNDLE")
    p = subprocess.run(base, capture_output=True, text=True, timeout=30, env=env)
    assert p.returncode != 0 and "certificate" in p.stderr.lower(), p.stderr


def test_config_check_loads_the_pair(tmp_path):
    cert, key = make_pair(tmp_path, "c")
    cfg = tmp_path / "keel.toml"
    cfg.write_text(f'tls_cert = "{cert}"\ntls_key = "{key}"\n')
    p = subprocess.run([keel_bin(), "config", "check", str(cfg)], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0 and f'tls_cert = "{cert}"' in p.stdout, p.stdout + p.stderr
    # A key file that is not a key fails the check, as it would fail `serve`.
    key.write_text("not a key\n")
    p = subprocess.run([keel_bin(), "config", "check", str(cfg)], capture_output=True, text=True, timeout=30)
    assert p.returncode != 0 and "--tls-key" in p.stderr, p.stdout + p.stderr


def test_connections_past_the_cap_are_closed_without_a_plaintext_answer(tmp_path):
    """Over TLS a 503 would first cost a handshake: a connection past --max-connections is
    closed with no bytes (a plain node answers 503 in plain HTTP)."""
    cert, key = make_pair(tmp_path, "cap")
    k = Keel("--tls-cert", str(cert), "--tls-key", str(key), "--max-connections", "1")
    held = []
    try:
        host, port = k.addr.split(":")
        ctx = ssl.create_default_context(cafile=str(cert))
        # Two shards, one connection each: after a few handshakes every shard is full.
        for _ in range(6):
            try:
                s = socket.create_connection((host, int(port)), timeout=10)
                held.append(ctx.wrap_socket(s, server_hostname="localhost"))
            except (ssl.SSLError, OSError):
                pass
        assert 1 <= len(held) <= 2, len(held)
        for _ in range(4):
            with socket.create_connection((host, int(port)), timeout=10) as s:
                try:
                    got = s.recv(100)
                except ConnectionResetError:
                    got = b""
                assert got == b"", got
        # The sessions it holds still serve.
        held[0].sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert held[0].recv(100).startswith(b"HTTP/1.1 403")
    finally:
        for t in held:
            t.close()
        k.stop()
