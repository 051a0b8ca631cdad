//! Multipart uploads of a copies bucket across nodes (issue 15, DESIGN D40): the upload lives on
//! the key's primary; each part stored there is copied to the key's other live holders before
//! UploadPart answers (each pulls the bytes: `/_keel/peer/part` then `/_keel/peer/part-data`),
//! so that the completion's offer (`copies::replicate`) finds the parts in place and the holder
//! commits the object from them (`Store::complete_copied`: O(parts), no byte moves). A holder
//! that missed a part pulls the whole object instead. An abort removes the copied parts on the
//! holders (`/_keel/peer/drop-parts`).
//!
//! A part's copies are best effort: UploadPart's answer means the primary has the part (as
//! without copies); the completion's answer still means every holder has the object.

use std::time::Duration;

use engine::PartMeta;

use super::peer::{enc, param};
use super::{Cluster, Node, NodeState, forward};
use crate::s3::Ctx;
use crate::s3::error::{S3Error, S3ErrorCode};

/// The other live holders of `bucket/key` (not members reconciling: they drop what they hold).
fn other_holders(cluster: &Cluster, bucket: &str, key: &str) -> Vec<Node> {
    let map = cluster.map();
    let n = cluster.copies_of(&map, bucket);
    map.holders_of(bucket, key, n)
        .into_iter()
        .filter(|h| h.id != cluster.me() && h.state != NodeState::Down)
        .cloned()
        .collect()
}

/// After part `part_number` of `upload_id` was stored here (the key's primary): every other
/// live holder copies it. Failures are logged: the completion pulls what a holder lacks.
pub async fn offer_part(
    ctx: &Ctx,
    cluster: &Cluster,
    (bucket, key): (&str, &str),
    (upload_id, part_number): (&str, u32),
) {
    let holders = other_holders(cluster, bucket, key);
    if holders.is_empty() {
        return;
    }
    let part = match ctx.store.list_parts(bucket, key, upload_id, part_number - 1, 1) {
        Ok((parts, _)) => match parts.into_iter().find(|(n, _)| *n == part_number) {
            Some((_, p)) => p,
            None => return, // replaced or the upload ended meanwhile: nothing to copy
        },
        Err(_) => return,
    };
    let target = format!(
        "/_keel/peer/part?bucket={}&key={}&upload={}&part={part_number}&from={}",
        enc(bucket),
        enc(key),
        enc(upload_id),
        enc(cluster.me())
    );
    let wait = forward::IO_TIMEOUT + Duration::from_secs(part.size / super::rebalance::MOVE_BYTES_PER_SEC_MIN);
    let calls = holders.iter().map(|n| forward::peer_call_within(cluster, n, ("POST", &target, part.encode()), wait));
    for (n, r) in holders.iter().zip(futures_util::future::join_all(calls).await) {
        match r {
            Ok((200, _)) => {}
            Ok((status, body)) => tracing::warn!(
                node = n.id,
                status,
                answer = %String::from_utf8_lossy(&body),
                "copies: a part's copy was refused (the completion copies the object instead)"
            ),
            Err(e) => {
                tracing::warn!(node = n.id, error = %e, "copies: a part's copy failed (the completion copies the object instead)")
            }
        }
    }
}

/// After an upload was aborted here: the holders drop the parts they copied (best effort; a
/// holder that misses it drops them at its next start).
pub async fn drop_parts_elsewhere(cluster: &Cluster, (bucket, key): (&str, &str), upload_id: &str) {
    let target = format!("/_keel/peer/drop-parts?bucket={}&key={}&upload={}", enc(bucket), enc(key), enc(upload_id));
    for n in other_holders(cluster, bucket, key) {
        if let Err(e) = forward::peer_call(cluster, &n, "POST", &target, Vec::new()).await {
            tracing::warn!(node = n.id, error = %e, "copies: an aborted upload's copied parts were not dropped there");
        }
    }
}

fn upload_params(query: &str) -> Result<(String, String), S3Error> {
    let get =
        |n| param(query, n).ok_or_else(|| S3Error::new(S3ErrorCode::InvalidRequest, format!("Peer request: no {n}.")));
    Ok((get("key")?, get("upload")?))
}

fn part_number(query: &str) -> Result<u32, S3Error> {
    param(query, "part")
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| S3Error::new(S3ErrorCode::InvalidRequest, "Peer request: bad part."))
}

/// `/_keel/peer/part?bucket&key&upload&part&from` with the part's record (`PartMeta`) as the
/// body: copies the part from member `from` (the upload's primary) into this node's parts.
pub async fn serve_part(
    ctx: &Ctx,
    cluster: &Cluster,
    bucket: &str,
    query: &str,
    body: Vec<u8>,
) -> Result<String, S3Error> {
    let (key, upload_id) = upload_params(query)?;
    let n = part_number(query)?;
    let from = param(query, "from").unwrap_or_default();
    let source = PartMeta::decode(&body)
        .map_err(|_| S3Error::new(S3ErrorCode::InvalidRequest, "Peer request: a malformed part record."))?;
    let node = cluster.map().node(&from).cloned().ok_or_else(|| S3Error::new(S3ErrorCode::InvalidRequest, "from"))?;
    let mut copy = ctx.store.part_copy_writer(bucket, &key, (&upload_id, n), &source)?;
    let target = format!(
        "/_keel/peer/part-data?bucket={}&key={}&upload={}&part={n}&etag={}",
        enc(bucket),
        enc(&key),
        enc(&upload_id),
        source.etag()
    );
    match super::peer::pull_into(cluster, &node, &target, source.size, copy.data()).await {
        Ok(()) => {}
        // Replaced or ended on the primary meanwhile: nothing to keep.
        Err(e) if e.code == S3ErrorCode::PreconditionFailed => return Ok("changed".to_owned()),
        Err(e) => return Err(e),
    }
    Ok(if copy.finish().await? { "stored" } else { "late" }.to_owned())
}

/// `/_keel/peer/part-data?bucket&key&upload&part&etag`: the bytes of a part of an upload open
/// here, checked against their stored checksum first (412 if the part is another one now).
pub async fn serve_part_data(ctx: &Ctx, bucket: &str, query: &str) -> Result<crate::http::Response, S3Error> {
    let (key, upload_id) = upload_params(query)?;
    let n = part_number(query)?;
    let etag = param(query, "etag").unwrap_or_default();
    let reader = match ctx.store.open_part(bucket, &key, (&upload_id, n), &etag).await {
        Ok(r) => r,
        Err(engine::Error::ObjectChanged | engine::Error::NoSuchUpload | engine::Error::InvalidPart { .. }) => {
            return Err(S3Error::code(S3ErrorCode::PreconditionFailed));
        }
        Err(e) => return Err(e.into()),
    };
    let size = reader.meta.size;
    super::peer::spans(reader, 0, size).await
}

/// `/_keel/peer/drop-parts?bucket&key&upload`: drops the parts of an aborted upload copied here.
pub async fn serve_drop_parts(ctx: &Ctx, bucket: &str, query: &str) -> Result<String, S3Error> {
    let (key, upload_id) = upload_params(query)?;
    ctx.store.drop_copied_parts(bucket, &key, &upload_id).await?;
    Ok("dropped".to_owned())
}
