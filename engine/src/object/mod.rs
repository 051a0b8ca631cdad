//! Object data: streaming writes (PUT, UploadPart: `data`, `put`, and `multipart`'s part
//! writer) and positioned reads (GET: `get`).
//!
//! A PUT streams into a fresh data file named by a new id (or into memory for objects small
//! enough to live in the index record), hashing as it goes. Only when every byte is written and
//! synced does the index entry swap; then the replaced object's files are unlinked. A GET that
//! opened the old files before the swap keeps reading them whole.

pub mod data;
pub mod get;
pub mod import;
pub mod put;

pub use data::DataWriter;
pub use get::{Located, ObjectReader, Piece};
pub use import::ObjectImport;
pub use put::ObjectWriter;

use crate::meta::SystemMeta;

/// When a PUT may replace what the key holds; checked atomically with the commit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum WriteCondition {
    #[default]
    Always,
    /// `If-None-Match: *`: only if the key does not exist.
    Absent,
    /// `If-Match`: only if the key holds an object with one of these ETags (comma-separated,
    /// quoted or not; `*` is any object).
    EtagMatches(String),
    /// A copy from another node (DESIGN D38): only if the key is absent or holds an object
    /// older than the one described (by modification time, then ETag).
    OlderThan { mtime_ms: u64, etag: String },
}

/// True when the comma-separated entity-tag list (`If-Match`, `If-None-Match`) matches `etag`
/// (unquoted), or is `*`. Weak tags compare by their value.
pub fn etag_list_matches(list: &str, etag: &str) -> bool {
    list.split(',').map(str::trim).any(|t| {
        if t == "*" {
            return true;
        }
        let t = t.strip_prefix("W/").unwrap_or(t);
        let t = t.strip_prefix('"').and_then(|t| t.strip_suffix('"')).unwrap_or(t);
        t == etag
    })
}

/// What a PUT carries besides its bytes.
#[derive(Clone, Debug, Default)]
pub struct PutOptions {
    pub system: SystemMeta,
    pub user: Vec<(String, String)>,
    /// Conditional write (`If-None-Match: *`, `If-Match`).
    pub condition: WriteCondition,
    /// `Content-MD5` sent by the client, verified before the commit.
    pub content_md5: Option<[u8; 16]>,
    /// The flexible checksum the client sent (header or trailer), verified before the commit.
    pub flex_expected: Option<Vec<u8>>,
    /// Who besides the bucket's owner may read the object.
    pub acl: crate::meta::CannedAcl,
    /// The object's tag set (`x-amz-tagging`), checked by `validate_tags`.
    pub tags: crate::meta::Tags,
    /// The version's retention and legal hold (object lock); the bucket's default retention
    /// applies when it names none.
    pub lock: crate::meta::ObjectLock,
    /// The remote object this is a cached copy of (backend buckets): its identity, and its
    /// modification time, which the copy keeps.
    pub remote: Option<(crate::meta::RemoteVersion, u64)>,
    /// The body's MD5 as the caller computed it, for a writer told to `skip_md5`: recorded as
    /// the object's (and `content_md5`, if any, is checked against it).
    pub md5: Option<[u8; 16]>,
    /// The object's owner when not its bucket's (`Ownership::owner_of`).
    pub owner: Option<String>,
    /// Explicit ACL grants (`x-amz-grant-*`, D53).
    pub grants: crate::meta::Grants,
}
