//! Request payloads as S3 signs and frames them: what `x-amz-content-sha256` promises, the
//! aws-chunked framing of streaming uploads (chunk and trailer signatures), and the body stream
//! that decodes, verifies and hands object bytes to the handlers. The HTTP shell below knows only
//! Content-Length and chunked framing.

pub mod aws_chunked;
pub mod stream;

pub use aws_chunked::{AwsChunkError, AwsChunkedDecoder, ChunkSigner};
pub use stream::BodyStream;

/// What the signature says about the body (`x-amz-content-sha256`).
#[derive(Clone, Debug)]
pub enum Payload {
    /// Nothing to verify: `UNSIGNED-PAYLOAD`, no header, or a presigned URL.
    Unsigned,
    /// The body's SHA-256 must equal this.
    Sha256([u8; 32]),
    /// An aws-chunked body (`STREAMING-...`). `signed` holds the seed of the chunk-signature chain
    /// when chunks are signed and the server checks signatures; `trailer` when the kind may end
    /// with trailer fields (a checksum among them).
    Chunked { signed: Option<ChunkSigner>, trailer: bool },
}

/// The streaming kinds keel decodes: `(name, chunks signed, trailer)`.
pub const STREAMING_KINDS: [(&str, bool, bool); 3] = [
    ("STREAMING-UNSIGNED-PAYLOAD-TRAILER", false, true),
    ("STREAMING-AWS4-HMAC-SHA256-PAYLOAD", true, false),
    ("STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER", true, true),
];

impl Payload {
    pub fn is_chunked(&self) -> bool {
        matches!(self, Payload::Chunked { .. })
    }
}
