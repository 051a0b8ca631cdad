//! The operator's endpoint, `/_keel/...` (never a bucket name: `_` is not allowed in one), served
//! to loopback clients only: bucket properties, as AIStore's `ais bucket props` sets them.
//!
//! ```text
//! GET /_keel/buckets/NAME/props                       -> JSON
//! PUT /_keel/buckets/NAME/props?checksum=md5&validate_on_read=true&versioning=Enabled&acl=private
//! ```

use engine::{BucketAcl, BucketMeta, ChecksumKind, Versioning};

use crate::http::{Conn, Request, Response};
use crate::s3::Ctx;
use crate::s3::dispatch::error_response;
use crate::s3::error::{S3Error, S3ErrorCode};

/// A bucket's properties as JSON.
pub fn props_json(name: &str, m: &BucketMeta) -> String {
    format!(
        "{{\"bucket\":{name:?},\"owner\":{:?},\"created\":{:?},\"checksum\":{:?},\"validate_on_read\":{},\"versioning\":{:?},\"acl\":{:?}}}\n",
        m.owner,
        crate::time::iso8601_ms(m.created_ms),
        m.checksum.name(),
        m.validate_on_read,
        match m.versioning {
            Versioning::Unset => "unset",
            Versioning::Enabled => "Enabled",
            Versioning::Suspended => "Suspended",
        },
        match m.acl {
            BucketAcl::Private => "private",
            BucketAcl::PublicRead => "public-read",
        }
    )
}

/// Applies `key=value` property settings to a bucket record.
pub fn apply(m: &mut BucketMeta, settings: &[(String, String)]) -> Result<(), String> {
    for (k, v) in settings {
        match k.as_str() {
            "checksum" | "checksum.type" => {
                m.checksum = ChecksumKind::parse(v)
                    .ok_or_else(|| format!("checksum must be xxhash, crc32c, md5 or none, not {v:?}"))?
            }
            "validate_on_read" | "checksum.validate_on_read" => {
                m.validate_on_read =
                    v.parse().map_err(|_| format!("validate_on_read must be true or false, not {v:?}"))?
            }
            "versioning" => {
                m.versioning = match v.to_ascii_lowercase().as_str() {
                    "enabled" | "true" => Versioning::Enabled,
                    "suspended" | "false" => Versioning::Suspended,
                    _ => return Err(format!("versioning must be Enabled or Suspended, not {v:?}")),
                }
            }
            "acl" => {
                m.acl = match v.as_str() {
                    "private" => BucketAcl::Private,
                    "public-read" => BucketAcl::PublicRead,
                    _ => return Err(format!("acl must be private or public-read, not {v:?}")),
                }
            }
            other => return Err(format!("unknown property {other:?} (checksum, validate_on_read, versioning, acl)")),
        }
    }
    Ok(())
}

pub async fn serve(
    ctx: &Ctx,
    _conn: &mut Conn,
    req: &Request,
    rest: &str,
    loopback: bool,
    request_id: &str,
) -> Response {
    let fail = |e: S3Error| error_response(&e, &req.path, request_id);
    if !loopback {
        return fail(S3Error::new(S3ErrorCode::AccessDenied, "The admin endpoint answers loopback clients only."));
    }
    let Some(bucket) = rest.strip_prefix("buckets/").and_then(|r| r.strip_suffix("/props")) else {
        return fail(S3Error::new(S3ErrorCode::NoSuchKey, "Unknown admin endpoint."));
    };
    let json = |m: &BucketMeta| Response::with_body(200, "application/json", props_json(bucket, m).into_bytes());
    match req.method {
        crate::http::Method::Get => match ctx.store.bucket(bucket) {
            Ok(m) => json(&m),
            Err(e) => fail(e.into()),
        },
        crate::http::Method::Put => {
            let Some(q) = crate::s3::op::Query::parse(&req.query) else {
                return fail(S3Error::code(S3ErrorCode::InvalidURI));
            };
            let mut current = match ctx.store.bucket(bucket) {
                Ok(m) => m,
                Err(e) => return fail(e.into()),
            };
            if let Err(msg) = apply(&mut current, &q.0) {
                return fail(S3Error::new(S3ErrorCode::InvalidArgument, msg));
            }
            let want = current;
            match ctx
                .store
                .update_bucket(bucket, |m| {
                    m.checksum = want.checksum;
                    m.validate_on_read = want.validate_on_read;
                    m.versioning = want.versioning;
                    m.acl = want.acl;
                })
                .await
            {
                Ok(m) => json(&m),
                Err(e) => fail(e.into()),
            }
        }
        _ => fail(S3Error::code(S3ErrorCode::MethodNotAllowed)),
    }
}
