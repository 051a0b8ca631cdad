//! Node-to-node calls under `/_keel/peer/`, each signed with the cluster secret
//! (`x-keel-peer`); the node that took the client's request has authenticated and authorized
//! it. `list` answers one page of this node's part of a bucket, `delete` removes keys this node
//! owns. On the calling side: listings merged across nodes, multi-object deletes split by owner,
//! and the emptiness check of a bucket delete.
//!
//! A page travels as lines: `truncated 0|1`, then `o SIZE MTIME_MS ETAG KEY` per object and
//! `p PREFIX` per common prefix (ETAG, KEY, PREFIX percent-encoded).

use engine::{ListEntry, ListPage, ListQuery, ObjectMeta, UploadEntry, UploadPage, UploadQuery};
use percent_encoding::{NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

use super::{Cluster, ClusterError, Node, NodeState, PEER_HEADER, forward};
use crate::http::{Body, Conn, Request, Response, Span};
use crate::s3::Ctx;
use crate::s3::error::{S3Error, S3ErrorCode};

pub(crate) fn enc(s: &str) -> String {
    utf8_percent_encode(s, NON_ALPHANUMERIC).to_string()
}

pub(crate) fn dec(s: &str) -> Option<String> {
    percent_decode_str(s).decode_utf8().ok().map(|c| c.into_owned())
}

pub(crate) fn param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|kv| kv.split_once('=').filter(|(k, _)| *k == name).and_then(|(_, v)| dec(v)))
}

/// Largest body a node-to-node call carries (a multi-object delete's keys: 1000 × 1 KiB,
/// percent-encoded).
const PEER_BODY_MAX: usize = 8 << 20;

fn bad(why: &str) -> Response {
    S3Error::new(S3ErrorCode::InvalidRequest, format!("Peer request: {why}.")).response("/", "0")
}

/// Serves `/_keel/peer/<what>` for a member.
pub async fn serve(ctx: &Ctx, conn: &mut Conn, req: &Request, what: &str) -> Response {
    let Some(cluster) = &ctx.config.cluster else {
        return S3Error::new(S3ErrorCode::AccessDenied, "This node is not in a cluster.").response("/", "0");
    };
    let target = if req.query.is_empty() { req.path.clone() } else { format!("{}?{}", req.path, req.query) };
    // The token signs the body too: read it (bounded) before checking.
    let body = match req.framing {
        crate::http::Framing::None => Vec::new(),
        _ => match conn.read_body_to_vec(PEER_BODY_MAX).await {
            Ok(b) => b,
            Err(_) => return bad("body too large or incomplete"),
        },
    };
    let signed = super::peer_signed_target(&target, &body);
    if req.header(PEER_HEADER).is_none_or(|t| !cluster.peer_check(t, &req.method_raw, &signed)) {
        return S3Error::new(S3ErrorCode::AccessDenied, "Node-to-node endpoints need the cluster's signature.")
            .response("/", "0");
    }
    if what == "revision" {
        let rev = cluster.map().revision.to_string();
        return Response::with_body(200, "text/plain", rev.into_bytes());
    }
    let Some(bucket) = param(&req.query, "bucket") else { return bad("no bucket") };
    if let Err(e) = super::route::ensure_bucket(ctx, cluster, &bucket).await {
        return S3Error::from(e).response("/", "0");
    }
    let text = |r: Result<String, S3Error>| r.map(|b| Response::with_body(200, "text/plain", b.into_bytes()));
    let result = match what {
        "list" => text(serve_list(ctx, &bucket, &req.query)),
        "uploads" => text(serve_uploads(ctx, &bucket, &req.query)),
        "delete" => text(serve_delete(ctx, cluster, body, &bucket).await),
        "meta" => text(serve_meta(ctx, &bucket, &req.query)),
        "object" => serve_object(ctx, &bucket, &req.query).await,
        "upload" => text(super::rebalance::serve_upload(ctx, &bucket, &req.query)),
        "pull" => text(super::rebalance::serve_pull(ctx, cluster, &bucket, &req.query).await),
        "drop" => text(super::rebalance::serve_drop(ctx, &bucket, body).await),
        "replica" => text(super::copies::serve_replica(ctx, cluster, &bucket, &req.query, body).await),
        "have" => text(super::copies::serve_have(ctx, &bucket, body)),
        "part" => text(super::part_copies::serve_part(ctx, cluster, &bucket, &req.query, body).await),
        "part-data" => super::part_copies::serve_part_data(ctx, &bucket, &req.query).await,
        "drop-parts" => text(super::part_copies::serve_drop_parts(ctx, &bucket, &req.query).await),
        _ => return bad("unknown endpoint"),
    };
    result.unwrap_or_else(|e| e.response("/", "0"))
}

/// An object's record (hex), or `none`.
fn serve_meta(ctx: &Ctx, bucket: &str, query: &str) -> Result<String, S3Error> {
    let key = param(query, "key").ok_or_else(|| S3Error::code(S3ErrorCode::InvalidRequest))?;
    match ctx.store.head_object(bucket, &key) {
        Ok(meta) => Ok(hex::encode(meta.encode())),
        Err(engine::Error::NoSuchObject) => Ok("none".to_owned()),
        Err(e) => Err(e.into()),
    }
}

/// `len` bytes of an object from `start`, checked against their stored checksums first.
async fn serve_object(ctx: &Ctx, bucket: &str, query: &str) -> Result<Response, S3Error> {
    let key = param(query, "key").ok_or_else(|| S3Error::code(S3ErrorCode::InvalidRequest))?;
    let num = |name| param(query, name).and_then(|v| v.parse::<u64>().ok()).ok_or_else(|| bad_param(name));
    let (start, len, etag) = (num("start")?, num("len")?, param(query, "etag").unwrap_or_default());
    let reader = ctx.store.open_object(bucket, &key).await?;
    // The copy's source must be the version the copier decided on.
    if reader.meta.etag() != etag {
        return Err(S3Error::code(S3ErrorCode::PreconditionFailed));
    }
    if start.checked_add(len).is_none_or(|end| end > reader.meta.size) {
        return Err(bad_param("len"));
    }
    spans(reader, start, len).await
}

/// `len` bytes of `reader`'s object from `start`, checked against their stored checksums, as
/// the spans of a response (files sent as they are).
pub(crate) async fn spans(reader: engine::ObjectReader, start: u64, len: u64) -> Result<Response, S3Error> {
    reader.verify(start, len).await?;
    let spans = reader.into_pieces(start, len).into_iter().map(|p| match p {
        engine::Piece::File { file, offset, len, mountpath } => Span::File { file, offset, len, origin: mountpath },
        engine::Piece::Inline(bytes) => Span::Bytes(bytes),
    });
    let mut resp = Response::new(200);
    resp.body = Body::Spans(spans.collect());
    Ok(resp)
}

fn bad_param(name: &str) -> S3Error {
    S3Error::new(S3ErrorCode::InvalidRequest, format!("Peer request: bad {name}."))
}

/// The record of `bucket/key` on its owner `node`.
pub async fn source_meta(cluster: &Cluster, node: &Node, bucket: &str, key: &str) -> Result<ObjectMeta, S3Error> {
    let target = format!("/_keel/peer/meta?bucket={}&key={}", enc(bucket), enc(key));
    let (status, body) = forward::peer_call(cluster, node, "GET", &target, Vec::new()).await?;
    if status != 200 {
        return Err(peer_error(node, status, &body));
    }
    if body == b"none" {
        return Err(engine::Error::NoSuchObject.into());
    }
    let raw = hex::decode(&body).map_err(|_| peer_error(node, 502, b"a malformed record"))?;
    ObjectMeta::decode(&raw).map_err(|_| peer_error(node, 502, b"a malformed record"))
}

/// Copies `len` bytes from `start` of `bucket/key` (the version `meta` describes) on its owner
/// `node` into `writer`.
pub async fn copy_range(
    cluster: &Cluster,
    node: &Node,
    (bucket, key, meta): (&str, &str, &ObjectMeta),
    (start, len): (u64, u64),
    writer: &mut engine::DataWriter,
) -> Result<(), S3Error> {
    let target = format!(
        "/_keel/peer/object?bucket={}&key={}&start={start}&len={len}&etag={}",
        enc(bucket),
        enc(key),
        enc(&meta.etag())
    );
    pull_into(cluster, node, &target, len, writer).await
}

/// Streams the `len` bytes `node` answers a GET of `target` with into `writer` (412 from it:
/// `PreconditionFailed`).
pub(crate) async fn pull_into(
    cluster: &Cluster,
    node: &Node,
    target: &str,
    len: u64,
    writer: &mut engine::DataWriter,
) -> Result<(), S3Error> {
    let (status, _, mut chunks) = forward::peer_stream(cluster, node, target).await?;
    let broken = |e: std::io::Error| S3Error::from(ClusterError::NodeUnreachable(node.id.clone(), e.to_string()));
    if status != 200 {
        let mut body = Vec::new();
        while let Some(c) = futures_util::StreamExt::next(&mut chunks).await {
            body.extend_from_slice(&c.map_err(broken)?);
        }
        return Err(if status == 412 {
            S3Error::code(S3ErrorCode::PreconditionFailed)
        } else {
            peer_error(node, status, &body)
        });
    }
    let mut buf = iobuf::take_buffer();
    let mut copied = 0u64;
    while let Some(chunk) = futures_util::StreamExt::next(&mut chunks).await {
        let chunk = chunk.map_err(broken)?;
        let mut rest = chunk.as_slice();
        while !rest.is_empty() {
            let n = buf.extend_from_slice(rest);
            rest = &rest[n..];
            copied += n as u64;
            if buf.len() == buf.capacity() {
                let (r, b) = writer.write(buf).await;
                buf = b;
                r?;
                buf.clear();
            }
        }
    }
    if !buf.is_empty() {
        let (r, b) = writer.write(buf).await;
        buf = b;
        r?;
    }
    iobuf::give_buffer(buf);
    if copied != len {
        return Err(ClusterError::NodeUnreachable(node.id.clone(), "the copy's source ended early".into()).into());
    }
    Ok(())
}

/// Starts an import of `bucket/key` (the version `meta` describes) from `node`, every piece
/// copied: ready to be finished under the caller's condition.
pub async fn import_from(
    ctx: &Ctx,
    cluster: &Cluster,
    node: &Node,
    (bucket, key): (&str, &str),
    meta: &ObjectMeta,
) -> Result<engine::ObjectImport, S3Error> {
    let mut import = ctx.store.import_writer(bucket, key, meta)?;
    for (i, (start, len)) in import.pieces().into_iter().enumerate() {
        if len > 0 {
            copy_range(cluster, node, (bucket, key, meta), (start, len), import.writer(i)).await?;
        }
    }
    Ok(import)
}

fn serve_list(ctx: &Ctx, bucket: &str, query: &str) -> Result<String, S3Error> {
    let prefix = param(query, "prefix").unwrap_or_default();
    let delimiter = param(query, "delimiter");
    let after = param(query, "after");
    let max_keys = param(query, "max").and_then(|m| m.parse().ok()).unwrap_or(1000usize).min(1000);
    let q = ListQuery { prefix: &prefix, delimiter: delimiter.as_deref(), after: after.as_deref(), max_keys };
    let page = ctx.store.list_objects(bucket, &q)?;
    Ok(encode_page(&page))
}

fn serve_uploads(ctx: &Ctx, bucket: &str, query: &str) -> Result<String, S3Error> {
    let prefix = param(query, "prefix").unwrap_or_default();
    let delimiter = param(query, "delimiter");
    let key_marker = param(query, "key-marker");
    let upload_id_marker = param(query, "upload-id-marker");
    let max_uploads = param(query, "max").and_then(|m| m.parse().ok()).unwrap_or(1000usize).min(1000);
    let q = UploadQuery {
        prefix: &prefix,
        delimiter: delimiter.as_deref(),
        key_marker: key_marker.as_deref(),
        upload_id_marker: upload_id_marker.as_deref(),
        max_uploads,
    };
    Ok(encode_uploads(&ctx.store.list_uploads(bucket, &q)?))
}

pub fn encode_uploads(page: &UploadPage) -> String {
    let mut s = format!("truncated {}\n", u8::from(page.truncated));
    for u in &page.uploads {
        s.push_str(&format!("u {} {} {}\n", enc(&u.key), enc(&u.upload_id), hex::encode(u.meta.encode())));
    }
    for p in &page.common_prefixes {
        s.push_str(&format!("p {}\n", enc(p)));
    }
    s
}

pub fn decode_uploads(text: &str) -> Option<UploadPage> {
    let mut page = UploadPage::default();
    for line in text.lines() {
        let mut it = line.split(' ');
        match it.next()? {
            "truncated" => page.truncated = it.next()? == "1",
            "u" => {
                let key = dec(it.next()?)?;
                let upload_id = dec(it.next()?)?;
                let meta = engine::UploadMeta::decode(&hex::decode(it.next()?).ok()?).ok()?;
                page.uploads.push(UploadEntry { key, upload_id, meta });
            }
            "p" => page.common_prefixes.push(dec(it.next()?)?),
            _ => return None,
        }
    }
    Some(page)
}

/// Merges upload pages of the same query: the first `max` (key, upload id) pairs and common
/// prefixes in order, each once.
fn merge_uploads(pages: Vec<UploadPage>, max: usize) -> UploadPage {
    let any_truncated = pages.iter().any(|p| p.truncated);
    // (name, upload id; empty for a common prefix, which sorts before the uploads of its name)
    let mut items: Vec<(String, String, Option<UploadEntry>)> = Vec::new();
    for p in pages {
        items.extend(p.uploads.into_iter().map(|u| (u.key.clone(), u.upload_id.clone(), Some(u))));
        items.extend(p.common_prefixes.into_iter().map(|c| (c, String::new(), None)));
    }
    items.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    items.dedup_by(|a, b| a.0 == b.0 && a.1 == b.1);
    let cut = items.len() > max;
    items.truncate(max);
    let mut out = UploadPage { truncated: cut || any_truncated, ..Default::default() };
    if out.truncated
        && let Some((name, id, u)) = items.last()
    {
        out.next_key_marker = Some(name.clone());
        out.next_upload_id_marker = u.as_ref().map(|_| id.clone());
    }
    for (name, _, u) in items {
        match u {
            Some(u) => out.uploads.push(u),
            None => out.common_prefixes.push(name),
        }
    }
    out
}

/// One page of a bucket's uploads in progress across every node.
pub async fn list_uploads(
    ctx: &Ctx,
    cluster: &Cluster,
    bucket: &str,
    q: &UploadQuery<'_>,
) -> Result<UploadPage, S3Error> {
    let peers = peers(cluster)?;
    let mut target =
        format!("/_keel/peer/uploads?bucket={}&prefix={}&max={}", enc(bucket), enc(q.prefix), q.max_uploads);
    for (name, v) in
        [("delimiter", q.delimiter), ("key-marker", q.key_marker), ("upload-id-marker", q.upload_id_marker)]
    {
        if let Some(v) = v {
            target.push_str(&format!("&{name}={}", enc(v)));
        }
    }
    let local = || ctx.store.list_uploads(bucket, q).map_err(S3Error::from);
    let (mine, bodies) = gather(cluster, &peers, &target, local).await?;
    let mut pages = decode_all(&peers, &bodies, decode_uploads)?;
    pages.insert(0, mine);
    Ok(merge_uploads(pages, q.max_uploads))
}

async fn serve_delete(ctx: &Ctx, cluster: &Cluster, body: Vec<u8>, bucket: &str) -> Result<String, S3Error> {
    let text = String::from_utf8(body).map_err(|_| S3Error::code(S3ErrorCode::InvalidRequest))?;
    let keys: Vec<String> = text.lines().filter_map(dec).collect();
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let mut out = String::new();
    for r in delete_here(ctx, cluster, bucket, &refs).await {
        match r {
            Ok(()) => out.push_str("ok\n"),
            Err(e) => {
                out.push_str(&format!("err {} {}\n", e.code.as_str(), enc(&e.message)));
            }
        }
    }
    Ok(out)
}

pub fn encode_page(page: &ListPage) -> String {
    let mut s = format!("truncated {}\n", u8::from(page.truncated));
    for e in &page.entries {
        s.push_str(&format!("o {} {} {} {}\n", e.size, e.mtime_ms, enc(&e.etag), enc(&e.key)));
    }
    for p in &page.common_prefixes {
        s.push_str(&format!("p {}\n", enc(p)));
    }
    s
}

pub fn decode_page(text: &str) -> Option<ListPage> {
    let mut page = ListPage::default();
    for line in text.lines() {
        let mut it = line.split(' ');
        match it.next()? {
            "truncated" => page.truncated = it.next()? == "1",
            "o" => {
                let size = it.next()?.parse().ok()?;
                let mtime_ms = it.next()?.parse().ok()?;
                let etag = dec(it.next()?)?;
                let key = dec(it.next()?)?;
                page.entries.push(ListEntry { key, size, mtime_ms, etag });
            }
            "p" => page.common_prefixes.push(dec(it.next()?)?),
            _ => return None,
        }
    }
    Some(page)
}

/// Merges pages of the same query from several nodes: the first `max` names (keys and common
/// prefixes) in order, each once (a key on two nodes: the newest). Each node gave every name
/// up to where its page stops, so every name of the merged page is among them. A k-way merge:
/// each page's objects and prefixes are in name order already.
pub fn merge(pages: Vec<ListPage>, max: usize) -> ListPage {
    enum Item {
        Object(ListEntry),
        Prefix(String),
    }
    type Heads = (std::iter::Peekable<std::vec::IntoIter<ListEntry>>, std::iter::Peekable<std::vec::IntoIter<String>>);
    let any_truncated = pages.iter().any(|p| p.truncated);
    let mut heads: Vec<Heads> = pages
        .into_iter()
        .map(|p| (p.entries.into_iter().peekable(), p.common_prefixes.into_iter().peekable()))
        .collect();
    let mut merged: Vec<Item> = Vec::with_capacity(max.min(1000) + 1);
    while merged.len() <= max {
        // The smallest name at any head.
        let Some(least) =
            heads.iter_mut().flat_map(|(o, p)| [o.peek().map(|o| o.key.clone()), p.peek().cloned()]).flatten().min()
        else {
            break;
        };
        let mut item: Option<Item> = None;
        for (objects, prefixes) in &mut heads {
            if let Some(p) = prefixes.next_if(|p| *p == least)
                && !matches!(item, Some(Item::Prefix(_)))
            {
                item = Some(Item::Prefix(p));
            }
            if let Some(o) = objects.next_if(|o| o.key == least) {
                match &item {
                    None => item = Some(Item::Object(o)),
                    Some(Item::Object(old)) if o.mtime_ms > old.mtime_ms => item = Some(Item::Object(o)),
                    _ => {}
                }
            }
        }
        merged.extend(item);
    }
    let cut = merged.len() > max;
    merged.truncate(max);
    let last = merged.last().map(|i| match i {
        Item::Object(e) => e.key.clone(),
        Item::Prefix(p) => p.clone(),
    });
    let mut out = ListPage { truncated: cut || any_truncated, last, ..Default::default() };
    for i in merged {
        match i {
            Item::Object(e) => out.entries.push(e),
            Item::Prefix(p) => out.common_prefixes.push(p),
        }
    }
    out
}

/// The other members; an error when one is down (its keys would be missing).
fn peers(cluster: &Cluster) -> Result<Vec<Node>, ClusterError> {
    let map = cluster.map();
    let mut out = Vec::new();
    for n in map.nodes.iter().filter(|n| n.id != cluster.me()) {
        if n.state == NodeState::Down {
            return Err(ClusterError::NodeUnreachable(n.id.clone(), "it is down; its keys cannot be listed".into()));
        }
        out.push(n.clone());
    }
    Ok(out)
}

/// The members a listing of `bucket` asks (and whether this node's own part is left out). With
/// copies, members down or reconciling (whose copies may have missed deletes) are left out
/// while every key has a copy on another member (`ClusterMap::copies_cover`). Otherwise every
/// other member, and an error when one is down.
fn listed_members(cluster: &Cluster, bucket: &str) -> Result<(Vec<Node>, bool), ClusterError> {
    let map = cluster.map();
    let copies = cluster.copies_of(&map, bucket);
    if copies <= 1 {
        return Ok((peers(cluster)?, false));
    }
    let covered = map.copies_cover(copies);
    if !covered && let Some(n) = map.nodes.iter().find(|n| !n.gateway && n.state == NodeState::Down) {
        let why = "it is down, and some keys may have no copy elsewhere yet; its keys cannot be listed";
        return Err(ClusterError::NodeUnreachable(n.id.clone(), why.into()));
    }
    let skip = |n: &Node| covered && map.reconciling.contains(&n.id);
    let peers =
        map.nodes.iter().filter(|n| n.id != cluster.me() && n.state != NodeState::Down && !skip(n)).cloned().collect();
    Ok((peers, map.node(cluster.me()).is_some_and(skip)))
}

fn peer_error(node: &Node, status: u16, body: &[u8]) -> S3Error {
    if status == 404 {
        return S3Error::code(S3ErrorCode::NoSuchBucket);
    }
    let why = String::from_utf8_lossy(body);
    ClusterError::NodeUnreachable(node.id.clone(), format!("it answered {status}: {}", why.trim())).into()
}

/// Names each node is asked for first: a little more than its share of a page (HRW spreads
/// keys evenly), so that the page is usually complete after one round; never more than the page.
fn first_share(max: usize, nodes: usize) -> usize {
    if nodes <= 1 { max } else { (max * 5 / (4 * nodes) + 16).min(max) }
}

/// Which nodes must give more names before the first `max` names of the merge are known: none
/// (`None`) when no page was cut short, or when at least `max` distinct names lie at or before
/// the earliest point a cut page stopped at (every node gave every name up to there); else the
/// nodes whose pages stop at that point.
fn short_pages(pages: &[ListPage], max: usize) -> Option<Vec<usize>> {
    let bound = pages.iter().filter(|p| p.truncated).filter_map(|p| p.last.as_deref()).min()?;
    let mut names: Vec<&str> = pages
        .iter()
        .flat_map(|p| p.entries.iter().map(|e| e.key.as_str()).chain(p.common_prefixes.iter().map(String::as_str)))
        .filter(|n| *n <= bound)
        .collect();
    names.sort_unstable();
    names.dedup();
    if names.len() >= max {
        return None;
    }
    Some((0..pages.len()).filter(|&i| pages[i].truncated && pages[i].last.as_deref() == Some(bound)).collect())
}

/// Asks the nodes whose pages ran out too early (`short_pages`) for their next names, until the
/// first `max` names of the merge are known. `fetch(i, after)` gives node `i`'s next names.
async fn complete_pages(
    pages: &mut [ListPage],
    max: usize,
    mut fetch: impl AsyncFnMut(usize, Option<String>) -> Result<ListPage, S3Error>,
) -> Result<(), S3Error> {
    while let Some(short) = short_pages(pages, max) {
        for i in short {
            let after = pages[i].last.clone();
            let more = fetch(i, after.clone()).await?;
            // Names must go on past where the page stopped (else a broken node would loop us).
            if more.last.is_some() && more.last <= after {
                return Err(
                    ClusterError::NodeUnreachable("a member".into(), "its listing did not advance".into()).into()
                );
            }
            let page = &mut pages[i];
            let got = !more.entries.is_empty() || !more.common_prefixes.is_empty();
            page.entries.extend(more.entries);
            page.common_prefixes.extend(more.common_prefixes);
            page.truncated = more.truncated && got;
            page.last = more.last.or(after);
        }
    }
    Ok(())
}

/// One page of a bucket's listing across every node: each node is asked for a little more
/// than its share of names after the marker; a node whose part ran out before the page was
/// complete is asked for its next names (rarely: a skewed prefix).
pub async fn list(
    store: &engine::Store,
    cluster: &Cluster,
    bucket: &str,
    q: &ListQuery<'_>,
) -> Result<ListPage, S3Error> {
    let (peers, skip_me) = listed_members(cluster, bucket)?;
    let share = first_share(q.max_keys, peers.len() + 1);
    let target = |after: Option<&str>| {
        let mut t = format!("/_keel/peer/list?bucket={}&prefix={}&max={share}", enc(bucket), enc(q.prefix));
        if let Some(d) = q.delimiter {
            t.push_str(&format!("&delimiter={}", enc(d)));
        }
        if let Some(a) = after {
            t.push_str(&format!("&after={}", enc(a)));
        }
        t
    };
    let local = |after: Option<&str>| {
        if skip_me {
            return Ok(ListPage::default());
        }
        let lq = ListQuery { prefix: q.prefix, delimiter: q.delimiter, after, max_keys: share };
        store.list_objects(bucket, &lq).map_err(S3Error::from)
    };
    let decode = |node: &Node, body: &[u8]| {
        let mut page = std::str::from_utf8(body)
            .ok()
            .and_then(decode_page)
            .ok_or_else(|| peer_error(node, 502, b"a malformed page"))?;
        // Where the node's page stops: its greatest name (objects and prefixes each come sorted).
        page.last = page.entries.last().map(|e| e.key.clone()).max(page.common_prefixes.last().cloned());
        Ok::<_, S3Error>(page)
    };
    let (mine, bodies) = gather(cluster, &peers, &target(q.after), || local(q.after)).await?;
    let mut pages = vec![mine];
    for (node, body) in peers.iter().zip(&bodies) {
        pages.push(decode(node, body)?);
    }
    let fetch = async |i: usize, after: Option<String>| -> Result<ListPage, S3Error> {
        if i == 0 {
            return local(after.as_deref());
        }
        let node = &peers[i - 1];
        let (status, body) = forward::peer_call(cluster, node, "GET", &target(after.as_deref()), Vec::new()).await?;
        if status != 200 {
            return Err(peer_error(node, status, &body));
        }
        decode(node, &body)
    };
    complete_pages(&mut pages, q.max_keys, fetch).await?;
    Ok(merge(pages, q.max_keys))
}

/// This node's page and every peer's answer to the same query (checked for status). The peers
/// are asked first, and this node's page (`local`) is read while they work on theirs.
async fn gather<P>(
    cluster: &Cluster,
    peers: &[Node],
    target: &str,
    local: impl FnOnce() -> Result<P, S3Error>,
) -> Result<(P, Vec<Vec<u8>>), S3Error> {
    use std::future::Future;
    use std::task::Poll;
    let sent = std::cell::Cell::new(0);
    let wait = forward::IO_TIMEOUT;
    let calls = futures_util::future::join_all(
        peers.iter().map(|n| forward::peer_call_counted(cluster, n, ("GET", target, Vec::new()), wait, Some(&sent))),
    );
    let mut calls = std::pin::pin!(calls);
    // Every request on its way first, then this node's own page while the peers read theirs.
    let early = std::future::poll_fn(|cx| match calls.as_mut().poll(cx) {
        Poll::Ready(answers) => Poll::Ready(Some(answers)),
        Poll::Pending if sent.get() >= peers.len() => Poll::Ready(None),
        Poll::Pending => Poll::Pending,
    })
    .await;
    let mine = local()?;
    let answers = match early {
        Some(a) => a,
        None => calls.await,
    };
    let mut bodies = Vec::with_capacity(peers.len());
    for (node, answer) in peers.iter().zip(answers) {
        let (status, body) = answer?;
        if status != 200 {
            return Err(peer_error(node, status, &body));
        }
        bodies.push(body);
    }
    Ok((mine, bodies))
}

/// Decodes each peer's answer whole.
fn decode_all<P>(peers: &[Node], bodies: &[Vec<u8>], decode: fn(&str) -> Option<P>) -> Result<Vec<P>, S3Error> {
    peers
        .iter()
        .zip(bodies)
        .map(|(node, body)| {
            std::str::from_utf8(body).ok().and_then(decode).ok_or_else(|| peer_error(node, 502, b"a malformed page"))
        })
        .collect()
}

/// Whether the bucket holds no object on any node.
pub async fn bucket_empty(store: &engine::Store, cluster: &Cluster, bucket: &str) -> Result<bool, S3Error> {
    let q = ListQuery { prefix: "", delimiter: None, after: None, max_keys: 1 };
    Ok(list(store, cluster, bucket, &q).await?.entries.is_empty())
}

/// A new member's admission: let in (`active`) when no bucket holds an object on any node;
/// otherwise it leaves again, and says why (moving objects to a joining node — rebalance — is
/// not done yet, and without it the keys it would own would be unreachable).
pub async fn admit(store: &engine::Store, cluster: &Cluster) -> Result<(), String> {
    let me = cluster.map().node(cluster.me()).map(|n| n.state);
    if me != Some(NodeState::Joining) {
        return Ok(());
    }
    // The cluster's buckets, here before any key of them is.
    let buckets = cluster.map().buckets.clone();
    for (b, (rev, rec)) in &buckets {
        if let Ok(meta) = engine::BucketMeta::decode(rec) {
            cluster.apply_bucket(store, b, *rev, meta).await;
        }
    }
    // Every node sees this one joining (and so writes no object) before it becomes an owner,
    // and sees that (with the rebalance it starts) before this node serves: no object is ever
    // written under a map that misses it.
    let joined = cluster.map().revision;
    seen_everywhere(cluster, joined).await.map_err(|e| format!("cannot join the cluster: {e}"))?;
    let rev = cluster.agent.activate().await.map_err(|e| format!("cannot join the cluster: {e}"))?;
    seen_everywhere(cluster, rev).await.map_err(|e| format!("cannot join the cluster: {e}"))
}

/// Waits until every other live member's map is at etcd revision `rev` or later (this node's
/// too). Members that are joining themselves, or not serving yet (they load the map afresh
/// when they start), need not be waited for. Bounded: a member that does not catch up in time
/// fails the join.
pub(crate) async fn seen_everywhere(cluster: &Cluster, rev: i64) -> Result<(), String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let mut behind = Vec::new();
        if cluster.map().revision < rev {
            behind.push(cluster.me().to_owned());
        }
        let map = cluster.map();
        // Every member that routes requests: active ones (gateways too) and leaving ones.
        let routing = |n: &&Node| matches!(n.state, NodeState::Active | NodeState::Leaving);
        for n in map.nodes.iter().filter(|n| n.id != cluster.me()).filter(routing) {
            let seen = match forward::peer_call(cluster, n, "GET", "/_keel/peer/revision", Vec::new()).await {
                Ok((200, body)) => String::from_utf8_lossy(&body).trim().parse::<i64>().unwrap_or(0),
                Err(ClusterError::NodeUnreachable(_, why)) if why.contains("refused") => rev,
                _ => 0,
            };
            if seen < rev {
                behind.push(n.id.clone());
            }
        }
        if behind.is_empty() {
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            return Err(format!("members {behind:?} did not see revision {rev} in time"));
        }
        compio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Deletes keys wherever they live: this node's at once, the others' by their owners.
pub async fn delete_objects(ctx: &Ctx, cluster: &Cluster, bucket: &str, keys: &[&str]) -> Vec<Result<(), S3Error>> {
    let map = cluster.map();
    let mut results: Vec<Option<Result<(), S3Error>>> = (0..keys.len()).map(|_| None).collect();
    let mut by_owner: std::collections::BTreeMap<String, Vec<usize>> = Default::default();
    for (i, k) in keys.iter().enumerate() {
        let owner = cluster.primary(&map, bucket, k).map_or_else(|| cluster.me().to_owned(), |n| n.id.clone());
        by_owner.entry(owner).or_default().push(i);
    }
    for (owner, idx) in by_owner {
        let these: Vec<&str> = idx.iter().map(|&i| keys[i]).collect();
        let answers: Vec<Result<(), S3Error>> = match map.node(&owner) {
            Some(n) if n.id != cluster.me() => remote_delete(cluster, n, bucket, &these).await,
            _ => delete_here(ctx, cluster, bucket, &these).await,
        };
        for (i, a) in idx.into_iter().zip(answers) {
            results[i] = Some(a);
        }
    }
    results.into_iter().map(|r| r.unwrap_or_else(|| Err(S3Error::code(S3ErrorCode::InternalError)))).collect()
}

/// Deletes keys this node owns (and, while a rebalance runs, their copies on other members).
/// With copies, under the keys' locks, here and then on the other holders.
pub async fn delete_here(ctx: &Ctx, cluster: &Cluster, bucket: &str, keys: &[&str]) -> Vec<Result<(), S3Error>> {
    let copies = cluster.copies_managed(&cluster.map(), bucket);
    let _lock = if copies { Some(ctx.store.lock_keys(bucket, keys).await) } else { None };
    if let Err(e) = super::rebalance::delete_elsewhere(cluster, bucket, keys).await {
        return keys.iter().map(|_| Err(e.clone())).collect();
    }
    let here: Vec<Result<(), S3Error>> =
        ctx.store.delete_objects(bucket, keys).await.into_iter().map(|r| r.map_err(S3Error::from)).collect();
    match super::copies::delete_elsewhere(cluster, bucket, keys).await {
        Ok(()) => here,
        Err(e) => keys.iter().map(|_| Err(e.clone())).collect(),
    }
}

async fn remote_delete(cluster: &Cluster, node: &Node, bucket: &str, keys: &[&str]) -> Vec<Result<(), S3Error>> {
    let all = |e: S3Error| keys.iter().map(|_| Err(e.clone())).collect();
    if node.state == NodeState::Down {
        return all(ClusterError::NodeUnreachable(node.id.clone(), "it is down".into()).into());
    }
    let body: String = keys.iter().map(|k| enc(k) + "\n").collect();
    let target = format!("/_keel/peer/delete?bucket={}", enc(bucket));
    let (status, answer) = match forward::peer_call(cluster, node, "POST", &target, body.into_bytes()).await {
        Ok(a) => a,
        Err(e) => return all(e.into()),
    };
    if status != 200 {
        return all(peer_error(node, status, &answer));
    }
    let text = String::from_utf8_lossy(&answer);
    let mut out: Vec<Result<(), S3Error>> = text
        .lines()
        .map(|l| match l.split_once(' ') {
            None if l == "ok" => Ok(()),
            Some(("err", rest)) => {
                let msg = rest.split_once(' ').and_then(|(_, m)| dec(m)).unwrap_or_default();
                Err(S3Error::new(S3ErrorCode::InternalError, msg))
            }
            _ => Err(S3Error::code(S3ErrorCode::InternalError)),
        })
        .collect();
    out.resize_with(keys.len(), || Err(S3Error::code(S3ErrorCode::InternalError)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(key: &str, mtime_ms: u64) -> ListEntry {
        ListEntry { key: key.into(), size: 1, mtime_ms, etag: "x".into() }
    }

    #[test]
    fn pages_travel_and_merge() {
        let a = ListPage {
            entries: vec![e("a", 1), e("c d\n", 1), e("e", 1)],
            common_prefixes: vec!["p/".into()],
            truncated: true,
            last: None,
        };
        let text = encode_page(&a);
        assert_eq!(decode_page(&text).unwrap(), a);
        let b = ListPage {
            entries: vec![e("b", 1), e("c d\n", 5)],
            common_prefixes: vec!["p/".into()],
            ..Default::default()
        };
        let m = merge(vec![a.clone(), b.clone()], 3);
        assert_eq!(m.entries.iter().map(|e| e.key.as_str()).collect::<Vec<_>>(), ["a", "b", "c d\n"]);
        assert_eq!(m.entries[2].mtime_ms, 5, "the newest copy of a key wins");
        assert!(m.truncated);
        assert_eq!(m.last.as_deref(), Some("c d\n"));
        let all = merge(vec![a, b], 10);
        assert_eq!(all.entries.len(), 4);
        assert_eq!(all.common_prefixes, ["p/"]);
        assert!(all.truncated, "a node had more");
        let done = merge(vec![ListPage { entries: vec![e("x", 1)], ..Default::default() }], 10);
        assert!(!done.truncated);
        assert!(decode_page("q 1").is_none());
    }

    #[test]
    fn a_page_is_completed_from_the_nodes_that_ran_out() {
        // Node 0 holds most keys (a skewed prefix); each node first gives 3 names.
        let held: Vec<Vec<String>> =
            vec![(0..20).map(|i| format!("a{i:02}")).collect(), vec!["a05x".into(), "z".into()], vec![]];
        let page_of = |i: usize, after: Option<&str>, max: usize| {
            let names: Vec<&String> = held[i].iter().filter(|k| after.is_none_or(|a| k.as_str() > a)).collect();
            let taken: Vec<ListEntry> = names.iter().take(max).map(|k| e(k, 1)).collect();
            ListPage {
                truncated: names.len() > max,
                last: taken.last().map(|e| e.key.clone()),
                entries: taken,
                ..Default::default()
            }
        };
        let mut pages: Vec<ListPage> = (0..3).map(|i| page_of(i, None, 3)).collect();
        let mut asked = Vec::new();
        let fetch = async |i: usize, after: Option<String>| {
            asked.push(i);
            Ok(page_of(i, after.as_deref(), 3))
        };
        compio::runtime::Runtime::new().unwrap().block_on(complete_pages(&mut pages, 10, fetch)).unwrap();
        let m = merge(pages, 10);
        let want: Vec<String> = {
            let mut all: Vec<String> = held.concat();
            all.sort();
            all.truncate(10);
            all
        };
        assert_eq!(m.entries.iter().map(|e| e.key.clone()).collect::<Vec<_>>(), want);
        assert!(m.truncated);
        assert!(asked.iter().all(|&i| i == 0), "only the node that ran out is asked again: {asked:?}");
        // A node whose next names do not go past where its page stopped is an error, not a loop.
        let mut pages =
            vec![ListPage { entries: vec![e("a", 1)], truncated: true, last: Some("a".into()), ..Default::default() }];
        let stuck = async |_: usize, _: Option<String>| {
            Ok(ListPage { entries: vec![e("a", 1)], truncated: true, last: Some("a".into()), ..Default::default() })
        };
        let r = compio::runtime::Runtime::new().unwrap().block_on(complete_pages(&mut pages, 10, stuck));
        assert!(r.is_err_and(|e| e.message.contains("did not advance")));
        assert_eq!(first_share(1000, 4), 328);
        assert_eq!(first_share(7, 3), 7);
        assert_eq!(first_share(1000, 1), 1000);
    }
}
