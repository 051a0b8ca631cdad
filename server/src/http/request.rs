//! Request heads: parsed with httparse, checked against the limits and against request-smuggling
//! shapes (Content-Length with Transfer-Encoding, conflicting Content-Lengths, obs-fold).

use crate::limits;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Put,
    Post,
    Delete,
    Options,
    Other,
}

impl Method {
    fn parse(s: &str) -> Method {
        match s {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "PUT" => Method::Put,
            "POST" => Method::Post,
            "DELETE" => Method::Delete,
            "OPTIONS" => Method::Options,
            _ => Method::Other,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Put => "PUT",
            Method::Post => "POST",
            Method::Delete => "DELETE",
            Method::Options => "OPTIONS",
            Method::Other => "OTHER",
        }
    }
}

/// How the request body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    None,
    Length(u64),
    Chunked,
}

/// A parsed request head. Header names are lowercase; values are kept as sent.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: Method,
    /// The method token as sent (for signatures over unusual methods).
    pub method_raw: String,
    /// Path as sent, still percent-encoded.
    pub path: String,
    /// Query string as sent (without `?`), still percent-encoded.
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub framing: Framing,
    pub keep_alive: bool,
    pub expect_continue: bool,
}

/// Why a head could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeadError {
    /// More bytes are needed and the limit has not been reached.
    Partial,
    /// Head larger than `HEADER_BYTES_MAX` or with too many headers: 431.
    TooLarge,
    /// Request target longer than `URI_BYTES_MAX`: 414.
    UriTooLong,
    /// Malformed or ambiguous: 400.
    Malformed(&'static str),
    /// Transfer-Encoding other than chunked: 501.
    UnsupportedEncoding,
}

impl Request {
    /// Parses a head from the start of `buf`; returns the request and the head's length.
    pub fn parse(buf: &[u8]) -> Result<(Request, usize), HeadError> {
        Request::parse_reusing(buf, &mut None)
    }

    /// `parse`, into `spare` (a connection's previous request) when there is one: its strings
    /// and header list are reused, so a head no larger than the one before allocates nothing.
    /// `spare` is taken only once the head is complete.
    pub fn parse_reusing(buf: &[u8], spare: &mut Option<Request>) -> Result<(Request, usize), HeadError> {
        let mut headers = [httparse::EMPTY_HEADER; limits::HEADER_COUNT_MAX];
        let mut req = httparse::Request::new(&mut headers);
        let n = match req.parse(buf) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => {
                return if buf.len() >= limits::HEADER_BYTES_MAX {
                    Err(HeadError::TooLarge)
                } else {
                    Err(HeadError::Partial)
                };
            }
            Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
            Err(_) => return Err(HeadError::Malformed("malformed request head")),
        };
        if n > limits::HEADER_BYTES_MAX {
            return Err(HeadError::TooLarge);
        }
        let method_raw = req.method.ok_or(HeadError::Malformed("no method"))?;
        let target = req.path.ok_or(HeadError::Malformed("no target"))?;
        if target.len() > limits::URI_BYTES_MAX {
            return Err(HeadError::UriTooLong);
        }
        let version = req.version.ok_or(HeadError::Malformed("no version"))?;
        let (path, query) = split_target(target)?;
        let mut out = spare.take().unwrap_or_else(Request::empty);
        let mut seen = FramingHeaders::default();
        out.headers.truncate(req.headers.len());
        for (i, h) in req.headers.iter().enumerate() {
            if i == out.headers.len() {
                out.headers.push(Default::default());
            }
            let (name, value) = &mut out.headers[i];
            name.clear();
            // Names are tokens (httparse checks): ASCII.
            name.extend(h.name.bytes().map(|b| char::from(b.to_ascii_lowercase())));
            value.clear();
            match std::str::from_utf8(h.value) {
                Ok(v) => value.push_str(v),
                Err(_) => value.push_str(&String::from_utf8_lossy(h.value)),
            }
            seen.note(name, value)?;
        }
        let framing = seen.framing()?;
        out.keep_alive = match version {
            1 => !seen.connection_close,
            _ => seen.connection_keep_alive && !seen.connection_close,
        };
        out.method = Method::parse(method_raw);
        for (field, text) in [(&mut out.method_raw, method_raw), (&mut out.path, path), (&mut out.query, query)] {
            field.clear();
            field.push_str(text);
        }
        out.framing = framing;
        out.expect_continue = seen.expect_continue && version == 1;
        Ok((out, n))
    }

    fn empty() -> Request {
        Request {
            method: Method::Other,
            method_raw: String::new(),
            path: String::new(),
            query: String::new(),
            headers: Vec::new(),
            framing: Framing::None,
            keep_alive: false,
            expect_continue: false,
        }
    }

    /// The first value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Every value of header `name`, trimmed and joined by `,` (the canonical form for
    /// signatures); borrowed when the header occurs once.
    pub fn header_joined(&self, name: &str) -> Option<std::borrow::Cow<'_, str>> {
        let mut it = self.headers.iter().filter(|(k, _)| k == name).map(|(_, v)| v.trim());
        let first = it.next()?;
        let Some(second) = it.next() else { return Some(std::borrow::Cow::Borrowed(first)) };
        let mut s = format!("{first},{second}");
        for v in it {
            s.push(',');
            s.push_str(v);
        }
        Some(std::borrow::Cow::Owned(s))
    }

    /// Declared Content-Length, if any.
    pub fn content_length(&self) -> Option<u64> {
        match self.framing {
            Framing::Length(n) => Some(n),
            Framing::None => Some(0),
            Framing::Chunked => None,
        }
    }

    pub fn has_body(&self) -> bool {
        self.framing != Framing::None
    }
}

/// The path and query of a request target. Absolute-form targets (proxies) are accepted by taking
/// their path.
fn split_target(target: &str) -> Result<(&str, &str), HeadError> {
    let origin = if let Some(rest) = target.strip_prefix("http://").or_else(|| target.strip_prefix("https://")) {
        rest.find('/').map_or("/", |i| &rest[i..])
    } else {
        target
    };
    if !origin.starts_with('/') {
        return Err(HeadError::Malformed("request target must start with /"));
    }
    Ok(origin.split_once('?').unwrap_or((origin, "")))
}

/// The headers that decide how a request is framed and whether its connection stays open.
#[derive(Default)]
struct FramingHeaders {
    content_length: Option<u64>,
    chunked: bool,
    saw_te: bool,
    connection_close: bool,
    connection_keep_alive: bool,
    expect_continue: bool,
}

impl FramingHeaders {
    /// Takes note of one header (`name` lowercase).
    fn note(&mut self, name: &str, value: &str) -> Result<(), HeadError> {
        match name {
            "content-length" => {
                let v = value.trim();
                if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) || v.len() > 19 {
                    return Err(HeadError::Malformed("invalid Content-Length"));
                }
                let len: u64 = v.parse().map_err(|_| HeadError::Malformed("invalid Content-Length"))?;
                if self.content_length.is_some_and(|c| c != len) {
                    return Err(HeadError::Malformed("conflicting Content-Length headers"));
                }
                self.content_length = Some(len);
            }
            "transfer-encoding" => {
                if self.saw_te {
                    return Err(HeadError::Malformed("repeated Transfer-Encoding"));
                }
                self.saw_te = true;
                if !value.trim().eq_ignore_ascii_case("chunked") {
                    return Err(HeadError::UnsupportedEncoding);
                }
                self.chunked = true;
            }
            "connection" => {
                for token in value.split(',') {
                    let t = token.trim();
                    if t.eq_ignore_ascii_case("close") {
                        self.connection_close = true;
                    } else if t.eq_ignore_ascii_case("keep-alive") {
                        self.connection_keep_alive = true;
                    }
                }
            }
            "expect" if value.trim().eq_ignore_ascii_case("100-continue") => self.expect_continue = true,
            _ => {}
        }
        Ok(())
    }

    fn framing(&self) -> Result<Framing, HeadError> {
        if self.chunked && self.content_length.is_some() {
            return Err(HeadError::Malformed("both Content-Length and Transfer-Encoding"));
        }
        Ok(if self.chunked {
            Framing::Chunked
        } else {
            match self.content_length {
                Some(0) | None => Framing::None,
                Some(n) => Framing::Length(n),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Request, HeadError> {
        Request::parse(s.as_bytes()).map(|(r, _)| r)
    }

    /// A head parsed into the previous request's buffers carries nothing of it: fewer headers,
    /// no query, other framing; and a partial head leaves the spare for the next try.
    #[test]
    fn a_reused_request_keeps_nothing_of_the_one_before() {
        let first = "PUT /b/k?uploads&x=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nX-Amz-Meta-A: 1\r\nExpect: 100-continue\r\n\r\n";
        let mut spare = Some(parse(first).unwrap());
        assert!(matches!(Request::parse_reusing(b"GET /b/o HTTP/1.1\r\nHost:", &mut spare), Err(HeadError::Partial)));
        assert!(spare.is_some(), "a partial head does not take the spare");
        let (r, _) = Request::parse_reusing(b"GET /b/o HTTP/1.0\r\nhost: h2\r\n\r\n", &mut spare).unwrap();
        assert!(spare.is_none());
        assert_eq!(
            (r.method, r.method_raw.as_str(), r.path.as_str(), r.query.as_str()),
            (Method::Get, "GET", "/b/o", "")
        );
        assert_eq!(r.headers, vec![("host".to_owned(), "h2".to_owned())]);
        assert_eq!((r.framing, r.keep_alive, r.expect_continue), (Framing::None, false, false));
        let fresh = parse("GET /b/o HTTP/1.0\r\nhost: h2\r\n\r\n").unwrap();
        assert_eq!(format!("{r:?}"), format!("{fresh:?}"));
    }

    #[test]
    fn table() {
        let r = parse("GET /b/k?x=1 HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
        assert_eq!((r.method, r.path.as_str(), r.query.as_str(), r.keep_alive), (Method::Get, "/b/k", "x=1", true));
        assert_eq!(r.framing, Framing::None);
        let r = parse("PUT /b/k HTTP/1.1\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n").unwrap();
        assert_eq!(r.framing, Framing::Length(5));
        assert!(r.expect_continue);
        let r = parse("PUT /b/k HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n").unwrap();
        assert_eq!(r.framing, Framing::Chunked);
        let r = parse("GET / HTTP/1.0\r\n\r\n").unwrap();
        assert!(!r.keep_alive);
        let r = parse("GET / HTTP/1.1\r\nConnection: close\r\n\r\n").unwrap();
        assert!(!r.keep_alive);
        let r = parse("GET http://host:9/b/k?q HTTP/1.1\r\n\r\n").unwrap();
        assert_eq!((r.path.as_str(), r.query.as_str()), ("/b/k", "q"));
    }

    #[test]
    fn smuggling_shapes_are_refused() {
        let bad = [
            "PUT / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
            "PUT / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            "PUT / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            "PUT / HTTP/1.1\r\nContent-Length: 1e3\r\n\r\n",
            "PUT / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
            "PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
            "GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n",
            "GET nopath HTTP/1.1\r\n\r\n",
            "GET / HTTP/1.1\r\nBad Header: x\r\n\r\n",
        ];
        for b in bad {
            assert!(matches!(parse(b), Err(HeadError::Malformed(_))), "{b:?} -> {:?}", parse(b).map(|r| r.framing));
        }
        assert_eq!(
            parse("PUT / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n").unwrap_err(),
            HeadError::UnsupportedEncoding
        );
        // Same Content-Length twice is tolerated.
        assert_eq!(
            parse("PUT / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n").unwrap().framing,
            Framing::Length(5)
        );
    }

    #[test]
    fn partial_and_limits() {
        assert_eq!(parse("GET / HTTP/1.1\r\nHost: x\r\n").unwrap_err(), HeadError::Partial);
        let big = format!("GET / HTTP/1.1\r\nX: {}\r\n", "a".repeat(limits::HEADER_BYTES_MAX));
        assert_eq!(parse(&big).unwrap_err(), HeadError::TooLarge);
        let many: String = (0..limits::HEADER_COUNT_MAX + 1).map(|i| format!("H{i}: v\r\n")).collect();
        assert_eq!(parse(&format!("GET / HTTP/1.1\r\n{many}\r\n")).unwrap_err(), HeadError::TooLarge);
        let long = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(limits::URI_BYTES_MAX));
        assert_eq!(parse(&long).unwrap_err(), HeadError::UriTooLong);
    }

    #[test]
    fn split_anywhere_gives_the_same_head() {
        let raw = b"PUT /bucket/key?partNumber=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc";
        let (full, n) = Request::parse(raw).unwrap();
        assert_eq!(n, raw.len() - 3);
        for cut in 0..n {
            assert_eq!(Request::parse(&raw[..cut]).unwrap_err(), HeadError::Partial);
        }
        assert_eq!(full.header("host"), Some("h"));
    }
}
