//! Test harness: the real `keel` binary on 127.0.0.1:0 with temporary mountpaths, and a raw
//! HTTP/1.1 client that can sign requests with SigV4.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const AK: &str = "AKIDTEST";
pub const SK: &str = "secret/test+key";

pub struct Server {
    child: Option<Child>,
    pub addr: String,
    pub dir: tempfile::TempDir,
    pub mountpaths: Vec<PathBuf>,
    extra: Vec<String>,
    env: Vec<(String, String)>,
}

impl Server {
    /// Two mountpaths, signed requests (AK/SK), sync always.
    pub fn start() -> Server {
        Server::with_args(&[])
    }

    pub fn anonymous() -> Server {
        Server::with_args(&["--anonymous"])
    }

    /// With environment variables (e.g. `KEEL_FAULTS`) for the server process.
    pub fn with_env(extra: &[&str], env: &[(&str, &str)]) -> Server {
        Server::on(None, extra, env)
    }

    /// On these mountpaths (or two temporary ones), with these arguments and environment.
    pub fn on(mountpaths: Option<Vec<PathBuf>>, extra: &[&str], env: &[(&str, &str)]) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let mountpaths = mountpaths.unwrap_or_else(|| vec![dir.path().join("mp1"), dir.path().join("mp2")]);
        let mut s = Server {
            child: None,
            addr: String::new(),
            dir,
            mountpaths,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        };
        s.spawn();
        s
    }

    pub fn with_args(extra: &[&str]) -> Server {
        Server::with_env(extra, &[])
    }

    fn spawn(&mut self) {
        // Ports outside the kernel's ephemeral range, so a restart never finds its port taken by
        // another test's server bound to port 0 meanwhile; a collision between two tests picking
        // the same port is retried.
        let fixed = !self.addr.is_empty();
        for attempt in 0..50 {
            let addr =
                if fixed { self.addr.clone() } else { format!("127.0.0.1:{}", 20_000 + (pseudo_random() % 10_000)) };
            match self.try_spawn(&addr) {
                Some(child) => {
                    self.addr = addr;
                    self.child = Some(child);
                    return;
                }
                None if attempt < 49 => std::thread::sleep(Duration::from_millis(if fixed { 100 } else { 1 })),
                None => {}
            }
        }
        panic!("keel did not start");
    }

    fn try_spawn(&self, addr: &str) -> Option<Child> {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_keel"));
        cmd.arg("serve").arg("--listen").arg(addr);
        for m in &self.mountpaths {
            cmd.arg("--mountpath").arg(m);
        }
        if !self.extra.iter().any(|a| a == "--threads") {
            cmd.args(["--threads", "2"]);
        }
        if !self.extra.iter().any(|a| a == "--anonymous") {
            cmd.args(["--access-key", AK, "--secret-key", SK]);
        }
        cmd.args(&self.extra);
        cmd.envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        cmd.stdout(Stdio::piped()).stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("spawn keel");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        match lines.next() {
            Some(Ok(first)) if first.contains("listening on http://") => {
                // Keep draining stdout so the server never blocks on a full pipe.
                std::thread::spawn(move || for _ in lines {});
                Some(child)
            }
            _ => {
                // Could not bind (port in use): it exited.
                let _ = child.kill();
                let _ = child.wait();
                None
            }
        }
    }

    /// Starts the (stopped) server again on the same port, with `mountpaths` as they are now.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "still running");
        self.spawn();
    }

    /// Runs `keel serve` with this server's settings to its end (for starts that must fail):
    /// the exit status and stderr.
    pub fn run_serve(&self, env: &[(&str, &str)]) -> (std::process::ExitStatus, String) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_keel"));
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--threads", "1", "--access-key", AK, "--secret-key", SK]);
        for m in &self.mountpaths {
            cmd.arg("--mountpath").arg(m);
        }
        cmd.args(&self.extra);
        cmd.envs(env.iter().copied());
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn keel");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(st) = child.try_wait().expect("wait") {
                let mut err = String::new();
                std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut err).unwrap();
                return (st, err);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("keel serve did not stop by itself");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, wait for exit, start again on the same port and mountpaths.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(st) = child.try_wait().expect("wait") {
                return Some(st);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("keel did not stop within 30 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn clear_env(&mut self) {
        self.env.clear();
    }

    /// Waits (up to 30 s) for the server to exit by itself.
    pub fn wait_exit(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(st) = child.try_wait().expect("wait") {
                return Some(st);
            }
            assert!(Instant::now() < deadline, "keel did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    #[allow(dead_code)]
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    pub fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(&self.addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s.set_nodelay(true).unwrap();
        s
    }

    /// Sends one request (signed unless the server is anonymous) and reads the response.
    pub fn req(&self, method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
        let mut s = self.connect();
        s.write_all(&self.build(method, target, headers, body)).unwrap();
        read_response(&mut s, method == "HEAD")
    }

    /// Sends one request as another user (`Some((ak, sk))`) or unsigned (`None`).
    pub fn req_as(
        &self,
        keys: Option<(&str, &str)>,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Resp {
        let mut hs: Vec<(String, String)> = headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        if !hs.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
            hs.push(("Host".into(), self.addr.clone()));
        }
        hs.push(("Content-Length".into(), body.len().to_string()));
        if let Some(keys) = keys {
            sign_as(method, target, &mut hs, body, "us-east-1", keys);
        }
        let mut s = self.connect();
        s.write_all(&assemble(method, target, &hs, body)).unwrap();
        read_response(&mut s, method == "HEAD")
    }

    /// Builds raw request bytes with Host, Content-Length and a SigV4 signature.
    pub fn build(&self, method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
        let mut hs: Vec<(String, String)> = headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        if !hs.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
            hs.push(("Host".into(), self.addr.clone()));
        }
        if !hs
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-length") || k.eq_ignore_ascii_case("transfer-encoding"))
        {
            hs.push(("Content-Length".into(), body.len().to_string()));
        }
        if !self.extra.iter().any(|a| a == "--anonymous")
            && !hs.iter().any(|(k, _)| k.eq_ignore_ascii_case("authorization"))
        {
            sign(method, target, &mut hs, body);
        }
        assemble(method, target, &hs, body)
    }
}

/// The bytes of a request: request line, headers, blank line, body.
pub fn assemble(method: &str, target: &str, headers: &[(String, String)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("{method} {target} HTTP/1.1\r\n");
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// A client of a server it does not own (for worker threads): request errors are `None`.
pub struct Client {
    addr: String,
}

impl Server {
    pub fn client_for(addr: &str) -> Client {
        Client { addr: addr.to_owned() }
    }
}

impl Client {
    pub fn req(&self, method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Option<Resp> {
        let mut hs: Vec<(String, String)> = headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        hs.push(("Host".into(), self.addr.clone()));
        hs.push(("Content-Length".into(), body.len().to_string()));
        sign(method, target, &mut hs, body);
        let bytes = assemble(method, target, &hs, body);
        let mut s = TcpStream::connect(&self.addr).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
        // A server may answer (and close) before the whole body is sent: read its answer anyway.
        let _ = s.write_all(&bytes);
        try_read_response(&mut s, method == "HEAD")
    }

    /// A whole multipart upload of `content` in two parts; the ETag on success.
    pub fn multipart(&self, path: &str, content: &[u8]) -> Option<Option<String>> {
        let r = self.req("POST", &format!("{path}?uploads"), &[], b"")?;
        let Some(id) = r.xml("UploadId") else { return Some(None) };
        let (a, b) = content.split_at(content.len() / 2);
        let e1 = self.req("PUT", &format!("{path}?partNumber=1&uploadId={id}"), &[], a)?.header("etag")?.to_owned();
        let e2 = self.req("PUT", &format!("{path}?partNumber=2&uploadId={id}"), &[], b)?.header("etag")?.to_owned();
        let doc = format!(
            "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{e1}</ETag></Part><Part><PartNumber>2</PartNumber><ETag>{e2}</ETag></Part></CompleteMultipartUpload>"
        );
        let r = self.req("POST", &format!("{path}?uploadId={id}"), &[], doc.as_bytes())?;
        Some(if r.status == 200 { r.xml("ETag") } else { None })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn pseudo_random() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos());
    h.finish()
}

pub fn amz_now() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let iso = keel::time::iso8601_ms(secs * 1000);
    let b: String = iso[..19].chars().filter(|c| *c != '-' && *c != ':').collect();
    format!("{b}Z")
}

/// Adds x-amz-date, x-amz-content-sha256 and Authorization (SigV4) to `hs`.
pub fn sign(method: &str, target: &str, hs: &mut Vec<(String, String)>, body: &[u8]) {
    sign_in_region(method, target, hs, body, "us-east-1");
}

/// As `sign`, with `region` in the credential scope.
pub fn sign_in_region(method: &str, target: &str, hs: &mut Vec<(String, String)>, body: &[u8], region: &str) {
    sign_as(method, target, hs, body, region, (AK, SK));
}

/// As `sign`, for another user.
pub fn sign_as(
    method: &str,
    target: &str,
    hs: &mut Vec<(String, String)>,
    body: &[u8],
    region: &str,
    keys: (&str, &str),
) {
    use sha2::Digest;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let payload = hex::encode(sha2::Sha256::digest(body));
    keel::s3::auth::sign_v4_client(method, target, hs, &payload, keys, region, now).unwrap();
}

/// A presigned SigV4 URL path-and-query for `target` (signing only `host`, payload unsigned).
pub fn presign_v4(method: &str, target: &str, host: &str, keys: (&str, &str), expires: u64) -> String {
    let date = amz_now();
    let scope = format!("{}/us-east-1/s3/aws4_request", &date[..8]);
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut q = if query.is_empty() { String::new() } else { format!("{query}&") };
    q.push_str(&format!(
        "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={}%2F{}&X-Amz-Date={date}&X-Amz-Expires={expires}&X-Amz-SignedHeaders=host",
        keys.0,
        scope.replace('/', "%2F")
    ));
    let lookup = |n: &str| (n == "host").then(|| host.to_owned());
    let creq = keel::s3::auth::canonical_request(method, path, &q, "host", lookup, "UNSIGNED-PAYLOAD", true).unwrap();
    let sts = keel::s3::auth::string_to_sign(&date, &scope, &creq);
    let key = keel::s3::auth::signing_key(keys.1, &date[..8], "us-east-1", "s3");
    let sig = hex::encode(keel::s3::auth::hmac(&key, sts.as_bytes()));
    format!("{path}?{q}&X-Amz-Signature={sig}")
}

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The text of the first `<tag>` element in the body.
    pub fn xml(&self, tag: &str) -> Option<String> {
        let t = self.text();
        let open = format!("<{tag}>");
        let start = t.find(&open)? + open.len();
        let end = t[start..].find(&format!("</{tag}>"))? + start;
        Some(t[start..end].to_owned())
    }
}

/// Like `read_response`, but `None` when the connection fails.
pub fn try_read_response(s: &mut impl Read, head_only: bool) -> Option<Resp> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte).ok()? != 1 {
            return None;
        }
        head.push(byte[0]);
    }
    let mut all = head;
    let text = String::from_utf8_lossy(&all).into_owned();
    let len: usize = text
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0)))
        .unwrap_or(0);
    let status_ok = !head_only && !text.starts_with("HTTP/1.1 304") && !text.starts_with("HTTP/1.1 204");
    let mut body = vec![0u8; if status_ok { len } else { 0 }];
    s.read_exact(&mut body).ok()?;
    all.extend_from_slice(&body);
    Some(read_response(&mut all.as_slice(), head_only))
}

/// Reads one response (status line, headers, Content-Length body) from the stream.
pub fn read_response(s: &mut impl Read, head_only: bool) -> Resp {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = s.read(&mut byte).expect("read response head");
        assert!(n == 1, "connection closed in the response head: {:?}", String::from_utf8_lossy(&head));
        head.push(byte[0]);
    }
    let text = String::from_utf8(head).expect("ASCII head");
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap();
    let status: u16 = status_line.split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (k, v) = l.split_once(':').unwrap();
            (k.trim().to_owned(), v.trim().to_owned())
        })
        .collect();
    let len: usize =
        headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("content-length")).map_or(0, |(_, v)| v.parse().unwrap());
    let mut body = vec![0u8; if head_only || status == 100 || status == 304 || status == 204 { 0 } else { len }];
    s.read_exact(&mut body).expect("read response body");
    Resp { status, headers, body }
}

/// True if the peer has closed the connection (read returns 0 within the timeout).
pub fn closed(s: &mut TcpStream) -> bool {
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut b = [0u8; 1];
    matches!(s.read(&mut b), Ok(0) | Err(_))
}

/// Every regular file under `dir`, recursively.
pub fn files_under(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files_under(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// Data files across the server's mountpaths.
pub fn data_files(s: &Server) -> usize {
    s.mountpaths.iter().map(|m| files_under(&m.join("objects")).len()).sum()
}

/// A small tmpfs mounted for a test (root only); `None` where mounting is not allowed.
pub struct SmallFs(pub PathBuf);

impl SmallFs {
    pub fn mount(dir: &std::path::Path, mib: u64) -> Option<SmallFs> {
        std::fs::create_dir_all(dir).ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| SmallFs(dir.to_path_buf()))
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// `keel scrub` over a stopped server's mountpaths: whether it found everything sound, and its
/// report.
pub fn scrub(s: &Server) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_keel"))
        .arg("scrub")
        .args(s.mountpaths.iter().flat_map(|m| ["--mountpath".as_ref(), m.as_os_str()]))
        .output()
        .expect("keel scrub runs");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
}
