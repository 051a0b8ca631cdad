//! Importing an object another store holds (a cluster's rebalance moving it to its new owner):
//! the same bytes under the same record — ETag, modification time, metadata, ACL, and for a
//! multipart object its parts (so part-numbered reads and GetObjectAttributes stay the same) —
//! written here only if the key holds nothing (a newer write here always wins over a moved
//! copy). Each piece's MD5 is checked against the record's, so a copy damaged on the way is
//! refused rather than stored.

use std::sync::Arc;

use super::DataWriter;
use super::WriteCondition;
use crate::checksum::StoredChecksum;
use crate::error::{Error, Result};
use crate::meta::{DataLoc, ObjectMeta, PartLoc};
use crate::store::Store;

/// An import of one object in progress: one writer per piece (one for a plain object, one per
/// part of a multipart one), each filled with the source's bytes of `pieces()[i]`.
pub struct ObjectImport {
    bucket: String,
    key: String,
    source: ObjectMeta,
    writers: Vec<DataWriter>,
}

impl Store {
    /// Starts importing `bucket/key` as the record `source` describes (from another store).
    pub fn import_writer(self: &Arc<Self>, bucket: &str, key: &str, source: &ObjectMeta) -> Result<ObjectImport> {
        source.check()?;
        self.bucket(bucket)?;
        let mp = self.owner(bucket, key).clone();
        let kind = source.stored_checksum.kind;
        let writers = match &source.data {
            DataLoc::Inline(_) | DataLoc::File(_) => {
                vec![DataWriter::new(self, mp, key, (kind, None), Some(source.size), true)?]
            }
            DataLoc::Parts(parts) => parts
                .iter()
                .map(|p| DataWriter::new(self, mp.clone(), key, (kind, None), Some(p.size), false))
                .collect::<Result<_>>()?,
        };
        Ok(ObjectImport { bucket: bucket.to_owned(), key: key.to_owned(), source: source.clone(), writers })
    }

    /// Removes `bucket/key` if its record is still exactly `expected` (a moved copy, once its
    /// new owner has it): anything written since stays. Whether it was removed.
    pub async fn delete_object_if(&self, bucket: &str, key: &str, expected: &ObjectMeta) -> Result<bool> {
        use crate::index::{CommitError, DirSet, IndexOp, Precondition, Refusal, Table};
        let (mp, meta) = match self.locate(bucket, key) {
            Ok(found) => found,
            Err(Error::NoSuchObject) => return Ok(false),
            Err(e) => return Err(e),
        };
        if &meta != expected {
            return Ok(false);
        }
        let ikey = crate::keys::object_index_key(bucket, key.as_bytes());
        // The record's bytes as stored (an older record format re-encodes differently).
        let Some(raw) = mp.index.get(Table::Objects, &ikey)? else { return Ok(false) };
        let op = IndexOp::remove(Table::Objects, ikey).when(Precondition::Equals(raw.to_vec()), Refusal::Condition);
        match mp.index.commit(vec![op], DirSet::default()).await {
            Ok(previous) => {
                self.release_previous(&mp, previous.into_iter().next().and_then(|v| v.into_iter().next())).await;
                Ok(true)
            }
            Err(CommitError::Refused(_)) => Ok(false),
            Err(CommitError::Failed(e)) => Err(e),
        }
    }
}

impl ObjectImport {
    /// The byte ranges (offset, length) of the source each writer takes, in order.
    pub fn pieces(&self) -> Vec<(u64, u64)> {
        match &self.source.data {
            DataLoc::Parts(parts) => {
                let mut at = 0;
                parts
                    .iter()
                    .map(|p| {
                        let r = (at, p.size);
                        at += p.size;
                        r
                    })
                    .collect()
            }
            _ => vec![(0, self.source.size)],
        }
    }

    /// The writer of piece `i`.
    pub fn writer(&mut self, i: usize) -> &mut DataWriter {
        &mut self.writers[i]
    }

    /// Checks every piece against the source's MD5s, syncs, and commits the record unless the
    /// key holds an object already (`PreconditionFailed` then). Returns the record written.
    pub async fn finish(self) -> Result<ObjectMeta> {
        self.finish_when(WriteCondition::Absent).await
    }

    /// `finish` under another condition (`Always`: the import replaces what the key holds).
    pub async fn finish_when(self, condition: WriteCondition) -> Result<ObjectMeta> {
        let ObjectImport { bucket, key, source, mut writers } = self;
        let multipart = matches!(source.data, DataLoc::Parts(_));
        let mut sealed = Vec::with_capacity(writers.len());
        for w in &mut writers {
            sealed.push(w.seal(None, None, multipart).await?);
        }
        let mut meta = source.clone();
        let mut dirs = crate::index::DirSet::default();
        match &source.data {
            DataLoc::Parts(parts) => {
                let mut locs = Vec::with_capacity(parts.len());
                for (p, s) in parts.iter().zip(&sealed) {
                    let DataLoc::File(id) = s.data else { return Err(Error::BadMeta("a part sealed inline")) };
                    if s.md5 != p.md5 {
                        return Err(Error::ChecksumMismatch { algorithm: "MD5" });
                    }
                    locs.push(PartLoc {
                        id,
                        size: p.size,
                        md5: p.md5,
                        checksum: Some(s.stored.value.to_vec()),
                        flex: p.flex.clone(),
                    });
                    dirs.union(s.dirs);
                }
                meta.data = DataLoc::Parts(locs);
                meta.stored_checksum = StoredChecksum { kind: source.stored_checksum.kind, value: Default::default() };
            }
            _ => {
                let s = sealed.pop().ok_or(Error::BadMeta("no piece"))?;
                // A cached copy of a remote object may carry the remote's MD5 rather than its
                // bytes' (its ETag is the remote's): only a plain object's MD5 is its body's.
                if source.remote.is_none() && s.md5 != source.md5 {
                    return Err(Error::ChecksumMismatch { algorithm: "MD5" });
                }
                meta.data = s.data;
                meta.stored_checksum = s.stored;
                dirs.union(s.dirs);
            }
        }
        let store = writers[0].store.clone();
        meta.epoch = store.epoch();
        meta.check()?;
        let mp = writers[0].mp.clone();
        let guard = store.write_guard(&mp, &bucket, &key, &condition)?;
        for w in &mut writers {
            w.commit_sent = true;
        }
        let committed = store.commit_object(&mp, (&bucket, &key), &meta, (dirs, guard), None).await;
        if matches!(committed, Err(crate::index::CommitError::Refused(_))) {
            // Nothing applied: the files are ours to remove again.
            for w in &mut writers {
                w.commit_sent = false;
            }
        }
        committed.map_err(|e| condition.commit_error(e))?;
        Ok(meta)
    }
}
