//! The `Range` header of GET: one byte range, parsed, then checked against the object size.

/// A syntactically valid single byte range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ByteRange {
    /// `bytes=first-last` (last inclusive) or `bytes=first-` (last = None).
    From { first: u64, last: Option<u64> },
    /// `bytes=-n`: the last n bytes.
    Suffix(u64),
}

/// What a Range header means for an object of a given size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeCheck {
    /// Serve the whole object with 200 (no header, or one S3 ignores).
    Whole,
    /// Serve `len` bytes from `start` with 206.
    Partial { start: u64, len: u64 },
    /// 416 with `Content-Range: bytes */size`.
    Unsatisfiable,
}

/// Parses a Range header value. `None` for anything that is not exactly one byte range (S3 serves
/// the whole object for those, as RFC 9110 allows).
pub fn parse(value: &str) -> Option<ByteRange> {
    let spec = value.trim().strip_prefix("bytes=")?.trim();
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (a, b) = (a.trim(), b.trim());
    let num = |s: &str| -> Option<u64> {
        if s.is_empty() || s.len() > 20 || !s.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    if a.is_empty() {
        return Some(ByteRange::Suffix(num(b)?));
    }
    let first = num(a)?;
    if b.is_empty() {
        return Some(ByteRange::From { first, last: None });
    }
    let last = num(b)?;
    if last < first {
        return None;
    }
    Some(ByteRange::From { first, last: Some(last) })
}

impl ByteRange {
    /// Resolves the range against an object of `size` bytes; the result stays inside `0..size`.
    pub fn check(self, size: u64) -> RangeCheck {
        match self {
            ByteRange::From { first, last } => {
                if first >= size {
                    return RangeCheck::Unsatisfiable;
                }
                let last = last.map_or(size - 1, |l| l.min(size - 1));
                RangeCheck::Partial { start: first, len: last - first + 1 }
            }
            ByteRange::Suffix(n) => {
                if n == 0 || size == 0 {
                    return RangeCheck::Unsatisfiable;
                }
                let len = n.min(size);
                RangeCheck::Partial { start: size - len, len }
            }
        }
    }
}

/// Parse and check in one step; a missing or ignorable header means the whole object.
pub fn resolve(header: Option<&str>, size: u64) -> RangeCheck {
    match header.and_then(parse) {
        Some(r) => r.check(size),
        None => RangeCheck::Whole,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RangeCheck::*;

    #[test]
    fn table() {
        let cases: &[(&str, u64, RangeCheck)] = &[
            ("bytes=0-99", 17242, Partial { start: 0, len: 100 }),
            ("bytes=0-0", 1, Partial { start: 0, len: 1 }),
            ("bytes=5-", 10, Partial { start: 5, len: 5 }),
            ("bytes=-3", 10, Partial { start: 7, len: 3 }),
            ("bytes=-30", 10, Partial { start: 0, len: 10 }),
            ("bytes=9-1000", 10, Partial { start: 9, len: 1 }),
            ("bytes=10-", 10, Unsatisfiable),
            ("bytes=10-20", 10, Unsatisfiable),
            ("bytes=-0", 10, Unsatisfiable),
            ("bytes=0-", 0, Unsatisfiable),
            ("bytes=-5", 0, Unsatisfiable),
            ("bytes=0-0", 0, Unsatisfiable),
            ("bytes=5-1", 10, Whole),
            ("bytes=0-1,3-4", 10, Whole),
            ("items=0-1", 10, Whole),
            ("bytes=a-b", 10, Whole),
            ("bytes=-", 10, Whole),
            ("bytes= 1 - 2 ", 10, Partial { start: 1, len: 2 }),
            ("bytes=18446744073709551615-", 10, Unsatisfiable),
            ("bytes=99999999999999999999999-", 10, Whole),
        ];
        for (h, size, want) in cases {
            assert_eq!(resolve(Some(h), *size), *want, "{h} on {size}");
        }
        assert_eq!(resolve(None, 10), Whole);
    }

    #[test]
    fn always_inside_the_object() {
        for size in [0u64, 1, 2, 7, 100] {
            for a in 0..110u64 {
                for b in 0..110u64 {
                    for h in [format!("bytes={a}-{b}"), format!("bytes={a}-"), format!("bytes=-{b}")] {
                        if let Partial { start, len } = resolve(Some(&h), size) {
                            assert!(len > 0 && start + len <= size, "{h} on {size}");
                        }
                    }
                }
            }
        }
    }
}
