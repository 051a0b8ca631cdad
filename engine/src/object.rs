//! Object data: streaming writes (PUT) and positioned reads (GET).
//!
//! A PUT streams into a fresh data file named by a new id (or into memory for objects small
//! enough to live in the index record), hashing as it goes. Only when every byte is written and
//! synced does the index entry swap; then the replaced object's files are unlinked. A GET that
//! opened the old file before the swap keeps reading it whole.

use std::sync::Arc;

use compio::BufResult;
use compio::buf::IntoInner;
use compio::fs::{File, OpenOptions};
use compio::io::{AsyncReadAt, AsyncWriteAtExt};

use crate::buffer::IoBuffer;
use crate::checksum::{BodyHasher, ChecksumKind};
use crate::error::{Error, Result};
use crate::index::{DirSet, SyncMode};
use crate::keys;
use crate::limits;
use crate::meta::{DataLoc, FlexChecksum, ObjectId, ObjectMeta, SystemMeta};
use crate::mountpath::Mountpath;
use crate::store::{Store, now_ms};

/// What a PUT carries besides its bytes.
#[derive(Clone, Debug, Default)]
pub struct PutOptions {
    pub system: SystemMeta,
    pub user: Vec<(String, String)>,
    /// `If-None-Match: *`: fail if the key exists when the write commits.
    pub if_absent: bool,
    /// `Content-MD5` sent by the client, verified before the commit.
    pub content_md5: Option<[u8; 16]>,
    /// A flexible checksum the server has already verified.
    pub flex_checksum: Option<FlexChecksum>,
}

enum Sink {
    Memory(Vec<u8>),
    File { file: File, id: ObjectId },
}

/// A PUT in progress. Dropping it without `finish` removes what was written.
pub struct PutWriter {
    store: Arc<Store>,
    mp: Arc<Mountpath>,
    bucket: String,
    key: String,
    hasher: BodyHasher,
    checksum_kind: ChecksumKind,
    written: u64,
    declared: Option<u64>,
    sink: Option<Sink>,
}

impl Store {
    /// Starts a PUT of `bucket/key`; `declared` is the body length when the client said it.
    pub fn put_writer(self: &Arc<Self>, bucket: &str, key: &str, declared: Option<u64>) -> Result<PutWriter> {
        let bucket_meta = self.bucket(bucket)?;
        keys::validate_key(key)?;
        if declared.is_some_and(|n| n > limits::OBJECT_PUT_BYTES_MAX) {
            return Err(Error::ObjectTooLarge);
        }
        let mp = self.owner(bucket, key).clone();
        mp.check()?;
        let sink = match declared {
            Some(n) if n as usize <= limits::INLINE_BYTES_MAX => Sink::Memory(Vec::with_capacity(n as usize)),
            Some(_) => Sink::Memory(Vec::new()), // becomes a file on the first write
            None => Sink::Memory(Vec::new()),
        };
        Ok(PutWriter {
            store: self.clone(),
            mp,
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            hasher: BodyHasher::new(bucket_meta.checksum),
            checksum_kind: bucket_meta.checksum,
            written: 0,
            declared,
            sink: Some(sink),
        })
    }
}

impl PutWriter {
    /// Bytes accepted so far.
    pub fn written(&self) -> u64 {
        self.written
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
        let offset = self.written;
        self.written = total;
        let in_memory = matches!(&self.sink, Some(Sink::Memory(_)));
        let fits_inline = total as usize <= limits::INLINE_BYTES_MAX
            && self.declared.is_none_or(|d| d as usize <= limits::INLINE_BYTES_MAX);
        if in_memory && fits_inline {
            if let Some(Sink::Memory(v)) = &mut self.sink {
                v.extend_from_slice(buf.as_slice());
            }
            return (Ok(()), buf);
        }
        if in_memory {
            // Spill to a data file: first what memory holds, then this buffer.
            let held = match self.sink.take() {
                Some(Sink::Memory(v)) => v,
                _ => unreachable!("checked in_memory"),
            };
            match self.create_file().await {
                Ok((file, id)) => {
                    let held_len = held.len() as u64;
                    let BufResult(r, _) = (&file).write_all_at(held, 0).await;
                    self.sink = Some(Sink::File { file, id });
                    if let Err(e) = r {
                        return (Err(self.mp.io_error(e)), buf);
                    }
                    debug_assert_eq!(held_len, offset);
                }
                Err(e) => return (Err(e), buf),
            }
        }
        match &self.sink {
            Some(Sink::File { file, .. }) => {
                let mut f = file;
                let BufResult(r, buf) = f.write_all_at(buf, offset).await;
                (r.map_err(|e| self.mp.io_error(e)), buf)
            }
            _ => (Err(Error::Io(std::io::Error::other("writer in an invalid state"))), buf),
        }
    }

    async fn create_file(&self) -> Result<(File, ObjectId)> {
        // Ids are unique per process start; O_EXCL guards against a clock that went backwards.
        for _ in 0..4 {
            let id = self.store.next_id();
            let path = self.mp.data_path(id);
            match OpenOptions::new().write(true).create_new(true).mode(0o644).open(&path).await {
                Ok(f) => return Ok((f, id)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(self.mp.io_error(e)),
            }
        }
        Err(Error::Io(std::io::Error::other("could not find a free data-file id")))
    }

    /// Verifies, syncs and commits the object; returns its metadata.
    pub async fn finish(mut self, opts: PutOptions) -> Result<ObjectMeta> {
        if let Some(d) = self.declared
            && d != self.written
        {
            return Err(Error::IncompleteBody { expected: d, received: self.written });
        }
        let hasher = std::mem::replace(&mut self.hasher, BodyHasher::new(ChecksumKind::None));
        let (md5, stored_checksum) = hasher.finish();
        debug_assert_eq!(stored_checksum.kind, self.checksum_kind);
        if opts.content_md5.is_some_and(|m| m != md5) {
            return Err(Error::ChecksumMismatch { algorithm: "Content-MD5" });
        }
        let mut dirs = DirSet::default();
        let data = match self.sink.as_ref() {
            Some(Sink::Memory(v)) => DataLoc::Inline(v.clone()),
            Some(Sink::File { file, id }) => {
                if self.store.sync_mode() == SyncMode::Always {
                    if let Err(e) = file.sync_data().await {
                        // The drive may have lost the data: never retry, never serve from it again.
                        self.mp.poison(&e);
                        return Err(Error::Poisoned { mountpath: self.mp.name().to_owned() });
                    }
                    dirs.insert(id.fanout());
                }
                DataLoc::File(*id)
            }
            None => {
                return Err(Error::Io(std::io::Error::other("writer in an invalid state")));
            }
        };
        let meta = ObjectMeta {
            size: self.written,
            mtime_ms: now_ms(),
            md5,
            etag_parts: 0,
            stored_checksum,
            system: opts.system,
            user: opts.user,
            flex_checksum: opts.flex_checksum,
            data,
        };
        let store = self.store.clone();
        let mp = self.mp.clone();
        store.commit_object(&mp, &self.bucket, &self.key, &meta, dirs, opts.if_absent).await?;
        // Committed: the file now belongs to the index.
        self.sink = None;
        Ok(meta)
    }
}

impl Drop for PutWriter {
    fn drop(&mut self) {
        if let Some(Sink::File { id, .. }) = self.sink.take() {
            // An unfinished or failed PUT: its file is unreachable. Rare, so a blocking unlink is fine.
            if let Err(e) = std::fs::remove_file(self.mp.data_path(id)) {
                tracing::warn!(mountpath = self.mp.name(), error = %e, "could not remove an abandoned data file");
            }
        }
    }
}

/// One contiguous piece of an object: a data file (or the inline bytes) and where the piece starts.
struct Segment {
    /// Offset of the segment's first byte within the object.
    start: u64,
    len: u64,
    file: Option<File>,
}

/// An object opened for reading. Its files are open, so an overwrite or delete that commits
/// meanwhile does not disturb this read.
pub struct ObjectReader {
    pub meta: ObjectMeta,
    segments: Vec<Segment>,
    mp: Arc<Mountpath>,
}

/// A piece of an object as it lies on disk, for splicing or positioned reads.
pub struct FileSpan<'a> {
    pub file: &'a File,
    pub file_offset: u64,
    pub len: u64,
}

impl Store {
    /// Looks up and opens an object for reading.
    pub async fn open_object(&self, bucket: &str, key: &str) -> Result<ObjectReader> {
        // An overwrite may unlink the file between the lookup and the open: look again.
        let mut attempts = 0;
        loop {
            let meta = self.head_object(bucket, key)?;
            let mp = self.owner(bucket, key).clone();
            match open_segments(&mp, &meta).await {
                Ok(segments) => return Ok(ObjectReader { meta, segments, mp }),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && attempts < 3 => attempts += 1,
                Err(e) => return Err(mp.io_error(e)),
            }
        }
    }
}

async fn open_segments(mp: &Mountpath, meta: &ObjectMeta) -> std::io::Result<Vec<Segment>> {
    Ok(match &meta.data {
        DataLoc::Inline(_) => vec![Segment { start: 0, len: meta.size, file: None }],
        DataLoc::File(id) => {
            let file = File::open(mp.data_path(*id)).await?;
            vec![Segment { start: 0, len: meta.size, file: Some(file) }]
        }
        DataLoc::Parts(parts) => {
            let mut out = Vec::with_capacity(parts.len());
            let mut start = 0;
            for p in parts {
                let file = File::open(mp.data_path(p.id)).await?;
                out.push(Segment { start, len: p.size, file: Some(file) });
                start += p.size;
            }
            out
        }
    })
}

impl ObjectReader {
    /// The object's bytes when they live in the index record.
    pub fn inline(&self) -> Option<&[u8]> {
        match &self.meta.data {
            DataLoc::Inline(v) => Some(v),
            _ => None,
        }
    }

    fn segment_index(&self, offset: u64) -> Option<usize> {
        if offset >= self.meta.size {
            return None;
        }
        // Segments are sorted by start; find the last one starting at or before offset.
        let i = self.segments.partition_point(|s| s.start <= offset);
        Some(i - 1)
    }

    /// The on-disk span holding `offset`, at most `len` bytes long (None for inline objects).
    pub fn span(&self, offset: u64, len: u64) -> Option<FileSpan<'_>> {
        let seg = &self.segments[self.segment_index(offset)?];
        let file = seg.file.as_ref()?;
        let within = offset - seg.start;
        Some(FileSpan { file, file_offset: within, len: len.min(seg.len - within) })
    }

    /// Reads up to `want` bytes at `offset` into `buf` (cleared first), staying within one
    /// segment. Returns the buffer holding the bytes read; 0 bytes only at the end of the object.
    pub async fn read_at(&self, mut buf: IoBuffer, offset: u64, want: usize) -> (Result<usize>, IoBuffer) {
        buf.clear();
        let want = want.min(buf.capacity());
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
                let mut filled = 0;
                let mut buf = buf;
                while filled < n {
                    let slice = compio::buf::IoBuf::slice(buf, filled..n);
                    let BufResult(r, slice) = file.read_at(slice, within + filled as u64).await;
                    buf = slice.into_inner();
                    match r {
                        Ok(0) => {
                            // The file is shorter than its record says.
                            return (Err(Error::Corrupt { algorithm: "size" }), buf);
                        }
                        Ok(m) => filled += m,
                        Err(e) => return (Err(self.mp.io_error(e)), buf),
                    }
                }
                (Ok(n), buf)
            }
            _ => (Err(Error::BadMeta("segment without a file")), buf),
        }
    }
}
