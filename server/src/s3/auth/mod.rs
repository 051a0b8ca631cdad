//! Request authentication: who signed a request, and what the signature says about its body.
//!
//! `authenticate` picks the scheme: SigV4 in the Authorization header (`sigv4.rs`), presigned
//! SigV4 URLs (`presigned.rs`), SigV2 in a header or URL (`sigv2.rs`), or none. The canonical
//! request (`canonical.rs`) is built from the request exactly as sent: the path is not
//! normalised (S3 signs it as is), the query is decoded and re-encoded in AWS's canonical form,
//! signed headers are trimmed with inner whitespace collapsed. Derived signing keys are cached
//! per shard (`key_cache.rs`).

mod canonical;
mod key_cache;
mod presigned;
mod sigv2;
mod sigv4;
#[cfg(test)]
mod tests;

use std::collections::HashMap;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::http::Request;
use crate::s3::error::{S3Error, S3ErrorCode};
use crate::s3::payload::{Payload, STREAMING_KINDS};

pub use canonical::{canonical_query, canonical_request, string_to_sign};
pub use key_cache::signing_key;
pub use presigned::query_amz_params;
pub use sigv2::{V2Resource, v2_string_to_sign};
pub use sigv4::{V4Header, parse_v4_header, sign_v4_client};

pub(crate) type HmacSha256 = Hmac<Sha256>;

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

pub(super) fn err(code: S3ErrorCode, msg: &str) -> S3Error {
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
            let identity = presigned::verify(req, creds, now_secs)?;
            // A presigned request's body is not signed unless the URL says so.
            let payload = if req.header("x-amz-content-sha256").is_some() { payload } else { Payload::Unsigned };
            user(identity, payload)
        }
        None if query_has("Signature") && query_has("AWSAccessKeyId") => {
            user(sigv2::verify(req, creds, now_secs, None, host_bucket)?, payload)
        }
        None => Ok(Authenticated { identity: Identity::Anonymous, payload }),
        Some(a) if a.starts_with("AWS4-HMAC-SHA256") => {
            let (identity, signer) = sigv4::verify_header(req, a, creds, now_secs, chunks_signed)?;
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
        Some(a) if a.starts_with("AWS ") => user(sigv2::verify(req, creds, now_secs, Some(a), host_bucket)?, payload),
        Some(_) => Err(err(S3ErrorCode::AuthorizationHeaderMalformed, "Unsupported authorization type")),
    }
}

/// A request presigned (SigV4 or SigV2 in the query, no Authorization header) with an access
/// key this server does not know: one meant for another S3, which a backend bucket may pass
/// through. Returns the names of the headers its signature covers, lowercase, `host` left out.
pub fn foreign_presigned(req: &Request, creds: &Credentials) -> Option<Vec<String>> {
    // Most requests are signed in a header or not at all: no query to decode for them.
    if req.header("authorization").is_some() || !req.query.contains("Signature=") {
        return None;
    }
    let q = crate::http::uri::Query::parse(&req.query)?;
    if q.get("X-Amz-Signature").is_some() {
        let cred = sigv4::parse_credential(q.get("X-Amz-Credential")?)?;
        if creds.secret(cred.access_key).is_some() {
            return None;
        }
        let signed = q.get("X-Amz-SignedHeaders").unwrap_or("host");
        return Some(
            signed.split(';').filter(|h| !h.is_empty() && *h != "host").map(str::to_ascii_lowercase).collect(),
        );
    }
    // SigV2 signs Content-MD5, Content-Type and every x-amz-* header the request has.
    q.get("Signature")?;
    if creds.secret(q.get("AWSAccessKeyId")?).is_some() {
        return None;
    }
    let mut signed: Vec<String> = vec!["content-md5".into(), "content-type".into()];
    signed.extend(req.headers.iter().map(|(k, _)| k.to_ascii_lowercase()).filter(|k| k.starts_with("x-amz-")));
    Some(signed)
}

pub fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut m = HmacSha256::new_from_slice(key).expect("HMAC accepts any key length");
    m.update(data);
    m.finalize().into_bytes().into()
}

/// Compares without an early exit, so timing says nothing about where signatures differ.
/// HMAC-SHA1 (SigV2 and SigV2 form signatures).
pub fn hmac_sha1(key: &[u8], data: &[u8]) -> [u8; 20] {
    use hmac::{Hmac, Mac};
    let mut mac = <Hmac<sha1::Sha1> as Mac>::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

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
