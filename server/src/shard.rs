//! Shards: one pinned OS thread per core, each with its own compio runtime (io_uring, or the
//! poll driver where io_uring is refused) and its own SO_REUSEPORT listener. A connection lives
//! and dies on the shard that accepted it.

use std::cell::Cell;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use compio::net::{TcpListener, TcpStream};
use event_listener::Event;
use futures_util::future::{Either, select};

use crate::endpoints;
use crate::http::conn::{NextHead, ReadError};
use crate::http::deadline::{self, Deadlines};
use crate::http::request::HeadError;
use crate::http::send::{SendError, SendPolicy, send};
use crate::http::{Conn, Response};
use crate::limits;
use crate::s3::error::{S3Error, S3ErrorCode};
use crate::s3::{Ctx, S3Config};

/// Tells every shard to stop accepting and wind down.
pub struct Stopper {
    stopping: AtomicBool,
    event: Event,
}

impl Default for Stopper {
    fn default() -> Self {
        Stopper::new()
    }
}

impl Stopper {
    pub fn new() -> Stopper {
        Stopper { stopping: AtomicBool::new(false), event: Event::new() }
    }

    pub fn stop(&self) {
        self.stopping.store(true, Ordering::Release);
        self.event.notify(usize::MAX);
    }

    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// Resolves once `stop` has been called.
    pub async fn wait(&self) {
        loop {
            if self.is_stopping() {
                return;
            }
            let listener = self.event.listen();
            if self.is_stopping() {
                return;
            }
            listener.await;
        }
    }
}

/// Binds one SO_REUSEPORT listener per shard on `addr` (port 0 picks a free port).
///
/// SO_REUSEPORT would also let a second process of the same user bind the same port and
/// silently take half the connections. So the address is first bound exclusively (without
/// SO_REUSEPORT), which fails if anything holds it, and released just before the shards bind.
pub fn bind_shards(addr: SocketAddr, shards: usize) -> std::io::Result<Vec<std::net::TcpListener>> {
    let probe = socket2::Socket::new(socket2::Domain::for_address(addr), socket2::Type::STREAM, None)?;
    probe.set_reuse_address(true)?;
    probe.bind(&addr.into())?;
    let addr = probe.local_addr()?.as_socket().ok_or_else(|| std::io::Error::other("not an inet address"))?;
    drop(probe);
    (0..shards.max(1)).map(|_| bind_reuseport(addr)).collect()
}

/// Binds a listening socket with SO_REUSEPORT so every shard can bind the same address.
fn bind_reuseport(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let s = socket2::Socket::new(socket2::Domain::for_address(addr), socket2::Type::STREAM, None)?;
    s.set_reuse_address(true)?;
    s.set_reuse_port(true)?;
    s.bind(&addr.into())?;
    s.listen(4096)?;
    Ok(s.into())
}

/// The CPUs this process may run on, in ascending order (its affinity mask; `taskset` and cgroup
/// cpusets narrow it). Falls back to 0..available_parallelism if the mask cannot be read.
pub fn allowed_cpus() -> Vec<usize> {
    // SAFETY: cpu_set_t is plain data; sched_getaffinity writes at most size_of::<cpu_set_t>() bytes.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    let cpus: Vec<usize> = if rc == 0 {
        (0..libc::CPU_SETSIZE as usize).filter(|&c| unsafe { libc::CPU_ISSET(c, &set) }).collect()
    } else {
        Vec::new()
    };
    if cpus.is_empty() { (0..std::thread::available_parallelism().map_or(1, |n| n.get())).collect() } else { cpus }
}

/// What a shard reports once it runs.
pub struct Started {
    pub shard: usize,
    pub io_uring: bool,
}

/// What every shard shares.
#[derive(Clone)]
pub struct Shared {
    pub store: Arc<engine::Store>,
    pub config: Arc<S3Config>,
    pub stopper: Arc<Stopper>,
    pub metrics: Arc<crate::metrics::Metrics>,
}

/// Runs one shard to completion on the current thread.
pub fn run_shard(
    shard: usize,
    core: Option<usize>,
    listener: std::net::TcpListener,
    shared: Shared,
    started: std::sync::mpsc::Sender<Result<Started, String>>,
) {
    let Shared { store, config, stopper, metrics } = shared;
    let mut builder = compio::runtime::RuntimeBuilder::new();
    let mut proactor = compio::driver::ProactorBuilder::new();
    proactor.capacity(4096);
    builder.with_proactor(proactor);
    if let Some(c) = core {
        builder.thread_affinity(std::collections::HashSet::from([c]));
    }
    let rt = match builder.build() {
        Ok(rt) => rt,
        Err(e) => {
            let _ = started.send(Err(format!("shard {shard}: cannot start a runtime: {e}")));
            return;
        }
    };
    let io_uring = rt.driver_type().is_iouring();
    crate::alloc_count::count_this_thread();
    rt.block_on(async move {
        let listener = match TcpListener::from_std(listener) {
            Ok(l) => l,
            Err(e) => {
                let _ = started.send(Err(format!("shard {shard}: cannot use the listener: {e}")));
                return;
            }
        };
        let _ = started.send(Ok(Started { shard, io_uring }));
        let splice = io_uring && config.splice_min > 0;
        let ctx = Rc::new(Ctx::new(store, config, shard as u16, splice, metrics));
        let active = Rc::new(Cell::new(0usize));
        let deadlines = Deadlines::new();
        compio::runtime::spawn(deadline::run_ticks(deadlines.clone(), trim_when_idle(ctx.clone()))).detach();
        accept_until_stopped(&listener, (&ctx, &deadlines), &stopper, &active).await;
        drop(listener);
        // Let in-flight requests finish, within a bound.
        let deadline = Instant::now() + limits::SHUTDOWN_DRAIN_TIMEOUT;
        while active.get() > 0 && Instant::now() < deadline {
            compio::time::sleep(Duration::from_millis(20)).await;
        }
        if active.get() > 0 {
            tracing::warn!(shard, connections = active.get(), "shutdown: closing connections still busy");
        }
    });
}

/// Once the shard has served nothing for a whole period, the buffers a burst of large bodies
/// left in its pool go back to the system, and so do the free pages many connections' small
/// buffers left in the allocator (D27). Called on every tick of the shard (D42).
fn trim_when_idle(ctx: Rc<Ctx>) -> impl FnMut(Instant) {
    let mut seen = (Instant::now(), ctx.requests_served());
    move |now| {
        if now.duration_since(seen.0) < limits::BUFFER_POOL_TRIM_INTERVAL {
            return;
        }
        let served = ctx.requests_served();
        if served == seen.1 {
            iobuf::trim_pool(limits::BUFFER_POOL_IDLE_KEEP);
            #[cfg(all(target_os = "linux", target_env = "gnu"))]
            // SAFETY: malloc_trim only returns free memory of the allocator's arenas.
            unsafe {
                libc::malloc_trim(0);
            }
        }
        seen = (now, served);
    }
}

/// Accepts connections, each served by its own task, until the stopper fires; connections past
/// the shard's limit get a 503.
async fn accept_until_stopped(
    listener: &TcpListener,
    (ctx, deadlines): (&Rc<Ctx>, &Rc<Deadlines>),
    stopper: &Arc<Stopper>,
    active: &Rc<Cell<usize>>,
) {
    loop {
        let accepted = {
            let accept = std::pin::pin!(listener.accept());
            let stop = std::pin::pin!(stopper.wait());
            match select(accept, stop).await {
                Either::Left((r, _)) => r,
                Either::Right(_) => return,
            }
        };
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(shard = ctx.shard(), error = %e, "accept failed");
                compio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        if active.get() >= ctx.config.max_connections {
            // Over TLS, a 503 would first cost a handshake: the connection just closes.
            if ctx.config.tls.is_none() {
                compio::runtime::spawn(refuse(stream)).detach();
            }
            continue;
        }
        let _ = stream.set_nodelay(true);
        active.set(active.get() + 1);
        let (ctx, active, stopper, deadlines) = (ctx.clone(), active.clone(), stopper.clone(), deadlines.clone());
        compio::runtime::spawn(async move {
            let m = ctx.shard_metrics();
            m.connections.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            connection(&ctx, (stream, &deadlines), &stopper, peer.ip()).await;
            ctx.shard_metrics().connections.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            active.set(active.get() - 1);
        })
        .detach();
    }
}

/// Answers 503 to a connection beyond the shard's limit.
async fn refuse(stream: TcpStream) {
    let mut conn = Conn::new(stream);
    let err = S3Error::new(S3ErrorCode::ServiceUnavailable, "Too many connections; retry later.");
    let _ = send(&mut conn, err.response("/", "0"), false, SendPolicy::default()).await;
    conn.shutdown().await;
}

/// Serves one connection: requests in order (pipelined ones included) until it closes.
async fn connection(ctx: &Ctx, (stream, deadlines): (TcpStream, &Rc<Deadlines>), stopper: &Stopper, peer: IpAddr) {
    let loopback = peer.is_loopback();
    let mut conn = Conn::with_body_grace(stream, ctx.config.body_grace);
    conn.set_peer(peer);
    conn.set_deadlines(deadlines);
    conn.set_timeouts(ctx.config.timeouts.head, ctx.config.timeouts.stall);
    if let Some(tls) = &ctx.config.tls
        && conn.start_tls(tls).await.is_err()
    {
        return;
    }
    // One wait for the stop for the connection's life (not one per request).
    let mut stop = std::pin::pin!(stopper.wait());
    loop {
        let allocated = crate::alloc_count::allocations();
        let next = {
            let head = std::pin::pin!(conn.next_head(ctx.config.timeouts.idle));
            match select(head, stop.as_mut()).await {
                Either::Left((r, _)) => r,
                // Idle between requests while shutting down: close.
                Either::Right(_) => break,
            }
        };
        let req = match next {
            Ok(NextHead::Request(r)) => r,
            Ok(NextHead::Closed) => break,
            Err(ReadError::Head(e)) => {
                let (status, err) = head_error(e);
                let mut resp = err.response("/", "0");
                resp.status = status;
                let _ = send(&mut conn, resp, false, SendPolicy::default()).await;
                break;
            }
            Err(e) => {
                tracing::debug!(error = ?e, "connection closed while waiting for a request");
                break;
            }
        };
        let started = Instant::now();
        let metrics = ctx.shard_metrics();
        metrics.in_flight.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (resp, op) = endpoints::serve(ctx, &mut conn, &req, loopback).await;
        let mut keep = req.keep_alive && !stopper.is_stopping() && !conn.is_broken();
        if keep && !conn.body_done() {
            // The handler answered without reading the whole body. If the client still waits for
            // 100-continue it may never send it: close. Otherwise read a small, known remainder
            // (a larger one closes the connection: never read a body whose answer is decided).
            keep = !conn.continue_pending() && conn.drain_body(limits::DRAIN_BYTES_MAX).await;
        }
        if !keep {
            conn.abandon_body();
        }
        let status = resp.status;
        let bytes = resp.content_length();
        let request_id = resp.headers.iter().find(|(k, _)| k == "x-amz-request-id").map(|(_, v)| v.clone());
        let wrote = write_response(&mut conn, resp, keep, ctx).await;
        let elapsed = started.elapsed();
        let sent = if req.method == crate::http::Method::Head || wrote.is_err() { 0 } else { bytes };
        metrics.record(op, status, req.content_length().unwrap_or(0), sent, elapsed);
        metrics.in_flight.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        if endpoints::is_operator(op) {
            crate::alloc_count::exclude(crate::alloc_count::allocations() - allocated);
        }
        metrics.allocations.store(crate::alloc_count::s3_allocations(), std::sync::atomic::Ordering::Relaxed);
        tracing::debug!(
            request_id = request_id.as_deref().unwrap_or_default(),
            op,
            status,
            bytes_out = sent,
            method = req.method.as_str(),
            path = %req.path,
            query = %LoggedQuery(&req.query),
            elapsed_us = elapsed.as_micros() as u64,
            "request"
        );
        conn.recycle(req);
        if wrote.is_err() || !keep || conn.is_broken() {
            break;
        }
    }
    conn.shutdown().await;
}

/// A query string as the request log shows it: signatures of presigned URLs (bearer tokens until
/// they expire) and session tokens are masked.
struct LoggedQuery<'a>(&'a str);

impl std::fmt::Display for LoggedQuery<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, part) in self.0.split('&').enumerate() {
            if i > 0 {
                f.write_str("&")?;
            }
            match part.split_once('=') {
                Some((k, _))
                    if ["Signature", "X-Amz-Signature", "X-Amz-Security-Token"]
                        .iter()
                        .any(|s| k.eq_ignore_ascii_case(s)) =>
                {
                    write!(f, "{k}=***")?
                }
                _ => f.write_str(part)?,
            }
        }
        Ok(())
    }
}

fn head_error(e: HeadError) -> (u16, S3Error) {
    match e {
        HeadError::TooLarge => (
            431,
            S3Error::new(
                S3ErrorCode::RequestHeaderSectionTooLarge,
                "Your request header section exceeds the maximum allowed size.",
            ),
        ),
        HeadError::UriTooLong => (414, S3Error::new(S3ErrorCode::UriTooLong, "The request URI is too long.")),
        HeadError::UnsupportedEncoding => (
            501,
            S3Error::new(
                S3ErrorCode::NotImplemented,
                "A header you provided implies functionality that is not implemented (Transfer-Encoding).",
            ),
        ),
        HeadError::Malformed(why) => {
            (400, S3Error::new(S3ErrorCode::InvalidRequest, format!("Malformed HTTP request: {why}.")))
        }
        HeadError::Partial => (400, S3Error::new(S3ErrorCode::InvalidRequest, "Incomplete HTTP request.")),
    }
}

/// Sends a response; a body that fails to read before its head went out is answered 500.
async fn write_response(conn: &mut Conn, resp: Response, keep: bool, ctx: &Ctx) -> Result<(), SendError> {
    let policy = SendPolicy { splice: ctx.splice, splice_min: ctx.config.splice_min };
    match send(conn, resp, keep, policy).await {
        Err(SendError::Read { head_sent, error, origin }) => {
            tracing::error!(error = %error, "object read failed while sending");
            ctx.store.read_failed(origin, error);
            if !head_sent {
                // Nothing sent yet: an honest 500, then close. (With the head out, the only honest
                // signal left is the connection cut before the announced length.)
                let err = S3Error::code(S3ErrorCode::InternalError);
                let _ = send(conn, err.response("/", "0"), false, SendPolicy::default()).await;
            }
            Err(SendError::Closed)
        }
        Err(SendError::Stream { head_sent, error }) => {
            tracing::warn!(error = %error, "a streamed body failed while sending");
            if !head_sent {
                let err = S3Error::code(S3ErrorCode::BadGateway);
                let _ = send(conn, err.response("/", "0"), false, SendPolicy::default()).await;
            }
            Err(SendError::Closed)
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::{LoggedQuery, allowed_cpus};

    #[test]
    fn logged_queries_mask_signatures() {
        let q = "list-type=2&X-Amz-Credential=AK%2F1&X-Amz-Signature=abc&x-id=Get&Signature=def";
        assert_eq!(
            LoggedQuery(q).to_string(),
            "list-type=2&X-Amz-Credential=AK%2F1&X-Amz-Signature=***&x-id=Get&Signature=***"
        );
        assert_eq!(LoggedQuery("").to_string(), "");
    }

    #[test]
    fn allowed_cpus_follow_the_affinity_mask() {
        let all = allowed_cpus();
        assert!(!all.is_empty());
        assert!(all.windows(2).all(|w| w[0] < w[1]));
        let last = *all.last().unwrap();
        // A thread narrowed to one CPU (as `taskset -c N` narrows a process) sees only that CPU.
        let seen = std::thread::spawn(move || {
            // SAFETY: plain data; the mask names one CPU the process may use.
            let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
            unsafe { libc::CPU_SET(last, &mut set) };
            let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
            assert_eq!(rc, 0);
            allowed_cpus()
        })
        .join()
        .unwrap();
        assert_eq!(seen, vec![last]);
    }
}
