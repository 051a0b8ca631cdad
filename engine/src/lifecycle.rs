//! Applying a bucket's lifecycle rules (D48): one pass over its versions in key order (the
//! version listing, a page at a time) and over its unfinished uploads. Versions under object
//! lock are left alone (the engine refuses their removal); every removal goes through the same
//! calls a client's DELETE does.

use crate::error::{Error, Result};
use crate::meta::{Expiration, LifecycleRule, Versioning};
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

/// Where a key's versions stand while its chain is walked.
#[derive(Default)]
struct KeyWalk {
    key: String,
    /// When the version just seen was written: the next (older) one stopped being current then.
    newer_mtime: Option<u64>,
    /// Noncurrent versions seen so far (newest first).
    noncurrent_seen: u32,
}

impl Store {
    /// One lifecycle pass over `bucket`; `pace` is awaited after each removal.
    pub async fn apply_lifecycle<P, F>(&self, bucket: &str, clock: Clock, pace: P) -> Result<LifecycleReport>
    where
        P: Fn() -> F,
        F: std::future::Future<Output = ()>,
    {
        let meta = self.bucket(bucket)?;
        let Some(lifecycle) = meta.lifecycle else { return Ok(LifecycleReport::default()) };
        let rules: Vec<&LifecycleRule> = lifecycle.rules.iter().filter(|r| r.enabled).collect();
        let mut report = LifecycleReport::default();
        if rules.is_empty() {
            return Ok(report);
        }
        let versioned = meta.versioning != Versioning::Unset;
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
            let page = self.list_versions(bucket, &q)?;
            for e in &page.entries {
                if e.key != walk.key {
                    walk = KeyWalk { key: e.key.clone(), ..Default::default() };
                }
                self.apply_to(bucket, (e, versioned), &rules, clock, &mut walk, &mut report, &pace).await?;
                walk.newer_mtime = Some(e.mtime_ms);
                if !e.is_latest {
                    walk.noncurrent_seen += 1;
                }
            }
            if !page.truncated {
                break;
            }
            key_marker = page.next_key_marker;
            version_marker = page.next_version_marker.as_deref().and_then(VersionRef::parse);
        }
        self.abort_expired_uploads(bucket, &rules, clock, &mut report, &pace).await?;
        Ok(report)
    }

    /// What the rules do to one version.
    #[allow(clippy::too_many_arguments)]
    async fn apply_to<P, F>(
        &self,
        bucket: &str,
        (e, versioned): (&VersionEntry, bool),
        rules: &[&LifecycleRule],
        clock: Clock,
        walk: &mut KeyWalk,
        report: &mut LifecycleReport,
        pace: &P,
    ) -> Result<()>
    where
        P: Fn() -> F,
        F: std::future::Future<Output = ()>,
    {
        let prefixed = |r: &&&LifecycleRule| r.filter.prefix.as_deref().is_none_or(|p| e.key.starts_with(p));
        let candidates: Vec<&&LifecycleRule> = rules.iter().filter(prefixed).collect();
        if candidates.is_empty() {
            return Ok(());
        }
        let id = VersionRef::parse(&e.version.id());
        if e.version.delete_marker {
            // A marker with nothing behind it (no older version of the key).
            let lone = e.is_latest && walk.noncurrent_seen == 0 && self.versions_of(bucket, &e.key)? == 1;
            if lone && candidates.iter().any(|r| r.expiration == Some(Expiration::ExpiredObjectDeleteMarker)) {
                self.remove_by_rule(bucket, &e.key, id, report, pace).await?;
                report.markers += 1;
            }
            return Ok(());
        }
        // The record, for the rules that look at tags (sizes are in the listing).
        let record = match id {
            Some(v) => self.head_version(bucket, &e.key, v),
            None => self.head_object(bucket, &e.key),
        };
        let record = match record {
            Ok(m) => m,
            Err(Error::NoSuchVersion | Error::NoSuchObject) => return Ok(()),
            Err(err) => return Err(err),
        };
        let applies: Vec<&&&LifecycleRule> = candidates.iter().filter(|r| r.filter.matches(&e.key, &record)).collect();
        if e.is_latest {
            let due = applies.iter().any(|r| match r.expiration {
                Some(Expiration::Days(d)) => clock.past(e.mtime_ms, d),
                Some(Expiration::Date(ms)) => clock.now_ms >= ms,
                _ => false,
            });
            if due {
                if versioned {
                    // The current version becomes noncurrent behind a delete marker.
                    self.delete_version(bucket, &e.key, None, false).await?;
                    pace().await;
                } else {
                    self.delete_object(bucket, &e.key).await?;
                    pace().await;
                }
                report.expired += 1;
            }
            return Ok(());
        }
        let Some(since) = walk.newer_mtime else { return Ok(()) };
        let due = applies.iter().any(|r| {
            r.noncurrent_days.is_some_and(|d| clock.past(since, d))
                && r.newer_noncurrent.is_none_or(|keep| walk.noncurrent_seen >= keep)
        });
        if due && self.remove_by_rule(bucket, &e.key, id, report, pace).await? {
            report.noncurrent += 1;
        }
        Ok(())
    }

    /// Removes one version as a rule asks; a version object lock protects stays (counted).
    async fn remove_by_rule<P, F>(
        &self,
        bucket: &str,
        key: &str,
        id: Option<VersionRef>,
        report: &mut LifecycleReport,
        pace: &P,
    ) -> Result<bool>
    where
        P: Fn() -> F,
        F: std::future::Future<Output = ()>,
    {
        let Some(v) = id else { return Ok(false) };
        match self.delete_version(bucket, key, Some(v), false).await {
            Ok(_) => {
                pace().await;
                Ok(true)
            }
            Err(Error::ObjectLocked(_)) => {
                report.locked += 1;
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// How many versions (and markers) `key` has, up to 2.
    fn versions_of(&self, bucket: &str, key: &str) -> Result<usize> {
        let q = VersionQuery { prefix: key, delimiter: None, key_marker: None, version_marker: None, max_keys: 3 };
        Ok(self.list_versions(bucket, &q)?.entries.iter().filter(|e| e.key == key).count())
    }

    async fn abort_expired_uploads<P, F>(
        &self,
        bucket: &str,
        rules: &[&LifecycleRule],
        clock: Clock,
        report: &mut LifecycleReport,
        pace: &P,
    ) -> Result<()>
    where
        P: Fn() -> F,
        F: std::future::Future<Output = ()>,
    {
        if !rules.iter().any(|r| r.abort_upload_days.is_some()) {
            return Ok(());
        }
        let mut key_marker: Option<String> = None;
        let mut id_marker: Option<String> = None;
        loop {
            let q = crate::list::UploadQuery {
                prefix: "",
                delimiter: None,
                key_marker: key_marker.as_deref(),
                upload_id_marker: id_marker.as_deref(),
                max_uploads: 1000,
            };
            let page = self.list_uploads(bucket, &q)?;
            for u in &page.uploads {
                let due = rules.iter().any(|r| {
                    r.filter.prefix.as_deref().is_none_or(|p| u.key.starts_with(p))
                        && r.abort_upload_days.is_some_and(|d| clock.past(u.meta.created_ms, d))
                });
                if due {
                    match self.abort_upload(bucket, &u.key, &u.upload_id).await {
                        Ok(()) => report.uploads += 1,
                        Err(Error::NoSuchUpload) => {}
                        Err(e) => return Err(e),
                    }
                    pace().await;
                }
            }
            if !page.truncated {
                return Ok(());
            }
            key_marker = page.next_key_marker;
            id_marker = page.next_upload_id_marker;
        }
    }
}
