//! Multipart uploads over raw HTTP: restart in the middle, ranges across part boundaries against
//! a reference buffer, and the minimum part size.

use crate::common::{Server, data_files};

fn tag(s: &str, t: &str) -> String {
    let open = format!("<{t}>");
    let a = s.find(&open).unwrap_or_else(|| panic!("no <{t}> in {s}")) + open.len();
    let b = s[a..].find(&format!("</{t}>")).unwrap() + a;
    s[a..b].to_owned()
}

fn upload(s: &Server, bucket: &str, key: &str) -> String {
    let r = s.req("POST", &format!("/{bucket}/{key}?uploads"), &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    tag(&r.text(), "UploadId")
}

fn part(s: &Server, bucket: &str, key: &str, id: &str, n: u32, data: &[u8]) -> String {
    let r = s.req("PUT", &format!("/{bucket}/{key}?partNumber={n}&uploadId={id}"), &[], data);
    assert_eq!(r.status, 200, "{}", r.text());
    r.header("etag").unwrap().to_owned()
}

fn complete(s: &Server, bucket: &str, key: &str, id: &str, parts: &[(u32, String)]) -> crate::common::Resp {
    let body: String =
        parts.iter().map(|(n, e)| format!("<Part><ETag>{e}</ETag><PartNumber>{n}</PartNumber></Part>")).collect();
    s.req(
        "POST",
        &format!("/{bucket}/{key}?uploadId={id}"),
        &[],
        format!("<CompleteMultipartUpload>{body}</CompleteMultipartUpload>").as_bytes(),
    )
}

/// Deterministic bytes for part `n`.
fn bytes(n: u32, len: usize) -> Vec<u8> {
    (0..len).map(|i| ((i as u32).wrapping_mul(31) ^ n.wrapping_mul(7919)) as u8).collect()
}

#[test]
fn an_upload_continues_after_a_restart() {
    let mut s = Server::with_args(&["--min-part-size", "0"]);
    assert_eq!(s.req("PUT", "/resume", &[], b"").status, 200);
    let id = upload(&s, "resume", "obj");
    let e1 = part(&s, "resume", "obj", &id, 1, &bytes(1, 300_000));
    s.restart();
    let listed = s.req("GET", &format!("/resume/obj?uploadId={id}"), &[], b"").text();
    assert!(listed.contains("<PartNumber>1</PartNumber>"), "{listed}");
    assert!(s.req("GET", "/resume?uploads", &[], b"").text().contains(&id));
    let e2 = part(&s, "resume", "obj", &id, 2, &bytes(2, 1000));
    s.kill9();
    s.restart();
    let r = complete(&s, "resume", "obj", &id, &[(1, e1), (2, e2)]);
    assert_eq!(r.status, 200, "{}", r.text());
    let got = s.req("GET", "/resume/obj", &[], b"").body;
    assert_eq!(got, [bytes(1, 300_000), bytes(2, 1000)].concat());
}

#[test]
fn ranges_across_part_boundaries_match_a_reference() {
    let s = Server::with_args(&["--min-part-size", "0"]);
    assert_eq!(s.req("PUT", "/ranges", &[], b"").status, 200);
    let id = upload(&s, "ranges", "obj");
    let sizes = [70_000usize, 1, 130_000, 5, 65_536];
    let mut reference = Vec::new();
    let mut etags = Vec::new();
    for (i, len) in sizes.iter().enumerate() {
        let n = i as u32 + 1;
        let data = bytes(n, *len);
        etags.push((n, part(&s, "ranges", "obj", &id, n, &data)));
        reference.extend_from_slice(&data);
    }
    let r = complete(&s, "ranges", "obj", &id, &etags);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(tag(&r.text(), "ETag").ends_with("-5&quot;"), "{}", r.text());
    let size = reference.len() as u64;
    // Every boundary, its neighbours, and pseudo-random ranges.
    let mut cuts = vec![0u64];
    let mut at = 0u64;
    for len in sizes {
        at += len as u64;
        cuts.push(at);
    }
    let mut ranges: Vec<(u64, u64)> = Vec::new();
    for &c in &cuts {
        for d in [0u64, 1, 2] {
            let a = c.saturating_sub(d).min(size - 1);
            ranges.push((a, (a + d * 3 + 1).min(size - 1)));
        }
    }
    let mut x = 12345u64;
    for _ in 0..40 {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let a = (x >> 33) % size;
        let b = a + (x >> 11) % (size - a);
        ranges.push((a, b));
    }
    for (a, b) in ranges {
        let r = s.req("GET", "/ranges/obj", &[("Range", &format!("bytes={a}-{b}"))], b"");
        assert_eq!(r.status, 206);
        assert_eq!(r.body, &reference[a as usize..=b as usize], "bytes={a}-{b}");
        assert_eq!(r.header("content-range"), Some(format!("bytes {a}-{b}/{size}").as_str()));
    }
    let r = s.req("GET", "/ranges/obj", &[("Range", "bytes=-70001")], b"");
    assert_eq!(r.body, &reference[reference.len() - 70_001..]);
    assert_eq!(s.req("GET", "/ranges/obj", &[], b"").body, reference);
    // By part number: each part exactly.
    let mut start = 0usize;
    for (i, len) in sizes.iter().enumerate() {
        let r = s.req("GET", &format!("/ranges/obj?partNumber={}", i + 1), &[], b"");
        assert_eq!(r.status, 206);
        assert_eq!(r.body, &reference[start..start + len]);
        assert_eq!(r.header("x-amz-mp-parts-count"), Some("5"));
        start += len;
    }
    assert_eq!(s.req("GET", "/ranges/obj?partNumber=6", &[], b"").status, 416);
    assert_eq!(s.req("GET", "/ranges/obj?partNumber=1", &[("Range", "bytes=0-1")], b"").status, 400);
    // Deleting the object removes its part files.
    assert_eq!(s.req("DELETE", "/ranges/obj", &[], b"").status, 204);
    assert_eq!(data_files(&s), 0);
}

#[test]
fn minimum_part_size_is_enforced_by_default() {
    let s = Server::start();
    assert_eq!(s.req("PUT", "/minsize", &[], b"").status, 200);
    let id = upload(&s, "minsize", "obj");
    let e1 = part(&s, "minsize", "obj", &id, 1, b"small");
    let e2 = part(&s, "minsize", "obj", &id, 2, b"small");
    let r = complete(&s, "minsize", "obj", &id, &[(1, e1.clone()), (2, e2)]);
    assert_eq!((r.status, r.xml("Code").as_deref()), (400, Some("EntityTooSmall")));
    // The last part may be small: a single small part completes.
    let r = complete(&s, "minsize", "obj", &id, &[(1, e1)]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(data_files(&s), 1, "part 2 was not used and is gone");
    let r = s.req("POST", "/minsize/obj?uploadId=nonsense", &[], b"<CompleteMultipartUpload/>");
    assert_eq!(r.xml("Code").as_deref(), Some("NoSuchUpload"));
    let id = upload(&s, "minsize", "obj2");
    assert_eq!(
        s.req("POST", &format!("/minsize/obj2?uploadId={id}"), &[], b"<Nope/>").xml("Code").as_deref(),
        Some("MalformedXML")
    );
    assert_eq!(
        s.req(
            "POST",
            &format!("/minsize/obj2?uploadId={id}"),
            &[],
            b"<CompleteMultipartUpload></CompleteMultipartUpload>"
        )
        .xml("Code")
        .as_deref(),
        Some("MalformedXML")
    );
    assert_eq!(
        s.req("PUT", &format!("/minsize/obj2?partNumber=0&uploadId={id}"), &[], b"x").xml("Code").as_deref(),
        Some("InvalidArgument")
    );
    assert_eq!(s.req("PUT", &format!("/minsize/obj2?partNumber=10001&uploadId={id}"), &[], b"x").status, 400);
    assert_eq!(s.req("DELETE", "/minsize/obj", &[], b"").status, 204);
    assert_eq!(s.req("DELETE", &format!("/minsize/obj2?uploadId={id}"), &[], b"").status, 204);
    assert_eq!(s.req("DELETE", "/minsize", &[], b"").status, 204);
}

/// A bucket holding only unfinished uploads is deleted, and the uploads and their parts with it
/// (S3 does so, and Ceph's s3-tests clean up that way); one holding an object is not.
#[test]
fn deleting_a_bucket_takes_its_unfinished_uploads() {
    let mut s = Server::with_args(&["--min-part-size", "0"]);
    assert_eq!(s.req("PUT", "/withup", &[], b"").status, 200);
    let ids: Vec<String> = (0..3).map(|i| upload(&s, "withup", &format!("k{i}"))).collect();
    for (i, id) in ids.iter().enumerate() {
        part(&s, "withup", &format!("k{i}"), id, 1, &vec![7u8; 300_000]);
        part(&s, "withup", &format!("k{i}"), id, 2, b"tail");
    }
    assert_eq!(data_files(&s), 6);
    assert_eq!(s.req("PUT", "/withup/obj", &[], b"object").status, 200);
    assert_eq!(s.req("DELETE", "/withup", &[], b"").xml("Code").as_deref(), Some("BucketNotEmpty"));
    assert_eq!(s.req("DELETE", "/withup/obj", &[], b"").status, 204);
    assert_eq!(s.req("DELETE", "/withup", &[], b"").status, 204);
    assert_eq!(data_files(&s), 0, "the parts' files went with the uploads");
    assert_eq!(s.req("HEAD", "/withup", &[], b"").status, 404);
    // Re-created, the bucket has no uploads, and the old ids answer NoSuchUpload.
    assert_eq!(s.req("PUT", "/withup", &[], b"").status, 200);
    assert!(!s.req("GET", "/withup?uploads", &[], b"").text().contains("<Upload>"));
    let r = s.req("PUT", &format!("/withup/k0?partNumber=3&uploadId={}", ids[0]), &[], b"late");
    assert_eq!(r.xml("Code").as_deref(), Some("NoSuchUpload"));
    s.restart();
    assert!(!s.req("GET", "/withup?uploads", &[], b"").text().contains("<Upload>"));
}

/// Empty parts (allowed with `--min-part-size 0`, and always as the last part) read back by
/// part number as 200 with an empty body, never as a range ending before it starts.
#[test]
fn empty_parts_read_back_by_part_number() {
    let s = Server::with_args(&["--min-part-size", "0"]);
    assert_eq!(s.req("PUT", "/empty", &[], b"").status, 200);
    let id = upload(&s, "empty", "mid");
    let parts = vec![
        (1, part(&s, "empty", "mid", &id, 1, b"hello")),
        (2, part(&s, "empty", "mid", &id, 2, b"")),
        (3, part(&s, "empty", "mid", &id, 3, b"abc")),
    ];
    assert_eq!(complete(&s, "empty", "mid", &id, &parts).status, 200);
    let r = s.req("GET", "/empty/mid?partNumber=2", &[], b"");
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty());
    assert_eq!(r.header("content-length"), Some("0"));
    assert_eq!(r.header("content-range"), None);
    assert_eq!(r.header("x-amz-mp-parts-count"), Some("3"));
    let r = s.req("GET", "/empty/mid?partNumber=3", &[], b"");
    assert_eq!((r.status, r.body.as_slice()), (206, &b"abc"[..]));
    assert_eq!(r.header("content-range"), Some("bytes 5-7/8"));
    let r = s.req("HEAD", "/empty/mid?partNumber=2", &[], b"");
    assert_eq!((r.status, r.header("content-length")), (200, Some("0")));

    // A one-part upload of nothing: an empty object whose part 1 is empty.
    let id = upload(&s, "empty", "none");
    let parts = vec![(1, part(&s, "empty", "none", &id, 1, b""))];
    assert_eq!(complete(&s, "empty", "none", &id, &parts).status, 200);
    let r = s.req("GET", "/empty/none?partNumber=1", &[], b"");
    assert_eq!((r.status, r.body.len(), r.header("content-range")), (200, 0, None));
    assert_eq!(s.req("GET", "/empty/none", &[], b"").status, 200);
}

/// CompleteMultipartUpload honours If-None-Match: * and If-Match like PUT; a refused completion
/// applies nothing, so the upload can still be completed (or aborted) afterwards.
#[test]
fn conditional_completion() {
    let s = Server::with_args(&["--min-part-size", "0"]);
    assert_eq!(s.req("PUT", "/condmpu", &[], b"").status, 200);
    let finish = |hs: &[(&str, &str)], id: &str, etag: &str| {
        let body = format!(
            "<CompleteMultipartUpload><Part><ETag>{etag}</ETag><PartNumber>1</PartNumber></Part></CompleteMultipartUpload>"
        );
        s.req("POST", &format!("/condmpu/obj?uploadId={id}"), hs, body.as_bytes())
    };
    let id = upload(&s, "condmpu", "obj");
    let e = part(&s, "condmpu", "obj", &id, 1, b"first");
    let r = finish(&[("If-None-Match", "*")], &id, &e);
    assert_eq!(r.status, 200, "absent: {}", r.text());
    let first_etag = s.req("HEAD", "/condmpu/obj", &[], b"").header("etag").unwrap().to_owned();

    let id = upload(&s, "condmpu", "obj");
    let e = part(&s, "condmpu", "obj", &id, 1, b"second");
    let r = finish(&[("If-None-Match", "*")], &id, &e);
    assert_eq!((r.status, r.xml("Code").as_deref()), (412, Some("PreconditionFailed")));
    let r = finish(&[("If-Match", "\"0000\"")], &id, &e);
    assert_eq!(r.status, 412);
    assert_eq!(s.req("GET", "/condmpu/obj", &[], b"").body, b"first", "nothing was applied");
    let r = finish(&[("If-Match", &first_etag)], &id, &e);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(s.req("GET", "/condmpu/obj", &[], b"").body, b"second");
    assert_eq!(data_files(&s), 1, "the replaced object's part file is gone");
}

/// A whole-object checksum is echoed (in checksum mode) only for the whole object: not for an
/// empty part, which also answers 200.
#[test]
fn empty_part_does_not_carry_the_object_checksum() {
    let s = Server::with_args(&["--min-part-size", "0"]);
    assert_eq!(s.req("PUT", "/ckmpu", &[], b"").status, 200);
    let b64 = |v: Vec<u8>| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, v);
    let crc = |d: &[u8]| b64(engine::FlexAlgorithm::Crc32.digest(d));
    let r = s.req(
        "POST",
        "/ckmpu/obj?uploads",
        &[("x-amz-checksum-algorithm", "CRC32"), ("x-amz-checksum-type", "FULL_OBJECT")],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let id = tag(&r.text(), "UploadId");
    let mut parts = Vec::new();
    for (n, data) in [(1u32, &b"abc"[..]), (2, b""), (3, b"de")] {
        let c = crc(data);
        let r =
            s.req("PUT", &format!("/ckmpu/obj?partNumber={n}&uploadId={id}"), &[("x-amz-checksum-crc32", &c)], data);
        assert_eq!(r.status, 200, "{}", r.text());
        parts.push((n, r.header("etag").unwrap().to_owned()));
    }
    let r = complete(&s, "ckmpu", "obj", &id, &parts);
    assert_eq!(r.status, 200, "{}", r.text());
    let mode = [("x-amz-checksum-mode", "ENABLED")];
    let whole = s.req("GET", "/ckmpu/obj", &mode, b"");
    assert_eq!(whole.header("x-amz-checksum-crc32"), Some(crc(b"abcde").as_str()), "positive control");
    let empty = s.req("GET", "/ckmpu/obj?partNumber=2", &mode, b"");
    assert_eq!((empty.status, empty.body.len()), (200, 0));
    // The empty part's own checksum, never the object's.
    assert_eq!(empty.header("x-amz-checksum-crc32"), Some(crc(b"").as_str()));
    let head = s.req("HEAD", "/ckmpu/obj?partNumber=2", &mode, b"");
    assert_eq!(head.header("x-amz-checksum-crc32"), Some(crc(b"").as_str()));
    assert_eq!(head.header("x-amz-checksum-type"), Some("FULL_OBJECT"));
}

/// CompleteMultipartUpload repeated after it succeeded (a client retrying a lost answer) answers
/// the same result again, while the object it made is current.
#[test]
fn a_repeated_completion_answers_the_same_result() {
    let s = Server::with_args(&["--min-part-size", "0"]);
    assert_eq!(s.req("PUT", "/again", &[], b"").status, 200);
    let id = upload(&s, "again", "k");
    let parts = vec![(1, part(&s, "again", "k", &id, 1, b"first")), (2, part(&s, "again", "k", &id, 2, b"second"))];
    let first = complete(&s, "again", "k", &id, &parts);
    assert_eq!(first.status, 200);
    let etag = tag(&first.text(), "ETag");
    let second = complete(&s, "again", "k", &id, &parts);
    assert_eq!(second.status, 200, "{}", second.text());
    assert_eq!(tag(&second.text(), "ETag"), etag);
    assert_eq!(s.req("GET", "/again/k", &[], b"").body, b"firstsecond");
    // Once the key holds another object, the upload is gone for good.
    assert_eq!(s.req("PUT", "/again/k", &[], b"overwritten").status, 200);
    assert_eq!(complete(&s, "again", "k", &id, &parts).xml("Code").as_deref(), Some("NoSuchUpload"));
    assert_eq!(s.req("GET", "/again/k", &[], b"").body, b"overwritten");
    let bogus = "0000000000000000000000000000";
    assert_eq!(complete(&s, "again", "k", bogus, &parts).xml("Code").as_deref(), Some("NoSuchUpload"));
}

fn crc32_b64(data: &[u8]) -> (u32, String) {
    let c = crc32fast::hash(data);
    (c, base64::Engine::encode(&base64::engine::general_purpose::STANDARD, c.to_be_bytes()))
}

/// Composite checksums: each part's checksum on GET ?partNumber (with the checksum type) and in
/// GetObjectAttributes, the object's `…-N` accepted on completion, a wrong one refused.
#[test]
fn composite_checksums_per_part() {
    let s = Server::with_args(&["--min-part-size", "0"]);
    assert_eq!(s.req("PUT", "/cks", &[], b"").status, 200);
    let r = s.req("POST", "/cks/k?uploads", &[("x-amz-checksum-algorithm", "CRC32")], b"");
    let id = tag(&r.text(), "UploadId");
    assert_eq!(r.header("x-amz-checksum-type"), Some("COMPOSITE"));
    let data = [b"alpha part".to_vec(), b"beta".to_vec()];
    let mut parts = Vec::new();
    let mut composite = Vec::new();
    for (i, d) in data.iter().enumerate() {
        let (c, b64) = crc32_b64(d);
        composite.extend_from_slice(&c.to_be_bytes());
        let r = s.req(
            "PUT",
            &format!("/cks/k?partNumber={}&uploadId={id}", i + 1),
            &[("x-amz-checksum-crc32", b64.as_str())],
            d,
        );
        assert_eq!(r.status, 200, "{}", r.text());
        parts.push((i as u32 + 1, r.header("etag").unwrap().to_owned(), b64));
    }
    let doc: String = parts
        .iter()
        .map(|(n, e, c)| {
            format!("<Part><ETag>{e}</ETag><PartNumber>{n}</PartNumber><ChecksumCRC32>{c}</ChecksumCRC32></Part>")
        })
        .collect();
    let doc = format!("<CompleteMultipartUpload>{doc}</CompleteMultipartUpload>");
    let whole = format!("{}-2", crc32_b64(&composite).1);
    // A wrong statement of the object's checksum is refused; the right one, with its -N, accepted.
    let wrong = format!("{}-2", crc32_b64(b"something else").1);
    let r = s.req("POST", &format!("/cks/k?uploadId={id}"), &[("x-amz-checksum-crc32", &wrong)], doc.as_bytes());
    assert_eq!(r.xml("Code").as_deref(), Some("BadDigest"), "{}", r.text());
    let r = s.req("POST", &format!("/cks/k?uploadId={id}"), &[("x-amz-checksum-crc32", &whole)], doc.as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.xml("ChecksumCRC32").as_deref(), Some(whole.as_str()));
    // GET of a part: the part's own checksum and the object's checksum type.
    let mode = [("x-amz-checksum-mode", "ENABLED")];
    for (n, _, c) in &parts {
        let r = s.req("GET", &format!("/cks/k?partNumber={n}"), &mode, b"");
        assert_eq!(r.status, 206);
        assert_eq!(r.header("x-amz-checksum-crc32"), Some(c.as_str()), "part {n}");
        assert_eq!(r.header("x-amz-checksum-type"), Some("COMPOSITE"));
    }
    let r = s.req("GET", "/cks/k", &mode, b"");
    assert_eq!(
        (r.header("x-amz-checksum-crc32"), r.header("x-amz-checksum-type")),
        (Some(whole.as_str()), Some("COMPOSITE"))
    );
    assert!(
        s.req("GET", "/cks/k", &[("x-amz-checksum-mode", "ENABLED"), ("Range", "bytes=0-3")], b"")
            .header("x-amz-checksum-crc32")
            .is_none()
    );
    // GetObjectAttributes lists each part's checksum.
    let r = s.req("GET", "/cks/k?attributes", &[("x-amz-object-attributes", "Checksum,ObjectParts")], b"");
    let text = r.text();
    for (n, _, c) in &parts {
        assert!(
            text.contains(&format!("<Part><ChecksumCRC32>{c}</ChecksumCRC32><PartNumber>{n}</PartNumber>")),
            "{text}"
        );
    }
}

/// UploadPartCopy: a range reaching past the source is unsatisfiable (416), a malformed one 400.
#[test]
fn part_copy_ranges_outside_the_source() {
    let s = Server::start();
    assert_eq!(s.req("PUT", "/pcr", &[], b"").status, 200);
    assert_eq!(s.req("PUT", "/pcr/src", &[], b"12345").status, 200);
    let id = upload(&s, "pcr", "dst");
    let copy = |range: &str| {
        s.req(
            "PUT",
            &format!("/pcr/dst?partNumber=1&uploadId={id}"),
            &[("x-amz-copy-source", "/pcr/src"), ("x-amz-copy-source-range", range)],
            b"",
        )
    };
    let r = copy("bytes=0-21");
    assert_eq!((r.status, r.xml("Code").as_deref()), (416, Some("InvalidRange")), "{}", r.text());
    assert_eq!(copy("bytes=7-9").status, 416);
    for bad in ["bytes=0", "bytes=hello-world", "bytes=0-bar", "bytes=3-1", "bytes=0-2,3-4", "0-2"] {
        let r = copy(bad);
        assert_eq!((r.status, r.xml("Code").as_deref()), (400, Some("InvalidArgument")), "{bad}");
    }
    assert_eq!(copy("bytes=1-3").status, 200);
}
