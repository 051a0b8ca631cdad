//! The backend agent: one thread running a tokio runtime for `object_store`. Shards call its
//! methods, which spawn the remote call there and await a oneshot or a bounded channel, each
//! bounded in time by the backend timeout; a call that outlives it is aborted.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use engine::RemoteBucket;
use futures_channel::{mpsc, oneshot};
use futures_util::{SinkExt, StreamExt};
use object_store::path::Path;
use object_store::{Attribute, Attributes, GetOptions, ObjectStore, ObjectStoreExt, PutPayload};

use super::{BackendConfig, BackendStats, Flights, RemoteError, RemoteListQuery, RemoteObject, RemotePage};

/// Chunks in flight between the agent and a shard, each way.
const CHANNEL_CHUNKS: usize = 4;
/// Bodies up to this size go to the remote in one PUT; larger ones as a multipart upload.
const SINGLE_PUT_BYTES_MAX: u64 = 16 << 20;
/// Keys of one common prefix read and passed over before a listing skips past the prefix (a new
/// remote listing starting after it): one remote page.
const SKIP_AFTER_KEYS: usize = 1000;
/// Appended to a common prefix, sorts after every key under it (U+10FFFF is the largest code
/// point; a key with it right after the prefix would be skipped too — a noncharacter, not used).
const PAST_EVERY_KEY: char = '\u{10FFFF}';
/// Part size of multipart uploads to the remote.
const REMOTE_PART_BYTES: usize = 16 << 20;

pub struct Agent {
    rt: tokio::runtime::Runtime,
    pub(super) backends: HashMap<String, BackendConfig>,
    clients: Mutex<HashMap<(String, String), Arc<dyn ObjectStore>>>,
    pub(super) stats: std::collections::BTreeMap<String, BackendStats>,
    flights: Arc<Flights>,
    timeout: Duration,
    /// Plain HTTP for presigned requests passed through as they were signed (`forward.rs`).
    pub(super) http: reqwest::Client,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent").field("backends", &self.backends.keys()).field("timeout", &self.timeout).finish()
    }
}

/// The bytes of a remote object, as they arrive.
pub struct Chunks {
    rx: mpsc::Receiver<Result<Bytes, RemoteError>>,
    timeout: Duration,
    /// The MD5 of the bytes, hashed on the agent's thread as they arrive (off the shard), when
    /// the remote's ETag is one to check it against.
    md5: Option<oneshot::Receiver<[u8; 16]>>,
}

impl Chunks {
    /// The next chunk; `None` at the end. A remote that stalls for the timeout is an error.
    pub async fn next(&mut self) -> Option<Result<Bytes, RemoteError>> {
        match compio::time::timeout(self.timeout, self.rx.next()).await {
            Ok(c) => c,
            Err(_) => Some(Err(RemoteError::Timeout)),
        }
    }

    /// After the last chunk: the MD5 of all of them, if it was asked for (`get` with `md5`).
    pub async fn md5(&mut self) -> Option<[u8; 16]> {
        self.md5.take()?.await.ok()
    }

    /// Whether `md5` will answer.
    pub fn hashes_md5(&self) -> bool {
        self.md5.is_some()
    }
}

pub(super) enum Piece {
    Data(Bytes),
    End,
}

/// Where a write-through PUT's body goes, chunk by chunk; `finish` waits for the remote's answer.
pub struct BodySink {
    pub(super) tx: mpsc::Sender<Piece>,
    pub(super) done: oneshot::Receiver<Result<RemoteObject, RemoteError>>,
    pub(super) timeout: Duration,
    /// Why the remote's side ended early, once a `send` found out.
    pub(super) failed: Option<RemoteError>,
}

impl BodySink {
    pub async fn send(&mut self, bytes: &[u8]) -> Result<(), RemoteError> {
        let send = self.tx.send(Piece::Data(Bytes::copy_from_slice(bytes)));
        match compio::time::timeout(self.timeout, send).await {
            Ok(Ok(())) => Ok(()),
            // The agent's task ended early: its answer says why.
            Ok(Err(_)) => Err(self.failure().await),
            Err(_) => Err(RemoteError::Timeout),
        }
    }

    async fn failure(&mut self) -> RemoteError {
        let e = match compio::time::timeout(self.timeout, &mut self.done).await {
            Ok(Ok(Err(e))) => e,
            Ok(Ok(Ok(_))) => RemoteError::Unavailable("the remote upload ended early".into()),
            Ok(Err(_)) => RemoteError::Unavailable("backend agent stopped".into()),
            Err(_) => RemoteError::Timeout,
        };
        self.failed = Some(e.clone());
        e
    }

    /// Why the remote's side ended before the body did, if it did (a refusal to relay).
    pub fn failed(&self) -> Option<&RemoteError> {
        self.failed.as_ref()
    }

    /// Ends the body and waits for the remote to have it whole.
    pub async fn finish(mut self) -> Result<RemoteObject, RemoteError> {
        // The task may be gone already: failed (its answer says why), or, for a request whose
        // length was announced, answered once the remote had every byte.
        let _ = self.tx.send(Piece::End).await;
        match compio::time::timeout(self.timeout, &mut self.done).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(RemoteError::Unavailable("backend agent stopped".into())),
            Err(_) => Err(RemoteError::Timeout),
        }
    }
}

impl Drop for BodySink {
    fn drop(&mut self) {
        // Unfinished: the remote upload is abandoned (a multipart upload is aborted by the
        // task when its channel closes without an end).
        self.tx.close_channel();
    }
}

/// `key` as an `object_store` path, if it names the same key there.
fn path(key: &str) -> Result<Path, RemoteError> {
    let p = Path::parse(key).map_err(|_| RemoteError::BadKey)?;
    if p.as_ref() != key {
        return Err(RemoteError::BadKey);
    }
    Ok(p)
}

pub(super) fn remote_error(e: object_store::Error) -> RemoteError {
    match e {
        object_store::Error::NotFound { .. } => RemoteError::NotFound,
        object_store::Error::PermissionDenied { source, .. } | object_store::Error::Unauthenticated { source, .. } => {
            RemoteError::Denied(source.to_string())
        }
        object_store::Error::Precondition { .. } | object_store::Error::NotModified { .. } => RemoteError::Changed,
        object_store::Error::NotSupported { .. } | object_store::Error::NotImplemented { .. } => {
            RemoteError::NotSupported("the backend's provider cannot do this")
        }
        other => RemoteError::Unavailable(other.to_string()),
    }
}

fn remote_object(meta: &object_store::ObjectMeta, attributes: Option<&Attributes>) -> RemoteObject {
    let content_type = attributes.and_then(|a| a.get(&Attribute::ContentType)).map(|v| v.as_ref().to_owned());
    RemoteObject {
        key: meta.location.as_ref().to_owned(),
        size: meta.size,
        mtime_ms: meta.last_modified.timestamp_millis().max(0) as u64,
        etag: meta.e_tag.as_ref().map(|e| e.trim_matches('"').to_owned()),
        version: meta.version.clone(),
        content_type,
    }
}

/// How a write-through PUT is made: a conditional one is a single PUT the remote decides whole.
fn put_mode(condition: super::RemoteCondition, size: Option<u64>) -> Result<object_store::PutMode, RemoteError> {
    use super::RemoteCondition as C;
    Ok(match condition {
        C::Always => object_store::PutMode::Overwrite,
        _ if size.is_none_or(|s| s > SINGLE_PUT_BYTES_MAX) => {
            return Err(RemoteError::NotSupported(
                "a conditional write to a backend bucket of more than 16 MiB (or of unknown size) is not implemented",
            ));
        }
        C::Absent => object_store::PutMode::Create,
        C::Matches(etag) => object_store::PutMode::Update(object_store::UpdateVersion {
            e_tag: Some(format!("\"{etag}\"")),
            version: None,
        }),
    })
}

/// A PUT's failure: a refused condition is the write's answer, not the remote's failure.
fn put_error(e: object_store::Error) -> RemoteError {
    match e {
        object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. } => {
            RemoteError::ConditionFailed
        }
        e => remote_error(e),
    }
}

impl Agent {
    /// Starts the agent thread. With no backend configured nothing is started.
    pub fn start(backends: Vec<BackendConfig>, timeout: Duration) -> std::io::Result<Option<Arc<Agent>>> {
        if backends.is_empty() {
            return Ok(None);
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("keel-backend")
            .enable_all()
            .build()?;
        let stats = backends.iter().map(|b| (b.name.clone(), BackendStats::default())).collect();
        let backends = backends.into_iter().map(|b| (b.name.clone(), b)).collect();
        let http = {
            let _guard = rt.enter();
            reqwest::Client::builder()
                .connect_timeout(timeout.min(Duration::from_secs(5)))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(std::io::Error::other)?
        };
        Ok(Some(Arc::new(Agent {
            http,
            rt,
            backends,
            clients: Mutex::new(HashMap::new()),
            stats,
            flights: Arc::new(Flights::default()),
            timeout,
        })))
    }

    /// Cold reads in flight, one per key.
    pub fn flights(&self) -> &Arc<Flights> {
        &self.flights
    }

    pub(super) fn spawn<F: Future<Output = ()> + Send + 'static>(&self, fut: F) {
        self.rt.spawn(fut);
    }

    /// The bound on one remote call.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Whether `key` names the same key on a remote (object_store cannot name `a//b`, `.`, …).
    pub fn nameable(&self, key: &str) -> Result<(), RemoteError> {
        path(key).map(|_| ())
    }

    pub fn has(&self, name: &str) -> bool {
        self.backends.contains_key(name)
    }

    /// Configured backends and their counters, by name.
    pub fn stats(&self) -> impl Iterator<Item = (&str, &BackendStats)> {
        self.stats.iter().map(|(n, s)| (n.as_str(), s))
    }

    fn client(&self, remote: &RemoteBucket) -> Result<Arc<dyn ObjectStore>, RemoteError> {
        let cfg =
            self.backends.get(&remote.backend).ok_or_else(|| RemoteError::NoSuchBackend(remote.backend.clone()))?;
        let key = (remote.backend.clone(), remote.bucket.clone());
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = clients.get(&key) {
            return Ok(c.clone());
        }
        // Building a client reads the environment and makes no request.
        let _guard = self.rt.enter();
        let c = cfg.client(&remote.bucket, self.timeout)?;
        clients.insert(key, c.clone());
        Ok(c)
    }

    fn account(&self, remote: &RemoteBucket, ok: bool) {
        if let Some(s) = self.stats.get(&remote.backend) {
            s.requests.fetch_add(1, Ordering::Relaxed);
            let now = crate::time::now_ms();
            if ok {
                s.last_ok_ms.store(now, Ordering::Relaxed);
            } else {
                s.errors.fetch_add(1, Ordering::Relaxed);
                s.last_error_ms.store(now, Ordering::Relaxed);
            }
        }
    }

    /// Runs `fut` on the agent, bounded by the timeout (then aborted).
    pub(super) async fn run<T: Send + 'static>(
        &self,
        remote: &RemoteBucket,
        fut: impl Future<Output = Result<T, RemoteError>> + Send + 'static,
    ) -> Result<T, RemoteError> {
        let (tx, rx) = oneshot::channel();
        let task = self.rt.spawn(async move {
            let _ = tx.send(fut.await);
        });
        let r = match compio::time::timeout(self.timeout, rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(RemoteError::Unavailable("backend agent stopped".into())),
            Err(_) => {
                task.abort();
                Err(RemoteError::Timeout)
            }
        };
        // A missing object is an answer, not a failure of the backend.
        self.account(remote, r.is_ok() || r.as_ref().err() == Some(&RemoteError::NotFound));
        r
    }

    /// The remote object's description, without its bytes.
    pub async fn head(&self, remote: &RemoteBucket, key: &str) -> Result<RemoteObject, RemoteError> {
        let (client, path) = (self.client(remote)?, path(key)?);
        self.run(remote, async move {
            let r =
                client.get_opts(&path, GetOptions { head: true, ..Default::default() }).await.map_err(remote_error)?;
            Ok(remote_object(&r.meta, Some(&r.attributes)))
        })
        .await
    }

    /// Starts reading a remote object: its description, then its bytes as they arrive; with
    /// `md5`, the agent also hashes them (see `Chunks::md5`) when the remote's ETag looks like an
    /// MD5 (32 hex digits), so the shard need not.
    pub async fn get(
        &self,
        remote: &RemoteBucket,
        key: &str,
        md5: bool,
    ) -> Result<(RemoteObject, Chunks), RemoteError> {
        let (client, path) = (self.client(remote)?, path(key)?);
        let in_flight = self.backends.get(&remote.backend).map_or(0, |b| b.table.parallel_reads);
        let (tx, rx) = mpsc::channel(CHANNEL_CHUNKS);
        let (md5_tx, md5_rx) = oneshot::channel();
        let (obj, hashing) = self
            .run(remote, async move {
                let r = client.get_opts(&path, GetOptions::default()).await.map_err(remote_error)?;
                let obj = remote_object(&r.meta, Some(&r.attributes));
                let hashing = md5 && obj.etag.as_deref().and_then(super::etag_md5).is_some();
                let hasher = hashing.then(|| (fast_md5::Md5::new(), md5_tx));
                if in_flight > 0 && obj.size >= super::blob::PARALLEL_BYTES_MIN {
                    // Large: this answer carries the first part, ranged reads the rest at once.
                    let etag = r.meta.e_tag.clone();
                    let source = super::blob::Source { client, path, size: obj.size, etag, in_flight };
                    tokio::spawn(super::blob::download(source, r.into_stream(), tx, hasher));
                } else {
                    tokio::spawn(super::blob::forward_chunks(r.into_stream(), remote_error, tx, hasher));
                }
                Ok((obj, hashing))
            })
            .await?;
        if let Some(s) = self.stats.get(&remote.backend) {
            s.bytes_in.fetch_add(obj.size, Ordering::Relaxed);
        }
        Ok((obj, self.chunks(rx, hashing.then_some(md5_rx))))
    }

    /// Starts reading a byte range of a remote object: the object's description (its whole
    /// size), where the range starts and how long it is, then its bytes as they arrive.
    pub async fn get_range(
        &self,
        remote: &RemoteBucket,
        key: &str,
        range: super::RemoteRange,
    ) -> Result<(RemoteObject, u64, u64, Chunks), RemoteError> {
        let (client, path) = (self.client(remote)?, path(key)?);
        let (tx, rx) = mpsc::channel(CHANNEL_CHUNKS);
        let range = match range {
            super::RemoteRange::From { first, last: Some(last) } => {
                object_store::GetRange::Bounded(first..last.saturating_add(1))
            }
            super::RemoteRange::From { first, last: None } => object_store::GetRange::Offset(first),
            super::RemoteRange::Suffix(n) => object_store::GetRange::Suffix(n),
        };
        let (obj, got) = self
            .run(remote, async move {
                let opts = GetOptions { range: Some(range), ..Default::default() };
                let r = client.get_opts(&path, opts).await.map_err(remote_error)?;
                let obj = remote_object(&r.meta, Some(&r.attributes));
                let got = r.range.clone();
                tokio::spawn(super::blob::forward_chunks(r.into_stream(), remote_error, tx, None));
                Ok((obj, got))
            })
            .await?;
        if let Some(s) = self.stats.get(&remote.backend) {
            s.bytes_in.fetch_add(got.end - got.start, Ordering::Relaxed);
        }
        Ok((obj, got.start, got.end - got.start, self.chunks(rx, None)))
    }

    pub(super) fn chunks(
        &self,
        rx: mpsc::Receiver<Result<Bytes, RemoteError>>,
        md5: Option<oneshot::Receiver<[u8; 16]>>,
    ) -> Chunks {
        Chunks { rx, timeout: self.timeout, md5 }
    }

    /// Starts a PUT to the remote: feed the body to the sink, then `finish` it.
    pub fn put(
        &self,
        remote: &RemoteBucket,
        key: &str,
        size: Option<u64>,
        (content_type, user): (Option<String>, Vec<(String, String)>),
        condition: super::RemoteCondition,
    ) -> Result<BodySink, RemoteError> {
        let (client, path) = (self.client(remote)?, path(key)?);
        if self.backends.get(&remote.backend).is_some_and(|b| b.provider == super::Provider::Http) {
            return Err(RemoteError::NotSupported("an http backend is read-only"));
        }
        let mode = put_mode(condition, size)?;
        let (tx, mut rx) = mpsc::channel::<Piece>(CHANNEL_CHUNKS);
        let (done_tx, done) = oneshot::channel();
        let mut attributes = Attributes::new();
        if let Some(ct) = content_type {
            attributes.insert(Attribute::ContentType, ct.into());
        }
        for (k, v) in user {
            attributes.insert(Attribute::Metadata(k.into()), v.into());
        }
        if let Some(s) = self.stats.get(&remote.backend) {
            s.bytes_out.fetch_add(size.unwrap_or(0), Ordering::Relaxed);
        }
        self.rt.spawn(async move {
            let r = async {
                let opts = object_store::PutOptions { attributes: attributes.clone(), mode, ..Default::default() };
                if size.is_some_and(|s| s <= SINGLE_PUT_BYTES_MAX) {
                    let mut chunks = Vec::new();
                    loop {
                        match rx.next().await {
                            Some(Piece::Data(b)) => chunks.push(b),
                            Some(Piece::End) => break,
                            None => return Err(RemoteError::Unavailable("the body ended early".into())),
                        }
                    }
                    let put = client.put_opts(&path, PutPayload::from_iter(chunks), opts).await.map_err(put_error)?;
                    return Ok((put.e_tag, put.version));
                }
                let mopts = object_store::PutMultipartOptions { attributes, ..Default::default() };
                let upload = client.put_multipart_opts(&path, mopts).await.map_err(remote_error)?;
                let mut w = object_store::WriteMultipart::new_with_chunk_size(upload, REMOTE_PART_BYTES);
                loop {
                    match rx.next().await {
                        Some(Piece::Data(b)) => {
                            w.wait_for_capacity(2).await.map_err(remote_error)?;
                            w.write(&b);
                        }
                        Some(Piece::End) => break,
                        None => {
                            let _ = w.abort().await;
                            return Err(RemoteError::Unavailable("the body ended early".into()));
                        }
                    }
                }
                let put = w.finish().await.map_err(remote_error)?;
                Ok((put.e_tag, put.version))
            }
            .await;
            let _ = done_tx.send(r.map(|(etag, version)| RemoteObject {
                key: path.as_ref().to_owned(),
                size: 0,
                mtime_ms: crate::time::now_ms(),
                etag: etag.map(|e| e.trim_matches('"').to_owned()),
                version,
                content_type: None,
            }));
        });
        Ok(BodySink { tx, done, timeout: self.timeout, failed: None })
    }

    /// Deletes a remote object; one that is not there is deleted already.
    pub async fn delete(&self, remote: &RemoteBucket, key: &str) -> Result<(), RemoteError> {
        let (client, path) = (self.client(remote)?, path(key)?);
        if self.backends.get(&remote.backend).is_some_and(|b| b.provider == super::Provider::Http) {
            return Err(RemoteError::NotSupported("an http backend is read-only"));
        }
        self.run(remote, async move {
            match client.delete(&path).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(remote_error(e)),
            }
        })
        .await
    }

    /// One page of the remote's listing.
    pub async fn list(&self, remote: &RemoteBucket, q: RemoteListQuery) -> Result<RemotePage, RemoteError> {
        let client = self.client(remote)?;
        // `object_store` lists by directory: list the prefix's directory, keep the prefix.
        let dir = match q.prefix.rfind('/') {
            Some(i) => Some(path(&q.prefix[..i]).map_err(|_| RemoteError::BadKey)?),
            None => None,
        };
        self.run(remote, async move {
            let offset = q
                .start_after
                .as_deref()
                .filter(|s| *s >= q.prefix.as_str())
                .map(|s| Path::parse(s).unwrap_or_else(|_| Path::from(s)));
            let mut stream = match &offset {
                Some(o) => client.list_with_offset(dir.as_ref(), o),
                None => client.list(dir.as_ref()),
            };
            let mut page = RemotePage::default();
            // Keys passed over under the latest common prefix: past a remote page of them, the
            // listing restarts after the prefix instead of reading every key beneath it.
            let mut passed_over = 0usize;
            while let Some(m) = stream.next().await {
                let m = m.map_err(remote_error)?;
                let key = m.location.as_ref();
                if !key.starts_with(&q.prefix) || q.start_after.as_deref().is_some_and(|s| key <= s) {
                    continue;
                }
                let rolled = q.delimiter.as_deref().filter(|d| !d.is_empty()).and_then(|d| {
                    key[q.prefix.len()..].find(d).map(|i| key[..q.prefix.len() + i + d.len()].to_owned())
                });
                let entry_count = page.objects.len() + page.common_prefixes.len();
                match rolled {
                    Some(cp) => {
                        if page.common_prefixes.last() == Some(&cp)
                            || q.start_after.as_deref().is_some_and(|s| s.starts_with(&cp))
                        {
                            passed_over += 1;
                            if passed_over >= SKIP_AFTER_KEYS
                                && let Ok(past) = Path::parse(format!("{cp}{PAST_EVERY_KEY}"))
                            {
                                stream = client.list_with_offset(dir.as_ref(), &past);
                                passed_over = 0;
                            }
                            continue;
                        }
                        passed_over = 0;
                        if entry_count == q.max_keys {
                            page.truncated = true;
                            break;
                        }
                        page.common_prefixes.push(cp);
                    }
                    None => {
                        if entry_count == q.max_keys {
                            page.truncated = true;
                            break;
                        }
                        page.objects.push(remote_object(&m, None));
                    }
                }
            }
            Ok(page)
        })
        .await
    }
}
