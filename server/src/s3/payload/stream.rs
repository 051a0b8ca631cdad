//! The body of a PUT or UploadPart, buffer by buffer: aws-chunked framing decoded where the
//! client used it, the signed SHA-256 and the chunk signatures checked, and the flexible
//! checksum's expected value resolved at the end (from its header, or from the trailer).

use iobuf::IoBuffer;
use sha2::{Digest, Sha256};

use super::{AwsChunkError, AwsChunkedDecoder, Payload};
use crate::http::Conn;
use crate::s3::call::read_error;
use crate::s3::checksum::{self, ExpectedChecksums, FlexValue};
use crate::s3::error::{S3Error, S3ErrorCode};

pub struct BodyStream {
    sha: Option<(Sha256, [u8; 32])>,
    aws: Option<Box<AwsChunkedDecoder>>,
    /// Raw aws-chunked bytes read but not decoded yet.
    raw: Option<IoBuffer>,
    /// The flexible checksum the body must match, as the request announced it.
    flex: Option<(engine::FlexAlgorithm, FlexValue)>,
}

fn aws_error(e: AwsChunkError) -> S3Error {
    match e {
        AwsChunkError::BadSignature | AwsChunkError::MissingSignature => S3Error::new(
            S3ErrorCode::SignatureDoesNotMatch,
            "The chunk signature does not match the signature we calculated.",
        ),
        e => S3Error::new(S3ErrorCode::InvalidRequest, format!("Malformed aws-chunked body: {e:?}")),
    }
}

impl BodyStream {
    /// A stream over a body the signature describes as `payload`, expected to match `expected`.
    /// A checksum promised in a trailer needs a body that can carry one.
    pub fn new(payload: &Payload, expected: &ExpectedChecksums) -> Result<BodyStream, S3Error> {
        let trailer_promised = matches!(expected.flex, Some((_, FlexValue::Trailer)));
        let aws = match payload {
            Payload::Chunked { signed, trailer } => {
                if trailer_promised && !trailer {
                    return Err(no_trailer());
                }
                Some(Box::new(AwsChunkedDecoder::new(signed.clone())))
            }
            _ if trailer_promised => return Err(no_trailer()),
            _ => None,
        };
        Ok(BodyStream { sha: expected.sha256.map(|h| (Sha256::new(), h)), aws, raw: None, flex: expected.flex.clone() })
    }

    /// Fills `buf` from the body. `Ok(true)` when the body has ended (the buffer may still hold
    /// its last bytes); hash and signature mismatches are errors before the caller commits.
    pub async fn next(&mut self, conn: &mut Conn, buf: IoBuffer) -> (Result<bool, S3Error>, IoBuffer) {
        if self.aws.is_some() {
            return self.next_aws(conn, buf).await;
        }
        let (r, buf) = conn.read_body(buf).await;
        if let Err(e) = r {
            return (Err(read_error(e)), buf);
        }
        if let Some((h, _)) = &mut self.sha {
            h.update(buf.as_slice());
        }
        let done = conn.body_done();
        if done
            && let Some((h, expected)) = self.sha.take()
            && h.finalize().as_slice() != expected
        {
            return (Err(checksum::sha256_mismatch()), buf);
        }
        (Ok(done), buf)
    }

    async fn next_aws(&mut self, conn: &mut Conn, mut out: IoBuffer) -> (Result<bool, S3Error>, IoBuffer) {
        let mut raw = self.raw.take().unwrap_or_else(iobuf::take_buffer);
        let result = loop {
            let Some(dec) = self.aws.as_mut() else { break Ok(true) };
            if !raw.is_empty() {
                match dec.decode(raw.as_slice(), out.spare_mut()) {
                    Ok((consumed, produced)) => {
                        raw.consume_front(consumed);
                        out.grow(produced);
                    }
                    Err(e) => break Err(aws_error(e)),
                }
            }
            if dec.is_done() {
                // Nothing may follow the aws-chunked terminator inside the HTTP body.
                if !raw.is_empty() || !conn.body_done() && !conn.drain_body(0).await {
                    break Err(S3Error::new(
                        S3ErrorCode::InvalidRequest,
                        "Data after the end of the aws-chunked body.",
                    ));
                }
                break Ok(true);
            }
            if out.len() == out.capacity() {
                break Ok(false);
            }
            if conn.body_done() {
                break Err(S3Error::new(S3ErrorCode::IncompleteBody, "The aws-chunked body ended early."));
            }
            let (r, back) = conn.read_body(raw).await;
            raw = back;
            if let Err(e) = r {
                break Err(read_error(e));
            }
        };
        self.raw = Some(raw);
        (result, out)
    }

    /// Once the body has ended: the flexible checksum value it must match, from the request's
    /// header or from the trailer it promised (`None`: nothing to compare).
    pub fn expected_flex(&self) -> Result<Option<Vec<u8>>, S3Error> {
        match &self.flex {
            None | Some((_, FlexValue::Computed)) => Ok(None),
            Some((_, FlexValue::Header(v))) => Ok(Some(v.clone())),
            Some((alg, FlexValue::Trailer)) => {
                let name = checksum::header_name(*alg);
                let v = self.aws.as_ref().and_then(|d| d.trailer(name)).ok_or_else(|| {
                    S3Error::new(
                        S3ErrorCode::InvalidRequest,
                        format!("The body promised a {name} trailer but did not send it."),
                    )
                })?;
                checksum::decode_value(*alg, v).map(Some).ok_or_else(|| {
                    S3Error::new(S3ErrorCode::InvalidRequest, format!("Value for {name} trailing header is invalid."))
                })
            }
        }
    }
}

fn no_trailer() -> S3Error {
    S3Error::new(
        S3ErrorCode::InvalidRequest,
        "x-amz-trailer needs an aws-chunked body with a trailer (STREAMING-...-TRAILER).",
    )
}

impl Drop for BodyStream {
    fn drop(&mut self) {
        if let Some(raw) = self.raw.take() {
            iobuf::give_buffer(raw);
        }
    }
}
