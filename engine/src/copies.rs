//! Copies of each object on distinct mountpaths (issue 15, AIStore's n-way mirror; D36).
//!
//! A bucket wants `copies` copies (its prop, else the node's `--copies`), at most one per
//! mountpath. The holders of `bucket/key` are the first healthy mountpaths of its HRW order
//! (`placement::order`): the owner first, then the next. Every holder keeps the *same record*
//! (byte for byte) and data files under the *same ids* as the first: a copy is recognised by
//! comparing records, and no mapping between copies is kept anywhere.
//!
//! - A PUT streams its body into every holder's file (`DataWriter` mirrors), syncs them all, and
//!   commits the record on each, the first holder first, under a per-key lock that every write,
//!   delete and repair of a copies bucket takes: the holders see a key's changes in one order.
//! - A read takes the newest record (modification time, then HRW order) among the healthy
//!   mountpaths; should opening its files fail, or their checksum not match, another holder of
//!   the same record serves the read and the bad copy is reported for repair.
//! - Repair (`repair_pass`, run by the server's repair thread; `keel stat` counts only): every key
//!   of a copies bucket whose newest record is on fewer healthy mountpaths than wanted is copied,
//!   from a copy whose checksums verify, to the holders that lack it. A mountpath poisoned or
//!   detached is skipped, so its keys get copies on the next mountpath of their order.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};
use crate::index::{CommitError, DirSet, IndexOp, Precondition, Refusal, SyncMode, Table};
use crate::keys;
use crate::meta::{BucketMeta, ObjectMeta};
use crate::mountpath::Mountpath;
use crate::object::Located;
use crate::placement;
use crate::store::Store;

/// "Not counted yet" in the under-replicated gauge.
const UNKNOWN: u64 = u64::MAX;

/// How long a key-lock waiter sleeps between tries (same-key writes only ever wait).
const LOCK_POLL: std::time::Duration = std::time::Duration::from_micros(200);

/// The store's copies state.
pub(crate) struct Copies {
    default: AtomicU8,
    locks: Mutex<HashSet<u64>>,
    under_replicated: AtomicU64,
    repaired_objects: AtomicU64,
    repaired_bytes: AtomicU64,
    passes: AtomicU64,
    pass_asked: AtomicBool,
    /// Reads compare every healthy mountpath's record (the newest wins) instead of taking the
    /// first holder's: on while a mountpath that failed may come back with copies that missed
    /// writes (marked by `UNCLEAN` files), until a repair pass has removed them.
    full_scan: AtomicBool,
    /// Mountpaths that failed (this run or one before it, as `UNCLEAN` records them): their
    /// records lose ties with the others'.
    failed: Mutex<HashSet<u64>>,
    /// How many mountpaths had failed when a repair pass last left every object with all its
    /// copies on healthy ones (failures since then each cost a key at most one copy).
    whole_with_failed: std::sync::atomic::AtomicUsize,
    pub(crate) suspects: Arc<Suspects>,
}

/// A file in a healthy mountpath's root: a mountpath of this node failed while copies were in
/// use, and its copies may be older than the others' when it returns.
const UNCLEAN: &str = "copies-unclean";

impl Default for Copies {
    fn default() -> Copies {
        Copies {
            default: AtomicU8::new(1),
            locks: Mutex::new(HashSet::new()),
            under_replicated: AtomicU64::new(UNKNOWN),
            repaired_objects: AtomicU64::new(0),
            repaired_bytes: AtomicU64::new(0),
            passes: AtomicU64::new(0),
            pass_asked: AtomicBool::new(false),
            full_scan: AtomicBool::new(false),
            failed: Mutex::new(HashSet::new()),
            whole_with_failed: std::sync::atomic::AtomicUsize::new(0),
            suspects: Arc::new(Suspects::default()),
        }
    }
}

/// Keys whose copy failed a read (missing file, I/O error, checksum mismatch): repaired first.
#[derive(Default)]
pub struct Suspects {
    keys: Mutex<Vec<(String, String)>>,
    wake: AtomicBool,
}

impl Suspects {
    pub(crate) fn report(&self, bucket: &str, key: &str) {
        let mut k = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        if k.len() < 10_000 {
            k.push((bucket.to_owned(), key.to_owned()));
        }
        self.wake.store(true, Ordering::Release);
    }
}

/// Held while a key's copies change; released on drop.
pub struct KeyLock<'a> {
    copies: &'a Copies,
    keys: Vec<u64>,
}

impl Drop for KeyLock<'_> {
    fn drop(&mut self) {
        let mut set = self.copies.locks.lock().unwrap_or_else(|p| p.into_inner());
        for k in &self.keys {
            set.remove(k);
        }
    }
}

/// The copies gauges (`/metrics`, `keel stat`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CopiesReport {
    /// Objects with fewer copies than their bucket wants, as the last pass found them (`None`
    /// before the first pass ends).
    pub under_replicated: Option<u64>,
    pub repaired_objects: u64,
    pub repaired_bytes: u64,
    pub passes: u64,
}

/// What one repair pass found and did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RepairReport {
    pub examined: u64,
    /// Short of copies when examined.
    pub under_replicated: u64,
    pub repaired: u64,
    pub bytes: u64,
    /// Still short after the pass (no healthy mountpath to copy to, or every copy bad).
    pub left: u64,
}

/// A key's newest record and where it lies.
pub(crate) struct Newest {
    pub(crate) meta: ObjectMeta,
    raw: Vec<u8>,
    pub(crate) mps: Vec<Arc<Mountpath>>,
    /// Other (older) records of the key, and where.
    stale: Vec<(Arc<Mountpath>, Vec<u8>)>,
}

/// What repairing one key came to.
enum KeyState {
    Fine,
    /// Was short of copies; now has them (bytes copied).
    Repaired(u64),
    /// Had enough copies, some moved onto holders that lacked one (bytes copied).
    Moved(u64),
    Short,
}

impl Store {
    /// Sets the node's default number of copies (`--copies`; buckets may override).
    pub fn set_default_copies(&self, n: u8) {
        self.copies.default.store(n.max(1), Ordering::Relaxed);
    }

    pub fn default_copies(&self) -> u8 {
        self.copies.default.load(Ordering::Relaxed)
    }

    /// Copies go to distinct nodes of a cluster (DESIGN D38), not to this node's mountpaths:
    /// every bucket keeps one copy here, whatever its `copies` prop says.
    pub fn set_copies_across_nodes(&self) {
        self.copies.default.store(0, Ordering::Relaxed);
    }

    /// How many copies a bucket's objects get here: its prop or the node's default, at most one
    /// per mountpath (one in a cluster, where copies go to distinct nodes).
    pub fn copies_of(&self, meta: &BucketMeta) -> usize {
        if self.default_copies() == 0 {
            return 1;
        }
        let n = if meta.copies > 0 { meta.copies } else { self.default_copies() };
        usize::from(n).clamp(1, self.mountpaths().len())
    }

    pub(crate) fn wanted_copies(&self, bucket: &str) -> usize {
        self.with_bucket(bucket, |m| self.copies_of(m)).unwrap_or(1)
    }

    /// The first `n` healthy mountpaths of `bucket/key`'s HRW order. Fewer healthy than `n` is
    /// an error: a write must not be acknowledged with fewer copies than wanted.
    pub(crate) fn holders(&self, bucket: &str, key: &str, n: usize) -> Result<Vec<Arc<Mountpath>>> {
        let mut out = Vec::with_capacity(n);
        let mut sick = None;
        for i in placement::order(self.mountpath_ids(), bucket, key.as_bytes()) {
            let mp = &self.mountpaths()[i];
            if mp.is_poisoned() {
                sick.get_or_insert_with(|| mp.name().to_owned());
                continue;
            }
            out.push(mp.clone());
            if out.len() == n {
                if sick.is_some() {
                    self.record_failures();
                }
                return Ok(out);
            }
        }
        Err(Error::Poisoned { mountpath: sick.unwrap_or_default() })
    }

    /// Locks `bucket/key`s against other writes, deletes and repairs of the same keys (copies
    /// buckets only), in one order so that two batches never wait on each other.
    pub async fn lock_keys(&self, bucket: &str, keys_in: &[&str]) -> KeyLock<'_> {
        let mut hashes: Vec<u64> =
            keys_in.iter().map(|k| xxhash_rust::xxh3::xxh3_64(&keys::object_index_key(bucket, k.as_bytes()))).collect();
        hashes.sort_unstable();
        hashes.dedup();
        let mut lock = KeyLock { copies: &self.copies, keys: Vec::with_capacity(hashes.len()) };
        for h in hashes {
            loop {
                let got = self.copies.locks.lock().unwrap_or_else(|p| p.into_inner()).insert(h);
                if got {
                    lock.keys.push(h);
                    break;
                }
                compio::time::sleep(LOCK_POLL).await;
            }
        }
        lock
    }

    /// Marks, at open, that a mountpath failed in an earlier run (reads compare every copy
    /// until a repair pass has cleaned up).
    pub(crate) fn load_unclean(&self) {
        let mut failed = self.copies.failed.lock().unwrap_or_else(|p| p.into_inner());
        for mp in self.mountpaths() {
            let Ok(text) = std::fs::read_to_string(mp.root().join(UNCLEAN)) else { continue };
            self.copies.full_scan.store(true, Ordering::Release);
            failed.extend(text.lines().filter_map(|l| u64::from_str_radix(l.trim(), 16).ok()));
        }
        if self.copies.full_scan.load(Ordering::Acquire) {
            tracing::warn!(
                "copies: a mountpath failed in an earlier run; reads compare every copy until the repair has passed"
            );
        }
    }

    pub fn failed_mountpaths(&self) -> usize {
        self.mountpaths().iter().filter(|m| m.is_poisoned()).count()
    }

    /// Whether every key of a bucket wanting `copies` still has one on a healthy mountpath: fewer
    /// mountpaths failed since the last whole repair than it has copies.
    pub(crate) fn copies_cover_failures(&self, copies: usize) -> bool {
        let since = self.failed_mountpaths().saturating_sub(self.copies.whole_with_failed.load(Ordering::Acquire));
        copies > 1 && since < copies
    }

    /// Whether any bucket here wants more than one copy.
    pub fn copies_in_use(&self) -> bool {
        self.default_copies() > 1 || self.list_buckets().iter().any(|(_, m)| self.copies_of(m) > 1)
    }

    /// Records the failed mountpaths not recorded yet, durably (`UNCLEAN` in every healthy
    /// mountpath, naming them): from then on, across restarts, reads compare every copy and a
    /// record on a failed mountpath loses ties, until a repair pass finds every member present
    /// and healthy. Called before any change that skips a failed mountpath (a write to the next
    /// holders, a delete or ACL change that cannot reach it) and by the repair thread. Blocking,
    /// once per failure.
    pub fn record_failures(&self) {
        let text = {
            let mut failed = self.copies.failed.lock().unwrap_or_else(|p| p.into_inner());
            let before = failed.len();
            failed.extend(self.mountpaths().iter().filter(|m| m.is_poisoned()).map(|m| m.id));
            if failed.len() == before {
                return;
            }
            failed.iter().map(|id| format!("{id:016x}\n")).collect::<String>()
        };
        self.copies.full_scan.store(true, Ordering::Release);
        for mp in self.mountpaths().iter().filter(|m| !m.is_poisoned()) {
            let path = mp.root().join(UNCLEAN);
            let written = std::fs::write(&path, text.as_bytes())
                .and_then(|()| std::fs::File::open(&path)?.sync_all())
                .and_then(|()| std::fs::File::open(mp.root())?.sync_all());
            if let Err(e) = written {
                tracing::warn!(mountpath = mp.name(), error = %e, "copies: cannot record a failed mountpath");
            }
        }
    }

    /// After a repair pass that left nothing short: with every member healthy and present, the
    /// copies agree again and reads take the first holder's.
    fn clean_if_whole(&self, report: &RepairReport) {
        if report.left > 0
            || self.tombstones
            || self.mountpaths().iter().any(|m| m.is_poisoned())
            || !self.copies.full_scan.load(Ordering::Acquire)
        {
            return;
        }
        for mp in self.mountpaths() {
            let _ = std::fs::remove_file(mp.root().join(UNCLEAN));
        }
        self.copies.failed.lock().unwrap_or_else(|p| p.into_inner()).clear();
        self.copies.full_scan.store(false, Ordering::Release);
    }

    /// `bucket/key`'s record for reading: the first healthy mountpath of its order holding one
    /// (every write reaches the first healthy holders, so that is the newest), or while a failed
    /// mountpath may hold copies that missed writes, the newest among all. Later mountpaths of
    /// the order are the fallbacks (each checked to hold the same record before it is used).
    pub(crate) fn locate_copies(&self, bucket: &str, key: &str) -> Result<Located> {
        if !self.copies.full_scan.load(Ordering::Acquire) {
            let ikey = keys::object_index_key(bucket, key.as_bytes());
            let mut sick = None;
            let mut found: Option<(Arc<Mountpath>, ObjectMeta)> = None;
            let mut others = Vec::new();
            for i in placement::order(self.mountpath_ids(), bucket, key.as_bytes()) {
                let mp = &self.mountpaths()[i];
                if mp.is_poisoned() {
                    sick.get_or_insert_with(|| mp.name().to_owned());
                    continue;
                }
                if found.is_some() {
                    others.push(mp.clone());
                } else if let Some(v) = mp.index.get(Table::Objects, &ikey)? {
                    found = Some((mp.clone(), ObjectMeta::decode(&v)?));
                }
            }
            let Some((mp, meta)) = found else {
                return Err(match sick {
                    Some(mountpath) => Error::Poisoned { mountpath },
                    None => Error::NoSuchObject,
                });
            };
            let suspects = (self.copies.suspects.clone(), bucket.to_owned(), key.to_owned());
            return Ok(Located::with_copies(meta, mp, others, suspects, true));
        }
        let newest = self.newest(bucket, key)?;
        let mut mps = newest.mps.into_iter();
        let first = mps.next().ok_or(Error::NoSuchObject)?;
        Ok(Located::with_copies(
            newest.meta,
            first,
            mps.collect(),
            (self.copies.suspects.clone(), bucket.to_owned(), key.to_owned()),
            false,
        ))
    }

    /// The newest record of `bucket/key` among the healthy mountpaths (a copy that missed a
    /// write while its drive was away is older and never wins), as stored, and the mountpaths
    /// holding exactly it (the first in HRW order first).
    pub(crate) fn newest(&self, bucket: &str, key: &str) -> Result<Newest> {
        let ikey = keys::object_index_key(bucket, key.as_bytes());
        let order = placement::order(self.mountpath_ids(), bucket, key.as_bytes());
        let mut found: Vec<(usize, Vec<u8>, u64)> = Vec::new();
        let mut sick = None;
        for i in order {
            let mp = &self.mountpaths()[i];
            if mp.is_poisoned() {
                sick.get_or_insert_with(|| mp.name().to_owned());
                continue;
            }
            if let Some(v) = mp.index.get(Table::Objects, &ikey)? {
                let mtime = ObjectMeta::decode_summary(&v)?.1;
                found.push((i, v.to_vec(), mtime));
            }
        }
        // The newest by modification time; among equal times (an ACL change keeps it; a remote's
        // times have whole seconds): a record on a mountpath that never failed (one that was out
        // missed the change), then the one more mountpaths hold, then the later run's, then the
        // first in HRW order. Known gap: a version counter in the record would order
        // same-millisecond changes exactly.
        let failed = self.copies.failed.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let rank = |j: usize| {
            let (i, raw, mtime) = &found[j];
            let sound = !failed.contains(&self.mountpaths()[*i].id);
            let held = found.iter().filter(|(_, v, _)| v == raw).count();
            let epoch = ObjectMeta::decode_epoch(raw).unwrap_or(0);
            (*mtime, sound, held, epoch, std::cmp::Reverse(j))
        };
        let Some(best) = (0..found.len()).max_by_key(|j| rank(*j)) else {
            return Err(match sick {
                Some(mountpath) => Error::Poisoned { mountpath },
                None => Error::NoSuchObject,
            });
        };
        let (i, raw, _) = &found[best];
        let mut mps = vec![self.mountpaths()[*i].clone()];
        mps.extend(found.iter().filter(|(j, v, _)| j != i && v == raw).map(|(j, _, _)| self.mountpaths()[*j].clone()));
        let stale = found
            .iter()
            .filter(|(_, v, _)| v != raw)
            .map(|(j, v, _)| (self.mountpaths()[*j].clone(), v.clone()))
            .collect();
        Ok(Newest { meta: ObjectMeta::decode(raw)?, raw: raw.clone(), mps, stale })
    }

    /// Commits `raw` (a record the first holder committed) on another holder, replacing what it
    /// held there (its files are removed), with `extra` ops in the same commit (after the put).
    /// Call under the key's lock.
    pub(crate) async fn commit_copy(
        &self,
        mp: &Arc<Mountpath>,
        (bucket, key): (&str, &str),
        raw: Vec<u8>,
        (dirs, guard): (DirSet, Precondition),
        extra: Vec<IndexOp>,
    ) -> Result<(), CommitError> {
        let ikey = keys::object_index_key(bucket, key.as_bytes());
        let bucket_check =
            IndexOp::check(Table::Buckets, bucket.as_bytes().to_vec(), Precondition::Present, Refusal::NoSuchBucket);
        let keep: HashSet<_> =
            ObjectMeta::decode(&raw).map(|m| m.data.file_ids().into_iter().collect()).unwrap_or_default();
        let op = IndexOp::put(Table::Objects, ikey, raw).when(guard, Refusal::Condition);
        let mut ops = vec![bucket_check, op];
        ops.extend(extra);
        let previous = mp.index.commit(ops, dirs).await?;
        // The replaced record's files go, but not those the new one names too (the same data
        // under other metadata, an ACL change that missed this copy).
        if let Some(old) = previous.into_iter().nth(1).and_then(|v| v.into_iter().next())
            && let Ok(old) = ObjectMeta::decode(&old)
        {
            let gone: Vec<_> = old.data.file_ids().into_iter().filter(|id| !keep.contains(id)).collect();
            self.remove_files(mp, gone).await;
        }
        Ok(())
    }

    /// Makes the copies a write that landed on one holder only (a completed multipart upload)
    /// is short of: an error when they cannot all be made (the write stands on the first).
    pub(crate) async fn ensure_copies(&self, bucket: &str, key: &str) -> Result<()> {
        let n = self.wanted_copies(bucket);
        if n < 2 {
            return Ok(());
        }
        match self.repair_key(bucket, key, n, true, false).await? {
            KeyState::Fine | KeyState::Repaired(_) | KeyState::Moved(_) => Ok(()),
            KeyState::Short => Err(self
                .holders(bucket, key, n)
                .err()
                .unwrap_or(Error::Poisoned { mountpath: "(a copy could not be written)".to_owned() })),
        }
    }

    /// Whether `bucket/key`'s newest record is on as many healthy mountpaths as its bucket
    /// wants, every mountpath probed first: a directory that vanished still takes commits
    /// through its open files until the prober notices, and such a copy is not durable. Short:
    /// the key goes to the repair and the write is not acknowledged (503).
    pub(crate) fn copies_hold(&self, bucket: &str, key: &str) -> Result<()> {
        for mp in self.mountpaths() {
            mp.probe();
        }
        let held = self.newest(bucket, key)?.mps.len();
        if held >= self.wanted_copies(bucket) {
            return Ok(());
        }
        self.record_failures();
        self.copies.suspects.report(bucket, key);
        Err(self
            .holders(bucket, key, self.wanted_copies(bucket))
            .err()
            .unwrap_or(Error::Poisoned { mountpath: format!("({held} good copies of {key}, fewer than wanted)") }))
    }

    /// The copies gauges.
    pub fn copies_report(&self) -> CopiesReport {
        let c = &self.copies;
        let under = c.under_replicated.load(Ordering::Relaxed);
        CopiesReport {
            under_replicated: (under != UNKNOWN).then_some(under),
            repaired_objects: c.repaired_objects.load(Ordering::Relaxed),
            repaired_bytes: c.repaired_bytes.load(Ordering::Relaxed),
            passes: c.passes.load(Ordering::Relaxed),
        }
    }

    /// Asks the repair thread for a pass now (a bucket wants more copies than before).
    pub fn ask_repair_pass(&self) {
        self.copies.pass_asked.store(true, Ordering::Release);
    }

    /// Whether a pass was asked for since the last call.
    pub fn repair_pass_asked(&self) -> bool {
        self.copies.pass_asked.swap(false, Ordering::AcqRel)
    }

    /// Whether a read reported a bad copy since the last call (the repair thread's wake-up).
    pub fn repair_wanted(&self) -> bool {
        self.copies.suspects.wake.swap(false, Ordering::AcqRel)
    }

    /// Repairs the keys reads reported (a copy missing, unreadable or failing its checksum): each
    /// copy of them is verified, bad ones replaced from a good one.
    pub async fn repair_suspects(&self, rate: u64) -> Result<RepairReport> {
        let keys = std::mem::take(&mut *self.copies.suspects.keys.lock().unwrap_or_else(|p| p.into_inner()));
        let mut report = RepairReport::default();
        let mut seen = HashSet::new();
        for (bucket, key) in keys {
            if !seen.insert((bucket.clone(), key.clone())) {
                continue;
            }
            let n = self.wanted_copies(&bucket);
            self.repair_one(&bucket, &key, n, true, true, rate, &mut report).await?;
        }
        Ok(report)
    }

    /// Walks every key of every bucket that wants more than one copy; with `fix`, copies what
    /// is short (paced to `rate` bytes a second, 0: unpaced); with `verify`, reads every copy
    /// and replaces one that fails its checksums (a scrub). Updates the gauges.
    pub async fn repair_pass(&self, fix: bool, verify: bool, rate: u64) -> Result<RepairReport> {
        let mut report = RepairReport::default();
        let failed_before = self.failed_mountpaths();
        for (bucket, meta) in self.list_buckets() {
            let n = self.copies_of(&meta);
            // `copies=1` set on a bucket (not left to the default): it may have had more, and
            // the copies beyond its owner's go (only while the owner is healthy: with one copy
            // wanted, a write goes to the owner and nowhere else).
            let lowered = n < 2 && meta.copies == 1 && self.default_copies() != 0;
            if n < 2 && !lowered {
                continue;
            }
            let mut after: Option<String> = None;
            loop {
                let q = crate::list::ListQuery { prefix: "", delimiter: None, after: after.as_deref(), max_keys: 1000 };
                let page = match self.list_objects(&bucket, &q) {
                    Ok(p) => p,
                    Err(Error::NoSuchBucket) => break,
                    Err(e) => return Err(e),
                };
                for e in &page.entries {
                    if lowered && self.owner(&bucket, &e.key).is_poisoned() {
                        continue;
                    }
                    self.repair_one(&bucket, &e.key, n, fix, verify, rate, &mut report).await?;
                }
                if !page.truncated {
                    break;
                }
                after = page.last;
            }
        }
        let c = &self.copies;
        c.under_replicated.store(report.left.min(UNKNOWN - 1), Ordering::Relaxed);
        c.passes.fetch_add(1, Ordering::Relaxed);
        if fix {
            if report.left == 0 && self.failed_mountpaths() == failed_before {
                c.whole_with_failed.store(failed_before, Ordering::Release);
            }
            self.clean_if_whole(&report);
        }
        Ok(report)
    }

    #[allow(clippy::too_many_arguments)]
    async fn repair_one(
        &self,
        bucket: &str,
        key: &str,
        n: usize,
        fix: bool,
        verify: bool,
        rate: u64,
        report: &mut RepairReport,
    ) -> Result<()> {
        report.examined += 1;
        let started = std::time::Instant::now();
        match self.repair_key(bucket, key, n, fix, verify).await {
            Ok(KeyState::Fine) => {}
            Ok(KeyState::Repaired(bytes)) => {
                report.under_replicated += 1;
                report.repaired += 1;
                report.bytes += bytes;
                self.copies.repaired_objects.fetch_add(1, Ordering::Relaxed);
                self.copies.repaired_bytes.fetch_add(bytes, Ordering::Relaxed);
                pace(rate, bytes, started).await;
            }
            Ok(KeyState::Moved(bytes)) => {
                report.repaired += 1;
                report.bytes += bytes;
                self.copies.repaired_objects.fetch_add(1, Ordering::Relaxed);
                self.copies.repaired_bytes.fetch_add(bytes, Ordering::Relaxed);
                pace(rate, bytes, started).await;
            }
            Ok(KeyState::Short) => {
                report.under_replicated += 1;
                report.left += 1;
            }
            // A key (or bucket) deleted meanwhile, or a drive failing under the repair: counted
            // short, tried again by the next pass.
            Err(Error::NoSuchBucket | Error::NoSuchObject) => {}
            Err(e) => {
                tracing::warn!(bucket, key, error = %e, "copies: repair failed");
                report.under_replicated += 1;
                report.left += 1;
            }
        }
        Ok(())
    }

    /// Brings `bucket/key` to `n` good copies on its holders (with `fix`), or says it is short.
    /// With `verify`, every copy's checksums are checked first and a bad one is dropped. With
    /// `fix`, copies are also moved onto holders that lack one (a new or replaced mountpath:
    /// the resilver), and records older than the newest (a copy that missed a write, one left
    /// on a mountpath that is no longer a holder) are removed.
    async fn repair_key(&self, bucket: &str, key: &str, n: usize, fix: bool, verify: bool) -> Result<KeyState> {
        let Newest { meta, raw, mps, stale } = match self.newest(bucket, key) {
            Ok(n) => n,
            Err(Error::NoSuchObject) => return Ok(KeyState::Fine),
            Err(e) => return Err(e),
        };
        // The mountpaths holding the newest record, verified when asked.
        let (mut good, mut bad): (Vec<Arc<Mountpath>>, Vec<Arc<Mountpath>>) = (Vec::new(), Vec::new());
        for mp in mps {
            if verify && !self.copy_verifies(&meta, &mp).await {
                bad.push(mp);
            } else {
                good.push(mp);
            }
        }
        let short = good.len() < n;
        if !fix || good.is_empty() {
            return Ok(if short { KeyState::Short } else { KeyState::Fine });
        }
        // A bad copy goes only when a good one is left to rewrite it from; an older record goes.
        for (mp, old) in bad.into_iter().map(|m| (m, raw.clone())).chain(stale) {
            self.drop_copy(bucket, key, &mp, old).await?;
        }
        // The holders: the first `n` healthy mountpaths of the key's order that have (or now
        // get) a good copy; one a copy cannot be written to is passed over for the next.
        let order: Vec<Arc<Mountpath>> = placement::order(self.mountpath_ids(), bucket, key.as_bytes())
            .into_iter()
            .map(|i| self.mountpaths()[i].clone())
            .filter(|m| !m.is_poisoned())
            .collect();
        let mut placed: Vec<Arc<Mountpath>> = Vec::with_capacity(n);
        let mut bytes = 0;
        for target in order {
            if placed.len() >= n {
                break;
            }
            if good.iter().any(|g| Arc::ptr_eq(g, &target)) {
                placed.push(target);
                continue;
            }
            let mut copied = false;
            for source in good.clone() {
                if !verify && !self.copy_verifies(&meta, &source).await {
                    continue;
                }
                match self.copy_to(bucket, key, &meta, &raw, &source, &target).await {
                    Ok(true) => {
                        copied = true;
                        break;
                    }
                    // The key changed meanwhile: the next pass sees the new state.
                    Ok(false) => return Ok(KeyState::Fine),
                    Err(e) => {
                        tracing::warn!(from = source.name(), to = target.name(), error = %e, "copies: copy failed")
                    }
                }
            }
            if copied {
                bytes += meta.size;
                good.push(target.clone());
                placed.push(target);
            }
        }
        if placed.len() >= n {
            // Copies beyond the holders (left where a mountpath was a holder before): removed.
            for extra in good.iter().filter(|g| !placed.iter().any(|p| Arc::ptr_eq(p, g))) {
                self.drop_copy(bucket, key, extra, raw.clone()).await?;
            }
        }
        Ok(match (short, placed.len() >= n || good.len() >= n) {
            (_, false) => KeyState::Short,
            (true, true) => KeyState::Repaired(bytes),
            (false, true) if bytes > 0 => KeyState::Moved(bytes),
            (false, true) => KeyState::Fine,
        })
    }

    /// Removes `mp`'s record of the key if it is still `raw` (and its files), under the key's
    /// lock.
    async fn drop_copy(&self, bucket: &str, key: &str, mp: &Arc<Mountpath>, raw: Vec<u8>) -> Result<()> {
        let ikey = keys::object_index_key(bucket, key.as_bytes());
        let _lock = self.lock_keys(bucket, &[key]).await;
        let files = ObjectMeta::decode(&raw).map(|m| m.data.file_ids()).ok();
        let op = IndexOp::remove(Table::Objects, ikey).when(Precondition::Equals(raw), Refusal::Condition);
        match mp.index.commit(vec![op], DirSet::default()).await {
            Ok(_) => {
                tracing::info!(mountpath = mp.name(), bucket, key, "copies: a bad, older or extra copy removed");
                if let Some(ids) = files {
                    // Never a file the newest record shares: ids differ between versions, and
                    // an extra copy of the newest lives on its own mountpath.
                    self.remove_files(mp, ids).await;
                }
                Ok(())
            }
            Err(CommitError::Refused(_)) => Ok(()),
            Err(CommitError::Failed(e)) => Err(e),
        }
    }

    /// Whether `mp`'s copy of the object reads back whole and matches its stored checksums.
    async fn copy_verifies(&self, meta: &ObjectMeta, mp: &Arc<Mountpath>) -> bool {
        let located = Located::new(meta.clone(), mp.clone());
        match located.open(0, meta.size).await {
            Ok(reader) => match reader.verify(0, meta.size).await {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!(mountpath = mp.name(), error = %e, "copies: a copy failed its checksum");
                    false
                }
            },
            Err(_) => false,
        }
    }

    /// Copies the object's files from `source` to `target` (same ids) and commits its record
    /// there, unless the key changed meanwhile (`Ok(false)`).
    async fn copy_to(
        &self,
        bucket: &str,
        key: &str,
        meta: &ObjectMeta,
        raw: &[u8],
        source: &Arc<Mountpath>,
        target: &Arc<Mountpath>,
    ) -> Result<bool> {
        target.check()?;
        let mut dirs = DirSet::default();
        let ids: Vec<_> = meta.data.file_ids().into_iter().collect();
        // Copied under temporary names first: another repair of the key (a completion's, the
        // thread's) never sees a file it committed truncated, and a failed copy removes only its
        // own temporary files.
        let temps: Vec<_> = ids.iter().map(|id| tmp_path(&target.data_path(*id))).collect();
        let discard = |temps: &[std::path::PathBuf]| {
            for t in temps {
                let _ = std::fs::remove_file(t);
            }
        };
        for (id, tmp) in ids.iter().zip(&temps) {
            // Blocking, on the repair thread: copy_file_range inside the kernel. Errors are the
            // side's they happen on; a source file gone means the key changed.
            let mut from = match std::fs::File::open(source.data_path(*id)) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    discard(&temps);
                    // The record gone or replaced: the key changed. Still there: the source lost
                    // a file its record names (its drive going away), a failure of the source.
                    let ikey = keys::object_index_key(bucket, key.as_bytes());
                    if source.index.get(Table::Objects, &ikey)?.as_deref() == Some(raw) {
                        return Err(source.io_error(e));
                    }
                    return Ok(false);
                }
                Err(e) => {
                    discard(&temps);
                    return Err(source.io_error(e));
                }
            };
            let sync = self.sync_mode() == SyncMode::Always;
            let copied = std::fs::File::create(tmp).and_then(|mut to| {
                std::io::copy(&mut from, &mut to)?;
                if sync { to.sync_data() } else { Ok(()) }
            });
            if let Err(e) = copied {
                discard(&temps);
                return Err(target.io_error(e));
            }
            dirs.insert(id.fanout());
        }
        let ikey = keys::object_index_key(bucket, key.as_bytes());
        let _lock = self.lock_keys(bucket, &[key]).await;
        // Still the newest record where it was read? (Writes and deletes take the same lock.)
        let current = source.index.get(Table::Objects, &ikey)?;
        let here = target.index.get(Table::Objects, &ikey)?;
        if here.as_deref() == Some(raw) {
            // Another repair got there first (same bytes, same files).
            discard(&temps);
            return Ok(true);
        }
        let still = current.is_some_and(|c| &c[..] == raw);
        let newer_here = match &here {
            Some(h) => ObjectMeta::decode_summary(h).map(|s| s.1 > meta.mtime_ms).unwrap_or(false),
            None => false,
        };
        if !still || newer_here {
            discard(&temps);
            return Ok(false);
        }
        for (id, tmp) in ids.iter().zip(&temps) {
            if let Err(e) = std::fs::rename(tmp, target.data_path(*id)) {
                discard(&temps);
                return Err(target.io_error(e));
            }
        }
        let guard = match here {
            Some(h) => Precondition::Equals(h.to_vec()),
            None => Precondition::Absent,
        };
        match self.commit_copy(target, (bucket, key), raw.to_vec(), (dirs, guard), Vec::new()).await {
            Ok(()) => Ok(true),
            Err(CommitError::Refused(why)) => {
                self.remove_files(target, ids).await;
                // The bucket still stands but the target lacks its record (a mountpath added
                // since, before `repair_buckets`): a failure of the target, not a changed key.
                if matches!(why, Refusal::NoSuchBucket) && self.bucket(bucket).is_ok() {
                    return Err(Error::Index(format!("{} holds no record of bucket {bucket}", target.name())));
                }
                Ok(false)
            }
            Err(CommitError::Failed(e)) => Err(e),
        }
    }
}

/// Sleeps so that `bytes` copied since `started` keep to `rate` bytes a second (0: unpaced).
async fn pace(rate: u64, bytes: u64, started: std::time::Instant) {
    if rate > 0 {
        let due = std::time::Duration::from_secs_f64(bytes as f64 / rate as f64);
        if let Some(wait) = due.checked_sub(started.elapsed()) {
            compio::time::sleep(wait).await;
        }
    }
}

/// A data file's temporary name while a repair copies it (not an id: the orphan collector and
/// every reader ignore it).
fn tmp_path(path: &std::path::Path) -> std::path::PathBuf {
    let mut name = path.file_name().map(std::ffi::OsStr::to_os_string).unwrap_or_default();
    name.push(format!(".repair-{:016x}", crate::mountpath::random_u64()));
    path.with_file_name(name)
}
