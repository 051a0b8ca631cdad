//! S3 errors: each code owns its string and HTTP status, and `From<engine::Error>` is the one
//! place where engine failures become S3 codes.

use crate::http::Response;
use crate::s3::xml::XmlWriter;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum S3ErrorCode {
    AccessDenied,
    AccessControlListNotSupported,
    /// A CORS preflight the bucket's rules do not allow.
    AccessForbidden,
    AuthorizationHeaderMalformed,
    AuthorizationQueryParametersError,
    BadDigest,
    /// A backend bucket's remote refused or failed (keel's code; S3 has none for it).
    BadGateway,
    BucketAlreadyExists,
    BucketAlreadyOwnedByYou,
    BucketNotEmpty,
    EntityTooLarge,
    EntityTooSmall,
    /// A backend bucket's remote did not answer in time (keel's code).
    GatewayTimeout,
    IncompleteBody,
    InsufficientStorage,
    InternalError,
    InvalidAccessKeyId,
    InvalidArgument,
    InvalidBucketAclWithObjectOwnership,
    InvalidBucketName,
    InvalidBucketState,
    InvalidDigest,
    InvalidPart,
    InvalidPolicyDocument,
    InvalidPartOrder,
    InvalidPartNumber,
    InvalidRange,
    InvalidRetentionPeriod,
    InvalidRequest,
    InvalidStorageClass,
    InvalidTag,
    InvalidURI,
    KeyTooLongError,
    MalformedACLError,
    MalformedPOSTRequest,
    MalformedPolicy,
    MalformedXML,
    MetadataTooLarge,
    MethodNotAllowed,
    MissingContentLength,
    MissingSecurityHeader,
    NoSuchBucket,
    NoSuchBucketPolicy,
    NoSuchCORSConfiguration,
    NoSuchKey,
    NoSuchLifecycleConfiguration,
    NoSuchObjectLockConfiguration,
    NoSuchPublicAccessBlockConfiguration,
    NoSuchTagSet,
    NoSuchVersion,
    NoSuchUpload,
    OwnershipControlsNotFoundError,
    OperationAborted,
    NotImplemented,
    ObjectLockConfigurationNotFoundError,
    PreconditionFailed,
    ConditionalRequestConflict,
    RequestHeaderSectionTooLarge,
    RequestTimeTooSkewed,
    RequestTimeout,
    ServiceUnavailable,
    SignatureDoesNotMatch,
    UnresolvableGrantByEmailAddress,
    UriTooLong,
    XAmzContentSHA256Mismatch,
}

impl S3ErrorCode {
    pub fn as_str(self) -> &'static str {
        use S3ErrorCode::*;
        match self {
            AccessDenied => "AccessDenied",
            AccessControlListNotSupported => "AccessControlListNotSupported",
            AccessForbidden => "AccessForbidden",
            BadGateway => "BadGateway",
            GatewayTimeout => "GatewayTimeout",
            AuthorizationHeaderMalformed => "AuthorizationHeaderMalformed",
            AuthorizationQueryParametersError => "AuthorizationQueryParametersError",
            BadDigest => "BadDigest",
            BucketAlreadyExists => "BucketAlreadyExists",
            BucketAlreadyOwnedByYou => "BucketAlreadyOwnedByYou",
            BucketNotEmpty => "BucketNotEmpty",
            EntityTooLarge => "EntityTooLarge",
            EntityTooSmall => "EntityTooSmall",
            IncompleteBody => "IncompleteBody",
            InsufficientStorage => "InsufficientStorage",
            InternalError => "InternalError",
            InvalidAccessKeyId => "InvalidAccessKeyId",
            InvalidArgument => "InvalidArgument",
            InvalidBucketAclWithObjectOwnership => "InvalidBucketAclWithObjectOwnership",
            InvalidBucketName => "InvalidBucketName",
            InvalidBucketState => "InvalidBucketState",
            InvalidDigest => "InvalidDigest",
            InvalidPart => "InvalidPart",
            InvalidPolicyDocument => "InvalidPolicyDocument",
            InvalidPartOrder => "InvalidPartOrder",
            InvalidPartNumber => "InvalidPartNumber",
            InvalidRange => "InvalidRange",
            InvalidRetentionPeriod => "InvalidRetentionPeriod",
            InvalidRequest => "InvalidRequest",
            InvalidStorageClass => "InvalidStorageClass",
            InvalidTag => "InvalidTag",
            InvalidURI => "InvalidURI",
            KeyTooLongError => "KeyTooLongError",
            MalformedACLError => "MalformedACLError",
            MalformedPOSTRequest => "MalformedPOSTRequest",
            MalformedPolicy => "MalformedPolicy",
            MalformedXML => "MalformedXML",
            MetadataTooLarge => "MetadataTooLarge",
            MethodNotAllowed => "MethodNotAllowed",
            MissingContentLength => "MissingContentLength",
            MissingSecurityHeader => "MissingSecurityHeader",
            NoSuchBucket => "NoSuchBucket",
            NoSuchBucketPolicy => "NoSuchBucketPolicy",
            NoSuchCORSConfiguration => "NoSuchCORSConfiguration",
            NoSuchPublicAccessBlockConfiguration => "NoSuchPublicAccessBlockConfiguration",
            NoSuchKey => "NoSuchKey",
            NoSuchLifecycleConfiguration => "NoSuchLifecycleConfiguration",
            NoSuchObjectLockConfiguration => "NoSuchObjectLockConfiguration",
            NoSuchTagSet => "NoSuchTagSet",
            NoSuchVersion => "NoSuchVersion",
            NoSuchUpload => "NoSuchUpload",
            OwnershipControlsNotFoundError => "OwnershipControlsNotFoundError",
            OperationAborted => "OperationAborted",
            NotImplemented => "NotImplemented",
            ObjectLockConfigurationNotFoundError => "ObjectLockConfigurationNotFoundError",
            PreconditionFailed => "PreconditionFailed",
            ConditionalRequestConflict => "ConditionalRequestConflict",
            RequestHeaderSectionTooLarge => "RequestHeaderSectionTooLarge",
            RequestTimeTooSkewed => "RequestTimeTooSkewed",
            RequestTimeout => "RequestTimeout",
            ServiceUnavailable => "ServiceUnavailable",
            SignatureDoesNotMatch => "SignatureDoesNotMatch",
            UnresolvableGrantByEmailAddress => "UnresolvableGrantByEmailAddress",
            UriTooLong => "UriTooLong",
            XAmzContentSHA256Mismatch => "XAmzContentSHA256Mismatch",
        }
    }

    pub fn status(self) -> u16 {
        use S3ErrorCode::*;
        match self {
            AuthorizationHeaderMalformed
            | AccessControlListNotSupported
            | InvalidBucketAclWithObjectOwnership
            | AuthorizationQueryParametersError
            | BadDigest
            | EntityTooLarge
            | EntityTooSmall
            | IncompleteBody
            | InvalidArgument
            | InvalidBucketName
            | InvalidRetentionPeriod
            | InvalidDigest
            | InvalidPart
            | InvalidPolicyDocument
            | InvalidPartOrder
            | InvalidRequest
            | InvalidStorageClass
            | InvalidTag
            | InvalidURI
            | KeyTooLongError
            | MalformedACLError
            | MalformedPOSTRequest
            | MissingSecurityHeader
            | UnresolvableGrantByEmailAddress
            | MalformedPolicy
            | MalformedXML
            | MetadataTooLarge
            | RequestTimeout
            | XAmzContentSHA256Mismatch => 400,
            AccessDenied | AccessForbidden | InvalidAccessKeyId | RequestTimeTooSkewed | SignatureDoesNotMatch => 403,
            NoSuchBucket
            | NoSuchBucketPolicy
            | NoSuchCORSConfiguration
            | NoSuchPublicAccessBlockConfiguration
            | NoSuchKey
            | NoSuchTagSet
            | NoSuchUpload
            | OwnershipControlsNotFoundError
            | NoSuchVersion
            | NoSuchObjectLockConfiguration
            | NoSuchLifecycleConfiguration
            | ObjectLockConfigurationNotFoundError => 404,
            OperationAborted => 409,
            MethodNotAllowed => 405,
            BucketAlreadyExists
            | BucketAlreadyOwnedByYou
            | BucketNotEmpty
            | ConditionalRequestConflict
            | InvalidBucketState => 409,
            MissingContentLength => 411,
            PreconditionFailed => 412,
            UriTooLong => 414,
            InvalidRange | InvalidPartNumber => 416,
            RequestHeaderSectionTooLarge => 431,
            InternalError => 500,
            NotImplemented => 501,
            BadGateway => 502,
            ServiceUnavailable => 503,
            GatewayTimeout => 504,
            InsufficientStorage => 507,
        }
    }

    fn default_message(self) -> &'static str {
        use S3ErrorCode::*;
        match self {
            AccessDenied => "Access Denied",
            BucketAlreadyOwnedByYou => {
                "Your previous request to create the named bucket succeeded and you already own it."
            }
            BucketNotEmpty => "The bucket you tried to delete is not empty",
            NoSuchBucket => "The specified bucket does not exist",
            NoSuchKey => "The specified key does not exist.",
            NoSuchUpload => "The specified upload does not exist.",
            OperationAborted => {
                "A conflicting conditional operation is currently in progress against this resource. Please try again."
            }
            PreconditionFailed => "At least one of the pre-conditions you specified did not hold",
            ConditionalRequestConflict => {
                "The conditional request cannot succeed due to a conflicting operation against this resource."
            }
            InvalidRange => "The requested range is not satisfiable",
            NoSuchTagSet => "The TagSet does not exist",
            NoSuchBucketPolicy => "The bucket policy does not exist",
            NoSuchCORSConfiguration => "The CORS configuration does not exist",
            NoSuchPublicAccessBlockConfiguration => "The public access block configuration was not found",
            NoSuchVersion => "The specified version does not exist.",
            SignatureDoesNotMatch => {
                "The request signature we calculated does not match the signature you provided. Check your key and signing method."
            }
            InvalidAccessKeyId => "The AWS Access Key Id you provided does not exist in our records.",
            MalformedXML => {
                "The XML you provided was not well-formed or did not validate against our published schema."
            }
            InternalError => "We encountered an internal error. Please try again.",
            ServiceUnavailable => "Please reduce your request rate or try again later.",
            _ => "",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Error {
    pub code: S3ErrorCode,
    pub message: String,
    /// Headers the error response carries besides the usual ones (`Content-Range` on 416).
    pub headers: Vec<(&'static str, String)>,
    /// Elements the error document carries after `Message` (`HeadersNotSigned`, ...).
    pub details: Vec<(&'static str, String)>,
}

impl S3Error {
    pub fn new(code: S3ErrorCode, message: impl Into<String>) -> S3Error {
        S3Error { code, message: message.into(), headers: Vec::new(), details: Vec::new() }
    }

    pub fn code(code: S3ErrorCode) -> S3Error {
        S3Error { code, message: code.default_message().to_owned(), headers: Vec::new(), details: Vec::new() }
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> S3Error {
        self.headers.push((name, value.into()));
        self
    }

    /// Adds an element to the error document (after `Message`).
    pub fn with_detail(mut self, name: &'static str, value: impl Into<String>) -> S3Error {
        self.details.push((name, value.into()));
        self
    }

    pub fn status(&self) -> u16 {
        self.code.status()
    }

    /// The XML error document; `RequestId` equals the `x-amz-request-id` header.
    pub fn to_xml(&self, resource: &str, request_id: &str) -> Vec<u8> {
        let mut w = XmlWriter::new();
        w.open_plain("Error");
        w.elem("Code", self.code.as_str());
        w.elem("Message", &self.message);
        for (name, value) in &self.details {
            w.elem(name, value);
        }
        w.elem("Resource", resource);
        w.elem("RequestId", request_id);
        w.close("Error");
        w.finish()
    }

    /// The error as an HTTP answer: its status, the XML document and the headers it carries.
    pub fn response(&self, resource: &str, request_id: &str) -> Response {
        let mut r = Response::with_body(self.status(), "application/xml", self.to_xml(resource, request_id));
        r.headers.extend(self.headers.iter().map(|(k, v)| (std::borrow::Cow::Borrowed(*k), v.into())));
        r
    }
}

impl From<engine::Error> for S3Error {
    fn from(e: engine::Error) -> S3Error {
        use S3ErrorCode as C;
        use engine::Error as E;
        match e {
            E::NoSuchBucket => S3Error::code(C::NoSuchBucket),
            E::BucketExists => S3Error::code(C::BucketAlreadyOwnedByYou),
            E::BucketNotEmpty => S3Error::code(C::BucketNotEmpty),
            E::InvalidBucketName => S3Error::new(C::InvalidBucketName, "The specified bucket is not valid."),
            E::NoSuchObject => S3Error::code(C::NoSuchKey),
            E::NoSuchVersion => S3Error::code(C::NoSuchVersion),
            // S3's answer to reading a delete marker by its version: 405, saying what it is.
            E::DeleteMarker { version_id } => {
                S3Error::new(C::MethodNotAllowed, "The specified method is not allowed against this resource.")
                    .with_header("x-amz-delete-marker", "true")
                    .with_header("x-amz-version-id", version_id)
            }
            E::InvalidKey(engine::KeyError::TooLong) => S3Error::new(C::KeyTooLongError, "Your key is too long"),
            E::InvalidKey(why) => S3Error::new(C::InvalidArgument, why.to_string()),
            E::ObjectExists | E::PreconditionFailed => S3Error::code(C::PreconditionFailed),
            E::WriteConflict => S3Error::code(C::ConditionalRequestConflict),
            E::InvalidTag(why) => S3Error::new(C::InvalidTag, why),
            E::ObjectLocked(why) => S3Error::new(C::AccessDenied, format!("Access Denied because {why}.")),
            E::NoObjectLock => S3Error::new(C::InvalidRequest, "Bucket is missing Object Lock Configuration"),
            E::MetadataTooLarge => {
                S3Error::new(C::MetadataTooLarge, "Your metadata headers exceed the maximum allowed metadata size.")
            }
            E::ObjectTooLarge => {
                S3Error::new(C::EntityTooLarge, "Your proposed upload exceeds the maximum allowed object size.")
            }
            E::IncompleteBody { expected, received } => S3Error::new(
                C::IncompleteBody,
                format!(
                    "You did not provide the number of bytes specified by the Content-Length HTTP header ({received} of {expected})."
                ),
            ),
            E::ChecksumMismatch { algorithm } => S3Error::new(
                C::BadDigest,
                format!("The {algorithm} you specified did not match the calculated checksum."),
            ),
            E::NoSuchUpload => S3Error::code(C::NoSuchUpload),
            E::InvalidPart { part_number } => S3Error::new(
                C::InvalidPart,
                format!(
                    "One or more of the specified parts could not be found (part {part_number}), or its entity tag did not match."
                ),
            ),
            E::InvalidPartOrder => S3Error::new(C::InvalidPartOrder, "The list of parts was not in ascending order."),
            E::PartTooSmall { part_number } => S3Error::new(
                C::EntityTooSmall,
                format!("Your proposed upload (part {part_number}) is smaller than the minimum allowed size."),
            ),
            E::MountpathFull { .. } => S3Error::new(C::InsufficientStorage, "The drive holding this object is full."),
            E::Poisoned { .. } | E::ShuttingDown | E::ObjectChanged => S3Error::code(C::ServiceUnavailable),
            E::Corrupt { .. } => S3Error::new(C::InternalError, "The stored object failed its integrity check."),
            other => {
                tracing::warn!(error = %other, "internal error");
                S3Error::code(C::InternalError)
            }
        }
    }
}

impl From<crate::backend::RemoteError> for S3Error {
    fn from(e: crate::backend::RemoteError) -> S3Error {
        use crate::backend::RemoteError as R;
        use S3ErrorCode as C;
        let message = format!("Backend: {e}.");
        match e {
            R::NotFound => S3Error::code(C::NoSuchKey),
            R::Denied(_) | R::Changed => S3Error::new(C::BadGateway, message),
            R::Timeout => S3Error::new(C::GatewayTimeout, message),
            R::Unavailable(_) | R::NoSuchBackend(_) => S3Error::new(C::ServiceUnavailable, message),
            R::BadKey => S3Error::new(C::InvalidArgument, message),
            R::NotSupported(_) => S3Error::new(C::NotImplemented, message),
            R::ConditionFailed => S3Error::code(C::PreconditionFailed),
            // Relayed as it was where the caller can (presigned pass-through); elsewhere by kind.
            R::Refused { status: 403, .. } => S3Error::new(C::AccessDenied, message),
            R::Refused { status: 412, .. } => S3Error::code(C::PreconditionFailed),
            R::Refused { .. } => S3Error::new(C::BadGateway, message),
        }
    }
}

impl From<crate::cluster::ClusterError> for S3Error {
    fn from(e: crate::cluster::ClusterError) -> S3Error {
        use crate::cluster::ClusterError as E;
        use S3ErrorCode as C;
        let message = format!("Cluster: {e}.");
        match e {
            E::Unavailable(_) | E::NodeUnreachable(..) => S3Error::new(C::ServiceUnavailable, message),
            E::Conflict(_) => S3Error::new(C::OperationAborted, message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditional_write_errors_map_to_their_s3_codes() {
        let e = S3Error::from(engine::Error::WriteConflict);
        assert_eq!((e.status(), e.code.as_str()), (409, "ConditionalRequestConflict"));
        let e = S3Error::from(engine::Error::PreconditionFailed);
        assert_eq!((e.status(), e.code.as_str()), (412, "PreconditionFailed"));
    }
}
