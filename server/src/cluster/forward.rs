//! Forwarding a client's request to the node that owns its key: the request goes out as it came
//! (method, target, headers — the owner checks the client's own signature), with the body
//! streamed, over a keep-alive connection from this shard's pool; the owner's answer comes back
//! as it was. Each forwarded request carries `x-keel-peer` so the owner serves it itself.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::time::{Duration, Instant};

use compio::BufResult;
use compio::buf::{IntoInner, IoBuf};
use compio::io::{AsyncRead, AsyncWriteExt};
use compio::net::TcpStream;
use futures_util::SinkExt;

use super::{BUCKET_REV_HEADER, CLIENT_IP_HEADER, Cluster, ClusterError, Node, PEER_HEADER, split_url};
use crate::http::request::Framing;
use crate::http::{Body, Conn, Relay, Request, Response};
use crate::s3::error::{S3Error, S3ErrorCode};

/// Bound on connecting to a peer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Bound on any one read or write to a peer.
pub(crate) const IO_TIMEOUT: Duration = Duration::from_secs(60);
/// Idle pooled connections older than this are not reused (the peer may have closed them).
const POOL_IDLE_MAX: Duration = Duration::from_secs(20);
/// Idle connections kept per peer and shard.
const POOL_PER_PEER: usize = 32;
/// Largest response head accepted from a peer.
const HEAD_BYTES_MAX: usize = 64 << 10;
/// Answers up to this size are read whole before the client gets them; larger ones stream.
const BUFFERED_BODY_MAX: u64 = 256 << 10;
/// Bytes read from the peer per streamed chunk.
const CHUNK_BYTES: usize = 256 << 10;

/// Request headers that describe one hop, not the request.
const HOP_HEADERS: &[&str] = &[
    "connection",
    "keep-alive",
    "expect",
    "transfer-encoding",
    "content-length",
    "te",
    "upgrade",
    PEER_HEADER,
    BUCKET_REV_HEADER,
];

thread_local! {
    /// Idle connections to peers, by `host:port` (each shard is one thread).
    static POOL: RefCell<HashMap<String, Vec<(TcpStream, Instant)>>> = RefCell::new(HashMap::new());
}

fn pooled(addr: &str) -> Option<TcpStream> {
    POOL.with(|p| {
        let mut p = p.borrow_mut();
        let list = p.get_mut(addr)?;
        while let Some((s, since)) = list.pop() {
            if since.elapsed() < POOL_IDLE_MAX {
                return Some(s);
            }
        }
        None
    })
}

fn give_back(addr: &str, s: TcpStream) {
    POOL.with(|p| {
        let mut p = p.borrow_mut();
        let list = p.entry(addr.to_owned()).or_default();
        if list.len() < POOL_PER_PEER {
            list.push((s, Instant::now()));
        }
    });
}

fn unreachable(node: &Node, why: impl std::fmt::Display) -> S3Error {
    ClusterError::NodeUnreachable(node.id.clone(), why.to_string()).into()
}

async fn connect(addr: &str) -> std::io::Result<TcpStream> {
    let s = compio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))??;
    let _ = s.set_nodelay(true);
    Ok(s)
}

async fn write(s: &mut TcpStream, data: Vec<u8>) -> std::io::Result<()> {
    match compio::time::timeout(IO_TIMEOUT, s.write_all(data)).await {
        Ok(BufResult(r, _)) => r,
        Err(_) => Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "write to peer timed out")),
    }
}

/// Reads more from the peer into `buf`; 0 at its end.
async fn read_more(s: &mut TcpStream, buf: Vec<u8>, want: usize) -> (std::io::Result<usize>, Vec<u8>) {
    read_more_within(s, buf, want, IO_TIMEOUT).await
}

/// `read_more`, waiting up to `wait` for the peer.
async fn read_more_within(
    s: &mut TcpStream,
    buf: Vec<u8>,
    want: usize,
    wait: Duration,
) -> (std::io::Result<usize>, Vec<u8>) {
    let mut buf = buf;
    buf.reserve(want);
    let len = buf.len();
    let cap = buf.capacity();
    match compio::time::timeout(wait, s.read(buf.slice(len..cap))).await {
        Ok(BufResult(r, slice)) => (r, slice.into_inner()),
        Err(_) => (Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "peer stalled")), Vec::new()),
    }
}

/// The target and the head this node sends the owner.
fn request_head(cluster: &Cluster, (req, client): (&Request, Option<std::net::IpAddr>), bucket: &str) -> Vec<u8> {
    let target = if req.query.is_empty() { req.path.clone() } else { format!("{}?{}", req.path, req.query) };
    let mut h = format!("{} {} HTTP/1.1\r\n", req.method_raw, target);
    for (k, v) in &req.headers {
        if !HOP_HEADERS.contains(&k.as_str()) {
            h.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    match req.framing {
        Framing::Length(n) => h.push_str(&format!("content-length: {n}\r\n")),
        Framing::Chunked => h.push_str("transfer-encoding: chunked\r\n"),
        // An empty body declared as such (a zero-byte PUT) stays declared.
        Framing::None if req.header("content-length").is_some() => h.push_str("content-length: 0\r\n"),
        Framing::None => {}
    }
    if let Some(rev) = cluster.applied_revision(bucket) {
        h.push_str(&format!("{BUCKET_REV_HEADER}: {rev}\r\n"));
    }
    if let Some(ip) = client {
        h.push_str(&format!("{CLIENT_IP_HEADER}: {ip}\r\n"));
    }
    h.push_str(&format!("{PEER_HEADER}: {}\r\n\r\n", cluster.peer_token(&req.method_raw, &target)));
    h.into_bytes()
}

/// Writes a pooled buffer whole, and gives it back to the pool.
async fn write_buf(s: &mut TcpStream, buf: iobuf::IoBuffer) -> std::io::Result<()> {
    match compio::time::timeout(IO_TIMEOUT, s.write_all(buf)).await {
        Ok(BufResult(r, buf)) => {
            iobuf::give_buffer(buf);
            r
        }
        Err(_) => Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "write to peer timed out")),
    }
}

/// Sends the client's body on to the owner, as it arrives (the client's buffers go to the
/// socket as they are: no copy). `Exchange::Peer`: the owner stopped taking it.
async fn pump_body(conn: &mut Conn, req: &Request, sock: &mut TcpStream) -> Result<(), Exchange> {
    if matches!(req.framing, Framing::None) {
        return Ok(());
    }
    let incomplete = |_| Exchange::Client(S3Error::code(S3ErrorCode::IncompleteBody));
    conn.send_continue().await.map_err(incomplete)?;
    let chunked = matches!(req.framing, Framing::Chunked);
    loop {
        let buf = iobuf::take_buffer();
        let spare = buf.capacity() - buf.len();
        let (r, buf) = conn.read_body(buf).await;
        let n = match r {
            Ok(n) => n,
            Err(e) => {
                iobuf::give_buffer(buf);
                return Err(incomplete(e));
            }
        };
        if n > 0 {
            if chunked {
                write(sock, format!("{n:x}\r\n").into_bytes()).await.map_err(Exchange::Peer)?;
            }
            write_buf(sock, buf).await.map_err(Exchange::Peer)?;
            if chunked {
                write(sock, b"\r\n".to_vec()).await.map_err(Exchange::Peer)?;
            }
        } else {
            iobuf::give_buffer(buf);
        }
        if n < spare || conn.body_done() {
            break;
        }
    }
    if chunked {
        write(sock, b"0\r\n\r\n".to_vec()).await.map_err(Exchange::Peer)?;
    }
    Ok(())
}

/// The owner's answer head: status, headers, body length, whether the connection stays open,
/// and the bytes read past the head.
struct Head {
    status: u16,
    headers: Vec<(Cow<'static, str>, crate::http::HeaderValue)>,
    length: u64,
    keep: bool,
    rest: Vec<u8>,
}

async fn read_head(sock: &mut TcpStream) -> std::io::Result<Head> {
    read_head_within(sock, IO_TIMEOUT).await
}

/// `read_head`, the answer's first bytes awaited up to `wait` (a call whose work takes long).
async fn read_head_within(sock: &mut TcpStream, wait: Duration) -> std::io::Result<Head> {
    let mut buf = Vec::with_capacity(4096);
    loop {
        let (r, b) = read_more_within(sock, buf, 4096, wait).await;
        buf = b;
        if r? == 0 {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the peer closed the connection"));
        }
        let mut headers = [httparse::EMPTY_HEADER; 128];
        let mut resp = httparse::Response::new(&mut headers);
        match resp.parse(&buf) {
            Ok(httparse::Status::Complete(n)) => {
                let mut head = Head {
                    status: resp.code.unwrap_or(502),
                    headers: Vec::new(),
                    length: 0,
                    keep: true,
                    rest: buf[n..].to_vec(),
                };
                for h in resp.headers.iter() {
                    let name = h.name.to_ascii_lowercase();
                    let value = String::from_utf8_lossy(h.value).into_owned();
                    match name.as_str() {
                        "content-length" => head.length = value.trim().parse().unwrap_or(0),
                        "connection" => head.keep = !value.eq_ignore_ascii_case("close"),
                        // The receiving node's own request id goes out instead of the owner's.
                        "date" | "server" | "keep-alive" | "transfer-encoding" | "x-amz-request-id" | "x-amz-id-2" => {}
                        _ => head.headers.push((Cow::Owned(name), value.into())),
                    }
                }
                return Ok(head);
            }
            Ok(httparse::Status::Partial) if buf.len() < HEAD_BYTES_MAX => {}
            _ => return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "malformed answer from a peer")),
        }
    }
}

/// Forwards the request (on `bucket`) to `node` and returns its answer (the body streamed when
/// large).
pub async fn forward(
    cluster: &Cluster,
    conn: &mut Conn,
    (req, bucket): (&Request, &str),
    node: &Node,
) -> Result<Response, S3Error> {
    let Some(addr) = split_url(&node.url).map(str::to_owned) else {
        return Err(unreachable(node, format!("its URL {:?} is not http://HOST:PORT", node.url)));
    };
    let head = request_head(cluster, (req, conn.peer()), bucket);
    let bodiless = matches!(req.framing, Framing::None);
    // A pooled connection the peer closed meanwhile fails at once; a bodiless request is tried
    // again on a fresh one (a body, once read from the client, cannot be sent twice).
    let sock = match pooled(&addr) {
        Some(s) if bodiless => match exchange(s, head.clone(), conn, req).await {
            Ok(done) => return answer(done, req, &addr).await,
            Err(_) => connect(&addr).await.map_err(|e| unreachable(node, e))?,
        },
        Some(s) => s,
        None => connect(&addr).await.map_err(|e| unreachable(node, e))?,
    };
    let done = exchange(sock, head, conn, req).await.map_err(|e| match e {
        Exchange::Peer(e) => unreachable(node, e),
        Exchange::Client(e) => e,
    })?;
    answer(done, req, &addr).await
}

enum Exchange {
    Peer(std::io::Error),
    Client(S3Error),
}

async fn exchange(
    mut sock: TcpStream,
    head: Vec<u8>,
    conn: &mut Conn,
    req: &Request,
) -> Result<(TcpStream, Head), Exchange> {
    write(&mut sock, head).await.map_err(Exchange::Peer)?;
    // An owner that stops taking the body (it refused the request) has answered: relay that.
    let cut = match pump_body(conn, req, &mut sock).await {
        Ok(()) => false,
        Err(Exchange::Peer(e)) => {
            tracing::debug!(error = %e, "cluster: the owner stopped taking a body");
            true
        }
        Err(e) => return Err(e),
    };
    let mut head = read_head(&mut sock).await.map_err(Exchange::Peer)?;
    head.keep &= !cut;
    Ok((sock, head))
}

/// The client's response from the owner's: small bodies read whole, large ones streamed.
async fn answer((mut sock, head): (TcpStream, Head), req: &Request, addr: &str) -> Result<Response, S3Error> {
    let Head { status, headers, length, keep, mut rest } = head;
    let no_body = req.method == crate::http::Method::Head || status == 204 || status == 304 || status < 200;
    let mut resp = Response { status, headers, body: Body::Empty };
    if no_body {
        if req.method == crate::http::Method::Head && status < 300 {
            resp.body = Body::HeadOnly(length);
        }
        if keep && rest.is_empty() {
            give_back(addr, sock);
        }
        return Ok(resp);
    }
    if length <= BUFFERED_BODY_MAX {
        while (rest.len() as u64) < length {
            let want = (length as usize - rest.len()).min(CHUNK_BYTES);
            let (r, b) = read_more(&mut sock, rest, want).await;
            rest = b;
            match r {
                Ok(0) | Err(_) => {
                    return Err(S3Error::new(S3ErrorCode::BadGateway, "Cluster: the owner's answer ended early."));
                }
                Ok(_) => {}
            }
        }
        if rest.len() as u64 == length && keep {
            give_back(addr, sock);
        }
        rest.truncate(length as usize);
        resp.body = Body::Bytes(rest);
        return Ok(resp);
    }
    let addr = addr.to_owned();
    let done: Option<Box<dyn FnOnce(TcpStream)>> =
        if keep { Some(Box::new(move |sock| give_back(&addr, sock))) } else { None };
    resp.body = Body::Relay(Box::new(Relay { len: length, first: rest, from: sock, done }));
    Ok(resp)
}

type Chunks = futures_channel::mpsc::Receiver<std::io::Result<Vec<u8>>>;

/// The rest of an answer's `length` bytes (`rest` already read), as they arrive; the connection
/// goes back to the pool after the last byte.
fn stream_rest(mut sock: TcpStream, rest: Vec<u8>, length: u64, keep: bool, addr: &str) -> Chunks {
    let (mut tx, rx) = futures_channel::mpsc::channel(2);
    let addr = addr.to_owned();
    compio::runtime::spawn(async move {
        let mut left = length;
        let mut first = rest;
        first.truncate(left as usize);
        left -= first.len() as u64;
        if !first.is_empty() && tx.send(Ok(first)).await.is_err() {
            return;
        }
        while left > 0 {
            let want = (left as usize).min(CHUNK_BYTES);
            let (r, mut b) = read_more(&mut sock, Vec::with_capacity(want), want).await;
            match r {
                Ok(n) if n > 0 => {
                    b.truncate((n as u64).min(left) as usize);
                    left -= b.len() as u64;
                    if tx.send(Ok(b)).await.is_err() {
                        return;
                    }
                }
                Ok(_) => {
                    let _ = tx.send(Err(std::io::Error::other("the owner's answer ended early"))).await;
                    return;
                }
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            }
        }
        if keep {
            give_back(&addr, sock);
        }
    })
    .detach();
    rx
}

/// A node-to-node GET whose answer streams: status, length and the bytes as they arrive (an
/// error answer's body is read whole and given as the one chunk).
pub async fn peer_stream(cluster: &Cluster, node: &Node, target: &str) -> Result<(u16, u64, Chunks), ClusterError> {
    let down = |why: String| ClusterError::NodeUnreachable(node.id.clone(), why);
    let addr = split_url(&node.url).ok_or_else(|| down(format!("its URL {:?} is not http://HOST:PORT", node.url)))?;
    let head = format!(
        "GET {target} HTTP/1.1\r\nhost: {addr}\r\n{PEER_HEADER}: {}\r\n\r\n",
        cluster.peer_token("GET", &super::peer_signed_target(target, b""))
    );
    let mut tries = 0;
    loop {
        tries += 1;
        // A pooled connection the peer closed meanwhile fails at once: then a fresh one.
        let (fresh, mut sock) = match pooled(addr) {
            Some(s) => (false, s),
            None => (true, connect(addr).await.map_err(|e| down(e.to_string()))?),
        };
        let answered = match write(&mut sock, head.clone().into_bytes()).await {
            Ok(()) => read_head(&mut sock).await,
            Err(e) => Err(e),
        };
        match answered {
            Ok(h) => return Ok((h.status, h.length, stream_rest(sock, h.rest, h.length, h.keep, addr))),
            Err(e) if fresh || tries > 1 => return Err(down(e.to_string())),
            Err(_) => {}
        }
    }
}

/// `--redirect`: a 307 to the same request on the owner.
pub fn redirect(req: &Request, node: &Node) -> Response {
    let target = if req.query.is_empty() { req.path.clone() } else { format!("{}?{}", req.path, req.query) };
    Response::new(307).header("Location", format!("{}{}", node.url, target))
}

/// Answers of internal calls are read whole, up to this size.
const PEER_ANSWER_MAX: u64 = 64 << 20;

/// One node-to-node call (`/_keel/peer/…`) with a small body: the status and the whole answer.
pub async fn peer_call(
    cluster: &Cluster,
    node: &Node,
    method: &str,
    target: &str,
    body: Vec<u8>,
) -> Result<(u16, Vec<u8>), ClusterError> {
    peer_call_counted(cluster, node, (method, target, body), IO_TIMEOUT, None).await
}

/// `peer_call` for a call whose work takes a while (a rebalance's move): the answer awaited up
/// to `wait`.
pub async fn peer_call_within(
    cluster: &Cluster,
    node: &Node,
    (method, target, body): (&str, &str, Vec<u8>),
    wait: Duration,
) -> Result<(u16, Vec<u8>), ClusterError> {
    peer_call_counted(cluster, node, (method, target, body), wait, None).await
}

/// Counts a call as sent once: when its request is written, or when it ends without that.
struct SentMark<'a>(Option<&'a std::cell::Cell<usize>>);

impl SentMark<'_> {
    fn done(&mut self) {
        if let Some(c) = self.0.take() {
            c.set(c.get() + 1);
        }
    }
}

impl Drop for SentMark<'_> {
    fn drop(&mut self) {
        self.done();
    }
}

/// `peer_call_within` that adds one to `sent` once its request is on its way (so a caller can
/// do its own work while the peer does its).
pub async fn peer_call_counted(
    cluster: &Cluster,
    node: &Node,
    (method, target, body): (&str, &str, Vec<u8>),
    wait: Duration,
    sent: Option<&std::cell::Cell<usize>>,
) -> Result<(u16, Vec<u8>), ClusterError> {
    let mut mark = SentMark(sent);
    let down = |why: String| ClusterError::NodeUnreachable(node.id.clone(), why);
    let addr = split_url(&node.url).ok_or_else(|| down(format!("its URL {:?} is not http://HOST:PORT", node.url)))?;
    let mut head = format!("{method} {target} HTTP/1.1\r\nhost: {addr}\r\ncontent-length: {}\r\n", body.len());
    let signed = super::peer_signed_target(target, &body);
    head.push_str(&format!("{PEER_HEADER}: {}\r\n\r\n", cluster.peer_token(method, &signed)));
    let mut out = head.into_bytes();
    out.extend_from_slice(&body);
    let mut tries = 0;
    let (mut sock, head) = loop {
        tries += 1;
        let (fresh, sock) = match pooled(addr) {
            Some(s) => (false, s),
            None => (true, connect(addr).await.map_err(|e| down(e.to_string()))?),
        };
        let mut sock = sock;
        let written = write(&mut sock, out.clone()).await;
        if written.is_ok() {
            mark.done();
        }
        match written {
            Ok(()) => match read_head_within(&mut sock, wait).await {
                Ok(h) => break (sock, h),
                Err(e) if fresh || tries > 1 => return Err(down(e.to_string())),
                Err(_) => continue,
            },
            Err(e) if fresh || tries > 1 => return Err(down(e.to_string())),
            Err(_) => continue,
        }
    };
    if head.length > PEER_ANSWER_MAX {
        return Err(down(format!("answered {} bytes", head.length)));
    }
    let mut rest = head.rest;
    while (rest.len() as u64) < head.length {
        let want = (head.length as usize - rest.len()).min(CHUNK_BYTES);
        let (r, b) = read_more(&mut sock, rest, want).await;
        rest = b;
        match r {
            Ok(0) | Err(_) => return Err(down("its answer ended early".into())),
            Ok(_) => {}
        }
    }
    if rest.len() as u64 == head.length && head.keep {
        give_back(addr, sock);
    }
    rest.truncate(head.length as usize);
    Ok((head.status, rest))
}
