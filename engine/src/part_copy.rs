//! A cluster's copies of multipart uploads (issue 15, DESIGN D40): the key's other holders take
//! each part as it arrives on the primary (the node the upload is open on), recorded in their
//! `parts` table under the upload's id but with no upload record of their own (the upload is
//! the primary's: listed, completed and aborted there). When the primary's completion is
//! offered, a holder whose parts match the manifest commits the object from them: O(parts), no
//! byte moves. One that lacks a part pulls the whole object as for any other write.
//!
//! Parts copied here whose upload never completes here (aborted while this node was out,
//! completed from a pull) are removed by the abort's message, by the completion, or at the next
//! start's sweep of parts of uploads this node does not hold.

use std::sync::Arc;

use crate::checksum::{ChecksumBytes, StoredChecksum};
use crate::error::{Error, Result};
use crate::index::{CommitError, DirSet, IndexOp, Precondition, Refusal, Table};
use crate::keys;
use crate::meta::{DataLoc, ObjectMeta, PartLoc, PartMeta};
use crate::mountpath::Mountpath;
use crate::object::{DataWriter, Located, ObjectReader, WriteCondition};
use crate::store::Store;

/// A part of an upload open on another node, being copied here.
pub struct PartCopy {
    data: DataWriter,
    source: PartMeta,
    bucket: String,
    key: String,
    upload_id: String,
    part_number: u32,
}

impl Store {
    /// Starts copying part `part_number` of `upload_id` (open on another node, whose record of
    /// the part is `source`) into this node's copy of `bucket/key`'s parts.
    pub fn part_copy_writer(
        self: &Arc<Self>,
        bucket: &str,
        key: &str,
        (upload_id, part_number): (&str, u32),
        source: &PartMeta,
    ) -> Result<PartCopy> {
        let kind = self.bucket(bucket)?.checksum;
        keys::validate_key(key)?;
        if !keys::valid_upload_id(upload_id) || !(1..=crate::limits::PART_NUMBER_MAX).contains(&part_number) {
            return Err(Error::NoSuchUpload);
        }
        let mp = self.owner(bucket, key).clone();
        mp.check()?;
        let data = DataWriter::new(self, mp, key, (kind, None), Some(source.size), false)?;
        Ok(PartCopy {
            data,
            source: source.clone(),
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            upload_id: upload_id.to_owned(),
            part_number,
        })
    }

    /// A reader of part `part_number` of an upload open here whose ETag is `etag` (the bytes a
    /// holder copies), or `NoSuchUpload` / `InvalidPart` / `ObjectChanged`.
    pub async fn open_part(
        &self,
        bucket: &str,
        key: &str,
        (upload_id, part_number): (&str, u32),
        etag: &str,
    ) -> Result<ObjectReader> {
        let upload = self.upload(bucket, key, upload_id)?;
        let mp = self.owner(bucket, key).clone();
        let raw = mp.index.get(Table::Parts, &keys::part_index_key(upload_id, part_number))?;
        let part = PartMeta::decode(&raw.ok_or(Error::InvalidPart { part_number })?)?;
        if part.etag() != etag {
            return Err(Error::ObjectChanged);
        }
        let meta = ObjectMeta {
            size: part.size,
            mtime_ms: part.mtime_ms,
            md5: part.md5,
            etag_parts: 0,
            stored_checksum: StoredChecksum {
                kind: upload.checksum,
                value: ChecksumBytes::new(&part.stored_checksum).ok_or(Error::BadMeta("part checksum"))?,
            },
            system: Default::default(),
            user: Vec::new(),
            flex_checksum: None,
            data: DataLoc::File(part.id),
            acl: Default::default(),
            epoch: self.epoch(),
            upload_id: None,
            remote: None,
            tags: Vec::new(),
            version: Default::default(),
            lock: Default::default(),
            owner: None,
            grants: Vec::new(),
        };
        Located::new(meta, mp).open(0, part.size).await
    }

    /// Commits `source` (a completed multipart object's record on another node) from the parts
    /// copied here, if they hold every part its manifest names, unless the key holds a version
    /// as new or newer (`PreconditionFailed`). Whether it committed; otherwise the key is
    /// unchanged and the upload's parts copied here (if any) are gone (with `false` the caller
    /// copies the object whole). Call under the key's lock.
    pub async fn complete_copied(&self, bucket: &str, key: &str, source: &ObjectMeta) -> Result<bool> {
        let Some(upload_id) = &source.upload_id else { return Ok(false) };
        let committed = self.commit_copied(bucket, key, source).await;
        // Not taken (a part missing, a newer version here): the parts copied for it are of no use.
        if !matches!(committed, Ok(true)) {
            let mp = self.owner(bucket, key).clone();
            if mp.index.scan_prefix(Table::Parts, upload_id.as_bytes()).is_ok_and(|p| !p.is_empty()) {
                self.drop_parts_on(&mp, upload_id).await;
            }
        }
        committed
    }

    async fn commit_copied(&self, bucket: &str, key: &str, source: &ObjectMeta) -> Result<bool> {
        let (Some(upload_id), DataLoc::Parts(wanted)) = (&source.upload_id, &source.data) else { return Ok(false) };
        let mp = self.owner(bucket, key).clone();
        mp.check()?;
        let condition = WriteCondition::OlderThan { mtime_ms: source.mtime_ms, etag: source.etag() };
        let guard = self.write_guard(&mp, bucket, key, &condition)?;
        let records = mp.index.scan_prefix(Table::Parts, upload_id.as_bytes())?;
        // The manifest lists its parts in ascending part number, as the records are ordered:
        // each of its parts is the next record with the same bytes (MD5 and size).
        let mut next = records.iter();
        let mut locs = Vec::with_capacity(wanted.len());
        let mut ops = Vec::with_capacity(wanted.len() + 2);
        let mut used = std::collections::HashSet::new();
        for want in wanted {
            let found = next.by_ref().find_map(|(k, v)| {
                let p = PartMeta::decode(v).ok()?;
                (p.md5 == want.md5 && p.size == want.size).then(|| (k.to_vec(), v.to_vec(), p))
            });
            let Some((pkey, raw, part)) = found else { return Ok(false) };
            used.insert(part.id);
            locs.push(PartLoc {
                id: part.id,
                size: part.size,
                md5: part.md5,
                checksum: Some(part.stored_checksum),
                flex: want.flex.clone(),
            });
            ops.push(IndexOp::check(Table::Parts, pkey, Precondition::Equals(raw), Refusal::Condition));
        }
        let mut meta = source.clone();
        meta.data = DataLoc::Parts(locs);
        meta.stored_checksum = StoredChecksum { kind: self.bucket(bucket)?.checksum, value: Default::default() };
        meta.epoch = self.epoch();
        meta.check()?;
        ops.push(IndexOp::check(
            Table::Buckets,
            bucket.as_bytes().to_vec(),
            Precondition::Present,
            Refusal::NoSuchBucket,
        ));
        ops.push(IndexOp::remove_prefix(Table::Parts, upload_id.as_bytes().to_vec()));
        ops.push(
            IndexOp::put(Table::Objects, keys::object_index_key(bucket, key.as_bytes()), meta.encode())
                .when(guard, Refusal::Condition),
        );
        match mp.index.commit(ops, DirSet::default()).await {
            Ok(previous) => {
                self.release_previous(&mp, previous.last().and_then(|v| v.first().cloned())).await;
                let unused = records
                    .iter()
                    .filter_map(|(_, v)| PartMeta::decode(v).ok())
                    .filter(|p| !used.contains(&p.id))
                    .map(|p| p.id);
                self.remove_files(&mp, unused.collect::<Vec<_>>()).await;
                Ok(true)
            }
            // A part replaced meanwhile, or a newer version committed: nothing applied.
            Err(CommitError::Refused(Refusal::NoSuchBucket)) => Err(Error::NoSuchBucket),
            Err(CommitError::Refused(_)) => Ok(false),
            Err(CommitError::Failed(e)) => Err(e),
        }
    }

    /// Removes the parts of `upload_id` copied here (the primary aborted or completed it).
    pub async fn drop_copied_parts(&self, bucket: &str, key: &str, upload_id: &str) -> Result<()> {
        if !keys::valid_upload_id(upload_id) {
            return Err(Error::NoSuchUpload);
        }
        let mp = self.owner(bucket, key).clone();
        mp.check()?;
        self.drop_parts_on(&mp, upload_id).await;
        Ok(())
    }
}

impl PartCopy {
    /// The bytes, to write into.
    pub fn data(&mut self) -> &mut DataWriter {
        &mut self.data
    }

    /// Checks the bytes against the source's MD5 and size, syncs, and records the part, unless
    /// the key holds the upload's completed object already (a late copy: its file goes).
    /// Whether it was recorded.
    pub async fn finish(mut self) -> Result<bool> {
        let sealed = self.data.seal(None, None, true).await?;
        let DataLoc::File(id) = sealed.data else { return Err(Error::BadMeta("a part sealed inline")) };
        if sealed.md5 != self.source.md5 || self.data.written() != self.source.size {
            return Err(Error::ChecksumMismatch { algorithm: "MD5" });
        }
        let part = PartMeta {
            id,
            size: self.source.size,
            md5: sealed.md5,
            mtime_ms: self.source.mtime_ms,
            stored_checksum: sealed.stored.value.to_vec(),
            flex_checksum: self.source.flex_checksum.clone(),
        };
        let (store, mp): (Arc<Store>, Arc<Mountpath>) = (self.data.store.clone(), self.data.mp.clone());
        let _lock = store.lock_keys(&self.bucket, &[&self.key]).await;
        let done =
            store.head_object(&self.bucket, &self.key).is_ok_and(|m| m.upload_id.as_ref() == Some(&self.upload_id));
        if done {
            return Ok(false); // the writer's drop removes the file
        }
        let pkey = keys::part_index_key(&self.upload_id, self.part_number);
        self.data.commit_with(store.commit_mirrored_part(&mp, pkey, &part, sealed.dirs)).await?;
        Ok(true)
    }
}
