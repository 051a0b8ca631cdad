//! Object operations: PUT, GET/HEAD (ranges, conditionals), DELETE, DeleteObjects, CopyObject.

use engine::{
    DataWriter, ObjectMeta, ObjectReader, PutOptions, RemoteVersion, SystemMeta, WriteCondition, give_buffer,
    limits as engine_limits, take_buffer,
};

use crate::http::uri::percent_decode;
use crate::http::{Body, HeaderValue, Response, Span};
use crate::s3::Call;
use crate::s3::access::{self, AclTarget};
use crate::s3::checksum::{self, ExpectedChecksums};
use crate::s3::conditional::{Conditions, Outcome};
use crate::s3::error::{S3Error, S3ErrorCode};
use crate::s3::handlers::remote;
use crate::s3::params::{self, OVERRIDES, Overrides, Read};
use crate::s3::payload::BodyStream;
use crate::s3::range::{self, RangeCheck};
use crate::s3::xml::{XmlWriter, quoted};
use crate::time;

const DEFAULT_CONTENT_TYPE: &str = "binary/octet-stream";

/// System and user metadata from request headers.
pub(crate) fn metadata_from_headers(call: &Call<'_>) -> Result<(SystemMeta, Vec<(String, String)>), S3Error> {
    let h = |n: &str| call.header(n).map(str::to_owned);
    // aws-chunked describes the transfer, not the object: S3 does not store it.
    let content_encoding = h("content-encoding").and_then(|v| {
        let rest: Vec<&str> =
            v.split(',').map(str::trim).filter(|t| !t.is_empty() && !t.eq_ignore_ascii_case("aws-chunked")).collect();
        if rest.is_empty() { None } else { Some(rest.join(", ")) }
    });
    let system = SystemMeta {
        content_type: h("content-type"),
        content_encoding,
        content_disposition: h("content-disposition"),
        cache_control: h("cache-control"),
        expires: h("expires"),
        content_language: h("content-language"),
    };
    for v in [
        &system.content_type,
        &system.content_disposition,
        &system.cache_control,
        &system.expires,
        &system.content_language,
    ] {
        if v.as_ref().is_some_and(|v| v.len() > engine_limits::SYSTEM_METADATA_VALUE_BYTES_MAX) {
            return Err(S3Error::code(S3ErrorCode::MetadataTooLarge));
        }
    }
    let mut user = Vec::new();
    let mut bytes = 0usize;
    for (k, v) in &call.req.headers {
        if let Some(name) = k.strip_prefix("x-amz-meta-") {
            bytes += name.len() + v.len();
            user.push((name.to_owned(), v.trim().to_owned()));
        }
    }
    if bytes > engine_limits::USER_METADATA_BYTES_MAX {
        return Err(S3Error::new(
            S3ErrorCode::MetadataTooLarge,
            "Your metadata headers exceed the maximum allowed metadata size.",
        ));
    }
    Ok((system, user))
}

/// `If-None-Match: *` makes a PUT conditional on the key being absent, `If-Match: "etag"` on the
/// key holding that object. Checked here first, so a body bound to fail is not received, and again
/// atomically when the write commits.
pub(crate) fn put_precondition(call: &Call<'_>) -> Result<WriteCondition, S3Error> {
    match (call.header("if-match").map(str::trim), call.header("if-none-match").map(str::trim)) {
        (None, None) => Ok(WriteCondition::Always),
        (None, Some("*")) => Ok(WriteCondition::Absent),
        (None, Some(_)) => Err(S3Error::new(S3ErrorCode::NotImplemented, "If-None-Match on PUT supports only *")),
        (Some(list), None) => {
            let current = call.ctx.store.lookup(call.bucket(), call.key())?;
            if !engine::etag_list_matches(list, &current.meta.etag()) {
                return Err(S3Error::code(S3ErrorCode::PreconditionFailed));
            }
            Ok(WriteCondition::EtagMatches(list.to_owned()))
        }
        (Some(_), Some(_)) => {
            Err(S3Error::new(S3ErrorCode::NotImplemented, "If-Match and If-None-Match together on PUT"))
        }
    }
}

/// The declared payload length, refused past the PUT limit.
pub(crate) fn declared_length(call: &Call<'_>) -> Result<Option<u64>, S3Error> {
    let declared = call.declared_length()?;
    if declared.is_some_and(|n| n > engine_limits::OBJECT_PUT_BYTES_MAX) {
        return Err(S3Error::new(
            S3ErrorCode::EntityTooLarge,
            "Your proposed upload exceeds the maximum allowed size.",
        ));
    }
    Ok(declared)
}

/// Streams the request body into a writer, buffer by buffer; returns the finished stream (it
/// knows the flexible checksum value the bytes must match, once they are all in).
pub(crate) async fn stream_body(
    call: &mut Call<'_>,
    writer: &mut DataWriter,
    expected: &ExpectedChecksums,
) -> Result<BodyStream, S3Error> {
    stream_body_to(call, writer, expected, None).await
}

/// `stream_body`, each buffer also sent to `tee` (a backend bucket's remote) as it arrives.
pub(crate) async fn stream_body_to(
    call: &mut Call<'_>,
    writer: &mut DataWriter,
    expected: &ExpectedChecksums,
    mut tee: Option<&mut crate::backend::BodySink>,
) -> Result<BodyStream, S3Error> {
    let mut body = call.body_stream(expected).await?;
    // Two buffers in flight: while one is hashed and written, the next is read from the socket,
    // so the client never waits on the disk and the disk never waits on the client.
    let (r, mut filled) = body.next(call.conn, take_buffer()).await;
    let mut done = match r {
        Ok(d) => d,
        Err(e) => {
            give_buffer(filled);
            return Err(e);
        }
    };
    loop {
        if let Some(t) = tee.as_deref_mut()
            && let Err(e) = t.send(filled.as_slice()).await
        {
            give_buffer(filled);
            return Err(e.into());
        }
        if done {
            let (w, buf) = writer.write(filled).await;
            give_buffer(buf);
            w?;
            return Ok(body);
        }
        let ((w, written), (r, next)) =
            futures_util::future::join(writer.write(filled), body.next(call.conn, take_buffer())).await;
        give_buffer(written);
        if let Err(e) = w {
            give_buffer(next);
            return Err(e.into());
        }
        done = match r {
            Ok(d) => d,
            Err(e) => {
                give_buffer(next);
                return Err(e);
            }
        };
        filled = next;
    }
}

/// Copies `len` bytes of an opened source from `start` into a writer, checking the source's
/// stored checksums on the way: a bit-rotted source fails the copy (500) and nothing is written.
pub(crate) async fn copy_into(
    call: &Call<'_>,
    source: &Source,
    start: u64,
    len: u64,
    writer: &mut DataWriter,
) -> Result<(), S3Error> {
    match (source, &call.ctx.config.cluster) {
        (Source::Local(reader), _) => reader.copy_verified(start, len, writer).await.map_err(S3Error::from),
        (Source::Peer { node, bucket, key, meta }, Some(cluster)) => {
            crate::cluster::peer::copy_range(cluster, node, (bucket, key, meta), (start, len), writer).await
        }
        (Source::Peer { .. }, None) => Err(S3Error::code(S3ErrorCode::InternalError)),
    }
}

/// A copy's source: here, or on the node that owns it in a cluster.
pub(crate) enum Source {
    Local(ObjectReader),
    Peer { node: crate::cluster::Node, bucket: String, key: String, meta: engine::ObjectMeta },
}

impl Source {
    pub(crate) fn meta(&self) -> &engine::ObjectMeta {
        match self {
            Source::Local(r) => &r.meta,
            Source::Peer { meta, .. } => meta,
        }
    }
}

/// Checks the `x-amz-copy-source-if-*` conditions; every failure is 412 (never 304).
pub(crate) fn copy_source_conditions(call: &Call<'_>, src: &ObjectMeta) -> Result<(), S3Error> {
    let conditions = Conditions {
        if_match: call.header("x-amz-copy-source-if-match"),
        if_none_match: call.header("x-amz-copy-source-if-none-match"),
        if_modified_since: call.header("x-amz-copy-source-if-modified-since"),
        if_unmodified_since: call.header("x-amz-copy-source-if-unmodified-since"),
    };
    if conditions.evaluate(&src.etag(), src.mtime_ms / 1000, false) != Outcome::Proceed {
        return Err(S3Error::code(S3ErrorCode::PreconditionFailed));
    }
    Ok(())
}

pub async fn put_object(call: &mut Call<'_>) -> Result<Response, S3Error> {
    let store = call.ctx.store.clone();
    let bucket = store.bucket(call.bucket())?;
    engine::keys::validate_key(call.key())?;
    let declared = declared_length(call)?;
    let expected = ExpectedChecksums::from_request(call.req, &call.auth.payload)?;
    let (system, user) = metadata_from_headers(call)?;
    let mut condition = put_precondition(call)?;
    let (acl, grants) = super::acl::for_write(call.req, &call.ctx.config.credentials, AclTarget::Object)?;
    let tags = super::tagging::for_write(call)?;
    let lock = super::lock::for_write(call)?;
    let mut writer = store.put_writer(call.bucket(), call.key(), declared, expected.algorithm())?;
    // A backend bucket's object is written through: the remote gets the body as it arrives and
    // must have it whole before the local copy commits.
    // A conditional write there is decided by the remote (one conditional PUT); the local copy
    // then follows it unconditionally.
    let mut sink = match remote::remote_in(call, bucket)? {
        Some((agent, remote)) => {
            let on_remote = remote::condition_for_remote(std::mem::take(&mut condition))?;
            let meta = (system.content_type.clone(), user.clone());
            Some(agent.put(&remote, call.key(), declared, meta, on_remote)?)
        }
        None => None,
    };
    let body = stream_body_to(call, writer.data(), &expected, sink.as_mut()).await?;
    let flex_expected = body.expected_flex()?;
    let opts = PutOptions {
        system,
        user,
        condition,
        content_md5: expected.content_md5,
        flex_expected,
        acl,
        tags,
        lock,
        remote: None,
        md5: None,
        owner: access::object_owner(call.ctx, call.bucket(), &call.auth.identity, acl),
        grants,
    };
    let meta = writer
        .finish_gated(opts, async move {
            let Some(sink) = sink else { return Ok(None) };
            let put = sink.finish().await?;
            Ok::<_, S3Error>(put.etag.map(|etag| (RemoteVersion { etag, version: put.version }, time::now_ms())))
        })
        .await?;
    let mut resp = Response::new(200).header("ETag", quoted(&meta.etag()));
    if let Some(f) = &meta.flex_checksum {
        checksum::echo(&mut resp, f);
    }
    write_version_header(&mut resp, &meta);
    Ok(resp)
}

/// `x-amz-version-id` of a version a write made in a versioned bucket (none for the null
/// version a write makes while versioning is suspended, as S3 answers).
pub(crate) fn write_version_header(resp: &mut Response, meta: &ObjectMeta) {
    if meta.version.stamp != 0 && !meta.version.null {
        resp.push_header("x-amz-version-id", meta.version.id());
    }
}

/// `x-amz-version-id` of the version an answer is about, when it was written in a versioned
/// bucket.
pub(crate) fn version_header(resp: &mut Response, meta: &ObjectMeta) {
    if meta.version.stamp != 0 {
        resp.push_header("x-amz-version-id", meta.version.id());
    }
}

/// Adds the headers GET and HEAD return for an object, honouring `response-*` overrides.
fn object_headers(resp: &mut Response, meta: &ObjectMeta, overrides: &Overrides) {
    let s = &meta.system;
    resp.push_header("ETag", HeaderValue::format(format_args!("\"{}\"", meta.etag_display())));
    resp.push_header("Last-Modified", time::http_date_value(meta.mtime_ms));
    resp.push_header("Accept-Ranges", "bytes");
    let stored = [
        &s.content_type,
        &s.content_encoding,
        &s.content_disposition,
        &s.cache_control,
        &s.expires,
        &s.content_language,
    ];
    for (((name, _), over), stored) in OVERRIDES.iter().zip(&overrides.0).zip(stored) {
        match over.as_ref().or(stored.as_ref()) {
            Some(v) => resp.push_header(*name, v.as_str()),
            None if *name == "Content-Type" => resp.push_header(*name, HeaderValue::from_static(DEFAULT_CONTENT_TYPE)),
            None => {}
        }
    }
    for (k, v) in &meta.user {
        resp.push_header(format!("x-amz-meta-{k}"), v.clone());
    }
    // Written in a versioned bucket (records from before versioning have stamp 0).
    if meta.version.stamp != 0 {
        resp.push_header("x-amz-version-id", meta.version.id());
    }
    super::lock::headers(resp, &meta.lock);
    if !meta.tags.is_empty() {
        resp.push_header("x-amz-tagging-count", HeaderValue::format(format_args!("{}", meta.tags.len())));
    }
}

/// The answer to a GET or HEAD of a key that has no current version: 404, saying so when a
/// delete marker hides the key (`x-amz-delete-marker`, the marker's `x-amz-version-id`).
fn missing(call: &Call<'_>) -> S3Error {
    let e = call.access.missing(engine::Error::NoSuchObject);
    if e.code != S3ErrorCode::NoSuchKey {
        return e;
    }
    match call.ctx.store.latest_delete_marker(call.bucket(), call.key()) {
        Ok(Some(m)) => e.with_header("x-amz-delete-marker", "true").with_header("x-amz-version-id", m.id()),
        _ => e,
    }
}

/// Where an object GET starts and how much it serves.
struct Selection {
    status: u16,
    start: u64,
    len: u64,
    parts_count: Option<usize>,
}

/// Resolves `Range` or `partNumber` against the object.
fn select(call: &Call<'_>, meta: &ObjectMeta, part: Option<u32>) -> Result<Selection, S3Error> {
    let size = meta.size;
    if let Some(n) = part {
        if call.header("range").is_some() {
            return Err(S3Error::new(
                S3ErrorCode::InvalidRequest,
                "Cannot specify both Range header and partNumber query parameter",
            ));
        }
        let not_satisfiable =
            || S3Error::new(S3ErrorCode::InvalidPartNumber, "The requested partnumber is not satisfiable");
        return match &meta.data {
            engine::DataLoc::Parts(parts) => {
                let p = parts.get(n as usize - 1).ok_or_else(not_satisfiable)?;
                let start: u64 = parts[..n as usize - 1].iter().map(|p| p.size).sum();
                // An empty part has no byte range to name: 200 with an empty body.
                let status = if p.size == 0 { 200 } else { 206 };
                Ok(Selection { status, start, len: p.size, parts_count: Some(parts.len()) })
            }
            // A single-part object is its own part 1: a range over all of it.
            _ if n == 1 && size > 0 => Ok(Selection { status: 206, start: 0, len: size, parts_count: None }),
            _ if n == 1 => Ok(Selection { status: 200, start: 0, len: 0, parts_count: None }),
            _ => Err(not_satisfiable()),
        };
    }
    match range::resolve(call.header("range"), size) {
        RangeCheck::Whole => Ok(Selection { status: 200, start: 0, len: size, parts_count: None }),
        RangeCheck::Partial { start, len } => Ok(Selection { status: 206, start, len, parts_count: None }),
        RangeCheck::Unsatisfiable => {
            Err(S3Error::code(S3ErrorCode::InvalidRange).with_header("Content-Range", format!("bytes */{size}")))
        }
    }
}

/// How many times GET looks an object up again when an overwrite unlinked its files in between.
const GET_ATTEMPTS_MAX: usize = 4;

/// Looks an object up for a reader: a missing key is 404 only to who may list the bucket, and
/// the object's ACL (or the bucket's policy) must let the caller read it.
fn lookup_readable(call: &Call<'_>) -> Result<engine::Located, S3Error> {
    let found = match call.version() {
        Some(v) => call.ctx.store.lookup_version(call.bucket(), call.key(), v),
        None => call.ctx.store.lookup(call.bucket(), call.key()),
    };
    let located = found.map_err(|e| call.access.missing(e))?;
    call.access.check_object_of(&call.auth.identity, &located.meta)?;
    Ok(located)
}

/// A GET or HEAD's answer before its body: 304/412 from the conditions, or the status and
/// headers with the byte selection to send.
enum Answer {
    Done(Response),
    Send(Response, Selection),
}

fn answer(call: &Call<'_>, meta: &ObjectMeta, params: &Read) -> Result<Answer, S3Error> {
    let part = params.part;
    let etag = HeaderValue::format(format_args!("{}", meta.etag_display()));
    let conditions = Conditions {
        if_match: call.header("if-match"),
        if_none_match: call.header("if-none-match"),
        if_modified_since: call.header("if-modified-since"),
        if_unmodified_since: call.header("if-unmodified-since"),
    };
    match conditions.evaluate(&etag, meta.mtime_ms / 1000, true) {
        Outcome::Proceed => {}
        Outcome::NotModified => {
            return Ok(Answer::Done(
                Response::new(304)
                    .header("ETag", quoted(&etag))
                    .header("Last-Modified", time::http_date(meta.mtime_ms)),
            ));
        }
        Outcome::PreconditionFailed => return Err(S3Error::code(S3ErrorCode::PreconditionFailed)),
    }
    let sel = select(call, meta, part)?;
    let mut resp = Response::new(sel.status);
    object_headers(&mut resp, meta, &params.overrides);
    if sel.status == 206 {
        assert!(sel.len > 0, "a partial answer names at least one byte");
        resp.push_header("Content-Range", format!("bytes {}-{}/{}", sel.start, sel.start + sel.len - 1, meta.size));
    }
    if let Some(n) = sel.parts_count {
        resp.push_header("x-amz-mp-parts-count", n.to_string());
    }
    // Checksums only on request: the whole object's on a whole answer, a part's on a part
    // number's answer (its own checksum, with the object's checksum type), never on a range.
    if call.header("x-amz-checksum-mode").is_some_and(|m| m.trim().eq_ignore_ascii_case("ENABLED"))
        && let Some(f) = &meta.flex_checksum
    {
        match (part, &meta.data) {
            (Some(n), engine::DataLoc::Parts(parts)) => {
                if let Some(pf) = parts.get(n as usize - 1).and_then(|p| p.flex.as_ref()) {
                    resp.push_header(format!("x-amz-checksum-{}", pf.algorithm.suffix()), checksum::encode_value(pf));
                    resp.push_header("x-amz-checksum-type", if f.parts > 0 { "COMPOSITE" } else { "FULL_OBJECT" });
                }
            }
            (Some(_), _) => checksum::echo(&mut resp, f),
            (None, _) if sel.status == 200 && sel.len == meta.size => checksum::echo(&mut resp, f),
            (None, _) => {}
        }
    }
    Ok(Answer::Send(resp, sel))
}

/// A plain ranged GET of a backend bucket's key not held here, answered from a ranged remote
/// read (`remote::cold_range`); `None` to answer it otherwise.
async fn cold_range(call: &Call<'_>, params: &Read) -> Result<Option<Response>, S3Error> {
    let Some(r) = call.header("range").and_then(crate::s3::range::parse) else { return Ok(None) };
    let Some(cold) = remote::cold_range(call, r).await? else { return Ok(None) };
    match answer(call, &cold.meta, params)? {
        Answer::Send(mut resp, sel) if (sel.start, sel.len) == (cold.start, cold.len) => {
            resp.body = cold.body;
            Ok(Some(resp))
        }
        Answer::Send(..) => Err(crate::backend::RemoteError::Changed.into()),
        Answer::Done(r) => Ok(Some(r)),
    }
}

/// A HEAD answered from a record that is not stored here (the remote's description of it).
pub fn head_of(call: &Call<'_>, meta: &ObjectMeta, params: &Read) -> Result<Response, S3Error> {
    match answer(call, meta, params)? {
        Answer::Done(r) => Ok(r),
        Answer::Send(mut resp, sel) => {
            resp.body = Body::HeadOnly(sel.len);
            Ok(resp)
        }
    }
}

/// How many times a GET of a backend bucket's key fetches it before giving up (a fetch another
/// reader led may have failed).
const FETCH_ATTEMPTS_MAX: usize = 2;

pub async fn get_object(call: &mut Call<'_>, params: &Read, head: bool) -> Result<Response, S3Error> {
    let mut attempts = 0;
    let mut fetches = 0;
    loop {
        let found = match params.version {
            Some(v) => call.ctx.store.lookup_version(call.bucket(), call.key(), v),
            None => call.ctx.store.lookup(call.bucket(), call.key()),
        };
        let located = match found {
            Ok(l) => {
                call.access.check_object_of(&call.auth.identity, &l.meta)?;
                if l.meta.remote.is_some() && fetches < FETCH_ATTEMPTS_MAX {
                    match remote::validate_warm(call, &l.meta).await? {
                        remote::Warm::Fresh => {}
                        remote::Warm::Stale => {
                            fetches += 1;
                            continue;
                        }
                        remote::Warm::Gone => return Err(call.access.missing(engine::Error::NoSuchObject)),
                    }
                }
                l
            }
            Err(engine::Error::NoSuchObject) if fetches < FETCH_ATTEMPTS_MAX => {
                // A plain GET of the whole object streams while it is cached; a plain ranged GET
                // streams its range while the object is cached behind it; parts and conditions
                // are answered from the cached copy.
                let plain = !head
                    && params.part.is_none()
                    && ["if-match", "if-none-match", "if-modified-since", "if-unmodified-since"]
                        .iter()
                        .all(|h| call.header(h).is_none());
                if plain
                    && fetches == 0
                    && let Some(resp) = cold_range(call, params).await?
                {
                    return Ok(resp);
                }
                let whole = plain && call.header("range").is_none();
                match remote::on_miss(call, head, whole).await? {
                    remote::Miss::Local => return Err(missing(call)),
                    remote::Miss::Cached => {
                        fetches += 1;
                        continue;
                    }
                    remote::Miss::Remote(meta) => return head_of(call, &meta, params),
                    remote::Miss::Streaming(meta, body) => {
                        return match answer(call, &meta, params)? {
                            Answer::Done(r) => Ok(r),
                            Answer::Send(mut resp, _) => {
                                resp.body = body;
                                Ok(resp)
                            }
                        };
                    }
                }
            }
            Err(e) => return Err(call.access.missing(e)),
        };
        let meta = &located.meta;
        let (mut resp, sel) = match answer(call, meta, params)? {
            Answer::Done(r) => return Ok(r),
            Answer::Send(resp, sel) => (resp, sel),
        };
        if head {
            resp.body = Body::HeadOnly(sel.len);
            return Ok(resp);
        }
        let validate = call.ctx.config.validate_on_read
            || call.ctx.store.with_bucket(call.bucket(), |b| b.validate_on_read).unwrap_or(false);
        // Verified before the first byte goes out: a corrupt object is a 500, never bad bytes (or,
        // in a copies bucket, served from a good copy while the bad one is rewritten; in a
        // cluster, the bad copy is first rewritten from another node's good one).
        let bad = call.ctx.config.cluster.as_ref().map(|_| located.meta.clone());
        match located.open_checked(sel.start, sel.len, validate).await {
            Ok(reader) => {
                resp.body = body_of(reader, sel.start, sel.len);
                return Ok(resp);
            }
            Err(engine::Error::ObjectChanged) if attempts + 1 < GET_ATTEMPTS_MAX => attempts += 1,
            Err(e @ engine::Error::Corrupt { .. }) => match (&call.ctx.config.cluster, bad) {
                (Some(cluster), Some(bad)) if attempts + 1 < GET_ATTEMPTS_MAX => {
                    if !crate::cluster::copies::restore(call.ctx, cluster, (call.bucket(), call.key()), &bad).await? {
                        return Err(e.into());
                    }
                    attempts += 1;
                }
                _ => return Err(e.into()),
            },
            Err(e) => return Err(e.into()),
        }
    }
}

/// The answer's body: an inline object's bytes as they are, else the files' ranges to send.
fn body_of(mut reader: engine::ObjectReader, start: u64, len: u64) -> Body {
    if let Some(bytes) = reader.take_inline(start, len) {
        return Body::Bytes(bytes);
    }
    let spans = reader.into_pieces(start, len).into_iter().map(|p| match p {
        engine::Piece::File { file, offset, len, mountpath } => Span::File { file, offset, len, origin: mountpath },
        engine::Piece::Inline(bytes) => Span::Bytes(bytes),
    });
    Body::Spans(spans.collect())
}

/// GetObjectAttributes: the attributes `x-amz-object-attributes` names (ETag, Checksum,
/// ObjectParts, StorageClass, ObjectSize), without the body.
pub async fn get_attributes(call: &mut Call<'_>) -> Result<Response, S3Error> {
    let meta = lookup_readable(call)?.meta;
    let wanted: Vec<String> = call
        .req
        .headers
        .iter()
        .filter(|(k, _)| k == "x-amz-object-attributes")
        .flat_map(|(_, v)| v.split(',').map(|a| a.trim().to_owned()))
        .filter(|a| !a.is_empty())
        .collect();
    if wanted.is_empty() {
        return Err(S3Error::new(S3ErrorCode::InvalidArgument, "x-amz-object-attributes names no attribute"));
    }
    let want = |a: &str| wanted.iter().any(|w| w.eq_ignore_ascii_case(a));
    let mut w = XmlWriter::new();
    w.open_root("GetObjectAttributesResponse");
    if want("ETag") {
        w.elem("ETag", &meta.etag());
    }
    if want("Checksum")
        && let Some(f) = &meta.flex_checksum
    {
        w.open("Checksum");
        w.elem(&format!("Checksum{}", f.algorithm.name()), &checksum::encode_value(f));
        w.elem("ChecksumType", if f.parts > 0 { "COMPOSITE" } else { "FULL_OBJECT" });
        w.close("Checksum");
    }
    if want("ObjectParts")
        && let engine::DataLoc::Parts(parts) = &meta.data
    {
        let max = match call.header("x-amz-max-parts").map(|v| v.trim().parse::<usize>()) {
            None => engine_limits::LIST_PAGE_KEYS_MAX,
            Some(Ok(n)) => n.min(engine_limits::LIST_PAGE_KEYS_MAX),
            Some(Err(_)) => return Err(S3Error::new(S3ErrorCode::InvalidArgument, "x-amz-max-parts must be a number")),
        };
        let marker = match call.header("x-amz-part-number-marker").map(|v| v.trim().parse::<usize>()) {
            None => 0,
            Some(Ok(n)) => n,
            Some(Err(_)) => {
                return Err(S3Error::new(S3ErrorCode::InvalidArgument, "x-amz-part-number-marker must be a number"));
            }
        };
        let page: Vec<(usize, &engine::PartLoc)> =
            parts.iter().enumerate().map(|(i, p)| (i + 1, p)).skip(marker).take(max).collect();
        let truncated = marker + page.len() < parts.len();
        w.open("ObjectParts");
        w.elem_num("PartsCount", parts.len() as u64);
        w.elem_num("PartNumberMarker", marker as u64);
        if let Some((n, _)) = page.last() {
            w.elem_num("NextPartNumberMarker", *n as u64);
        }
        w.elem_num("MaxParts", max as u64);
        w.elem_bool("IsTruncated", truncated);
        for (n, p) in page {
            w.open("Part");
            if let Some(f) = &p.flex {
                w.elem(&format!("Checksum{}", f.algorithm.name()), &checksum::encode_value(f));
            }
            w.elem_num("PartNumber", n as u64);
            w.elem_num("Size", p.size);
            w.close("Part");
        }
        w.close("ObjectParts");
    }
    if want("StorageClass") {
        w.elem("StorageClass", "STANDARD");
    }
    if want("ObjectSize") {
        w.elem_num("ObjectSize", meta.size);
    }
    w.close("GetObjectAttributesResponse");
    let mut resp =
        Response::with_body(200, "application/xml", w.finish()).header("Last-Modified", time::http_date(meta.mtime_ms));
    version_header(&mut resp, &meta);
    Ok(resp)
}

/// GetObjectAcl: the owner's FULL_CONTROL plus what the object's canned ACL grants.
pub async fn get_acl(call: &mut Call<'_>) -> Result<Response, S3Error> {
    let bucket = call.ctx.store.bucket(call.bucket())?;
    let meta = match call.version() {
        Some(v) => call.ctx.store.head_version(call.bucket(), call.key(), v)?,
        None => call.ctx.store.head_object(call.bucket(), call.key())?,
    };
    let owner = meta.owner.as_deref().unwrap_or(&bucket.owner);
    let w = super::bucket::acl_document((owner, &bucket.owner), meta.acl, &meta.grants);
    Ok(Response::with_body(200, "application/xml", w.finish()))
}

/// PutObjectAcl with a canned ACL (`x-amz-acl`): rewrites the object's record with the new ACL,
/// on the condition that the record is still the one read (a concurrent write wins).
pub async fn put_acl(call: &mut Call<'_>) -> Result<Response, S3Error> {
    let bucket = call.ctx.store.bucket(call.bucket())?;
    let body = call.read_small_body().await?;
    let current = match call.version() {
        Some(v) => call.ctx.store.head_version(call.bucket(), call.key(), v)?,
        None => call.ctx.store.head_object(call.bucket(), call.key())?,
    };
    let owner = current.owner.as_deref().unwrap_or(&bucket.owner);
    let who = (&call.ctx.config.credentials, owner);
    let (acl, grants) = super::acl::for_put_acl(call.req, &body, who, AclTarget::Object)?;
    super::bucket::refuse_public(&bucket, acl, &grants)?;
    let set = |m: &mut ObjectMeta| {
        m.acl = acl;
        m.grants.clone_from(&grants);
        Ok(())
    };
    call.ctx.store.change_version(call.bucket(), call.key(), call.version(), &set).await?;
    Ok(Response::new(200))
}

/// A copy source: bucket, key, and the version named (none: the current one).
pub(crate) type CopySource = (String, String, Option<engine::VersionRef>);

/// `x-amz-copy-source: [/]bucket/key[?versionId=...]`, URL-encoded.
pub(crate) fn parse_copy_source(v: &str) -> Result<CopySource, S3Error> {
    let bad = || {
        S3Error::new(
            S3ErrorCode::InvalidArgument,
            "Copy Source must mention the source bucket and key: sourcebucket/sourcekey",
        )
    };
    let v = v.trim();
    let (v, version) = match v.split_once("?versionId=") {
        None => (v, None),
        Some((p, version)) => match engine::VersionRef::parse(version) {
            Some(r) => (p, Some(r)),
            None => return Err(params::invalid_version(version)),
        },
    };
    let decoded = percent_decode(v).ok_or_else(bad)?;
    let path = decoded.strip_prefix('/').unwrap_or(&decoded);
    let (b, k) = path.split_once('/').ok_or_else(bad)?;
    if b.is_empty() || k.is_empty() {
        return Err(bad());
    }
    Ok((b.to_owned(), k.to_owned(), version))
}

/// Opens a copy source the caller may read (as GetObject would decide), honouring
/// `x-amz-source-expected-bucket-owner`.
pub(crate) async fn open_source(call: &Call<'_>, (bucket, key, version): &CopySource) -> Result<Source, S3Error> {
    let origin = (call.conn.peer(), call.conn.is_tls());
    let access = access::to_source(call.ctx, (call.req, &call.auth.identity, origin), (bucket, key, *version))?;
    if let Some(v) = version {
        let reader = call.ctx.store.open_version(bucket, key, *v).await.map_err(|e| match e {
            // A delete marker is no source: S3 answers as for a missing key.
            engine::Error::DeleteMarker { .. } => S3Error::new(
                S3ErrorCode::InvalidRequest,
                "The source of a copy request may not specifically refer to a delete marker by version id.",
            ),
            e => access.missing(e),
        })?;
        access.check_object_of(&call.auth.identity, &reader.meta)?;
        return Ok(Source::Local(reader));
    }
    if let Some(want) = call.header("x-amz-source-expected-bucket-owner")
        && call.ctx.store.bucket(bucket)?.owner != want.trim()
    {
        return Err(S3Error::code(S3ErrorCode::AccessDenied));
    }
    // In a cluster, a source another node holds is read from it.
    if let Some(cluster) = &call.ctx.config.cluster
        && let Some(node) = crate::cluster::rebalance::source_holder(call.ctx, cluster, bucket, key).await?
    {
        let meta = crate::cluster::peer::source_meta(cluster, &node, bucket, key).await.map_err(|e| {
            if e.code == S3ErrorCode::NoSuchKey { access.missing(engine::Error::NoSuchObject) } else { e }
        })?;
        access.check_object_of(&call.auth.identity, &meta)?;
        return Ok(Source::Peer { node, bucket: bucket.to_owned(), key: key.to_owned(), meta });
    }
    // A backend bucket's source not held here is fetched first (for who may read it).
    if access.check_object(engine::CannedAcl::Private).is_ok() {
        remote::ensure_cached(call, bucket, key).await.map_err(|e| match e.code {
            S3ErrorCode::NoSuchKey => access.missing(engine::Error::NoSuchObject),
            _ => e,
        })?;
    }
    let reader = call.ctx.store.open_object(bucket, key).await.map_err(|e| access.missing(e))?;
    access.check_object_of(&call.auth.identity, &reader.meta)?;
    Ok(Source::Local(reader))
}

pub async fn copy_object(call: &mut Call<'_>) -> Result<Response, S3Error> {
    let store = call.ctx.store.clone();
    store.bucket(call.bucket())?;
    engine::keys::validate_key(call.key())?;
    let copy_source = parse_copy_source(call.header("x-amz-copy-source").unwrap_or(""))?;
    let source = open_source(call, &copy_source).await?;
    let (src_bucket, src_key, _) = &copy_source;
    let src = source.meta();
    let src_version = src.version;
    copy_source_conditions(call, src)?;
    let replace = match call.header("x-amz-metadata-directive").map(str::trim) {
        None | Some("COPY") => false,
        Some("REPLACE") => true,
        Some(_) => {
            return Err(S3Error::new(S3ErrorCode::InvalidArgument, "Unknown metadata directive."));
        }
    };
    // A copy of an older version onto its own key is how a version is restored.
    if !replace && copy_source.2.is_none() && src_bucket == call.bucket() && src_key == call.key() {
        return Err(S3Error::new(
            S3ErrorCode::InvalidRequest,
            "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.",
        ));
    }
    let (system, user) = if replace { metadata_from_headers(call)? } else { (src.system.clone(), src.user.clone()) };
    // S3 does not copy ACLs: the copy is private unless the request names one.
    let (acl, grants) = super::acl::for_write(call.req, &call.ctx.config.credentials, AclTarget::Object)?;
    let tags = super::tagging::for_copy(call, &src.tags)?;
    let lock = super::lock::for_write(call)?;
    let condition = put_precondition(call)?;
    let target = remote::remote_of(call)?;
    if target.is_some() && matches!(source, Source::Peer { .. }) {
        return Err(S3Error::new(
            S3ErrorCode::NotImplemented,
            "Copying into a backend bucket from a source on another node is not implemented.",
        ));
    }
    if target.is_some() && !matches!(condition, WriteCondition::Always) {
        return Err(S3Error::new(
            S3ErrorCode::NotImplemented,
            "Conditional writes to a backend bucket are not implemented.",
        ));
    }
    let remote_meta = target.as_ref().map(|_| (system.content_type.clone(), user.clone()));
    let owner = access::object_owner(call.ctx, call.bucket(), &call.auth.identity, acl);
    let opts = PutOptions { system, user, condition, acl, tags, lock, owner, grants, ..Default::default() };
    let flex = src.flex_checksum.as_ref().map(|f| f.algorithm);
    let mut writer = store.put_writer(call.bucket(), call.key(), Some(src.size), flex)?;
    // The copy checks the source's stored checksums as it reads; into a backend bucket the
    // remote then gets it whole before the local copy commits with the remote's identity.
    copy_into(call, &source, 0, src.size, writer.data()).await?;
    let key = call.key().to_owned();
    let meta = writer
        .finish_gated(opts, async {
            match (target, remote_meta, &source) {
                (Some(target), Some(meta), Source::Local(reader)) => {
                    remote::write_through(target, &key, reader, meta).await
                }
                _ => Ok(None),
            }
        })
        .await?;
    let mut w = XmlWriter::new();
    w.open_root("CopyObjectResult");
    w.elem("LastModified", &time::iso8601_ms(meta.mtime_ms));
    w.etag(&meta.etag());
    w.close("CopyObjectResult");
    let mut resp = Response::with_body(200, "application/xml", w.finish());
    write_version_header(&mut resp, &meta);
    if src_version.stamp != 0 {
        resp.push_header("x-amz-copy-source-version-id", src_version.id());
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_sources() {
        assert_eq!(parse_copy_source("/b/k%20x").unwrap(), ("b".into(), "k x".into(), None));
        assert_eq!(
            parse_copy_source("b/a/b?versionId=null").unwrap(),
            ("b".into(), "a/b".into(), Some(engine::VersionRef::Null))
        );
        assert!(parse_copy_source("b/a/b?versionId=zz").is_err());
        assert!(parse_copy_source("b").is_err());
        assert!(parse_copy_source("/b/").is_err());
    }
}
