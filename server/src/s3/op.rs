//! S3 routing as data: method, then path shape (service / bucket / object), then query keys most
//! specific first, then `x-amz-copy-source`.

use crate::http::uri::Query;
use crate::http::{Method, Request};
use crate::s3::error::S3Error;
use crate::s3::params;

/// Every operation keel knows by name, with the parameters its query carries, parsed once.
/// Unsupported ones still route, to answer NotImplemented with their name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    ListBuckets(params::ListBuckets),
    CreateBucket,
    HeadBucket,
    DeleteBucket,
    GetBucketLocation,
    GetBucketVersioning,
    PutBucketVersioning,
    GetBucketAcl,
    PutBucketAcl,
    GetBucketTagging,
    PutBucketTagging,
    DeleteBucketTagging,
    GetObjectLockConfiguration,
    PutObjectLockConfiguration,
    GetBucketLifecycleConfiguration,
    PutBucketLifecycleConfiguration,
    DeleteBucketLifecycle,
    GetBucketPolicy,
    PutBucketPolicy,
    DeleteBucketPolicy,
    GetBucketPolicyStatus,
    GetPublicAccessBlock,
    PutPublicAccessBlock,
    DeletePublicAccessBlock,
    GetBucketCors,
    PutBucketCors,
    DeleteBucketCors,
    GetBucketOwnershipControls,
    PutBucketOwnershipControls,
    DeleteBucketOwnershipControls,
    /// A CORS preflight (`OPTIONS`), answered without authentication.
    Preflight,
    ListObjects(params::ListV1),
    ListObjectsV2(params::ListV2),
    ListObjectVersions(params::ListVersions),
    DeleteObjects,
    ListMultipartUploads(params::ListUploads),
    PutObject,
    /// A browser form upload (POST to the bucket, `multipart/form-data`).
    PostObject,
    CopyObject,
    GetObject(params::Read),
    HeadObject(params::Read),
    DeleteObject,
    GetObjectAcl,
    PutObjectAcl,
    GetObjectTagging,
    PutObjectTagging,
    DeleteObjectTagging,
    GetObjectRetention,
    PutObjectRetention,
    GetObjectLegalHold,
    PutObjectLegalHold,
    GetObjectAttributes,
    CreateMultipartUpload,
    UploadPart(params::PartTarget),
    UploadPartCopy(params::PartTarget),
    CompleteMultipartUpload {
        upload_id: String,
    },
    AbortMultipartUpload {
        upload_id: String,
    },
    ListParts(params::ListParts),
    /// A known S3 operation keel does not implement.
    Unsupported(&'static str),
    /// A method S3 does not define for this resource.
    MethodNotAllowed,
    /// The path or query does not decode to UTF-8.
    InvalidUri,
}

/// What a caller must be granted to run an operation (decided in `access.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessClass {
    /// Any signed caller: ListBuckets (their own), CreateBucket, anything outside a bucket.
    Signed,
    /// The bucket's READ grant: listing it.
    List,
    /// Reading one object: its ACL or the bucket's read policy, decided once the record is read.
    ReadObject,
    /// Writing or deleting objects: the owner, or anyone the bucket's ACL lets write.
    WriteObject,
    /// Everything else: the bucket's owner only.
    Owner,
}

impl Op {
    pub fn name(&self) -> &'static str {
        match self {
            Op::ListBuckets(_) => "ListBuckets",
            Op::CreateBucket => "CreateBucket",
            Op::HeadBucket => "HeadBucket",
            Op::DeleteBucket => "DeleteBucket",
            Op::GetBucketLocation => "GetBucketLocation",
            Op::GetBucketVersioning => "GetBucketVersioning",
            Op::PutBucketVersioning => "PutBucketVersioning",
            Op::GetBucketAcl => "GetBucketAcl",
            Op::PutBucketAcl => "PutBucketAcl",
            Op::GetBucketTagging => "GetBucketTagging",
            Op::PutBucketTagging => "PutBucketTagging",
            Op::DeleteBucketTagging => "DeleteBucketTagging",
            Op::GetObjectLockConfiguration => "GetObjectLockConfiguration",
            Op::PutObjectLockConfiguration => "PutObjectLockConfiguration",
            Op::GetBucketLifecycleConfiguration => "GetBucketLifecycleConfiguration",
            Op::PutBucketLifecycleConfiguration => "PutBucketLifecycleConfiguration",
            Op::DeleteBucketLifecycle => "DeleteBucketLifecycle",
            Op::GetBucketPolicy => "GetBucketPolicy",
            Op::PutBucketPolicy => "PutBucketPolicy",
            Op::DeleteBucketPolicy => "DeleteBucketPolicy",
            Op::GetBucketPolicyStatus => "GetBucketPolicyStatus",
            Op::GetPublicAccessBlock => "GetPublicAccessBlock",
            Op::PutPublicAccessBlock => "PutPublicAccessBlock",
            Op::DeletePublicAccessBlock => "DeletePublicAccessBlock",
            Op::GetBucketCors => "GetBucketCors",
            Op::PutBucketCors => "PutBucketCors",
            Op::DeleteBucketCors => "DeleteBucketCors",
            Op::GetBucketOwnershipControls => "GetBucketOwnershipControls",
            Op::PutBucketOwnershipControls => "PutBucketOwnershipControls",
            Op::DeleteBucketOwnershipControls => "DeleteBucketOwnershipControls",
            Op::Preflight => "PreflightRequest",
            Op::ListObjects(_) => "ListObjects",
            Op::ListObjectsV2(_) => "ListObjectsV2",
            Op::ListObjectVersions(_) => "ListObjectVersions",
            Op::DeleteObjects => "DeleteObjects",
            Op::ListMultipartUploads(_) => "ListMultipartUploads",
            Op::PutObject => "PutObject",
            Op::PostObject => "PostObject",
            Op::CopyObject => "CopyObject",
            Op::GetObject(_) => "GetObject",
            Op::HeadObject(_) => "HeadObject",
            Op::DeleteObject => "DeleteObject",
            Op::GetObjectAcl => "GetObjectAcl",
            Op::PutObjectAcl => "PutObjectAcl",
            Op::GetObjectTagging => "GetObjectTagging",
            Op::PutObjectTagging => "PutObjectTagging",
            Op::DeleteObjectTagging => "DeleteObjectTagging",
            Op::GetObjectRetention => "GetObjectRetention",
            Op::PutObjectRetention => "PutObjectRetention",
            Op::GetObjectLegalHold => "GetObjectLegalHold",
            Op::PutObjectLegalHold => "PutObjectLegalHold",
            Op::GetObjectAttributes => "GetObjectAttributes",
            Op::CreateMultipartUpload => "CreateMultipartUpload",
            Op::UploadPart(_) => "UploadPart",
            Op::UploadPartCopy(_) => "UploadPartCopy",
            Op::CompleteMultipartUpload { .. } => "CompleteMultipartUpload",
            Op::AbortMultipartUpload { .. } => "AbortMultipartUpload",
            Op::ListParts(_) => "ListParts",
            Op::Unsupported(name) => name,
            Op::MethodNotAllowed => "MethodNotAllowed",
            Op::InvalidUri => "InvalidURI",
        }
    }

    /// The access class the operation needs in the bucket it names.
    pub fn access(&self) -> AccessClass {
        match self {
            Op::ListBuckets(_) | Op::CreateBucket => AccessClass::Signed,
            Op::HeadBucket
            | Op::ListObjects(_)
            | Op::ListObjectsV2(_)
            | Op::ListObjectVersions(_)
            | Op::ListMultipartUploads(_) => AccessClass::List,
            Op::GetObject(_) | Op::HeadObject(_) | Op::GetObjectAttributes => AccessClass::ReadObject,
            Op::PutObject
            | Op::PostObject
            | Op::CopyObject
            | Op::DeleteObject
            | Op::DeleteObjects
            | Op::CreateMultipartUpload
            | Op::UploadPart(_)
            | Op::UploadPartCopy(_)
            | Op::CompleteMultipartUpload { .. }
            | Op::AbortMultipartUpload { .. } => AccessClass::WriteObject,
            _ => AccessClass::Owner,
        }
    }
}

/// A routed request: the operation and the bucket and key the URL names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub op: Op,
    pub bucket: Option<String>,
    pub key: Option<String>,
    /// The operation's parameters did not parse (`op` then holds defaults, never used): the
    /// answer, once the caller has been authenticated and authorized — who may not ask at all
    /// learns nothing from a malformed parameter.
    pub invalid: Option<S3Error>,
}

/// Bucket subresources S3 defines that keel does not serve yet: (query key, Get name, Put name,
/// Delete name).
const BUCKET_SUBRESOURCES: &[(&str, &str, &str, &str)] = &[
    ("policyStatus", "GetBucketPolicyStatus", "PutBucketPolicyStatus", "DeleteBucketPolicyStatus"),
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
        let key = if p.is_empty() { None } else { Some(decode_name(p)?) };
        return Some((Some(pooled(b)), key));
    }
    if p.is_empty() {
        return Some((None, None));
    }
    Some(match p.split_once('/') {
        None => (Some(decode_name(p)?), None),
        Some((b, "")) => (Some(decode_name(b)?), None),
        Some((b, k)) => (Some(decode_name(b)?), Some(decode_name(k)?)),
    })
}

/// Names (bucket, key) kept per thread for reuse (`Route::recycle`).
const NAMES_KEPT: usize = 256;
/// A name string longer than this is not kept.
const NAME_BYTES_KEPT: usize = 2048;

thread_local! {
    static NAMES: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A string from the thread's pool holding `s`.
fn pooled(s: &str) -> String {
    let mut out = NAMES.with_borrow_mut(Vec::pop).unwrap_or_default();
    out.clear();
    out.push_str(s);
    out
}

/// The name percent-decoded once (as `uri::percent_decode`: `None` when not UTF-8), in a string
/// from the thread's pool.
fn decode_name(s: &str) -> Option<String> {
    if !s.contains('%') {
        return Some(pooled(s));
    }
    let mut bytes = NAMES.with_borrow_mut(Vec::pop).unwrap_or_default().into_bytes();
    bytes.clear();
    bytes.extend(percent_encoding::percent_decode_str(s));
    String::from_utf8(bytes).ok()
}

impl Route {
    /// Gives the route's names back to the thread's pool (the request is over).
    pub fn recycle(self) {
        NAMES.with_borrow_mut(|pool| {
            for name in [self.bucket, self.key].into_iter().flatten() {
                if pool.len() < NAMES_KEPT && name.capacity() <= NAME_BYTES_KEPT {
                    pool.push(name);
                }
            }
        });
    }

    pub fn from_request(req: &Request, path: &str, host_bucket: Option<&str>) -> Route {
        let (Some(query), Some((bucket, key))) = (Query::parse(&req.query), split_path(path, host_bucket)) else {
            return Route { op: Op::InvalidUri, bucket: None, key: None, invalid: None };
        };
        let mut p = Parsed { q: &query, invalid: None };
        let m = req.method;
        let op = match (&bucket, &key) {
            (None, _) => match m {
                Method::Get | Method::Head => p.typed(params::ListBuckets::parse, Op::ListBuckets),
                _ => Op::MethodNotAllowed,
            },
            (Some(_), None) => bucket_op(m, &mut p),
            (Some(_), Some(_)) => object_op(m, req.header("x-amz-copy-source").is_some(), &mut p),
        };
        Route { op, bucket, key, invalid: p.invalid }
    }
}

/// The query being routed, and the first parameter error found in it.
struct Parsed<'q> {
    q: &'q Query,
    invalid: Option<S3Error>,
}

impl Parsed<'_> {
    fn has(&self, name: &str) -> bool {
        self.q.has(name)
    }

    /// The operation with its parsed parameters; or, when they do not parse, with defaults and
    /// the error kept for dispatch to answer.
    fn typed<P: Default>(&mut self, parse: fn(&Query) -> Result<P, S3Error>, op: fn(P) -> Op) -> Op {
        match parse(self.q) {
            Ok(params) => op(params),
            Err(e) => {
                self.invalid = Some(e);
                op(P::default())
            }
        }
    }

    /// An operation whose only parameter is `versionId` (read again by the handler).
    fn versioned(&mut self, op: Op) -> Op {
        if let Err(e) = params::version(self.q) {
            self.invalid = Some(e);
        }
        op
    }

    fn upload_id(&self) -> String {
        self.q.get("uploadId").unwrap_or_default().to_owned()
    }
}

fn bucket_op(m: Method, p: &mut Parsed<'_>) -> Op {
    match m {
        Method::Head => Op::HeadBucket,
        Method::Get => {
            if p.has("location") {
                Op::GetBucketLocation
            } else if p.has("versioning") {
                Op::GetBucketVersioning
            } else if p.has("versions") {
                p.typed(params::ListVersions::parse, Op::ListObjectVersions)
            } else if p.has("uploads") {
                p.typed(params::ListUploads::parse, Op::ListMultipartUploads)
            } else if p.has("acl") {
                Op::GetBucketAcl
            } else if p.has("tagging") {
                Op::GetBucketTagging
            } else if p.has("object-lock") {
                Op::GetObjectLockConfiguration
            } else if p.has("lifecycle") {
                Op::GetBucketLifecycleConfiguration
            } else if p.has("policyStatus") {
                Op::GetBucketPolicyStatus
            } else if p.has("policy") {
                Op::GetBucketPolicy
            } else if p.has("publicAccessBlock") {
                Op::GetPublicAccessBlock
            } else if p.has("cors") {
                Op::GetBucketCors
            } else if p.has("ownershipControls") {
                Op::GetBucketOwnershipControls
            } else if let Some(name) = subresource(BUCKET_SUBRESOURCES, p.q, m) {
                Op::Unsupported(name)
            } else if p.q.get("list-type") == Some("2") {
                p.typed(params::ListV2::parse, Op::ListObjectsV2)
            } else {
                p.typed(params::ListV1::parse, Op::ListObjects)
            }
        }
        Method::Put => {
            if p.has("versioning") {
                Op::PutBucketVersioning
            } else if p.has("acl") {
                Op::PutBucketAcl
            } else if p.has("tagging") {
                Op::PutBucketTagging
            } else if p.has("object-lock") {
                Op::PutObjectLockConfiguration
            } else if p.has("lifecycle") {
                Op::PutBucketLifecycleConfiguration
            } else if p.has("policy") {
                Op::PutBucketPolicy
            } else if p.has("publicAccessBlock") {
                Op::PutPublicAccessBlock
            } else if p.has("cors") {
                Op::PutBucketCors
            } else if p.has("ownershipControls") {
                Op::PutBucketOwnershipControls
            } else if let Some(name) = subresource(BUCKET_SUBRESOURCES, p.q, m) {
                Op::Unsupported(name)
            } else {
                Op::CreateBucket
            }
        }
        Method::Delete if p.has("tagging") => Op::DeleteBucketTagging,
        Method::Delete if p.has("lifecycle") => Op::DeleteBucketLifecycle,
        Method::Delete if p.has("policy") => Op::DeleteBucketPolicy,
        Method::Delete if p.has("publicAccessBlock") => Op::DeletePublicAccessBlock,
        Method::Delete if p.has("cors") => Op::DeleteBucketCors,
        Method::Delete if p.has("ownershipControls") => Op::DeleteBucketOwnershipControls,
        Method::Options => Op::Preflight,
        Method::Delete => match subresource(BUCKET_SUBRESOURCES, p.q, m) {
            Some(name) => Op::Unsupported(name),
            None => Op::DeleteBucket,
        },
        Method::Post if p.has("delete") => Op::DeleteObjects,
        Method::Post => Op::PostObject,
        _ => Op::MethodNotAllowed,
    }
}

fn object_op(m: Method, copy: bool, p: &mut Parsed<'_>) -> Op {
    match m {
        Method::Get if p.has("uploadId") => p.typed(params::ListParts::parse, Op::ListParts),
        Method::Get if p.has("acl") => p.versioned(Op::GetObjectAcl),
        Method::Get if p.has("attributes") => p.versioned(Op::GetObjectAttributes),
        Method::Get if p.has("tagging") => p.versioned(Op::GetObjectTagging),
        Method::Get if p.has("retention") => p.versioned(Op::GetObjectRetention),
        Method::Get if p.has("legal-hold") => p.versioned(Op::GetObjectLegalHold),
        Method::Get | Method::Head => match subresource(OBJECT_SUBRESOURCES, p.q, m) {
            Some(name) => Op::Unsupported(name),
            None if m == Method::Head => p.typed(params::Read::parse, Op::HeadObject),
            None => p.typed(params::Read::parse, Op::GetObject),
        },
        Method::Put if p.has("partNumber") && p.has("uploadId") => {
            p.typed(params::PartTarget::parse, if copy { Op::UploadPartCopy } else { Op::UploadPart })
        }
        Method::Put if p.has("acl") => p.versioned(Op::PutObjectAcl),
        Method::Put if p.has("tagging") => p.versioned(Op::PutObjectTagging),
        Method::Put if p.has("retention") => p.versioned(Op::PutObjectRetention),
        Method::Put if p.has("legal-hold") => p.versioned(Op::PutObjectLegalHold),
        Method::Put => match subresource(OBJECT_SUBRESOURCES, p.q, m) {
            Some(name) => Op::Unsupported(name),
            None if copy => Op::CopyObject,
            None => Op::PutObject,
        },
        Method::Options => Op::Preflight,
        Method::Post if p.has("uploads") => Op::CreateMultipartUpload,
        Method::Post if p.has("uploadId") => Op::CompleteMultipartUpload { upload_id: p.upload_id() },
        Method::Post if p.has("restore") => Op::Unsupported("RestoreObject"),
        Method::Post if p.has("select") => Op::Unsupported("SelectObjectContent"),
        Method::Delete if p.has("uploadId") => Op::AbortMultipartUpload { upload_id: p.upload_id() },
        Method::Delete if p.has("tagging") => p.versioned(Op::DeleteObjectTagging),
        Method::Delete => match subresource(OBJECT_SUBRESOURCES, p.q, m) {
            Some(name) => Op::Unsupported(name),
            None => p.versioned(Op::DeleteObject),
        },
        _ => Op::MethodNotAllowed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::s3::error::S3ErrorCode;

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
        type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], &'a str, Option<&'a str>, Option<&'a str>);
        let cases: &[Case] = &[
            ("GET", "/", &[], "ListBuckets", None, None),
            ("PUT", "/b", &[], "CreateBucket", Some("b"), None),
            ("PUT", "/b/", &[], "CreateBucket", Some("b"), None),
            ("HEAD", "/b", &[], "HeadBucket", Some("b"), None),
            ("DELETE", "/b", &[], "DeleteBucket", Some("b"), None),
            ("GET", "/b?location", &[], "GetBucketLocation", Some("b"), None),
            ("GET", "/b/?location=", &[], "GetBucketLocation", Some("b"), None),
            ("GET", "/b?versioning", &[], "GetBucketVersioning", Some("b"), None),
            ("PUT", "/b?versioning", &[], "PutBucketVersioning", Some("b"), None),
            ("GET", "/b?versions", &[], "ListObjectVersions", Some("b"), None),
            ("GET", "/b?list-type=2&prefix=a", &[], "ListObjectsV2", Some("b"), None),
            ("GET", "/b?prefix=a&x-id=ListObjects", &[], "ListObjects", Some("b"), None),
            ("POST", "/b?delete", &[], "DeleteObjects", Some("b"), None),
            ("GET", "/b?uploads", &[], "ListMultipartUploads", Some("b"), None),
            ("GET", "/b?policy", &[], "GetBucketPolicy", Some("b"), None),
            ("PUT", "/b/k", &[], "PutObject", Some("b"), Some("k")),
            ("PUT", "/b/k?x-id=PutObject", &[], "PutObject", Some("b"), Some("k")),
            ("PUT", "/b/k", &copy, "CopyObject", Some("b"), Some("k")),
            ("GET", "/b/a%2Fb/c%20d+e", &[], "GetObject", Some("b"), Some("a/b/c d+e")),
            ("GET", "/b/a//b/../c/", &[], "GetObject", Some("b"), Some("a//b/../c/")),
            ("HEAD", "/b/k", &[], "HeadObject", Some("b"), Some("k")),
            ("DELETE", "/b/k", &[], "DeleteObject", Some("b"), Some("k")),
            ("POST", "/b/k?uploads", &[], "CreateMultipartUpload", Some("b"), Some("k")),
            ("PUT", "/b/k?partNumber=1&uploadId=u", &[], "UploadPart", Some("b"), Some("k")),
            ("PUT", "/b/k?partNumber=1&uploadId=u", &copy, "UploadPartCopy", Some("b"), Some("k")),
            ("POST", "/b/k?uploadId=u", &[], "CompleteMultipartUpload", Some("b"), Some("k")),
            ("DELETE", "/b/k?uploadId=u", &[], "AbortMultipartUpload", Some("b"), Some("k")),
            ("GET", "/b/k?uploadId=u", &[], "ListParts", Some("b"), Some("k")),
            ("GET", "/b/k?tagging", &[], "GetObjectTagging", Some("b"), Some("k")),
            ("GET", "/b/k?acl", &[], "GetObjectAcl", Some("b"), Some("k")),
            ("GET", "/b/k?attributes", &[], "GetObjectAttributes", Some("b"), Some("k")),
            ("PATCH", "/b/k", &[], "MethodNotAllowed", Some("b"), Some("k")),
            ("POST", "/", &[], "MethodNotAllowed", None, None),
        ];
        for (m, t, h, op, b, k) in cases {
            let r = route(m, t, h);
            assert_eq!((r.op.name(), r.bucket.as_deref(), r.key.as_deref()), (*op, *b, *k), "{m} {t}");
            assert!(r.invalid.is_none(), "{m} {t}");
        }
    }

    #[test]
    fn parameters_are_typed() {
        let r = route("PUT", "/b/k?partNumber=3&uploadId=u1", &[]);
        assert_eq!(r.op, Op::UploadPart(params::PartTarget { upload_id: "u1".into(), part_number: 3 }));
        let r = route("DELETE", "/b/k?uploadId=u2", &[]);
        assert_eq!(r.op, Op::AbortMultipartUpload { upload_id: "u2".into() });
        let r = route("GET", "/b/k?partNumber=2", &[]);
        assert!(matches!(r.op, Op::GetObject(params::Read { part: Some(2), .. })));
        // A malformed parameter keeps the operation (its name, its access class) and the error.
        let r = route("PUT", "/b/k?partNumber=0&uploadId=u", &[]);
        assert_eq!((r.op.name(), r.invalid.map(|e| e.code)), ("UploadPart", Some(S3ErrorCode::InvalidArgument)));
        let r = route("DELETE", "/b/k?versionId=7", &[]);
        assert_eq!((r.op.name(), r.invalid.is_some()), ("DeleteObject", true));
        assert_eq!(route("GET", "/b?max-keys=x", &[]).op.access(), AccessClass::List);
        assert_eq!(route("HEAD", "/b/k", &[]).op.access(), AccessClass::ReadObject);
        assert_eq!(route("PUT", "/b/k", &[]).op.access(), AccessClass::WriteObject);
        assert_eq!(route("POST", "/b", &[]).op.access(), AccessClass::WriteObject);
        assert_eq!(route("PUT", "/b/k?acl", &[]).op.access(), AccessClass::Owner);
    }

    #[test]
    fn virtual_host_style() {
        assert_eq!(split_path("/", Some("b")), Some((Some("b".into()), None)));
        assert_eq!(split_path("/k/x", Some("b")), Some((Some("b".into()), Some("k/x".into()))));
        assert_eq!(split_path("/b/%FF", None), None);
    }
}
