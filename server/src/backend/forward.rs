//! Presigned pass-through (AIStore's third way of S3 support): a request presigned for the remote
//! S3 itself is sent there unchanged — same method, host, path and query, the headers its
//! signature covers — so the remote, not keel, decides whether it is allowed. No signing here:
//! keel holds no credential for it.

use bytes::Bytes;
use engine::RemoteBucket;
use futures_channel::{mpsc, oneshot};
use futures_util::StreamExt;

use super::agent::{Agent, BodySink, Piece};
use super::blob::forward_chunks;
use super::{Forwarded, Provider, RemoteError, RemoteObject, SignedStyle};

/// Longest remote error document relayed to the client.
const REFUSAL_BYTES_MAX: usize = 64 << 10;
/// Chunks in flight from the agent to the shard.
const CHANNEL_CHUNKS: usize = 4;

impl Agent {
    /// Whether the backend lets presigned requests through (`passthrough = true`).
    pub fn passes_presigned(&self, backend: &str) -> bool {
        self.backends.get(backend).is_some_and(|b| b.table.passthrough && b.provider == Provider::S3)
    }

    /// The URL a request presigned for `remote`'s bucket was signed for: `raw_key` and
    /// `raw_query` exactly as the client sent them (still percent-encoded). Without a style, path
    /// style when the backend names an endpoint (S3-compatible servers), virtual-hosted for AWS.
    pub fn presigned_url(
        &self,
        remote: &RemoteBucket,
        raw_key: &str,
        raw_query: &str,
        style: Option<SignedStyle>,
    ) -> Result<String, RemoteError> {
        let cfg =
            self.backends.get(&remote.backend).ok_or_else(|| RemoteError::NoSuchBackend(remote.backend.clone()))?;
        let t = &cfg.table;
        let region = t.region.as_deref().unwrap_or("us-east-1");
        let endpoint = t.endpoint.clone().unwrap_or_else(|| format!("https://s3.{region}.amazonaws.com"));
        let endpoint = endpoint.trim_end_matches('/');
        let style = style.unwrap_or(if t.endpoint.is_some() { SignedStyle::Path } else { SignedStyle::VirtualHosted });
        let bucket = &remote.bucket;
        Ok(match style {
            SignedStyle::Path => format!("{endpoint}/{bucket}/{raw_key}?{raw_query}"),
            SignedStyle::VirtualHosted => {
                let (scheme, host) = endpoint.split_once("://").unwrap_or(("https", endpoint));
                format!("{scheme}://{bucket}.{host}/{raw_key}?{raw_query}")
            }
        })
    }

    /// Sends a presigned GET or HEAD as it was signed. A 2xx answer is the object (a GET's bytes
    /// follow, hashed here when the ETag is an MD5); anything else is relayed as the remote said.
    pub async fn forward(
        &self,
        remote: &RemoteBucket,
        head: bool,
        url: String,
        headers: Vec<(String, String)>,
    ) -> Result<Forwarded, RemoteError> {
        let http = self.http.clone();
        let (tx, rx) = mpsc::channel(CHANNEL_CHUNKS);
        let (md5_tx, md5_rx) = oneshot::channel();
        let answer = self
            .run(remote, async move {
                let method = if head { reqwest::Method::HEAD } else { reqwest::Method::GET };
                let mut req = http.request(method, &url);
                for (name, value) in headers {
                    req = req.header(name, value);
                }
                let resp = req.send().await.map_err(http_error)?;
                let status = resp.status().as_u16();
                if !(200..300).contains(&status) {
                    let body = bounded_body(resp).await;
                    return Ok((Err((status, body)), false));
                }
                let obj = described(resp.headers(), status)?;
                let hashing = !head && status == 200 && obj.etag.as_deref().and_then(super::etag_md5).is_some();
                if !head {
                    let hasher = hashing.then(|| (fast_md5::Md5::new(), md5_tx));
                    tokio::spawn(forward_chunks(resp.bytes_stream().boxed(), http_error, tx, hasher));
                }
                Ok((Ok(obj), hashing))
            })
            .await?;
        Ok(match answer {
            (Err((status, body)), _) => Forwarded::Refused { status, body },
            (Ok(obj), hashing) => {
                if let Some(s) = self.stats.get(&remote.backend).filter(|_| !head) {
                    s.bytes_in.fetch_add(obj.size, std::sync::atomic::Ordering::Relaxed);
                }
                let chunks = (!head).then(|| self.chunks(rx, hashing.then_some(md5_rx)));
                Forwarded::Object(obj, chunks)
            }
        })
    }
}

impl Agent {
    /// Starts a presigned PUT as it was signed: feed the body to the sink (its length announced
    /// as `len`, which S3 requires), then `finish` it for the remote's answer — the object's
    /// ETag and version, or `RemoteError::Refused` with the remote's status and document.
    pub fn forward_put(
        &self,
        remote: &RemoteBucket,
        url: String,
        headers: Vec<(String, String)>,
        len: u64,
    ) -> Result<BodySink, RemoteError> {
        let http = self.http.clone();
        let (tx, rx) = mpsc::channel::<Piece>(CHANNEL_CHUNKS);
        let (done_tx, done) = oneshot::channel();
        if let Some(s) = self.stats.get(&remote.backend) {
            s.bytes_out.fetch_add(len, std::sync::atomic::Ordering::Relaxed);
        }
        // The body ends at `End`; a sink dropped without it ends the stream with an error, so
        // the remote never takes a short body.
        let body = futures_util::stream::unfold(rx, |mut rx| async move {
            match rx.next().await {
                Some(Piece::Data(b)) => Some((Ok::<Bytes, std::io::Error>(b), rx)),
                Some(Piece::End) => None,
                None => Some((Err(std::io::Error::other("the body ended early")), rx)),
            }
        });
        self.spawn(async move {
            let mut req = http.put(&url).header("content-length", len).body(reqwest::Body::wrap_stream(body));
            for (name, value) in headers {
                req = req.header(name, value);
            }
            let answer = async {
                let resp = req.send().await.map_err(http_error)?;
                let status = resp.status().as_u16();
                if !(200..300).contains(&status) {
                    return Err(RemoteError::Refused { status, body: bounded_body(resp).await });
                }
                let h = resp.headers();
                let text = |n: &str| h.get(n).and_then(|v| v.to_str().ok()).map(str::to_owned);
                Ok(RemoteObject {
                    key: String::new(),
                    size: len,
                    mtime_ms: crate::time::now_ms(),
                    etag: text("etag").map(|e| e.trim_matches('"').to_owned()),
                    version: text("x-amz-version-id"),
                    content_type: None,
                })
            }
            .await;
            let _ = done_tx.send(answer);
        });
        Ok(BodySink { tx, done, timeout: self.timeout(), failed: None })
    }
}

fn http_error(e: reqwest::Error) -> RemoteError {
    if e.is_timeout() { RemoteError::Timeout } else { RemoteError::Unavailable(e.to_string()) }
}

/// The first `REFUSAL_BYTES_MAX` bytes of an error answer.
async fn bounded_body(resp: reqwest::Response) -> Vec<u8> {
    let mut body = Vec::new();
    let mut stream = resp.bytes_stream();
    while let Some(Ok(chunk)) = stream.next().await {
        let chunk: Bytes = chunk;
        body.extend_from_slice(&chunk[..chunk.len().min(REFUSAL_BYTES_MAX - body.len())]);
        if body.len() >= REFUSAL_BYTES_MAX {
            break;
        }
    }
    body
}

/// The object a 2xx answer describes: its size (a 206's `Content-Range` total), ETag, version,
/// modification time and type.
fn described(h: &reqwest::header::HeaderMap, status: u16) -> Result<RemoteObject, RemoteError> {
    let text = |name: &str| h.get(name).and_then(|v| v.to_str().ok());
    let size = if status == 206 {
        text("content-range").and_then(|r| r.rsplit_once('/')).and_then(|(_, total)| total.parse().ok())
    } else {
        text("content-length").and_then(|n| n.parse().ok())
    };
    let size = size.ok_or_else(|| RemoteError::Unavailable("the remote's answer has no length".into()))?;
    Ok(RemoteObject {
        key: String::new(),
        size,
        mtime_ms: text("last-modified").and_then(crate::time::parse_http_date).unwrap_or(0),
        etag: text("etag").map(|e| e.trim_matches('"').to_owned()),
        version: text("x-amz-version-id").map(str::to_owned),
        content_type: text("content-type").map(str::to_owned),
    })
}
