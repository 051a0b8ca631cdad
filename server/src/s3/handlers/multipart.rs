//! Multipart upload operations: Create, UploadPart, UploadPartCopy, Complete, Abort, ListParts,
//! ListMultipartUploads.

use engine::{CompletePart, FlexAlgorithm, FlexType, UploadOptions, UploadQuery, limits as engine_limits};

use crate::http::Response;
use crate::http::uri::uri_encode;
use crate::s3::Call;
use crate::s3::access::{AclTarget, canned_from};
use crate::s3::checksum::{self, ExpectedChecksums};
use crate::s3::error::{S3Error, S3ErrorCode};
use crate::s3::handlers::object::{
    copy_into, copy_source_conditions, declared_length, metadata_from_headers, open_source, parse_copy_source,
    stream_body,
};
use crate::s3::params::{self, PartTarget};
use crate::s3::range;
use crate::s3::xml::{Element, XmlWriter, quoted};
use crate::time;

fn xml(w: XmlWriter) -> Response {
    Response::with_body(200, "application/xml", w.finish())
}

pub async fn create(call: &mut Call<'_>) -> Result<Response, S3Error> {
    engine::keys::validate_key(call.key())?;
    // A backend bucket's upload ends on the remote: a key it cannot name is refused now.
    if let Some((agent, _)) = super::remote::remote_of(call)? {
        agent.nameable(call.key())?;
    }
    let (system, user) = metadata_from_headers(call)?;
    let flex = upload_checksum(call)?;
    let acl = canned_from(call.req, AclTarget::Object)?.unwrap_or_default();
    let tags = super::tagging::for_write(call)?;
    let lock = super::lock::for_write(call)?;
    let opts = UploadOptions { system, user, flex, acl, tags, lock };
    let id = call.ctx.store.create_upload(call.bucket(), call.key(), call.auth.identity.name(), opts).await?;
    let mut w = XmlWriter::new();
    w.open_root("InitiateMultipartUploadResult");
    w.elem("Bucket", call.bucket());
    w.elem("Key", call.key());
    w.elem("UploadId", &id);
    w.close("InitiateMultipartUploadResult");
    let mut resp = xml(w);
    if let Some((alg, kind)) = flex {
        resp.push_header("x-amz-checksum-algorithm", alg.name());
        resp.push_header("x-amz-checksum-type", type_name(kind));
    }
    Ok(resp)
}

fn type_name(kind: FlexType) -> &'static str {
    match kind {
        FlexType::Composite => "COMPOSITE",
        FlexType::FullObject => "FULL_OBJECT",
    }
}

/// `x-amz-checksum-algorithm` and `x-amz-checksum-type` of CreateMultipartUpload. CRC64NVME is
/// always full-object; the others default to composite, as on S3.
fn upload_checksum(call: &Call<'_>) -> Result<Option<(FlexAlgorithm, FlexType)>, S3Error> {
    let kind = match call.header("x-amz-checksum-type").map(|t| t.trim().to_ascii_uppercase()) {
        None => None,
        Some(t) if t == "COMPOSITE" => Some(FlexType::Composite),
        Some(t) if t == "FULL_OBJECT" => Some(FlexType::FullObject),
        Some(t) => return Err(S3Error::new(S3ErrorCode::InvalidRequest, format!("Unknown checksum type {t}"))),
    };
    let Some(name) = call.header("x-amz-checksum-algorithm") else {
        return match kind {
            None => Ok(None),
            Some(_) => {
                Err(S3Error::new(S3ErrorCode::InvalidRequest, "x-amz-checksum-type needs x-amz-checksum-algorithm"))
            }
        };
    };
    let alg = FlexAlgorithm::parse(name)
        .ok_or_else(|| S3Error::new(S3ErrorCode::InvalidRequest, format!("Unsupported checksum algorithm {name:?}")))?;
    let kind = match (alg, kind) {
        (FlexAlgorithm::Crc64Nvme, Some(FlexType::Composite)) => {
            return Err(S3Error::new(
                S3ErrorCode::InvalidRequest,
                "CRC64NVME supports only the FULL_OBJECT checksum type",
            ));
        }
        (a, Some(FlexType::FullObject)) if !a.is_crc() => {
            return Err(S3Error::new(
                S3ErrorCode::InvalidRequest,
                "Only CRC algorithms support the FULL_OBJECT checksum type",
            ));
        }
        (FlexAlgorithm::Crc64Nvme, None) => FlexType::FullObject,
        (_, Some(k)) => k,
        (_, None) => FlexType::Composite,
    };
    Ok(Some((alg, kind)))
}

pub async fn upload_part(call: &mut Call<'_>, target: &PartTarget) -> Result<Response, S3Error> {
    let (id, n) = (&target.upload_id, target.part_number);
    let declared = declared_length(call)?;
    let expected = ExpectedChecksums::from_request(call.req, &call.auth.payload)?;
    let store = call.ctx.store.clone();
    let mut writer = store.part_writer(call.bucket(), call.key(), id, n, declared, expected.algorithm())?;
    let body = stream_body(call, writer.data(), &expected).await?;
    let part = writer.finish(expected.content_md5, body.expected_flex()?).await?;
    let mut resp = Response::new(200).header("ETag", quoted(&part.etag()));
    if let Some(f) = &part.flex_checksum {
        resp.push_header(format!("x-amz-checksum-{}", f.algorithm.suffix()), checksum::encode_value(f));
    }
    Ok(resp)
}

pub async fn upload_part_copy(call: &mut Call<'_>, target: &PartTarget) -> Result<Response, S3Error> {
    let (id, n) = (&target.upload_id, target.part_number);
    let store = call.ctx.store.clone();
    store.upload(call.bucket(), call.key(), id)?;
    let copy_source = parse_copy_source(call.header("x-amz-copy-source").unwrap_or(""))?;
    let source = open_source(call, &copy_source).await?;
    copy_source_conditions(call, source.meta())?;
    let size = source.meta().size;
    let (start, len) = match call.header("x-amz-copy-source-range") {
        None => (0, size),
        Some(v) => match range::parse(v) {
            // S3 requires a first-last range here; one reaching past the source is unsatisfiable.
            Some(range::ByteRange::From { first, last: Some(last) }) if first <= last => {
                if last >= size {
                    return Err(S3Error::new(
                        S3ErrorCode::InvalidRange,
                        "The x-amz-copy-source-range reaches past the end of the source object.",
                    )
                    .with_header("Content-Range", format!("bytes */{size}")));
                }
                (first, last - first + 1)
            }
            _ => {
                return Err(S3Error::new(
                    S3ErrorCode::InvalidArgument,
                    "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy",
                ));
            }
        },
    };
    if len > engine_limits::OBJECT_PUT_BYTES_MAX {
        return Err(S3Error::new(S3ErrorCode::InvalidRequest, "A part copied by range may be at most 5 GiB"));
    }
    let mut writer = store.part_writer(call.bucket(), call.key(), id, n, Some(len), None)?;
    copy_into(call, &source, start, len, writer.data()).await?;
    let part = writer.finish(None, None).await?;
    let mut w = XmlWriter::new();
    w.open_root("CopyPartResult");
    w.elem("LastModified", &time::iso8601_ms(part.mtime_ms));
    w.etag(&part.etag());
    w.close("CopyPartResult");
    Ok(xml(w))
}

/// The parts a CompleteMultipartUpload document lists, in document order (elements inside a
/// `Part` may come in any order; quotes around ETags are kept and stripped later).
pub fn parse_complete(root: &Element) -> Result<Vec<CompletePart>, S3Error> {
    if root.name != "CompleteMultipartUpload" {
        return Err(S3Error::code(S3ErrorCode::MalformedXML));
    }
    let mut parts = Vec::new();
    for p in root.children_named("Part") {
        let number = p.child_text("PartNumber").and_then(|t| t.trim().parse::<u32>().ok());
        // A part may list its checksum (ChecksumCRC32, ...), which must match the stored one.
        let mut checksum = None;
        for alg in FlexAlgorithm::ALL {
            let tag = format!("Checksum{}", alg.name());
            if let Some(v) = p.child_text(&tag) {
                checksum = Some(
                    checksum::decode_value(alg, v)
                        .ok_or_else(|| S3Error::new(S3ErrorCode::InvalidPart, format!("{tag} is invalid")))?,
                );
            }
        }
        match (number, p.child_text("ETag")) {
            (Some(part_number), Some(etag)) => {
                parts.push(CompletePart { part_number, etag: etag.to_owned(), checksum })
            }
            _ => return Err(S3Error::code(S3ErrorCode::MalformedXML)),
        }
    }
    if parts.is_empty() {
        return Err(S3Error::new(S3ErrorCode::MalformedXML, "You must specify at least one part"));
    }
    Ok(parts)
}

/// Writes a CompleteMultipartUpload document (clients' side; used to test the parser).
pub fn encode_complete(parts: &[CompletePart]) -> Vec<u8> {
    let mut w = XmlWriter::new();
    w.open_root("CompleteMultipartUpload");
    for p in parts {
        w.open("Part");
        w.elem("ETag", &p.etag);
        w.elem_num("PartNumber", u64::from(p.part_number));
        w.close("Part");
    }
    w.close("CompleteMultipartUpload");
    w.finish()
}

/// A completion that found no upload: the object a completed one made, if it is still current
/// (a retry of a completion whose answer was lost), else the error.
async fn done(
    store: &engine::Store,
    (bucket, key, id): (&str, &str, &str),
    e: engine::Error,
) -> Result<engine::ObjectMeta, S3Error> {
    match e {
        engine::Error::NoSuchUpload => store.completed_upload(bucket, key, id).await?.ok_or_else(|| e.into()),
        e => Err(e.into()),
    }
}

/// CompleteMultipartUpload. Repeated after it succeeded (a client retrying a lost answer), it
/// answers the same result again, as S3 does, for as long as the object it made is current.
pub async fn complete(call: &mut Call<'_>, id: &str) -> Result<Response, S3Error> {
    let meta = match call.ctx.store.upload(call.bucket(), call.key(), id) {
        Err(e) => {
            let meta = done(&call.ctx.store, (call.bucket(), call.key(), id), e).await?;
            call.read_complete_xml().await?;
            meta
        }
        Ok(_) => {
            let condition = super::object::put_precondition(call)?;
            let root = call.read_complete_xml().await?.ok_or_else(|| S3Error::code(S3ErrorCode::MalformedXML))?;
            let parts = parse_complete(&root)?;
            let min = call.ctx.config.min_part_size;
            let expected = checksum::complete_expected(call.req)?;
            let opts = engine::CompleteOptions { min_part_size: min, flex_expected: expected, condition };
            match super::remote::remote_of(call)? {
                None => match call.ctx.store.complete_upload(call.bucket(), call.key(), id, &parts, opts).await {
                    Ok(meta) => meta,
                    Err(e) => done(&call.ctx.store, (call.bucket(), call.key(), id), e).await?,
                },
                // A backend bucket's upload goes to the remote whole, before anything commits here.
                Some(remote) => {
                    if !matches!(opts.condition, engine::WriteCondition::Always) {
                        return Err(S3Error::new(
                            S3ErrorCode::NotImplemented,
                            "Conditional writes to a backend bucket are not implemented.",
                        ));
                    }
                    let mut finished = complete_through(call, remote, id, parts, opts);
                    let wait = call.ctx.config.timeouts.complete_keepalive;
                    match compio::time::timeout(wait, &mut finished).await {
                        Ok(r) => r.unwrap_or_else(|_| Err(stopped()))?,
                        // Still sending to the remote: 200 now, spaces until the result.
                        Err(_) if call.ctx.config.cluster.is_none() => return Ok(keep_alive(call, finished, wait)),
                        Err(_) => finished.await.unwrap_or_else(|_| Err(stopped()))?,
                    }
                }
            }
        }
    };
    // In a cluster, an upload that began here before the key's owner changed: the object goes
    // to its owner before the client is answered.
    if let Some(cluster) = &call.ctx.config.cluster {
        crate::cluster::rebalance::after_completion(call.ctx, cluster, call.bucket(), call.key(), &meta).await?;
    }
    let mut resp = Response::with_body(200, "application/xml", result_xml(&Place::of(call), &meta));
    if let Some(f) = &meta.flex_checksum {
        checksum::echo(&mut resp, f);
    }
    super::object::write_version_header(&mut resp, &meta);
    Ok(resp)
}

/// Where a completion's result document says the object is.
struct Place {
    host: String,
    prefix: String,
    bucket: String,
    key: String,
}

impl Place {
    fn of(call: &Call<'_>) -> Place {
        Place {
            host: call.header("host").unwrap_or("localhost").to_owned(),
            prefix: call.ctx.config.prefix.clone(),
            bucket: call.bucket().to_owned(),
            key: call.key().to_owned(),
        }
    }
}

/// CompleteMultipartUploadResult for the object `meta`.
fn result_xml(at: &Place, meta: &engine::ObjectMeta) -> Vec<u8> {
    let mut w = XmlWriter::new();
    w.open_root("CompleteMultipartUploadResult");
    w.elem("Location", &format!("http://{}{}/{}/{}", at.host, at.prefix, at.bucket, uri_encode(&at.key, false)));
    w.elem("Bucket", &at.bucket);
    w.elem("Key", &at.key);
    w.etag(&meta.etag());
    if let Some(f) = &meta.flex_checksum {
        w.elem(&format!("Checksum{}", f.algorithm.name()), &checksum::encode_value(f));
        w.elem("ChecksumType", if f.parts > 0 { "COMPOSITE" } else { "FULL_OBJECT" });
    }
    w.close("CompleteMultipartUploadResult");
    w.finish()
}

type Finished = futures_channel::oneshot::Receiver<Result<engine::ObjectMeta, S3Error>>;

/// A backend bucket's completion on a task of its own: the assembled object goes to the remote
/// whole, then commits here with the remote's identity. It finishes even if the client goes.
fn complete_through(
    call: &Call<'_>,
    (agent, remote): (std::sync::Arc<crate::backend::Agent>, engine::RemoteBucket),
    id: &str,
    parts: Vec<CompletePart>,
    opts: engine::CompleteOptions,
) -> Finished {
    let (tx, rx) = futures_channel::oneshot::channel();
    let (store, bucket, key, id) =
        (call.ctx.store.clone(), call.bucket().to_owned(), call.key().to_owned(), id.to_owned());
    compio::runtime::spawn(async move {
        let gate = |object: engine::Located| {
            let key = key.clone();
            async move {
                let meta = (object.meta.system.content_type.clone(), object.meta.user.clone());
                let size = object.meta.size;
                let reader = object.open(0, size).await?;
                super::remote::write_through((agent, remote), &key, &reader, meta).await
            }
        };
        let r = match store.complete_upload_gated(&bucket, &key, &id, &parts, opts, gate).await {
            // Completed meanwhile (a retry of a completion whose answer was lost).
            Err(e) if e.code == S3ErrorCode::NoSuchUpload => {
                done(&store, (&bucket, &key, &id), engine::Error::NoSuchUpload).await
            }
            r => r,
        };
        let _ = tx.send(r);
    })
    .detach();
    rx
}

/// A completion still running after `every`: 200 at once with a space, then a space every
/// `every` until it ends, then its result document — or its error document, S3's "200 with an
/// error" that SDKs check CompleteMultipartUpload for (DESIGN D44). No XML declaration after
/// the spaces: it must open a document.
fn keep_alive(call: &Call<'_>, mut finished: Finished, every: std::time::Duration) -> Response {
    let (mut tx, body) = futures_channel::mpsc::channel::<Vec<u8>>(1);
    let (at, resource, request_id) = (Place::of(call), call.req.path.clone(), call.request_id.to_owned());
    let every = every.max(std::time::Duration::from_millis(10));
    compio::runtime::spawn(async move {
        use futures_util::SinkExt;
        let mut listening = tx.send(b" ".to_vec()).await.is_ok();
        let outcome = loop {
            match compio::time::timeout(every, &mut finished).await {
                Ok(r) => break r,
                Err(_) if listening => listening = tx.send(b" ".to_vec()).await.is_ok(),
                Err(_) => {}
            }
        };
        let doc = match outcome {
            Ok(Ok(meta)) => result_xml(&at, &meta),
            Ok(Err(e)) => e.to_xml(&resource, &request_id),
            Err(_) => stopped().to_xml(&resource, &request_id),
        };
        let doc = doc.strip_prefix(crate::s3::xml::DECLARATION.as_bytes()).map(<[u8]>::to_vec).unwrap_or(doc);
        let _ = tx.send(doc).await;
    })
    .detach();
    let mut resp = Response::new(200).header("Content-Type", "application/xml");
    resp.body = crate::http::Body::Chunked(body);
    resp
}

/// A completion task that ended without an answer (it panicked).
fn stopped() -> S3Error {
    S3Error::new(S3ErrorCode::InternalError, "The completion stopped without a result; retry it.")
}

pub async fn abort(call: &mut Call<'_>, id: &str) -> Result<Response, S3Error> {
    call.ctx.store.abort_upload(call.bucket(), call.key(), id).await?;
    Ok(Response::new(204))
}

/// Who will own the object an upload completes (`Ownership::owner_of`).
fn upload_owner(call: &Call<'_>, upload: &engine::UploadMeta) -> String {
    call.ctx
        .store
        .with_bucket(call.bucket(), |b| {
            engine::Ownership::owner_of(b, &upload.initiator, upload.acl).unwrap_or_else(|| b.owner.clone())
        })
        .unwrap_or_else(|| upload.initiator.clone())
}

pub async fn list_parts(call: &mut Call<'_>, p: &params::ListParts) -> Result<Response, S3Error> {
    let (id, marker, max) = (&p.upload_id, p.marker, p.max_parts);
    let upload = call.ctx.store.upload(call.bucket(), call.key(), id)?;
    let (parts, truncated) = call.ctx.store.list_parts(call.bucket(), call.key(), id, marker, max)?;
    let mut w = XmlWriter::new();
    w.open_root("ListPartsResult");
    w.elem("Bucket", call.bucket());
    w.elem("Key", call.key());
    w.elem("UploadId", id);
    w.owner("Initiator", &upload.initiator);
    w.owner("Owner", &upload_owner(call, &upload));
    w.elem("StorageClass", "STANDARD");
    if let Some((alg, kind)) = upload.flex {
        w.elem("ChecksumAlgorithm", alg.name());
        w.elem("ChecksumType", type_name(kind));
    }
    w.elem_num("PartNumberMarker", u64::from(marker));
    if let Some((last, _)) = parts.last() {
        w.elem_num("NextPartNumberMarker", u64::from(*last));
    }
    w.elem_num("MaxParts", max as u64);
    w.elem_bool("IsTruncated", truncated);
    for (n, p) in &parts {
        w.open("Part");
        w.elem_num("PartNumber", u64::from(*n));
        w.elem("LastModified", &time::iso8601_ms(p.mtime_ms));
        w.etag(&p.etag());
        w.elem_num("Size", p.size);
        if let Some(f) = &p.flex_checksum {
            w.elem(&format!("Checksum{}", f.algorithm.name()), &checksum::encode_value(f));
        }
        w.close("Part");
    }
    w.close("ListPartsResult");
    Ok(xml(w))
}

pub async fn list_uploads(call: &mut Call<'_>, p: &params::ListUploads) -> Result<Response, S3Error> {
    let enc = |s: &str| p.encoding.name(s);
    let (prefix, delimiter, key_marker, upload_id_marker) =
        (&p.prefix, &p.delimiter, &p.key_marker, &p.upload_id_marker);
    let max = p.max_uploads;
    let q = UploadQuery {
        prefix,
        delimiter: delimiter.as_deref(),
        key_marker: key_marker.as_deref(),
        upload_id_marker: upload_id_marker.as_deref(),
        max_uploads: max,
    };
    let page = match &call.ctx.config.cluster {
        Some(cluster) => crate::cluster::peer::list_uploads(call.ctx, cluster, call.bucket(), &q).await?,
        None => call.ctx.store.list_uploads(call.bucket(), &q)?,
    };
    let mut w = XmlWriter::new();
    w.open_root("ListMultipartUploadsResult");
    w.elem("Bucket", call.bucket());
    w.elem("KeyMarker", &enc(key_marker.as_deref().unwrap_or("")));
    w.elem("UploadIdMarker", upload_id_marker.as_deref().unwrap_or(""));
    if page.truncated {
        w.elem("NextKeyMarker", &enc(page.next_key_marker.as_deref().unwrap_or("")));
        w.elem("NextUploadIdMarker", page.next_upload_id_marker.as_deref().unwrap_or(""));
    }
    if let Some(d) = &delimiter {
        w.elem("Delimiter", &enc(d));
    }
    w.elem("Prefix", &enc(prefix));
    w.elem_num("MaxUploads", max as u64);
    w.elem_bool("IsTruncated", page.truncated);
    for u in &page.uploads {
        w.open("Upload");
        w.elem("Key", &enc(&u.key));
        w.elem("UploadId", &u.upload_id);
        w.owner("Initiator", &u.meta.initiator);
        w.owner("Owner", &upload_owner(call, &u.meta));
        w.elem("StorageClass", "STANDARD");
        w.elem("Initiated", &time::iso8601_ms(u.meta.created_ms));
        w.close("Upload");
    }
    super::list::common_prefixes(&mut w, p.encoding, &page.common_prefixes);
    w.close("ListMultipartUploadsResult");
    Ok(xml(w))
}
