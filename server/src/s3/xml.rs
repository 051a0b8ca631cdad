//! S3 XML: a small writer for responses (escaped, with S3's namespace on the root) and a bounded
//! parser of request bodies into a tiny element tree.

use quick_xml::events::Event;

use crate::limits;

pub const S3_NS: &str = "http://s3.amazonaws.com/doc/2006-03-01/";

/// The declaration every document this writer makes starts with.
pub const DECLARATION: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";

/// An ETag as S3 sends it, in headers and XML alike: in double quotes.
pub fn quoted(etag: &str) -> String {
    format!("\"{etag}\"")
}

/// Writes XML into a buffer. Element names are static; text is escaped.
pub struct XmlWriter {
    out: String,
}

impl Default for XmlWriter {
    fn default() -> Self {
        XmlWriter::new()
    }
}

impl XmlWriter {
    pub fn new() -> XmlWriter {
        let mut out = String::with_capacity(1024);
        out.push_str(DECLARATION);
        XmlWriter { out }
    }

    /// Opens the root element with S3's namespace.
    pub fn open_root(&mut self, name: &str) {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push_str(" xmlns=\"");
        self.out.push_str(S3_NS);
        self.out.push_str("\">");
    }

    pub fn open_plain(&mut self, name: &str) {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push('>');
    }

    pub fn open(&mut self, name: &str) {
        self.open_plain(name);
    }

    pub fn close(&mut self, name: &str) {
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
    }

    /// An empty root (`<Name xmlns="..."/>`).
    pub fn empty_root(&mut self, name: &str) {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push_str(" xmlns=\"");
        self.out.push_str(S3_NS);
        self.out.push_str("\"/>");
    }

    pub fn elem(&mut self, name: &str, text: &str) {
        self.open_plain(name);
        escape_into(&mut self.out, text);
        self.close(name);
    }

    /// Text content of the element opened last.
    pub fn elem_text(&mut self, text: &str) {
        escape_into(&mut self.out, text);
    }

    /// `<Grant><Grantee xsi:type="CanonicalUser"><ID>..</ID><DisplayName>..</DisplayName></Grantee>`
    pub fn open_grant_canonical(&mut self, id: &str) {
        self.out.push_str(
            "<Grant><Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"CanonicalUser\">",
        );
        self.elem("ID", id);
        self.elem("DisplayName", id);
        self.out.push_str("</Grantee>");
    }

    /// `<Grant><Grantee xsi:type="Group"><URI>..</URI></Grantee>`
    pub fn open_grant_group(&mut self, uri: &str) {
        self.out
            .push_str("<Grant><Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"Group\">");
        self.elem("URI", uri);
        self.out.push_str("</Grantee>");
    }

    pub fn elem_num(&mut self, name: &str, n: u64) {
        self.open_plain(name);
        self.out.push_str(&n.to_string());
        self.close(name);
    }

    pub fn elem_bool(&mut self, name: &str, b: bool) {
        self.elem(name, if b { "true" } else { "false" });
    }

    /// An owner or initiator: `<Tag><ID>id</ID><DisplayName>id</DisplayName></Tag>`.
    pub fn owner(&mut self, tag: &str, id: &str) {
        self.open(tag);
        self.elem("ID", id);
        self.elem("DisplayName", id);
        self.close(tag);
    }

    /// `<ETag>"etag"</ETag>`.
    pub fn etag(&mut self, etag: &str) {
        self.elem("ETag", &quoted(etag));
    }

    pub fn finish(self) -> Vec<u8> {
        self.out.into_bytes()
    }
}

/// Escapes text content. Control characters (keys may hold them) become character references
/// in lowercase hex, exactly as S3 writes them (`&#x1;`), although XML 1.0 parsers refuse all
/// but `&#xd;`: clients that list such keys ask for `encoding-type=url`.
fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("&#x{:x};", c as u32));
            }
            c => out.push(c),
        }
    }
}

/// Characters XML 1.0 allows in a document (its `Char` production).
pub fn xml_char(c: char) -> bool {
    matches!(c as u32, 0x9 | 0xA | 0xD | 0x20..=0xD7FF | 0xE000..=0xFFFD | 0x10000..=0x10FFFF)
}

/// A parsed element: local name, concatenated text, children.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Element {
    pub name: String,
    pub text: String,
    pub children: Vec<Element>,
}

impl Element {
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    pub fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.as_str())
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XmlError(pub &'static str);

/// Parses a whole document into its root element. Namespaces are dropped (local names only);
/// depth, element count and size are bounded.
pub fn parse(doc: &[u8]) -> Result<Element, XmlError> {
    if doc.len() > limits::XML_BODY_BYTES_MAX {
        return Err(XmlError("document too large"));
    }
    let text = std::str::from_utf8(doc).map_err(|_| XmlError("not UTF-8"))?;
    let mut reader = quick_xml::Reader::from_str(text);
    reader.config_mut().check_end_names = true;
    let mut tree = Tree::default();
    loop {
        match reader.read_event().map_err(|_| XmlError("malformed XML"))? {
            Event::Start(e) => tree.open(e.local_name().into_inner())?,
            Event::Empty(e) => {
                tree.open(e.local_name().into_inner())?;
                tree.close()?;
            }
            Event::End(_) => tree.close()?,
            Event::Text(t) => {
                let s = t.decode().map_err(|_| XmlError("bad text"))?;
                let s = quick_xml::escape::unescape(&s).map_err(|_| XmlError("bad entity"))?;
                // Whitespace around the root is allowed.
                if !(tree.stack.is_empty() && s.trim().is_empty()) {
                    tree.text(&s, "text outside the root element")?;
                }
            }
            Event::CData(t) => {
                let s = std::str::from_utf8(&t).map_err(|_| XmlError("bad CDATA"))?;
                tree.text(s, "CDATA outside the root element")?;
            }
            Event::GeneralRef(r) => {
                let name = std::str::from_utf8(&r).map_err(|_| XmlError("bad entity"))?;
                let c = resolve_reference(name)?;
                tree.text(c.encode_utf8(&mut [0; 4]), "entity outside the root element")?;
            }
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) => {}
            Event::DocType(_) => return Err(XmlError("DTDs are not accepted")),
            Event::Eof => break,
        }
    }
    if !tree.stack.is_empty() {
        return Err(XmlError("unclosed element"));
    }
    tree.root.ok_or(XmlError("empty document"))
}

/// The document as far as it has been read: the open elements and, once closed, the root.
#[derive(Default)]
struct Tree {
    stack: Vec<Element>,
    root: Option<Element>,
    count: usize,
}

impl Tree {
    fn open(&mut self, name: &[u8]) -> Result<(), XmlError> {
        if self.root.is_some() {
            return Err(XmlError("content after the root element"));
        }
        self.count += 1;
        if self.count > limits::XML_ELEMENTS_MAX || self.stack.len() >= limits::XML_DEPTH_MAX {
            return Err(XmlError("document too complex"));
        }
        let name = std::str::from_utf8(name).map_err(|_| XmlError("bad name"))?;
        self.stack.push(Element { name: name.to_owned(), ..Default::default() });
        Ok(())
    }

    fn close(&mut self) -> Result<(), XmlError> {
        let el = self.stack.pop().ok_or(XmlError("unbalanced end tag"))?;
        match self.stack.last_mut() {
            Some(parent) => parent.children.push(el),
            None => self.root = Some(el),
        }
        Ok(())
    }

    /// Adds text to the open element; `outside` says what was found when none is open.
    fn text(&mut self, s: &str, outside: &'static str) -> Result<(), XmlError> {
        if !s.chars().all(xml_char) {
            return Err(XmlError("a character XML 1.0 does not allow"));
        }
        match self.stack.last_mut() {
            Some(el) => el.text.push_str(s),
            None => return Err(XmlError(outside)),
        }
        Ok(())
    }
}

/// The character an entity or character reference stands for. A reference to a character XML 1.0
/// does not allow (`&#0;`, `&#x1;`) is malformed, never a different key.
fn resolve_reference(name: &str) -> Result<char, XmlError> {
    match name {
        "amp" => Ok('&'),
        "lt" => Ok('<'),
        "gt" => Ok('>'),
        "quot" => Ok('"'),
        "apos" => Ok('\''),
        _ => {
            let code = if let Some(hex) = name.strip_prefix("#x") {
                u32::from_str_radix(hex, 16).ok()
            } else if let Some(dec) = name.strip_prefix('#') {
                dec.parse::<u32>().ok()
            } else {
                None
            };
            code.and_then(char::from_u32)
                .filter(|c| xml_char(*c))
                .ok_or(XmlError("reference to a character XML 1.0 does not allow"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_escaped_with_namespace() {
        let mut w = XmlWriter::new();
        w.open_root("ListBucketResult");
        w.elem("Key", "a&b<c>\"'");
        w.elem_num("MaxKeys", 1000);
        w.close("ListBucketResult");
        let s = String::from_utf8(w.finish()).unwrap();
        assert_eq!(
            s,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Key>a&amp;b&lt;c&gt;&quot;&apos;</Key><MaxKeys>1000</MaxKeys></ListBucketResult>"
        );
    }

    #[test]
    fn control_characters_are_written_as_s3_writes_them() {
        let mut w = XmlWriter::new();
        w.elem("Key", "a\u{1}b\rc\td\u{1b}");
        let s = String::from_utf8(w.finish()).unwrap();
        assert!(s.ends_with("<Key>a&#x1;b&#xd;c\td&#x1b;</Key>"), "{s}");
        assert_eq!(parse(b"<a>x&#9;&#xD;&#10;y</a>").unwrap().text, "x\t\r\ny");
    }

    #[test]
    fn parses_delete_documents() {
        let doc = br#"<?xml version="1.0" encoding="UTF-8"?>
<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Object><Key>a&amp;b</Key></Object><Object><Key>c&#x41;</Key><VersionId>null</VersionId></Object><Quiet>true</Quiet></Delete>"#;
        let root = parse(doc).unwrap();
        assert_eq!(root.name, "Delete");
        let keys: Vec<_> = root.children_named("Object").map(|o| o.child_text("Key").unwrap().to_owned()).collect();
        assert_eq!(keys, vec!["a&b", "cA"]);
        assert_eq!(root.child_text("Quiet"), Some("true"));
    }

    #[test]
    fn rejects_bad_documents() {
        for bad in [
            &b"<a><b></a>"[..],
            b"<a>",
            b"",
            b"<a/><b/>",
            b"<!DOCTYPE x [<!ENTITY e \"boom\">]><a>&e;</a>",
            b"<a>&unknown;</a>",
            b"text",
            b"<a>&#0;</a>",
            b"<a>&#x1;</a>",
            b"<a>\x01</a>",
            b"<a><![CDATA[\x02]]></a>",
        ] {
            assert!(parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        let deep = "<a>".repeat(limits::XML_DEPTH_MAX + 1) + &"</a>".repeat(limits::XML_DEPTH_MAX + 1);
        assert!(parse(deep.as_bytes()).is_err());
    }
}
