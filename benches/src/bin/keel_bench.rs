//! keel-bench: an S3 load generator that signs like a real client and can point at any S3
//! endpoint (keel, MinIO, AIStore, S3 itself).
//!
//! Workloads: put, get, mixed (gets and puts over one key set), range (random ranges of a given
//! size), multipart (whole multipart uploads), list (ListObjectsV2 pages). Bounded by a duration
//! and/or an operation count; prints a live progress line each second, then a table of
//! throughput and latency percentiles (HDR histograms) per operation, and can write the results
//! as JSON and a picture as SVG or PNG (`--compare` overlays earlier runs' JSONs in one).
//!
//! ```text
//! keel-bench --endpoint http://127.0.0.1:8080 --access-key AK --secret-key SK \
//!     --workload get --size 4KiB --objects 1000 --concurrency 32 --duration 10s --json out.json --svg out.svg
//! ```

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::{Parser, ValueEnum};
use compio::BufResult;
use compio::buf::{IntoInner, IoBuf};
use compio::io::{AsyncRead, AsyncWriteExt};
use compio::net::TcpStream;
use hdrhistogram::Histogram;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Workload {
    Put,
    Get,
    Mixed,
    Range,
    Multipart,
    List,
}

#[derive(Parser, Debug, Clone)]
#[command(name = "keel-bench", about = "An S3 load generator (SigV4 or anonymous)")]
struct Args {
    /// S3 endpoint, e.g. http://127.0.0.1:8080 or http://host:8080/s3
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    endpoint: String,
    #[arg(long)]
    access_key: Option<String>,
    #[arg(long)]
    secret_key: Option<String>,
    /// Send unsigned requests.
    #[arg(long)]
    anonymous: bool,
    #[arg(long, default_value = "us-east-1")]
    region: String,
    #[arg(long, default_value = "keel-bench")]
    bucket: String,
    #[arg(long, value_enum, default_value = "get")]
    workload: Workload,
    /// Object size(s), comma-separated (K/M/G/KiB/MiB/GiB); several sizes are used in turn.
    #[arg(long, default_value = "4KiB")]
    size: String,
    /// Distinct objects (keys) the workload uses.
    #[arg(long, default_value_t = 1000)]
    objects: u64,
    /// Requests in flight.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Client threads (each with its own io_uring runtime).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Run time, e.g. 10s or 2m.
    #[arg(long, default_value = "10s")]
    duration: String,
    /// Stop after this many operations (whichever comes first with --duration).
    #[arg(long)]
    ops: Option<u64>,
    /// Range workload: bytes per ranged GET.
    #[arg(long, default_value = "1MiB")]
    range_size: String,
    /// Mixed workload: fraction of GETs.
    #[arg(long, default_value_t = 0.9)]
    get_ratio: f64,
    /// Multipart workload: part size.
    #[arg(long, default_value = "8MiB")]
    part_size: String,
    /// Do not create the bucket and objects first (they exist already).
    #[arg(long)]
    no_prepare: bool,
    /// Write results as JSON here.
    #[arg(long)]
    json: Option<String>,
    /// Draw the picture (operations/s and MB/s over time per operation, latency by
    /// percentile) as SVG here.
    #[arg(long)]
    svg: Option<String>,
    /// The same picture as PNG.
    #[arg(long)]
    png: Option<String>,
    /// Run no load: overlay these result JSONs (from --json), comma-separated, in one picture
    /// (--svg/--png).
    #[arg(long, value_name = "A.json,B.json")]
    compare: Option<String>,
    /// Names of the --compare runs in the legend, comma-separated [default: the files' names].
    #[arg(long)]
    labels: Option<String>,
}

fn parse_bytes(s: &str) -> u64 {
    keel::config::parse_bytes(s).unwrap_or_else(|e| die(&e))
}

fn parse_duration(s: &str) -> Duration {
    let t = s.trim();
    let (num, mult) = if let Some(n) = t.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60.0)
    } else {
        (t, 1.0)
    };
    let v: f64 = num.parse().unwrap_or_else(|_| die(&format!("bad duration {s:?}")));
    Duration::from_secs_f64(v * mult)
}

fn die(msg: &str) -> ! {
    eprintln!("keel-bench: {msg}");
    std::process::exit(2);
}

/// Where requests go.
#[derive(Clone, Debug)]
struct Target {
    addr: String,
    host: String,
    prefix: String,
}

fn parse_endpoint(e: &str) -> Target {
    let rest = e.strip_prefix("http://").unwrap_or_else(|| die("only http:// endpoints are supported"));
    let (host, prefix) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
        None => (rest, ""),
    };
    let addr = if host.contains(':') { host.to_owned() } else { format!("{host}:80") };
    Target { addr, host: host.to_owned(), prefix: prefix.to_owned() }
}

/// A small, fast generator (xorshift*); each task seeds its own.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
}

/// Signs requests with SigV4 (UNSIGNED-PAYLOAD), like the SDKs do over TLS.
struct Signer {
    ak: String,
    sk: String,
    region: String,
}

fn amz_date() -> String {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let iso = keel::time::iso8601_ms(secs * 1000);
    let b: String = iso[..19].chars().filter(|c| *c != '-' && *c != ':').collect();
    format!("{b}Z")
}

impl Signer {
    fn headers(&self, method: &str, path: &str, query: &str, host: &str) -> Vec<(String, String)> {
        let date = amz_date();
        let hs = [
            ("host", host.to_owned()),
            ("x-amz-content-sha256", "UNSIGNED-PAYLOAD".into()),
            ("x-amz-date", date.clone()),
        ];
        let signed = "host;x-amz-content-sha256;x-amz-date";
        let creq = keel::s3::auth::canonical_request(
            method,
            path,
            query,
            signed,
            |n| hs.iter().find(|(k, _)| *k == n).map(|(_, v)| v.clone()),
            "UNSIGNED-PAYLOAD",
            false,
        )
        .expect("canonical request");
        let scope = format!("{}/{}/s3/aws4_request", &date[..8], self.region);
        let sts = keel::s3::auth::string_to_sign(&date, &scope, &creq);
        let key = keel::s3::auth::signing_key(&self.sk, &date[..8], &self.region, "s3");
        let sig = hex_encode(&keel::s3::auth::hmac(&key, sts.as_bytes()));
        vec![
            ("x-amz-content-sha256".into(), "UNSIGNED-PAYLOAD".into()),
            ("x-amz-date".into(), date),
            (
                "Authorization".into(),
                format!("AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed}, Signature={sig}", self.ak),
            ),
        ]
    }
}

fn hex_encode(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// One keep-alive HTTP/1.1 connection.
struct Conn {
    stream: TcpStream,
    rbuf: Vec<u8>,
    sink: Option<engine::IoBuffer>,
}

struct Reply {
    status: u16,
    body_bytes: u64,
    body: Option<Vec<u8>>,
    etag: Option<String>,
}

impl Conn {
    async fn connect(addr: &str) -> std::io::Result<Conn> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Conn { stream, rbuf: Vec::with_capacity(16 * 1024), sink: Some(engine::IoBuffer::with_capacity(1 << 20)) })
    }

    /// Sends a request; `keep_body` keeps the response body (XML answers) instead of discarding it.
    async fn request(
        &mut self,
        head: String,
        body: Option<(Arc<Vec<u8>>, usize)>,
        keep_body: bool,
    ) -> std::io::Result<Reply> {
        let head = head.into_bytes();
        match body {
            Some((data, len)) if len > 0 => {
                let BufResult(r, _) = self.stream.write_vectored_all((head, (data.slice(..len),))).await;
                r?;
            }
            _ => {
                let BufResult(r, _) = self.stream.write_all(head).await;
                r?;
            }
        }
        // Head.
        let (status, len, etag, used) = loop {
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut resp = httparse::Response::new(&mut headers);
            if let Ok(httparse::Status::Complete(n)) = resp.parse(&self.rbuf) {
                let status = resp.code.unwrap_or(0);
                let mut len = 0u64;
                let mut etag = None;
                for h in resp.headers.iter() {
                    if h.name.eq_ignore_ascii_case("content-length") {
                        len = std::str::from_utf8(h.value).ok().and_then(|v| v.trim().parse().ok()).unwrap_or(0);
                    } else if h.name.eq_ignore_ascii_case("etag") {
                        etag = std::str::from_utf8(h.value).ok().map(str::to_owned);
                    }
                }
                if status == 100 {
                    self.rbuf.drain(..n);
                    continue;
                }
                break (status, len, etag, n);
            }
            self.fill().await?;
        };
        self.rbuf.drain(..used);
        let mut left = len;
        let mut kept = if keep_body { Some(Vec::with_capacity(len as usize)) } else { None };
        let from_buf = (self.rbuf.len() as u64).min(left) as usize;
        if let Some(k) = &mut kept {
            k.extend_from_slice(&self.rbuf[..from_buf]);
        }
        self.rbuf.drain(..from_buf);
        left -= from_buf as u64;
        while left > 0 {
            let mut sink = self.sink.take().expect("sink buffer");
            sink.clear();
            let want = (left as usize).min(sink.capacity());
            let BufResult(r, s) = self.stream.read(sink.slice(..want)).await;
            let sink = s.into_inner();
            let n = r?;
            if n == 0 {
                self.sink = Some(sink);
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            if let Some(k) = &mut kept {
                k.extend_from_slice(&sink.as_slice()[..n]);
            }
            self.sink = Some(sink);
            left -= n as u64;
        }
        Ok(Reply { status, body_bytes: len, body: kept, etag })
    }

    async fn fill(&mut self) -> std::io::Result<()> {
        if self.rbuf.capacity() - self.rbuf.len() < 4096 {
            self.rbuf.reserve(16 * 1024);
        }
        let buf = std::mem::take(&mut self.rbuf);
        let len = buf.len();
        let BufResult(r, s) = self.stream.read(buf.slice(len..)).await;
        self.rbuf = s.into_inner();
        if r? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        Ok(())
    }
}

/// Builds a request head.
fn head(ctx: &Ctx, method: &str, path: &str, query: &str, len: Option<usize>) -> String {
    let full = format!("{}{path}", ctx.target.prefix);
    let mut h = format!(
        "{method} {full}{}{query} HTTP/1.1\r\nHost: {}\r\n",
        if query.is_empty() { "" } else { "?" },
        ctx.target.host
    );
    if let Some(s) = &ctx.signer {
        for (k, v) in s.headers(method, &full, query, &ctx.target.host) {
            h.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    if let Some(n) = len {
        h.push_str(&format!("Content-Length: {n}\r\n"));
    }
    h.push_str("\r\n");
    h
}

struct Ctx {
    args: Args,
    target: Target,
    signer: Option<Signer>,
    sizes: Vec<u64>,
    data: Arc<Vec<u8>>,
    stop: Arc<AtomicBool>,
    ops_budget: Option<Arc<AtomicU64>>,
    live: Arc<Live>,
}

/// The operations keel-bench counts, in the order the timeline lists them (the last one takes
/// any other name).
const OPS: [&str; 8] = ["GET", "PUT", "GET-range", "LIST", "MULTIPART", "CONNECT", "IO", "OTHER"];

/// Counters the progress line and timeline read each second, per operation of `OPS`.
#[derive(Default)]
struct Live {
    ops: [AtomicU64; OPS.len()],
    bytes: [AtomicU64; OPS.len()],
    errors: [AtomicU64; OPS.len()],
}

fn slot(op: &str) -> usize {
    OPS.iter().position(|o| *o == op).unwrap_or(OPS.len() - 1)
}

impl Live {
    /// (ops, bytes, errors) so far, per operation.
    fn read(&self) -> [(u64, u64, u64); OPS.len()] {
        std::array::from_fn(|i| {
            (
                self.ops[i].load(Ordering::Relaxed),
                self.bytes[i].load(Ordering::Relaxed),
                self.errors[i].load(Ordering::Relaxed),
            )
        })
    }
}

/// One progress interval: when it ended (seconds since the start), its length, and per
/// operation the (ops, bytes, errors) counted in it.
struct Sample {
    t: f64,
    dt: f64,
    per_op: [(u64, u64, u64); OPS.len()],
}

/// Per-operation results of one thread.
#[derive(Default)]
struct OpStats {
    count: u64,
    errors: u64,
    bytes: u64,
    hist: Option<Histogram<u64>>,
}

type Stats = BTreeMap<&'static str, OpStats>;

fn record(stats: &RefCell<Stats>, live: &Live, op: &'static str, ok: bool, bytes: u64, micros: u64) {
    let mut s = stats.borrow_mut();
    let e = s.entry(op).or_default();
    let h = e.hist.get_or_insert_with(|| Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("histogram"));
    if ok {
        e.count += 1;
        e.bytes += bytes;
        let _ = h.record(micros.max(1));
        live.ops[slot(op)].fetch_add(1, Ordering::Relaxed);
        live.bytes[slot(op)].fetch_add(bytes, Ordering::Relaxed);
    } else {
        e.errors += 1;
        live.errors[slot(op)].fetch_add(1, Ordering::Relaxed);
    }
}

fn key(i: u64) -> String {
    format!("obj-{i:08}")
}

/// Runs one operation of the workload; returns (op name, ok, payload bytes).
async fn one_op(ctx: &Ctx, conn: &mut Conn, rng: &mut Rng, seq: u64) -> std::io::Result<(&'static str, bool, u64)> {
    let b = &ctx.args.bucket;
    let size = ctx.sizes[(seq % ctx.sizes.len() as u64) as usize] as usize;
    let k = key(rng.below(ctx.args.objects));
    let workload = match ctx.args.workload {
        Workload::Mixed => {
            if (rng.below(1_000_000) as f64) < ctx.args.get_ratio * 1_000_000.0 {
                Workload::Get
            } else {
                Workload::Put
            }
        }
        w => w,
    };
    Ok(match workload {
        Workload::Put => {
            let h = head(ctx, "PUT", &format!("/{b}/{k}"), "", Some(size));
            let r = conn.request(h, Some((ctx.data.clone(), size)), false).await?;
            ("PUT", r.status == 200, size as u64)
        }
        Workload::Get => {
            let r = conn.request(head(ctx, "GET", &format!("/{b}/{k}"), "", None), None, false).await?;
            ("GET", r.status == 200, r.body_bytes)
        }
        Workload::Range => {
            let obj = ctx.sizes[0];
            let len = parse_bytes(&ctx.args.range_size).min(obj).max(1);
            let start = rng.below(obj - len + 1);
            let mut h = head(ctx, "GET", &format!("/{b}/{k}"), "", None);
            h.insert_str(h.len() - 2, &format!("Range: bytes={}-{}\r\n", start, start + len - 1));
            let r = conn.request(h, None, false).await?;
            ("GET-range", r.status == 206, r.body_bytes)
        }
        Workload::List => {
            let q = format!("list-type=2&max-keys=1000&start-after={}", key(rng.below(ctx.args.objects)));
            let r = conn.request(head(ctx, "GET", &format!("/{b}"), &q, None), None, false).await?;
            ("LIST", r.status == 200, r.body_bytes)
        }
        Workload::Multipart => {
            let part = parse_bytes(&ctx.args.part_size).max(1) as usize;
            let path = format!("/{b}/mp-{k}");
            let r = conn.request(head(ctx, "POST", &path, "uploads", Some(0)), None, true).await?;
            let body = String::from_utf8_lossy(r.body.as_deref().unwrap_or(b"")).into_owned();
            let Some(id) =
                body.split("<UploadId>").nth(1).and_then(|s| s.split("</UploadId>").next()).map(str::to_owned)
            else {
                return Ok(("MULTIPART", false, 0));
            };
            let mut parts = String::new();
            let mut n = 1;
            let mut off = 0usize;
            while off < size || n == 1 {
                let len = part.min(size - off).min(ctx.data.len());
                let q = format!("partNumber={n}&uploadId={id}");
                let r =
                    conn.request(head(ctx, "PUT", &path, &q, Some(len)), Some((ctx.data.clone(), len)), false).await?;
                let Some(etag) = r.etag.filter(|_| r.status == 200) else { return Ok(("MULTIPART", false, 0)) };
                parts.push_str(&format!("<Part><PartNumber>{n}</PartNumber><ETag>{etag}</ETag></Part>"));
                off += len;
                n += 1;
                if len == 0 {
                    break;
                }
            }
            let doc = format!("<CompleteMultipartUpload>{parts}</CompleteMultipartUpload>").into_bytes();
            let len = doc.len();
            let r = conn
                .request(
                    head(ctx, "POST", &path, &format!("uploadId={id}"), Some(len)),
                    Some((Arc::new(doc), len)),
                    false,
                )
                .await?;
            ("MULTIPART", r.status == 200, size as u64)
        }
        Workload::Mixed => unreachable!("resolved above"),
    })
}

/// One connection's loop until the deadline or the op budget runs out.
async fn worker(ctx: Rc<Ctx>, stats: Rc<RefCell<Stats>>, seed: u64, deadline: Instant) {
    let mut rng = Rng(seed | 1);
    let mut conn: Option<Conn> = None;
    let mut seq = seed;
    while !ctx.stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        if let Some(b) = &ctx.ops_budget
            && b.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1)).is_err()
        {
            break;
        }
        if conn.is_none() {
            match Conn::connect(&ctx.target.addr).await {
                Ok(c) => conn = Some(c),
                Err(_) => {
                    record(&stats, &ctx.live, "CONNECT", false, 0, 0);
                    compio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            }
        }
        let c = conn.as_mut().expect("connected");
        let t = Instant::now();
        seq += 1;
        match one_op(&ctx, c, &mut rng, seq).await {
            Ok((op, ok, bytes)) => record(&stats, &ctx.live, op, ok, bytes, t.elapsed().as_micros() as u64),
            Err(_) => {
                record(&stats, &ctx.live, "IO", false, 0, 0);
                conn = None;
            }
        }
    }
}

/// Creates the bucket and the objects GET-type workloads read.
fn prepare(args: &Args, ctx_args: (Target, Option<(String, String)>)) {
    let mut p = args.clone();
    let needs_objects = matches!(args.workload, Workload::Get | Workload::Mixed | Workload::Range | Workload::List);
    eprintln!(
        "preparing bucket {}{}",
        args.bucket,
        if needs_objects { format!(" and {} objects", args.objects) } else { String::new() }
    );
    let ctx = make_ctx(&p, ctx_args.clone(), Arc::new(AtomicBool::new(false)), None);
    let rt = compio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let mut c = Conn::connect(&ctx.target.addr).await.unwrap_or_else(|e| die(&format!("cannot connect: {e}")));
        let r = c.request(head(&ctx, "PUT", &format!("/{}", args.bucket), "", Some(0)), None, true).await;
        match r {
            Ok(r) if r.status == 200 || r.status == 409 => {}
            Ok(r) => die(&format!(
                "creating the bucket answered {}: {}",
                r.status,
                String::from_utf8_lossy(r.body.as_deref().unwrap_or(b""))
            )),
            Err(e) => die(&format!("creating the bucket: {e}")),
        }
    });
    if !needs_objects {
        return;
    }
    p.workload = Workload::Put;
    let ctx = Rc::new(make_ctx(&p, ctx_args, Arc::new(AtomicBool::new(false)), None));
    rt.block_on(async {
        let next = Rc::new(RefCell::new(0u64));
        let mut tasks = Vec::new();
        for _ in 0..args.concurrency.clamp(1, 64) {
            let (ctx, next) = (ctx.clone(), next.clone());
            tasks.push(compio::runtime::spawn(async move {
                let mut c =
                    Conn::connect(&ctx.target.addr).await.unwrap_or_else(|e| die(&format!("cannot connect: {e}")));
                loop {
                    let i = {
                        let mut n = next.borrow_mut();
                        let i = *n;
                        *n += 1;
                        i
                    };
                    if i >= ctx.args.objects {
                        break;
                    }
                    let size = ctx.sizes[(i % ctx.sizes.len() as u64) as usize] as usize;
                    let h = head(&ctx, "PUT", &format!("/{}/{}", ctx.args.bucket, key(i)), "", Some(size));
                    match c.request(h, Some((ctx.data.clone(), size)), false).await {
                        Ok(r) if r.status == 200 => {}
                        other => die(&format!("preparing {}: {:?}", key(i), other.map(|r| r.status))),
                    }
                }
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
    });
}

fn make_ctx(
    args: &Args,
    (target, creds): (Target, Option<(String, String)>),
    stop: Arc<AtomicBool>,
    live: Option<Arc<Live>>,
) -> Ctx {
    let sizes: Vec<u64> = args.size.split(',').map(parse_bytes).collect();
    let max = sizes.iter().copied().max().unwrap_or(0).max(parse_bytes(&args.part_size));
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let data: Vec<u8> = (0..max).map(|_| rng.next() as u8).collect();
    Ctx {
        args: args.clone(),
        target,
        signer: creds.map(|(ak, sk)| Signer { ak, sk, region: args.region.clone() }),
        sizes,
        data: Arc::new(data),
        stop,
        ops_budget: args.ops.map(|n| Arc::new(AtomicU64::new(n))),
        live: live.unwrap_or_default(),
    }
}

fn main() {
    let args = Args::parse();
    if let Some(files) = &args.compare {
        compare(&args, files);
        return;
    }
    let target = parse_endpoint(&args.endpoint);
    let creds = if args.anonymous {
        None
    } else {
        match (
            args.access_key.clone().or(std::env::var("AWS_ACCESS_KEY_ID").ok()),
            args.secret_key.clone().or(std::env::var("AWS_SECRET_ACCESS_KEY").ok()),
        ) {
            (Some(a), Some(s)) => Some((a, s)),
            _ => die("give --access-key and --secret-key (or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY), or --anonymous"),
        }
    };
    if !args.no_prepare {
        prepare(&args, (target.clone(), creds.clone()));
    }
    let duration = parse_duration(&args.duration);
    let stop = Arc::new(AtomicBool::new(false));
    let live = Arc::new(Live::default());
    let budget = args.ops.map(|n| Arc::new(AtomicU64::new(n)));
    let started = Instant::now();
    let deadline = started + duration;
    let (tx, rx) = std::sync::mpsc::channel::<Stats>();
    let threads = args.threads.max(1);
    let mut handles = Vec::new();
    for t in 0..threads {
        let (args, target, creds, stop, live, tx, budget) =
            (args.clone(), target.clone(), creds.clone(), stop.clone(), live.clone(), tx.clone(), budget.clone());
        handles.push(std::thread::spawn(move || {
            let mut ctx = make_ctx(&args, (target, creds), stop, Some(live));
            ctx.ops_budget = budget;
            let ctx = Rc::new(ctx);
            let rt = compio::runtime::Runtime::new().expect("runtime");
            let stats = Rc::new(RefCell::new(Stats::new()));
            rt.block_on(async {
                let per = args.concurrency / threads + usize::from(t < args.concurrency % threads);
                let mut tasks = Vec::new();
                for i in 0..per {
                    let seed = ((t as u64) << 32) ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xDEAD_BEEF;
                    tasks.push(compio::runtime::spawn(worker(ctx.clone(), stats.clone(), seed, deadline)));
                }
                for task in tasks {
                    let _ = task.await;
                }
            });
            let _ = tx.send(stats.take());
        }));
    }
    drop(tx);
    // Progress each second, and the timeline for the JSON and the plot.
    let timeline = progress(&handles, &live, started);
    let elapsed = started.elapsed().as_secs_f64();
    let mut merged: Stats = Stats::new();
    for s in rx {
        for (op, st) in s {
            let m = merged.entry(op).or_default();
            m.count += st.count;
            m.errors += st.errors;
            m.bytes += st.bytes;
            if let Some(h) = st.hist {
                match &mut m.hist {
                    Some(mh) => mh.add(&h).expect("compatible histograms"),
                    None => m.hist = Some(h),
                }
            }
        }
    }
    report(&args, &merged, elapsed, &timeline);
}

/// Prints a progress line each second until the load threads end (over the same line on a
/// terminal, one line per interval otherwise: logs and pipes keep every one); returns the
/// intervals.
fn progress(handles: &[std::thread::JoinHandle<()>], live: &Live, started: Instant) -> Vec<Sample> {
    use std::io::IsTerminal;
    let terminal = std::io::stderr().is_terminal();
    let mut timeline = Vec::new();
    let mut last = live.read();
    let mut tick = started;
    while handles.iter().any(|h| !h.is_finished()) {
        std::thread::sleep(Duration::from_millis(100));
        if tick.elapsed() < Duration::from_secs(1) && handles.iter().any(|h| !h.is_finished()) {
            continue;
        }
        let dt = tick.elapsed().as_secs_f64();
        tick = Instant::now();
        let now = live.read();
        let per_op: [(u64, u64, u64); OPS.len()] =
            std::array::from_fn(|i| (now[i].0 - last[i].0, now[i].1 - last[i].1, now[i].2 - last[i].2));
        last = now;
        let t = started.elapsed().as_secs_f64();
        let (ops, bytes) = per_op.iter().fold((0, 0), |(o, b), x| (o + x.0, b + x.1));
        let errors: u64 = now.iter().map(|x| x.2).sum();
        let line = format!(
            "[{t:6.1}s] {:>10.0} ops/s {:>10.1} MB/s  errors {errors:<6}",
            ops as f64 / dt,
            bytes as f64 / dt / 1e6
        );
        if terminal {
            eprint!("\r{line}")
        } else {
            eprintln!("{line}")
        }
        timeline.push(Sample { t, dt, per_op });
    }
    if terminal {
        eprintln!();
    }
    timeline
}

/// The JSON's per-operation timeline: rates per interval, for operations that ran.
fn timeline_by_op(timeline: &[Sample]) -> serde_json::Map<String, serde_json::Value> {
    let mut out = serde_json::Map::new();
    for (i, op) in OPS.iter().enumerate() {
        if timeline.iter().all(|s| s.per_op[i] == (0, 0, 0)) {
            continue;
        }
        let samples = timeline
            .iter()
            .map(|s| {
                let (o, b, e) = s.per_op[i];
                serde_json::json!({"t": s.t, "ops_per_sec": o as f64 / s.dt, "mb_per_sec": b as f64 / s.dt / 1e6, "errors": e})
            })
            .collect();
        out.insert(op.to_string(), serde_json::Value::Array(samples));
    }
    out
}

/// The JSON's latency curves: milliseconds at percentiles from p0 to p99.99, evenly in nines.
fn latency_curves(stats: &Stats) -> serde_json::Map<String, serde_json::Value> {
    let mut out = serde_json::Map::new();
    for (op, st) in stats {
        let Some(h) = &st.hist else { continue };
        if h.is_empty() {
            continue;
        }
        let pts = (0..=100)
            .map(|j| {
                let nines = f64::from(j) / 100.0 * keel_benches::plot::NINES_MAX;
                let q = keel_benches::plot::quantile_of(nines);
                serde_json::json!({"nines": nines, "q": q, "ms": h.value_at_quantile(q) as f64 / 1000.0})
            })
            .collect();
        out.insert(op.to_string(), serde_json::Value::Array(pts));
    }
    out
}

fn report(args: &Args, stats: &Stats, elapsed: f64, timeline: &[Sample]) {
    println!(
        "{:<10} {:>10} {:>8} {:>10} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "op", "ops", "errors", "ops/s", "MB/s", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms"
    );
    let mut json_ops = serde_json::Map::new();
    for (op, s) in stats {
        let q = |p: f64| s.hist.as_ref().map_or(0.0, |h| h.value_at_quantile(p) as f64 / 1000.0);
        let max = s.hist.as_ref().map_or(0.0, |h| h.max() as f64 / 1000.0);
        println!(
            "{:<10} {:>10} {:>8} {:>10.0} {:>10.1} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3}",
            op,
            s.count,
            s.errors,
            s.count as f64 / elapsed,
            s.bytes as f64 / elapsed / 1e6,
            q(0.5),
            q(0.9),
            q(0.99),
            q(0.999),
            max
        );
        json_ops.insert(
            op.to_string(),
            serde_json::json!({
                "ops": s.count, "errors": s.errors, "bytes": s.bytes,
                "ops_per_sec": s.count as f64 / elapsed, "mb_per_sec": s.bytes as f64 / elapsed / 1e6,
                "latency_ms": {"p50": q(0.5), "p90": q(0.9), "p99": q(0.99), "p999": q(0.999), "max": max},
            }),
        );
    }
    let total = |s: &Sample| s.per_op.iter().fold((0, 0, 0), |a, x| (a.0 + x.0, a.1 + x.1, a.2 + x.2));
    let doc = serde_json::json!({
        "endpoint": args.endpoint, "workload": format!("{:?}", args.workload).to_lowercase(),
        "size": args.size, "objects": args.objects, "concurrency": args.concurrency, "threads": args.threads,
        "elapsed_sec": elapsed, "ops": json_ops,
        "timeline": timeline.iter().map(|s| {
            let (o, b, e) = total(s);
            serde_json::json!({"t": s.t, "ops": o, "bytes": b, "errors": e})
        }).collect::<Vec<_>>(),
        "timeline_by_op": timeline_by_op(timeline),
        "latency_curve": latency_curves(stats),
    });
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&doc).expect("json"))
            .unwrap_or_else(|e| die(&format!("{path}: {e}")));
    }
    if args.svg.is_some() || args.png.is_some() {
        let run = keel_benches::plot::run_from_json("", &doc).unwrap_or_else(|e| die(&e));
        let title =
            format!("keel-bench {:?} {} x{} against {}", args.workload, args.size, args.concurrency, args.endpoint);
        draw(args, &title, &[run]);
    }
}

/// Draws the picture into every file asked for (`--svg`, `--png`), or ends the program with
/// why it could not.
fn draw(args: &Args, title: &str, runs: &[keel_benches::plot::Run]) {
    keel_benches::plot::load_font().unwrap_or_else(|e| die(&e));
    for path in args.svg.iter().chain(&args.png) {
        keel_benches::plot::draw(title, runs, std::path::Path::new(path))
            .unwrap_or_else(|e| die(&format!("{path}: {e}")));
    }
}

/// `--compare A.json,B.json`: one picture overlaying earlier runs, labelled by `--labels` or by
/// the files' names; no load is run.
fn compare(args: &Args, files: &str) {
    let labels: Vec<String> = match &args.labels {
        Some(l) => l.split(',').map(str::to_owned).collect(),
        None => files
            .split(',')
            .map(|f| std::path::Path::new(f).file_stem().map_or(f.to_owned(), |s| s.to_string_lossy().into_owned()))
            .collect(),
    };
    let mut runs = Vec::new();
    for (i, f) in files.split(',').enumerate() {
        let text = std::fs::read_to_string(f).unwrap_or_else(|e| die(&format!("{f}: {e}")));
        let doc: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| die(&format!("{f}: {e}")));
        let label = labels.get(i).cloned().unwrap_or_else(|| format!("run {}", i + 1));
        runs.push(keel_benches::plot::run_from_json(&label, &doc).unwrap_or_else(|e| die(&format!("{f}: {e}"))));
    }
    if args.svg.is_none() && args.png.is_none() {
        die("--compare draws a picture: give --svg FILE and/or --png FILE");
    }
    draw(args, &format!("keel-bench: {}", labels.join(" vs ")), &runs);
}
