//! A node's mountpaths (DESIGN D24): a member missing at start stops the start until it is
//! detached; a detached member that returns is reconciled before it serves, so nothing stale is
//! served, no delete is undone and no deleted bucket's objects reach its next owner. Every stop
//! below is a kill -9.

use std::collections::BTreeMap;

use crate::common::Server;

fn keel(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_keel")).args(args).output().unwrap()
}

fn detach(target: &std::path::Path, others: &[std::path::PathBuf]) {
    let mut args = vec!["mountpath".to_owned(), "detach".to_owned(), target.display().to_string()];
    for m in others {
        args.push("--mountpath".into());
        args.push(m.display().to_string());
    }
    let out = keel(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Every key of a bucket as listed, with each GET's body (each key must be listed once).
fn contents(s: &Server, bucket: &str) -> BTreeMap<String, Vec<u8>> {
    let text = s.req("GET", &format!("/{bucket}?list-type=2"), &[], b"").text();
    let mut out = BTreeMap::new();
    for part in text.split("<Key>").skip(1) {
        let key = part.split("</Key>").next().unwrap().to_owned();
        let r = s.req("GET", &format!("/{bucket}/{key}"), &[], b"");
        assert_eq!(r.status, 200, "listed {key} does not read");
        assert!(out.insert(key, r.body).is_none(), "a key listed twice");
    }
    out
}

#[test]
fn a_returning_mountpath_loses_what_was_rewritten_or_deleted_without_it() {
    let mut s = Server::start();
    let (mp1, mp2) = (s.mountpaths[0].clone(), s.mountpaths[1].clone());
    assert_eq!(s.req("PUT", "/ret", &[], b"").status, 200);
    let mut model: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for i in 0..60 {
        let (k, v) = (format!("k{i:02}"), format!("first {i}").into_bytes());
        // Some inline, some in data files.
        let v = if i % 2 == 0 { v } else { [v, vec![b'.'; 20_000]].concat() };
        assert_eq!(s.req("PUT", &format!("/ret/{k}"), &[], &v).status, 200);
        model.insert(k, v);
    }
    s.kill9();

    // Without mp2 the node does not start, and says how to go on.
    s.mountpaths = vec![mp1.clone()];
    let (status, err) = s.run_serve(&[]);
    assert!(!status.success());
    assert!(err.contains("is missing") && err.contains("keel mountpath detach"), "{err}");
    detach(&mp2, std::slice::from_ref(&mp1));
    let listed = keel(&["mountpath", "list", "--mountpath", &mp1.display().to_string()]);
    assert!(String::from_utf8_lossy(&listed.stdout).contains("detached"));

    // The node serves without it: rewrite 20 keys, delete 10.
    s.start_again();
    let unavailable = (0..60).filter(|i| s.req("HEAD", &format!("/ret/k{i:02}"), &[], b"").status == 404).count();
    assert!(unavailable > 5, "mp2 held a share of the keys ({unavailable} unavailable)");
    for i in 0..20 {
        let (k, v) = (format!("k{i:02}"), format!("second {i}").into_bytes());
        assert_eq!(s.req("PUT", &format!("/ret/{k}"), &[], &v).status, 200);
        model.insert(k, v);
    }
    for i in 20..30 {
        let k = format!("k{i:02}");
        assert_eq!(s.req("DELETE", &format!("/ret/{k}"), &[], b"").status, 204);
        model.remove(&k);
    }
    s.kill9();

    // mp2 returns. A crash while it is reconciled, then a clean start, then a crash and a start.
    s.mountpaths = vec![mp1.clone(), mp2.clone()];
    let (status, err) = s.run_serve(&[("KEEL_FAULTS", "reconcile=1")]);
    assert!(!status.success(), "the fault stops the start: {err}");
    for round in 0..2 {
        s.start_again();
        assert_eq!(contents(&s, "ret"), model, "round {round}: nothing stale, nothing resurrected");
        for i in 20..30 {
            assert_eq!(s.req("GET", &format!("/ret/k{i:02}"), &[], b"").status, 404);
        }
        s.kill9();
    }
    let listed = keel(&["mountpath", "list", "--mountpath", &mp1.display().to_string()]);
    let text = String::from_utf8_lossy(&listed.stdout);
    assert!(!text.contains("detached") && text.matches("active").count() == 2, "{text}");
}

#[test]
fn a_bucket_deleted_and_recreated_without_a_mountpath_shows_none_of_its_old_objects() {
    let other = ("OTHERUSER", "other/secret");
    let mut s = Server::with_args(&["--user", "OTHERUSER:other/secret"]);
    let (mp1, mp2) = (s.mountpaths[0].clone(), s.mountpaths[1].clone());
    assert_eq!(s.req("PUT", "/shared", &[], b"").status, 200);
    for i in 0..40 {
        assert_eq!(s.req("PUT", &format!("/shared/s{i:02}"), &[], format!("A's {i}").as_bytes()).status, 200);
    }
    s.kill9();
    detach(&mp2, std::slice::from_ref(&mp1));
    s.mountpaths = vec![mp1.clone()];
    s.start_again();
    // A empties what it can see and deletes the bucket; B takes the name.
    for key in contents(&s, "shared").keys() {
        assert_eq!(s.req("DELETE", &format!("/shared/{key}"), &[], b"").status, 204);
    }
    assert_eq!(s.req("DELETE", "/shared", &[], b"").status, 204);
    assert_eq!(s.req_as(Some(other), "PUT", "/shared", &[], b"").status, 200);
    assert_eq!(s.req_as(Some(other), "PUT", "/shared/b-only", &[], b"B's").status, 200);
    s.kill9();

    s.mountpaths = vec![mp1, mp2];
    s.start_again();
    let r = s.req_as(Some(other), "GET", "/shared?list-type=2", &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.text().matches("<Key>").count(), 1, "{}", r.text());
    for i in 0..40 {
        assert_eq!(s.req_as(Some(other), "GET", &format!("/shared/s{i:02}"), &[], b"").status, 404);
    }
    assert_eq!(s.req("GET", "/shared?list-type=2", &[], b"").status, 403, "the bucket is B's now");
}
