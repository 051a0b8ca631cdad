//! Records round-trip, and older formats still decode.

use super::*;

fn sample(data: DataLoc, size: u64) -> ObjectMeta {
    ObjectMeta {
        size,
        mtime_ms: 1_700_000_000_123,
        md5: [7; 16],
        etag_parts: 0,
        stored_checksum: StoredChecksum {
            kind: ChecksumKind::Xxhash,
            value: crate::checksum::ChecksumBytes::new(&[1, 2, 3, 4, 5, 6, 7, 8]).unwrap(),
        },
        system: SystemMeta { content_type: Some("text/plain".into()), expires: Some("x".into()), ..Default::default() },
        user: vec![("a".into(), "b".into()), ("ü".into(), "".into())],
        flex_checksum: Some(FlexChecksum { algorithm: FlexAlgorithm::Crc32, value: vec![9, 9, 9, 9], parts: 0 }),
        data,
        acl: CannedAcl::PublicRead,
        epoch: 42,
        upload_id: Some("0123456789abcdef0123456789ab".into()),
        remote: None,
        tags: vec![("k".into(), "v".into()), ("e".into(), "".into())],
        version: Default::default(),
        lock: ObjectLock { retention: Some(Retention { mode: LockMode::Compliance, until_ms: 99 }), legal_hold: true },
        owner: Some("writer".into()),
        grants: vec![Grant { grantee: Grantee::User("u".into()), permission: Permission::WriteAcp }],
    }
}

#[test]
fn object_round_trips() {
    let metas = [
        sample(DataLoc::Inline(b"hello".to_vec()), 5),
        sample(DataLoc::File(ObjectId(0xdead_beef_u128 << 64 | 42)), 1 << 40),
        sample(
            DataLoc::Parts(vec![
                PartLoc { id: ObjectId(1), size: 10, md5: [1; 16], checksum: None, flex: None },
                PartLoc {
                    id: ObjectId(2),
                    size: 5,
                    md5: [2; 16],
                    checksum: Some(vec![1, 2]),
                    flex: Some(FlexChecksum { algorithm: FlexAlgorithm::Sha1, value: vec![3; 20], parts: 0 }),
                },
            ]),
            15,
        ),
        ObjectMeta {
            remote: Some(RemoteVersion { etag: "abc-3".into(), version: Some("v1".into()) }),
            ..sample(DataLoc::Inline(b"hi".to_vec()), 2)
        },
    ];
    for m in metas {
        let enc = m.encode();
        assert_eq!(ObjectMeta::decode(&enc).unwrap(), m);
        assert_eq!(ObjectMeta::decode_epoch(&enc).unwrap(), 42);
        // Listings read the ETag from the record's head: a cached copy lists the remote's.
        assert_eq!(ObjectMeta::decode_summary(&enc).unwrap(), (m.size, m.mtime_ms, m.etag()));
        // Every strict prefix is rejected, never a panic.
        for cut in 0..enc.len() {
            assert!(ObjectMeta::decode(&enc[..cut]).is_err());
        }
    }
}

#[test]
fn etag_shape() {
    let mut m = sample(DataLoc::Inline(vec![]), 0);
    m.md5 = [0xab; 16];
    assert_eq!(m.etag(), "ab".repeat(16));
    m.etag_parts = 3;
    assert_eq!(m.etag(), format!("{}-3", "ab".repeat(16)));
}

#[test]
fn upload_and_part_round_trip() {
    let u = UploadMeta {
        created_ms: 9,
        initiator: "AK".into(),
        checksum: ChecksumKind::Md5,
        flex: Some((FlexAlgorithm::Sha256, FlexType::FullObject)),
        system: SystemMeta { content_type: Some("a/b".into()), ..Default::default() },
        user: vec![("k".into(), "v".into())],
        acl: CannedAcl::AuthenticatedRead,
        tags: vec![("t".into(), "u".into())],
        lock: ObjectLock { retention: Some(Retention { mode: LockMode::Governance, until_ms: 5 }), legal_hold: false },
    };
    assert_eq!(UploadMeta::decode(&u.encode()).unwrap(), u);
    let p = PartMeta {
        id: ObjectId(77),
        size: 5 << 20,
        md5: [3; 16],
        mtime_ms: 11,
        stored_checksum: vec![1, 2],
        flex_checksum: Some(FlexChecksum { algorithm: FlexAlgorithm::Crc32c, value: vec![4; 4], parts: 0 }),
    };
    let enc = p.encode();
    assert_eq!(PartMeta::decode(&enc).unwrap(), p);
    for cut in 0..enc.len() {
        assert!(PartMeta::decode(&enc[..cut]).is_err());
    }
}

#[test]
fn bucket_round_trips() {
    let b = BucketMeta {
        created_ms: 5,
        owner: "AK".into(),
        versioning: Versioning::Suspended,
        checksum: ChecksumKind::Crc32c,
        validate_on_read: true,
        acl: CannedAcl::AuthenticatedRead,
        policy: BucketPolicy::PublicRead,
        incarnation: 0xfeed,
        location: "eu-west-1".into(),
        backend: Some(RemoteBucket { backend: "up".into(), bucket: "data".into() }),
        validate_warm_get: true,
        copies: 3,
        tags: vec![("a".into(), "b".into())],
        object_lock: true,
        default_retention: Some(DefaultRetention { mode: LockMode::Compliance, amount: 3, years: true }),
        lifecycle: Some(Lifecycle {
            rules: vec![LifecycleRule {
                id: "x".into(),
                enabled: true,
                filter: RuleFilter::default(),
                expiration: Some(Expiration::ExpiredObjectDeleteMarker),
                noncurrent_days: Some(1),
                newer_noncurrent: None,
                abort_upload_days: None,
            }],
        }),
        access_policy: Some(std::sync::Arc::new(
            policy::Policy::parse(
                r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}}"#,
                "b",
            )
            .unwrap(),
        )),
        public_access_block: Some(PublicAccessBlock { ignore_public_acls: true, ..Default::default() }),
        cors: Some(Cors {
            rules: vec![CorsRule {
                id: Some("r".into()),
                allowed_methods: vec!["GET".into(), "PUT".into()],
                allowed_origins: vec!["https://*.example.com".into()],
                allowed_headers: vec!["*".into()],
                expose_headers: vec!["ETag".into()],
                max_age_secs: Some(600),
            }],
        }),
        ownership: Some(Ownership::BucketOwnerPreferred),
        grants: vec![Grant { grantee: Grantee::LogDelivery, permission: Permission::Write }],
    };
    let enc = b.encode();
    assert_eq!(BucketMeta::decode(&enc).unwrap(), b);
    for cut in 0..enc.len() {
        assert!(BucketMeta::decode(&enc[..cut]).is_err());
    }
    assert!(BucketMeta::decode(&[4]).is_err());
}

/// Records written by the format-1 encoder (before D24) still read, with their defaults.
#[test]
fn format_1_records_still_decode() {
    let mut w = Writer(Vec::new());
    w.u8(1);
    w.u64(3);
    w.u64(1_700_000_000_000);
    w.raw(&[9; 16]);
    w.u32(0);
    w.u8(ChecksumKind::Xxhash.code());
    w.bytes(&[1; 8]);
    write_headers(&mut w, &SystemMeta { content_type: Some("a/b".into()), ..Default::default() }, &[]);
    w.u8(0);
    w.u8(0);
    w.bytes(b"abc");
    let m = ObjectMeta::decode(&w.0).unwrap();
    assert_eq!((m.size, m.epoch, m.acl, m.upload_id.as_deref()), (3, 0, CannedAcl::Private, None));
    assert_eq!(ObjectMeta::decode_epoch(&w.0).unwrap(), 0);
    assert_eq!(m.data, DataLoc::Inline(b"abc".to_vec()));
    assert_eq!(ObjectMeta::decode_summary(&w.0).unwrap().0, 3);

    // A format-1 public-read bucket let anyone read its objects: it keeps doing so.
    let bucket = |acl: u8| {
        let mut w = Writer(Vec::new());
        w.u8(1);
        w.u64(5);
        w.bytes(b"AK");
        w.u8(1);
        w.u8(ChecksumKind::Md5.code());
        w.u8(0);
        w.u8(acl);
        w.0
    };
    let b = BucketMeta::decode(&bucket(1)).unwrap();
    assert_eq!(
        (b.acl, b.policy, b.incarnation, b.location.as_str()),
        (CannedAcl::PublicRead, BucketPolicy::PublicRead, 0, "")
    );
    assert_eq!(BucketMeta::decode(&bucket(0)).unwrap().policy, BucketPolicy::None);
    assert!(BucketMeta::decode(&bucket(2)).is_err());

    let mut w = Writer(Vec::new());
    w.u8(1);
    w.u64(9);
    w.bytes(b"AK");
    w.u8(ChecksumKind::Md5.code());
    w.u8(0);
    write_headers(&mut w, &SystemMeta::default(), &[]);
    assert_eq!(UploadMeta::decode(&w.0).unwrap().acl, CannedAcl::Private);
}

#[test]
fn inconsistent_records_are_rejected() {
    let m = sample(DataLoc::Inline(b"abc".to_vec()), 4);
    assert!(m.check().is_err());
}
