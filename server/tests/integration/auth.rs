//! SigV4 header authentication against the real server.

use std::io::Write;

use crate::common::{AK, Server, amz_now, read_response, sign};

fn raw(s: &Server, method: &str, target: &str, hs: Vec<(String, String)>, body: &[u8]) -> crate::common::Resp {
    let mut out = format!("{method} {target} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n", s.addr, body.len());
    for (k, v) in hs {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    let mut c = s.connect();
    c.write_all(&bytes).unwrap();
    read_response(&mut c, method == "HEAD")
}

fn signed(s: &Server, method: &str, target: &str, extra: &[(&str, &str)], body: &[u8]) -> Vec<(String, String)> {
    let mut hs: Vec<(String, String)> = vec![("Host".into(), s.addr.clone())];
    hs.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    sign(method, target, &mut hs, body);
    hs.retain(|(k, _)| k != "Host");
    hs
}

#[test]
fn signatures_are_checked() {
    let s = Server::start();
    assert_eq!(s.req("PUT", "/authb", &[], b"").status, 200);
    // Unsigned requests are refused when the server has credentials.
    let r = raw(&s, "GET", "/authb", vec![], b"");
    assert_eq!(r.xml("Code").as_deref(), Some("AccessDenied"));
    // A signed request works; the same headers on another path do not.
    let hs = signed(&s, "GET", "/authb", &[], b"");
    assert_eq!(raw(&s, "GET", "/authb", hs.clone(), b"").status, 200);
    let r = raw(&s, "GET", "/authb?prefix=x", hs, b"");
    assert_eq!(r.xml("Code").as_deref(), Some("SignatureDoesNotMatch"));
    // Tampering with a signed header.
    let mut hs = signed(&s, "PUT", "/authb/k", &[("x-amz-meta-a", "1")], b"body");
    for h in hs.iter_mut() {
        if h.0 == "x-amz-meta-a" {
            h.1 = "2".into();
        }
    }
    assert_eq!(raw(&s, "PUT", "/authb/k", hs, b"body").xml("Code").as_deref(), Some("SignatureDoesNotMatch"));
    // Unknown access key.
    let hs: Vec<(String, String)> = signed(&s, "GET", "/authb", &[], b"")
        .into_iter()
        .map(|(k, v)| if k == "Authorization" { (k, v.replace(AK, "NOBODY")) } else { (k, v) })
        .collect();
    assert_eq!(raw(&s, "GET", "/authb", hs, b"").xml("Code").as_deref(), Some("InvalidAccessKeyId"));
    // Clock skew beyond 15 minutes.
    let mut hs = signed(&s, "GET", "/authb", &[], b"");
    let now = amz_now();
    let old = format!("{}T000000Z", "20200101");
    for h in hs.iter_mut() {
        if h.0 == "x-amz-date" {
            h.1 = old.clone();
        }
    }
    assert_ne!(now, old);
    assert_eq!(raw(&s, "GET", "/authb", hs, b"").xml("Code").as_deref(), Some("RequestTimeTooSkewed"));
    // Garbage in the header.
    let r = raw(&s, "GET", "/authb", vec![("Authorization".into(), "AWS4-HMAC-SHA256 nonsense".into())], b"");
    assert_eq!(r.xml("Code").as_deref(), Some("AuthorizationHeaderMalformed"));
}

#[test]
fn payload_hash_is_verified() {
    let s = Server::start();
    assert_eq!(s.req("PUT", "/payb", &[], b"").status, 200);
    // Signed for one body, sent with another of the same length: refused, nothing stored.
    let hs = signed(&s, "PUT", "/payb/k", &[], b"good body");
    let r = raw(&s, "PUT", "/payb/k", hs, b"evil body");
    assert_eq!(r.xml("Code").as_deref(), Some("XAmzContentSHA256Mismatch"));
    assert_eq!(s.req("HEAD", "/payb/k", &[], b"").status, 404);
    // Same for a large body written to a data file.
    let big = vec![3u8; 500_000];
    let mut evil = big.clone();
    evil[499_999] = 4;
    let hs = signed(&s, "PUT", "/payb/big", &[], &big);
    assert_eq!(raw(&s, "PUT", "/payb/big", hs, &evil).xml("Code").as_deref(), Some("XAmzContentSHA256Mismatch"));
    assert_eq!(s.req("HEAD", "/payb/big", &[], b"").status, 404);
    assert_eq!(crate::common::data_files(&s), 0);
    // UNSIGNED-PAYLOAD skips the body hash.
    let hs = signed(&s, "PUT", "/payb/u", &[("x-amz-content-sha256", "UNSIGNED-PAYLOAD")], b"");
    assert_eq!(raw(&s, "PUT", "/payb/u", hs, b"anything").status, 200);
    assert_eq!(s.req("GET", "/payb/u", &[], b"").body, b"anything");
}

/// Any region in the credential scope is accepted (clients configured for another region, or
/// none, still work); `/bucket/` is `/bucket`; unknown query parameters such as the SDKs' `x-id`
/// are ignored.
#[test]
fn any_region_trailing_slash_and_unknown_query_parameters() {
    let s = Server::start();
    for region in ["eu-west-9", "auto", "us-east-1"] {
        let mut hs: Vec<(String, String)> = vec![("Host".into(), s.addr.clone())];
        crate::common::sign_in_region("PUT", &format!("/reg-{region}"), &mut hs, b"", region);
        hs.retain(|(k, _)| k != "Host");
        let r = raw(&s, "PUT", &format!("/reg-{region}"), hs, b"");
        assert_eq!(r.status, 200, "{region}: {}", r.text());
    }
    assert_eq!(s.req("PUT", "/reg-auto/k?x-id=PutObject", &[], b"v").status, 200);
    let r = s.req("GET", "/reg-auto/k?x-id=GetObject", &[], b"");
    assert_eq!((r.status, r.body.as_slice()), (200, &b"v"[..]));
    let slash = s.req("GET", "/reg-auto/?list-type=2", &[], b"");
    assert!(slash.text().contains("<Key>k</Key>"), "{}", slash.text());
    assert_eq!(slash.text(), s.req("GET", "/reg-auto?list-type=2", &[], b"").text());
    assert_eq!(s.req("HEAD", "/reg-auto/", &[], b"").status, 200);
}
