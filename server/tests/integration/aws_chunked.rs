//! aws-chunked request bodies byte for byte: unsigned with a trailer checksum, signed chunks,
//! signed chunks with a signed trailer, inside HTTP chunked framing, and hostile variants.

use std::io::Write;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use keel::s3::auth::{hmac, signing_key};
use sha2::{Digest, Sha256};

use crate::common::{AK, SK, Server, amz_now, data_files, read_response};

// Written out here, not taken from keel: the test checks keel against the published value.
const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

struct Signed {
    headers: Vec<(String, String)>,
    key: [u8; 32],
    date: String,
    scope: String,
    seed: String,
}

/// Signs the head of a streaming PUT the way minio-go and the AWS SDKs do.
fn sign_head(s: &Server, target: &str, content_sha: &str, decoded: usize, trailer: Option<&str>) -> Signed {
    let date = amz_now();
    let mut hs: Vec<(String, String)> = vec![
        ("host".into(), s.addr.clone()),
        ("content-encoding".into(), "aws-chunked".into()),
        ("x-amz-content-sha256".into(), content_sha.into()),
        ("x-amz-date".into(), date.clone()),
        ("x-amz-decoded-content-length".into(), decoded.to_string()),
    ];
    if let Some(t) = trailer {
        hs.push(("x-amz-trailer".into(), t.into()));
    }
    hs.sort();
    let signed: Vec<&str> = hs.iter().map(|(k, _)| k.as_str()).collect();
    let signed = signed.join(";");
    let lookup = |n: &str| hs.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let creq = keel::s3::auth::canonical_request("PUT", path, query, &signed, lookup, content_sha, false).unwrap();
    let scope = format!("{}/us-east-1/s3/aws4_request", &date[..8]);
    let sts = keel::s3::auth::string_to_sign(&date, &scope, &creq);
    let key = signing_key(SK, &date[..8], "us-east-1", "s3");
    let seed = hex::encode(hmac(&key, sts.as_bytes()));
    hs.push((
        "authorization".into(),
        format!("AWS4-HMAC-SHA256 Credential={AK}/{scope},SignedHeaders={signed},Signature={seed}"),
    ));
    Signed { headers: hs, key, date, scope, seed }
}

/// Body chunks with their signatures chained from the seed.
fn signed_body(sig: &Signed, data: &[u8], chunk: usize, trailer: Option<(&str, &str)>) -> Vec<u8> {
    let mut prev = sig.seed.clone();
    let mut out = Vec::new();
    let mut pieces: Vec<&[u8]> = data.chunks(chunk).collect();
    pieces.push(b"");
    for piece in pieces {
        let sts = format!(
            "AWS4-HMAC-SHA256-PAYLOAD\n{}\n{}\n{prev}\n{EMPTY}\n{}",
            sig.date,
            sig.scope,
            hex::encode(Sha256::digest(piece))
        );
        let s = hex::encode(hmac(&sig.key, sts.as_bytes()));
        out.extend_from_slice(format!("{:x};chunk-signature={s}\r\n", piece.len()).as_bytes());
        out.extend_from_slice(piece);
        if !piece.is_empty() {
            out.extend_from_slice(b"\r\n");
        }
        prev = s;
    }
    match trailer {
        None => out.extend_from_slice(b"\r\n"),
        Some((name, value)) => {
            let text = format!("{name}:{value}\n");
            let sts = format!(
                "AWS4-HMAC-SHA256-TRAILER\n{}\n{}\n{prev}\n{}",
                sig.date,
                sig.scope,
                hex::encode(Sha256::digest(text.as_bytes()))
            );
            let s = hex::encode(hmac(&sig.key, sts.as_bytes()));
            out.extend_from_slice(format!("{name}:{value}\r\nx-amz-trailer-signature:{s}\r\n\r\n").as_bytes());
        }
    }
    out
}

fn send(
    s: &Server,
    target: &str,
    headers: &[(String, String)],
    body: &[u8],
    http_chunked: bool,
) -> crate::common::Resp {
    let mut raw = format!("PUT {target} HTTP/1.1\r\n");
    for (k, v) in headers {
        raw.push_str(&format!("{k}: {v}\r\n"));
    }
    if http_chunked {
        raw.push_str("transfer-encoding: chunked\r\n\r\n");
    } else {
        raw.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
    }
    let mut bytes = raw.into_bytes();
    if http_chunked {
        for piece in body.chunks(1000) {
            bytes.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
            bytes.extend_from_slice(piece);
            bytes.extend_from_slice(b"\r\n");
        }
        bytes.extend_from_slice(b"0\r\n\r\n");
    } else {
        bytes.extend_from_slice(body);
    }
    let mut c = s.connect();
    c.write_all(&bytes).unwrap();
    read_response(&mut c, false)
}

fn crc32_b64(data: &[u8]) -> String {
    B64.encode(engine::FlexAlgorithm::Crc32.digest(data))
}

fn unsigned_body(data: &[u8], chunk: usize, trailer: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for piece in data.chunks(chunk) {
        out.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        out.extend_from_slice(piece);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("0\r\n{trailer}\r\n\r\n").as_bytes());
    out
}

#[test]
fn unsigned_payload_with_trailer_checksum() {
    let s = Server::start();
    assert_eq!(s.req("PUT", "/awsc", &[], b"").status, 200);
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
    for (chunked, key) in [(false, "plain"), (true, "wrapped")] {
        let target = format!("/awsc/{key}");
        let sig =
            sign_head(&s, &target, "STREAMING-UNSIGNED-PAYLOAD-TRAILER", data.len(), Some("x-amz-checksum-crc32"));
        let body = unsigned_body(&data, 65_536, &format!("x-amz-checksum-crc32:{}", crc32_b64(&data)));
        let r = send(&s, &target, &sig.headers, &body, chunked);
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.header("x-amz-checksum-crc32"), Some(crc32_b64(&data).as_str()));
        let g = s.req("GET", &target, &[("x-amz-checksum-mode", "ENABLED")], b"");
        assert_eq!(g.body, data);
        assert_eq!(g.header("x-amz-checksum-crc32"), Some(crc32_b64(&data).as_str()));
        // Stored checksums come back only when asked for, and never on a partial answer.
        let plain = s.req("GET", &target, &[], b"");
        assert_eq!((plain.header("x-amz-checksum-crc32"), plain.header("x-amz-checksum-type")), (None, None));
        let head = s.req("HEAD", &target, &[], b"");
        assert_eq!(head.header("x-amz-checksum-crc32"), None);
        let ranged = s.req("GET", &target, &[("x-amz-checksum-mode", "ENABLED"), ("Range", "bytes=0-9")], b"");
        assert_eq!((ranged.status, ranged.header("x-amz-checksum-crc32")), (206, None));
        assert_eq!(s.req("HEAD", &target, &[], b"").header("content-encoding"), None, "aws-chunked is not stored");
    }
    // A wrong trailer checksum: refused, nothing stored.
    let sig =
        sign_head(&s, "/awsc/bad", "STREAMING-UNSIGNED-PAYLOAD-TRAILER", data.len(), Some("x-amz-checksum-crc32"));
    let body = unsigned_body(&data, 65_536, "x-amz-checksum-crc32:AAAAAA==");
    let r = send(&s, "/awsc/bad", &sig.headers, &body, false);
    assert_eq!(r.xml("Code").as_deref(), Some("BadDigest"), "{}", r.text());
    assert_eq!(s.req("HEAD", "/awsc/bad", &[], b"").status, 404);
    // A promised trailer that never comes.
    let body = unsigned_body(&data, 65_536, "x-amz-other:1");
    let r = send(&s, "/awsc/bad", &sig.headers, &body, false);
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(s.req("HEAD", "/awsc/bad", &[], b"").status, 404);
    // Decoded length shorter than announced.
    let sig =
        sign_head(&s, "/awsc/bad", "STREAMING-UNSIGNED-PAYLOAD-TRAILER", data.len() + 1, Some("x-amz-checksum-crc32"));
    let body = unsigned_body(&data, 65_536, &format!("x-amz-checksum-crc32:{}", crc32_b64(&data)));
    assert_eq!(send(&s, "/awsc/bad", &sig.headers, &body, false).xml("Code").as_deref(), Some("IncompleteBody"));
    assert_eq!(s.req("HEAD", "/awsc/bad", &[], b"").status, 404);
    assert_eq!(data_files(&s), 2);
}

#[test]
fn signed_chunks_are_verified() {
    let s = Server::start();
    assert_eq!(s.req("PUT", "/signed", &[], b"").status, 200);
    let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    for (chunked, key) in [(false, "a"), (true, "b")] {
        let target = format!("/signed/{key}");
        let sig = sign_head(&s, &target, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", data.len(), None);
        let body = signed_body(&sig, &data, 65_536, None);
        let r = send(&s, &target, &sig.headers, &body, chunked);
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(s.req("GET", &target, &[], b"").body, data);
    }
    // One flipped byte in the second chunk: the chain breaks, nothing is stored.
    let sig = sign_head(&s, "/signed/bad", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", data.len(), None);
    let mut body = signed_body(&sig, &data, 65_536, None);
    let pos = body.len() / 2;
    body[pos] ^= 1;
    let r = send(&s, "/signed/bad", &sig.headers, &body, false);
    assert_eq!(r.xml("Code").as_deref(), Some("SignatureDoesNotMatch"), "{}", r.text());
    assert_eq!(s.req("HEAD", "/signed/bad", &[], b"").status, 404);
    // Chunks signed for another request (another seed) are refused.
    let other = sign_head(&s, "/signed/other", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", data.len(), None);
    let body = signed_body(&other, &data, 65_536, None);
    assert_eq!(
        send(&s, "/signed/bad", &sig.headers, &body, false).xml("Code").as_deref(),
        Some("SignatureDoesNotMatch")
    );
    // A truncated stream: 400, nothing stored.
    let body = signed_body(&sig, &data, 65_536, None);
    let mut raw_headers = sig.headers.clone();
    raw_headers.push(("content-length".into(), body.len().to_string()));
    let mut head = "PUT /signed/bad HTTP/1.1\r\n".to_owned();
    for (k, v) in &raw_headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let mut c = s.connect();
    c.write_all(head.as_bytes()).unwrap();
    c.write_all(&body[..body.len() / 2]).unwrap();
    c.shutdown(std::net::Shutdown::Write).unwrap();
    let r = read_response(&mut c, false);
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(s.req("HEAD", "/signed/bad", &[], b"").status, 404);
    assert_eq!(data_files(&s), 2);
}

#[test]
fn signed_chunks_with_signed_trailer() {
    let s = Server::start();
    assert_eq!(s.req("PUT", "/strail", &[], b"").status, 200);
    let data = vec![42u8; 100_000];
    let crc = crc32_b64(&data);
    let sig = sign_head(
        &s,
        "/strail/k",
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
        data.len(),
        Some("x-amz-checksum-crc32"),
    );
    let body = signed_body(&sig, &data, 30_000, Some(("x-amz-checksum-crc32", &crc)));
    let r = send(&s, "/strail/k", &sig.headers, &body, false);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-amz-checksum-crc32"), Some(crc.as_str()));
    // A trailer changed after signing.
    let sig = sign_head(
        &s,
        "/strail/bad",
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
        data.len(),
        Some("x-amz-checksum-crc32"),
    );
    let body = signed_body(&sig, &data, 30_000, Some(("x-amz-checksum-crc32", &crc)));
    let text = String::from_utf8_lossy(&body).replace(&crc, "AAAAAA==");
    let r = send(&s, "/strail/bad", &sig.headers, text.as_bytes(), false);
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(s.req("HEAD", "/strail/bad", &[], b"").status, 404);
}
