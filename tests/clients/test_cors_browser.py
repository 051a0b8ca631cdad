"""CORS with a real browser (issue 18 item 4; DESIGN D50): headless Chromium loads a page from
another origin (a second port on loopback) whose script fetch()es a presigned GET and a
presigned PUT from keel (the PUT is preflighted: a non-simple method with a Content-Type), then
a GET from a bucket whose rules do not name the page's origin, which the browser must refuse.
The page posts what it saw back to the server that served it."""
import http.server
import json
import os
import shutil
import subprocess
import tempfile
import threading

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
    posts at /result."""
    got, page = {}, {"html": ""}
    done = threading.Event()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
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


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed (.ci/run installs it)")
def test_browser_on_another_origin(s3, keel):
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
    profile = tempfile.mkdtemp(prefix="keel-chromium-")
    browser = subprocess.Popen(
        ["chromium", "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
         f"--user-data-dir={profile}", origin + "/"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert done.wait(90), "the page never reported"
    finally:
        browser.kill()
        browser.wait()
        srv.shutdown()
        shutil.rmtree(profile, ignore_errors=True)
    assert got["get"][0] == 200 and got["get"][1] == "hello from keel", got
    assert got["get"][2], f"ETag is exposed to the page: {got}"
    assert got["put"] == [200], got
    assert s3.get_object(Bucket="cors-web", Key="uploaded.txt")["Body"].read() == b"from the browser"
    # The browser refuses to hand the page an answer without Access-Control-Allow-Origin.
    assert got["refused"][0] == "error" and "fetch" in got["refused"][1].lower(), got
