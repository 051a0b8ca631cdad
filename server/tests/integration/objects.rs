//! Object semantics over raw HTTP: exact bytes of ranges, conditionals, keys, listings, copies,
//! deletes and error documents.

use crate::common::{Server, data_files, files_under};

fn bucket(s: &Server, name: &str) {
    let r = s.req("PUT", &format!("/{name}"), &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn ranges_exact_bytes() {
    let s = Server::start();
    bucket(&s, "rng");
    let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
    assert_eq!(s.req("PUT", "/rng/obj", &[], &data).status, 200);
    assert_eq!(s.req("PUT", "/rng/empty", &[], b"").status, 200);
    let cases: &[(&str, u16, Option<(usize, usize)>)] = &[
        ("bytes=0-99", 206, Some((0, 100))),
        ("bytes=99990-", 206, Some((99_990, 10))),
        ("bytes=-1", 206, Some((99_999, 1))),
        ("bytes=50000-999999999", 206, Some((50_000, 50_000))),
        ("bytes=100000-", 416, None),
        ("bytes=-0", 416, None),
        ("bytes=5-1", 200, Some((0, 100_000))),
    ];
    for (h, status, want) in cases {
        let r = s.req("GET", "/rng/obj", &[("Range", h)], b"");
        assert_eq!(r.status, *status, "{h}");
        match (status, want) {
            (206, Some((start, len))) => {
                assert_eq!(r.body, &data[*start..start + len], "{h}");
                assert_eq!(
                    r.header("content-range"),
                    Some(format!("bytes {}-{}/100000", start, start + len - 1).as_str())
                );
                assert_eq!(r.header("accept-ranges"), Some("bytes"));
            }
            (200, Some(_)) => assert_eq!(r.body, data),
            _ => {
                assert_eq!(r.header("content-range"), Some("bytes */100000"));
                assert_eq!(r.xml("Code").as_deref(), Some("InvalidRange"));
            }
        }
    }
    let r = s.req("GET", "/rng/empty", &[("Range", "bytes=0-")], b"");
    assert_eq!(r.status, 416);
    assert_eq!(r.header("content-range"), Some("bytes */0"));
    let r = s.req("HEAD", "/rng/obj", &[("Range", "bytes=10-19")], b"");
    assert_eq!((r.status, r.header("content-length")), (206, Some("10")));
    assert!(r.body.is_empty());
}

#[test]
fn conditional_requests() {
    let s = Server::start();
    bucket(&s, "cond");
    let r = s.req("PUT", "/cond/k", &[], b"abc");
    let etag = r.header("etag").unwrap().to_owned();
    assert_eq!(etag, "\"900150983cd24fb0d6963f7d28e17f72\"");
    let lm = s.req("HEAD", "/cond/k", &[], b"").header("last-modified").unwrap().to_owned();
    let r = s.req("GET", "/cond/k", &[("If-None-Match", &etag)], b"");
    assert_eq!(r.status, 304);
    assert_eq!(r.header("etag"), Some(etag.as_str()));
    assert!(r.body.is_empty());
    assert_eq!(s.req("GET", "/cond/k", &[("If-Match", "\"nope\"")], b"").status, 412);
    assert_eq!(s.req("GET", "/cond/k", &[("If-Match", &etag), ("Range", "bytes=0-0")], b"").status, 206);
    assert_eq!(s.req("GET", "/cond/k", &[("If-Match", "\"other\""), ("Range", "bytes=0-0")], b"").status, 412);
    assert_eq!(s.req("GET", "/cond/k", &[("If-Modified-Since", &lm)], b"").status, 304);
    assert_eq!(s.req("HEAD", "/cond/k", &[("If-Unmodified-Since", "Mon, 01 Jan 2001 00:00:00 GMT")], b"").status, 412);
    // Conditional PUT: If-None-Match: * refuses an existing key and accepts a new one.
    let r = s.req("PUT", "/cond/k", &[("If-None-Match", "*")], b"new");
    assert_eq!(r.status, 412);
    assert_eq!(s.req("GET", "/cond/k", &[], b"").body, b"abc");
    assert_eq!(s.req("PUT", "/cond/fresh", &[("If-None-Match", "*")], b"new").status, 200);
    // If-Match on PUT (compare-and-swap on the ETag): a wrong ETag is 412 and writes nothing, a
    // missing key is 404, the right one replaces the object; the old ETag no longer matches.
    let r = s.req("PUT", "/cond/k", &[("If-Match", "\"0123\"")], b"lost");
    assert_eq!((r.status, r.xml("Code").as_deref()), (412, Some("PreconditionFailed")));
    let r = s.req("PUT", "/cond/missing", &[("If-Match", &etag)], b"x");
    assert_eq!((r.status, r.xml("Code").as_deref()), (404, Some("NoSuchKey")));
    let r = s.req("PUT", "/cond/k", &[("If-Match", &etag)], b"swapped");
    assert_eq!(r.status, 200, "{}", r.text());
    let new_etag = r.header("etag").unwrap().to_owned();
    assert_eq!(s.req("GET", "/cond/k", &[], b"").body, b"swapped");
    assert_eq!(s.req("PUT", "/cond/k", &[("If-Match", &etag)], b"stale").status, 412);
    let unquoted = new_etag.trim_matches('"').to_owned();
    assert_eq!(s.req("PUT", "/cond/k", &[("If-Match", &unquoted)], b"again").status, 200);
    assert_eq!(s.req("PUT", "/cond/k", &[("If-Match", "*")], b"any").status, 200);
    assert_eq!(s.req("GET", "/cond/k", &[], b"").body, b"any");
    assert_eq!(data_files(&s), 0, "small objects are inline; a refused PUT leaves no file behind");
    let big = vec![9u8; 100_000];
    let r = s.req("PUT", "/cond/big", &[], &big);
    let big_etag = r.header("etag").unwrap().to_owned();
    assert_eq!(s.req("PUT", "/cond/big", &[("If-Match", "\"feed\"")], &big).status, 412);
    assert_eq!(s.req("PUT", "/cond/big", &[("If-Match", &big_etag)], &big[1..]).status, 200);
    assert_eq!(data_files(&s), 1, "the replaced and the refused bodies left no files");
    let r = s.req("PUT", "/cond/k", &[("If-Match", "*"), ("If-None-Match", "*")], b"both");
    assert_eq!(r.status, 501);
}

#[test]
fn keys_are_bytes_never_paths() {
    let s = Server::start();
    bucket(&s, "keys");
    let long = "k".repeat(1024);
    let keys = [
        "a",
        "a/b",
        "..",
        "../../etc/passwd",
        "a//b",
        "./x",
        "a/../b",
        "trailing/",
        "sp%20ace",
        "plus+sign",
        "%C3%BCnicode",
        long.as_str(),
    ];
    for (i, k) in keys.iter().enumerate() {
        let body = format!("body-{i}").repeat(2000); // data files, not inline
        let r = s.req("PUT", &format!("/keys/{k}"), &[], body.as_bytes());
        assert_eq!(r.status, 200, "{k}: {}", r.text());
    }
    for (i, k) in keys.iter().enumerate() {
        let r = s.req("GET", &format!("/keys/{k}"), &[], b"");
        assert_eq!(r.status, 200, "{k}");
        assert_eq!(r.body, format!("body-{i}").repeat(2000).as_bytes(), "{k}");
    }
    // Nothing was written outside the mountpaths' object directories.
    for m in &s.mountpaths {
        for f in files_under(m) {
            let rel = f.strip_prefix(m).unwrap().to_string_lossy().into_owned();
            assert!(
                rel.starts_with("objects/") || rel.starts_with("index/") || rel.starts_with("keel-"),
                "unexpected file {rel}"
            );
        }
    }
    assert!(!s.dir.path().join("etc").exists());
    let r = s.req("PUT", &format!("/keys/{}", "k".repeat(1025)), &[], b"x");
    assert_eq!(r.xml("Code").as_deref(), Some("KeyTooLongError"));
    let r = s.req("GET", "/keys?list-type=2&encoding-type=url", &[], b"");
    assert_eq!(r.xml("KeyCount").as_deref(), Some(keys.len().to_string().as_str()));
    assert!(r.text().contains("<Key>plus%2Bsign</Key>"), "{}", r.text());
    assert!(r.text().contains("<Key>sp%20ace</Key>"));
}

#[test]
fn listing_pages_prefixes_and_delimiters() {
    let s = Server::start();
    bucket(&s, "lst");
    let keys = ["a/1", "a/2", "a/b/3", "b/1", "c", "d-x-1", "d-x-2", "d-y"];
    for k in keys {
        assert_eq!(s.req("PUT", &format!("/lst/{k}"), &[], k.as_bytes()).status, 200);
    }
    let r = s.req("GET", "/lst?list-type=2&delimiter=/", &[], b"");
    let t = r.text();
    assert!(
        t.contains(
            "<CommonPrefixes><Prefix>a/</Prefix></CommonPrefixes><CommonPrefixes><Prefix>b/</Prefix></CommonPrefixes>"
        ),
        "{t}"
    );
    assert_eq!(r.xml("KeyCount").as_deref(), Some("6"));
    let r = s.req("GET", "/lst?list-type=2&prefix=a/&delimiter=/", &[], b"");
    assert!(r.text().contains("<Prefix>a/b/</Prefix>"));
    assert_eq!(r.xml("KeyCount").as_deref(), Some("3"));
    // Any delimiter string.
    let r = s.req("GET", "/lst?delimiter=-x-", &[], b"");
    assert!(r.text().contains("<Prefix>d-x-</Prefix>"), "{}", r.text());
    // v2 paging with max-keys=3 returns every key exactly once.
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let target = match &token {
            None => "/lst?list-type=2&max-keys=3".to_owned(),
            Some(t) => {
                format!("/lst?list-type=2&max-keys=3&continuation-token={}", keel::http::uri::uri_encode(t, true))
            }
        };
        let r = s.req("GET", &target, &[], b"");
        assert_eq!(r.status, 200, "{}", r.text());
        let t = r.text();
        for part in t.split("<Key>").skip(1) {
            seen.push(part.split("</Key>").next().unwrap().to_owned());
        }
        if r.xml("IsTruncated").as_deref() == Some("true") {
            token = r.xml("NextContinuationToken");
        } else {
            break;
        }
    }
    assert_eq!(seen, keys);
    // v1 paging by marker, with a delimiter, never repeats a common prefix.
    let r = s.req("GET", "/lst?delimiter=/&max-keys=1", &[], b"");
    assert_eq!(r.xml("NextMarker").as_deref(), Some("a/"));
    let r = s.req("GET", "/lst?delimiter=/&max-keys=1&marker=a/", &[], b"");
    assert_eq!(r.xml("Prefix").as_deref(), Some(""));
    assert!(r.text().contains("<CommonPrefixes><Prefix>b/</Prefix>"), "{}", r.text());
    // start-after and max-keys bounds.
    let r = s.req("GET", "/lst?list-type=2&start-after=c", &[], b"");
    assert_eq!(r.xml("KeyCount").as_deref(), Some("3"));
    let r = s.req("GET", "/lst?list-type=2&max-keys=0", &[], b"");
    assert_eq!((r.xml("KeyCount").as_deref(), r.xml("IsTruncated").as_deref()), (Some("0"), Some("false")));
    assert_eq!(s.req("GET", "/lst?max-keys=-1", &[], b"").xml("Code").as_deref(), Some("InvalidArgument"));
    assert_eq!(s.req("GET", "/lst?max-keys=abc", &[], b"").status, 400);
    assert_eq!(s.req("GET", "/lst?list-type=2&continuation-token=!!!", &[], b"").status, 400);
    let r = s.req("GET", "/lst?versions", &[], b"");
    assert!(r.text().contains("<VersionId>null</VersionId><IsLatest>true</IsLatest>"));
}

#[test]
fn overwrite_copy_and_delete_leave_no_orphans() {
    let s = Server::start();
    bucket(&s, "owr");
    bucket(&s, "owr2");
    let big = vec![1u8; 200_000];
    assert_eq!(s.req("PUT", "/owr/k", &[("Content-Type", "text/x-a"), ("x-amz-meta-color", "red")], &big).status, 200);
    assert_eq!(data_files(&s), 1);
    assert_eq!(s.req("PUT", "/owr/k", &[], &vec![2u8; 200_001]).status, 200);
    assert_eq!(data_files(&s), 1, "an overwrite unlinks the old data file");
    assert_eq!(s.req("GET", "/owr/k", &[], b"").body.len(), 200_001);

    // CopyObject: same bucket needs a change, cross-bucket copies metadata or replaces it.
    assert_eq!(s.req("PUT", "/owr/m", &[("Content-Type", "text/x-a"), ("x-amz-meta-color", "red")], &big).status, 200);
    let r = s.req("PUT", "/owr/m", &[("x-amz-copy-source", "/owr/m")], b"");
    assert_eq!(r.xml("Code").as_deref(), Some("InvalidRequest"));
    let r = s.req("PUT", "/owr2/copy", &[("x-amz-copy-source", "/owr/m")], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("<CopyObjectResult"));
    let h = s.req("HEAD", "/owr2/copy", &[], b"");
    assert_eq!((h.header("content-type"), h.header("x-amz-meta-color")), (Some("text/x-a"), Some("red")));
    let r = s.req(
        "PUT",
        "/owr2/copy2",
        &[("x-amz-copy-source", "owr/m"), ("x-amz-metadata-directive", "REPLACE"), ("Content-Type", "text/y")],
        b"",
    );
    assert_eq!(r.status, 200);
    let h = s.req("HEAD", "/owr2/copy2", &[], b"");
    assert_eq!((h.header("content-type"), h.header("x-amz-meta-color")), (Some("text/y"), None));
    let r =
        s.req("PUT", "/owr2/c3", &[("x-amz-copy-source", "/owr/m"), ("x-amz-copy-source-if-match", "\"zzz\"")], b"");
    assert_eq!(r.status, 412);
    let r = s.req("PUT", "/owr2/c3", &[("x-amz-copy-source", "/owr/missing")], b"");
    assert_eq!(r.xml("Code").as_deref(), Some("NoSuchKey"));

    // DeleteObject is 204 whether or not the key exists; DeleteObjects reports per key.
    assert_eq!(s.req("DELETE", "/owr/k", &[], b"").status, 204);
    assert_eq!(s.req("DELETE", "/owr/k", &[], b"").status, 204);
    let doc = b"<Delete><Object><Key>m</Key></Object><Object><Key>never</Key></Object></Delete>";
    let r = s.req("POST", "/owr?delete", &[], doc);
    assert_eq!(r.status, 200);
    assert_eq!(r.text().matches("<Deleted>").count(), 2);
    let quiet = b"<Delete><Quiet>true</Quiet><Object><Key>x</Key></Object></Delete>";
    assert!(!s.req("POST", "/owr?delete", &[], quiet).text().contains("<Deleted>"));
    let too_many: String = (0..1001).map(|i| format!("<Object><Key>{i}</Key></Object>")).collect();
    let r = s.req("POST", "/owr?delete", &[], format!("<Delete>{too_many}</Delete>").as_bytes());
    assert_eq!(r.xml("Code").as_deref(), Some("MalformedXML"));
    assert_eq!(s.req("POST", "/owr?delete", &[], b"<Delete><Object>").xml("Code").as_deref(), Some("MalformedXML"));
    // A flexible checksum header on an XML body (boto3 sends CRC32 on DeleteObjects) is checked:
    // a wrong one deletes nothing.
    assert_eq!(s.req("PUT", "/owr/ck", &[], b"x").status, 200);
    let doc = b"<Delete><Object><Key>ck</Key></Object></Delete>";
    let b64 = |v: Vec<u8>| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, v);
    let right = b64(engine::FlexAlgorithm::Crc32.digest(doc));
    let wrong = b64(engine::FlexAlgorithm::Crc32.digest(b"something else"));
    let r = s.req("POST", "/owr?delete", &[("x-amz-checksum-crc32", &wrong)], doc);
    assert_eq!((r.status, r.xml("Code").as_deref()), (400, Some("BadDigest")), "{}", r.text());
    assert_eq!(s.req("HEAD", "/owr/ck", &[], b"").status, 200, "nothing was deleted");
    let r = s.req("POST", "/owr?delete", &[("x-amz-checksum-crc32", &right)], doc);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(s.req("HEAD", "/owr/ck", &[], b"").status, 404);
    for k in ["copy", "copy2"] {
        assert_eq!(s.req("DELETE", &format!("/owr2/{k}"), &[], b"").status, 204);
    }
    assert_eq!(data_files(&s), 0, "deletes unlink data files");
}

#[test]
fn headers_metadata_and_overrides() {
    let s = Server::start();
    bucket(&s, "hdr");
    let r = s.req(
        "PUT",
        "/hdr/k",
        &[
            ("Content-Type", "text/plain"),
            ("Content-Encoding", "gzip"),
            ("Content-Disposition", "attachment; filename=\"a.txt\""),
            ("Cache-Control", "max-age=60"),
            ("Expires", "Thu, 01 Dec 2044 16:00:00 GMT"),
            ("Content-Language", "en"),
            ("x-amz-meta-Project", "keel"),
        ],
        b"data",
    );
    assert_eq!(r.status, 200);
    let g = s.req("GET", "/hdr/k", &[], b"");
    assert_eq!(g.header("content-type"), Some("text/plain"));
    assert_eq!(g.header("content-encoding"), Some("gzip"));
    assert_eq!(g.header("content-disposition"), Some("attachment; filename=\"a.txt\""));
    assert_eq!(g.header("cache-control"), Some("max-age=60"));
    assert_eq!(g.header("expires"), Some("Thu, 01 Dec 2044 16:00:00 GMT"));
    assert_eq!(g.header("content-language"), Some("en"));
    assert_eq!(g.header("x-amz-meta-project"), Some("keel"));
    assert!(g.header("last-modified").unwrap().ends_with(" GMT"));
    // The listing's LastModified is the same instant, in XML's whole-second form.
    let secs = keel::time::parse_http_date(g.header("last-modified").unwrap()).unwrap();
    let listed = s.req("GET", "/hdr?list-type=2", &[], b"").xml("LastModified").unwrap();
    assert_eq!(listed, keel::time::iso8601_ms(secs * 1000));
    assert!(listed.ends_with(".000Z"), "{listed}");
    let g = s.req("GET", "/hdr/k?response-content-type=application/json&response-cache-control=no-cache", &[], b"");
    assert_eq!((g.header("content-type"), g.header("cache-control")), (Some("application/json"), Some("no-cache")));
    let r = s.req("PUT", "/hdr/md5", &[("Content-MD5", "AAAAAAAAAAAAAAAAAAAAAA==")], b"data");
    assert_eq!(r.xml("Code").as_deref(), Some("BadDigest"));
    let r = s.req("PUT", "/hdr/md5", &[("Content-MD5", "jXd/OF09/siBXSD3SWAm3A==")], b"data");
    assert_eq!(r.status, 200, "{}", r.text());
    let r = s.req("PUT", "/hdr/md5", &[("Content-MD5", "nonsense")], b"data");
    assert_eq!(r.xml("Code").as_deref(), Some("InvalidDigest"));
    let big_meta = "v".repeat(2100);
    let r = s.req("PUT", "/hdr/meta", &[("x-amz-meta-big", &big_meta)], b"data");
    assert_eq!(r.xml("Code").as_deref(), Some("MetadataTooLarge"));
}

#[test]
fn errors_are_s3_documents() {
    let s = Server::start();
    let r = s.req("GET", "/missing-bucket/k", &[], b"");
    assert_eq!(r.status, 404);
    assert!(r.text().starts_with("<?xml"));
    assert_eq!(r.xml("Code").as_deref(), Some("NoSuchBucket"));
    assert_eq!(r.xml("Resource").as_deref(), Some("/missing-bucket/k"));
    assert_eq!(r.xml("RequestId").as_deref(), r.header("x-amz-request-id"));
    bucket(&s, "errs");
    let r = s.req("GET", "/errs/nope", &[], b"");
    assert_eq!(r.xml("Code").as_deref(), Some("NoSuchKey"));
    let r = s.req("HEAD", "/errs/nope", &[], b"");
    assert_eq!((r.status, r.body.len()), (404, 0));
    assert_eq!(s.req("GET", "/errs?website", &[], b"").xml("Code").as_deref(), Some("NotImplemented"));
    assert_eq!(s.req("PATCH", "/errs/k", &[], b"").status, 405);
    assert_eq!(s.req("PUT", "/Bad_Name", &[], b"").xml("Code").as_deref(), Some("InvalidBucketName"));
}

#[test]
fn spliced_and_copied_bodies_are_the_same_bytes() {
    // One server splices everything from 1 byte on, the other never does.
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    for splice_min in ["1", "0"] {
        let s = Server::with_args(&["--splice-min", splice_min]);
        bucket(&s, "splice");
        assert_eq!(s.req("PUT", "/splice/big", &[], &data).status, 200);
        assert_eq!(s.req("GET", "/splice/big", &[], b"").body, data, "splice-min {splice_min}");
        for (a, b) in [(0usize, 99usize), (65_530, 65_540), (1_000_000, 2_999_999), (2_999_999, 2_999_999)] {
            let r = s.req("GET", "/splice/big", &[("Range", &format!("bytes={a}-{b}"))], b"");
            assert_eq!(r.body, &data[a..=b], "splice-min {splice_min} bytes={a}-{b}");
        }
    }
}

#[test]
fn odirect_writes_read_back() {
    let s = Server::with_args(&["--odirect"]);
    bucket(&s, "direct");
    for (i, len) in [9_000usize, 1 << 20, (3 << 20) + 123, 4096 * 3].into_iter().enumerate() {
        let data: Vec<u8> = (0..len).map(|j| (j * 31 + i) as u8).collect();
        assert_eq!(s.req("PUT", &format!("/direct/o{i}"), &[], &data).status, 200);
        assert_eq!(s.req("GET", &format!("/direct/o{i}"), &[], b"").body, data, "{len} bytes");
    }
}
