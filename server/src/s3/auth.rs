//! Request authentication: AWS Signature Version 4 in the Authorization header.
//!
//! The canonical request is built from the request exactly as sent: the path is not normalised
//! (S3 signs it as is), the query is decoded and re-encoded in AWS's canonical form, signed
//! headers are trimmed with inner whitespace collapsed. Presigned URLs, SigV2 and streaming
//! payload signatures plug in here (see `authenticate`).

use std::cell::RefCell;
use std::collections::HashMap;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::http::Request;
use crate::http::uri::{percent_decode, percent_decode_bytes, uri_encode_bytes};
use crate::limits;
use crate::s3::error::{S3Error, S3ErrorCode};
use crate::s3::payload::{ChunkSigner, Payload, STREAMING_KINDS};
use crate::time;

type HmacSha256 = Hmac<Sha256>;

/// Access keys, their secrets, and which of them are admins.
#[derive(Clone, Debug, Default)]
pub struct Credentials {
    users: HashMap<String, String>,
    admins: std::collections::HashSet<String>,
}

impl Credentials {
    pub fn new(pairs: impl IntoIterator<Item = (String, String)>) -> Credentials {
        Credentials { users: pairs.into_iter().collect(), admins: Default::default() }
    }

    /// Marks access keys as admins (they may change any bucket's properties).
    pub fn with_admins(mut self, admins: impl IntoIterator<Item = String>) -> Credentials {
        self.admins.extend(admins);
        self
    }

    pub fn is_admin(&self, access_key: &str) -> bool {
        self.admins.contains(access_key)
    }

    pub fn secret(&self, access_key: &str) -> Option<&str> {
        self.users.get(access_key).map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    pub fn access_keys(&self) -> impl Iterator<Item = &str> {
        self.users.keys().map(String::as_str)
    }
}

/// Who sent a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Identity {
    Anonymous,
    User(String),
}

impl Identity {
    pub fn name(&self) -> &str {
        match self {
            Identity::Anonymous => "anonymous",
            Identity::User(ak) => ak,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Authenticated {
    pub identity: Identity,
    /// What the signature says about the body (with the chunk-signature chain's seed for
    /// signed streaming bodies).
    pub payload: Payload,
}

pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

fn err(code: S3ErrorCode, msg: &str) -> S3Error {
    S3Error::new(code, msg)
}

/// Reads what `x-amz-content-sha256` promises, and whether its chunks carry signatures (whose
/// chain the header signature seeds).
fn payload_of(req: &Request) -> Result<(Payload, bool), S3Error> {
    match req.header("x-amz-content-sha256").map(str::trim) {
        None | Some("UNSIGNED-PAYLOAD") => Ok((Payload::Unsigned, false)),
        Some(v) if v.starts_with("STREAMING-") => match STREAMING_KINDS.iter().find(|(name, ..)| *name == v) {
            Some(&(_, signed, trailer)) => Ok((Payload::Chunked { signed: None, trailer }, signed)),
            None => Err(err(S3ErrorCode::NotImplemented, &format!("{v} payloads are not supported"))),
        },
        Some(v) => {
            let mut h = [0u8; 32];
            if v.len() != 64 || hex::decode_to_slice(v, &mut h).is_err() {
                return Err(err(
                    S3ErrorCode::InvalidArgument,
                    "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-... or a SHA-256 in hex",
                ));
            }
            Ok((Payload::Sha256(h), false))
        }
    }
}

/// Authenticates a request: SigV4 (header or presigned query), SigV2 (header or query), or
/// none. With `anonymous`, unsigned requests are accepted and signatures are not checked
/// (payload hashes still are). `host_bucket` is the bucket named by a virtual-hosted `Host`,
/// which SigV2's canonical resource includes although the path does not.
pub fn authenticate(
    req: &Request,
    creds: &Credentials,
    anonymous: bool,
    now_secs: i64,
    host_bucket: Option<&str>,
) -> Result<Authenticated, S3Error> {
    let (mut payload, chunks_signed) = payload_of(req)?;
    let user = |identity: String, payload: Payload| Ok(Authenticated { identity: Identity::User(identity), payload });
    if anonymous {
        // Signatures are not checked, chunk signatures included.
        return Ok(Authenticated { identity: Identity::Anonymous, payload });
    }
    let query_has = |k: &str| req.query.split('&').any(|p| p.split('=').next() == Some(k));
    match req.header("authorization") {
        None if query_has("X-Amz-Signature") => {
            let identity = verify_v4_presigned(req, creds, now_secs)?;
            // A presigned request's body is not signed unless the URL says so.
            let payload = if req.header("x-amz-content-sha256").is_some() { payload } else { Payload::Unsigned };
            user(identity, payload)
        }
        None if query_has("Signature") && query_has("AWSAccessKeyId") => {
            user(verify_v2(req, creds, now_secs, None, host_bucket)?, payload)
        }
        None => Ok(Authenticated { identity: Identity::Anonymous, payload }),
        Some(a) if a.starts_with("AWS4-HMAC-SHA256") => {
            let (identity, signer) = verify_v4_header(req, a, creds, now_secs, chunks_signed)?;
            if req.header("x-amz-content-sha256").is_none() {
                return Err(err(
                    S3ErrorCode::InvalidRequest,
                    "Missing required header for this request: x-amz-content-sha256",
                ));
            }
            if let Payload::Chunked { signed, .. } = &mut payload {
                *signed = signer;
            }
            user(identity, payload)
        }
        Some(a) if a.starts_with("AWS ") => user(verify_v2(req, creds, now_secs, Some(a), host_bucket)?, payload),
        Some(_) => Err(err(S3ErrorCode::AuthorizationHeaderMalformed, "Unsupported authorization type")),
    }
}

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
struct Credential<'a> {
    access_key: &'a str,
    /// Everything after the access key: `date/region/service/aws4_request`.
    scope: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
}

/// `AK/yyyymmdd/region/service/aws4_request` (the access key may itself contain '/').
fn parse_credential(cred: &str) -> Option<Credential<'_>> {
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

fn verify_v4_header(
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
    let creq = canonical_request(
        req.method_raw.as_str(),
        &req.path,
        &req.query,
        h.signed_headers,
        |n| req.header_joined(n),
        payload_hash,
        false,
    )?;
    let (key, mac) = signing_mac(secret, h.date, h.region, h.service);
    let expected = sign_with(mac, &stamp, h.scope, &creq);
    if !constant_time_eq(&expected, h.signature.as_bytes()) {
        tracing::debug!(canonical_request = %creq, "signature mismatch");
        return Err(S3Error::code(S3ErrorCode::SignatureDoesNotMatch));
    }
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
fn require_signed(req: &Request, signed_headers: &str) -> Result<(), S3Error> {
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

/// Longest validity of a presigned URL (S3: 7 days).
const PRESIGNED_EXPIRES_SECS_MAX: i64 = 604_800;

/// Presigned SigV4: `X-Amz-Algorithm`, `-Credential`, `-Date`, `-Expires`, `-SignedHeaders`,
/// `-Signature` in the query; the payload is `UNSIGNED-PAYLOAD` unless a header says otherwise.
fn verify_v4_presigned(req: &Request, creds: &Credentials, now_secs: i64) -> Result<String, S3Error> {
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

/// Subresources SigV2 includes in the canonical resource, sorted.
const V2_SUBRESOURCES: &[&str] = &[
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

/// Whether a SigV2 canonical resource may be the bucket-only path with a `/` added.
fn bucket_only_path(req: &Request, host_bucket: Option<&str>) -> bool {
    host_bucket.is_none() && req.path.len() > 1 && !req.path[1..].contains('/')
}

/// SigV2 in a header (`Authorization: AWS AK:signature`) or in the query (`AWSAccessKeyId`,
/// `Signature`, `Expires`): HMAC-SHA1 in base64.
fn verify_v2(
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

fn amz_stamp(secs: i64) -> String {
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

/// Builds the canonical request. `header` returns the joined value of a (lowercase) header.
pub fn canonical_request<V>(
    method: &str,
    path: &str,
    query: &str,
    signed_headers: &str,
    header: impl Fn(&str) -> Option<V>,
    payload_hash: &str,
    presigned: bool,
) -> Result<String, S3Error>
where
    V: AsRef<str>,
{
    let mut s = String::with_capacity(256 + path.len() + query.len());
    s.push_str(method);
    s.push('\n');
    s.push_str(if path.is_empty() { "/" } else { path });
    s.push('\n');
    s.push_str(&canonical_query(query, presigned));
    s.push('\n');
    let listed = signed_headers.split(';').count();
    let mut names: Vec<&str> = signed_headers.split(';').filter(|n| !n.is_empty()).collect();
    if names.is_empty() || names.len() > limits::HEADER_COUNT_MAX {
        return Err(err(S3ErrorCode::AuthorizationHeaderMalformed, "SignedHeaders is empty or too long"));
    }
    // Clients send the list sorted and without empty names: then it is its own canonical form.
    let as_sent = names.len() == listed && names.windows(2).all(|w| w[0] <= w[1]);
    names.sort_unstable();
    for name in &names {
        let lower = if name.bytes().any(|b| b.is_ascii_uppercase()) {
            std::borrow::Cow::Owned(name.to_ascii_lowercase())
        } else {
            std::borrow::Cow::Borrowed(*name)
        };
        let value = header(&lower).ok_or_else(|| S3Error::code(S3ErrorCode::SignatureDoesNotMatch))?;
        s.push_str(&lower);
        s.push(':');
        push_collapsed(&mut s, value.as_ref());
        s.push('\n');
    }
    s.push('\n');
    if as_sent {
        s.push_str(signed_headers);
    } else {
        s.push_str(&names.join(";"));
    }
    s.push('\n');
    s.push_str(payload_hash);
    Ok(s)
}

/// Trims and collapses runs of spaces to one (SigV4's header value canonicalisation).
fn push_collapsed(out: &mut String, v: &str) {
    let v = v.trim();
    if !v.as_bytes().windows(2).any(|w| w[1] == b' ' && w[0] == b' ') && !v.contains('\t') {
        out.push_str(v);
        return;
    }
    let mut space = false;
    for c in v.chars() {
        if c == ' ' || c == '\t' {
            space = true;
        } else {
            if space {
                out.push(' ');
                space = false;
            }
            out.push(c);
        }
    }
}

/// Decodes each parameter once and re-encodes it canonically, then sorts.
pub fn canonical_query(query: &str, presigned: bool) -> String {
    let mut params: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (uri_encode_bytes(&percent_decode_bytes(k), true), uri_encode_bytes(&percent_decode_bytes(v), true))
        })
        .filter(|(k, _)| !(presigned && k == "X-Amz-Signature"))
        .collect();
    params.sort();
    let mut s = String::with_capacity(query.len() + 8);
    for (i, (k, v)) in params.iter().enumerate() {
        if i > 0 {
            s.push('&');
        }
        s.push_str(k);
        s.push('=');
        s.push_str(v);
    }
    s
}

pub fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &str) -> String {
    let digest = Sha256::digest(canonical_request.as_bytes());
    format!("AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}", hex::encode(digest))
}

pub fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut m = HmacSha256::new_from_slice(key).expect("HMAC accepts any key length");
    m.update(data);
    m.finalize().into_bytes().into()
}

/// A derived signing key with its HMAC already keyed (the pad blocks hashed once).
struct CachedKey {
    secret: String,
    date: String,
    region: String,
    service: String,
    key: [u8; 32],
    mac: HmacSha256,
}

thread_local! {
    /// Signing keys by (secret, date, region, service), per shard: four HMACs and two pad-block
    /// compressions saved per request. Few entries (users × days × regions), scanned in order.
    static KEY_CACHE: RefCell<Vec<CachedKey>> = const { RefCell::new(Vec::new()) };
}
const KEY_CACHE_ENTRIES_MAX: usize = 64;

fn derive_signing_key(secret: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac(&k_date, region.as_bytes());
    let k_service = hmac(&k_region, service.as_bytes());
    hmac(&k_service, b"aws4_request")
}

/// The signing key and an HMAC keyed with it, from the shard's cache.
fn signing_mac(secret: &str, date: &str, region: &str, service: &str) -> ([u8; 32], HmacSha256) {
    KEY_CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if let Some(e) =
            c.iter().find(|e| e.date == date && e.region == region && e.service == service && e.secret == secret)
        {
            return (e.key, e.mac.clone());
        }
        let key = derive_signing_key(secret, date, region, service);
        let mac = HmacSha256::new_from_slice(&key).expect("HMAC accepts any key length");
        if c.len() >= KEY_CACHE_ENTRIES_MAX {
            c.remove(0);
        }
        c.push(CachedKey {
            secret: secret.to_owned(),
            date: date.to_owned(),
            region: region.to_owned(),
            service: service.to_owned(),
            key,
            mac: mac.clone(),
        });
        (key, mac)
    })
}

pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    signing_mac(secret, date, region, service).0
}

/// The hex signature of a canonical request: the string to sign is fed to the keyed HMAC piece
/// by piece (the same bytes `string_to_sign` builds), without building it.
fn sign_with(mut mac: HmacSha256, amz_date: &str, scope: &str, canonical_request: &str) -> [u8; 64] {
    let mut digest_hex = [0u8; 64];
    hex::encode_to_slice(Sha256::digest(canonical_request.as_bytes()), &mut digest_hex)
        .expect("64 bytes hold a hex SHA-256");
    for piece in [b"AWS4-HMAC-SHA256\n".as_slice(), amz_date.as_bytes(), b"\n", scope.as_bytes(), b"\n", &digest_hex] {
        mac.update(piece);
    }
    let mut out = [0u8; 64];
    hex::encode_to_slice(mac.finalize().into_bytes(), &mut out).expect("64 bytes hold a hex HMAC-SHA256");
    out
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

/// Compares without an early exit, so timing says nothing about where signatures differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut diff = 0u8;
    for (x, y) in a.iter().zip(b) {
        diff |= x ^ y;
    }
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

    fn sign(method: &str, path: &str, query: &str, headers: &[(&str, &str)], signed: &str, payload: &str) -> String {
        let creq = canonical_request(
            method,
            path,
            query,
            signed,
            |n| headers.iter().find(|(k, _)| *k == n).map(|(_, v)| v.to_string()),
            payload,
            false,
        )
        .unwrap();
        let sts = string_to_sign("20130524T000000Z", "20130524/us-east-1/s3/aws4_request", &creq);
        hex::encode(hmac(&signing_key(SECRET, "20130524", "us-east-1", "s3"), sts.as_bytes()))
    }

    // The examples of AWS's "Signature Calculations for the Authorization Header" page for S3.
    #[test]
    fn aws_published_vectors() {
        let host = ("host", "examplebucket.s3.amazonaws.com");
        let date = ("x-amz-date", "20130524T000000Z");
        let empty = ("x-amz-content-sha256", EMPTY_SHA256);
        assert_eq!(
            sign(
                "GET",
                "/test.txt",
                "",
                &[host, ("range", "bytes=0-9"), empty, date],
                "host;range;x-amz-content-sha256;x-amz-date",
                EMPTY_SHA256
            ),
            "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
        let put_hash = "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072";
        assert_eq!(
            sign(
                "PUT",
                "/test%24file.text",
                "",
                &[
                    host,
                    ("date", "Fri, 24 May 2013 00:00:00 GMT"),
                    ("x-amz-content-sha256", put_hash),
                    date,
                    ("x-amz-storage-class", "REDUCED_REDUNDANCY")
                ],
                "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
                put_hash
            ),
            "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"
        );
        assert_eq!(
            sign("GET", "/", "lifecycle", &[host, empty, date], "host;x-amz-content-sha256;x-amz-date", EMPTY_SHA256),
            "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"
        );
        assert_eq!(
            sign(
                "GET",
                "/",
                "max-keys=2&prefix=J",
                &[host, empty, date],
                "host;x-amz-content-sha256;x-amz-date",
                EMPTY_SHA256
            ),
            "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"
        );
    }

    #[test]
    fn header_parsing() {
        for sep in [", ", ","] {
            let v = format!(
                "AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request{sep}SignedHeaders=host;x-amz-date{sep}Signature=abc"
            );
            let h = parse_v4_header(&v).unwrap();
            assert_eq!(
                (h.access_key, h.region, h.signed_headers, h.signature),
                ("AK", "us-east-1", "host;x-amz-date", "abc")
            );
        }
        assert!(
            parse_v4_header("AWS4-HMAC-SHA256 Credential=AK/2013/us/s3/aws4_request, SignedHeaders=h, Signature=x")
                .is_err()
        );
        assert!(parse_v4_header("AWS4-HMAC-SHA256 Credential=AK/20130524/us/s3/aws4_request, Signature=x").is_err());
        assert!(parse_v4_header("AWS4-HMAC-SHA256 Bogus=1").is_err());
    }

    #[test]
    fn canonical_query_sorts_and_reencodes() {
        assert_eq!(
            canonical_query("prefix=a%2Fb&list-type=2&encoding-type=url&delimiter=%2F", false),
            "delimiter=%2F&encoding-type=url&list-type=2&prefix=a%2Fb"
        );
        assert_eq!(canonical_query("uploads", false), "uploads=");
        assert_eq!(canonical_query("a=b c&a=a", false), "a=a&a=b%20c");
        assert_eq!(canonical_query("X-Amz-Signature=1&x=2", true), "x=2");
    }

    #[test]
    fn collapses_spaces_and_compares_in_constant_time() {
        let mut s = String::new();
        push_collapsed(&mut s, "  a   b \t c ");
        assert_eq!(s, "a b c");
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert_eq!(amz_stamp(1_369_353_600), "20130524T000000Z");
        // The no-copy path (single spaces only) agrees with collapsing char by char.
        for v in ["a b c", " a b ", "a\tb", "a  b", "\ta b\t", "x", "", "  ", "é ü  ß", "a \t b"] {
            let mut fast = String::new();
            push_collapsed(&mut fast, v);
            let slow: Vec<&str> = v.split([' ', '\t']).filter(|p| !p.is_empty()).collect();
            assert_eq!(fast, slow.join(" "), "{v:?}");
        }
    }

    #[test]
    fn unsorted_or_uppercase_signed_headers_keep_their_meaning() {
        let headers = [("host", "h"), ("x-amz-date", "d")];
        let get = |n: &str| headers.iter().find(|(k, _)| *k == n).map(|(_, v)| *v);
        let sorted = canonical_request("GET", "/", "", "host;x-amz-date", get, "p", false).unwrap();
        let unsorted = canonical_request("GET", "/", "", "x-amz-date;host", get, "p", false).unwrap();
        assert_eq!(sorted, unsorted);
        assert!(sorted.ends_with("\n\nhost;x-amz-date\np"), "{sorted}");
        let gaps = canonical_request("GET", "/", "", ";host;;x-amz-date;", get, "p", false).unwrap();
        assert_eq!(gaps, sorted, "empty names are dropped from the list");
        let upper = canonical_request("GET", "/", "", "Host;x-amz-date", get, "p", false).unwrap();
        assert!(upper.contains("host:h\n"), "{upper}");
    }
}
