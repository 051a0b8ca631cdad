//! Housekeeping over whole mountpaths: collecting orphaned data files (a crash between writing a
//! file and committing its record, or between a commit and an unlink) and scrubbing every object
//! against its stored checksums.

use std::collections::HashSet;
use std::time::SystemTime;

use crate::checksum::{BodyHasher, ChecksumKind};
use crate::error::{Error, Result};
use crate::index::{IndexOp, Table};
use crate::keys;
use crate::meta::{DataLoc, ObjectId, ObjectMeta, PartMeta};
use crate::mountpath::Mountpath;
use crate::store::Store;

/// What an orphan collection found on one mountpath.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OrphanReport {
    pub files_seen: u64,
    pub referenced: u64,
    pub removed: u64,
    pub bytes_removed: u64,
}

/// What `Store::usage` counts.
#[derive(Clone, Debug, Default)]
pub struct Usage {
    /// Bucket → (objects, bytes).
    pub buckets: std::collections::BTreeMap<String, (u64, u64)>,
    /// (mountpath, objects, bytes, uploads in progress, (free, total) bytes of its filesystem).
    pub mountpaths: Vec<(String, u64, u64, u64, Option<(u64, u64)>)>,
}

/// What a rebalance did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RebalanceReport {
    pub moved: u64,
    /// Misplaced records whose key the owner already held (newer): removed.
    pub superseded: u64,
    pub bytes: u64,
}

/// What a scrub found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScrubReport {
    pub objects: u64,
    pub bytes: u64,
    /// Objects whose bytes do not match their stored checksum or size: (bucket, key, why).
    pub corrupt: Vec<(String, String, String)>,
    /// Objects without a stored checksum (kind `none`): only their sizes were checked.
    pub unchecked: u64,
}

impl Store {
    /// Removes part records whose upload no mountpath holds, of uploads begun before
    /// `older_than`: parts mirrored to a copies bucket's other holders (D36) whose upload was
    /// aborted or completed while that mirror was unreachable, or before a crash reached it.
    /// Their files are then orphans. Blocking.
    fn drop_stray_parts(&self, older_than: SystemTime) -> Result<()> {
        let before_ms = older_than.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        let healthy: Vec<_> = self.mountpaths().iter().filter(|m| !m.is_poisoned()).collect();
        let mut uploads = HashSet::new();
        for mp in &healthy {
            for (k, _) in mp.index.all(Table::Uploads)? {
                if let Some(id) = k.len().checked_sub(keys::UPLOAD_ID_LEN).map(|at| k[at..].to_vec()) {
                    uploads.insert(id);
                }
            }
        }
        for mp in &healthy {
            let stray: Vec<_> = mp
                .index
                .all(Table::Parts)?
                .into_iter()
                .map(|(k, _)| k.to_vec())
                .filter(|k| {
                    let id = &k[..k.len().min(keys::UPLOAD_ID_LEN)];
                    let created = std::str::from_utf8(id).ok().and_then(keys::upload_id_created_ms);
                    !uploads.contains(id) && created.is_some_and(|t| t < before_ms)
                })
                .collect();
            if !stray.is_empty() {
                tracing::info!(mountpath = mp.name(), parts = stray.len(), "removing parts of uploads no longer open");
                let ops = stray.into_iter().map(|k| IndexOp::remove(Table::Parts, k)).collect();
                mp.index.commit_blocking(ops).map_err(Error::from)?;
            }
        }
        Ok(())
    }
}

/// Every data-file id the index references (objects, their older versions and parts of
/// uploads in progress), read in one snapshot.
fn referenced_ids(mp: &Mountpath) -> Result<HashSet<ObjectId>> {
    let mut ids = HashSet::new();
    mp.index.for_each_in_snapshot(&[Table::Objects, Table::Versions, Table::Parts], |table, _, v| {
        match table {
            Table::Objects | Table::Versions => ids.extend(ObjectMeta::decode(v)?.data.file_ids()),
            Table::Parts => {
                ids.insert(PartMeta::decode(v)?.id);
            }
            _ => {}
        }
        Ok(())
    })?;
    Ok(ids)
}

impl Store {
    /// Removes data files no index record references and that were last modified before
    /// `older_than` (files of writes in flight are newer). Blocking; run it on its own thread.
    pub fn collect_orphans(&self, older_than: SystemTime) -> Result<Vec<(String, OrphanReport)>> {
        self.drop_stray_parts(older_than)?;
        let mut out = Vec::new();
        for mp in self.mountpaths() {
            if mp.is_poisoned() {
                continue;
            }
            let referenced = referenced_ids(mp)?;
            let mut report = OrphanReport { referenced: referenced.len() as u64, ..Default::default() };
            for fan in 0..=255u8 {
                let dir = mp.root().join("objects").join(format!("{fan:02x}"));
                let Ok(entries) = std::fs::read_dir(&dir) else { continue };
                for entry in entries.flatten() {
                    let name = entry.file_name();
                    let Some(id) = name.to_str().and_then(|n| u128::from_str_radix(n, 16).ok()).map(ObjectId) else {
                        continue;
                    };
                    report.files_seen += 1;
                    if referenced.contains(&id) {
                        continue;
                    }
                    let Ok(meta) = entry.metadata() else { continue };
                    if meta.modified().is_ok_and(|m| m >= older_than) {
                        continue;
                    }
                    if std::fs::remove_file(entry.path()).is_ok() {
                        report.removed += 1;
                        report.bytes_removed += meta.len();
                    }
                }
            }
            out.push((mp.name().to_owned(), report));
        }
        Ok(out)
    }

    /// Objects and bytes per bucket, and per mountpath (offline views: `keel ls`, `keel stat`).
    pub fn usage(&self) -> Result<Usage> {
        let mut u = Usage::default();
        for (m, mp) in self.mountpaths().iter().enumerate() {
            let earlier = &self.mountpaths()[..m];
            let mut here = (0u64, 0u64, 0u64);
            mp.index.for_each_in_snapshot(&[Table::Objects, Table::Uploads], |table, k, v| {
                if table == Table::Uploads {
                    here.2 += 1;
                    return Ok(());
                }
                let (bucket, _) = keys::split_object_index_key(k).ok_or(Error::BadMeta("object key"))?;
                let bucket = String::from_utf8_lossy(bucket).into_owned();
                let (size, _, _) = ObjectMeta::decode_summary(v)?;
                // A key with copies counts once per bucket (on the first mountpath holding it).
                if !earlier.iter().any(|e| e.index.get(Table::Objects, k).ok().flatten().is_some()) {
                    let e = u.buckets.entry(bucket).or_default();
                    e.0 += 1;
                    e.1 += size;
                }
                here.0 += 1;
                here.1 += size;
                Ok(())
            })?;
            u.mountpaths.push((mp.name().to_owned(), here.0, here.1, here.2, mp.space()));
        }
        for (name, _) in self.list_buckets() {
            u.buckets.entry(name).or_default();
        }
        Ok(u)
    }

    /// Moves every object whose record sits on a mountpath other than its owner (placed before a
    /// mountpath was added or removed) to its owner: data files are copied (copy_file_range or
    /// reflink where the filesystem offers it) and synced, the record is committed on the owner
    /// (unless a newer one is already there) and then removed from the old mountpath, whose files
    /// go last. Run offline (`keel rebalance`); uploads in progress are not moved.
    pub async fn rebalance(&self) -> Result<RebalanceReport> {
        let mut report = RebalanceReport::default();
        for mp in self.mountpaths() {
            let mut misplaced = Vec::new();
            // Current records only: an older version stays with its files (D46).
            mp.index.for_each_in_snapshot(&[Table::Objects], |_, k, v| {
                let (bucket, key) = keys::split_object_index_key(k).ok_or(Error::BadMeta("object key"))?;
                let (bucket, key) =
                    (String::from_utf8_lossy(bucket).into_owned(), String::from_utf8_lossy(key).into_owned());
                // A copies bucket's key belongs on its first `copies` mountpaths.
                let n = self.wanted_copies(&bucket);
                let order = crate::placement::order(self.mountpath_ids(), &bucket, key.as_bytes());
                if !order.iter().take(n).any(|i| std::sync::Arc::ptr_eq(&self.mountpaths()[*i], mp)) {
                    misplaced.push((k.to_vec(), bucket, key, v.to_vec()));
                }
                Ok(())
            })?;
            for (ikey, bucket, key, raw) in misplaced {
                // The first holder without a record of the key (else the owner, which refuses).
                let n = self.wanted_copies(&bucket);
                let order = crate::placement::order(self.mountpath_ids(), &bucket, key.as_bytes());
                let target = order
                    .iter()
                    .take(n)
                    .map(|i| &self.mountpaths()[*i])
                    .find(|t| t.index.get(Table::Objects, &ikey).ok().flatten().is_none())
                    .unwrap_or_else(|| self.owner(&bucket, &key))
                    .clone();
                let mut meta = ObjectMeta::decode(&raw)?;
                let mut dirs = crate::index::DirSet::default();
                let mut copied = Vec::new();
                // New ids, even for a copies bucket (whose holders otherwise share ids, D36): a
                // refused commit below removes what was copied, which must never be a file the
                // target's own record names. The repair then aligns the copies' records.
                let mut move_file = |id: ObjectId| -> Result<ObjectId> {
                    let new = self.next_id();
                    let to = target.data_path(new);
                    std::fs::copy(mp.data_path(id), &to).map_err(|e| target.io_error(e))?;
                    std::fs::File::open(&to).and_then(|f| f.sync_all()).map_err(|e| target.io_error(e))?;
                    dirs.insert(new.fanout());
                    copied.push(new);
                    Ok(new)
                };
                meta.data = match meta.data {
                    DataLoc::Inline(b) => DataLoc::Inline(b),
                    DataLoc::File(id) => DataLoc::File(move_file(id)?),
                    DataLoc::Parts(parts) => DataLoc::Parts(
                        parts
                            .into_iter()
                            .map(|mut p| {
                                p.id = move_file(p.id)?;
                                Ok(p)
                            })
                            .collect::<Result<_>>()?,
                    ),
                };
                let put = crate::index::IndexOp::put(Table::Objects, ikey.clone(), meta.encode())
                    .when(crate::index::Precondition::Absent, crate::index::Refusal::Condition);
                match target.index.commit(vec![put], dirs).await {
                    Ok(_) => report.moved += 1,
                    Err(crate::index::CommitError::Refused(_)) => {
                        // The owner already holds a newer version: drop the copy and the old one.
                        self.remove_files(&target, copied).await;
                        report.superseded += 1;
                    }
                    Err(crate::index::CommitError::Failed(e)) => return Err(e),
                }
                let old = crate::index::IndexOp::remove(Table::Objects, ikey);
                let previous = mp.index.commit(vec![old], crate::index::DirSet::default()).await?;
                self.release_previous(mp, previous.into_iter().next().and_then(|v| v.into_iter().next())).await;
                report.bytes += meta.size;
            }
        }
        Ok(report)
    }

    /// Reads every object on every mountpath and checks its bytes against its stored checksum
    /// (per part for multipart objects) and its size. Blocking; for `keel scrub`.
    pub fn scrub(&self) -> Result<ScrubReport> {
        let mut report = ScrubReport::default();
        for mp in self.mountpaths() {
            // Current versions, and the older versions of versioned buckets (D46), named
            // `key (version id)`.
            mp.index.for_each_in_snapshot(&[Table::Objects, Table::Versions], |table, k, v| {
                let (bucket, rest) = keys::split_object_index_key(k).ok_or(Error::BadMeta("object key"))?;
                let key = match table {
                    Table::Versions => {
                        let (key, stamp) =
                            crate::versions::split_version_suffix(rest).ok_or(Error::BadMeta("version key"))?;
                        format!("{} ({stamp:032x})", String::from_utf8_lossy(key))
                    }
                    _ => String::from_utf8_lossy(rest).into_owned(),
                };
                let bucket = String::from_utf8_lossy(bucket).into_owned();
                report.objects += 1;
                let meta = match ObjectMeta::decode(v) {
                    Ok(m) => m,
                    Err(e) => {
                        report.corrupt.push((bucket, key, format!("record: {e}")));
                        return Ok(());
                    }
                };
                report.bytes += meta.size;
                if meta.stored_checksum.kind == ChecksumKind::None {
                    report.unchecked += 1;
                }
                if let Err(why) = verify_blocking(mp, &meta) {
                    report.corrupt.push((bucket, key, why));
                }
                Ok(())
            })?;
        }
        Ok(report)
    }
}

/// Checks one object's bytes with blocking reads (scrub runs offline).
fn verify_blocking(mp: &Mountpath, meta: &ObjectMeta) -> std::result::Result<(), String> {
    use std::io::Read;
    let kind = meta.stored_checksum.kind;
    let check = |data_source: &mut dyn Read, size: u64, want: &[u8]| -> std::result::Result<(), String> {
        let mut h = BodyHasher::new(kind);
        let mut buf = vec![0u8; 1 << 20];
        let mut total = 0u64;
        loop {
            let n = data_source.read(&mut buf).map_err(|e| format!("read: {e}"))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
            total += n as u64;
        }
        if total != size {
            return Err(format!("{total} bytes on disk, {size} in the record"));
        }
        if kind != ChecksumKind::None && h.finish().1.value != want {
            return Err(format!("{} checksum mismatch", kind.name()));
        }
        Ok(())
    };
    match &meta.data {
        DataLoc::Inline(bytes) => check(&mut bytes.as_slice(), meta.size, &meta.stored_checksum.value),
        DataLoc::File(id) => {
            let mut f = std::fs::File::open(mp.data_path(*id)).map_err(|e| format!("data file: {e}"))?;
            check(&mut f, meta.size, &meta.stored_checksum.value)
        }
        DataLoc::Parts(parts) => {
            for (i, p) in parts.iter().enumerate() {
                let mut f = std::fs::File::open(mp.data_path(p.id)).map_err(|e| format!("part {}: {e}", i + 1))?;
                check(&mut f, p.size, p.checksum.as_deref().unwrap_or(&[]))
                    .map_err(|e| format!("part {}: {e}", i + 1))?;
            }
            Ok(())
        }
    }
}
