//! Flexible checksums on the wire: which one a request asks for (`x-amz-checksum-*` headers,
//! `x-amz-sdk-checksum-algorithm`, `x-amz-trailer`), and the headers that echo them.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use engine::{FlexAlgorithm, FlexChecksum};

use crate::http::{Request, Response};
use crate::s3::error::{S3Error, S3ErrorCode};

/// The flexible checksum a request body comes with.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestChecksum {
    pub algorithm: Option<FlexAlgorithm>,
    /// The value from an `x-amz-checksum-*` header, decoded.
    pub expected: Option<Vec<u8>>,
    /// The value arrives in a trailer of an aws-chunked body instead.
    pub trailer: bool,
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

/// Reads what a PUT, UploadPart or CompleteMultipartUpload says about its checksum.
pub fn from_request(req: &Request) -> Result<RequestChecksum, S3Error> {
    let mut out = RequestChecksum::default();
    if let Some(name) = req.header("x-amz-sdk-checksum-algorithm") {
        out.algorithm = Some(
            FlexAlgorithm::parse(name).ok_or_else(|| invalid(format!("Unsupported checksum algorithm {name:?}")))?,
        );
    }
    for alg in FlexAlgorithm::ALL {
        let header = format!("x-amz-checksum-{}", alg.suffix());
        let Some(v) = req.header(&header) else { continue };
        if out.expected.is_some() {
            return Err(invalid("Expecting a single x-amz-checksum- header".to_owned()));
        }
        if out.algorithm.is_some_and(|a| a != alg) {
            return Err(invalid(format!("{header} does not match x-amz-sdk-checksum-algorithm")));
        }
        out.algorithm = Some(alg);
        out.expected =
            Some(decode_value(alg, v).ok_or_else(|| invalid(format!("Value for {header} header is invalid.")))?);
    }
    if let Some(t) = req.header("x-amz-trailer") {
        let t = t.trim().to_ascii_lowercase();
        let alg = FlexAlgorithm::ALL
            .into_iter()
            .find(|a| t == format!("x-amz-checksum-{}", a.suffix()))
            .ok_or_else(|| invalid(format!("Unsupported trailer {t:?}")))?;
        if out.expected.is_some() || out.algorithm.is_some_and(|a| a != alg) {
            return Err(invalid("Expecting a single x-amz-checksum- header or trailer".to_owned()));
        }
        out.algorithm = Some(alg);
        out.trailer = true;
    }
    Ok(out)
}

/// The whole object's checksum a CompleteMultipartUpload states: `x-amz-checksum-<alg>`, its
/// value with the `-N` of a composite checksum or without. A value that does not decode can
/// match nothing: BadDigest, as S3 answers.
pub fn complete_expected(req: &Request) -> Result<Option<engine::ExpectedChecksum>, S3Error> {
    let mut out = None;
    for algorithm in FlexAlgorithm::ALL {
        let header = format!("x-amz-checksum-{}", algorithm.suffix());
        let Some(v) = req.header(&header) else { continue };
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
    resp.push_header(format!("x-amz-checksum-{}", f.algorithm.suffix()), encode_value(f));
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
        let r =
            from_request(&req("x-amz-checksum-crc32: DUoRhQ==\r\nx-amz-sdk-checksum-algorithm: CRC32\r\n")).unwrap();
        assert_eq!(r.algorithm, Some(FlexAlgorithm::Crc32));
        assert_eq!(r.expected, Some(vec![0x0d, 0x4a, 0x11, 0x85]));
        let r = from_request(&req("x-amz-trailer: x-amz-checksum-crc64nvme\r\n")).unwrap();
        assert_eq!((r.algorithm, r.trailer), (Some(FlexAlgorithm::Crc64Nvme), true));
        assert!(from_request(&req("x-amz-checksum-crc32: AAAA\r\n")).is_err());
        assert!(from_request(&req("x-amz-checksum-crc32: DUoRhQ==\r\nx-amz-checksum-crc32c: DUoRhQ==\r\n")).is_err());
        assert!(from_request(&req("x-amz-sdk-checksum-algorithm: MD4\r\n")).is_err());
        assert_eq!(from_request(&req("")).unwrap(), RequestChecksum::default());
    }
}
