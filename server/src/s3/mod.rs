//! The S3 front end: routing, authentication, XML, errors and the operation handlers.

pub mod access;
pub mod auth;
pub mod checksum;
pub mod conditional;
pub mod dispatch;
pub mod error;
pub mod handlers;
pub mod op;
pub mod range;
pub mod unimplemented;
pub mod xml;

use std::cell::Cell;
use std::sync::Arc;

use engine::{IoBuffer, Store};
use sha2::{Digest, Sha256};

use crate::http::aws_chunked::{AwsChunkError, AwsChunkedDecoder};
use crate::http::conn::ReadError;
use crate::http::{Conn, Request};
use crate::limits;
use auth::{Authenticated, Credentials, Payload};
use error::{S3Error, S3ErrorCode};
use op::Route;

/// Settings the S3 front end reads on every request.
#[derive(Clone, Debug)]
pub struct S3Config {
    /// Path prefix the API is served under (`/s3`), or empty.
    pub prefix: String,
    /// Base domain for virtual-hosted-style requests (`bucket.<domain>`).
    pub domain: Option<String>,
    pub region: String,
    pub anonymous: bool,
    pub credentials: Credentials,
    /// Check stored checksums before serving objects of every bucket (buckets can also ask for
    /// it one by one).
    pub validate_on_read: bool,
    /// Connections per shard before new ones are refused.
    pub max_connections: usize,
    /// Bodies (or ranges) at least this long are spliced; 0 never splices.
    pub splice_min: u64,
    /// Smallest non-final multipart part (S3: 5 MiB; 0 accepts any size, as AIStore does).
    pub min_part_size: u64,
    /// Time a request body gets before its minimum rate applies (`limits::BODY_GRACE`).
    pub body_grace: std::time::Duration,
}

/// One shard's view of the server.
pub struct Ctx {
    pub store: Arc<Store>,
    pub config: Arc<S3Config>,
    shard: u16,
    requests: Cell<u64>,
    /// Large object bodies go file → pipe → socket (io_uring driver and not disabled).
    pub splice: bool,
    pub metrics: Arc<crate::metrics::Metrics>,
}

impl Ctx {
    pub fn new(
        store: Arc<Store>,
        config: Arc<S3Config>,
        shard: u16,
        splice: bool,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> Ctx {
        Ctx { store, config, shard, requests: Cell::new(0), splice, metrics }
    }

    /// This shard's counters.
    pub fn shard_metrics(&self) -> &crate::metrics::ShardMetrics {
        &self.metrics.shards[self.shard as usize]
    }

    /// Requests this shard has started.
    pub fn requests_served(&self) -> u64 {
        self.requests.get()
    }

    /// A request id unique within this process run: shard and sequence, 16 hex digits.
    pub fn next_request_id(&self) -> String {
        let n = self.requests.get() + 1;
        self.requests.set(n);
        format!("{:04X}{:012X}", self.shard, n & 0xFFFF_FFFF_FFFF)
    }
}

/// Everything a handler needs for one request.
pub struct Call<'a> {
    pub ctx: &'a Ctx,
    pub conn: &'a mut Conn,
    pub req: &'a Request,
    pub route: &'a Route,
    pub auth: &'a Authenticated,
    /// What the caller may do in the bucket the request names.
    pub access: access::Access,
}

pub fn read_error(e: ReadError) -> S3Error {
    match e {
        ReadError::TimedOut => S3Error::new(
            S3ErrorCode::RequestTimeout,
            "Your socket connection to the server was not read from or written to within the timeout period.",
        ),
        ReadError::Truncated | ReadError::Closed => {
            S3Error::new(S3ErrorCode::IncompleteBody, "The request body ended before its declared length.")
        }
        ReadError::Chunked(c) => S3Error::new(S3ErrorCode::InvalidRequest, format!("Malformed chunked body: {c:?}")),
        ReadError::TooLarge => S3Error::new(S3ErrorCode::EntityTooLarge, "The request body is too large."),
        ReadError::Head(_) => S3Error::new(S3ErrorCode::InvalidRequest, "Malformed request."),
    }
}

impl<'a> Call<'a> {
    pub fn new(
        ctx: &'a Ctx,
        conn: &'a mut Conn,
        req: &'a Request,
        route: &'a Route,
        auth: &'a Authenticated,
        access: access::Access,
    ) -> Call<'a> {
        Call { ctx, conn, req, route, auth, access }
    }

    pub fn bucket(&self) -> &str {
        self.route.bucket.as_deref().unwrap_or("")
    }

    pub fn key(&self) -> &str {
        self.route.key.as_deref().unwrap_or("")
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.req.header(name)
    }

    pub fn query(&self, name: &str) -> Option<&str> {
        self.route.query.get(name)
    }

    /// Answers `Expect: 100-continue` once the request has passed its checks.
    pub async fn send_continue(&mut self) -> Result<(), S3Error> {
        self.conn.send_continue().await.map_err(read_error)
    }

    /// Reads a whole XML body (bounded) and checks its payload hash, Content-MD5 and (where the
    /// header describes this body, as on DeleteObjects and PutBucket* requests) an
    /// `x-amz-checksum-*` header.
    pub async fn read_small_body(&mut self) -> Result<Vec<u8>, S3Error> {
        let body = self.read_small_body_unchecked().await?;
        let ck = checksum::from_request(self.req)?;
        if let (Some(alg), Some(want)) = (ck.algorithm, ck.expected)
            && alg.digest(&body) != want
        {
            return Err(engine::Error::ChecksumMismatch { algorithm: alg.name() }.into());
        }
        Ok(body)
    }

    /// As `read_small_body`, without the `x-amz-checksum-*` check: CompleteMultipartUpload's
    /// header names the whole object's checksum, not its XML's.
    pub async fn read_small_body_unchecked(&mut self) -> Result<Vec<u8>, S3Error> {
        self.send_continue().await?;
        let body = self.conn.read_body_to_vec(limits::XML_BODY_BYTES_MAX).await.map_err(|e| match e {
            ReadError::TooLarge => S3Error::new(S3ErrorCode::MalformedXML, "The XML body is too large."),
            e => read_error(e),
        })?;
        if let Some(md5) = self.header("content-md5") {
            let want = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, md5.trim())
                .map_err(|_| S3Error::new(S3ErrorCode::InvalidDigest, "The Content-MD5 you specified was invalid."))?;
            if want.len() != 16 {
                return Err(S3Error::new(S3ErrorCode::InvalidDigest, "The Content-MD5 you specified was invalid."));
            }
            if fast_md5::digest(&body).as_slice() != want.as_slice() {
                return Err(S3Error::new(
                    S3ErrorCode::BadDigest,
                    "The Content-MD5 you specified did not match what we received.",
                ));
            }
        }
        if let Payload::Sha256(expected) = &self.auth.payload
            && Sha256::digest(&body).as_slice() != expected
        {
            return Err(S3Error::new(
                S3ErrorCode::XAmzContentSHA256Mismatch,
                "The provided 'x-amz-content-sha256' header does not match what was computed.",
            ));
        }
        Ok(body)
    }

    /// Parses the XML body; an empty body is `None`.
    pub async fn read_xml(&mut self) -> Result<Option<xml::Element>, S3Error> {
        let body = self.read_small_body().await?;
        Self::parse_xml(&body)
    }

    /// As `read_xml`, for CompleteMultipartUpload (see `read_small_body_unchecked`).
    pub async fn read_complete_xml(&mut self) -> Result<Option<xml::Element>, S3Error> {
        let body = self.read_small_body_unchecked().await?;
        Self::parse_xml(&body)
    }

    fn parse_xml(body: &[u8]) -> Result<Option<xml::Element>, S3Error> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        xml::parse(body).map(Some).map_err(|e| {
            S3Error::new(S3ErrorCode::MalformedXML, format!("The XML you provided was not well-formed: {}.", e.0))
        })
    }

    /// Starts streaming the object body: answers 100-continue and sets up payload verification
    /// (the signed SHA-256, or the aws-chunked decoder with its chunk signatures).
    pub async fn body_stream(&mut self) -> Result<BodyStream, S3Error> {
        // Refuse what cannot be read before inviting the client to send it.
        let (sha, aws) = match &self.auth.payload {
            Payload::Sha256(h) => (Some((Sha256::new(), *h)), None),
            Payload::Unsigned => (None, None),
            Payload::Streaming(kind) => match kind.as_str() {
                "STREAMING-UNSIGNED-PAYLOAD-TRAILER" => (None, Some(AwsChunkedDecoder::new(None))),
                "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" | "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER" => {
                    // Anonymous servers ignore signatures, chunk signatures included.
                    (None, Some(AwsChunkedDecoder::new(self.auth.signer.clone())))
                }
                _ => {
                    return Err(S3Error::new(
                        S3ErrorCode::NotImplemented,
                        format!("{kind} payloads are not supported"),
                    ));
                }
            },
        };
        self.send_continue().await?;
        Ok(BodyStream { sha, aws: aws.map(Box::new), raw: None })
    }

    /// The payload length the client declared: `x-amz-decoded-content-length` for aws-chunked
    /// bodies, Content-Length otherwise. Refuses a body-less PUT without one.
    pub fn declared_length(&self) -> Result<Option<u64>, S3Error> {
        let missing =
            || S3Error::new(S3ErrorCode::MissingContentLength, "You must provide the Content-Length HTTP header.");
        if matches!(self.auth.payload, Payload::Streaming(_)) {
            let v = self.header("x-amz-decoded-content-length").ok_or_else(missing)?;
            return v.trim().parse::<u64>().map(Some).map_err(|_| {
                S3Error::new(S3ErrorCode::InvalidArgument, "x-amz-decoded-content-length must be a number")
            });
        }
        if self.req.framing == crate::http::Framing::None && self.header("content-length").is_none() {
            return Err(missing());
        }
        Ok(self.req.content_length())
    }
}

/// Reads object bodies buffer by buffer: decodes aws-chunked framing where the client used it,
/// checks the signed payload hash and chunk signatures, and keeps the trailers.
pub struct BodyStream {
    sha: Option<(Sha256, [u8; 32])>,
    aws: Option<Box<AwsChunkedDecoder>>,
    /// Raw aws-chunked bytes read but not decoded yet.
    raw: Option<IoBuffer>,
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
            return (
                Err(S3Error::new(
                    S3ErrorCode::XAmzContentSHA256Mismatch,
                    "The provided 'x-amz-content-sha256' header does not match what was computed.",
                )),
                buf,
            );
        }
        (Ok(done), buf)
    }

    async fn next_aws(&mut self, conn: &mut Conn, mut out: IoBuffer) -> (Result<bool, S3Error>, IoBuffer) {
        let mut raw = self.raw.take().unwrap_or_else(engine::take_buffer);
        let result = loop {
            let dec = self.aws.as_mut().expect("aws-chunked body");
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

    /// A trailer of an aws-chunked body (lowercase name), once the body has ended.
    pub fn trailer(&self, name: &str) -> Option<&str> {
        self.aws.as_ref().and_then(|d| d.trailer(name))
    }

    /// Payload bytes decoded from an aws-chunked body.
    pub fn decoded(&self) -> Option<u64> {
        self.aws.as_ref().map(|d| d.decoded)
    }
}

impl Drop for BodyStream {
    fn drop(&mut self) {
        if let Some(raw) = self.raw.take() {
            engine::give_buffer(raw);
        }
    }
}
