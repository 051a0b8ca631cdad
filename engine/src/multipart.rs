//! Multipart uploads, assembled without copying.
//!
//! Each part is an ordinary data file on the mountpath that owns the final key, recorded in the
//! `parts` table under its upload id. Completing an upload writes one object record whose data is
//! a manifest of the chosen parts' files and removes the upload and part records, in one atomic
//! index commit: no byte moves, and completion costs O(parts), not O(size).

use std::collections::HashMap;
use std::sync::Arc;

use fast_md5::Md5;

use crate::checksum::StoredChecksum;
use crate::checksum::{FlexAlgorithm, FlexHasher, crc_combine};
use crate::error::{Error, Result};
use crate::index::{CommitError, DirSet, IndexOp, Precondition, Refusal, Table};
use crate::keys;
use crate::limits;
use crate::meta::Ownership;
use crate::meta::{CannedAcl, DataLoc, FlexChecksum, FlexType, ObjectMeta, PartLoc, PartMeta, SystemMeta, UploadMeta};
use crate::mountpath::{self, Mountpath};
use crate::object::{DataWriter, WriteCondition};
use crate::store::{Store, now_ms};

/// Settings of CreateMultipartUpload.
#[derive(Clone, Debug, Default)]
pub struct UploadOptions {
    pub system: SystemMeta,
    pub user: Vec<(String, String)>,
    pub flex: Option<(FlexAlgorithm, FlexType)>,
    /// The canned ACL the completed object gets.
    pub acl: CannedAcl,
    /// The tag set the completed object gets.
    pub tags: crate::meta::Tags,
    /// The retention and legal hold the completed object gets.
    pub lock: crate::meta::ObjectLock,
}

/// One part as CompleteMultipartUpload names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompletePart {
    pub part_number: u32,
    /// The ETag the client got for the part, quoted or not.
    pub etag: String,
    /// The part's flexible checksum as the client lists it, verified against the stored one.
    pub checksum: Option<Vec<u8>>,
}

/// How a multipart upload is completed besides its part list.
#[derive(Clone, Debug, Default)]
pub struct CompleteOptions {
    /// Smallest size of a part other than the last (`--min-part-size`).
    pub min_part_size: u64,
    /// The whole object's flexible checksum as the client sent it, checked before committing.
    pub flex_expected: Option<ExpectedChecksum>,
    /// `If-None-Match: *` / `If-Match`, as on PUT.
    pub condition: WriteCondition,
}

/// A checked completion, before its gate and commit.
struct Completion {
    mp: Arc<crate::mountpath::Mountpath>,
    ops: Vec<IndexOp>,
    meta: ObjectMeta,
    records: HashMap<u32, (Vec<u8>, PartMeta)>,
    condition: WriteCondition,
}

/// A completed object's checksum as the client states it (`x-amz-checksum-crc32: xxxx==-3`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpectedChecksum {
    pub algorithm: FlexAlgorithm,
    pub value: Vec<u8>,
    /// The `-N` of a composite checksum, when given.
    pub parts: Option<u32>,
}

impl Store {
    fn upload_mountpath(&self, bucket: &str, key: &str, upload_id: &str) -> Result<&Arc<Mountpath>> {
        self.bucket(bucket)?;
        keys::validate_key(key)?;
        if !keys::valid_upload_id(upload_id) {
            return Err(Error::NoSuchUpload);
        }
        let mp = self.owner(bucket, key);
        mp.check()?;
        Ok(mp)
    }

    /// Starts an upload; returns its id.
    pub async fn create_upload(&self, bucket: &str, key: &str, initiator: &str, opts: UploadOptions) -> Result<String> {
        let bucket_meta = self.bucket(bucket)?;
        keys::validate_key(key)?;
        let mp = self.owner(bucket, key);
        mp.check()?;
        let created_ms = now_ms();
        let upload_id = format!("{:012x}{:016x}", created_ms & 0xffff_ffff_ffff, mountpath::random_u64());
        debug_assert!(keys::valid_upload_id(&upload_id));
        let meta = UploadMeta {
            created_ms,
            initiator: initiator.to_owned(),
            checksum: bucket_meta.checksum,
            flex: opts.flex,
            system: opts.system,
            user: opts.user,
            acl: opts.acl,
            tags: opts.tags,
            lock: opts.lock,
        };
        let ops = vec![
            IndexOp::check(Table::Buckets, bucket.as_bytes().to_vec(), Precondition::Present, Refusal::NoSuchBucket),
            IndexOp::put(Table::Uploads, keys::upload_index_key(bucket, key.as_bytes(), &upload_id), meta.encode())
                .when(Precondition::Absent, Refusal::Condition),
        ];
        mp.index.commit(ops, DirSet::default()).await?;
        Ok(upload_id)
    }

    /// The upload's record, or `NoSuchUpload`.
    pub fn upload(&self, bucket: &str, key: &str, upload_id: &str) -> Result<UploadMeta> {
        let mp = self.upload_mountpath(bucket, key, upload_id)?;
        match mp.index.get(Table::Uploads, &keys::upload_index_key(bucket, key.as_bytes(), upload_id))? {
            Some(v) => UploadMeta::decode(&v),
            None => Err(Error::NoSuchUpload),
        }
    }

    /// Starts writing part `part_number` (1..=10000) of an upload. The part's flexible checksum
    /// is the upload's algorithm, or `flex` when the upload has none.
    pub fn part_writer(
        self: &Arc<Self>,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part_number: u32,
        declared: Option<u64>,
        flex: Option<FlexAlgorithm>,
    ) -> Result<PartWriter> {
        if !(1..=limits::PART_NUMBER_MAX).contains(&part_number) {
            return Err(Error::InvalidPart { part_number });
        }
        let upload = self.upload(bucket, key, upload_id)?;
        let mp = self.owner(bucket, key).clone();
        if let (Some((upload_alg, _)), Some(f)) = (upload.flex, flex)
            && upload_alg != f
        {
            return Err(Error::ChecksumAlgorithmMismatch);
        }
        let flex = upload.flex.map(|(a, _)| a).or(flex);
        let copies = self.wanted_copies(bucket);
        let mut data = DataWriter::new(self, mp.clone(), key, (upload.checksum, flex), declared, false)?;
        if copies > 1 {
            // The part goes to the key's other holders as it arrives (same file id, its record
            // in their index too): completion then commits the object there without copying.
            let mirrors = self.holders(bucket, key, copies)?.into_iter().filter(|h| !Arc::ptr_eq(h, &mp)).collect();
            data.mirror_to(mirrors)?;
        }
        Ok(PartWriter {
            data,
            upload_key: keys::upload_index_key(bucket, key.as_bytes(), upload_id),
            part_key: keys::part_index_key(upload_id, part_number),
            bucket: bucket.to_owned(),
            key: key.to_owned(),
        })
    }

    /// Lists an upload's parts after `after` (a part number), at most `max`; true if more follow.
    pub fn list_parts(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        after: u32,
        max: usize,
    ) -> Result<(Vec<(u32, PartMeta)>, bool)> {
        self.upload(bucket, key, upload_id)?;
        let mp = self.owner(bucket, key);
        let start = keys::part_index_key(upload_id, after.saturating_add(1));
        let end = keys::part_index_key(upload_id, u32::MAX);
        let mut out = Vec::new();
        let mut truncated = false;
        for (k, v) in mp.index.scan(Table::Parts, &start, &end, max.saturating_add(1))? {
            if out.len() == max {
                truncated = true;
                break;
            }
            out.push((part_number_of(&k)?, PartMeta::decode(&v)?));
        }
        Ok((out, truncated))
    }

    /// Completes an upload from the listed parts. `opts.min_part_size` applies to every part but
    /// the last. Parts not listed are discarded.
    pub async fn complete_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        parts: &[CompletePart],
        opts: CompleteOptions,
    ) -> Result<ObjectMeta> {
        let ready = |_| std::future::ready(Ok::<_, Error>(None));
        self.complete_upload_gated(bucket, key, upload_id, parts, opts, ready).await
    }

    /// `complete_upload`, awaiting `gate` after the parts are checked and before anything
    /// commits: a backend bucket's write-through hands the assembled object (`Located`: the
    /// manifest, its files readable) to the remote there. An error from `gate` commits nothing;
    /// what it returns is the remote object this one is a copy of.
    pub async fn complete_upload_gated<E, F, Fut>(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        parts: &[CompletePart],
        opts: CompleteOptions,
        gate: F,
    ) -> std::result::Result<ObjectMeta, E>
    where
        E: From<Error>,
        F: FnOnce(crate::object::Located) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<Option<(crate::meta::RemoteVersion, u64)>, E>>,
    {
        let Completion { mp, mut ops, mut meta, records, condition } =
            self.plan_completion(bucket, key, upload_id, parts, opts)?;
        if let Some((version, mtime_ms)) = gate(crate::object::Located::new(meta.clone(), mp.clone())).await? {
            meta.remote = Some(version);
            meta.mtime_ms = mtime_ms.min(crate::meta::MTIME_MS_MAX);
        }
        ops.push(IndexOp::remove_prefix(Table::Parts, upload_id.as_bytes().to_vec()));
        let copies = self.wanted_copies(bucket);
        if copies > 1 {
            // Not enough healthy mountpaths for the copies: refused before anything commits
            // (the upload stays open for a retry).
            self.holders(bucket, key, copies)?;
        }
        let copies = copies > 1;
        let versioned = self.versioning_of(bucket) != crate::meta::Versioning::Unset;
        let lock = if copies || versioned { Some(self.lock_keys(bucket, &[key]).await) } else { None };
        let mut plan = if versioned { self.version_plan(&mp, (bucket, key), &mut meta)? } else { None };
        let mut guard = self.write_guard(&mp, bucket, key, &condition)?;
        if let Some(p) = plan.as_mut() {
            // The replaced version is kept (or dropped) in the same commit.
            ops.append(&mut p.ops);
            guard = p.guard(guard);
        }
        ops.push(
            IndexOp::put(Table::Objects, keys::object_index_key(bucket, key.as_bytes()), meta.encode())
                .when(guard, Refusal::Condition),
        );
        let previous = mp.index.commit(ops, DirSet::default()).await.map_err(|e| condition.commit_error(e))?;
        // Parts uploaded but left out of the manifest, and the object this one replaced.
        let used: std::collections::HashSet<_> = parts.iter().map(|p| p.part_number).collect();
        let unused = records.iter().filter(|(n, _)| !used.contains(n)).map(|(_, (_, rec))| rec.id);
        self.remove_files(&mp, unused).await;
        match plan {
            Some(plan) => self.finish_plan(plan).await.map_err(Error::from)?,
            None => self.release_previous(&mp, previous.last().and_then(|v| v.first().cloned())).await,
        }
        if copies {
            self.complete_on_mirrors((bucket, key, upload_id), &mp, &meta, &records, &used).await;
        }
        drop(lock);
        if copies {
            // Holders whose mirrored parts were incomplete get their copy now, so that the
            // answer means every copy.
            self.ensure_copies(bucket, key).await?;
            self.copies_hold(bucket, key)?;
        }
        Ok(meta)
    }

    /// Checks a completion and builds its record and index ops (not yet the object's own put).
    fn plan_completion(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        parts: &[CompletePart],
        opts: CompleteOptions,
    ) -> Result<Completion> {
        let CompleteOptions { min_part_size, flex_expected, condition } = opts;
        let mp = self.upload_mountpath(bucket, key, upload_id)?.clone();
        if parts.is_empty() || parts.len() > limits::PART_NUMBER_MAX as usize {
            return Err(Error::InvalidPart { part_number: 0 });
        }
        for w in parts.windows(2) {
            if w[1].part_number <= w[0].part_number {
                return Err(Error::InvalidPartOrder);
            }
        }
        let ukey = keys::upload_index_key(bucket, key.as_bytes(), upload_id);
        let upload = match mp.index.get(Table::Uploads, &ukey)? {
            Some(v) => UploadMeta::decode(&v)?,
            None => return Err(Error::NoSuchUpload),
        };
        let records: HashMap<u32, (Vec<u8>, PartMeta)> = mp
            .index
            .scan_prefix(Table::Parts, upload_id.as_bytes())?
            .into_iter()
            .map(|(k, v)| Ok((part_number_of(&k)?, (v.to_vec(), PartMeta::decode(&v)?))))
            .collect::<Result<_>>()?;

        // Every part the manifest uses must still be exactly what was read here when the
        // commit applies (a concurrent re-upload of a part would otherwise unlink its file).
        let mut ops = vec![
            IndexOp::check(Table::Buckets, bucket.as_bytes().to_vec(), Precondition::Present, Refusal::NoSuchBucket),
            IndexOp::remove(Table::Uploads, ukey.clone()).when(Precondition::Present, Refusal::NoSuchUpload),
        ];
        let Manifest { locs, md5, size } = manifest(upload_id, parts, &records, min_part_size, &mut ops)?;
        if size > limits::OBJECT_BYTES_MAX {
            return Err(Error::ObjectTooLarge);
        }
        let flex_checksum = match upload.flex {
            None => None,
            Some((alg, kind)) => Some(combined_checksum(alg, kind, parts, &records, flex_expected.as_ref())?),
        };
        let meta = ObjectMeta {
            size,
            mtime_ms: now_ms(),
            md5,
            etag_parts: parts.len() as u32,
            stored_checksum: StoredChecksum { kind: upload.checksum, value: Default::default() },
            system: upload.system,
            user: upload.user,
            flex_checksum,
            data: DataLoc::Parts(locs),
            acl: upload.acl,
            epoch: self.epoch(),
            upload_id: Some(upload_id.to_owned()),
            remote: None,
            tags: upload.tags,
            version: Default::default(),
            lock: upload.lock,
            owner: self.with_bucket(bucket, |b| Ownership::owner_of(b, &upload.initiator, upload.acl)).flatten(),
            grants: Vec::new(),
        };
        meta.check()?;
        Ok(Completion { mp, ops, meta, records, condition })
    }

    /// Aborts an upload: its records go, then its part files.
    pub async fn abort_upload(&self, bucket: &str, key: &str, upload_id: &str) -> Result<()> {
        let mp = self.upload_mountpath(bucket, key, upload_id)?.clone();
        self.abort_on(&mp, keys::upload_index_key(bucket, key.as_bytes(), upload_id), upload_id).await
    }

    async fn abort_on(&self, mp: &Arc<Mountpath>, ukey: Vec<u8>, upload_id: &str) -> Result<()> {
        self.abort_here(mp, ukey, upload_id).await?;
        // Parts mirrored to the key's other holders (copies, D36).
        for m in self.mountpaths().iter().filter(|m| !Arc::ptr_eq(m, mp) && !m.is_poisoned()) {
            if m.index.scan_prefix(Table::Parts, upload_id.as_bytes()).is_ok_and(|p| !p.is_empty()) {
                self.drop_parts_on(m, upload_id).await;
            }
        }
        Ok(())
    }

    async fn abort_here(&self, mp: &Arc<Mountpath>, ukey: Vec<u8>, upload_id: &str) -> Result<()> {
        let ops = vec![
            IndexOp::remove(Table::Uploads, ukey).when(Precondition::Present, Refusal::NoSuchUpload),
            IndexOp::remove_prefix(Table::Parts, upload_id.as_bytes().to_vec()),
        ];
        let previous = mp.index.commit(ops, DirSet::default()).await?;
        let mut ids = Vec::new();
        for raw in previous.get(1).into_iter().flatten() {
            match PartMeta::decode(raw) {
                Ok(p) => ids.push(p.id),
                Err(e) => tracing::warn!(mountpath = mp.name(), error = %e, "part record does not decode"),
            }
        }
        self.remove_files(mp, ids).await;
        Ok(())
    }

    /// The object a completed upload made, while it is still the key's current object (so a
    /// repeated CompleteMultipartUpload can answer again). In a copies bucket the copies are
    /// made (or found) first: the first completion may have failed after its commit (a copy
    /// that could not be made), and the retry's 200 means every copy as the first one's would.
    pub async fn completed_upload(&self, bucket: &str, key: &str, upload_id: &str) -> Result<Option<ObjectMeta>> {
        match self.head_object(bucket, key) {
            Ok(meta) if meta.upload_id.as_deref() == Some(upload_id) => {
                if self.wanted_copies(bucket) > 1 {
                    self.ensure_copies(bucket, key).await?;
                    self.copies_hold(bucket, key)?;
                }
                Ok(Some(meta))
            }
            Ok(_) | Err(Error::NoSuchObject) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Aborts every upload of `bucket` (DeleteBucket takes them with it); returns how many.
    pub(crate) async fn abort_bucket_uploads(&self, bucket: &str) -> Result<usize> {
        let (start, end) = (keys::bucket_range_start(bucket, b""), keys::bucket_range_end(bucket));
        self.abort_uploads_where(|mp| mp.index.scan(Table::Uploads, &start, &end, usize::MAX), |_| true).await
    }

    /// Aborts every upload started before `created_before_ms`; returns how many.
    pub async fn abort_uploads_before(&self, created_before_ms: u64) -> Result<usize> {
        self.abort_uploads_where(
            |mp| mp.index.all(Table::Uploads),
            |upload_id| keys::upload_id_created_ms(upload_id).is_some_and(|t| t < created_before_ms),
        )
        .await
    }

    /// Aborts the uploads `records` lists on each healthy mountpath whose id `pick` chooses
    /// (one gone meanwhile is not an error); returns how many.
    async fn abort_uploads_where(
        &self,
        records: impl Fn(&Mountpath) -> Result<Vec<(fjall::Slice, fjall::Slice)>>,
        pick: impl Fn(&str) -> bool,
    ) -> Result<usize> {
        let mut aborted = 0;
        for mp in self.mountpaths() {
            if mp.is_poisoned() {
                continue;
            }
            for (k, _) in records(mp)? {
                let Some((_, suffix)) = keys::split_object_index_key(&k) else { continue };
                let Some((_, upload_id)) = keys::split_upload_suffix(suffix) else { continue };
                if !pick(upload_id) {
                    continue;
                }
                let upload_id = upload_id.to_owned();
                match self.abort_on(mp, k.to_vec(), &upload_id).await {
                    Ok(()) => aborted += 1,
                    Err(Error::NoSuchUpload) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(aborted)
    }

    /// Commits a finished part's record (replacing an earlier upload of the same part, whose file
    /// goes); refused with `NoSuchUpload` when the upload is gone.
    /// Records a part on a mirror (another holder of the key, D36): no upload record there; the
    /// upload's own mountpath decides whether the upload exists.
    pub(crate) async fn commit_mirrored_part(
        &self,
        m: &Arc<Mountpath>,
        pkey: Vec<u8>,
        part: &PartMeta,
        dirs: DirSet,
    ) -> Result<(), CommitError> {
        let previous = m.index.commit(vec![IndexOp::put(Table::Parts, pkey, part.encode())], dirs).await?;
        if let Some(old) = previous.first().and_then(|v| v.first())
            && let Ok(p) = PartMeta::decode(old)
            && p.id != part.id
        {
            self.remove_files(m, [p.id]).await;
        }
        Ok(())
    }

    /// After a completion committed on the upload's mountpath `mp` (under the key's lock): every
    /// other holder whose mirrored parts are exactly the manifest's commits the same record
    /// (O(parts): the files are there); a holder missing some drops what it has and is left to
    /// `ensure_copies`. Every other mountpath's mirrored parts of the upload go.
    async fn complete_on_mirrors(
        &self,
        (bucket, key, upload_id): (&str, &str, &str),
        mp: &Arc<Mountpath>,
        meta: &ObjectMeta,
        records: &HashMap<u32, (Vec<u8>, PartMeta)>,
        used: &std::collections::HashSet<u32>,
    ) {
        let holders = self.holders(bucket, key, self.wanted_copies(bucket)).unwrap_or_default();
        let raw = meta.encode();
        for m in self.mountpaths().iter().filter(|m| !Arc::ptr_eq(m, mp) && !m.is_poisoned()) {
            let Ok(mirrored) = m.index.scan_prefix(Table::Parts, upload_id.as_bytes()) else { continue };
            let whole = used.iter().all(|n| {
                let want = records.get(n).map(|(r, _)| r.as_slice());
                mirrored.iter().any(|(k, v)| part_number_of(k).ok() == Some(*n) && Some(&v[..]) == want)
            });
            if whole && holders.iter().any(|h| Arc::ptr_eq(h, m)) {
                // The parts still as read (the start's sweep of stray parts may race with this
                // commit: refused then, and the repair copy below makes the object there).
                let mut extra: Vec<IndexOp> = used
                    .iter()
                    .filter_map(|n| records.get(n).map(|(r, _)| (n, r)))
                    .map(|(n, r)| {
                        let pkey = keys::part_index_key(upload_id, *n);
                        IndexOp::check(Table::Parts, pkey, Precondition::Equals(r.clone()), Refusal::Condition)
                    })
                    .collect();
                extra.push(IndexOp::remove_prefix(Table::Parts, upload_id.as_bytes().to_vec()));
                let unconditional = (DirSet::default(), Precondition::None);
                let done = self.commit_copy(m, (bucket, key), raw.clone(), unconditional, extra).await;
                if let Err(e) = done {
                    tracing::warn!(mountpath = m.name(), error = ?e, "copies: a completion's copy did not commit");
                    self.drop_parts_on(m, upload_id).await;
                    continue;
                }
                let unused = records.iter().filter(|(n, _)| !used.contains(n)).map(|(_, (_, rec))| rec.id);
                self.remove_files(m, unused).await;
            } else if !mirrored.is_empty() {
                self.drop_parts_on(m, upload_id).await;
            }
        }
    }

    /// Removes an upload's part records and their files on one mountpath (a mirror's).
    pub(crate) async fn drop_parts_on(&self, m: &Arc<Mountpath>, upload_id: &str) {
        let ops = vec![IndexOp::remove_prefix(Table::Parts, upload_id.as_bytes().to_vec())];
        match m.index.commit(ops, DirSet::default()).await {
            Ok(previous) => {
                let ids: Vec<_> = previous
                    .first()
                    .into_iter()
                    .flatten()
                    .filter_map(|raw| PartMeta::decode(raw).ok())
                    .map(|p| p.id)
                    .collect();
                self.remove_files(m, ids).await;
            }
            Err(e) => tracing::warn!(mountpath = m.name(), error = ?e, "copies: mirrored parts not removed"),
        }
    }

    async fn commit_part(
        &self,
        mp: &Arc<Mountpath>,
        ukey: Vec<u8>,
        pkey: Vec<u8>,
        part: &PartMeta,
        dirs: DirSet,
    ) -> Result<(), CommitError> {
        let ops = vec![
            IndexOp::check(Table::Uploads, ukey, Precondition::Present, Refusal::NoSuchUpload),
            IndexOp::put(Table::Parts, pkey, part.encode()),
        ];
        let previous = mp.index.commit(ops, dirs).await?;
        if let Some(old) = previous.get(1).and_then(|v| v.first()) {
            match PartMeta::decode(old) {
                Ok(p) => self.remove_files(mp, [p.id]).await,
                Err(e) => tracing::warn!(mountpath = mp.name(), error = %e, "replaced part record does not decode"),
            }
        }
        Ok(())
    }
}

/// An UploadPart (or UploadPartCopy) in progress: its bytes always go to a data file (manifests
/// reference files), recorded under the upload when finished.
pub struct PartWriter {
    data: DataWriter,
    upload_key: Vec<u8>,
    part_key: Vec<u8>,
    /// The key's bucket and name (a mirrored part's commits take the key's lock).
    bucket: String,
    key: String,
}

impl PartWriter {
    /// The bytes, to write into.
    pub fn data(&mut self) -> &mut DataWriter {
        &mut self.data
    }

    /// Verifies, syncs and records the part; returns its record.
    pub async fn finish(mut self, content_md5: Option<[u8; 16]>, flex_expected: Option<Vec<u8>>) -> Result<PartMeta> {
        let sealed = self.data.seal(content_md5, flex_expected.as_deref(), true).await?;
        let DataLoc::File(id) = sealed.data else { unreachable!("a part sealed into a file") };
        let part = PartMeta {
            id,
            size: self.data.written(),
            md5: sealed.md5,
            mtime_ms: now_ms(),
            stored_checksum: sealed.stored.value.to_vec(),
            flex_checksum: sealed.flex,
        };
        let (store, mp) = (self.data.store.clone(), self.data.mp.clone());
        let (ukey, pkey) = (std::mem::take(&mut self.upload_key), std::mem::take(&mut self.part_key));
        let mirrors = self.data.mirrors();
        self.data.commit_with(store.commit_part(&mp, ukey.clone(), pkey.clone(), &part, sealed.dirs)).await?;
        if mirrors.is_empty() {
            return Ok(part);
        }
        // Under the key's lock, which the completion holds while it commits on the mirrors and
        // removes the upload: a mirror's part record lands only while the upload is open, so a
        // late one never replaces (and unlinks) a file the completed object names there.
        let _lock = store.lock_keys(&self.bucket, &[&self.key]).await;
        if !matches!(mp.index.get(Table::Uploads, &ukey), Ok(Some(_))) {
            return Ok(part); // completed or aborted meanwhile: the mirrors' files are orphans
        }
        for m in &mirrors {
            // Best effort: a mirror that misses a part is copied to at completion.
            if let Err(e) = store.commit_mirrored_part(m, pkey.clone(), &part, sealed.dirs).await {
                tracing::warn!(mountpath = m.name(), error = ?e, "copies: a part's mirror record was not written");
            }
        }
        Ok(part)
    }
}

fn part_number_of(key: &[u8]) -> Result<u32> {
    let tail: [u8; 4] =
        key.get(key.len().wrapping_sub(4)..).and_then(|t| t.try_into().ok()).ok_or(Error::BadMeta("part key"))?;
    Ok(u32::from_be_bytes(tail))
}

/// What the listed parts add up to.
struct Manifest {
    locs: Vec<PartLoc>,
    md5: [u8; 16],
    size: u64,
}

/// Checks the listed parts against their records (ETag, size, checksum) and adds to `ops` a check
/// that each record is unchanged when the commit applies.
fn manifest(
    upload_id: &str,
    parts: &[CompletePart],
    records: &HashMap<u32, (Vec<u8>, PartMeta)>,
    min_part_size: u64,
    ops: &mut Vec<IndexOp>,
) -> Result<Manifest> {
    let mut locs = Vec::with_capacity(parts.len());
    let mut md5s = Md5::new();
    let mut size = 0u64;
    for (i, p) in parts.iter().enumerate() {
        let part_number = p.part_number;
        let (raw, rec) = records.get(&part_number).ok_or(Error::InvalidPart { part_number })?;
        let etag = p.etag.trim().trim_matches('"');
        if !etag.eq_ignore_ascii_case(&rec.etag()) {
            return Err(Error::InvalidPart { part_number });
        }
        if i + 1 < parts.len() && rec.size < min_part_size {
            return Err(Error::PartTooSmall { part_number });
        }
        if let Some(want) = &p.checksum
            && rec.flex_checksum.as_ref().is_none_or(|f| &f.value != want)
        {
            return Err(Error::InvalidPart { part_number });
        }
        size = size.checked_add(rec.size).ok_or(Error::ObjectTooLarge)?;
        md5s.update(&rec.md5);
        locs.push(PartLoc {
            id: rec.id,
            size: rec.size,
            md5: rec.md5,
            checksum: Some(rec.stored_checksum.clone()),
            flex: rec.flex_checksum.clone(),
        });
        // A part changed under us: the client raced its own upload.
        ops.push(IndexOp::check(
            Table::Parts,
            keys::part_index_key(upload_id, part_number),
            Precondition::Equals(raw.clone()),
            Refusal::InvalidPart(part_number),
        ));
    }
    Ok(Manifest { locs, md5: md5s.finalize(), size })
}

/// The checksum of a completed upload from its parts' checksums (`kind` says how they combine),
/// checked against the one the client stated, if any.
fn combined_checksum(
    alg: FlexAlgorithm,
    kind: FlexType,
    parts: &[CompletePart],
    records: &HashMap<u32, (Vec<u8>, PartMeta)>,
    expected: Option<&ExpectedChecksum>,
) -> Result<FlexChecksum> {
    let mut values = Vec::with_capacity(parts.len());
    for p in parts {
        let rec = &records[&p.part_number].1;
        match &rec.flex_checksum {
            Some(f) if f.algorithm == alg => values.push((f.value.clone(), rec.size)),
            _ => return Err(Error::InvalidPart { part_number: p.part_number }),
        }
    }
    let made = match kind {
        FlexType::Composite => {
            let mut h = FlexHasher::new(alg);
            for (v, _) in &values {
                h.update(v);
            }
            FlexChecksum { algorithm: alg, value: h.finish(), parts: parts.len() as u32 }
        }
        FlexType::FullObject => {
            let mut acc = alg.digest(b"");
            for (v, len) in &values {
                acc = crc_combine(alg, &acc, v, *len).ok_or(Error::ChecksumAlgorithmMismatch)?;
            }
            FlexChecksum { algorithm: alg, value: acc, parts: 0 }
        }
    };
    // A composite checksum may be stated with or without its `-N`; a full-object one has none.
    if let Some(want) = expected {
        let count_ok = match want.parts {
            None => true,
            Some(n) => made.parts > 0 && n == made.parts,
        };
        if want.algorithm != alg || want.value != made.value || !count_ok {
            return Err(Error::ChecksumMismatch { algorithm: want.algorithm.name() });
        }
    }
    Ok(made)
}
