//! Bucket policies and the public access block over raw HTTP (issue 18 item 2, D49): the
//! documents both ways, who gets what (another user, anonymous callers, the owner under a
//! Deny), conditions read from the request (source address, prefix, tags, headers), and each
//! refusal leaving nothing changed.

use crate::common::{Resp, Server};

const ALT: (&str, &str) = ("ALTUSER", "alt-secret");

fn server() -> Server {
    Server::with_args(&["--user", "ALTUSER:alt-secret"])
}

fn ok(s: &Server, method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
    let r = s.req(method, target, headers, body);
    assert!(r.status < 300, "{method} {target}: {} {}", r.status, r.text());
    r
}

fn alt(s: &Server, method: &str, target: &str, body: &[u8]) -> Resp {
    s.req_as(Some(ALT), method, target, &[], body)
}

fn anon(s: &Server, method: &str, target: &str) -> Resp {
    s.req_as(None, method, target, &[], b"")
}

fn statement(effect: &str, principal: &str, action: &str, resource: &str, condition: &str) -> String {
    let cond = if condition.is_empty() { String::new() } else { format!(r#","Condition":{condition}"#) };
    format!(
        r#"{{"Effect":"{effect}","Principal":{principal},"Action":"{action}","Resource":"arn:aws:s3:::{resource}"{cond}}}"#
    )
}

fn policy(statements: &[String]) -> String {
    format!(r#"{{"Version":"2012-10-17","Statement":[{}]}}"#, statements.join(","))
}

#[test]
fn documents_both_ways_and_refusals() {
    let s = server();
    ok(&s, "PUT", "/pold", &[], b"");
    let r = s.req("GET", "/pold?policy", &[], b"");
    assert_eq!((r.status, r.xml("Code").as_deref()), (404, Some("NoSuchBucketPolicy")));
    let doc = policy(&[statement("Allow", r#"{"AWS":"*"}"#, "s3:ListBucket", "pold", "")]);
    assert_eq!(ok(&s, "PUT", "/pold?policy", &[], doc.as_bytes()).status, 204);
    let got = ok(&s, "GET", "/pold?policy", &[], b"");
    assert_eq!(got.text(), doc, "the document as given");
    assert_eq!(got.header("content-type"), Some("application/json"));
    // Each refusal is MalformedPolicy with the reason, and the stored policy stays.
    for (bad, why) in [
        ("not json".to_string(), "JSON"),
        (policy(&[statement("Allow", "\"*\"", "s3:GetObjekt", "pold/*", "")]), "invalid action"),
        (policy(&[statement("Allow", "\"*\"", "s3:GetObject", "other/*", "")]), "invalid resource"),
        (
            r#"{"Statement":[{"Effect":"Allow","NotPrincipal":{"AWS":"x"},"Action":"s3:*","Resource":"*"}]}"#.into(),
            "NotPrincipal",
        ),
        (
            policy(&[statement("Allow", "\"*\"", "s3:GetObject", "pold/*", r#"{"StringFoo":{"s3:prefix":"a"}}"#)]),
            "Condition",
        ),
    ] {
        let r = s.req("PUT", "/pold?policy", &[], bad.as_bytes());
        assert_eq!((r.status, r.xml("Code").as_deref()), (400, Some("MalformedPolicy")), "{bad}");
        assert!(r.xml("Message").unwrap_or_default().contains(why), "{bad}: {}", r.text());
    }
    assert_eq!(ok(&s, "GET", "/pold?policy", &[], b"").text(), doc);
    // Only the owner manages it.
    assert_eq!(alt(&s, "GET", "/pold?policy", b"").status, 403);
    assert_eq!(alt(&s, "DELETE", "/pold?policy", b"").status, 403);
    assert_eq!(ok(&s, "DELETE", "/pold?policy", &[], b"").status, 204);
    assert_eq!(s.req("GET", "/pold?policy", &[], b"").status, 404);
    assert_eq!(ok(&s, "DELETE", "/pold?policy", &[], b"").status, 204, "deleting none is fine");
}

#[test]
fn allow_and_deny_for_other_users_anonymous_and_the_owner() {
    let mut s = server();
    ok(&s, "PUT", "/pola", &[], b"");
    ok(&s, "PUT", "/pola/public/a", &[], b"pub");
    ok(&s, "PUT", "/pola/private/b", &[], b"priv");
    assert_eq!(alt(&s, "GET", "/pola", b"").status, 403);
    assert_eq!(anon(&s, "GET", "/pola/public/a").status, 403);
    let doc = policy(&[
        statement("Allow", "\"*\"", "s3:GetObject", "pola/public/*", ""),
        statement("Allow", r#"{"AWS":"arn:aws:iam::ALTUSER:root"}"#, "s3:ListBucket", "pola", ""),
        statement("Allow", r#"{"AWS":["ALTUSER"]}"#, "s3:PutObject", "pola/uploads/*", ""),
        statement("Deny", "\"*\"", "s3:DeleteObject", "pola/public/*", ""),
    ]);
    ok(&s, "PUT", "/pola?policy", &[], doc.as_bytes());
    let r = anon(&s, "GET", "/pola/public/a");
    assert_eq!((r.status, r.body.as_slice()), (200, &b"pub"[..]));
    assert_eq!(anon(&s, "GET", "/pola/private/b").status, 403);
    assert_eq!(anon(&s, "GET", "/pola").status, 403, "listing is for ALTUSER only");
    assert_eq!(alt(&s, "GET", "/pola?list-type=2", b"").status, 200);
    assert_eq!(alt(&s, "GET", "/pola/private/b", b"").status, 403);
    // A missing key: 404 to whoever may list, 403 to others.
    assert_eq!(alt(&s, "GET", "/pola/public/none", b"").status, 404);
    assert_eq!(anon(&s, "GET", "/pola/public/none").status, 403);
    // Writes where the policy allows them, nowhere else.
    assert_eq!(alt(&s, "PUT", "/pola/uploads/x", b"from alt").status, 200);
    assert_eq!(ok(&s, "GET", "/pola/uploads/x", &[], b"").body, b"from alt");
    assert_eq!(alt(&s, "PUT", "/pola/elsewhere", b"no").status, 403);
    assert_eq!(s.req("GET", "/pola/elsewhere", &[], b"").status, 404, "nothing written");
    // An explicit Deny binds the owner too; the policy operations stay the owner's.
    assert_eq!(s.req("DELETE", "/pola/public/a", &[], b"").status, 403);
    assert_eq!(ok(&s, "GET", "/pola/public/a", &[], b"").body, b"pub", "still there");
    let deny_all = policy(&[statement("Deny", "\"*\"", "s3:*", "pola*", "")]);
    ok(&s, "PUT", "/pola?policy", &[], deny_all.as_bytes());
    assert_eq!(s.req("GET", "/pola/public/a", &[], b"").status, 403);
    ok(&s, "GET", "/pola?policy", &[], b"");
    // Kept across a restart.
    s.restart();
    assert_eq!(s.req("GET", "/pola/public/a", &[], b"").status, 403);
    ok(&s, "DELETE", "/pola?policy", &[], b"");
    ok(&s, "GET", "/pola/public/a", &[], b"");
}

#[test]
fn conditions_from_the_request() {
    let s = server();
    ok(&s, "PUT", "/polc", &[], b"");
    ok(&s, "PUT", "/polc/t", &[("x-amz-tagging", "security=public")], b"tagged");
    ok(&s, "PUT", "/polc/u", &[], b"untagged");
    let doc = policy(&[
        statement(
            "Allow",
            "\"*\"",
            "s3:GetObject",
            "polc/*",
            r#"{"StringEquals":{"s3:ExistingObjectTag/security":"public"}}"#,
        ),
        statement(
            "Allow",
            "\"*\"",
            "s3:ListBucket",
            "polc",
            r#"{"StringLike":{"s3:prefix":"t*"},"NumericLessThanEquals":{"s3:max-keys":"10"}}"#,
        ),
        statement("Allow", "\"*\"", "s3:PutObject", "polc/*", r#"{"StringEquals":{"s3:x-amz-acl":"public-read"}}"#),
        statement("Deny", "\"*\"", "s3:*", "polc/*", r#"{"NotIpAddress":{"aws:SourceIp":"127.0.0.0/8"}}"#),
    ]);
    ok(&s, "PUT", "/polc?policy", &[], doc.as_bytes());
    assert_eq!(anon(&s, "GET", "/polc/t").status, 200);
    assert_eq!(anon(&s, "GET", "/polc/u").status, 403);
    assert_eq!(anon(&s, "GET", "/polc?prefix=t&max-keys=5").status, 200);
    assert_eq!(anon(&s, "GET", "/polc?prefix=t&max-keys=50").status, 403);
    assert_eq!(anon(&s, "GET", "/polc?prefix=u&max-keys=5").status, 403);
    assert_eq!(anon(&s, "GET", "/polc").status, 403, "no prefix: the condition fails");
    assert_eq!(s.req_as(Some(ALT), "PUT", "/polc/w", &[("x-amz-acl", "public-read")], b"w").status, 200);
    assert_eq!(alt(&s, "PUT", "/polc/w2", b"w").status, 403);
    // From loopback the Deny does not apply; from elsewhere it would, even to the owner.
    let elsewhere = policy(&[statement(
        "Deny",
        "\"*\"",
        "s3:GetObject",
        "polc/*",
        r#"{"IpAddress":{"aws:SourceIp":"127.0.0.1/32"}}"#,
    )]);
    ok(&s, "PUT", "/polc?policy", &[], elsewhere.as_bytes());
    assert_eq!(s.req("GET", "/polc/u", &[], b"").status, 403);
}

#[test]
fn delete_objects_key_by_key_and_copy_sources() {
    let s = server();
    ok(&s, "PUT", "/polk", &[], b"");
    ok(&s, "PUT", "/polk/tmp/a", &[], b"a");
    ok(&s, "PUT", "/polk/keep/b", &[], b"b");
    ok(&s, "PUT", "/polk/src", &[], b"source");
    ok(&s, "PUT", "/polk/secret", &[], b"secret");
    let doc = policy(&[
        statement("Allow", r#"{"AWS":"ALTUSER"}"#, "s3:DeleteObject", "polk/tmp/*", ""),
        statement("Allow", r#"{"AWS":"ALTUSER"}"#, "s3:GetObject", "polk/src", ""),
        statement("Allow", r#"{"AWS":"ALTUSER"}"#, "s3:PutObject", "polk/copies/*", ""),
    ]);
    ok(&s, "PUT", "/polk?policy", &[], doc.as_bytes());
    let body = "<Delete><Object><Key>tmp/a</Key></Object><Object><Key>keep/b</Key></Object></Delete>";
    let r = s.req_as(Some(ALT), "POST", "/polk?delete", &[], body.as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
    let text = r.text();
    assert!(text.contains("<Deleted><Key>tmp/a</Key>"), "{text}");
    assert!(text.contains("<Key>keep/b</Key><Code>AccessDenied</Code>"), "{text}");
    assert_eq!(s.req("GET", "/polk/tmp/a", &[], b"").status, 404);
    ok(&s, "GET", "/polk/keep/b", &[], b"");
    // A copy needs read on the source and write on the target.
    let r = s.req_as(Some(ALT), "PUT", "/polk/copies/c", &[("x-amz-copy-source", "/polk/src")], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(ok(&s, "GET", "/polk/copies/c", &[], b"").body, b"source");
    let r = s.req_as(Some(ALT), "PUT", "/polk/copies/d", &[("x-amz-copy-source", "/polk/secret")], b"");
    assert_eq!(r.status, 403);
    assert_eq!(s.req("GET", "/polk/copies/d", &[], b"").status, 404);
}

#[test]
fn public_access_block_and_policy_status() {
    let s = server();
    ok(&s, "PUT", "/polb", &[], b"");
    ok(&s, "PUT", "/polb/k", &[], b"v");
    let status = |s: &Server| ok(s, "GET", "/polb?policyStatus", &[], b"").xml("IsPublic");
    assert_eq!(status(&s).as_deref(), Some("false"));
    let r = s.req("GET", "/polb?publicAccessBlock", &[], b"");
    assert_eq!((r.status, r.xml("Code").as_deref()), (404, Some("NoSuchPublicAccessBlockConfiguration")));
    let public = policy(&[statement("Allow", "\"*\"", "s3:GetObject", "polb/*", "")]);
    ok(&s, "PUT", "/polb?policy", &[], public.as_bytes());
    assert_eq!(status(&s).as_deref(), Some("true"));
    assert_eq!(anon(&s, "GET", "/polb/k").status, 200);
    // RestrictPublicBuckets: the public policy grants nothing to others; the owner keeps all.
    let block = |fields: &str| format!("<PublicAccessBlockConfiguration>{fields}</PublicAccessBlockConfiguration>");
    ok(
        &s,
        "PUT",
        "/polb?publicAccessBlock",
        &[],
        block("<RestrictPublicBuckets>true</RestrictPublicBuckets>").as_bytes(),
    );
    let got = ok(&s, "GET", "/polb?publicAccessBlock", &[], b"");
    assert_eq!(got.xml("RestrictPublicBuckets").as_deref(), Some("true"));
    assert_eq!(got.xml("BlockPublicAcls").as_deref(), Some("false"));
    assert_eq!(anon(&s, "GET", "/polb/k").status, 403);
    ok(&s, "GET", "/polb/k", &[], b"");
    // BlockPublicPolicy refuses a public policy; BlockPublicAcls a public ACL.
    ok(&s, "DELETE", "/polb?policy", &[], b"");
    ok(
        &s,
        "PUT",
        "/polb?publicAccessBlock",
        &[],
        block("<BlockPublicAcls>true</BlockPublicAcls><BlockPublicPolicy>true</BlockPublicPolicy>").as_bytes(),
    );
    assert_eq!(s.req("PUT", "/polb?policy", &[], public.as_bytes()).status, 403);
    assert_eq!(s.req("GET", "/polb?policy", &[], b"").status, 404, "not stored");
    let named = policy(&[statement("Allow", r#"{"AWS":"ALTUSER"}"#, "s3:GetObject", "polb/*", "")]);
    ok(&s, "PUT", "/polb?policy", &[], named.as_bytes());
    assert_eq!(s.req("PUT", "/polb/p", &[("x-amz-acl", "public-read")], b"x").status, 403);
    assert_eq!(s.req("GET", "/polb/p", &[], b"").status, 404, "nothing written");
    assert_eq!(s.req("PUT", "/polb?acl", &[("x-amz-acl", "authenticated-read")], b"").status, 403);
    ok(&s, "PUT", "/polb/p", &[("x-amz-acl", "private")], b"x");
    // IgnorePublicAcls: a public-read object reads as private to others.
    ok(&s, "DELETE", "/polb?publicAccessBlock", &[], b"");
    ok(&s, "PUT", "/polb/open", &[("x-amz-acl", "public-read")], b"o");
    assert_eq!(anon(&s, "GET", "/polb/open").status, 200);
    ok(&s, "PUT", "/polb?publicAccessBlock", &[], block("<IgnorePublicAcls>true</IgnorePublicAcls>").as_bytes());
    assert_eq!(anon(&s, "GET", "/polb/open").status, 403);
    let r = s.req(
        "PUT",
        "/polb?publicAccessBlock",
        &[],
        b"<PublicAccessBlockConfiguration><Nope>true</Nope></PublicAccessBlockConfiguration>",
    );
    assert_eq!((r.status, r.xml("Code").as_deref()), (400, Some("MalformedXML")));
}
