//! AWS Signature Version 2 (HMAC-SHA1), in a header or a URL: still sent by s3cmd and old SDKs.

use hmac::{Hmac, Mac};

use crate::http::Request;
use crate::http::uri::percent_decode;
use crate::limits;
use crate::s3::error::{S3Error, S3ErrorCode};
use crate::time;

use super::canonical::push_collapsed;
use super::presigned::query_amz_params;
use super::{Credentials, constant_time_eq, err};

/// Subresources SigV2 includes in the canonical resource, sorted.
pub(super) const V2_SUBRESOURCES: &[&str] = &[
    "accelerate",
    "acl",
    "analytics",
    "cors",
    "defaultObjectAcl",
    "delete",
    "inventory",
    "lifecycle",
    "location",
    "logging",
    "metrics",
    "notification",
    "object-lock",
    "partNumber",
    "policy",
    "replication",
    "requestPayment",
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
    "response-content-language",
    "response-content-type",
    "response-expires",
    "restore",
    "select",
    "select-type",
    "storageClass",
    "tagging",
    "torrent",
    "uploadId",
    "uploads",
    "versionId",
    "versioning",
    "versions",
    "website",
];

/// How the SigV2 canonical resource names a bucket-only path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum V2Resource {
    /// The path as sent.
    AsSent,
    /// A bucket-only path with a trailing `/` added: botocore sends `PUT /bucket` and signs
    /// `/bucket/`.
    BucketSlash,
}

/// SigV2's string to sign: method, Content-MD5, Content-Type, date (or Expires), the
/// `x-amz-*` headers (for query authentication, also the `x-amz-*` query parameters, which
/// presigned SigV2 URLs carry in place of headers), and the resource with its subresources.
pub fn v2_string_to_sign(
    req: &Request,
    date_or_expires: &str,
    host_bucket: Option<&str>,
    resource: V2Resource,
) -> String {
    let mut s = String::with_capacity(128 + req.path.len());
    s.push_str(&req.method_raw);
    s.push('\n');
    s.push_str(req.header("content-md5").unwrap_or("").trim());
    s.push('\n');
    s.push_str(req.header("content-type").unwrap_or("").trim());
    s.push('\n');
    s.push_str(date_or_expires);
    s.push('\n');
    let mut amz: Vec<(String, String)> = Vec::new();
    for (k, _) in &req.headers {
        if k.starts_with("x-amz-") && !amz.iter().any(|(n, _)| n == k) {
            amz.push((k.clone(), req.header_joined(k).unwrap_or_default().into_owned()));
        }
    }
    for (k, v) in query_amz_params(req) {
        match amz.iter_mut().find(|(n, _)| *n == k) {
            Some((_, existing)) => {
                existing.push(',');
                existing.push_str(&v);
            }
            None => amz.push((k, v)),
        }
    }
    amz.sort();
    for (k, v) in amz {
        s.push_str(&k);
        s.push(':');
        push_collapsed(&mut s, &v);
        s.push('\n');
    }
    // The canonical resource names the bucket even when the Host header carries it.
    if let Some(b) = host_bucket {
        s.push('/');
        s.push_str(b);
    }
    s.push_str(&req.path);
    if resource == V2Resource::BucketSlash {
        s.push('/');
    }
    let mut subs: Vec<(String, Option<String>)> = req
        .query
        .split('&')
        .filter(|p| !p.is_empty())
        .filter_map(|p| {
            let (k, v) = match p.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (p, None),
            };
            let k = percent_decode(k)?;
            V2_SUBRESOURCES.contains(&k.as_str()).then(|| (k, v.and_then(percent_decode)))
        })
        .collect();
    subs.sort();
    for (i, (k, v)) in subs.iter().enumerate() {
        s.push(if i == 0 { '?' } else { '&' });
        s.push_str(k);
        if let Some(v) = v {
            s.push('=');
            s.push_str(v);
        }
    }
    s
}

/// Whether a SigV2 canonical resource may be the bucket-only path with a `/` added.
pub(super) fn bucket_only_path(req: &Request, host_bucket: Option<&str>) -> bool {
    host_bucket.is_none() && req.path.len() > 1 && !req.path[1..].contains('/')
}

/// SigV2 in a header (`Authorization: AWS AK:signature`) or in the query (`AWSAccessKeyId`,
/// `Signature`, `Expires`): HMAC-SHA1 in base64.
pub(super) fn verify(
    req: &Request,
    creds: &Credentials,
    now_secs: i64,
    header: Option<&str>,
    host_bucket: Option<&str>,
) -> Result<String, S3Error> {
    use base64::Engine;
    // The Date line: empty when x-amz-date is present (AWS's rule), but botocore puts its Date
    // header there anyway, so that is tried too.
    let (access_key, signature, date_lines) = match header {
        Some(h) => {
            let (ak, sig) = h.strip_prefix("AWS ").and_then(|r| r.trim().rsplit_once(':')).ok_or_else(|| {
                err(S3ErrorCode::AuthorizationHeaderMalformed, "The authorization header is malformed")
            })?;
            let when = match req.header("x-amz-date") {
                Some(d) => time::parse_any_date(d),
                None => req.header("date").and_then(time::parse_any_date),
            }
            .ok_or_else(|| {
                err(S3ErrorCode::AccessDenied, "AWS authentication requires a valid Date or x-amz-date header")
            })?;
            if (now_secs - when).abs() > limits::CLOCK_SKEW_SECS_MAX {
                return Err(err(
                    S3ErrorCode::RequestTimeTooSkewed,
                    "The difference between the request time and the server's time is too large.",
                ));
            }
            let date = req.header("date").unwrap_or("").trim().to_owned();
            let lines = if req.header("x-amz-date").is_some() { vec![String::new(), date] } else { vec![date] };
            (ak.to_owned(), sig.to_owned(), lines)
        }
        None => {
            let q = crate::http::uri::Query::parse(&req.query)
                .ok_or_else(|| err(S3ErrorCode::AccessDenied, "The query does not decode to UTF-8"))?;
            let get = |k: &str| {
                q.get(k).map(str::to_owned).ok_or_else(|| {
                    err(
                        S3ErrorCode::AccessDenied,
                        "Query-string authentication requires AWSAccessKeyId, Signature and Expires",
                    )
                })
            };
            let expires = get("Expires")?;
            let exp: i64 = expires
                .parse()
                .map_err(|_| err(S3ErrorCode::AccessDenied, "Expires must be a number of seconds since the epoch"))?;
            if now_secs > exp {
                return Err(err(S3ErrorCode::AccessDenied, "Request has expired"));
            }
            (get("AWSAccessKeyId")?, get("Signature")?, vec![expires])
        }
    };
    let secret = creds.secret(&access_key).ok_or_else(|| S3Error::code(S3ErrorCode::InvalidAccessKeyId))?;
    let mut resources = vec![V2Resource::AsSent];
    if bucket_only_path(req, host_bucket) {
        resources.push(V2Resource::BucketSlash);
    }
    let mut tried = None;
    for date_line in &date_lines {
        for &resource in &resources {
            let sts = v2_string_to_sign(req, date_line, host_bucket, resource);
            let mut mac =
                <Hmac<sha1::Sha1> as Mac>::new_from_slice(secret.as_bytes()).expect("HMAC accepts any key length");
            mac.update(sts.as_bytes());
            let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
            if constant_time_eq(expected.as_bytes(), signature.as_bytes()) {
                return Ok(access_key);
            }
            tried.get_or_insert(sts);
        }
    }
    tracing::debug!(string_to_sign = ?tried, "SigV2 signature mismatch");
    Err(S3Error::code(S3ErrorCode::SignatureDoesNotMatch))
}
