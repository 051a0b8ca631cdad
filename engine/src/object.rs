//! Object data: streaming writes (PUT, UploadPart) and positioned reads (GET).
//!
//! A PUT streams into a fresh data file named by a new id (or into memory for objects small
//! enough to live in the index record), hashing as it goes. Only when every byte is written and
//! synced does the index entry swap; then the replaced object's files are unlinked. A GET that
//! opened the old files before the swap keeps reading them whole.

use std::path::Path;
use std::sync::Arc;

use compio::BufResult;
use compio::buf::IntoInner;
use compio::fs::{File, OpenOptions};
use compio::io::{AsyncReadAt, AsyncWriteAtExt};

use crate::checksum::{BodyHasher, ChecksumKind, FlexAlgorithm, FlexHasher, StoredChecksum};
use crate::error::{Error, Result};
use crate::index::{DirSet, SyncMode};
use crate::keys;
use crate::limits;
use crate::meta::{DataLoc, FlexChecksum, ObjectId, ObjectMeta, PartMeta, SystemMeta};
use crate::mountpath::Mountpath;
use crate::store::{Store, now_ms};
use iobuf::IoBuffer;

/// When a PUT may replace what the key holds; checked atomically with the commit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum WriteCondition {
    #[default]
    Always,
    /// `If-None-Match: *`: only if the key does not exist.
    Absent,
    /// `If-Match`: only if the key holds an object with one of these ETags (comma-separated,
    /// quoted or not; `*` is any object).
    EtagMatches(String),
}

impl WriteCondition {
    /// What a commit whose precondition no longer held means: for If-Match, that another write
    /// replaced the checked object in between; otherwise that the condition failed.
    pub(crate) fn refused(&self) -> Error {
        match self {
            WriteCondition::EtagMatches(_) => Error::WriteConflict,
            _ => Error::PreconditionFailed,
        }
    }
}

/// True when the comma-separated entity-tag list (`If-Match`, `If-None-Match`) matches `etag`
/// (unquoted), or is `*`. Weak tags compare by their value.
pub fn etag_list_matches(list: &str, etag: &str) -> bool {
    list.split(',').map(str::trim).any(|t| {
        if t == "*" {
            return true;
        }
        let t = t.strip_prefix("W/").unwrap_or(t);
        let t = t.strip_prefix('"').and_then(|t| t.strip_suffix('"')).unwrap_or(t);
        t == etag
    })
}

/// What a PUT carries besides its bytes.
#[derive(Clone, Debug, Default)]
pub struct PutOptions {
    pub system: SystemMeta,
    pub user: Vec<(String, String)>,
    /// Conditional write (`If-None-Match: *`, `If-Match`).
    pub condition: WriteCondition,
    /// `Content-MD5` sent by the client, verified before the commit.
    pub content_md5: Option<[u8; 16]>,
    /// The flexible checksum the client sent (header or trailer), verified before the commit.
    pub flex_expected: Option<Vec<u8>>,
    /// Who besides the bucket's owner may read the object.
    pub acl: crate::meta::CannedAcl,
}

enum Sink {
    Memory(Vec<u8>),
    File { file: File, id: ObjectId },
}

/// What a writer produces: a whole object, or one part of a multipart upload.
#[derive(Clone, Debug)]
pub(crate) enum Target {
    Object,
    Part { upload_id: String, part_number: u32 },
}

/// A PUT (or UploadPart) in progress. Dropping it without `finish` removes what was written,
/// unless a commit was already sent: then the index may reference the file, and an unreferenced
/// one is left to the orphan collector rather than risking a dangling record.
pub struct PutWriter {
    pub(crate) store: Arc<Store>,
    pub(crate) mp: Arc<Mountpath>,
    pub(crate) bucket: String,
    pub(crate) key: String,
    pub(crate) target: Target,
    hasher: BodyHasher,
    flex: Option<FlexHasher>,
    flex_algorithm: Option<FlexAlgorithm>,
    checksum_kind: ChecksumKind,
    written: u64,
    declared: Option<u64>,
    sink: Option<Sink>,
    commit_sent: bool,
    /// The data file is open with O_DIRECT (cleared at the first unaligned write).
    direct: bool,
}

/// The bytes of a finished write, before any index commit.
pub(crate) struct Sealed {
    pub md5: [u8; 16],
    pub stored: StoredChecksum,
    pub flex: Option<FlexChecksum>,
    pub data: DataLoc,
    pub dirs: DirSet,
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
    ) -> Result<PutWriter> {
        let bucket_meta = self.bucket(bucket)?;
        let mp = self.owner(bucket, key).clone();
        PutWriter::new(self, mp, bucket, key, Target::Object, (bucket_meta.checksum, flex), declared)
    }
}

impl PutWriter {
    pub(crate) fn new(
        store: &Arc<Store>,
        mp: Arc<Mountpath>,
        bucket: &str,
        key: &str,
        target: Target,
        (checksum_kind, flex): (ChecksumKind, Option<FlexAlgorithm>),
        declared: Option<u64>,
    ) -> Result<PutWriter> {
        keys::validate_key(key)?;
        if declared.is_some_and(|n| n > limits::OBJECT_PUT_BYTES_MAX) {
            return Err(Error::ObjectTooLarge);
        }
        mp.check()?;
        // A known size that does not fit is refused before the client sends it (before 100-continue).
        if let Some(n) = declared.filter(|n| *n as usize > limits::INLINE_BYTES_MAX) {
            mp.check_space(n)?;
        }
        let sink = match declared {
            Some(n) if n as usize <= limits::INLINE_BYTES_MAX => Sink::Memory(Vec::with_capacity(n as usize)),
            _ => Sink::Memory(Vec::new()), // becomes a file on the first write
        };
        Ok(PutWriter {
            store: store.clone(),
            mp,
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            target,
            hasher: BodyHasher::new(checksum_kind),
            flex: flex.map(FlexHasher::new),
            flex_algorithm: flex,
            checksum_kind,
            written: 0,
            declared,
            sink: Some(sink),
            commit_sent: false,
            direct: false,
        })
    }

    /// Bytes accepted so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    fn may_inline(&self, total: u64) -> bool {
        matches!(self.target, Target::Object)
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
        let in_memory = matches!(&self.sink, Some(Sink::Memory(_)));
        if in_memory && self.may_inline(total) {
            if let Some(Sink::Memory(v)) = &mut self.sink {
                v.extend_from_slice(buf.as_slice());
            }
            return (Ok(()), buf);
        }
        if in_memory && let Err(e) = self.spill().await {
            return (Err(e), buf);
        }
        match &self.sink {
            Some(Sink::File { file, .. }) => {
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
                let BufResult(r, buf) = f.write_all_at(buf, offset).await;
                (r.map_err(|e| self.mp.io_error(e)), buf)
            }
            _ => (Err(Error::Io(std::io::Error::other("writer in an invalid state"))), buf),
        }
    }

    /// Moves what memory holds into a new data file.
    async fn spill(&mut self) -> Result<()> {
        let held = match self.sink.take() {
            Some(Sink::Memory(v)) => v,
            other => {
                self.sink = other;
                return Ok(());
            }
        };
        let (file, id) = self.create_file().await?;
        let empty = held.is_empty();
        let r = if empty { Ok(()) } else { (&file).write_all_at(held, 0).await.0 };
        self.sink = Some(Sink::File { file, id });
        r.map_err(|e| self.mp.io_error(e))
    }

    async fn create_file(&mut self) -> Result<(File, ObjectId)> {
        self.mp.check_space(self.declared.unwrap_or(limits::IO_BUFFER_BYTES as u64))?;
        // O_DIRECT only where every write but the last is a whole aligned buffer: a known size
        // past the inline limit. Filesystems without it (tmpfs) fall back to the page cache.
        let direct = self.store.odirect() && self.declared.is_some_and(|d| d as usize > limits::INLINE_BYTES_MAX);
        // Ids are unique per process start; O_EXCL guards against a clock that went backwards.
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
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(self.mp.io_error(e)),
            }
        }
        Err(Error::Io(std::io::Error::other("could not find a free data-file id")))
    }

    /// Checks the length and Content-MD5, makes the bytes durable (under `--sync always`) and
    /// says where they are.
    pub(crate) async fn seal(&mut self, content_md5: Option<[u8; 16]>, flex_expected: Option<&[u8]>) -> Result<Sealed> {
        if let Some(d) = self.declared
            && d != self.written
        {
            return Err(Error::IncompleteBody { expected: d, received: self.written });
        }
        if matches!(self.target, Target::Part { .. }) {
            // Parts are always data files, even empty ones: manifests reference files.
            self.spill().await?;
        }
        let hasher = std::mem::replace(&mut self.hasher, BodyHasher::new(ChecksumKind::None));
        let (md5, stored) = hasher.finish();
        debug_assert_eq!(stored.kind, self.checksum_kind);
        if content_md5.is_some_and(|m| m != md5) {
            return Err(Error::ChecksumMismatch { algorithm: "Content-MD5" });
        }
        let flex = match (self.flex.take(), self.flex_algorithm) {
            (Some(h), Some(algorithm)) => {
                let value = h.finish();
                if flex_expected.is_some_and(|e| e != value.as_slice()) {
                    return Err(Error::ChecksumMismatch { algorithm: algorithm.name() });
                }
                Some(FlexChecksum { algorithm, value, parts: 0 })
            }
            _ if flex_expected.is_some() => {
                return Err(Error::Io(std::io::Error::other("a checksum was expected but none was computed")));
            }
            _ => None,
        };
        let mut dirs = DirSet::default();
        let data = match self.sink.as_ref() {
            Some(Sink::Memory(v)) => DataLoc::Inline(v.clone()),
            Some(Sink::File { file, id }) => {
                if self.store.sync_mode() == SyncMode::Always {
                    let synced = if self.store.faults.as_ref().is_some_and(|f| f.on_fsync()) {
                        Err(crate::faults::injected())
                    } else {
                        file.sync_data().await
                    };
                    if let Err(e) = synced {
                        // The drive may have lost the data: never retry, never serve from it again.
                        self.mp.poison(&e);
                        return Err(Error::Poisoned { mountpath: self.mp.name().to_owned() });
                    }
                    dirs.insert(id.fanout());
                }
                DataLoc::File(*id)
            }
            None => return Err(Error::Io(std::io::Error::other("writer in an invalid state"))),
        };
        Ok(Sealed { md5, stored, flex, data, dirs })
    }

    /// Runs an index commit for this writer's bytes. Once the commit is sent the file is no
    /// longer ours to remove, unless the committer says for certain it was not applied.
    pub(crate) async fn commit_with<T>(&mut self, commit: impl std::future::Future<Output = Result<T>>) -> Result<T> {
        self.commit_sent = true;
        let r = commit.await;
        match &r {
            Ok(_) => self.sink = None,
            // A precondition that failed means nothing of the request was applied.
            Err(
                Error::ConditionFailed { .. }
                | Error::PreconditionFailed
                | Error::WriteConflict
                | Error::NoSuchBucket
                | Error::NoSuchUpload,
            ) => self.commit_sent = false,
            Err(_) => {}
        }
        r
    }

    /// Verifies, syncs and commits the object; returns its metadata.
    pub async fn finish(mut self, opts: PutOptions) -> Result<ObjectMeta> {
        assert!(matches!(self.target, Target::Object), "finish is for whole objects");
        let sealed = self.seal(opts.content_md5, opts.flex_expected.as_deref()).await?;
        let meta = ObjectMeta {
            size: self.written,
            mtime_ms: now_ms(),
            md5: sealed.md5,
            etag_parts: 0,
            stored_checksum: sealed.stored,
            system: opts.system,
            user: opts.user,
            flex_checksum: sealed.flex,
            data: sealed.data,
            acl: opts.acl,
            epoch: self.store.epoch(),
            upload_id: None,
        };
        let (store, mp, bucket, key) = (self.store.clone(), self.mp.clone(), self.bucket.clone(), self.key.clone());
        // Checks that can fail run before the commit is sent, so a failure removes the data file.
        meta.check()?;
        let guard = store.write_guard(&mp, &bucket, &key, &opts.condition)?;
        self.commit_with(store.commit_object(&mp, &bucket, &key, &meta, sealed.dirs, guard)).await?;
        Ok(meta)
    }

    /// The part record a finished part writer produces.
    pub(crate) fn part_meta(&self, sealed: &Sealed) -> Result<PartMeta> {
        let id = match sealed.data {
            DataLoc::File(id) => id,
            _ => return Err(Error::Io(std::io::Error::other("a part without a data file"))),
        };
        Ok(PartMeta {
            id,
            size: self.written,
            md5: sealed.md5,
            mtime_ms: now_ms(),
            stored_checksum: sealed.stored.value.clone(),
            flex_checksum: sealed.flex.clone(),
        })
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

impl Drop for PutWriter {
    fn drop(&mut self) {
        if self.commit_sent {
            return;
        }
        if let Some(Sink::File { id, .. }) = self.sink.take() {
            // An unfinished or failed PUT: its file is unreachable. Rare, so a blocking unlink is fine.
            if let Err(e) = std::fs::remove_file(self.mp.data_path(id)) {
                tracing::warn!(mountpath = self.mp.name(), error = %e, "could not remove an abandoned data file");
            }
        }
    }
}

/// One contiguous piece of an object: a data file (or the inline bytes) and where it starts.
struct Segment {
    /// Offset of the segment's first byte within the object.
    start: u64,
    len: u64,
    /// Open when the segment overlaps the range this reader was opened for.
    file: Option<File>,
}

/// An object found in the index but not opened yet: conditions and ranges are decided on its
/// metadata, then only the files the answer needs are opened.
pub struct Located {
    pub meta: ObjectMeta,
    mp: Arc<Mountpath>,
}

/// An object opened for reading. Its files are open, so an overwrite or delete that commits
/// meanwhile does not disturb this read.
pub struct ObjectReader {
    pub meta: ObjectMeta,
    segments: Vec<Segment>,
    mp: Arc<Mountpath>,
}

/// A piece of an object's bytes as it lies: a range of an open data file, or bytes from the
/// index record (small objects). What a GET sends, in order. `mountpath` names where the file
/// lives, for `Store::read_failed` should reading it fail.
pub enum Piece {
    File { file: File, offset: u64, len: u64, mountpath: u64 },
    Inline(Vec<u8>),
}

/// How many times a read retries when an overwrite unlinked the files it was about to open.
const OPEN_ATTEMPTS_MAX: usize = 4;

impl Store {
    /// Looks an object up without opening anything.
    pub fn lookup(&self, bucket: &str, key: &str) -> Result<Located> {
        let (mp, meta) = self.locate(bucket, key)?;
        Ok(Located { meta, mp })
    }

    /// Looks up and opens a whole object for reading (retrying if an overwrite races the open).
    pub async fn open_object(&self, bucket: &str, key: &str) -> Result<ObjectReader> {
        let mut attempts = 0;
        loop {
            let located = self.lookup(bucket, key)?;
            let size = located.meta.size;
            match located.open(0, size).await {
                Err(Error::ObjectChanged) if attempts + 1 < OPEN_ATTEMPTS_MAX => attempts += 1,
                other => return other,
            }
        }
    }
}

impl Located {
    /// Opens the files holding bytes `start..start + len`. `Error::ObjectChanged` means an
    /// overwrite or delete unlinked them since the lookup: look up again.
    pub async fn open(self, start: u64, len: u64) -> Result<ObjectReader> {
        let end = start.saturating_add(len).min(self.meta.size);
        let mut segments = Vec::new();
        match &self.meta.data {
            DataLoc::Inline(_) => segments.push(Segment { start: 0, len: self.meta.size, file: None }),
            DataLoc::File(id) => {
                let file = if start < end { Some(self.open_file(*id).await?) } else { None };
                segments.push(Segment { start: 0, len: self.meta.size, file });
            }
            DataLoc::Parts(parts) => {
                segments.reserve(parts.len());
                let mut at = 0u64;
                for p in parts {
                    let overlaps = at < end && start < at + p.size;
                    let file = if overlaps { Some(self.open_file(p.id).await?) } else { None };
                    segments.push(Segment { start: at, len: p.size, file });
                    at += p.size;
                }
            }
        }
        Ok(ObjectReader { meta: self.meta, segments, mp: self.mp })
    }

    async fn open_file(&self, id: ObjectId) -> Result<File> {
        if self.mp.faults.as_ref().is_some_and(|f| f.on_read()) {
            return Err(self.mp.io_error(crate::faults::injected()));
        }
        let path = self.mp.data_path(id);
        match File::open(&path).await {
            Ok(f) => Ok(f),
            // An overwrite unlinked it since the lookup, unless its directory is gone too: then
            // the mountpath is failing.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && path.parent().is_some_and(Path::is_dir) => {
                Err(Error::ObjectChanged)
            }
            Err(e) => Err(self.mp.io_error(e)),
        }
    }
}

impl ObjectReader {
    fn segment_index(&self, offset: u64) -> Option<usize> {
        if offset >= self.meta.size {
            return None;
        }
        // Segments are sorted by start; find the last one starting at or before offset.
        let i = self.segments.partition_point(|s| s.start <= offset);
        Some(i - 1)
    }

    /// Gives up the reader for the pieces holding bytes `start..start + len`, in order: the open
    /// files of the segments the range overlaps, with their offsets, or the inline bytes.
    pub fn into_pieces(self, start: u64, len: u64) -> Vec<Piece> {
        let end = start.saturating_add(len).min(self.meta.size);
        if start >= end {
            return Vec::new();
        }
        if let DataLoc::Inline(mut bytes) = self.meta.data {
            bytes.truncate(end as usize);
            bytes.drain(..start as usize);
            return vec![Piece::Inline(bytes)];
        }
        let mut pieces = Vec::new();
        for seg in self.segments {
            let (from, to) = (start.max(seg.start), end.min(seg.start + seg.len));
            if from >= to {
                continue;
            }
            let file = seg.file.expect("Located::open opened every segment the range overlaps");
            pieces.push(Piece::File { file, offset: from - seg.start, len: to - from, mountpath: self.mp.id });
        }
        pieces
    }

    /// Checks the stored checksum of every segment overlapping `start..start + len` before any
    /// of it is sent (whole file, or whole parts of a multipart object): corrupt bytes are never
    /// served. `Error::Corrupt` when they do not match.
    pub async fn verify(&self, start: u64, len: u64) -> Result<()> {
        self.walk(start, len, None).await
    }

    /// Copies bytes `start..start + len` into `writer` (CopyObject, UploadPartCopy), checking the
    /// stored checksum of every segment the range overlaps on the way: a copy reads the bytes
    /// anyway, and a bit-rotted source must not become a copy with a fresh, matching checksum.
    /// Bytes of those segments outside the range are read and hashed, not written. On
    /// `Error::Corrupt` the writer holds part of the copy and must be dropped unfinished.
    pub async fn copy_verified(&self, start: u64, len: u64, writer: &mut PutWriter) -> Result<()> {
        self.walk(start, len, Some(writer)).await
    }

    /// Reads the segments overlapping `start..start + len`: whole, hashing them against their
    /// stored checksums (unless the object has none), and passing the bytes inside the range to
    /// `sink` when there is one.
    async fn walk(&self, start: u64, len: u64, mut sink: Option<&mut PutWriter>) -> Result<()> {
        let kind = self.meta.stored_checksum.kind;
        let end = start.saturating_add(len).min(self.meta.size);
        if start >= end || (kind == ChecksumKind::None && sink.is_none()) {
            return Ok(());
        }
        // The buffer lives in a slot so that every way out of the loop below gives it back.
        let mut slot = Some(iobuf::take_buffer());
        let result = async {
            for (i, seg) in self.segments.iter().enumerate() {
                let (seg_start, seg_end) = (seg.start, seg.start + seg.len);
                if seg_end <= start || end <= seg_start {
                    continue;
                }
                let want: Option<&[u8]> = match &self.meta.data {
                    _ if kind == ChecksumKind::None => None,
                    DataLoc::Inline(_) | DataLoc::File(_) => Some(&self.meta.stored_checksum.value),
                    DataLoc::Parts(parts) => parts[i].checksum.as_deref(),
                };
                // Without a checksum to check, only the range itself is read.
                let (from, to) =
                    if want.is_some() { (seg_start, seg_end) } else { (start.max(seg_start), end.min(seg_end)) };
                let mut h = BodyHasher::new(if want.is_some() { kind } else { ChecksumKind::None });
                let mut pos = from;
                while pos < to {
                    let want_bytes = ((to - pos) as usize).min(limits::IO_BUFFER_BYTES);
                    let buf = slot.take().unwrap_or_else(iobuf::take_buffer);
                    let (r, buf) = self.read_at(buf, pos, want_bytes).await;
                    let buf = slot.insert(buf);
                    let n = match r? {
                        0 => return Err(Error::Corrupt { algorithm: "size" }),
                        n => n,
                    };
                    if want.is_some() {
                        h.update(buf.as_slice());
                    }
                    if let Some(w) = sink.as_deref_mut() {
                        let lo = (start.max(pos) - pos) as usize;
                        let hi = (end.min(pos + n as u64).max(pos) - pos) as usize;
                        if lo < hi {
                            let out = if lo == 0 && hi == n {
                                slot.take().unwrap_or_else(iobuf::take_buffer)
                            } else {
                                let mut part = iobuf::take_buffer();
                                part.extend_from_slice(&buf.as_slice()[lo..hi]);
                                part
                            };
                            let (r, back) = w.write(out).await;
                            iobuf::give_buffer(back);
                            r?;
                        }
                    }
                    pos += n as u64;
                }
                if let Some(want) = want
                    && h.finish().1.value != want
                {
                    tracing::error!(
                        mountpath = self.mp.name(),
                        segment = i,
                        "stored checksum mismatch: refusing to use the object"
                    );
                    return Err(Error::Corrupt { algorithm: kind.name() });
                }
            }
            Ok(())
        }
        .await;
        if let Some(buf) = slot {
            iobuf::give_buffer(buf);
        }
        result
    }

    /// Reads up to `want` bytes at `offset` into `buf` (cleared first), staying within one
    /// segment. Returns the buffer holding the bytes read; 0 bytes only at the end of the object.
    pub async fn read_at(&self, mut buf: IoBuffer, offset: u64, want: usize) -> (Result<usize>, IoBuffer) {
        buf.clear();
        let want = want.min(buf.capacity());
        if want == 0 {
            // Nothing to read (an empty part, or an empty selection at a segment boundary).
            return (Ok(0), buf);
        }
        let Some(i) = self.segment_index(offset) else {
            return (Ok(0), buf);
        };
        let seg = &self.segments[i];
        let within = offset - seg.start;
        let n = (want as u64).min(seg.len - within) as usize;
        match (&seg.file, &self.meta.data) {
            (None, DataLoc::Inline(v)) => {
                let w = within as usize;
                buf.extend_from_slice(&v[w..w + n]);
                (Ok(n), buf)
            }
            (Some(file), _) => {
                if self.mp.faults.as_ref().is_some_and(|f| f.on_read()) {
                    return (Err(self.mp.io_error(crate::faults::injected())), buf);
                }
                let mut filled = 0;
                let mut buf = buf;
                while filled < n {
                    let slice = compio::buf::IoBuf::slice(buf, filled..n);
                    let BufResult(r, slice) = file.read_at(slice, within + filled as u64).await;
                    buf = slice.into_inner();
                    match r {
                        // The file is shorter than its record says.
                        Ok(0) => return (Err(Error::Corrupt { algorithm: "size" }), buf),
                        Ok(m) => filled += m,
                        Err(e) => return (Err(self.mp.io_error(e)), buf),
                    }
                }
                (Ok(n), buf)
            }
            _ => (Err(Error::BadMeta("read outside the range the object was opened for")), buf),
        }
    }
}
