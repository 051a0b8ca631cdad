//! Lifecycle rules applied by the node's worker (D48), with a one-second "day"
//! (`--lifecycle-day-secs 1`): current versions expire by prefix and tag, noncurrent versions
//! and lone delete markers go, unfinished uploads are aborted, and object lock keeps what it
//! protects. Each wait is bounded and polls.

use std::time::{Duration, Instant};

use crate::common::{Resp, Server};

fn ok(s: &Server, method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
    let r = s.req(method, target, headers, body);
    assert!(r.status < 300, "{method} {target}: {} {}", r.status, r.text());
    r
}

fn rules(s: &Server, bucket: &str, rules: &str) {
    let doc = format!("<LifecycleConfiguration>{rules}</LifecycleConfiguration>");
    ok(s, "PUT", &format!("/{bucket}?lifecycle"), &[], doc.as_bytes());
}

/// Polls `check` for up to 20 s.
fn eventually(what: &str, check: impl Fn() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < Duration::from_secs(20), "{what}: not within 20 s");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn versions(s: &Server, bucket: &str) -> usize {
    let t = ok(s, "GET", &format!("/{bucket}?versions"), &[], b"").text();
    t.matches("<Version>").count() + t.matches("<DeleteMarker>").count()
}

#[test]
fn rules_expire_versions_markers_and_uploads() {
    let s = Server::with_args(&["--lifecycle-day-secs", "1"]);
    // Unversioned: old/ expires, a tagged object anywhere expires, the rest stays.
    ok(&s, "PUT", "/lcplain", &[], b"");
    ok(&s, "PUT", "/lcplain/old/a", &[], b"x");
    ok(&s, "PUT", "/lcplain/keep/b", &[], b"x");
    ok(&s, "PUT", "/lcplain/keep/t", &[("x-amz-tagging", "temp=yes")], b"x");
    let id = ok(&s, "POST", "/lcplain/keep/mpu?uploads", &[], b"").xml("UploadId").unwrap();
    rules(
        &s,
        "lcplain",
        "<Rule><ID>old</ID><Prefix>old/</Prefix><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule>\
         <Rule><ID>tmp</ID><Filter><Tag><Key>temp</Key><Value>yes</Value></Tag></Filter><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule>\
         <Rule><ID>off</ID><Prefix>keep/</Prefix><Status>Disabled</Status><Expiration><Days>1</Days></Expiration></Rule>\
         <Rule><ID>mpu</ID><Filter><Prefix></Prefix></Filter><Status>Enabled</Status><AbortIncompleteMultipartUpload><DaysAfterInitiation>1</DaysAfterInitiation></AbortIncompleteMultipartUpload></Rule>",
    );
    eventually("old/a and the tagged object expired", || {
        s.req("HEAD", "/lcplain/old/a", &[], b"").status == 404
            && s.req("HEAD", "/lcplain/keep/t", &[], b"").status == 404
    });
    eventually("the upload aborted", || !ok(&s, "GET", "/lcplain?uploads", &[], b"").text().contains(&id));
    assert_eq!(s.req("HEAD", "/lcplain/keep/b", &[], b"").status, 200, "no rule applies to it");
    // Versioned: the current version expires behind a marker, noncurrent versions go (the
    // newest one kept), then the lone marker of a key with nothing left.
    ok(&s, "PUT", "/lcver", &[], b"");
    ok(
        &s,
        "PUT",
        "/lcver?versioning",
        &[],
        b"<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>",
    );
    for i in 0..3 {
        ok(&s, "PUT", "/lcver/k", &[], format!("v{i}").as_bytes());
    }
    ok(&s, "PUT", "/lcver/gone", &[], b"x");
    ok(&s, "DELETE", "/lcver/gone", &[], b"");
    assert_eq!(versions(&s, "lcver"), 5);
    rules(
        &s,
        "lcver",
        "<Rule><ID>nc1</ID><Filter><Prefix>k</Prefix></Filter><Status>Enabled</Status>\
         <NoncurrentVersionExpiration><NoncurrentDays>1</NoncurrentDays><NewerNoncurrentVersions>1</NewerNoncurrentVersions></NoncurrentVersionExpiration></Rule>\
         <Rule><ID>nc2</ID><Filter><Prefix>gone</Prefix></Filter><Status>Enabled</Status>\
         <NoncurrentVersionExpiration><NoncurrentDays>1</NoncurrentDays></NoncurrentVersionExpiration></Rule>\
         <Rule><ID>dm</ID><Filter><Prefix>gone</Prefix></Filter><Status>Enabled</Status><Expiration><ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration></Rule>",
    );
    // k keeps its current version and one noncurrent; gone loses its version, then its marker.
    eventually("noncurrent versions and the lone marker removed", || versions(&s, "lcver") == 2);
    assert_eq!(ok(&s, "GET", "/lcver/k", &[], b"").body, b"v2");
    let m = s.req_as(None, "GET", "/metrics", &[], b"").text();
    assert!(m.contains("keel_lifecycle_removed_total{kind=\"noncurrent\"} "), "{m}");
    assert!(!m.contains("keel_lifecycle_passes_total 0\n"), "passes counted");
}

#[test]
fn object_lock_keeps_what_a_rule_would_remove() {
    let s = Server::with_args(&["--lifecycle-day-secs", "1"]);
    ok(&s, "PUT", "/lclock", &[("x-amz-bucket-object-lock-enabled", "true")], b"");
    let hold = [("x-amz-object-lock-legal-hold", "ON")];
    ok(&s, "PUT", "/lclock/k", &hold, b"held");
    ok(&s, "PUT", "/lclock/k", &[], b"newer");
    rules(
        &s,
        "lclock",
        "<Rule><ID>nc</ID><Filter></Filter><Status>Enabled</Status><NoncurrentVersionExpiration><NoncurrentDays>1</NoncurrentDays></NoncurrentVersionExpiration></Rule>",
    );
    eventually("the worker met the locked version", || {
        let m = s.req_as(None, "GET", "/metrics", &[], b"").text();
        !m.contains("keel_lifecycle_locked_total 0\n")
    });
    assert_eq!(versions(&s, "lclock"), 2, "the held version stays");
}

#[test]
fn an_expired_current_version_in_a_versioned_bucket_hides_behind_a_marker() {
    let s = Server::with_args(&["--lifecycle-day-secs", "1"]);
    ok(&s, "PUT", "/lcexp", &[], b"");
    ok(
        &s,
        "PUT",
        "/lcexp?versioning",
        &[],
        b"<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>",
    );
    let v = ok(&s, "PUT", "/lcexp/k", &[], b"data").header("x-amz-version-id").unwrap().to_owned();
    rules(
        &s,
        "lcexp",
        "<Rule><ID>e</ID><Prefix></Prefix><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule>",
    );
    eventually("k hidden by a delete marker", || s.req("HEAD", "/lcexp/k", &[], b"").status == 404);
    assert_eq!(s.req("GET", "/lcexp/k", &[], b"").header("x-amz-delete-marker"), Some("true"));
    // The version itself stays (expiring a current version never destroys it), and stays
    // the only one: the marker is the newest, so the next passes leave the key alone.
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(ok(&s, "GET", &format!("/lcexp/k?versionId={v}"), &[], b"").body, b"data");
    assert_eq!(versions(&s, "lcexp"), 2);
}
