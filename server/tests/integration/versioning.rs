//! Versioning over raw HTTP (D46): version ids on writes, reads by version, delete markers,
//! the null version's rules while suspended, ListObjectVersions paging, and nothing of an old
//! version lost to an overwrite, a restart or the orphan collector.

use crate::common::{Resp, Server, data_files};

fn ok(s: &Server, method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
    let r = s.req(method, target, headers, body);
    assert!(r.status < 300, "{method} {target}: {} {}", r.status, r.text());
    r
}

fn versioning(s: &Server, bucket: &str, status: &str) {
    let body = format!("<VersioningConfiguration><Status>{status}</Status></VersioningConfiguration>");
    ok(s, "PUT", &format!("/{bucket}?versioning"), &[], body.as_bytes());
}

fn put(s: &Server, target: &str, body: &[u8]) -> String {
    ok(s, "PUT", target, &[], body).header("x-amz-version-id").expect("a version id").to_owned()
}

/// Every `<tag>` element's text, in order.
fn all(r: &Resp, tag: &str) -> Vec<String> {
    let t = r.text();
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    t.split(&open).skip(1).filter_map(|p| p.split_once(&close).map(|(v, _)| v.to_owned())).collect()
}

#[test]
fn versions_survive_overwrites_deletes_and_restarts() {
    let mut s = Server::start();
    ok(&s, "PUT", "/ver", &[], b"");
    // Before versioning: no version id, and an overwrite replaces.
    assert_eq!(ok(&s, "PUT", "/ver/k", &[], b"v0").header("x-amz-version-id"), None);
    versioning(&s, "ver", "Enabled");
    // Large enough for data files (small objects live in their records).
    let (big1, big2) = (vec![1u8; 20_000], vec![2u8; 20_000]);
    let v1 = put(&s, "/ver/k", &big1);
    let v2 = put(&s, "/ver/k", &big2);
    assert_eq!(v1.len(), 32);
    assert!(v1 != v2 && v1 != "null");
    let cur = ok(&s, "GET", "/ver/k", &[], b"");
    assert_eq!((cur.body.as_slice(), cur.header("x-amz-version-id")), (&big2[..], Some(v2.as_str())));
    assert_eq!(ok(&s, "GET", &format!("/ver/k?versionId={v1}"), &[], b"").body, big1);
    // The object from before versioning is its null version.
    assert_eq!(ok(&s, "GET", "/ver/k?versionId=null", &[], b"").body, b"v0");
    let head = ok(&s, "HEAD", &format!("/ver/k?versionId={v1}"), &[], b"");
    assert_eq!((head.header("content-length"), head.header("x-amz-version-id")), (Some("20000"), Some(v1.as_str())));
    // Unknown and malformed version ids.
    let r = s.req("GET", "/ver/k?versionId=0123456789abcdef0123456789abcdef", &[], b"");
    assert_eq!((r.status, r.xml("Code").as_deref()), (404, Some("NoSuchVersion")));
    let r = s.req("GET", "/ver/k?versionId=nope", &[], b"");
    assert_eq!((r.status, r.xml("Code").as_deref()), (400, Some("InvalidArgument")));
    // Another key's version id names nothing of this key, and deleting it changes nothing.
    let other = put(&s, "/ver/other", b"o");
    let r = s.req("GET", &format!("/ver/k?versionId={other}"), &[], b"");
    assert_eq!((r.status, r.xml("Code").as_deref()), (404, Some("NoSuchVersion")));
    assert_eq!(s.req("DELETE", &format!("/ver/k?versionId={other}"), &[], b"").status, 204);
    assert_eq!(ok(&s, "GET", "/ver/other", &[], b"").body, b"o");
    ok(&s, "DELETE", &format!("/ver/other?versionId={other}"), &[], b"");
    // A delete writes a marker: the key is hidden, its versions stay.
    let d = s.req("DELETE", "/ver/k", &[], b"");
    assert_eq!((d.status, d.header("x-amz-delete-marker")), (204, Some("true")));
    let marker = d.header("x-amz-version-id").unwrap().to_owned();
    let r = s.req("GET", "/ver/k", &[], b"");
    assert_eq!((r.status, r.header("x-amz-delete-marker")), (404, Some("true")));
    assert_eq!(r.header("x-amz-version-id"), Some(marker.as_str()));
    let r = s.req("GET", &format!("/ver/k?versionId={marker}"), &[], b"");
    assert_eq!((r.status, r.header("x-amz-delete-marker")), (405, Some("true")));
    let r = s.req("GET", &format!("/ver/k?tagging&versionId={marker}"), &[], b"");
    assert_eq!((r.status, r.xml("Code").as_deref()), (405, Some("MethodNotAllowed")));
    // Kept across a restart and the orphan collector it runs (older versions' files are
    // referenced).
    assert_eq!(data_files(&s), 2);
    s.restart();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert_eq!(data_files(&s), 2);
    assert_eq!(ok(&s, "GET", &format!("/ver/k?versionId={v2}"), &[], b"").body, big2);
    assert_eq!(ok(&s, "GET", "/ver/k?versionId=null", &[], b"").body, b"v0");
    // Removing the marker brings the newest version back.
    let d = s.req("DELETE", &format!("/ver/k?versionId={marker}"), &[], b"");
    assert_eq!((d.status, d.header("x-amz-delete-marker")), (204, Some("true")));
    assert_eq!(ok(&s, "GET", "/ver/k", &[], b"").body, big2);
    // Removing the current version makes the one before it current, and frees its file.
    ok(&s, "DELETE", &format!("/ver/k?versionId={v2}"), &[], b"");
    assert_eq!(ok(&s, "GET", "/ver/k", &[], b"").body, big1);
    assert_eq!(data_files(&s), 1);
    // A bucket holding versions is not empty.
    ok(&s, "DELETE", &format!("/ver/k?versionId={v1}"), &[], b"");
    ok(&s, "DELETE", "/ver/k", &[], b"");
    assert_eq!(s.req("HEAD", "/ver/k", &[], b"").status, 404);
    let r = s.req("DELETE", "/ver", &[], b"");
    assert_eq!((r.status, r.xml("Code").as_deref()), (409, Some("BucketNotEmpty")));
}

#[test]
fn suspended_versioning_keeps_one_null_version() {
    let s = Server::start();
    ok(&s, "PUT", "/susp", &[], b"");
    versioning(&s, "susp", "Enabled");
    let v1 = put(&s, "/susp/k", b"kept");
    versioning(&s, "susp", "Suspended");
    // A write while suspended makes the null version, and S3 names no version in its answer.
    assert_eq!(ok(&s, "PUT", "/susp/k", &[], b"null-1").header("x-amz-version-id"), None);
    assert_eq!(ok(&s, "PUT", "/susp/k", &[], b"null-2").header("x-amz-version-id"), None);
    assert_eq!(ok(&s, "HEAD", "/susp/k", &[], b"").header("x-amz-version-id"), Some("null"));
    let list = ok(&s, "GET", "/susp?versions", &[], b"");
    assert_eq!(all(&list, "VersionId"), vec!["null".to_owned(), v1.clone()]);
    assert_eq!(all(&list, "IsLatest"), vec!["true", "false"]);
    assert_eq!(ok(&s, "GET", "/susp/k?versionId=null", &[], b"").body, b"null-2");
    // A delete while suspended: a null delete marker replaces the null version.
    let d = s.req("DELETE", "/susp/k", &[], b"");
    assert_eq!((d.header("x-amz-delete-marker"), d.header("x-amz-version-id")), (Some("true"), Some("null")));
    let list = ok(&s, "GET", "/susp?versions", &[], b"");
    assert!(list.text().contains("<DeleteMarker><Key>k</Key><VersionId>null</VersionId><IsLatest>true</IsLatest>"));
    assert_eq!(all(&list, "VersionId"), vec!["null".to_owned(), v1.clone()]);
    assert_eq!(ok(&s, "GET", &format!("/susp/k?versionId={v1}"), &[], b"").body, b"kept");
}

#[test]
fn version_listings_page_by_key_and_version() {
    let s = Server::start();
    ok(&s, "PUT", "/vlist", &[], b"");
    versioning(&s, "vlist", "Enabled");
    let mut want = Vec::new();
    for key in ["a", "b/1", "b/2", "c"] {
        let ids: Vec<String> =
            (0..3).map(|i| put(&s, &format!("/vlist/{key}"), format!("{key}{i}").as_bytes())).collect();
        want.extend(ids.into_iter().rev().map(|id| (key.to_owned(), id)));
    }
    // Pages of 5: every version once, in key order, newest first, IsLatest on the first of each.
    let mut got = Vec::new();
    let mut latest = Vec::new();
    let mut target = "/vlist?versions&max-keys=5".to_owned();
    loop {
        let r = ok(&s, "GET", &target, &[], b"");
        let keys = all(&r, "Key");
        got.extend(keys.iter().cloned().zip(all(&r, "VersionId")));
        latest.extend(all(&r, "IsLatest"));
        if r.xml("IsTruncated").as_deref() != Some("true") {
            break;
        }
        let (k, v) = (r.xml("NextKeyMarker").unwrap(), r.xml("NextVersionIdMarker").unwrap());
        target = format!("/vlist?versions&max-keys=5&key-marker={}&version-id-marker={v}", k.replace('/', "%2F"));
    }
    assert_eq!(got, want);
    assert_eq!(latest.iter().filter(|l| *l == "true").count(), 4);
    // A delimiter rolls b/ up into one prefix.
    let r = ok(&s, "GET", "/vlist?versions&delimiter=/", &[], b"");
    assert_eq!(all(&r, "Prefix").into_iter().filter(|p| !p.is_empty()).collect::<Vec<_>>(), vec!["b/"]);
    assert_eq!(all(&r, "Key"), vec!["a", "a", "a", "c", "c", "c"]);
    // Plain listings show current versions only.
    let r = ok(&s, "GET", "/vlist?list-type=2", &[], b"");
    assert_eq!(all(&r, "Key"), vec!["a", "b/1", "b/2", "c"]);
}

#[test]
fn copies_restores_and_multipart_in_a_versioned_bucket() {
    let s = Server::start();
    ok(&s, "PUT", "/vcopy", &[], b"");
    versioning(&s, "vcopy", "Enabled");
    let old = put(&s, "/vcopy/k", b"old");
    put(&s, "/vcopy/k", b"new");
    // Restoring an older version: a copy of it onto its own key.
    let r = ok(&s, "PUT", "/vcopy/k", &[("x-amz-copy-source", &format!("/vcopy/k?versionId={old}"))], b"");
    assert_eq!(r.header("x-amz-copy-source-version-id"), Some(old.as_str()));
    let restored = r.header("x-amz-version-id").unwrap().to_owned();
    assert_eq!(ok(&s, "GET", "/vcopy/k", &[], b"").body, b"old");
    let r = ok(&s, "GET", "/vcopy?versions", &[], b"");
    assert_eq!(all(&r, "VersionId").len(), 3);
    assert_eq!(all(&r, "VersionId")[0], restored);
    // A completed upload is a version too.
    let id = ok(&s, "POST", "/vcopy/k?uploads", &[], b"").xml("UploadId").unwrap();
    let etag =
        ok(&s, "PUT", &format!("/vcopy/k?partNumber=1&uploadId={id}"), &[], b"part").header("etag").unwrap().to_owned();
    let done = format!(
        "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{etag}</ETag></Part></CompleteMultipartUpload>"
    );
    let r = ok(&s, "POST", &format!("/vcopy/k?uploadId={id}"), &[], done.as_bytes());
    let mp = r.header("x-amz-version-id").unwrap().to_owned();
    assert_eq!(ok(&s, "GET", &format!("/vcopy/k?versionId={restored}"), &[], b"").body, b"old");
    assert_eq!(ok(&s, "GET", "/vcopy/k", &[], b"").header("x-amz-version-id"), Some(mp.as_str()));
    // Tags per version.
    let tagging = "<Tagging><TagSet><Tag><Key>v</Key><Value>old</Value></Tag></TagSet></Tagging>";
    ok(&s, "PUT", &format!("/vcopy/k?tagging&versionId={old}"), &[], tagging.as_bytes());
    assert!(
        ok(&s, "GET", &format!("/vcopy/k?tagging&versionId={old}"), &[], b"").text().contains("<Value>old</Value>")
    );
    assert!(!ok(&s, "GET", "/vcopy/k?tagging", &[], b"").text().contains("<Value>old</Value>"));
    // DeleteObjects naming versions.
    let body = format!(
        "<Delete><Object><Key>k</Key><VersionId>{old}</VersionId></Object><Object><Key>k</Key></Object></Delete>"
    );
    let r = ok(&s, "POST", "/vcopy?delete", &[], body.as_bytes());
    assert!(r.text().contains(&format!("<Deleted><Key>k</Key><VersionId>{old}</VersionId></Deleted>")), "{}", r.text());
    assert!(r.text().contains("<DeleteMarker>true</DeleteMarker><DeleteMarkerVersionId>"), "{}", r.text());
    let r = s.req("GET", &format!("/vcopy/k?versionId={old}"), &[], b"");
    assert_eq!(r.status, 404);
}

#[test]
fn mfa_delete_is_refused() {
    let s = Server::start();
    ok(&s, "PUT", "/vmfa", &[], b"");
    let body =
        "<VersioningConfiguration><Status>Enabled</Status><MfaDelete>Enabled</MfaDelete></VersioningConfiguration>";
    assert_eq!(s.req("PUT", "/vmfa?versioning", &[], body.as_bytes()).status, 501);
    let r = ok(&s, "GET", "/vmfa?versioning", &[], b"");
    assert!(!r.text().contains("<Status>"), "{}", r.text());
}

#[test]
fn a_copies_bucket_deletes_its_null_version_everywhere_and_refuses_versioning() {
    let dir = tempfile::tempdir().unwrap();
    let mps = vec![dir.path().join("m1"), dir.path().join("m2")];
    let s = Server::on(Some(mps), &["--copies", "2"], &[]);
    ok(&s, "PUT", "/vcopies", &[], b"");
    ok(&s, "PUT", "/vcopies/k", &[], &[7u8; 20_000]);
    assert_eq!(data_files(&s), 2, "one copy per mountpath");
    // `versionId=null` in a bucket never versioned is the object itself: every copy goes.
    let d = s.req("DELETE", "/vcopies/k?versionId=null", &[], b"");
    assert_eq!((d.status, d.header("x-amz-version-id")), (204, Some("null")));
    assert_eq!(s.req("HEAD", "/vcopies/k", &[], b"").status, 404);
    assert_eq!(data_files(&s), 0);
    let body = b"<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>";
    let r = s.req("PUT", "/vcopies?versioning", &[], body);
    assert_eq!((r.status, r.xml("Code").as_deref()), (501, Some("NotImplemented")));
}

#[test]
fn scrub_checks_older_versions_too() {
    let mut s = Server::start();
    ok(&s, "PUT", "/vscrub", &[], b"");
    versioning(&s, "vscrub", "Enabled");
    let old: Vec<u8> = (0..50_000u32).map(|i| (i % 239) as u8).collect();
    let v1 = put(&s, "/vscrub/k", &old);
    put(&s, "/vscrub/k", &[9u8; 30_000]);
    crate::reliability::flip_byte(&crate::reliability::file_holding(&s, &old), 77);
    s.stop();
    let (sound, text) = crate::common::scrub(&s);
    assert!(!sound, "{text}");
    assert!(text.contains("scrubbed 2 objects"), "{text}");
    assert!(text.contains(&format!("CORRUPT vscrub/k ({v1})")), "{text}");
}
