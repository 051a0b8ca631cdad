//! Backend buckets (issue 13): a keel bucket in front of a remote S3 bucket, here a second keel
//! process. Cold and warm reads, one remote GET however many readers, listings of the remote,
//! write-through, and a remote that is gone.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use crate::common::{AK, SK, Server, SmallFs, read_response};

/// The remote's count of answered requests of one operation and status, from its /metrics.
fn remote_count(remote: &Server, op: &str, status: u16) -> u64 {
    let once = || {
        let mut c = remote.connect();
        c.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let r = read_response(&mut c, false);
        let prefix = format!("keel_requests_total{{op=\"{op}\",status=\"{status}\"}} ");
        r.text().lines().find_map(|l| l.strip_prefix(&prefix).map(|n| n.trim().parse().unwrap())).unwrap_or(0)
    };
    // A shard counts a request once its answer is written, a moment after the client (or the
    // front) has it: the count is read until it holds still.
    let mut last = once();
    for _ in 0..40 {
        std::thread::sleep(std::time::Duration::from_millis(25));
        let now = once();
        if now == last {
            return now;
        }
        last = now;
    }
    last
}

/// A front keel whose config names `remote` as backend `up`, with bucket `cache` attached to the
/// remote's bucket `data`.
fn front_of(remote: &Server, timeout_secs: u64) -> (Server, tempfile::TempDir) {
    front_with(remote, timeout_secs, &[])
}

fn front_with(remote: &Server, timeout_secs: u64, extra: &[&str]) -> (Server, tempfile::TempDir) {
    front_on(remote, timeout_secs, extra, (None, &[]), "")
}

/// `front_with` on these mountpaths, with more lines for the backend's table.
fn front_on(
    remote: &Server,
    timeout_secs: u64,
    extra: &[&str],
    (mountpaths, env): (Option<Vec<std::path::PathBuf>>, &[(&str, &str)]),
    table_extra: &str,
) -> (Server, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("keel.toml");
    std::fs::write(
        &cfg,
        format!(
            "backend_timeout = {timeout_secs}\n\n[backends.up]\nprovider = \"s3\"\nendpoint = \"http://{}\"\nregion = \"us-east-1\"\naccess_key = \"{AK}\"\nsecret_key = \"{SK}\"\n{table_extra}",
            remote.addr
        ),
    )
    .unwrap();
    let mut args = vec!["--config", cfg.to_str().unwrap()];
    args.extend_from_slice(extra);
    let front = Server::on(mountpaths, &args, env);
    assert_eq!(front.req("PUT", "/cache", &[], b"").status, 200);
    let r = front.req("PUT", "/_keel/buckets/cache/props?backend=up/data", &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("\"backend\":\"up/data\""), "{}", r.text());
    (front, dir)
}

/// PUTs `n` objects (`object(i)` gives path and body) to `server`, eight at a time.
fn put_many(server: &Server, n: usize, object: fn(usize) -> (String, Vec<u8>)) {
    let workers: Vec<_> = (0..8)
        .map(|w| {
            let addr = server.addr.clone();
            std::thread::spawn(move || {
                let c = Server::client_for(&addr);
                for i in (w..n).step_by(8) {
                    let (path, body) = object(i);
                    assert_eq!(c.req("PUT", &path, &[], &body).expect("put").status, 200, "{path}");
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
}

/// Waits (10 s at most) until `key` is cached in the front's bucket `cache`.
fn wait_cached(front: &Server, key: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = front.req("GET", &format!("/cache?list-type=2&x-keel-cached=true&prefix={key}"), &[], b"");
        if listing_keys(&r.text(), "Key").iter().any(|k| k == key) {
            return;
        }
        assert!(Instant::now() < deadline, "{key} was not cached");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn listing_keys(body: &str, tag: &str) -> Vec<String> {
    body.split(&format!("<{tag}>"))
        .skip(1)
        .filter_map(|s| s.split(&format!("</{tag}>")).next())
        .map(str::to_owned)
        .collect()
}

fn data(n: usize, seed: u32) -> Vec<u8> {
    (0..n as u32).map(|i| (i.wrapping_mul(31).wrapping_add(seed) % 251) as u8).collect()
}

#[test]
fn a_backend_bucket_reads_lists_and_writes_through_its_remote() {
    let remote = Server::start();
    assert_eq!(remote.req("PUT", "/data", &[], b"").status, 200);
    let big = data(3 << 20, 1);
    let small = b"hello from the remote".to_vec();
    assert_eq!(remote.req("PUT", "/data/a.txt", &[("content-type", "text/plain")], &small).status, 200);
    assert_eq!(remote.req("PUT", "/data/dir/b.bin", &[], &big).status, 200);
    assert_eq!(remote.req("PUT", "/data/dir/c.bin", &[], &data(1000, 2)).status, 200);
    let remote_etag = remote.req("HEAD", "/data/dir/b.bin", &[], b"").header("etag").unwrap().to_owned();
    let (front, _cfg) = front_of(&remote, 5);

    // The listing is the remote's, before anything is cached; the cached listing is empty.
    let r = front.req("GET", "/cache?list-type=2", &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(listing_keys(&r.text(), "Key"), ["a.txt", "dir/b.bin", "dir/c.bin"]);
    let r = front.req("GET", "/cache?list-type=2&delimiter=/", &[], b"");
    assert_eq!(listing_keys(&r.text(), "Key"), ["a.txt"]);
    assert_eq!(listing_keys(&r.text(), "Prefix"), ["", "dir/"]);
    let r = front.req("GET", "/cache?list-type=2&max-keys=2", &[], b"");
    assert!(r.text().contains("<IsTruncated>true</IsTruncated>"));
    let token = listing_keys(&r.text(), "NextContinuationToken").pop().unwrap();
    let r = front.req("GET", &format!("/cache?list-type=2&max-keys=2&continuation-token={token}"), &[], b"");
    assert_eq!(listing_keys(&r.text(), "Key"), ["dir/c.bin"]);
    let r = front.req("GET", "/cache?list-type=2&x-keel-cached=true", &[], b"");
    assert_eq!(r.status, 200);
    assert!(listing_keys(&r.text(), "Key").is_empty(), "{}", r.text());

    // A HEAD of an uncached key asks the remote and caches nothing.
    let r = front.req("HEAD", "/cache/a.txt", &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some(small.len().to_string().as_str()));
    assert_eq!(r.header("content-type"), Some("text/plain"));

    // Twenty concurrent cold GETs of one object: one remote GET, every reader gets it whole.
    let gets_before = remote_count(&remote, "GetObject", 200);
    let readers: Vec<_> = (0..20)
        .map(|_| {
            let addr = front.addr.clone();
            std::thread::spawn(move || Server::client_for(&addr).req("GET", "/cache/dir/b.bin", &[], b""))
        })
        .collect();
    for r in readers {
        let r = r.join().unwrap().expect("an answer");
        assert_eq!(r.status, 200);
        assert!(r.body == big, "a reader got other bytes");
        assert_eq!(r.header("etag"), Some(remote_etag.as_str()), "the remote's ETag");
    }
    assert_eq!(remote_count(&remote, "GetObject", 200) - gets_before, 1, "one remote GET for 20 readers");
    // Warm: served locally, the remote not asked.
    let r = front.req("GET", "/cache/dir/b.bin", &[("range", "bytes=1000-1999")], b"");
    assert_eq!(r.status, 206);
    assert!(r.body == big[1000..2000]);
    assert_eq!(remote_count(&remote, "GetObject", 200) - gets_before, 1);
    let r = front.req("GET", "/cache?list-type=2&x-keel-cached=true", &[], b"");
    assert_eq!(listing_keys(&r.text(), "Key"), ["dir/b.bin"]);
    assert_eq!(listing_keys(&r.text(), "ETag"), [remote_etag.replace('"', "&quot;")]);

    // One cold GET streams the object while it is cached; the copy then serves the next GET.
    let stream_body = data(2 << 20, 9);
    assert_eq!(remote.req("PUT", "/data/stream.bin", &[], &stream_body).status, 200);
    let gets = remote_count(&remote, "GetObject", 200);
    let r = front.req("GET", "/cache/stream.bin", &[], b"");
    assert_eq!(r.status, 200);
    assert!(r.body == stream_body, "the streamed body");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = front.req("GET", "/cache?list-type=2&x-keel-cached=true&prefix=stream", &[], b"");
        if listing_keys(&r.text(), "Key") == ["stream.bin"] {
            break;
        }
        assert!(Instant::now() < deadline, "the streamed object was not cached");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(front.req("GET", "/cache/stream.bin", &[], b"").body == stream_body);
    assert_eq!(remote_count(&remote, "GetObject", 200) - gets, 1, "streamed once, then served locally");
    // A ranged cold GET answers its range at once (a ranged remote read) while the whole object
    // is cached behind it (one more remote read); a range past the end is 416 from the copy.
    let c = data(1000, 2);
    let (ranged, whole) = (remote_count(&remote, "GetObject", 206), remote_count(&remote, "GetObject", 200));
    let r = front.req("GET", "/cache/dir/c.bin", &[("range", "bytes=10-19")], b"");
    assert_eq!(r.status, 206);
    assert_eq!(r.header("content-range"), Some("bytes 10-19/1000"));
    assert!(r.body == c[10..20]);
    assert_eq!(remote_count(&remote, "GetObject", 206) - ranged, 1);
    wait_cached(&front, "dir/c.bin");
    assert_eq!(remote_count(&remote, "GetObject", 200) - whole, 1, "the whole object, once, behind the range");
    let r = front.req("GET", "/cache/dir/c.bin", &[("range", "bytes=-5")], b"");
    assert!(r.status == 206 && r.body == c[995..]);
    assert_eq!(remote_count(&remote, "GetObject", 206) - ranged, 1, "later ranges are local");
    assert_eq!(remote.req("PUT", "/data/tail.bin", &[], &c).status, 200);
    let r = front.req("GET", "/cache/tail.bin", &[("range", "bytes=-100")], b"");
    assert!(r.status == 206 && r.body == c[900..], "a cold suffix range");
    let r = front.req("GET", "/cache/tail.bin", &[("range", "bytes=5000-")], b"");
    assert_eq!(r.status, 416, "{}", r.text());
    assert_eq!(r.header("content-range"), Some("bytes */1000"));

    // validate_warm_get: a cached copy is checked against the remote before it is served.
    let stale = b"the cached copy".to_vec();
    assert_eq!(remote.req("PUT", "/data/v.txt", &[], &stale).status, 200);
    assert!(front.req("GET", "/cache/v.txt", &[("range", "bytes=0-")], b"").body == stale);
    wait_cached(&front, "v.txt");
    let fresh = b"changed on the remote".to_vec();
    assert_eq!(remote.req("PUT", "/data/v.txt", &[], &fresh).status, 200);
    assert!(front.req("GET", "/cache/v.txt", &[], b"").body == stale, "off by default: the copy is served");
    let r = front.req("PUT", "/_keel/buckets/cache/props?validate_warm_get=true", &[], b"");
    assert!(r.text().contains("\"validate_warm_get\":true"), "{}", r.text());
    assert!(front.req("GET", "/cache/v.txt", &[], b"").body == fresh, "refetched once changed");
    assert_eq!(remote.req("DELETE", "/data/v.txt", &[], b"").status, 204);
    assert_eq!(front.req("GET", "/cache/v.txt", &[], b"").status, 404, "dropped once deleted remotely");
    let r = front.req("GET", "/cache?list-type=2&x-keel-cached=true&prefix=v", &[], b"");
    assert!(listing_keys(&r.text(), "Key").is_empty(), "{}", r.text());
    assert_eq!(front.req("PUT", "/_keel/buckets/cache/props?validate_warm_get=false", &[], b"").status, 200);

    // A key the remote does not have either.
    assert_eq!(front.req("GET", "/cache/nope", &[], b"").status, 404);

    // Writes go through: the remote has the object, and so does the cache.
    let body = data(100_000, 3);
    let r = front.req("PUT", "/cache/new/x.bin", &[], &body);
    assert_eq!(r.status, 200, "{}", r.text());
    let r = remote.req("GET", "/data/new/x.bin", &[], b"");
    assert_eq!(r.status, 200);
    assert!(r.body == body);
    let gets = remote_count(&remote, "GetObject", 200);
    assert!(front.req("GET", "/cache/new/x.bin", &[], b"").body == body);
    assert_eq!(remote_count(&remote, "GetObject", 200), gets, "a written object is cached");
    // A body that fails its checksum reaches neither side.
    let wrong_md5 = "AAAAAAAAAAAAAAAAAAAAAA==";
    let r = front.req("PUT", "/cache/bad.bin", &[("content-md5", wrong_md5)], &data(50_000, 5));
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(remote.req("GET", "/data/bad.bin", &[], b"").status, 404, "the remote upload was not completed");
    assert_eq!(front.req("GET", "/cache/bad.bin", &[], b"").status, 404);
    // Deletes too.
    assert_eq!(front.req("DELETE", "/cache/new/x.bin", &[], b"").status, 204);
    assert_eq!(remote.req("GET", "/data/new/x.bin", &[], b"").status, 404);
    assert_eq!(front.req("GET", "/cache/new/x.bin", &[], b"").status, 404);

    // A key the remote's client cannot name is refused, on reads and writes, and nothing lands.
    for (method, body) in [("GET", &b""[..]), ("PUT", &b"x"[..])] {
        let r = front.req(method, "/cache/a//b", &[], body);
        assert_eq!(r.status, 400, "{method}: {}", r.text());
        assert!(r.text().contains("InvalidArgument"), "{}", r.text());
    }
    let r = front.req("GET", "/cache?list-type=2&x-keel-cached=true&prefix=a/", &[], b"");
    assert!(listing_keys(&r.text(), "Key").is_empty(), "{}", r.text());

    // Conditional writes are decided by the remote: If-None-Match: * creates once, If-Match
    // replaces only the version named; a failed condition changes neither side.
    let r = front.req("PUT", "/cache/cond.txt", &[("if-none-match", "*")], b"first");
    assert_eq!(r.status, 200, "{}", r.text());
    let r = front.req("PUT", "/cache/cond.txt", &[("if-none-match", "*")], b"second");
    assert_eq!(r.status, 412, "{}", r.text());
    assert_eq!(remote.req("GET", "/data/cond.txt", &[], b"").body, b"first");
    let etag = remote.req("HEAD", "/data/cond.txt", &[], b"").header("etag").unwrap().to_owned();
    let r = front.req("PUT", "/cache/cond.txt", &[("if-match", "\"0123456789abcdef0123456789abcdef\"")], b"third");
    assert_eq!(r.status, 412, "{}", r.text());
    let r = front.req("PUT", "/cache/cond.txt", &[("if-match", etag.as_str())], b"fourth");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(remote.req("GET", "/data/cond.txt", &[], b"").body, b"fourth");
    assert_eq!(front.req("GET", "/cache/cond.txt", &[], b"").body, b"fourth");
    let r = front.req("PUT", "/cache/cond.txt", &[("if-match", "*")], b"fifth");
    assert_eq!(r.status, 501, "{}", r.text());
    let r = front.req("PUT", "/cache/never-there.txt", &[("if-match", etag.as_str())], b"x");
    assert_eq!(r.status, 404, "If-Match on a key the remote lacks: {}", r.text());
    assert_eq!(remote.req("HEAD", "/data/never-there.txt", &[], b"").status, 404);
    // A multipart upload of a key the remote cannot name is refused when it starts, not after
    // its parts.
    let r = front.req("POST", "/cache/a//b?uploads", &[], b"");
    assert_eq!(r.status, 400, "{}", r.text());
    // An unknown backend is refused when attached.
    let r = front.req("PUT", "/_keel/buckets/cache/props?backend=nowhere/data", &[], b"");
    assert_eq!(r.status, 400, "{}", r.text());
}

#[test]
fn a_dead_remote_leaves_cached_objects_readable_and_fails_the_rest_fast() {
    let mut remote = Server::start();
    assert_eq!(remote.req("PUT", "/data", &[], b"").status, 200);
    let warm = data(200_000, 4);
    assert_eq!(remote.req("PUT", "/data/warm", &[], &warm).status, 200);
    assert_eq!(remote.req("PUT", "/data/cold", &[], b"never fetched").status, 200);
    let (front, _cfg) = front_of(&remote, 2);
    assert_eq!(front.req("GET", "/cache/warm", &[], b"").status, 200);
    // Even when asked to validate cached copies, a remote that cannot answer leaves them served.
    assert_eq!(front.req("PUT", "/_keel/buckets/cache/props?validate_warm_get=true", &[], b"").status, 200);
    remote.kill9();

    let r = front.req("GET", "/cache/warm", &[], b"");
    assert_eq!(r.status, 200);
    assert!(r.body == warm);
    for (method, path, body) in
        [("GET", "/cache/cold", &b""[..]), ("PUT", "/cache/new", &b"x"[..]), ("DELETE", "/cache/warm", &b""[..])]
    {
        let t = Instant::now();
        let r = front.req(method, path, &[], body);
        assert!(matches!(r.status, 502..=504), "{method} {path}: {} {}", r.status, r.text());
        assert!(t.elapsed() < Duration::from_secs(10), "{method} {path} took {:?}", t.elapsed());
    }
    // Nothing changed locally: the failed PUT left nothing, the failed DELETE removed nothing.
    let r = front.req("GET", "/cache?list-type=2&x-keel-cached=true", &[], b"");
    assert_eq!(listing_keys(&r.text(), "Key"), ["warm"]);
    let r = front.req("GET", "/cache/warm", &[], b"");
    assert_eq!(r.status, 200);
    let mut c = front.connect();
    c.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let m = read_response(&mut c, false).text();
    assert!(m.contains("keel_backend_errors_total{backend=\"up\"}"), "{m}");
}

/// The remote dies while a cold GET streams: the client sees its connection end before the
/// announced length (never a short body passed off as whole), and nothing is cached.
#[test]
fn a_remote_killed_mid_get_caches_nothing() {
    use std::io::Read;
    let mut remote = Server::start();
    assert_eq!(remote.req("PUT", "/data", &[], b"").status, 200);
    let size = 96 << 20;
    assert_eq!(remote.req("PUT", "/data/huge", &[], &data(size, 7)).status, 200);
    let (front, _cfg) = front_of(&remote, 5);
    let mut c = front.connect();
    c.write_all(&front.build("GET", "/cache/huge", &[], b"")).unwrap();
    // The head and the first bytes, read slowly so the remote is still sending when it dies.
    let mut got = Vec::new();
    let mut buf = vec![0u8; 64 << 10];
    while got.len() < (1 << 20) {
        let n = c.read(&mut buf).unwrap();
        assert!(n > 0, "the stream ended early");
        got.extend_from_slice(&buf[..n]);
    }
    let head_end = got.windows(4).position(|w| w == b"\r\n\r\n").expect("a head") + 4;
    let head = String::from_utf8_lossy(&got[..head_end]).to_string();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.to_ascii_lowercase().contains(&format!("content-length: {size}")), "{head}");
    remote.kill9();
    let mut body = got.len() - head_end;
    loop {
        match c.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => body += n,
        }
    }
    assert!(body < size, "a body cut by the remote's death must end short, not pretend to be whole");
    // Nothing partial was cached: the key is not listed, and a GET (the remote dead) fails.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = front.req("GET", "/cache?list-type=2&x-keel-cached=true", &[], b"");
        assert!(listing_keys(&r.text(), "Key").is_empty(), "a partial object was cached");
        if Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let r = front.req("GET", "/cache/huge", &[], b"");
    assert!(matches!(r.status, 502..=504), "{} {}", r.status, r.text());
}

/// `keel prefetch` fills the cache with a thousand objects (with progress), skips what is cached
/// when run again, and `keel evict` drops the copies but never an object that exists only here.
#[test]
fn prefetch_and_evict() {
    let remote = Server::with_args(&["--sync", "none"]);
    assert_eq!(remote.req("PUT", "/data", &[], b"").status, 200);
    let n = 1000;
    put_many(&remote, n, |i| (format!("/data/ds/{i:04}"), data(1024, i as u32)));
    let (front, _cfg) = front_with(&remote, 10, &["--sync", "none"]);
    let endpoint = format!("http://{}", front.addr);
    let keel = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_keel"))
            .args(args)
            .args(["--endpoint", &endpoint, "--access-key", AK, "--secret-key", SK])
            .output()
            .expect("run keel")
    };
    let gets = remote_count(&remote, "GetObject", 200);
    let out = keel(&["prefetch", "cache", "--prefix", "ds/", "--parallel", "8"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("1000 objects, 0 already cached"), "{err}");
    assert!(err.contains("1000/1000 objects"), "progress: {err}");
    assert_eq!(remote_count(&remote, "GetObject", 200) - gets, n as u64, "each object fetched once");
    // Cached: reads do not reach the remote, and a second prefetch has nothing to do.
    assert!(front.req("GET", "/cache/ds/0123", &[], b"").body == data(1024, 123));
    assert_eq!(remote_count(&remote, "GetObject", 200) - gets, n as u64);
    let out = keel(&["prefetch", "cache", "--prefix", "ds/"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("1000 already cached"));
    // An object only here (written while detached) is never evicted.
    assert_eq!(front.req("PUT", "/_keel/buckets/cache/props?backend=", &[], b"").status, 200);
    assert_eq!(front.req("PUT", "/cache/ds/local-only", &[], b"mine").status, 200);
    assert_eq!(front.req("PUT", "/_keel/buckets/cache/props?backend=up/data", &[], b"").status, 200);
    let out = keel(&["evict", "cache", "--prefix", "ds/"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("\"evicted\":1000"), "{text}");
    let r = front.req("GET", "/cache?list-type=2&x-keel-cached=true&prefix=ds/", &[], b"");
    assert_eq!(listing_keys(&r.text(), "Key"), ["ds/local-only"]);
    // Evicted objects come back from the remote on the next read.
    assert!(front.req("GET", "/cache/ds/0007", &[], b"").body == data(1024, 7));
}

/// A front-node gauge or counter of its one mountpath, from /metrics.
fn mountpath_metric(front: &Server, name: &str) -> u64 {
    let mut c = front.connect();
    c.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let r = read_response(&mut c, false);
    let prefix = format!("{name}{{");
    r.text()
        .lines()
        .find_map(|l| l.strip_prefix(&prefix).and_then(|l| l.split(' ').nth(1)).map(|n| n.trim().parse().unwrap()))
        .unwrap_or_else(|| panic!("no {name} in /metrics: {} {}", r.status, r.text()))
}

#[test]
fn a_full_mountpath_evicts_the_least_recently_read_cached_copies() {
    let holder = tempfile::tempdir().unwrap();
    let Some(fs) = SmallFs::mount(&holder.path().join("small"), 128) else {
        eprintln!("SKIPPED a_full_mountpath_evicts_...: cannot mount a tmpfs here (not root?)");
        return;
    };
    const MIB: usize = 1 << 20;
    let remote = Server::with_args(&["--sync", "none"]);
    assert_eq!(remote.req("PUT", "/data", &[], b"").status, 200);
    for i in 0..16 {
        assert_eq!(remote.req("PUT", &format!("/data/o{i:02}"), &[], &data(3 * MIB, i)).status, 200);
    }
    // 128 MiB: full above 64 MiB, evicted down to 51 MiB.
    let marks = ["--sync", "none", "--threads", "1", "--space-highwm", "50", "--space-lowwm", "40"];
    let (front, _cfg) = front_on(&remote, 10, &marks, (Some(vec![fs.0.join("mp")]), &[]), "");
    let full =
        mountpath_metric(&front, "keel_mountpath_used_bytes") + mountpath_metric(&front, "keel_mountpath_free_bytes");
    let used = || mountpath_metric(&front, "keel_mountpath_used_bytes");
    // What exists only here: a plain bucket's object, and one written into `cache` while detached.
    assert_eq!(front.req("PUT", "/plain", &[], b"").status, 200);
    let mine = data(20 * MIB, 99);
    assert_eq!(front.req("PUT", "/plain/mine", &[], &mine).status, 200);
    assert_eq!(front.req("PUT", "/_keel/buckets/cache/props?backend=", &[], b"").status, 200);
    assert_eq!(front.req("PUT", "/cache/local-only", &[], &data(3 * MIB, 98)).status, 200);
    assert_eq!(front.req("PUT", "/_keel/buckets/cache/props?backend=up/data", &[], b"").status, 200);

    // Ten cold reads (30 MiB) stay under the high watermark; o00 is then read again.
    for i in 0..10 {
        assert_eq!(front.req("GET", &format!("/cache/o{i:02}"), &[], b"").status, 200);
    }
    assert!(used() * 100 < full * 50, "still below the high watermark: {} of {full}", used());
    assert_eq!(mountpath_metric(&front, "keel_mountpath_evicted_objects_total"), 0);
    assert!(front.req("GET", "/cache/o00", &[("range", "bytes=0-0")], b"").status == 206);
    // Five more pass it: the least recently read copies go (o01 first), down to the low one.
    for i in 10..15 {
        assert_eq!(front.req("GET", &format!("/cache/o{i:02}"), &[], b"").status, 200);
    }
    // Down to the low watermark, then settled: the count stays the same across more than one
    // check interval. Slack: the last fill may commit after the pass measured what to free (a
    // streamed GET's copy commits after the client has its bytes): one object, 2.3%.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut evicted = 0;
    loop {
        assert!(Instant::now() < deadline, "not evicted down to the low watermark: {} of {full} used", used());
        if used() * 100 <= full * 43 {
            let n = mountpath_metric(&front, "keel_mountpath_evicted_objects_total");
            if n > 0 && n == evicted {
                break;
            }
            evicted = n;
        }
        std::thread::sleep(Duration::from_millis(1500));
    }
    let r = front.req("GET", "/cache?list-type=2&x-keel-cached=true", &[], b"");
    let cached = listing_keys(&r.text(), "Key");
    assert!(!cached.contains(&"o01".to_owned()), "the oldest copy went: {cached:?}");
    assert!(cached.contains(&"o00".to_owned()), "a copy read again stays: {cached:?}");
    assert!(cached.contains(&"o14".to_owned()), "the newest stays: {cached:?}");
    assert!(cached.contains(&"local-only".to_owned()), "never evicted: {cached:?}");
    assert_eq!(cached.len() as u64, 15 + 1 - evicted, "{cached:?}, {evicted} evicted");
    assert_eq!(mountpath_metric(&front, "keel_mountpath_evicted_bytes_total"), evicted * 3 * MIB as u64);
    // Nothing local-only was lost; evicted objects come back from the remote.
    assert!(front.req("GET", "/plain/mine", &[], b"").body == mine);
    assert!(front.req("GET", "/cache/local-only", &[], b"").body == data(3 * MIB, 98));
    assert!(front.req("GET", "/cache/o01", &[], b"").body == data(3 * MIB, 1));
}

/// `raw` with a body.
fn raw_body(server: &Server, method: &str, target: &str, body: &[u8]) -> crate::common::Resp {
    let mut c = server.connect();
    let head = format!("{method} {target} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n\r\n", server.addr, body.len());
    c.write_all(head.as_bytes()).unwrap();
    c.write_all(body).unwrap();
    read_response(&mut c, false)
}

/// A raw request to `server` with no signature of ours (a presigned URL carries its own).
fn raw(server: &Server, method: &str, target: &str, headers: &[(&str, &str)]) -> crate::common::Resp {
    let mut c = server.connect();
    let mut head = format!("{method} {target} HTTP/1.1\r\nHost: {}\r\n", server.addr);
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    c.write_all(head.as_bytes()).unwrap();
    read_response(&mut c, method == "HEAD")
}

#[test]
fn presigned_requests_for_the_remote_pass_through_and_what_they_read_is_cached() {
    // The "cloud" knows a key keel does not; the URL is presigned for the cloud's own host.
    let cloud = ("CLOUDKEY", "cloud/secret");
    let remote = Server::with_args(&["--user", &format!("{}:{}", cloud.0, cloud.1)]);
    assert_eq!(remote.req_as(Some(cloud), "PUT", "/data", &[], b"").status, 200);
    let body = data(2 << 20, 5);
    let put = remote.req_as(Some(cloud), "PUT", "/data/img/0001.jpg", &[("content-type", "image/jpeg")], &body);
    assert_eq!(put.status, 200);
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("keel.toml");
    std::fs::write(
        &cfg,
        format!(
            "[backends.up]\nprovider = \"s3\"\nendpoint = \"http://{}\"\naccess_key = \"{}\"\nsecret_key = \"{}\"\npassthrough = true\n",
            remote.addr, cloud.0, cloud.1
        ),
    )
    .unwrap();
    let front = Server::with_args(&["--config", cfg.to_str().unwrap(), "--s3-prefix", "/s3"]);
    assert_eq!(front.req("PUT", "/s3/data", &[], b"").status, 200);
    assert_eq!(front.req("PUT", "/_keel/buckets/data/props?backend=up/data", &[], b"").status, 200);
    let presign = |method: &str| {
        let url = crate::common::presign_v4(method, "/data/img/0001.jpg", &remote.addr, cloud, 600);
        format!("/s3{url}")
    };

    // Cold: the remote answers the URL, keel caches what it read.
    let gets = remote_count(&remote, "GetObject", 200);
    let r = raw(&front, "GET", &presign("GET"), &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.body == body);
    assert_eq!(r.header("content-type"), Some("image/jpeg"));
    assert_eq!(remote_count(&remote, "GetObject", 200) - gets, 1);
    let cached = front.req("GET", "/s3/data?list-type=2&x-keel-cached=true", &[], b"");
    assert_eq!(listing_keys(&cached.text(), "Key"), ["img/0001.jpg"]);

    // Warm: the remote is asked for one byte with the same signature, the bytes come from here.
    let probes = remote_count(&remote, "GetObject", 206);
    let r = raw(&front, "GET", &presign("GET"), &[("range", "bytes=100-199")]);
    assert_eq!(r.status, 206, "{}", r.text());
    assert!(r.body == body[100..200]);
    assert_eq!(remote_count(&remote, "GetObject", 200) - gets, 1, "not fetched again");
    assert_eq!(remote_count(&remote, "GetObject", 206) - probes, 1, "the remote vouched for the URL");

    // A URL the remote refuses gets the remote's refusal, cached copy or not.
    let url = presign("GET");
    let forged = format!("{}{}", &url[..url.len() - 1], if url.ends_with('0') { '1' } else { '0' });
    let r = raw(&front, "GET", &forged, &[]);
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.text().contains("SignatureDoesNotMatch"), "{}", r.text());

    // A signing style keel does not know is refused, not guessed.
    let r = raw(&front, "GET", &presign("GET"), &[("x-keel-signed-style", "sideways")]);
    assert_eq!(r.status, 400, "{}", r.text());
    // HEAD passes through.
    let r = raw(&front, "HEAD", &presign("HEAD"), &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some(body.len().to_string().as_str()));
    // PUT too: the remote takes the body, keel keeps a copy with the remote's ETag; a PUT the
    // remote refuses leaves nothing on either side.
    let new = data(3 << 20, 6);
    let put = crate::common::presign_v4("PUT", "/data/new.bin", &remote.addr, cloud, 600);
    let r = raw_body(&front, "PUT", &format!("/s3{put}"), &new);
    assert_eq!(r.status, 200, "{}", r.text());
    let on_remote = remote.req_as(Some(cloud), "GET", "/data/new.bin", &[], b"");
    assert!(on_remote.body == new);
    assert_eq!(r.header("etag"), on_remote.header("etag"));
    let cached = front.req("GET", "/s3/data?list-type=2&x-keel-cached=true", &[], b"");
    assert_eq!(listing_keys(&cached.text(), "Key"), ["img/0001.jpg", "new.bin"]);
    let forged = crate::common::presign_v4("PUT", "/data/forged.bin", &remote.addr, (cloud.0, "not-the-secret"), 600);
    // Small and large bodies: the remote refuses a large one before reading it.
    for body in [&b"nope"[..], &data(3 << 20, 9)[..]] {
        let r = raw_body(&front, "PUT", &format!("/s3{forged}"), body);
        assert_eq!(r.status, 403, "{}", r.text());
        assert!(r.text().contains("SignatureDoesNotMatch"), "{} bytes: {}", body.len(), r.text());
    }
    assert_eq!(remote.req_as(Some(cloud), "HEAD", "/data/forged.bin", &[], b"").status, 404);
    let cached = front.req("GET", "/s3/data?list-type=2&x-keel-cached=true", &[], b"");
    assert_eq!(listing_keys(&cached.text(), "Key"), ["img/0001.jpg", "new.bin"]);

    // Without `passthrough = true` such a URL is just a key keel does not know.
    let (plain, _cfg) = front_with(&remote, 10, &[]);
    let url = crate::common::presign_v4("GET", "/data/img/0001.jpg", &remote.addr, cloud, 600);
    let r = raw(&plain, "GET", &url.replacen("/data/", "/cache/", 1), &[]);
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.text().contains("InvalidAccessKeyId"), "{}", r.text());
}

/// Starts a multipart upload of `parts` to `path` on `front`; returns its id and the completion
/// document.
fn upload_parts(front: &Server, path: &str, parts: &[&[u8]]) -> (String, String) {
    let r = front.req("POST", &format!("{path}?uploads"), &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    let id = r.xml("UploadId").unwrap();
    let mut doc = String::from("<CompleteMultipartUpload>");
    for (i, p) in parts.iter().enumerate() {
        let r = front.req("PUT", &format!("{path}?partNumber={}&uploadId={id}", i + 1), &[], p);
        assert_eq!(r.status, 200, "{}", r.text());
        let etag = r.header("etag").unwrap();
        doc.push_str(&format!("<Part><PartNumber>{}</PartNumber><ETag>{etag}</ETag></Part>", i + 1));
    }
    doc.push_str("</CompleteMultipartUpload>");
    (id, doc)
}

#[test]
fn multipart_uploads_into_a_backend_bucket_reach_the_remote_whole_before_the_200() {
    let mut remote = Server::start();
    assert_eq!(remote.req("PUT", "/data", &[], b"").status, 200);
    let (front, _cfg) = front_with(&remote, 5, &["--min-part-size", "0"]);
    let (a, b, c) = (data(7 << 20, 1), data(7 << 20, 2), data(3 << 20, 3));
    let (id, doc) = upload_parts(&front, "/cache/big.bin", &[&a, &b, &c]);
    let r = front.req("POST", &format!("/cache/big.bin?uploadId={id}"), &[], doc.as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
    // The remote has the whole object (17 MiB: the agent's own multipart upload there).
    let whole = [a.clone(), b.clone(), c.clone()].concat();
    let on_remote = remote.req("GET", "/data/big.bin", &[], b"");
    assert_eq!(on_remote.status, 200);
    assert!(on_remote.body == whole, "the remote's bytes");
    let remote_etag = on_remote.header("etag").unwrap().to_owned();
    assert_eq!(r.xml("ETag").map(|e| e.replace("&quot;", "\"")), Some(remote_etag.clone()), "the remote's ETag");
    // And the copy here serves reads without asking the remote.
    let gets = remote_count(&remote, "GetObject", 200);
    let r = front.req("GET", "/cache/big.bin", &[("range", "bytes=7340030-7340039")], b"");
    assert_eq!(r.status, 206);
    assert!(r.body == whole[7340030..7340040]);
    assert_eq!(remote_count(&remote, "GetObject", 200), gets);
    let r = front.req("GET", "/cache?list-type=2&x-keel-cached=true", &[], b"");
    assert_eq!(listing_keys(&r.text(), "Key"), ["big.bin"]);

    // The remote down at completion: 502-504, nothing here, the upload still open; retried
    // once the remote is back, it completes.
    let (id, doc) = upload_parts(&front, "/cache/later.bin", &[b"first part ", b"second part"]);
    remote.stop();
    let r = front.req("POST", &format!("/cache/later.bin?uploadId={id}"), &[], doc.as_bytes());
    assert!((502..=504).contains(&r.status), "{} {}", r.status, r.text());
    let r = front.req("GET", "/cache?list-type=2&x-keel-cached=true", &[], b"");
    assert_eq!(listing_keys(&r.text(), "Key"), ["big.bin"], "nothing committed here");
    let parts = front.req("GET", &format!("/cache/later.bin?uploadId={id}"), &[], b"");
    assert_eq!(parts.status, 200, "the upload is still open: {}", parts.text());
    remote.start_again();
    let r = front.req("POST", &format!("/cache/later.bin?uploadId={id}"), &[], doc.as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(remote.req("GET", "/data/later.bin", &[], b"").body, b"first part second part");
    // Aborting an upload in a backend bucket is local (nothing reached the remote yet).
    let (id, _) = upload_parts(&front, "/cache/never.bin", &[b"x"]);
    assert_eq!(front.req("DELETE", &format!("/cache/never.bin?uploadId={id}"), &[], b"").status, 204);
    assert_eq!(remote.req("HEAD", "/data/never.bin", &[], b"").status, 404);
    // A conditional completion is not done yet: 501, nothing on the remote, the upload open.
    let (id, doc) = upload_parts(&front, "/cache/cond.bin", &[b"y"]);
    let r = front.req("POST", &format!("/cache/cond.bin?uploadId={id}"), &[("if-none-match", "*")], doc.as_bytes());
    assert_eq!(r.status, 501, "{}", r.text());
    assert_eq!(remote.req("HEAD", "/data/cond.bin", &[], b"").status, 404);
    assert_eq!(front.req("GET", &format!("/cache/cond.bin?uploadId={id}"), &[], b"").status, 200);
}

/// A completion answered the keep-alive way (`KEEL_COMPLETE_KEEPALIVE_MS=0`: from its start):
/// status, head and the chunked body decoded.
fn complete_slowly(front: &Server, path: &str, id: &str, doc: &str) -> (String, Vec<u8>) {
    let mut s = front.connect();
    let target = format!("{path}?uploadId={id}");
    s.write_all(&front.build("POST", &target, &[("connection", "close")], doc.as_bytes())).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("a head");
    let head = String::from_utf8_lossy(&raw[..split]).to_lowercase();
    let (mut rest, mut body) = (&raw[split + 4..], Vec::new());
    loop {
        let eol = rest.windows(2).position(|w| w == b"\r\n").expect("a chunk size");
        let n = usize::from_str_radix(std::str::from_utf8(&rest[..eol]).unwrap(), 16).unwrap();
        if n == 0 {
            break;
        }
        body.extend_from_slice(&rest[eol + 2..eol + 2 + n]);
        rest = &rest[eol + 4 + n..];
    }
    (head, body)
}

#[test]
fn a_long_completion_into_a_backend_bucket_answers_200_then_spaces_then_its_result() {
    let mut remote = Server::start();
    assert_eq!(remote.req("PUT", "/data", &[], b"").status, 200);
    let env = [("KEEL_COMPLETE_KEEPALIVE_MS", "0")];
    let (front, _cfg) = front_on(&remote, 5, &["--min-part-size", "0"], (None, &env), "");
    let (a, b) = (data(6 << 20, 4), data(1 << 20, 5));
    let (id, doc) = upload_parts(&front, "/cache/slow.bin", &[&a, &b]);
    let (head, body) = complete_slowly(&front, "/cache/slow.bin", &id, &doc);
    assert!(head.starts_with("http/1.1 200") && head.contains("transfer-encoding: chunked"), "{head}");
    assert!(!head.contains("content-length"), "{head}");
    let text = String::from_utf8(body).unwrap();
    assert!(text.starts_with(' '), "spaces first: {text:?}");
    assert!(text.trim_start().starts_with("<CompleteMultipartUploadResult"), "no declaration after the spaces: {text}");
    let on_remote = remote.req("GET", "/data/slow.bin", &[], b"");
    assert!(on_remote.body == [a, b].concat(), "the remote has it whole");
    assert!(text.contains(&on_remote.header("etag").unwrap().replace('"', "&quot;")), "{text}");
    // The remote down: still 200 and spaces, then S3's error document; the upload stays open.
    let (id, doc) = upload_parts(&front, "/cache/down.bin", &[b"one ", b"two"]);
    remote.stop();
    let (head, body) = complete_slowly(&front, "/cache/down.bin", &id, &doc);
    assert!(head.starts_with("http/1.1 200"), "{head}");
    let text = String::from_utf8(body).unwrap();
    assert!(text.trim_start().starts_with("<Error><Code>"), "{text}");
    assert!(text.contains("<RequestId>") && text.contains("<Resource>/cache/down.bin</Resource>"), "{text}");
    assert_eq!(front.req("GET", &format!("/cache/down.bin?uploadId={id}"), &[], b"").status, 200, "still open");
    remote.start_again();
    let (_, body) = complete_slowly(&front, "/cache/down.bin", &id, &doc);
    assert!(String::from_utf8_lossy(&body).contains("<CompleteMultipartUploadResult"));
    assert_eq!(remote.req("GET", "/data/down.bin", &[], b"").body, b"one two");
}

#[test]
fn copies_into_and_out_of_a_backend_bucket() {
    let remote = Server::start();
    assert_eq!(remote.req("PUT", "/data", &[], b"").status, 200);
    let cold = data(3 << 20, 7);
    assert_eq!(remote.req("PUT", "/data/cold.bin", &[("content-type", "text/csv")], &cold).status, 200);
    let (front, _cfg) = front_with(&remote, 5, &["--min-part-size", "0"]);
    assert_eq!(front.req("PUT", "/plain", &[], b"").status, 200);
    let local = data(1 << 20, 8);
    assert_eq!(front.req("PUT", "/plain/local.bin", &[], &local).status, 200);

    // Out of a backend bucket, the source not cached: fetched, then copied (not a 404).
    let r = front.req("PUT", "/plain/from-remote.bin", &[("x-amz-copy-source", "/cache/cold.bin")], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(front.req("GET", "/plain/from-remote.bin", &[], b"").body == cold);
    // Into it, from a plain bucket: the remote gets it, with the remote's ETag kept here.
    let r = front.req("PUT", "/cache/copied.bin", &[("x-amz-copy-source", "/plain/local.bin")], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    let on_remote = remote.req("GET", "/data/copied.bin", &[], b"");
    assert!(on_remote.body == local);
    let etag = r.xml("ETag").unwrap().replace("&quot;", "\"");
    assert_eq!(Some(etag.as_str()), on_remote.header("etag"));
    // Within it, with REPLACE metadata: the remote's copy has the new type.
    let r = front.req(
        "PUT",
        "/cache/renamed.csv",
        &[
            ("x-amz-copy-source", "/cache/cold.bin"),
            ("x-amz-metadata-directive", "REPLACE"),
            ("content-type", "text/plain"),
        ],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let on_remote = remote.req("GET", "/data/renamed.csv", &[], b"");
    assert!(on_remote.body == cold);
    assert_eq!(on_remote.header("content-type"), Some("text/plain"));
    // UploadPartCopy into it: parts copied here, the object sent at completion.
    let r = front.req("POST", "/cache/assembled.bin?uploads", &[], b"");
    let id = r.xml("UploadId").unwrap();
    let r = front.req(
        "PUT",
        &format!("/cache/assembled.bin?partNumber=1&uploadId={id}"),
        &[("x-amz-copy-source", "/plain/local.bin")],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let etag = r.xml("ETag").unwrap().replace("&quot;", "\"");
    let doc = format!(
        "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{etag}</ETag></Part></CompleteMultipartUpload>"
    );
    let r = front.req("POST", &format!("/cache/assembled.bin?uploadId={id}"), &[], doc.as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(remote.req("GET", "/data/assembled.bin", &[], b"").body == local);
    // A conditional copy into a backend bucket is refused, not half done.
    let r =
        front.req("PUT", "/cache/cond.bin", &[("x-amz-copy-source", "/plain/local.bin"), ("if-none-match", "*")], b"");
    assert_eq!(r.status, 501, "{}", r.text());
    assert_eq!(remote.req("HEAD", "/data/cond.bin", &[], b"").status, 404);
}

#[test]
fn a_large_cold_object_is_read_in_ranged_parts_at_once_when_asked() {
    let remote = Server::with_args(&["--sync", "none"]);
    assert_eq!(remote.req("PUT", "/data", &[], b"").status, 200);
    let big = data(70 << 20, 11);
    assert_eq!(remote.req("PUT", "/data/big.bin", &[], &big).status, 200);
    let (front, _cfg) = front_on(&remote, 10, &["--sync", "none"], (None, &[]), "parallel_reads = 3\n");
    let (whole, ranged) = (remote_count(&remote, "GetObject", 200), remote_count(&remote, "GetObject", 206));
    let r = front.req("GET", "/cache/big.bin", &[], b"");
    assert_eq!(r.status, 200);
    assert!(r.body == big, "the parts in order");
    wait_cached(&front, "big.bin");
    // The first answer carries the first 16 MiB; the other 54 MiB come as four ranged reads.
    assert_eq!(remote_count(&remote, "GetObject", 200) - whole, 1);
    assert_eq!(remote_count(&remote, "GetObject", 206) - ranged, 4);
    assert!(
        front.req("GET", "/cache/big.bin", &[("range", "bytes=33554430-33554439")], b"").body
            == big[33554430..33554440]
    );
    let etag = remote.req("HEAD", "/data/big.bin", &[], b"").header("etag").unwrap().to_owned();
    assert_eq!(front.req("HEAD", "/cache/big.bin", &[], b"").header("etag"), Some(etag.as_str()));
    // The remote killed while the parts are read (the client reading slowly, so they are not
    // all in): the client's body ends short, nothing is cached.
    use std::io::Read;
    let mut remote = remote;
    assert_eq!(remote.req("PUT", "/data/big2.bin", &[], &big).status, 200);
    let mut c = front.connect();
    c.write_all(&front.build("GET", "/cache/big2.bin", &[], b"")).unwrap();
    let (mut got, mut buf) = (0usize, vec![0u8; 64 << 10]);
    while got < (1 << 20) {
        let n = c.read(&mut buf).unwrap();
        assert!(n > 0, "the stream ended early");
        got += n;
    }
    remote.kill9();
    loop {
        match c.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    assert!(got < big.len(), "a body cut by the remote's death ends short");
    std::thread::sleep(Duration::from_millis(500));
    let r = front.req("GET", "/cache?list-type=2&x-keel-cached=true", &[], b"");
    assert_eq!(listing_keys(&r.text(), "Key"), ["big.bin"], "nothing partial cached");
}

#[test]
fn a_delimited_listing_skips_past_a_large_common_prefix() {
    let remote = Server::with_args(&["--sync", "none"]);
    assert_eq!(remote.req("PUT", "/data", &[], b"").status, 200);
    put_many(&remote, 6000, |i| (format!("/data/big/{i:05}"), b"x".to_vec()));
    for k in ["a.txt", "z.txt", "zz/1", "zz/2"] {
        assert_eq!(remote.req("PUT", &format!("/data/{k}"), &[], b"y").status, 200);
    }
    let (front, _cfg) = front_with(&remote, 10, &[]);
    let lists = remote_count(&remote, "ListObjectsV2", 200);
    let r = front.req("GET", "/cache?list-type=2&delimiter=/", &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(listing_keys(&r.text(), "Key"), ["a.txt", "z.txt"]);
    assert_eq!(listing_keys(&r.text(), "Prefix"), ["", "big/", "zz/"]);
    // About a remote page of big/'s keys, then a listing that starts after big/: 2 or 3 remote
    // calls (the dropped listing's next page may be cut before the remote counts it), not the 7
    // that reading all 6,000 keys takes.
    let calls = remote_count(&remote, "ListObjectsV2", 200) - lists;
    assert!((2..=3).contains(&calls), "{calls} remote list calls");
    // Paging with a continuation inside the rolled prefix still works.
    let r = front.req("GET", "/cache?list-type=2&delimiter=/&max-keys=2", &[], b"");
    assert_eq!(listing_keys(&r.text(), "Key"), ["a.txt"]);
    assert_eq!(listing_keys(&r.text(), "Prefix"), ["", "big/"]);
    let token = listing_keys(&r.text(), "NextContinuationToken").pop().unwrap();
    let r =
        front.req("GET", &format!("/cache?list-type=2&delimiter=/&max-keys=2&continuation-token={token}"), &[], b"");
    assert_eq!(listing_keys(&r.text(), "Key"), ["z.txt"]);
    assert_eq!(listing_keys(&r.text(), "Prefix"), ["", "zz/"]);
}

/// What a backend bucket's remote would not get is refused, never kept only here: tags,
/// versions, object lock, lifecycle rules (501); nothing reaches the remote.
#[test]
fn a_backend_bucket_refuses_tags_versions_and_lifecycle_rules() {
    let remote = Server::start();
    assert_eq!(remote.req("PUT", "/data", &[], b"").status, 200);
    let (front, _cfg) = front_of(&remote, 5);
    let refused = |r: crate::common::Resp, what: &str| {
        assert_eq!((r.status, r.xml("Code").as_deref()), (501, Some("NotImplemented")), "{what}: {}", r.text());
    };
    refused(front.req("PUT", "/cache/t", &[("x-amz-tagging", "a=b")], b"x"), "PUT with tags");
    refused(front.req("POST", "/cache/t?uploads", &[("x-amz-tagging", "a=b")], b""), "an upload with tags");
    assert_eq!(front.req("PUT", "/cache/plain", &[], b"x").status, 200);
    let tagging = b"<Tagging><TagSet><Tag><Key>a</Key><Value>b</Value></Tag></TagSet></Tagging>";
    refused(front.req("PUT", "/cache/plain?tagging", &[], tagging), "PutObjectTagging");
    let versioning = b"<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>";
    refused(front.req("PUT", "/cache?versioning", &[], versioning), "versioning");
    let rules = b"<LifecycleConfiguration><Rule><ID>r</ID><Prefix></Prefix><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule></LifecycleConfiguration>";
    refused(front.req("PUT", "/cache?lifecycle", &[], rules), "lifecycle");
    assert_eq!(remote.req("HEAD", "/data/t", &[], b"").status, 404);
    assert!(!remote.req("GET", "/data/plain?tagging", &[], b"").text().contains("<Tag>"));
}
