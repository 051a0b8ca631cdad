//! Applying a bucket's lifecycle rules (D48): one pass over its versions in key order (the
//! version listing, a page at a time) and over its unfinished uploads. Versions under object
//! lock are left alone (the engine refuses their removal); every removal goes through the same
//! calls a client's DELETE does, and is followed by a pause.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::meta::{Expiration, LifecycleRule, Tags, Versioning};
use crate::store::Store;
use crate::version_list::{VersionEntry, VersionQuery};
use crate::versions::VersionRef;

/// What one pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LifecycleReport {
    /// Current versions expired (deleted, or hidden behind a delete marker).
    pub expired: u64,
    /// Noncurrent versions removed.
    pub noncurrent: u64,
    /// Delete markers removed (no version left behind them).
    pub markers: u64,
    /// Unfinished multipart uploads aborted.
    pub uploads: u64,
    /// Versions a rule would have removed that object lock kept.
    pub locked: u64,
}

/// A rule's view of "now": days are `day_ms` long (`--lifecycle-day-secs` shortens them for
/// tests).
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    pub now_ms: u64,
    pub day_ms: u64,
}

impl Clock {
    fn past(&self, since_ms: u64, days: u32) -> bool {
        self.now_ms >= since_ms.saturating_add(u64::from(days).saturating_mul(self.day_ms))
    }
}

/// One pass over one bucket.
struct Pass<'a> {
    store: &'a Store,
    bucket: &'a str,
    versioned: bool,
    rules: Vec<&'a LifecycleRule>,
    clock: Clock,
    pace: Duration,
    report: LifecycleReport,
}

/// Where a key's versions stand while its chain is walked (newest first).
#[derive(Default)]
struct KeyWalk {
    key: String,
    /// When the version just seen was written: the next (older) one stopped being current then.
    newer_mtime: Option<u64>,
    /// Noncurrent versions seen so far.
    noncurrent_seen: u32,
}

impl Store {
    /// One lifecycle pass over `bucket`, pausing `pace` after each removal.
    pub async fn apply_lifecycle(&self, bucket: &str, clock: Clock, pace: Duration) -> Result<LifecycleReport> {
        let meta = self.bucket(bucket)?;
        let Some(lifecycle) = &meta.lifecycle else { return Ok(LifecycleReport::default()) };
        let rules: Vec<&LifecycleRule> = lifecycle.rules.iter().filter(|r| r.enabled).collect();
        if rules.is_empty() {
            return Ok(LifecycleReport::default());
        }
        let versioned = meta.versioning != Versioning::Unset;
        let mut pass = Pass { store: self, bucket, versioned, rules, clock, pace, report: LifecycleReport::default() };
        pass.versions().await?;
        pass.uploads().await?;
        Ok(pass.report)
    }
}

impl Pass<'_> {
    async fn versions(&mut self) -> Result<()> {
        let (mut key_marker, mut version_marker): (Option<String>, Option<VersionRef>) = (None, None);
        let mut walk = KeyWalk::default();
        loop {
            let q = VersionQuery {
                prefix: "",
                delimiter: None,
                key_marker: key_marker.as_deref(),
                version_marker,
                max_keys: 1000,
            };
            let page = self.store.list_versions(self.bucket, &q)?;
            for e in &page.entries {
                if e.key != walk.key {
                    walk = KeyWalk { key: e.key.clone(), ..Default::default() };
                }
                self.version(e, &walk).await?;
                walk.newer_mtime = Some(e.mtime_ms);
                if !e.is_latest {
                    walk.noncurrent_seen += 1;
                }
            }
            if !page.truncated {
                return Ok(());
            }
            key_marker = page.next_key_marker;
            version_marker = page.next_version_marker.as_deref().and_then(VersionRef::parse);
        }
    }

    /// What the rules do to one version.
    async fn version(&mut self, e: &VersionEntry, walk: &KeyWalk) -> Result<()> {
        let prefixed: Vec<&LifecycleRule> = self
            .rules
            .iter()
            .copied()
            .filter(|r| r.filter.prefix.as_deref().is_none_or(|p| e.key.starts_with(p)))
            .collect();
        if prefixed.is_empty() {
            return Ok(());
        }
        let v = VersionRef::of(&e.version);
        if e.version.delete_marker {
            // The newest version and a marker, with nothing behind it.
            let lone = e.is_latest && self.store.chain(self.bucket, &e.key, 2)?.len() == 1;
            if lone
                && prefixed.iter().any(|r| r.expiration == Some(Expiration::ExpiredObjectDeleteMarker))
                && self.remove(&e.key, v).await?
            {
                self.report.markers += 1;
            }
            return Ok(());
        }
        // Only rules that look at tags need the record (sizes are in the listing).
        let tags = if prefixed.iter().any(|r| !r.filter.tags.is_empty()) {
            match self.store.head_version(self.bucket, &e.key, v) {
                Ok(m) => m.tags,
                Err(Error::NoSuchVersion) => return Ok(()),
                Err(err) => return Err(err),
            }
        } else {
            Tags::new()
        };
        let applies = prefixed.iter().filter(|r| r.filter.matches(&e.key, e.size, &tags));
        if e.is_latest {
            let due = applies.into_iter().any(|r| match r.expiration {
                Some(Expiration::Days(d)) => self.clock.past(e.mtime_ms, d),
                Some(Expiration::Date(ms)) => self.clock.now_ms >= ms,
                _ => false,
            });
            if due {
                if self.versioned {
                    // The current version becomes noncurrent behind a delete marker.
                    self.store.delete_version(self.bucket, &e.key, None, false).await?;
                } else {
                    self.store.delete_object(self.bucket, &e.key).await?;
                }
                compio::time::sleep(self.pace).await;
                self.report.expired += 1;
            }
            return Ok(());
        }
        let Some(since) = walk.newer_mtime else { return Ok(()) };
        let due = applies.into_iter().any(|r| {
            r.noncurrent_days.is_some_and(|d| self.clock.past(since, d))
                && r.newer_noncurrent.is_none_or(|keep| walk.noncurrent_seen >= keep)
        });
        if due && self.remove(&e.key, v).await? {
            self.report.noncurrent += 1;
        }
        Ok(())
    }

    /// Removes one version as a rule asks; a version object lock protects stays (counted).
    async fn remove(&mut self, key: &str, v: VersionRef) -> Result<bool> {
        match self.store.delete_version(self.bucket, key, Some(v), false).await {
            Ok(_) => {
                compio::time::sleep(self.pace).await;
                Ok(true)
            }
            Err(Error::ObjectLocked(_)) => {
                self.report.locked += 1;
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    async fn uploads(&mut self) -> Result<()> {
        if !self.rules.iter().any(|r| r.abort_upload_days.is_some()) {
            return Ok(());
        }
        let (mut key_marker, mut id_marker): (Option<String>, Option<String>) = (None, None);
        loop {
            let q = crate::list::UploadQuery {
                prefix: "",
                delimiter: None,
                key_marker: key_marker.as_deref(),
                upload_id_marker: id_marker.as_deref(),
                max_uploads: 1000,
            };
            let page = self.store.list_uploads(self.bucket, &q)?;
            for u in &page.uploads {
                let due = self.rules.iter().any(|r| {
                    r.filter.prefix.as_deref().is_none_or(|p| u.key.starts_with(p))
                        && r.abort_upload_days.is_some_and(|d| self.clock.past(u.meta.created_ms, d))
                });
                if !due {
                    continue;
                }
                match self.store.abort_upload(self.bucket, &u.key, &u.upload_id).await {
                    Ok(()) => self.report.uploads += 1,
                    Err(Error::NoSuchUpload) => {}
                    Err(e) => return Err(e),
                }
                compio::time::sleep(self.pace).await;
            }
            if !page.truncated {
                return Ok(());
            }
            key_marker = page.next_key_marker;
            id_marker = page.next_upload_id_marker;
        }
    }
}
