//! Backend buckets in the S3 front end: a read that misses locally fetches the object from the
//! remote into the local store (one fetch per key however many readers wait), a HEAD that misses
//! asks the remote, writes and deletes go to the remote first, listings list the remote.

use std::sync::Arc;

use engine::{CannedAcl, IoBuffer, ObjectMeta, PutOptions, RemoteBucket, RemoteVersion, SystemMeta, give_buffer};

use crate::backend::{Agent, Flight, RemoteError, RemoteObject};
use crate::s3::Call;
use crate::s3::error::S3Error;

/// The remote behind the call's bucket, if it has one. A bucket naming a backend this node does
/// not configure is an error, never a silent local bucket.
pub fn remote_of(call: &Call<'_>) -> Result<Option<(Arc<Agent>, RemoteBucket)>, S3Error> {
    remote_in(call, call.ctx.store.bucket(call.bucket())?)
}

/// `remote_of` for a bucket record the caller already holds.
pub fn remote_in(call: &Call<'_>, bucket: engine::BucketMeta) -> Result<Option<(Arc<Agent>, RemoteBucket)>, S3Error> {
    let Some(remote) = bucket.backend else {
        return Ok(None);
    };
    match &call.ctx.config.backends {
        Some(agent) if agent.has(&remote.backend) => Ok(Some((agent.clone(), remote))),
        _ => Err(RemoteError::NoSuchBackend(remote.backend).into()),
    }
}

/// A PUT's condition as the remote is asked to decide it: `If-None-Match: *`, or `If-Match`
/// with one ETag (a list, or `*`, is 501 in a backend bucket).
pub fn condition_for_remote(c: engine::WriteCondition) -> Result<crate::backend::RemoteCondition, S3Error> {
    use crate::backend::RemoteCondition as R;
    match c {
        engine::WriteCondition::Always => Ok(R::Always),
        engine::WriteCondition::Absent => Ok(R::Absent),
        engine::WriteCondition::EtagMatches(list) => {
            let tags: Vec<&str> =
                list.split(',').map(|t| t.trim().trim_matches('"')).filter(|t| !t.is_empty()).collect();
            match tags.as_slice() {
                [one] if *one != "*" => Ok(R::Matches((*one).to_owned())),
                _ => Err(S3Error::new(
                    crate::s3::error::S3ErrorCode::NotImplemented,
                    "If-Match with a list of ETags or * is not implemented in a backend bucket.",
                )),
            }
        }
        // Node-to-node copies only; never a client's condition.
        engine::WriteCondition::OlderThan { .. } => Err(S3Error::new(
            crate::s3::error::S3ErrorCode::NotImplemented,
            "This write condition is not sent to a backend.",
        )),
    }
}

/// Writes a local object — a completed multipart upload's manifest, not yet committed, or a
/// copy's source — through to `key` on the remote whole (one PUT, or the agent's own multipart
/// upload above 16 MiB), with the given type and user metadata. Returns the remote's identity
/// for the local record.
pub async fn write_through(
    (agent, remote): (Arc<Agent>, RemoteBucket),
    key: &str,
    reader: &engine::ObjectReader,
    (content_type, user): (Option<String>, Vec<(String, String)>),
) -> Result<Option<(RemoteVersion, u64)>, S3Error> {
    let size = reader.meta.size;
    let mut sink =
        agent.put(&remote, key, Some(size), (content_type, user), crate::backend::RemoteCondition::Always)?;
    let mut buf = engine::take_buffer();
    let mut pos = 0u64;
    while pos < size {
        let (r, b) = reader.read_at(buf, pos, engine::limits::IO_BUFFER_BYTES).await;
        buf = b;
        let sent = match r {
            Ok(0) => Err(S3Error::from(engine::Error::Corrupt { algorithm: "size" })),
            Ok(n) => sink.send(buf.as_slice()).await.map(|()| n).map_err(S3Error::from),
            Err(e) => Err(e.into()),
        };
        match sent {
            Ok(n) => pos += n as u64,
            Err(e) => {
                give_buffer(buf);
                return Err(e);
            }
        }
    }
    give_buffer(buf);
    let put = sink.finish().await?;
    Ok(put.etag.map(|etag| (RemoteVersion { etag, version: put.version }, crate::time::now_ms())))
}

/// Makes sure `bucket/key` is held here when `bucket` is a backend bucket (fetching it once,
/// with other readers of the key waiting), for reads that are not GETs: a copy's source.
pub async fn ensure_cached(call: &Call<'_>, bucket: &str, key: &str) -> Result<(), S3Error> {
    let Some((agent, remote)) = remote_in(call, call.ctx.store.bucket(bucket)?)? else { return Ok(()) };
    if call.ctx.store.lookup(bucket, key).is_ok() {
        return Ok(());
    }
    fetch_once(&call.ctx.store, &agent, &remote, (bucket, key)).await
}

/// Fetches `bucket/key` into the store unless another reader is already fetching it (then waits
/// for that one) or it landed meanwhile: one remote GET however many callers.
async fn fetch_once(
    store: &Arc<engine::Store>,
    agent: &Agent,
    remote: &RemoteBucket,
    (bucket, key): (&str, &str),
) -> Result<(), S3Error> {
    match agent.flights().join((bucket.to_owned(), key.to_owned())) {
        // Whatever the leader got, the caller looks again (a failed fetch leaves nothing, and
        // the next miss fetches anew).
        Flight::Wait(done) => match compio::time::timeout(agent.timeout() * 4, done).await {
            Ok(_) => Ok(()),
            Err(_) => Err(RemoteError::Timeout.into()),
        },
        Flight::Lead(_flight) if store.lookup(bucket, key).is_err() => {
            let (obj, chunks) = agent.get(remote, key, true).await?;
            cache(store, (bucket, key), obj, chunks).await
        }
        Flight::Lead(_) => Ok(()),
    }
}

/// What asking the remote about a cached copy found.
pub enum Warm {
    /// Serve the copy.
    Fresh,
    /// The remote's object changed: the copy is dropped, look again (and fetch anew).
    Stale,
    /// The remote's object is gone: so is the copy.
    Gone,
}

/// With the bucket's `validate_warm_get`, a cached copy is served only if the remote still has
/// the same object (same ETag). A remote that cannot be asked leaves the copy served.
pub async fn validate_warm(call: &Call<'_>, meta: &ObjectMeta) -> Result<Warm, S3Error> {
    let Some(cached) = &meta.remote else { return Ok(Warm::Fresh) };
    if !call.ctx.store.bucket(call.bucket())?.validate_warm_get {
        return Ok(Warm::Fresh);
    }
    let Some((agent, remote)) = remote_of(call)? else { return Ok(Warm::Fresh) };
    let verdict = match agent.head(&remote, call.key()).await {
        Ok(obj) if obj.etag.as_deref() == Some(cached.etag.as_str()) => return Ok(Warm::Fresh),
        Ok(_) => Warm::Stale,
        Err(RemoteError::NotFound) => Warm::Gone,
        Err(e) => {
            tracing::warn!(key = call.key(), error = %e, "serving a cached copy unvalidated");
            return Ok(Warm::Fresh);
        }
    };
    match call.ctx.store.delete_object(call.bucket(), call.key()).await {
        Ok(()) | Err(engine::Error::NoSuchObject) => Ok(verdict),
        Err(e) => Err(e.into()),
    }
}

/// What a read of a key missing locally found.
pub enum Miss {
    /// Not a backend bucket, or the caller may not read its objects: the local answer stands.
    Local,
    /// Now cached: look again.
    Cached,
    /// A HEAD: the remote's description, not cached.
    Remote(Box<ObjectMeta>),
    /// A whole-object GET: the remote's description and its bytes as they arrive (being cached).
    Streaming(Box<ObjectMeta>, crate::http::Body),
}

/// A GET or HEAD of a key the local store does not have.
/// `stream`: a GET of the whole object, which the leader of the fetch serves while it caches.
pub async fn on_miss(call: &Call<'_>, head: bool, stream_whole: bool) -> Result<Miss, S3Error> {
    let Some((agent, remote)) = remote_of(call)? else {
        return Ok(Miss::Local);
    };
    // A fetched object is private: fetch only for who may read private objects here.
    if call.access.check_object(CannedAcl::Private).is_err() {
        return Ok(Miss::Local);
    }
    if head {
        let obj = agent.head(&remote, call.key()).await?;
        return Ok(Miss::Remote(Box::new(described(&obj))));
    }
    let target = (call.bucket(), call.key());
    if !stream_whole {
        fetch_once(&call.ctx.store, &agent, &remote, target).await?;
        return Ok(Miss::Cached);
    }
    match agent.flights().join((target.0.to_owned(), target.1.to_owned())) {
        // It may have landed between our miss and the flight.
        Flight::Lead(flight) if call.ctx.store.lookup(target.0, target.1).is_err() => {
            let (meta, body) = stream(call, &agent, &remote, flight).await?;
            Ok(Miss::Streaming(Box::new(meta), body))
        }
        Flight::Lead(_) => Ok(Miss::Cached),
        Flight::Wait(done) => match compio::time::timeout(agent.timeout() * 4, done).await {
            Ok(_) => Ok(Miss::Cached),
            Err(_) => Err(RemoteError::Timeout.into()),
        },
    }
}

/// A remote object as a record, for answering a HEAD without caching it.
pub(super) fn described(obj: &RemoteObject) -> ObjectMeta {
    ObjectMeta {
        size: obj.size,
        mtime_ms: obj.mtime_ms,
        md5: [0; 16],
        etag_parts: 0,
        stored_checksum: engine::StoredChecksum { kind: engine::ChecksumKind::None, value: Default::default() },
        system: SystemMeta { content_type: obj.content_type.clone(), ..Default::default() },
        user: Vec::new(),
        flex_checksum: None,
        data: engine::DataLoc::Inline(Vec::new()),
        acl: CannedAcl::Private,
        epoch: 0,
        upload_id: None,
        remote: Some(RemoteVersion { etag: obj.etag.clone().unwrap_or_default(), version: obj.version.clone() }),
        tags: Vec::new(),
        version: Default::default(),
        lock: Default::default(),
        owner: None,
        grants: Vec::new(),
    }
}

/// A client reading a cold object while it is cached.
type ClientTx = futures_channel::mpsc::Sender<std::io::Result<Vec<u8>>>;

/// Writes the chunks as they arrive, in whole pooled buffers, and hands each to `client` too
/// while it listens (a client that leaves does not stop the copy).
async fn copy_chunks(
    chunks: &mut crate::backend::Chunks,
    writer: &mut engine::DataWriter,
    mut client: Option<&mut ClientTx>,
) -> Result<(), S3Error> {
    use futures_util::SinkExt;
    let mut buf: IoBuffer = engine::take_buffer();
    loop {
        let chunk = match chunks.next().await {
            Some(Ok(c)) => Some(c),
            Some(Err(e)) => {
                give_buffer(buf);
                if let Some(tx) = client {
                    let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
                }
                return Err(e.into());
            }
            None => None,
        };
        if let (Some(tx), Some(c)) = (client.as_deref_mut(), &chunk)
            && tx.send(Ok(c.to_vec())).await.is_err()
        {
            client = None;
        }
        let mut rest: &[u8] = chunk.as_deref().unwrap_or(&[]);
        loop {
            let n = (buf.capacity() - buf.len()).min(rest.len());
            buf.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
            let last = chunk.is_none() && !buf.is_empty();
            if buf.len() == buf.capacity() || last {
                let (r, mut b) = writer.write(buf).await;
                b.clear();
                buf = b;
                if let Err(e) = r {
                    give_buffer(buf);
                    return Err(e.into());
                }
            }
            if rest.is_empty() {
                break;
            }
        }
        if chunk.is_none() {
            give_buffer(buf);
            return Ok(());
        }
    }
}

/// Copies a remote object into the local store: the bytes as they arrive, checked against the
/// remote's size and (when its ETag is an MD5) its ETag; nothing is committed otherwise.
/// Writes a remote object's bytes, as they arrive, into a local copy (see `fill`).
pub(super) async fn cache(
    store: &Arc<engine::Store>,
    (bucket, key): (&str, &str),
    obj: RemoteObject,
    chunks: crate::backend::Chunks,
) -> Result<(), S3Error> {
    let writer = copy_writer(store, (bucket, key), &obj, &chunks)?;
    fill(obj, chunks, writer, None).await
}

/// A cold ranged GET's answer: the object (as the remote describes it), where the range starts,
/// its length, and its bytes as they arrive.
pub struct ColdRange {
    pub meta: ObjectMeta,
    pub start: u64,
    pub len: u64,
    pub body: crate::http::Body,
}

/// A ranged GET of a key not held here: the range is read from the remote and sent at once,
/// while the whole object is fetched into the cache in the background (one fetch per key,
/// however many ranged readers). `None`: answer it the other way (fetch the whole object, then
/// serve the range from the copy) — not a backend bucket, or a range the remote refused (an
/// unsatisfiable one gets its 416 from the copy).
pub async fn cold_range(call: &Call<'_>, range: crate::s3::range::ByteRange) -> Result<Option<ColdRange>, S3Error> {
    use crate::s3::range::ByteRange;
    let Some((agent, remote)) = remote_of(call)? else { return Ok(None) };
    if call.access.check_object(CannedAcl::Private).is_err() {
        return Ok(None);
    }
    let wanted = match range {
        ByteRange::From { first, last } => crate::backend::RemoteRange::From { first, last },
        ByteRange::Suffix(n) => crate::backend::RemoteRange::Suffix(n),
    };
    let (obj, start, len, mut chunks) = match agent.get_range(&remote, call.key(), wanted).await {
        Ok(r) => r,
        Err(e @ (RemoteError::NotFound | RemoteError::Timeout | RemoteError::BadKey)) => return Err(e.into()),
        Err(e) => {
            tracing::debug!(key = call.key(), error = %e, "ranged remote read refused; fetching the whole object");
            return Ok(None);
        }
    };
    let (store, filler, bucket, key) =
        (call.ctx.store.clone(), agent.clone(), call.bucket().to_owned(), call.key().to_owned());
    compio::runtime::spawn(async move {
        if let Err(e) = fetch_once(&store, &filler, &remote, (&bucket, &key)).await {
            tracing::warn!(key, error = %e.message, "a cold object read by range was not cached");
        }
    })
    .detach();
    let (mut tx, rx) = futures_channel::mpsc::channel(4);
    compio::runtime::spawn(async move {
        use futures_util::SinkExt;
        while let Some(chunk) = chunks.next().await {
            let item = chunk.map(|c| c.to_vec()).map_err(|e| std::io::Error::other(e.to_string()));
            let failed = item.is_err();
            if tx.send(item).await.is_err() || failed {
                return;
            }
        }
    })
    .detach();
    let body = crate::http::Body::Stream { len, chunks: rx };
    Ok(Some(ColdRange { meta: described(&obj), start, len, body }))
}

/// A writer for a copy of `obj`. When the agent hashes the MD5 (off the shard), the writer does
/// not hash it again.
fn copy_writer(
    store: &Arc<engine::Store>,
    (bucket, key): (&str, &str),
    obj: &RemoteObject,
    chunks: &crate::backend::Chunks,
) -> Result<engine::ObjectWriter, S3Error> {
    let mut writer = store.put_writer(bucket, key, Some(obj.size), None)?;
    if chunks.hashes_md5() {
        writer.data().skip_md5();
    }
    Ok(writer)
}

async fn fill(
    obj: RemoteObject,
    mut chunks: crate::backend::Chunks,
    mut writer: engine::ObjectWriter,
    client: Option<&mut ClientTx>,
) -> Result<(), S3Error> {
    copy_chunks(&mut chunks, writer.data(), client).await?;
    if writer.data().written() != obj.size {
        return Err(RemoteError::Changed.into());
    }
    let etag = obj.etag.clone().unwrap_or_default();
    let md5 = if chunks.hashes_md5() { Some(chunks.md5().await.ok_or(RemoteError::Changed)?) } else { None };
    let opts = PutOptions {
        system: SystemMeta { content_type: obj.content_type.clone(), ..Default::default() },
        content_md5: crate::backend::etag_md5(&etag),
        md5,
        remote: Some((RemoteVersion { etag, version: obj.version.clone() }, obj.mtime_ms)),
        ..Default::default()
    };
    match writer.finish(opts).await {
        Ok(_) => Ok(()),
        // The bytes are not what the remote's ETag says.
        Err(engine::Error::ChecksumMismatch { .. }) => Err(RemoteError::Changed.into()),
        Err(e) => Err(e.into()),
    }
}

/// Starts a cold read that streams to the client while the copy is written: the remote is read
/// once, the client gets each chunk as it arrives, and the flight ends (waking the readers that
/// waited) when the copy is committed, or failed. A client that leaves early does not stop the
/// copy.
async fn stream(
    call: &Call<'_>,
    agent: &Agent,
    remote: &RemoteBucket,
    flight: crate::backend::FlightGuard,
) -> Result<(ObjectMeta, crate::http::Body), S3Error> {
    let (obj, chunks) = agent.get(remote, call.key(), true).await?;
    let writer = copy_writer(&call.ctx.store, (call.bucket(), call.key()), &obj, &chunks)?;
    let (mut tx, rx) = futures_channel::mpsc::channel(4);
    let meta = described(&obj);
    let len = obj.size;
    let key = call.key().to_owned();
    compio::runtime::spawn(async move {
        let _flight = flight;
        if let Err(e) = fill(obj, chunks, writer, Some(&mut tx)).await {
            tracing::warn!(key, error = %e.message, "a cold read was not cached");
        }
    })
    .detach();
    Ok((meta, crate::http::Body::Stream { len, chunks: rx }))
}
