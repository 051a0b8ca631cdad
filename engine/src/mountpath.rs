//! A mountpath: one directory on one drive, holding an index and the data files placed on it.
//!
//! ```text
//! <root>/keel-mountpath      "keel-mountpath 1 <id as 16 hex digits>\n": the stable placement id
//! <root>/index/              fjall database (objects, buckets, uploads keyspaces)
//! <root>/objects/00 .. ff/   data files named by 32-hex-digit ids, bytes from offset 0
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::error::{Error, Result};
use crate::index::{Index, IndexConfig, SyncMode};
use crate::limits;
use crate::meta::ObjectId;

const ID_FILE: &str = "keel-mountpath";

pub struct Mountpath {
    root: PathBuf,
    objects: PathBuf,
    /// Placement id, stable across restarts and renames of the directory.
    pub id: u64,
    pub index: Index,
    poisoned: Arc<AtomicBool>,
    name: String,
    io_errors: AtomicU64,
    /// Errors in the current window: (window start in ms, count).
    recent: std::sync::Mutex<(u64, u64)>,
    /// When the last I/O error happened (ms since the epoch; 0: never).
    last_error_ms: AtomicU64,
    /// The root directory's device and inode at open: a drive unmounted or a directory replaced
    /// under keel shows as a change.
    identity: (u64, u64),
    pub(crate) faults: Option<Arc<crate::faults::Faults>>,
    /// When its cached copies were last read, and what eviction dropped.
    pub reads: crate::evict::ReadClock,
}

/// How a mountpath is doing, for `/health` and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Health {
    Ok,
    /// I/O errors within the last `IO_ERROR_WINDOW_MS`.
    Degraded,
    /// Failed: its objects answer 503 until a restart.
    Poisoned,
}

impl Health {
    pub fn name(self) -> &'static str {
        match self {
            Health::Ok => "ok",
            Health::Degraded => "degraded",
            Health::Poisoned => "poisoned",
        }
    }
}

impl Mountpath {
    /// Opens the mountpath at `root`, creating its layout on first use. Blocking: call at start.
    pub fn open(
        root: &Path,
        sync: SyncMode,
        index_config: &IndexConfig,
        faults: Option<Arc<crate::faults::Faults>>,
    ) -> Result<Mountpath> {
        std::fs::create_dir_all(root)?;
        let root = root.canonicalize()?;
        let name = root.display().to_string();
        let id = read_or_create_id(&root)?;
        let objects = root.join("objects");
        std::fs::create_dir_all(&objects)?;
        for f in 0..=255u8 {
            let d = objects.join(format!("{f:02x}"));
            if !d.exists() {
                std::fs::create_dir(&d)?;
            }
        }
        // The fan-out directories exist durably before any data file is created in them.
        sync_dir(&objects)?;
        sync_dir(&root)?;
        let poisoned = Arc::new(AtomicBool::new(false));
        let index =
            Index::open(&root.join("index"), &objects, sync, index_config, poisoned.clone(), &name, faults.clone())?;
        let identity = dir_identity(&root)?;
        Ok(Mountpath {
            root,
            objects,
            id,
            index,
            poisoned,
            name,
            io_errors: AtomicU64::new(0),
            recent: std::sync::Mutex::new((0, 0)),
            last_error_ms: AtomicU64::new(0),
            identity,
            faults,
            reads: Default::default(),
        })
    }

    /// How the mountpath is doing.
    pub fn health(&self) -> Health {
        if self.is_poisoned() {
            Health::Poisoned
        } else if crate::store::now_ms().saturating_sub(self.last_error_ms.load(Ordering::Relaxed))
            < limits::IO_ERROR_WINDOW_MS
        {
            Health::Degraded
        } else {
            Health::Ok
        }
    }

    /// Checks that the mountpath is still the directory opened at start, holding its id (a
    /// vanished, unmounted or replaced directory poisons it). Cheap: a stat and a small read.
    pub fn probe(&self) {
        if self.is_poisoned() {
            return;
        }
        let same = dir_identity(&self.root).is_ok_and(|i| i == self.identity)
            && read_id(&self.root).is_ok_and(|id| id == Some(self.id))
            && self.objects.is_dir();
        if !same {
            self.vanished();
        }
    }

    /// The write path's quick form of `probe` (one stat, after a copies write commits): the
    /// root is still the directory opened at start.
    pub fn probe_root(&self) {
        if !self.is_poisoned() && !dir_identity(&self.root).is_ok_and(|i| i == self.identity) {
            self.vanished();
        }
    }

    fn vanished(&self) {
        self.io_errors.fetch_add(1, Ordering::Relaxed);
        self.last_error_ms.store(crate::store::now_ms(), Ordering::Relaxed);
        self.poison(&"its directory vanished or was replaced");
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn data_path(&self, id: ObjectId) -> PathBuf {
        let mut p = self.objects.join(format!("{:02x}", id.fanout()));
        p.push(id.file_name());
        p
    }

    pub fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::Acquire)
    }

    /// Marks the mountpath failed: its objects answer "unavailable" until restart.
    pub fn poison(&self, why: &dyn std::fmt::Display) {
        if !self.poisoned.swap(true, Ordering::AcqRel) {
            tracing::error!(mountpath = %self.name, error = %why, "mountpath poisoned");
        }
    }

    /// Bytes free for new data and the size of the filesystem (statvfs).
    pub fn space(&self) -> Option<(u64, u64)> {
        let path = std::ffi::CString::new(self.root.as_os_str().as_encoded_bytes()).ok()?;
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        // SAFETY: path is NUL-terminated and st is a valid out-pointer.
        if unsafe { libc::statvfs(path.as_ptr(), &mut st) } != 0 {
            return None;
        }
        let frsize = st.f_frsize as u64;
        Some((st.f_bavail as u64 * frsize, st.f_blocks as u64 * frsize))
    }

    /// Refuses a write of `bytes` that would eat into the reserve the index needs to keep
    /// working (1% of the filesystem, at least 16 MiB): a full disk answers a clear error while
    /// reads, deletes and the index go on.
    pub fn check_space(&self, bytes: u64) -> Result<()> {
        if let Some((free, total)) = self.space() {
            let reserve = (total / 100).max(16 << 20).min(total / 4);
            if free < reserve.saturating_add(bytes) {
                return Err(Error::MountpathFull { mountpath: self.name.clone() });
            }
        }
        Ok(())
    }

    /// I/O errors seen on this mountpath since start.
    pub fn io_errors(&self) -> u64 {
        self.io_errors.load(Ordering::Relaxed)
    }

    /// No object and no upload in its index (a new mountpath, or one whose data was moved away).
    pub fn holds_nothing(&self) -> Result<bool> {
        use crate::index::Table;
        Ok(self.index.scan(Table::Objects, b"", &[0xff], 1)?.is_empty()
            && self.index.scan(Table::Uploads, b"", &[0xff], 1)?.is_empty())
    }

    pub fn check(&self) -> Result<()> {
        if self.is_poisoned() { Err(Error::Poisoned { mountpath: self.name.clone() }) } else { Ok(()) }
    }

    /// Maps an I/O error on this mountpath to a domain error, and counts it: past
    /// `IO_ERRORS_TO_POISON` within `IO_ERROR_WINDOW_MS` the drive is failing and the mountpath
    /// is poisoned. A full disk is a condition, not a failure: not counted.
    pub fn io_error(&self, err: std::io::Error) -> Error {
        let e = Error::from_io(err, &self.name);
        if matches!(e, Error::MountpathFull { .. }) {
            return e;
        }
        self.io_errors.fetch_add(1, Ordering::Relaxed);
        let now = crate::store::now_ms();
        self.last_error_ms.store(now, Ordering::Relaxed);
        let count = {
            let mut w = self.recent.lock().unwrap_or_else(|p| p.into_inner());
            if now.saturating_sub(w.0) > limits::IO_ERROR_WINDOW_MS {
                *w = (now, 0);
            }
            w.1 += 1;
            w.1
        };
        if count >= limits::IO_ERRORS_TO_POISON {
            self.poison(&format!("{count} I/O errors within {} s (last: {e})", limits::IO_ERROR_WINDOW_MS / 1000));
        }
        e
    }
}

/// The mountpath id kept in `root`, if the directory is a mountpath (nothing is created).
pub fn read_id(root: &Path) -> Result<Option<u64>> {
    match std::fs::read_to_string(root.join(ID_FILE)) {
        Ok(s) => {
            let mut parts = s.split_whitespace();
            match (parts.next(), parts.next(), parts.next()) {
                (Some("keel-mountpath"), Some("1"), Some(hex)) => {
                    u64::from_str_radix(hex, 16).map(Some).map_err(|_| Error::BadMeta("mountpath id file"))
                }
                _ => Err(Error::BadMeta("mountpath id file")),
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn read_or_create_id(root: &Path) -> Result<u64> {
    let path = root.join(ID_FILE);
    match read_id(root)? {
        Some(id) => Ok(id),
        None => {
            let id = random_u64();
            let tmp = root.join(format!("{ID_FILE}.tmp"));
            let mut f = std::fs::File::create(&tmp)?;
            writeln!(f, "keel-mountpath 1 {id:016x}")?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)?;
            sync_dir(root)?;
            Ok(id)
        }
    }
}

/// A directory's (device, inode).
fn dir_identity(dir: &Path) -> std::io::Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(dir)?;
    Ok((m.dev(), m.ino()))
}

/// 64 random bits from the OS.
pub fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    // SAFETY: getrandom writes at most b.len() bytes into b.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    if n == b.len() as isize {
        u64::from_le_bytes(b)
    } else {
        // getrandom cannot fail for 8 bytes on Linux >= 3.17; fall back to time and pid.
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
        t ^ (u64::from(std::process::id()) << 32)
    }
}

pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}
