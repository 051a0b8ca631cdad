//! The operator's endpoint, `/_keel/...` (never a bucket name: `_` is not allowed in one): bucket
//! properties, as AIStore's `ais bucket props` sets them. Every request is signed (SigV4, like
//! any S3 request) by the bucket's owner or an admin (`--admin AK`); a reverse proxy on the same
//! host therefore gives remote clients nothing. Only an `--anonymous` server, which signs
//! nothing, answers unsigned requests here, and then to loopback clients only.
//!
//! ```text
//! GET /_keel/buckets/NAME/props                       -> JSON
//! PUT /_keel/buckets/NAME/props?checksum=md5&validate_on_read=true&versioning=Enabled&acl=private&policy=public-read&backend=up/remote-bucket
//! PUT /_keel/buckets/NAME/evict?prefix=P               -> {"evicted": N, "bytes": B}: drop cached copies
//! ```

use engine::{BucketMeta, BucketPolicy, ChecksumKind, Versioning};

use crate::http::{Conn, Request, Response};
use crate::s3::Ctx;
use crate::s3::error::{S3Error, S3ErrorCode};

/// A bucket's properties as JSON.
pub fn props_json(name: &str, m: &BucketMeta) -> String {
    format!(
        "{{\"bucket\":{name:?},\"owner\":{:?},\"created\":{:?},\"location\":{:?},\"checksum\":{:?},\"validate_on_read\":{},\"versioning\":{:?},\"acl\":{:?},\"policy\":{:?},\"backend\":{:?},\"validate_warm_get\":{},\"copies\":{}}}\n",
        m.owner,
        crate::time::iso8601_ms(m.created_ms),
        m.location,
        m.checksum.name(),
        m.validate_on_read,
        match m.versioning {
            Versioning::Unset => "unset",
            Versioning::Enabled => "Enabled",
            Versioning::Suspended => "Suspended",
        },
        m.acl.name(),
        match m.policy {
            BucketPolicy::None => "none",
            BucketPolicy::PublicRead => "public-read",
        },
        m.backend.as_ref().map(|b| format!("{}/{}", b.backend, b.bucket)).unwrap_or_default(),
        m.validate_warm_get,
        m.copies
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
                m.acl =
                    crate::s3::access::parse_canned(v, crate::s3::access::AclTarget::Bucket).map_err(|e| e.message)?
            }
            "policy" => {
                m.policy = match v.as_str() {
                    "none" | "" => BucketPolicy::None,
                    "public-read" => BucketPolicy::PublicRead,
                    _ => return Err(format!("policy must be none or public-read, not {v:?}")),
                }
            }
            "validate_warm_get" => {
                m.validate_warm_get =
                    v.parse().map_err(|_| format!("validate_warm_get must be true or false, not {v:?}"))?
            }
            "backend" | "backend_bck" => {
                m.backend = match v.split_once('/') {
                    _ if v.is_empty() => None,
                    Some((backend, bucket)) if !backend.is_empty() && !bucket.is_empty() && !bucket.contains('/') => {
                        Some(engine::RemoteBucket { backend: backend.to_owned(), bucket: bucket.to_owned() })
                    }
                    _ => return Err(format!("backend must be NAME/BUCKET (or empty to detach), not {v:?}")),
                }
            }
            "copies" | "mirror.copies" => {
                m.copies = v
                    .parse()
                    .map_err(|_| format!("copies must be a number of copies (0: the node's --copies), not {v:?}"))?
            }
            other => {
                return Err(format!(
                    "unknown property {other:?} (checksum, validate_on_read, versioning, acl, policy, backend, validate_warm_get, copies)"
                ));
            }
        }
    }
    Ok(())
}

/// Drops the local copies of a backend bucket's objects under `prefix` (the remote keeps them;
/// the next GET fetches again). An object that exists only here (no remote identity) is never
/// evicted. Returns how many and their bytes.
async fn evict_cached(ctx: &Ctx, bucket: &str, prefix: &str) -> Result<(u64, u64), engine::Error> {
    let mut after: Option<String> = None;
    let (mut n, mut bytes) = (0u64, 0u64);
    loop {
        let q = engine::ListQuery { prefix, delimiter: None, after: after.as_deref(), max_keys: 1000 };
        let page = ctx.store.list_objects(bucket, &q)?;
        for e in &page.entries {
            let cached = ctx.store.head_object(bucket, &e.key).is_ok_and(|m| m.remote.is_some());
            if cached {
                match ctx.store.delete_object(bucket, &e.key).await {
                    Ok(()) => {
                        n += 1;
                        bytes += e.size;
                    }
                    Err(engine::Error::NoSuchObject) => {}
                    Err(err) => return Err(err),
                }
            }
        }
        if !page.truncated {
            return Ok((n, bytes));
        }
        after = page.last;
    }
}

/// Who is asking: `Some(access key)` for a signed request, `None` on an `--anonymous` server
/// (loopback clients only). Unsigned requests to a server with users are refused.
fn caller(ctx: &Ctx, req: &Request, loopback: bool) -> Result<Option<String>, S3Error> {
    if ctx.config.anonymous {
        return if loopback {
            Ok(None)
        } else {
            Err(S3Error::new(
                S3ErrorCode::AccessDenied,
                "An --anonymous server answers the admin endpoint for loopback clients only.",
            ))
        };
    }
    let now = (crate::time::now_ms() / 1000) as i64;
    let auth = crate::s3::auth::authenticate(req, &ctx.config.credentials, false, now, None)?;
    match auth.identity {
        crate::s3::auth::Identity::User(ak) => Ok(Some(ak)),
        crate::s3::auth::Identity::Anonymous => Err(S3Error::new(
            S3ErrorCode::AccessDenied,
            "The admin endpoint needs a request signed by the bucket's owner or an admin.",
        )),
    }
}

pub async fn serve(
    ctx: &Ctx,
    _conn: &mut Conn,
    req: &Request,
    rest: &str,
    loopback: bool,
    request_id: &str,
) -> Response {
    let fail = |e: S3Error| e.response(&req.path, request_id);
    let caller = match caller(ctx, req, loopback) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let (bucket, evict) = match rest.strip_prefix("buckets/") {
        Some(r) if r.ends_with("/props") => (&r[..r.len() - "/props".len()], false),
        Some(r) if r.ends_with("/evict") => (&r[..r.len() - "/evict".len()], true),
        _ => return fail(S3Error::new(S3ErrorCode::NoSuchKey, "Unknown admin endpoint.")),
    };
    // A bucket made on another member a moment ago (this node's watch lags): made here first.
    if let Some(cluster) = &ctx.config.cluster
        && let Err(e) = crate::cluster::route::ensure_bucket(ctx, cluster, bucket).await
    {
        return fail(e.into());
    }
    let current = match ctx.store.bucket(bucket) {
        Ok(m) => m,
        Err(e) => return fail(e.into()),
    };
    if let Some(ak) = &caller
        && !(ctx.config.credentials.is_admin(ak) || current.owner == *ak)
    {
        return fail(S3Error::new(
            S3ErrorCode::AccessDenied,
            "Only the bucket's owner or an admin may read or change its properties.",
        ));
    }
    if evict {
        if req.method != crate::http::Method::Put {
            return fail(S3Error::code(S3ErrorCode::MethodNotAllowed));
        }
        let prefix = crate::http::uri::Query::parse(&req.query)
            .and_then(|q| q.get("prefix").map(str::to_owned))
            .unwrap_or_default();
        return match evict_cached(ctx, bucket, &prefix).await {
            Ok((n, bytes)) => Response::with_body(
                200,
                "application/json",
                format!("{{\"bucket\":{bucket:?},\"evicted\":{n},\"bytes\":{bytes}}}\n").into_bytes(),
            ),
            Err(e) => fail(e.into()),
        };
    }
    let json = |m: &BucketMeta| Response::with_body(200, "application/json", props_json(bucket, m).into_bytes());
    match req.method {
        crate::http::Method::Get => json(&current),
        crate::http::Method::Put => match put_props(ctx, req, bucket, current).await {
            Ok(m) => json(&m),
            Err(e) => fail(e),
        },
        _ => fail(S3Error::code(S3ErrorCode::MethodNotAllowed)),
    }
}

/// PUT props: the settings in the query checked and applied to the bucket's record (and the
/// cluster's, in a cluster).
async fn put_props(ctx: &Ctx, req: &Request, bucket: &str, mut current: BucketMeta) -> Result<BucketMeta, S3Error> {
    let q = crate::http::uri::Query::parse(&req.query).ok_or_else(|| S3Error::code(S3ErrorCode::InvalidURI))?;
    apply(&mut current, &q.0).map_err(|msg| S3Error::new(S3ErrorCode::InvalidArgument, msg))?;
    if let Some(b) = &current.backend
        && !ctx.config.backends.as_ref().is_some_and(|a| a.has(&b.backend))
    {
        return Err(S3Error::new(
            S3ErrorCode::InvalidArgument,
            format!("no backend named {:?} is configured ([backends.NAME] in the config file)", b.backend),
        ));
    }
    crate::s3::handlers::bucket::versions_supported(ctx, &current)?;
    let drives = ctx.store.mountpaths().len();
    // In a cluster copies go to distinct nodes (D38): as many as wanted (fewer while fewer
    // nodes are up, counted under-replicated).
    if usize::from(current.copies) > drives && ctx.config.cluster.is_none() {
        return Err(S3Error::new(
            S3ErrorCode::InvalidArgument,
            format!(
                "copies={} needs as many mountpaths (copies go to distinct drives); this node has {drives}",
                current.copies
            ),
        ));
    }
    let want = current;
    let m = ctx
        .store
        .update_bucket(bucket, |m| {
            m.checksum = want.checksum;
            m.validate_on_read = want.validate_on_read;
            m.versioning = want.versioning;
            m.acl = want.acl;
            m.policy = want.policy;
            m.backend = want.backend;
            m.validate_warm_get = want.validate_warm_get;
            m.copies = want.copies;
        })
        .await?;
    crate::s3::handlers::bucket::publish_bucket(ctx, bucket).await?;
    // More copies wanted: the repair makes them now, not at its next round.
    ctx.store.ask_repair_pass();
    Ok(m)
}
