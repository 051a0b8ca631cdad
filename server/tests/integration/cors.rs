//! CORS over raw HTTP (issue 18 item 4, D50): the configuration both ways, preflights answered
//! from the rules without a signature, `Access-Control-*` on the answers to cross-origin
//! requests (errors too), nothing on others.

use crate::common::{Resp, Server};

fn ok(s: &Server, method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
    let r = s.req(method, target, headers, body);
    assert!(r.status < 300, "{method} {target}: {} {}", r.status, r.text());
    r
}

fn unsigned(s: &Server, method: &str, target: &str, headers: &[(&str, &str)]) -> Resp {
    s.req_as(None, method, target, headers, b"")
}

const RULES: &str = "<CORSConfiguration>\
    <CORSRule><AllowedMethod>GET</AllowedMethod><AllowedMethod>HEAD</AllowedMethod><AllowedOrigin>*.example.com</AllowedOrigin>\
    <AllowedHeader>x-amz-*</AllowedHeader><ExposeHeader>ETag</ExposeHeader><MaxAgeSeconds>600</MaxAgeSeconds></CORSRule>\
    <CORSRule><AllowedMethod>PUT</AllowedMethod><AllowedOrigin>https://upload.test</AllowedOrigin><AllowedHeader>*</AllowedHeader></CORSRule>\
    <CORSRule><AllowedMethod>GET</AllowedMethod><AllowedOrigin>*</AllowedOrigin></CORSRule>\
    </CORSConfiguration>";

#[test]
fn configuration_both_ways() {
    let s = Server::start();
    ok(&s, "PUT", "/corsb", &[], b"");
    let r = s.req("GET", "/corsb?cors", &[], b"");
    assert_eq!((r.status, r.xml("Code").as_deref()), (404, Some("NoSuchCORSConfiguration")));
    ok(&s, "PUT", "/corsb?cors", &[], RULES.as_bytes());
    let got = ok(&s, "GET", "/corsb?cors", &[], b"").text();
    assert!(got.contains("<CORSRule><AllowedHeader>x-amz-*</AllowedHeader><AllowedMethod>GET</AllowedMethod><AllowedMethod>HEAD</AllowedMethod><AllowedOrigin>*.example.com</AllowedOrigin><ExposeHeader>ETag</ExposeHeader><MaxAgeSeconds>600</MaxAgeSeconds></CORSRule>"), "{got}");
    for (bad, code) in [
        ("<CORSConfiguration/>", "MalformedXML"),
        (
            "<CORSConfiguration><CORSRule><AllowedMethod>PATCH</AllowedMethod><AllowedOrigin>*</AllowedOrigin></CORSRule></CORSConfiguration>",
            "InvalidRequest",
        ),
        (
            "<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin></CORSRule></CORSConfiguration>",
            "MalformedXML",
        ),
    ] {
        let r = s.req("PUT", "/corsb?cors", &[], bad.as_bytes());
        assert_eq!((r.status, r.xml("Code").as_deref()), (400, Some(code)), "{bad}");
    }
    assert!(ok(&s, "GET", "/corsb?cors", &[], b"").text().contains("upload.test"), "unchanged");
    // Only the owner changes it.
    assert_eq!(unsigned(&s, "PUT", "/corsb?cors", &[]).status, 403);
    assert_eq!(ok(&s, "DELETE", "/corsb?cors", &[], b"").status, 204);
    assert_eq!(s.req("GET", "/corsb?cors", &[], b"").status, 404);
}

#[test]
fn preflights_and_actual_requests() {
    let mut s = Server::start();
    ok(&s, "PUT", "/corsp", &[], b"");
    ok(&s, "PUT", "/corsp/k", &[], b"v");
    let pre = |s: &Server, origin: &str, method: &str, headers: Option<&str>| {
        let mut hs = vec![("Origin", origin), ("Access-Control-Request-Method", method)];
        if let Some(h) = headers {
            hs.push(("Access-Control-Request-Headers", h));
        }
        unsigned(s, "OPTIONS", "/corsp/k", &hs)
    };
    // No rules yet: refused.
    let r = pre(&s, "https://a.example.com", "GET", None);
    assert_eq!((r.status, r.xml("Code").as_deref()), (403, Some("AccessForbidden")));
    ok(&s, "PUT", "/corsp?cors", &[], RULES.as_bytes());
    let r = pre(&s, "https://a.example.com", "GET", Some("x-amz-date, X-Amz-Content-Sha256"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("access-control-allow-origin"), Some("https://a.example.com"));
    assert_eq!(r.header("access-control-allow-methods"), Some("GET, HEAD"));
    assert_eq!(r.header("access-control-allow-headers"), Some("x-amz-date, X-Amz-Content-Sha256"));
    assert_eq!(r.header("access-control-max-age"), Some("600"));
    assert_eq!(r.header("access-control-expose-headers"), Some("ETag"));
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
    // Each header once (a preflight is not also decorated as an actual request).
    assert_eq!(r.headers.iter().filter(|(k, _)| k.eq_ignore_ascii_case("access-control-allow-origin")).count(), 1);
    // A header the rule does not allow; a method no rule allows for the origin: refused, and
    // no Access-Control-* at all.
    let r = pre(&s, "https://a.example.com", "GET", Some("content-type"));
    assert_eq!((r.status, r.header("access-control-allow-origin")), (403, None));
    assert_eq!(pre(&s, "https://a.example.com", "PUT", None).status, 403);
    let r = pre(&s, "https://upload.test", "PUT", Some("content-type"));
    assert_eq!((r.status, r.header("access-control-allow-methods")), (200, Some("PUT")));
    // The catch-all rule answers `*` and no credentials.
    let r = pre(&s, "https://elsewhere.org", "GET", None);
    assert_eq!((r.status, r.header("access-control-allow-origin")), (200, Some("*")));
    assert_eq!(r.header("access-control-allow-credentials"), None);
    // Without Origin or a method: 400.
    assert_eq!(unsigned(&s, "OPTIONS", "/corsp/k", &[("Origin", "https://a.example.com")]).status, 400);
    assert_eq!(unsigned(&s, "OPTIONS", "/corsp/k", &[]).status, 400);
    assert_eq!(
        unsigned(&s, "OPTIONS", "/nosuchbucket/k", &[("Origin", "x"), ("Access-Control-Request-Method", "GET")]).status,
        404
    );
    // Actual requests: the headers when a rule allows the origin and method, errors included.
    let r = ok(&s, "GET", "/corsp/k", &[("Origin", "https://a.example.com")], b"");
    assert_eq!(r.header("access-control-allow-origin"), Some("https://a.example.com"));
    assert_eq!(r.header("access-control-expose-headers"), Some("ETag"));
    assert_eq!(r.header("access-control-max-age"), None, "only preflights say how long");
    let r = unsigned(&s, "GET", "/corsp/k", &[("Origin", "https://a.example.com")]);
    assert_eq!((r.status, r.header("access-control-allow-origin")), (403, Some("https://a.example.com")));
    let r = ok(&s, "PUT", "/corsp/k2", &[("Origin", "https://a.example.com")], b"x");
    assert_eq!(r.header("access-control-allow-origin"), None, "PUT is not allowed for that origin");
    let r = ok(&s, "PUT", "/corsp/k3", &[("Origin", "https://upload.test")], b"x");
    assert_eq!(r.header("access-control-allow-origin"), Some("https://upload.test"));
    assert_eq!(ok(&s, "GET", "/corsp/k", &[], b"").header("access-control-allow-origin"), None, "no Origin");
    // Kept across a restart.
    s.restart();
    assert_eq!(pre(&s, "https://upload.test", "PUT", None).status, 200);
}
