//! PUT (and the copies a CopyObject writes): the bytes through a `DataWriter`, then one index
//! commit that swaps the key's record, conditionally where the request asked.

use std::sync::Arc;

use super::data::DataWriter;
use super::{PutOptions, WriteCondition};
use crate::checksum::FlexAlgorithm;
use crate::error::{Error, Result};
use crate::index::{CommitError, Refusal};
use crate::meta::ObjectMeta;
use crate::store::{Store, now_ms};

/// A PUT of `bucket/key` in progress.
pub struct ObjectWriter {
    data: DataWriter,
    bucket: String,
    key: String,
    /// The bucket kept versions when the write began (D46).
    versioned: bool,
}

impl Store {
    /// Starts a PUT of `bucket/key`; `declared` is the body length when the client said it;
    /// `flex` the flexible checksum to compute alongside the MD5.
    pub fn put_writer(
        self: &Arc<Self>,
        bucket: &str,
        key: &str,
        declared: Option<u64>,
        flex: Option<FlexAlgorithm>,
    ) -> Result<ObjectWriter> {
        let bucket_meta = self.bucket(bucket)?;
        let versioned = bucket_meta.versioning != crate::meta::Versioning::Unset;
        let copies = self.copies_of(&bucket_meta);
        if copies > 1 {
            // The first healthy holders in HRW order: a failed drive's share goes to the next.
            // (The key is checked by `DataWriter::new`; placement only hashes it.)
            let mut holders = self.holders(bucket, key, copies)?.into_iter();
            let mp = holders.next().ok_or(Error::NoSuchBucket)?;
            let mut data = DataWriter::new(self, mp, key, (bucket_meta.checksum, flex), declared, true)?;
            data.mirror_to(holders.collect())?;
            return Ok(ObjectWriter { data, bucket: bucket.to_owned(), key: key.to_owned(), versioned });
        }
        let mp = self.owner(bucket, key).clone();
        let data = DataWriter::new(self, mp, key, (bucket_meta.checksum, flex), declared, true)?;
        Ok(ObjectWriter { data, bucket: bucket.to_owned(), key: key.to_owned(), versioned })
    }
}

impl WriteCondition {
    /// What a commit refused on its condition means: for If-Match, that another write replaced
    /// the checked object in between; otherwise that the condition failed.
    pub(crate) fn refused(&self) -> Error {
        match self {
            WriteCondition::EtagMatches(_) => Error::WriteConflict,
            _ => Error::PreconditionFailed,
        }
    }

    /// The domain error of a refused or failed commit of a write under this condition.
    pub(crate) fn commit_error(&self, e: CommitError) -> Error {
        match e {
            CommitError::Refused(Refusal::Condition) => self.refused(),
            e => e.into(),
        }
    }
}

impl ObjectWriter {
    /// The bytes, to write into.
    pub fn data(&mut self) -> &mut DataWriter {
        &mut self.data
    }

    /// Verifies, syncs and commits the object; returns its metadata.
    pub async fn finish(self, opts: PutOptions) -> Result<ObjectMeta> {
        self.finish_gated(opts, std::future::ready(Ok(None))).await
    }

    /// The record of the bytes sealed, as the options describe them.
    fn record(
        &self,
        opts: PutOptions,
        sealed: super::data::Sealed,
        (remote, mtime_ms): (Option<crate::meta::RemoteVersion>, u64),
    ) -> ObjectMeta {
        ObjectMeta {
            size: self.data.written(),
            mtime_ms,
            md5: opts.md5.unwrap_or(sealed.md5),
            etag_parts: 0,
            stored_checksum: sealed.stored,
            system: opts.system,
            user: opts.user,
            flex_checksum: sealed.flex,
            data: sealed.data,
            acl: opts.acl,
            epoch: self.data.store.epoch(),
            upload_id: None,
            remote,
            tags: opts.tags,
            version: Default::default(),
            lock: opts.lock,
            owner: opts.owner,
            grants: opts.grants,
        }
    }

    /// Verifies and syncs the object, then awaits `gate`, then commits: a backend bucket's
    /// write-through lets the remote finish its copy there, after the body checked out and before
    /// anything is visible locally. An error from `gate` abandons the write; what it returns is
    /// the remote object this one is a copy of (overriding `opts.remote`).
    pub async fn finish_gated<E: From<Error>>(
        mut self,
        mut opts: PutOptions,
        gate: impl std::future::Future<Output = std::result::Result<Option<(crate::meta::RemoteVersion, u64)>, E>>,
    ) -> std::result::Result<ObjectMeta, E> {
        let content_md5 = if opts.md5.is_some() { None } else { opts.content_md5 };
        if let (Some(want), Some(got)) = (opts.content_md5, opts.md5)
            && want != got
        {
            return Err(Error::ChecksumMismatch { algorithm: "Content-MD5" }.into());
        }
        let sealed = self.data.seal(content_md5, opts.flex_expected.as_deref(), false).await?;
        let remote = gate.await?.or(opts.remote.take());
        let (remote, mtime_ms) = match remote {
            Some((version, mtime_ms)) => (Some(version), mtime_ms.min(crate::meta::MTIME_MS_MAX)),
            None => (None, now_ms()),
        };
        let (condition, dirs) = (std::mem::replace(&mut opts.condition, WriteCondition::Always), sealed.dirs);
        let mut meta = self.record(opts, sealed, (remote, mtime_ms));
        let (store, mp) = (self.data.store.clone(), self.data.mp.clone());
        // Checks that can fail run before the commit is sent, so a failure removes the data file.
        meta.check()?;
        let mirrors = self.data.mirrors();
        // The holders of a copies bucket's key change together, in one order per key; so do a
        // versioned key's versions.
        let versioned = self.versioned;
        let _lock = if mirrors.is_empty() && !versioned {
            None
        } else {
            Some(store.lock_keys(&self.bucket, &[&self.key]).await)
        };
        let plan = if versioned { store.version_plan(&mp, (&self.bucket, &self.key), &mut meta)? } else { None };
        let guard = store.write_guard(&mp, &self.bucket, &self.key, &condition)?;
        let commit = store.commit_object(&mp, (&self.bucket, &self.key), &meta, (dirs, guard), plan);
        let raw = meta.encode();
        // Lazy: nothing is sent until awaited.
        let copies = futures_util::future::join_all(mirrors.iter().map(|m| {
            let none = crate::index::Precondition::None;
            store.commit_copy(m, (&self.bucket, &self.key), raw.clone(), (dirs, none), Vec::new())
        }));
        let copied = if condition == WriteCondition::Always {
            // Nothing to refuse the first commit on: every holder's commit goes at once (the key
            // lock keeps their order per key).
            let (first, copied) = futures_util::future::join(self.data.commit_with(commit), copies).await;
            if let Err(e) = first {
                if copied.iter().any(Result::is_ok) {
                    // A copy's record now names these files (same ids on its mountpath): they
                    // are not ours to remove (the first holder's file is an orphan to collect),
                    // and the repair sorts the key out.
                    self.data.commit_sent = true;
                    store.copies.suspects.report(&self.bucket, &self.key);
                }
                return Err(condition.commit_error(e).into());
            }
            copied
        } else {
            // The condition decides on the first holder; the copies follow only if it held.
            self.data.commit_with(commit).await.map_err(|e| condition.commit_error(e))?;
            copies.await
        };
        // A copy that failed is short until repaired, and the write is not acknowledged.
        if let Some(e) = copied.into_iter().find_map(Result::err) {
            store.copies.suspects.report(&self.bucket, &self.key);
            return Err(Error::from(e).into());
        }
        // A holder that failed while the write was in flight (its drive gone after the checks)
        // holds no durable copy: the write is not acknowledged (a retry picks healthy holders),
        // and the repair makes the copy it lacks.
        if !mirrors.is_empty() {
            // A directory that vanished takes commits through its open files until the prober
            // notices: look now (one stat per holder).
            std::iter::once(&mp).chain(&mirrors).for_each(|m| m.probe_root());
        }
        if let Some(sick) = std::iter::once(&mp).chain(&mirrors).find(|m| !mirrors.is_empty() && m.is_poisoned()) {
            store.record_failures();
            store.copies.suspects.report(&self.bucket, &self.key);
            return Err(Error::Poisoned { mountpath: sick.name().to_owned() }.into());
        }
        if meta.remote.is_some() {
            // A fill is a read: the copy starts as the most recently read.
            mp.reads.touch(mp.reads.key(self.bucket.as_bytes(), self.key.as_bytes()));
        }
        Ok(meta)
    }
}
