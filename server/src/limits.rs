//! Server limits. Units last; relationships checked at compile time.

use std::time::Duration;

/// Request line plus headers.
pub const HEADER_BYTES_MAX: usize = 64 * 1024;
/// Headers in one request.
pub const HEADER_COUNT_MAX: usize = 128;
/// The request target (path and query).
pub const URI_BYTES_MAX: usize = 16 * 1024;
/// XML request bodies (DeleteObjects with 1000 long keys fits).
pub const XML_BODY_BYTES_MAX: usize = 2 * 1024 * 1024;
/// Keys in one DeleteObjects request (S3's limit).
pub const DELETE_OBJECTS_KEYS_MAX: usize = 1000;
/// XML nesting depth and element count the parser accepts.
pub const XML_DEPTH_MAX: usize = 16;
pub const XML_ELEMENTS_MAX: usize = 12_000;
/// Chunked encoding: bytes of one chunk-size line (hex digits, extensions, CRLF).
pub const CHUNK_LINE_BYTES_MAX: usize = 4096;
/// Chunked encoding: hex digits of a chunk size (16 = u64).
pub const CHUNK_SIZE_HEX_DIGITS_MAX: usize = 16;
/// Chunked encoding: bytes of all trailer lines together.
pub const TRAILER_BYTES_MAX: usize = 16 * 1024;
/// Unread body bytes the server drains to keep a connection alive after an early answer
/// (larger remainders close the connection).
pub const DRAIN_BYTES_MAX: u64 = 256 * 1024;
/// Time that drain may take.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// After answering early, a closing connection discards what the client still sends for at
/// most this long and this many bytes, so the client reads the answer rather than a reset.
pub const LINGER_TIMEOUT: Duration = Duration::from_secs(2);
pub const LINGER_BYTES_MAX: usize = 4 * 1024 * 1024;
/// A request body gets this long before its minimum rate applies...
pub const BODY_GRACE: Duration = Duration::from_secs(30);
/// ...and then must have arrived at this average rate (bytes per second) since it started: a
/// client trickling a byte every half minute cannot hold a connection and its buffers forever.
pub const BODY_BYTES_PER_SEC_MIN: u64 = 1024;
/// Time to receive a whole request head once its first byte arrived.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Time a keep-alive connection may sit idle between requests.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// Time one body read or response write may stall.
pub const IO_STALL_TIMEOUT: Duration = Duration::from_secs(60);
/// A CompleteMultipartUpload still working after this long (a backend bucket's object going to
/// its remote) answers 200 at once and sends a space this often until its result, as S3 does:
/// clients' read timeouts (boto3's 60 s) never fire on a long completion.
pub const COMPLETE_KEEPALIVE: Duration = Duration::from_secs(5);
/// Time in-flight requests get to finish after SIGTERM.
pub const SHUTDOWN_DRAIN_TIMEOUT: Duration = Duration::from_secs(20);
/// Initial size of a connection's read buffer.
pub const READ_BUFFER_BYTES: usize = 16 * 1024;
/// Allowed clock skew for signed requests (S3: 15 minutes).
pub const CLOCK_SKEW_SECS_MAX: i64 = 15 * 60;
/// How often a shard looks whether its pool of body buffers sat unused...
pub const BUFFER_POOL_TRIM_INTERVAL: Duration = Duration::from_secs(5);
/// ...and how many buffers it keeps when it did.
pub const BUFFER_POOL_IDLE_KEEP: usize = 2;
/// How often each mountpath checks that its directory is still there.
pub const MOUNTPATH_PROBE_INTERVAL: Duration = Duration::from_secs(2);

/// How often each mountpath's fullness is compared with the space watermarks (backend buckets).
pub const EVICTION_CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// Connections one shard serves at once; more are refused with 503.
pub const CONNECTIONS_PER_SHARD_MAX: usize = 16 * 1024;

const _: () = assert!(URI_BYTES_MAX < HEADER_BYTES_MAX);
const _: () = assert!(READ_BUFFER_BYTES <= HEADER_BYTES_MAX);
const _: () = assert!(CHUNK_SIZE_HEX_DIGITS_MAX < CHUNK_LINE_BYTES_MAX);

/// A connection keeps its response-head buffer for the next response up to this size (a head
/// with an inline object's bytes appended fits; a larger one is freed).
pub const HEAD_BUFFER_KEEP: usize = 16 << 10;
