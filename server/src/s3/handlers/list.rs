//! Object listings: ListObjects (v1), ListObjectsV2 and ListObjectVersions (current versions).

use engine::{ListEntry, ListPage, ListQuery};

use crate::backend::RemoteListQuery;
use crate::http::Response;
use crate::s3::Call;
use crate::s3::error::S3Error;
use crate::s3::params::{self, Encoding, Listing};
use crate::s3::xml::XmlWriter;
use crate::time;

impl Listing {
    async fn page(&self, call: &Call<'_>, after: Option<&str>) -> Result<ListPage, S3Error> {
        if !self.cached
            && let Some((agent, remote)) = super::remote::remote_of(call)?
        {
            let q = RemoteListQuery {
                prefix: self.prefix.clone(),
                delimiter: self.delimiter.clone(),
                start_after: after.map(str::to_owned),
                max_keys: self.max_keys,
            };
            let p = agent.list(&remote, q).await?;
            let last = match (p.objects.last(), p.common_prefixes.last()) {
                (Some(o), Some(c)) => Some(o.key.clone().max(c.clone())),
                (Some(o), None) => Some(o.key.clone()),
                (None, c) => c.cloned(),
            };
            let entries = p
                .objects
                .into_iter()
                .map(|o| ListEntry { key: o.key, size: o.size, mtime_ms: o.mtime_ms, etag: o.etag.unwrap_or_default() })
                .collect();
            return Ok(ListPage { entries, common_prefixes: p.common_prefixes, truncated: p.truncated, last });
        }
        let q =
            ListQuery { prefix: &self.prefix, delimiter: self.delimiter.as_deref(), after, max_keys: self.max_keys };
        match &call.ctx.config.cluster {
            Some(cluster) => crate::cluster::peer::list(&call.ctx.store, cluster, call.bucket(), &q).await,
            None => Ok(call.ctx.store.list_objects(call.bucket(), &q)?),
        }
    }

    fn enc(&self, s: &str) -> String {
        self.encoding.name(s)
    }

    /// Name and Prefix. ListObjects v1 never URL-encodes its Prefix (S3 does not, and botocore
    /// decodes it only in v2 and version listings).
    fn head(&self, w: &mut XmlWriter, bucket: &str, encode_prefix: bool) {
        w.elem("Name", bucket);
        w.elem("Prefix", &if encode_prefix { self.enc(&self.prefix) } else { self.prefix.clone() });
    }

    /// MaxKeys, Delimiter and IsTruncated, which every listing has in this order.
    fn limits(&self, w: &mut XmlWriter, page: &ListPage) {
        w.elem_num("MaxKeys", self.max_keys as u64);
        if let Some(d) = &self.delimiter {
            w.elem("Delimiter", &self.enc(d));
        }
        w.elem_bool("IsTruncated", page.truncated);
    }

    /// One `Contents` (or, in a version listing, `Version`) element.
    fn entry(&self, w: &mut XmlWriter, tag: &str, e: &ListEntry, owner: Option<&str>) {
        w.open(tag);
        w.elem("Key", &self.enc(&e.key));
        if tag == "Version" {
            w.elem("VersionId", "null");
            w.elem_bool("IsLatest", true);
        }
        w.elem("LastModified", &time::iso8601_ms(e.mtime_ms));
        w.etag(&e.etag);
        w.elem_num("Size", e.size);
        if let Some(id) = owner {
            w.owner("Owner", id);
        }
        w.elem("StorageClass", "STANDARD");
        w.close(tag);
    }

    fn tail(&self, w: &mut XmlWriter, page: &ListPage) {
        common_prefixes(w, self.encoding, &page.common_prefixes);
    }
}

/// The `CommonPrefixes` of a listing, and `EncodingType` when names are URL-encoded.
pub(crate) fn common_prefixes(w: &mut XmlWriter, encoding: Encoding, prefixes: &[String]) {
    for p in prefixes {
        w.open("CommonPrefixes");
        w.elem("Prefix", &encoding.name(p));
        w.close("CommonPrefixes");
    }
    if encoding.url {
        w.elem("EncodingType", "url");
    }
}

fn xml(w: XmlWriter) -> Response {
    Response::with_body(200, "application/xml", w.finish())
}

pub async fn list_objects_v1(call: &mut Call<'_>, p: &params::ListV1) -> Result<Response, S3Error> {
    let c = &p.listing;
    let bucket = call.ctx.store.bucket(call.bucket())?;
    let page = c.page(call, p.marker.as_deref()).await?;
    let mut w = XmlWriter::new();
    w.open_root("ListBucketResult");
    c.head(&mut w, call.bucket(), false);
    w.elem("Marker", &c.enc(p.marker.as_deref().unwrap_or("")));
    c.limits(&mut w, &page);
    if page.truncated
        && let Some(last) = &page.last
    {
        w.elem("NextMarker", &c.enc(last));
    }
    for e in &page.entries {
        c.entry(&mut w, "Contents", e, Some(&bucket.owner));
    }
    c.tail(&mut w, &page);
    w.close("ListBucketResult");
    Ok(xml(w))
}

pub async fn list_objects_v2(call: &mut Call<'_>, p: &params::ListV2) -> Result<Response, S3Error> {
    let c = &p.listing;
    let bucket = call.ctx.store.bucket(call.bucket())?;
    let page = c.page(call, p.after.as_deref()).await?;
    let mut w = XmlWriter::new();
    w.open_root("ListBucketResult");
    c.head(&mut w, call.bucket(), true);
    w.elem_num("KeyCount", (page.entries.len() + page.common_prefixes.len()) as u64);
    c.limits(&mut w, &page);
    if let Some(t) = &p.token {
        w.elem("ContinuationToken", t);
    }
    if page.truncated
        && let Some(last) = &page.last
    {
        w.elem("NextContinuationToken", &params::encode_token(last));
    }
    if let Some(s) = &p.start_after {
        w.elem("StartAfter", &c.enc(s));
    }
    let owner = p.fetch_owner.then_some(bucket.owner.as_str());
    for e in &page.entries {
        c.entry(&mut w, "Contents", e, owner);
    }
    c.tail(&mut w, &page);
    w.close("ListBucketResult");
    Ok(xml(w))
}

/// keel keeps one version per key: every object is listed as its own latest, `null` version.
pub async fn list_object_versions(call: &mut Call<'_>, p: &params::ListVersions) -> Result<Response, S3Error> {
    let c = &p.listing;
    let bucket = call.ctx.store.bucket(call.bucket())?;
    // A cluster and a backend bucket keep current versions only (versioning is refused there).
    if call.ctx.config.cluster.is_none() && bucket.backend.is_none() {
        return list_versions(call, p, &bucket.owner);
    }
    let page = c.page(call, p.key_marker.as_deref()).await?;
    let mut w = XmlWriter::new();
    w.open_root("ListVersionsResult");
    c.head(&mut w, call.bucket(), true);
    w.elem("KeyMarker", &c.enc(p.key_marker.as_deref().unwrap_or("")));
    w.elem("VersionIdMarker", &p.version_id_marker);
    c.limits(&mut w, &page);
    if page.truncated
        && let Some(last) = &page.last
    {
        w.elem("NextKeyMarker", &c.enc(last));
        w.elem("NextVersionIdMarker", "null");
    }
    for e in &page.entries {
        c.entry(&mut w, "Version", e, Some(&bucket.owner));
    }
    c.tail(&mut w, &page);
    w.close("ListVersionsResult");
    Ok(xml(w))
}

/// ListObjectVersions of a bucket that may keep versions (D46): every version and delete
/// marker, newest first within a key, paged by key and version markers.
fn list_versions(call: &Call<'_>, p: &params::ListVersions, owner: &str) -> Result<Response, S3Error> {
    let c = &p.listing;
    let version_marker = match p.version_id_marker.as_str() {
        "" => None,
        v => Some(engine::VersionRef::parse(v).ok_or_else(|| params::invalid_version(v))?),
    };
    if version_marker.is_some() && p.key_marker.is_none() {
        return Err(S3Error::new(
            crate::s3::error::S3ErrorCode::InvalidArgument,
            "A version-id marker cannot be specified without a key marker.",
        ));
    }
    let q = engine::VersionQuery {
        prefix: &c.prefix,
        delimiter: c.delimiter.as_deref(),
        key_marker: p.key_marker.as_deref(),
        version_marker,
        max_keys: c.max_keys,
    };
    let page = call.ctx.store.list_versions(call.bucket(), &q)?;
    let mut w = XmlWriter::new();
    w.open_root("ListVersionsResult");
    c.head(&mut w, call.bucket(), true);
    w.elem("KeyMarker", &c.enc(p.key_marker.as_deref().unwrap_or("")));
    w.elem("VersionIdMarker", &p.version_id_marker);
    w.elem_num("MaxKeys", c.max_keys as u64);
    if let Some(d) = &c.delimiter {
        w.elem("Delimiter", &c.enc(d));
    }
    w.elem_bool("IsTruncated", page.truncated);
    if let Some(k) = &page.next_key_marker {
        w.elem("NextKeyMarker", &c.enc(k));
    }
    if let Some(v) = &page.next_version_marker {
        w.elem("NextVersionIdMarker", v);
    }
    for e in &page.entries {
        let tag = if e.version.delete_marker { "DeleteMarker" } else { "Version" };
        w.open(tag);
        w.elem("Key", &c.enc(&e.key));
        w.elem("VersionId", &e.version.id());
        w.elem_bool("IsLatest", e.is_latest);
        w.elem("LastModified", &time::iso8601_ms(e.mtime_ms));
        if !e.version.delete_marker {
            w.etag(&e.etag);
            w.elem_num("Size", e.size);
        }
        w.owner("Owner", owner);
        if !e.version.delete_marker {
            w.elem("StorageClass", "STANDARD");
        }
        w.close(tag);
    }
    common_prefixes(&mut w, c.encoding, &page.common_prefixes);
    w.close("ListVersionsResult");
    Ok(xml(w))
}
