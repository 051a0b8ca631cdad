//! Listing: a k-way merge of the mountpaths' ordered scans of one bucket, rolling keys up into
//! common prefixes at a delimiter. A page of N entries costs O(N) index steps (plus one re-seek
//! per mountpath for each common prefix), never O(bucket).

use crate::error::{Error, Result};
use crate::index::Table;
use crate::keys;
use crate::limits;
use crate::meta::{ObjectMeta, UploadMeta};
use crate::store::Store;

/// What to list.
#[derive(Clone, Debug, Default)]
pub struct ListQuery<'a> {
    pub prefix: &'a str,
    /// Any non-empty string; `None` lists flat.
    pub delimiter: Option<&'a str>,
    /// List only what sorts after this key (marker, start-after, continuation token).
    pub after: Option<&'a str>,
    /// 0..=1000.
    pub max_keys: usize,
}

/// One object in a listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListEntry {
    pub key: String,
    pub size: u64,
    pub mtime_ms: u64,
    pub etag: String,
}

/// One page of a listing, in key order (entries and prefixes interleave by sort order).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListPage {
    pub entries: Vec<ListEntry>,
    pub common_prefixes: Vec<String>,
    pub truncated: bool,
    /// The last key or common prefix returned: where the next page starts (after it).
    pub last: Option<String>,
}

struct Cursor {
    iter: fjall::Iter,
    head: Option<(fjall::Slice, fjall::Slice)>,
}

impl Cursor {
    fn advance(&mut self) -> Result<()> {
        self.head = match self.iter.next() {
            Some(g) => Some(g.into_inner()?),
            None => None,
        };
        Ok(())
    }
}

/// A merged scan of one bucket's range of a table over every mountpath.
struct Merge<'a> {
    table: Table,
    bucket: &'a str,
    prefix: &'a [u8],
    delimiter: Option<&'a [u8]>,
    /// Where to start, as the part of the index key after `bucket \0`.
    start: Vec<u8>,
    max: usize,
    /// The object key inside an index-key suffix (the suffix itself for objects).
    key_of: fn(&[u8]) -> Option<&[u8]>,
}

/// What a merged scan produced besides the entries it handed out.
#[derive(Default)]
struct Merged {
    common_prefixes: Vec<String>,
    truncated: bool,
    /// The suffix of the last entry, or the last common prefix, handed out.
    last: Option<Last>,
}

enum Last {
    Entry(Vec<u8>),
    Prefix(String),
}

impl Store {
    /// Walks the bucket's records in key order across mountpaths, rolling keys up at the
    /// delimiter, calling `entry(suffix, value)` for each record not rolled up, until `max`
    /// entries and prefixes together have been produced.
    fn merge(&self, m: &Merge<'_>, mut entry: impl FnMut(&[u8], &[u8]) -> Result<()>) -> Result<Merged> {
        let mut out = Merged::default();
        if m.max == 0 {
            return Ok(out);
        }
        let base = m.bucket.len() + 1;
        let end = match keys::prefix_successor(m.prefix) {
            Some(s) if !m.prefix.is_empty() => keys::object_index_key(m.bucket, &s),
            _ => keys::bucket_range_end(m.bucket),
        };
        // A copies bucket lists without a failed mountpath while every key keeps a copy on a
        // healthy one (fewer failed since the last whole repair than it has copies); else 503.
        // The failed one's cursor stays, empty, so that cursor positions remain mountpath
        // positions.
        let skip_sick = self.copies_cover_failures(self.wanted_copies(m.bucket));
        let open = |from: &[u8]| -> Result<Vec<Cursor>> {
            let from = keys::object_index_key(m.bucket, from);
            let mut cursors = Vec::with_capacity(self.mountpaths().len());
            for mp in self.mountpaths() {
                let skipped = skip_sick && mp.is_poisoned();
                if !skipped {
                    mp.check()?;
                }
                let range =
                    if skipped { mp.index.range(m.table, &end, &end) } else { mp.index.range(m.table, &from, &end) };
                let mut c = Cursor { iter: range, head: None };
                c.advance()?;
                cursors.push(c);
            }
            Ok(cursors)
        };
        let mut cursors = open(&m.start)?;
        let mut count = 0usize;
        loop {
            // The cursor whose head sorts first (mountpath counts are small: a linear pick).
            let mut best: Option<usize> = None;
            for (i, c) in cursors.iter().enumerate() {
                if let Some((k, _)) = &c.head
                    && best.is_none_or(|b| cursors[b].head.as_ref().is_some_and(|(bk, _)| k < bk))
                {
                    best = Some(i);
                }
            }
            let Some(mut b) = best else { break };
            // The same key on two mountpaths (placed before a mountpath was added, overwritten
            // after): list it once, and the copy a GET serves, the owner's, where it has one.
            let holds = |c: &Cursor, k: &[u8]| c.head.as_ref().is_some_and(|(h, _)| &h[..] == k);
            let first = &cursors[b].head.as_ref().expect("picked cursor has a head").0[..];
            if cursors.iter().enumerate().any(|(i, c)| i != b && holds(c, first))
                && let Some(key) = (m.key_of)(&first[base..])
                && let owner = self.owner_index(m.bucket, key)
                && cursors.get(owner).is_some_and(|c| holds(c, first))
            {
                b = owner;
            }
            let (ikey, value) = cursors[b].head.clone().expect("picked cursor has a head");
            for (i, c) in cursors.iter_mut().enumerate() {
                if i != b && c.head.as_ref().is_some_and(|(k, _)| *k == ikey) {
                    c.advance()?;
                }
            }
            let suffix = &ikey[base..];
            let key = (m.key_of)(suffix).ok_or(Error::BadMeta("index key of unexpected shape"))?;
            if !key.starts_with(m.prefix) {
                // Only possible for keys holding NUL bytes next to the prefix: skip it.
                cursors[b].advance()?;
                continue;
            }
            if count == m.max {
                out.truncated = true;
                break;
            }
            count += 1;
            match m.delimiter.and_then(|d| common_prefix(key, m.prefix, d)) {
                Some(cp) => {
                    let cp_str = utf8(cp)?;
                    out.last = Some(Last::Prefix(cp_str.clone()));
                    out.common_prefixes.push(cp_str);
                    match keys::prefix_successor(cp) {
                        Some(next) => cursors = open(&next)?,
                        None => break,
                    }
                }
                None => {
                    entry(suffix, &value)?;
                    out.last = Some(Last::Entry(suffix.to_vec()));
                    cursors[b].advance()?;
                }
            }
        }
        Ok(out)
    }

    pub fn list_objects(&self, bucket: &str, q: &ListQuery<'_>) -> Result<ListPage> {
        self.bucket(bucket)?;
        assert!(q.max_keys <= limits::LIST_PAGE_KEYS_MAX, "max_keys is validated by the caller");
        let delimiter = q.delimiter.filter(|d| !d.is_empty()).map(str::as_bytes);
        let prefix = q.prefix.as_bytes();
        let start = start_after(
            prefix,
            delimiter,
            q.after.map(|a| {
                let mut past = a.as_bytes().to_vec();
                past.push(0);
                (a.as_bytes(), past)
            }),
        );
        let merge =
            Merge { table: Table::Objects, bucket, prefix, delimiter, start, max: q.max_keys, key_of: |s| Some(s) };
        let mut entries = Vec::new();
        let merged = self.merge(&merge, |suffix, value| {
            let (size, mtime_ms, etag) = ObjectMeta::decode_summary(value)?;
            entries.push(ListEntry { key: utf8(suffix)?, size, mtime_ms, etag });
            Ok(())
        })?;
        let last = match merged.last {
            Some(Last::Entry(k)) => Some(utf8(&k)?),
            Some(Last::Prefix(p)) => Some(p),
            None => None,
        };
        Ok(ListPage { entries, common_prefixes: merged.common_prefixes, truncated: merged.truncated, last })
    }

    /// Multipart uploads in progress, ordered by key then upload id (creation time).
    pub fn list_uploads(&self, bucket: &str, q: &UploadQuery<'_>) -> Result<UploadPage> {
        self.bucket(bucket)?;
        assert!(q.max_uploads <= limits::LIST_PAGE_KEYS_MAX, "max_uploads is validated by the caller");
        let delimiter = q.delimiter.filter(|d| !d.is_empty()).map(str::as_bytes);
        let prefix = q.prefix.as_bytes();
        let after = q.key_marker.map(|k| {
            // After the marker's upload id, or after every upload of the marker key.
            let past = match q.upload_id_marker.filter(|u| !u.is_empty()) {
                Some(u) => {
                    let mut p = k.as_bytes().to_vec();
                    p.push(0);
                    p.extend_from_slice(u.as_bytes());
                    p.push(0);
                    p
                }
                None => {
                    let mut p = k.as_bytes().to_vec();
                    p.push(1);
                    p
                }
            };
            (k.as_bytes(), past)
        });
        let start = start_after(prefix, delimiter, after);
        let merge = Merge {
            table: Table::Uploads,
            bucket,
            prefix,
            delimiter,
            start,
            max: q.max_uploads,
            key_of: |s| keys::split_upload_suffix(s).map(|(k, _)| k),
        };
        let mut uploads = Vec::new();
        let merged = self.merge(&merge, |suffix, value| {
            let (key, id) = keys::split_upload_suffix(suffix).ok_or(Error::BadMeta("upload key"))?;
            uploads.push(UploadEntry { key: utf8(key)?, upload_id: id.to_owned(), meta: UploadMeta::decode(value)? });
            Ok(())
        })?;
        let (next_key_marker, next_upload_id_marker) = match merged.last {
            Some(Last::Entry(s)) => {
                let (k, id) = keys::split_upload_suffix(&s).ok_or(Error::BadMeta("upload key"))?;
                (Some(utf8(k)?), Some(id.to_owned()))
            }
            Some(Last::Prefix(p)) => (Some(p), None),
            None => (None, None),
        };
        Ok(UploadPage {
            uploads,
            common_prefixes: merged.common_prefixes,
            truncated: merged.truncated,
            next_key_marker,
            next_upload_id_marker,
        })
    }
}

/// The scan start: at the prefix, past the marker (`past` sorts right after everything the
/// marker covers), and past the marker's own common prefix, whose keys an earlier page rolled up.
fn start_after(prefix: &[u8], delimiter: Option<&[u8]>, after: Option<(&[u8], Vec<u8>)>) -> Vec<u8> {
    let mut start = prefix.to_vec();
    if let Some((marker, past)) = after {
        if past > start {
            start = past;
        }
        if let Some(cp) = delimiter.and_then(|d| common_prefix(marker, prefix, d))
            && let Some(succ) = keys::prefix_successor(cp)
            && succ > start
        {
            start = succ;
        }
    }
    start
}

/// What ListMultipartUploads asks for.
#[derive(Clone, Debug, Default)]
pub struct UploadQuery<'a> {
    pub prefix: &'a str,
    pub delimiter: Option<&'a str>,
    pub key_marker: Option<&'a str>,
    pub upload_id_marker: Option<&'a str>,
    /// 0..=1000.
    pub max_uploads: usize,
}

/// One upload in progress.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadEntry {
    pub key: String,
    pub upload_id: String,
    pub meta: UploadMeta,
}

/// One page of uploads in progress.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UploadPage {
    pub uploads: Vec<UploadEntry>,
    pub common_prefixes: Vec<String>,
    pub truncated: bool,
    pub next_key_marker: Option<String>,
    pub next_upload_id_marker: Option<String>,
}

/// The common prefix `key` rolls up into: `prefix` plus everything up to and including the first
/// `delimiter` after it.
pub(crate) fn common_prefix<'k>(key: &'k [u8], prefix: &[u8], delimiter: &[u8]) -> Option<&'k [u8]> {
    if !key.starts_with(prefix) {
        return None;
    }
    let rest = &key[prefix.len()..];
    let pos = rest.windows(delimiter.len()).position(|w| w == delimiter)?;
    Some(&key[..prefix.len() + pos + delimiter.len()])
}

pub(crate) fn utf8(b: &[u8]) -> Result<String> {
    String::from_utf8(b.to_vec()).map_err(|_| Error::BadMeta("stored key is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rolls_up_at_the_first_delimiter_after_the_prefix() {
        assert_eq!(common_prefix(b"a/b/c", b"", b"/"), Some(&b"a/"[..]));
        assert_eq!(common_prefix(b"a/b/c", b"a/", b"/"), Some(&b"a/b/"[..]));
        assert_eq!(common_prefix(b"a/b", b"a/", b"/"), None);
        assert_eq!(common_prefix(b"xxAByyABz", b"", b"AB"), Some(&b"xxAB"[..]));
        assert_eq!(common_prefix(b"b", b"a", b"/"), None);
    }
}
