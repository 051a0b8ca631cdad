//! Sending a response: its head never alone when a body follows (Nagle and delayed ACKs cost
//! 30–45 ms a request otherwise, BENCH-NOTES.md), bytes in memory in the same write, and byte
//! ranges of files either read into pooled page-aligned buffers or, when large, spliced file →
//! pipe → socket with io_uring, no user-space copy.
//!
//! Each shard keeps a small pool of pipes sized with F_SETPIPE_SZ. A pipe that failed mid-way
//! may still hold bytes, so it is discarded, never pooled. Splice from files needs the io_uring
//! driver (under the poll driver the copy path is used).

use std::cell::RefCell;
use std::os::fd::AsRawFd;

use compio::BufResult;
use compio::buf::{IntoInner, IoBuf};
use compio::fs::File;
use compio::fs::pipe::{Receiver, Sender, anonymous, splice};
use compio::io::AsyncReadAt;
use compio::net::TcpStream;

use super::conn::{Conn, ReadError};
use super::response::{Body, Relay, Response, Span};
use crate::limits;

/// Bytes one pipe holds (and one splice moves). The kernel may grant less.
const PIPE_BYTES: usize = 1 << 20;
/// Pipes kept per shard.
const POOLED_PIPES_MAX: usize = 32;

struct Pipe {
    rx: Receiver,
    tx: Sender,
    capacity: usize,
}

thread_local! {
    static PIPES: RefCell<Vec<Pipe>> = const { RefCell::new(Vec::new()) };
}

async fn take_pipe() -> std::io::Result<Pipe> {
    if let Some(p) = PIPES.with(|p| p.borrow_mut().pop()) {
        return Ok(p);
    }
    let (rx, tx) = anonymous().await?;
    // SAFETY: fcntl on a pipe fd we own; F_SETPIPE_SZ only resizes its buffer.
    let granted = unsafe { libc::fcntl(tx.as_raw_fd(), libc::F_SETPIPE_SZ, PIPE_BYTES as libc::c_int) };
    let capacity = if granted > 0 { granted as usize } else { 64 * 1024 };
    Ok(Pipe { rx, tx, capacity })
}

fn give_pipe(p: Pipe) {
    PIPES.with(|pool| {
        let mut pool = pool.borrow_mut();
        if pool.len() < POOLED_PIPES_MAX {
            pool.push(p);
        }
    });
}

/// Which side of a splice failed.
enum SpliceError {
    /// Reading the file (an I/O error, or the file ends before `len` bytes).
    File(std::io::Error),
    /// Writing the socket (the client went away), or no pipe could be had.
    Socket(std::io::Error),
}

/// Sends a streamed body: the head with the first chunk, then each chunk as it comes.
async fn send_stream(
    conn: &mut Conn,
    head: &mut Option<Vec<u8>>,
    len: u64,
    mut chunks: futures_channel::mpsc::Receiver<std::io::Result<Vec<u8>>>,
) -> Result<(), SendError> {
    use futures_util::StreamExt;
    let mut sent = 0u64;
    while sent < len {
        let error = match chunks.next().await {
            Some(Ok(c)) if sent + c.len() as u64 <= len => {
                sent += c.len() as u64;
                let out = match head.take() {
                    Some(mut h) => {
                        h.extend_from_slice(&c);
                        h
                    }
                    None => c,
                };
                conn.write_all(out).await?;
                continue;
            }
            Some(Ok(_)) => std::io::Error::other("a streamed body longer than announced"),
            Some(Err(e)) => e,
            None => std::io::ErrorKind::UnexpectedEof.into(),
        };
        conn.mark_broken();
        return Err(SendError::Stream { head_sent: head.is_none(), error });
    }
    Ok(())
}

/// Sends a body of unknown length in chunked framing as its pieces come; the channel's end
/// sends the last chunk. The head goes out with the first piece.
async fn send_chunked(
    conn: &mut Conn,
    head: &mut Option<Vec<u8>>,
    mut chunks: futures_channel::mpsc::Receiver<Vec<u8>>,
) -> Result<(), SendError> {
    use futures_util::StreamExt;
    while let Some(c) = chunks.next().await {
        if c.is_empty() {
            continue;
        }
        let mut out = head.take().unwrap_or_default();
        out.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
        out.extend_from_slice(&c);
        out.extend_from_slice(b"\r\n");
        conn.write_all(out).await?;
    }
    let mut out = head.take().unwrap_or_default();
    out.extend_from_slice(b"0\r\n\r\n");
    let out = conn.write_all(out).await?;
    conn.give_wbuf(out);
    Ok(())
}

/// Sends a relayed body: the head with the bytes already read, then the rest from the other
/// connection, spliced (no user-space copy) or through a pooled buffer. The other connection is
/// handed back (`done`) only when all of it was read.
async fn send_relay(conn: &mut Conn, head: &mut Option<Vec<u8>>, relay: Relay, splice: bool) -> Result<(), SendError> {
    let Relay { len, mut first, from, done } = relay;
    first.truncate(len as usize);
    let mut left = len - first.len() as u64;
    let mut out = head.take().unwrap_or_default();
    out.extend_from_slice(&first);
    conn.write_all(out).await?;
    let broken = |conn: &mut Conn, error: std::io::Error| {
        conn.mark_broken();
        SendError::Stream { head_sent: true, error }
    };
    if splice
        && left > 0
        && let Some(to) = conn.tcp()
    {
        match compio::time::timeout(limits::IO_STALL_TIMEOUT * 4, splice_sockets(&from, to, left)).await {
            Ok(Ok(())) => left = 0,
            Ok(Err(SpliceError::File(e))) => return Err(broken(conn, e)),
            Ok(Err(SpliceError::Socket(e))) => {
                tracing::debug!(error = %e, "splice to the client failed");
                conn.mark_broken();
                return Err(SendError::Closed);
            }
            Err(_) => return Err(broken(conn, std::io::ErrorKind::TimedOut.into())),
        }
    }
    let mut from = from;
    let mut buf = iobuf::take_buffer();
    while left > 0 {
        buf.clear();
        let want = (left as usize).min(buf.capacity());
        let read =
            compio::time::timeout(limits::IO_STALL_TIMEOUT, compio::io::AsyncRead::read(&mut from, buf.slice(0..want)));
        let (r, b) = match read.await {
            Ok(BufResult(r, slice)) => (r, slice.into_inner()),
            Err(_) => return Err(broken(conn, std::io::ErrorKind::TimedOut.into())),
        };
        buf = b;
        match r {
            Ok(0) => return Err(broken(conn, std::io::ErrorKind::UnexpectedEof.into())),
            Ok(n) => left -= n as u64,
            Err(e) => return Err(broken(conn, e)),
        }
        buf = conn.write_all(buf).await?;
    }
    iobuf::give_buffer(buf);
    if let Some(done) = done {
        done(from);
    }
    Ok(())
}

/// Moves `len` bytes from one socket to another through a pipe. `SpliceError::File` names the
/// source's failure (it ended or broke).
async fn splice_sockets(from: &TcpStream, to: &TcpStream, mut len: u64) -> Result<(), SpliceError> {
    let pipe = take_pipe().await.map_err(SpliceError::Socket)?;
    while len > 0 {
        let want = (len as usize).min(pipe.capacity);
        let n = splice(from, &pipe.tx, want).flags(libc::SPLICE_F_MOVE).await.map_err(SpliceError::File)?;
        if n == 0 {
            give_pipe(pipe);
            return Err(SpliceError::File(std::io::ErrorKind::UnexpectedEof.into()));
        }
        drain_pipe(&pipe, to, n).await?;
        len -= n as u64;
    }
    give_pipe(pipe);
    Ok(())
}

/// Moves the `n` bytes a pipe holds to the socket.
async fn drain_pipe(pipe: &Pipe, sock: &TcpStream, n: usize) -> Result<(), SpliceError> {
    let mut left = n;
    while left > 0 {
        let m = splice(&pipe.rx, sock, left)
            .flags(libc::SPLICE_F_MOVE | libc::SPLICE_F_MORE)
            .await
            .map_err(SpliceError::Socket)?;
        if m == 0 {
            return Err(SpliceError::Socket(std::io::ErrorKind::WriteZero.into()));
        }
        left -= m;
    }
    Ok(())
}

/// Sends `len` bytes of `file` from `offset` to `sock`. On error the connection must be cut: some
/// bytes may have gone out.
async fn send_file_range(file: &File, sock: &TcpStream, mut offset: u64, mut len: u64) -> Result<(), SpliceError> {
    let pipe = take_pipe().await.map_err(SpliceError::Socket)?;
    while len > 0 {
        let want = (len as usize).min(pipe.capacity);
        let n = splice(file, &pipe.tx, want)
            .offset_in(offset as i64)
            .flags(libc::SPLICE_F_MOVE)
            .await
            .map_err(SpliceError::File)?;
        if n == 0 {
            // The file ended before its record said: pipe is empty, but the body is short.
            give_pipe(pipe);
            return Err(SpliceError::File(std::io::ErrorKind::UnexpectedEof.into()));
        }
        drain_pipe(&pipe, sock, n).await?;
        offset += n as u64;
        len -= n as u64;
    }
    give_pipe(pipe);
    Ok(())
}

/// How file spans go out.
#[derive(Clone, Copy, Debug, Default)]
pub struct SendPolicy {
    /// Splicing is possible (the io_uring driver) and wanted.
    pub splice: bool,
    /// Bodies at least this long are spliced.
    pub splice_min: u64,
}

/// Why a response did not go out whole.
#[derive(Debug)]
pub enum SendError {
    /// The client went away or stalled; the connection is broken.
    Closed,
    /// A file span could not be read (its file shorter than announced, or an I/O error); `origin`
    /// is the span's. When the head had not gone out yet the caller may still answer an error;
    /// either way the connection is broken.
    Read { head_sent: bool, error: std::io::Error, origin: u64 },
    /// A streamed body failed or ended short; the connection is broken.
    Stream { head_sent: bool, error: std::io::Error },
}

impl From<ReadError> for SendError {
    fn from(_: ReadError) -> SendError {
        SendError::Closed
    }
}

/// The first buffer of a spliced body, sent together with the head.
const FIRST_CHUNK_BYTES: usize = 64 * 1024;

/// Sends a response whole: its head (with `Connection: close` unless `keep`) and its body.
pub async fn send(conn: &mut Conn, mut resp: Response, keep: bool, policy: SendPolicy) -> Result<(), SendError> {
    // A TLS session's bytes are encrypted in user space: nothing is spliced (D43).
    let policy = SendPolicy { splice: policy.splice && !conn.is_tls(), ..policy };
    let total = resp.content_length();
    let mut h = conn.take_wbuf();
    resp.head_into(keep, &mut h);
    resp.recycle_headers();
    let mut head = Some(h);
    match resp.body {
        Body::Empty | Body::HeadOnly(_) => {}
        Body::Bytes(b) => {
            let mut out = head.take().unwrap_or_default();
            out.extend_from_slice(&b);
            let out = conn.write_all(out).await?;
            conn.give_wbuf(out);
        }
        Body::Stream { len, chunks } => send_stream(conn, &mut head, len, chunks).await?,
        Body::Chunked(chunks) => send_chunked(conn, &mut head, chunks).await?,
        Body::Relay(relay) => send_relay(conn, &mut head, *relay, policy.splice && total >= policy.splice_min).await?,
        Body::Spans(spans) => {
            let splice = policy.splice && total >= policy.splice_min;
            for span in spans {
                match span {
                    Span::Bytes(b) => {
                        let mut out = head.take().unwrap_or_default();
                        out.extend_from_slice(&b);
                        let out = conn.write_all(out).await?;
                        conn.give_wbuf(out);
                    }
                    Span::File { file, offset, len, origin } => {
                        send_file_span(conn, &mut head, (&file, origin), offset, len, splice).await?;
                    }
                }
            }
        }
    }
    if let Some(h) = head {
        let h = conn.write_all(h).await?;
        conn.give_wbuf(h);
    }
    Ok(())
}

/// Sends `len` bytes of `file` from `offset`: the head (if still unsent) with the first buffer,
/// then the rest spliced or through buffers.
async fn send_file_span(
    conn: &mut Conn,
    head: &mut Option<Vec<u8>>,
    (file, origin): (&File, u64),
    mut offset: u64,
    len: u64,
    splice: bool,
) -> Result<(), SendError> {
    let end = offset + len;
    let mut buf = iobuf::take_buffer();
    while offset < end {
        if splice
            && head.is_none()
            && let Some(to) = conn.tcp()
        {
            iobuf::give_buffer(buf);
            let r =
                compio::time::timeout(limits::IO_STALL_TIMEOUT * 4, send_file_range(file, to, offset, end - offset))
                    .await;
            return match r {
                Ok(Ok(())) => Ok(()),
                Ok(Err(SpliceError::File(error))) => {
                    conn.mark_broken();
                    Err(SendError::Read { head_sent: true, error, origin })
                }
                Ok(Err(SpliceError::Socket(e))) => {
                    tracing::debug!(error = %e, "splice to the client failed");
                    conn.mark_broken();
                    Err(SendError::Closed)
                }
                Err(_) => {
                    conn.mark_broken();
                    Err(SendError::Closed)
                }
            };
        }
        let chunk = if splice { FIRST_CHUNK_BYTES } else { iobuf::BUFFER_BYTES };
        let want = ((end - offset) as usize).min(chunk);
        let (r, b) = read_exact_at(file, buf, offset, want).await;
        buf = b;
        if let Err(error) = r {
            iobuf::give_buffer(buf);
            conn.mark_broken();
            return Err(SendError::Read { head_sent: head.is_none(), error, origin });
        }
        offset += want as u64;
        buf = match head.take() {
            Some(h) => conn.write_head_and(h, buf).await?,
            None => conn.write_all(buf).await?,
        };
    }
    iobuf::give_buffer(buf);
    Ok(())
}

/// Reads exactly `want` bytes at `offset` into `buf` (cleared first); a file that ends sooner is
/// an error (`UnexpectedEof`).
async fn read_exact_at(
    file: &File,
    mut buf: iobuf::IoBuffer,
    offset: u64,
    want: usize,
) -> (std::io::Result<()>, iobuf::IoBuffer) {
    buf.clear();
    let want = want.min(buf.capacity());
    let mut filled = 0;
    while filled < want {
        let BufResult(r, slice) = file.read_at(buf.slice(filled..want), offset + filled as u64).await;
        buf = slice.into_inner();
        match r {
            Ok(0) => return (Err(std::io::ErrorKind::UnexpectedEof.into()), buf),
            Ok(n) => filled += n,
            Err(e) => return (Err(e), buf),
        }
    }
    (Ok(()), buf)
}
