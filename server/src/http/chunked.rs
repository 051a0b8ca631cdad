//! `Transfer-Encoding: chunked` decoding as a pure state machine: bytes in, payload bytes out.
//! It never allocates beyond its named limits and keeps "need more input" apart from "malformed".

use crate::limits;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChunkError {
    BadSize,
    LineTooLong,
    MissingCrlf,
    TrailerTooLarge,
    BadTrailer,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum State {
    /// Reading a chunk-size line (held in `line`).
    Size,
    /// Inside a chunk's data with this many bytes to go.
    Data(u64),
    /// Expecting the CRLF after a chunk's data; holds how many of its bytes were seen.
    DataEnd(u8),
    /// Reading trailer lines after the last chunk.
    Trailer,
    Done,
}

#[derive(Clone, Debug)]
pub struct ChunkedDecoder {
    state: State,
    line: Vec<u8>,
    trailer_bytes: usize,
    /// Trailer fields (lowercase names), available once done.
    pub trailers: Vec<(String, String)>,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        ChunkedDecoder::new()
    }
}

impl ChunkedDecoder {
    pub fn new() -> ChunkedDecoder {
        ChunkedDecoder { state: State::Size, line: Vec::new(), trailer_bytes: 0, trailers: Vec::new() }
    }

    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Payload bytes that may be read straight into a destination (we are mid-chunk).
    pub fn data_remaining(&self) -> u64 {
        match self.state {
            State::Data(n) => n,
            _ => 0,
        }
    }

    /// Records that `n` payload bytes were read directly (at most `data_remaining()`).
    pub fn consume_data(&mut self, n: u64) {
        match &mut self.state {
            State::Data(rem) => {
                assert!(n <= *rem, "consumed past the chunk");
                *rem -= n;
                if *rem == 0 {
                    self.state = State::DataEnd(0);
                }
            }
            _ => assert!(n == 0, "consume_data outside a chunk"),
        }
    }

    /// Decodes from `input` into `out`. Returns (input consumed, output produced). Stops when
    /// `out` is full, input is exhausted, or the body is complete.
    pub fn decode(&mut self, input: &[u8], out: &mut [u8]) -> Result<(usize, usize), ChunkError> {
        let mut i = 0;
        let mut o = 0;
        while i < input.len() {
            match self.state {
                State::Done => break,
                State::Size => {
                    let rest = &input[i..];
                    let nl = rest.iter().position(|&b| b == b'\n');
                    let take = nl.map_or(rest.len(), |p| p + 1);
                    if self.line.len() + take > limits::CHUNK_LINE_BYTES_MAX {
                        return Err(ChunkError::LineTooLong);
                    }
                    self.line.extend_from_slice(&rest[..take]);
                    i += take;
                    if nl.is_some() {
                        let size = parse_size_line(&self.line)?;
                        self.line.clear();
                        self.state = if size == 0 { State::Trailer } else { State::Data(size) };
                    }
                }
                State::Data(rem) => {
                    if o == out.len() {
                        break;
                    }
                    let n = (rem.min((input.len() - i) as u64) as usize).min(out.len() - o);
                    out[o..o + n].copy_from_slice(&input[i..i + n]);
                    i += n;
                    o += n;
                    self.consume_data(n as u64);
                }
                State::DataEnd(seen) => {
                    let expect = if seen == 0 { b'\r' } else { b'\n' };
                    if input[i] != expect {
                        return Err(ChunkError::MissingCrlf);
                    }
                    i += 1;
                    self.state = if seen == 0 { State::DataEnd(1) } else { State::Size };
                }
                State::Trailer => {
                    let rest = &input[i..];
                    let nl = rest.iter().position(|&b| b == b'\n');
                    let take = nl.map_or(rest.len(), |p| p + 1);
                    self.trailer_bytes += take;
                    if self.trailer_bytes > limits::TRAILER_BYTES_MAX
                        || self.line.len() + take > limits::CHUNK_LINE_BYTES_MAX
                    {
                        return Err(ChunkError::TrailerTooLarge);
                    }
                    self.line.extend_from_slice(&rest[..take]);
                    i += take;
                    if nl.is_some() {
                        let line = std::mem::take(&mut self.line);
                        let body = line.strip_suffix(b"\r\n").ok_or(ChunkError::MissingCrlf)?;
                        if body.is_empty() {
                            self.state = State::Done;
                        } else {
                            let text = std::str::from_utf8(body).map_err(|_| ChunkError::BadTrailer)?;
                            let (name, value) = text.split_once(':').ok_or(ChunkError::BadTrailer)?;
                            if name.is_empty() || name.bytes().any(|b| b.is_ascii_whitespace()) {
                                return Err(ChunkError::BadTrailer);
                            }
                            self.trailers.push((name.to_ascii_lowercase(), value.trim().to_owned()));
                        }
                    }
                }
            }
        }
        Ok((i, o))
    }
}

/// Parses `hex-size [; extensions] CRLF`.
fn parse_size_line(line: &[u8]) -> Result<u64, ChunkError> {
    let body = line.strip_suffix(b"\r\n").ok_or(ChunkError::MissingCrlf)?;
    let digits_end = body.iter().position(|b| !b.is_ascii_hexdigit()).unwrap_or(body.len());
    let digits = &body[..digits_end];
    if digits.is_empty() || digits.len() > limits::CHUNK_SIZE_HEX_DIGITS_MAX {
        return Err(ChunkError::BadSize);
    }
    let rest = &body[digits_end..];
    // Only chunk extensions may follow (optionally after spaces); anything else is malformed.
    let rest_trim = rest.iter().position(|&b| b != b' ' && b != b'\t').map_or(&rest[rest.len()..], |p| &rest[p..]);
    if !rest_trim.is_empty() && rest_trim[0] != b';' {
        return Err(ChunkError::BadSize);
    }
    let s = std::str::from_utf8(digits).map_err(|_| ChunkError::BadSize)?;
    u64::from_str_radix(s, 16).map_err(|_| ChunkError::BadSize)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(input: &[u8], split: usize, out_size: usize) -> Result<(Vec<u8>, bool), ChunkError> {
        let mut d = ChunkedDecoder::new();
        let mut out = Vec::new();
        let mut buf = vec![0u8; out_size];
        for piece in input.chunks(split.max(1)) {
            let mut at = 0;
            loop {
                let (c, p) = d.decode(&piece[at..], &mut buf)?;
                out.extend_from_slice(&buf[..p]);
                at += c;
                if at == piece.len() || d.is_done() {
                    break;
                }
            }
        }
        Ok((out, d.is_done()))
    }

    #[test]
    fn decodes_any_split_and_any_output_size() {
        let body = b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nx-amz-checksum-crc32: abc\r\n\r\n";
        for split in 1..body.len() {
            for out in [1, 3, 64] {
                let (data, done) = decode_all(body, split, out).unwrap();
                assert_eq!(data, b"hello world");
                assert!(done);
            }
        }
        let mut d = ChunkedDecoder::new();
        let mut out = [0u8; 64];
        d.decode(body, &mut out).unwrap();
        assert_eq!(d.trailers, vec![("x-amz-checksum-crc32".to_owned(), "abc".to_owned())]);
    }

    #[test]
    fn malformed() {
        let cases: [(&[u8], ChunkError); 5] = [
            (b"z\r\n", ChunkError::BadSize),
            (b"5\r\nhelloXX", ChunkError::MissingCrlf),
            (b"5 x\r\nhello\r\n", ChunkError::BadSize),
            (b"11111111111111111\r\n", ChunkError::BadSize),
            (b"5\n", ChunkError::MissingCrlf),
        ];
        for (input, err) in cases {
            assert_eq!(decode_all(input, input.len(), 64).unwrap_err(), err, "{input:?}");
        }
        let long = vec![b'1'; limits::CHUNK_LINE_BYTES_MAX + 1];
        assert_eq!(decode_all(&long, 7, 8).unwrap_err(), ChunkError::LineTooLong);
        let mut t = b"0\r\n".to_vec();
        t.extend(std::iter::repeat_n(b"a: b\r\n".as_slice(), 4000).flatten());
        assert_eq!(decode_all(&t, 100, 8).unwrap_err(), ChunkError::TrailerTooLarge);
    }

    #[test]
    fn incomplete_is_not_done() {
        let (data, done) = decode_all(b"5\r\nhel", 2, 8).unwrap();
        assert_eq!(data, b"hel");
        assert!(!done);
    }
}
