//! S3 routing as data: method, then path shape (service / bucket / object), then query keys most
//! specific first, then `x-amz-copy-source`.

use crate::http::uri::{Query, percent_decode};
use crate::http::{Method, Request};

/// Every operation keel knows by name. Unsupported ones still route, to answer NotImplemented
/// with their name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    ListBuckets,
    CreateBucket,
    HeadBucket,
    DeleteBucket,
    GetBucketLocation,
    GetBucketVersioning,
    PutBucketVersioning,
    GetBucketAcl,
    PutBucketAcl,
    ListObjects,
    ListObjectsV2,
    ListObjectVersions,
    DeleteObjects,
    ListMultipartUploads,
    PutObject,
    CopyObject,
    GetObject,
    HeadObject,
    DeleteObject,
    GetObjectAcl,
    PutObjectAcl,
    GetObjectAttributes,
    CreateMultipartUpload,
    UploadPart,
    UploadPartCopy,
    CompleteMultipartUpload,
    AbortMultipartUpload,
    ListParts,
    /// A known S3 operation keel does not implement.
    Unsupported(&'static str),
    /// A method S3 does not define for this resource.
    MethodNotAllowed,
    /// The path or query does not decode to UTF-8.
    InvalidUri,
}

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Op::ListBuckets => "ListBuckets",
            Op::CreateBucket => "CreateBucket",
            Op::HeadBucket => "HeadBucket",
            Op::DeleteBucket => "DeleteBucket",
            Op::GetBucketLocation => "GetBucketLocation",
            Op::GetBucketVersioning => "GetBucketVersioning",
            Op::PutBucketVersioning => "PutBucketVersioning",
            Op::GetBucketAcl => "GetBucketAcl",
            Op::PutBucketAcl => "PutBucketAcl",
            Op::ListObjects => "ListObjects",
            Op::ListObjectsV2 => "ListObjectsV2",
            Op::ListObjectVersions => "ListObjectVersions",
            Op::DeleteObjects => "DeleteObjects",
            Op::ListMultipartUploads => "ListMultipartUploads",
            Op::PutObject => "PutObject",
            Op::CopyObject => "CopyObject",
            Op::GetObject => "GetObject",
            Op::HeadObject => "HeadObject",
            Op::DeleteObject => "DeleteObject",
            Op::GetObjectAcl => "GetObjectAcl",
            Op::PutObjectAcl => "PutObjectAcl",
            Op::GetObjectAttributes => "GetObjectAttributes",
            Op::CreateMultipartUpload => "CreateMultipartUpload",
            Op::UploadPart => "UploadPart",
            Op::UploadPartCopy => "UploadPartCopy",
            Op::CompleteMultipartUpload => "CompleteMultipartUpload",
            Op::AbortMultipartUpload => "AbortMultipartUpload",
            Op::ListParts => "ListParts",
            Op::Unsupported(name) => name,
            Op::MethodNotAllowed => "MethodNotAllowed",
            Op::InvalidUri => "InvalidURI",
        }
    }

    /// Whether the body is read by the handler as XML (buffered, bounded).
    pub fn xml_body(self) -> bool {
        matches!(self, Op::CreateBucket | Op::PutBucketVersioning | Op::DeleteObjects | Op::CompleteMultipartUpload)
    }

    /// Whether the body is object data, streamed.
    pub fn streams_body(self) -> bool {
        matches!(self, Op::PutObject | Op::UploadPart)
    }
}

/// A routed request: the operation and the bucket and key the URL names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub op: Op,
    pub bucket: Option<String>,
    pub key: Option<String>,
    pub query: Query,
}

/// Bucket subresources S3 defines that keel does not serve yet: (query key, Get name, Put name,
/// Delete name).
const BUCKET_SUBRESOURCES: &[(&str, &str, &str, &str)] = &[
    ("policy", "GetBucketPolicy", "PutBucketPolicy", "DeleteBucketPolicy"),
    ("policyStatus", "GetBucketPolicyStatus", "PutBucketPolicyStatus", "DeleteBucketPolicyStatus"),
    ("cors", "GetBucketCors", "PutBucketCors", "DeleteBucketCors"),
    ("lifecycle", "GetBucketLifecycleConfiguration", "PutBucketLifecycleConfiguration", "DeleteBucketLifecycle"),
    ("tagging", "GetBucketTagging", "PutBucketTagging", "DeleteBucketTagging"),
    ("website", "GetBucketWebsite", "PutBucketWebsite", "DeleteBucketWebsite"),
    ("logging", "GetBucketLogging", "PutBucketLogging", "DeleteBucketLogging"),
    (
        "notification",
        "GetBucketNotificationConfiguration",
        "PutBucketNotificationConfiguration",
        "DeleteBucketNotification",
    ),
    ("replication", "GetBucketReplication", "PutBucketReplication", "DeleteBucketReplication"),
    ("encryption", "GetBucketEncryption", "PutBucketEncryption", "DeleteBucketEncryption"),
    ("ownershipControls", "GetBucketOwnershipControls", "PutBucketOwnershipControls", "DeleteBucketOwnershipControls"),
    ("publicAccessBlock", "GetPublicAccessBlock", "PutPublicAccessBlock", "DeletePublicAccessBlock"),
    ("object-lock", "GetObjectLockConfiguration", "PutObjectLockConfiguration", "DeleteObjectLockConfiguration"),
    ("accelerate", "GetBucketAccelerateConfiguration", "PutBucketAccelerateConfiguration", "DeleteBucketAccelerate"),
    ("requestPayment", "GetBucketRequestPayment", "PutBucketRequestPayment", "DeleteBucketRequestPayment"),
    (
        "analytics",
        "GetBucketAnalyticsConfiguration",
        "PutBucketAnalyticsConfiguration",
        "DeleteBucketAnalyticsConfiguration",
    ),
    ("metrics", "GetBucketMetricsConfiguration", "PutBucketMetricsConfiguration", "DeleteBucketMetricsConfiguration"),
    (
        "inventory",
        "GetBucketInventoryConfiguration",
        "PutBucketInventoryConfiguration",
        "DeleteBucketInventoryConfiguration",
    ),
    (
        "intelligent-tiering",
        "GetBucketIntelligentTieringConfiguration",
        "PutBucketIntelligentTieringConfiguration",
        "DeleteBucketIntelligentTieringConfiguration",
    ),
    ("acl", "GetBucketAcl", "PutBucketAcl", "DeleteBucketAcl"),
];

const OBJECT_SUBRESOURCES: &[(&str, &str, &str, &str)] = &[
    ("tagging", "GetObjectTagging", "PutObjectTagging", "DeleteObjectTagging"),
    ("acl", "GetObjectAcl", "PutObjectAcl", "DeleteObjectAcl"),
    ("attributes", "GetObjectAttributes", "PutObjectAttributes", "DeleteObjectAttributes"),
    ("retention", "GetObjectRetention", "PutObjectRetention", "DeleteObjectRetention"),
    ("legal-hold", "GetObjectLegalHold", "PutObjectLegalHold", "DeleteObjectLegalHold"),
    ("torrent", "GetObjectTorrent", "PutObjectTorrent", "DeleteObjectTorrent"),
];

fn subresource(
    table: &[(&'static str, &'static str, &'static str, &'static str)],
    q: &Query,
    m: Method,
) -> Option<&'static str> {
    let (_, get, put, del) = table.iter().find(|(k, ..)| q.has(k))?;
    Some(match m {
        Method::Get | Method::Head => get,
        Method::Put | Method::Post => put,
        Method::Delete => del,
        _ => return None,
    })
}

/// Splits the (prefix-stripped) path into bucket and key, each decoded exactly once. `host_bucket`
/// is the bucket named by a virtual-hosted-style Host header. `None` if a part is not UTF-8.
pub type Target = (Option<String>, Option<String>);

pub fn split_path(path: &str, host_bucket: Option<&str>) -> Option<Target> {
    let p = path.strip_prefix('/').unwrap_or(path);
    if let Some(b) = host_bucket {
        let key = if p.is_empty() { None } else { Some(percent_decode(p)?) };
        return Some((Some(b.to_owned()), key));
    }
    if p.is_empty() {
        return Some((None, None));
    }
    Some(match p.split_once('/') {
        None => (Some(percent_decode(p)?), None),
        Some((b, "")) => (Some(percent_decode(b)?), None),
        Some((b, k)) => (Some(percent_decode(b)?), Some(percent_decode(k)?)),
    })
}

impl Route {
    pub fn from_request(req: &Request, path: &str, host_bucket: Option<&str>) -> Route {
        let (Some(query), Some((bucket, key))) = (Query::parse(&req.query), split_path(path, host_bucket)) else {
            return Route { op: Op::InvalidUri, bucket: None, key: None, query: Query::default() };
        };
        let m = req.method;
        let q = &query;
        let op = match (&bucket, &key) {
            (None, _) => match m {
                Method::Get | Method::Head => Op::ListBuckets,
                _ => Op::MethodNotAllowed,
            },
            (Some(_), None) => match m {
                Method::Head => Op::HeadBucket,
                Method::Get => {
                    if q.has("location") {
                        Op::GetBucketLocation
                    } else if q.has("versioning") {
                        Op::GetBucketVersioning
                    } else if q.has("versions") {
                        Op::ListObjectVersions
                    } else if q.has("uploads") {
                        Op::ListMultipartUploads
                    } else if q.has("acl") {
                        Op::GetBucketAcl
                    } else if let Some(name) = subresource(BUCKET_SUBRESOURCES, q, m) {
                        Op::Unsupported(name)
                    } else if q.get("list-type") == Some("2") {
                        Op::ListObjectsV2
                    } else {
                        Op::ListObjects
                    }
                }
                Method::Put => {
                    if q.has("versioning") {
                        Op::PutBucketVersioning
                    } else if q.has("acl") {
                        Op::PutBucketAcl
                    } else if let Some(name) = subresource(BUCKET_SUBRESOURCES, q, m) {
                        Op::Unsupported(name)
                    } else {
                        Op::CreateBucket
                    }
                }
                Method::Delete => match subresource(BUCKET_SUBRESOURCES, q, m) {
                    Some(name) => Op::Unsupported(name),
                    None => Op::DeleteBucket,
                },
                Method::Post => {
                    if q.has("delete") {
                        Op::DeleteObjects
                    } else {
                        Op::Unsupported("PostObject")
                    }
                }
                _ => Op::MethodNotAllowed,
            },
            (Some(_), Some(_)) => match m {
                Method::Get | Method::Head => {
                    if q.has("uploadId") && m == Method::Get {
                        Op::ListParts
                    } else if q.has("acl") && m == Method::Get {
                        Op::GetObjectAcl
                    } else if q.has("attributes") && m == Method::Get {
                        Op::GetObjectAttributes
                    } else if let Some(name) = subresource(OBJECT_SUBRESOURCES, q, m) {
                        Op::Unsupported(name)
                    } else if m == Method::Head {
                        Op::HeadObject
                    } else {
                        Op::GetObject
                    }
                }
                Method::Put => {
                    let copy = req.header("x-amz-copy-source").is_some();
                    if q.has("partNumber") && q.has("uploadId") {
                        if copy { Op::UploadPartCopy } else { Op::UploadPart }
                    } else if q.has("acl") {
                        Op::PutObjectAcl
                    } else if let Some(name) = subresource(OBJECT_SUBRESOURCES, q, m) {
                        Op::Unsupported(name)
                    } else if copy {
                        Op::CopyObject
                    } else {
                        Op::PutObject
                    }
                }
                Method::Post => {
                    if q.has("uploads") {
                        Op::CreateMultipartUpload
                    } else if q.has("uploadId") {
                        Op::CompleteMultipartUpload
                    } else if q.has("restore") {
                        Op::Unsupported("RestoreObject")
                    } else if q.has("select") {
                        Op::Unsupported("SelectObjectContent")
                    } else {
                        Op::MethodNotAllowed
                    }
                }
                Method::Delete => {
                    if q.has("uploadId") {
                        Op::AbortMultipartUpload
                    } else if let Some(name) = subresource(OBJECT_SUBRESOURCES, q, m) {
                        Op::Unsupported(name)
                    } else {
                        Op::DeleteObject
                    }
                }
                _ => Op::MethodNotAllowed,
            },
        };
        Route { op, bucket, key, query }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(method: &str, target: &str, headers: &[(&str, &str)]) -> Route {
        let mut raw = format!("{method} {target} HTTP/1.1\r\nHost: localhost\r\n");
        for (k, v) in headers {
            raw.push_str(&format!("{k}: {v}\r\n"));
        }
        raw.push_str("\r\n");
        let (req, _) = Request::parse(raw.as_bytes()).unwrap();
        Route::from_request(&req, &req.path.clone(), None)
    }

    #[test]
    fn table() {
        let copy = [("x-amz-copy-source", "/b/src")];
        type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], Op, Option<&'a str>, Option<&'a str>);
        let cases: &[Case] = &[
            ("GET", "/", &[], Op::ListBuckets, None, None),
            ("PUT", "/b", &[], Op::CreateBucket, Some("b"), None),
            ("PUT", "/b/", &[], Op::CreateBucket, Some("b"), None),
            ("HEAD", "/b", &[], Op::HeadBucket, Some("b"), None),
            ("DELETE", "/b", &[], Op::DeleteBucket, Some("b"), None),
            ("GET", "/b?location", &[], Op::GetBucketLocation, Some("b"), None),
            ("GET", "/b/?location=", &[], Op::GetBucketLocation, Some("b"), None),
            ("GET", "/b?versioning", &[], Op::GetBucketVersioning, Some("b"), None),
            ("PUT", "/b?versioning", &[], Op::PutBucketVersioning, Some("b"), None),
            ("GET", "/b?versions", &[], Op::ListObjectVersions, Some("b"), None),
            ("GET", "/b?list-type=2&prefix=a", &[], Op::ListObjectsV2, Some("b"), None),
            ("GET", "/b?prefix=a&x-id=ListObjects", &[], Op::ListObjects, Some("b"), None),
            ("POST", "/b?delete", &[], Op::DeleteObjects, Some("b"), None),
            ("GET", "/b?uploads", &[], Op::ListMultipartUploads, Some("b"), None),
            ("GET", "/b?policy", &[], Op::Unsupported("GetBucketPolicy"), Some("b"), None),
            ("PUT", "/b/k", &[], Op::PutObject, Some("b"), Some("k")),
            ("PUT", "/b/k?x-id=PutObject", &[], Op::PutObject, Some("b"), Some("k")),
            ("PUT", "/b/k", &copy, Op::CopyObject, Some("b"), Some("k")),
            ("GET", "/b/a%2Fb/c%20d+e", &[], Op::GetObject, Some("b"), Some("a/b/c d+e")),
            ("GET", "/b/a//b/../c/", &[], Op::GetObject, Some("b"), Some("a//b/../c/")),
            ("HEAD", "/b/k", &[], Op::HeadObject, Some("b"), Some("k")),
            ("DELETE", "/b/k", &[], Op::DeleteObject, Some("b"), Some("k")),
            ("POST", "/b/k?uploads", &[], Op::CreateMultipartUpload, Some("b"), Some("k")),
            ("PUT", "/b/k?partNumber=1&uploadId=u", &[], Op::UploadPart, Some("b"), Some("k")),
            ("PUT", "/b/k?partNumber=1&uploadId=u", &copy, Op::UploadPartCopy, Some("b"), Some("k")),
            ("POST", "/b/k?uploadId=u", &[], Op::CompleteMultipartUpload, Some("b"), Some("k")),
            ("DELETE", "/b/k?uploadId=u", &[], Op::AbortMultipartUpload, Some("b"), Some("k")),
            ("GET", "/b/k?uploadId=u", &[], Op::ListParts, Some("b"), Some("k")),
            ("GET", "/b/k?tagging", &[], Op::Unsupported("GetObjectTagging"), Some("b"), Some("k")),
            ("GET", "/b/k?acl", &[], Op::GetObjectAcl, Some("b"), Some("k")),
            ("GET", "/b/k?attributes", &[], Op::GetObjectAttributes, Some("b"), Some("k")),
            ("PATCH", "/b/k", &[], Op::MethodNotAllowed, Some("b"), Some("k")),
            ("POST", "/", &[], Op::MethodNotAllowed, None, None),
        ];
        for (m, t, h, op, b, k) in cases {
            let r = route(m, t, h);
            assert_eq!((r.op, r.bucket.as_deref(), r.key.as_deref()), (*op, *b, *k), "{m} {t}");
        }
    }

    #[test]
    fn virtual_host_style() {
        assert_eq!(split_path("/", Some("b")), Some((Some("b".into()), None)));
        assert_eq!(split_path("/k/x", Some("b")), Some((Some("b".into()), Some("k/x".into()))));
        assert_eq!(split_path("/b/%FF", None), None);
    }
}
