//! Derived SigV4 signing keys, cached per shard with their HMAC already keyed, and signing a
//! canonical request with one.

use std::cell::RefCell;

use hmac::Mac;
use sha2::{Digest, Sha256};

use super::{HmacSha256, hmac};

/// A derived signing key with its HMAC already keyed (the pad blocks hashed once).
pub(super) struct CachedKey {
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

pub(super) const KEY_CACHE_ENTRIES_MAX: usize = 64;

pub(super) fn derive_signing_key(secret: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac(&k_date, region.as_bytes());
    let k_service = hmac(&k_region, service.as_bytes());
    hmac(&k_service, b"aws4_request")
}

/// The signing key and an HMAC keyed with it, from the shard's cache.
pub(super) fn signing_mac(secret: &str, date: &str, region: &str, service: &str) -> ([u8; 32], HmacSha256) {
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
pub(super) fn sign_with(mut mac: HmacSha256, amz_date: &str, scope: &str, canonical_request: &str) -> [u8; 64] {
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
