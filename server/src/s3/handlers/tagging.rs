//! Object and bucket tagging: `x-amz-tagging` on writes, the `?tagging` subresources, and the
//! `Tagging` document both ways.

use engine::{BUCKET_TAGS_MAX, OBJECT_TAGS_MAX, Tags, validate_tags};

use crate::http::{Request, Response};
use crate::s3::call::Call;
use crate::s3::error::{S3Error, S3ErrorCode};
use crate::s3::xml::{self, XmlWriter};

/// The tag set of an `x-amz-tagging` header (URL query form, `+` for a space): `None` when the
/// header is absent. A tag without `=` has an empty value (`foo=bar&bar`).
pub fn from_header(req: &Request) -> Result<Option<Tags>, S3Error> {
    let Some(v) = req.header("x-amz-tagging") else { return Ok(None) };
    let tags = from_query(v.trim())?;
    validate_tags(&tags, OBJECT_TAGS_MAX)?;
    Ok(Some(tags))
}

/// The tag set a write gives its object (`x-amz-tagging`; none without it). A backend bucket's
/// objects carry no tags: the remote would not get them.
pub fn for_write(call: &Call<'_>) -> Result<Tags, S3Error> {
    let tags = from_header(call.req)?.unwrap_or_default();
    if !tags.is_empty() {
        refuse_backend(call)?;
    }
    Ok(tags)
}

/// The tag set a CopyObject gives its copy: the source's (`x-amz-tagging-directive: COPY`, the
/// default) or the request's (`REPLACE`).
pub fn for_copy(call: &Call<'_>, source: &Tags) -> Result<Tags, S3Error> {
    match call.header("x-amz-tagging-directive").map(str::trim) {
        None | Some("COPY") => {
            if !source.is_empty() {
                refuse_backend(call)?;
            }
            Ok(source.clone())
        }
        Some("REPLACE") => for_write(call),
        Some(v) => Err(S3Error::new(S3ErrorCode::InvalidArgument, format!("Unknown tagging directive {v:?}."))
            .with_detail("ArgumentName", "x-amz-tagging-directive")),
    }
}

fn refuse_backend(call: &Call<'_>) -> Result<(), S3Error> {
    if super::remote::remote_of(call)?.is_some() {
        return Err(S3Error::new(
            S3ErrorCode::NotImplemented,
            "Tagging objects of a backend bucket is not implemented (the remote would not get the tags).",
        ));
    }
    Ok(())
}

/// Decodes a tag set in URL query form.
pub fn from_query(text: &str) -> Result<Tags, S3Error> {
    let bad = || {
        S3Error::new(
            S3ErrorCode::InvalidArgument,
            "The header 'x-amz-tagging' shall be encoded as UTF-8 then URLEncoded URL query parameters without tag name duplicates.",
        )
    };
    let decode = |s: &str| crate::http::uri::percent_decode(&s.replace('+', " ")).ok_or_else(bad);
    let mut tags = Tags::new();
    for pair in text.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        tags.push((decode(k)?, decode(v)?));
    }
    // Kept in key order: S3 answers tag sets sorted by key.
    tags.sort();
    Ok(tags)
}

/// A tag set in URL query form (what `from_query` reads).
pub fn to_query(tags: &Tags) -> String {
    let enc = |s: &str| crate::http::uri::uri_encode(s, true);
    tags.iter().map(|(k, v)| format!("{}={}", enc(k), enc(v))).collect::<Vec<_>>().join("&")
}

/// The tag set of a `Tagging` document (`<Tagging><TagSet><Tag><Key/><Value/></Tag>…`).
pub(crate) fn from_document(root: &xml::Element, max: usize) -> Result<Tags, S3Error> {
    let malformed = || S3Error::code(S3ErrorCode::MalformedXML);
    if root.name != "Tagging" {
        return Err(malformed());
    }
    let set = root.child("TagSet").ok_or_else(malformed)?;
    let mut tags = Tags::new();
    for tag in &set.children {
        if tag.name != "Tag" || tag.children.iter().any(|c| c.name != "Key" && c.name != "Value") {
            return Err(malformed());
        }
        let key = tag.child_text("Key").ok_or_else(malformed)?;
        let value = tag.child_text("Value").ok_or_else(malformed)?;
        tags.push((key.to_owned(), value.to_owned()));
    }
    validate_tags(&tags, max)?;
    tags.sort();
    Ok(tags)
}

pub(crate) fn document(tags: &Tags) -> Vec<u8> {
    let mut w = XmlWriter::new();
    w.open_root("Tagging");
    w.open("TagSet");
    for (k, v) in tags {
        w.open("Tag");
        w.elem("Key", k);
        w.elem("Value", v);
        w.close("Tag");
    }
    w.close("TagSet");
    w.close("Tagging");
    w.finish()
}

async fn read_tags(call: &mut Call<'_>, max: usize) -> Result<Tags, S3Error> {
    let root = call.read_xml().await?.ok_or_else(|| S3Error::code(S3ErrorCode::MalformedXML))?;
    from_document(&root, max)
}

/// GetObjectTagging: the object's tag set (empty when it has none).
pub async fn get_object(call: &mut Call<'_>) -> Result<Response, S3Error> {
    refuse_backend(call)?;
    let meta = match call.version() {
        Some(v) => call.ctx.store.head_version(call.bucket(), call.key(), v)?,
        None => call.ctx.store.head_object(call.bucket(), call.key())?,
    };
    if meta.version.delete_marker {
        return Err(engine::Error::DeleteMarker { version_id: meta.version.id() }.into());
    }
    let mut resp = Response::with_body(200, "application/xml", document(&meta.tags));
    super::object::version_header(&mut resp, &meta);
    Ok(resp)
}

/// Sets the tags of the version the request names (the current one without `versionId`).
async fn set_tags(call: &Call<'_>, tags: &Tags, status: u16) -> Result<Response, S3Error> {
    let set = |m: &mut engine::ObjectMeta| {
        m.tags.clone_from(tags);
        Ok(())
    };
    let version = call.ctx.store.change_version(call.bucket(), call.key(), call.version(), &set).await?;
    let mut resp = Response::new(status);
    if version.stamp != 0 {
        resp.push_header("x-amz-version-id", version.id());
    }
    Ok(resp)
}

/// PutObjectTagging: replaces the object's tag set (its version, ETag and mtime stay).
pub async fn put_object(call: &mut Call<'_>) -> Result<Response, S3Error> {
    call.ctx.store.bucket(call.bucket())?;
    refuse_backend(call)?;
    let tags = read_tags(call, OBJECT_TAGS_MAX).await?;
    set_tags(call, &tags, 200).await
}

/// DeleteObjectTagging: the object keeps no tags.
pub async fn delete_object(call: &mut Call<'_>) -> Result<Response, S3Error> {
    refuse_backend(call)?;
    set_tags(call, &Tags::new(), 204).await
}

/// GetBucketTagging: the bucket's tag set, or NoSuchTagSet when it has none.
pub async fn get_bucket(call: &mut Call<'_>) -> Result<Response, S3Error> {
    let meta = call.ctx.store.bucket(call.bucket())?;
    if meta.tags.is_empty() {
        return Err(S3Error::code(S3ErrorCode::NoSuchTagSet));
    }
    Ok(Response::with_body(200, "application/xml", document(&meta.tags)))
}

/// PutBucketTagging: replaces the bucket's tag set.
pub async fn put_bucket(call: &mut Call<'_>) -> Result<Response, S3Error> {
    call.ctx.store.bucket(call.bucket())?;
    let tags = read_tags(call, BUCKET_TAGS_MAX).await?;
    call.ctx.store.update_bucket(call.bucket(), |m| m.tags = tags).await?;
    super::bucket::publish_bucket(call.ctx, call.bucket()).await?;
    Ok(Response::new(204))
}

/// DeleteBucketTagging.
pub async fn delete_bucket(call: &mut Call<'_>) -> Result<Response, S3Error> {
    call.ctx.store.update_bucket(call.bucket(), |m| m.tags.clear()).await?;
    super::bucket::publish_bucket(call.ctx, call.bucket()).await?;
    Ok(Response::new(204))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(pairs: &[(&str, &str)]) -> Tags {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn query_form_both_ways() {
        assert_eq!(from_query("foo=bar&bar").unwrap(), t(&[("bar", ""), ("foo", "bar")]));
        assert_eq!(from_query("a+b=c%2Bd&e=%E2%82%AC").unwrap(), t(&[("a b", "c+d"), ("e", "€")]));
        assert_eq!(from_query("").unwrap(), t(&[]));
        assert!(from_query("a=%FF").is_err());
        let tags = t(&[("a b", "c+d/e=f"), ("x", "")]);
        assert_eq!(from_query(&to_query(&tags)).unwrap(), tags);
    }

    #[test]
    fn documents() {
        let doc = |s: &str| xml::parse(s.as_bytes()).unwrap();
        let ok = doc(
            "<Tagging><TagSet><Tag><Key>a</Key><Value>1</Value></Tag><Tag><Key>b</Key><Value></Value></Tag></TagSet></Tagging>",
        );
        assert_eq!(from_document(&ok, OBJECT_TAGS_MAX).unwrap(), t(&[("a", "1"), ("b", "")]));
        let code = |s: &str| from_document(&doc(s), OBJECT_TAGS_MAX).unwrap_err().code;
        assert_eq!(code("<Tagging/>"), S3ErrorCode::MalformedXML);
        assert_eq!(code("<Other><TagSet/></Other>"), S3ErrorCode::MalformedXML);
        assert_eq!(code("<Tagging><TagSet><Tag><Key>a</Key></Tag></TagSet></Tagging>"), S3ErrorCode::MalformedXML);
        assert_eq!(
            code("<Tagging><TagSet><Tag><Key>a</Key><Value>1</Value><Extra/></Tag></TagSet></Tagging>"),
            S3ErrorCode::MalformedXML
        );
        assert_eq!(
            code(
                "<Tagging><TagSet><Tag><Key>a</Key><Value>1</Value></Tag><Tag><Key>a</Key><Value>2</Value></Tag></TagSet></Tagging>"
            ),
            S3ErrorCode::InvalidTag
        );
        let eleven: String = (0..11).map(|i| format!("<Tag><Key>{i}</Key><Value>v</Value></Tag>")).collect();
        assert_eq!(code(&format!("<Tagging><TagSet>{eleven}</TagSet></Tagging>")), S3ErrorCode::InvalidTag);
        assert_eq!(
            from_document(&doc(&format!("<Tagging><TagSet>{eleven}</TagSet></Tagging>")), BUCKET_TAGS_MAX)
                .unwrap()
                .len(),
            11
        );
        // Empty values are written as empty elements and read back.
        let back = xml::parse(&document(&t(&[("k", "")]))).unwrap();
        assert_eq!(from_document(&back, OBJECT_TAGS_MAX).unwrap(), t(&[("k", "")]));
    }
}
