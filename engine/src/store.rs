//! The store: mountpaths, buckets and the object operations the server calls.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;

use crate::error::{Error, Result};
use crate::index::{DirSet, IndexConfig, IndexOp, Precondition, SyncMode, Table};
use crate::keys;
use crate::limits;
use crate::meta::{BucketMeta, ObjectId, ObjectMeta};
use crate::mountpath::{self, Mountpath};
use crate::placement;

/// How to open a store.
#[derive(Clone, Debug)]
pub struct StoreConfig {
    pub mountpaths: Vec<PathBuf>,
    pub sync: SyncMode,
    pub index: IndexConfig,
}

/// The engine's entry point, shared by every shard.
pub struct Store {
    mountpaths: Vec<Arc<Mountpath>>,
    mountpath_ids: Vec<u64>,
    buckets: ArcSwap<BTreeMap<String, BucketMeta>>,
    /// Serialises bucket creation and deletion (rare; never held across an await).
    bucket_writes: Mutex<()>,
    sync: SyncMode,
    id_high: u64,
    id_counter: AtomicU64,
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl Store {
    /// Opens every mountpath (blocking; call before the shards start).
    pub fn open(config: &StoreConfig) -> Result<Arc<Store>> {
        assert!(!config.mountpaths.is_empty(), "a store needs at least one mountpath");
        if config.mountpaths.len() > limits::MOUNTPATHS_MAX {
            return Err(Error::Io(std::io::Error::other("too many mountpaths")));
        }
        let mut mountpaths = Vec::with_capacity(config.mountpaths.len());
        for root in &config.mountpaths {
            let mp = Mountpath::open(root, config.sync, &config.index)?;
            if mountpaths.iter().any(|m: &Arc<Mountpath>| m.id == mp.id || m.root() == mp.root()) {
                return Err(Error::Io(std::io::Error::other(format!(
                    "mountpath {} is given twice (or is a copy of another)",
                    mp.name()
                ))));
            }
            mountpaths.push(Arc::new(mp));
        }
        let mountpath_ids = mountpaths.iter().map(|m| m.id).collect();
        // Buckets live on every mountpath; take the union and repair mountpaths added later.
        let mut buckets = BTreeMap::new();
        for mp in &mountpaths {
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
            id_high: mountpath::random_u64() ^ now_ms().rotate_left(32),
            id_counter: AtomicU64::new(0),
        };
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

    /// The mountpath that owns `bucket/key`.
    pub fn owner(&self, bucket: &str, key: &str) -> &Arc<Mountpath> {
        &self.mountpaths[placement::owner(&self.mountpath_ids, bucket, key.as_bytes())]
    }

    // ---- buckets ----

    pub fn list_buckets(&self) -> Vec<(String, BucketMeta)> {
        self.buckets.load().iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    pub fn bucket(&self, name: &str) -> Result<BucketMeta> {
        self.buckets.load().get(name).cloned().ok_or(Error::NoSuchBucket)
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
        keys::validate_bucket_name(name)?;
        let meta = BucketMeta { created_ms: now_ms(), owner: owner.to_owned(), ..Default::default() };
        {
            let _guard = self.bucket_writes.lock().unwrap_or_else(|p| p.into_inner());
            if self.bucket_exists(name) {
                return Err(Error::BucketExists);
            }
            self.swap_buckets(|m| {
                m.insert(name.to_owned(), meta.clone());
            });
        }
        if let Err(e) = self.write_bucket_everywhere(name, Some(&meta)).await {
            self.swap_buckets(|m| {
                m.remove(name);
            });
            return Err(e);
        }
        Ok(meta)
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
            let _guard = self.bucket_writes.lock().unwrap_or_else(|p| p.into_inner());
            let mut meta = self.bucket(name)?;
            f(&mut meta);
            self.swap_buckets(|m| {
                m.insert(name.to_owned(), meta.clone());
            });
            meta
        };
        self.write_bucket_everywhere(name, Some(&meta)).await?;
        Ok(meta)
    }

    pub async fn delete_bucket(&self, name: &str) -> Result<()> {
        let removed = {
            let _guard = self.bucket_writes.lock().unwrap_or_else(|p| p.into_inner());
            let meta = self.bucket(name)?;
            if !self.bucket_is_empty(name)? {
                return Err(Error::BucketNotEmpty);
            }
            self.swap_buckets(|m| {
                m.remove(name);
            });
            meta
        };
        if let Err(e) = self.write_bucket_everywhere(name, None).await {
            self.swap_buckets(|m| {
                m.insert(name.to_owned(), removed);
            });
            return Err(e);
        }
        Ok(())
    }

    fn bucket_is_empty(&self, name: &str) -> Result<bool> {
        let start = keys::bucket_range_start(name, b"");
        let end = keys::bucket_range_end(name);
        for mp in &self.mountpaths {
            if !mp.index.scan(Table::Objects, &start, &end, 1)?.is_empty() {
                return Ok(false);
            }
            if !mp.index.scan(Table::Uploads, &start, &end, 1)?.is_empty() {
                return Ok(false);
            }
        }
        Ok(true)
    }

    // ---- objects ----

    /// Looks an object up (HEAD, and the first step of GET).
    pub fn head_object(&self, bucket: &str, key: &str) -> Result<ObjectMeta> {
        self.bucket(bucket)?;
        keys::validate_key(key)?;
        let mp = self.owner(bucket, key);
        mp.check()?;
        let raw = mp.index.get(Table::Objects, &keys::object_index_key(bucket, key.as_bytes()))?;
        match raw {
            Some(v) => ObjectMeta::decode(&v),
            None => Err(Error::NoSuchObject),
        }
    }

    /// Removes an object; a missing object is not an error (S3 answers 204 either way).
    pub async fn delete_object(&self, bucket: &str, key: &str) -> Result<()> {
        self.bucket(bucket)?;
        keys::validate_key(key)?;
        let mp = self.owner(bucket, key);
        mp.check()?;
        let op = IndexOp::remove(Table::Objects, keys::object_index_key(bucket, key.as_bytes()));
        let previous = mp.index.commit(vec![op], DirSet::default()).await?;
        self.release_previous(mp, previous.into_iter().next().flatten()).await;
        Ok(())
    }

    /// Commits an object record; the record it replaces (if any) has its data files removed.
    pub(crate) async fn commit_object(
        &self,
        mp: &Arc<Mountpath>,
        bucket: &str,
        key: &str,
        meta: &ObjectMeta,
        dirs: DirSet,
        if_absent: bool,
    ) -> Result<()> {
        meta.check()?;
        let mut op = IndexOp::put(Table::Objects, keys::object_index_key(bucket, key.as_bytes()), meta.encode());
        if if_absent {
            op = op.when(Precondition::Absent);
        }
        let previous = mp.index.commit(vec![op], dirs).await?;
        self.release_previous(mp, previous.into_iter().next().flatten()).await;
        Ok(())
    }

    /// Removes the data files of a record that is no longer referenced. Failures leave orphans for
    /// the collector; they never fail the request that already committed.
    pub(crate) async fn release_previous(&self, mp: &Mountpath, previous: Option<fjall::Slice>) {
        let Some(raw) = previous else { return };
        match ObjectMeta::decode(&raw) {
            Ok(old) => {
                for id in old.data.file_ids() {
                    if let Err(e) = compio::fs::remove_file(mp.data_path(id)).await
                        && e.kind() != std::io::ErrorKind::NotFound
                    {
                        tracing::warn!(mountpath = mp.name(), id = %id.file_name(), error = %e, "could not remove replaced data file");
                    }
                }
            }
            Err(e) => {
                tracing::warn!(mountpath = mp.name(), error = %e, "replaced record does not decode")
            }
        }
    }
}
