//! Rebalance (CLUSTER.md "Membership changes", DESIGN D35): after a membership change, every
//! member that holds data walks its index and moves each object it no longer owns to the owner.
//!
//! A move is a pull: the mover asks the owner to fetch the object (`/_keel/peer/pull`); the owner
//! copies the bytes with the same record (ETag, time, metadata, parts) and commits them only if
//! the key holds nothing — any write the owner took since the change is newer than the moved
//! copy, so it wins. Once the owner has it durably the mover deletes its own copy, a few seconds
//! later and only if unchanged (a listing that asked both nodes at slightly different moments
//! still finds the key on one of them).
//!
//! Meanwhile (while any member's `rebalance/<id>` record exists) the owner answers a GET or HEAD
//! of a key it lacks from the member that has it (get-from-neighbor), and a DELETE removes the
//! key on every member and is remembered here until the rebalance ends, so that a move in flight
//! cannot bring the key back. Listings already merge every member's keys. A member removes its
//! record after a pass that moved nothing, begun after every live member saw the change (so no
//! write under the old map can still arrive): restarts resume, since the record stays in etcd.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use engine::{ListPage, ListQuery, ObjectMeta};

use super::peer::{enc, source_meta};
use super::{Cluster, ClusterError, Node, NodeState, forward};
use crate::s3::Ctx;
use crate::s3::error::{S3Error, S3ErrorCode};

/// How long a moved copy stays on the mover after the owner has it.
const DELETE_AFTER: Duration = Duration::from_secs(3);
/// How often progress goes to etcd while moving.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);
/// Moves one member has in flight at once (each a round trip and a copy on the owner).
const MOVES_IN_FLIGHT: usize = 8;
/// The slowest a move's copy is assumed to go (its answer is awaited accordingly).
pub(super) const MOVE_BYTES_PER_SEC_MIN: u64 = 8 << 20;

/// What this node's rebalance remembers.
#[derive(Default)]
pub struct Moves {
    /// `bucket/key` deleted while a rebalance runs: a moved copy arriving later is dropped.
    deleted: Mutex<HashSet<String>>,
    /// `bucket/key` completed here after the change and not yet taken by its owner: moved with
    /// `force` (it replaces the owner's copy).
    forced: Mutex<HashSet<String>>,
}

fn name(bucket: &str, key: &str) -> String {
    format!("{bucket}/{key}")
}

impl Moves {
    fn note_deleted(&self, bucket: &str, key: &str) {
        if let Ok(mut d) = self.deleted.lock() {
            d.insert(name(bucket, key));
        }
    }

    fn was_deleted(&self, bucket: &str, key: &str) -> bool {
        self.deleted.lock().is_ok_and(|d| d.contains(&name(bucket, key)))
    }

    fn force(&self, bucket: &str, key: &str) {
        if let Ok(mut f) = self.forced.lock() {
            f.insert(name(bucket, key));
        }
    }

    fn forced(&self, bucket: &str, key: &str) -> bool {
        self.forced.lock().is_ok_and(|f| f.contains(&name(bucket, key)))
    }

    fn forced_done(&self, bucket: &str, key: &str) {
        if let Ok(mut f) = self.forced.lock() {
            f.remove(&name(bucket, key));
        }
    }

    fn forget(&self) {
        if let Ok(mut d) = self.deleted.lock()
            && !d.is_empty()
        {
            d.clear();
        }
    }
}

/// Object writes this node is executing, by epoch: a rebalance waits until every write that
/// began before a moment has finished (a grace period), so that none commits unseen after its
/// last pass.
#[derive(Default)]
pub struct Writes {
    epoch: std::sync::atomic::AtomicU64,
    active: [std::sync::atomic::AtomicU64; 2],
}

/// One write in progress (`Writes::begin`); ends when dropped.
pub struct WriteTicket<'a> {
    writes: &'a Writes,
    slot: usize,
}

impl Writes {
    /// Registers a write; take it before the write's owner is decided.
    pub fn begin(&self) -> WriteTicket<'_> {
        use std::sync::atomic::Ordering::SeqCst;
        let slot = (self.epoch.load(SeqCst) % 2) as usize;
        self.active[slot].fetch_add(1, SeqCst);
        WriteTicket { writes: self, slot }
    }

    /// Waits until every write registered before this call has ended (bounded: 10 minutes).
    pub async fn drain(&self) {
        use std::sync::atomic::Ordering::SeqCst;
        let slot = (self.epoch.fetch_add(1, SeqCst) % 2) as usize;
        let deadline = Instant::now() + Duration::from_secs(600);
        while self.active[slot].load(SeqCst) > 0 && Instant::now() < deadline {
            compio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for WriteTicket<'_> {
    fn drop(&mut self) {
        self.writes.active[self.slot].fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A member's rebalance progress: `started_ms moved_objects moved_bytes togo_objects togo_bytes
/// done`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    pub started_ms: u64,
    pub moved_objects: u64,
    pub moved_bytes: u64,
    pub togo_objects: u64,
    pub togo_bytes: u64,
    pub done: bool,
}

impl Progress {
    pub fn encode(&self) -> String {
        format!(
            "{} {} {} {} {} {}",
            self.started_ms,
            self.moved_objects,
            self.moved_bytes,
            self.togo_objects,
            self.togo_bytes,
            u8::from(self.done)
        )
    }

    /// Lenient: a malformed value reads as nothing moved.
    pub fn decode(s: &str) -> Progress {
        let n: Vec<u64> = s.split(' ').map(|v| v.parse().unwrap_or(0)).collect();
        let at = |i: usize| n.get(i).copied().unwrap_or(0);
        Progress {
            started_ms: at(0),
            moved_objects: at(1),
            moved_bytes: at(2),
            togo_objects: at(3),
            togo_bytes: at(4),
            done: at(5) == 1,
        }
    }

    /// Seconds until done at the pace so far, when known.
    pub fn eta_secs(&self, now_ms: u64) -> Option<u64> {
        let elapsed = now_ms.saturating_sub(self.started_ms).max(1);
        if self.done || self.togo_bytes == 0 {
            return Some(0);
        }
        (self.moved_bytes > 0).then(|| self.togo_bytes.saturating_mul(elapsed) / self.moved_bytes / 1000)
    }

    /// One line for people.
    pub fn line(&self) -> String {
        let eta = match self.eta_secs(crate::time::now_ms()) {
            Some(s) => format!("{s} s"),
            None => "unknown".to_owned(),
        };
        format!(
            "moved {} objects ({} bytes), {} objects ({} bytes) to go, ETA {eta}{}",
            self.moved_objects,
            self.moved_bytes,
            self.togo_objects,
            self.togo_bytes,
            if self.done { ", done" } else { "" }
        )
    }
}

/// Moves what this node holds for others whenever its `rebalance/<id>` record exists. Runs on
/// the control runtime for the life of the node.
pub async fn run(store: Arc<engine::Store>, cluster: Arc<Cluster>) {
    loop {
        compio::time::sleep(Duration::from_millis(500)).await;
        let map = cluster.map();
        if !map.rebalancing() {
            cluster.moves.forget();
            continue;
        }
        let Some(&rev) = map.rebalance.get(cluster.me()) else { continue };
        if map.nodes.iter().any(|n| n.state == NodeState::Joining) || cluster.removed() {
            continue;
        }
        drop(map);
        // No write under the map before the change may still arrive here.
        if let Err(e) = super::peer::seen_everywhere(&cluster, rev).await {
            tracing::info!(error = e, "cluster: rebalance waits for every member to see the change");
            continue;
        }
        let mut progress = Progress { started_ms: crate::time::now_ms(), ..Default::default() };
        loop {
            let before = progress.moved_objects;
            match pass(&store, &cluster, &mut progress).await {
                Ok(0) => match misplaced_uploads(&store, &cluster) {
                    // Writes this node took under the old map may still be committing: once
                    // they are done, one more look.
                    Ok(0) => {
                        cluster.writes.drain().await;
                        if misplaced(&store, &cluster).is_ok_and(|(n, _)| n == 0) {
                            break;
                        }
                    }
                    Ok(n) => {
                        tracing::info!(uploads = n, "cluster: rebalance waits for uploads begun here to end");
                        compio::time::sleep(Duration::from_secs(2)).await;
                    }
                    Err(e) => tracing::warn!(error = %e.message, "cluster: cannot list uploads"),
                },
                // Left in place (an owner down): not again at once.
                Ok(_) if progress.moved_objects == before => compio::time::sleep(Duration::from_secs(2)).await,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e.message, "cluster: rebalance pass failed; trying again");
                    compio::time::sleep(Duration::from_secs(1)).await;
                }
            }
            if cluster.map().rebalance.get(cluster.me()) != Some(&rev) {
                break;
            }
        }
        progress.done = true;
        progress.togo_objects = 0;
        progress.togo_bytes = 0;
        match cluster.agent.rebalance_done(rev, progress.encode()).await {
            Ok(true) => tracing::info!(
                objects = progress.moved_objects,
                bytes = progress.moved_bytes,
                "cluster: rebalance done here"
            ),
            Ok(false) => tracing::info!("cluster: membership changed again; rebalancing on"),
            Err(e) => tracing::warn!(error = %e, "cluster: cannot record the rebalance as done"),
        }
    }
}

/// A copy to delete once the owner has had it a while.
struct Moved {
    bucket: String,
    key: String,
    meta: ObjectMeta,
    at: Instant,
}

/// One walk over this node's objects: moves each one another member owns. Returns how many
/// objects were not in place (moved, or left for the next pass because their owner is down).
async fn pass(store: &Arc<engine::Store>, cluster: &Cluster, progress: &mut Progress) -> Result<u64, S3Error> {
    let (togo_objects, togo_bytes) = misplaced(store, cluster)?;
    progress.togo_objects = togo_objects;
    progress.togo_bytes = togo_bytes;
    let _ = cluster.agent.rebalance_progress(progress.encode()).await;
    if togo_objects == 0 {
        return Ok(0);
    }
    let rate = cluster.config.rebalance_rate;
    let mut moved: Vec<Moved> = Vec::new();
    let mut reported = Instant::now();
    let mut paced = (Instant::now(), 0u64);
    let mut outcome = Ok(togo_objects);
    for (bucket, _) in store.list_buckets() {
        // A copies bucket's keys are placed by the copies repair (`copies.rs`). A managed
        // bucket with one copy is moved here as any other (reads find its keys on the old
        // owner meanwhile); the repair only drops the extras a lowered `copies` left.
        if cluster.copies_of(&cluster.map(), &bucket) > 1 {
            continue;
        }
        for page in bucket_pages(store, &bucket) {
            let page = page?;
            // This page's objects another member owns, with their owner and record.
            let todo: Vec<(Node, String, ObjectMeta)> = {
                let map = cluster.map();
                page.entries
                    .iter()
                    .filter_map(|e| {
                        let owner = cluster.primary(&map, &bucket, &e.key)?;
                        if owner.id == cluster.me() || owner.state != NodeState::Active {
                            return None;
                        }
                        let meta = store.head_object(&bucket, &e.key).ok()?;
                        Some((owner.clone(), e.key.clone(), meta))
                    })
                    .collect()
            };
            for batch in todo.chunks(MOVES_IN_FLIGHT) {
                let moves = batch.iter().map(|(owner, key, meta)| {
                    move_one(cluster, owner, &bucket, key, meta, cluster.moves.forced(&bucket, key))
                });
                let results = futures_util::future::join_all(moves).await;
                for ((_, key, meta), result) in batch.iter().zip(results) {
                    match result {
                        Ok(()) => {
                            cluster.moves.forced_done(&bucket, key);
                            progress.moved_objects += 1;
                            progress.moved_bytes += meta.size;
                            progress.togo_objects = progress.togo_objects.saturating_sub(1);
                            progress.togo_bytes = progress.togo_bytes.saturating_sub(meta.size);
                            paced.1 += meta.size;
                            let at = Instant::now();
                            moved.push(Moved { bucket: bucket.clone(), key: key.clone(), meta: meta.clone(), at });
                        }
                        Err(err) => {
                            tracing::debug!(bucket, key, error = %err.message, "cluster: a move failed");
                            outcome = Err(err);
                        }
                    }
                }
                if rate > 0 {
                    // Pace: never ahead of `rate` bytes per second since the pass began.
                    let due = Duration::from_secs_f64(paced.1 as f64 / rate as f64);
                    if let Some(wait) = due.checked_sub(paced.0.elapsed()) {
                        compio::time::sleep(wait).await;
                    }
                }
                release(store, &mut moved, false).await;
                if reported.elapsed() >= PROGRESS_EVERY {
                    reported = Instant::now();
                    let _ = cluster.agent.rebalance_progress(progress.encode()).await;
                }
            }
        }
    }
    release(store, &mut moved, true).await;
    let _ = cluster.agent.rebalance_progress(progress.encode()).await;
    outcome
}

/// Objects (and their bytes) here that another member owns.
fn misplaced(store: &engine::Store, cluster: &Cluster) -> Result<(u64, u64), S3Error> {
    let map = cluster.map();
    let (mut objects, mut bytes) = (0, 0);
    for (bucket, _) in store.list_buckets() {
        // A copies bucket's keys this node is no holder of (the copies repair hands them over).
        let copies = cluster.copies_of(&map, &bucket);
        let misplaced = |key: &str| match copies {
            1 => cluster.primary(&map, &bucket, key).is_some_and(|o| o.id != cluster.me()),
            n => !map.holders_of(&bucket, key, n).iter().any(|h| h.id == cluster.me()),
        };
        for page in bucket_pages(store, &bucket) {
            for e in &page?.entries {
                if misplaced(&e.key) {
                    objects += 1;
                    bytes += e.size;
                }
            }
        }
    }
    Ok((objects, bytes))
}

/// The objects of `bucket` here, a page of 1000 at a time (none once the bucket is gone).
pub(super) fn bucket_pages<'a>(
    store: &'a engine::Store,
    bucket: &'a str,
) -> impl Iterator<Item = Result<ListPage, S3Error>> + 'a {
    let mut next: Option<Option<String>> = Some(None);
    std::iter::from_fn(move || {
        let after = next.take()?;
        let q = ListQuery { prefix: "", delimiter: None, after: after.as_deref(), max_keys: 1000 };
        match store.list_objects(bucket, &q) {
            Ok(page) => {
                next = page.last.clone().filter(|_| page.truncated).map(Some);
                Some(Ok(page))
            }
            Err(engine::Error::NoSuchBucket) => None,
            Err(e) => Some(Err(e.into())),
        }
    })
}

/// Deletes moved copies held long enough (all of them with `all`, waiting as needed).
async fn release(store: &engine::Store, moved: &mut Vec<Moved>, all: bool) {
    if all
        && let Some(last) = moved.last()
        && let Some(wait) = DELETE_AFTER.checked_sub(last.at.elapsed())
    {
        compio::time::sleep(wait).await;
    }
    let due = moved.iter().take_while(|m| m.at.elapsed() >= DELETE_AFTER).count();
    for m in moved.drain(..due) {
        if let Err(e) = store.delete_object_if(&m.bucket, &m.key, &m.meta).await {
            tracing::warn!(bucket = m.bucket, key = m.key, error = %e, "cluster: a moved copy stays here");
        }
    }
}

/// Has `owner` take `bucket/key` (the version `meta` describes) from this node.
async fn move_one(
    cluster: &Cluster,
    owner: &Node,
    bucket: &str,
    key: &str,
    meta: &ObjectMeta,
    force: bool,
) -> Result<(), S3Error> {
    let target = format!(
        "/_keel/peer/pull?bucket={}&key={}&from={}&etag={}{}",
        enc(bucket),
        enc(key),
        enc(cluster.me()),
        enc(&meta.etag()),
        if force { "&force=1" } else { "" }
    );
    let wait = forward::IO_TIMEOUT + Duration::from_secs(meta.size / MOVE_BYTES_PER_SEC_MIN);
    let (status, body) = forward::peer_call_within(cluster, owner, ("POST", &target, Vec::new()), wait).await?;
    let answer = String::from_utf8_lossy(&body);
    match (status, answer.trim()) {
        // Stored, or the owner has a newer write of the key (or its deletion): this copy is done.
        (200, "stored" | "exists" | "deleted") => Ok(()),
        (200, "changed") => Err(S3Error::new(S3ErrorCode::InternalError, "the object changed while moving")),
        (200, "elsewhere") => {
            Err(ClusterError::Unavailable(format!("{} does not own the key (the membership changed)", owner.id)).into())
        }
        _ => Err(ClusterError::NodeUnreachable(owner.id.clone(), format!("it answered {status}: {answer}")).into()),
    }
}

/// `/_keel/peer/pull?bucket&key&from&etag[&force=1]` on the owner: fetches the object from
/// member `from` unless this node has the key (or saw it deleted during the rebalance). With
/// `force` (an upload completed on `from` after the change: the newest write of the key) it
/// replaces whatever the key holds. A node that does not own the key (its map changed, or a
/// member is joining) takes nothing: `elsewhere`, and the mover tries again later.
pub async fn serve_pull(ctx: &Ctx, cluster: &Cluster, bucket: &str, query: &str) -> Result<String, S3Error> {
    let param = |n| super::peer::param(query, n).ok_or_else(|| S3Error::new(S3ErrorCode::InvalidRequest, n));
    let (key, from, etag) = (param("key")?, param("from")?, param("etag")?);
    let force = super::peer::param(query, "force").as_deref() == Some("1");
    let owned = || {
        let map = cluster.map();
        cluster.primary(&map, bucket, &key).is_some_and(|o| o.id == cluster.me())
            && !map.nodes.iter().any(|n| n.state == NodeState::Joining)
    };
    if !owned() {
        return Ok("elsewhere".to_owned());
    }
    if !force && cluster.moves.was_deleted(bucket, &key) {
        return Ok("deleted".to_owned());
    }
    if !force {
        match ctx.store.head_object(bucket, &key) {
            Ok(_) => return Ok("exists".to_owned()),
            Err(engine::Error::NoSuchObject) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let node = cluster.map().node(&from).cloned().ok_or_else(|| S3Error::new(S3ErrorCode::InvalidRequest, "from"))?;
    let meta = match source_meta(cluster, &node, bucket, &key).await {
        Ok(m) => m,
        Err(e) if e.code == S3ErrorCode::NoSuchKey => return Ok("changed".to_owned()),
        Err(e) => return Err(e),
    };
    if meta.etag() != etag {
        return Ok("changed".to_owned());
    }
    let import = super::peer::import_from(ctx, cluster, &node, (bucket, &key), &meta).await?;
    let condition = if force { engine::WriteCondition::Always } else { engine::WriteCondition::Absent };
    let record = match import.finish_when(condition).await {
        Ok(r) => r,
        Err(engine::Error::PreconditionFailed) => return Ok("exists".to_owned()),
        Err(e) => return Err(e.into()),
    };
    // The map changed while it was copied: not this node's to keep (the mover still has it).
    if !owned() {
        ctx.store.delete_object_if(bucket, &key, &record).await?;
        return Ok("elsewhere".to_owned());
    }
    // Deleted while it was copied: the delete found nothing here, so the copy goes now
    // (only this copy: a write since stays).
    if !force && cluster.moves.was_deleted(bucket, &key) {
        ctx.store.delete_object_if(bucket, &key, &record).await?;
        return Ok("deleted".to_owned());
    }
    Ok("stored".to_owned())
}

/// A multipart upload completed on this node for a key another member owns now (it began here
/// before the membership changed): the object goes to the owner before the client hears of it,
/// replacing what the owner holds (this completion is the key's newest write), and this copy
/// goes. If the owner cannot take it, the client is told to retry (the completion is kept: a
/// retried CompleteMultipartUpload finds it and moves it again).
pub async fn after_completion(
    ctx: &Ctx,
    cluster: &Cluster,
    bucket: &str,
    key: &str,
    meta: &ObjectMeta,
) -> Result<(), S3Error> {
    let owner = {
        let map = cluster.map();
        // A copies bucket's completion is offered to every holder by `copies::serve` (a copy
        // left here as no holder is handed over by the copies repair).
        if cluster.copies_of(&map, bucket) > 1 {
            return Ok(());
        }
        match cluster.primary(&map, bucket, key) {
            Some(o) if o.id != cluster.me() => o.clone(),
            _ => return Ok(()),
        }
    };
    cluster.moves.force(bucket, key);
    move_one(cluster, &owner, bucket, key, meta, true).await?;
    cluster.moves.forced_done(bucket, key);
    ctx.store.delete_object_if(bucket, key, meta).await?;
    Ok(())
}

/// Get-from-neighbor: this node owns `bucket/key` and lacks it while a rebalance runs — the
/// member that still has it, if any. A member that is down might: then the key is unavailable,
/// not missing.
pub async fn holder(ctx: &Ctx, cluster: &Cluster, bucket: &str, key: &str) -> Result<Option<Node>, S3Error> {
    let map = cluster.map();
    let others: Vec<Node> = map.holders().filter(|n| n.id != cluster.me()).cloned().collect();
    drop(map);
    let mut down = None;
    for n in &others {
        if n.state == NodeState::Down {
            down = Some(n.id.clone());
            continue;
        }
        match source_meta(cluster, n, bucket, key).await {
            Ok(_) => return Ok(Some(n.clone())),
            Err(e) if matches!(e.code, S3ErrorCode::NoSuchKey | S3ErrorCode::NoSuchBucket) => {}
            Err(e) => return Err(e),
        }
    }
    // Moved here while the others were asked?
    if ctx.store.head_object(bucket, key).is_ok() {
        return Ok(None);
    }
    match down {
        Some(id) => {
            Err(ClusterError::NodeUnreachable(id, "it is down and may hold the key (rebalancing)".into()).into())
        }
        None => Ok(None),
    }
}

/// The member where upload `upload_id` of `bucket/key` is (begun there before the change).
pub async fn upload_holder(
    cluster: &Cluster,
    bucket: &str,
    key: &str,
    upload_id: &str,
) -> Result<Option<Node>, S3Error> {
    let map = cluster.map();
    let others: Vec<Node> =
        map.holders().filter(|n| n.id != cluster.me() && n.state != NodeState::Down).cloned().collect();
    drop(map);
    let target = format!("/_keel/peer/upload?bucket={}&key={}&uploadId={}", enc(bucket), enc(key), enc(upload_id));
    for n in others {
        let (status, body) = forward::peer_call(cluster, &n, "GET", &target, Vec::new()).await?;
        if status == 200 && body == b"yes" {
            return Ok(Some(n));
        }
    }
    Ok(None)
}

/// `/_keel/peer/upload?bucket&key&uploadId`: `yes` when the upload is in progress here.
pub fn serve_upload(ctx: &Ctx, bucket: &str, query: &str) -> Result<String, S3Error> {
    let param = |n| super::peer::param(query, n).ok_or_else(|| S3Error::new(S3ErrorCode::InvalidRequest, n));
    let (key, id) = (param("key")?, param("uploadId")?);
    Ok(if ctx.store.upload(bucket, &key, &id).is_ok() { "yes" } else { "no" }.to_owned())
}

/// Uploads in progress here whose key another member owns: the rebalance waits for them to
/// complete (the object then moves) or be aborted.
fn misplaced_uploads(store: &engine::Store, cluster: &Cluster) -> Result<u64, S3Error> {
    let map = cluster.map();
    let mut n = 0;
    for (bucket, _) in store.list_buckets() {
        let (mut key_marker, mut id_marker): (Option<String>, Option<String>) = (None, None);
        loop {
            let q = engine::UploadQuery {
                prefix: "",
                delimiter: None,
                key_marker: key_marker.as_deref(),
                upload_id_marker: id_marker.as_deref(),
                max_uploads: 1000,
            };
            let page = match store.list_uploads(&bucket, &q) {
                Ok(p) => p,
                Err(engine::Error::NoSuchBucket) => break,
                Err(e) => return Err(e.into()),
            };
            n += page
                .uploads
                .iter()
                .filter(|u| cluster.primary(&map, &bucket, &u.key).is_some_and(|o| o.id != cluster.me()))
                .count() as u64;
            if !page.truncated || page.next_key_marker.is_none() {
                break;
            }
            (key_marker, id_marker) = (page.next_key_marker.clone(), page.next_upload_id_marker.clone());
        }
    }
    Ok(n)
}

/// Where a copy's source `bucket/key` is read: `None` here, else the member that has it (its
/// owner; while a rebalance runs, whichever member still has it).
pub async fn source_holder(ctx: &Ctx, cluster: &Cluster, bucket: &str, key: &str) -> Result<Option<Node>, S3Error> {
    let (owner, rebalancing) = {
        let map = cluster.map();
        (cluster.primary(&map, bucket, key).cloned(), map.rebalancing())
    };
    let here = |ctx: &Ctx| ctx.store.head_object(bucket, key).is_ok();
    match owner {
        Some(o) if o.id != cluster.me() => {
            if !rebalancing || source_meta(cluster, &o, bucket, key).await.is_ok() {
                return Ok(Some(o));
            }
            // Not on its owner yet: here, or wherever it is (else the owner says it is missing).
            if here(ctx) {
                return Ok(None);
            }
            Ok(Some(holder(ctx, cluster, bucket, key).await?.unwrap_or(o)))
        }
        _ if rebalancing && !here(ctx) => holder(ctx, cluster, bucket, key).await,
        _ => Ok(None),
    }
}

/// A delete of keys this node owns while a rebalance runs: remembered (a move in flight must not
/// bring them back), then removed on every other member that may hold a copy. An error when a
/// member cannot be reached: the delete is not done.
pub async fn delete_elsewhere(cluster: &Cluster, bucket: &str, keys: &[&str]) -> Result<(), S3Error> {
    let map = cluster.map();
    if !map.rebalancing() || keys.is_empty() {
        return Ok(());
    }
    for k in keys {
        cluster.moves.note_deleted(bucket, k);
    }
    let others: Vec<Node> = map.holders().filter(|n| n.id != cluster.me()).cloned().collect();
    drop(map);
    let body: String = keys.iter().map(|k| enc(k) + "\n").collect();
    let target = format!("/_keel/peer/drop?bucket={}", enc(bucket));
    for n in &others {
        if n.state == NodeState::Down {
            return Err(ClusterError::NodeUnreachable(n.id.clone(), "it is down and may hold a copy".into()).into());
        }
        let (status, answer) = forward::peer_call(cluster, n, "POST", &target, body.clone().into_bytes()).await?;
        if status != 200 {
            let why = String::from_utf8_lossy(&answer).into_owned();
            return Err(ClusterError::NodeUnreachable(n.id.clone(), format!("it answered {status}: {why}")).into());
        }
    }
    Ok(())
}

/// `/_keel/peer/drop?bucket`: removes this node's copies of the listed keys (one per line),
/// whoever owns them.
pub async fn serve_drop(ctx: &Ctx, bucket: &str, body: Vec<u8>) -> Result<String, S3Error> {
    let text = String::from_utf8(body).map_err(|_| S3Error::code(S3ErrorCode::InvalidRequest))?;
    let keys: Vec<String> = text.lines().filter_map(super::peer::dec).collect();
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    // Under the keys' locks: a copy being taken here (`copies::serve_replica`) is committed
    // first, then removed.
    let _lock = ctx.store.lock_keys(bucket, &refs).await;
    for r in ctx.store.delete_objects(bucket, &refs).await {
        if let Err(e) = r {
            return Err(e.into());
        }
    }
    Ok("ok".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_round_trips_and_reads_leniently() {
        let p = Progress {
            started_ms: 1000,
            moved_objects: 3,
            moved_bytes: 300,
            togo_objects: 1,
            togo_bytes: 600,
            done: false,
        };
        assert_eq!(Progress::decode(&p.encode()), p);
        // 300 bytes in 1 s: 600 more take 2 s.
        assert_eq!(p.eta_secs(2000), Some(2));
        assert_eq!(Progress::decode("junk"), Progress::default());
        assert!(Progress { done: true, ..p }.line().ends_with(", done"));
    }
}
