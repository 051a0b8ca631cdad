//! Index records: object and bucket metadata and their on-disk encoding.
//!
//! Every record starts with a format byte; fields follow in a fixed order. Integers are
//! little-endian; `bytes` is a `u32` length followed by that many bytes; `str` is `bytes` holding
//! UTF-8; `opt<T>` is a presence byte (0 or 1) followed by `T` when present. Records are written in
//! the newest format; older formats still decode.
//!
//! Object record, format 2:
//! ```text
//! 0      u8      format = 2
//! 1      u64     size in bytes
//! 9      u64     mtime, milliseconds since the Unix epoch
//! 17     [u8;16] MD5 (single PUT) or MD5 of part MD5s (multipart)
//! 33     u32     parts count of the ETag (0 = single-part ETag)
//! 37     u64     epoch: the node generation that wrote the record (mountpath reconciliation, D24)
//! 45     u8      canned ACL (0 private, 1 public-read, 2 authenticated-read)
//! 46     u8      stored checksum kind (0 none, 1 xxhash, 2 crc32c, 3 md5), then bytes value
//!        opt<str> content-type, content-encoding, content-disposition, cache-control,
//!                 expires, content-language (in this order)
//!        u16     user metadata pairs, each str name, str value
//!        opt<(u8 algorithm, bytes value, u32 composite parts)> flexible checksum
//!        opt<str> the multipart upload this object completed (a repeated Complete answers again)
//!        u8      data location: 0 inline (bytes), 1 file (u128 id),
//!                2 parts (u32 count, then per part: u128 id, u64 size, [u8;16] md5,
//!                opt<bytes> the part's stored checksum, of the object's stored kind (a
//!                multipart object's own stored checksum value is empty), opt<flexible
//!                checksum> the part's)
//! ```
//! Format 1 is format 2 without the epoch, the ACL, the upload id and the parts' flexible
//! checksums: it reads as epoch 0, private, none.
//!
//! Upload and part records (multipart uploads in progress) are described at `UploadMeta` and
//! `PartMeta`.
//!
//! Bucket record, format 2: `u8 format, u64 created ms, str owner, u8 versioning (0 never set,
//! 1 Enabled, 2 Suspended), u8 checksum kind, u8 validate-on-read, u8 acl (0 private,
//! 1 public-read, 2 authenticated-read), u8 policy (0 none, 1 public-read: every object readable
//! by anyone), u64 incarnation (random, new at every creation), str location constraint`.
//! Format 1 ends after the acl; its public-read (which let anyone read objects, D18) reads as
//! acl public-read plus policy public-read, incarnation 0, no location.

use crate::checksum::{ChecksumKind, FlexAlgorithm, StoredChecksum};
use crate::error::{Error, Result};
use crate::limits;

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
}

/// A canned ACL: who besides the owner may read (a bucket: list it; an object: read it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum CannedAcl {
    #[default]
    Private,
    PublicRead,
    AuthenticatedRead,
}

impl CannedAcl {
    pub fn code(self) -> u8 {
        match self {
            CannedAcl::Private => 0,
            CannedAcl::PublicRead => 1,
            CannedAcl::AuthenticatedRead => 2,
        }
    }

    pub fn from_code(code: u8) -> Option<CannedAcl> {
        Some(match code {
            0 => CannedAcl::Private,
            1 => CannedAcl::PublicRead,
            2 => CannedAcl::AuthenticatedRead,
            _ => return None,
        })
    }

    /// The S3 name (`x-amz-acl` value).
    pub fn name(self) -> &'static str {
        match self {
            CannedAcl::Private => "private",
            CannedAcl::PublicRead => "public-read",
            CannedAcl::AuthenticatedRead => "authenticated-read",
        }
    }
}

/// What every object of a bucket allows besides ACLs: a canned bucket policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum BucketPolicy {
    #[default]
    None,
    /// Anyone may read every object (AWS's `s3:GetObject` for `"*"` on `bucket/*`).
    PublicRead,
}

impl ObjectMeta {
    /// The ETag without quotes: hex MD5, plus `-N` for multipart objects.
    pub fn etag(&self) -> String {
        let mut s = hex::encode(self.md5);
        if self.etag_parts > 0 {
            s.push('-');
            s.push_str(&self.etag_parts.to_string());
        }
        s
    }

    /// Validates the invariants a record must hold before it is written and after it is read.
    pub fn check(&self) -> Result<()> {
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
        w.u8(2);
        w.u64(self.size);
        w.u64(self.mtime_ms);
        w.raw(&self.md5);
        w.u32(self.etag_parts);
        w.u64(self.epoch);
        w.u8(self.acl.code());
        w.u8(self.stored_checksum.kind.code());
        w.bytes(&self.stored_checksum.value);
        write_headers(&mut w, &self.system, &self.user);
        FlexChecksum::write_opt(&self.flex_checksum, &mut w);
        w.opt_str(self.upload_id.as_deref());
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
        if format != 1 && format != 2 {
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
        let kind = ChecksumKind::from_code(r.u8()?).ok_or(Error::BadMeta("checksum kind"))?;
        let stored_checksum = StoredChecksum { kind, value: r.bytes()?.to_vec() };
        let (system, user) = read_headers(&mut r)?;
        let flex_checksum = FlexChecksum::read_opt(&mut r)?;
        let upload_id = if format >= 2 { r.opt_str()? } else { None };
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
        };
        meta.check()?;
        Ok(meta)
    }
}

/// Versioning state of a bucket; `Unset` until first configured (S3 then omits `Status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Versioning {
    #[default]
    Unset,
    Enabled,
    Suspended,
}

/// Everything the index knows about one bucket.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct BucketMeta {
    pub created_ms: u64,
    pub owner: String,
    pub versioning: Versioning,
    pub checksum: ChecksumKind,
    pub validate_on_read: bool,
    /// Who besides the owner may list the bucket.
    pub acl: CannedAcl,
    /// Who besides the owner may read its objects, whatever their ACLs.
    pub policy: BucketPolicy,
    /// Random and new at every creation: tells a re-created bucket from the one deleted before
    /// it under the same name (mountpath reconciliation, D24).
    pub incarnation: u64,
    /// The LocationConstraint given at creation (empty: none).
    pub location: String,
}

impl BucketMeta {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer(Vec::with_capacity(48 + self.owner.len() + self.location.len()));
        w.u8(2);
        w.u64(self.created_ms);
        w.bytes(self.owner.as_bytes());
        w.u8(match self.versioning {
            Versioning::Unset => 0,
            Versioning::Enabled => 1,
            Versioning::Suspended => 2,
        });
        w.u8(self.checksum.code());
        w.u8(self.validate_on_read as u8);
        w.u8(self.acl.code());
        w.u8(match self.policy {
            BucketPolicy::None => 0,
            BucketPolicy::PublicRead => 1,
        });
        w.u64(self.incarnation);
        w.bytes(self.location.as_bytes());
        w.0
    }

    pub fn decode(buf: &[u8]) -> Result<BucketMeta> {
        let mut r = Reader(buf);
        let format = r.u8()?;
        if format != 1 && format != 2 {
            return Err(Error::BadMeta("unknown bucket record format"));
        }
        let created_ms = r.u64()?;
        let owner = r.str()?;
        let versioning = match r.u8()? {
            0 => Versioning::Unset,
            1 => Versioning::Enabled,
            2 => Versioning::Suspended,
            _ => return Err(Error::BadMeta("versioning state")),
        };
        let checksum = ChecksumKind::from_code(r.u8()?).ok_or(Error::BadMeta("checksum kind"))?;
        let validate_on_read = match r.u8()? {
            0 => false,
            1 => true,
            _ => return Err(Error::BadMeta("validate flag")),
        };
        let acl = CannedAcl::from_code(r.u8()?).ok_or(Error::BadMeta("acl"))?;
        let (policy, incarnation, location) = if format >= 2 {
            let policy = match r.u8()? {
                0 => BucketPolicy::None,
                1 => BucketPolicy::PublicRead,
                _ => return Err(Error::BadMeta("policy")),
            };
            (policy, r.u64()?, r.str()?)
        } else {
            // Format 1's public-read let anyone read the objects too (D18).
            if acl == CannedAcl::AuthenticatedRead {
                return Err(Error::BadMeta("acl"));
            }
            let policy = if acl == CannedAcl::PublicRead { BucketPolicy::PublicRead } else { BucketPolicy::None };
            (policy, 0, String::new())
        };
        if !r.0.is_empty() {
            return Err(Error::BadMeta("trailing bytes"));
        }
        Ok(BucketMeta { created_ms, owner, versioning, checksum, validate_on_read, acl, policy, incarnation, location })
    }
}

/// System metadata (six `opt<str>`) then user metadata (`u16` count of `str` pairs).
fn write_headers(w: &mut Writer, system: &SystemMeta, user: &[(String, String)]) {
    for f in system.fields() {
        w.opt_str(f.as_deref());
    }
    w.u16(u16::try_from(user.len()).expect("user metadata is bounded by USER_METADATA_BYTES_MAX"));
    for (k, v) in user {
        w.bytes(k.as_bytes());
        w.bytes(v.as_bytes());
    }
}

fn read_headers(r: &mut Reader<'_>) -> Result<(SystemMeta, Vec<(String, String)>)> {
    let system = SystemMeta {
        content_type: r.opt_str()?,
        content_encoding: r.opt_str()?,
        content_disposition: r.opt_str()?,
        cache_control: r.opt_str()?,
        expires: r.opt_str()?,
        content_language: r.opt_str()?,
    };
    let pairs = r.u16()? as usize;
    let mut user = Vec::with_capacity(pairs.min(64));
    for _ in 0..pairs {
        user.push((r.str()?, r.str()?));
    }
    Ok((system, user))
}

/// A multipart upload in progress.
///
/// Format 2: `u8 format, u64 created ms, str initiator, u8 stored checksum kind,
/// opt<(u8 flexible checksum algorithm, u8 type: 0 composite, 1 full object)>`, then the headers
/// as in an object record, then `u8` the canned ACL the object gets. Format 1 has no ACL
/// (private).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct UploadMeta {
    pub created_ms: u64,
    pub initiator: String,
    pub checksum: ChecksumKind,
    pub flex: Option<(FlexAlgorithm, FlexType)>,
    pub system: SystemMeta,
    pub user: Vec<(String, String)>,
    pub acl: CannedAcl,
}

impl UploadMeta {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer(Vec::with_capacity(64));
        w.u8(2);
        w.u64(self.created_ms);
        w.bytes(self.initiator.as_bytes());
        w.u8(self.checksum.code());
        match self.flex {
            None => w.u8(0),
            Some((a, t)) => {
                w.u8(1);
                w.u8(a.code());
                w.u8(if t == FlexType::FullObject { 1 } else { 0 });
            }
        }
        write_headers(&mut w, &self.system, &self.user);
        w.u8(self.acl.code());
        w.0
    }

    pub fn decode(buf: &[u8]) -> Result<UploadMeta> {
        let mut r = Reader(buf);
        let format = r.u8()?;
        if format != 1 && format != 2 {
            return Err(Error::BadMeta("unknown upload record format"));
        }
        let created_ms = r.u64()?;
        let initiator = r.str()?;
        let checksum = ChecksumKind::from_code(r.u8()?).ok_or(Error::BadMeta("checksum kind"))?;
        let flex = match r.u8()? {
            0 => None,
            1 => {
                let a = FlexAlgorithm::from_code(r.u8()?).ok_or(Error::BadMeta("flex checksum algorithm"))?;
                let t = match r.u8()? {
                    0 => FlexType::Composite,
                    1 => FlexType::FullObject,
                    _ => return Err(Error::BadMeta("flex checksum type")),
                };
                Some((a, t))
            }
            _ => return Err(Error::BadMeta("flex algorithm presence")),
        };
        let (system, user) = read_headers(&mut r)?;
        let acl =
            if format >= 2 { CannedAcl::from_code(r.u8()?).ok_or(Error::BadMeta("acl"))? } else { CannedAcl::Private };
        if !r.0.is_empty() {
            return Err(Error::BadMeta("trailing bytes"));
        }
        Ok(UploadMeta { created_ms, initiator, checksum, flex, system, user, acl })
    }
}

/// One uploaded part of an upload in progress.
///
/// Format 1: `u8 format, u128 data-file id, u64 size, [u8;16] MD5, u64 mtime ms,
/// bytes stored checksum value, opt<flexible checksum>` (as in an object record).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartMeta {
    pub id: ObjectId,
    pub size: u64,
    pub md5: [u8; 16],
    pub mtime_ms: u64,
    pub stored_checksum: Vec<u8>,
    pub flex_checksum: Option<FlexChecksum>,
}

impl PartMeta {
    pub fn etag(&self) -> String {
        hex::encode(self.md5)
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer(Vec::with_capacity(80));
        w.u8(1);
        w.u128(self.id.0);
        w.u64(self.size);
        w.raw(&self.md5);
        w.u64(self.mtime_ms);
        w.bytes(&self.stored_checksum);
        FlexChecksum::write_opt(&self.flex_checksum, &mut w);
        w.0
    }

    pub fn decode(buf: &[u8]) -> Result<PartMeta> {
        let mut r = Reader(buf);
        if r.u8()? != 1 {
            return Err(Error::BadMeta("unknown part record format"));
        }
        let id = ObjectId(r.u128()?);
        let size = r.u64()?;
        let md5 = r.array16()?;
        let mtime_ms = r.u64()?;
        let stored_checksum = r.bytes()?.to_vec();
        let flex_checksum = FlexChecksum::read_opt(&mut r)?;
        if !r.0.is_empty() {
            return Err(Error::BadMeta("trailing bytes"));
        }
        Ok(PartMeta { id, size, md5, mtime_ms, stored_checksum, flex_checksum })
    }
}

pub(crate) struct Writer(pub(crate) Vec<u8>);

impl Writer {
    pub(crate) fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    pub(crate) fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn u128(&mut self, v: u128) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn raw(&mut self, v: &[u8]) {
        self.0.extend_from_slice(v);
    }
    pub(crate) fn bytes(&mut self, v: &[u8]) {
        let len = u32::try_from(v.len()).expect("record fields are bounded by META_RECORD_BYTES_MAX");
        self.u32(len);
        self.0.extend_from_slice(v);
    }
    pub(crate) fn opt_str(&mut self, v: Option<&str>) {
        match v {
            None => self.u8(0),
            Some(s) => {
                self.u8(1);
                self.bytes(s.as_bytes());
            }
        }
    }
}

pub(crate) struct Reader<'a>(pub(crate) &'a [u8]);

impl<'a> Reader<'a> {
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.0.len() < n {
            return Err(Error::BadMeta("record truncated"));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }
    pub(crate) fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    pub(crate) fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_le_bytes(self.take(2)?.try_into().expect("length checked")))
    }
    pub(crate) fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("length checked")))
    }
    pub(crate) fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("length checked")))
    }
    pub(crate) fn u128(&mut self) -> Result<u128> {
        Ok(u128::from_le_bytes(self.take(16)?.try_into().expect("length checked")))
    }
    pub(crate) fn array16(&mut self) -> Result<[u8; 16]> {
        Ok(self.take(16)?.try_into().expect("length checked"))
    }
    pub(crate) fn bytes(&mut self) -> Result<&'a [u8]> {
        let len = self.u32()? as usize;
        if len > limits::META_RECORD_BYTES_MAX.max(limits::INLINE_BYTES_MAX) {
            return Err(Error::BadMeta("field longer than a record may be"));
        }
        self.take(len)
    }
    pub(crate) fn str(&mut self) -> Result<String> {
        let b = self.bytes()?;
        String::from_utf8(b.to_vec()).map_err(|_| Error::BadMeta("string is not UTF-8"))
    }
    pub(crate) fn opt_str(&mut self) -> Result<Option<String>> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(self.str()?)),
            _ => Err(Error::BadMeta("option presence byte")),
        }
    }
}

impl ObjectMeta {
    /// The epoch that wrote a record, from its fixed head (0 for format 1).
    pub fn decode_epoch(buf: &[u8]) -> Result<u64> {
        match buf.first() {
            Some(1) => Ok(0),
            Some(2) => {
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
        if !matches!(r.u8()?, 1 | 2) {
            return Err(Error::BadMeta("unknown object record format"));
        }
        let size = r.u64()?;
        let mtime_ms = r.u64()?;
        let md5 = r.array16()?;
        let parts = r.u32()?;
        let mut etag = hex::encode(md5);
        if parts > 0 {
            etag.push('-');
            etag.push_str(&parts.to_string());
        }
        Ok((size, mtime_ms, etag))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(data: DataLoc, size: u64) -> ObjectMeta {
        ObjectMeta {
            size,
            mtime_ms: 1_700_000_000_123,
            md5: [7; 16],
            etag_parts: 0,
            stored_checksum: StoredChecksum { kind: ChecksumKind::Xxhash, value: vec![1, 2, 3, 4, 5, 6, 7, 8] },
            system: SystemMeta {
                content_type: Some("text/plain".into()),
                expires: Some("x".into()),
                ..Default::default()
            },
            user: vec![("a".into(), "b".into()), ("ü".into(), "".into())],
            flex_checksum: Some(FlexChecksum { algorithm: FlexAlgorithm::Crc32, value: vec![9, 9, 9, 9], parts: 0 }),
            data,
            acl: CannedAcl::PublicRead,
            epoch: 42,
            upload_id: Some("0123456789abcdef0123456789ab".into()),
        }
    }

    #[test]
    fn object_round_trips() {
        let metas = [
            sample(DataLoc::Inline(b"hello".to_vec()), 5),
            sample(DataLoc::File(ObjectId(0xdead_beef_u128 << 64 | 42)), 1 << 40),
            sample(
                DataLoc::Parts(vec![
                    PartLoc { id: ObjectId(1), size: 10, md5: [1; 16], checksum: None, flex: None },
                    PartLoc {
                        id: ObjectId(2),
                        size: 5,
                        md5: [2; 16],
                        checksum: Some(vec![1, 2]),
                        flex: Some(FlexChecksum { algorithm: FlexAlgorithm::Sha1, value: vec![3; 20], parts: 0 }),
                    },
                ]),
                15,
            ),
        ];
        for m in metas {
            let enc = m.encode();
            assert_eq!(ObjectMeta::decode(&enc).unwrap(), m);
            assert_eq!(ObjectMeta::decode_epoch(&enc).unwrap(), 42);
            // Every strict prefix is rejected, never a panic.
            for cut in 0..enc.len() {
                assert!(ObjectMeta::decode(&enc[..cut]).is_err());
            }
        }
    }

    #[test]
    fn etag_shape() {
        let mut m = sample(DataLoc::Inline(vec![]), 0);
        m.md5 = [0xab; 16];
        assert_eq!(m.etag(), "ab".repeat(16));
        m.etag_parts = 3;
        assert_eq!(m.etag(), format!("{}-3", "ab".repeat(16)));
    }

    #[test]
    fn upload_and_part_round_trip() {
        let u = UploadMeta {
            created_ms: 9,
            initiator: "AK".into(),
            checksum: ChecksumKind::Md5,
            flex: Some((FlexAlgorithm::Sha256, FlexType::FullObject)),
            system: SystemMeta { content_type: Some("a/b".into()), ..Default::default() },
            user: vec![("k".into(), "v".into())],
            acl: CannedAcl::AuthenticatedRead,
        };
        assert_eq!(UploadMeta::decode(&u.encode()).unwrap(), u);
        let p = PartMeta {
            id: ObjectId(77),
            size: 5 << 20,
            md5: [3; 16],
            mtime_ms: 11,
            stored_checksum: vec![1, 2],
            flex_checksum: Some(FlexChecksum { algorithm: FlexAlgorithm::Crc32c, value: vec![4; 4], parts: 0 }),
        };
        let enc = p.encode();
        assert_eq!(PartMeta::decode(&enc).unwrap(), p);
        for cut in 0..enc.len() {
            assert!(PartMeta::decode(&enc[..cut]).is_err());
        }
    }

    #[test]
    fn bucket_round_trips() {
        let b = BucketMeta {
            created_ms: 5,
            owner: "AK".into(),
            versioning: Versioning::Suspended,
            checksum: ChecksumKind::Crc32c,
            validate_on_read: true,
            acl: CannedAcl::AuthenticatedRead,
            policy: BucketPolicy::PublicRead,
            incarnation: 0xfeed,
            location: "eu-west-1".into(),
        };
        let enc = b.encode();
        assert_eq!(BucketMeta::decode(&enc).unwrap(), b);
        for cut in 0..enc.len() {
            assert!(BucketMeta::decode(&enc[..cut]).is_err());
        }
        assert!(BucketMeta::decode(&[3]).is_err());
    }

    /// Records written by the format-1 encoder (before D24) still read, with their defaults.
    #[test]
    fn format_1_records_still_decode() {
        let mut w = Writer(Vec::new());
        w.u8(1);
        w.u64(3);
        w.u64(1_700_000_000_000);
        w.raw(&[9; 16]);
        w.u32(0);
        w.u8(ChecksumKind::Xxhash.code());
        w.bytes(&[1; 8]);
        write_headers(&mut w, &SystemMeta { content_type: Some("a/b".into()), ..Default::default() }, &[]);
        w.u8(0);
        w.u8(0);
        w.bytes(b"abc");
        let m = ObjectMeta::decode(&w.0).unwrap();
        assert_eq!((m.size, m.epoch, m.acl, m.upload_id.as_deref()), (3, 0, CannedAcl::Private, None));
        assert_eq!(ObjectMeta::decode_epoch(&w.0).unwrap(), 0);
        assert_eq!(m.data, DataLoc::Inline(b"abc".to_vec()));
        assert_eq!(ObjectMeta::decode_summary(&w.0).unwrap().0, 3);

        // A format-1 public-read bucket let anyone read its objects: it keeps doing so.
        let bucket = |acl: u8| {
            let mut w = Writer(Vec::new());
            w.u8(1);
            w.u64(5);
            w.bytes(b"AK");
            w.u8(1);
            w.u8(ChecksumKind::Md5.code());
            w.u8(0);
            w.u8(acl);
            w.0
        };
        let b = BucketMeta::decode(&bucket(1)).unwrap();
        assert_eq!(
            (b.acl, b.policy, b.incarnation, b.location.as_str()),
            (CannedAcl::PublicRead, BucketPolicy::PublicRead, 0, "")
        );
        assert_eq!(BucketMeta::decode(&bucket(0)).unwrap().policy, BucketPolicy::None);
        assert!(BucketMeta::decode(&bucket(2)).is_err());

        let mut w = Writer(Vec::new());
        w.u8(1);
        w.u64(9);
        w.bytes(b"AK");
        w.u8(ChecksumKind::Md5.code());
        w.u8(0);
        write_headers(&mut w, &SystemMeta::default(), &[]);
        assert_eq!(UploadMeta::decode(&w.0).unwrap().acl, CannedAcl::Private);
    }

    #[test]
    fn inconsistent_records_are_rejected() {
        let m = sample(DataLoc::Inline(b"abc".to_vec()), 4);
        assert!(m.check().is_err());
    }
}
