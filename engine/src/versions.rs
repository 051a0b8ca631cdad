//! Object versions (S3 versioning, D46). The current version of a key stays where it always
//! was, `Objects: bucket \0 key`, so GETs, HEADs and ListObjects of versioned buckets cost what
//! they did. Every other version and every delete marker is a record in `Versions:
//! bucket \0 key \0 !stamp` (the stamp inverted, big-endian: newest first), on the mountpath
//! that holds its data files. An overwrite moves the replaced record there in the same commit
//! that writes the new one (no data copied); a delete writes a marker there.
//!
//! Invariants (kept under the key's lock): the current record, when there is one, is the newest
//! version; the newest entry of the chain is a delete marker when there is no current record
//! (else it would have been made current); a key has at most one null version.

use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};
use crate::index::{CommitError, DirSet, IndexOp, Precondition, Refusal, Table};
use crate::keys;
use crate::meta::{DataLoc, ObjectId, ObjectMeta, ObjectVersion, Versioning};
use crate::mountpath::Mountpath;
use crate::object::{Located, ObjectReader};
use crate::store::{Store, now_ms};

/// A version a request names (`versionId`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VersionRef {
    Null,
    Id(u128),
}

impl VersionRef {
    /// `null`, or an id as keel writes them (32 lowercase hex digits); `None` for anything else.
    pub fn parse(s: &str) -> Option<VersionRef> {
        if s == "null" {
            return Some(VersionRef::Null);
        }
        if s.len() != 32 || !s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return None;
        }
        u128::from_str_radix(s, 16).ok().map(VersionRef::Id)
    }

    /// The reference that names `v`.
    pub fn of(v: &ObjectVersion) -> VersionRef {
        if v.null { VersionRef::Null } else { VersionRef::Id(v.stamp) }
    }

    /// The VersionId this names (as `ObjectVersion::id`).
    pub fn id(self) -> String {
        match self {
            VersionRef::Null => "null".to_owned(),
            VersionRef::Id(stamp) => format!("{stamp:032x}"),
        }
    }

    pub fn matches(self, v: &ObjectVersion) -> bool {
        match self {
            VersionRef::Null => v.null,
            VersionRef::Id(stamp) => !v.null && v.stamp == stamp,
        }
    }
}

/// What a DELETE did: the version it removed or the marker it wrote.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Deleted {
    /// The version removed or the delete marker written (`x-amz-version-id`).
    pub version_id: Option<String>,
    /// The delete wrote a marker, or removed one (`x-amz-delete-marker: true`).
    pub delete_marker: bool,
}

/// The `Versions` index key of `key`'s version `stamp`.
pub(crate) fn version_index_key(bucket: &str, key: &[u8], stamp: u128) -> Vec<u8> {
    let mut k = chain_prefix(bucket, key);
    k.extend_from_slice(&(!stamp).to_be_bytes());
    k
}

/// Where `key`'s chain starts in `Versions`: `bucket \0 key \0`.
fn chain_prefix(bucket: &str, key: &[u8]) -> Vec<u8> {
    let mut k = keys::object_index_key(bucket, key);
    k.push(0);
    k
}

/// The key and stamp of a `Versions` index key's part after `bucket \0`.
pub(crate) fn split_version_suffix(suffix: &[u8]) -> Option<(&[u8], u128)> {
    let at = suffix.len().checked_sub(17)?;
    if suffix[at] != 0 {
        return None;
    }
    let inverted = u128::from_be_bytes(suffix[at + 1..].try_into().ok()?);
    Some((&suffix[..at], !inverted))
}

/// The last stamp handed out: stamps only grow within a process, whatever the clock does.
static LAST_STAMP: Mutex<u128> = Mutex::new(0);

/// A new stamp above `floor`: the time in ms in the high 64 bits, a counter below.
fn new_stamp(floor: u128) -> u128 {
    let mut last = LAST_STAMP.lock().unwrap_or_else(|p| p.into_inner());
    let next = ((now_ms() as u128) << 64).max(*last + 1).max(floor + 1);
    *last = next;
    next
}

/// One version of a key as stored: where, under which index key, the record's bytes.
pub(crate) struct Stored {
    pub mp: Arc<Mountpath>,
    pub table: Table,
    pub ikey: Vec<u8>,
    pub raw: Vec<u8>,
    pub meta: ObjectMeta,
}

/// What a versioned write must do besides putting its own record.
#[derive(Default)]
pub struct VersionPlan {
    /// Ops on the writing mountpath, committed with the new record.
    pub ops: Vec<IndexOp>,
    /// The precondition of the new record's put when the request sets none: the current record
    /// is still the one the plan was made from.
    guard: Precondition,
    /// Ops on other mountpaths, committed after.
    elsewhere: Vec<(Arc<Mountpath>, Vec<IndexOp>)>,
    /// Data files nothing references once the commits are made.
    release: Vec<(Arc<Mountpath>, Vec<ObjectId>)>,
}

impl VersionPlan {
    /// The new record's precondition: the request's, or else the plan's own.
    pub(crate) fn guard(&self, asked: Precondition) -> Precondition {
        match asked {
            Precondition::None => self.guard.clone(),
            asked => asked,
        }
    }
}

impl Store {
    /// The bucket's versioning state (`Unset` when the bucket is gone: its writes fail anyway).
    pub fn versioning_of(&self, bucket: &str) -> Versioning {
        self.with_bucket(bucket, |b| b.versioning).unwrap_or_default()
    }

    /// The current record of `bucket/key`, if any, as stored.
    fn current(&self, bucket: &str, key: &str) -> Result<Option<Stored>> {
        let (mp, raw) = match self.locate_raw(bucket, key) {
            Ok(found) => found,
            Err(Error::NoSuchObject) => return Ok(None),
            Err(e) => return Err(e),
        };
        let meta = ObjectMeta::decode(&raw)?;
        let ikey = keys::object_index_key(bucket, key.as_bytes());
        Ok(Some(Stored { mp, table: Table::Objects, ikey, raw: raw.to_vec(), meta }))
    }

    /// The stamp a new version of the key must exceed: the current version's (the newest, when
    /// there is one), else the newest other version's (a delete marker).
    fn stamp_floor(&self, bucket: &str, key: &str, current: &Option<Stored>) -> Result<u128> {
        match current {
            Some(c) => Ok(c.meta.version.stamp),
            None => Ok(self.chain(bucket, key, 1)?.first().map_or(0, |s| s.meta.version.stamp)),
        }
    }

    /// `key`'s other versions on every mountpath, newest first; at most `limit` per mountpath
    /// (the newest ones).
    pub(crate) fn chain(&self, bucket: &str, key: &str, limit: usize) -> Result<Vec<Stored>> {
        let prefix = chain_prefix(bucket, key.as_bytes());
        let end = keys::prefix_successor(&prefix).unwrap_or_default();
        let mut out = Vec::new();
        for mp in self.mountpaths() {
            if mp.is_poisoned() {
                continue;
            }
            for (k, v) in mp.index.scan(Table::Versions, &prefix, &end, limit)? {
                // Exactly this key (not a longer key that starts with it and a NUL).
                if k.len() != prefix.len() + 16 {
                    continue;
                }
                let meta = ObjectMeta::decode(&v)?;
                out.push(Stored { mp: mp.clone(), table: Table::Versions, ikey: k.to_vec(), raw: v.to_vec(), meta });
            }
        }
        out.sort_by_key(|s| std::cmp::Reverse(s.meta.version.stamp));
        Ok(out)
    }

    /// Under the key's lock, for a write of `meta` into a versioned bucket on `mp`: gives `meta`
    /// its version and plans what happens to the version it replaces. `None` when the bucket
    /// is not versioned (the write replaces the current record as always).
    pub(crate) fn version_plan(
        &self,
        mp: &Arc<Mountpath>,
        (bucket, key): (&str, &str),
        meta: &mut ObjectMeta,
    ) -> Result<Option<VersionPlan>> {
        let Some((state, object_lock, default)) =
            self.with_bucket(bucket, |b| (b.versioning, b.object_lock, b.default_retention))
        else {
            return Ok(None);
        };
        if state == Versioning::Unset {
            return Ok(None);
        }
        // A version written without a retention of its own gets the bucket's default (D47).
        if object_lock
            && meta.lock.retention.is_none()
            && let Some(d) = default
        {
            meta.lock.retention = Some(d.from(now_ms()));
        }
        let current = self.current(bucket, key)?;
        let suspended = state == Versioning::Suspended;
        let mut plan = VersionPlan::default();
        let floor = self.stamp_floor(bucket, key, &current)?;
        meta.version = ObjectVersion { stamp: new_stamp(floor), null: suspended, delete_marker: false };
        plan.guard = match &current {
            Some(c) if Arc::ptr_eq(&c.mp, mp) => Precondition::Equals(c.raw.clone()),
            _ => Precondition::Absent,
        };
        if let Some(c) = current {
            self.retire(&mut plan, mp, c, suspended);
        }
        if suspended {
            self.drop_null_version(&mut plan, mp, bucket, key)?;
        }
        Ok(Some(plan))
    }

    /// The replaced current record `c`: kept as an older version, or (a null version replaced
    /// while versioning is suspended) dropped with its files.
    fn retire(&self, plan: &mut VersionPlan, mp: &Arc<Mountpath>, c: Stored, suspended: bool) {
        let here = Arc::ptr_eq(&c.mp, mp);
        let mut ops = Vec::new();
        if suspended && c.meta.version.null {
            plan.release.push((c.mp.clone(), c.meta.data.file_ids()));
        } else {
            let vkey = version_ikey_of(&c.ikey, c.meta.version.stamp);
            ops.push(IndexOp::put(Table::Versions, vkey, c.raw.clone()));
        }
        if here {
            // The new record's put replaces it.
            plan.ops.extend(ops);
        } else {
            ops.push(
                IndexOp::remove(Table::Objects, c.ikey.clone()).when(Precondition::Equals(c.raw), Refusal::Condition),
            );
            plan.elsewhere.push((c.mp, ops));
        }
    }

    /// Plans the removal of the key's null version among its other versions, if it has one.
    fn drop_null_version(&self, plan: &mut VersionPlan, mp: &Arc<Mountpath>, bucket: &str, key: &str) -> Result<()> {
        for s in self.chain(bucket, key, usize::MAX)?.into_iter().filter(|s| s.meta.version.null) {
            plan.release.push((s.mp.clone(), s.meta.data.file_ids()));
            let op = IndexOp::remove(Table::Versions, s.ikey).when(Precondition::Equals(s.raw), Refusal::Condition);
            if Arc::ptr_eq(&s.mp, mp) {
                plan.ops.push(op);
            } else {
                plan.elsewhere.push((s.mp, vec![op]));
            }
        }
        Ok(())
    }

    /// After the write's own commit: the other mountpaths' part of the plan, then the files
    /// nothing references any more.
    pub(crate) async fn finish_plan(&self, plan: VersionPlan) -> Result<(), CommitError> {
        for (mp, ops) in plan.elsewhere {
            match mp.index.commit(ops, DirSet::default()).await {
                Ok(_) | Err(CommitError::Refused(_)) => {}
                Err(e) => return Err(e),
            }
        }
        for (mp, ids) in plan.release {
            self.remove_files(&mp, ids).await;
        }
        Ok(())
    }

    /// DeleteObject in a versioned bucket, or of a named version in any bucket. A named version
    /// under object lock stays (`ObjectLocked`) unless its GOVERNANCE retention is bypassed.
    pub async fn delete_version(
        &self,
        bucket: &str,
        key: &str,
        version: Option<VersionRef>,
        bypass: bool,
    ) -> Result<Deleted> {
        self.bucket(bucket)?;
        keys::validate_key(key)?;
        let state = self.versioning_of(bucket);
        // A bucket never versioned holds one version per key, the null one: deleting it is the
        // plain delete (which also reaches a copies bucket's every copy).
        if state == Versioning::Unset && matches!(version, None | Some(VersionRef::Null)) {
            self.delete_object(bucket, key).await?;
            return Ok(Deleted { version_id: version.map(|_| "null".to_owned()), delete_marker: false });
        }
        let _lock = self.lock_keys(bucket, &[key]).await;
        match version {
            None => self.write_delete_marker(bucket, key, state).await,
            Some(v) => self.remove_version(bucket, key, v, bypass).await,
        }
    }

    /// A delete without a version: the current version becomes an older one (or, a null
    /// version while suspended, goes) and a delete marker becomes the newest version.
    async fn write_delete_marker(&self, bucket: &str, key: &str, state: Versioning) -> Result<Deleted> {
        let mp = self.owner(bucket, key).clone();
        mp.check()?;
        let suspended = state == Versioning::Suspended;
        let mut marker = ObjectMeta {
            size: 0,
            mtime_ms: now_ms(),
            md5: *b"\xd4\x1d\x8c\xd9\x8f\x00\xb2\x04\xe9\x80\x09\x98\xec\xf8\x42\x7e",
            etag_parts: 0,
            stored_checksum: Default::default(),
            system: Default::default(),
            user: Vec::new(),
            flex_checksum: None,
            data: DataLoc::Inline(Vec::new()),
            acl: Default::default(),
            epoch: self.epoch(),
            upload_id: None,
            remote: None,
            tags: Vec::new(),
            version: ObjectVersion::default(),
            lock: Default::default(),
            owner: None,
            grants: Vec::new(),
        };
        let mut plan = VersionPlan::default();
        let current = self.current(bucket, key)?;
        let floor = self.stamp_floor(bucket, key, &current)?;
        marker.version = ObjectVersion { stamp: new_stamp(floor), null: suspended, delete_marker: true };
        let ikey = keys::object_index_key(bucket, key.as_bytes());
        if let Some(c) = current {
            let here = Arc::ptr_eq(&c.mp, &mp);
            let raw = c.raw.clone();
            self.retire(&mut plan, &mp, c, suspended);
            if here {
                plan.ops.push(
                    IndexOp::remove(Table::Objects, ikey.clone()).when(Precondition::Equals(raw), Refusal::Condition),
                );
            }
        }
        if suspended {
            self.drop_null_version(&mut plan, &mp, bucket, key)?;
        }
        let mut ops = std::mem::take(&mut plan.ops);
        ops.push(IndexOp::put(Table::Versions, version_ikey_of(&ikey, marker.version.stamp), marker.encode()));
        mp.index.commit(ops, DirSet::default()).await.map_err(|e| self.raced(e))?;
        self.finish_plan(plan).await?;
        Ok(Deleted { version_id: Some(marker.version.id()), delete_marker: true })
    }

    /// A delete of one version: gone with its files; if it was the newest, the next one becomes
    /// current (unless it is a delete marker, which then hides the key). A version that does
    /// not exist is nothing to do.
    async fn remove_version(&self, bucket: &str, key: &str, v: VersionRef, bypass: bool) -> Result<Deleted> {
        let current = self.current(bucket, key)?;
        let chain = self.chain(bucket, key, usize::MAX)?;
        let target = match &current {
            Some(c) if v.matches(&c.meta.version) => Some((c, true)),
            _ => chain.iter().find(|s| v.matches(&s.meta.version)).map(|s| (s, false)),
        };
        let Some((target, was_current)) = target else {
            return Ok(Deleted { version_id: Some(v.id()), delete_marker: false });
        };
        target.meta.lock.check_removable(now_ms(), bypass)?;
        let deleted =
            Deleted { version_id: Some(target.meta.version.id()), delete_marker: target.meta.version.delete_marker };
        let remove = IndexOp::remove(target.table, target.ikey.clone())
            .when(Precondition::Equals(target.raw.clone()), Refusal::Condition);
        let newest_in_chain = chain.first().is_some_and(|h| Arc::ptr_eq(&h.mp, &target.mp) && h.ikey == target.ikey);
        // The next version becomes current when the newest goes: the chain's head, if it is
        // not a delete marker (and, if the removed one was a marker, the one after it).
        let promote = if was_current {
            chain.first()
        } else if current.is_none() && newest_in_chain {
            chain.get(1)
        } else {
            None
        };
        let mut on_target = vec![remove];
        let mut then: Option<(Arc<Mountpath>, Vec<IndexOp>)> = None;
        if let Some(p) = promote.filter(|p| !p.meta.version.delete_marker) {
            let ikey = keys::object_index_key(bucket, key.as_bytes());
            let ops = vec![
                IndexOp::remove(Table::Versions, p.ikey.clone())
                    .when(Precondition::Equals(p.raw.clone()), Refusal::Condition),
                IndexOp::put(Table::Objects, ikey, p.raw.clone()),
            ];
            if Arc::ptr_eq(&p.mp, &target.mp) {
                on_target.extend(ops);
            } else {
                then = Some((p.mp.clone(), ops));
            }
        }
        target.mp.index.commit(on_target, DirSet::default()).await.map_err(|e| self.raced(e))?;
        if let Some((mp, ops)) = then {
            mp.index.commit(ops, DirSet::default()).await.map_err(|e| self.raced(e))?;
        }
        self.remove_files(&target.mp, target.meta.data.file_ids()).await;
        Ok(deleted)
    }

    /// A versioned commit refused on a record read under the key's lock: a writer that does
    /// not take the lock (a write begun before the bucket's versioning changed) passed.
    fn raced(&self, e: CommitError) -> Error {
        match e {
            CommitError::Refused(Refusal::Condition) => Error::WriteConflict,
            e => e.into(),
        }
    }

    /// The record of `bucket/key`'s version `v`: `NoSuchVersion` if there is none.
    pub fn head_version(&self, bucket: &str, key: &str, v: VersionRef) -> Result<ObjectMeta> {
        self.find_version(bucket, key, v).map(|s| s.meta)
    }

    fn find_version(&self, bucket: &str, key: &str, v: VersionRef) -> Result<Stored> {
        self.bucket(bucket)?;
        keys::validate_key(key)?;
        if let Some(c) = self.current(bucket, key)?
            && v.matches(&c.meta.version)
        {
            return Ok(c);
        }
        if let VersionRef::Id(stamp) = v {
            let vkey = version_index_key(bucket, key.as_bytes(), stamp);
            for mp in self.mountpaths().iter().filter(|m| !m.is_poisoned()) {
                if let Some(raw) = mp.index.get(Table::Versions, &vkey)? {
                    let meta = ObjectMeta::decode(&raw)?;
                    return Ok(Stored { mp: mp.clone(), table: Table::Versions, ikey: vkey, raw: raw.to_vec(), meta });
                }
            }
            return Err(Error::NoSuchVersion);
        }
        self.chain(bucket, key, usize::MAX)?.into_iter().find(|s| s.meta.version.null).ok_or(Error::NoSuchVersion)
    }

    /// Finds `bucket/key`'s version `v` to read (a delete marker: `Error::DeleteMarker`).
    pub fn lookup_version(&self, bucket: &str, key: &str, v: VersionRef) -> Result<Located> {
        let s = self.find_version(bucket, key, v)?;
        if s.meta.version.delete_marker {
            return Err(Error::DeleteMarker { version_id: s.meta.version.id() });
        }
        Ok(Located::new(s.meta, s.mp))
    }

    /// Opens `bucket/key`'s version `v` for reading (a delete marker: `Error::DeleteMarker`).
    pub async fn open_version(&self, bucket: &str, key: &str, v: VersionRef) -> Result<ObjectReader> {
        let located = self.lookup_version(bucket, key, v)?;
        let size = located.meta.size;
        located.open(0, size).await
    }

    /// The delete marker hiding `bucket/key`, when its newest version is one (a GET without a
    /// version then answers 404 with `x-amz-delete-marker`).
    pub fn latest_delete_marker(&self, bucket: &str, key: &str) -> Result<Option<ObjectVersion>> {
        // A bucket never versioned has no other versions (versioning is suspended, never unset).
        if self.versioning_of(bucket) == Versioning::Unset {
            return Ok(None);
        }
        if self.current(bucket, key)?.is_some() {
            return Ok(None);
        }
        Ok(self.chain(bucket, key, 1)?.into_iter().next().map(|s| s.meta.version).filter(|v| v.delete_marker))
    }

    /// Changes what a version's record says besides its version (ACL, tags, lock; `None`: the
    /// current version): rewritten in place under the key's lock. `change` may refuse.
    pub async fn change_version(
        &self,
        bucket: &str,
        key: &str,
        v: Option<VersionRef>,
        change: &dyn Fn(&mut ObjectMeta) -> Result<()>,
    ) -> Result<ObjectVersion> {
        if matches!(v, None | Some(VersionRef::Null)) && self.versioning_of(bucket) == Versioning::Unset {
            // One version per key, changed where it lives (on every copy of a copies bucket).
            self.change_object(bucket, key, change).await?;
            return Ok(self.head_object(bucket, key)?.version);
        }
        let _lock = self.lock_keys(bucket, &[key]).await;
        let s = match v {
            Some(v) => self.find_version(bucket, key, v)?,
            None => self.current(bucket, key)?.ok_or(Error::NoSuchObject)?,
        };
        if s.meta.version.delete_marker {
            return Err(Error::DeleteMarker { version_id: s.meta.version.id() });
        }
        let mut meta = s.meta.clone();
        change(&mut meta)?;
        let op = IndexOp::put(s.table, s.ikey, meta.encode()).when(Precondition::Equals(s.raw), Refusal::Condition);
        s.mp.index.commit(vec![op], DirSet::default()).await.map_err(|e| self.raced(e))?;
        Ok(meta.version)
    }
}

impl Store {
    /// PutObjectRetention (D47): a COMPLIANCE retention only grows, a GOVERNANCE one changes
    /// otherwise only with `bypass`; refused in a bucket without object lock.
    pub async fn set_retention(
        &self,
        (bucket, key, v): (&str, &str, Option<VersionRef>),
        retention: Option<crate::meta::Retention>,
        bypass: bool,
    ) -> Result<ObjectVersion> {
        if !self.bucket(bucket)?.object_lock {
            return Err(Error::NoObjectLock);
        }
        let change = |m: &mut ObjectMeta| {
            m.lock.check_retention_change(retention, now_ms(), bypass)?;
            m.lock.retention = retention;
            Ok(())
        };
        self.change_version(bucket, key, v, &change).await
    }

    /// PutObjectLegalHold (D47); refused in a bucket without object lock.
    pub async fn set_legal_hold(
        &self,
        (bucket, key, v): (&str, &str, Option<VersionRef>),
        on: bool,
    ) -> Result<ObjectVersion> {
        if !self.bucket(bucket)?.object_lock {
            return Err(Error::NoObjectLock);
        }
        let change = |m: &mut ObjectMeta| {
            m.lock.legal_hold = on;
            Ok(())
        };
        self.change_version(bucket, key, v, &change).await
    }
}

/// The `Versions` key of a record whose `Objects` key is `ikey`.
fn version_ikey_of(ikey: &[u8], stamp: u128) -> Vec<u8> {
    let mut k = Vec::with_capacity(ikey.len() + 17);
    k.extend_from_slice(ikey);
    k.push(0);
    k.extend_from_slice(&(!stamp).to_be_bytes());
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_ids_and_keys() {
        let v = ObjectVersion { stamp: 0x0123_4567_89ab_cdef_0011_2233_4455_6677, null: false, delete_marker: false };
        assert_eq!(v.id(), "0123456789abcdef0011223344556677");
        assert_eq!(VersionRef::parse(&v.id()), Some(VersionRef::Id(v.stamp)));
        assert!(VersionRef::parse(&v.id()).unwrap().matches(&v));
        assert_eq!(VersionRef::parse("null"), Some(VersionRef::Null));
        for bad in ["", "abc", "0123456789ABCDEF0011223344556677", "0123456789abcdef00112233445566778", "nul"] {
            assert_eq!(VersionRef::parse(bad), None, "{bad}");
        }
        // Newer versions sort first; the split gives back key and stamp.
        let older = version_index_key("b", b"k", 5);
        let newer = version_index_key("b", b"k", 6);
        assert!(newer < older);
        assert_eq!(split_version_suffix(&newer[2..]), Some((&b"k"[..], 6)));
        assert_eq!(version_ikey_of(&keys::object_index_key("b", b"k"), 6), newer);
        // Stamps only grow.
        let a = new_stamp(0);
        assert!(new_stamp(0) > a);
        assert!(new_stamp(u128::MAX >> 1) > u128::MAX >> 1);
    }
}
