//! The HTTP/1.1 shell: keep-alive, pipelining, 100-continue, framing, limits, hostile input.

use std::io::Write;

use crate::common::{Server, closed, data_files, read_response};

#[test]
fn pipelined_requests_answer_in_order() {
    let s = Server::anonymous();
    assert_eq!(s.req("PUT", "/pipe", &[], b"").status, 200);
    let mut raw = Vec::new();
    raw.extend(s.build("PUT", "/pipe/a", &[], b"first"));
    raw.extend(s.build("PUT", "/pipe/b", &[], b"second!"));
    raw.extend(s.build("GET", "/pipe/a", &[], b""));
    raw.extend(s.build("GET", "/pipe/b", &[], b""));
    let mut c = s.connect();
    c.write_all(&raw).unwrap();
    let r1 = read_response(&mut c, false);
    let r2 = read_response(&mut c, false);
    let r3 = read_response(&mut c, false);
    let r4 = read_response(&mut c, false);
    assert_eq!((r1.status, r2.status, r3.status, r4.status), (200, 200, 200, 200));
    assert_eq!(r3.body, b"first");
    assert_eq!(r4.body, b"second!");
    // The connection stays usable.
    c.write_all(&s.build("HEAD", "/pipe/b", &[], b"")).unwrap();
    let r5 = read_response(&mut c, true);
    assert_eq!(r5.header("content-length"), Some("7"));
}

#[test]
fn expect_100_continue() {
    let s = Server::anonymous();
    assert_eq!(s.req("PUT", "/cont", &[], b"").status, 200);
    let mut c = s.connect();
    let full = s.build("PUT", "/cont/k", &[("Expect", "100-continue")], b"hello");
    let head_len = full.len() - 5;
    c.write_all(&full[..head_len]).unwrap();
    let r = read_response(&mut c, false);
    assert_eq!(r.status, 100);
    c.write_all(&full[head_len..]).unwrap();
    let r = read_response(&mut c, false);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("etag"), Some("\"5d41402abc4b2a76b9719d911017c592\""));

    // A request that fails its checks gets the final answer instead of 100, and no object.
    let mut c = s.connect();
    let full = s.build("PUT", "/no-such-bucket/k", &[("Expect", "100-continue")], b"hello");
    c.write_all(&full[..full.len() - 5]).unwrap();
    let r = read_response(&mut c, false);
    assert_eq!(r.status, 404);
    assert!(r.text().contains("<Code>NoSuchBucket</Code>"));
}

#[test]
fn chunked_upload() {
    let s = Server::anonymous();
    assert_eq!(s.req("PUT", "/chunky", &[], b"").status, 200);
    let mut raw = s.build("PUT", "/chunky/k", &[("Transfer-Encoding", "chunked")], b"");
    raw.extend_from_slice(b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\n\r\n");
    let mut c = s.connect();
    c.write_all(&raw).unwrap();
    assert_eq!(read_response(&mut c, false).status, 200);
    let r = s.req("GET", "/chunky/k", &[], b"");
    assert_eq!(r.body, b"hello, world");
}

#[test]
fn bad_chunks_leave_no_object() {
    let s = Server::anonymous();
    assert_eq!(s.req("PUT", "/badchunk", &[], b"").status, 200);
    for body in [&b"zz\r\nhello\r\n0\r\n\r\n"[..], b"5\r\nhelloXX0\r\n\r\n", b"ffffffffffffffffff\r\n"] {
        let mut raw = s.build("PUT", "/badchunk/k", &[("Transfer-Encoding", "chunked")], b"");
        raw.extend_from_slice(body);
        let mut c = s.connect();
        c.write_all(&raw).unwrap();
        let r = read_response(&mut c, false);
        assert_eq!(r.status, 400, "{}", r.text());
        assert!(closed(&mut c));
    }
    assert_eq!(s.req("HEAD", "/badchunk/k", &[], b"").status, 404);
    assert_eq!(data_files(&s), 0);
}

#[test]
fn truncated_body_leaves_no_object() {
    let s = Server::anonymous();
    assert_eq!(s.req("PUT", "/trunc", &[], b"").status, 200);
    // Large enough to be a data file, not inline.
    let body = vec![7u8; 300_000];
    let raw = s.build("PUT", "/trunc/k", &[], &body);
    let mut c = s.connect();
    c.write_all(&raw[..raw.len() - 1000]).unwrap();
    c.shutdown(std::net::Shutdown::Write).unwrap();
    let r = read_response(&mut c, false);
    assert_eq!((r.status, r.xml("Code").as_deref()), (400, Some("IncompleteBody")));
    assert!(closed(&mut c), "the server closes a connection whose body was cut short");
    drop(c);
    // Give the server a moment to notice and clean up.
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(s.req("HEAD", "/trunc/k", &[], b"").status, 404);
    assert_eq!(data_files(&s), 0);
}

#[test]
fn hostile_heads() {
    let s = Server::anonymous();
    let cases: Vec<(Vec<u8>, u16)> = vec![
        (b"GARBAGE\r\n\r\n".to_vec(), 400),
        (b"GET / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\nhello".to_vec(), 400),
        (b"PUT /x/y HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello".to_vec(), 400),
        (b"GET / HTTP/1.1\r\nX: a\r\n folded\r\n\r\n".to_vec(), 400),
        (b"PUT /x/y HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n".to_vec(), 501),
        (format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(20_000)).into_bytes(), 414),
        (format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(70_000)).into_bytes(), 431),
        (
            (0..200).map(|i| format!("H{i}: v\r\n")).fold(b"GET / HTTP/1.1\r\n".to_vec(), |mut a, h| {
                a.extend(h.into_bytes());
                a
            }),
            431,
        ),
    ];
    for (raw, want) in cases {
        let mut c = s.connect();
        let mut raw = raw;
        if !raw.ends_with(b"\r\n\r\n") && want == 431 {
            raw.extend_from_slice(b"\r\n");
        }
        let _ = c.write_all(&raw);
        let r = read_response(&mut c, false);
        assert_eq!(r.status, want, "{:?}", String::from_utf8_lossy(&raw[..raw.len().min(80)]));
        assert_eq!(r.header("connection"), Some("close"));
        assert!(closed(&mut c));
    }
    // Still serving.
    assert_eq!(s.req("GET", "/", &[], b"").status, 200);
}

#[test]
fn http10_closes_and_keepalive_stays() {
    let s = Server::anonymous();
    let mut c = s.connect();
    c.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let r = read_response(&mut c, false);
    assert_eq!(r.status, 200);
    assert!(closed(&mut c));
    let mut c = s.connect();
    for _ in 0..3 {
        c.write_all(&s.build("GET", "/", &[], b"")).unwrap();
        assert_eq!(read_response(&mut c, false).status, 200);
    }
}

#[test]
fn half_open_connections_do_not_block_others() {
    let s = Server::anonymous();
    let mut idle = Vec::new();
    for _ in 0..2000 {
        let mut c = s.connect();
        let _ = c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n");
        idle.push(c);
    }
    // Served while 2000 connections sit on half-sent heads (bounded by the client's read timeout).
    assert_eq!(s.req("GET", "/", &[], b"").status, 200);
}

#[test]
fn connections_past_the_cap_get_a_clean_503() {
    let s = Server::with_args(&["--anonymous", "--max-connections", "5", "--threads", "1"]);
    let mut held: Vec<_> = (0..5).map(|_| s.connect()).collect();
    // Let the server accept them.
    for c in held.iter_mut() {
        c.write_all(&s.build("GET", "/", &[], b"")).unwrap();
        assert_eq!(read_response(c, false).status, 200);
    }
    let mut extra = s.connect();
    let r = read_response(&mut extra, false);
    assert_eq!(r.status, 503);
    assert!(r.text().contains("<Code>ServiceUnavailable</Code>"));
    assert!(closed(&mut extra));
    drop(held);
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(s.req("GET", "/", &[], b"").status, 200, "served again once connections close");
}
