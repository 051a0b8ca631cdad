//! What every shard shares with the S3 front end: settings, and one shard's view of the node.

use std::cell::Cell;
use std::sync::Arc;

use engine::Store;

use crate::s3::auth::Credentials;

/// Settings the S3 front end reads on every request.
#[derive(Clone, Debug)]
pub struct S3Config {
    /// Path prefix the API is served under (`/s3`), or empty.
    pub prefix: String,
    /// Base domain for virtual-hosted-style requests (`bucket.<domain>`).
    pub domain: Option<String>,
    pub region: String,
    pub anonymous: bool,
    pub credentials: Credentials,
    /// Check stored checksums before serving objects of every bucket (buckets can also ask for
    /// it one by one).
    pub validate_on_read: bool,
    /// Connections per shard before new ones are refused.
    pub max_connections: usize,
    /// Bodies (or ranges) at least this long are spliced; 0 never splices.
    pub splice_min: u64,
    /// Smallest non-final multipart part (S3: 5 MiB; 0 accepts any size, as AIStore does).
    pub min_part_size: u64,
    /// Time a request body gets before its minimum rate applies (`limits::BODY_GRACE`).
    pub body_grace: std::time::Duration,
    /// How long a connection may sit idle, a request head take to arrive, a write stall.
    pub timeouts: Timeouts,
    /// The remote stores backend buckets name, reached through the backend agent (none
    /// configured: `None`).
    pub backends: Option<Arc<crate::backend::Agent>>,
    /// The cluster this node is a member of (`--cluster`; `None`: a single node).
    pub cluster: Option<Arc<crate::cluster::Cluster>>,
    /// HTTPS (`--tls-cert`; `None`: plain HTTP).
    pub tls: Option<Arc<crate::http::tls::Tls>>,
}

/// One shard's view of the server.
pub struct Ctx {
    pub store: Arc<Store>,
    pub config: Arc<S3Config>,
    shard: u16,
    requests: Cell<u64>,
    /// Large object bodies go file → pipe → socket (io_uring driver and not disabled).
    pub splice: bool,
    pub metrics: Arc<crate::metrics::Metrics>,
}

impl Ctx {
    pub fn new(
        store: Arc<Store>,
        config: Arc<S3Config>,
        shard: u16,
        splice: bool,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> Ctx {
        Ctx { store, config, shard, requests: Cell::new(0), splice, metrics }
    }

    /// This shard's number.
    pub fn shard(&self) -> u16 {
        self.shard
    }

    /// This shard's counters.
    pub fn shard_metrics(&self) -> &crate::metrics::ShardMetrics {
        &self.metrics.shards[self.shard as usize]
    }

    /// Requests this shard has started.
    pub fn requests_served(&self) -> u64 {
        self.requests.get()
    }

    /// A request id unique within this process run: shard and sequence, 16 hex digits.
    pub fn next_request_id(&self) -> crate::http::HeaderValue {
        let n = self.requests.get() + 1;
        self.requests.set(n);
        crate::http::HeaderValue::format(format_args!("{:04X}{:012X}", self.shard, n & 0xFFFF_FFFF_FFFF))
    }
}

/// A connection's waits (`limits::IDLE_TIMEOUT`, `limits::HEADER_READ_TIMEOUT`,
/// `limits::IO_STALL_TIMEOUT` for a response the client does not take), and the pace of a long
/// completion's keep-alive spaces (`limits::COMPLETE_KEEPALIVE`).
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    pub idle: std::time::Duration,
    pub head: std::time::Duration,
    pub stall: std::time::Duration,
    pub complete_keepalive: std::time::Duration,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts {
            idle: crate::limits::IDLE_TIMEOUT,
            head: crate::limits::HEADER_READ_TIMEOUT,
            stall: crate::limits::IO_STALL_TIMEOUT,
            complete_keepalive: crate::limits::COMPLETE_KEEPALIVE,
        }
    }
}
