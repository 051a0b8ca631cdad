//! Bucket records from etcd applied to this node's store, in revision order (an older record
//! never replaces a newer one, a deleted bucket never comes back from an older record).

use std::sync::atomic::Ordering;

use super::Cluster;

/// Longest wait for another task's making of a bucket (a stuck disk): the request then goes on.
const MAKING_WAIT_MAX: std::time::Duration = std::time::Duration::from_secs(5);

impl Cluster {
    /// Makes this node's record of `name` the cluster's record of etcd revision `rev`, unless
    /// it holds a newer one already.
    pub async fn apply_bucket(&self, store: &engine::Store, name: &str, rev: i64, meta: engine::BucketMeta) {
        let newer = |applied: &mut std::collections::HashMap<String, i64>| {
            let fresh = applied.get(name).is_none_or(|r| *r < rev);
            if fresh {
                applied.insert(name.to_owned(), rev);
            }
            fresh
        };
        // This record, or a newer state (a newer record, or the bucket's deletion), is applied
        // — or is being applied by another task: the bucket may not be there yet, and the
        // caller's request needs it (a PUT would find no bucket).
        if self.applied.lock().is_ok_and(|a| a.get(name).is_some_and(|r| *r >= rev)) {
            if let Some(made) = self.making.in_flight(&name.to_owned()) {
                // Bounded: a stuck disk must not hold the request forever.
                let _ = compio::time::timeout(MAKING_WAIT_MAX, made).await;
            }
            return;
        }
        self.buckets_applied.fetch_add(1, Ordering::Relaxed);
        if !store.bucket_exists(name) {
            // The revision is noted before the bucket appears: the sync loop removes buckets
            // its map lacks unless this node applied a newer record, and its map may predate
            // this one (seeing the bucket without its revision, it would delete a bucket just
            // made). The making is in flight from before the revision is noted: whoever sees
            // the revision also sees the making to wait for.
            let _making = self.making.join(name.to_owned());
            let before = self.applied.lock().ok().map(|mut a| a.insert(name.to_owned(), rev));
            let undo = || {
                if let (Ok(mut a), Some(before)) = (self.applied.lock(), before)
                    && a.get(name) == Some(&rev)
                {
                    match before {
                        Some(r) => a.insert(name.to_owned(), r),
                        None => a.remove(name),
                    };
                }
            };
            // Testing only: widens the window in which a request finds the record applied and
            // the bucket not yet made (the test that shows the wait above).
            if let Some(ms) = std::env::var("KEEL_BUCKET_MAKE_DELAY_MS").ok().and_then(|v| v.parse().ok()) {
                compio::time::sleep(std::time::Duration::from_millis(ms)).await;
            }
            match store.create_bucket_as(name, meta.clone()).await {
                Ok(_) => return,
                // Made meanwhile (by a request that found it in etcd): updated below.
                Err(engine::Error::BucketExists) => undo(),
                Err(e) => {
                    undo();
                    tracing::warn!(bucket = name, error = %e, "cluster: cannot create a bucket the cluster has");
                    return;
                }
            }
        }
        let r = store
            .update_bucket(name, |m| {
                // Under the store's bucket lock: records are applied in revision order.
                if self.applied.lock().is_ok_and(|mut a| newer(&mut a)) {
                    *m = meta;
                }
            })
            .await;
        if let Err(e) = r {
            tracing::warn!(bucket = name, error = %e, "cluster: cannot apply the bucket's record");
        }
    }

    /// How many bucket records this node applied (changes whenever one is).
    pub fn buckets_applied(&self) -> u64 {
        self.buckets_applied.load(Ordering::Relaxed)
    }

    /// The etcd revision of the record of `name` this node applied last, if any.
    pub fn applied_revision(&self, name: &str) -> Option<i64> {
        self.applied.lock().ok().and_then(|a| a.get(name).copied())
    }

    /// Notes that the bucket was deleted at etcd revision `rev` (a tombstone: an older record
    /// never makes it again here).
    pub fn bucket_deleted(&self, name: &str, rev: i64) {
        if let Ok(mut a) = self.applied.lock() {
            let r = a.entry(name.to_owned()).or_insert(rev);
            *r = (*r).max(rev);
        }
    }
}
