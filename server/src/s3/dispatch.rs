//! One request through the S3 front end: route, authenticate, run the handler, shape errors.

use crate::cluster::route::{self, Routed};
use crate::http::{Conn, Request, Response};

use crate::s3::auth;
use crate::s3::error::{S3Error, S3ErrorCode};
use crate::s3::handlers::{
    bucket, cors, delete, lifecycle, list, lock, multipart, object, passthrough, policy, tagging,
};
use crate::s3::op::{Op, Route};
use crate::s3::{Call, Ctx};
use crate::s3::{access, unimplemented};
use crate::time;

/// Handles one S3 request whose head has been read; returns the response to send and the
/// operation's name. The body may be left partly unread (the caller drains it or closes the
/// connection).
pub async fn serve(ctx: &Ctx, conn: &mut Conn, req: &Request, request_id: &str) -> (Response, &'static str) {
    let cfg = &ctx.config;
    // The API lives under the configured prefix; anything else is not ours.
    let path = match strip_prefix(&req.path, &cfg.prefix) {
        Some(p) => p,
        None => {
            let err = S3Error::new(S3ErrorCode::NoSuchBucket, format!("The S3 API is served under {}", cfg.prefix));
            return (err.response(&req.path, request_id), "Other");
        }
    };
    let host_bucket = virtual_host_bucket(req.header("host"), cfg.domain.as_deref());
    // A presigned URL may carry headers as `x-amz-*` query parameters (SigV2 URLs always do,
    // SigV4 presigners hoist some): S3 applies them as headers, and so does keel — after the
    // signature, which covers them as query parameters, is checked on the request as sent.
    let hoisted = match hoist_query_headers(req) {
        Ok(h) => h,
        Err(e) => return (e.response(&req.path, request_id), "Other"),
    };
    let signed_req = req;
    let req = hoisted.as_ref().unwrap_or(req);
    let route = Route::from_request(req, path, host_bucket.as_deref());
    let op = route.op.name();
    let resource: &str = &req.path;
    let result = async {
        // A CORS preflight: the bucket's rules answer it, unauthenticated, on any node.
        if route.op == Op::Preflight {
            return cors::preflight(ctx, req, route.bucket.as_deref());
        }
        // Presigned for the remote behind a backend bucket: the remote decides, not our keys.
        if let Some(p) = passthrough::wanted(ctx, signed_req, &route) {
            return passthrough::serve(ctx, conn, signed_req, &route, (host_bucket.is_some(), path), p, request_id)
                .await;
        }
        // In a cluster: forwarded to the key's owner, or a member's own request. An object
        // write is registered until it ends (a rebalance waits for those begun before it).
        let _writing =
            cfg.cluster.as_ref().filter(|_| route.key.is_some() && route::writes(&route.op)).map(|c| c.writes.begin());
        if let Some(cluster) = &cfg.cluster
            && let Routed::Done(r) = route::route(ctx, cluster, conn, signed_req, &route).await
        {
            return r;
        }
        let now = (time::now_ms() / 1000) as i64;
        let auth = auth::authenticate(signed_req, &cfg.credentials, cfg.anonymous, now, host_bucket.as_deref())?;
        let access = access::authorize(ctx, (req, &route), &auth.identity, (conn.peer(), conn.is_tls()))?;
        expected_owner(ctx, &route, req)?;
        unimplemented::check(&route.op, req)?;
        if let Some(e) = &route.invalid {
            return Err(e.clone());
        }
        let mut call = Call::new(ctx, conn, req, &route, (&auth, access), request_id);
        let Some(cluster) = &cfg.cluster else { return run(&mut call).await };
        // With copies, a write's new version goes to the other holders before the answer.
        let result = crate::cluster::copies::serve(ctx, cluster, &route, run(&mut call)).await;
        match result {
            // With copies, a key missing here may be on another holder.
            Err(e) if e.code == S3ErrorCode::NoSuchKey => {
                route::after_miss(ctx, cluster, conn, signed_req, &route).await.unwrap_or(Err(e))
            }
            r => r,
        }
    }
    .await;
    let mut resp = match result {
        Ok(r) => r,
        Err(e) => {
            if e.status() >= 500 {
                tracing::warn!(op, code = e.code.as_str(), message = %e.message, "request failed");
            }
            e.response(resource, request_id)
        }
    };
    if route.op != Op::Preflight {
        cors::decorate(ctx, req, route.bucket.as_deref(), &mut resp);
    }
    resp = resp.for_head(req.method);
    resp.push_header("x-amz-request-id", request_id);
    resp.push_header("x-amz-id-2", request_id);
    route.recycle();
    (resp, op)
}

async fn run(call: &mut Call<'_>) -> Result<Response, S3Error> {
    let route = call.route;
    match &route.op {
        Op::ListBuckets(p) => bucket::list_buckets(call, p).await,
        Op::CreateBucket => bucket::create_bucket(call).await,
        Op::HeadBucket => bucket::head_bucket(call).await,
        Op::DeleteBucket => bucket::delete_bucket(call).await,
        Op::GetBucketLocation => bucket::get_location(call).await,
        Op::GetBucketVersioning => bucket::get_versioning(call).await,
        Op::PutBucketVersioning => bucket::put_versioning(call).await,
        Op::GetBucketAcl => bucket::get_acl(call).await,
        Op::PutBucketAcl => bucket::put_acl(call).await,
        Op::GetObjectAcl => object::get_acl(call).await,
        Op::PutObjectAcl => object::put_acl(call).await,
        Op::GetObjectTagging => tagging::get_object(call).await,
        Op::PutObjectTagging => tagging::put_object(call).await,
        Op::DeleteObjectTagging => tagging::delete_object(call).await,
        Op::GetBucketTagging => tagging::get_bucket(call).await,
        Op::PutBucketTagging => tagging::put_bucket(call).await,
        Op::DeleteBucketTagging => tagging::delete_bucket(call).await,
        Op::GetObjectLockConfiguration => lock::get_configuration(call).await,
        Op::PutObjectLockConfiguration => lock::put_configuration(call).await,
        Op::GetObjectRetention => lock::get_retention(call).await,
        Op::PutObjectRetention => lock::put_retention(call).await,
        Op::GetObjectLegalHold => lock::get_legal_hold(call).await,
        Op::PutObjectLegalHold => lock::put_legal_hold(call).await,
        Op::GetBucketLifecycleConfiguration => lifecycle::get(call).await,
        Op::PutBucketLifecycleConfiguration => lifecycle::put(call).await,
        Op::DeleteBucketLifecycle => lifecycle::delete(call).await,
        Op::GetBucketPolicy => policy::get(call).await,
        Op::PutBucketPolicy => policy::put(call).await,
        Op::DeleteBucketPolicy => policy::delete(call).await,
        Op::GetBucketPolicyStatus => policy::status(call).await,
        Op::GetPublicAccessBlock => policy::get_block(call).await,
        Op::PutPublicAccessBlock => policy::put_block(call).await,
        Op::DeletePublicAccessBlock => policy::delete_block(call).await,
        Op::GetBucketCors => cors::get(call).await,
        Op::PutBucketCors => cors::put(call).await,
        Op::DeleteBucketCors => cors::delete(call).await,
        Op::GetBucketOwnershipControls => bucket::get_ownership(call).await,
        Op::PutBucketOwnershipControls => bucket::put_ownership(call).await,
        Op::DeleteBucketOwnershipControls => bucket::delete_ownership(call).await,
        Op::Preflight => cors::preflight(call.ctx, call.req, call.route.bucket.as_deref()),
        Op::ListObjects(p) => list::list_objects_v1(call, p).await,
        Op::ListObjectsV2(p) => list::list_objects_v2(call, p).await,
        Op::ListObjectVersions(p) => list::list_object_versions(call, p).await,
        Op::DeleteObjects => delete::delete_objects(call).await,
        Op::PutObject => object::put_object(call).await,
        Op::PostObject => crate::s3::post::post_object(call).await,
        Op::CopyObject => object::copy_object(call).await,
        Op::GetObject(p) => object::get_object(call, p, false).await,
        Op::HeadObject(p) => object::get_object(call, p, true).await,
        Op::GetObjectAttributes => object::get_attributes(call).await,
        Op::DeleteObject => delete::delete_object(call).await,
        Op::ListMultipartUploads(p) => multipart::list_uploads(call, p).await,
        Op::CreateMultipartUpload => multipart::create(call).await,
        Op::UploadPart(t) => multipart::upload_part(call, t).await,
        Op::UploadPartCopy(t) => multipart::upload_part_copy(call, t).await,
        Op::CompleteMultipartUpload { upload_id } => multipart::complete(call, upload_id).await,
        Op::AbortMultipartUpload { upload_id } => multipart::abort(call, upload_id).await,
        Op::ListParts(p) => multipart::list_parts(call, p).await,
        Op::Unsupported(name) => Err(S3Error::new(S3ErrorCode::NotImplemented, format!("{name} is not implemented"))),
        Op::InvalidUri => Err(S3Error::new(S3ErrorCode::InvalidURI, "Couldn't parse the specified URI.")),
        Op::MethodNotAllowed => Err(S3Error::new(
            S3ErrorCode::MethodNotAllowed,
            "The specified method is not allowed against this resource.",
        )),
    }
}

/// The request with the `x-amz-*` query parameters of a presigned URL added as headers, when
/// it has any; a parameter that contradicts a header of the same name is refused.
fn hoist_query_headers(req: &Request) -> Result<Option<Request>, S3Error> {
    let presigned = req.query.contains("X-Amz-Signature=") || req.query.contains("Signature=");
    if !presigned {
        return Ok(None);
    }
    let params = auth::query_amz_params(req);
    if params.is_empty() {
        return Ok(None);
    }
    let mut out = req.clone();
    for (k, v) in params {
        match req.header(&k) {
            Some(h) if h.trim() != v.trim() => {
                return Err(S3Error::new(
                    S3ErrorCode::InvalidRequest,
                    format!("{k} is given as a header and as a query parameter with different values."),
                ));
            }
            Some(_) => {}
            None => out.headers.push((k, v)),
        }
    }
    Ok(Some(out))
}

/// `x-amz-expected-bucket-owner`: the request applies only if the bucket belongs to that owner.
fn expected_owner(ctx: &Ctx, route: &Route, req: &Request) -> Result<(), S3Error> {
    if let (Some(want), Some(bucket)) = (req.header("x-amz-expected-bucket-owner"), route.bucket.as_deref())
        && !matches!(route.op, Op::CreateBucket)
        && ctx.store.bucket(bucket).is_ok_and(|m| m.owner != want.trim())
    {
        return Err(S3Error::code(S3ErrorCode::AccessDenied));
    }
    Ok(())
}

/// Strips the configured prefix (`/s3`) from a path; `None` when the path is outside it.
fn strip_prefix<'p>(path: &'p str, prefix: &str) -> Option<&'p str> {
    if prefix.is_empty() {
        return Some(path);
    }
    let rest = path.strip_prefix(prefix)?;
    if rest.is_empty() {
        Some("/")
    } else if rest.starts_with('/') {
        Some(rest)
    } else {
        None
    }
}

/// The bucket named by a virtual-hosted-style `Host: bucket.<domain>[:port]`.
fn virtual_host_bucket(host: Option<&str>, domain: Option<&str>) -> Option<String> {
    let domain = domain?;
    let host = host?.trim();
    let host = match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    };
    let bucket = host.strip_suffix(domain)?.strip_suffix('.')?;
    if bucket.is_empty() { None } else { Some(bucket.to_ascii_lowercase()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_and_hosts() {
        assert_eq!(strip_prefix("/s3/b/k", "/s3"), Some("/b/k"));
        assert_eq!(strip_prefix("/s3", "/s3"), Some("/"));
        assert_eq!(strip_prefix("/s3x/b", "/s3"), None);
        assert_eq!(strip_prefix("/b", ""), Some("/b"));
        assert_eq!(virtual_host_bucket(Some("bkt.s3.local:8080"), Some("s3.local")), Some("bkt".into()));
        assert_eq!(virtual_host_bucket(Some("s3.local:8080"), Some("s3.local")), None);
        assert_eq!(virtual_host_bucket(Some("bkt.s3.local"), None), None);
        assert_eq!(virtual_host_bucket(Some("other.host"), Some("s3.local")), None);
    }
}
