//! Flexible checksums on the wire: which one a request asks for (`x-amz-checksum-*` headers,
//! `x-amz-sdk-checksum-algorithm`, `x-amz-trailer`), and the headers that echo them.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use engine::{FlexAlgorithm, FlexChecksum};

use sha2::Digest;

use crate::http::{Request, Response};
use crate::s3::error::{S3Error, S3ErrorCode};
use crate::s3::payload::Payload;

/// Every checksum a request body must match, read once from the request: Content-MD5, the
/// signed SHA-256 (`x-amz-content-sha256`), and the flexible checksum (`x-amz-checksum-*` with its
/// value, or `x-amz-trailer` when the value comes after the body, or only
/// `x-amz-sdk-checksum-algorithm`: compute and store, nothing to compare).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExpectedChecksums {
    pub content_md5: Option<[u8; 16]>,
    pub sha256: Option<[u8; 32]>,
    pub flex: Option<(FlexAlgorithm, FlexValue)>,
}

/// Where a flexible checksum's value comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FlexValue {
    /// The request's header, decoded.
    Header(Vec<u8>),
    /// A trailer of the aws-chunked body (resolved by the body stream once it ends).
    Trailer,
    /// None: the algorithm is only named; the checksum is computed and stored.
    Computed,
}

/// The header (and trailer) that carries a flexible checksum.
pub fn header_name(alg: FlexAlgorithm) -> &'static str {
    match alg {
        FlexAlgorithm::Crc32 => "x-amz-checksum-crc32",
        FlexAlgorithm::Crc32c => "x-amz-checksum-crc32c",
        FlexAlgorithm::Crc64Nvme => "x-amz-checksum-crc64nvme",
        FlexAlgorithm::Sha1 => "x-amz-checksum-sha1",
        FlexAlgorithm::Sha256 => "x-amz-checksum-sha256",
    }
}

fn bad_md5() -> S3Error {
    S3Error::new(S3ErrorCode::InvalidDigest, "The Content-MD5 you specified was invalid.")
}

impl ExpectedChecksums {
    /// Reads a request's checksums (a PUT's, an UploadPart's, or those of an XML body).
    pub fn from_request(req: &Request, payload: &Payload) -> Result<ExpectedChecksums, S3Error> {
        Self::read(req, payload, true)
    }

    /// As `from_request`, leaving out the flexible checksum: CompleteMultipartUpload's
    /// `x-amz-checksum-*` names the whole object's checksum, not its XML's.
    pub fn without_flex(req: &Request, payload: &Payload) -> Result<ExpectedChecksums, S3Error> {
        Self::read(req, payload, false)
    }

    fn read(req: &Request, payload: &Payload, with_flex: bool) -> Result<ExpectedChecksums, S3Error> {
        let content_md5 = match req.header("content-md5") {
            None => None,
            Some(v) => Some(B64.decode(v.trim()).ok().and_then(|b| <[u8; 16]>::try_from(b).ok()).ok_or_else(bad_md5)?),
        };
        let sha256 = match payload {
            Payload::Sha256(h) => Some(*h),
            _ => None,
        };
        if !with_flex {
            return Ok(ExpectedChecksums { content_md5, sha256, flex: None });
        }
        let mut algorithm = match req.header("x-amz-sdk-checksum-algorithm") {
            None => None,
            Some(name) => Some(
                FlexAlgorithm::parse(name)
                    .ok_or_else(|| invalid(format!("Unsupported checksum algorithm {name:?}")))?,
            ),
        };
        let mut value = None;
        for alg in FlexAlgorithm::ALL {
            let header = header_name(alg);
            let Some(v) = req.header(header) else { continue };
            if value.is_some() {
                return Err(invalid("Expecting a single x-amz-checksum- header".to_owned()));
            }
            if algorithm.is_some_and(|a| a != alg) {
                return Err(invalid(format!("{header} does not match x-amz-sdk-checksum-algorithm")));
            }
            algorithm = Some(alg);
            value = Some(FlexValue::Header(
                decode_value(alg, v).ok_or_else(|| invalid(format!("Value for {header} header is invalid.")))?,
            ));
        }
        if let Some(t) = req.header("x-amz-trailer") {
            let t = t.trim().to_ascii_lowercase();
            let alg = FlexAlgorithm::ALL
                .into_iter()
                .find(|a| t == header_name(*a))
                .ok_or_else(|| invalid(format!("Unsupported trailer {t:?}")))?;
            if value.is_some() || algorithm.is_some_and(|a| a != alg) {
                return Err(invalid("Expecting a single x-amz-checksum- header or trailer".to_owned()));
            }
            algorithm = Some(alg);
            value = Some(FlexValue::Trailer);
        }
        let flex = algorithm.map(|a| (a, value.unwrap_or(FlexValue::Computed)));
        Ok(ExpectedChecksums { content_md5, sha256, flex })
    }

    /// The flexible checksum to compute alongside the MD5.
    pub fn algorithm(&self) -> Option<FlexAlgorithm> {
        self.flex.as_ref().map(|(a, _)| *a)
    }

    /// The flexible checksum a header states, decoded (not one a trailer will bring).
    pub fn stated(&self) -> Option<Vec<u8>> {
        match &self.flex {
            Some((_, FlexValue::Header(v))) => Some(v.clone()),
            _ => None,
        }
    }

    /// Checks a whole (small, XML) body against every expectation.
    pub fn verify(&self, body: &[u8]) -> Result<(), S3Error> {
        if let Some(want) = self.content_md5
            && fast_md5::digest(body) != want
        {
            return Err(S3Error::new(
                S3ErrorCode::BadDigest,
                "The Content-MD5 you specified did not match what we received.",
            ));
        }
        if let Some(want) = self.sha256
            && sha2::Sha256::digest(body).as_slice() != want
        {
            return Err(sha256_mismatch());
        }
        if let Some((alg, FlexValue::Header(want))) = &self.flex
            && &alg.digest(body) != want
        {
            return Err(engine::Error::ChecksumMismatch { algorithm: alg.name() }.into());
        }
        Ok(())
    }
}

/// The body's SHA-256 differs from the signed `x-amz-content-sha256`.
pub fn sha256_mismatch() -> S3Error {
    S3Error::new(
        S3ErrorCode::XAmzContentSHA256Mismatch,
        "The provided 'x-amz-content-sha256' header does not match what was computed.",
    )
}

fn invalid(msg: String) -> S3Error {
    S3Error::new(S3ErrorCode::InvalidRequest, msg)
}

/// Decodes a base64 checksum of `alg`, refusing the wrong length.
pub fn decode_value(alg: FlexAlgorithm, value: &str) -> Option<Vec<u8>> {
    let v = B64.decode(value.trim()).ok()?;
    (v.len() == alg.digest_len()).then_some(v)
}

pub fn encode_value(f: &FlexChecksum) -> String {
    let mut s = B64.encode(&f.value);
    if f.parts > 0 {
        s.push('-');
        s.push_str(&f.parts.to_string());
    }
    s
}

/// The whole object's checksum a CompleteMultipartUpload states: `x-amz-checksum-<alg>`, its
/// value with the `-N` of a composite checksum or without. A value that does not decode can
/// match nothing: BadDigest, as S3 answers.
pub fn complete_expected(req: &Request) -> Result<Option<engine::ExpectedChecksum>, S3Error> {
    let mut out = None;
    for algorithm in FlexAlgorithm::ALL {
        let Some(v) = req.header(header_name(algorithm)) else { continue };
        if out.is_some() {
            return Err(invalid("Expecting a single x-amz-checksum- header".to_owned()));
        }
        let v = v.trim();
        let (b64, parts) = match v.rsplit_once('-') {
            Some((b, n)) if !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()) => (b, n.parse::<u32>().ok()),
            _ => (v, None),
        };
        let value = decode_value(algorithm, b64).ok_or_else(|| {
            S3Error::new(
                S3ErrorCode::BadDigest,
                format!("The {} you specified did not match the calculated checksum.", algorithm.name()),
            )
        })?;
        out = Some(engine::ExpectedChecksum { algorithm, value, parts });
    }
    Ok(out)
}

/// Adds `x-amz-checksum-<alg>` and `x-amz-checksum-type` for a stored checksum.
pub fn echo(resp: &mut Response, f: &FlexChecksum) {
    resp.push_header(header_name(f.algorithm), encode_value(f));
    resp.push_header("x-amz-checksum-type", if f.parts > 0 { "COMPOSITE" } else { "FULL_OBJECT" });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(headers: &str) -> Request {
        let raw = format!("PUT /b/k HTTP/1.1\r\n{headers}\r\n");
        Request::parse(raw.as_bytes()).unwrap().0
    }

    #[test]
    fn reads_headers_and_trailers() {
        let read = |h: &str| ExpectedChecksums::from_request(&req(h), &Payload::Unsigned);
        let r = read("x-amz-checksum-crc32: DUoRhQ==\r\nx-amz-sdk-checksum-algorithm: CRC32\r\n").unwrap();
        assert_eq!(r.flex, Some((FlexAlgorithm::Crc32, FlexValue::Header(vec![0x0d, 0x4a, 0x11, 0x85]))));
        let r = read("x-amz-trailer: x-amz-checksum-crc64nvme\r\n").unwrap();
        assert_eq!(r.flex, Some((FlexAlgorithm::Crc64Nvme, FlexValue::Trailer)));
        let r = read("x-amz-sdk-checksum-algorithm: SHA1\r\ncontent-md5: 1B2M2Y8AsgTpgAmY7PhCfg==\r\n").unwrap();
        assert_eq!(r.flex, Some((FlexAlgorithm::Sha1, FlexValue::Computed)));
        assert_eq!(r.content_md5, Some(*b"\xd4\x1d\x8c\xd9\x8f\x00\xb2\x04\xe9\x80\x09\x98\xec\xf8\x42\x7e"));
        assert!(r.verify(b"").is_ok() && r.verify(b"x").is_err());
        assert!(read("x-amz-checksum-crc32: AAAA\r\n").is_err());
        assert!(read("x-amz-checksum-crc32: DUoRhQ==\r\nx-amz-checksum-crc32c: DUoRhQ==\r\n").is_err());
        assert!(read("x-amz-sdk-checksum-algorithm: MD4\r\n").is_err());
        assert_eq!(read("content-md5: nope\r\n").unwrap_err().code, S3ErrorCode::InvalidDigest);
        assert_eq!(read("").unwrap(), ExpectedChecksums::default());
        for alg in FlexAlgorithm::ALL {
            assert_eq!(header_name(alg), format!("x-amz-checksum-{}", alg.suffix()));
        }
    }
}
