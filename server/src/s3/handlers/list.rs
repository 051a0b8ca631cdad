//! Object listings: ListObjects (v1), ListObjectsV2 and ListObjectVersions (current versions).

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use engine::{ListPage, ListQuery, limits as engine_limits};

use crate::http::Response;
use crate::http::uri::uri_encode;
use crate::s3::Call;
use crate::s3::error::{S3Error, S3ErrorCode};
use crate::s3::xml::XmlWriter;
use crate::time;

/// Query parameters every listing shares.
struct Common {
    prefix: String,
    delimiter: Option<String>,
    max_keys: usize,
    url: bool,
}

fn common(call: &Call<'_>) -> Result<Common, S3Error> {
    let max_keys = match call.query("max-keys") {
        None => engine_limits::LIST_PAGE_KEYS_MAX,
        Some(v) => {
            let n: i64 = v.trim().parse().map_err(|_| {
                S3Error::new(S3ErrorCode::InvalidArgument, "Provided max-keys not an integer or within integer range")
            })?;
            if n < 0 {
                return Err(S3Error::new(
                    S3ErrorCode::InvalidArgument,
                    "Argument maxKeys must be an integer between 0 and 2147483647",
                ));
            }
            (n as usize).min(engine_limits::LIST_PAGE_KEYS_MAX)
        }
    };
    let url = match call.query("encoding-type") {
        None => false,
        Some(v) if v.eq_ignore_ascii_case("url") => true,
        Some(_) => {
            return Err(S3Error::new(S3ErrorCode::InvalidArgument, "Invalid Encoding Method specified in Request"));
        }
    };
    Ok(Common {
        prefix: call.query("prefix").unwrap_or("").to_owned(),
        delimiter: call.query("delimiter").filter(|d| !d.is_empty()).map(str::to_owned),
        max_keys,
        url,
    })
}

impl Common {
    fn enc(&self, s: &str) -> String {
        if self.url { uri_encode(s, false) } else { s.to_owned() }
    }

    fn page(&self, call: &Call<'_>, after: Option<&str>) -> Result<ListPage, S3Error> {
        let q =
            ListQuery { prefix: &self.prefix, delimiter: self.delimiter.as_deref(), after, max_keys: self.max_keys };
        Ok(call.ctx.store.list_objects(call.bucket(), &q)?)
    }

    /// Name and Prefix. ListObjects v1 never URL-encodes its Prefix (S3 does not, and botocore
    /// decodes it only in v2 and version listings).
    fn head(&self, w: &mut XmlWriter, bucket: &str, encode_prefix: bool) {
        w.elem("Name", bucket);
        w.elem("Prefix", &if encode_prefix { self.enc(&self.prefix) } else { self.prefix.clone() });
    }

    fn tail(&self, w: &mut XmlWriter, page: &ListPage) {
        for p in &page.common_prefixes {
            w.open("CommonPrefixes");
            w.elem("Prefix", &self.enc(p));
            w.close("CommonPrefixes");
        }
        if self.url {
            w.elem("EncodingType", "url");
        }
    }
}

fn owner(w: &mut XmlWriter, id: &str) {
    w.open("Owner");
    w.elem("ID", id);
    w.elem("DisplayName", id);
    w.close("Owner");
}

fn xml(w: XmlWriter) -> Response {
    Response::with_body(200, "application/xml", w.finish())
}

pub async fn list_objects_v1(call: &mut Call<'_>) -> Result<Response, S3Error> {
    let c = common(call)?;
    let bucket = call.ctx.store.bucket(call.bucket())?;
    let marker = call.query("marker").filter(|m| !m.is_empty()).map(str::to_owned);
    let page = c.page(call, marker.as_deref())?;
    let mut w = XmlWriter::new();
    w.open_root("ListBucketResult");
    c.head(&mut w, call.bucket(), false);
    w.elem("Marker", &c.enc(marker.as_deref().unwrap_or("")));
    w.elem_num("MaxKeys", c.max_keys as u64);
    if let Some(d) = &c.delimiter {
        w.elem("Delimiter", &c.enc(d));
    }
    w.elem_bool("IsTruncated", page.truncated);
    if page.truncated
        && let Some(last) = &page.last
    {
        w.elem("NextMarker", &c.enc(last));
    }
    for e in &page.entries {
        w.open("Contents");
        w.elem("Key", &c.enc(&e.key));
        w.elem("LastModified", &time::iso8601_ms(e.mtime_ms));
        w.elem("ETag", &format!("\"{}\"", e.etag));
        w.elem_num("Size", e.size);
        owner(&mut w, &bucket.owner);
        w.elem("StorageClass", "STANDARD");
        w.close("Contents");
    }
    c.tail(&mut w, &page);
    w.close("ListBucketResult");
    Ok(xml(w))
}

pub async fn list_objects_v2(call: &mut Call<'_>) -> Result<Response, S3Error> {
    let c = common(call)?;
    let bucket = call.ctx.store.bucket(call.bucket())?;
    let token = call.query("continuation-token").map(str::to_owned);
    let start_after = call.query("start-after").filter(|s| !s.is_empty()).map(str::to_owned);
    let after = match &token {
        Some(t) => Some(decode_token(t)?),
        None => start_after.clone(),
    };
    let fetch_owner = call.query("fetch-owner").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let page = c.page(call, after.as_deref())?;
    let mut w = XmlWriter::new();
    w.open_root("ListBucketResult");
    c.head(&mut w, call.bucket(), true);
    w.elem_num("KeyCount", (page.entries.len() + page.common_prefixes.len()) as u64);
    w.elem_num("MaxKeys", c.max_keys as u64);
    if let Some(d) = &c.delimiter {
        w.elem("Delimiter", &c.enc(d));
    }
    w.elem_bool("IsTruncated", page.truncated);
    if let Some(t) = &token {
        w.elem("ContinuationToken", t);
    }
    if page.truncated
        && let Some(last) = &page.last
    {
        w.elem("NextContinuationToken", &B64.encode(last.as_bytes()));
    }
    if let Some(s) = &start_after {
        w.elem("StartAfter", &c.enc(s));
    }
    for e in &page.entries {
        w.open("Contents");
        w.elem("Key", &c.enc(&e.key));
        w.elem("LastModified", &time::iso8601_ms(e.mtime_ms));
        w.elem("ETag", &format!("\"{}\"", e.etag));
        w.elem_num("Size", e.size);
        if fetch_owner {
            owner(&mut w, &bucket.owner);
        }
        w.elem("StorageClass", "STANDARD");
        w.close("Contents");
    }
    c.tail(&mut w, &page);
    w.close("ListBucketResult");
    Ok(xml(w))
}

fn decode_token(t: &str) -> Result<String, S3Error> {
    let bad = || S3Error::new(S3ErrorCode::InvalidArgument, "The continuation token provided is incorrect");
    let bytes = B64.decode(t.trim()).map_err(|_| bad())?;
    String::from_utf8(bytes).map_err(|_| bad())
}

/// keel keeps one version per key: every object is listed as its own latest, `null` version.
pub async fn list_object_versions(call: &mut Call<'_>) -> Result<Response, S3Error> {
    let c = common(call)?;
    let bucket = call.ctx.store.bucket(call.bucket())?;
    let key_marker = call.query("key-marker").filter(|m| !m.is_empty()).map(str::to_owned);
    let page = c.page(call, key_marker.as_deref())?;
    let mut w = XmlWriter::new();
    w.open_root("ListVersionsResult");
    c.head(&mut w, call.bucket(), true);
    w.elem("KeyMarker", &c.enc(key_marker.as_deref().unwrap_or("")));
    w.elem("VersionIdMarker", call.query("version-id-marker").unwrap_or(""));
    w.elem_num("MaxKeys", c.max_keys as u64);
    if let Some(d) = &c.delimiter {
        w.elem("Delimiter", &c.enc(d));
    }
    w.elem_bool("IsTruncated", page.truncated);
    if page.truncated
        && let Some(last) = &page.last
    {
        w.elem("NextKeyMarker", &c.enc(last));
        w.elem("NextVersionIdMarker", "null");
    }
    for e in &page.entries {
        w.open("Version");
        w.elem("Key", &c.enc(&e.key));
        w.elem("VersionId", "null");
        w.elem_bool("IsLatest", true);
        w.elem("LastModified", &time::iso8601_ms(e.mtime_ms));
        w.elem("ETag", &format!("\"{}\"", e.etag));
        w.elem_num("Size", e.size);
        owner(&mut w, &bucket.owner);
        w.elem("StorageClass", "STANDARD");
        w.close("Version");
    }
    c.tail(&mut w, &page);
    w.close("ListVersionsResult");
    Ok(xml(w))
}
