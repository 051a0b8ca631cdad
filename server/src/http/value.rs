//! Header values that do not allocate when short (issue 16): dates, ETags, request ids, lengths
//! and content types fit inline; longer values (user metadata, long content types) go on the
//! heap as before.

use std::fmt;

/// Bytes kept inline: an HTTP date is 29, a quoted multipart ETag up to 40.
const INLINE: usize = 46;

/// A response header's value.
#[derive(Clone)]
pub struct HeaderValue(Repr);

#[derive(Clone)]
enum Repr {
    Static(&'static str),
    Inline { len: u8, buf: [u8; INLINE] },
    Heap(String),
}

impl HeaderValue {
    /// An empty value to write into (`fmt::Write`): inline until it outgrows `INLINE`.
    pub const fn new() -> HeaderValue {
        HeaderValue(Repr::Inline { len: 0, buf: [0; INLINE] })
    }

    /// A value formatted from `args` (inline when it fits).
    pub fn format(args: fmt::Arguments<'_>) -> HeaderValue {
        let mut v = HeaderValue::new();
        let _ = fmt::Write::write_fmt(&mut v, args);
        v
    }

    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Static(s) => s,
            // Only whole `str`s are ever copied in (`write_str`).
            Repr::Inline { len, buf } => std::str::from_utf8(&buf[..*len as usize]).unwrap_or_default(),
            Repr::Heap(s) => s,
        }
    }
}

impl Default for HeaderValue {
    fn default() -> HeaderValue {
        HeaderValue::new()
    }
}

impl fmt::Write for HeaderValue {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        match &mut self.0 {
            Repr::Inline { len, buf } if *len as usize + s.len() <= INLINE => {
                let at = *len as usize;
                buf[at..at + s.len()].copy_from_slice(s.as_bytes());
                *len += s.len() as u8;
            }
            Repr::Heap(h) => h.push_str(s),
            _ => {
                let mut h = String::with_capacity(self.as_str().len() + s.len());
                h.push_str(self.as_str());
                h.push_str(s);
                self.0 = Repr::Heap(h);
            }
        }
        Ok(())
    }
}

impl std::ops::Deref for HeaderValue {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Display for HeaderValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for HeaderValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl PartialEq for HeaderValue {
    fn eq(&self, other: &HeaderValue) -> bool {
        self.as_str() == other.as_str()
    }
}

impl PartialEq<str> for HeaderValue {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for HeaderValue {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl From<String> for HeaderValue {
    fn from(s: String) -> HeaderValue {
        HeaderValue(Repr::Heap(s))
    }
}

impl From<&String> for HeaderValue {
    fn from(s: &String) -> HeaderValue {
        HeaderValue::from(s.as_str())
    }
}

impl From<&str> for HeaderValue {
    fn from(s: &str) -> HeaderValue {
        let mut v = HeaderValue::new();
        let _ = fmt::Write::write_str(&mut v, s);
        v
    }
}

impl HeaderValue {
    /// A value that is a `'static` string (no copy).
    pub const fn from_static(s: &'static str) -> HeaderValue {
        HeaderValue(Repr::Static(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_values_stay_inline_and_long_ones_spill_whole() {
        let v = HeaderValue::format(format_args!("\"{}\"", "d41d8cd98f00b204e9800998ecf8427e-10000"));
        assert!(matches!(v.0, Repr::Inline { .. }));
        assert_eq!(v, "\"d41d8cd98f00b204e9800998ecf8427e-10000\"");
        let long = "x".repeat(INLINE) + "é";
        let mut w = HeaderValue::from("ab");
        fmt::Write::write_str(&mut w, &long).unwrap();
        assert!(matches!(w.0, Repr::Heap(_)));
        assert_eq!(w.as_str(), format!("ab{long}"));
        let exact = "y".repeat(INLINE);
        assert_eq!(HeaderValue::from(exact.as_str()).as_str(), exact);
        assert_eq!(HeaderValue::from_static("bytes"), "bytes");
    }
}
