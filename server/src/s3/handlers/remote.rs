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
    let Some(remote) = call.ctx.store.bucket(call.bucket())?.backend else {
        return Ok(None);
    };
    match &call.ctx.config.backends {
        Some(agent) if agent.has(&remote.backend) => Ok(Some((agent.clone(), remote))),
        _ => Err(RemoteError::NoSuchBackend(remote.backend).into()),
    }
}

/// Refuses what a backend bucket cannot do yet (501), before anything is read or written: a
/// copy or multipart upload that would land only locally must never answer 200.
pub fn supports(call: &Call<'_>) -> Result<(), S3Error> {
    use crate::s3::op::Op;
    let name = match &call.route.op {
        Op::CopyObject => "CopyObject",
        Op::CreateMultipartUpload => "CreateMultipartUpload",
        Op::UploadPart(_) => "UploadPart",
        Op::UploadPartCopy(_) => "UploadPartCopy",
        Op::CompleteMultipartUpload { .. } => "CompleteMultipartUpload",
        _ => return Ok(()),
    };
    if call.route.bucket.is_some() && remote_of(call)?.is_some() {
        return Err(S3Error::new(
            crate::s3::error::S3ErrorCode::NotImplemented,
            format!("{name} in a backend bucket is not implemented yet."),
        ));
    }
    Ok(())
}

/// What a read of a key missing locally found.
pub enum Miss {
    /// Not a backend bucket, or the caller may not read its objects: the local answer stands.
    Local,
    /// Now cached: look again.
    Cached,
    /// A HEAD: the remote's description, not cached.
    Remote(Box<ObjectMeta>),
}

/// A GET or HEAD of a key the local store does not have.
pub async fn on_miss(call: &Call<'_>, head: bool) -> Result<Miss, S3Error> {
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
    match agent.flights.join(call.bucket(), call.key()) {
        Flight::Wait(done) => {
            // Someone else is fetching it; whatever they got, look again (a failed fetch leaves
            // nothing, and the caller's next miss fetches anew).
            let _ = compio::time::timeout(agent.timeout * 4, done).await;
        }
        Flight::Lead(_flight) => {
            // It may have landed between our miss and the flight.
            if call.ctx.store.lookup(call.bucket(), call.key()).is_err() {
                fetch(call, &agent, &remote).await?;
            }
        }
    }
    Ok(Miss::Cached)
}

/// A remote object as a record, for answering a HEAD without caching it.
fn described(obj: &RemoteObject) -> ObjectMeta {
    ObjectMeta {
        size: obj.size,
        mtime_ms: obj.mtime_ms,
        md5: [0; 16],
        etag_parts: 0,
        stored_checksum: engine::StoredChecksum { kind: engine::ChecksumKind::None, value: Vec::new() },
        system: SystemMeta { content_type: obj.content_type.clone(), ..Default::default() },
        user: Vec::new(),
        flex_checksum: None,
        data: engine::DataLoc::Inline(Vec::new()),
        acl: CannedAcl::Private,
        epoch: 0,
        upload_id: None,
        remote: Some(RemoteVersion { etag: obj.etag.clone().unwrap_or_default(), version: obj.version.clone() }),
    }
}

/// The MD5 a remote ETag states, when it is one (a single-part S3 object's).
fn etag_md5(etag: &str) -> Option<[u8; 16]> {
    let mut out = [0u8; 16];
    hex::decode_to_slice(etag, &mut out).ok()?;
    Some(out)
}

/// Writes the chunks as they arrive, in whole pooled buffers.
async fn copy_chunks(chunks: &mut crate::backend::Chunks, writer: &mut engine::DataWriter) -> Result<(), S3Error> {
    let mut buf: IoBuffer = engine::take_buffer();
    loop {
        let chunk = match chunks.next().await {
            Some(Ok(c)) => Some(c),
            Some(Err(e)) => {
                give_buffer(buf);
                return Err(e.into());
            }
            None => None,
        };
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
async fn fetch(call: &Call<'_>, agent: &Agent, remote: &RemoteBucket) -> Result<(), S3Error> {
    let (obj, mut chunks) = agent.get(remote, call.key()).await?;
    let store = call.ctx.store.clone();
    let mut writer = store.put_writer(call.bucket(), call.key(), Some(obj.size), None)?;
    copy_chunks(&mut chunks, writer.data()).await?;
    if writer.data().written() != obj.size {
        return Err(RemoteError::Changed.into());
    }
    let etag = obj.etag.clone().unwrap_or_default();
    let opts = PutOptions {
        system: SystemMeta { content_type: obj.content_type.clone(), ..Default::default() },
        content_md5: etag_md5(&etag),
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
