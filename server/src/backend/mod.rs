//! Backend buckets: a keel bucket in front of a remote one (S3, GCS, Azure, or read-only HTTP),
//! AIStore's "cloud bucket behind an ais bucket". The remote is reached through the
//! `object_store` crate, on one agent thread with its own tokio runtime; shards hand it work and
//! await runtime-agnostic channels, so they never block on the network (the same shape as the
//! cluster's etcd agent, CLUSTER.md).
//!
//! What crosses the channel is plain data: the remote's answer (`RemoteObject`, `RemotePage`) or
//! a `RemoteError` in domain words, which `s3/error.rs` maps to an S3 answer.

#[cfg(feature = "backends")]
mod agent;
/// Built without the `backends` feature (the fuzz targets' build): no agent can exist, and a
/// configuration that names backends is refused at start.
#[cfg(not(feature = "backends"))]
#[path = "agent_none.rs"]
mod agent;
#[cfg(feature = "backends")]
mod blob;
mod config;
#[cfg(feature = "backends")]
mod forward;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub use agent::{Agent, BodySink, Chunks};
pub use config::{BackendConfig, BackendTable, Provider};

/// The MD5 a remote ETag states, when it is one (32 hex digits: a single-part S3 object's); a
/// copy's bytes are checked against it.
pub fn etag_md5(etag: &str) -> Option<[u8; 16]> {
    let mut out = [0u8; 16];
    hex::decode_to_slice(etag, &mut out).ok()?;
    Some(out)
}

/// Most ranged reads of one large object in flight at once (`parallel_reads`).
pub const PARALLEL_READS_MAX: usize = 16;

/// How a presigned URL addressed its bucket when it was signed: the forwarded request must use
/// the same host and path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignedStyle {
    /// `https://s3.REGION.amazonaws.com/BUCKET/KEY` or `ENDPOINT/BUCKET/KEY`.
    Path,
    /// `https://BUCKET.s3.REGION.amazonaws.com/KEY`.
    VirtualHosted,
}

/// A byte range of a remote object, as a GET's `Range` header states it (the size not yet known).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RemoteRange {
    /// From `first` to `last` inclusive, or to the end.
    From { first: u64, last: Option<u64> },
    /// The last `n` bytes.
    Suffix(u64),
}

/// A presigned request the remote answered.
pub enum Forwarded {
    /// 2xx: the object, and for a GET its bytes as they arrive.
    Object(RemoteObject, Option<Chunks>),
    /// Anything else, as the remote said it (its S3 error document, at most 64 KiB).
    Refused { status: u16, body: Vec<u8> },
}

/// A remote object as its store describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteObject {
    pub key: String,
    pub size: u64,
    pub mtime_ms: u64,
    /// Without quotes.
    pub etag: Option<String>,
    pub version: Option<String>,
    pub content_type: Option<String>,
}

/// One page of a remote listing, already cut to the caller's page size.
#[derive(Clone, Debug, Default)]
pub struct RemotePage {
    pub objects: Vec<RemoteObject>,
    pub common_prefixes: Vec<String>,
    /// More keys follow: the page ended at `max_keys`.
    pub truncated: bool,
}

/// A listing of a remote bucket, S3's way: keys after `start_after` under `prefix`, keys sharing
/// the part up to the next `delimiter` rolled into common prefixes.
#[derive(Clone, Debug, Default)]
pub struct RemoteListQuery {
    pub prefix: String,
    pub delimiter: Option<String>,
    pub start_after: Option<String>,
    pub max_keys: usize,
}

/// Why a remote call did not succeed, in domain words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RemoteError {
    /// The remote has no such object (or bucket).
    NotFound,
    /// The remote refused our credentials or the operation.
    Denied(String),
    /// The remote did not answer within the backend timeout.
    Timeout,
    /// The remote could not be reached or failed (after the client's retries).
    Unavailable(String),
    /// The remote's copy changed while it was being read.
    Changed,
    /// The key cannot be named on this remote (`object_store` paths have no empty segments, no
    /// `.` or `..` segments and no trailing `/`).
    BadKey,
    /// The backend named by the bucket is not configured here.
    NoSuchBackend(String),
    /// The provider cannot do this (an `http` backend is read-only).
    NotSupported(&'static str),
    /// A conditional write's condition did not hold on the remote (it has the key, or another
    /// version of it).
    ConditionFailed,
    /// A request passed through was refused by the remote: its status and error document, to
    /// relay as they are.
    Refused { status: u16, body: Vec<u8> },
}

/// The condition a write-through PUT carries to the remote, which decides it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RemoteCondition {
    Always,
    /// `If-None-Match: *`: only if the remote has no such key.
    Absent,
    /// `If-Match`: only if the remote's object has this ETag (without quotes).
    Matches(String),
}

impl std::fmt::Display for RemoteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RemoteError::NotFound => write!(f, "not found on the remote"),
            RemoteError::Denied(m) => write!(f, "the remote refused: {m}"),
            RemoteError::Timeout => write!(f, "the remote did not answer in time"),
            RemoteError::Unavailable(m) => write!(f, "the remote is unavailable: {m}"),
            RemoteError::Changed => write!(f, "the remote object changed while it was read"),
            RemoteError::BadKey => write!(f, "the key cannot be named on the remote"),
            RemoteError::NoSuchBackend(n) => write!(f, "no backend named {n:?} is configured"),
            RemoteError::NotSupported(m) => write!(f, "{m}"),
            RemoteError::ConditionFailed => write!(f, "the remote's object does not meet the write's condition"),
            RemoteError::Refused { status, .. } => write!(f, "the remote refused the request ({status})"),
        }
    }
}

/// Counters of one backend, for /metrics and /health.
#[derive(Default)]
pub struct BackendStats {
    pub requests: AtomicU64,
    pub errors: AtomicU64,
    /// Bytes fetched from the remote into the cache.
    pub bytes_in: AtomicU64,
    /// Bytes written through to the remote.
    pub bytes_out: AtomicU64,
    /// When the last call failed (ms since the epoch; 0 never) and when one last succeeded.
    pub last_error_ms: AtomicU64,
    pub last_ok_ms: AtomicU64,
}

impl BackendStats {
    /// `ok`, or `failing` while the newest outcome is an error.
    pub fn state(&self) -> &'static str {
        if self.last_error_ms.load(Ordering::Relaxed) > self.last_ok_ms.load(Ordering::Relaxed) {
            "failing"
        } else {
            "ok"
        }
    }
}

/// Cold reads in flight, one per (bucket, key) across all shards: the first reader fetches, the
/// others wait for it and then read the cached copy (single flight).
pub type Flights = crate::flights::Flights<(String, String)>;
pub type Flight = crate::flights::Flight<(String, String)>;
pub type FlightGuard = crate::flights::FlightGuard<(String, String)>;

/// The default bound on one remote call (`backend_timeout`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
