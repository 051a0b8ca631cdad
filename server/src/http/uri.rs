//! The URL codec: percent-decoding (exactly once, never normalising) and AWS's URI encoding,
//! and the decoded query.

/// Percent-decodes to bytes (invalid escapes stay literal), then to a string (lossy).
pub fn percent_decode_bytes(s: &str) -> Vec<u8> {
    percent_encoding::percent_decode_str(s).collect()
}

/// Percent-decodes once to UTF-8; `None` when the bytes are not UTF-8 (never replaced, so two
/// different names cannot collapse into one).
pub fn percent_decode(s: &str) -> Option<String> {
    String::from_utf8(percent_decode_bytes(s)).ok()
}

/// AWS's URI encoding: everything but `A-Z a-z 0-9 - _ . ~` is `%XX` (and `/` too unless it is
/// a path being encoded).
pub fn uri_encode(s: &str, encode_slash: bool) -> String {
    uri_encode_bytes(s.as_bytes(), encode_slash)
}

pub fn uri_encode_bytes(bytes: &[u8], encode_slash: bool) -> String {
    let mut out = String::with_capacity(bytes.len() * 3 / 2);
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') || (b == b'/' && !encode_slash) {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(char::from(b"0123456789ABCDEF"[(b >> 4) as usize]));
            out.push(char::from(b"0123456789ABCDEF"[(b & 15) as usize]));
        }
    }
    out
}

/// The decoded query: parameters in order, each name and value percent-decoded once.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Query(pub Vec<(String, String)>);

impl Query {
    /// Decodes every parameter once; `None` if one does not decode to UTF-8.
    pub fn parse(raw: &str) -> Option<Query> {
        raw.split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                Some((percent_decode(k)?, percent_decode(v)?))
            })
            .collect::<Option<Vec<_>>>()
            .map(Query)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(k, _)| k == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_once_and_encode_as_aws_does() {
        assert_eq!(percent_decode("a%2520b").as_deref(), Some("a%20b"));
        assert_eq!(percent_decode("%FE"), None);
        assert_eq!(uri_encode("a b/c~", false), "a%20b/c~");
        assert_eq!(uri_encode("a b/c", true), "a%20b%2Fc");
        assert_eq!(Query::parse("prefix=%FE"), None);
        let q = Query::parse("prefix=a%2520b&delimiter=%2F&empty&x=").unwrap();
        assert_eq!(
            (q.get("prefix"), q.get("delimiter"), q.has("empty"), q.get("x")),
            (Some("a%20b"), Some("/"), true, Some(""))
        );
    }
}
