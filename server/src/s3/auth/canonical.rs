//! SigV4's canonical request and string to sign.

use sha2::{Digest, Sha256};

use crate::http::uri::{percent_decode_bytes, uri_encode_bytes};
use crate::limits;
use crate::s3::error::{S3Error, S3ErrorCode};

use super::err;

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
    canonical_request_into(&mut s, (method, path, query), signed_headers, header, payload_hash, presigned)?;
    Ok(s)
}

/// `canonical_request`, appended to `s` (a reused buffer: no allocation once it has grown).
pub fn canonical_request_into<V>(
    s: &mut String,
    (method, path, query): (&str, &str, &str),
    signed_headers: &str,
    header: impl Fn(&str) -> Option<V>,
    payload_hash: &str,
    presigned: bool,
) -> Result<(), S3Error>
where
    V: AsRef<str>,
{
    s.push_str(method);
    s.push('\n');
    s.push_str(if path.is_empty() { "/" } else { path });
    s.push('\n');
    if !query.is_empty() {
        s.push_str(&canonical_query(query, presigned));
    }
    s.push('\n');
    let listed = signed_headers.split(';').count();
    // On the stack: no allocation per signed request.
    let mut slots = [""; limits::HEADER_COUNT_MAX];
    let mut count = 0;
    for name in signed_headers.split(';').filter(|n| !n.is_empty()) {
        if count == slots.len() {
            return Err(err(S3ErrorCode::AuthorizationHeaderMalformed, "SignedHeaders is empty or too long"));
        }
        slots[count] = name;
        count += 1;
    }
    let names = &mut slots[..count];
    if names.is_empty() {
        return Err(err(S3ErrorCode::AuthorizationHeaderMalformed, "SignedHeaders is empty or too long"));
    }
    // Clients send the list sorted and without empty names: then it is its own canonical form.
    let as_sent = names.len() == listed && names.windows(2).all(|w| w[0] <= w[1]);
    names.sort_unstable();
    for name in names.iter() {
        let lower = if name.bytes().any(|b| b.is_ascii_uppercase()) {
            std::borrow::Cow::Owned(name.to_ascii_lowercase())
        } else {
            std::borrow::Cow::Borrowed(*name)
        };
        let value = header(&lower).ok_or_else(|| S3Error::code(S3ErrorCode::SignatureDoesNotMatch))?;
        s.push_str(&lower);
        s.push(':');
        push_collapsed(s, value.as_ref());
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
    Ok(())
}

/// Trims and collapses runs of spaces to one (SigV4's header value canonicalisation).
pub(super) fn push_collapsed(out: &mut String, v: &str) {
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
