//! Operating keel: /metrics checked by a Prometheus text parser after a known request mix,
//! bucket properties through the admin endpoint and their effect, and the offline commands.

use std::io::Write;

use crate::common::{Server, files_under, read_response};

fn unsigned_get(s: &Server, path: &str) -> crate::common::Resp {
    let mut c = s.connect();
    c.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes()).unwrap();
    read_response(&mut c, false)
}

fn unsigned_put(s: &Server, path: &str) -> crate::common::Resp {
    let mut c = s.connect();
    c.write_all(format!("PUT {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n").as_bytes()).unwrap();
    read_response(&mut c, false)
}

fn sample(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => 0.0,
        })
        .sum()
}

#[test]
fn metrics_count_a_known_mix() {
    let s = Server::start();
    assert_eq!(s.req("PUT", "/metrix", &[], b"").status, 200);
    for i in 0..3 {
        assert_eq!(s.req("PUT", &format!("/metrix/k{i}"), &[], &[7u8; 1000]).status, 200);
    }
    for _ in 0..2 {
        assert_eq!(s.req("GET", "/metrix/k0", &[], b"").status, 200);
    }
    assert_eq!(s.req("GET", "/metrix/missing", &[], b"").status, 404);
    // A shard counts a request once its answer is written: the client may scrape (on another
    // shard) a moment before the last count lands. Scrape until it has, within 2 s.
    let mut scrape = None;
    for _ in 0..100 {
        let r = unsigned_get(&s, "/metrics");
        assert_eq!(r.status, 200);
        assert!(r.header("content-type").unwrap().starts_with("text/plain"));
        let lines = r.text().lines().map(|l| Ok(l.to_owned())).collect::<Vec<std::io::Result<String>>>();
        let parsed = prometheus_parse::Scrape::parse(lines.into_iter()).expect("valid Prometheus text");
        let settled = sample(&parsed, "keel_requests_total", &[("op", "GetObject"), ("status", "404")]) == 1.0;
        scrape = Some(parsed);
        if settled {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let scrape = scrape.expect("scraped");
    assert_eq!(sample(&scrape, "keel_requests_total", &[("op", "PutObject"), ("status", "200")]), 3.0);
    assert_eq!(sample(&scrape, "keel_requests_total", &[("op", "GetObject"), ("status", "200")]), 2.0);
    assert_eq!(sample(&scrape, "keel_requests_total", &[("op", "GetObject"), ("status", "404")]), 1.0);
    assert_eq!(sample(&scrape, "keel_request_errors_total", &[("op", "GetObject")]), 1.0);
    assert_eq!(sample(&scrape, "keel_received_bytes_total", &[]), 3000.0);
    assert!(sample(&scrape, "keel_sent_bytes_total", &[]) >= 2000.0);
    assert!(sample(&scrape, "keel_index_commits_total", &[]) >= 4.0);
    assert!(sample(&scrape, "keel_mountpath_free_bytes", &[]) > 0.0);
    assert_eq!(sample(&scrape, "keel_mountpath_poisoned", &[]), 0.0);
    let hist = scrape
        .samples
        .iter()
        .find(|x| x.metric == "keel_request_duration_seconds" && x.labels.get("op") == Some("PutObject"));
    assert!(hist.is_some(), "a latency histogram per operation");
    let h = unsigned_get(&s, "/health");
    assert!(h.text().contains("\"status\":\"ok\""));
}

/// Buckets may be called `metrics` or `health`: once one exists, an unsigned request for its
/// path is S3 (an anonymous listing), and the operator endpoints stay under /_keel/.
#[test]
fn buckets_named_like_operator_endpoints_win() {
    let s = Server::anonymous();
    assert_eq!(unsigned_get(&s, "/metrics").status, 200);
    assert!(unsigned_get(&s, "/metrics").text().contains("keel_requests_total"));
    for name in ["metrics", "health"] {
        assert_eq!(unsigned_put(&s, &format!("/{name}")).status, 200);
        let r = unsigned_get(&s, &format!("/{name}"));
        assert_eq!(r.status, 200);
        assert!(r.text().contains("<ListBucketResult"), "{name}: {}", r.text());
    }
    assert!(unsigned_get(&s, "/_keel/metrics").text().contains("keel_requests_total"));
    assert!(unsigned_get(&s, "/_keel/health").text().contains("\"status\":\"ok\""));
}

/// HEAD of an operator endpoint has headers and no body: the next response on the same
/// connection starts where it should.
#[test]
fn head_of_operator_endpoints_has_no_body() {
    let s = Server::start();
    for path in ["/health", "/_keel/health", "/metrics", "/_keel/metrics"] {
        let mut c = s.connect();
        let two = format!("HEAD {path} HTTP/1.1\r\nHost: x\r\n\r\nGET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
        c.write_all(two.as_bytes()).unwrap();
        let head = read_response(&mut c, true);
        assert_eq!(head.status, 200, "{path}");
        let len: usize = head.header("content-length").unwrap().parse().unwrap();
        assert!(len > 0, "{path}: HEAD announces the GET body's length");
        let get = read_response(&mut c, false);
        assert_eq!(get.status, 200, "{path}: the GET after the HEAD parses");
        assert!(!get.body.is_empty());
    }
}

#[test]
fn bucket_properties_round_trip_and_take_effect() {
    let s = Server::start();
    assert_eq!(s.req("PUT", "/propsb", &[], b"").status, 200);
    let r = s.req("GET", "/_keel/buckets/propsb/props", &[], b"");
    assert!(
        r.text().contains("\"checksum\":\"xxhash\"") && r.text().contains("\"validate_on_read\":false"),
        "{}",
        r.text()
    );
    let r = s.req("PUT", "/_keel/buckets/propsb/props?checksum=md5&validate_on_read=true", &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("\"checksum\":\"md5\""));
    assert_eq!(s.req("PUT", "/_keel/buckets/propsb/props?checksum=sha3", &[], b"").status, 400);
    assert_eq!(s.req("PUT", "/_keel/buckets/nope/props?checksum=md5", &[], b"").status, 404);
    // validate_on_read now guards this bucket (the server has no global flag): a flipped byte is a 500.
    let data = vec![5u8; 300_000];
    assert_eq!(s.req("PUT", "/propsb/obj", &[], &data).status, 200);
    assert_eq!(s.req("GET", "/propsb/obj", &[], b"").body, data);
    let file = s
        .mountpaths
        .iter()
        .flat_map(|m| files_under(&m.join("objects")))
        .find(|f| std::fs::read(f).is_ok_and(|d| d == data))
        .unwrap();
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[1000] ^= 1;
    std::fs::write(&file, &bytes).unwrap();
    assert_eq!(s.req("GET", "/propsb/obj", &[], b"").status, 500);
    // The property survives a restart.
    let mut s = s;
    s.restart();
    assert!(s.req("GET", "/_keel/buckets/propsb/props", &[], b"").text().contains("\"checksum\":\"md5\""));
}

#[test]
fn offline_commands() {
    let mut s = Server::start();
    assert_eq!(s.req("PUT", "/offline", &[], b"").status, 200);
    for i in 0..4 {
        assert_eq!(s.req("PUT", &format!("/offline/k{i}"), &[], &[1u8; 1024]).status, 200);
    }
    s.stop();
    let keel = |args: &[&str]| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_keel"));
        c.args(args);
        for m in &s.mountpaths {
            c.arg("--mountpath").arg(m);
        }
        let out = c.output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, out, err) = keel(&["ls"]);
    assert!(ok, "{err}");
    assert!(out.lines().any(|l| l.starts_with("offline") && l.contains(" 4 ") && l.contains("4.00 KiB")), "{out}");
    let (ok, out, _) = keel(&["stat"]);
    assert!(ok && out.contains("MOUNTPATH") && out.contains("1 buckets"), "{out}");
    let (ok, out, err) = keel(&["bucket", "props", "offline", "checksum=crc32c", "versioning=Enabled"]);
    assert!(ok, "{err}");
    assert!(out.contains("\"checksum\":\"crc32c\"") && out.contains("\"versioning\":\"Enabled\""), "{out}");
    let (ok, out, _) = keel(&["bucket", "props", "offline"]);
    assert!(ok && out.contains("\"checksum\":\"crc32c\""), "{out}");
    s.restart();
    assert_eq!(s.req("GET", "/offline?versioning", &[], b"").xml("Status").as_deref(), Some("Enabled"));
}

#[test]
fn config_check_validates_and_masks() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(
        &good,
        "listen = \"127.0.0.1:9000\"\nusers = [\"alice:topsecret\"]\nsync = \"none\"\nmin_part_size = \"1MiB\"\n\
         space_highwm = 80\ncluster = \"http://127.0.0.1:2379\"\nnode_id = \"n1\"\nadvertise = \"http://10.0.0.1:9000\"\n\
         gateway = true\n\n[backends.up]\nprovider = \"s3\"\naccess_key = \"AKUP\"\nsecret_key = \"upsecret\"\n\
         passthrough = true\nparallel_reads = 4\n",
    )
    .unwrap();
    let out =
        std::process::Command::new(env!("CARGO_BIN_EXE_keel")).args(["config", "check"]).arg(&good).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(text.contains("alice:****") && !text.contains("topsecret"), "{text}");
    assert!(text.contains("min_part_size = 1048576") && text.contains("sync = \"none\""), "{text}");
    assert!(text.contains("space_highwm = 80") && text.contains("space_lowwm = 75"), "{text}");
    assert!(text.contains("passthrough = true, parallel_reads = 4") && !text.contains("upsecret"), "{text}");
    assert!(
        text.contains("node_id = \"n1\"")
            && text.contains("cluster_name = \"keel\"")
            && text.contains("lease_ttl = 10")
    );
    assert!(text.contains("gateway = true") && text.contains("redirect = false"), "{text}");
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "listen = \"127.0.0.1:9000\"\n\nthreadz = 4\n").unwrap();
    let out =
        std::process::Command::new(env!("CARGO_BIN_EXE_keel")).args(["config", "check"]).arg(&bad).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 3"), "{}", String::from_utf8_lossy(&out.stderr));
}
