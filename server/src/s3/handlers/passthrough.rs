//! Presigned pass-through (AIStore's third way of S3 support): a GET or HEAD presigned for the
//! remote S3 bucket behind a backend bucket — by the remote's own key, which keel does not know —
//! is sent to the remote unchanged, so the remote decides. An object a GET reads is cached and
//! served from the copy; every later GET is still asked of the remote first (a one-byte ranged
//! GET with the same signature), so a copy here never answers a URL the remote would refuse.

use std::sync::Arc;

use engine::RemoteBucket;

use super::{object, remote};
use crate::backend::{Agent, Flight, Forwarded, RemoteError, SignedStyle};
use crate::http::{Conn, Request, Response};
use crate::s3::access::Access;
use crate::s3::auth::{Authenticated, Identity};
use crate::s3::error::{S3Error, S3ErrorCode};
use crate::s3::op::{Op, Route};
use crate::s3::payload::Payload;
use crate::s3::{Call, Ctx};

/// Rounds of "ask the remote, fetch or wait for a fetch" before giving up.
const ATTEMPTS_MAX: usize = 3;

/// A request to pass through: presigned by a key keel does not know, for an object of a bucket
/// whose backend allows it. `signed` are the headers its signature covers (host aside).
pub struct Passthrough {
    agent: Arc<Agent>,
    remote: RemoteBucket,
    signed: Vec<String>,
}

/// Whether the request is one to pass through.
pub fn wanted(ctx: &Ctx, req: &Request, route: &Route) -> Option<Passthrough> {
    route.key.as_ref()?;
    if !matches!(route.op, Op::GetObject(_) | Op::HeadObject(_) | Op::PutObject) {
        return None;
    }
    let signed = crate::s3::auth::foreign_presigned(req, &ctx.config.credentials)?;
    let remote = ctx.store.bucket(route.bucket.as_deref()?).ok()?.backend?;
    let agent = ctx.config.backends.clone()?;
    agent.passes_presigned(&remote.backend).then_some(Passthrough { agent, remote, signed })
}

/// Answers a pass-through request. `raw_path` is the request's path under the S3 prefix, still
/// percent-encoded, as the client signed it.
pub async fn serve(
    ctx: &Ctx,
    conn: &mut Conn,
    req: &Request,
    route: &Route,
    (host_bucket, raw_path): (bool, &str),
    p: Passthrough,
    request_id: &str,
) -> Result<Response, S3Error> {
    let (head, params) = match &route.op {
        Op::GetObject(params) => (false, Some(params)),
        Op::HeadObject(params) => (true, Some(params)),
        _ => (false, None),
    };
    if p.signed.iter().any(|h| h == "range") {
        return Err(S3Error::new(
            S3ErrorCode::NotImplemented,
            "Presigned pass-through of a URL whose signature covers Range is not implemented.",
        ));
    }
    // The key as the client sent (and signed) it, still percent-encoded.
    let raw_key = if host_bucket {
        raw_path.trim_start_matches('/')
    } else {
        raw_path.trim_start_matches('/').split_once('/').map_or("", |(_, k)| k)
    };
    let url = p.agent.presigned_url(&p.remote, raw_key, &req.query, style_of(req)?)?;
    let headers: Vec<(String, String)> =
        p.signed.iter().filter_map(|h| req.header(h).map(|v| (h.clone(), v.to_owned()))).collect();
    // The remote vouched for the caller: it may read this object, and only that.
    let auth = Authenticated { identity: Identity::Anonymous, payload: Payload::Unsigned };
    let access = Access { signed: false, owner: false, list: false, read_all: true, ..Access::FULL };
    let mut call = Call::new(ctx, conn, req, route, (&auth, access), request_id);
    let Some(params) = params else { return put(&mut call, &p, url, headers).await };
    if head {
        return match p.agent.forward(&p.remote, true, url, headers).await? {
            Forwarded::Refused { status, body } => Ok(relay(status, body)),
            Forwarded::Object(obj, _) => object::head_of(&call, &remote::described(&obj), params),
        };
    }
    for _ in 0..ATTEMPTS_MAX {
        if let Some(answer) = serve_cached(&mut call, &p, &url, &headers, params).await? {
            return Ok(answer);
        }
        match p.agent.flights().join((call.bucket().to_owned(), call.key().to_owned())) {
            Flight::Wait(done) => {
                // Another reader is fetching it: then ask the remote about this URL.
                if compio::time::timeout(p.agent.timeout() * 4, done).await.is_err() {
                    return Err(RemoteError::Timeout.into());
                }
            }
            Flight::Lead(_flight) => {
                if ctx.store.lookup(call.bucket(), call.key()).is_ok() {
                    continue;
                }
                match p.agent.forward(&p.remote, false, url.clone(), headers.clone()).await? {
                    Forwarded::Refused { status, body } => return Ok(relay(status, body)),
                    Forwarded::Object(obj, Some(chunks)) => {
                        remote::cache(&call.ctx.store, (call.bucket(), call.key()), obj, chunks).await?;
                        // Fetched with this URL's own authority: served from the copy.
                        return object::get_object(&mut call, params, false).await;
                    }
                    Forwarded::Object(_, None) => return Err(RemoteError::Changed.into()),
                }
            }
        }
    }
    Err(RemoteError::Unavailable("the object could not be fetched".into()).into())
}

/// A presigned PUT: the body goes to the remote as it arrives (announced with its length) and
/// into a local copy at once; the copy commits, with the remote's ETag, only when the remote
/// took the whole object. The remote's refusal is relayed and nothing is kept.
async fn put(
    call: &mut Call<'_>,
    p: &Passthrough,
    url: String,
    headers: Vec<(String, String)>,
) -> Result<Response, S3Error> {
    let Some(len) = object::declared_length(call)? else {
        return Err(S3Error::new(
            S3ErrorCode::MissingContentLength,
            "A presigned PUT passed through needs a Content-Length.",
        ));
    };
    let (system, user) = object::metadata_from_headers(call)?;
    let expected = crate::s3::checksum::ExpectedChecksums::from_request(call.req, &Payload::Unsigned)?;
    let mut writer = call.ctx.store.put_writer(call.bucket(), call.key(), Some(len), None)?;
    let mut sink = p.agent.forward_put(&p.remote, url, headers, len)?;
    if let Err(e) = object::stream_body_to(call, writer.data(), &expected, Some(&mut sink)).await {
        // The remote may refuse before it reads the body: its answer, as it gave it.
        return match sink.failed() {
            Some(RemoteError::Refused { status, body }) => Ok(relay(*status, body.clone())),
            _ => Err(e),
        };
    }
    let opts = engine::PutOptions { system, user, content_md5: expected.content_md5, ..Default::default() };
    let committed = writer
        .finish_gated(opts, async {
            match sink.finish().await {
                Ok(put) => Ok(put
                    .etag
                    .map(|etag| (engine::RemoteVersion { etag, version: put.version }, crate::time::now_ms()))),
                Err(RemoteError::Refused { status, body }) => Err(NotKept::Relayed(relay(status, body))),
                Err(e) => Err(NotKept::Failed(e.into())),
            }
        })
        .await;
    match committed {
        Ok(meta) => Ok(Response::new(200).header("ETag", crate::s3::xml::quoted(&meta.etag()))),
        Err(NotKept::Relayed(answer)) => Ok(answer),
        Err(NotKept::Failed(e)) => Err(e),
    }
}

/// Why a pass-through PUT kept nothing: the remote's own answer to relay, or a failure here.
enum NotKept {
    Relayed(Response),
    Failed(S3Error),
}

impl From<engine::Error> for NotKept {
    fn from(e: engine::Error) -> NotKept {
        NotKept::Failed(e.into())
    }
}

/// `x-keel-signed-style`: how the URL addressed the bucket when it was signed, if the client says.
fn style_of(req: &Request) -> Result<Option<SignedStyle>, S3Error> {
    match req.header("x-keel-signed-style").map(str::to_ascii_lowercase).as_deref() {
        None => Ok(None),
        Some("path") => Ok(Some(SignedStyle::Path)),
        Some("virtual") | Some("virtual-hosted") => Ok(Some(SignedStyle::VirtualHosted)),
        Some(other) => Err(S3Error::new(
            S3ErrorCode::InvalidArgument,
            format!("x-keel-signed-style must be path or virtual, not {other:?}"),
        )),
    }
}

/// A cached copy, served if the remote still accepts this URL (a GET of its first byte) and
/// still has the same object; a changed object's copy is dropped. `None`: nothing (usable)
/// cached.
async fn serve_cached(
    call: &mut Call<'_>,
    p: &Passthrough,
    url: &str,
    headers: &[(String, String)],
    params: &crate::s3::params::Read,
) -> Result<Option<Response>, S3Error> {
    let Ok(located) = call.ctx.store.lookup(call.bucket(), call.key()) else { return Ok(None) };
    let Some(cached) = located.meta.remote.clone() else {
        // Only here, never on the remote: not the remote's to vouch for.
        return Err(call.access.missing(engine::Error::NoSuchObject));
    };
    let mut probe = headers.to_vec();
    probe.push(("range".to_owned(), "bytes=0-0".to_owned()));
    match p.agent.forward(&p.remote, false, url.to_owned(), probe).await? {
        // An empty object has no first byte: a 416 still says the signature was good.
        Forwarded::Refused { status: 416, .. } if located.meta.size == 0 => {}
        Forwarded::Refused { status, body } => return Ok(Some(relay(status, body))),
        Forwarded::Object(obj, _) if obj.etag.as_deref() == Some(cached.etag.as_str()) => {}
        Forwarded::Object(..) => {
            match call.ctx.store.delete_object(call.bucket(), call.key()).await {
                Ok(()) | Err(engine::Error::NoSuchObject) => {}
                Err(e) => return Err(e.into()),
            }
            return Ok(None);
        }
    }
    object::get_object(call, params, false).await.map(Some)
}

/// The remote's refusal, as it said it.
fn relay(status: u16, body: Vec<u8>) -> Response {
    if body.is_empty() {
        return Response::new(status);
    }
    Response::with_body(status, "application/xml", body)
}
