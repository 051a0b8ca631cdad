//! Prometheus metrics. Each shard writes only its own counters (no shared cache lines on the
//! request path); a scrape sums them. Served as text at `GET /metrics` (unsigned, no query).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use engine::Store;

/// Operations by name, as `Op::name` gives them (anything else counts as "Other").
pub const OPS: &[&str] = &[
    "ListBuckets",
    "CreateBucket",
    "HeadBucket",
    "DeleteBucket",
    "GetBucketLocation",
    "GetBucketVersioning",
    "PutBucketVersioning",
    "GetBucketAcl",
    "PutBucketAcl",
    "ListObjects",
    "ListObjectsV2",
    "ListObjectVersions",
    "DeleteObjects",
    "ListMultipartUploads",
    "PutObject",
    "CopyObject",
    "GetObject",
    "HeadObject",
    "DeleteObject",
    "GetObjectAcl",
    "PutObjectAcl",
    "GetObjectTagging",
    "PutObjectTagging",
    "DeleteObjectTagging",
    "GetBucketTagging",
    "PutBucketTagging",
    "DeleteBucketTagging",
    "GetObjectLockConfiguration",
    "PutObjectLockConfiguration",
    "GetObjectRetention",
    "PutObjectRetention",
    "GetObjectLegalHold",
    "PutObjectLegalHold",
    "GetBucketLifecycleConfiguration",
    "PutBucketLifecycleConfiguration",
    "DeleteBucketLifecycle",
    "GetObjectAttributes",
    "CreateMultipartUpload",
    "UploadPart",
    "UploadPartCopy",
    "CompleteMultipartUpload",
    "AbortMultipartUpload",
    "ListParts",
    "Health",
    "Metrics",
    "Admin",
    "Other",
];

/// Statuses counted one by one; the rest by class.
const STATUSES: &[u16] = &[200, 204, 206, 304, 400, 403, 404, 405, 409, 411, 412, 416, 431, 500, 501, 503, 507];
const STATUS_SLOTS: usize = 17 + 1;

/// Upper bounds (seconds) of the latency histogram buckets.
pub const LATENCY_BOUNDS: &[f64] =
    &[0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

fn op_index(op: &str) -> usize {
    OPS.iter().position(|o| *o == op).unwrap_or(OPS.len() - 1)
}

fn status_index(status: u16) -> usize {
    STATUSES.iter().position(|s| *s == status).unwrap_or(STATUS_SLOTS - 1)
}

const REQUEST_SLOTS: usize = OPS.len() * STATUS_SLOTS;
const LATENCY_SLOTS: usize = OPS.len() * (LATENCY_BOUNDS.len() + 1);

/// One shard's counters: one allocation, inline and aligned to 128 bytes (two cache lines, as
/// adjacent-line prefetch pairs them), so no two shards ever write the same cache line.
#[repr(align(128))]
pub struct ShardMetrics {
    requests: [AtomicU64; REQUEST_SLOTS],
    latency: [AtomicU64; LATENCY_SLOTS],
    latency_sum_us: [AtomicU64; OPS.len()],
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    pub connections: AtomicU64,
    pub in_flight: AtomicU64,
    /// Heap allocations the shard made serving S3 requests (`alloc_count`), as of its last one.
    pub allocations: AtomicU64,
}

impl ShardMetrics {
    fn new() -> ShardMetrics {
        ShardMetrics {
            requests: [const { AtomicU64::new(0) }; REQUEST_SLOTS],
            latency: [const { AtomicU64::new(0) }; LATENCY_SLOTS],
            latency_sum_us: [const { AtomicU64::new(0) }; OPS.len()],
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            connections: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            allocations: AtomicU64::new(0),
        }
    }

    /// Counts one finished request.
    pub fn record(&self, op: &str, status: u16, bytes_in: u64, bytes_out: u64, elapsed: std::time::Duration) {
        let o = op_index(op);
        self.requests[o * STATUS_SLOTS + status_index(status)].fetch_add(1, Ordering::Relaxed);
        let secs = elapsed.as_secs_f64();
        let b = LATENCY_BOUNDS.iter().position(|&u| secs <= u).unwrap_or(LATENCY_BOUNDS.len());
        self.latency[o * (LATENCY_BOUNDS.len() + 1) + b].fetch_add(1, Ordering::Relaxed);
        self.latency_sum_us[o].fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
        self.bytes_in.fetch_add(bytes_in, Ordering::Relaxed);
        self.bytes_out.fetch_add(bytes_out, Ordering::Relaxed);
    }
}

/// All shards' counters.
pub struct Metrics {
    pub shards: Vec<ShardMetrics>,
}

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

impl Metrics {
    pub fn new(shards: usize) -> Metrics {
        Metrics { shards: (0..shards).map(|_| ShardMetrics::new()).collect() }
    }

    /// The Prometheus text exposition of everything.
    pub fn render(&self, store: &Store, backends: Option<&crate::backend::Agent>) -> String {
        let mut s = String::with_capacity(16 * 1024);
        self.render_requests(&mut s);
        self.render_connections(&mut s);
        render_mountpaths(&mut s, store);
        render_copies(&mut s, store);
        crate::lifecycle::render(&mut s);
        if let Some(agent) = backends {
            render_backends(&mut s, agent);
        }
        s
    }

    fn sum(&self, f: impl Fn(&ShardMetrics) -> u64) -> u64 {
        self.shards.iter().map(f).sum()
    }

    /// Requests by operation and status, errors by operation, and their latency.
    fn render_requests(&self, s: &mut String) {
        let count = |o: usize, si: usize| self.sum(|m| m.requests[o * STATUS_SLOTS + si].load(Ordering::Relaxed));
        s.push_str("# HELP keel_requests_total Requests answered, by S3 operation and HTTP status.\n# TYPE keel_requests_total counter\n");
        for (o, op) in OPS.iter().enumerate() {
            for si in 0..STATUS_SLOTS {
                let n = count(o, si);
                if n > 0 {
                    let status = STATUSES.get(si).map_or("other".to_owned(), |c| c.to_string());
                    let _ = writeln!(s, "keel_requests_total{{op=\"{op}\",status=\"{status}\"}} {n}");
                }
            }
        }
        s.push_str("# HELP keel_request_errors_total Requests answered with a 4xx or 5xx status, by operation.\n# TYPE keel_request_errors_total counter\n");
        for (o, op) in OPS.iter().enumerate() {
            let n: u64 =
                (0..STATUS_SLOTS).filter(|&si| STATUSES.get(si).is_none_or(|c| *c >= 400)).map(|si| count(o, si)).sum();
            if n > 0 {
                let _ = writeln!(s, "keel_request_errors_total{{op=\"{op}\"}} {n}");
            }
        }
        s.push_str("# HELP keel_request_duration_seconds Time from request head to response written.\n# TYPE keel_request_duration_seconds histogram\n");
        let width = LATENCY_BOUNDS.len() + 1;
        for (o, op) in OPS.iter().enumerate() {
            let counts: Vec<u64> =
                (0..width).map(|b| self.sum(|m| m.latency[o * width + b].load(Ordering::Relaxed))).collect();
            let total: u64 = counts.iter().sum();
            if total == 0 {
                continue;
            }
            let us = self.sum(|m| m.latency_sum_us[o].load(Ordering::Relaxed));
            let buckets = LATENCY_BOUNDS.iter().zip(counts.iter().copied());
            histogram(s, "keel_request_duration_seconds", &format!("op=\"{op}\""), buckets, total, us as f64 / 1e6);
        }
    }

    /// Bytes in and out, open connections and requests in flight.
    fn render_connections(&self, s: &mut String) {
        let _ = writeln!(
            s,
            "# HELP keel_received_bytes_total Request body bytes.\n# TYPE keel_received_bytes_total counter\nkeel_received_bytes_total {}",
            self.sum(|m| m.bytes_in.load(Ordering::Relaxed))
        );
        let _ = writeln!(
            s,
            "# HELP keel_sent_bytes_total Response body bytes.\n# TYPE keel_sent_bytes_total counter\nkeel_sent_bytes_total {}",
            self.sum(|m| m.bytes_out.load(Ordering::Relaxed))
        );
        s.push_str("# HELP keel_connections Open client connections, by shard.\n# TYPE keel_connections gauge\n");
        for (i, m) in self.shards.iter().enumerate() {
            let _ = writeln!(s, "keel_connections{{shard=\"{i}\"}} {}", m.connections.load(Ordering::Relaxed));
        }
        s.push_str(
            "# HELP keel_requests_in_flight Requests being served, by shard.\n# TYPE keel_requests_in_flight gauge\n",
        );
        for (i, m) in self.shards.iter().enumerate() {
            let _ = writeln!(s, "keel_requests_in_flight{{shard=\"{i}\"}} {}", m.in_flight.load(Ordering::Relaxed));
        }
        s.push_str(
            "# HELP keel_shard_heap_allocations_total Heap allocations a shard made serving S3 requests (operator endpoints left out), by shard.\n# TYPE keel_shard_heap_allocations_total counter\n",
        );
        for (i, m) in self.shards.iter().enumerate() {
            let _ = writeln!(
                s,
                "keel_shard_heap_allocations_total{{shard=\"{i}\"}} {}",
                m.allocations.load(Ordering::Relaxed)
            );
        }
    }
}

/// One histogram's series: cumulative buckets from per-bucket counts, `+Inf`, sum and count.
fn histogram<B: std::fmt::Display>(
    out: &mut String,
    name: &str,
    labels: &str,
    buckets: impl IntoIterator<Item = (B, u64)>,
    count: u64,
    sum: impl std::fmt::Display,
) {
    let mut acc = 0;
    for (bound, n) in buckets {
        acc += n;
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {acc}");
    }
    let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {count}");
    let _ = writeln!(out, "{name}_sum{{{labels}}} {sum}");
    let _ = writeln!(out, "{name}_count{{{labels}}} {count}");
}

/// Each mountpath's space, errors and state, and its index's commits.
/// Each configured backend's calls, failures, bytes and state.
fn render_backends(s: &mut String, agent: &crate::backend::Agent) {
    let series = [
        ("keel_backend_requests_total", "counter", "Calls to the backend's remote."),
        ("keel_backend_errors_total", "counter", "Calls to the backend's remote that failed or timed out."),
        ("keel_backend_received_bytes_total", "counter", "Bytes fetched from the remote into the cache."),
        ("keel_backend_sent_bytes_total", "counter", "Bytes written through to the remote."),
        ("keel_backend_failing", "gauge", "1 while the backend's newest call failed."),
    ];
    for (i, (name, kind, help)) in series.iter().enumerate() {
        let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (backend, st) in agent.stats() {
            let v = match i {
                0 => st.requests.load(Ordering::Relaxed),
                1 => st.errors.load(Ordering::Relaxed),
                2 => st.bytes_in.load(Ordering::Relaxed),
                3 => st.bytes_out.load(Ordering::Relaxed),
                _ => (st.state() == "failing") as u64,
            };
            let _ = writeln!(s, "{name}{{backend=\"{}\"}} {v}", esc(backend));
        }
    }
}

/// Copies on distinct mountpaths: what is short, and what the repair made again.
fn render_copies(s: &mut String, store: &Store) {
    let r = store.copies_report();
    s.push_str(&help(
        "keel_under_replicated_objects",
        "gauge",
        "Objects with fewer copies than their bucket wants, as the last repair pass found them (-1: not counted yet).",
    ));
    let under = r.under_replicated.map_or(-1, |n| n as i64);
    let _ = writeln!(s, "keel_under_replicated_objects {under}");
    s.push_str(&help("keel_repaired_objects_total", "counter", "Copies made again by the repair."));
    let _ = writeln!(s, "keel_repaired_objects_total {}", r.repaired_objects);
    s.push_str(&help("keel_repaired_bytes_total", "counter", "Bytes of copies made again by the repair."));
    let _ = writeln!(s, "keel_repaired_bytes_total {}", r.repaired_bytes);
    s.push_str(&help("keel_repair_passes_total", "counter", "Repair passes over every copies bucket."));
    let _ = writeln!(s, "keel_repair_passes_total {}", r.passes);
}

/// A metric's HELP and TYPE lines.
fn help(name: &str, kind: &str, text: &str) -> String {
    format!("# HELP {name} {text}\n# TYPE {name} {kind}\n")
}

fn render_mountpaths(s: &mut String, store: &Store) {
    s.push_str(&help("keel_mountpath_free_bytes", "gauge", "Bytes free for new data."));
    let mut used = help("keel_mountpath_used_bytes", "gauge", "Bytes in use on the mountpath's filesystem.");
    let mut errs = help("keel_mountpath_io_errors_total", "counter", "I/O errors on the mountpath.");
    let mut poisoned = help("keel_mountpath_poisoned", "gauge", "1 when the mountpath failed and serves 503.");
    let mut commits = help("keel_index_commits_total", "counter", "Durable index commits (one per batch).");
    let mut ops = help("keel_index_committed_requests_total", "counter", "Requests committed to the index.");
    let mut batch = help("keel_index_commit_batch_requests", "histogram", "Requests per index commit.");
    let mut lat = help("keel_index_commit_seconds", "histogram", "Time of one index commit, fsyncs included.");
    let mut evicted = help("keel_mountpath_evicted_objects_total", "counter", "Cached copies evicted (watermarks).");
    let mut evicted_b = help("keel_mountpath_evicted_bytes_total", "counter", "Bytes of cached copies evicted.");
    for mp in store.mountpaths() {
        let name = esc(mp.name());
        if let Some((free, total)) = mp.space() {
            let _ = writeln!(s, "keel_mountpath_free_bytes{{mountpath=\"{name}\"}} {free}");
            let _ = writeln!(used, "keel_mountpath_used_bytes{{mountpath=\"{name}\"}} {}", total.saturating_sub(free));
        }
        let _ = writeln!(errs, "keel_mountpath_io_errors_total{{mountpath=\"{name}\"}} {}", mp.io_errors());
        let _ = writeln!(poisoned, "keel_mountpath_poisoned{{mountpath=\"{name}\"}} {}", u8::from(mp.is_poisoned()));
        let (n, bytes) = mp.reads.evicted();
        let _ = writeln!(evicted, "keel_mountpath_evicted_objects_total{{mountpath=\"{name}\"}} {n}");
        let _ = writeln!(evicted_b, "keel_mountpath_evicted_bytes_total{{mountpath=\"{name}\"}} {bytes}");
        let st = mp.index.stats();
        let _ = writeln!(commits, "keel_index_commits_total{{mountpath=\"{name}\"}} {}", st.commits);
        let _ = writeln!(ops, "keel_index_committed_requests_total{{mountpath=\"{name}\"}} {}", st.requests);
        let labels = format!("mountpath=\"{name}\"");
        let b = st.batch_buckets.iter().map(|(bound, n)| (bound, *n));
        histogram(&mut batch, "keel_index_commit_batch_requests", &labels, b, st.commits, st.requests);
        let l = st.latency_buckets.iter().map(|(bound, n)| (bound, *n));
        histogram(&mut lat, "keel_index_commit_seconds", &labels, l, st.commits, st.latency_sum_us as f64 / 1e6);
    }
    for part in [used, errs, poisoned, evicted, evicted_b, commits, ops, batch, lat] {
        s.push_str(&part);
    }
}
