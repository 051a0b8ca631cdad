//! The IAM action each operation is, as bucket policies name it (AWS's "Actions defined by
//! Amazon S3"); `None` outside a bucket's policy (ListBuckets, CreateBucket) and for
//! operations keel does not serve.

use crate::s3::op::Op;

/// `versioned`: the request names a version (`?versionId=`), which S3 authorizes as the
/// `…Version…` action.
pub fn of(op: &Op, versioned: bool) -> Option<&'static str> {
    let v = |plain, version| Some(if versioned { version } else { plain });
    match op {
        Op::ListBuckets(_) | Op::CreateBucket => None,
        Op::HeadBucket | Op::ListObjects(_) | Op::ListObjectsV2(_) => Some("s3:ListBucket"),
        Op::DeleteBucket => Some("s3:DeleteBucket"),
        Op::GetBucketLocation => Some("s3:GetBucketLocation"),
        Op::GetBucketVersioning => Some("s3:GetBucketVersioning"),
        Op::PutBucketVersioning => Some("s3:PutBucketVersioning"),
        Op::GetBucketAcl => Some("s3:GetBucketAcl"),
        Op::PutBucketAcl => Some("s3:PutBucketAcl"),
        Op::GetBucketTagging => Some("s3:GetBucketTagging"),
        Op::PutBucketTagging | Op::DeleteBucketTagging => Some("s3:PutBucketTagging"),
        Op::GetObjectLockConfiguration => Some("s3:GetBucketObjectLockConfiguration"),
        Op::PutObjectLockConfiguration => Some("s3:PutBucketObjectLockConfiguration"),
        Op::GetBucketLifecycleConfiguration => Some("s3:GetLifecycleConfiguration"),
        Op::PutBucketLifecycleConfiguration | Op::DeleteBucketLifecycle => Some("s3:PutLifecycleConfiguration"),
        Op::GetBucketPolicy => Some("s3:GetBucketPolicy"),
        Op::PutBucketPolicy => Some("s3:PutBucketPolicy"),
        Op::DeleteBucketPolicy => Some("s3:DeleteBucketPolicy"),
        Op::GetBucketPolicyStatus => Some("s3:GetBucketPolicyStatus"),
        Op::GetPublicAccessBlock => Some("s3:GetBucketPublicAccessBlock"),
        Op::PutPublicAccessBlock | Op::DeletePublicAccessBlock => Some("s3:PutBucketPublicAccessBlock"),
        Op::GetBucketCors => Some("s3:GetBucketCORS"),
        Op::GetBucketOwnershipControls => Some("s3:GetBucketOwnershipControls"),
        Op::PutBucketOwnershipControls | Op::DeleteBucketOwnershipControls => Some("s3:PutBucketOwnershipControls"),
        Op::PutBucketCors | Op::DeleteBucketCors => Some("s3:PutBucketCORS"),
        Op::ListObjectVersions(_) => Some("s3:ListBucketVersions"),
        Op::ListMultipartUploads(_) => Some("s3:ListBucketMultipartUploads"),
        // Each key of a DeleteObjects is authorized as its own DeleteObject (`delete.rs`).
        Op::DeleteObjects => Some("s3:DeleteObject"),
        Op::PutObject
        | Op::PostObject
        | Op::CopyObject
        | Op::CreateMultipartUpload
        | Op::UploadPart(_)
        | Op::UploadPartCopy(_)
        | Op::CompleteMultipartUpload { .. } => Some("s3:PutObject"),
        Op::GetObject(_) | Op::HeadObject(_) => v("s3:GetObject", "s3:GetObjectVersion"),
        Op::GetObjectAttributes => v("s3:GetObjectAttributes", "s3:GetObjectVersionAttributes"),
        Op::DeleteObject => v("s3:DeleteObject", "s3:DeleteObjectVersion"),
        Op::GetObjectAcl => v("s3:GetObjectAcl", "s3:GetObjectVersionAcl"),
        Op::PutObjectAcl => v("s3:PutObjectAcl", "s3:PutObjectVersionAcl"),
        Op::GetObjectTagging => v("s3:GetObjectTagging", "s3:GetObjectVersionTagging"),
        Op::PutObjectTagging => v("s3:PutObjectTagging", "s3:PutObjectVersionTagging"),
        Op::DeleteObjectTagging => v("s3:DeleteObjectTagging", "s3:DeleteObjectVersionTagging"),
        Op::GetObjectRetention => Some("s3:GetObjectRetention"),
        Op::PutObjectRetention => Some("s3:PutObjectRetention"),
        Op::GetObjectLegalHold => Some("s3:GetObjectLegalHold"),
        Op::PutObjectLegalHold => Some("s3:PutObjectLegalHold"),
        Op::AbortMultipartUpload { .. } => Some("s3:AbortMultipartUpload"),
        Op::ListParts(_) => Some("s3:ListMultipartUploadParts"),
        Op::Unsupported(_) | Op::MethodNotAllowed | Op::InvalidUri | Op::Preflight => None,
    }
}

/// Operations on the policy itself: the bucket's owner may always run them, whatever the
/// policy denies (AWS's root-user rule: an owner cannot lock itself out).
pub fn manages_policy(op: &Op) -> bool {
    matches!(op, Op::GetBucketPolicy | Op::PutBucketPolicy | Op::DeleteBucketPolicy)
}

/// The ARN a policy's `Resource` is matched against.
pub fn arn(bucket: &str, key: Option<&str>) -> String {
    match key {
        Some(k) => format!("arn:aws:s3:::{bucket}/{k}"),
        None => format!("arn:aws:s3:::{bucket}"),
    }
}
