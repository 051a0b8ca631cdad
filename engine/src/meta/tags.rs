//! Tag sets of objects and buckets (S3 object and bucket tagging): ordered key/value pairs,
//! checked against S3's limits before they are stored.

use crate::error::{Error, Result};

use super::codec::{Reader, Writer};

/// A tag set, in the order the client gave it (GetObjectTagging answers in that order).
pub type Tags = Vec<(String, String)>;

/// Most tags an object may carry.
pub const OBJECT_TAGS_MAX: usize = 10;
/// Most tags a bucket may carry.
pub const BUCKET_TAGS_MAX: usize = 50;
/// Longest tag key, in characters.
pub const TAG_KEY_CHARS_MAX: usize = 128;
/// Longest tag value, in characters.
pub const TAG_VALUE_CHARS_MAX: usize = 256;

/// Letters, numbers and spaces in any script, and `+ - = . _ : / @` (S3's tag alphabet).
fn allowed(c: char) -> bool {
    c.is_alphanumeric() || c == ' ' || "+-=._:/@".contains(c)
}

/// Checks a tag set against S3's rules: at most `max` tags, keys of 1 to 128 characters and
/// values of at most 256, unique keys, S3's alphabet, no key in the reserved `aws:` prefix.
pub fn validate_tags(tags: &[(String, String)], max: usize) -> Result<()> {
    if tags.len() > max {
        return Err(Error::InvalidTag(if max == OBJECT_TAGS_MAX {
            "Object tags cannot be greater than 10"
        } else {
            "Bucket tags cannot be greater than 50"
        }));
    }
    for (i, (k, v)) in tags.iter().enumerate() {
        if k.is_empty() {
            return Err(Error::InvalidTag("The TagKey you have provided is invalid"));
        }
        if k.chars().count() > TAG_KEY_CHARS_MAX {
            return Err(Error::InvalidTag("The TagKey you have provided is too long, max 128"));
        }
        if v.chars().count() > TAG_VALUE_CHARS_MAX {
            return Err(Error::InvalidTag("The TagValue you have provided is too long, max 256"));
        }
        if !k.chars().all(allowed) {
            return Err(Error::InvalidTag("The TagKey you have provided is invalid"));
        }
        if !v.chars().all(allowed) {
            return Err(Error::InvalidTag("The TagValue you have provided is invalid"));
        }
        if k.starts_with("aws:") {
            return Err(Error::InvalidTag("Your TagKey cannot be prefixed with aws:"));
        }
        if tags[..i].iter().any(|(other, _)| other == k) {
            return Err(Error::InvalidTag("Cannot provide multiple Tags with the same key"));
        }
    }
    Ok(())
}

/// `u8` count, then each tag as `str` key, `str` value.
pub(super) fn write_tags(w: &mut Writer, tags: &[(String, String)]) {
    w.u8(u8::try_from(tags.len()).expect("tag sets are bounded by BUCKET_TAGS_MAX"));
    for (k, v) in tags {
        w.bytes(k.as_bytes());
        w.bytes(v.as_bytes());
    }
}

pub(super) fn read_tags(r: &mut Reader<'_>) -> Result<Tags> {
    let n = r.u8()? as usize;
    if n > BUCKET_TAGS_MAX {
        return Err(Error::BadMeta("tag count"));
    }
    let mut tags = Vec::with_capacity(n);
    for _ in 0..n {
        tags.push((r.str()?, r.str()?));
    }
    Ok(tags)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(pairs: &[(&str, &str)]) -> Tags {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn s3_limits() {
        let code = |tags: &Tags, max| validate_tags(tags, max).err().map(|e| e.to_string());
        assert_eq!(code(&t(&[("a", ""), ("b c", "x+y=z.w_v:u/t@s-r")]), OBJECT_TAGS_MAX), None);
        assert_eq!(code(&t(&[("ключ", "値")]), OBJECT_TAGS_MAX), None);
        let eleven: Tags = (0..11).map(|i| (i.to_string(), String::new())).collect();
        assert!(code(&eleven, OBJECT_TAGS_MAX).is_some());
        assert_eq!(code(&eleven, BUCKET_TAGS_MAX), None);
        assert!(code(&t(&[("", "v")]), OBJECT_TAGS_MAX).is_some());
        assert_eq!(code(&t(&[(&"k".repeat(128), &"v".repeat(256))]), OBJECT_TAGS_MAX), None);
        assert!(code(&t(&[(&"k".repeat(129), "v")]), OBJECT_TAGS_MAX).is_some());
        assert!(code(&t(&[("k", &"v".repeat(257))]), OBJECT_TAGS_MAX).is_some());
        assert!(code(&t(&[("k", "v"), ("k", "w")]), OBJECT_TAGS_MAX).is_some());
        assert!(code(&t(&[("k<", "v")]), OBJECT_TAGS_MAX).is_some());
        assert!(code(&t(&[("k", "v\n")]), OBJECT_TAGS_MAX).is_some());
        assert!(code(&t(&[("aws:x", "v")]), OBJECT_TAGS_MAX).is_some());
    }
}
