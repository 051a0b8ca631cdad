//! keel's storage engine: buckets, objects, mountpaths, the index and checksums.
//!
//! The engine knows nothing of HTTP. Its API is what the server and the benches call; all data
//! file I/O runs as io_uring operations on the calling shard's compio runtime, and every index
//! write goes through one committer thread per mountpath (group commit).
//!
//! ```
//! # compio::runtime::Runtime::new().unwrap().block_on(async {
//! use engine::{IoBuffer, PutOptions, Store, StoreConfig, SyncMode};
//! let dir = tempfile::tempdir().unwrap();
//! let store = Store::open(&StoreConfig {
//!     mountpaths: vec![dir.path().join("mp0")],
//!     sync: SyncMode::None,
//!     index: Default::default(),
//!     odirect: false,
//!     faults: None,
//! })
//! .unwrap();
//! store.create_bucket("photos", "owner").await.unwrap();
//! let mut w = store.put_writer("photos", "cat.jpg", Some(5), None).unwrap();
//! let mut buf = IoBuffer::with_capacity(4096);
//! buf.extend_from_slice(b"meow!");
//! let (r, _buf) = w.data().write(buf).await;
//! r.unwrap();
//! let meta = w.finish(PutOptions::default()).await.unwrap();
//! assert_eq!(meta.etag(), "f427e90cc3b78024ebbd99a731ca1b4f");
//! assert_eq!(store.head_object("photos", "cat.jpg").unwrap().size, 5);
//! # });
//! ```

pub mod checksum;
pub mod copies;
pub mod error;
pub mod evict;
pub mod faults;
pub mod index;
pub mod keys;
pub mod lifecycle;
pub mod limits;
pub mod list;
pub mod maintenance;
pub mod membership;
pub mod meta;
pub mod mountpath;
pub mod multipart;
pub mod object;
pub mod part_copy;
pub mod placement;
pub mod reconcile;
pub mod store;
pub mod version_list;
pub mod versions;

pub use checksum::{BodyHasher, ChecksumBytes, ChecksumKind, FlexAlgorithm, FlexHasher, StoredChecksum};
pub use copies::{CopiesReport, RepairReport};
pub use error::{Error, KeyError, Result};
pub use faults::Faults;
pub use index::{CommitError, IndexConfig, Refusal, SyncMode};
pub use iobuf::{IoBuffer, give_buffer, take_buffer, trim_pool};
pub use lifecycle::{Clock, LifecycleReport};
pub use list::{ListEntry, ListPage, ListQuery, UploadEntry, UploadPage, UploadQuery};
pub use maintenance::{OrphanReport, RebalanceReport, ScrubReport, Usage};
pub use meta::{
    BUCKET_TAGS_MAX, BucketMeta, BucketPolicy, CannedAcl, Cors, CorsRule, DataLoc, DefaultRetention, Expiration,
    FlexChecksum, FlexType, GRANTS_MAX, Grant, Grantee, Grants, Lifecycle, LifecycleRule, LockMode, OBJECT_TAGS_MAX,
    ObjectId, ObjectLock, ObjectMeta, ObjectVersion, Ownership, PartLoc, PartMeta, Permission, PublicAccessBlock,
    RemoteBucket, RemoteVersion, Retention, RuleFilter, SystemMeta, Tags, UploadMeta, Versioning, validate_tags,
};
pub use mountpath::{Health, Mountpath};
pub use multipart::{CompleteOptions, CompletePart, ExpectedChecksum, PartWriter, UploadOptions};
pub use object::{
    DataWriter, Located, ObjectImport, ObjectReader, ObjectWriter, Piece, PutOptions, WriteCondition, etag_list_matches,
};
pub use part_copy::PartCopy;
pub use reconcile::ReconcileReport;
pub use store::{Store, StoreConfig};
pub use version_list::{VersionEntry, VersionPage, VersionQuery};
pub use versions::{Deleted, VersionRef};
