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
    writes: AtomicU64,
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
    /// Parses `fsync=3,write=10,tear=5,commit=2` (the `KEEL_FAULTS` test variable).
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
                other => return Err(format!("unknown fault {other:?} (write, tear, fsync, commit)")),
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
}

pub(crate) fn injected() -> std::io::Error {
    std::io::Error::from_raw_os_error(libc::EIO)
}
