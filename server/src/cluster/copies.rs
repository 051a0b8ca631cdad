//! Copies on distinct nodes (issue 15, DESIGN D38): a bucket with `copies = N` (its prop, or the
//! nodes' `--copies`) keeps each object on the first N live, reconciled members of the key's
//! HRW order (`ClusterMap::holders_of`); the first of them, the primary, takes the key's
//! requests.
//!
//! - A write commits on the primary, which then has every other holder take the same version
//!   (`/_keel/peer/replica`: the holder pulls the bytes and commits them with the same record,
//!   only over an older one), all under the key's lock; the client hears 200 only once every
//!   live holder has it durably, else 503 (the write is kept where it landed and the repair
//!   completes it).
//! - A delete removes the primary's copy, then the other holders' (each under the key's lock
//!   there, as is every copy a holder takes: a copy pulled before the delete is removed by it,
//!   one asked for after finds nothing to pull). A delete that fails on a holder is 503; the
//!   repair may then bring the key back (it was not acknowledged).
//! - A read the primary cannot serve (it lacks the key, or is unreachable) goes to another
//!   holder.
//! - The repair (`run`): after each membership change and every `REPAIR_EVERY`, each member
//!   walks its keys of copies buckets: as primary it gives the other holders what they lack or
//!   hold older; as another holder it gives the primary what it lacks; holding a key it is no
//!   holder of (its holders came back), it gives it to the primary and drops its own. Each
//!   member reports how many objects it, as primary, left short (`repair/<id>`).
//! - A member that (re)registers is `reconciling` (`reconcile/<id>`, written with its lease):
//!   holders skip it, and it drops every copy the key's primary does not hold identically (a
//!   delete or overwrite it missed while away) before it holds copies again.

use std::sync::Arc;
use std::time::{Duration, Instant};

use engine::ObjectMeta;

use super::peer::{dec, enc, param, source_meta};
use super::{Cluster, ClusterError, ClusterMap, Node, forward};
use crate::s3::Ctx;
use crate::s3::error::{S3Error, S3ErrorCode};
use crate::s3::op::{Op, Route};

/// How often a repair pass runs when nothing changed.
const REPAIR_EVERY: Duration = Duration::from_secs(30);
/// How soon a pass that left objects short (or failed) runs again.
const REPAIR_RETRY: Duration = Duration::from_secs(2);
/// Copies one member offers at once.
const OFFERS_IN_FLIGHT: usize = 8;
/// Keys one `have` request asks about: the peer answers it on a shard, in one go, so a long
/// list would hold that shard's foreground requests up (about a microsecond per key).
const HAVE_KEYS_MAX: usize = 64;
/// Objects up to this size travel in the offer itself (one round trip); larger ones are pulled
/// by the holder (streamed, any size).
const PUSH_BYTES_MAX: u64 = 256 << 10;

/// A version's order: later modification time wins, then the larger ETag.
type Version = (u64, String);
/// What a member holds of a key: the version and `ObjectMeta::attrs_code` (its ACL and tags: a
/// change of those keeps the version, and only the key's primary decides it).
type Held = (Version, u64);

fn version(meta: &ObjectMeta) -> Version {
    (meta.mtime_ms, meta.etag())
}

/// How many copies `bucket` wants (more than one: this module's business).
fn wanted(cluster: &Cluster, map: &ClusterMap, bucket: &str) -> usize {
    cluster.copies_of(map, bucket)
}

/// Operations whose success creates a new version of the key (copied to the other holders).
fn creates(op: &Op) -> bool {
    matches!(
        op,
        Op::PutObject
            | Op::CopyObject
            | Op::CompleteMultipartUpload { .. }
            | Op::PutObjectAcl
            | Op::PutObjectTagging
            | Op::DeleteObjectTagging
    )
}

/// Runs the handler of a request served here, as the key's primary: a write or delete of a
/// copies bucket's object under the key's lock, a new version copied to the other holders
/// before the answer goes. (An upload's parts are not locked: parts of one key go in parallel.)
pub async fn serve<F>(ctx: &Ctx, cluster: &Cluster, route: &Route, handler: F) -> Result<crate::http::Response, S3Error>
where
    F: std::future::Future<Output = Result<crate::http::Response, S3Error>>,
{
    let (Some(bucket), Some(key)) = (&route.bucket, &route.key) else { return handler.await };
    let changes = creates(&route.op) || matches!(route.op, Op::DeleteObject);
    let upload = matches!(route.op, Op::UploadPart(_) | Op::UploadPartCopy(_) | Op::AbortMultipartUpload { .. });
    if !(changes || upload) || !cluster.copies_managed(&cluster.map(), bucket) {
        return handler.await;
    }
    if upload {
        // Not under the key's lock: parts of one key go in parallel.
        let resp = handler.await?;
        if resp.status < 300 {
            match &route.op {
                Op::UploadPart(t) | Op::UploadPartCopy(t) => {
                    super::part_copies::offer_part(ctx, cluster, (bucket, key), (&t.upload_id, t.part_number)).await
                }
                Op::AbortMultipartUpload { upload_id } => {
                    super::part_copies::drop_parts_elsewhere(cluster, (bucket, key), upload_id).await
                }
                _ => {}
            }
        }
        return Ok(resp);
    }
    let _lock = ctx.store.lock_keys(bucket, &[key.as_str()]).await;
    let resp = handler.await?;
    if creates(&route.op) && resp.status < 300 {
        replicate(ctx, cluster, bucket, key).await?;
    }
    Ok(resp)
}

/// Has every other live holder of `bucket/key` take the version committed here.
pub async fn replicate(ctx: &Ctx, cluster: &Cluster, bucket: &str, key: &str) -> Result<(), S3Error> {
    let meta = match ctx.store.head_object(bucket, key) {
        Ok(m) => m,
        Err(engine::Error::NoSuchObject) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let (others, reconciling): (Vec<Node>, Vec<Node>) = {
        let map = cluster.map();
        let n = wanted(cluster, &map, bucket);
        let holders = map.holders_of(bucket, key, n).into_iter().filter(|h| h.id != cluster.me()).cloned().collect();
        // Members reconciling that will hold the key once done get it too (best effort), so
        // that they do not come back with the version before this one.
        let back = map
            .placed_on(bucket, key, n)
            .into_iter()
            .filter(|h| h.id != cluster.me() && h.state != super::NodeState::Down && map.reconciling.contains(&h.id))
            .cloned()
            .collect();
        (holders, back)
    };
    let best_effort = reconciling.iter().map(|n| offer(&ctx.store, cluster, n, (bucket, key), (&meta, true)));
    let offers = others.iter().map(|n| offer(&ctx.store, cluster, n, (bucket, key), (&meta, true)));
    let (results, _) =
        futures_util::future::join(futures_util::future::join_all(offers), futures_util::future::join_all(best_effort))
            .await;
    for (n, r) in others.iter().zip(results) {
        if let Err(e) = r {
            let why = format!(
                "the copy on node {} failed ({}); the object is stored on fewer nodes than its bucket wants, retry",
                n.id, e.message
            );
            return Err(S3Error::new(S3ErrorCode::ServiceUnavailable, why));
        }
    }
    Ok(())
}

/// Has `node` take this node's version `meta` of `bucket/key` unless it holds it or a newer one.
/// With `may_push` (a write's copies, made under the key's lock: no delete can pass meanwhile)
/// a small object's record and bytes go with the offer (read from `store`); otherwise the
/// receiver pulls them, if this node still has that version then.
async fn offer(
    store: &engine::Store,
    cluster: &Cluster,
    node: &Node,
    (bucket, key): (&str, &str),
    (meta, may_push): (&ObjectMeta, bool),
) -> Result<(), S3Error> {
    let target = format!(
        "/_keel/peer/replica?bucket={}&key={}&from={}&etag={}&mtime={}&acl={}&tags={}",
        enc(bucket),
        enc(key),
        enc(cluster.me()),
        enc(&meta.etag()),
        meta.mtime_ms,
        meta.acl.code(),
        enc(&crate::s3::handlers::tagging::to_query(&meta.tags)),
    );
    let wait = forward::IO_TIMEOUT + Duration::from_secs(meta.size / super::rebalance::MOVE_BYTES_PER_SEC_MIN);
    let push = match if may_push { pushed(store, bucket, key, meta).await } else { Ok(Vec::new()) } {
        Ok(p) => p,
        // Changed or gone since: the newer write copies itself.
        Err(engine::Error::NoSuchObject) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let (status, body) = forward::peer_call_within(cluster, node, ("POST", &target, push), wait).await?;
    let answer = String::from_utf8_lossy(&body);
    match (status, answer.trim()) {
        // Stored, held already, or gone here meanwhile (a delete or newer write copies itself).
        (200, "stored" | "same" | "changed") => Ok(()),
        // The holder has a version stamped later (another node took a write of the key, with
        // its own clock): a write offering this one loses to it, so it is not acknowledged;
        // the repair's offers are done.
        (200, "newer") if may_push => Err(S3Error::new(
            S3ErrorCode::ServiceUnavailable,
            format!("node {} holds a newer version of the key (written through another node); retry", node.id),
        )),
        (200, "newer") => Ok(()),
        _ => Err(ClusterError::NodeUnreachable(node.id.clone(), format!("it answered {status}: {answer}")).into()),
    }
}

/// What an offer of `meta` carries: for a small plain object, its record's length (4 bytes,
/// big-endian), the record and the bytes, checked against their stored checksum; else nothing.
async fn pushed(store: &engine::Store, bucket: &str, key: &str, meta: &ObjectMeta) -> engine::Result<Vec<u8>> {
    if meta.size > PUSH_BYTES_MAX || matches!(meta.data, engine::DataLoc::Parts(_)) {
        return Ok(Vec::new());
    }
    let reader = store.open_object(bucket, key).await?;
    if version(&reader.meta) != version(meta) {
        return Err(engine::Error::NoSuchObject);
    }
    reader.verify(0, meta.size).await?;
    let record = meta.encode();
    let mut out = Vec::with_capacity(4 + record.len() + meta.size as usize);
    out.extend_from_slice(&(record.len() as u32).to_be_bytes());
    out.extend_from_slice(&record);
    let mut buf = iobuf::take_buffer();
    while (out.len() - 4 - record.len()) < meta.size as usize {
        let at = (out.len() - 4 - record.len()) as u64;
        let (r, b) = reader.read_at(buf, at, (meta.size - at) as usize).await;
        buf = b;
        match r {
            Ok(0) => break,
            Ok(_) => out.extend_from_slice(buf.as_slice()),
            Err(e) => {
                iobuf::give_buffer(buf);
                return Err(e);
            }
        }
    }
    iobuf::give_buffer(buf);
    if out.len() - 4 - record.len() != meta.size as usize {
        return Err(engine::Error::Corrupt { algorithm: "size" });
    }
    Ok(out)
}

/// A pushed offer's record and bytes.
fn unpush(body: &[u8]) -> Option<(ObjectMeta, &[u8])> {
    let len = u32::from_be_bytes(body.get(..4)?.try_into().ok()?) as usize;
    let record = body.get(4..4 + len)?;
    let meta = ObjectMeta::decode(record).ok()?;
    let data = body.get(4 + len..)?;
    (data.len() as u64 == meta.size).then_some((meta, data))
}

/// `/_keel/peer/replica?bucket&key&from&etag&mtime`: takes member `from`'s version of the key
/// (the one named; its record and bytes in the body when small, else pulled from `from`) unless
/// this node holds it or a newer one.
pub async fn serve_replica(
    ctx: &Ctx,
    cluster: &Cluster,
    bucket: &str,
    query: &str,
    body: Vec<u8>,
) -> Result<String, S3Error> {
    let param = |n| param(query, n).ok_or_else(|| S3Error::new(S3ErrorCode::InvalidRequest, n));
    let (key, from, etag) = (param("key")?, param("from")?, param("etag")?);
    let mtime: u64 = param("mtime")?.parse().map_err(|_| S3Error::new(S3ErrorCode::InvalidRequest, "mtime"))?;
    let offered = (mtime, etag);
    // Under the key's lock: a delete of the key here (a drop, or the primary's own delete)
    // waits for this copy to be committed, then removes it.
    let _lock = ctx.store.lock_keys(bucket, &[key.as_str()]).await;
    let acl = param("acl").ok().and_then(|a| a.parse().ok()).and_then(engine::CannedAcl::from_code);
    let tags = match param("tags") {
        Ok(t) => Some(crate::s3::handlers::tagging::from_query(&t)?),
        Err(_) => None,
    };
    match ctx.store.head_object(bucket, &key) {
        // The same version under another ACL or tags (PutObjectAcl and tagging keep the
        // version): the offering primary's stand.
        Ok(mine) if version(&mine) == offered => {
            let acl = acl.unwrap_or(mine.acl);
            let tags = tags.unwrap_or_else(|| mine.tags.clone());
            if acl == mine.acl && tags == mine.tags {
                return Ok("same".to_owned());
            }
            let change = |m: &mut ObjectMeta| {
                m.acl = acl;
                m.tags.clone_from(&tags);
                Ok(())
            };
            return ctx
                .store
                .change_object(bucket, &key, &change)
                .await
                .map(|()| "stored".to_owned())
                .map_err(Into::into);
        }
        Ok(mine) if version(&mine) > offered => return Ok("newer".to_owned()),
        Ok(_) | Err(engine::Error::NoSuchObject) => {}
        Err(e) => return Err(e.into()),
    }
    if !body.is_empty() {
        let Some((meta, data)) = unpush(&body).filter(|(m, _)| version(m) == offered) else {
            return Err(S3Error::new(S3ErrorCode::InvalidRequest, "Peer request: a malformed pushed copy."));
        };
        let mut import = ctx.store.import_writer(bucket, &key, &meta)?;
        let mut buf = iobuf::take_buffer();
        for chunk in data.chunks(buf.capacity().max(1)) {
            buf.clear();
            buf.extend_from_slice(chunk);
            let (r, b) = import.writer(0).write(buf).await;
            buf = b;
            r?;
        }
        iobuf::give_buffer(buf);
        return commit(import, offered).await;
    }
    let node = cluster.map().node(&from).cloned().ok_or_else(|| S3Error::new(S3ErrorCode::InvalidRequest, "from"))?;
    let meta = match source_meta(cluster, &node, bucket, &key).await {
        Ok(m) => m,
        Err(e) if e.code == S3ErrorCode::NoSuchKey => return Ok("changed".to_owned()),
        Err(e) => return Err(e),
    };
    if version(&meta) != offered {
        return Ok("changed".to_owned());
    }
    // A completed upload whose parts were copied here as they arrived (D40); else (or a part
    // missing here) the object is pulled whole.
    match ctx.store.complete_copied(bucket, &key, &meta).await {
        Ok(true) => return Ok("stored".to_owned()),
        Err(engine::Error::PreconditionFailed) => return Ok("newer".to_owned()),
        Ok(false) => {}
        Err(e) => return Err(e.into()),
    }
    match super::peer::import_from(ctx, cluster, &node, (bucket, &key), &meta).await {
        Ok(import) => commit(import, offered).await,
        // Replaced or deleted on `from` while copied.
        Err(e) if e.code == S3ErrorCode::PreconditionFailed => Ok("changed".to_owned()),
        Err(e) => Err(e),
    }
}

/// Commits a copy unless the key holds a version as new or newer.
async fn commit(import: engine::ObjectImport, (mtime_ms, etag): Version) -> Result<String, S3Error> {
    match import.finish_when(engine::WriteCondition::OlderThan { mtime_ms, etag }).await {
        Ok(_) => Ok("stored".to_owned()),
        Err(engine::Error::PreconditionFailed) => Ok("newer".to_owned()),
        Err(e) => Err(e.into()),
    }
}

/// A delete of `keys` on their primary, after its own (under the keys' locks): on every other
/// live data member (holders, members reconciling, strays). A member that cannot be reached
/// fails the delete (503); its copy may then come back through the repair (the delete was not
/// acknowledged).
pub async fn delete_elsewhere(cluster: &Cluster, bucket: &str, keys: &[&str]) -> Result<(), S3Error> {
    // Every live data member, not only the holders: a member reconciling, or one that still
    // holds a stray copy (a holder until a member came back or joined), must lose it too.
    let others: Vec<Node> = {
        let map = cluster.map();
        if !cluster.copies_managed(&map, bucket) {
            return Ok(());
        }
        map.holders().filter(|n| n.id != cluster.me() && n.state != super::NodeState::Down).cloned().collect()
    };
    let target = format!("/_keel/peer/drop?bucket={}", enc(bucket));
    let body: String = keys.iter().map(|k| enc(k) + "\n").collect();
    for node in &others {
        let body = body.clone();
        let (status, answer) = forward::peer_call(cluster, node, "POST", &target, body.into_bytes()).await?;
        if status != 200 {
            let why = String::from_utf8_lossy(&answer).into_owned();
            return Err(ClusterError::NodeUnreachable(node.id.clone(), format!("it answered {status}: {why}")).into());
        }
    }
    Ok(())
}

/// `/_keel/peer/have?bucket` with keys (percent-encoded, one per line): for each, a line with
/// `MTIME ETAG ATTRS` (`ObjectMeta::attrs_code`) of the version held here, or `-`.
pub fn serve_have(ctx: &Ctx, bucket: &str, body: Vec<u8>) -> Result<String, S3Error> {
    let text = String::from_utf8(body).map_err(|_| S3Error::code(S3ErrorCode::InvalidRequest))?;
    let mut out = String::new();
    for line in text.lines() {
        let key = dec(line).ok_or_else(|| S3Error::code(S3ErrorCode::InvalidRequest))?;
        match ctx.store.head_object(bucket, &key) {
            Ok(m) => out.push_str(&format!("{} {} {}\n", m.mtime_ms, enc(&m.etag()), m.attrs_code())),
            Err(engine::Error::NoSuchObject) => out.push_str("-\n"),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(out)
}

/// The versions `node` holds of `keys` (`None`: it has none).
async fn have(cluster: &Cluster, node: &Node, bucket: &str, keys: &[String]) -> Result<Vec<Option<Held>>, S3Error> {
    let mut out = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(HAVE_KEYS_MAX) {
        out.extend(have_some(cluster, node, bucket, chunk).await?);
    }
    Ok(out)
}

async fn have_some(
    cluster: &Cluster,
    node: &Node,
    bucket: &str,
    keys: &[String],
) -> Result<Vec<Option<Held>>, S3Error> {
    let body: String = keys.iter().map(|k| enc(k) + "\n").collect();
    let target = format!("/_keel/peer/have?bucket={}", enc(bucket));
    let (status, answer) = forward::peer_call(cluster, node, "POST", &target, body.into_bytes()).await?;
    let text = String::from_utf8_lossy(&answer);
    let malformed = || ClusterError::NodeUnreachable(node.id.clone(), format!("it answered {status}: {text}"));
    // The bucket is gone there (deleted while this node was away): it holds none of them.
    if status == 404 && text.contains("NoSuchBucket") {
        return Ok(keys.iter().map(|_| None).collect());
    }
    if status != 200 {
        return Err(malformed().into());
    }
    let mut out = Vec::with_capacity(keys.len());
    for l in text.lines() {
        if l == "-" {
            out.push(None);
            continue;
        }
        let mut f = l.split(' ');
        let parsed = (|| Some(((f.next()?.parse().ok()?, dec(f.next()?)?), f.next()?.parse().ok()?)))();
        out.push(Some(parsed.ok_or_else(malformed)?));
    }
    if out.len() != keys.len() {
        return Err(malformed().into());
    }
    Ok(out)
}

/// A read of `bucket/key` that its primary (this node) cannot serve from here: the other
/// holder with the newest version, if any has one.
pub async fn read_elsewhere(ctx: &Ctx, cluster: &Cluster, bucket: &str, key: &str) -> Option<Node> {
    if ctx.store.head_object(bucket, key).is_ok() {
        return None;
    }
    let others = holders_except(cluster, bucket, key, cluster.me());
    let mut best: Option<(Version, Node)> = None;
    for n in others {
        if let Ok(meta) = source_meta(cluster, &n, bucket, key).await
            && best.as_ref().is_none_or(|(v, _)| version(&meta) > *v)
        {
            best = Some((version(&meta), n));
        }
    }
    best.map(|(_, n)| n)
}

/// A read found this node's copy of `bucket/key` (version `bad`) failing its checksums: it is
/// rewritten from another holder's copy of the same version (checked against that copy's
/// stored checksums as it is read there). Whether the read may be tried again: rewritten, or
/// the key changed meanwhile; false when no other holder has a good copy of that version.
pub async fn restore(
    ctx: &Ctx,
    cluster: &Cluster,
    (bucket, key): (&str, &str),
    bad: &ObjectMeta,
) -> Result<bool, S3Error> {
    let others = holders_except(cluster, bucket, key, cluster.me());
    if others.is_empty() {
        return Ok(false);
    }
    let _lock = ctx.store.lock_keys(bucket, &[key]).await;
    match ctx.store.head_object(bucket, key) {
        Ok(m) if version(&m) == version(bad) => {}
        _ => return Ok(true),
    }
    for node in &others {
        let Ok(meta) = source_meta(cluster, node, bucket, key).await else { continue };
        if version(&meta) != version(bad) {
            continue;
        }
        let Ok(import) = super::peer::import_from(ctx, cluster, node, (bucket, key), &meta).await else { continue };
        // Replaces exactly the bad record's version (a delete meanwhile is not undone).
        let same = engine::WriteCondition::EtagMatches(format!("\"{}\"", bad.etag()));
        match import.finish_when(same).await {
            Ok(_) => {
                tracing::warn!(bucket, key, from = node.id, "copies: a corrupt copy rewritten from another node's");
                return Ok(true);
            }
            Err(engine::Error::PreconditionFailed | engine::Error::WriteConflict) => return Ok(true),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(false)
}

/// The live holders of a copies bucket's `bucket/key` other than member `except` (none with
/// one copy): where a read its primary could not answer, or a bad copy's rewrite, goes.
pub fn holders_except(cluster: &Cluster, bucket: &str, key: &str, except: &str) -> Vec<Node> {
    let map = cluster.map();
    let n = wanted(cluster, &map, bucket);
    if n <= 1 {
        return Vec::new();
    }
    map.holders_of(bucket, key, n).into_iter().filter(|h| h.id != except).cloned().collect()
}

/// The copies repair of this node (module doc). Runs on the control runtime for the life of
/// the node.
pub async fn run(store: Arc<engine::Store>, cluster: Arc<Cluster>) {
    let mut last: Option<(Instant, u64, u64)> = None;
    loop {
        compio::time::sleep(Duration::from_millis(200)).await;
        if cluster.removed() {
            return;
        }
        let map = cluster.map();
        if map.reconciling.contains(cluster.me()) {
            drop(map);
            match reconcile(&store, &cluster).await {
                Ok(dropped) => {
                    if dropped > 0 {
                        tracing::warn!(dropped, "copies: copies that missed changes while this node was away dropped");
                    }
                    if let Err(e) = cluster.agent.reconcile_done().await {
                        tracing::warn!(error = %e, "copies: cannot record the reconciliation");
                    }
                }
                Err(e) => tracing::info!(error = %e.message, "copies: reconciling waits"),
            }
            compio::time::sleep(Duration::from_millis(300)).await;
            continue;
        }
        let shape = map.shape();
        drop(map);
        let due = match &last {
            None => true,
            Some((at, seen, left)) => {
                *seen != shape || at.elapsed() >= REPAIR_EVERY || (*left > 0 && at.elapsed() >= REPAIR_RETRY)
            }
        };
        if !due {
            continue;
        }
        // Only a cluster with copies reports (with one copy, a down member's objects are
        // unavailable and only it knows how many: `keel cluster status` says unknown).
        let reports = cluster.config.copies > 1 || map_wants_copies(&cluster.map());
        if reports && last.as_ref().is_none_or(|(_, seen, _)| *seen != shape) {
            let _ = cluster.agent.report_under_replicated(None).await;
        }
        let out_of_date = (cluster.map().out_of_date(), shape);
        let mut left = 0;
        let short = match repair_pass(&store, &cluster).await {
            Ok((short, strays)) => {
                left = strays;
                short
            }
            Err(e) => {
                tracing::warn!(error = %e.message, "copies: repair pass failed; trying again");
                u64::MAX
            }
        };
        if reports && short != u64::MAX {
            let _ = cluster.agent.report_under_replicated(Some((short, out_of_date.0, out_of_date.1))).await;
        }
        last = Some((Instant::now(), shape, short.saturating_add(left)));
    }
}

fn map_wants_copies(map: &ClusterMap) -> bool {
    map.buckets.keys().any(|b| map.bucket_copies(b) > 1)
}

/// Buckets here the copies machinery keeps (`Cluster::copies_managed`), with their copies.
fn copies_buckets(store: &engine::Store, cluster: &Cluster) -> Vec<(String, usize)> {
    let map = cluster.map();
    store
        .list_buckets()
        .into_iter()
        .filter(|(b, _)| cluster.copies_managed(&map, b))
        .map(|(b, _)| {
            let n = wanted(cluster, &map, &b);
            (b, n)
        })
        .collect()
}

/// Drops every copy here of a copies bucket's key that the key's primary (this node not
/// counted: it is reconciling) does not hold in the same version — when that primary is one of
/// the key's places with every member up (it took the key's changes while this node was away).
/// A primary standing in for members that are down or reconciling too may never have had the
/// key: the copy stays, and the repair sorts it out. Returns how many went.
async fn reconcile(store: &engine::Store, cluster: &Cluster) -> Result<u64, S3Error> {
    let mut dropped = 0;
    // Buckets that want copies only. A one-copy bucket's owner may be down, or may not have
    // the key yet while a rebalance moves it there: "the owner lacks it" says nothing, and this
    // copy may be the only one. The repair hands such copies over (then drops them) instead.
    for (bucket, n) in copies_buckets(store, cluster).into_iter().filter(|(_, n)| *n > 1) {
        for page in super::rebalance::bucket_pages(store, &bucket) {
            let page = page?;
            let mut by_primary: std::collections::BTreeMap<String, (Node, Vec<String>)> = Default::default();
            {
                let map = cluster.map();
                for e in &page.entries {
                    // No other member up to compare with: this copy may be the only one.
                    let Some(p) = map.holders_of(&bucket, &e.key, n).into_iter().find(|h| h.id != cluster.me()) else {
                        continue;
                    };
                    if map.placed_on(&bucket, &e.key, n).iter().any(|h| h.id == p.id) {
                        by_primary.entry(p.id.clone()).or_insert_with(|| (p.clone(), Vec::new())).1.push(e.key.clone());
                    }
                }
            }
            for (node, keys) in by_primary.values() {
                let theirs = have(cluster, node, &bucket, keys).await?;
                for (key, theirs) in keys.iter().zip(theirs) {
                    let Ok(mine) = store.head_object(&bucket, key) else { continue };
                    // Another version, or the same under another ACL or tags (a change it missed):
                    // the copy goes, and the repair brings the primary's.
                    let same =
                        theirs.as_ref().is_some_and(|(v, attrs)| *v == version(&mine) && *attrs == mine.attrs_code());
                    if !same && store.delete_object_if(&bucket, key, &mine).await? {
                        dropped += 1;
                    }
                }
            }
        }
    }
    Ok(dropped)
}

/// What this node does for one of its keys in a repair pass.
enum Role {
    /// The primary: the other holders get what they lack.
    Primary(Vec<Node>),
    /// Another holder: the primary gets what it lacks.
    Holder(Node),
    /// No holder: the primary gets it, then this copy goes.
    Stray(Node),
}

/// One walk over this node's keys of copies buckets (module doc). Returns how many objects
/// this node, as their primary, leaves with fewer copies than wanted, and how many copies it
/// holds as no holder and could not hand over.
async fn repair_pass(store: &engine::Store, cluster: &Cluster) -> Result<(u64, u64), S3Error> {
    let (mut short, mut strays) = (0, 0);
    let mut paced = (Instant::now(), 0u64);
    let mut copied = 0u64;
    for (bucket, n) in copies_buckets(store, cluster) {
        for page in super::rebalance::bucket_pages(store, &bucket) {
            let page = page?;
            // Per node asked: the keys, and whether this node is their primary.
            let mut asks: std::collections::BTreeMap<String, (Node, Vec<(String, bool)>)> = Default::default();
            {
                let map = cluster.map();
                for e in &page.entries {
                    let (role, few) = role(&map, cluster.me(), &bucket, &e.key, n);
                    short += u64::from(few);
                    strays += u64::from(matches!(role, Some(Role::Stray(_))));
                    let mut ask = |node: &Node, primary: bool| {
                        let slot = asks.entry(node.id.clone()).or_insert_with(|| (node.clone(), Vec::new()));
                        slot.1.push((e.key.clone(), primary));
                    };
                    match role {
                        Some(Role::Primary(others)) => others.iter().for_each(|o| ask(o, true)),
                        Some(Role::Holder(p) | Role::Stray(p)) => ask(&p, false),
                        None => {}
                    }
                }
            }
            for (node, keys) in asks.values() {
                let names: Vec<String> = keys.iter().map(|(k, _)| k.clone()).collect();
                let theirs = match have(cluster, node, &bucket, &names).await {
                    Ok(t) => t,
                    Err(e) => {
                        tracing::debug!(node = node.id, error = %e.message, "copies: a holder did not answer");
                        short += keys.iter().filter(|(_, p)| *p).count() as u64;
                        continue;
                    }
                };
                let todo: Vec<(&(String, bool), Option<Held>)> = keys.iter().zip(theirs).collect();
                for batch in todo.chunks(OFFERS_IN_FLIGHT) {
                    let fixes = batch
                        .iter()
                        .map(|((key, primary), theirs)| fix(store, cluster, node, (&bucket, key, *primary), theirs));
                    let results = futures_util::future::join_all(fixes).await;
                    for (_, r) in batch.iter().zip(results) {
                        match r {
                            Ok((bytes, dropped)) => {
                                paced.1 += bytes;
                                copied += u64::from(bytes > 0);
                                strays = strays.saturating_sub(u64::from(dropped));
                            }
                            // A copy that could not be offered is short, whoever offered it.
                            Err(_) => short += 1,
                        }
                    }
                    pace(cluster.config.rebalance_rate, paced).await;
                }
            }
        }
    }
    if copied > 0 {
        let secs = paced.0.elapsed().as_secs_f64();
        tracing::info!(copied, bytes = paced.1, secs, short, "copies: repair pass");
    }
    Ok((short, strays))
}

/// This node's role for `bucket/key`, and whether the key has fewer live holders than wanted
/// (counted by its primary).
fn role(map: &ClusterMap, me: &str, bucket: &str, key: &str, n: usize) -> (Option<Role>, bool) {
    let holders = map.holders_of(bucket, key, n);
    let Some(primary) = holders.first() else { return (None, false) };
    if primary.id == me {
        let others = holders[1..].iter().map(|h| (*h).clone()).collect();
        return (Some(Role::Primary(others)), holders.len() < n);
    }
    let role = if holders.iter().any(|h| h.id == me) {
        Role::Holder((*primary).clone())
    } else {
        Role::Stray((*primary).clone())
    };
    (Some(role), false)
}

/// Gives `node` this node's version of `bucket/key` if it holds none or an older one, or, from
/// the key's primary, the same version under another ACL or tags (one that missed a change); a
/// stray copy (this node no holder) goes once `node` has it. Returns the bytes copied, and
/// whether a stray copy went (or was gone already).
async fn fix(
    store: &engine::Store,
    cluster: &Cluster,
    node: &Node,
    (bucket, key, primary): (&str, &str, bool),
    theirs: &Option<Held>,
) -> Result<(u64, bool), S3Error> {
    // Read again: a write or delete may have passed since the page was read. No lock is held
    // across the offer (the receiver locks the key; a lock held here too could wait in a
    // circle with a delete on the receiver), and the offer is a pull: the receiver fetches the
    // version only if this node still has it then, so a delete that passed meanwhile wins.
    let Ok(mine) = store.head_object(bucket, key) else { return Ok((0, false)) };
    let mut copied = 0;
    let mine_v = version(&mine);
    if theirs.as_ref().is_none_or(|(t, _)| *t < mine_v) {
        offer(store, cluster, node, (bucket, key), (&mine, false)).await?;
        copied = mine.size;
    } else if primary && theirs.as_ref().is_some_and(|(t, attrs)| *t == mine_v && *attrs != mine.attrs_code()) {
        offer(store, cluster, node, (bucket, key), (&mine, false)).await?;
    }
    let stray = {
        let map = cluster.map();
        let n = wanted(cluster, &map, bucket);
        !map.holders_of(bucket, key, n).iter().any(|h| h.id == cluster.me())
    };
    if stray {
        store.delete_object_if(bucket, key, &mine).await?;
    }
    Ok((copied, stray))
}

/// Never ahead of `rate` bytes per second since `started` (0: unpaced).
async fn pace(rate: u64, (started, bytes): (Instant, u64)) {
    if rate == 0 {
        return;
    }
    let due = Duration::from_secs_f64(bytes as f64 / rate as f64);
    if let Some(wait) = due.checked_sub(started.elapsed()) {
        compio::time::sleep(wait).await;
    }
}
