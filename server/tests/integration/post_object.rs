//! POST object over raw HTTP (issue 18 item 3, D51): browser form uploads signed with SigV4 and
//! SigV2 policies, anonymous ones into a public-read-write bucket, every refusal leaving
//! nothing behind, a large file streamed, and the answers S3 gives (204, 201, 303).

use base64::Engine;

use crate::common::{AK, Resp, SK, Server};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
const BOUNDARY: &str = "----keelFormBoundary7MA4YWxk";

fn ok(s: &Server, method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
    let r = s.req(method, target, headers, body);
    assert!(r.status < 300, "{method} {target}: {} {}", r.status, r.text());
    r
}

/// A multipart/form-data body: the fields in order, then the file, then `after` fields.
fn form(fields: &[(&str, &str)], file: (&str, &[u8]), after: &[(&str, &str)]) -> Vec<u8> {
    let mut b = Vec::new();
    let field = |b: &mut Vec<u8>, k: &str, v: &str| {
        b.extend_from_slice(
            format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n").as_bytes(),
        );
    };
    for (k, v) in fields {
        field(&mut b, k, v);
    }
    b.extend_from_slice(
        format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{}\"\r\nContent-Type: application/octet-stream\r\n\r\n",
            file.0
        )
        .as_bytes(),
    );
    b.extend_from_slice(file.1);
    b.extend_from_slice(b"\r\n");
    for (k, v) in after {
        field(&mut b, k, v);
    }
    b.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    b
}

fn post(s: &Server, bucket: &str, body: &[u8]) -> Resp {
    let ct = format!("multipart/form-data; boundary={BOUNDARY}");
    s.req_as(None, "POST", &format!("/{bucket}"), &[("Content-Type", &ct)], body)
}

fn policy_doc(bucket: &str, extra: &str, expires_in: i64) -> String {
    let exp = keel::time::iso8601_ms(((keel::time::now_ms() / 1000) as i64 + expires_in) as u64 * 1000);
    let doc = format!(
        r#"{{"expiration":"{exp}","conditions":[{{"bucket":"{bucket}"}},["starts-with","$key","uploads/"],["content-length-range",1,10485760]{extra}]}}"#
    );
    B64.encode(doc)
}

/// The SigV4 fields of a form signed by AK.
fn v4_fields(policy: &str) -> Vec<(String, String)> {
    let date = keel::time::iso8601_ms(keel::time::now_ms())[..10].replace('-', "");
    let cred = format!("{AK}/{date}/us-east-1/s3/aws4_request");
    let key = keel::s3::auth::signing_key(SK, &date, "us-east-1", "s3");
    let sig = hex::encode(keel::s3::auth::hmac(&key, policy.as_bytes()));
    vec![
        ("x-amz-algorithm".into(), "AWS4-HMAC-SHA256".into()),
        ("x-amz-credential".into(), cred),
        ("x-amz-date".into(), format!("{date}T000000Z")),
        ("policy".into(), policy.to_owned()),
        ("x-amz-signature".into(), sig),
    ]
}

fn v4_conditions() -> &'static str {
    r#",["starts-with","$x-amz-algorithm",""],["starts-with","$x-amz-credential",""],["starts-with","$x-amz-date",""]"#
}

fn refs(v: &[(String, String)]) -> Vec<(&str, &str)> {
    v.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

#[test]
fn signed_forms_upload_and_refusals_leave_nothing() {
    let s = Server::start();
    ok(&s, "PUT", "/formb", &[], b"");
    let extra = format!(
        r#"{},{{"success_action_status":"201"}},["starts-with","$x-amz-meta-who",""],["eq","$Content-Type","text/plain"]"#,
        v4_conditions()
    );
    let policy = policy_doc("formb", &extra, 600);
    let mut fields = vec![("key".to_string(), "uploads/${filename}".to_string())];
    fields.extend(v4_fields(&policy));
    fields.push(("success_action_status".into(), "201".into()));
    fields.push(("x-amz-meta-who".into(), "the browser".into()));
    fields.push(("Content-Type".into(), "text/plain".into()));
    let r = post(&s, "formb", &form(&refs(&fields), ("a.txt", b"hello form"), &[("ignored-after", "x")]));
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.xml("Key").as_deref(), Some("uploads/a.txt"));
    assert_eq!(r.xml("Bucket").as_deref(), Some("formb"));
    let got = ok(&s, "GET", "/formb/uploads/a.txt", &[], b"");
    assert_eq!(got.body, b"hello form");
    assert_eq!(got.header("content-type"), Some("text/plain"));
    assert_eq!(got.header("x-amz-meta-who"), Some("the browser"));
    assert_eq!(Some(r.header("etag").unwrap()), got.header("etag"));
    // Refusals: each leaves nothing.
    let with = |edit: &dyn Fn(&mut Vec<(String, String)>)| {
        let mut f = fields.clone();
        f[0].1 = "uploads/refused".into();
        edit(&mut f);
        post(&s, "formb", &form(&refs(&f), ("r.txt", b"nope"), &[]))
    };
    let sig_at = fields.iter().position(|(k, _)| k == "x-amz-signature").unwrap();
    let r = with(&|f| f[sig_at].1 = "0".repeat(64));
    assert_eq!((r.status, r.xml("Code").as_deref()), (403, Some("SignatureDoesNotMatch")));
    let r = with(&|f| f[0].1 = "elsewhere/x".into());
    assert_eq!((r.status, r.xml("Code").as_deref()), (403, Some("AccessDenied")), "the key condition");
    let r = with(&|f| f.push(("x-amz-meta-extra".into(), "1".into())));
    assert_eq!(r.status, 403, "a field no condition names");
    let r = with(&|f| f.retain(|(k, _)| k != "x-amz-signature"));
    assert_eq!(r.status, 400, "a policy without its signature");
    let expired = policy_doc("formb", &extra, -10);
    let r = with(&|f| {
        f.retain(|(k, _)| !k.starts_with("x-amz-") && k != "policy");
        f.extend(v4_fields(&expired));
    });
    assert_eq!(r.status, 403, "expired");
    let big = vec![b'x'; 10 * 1024 * 1024 + 1];
    let mut f = fields.clone();
    f[0].1 = "uploads/refused".into();
    let r = post(&s, "formb", &form(&refs(&f), ("big", &big), &[]));
    assert_eq!((r.status, r.xml("Code").as_deref()), (400, Some("EntityTooLarge")));
    let r = post(&s, "formb", &form(&refs(&f), ("empty", b""), &[]));
    assert_eq!((r.status, r.xml("Code").as_deref()), (400, Some("EntityTooSmall")));
    assert_eq!(s.req("GET", "/formb/uploads/refused", &[], b"").status, 404);
    assert_eq!(crate::common::data_files(&s), 0, "no data file left by a refused upload (the one upload is inline)");
    // Not multipart: 412; a form without its closing delimiter: 400.
    let r = s.req_as(None, "POST", "/formb", &[("Content-Type", "text/plain")], b"x");
    assert_eq!(r.status, 412);
    let mut cut = form(&refs(&fields), ("c.txt", b"cut"), &[]);
    cut.truncate(cut.len() - 60);
    let r = post(&s, "formb", &cut);
    assert_eq!((r.status, r.xml("Code").as_deref()), (400, Some("MalformedPOSTRequest")), "{}", r.text());
    assert_eq!(s.req("GET", "/formb/uploads/c.txt", &[], b"").status, 404, "nothing committed");
    // A signed document keel cannot read (no expiration): 400 InvalidPolicyDocument, nothing stored.
    let doc = B64.encode(r#"{"conditions":[{"bucket":"formb"}]}"#);
    let sig = B64.encode(keel::s3::auth::hmac_sha1(SK.as_bytes(), doc.as_bytes()));
    let fields = [("key", "uploads/nodoc"), ("AWSAccessKeyId", AK), ("policy", &doc), ("signature", &sig)];
    let r = post(&s, "formb", &form(&fields, ("n", b"n"), &[]));
    assert_eq!((r.status, r.xml("Code").as_deref()), (400, Some("InvalidPolicyDocument")), "{}", r.text());
    assert_eq!(s.req("GET", "/formb/uploads/nodoc", &[], b"").status, 404);
}

#[test]
fn sigv2_anonymous_redirects_and_a_large_file() {
    let s = Server::start();
    ok(&s, "PUT", "/formv2", &[], b"");
    let policy = policy_doc("formv2", r#",["starts-with","$success_action_redirect","http://"]"#, 600);
    let sig = B64.encode(keel::s3::auth::hmac_sha1(SK.as_bytes(), policy.as_bytes()));
    // 24 MiB: streamed through the parser in buffers, never held whole.
    let data: Vec<u8> = (0..24 * 1024 * 1024u32).map(|i| (i.wrapping_mul(2654435761) >> 11) as u8).collect();
    let fields = [
        ("key", "uploads/large.bin"),
        ("AWSAccessKeyId", AK),
        ("policy", &policy),
        ("signature", &sig),
        ("success_action_redirect", "http://app.example/done?x=1"),
    ];
    let mut big = data.clone();
    big.truncate(10 * 1024 * 1024);
    let r = post(&s, "formv2", &form(&fields, ("large.bin", &big), &[]));
    assert_eq!(r.status, 303, "{}", r.text());
    let loc = r.header("location").unwrap();
    assert!(loc.starts_with("http://app.example/done?x=1&bucket=formv2&key=uploads%2Flarge.bin&etag=%22"), "{loc}");
    assert_eq!(ok(&s, "GET", "/formv2/uploads/large.bin", &[], b"").body, big);
    // Anonymous forms write only where the bucket's ACL lets anyone write.
    let anon = [("key", "open/a")];
    assert_eq!(post(&s, "formv2", &form(&anon, ("a", b"x"), &[])).status, 403);
    ok(&s, "PUT", "/formv2?acl", &[("x-amz-acl", "public-read-write")], b"");
    let r = post(&s, "formv2", &form(&anon, ("a", &data), &[]));
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(ok(&s, "GET", "/formv2/open/a", &[], b"").body.len(), data.len());
    // A public-read-write bucket: anyone may also PUT and DELETE objects, and list.
    assert_eq!(s.req_as(None, "PUT", "/formv2/open/b", &[], b"b").status, 200);
    assert_eq!(s.req_as(None, "DELETE", "/formv2/open/b", &[], b"").status, 204);
    assert_eq!(s.req_as(None, "GET", "/formv2?list-type=2", &[], b"").status, 200);
    assert_eq!(s.req_as(None, "PUT", "/formv2?acl", &[("x-amz-acl", "private")], b"").status, 403);
}
