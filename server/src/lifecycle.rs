//! The node's lifecycle worker (D48): every tenth of a lifecycle day (at most hourly), each
//! bucket's rules are applied by the engine (`Store::apply_lifecycle`), one removal at a time,
//! paced so that it never crowds out the foreground. Its counters are in `/metrics`.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Removals of one kind, and passes, since the start.
static PASSES: AtomicU64 = AtomicU64::new(0);
static EXPIRED: AtomicU64 = AtomicU64::new(0);
static NONCURRENT: AtomicU64 = AtomicU64::new(0);
static MARKERS: AtomicU64 = AtomicU64::new(0);
static UPLOADS: AtomicU64 = AtomicU64::new(0);
static LOCKED: AtomicU64 = AtomicU64::new(0);

/// The pause after each removal: at most a thousand a second.
const PACE: Duration = Duration::from_millis(1);

/// Runs forever on the control runtime.
pub async fn run(store: Arc<engine::Store>, day_secs: u64) {
    let period = Duration::from_secs((day_secs / 10).clamp(1, 3600));
    loop {
        compio::time::sleep(period).await;
        pass(&store, day_secs).await;
    }
}

/// One pass over every bucket with rules.
pub async fn pass(store: &engine::Store, day_secs: u64) {
    for (name, bucket) in store.list_buckets() {
        if bucket.lifecycle.is_none() || bucket.backend.is_some() {
            continue;
        }
        let clock = engine::Clock { now_ms: crate::time::now_ms(), day_ms: day_secs.saturating_mul(1000) };
        match store.apply_lifecycle(&name, clock, PACE).await {
            Ok(r) => {
                EXPIRED.fetch_add(r.expired, Ordering::Relaxed);
                NONCURRENT.fetch_add(r.noncurrent, Ordering::Relaxed);
                MARKERS.fetch_add(r.markers, Ordering::Relaxed);
                UPLOADS.fetch_add(r.uploads, Ordering::Relaxed);
                LOCKED.fetch_add(r.locked, Ordering::Relaxed);
                if r != engine::LifecycleReport::default() {
                    tracing::info!(
                        bucket = name,
                        expired = r.expired,
                        noncurrent = r.noncurrent,
                        delete_markers = r.markers,
                        uploads = r.uploads,
                        locked = r.locked,
                        "lifecycle rules applied"
                    );
                }
            }
            Err(engine::Error::NoSuchBucket) => {}
            Err(e) => tracing::warn!(bucket = name, error = %e, "lifecycle pass failed"),
        }
    }
    PASSES.fetch_add(1, Ordering::Relaxed);
}

/// The worker's counters, in Prometheus text.
pub fn render(s: &mut String) {
    let _ = writeln!(
        s,
        "# HELP keel_lifecycle_passes_total Lifecycle passes over every bucket with rules.\n# TYPE keel_lifecycle_passes_total counter\nkeel_lifecycle_passes_total {}",
        PASSES.load(Ordering::Relaxed)
    );
    s.push_str("# HELP keel_lifecycle_removed_total What lifecycle rules removed, by kind.\n# TYPE keel_lifecycle_removed_total counter\n");
    for (kind, n) in
        [("expired", &EXPIRED), ("noncurrent", &NONCURRENT), ("delete_marker", &MARKERS), ("upload", &UPLOADS)]
    {
        let _ = writeln!(s, "keel_lifecycle_removed_total{{kind=\"{kind}\"}} {}", n.load(Ordering::Relaxed));
    }
    let _ = writeln!(
        s,
        "# HELP keel_lifecycle_locked_total Versions a rule would have removed that object lock kept.\n# TYPE keel_lifecycle_locked_total counter\nkeel_lifecycle_locked_total {}",
        LOCKED.load(Ordering::Relaxed)
    );
}
