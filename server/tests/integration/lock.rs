//! Object lock over raw HTTP (D47): the headers a locked version answers with, byte for byte,
//! the error documents, and a lock that holds across a restart.

use crate::common::{Resp, Server};

fn ok(s: &Server, method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
    let r = s.req(method, target, headers, body);
    assert!(r.status < 300, "{method} {target}: {} {}", r.status, r.text());
    r
}

#[test]
fn locked_versions_answer_their_lock_and_survive_a_restart() {
    let mut s = Server::start();
    ok(&s, "PUT", "/locked", &[("x-amz-bucket-object-lock-enabled", "true")], b"");
    assert!(ok(&s, "GET", "/locked?versioning", &[], b"").text().contains("<Status>Enabled</Status>"));
    let put = ok(
        &s,
        "PUT",
        "/locked/k",
        &[
            ("x-amz-object-lock-mode", "COMPLIANCE"),
            ("x-amz-object-lock-retain-until-date", "2099-01-01T00:00:00Z"),
            ("x-amz-object-lock-legal-hold", "ON"),
        ],
        b"kept",
    );
    let v = put.header("x-amz-version-id").unwrap().to_owned();
    let head = ok(&s, "HEAD", "/locked/k", &[], b"");
    assert_eq!(head.header("x-amz-object-lock-mode"), Some("COMPLIANCE"));
    assert_eq!(head.header("x-amz-object-lock-retain-until-date"), Some("2099-01-01T00:00:00.000Z"));
    assert_eq!(head.header("x-amz-object-lock-legal-hold"), Some("ON"));
    let r = ok(&s, "GET", "/locked/k?retention", &[], b"");
    assert!(r.text().ends_with("<Retention xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Mode>COMPLIANCE</Mode><RetainUntilDate>2099-01-01T00:00:00.000Z</RetainUntilDate></Retention>"), "{}", r.text());
    s.restart();
    // Nobody deletes it: 403 AccessDenied, the version still there.
    for bypass in ["false", "true"] {
        let r =
            s.req("DELETE", &format!("/locked/k?versionId={v}"), &[("x-amz-bypass-governance-retention", bypass)], b"");
        assert_eq!((r.status, r.xml("Code").as_deref()), (403, Some("AccessDenied")), "{}", r.text());
    }
    let hold_off = b"<LegalHold><Status>OFF</Status></LegalHold>";
    ok(&s, "PUT", &format!("/locked/k?legal-hold&versionId={v}"), &[], hold_off);
    let r = s.req("DELETE", &format!("/locked/k?versionId={v}"), &[("x-amz-bypass-governance-retention", "true")], b"");
    assert_eq!(r.status, 403, "COMPLIANCE holds without the legal hold too");
    let shorter =
        b"<Retention><Mode>COMPLIANCE</Mode><RetainUntilDate>2098-01-01T00:00:00Z</RetainUntilDate></Retention>";
    let r = s.req("PUT", "/locked/k?retention", &[("x-amz-bypass-governance-retention", "true")], shorter);
    assert_eq!((r.status, r.xml("Code").as_deref()), (403, Some("AccessDenied")));
    assert_eq!(ok(&s, "GET", &format!("/locked/k?versionId={v}"), &[], b"").body, b"kept");
    // Refusals: bad documents, a date in the past, lock headers on a bucket without lock.
    let r = s.req("PUT", "/locked/k?legal-hold", &[], b"<LegalHold><Status>MAYBE</Status></LegalHold>");
    assert_eq!((r.status, r.xml("Code").as_deref()), (400, Some("MalformedXML")));
    let past =
        [("x-amz-object-lock-mode", "GOVERNANCE"), ("x-amz-object-lock-retain-until-date", "2001-01-01T00:00:00Z")];
    assert_eq!(s.req("PUT", "/locked/p", &past, b"x").xml("Code").as_deref(), Some("InvalidArgument"));
    assert_eq!(s.req("HEAD", "/locked/p", &[], b"").status, 404);
    let half = [("x-amz-object-lock-mode", "GOVERNANCE")];
    assert_eq!(s.req("PUT", "/locked/p", &half, b"x").xml("Code").as_deref(), Some("InvalidArgument"));
    ok(&s, "PUT", "/unlocked", &[], b"");
    let future =
        [("x-amz-object-lock-mode", "GOVERNANCE"), ("x-amz-object-lock-retain-until-date", "2099-01-01T00:00:00Z")];
    let r = s.req("PUT", "/unlocked/p", &future, b"x");
    assert_eq!((r.status, r.xml("Code").as_deref()), (400, Some("InvalidRequest")));
    let r = s.req("GET", "/unlocked?object-lock", &[], b"");
    assert_eq!((r.status, r.xml("Code").as_deref()), (404, Some("ObjectLockConfigurationNotFoundError")));
}
