//! Records of multipart uploads in progress: the upload and each of its parts.

use crate::checksum::{ChecksumKind, FlexAlgorithm};
use crate::error::{Error, Result};

use super::codec::{Reader, Writer, read_headers, write_headers};
use super::{CannedAcl, FlexChecksum, FlexType, ObjectId, SystemMeta};

/// The format byte upload records are written with (format 1 still decodes).
pub const UPLOAD_RECORD_FORMAT: u8 = 4;

/// The format byte part records are written with.
pub const PART_RECORD_FORMAT: u8 = 1;

/// A multipart upload in progress.
///
/// Format 4: format 3 followed by the lock the object gets (as in an object record, D47;
/// format 3 reads as none).
///
/// Format 3: format 2 followed by the tag set the object gets (`u8` count, then `str` key,
/// `str` value each; format 2 reads as none).
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
    /// The tag set the completed object gets (`x-amz-tagging` on CreateMultipartUpload).
    pub tags: super::Tags,
    /// The retention and legal hold the completed object gets.
    pub lock: super::ObjectLock,
}

impl UploadMeta {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer(Vec::with_capacity(64));
        w.u8(UPLOAD_RECORD_FORMAT);
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
        super::tags::write_tags(&mut w, &self.tags);
        self.lock.write(&mut w);
        w.0
    }

    pub fn decode(buf: &[u8]) -> Result<UploadMeta> {
        let mut r = Reader(buf);
        let format = r.u8()?;
        if !(1..=UPLOAD_RECORD_FORMAT).contains(&format) {
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
        let tags = if format >= 3 { super::tags::read_tags(&mut r)? } else { Vec::new() };
        let lock = if format >= 4 { super::ObjectLock::read(&mut r)? } else { super::ObjectLock::default() };
        if !r.0.is_empty() {
            return Err(Error::BadMeta("trailing bytes"));
        }
        Ok(UploadMeta { created_ms, initiator, checksum, flex, system, user, acl, tags, lock })
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
        w.u8(PART_RECORD_FORMAT);
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
        if r.u8()? != PART_RECORD_FORMAT {
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
