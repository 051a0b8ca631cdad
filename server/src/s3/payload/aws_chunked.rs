//! `Content-Encoding: aws-chunked` bodies: `hex-size[;chunk-signature=sig]\r\n data \r\n ...`,
//! a final zero-size chunk, optional trailer lines (checksums, `x-amz-trailer-signature`) and an
//! empty line. A pure state machine like the HTTP chunked decoder; with a signer it verifies
//! every chunk signature as the chunk ends, chained from the seed signature, and the trailer
//! signature, so a tampered or reordered stream fails before the object is committed.

use sha2::{Digest, Sha256};

use crate::limits;
use crate::s3::auth::{EMPTY_SHA256, constant_time_eq, hmac};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AwsChunkError {
    BadHeader,
    LineTooLong,
    MissingCrlf,
    MissingSignature,
    BadSignature,
    TrailerTooLarge,
    BadTrailer,
}

/// What chunk signatures are checked against.
#[derive(Clone, Debug)]
pub struct ChunkSigner {
    pub key: [u8; 32],
    pub amz_date: String,
    pub scope: String,
    /// The previous signature: the request's own (seed) signature to begin with.
    pub prev: String,
}

impl ChunkSigner {
    fn chunk_signature(&self, data_sha: &[u8]) -> String {
        let sts = format!(
            "AWS4-HMAC-SHA256-PAYLOAD\n{}\n{}\n{}\n{EMPTY_SHA256}\n{}",
            self.amz_date,
            self.scope,
            self.prev,
            hex::encode(data_sha)
        );
        hex::encode(hmac(&self.key, sts.as_bytes()))
    }

    fn trailer_signature(&self, trailer_text: &[u8]) -> String {
        let sts = format!(
            "AWS4-HMAC-SHA256-TRAILER\n{}\n{}\n{}\n{}",
            self.amz_date,
            self.scope,
            self.prev,
            hex::encode(Sha256::digest(trailer_text))
        );
        hex::encode(hmac(&self.key, sts.as_bytes()))
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum State {
    Header,
    Data(u64),
    DataEnd(u8),
    Trailer,
    Done,
}

#[derive(Clone, Debug)]
pub struct AwsChunkedDecoder {
    state: State,
    line: Vec<u8>,
    signer: Option<ChunkSigner>,
    /// Signature the current chunk announced.
    chunk_sig: Option<String>,
    chunk_sha: Sha256,
    trailer_bytes: usize,
    /// Canonical trailer text (`name:value\n`) for the trailer signature.
    trailer_text: Vec<u8>,
    trailer_sig: Option<String>,
    /// Trailer fields (lowercase names), once done.
    pub trailers: Vec<(String, String)>,
    /// Payload bytes produced so far.
    pub decoded: u64,
}

impl AwsChunkedDecoder {
    pub fn new(signer: Option<ChunkSigner>) -> AwsChunkedDecoder {
        AwsChunkedDecoder {
            state: State::Header,
            line: Vec::new(),
            signer,
            chunk_sig: None,
            chunk_sha: Sha256::new(),
            trailer_bytes: 0,
            trailer_text: Vec::new(),
            trailer_sig: None,
            trailers: Vec::new(),
            decoded: 0,
        }
    }

    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    pub fn trailer(&self, name: &str) -> Option<&str> {
        self.trailers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Decodes from `input` into `out`; returns (input consumed, output produced). Stops when
    /// `out` is full, input runs out, or the body is complete.
    pub fn decode(&mut self, input: &[u8], out: &mut [u8]) -> Result<(usize, usize), AwsChunkError> {
        let mut i = 0;
        let mut o = 0;
        while i < input.len() {
            match self.state {
                State::Done => break,
                State::Header => {
                    let (taken, line) =
                        self.take_line(&input[i..], limits::CHUNK_LINE_BYTES_MAX, AwsChunkError::LineTooLong)?;
                    i += taken;
                    let Some(line) = line else { continue };
                    let (size, sig) = parse_header(&line)?;
                    if self.signer.is_some() && sig.is_none() {
                        return Err(AwsChunkError::MissingSignature);
                    }
                    self.chunk_sig = sig;
                    self.chunk_sha = Sha256::new();
                    if size == 0 {
                        self.verify_chunk()?;
                        self.state = State::Trailer;
                    } else {
                        self.state = State::Data(size);
                    }
                }
                State::Data(rem) => {
                    if o == out.len() {
                        break;
                    }
                    let n = (rem.min((input.len() - i) as u64) as usize).min(out.len() - o);
                    out[o..o + n].copy_from_slice(&input[i..i + n]);
                    if self.signer.is_some() {
                        self.chunk_sha.update(&input[i..i + n]);
                    }
                    i += n;
                    o += n;
                    self.decoded += n as u64;
                    self.state = if rem == n as u64 { State::DataEnd(0) } else { State::Data(rem - n as u64) };
                }
                State::DataEnd(seen) => {
                    let expect = if seen == 0 { b'\r' } else { b'\n' };
                    if input[i] != expect {
                        return Err(AwsChunkError::MissingCrlf);
                    }
                    i += 1;
                    if seen == 0 {
                        self.state = State::DataEnd(1);
                    } else {
                        self.verify_chunk()?;
                        self.state = State::Header;
                    }
                }
                State::Trailer => {
                    let (taken, line) =
                        self.take_line(&input[i..], limits::CHUNK_LINE_BYTES_MAX, AwsChunkError::TrailerTooLarge)?;
                    i += taken;
                    self.trailer_bytes += taken;
                    if self.trailer_bytes > limits::TRAILER_BYTES_MAX {
                        return Err(AwsChunkError::TrailerTooLarge);
                    }
                    let Some(line) = line else { continue };
                    if line.is_empty() {
                        self.finish_trailer()?;
                        self.state = State::Done;
                        continue;
                    }
                    let text = std::str::from_utf8(&line).map_err(|_| AwsChunkError::BadTrailer)?;
                    let (name, value) = text.split_once(':').ok_or(AwsChunkError::BadTrailer)?;
                    let name = name.trim().to_ascii_lowercase();
                    let value = value.trim().to_owned();
                    if name.is_empty() || name.bytes().any(|b| b.is_ascii_whitespace()) {
                        return Err(AwsChunkError::BadTrailer);
                    }
                    if name == "x-amz-trailer-signature" {
                        self.trailer_sig = Some(value);
                    } else {
                        self.trailer_text.extend_from_slice(format!("{name}:{value}\n").as_bytes());
                        self.trailers.push((name, value));
                    }
                }
            }
        }
        Ok((i, o))
    }

    /// Accumulates one CRLF-terminated line; returns bytes taken and the line once complete.
    fn take_line(
        &mut self,
        rest: &[u8],
        max: usize,
        too_long: AwsChunkError,
    ) -> Result<(usize, Option<Vec<u8>>), AwsChunkError> {
        let nl = rest.iter().position(|&b| b == b'\n');
        let take = nl.map_or(rest.len(), |p| p + 1);
        if self.line.len() + take > max {
            return Err(too_long);
        }
        self.line.extend_from_slice(&rest[..take]);
        if nl.is_none() {
            return Ok((take, None));
        }
        let line = std::mem::take(&mut self.line);
        let body = line.strip_suffix(b"\r\n").ok_or(AwsChunkError::MissingCrlf)?;
        Ok((take, Some(body.to_vec())))
    }

    fn verify_chunk(&mut self) -> Result<(), AwsChunkError> {
        let Some(signer) = &mut self.signer else { return Ok(()) };
        let sha = std::mem::replace(&mut self.chunk_sha, Sha256::new()).finalize();
        let want = signer.chunk_signature(&sha);
        let got = self.chunk_sig.take().ok_or(AwsChunkError::MissingSignature)?;
        if !constant_time_eq(want.as_bytes(), got.as_bytes()) {
            return Err(AwsChunkError::BadSignature);
        }
        signer.prev = want;
        Ok(())
    }

    fn finish_trailer(&mut self) -> Result<(), AwsChunkError> {
        let Some(signer) = &self.signer else { return Ok(()) };
        match (&self.trailer_sig, self.trailers.is_empty()) {
            (None, true) => Ok(()),
            (None, false) => Err(AwsChunkError::MissingSignature),
            (Some(got), _) => {
                let want = signer.trailer_signature(&self.trailer_text);
                if constant_time_eq(want.as_bytes(), got.as_bytes()) {
                    Ok(())
                } else {
                    Err(AwsChunkError::BadSignature)
                }
            }
        }
    }
}

/// `hex-size[;chunk-signature=sig]` (other extensions are ignored).
fn parse_header(line: &[u8]) -> Result<(u64, Option<String>), AwsChunkError> {
    let text = std::str::from_utf8(line).map_err(|_| AwsChunkError::BadHeader)?;
    let mut parts = text.split(';');
    let size_hex = parts.next().unwrap_or("").trim();
    if size_hex.is_empty()
        || size_hex.len() > limits::CHUNK_SIZE_HEX_DIGITS_MAX
        || !size_hex.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return Err(AwsChunkError::BadHeader);
    }
    let size = u64::from_str_radix(size_hex, 16).map_err(|_| AwsChunkError::BadHeader)?;
    let mut sig = None;
    for ext in parts {
        if let Some(v) = ext.trim().strip_prefix("chunk-signature=") {
            if v.len() != 64 || !v.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(AwsChunkError::BadHeader);
            }
            sig = Some(v.to_ascii_lowercase());
        }
    }
    Ok((size, sig))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(dec: &mut AwsChunkedDecoder, input: &[u8], split: usize, out_size: usize) -> Result<Vec<u8>, AwsChunkError> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; out_size];
        for piece in input.chunks(split.max(1)) {
            let mut at = 0;
            while at < piece.len() && !dec.is_done() {
                let (c, p) = dec.decode(&piece[at..], &mut buf)?;
                out.extend_from_slice(&buf[..p]);
                at += c;
            }
        }
        Ok(out)
    }

    #[test]
    fn unsigned_with_trailer() {
        let body = b"64\r\n"
            .iter()
            .chain([b'a'; 100].iter())
            .chain(b"\r\n0\r\nx-amz-checksum-crc32:Xg5djw==\r\n\r\n")
            .copied()
            .collect::<Vec<u8>>();
        for split in [1, 3, 50, body.len()] {
            let mut d = AwsChunkedDecoder::new(None);
            let out = run(&mut d, &body, split, 7).unwrap();
            assert_eq!(out, vec![b'a'; 100]);
            assert!(d.is_done());
            assert_eq!(d.trailer("x-amz-checksum-crc32"), Some("Xg5djw=="));
        }
    }

    /// AWS's published example of a signed streaming PUT (64 KiB of 'a' in a 65 KiB body, with
    /// chunks of 64 KiB, 1 KiB and 0 bytes), from "Signature Calculations for the Authorization
    /// Header: Transferring Payload in Multiple Chunks".
    #[test]
    fn aws_published_chunk_signatures() {
        let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
        let key = crate::s3::auth::signing_key(secret, "20130524", "us-east-1", "s3");
        let signer = ChunkSigner {
            key,
            amz_date: "20130524T000000Z".into(),
            scope: "20130524/us-east-1/s3/aws4_request".into(),
            prev: "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9".into(),
        };
        let sigs = [
            "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
            "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
            "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
        ];
        let mut body = Vec::new();
        body.extend_from_slice(format!("10000;chunk-signature={}\r\n", sigs[0]).as_bytes());
        body.extend_from_slice(&[b'a'; 65536]);
        body.extend_from_slice(format!("\r\n400;chunk-signature={}\r\n", sigs[1]).as_bytes());
        body.extend_from_slice(&[b'a'; 1024]);
        body.extend_from_slice(format!("\r\n0;chunk-signature={}\r\n\r\n", sigs[2]).as_bytes());
        let mut d = AwsChunkedDecoder::new(Some(signer.clone()));
        assert_eq!(run(&mut d, &body, 1000, 4096).unwrap().len(), 66560);
        assert!(d.is_done());
        // One flipped data byte breaks the chain.
        let mut bad = body.clone();
        bad[100] = b'b';
        let mut d = AwsChunkedDecoder::new(Some(signer.clone()));
        assert_eq!(run(&mut d, &bad, 4096, 4096), Err(AwsChunkError::BadSignature));
        // Unsigned chunks are refused when signatures are expected.
        let mut d = AwsChunkedDecoder::new(Some(signer));
        assert_eq!(run(&mut d, b"1\r\na\r\n", 10, 10), Err(AwsChunkError::MissingSignature));
    }

    #[test]
    fn malformed() {
        for bad in [&b"zz\r\n"[..], b"5\r\nhelloXX", b"5;chunk-signature=short\r\n", b"1\n"] {
            let mut d = AwsChunkedDecoder::new(None);
            assert!(run(&mut d, bad, bad.len(), 16).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        let mut d = AwsChunkedDecoder::new(None);
        let long = vec![b'1'; limits::CHUNK_LINE_BYTES_MAX + 1];
        assert_eq!(run(&mut d, &long, 100, 16), Err(AwsChunkError::LineTooLong));
    }

    /// Each decoder limit is enforced at its bound: size digits, one trailer line, all trailers.
    #[test]
    fn limits_hold_at_their_bounds() {
        // 16 hex digits parse (a size, even if absurd, is then bounded by the body's length);
        // 17 are refused.
        let digits = "0".repeat(limits::CHUNK_SIZE_HEX_DIGITS_MAX - 1) + "1";
        let mut d = AwsChunkedDecoder::new(None);
        assert_eq!(run(&mut d, format!("{digits}\r\nx\r\n0\r\n\r\n").as_bytes(), 7, 16).unwrap(), b"x");
        let mut d = AwsChunkedDecoder::new(None);
        let too_many = format!("0{digits}\r\nx\r\n");
        assert_eq!(run(&mut d, too_many.as_bytes(), 7, 16), Err(AwsChunkError::BadHeader));
        // One trailer line longer than a line may be.
        let mut d = AwsChunkedDecoder::new(None);
        let line = format!("0\r\nx-amz-meta-a:{}\r\n\r\n", "v".repeat(limits::CHUNK_LINE_BYTES_MAX));
        assert_eq!(run(&mut d, line.as_bytes(), 1000, 16), Err(AwsChunkError::TrailerTooLarge));
        // Many short trailer lines, together over the trailer budget.
        let mut d = AwsChunkedDecoder::new(None);
        let mut many = String::from("0\r\n");
        while many.len() <= limits::TRAILER_BYTES_MAX + 64 {
            many.push_str(&format!("x-amz-meta-{}:{}\r\n", many.len(), "v".repeat(100)));
        }
        many.push_str("\r\n");
        assert_eq!(run(&mut d, many.as_bytes(), 4096, 16), Err(AwsChunkError::TrailerTooLarge));
    }
}
