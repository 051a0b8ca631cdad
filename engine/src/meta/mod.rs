//! Index records: object and bucket metadata and their on-disk encoding.
//!
//! Every record starts with a format byte; fields follow in a fixed order. Integers are
//! little-endian; `bytes` is a `u32` length followed by that many bytes; `str` is `bytes` holding
//! UTF-8; `opt<T>` is a presence byte (0 or 1) followed by `T` when present. Records are written in
//! the newest format; older formats still decode.
//!
//! Object record, format 8:
//! ```text
//! 0      u8      format = 8
//! 1      u64     size in bytes
//! 9      u64     mtime, milliseconds since the Unix epoch
//! 17     [u8;16] MD5 (single PUT) or MD5 of part MD5s (multipart)
//! 33     u32     parts count of the ETag (0 = single-part ETag)
//! 37     u64     epoch: the node generation that wrote the record (mountpath reconciliation, D24)
//! 45     u8      canned ACL (0 private, 1 public-read, 2 authenticated-read, 3 public-read-write
//!                (reads as public-read), 4 bucket-owner-read, 5 bucket-owner-full-control)
//! 46     u128    version stamp (D46): orders a key's versions, newest largest; 0 for records
//!                written before versions (older than any other)
//! 62     u8      version flags: bit 0 the null version, bit 1 a delete marker
//! 63     opt<(str ETag, opt<str> version)> the remote object this is a cached copy of (backend
//!                buckets): its ETag as the remote sent it, without quotes, and its version
//!        u8      stored checksum kind (0 none, 1 xxhash, 2 crc32c, 3 md5), then bytes value
//!        opt<str> content-type, content-encoding, content-disposition, cache-control,
//!                 expires, content-language (in this order)
//!        u16     user metadata pairs, each str name, str value
//!        opt<(u8 algorithm, bytes value, u32 composite parts)> flexible checksum
//!        opt<str> the multipart upload this object completed (a repeated Complete answers again)
//!        u8      tag count, then each tag: str key, str value (object tagging)
//!        u8      retention mode (0 none, 1 GOVERNANCE, 2 COMPLIANCE), then u64 retain-until ms
//!                when there is one; u8 legal hold (object lock, D47)
//!        opt<str> the object's owner when it is not its bucket's (object ownership, D52)
//!        grants  explicit ACL grants (`acl::write_grants`, D53)
//!        u8      data location: 0 inline (bytes), 1 file (u128 id),
//!                2 parts (u32 count, then per part: u128 id, u64 size, [u8;16] md5,
//!                opt<bytes> the part's stored checksum, of the object's stored kind (a
//!                multipart object's own stored checksum value is empty), opt<flexible
//!                checksum> the part's)
//! ```
//! Format 7 is format 8 without the grants (it reads as none).
//! Format 6 is format 7 without the owner (it reads as the bucket's).
//! Format 5 is format 6 without the lock (it reads as none).
//! Format 4 is format 5 without the version stamp and flags (it reads as stamp 0, the null
//! version, no delete marker).
//! Format 3 is format 4 without the tags (it reads as none).
//! Format 2 is format 3 without the remote object (it reads as none). Format 1 is format 2
//! without the epoch, the ACL, the upload id and the parts' flexible checksums: it reads as
//! epoch 0, private, none.
//!
//! Upload and part records (multipart uploads in progress) are described at `UploadMeta` and
//! `PartMeta`.

mod acl;
mod bucket;
mod codec;
mod cors;
mod lifecycle;
mod lock;
mod tags;
#[cfg(test)]
mod tests;
mod upload;

use crate::checksum::{ChecksumKind, FlexAlgorithm, StoredChecksum};
use crate::error::{Error, Result};

pub use acl::{GRANTS_MAX, Grant, Grantee, Grants, Permission, granted, public as public_grants};
pub use bucket::{
    BUCKET_RECORD_FORMAT, BucketMeta, BucketPolicy, CannedAcl, Ownership, PublicAccessBlock, RemoteBucket, Versioning,
};
use codec::{Reader, Writer, read_headers, write_headers};
pub use cors::{CORS_LIST_MAX, CORS_RULES_MAX, Cors, CorsRule};
pub use lifecycle::{Expiration, LIFECYCLE_RULES_MAX, Lifecycle, LifecycleRule, RuleFilter};
pub use lock::{DefaultRetention, LockMode, ObjectLock, Retention};
pub use tags::{BUCKET_TAGS_MAX, OBJECT_TAGS_MAX, Tags, validate_tags};
pub use upload::{PART_RECORD_FORMAT, PartMeta, UPLOAD_RECORD_FORMAT, UploadMeta};

/// The format byte object records are written with (format 1 still decodes). Changing what a
/// record holds means a new format number, a decoder for the old one, and a new fixture in
/// `engine/tests/record_format.rs`.
pub const OBJECT_RECORD_FORMAT: u8 = 8;

/// Last representable modification time (9999-12-31T23:59:59.999Z): dates are printed as HTTP
/// dates, which end there.
pub const MTIME_MS_MAX: u64 = 253_402_300_799_999;

/// Unique name of a data file on a mountpath.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectId(pub u128);

impl ObjectId {
    /// File name: 32 lowercase hex digits.
    pub fn file_name(self) -> String {
        format!("{:032x}", self.0)
    }

    /// Fan-out directory index (0..256) the file lives under.
    pub fn fanout(self) -> u8 {
        (self.0 & 0xff) as u8
    }
}

/// Standard headers S3 stores with an object and returns on GET/HEAD.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SystemMeta {
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
    pub content_disposition: Option<String>,
    pub cache_control: Option<String>,
    pub expires: Option<String>,
    pub content_language: Option<String>,
}

impl SystemMeta {
    fn fields(&self) -> [&Option<String>; 6] {
        [
            &self.content_type,
            &self.content_encoding,
            &self.content_disposition,
            &self.cache_control,
            &self.expires,
            &self.content_language,
        ]
    }
}

/// A flexible checksum (`x-amz-checksum-*`) of an object or part.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlexChecksum {
    pub algorithm: FlexAlgorithm,
    pub value: Vec<u8>,
    /// 0 for a full-object checksum; N for a composite checksum over N parts (shown as `-N`).
    pub parts: u32,
}

impl FlexChecksum {
    fn write(&self, w: &mut Writer) {
        w.u8(self.algorithm.code());
        w.bytes(&self.value);
        w.u32(self.parts);
    }

    fn read(r: &mut Reader<'_>) -> Result<FlexChecksum> {
        let algorithm = FlexAlgorithm::from_code(r.u8()?).ok_or(Error::BadMeta("flex checksum algorithm"))?;
        Ok(FlexChecksum { algorithm, value: r.bytes()?.to_vec(), parts: r.u32()? })
    }

    fn write_opt(f: &Option<FlexChecksum>, w: &mut Writer) {
        match f {
            None => w.u8(0),
            Some(f) => {
                w.u8(1);
                f.write(w);
            }
        }
    }

    fn read_opt(r: &mut Reader<'_>) -> Result<Option<FlexChecksum>> {
        match r.u8()? {
            0 => Ok(None),
            1 => Ok(Some(FlexChecksum::read(r)?)),
            _ => Err(Error::BadMeta("flex checksum presence")),
        }
    }
}

/// How a multipart upload's flexible checksum covers the object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlexType {
    /// A checksum of the parts' checksums, shown with `-N` (SHA and CRC32/CRC32C default).
    Composite,
    /// The checksum of the whole object, combined from the parts' CRCs (CRC64NVME default).
    FullObject,
}

/// One part of a multipart object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartLoc {
    pub id: ObjectId,
    pub size: u64,
    pub md5: [u8; 16],
    /// The part's stored (bit-rot) checksum, of the object's stored kind.
    pub checksum: Option<Vec<u8>>,
    /// The part's flexible checksum (`x-amz-checksum-*`), as UploadPart verified it.
    pub flex: Option<FlexChecksum>,
}

/// Where an object's bytes are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DataLoc {
    /// In the index record itself (small objects).
    Inline(Vec<u8>),
    /// One data file, bytes from offset 0.
    File(ObjectId),
    /// A manifest over part files, in order.
    Parts(Vec<PartLoc>),
}

impl DataLoc {
    /// Every data file this location holds.
    pub fn file_ids(&self) -> Vec<ObjectId> {
        match self {
            DataLoc::Inline(_) => Vec::new(),
            DataLoc::File(id) => vec![*id],
            DataLoc::Parts(parts) => parts.iter().map(|p| p.id).collect(),
        }
    }
}

/// Everything the index knows about one object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectMeta {
    pub size: u64,
    pub mtime_ms: u64,
    pub md5: [u8; 16],
    pub etag_parts: u32,
    pub stored_checksum: StoredChecksum,
    pub system: SystemMeta,
    pub user: Vec<(String, String)>,
    pub flex_checksum: Option<FlexChecksum>,
    pub data: DataLoc,
    /// Who may read the object besides its bucket's owner.
    pub acl: CannedAcl,
    /// The node generation that wrote this record (D24).
    pub epoch: u64,
    /// The multipart upload this object completed, if it did.
    pub upload_id: Option<String>,
    /// The remote object this is a cached copy of (backend buckets).
    pub remote: Option<RemoteVersion>,
    /// The object's tag set (object tagging), in the order it was given.
    pub tags: Tags,
    /// Which version of its key this record is (S3 versioning, D46).
    pub version: ObjectVersion,
    /// What protects this version from deletion (object lock, D47).
    pub lock: ObjectLock,
    /// The object's owner (its writer, under ObjectWriter or BucketOwnerPreferred ownership);
    /// `None`: the bucket's owner (D52).
    pub owner: Option<String>,
    /// Explicit ACL grants, besides the canned ACL (D53).
    pub grants: Grants,
}

/// A version of a key: its stamp (order and identity), whether it is the `null` version, and
/// whether it is a delete marker (a record with no data that hides the key).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ObjectVersion {
    pub stamp: u128,
    pub null: bool,
    pub delete_marker: bool,
}

impl Default for ObjectVersion {
    /// What a record written before versions is: the null version, older than any other.
    fn default() -> ObjectVersion {
        ObjectVersion { stamp: 0, null: true, delete_marker: false }
    }
}

impl ObjectVersion {
    /// The VersionId S3 clients see: `null`, or the stamp as 32 lowercase hex digits.
    pub fn id(&self) -> String {
        crate::versions::VersionRef::of(self).id()
    }

    fn flags(&self) -> u8 {
        self.null as u8 | (self.delete_marker as u8) << 1
    }

    fn from_flags(stamp: u128, flags: u8) -> Result<ObjectVersion> {
        if flags > 3 {
            return Err(Error::BadMeta("version flags"));
        }
        Ok(ObjectVersion { stamp, null: flags & 1 != 0, delete_marker: flags & 2 != 0 })
    }
}

/// A remote object's identity as its store gave it: what a cached copy was made from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RemoteVersion {
    /// The remote's ETag, without quotes (not necessarily an MD5: multipart, GCS, Azure).
    pub etag: String,
    pub version: Option<String>,
}

impl RemoteVersion {
    fn write_opt(v: &Option<RemoteVersion>, w: &mut Writer) {
        match v {
            None => w.u8(0),
            Some(v) => {
                w.u8(1);
                w.bytes(v.etag.as_bytes());
                w.opt_str(v.version.as_deref());
            }
        }
    }

    fn read_opt(r: &mut Reader) -> Result<Option<RemoteVersion>> {
        Ok(match r.u8()? {
            0 => None,
            1 => Some(RemoteVersion { etag: r.str()?, version: r.opt_str()? }),
            _ => return Err(Error::BadMeta("remote presence")),
        })
    }
}

impl ObjectMeta {
    /// The ETag as `Display`, written without allocating.
    pub fn etag_display(&self) -> EtagDisplay<'_> {
        EtagDisplay { remote: self.remote.as_ref().map(|r| r.etag.as_str()), md5: &self.md5, parts: self.etag_parts }
    }

    /// The ETag without quotes: hex MD5, plus `-N` for multipart objects; a cached copy of a
    /// remote object has the remote's.
    pub fn etag(&self) -> String {
        self.etag_display().to_string()
    }

    /// What the record says about the object besides its version (its ACL and tags), as one
    /// number: two holders of one version compare it to find a change one of them missed.
    pub fn attrs_code(&self) -> u64 {
        let mut w = Writer(Vec::with_capacity(64));
        w.u8(self.acl.code());
        tags::write_tags(&mut w, &self.tags);
        acl::write_grants(&mut w, &self.grants);
        xxhash_rust::xxh3::xxh3_64(&w.0)
    }

    /// Validates the invariants a record must hold before it is written and after it is read.
    pub fn check(&self) -> Result<()> {
        if self.tags.len() > OBJECT_TAGS_MAX {
            return Err(Error::BadMeta("more tags than an object may carry"));
        }
        match &self.data {
            DataLoc::Inline(bytes) => {
                if bytes.len() as u64 != self.size {
                    return Err(Error::BadMeta("inline length differs from size"));
                }
            }
            DataLoc::File(_) => {}
            DataLoc::Parts(parts) => {
                if parts.is_empty() {
                    return Err(Error::BadMeta("multipart object without parts"));
                }
                let total = parts.iter().try_fold(0u64, |acc, p| acc.checked_add(p.size));
                if total != Some(self.size) {
                    return Err(Error::BadMeta("part sizes differ from size"));
                }
            }
        }
        Ok(())
    }

    pub fn encode(&self) -> Vec<u8> {
        assert!(self.check().is_ok(), "encoding invalid object meta");
        let inline_len = match &self.data {
            DataLoc::Inline(b) => b.len(),
            _ => 0,
        };
        let mut w = Writer(Vec::with_capacity(128 + inline_len));
        w.u8(OBJECT_RECORD_FORMAT);
        w.u64(self.size);
        w.u64(self.mtime_ms);
        w.raw(&self.md5);
        w.u32(self.etag_parts);
        w.u64(self.epoch);
        w.u8(self.acl.code());
        w.u128(self.version.stamp);
        w.u8(self.version.flags());
        RemoteVersion::write_opt(&self.remote, &mut w);
        w.u8(self.stored_checksum.kind.code());
        w.bytes(&self.stored_checksum.value);
        write_headers(&mut w, &self.system, &self.user);
        FlexChecksum::write_opt(&self.flex_checksum, &mut w);
        w.opt_str(self.upload_id.as_deref());
        tags::write_tags(&mut w, &self.tags);
        self.lock.write(&mut w);
        w.opt_str(self.owner.as_deref());
        acl::write_grants(&mut w, &self.grants);
        match &self.data {
            DataLoc::Inline(b) => {
                w.u8(0);
                w.bytes(b);
            }
            DataLoc::File(id) => {
                w.u8(1);
                w.u128(id.0);
            }
            DataLoc::Parts(parts) => {
                w.u8(2);
                w.u32(parts.len() as u32);
                for p in parts {
                    w.u128(p.id.0);
                    w.u64(p.size);
                    w.raw(&p.md5);
                    match &p.checksum {
                        None => w.u8(0),
                        Some(c) => {
                            w.u8(1);
                            w.bytes(c);
                        }
                    }
                    FlexChecksum::write_opt(&p.flex, &mut w);
                }
            }
        }
        w.0
    }

    pub fn decode(buf: &[u8]) -> Result<ObjectMeta> {
        let mut r = Reader(buf);
        let format = r.u8()?;
        if !(1..=OBJECT_RECORD_FORMAT).contains(&format) {
            return Err(Error::BadMeta("unknown object record format"));
        }
        let size = r.u64()?;
        let mtime_ms = r.u64()?;
        if mtime_ms > MTIME_MS_MAX {
            return Err(Error::BadMeta("mtime past year 9999"));
        }
        let md5 = r.array16()?;
        let etag_parts = r.u32()?;
        let (epoch, acl) = if format >= 2 {
            (r.u64()?, CannedAcl::from_code(r.u8()?).ok_or(Error::BadMeta("acl"))?)
        } else {
            (0, CannedAcl::Private)
        };
        let version =
            if format >= 5 { ObjectVersion::from_flags(r.u128()?, r.u8()?)? } else { ObjectVersion::default() };
        let remote = if format >= 3 { RemoteVersion::read_opt(&mut r)? } else { None };
        let kind = ChecksumKind::from_code(r.u8()?).ok_or(Error::BadMeta("checksum kind"))?;
        let value = crate::checksum::ChecksumBytes::new(r.bytes()?).ok_or(Error::BadMeta("stored checksum"))?;
        let stored_checksum = StoredChecksum { kind, value };
        let (system, user) = read_headers(&mut r)?;
        let flex_checksum = FlexChecksum::read_opt(&mut r)?;
        let upload_id = if format >= 2 { r.opt_str()? } else { None };
        let tags = if format >= 4 { tags::read_tags(&mut r)? } else { Vec::new() };
        let lock = if format >= 6 { ObjectLock::read(&mut r)? } else { ObjectLock::default() };
        let owner = if format >= 7 { r.opt_str()? } else { None };
        let grants = if format >= 8 { acl::read_grants(&mut r)? } else { Vec::new() };
        let data = match r.u8()? {
            0 => DataLoc::Inline(r.bytes()?.to_vec()),
            1 => DataLoc::File(ObjectId(r.u128()?)),
            2 => {
                let count = r.u32()? as usize;
                // Each part takes at least 41 bytes: bound the allocation by what the buffer holds.
                if count > r.0.len() / 41 {
                    return Err(Error::BadMeta("part count exceeds record"));
                }
                let mut parts = Vec::with_capacity(count);
                for _ in 0..count {
                    let id = ObjectId(r.u128()?);
                    let size = r.u64()?;
                    let md5 = r.array16()?;
                    let checksum = match r.u8()? {
                        0 => None,
                        1 => Some(r.bytes()?.to_vec()),
                        _ => return Err(Error::BadMeta("part checksum presence")),
                    };
                    let flex = if format >= 2 { FlexChecksum::read_opt(&mut r)? } else { None };
                    parts.push(PartLoc { id, size, md5, checksum, flex });
                }
                DataLoc::Parts(parts)
            }
            _ => return Err(Error::BadMeta("data location tag")),
        };
        if !r.0.is_empty() {
            return Err(Error::BadMeta("trailing bytes"));
        }
        let meta = ObjectMeta {
            size,
            mtime_ms,
            md5,
            etag_parts,
            stored_checksum,
            system,
            user,
            flex_checksum,
            data,
            acl,
            epoch,
            upload_id,
            remote,
            tags,
            version,
            lock,
            owner,
            grants,
        };
        meta.check()?;
        Ok(meta)
    }
}

impl ObjectMeta {
    /// The epoch that wrote a record, from its fixed head (0 for format 1).
    pub fn decode_epoch(buf: &[u8]) -> Result<u64> {
        match buf.first() {
            Some(1) => Ok(0),
            Some(2..=8) => {
                let b: [u8; 8] =
                    buf.get(37..45).and_then(|b| b.try_into().ok()).ok_or(Error::BadMeta("record truncated"))?;
                Ok(u64::from_le_bytes(b))
            }
            _ => Err(Error::BadMeta("unknown object record format")),
        }
    }

    /// Size, mtime and ETag from the fixed head of a record, without decoding the rest (listings).
    pub fn decode_summary(buf: &[u8]) -> Result<(u64, u64, String)> {
        let mut r = Reader(buf);
        let format = r.u8()?;
        if !(1..=OBJECT_RECORD_FORMAT).contains(&format) {
            return Err(Error::BadMeta("unknown object record format"));
        }
        let size = r.u64()?;
        let mtime_ms = r.u64()?;
        let md5 = r.array16()?;
        let parts = r.u32()?;
        if format >= 3 {
            let _epoch = r.u64()?;
            let _acl = r.u8()?;
            if format >= 5 {
                r.take(17)?;
            }
            if let Some(remote) = RemoteVersion::read_opt(&mut r)? {
                return Ok((size, mtime_ms, remote.etag));
            }
        }
        Ok((size, mtime_ms, md5_etag(&md5, parts)))
    }
}

impl ObjectMeta {
    /// The version from the fixed head of a record, without decoding the rest (version listings).
    pub fn decode_version(buf: &[u8]) -> Result<ObjectVersion> {
        match buf.first() {
            Some(1..=4) => Ok(ObjectVersion::default()),
            Some(5..=8) => {
                let mut r = Reader(buf.get(46..).ok_or(Error::BadMeta("record truncated"))?);
                ObjectVersion::from_flags(r.u128()?, r.u8()?)
            }
            _ => Err(Error::BadMeta("unknown object record format")),
        }
    }
}

/// `ObjectMeta::etag` as `Display` (no allocation): the remote's ETag for a cached copy, else
/// the hex MD5, plus `-N` for an object of N parts.
pub struct EtagDisplay<'a> {
    remote: Option<&'a str>,
    md5: &'a [u8; 16],
    parts: u32,
}

impl std::fmt::Display for EtagDisplay<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(r) = self.remote {
            return f.write_str(r);
        }
        let mut hex = [0u8; 32];
        hex::encode_to_slice(self.md5, &mut hex).map_err(|_| std::fmt::Error)?;
        f.write_str(std::str::from_utf8(&hex).map_err(|_| std::fmt::Error)?)?;
        if self.parts > 0 {
            write!(f, "-{}", self.parts)?;
        }
        Ok(())
    }
}

/// An ETag from an MD5: hex, plus `-N` for an object of N parts.
fn md5_etag(md5: &[u8; 16], parts: u32) -> String {
    EtagDisplay { remote: None, md5, parts }.to_string()
}
