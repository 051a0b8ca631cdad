//! Who may do what, decided in one place (DESIGN D25, D49).
//!
//! Each access key owns the buckets it creates and may do everything in them. Others get what
//! the owner granted:
//! - the bucket's canned ACL (`private`, `public-read`, `authenticated-read`) grants listing it;
//! - an object's canned ACL grants reading that object;
//! - the bucket's canned policy (`public-read`, set with `keel bucket props B policy=public-read`)
//!   grants reading every object, as AWS's bucket policy allowing `s3:GetObject` to `"*"` does;
//! - the bucket policy (PutBucketPolicy) allows or denies each action, as IAM evaluates it: an
//!   explicit Deny refuses even the owner (except the policy operations themselves), an Allow
//!   grants what the ACLs do not.
//!
//! The public access block can refuse public ACLs being set, make them grant nothing, refuse a
//! public policy, or make a public policy grant nothing to anyone but the owner.
//!
//! A missing object is 404 only to callers who may list the bucket (or the key's prefix, by
//! policy); others get 403, so absent keys do not leak. `--anonymous` servers let everyone do
//! everything.

mod actions;
mod facts;

use std::net::IpAddr;

use engine::{BucketMeta, BucketPolicy, CannedAcl, Ownership, Permission, PublicAccessBlock};
use policy::{Caller, Decision, Policy};

pub use actions::arn;
pub use facts::RequestFacts;

use crate::http::Request;
use crate::s3::Ctx;
use crate::s3::auth::Identity;
use crate::s3::error::{S3Error, S3ErrorCode};
use crate::s3::op::{AccessClass, Op, Route};

/// Where a request came from: the client's address and whether it came over TLS.
pub type Origin = (Option<IpAddr>, bool);

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
    /// May write and delete objects (the bucket's public-read-write ACL).
    pub write: bool,
    /// Public ACLs grant nothing (the bucket's IgnorePublicAcls).
    pub ignore_public_acls: bool,
    /// The bucket has a policy: each key of a DeleteObjects is authorized on its own
    /// (`key_allowed`).
    pub per_key: bool,
}

impl Access {
    pub const FULL: Access = Access {
        signed: true,
        owner: true,
        list: true,
        read_all: true,
        write: true,
        ignore_public_acls: false,
        per_key: false,
    };

    /// The caller's grants in a bucket with these properties (its policy document aside).
    pub fn to_bucket(ctx: &Ctx, identity: &Identity, bucket: &BucketMeta) -> Access {
        if ctx.config.anonymous {
            return Access::FULL;
        }
        let owner = matches!(identity, Identity::User(ak) if *ak == bucket.owner);
        let signed = matches!(identity, Identity::User(_));
        let block = bucket.public_access_block.unwrap_or_default();
        let ignore_public_acls = block.ignore_public_acls;
        let granted = |p| grants_give(&bucket.grants, identity, p, ignore_public_acls);
        Access {
            signed,
            owner,
            list: owner || (grants(bucket.acl, signed) && !ignore_public_acls) || granted(Permission::Read),
            read_all: owner || (bucket.policy == BucketPolicy::PublicRead && !block.restrict_public_buckets),
            write: owner
                || (bucket.acl == CannedAcl::PublicReadWrite && !ignore_public_acls)
                || granted(Permission::Write),
            ignore_public_acls,
            per_key: false,
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
                self.owner
                    || self.read_all
                    || object_acl.is_none_or(|acl| grants(acl, self.signed) && !self.ignore_public_acls)
            }
            AccessClass::WriteObject => self.owner || self.write,
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

    /// As `check_object`, the object's own owner (D52) and its READ grants (D53) allowed too.
    pub fn check_object_of(&self, identity: &Identity, meta: &engine::ObjectMeta) -> Result<(), S3Error> {
        match (&meta.owner, identity) {
            (Some(owner), Identity::User(me)) if owner == me => Ok(()),
            _ if grants_give(&meta.grants, identity, Permission::Read, self.ignore_public_acls) => Ok(()),
            _ => self.check_object(meta.acl),
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

/// Whether explicit grants give `p` to the caller (public grants not at all under
/// IgnorePublicAcls).
fn grants_give(grants: &[engine::Grant], identity: &Identity, p: Permission, ignore_public: bool) -> bool {
    let user = match identity {
        Identity::User(id) => Some(id.as_str()),
        Identity::Anonymous => None,
    };
    grants.iter().any(|g| {
        let public = matches!(g.grantee, engine::Grantee::AllUsers | engine::Grantee::AuthenticatedUsers);
        !(ignore_public && public) && engine::meta::granted(std::slice::from_ref(g), user, p)
    })
}

/// Whether a canned ACL grants READ to the caller (beyond the owner, who always has it).
fn grants(acl: CannedAcl, signed: bool) -> bool {
    match acl {
        // bucket-owner-*: the bucket's owner reads every object anyway.
        CannedAcl::Private | CannedAcl::BucketOwnerRead | CannedAcl::BucketOwnerFullControl => false,
        CannedAcl::PublicRead | CannedAcl::PublicReadWrite => true,
        CannedAcl::AuthenticatedRead => signed,
    }
}

fn denied() -> S3Error {
    S3Error::code(S3ErrorCode::AccessDenied)
}

/// Decides whether a routed request may run, before its handler does.
pub fn authorize(
    ctx: &Ctx,
    (req, route): (&Request, &Route),
    identity: &Identity,
    origin: Origin,
) -> Result<Access, S3Error> {
    if ctx.config.anonymous {
        return Ok(Access::FULL);
    }
    if route.op == Op::PostObject {
        // A browser form names its signer and key in its fields: the handler authorizes the
        // upload as a PutObject once it has read them (`s3/post`).
        return Ok(Access { signed: false, owner: false, list: false, read_all: false, write: false, ..Access::FULL });
    }
    let class = if route.bucket.is_none() { AccessClass::Signed } else { route.op.access() };
    let bucket = match route.bucket.as_deref() {
        Some(b) if class != AccessClass::Signed => b,
        // Outside a bucket (ListBuckets lists the caller's own), and CreateBucket: any signed
        // caller (who may create may learn that a name is taken: the handler answers 409).
        _ => {
            let access = Access { signed: matches!(identity, Identity::User(_)), ..Access::FULL };
            return if access.permits(class, None) { Ok(access) } else { Err(denied()) };
        }
    };
    let (mut access, policy, block, ownership) = ctx
        .store
        .with_bucket(bucket, |m| {
            let block = m.public_access_block.unwrap_or_default();
            (Access::to_bucket(ctx, identity, m), m.access_policy.clone(), block, m.ownership)
        })
        .ok_or_else(|| S3Error::from(engine::Error::NoSuchBucket))?;
    if block.block_public_acls && sets_public_acl(&route.op, req) {
        return Err(S3Error::new(
            S3ErrorCode::AccessDenied,
            "The bucket's public access block (BlockPublicAcls) refuses a public ACL.",
        ));
    }
    if ownership == Some(Ownership::BucketOwnerEnforced) && sets_acl_without_owner(&route.op, req) {
        return Err(S3Error::new(S3ErrorCode::AccessControlListNotSupported, "The bucket does not allow ACLs"));
    }
    let mut allowed = access.permits(class, None);
    if let Some(policy) = policy {
        let facts = RequestFacts::new(ctx, req, identity, origin);
        allowed |= by_policy(&policy, block, (route, &facts), &mut access)?;
    }
    // ACL grants (D53): READ_ACP and WRITE_ACP on the bucket; on an object, those and its own
    // owner (D52).
    allowed = allowed
        || match route.op {
            Op::GetBucketAcl | Op::PutBucketAcl => {
                let p = if route.op == Op::GetBucketAcl { Permission::ReadAcp } else { Permission::WriteAcp };
                ctx.store.with_bucket(bucket, |m| grants_give(&m.grants, identity, p, access.ignore_public_acls))
                    == Some(true)
            }
            Op::GetObjectAcl | Op::PutObjectAcl => object_acp(ctx, (req, route), identity, access.ignore_public_acls),
            _ => false,
        };
    if allowed { Ok(access) } else { Err(denied()) }
}

/// Whether the caller may read (GetObjectAcl) or write (PutObjectAcl) the ACL of the object
/// the request names: its owner, or a grant of READ_ACP / WRITE_ACP.
fn object_acp(ctx: &Ctx, (req, route): (&Request, &Route), identity: &Identity, ignore_public: bool) -> bool {
    let (Some(bucket), Some(key)) = (route.bucket.as_deref(), route.key.as_deref()) else { return false };
    let meta = match version_of(req) {
        Some(v) => ctx.store.head_version(bucket, key, v),
        None => ctx.store.head_object(bucket, key),
    };
    let Ok(m) = meta else { return false };
    let p = if route.op == Op::GetObjectAcl { Permission::ReadAcp } else { Permission::WriteAcp };
    matches!((&m.owner, identity), (Some(o), Identity::User(me)) if o == me)
        || grants_give(&m.grants, identity, p, ignore_public)
}

/// Applies the bucket's policy to a request: an error if it denies it, `true` if it allows
/// what the ACLs might not (and `access` then says so).
fn by_policy(
    policy: &Policy,
    block: PublicAccessBlock,
    (route, facts): (&Route, &RequestFacts<'_>),
    access: &mut Access,
) -> Result<bool, S3Error> {
    let versioned = crate::http::uri::Query::parse(&facts.req.query).is_some_and(|q| q.has("versionId"));
    let Some(action) = actions::of(&route.op, versioned) else { return Ok(false) };
    let bucket = route.bucket.as_deref().unwrap_or_default();
    if matches!(route.op, Op::DeleteObjects) {
        // Each key is decided on its own (S3 authorizes a DeleteObjects per key).
        access.per_key = true;
        return Ok(true);
    }
    let mut facts_for_object;
    let facts = match route.key.as_deref() {
        Some(key) if policy.uses_key("s3:existingobjecttag/") => {
            facts_for_object = facts.clone_basic();
            facts_for_object.object = Some((bucket, key, version_of(facts.req)));
            &facts_for_object
        }
        _ => facts,
    };
    let caller = caller(facts.identity);
    let resource = arn(bucket, route.key.as_deref());
    let decision = policy.evaluate(&policy::Request { caller, action, resource: &resource, facts });
    if decision == Decision::Deny && !(access.owner && actions::manages_policy(&route.op)) {
        return Err(denied());
    }
    if access.owner {
        return Ok(true);
    }
    // RestrictPublicBuckets: a public policy grants nothing to anyone but the owner.
    if block.restrict_public_buckets && policy.is_public() {
        return Ok(false);
    }
    let allowed = decision == Decision::Allow;
    if allowed {
        access.read_all = true;
        access.write |= matches!(route.op.access(), AccessClass::WriteObject);
        access.list |= matches!(route.op.access(), AccessClass::List);
    }
    // Whether a missing key is 404 or 403: may the caller list the key's prefix?
    if let Some(key) = route.key.as_deref()
        && !access.list
        && policy.may_allow_listing()
    {
        let mut list_facts = facts.clone_basic();
        list_facts.prefix = Some(key);
        let r = policy::Request { caller, action: "s3:ListBucket", resource: &arn(bucket, None), facts: &list_facts };
        access.list = policy.evaluate(&r) == Decision::Allow;
    }
    Ok(allowed)
}

fn caller(identity: &Identity) -> Caller<'_> {
    match identity {
        Identity::User(id) => Caller::User(id),
        Identity::Anonymous => Caller::Anonymous,
    }
}

fn version_of(req: &Request) -> Option<engine::VersionRef> {
    let q = crate::http::uri::Query::parse(&req.query)?;
    crate::s3::params::version(&q).ok().flatten()
}

/// Whether the request sets an ACL that grants to everyone or to every signed caller
/// (BlockPublicAcls).
fn sets_public_acl(op: &Op, req: &Request) -> bool {
    if !matches!(op, Op::PutBucketAcl | Op::PutObjectAcl | Op::PutObject | Op::CopyObject | Op::CreateMultipartUpload) {
        return false;
    }
    let canned = req
        .header("x-amz-acl")
        .is_some_and(|v| matches!(v.trim(), "public-read" | "public-read-write" | "authenticated-read"));
    let granted = req.headers.iter().any(|(k, v)| {
        k.starts_with("x-amz-grant-")
            && (v.contains("acs.amazonaws.com/groups/global/AllUsers")
                || v.contains("acs.amazonaws.com/groups/global/AuthenticatedUsers"))
    });
    canned || granted
}

/// Whether a request sets an ACL other than bucket-owner-full-control: refused where the
/// bucket's owner owns everything and ACLs are disabled (BucketOwnerEnforced, D52).
fn sets_acl_without_owner(op: &Op, req: &Request) -> bool {
    let canned = req.header("x-amz-acl").map(str::trim);
    let grants = req.headers.iter().any(|(k, _)| k.starts_with("x-amz-grant-"));
    match op {
        Op::PutObject | Op::CopyObject | Op::CreateMultipartUpload => {
            grants || canned.is_some_and(|a| a != "bucket-owner-full-control")
        }
        Op::PutBucketAcl | Op::PutObjectAcl => canned != Some("bucket-owner-full-control"),
        _ => false,
    }
}

/// Who owns an object the caller writes with `acl` into `bucket` (`None`: the bucket's owner).
pub fn object_owner(ctx: &Ctx, bucket: &str, identity: &Identity, acl: CannedAcl) -> Option<String> {
    ctx.store.with_bucket(bucket, |m| Ownership::owner_of(m, identity.name(), acl)).flatten()
}

/// Whether the caller may delete `key` (one key of a DeleteObjects in a bucket with a policy;
/// `versioned`: a version of it): if the policy says nothing, whether the ACLs let the caller
/// write (`acl_write`: the owner, or a public-read-write bucket).
pub fn key_allowed(
    ctx: &Ctx,
    (req, bucket): (&Request, &str),
    (identity, acl_write): (&Identity, bool),
    origin: Origin,
    (key, versioned): (&str, bool),
) -> bool {
    let found = ctx.store.with_bucket(bucket, |m| {
        let owner = matches!(identity, Identity::User(ak) if *ak == m.owner);
        (m.access_policy.clone(), m.public_access_block.unwrap_or_default(), owner)
    });
    let Some((Some(policy), block, owner)) = found else { return acl_write };
    let facts = RequestFacts::new(ctx, req, identity, origin);
    let action = if versioned { "s3:DeleteObjectVersion" } else { "s3:DeleteObject" };
    let resource = arn(bucket, Some(key));
    let r = policy::Request { caller: caller(identity), action, resource: &resource, facts: &facts };
    match decide(&policy, (block, owner), &r) {
        Decision::Deny => false,
        Decision::Allow => true,
        Decision::NotApplicable => acl_write,
    }
}

/// The policy's decision on `r` with RestrictPublicBuckets applied: a public policy's Allow
/// counts for nobody but the bucket's `owner`.
fn decide(policy: &Policy, (block, owner): (PublicAccessBlock, bool), r: &policy::Request<'_>) -> Decision {
    match policy.evaluate(r) {
        Decision::Allow if !owner && block.restrict_public_buckets && policy.is_public() => Decision::NotApplicable,
        d => d,
    }
}

/// The caller's access to an object of another bucket (a copy source): its ACLs, and its
/// bucket's policy for `s3:GetObject` (`s3:GetObjectVersion`) on that object.
pub fn to_source(
    ctx: &Ctx,
    (req, identity, origin): (&Request, &Identity, Origin),
    (bucket, key, version): (&str, &str, Option<engine::VersionRef>),
) -> Result<Access, S3Error> {
    let meta = ctx.store.bucket(bucket)?;
    let mut access = Access::to_bucket(ctx, identity, &meta);
    let Some(policy) = meta.access_policy.as_deref().filter(|_| !ctx.config.anonymous) else { return Ok(access) };
    let mut facts = RequestFacts::new(ctx, req, identity, origin);
    facts.object = Some((bucket, key, version));
    let action = if version.is_some() { "s3:GetObjectVersion" } else { "s3:GetObject" };
    let resource = arn(bucket, Some(key));
    let r = policy::Request { caller: caller(identity), action, resource: &resource, facts: &facts };
    match decide(policy, (meta.public_access_block.unwrap_or_default(), access.owner), &r) {
        Decision::Deny => return Err(denied()),
        Decision::Allow => access.read_all = true,
        Decision::NotApplicable => {}
    }
    Ok(access)
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
        // Anyone may write the bucket's objects; on an object, WRITE grants nothing more than
        // public-read (S3's meaning), though its ACL shows it.
        "public-read-write" => Ok(CannedAcl::PublicReadWrite),
        // Grants to the bucket's owner on an object another user owns; S3 ignores them on
        // buckets.
        "bucket-owner-read" if target == AclTarget::Object => Ok(CannedAcl::BucketOwnerRead),
        "bucket-owner-full-control" if target == AclTarget::Object => Ok(CannedAcl::BucketOwnerFullControl),
        "bucket-owner-read" | "bucket-owner-full-control" => Ok(CannedAcl::Private),
        v @ ("aws-exec-read" | "log-delivery-write") => Err(S3Error::new(
            S3ErrorCode::NotImplemented,
            format!(
                "The canned ACL {v} is not implemented on {} (private, public-read, public-read-write and authenticated-read are).",
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
        assert_eq!(
            parse_canned("bucket-owner-full-control", AclTarget::Object).unwrap(),
            CannedAcl::BucketOwnerFullControl
        );
        assert_eq!(parse_canned("bucket-owner-full-control", AclTarget::Bucket).unwrap(), CannedAcl::Private);
        assert_eq!(parse_canned("public-read-write", AclTarget::Bucket).unwrap(), CannedAcl::PublicReadWrite);
        assert_eq!(parse_canned("public-read-write", AclTarget::Object).unwrap(), CannedAcl::PublicReadWrite);
        assert_eq!(
            parse_canned("log-delivery-write", AclTarget::Bucket).unwrap_err().code,
            S3ErrorCode::NotImplemented
        );
        assert_eq!(parse_canned("everyone", AclTarget::Bucket).unwrap_err().code, S3ErrorCode::InvalidArgument);
        assert!(grants(CannedAcl::PublicRead, false));
        assert!(!grants(CannedAcl::AuthenticatedRead, false) && grants(CannedAcl::AuthenticatedRead, true));
        assert!(!grants(CannedAcl::Private, true));
        let reader = Access { signed: false, owner: false, list: true, read_all: false, ..Access::FULL };
        assert!(reader.check_object(CannedAcl::Private).is_err() && reader.check_object(CannedAcl::PublicRead).is_ok());
        assert!(reader.permits(AccessClass::ReadObject, None) && !reader.permits(AccessClass::Owner, None));
        assert_eq!(reader.missing(engine::Error::NoSuchObject).code, S3ErrorCode::NoSuchKey);
        let stranger = Access { signed: true, owner: false, list: false, read_all: true, ..Access::FULL };
        assert_eq!(stranger.missing(engine::Error::NoSuchObject).code, S3ErrorCode::AccessDenied);
        assert!(stranger.check_object(CannedAcl::Private).is_ok() && !stranger.permits(AccessClass::List, None));
    }
}
