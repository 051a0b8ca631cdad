//! Getting a remote object's bytes to the shard: frames gathered into chunks of about
//! `CHUNK_BYTES` (each crossing, and each socket write there, carries much) and hashed on the way
//! when asked; a large object read as several ranged reads at once (AIStore's blob downloader),
//! since one connection to a cloud store moves far less than the machine's network can.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use futures_channel::{mpsc, oneshot};
use futures_util::{SinkExt, StreamExt};
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectStore};

use super::RemoteError;
use super::agent::remote_error;

/// Bytes gathered into one chunk of a remote object before it crosses to the shard.
const CHUNK_BYTES: usize = 1 << 20;
/// Objects at least this large are read in parts, several at once.
pub(super) const PARALLEL_BYTES_MIN: u64 = 64 << 20;
/// One ranged read's length.
const PART_BYTES: u64 = 16 << 20;

type Hasher = Option<(fast_md5::Md5, oneshot::Sender<[u8; 16]>)>;

/// Gathers bytes into chunks for the shard, hashing them in order.
struct Forwarder {
    tx: mpsc::Sender<Result<Bytes, RemoteError>>,
    hasher: Hasher,
    batch: bytes::BytesMut,
}

impl Forwarder {
    /// Adds bytes; false once the shard stopped listening.
    async fn push(&mut self, bytes: &[u8]) -> bool {
        self.batch.extend_from_slice(bytes);
        self.batch.len() < CHUNK_BYTES || self.flush().await
    }

    async fn flush(&mut self) -> bool {
        if self.batch.is_empty() {
            return true;
        }
        let chunk = self.batch.split().freeze();
        if let Some((h, _)) = &mut self.hasher {
            h.update(&chunk);
        }
        self.tx.send(Ok(chunk)).await.is_ok()
    }

    /// Sends bytes that are already a chunk as they are (no gathering copy), after any gathered.
    async fn send(&mut self, chunk: Bytes) -> bool {
        if !self.flush().await {
            return false;
        }
        if let Some((h, _)) = &mut self.hasher {
            h.update(&chunk);
        }
        self.tx.send(Ok(chunk)).await.is_ok()
    }

    async fn fail(mut self, e: RemoteError) {
        let _ = self.tx.send(Err(e)).await;
    }

    /// The last chunk, then the MD5 (the end of the channel says the bytes are complete).
    async fn finish(mut self) {
        if self.flush().await
            && let Some((h, done)) = self.hasher.take()
        {
            let _ = done.send(h.finalize());
        }
    }
}

/// Sends a remote object's frames to the shard, gathered and hashed.
pub(super) async fn forward_chunks<E>(
    mut stream: impl futures_util::Stream<Item = Result<Bytes, E>> + Unpin,
    error: fn(E) -> RemoteError,
    tx: mpsc::Sender<Result<Bytes, RemoteError>>,
    hasher: Hasher,
) {
    let mut out = Forwarder { tx, hasher, batch: bytes::BytesMut::new() };
    while let Some(frame) = stream.next().await {
        match frame {
            Ok(c) => {
                if !out.push(&c).await {
                    return;
                }
            }
            Err(e) => return out.fail(error(e)).await,
        }
    }
    out.finish().await
}

/// Where a large object's parts are read from; `etag` pins every part to the version the first
/// answer came from (a change mid-way fails the read instead of mixing versions).
pub(super) struct Source {
    pub client: Arc<dyn ObjectStore>,
    pub path: Path,
    pub size: u64,
    pub etag: Option<String>,
    /// Ranged reads in flight besides the first answer.
    pub in_flight: usize,
}

async fn read_part(source: &Source, range: std::ops::Range<u64>) -> Result<Bytes, RemoteError> {
    let opts = GetOptions {
        range: Some(GetRange::Bounded(range.clone())),
        if_match: source.etag.clone(),
        ..Default::default()
    };
    let r = source.client.get_opts(&source.path, opts).await.map_err(remote_error)?;
    if r.range != range {
        return Err(RemoteError::Changed);
    }
    r.bytes().await.map_err(remote_error)
}

/// Ranged reads in flight; those not awaited when the download ends (failed, or the shard
/// stopped listening) are cancelled.
struct Parts(VecDeque<tokio::task::JoinHandle<Result<Bytes, RemoteError>>>);

impl Drop for Parts {
    fn drop(&mut self) {
        for p in &self.0 {
            p.abort();
        }
    }
}

/// A large object: the first answer's stream supplies the first part (then is dropped), while
/// ranged reads of the following parts run `source.in_flight` at once; parts go to the shard in
/// order.
pub(super) async fn download(
    source: Source,
    mut first: impl futures_util::Stream<Item = object_store::Result<Bytes>> + Unpin,
    tx: mpsc::Sender<Result<Bytes, RemoteError>>,
    hasher: Hasher,
) {
    let source = Arc::new(source);
    let mut out = Forwarder { tx, hasher, batch: bytes::BytesMut::new() };
    let mut next = PART_BYTES.min(source.size);
    let mut parts = Parts(VecDeque::new());
    let start_part = |parts: &mut Parts, next: &mut u64| {
        let range = *next..(*next + PART_BYTES).min(source.size);
        *next = range.end;
        let source = source.clone();
        parts.0.push_back(tokio::spawn(async move { read_part(&source, range).await }));
    };
    while next < source.size && parts.0.len() < source.in_flight.clamp(1, super::PARALLEL_READS_MAX) {
        start_part(&mut parts, &mut next);
    }
    // The first part, from the first answer.
    let mut left = PART_BYTES.min(source.size) as usize;
    while left > 0 {
        match first.next().await {
            Some(Ok(c)) => {
                let take = c.len().min(left);
                left -= take;
                if !out.push(&c[..take]).await {
                    return;
                }
            }
            Some(Err(e)) => return out.fail(remote_error(e)).await,
            None => return out.fail(RemoteError::Changed).await,
        }
    }
    drop(first);
    while let Some(part) = parts.0.pop_front() {
        if next < source.size {
            start_part(&mut parts, &mut next);
        }
        let bytes = match part.await {
            Ok(Ok(b)) => b,
            Ok(Err(e)) => return out.fail(e).await,
            Err(_) => return out.fail(RemoteError::Unavailable("a part's read was cancelled".into())).await,
        };
        let mut at = 0;
        while at < bytes.len() {
            let end = (at + CHUNK_BYTES).min(bytes.len());
            if !out.send(bytes.slice(at..end)).await {
                return;
            }
            at = end;
        }
    }
    out.finish().await
}
