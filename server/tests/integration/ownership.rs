//! Object ownership over raw HTTP (issue 18 item 1, D52): who owns what another user writes,
//! Put/Get/DeleteBucketOwnershipControls, BucketOwnerEnforced turning ACLs off, and the
//! bucket-owner-* canned ACLs on objects another user owns.

use crate::common::{AK, Resp, Server};

const ALT: (&str, &str) = ("ALTUSER", "alt-secret");

fn ok(s: &Server, method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
    let r = s.req(method, target, headers, body);
    assert!(r.status < 300, "{method} {target}: {} {}", r.status, r.text());
    r
}

fn alt(s: &Server, method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
    s.req_as(Some(ALT), method, target, headers, body)
}

fn controls(o: &str) -> String {
    format!("<OwnershipControls><Rule><ObjectOwnership>{o}</ObjectOwnership></Rule></OwnershipControls>")
}

/// The owner's ID in a GetObjectAcl answer.
fn acl_owner(r: &Resp) -> String {
    let t = r.text();
    let owner = &t[t.find("<Owner>").expect("an Owner")..];
    owner[owner.find("<ID>").unwrap() + 4..owner.find("</ID>").unwrap()].to_owned()
}

#[test]
fn writers_own_what_they_write_unless_the_bucket_says_otherwise() {
    let mut s = Server::with_args(&["--user", "ALTUSER:alt-secret"]);
    ok(&s, "PUT", "/ownb", &[("x-amz-acl", "public-read-write")], b"");
    let r = s.req("GET", "/ownb?ownershipControls", &[], b"");
    assert_eq!((r.status, r.xml("Code").as_deref()), (404, Some("OwnershipControlsNotFoundError")));
    // No controls: the writer owns its object, reads its ACL; the bucket's owner still reads.
    assert_eq!(alt(&s, "PUT", "/ownb/by-alt", &[], b"alt's").status, 200);
    let r = alt(&s, "GET", "/ownb/by-alt?acl", &[], b"");
    assert_eq!((r.status, acl_owner(&r)), (200, "ALTUSER".to_owned()), "{}", r.text());
    assert_eq!(ok(&s, "GET", "/ownb/by-alt", &[], b"").body, b"alt's");
    // bucket-owner-read: the ACL grants the bucket's owner READ.
    assert_eq!(alt(&s, "PUT", "/ownb/shared", &[("x-amz-acl", "bucket-owner-read")], b"s").status, 200);
    let text = alt(&s, "GET", "/ownb/shared?acl", &[], b"").text();
    assert!(
        text.contains(&format!("<ID>{AK}</ID><DisplayName>{AK}</DisplayName></Grantee><Permission>READ</Permission>")),
        "{text}"
    );
    // An object the bucket's owner writes is the bucket owner's: another user cannot read its ACL.
    ok(&s, "PUT", "/ownb/by-owner", &[], b"o");
    assert_eq!(alt(&s, "GET", "/ownb/by-owner?acl", &[], b"").status, 403);

    // BucketOwnerPreferred: the bucket's owner gets what is written with bucket-owner-full-control.
    ok(&s, "PUT", "/ownb?ownershipControls", &[], controls("BucketOwnerPreferred").as_bytes());
    assert_eq!(
        ok(&s, "GET", "/ownb?ownershipControls", &[], b"").xml("ObjectOwnership").as_deref(),
        Some("BucketOwnerPreferred")
    );
    alt(&s, "PUT", "/ownb/given", &[("x-amz-acl", "bucket-owner-full-control")], b"g");
    assert_eq!(acl_owner(&ok(&s, "GET", "/ownb/given?acl", &[], b"")), AK);
    alt(&s, "PUT", "/ownb/kept", &[], b"k");
    assert_eq!(acl_owner(&ok(&s, "GET", "/ownb/kept?acl", &[], b"")), "ALTUSER");

    // BucketOwnerEnforced needs a private bucket ACL, then turns ACLs off.
    let r = s.req("PUT", "/ownb?ownershipControls", &[], controls("BucketOwnerEnforced").as_bytes());
    assert_eq!((r.status, r.xml("Code").as_deref()), (400, Some("InvalidBucketAclWithObjectOwnership")));
    ok(&s, "PUT", "/ownb?acl", &[("x-amz-acl", "private")], b"");
    ok(&s, "PUT", "/ownb?ownershipControls", &[], controls("BucketOwnerEnforced").as_bytes());
    for (method, target, acl) in
        [("PUT", "/ownb/x", "private"), ("PUT", "/ownb?acl", "private"), ("PUT", "/ownb/by-owner?acl", "public-read")]
    {
        let r = s.req(method, target, &[("x-amz-acl", acl)], b"");
        assert_eq!((r.status, r.xml("Code").as_deref()), (400, Some("AccessControlListNotSupported")), "{target}");
    }
    assert_eq!(s.req("GET", "/ownb/x", &[], b"").status, 404, "nothing written");
    ok(&s, "PUT", "/ownb/y", &[("x-amz-acl", "bucket-owner-full-control")], b"y");
    let r = s.req(
        "PUT",
        "/ownb?ownershipControls",
        &[],
        b"<OwnershipControls><Rule><ObjectOwnership>Nobody</ObjectOwnership></Rule></OwnershipControls>",
    );
    assert_eq!(r.status, 400);
    // Kept across a restart; deleted (twice is fine).
    s.restart();
    assert_eq!(
        ok(&s, "GET", "/ownb?ownershipControls", &[], b"").xml("ObjectOwnership").as_deref(),
        Some("BucketOwnerEnforced")
    );
    assert_eq!(ok(&s, "DELETE", "/ownb?ownershipControls", &[], b"").status, 204);
    assert_eq!(ok(&s, "DELETE", "/ownb?ownershipControls", &[], b"").status, 204);
    assert_eq!(s.req("GET", "/ownb?ownershipControls", &[], b"").status, 404);
    // Set at creation.
    ok(&s, "PUT", "/ownc", &[("x-amz-object-ownership", "BucketOwnerEnforced")], b"");
    assert_eq!(
        ok(&s, "GET", "/ownc?ownershipControls", &[], b"").xml("ObjectOwnership").as_deref(),
        Some("BucketOwnerEnforced")
    );
    let r =
        s.req("PUT", "/ownd", &[("x-amz-object-ownership", "BucketOwnerEnforced"), ("x-amz-acl", "public-read")], b"");
    assert_eq!((r.status, r.xml("Code").as_deref()), (400, Some("InvalidBucketAclWithObjectOwnership")));
}

fn acp(grants: &[(&str, &str)]) -> String {
    let body: String = grants
        .iter()
        .map(|(who, perm)| {
            let grantee = if who.starts_with("http") {
                format!("<Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"Group\"><URI>{who}</URI></Grantee>")
            } else {
                format!("<Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"CanonicalUser\"><ID>{who}</ID></Grantee>")
            };
            format!("<Grant>{grantee}<Permission>{perm}</Permission></Grant>")
        })
        .collect();
    format!(
        "<AccessControlPolicy><Owner><ID>{AK}</ID></Owner><AccessControlList>{body}</AccessControlList></AccessControlPolicy>"
    )
}

const ALL_USERS: &str = "http://acs.amazonaws.com/groups/global/AllUsers";

#[test]
fn explicit_grants_on_buckets_and_objects() {
    let s = Server::with_args(&["--user", "ALTUSER:alt-secret"]);
    ok(&s, "PUT", "/grb", &[("x-amz-grant-read", "id=\"ALTUSER\"")], b"");
    assert_eq!(alt(&s, "GET", "/grb?list-type=2", &[], b"").status, 200, "READ lists");
    assert_eq!(alt(&s, "PUT", "/grb/a", &[], b"a").status, 403);
    let text = ok(&s, "GET", "/grb?acl", &[], b"").text();
    assert!(
        text.contains("<ID>ALTUSER</ID><DisplayName>ALTUSER</DisplayName></Grantee><Permission>READ</Permission>"),
        "{text}"
    );
    // A document: WRITE to ALTUSER, READ_ACP to everyone.
    ok(&s, "PUT", "/grb?acl", &[], acp(&[("ALTUSER", "WRITE"), (ALL_USERS, "READ_ACP")]).as_bytes());
    assert_eq!(alt(&s, "PUT", "/grb/a", &[], b"a").status, 200, "WRITE writes");
    assert_eq!(alt(&s, "GET", "/grb?list-type=2", &[], b"").status, 403, "READ was replaced");
    assert_eq!(s.req_as(None, "GET", "/grb?acl", &[], b"").status, 200, "READ_ACP reads the ACL");
    assert_eq!(s.req_as(None, "PUT", "/grb?acl", &[("x-amz-acl", "public-read")], b"").status, 403);
    // Objects: READ to everyone by header; READ_ACP without WRITE_ACP by document.
    ok(&s, "PUT", "/grb/pub", &[("x-amz-grant-read", &format!("uri=\"{ALL_USERS}\""))], b"p");
    assert_eq!(s.req_as(None, "GET", "/grb/pub", &[], b"").body, b"p");
    ok(&s, "PUT", "/grb/mine", &[], b"m");
    assert_eq!(alt(&s, "GET", "/grb/mine?acl", &[], b"").status, 403);
    ok(&s, "PUT", "/grb/mine?acl", &[], acp(&[("ALTUSER", "READ_ACP")]).as_bytes());
    assert_eq!(alt(&s, "GET", "/grb/mine?acl", &[], b"").status, 200);
    assert_eq!(alt(&s, "GET", "/grb/mine", &[], b"").status, 403, "READ_ACP is not READ");
    assert_eq!(alt(&s, "PUT", "/grb/mine?acl", &[("x-amz-acl", "public-read")], b"").status, 403);
    ok(&s, "PUT", "/grb/mine?acl", &[], acp(&[("ALTUSER", "FULL_CONTROL")]).as_bytes());
    assert_eq!(alt(&s, "GET", "/grb/mine", &[], b"").body, b"m", "FULL_CONTROL reads");
    // Refusals: a user keel does not know, an e-mail, both forms at once, a broken document.
    for (headers, code) in [
        (vec![("x-amz-grant-read", "id=\"nobody\"")], "InvalidArgument"),
        (vec![("x-amz-grant-read", "emailAddress=\"a@example.com\"")], "UnresolvableGrantByEmailAddress"),
        (vec![("x-amz-grant-read", "id=\"ALTUSER\""), ("x-amz-acl", "private")], "InvalidRequest"),
    ] {
        let r = s.req("PUT", "/grb/refused", &headers, b"x");
        assert_eq!((r.status, r.xml("Code").as_deref()), (400, Some(code)), "{headers:?}");
    }
    assert_eq!(s.req("GET", "/grb/refused", &[], b"").status, 404);
    let r = s.req("PUT", "/grboth", &[("x-amz-acl", "private"), ("x-amz-grant-read", "id=\"ALTUSER\"")], b"");
    assert_eq!((r.status, r.xml("Code").as_deref()), (400, Some("InvalidRequest")));
    assert_eq!(s.req("HEAD", "/grboth", &[], b"").status, 404, "no bucket made");
    let r = s.req("PUT", "/grb?acl", &[], b"<AccessControlPolicy><Nope/></AccessControlPolicy>");
    assert_eq!((r.status, r.xml("Code").as_deref()), (400, Some("MalformedACLError")));
    // BlockPublicAcls refuses a document that grants to everyone.
    ok(
        &s,
        "PUT",
        "/grb?publicAccessBlock",
        &[],
        b"<PublicAccessBlockConfiguration><BlockPublicAcls>true</BlockPublicAcls></PublicAccessBlockConfiguration>",
    );
    assert_eq!(s.req("PUT", "/grb/mine?acl", &[], acp(&[(ALL_USERS, "READ")]).as_bytes()).status, 403);
}
