//! One request as a handler sees it: the connection, the routed request, who sent it, what they
//! may do; and reading its (small) body.

use crate::http::conn::ReadError;
use crate::http::{Conn, Request};
use crate::limits;
use crate::s3::access;
use crate::s3::auth::Authenticated;
use crate::s3::checksum::ExpectedChecksums;
use crate::s3::ctx::Ctx;
use crate::s3::error::{S3Error, S3ErrorCode};
use crate::s3::op::Route;
use crate::s3::payload::BodyStream;
use crate::s3::xml;

/// Everything a handler needs for one request.
pub struct Call<'a> {
    pub ctx: &'a Ctx,
    pub conn: &'a mut Conn,
    pub req: &'a Request,
    pub route: &'a Route,
    pub auth: &'a Authenticated,
    /// What the caller may do in the bucket the request names.
    pub access: access::Access,
    /// The request's id (`x-amz-request-id`), for error documents a handler writes itself.
    pub request_id: &'a str,
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
        (auth, access): (&'a Authenticated, access::Access),
        request_id: &'a str,
    ) -> Call<'a> {
        Call { ctx, conn, req, route, auth, access, request_id }
    }

    pub fn bucket(&self) -> &str {
        self.route.bucket.as_deref().unwrap_or("")
    }

    pub fn key(&self) -> &str {
        self.route.key.as_deref().unwrap_or("")
    }

    /// The version the request names (`?versionId=`; checked when it was routed).
    pub fn version(&self) -> Option<engine::VersionRef> {
        let q = crate::http::uri::Query::parse(&self.req.query)?;
        crate::s3::params::version(&q).ok().flatten()
    }

    /// Whether the bucket keeps versions (its answers then name them: `x-amz-version-id`).
    pub fn versioned(&self) -> bool {
        self.ctx.store.versioning_of(self.bucket()) != engine::Versioning::Unset
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.req.header(name)
    }

    /// Answers `Expect: 100-continue` once the request has passed its checks.
    pub async fn send_continue(&mut self) -> Result<(), S3Error> {
        self.conn.send_continue().await.map_err(read_error)
    }

    /// Reads a whole XML body (bounded) and checks it against the request's checksums: its
    /// payload hash, Content-MD5 and (where the header describes this body, as on DeleteObjects
    /// and PutBucket* requests) an `x-amz-checksum-*` header.
    pub async fn read_small_body(&mut self) -> Result<Vec<u8>, S3Error> {
        self.read_small_body_checked(true).await
    }

    async fn read_small_body_checked(&mut self, with_flex: bool) -> Result<Vec<u8>, S3Error> {
        let expected = if with_flex {
            ExpectedChecksums::from_request(self.req, &self.auth.payload)?
        } else {
            ExpectedChecksums::without_flex(self.req, &self.auth.payload)?
        };
        self.send_continue().await?;
        let body = self.conn.read_body_to_vec(limits::XML_BODY_BYTES_MAX).await.map_err(|e| match e {
            ReadError::TooLarge => S3Error::new(S3ErrorCode::MalformedXML, "The XML body is too large."),
            e => read_error(e),
        })?;
        expected.verify(&body)?;
        Ok(body)
    }

    /// Parses the XML body; an empty body is `None`.
    pub async fn read_xml(&mut self) -> Result<Option<xml::Element>, S3Error> {
        let body = self.read_small_body().await?;
        Self::parse_xml(&body)
    }

    /// As `read_xml`, for CompleteMultipartUpload, whose `x-amz-checksum-*` header names the
    /// whole object's checksum, not its XML's.
    pub async fn read_complete_xml(&mut self) -> Result<Option<xml::Element>, S3Error> {
        let body = self.read_small_body_checked(false).await?;
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

    /// Starts streaming the object body: sets up payload verification (the signed SHA-256, or
    /// the aws-chunked decoder with its chunk signatures, and where the flexible checksum's value
    /// will come from), then answers 100-continue. What cannot be read is refused first.
    pub async fn body_stream(&mut self, expected: &ExpectedChecksums) -> Result<BodyStream, S3Error> {
        let stream = BodyStream::new(&self.auth.payload, expected)?;
        self.send_continue().await?;
        Ok(stream)
    }

    /// The payload length the client declared: `x-amz-decoded-content-length` for aws-chunked
    /// bodies, Content-Length otherwise. Refuses a body-less PUT without one.
    pub fn declared_length(&self) -> Result<Option<u64>, S3Error> {
        let missing =
            || S3Error::new(S3ErrorCode::MissingContentLength, "You must provide the Content-Length HTTP header.");
        if self.auth.payload.is_chunked() {
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
