//! Presigned SigV4 URLs: the signature and its scope in the query, for a limited time.

use crate::http::Request;
use crate::http::uri::percent_decode;
use crate::limits;
use crate::s3::error::{S3Error, S3ErrorCode};
use crate::time;

use super::canonical::canonical_request;
use super::key_cache::{sign_with, signing_mac};
use super::sigv4::{Credential, parse_credential, require_signed};
use super::{Credentials, constant_time_eq, err};

/// Longest validity of a presigned URL (S3: 7 days).
pub(super) const PRESIGNED_EXPIRES_SECS_MAX: i64 = 604_800;

/// Presigned SigV4: `X-Amz-Algorithm`, `-Credential`, `-Date`, `-Expires`, `-SignedHeaders`,
/// `-Signature` in the query; the payload is `UNSIGNED-PAYLOAD` unless a header says otherwise.
pub(super) fn verify(req: &Request, creds: &Credentials, now_secs: i64) -> Result<String, S3Error> {
    let q = crate::http::uri::Query::parse(&req.query)
        .ok_or_else(|| err(S3ErrorCode::AuthorizationQueryParametersError, "The query does not decode to UTF-8"))?;
    let need = |k: &str| {
        q.get(k).ok_or_else(|| {
            err(S3ErrorCode::AuthorizationQueryParametersError, &format!("Query-string authentication requires {k}"))
        })
    };
    if need("X-Amz-Algorithm")? != "AWS4-HMAC-SHA256" {
        return Err(err(
            S3ErrorCode::AuthorizationQueryParametersError,
            "X-Amz-Algorithm only supports AWS4-HMAC-SHA256",
        ));
    }
    let Credential { access_key, scope, date, region, service } = parse_credential(need("X-Amz-Credential")?)
        .ok_or_else(|| err(S3ErrorCode::AuthorizationQueryParametersError, "X-Amz-Credential is malformed"))?;
    let stamp = need("X-Amz-Date")?;
    let when = time::parse_amz_date(stamp).ok_or_else(|| {
        err(S3ErrorCode::AuthorizationQueryParametersError, "X-Amz-Date must be in the ISO8601 Long Format")
    })?;
    let expires: i64 = need("X-Amz-Expires")?
        .parse()
        .map_err(|_| err(S3ErrorCode::AuthorizationQueryParametersError, "X-Amz-Expires should be a number"))?;
    if !(1..=PRESIGNED_EXPIRES_SECS_MAX).contains(&expires) {
        return Err(err(S3ErrorCode::AccessDenied, "X-Amz-Expires must be between 1 and 604800 seconds"));
    }
    let secret = creds.secret(access_key).ok_or_else(|| S3Error::code(S3ErrorCode::InvalidAccessKeyId))?;
    if now_secs > when + expires {
        return Err(err(S3ErrorCode::AccessDenied, "Request has expired"));
    }
    if when > now_secs + limits::CLOCK_SKEW_SECS_MAX {
        return Err(err(S3ErrorCode::AccessDenied, "Request is not valid yet"));
    }
    if !stamp.starts_with(date) || service != "s3" {
        return Err(S3Error::code(S3ErrorCode::SignatureDoesNotMatch));
    }
    let signed_headers = need("X-Amz-SignedHeaders")?;
    require_signed(req, signed_headers)?;
    let payload_hash = req.header("x-amz-content-sha256").map_or("UNSIGNED-PAYLOAD", str::trim);
    let creq = canonical_request(
        req.method_raw.as_str(),
        &req.path,
        &req.query,
        signed_headers,
        |n| req.header_joined(n),
        payload_hash,
        true,
    )?;
    let expected = sign_with(signing_mac(secret, date, region, service).1, stamp, scope, &creq);
    if !constant_time_eq(&expected, need("X-Amz-Signature")?.as_bytes()) {
        tracing::debug!(canonical_request = %creq, "presigned signature mismatch");
        return Err(S3Error::code(S3ErrorCode::SignatureDoesNotMatch));
    }
    Ok(access_key.to_owned())
}

/// The `x-amz-*` parameters of a presigned request's query (lowercase names, decoded values),
/// which S3 reads as headers; SigV4's own `X-Amz-Algorithm`, `-Credential`, `-Date`,
/// `-Expires`, `-SignedHeaders`, `-Signature` and `-Security-Token` are not among them.
pub fn query_amz_params(req: &Request) -> Vec<(String, String)> {
    if !req.query.contains("x-amz-") && !req.query.contains("X-Amz-") && !req.query.contains("X-AMZ-") {
        return Vec::new();
    }
    const AUTH: [&str; 7] = [
        "x-amz-algorithm",
        "x-amz-credential",
        "x-amz-date",
        "x-amz-expires",
        "x-amz-signedheaders",
        "x-amz-signature",
        "x-amz-security-token",
    ];
    req.query
        .split('&')
        .filter_map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let k = percent_decode(k)?.to_ascii_lowercase();
            (k.starts_with("x-amz-") && !AUTH.contains(&k.as_str())).then(|| Some((k, percent_decode(v)?))).flatten()
        })
        .collect()
}
