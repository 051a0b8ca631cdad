//! Automatic eviction of cached copies (objects of backend buckets, which carry a remote
//! identity) when a mountpath fills up: the least recently read go first, and nothing that exists
//! only here is ever touched.
//!
//! "Recently read" is kept in memory per mountpath (`ReadClock`): a GET that opens a cached copy,
//! and the fill that made it, stamp it. A copy not read since this start was last read before
//! it, so it is older than every stamped one; among those, the order is the run that wrote them
//! (the record's epoch), then the order this run created its data files — fill order.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::Result;
use crate::index::{CommitError, DirSet, IndexOp, Precondition, Refusal, Table};
use crate::keys;
use crate::meta::{DataLoc, ObjectMeta, RemoteBucket};
use crate::mountpath::Mountpath;
use crate::store::{Store, now_ms};

const STRIPES: usize = 16;

/// When each cached copy on a mountpath was last read, since this start.
pub struct ReadClock {
    stripes: Box<[Mutex<HashMap<u64, u64>>]>,
    hasher: RandomState,
    /// Copies and bytes evicted since start (`/metrics`).
    pub(crate) evicted: (AtomicU64, AtomicU64),
}

impl Default for ReadClock {
    fn default() -> ReadClock {
        ReadClock {
            stripes: (0..STRIPES).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: RandomState::new(),
            evicted: (AtomicU64::new(0), AtomicU64::new(0)),
        }
    }
}

impl ReadClock {
    pub(crate) fn key(&self, bucket: &[u8], key: &[u8]) -> u64 {
        self.hasher.hash_one((bucket, key))
    }

    fn stripe(&self, k: u64) -> std::sync::MutexGuard<'_, HashMap<u64, u64>> {
        // A panic while holding a stripe leaves a map of timestamps: still good to use.
        self.stripes[(k as usize) % STRIPES].lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stamps the copy `k` as read now.
    pub(crate) fn touch(&self, k: u64) {
        self.stripe(k).insert(k, now_ms().max(1));
    }

    fn last(&self, k: u64) -> u64 {
        self.stripe(k).get(&k).copied().unwrap_or(0)
    }

    fn forget(&self, k: u64) {
        self.stripe(k).remove(&k);
    }

    /// Copies and bytes evicted from this mountpath since start.
    pub fn evicted(&self) -> (u64, u64) {
        (self.evicted.0.load(Ordering::Relaxed), self.evicted.1.load(Ordering::Relaxed))
    }
}

/// Oldest first: (last read this run, or 0; the epoch that wrote the record; data-file order).
type Age = (u64, u64, u64);

/// What one eviction pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EvictReport {
    pub objects: u64,
    pub bytes: u64,
}

/// A cached copy chosen to go: its index key, the record seen (removed only if still the same).
struct Victim {
    age: Age,
    ikey: Vec<u8>,
    record: Vec<u8>,
    size: u64,
    clock_key: u64,
}

impl Store {
    /// Frees at least `want` bytes on `mp` (as far as cached copies allow) by dropping cached
    /// copies, least recently read first. Only objects with a remote identity in buckets still
    /// attached to a remote that `reachable` accepts (a configured backend) go; a copy rewritten
    /// meanwhile is left alone.
    pub async fn evict_cold(
        &self,
        mp: &Mountpath,
        want: u64,
        reachable: &dyn Fn(&RemoteBucket) -> bool,
    ) -> Result<EvictReport> {
        mp.check()?;
        let backed: HashSet<Vec<u8>> = self
            .list_buckets()
            .into_iter()
            .filter(|(_, b)| b.backend.as_ref().is_some_and(reachable))
            .map(|(name, _)| name.into_bytes())
            .collect();
        if backed.is_empty() || want == 0 {
            return Ok(EvictReport::default());
        }
        let cutoff = match age_cutoff(mp, &backed, want)? {
            Some(c) => c,
            None => return Ok(EvictReport::default()),
        };
        let mut victims = Vec::new();
        mp.index.for_each_in_snapshot(&[Table::Objects], |_, k, v| {
            if let Some((age, size, clock_key)) = cached_age(mp, &backed, k, v)?
                && age <= cutoff
            {
                victims.push(Victim { age, ikey: k.to_vec(), record: v.to_vec(), size, clock_key });
            }
            Ok(())
        })?;
        victims.sort_unstable_by_key(|v| v.age);
        let mut report = EvictReport::default();
        for v in victims {
            if report.bytes >= want {
                break;
            }
            if self.evict_one(mp, &v).await? {
                report.objects += 1;
                report.bytes += v.size;
            }
        }
        Ok(report)
    }

    /// Removes one copy if its record is still the one chosen. Returns whether it went.
    async fn evict_one(&self, mp: &Mountpath, v: &Victim) -> Result<bool> {
        let mut ops = vec![
            IndexOp::remove(Table::Objects, v.ikey.clone())
                .when(Precondition::Equals(v.record.clone()), Refusal::Condition),
        ];
        // With a member detached, the removal is remembered like a delete's (D24).
        if self.tombstones {
            ops.push(IndexOp::put(Table::Tombstones, v.ikey.clone(), self.epoch().to_le_bytes().to_vec()));
        }
        match mp.index.commit(ops, DirSet::default()).await {
            Ok(previous) => {
                self.release_previous(mp, previous.into_iter().next().and_then(|p| p.into_iter().next())).await;
                mp.reads.forget(v.clock_key);
                mp.reads.evicted.0.fetch_add(1, Ordering::Relaxed);
                mp.reads.evicted.1.fetch_add(v.size, Ordering::Relaxed);
                Ok(true)
            }
            Err(CommitError::Refused(_)) => Ok(false),
            Err(CommitError::Failed(e)) => Err(e),
        }
    }
}

/// The age at or below which the oldest cached copies add up to `want` bytes (all of them when
/// they add up to less); `None` when there is none.
fn age_cutoff(mp: &Mountpath, backed: &HashSet<Vec<u8>>, want: u64) -> Result<Option<Age>> {
    let mut ages: Vec<(Age, u64)> = Vec::new();
    mp.index.for_each_in_snapshot(&[Table::Objects], |_, k, v| {
        if let Some((age, size, _)) = cached_age(mp, backed, k, v)? {
            ages.push((age, size));
        }
        Ok(())
    })?;
    ages.sort_unstable();
    let mut sum = 0u64;
    for (age, size) in &ages {
        sum = sum.saturating_add(*size);
        if sum >= want {
            return Ok(Some(*age));
        }
    }
    Ok(ages.last().map(|(age, _)| *age))
}

/// A record's age, size and clock key when it is a cached copy in a backed bucket.
fn cached_age(mp: &Mountpath, backed: &HashSet<Vec<u8>>, k: &[u8], v: &[u8]) -> Result<Option<(Age, u64, u64)>> {
    let Some((bucket, key)) = keys::split_object_index_key(k) else { return Ok(None) };
    if !backed.contains(bucket) {
        return Ok(None);
    }
    let meta = ObjectMeta::decode(v)?;
    if meta.remote.is_none() {
        return Ok(None);
    }
    let clock_key = mp.reads.key(bucket, key);
    let order = match &meta.data {
        DataLoc::File(id) => id.0 as u64,
        DataLoc::Parts(parts) => parts.first().map_or(0, |p| p.id.0 as u64),
        DataLoc::Inline(_) => 0,
    };
    Ok(Some(((mp.reads.last(clock_key), meta.epoch, order), meta.size, clock_key)))
}
