//! The store: mountpaths, buckets and the object operations the server calls.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;

use crate::error::{Error, Result};
use crate::index::{CommitError, DirSet, IndexConfig, IndexOp, Precondition, Refusal, SyncMode, Table};
use crate::keys;
use crate::limits;
use crate::membership;
use crate::meta::{BucketMeta, ObjectId, ObjectMeta};
use crate::mountpath::{self, Mountpath};
use crate::object::{WriteCondition, etag_list_matches};
use crate::placement;

/// How to open a store.
#[derive(Clone, Debug)]
pub struct StoreConfig {
    pub mountpaths: Vec<PathBuf>,
    pub sync: SyncMode,
    pub index: IndexConfig,
    /// Write data files of known, non-inline size with O_DIRECT (no page-cache copy).
    pub odirect: bool,
    /// Faults to inject (tests only).
    pub faults: Option<Arc<crate::faults::Faults>>,
}

/// The engine's entry point, shared by every shard.
pub struct Store {
    mountpaths: Vec<Arc<Mountpath>>,
    mountpath_ids: Vec<u64>,
    buckets: ArcSwap<BTreeMap<String, BucketMeta>>,
    /// Serialises bucket creation and deletion (rare; never held across an await).
    bucket_writes: Mutex<()>,
    sync: SyncMode,
    odirect: bool,
    pub(crate) faults: Option<Arc<crate::faults::Faults>>,
    id_high: u64,
    id_counter: AtomicU64,
    /// This run's node generation, stamped on every record written (D24).
    epoch: u64,
    /// A member is detached: deletes leave tombstones so its copies lose when it returns (D24).
    pub(crate) tombstones: bool,
    /// Copies on distinct mountpaths (issue 15): the node's default, key locks, repair state.
    pub(crate) copies: crate::copies::Copies,
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl Store {
    /// Opens every mountpath (blocking; call before the shards start). The mountpaths must make
    /// up the node (D24): a member missing refuses the open until it is detached; a detached
    /// member given again is reconciled first; the node record is then written to every
    /// mountpath with this run's epoch.
    pub fn open(config: &StoreConfig) -> Result<Arc<Store>> {
        assert!(!config.mountpaths.is_empty(), "a store needs at least one mountpath");
        if config.mountpaths.len() > limits::MOUNTPATHS_MAX {
            return Err(Error::Io(std::io::Error::other("too many mountpaths")));
        }
        let seen: Vec<membership::Seen> =
            config.mountpaths.iter().map(|p| membership::peek(p)).collect::<Result<_>>()?;
        let plan = membership::plan(&seen, mountpath::random_u64()).map_err(Error::Membership)?;
        let mut mountpaths = Vec::with_capacity(config.mountpaths.len());
        for root in &config.mountpaths {
            let mp = Mountpath::open(root, config.sync, &config.index, config.faults.clone())?;
            if mountpaths.iter().any(|m: &Arc<Mountpath>| m.id == mp.id || m.root() == mp.root()) {
                return Err(Error::Io(std::io::Error::other(format!(
                    "mountpath {} is given twice (or is a copy of another)",
                    mp.name()
                ))));
            }
            mountpaths.push(Arc::new(mp));
        }
        for &i in &plan.unrecorded {
            let mp = &mountpaths[i];
            if !mp.holds_nothing()? {
                return Err(Error::Membership(format!(
                    "mountpath {} holds objects but is not a member of this node; keel cannot tell whether they are current (move its data away to add it as a new mountpath)",
                    mp.name()
                )));
            }
        }
        let mountpath_ids = mountpaths.iter().map(|m| m.id).collect();
        let returning: Vec<usize> = plan.returning.iter().map(|(i, _)| *i).collect();
        // Buckets live on every mountpath; take the union over the mountpaths in step (a
        // returning one may hold buckets deleted meanwhile) and repair mountpaths added later.
        let mut buckets = BTreeMap::new();
        for (i, mp) in mountpaths.iter().enumerate() {
            if returning.contains(&i) {
                continue;
            }
            for (k, v) in mp.index.all(Table::Buckets)? {
                let name = String::from_utf8(k.to_vec()).map_err(|_| Error::BadMeta("bucket name"))?;
                buckets.entry(name).or_insert(BucketMeta::decode(&v)?);
            }
        }
        let store = Store {
            mountpaths,
            mountpath_ids,
            buckets: ArcSwap::from_pointee(buckets),
            bucket_writes: Mutex::new(()),
            sync: config.sync,
            odirect: config.odirect,
            faults: config.faults.clone(),
            id_high: mountpath::random_u64() ^ now_ms().rotate_left(32),
            id_counter: AtomicU64::new(0),
            epoch: plan.epoch,
            tombstones: !plan.detached.is_empty(),
            copies: crate::copies::Copies::default(),
        };
        for &(i, last_epoch) in &plan.returning {
            let report = store.reconcile(i, last_epoch, &returning)?;
            tracing::warn!(
                mountpath = store.mountpaths[i].name(),
                last_epoch,
                kept = report.kept,
                superseded = report.superseded,
                of_deleted_buckets = report.of_deleted_buckets,
                uploads_aborted = report.uploads_aborted,
                "a detached mountpath returned: reconciled"
            );
        }
        let mut members: Vec<membership::Member> = store
            .mountpaths
            .iter()
            .map(|m| membership::Member {
                id: m.id,
                path: m.root().to_path_buf(),
                state: membership::MemberState::Active,
            })
            .collect();
        members.extend(plan.detached.iter().cloned());
        let record = membership::NodeRecord { node: plan.node, epoch: plan.epoch, members };
        for mp in &store.mountpaths {
            record.write(mp.root())?;
        }
        if !store.tombstones {
            store.purge_tombstones()?;
        }
        store.load_unclean();
        Ok(Arc::new(store))
    }

    /// Writes bucket records missing on some mountpath (one added after the bucket was made).
    pub async fn repair_buckets(&self) -> Result<()> {
        let buckets = self.buckets.load_full();
        for mp in &self.mountpaths {
            let mut ops = Vec::new();
            for (name, meta) in buckets.iter() {
                if mp.index.get(Table::Buckets, name.as_bytes())?.is_none() {
                    ops.push(IndexOp::put(Table::Buckets, name.as_bytes().to_vec(), meta.encode()));
                }
            }
            if !ops.is_empty() {
                mp.index.commit(ops, DirSet::default()).await?;
            }
        }
        Ok(())
    }

    /// This run's node generation (D24).
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    pub fn odirect(&self) -> bool {
        self.odirect
    }

    pub fn sync_mode(&self) -> SyncMode {
        self.sync
    }

    pub fn mountpaths(&self) -> &[Arc<Mountpath>] {
        &self.mountpaths
    }

    /// A fresh data-file id, unique on every mountpath of this store.
    pub(crate) fn next_id(&self) -> ObjectId {
        let low = self.id_counter.fetch_add(1, Ordering::Relaxed);
        ObjectId((u128::from(self.id_high) << 64) | u128::from(low))
    }

    /// Counts a failure to read a data file of mountpath `id` (a GET's body read by the server
    /// from a `Piece`), as the engine counts its own: enough of them poison the mountpath.
    pub fn read_failed(&self, id: u64, err: std::io::Error) {
        if let Some(mp) = self.mountpaths.iter().find(|m| m.id == id) {
            mp.io_error(err);
        }
    }

    pub(crate) fn mountpath_ids(&self) -> &[u64] {
        &self.mountpath_ids
    }

    /// The position in `mountpaths()` of the mountpath that owns `bucket/key`.
    pub(crate) fn owner_index(&self, bucket: &str, key: &[u8]) -> usize {
        placement::owner(&self.mountpath_ids, bucket, key)
    }

    /// The mountpath that owns `bucket/key`.
    pub fn owner(&self, bucket: &str, key: &str) -> &Arc<Mountpath> {
        &self.mountpaths[self.owner_index(bucket, key.as_bytes())]
    }

    // ---- buckets ----

    pub fn list_buckets(&self) -> Vec<(String, BucketMeta)> {
        self.buckets.load().iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    pub fn bucket(&self, name: &str) -> Result<BucketMeta> {
        self.buckets.load().get(name).cloned().ok_or(Error::NoSuchBucket)
    }

    /// `f` of the bucket's record, without cloning it.
    pub fn with_bucket<R>(&self, name: &str, f: impl FnOnce(&BucketMeta) -> R) -> Option<R> {
        self.buckets.load().get(name).map(f)
    }

    pub fn bucket_exists(&self, name: &str) -> bool {
        self.buckets.load().contains_key(name)
    }

    fn swap_buckets(&self, f: impl FnOnce(&mut BTreeMap<String, BucketMeta>)) {
        let mut map = BTreeMap::clone(&self.buckets.load());
        f(&mut map);
        self.buckets.store(Arc::new(map));
    }

    pub async fn create_bucket(&self, name: &str, owner: &str) -> Result<BucketMeta> {
        self.create_bucket_with(name, BucketMeta { owner: owner.to_owned(), ..Default::default() }).await
    }

    /// Creates a bucket with the given owner, ACL, policy and location (creation time and
    /// incarnation are set here).
    pub async fn create_bucket_with(&self, name: &str, mut meta: BucketMeta) -> Result<BucketMeta> {
        meta.created_ms = now_ms();
        meta.incarnation = mountpath::random_u64();
        self.create_bucket_as(name, meta).await
    }

    /// Creates a bucket with exactly this record, creation time and incarnation included (a
    /// cluster member mirroring the cluster's record).
    pub async fn create_bucket_as(&self, name: &str, meta: BucketMeta) -> Result<BucketMeta> {
        keys::validate_bucket_name(name)?;
        {
            let _guard = self.bucket_guard();
            if self.bucket_exists(name) {
                return Err(Error::BucketExists);
            }
            self.swap_buckets(|m| {
                m.insert(name.to_owned(), meta.clone());
            });
        }
        if let Err(e) = self.write_bucket_everywhere(name, Some(&meta)).await {
            let _guard = self.bucket_guard();
            self.swap_buckets(|m| {
                m.remove(name);
            });
            return Err(e);
        }
        Ok(meta)
    }

    fn bucket_guard(&self) -> std::sync::MutexGuard<'_, ()> {
        self.bucket_writes.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn write_bucket_everywhere(&self, name: &str, meta: Option<&BucketMeta>) -> Result<()> {
        // Bucket changes are rare: one mountpath after the other is fast enough.
        for mp in &self.mountpaths {
            let op = match meta {
                Some(m) => IndexOp::put(Table::Buckets, name.as_bytes().to_vec(), m.encode()),
                None => IndexOp::remove(Table::Buckets, name.as_bytes().to_vec()),
            };
            mp.index.commit(vec![op], DirSet::default()).await?;
        }
        Ok(())
    }

    /// Changes a bucket's properties (versioning, checksum, ACL) everywhere.
    pub async fn update_bucket(&self, name: &str, f: impl FnOnce(&mut BucketMeta)) -> Result<BucketMeta> {
        let meta = {
            let _guard = self.bucket_guard();
            let mut meta = self.bucket(name)?;
            f(&mut meta);
            self.swap_buckets(|m| {
                m.insert(name.to_owned(), meta.clone());
            });
            meta
        };
        self.write_bucket_everywhere(name, Some(&meta)).await?;
        // A delete that raced this update removed the bucket from the map: keep the index in step.
        if !self.bucket_exists(name) {
            self.write_bucket_everywhere(name, None).await?;
            return Err(Error::NoSuchBucket);
        }
        Ok(meta)
    }

    pub async fn delete_bucket(&self, name: &str) -> Result<()> {
        let removed = {
            let _guard = self.bucket_guard();
            let meta = self.bucket(name)?;
            if !self.bucket_is_empty(name)? {
                return Err(Error::BucketNotEmpty);
            }
            self.swap_buckets(|m| {
                m.remove(name);
            });
            meta
        };
        // Object commits check the bucket record in the committer, so a PUT in flight either
        // lands before this removal (and the emptiness check above may have missed it: see the
        // recheck below) or fails with NoSuchBucket.
        if let Err(e) = self.write_bucket_everywhere(name, None).await {
            let _guard = self.bucket_guard();
            self.swap_buckets(|m| {
                m.insert(name.to_owned(), removed);
            });
            return Err(e);
        }
        if !self.bucket_is_empty(name)? {
            // An object committed between the check and the removal: put the bucket back.
            self.write_bucket_everywhere(name, Some(&removed)).await?;
            let _guard = self.bucket_guard();
            self.swap_buckets(|m| {
                m.insert(name.to_owned(), removed);
            });
            return Err(Error::BucketNotEmpty);
        }
        // Unfinished multipart uploads go with the bucket (as on S3). New ones cannot start: their
        // commit checks the bucket record, which is gone everywhere.
        self.abort_bucket_uploads(name).await?;
        Ok(())
    }

    /// True when no mountpath holds an object of the bucket, nor an older version or a delete
    /// marker (uploads in progress do not count).
    fn bucket_is_empty(&self, name: &str) -> Result<bool> {
        let start = keys::bucket_range_start(name, b"");
        let end = keys::bucket_range_end(name);
        for mp in &self.mountpaths {
            for table in [Table::Objects, Table::Versions] {
                if !mp.index.scan(table, &start, &end, 1)?.is_empty() {
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }

    // ---- objects ----

    /// Finds an object's record: on its owner mountpath, or (for objects placed before a
    /// mountpath was added) on another one.
    pub(crate) fn locate(&self, bucket: &str, key: &str) -> Result<(Arc<Mountpath>, ObjectMeta)> {
        let copies = self.with_bucket(bucket, |m| self.copies_of(m)).ok_or(Error::NoSuchBucket)?;
        keys::validate_key(key)?;
        if copies > 1 {
            let located = self.locate_copies(bucket, key)?;
            return Ok((located.mountpath().clone(), located.meta));
        }
        let (mp, raw) = self.locate_raw(bucket, key)?;
        Ok((mp, ObjectMeta::decode(&raw)?))
    }

    /// An object's record as stored, on its owner mountpath or (placed before a mountpath was
    /// added) another one; the key is not checked.
    pub(crate) fn locate_raw(&self, bucket: &str, key: &str) -> Result<(Arc<Mountpath>, fjall::Slice)> {
        let mut stack = [0u8; keys::INDEX_KEY_STACK];
        let heap;
        let ikey = match keys::object_index_key_in(bucket, key.as_bytes(), &mut stack) {
            Some(k) => k,
            None => {
                heap = keys::object_index_key(bucket, key.as_bytes());
                &heap[..]
            }
        };
        let owner = self.owner(bucket, key);
        owner.check()?;
        if let Some(v) = owner.index.get(Table::Objects, ikey)? {
            return Ok((owner.clone(), v));
        }
        for mp in self.mountpaths.iter().filter(|m| !Arc::ptr_eq(m, owner)) {
            if mp.is_poisoned() {
                continue;
            }
            if let Some(v) = mp.index.get(Table::Objects, ikey)? {
                return Ok((mp.clone(), v));
            }
        }
        Err(Error::NoSuchObject)
    }

    /// Changes an object's canned ACL (PutObjectAcl), keeping its version.
    pub async fn set_object_acl(&self, bucket: &str, key: &str, acl: crate::meta::CannedAcl) -> Result<()> {
        self.change_object(bucket, key, &|m| {
            m.acl = acl;
            Ok(())
        })
        .await
    }

    /// Changes what an object's record says about it besides its version (ACL, tags): the
    /// record is rewritten where it lives, on condition that it is still the record read (a
    /// write that overtakes is retried on). `change` may refuse (nothing is written then).
    pub async fn change_object(
        &self,
        bucket: &str,
        key: &str,
        change: &dyn Fn(&mut ObjectMeta) -> Result<()>,
    ) -> Result<()> {
        let ikey = keys::object_index_key(bucket, key.as_bytes());
        if self.wanted_copies(bucket) > 1 {
            // Every copy changes, under the key's lock (writes and repairs wait).
            if self.failed_mountpaths() > 0 {
                self.record_failures();
            }
            let _lock = self.lock_keys(bucket, &[key]).await;
            let newest = self.newest(bucket, key)?;
            let mut meta = newest.meta.clone();
            change(&mut meta)?;
            meta.epoch = self.epoch;
            for mp in newest.mps {
                let Some(raw) = mp.index.get(Table::Objects, &ikey)? else { continue };
                let op = IndexOp::put(Table::Objects, ikey.clone(), meta.encode())
                    .when(Precondition::Equals(raw.to_vec()), Refusal::Condition);
                match mp.index.commit(vec![op], DirSet::default()).await {
                    Ok(_) | Err(CommitError::Refused(_)) => {}
                    Err(CommitError::Failed(e)) => return Err(e),
                }
            }
            return Ok(());
        }
        for _ in 0..4 {
            let (mp, _) = self.locate(bucket, key)?;
            let Some(raw) = mp.index.get(Table::Objects, &ikey)? else { continue };
            let mut meta = ObjectMeta::decode(&raw)?;
            change(&mut meta)?;
            meta.epoch = self.epoch;
            let op = IndexOp::put(Table::Objects, ikey.clone(), meta.encode())
                .when(Precondition::Equals(raw.to_vec()), Refusal::Condition);
            match mp.index.commit(vec![op], DirSet::default()).await {
                Ok(_) => return Ok(()),
                Err(CommitError::Refused(_)) => continue,
                Err(CommitError::Failed(e)) => return Err(e),
            }
        }
        Err(Error::WriteConflict)
    }

    /// Looks an object up (HEAD, and the first step of GET).
    pub fn head_object(&self, bucket: &str, key: &str) -> Result<ObjectMeta> {
        self.locate(bucket, key).map(|(_, m)| m)
    }

    /// Removes an object; a missing object is not an error (S3 answers 204 either way).
    pub async fn delete_object(&self, bucket: &str, key: &str) -> Result<()> {
        self.delete_objects(bucket, &[key]).await.pop().unwrap_or(Ok(()))
    }

    /// Removes many objects with one index commit per mountpath; one result per key, in order.
    pub async fn delete_objects(&self, bucket: &str, keys_in: &[&str]) -> Vec<Result<()>> {
        if let Err(e) = self.bucket(bucket) {
            return keys_in.iter().map(|_| Err(clone_err(&e))).collect();
        }
        // A copies bucket's keys are locked while their copies go (a write or repair in between
        // could leave one copy behind).
        let copies = self.wanted_copies(bucket) > 1;
        if copies && self.mountpaths.iter().any(|m| m.is_poisoned()) {
            self.record_failures();
        }
        let _lock = if copies { Some(self.lock_keys(bucket, keys_in).await) } else { None };
        let mut results: Vec<Result<()>> = Vec::with_capacity(keys_in.len());
        // Per mountpath: the ops and, for each, which key it belongs to.
        let mut plans: Vec<(Vec<IndexOp>, Vec<usize>)> = vec![(Vec::new(), Vec::new()); self.mountpaths.len()];
        for (i, key) in keys_in.iter().enumerate() {
            if let Err(e) = keys::validate_key(key) {
                results.push(Err(e));
                continue;
            }
            results.push(Ok(()));
            let ikey = keys::object_index_key(bucket, key.as_bytes());
            let owner = placement::owner(&self.mountpath_ids, bucket, key.as_bytes());
            for (m, mp) in self.mountpaths.iter().enumerate() {
                // The owner always; others only where a record from before a placement change lives.
                // A copies bucket's poisoned mountpath is skipped: the others hold the copies.
                // (An index that cannot be read is asked to remove it: its error fails the key,
                // rather than a record surviving a 204.)
                let here = (m == owner && !copies)
                    || (!mp.is_poisoned() && !matches!(mp.index.get(Table::Objects, &ikey), Ok(None)));
                if here {
                    plans[m].0.push(IndexOp::remove(Table::Objects, ikey.clone()));
                    plans[m].1.push(i);
                }
            }
            // With a member detached, the delete is remembered, so that the member's copy of the
            // key loses when it returns (D24).
            if self.tombstones {
                plans[owner].0.push(IndexOp::put(Table::Tombstones, ikey, self.epoch.to_le_bytes().to_vec()));
                plans[owner].1.push(i);
            }
        }
        for (m, (ops, owners)) in plans.into_iter().enumerate() {
            if ops.is_empty() {
                continue;
            }
            let mp = &self.mountpaths[m];
            let ops_tables: Vec<Table> = ops.iter().map(|o| o.table).collect();
            let outcome = match mp.check() {
                Ok(()) => mp.index.commit(ops, DirSet::default()).await.map_err(Error::from),
                Err(e) => Err(e),
            };
            match outcome {
                Ok(previous) => {
                    for (op, prev) in ops_tables.iter().zip(previous) {
                        if *op == Table::Objects {
                            self.release_previous(mp, prev.into_iter().next()).await;
                        }
                    }
                }
                Err(e) => {
                    for i in owners {
                        results[i] = Err(clone_err(&e));
                    }
                }
            }
        }
        results
    }

    /// The index precondition that makes a write to `bucket/key` on `mp` conditional: checked
    /// here against the current object (PreconditionFailed, NoSuchObject), and again atomically
    /// by the commit (the record seen here must still be there). Call it before anything is
    /// committed: its errors mean nothing was applied.
    pub(crate) fn write_guard(
        &self,
        mp: &Mountpath,
        bucket: &str,
        key: &str,
        condition: &WriteCondition,
    ) -> Result<Precondition> {
        let precondition = match condition {
            WriteCondition::Always => Precondition::None,
            // Every mountpath is asked: a copy from before a mountpath was added exists too.
            WriteCondition::Absent => match self.locate(bucket, key) {
                Ok(_) => return Err(Error::PreconditionFailed),
                Err(Error::NoSuchObject) => Precondition::Absent,
                Err(e) => return Err(e),
            },
            WriteCondition::OlderThan { mtime_ms, etag } => match self.locate(bucket, key) {
                Ok((_, current)) if (current.mtime_ms, current.etag()) >= (*mtime_ms, etag.clone()) => {
                    return Err(Error::PreconditionFailed);
                }
                Ok(_) => match mp.index.get(Table::Objects, &keys::object_index_key(bucket, key.as_bytes()))? {
                    Some(raw) => Precondition::Equals(raw.to_vec()),
                    None => Precondition::Absent,
                },
                Err(Error::NoSuchObject) => Precondition::Absent,
                Err(e) => return Err(e),
            },
            WriteCondition::EtagMatches(list) => {
                match mp.index.get(Table::Objects, &keys::object_index_key(bucket, key.as_bytes()))? {
                    Some(raw) => {
                        if !etag_list_matches(list, &ObjectMeta::decode(&raw)?.etag()) {
                            return Err(Error::PreconditionFailed);
                        }
                        Precondition::Equals(raw.to_vec())
                    }
                    // Written before a mountpath was added: the copy lives elsewhere, the owner has
                    // none. (A DELETE of that copy racing this write is not caught: known limit.)
                    None => {
                        let (_, current) = self.locate(bucket, key)?;
                        if !etag_list_matches(list, &current.etag()) {
                            return Err(Error::PreconditionFailed);
                        }
                        Precondition::Absent
                    }
                }
            }
        };
        Ok(precondition)
    }

    /// Commits an object record (after `write_guard`, and after `meta.check()`: both can fail, and
    /// must before the commit is sent); the record it replaces (if any) has its data files
    /// removed. Refused with `NoSuchBucket` when the bucket is gone when the commit applies, with
    /// `Condition` when the guard's precondition no longer holds.
    pub(crate) async fn commit_object(
        &self,
        mp: &Arc<Mountpath>,
        (bucket, key): (&str, &str),
        meta: &ObjectMeta,
        (dirs, guard): (DirSet, Precondition),
        plan: Option<crate::versions::VersionPlan>,
    ) -> Result<(), CommitError> {
        let ikey = keys::object_index_key(bucket, key.as_bytes());
        let bucket_check =
            IndexOp::check(Table::Buckets, bucket.as_bytes().to_vec(), Precondition::Present, Refusal::NoSuchBucket);
        if let Some(mut plan) = plan {
            // A versioned bucket: the replaced version is kept (or dropped) in the same commit.
            let guard = plan.guard(guard);
            let mut ops = vec![bucket_check];
            ops.append(&mut plan.ops);
            ops.push(IndexOp::put(Table::Objects, ikey, meta.encode()).when(guard, Refusal::Condition));
            mp.index.commit(ops, dirs).await?;
            return self.finish_plan(plan).await;
        }
        let op = IndexOp::put(Table::Objects, ikey, meta.encode()).when(guard, Refusal::Condition);
        let previous = mp.index.commit(vec![bucket_check, op], dirs).await?;
        self.release_previous(mp, previous.into_iter().nth(1).and_then(|v| v.into_iter().next())).await;
        Ok(())
    }

    /// Removes the data files of a record that is no longer referenced. Failures leave orphans for
    /// the collector; they never fail the request that already committed.
    pub(crate) async fn release_previous(&self, mp: &Mountpath, previous: Option<fjall::Slice>) {
        let Some(raw) = previous else { return };
        match ObjectMeta::decode(&raw) {
            Ok(old) => self.remove_files(mp, old.data.file_ids()).await,
            Err(e) => {
                tracing::warn!(mountpath = mp.name(), error = %e, "replaced record does not decode")
            }
        }
    }

    /// Unlinks data files the index no longer references.
    pub(crate) async fn remove_files(&self, mp: &Mountpath, ids: impl IntoIterator<Item = ObjectId>) {
        for id in ids {
            if let Err(e) = compio::fs::remove_file(mp.data_path(id)).await
                && e.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(mountpath = mp.name(), id = %id.file_name(), error = %e, "could not remove an unreferenced data file");
            }
        }
    }
}

/// Errors are not Clone (io::Error); a batch failure is reported to each key it covered.
fn clone_err(e: &Error) -> Error {
    match e {
        Error::NoSuchBucket => Error::NoSuchBucket,
        Error::Poisoned { mountpath } => Error::Poisoned { mountpath: mountpath.clone() },
        Error::MountpathFull { mountpath } => Error::MountpathFull { mountpath: mountpath.clone() },
        Error::ShuttingDown => Error::ShuttingDown,
        other => Error::Io(std::io::Error::other(other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::PutOptions;
    use iobuf::IoBuffer;

    /// An If-Match write whose object is replaced after its check but before its commit is
    /// refused as a conflict, and the overtaking write stands.
    #[test]
    fn an_if_match_write_overtaken_after_its_check_is_a_conflict() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&StoreConfig {
            mountpaths: vec![dir.path().join("mp")],
            sync: SyncMode::None,
            index: Default::default(),
            odirect: false,
            faults: None,
        })
        .unwrap();
        let rt = compio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            store.create_bucket("race", "me").await.unwrap();
            let put = |data: &'static [u8]| {
                let store = store.clone();
                async move {
                    let mut w = store.put_writer("race", "k", Some(data.len() as u64), None).unwrap();
                    let mut b = IoBuffer::with_capacity(data.len());
                    b.extend_from_slice(data);
                    w.data().write(b).await.0.unwrap();
                    w.finish(PutOptions::default()).await.unwrap()
                }
            };
            let first = put(b"one").await;
            let condition = WriteCondition::EtagMatches(format!("\"{}\"", first.etag()));
            let mp = store.owner("race", "k").clone();
            let guard = store.write_guard(&mp, "race", "k", &condition).unwrap();
            let second = put(b"two").await;
            let r = store.commit_object(&mp, ("race", "k"), &first, (DirSet::default(), guard), None).await;
            assert!(matches!(r, Err(CommitError::Refused(Refusal::Condition))), "{r:?}");
            assert!(matches!(condition.commit_error(r.unwrap_err()), Error::WriteConflict));
            assert_eq!(store.head_object("race", "k").unwrap().etag(), second.etag());
            // Checked against the new ETag, the same write is refused before anything is sent.
            assert!(matches!(store.write_guard(&mp, "race", "k", &condition), Err(Error::PreconditionFailed)));
        });
    }
}
