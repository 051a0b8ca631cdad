"""keel with a real browser as its client: headless Chromium loads pages from another origin (a
second port on loopback).

CORS (issue 18 item 4; DESIGN D50): the page's script fetch()es a presigned GET and a presigned
PUT from keel (the PUT is preflighted: a non-simple method with a Content-Type), then a GET from
a bucket whose rules do not name the page's origin, which the browser must refuse; the page
posts what it saw back to the server that served it.

POST object (issue 18 item 3; DESIGN D51): an HTML form, signed with SigV4 by the test, gets a
file put in its file input and is submitted; keel stores the file and redirects the browser
back to the page's server with the bucket, key and ETag."""
import base64
import datetime
import hashlib
import hmac
import http.server
import json
import os
import shutil
import subprocess
import tempfile
import threading
import urllib.parse

import pytest

pytestmark = pytest.mark.skipif(os.environ.get("KEEL_CLUSTER") == "1", reason="one browser run is enough")

PAGE = """<!doctype html><html><body><script>
(async () => {
  const out = {};
  try {
    const r = await fetch(%(get)s);
    out.get = [r.status, await r.text(), r.headers.get('ETag')];
  } catch (e) { out.get = ['error', String(e)]; }
  try {
    const r = await fetch(%(put)s, {method: 'PUT', body: 'from the browser', headers: {'Content-Type': 'text/plain'}});
    out.put = [r.status];
  } catch (e) { out.put = ['error', String(e)]; }
  try {
    const r = await fetch(%(refused)s);
    out.refused = [r.status, await r.text()];
  } catch (e) { out.refused = ['error', String(e)]; }
  await fetch('/result', {method: 'POST', body: JSON.stringify(out)});
})();
</script></body></html>"""


def serve_page():
    """A server on another loopback port: the page (set in `page["html"]`) at /, what the page
    posts at /result, and the query of a redirect back to /done."""
    got, page = {}, {"html": ""}
    done = threading.Event()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path.startswith("/done?"):
                got.update(urllib.parse.parse_qs(self.path.split("?", 1)[1]))
                done.set()
            body = page["html"].encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):
            n = int(self.headers.get("Content-Length", "0"))
            got.update(json.loads(self.rfile.read(n)))
            self.send_response(204)
            self.end_headers()
            done.set()

        def log_message(self, *args):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, got, done, page


needs_chromium = pytest.mark.skipif(shutil.which("chromium") is None,
                                    reason="chromium is not installed (.ci/run installs it)")


def run_browser(url, done):
    """Chromium, headless, on `url` until the page reports (or 90 s)."""
    profile = tempfile.mkdtemp(prefix="keel-chromium-")
    browser = subprocess.Popen(
        ["chromium", "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
         f"--user-data-dir={profile}", url],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        return done.wait(90)
    finally:
        browser.kill()
        browser.wait()
        shutil.rmtree(profile, ignore_errors=True)


@needs_chromium
def test_cors_on_another_origin(s3, keel):
    srv, got, done, page = serve_page()
    origin = f"http://127.0.0.1:{srv.server_address[1]}"
    s3.create_bucket(Bucket="cors-web")
    s3.put_object(Bucket="cors-web", Key="hello.txt", Body=b"hello from keel")
    s3.put_bucket_cors(Bucket="cors-web", CORSConfiguration={"CORSRules": [
        {"AllowedOrigins": [origin], "AllowedMethods": ["GET", "PUT"], "AllowedHeaders": ["*"],
         "ExposeHeaders": ["ETag"], "MaxAgeSeconds": 60}]})
    s3.create_bucket(Bucket="cors-other")
    s3.put_object(Bucket="cors-other", Key="secret.txt", Body=b"not for that page")
    s3.put_bucket_cors(Bucket="cors-other", CORSConfiguration={"CORSRules": [
        {"AllowedOrigins": ["https://somewhere.else"], "AllowedMethods": ["GET"]}]})
    def url(method, bucket, key, **params):
        return s3.generate_presigned_url(method, Params={"Bucket": bucket, "Key": key, **params}, ExpiresIn=600)

    page["html"] = PAGE % {"get": json.dumps(url("get_object", "cors-web", "hello.txt")),
                   # A presigned PUT signs the type the page will send (SigV2 covers Content-Type).
                   "put": json.dumps(url("put_object", "cors-web", "uploaded.txt", ContentType="text/plain")),
                   "refused": json.dumps(url("get_object", "cors-other", "secret.txt"))}
    try:
        assert run_browser(origin + "/", done), "the page never reported"
    finally:
        srv.shutdown()
    assert got["get"][0] == 200 and got["get"][1] == "hello from keel", got
    assert got["get"][2], f"ETag is exposed to the page: {got}"
    assert got["put"] == [200], got
    assert s3.get_object(Bucket="cors-web", Key="uploaded.txt")["Body"].read() == b"from the browser"
    # The browser refuses to hand the page an answer without Access-Control-Allow-Origin.
    assert got["refused"][0] == "error" and "fetch" in got["refused"][1].lower(), got


FORM = """<!doctype html><html><body>
<form id="f" method="post" action="%(action)s" enctype="multipart/form-data">
%(fields)s
<input type="file" name="file">
</form>
<script>
const dt = new DataTransfer();
dt.items.add(new File(["uploaded by a browser form\\n"], "note.txt", {type: "text/plain"}));
const form = document.getElementById('f');
form.querySelector('input[type=file]').files = dt.files;
form.submit();
</script></body></html>"""


@needs_chromium
def test_html_form_upload(s3, keel):
    from conftest import AK, SK
    srv, got, done, page = serve_page()
    origin = f"http://127.0.0.1:{srv.server_address[1]}"
    s3.create_bucket(Bucket="form-web")
    now = datetime.datetime.now(datetime.timezone.utc)
    date = now.strftime("%Y%m%d")
    credential = f"{AK}/{date}/us-east-1/s3/aws4_request"
    policy = base64.b64encode(json.dumps({
        "expiration": (now + datetime.timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "conditions": [{"bucket": "form-web"}, ["starts-with", "$key", "inbox/"],
                       {"success_action_redirect": origin + "/done"},
                       ["starts-with", "$Content-Type", "text/"],
                       {"x-amz-algorithm": "AWS4-HMAC-SHA256"}, {"x-amz-credential": credential},
                       {"x-amz-date": now.strftime("%Y%m%dT%H%M%SZ")},
                       ["content-length-range", 1, 1048576]]}).encode()).decode()
    key = b"AWS4" + SK.encode()
    for part in (date, "us-east-1", "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    fields = {"key": "inbox/${filename}", "success_action_redirect": origin + "/done",
              "Content-Type": "text/plain", "x-amz-algorithm": "AWS4-HMAC-SHA256",
              "x-amz-credential": credential, "x-amz-date": now.strftime("%Y%m%dT%H%M%SZ"),
              "policy": policy, "x-amz-signature": hmac.new(key, policy.encode(), hashlib.sha256).hexdigest()}
    page["html"] = FORM % {
        "action": f"{keel.endpoint}/form-web",
        "fields": "\n".join(f'<input type="hidden" name="{k}" value="{v}">' for k, v in fields.items())}
    try:
        assert run_browser(origin + "/", done), "the browser never came back"
    finally:
        srv.shutdown()
    assert got["bucket"] == ["form-web"] and got["key"] == ["inbox/note.txt"], got
    obj = s3.get_object(Bucket="form-web", Key="inbox/note.txt")
    assert obj["Body"].read() == b"uploaded by a browser form\n"
    assert obj["ContentType"] == "text/plain"
    assert got["etag"] == [obj["ETag"]], got
