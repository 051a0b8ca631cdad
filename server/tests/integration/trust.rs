//! What an attacker or a confused client must not get: unsigned headers riding on signed
//! requests, the admin endpoint, bucket names, private objects of public buckets, features that
//! silently did not happen.

use std::io::Write;

use crate::common::{AK, SK, Server, presign_v4, read_response};

const OTHER: (&str, &str) = ("OTHERUSER", "other/secret");
const ADMIN: (&str, &str) = ("ADMINUSER", "admin/secret");

fn two_users() -> Server {
    Server::with_args(&["--user", "OTHERUSER:other/secret", "--user", "ADMINUSER:admin/secret", "--admin", "ADMINUSER"])
}

/// Sends raw request bytes and reads the answer.
fn send(s: &Server, raw: &[u8], head: bool) -> crate::common::Resp {
    let mut c = s.connect();
    c.write_all(raw).unwrap();
    read_response(&mut c, head)
}

/// A signed request's bytes with `extra` headers added after signing (unsigned).
fn signed_plus(s: &Server, method: &str, target: &str, body: &[u8], extra: &[(&str, &str)]) -> Vec<u8> {
    let signed = s.build(method, target, &[], body);
    let head_end = signed.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 2;
    let mut out = signed[..head_end].to_vec();
    for (k, v) in extra {
        out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
    }
    out.extend_from_slice(&signed[head_end..]);
    out
}

#[test]
fn headers_a_signature_does_not_cover_are_refused() {
    let s = Server::start();
    assert_eq!(s.req("PUT", "/sigpriv", &[], b"").status, 200);
    assert_eq!(s.req("PUT", "/sigpriv/secret", &[], b"top secret").status, 200);
    assert_eq!(s.req("PUT", "/sigpub", &[("x-amz-acl", "public-read")], b"").status, 200);

    // A captured, header-signed PUT replayed with an unsigned x-amz-copy-source would copy the
    // private object into the public bucket.
    for (name, value) in [
        ("x-amz-copy-source", "/sigpriv/secret"),
        ("x-amz-acl", "public-read"),
        ("x-amz-metadata-directive", "REPLACE"),
        ("x-amz-meta-owner", "mallory"),
        ("x-amz-server-side-encryption", "AES256"),
        ("x-amz-tagging", "a=b"),
        ("x-amz-grant-read", "uri=\"http://acs.amazonaws.com/groups/global/AllUsers\""),
        ("x-amz-storage-class", "STANDARD"),
        ("X-Amz-Checksum-Crc32", "AAAAAA=="),
    ] {
        let r = send(&s, &signed_plus(&s, "PUT", "/sigpub/copy", b"x", &[(name, value)]), false);
        assert_eq!((r.status, r.xml("Code").as_deref()), (403, Some("AccessDenied")), "{name}: {}", r.text());
        assert!(r.text().contains("There were headers present in the request which were not signed"));
        assert_eq!(r.xml("HeadersNotSigned").as_deref(), Some(name.to_ascii_lowercase().as_str()));
    }
    assert_eq!(s.req("HEAD", "/sigpub/copy", &[], b"").status, 404, "nothing was written");

    // Host must be signed too: a signature over the other headers only, Host added after.
    let mut hs = Vec::new();
    let empty = keel::s3::auth::EMPTY_SHA256;
    keel::s3::auth::sign_v4_client("GET", "/sigpriv", &mut hs, empty, (AK, SK), "us-east-1", now()).unwrap();
    let mut raw = format!("GET /sigpriv HTTP/1.1\r\nHost: {}\r\n", s.addr);
    for (k, v) in &hs {
        raw.push_str(&format!("{k}: {v}\r\n"));
    }
    raw.push_str("\r\n");
    let r = send(&s, raw.as_bytes(), false);
    assert_eq!((r.status, r.xml("HeadersNotSigned").as_deref()), (403, Some("host")), "{}", r.text());

    // A presigned PUT URL plus an unsigned x-amz-copy-source: refused, nothing copied.
    let url = presign_v4("PUT", "/sigpub/viaurl", &s.addr, (AK, SK), 300);
    let raw = format!(
        "PUT {url} HTTP/1.1\r\nHost: {}\r\nContent-Length: 0\r\nx-amz-copy-source: /sigpriv/secret\r\n\r\n",
        s.addr
    );
    let r = send(&s, raw.as_bytes(), false);
    assert_eq!((r.status, r.xml("HeadersNotSigned").as_deref()), (403, Some("x-amz-copy-source")), "{}", r.text());
    assert_eq!(s.req("HEAD", "/sigpub/viaurl", &[], b"").status, 404);
    // The same URL without the extra header does what it was signed for.
    let raw = format!("PUT {url} HTTP/1.1\r\nHost: {}\r\nContent-Length: 3\r\n\r\nabc", s.addr);
    assert_eq!(send(&s, raw.as_bytes(), false).status, 200);
    assert_eq!(s.req("GET", "/sigpub/viaurl", &[], b"").body, b"abc");
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

#[test]
fn the_admin_endpoint_answers_only_the_owner_or_an_admin() {
    let s = two_users();
    assert_eq!(s.req("PUT", "/adm", &[], b"").status, 200);
    let props = "/_keel/buckets/adm/props";
    // Unsigned, even from loopback (a reverse proxy on the host would make that everyone).
    let r = s.req_as(None, "PUT", &format!("{props}?acl=public-read"), &[], b"");
    assert_eq!(r.status, 403, "{}", r.text());
    let r = s.req_as(None, "GET", props, &[], b"");
    assert_eq!(r.status, 403);
    assert!(!r.text().contains(AK), "the owner's key is not revealed");
    // Another user: refused.
    assert_eq!(s.req_as(Some(OTHER), "GET", props, &[], b"").status, 403);
    assert_eq!(s.req_as(Some(OTHER), "PUT", &format!("{props}?acl=public-read"), &[], b"").status, 403);
    // A wrong signature: refused.
    assert_eq!(s.req_as(Some((AK, "wrong")), "GET", props, &[], b"").status, 403);
    // The bucket stayed private.
    assert_eq!(s.req_as(None, "GET", "/adm", &[], b"").status, 403);
    // Its owner and an admin may.
    let r = s.req_as(Some((AK, SK)), "GET", props, &[], b"");
    assert_eq!(r.status, 200);
    assert!(r.text().contains("\"acl\":\"private\""), "{}", r.text());
    let r = s.req_as(Some(ADMIN), "PUT", &format!("{props}?acl=public-read"), &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(s.req_as(None, "GET", "/adm", &[], b"").status, 200, "public-read lets anyone list");

    // The CLI signs: with the owner's keys it works, with another user's it is refused.
    let cli = |keys: (&str, &str), setting: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_keel"))
            .args([
                "bucket",
                "props",
                "adm",
                setting,
                "--endpoint",
                &s.addr,
                "--access-key",
                keys.0,
                "--secret-key",
                keys.1,
            ])
            .env_remove("AWS_ACCESS_KEY_ID")
            .output()
            .unwrap()
    };
    let out = cli((AK, SK), "acl=private");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"acl\":\"private\""));
    let out = cli(OTHER, "acl=public-read");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("403"), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(s.req_as(None, "GET", "/adm", &[], b"").status, 403);
}

#[test]
fn bucket_names_do_not_leak_to_anonymous_callers() {
    let s = two_users();
    assert_eq!(s.req("PUT", "/taken", &[], b"").status, 200);
    let r = s.req_as(None, "PUT", "/taken", &[], b"");
    assert_eq!((r.status, r.xml("Code").as_deref()), (403, Some("AccessDenied")));
    let r = s.req_as(None, "PUT", "/free-name", &[], b"");
    assert_eq!((r.status, r.xml("Code").as_deref()), (403, Some("AccessDenied")));
    // Signed callers may learn it: someone else's is BucketAlreadyExists, their own is 200 in
    // us-east-1 (S3's legacy behaviour there), and it is not reset.
    let r = s.req_as(Some(OTHER), "PUT", "/taken", &[], b"");
    assert_eq!((r.status, r.xml("Code").as_deref()), (409, Some("BucketAlreadyExists")));
    assert_eq!(s.req("PUT", "/taken/k", &[], b"kept").status, 200);
    assert_eq!(s.req("PUT", "/taken", &[], b"").status, 200);
    assert_eq!(s.req("GET", "/taken/k", &[], b"").body, b"kept");
    // ... and it resets the bucket's ACL to the one named, as S3 does there.
    assert_eq!(s.req("PUT", "/taken", &[("x-amz-acl", "public-read")], b"").status, 200);
    assert_eq!(s.req_as(None, "GET", "/taken?list-type=2", &[], b"").status, 200);
    assert_eq!(s.req("PUT", "/taken", &[], b"").status, 200);
    assert_eq!(s.req_as(None, "GET", "/taken?list-type=2", &[], b"").status, 403);
    assert_eq!(s.req("GET", "/taken/k", &[], b"").body, b"kept");
    // Reads of a missing bucket say so, to anyone (as S3 does).
    let r = s.req_as(None, "GET", "/no-such-bucket/k", &[], b"");
    assert_eq!((r.status, r.xml("Code").as_deref()), (404, Some("NoSuchBucket")));
    assert_eq!(s.req_as(None, "HEAD", "/no-such-bucket", &[], b"").status, 404);
}

#[test]
fn own_bucket_outside_us_east_1_is_already_owned() {
    let s = Server::with_args(&["--region", "eu-west-1"]);
    assert_eq!(s.req("PUT", "/mine", &[], b"").status, 200);
    let r = s.req("PUT", "/mine", &[], b"");
    assert_eq!((r.status, r.xml("Code").as_deref()), (409, Some("BucketAlreadyOwnedByYou")));
}

#[test]
fn a_public_read_bucket_lists_but_object_acls_decide_reads() {
    let s = two_users();
    assert_eq!(s.req("PUT", "/pubr", &[("x-amz-acl", "public-read")], b"").status, 200);
    assert_eq!(s.req("PUT", "/pubr/private", &[], b"mine").status, 200);
    assert_eq!(s.req("PUT", "/pubr/open", &[("x-amz-acl", "public-read")], b"yours").status, 200);
    assert_eq!(s.req("PUT", "/pubr/members", &[("x-amz-acl", "authenticated-read")], b"ours").status, 200);
    // Anyone may list it.
    let r = s.req_as(None, "GET", "/pubr?list-type=2", &[], b"");
    assert_eq!(r.status, 200);
    assert!(r.text().contains("<Key>private</Key>"));
    // Private objects stay private; public ones are readable; a missing key is 404 to who may list.
    let r = s.req_as(None, "GET", "/pubr/private", &[], b"");
    assert_eq!((r.status, r.xml("Code").as_deref()), (403, Some("AccessDenied")));
    assert_eq!(s.req_as(None, "HEAD", "/pubr/private", &[], b"").status, 403);
    assert_eq!(s.req_as(Some(OTHER), "GET", "/pubr/private", &[], b"").status, 403);
    assert_eq!(s.req_as(None, "GET", "/pubr/open", &[], b"").body, b"yours");
    assert_eq!(s.req_as(None, "GET", "/pubr/members", &[], b"").status, 403);
    assert_eq!(s.req_as(Some(OTHER), "GET", "/pubr/members", &[], b"").body, b"ours");
    assert_eq!(s.req_as(None, "GET", "/pubr/missing", &[], b"").status, 404);
    // Object ACLs: read back, changed, and only by the owner.
    let r = s.req("GET", "/pubr/open?acl", &[], b"");
    assert!(r.text().contains("AllUsers") && r.text().contains("<Permission>READ</Permission>"), "{}", r.text());
    assert_eq!(s.req_as(None, "GET", "/pubr/open?acl", &[], b"").status, 403);
    assert_eq!(s.req_as(Some(OTHER), "PUT", "/pubr/private?acl", &[("x-amz-acl", "public-read")], b"").status, 403);
    assert_eq!(s.req("PUT", "/pubr/private?acl", &[("x-amz-acl", "public-read")], b"").status, 200);
    assert_eq!(s.req_as(None, "GET", "/pubr/private", &[], b"").body, b"mine");
    assert_eq!(s.req("PUT", "/pubr/private?acl", &[("x-amz-acl", "private")], b"").status, 200);
    assert_eq!(s.req_as(None, "GET", "/pubr/private", &[], b"").status, 403);
    // A copy does not carry the ACL over; a copy of what the caller may not read is refused.
    assert_eq!(s.req("PUT", "/pubr/copy", &[("x-amz-copy-source", "/pubr/open")], b"").status, 200);
    assert_eq!(s.req_as(None, "GET", "/pubr/copy", &[], b"").status, 403);
    assert_eq!(s.req_as(Some(OTHER), "PUT", "/theirs", &[], b"").status, 200);
    let r = s.req_as(Some(OTHER), "PUT", "/theirs/stolen", &[("x-amz-copy-source", "/pubr/private")], b"");
    assert_eq!(r.status, 403);
    let r = s.req_as(Some(OTHER), "PUT", "/theirs/fair", &[("x-amz-copy-source", "/pubr/open")], b"");
    assert_eq!(r.status, 200);
    // Writes stay the owner's.
    assert_eq!(s.req_as(None, "PUT", "/pubr/x", &[], b"x").status, 403);
    assert_eq!(s.req_as(Some(OTHER), "DELETE", "/pubr/open", &[], b"").status, 403);

    // A private bucket with the public-read policy: every object readable, listing not.
    assert_eq!(s.req("PUT", "/polb", &[], b"").status, 200);
    assert_eq!(s.req("PUT", "/polb/k", &[], b"policy").status, 200);
    assert_eq!(s.req_as(None, "GET", "/polb/k", &[], b"").status, 403);
    let r = s.req_as(Some((AK, SK)), "PUT", "/_keel/buckets/polb/props?policy=public-read", &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(s.req_as(None, "GET", "/polb/k", &[], b"").body, b"policy");
    assert_eq!(s.req_as(None, "GET", "/polb?list-type=2", &[], b"").status, 403);
    assert_eq!(s.req_as(None, "GET", "/polb/missing", &[], b"").status, 403, "absent keys do not leak");

    // Canned ACLs keel does not implement are refused, unknown ones are invalid.
    let r = s.req("PUT", "/pubr/w", &[("x-amz-acl", "log-delivery-write")], b"w");
    assert_eq!((r.status, r.xml("Code").as_deref()), (501, Some("NotImplemented")));
    let r = s.req("PUT", "/pubr/w", &[("x-amz-acl", "everyone-please")], b"w");
    assert_eq!((r.status, r.xml("Code").as_deref()), (400, Some("InvalidArgument")));
    let r = s.req("PUT", "/newb", &[("x-amz-acl", "nonsense")], b"");
    assert_eq!((r.status, r.xml("Code").as_deref()), (400, Some("InvalidArgument")));
    assert_eq!(s.req("HEAD", "/pubr/w", &[], b"").status, 404);
}

#[test]
fn features_keel_lacks_are_refused_not_ignored() {
    let s = Server::start();
    assert_eq!(s.req("PUT", "/nofeat", &[], b"").status, 200);
    let cases: &[(&str, &str, &[(&str, &str)])] = &[
        (
            "PUT",
            "/nofeat/ssec",
            &[
                ("x-amz-server-side-encryption-customer-algorithm", "AES256"),
                ("x-amz-server-side-encryption-customer-key", "MzJieXRlc2tleTMyYnl0ZXNrZXkzMmJ5dGVza2V5IQ=="),
                ("x-amz-server-side-encryption-customer-key-MD5", "AAAAAAAAAAAAAAAAAAAAAA=="),
            ],
        ),
        ("PUT", "/nofeat/sse", &[("x-amz-server-side-encryption", "AES256")]),
        (
            "PUT",
            "/nofeat/kms",
            &[("x-amz-server-side-encryption", "aws:kms"), ("x-amz-server-side-encryption-aws-kms-key-id", "k")],
        ),
        ("POST", "/nofeat/grant?uploads", &[("x-amz-grant-read", "id=\"someone\"")]),
        ("PUT", "/nofeat/class", &[("x-amz-storage-class", "DEEP_ARCHIVE")]),
        ("PUT", "/nofeat/redirect", &[("x-amz-website-redirect-location", "/elsewhere")]),
        ("POST", "/nofeat/mpu?uploads", &[("x-amz-server-side-encryption", "AES256")]),
        ("PUT", "/nofeat/copy", &[("x-amz-copy-source", "/nofeat/base"), ("x-amz-server-side-encryption", "AES256")]),
        ("GET", "/nofeat/base", &[("x-amz-server-side-encryption-customer-algorithm", "AES256")]),
    ];
    assert_eq!(s.req("PUT", "/nofeat/base", &[], b"base").status, 200);
    for (method, target, headers) in cases {
        let r = s.req(method, target, headers, b"data");
        assert_eq!(
            (r.status, r.xml("Code").as_deref()),
            (501, Some("NotImplemented")),
            "{method} {target}: {}",
            r.text()
        );
    }
    for target in ["/nofeat/ssec", "/nofeat/sse", "/nofeat/lock", "/nofeat/tag", "/nofeat/copy"] {
        assert_eq!(s.req("HEAD", target, &[], b"").status, 404, "{target} was not written");
    }
    assert_eq!(s.req("HEAD", "/lockedbucket", &[], b"").status, 404);
    assert!(!s.req("GET", "/nofeat?uploads", &[], b"").text().contains("<Upload>"));
    // Invalid values are 400, as S3 answers them.
    for (h, v) in [
        ("x-amz-server-side-encryption", "rot13"),
        ("x-amz-object-lock-mode", "FOREVER"),
        ("x-amz-storage-class", "COLD"),
    ] {
        let r = s.req("PUT", "/nofeat/bad", &[(h, v)], b"x");
        assert_eq!(r.status, 400, "{h}: {}", r.text());
    }
    // Object lock headers on a bucket created without lock: S3's 400, nothing written.
    let r = s.req("PUT", "/nofeat/hold", &[("x-amz-object-lock-legal-hold", "OFF")], b"x");
    assert_eq!((r.status, r.xml("Code").as_deref()), (400, Some("InvalidRequest")));
    assert_eq!(s.req("HEAD", "/nofeat/hold", &[], b"").status, 404);
    // Values that mean what keel does anyway are accepted.
    for (h, v) in [("x-amz-storage-class", "STANDARD"), ("x-amz-tagging", "")] {
        assert_eq!(s.req("PUT", "/nofeat/fine", &[(h, v)], b"x").status, 200, "{h}: {v}");
    }
    // Version ids other than null name versions keel does not have.
    let r = s.req("GET", "/nofeat/base?versionId=3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY", &[], b"");
    assert_eq!((r.status, r.xml("Code").as_deref()), (400, Some("InvalidArgument")));
    assert_eq!(s.req("GET", "/nofeat/base?versionId=null", &[], b"").body, b"base");
    let r = s.req("DELETE", "/nofeat/base?versionId=abc", &[], b"");
    assert_eq!(r.status, 400);
    assert_eq!(s.req("HEAD", "/nofeat/base", &[], b"").status, 200);
    // x-amz-expected-bucket-owner is honoured.
    assert_eq!(s.req("GET", "/nofeat/base", &[("x-amz-expected-bucket-owner", "someone-else")], b"").status, 403);
    assert_eq!(s.req("GET", "/nofeat/base", &[("x-amz-expected-bucket-owner", AK)], b"").status, 200);
}

#[test]
fn keys_with_control_characters_list_as_s3_lists_them() {
    let s = Server::start();
    assert_eq!(s.req("PUT", "/ctl", &[], b"").status, 200);
    for key in ["a%01b", "tab%09x", "cr%0Dx", "esc%1B"] {
        assert_eq!(s.req("PUT", &format!("/ctl/{key}"), &[], b"x").status, 200);
    }
    let r = s.req("GET", "/ctl?list-type=2", &[], b"");
    let text = r.text();
    assert!(text.contains("<Key>a&#x1;b</Key>"), "{text}");
    assert!(text.contains("<Key>cr&#xd;x</Key>"), "{text}");
    assert!(text.contains("<Key>esc&#x1b;</Key>"), "{text}");
    assert!(text.contains("<Key>tab\tx</Key>"), "{text}");
    assert!(!text.contains('\u{FFFD}'), "nothing is replaced");
    let r = s.req("GET", "/ctl?list-type=2&encoding-type=url", &[], b"");
    assert!(r.text().contains("<Key>a%01b</Key>"), "{}", r.text());
    // ListObjects v1 never encodes its Prefix; v2 does (botocore decodes it only there).
    let r = s.req("GET", "/ctl?prefix=a%01&encoding-type=url", &[], b"");
    assert!(r.text().contains("<Prefix>a&#x1;</Prefix>") && r.text().contains("<Key>a%01b</Key>"), "{}", r.text());
    let r = s.req("GET", "/ctl?list-type=2&prefix=a%01&encoding-type=url", &[], b"");
    assert!(r.text().contains("<Prefix>a%01</Prefix>"), "{}", r.text());
    // Character references XML 1.0 forbids are malformed, never a different key.
    for bad in ["&#0;", "&#x1;", "\u{1}"] {
        let doc = format!("<Delete><Object><Key>a{bad}b</Key></Object></Delete>");
        let r = s.req("POST", "/ctl?delete", &[], doc.as_bytes());
        assert_eq!((r.status, r.xml("Code").as_deref()), (400, Some("MalformedXML")), "{bad}: {}", r.text());
    }
    assert_eq!(s.req("HEAD", "/ctl/a%01b", &[], b"").status, 200);
    let r = s.req("POST", "/ctl?delete", &[], b"<Delete><Object><Key>tab&#9;x</Key></Object></Delete>");
    assert_eq!(r.status, 200);
    assert_eq!(s.req("HEAD", "/ctl/tab%09x", &[], b"").status, 404);
}

#[test]
fn request_logs_show_the_query_and_no_colours_off_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_keel"))
        .args(["serve", "--listen", "127.0.0.1:0", "--threads", "1", "--anonymous", "--mountpath"])
        .arg(dir.path().join("mp"))
        .env("RUST_LOG", "keel=debug")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::BufRead;
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let addr = line.split("http://").nth(1).unwrap().split(' ').next().unwrap().trim_end_matches('/').to_owned();
    let mut c = std::net::TcpStream::connect(&addr).unwrap();
    c.write_all(
        b"GET /logb?list-type=2&prefix=abc&X-Amz-Signature=deadbeef HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let mut sink = Vec::new();
    let _ = std::io::Read::read_to_end(&mut c, &mut sink);
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    child.wait().unwrap();
    assert!(err.contains("list-type=2&prefix=abc"), "{err}");
    assert!(err.contains("X-Amz-Signature=***") && !err.contains("deadbeef"), "signatures are masked: {err}");
    assert!(!err.contains('\u{1b}'), "no ANSI escapes when stderr is not a terminal: {err:?}");
}
