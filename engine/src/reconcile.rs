//! Bringing a mountpath that returns after being detached back in step with the node, before
//! it serves (DESIGN D24). Blocking; runs inside `Store::open`, before any shard starts.
//!
//! Its records lose when the node wrote the same key after the mountpath's last epoch (a newer
//! record on a mountpath in step), or deleted it then (a tombstone), or deleted its bucket (the
//! bucket is gone, or was created again: another incarnation). Everything else it holds is
//! current: nobody could have changed it. Idempotent: a crash in the middle leaves the
//! mountpath detached in the node record, and the next start does it again.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::index::{IndexOp, Table};
use crate::keys;
use crate::meta::{BucketMeta, ObjectMeta, PartMeta};
use crate::mountpath::Mountpath;
use crate::store::Store;

/// Records examined per index commit.
const PAGE_KEYS: usize = 512;

/// What reconciling a returning mountpath did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReconcileReport {
    /// Records still current.
    pub kept: u64,
    /// Records of keys written or deleted while the mountpath was away.
    pub superseded: u64,
    /// Records of buckets deleted (or deleted and created again) while it was away.
    pub of_deleted_buckets: u64,
    /// Multipart uploads of such buckets.
    pub uploads_aborted: u64,
}

/// The smallest key after `k`.
fn after(k: &[u8]) -> Vec<u8> {
    let mut next = k.to_vec();
    next.push(0);
    next
}

impl Store {
    /// Reconciles mountpath `m`, last in step with the node at `last_epoch`, against the
    /// mountpaths that are in step (all but those in `returning`).
    pub(crate) fn reconcile(&self, m: usize, last_epoch: u64, returning: &[usize]) -> Result<ReconcileReport> {
        let mp = &self.mountpaths()[m];
        let in_step: Vec<&Arc<Mountpath>> =
            self.mountpaths().iter().enumerate().filter(|(i, _)| !returning.contains(i)).map(|(_, m)| m).collect();
        let current = self.buckets_snapshot();
        // Its buckets that are not the node's current ones: deleted meanwhile, or created anew.
        let mut dead: HashSet<Vec<u8>> = HashSet::new();
        let mut stale_records = Vec::new();
        for (k, v) in mp.index.all(Table::Buckets)? {
            let name = String::from_utf8_lossy(&k).into_owned();
            let here = BucketMeta::decode(&v)?;
            if current.get(&name).is_none_or(|now| now.incarnation != here.incarnation) {
                dead.insert(k.to_vec());
            }
            if !current.contains_key(&name) {
                stale_records.push(IndexOp::remove(Table::Buckets, k.to_vec()));
            }
        }
        let gone = |bucket: &[u8]| dead.contains(bucket) || !current.contains_key(&*String::from_utf8_lossy(bucket));
        let mut report = ReconcileReport::default();
        let mut cursor = Vec::new();
        loop {
            let page = mp.index.scan(Table::Objects, &cursor, &[0xff], PAGE_KEYS)?;
            let Some((last, _)) = page.last() else { break };
            cursor = after(last);
            let mut ops = Vec::new();
            let mut files = Vec::new();
            for (k, v) in &page {
                let (bucket, _) = keys::split_object_index_key(k).ok_or(Error::BadMeta("object key"))?;
                let bucket_gone = gone(bucket);
                let superseded = !bucket_gone && newer_elsewhere(&in_step, k, last_epoch)?;
                if bucket_gone || superseded {
                    if bucket_gone {
                        report.of_deleted_buckets += 1;
                    } else {
                        report.superseded += 1;
                    }
                    ops.push(IndexOp::remove(Table::Objects, k.to_vec()));
                    match ObjectMeta::decode(v) {
                        Ok(meta) => files.extend(meta.data.file_ids()),
                        Err(e) => {
                            tracing::warn!(mountpath = mp.name(), error = %e, "record does not decode; its files are left to the orphan collector")
                        }
                    }
                } else {
                    report.kept += 1;
                }
            }
            if !ops.is_empty() {
                mp.index.commit_blocking(ops)?;
                for id in files {
                    let _ = std::fs::remove_file(mp.data_path(id));
                }
            }
            if let Some(f) = &self.faults {
                f.on_reconciled(page.len() as u64);
            }
        }
        // Uploads of dead buckets go with their parts.
        for (k, _) in mp.index.all(Table::Uploads)? {
            let Some((bucket, suffix)) = keys::split_object_index_key(&k) else { continue };
            if !gone(bucket) {
                continue;
            }
            let Some((_, upload_id)) = keys::split_upload_suffix(suffix) else { continue };
            let previous = mp.index.commit_blocking(vec![
                IndexOp::remove(Table::Uploads, k.to_vec()),
                IndexOp::remove_prefix(Table::Parts, upload_id.as_bytes().to_vec()),
            ])?;
            for raw in previous.get(1).into_iter().flatten() {
                if let Ok(p) = PartMeta::decode(raw) {
                    let _ = std::fs::remove_file(mp.data_path(p.id));
                }
            }
            report.uploads_aborted += 1;
        }
        // Its bucket records become the node's: gone ones removed, current ones as they are now.
        let mut ops = stale_records;
        ops.extend(
            current.iter().map(|(name, meta)| IndexOp::put(Table::Buckets, name.as_bytes().to_vec(), meta.encode())),
        );
        if !ops.is_empty() {
            mp.index.commit_blocking(ops)?;
        }
        Ok(report)
    }

    /// Removes every tombstone (no member is detached any more: nothing can return to need them).
    pub(crate) fn purge_tombstones(&self) -> Result<()> {
        for mp in self.mountpaths() {
            loop {
                let page = mp.index.scan(Table::Tombstones, b"", &[0xff], PAGE_KEYS)?;
                if page.is_empty() {
                    break;
                }
                mp.index.commit_blocking(
                    page.iter().map(|(k, _)| IndexOp::remove(Table::Tombstones, k.to_vec())).collect(),
                )?;
            }
        }
        Ok(())
    }

    fn buckets_snapshot(&self) -> BTreeMap<String, BucketMeta> {
        self.list_buckets().into_iter().collect()
    }
}

/// Whether a mountpath in step wrote or deleted `ikey` after `epoch`.
fn newer_elsewhere(in_step: &[&Arc<Mountpath>], ikey: &[u8], epoch: u64) -> Result<bool> {
    for other in in_step {
        if let Some(v) = other.index.get(Table::Objects, ikey)?
            && ObjectMeta::decode_epoch(&v)? > epoch
        {
            return Ok(true);
        }
        if let Some(t) = other.index.get(Table::Tombstones, ikey)? {
            let at = t.get(..8).and_then(|b| b.try_into().ok()).map_or(u64::MAX, u64::from_le_bytes);
            if at > epoch {
                return Ok(true);
            }
        }
    }
    Ok(false)
}
