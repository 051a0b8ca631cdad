//! ListObjectVersions: a merge of the bucket's current records (`Objects`) and its other
//! versions (`Versions`, D46) over every mountpath, in key order and newest first within a key.
//! A page of N entries costs O(N) index steps (plus a re-seek per mountpath for each common
//! prefix, and two point reads per delete marker to tell whether it is the latest).

use std::cmp::Ordering;

use crate::error::{Error, Result};
use crate::index::Table;
use crate::keys;
use crate::limits;
use crate::list::utf8;
use crate::meta::{ObjectMeta, ObjectVersion};
use crate::store::Store;
use crate::versions::{VersionRef, split_version_suffix};

/// What to list.
#[derive(Clone, Debug, Default)]
pub struct VersionQuery<'a> {
    pub prefix: &'a str,
    pub delimiter: Option<&'a str>,
    /// Start after this key (all of its versions), or, with `version_marker`, after that version
    /// of it.
    pub key_marker: Option<&'a str>,
    pub version_marker: Option<VersionRef>,
    /// 0..=1000.
    pub max_keys: usize,
}

/// One version in a listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionEntry {
    pub key: String,
    pub version: ObjectVersion,
    pub is_latest: bool,
    pub size: u64,
    pub mtime_ms: u64,
    pub etag: String,
}

/// One page of versions and common prefixes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VersionPage {
    pub entries: Vec<VersionEntry>,
    pub common_prefixes: Vec<String>,
    pub truncated: bool,
    pub next_key_marker: Option<String>,
    pub next_version_marker: Option<String>,
}

/// A cursor over one table of one mountpath, its head decoded into (key, stamp, record).
struct Cursor {
    iter: fjall::Iter,
    table: Table,
    base: usize,
    head: Option<(Vec<u8>, u128, fjall::Slice)>,
}

impl Cursor {
    fn advance(&mut self) -> Result<()> {
        self.head = match self.iter.next() {
            None => None,
            Some(g) => {
                let (k, v) = g.into_inner()?;
                let suffix = &k[self.base..];
                let (key, stamp) = match self.table {
                    Table::Versions => {
                        let (key, stamp) = split_version_suffix(suffix).ok_or(Error::BadMeta("version index key"))?;
                        (key.to_vec(), stamp)
                    }
                    _ => (suffix.to_vec(), ObjectMeta::decode_version(&v)?.stamp),
                };
                Some((key, stamp, v))
            }
        };
        Ok(())
    }

    /// Key ascending, then newest first.
    fn order(a: &(Vec<u8>, u128, fjall::Slice), b: &(Vec<u8>, u128, fjall::Slice)) -> Ordering {
        a.0.cmp(&b.0).then(b.1.cmp(&a.1))
    }
}

impl Store {
    pub fn list_versions(&self, bucket: &str, q: &VersionQuery<'_>) -> Result<VersionPage> {
        self.bucket(bucket)?;
        assert!(q.max_keys <= limits::LIST_PAGE_KEYS_MAX, "max_keys is validated by the caller");
        let delimiter = q.delimiter.filter(|d| !d.is_empty()).map(str::as_bytes);
        let prefix = q.prefix.as_bytes();
        let mut page = VersionPage::default();
        if q.max_keys == 0 {
            return Ok(page);
        }
        let (marker, start) = self.resume_at(bucket, q, delimiter);
        let base = bucket.len() + 1;
        let end = match keys::prefix_successor(prefix) {
            Some(s) if !prefix.is_empty() => keys::object_index_key(bucket, &s),
            _ => keys::bucket_range_end(bucket),
        };
        let open = |from: &[u8]| -> Result<Vec<Cursor>> {
            let from = keys::object_index_key(bucket, from);
            let mut cursors = Vec::new();
            for mp in self.mountpaths() {
                mp.check()?;
                for table in [Table::Objects, Table::Versions] {
                    let mut c = Cursor { iter: mp.index.range(table, &from, &end), table, base, head: None };
                    c.advance()?;
                    cursors.push(c);
                }
            }
            Ok(cursors)
        };
        let mut cursors = open(&start)?;
        let mut count = 0;
        let mut last: Option<(Vec<u8>, u128)> = None;
        while let Some(b) = (0..cursors.len()).filter(|&i| cursors[i].head.is_some()).min_by(|&i, &j| {
            Cursor::order(cursors[i].head.as_ref().expect("head"), cursors[j].head.as_ref().expect("head"))
        }) {
            let (key, stamp, value) = cursors[b].head.clone().expect("picked cursor has a head");
            let table = cursors[b].table;
            cursors[b].advance()?;
            // Already listed (the same version on two mountpaths), or before the marker.
            if last.as_ref().is_some_and(|(k, s)| *k == key && *s == stamp) {
                continue;
            }
            let skip = match &marker {
                Some((mk, None)) => key <= *mk,
                Some((mk, Some(ms))) => key < *mk || (key == *mk && stamp >= *ms),
                None => false,
            };
            if skip || !key.starts_with(prefix) {
                continue;
            }
            if count == q.max_keys {
                page.truncated = true;
                break;
            }
            count += 1;
            if let Some(cp) = delimiter.and_then(|d| crate::list::common_prefix(&key, prefix, d)) {
                let cp_str = utf8(cp)?;
                page.next_key_marker = Some(cp_str.clone());
                page.next_version_marker = None;
                page.common_prefixes.push(cp_str);
                match keys::prefix_successor(cp) {
                    Some(next) => {
                        cursors = open(&next)?;
                        last = None;
                        continue;
                    }
                    None => break,
                }
            }
            let meta_version = ObjectMeta::decode_version(&value)?;
            let key_str = utf8(&key)?;
            let is_latest = match table {
                Table::Objects => true,
                _ if !meta_version.delete_marker => false,
                _ => self.latest_delete_marker(bucket, &key_str)?.is_some_and(|m| m.stamp == stamp),
            };
            let (size, mtime_ms, etag) = ObjectMeta::decode_summary(&value)?;
            page.next_key_marker = Some(key_str.clone());
            page.next_version_marker = Some(meta_version.id());
            page.entries.push(VersionEntry { key: key_str, version: meta_version, is_latest, size, mtime_ms, etag });
            last = Some((key, stamp));
        }
        if !page.truncated {
            page.next_key_marker = None;
            page.next_version_marker = None;
        }
        Ok(page)
    }
}

/// Where a version listing resumes: after the marker key, or after one version of it.
type Marker = Option<(Vec<u8>, Option<u128>)>;

impl Store {
    /// The marker (key, and stamp of the version named) and the key the scan starts at (past
    /// the marker's common prefix, which an earlier page rolled up).
    fn resume_at(&self, bucket: &str, q: &VersionQuery<'_>, delimiter: Option<&[u8]>) -> (Marker, Vec<u8>) {
        let prefix = q.prefix.as_bytes();
        let marker: Marker = match (q.key_marker.filter(|k| !k.is_empty()), q.version_marker) {
            (None, _) => None,
            (Some(k), None) => Some((k.as_bytes().to_vec(), None)),
            (Some(k), Some(v)) => {
                let stamp = match v {
                    VersionRef::Id(s) => Some(s),
                    VersionRef::Null => self.head_version(bucket, k, VersionRef::Null).ok().map(|m| m.version.stamp),
                };
                Some((k.as_bytes().to_vec(), stamp))
            }
        };
        let mut start = prefix.to_vec();
        if let Some((k, _)) = &marker {
            start = start.max(k.clone());
            if let Some(cp) = delimiter.and_then(|d| crate::list::common_prefix(k, prefix, d))
                && let Some(succ) = keys::prefix_successor(cp)
            {
                start = start.max(succ);
            }
        }
        (marker, start)
    }
}
