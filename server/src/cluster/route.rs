//! Where a request is served in a cluster: here, or on the node that owns its key.

use super::{Cluster, ClusterError, ClusterMap, NodeState, PEER_HEADER, forward};
use crate::http::{Conn, Request, Response};
use crate::s3::Ctx;
use crate::s3::error::{S3Error, S3ErrorCode};
use crate::s3::op::{Op, Route};

pub enum Routed {
    /// Served here, the client's signature checked as on a single node.
    Local,
    /// Answered (forwarded, redirected or refused).
    Done(Result<Response, S3Error>),
}

/// Operations that change state (refused while etcd is unreachable: the map may be stale, and
/// a stale map could make two owners of one key).
pub(crate) fn writes(op: &Op) -> bool {
    !matches!(
        op,
        Op::ListBuckets(_)
            | Op::HeadBucket
            | Op::GetBucketLocation
            | Op::GetBucketVersioning
            | Op::GetBucketAcl
            | Op::GetObjectAcl
            | Op::GetObjectTagging
            | Op::GetBucketTagging
            | Op::GetObjectLockConfiguration
            | Op::GetObjectRetention
            | Op::GetObjectLegalHold
            | Op::GetBucketLifecycleConfiguration
            | Op::GetBucketPolicy
            | Op::GetBucketPolicyStatus
            | Op::GetPublicAccessBlock
            | Op::GetBucketCors
            | Op::GetBucketOwnershipControls
            | Op::Preflight
            | Op::ListObjects(_)
            | Op::ListObjectsV2(_)
            | Op::ListObjectVersions(_)
            | Op::GetObject(_)
            | Op::HeadObject(_)
            | Op::GetObjectAttributes
            | Op::ListMultipartUploads(_)
            | Op::ListParts(_)
            | Op::Unsupported(_)
            | Op::InvalidUri
            | Op::MethodNotAllowed
    )
}

/// Operations that change a bucket's record in etcd.
fn changes_buckets(op: &Op) -> bool {
    matches!(
        op,
        Op::CreateBucket
            | Op::DeleteBucket
            | Op::PutBucketAcl
            | Op::PutBucketVersioning
            | Op::PutBucketTagging
            | Op::DeleteBucketTagging
            | Op::PutObjectLockConfiguration
            | Op::PutBucketPolicy
            | Op::DeleteBucketPolicy
            | Op::PutPublicAccessBlock
            | Op::DeletePublicAccessBlock
            | Op::PutBucketCors
            | Op::DeleteBucketCors
            | Op::PutBucketOwnershipControls
            | Op::DeleteBucketOwnershipControls
    )
}

fn target(req: &Request) -> String {
    if req.query.is_empty() { req.path.clone() } else { format!("{}?{}", req.path, req.query) }
}

/// Decides where `req` is served.
pub async fn route(ctx: &Ctx, cluster: &Cluster, conn: &mut Conn, req: &Request, route: &Route) -> Routed {
    if cluster.removed() {
        let e = S3Error::new(S3ErrorCode::ServiceUnavailable, "This node was decommissioned from its cluster.");
        return Routed::Done(Err(e));
    }
    if let Some(bucket) = &route.bucket
        && let Err(e) = ensure_bucket(ctx, cluster, bucket).await
    {
        return Routed::Done(Err(e.into()));
    }
    if let Some(token) = req.header(PEER_HEADER) {
        // From a member: served here, never sent on (its map said this node owns the key).
        // Forwarded client requests: the owner checks the client's own signature.
        if cluster.peer_check(token, &req.method_raw, &target(req)) {
            if let Some(ip) = req.header(super::CLIENT_IP_HEADER).and_then(|v| v.trim().parse().ok()) {
                conn.set_request_peer(ip);
            }
            if let Some(bucket) = &route.bucket
                && let Err(e) = catch_up(ctx, cluster, req, bucket).await
            {
                return Routed::Done(Err(e.into()));
            }
            let map = cluster.map();
            // Sent here under a map that made this node the owner; if this node's map says
            // otherwise now, the write must not land here (a rebalance may have passed it).
            // With copies, any holder may take it (its version reaches the others, and the
            // newest version wins everywhere): maps that change a moment apart on two nodes
            // (a member back from reconciling) refuse nothing.
            if let (Some(bucket), Some(key)) = (&route.bucket, &route.key)
                && writes(&route.op)
                && upload_of(&route.op).is_none()
                && !holds(cluster, &map, bucket, key)
            {
                let why = "Cluster: this node no longer owns the key (the membership changed); retry.";
                return Routed::Done(Err(S3Error::new(S3ErrorCode::ServiceUnavailable, why)));
            }
            return from_neighbor(ctx, cluster, &map, conn, req, route).await;
        }
        return Routed::Done(Err(S3Error::new(
            S3ErrorCode::AccessDenied,
            "The node-to-node signature is not valid (another cluster's secret, or a clock more than 5 minutes off).",
        )));
    }
    if cluster.quorum_lost() && changes_buckets(&route.op) {
        let why =
            "Cluster: etcd has lost its quorum; bucket changes are refused until it is back (objects are served).";
        return Routed::Done(Err(S3Error::new(S3ErrorCode::ServiceUnavailable, why)));
    }
    let map = cluster.map();
    if writes(&route.op) && route.key.is_some() && map.nodes.iter().any(|n| n.state == NodeState::Joining) {
        // Owners are about to change: no object is written until every node has the new map.
        let why = "Cluster: a node is joining; object writes resume in a moment.";
        return Routed::Done(Err(S3Error::new(S3ErrorCode::ServiceUnavailable, why)));
    }
    if writes(&route.op) && !cluster.may_write() {
        let why = format!("Cluster: {}; writes are refused until it answers.", cluster.etcd_error());
        return Routed::Done(Err(S3Error::new(S3ErrorCode::ServiceUnavailable, why)));
    }
    let (Some(bucket), Some(key)) = (&route.bucket, &route.key) else { return Routed::Local };
    let Some(owner) = cluster.primary(&map, bucket, key) else {
        let e = ClusterError::Unavailable("the cluster has no member that holds data (only gateways)".into());
        return Routed::Done(Err(e.into()));
    };
    if owner.id == cluster.me() {
        return from_neighbor(ctx, cluster, &map, conn, req, route).await;
    }
    if owner.state == NodeState::Down {
        let e = ClusterError::NodeUnreachable(owner.id.clone(), "it is down (its lease expired)".into());
        return Routed::Done(Err(e.into()));
    }
    if cluster.config.redirect {
        return Routed::Done(Ok(forward::redirect(req, owner)));
    }
    let owner = owner.clone();
    drop(map);
    match forward::forward(cluster, conn, (req, bucket), &owner).await {
        // Its primary unreachable (not yet down in the map): a read goes to another holder.
        Err(e) if reads(&route.op) => read_fallback(ctx, cluster, conn, req, (bucket, key, &owner.id), e).await,
        r => Routed::Done(r),
    }
}

/// A read served here, by the key's primary, that found no such key: in a copies bucket,
/// another holder may have it (this node came back, or lost a drive); then its answer. (Only
/// the primary asks: a holder a read was sent on to answers for itself.)
pub async fn after_miss(
    ctx: &Ctx,
    cluster: &Cluster,
    conn: &mut Conn,
    req: &Request,
    route: &Route,
) -> Option<Result<Response, S3Error>> {
    let (Some(bucket), Some(key)) = (&route.bucket, &route.key) else { return None };
    let rerouted = {
        let map = cluster.map();
        let primary = cluster.primary(&map, bucket, key);
        let mine = primary.is_some_and(|p| p.id == cluster.me());
        if !reads(&route.op) {
            return None;
        }
        // Sent here by a member whose map still made this node the owner, while this node's
        // map has moved the key on (a rebalance): its new owner has it, once.
        if !mine && req.header(PEER_HEADER).is_some() && req.header(REROUTED_HEADER).is_none() {
            primary.cloned()
        } else if !mine || cluster.copies_of(&map, bucket) <= 1 {
            return None;
        } else {
            None
        }
    };
    if let Some(owner) = rerouted {
        let mut once = req.clone();
        once.headers.push((REROUTED_HEADER.to_owned(), "1".to_owned()));
        return Some(forward::forward(cluster, conn, (&once, bucket), &owner).await);
    }
    let node = super::copies::read_elsewhere(ctx, cluster, bucket, key).await?;
    Some(forward::forward(cluster, conn, (req, bucket), &node).await)
}

/// Marks a read sent on once more after a miss (`after_miss`): it is not sent on again.
const REROUTED_HEADER: &str = "x-keel-rerouted";

/// Reads of one object (served by any holder of its copies).
fn reads(op: &Op) -> bool {
    matches!(
        op,
        Op::GetObject(_) | Op::HeadObject(_) | Op::GetObjectAttributes | Op::GetObjectAcl | Op::GetObjectTagging
    )
}

/// A read whose primary `failed` could not be reached: the key's other holders in order (this
/// node among them when it has the key), else the primary's error.
async fn read_fallback(
    ctx: &Ctx,
    cluster: &Cluster,
    conn: &mut Conn,
    req: &Request,
    (bucket, key, failed): (&str, &str, &str),
    error: S3Error,
) -> Routed {
    for n in super::copies::holders_except(cluster, bucket, key, failed) {
        if n.id == cluster.me() {
            if ctx.store.head_object(bucket, key).is_ok() {
                return Routed::Local;
            }
            continue;
        }
        if let Ok(resp) = forward::forward(cluster, conn, (req, bucket), &n).await {
            return Routed::Done(Ok(resp));
        }
    }
    Routed::Done(Err(error))
}

/// Whether this node takes writes of `bucket/key`: its owner, or with copies one of its holders.
fn holds(cluster: &Cluster, map: &ClusterMap, bucket: &str, key: &str) -> bool {
    match cluster.copies_of(map, bucket) {
        1 => map.owner(bucket, key).is_some_and(|o| o.id == cluster.me()),
        n => map.holders_of(bucket, key, n).iter().any(|h| h.id == cluster.me()),
    }
}

/// The upload an operation acts on, if any.
fn upload_of(op: &Op) -> Option<&String> {
    match op {
        Op::UploadPart(t) | Op::UploadPartCopy(t) => Some(&t.upload_id),
        Op::CompleteMultipartUpload { upload_id } | Op::AbortMultipartUpload { upload_id } => Some(upload_id),
        Op::ListParts(l) => Some(&l.upload_id),
        _ => None,
    }
}

/// Get-from-neighbor: a read of a key this node owns but does not have yet, while a rebalance
/// runs, is served by the member that still has it; so is a request of an upload begun there.
async fn from_neighbor(
    ctx: &Ctx,
    cluster: &Cluster,
    map: &ClusterMap,
    conn: &mut Conn,
    req: &Request,
    route: &Route,
) -> Routed {
    let (Some(bucket), Some(key)) = (&route.bucket, &route.key) else { return Routed::Local };
    let upload_id = match &route.op {
        Op::GetObject(_) | Op::HeadObject(_) | Op::GetObjectAttributes | Op::GetObjectAcl | Op::GetObjectTagging => {
            None
        }
        op => match upload_of(op) {
            Some(id) => Some(id),
            None => return Routed::Local,
        },
    };
    if cluster.copies_of(map, bucket) > 1 {
        // A copies bucket: a read of a key this node lacks goes to another holder after the
        // local handler found nothing (`after_miss`: no extra lookup on the way of every read);
        // an upload begun on a member that was the primary then is looked for below, whenever
        // the holders changed (a member died or came back), not only during a rebalance.
        if upload_id.is_none() {
            return Routed::Local;
        }
    } else if !map.rebalancing() || cluster.primary(map, bucket, key).is_none_or(|o| o.id != cluster.me()) {
        return Routed::Local;
    }
    let found = match upload_id {
        // An upload begun before the change goes on (and completes) where it began; the
        // object it makes moves from there.
        Some(id) => match ctx.store.upload(bucket, key, id) {
            Err(engine::Error::NoSuchUpload) => super::rebalance::upload_holder(cluster, bucket, key, id).await,
            _ => return Routed::Local,
        },
        None if ctx.store.head_object(bucket, key).is_ok() => return Routed::Local,
        None => super::rebalance::holder(ctx, cluster, bucket, key).await,
    };
    match found {
        Ok(Some(node)) => match forward::forward(cluster, conn, (req, bucket), &node).await {
            // The move finished between the look here and the holder's answer: the key is
            // here now, and its old copy gone there.
            Ok(resp) if resp.status == 404 && upload_id.is_none() && ctx.store.head_object(bucket, key).is_ok() => {
                Routed::Local
            }
            r => Routed::Done(r),
        },
        Ok(None) => Routed::Local,
        Err(e) => Routed::Done(Err(e)),
    }
}

/// A bucket the cluster has and this node does not yet (its watch lags the request): made here
/// from the cluster's record, so the request finds it.
/// An error when etcd could not be asked (the bucket may exist: "no such bucket" would be a
/// wrong answer).
pub async fn ensure_bucket(ctx: &Ctx, cluster: &Cluster, bucket: &str) -> Result<(), ClusterError> {
    if ctx.store.bucket_exists(bucket) {
        return Ok(());
    }
    // Not in the map either: made on another node a moment ago? etcd knows. One read per
    // name and shard per second at most: requests for buckets that do not exist (anyone can
    // send them) must not become a stream of etcd reads.
    let rec = match cluster.map().buckets.get(bucket) {
        Some(rec) => Some(rec.clone()),
        None if recently_missed(bucket, cluster.buckets_applied()) => None,
        None => {
            let applied = cluster.buckets_applied();
            let found = cluster.agent.bucket(bucket).await?;
            if found.is_none() {
                note_miss(bucket, applied);
            }
            found
        }
    };
    if let Some((rev, rec)) = rec
        && let Ok(meta) = engine::BucketMeta::decode(&rec)
    {
        cluster.apply_bucket(&ctx.store, bucket, rev, meta).await;
    }
    Ok(())
}

/// A forwarded request names the revision of its bucket's record the forwarding node had
/// applied: this node reads the record from etcd when it has applied an older one (its watch
/// has not delivered the change yet), so the change binds the request.
async fn catch_up(ctx: &Ctx, cluster: &Cluster, req: &Request, bucket: &str) -> Result<(), ClusterError> {
    let Some(want) = req.header(super::BUCKET_REV_HEADER).and_then(|v| v.trim().parse::<i64>().ok()) else {
        return Ok(());
    };
    if cluster.applied_revision(bucket).is_some_and(|have| have >= want) {
        return Ok(());
    }
    if let Some((rev, rec)) = cluster.agent.bucket(bucket).await?
        && let Ok(meta) = engine::BucketMeta::decode(&rec)
    {
        cluster.apply_bucket(&ctx.store, bucket, rev, meta).await;
    }
    Ok(())
}

/// Names etcd said it lacks, per shard, with when and how many bucket records this node had
/// applied then (a record applied since may be that bucket's). Bounded: cleared when full.
const MISSES_MAX: usize = 4096;
const MISS_TTL: std::time::Duration = std::time::Duration::from_secs(1);

thread_local! {
    static MISSES: std::cell::RefCell<std::collections::HashMap<String, (std::time::Instant, u64)>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

fn recently_missed(bucket: &str, applied: u64) -> bool {
    MISSES.with(|m| m.borrow().get(bucket).is_some_and(|(t, a)| *a == applied && t.elapsed() < MISS_TTL))
}

fn note_miss(bucket: &str, applied: u64) {
    MISSES.with(|m| {
        let mut m = m.borrow_mut();
        if m.len() >= MISSES_MAX {
            m.clear();
        }
        m.insert(bucket.to_owned(), (std::time::Instant::now(), applied));
    });
}

/// Keeps this node's buckets equal to the cluster's: made, updated, and removed (when empty)
/// as the map changes. Runs on the control runtime for the life of the node.
pub async fn sync_buckets(store: std::sync::Arc<engine::Store>, cluster: std::sync::Arc<Cluster>) {
    let mut seen = -1;
    loop {
        let map = cluster.map();
        if map.revision != seen {
            seen = map.revision;
            apply(&store, &cluster, &map).await;
        }
        compio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

async fn apply(store: &engine::Store, cluster: &Cluster, map: &super::ClusterMap) {
    for (name, (rev, rec)) in &map.buckets {
        match engine::BucketMeta::decode(rec) {
            Ok(meta) => cluster.apply_bucket(store, name, *rev, meta).await,
            Err(_) => tracing::warn!(bucket = name, "cluster: the bucket's record in etcd is malformed"),
        }
    }
    for (name, _) in store.list_buckets() {
        // Made from a record newer than this map (a request found it in etcd first): the map
        // is stale about it, not the bucket gone.
        let newer = cluster.applied_revision(&name).is_some_and(|r| r > map.revision);
        if !map.buckets.contains_key(&name) && !newer {
            match store.delete_bucket(&name).await {
                Ok(()) => {
                    cluster.bucket_deleted(&name, map.revision);
                    tracing::info!(bucket = name, "cluster: bucket deleted")
                }
                Err(e) => tracing::warn!(bucket = name, error = %e, "cluster: a deleted bucket stays here"),
            }
        }
    }
}
