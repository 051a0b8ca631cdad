//! The S3 front end: routing, authentication, XML, errors and the operation handlers.

pub mod auth;
pub mod conditional;
pub mod dispatch;
pub mod error;
pub mod handlers;
pub mod op;
pub mod range;
pub mod xml;

use std::cell::Cell;
use std::sync::Arc;

use engine::{IoBuffer, Store};
use sha2::{Digest, Sha256};

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
    /// Smallest non-final multipart part (S3: 5 MiB; 0 accepts any size, as AIStore does).
    pub min_part_size: u64,
}

/// One shard's view of the server.
pub struct Ctx {
    pub store: Arc<Store>,
    pub config: Arc<S3Config>,
    shard: u16,
    requests: Cell<u64>,
}

impl Ctx {
    pub fn new(store: Arc<Store>, config: Arc<S3Config>, shard: u16) -> Ctx {
        Ctx { store, config, shard, requests: Cell::new(0) }
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
    ) -> Call<'a> {
        Call { ctx, conn, req, route, auth }
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

    /// Reads a whole XML body (bounded) and checks its payload hash. Empty body: `None`.
    pub async fn read_small_body(&mut self) -> Result<Vec<u8>, S3Error> {
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
            if md5::Md5::digest(&body).as_slice() != want.as_slice() {
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
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        xml::parse(&body).map(Some).map_err(|e| {
            S3Error::new(S3ErrorCode::MalformedXML, format!("The XML you provided was not well-formed: {}.", e.0))
        })
    }

    /// Starts streaming the object body: answers 100-continue and sets up payload verification.
    pub async fn body_stream(&mut self) -> Result<BodyStream, S3Error> {
        // Refuse what cannot be read before inviting the client to send it.
        let sha = match &self.auth.payload {
            Payload::Sha256(h) => Some((Sha256::new(), *h)),
            Payload::Unsigned => None,
            Payload::Streaming(kind) => {
                return Err(S3Error::new(
                    S3ErrorCode::NotImplemented,
                    format!("{kind} payloads are not supported yet"),
                ));
            }
        };
        self.send_continue().await?;
        Ok(BodyStream { sha })
    }
}

/// Reads object bodies buffer by buffer, checking the signed payload hash at the end.
pub struct BodyStream {
    sha: Option<(Sha256, [u8; 32])>,
}

impl BodyStream {
    /// Fills `buf` from the body. `Ok(true)` when the body has ended (the buffer may still hold
    /// its last bytes); a hash mismatch is an error at the end, before the caller commits.
    pub async fn next(&mut self, conn: &mut Conn, buf: IoBuffer) -> (Result<bool, S3Error>, IoBuffer) {
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
}
