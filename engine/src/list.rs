//! Listing: a k-way merge of the mountpaths' ordered scans of one bucket, rolling keys up into
//! common prefixes at a delimiter. A page of N entries costs O(N) index steps (plus one re-seek
//! per mountpath for each common prefix), never O(bucket).

use crate::error::{Error, Result};
use crate::index::Table;
use crate::keys;
use crate::limits;
use crate::meta::ObjectMeta;
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

impl Store {
    pub fn list_objects(&self, bucket: &str, q: &ListQuery<'_>) -> Result<ListPage> {
        self.bucket(bucket)?;
        assert!(q.max_keys <= limits::LIST_PAGE_KEYS_MAX, "max_keys is validated by the caller");
        let mut page = ListPage::default();
        if q.max_keys == 0 {
            return Ok(page);
        }
        let delimiter = q.delimiter.filter(|d| !d.is_empty()).map(str::as_bytes);
        let prefix = q.prefix.as_bytes();
        let base = bucket.len() + 1;

        // Where the scan starts: at the prefix, after the marker, and past the marker's own
        // common prefix (its keys were rolled up on an earlier page).
        let mut start: Vec<u8> = prefix.to_vec();
        if let Some(after) = q.after {
            let mut past = after.as_bytes().to_vec();
            past.push(0);
            if past > start {
                start = past;
            }
            if let Some(cp) = delimiter.and_then(|d| common_prefix(after.as_bytes(), prefix, d))
                && let Some(succ) = keys::prefix_successor(cp)
                && succ > start
            {
                start = succ;
            }
        }
        let end = match keys::prefix_successor(prefix) {
            Some(s) if !prefix.is_empty() => keys::object_index_key(bucket, &s),
            _ => keys::bucket_range_end(bucket),
        };

        let open = |from: &[u8]| -> Result<Vec<Cursor>> {
            let from = keys::object_index_key(bucket, from);
            let mut cursors = Vec::with_capacity(self.mountpaths().len());
            for mp in self.mountpaths() {
                mp.check()?;
                let mut c = Cursor { iter: mp.index.range(Table::Objects, &from, &end), head: None };
                c.advance()?;
                cursors.push(c);
            }
            Ok(cursors)
        };
        let mut cursors = open(&start)?;
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
            let Some(b) = best else { break };
            let (ikey, value) = cursors[b].head.clone().expect("picked cursor has a head");
            let key = &ikey[base..];
            debug_assert!(key.starts_with(prefix));
            let rolled = delimiter.and_then(|d| common_prefix(key, prefix, d));
            if count == q.max_keys {
                page.truncated = true;
                break;
            }
            count += 1;
            match rolled {
                Some(cp) => {
                    let cp_str = utf8(cp)?;
                    page.last = Some(cp_str.clone());
                    page.common_prefixes.push(cp_str);
                    match keys::prefix_successor(cp) {
                        Some(next) => cursors = open(&next)?,
                        None => break,
                    }
                }
                None => {
                    let (size, mtime_ms, etag) = ObjectMeta::decode_summary(&value)?;
                    let key = utf8(key)?;
                    page.last = Some(key.clone());
                    page.entries.push(ListEntry { key, size, mtime_ms, etag });
                    cursors[b].advance()?;
                }
            }
        }
        Ok(page)
    }
}

/// The common prefix `key` rolls up into: `prefix` plus everything up to and including the first
/// `delimiter` after it.
fn common_prefix<'k>(key: &'k [u8], prefix: &[u8], delimiter: &[u8]) -> Option<&'k [u8]> {
    if !key.starts_with(prefix) {
        return None;
    }
    let rest = &key[prefix.len()..];
    let pos = rest.windows(delimiter.len()).position(|w| w == delimiter)?;
    Some(&key[..prefix.len() + pos + delimiter.len()])
}

fn utf8(b: &[u8]) -> Result<String> {
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
