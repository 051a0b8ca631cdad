//! The bytes of a write in progress, whatever becomes of them (an object, a part): hashed as they
//! come (MD5 for the ETag, the bucket's stored checksum, the flexible checksum asked for), held in
//! memory while small enough to live in the index record, else written to a fresh data file,
//! then sealed (length and checksums checked, data synced) before the index commit.

use std::sync::Arc;

use compio::BufResult;
use compio::fs::{File, OpenOptions};
use compio::io::AsyncWriteAtExt;

use crate::checksum::{BodyHasher, ChecksumKind, FlexAlgorithm, FlexHasher, StoredChecksum};
use crate::error::{Error, Result};
use crate::index::{CommitError, DirSet, SyncMode};
use crate::keys;
use crate::limits;
use crate::meta::{DataLoc, FlexChecksum, ObjectId};
use crate::mountpath::Mountpath;
use crate::store::Store;
use iobuf::IoBuffer;

enum Sink {
    Memory(Vec<u8>),
    File { file: File, id: ObjectId },
}

/// A write's bytes in progress. Dropped unfinished (or refused at commit), it removes its data
/// file; once a commit was sent and not refused, the index may reference the file, and one left
/// unreferenced is the orphan collector's rather than risking a dangling record.
pub struct DataWriter {
    pub(crate) store: Arc<Store>,
    pub(crate) mp: Arc<Mountpath>,
    hasher: BodyHasher,
    flex: Option<FlexHasher>,
    flex_algorithm: Option<FlexAlgorithm>,
    written: u64,
    declared: Option<u64>,
    /// Small enough bytes may stay in memory and live in the index record (objects, not parts).
    may_inline: bool,
    sink: Sink,
    pub(crate) commit_sent: bool,
    /// The data file is open with O_DIRECT (cleared at the first unaligned write).
    direct: bool,
    /// The other holders of a copies bucket's object: the same bytes go to a file of the same
    /// id on each (opened when the primary's file is).
    mirrors: Vec<Mirror>,
}

struct Mirror {
    mp: Arc<Mountpath>,
    file: Option<File>,
}

/// The bytes of a finished write, before any index commit.
pub(crate) struct Sealed {
    pub md5: [u8; 16],
    pub stored: StoredChecksum,
    pub flex: Option<FlexChecksum>,
    pub data: DataLoc,
    pub dirs: DirSet,
}

impl DataWriter {
    /// A writer of the bytes of `key` on `mp`, hashed with the bucket's stored `checksum` kind and
    /// the flexible checksum `flex`; `declared` is the length when the client said it.
    pub(crate) fn new(
        store: &Arc<Store>,
        mp: Arc<Mountpath>,
        key: &str,
        (checksum, flex): (ChecksumKind, Option<FlexAlgorithm>),
        declared: Option<u64>,
        may_inline: bool,
    ) -> Result<DataWriter> {
        keys::validate_key(key)?;
        if declared.is_some_and(|n| n > limits::OBJECT_PUT_BYTES_MAX) {
            return Err(Error::ObjectTooLarge);
        }
        mp.check()?;
        // A known size that does not fit is refused before the client sends it (before 100-continue).
        if let Some(n) = declared.filter(|n| *n as usize > limits::INLINE_BYTES_MAX) {
            mp.check_space(n)?;
        }
        let held = match declared {
            Some(n) if may_inline && n as usize <= limits::INLINE_BYTES_MAX => Vec::with_capacity(n as usize),
            _ => Vec::new(), // becomes a file on the first write
        };
        Ok(DataWriter {
            store: store.clone(),
            mp,
            hasher: BodyHasher::new(checksum),
            flex: flex.map(FlexHasher::new),
            flex_algorithm: flex,
            written: 0,
            declared,
            may_inline,
            sink: Sink::Memory(held),
            commit_sent: false,
            direct: false,
            mirrors: Vec::new(),
        })
    }

    /// Writes the same bytes to these mountpaths too (the other holders of a copies bucket's
    /// object; D36). Call before the first write.
    pub(crate) fn mirror_to(&mut self, mps: Vec<Arc<Mountpath>>) -> Result<()> {
        debug_assert_eq!(self.written, 0);
        for mp in &mps {
            mp.check()?;
            if let Some(n) = self.declared.filter(|n| *n as usize > limits::INLINE_BYTES_MAX) {
                mp.check_space(n)?;
            }
        }
        self.mirrors = mps.into_iter().map(|mp| Mirror { mp, file: None }).collect();
        Ok(())
    }

    /// The mountpaths mirrored to.
    pub(crate) fn mirrors(&self) -> Vec<Arc<Mountpath>> {
        self.mirrors.iter().map(|m| m.mp.clone()).collect()
    }

    /// Bytes accepted so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    fn stays_inline(&self, total: u64) -> bool {
        self.may_inline
            && total as usize <= limits::INLINE_BYTES_MAX
            && self.declared.is_none_or(|d| d as usize <= limits::INLINE_BYTES_MAX)
    }

    /// Hashes and stores `buf`; gives the buffer back for reuse.
    pub async fn write(&mut self, buf: IoBuffer) -> (Result<()>, IoBuffer) {
        let n = buf.len() as u64;
        if n == 0 {
            return (Ok(()), buf);
        }
        let total = self.written + n;
        if total > limits::OBJECT_PUT_BYTES_MAX || self.declared.is_some_and(|d| total > d) {
            return (Err(Error::ObjectTooLarge), buf);
        }
        self.hasher.update(buf.as_slice());
        if let Some(f) = &mut self.flex {
            f.update(buf.as_slice());
        }
        let offset = self.written;
        self.written = total;
        let inline = self.stays_inline(total);
        if let Sink::Memory(held) = &mut self.sink {
            if inline {
                held.extend_from_slice(buf.as_slice());
                return (Ok(()), buf);
            }
            if let Err(e) = self.spill().await {
                return (Err(e), buf);
            }
        }
        let Sink::File { file, .. } = &self.sink else { unreachable!("spilled to a file above") };
        let align = limits::IO_BUFFER_ALIGN_BYTES as u64;
        if self.direct && (!offset.is_multiple_of(align) || !n.is_multiple_of(align)) {
            // O_DIRECT needs aligned offsets and lengths: the tail goes through the cache.
            clear_odirect(file);
            self.direct = false;
        }
        if let Some(faults) = &self.store.faults {
            match faults.on_write() {
                crate::faults::WriteFault::None => {}
                crate::faults::WriteFault::Fail => {
                    return (Err(self.mp.io_error(crate::faults::injected())), buf);
                }
                crate::faults::WriteFault::Tear => {
                    // Half the bytes reach the file, then the write fails.
                    let half = buf.as_slice()[..buf.len() / 2].to_vec();
                    let _ = (&*file).write_all_at(half, offset).await;
                    return (Err(self.mp.io_error(crate::faults::injected())), buf);
                }
            }
        }
        let mut f = file;
        let BufResult(r, mut buf) = f.write_all_at(buf, offset).await;
        if let Err(e) = r {
            return (Err(self.mp.io_error(e)), buf);
        }
        for m in &self.mirrors {
            let Some(file) = &m.file else { continue };
            let mut f = file;
            let BufResult(r, back) = f.write_all_at(buf, offset).await;
            buf = back;
            if let Err(e) = r {
                return (Err(m.mp.io_error(e)), buf);
            }
        }
        (Ok(()), buf)
    }

    /// Moves what memory holds into a new data file (nothing happens once it is a file).
    async fn spill(&mut self) -> Result<()> {
        let Sink::Memory(held) = &mut self.sink else { return Ok(()) };
        let held = std::mem::take(held);
        let (file, id) = self.create_file().await?;
        let r = if held.is_empty() { Ok(()) } else { (&file).write_all_at(held.clone(), 0).await.0 };
        self.sink = Sink::File { file, id };
        r.map_err(|e| self.mp.io_error(e))?;
        for m in &mut self.mirrors {
            // Same id: the copy's record is the primary's, byte for byte.
            let opened =
                OpenOptions::new().write(true).create(true).truncate(true).mode(0o644).open(m.mp.data_path(id)).await;
            let file = opened.map_err(|e| m.mp.io_error(e))?;
            if !held.is_empty() {
                (&file).write_all_at(held.clone(), 0).await.0.map_err(|e| m.mp.io_error(e))?;
            }
            m.file = Some(file);
        }
        Ok(())
    }

    async fn create_file(&mut self) -> Result<(File, ObjectId)> {
        self.mp.check_space(self.declared.unwrap_or(limits::IO_BUFFER_BYTES as u64))?;
        // O_DIRECT only where every write but the last is a whole aligned buffer: a known size
        // past the inline limit. Filesystems without it (tmpfs) fall back to the page cache.
        let direct = self.store.odirect() && self.declared.is_some_and(|d| d as usize > limits::INLINE_BYTES_MAX);
        // Ids are unique per process start; O_EXCL guards against a clock that went backwards.
        let mut last = None;
        for _ in 0..4 {
            let id = self.store.next_id();
            let path = self.mp.data_path(id);
            let mut opts = OpenOptions::new();
            opts.write(true).create_new(true).mode(0o644);
            if direct {
                opts.custom_flags(libc::O_DIRECT);
            }
            let opened = match opts.open(&path).await {
                Err(e) if direct && e.raw_os_error() == Some(libc::EINVAL) => {
                    OpenOptions::new().write(true).create_new(true).mode(0o644).open(&path).await.map(|f| (f, false))
                }
                other => other.map(|f| (f, direct)),
            };
            match opened {
                Ok((f, d)) => {
                    self.direct = d;
                    return Ok((f, id));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
                Err(e) => return Err(self.mp.io_error(e)),
            }
        }
        Err(Error::Io(last.unwrap_or_else(|| std::io::ErrorKind::AlreadyExists.into())))
    }

    /// Leaves the MD5 to the caller, who hashes the bytes elsewhere (a backend's agent thread)
    /// and states it in `PutOptions::md5`. Call before the first write.
    pub fn skip_md5(&mut self) {
        debug_assert_eq!(self.written, 0);
        self.hasher.skip_md5();
    }

    /// Checks the length, Content-MD5 and flexible checksum, makes the bytes durable (under
    /// `--sync always`) and says where they are; with `file`, in a data file even when small or
    /// empty (parts: manifests reference files).
    pub(crate) async fn seal(
        &mut self,
        content_md5: Option<[u8; 16]>,
        flex_expected: Option<&[u8]>,
        file: bool,
    ) -> Result<Sealed> {
        if let Some(d) = self.declared
            && d != self.written
        {
            return Err(Error::IncompleteBody { expected: d, received: self.written });
        }
        if file {
            self.spill().await?;
        }
        let hasher = std::mem::replace(&mut self.hasher, BodyHasher::new(ChecksumKind::None));
        let (md5, stored) = hasher.finish();
        if content_md5.is_some_and(|m| m != md5) {
            return Err(Error::ChecksumMismatch { algorithm: "Content-MD5" });
        }
        assert!(
            flex_expected.is_none() || self.flex_algorithm.is_some(),
            "a flexible checksum is expected, so its algorithm was computed"
        );
        let flex = match (self.flex.take(), self.flex_algorithm) {
            (Some(h), Some(algorithm)) => {
                let value = h.finish();
                if flex_expected.is_some_and(|e| e != value.as_slice()) {
                    return Err(Error::ChecksumMismatch { algorithm: algorithm.name() });
                }
                Some(FlexChecksum { algorithm, value, parts: 0 })
            }
            _ => None,
        };
        let mut dirs = DirSet::default();
        let data = match &mut self.sink {
            Sink::Memory(v) => DataLoc::Inline(std::mem::take(v)),
            Sink::File { file, id } => {
                if self.store.sync_mode() == SyncMode::Always {
                    let injected = self.store.faults.as_ref().is_some_and(|f| f.on_fsync());
                    // The copies' files sync at the same time as the first's (distinct drives).
                    let mirrors = futures_util::future::join_all(
                        self.mirrors
                            .iter()
                            .filter_map(|m| m.file.as_ref().map(|f| async move { (m, f.sync_data().await) })),
                    );
                    let first =
                        async { if injected { Err(crate::faults::injected()) } else { file.sync_data().await } };
                    let (synced, mirrored) = futures_util::future::join(first, mirrors).await;
                    if let Err(e) = synced {
                        // The drive may have lost the data: never retry, never serve from it again.
                        self.mp.poison(&e);
                        return Err(Error::Poisoned { mountpath: self.mp.name().to_owned() });
                    }
                    for (m, r) in mirrored {
                        if let Err(e) = r {
                            m.mp.poison(&e);
                            return Err(Error::Poisoned { mountpath: m.mp.name().to_owned() });
                        }
                    }
                    dirs.insert(id.fanout());
                }
                DataLoc::File(*id)
            }
        };
        Ok(Sealed { md5, stored, flex, data, dirs })
    }

    /// Runs an index commit for these bytes. Once the commit is sent the file is no longer ours
    /// to remove, unless the committer refused it: then nothing of it was applied.
    pub(crate) async fn commit_with<T>(
        &mut self,
        commit: impl std::future::Future<Output = Result<T, CommitError>>,
    ) -> Result<T, CommitError> {
        self.commit_sent = true;
        let r = commit.await;
        if matches!(r, Err(CommitError::Refused(_))) {
            self.commit_sent = false;
        }
        r
    }
}

/// Turns O_DIRECT off on an open file (Linux allows it through F_SETFL).
fn clear_odirect(file: &File) {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on an fd we own; only the file status flags change.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags >= 0 {
            libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_DIRECT);
        }
    }
}

impl Drop for DataWriter {
    fn drop(&mut self) {
        if self.commit_sent {
            return;
        }
        if let Sink::File { id, .. } = &self.sink {
            // An unfinished or refused write: its file is unreachable. Rare, so a blocking unlink
            // is fine.
            if let Err(e) = std::fs::remove_file(self.mp.data_path(*id)) {
                tracing::warn!(mountpath = self.mp.name(), error = %e, "could not remove an abandoned data file");
            }
            for m in self.mirrors.iter().filter(|m| m.file.is_some()) {
                let _ = std::fs::remove_file(m.mp.data_path(*id));
            }
        }
    }
}
