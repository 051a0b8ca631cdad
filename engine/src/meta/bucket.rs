//! Bucket records.
//!
//! Format 11: format 10 followed by the bucket's explicit ACL grants (`acl::write_grants`,
//! D53; format 10 reads as none).
//!
//! Format 10: format 9 followed by `u8` object ownership (0 none set, 1 BucketOwnerEnforced,
//! 2 BucketOwnerPreferred, 3 ObjectWriter; D52; format 9 reads as none).
//!
//! Format 9: format 8 followed by `opt<bytes>` the CORS configuration (`Cors::encode`; format
//! 8 reads as none).
//!
//! Format 8: format 7 followed by `opt<str>` the bucket policy document as given (D49; parsed
//! again when read) and `u8` the public access block (0: none; else 1 + the bits 1
//! BlockPublicAcls, 2 IgnorePublicAcls, 4 BlockPublicPolicy, 8 RestrictPublicBuckets shifted
//! left by one; format 7 reads as neither).
//!
//! Format 7: format 6 followed by `opt<bytes>` the lifecycle configuration (`Lifecycle::encode`;
//! format 6 reads as none).
//!
//! Format 6: format 5 followed by `u8 object lock enabled` and the default retention,
//! `opt<(u8 mode: 1 GOVERNANCE 2 COMPLIANCE, u8 unit: 0 days 1 years, u32 amount)>` (format 5
//! reads as no lock).
//!
//! Format 5: format 4 followed by the bucket's tag set (`u8` count, then `str` key, `str` value
//! each; format 4 reads as none).
//!
//! Format 4: format 3 followed by `u8 copies`, how many copies of each object the bucket wants
//! (0: the node's default; format 3 reads as 0).
//!
//! Format 3: format 2 followed by `opt<(str backend, str remote bucket)>`, the remote bucket
//! this one is a cache of, and `u8 validate-warm-get` (format 2 reads as none, 0).
//!
//! Format 2: `u8 format, u64 created ms, str owner, u8 versioning (0 never set,
//! 1 Enabled, 2 Suspended), u8 checksum kind, u8 validate-on-read, u8 acl (0 private,
//! 1 public-read, 2 authenticated-read, 3 public-read-write), u8 policy (0 none, 1 public-read: every object readable
//! by anyone), u64 incarnation (random, new at every creation), str location constraint`.
//! Format 1 ends after the acl; its public-read (which let anyone read objects, D18) reads as
//! acl public-read plus policy public-read, incarnation 0, no location.

use crate::checksum::ChecksumKind;
use crate::error::{Error, Result};

use super::codec::{Reader, Writer};

/// The format byte bucket records are written with (format 1 still decodes).
pub const BUCKET_RECORD_FORMAT: u8 = 11;

/// A canned ACL: who besides the owner may read (a bucket: list it; an object: read it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum CannedAcl {
    #[default]
    Private,
    PublicRead,
    AuthenticatedRead,
    /// Anyone may list the bucket and write (and delete) objects in it; on an object it reads
    /// as public-read (S3's WRITE on an object grants nothing).
    PublicReadWrite,
    /// On an object another user owns: its bucket's owner may read it (D52).
    BucketOwnerRead,
    /// On an object another user owns: its bucket's owner has full control (D52).
    BucketOwnerFullControl,
}

impl CannedAcl {
    pub fn code(self) -> u8 {
        match self {
            CannedAcl::Private => 0,
            CannedAcl::PublicRead => 1,
            CannedAcl::AuthenticatedRead => 2,
            CannedAcl::PublicReadWrite => 3,
            CannedAcl::BucketOwnerRead => 4,
            CannedAcl::BucketOwnerFullControl => 5,
        }
    }

    pub fn from_code(code: u8) -> Option<CannedAcl> {
        Some(match code {
            0 => CannedAcl::Private,
            1 => CannedAcl::PublicRead,
            2 => CannedAcl::AuthenticatedRead,
            3 => CannedAcl::PublicReadWrite,
            4 => CannedAcl::BucketOwnerRead,
            5 => CannedAcl::BucketOwnerFullControl,
            _ => return None,
        })
    }

    /// Whether it grants anything to everyone or to every signed caller (S3's "public" ACL).
    pub fn is_public(self) -> bool {
        matches!(self, CannedAcl::PublicRead | CannedAcl::PublicReadWrite | CannedAcl::AuthenticatedRead)
    }

    /// The S3 name (`x-amz-acl` value).
    pub fn name(self) -> &'static str {
        match self {
            CannedAcl::Private => "private",
            CannedAcl::PublicRead => "public-read",
            CannedAcl::AuthenticatedRead => "authenticated-read",
            CannedAcl::PublicReadWrite => "public-read-write",
            CannedAcl::BucketOwnerRead => "bucket-owner-read",
            CannedAcl::BucketOwnerFullControl => "bucket-owner-full-control",
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

/// S3's PublicAccessBlock configuration of a bucket (D49).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct PublicAccessBlock {
    /// Refuse requests that set a public ACL.
    pub block_public_acls: bool,
    /// Public ACLs grant nothing.
    pub ignore_public_acls: bool,
    /// Refuse a public bucket policy.
    pub block_public_policy: bool,
    /// A public policy grants nothing to callers other than the owner.
    pub restrict_public_buckets: bool,
}

impl PublicAccessBlock {
    fn code(self) -> u8 {
        1 | (self.block_public_acls as u8) << 1
            | (self.ignore_public_acls as u8) << 2
            | (self.block_public_policy as u8) << 3
            | (self.restrict_public_buckets as u8) << 4
    }

    fn from_code(c: u8) -> Result<Option<PublicAccessBlock>> {
        match c {
            0 => Ok(None),
            c if c & 1 == 1 && c < 32 => Ok(Some(PublicAccessBlock {
                block_public_acls: c & 2 != 0,
                ignore_public_acls: c & 4 != 0,
                block_public_policy: c & 8 != 0,
                restrict_public_buckets: c & 16 != 0,
            })),
            _ => Err(Error::BadMeta("public access block")),
        }
    }
}

/// Who owns the objects written to a bucket (S3's ObjectOwnership, D52).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ownership {
    /// The bucket's owner owns every object and ACLs are disabled.
    BucketOwnerEnforced,
    /// The writer owns an object, unless it is written with `bucket-owner-full-control`.
    BucketOwnerPreferred,
    /// The writer owns every object it writes.
    ObjectWriter,
}

impl Ownership {
    pub fn name(self) -> &'static str {
        match self {
            Ownership::BucketOwnerEnforced => "BucketOwnerEnforced",
            Ownership::BucketOwnerPreferred => "BucketOwnerPreferred",
            Ownership::ObjectWriter => "ObjectWriter",
        }
    }

    pub fn parse(s: &str) -> Option<Ownership> {
        [Ownership::BucketOwnerEnforced, Ownership::BucketOwnerPreferred, Ownership::ObjectWriter]
            .into_iter()
            .find(|o| o.name() == s)
    }

    /// Who owns an object `writer` writes with `acl` into `bucket`: `None` for the bucket's
    /// owner. Without controls (keel's default, as S3 before 2023 and Ceph RGW) and under
    /// ObjectWriter, the writer; under BucketOwnerPreferred, the writer unless the ACL is
    /// bucket-owner-full-control; under BucketOwnerEnforced, the bucket's owner. Anonymous
    /// writes (`writer` empty or `anonymous`) belong to the bucket's owner.
    pub fn owner_of(bucket: &BucketMeta, writer: &str, acl: CannedAcl) -> Option<String> {
        let mine = writer.is_empty() || writer == "anonymous" || writer == bucket.owner;
        match bucket.ownership {
            _ if mine => None,
            Some(Ownership::BucketOwnerEnforced) => None,
            Some(Ownership::BucketOwnerPreferred) if acl == CannedAcl::BucketOwnerFullControl => None,
            None | Some(Ownership::BucketOwnerPreferred | Ownership::ObjectWriter) => Some(writer.to_owned()),
        }
    }

    fn code(o: Option<Ownership>) -> u8 {
        match o {
            None => 0,
            Some(Ownership::BucketOwnerEnforced) => 1,
            Some(Ownership::BucketOwnerPreferred) => 2,
            Some(Ownership::ObjectWriter) => 3,
        }
    }

    fn from_code(c: u8) -> Result<Option<Ownership>> {
        Ok(match c {
            0 => None,
            1 => Some(Ownership::BucketOwnerEnforced),
            2 => Some(Ownership::BucketOwnerPreferred),
            3 => Some(Ownership::ObjectWriter),
            _ => return Err(Error::BadMeta("object ownership")),
        })
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

/// The remote bucket a backend bucket caches: a backend named in the configuration and a
/// bucket (container) there.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct RemoteBucket {
    pub backend: String,
    pub bucket: String,
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
    /// The remote bucket this one is a cache of, if any (issue 13, backend buckets).
    pub backend: Option<RemoteBucket>,
    /// A backend bucket asks the remote before serving a cached object (refetched if changed,
    /// dropped if deleted there).
    pub validate_warm_get: bool,
    /// Copies of each object this bucket wants (0: the node's `--copies`), on distinct
    /// mountpaths (issue 15).
    pub copies: u8,
    /// The bucket's tag set (bucket tagging); empty: none (GetBucketTagging answers NoSuchTagSet).
    pub tags: super::Tags,
    /// Object lock was enabled at creation (D47): versions may carry retention and legal holds,
    /// and versioning stays Enabled.
    pub object_lock: bool,
    /// What a new version gets when its write names no retention.
    pub default_retention: Option<super::DefaultRetention>,
    /// The lifecycle rules the node's worker applies (D48).
    pub lifecycle: Option<super::Lifecycle>,
    /// The bucket policy (D49), parsed; its text is what GetBucketPolicy answers.
    pub access_policy: Option<std::sync::Arc<policy::Policy>>,
    pub public_access_block: Option<PublicAccessBlock>,
    /// The CORS rules browsers' cross-origin requests are checked against.
    pub cors: Option<super::Cors>,
    /// Who owns the objects written here; `None`: no controls set (keel's default: the
    /// writer, as ObjectWriter; ACLs enabled).
    pub ownership: Option<Ownership>,
    /// Explicit ACL grants, besides the canned ACL (D53).
    pub grants: super::Grants,
}

impl BucketMeta {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer(Vec::with_capacity(48 + self.owner.len() + self.location.len()));
        w.u8(BUCKET_RECORD_FORMAT);
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
        match &self.backend {
            None => w.u8(0),
            Some(b) => {
                w.u8(1);
                w.bytes(b.backend.as_bytes());
                w.bytes(b.bucket.as_bytes());
            }
        }
        w.u8(self.validate_warm_get as u8);
        w.u8(self.copies);
        super::tags::write_tags(&mut w, &self.tags);
        w.u8(self.object_lock as u8);
        super::DefaultRetention::write_opt(&self.default_retention, &mut w);
        match &self.lifecycle {
            None => w.u8(0),
            Some(l) => {
                w.u8(1);
                w.bytes(&l.encode());
            }
        }
        match &self.access_policy {
            None => w.u8(0),
            Some(p) => {
                w.u8(1);
                w.bytes(p.text().as_bytes());
            }
        }
        w.u8(self.public_access_block.map_or(0, PublicAccessBlock::code));
        match &self.cors {
            None => w.u8(0),
            Some(c) => {
                w.u8(1);
                w.bytes(&c.encode());
            }
        }
        w.u8(Ownership::code(self.ownership));
        super::acl::write_grants(&mut w, &self.grants);
        w.0
    }

    pub fn decode(buf: &[u8]) -> Result<BucketMeta> {
        let mut r = Reader(buf);
        let format = r.u8()?;
        if !(1..=BUCKET_RECORD_FORMAT).contains(&format) {
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
            if !matches!(acl, CannedAcl::Private | CannedAcl::PublicRead) {
                return Err(Error::BadMeta("acl"));
            }
            let policy = if acl == CannedAcl::PublicRead { BucketPolicy::PublicRead } else { BucketPolicy::None };
            (policy, 0, String::new())
        };
        let mut meta = BucketMeta {
            created_ms,
            owner,
            versioning,
            checksum,
            validate_on_read,
            acl,
            policy,
            incarnation,
            location,
            ..BucketMeta::default()
        };
        meta.read_later_fields(&mut r, format)?;
        if !r.0.is_empty() {
            return Err(Error::BadMeta("trailing bytes"));
        }
        Ok(meta)
    }

    /// The fields formats 3 and later added, each left at its default in older records.
    fn read_later_fields(&mut self, r: &mut Reader<'_>, format: u8) -> Result<()> {
        let flag = |r: &mut Reader<'_>, what: &'static str| match r.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(Error::BadMeta(what)),
        };
        if format >= 3 {
            self.backend = match r.u8()? {
                0 => None,
                1 => Some(RemoteBucket { backend: r.str()?, bucket: r.str()? }),
                _ => return Err(Error::BadMeta("backend presence")),
            };
            self.validate_warm_get = flag(r, "validate-warm-get flag")?;
        }
        if format >= 4 {
            self.copies = r.u8()?;
        }
        if format >= 5 {
            self.tags = super::tags::read_tags(r)?;
        }
        if format >= 6 {
            self.object_lock = flag(r, "object lock flag")?;
            self.default_retention = super::DefaultRetention::read_opt(r)?;
        }
        if format >= 7 && flag(r, "lifecycle presence")? {
            self.lifecycle = Some(super::Lifecycle::decode(r.bytes()?)?);
        }
        if format >= 8 {
            if flag(r, "bucket policy presence")? {
                let text = r.str()?;
                let p = policy::Policy::parse_stored(&text).map_err(|_| Error::BadMeta("bucket policy"))?;
                self.access_policy = Some(std::sync::Arc::new(p));
            }
            self.public_access_block = PublicAccessBlock::from_code(r.u8()?)?;
        }
        if format >= 9 && flag(r, "cors presence")? {
            self.cors = Some(super::Cors::decode(r.bytes()?)?);
        }
        if format >= 10 {
            self.ownership = Ownership::from_code(r.u8()?)?;
        }
        if format >= 11 {
            self.grants = super::acl::read_grants(r)?;
        }
        Ok(())
    }
}
