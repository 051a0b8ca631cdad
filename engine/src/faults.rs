//! Fault injection for tests: fail or tear data writes, fail data fsyncs, fail index commits at
//! chosen points. A store opened without faults pays one branch per hook.
//!
//! Triggers count calls on the whole store; `N` makes the Nth call (1-based) fail, `0` never.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct Faults {
    /// The Nth data-file write fails with EIO (nothing written).
    pub fail_write_at: AtomicU64,
    /// The Nth data-file write writes half its bytes, then fails (a torn write).
    pub tear_write_at: AtomicU64,
    /// The Nth data-file fdatasync fails with EIO (the mountpath is poisoned).
    pub fail_fsync_at: AtomicU64,
    /// The Nth index commit batch fails (the mountpath is poisoned).
    pub fail_commit_at: AtomicU64,
    /// The process aborts (as kill -9 would stop it) once reconciling a returning mountpath
    /// has examined N records.
    pub abort_reconcile_at: AtomicU64,
    /// Every data-file open or read from the Nth on fails with EIO (a dying drive).
    pub fail_reads_from: AtomicU64,
    writes: AtomicU64,
    reads: AtomicU64,
    reconciled: AtomicU64,
    fsyncs: AtomicU64,
    commits: AtomicU64,
}

/// What a write hook decides.
#[derive(Debug, PartialEq, Eq)]
pub enum WriteFault {
    None,
    Fail,
    Tear,
}

impl Faults {
    /// Parses `fsync=3,write=10,tear=5,commit=2,reconcile=100,reads=7` (the `KEEL_FAULTS` test
    /// variable).
    pub fn parse(spec: &str) -> Result<Faults, String> {
        let f = Faults::default();
        for part in spec.split(',').filter(|p| !p.trim().is_empty()) {
            let (k, v) = part.split_once('=').ok_or_else(|| format!("fault {part:?} is not NAME=N"))?;
            let n: u64 = v.trim().parse().map_err(|_| format!("fault {part:?}: N must be a number"))?;
            match k.trim() {
                "write" => f.fail_write_at.store(n, Ordering::Relaxed),
                "tear" => f.tear_write_at.store(n, Ordering::Relaxed),
                "fsync" => f.fail_fsync_at.store(n, Ordering::Relaxed),
                "commit" => f.fail_commit_at.store(n, Ordering::Relaxed),
                "reconcile" => f.abort_reconcile_at.store(n, Ordering::Relaxed),
                "reads" => f.fail_reads_from.store(n, Ordering::Relaxed),
                other => {
                    return Err(format!("unknown fault {other:?} (write, tear, fsync, commit, reconcile, reads)"));
                }
            }
        }
        Ok(f)
    }

    fn hit(counter: &AtomicU64, at: &AtomicU64) -> bool {
        let n = counter.fetch_add(1, Ordering::Relaxed) + 1;
        let at = at.load(Ordering::Relaxed);
        at != 0 && n == at
    }

    pub(crate) fn on_write(&self) -> WriteFault {
        let n = self.writes.fetch_add(1, Ordering::Relaxed) + 1;
        if self.fail_write_at.load(Ordering::Relaxed) == n {
            WriteFault::Fail
        } else if self.tear_write_at.load(Ordering::Relaxed) == n {
            WriteFault::Tear
        } else {
            WriteFault::None
        }
    }

    pub(crate) fn on_fsync(&self) -> bool {
        Faults::hit(&self.fsyncs, &self.fail_fsync_at)
    }

    pub(crate) fn on_commit(&self) -> bool {
        Faults::hit(&self.commits, &self.fail_commit_at)
    }

    /// True when this data-file read must fail.
    pub(crate) fn on_read(&self) -> bool {
        let n = self.reads.fetch_add(1, Ordering::Relaxed) + 1;
        let from = self.fail_reads_from.load(Ordering::Relaxed);
        from != 0 && n >= from
    }

    /// Counts records a reconciliation examined; aborts the process at the chosen count.
    pub(crate) fn on_reconciled(&self, records: u64) {
        let n = self.reconciled.fetch_add(records, Ordering::Relaxed) + records;
        let at = self.abort_reconcile_at.load(Ordering::Relaxed);
        if at != 0 && n >= at {
            eprintln!("KEEL_FAULTS: aborting after reconciling {n} records");
            std::process::abort();
        }
    }
}

pub(crate) fn injected() -> std::io::Error {
    std::io::Error::from_raw_os_error(libc::EIO)
}
