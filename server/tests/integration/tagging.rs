//! Object and bucket tagging over raw HTTP: the documents byte for byte, `x-amz-tagging` on
//! writes, S3's limits and errors (nothing changed on a refusal), tags kept across a restart.

use crate::common::Server;

fn ok(s: &Server, method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> crate::common::Resp {
    let r = s.req(method, target, headers, body);
    assert!(r.status < 300, "{method} {target}: {} {}", r.status, r.text());
    r
}

fn tagging(pairs: &[(&str, &str)]) -> String {
    let tags: String = pairs.iter().map(|(k, v)| format!("<Tag><Key>{k}</Key><Value>{v}</Value></Tag>")).collect();
    format!("<Tagging><TagSet>{tags}</TagSet></Tagging>")
}

/// The tag document keel answers GetObjectTagging and GetBucketTagging with.
fn answer(pairs: &[(&str, &str)]) -> String {
    let tags: String = pairs.iter().map(|(k, v)| format!("<Tag><Key>{k}</Key><Value>{v}</Value></Tag>")).collect();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Tagging xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><TagSet>{tags}</TagSet></Tagging>"
    )
}

#[test]
fn object_tags_on_put_get_head_and_replace() {
    let mut s = Server::start();
    ok(&s, "PUT", "/tgo", &[], b"");
    // Query form: `+` is a space, a tag without `=` has an empty value.
    ok(&s, "PUT", "/tgo/k", &[("x-amz-tagging", "team=ml+ops&empty&x=%2B1")], b"data");
    let r = ok(&s, "GET", "/tgo/k?tagging", &[], b"");
    // Answered in key order, as S3 does.
    assert_eq!(r.text(), answer(&[("empty", ""), ("team", "ml ops"), ("x", "+1")]));
    let head = ok(&s, "HEAD", "/tgo/k", &[], b"");
    assert_eq!(head.header("x-amz-tagging-count"), Some("3"));
    assert_eq!(ok(&s, "GET", "/tgo/k", &[], b"").header("x-amz-tagging-count"), Some("3"));
    // Replacing the tags keeps the version: same ETag, same Last-Modified.
    ok(&s, "PUT", "/tgo/k?tagging", &[], tagging(&[("a", "1")]).as_bytes());
    assert_eq!(ok(&s, "GET", "/tgo/k?tagging", &[], b"").text(), answer(&[("a", "1")]));
    let after = ok(&s, "HEAD", "/tgo/k", &[], b"");
    assert_eq!(after.header("etag"), head.header("etag"));
    assert_eq!(after.header("last-modified"), head.header("last-modified"));
    assert_eq!(after.header("x-amz-tagging-count"), Some("1"));
    assert_eq!(ok(&s, "GET", "/tgo/k", &[], b"").body, b"data");
    // Kept across a restart.
    s.restart();
    assert_eq!(ok(&s, "GET", "/tgo/k?tagging", &[], b"").text(), answer(&[("a", "1")]));
    // DeleteObjectTagging: 204, then an empty set and no count header.
    assert_eq!(s.req("DELETE", "/tgo/k?tagging", &[], b"").status, 204);
    assert_eq!(ok(&s, "GET", "/tgo/k?tagging", &[], b"").text(), answer(&[]));
    assert_eq!(ok(&s, "HEAD", "/tgo/k", &[], b"").header("x-amz-tagging-count"), None);
    // A missing key, and a version that is not the null one.
    let r = s.req("GET", "/tgo/nope?tagging", &[], b"");
    assert_eq!((r.status, r.xml("Code").as_deref()), (404, Some("NoSuchKey")));
    let r = s.req("PUT", "/tgo/nope?tagging", &[], tagging(&[("a", "1")]).as_bytes());
    assert_eq!((r.status, r.xml("Code").as_deref()), (404, Some("NoSuchKey")));
    assert!(s.req("GET", "/tgo/k?tagging&versionId=abc", &[], b"").status >= 400);
    assert_eq!(s.req("GET", "/tgo/k?tagging&versionId=null", &[], b"").status, 200);
}

#[test]
fn refused_tag_sets_change_nothing() {
    let s = Server::start();
    ok(&s, "PUT", "/tlim", &[], b"");
    ok(&s, "PUT", "/tlim/k", &[("x-amz-tagging", "keep=me")], b"x");
    let k129 = "k".repeat(129);
    let v257 = "v".repeat(257);
    let eleven: Vec<(String, String)> = (0..11).map(|i| (i.to_string(), i.to_string())).collect();
    let eleven: Vec<(&str, &str)> = eleven.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let cases: Vec<(String, &str)> = vec![
        (tagging(&eleven), "InvalidTag"),
        (tagging(&[(&k129, "v")]), "InvalidTag"),
        (tagging(&[("k", &v257)]), "InvalidTag"),
        (tagging(&[("k", "1"), ("k", "2")]), "InvalidTag"),
        (tagging(&[("aws:reserved", "1")]), "InvalidTag"),
        (tagging(&[("", "1")]), "InvalidTag"),
        (tagging(&[("a&lt;b", "1")]), "InvalidTag"),
        ("<Tagging><TagSet><Tag><Key>k</Key></Tag></TagSet></Tagging>".into(), "MalformedXML"),
        ("<Tagging><TagSet><Tag><Key>k</Key><Value>v</Value>".into(), "MalformedXML"),
        ("<Other/>".into(), "MalformedXML"),
        (String::new(), "MalformedXML"),
    ];
    for (body, code) in &cases {
        let r = s.req("PUT", "/tlim/k?tagging", &[], body.as_bytes());
        assert_eq!((r.status, r.xml("Code").as_deref()), (400, Some(*code)), "{body}");
    }
    assert_eq!(ok(&s, "GET", "/tlim/k?tagging", &[], b"").text(), answer(&[("keep", "me")]));
    // The limits hold on writes too: nothing is stored.
    let header_cases = [("x-amz-tagging", "a=1&a=2"), ("x-amz-tagging", "bad=%FF")];
    for (h, v) in header_cases {
        let r = s.req("PUT", "/tlim/new", &[(h, v)], b"x");
        assert_eq!(r.status, 400, "{v}: {}", r.text());
    }
    let many: String = (0..11).map(|i| format!("t{i}=v")).collect::<Vec<_>>().join("&");
    let r = s.req("PUT", "/tlim/new", &[("x-amz-tagging", &many)], b"x");
    assert_eq!((r.status, r.xml("Code").as_deref()), (400, Some("InvalidTag")));
    assert_eq!(s.req("HEAD", "/tlim/new", &[], b"").status, 404);
    // The largest set S3 allows is taken.
    let big: Vec<(String, String)> = (0..10).map(|i| (format!("{i}{}", "k".repeat(127)), "v".repeat(256))).collect();
    let big: Vec<(&str, &str)> = big.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    ok(&s, "PUT", "/tlim/k?tagging", &[], tagging(&big).as_bytes());
    assert_eq!(ok(&s, "GET", "/tlim/k?tagging", &[], b"").text(), answer(&big));
}

#[test]
fn copies_and_multipart_uploads_carry_tags() {
    let s = Server::start();
    ok(&s, "PUT", "/tcp", &[], b"");
    ok(&s, "PUT", "/tcp/src", &[("x-amz-tagging", "a=1&b=2")], b"source");
    // COPY (the default) keeps the source's tags; a request's own tags are for REPLACE.
    ok(&s, "PUT", "/tcp/c1", &[("x-amz-copy-source", "/tcp/src")], b"");
    assert_eq!(ok(&s, "GET", "/tcp/c1?tagging", &[], b"").text(), answer(&[("a", "1"), ("b", "2")]));
    ok(
        &s,
        "PUT",
        "/tcp/c2",
        &[("x-amz-copy-source", "/tcp/src"), ("x-amz-tagging-directive", "REPLACE"), ("x-amz-tagging", "c=3")],
        b"",
    );
    assert_eq!(ok(&s, "GET", "/tcp/c2?tagging", &[], b"").text(), answer(&[("c", "3")]));
    ok(&s, "PUT", "/tcp/c3", &[("x-amz-copy-source", "/tcp/src"), ("x-amz-tagging-directive", "REPLACE")], b"");
    assert_eq!(ok(&s, "GET", "/tcp/c3?tagging", &[], b"").text(), answer(&[]));
    let r = s.req("PUT", "/tcp/c4", &[("x-amz-copy-source", "/tcp/src"), ("x-amz-tagging-directive", "MERGE")], b"");
    assert_eq!((r.status, r.xml("Code").as_deref()), (400, Some("InvalidArgument")));
    assert_eq!(s.req("HEAD", "/tcp/c4", &[], b"").status, 404);
    // CreateMultipartUpload's tags go to the completed object.
    let r = ok(&s, "POST", "/tcp/mp?uploads", &[("x-amz-tagging", "Hello=World&foo=bar")], b"");
    let id = r.xml("UploadId").unwrap();
    let part = ok(&s, "PUT", &format!("/tcp/mp?partNumber=1&uploadId={id}"), &[], b"only part");
    let etag = part.header("etag").unwrap().to_owned();
    let done = format!(
        "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{etag}</ETag></Part></CompleteMultipartUpload>"
    );
    ok(&s, "POST", &format!("/tcp/mp?uploadId={id}"), &[], done.as_bytes());
    assert_eq!(ok(&s, "GET", "/tcp/mp?tagging", &[], b"").text(), answer(&[("Hello", "World"), ("foo", "bar")]));
    assert_eq!(ok(&s, "HEAD", "/tcp/mp", &[], b"").header("x-amz-tagging-count"), Some("2"));
}

#[test]
fn bucket_tags() {
    let mut s = Server::start();
    ok(&s, "PUT", "/tbk", &[], b"");
    let r = s.req("GET", "/tbk?tagging", &[], b"");
    assert_eq!((r.status, r.xml("Code").as_deref()), (404, Some("NoSuchTagSet")));
    assert_eq!(s.req("PUT", "/tbk?tagging", &[], tagging(&[("Hello", "World")]).as_bytes()).status, 204);
    assert_eq!(ok(&s, "GET", "/tbk?tagging", &[], b"").text(), answer(&[("Hello", "World")]));
    s.restart();
    assert_eq!(ok(&s, "GET", "/tbk?tagging", &[], b"").text(), answer(&[("Hello", "World")]));
    // Up to 50 tags on a bucket; 51 are refused and change nothing.
    let fifty: Vec<(String, String)> = (0..51).map(|i| (format!("k{i}"), "v".into())).collect();
    let fifty: Vec<(&str, &str)> = fifty.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let r = s.req("PUT", "/tbk?tagging", &[], tagging(&fifty).as_bytes());
    assert_eq!((r.status, r.xml("Code").as_deref()), (400, Some("InvalidTag")));
    assert_eq!(ok(&s, "GET", "/tbk?tagging", &[], b"").text(), answer(&[("Hello", "World")]));
    assert_eq!(s.req("PUT", "/tbk?tagging", &[], tagging(&fifty[..50]).as_bytes()).status, 204);
    assert_eq!(s.req("DELETE", "/tbk?tagging", &[], b"").status, 204);
    let r = s.req("GET", "/tbk?tagging", &[], b"");
    assert_eq!((r.status, r.xml("Code").as_deref()), (404, Some("NoSuchTagSet")));
    // Another user may neither read nor change them.
    let r = s.req_as(None, "GET", "/tbk?tagging", &[], b"");
    assert_eq!(r.status, 403);
}
