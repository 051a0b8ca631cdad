//! SigV4 in the Authorization header, and signing as a client does (keel's own admin
//! subcommands and tests).

use crate::http::Request;
use crate::limits;
use crate::s3::error::{S3Error, S3ErrorCode};
use crate::s3::payload::ChunkSigner;
use crate::time;

use super::canonical::{canonical_request, canonical_request_into, string_to_sign};
use super::key_cache::{sign_with, signing_key, signing_mac};
use super::{Credentials, EMPTY_SHA256, constant_time_eq, err, hmac};

/// The parts of `Authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...`.
#[derive(Debug, PartialEq, Eq)]
pub struct V4Header<'a> {
    pub access_key: &'a str,
    /// `date/region/service/aws4_request`, as sent.
    pub scope: &'a str,
    pub date: &'a str,
    pub region: &'a str,
    pub service: &'a str,
    pub signed_headers: &'a str,
    pub signature: &'a str,
}

pub fn parse_v4_header(value: &str) -> Result<V4Header<'_>, S3Error> {
    let malformed = || err(S3ErrorCode::AuthorizationHeaderMalformed, "The authorization header is malformed");
    let rest = value.strip_prefix("AWS4-HMAC-SHA256").ok_or_else(malformed)?.trim_start();
    let (mut cred, mut signed, mut sig) = (None, None, None);
    for part in rest.split(',') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("Credential=") {
            cred = Some(v);
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed = Some(v);
        } else if let Some(v) = part.strip_prefix("Signature=") {
            sig = Some(v);
        } else if !part.is_empty() {
            return Err(malformed());
        }
    }
    let (cred, signed_headers, signature) =
        (cred.ok_or_else(malformed)?, signed.ok_or_else(malformed)?, sig.ok_or_else(malformed)?);
    let Credential { access_key, scope, date, region, service } = parse_credential(cred).ok_or_else(malformed)?;
    Ok(V4Header { access_key, scope, date, region, service, signed_headers, signature })
}

/// The pieces of a SigV4 credential.
pub(super) struct Credential<'a> {
    pub(super) access_key: &'a str,
    /// Everything after the access key: `date/region/service/aws4_request`.
    pub(super) scope: &'a str,
    pub(super) date: &'a str,
    pub(super) region: &'a str,
    pub(super) service: &'a str,
}

/// `AK/yyyymmdd/region/service/aws4_request` (the access key may itself contain '/').
pub(super) fn parse_credential(cred: &str) -> Option<Credential<'_>> {
    let mut it = cred.rsplitn(5, '/');
    let terminal = it.next()?;
    let service = it.next()?;
    let region = it.next()?;
    let date = it.next()?;
    let access_key = it.next()?;
    if terminal != "aws4_request" || date.len() != 8 || access_key.is_empty() {
        return None;
    }
    Some(Credential { access_key, scope: &cred[access_key.len() + 1..], date, region, service })
}

thread_local! {
    /// The buffer header-signed requests' canonical requests are built in.
    static CANONICAL: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

pub(super) fn verify_header(
    req: &Request,
    auth: &str,
    creds: &Credentials,
    now_secs: i64,
    want_signer: bool,
) -> Result<(String, Option<ChunkSigner>), S3Error> {
    let h = parse_v4_header(auth)?;
    if h.service != "s3" {
        return Err(err(S3ErrorCode::AuthorizationHeaderMalformed, "The credential scope must name the s3 service"));
    }
    let secret = creds.secret(h.access_key).ok_or_else(|| S3Error::code(S3ErrorCode::InvalidAccessKeyId))?;
    require_signed(req, h.signed_headers)?;
    let amz_date = req.header("x-amz-date").map(str::trim);
    let bad_date = || err(S3ErrorCode::AccessDenied, "AWS authentication requires a valid Date or x-amz-date header");
    let (stamp, when) = match amz_date {
        Some(d) => (std::borrow::Cow::Borrowed(d), time::parse_amz_date(d).ok_or_else(bad_date)?),
        None => {
            let secs = req.header("date").and_then(time::parse_any_date).ok_or_else(bad_date)?;
            (std::borrow::Cow::Owned(amz_stamp(secs)), secs)
        }
    };
    if (now_secs - when).abs() > limits::CLOCK_SKEW_SECS_MAX {
        return Err(err(
            S3ErrorCode::RequestTimeTooSkewed,
            "The difference between the request time and the server's time is too large.",
        ));
    }
    if !stamp.starts_with(h.date) {
        return Err(err(S3ErrorCode::SignatureDoesNotMatch, "The credential date does not match the request date"));
    }
    let payload_hash = req.header("x-amz-content-sha256").map_or(EMPTY_SHA256, str::trim);
    let (key, mac) = signing_mac(secret, h.date, h.region, h.service);
    // The canonical request in the thread's reused buffer: no allocation per request.
    let expected = CANONICAL.with_borrow_mut(|creq| {
        creq.clear();
        let target = (req.method_raw.as_str(), req.path.as_str(), req.query.as_str());
        let joined = |n: &str| req.header_joined(n);
        canonical_request_into(creq, target, h.signed_headers, joined, payload_hash, false)?;
        let expected = sign_with(mac, &stamp, h.scope, creq);
        if !constant_time_eq(&expected, h.signature.as_bytes()) {
            tracing::debug!(canonical_request = %creq, "signature mismatch");
            return Err(S3Error::code(S3ErrorCode::SignatureDoesNotMatch));
        }
        Ok(expected)
    })?;
    let signer = want_signer.then(|| ChunkSigner {
        key,
        amz_date: stamp.into_owned(),
        scope: h.scope.to_owned(),
        prev: String::from_utf8_lossy(&expected).into_owned(),
    });
    Ok((h.access_key.to_owned(), signer))
}

/// Refuses a SigV4 request carrying `Host` or an `x-amz-*` header that its signature does not
/// cover, as S3 does: otherwise a captured request or a presigned URL could be replayed with
/// headers that change its meaning (`x-amz-copy-source` turns a PUT into a copy of another
/// object, `x-amz-acl` publishes it).
pub(super) fn require_signed(req: &Request, signed_headers: &str) -> Result<(), S3Error> {
    let signed = |name: &str| signed_headers.split(';').any(|s| s.trim().eq_ignore_ascii_case(name));
    let mut missing: Vec<&str> = Vec::new();
    for (name, _) in &req.headers {
        if (name == "host" || name.starts_with("x-amz-")) && !signed(name) && !missing.contains(&name.as_str()) {
            missing.push(name);
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    Err(err(S3ErrorCode::AccessDenied, "There were headers present in the request which were not signed")
        .with_detail("HeadersNotSigned", missing.join(", ")))
}

pub(super) fn amz_stamp(secs: i64) -> String {
    // 2013-05-24T00:00:00.000Z -> 20130524T000000Z
    let iso = time::iso8601_ms((secs.max(0) as u64) * 1000);
    let b = iso.as_bytes();
    let mut s = String::with_capacity(16);
    for &c in &b[..19] {
        if c != b'-' && c != b':' {
            s.push(c as char);
        }
    }
    s.push('Z');
    s
}

/// Signs a request as an S3 client does (SigV4 in the Authorization header): adds
/// `x-amz-date`, `x-amz-content-sha256` (when absent) and `Authorization`, signing every header in
/// `headers` but Content-Length, Transfer-Encoding and Expect. For keel's own clients (the
/// admin subcommands) and tests.
pub fn sign_v4_client(
    method: &str,
    target: &str,
    headers: &mut Vec<(String, String)>,
    payload_sha256_hex: &str,
    (access_key, secret_key): (&str, &str),
    region: &str,
    now_secs: i64,
) -> Result<(), S3Error> {
    let date = amz_stamp(now_secs);
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("x-amz-content-sha256")) {
        headers.push(("x-amz-content-sha256".into(), payload_sha256_hex.to_owned()));
    }
    headers.push(("x-amz-date".into(), date.clone()));
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut names: Vec<String> = headers
        .iter()
        .map(|(k, _)| k.to_ascii_lowercase())
        .filter(|k| k != "content-length" && k != "transfer-encoding" && k != "expect")
        .collect();
    names.sort();
    names.dedup();
    let signed = names.join(";");
    let payload = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("x-amz-content-sha256"))
        .map_or(payload_sha256_hex.to_owned(), |(_, v)| v.clone());
    let lookup = |n: &str| headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(n)).map(|(_, v)| v.clone());
    let creq = canonical_request(method, path, query, &signed, lookup, &payload, false)?;
    let scope = format!("{}/{region}/s3/aws4_request", &date[..8]);
    let sts = string_to_sign(&date, &scope, &creq);
    let sig = hex::encode(hmac(&signing_key(secret_key, &date[..8], region, "s3"), sts.as_bytes()));
    headers.push((
        "Authorization".into(),
        format!("AWS4-HMAC-SHA256 Credential={access_key}/{scope}, SignedHeaders={signed}, Signature={sig}"),
    ));
    Ok(())
}
