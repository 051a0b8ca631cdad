//! A streaming `multipart/form-data` parser (RFC 7578), fed whatever bytes the socket gives:
//! it never holds more than one part's headers and a delimiter's length of body bytes, so a
//! browser upload of any size passes through it in the memory of its buffers.

use std::fmt;

/// The most bytes of one part's header section.
pub const PART_HEAD_MAX: usize = 8 * 1024;
/// The longest boundary RFC 2046 allows.
const BOUNDARY_MAX: usize = 70;
/// Most whitespace between a delimiter and its line break (more: not a delimiter).
const WHITESPACE_MAX: usize = 64;

/// What the search for a delimiter line found.
enum Found {
    /// A delimiter line begins at this offset.
    At(usize),
    /// The bytes up to this offset are content, and the search goes on after them.
    Content(usize),
    /// No delimiter yet: the bytes before this offset are content, the rest may begin one.
    Wait(usize),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FormError(pub &'static str);

impl fmt::Display for FormError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// One part's headers: its field name, file name and type.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PartHead {
    pub name: String,
    pub filename: Option<String>,
    pub content_type: Option<String>,
}

/// What the parser found in the bytes it was fed.
#[derive(Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// A part begins (its bytes follow as `Data`).
    Part(PartHead),
    /// Bytes of the current part's body.
    Data(&'a [u8]),
    /// The current part ended.
    PartEnd,
    /// The closing delimiter: nothing after it matters.
    End,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Before the first delimiter (a preamble is skipped).
    Preamble,
    /// Just after a delimiter: `--` ends the form, else a line break starts a part.
    AfterDelimiter,
    Head,
    Body,
    Done,
}

/// The parser. `feed` it bytes as they come, `finish` it at the end of the body.
pub struct Multipart {
    /// `\r\n--boundary`: the body is read as if a line break came first, so the first delimiter
    /// looks like the others.
    delimiter: Vec<u8>,
    pending: Vec<u8>,
    state: State,
}

/// The boundary of a `multipart/form-data` Content-Type.
pub fn boundary(content_type: &str) -> Option<&str> {
    let mut parts = content_type.split(';');
    if !parts.next()?.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    parts.find_map(|p| {
        let (k, v) = p.split_once('=')?;
        if !k.trim().eq_ignore_ascii_case("boundary") {
            return None;
        }
        let v = v.trim();
        let v = v.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(v);
        (!v.is_empty() && v.len() <= BOUNDARY_MAX).then_some(v)
    })
}

impl Multipart {
    pub fn new(boundary: &str) -> Multipart {
        let mut delimiter = b"\r\n--".to_vec();
        delimiter.extend_from_slice(boundary.as_bytes());
        Multipart { delimiter, pending: b"\r\n".to_vec(), state: State::Preamble }
    }

    pub fn done(&self) -> bool {
        self.state == State::Done
    }

    /// Parses `input` (with what earlier calls left over), calling `out` for each event.
    pub fn feed(
        &mut self,
        input: &[u8],
        out: &mut dyn FnMut(Event<'_>) -> Result<(), FormError>,
    ) -> Result<(), FormError> {
        if self.state == State::Done {
            return Ok(());
        }
        self.pending.extend_from_slice(input);
        let mut pos = 0;
        loop {
            let rest = &self.pending[pos..];
            match self.state {
                State::Done => {
                    pos = self.pending.len();
                    break;
                }
                State::Preamble => match self.next_delimiter(rest) {
                    Found::At(i) => {
                        pos += i + self.delimiter.len();
                        self.state = State::AfterDelimiter;
                    }
                    Found::Content(n) => pos += n,
                    Found::Wait(keep_from) => {
                        pos += keep_from;
                        break;
                    }
                },
                State::AfterDelimiter => {
                    if rest.len() < 2 {
                        break;
                    }
                    if rest.starts_with(b"--") {
                        self.state = State::Done;
                        out(Event::End)?;
                        continue;
                    }
                    // Linear whitespace may follow a delimiter before its line break.
                    let ws = rest.iter().take_while(|b| matches!(b, b' ' | b'\t')).count();
                    if rest.len() < ws + 2 {
                        break;
                    }
                    if &rest[ws..ws + 2] != b"\r\n" {
                        return Err(FormError("a delimiter is not followed by a line break"));
                    }
                    pos += ws + 2;
                    self.state = State::Head;
                }
                State::Head => match find(rest, b"\r\n\r\n") {
                    Some(i) => {
                        let head = part_head(&rest[..i])?;
                        pos += i + 4;
                        self.state = State::Body;
                        out(Event::Part(head))?;
                    }
                    None if rest.len() > PART_HEAD_MAX => return Err(FormError("a part's headers are too long")),
                    None => break,
                },
                State::Body => match self.next_delimiter(rest) {
                    Found::At(i) => {
                        if i > 0 {
                            out(Event::Data(&rest[..i]))?;
                        }
                        pos += i + self.delimiter.len();
                        self.state = State::AfterDelimiter;
                        out(Event::PartEnd)?;
                    }
                    Found::Content(n) => {
                        out(Event::Data(&rest[..n]))?;
                        pos += n;
                    }
                    Found::Wait(keep_from) => {
                        if keep_from > 0 {
                            out(Event::Data(&rest[..keep_from]))?;
                        }
                        pos += keep_from;
                        break;
                    }
                },
            }
        }
        self.pending.drain(..pos);
        Ok(())
    }

    /// Where the next delimiter line is in `rest`: the delimiter followed by `--` or by
    /// optional whitespace and a line break. The same bytes followed by anything else are
    /// content (a boundary's text inside a file).
    fn next_delimiter(&self, rest: &[u8]) -> Found {
        let d = self.delimiter.len();
        match find(rest, &self.delimiter) {
            None => Found::Wait(rest.len().saturating_sub(d - 1)),
            Some(i) => {
                let after = &rest[i + d..];
                let ws = after.iter().take_while(|b| matches!(b, b' ' | b'\t')).count();
                if after.starts_with(b"--") || after[ws..].starts_with(b"\r\n") {
                    Found::At(i)
                } else if ws > WHITESPACE_MAX || after.len() >= ws + 2 {
                    Found::Content(i + 1)
                } else {
                    // Too few bytes yet to tell: keep them from the delimiter on.
                    Found::Wait(i)
                }
            }
        }
    }

    /// The body ended: an error unless the closing delimiter was seen.
    pub fn finish(&self) -> Result<(), FormError> {
        if self.state == State::Done { Ok(()) } else { Err(FormError("the form ends before its closing delimiter")) }
    }
}

/// Where `needle` first occurs in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let first = *needle.first()?;
    let mut from = 0;
    while from + needle.len() <= hay.len() {
        let i = from + hay[from..=hay.len() - needle.len()].iter().position(|&b| b == first)?;
        if &hay[i..i + needle.len()] == needle {
            return Some(i);
        }
        from = i + 1;
    }
    None
}

/// A part's header lines: `Content-Disposition: form-data; name="…"; filename="…"` and
/// `Content-Type`; others are ignored.
fn part_head(raw: &[u8]) -> Result<PartHead, FormError> {
    let text = std::str::from_utf8(raw).map_err(|_| FormError("a part's headers are not UTF-8"))?;
    let mut head = PartHead::default();
    let mut named = false;
    for line in text.split("\r\n") {
        let Some((k, v)) = line.split_once(':') else {
            return Err(FormError("a part's header line has no colon"));
        };
        let v = v.trim();
        if k.trim().eq_ignore_ascii_case("content-disposition") {
            let mut params = split_params(v);
            if !params.next().is_some_and(|d| d.trim().eq_ignore_ascii_case("form-data")) {
                return Err(FormError("a part is not form-data"));
            }
            for p in params {
                let Some((pk, pv)) = p.split_once('=') else { continue };
                let pv = unquote(pv.trim());
                match pk.trim().to_ascii_lowercase().as_str() {
                    "name" => {
                        head.name = pv;
                        named = true;
                    }
                    "filename" => head.filename = Some(pv),
                    _ => {}
                }
            }
        } else if k.trim().eq_ignore_ascii_case("content-type") {
            head.content_type = Some(v.to_owned());
        }
    }
    if !named {
        return Err(FormError("a part has no name"));
    }
    Ok(head)
}

/// `;`-separated parameters, a `;` inside quotes kept.
fn split_params(v: &str) -> impl Iterator<Item = &str> {
    let mut quoted = false;
    let mut start = 0;
    let mut out = Vec::new();
    for (i, c) in v.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ';' if !quoted => {
                out.push(&v[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&v[start..]);
    out.into_iter()
}

/// A quoted-string's value (`\"` and `\\` unescaped), or the token as is.
fn unquote(v: &str) -> String {
    let Some(inner) = v.strip_prefix('"').and_then(|v| v.strip_suffix('"')) else { return v.to_owned() };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The events of `body` fed in pieces of `step` bytes, data joined per part.
    fn parse(body: &[u8], step: usize) -> Result<Vec<(PartHead, Vec<u8>)>, FormError> {
        let mut m = Multipart::new("XyZ");
        let mut parts: Vec<(PartHead, Vec<u8>)> = Vec::new();
        for chunk in body.chunks(step.max(1)) {
            m.feed(chunk, &mut |e| {
                match e {
                    Event::Part(h) => parts.push((h, Vec::new())),
                    Event::Data(d) => parts.last_mut().expect("data in a part").1.extend_from_slice(d),
                    Event::PartEnd | Event::End => {}
                }
                Ok(())
            })?;
        }
        m.finish()?;
        Ok(parts)
    }

    const FORM: &[u8] = b"preamble\r\n--XyZ\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\nuser/${filename}\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a;b \\\"c\\\".txt\"\r\nContent-Type: text/plain\r\n\r\nline one\r\n--XyZnot a delimiter\r\n\r\n--XyZ--\r\nepilogue";

    #[test]
    fn any_split_parses_the_same() {
        let whole = parse(FORM, FORM.len()).unwrap();
        assert_eq!(whole.len(), 2);
        assert_eq!((whole[0].0.name.as_str(), whole[0].1.as_slice()), ("key", &b"user/${filename}"[..]));
        assert_eq!(whole[1].0.filename.as_deref(), Some("a;b \"c\".txt"));
        assert_eq!(whole[1].0.content_type.as_deref(), Some("text/plain"));
        assert_eq!(whole[1].1, b"line one\r\n--XyZnot a delimiter\r\n");
        for step in 1..FORM.len() {
            assert_eq!(parse(FORM, step).unwrap(), whole, "in pieces of {step}");
        }
    }

    #[test]
    fn refusals() {
        assert!(parse(b"--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nno end", 7).is_err());
        assert!(parse(b"--XyZ\r\nContent-Disposition: attachment; name=\"a\"\r\n\r\nx\r\n--XyZ--", 7).is_err());
        assert!(parse(b"--XyZ\r\nContent-Disposition: form-data\r\n\r\nx\r\n--XyZ--", 7).is_err());
        assert!(parse(b"--XyZjunk", 3).is_err());
        let long = format!("--XyZ\r\nX-Long: {}\r\n\r\n", "a".repeat(PART_HEAD_MAX + 1));
        assert!(parse(long.as_bytes(), 100).is_err());
        assert_eq!(parse(b"--XyZ--", 1).unwrap(), vec![]);
    }

    #[test]
    fn boundaries() {
        assert_eq!(boundary("multipart/form-data; boundary=abc"), Some("abc"));
        assert_eq!(boundary("Multipart/Form-Data;boundary=\"a b\""), Some("a b"));
        assert_eq!(boundary("multipart/mixed; boundary=abc"), None);
        assert_eq!(boundary("multipart/form-data"), None);
        assert_eq!(boundary(&format!("multipart/form-data; boundary={}", "x".repeat(71))), None);
    }
}
