//! The per-mountpath index: an fjall database with keyspaces for objects, buckets and uploads,
//! written only by one committer thread per mountpath (group commit, see DESIGN D3).
//!
//! Shards read with cloned keyspace handles (microseconds, from cache). Every write goes through
//! the committer, which makes two things true at once: one durable commit covers every request
//! pending at that moment, and writes of one mountpath are serialised, so conditional writes
//! (`If-None-Match: *`) are atomic and each overwrite learns the exact record it replaced.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;

use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode, Slice};
use futures_channel::oneshot;

use crate::error::{Error, Result};
use crate::limits;

/// Whether acknowledged writes must survive a power cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncMode {
    /// fdatasync the data, fsync its directory, commit the index durably, then answer.
    Always,
    /// Leave everything to the page cache (benchmarks, caches).
    None,
}

/// Which keyspace an operation touches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Table {
    Objects,
    Buckets,
    /// Multipart uploads in progress: `bucket \0 key \0 upload-id`.
    Uploads,
    /// Parts of uploads in progress: `upload-id` then the part number as a big-endian u32.
    Parts,
    /// Versions of objects that are not the current one, and delete markers (D46):
    /// `bucket \0 key \0` then the version stamp inverted (big-endian u128): newest first.
    Versions,
    /// Deletes made while a mountpath of the node was detached: `bucket \0 key` → the epoch
    /// (`u64` little-endian) of the delete, so the mountpath's copy loses when it returns (D24).
    Tombstones,
}

/// Precondition checked by the committer right before an operation is applied.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum Precondition {
    #[default]
    None,
    /// The key must not exist (`If-None-Match: *`).
    Absent,
    /// The key must exist.
    Present,
    /// The key must hold exactly these bytes.
    Equals(Vec<u8>),
}

/// What an operation does to its key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Put(Vec<u8>),
    Remove,
    /// Only the precondition: nothing is written.
    Check,
    /// Removes every key that starts with `key` (an upload's parts).
    RemovePrefix,
}

/// What a precondition that did not hold means, in the domain's words: the request's commit is
/// refused with it, and nothing of the request is applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    NoSuchBucket,
    NoSuchUpload,
    /// A conditional write's condition (`If-None-Match`, `If-Match`, a record read before).
    Condition,
    /// A part a completion uses changed or vanished.
    InvalidPart(u32),
}

/// Why a commit did not apply.
#[derive(Debug)]
pub enum CommitError {
    /// A precondition did not hold: nothing of the request was applied.
    Refused(Refusal),
    /// The commit could not be made (the mountpath is poisoned, the engine stops): whether the
    /// request applied is not known, so what it references must stay.
    Failed(Error),
}

impl From<CommitError> for Error {
    fn from(e: CommitError) -> Error {
        match e {
            CommitError::Refused(Refusal::NoSuchBucket) => Error::NoSuchBucket,
            CommitError::Refused(Refusal::NoSuchUpload) => Error::NoSuchUpload,
            CommitError::Refused(Refusal::Condition) => Error::PreconditionFailed,
            CommitError::Refused(Refusal::InvalidPart(part_number)) => Error::InvalidPart { part_number },
            CommitError::Failed(e) => e,
        }
    }
}

/// One index operation.
#[derive(Clone, Debug)]
pub struct IndexOp {
    pub table: Table,
    pub key: Vec<u8>,
    pub action: Action,
    pub precondition: Precondition,
    /// What it means when the precondition does not hold.
    pub refusal: Refusal,
}

impl IndexOp {
    fn new(table: Table, key: Vec<u8>, action: Action) -> IndexOp {
        IndexOp { table, key, action, precondition: Precondition::None, refusal: Refusal::Condition }
    }

    pub fn put(table: Table, key: Vec<u8>, value: Vec<u8>) -> IndexOp {
        IndexOp::new(table, key, Action::Put(value))
    }

    pub fn remove(table: Table, key: Vec<u8>) -> IndexOp {
        IndexOp::new(table, key, Action::Remove)
    }

    /// Only a precondition, refused with `refusal` when it does not hold.
    pub fn check(table: Table, key: Vec<u8>, precondition: Precondition, refusal: Refusal) -> IndexOp {
        IndexOp::new(table, key, Action::Check).when(precondition, refusal)
    }

    pub fn remove_prefix(table: Table, prefix: Vec<u8>) -> IndexOp {
        IndexOp::new(table, prefix, Action::RemovePrefix)
    }

    /// Applies only if `precondition` holds; refused with `refusal` otherwise.
    pub fn when(mut self, precondition: Precondition, refusal: Refusal) -> IndexOp {
        self.precondition = precondition;
        self.refusal = refusal;
        self
    }

    fn bytes(&self) -> usize {
        self.key.len() + if let Action::Put(v) = &self.action { v.len() } else { 0 }
    }
}

/// Set of fan-out directories whose new entries must be made durable before the commit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DirSet([u64; 4]);

impl DirSet {
    pub fn insert(&mut self, fanout: u8) {
        self.0[(fanout >> 6) as usize] |= 1 << (fanout & 63);
    }

    pub(crate) fn union(&mut self, other: DirSet) {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a |= b;
        }
    }

    fn iter(self) -> impl Iterator<Item = u8> {
        (0..=255u8).filter(move |f| self.0[(f >> 6) as usize] & (1 << (f & 63)) != 0)
    }
}

/// The records an accepted request replaced or removed, one list per operation, in order: at
/// most one record for Put, Remove and Check; every removed record for RemovePrefix.
pub type Previous = Vec<Vec<Slice>>;

/// What this batch has written so far, so later requests in it see earlier ones.
type Overlay = HashMap<(Table, Vec<u8>), Option<Slice>>;
/// The current record of an operation's key, and the records a RemovePrefix will remove.
type Evaluated = (Option<Slice>, Vec<(Slice, Slice)>);

/// Upper bounds of the commit-batch-size histogram (requests per commit).
pub const BATCH_BOUNDS: [u64; 11] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];
/// Upper bounds (seconds) of the commit-latency histogram.
pub const COMMIT_SECONDS_BOUNDS: [f64; 10] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 1.0];

/// Counters the committer keeps for metrics.
#[derive(Default)]
struct CommitCounters {
    commits: std::sync::atomic::AtomicU64,
    requests: std::sync::atomic::AtomicU64,
    batch: [std::sync::atomic::AtomicU64; BATCH_BOUNDS.len()],
    latency: [std::sync::atomic::AtomicU64; COMMIT_SECONDS_BOUNDS.len()],
    latency_sum_us: std::sync::atomic::AtomicU64,
}

/// A snapshot of the committer's counters (histogram buckets are not cumulative).
#[derive(Clone, Debug, Default)]
pub struct CommitStats {
    pub commits: u64,
    pub requests: u64,
    pub batch_buckets: Vec<(u64, u64)>,
    pub latency_buckets: Vec<(f64, u64)>,
    pub latency_sum_us: u64,
}

struct CommitRequest {
    ops: Vec<IndexOp>,
    dirs: DirSet,
    reply: oneshot::Sender<Result<Previous, CommitError>>,
}

/// Handle to one mountpath's index. Cheap to clone; reads run on the caller's thread.
#[derive(Clone)]
pub struct Index {
    db: Database,
    objects: Keyspace,
    buckets: Keyspace,
    uploads: Keyspace,
    parts: Keyspace,
    tombstones: Keyspace,
    versions: Keyspace,
    tx: mpsc::Sender<CommitRequest>,
    poisoned: Arc<AtomicBool>,
    name: Arc<str>,
    counters: Arc<CommitCounters>,
}

/// Tuning of one index (one per drive).
#[derive(Clone, Debug)]
pub struct IndexConfig {
    pub cache_bytes: u64,
    pub worker_threads: usize,
    pub journal_bytes_max: u64,
}

impl Default for IndexConfig {
    fn default() -> IndexConfig {
        IndexConfig { cache_bytes: 64 << 20, worker_threads: 1, journal_bytes_max: 128 << 20 }
    }
}

impl Index {
    /// Opens (or creates) the index under `dir` and starts its committer thread.
    /// `objects_dir` holds the fan-out directories the committer syncs.
    pub fn open(
        dir: &Path,
        objects_dir: &Path,
        sync: SyncMode,
        config: &IndexConfig,
        poisoned: Arc<AtomicBool>,
        name: &str,
        faults: Option<Arc<crate::faults::Faults>>,
    ) -> Result<Index> {
        let db = Database::builder(dir)
            .cache_size(config.cache_bytes)
            .worker_threads(config.worker_threads.max(1))
            .max_journaling_size(config.journal_bytes_max.max(64 << 20))
            // Inline object bodies are mostly incompressible; compressing them in the journal
            // costs the committer CPU for nothing.
            .journal_compression(fjall::CompressionType::None)
            .open()?;
        // Object records carry inline bodies (up to INLINE_BYTES_MAX): kept in blob files, they
        // are not rewritten by every compaction (D20).
        let objects = db.keyspace("objects", || {
            KeyspaceCreateOptions::default().with_kv_separation(Some(fjall::KvSeparationOptions::default()))
        })?;
        if !objects.is_kv_separated() {
            // Created before D20: fjall keeps a keyspace's options; inline bodies stay in the LSM.
            tracing::info!(index = %dir.display(), "object records are not key-value separated (index created before D20)");
        }
        let buckets = db.keyspace("buckets", KeyspaceCreateOptions::default)?;
        let uploads = db.keyspace("uploads", KeyspaceCreateOptions::default)?;
        let parts = db.keyspace("parts", KeyspaceCreateOptions::default)?;
        let tombstones = db.keyspace("tombstones", KeyspaceCreateOptions::default)?;
        // Old versions carry inline bodies as current records do (D20).
        let versions = db.keyspace("versions", || {
            KeyspaceCreateOptions::default().with_kv_separation(Some(fjall::KvSeparationOptions::default()))
        })?;
        let (tx, rx) = mpsc::channel();
        let counters = Arc::new(CommitCounters::default());
        let committer = Committer {
            faults,
            counters: counters.clone(),
            db: db.clone(),
            objects: objects.clone(),
            buckets: buckets.clone(),
            uploads: uploads.clone(),
            parts: parts.clone(),
            tombstones: tombstones.clone(),
            versions: versions.clone(),
            sync,
            objects_dir: objects_dir.to_path_buf(),
            dir_handles: HashMap::new(),
            poisoned: poisoned.clone(),
            name: name.to_owned(),
        };
        thread::Builder::new()
            .name(format!("keel-commit-{}", name.rsplit('/').next().unwrap_or(name)))
            .spawn(move || committer.run(rx))
            .map_err(Error::Io)?;
        Ok(Index {
            db,
            objects,
            buckets,
            uploads,
            parts,
            tombstones,
            versions,
            tx,
            poisoned,
            name: name.into(),
            counters,
        })
    }

    fn keyspace(&self, table: Table) -> &Keyspace {
        match table {
            Table::Objects => &self.objects,
            Table::Buckets => &self.buckets,
            Table::Uploads => &self.uploads,
            Table::Parts => &self.parts,
            Table::Tombstones => &self.tombstones,
            Table::Versions => &self.versions,
        }
    }

    pub fn get(&self, table: Table, key: &[u8]) -> Result<Option<Slice>> {
        Ok(self.keyspace(table).get(key)?)
    }

    /// Records with keys in `start..end`, in key order, at most `limit` of them.
    pub fn scan(&self, table: Table, start: &[u8], end: &[u8], limit: usize) -> Result<Vec<(Slice, Slice)>> {
        let mut out = Vec::new();
        if start >= end || limit == 0 {
            return Ok(out);
        }
        for guard in self.keyspace(table).range(start..end) {
            out.push(guard.into_inner()?);
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    /// An iterator over `start..end` for merged listings.
    pub fn range(&self, table: Table, start: &[u8], end: &[u8]) -> fjall::Iter {
        self.keyspace(table).range(start.to_vec()..end.to_vec())
    }

    /// Every record whose key starts with `prefix`, in key order.
    pub fn scan_prefix(&self, table: Table, prefix: &[u8]) -> Result<Vec<(Slice, Slice)>> {
        let mut out = Vec::new();
        for guard in self.keyspace(table).prefix(prefix) {
            out.push(guard.into_inner()?);
        }
        Ok(out)
    }

    /// Every record of a table (bucket loading at start).
    pub fn all(&self, table: Table) -> Result<Vec<(Slice, Slice)>> {
        let mut out = Vec::new();
        for guard in self.keyspace(table).iter() {
            out.push(guard.into_inner()?);
        }
        Ok(out)
    }

    /// Walks the records of several tables in one consistent snapshot (a multipart completion,
    /// which moves part files from `parts` to `objects` in one batch, is seen whole or not at all).
    pub fn for_each_in_snapshot(
        &self,
        tables: &[Table],
        mut f: impl FnMut(Table, &[u8], &[u8]) -> Result<()>,
    ) -> Result<()> {
        use fjall::Readable;
        let snap = self.db.snapshot();
        for &t in tables {
            for guard in snap.iter(self.keyspace(t)) {
                let (k, v) = guard.into_inner()?;
                f(t, &k, &v)?;
            }
        }
        Ok(())
    }

    /// `commit`, waited for on the calling thread: for work at start, before any runtime runs
    /// (mountpath reconciliation).
    pub fn commit_blocking(&self, ops: Vec<IndexOp>) -> Result<Previous, CommitError> {
        block_on(self.commit(ops, DirSet::default()))
    }

    /// Applies `ops` atomically once `dirs` are durable; resolves after the commit (durable under
    /// `SyncMode::Always`). Returns the records the operations replaced.
    pub async fn commit(&self, ops: Vec<IndexOp>, dirs: DirSet) -> Result<Previous, CommitError> {
        let failed = |e| Err(CommitError::Failed(e));
        if self.poisoned.load(Ordering::Acquire) {
            return failed(Error::Poisoned { mountpath: self.name.to_string() });
        }
        let (reply, rx) = oneshot::channel();
        if self.tx.send(CommitRequest { ops, dirs, reply }).is_err() {
            return failed(Error::ShuttingDown);
        }
        rx.await.unwrap_or(Err(CommitError::Failed(Error::ShuttingDown)))
    }

    /// The committer's counters (commits, batch sizes, latency).
    pub fn stats(&self) -> CommitStats {
        let c = &self.counters;
        CommitStats {
            commits: c.commits.load(Ordering::Relaxed),
            requests: c.requests.load(Ordering::Relaxed),
            batch_buckets: BATCH_BOUNDS.iter().zip(&c.batch).map(|(b, n)| (*b, n.load(Ordering::Relaxed))).collect(),
            latency_buckets: COMMIT_SECONDS_BOUNDS
                .iter()
                .zip(&c.latency)
                .map(|(b, n)| (*b, n.load(Ordering::Relaxed)))
                .collect(),
            latency_sum_us: c.latency_sum_us.load(Ordering::Relaxed),
        }
    }

    /// Makes everything committed so far durable (graceful shutdown).
    pub fn persist(&self) -> Result<()> {
        self.db.persist(PersistMode::SyncAll)?;
        Ok(())
    }
}

/// Runs a future to completion on this thread, parking between polls (the committer it waits
/// for is another thread).
fn block_on<F: std::future::Future>(fut: F) -> F::Output {
    struct Unpark(thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = std::task::Waker::from(Arc::new(Unpark(thread::current())));
    let mut cx = std::task::Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    loop {
        if let std::task::Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        thread::park();
    }
}

struct Committer {
    db: Database,
    objects: Keyspace,
    buckets: Keyspace,
    uploads: Keyspace,
    parts: Keyspace,
    tombstones: Keyspace,
    versions: Keyspace,
    sync: SyncMode,
    objects_dir: PathBuf,
    dir_handles: HashMap<u8, std::fs::File>,
    poisoned: Arc<AtomicBool>,
    name: String,
    counters: Arc<CommitCounters>,
    faults: Option<Arc<crate::faults::Faults>>,
}

impl Committer {
    fn keyspace(&self, table: Table) -> &Keyspace {
        match table {
            Table::Objects => &self.objects,
            Table::Buckets => &self.buckets,
            Table::Uploads => &self.uploads,
            Table::Parts => &self.parts,
            Table::Tombstones => &self.tombstones,
            Table::Versions => &self.versions,
        }
    }

    fn run(mut self, rx: mpsc::Receiver<CommitRequest>) {
        // Ends when every Index handle (and so every sender) is gone.
        while let Ok(first) = rx.recv() {
            let mut batch = vec![first];
            let mut ops = batch[0].ops.len();
            let mut bytes: usize = batch[0].ops.iter().map(IndexOp::bytes).sum();
            while ops < limits::COMMIT_BATCH_OPS_MAX && bytes < limits::COMMIT_BATCH_BYTES_MAX {
                let Ok(next) = rx.try_recv() else { break };
                ops += next.ops.len();
                bytes += next.ops.iter().map(IndexOp::bytes).sum::<usize>();
                batch.push(next);
            }
            let requests = batch.len() as u64;
            let started = std::time::Instant::now();
            self.commit_batch(batch);
            let secs = started.elapsed();
            let c = &self.counters;
            c.commits.fetch_add(1, Ordering::Relaxed);
            c.requests.fetch_add(requests, Ordering::Relaxed);
            if let Some(i) = BATCH_BOUNDS.iter().position(|b| requests <= *b) {
                c.batch[i].fetch_add(1, Ordering::Relaxed);
            }
            if let Some(i) = COMMIT_SECONDS_BOUNDS.iter().position(|b| secs.as_secs_f64() <= *b) {
                c.latency[i].fetch_add(1, Ordering::Relaxed);
            }
            c.latency_sum_us.fetch_add(secs.as_micros() as u64, Ordering::Relaxed);
        }
        tracing::debug!(mountpath = %self.name, "committer stopped");
    }

    /// Answers every request of a batch that cannot be committed: the mountpath is poisoned.
    fn fail_batch(&self, batch: Vec<CommitRequest>) {
        for req in batch {
            let _ = req.reply.send(Err(CommitError::Failed(Error::Poisoned { mountpath: self.name.clone() })));
        }
    }

    fn commit_batch(&mut self, batch: Vec<CommitRequest>) {
        if self.poisoned.load(Ordering::Acquire) {
            return self.fail_batch(batch);
        }
        if let Err(e) = self.sync_dirs(&batch) {
            self.poison(&e);
            return self.fail_batch(batch);
        }
        // Evaluate preconditions in arrival order against the index plus what this batch already
        // wrote, so two requests in one batch see each other.
        let mut overlay: Overlay = HashMap::new();
        let mut results: Vec<Result<Previous, CommitError>> = Vec::with_capacity(batch.len());
        let mut write = self.db.batch();
        let mut writes = 0usize;
        for req in &batch {
            let evaluated = match self.evaluate(&req.ops, &overlay) {
                Ok(e) => e,
                Err(e) => {
                    results.push(Err(e));
                    continue;
                }
            };
            for (op, (_, removed)) in req.ops.iter().zip(&evaluated) {
                let ks = self.keyspace(op.table);
                match &op.action {
                    Action::Put(v) => {
                        write.insert(ks, op.key.as_slice(), v.as_slice());
                        overlay.insert((op.table, op.key.clone()), Some(Slice::from(v.as_slice())));
                        writes += 1;
                    }
                    Action::Remove => {
                        write.remove(ks, op.key.as_slice());
                        overlay.insert((op.table, op.key.clone()), None);
                        writes += 1;
                    }
                    Action::Check => {}
                    Action::RemovePrefix => {
                        for (k, _) in removed {
                            write.remove(ks, k.to_vec());
                            overlay.insert((op.table, k.to_vec()), None);
                            writes += 1;
                        }
                    }
                }
            }
            let previous = evaluated
                .into_iter()
                .map(|(current, removed)| match current {
                    Some(v) => vec![v],
                    None => removed.into_iter().map(|(_, v)| v).collect(),
                })
                .collect();
            results.push(Ok(previous));
        }
        if writes > 0 {
            if self.faults.as_ref().is_some_and(|f| f.on_commit()) {
                self.poison(&Error::Io(crate::faults::injected()));
                return self.fail_batch(batch);
            }
            let committed = write.commit().and_then(|()| match self.sync {
                SyncMode::Always => self.db.persist(PersistMode::SyncData),
                SyncMode::None => Ok(()),
            });
            if let Err(e) = committed {
                self.poison(&Error::from(e));
                return self.fail_batch(batch);
            }
        }
        for (req, result) in batch.into_iter().zip(results) {
            // A requester that went away (connection closed) is fine: its write stands.
            let _ = req.reply.send(result);
        }
    }

    /// Checks every precondition of a request and collects what its operations replace: the
    /// current record of each key, and the records under the prefix of a RemovePrefix.
    fn evaluate(&self, ops: &[IndexOp], overlay: &Overlay) -> Result<Vec<Evaluated>, CommitError> {
        let mut evaluated = Vec::with_capacity(ops.len());
        for op in ops {
            if op.action == Action::RemovePrefix {
                evaluated
                    .push((None, self.scan_with_overlay(op.table, &op.key, overlay).map_err(CommitError::Failed)?));
                continue;
            }
            let current = match overlay.get(&(op.table, op.key.clone())) {
                Some(v) => v.clone(),
                None => self.keyspace(op.table).get(&op.key).map_err(|e| CommitError::Failed(e.into()))?,
            };
            let holds = match (&op.precondition, &current) {
                (Precondition::None, _) => true,
                (Precondition::Absent, c) => c.is_none(),
                (Precondition::Present, c) => c.is_some(),
                (Precondition::Equals(want), Some(c)) => c.as_ref() == want.as_slice(),
                (Precondition::Equals(_), None) => false,
            };
            if !holds {
                return Err(CommitError::Refused(op.refusal));
            }
            evaluated.push((current, Vec::new()));
        }
        Ok(evaluated)
    }

    /// The records under `prefix` as this batch sees them: the index plus the batch's own writes.
    fn scan_with_overlay(&self, table: Table, prefix: &[u8], overlay: &Overlay) -> Result<Vec<(Slice, Slice)>> {
        let mut found: std::collections::BTreeMap<Vec<u8>, Slice> = std::collections::BTreeMap::new();
        for guard in self.keyspace(table).prefix(prefix) {
            let (k, v) = guard.into_inner()?;
            found.insert(k.to_vec(), v);
        }
        for ((t, k), v) in overlay {
            if *t == table && k.starts_with(prefix) {
                match v {
                    Some(v) => found.insert(k.clone(), v.clone()),
                    None => found.remove(k),
                };
            }
        }
        Ok(found.into_iter().map(|(k, v)| (Slice::from(k), v)).collect())
    }

    /// fsyncs each fan-out directory that gained entries, once per batch.
    fn sync_dirs(&mut self, batch: &[CommitRequest]) -> std::io::Result<()> {
        if self.sync == SyncMode::None {
            return Ok(());
        }
        let mut dirs = DirSet::default();
        for req in batch {
            dirs.union(req.dirs);
        }
        for f in dirs.iter() {
            let handle = match self.dir_handles.get(&f) {
                Some(h) => h,
                None => {
                    let h = std::fs::File::open(self.objects_dir.join(format!("{f:02x}")))?;
                    self.dir_handles.entry(f).or_insert(h)
                }
            };
            handle.sync_all()?;
        }
        Ok(())
    }

    fn poison(&self, e: &dyn std::fmt::Display) {
        tracing::error!(mountpath = %self.name, error = %e, "index commit failed: mountpath poisoned");
        self.poisoned.store(true, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dirset() {
        let mut d = DirSet::default();
        d.insert(0);
        d.insert(63);
        d.insert(64);
        d.insert(255);
        assert_eq!(d.iter().collect::<Vec<_>>(), vec![0, 63, 64, 255]);
    }

    /// Object records with inline bodies live in blob files (D20): overwrites, removals, flushes,
    /// a major compaction (which collects stale blobs) and a reopen keep exactly the latest
    /// values, in key order.
    #[test]
    fn separated_records_survive_overwrite_compaction_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let open = || {
            Index::open(
                &dir.path().join("index"),
                dir.path(),
                SyncMode::None,
                &IndexConfig::default(),
                Arc::new(AtomicBool::new(false)),
                "test",
                None,
            )
            .unwrap()
        };
        let value = |i: u32, round: u8| -> Vec<u8> {
            let len = [16usize, 1000, 1100, 4096, 9000][i as usize % 5];
            (0..len).map(|j| (j as u32 ^ i) as u8 ^ round).collect()
        };
        let key = |i: u32| format!("k{i:05}").into_bytes();
        let commit = |index: &Index, ops: Vec<IndexOp>| {
            compio::runtime::Runtime::new().unwrap().block_on(index.commit(ops, DirSet::default())).unwrap();
        };
        let index = open();
        for round in 0..3u8 {
            let ops = (0..600).map(|i| IndexOp::put(Table::Objects, key(i), value(i, round))).collect();
            commit(&index, ops);
            index.objects.rotate_memtable_and_wait().unwrap();
        }
        commit(&index, (0..600).step_by(2).map(|i| IndexOp::remove(Table::Objects, key(i))).collect());
        index.objects.rotate_memtable_and_wait().unwrap();
        assert!(index.objects.blob_file_count() > 0, "large records are separated");
        index.objects.major_compact().unwrap();
        let check = |index: &Index| {
            let all = index.scan(Table::Objects, b"", b"\xff", usize::MAX).unwrap();
            let want: Vec<(Vec<u8>, Vec<u8>)> = (1..600).step_by(2).map(|i| (key(i), value(i, 2))).collect();
            let got: Vec<(Vec<u8>, Vec<u8>)> = all.iter().map(|(k, v)| (k.to_vec(), v.to_vec())).collect();
            assert_eq!(got.len(), want.len());
            assert!(got == want, "scan returned other records than the latest ones");
            assert_eq!(index.get(Table::Objects, &key(7)).unwrap().as_deref(), Some(&value(7, 2)[..]));
            assert_eq!(index.get(Table::Objects, &key(8)).unwrap(), None);
        };
        check(&index);
        drop(index);
        check(&open());
    }
}
