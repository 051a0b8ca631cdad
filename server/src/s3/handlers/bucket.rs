//! Bucket operations: list, create, head, delete, location, versioning, ACL.

use engine::{BucketAcl, Versioning};

use crate::http::Response;
use crate::s3::Call;
use crate::s3::error::{S3Error, S3ErrorCode};
use crate::s3::xml::XmlWriter;
use crate::time;

fn xml(status: u16, w: XmlWriter) -> Response {
    Response::with_body(status, "application/xml", w.finish())
}

fn owner(w: &mut XmlWriter, id: &str) {
    w.open("Owner");
    w.elem("ID", id);
    w.elem("DisplayName", id);
    w.close("Owner");
}

pub async fn list_buckets(call: &mut Call<'_>) -> Result<Response, S3Error> {
    let mut w = XmlWriter::new();
    w.open_root("ListAllMyBucketsResult");
    owner(&mut w, call.auth.identity.name());
    w.open("Buckets");
    let me = call.auth.identity.name();
    let everyone = call.ctx.config.anonymous;
    for (name, meta) in call.ctx.store.list_buckets().into_iter().filter(|(_, m)| everyone || m.owner == me) {
        w.open("Bucket");
        w.elem("Name", &name);
        w.elem("CreationDate", &time::iso8601_ms(meta.created_ms));
        w.close("Bucket");
    }
    w.close("Buckets");
    w.close("ListAllMyBucketsResult");
    Ok(xml(200, w))
}

pub async fn create_bucket(call: &mut Call<'_>) -> Result<Response, S3Error> {
    let name = call.bucket().to_owned();
    // The optional body names a location; any region is accepted (one node has one location).
    if let Some(root) = call.read_xml().await?
        && root.name != "CreateBucketConfiguration"
    {
        return Err(S3Error::code(S3ErrorCode::MalformedXML));
    }
    let acl = canned_acl(call)?.unwrap_or(BucketAcl::Private);
    let store = &call.ctx.store;
    if let Ok(existing) = store.bucket(&name)
        && existing.owner != call.auth.identity.name()
    {
        return Err(S3Error::new(
            S3ErrorCode::BucketAlreadyExists,
            "The requested bucket name is not available. Please select a different name and try again.",
        ));
    }
    store.create_bucket(&name, call.auth.identity.name()).await?;
    if acl != BucketAcl::Private {
        store.update_bucket(&name, |m| m.acl = acl).await?;
    }
    Ok(Response::new(200).header("Location", format!("/{name}")))
}

/// The canned ACL of `x-amz-acl`: `private` or `public-read` (keel's whole ACL model).
fn canned_acl(call: &Call<'_>) -> Result<Option<BucketAcl>, S3Error> {
    match call.header("x-amz-acl").map(str::trim) {
        None => Ok(None),
        Some("private") => Ok(Some(BucketAcl::Private)),
        Some("public-read") => Ok(Some(BucketAcl::PublicRead)),
        Some(other) => Err(S3Error::new(
            S3ErrorCode::NotImplemented,
            format!("The canned ACL {other} is not supported (private and public-read are)"),
        )),
    }
}

/// PutBucketAcl with a canned ACL header.
pub async fn put_acl(call: &mut Call<'_>) -> Result<Response, S3Error> {
    call.ctx.store.bucket(call.bucket())?;
    let Some(acl) = canned_acl(call)? else {
        return Err(S3Error::new(S3ErrorCode::NotImplemented, "Only canned ACLs (x-amz-acl) are supported"));
    };
    call.ctx.store.update_bucket(call.bucket(), |m| m.acl = acl).await?;
    Ok(Response::new(200))
}

pub async fn head_bucket(call: &mut Call<'_>) -> Result<Response, S3Error> {
    call.ctx.store.bucket(call.bucket())?;
    Ok(Response::new(200).header("x-amz-bucket-region", call.ctx.config.region.clone()))
}

pub async fn delete_bucket(call: &mut Call<'_>) -> Result<Response, S3Error> {
    call.ctx.store.delete_bucket(call.bucket()).await?;
    Ok(Response::new(204))
}

pub async fn get_location(call: &mut Call<'_>) -> Result<Response, S3Error> {
    call.ctx.store.bucket(call.bucket())?;
    let mut w = XmlWriter::new();
    let region = &call.ctx.config.region;
    // S3 answers an empty constraint for us-east-1.
    if region == "us-east-1" {
        w.empty_root("LocationConstraint");
    } else {
        w.open_root("LocationConstraint");
        w.elem_text(region);
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

pub async fn put_versioning(call: &mut Call<'_>) -> Result<Response, S3Error> {
    call.ctx.store.bucket(call.bucket())?;
    let root = call.read_xml().await?.ok_or_else(|| S3Error::code(S3ErrorCode::MalformedXML))?;
    if root.name != "VersioningConfiguration" {
        return Err(S3Error::code(S3ErrorCode::MalformedXML));
    }
    let state = match root.child_text("Status") {
        Some("Enabled") => Versioning::Enabled,
        Some("Suspended") => Versioning::Suspended,
        // No Status leaves the state as it is (S3 does the same).
        None => return Ok(Response::new(200)),
        Some(_) => return Err(S3Error::code(S3ErrorCode::MalformedXML)),
    };
    call.ctx.store.update_bucket(call.bucket(), |m| m.versioning = state).await?;
    Ok(Response::new(200))
}

/// A minimal ACL: the owner holds FULL_CONTROL (plus READ for everyone on public-read buckets).
pub async fn get_acl(call: &mut Call<'_>) -> Result<Response, S3Error> {
    let meta = call.ctx.store.bucket(call.bucket())?;
    if let Some(key) = call.route.key.as_deref() {
        call.ctx.store.head_object(call.bucket(), key)?;
    }
    let mut w = XmlWriter::new();
    w.open_root("AccessControlPolicy");
    owner(&mut w, &meta.owner);
    w.open("AccessControlList");
    w.open_grant_canonical(&meta.owner);
    w.elem("Permission", "FULL_CONTROL");
    w.close("Grant");
    if meta.acl == BucketAcl::PublicRead {
        w.open_grant_group("http://acs.amazonaws.com/groups/global/AllUsers");
        w.elem("Permission", "READ");
        w.close("Grant");
    }
    w.close("AccessControlList");
    w.close("AccessControlPolicy");
    Ok(xml(200, w))
}
