//! Bucket operations: list, create, head, delete, location, versioning, ACL.

use engine::{CannedAcl, Versioning};

use crate::http::Response;
use crate::s3::Call;
use crate::s3::access::AclTarget;
use crate::s3::error::{S3Error, S3ErrorCode};
use crate::s3::params;
use crate::s3::xml::XmlWriter;
use crate::time;

fn xml(status: u16, w: XmlWriter) -> Response {
    Response::with_body(status, "application/xml", w.finish())
}

/// ListBuckets: the caller's buckets in name order, paged with `max-buckets` (1..=10000) and
/// `continuation-token`, narrowed by `prefix`.
pub async fn list_buckets(call: &mut Call<'_>, p: &params::ListBuckets) -> Result<Response, S3Error> {
    let (max, prefix, after) = (p.max, p.prefix.as_deref().unwrap_or(""), &p.after);
    let me = call.auth.identity.name();
    let everyone = call.ctx.config.anonymous;
    // In a cluster, etcd's records as of now (a linearizable read: a bucket just made on
    // another node is listed).
    let all = match &call.ctx.config.cluster {
        Some(cluster) => cluster
            .agent
            .buckets()
            .await?
            .into_iter()
            .filter_map(|(name, rec)| engine::BucketMeta::decode(&rec).ok().map(|m| (name, m)))
            .collect(),
        None => call.ctx.store.list_buckets(),
    };
    let mine: Vec<(String, engine::BucketMeta)> = all
        .into_iter()
        .filter(|(name, m)| (everyone || m.owner == me) && name.starts_with(prefix))
        .filter(|(name, _)| after.as_deref().is_none_or(|a| name.as_str() > a))
        .collect();
    let take = max.unwrap_or(mine.len()).min(mine.len());
    let mut w = XmlWriter::new();
    w.open_root("ListAllMyBucketsResult");
    w.owner("Owner", me);
    w.open("Buckets");
    for (name, meta) in &mine[..take] {
        w.open("Bucket");
        w.elem("Name", name);
        w.elem("CreationDate", &time::iso8601_ms(meta.created_ms));
        w.elem("BucketRegion", region_of(call, meta));
        w.close("Bucket");
    }
    w.close("Buckets");
    if take < mine.len()
        && let Some((last, _)) = mine[..take].last()
    {
        w.elem("ContinuationToken", &params::encode_token(last));
    }
    if let Some(prefix) = &p.prefix {
        w.elem("Prefix", prefix);
    }
    w.close("ListAllMyBucketsResult");
    Ok(xml(200, w))
}

/// A bucket's region: its LocationConstraint, or the server's region when none was given.
fn region_of<'m>(call: &'m Call<'_>, meta: &'m engine::BucketMeta) -> &'m str {
    if meta.location.is_empty() { &call.ctx.config.region } else { &meta.location }
}

pub async fn create_bucket(call: &mut Call<'_>) -> Result<Response, S3Error> {
    let name = call.bucket().to_owned();
    let (acl, grants) = super::acl::for_write(call.req, &call.ctx.config.credentials, AclTarget::Bucket)?;
    let ownership = call.header("x-amz-object-ownership").and_then(|v| engine::Ownership::parse(v.trim()));
    if ownership == Some(engine::Ownership::BucketOwnerEnforced) && (acl != CannedAcl::Private || !grants.is_empty()) {
        return Err(S3Error::code(S3ErrorCode::InvalidBucketAclWithObjectOwnership));
    }
    // The optional body names a location; any region is accepted (one node has one location)
    // and kept, for GetBucketLocation.
    let location = match call.read_xml().await? {
        None => String::new(),
        Some(root) if root.name == "CreateBucketConfiguration" => {
            root.child_text("LocationConstraint").map(str::trim).unwrap_or("").to_owned()
        }
        Some(_) => return Err(S3Error::code(S3ErrorCode::MalformedXML)),
    };
    let store = &call.ctx.store;
    let me = call.auth.identity.name();
    // Object lock (D47): versioning on from the start, for good.
    let object_lock = match call.header("x-amz-bucket-object-lock-enabled").map(|v| v.trim().to_ascii_lowercase()) {
        None => false,
        Some(v) if v == "true" => true,
        Some(v) if v == "false" => false,
        Some(v) => {
            return Err(S3Error::new(
                S3ErrorCode::InvalidArgument,
                format!("Invalid value {v:?} for x-amz-bucket-object-lock-enabled."),
            ));
        }
    };
    let versioning = if object_lock { Versioning::Enabled } else { Versioning::Unset };
    let base = engine::BucketMeta {
        owner: me.to_owned(),
        acl,
        grants,
        location,
        object_lock,
        versioning,
        ownership,
        ..Default::default()
    };
    versions_supported(call.ctx, &base)?;
    if let Some(cluster) = &call.ctx.config.cluster {
        let template = base;
        return create_in_cluster(call, cluster, &name, template).await;
    }
    if let Ok(existing) = store.bucket(&name) {
        // S3's legacy behaviour in us-east-1: creating a bucket you own succeeds, and resets its
        // ACL to the one the request names (private when none).
        if existing.owner == me && call.ctx.config.region == "us-east-1" {
            if existing.acl != acl || existing.grants != base.grants {
                let grants = base.grants.clone();
                store
                    .update_bucket(&name, |m| {
                        m.acl = acl;
                        m.grants = grants;
                    })
                    .await?;
            }
            return Ok(Response::new(200).header("Location", format!("/{name}")));
        }
        return Err(bucket_exists(&existing, me));
    }
    match store.create_bucket_with(&name, base).await {
        Ok(_) => Ok(Response::new(200).header("Location", format!("/{name}"))),
        // Created by someone else since the check above.
        Err(engine::Error::BucketExists) => match store.bucket(&name) {
            Ok(existing) => Err(bucket_exists(&existing, me)),
            Err(e) => Err(e.into()),
        },
        Err(e) => Err(e.into()),
    }
}

/// The answer to creating a bucket that exists: yours or someone else's.
fn bucket_exists(existing: &engine::BucketMeta, me: &str) -> S3Error {
    if existing.owner != me {
        S3Error::new(
            S3ErrorCode::BucketAlreadyExists,
            "The requested bucket name is not available. Please select a different name and try again.",
        )
    } else {
        S3Error::code(S3ErrorCode::BucketAlreadyOwnedByYou)
    }
}

/// CreateBucket in a cluster: the record in etcd decides who created the bucket (an etcd
/// transaction: of two nodes racing, one wins); this node makes it at once, the others as
/// their watch sees it.
async fn create_in_cluster(
    call: &Call<'_>,
    cluster: &crate::cluster::Cluster,
    name: &str,
    mut template: engine::BucketMeta,
) -> Result<Response, S3Error> {
    let store = &call.ctx.store;
    let created = Response::new(200).header("Location", format!("/{name}"));
    engine::keys::validate_bucket_name(name)?;
    template.created_ms = time::now_ms();
    template.incarnation = engine::mountpath::random_u64();
    match cluster.agent.create_bucket(name, template.encode()).await? {
        Ok(rev) => {
            cluster.apply_bucket(store, name, rev, template).await;
            Ok(created)
        }
        Err((rev, record)) => {
            let existing =
                engine::BucketMeta::decode(&record).map_err(|_| S3Error::code(S3ErrorCode::InternalError))?;
            let me = template.owner.as_str();
            if existing.owner == me && call.ctx.config.region == "us-east-1" {
                if existing.acl != template.acl {
                    let mut meta = existing;
                    meta.acl = template.acl;
                    if let Some(rev) = cluster.agent.put_bucket(name, meta.encode()).await? {
                        cluster.apply_bucket(store, name, rev, meta).await;
                    }
                } else {
                    // Made by this client a moment ago (elsewhere, or by a try of this request
                    // that etcd took but did not answer in time): usable here once answered.
                    cluster.apply_bucket(store, name, rev, existing).await;
                }
                return Ok(created);
            }
            Err(bucket_exists(&existing, me))
        }
    }
}

/// After a change to a bucket's record on this node: the cluster's record follows.
pub(crate) async fn publish_bucket(ctx: &crate::s3::Ctx, name: &str) -> Result<(), S3Error> {
    if let Some(cluster) = &ctx.config.cluster {
        let meta = ctx.store.bucket(name)?;
        let rev = cluster.agent.put_bucket(name, meta.encode()).await?;
        let rev = rev.ok_or_else(|| S3Error::code(S3ErrorCode::NoSuchBucket))?;
        // An older record the watch delivers later never undoes this one.
        cluster.apply_bucket(&ctx.store, name, rev, meta).await;
    }
    Ok(())
}

/// PutBucketAcl: a canned ACL, grant headers or an AccessControlPolicy document (D53).
pub async fn put_acl(call: &mut Call<'_>) -> Result<Response, S3Error> {
    let meta = call.ctx.store.bucket(call.bucket())?;
    let body = call.read_small_body().await?;
    let who = (&call.ctx.config.credentials, meta.owner.as_str());
    let (acl, grants) = super::acl::for_put_acl(call.req, &body, who, AclTarget::Bucket)?;
    refuse_public(&meta, acl, &grants)?;
    call.ctx
        .store
        .update_bucket(call.bucket(), |m| {
            m.acl = acl;
            m.grants = grants;
        })
        .await?;
    publish_bucket(call.ctx, call.bucket()).await?;
    Ok(Response::new(200))
}

/// BlockPublicAcls refuses an ACL (canned or granted) that grants to everyone.
pub(crate) fn refuse_public(
    meta: &engine::BucketMeta,
    acl: CannedAcl,
    grants: &[engine::Grant],
) -> Result<(), S3Error> {
    let public = acl.is_public() || engine::meta::public_grants(grants);
    if public && meta.public_access_block.is_some_and(|b| b.block_public_acls) {
        return Err(S3Error::new(
            S3ErrorCode::AccessDenied,
            "The bucket's public access block (BlockPublicAcls) refuses a public ACL.",
        ));
    }
    Ok(())
}

/// PutBucketOwnershipControls: who owns the objects written here (D52). BucketOwnerEnforced
/// needs a private bucket ACL.
pub async fn put_ownership(call: &mut Call<'_>) -> Result<Response, S3Error> {
    let meta = call.ctx.store.bucket(call.bucket())?;
    let root = call.read_xml().await?.ok_or_else(|| S3Error::code(S3ErrorCode::MalformedXML))?;
    let rules: Vec<_> = root.children_named("Rule").collect();
    let ownership = match (root.name.as_str(), rules.as_slice()) {
        ("OwnershipControls", [rule]) if root.children.len() == 1 => {
            rule.child_text("ObjectOwnership").and_then(|v| engine::Ownership::parse(v.trim()))
        }
        _ => None,
    }
    .ok_or_else(|| S3Error::code(S3ErrorCode::MalformedXML))?;
    if ownership == engine::Ownership::BucketOwnerEnforced && meta.acl != CannedAcl::Private {
        return Err(S3Error::code(S3ErrorCode::InvalidBucketAclWithObjectOwnership));
    }
    call.ctx.store.update_bucket(call.bucket(), |m| m.ownership = Some(ownership)).await?;
    publish_bucket(call.ctx, call.bucket()).await?;
    Ok(Response::new(200))
}

/// GetBucketOwnershipControls.
pub async fn get_ownership(call: &mut Call<'_>) -> Result<Response, S3Error> {
    let meta = call.ctx.store.bucket(call.bucket())?;
    let o = meta.ownership.ok_or_else(|| S3Error::code(S3ErrorCode::OwnershipControlsNotFoundError))?;
    let mut w = XmlWriter::new();
    w.open_root("OwnershipControls");
    w.open("Rule");
    w.elem("ObjectOwnership", o.name());
    w.close("Rule");
    w.close("OwnershipControls");
    Ok(xml(200, w))
}

/// DeleteBucketOwnershipControls (204 whether or not there were any).
pub async fn delete_ownership(call: &mut Call<'_>) -> Result<Response, S3Error> {
    call.ctx.store.update_bucket(call.bucket(), |m| m.ownership = None).await?;
    publish_bucket(call.ctx, call.bucket()).await?;
    Ok(Response::new(204))
}

pub async fn head_bucket(call: &mut Call<'_>) -> Result<Response, S3Error> {
    let meta = call.ctx.store.bucket(call.bucket())?;
    Ok(Response::new(200).header("x-amz-bucket-region", region_of(call, &meta).to_owned()))
}

/// DeleteBucket: a bucket holding objects is refused; its unfinished multipart uploads go with it.
pub async fn delete_bucket(call: &mut Call<'_>) -> Result<Response, S3Error> {
    if let Some(cluster) = &call.ctx.config.cluster {
        // Empty on every node, then gone from etcd; each node drops its record as it sees that.
        call.ctx.store.bucket(call.bucket())?;
        if !crate::cluster::peer::bucket_empty(&call.ctx.store, cluster, call.bucket()).await? {
            return Err(S3Error::code(S3ErrorCode::BucketNotEmpty));
        }
        let Some(rev) = cluster.agent.delete_bucket(call.bucket()).await? else {
            return Err(S3Error::code(S3ErrorCode::NoSuchBucket));
        };
        cluster.bucket_deleted(call.bucket(), rev);
        return match call.ctx.store.delete_bucket(call.bucket()).await {
            Ok(()) | Err(engine::Error::NoSuchBucket) => Ok(Response::new(204)),
            Err(e) => Err(e.into()),
        };
    }
    call.ctx.store.delete_bucket(call.bucket()).await?;
    Ok(Response::new(204))
}

/// GetBucketLocation: the LocationConstraint given at creation (empty for us-east-1 and none).
pub async fn get_location(call: &mut Call<'_>) -> Result<Response, S3Error> {
    let meta = call.ctx.store.bucket(call.bucket())?;
    let mut w = XmlWriter::new();
    if meta.location.is_empty() || meta.location == "us-east-1" {
        w.empty_root("LocationConstraint");
    } else {
        w.open_root("LocationConstraint");
        w.elem_text(&meta.location);
        w.close("LocationConstraint");
    }
    Ok(xml(200, w))
}

pub async fn get_versioning(call: &mut Call<'_>) -> Result<Response, S3Error> {
    let meta = call.ctx.store.bucket(call.bucket())?;
    let mut w = XmlWriter::new();
    match meta.versioning {
        Versioning::Unset => w.empty_root("VersioningConfiguration"),
        v => {
            w.open_root("VersioningConfiguration");
            w.elem("Status", if v == Versioning::Enabled { "Enabled" } else { "Suspended" });
            w.close("VersioningConfiguration");
        }
    }
    Ok(xml(200, w))
}

/// Where versions are kept (D46): on one node, in a bucket of one copy that is not a backend
/// bucket's cache. Elsewhere a versioned bucket would keep versions on one drive or node only
/// (copies and rebalancing move current records), or none on the remote: refused, never
/// half done.
pub(crate) fn versions_supported(ctx: &crate::s3::Ctx, meta: &engine::BucketMeta) -> Result<(), S3Error> {
    if meta.versioning == Versioning::Unset {
        return Ok(());
    }
    let why = if ctx.config.cluster.is_some() {
        "in a cluster"
    } else if meta.backend.is_some() {
        "in a backend bucket"
    } else if ctx.store.copies_of(meta) > 1 {
        "in a bucket with more than one copy"
    } else {
        return Ok(());
    };
    Err(S3Error::new(S3ErrorCode::NotImplemented, format!("Versioning is not implemented {why}.")))
}

pub async fn put_versioning(call: &mut Call<'_>) -> Result<Response, S3Error> {
    let mut meta = call.ctx.store.bucket(call.bucket())?;
    let root = call.read_xml().await?.ok_or_else(|| S3Error::code(S3ErrorCode::MalformedXML))?;
    if root.name != "VersioningConfiguration" {
        return Err(S3Error::code(S3ErrorCode::MalformedXML));
    }
    match root.child_text("MfaDelete").map(str::trim) {
        None | Some("Disabled") => {}
        Some("Enabled") => {
            return Err(S3Error::new(S3ErrorCode::NotImplemented, "MFA delete is not implemented."));
        }
        Some(_) => return Err(S3Error::code(S3ErrorCode::MalformedXML)),
    }
    let state = match root.child_text("Status") {
        Some("Enabled") => Versioning::Enabled,
        Some("Suspended") => Versioning::Suspended,
        // No Status leaves the state as it is (S3 does the same).
        None => return Ok(Response::new(200)),
        Some(_) => return Err(S3Error::code(S3ErrorCode::MalformedXML)),
    };
    if meta.object_lock && state != Versioning::Enabled {
        return Err(S3Error::new(
            S3ErrorCode::InvalidBucketState,
            "An Object Lock configuration is present on this bucket, so the versioning state cannot be changed.",
        ));
    }
    meta.versioning = state;
    versions_supported(call.ctx, &meta)?;
    call.ctx.store.update_bucket(call.bucket(), |m| m.versioning = state).await?;
    publish_bucket(call.ctx, call.bucket()).await?;
    Ok(Response::new(200))
}

/// GetBucketAcl: the owner holds FULL_CONTROL, plus READ for the group the canned ACL names.
pub async fn get_acl(call: &mut Call<'_>) -> Result<Response, S3Error> {
    let meta = call.ctx.store.bucket(call.bucket())?;
    Ok(xml(200, acl_document((&meta.owner, &meta.owner), meta.acl, &meta.grants)))
}

/// An AccessControlPolicy document: `owner_id` owns the resource and holds FULL_CONTROL;
/// `bucket_owner` is granted what bucket-owner-read/-full-control give (an object another user
/// owns); then the canned ACL's groups and the explicit grants.
pub(crate) fn acl_document(
    (owner_id, bucket_owner): (&str, &str),
    acl: CannedAcl,
    grants: &[engine::Grant],
) -> XmlWriter {
    let mut w = XmlWriter::new();
    w.open_root("AccessControlPolicy");
    w.owner("Owner", owner_id);
    w.open("AccessControlList");
    // Group grants first, then the owner's (the order Ceph's s3-tests compare in).
    const ALL: &str = "http://acs.amazonaws.com/groups/global/AllUsers";
    let groups: &[(&str, &str)] = match acl {
        CannedAcl::Private | CannedAcl::BucketOwnerRead | CannedAcl::BucketOwnerFullControl => &[],
        CannedAcl::PublicRead => &[(ALL, "READ")],
        CannedAcl::AuthenticatedRead => &[("http://acs.amazonaws.com/groups/global/AuthenticatedUsers", "READ")],
        CannedAcl::PublicReadWrite => &[(ALL, "READ"), (ALL, "WRITE")],
    };
    for (uri, permission) in groups {
        w.open_grant_group(uri);
        w.elem("Permission", permission);
        w.close("Grant");
    }
    let to_bucket_owner = match acl {
        CannedAcl::BucketOwnerRead => Some("READ"),
        CannedAcl::BucketOwnerFullControl => Some("FULL_CONTROL"),
        _ => None,
    };
    if let Some(permission) = to_bucket_owner.filter(|_| bucket_owner != owner_id) {
        w.open_grant_canonical(bucket_owner);
        w.elem("Permission", permission);
        w.close("Grant");
    }
    super::acl::write_grants(&mut w, grants);
    w.open_grant_canonical(owner_id);
    w.elem("Permission", "FULL_CONTROL");
    w.close("Grant");
    w.close("AccessControlList");
    w.close("AccessControlPolicy");
    w
}
