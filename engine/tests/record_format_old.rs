//! Records written in older formats still decode, byte for byte (the newest formats are pinned
//! in `record_format.rs`).

mod record_fixtures;
use record_fixtures::{check_old, flex, system};

use engine::{
    BucketMeta, BucketPolicy, CannedAcl, ChecksumKind, DataLoc, DefaultRetention, Expiration, Lifecycle, LifecycleRule,
    LockMode, ObjectLock, ObjectMeta, ObjectVersion, RemoteBucket, RemoteVersion, Retention, RuleFilter,
    StoredChecksum, Versioning,
};

#[test]
fn object_record_inline_format_5_still_decodes() {
    let m = ObjectMeta {
        size: 5,
        mtime_ms: 1_700_000_000_123,
        md5: [0x11; 16],
        etag_parts: 0,
        stored_checksum: StoredChecksum {
            kind: ChecksumKind::Xxhash,
            value: engine::ChecksumBytes::new(&[1, 2, 3, 4, 5, 6, 7, 8]).unwrap(),
        },
        system: system(),
        user: vec![("color".into(), "blue".into())],
        flex_checksum: Some(flex(0)),
        data: DataLoc::Inline(b"hello".to_vec()),
        acl: CannedAcl::PublicRead,
        epoch: 3,
        upload_id: None,
        remote: Some(RemoteVersion { etag: "abc-2".into(), version: Some("v7".into()) }),
        tags: vec![("team".into(), "ml".into())],
        version: ObjectVersion { stamp: 0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10, null: false, delete_marker: true },
        lock: ObjectLock::default(),
        owner: None,
        grants: Vec::new(),
    };
    check_old(
        "object inline, format 5",
        concat!(
            "05",                               // format
            "0500000000000000",                 // size
            "7b68e5cf8b010000",                 // mtime ms
            "11111111111111111111111111111111", // MD5
            "00000000",                         // ETag parts
            "0300000000000000",                 // epoch
            "01",                               // ACL public-read
            "100f0e0d0c0b0a090807060504030201", // version stamp
            "02",                               // flags: not null, a delete marker
            "01",
            "05000000",
            "6162632d32", // cached copy of a remote object: ETag "abc-2"
            "01",
            "02000000",
            "7637", // remote version "v7"
            "01",
            "08000000",
            "0102030405060708", // stored checksum: xxhash, 8 bytes
            "01",
            "0a000000",
            "746578742f706c61696e", // content-type "text/plain"
            "00",
            "00", // content-encoding, -disposition
            "01",
            "08000000",
            "6e6f2d6361636865", // cache-control "no-cache"
            "00",
            "00",   // expires, content-language
            "0100", // one user metadata pair
            "05000000",
            "636f6c6f72",
            "04000000",
            "626c7565", // "color" = "blue"
            "01",
            "02",
            "04000000",
            "deadbeef",
            "00000000", // flexible: CRC32C, full object
            "00",       // no upload id
            "01",
            "04000000",
            "7465616d",
            "02000000",
            "6d6c", // one tag: "team" = "ml"
            "00",
            "05000000",
            "68656c6c6f", // inline data "hello"
        ),
        |b| ObjectMeta::decode(b).unwrap(),
        &m,
    );
}

#[test]
fn object_record_inline_format_4_still_decodes() {
    let m = ObjectMeta {
        size: 5,
        mtime_ms: 1_700_000_000_123,
        md5: [0x11; 16],
        etag_parts: 0,
        stored_checksum: StoredChecksum {
            kind: ChecksumKind::Xxhash,
            value: engine::ChecksumBytes::new(&[1, 2, 3, 4, 5, 6, 7, 8]).unwrap(),
        },
        system: system(),
        user: vec![("color".into(), "blue".into())],
        flex_checksum: Some(flex(0)),
        data: DataLoc::Inline(b"hello".to_vec()),
        acl: CannedAcl::PublicRead,
        epoch: 3,
        upload_id: None,
        remote: Some(RemoteVersion { etag: "abc-2".into(), version: Some("v7".into()) }),
        tags: vec![("team".into(), "ml".into())],
        version: ObjectVersion::default(),
        lock: ObjectLock::default(),
        owner: None,
        grants: Vec::new(),
    };
    check_old(
        "object inline, format 4",
        concat!(
            "04",                               // format
            "0500000000000000",                 // size
            "7b68e5cf8b010000",                 // mtime ms
            "11111111111111111111111111111111", // MD5
            "00000000",                         // ETag parts
            "0300000000000000",                 // epoch
            "01",                               // ACL public-read
            "01",
            "05000000",
            "6162632d32", // cached copy of a remote object: ETag "abc-2"
            "01",
            "02000000",
            "7637", // remote version "v7"
            "01",
            "08000000",
            "0102030405060708", // stored checksum: xxhash, 8 bytes
            "01",
            "0a000000",
            "746578742f706c61696e", // content-type "text/plain"
            "00",
            "00", // content-encoding, -disposition
            "01",
            "08000000",
            "6e6f2d6361636865", // cache-control "no-cache"
            "00",
            "00",   // expires, content-language
            "0100", // one user metadata pair
            "05000000",
            "636f6c6f72",
            "04000000",
            "626c7565", // "color" = "blue"
            "01",
            "02",
            "04000000",
            "deadbeef",
            "00000000", // flexible: CRC32C, full object
            "00",       // no upload id
            "01",
            "04000000",
            "7465616d",
            "02000000",
            "6d6c", // one tag: "team" = "ml"
            "00",
            "05000000",
            "68656c6c6f", // inline data "hello"
        ),
        |b| ObjectMeta::decode(b).unwrap(),
        &m,
    );
}

#[test]
fn object_record_inline_format_3_still_decodes() {
    let m = ObjectMeta {
        size: 5,
        mtime_ms: 1_700_000_000_123,
        md5: [0x11; 16],
        etag_parts: 0,
        stored_checksum: StoredChecksum {
            kind: ChecksumKind::Xxhash,
            value: engine::ChecksumBytes::new(&[1, 2, 3, 4, 5, 6, 7, 8]).unwrap(),
        },
        system: system(),
        user: vec![("color".into(), "blue".into())],
        flex_checksum: Some(flex(0)),
        data: DataLoc::Inline(b"hello".to_vec()),
        acl: CannedAcl::PublicRead,
        epoch: 3,
        upload_id: None,
        remote: Some(RemoteVersion { etag: "abc-2".into(), version: Some("v7".into()) }),
        tags: Vec::new(),
        version: ObjectVersion::default(),
        lock: ObjectLock::default(),
        owner: None,
        grants: Vec::new(),
    };
    check_old(
        "object inline, format 3",
        concat!(
            "03",                               // format
            "0500000000000000",                 // size
            "7b68e5cf8b010000",                 // mtime ms
            "11111111111111111111111111111111", // MD5
            "00000000",                         // ETag parts
            "0300000000000000",                 // epoch
            "01",                               // ACL public-read
            "01",
            "05000000",
            "6162632d32", // cached copy of a remote object: ETag "abc-2"
            "01",
            "02000000",
            "7637", // remote version "v7"
            "01",
            "08000000",
            "0102030405060708", // stored checksum: xxhash, 8 bytes
            "01",
            "0a000000",
            "746578742f706c61696e", // content-type "text/plain"
            "00",
            "00", // content-encoding, -disposition
            "01",
            "08000000",
            "6e6f2d6361636865", // cache-control "no-cache"
            "00",
            "00",   // expires, content-language
            "0100", // one user metadata pair
            "05000000",
            "636f6c6f72",
            "04000000",
            "626c7565", // "color" = "blue"
            "01",
            "02",
            "04000000",
            "deadbeef",
            "00000000", // flexible: CRC32C, full object
            "00",       // no upload id
            "00",
            "05000000",
            "68656c6c6f", // inline data "hello"
        ),
        |b| ObjectMeta::decode(b).unwrap(),
        &m,
    );
}

#[test]
fn object_record_inline_format_2_still_decodes() {
    let m = ObjectMeta {
        size: 5,
        mtime_ms: 1_700_000_000_123,
        md5: [0x11; 16],
        etag_parts: 0,
        stored_checksum: StoredChecksum {
            kind: ChecksumKind::Xxhash,
            value: engine::ChecksumBytes::new(&[1, 2, 3, 4, 5, 6, 7, 8]).unwrap(),
        },
        system: system(),
        user: vec![("color".into(), "blue".into())],
        flex_checksum: Some(flex(0)),
        data: DataLoc::Inline(b"hello".to_vec()),
        acl: CannedAcl::PublicRead,
        epoch: 3,
        upload_id: None,
        remote: None,
        tags: Vec::new(),
        version: ObjectVersion::default(),
        lock: ObjectLock::default(),
        owner: None,
        grants: Vec::new(),
    };
    check_old(
        "object inline, format 2",
        concat!(
            "02",                               // format
            "0500000000000000",                 // size
            "7b68e5cf8b010000",                 // mtime ms
            "11111111111111111111111111111111", // MD5
            "00000000",                         // ETag parts
            "0300000000000000",                 // epoch
            "01",                               // ACL public-read
            "01",
            "08000000",
            "0102030405060708", // stored checksum: xxhash, 8 bytes
            "01",
            "0a000000",
            "746578742f706c61696e", // content-type "text/plain"
            "00",
            "00", // content-encoding, -disposition
            "01",
            "08000000",
            "6e6f2d6361636865", // cache-control "no-cache"
            "00",
            "00",   // expires, content-language
            "0100", // one user metadata pair
            "05000000",
            "636f6c6f72",
            "04000000",
            "626c7565", // "color" = "blue"
            "01",
            "02",
            "04000000",
            "deadbeef",
            "00000000", // flexible: CRC32C, full object
            "00",       // no upload id
            "00",
            "05000000",
            "68656c6c6f", // inline data "hello"
        ),
        |b| ObjectMeta::decode(b).unwrap(),
        &m,
    );
}

#[test]
fn bucket_record_format_5_still_decodes() {
    let b = BucketMeta {
        created_ms: 1_700_000_000_000,
        owner: "ak".into(),
        versioning: Versioning::Suspended,
        checksum: ChecksumKind::Crc32c,
        validate_on_read: true,
        acl: CannedAcl::AuthenticatedRead,
        policy: BucketPolicy::PublicRead,
        incarnation: 0x0102_0304_0506_0708,
        location: "eu-west-1".into(),
        backend: Some(RemoteBucket { backend: "up".into(), bucket: "data".into() }),
        validate_warm_get: true,
        copies: 2,
        tags: vec![("cost".into(), "1".into())],
        object_lock: false,
        default_retention: None,
        lifecycle: None,
        access_policy: None,
        public_access_block: None,
        cors: None,
        ownership: None,
        grants: Vec::new(),
    };
    check_old(
        "bucket, format 5",
        concat!(
            "05",
            "0068e5cf8b010000", // format, created ms
            "02000000",
            "616b", // owner "ak"
            "02",
            "02",
            "01", // versioning Suspended, CRC32C, validate on read
            "02",
            "01",               // ACL authenticated-read, policy public-read
            "0807060504030201", // incarnation
            "09000000",
            "65752d776573742d31", // location "eu-west-1"
            "01",
            "02000000",
            "7570", // backend "up"
            "04000000",
            "64617461", // remote bucket "data"
            "01",       // validate warm GETs
            "02",       // copies
            "01",
            "04000000",
            "636f7374",
            "01000000",
            "31", // one tag: "cost" = "1"
        ),
        |x| BucketMeta::decode(x).unwrap(),
        &b,
    );
}

#[test]
fn bucket_record_format_4_still_decodes() {
    let b = BucketMeta {
        created_ms: 1_700_000_000_000,
        owner: "ak".into(),
        versioning: Versioning::Suspended,
        checksum: ChecksumKind::Crc32c,
        validate_on_read: true,
        acl: CannedAcl::AuthenticatedRead,
        policy: BucketPolicy::PublicRead,
        incarnation: 0x0102_0304_0506_0708,
        location: "eu-west-1".into(),
        backend: Some(RemoteBucket { backend: "up".into(), bucket: "data".into() }),
        validate_warm_get: true,
        copies: 2,
        tags: Vec::new(),
        object_lock: false,
        default_retention: None,
        lifecycle: None,
        access_policy: None,
        public_access_block: None,
        cors: None,
        ownership: None,
        grants: Vec::new(),
    };
    check_old(
        "bucket, format 4",
        concat!(
            "04",
            "0068e5cf8b010000", // format, created ms
            "02000000",
            "616b", // owner "ak"
            "02",
            "02",
            "01", // versioning Suspended, CRC32C, validate on read
            "02",
            "01",               // ACL authenticated-read, policy public-read
            "0807060504030201", // incarnation
            "09000000",
            "65752d776573742d31", // location "eu-west-1"
            "01",
            "02000000",
            "7570", // backend "up"
            "04000000",
            "64617461", // remote bucket "data"
            "01",       // validate warm GETs
            "02",       // copies
        ),
        |x| BucketMeta::decode(x).unwrap(),
        &b,
    );
}

#[test]
fn bucket_record_format_2_still_decodes() {
    let b = BucketMeta {
        created_ms: 1_700_000_000_000,
        owner: "ak".into(),
        versioning: Versioning::Suspended,
        checksum: ChecksumKind::Crc32c,
        validate_on_read: true,
        acl: CannedAcl::AuthenticatedRead,
        policy: BucketPolicy::PublicRead,
        incarnation: 0x0102_0304_0506_0708,
        location: "eu-west-1".into(),
        backend: None,
        validate_warm_get: false,
        copies: 0,
        tags: Vec::new(),
        object_lock: false,
        default_retention: None,
        lifecycle: None,
        access_policy: None,
        public_access_block: None,
        cors: None,
        ownership: None,
        grants: Vec::new(),
    };
    check_old(
        "bucket, format 2",
        concat!(
            "02",
            "0068e5cf8b010000", // format, created ms
            "02000000",
            "616b", // owner "ak"
            "02",
            "02",
            "01", // versioning Suspended, CRC32C, validate on read
            "02",
            "01",               // ACL authenticated-read, policy public-read
            "0807060504030201", // incarnation
            "09000000",
            "65752d776573742d31", // location "eu-west-1"
        ),
        |x| BucketMeta::decode(x).unwrap(),
        &b,
    );
}

#[test]
fn bucket_record_format_6_still_decodes() {
    let b = BucketMeta {
        created_ms: 1_700_000_000_000,
        owner: "ak".into(),
        versioning: Versioning::Suspended,
        checksum: ChecksumKind::Crc32c,
        validate_on_read: true,
        acl: CannedAcl::AuthenticatedRead,
        policy: BucketPolicy::PublicRead,
        incarnation: 0x0102_0304_0506_0708,
        location: "eu-west-1".into(),
        backend: Some(RemoteBucket { backend: "up".into(), bucket: "data".into() }),
        validate_warm_get: true,
        copies: 2,
        tags: vec![("cost".into(), "1".into())],
        object_lock: true,
        default_retention: Some(DefaultRetention { mode: LockMode::Governance, amount: 30, years: false }),
        lifecycle: None,
        access_policy: None,
        public_access_block: None,
        cors: None,
        ownership: None,
        grants: Vec::new(),
    };
    check_old(
        "bucket, format 6",
        concat!(
            "06",
            "0068e5cf8b010000", // format, created ms
            "02000000",
            "616b", // owner "ak"
            "02",
            "02",
            "01", // versioning Suspended, CRC32C, validate on read
            "02",
            "01",               // ACL authenticated-read, policy public-read
            "0807060504030201", // incarnation
            "09000000",
            "65752d776573742d31", // location "eu-west-1"
            "01",
            "02000000",
            "7570", // backend "up"
            "04000000",
            "64617461", // remote bucket "data"
            "01",       // validate warm GETs
            "02",       // copies
            "01",
            "04000000",
            "636f7374",
            "01000000",
            "31", // one tag: "cost" = "1"
            "01", // object lock enabled
            "01",
            "01",
            "00",
            "1e000000", // default retention: GOVERNANCE, 30 days
        ),
        |x| BucketMeta::decode(x).unwrap(),
        &b,
    );
}

#[test]
fn bucket_record_format_7_still_decodes() {
    let b = BucketMeta {
        created_ms: 1_700_000_000_000,
        owner: "ak".into(),
        versioning: Versioning::Suspended,
        checksum: ChecksumKind::Crc32c,
        validate_on_read: true,
        acl: CannedAcl::AuthenticatedRead,
        policy: BucketPolicy::PublicRead,
        incarnation: 0x0102_0304_0506_0708,
        location: "eu-west-1".into(),
        backend: Some(RemoteBucket { backend: "up".into(), bucket: "data".into() }),
        validate_warm_get: true,
        copies: 2,
        tags: vec![("cost".into(), "1".into())],
        object_lock: true,
        default_retention: Some(DefaultRetention { mode: LockMode::Governance, amount: 30, years: false }),
        lifecycle: Some(Lifecycle {
            rules: vec![LifecycleRule {
                id: "r".into(),
                enabled: true,
                filter: RuleFilter { legacy: true, prefix: Some("p/".into()), ..Default::default() },
                expiration: Some(Expiration::Days(3)),
                noncurrent_days: None,
                newer_noncurrent: None,
                abort_upload_days: Some(7),
            }],
        }),
        access_policy: None,
        public_access_block: None,
        cors: None,
        ownership: None,
        grants: Vec::new(),
    };
    check_old(
        "bucket, format 7",
        concat!(
            "07",
            "0068e5cf8b010000", // format, created ms
            "02000000",
            "616b", // owner "ak"
            "02",
            "02",
            "01", // versioning Suspended, CRC32C, validate on read
            "02",
            "01",               // ACL authenticated-read, policy public-read
            "0807060504030201", // incarnation
            "09000000",
            "65752d776573742d31", // location "eu-west-1"
            "01",
            "02000000",
            "7570", // backend "up"
            "04000000",
            "64617461", // remote bucket "data"
            "01",       // validate warm GETs
            "02",       // copies
            "01",
            "04000000",
            "636f7374",
            "01000000",
            "31", // one tag: "cost" = "1"
            "01", // object lock enabled
            "01",
            "01",
            "00",
            "1e000000", // default retention: GOVERNANCE, 30 days
            "01",
            "20000000", // a lifecycle configuration of 32 bytes:
            "0100",     // one rule
            "01000000",
            "72", // ID "r"
            "01",
            "01",
            "00", // enabled, legacy Prefix, no And
            "01",
            "02000000",
            "702f", // prefix "p/"
            "00",   // no tags
            "00",
            "00", // no size bounds
            "01",
            "03000000", // expiration: 3 days
            "00",
            "00", // no noncurrent expiration
            "01",
            "07000000", // abort uploads after 7 days
        ),
        |x| BucketMeta::decode(x).unwrap(),
        &b,
    );
}

#[test]
fn object_record_inline_format_6_still_decodes() {
    let m = ObjectMeta {
        size: 5,
        mtime_ms: 1_700_000_000_123,
        md5: [0x11; 16],
        etag_parts: 0,
        stored_checksum: StoredChecksum {
            kind: ChecksumKind::Xxhash,
            value: engine::ChecksumBytes::new(&[1, 2, 3, 4, 5, 6, 7, 8]).unwrap(),
        },
        system: system(),
        user: vec![("color".into(), "blue".into())],
        flex_checksum: Some(flex(0)),
        data: DataLoc::Inline(b"hello".to_vec()),
        acl: CannedAcl::PublicRead,
        epoch: 3,
        upload_id: None,
        remote: Some(RemoteVersion { etag: "abc-2".into(), version: Some("v7".into()) }),
        tags: vec![("team".into(), "ml".into())],
        version: ObjectVersion { stamp: 0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10, null: false, delete_marker: true },
        lock: ObjectLock {
            retention: Some(Retention { mode: LockMode::Compliance, until_ms: 1_900_000_000_000 }),
            legal_hold: true,
        },
        owner: None,
        grants: Vec::new(),
    };
    check_old(
        "object inline, format 6",
        concat!(
            "06",                               // format
            "0500000000000000",                 // size
            "7b68e5cf8b010000",                 // mtime ms
            "11111111111111111111111111111111", // MD5
            "00000000",                         // ETag parts
            "0300000000000000",                 // epoch
            "01",                               // ACL public-read
            "100f0e0d0c0b0a090807060504030201", // version stamp
            "02",                               // flags: not null, a delete marker
            "01",
            "05000000",
            "6162632d32", // cached copy of a remote object: ETag "abc-2"
            "01",
            "02000000",
            "7637", // remote version "v7"
            "01",
            "08000000",
            "0102030405060708", // stored checksum: xxhash, 8 bytes
            "01",
            "0a000000",
            "746578742f706c61696e", // content-type "text/plain"
            "00",
            "00", // content-encoding, -disposition
            "01",
            "08000000",
            "6e6f2d6361636865", // cache-control "no-cache"
            "00",
            "00",   // expires, content-language
            "0100", // one user metadata pair
            "05000000",
            "636f6c6f72",
            "04000000",
            "626c7565", // "color" = "blue"
            "01",
            "02",
            "04000000",
            "deadbeef",
            "00000000", // flexible: CRC32C, full object
            "00",       // no upload id
            "01",
            "04000000",
            "7465616d",
            "02000000",
            "6d6c", // one tag: "team" = "ml"
            "02",
            "0038d360ba010000", // COMPLIANCE until 1_900_000_000_000 ms
            "01",               // legal hold on
            "00",
            "05000000",
            "68656c6c6f", // inline data "hello"
        ),
        |b| ObjectMeta::decode(b).unwrap(),
        &m,
    );
}

#[test]
fn object_record_inline_format_7_still_decodes() {
    let m = ObjectMeta {
        size: 5,
        mtime_ms: 1_700_000_000_123,
        md5: [0x11; 16],
        etag_parts: 0,
        stored_checksum: StoredChecksum {
            kind: ChecksumKind::Xxhash,
            value: engine::ChecksumBytes::new(&[1, 2, 3, 4, 5, 6, 7, 8]).unwrap(),
        },
        system: system(),
        user: vec![("color".into(), "blue".into())],
        flex_checksum: Some(flex(0)),
        data: DataLoc::Inline(b"hello".to_vec()),
        acl: CannedAcl::PublicRead,
        epoch: 3,
        upload_id: None,
        remote: Some(RemoteVersion { etag: "abc-2".into(), version: Some("v7".into()) }),
        tags: vec![("team".into(), "ml".into())],
        version: ObjectVersion { stamp: 0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10, null: false, delete_marker: true },
        lock: ObjectLock {
            retention: Some(Retention { mode: LockMode::Compliance, until_ms: 1_900_000_000_000 }),
            legal_hold: true,
        },
        owner: Some("alt".into()),
        grants: Vec::new(),
    };
    check_old(
        "object inline, format 7",
        concat!(
            "07",                               // format
            "0500000000000000",                 // size
            "7b68e5cf8b010000",                 // mtime ms
            "11111111111111111111111111111111", // MD5
            "00000000",                         // ETag parts
            "0300000000000000",                 // epoch
            "01",                               // ACL public-read
            "100f0e0d0c0b0a090807060504030201", // version stamp
            "02",                               // flags: not null, a delete marker
            "01",
            "05000000",
            "6162632d32", // cached copy of a remote object: ETag "abc-2"
            "01",
            "02000000",
            "7637", // remote version "v7"
            "01",
            "08000000",
            "0102030405060708", // stored checksum: xxhash, 8 bytes
            "01",
            "0a000000",
            "746578742f706c61696e", // content-type "text/plain"
            "00",
            "00", // content-encoding, -disposition
            "01",
            "08000000",
            "6e6f2d6361636865", // cache-control "no-cache"
            "00",
            "00",   // expires, content-language
            "0100", // one user metadata pair
            "05000000",
            "636f6c6f72",
            "04000000",
            "626c7565", // "color" = "blue"
            "01",
            "02",
            "04000000",
            "deadbeef",
            "00000000", // flexible: CRC32C, full object
            "00",       // no upload id
            "01",
            "04000000",
            "7465616d",
            "02000000",
            "6d6c", // one tag: "team" = "ml"
            "02",
            "0038d360ba010000", // COMPLIANCE until 1_900_000_000_000 ms
            "01",               // legal hold on
            "01",
            "03000000",
            "616c74", // owned by "alt"
            "00",
            "05000000",
            "68656c6c6f", // inline data "hello"
        ),
        |b| ObjectMeta::decode(b).unwrap(),
        &m,
    );
}
