//! The on-disk formats, byte for byte. Every record keel has written must stay readable, so a
//! change here is never incidental: an encoder that writes other bytes fails these tests, and
//! the fix is a new format number (with a decoder for the old one and a new fixture), not a new
//! expected string.

use std::path::PathBuf;

use engine::membership::{Member, MemberState, NODE_RECORD_FORMAT, NodeRecord};
use engine::meta::{BUCKET_RECORD_FORMAT, OBJECT_RECORD_FORMAT, PART_RECORD_FORMAT, UPLOAD_RECORD_FORMAT};
use engine::{
    BucketMeta, BucketPolicy, CannedAcl, ChecksumKind, Cors, CorsRule, DataLoc, DefaultRetention, Expiration,
    FlexAlgorithm, FlexType, Grant, Grantee, Lifecycle, LifecycleRule, LockMode, ObjectId, ObjectLock, ObjectMeta,
    ObjectVersion, Ownership, PartLoc, PartMeta, Permission, PublicAccessBlock, RemoteBucket, RemoteVersion, Retention,
    RuleFilter, StoredChecksum, SystemMeta, UploadMeta, Versioning,
};

use policy::Policy;

mod record_fixtures;
use record_fixtures::{check, check_old, flex, system};

#[test]
fn object_record_inline() {
    assert_eq!(OBJECT_RECORD_FORMAT, 8);
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
        grants: vec![
            Grant { grantee: Grantee::User("bob".into()), permission: Permission::ReadAcp },
            Grant { grantee: Grantee::AllUsers, permission: Permission::Read },
        ],
    };
    check(
        "object inline",
        &m.encode(),
        concat!(
            "08",                               // format
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
            "02",     // two grants:
            "00",
            "03000000",
            "626f62",
            "02", // bob READ_ACP
            "01",
            "00", // AllUsers READ
            "00",
            "05000000",
            "68656c6c6f", // inline data "hello"
        ),
        |b| ObjectMeta::decode(b).unwrap(),
        &m,
    );
}

#[test]
fn object_record_parts() {
    let part = |id: u128, size: u64, with_flex: bool| PartLoc {
        id: ObjectId(id),
        size,
        md5: [id as u8; 16],
        checksum: Some(vec![id as u8; 8]),
        flex: with_flex.then(|| flex(0)),
    };
    let m = ObjectMeta {
        size: 7,
        mtime_ms: 1_700_000_000_456,
        md5: [0x22; 16],
        etag_parts: 2,
        stored_checksum: StoredChecksum { kind: ChecksumKind::Xxhash, value: Default::default() },
        system: SystemMeta::default(),
        user: Vec::new(),
        flex_checksum: Some(flex(2)),
        data: DataLoc::Parts(vec![part(0xa1, 4, true), part(0xb2, 3, false)]),
        acl: CannedAcl::Private,
        epoch: 9,
        upload_id: Some("upload-1".into()),
        remote: None,
        tags: Vec::new(),
        version: ObjectVersion::default(),
        lock: ObjectLock::default(),
        owner: None,
        grants: Vec::new(),
    };
    check(
        "object parts",
        &m.encode(),
        concat!(
            "08",
            "0700000000000000",
            "c869e5cf8b010000", // format, size, mtime
            "22222222222222222222222222222222",
            "02000000", // MD5 of part MD5s, 2 parts
            "0900000000000000",
            "00", // epoch, ACL private
            "00000000000000000000000000000000",
            "01", // version: stamp 0, the null version
            "00", // not a cached copy of a remote object
            "01",
            "00000000", // stored checksum: xxhash, per part
            "000000000000",
            "0000", // no system headers, no user pairs
            "01",
            "02",
            "04000000",
            "deadbeef",
            "02000000", // flexible: CRC32C composite of 2
            "01",
            "08000000",
            "75706c6f61642d31", // upload id "upload-1"
            "00",               // no tags
            "00",
            "00", // no retention, no legal hold
            "00", // the bucket owner's
            "00", // no grants
            "02",
            "02000000", // parts, 2 of them:
            "a1000000000000000000000000000000",
            "0400000000000000",                 // id, size
            "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1", // MD5
            "01",
            "08000000",
            "a1a1a1a1a1a1a1a1", // the part's stored checksum
            "01",
            "02",
            "04000000",
            "deadbeef",
            "00000000", // the part's flexible checksum
            "b2000000000000000000000000000000",
            "0300000000000000",
            "b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2",
            "01",
            "08000000",
            "b2b2b2b2b2b2b2b2",
            "00", // no flexible checksum
        ),
        |b| ObjectMeta::decode(b).unwrap(),
        &m,
    );
    let file = ObjectMeta {
        data: DataLoc::File(ObjectId(0x0123_4567_89ab_cdef)),
        etag_parts: 0,
        flex_checksum: None,
        upload_id: None,
        ..m
    };
    check(
        "object file",
        &file.encode(),
        concat!(
            "08",
            "0700000000000000",
            "c869e5cf8b010000", // format, size, mtime
            "22222222222222222222222222222222",
            "00000000", // MD5, single-part ETag
            "0900000000000000",
            "00",
            "00000000000000000000000000000000",
            "01",
            "00", // epoch, ACL, version, no remote
            "01",
            "00000000", // epoch, ACL, stored checksum
            "000000000000",
            "0000",
            "00",
            "00", // no headers, no user pairs, flex, upload
            "00", // no tags
            "00",
            "00", // no retention, no legal hold
            "00", // the bucket owner's
            "00", // no grants
            "01",
            "efcdab89674523010000000000000000", // one data file, its id
        ),
        |b| ObjectMeta::decode(b).unwrap(),
        &file,
    );
}

const POLICY: &str = r#"{"Statement":{"Effect":"Deny","Principal":"*","Action":"s3:*","Resource":"*"}}"#;

#[test]
fn bucket_record() {
    assert_eq!(BUCKET_RECORD_FORMAT, 11);
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
        access_policy: Some(std::sync::Arc::new(Policy::parse_stored(POLICY).unwrap())),
        public_access_block: Some(PublicAccessBlock { block_public_policy: true, ..Default::default() }),
        cors: Some(Cors {
            rules: vec![CorsRule {
                id: Some("c".into()),
                allowed_methods: vec!["GET".into()],
                allowed_origins: vec!["*".into()],
                max_age_secs: Some(60),
                ..Default::default()
            }],
        }),
        ownership: Some(Ownership::ObjectWriter),
        grants: vec![Grant { grantee: Grantee::AuthenticatedUsers, permission: Permission::FullControl }],
    };
    check(
        "bucket",
        &b.encode(),
        concat!(
            "0b",
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
            "01",
            "4e000000", // a bucket policy of 78 bytes:
            "7b2253746174656d656e74223a7b22456666656374223a2244656e79222c225072696e636970616c223a222a222c22416374696f6e223a2273333a2a222c225265736f75726365223a222a227d7d",
            "09", // public access block: present, BlockPublicPolicy
            "01",
            "20000000", // a CORS configuration of 32 bytes: one rule
            "01",
            "01",
            "01000000",
            "63",
            "0100",
            "03000000",
            "474554",
            "0100",
            "01000000",
            "2a",
            "0000",
            "0000",
            "01",
            "3c000000",
            "03", // ownership: ObjectWriter
            "01",
            "02",
            "04", // one grant: AuthenticatedUsers FULL_CONTROL
        ),
        |x| BucketMeta::decode(x).unwrap(),
        &b,
    );
}

#[test]
fn upload_and_part_records() {
    assert_eq!((UPLOAD_RECORD_FORMAT, PART_RECORD_FORMAT), (4, 1));
    let u = UploadMeta {
        created_ms: 1_700_000_000_789,
        initiator: "ak".into(),
        checksum: ChecksumKind::Xxhash,
        flex: Some((FlexAlgorithm::Sha256, FlexType::Composite)),
        system: system(),
        user: vec![("k".into(), "v".into())],
        acl: CannedAcl::PublicRead,
        tags: vec![("a".into(), "b".into())],
        lock: ObjectLock { retention: None, legal_hold: true },
    };
    check(
        "upload",
        &u.encode(),
        concat!(
            "04",
            "156be5cf8b010000", // format, created ms
            "02000000",
            "616b", // initiator "ak"
            "01",
            "01",
            "05",
            "00", // xxhash; flexible: SHA256, composite
            "01",
            "0a000000",
            "746578742f706c61696e",
            "00",
            "00", // content-type, -encoding, -disposition
            "01",
            "08000000",
            "6e6f2d6361636865",
            "00",
            "00", // cache-control, expires, -language
            "0100",
            "01000000",
            "6b",
            "01000000",
            "76", // "k" = "v"
            "01", // ACL public-read
            "01",
            "01000000",
            "61",
            "01000000",
            "62", // one tag: "a" = "b"
            "00",
            "01", // no retention, legal hold on
        ),
        |x| UploadMeta::decode(x).unwrap(),
        &u,
    );
    check_old(
        "upload, format 3",
        concat!(
            "03",
            "156be5cf8b010000", // format, created ms
            "02000000",
            "616b", // initiator "ak"
            "01",
            "01",
            "05",
            "00", // xxhash; flexible: SHA256, composite
            "01",
            "0a000000",
            "746578742f706c61696e",
            "00",
            "00", // content-type, -encoding, -disposition
            "01",
            "08000000",
            "6e6f2d6361636865",
            "00",
            "00", // cache-control, expires, -language
            "0100",
            "01000000",
            "6b",
            "01000000",
            "76", // "k" = "v"
            "01", // ACL public-read
            "01",
            "01000000",
            "61",
            "01000000",
            "62", // one tag: "a" = "b"
        ),
        |x| UploadMeta::decode(x).unwrap(),
        &UploadMeta { lock: ObjectLock::default(), ..u.clone() },
    );
    check_old(
        "upload, format 2",
        concat!(
            "02",
            "156be5cf8b010000", // format, created ms
            "02000000",
            "616b", // initiator "ak"
            "01",
            "01",
            "05",
            "00", // xxhash; flexible: SHA256, composite
            "01",
            "0a000000",
            "746578742f706c61696e",
            "00",
            "00", // content-type, -encoding, -disposition
            "01",
            "08000000",
            "6e6f2d6361636865",
            "00",
            "00", // cache-control, expires, -language
            "0100",
            "01000000",
            "6b",
            "01000000",
            "76", // "k" = "v"
            "01", // ACL public-read
        ),
        |x| UploadMeta::decode(x).unwrap(),
        &UploadMeta { tags: Vec::new(), lock: ObjectLock::default(), ..u.clone() },
    );
    let p = PartMeta {
        id: ObjectId(0xfeed),
        size: 5 << 20,
        md5: [0x33; 16],
        mtime_ms: 1_700_000_001_000,
        stored_checksum: vec![9; 8],
        flex_checksum: Some(flex(0)),
    };
    check(
        "part",
        &p.encode(),
        concat!(
            "01",                               // format
            "edfe0000000000000000000000000000", // data file id
            "0000500000000000",                 // size
            "33333333333333333333333333333333", // MD5
            "e86be5cf8b010000",                 // mtime ms
            "08000000",
            "0909090909090909", // stored checksum value
            "01",
            "02",
            "04000000",
            "deadbeef",
            "00000000", // flexible: CRC32C
        ),
        |x| PartMeta::decode(x).unwrap(),
        &p,
    );
}

#[test]
fn node_record() {
    assert_eq!(NODE_RECORD_FORMAT, "keel-node 1");
    let r = NodeRecord {
        node: 0x00ab_cdef_0123_4567,
        epoch: 12,
        members: vec![
            Member { id: 1, path: PathBuf::from("/mnt/a"), state: MemberState::Active },
            Member { id: 0xff, path: PathBuf::from("/mnt/b c"), state: MemberState::Detached { at: 11 } },
        ],
    };
    let text = "keel-node 1\nnode 00abcdef01234567\nepoch 12\nmember 0000000000000001 active /mnt/a\nmember 00000000000000ff detached 11 /mnt/b c\n";
    assert_eq!(r.encode(), text);
    assert_eq!(NodeRecord::decode(text).unwrap(), r);
}
