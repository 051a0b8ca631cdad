//! Put/Get/DeleteBucketPolicy, GetBucketPolicyStatus and Put/Get/DeletePublicAccessBlock
//! (D49). The policy is evaluated for every request in `s3/access`.

use std::sync::Arc;

use engine::{BucketPolicy, PublicAccessBlock};
use policy::Policy;

use crate::http::Response;
use crate::s3::call::Call;
use crate::s3::error::{S3Error, S3ErrorCode};
use crate::s3::xml::{self, XmlWriter};

fn malformed(why: impl Into<String>) -> S3Error {
    S3Error::new(S3ErrorCode::MalformedPolicy, why)
}

/// PutBucketPolicy: the JSON document, checked, stored verbatim.
pub async fn put(call: &mut Call<'_>) -> Result<Response, S3Error> {
    let meta = call.ctx.store.bucket(call.bucket())?;
    let body = call.read_small_body().await?;
    let text = std::str::from_utf8(&body).map_err(|_| malformed("Policies must be valid UTF-8 JSON"))?;
    let policy = Policy::parse(text, call.bucket()).map_err(|e| malformed(e.0))?;
    if meta.public_access_block.is_some_and(|b| b.block_public_policy) && policy.is_public() {
        return Err(S3Error::new(
            S3ErrorCode::AccessDenied,
            "The bucket's public access block (BlockPublicPolicy) refuses a public policy.",
        ));
    }
    let policy = Arc::new(policy);
    call.ctx.store.update_bucket(call.bucket(), |m| m.access_policy = Some(policy)).await?;
    super::bucket::publish_bucket(call.ctx, call.bucket()).await?;
    Ok(Response::new(204))
}

/// GetBucketPolicy: the document as it was given.
pub async fn get(call: &mut Call<'_>) -> Result<Response, S3Error> {
    let meta = call.ctx.store.bucket(call.bucket())?;
    let policy = meta.access_policy.ok_or_else(|| S3Error::code(S3ErrorCode::NoSuchBucketPolicy))?;
    Ok(Response::with_body(200, "application/json", policy.text().as_bytes().to_vec()))
}

/// DeleteBucketPolicy (204 whether or not there was one, as S3).
pub async fn delete(call: &mut Call<'_>) -> Result<Response, S3Error> {
    call.ctx.store.update_bucket(call.bucket(), |m| m.access_policy = None).await?;
    super::bucket::publish_bucket(call.ctx, call.bucket()).await?;
    Ok(Response::new(204))
}

/// GetBucketPolicyStatus: whether the bucket's policy or ACL grants anything to everyone.
pub async fn status(call: &mut Call<'_>) -> Result<Response, S3Error> {
    let meta = call.ctx.store.bucket(call.bucket())?;
    let block = meta.public_access_block.unwrap_or_default();
    let public_policy =
        meta.access_policy.as_ref().is_some_and(|p| p.is_public()) || meta.policy == BucketPolicy::PublicRead;
    let public_acl = (meta.acl.is_public() || engine::meta::public_grants(&meta.grants)) && !block.ignore_public_acls;
    let mut w = XmlWriter::new();
    w.open_root("PolicyStatus");
    w.elem_bool("IsPublic", public_policy || public_acl);
    w.close("PolicyStatus");
    Ok(Response::with_body(200, "application/xml", w.finish()))
}

const BLOCK_FIELDS: [&str; 4] = ["BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"];

/// The `PublicAccessBlockConfiguration` document (absent fields are false).
pub fn parse_block(root: &xml::Element) -> Result<PublicAccessBlock, S3Error> {
    let bad = || S3Error::code(S3ErrorCode::MalformedXML);
    if root.name != "PublicAccessBlockConfiguration" {
        return Err(bad());
    }
    let mut flags = [false; 4];
    for c in &root.children {
        let i = BLOCK_FIELDS.iter().position(|f| *f == c.name).ok_or_else(bad)?;
        flags[i] = match c.text.trim() {
            "true" | "TRUE" | "True" => true,
            "false" | "FALSE" | "False" => false,
            _ => return Err(bad()),
        };
    }
    Ok(PublicAccessBlock {
        block_public_acls: flags[0],
        ignore_public_acls: flags[1],
        block_public_policy: flags[2],
        restrict_public_buckets: flags[3],
    })
}

/// PutPublicAccessBlock.
pub async fn put_block(call: &mut Call<'_>) -> Result<Response, S3Error> {
    call.ctx.store.bucket(call.bucket())?;
    let root = call.read_xml().await?.ok_or_else(|| S3Error::code(S3ErrorCode::MalformedXML))?;
    let block = parse_block(&root)?;
    call.ctx.store.update_bucket(call.bucket(), |m| m.public_access_block = Some(block)).await?;
    super::bucket::publish_bucket(call.ctx, call.bucket()).await?;
    Ok(Response::new(200))
}

/// GetPublicAccessBlock.
pub async fn get_block(call: &mut Call<'_>) -> Result<Response, S3Error> {
    let meta = call.ctx.store.bucket(call.bucket())?;
    let b = meta.public_access_block.ok_or_else(|| S3Error::code(S3ErrorCode::NoSuchPublicAccessBlockConfiguration))?;
    let mut w = XmlWriter::new();
    w.open_root("PublicAccessBlockConfiguration");
    let flags = [b.block_public_acls, b.ignore_public_acls, b.block_public_policy, b.restrict_public_buckets];
    for (name, on) in BLOCK_FIELDS.iter().zip(flags) {
        w.elem_bool(name, on);
    }
    w.close("PublicAccessBlockConfiguration");
    Ok(Response::with_body(200, "application/xml", w.finish()))
}

/// DeletePublicAccessBlock.
pub async fn delete_block(call: &mut Call<'_>) -> Result<Response, S3Error> {
    call.ctx.store.update_bucket(call.bucket(), |m| m.public_access_block = None).await?;
    super::bucket::publish_bucket(call.ctx, call.bucket()).await?;
    Ok(Response::new(204))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_documents() {
        let doc = |s: &str| parse_block(&xml::parse(s.as_bytes()).unwrap());
        let b = doc("<PublicAccessBlockConfiguration><BlockPublicAcls>true</BlockPublicAcls><RestrictPublicBuckets>true</RestrictPublicBuckets></PublicAccessBlockConfiguration>").unwrap();
        assert!(b.block_public_acls && b.restrict_public_buckets && !b.ignore_public_acls && !b.block_public_policy);
        assert_eq!(doc("<PublicAccessBlockConfiguration/>").unwrap(), PublicAccessBlock::default());
        for bad in [
            "<Other/>",
            "<PublicAccessBlockConfiguration><BlockPublicAcls>yes</BlockPublicAcls></PublicAccessBlockConfiguration>",
            "<PublicAccessBlockConfiguration><Extra>true</Extra></PublicAccessBlockConfiguration>",
        ] {
            assert_eq!(doc(bad).unwrap_err().code, S3ErrorCode::MalformedXML, "{bad}");
        }
    }
}
