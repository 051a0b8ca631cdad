//! Buckets, restarts, shutdown, configuration shapes (prefix, anonymous, generated credentials).

use crate::common::Server;

#[test]
fn bucket_lifecycle() {
    let s = Server::start();
    assert_eq!(s.req("PUT", "/life", &[], b"").status, 200);
    // Creating a bucket you own succeeds in us-east-1 (S3's legacy behaviour there).
    assert_eq!(s.req("PUT", "/life", &[], b"").status, 200);
    let cfg =
        b"<CreateBucketConfiguration><LocationConstraint>eu-west-1</LocationConstraint></CreateBucketConfiguration>";
    assert_eq!(s.req("PUT", "/life2", &[], cfg).status, 200);
    assert_eq!(s.req("PUT", "/life3", &[], b"<NotAConfig/>").xml("Code").as_deref(), Some("MalformedXML"));
    let h = s.req("HEAD", "/life", &[], b"");
    assert_eq!((h.status, h.header("x-amz-bucket-region")), (200, Some("us-east-1")));
    assert_eq!(s.req("HEAD", "/nolife", &[], b"").status, 404);
    assert!(
        s.req("GET", "/life?location", &[], b"")
            .text()
            .contains("<LocationConstraint xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"/>")
    );
    // Versioning has no Status until first set.
    let v = s.req("GET", "/life?versioning", &[], b"");
    assert!(!v.text().contains("Status"));
    let doc = b"<VersioningConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Status>Enabled</Status></VersioningConfiguration>";
    assert_eq!(s.req("PUT", "/life?versioning", &[], doc).status, 200);
    assert_eq!(s.req("GET", "/life?versioning", &[], b"").xml("Status").as_deref(), Some("Enabled"));
    // A non-empty bucket cannot be deleted; in a versioned bucket a delete leaves a marker
    // and the version, which count too, until they are deleted by version.
    let put = s.req("PUT", "/life/k", &[], b"x");
    assert_eq!(put.status, 200);
    let r = s.req("DELETE", "/life", &[], b"");
    assert_eq!((r.status, r.xml("Code").as_deref()), (409, Some("BucketNotEmpty")));
    let marker = s.req("DELETE", "/life/k", &[], b"");
    assert_eq!(marker.status, 204);
    assert_eq!(s.req("DELETE", "/life", &[], b"").status, 409);
    for v in [put.header("x-amz-version-id").unwrap(), marker.header("x-amz-version-id").unwrap()] {
        assert_eq!(s.req("DELETE", &format!("/life/k?versionId={v}"), &[], b"").status, 204);
    }
    assert_eq!(s.req("DELETE", "/life", &[], b"").status, 204);
    assert_eq!(s.req("DELETE", "/life", &[], b"").xml("Code").as_deref(), Some("NoSuchBucket"));
    let list = s.req("GET", "/", &[], b"");
    assert!(list.text().contains("<Name>life2</Name>") && !list.text().contains("<Name>life</Name>"));
}

#[test]
fn data_survives_restart_and_sigterm_exits_zero() {
    let mut s = Server::start();
    assert_eq!(s.req("PUT", "/persist", &[], b"").status, 200);
    let doc = b"<VersioningConfiguration><Status>Suspended</Status></VersioningConfiguration>";
    assert_eq!(s.req("PUT", "/persist?versioning", &[], doc).status, 200);
    let big = vec![9u8; 1 << 20];
    for i in 0..20 {
        let body: &[u8] = if i % 2 == 0 { b"small" } else { &big };
        assert_eq!(s.req("PUT", &format!("/persist/k{i}"), &[], body).status, 200);
    }
    let st = s.stop().unwrap();
    assert!(st.success(), "SIGTERM exit status {st:?}");
    s.restart();
    for i in 0..20 {
        let r = s.req("GET", &format!("/persist/k{i}"), &[], b"");
        assert_eq!(r.status, 200);
        assert_eq!(r.body.len(), if i % 2 == 0 { 5 } else { 1 << 20 });
    }
    assert_eq!(s.req("GET", "/persist?versioning", &[], b"").xml("Status").as_deref(), Some("Suspended"));
}

#[test]
fn acknowledged_writes_survive_kill9() {
    let mut s = Server::start();
    assert_eq!(s.req("PUT", "/kill9", &[], b"").status, 200);
    let big = vec![5u8; 300_000];
    for i in 0..10 {
        assert_eq!(s.req("PUT", &format!("/kill9/o{i}"), &[], &big).status, 200);
    }
    s.kill9();
    s.restart();
    for i in 0..10 {
        assert_eq!(s.req("GET", &format!("/kill9/o{i}"), &[], b"").body, big);
    }
}

#[test]
fn s3_prefix_serves_under_path() {
    let s = Server::with_args(&["--s3-prefix", "/s3"]);
    assert_eq!(s.req("PUT", "/s3/pre", &[], b"").status, 200);
    assert_eq!(s.req("PUT", "/s3/pre/k", &[], b"v").status, 200);
    assert_eq!(s.req("GET", "/s3/pre/k", &[], b"").body, b"v");
    assert!(s.req("GET", "/s3", &[], b"").text().contains("<Name>pre</Name>"));
    assert_eq!(s.req("GET", "/pre/k", &[], b"").status, 404);
}

#[test]
fn health_endpoint() {
    let s = Server::start();
    let mut c = s.connect();
    use std::io::Write;
    c.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let r = crate::common::read_response(&mut c, false);
    assert_eq!(r.status, 200);
    assert!(r.text().contains("\"status\":\"ok\""));
}

#[test]
fn generated_credentials_are_stored_privately() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let mp = dir.path().join("data");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_keel"))
        .args(["serve", "--listen", "127.0.0.1:0", "--threads", "1", "--mountpath"])
        .arg(&mp)
        .env_remove("KEEL_ACCESS_KEY")
        .env_remove("KEEL_SECRET_KEY")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = String::new();
    let mut r = std::io::BufReader::new(child.stdout.take().unwrap());
    use std::io::BufRead;
    while !out.contains("try:") {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap() == 0 {
            break;
        }
        out.push_str(&line);
    }
    let _ = child.kill();
    let _ = child.wait();
    let f = mp.join("keel-credentials");
    let meta = std::fs::metadata(&f).expect("credentials file");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let text = std::fs::read_to_string(&f).unwrap();
    let ak = text.lines().find_map(|l| l.strip_prefix("access_key = ")).unwrap().trim_matches('"');
    assert!(out.contains(ak), "banner shows the access key: {out}");
    assert!(out.contains("aws --endpoint-url"));
}

#[test]
fn a_second_server_cannot_share_the_port() {
    let s = Server::start();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_keel"))
        .args(["serve", "--listen", &s.addr, "--threads", "2", "--anonymous", "--mountpath"])
        .arg(s.dir.path().join("other"))
        .output()
        .unwrap();
    assert!(!out.status.success(), "a second keel bound {} too", s.addr);
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot listen"));
    assert_eq!(s.req("GET", "/", &[], b"").status, 200);
}

#[test]
fn virtual_hosted_style_with_a_domain() {
    let s = Server::with_args(&["--domain", "s3.test"]);
    let host = format!("vhost.s3.test:{}", s.addr.rsplit(':').next().unwrap());
    let h = [("Host", host.as_str())];
    assert_eq!(s.req("PUT", "/", &h, b"").status, 200);
    assert_eq!(s.req("PUT", "/dir/key", &h, b"virtual").status, 200);
    assert_eq!(s.req("GET", "/dir/key", &h, b"").body, b"virtual");
    // Path style still works on the same server.
    assert_eq!(s.req("GET", "/vhost/dir/key", &[], b"").body, b"virtual");
    assert!(s.req("GET", "/?list-type=2", &h, b"").text().contains("<Key>dir/key</Key>"));
    // SigV2 (s3cmd, boto3's default presigned URLs) signs /bucket/key although the path is /key.
    use hmac::Mac;
    let date = httpdate::fmt_http_date(std::time::SystemTime::now());
    let v2 = |resource: &str| {
        let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(crate::common::SK.as_bytes()).unwrap();
        mac.update(format!("GET\n\n\n{date}\n{resource}").as_bytes());
        let sig = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, mac.finalize().into_bytes());
        format!("AWS {}:{sig}", crate::common::AK)
    };
    let signed = v2("/vhost/dir/key");
    let r = s.req("GET", "/dir/key", &[("Host", host.as_str()), ("Date", &date), ("Authorization", &signed)], b"");
    assert_eq!((r.status, r.body.as_slice()), (200, &b"virtual"[..]), "{}", r.text());
    let wrong = v2("/dir/key");
    let r = s.req("GET", "/dir/key", &[("Host", host.as_str()), ("Date", &date), ("Authorization", &wrong)], b"");
    assert_eq!(r.xml("Code").as_deref(), Some("SignatureDoesNotMatch"));
}
