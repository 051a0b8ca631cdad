//! Criterion benches of the pieces on the request path, with `Throughput::Bytes` where bytes
//! flow: hashes, request-head parsing, SigV4 verification, range parsing, the XML of a listing
//! page, and engine PUT/GET in process.
//!
//! `cargo bench -p keel-benches --bench pieces`

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use engine::{FlexAlgorithm, PutOptions, Store, StoreConfig, SyncMode};
use md5::Digest;

fn hashes(c: &mut Criterion) {
    let data = vec![0x5au8; 1 << 20];
    let mut g = c.benchmark_group("hash_1MiB");
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.bench_function("md5", |b| b.iter(|| md5::Md5::digest(black_box(&data))));
    g.bench_function("md5_fast", |b| b.iter(|| fast_md5::digest(black_box(&data))));
    g.bench_function("xxh3", |b| b.iter(|| xxhash_rust::xxh3::xxh3_64(black_box(&data))));
    g.bench_function("crc32c", |b| b.iter(|| crc32c::crc32c(black_box(&data))));
    for alg in [FlexAlgorithm::Crc32, FlexAlgorithm::Crc64Nvme, FlexAlgorithm::Sha256] {
        g.bench_function(alg.name(), |b| b.iter(|| alg.digest(black_box(&data))));
    }
    g.finish();
}

const HEAD: &[u8] = b"PUT /bucket/some/key.bin?partNumber=3&uploadId=0123456789abcdef0123456789ab HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nAccept-Encoding: identity\r\nUser-Agent: Boto3/1.44.8 md/Botocore#1.44.8 ua/2.1 os/linux lang/python#3.11.7\r\nExpect: 100-continue\r\nx-amz-checksum-crc32: DUoRhQ==\r\nx-amz-sdk-checksum-algorithm: CRC32\r\nX-Amz-Date: 20261125T191154Z\r\nX-Amz-Content-SHA256: UNSIGNED-PAYLOAD\r\nAuthorization: AWS4-HMAC-SHA256 Credential=AK/20261125/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-checksum-crc32;x-amz-content-sha256;x-amz-date;x-amz-sdk-checksum-algorithm, Signature=3b3e93024bbee7a2dd25d2a8f6a9ee9e6a244a57c09d0ea5ed14a14274a411d9\r\nContent-Length: 11\r\n\r\n";

/// A GET signed the way boto3 signs it, with the signature computed here.
fn signed_get() -> String {
    let headers = [
        ("host", "127.0.0.1:8080"),
        ("x-amz-content-sha256", keel::s3::auth::EMPTY_SHA256),
        ("x-amz-date", "20261125T191154Z"),
    ];
    let signed = "host;x-amz-content-sha256;x-amz-date";
    let creq = keel::s3::auth::canonical_request(
        "GET",
        "/bucket/dataset/shard-000123.tar",
        "",
        signed,
        |n| headers.iter().find(|(k, _)| *k == n).map(|(_, v)| (*v).to_owned()),
        headers[1].1,
        false,
    )
    .unwrap();
    let sts = keel::s3::auth::string_to_sign("20261125T191154Z", "20261125/us-east-1/s3/aws4_request", &creq);
    let sig = hex::encode(keel::s3::auth::hmac(
        &keel::s3::auth::signing_key("secret", "20261125", "us-east-1", "s3"),
        sts.as_bytes(),
    ));
    format!(
        "GET /bucket/dataset/shard-000123.tar HTTP/1.1\r\nHost: {}\r\nAccept-Encoding: identity\r\n\
         User-Agent: Boto3/1.44.8 md/Botocore#1.44.8 ua/2.1 os/linux lang/python#3.11.7\r\n\
         X-Amz-Date: {}\r\nX-Amz-Content-SHA256: {}\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential=AK/20261125/us-east-1/s3/aws4_request, \
         SignedHeaders={signed}, Signature={sig}\r\n\r\n",
        headers[0].1, headers[2].1, headers[1].1
    )
}

fn http(c: &mut Criterion) {
    let mut g = c.benchmark_group("request");
    g.throughput(Throughput::Bytes(HEAD.len() as u64));
    g.bench_function("head_parse", |b| b.iter(|| keel::http::Request::parse(black_box(HEAD)).unwrap()));
    let (req, _) = keel::http::Request::parse(HEAD).unwrap();
    g.bench_function("sigv4_canonical_and_sign", |b| {
        b.iter(|| {
            let creq = keel::s3::auth::canonical_request(
                &req.method_raw,
                &req.path,
                &req.query,
                "host;x-amz-checksum-crc32;x-amz-content-sha256;x-amz-date;x-amz-sdk-checksum-algorithm",
                |n| req.header_joined(n),
                "UNSIGNED-PAYLOAD",
                false,
            )
            .unwrap();
            let sts = keel::s3::auth::string_to_sign("20261125T191154Z", "20261125/us-east-1/s3/aws4_request", &creq);
            let key = keel::s3::auth::signing_key("secret", "20261125", "us-east-1", "s3");
            keel::s3::auth::hmac(&key, sts.as_bytes())
        })
    });
    // The whole check of a signed GET as boto3 sends it (header parse, scope, canonical request,
    // string to sign, cached signing key, signature compare).
    let get = signed_get();
    let (greq, _) = keel::http::Request::parse(get.as_bytes()).unwrap();
    let creds = keel::s3::auth::Credentials::new([("AK".to_owned(), "secret".to_owned())]);
    let now = keel::time::parse_amz_date("20261125T191154Z").unwrap();
    assert!(keel::s3::auth::authenticate(&greq, &creds, false, now, None).is_ok());
    g.bench_function("sigv4_authenticate_get", |b| {
        b.iter(|| keel::s3::auth::authenticate(black_box(&greq), &creds, false, now, None).is_ok())
    });
    g.finish();
    c.bench_function("range_parse_check", |b| {
        b.iter(|| keel::s3::range::resolve(black_box(Some("bytes=1048576-2097151")), black_box(1 << 30)))
    });
    c.bench_function("xml_listing_page_1000", |b| {
        b.iter(|| {
            let mut w = keel::s3::xml::XmlWriter::new();
            w.open_root("ListBucketResult");
            for i in 0..1000 {
                w.open("Contents");
                w.elem("Key", &format!("dataset/shard-{i:06}.tar"));
                w.elem("LastModified", "2026-11-25T19:11:54.000Z");
                w.elem("ETag", "\"5eb63bbbe01eeed093cb22bb8f5acdc3\"");
                w.elem_num("Size", 1 << 30);
                w.elem("StorageClass", "STANDARD");
                w.close("Contents");
            }
            w.close("ListBucketResult");
            w.finish()
        })
    });
}

fn engine_put_get(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let rt = compio::runtime::Runtime::new().unwrap();
    let store = Store::open(&StoreConfig {
        mountpaths: vec![dir.path().join("mp")],
        sync: SyncMode::None,
        index: Default::default(),
        odirect: false,
        faults: None,
    })
    .unwrap();
    rt.block_on(store.create_bucket("bench", "bench")).unwrap();
    let mut g = c.benchmark_group("engine");
    g.sample_size(10);
    for size in [4usize << 10, 1 << 20, 64 << 20] {
        let data = vec![7u8; size];
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_with_input(BenchmarkId::new("put", size), &size, |b, _| {
            b.iter(|| {
                rt.block_on(async {
                    let mut w = store.put_writer("bench", "obj", Some(size as u64), None).unwrap();
                    for chunk in data.chunks(1 << 20) {
                        let mut buf = engine::take_buffer();
                        buf.extend_from_slice(chunk);
                        let (r, buf) = w.data().write(buf).await;
                        r.unwrap();
                        engine::give_buffer(buf);
                    }
                    w.finish(PutOptions::default()).await.unwrap()
                })
            })
        });
        g.bench_with_input(BenchmarkId::new("get", size), &size, |b, _| {
            b.iter(|| {
                rt.block_on(async {
                    let r = store.open_object("bench", "obj").await.unwrap();
                    let mut buf = engine::take_buffer();
                    let mut off = 0u64;
                    while off < r.meta.size {
                        let (n, back) = r.read_at(buf, off, 1 << 20).await;
                        buf = back;
                        off += n.unwrap() as u64;
                    }
                    engine::give_buffer(buf);
                    off
                })
            })
        });
    }
    g.finish();
}

criterion_group!(benches, hashes, http, engine_put_get);
criterion_main!(benches);
