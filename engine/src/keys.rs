//! Bucket names and object keys: validation and the index key layout.
//! Keys are bytes inside index records and never become file paths.

use crate::error::{Error, KeyError, Result};
use crate::limits;

/// Checks a bucket name against S3's rules for new buckets (3..=63 of `a-z 0-9 . -`, starting
/// and ending with a letter or digit, no `..`, not an IP address).
pub fn validate_bucket_name(name: &str) -> Result<()> {
    let b = name.as_bytes();
    let ok_len = (limits::BUCKET_NAME_BYTES_MIN..=limits::BUCKET_NAME_BYTES_MAX).contains(&b.len());
    let ok_chars = b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'.' || *c == b'-');
    let ok_ends = ok_len && b[0].is_ascii_alphanumeric() && b[b.len() - 1].is_ascii_alphanumeric();
    let not_ip = name.parse::<std::net::Ipv4Addr>().is_err();
    if ok_len && ok_chars && ok_ends && !name.contains("..") && not_ip { Ok(()) } else { Err(Error::InvalidBucketName) }
}

/// Checks an object key: 1..=1024 bytes. Any byte sequence that arrived as valid UTF-8 is legal,
/// `..`, `//` and trailing `/` included.
pub fn validate_key(key: &str) -> Result<()> {
    if key.is_empty() {
        return Err(Error::InvalidKey(KeyError::Empty));
    }
    if key.len() > limits::KEY_BYTES_MAX {
        return Err(Error::InvalidKey(KeyError::TooLong));
    }
    Ok(())
}

/// Index key of an object: `bucket \0 key`. Bucket names never contain NUL, so the split is unique
/// and all keys of one bucket form one contiguous range, ordered by key bytes.
pub fn object_index_key(bucket: &str, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(bucket.len() + 1 + key.len());
    k.extend_from_slice(bucket.as_bytes());
    k.push(0);
    k.extend_from_slice(key);
    k
}

/// Room for most index keys on the stack (`object_index_key_in`).
pub const INDEX_KEY_STACK: usize = 512;

/// `object_index_key` written into `buf` (no allocation), or `None` when it does not fit.
pub fn object_index_key_in<'a>(bucket: &str, key: &[u8], buf: &'a mut [u8]) -> Option<&'a [u8]> {
    let n = bucket.len() + 1 + key.len();
    let out = buf.get_mut(..n)?;
    out[..bucket.len()].copy_from_slice(bucket.as_bytes());
    out[bucket.len()] = 0;
    out[bucket.len() + 1..].copy_from_slice(key);
    Some(out)
}

/// Splits an object (or upload) index key into its bucket and the rest after the `\0`.
pub fn split_object_index_key(k: &[u8]) -> Option<(&[u8], &[u8])> {
    let nul = k.iter().position(|&b| b == 0)?;
    Some((&k[..nul], &k[nul + 1..]))
}

/// The first index key of `bucket`'s objects at or after `key`.
pub fn bucket_range_start(bucket: &str, key: &[u8]) -> Vec<u8> {
    object_index_key(bucket, key)
}

/// The index key just past every object of `bucket`.
pub fn bucket_range_end(bucket: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(bucket.len() + 1);
    k.extend_from_slice(bucket.as_bytes());
    k.push(1);
    k
}

/// The smallest byte string greater than every string that starts with `prefix`, or `None` when
/// no such string exists (all 0xFF).
pub fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut p = prefix.to_vec();
    while let Some(last) = p.pop() {
        if last < 0xff {
            p.push(last + 1);
            return Some(p);
        }
    }
    None
}

/// Length of an upload id: 12 hex digits of creation milliseconds, then 16 random hex digits,
/// so ids of one key sort by creation time.
pub const UPLOAD_ID_LEN: usize = 28;

/// Checks that `id` has the shape keel gives upload ids (so it can never escape a key range).
pub fn valid_upload_id(id: &str) -> bool {
    id.len() == UPLOAD_ID_LEN && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Creation time (ms since the epoch) encoded in an upload id.
pub fn upload_id_created_ms(id: &str) -> Option<u64> {
    u64::from_str_radix(id.get(..12)?, 16).ok()
}

/// Index key of an upload: `bucket \0 key \0 upload-id`.
pub fn upload_index_key(bucket: &str, key: &[u8], upload_id: &str) -> Vec<u8> {
    let mut k = object_index_key(bucket, key);
    k.push(0);
    k.extend_from_slice(upload_id.as_bytes());
    k
}

/// Splits the part of an upload index key after `bucket \0` into (object key, upload id).
pub fn split_upload_suffix(suffix: &[u8]) -> Option<(&[u8], &str)> {
    if suffix.len() < UPLOAD_ID_LEN + 1 {
        return None;
    }
    let (key, rest) = suffix.split_at(suffix.len() - UPLOAD_ID_LEN - 1);
    if rest[0] != 0 {
        return None;
    }
    Some((key, std::str::from_utf8(&rest[1..]).ok()?))
}

/// Index key of a part: the upload id, then the part number (big-endian, so parts sort).
pub fn part_index_key(upload_id: &str, part_number: u32) -> Vec<u8> {
    let mut k = upload_id.as_bytes().to_vec();
    k.extend_from_slice(&part_number.to_be_bytes());
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names() {
        for ok in ["abc", "my-bucket.1", "a".repeat(63).as_str(), "1bucket"] {
            assert!(validate_bucket_name(ok).is_ok(), "{ok}");
        }
        for bad in ["ab", "ABC", "a_b", "-ab", "ab-", "a..b", "192.168.1.1", "a".repeat(64).as_str(), "a\0b", "a/b"] {
            assert!(validate_bucket_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn keys_are_never_normalised() {
        for ok in ["..", "a/../b", "a//b", "./x", "trailing/", " ", "ключ", "a+b"] {
            assert!(validate_key(ok).is_ok());
            let k = object_index_key("bkt", ok.as_bytes());
            assert_eq!(&k[4..], ok.as_bytes());
        }
        assert!(validate_key(&"k".repeat(1024)).is_ok());
        assert!(validate_key(&"k".repeat(1025)).is_err());
        assert!(validate_key("").is_err());
    }

    #[test]
    fn bucket_ranges_do_not_overlap() {
        let a_end = bucket_range_end("abc");
        // "abc\0<anything>" < "abc\x01" <= "abc-..." and "abcd..."
        assert!(object_index_key("abc", &[0xff; 1024]) < a_end);
        assert!(a_end <= object_index_key("abc-d", b""));
        assert!(a_end <= object_index_key("abcd", b""));
    }

    #[test]
    fn upload_keys() {
        let id = "0123456789abcdef0123456789ab";
        assert!(valid_upload_id(id));
        assert!(!valid_upload_id("../../x"));
        assert_eq!(upload_id_created_ms(id), Some(0x0123456789ab));
        assert_eq!(split_object_index_key(&object_index_key("b", b"k\0x")), Some((&b"b"[..], &b"k\0x"[..])));
        assert_eq!(split_object_index_key(b"nonul"), None);
        let k = upload_index_key("bkt", b"a\0b", id);
        let (key, uid) = split_upload_suffix(&k[4..]).unwrap();
        assert_eq!((key, uid), (&b"a\0b"[..], id));
        let p1 = part_index_key(id, 2);
        let p2 = part_index_key(id, 10);
        assert!(p1 < p2 && p1.starts_with(id.as_bytes()));
    }

    #[test]
    fn successor() {
        assert_eq!(prefix_successor(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_successor(&[b'a', 0xff]), Some(b"b".to_vec()));
        assert_eq!(prefix_successor(&[0xff, 0xff]), None);
    }
}
