//! Engine errors, in the words of the storage domain. The server maps them to S3 codes in one place.

use std::io;

/// Result of every fallible engine call.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why an object key is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("empty key")]
    Empty,
    #[error("key longer than 1024 bytes")]
    TooLong,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("no such bucket")]
    NoSuchBucket,
    #[error("bucket already exists")]
    BucketExists,
    #[error("bucket is not empty")]
    BucketNotEmpty,
    #[error("invalid bucket name")]
    InvalidBucketName,
    #[error("no such object")]
    NoSuchObject,
    /// The version a request names does not exist (for that key).
    #[error("no such version")]
    NoSuchVersion,
    /// The version a request names is a delete marker, which has no data to read or change.
    #[error("the version is a delete marker")]
    DeleteMarker { version_id: String },
    #[error("invalid object key: {0}")]
    InvalidKey(KeyError),
    #[error("object already exists")]
    ObjectExists,
    #[error("precondition failed")]
    PreconditionFailed,
    /// A conditional write lost a race: the record it was checked against was replaced before
    /// it committed (the client should read the ETag again and retry).
    #[error("a concurrent write replaced the object this conditional write was checked against")]
    WriteConflict,
    /// A tag set S3 would refuse (too many tags, a key or value too long, a duplicate key).
    #[error("invalid tag: {0}")]
    InvalidTag(&'static str),
    /// Object lock forbids it: a retention or legal hold protects the version (D47).
    #[error("object lock: {0}")]
    ObjectLocked(&'static str),
    /// A retention or legal hold asked of a bucket created without object lock.
    #[error("the bucket has no object lock configuration")]
    NoObjectLock,
    #[error("metadata too large")]
    MetadataTooLarge,
    #[error("object too large")]
    ObjectTooLarge,
    #[error("body shorter than declared: {received} of {expected} bytes")]
    IncompleteBody { expected: u64, received: u64 },
    #[error("{algorithm} checksum mismatch")]
    ChecksumMismatch { algorithm: &'static str },
    #[error("stored {algorithm} checksum does not match the data (bit rot)")]
    Corrupt { algorithm: &'static str },
    #[error("the object changed while it was being opened")]
    ObjectChanged,
    #[error("the checksum algorithm differs from the upload's")]
    ChecksumAlgorithmMismatch,
    #[error("no such upload")]
    NoSuchUpload,
    #[error("invalid part {part_number}")]
    InvalidPart { part_number: u32 },
    #[error("parts are not in ascending order")]
    InvalidPartOrder,
    #[error("part {part_number} is smaller than the minimum part size")]
    PartTooSmall { part_number: u32 },
    #[error("mountpath {mountpath} is full")]
    MountpathFull { mountpath: String },
    #[error("mountpath {mountpath} is poisoned after an I/O failure")]
    Poisoned { mountpath: String },
    #[error("stored metadata is corrupt: {0}")]
    BadMeta(&'static str),
    #[error("index: {0}")]
    Index(String),
    /// The mountpaths given do not make up the node (a member missing, a foreign one, ...).
    #[error("{0}")]
    Membership(String),
    #[error("the engine is shutting down")]
    ShuttingDown,
    #[error("I/O: {0}")]
    Io(#[from] io::Error),
}

impl Error {
    /// Classifies an I/O error from a mountpath: a full disk is its own condition.
    pub fn from_io(err: io::Error, mountpath: &str) -> Error {
        if err.raw_os_error() == Some(libc::ENOSPC) || err.raw_os_error() == Some(libc::EDQUOT) {
            Error::MountpathFull { mountpath: mountpath.to_owned() }
        } else {
            Error::Io(err)
        }
    }
}

impl From<fjall::Error> for Error {
    fn from(err: fjall::Error) -> Error {
        Error::Index(err.to_string())
    }
}
