//! Headers that change what a request means and that keel does not implement yet. A client
//! that asks for encryption or grants must learn that it did not get them:
//! such requests answer 501 NotImplemented (400 for a value S3 itself would refuse), never 200.
//! One table, checked for every request after authentication.

use crate::http::Request;
use crate::s3::error::{S3Error, S3ErrorCode};
use crate::s3::op::Op;

/// Operations that create an object (or an upload that becomes one).
fn writes_object(op: &Op) -> bool {
    matches!(op, Op::PutObject | Op::CopyObject | Op::CreateMultipartUpload)
}

fn not_implemented(header: &str, what: &str) -> S3Error {
    S3Error::new(
        S3ErrorCode::NotImplemented,
        format!("A header you provided implies functionality that is not implemented: {header} ({what})."),
    )
    .with_detail("Header", header)
}

fn invalid(header: &str, value: &str) -> S3Error {
    S3Error::new(S3ErrorCode::InvalidArgument, format!("Invalid value {value:?} for {header}."))
        .with_detail("ArgumentName", header)
        .with_detail("ArgumentValue", value)
}

/// Storage classes S3 defines; keel stores everything as STANDARD.
const STORAGE_CLASSES: &[&str] = &[
    "STANDARD",
    "REDUCED_REDUNDANCY",
    "STANDARD_IA",
    "ONEZONE_IA",
    "INTELLIGENT_TIERING",
    "GLACIER",
    "DEEP_ARCHIVE",
    "OUTPOSTS",
    "GLACIER_IR",
    "SNOW",
    "EXPRESS_ONEZONE",
];

/// Refuses a request carrying a header whose meaning keel would not carry out.
pub fn check(op: &Op, req: &Request) -> Result<(), S3Error> {
    for (name, value) in &req.headers {
        let v = value.trim();
        let Some(rest) = name.strip_prefix("x-amz-") else { continue };
        match rest {
            // SSE-S3 / SSE-KMS: the object would be stored in plaintext.
            "server-side-encryption" => {
                if !matches!(v, "AES256" | "aws:kms" | "aws:kms:dsse") {
                    return Err(invalid(name, v));
                }
                if !writes_object(op) {
                    return Err(S3Error::new(
                        S3ErrorCode::InvalidArgument,
                        format!("{name} is not supported for this operation."),
                    ));
                }
                return Err(not_implemented(name, "server-side encryption"));
            }
            "server-side-encryption-aws-kms-key-id"
            | "server-side-encryption-context"
            | "server-side-encryption-bucket-key-enabled" => {
                return Err(not_implemented(name, "server-side encryption"));
            }
            // SSE-C: storing the object in plaintext and serving it without the key would be a lie.
            r if r.starts_with("server-side-encryption-customer-")
                || r.starts_with("copy-source-server-side-encryption-customer-") =>
            {
                return Err(not_implemented(name, "server-side encryption with customer keys"));
            }
            // Object lock headers are read by the writes that take them (`handlers/lock.rs`).
            // Tags go with the writes that take them (`handlers/tagging.rs`); nowhere else.
            "tagging" if !writes_object(op) && !v.is_empty() => {
                return Err(S3Error::new(
                    S3ErrorCode::InvalidArgument,
                    format!("{name} is not supported for this operation."),
                ));
            }
            "tagging-directive" if !matches!(v, "COPY" | "REPLACE") => return Err(invalid(name, v)),
            // Grants are kept on buckets and objects (D53), not yet on an upload's object.
            r if r.starts_with("grant-") && matches!(op, Op::CreateMultipartUpload) => {
                return Err(not_implemented(name, "ACL grants on multipart uploads"));
            }
            "storage-class" if writes_object(op) => {
                if !STORAGE_CLASSES.contains(&v) {
                    return Err(S3Error::new(
                        S3ErrorCode::InvalidStorageClass,
                        "The storage class you specified is not valid",
                    ));
                }
                if v != "STANDARD" {
                    return Err(not_implemented(name, "storage classes other than STANDARD"));
                }
            }
            "website-redirect-location" => return Err(not_implemented(name, "website redirects")),
            "mfa" => return Err(not_implemented(name, "MFA delete")),
            "write-offset-bytes" => return Err(not_implemented(name, "appends")),
            // Object ownership (D52): CreateBucket keeps it.
            "object-ownership" if matches!(op, Op::CreateBucket) && engine::Ownership::parse(v).is_none() => {
                return Err(invalid(name, v));
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: &str, headers: &[(&str, &str)]) -> Request {
        let mut raw = format!("{method} /b/k HTTP/1.1\r\nHost: h\r\n");
        for (k, v) in headers {
            raw.push_str(&format!("{k}: {v}\r\n"));
        }
        raw.push_str("\r\n");
        Request::parse(raw.as_bytes()).unwrap().0
    }

    fn code(op: &Op, headers: &[(&str, &str)]) -> Option<&'static str> {
        check(op, &req("PUT", headers)).err().map(|e| e.code.as_str())
    }

    #[test]
    fn meaningful_headers_are_refused_never_ignored() {
        let put = &Op::PutObject;
        assert_eq!(code(put, &[]), None);
        assert_eq!(code(put, &[("x-amz-server-side-encryption", "AES256")]), Some("NotImplemented"));
        assert_eq!(code(put, &[("x-amz-server-side-encryption", "rot13")]), Some("InvalidArgument"));
        assert_eq!(
            code(&Op::GetObject(Default::default()), &[("x-amz-server-side-encryption", "AES256")]),
            Some("InvalidArgument")
        );
        assert_eq!(code(put, &[("x-amz-server-side-encryption-customer-algorithm", "AES256")]), Some("NotImplemented"));
        assert_eq!(
            code(&Op::GetObject(Default::default()), &[("x-amz-server-side-encryption-customer-key", "a")]),
            Some("NotImplemented")
        );
        assert_eq!(code(put, &[("x-amz-server-side-encryption-aws-kms-key-id", "k")]), Some("NotImplemented"));
        // Object lock headers are the writes' business now (handlers/lock.rs).
        assert_eq!(code(put, &[("x-amz-object-lock-mode", "GOVERNANCE")]), None);
        assert_eq!(code(put, &[("x-amz-tagging", "a=b")]), None);
        assert_eq!(code(put, &[("x-amz-tagging", "")]), None);
        assert_eq!(code(&Op::PutObjectAcl, &[("x-amz-tagging", "a=b")]), Some("InvalidArgument"));
        assert_eq!(code(&Op::CopyObject, &[("x-amz-tagging-directive", "REPLACE")]), None);
        assert_eq!(code(&Op::CopyObject, &[("x-amz-tagging-directive", "MERGE")]), Some("InvalidArgument"));
        assert_eq!(
            code(
                &Op::CreateMultipartUpload,
                &[("x-amz-grant-read", "uri=\"http://acs.amazonaws.com/groups/global/AllUsers\"")]
            ),
            Some("NotImplemented")
        );
        assert_eq!(code(put, &[("x-amz-storage-class", "STANDARD")]), None);
        assert_eq!(code(put, &[("x-amz-storage-class", "GLACIER")]), Some("NotImplemented"));
        assert_eq!(code(put, &[("x-amz-storage-class", "COLD")]), Some("InvalidStorageClass"));
        assert_eq!(code(put, &[("x-amz-website-redirect-location", "/x")]), Some("NotImplemented"));
        assert_eq!(code(&Op::CreateBucket, &[("x-amz-object-ownership", "BucketOwnerEnforced")]), None);
        assert_eq!(code(&Op::CreateBucket, &[("x-amz-object-ownership", "Everyone")]), Some("InvalidArgument"));
        // Headers that change nothing keel does are not refused.
        assert_eq!(code(put, &[("x-amz-request-payer", "requester"), ("x-amz-meta-a", "b")]), None);
    }
}
