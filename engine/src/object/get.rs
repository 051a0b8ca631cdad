//! Reading objects: a record located, its files opened for the range an answer needs, and
//! handed out as pieces (GET), verified against stored checksums, or copied (copy operations).

use std::path::Path;
use std::sync::Arc;

use compio::BufResult;
use compio::buf::IntoInner;
use compio::fs::File;
use compio::io::AsyncReadAt;

use super::DataWriter;
use crate::checksum::{BodyHasher, ChecksumKind};
use crate::error::{Error, Result};
use crate::keys;
use crate::limits;
use crate::meta::{DataLoc, ObjectId, ObjectMeta};
use crate::mountpath::Mountpath;
use crate::store::Store;
use iobuf::IoBuffer;

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
    /// A cached copy's key in its mountpath's read clock: opening it counts as a read.
    clock_key: Option<u64>,
    /// Other mountpaths holding the same record (a copies bucket), tried in order when `mp`'s
    /// files cannot be read.
    others: Vec<Arc<Mountpath>>,
    /// Where a copy that failed a read is reported for repair, with the bucket and key.
    suspects: Option<(Arc<crate::copies::Suspects>, String, String)>,
    /// `others` are candidates only: each is used if it holds the same record.
    check_others: bool,
}

/// An object opened for reading. Its files are open, so an overwrite or delete that commits
/// meanwhile does not disturb this read.
pub struct ObjectReader {
    pub meta: ObjectMeta,
    segments: Segments,
    mp: Arc<Mountpath>,
}

/// An object's segments: one for a plain object (no allocation), one per part for a multipart
/// one.
enum Segments {
    One(Segment),
    Many(Vec<Segment>),
}

impl std::ops::Deref for Segments {
    type Target = [Segment];
    fn deref(&self) -> &[Segment] {
        match self {
            Segments::One(s) => std::slice::from_ref(s),
            Segments::Many(v) => v,
        }
    }
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
        if self.wanted_copies(bucket) > 1 {
            keys::validate_key(key)?;
            let mut located = self.locate_copies(bucket, key)?;
            located.clock_key =
                located.meta.remote.is_some().then(|| located.mp.reads.key(bucket.as_bytes(), key.as_bytes()));
            return Ok(located);
        }
        let (mp, meta) = self.locate(bucket, key)?;
        let clock_key = meta.remote.is_some().then(|| mp.reads.key(bucket.as_bytes(), key.as_bytes()));
        Ok(Located { meta, mp, clock_key, others: Vec::new(), suspects: None, check_others: false })
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
    /// A record that is not (yet) in the index, readable from `mp`: a completion's manifest.
    pub(crate) fn new(meta: ObjectMeta, mp: Arc<Mountpath>) -> Located {
        Located { meta, mp, clock_key: None, others: Vec::new(), suspects: None, check_others: false }
    }

    /// The mountpath whose record this is.
    pub(crate) fn mountpath(&self) -> &Arc<Mountpath> {
        &self.mp
    }

    /// A record of a copies bucket, on `mp` and (the same record) on `others`.
    pub(crate) fn with_copies(
        meta: ObjectMeta,
        mp: Arc<Mountpath>,
        others: Vec<Arc<Mountpath>>,
        suspects: (Arc<crate::copies::Suspects>, String, String),
        check_others: bool,
    ) -> Located {
        Located { meta, mp, clock_key: None, others, suspects: Some(suspects), check_others }
    }

    /// Opens the files holding bytes `start..start + len`. `Error::ObjectChanged` means an
    /// overwrite or delete unlinked them since the lookup: look up again. Another copy is
    /// opened when this one's files cannot be (and this one is reported for repair).
    pub async fn open(self, start: u64, len: u64) -> Result<ObjectReader> {
        self.open_checked(start, len, false).await
    }

    /// `open`, and with `verify` the stored checksums of the range's segments checked before
    /// anything is served: a copy that fails is reported for repair and the next one tried.
    pub async fn open_checked(mut self, start: u64, len: u64, verify: bool) -> Result<ObjectReader> {
        let others = std::mem::take(&mut self.others);
        let suspects = self.suspects.take();
        let check = self.check_others;
        let mut candidates = others.into_iter();
        let mut this = self;
        loop {
            // Kept to match the other copies against only when there are others to try.
            let meta = (candidates.len() > 0).then(|| this.meta.clone());
            let clock_key = this.clock_key;
            let opened = match this.open_here(start, len).await {
                Ok(reader) if verify => match reader.verify(start, len).await {
                    Ok(()) => Ok(reader),
                    Err(e) => Err(e),
                },
                other => other,
            };
            match opened {
                Ok(reader) => return Ok(reader),
                // A file gone: an overwrite since the lookup (every copy's files go), or a copy
                // damaged; either way another copy may still be whole.
                Err(e) => {
                    let Some(meta) = meta else { return Err(e) };
                    // The next candidate holding this very record.
                    let same = |mp: &Arc<Mountpath>| match (&suspects, check) {
                        (Some((_, bucket, key)), true) => {
                            let ikey = keys::object_index_key(bucket, key.as_bytes());
                            mp.index
                                .get(crate::index::Table::Objects, &ikey)
                                .ok()
                                .flatten()
                                .is_some_and(|v| ObjectMeta::decode(&v).is_ok_and(|m| m == meta))
                        }
                        _ => true,
                    };
                    let Some(next) = candidates.by_ref().find(same) else { return Err(e) };
                    if let Some((s, bucket, key)) = &suspects {
                        tracing::warn!(bucket, key, error = %e, "copies: a copy failed a read; served from another");
                        s.report(bucket, key);
                    }
                    this =
                        Located { meta, mp: next, clock_key, others: Vec::new(), suspects: None, check_others: false };
                }
            }
        }
    }

    async fn open_here(self, start: u64, len: u64) -> Result<ObjectReader> {
        if let Some(k) = self.clock_key {
            self.mp.reads.touch(k);
        }
        let end = start.saturating_add(len).min(self.meta.size);
        let segments = match &self.meta.data {
            DataLoc::Inline(_) => Segments::One(Segment { start: 0, len: self.meta.size, file: None }),
            DataLoc::File(id) => {
                let file = if start < end { Some(self.open_file(*id).await?) } else { None };
                Segments::One(Segment { start: 0, len: self.meta.size, file })
            }
            DataLoc::Parts(parts) => {
                let mut segments = Vec::with_capacity(parts.len());
                let mut at = 0u64;
                for p in parts {
                    let overlaps = at < end && start < at + p.size;
                    let file = if overlaps { Some(self.open_file(p.id).await?) } else { None };
                    segments.push(Segment { start: at, len: p.size, file });
                    at += p.size;
                }
                Segments::Many(segments)
            }
        };
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

    /// An inline object's bytes `start..start + len`, taken out of the reader (`None` for an
    /// object in files: `into_pieces` then).
    pub fn take_inline(&mut self, start: u64, len: u64) -> Option<Vec<u8>> {
        let end = start.saturating_add(len).min(self.meta.size);
        let DataLoc::Inline(bytes) = &mut self.meta.data else { return None };
        let mut bytes = std::mem::take(bytes);
        if start >= end {
            return Some(Vec::new());
        }
        bytes.truncate(end as usize);
        bytes.drain(..start as usize);
        Some(bytes)
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
        let (one, many) = match self.segments {
            Segments::One(s) => (Some(s), Vec::new()),
            Segments::Many(v) => (None, v),
        };
        for seg in one.into_iter().chain(many) {
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
    pub async fn copy_verified(&self, start: u64, len: u64, writer: &mut DataWriter) -> Result<()> {
        self.walk(start, len, Some(writer)).await
    }

    /// Reads the segments overlapping `start..start + len`: whole, hashing them against their
    /// stored checksums (unless the object has none), and passing the bytes inside the range to
    /// `sink` when there is one.
    async fn walk(&self, start: u64, len: u64, mut sink: Option<&mut DataWriter>) -> Result<()> {
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
                // Only the stored checksum is compared: no MD5 (unless it is the stored kind).
                h.skip_md5();
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
