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

/// Resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Anonymous clients that send part of a large body to a request that will be refused, then
/// stall: each is answered at once and cut, never read into a body buffer. 1,000 of them grow
/// the server's memory by less than 100 MiB, and it returns near its start once they are gone.
#[test]
fn stalled_refused_bodies_cost_little_memory() {
    let s = Server::start();
    assert_eq!(s.req("PUT", "/membase", &[], b"").status, 200);
    // Buffers of a few real uploads, so the pools exist before the baseline.
    for i in 0..4 {
        assert_eq!(s.req("PUT", &format!("/membase/warm{i}"), &[], &vec![1u8; 3 << 20]).status, 200);
    }
    std::thread::sleep(std::time::Duration::from_secs(1));
    let before = rss_kib(s.pid());
    let chunk = vec![b'x'; 250_000];
    let mut conns = Vec::new();
    let mut peak = before;
    for i in 0..1000 {
        let mut c = std::net::TcpStream::connect(&s.addr).unwrap();
        c.set_write_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
        let bucket = if i % 2 == 0 { "nobucket" } else { "membase" };
        let head = format!("PUT /{bucket}/k{i} HTTP/1.1\r\nHost: x\r\nContent-Length: 10485760\r\n\r\n");
        let _ = c.write_all(head.as_bytes());
        let _ = c.write_all(&chunk);
        conns.push(c);
        if i % 100 == 99 {
            peak = peak.max(rss_kib(s.pid()));
        }
    }
    peak = peak.max(rss_kib(s.pid()));
    assert!(peak < before + 100 * 1024, "RSS grew from {before} KiB to {peak} KiB");
    // Every one was answered (missing bucket: 404; unsigned write to a private one: 403), then cut.
    for (i, c) in conns.iter_mut().enumerate() {
        c.set_read_timeout(Some(std::time::Duration::from_secs(20))).unwrap();
        let r = read_response(c, false);
        assert_eq!(r.status, if i % 2 == 0 { 404 } else { 403 });
        assert_eq!(r.header("connection"), Some("close"));
        assert!(closed(c));
    }
    drop(conns);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let now = rss_kib(s.pid());
        if now < before + 8 * 1024 {
            eprintln!("RSS: {before} KiB before, {peak} KiB with 1000 stalled clients, {now} KiB after");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "RSS stayed at {now} KiB (started at {before} KiB)");
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    assert_eq!(s.req("GET", "/membase/warm0", &[], b"").body.len(), 3 << 20);
}

/// A body that arrives slower than the minimum rate (1 KiB/s on average after a grace period,
/// shortened here) is cut with RequestTimeout, even if a byte arrives before every stall timeout.
#[test]
fn trickled_bodies_are_cut_at_the_minimum_rate() {
    let s = Server::with_env(&[], &[("KEEL_BODY_GRACE_MS", "1500")]);
    assert_eq!(s.req("PUT", "/trickle", &[], b"").status, 200);
    let body = vec![b'y'; 4000];
    let raw = s.build("PUT", "/trickle/slow", &[], &body);
    let head_len = raw.len() - body.len();
    let mut c = s.connect();
    c.write_all(&raw[..head_len + 10]).unwrap();
    let started = std::time::Instant::now();
    let mut sent = head_len + 10;
    // One byte every 300 ms: never a stall, far below the rate.
    while sent < raw.len() && started.elapsed() < std::time::Duration::from_secs(20) {
        std::thread::sleep(std::time::Duration::from_millis(300));
        if c.write_all(&raw[sent..sent + 1]).is_err() {
            break;
        }
        sent += 1;
    }
    let r = read_response(&mut c, false);
    assert_eq!(r.xml("Code").as_deref(), Some("RequestTimeout"), "{}", r.text());
    assert!(sent < raw.len(), "cut before the body ended");
    assert_eq!(s.req("HEAD", "/trickle/slow", &[], b"").status, 404);
    // A body at a normal rate is not affected.
    assert_eq!(s.req("PUT", "/trickle/fast", &[], &body).status, 200);
}

/// Whether the server closed `c` within `within` (a read that ends or is reset), not merely
/// left it silent.
fn closed_within(c: &mut std::net::TcpStream, within: std::time::Duration) -> bool {
    use std::io::Read;
    c.set_read_timeout(Some(within)).unwrap();
    let mut b = [0u8; 256];
    loop {
        match c.read(&mut b) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return false;
            }
            Err(_) => return true,
        }
    }
}

/// Connection deadlines on the shard's sweep (DESIGN D42; shortened here): a connection kept
/// busy is left alone, an idle one is closed after the idle timeout, and a head trickled in a
/// byte at a time is cut at the head timeout although a byte arrives every 200 ms.
#[test]
fn idle_connections_and_trickled_heads_are_closed_by_the_sweep() {
    let s = Server::with_env(&[], &[("KEEL_IDLE_TIMEOUT_MS", "1000"), ("KEEL_HEAD_TIMEOUT_MS", "1500")]);
    let mut c = s.connect();
    let get = s.build("GET", "/", &[], b"");
    // Busy for 3 s, idle never longer than 300 ms: every request answered.
    for _ in 0..10 {
        c.write_all(&get).unwrap();
        assert_eq!(read_response(&mut c, false).status, 200);
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    assert!(closed_within(&mut c, std::time::Duration::from_secs(10)), "an idle connection is closed");
    // A silent new connection too.
    let mut quiet = s.connect();
    assert!(closed_within(&mut quiet, std::time::Duration::from_secs(10)));
    // A head trickled in: cut before it ends.
    let mut slow = s.connect();
    let started = std::time::Instant::now();
    let mut sent = 0;
    while sent < get.len() && started.elapsed() < std::time::Duration::from_secs(20) {
        if slow.write_all(&get[sent..sent + 1]).is_err() {
            break;
        }
        sent += 1;
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert!(sent < get.len(), "cut before the head ended ({sent} of {} bytes)", get.len());
    assert!(closed_within(&mut slow, std::time::Duration::from_secs(10)));
    // The server goes on serving.
    let mut again = s.connect();
    again.write_all(&get).unwrap();
    assert_eq!(read_response(&mut again, false).status, 200);
}

/// A client that stops reading a response: the server's write stalls and is cut at the stall
/// timeout (shortened here) by the shard's sweep (DESIGN D42), and the server goes on serving.
#[test]
fn a_response_the_client_stops_reading_is_cut_at_the_stall_timeout() {
    use std::io::Read;
    // Never spliced: every buffer goes through the connection's own writes.
    let s = Server::with_env(&["--splice-min", "0"], &[("KEEL_STALL_TIMEOUT_MS", "1500")]);
    assert_eq!(s.req("PUT", "/stall", &[], b"").status, 200);
    let size = 32 << 20;
    assert_eq!(s.req("PUT", "/stall/big", &[], &vec![7u8; size]).status, 200);
    let mut c = s.connect();
    c.write_all(&s.build("GET", "/stall/big", &[], b"")).unwrap();
    // Past the stall timeout and a tick, reading nothing: the socket buffers fill long before.
    std::thread::sleep(std::time::Duration::from_secs(5));
    c.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    let mut buf = vec![0u8; 1 << 16];
    let mut got = 0;
    loop {
        match c.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                panic!("the stalled response was not cut ({got} bytes read)")
            }
            Err(_) => break,
        }
    }
    assert!(got > 0 && got < size, "cut part way: {got} of {size} bytes (and the head)");
    assert_eq!(s.req("HEAD", "/stall/big", &[], b"").status, 200);
}
