//! Who may do what, decided in one place (DESIGN D25).
//!
//! Each access key owns the buckets it creates and may do everything in them. Others get what
//! the owner granted:
//! - the bucket's canned ACL (`private`, `public-read`, `authenticated-read`) grants listing it;
//! - an object's canned ACL grants reading that object;
//! - the bucket's canned policy (`public-read`, set with `keel bucket props B policy=public-read`)
//!   grants reading every object, as AWS's bucket policy allowing `s3:GetObject` to `"*"` does.
//!
//! A missing object is 404 only to callers who may list the bucket; others get 403, so absent
//! keys do not leak. `--anonymous` servers let everyone do everything.

use engine::{BucketMeta, BucketPolicy, CannedAcl};

use crate::s3::Ctx;
use crate::s3::auth::Identity;
use crate::s3::error::{S3Error, S3ErrorCode};
use crate::s3::op::{AccessClass, Route};

/// What the caller has been granted in the bucket a request names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Access {
    /// The request is signed by a known key (or the server is `--anonymous`).
    pub signed: bool,
    /// The bucket's owner (or anyone, on an `--anonymous` server): everything.
    pub owner: bool,
    /// May list the bucket's keys.
    pub list: bool,
    /// May read every object, whatever its ACL.
    pub read_all: bool,
}

impl Access {
    pub const FULL: Access = Access { signed: true, owner: true, list: true, read_all: true };

    /// The caller's grants in a bucket with these properties.
    pub fn to_bucket(ctx: &Ctx, identity: &Identity, bucket: &BucketMeta) -> Access {
        if ctx.config.anonymous {
            return Access::FULL;
        }
        let owner = matches!(identity, Identity::User(ak) if *ak == bucket.owner);
        let signed = matches!(identity, Identity::User(_));
        Access {
            signed,
            owner,
            list: owner || grants(bucket.acl, signed),
            read_all: owner || bucket.policy == BucketPolicy::PublicRead,
        }
    }

    /// The rule, the only one: whether these grants allow what `class` names. For `ReadObject`,
    /// `object_acl` is the object's ACL once its record is read; before (`None`), whether the
    /// caller may ask at all — anyone may, since an object's ACL can grant it.
    pub fn permits(&self, class: AccessClass, object_acl: Option<CannedAcl>) -> bool {
        match class {
            AccessClass::Signed => self.signed,
            AccessClass::List => self.owner || self.list,
            AccessClass::ReadObject => {
                self.owner || self.read_all || object_acl.is_none_or(|acl| grants(acl, self.signed))
            }
            AccessClass::Owner => self.owner,
        }
    }

    /// Refuses to read an object (its record read) the caller may not read.
    pub fn check_object(&self, acl: CannedAcl) -> Result<(), S3Error> {
        if self.permits(AccessClass::ReadObject, Some(acl)) {
            Ok(())
        } else {
            Err(S3Error::code(S3ErrorCode::AccessDenied))
        }
    }

    /// What a missing object is to this caller: NoSuchKey to whoever may list the bucket,
    /// AccessDenied to others.
    pub fn missing(&self, e: engine::Error) -> S3Error {
        match e {
            engine::Error::NoSuchObject if !self.permits(AccessClass::List, None) => {
                S3Error::code(S3ErrorCode::AccessDenied)
            }
            e => e.into(),
        }
    }
}

/// Whether a canned ACL grants READ to the caller (beyond the owner, who always has it).
fn grants(acl: CannedAcl, signed: bool) -> bool {
    match acl {
        CannedAcl::Private => false,
        CannedAcl::PublicRead => true,
        CannedAcl::AuthenticatedRead => signed,
    }
}

/// Decides whether a routed request may run, before its handler does.
pub fn authorize(ctx: &Ctx, route: &Route, identity: &Identity) -> Result<Access, S3Error> {
    if ctx.config.anonymous {
        return Ok(Access::FULL);
    }
    let class = if route.bucket.is_none() { AccessClass::Signed } else { route.op.access() };
    let access = match route.bucket.as_deref() {
        Some(bucket) if class != AccessClass::Signed => ctx
            .store
            .with_bucket(bucket, |meta| Access::to_bucket(ctx, identity, meta))
            .ok_or_else(|| S3Error::from(engine::Error::NoSuchBucket))?,
        // Outside a bucket (ListBuckets lists the caller's own), and CreateBucket: any signed
        // caller (who may create may learn that a name is taken: the handler answers 409).
        _ => Access { signed: matches!(identity, Identity::User(_)), ..Access::FULL },
    };
    if access.permits(class, None) { Ok(access) } else { Err(S3Error::code(S3ErrorCode::AccessDenied)) }
}

/// The caller's access to objects of another bucket (a copy source).
pub fn to_source(ctx: &Ctx, identity: &Identity, bucket: &str) -> Result<Access, S3Error> {
    let meta = ctx.store.bucket(bucket)?;
    Ok(Access::to_bucket(ctx, identity, &meta))
}

/// Where a canned ACL is given: buckets and objects accept slightly different sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AclTarget {
    Bucket,
    Object,
}

/// Parses an `x-amz-acl` value. Unknown values are 400; ACLs S3 knows but keel does not
/// implement (write grants, log delivery) are 501.
pub fn parse_canned(value: &str, target: AclTarget) -> Result<CannedAcl, S3Error> {
    match value.trim() {
        "private" => Ok(CannedAcl::Private),
        "public-read" => Ok(CannedAcl::PublicRead),
        "authenticated-read" => Ok(CannedAcl::AuthenticatedRead),
        // The bucket's owner is every object's owner (the only one who may write): both grant
        // nothing beyond private. S3 ignores them on buckets.
        "bucket-owner-read" | "bucket-owner-full-control" => Ok(CannedAcl::Private),
        v @ ("public-read-write" | "aws-exec-read" | "log-delivery-write") => Err(S3Error::new(
            S3ErrorCode::NotImplemented,
            format!(
                "The canned ACL {v} is not implemented on {} (private, public-read and authenticated-read are).",
                if target == AclTarget::Bucket { "buckets" } else { "objects" }
            ),
        )),
        v => Err(S3Error::new(S3ErrorCode::InvalidArgument, format!("{v:?} is not a canned ACL."))
            .with_detail("ArgumentName", "x-amz-acl")
            .with_detail("ArgumentValue", v)),
    }
}

/// The canned ACL of a request's `x-amz-acl` header, if it has one.
pub fn canned_from(req: &crate::http::Request, target: AclTarget) -> Result<Option<CannedAcl>, S3Error> {
    req.header("x-amz-acl").map(|v| parse_canned(v, target)).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canned_acls() {
        assert_eq!(parse_canned("public-read", AclTarget::Object).unwrap(), CannedAcl::PublicRead);
        assert_eq!(parse_canned(" private ", AclTarget::Bucket).unwrap(), CannedAcl::Private);
        assert_eq!(parse_canned("bucket-owner-full-control", AclTarget::Object).unwrap(), CannedAcl::Private);
        assert_eq!(parse_canned("public-read-write", AclTarget::Bucket).unwrap_err().code, S3ErrorCode::NotImplemented);
        assert_eq!(parse_canned("everyone", AclTarget::Bucket).unwrap_err().code, S3ErrorCode::InvalidArgument);
        assert!(grants(CannedAcl::PublicRead, false));
        assert!(!grants(CannedAcl::AuthenticatedRead, false) && grants(CannedAcl::AuthenticatedRead, true));
        assert!(!grants(CannedAcl::Private, true));
        let reader = Access { signed: false, owner: false, list: true, read_all: false };
        assert!(reader.check_object(CannedAcl::Private).is_err() && reader.check_object(CannedAcl::PublicRead).is_ok());
        assert!(reader.permits(AccessClass::ReadObject, None) && !reader.permits(AccessClass::Owner, None));
        assert_eq!(reader.missing(engine::Error::NoSuchObject).code, S3ErrorCode::NoSuchKey);
        let stranger = Access { signed: true, owner: false, list: false, read_all: true };
        assert_eq!(stranger.missing(engine::Error::NoSuchObject).code, S3ErrorCode::AccessDenied);
        assert!(stranger.check_object(CannedAcl::Private).is_ok() && !stranger.permits(AccessClass::List, None));
    }
}
