//! One client connection: a read buffer in front of the socket, request heads, body framing,
//! and response writes. Every read and write is bounded in time.

use std::future::Future;
use std::time::{Duration, Instant};

use compio::BufResult;
use compio::buf::{IntoInner, IoBuf, IoBufMut, IoVectoredBuf};
use compio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use compio::net::TcpStream;
use iobuf::IoBuffer;

use super::chunked::{ChunkError, ChunkedDecoder};
use super::deadline::Registration;
use super::request::{Framing, HeadError, Request};
use crate::limits;

/// Why reading from the client stopped.
#[derive(Debug)]
pub enum ReadError {
    /// The client closed the connection or the socket failed.
    Closed,
    /// The client stalled past a timeout.
    TimedOut,
    /// The head could not be parsed.
    Head(HeadError),
    /// The body's framing is malformed.
    Chunked(ChunkError),
    /// The body ended before its declared length (client closed mid-body).
    Truncated,
    /// The body is larger than the operation accepts.
    TooLarge,
}

/// Outcome of waiting for the next request head.
pub enum NextHead {
    Request(Request),
    /// The client closed cleanly between requests.
    Closed,
}

/// The bytes' way to the client: the socket itself, or a TLS session over it (D43).
enum Stream {
    Plain(TcpStream),
    Tls(Box<super::tls::TlsStream>),
    /// Between the socket being handed to a handshake and the handshake's end (or failure).
    Gone,
}

fn gone<T, B>(buf: B) -> BufResult<T, B> {
    BufResult(Err(std::io::ErrorKind::NotConnected.into()), buf)
}

/// A TLS session's write, once its records are flushed to the socket (a write that failed is
/// not flushed).
async fn flushed<B>(s: &mut super::tls::TlsStream, written: BufResult<(), B>) -> BufResult<(), B> {
    match written {
        BufResult(Ok(()), buf) => BufResult(s.flush().await, buf),
        failed => failed,
    }
}

impl AsyncRead for Stream {
    async fn read<B: IoBufMut>(&mut self, buf: B) -> BufResult<usize, B> {
        match self {
            Stream::Plain(s) => s.read(buf).await,
            Stream::Tls(s) => s.read(buf).await,
            Stream::Gone => gone(buf),
        }
    }
}

impl Stream {
    /// Writes all of `buf`; a TLS session is flushed too (its records reach the socket).
    async fn write_all<B: IoBuf>(&mut self, buf: B) -> BufResult<(), B> {
        match self {
            Stream::Plain(s) => s.write_all(buf).await,
            Stream::Tls(s) => {
                let written = s.write_all(buf).await;
                flushed(s, written).await
            }
            Stream::Gone => gone(buf),
        }
    }

    /// Writes all of `bufs` (one vectored write on a plain socket), flushing a TLS session.
    async fn write_vectored_all<B: IoVectoredBuf>(&mut self, bufs: B) -> BufResult<(), B> {
        match self {
            Stream::Plain(s) => s.write_vectored_all(bufs).await,
            Stream::Tls(s) => {
                let written = s.write_vectored_all(bufs).await;
                flushed(s, written).await
            }
            Stream::Gone => gone(bufs),
        }
    }

    async fn shutdown(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Plain(s) => s.shutdown().await,
            Stream::Tls(s) => s.shutdown().await,
            Stream::Gone => Ok(()),
        }
    }
}

pub struct Conn {
    stream: Stream,
    /// The socket's descriptor (the deadline sweep shuts it down; TLS keeps the socket inside
    /// its session).
    fd: std::os::fd::RawFd,
    /// Bytes read from the socket but not consumed: `rbuf[rpos..]`.
    rbuf: Vec<u8>,
    rpos: usize,
    /// Body framing state of the current request.
    body: BodyState,
    /// Set once the stream can no longer be trusted (a cancelled read, a framing error).
    broken: bool,
    /// The client sent `Expect: 100-continue` and has not been answered yet.
    continue_pending: bool,
    /// When the current body's first byte was asked for, and how many bytes came since: a
    /// body must keep a minimum average rate (`body_deadline`).
    body_started: Option<Instant>,
    body_read: u64,
    /// Time a body gets before the minimum rate applies (`BODY_GRACE`; tests shorten it).
    body_grace: Duration,
    /// The connection closes with part of a body unread: read and discard it for a moment
    /// first, so the client sees the answer instead of a reset.
    linger: bool,
    /// The buffer response heads are written into, reused from one response to the next.
    wbuf: Vec<u8>,
    /// The client's address (bucket policies' `aws:SourceIp`): the socket's, or for the
    /// current request the one a cluster member forwarded it for (`set_request_peer`).
    peer: Option<std::net::IpAddr>,
    socket_peer: Option<std::net::IpAddr>,
    /// The previous request, given back (`recycle`): the next head is parsed into it.
    spare: Option<Request>,
    /// The connection's slot on its shard's deadline sweep (D42); without one (a connection
    /// outside a shard), reads and writes wait under timers. After `stream`: dropped after the
    /// socket is closed, in the same drop.
    deadline: Option<Registration>,
    /// Time a whole request head gets once its first byte is here (`HEADER_READ_TIMEOUT`).
    head_timeout: Duration,
    /// Time a write may wait for the client to take bytes (`IO_STALL_TIMEOUT`).
    stall_timeout: Duration,
}

#[derive(Debug)]
enum BodyState {
    Length { remaining: u64 },
    Chunked(Box<ChunkedDecoder>),
    Done,
}

async fn timed<F: Future>(d: Duration, f: F) -> Result<F::Output, ReadError> {
    compio::time::timeout(d, f).await.map_err(|_| ReadError::TimedOut)
}

/// Awaits a wait on the socket for at most `d`: on the shard's deadline sweep when the
/// connection has a slot there (D42; `write`: a write the client does not take), else under a
/// timer. `None`: it timed out (the connection is not to be used again).
async fn within<F: Future>(slot: Option<&Registration>, d: Duration, write: bool, f: F) -> Option<F::Output> {
    match slot {
        Some(slot) => {
            let armed = slot.arm(d, write);
            let out = f.await;
            (!armed.fired()).then_some(out)
        }
        None => compio::time::timeout(d, f).await.ok(),
    }
}

impl Conn {
    pub fn new(stream: TcpStream) -> Conn {
        Conn::with_body_grace(stream, limits::BODY_GRACE)
    }

    pub fn with_body_grace(stream: TcpStream, body_grace: Duration) -> Conn {
        use std::os::fd::AsRawFd;
        Conn {
            fd: stream.as_raw_fd(),
            stream: Stream::Plain(stream),
            rbuf: Vec::with_capacity(limits::READ_BUFFER_BYTES),
            rpos: 0,
            body: BodyState::Done,
            broken: false,
            continue_pending: false,
            body_started: None,
            body_read: 0,
            body_grace,
            linger: false,
            wbuf: Vec::new(),
            peer: None,
            socket_peer: None,
            spare: None,
            deadline: None,
            head_timeout: limits::HEADER_READ_TIMEOUT,
            stall_timeout: limits::IO_STALL_TIMEOUT,
        }
    }

    /// Sets the time a whole request head gets and the time a write may stall (tests shorten
    /// them).
    pub fn set_timeouts(&mut self, head: Duration, stall: Duration) {
        self.head_timeout = head;
        self.stall_timeout = stall;
    }

    /// Puts the connection's reads of heads and its writes on the shard's deadline sweep.
    pub fn set_deadlines(&mut self, deadlines: &std::rc::Rc<crate::http::deadline::Deadlines>) {
        self.deadline = Some(deadlines.register(self.fd));
    }

    /// Runs the TLS handshake on the plain socket (D43), bounded like a request head (and on
    /// the deadline sweep when the connection has a slot). After an error the connection is
    /// not to be used.
    pub async fn start_tls(&mut self, tls: &super::tls::Tls) -> Result<(), ReadError> {
        let Stream::Plain(plain) = std::mem::replace(&mut self.stream, Stream::Gone) else {
            self.broken = true;
            return Err(ReadError::Closed);
        };
        match within(self.deadline.as_ref(), self.head_timeout, false, tls.accept(plain)).await {
            Some(Ok(s)) => {
                self.stream = Stream::Tls(Box::new(s));
                Ok(())
            }
            Some(Err(e)) => {
                tracing::debug!(error = %e, "TLS handshake failed");
                self.broken = true;
                Err(ReadError::Closed)
            }
            None => {
                self.broken = true;
                Err(ReadError::TimedOut)
            }
        }
    }

    /// Whether the connection is a TLS session (its bytes cannot be spliced).
    pub fn set_peer(&mut self, ip: std::net::IpAddr) {
        self.peer = Some(ip);
        self.socket_peer = Some(ip);
    }

    /// The address the current request came from, when another node forwarded it (until the
    /// next request).
    pub fn set_request_peer(&mut self, ip: std::net::IpAddr) {
        self.peer = Some(ip);
    }

    /// The client's address, when the connection was accepted from the network.
    pub fn peer(&self) -> Option<std::net::IpAddr> {
        self.peer
    }

    pub fn is_tls(&self) -> bool {
        !matches!(self.stream, Stream::Plain(_))
    }

    /// Gives a served request back: the next head is parsed into its buffers.
    pub fn recycle(&mut self, req: Request) {
        self.spare = Some(req);
    }

    /// The connection's head buffer, empty (give it back with `give_wbuf` once written).
    pub fn take_wbuf(&mut self) -> Vec<u8> {
        let mut b = std::mem::take(&mut self.wbuf);
        b.clear();
        b
    }

    /// Keeps a written head buffer for the next response (not one grown past a head's size).
    pub fn give_wbuf(&mut self, b: Vec<u8>) {
        if b.capacity() <= limits::HEAD_BUFFER_KEEP {
            self.wbuf = b;
        }
    }

    /// How long the next body read may wait: the stall timeout, or less when the body is behind
    /// its minimum rate (`BODY_GRACE` plus one second per `BODY_BYTES_PER_SEC_MIN` received),
    /// so a client trickling a byte now and then cannot hold the connection and its buffers.
    fn body_wait(&mut self) -> Result<Duration, ReadError> {
        let started = *self.body_started.get_or_insert_with(Instant::now);
        let allowed =
            self.body_grace + Duration::from_secs_f64(self.body_read as f64 / limits::BODY_BYTES_PER_SEC_MIN as f64);
        match allowed.checked_sub(started.elapsed()) {
            Some(left) if !left.is_zero() => Ok(left.min(limits::IO_STALL_TIMEOUT)),
            _ => {
                self.broken = true;
                Err(ReadError::TimedOut)
            }
        }
    }

    pub fn is_broken(&self) -> bool {
        self.broken
    }

    pub fn mark_broken(&mut self) {
        self.broken = true;
    }

    fn buffered(&self) -> &[u8] {
        &self.rbuf[self.rpos..]
    }

    /// Reads more bytes from the socket into the read buffer. Returns 0 at end of stream.
    async fn fill(&mut self, timeout: Duration) -> Result<usize, ReadError> {
        if self.rpos > 0 {
            self.rbuf.drain(..self.rpos);
            self.rpos = 0;
        }
        if self.rbuf.capacity() - self.rbuf.len() < 4096 {
            self.rbuf.reserve(limits::READ_BUFFER_BYTES);
        }
        let buf = std::mem::take(&mut self.rbuf);
        let len = buf.len();
        match within(self.deadline.as_ref(), timeout, false, self.stream.read(buf.slice(len..))).await {
            Some(BufResult(r, slice)) => {
                self.rbuf = slice.into_inner();
                match r {
                    Ok(n) => Ok(n),
                    Err(e) => {
                        tracing::debug!(error = %e, "socket read failed");
                        self.broken = true;
                        Err(ReadError::Closed)
                    }
                }
            }
            None => {
                // The cancelled read took the buffer; the stream position is unknown now.
                self.broken = true;
                Err(ReadError::TimedOut)
            }
        }
    }

    /// Waits for and parses the next request head. `idle` bounds the wait for its first byte.
    pub async fn next_head(&mut self, idle: Duration) -> Result<NextHead, ReadError> {
        assert!(matches!(self.body, BodyState::Done), "previous body not finished");
        // Once the first byte of a head is here, the whole head must arrive by one deadline
        // (a client trickling a byte at a time cannot hold the connection forever).
        let mut deadline = if self.buffered().is_empty() { None } else { Some(Instant::now() + self.head_timeout) };
        loop {
            if !self.buffered().is_empty() {
                match Request::parse_reusing(&self.rbuf[self.rpos..], &mut self.spare) {
                    Ok((req, n)) => {
                        self.rpos += n;
                        self.peer = self.socket_peer;
                        self.body_started = None;
                        self.body_read = 0;
                        self.body = match req.framing {
                            Framing::None => BodyState::Done,
                            Framing::Length(n) => BodyState::Length { remaining: n },
                            Framing::Chunked => BodyState::Chunked(Box::default()),
                        };
                        self.continue_pending = req.expect_continue && !self.body_done();
                        return Ok(NextHead::Request(req));
                    }
                    Err(HeadError::Partial) => {}
                    Err(e) => {
                        self.broken = true;
                        return Err(ReadError::Head(e));
                    }
                }
            }
            let timeout = match deadline {
                None => idle,
                Some(d) => d.saturating_duration_since(Instant::now()),
            };
            if timeout.is_zero() {
                self.broken = true;
                return Err(ReadError::TimedOut);
            }
            let n = self.fill(timeout).await?;
            if n == 0 {
                self.broken = true;
                return if self.buffered().is_empty() && deadline.is_none() {
                    Ok(NextHead::Closed)
                } else {
                    Err(ReadError::Closed)
                };
            }
            if deadline.is_none() {
                deadline = Some(Instant::now() + self.head_timeout);
            }
        }
    }

    /// True while the client waits for `100 Continue` before sending its body.
    pub fn continue_pending(&self) -> bool {
        self.continue_pending
    }

    /// Sends `100 Continue` if the client asked for it and has not had it yet.
    pub async fn send_continue(&mut self) -> Result<(), ReadError> {
        if self.continue_pending {
            self.continue_pending = false;
            self.write_all(b"HTTP/1.1 100 Continue\r\n\r\n".to_vec()).await?;
        }
        Ok(())
    }

    /// True when the current request's body has been read to its end.
    pub fn body_done(&self) -> bool {
        matches!(self.body, BodyState::Done)
    }

    /// Reads body bytes into `buf` until it is full or the body ends. Returns the buffer with the
    /// bytes appended; fewer than its spare capacity means the body ended.
    pub async fn read_body(&mut self, mut buf: IoBuffer) -> (Result<usize, ReadError>, IoBuffer) {
        let start = buf.len();
        loop {
            match &mut self.body {
                BodyState::Done => break,
                BodyState::Length { remaining } => {
                    if *remaining == 0 {
                        self.body = BodyState::Done;
                        break;
                    }
                    if buf.len() == buf.capacity() {
                        break;
                    }
                    let want = (*remaining).min((buf.capacity() - buf.len()) as u64) as usize;
                    let avail = self.rbuf.len() - self.rpos;
                    if avail > 0 {
                        let n = want.min(avail);
                        buf.extend_from_slice(&self.rbuf[self.rpos..self.rpos + n]);
                        self.rpos += n;
                        *remaining -= n as u64;
                        self.body_read += n as u64;
                        continue;
                    }
                    // Nothing buffered: read from the socket straight into the caller's buffer.
                    let wait = match self.body_wait() {
                        Ok(w) => w,
                        Err(e) => return (Err(e), buf),
                    };
                    let len = buf.len();
                    let fut = self.stream.read(buf.slice(len..len + want));
                    match within(self.deadline.as_ref(), wait, false, fut).await {
                        Some(BufResult(r, slice)) => {
                            buf = slice.into_inner();
                            match r {
                                Ok(0) | Err(_) => {
                                    self.broken = true;
                                    return (Err(ReadError::Truncated), buf);
                                }
                                Ok(n) => {
                                    if let BodyState::Length { remaining } = &mut self.body {
                                        *remaining -= n as u64;
                                    }
                                    self.body_read += n as u64;
                                }
                            }
                        }
                        None => {
                            self.broken = true;
                            return (Err(ReadError::TimedOut), IoBuffer::with_capacity(buf_capacity_hint()));
                        }
                    }
                }
                BodyState::Chunked(dec) => {
                    if dec.is_done() {
                        self.body = BodyState::Done;
                        break;
                    }
                    if buf.len() == buf.capacity() && dec.data_remaining() > 0 {
                        break;
                    }
                    if self.rpos < self.rbuf.len() {
                        match dec.decode(&self.rbuf[self.rpos..], buf.spare_mut()) {
                            Ok((consumed, produced)) => {
                                self.rpos += consumed;
                                self.body_read += consumed as u64;
                                buf.grow(produced);
                            }
                            Err(e) => {
                                self.broken = true;
                                return (Err(ReadError::Chunked(e)), buf);
                            }
                        }
                        continue;
                    }
                    let wait = match self.body_wait() {
                        Ok(w) => w,
                        Err(e) => return (Err(e), buf),
                    };
                    match self.fill(wait).await {
                        Ok(0) => {
                            self.broken = true;
                            return (Err(ReadError::Truncated), buf);
                        }
                        Ok(_) => {}
                        Err(e) => return (Err(e), buf),
                    }
                }
            }
        }
        let n = buf.len() - start;
        (Ok(n), buf)
    }

    /// Reads a whole (small) body into memory, refusing more than `max` bytes.
    pub async fn read_body_to_vec(&mut self, max: usize) -> Result<Vec<u8>, ReadError> {
        let mut out = Vec::new();
        let mut buf = iobuf::take_buffer();
        let result = loop {
            buf.clear();
            let (r, b) = self.read_body(buf).await;
            buf = b;
            let n = match r {
                Ok(n) => n,
                Err(e) => break Err(e),
            };
            if out.len() + n > max {
                self.broken = true;
                break Err(ReadError::TooLarge);
            }
            out.extend_from_slice(buf.as_slice());
            if self.body_done() || n == 0 {
                break Ok(std::mem::take(&mut out));
            }
        };
        iobuf::give_buffer(buf);
        result
    }

    /// Reads and discards the rest of a body whose answer is already decided, when that rest is
    /// known and at most `max` bytes and arrives within `DRAIN_TIMEOUT`, through the connection's
    /// own small read buffer (never a pooled body buffer); true if the connection can be reused
    /// afterwards. Anything larger, unknown (chunked) or slower closes the connection instead.
    pub async fn drain_body(&mut self, max: u64) -> bool {
        if self.broken {
            return false;
        }
        let deadline = Instant::now() + limits::DRAIN_TIMEOUT;
        loop {
            let remaining = match &mut self.body {
                BodyState::Done => return true,
                BodyState::Length { remaining } if *remaining <= max => remaining,
                _ => return false,
            };
            if *remaining == 0 {
                self.body = BodyState::Done;
                return true;
            }
            let avail = (self.rbuf.len() - self.rpos) as u64;
            if avail > 0 {
                let n = avail.min(*remaining);
                *remaining -= n;
                self.rpos += n as usize;
                continue;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                self.broken = true;
                return false;
            }
            match self.fill(left).await {
                Ok(n) if n > 0 => {}
                _ => {
                    self.broken = true;
                    return false;
                }
            }
        }
    }

    /// Marks the current body as abandoned (the connection will close).
    pub fn abandon_body(&mut self) {
        if !self.body_done() {
            self.broken = true;
            self.linger = true;
            self.body = BodyState::Done;
        }
    }

    /// Writes `data` fully.
    pub async fn write_all<B: IoBuf>(&mut self, data: B) -> Result<B, ReadError> {
        match within(self.deadline.as_ref(), self.stall_timeout, true, self.stream.write_all(data)).await {
            Some(BufResult(Ok(()), b)) => Ok(b),
            _ => {
                self.broken = true;
                Err(ReadError::Closed)
            }
        }
    }

    /// Writes a head and a first body buffer in one vectored write.
    pub async fn write_head_and(&mut self, head: Vec<u8>, body: IoBuffer) -> Result<IoBuffer, ReadError> {
        let fut = self.stream.write_vectored_all((head, (body,)));
        match within(self.deadline.as_ref(), self.stall_timeout, true, fut).await {
            Some(BufResult(Ok(()), (h, (b,)))) => {
                self.give_wbuf(h);
                Ok(b)
            }
            _ => {
                self.broken = true;
                Err(ReadError::Closed)
            }
        }
    }

    /// The plain socket, for splicing; `None` under TLS.
    pub fn tcp(&self) -> Option<&TcpStream> {
        match &self.stream {
            Stream::Plain(s) => Some(s),
            _ => None,
        }
    }

    /// Closes the connection. With a body left unread, the write side closes first and what
    /// the client still sends is read and discarded for a moment (bounded in time and bytes, in
    /// the connection's small read buffer): closing with unread bytes would reset the
    /// connection and could destroy the answer before the client reads it.
    pub async fn shutdown(mut self) {
        let _ = timed(Duration::from_secs(1), self.stream.shutdown()).await;
        if !self.linger {
            return;
        }
        let deadline = Instant::now() + limits::LINGER_TIMEOUT;
        let mut discarded = 0usize;
        let mut buf = std::mem::take(&mut self.rbuf);
        buf.clear();
        buf.shrink_to(limits::READ_BUFFER_BYTES);
        while discarded < limits::LINGER_BYTES_MAX {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            buf.clear();
            let cap = buf.capacity().max(4096);
            match compio::time::timeout(left, self.stream.read(buf.slice(0..cap))).await {
                Ok(BufResult(Ok(n), slice)) if n > 0 => {
                    discarded += n;
                    buf = slice.into_inner();
                }
                _ => break,
            }
        }
    }
}

fn buf_capacity_hint() -> usize {
    4096
}
