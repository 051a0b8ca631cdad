//! POST object: an HTML form uploads a file straight to a bucket (issue 18 item 3, D51).
//!
//! The body is `multipart/form-data`, parsed as it streams (`form.rs`): the fields before the
//! `file` field are kept (at most `FIELDS_BYTES_MAX`), then the upload is authorized — the
//! form's signature over its policy document names the user (`policy.rs`; no policy: an
//! anonymous upload), the document's conditions are checked against the fields, and the
//! bucket's ACL and policy are asked as for a PutObject of the key with the fields as its
//! headers — and only then does the file's content stream to the object writer, its length
//! held to the document's `content-length-range`. Fields after the file are ignored, as S3
//! does.

pub mod form;
pub mod policy;

use engine::{PutOptions, WriteCondition, give_buffer, take_buffer};
use iobuf::IoBuffer;

use crate::http::{Method, Request, Response};
use crate::s3::access::{self, AclTarget};
use crate::s3::auth::{Authenticated, Identity};
use crate::s3::call::{Call, read_error};
use crate::s3::checksum::ExpectedChecksums;
use crate::s3::error::{S3Error, S3ErrorCode};
use crate::s3::handlers::object::{metadata_from_headers, write_version_header};
use crate::s3::handlers::{lock, tagging};
use crate::s3::op::{Op, Route};
use crate::s3::payload::Payload;
use crate::s3::{unimplemented, xml};
use crate::time;
use form::{Event, Multipart};

/// The most bytes of the fields before the file (names and values together).
pub const FIELDS_BYTES_MAX: usize = 256 * 1024;

fn malformed(why: impl std::fmt::Display) -> S3Error {
    S3Error::new(
        S3ErrorCode::MalformedPOSTRequest,
        format!("The body of your POST request is not well-formed multipart/form-data: {why}."),
    )
}

/// What the parser has handed over so far.
#[derive(Default)]
struct Collected {
    /// Fields before the file: lower-case name, value.
    fields: Vec<(String, String)>,
    /// The field being read, and its bytes so far.
    current: Option<(String, Vec<u8>)>,
    field_bytes: usize,
    /// The file part's headers, once it began.
    file: Option<form::PartHead>,
    /// File bytes not yet written.
    staged: Vec<u8>,
    file_ended: bool,
}

impl Collected {
    fn on(&mut self, e: Event<'_>) -> Result<(), form::FormError> {
        match e {
            Event::Part(head) if self.file.is_some() => drop(head),
            Event::Part(head) if head.name.eq_ignore_ascii_case("file") => self.file = Some(head),
            Event::Part(head) => {
                self.field_bytes += head.name.len();
                self.current = Some((head.name.to_ascii_lowercase(), Vec::new()));
            }
            Event::Data(d) if self.file.is_some() && !self.file_ended => self.staged.extend_from_slice(d),
            Event::Data(d) => {
                if let Some((_, v)) = &mut self.current {
                    self.field_bytes += d.len();
                    if self.field_bytes > FIELDS_BYTES_MAX {
                        return Err(form::FormError("the fields before the file are too large"));
                    }
                    v.extend_from_slice(d);
                }
            }
            Event::PartEnd if self.file.is_some() => self.file_ended = true,
            Event::PartEnd => {
                if let Some((name, v)) = self.current.take() {
                    let v = String::from_utf8(v).map_err(|_| form::FormError("a field is not UTF-8"))?;
                    self.fields.push((name, v));
                }
            }
            Event::End => {}
        }
        Ok(())
    }

    fn field(&self, name: &str) -> Option<&str> {
        self.fields.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// The upload once authorized: the writer and the limits its bytes must keep.
struct Upload {
    writer: engine::ObjectWriter,
    key: String,
    length: Option<(u64, u64)>,
    opts: PutOptions,
}

pub async fn post_object(call: &mut Call<'_>) -> Result<Response, S3Error> {
    call.ctx.store.bucket(call.bucket())?;
    if call.ctx.config.cluster.is_some() {
        return Err(S3Error::new(
            S3ErrorCode::NotImplemented,
            "POST object (browser form uploads) is not implemented in a cluster yet.",
        ));
    }
    let boundary = call.header("content-type").and_then(form::boundary).map(str::to_owned).ok_or_else(|| {
        S3Error::new(S3ErrorCode::PreconditionFailed, "Bucket POST must be of the enclosure-type multipart/form-data")
    })?;
    call.send_continue().await?;
    let mut parser = Multipart::new(&boundary);
    let mut got = Collected::default();
    let mut upload: Option<Upload> = None;
    loop {
        let (r, buf) = call.conn.read_body(take_buffer()).await;
        let fed =
            r.map_err(read_error).and_then(|_| parser.feed(buf.as_slice(), &mut |e| got.on(e)).map_err(malformed));
        give_buffer(buf);
        fed?;
        if got.file.is_some() && upload.is_none() {
            upload = Some(authorize(call, &mut got)?);
        }
        if let Some(u) = &mut upload {
            write_staged(u, &mut got.staged).await?;
        }
        if got.file_ended || parser.done() || call.conn.body_done() {
            break;
        }
    }
    if !got.file_ended {
        parser.finish().map_err(malformed)?;
        return Err(S3Error::new(S3ErrorCode::InvalidArgument, "POST requires exactly one file upload per request."));
    }
    let Some(u) = upload else { return Err(malformed("no file field")) };
    finish(call, &got, u).await
}

/// Writes what the parser handed over, held to the length range.
async fn write_staged(u: &mut Upload, staged: &mut Vec<u8>) -> Result<(), S3Error> {
    let mut rest = staged.as_slice();
    while !rest.is_empty() {
        let mut buf: IoBuffer = take_buffer();
        let n = buf.extend_from_slice(rest);
        rest = &rest[n..];
        let total = u.writer.data().written() + buf.len() as u64;
        if u.length.is_some_and(|(_, max)| total > max) {
            give_buffer(buf);
            return Err(S3Error::new(
                S3ErrorCode::EntityTooLarge,
                "Your proposed upload exceeds the maximum allowed size",
            ));
        }
        let (w, buf) = u.writer.data().write(buf).await;
        give_buffer(buf);
        w?;
    }
    staged.clear();
    Ok(())
}

/// The request the form stands for: a PUT of the key with the fields as its headers.
fn as_put(call: &Call<'_>, got: &Collected) -> Result<Request, S3Error> {
    let mut headers = Vec::new();
    for (name, value) in &got.fields {
        let header = match name.as_str() {
            "acl" => "x-amz-acl".to_owned(),
            "tagging" => {
                let root = xml::parse(value.as_bytes()).map_err(|_| S3Error::code(S3ErrorCode::MalformedXML))?;
                let tags = tagging::from_document(&root, engine::OBJECT_TAGS_MAX)?;
                headers.push(("x-amz-tagging".to_owned(), tagging::to_query(&tags)));
                continue;
            }
            "x-amz-signature" | "x-amz-credential" | "x-amz-algorithm" | "x-amz-date" | "x-amz-security-token" => {
                continue;
            }
            n if n.starts_with("x-amz-") => n.to_owned(),
            n @ ("content-type"
            | "content-md5"
            | "cache-control"
            | "content-disposition"
            | "content-encoding"
            | "expires") => n.to_owned(),
            _ => continue,
        };
        headers.push((header, value.clone()));
    }
    if got.field("content-type").is_none()
        && let Some(t) = got.file.as_ref().and_then(|f| f.content_type.clone())
    {
        headers.push(("content-type".to_owned(), t));
    }
    Ok(Request {
        method: Method::Put,
        method_raw: "PUT".into(),
        path: call.req.path.clone(),
        query: String::new(),
        headers,
        framing: call.req.framing,
        keep_alive: call.req.keep_alive,
        expect_continue: false,
    })
}

/// Checks the form's signature and policy, then the bucket's grants for a PutObject of its key;
/// opens the writer.
fn authorize(call: &mut Call<'_>, got: &mut Collected) -> Result<Upload, S3Error> {
    let ctx = call.ctx;
    // `${filename}` in the key is the file's name, before the policy's conditions see it.
    let filename = got.file.as_ref().and_then(|f| f.filename.clone()).unwrap_or_default();
    for (name, value) in &mut got.fields {
        if name == "key" {
            *value = value.replace("${filename}", &filename);
        }
    }
    let identity = match policy::verify(&got.fields, &ctx.config.credentials)? {
        Some(ak) => Identity::User(ak),
        None => Identity::Anonymous,
    };
    let mut length = None;
    if let Some(doc) = got.field("policy") {
        let p = policy::parse(doc)?;
        p.check(&got.fields, call.bucket(), (time::now_ms() / 1000) as i64)?;
        length = p.length_range();
    }
    let key = got
        .field("key")
        .ok_or_else(|| S3Error::new(S3ErrorCode::InvalidArgument, "Bucket POST must contain a field named 'key'."))?
        .to_owned();
    engine::keys::validate_key(&key)?;
    let req = as_put(call, got)?;
    let route =
        Route { op: Op::PutObject, bucket: Some(call.bucket().to_owned()), key: Some(key.clone()), invalid: None };
    let origin = (call.conn.peer(), call.conn.is_tls());
    let access = access::authorize(ctx, (&req, &route), &identity, origin)?;
    unimplemented::check(&route.op, &req)?;
    let auth = Authenticated { identity, payload: Payload::Unsigned };
    let put = Call::new(ctx, call.conn, &req, &route, (&auth, access), call.request_id);
    if crate::s3::handlers::remote::remote_of(&put)?.is_some() {
        return Err(S3Error::new(S3ErrorCode::NotImplemented, "POST object into a backend bucket is not implemented."));
    }
    let (system, user) = metadata_from_headers(&put)?;
    let (acl, grants) = crate::s3::handlers::acl::for_write(&req, &ctx.config.credentials, AclTarget::Object)?;
    let tags = tagging::for_write(&put)?;
    let lock = lock::for_write(&put)?;
    let expected = ExpectedChecksums::from_request(&req, &Payload::Unsigned)?;
    let writer = ctx.store.put_writer(put.bucket(), &key, None, expected.algorithm())?;
    let owner = access::object_owner(ctx, put.bucket(), &auth.identity, acl);
    let opts = PutOptions {
        system,
        user,
        condition: WriteCondition::Always,
        content_md5: expected.content_md5,
        flex_expected: expected.stated(),
        acl,
        tags,
        lock,
        remote: None,
        md5: None,
        owner,
        grants,
    };
    Ok(Upload { writer, key, length, opts })
}

/// Commits the object and answers as the form asked: a redirect, or 200, 201 (with a document)
/// or 204.
async fn finish(call: &mut Call<'_>, got: &Collected, u: Upload) -> Result<Response, S3Error> {
    let Upload { mut writer, key, length, opts } = u;
    if let Some((min, _)) = length
        && writer.data().written() < min
    {
        return Err(S3Error::new(
            S3ErrorCode::EntityTooSmall,
            "Your proposed upload is smaller than the minimum allowed size",
        ));
    }
    let meta = writer.finish(opts).await?;
    let etag = format!("\"{}\"", meta.etag());
    let bucket = call.bucket().to_owned();
    let host = call.header("host").unwrap_or("localhost");
    let scheme = if call.conn.is_tls() { "https" } else { "http" };
    let location = format!("{scheme}://{host}/{bucket}/{}", crate::http::uri::uri_encode(&key, false));
    let redirect = got
        .field("success_action_redirect")
        .or_else(|| got.field("redirect"))
        .filter(|r| r.starts_with("http://") || r.starts_with("https://"));
    let mut resp = if let Some(url) = redirect {
        let sep = if url.contains('?') { '&' } else { '?' };
        let q = |s: &str| crate::http::uri::uri_encode(s, true);
        let target = format!("{url}{sep}bucket={}&key={}&etag={}", q(&bucket), q(&key), q(&etag));
        let mut r = Response::new(303);
        r.push_header("Location", target);
        r
    } else {
        match got.field("success_action_status") {
            Some("200") => Response::new(200),
            Some("201") => {
                let mut w = xml::XmlWriter::new();
                w.open_plain("PostResponse");
                w.elem("Location", &location);
                w.elem("Bucket", &bucket);
                w.elem("Key", &key);
                w.elem("ETag", &etag);
                w.close("PostResponse");
                Response::with_body(201, "application/xml", w.finish())
            }
            _ => {
                let mut r = Response::new(204);
                r.push_header("Location", location);
                r
            }
        }
    };
    resp.push_header("ETag", etag);
    write_version_header(&mut resp, &meta);
    Ok(resp)
}
