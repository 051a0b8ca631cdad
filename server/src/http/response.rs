//! Responses: a status, headers and a body: bytes in memory, or spans of open files and bytes
//! (an object's ranges), sent by `send.rs`.

use std::borrow::Cow;

use compio::fs::File;

use crate::http::{HeaderValue, Method};
use crate::time;

pub enum Body {
    /// No body; `Content-Length: 0` is still sent (except on 204/304).
    Empty,
    Bytes(Vec<u8>),
    /// Pieces sent in order: byte ranges of open files and bytes in memory.
    Spans(Vec<Span>),
    /// A HEAD answer: announces `Content-Length` but sends no bytes.
    HeadOnly(u64),
    /// `len` bytes that arrive as they are produced (a backend bucket's cold read). A chunk that
    /// is an error, or a channel that ends short of `len`, cuts the connection.
    Stream {
        len: u64,
        chunks: futures_channel::mpsc::Receiver<std::io::Result<Vec<u8>>>,
    },
    /// Bytes produced while the answer is still being worked out, sent with chunked transfer
    /// encoding (no `Content-Length`) as they come: a long completion's keep-alive spaces,
    /// then its result. The channel's end ends the body.
    Chunked(futures_channel::mpsc::Receiver<Vec<u8>>),
    /// `len` bytes relayed from another connection (a cluster member's answer): `first` already
    /// read, the rest read from `from` (spliced socket → pipe → socket when splicing is on).
    /// `done` gets the connection back once every byte went out (to pool it).
    Relay(Box<Relay>),
}

pub struct Relay {
    pub len: u64,
    pub first: Vec<u8>,
    pub from: compio::net::TcpStream,
    pub done: Option<Box<dyn FnOnce(compio::net::TcpStream)>>,
}

/// One piece of a body.
pub enum Span {
    /// `len` bytes of `file` from `offset` (the file was opened before the answer was decided,
    /// so an overwrite meanwhile does not disturb it). `origin` is opaque here: a failure to read
    /// the file is reported with it (`SendError::Read`).
    File {
        file: File,
        offset: u64,
        len: u64,
        origin: u64,
    },
    Bytes(Vec<u8>),
}

impl Span {
    pub fn len(&self) -> u64 {
        match self {
            Span::File { len, .. } => *len,
            Span::Bytes(b) => b.len() as u64,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

pub struct Response {
    pub status: u16,
    pub headers: Vec<(Cow<'static, str>, HeaderValue)>,
    pub body: Body,
}

/// Headers a response has room for without growing (an object GET's usual set).
const HEADERS_USUAL: usize = 12;
/// Header lists a thread keeps for reuse (one per response in flight on a shard, about).
const HEADER_LISTS_KEPT: usize = 256;

type HeaderList = Vec<(Cow<'static, str>, HeaderValue)>;

thread_local! {
    /// Header lists of responses already sent, for the next ones: no allocation per response.
    static HEADER_LISTS: std::cell::RefCell<Vec<HeaderList>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// An empty header list with room for the usual headers, reused when the thread has one.
fn header_list() -> HeaderList {
    HEADER_LISTS.with_borrow_mut(Vec::pop).unwrap_or_else(|| Vec::with_capacity(HEADERS_USUAL))
}

/// `n` in decimal, written at the end of `buf`.
fn decimal(n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut at = buf.len();
    let mut n = n;
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[at..];
        }
    }
}

pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        304 => "Not Modified",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Payload Too Large",
        414 => "URI Too Long",
        416 => "Range Not Satisfiable",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        507 => "Insufficient Storage",
        _ => "Unknown",
    }
}

impl Response {
    /// The answer to a HEAD request: the headers of the GET answer and no body (Content-Length
    /// stays what the body's length would be, for successes).
    pub fn for_head(mut self, method: Method) -> Response {
        if method == Method::Head
            && let Body::Bytes(b) = &self.body
        {
            let n = b.len() as u64;
            self.body = if self.status >= 300 { Body::Empty } else { Body::HeadOnly(n) };
        }
        self
    }

    pub fn new(status: u16) -> Response {
        Response { status, headers: header_list(), body: Body::Empty }
    }

    /// Gives the header list back to the thread's pool once the head is written.
    pub fn recycle_headers(&mut self) {
        let mut list = std::mem::take(&mut self.headers);
        list.clear();
        if list.capacity() >= HEADERS_USUAL {
            HEADER_LISTS.with_borrow_mut(|pool| {
                if pool.len() < HEADER_LISTS_KEPT {
                    pool.push(list);
                }
            });
        }
    }

    pub fn with_body(status: u16, content_type: &'static str, body: Vec<u8>) -> Response {
        let mut headers = header_list();
        headers.push((Cow::Borrowed("Content-Type"), HeaderValue::from_static(content_type)));
        Response { status, headers, body: Body::Bytes(body) }
    }

    pub fn header(mut self, name: impl Into<Cow<'static, str>>, value: impl Into<HeaderValue>) -> Response {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn push_header(&mut self, name: impl Into<Cow<'static, str>>, value: impl Into<HeaderValue>) {
        self.headers.push((name.into(), value.into()));
    }

    /// Bytes the body will carry on the wire.
    pub fn content_length(&self) -> u64 {
        match &self.body {
            Body::Empty => 0,
            Body::Bytes(b) => b.len() as u64,
            Body::Spans(spans) => spans.iter().map(Span::len).sum(),
            Body::HeadOnly(n) => *n,
            Body::Stream { len, .. } => *len,
            Body::Chunked(_) => 0,
            Body::Relay(r) => r.len,
        }
    }

    /// Serialises the status line and headers (with Content-Length, Date, Server, Connection).
    pub fn head(&self, keep_alive: bool) -> Vec<u8> {
        let mut out = Vec::with_capacity(256 + self.headers.len() * 48);
        self.head_into(keep_alive, &mut out);
        out
    }

    /// `head`, appended to `out` (a connection's reused buffer: no allocation once it has grown).
    pub fn head_into(&self, keep_alive: bool, out: &mut Vec<u8>) {
        let mut line = |parts: &[&[u8]]| parts.iter().for_each(|p| out.extend_from_slice(p));
        let (mut status, mut length) = ([0u8; 20], [0u8; 20]);
        let status = decimal(u64::from(self.status), &mut status);
        line(&[b"HTTP/1.1 ", status, b" ", reason(self.status).as_bytes(), b"\r\n"]);
        for (k, v) in &self.headers {
            line(&[k.as_bytes(), b": ", v.as_bytes(), b"\r\n"]);
        }
        if matches!(self.body, Body::Chunked(_)) {
            line(&[b"Transfer-Encoding: chunked\r\n"]);
        } else if self.status != 204 && self.status != 304 && !(100..200).contains(&self.status) {
            line(&[b"Content-Length: ", decimal(self.content_length(), &mut length), b"\r\n"]);
        }
        time::with_date_now(|date| line(&[b"Date: ", date, b"\r\nServer: keel\r\n"]));
        if !keep_alive {
            line(&[b"Connection: close\r\n"]);
        }
        line(&[b"\r\n"]);
    }
}
