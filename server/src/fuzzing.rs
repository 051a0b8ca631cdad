//! Properties the fuzz targets (`fuzz/fuzz_targets/`) check, kept in the library so the committed
//! regression inputs replay through the same code on stable (`tests/fuzz_regressions.rs`).
//! Each function panics when its property does not hold.

use crate::http::chunked::ChunkedDecoder;
use crate::http::request::{HeadError, Request};
use crate::s3::op::Op;
use crate::s3::{auth, range, xml};

/// A complete head parses to the same request however little of it has arrived: every strict
/// prefix is `Partial`, never a different answer.
pub fn http_request(data: &[u8]) {
    if let Ok((req, n)) = Request::parse(data) {
        assert!(n <= data.len());
        assert!(req.path.starts_with('/'));
        for k in 0..n {
            match Request::parse(&data[..k]) {
                Err(HeadError::Partial) => {}
                other => panic!("prefix {k} of a complete head gave {:?}", other.map(|(_, n)| n)),
            }
        }
    }
}

/// Any re-chunking of the input and any output buffer size decode to the same bytes and the
/// same outcome (the same error, for a malformed body).
pub fn chunked(data: &[u8]) {
    if data.len() < 2 {
        return;
    }
    let split = (data[0] as usize % 17) + 1;
    let out_size = (data[1] as usize % 29) + 1;
    let input = &data[2..];
    let whole = decode(input, input.len().max(1), 1 << 16);
    let pieces = decode(input, split, out_size);
    assert_eq!(whole, pieces, "split {split}, out {out_size}");
}

fn decode(input: &[u8], split: usize, out_size: usize) -> (Vec<u8>, bool, Option<crate::http::chunked::ChunkError>) {
    let mut d = ChunkedDecoder::new();
    let mut out = Vec::new();
    let mut buf = vec![0u8; out_size];
    for piece in input.chunks(split) {
        let mut at = 0;
        loop {
            match d.decode(&piece[at..], &mut buf) {
                Ok((c, p)) => {
                    assert!(c <= piece.len() - at && p <= buf.len());
                    out.extend_from_slice(&buf[..p]);
                    at += c;
                    if at == piece.len() || d.is_done() {
                        break;
                    }
                    assert!(c > 0 || p > 0, "no progress");
                }
                // A malformed body is rejected whole: what came before the error is discarded.
                Err(e) => return (Vec::new(), false, Some(e)),
            }
        }
        if d.is_done() {
            break;
        }
    }
    (out, d.is_done(), None)
}

/// A parsed range, checked against any size, stays inside the object.
pub fn range_header(data: &[u8]) {
    if data.len() < 8 {
        return;
    }
    let size = u64::from_le_bytes(data[..8].try_into().expect("8 bytes")) % (1 << 50);
    let text = String::from_utf8_lossy(&data[8..]);
    if let range::RangeCheck::Partial { start, len } = range::resolve(Some(&text), size) {
        assert!(len > 0, "empty partial range");
        assert!(start.checked_add(len).is_some_and(|e| e <= size), "{text:?} on {size}: {start}+{len}");
    }
}

/// Query parsing never panics, and SigV4's canonical query is a fixed point.
pub fn list_query(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Some(q) = crate::http::uri::Query::parse(&text) {
        for (k, _) in &q.0 {
            assert!(!k.contains('&') || text.contains('%'));
        }
    }
    let once = auth::canonical_query(&text, false);
    let twice = auth::canonical_query(&once, false);
    assert_eq!(once, twice);
    // Routed as any operation, the query's parameters parse into their types or into one error,
    // and what parses is in range.
    for target in ["/", "/b", "/b/k"] {
        for method in ["GET", "HEAD", "PUT", "POST", "DELETE"] {
            let raw = format!("{method} {target}?{text} HTTP/1.1\r\nHost: h\r\n\r\n");
            let Ok((req, _)) = Request::parse(raw.as_bytes()) else { continue };
            let route = crate::s3::op::Route::from_request(&req, &req.path, None);
            if route.invalid.is_some() {
                continue;
            }
            match &route.op {
                Op::UploadPart(t) | Op::UploadPartCopy(t) => assert!((1..=10_000).contains(&t.part_number)),
                Op::GetObject(r) | Op::HeadObject(r) => {
                    assert!(r.part.is_none_or(|n| (1..=10_000).contains(&n)));
                    assert!(r.overrides.0.iter().flatten().all(|v| !v.contains(['\r', '\n'])));
                }
                Op::ListObjectsV2(l) => assert!(l.listing.max_keys <= engine::limits::LIST_PAGE_KEYS_MAX),
                _ => {}
            }
        }
    }
}

/// The XML parser stays within its bounds and never panics.
pub fn xml_body(data: &[u8]) {
    if let Ok(root) = xml::parse(data) {
        fn depth(e: &xml::Element) -> usize {
            1 + e.children.iter().map(depth).max().unwrap_or(0)
        }
        assert!(depth(&root) <= crate::limits::XML_DEPTH_MAX);
    }
}

/// Any record that decodes re-encodes to a record that decodes to the same metadata.
pub fn meta_decode(data: &[u8]) {
    if let Ok(m) = engine::ObjectMeta::decode(data) {
        let again = engine::ObjectMeta::decode(&m.encode()).expect("re-encoded record decodes");
        assert_eq!(again, m);
    }
    if let Ok(b) = engine::BucketMeta::decode(data) {
        assert_eq!(engine::BucketMeta::decode(&b.encode()).expect("re-encoded bucket decodes"), b);
    }
    if let Ok(u) = engine::UploadMeta::decode(data) {
        assert_eq!(engine::UploadMeta::decode(&u.encode()).expect("re-encoded upload decodes"), u);
    }
}

/// CompleteMultipartUpload bodies: arbitrary bytes never panic the parser, and a parts list
/// derived from the input survives encode then parse unchanged.
pub fn xml_complete_multipart(data: &[u8]) {
    if let Ok(root) = xml::parse(data) {
        let _ = crate::s3::handlers::multipart::parse_complete(&root);
    }
    let text = String::from_utf8_lossy(data);
    let parts: Vec<engine::CompletePart> = text
        .split('\n')
        .enumerate()
        .filter(|(_, line)| !line.is_empty())
        .map(|(i, line)| engine::CompletePart { part_number: i as u32 + 1, etag: line.to_owned(), checksum: None })
        .collect();
    if parts.is_empty() {
        return;
    }
    let doc = crate::s3::handlers::multipart::encode_complete(&parts);
    // The writer puts control characters as S3 writes them (`&#x1;`); XML 1.0, and so the
    // parser, refuses those (but tab, newline and carriage return) and U+FFFE/U+FFFF: such a
    // document is malformed, never read as other text.
    if !parts.iter().all(|p| p.etag.chars().all(xml::xml_char)) {
        assert!(xml::parse(&doc).is_err(), "a character XML 1.0 forbids was read back");
        return;
    }
    let root = xml::parse(&doc).expect("our own document parses");
    let back = crate::s3::handlers::multipart::parse_complete(&root).expect("our own document is valid");
    assert_eq!(
        back.iter().map(|p| p.part_number).collect::<Vec<_>>(),
        parts.iter().map(|p| p.part_number).collect::<Vec<_>>()
    );
    assert_eq!(
        back.into_iter().map(|p| p.etag).collect::<Vec<_>>(),
        parts.into_iter().map(|p| p.etag).collect::<Vec<_>>()
    );
}

/// aws-chunked bodies: any re-chunking of the input and any output size decode to the same
/// payload, trailers and outcome; the decoder never produces more than it consumed.
pub fn aws_chunked(data: &[u8]) {
    use crate::s3::payload::AwsChunkedDecoder;
    if data.len() < 2 {
        return;
    }
    let split = (data[0] as usize % 13) + 1;
    let out_size = (data[1] as usize % 31) + 1;
    let input = &data[2..];
    let run = |split: usize, out_size: usize| {
        let mut d = AwsChunkedDecoder::new(None);
        let mut out = Vec::new();
        let mut buf = vec![0u8; out_size];
        let mut consumed = 0usize;
        for piece in input.chunks(split) {
            let mut at = 0;
            while at < piece.len() && !d.is_done() {
                match d.decode(&piece[at..], &mut buf) {
                    Ok((c, p)) => {
                        assert!(c > 0 || p > 0, "no progress");
                        assert!(p <= c, "produced more than consumed");
                        out.extend_from_slice(&buf[..p]);
                        at += c;
                        consumed += c;
                    }
                    Err(e) => return (Vec::new(), Vec::new(), false, Some(e)),
                }
            }
        }
        assert!(consumed <= input.len());
        assert_eq!(d.decoded, out.len() as u64);
        (out, d.trailers.clone(), d.is_done(), None)
    };
    assert_eq!(run(input.len().max(1), 1 << 16), run(split, out_size), "split {split}, out {out_size}");
}

/// Signature canonicalisation on arbitrary request heads never panics, and its pieces are
/// deterministic: the same head gives the same canonical request and SigV2 string.
pub fn sig_canonical(data: &[u8]) {
    let Ok((req, _)) = Request::parse(data) else { return };
    let names: Vec<String> = req.headers.iter().map(|(k, _)| k.clone()).collect();
    let signed = names.join(";");
    let one = auth::canonical_request(
        &req.method_raw,
        &req.path,
        &req.query,
        &signed,
        |n| req.header_joined(n),
        "UNSIGNED-PAYLOAD",
        false,
    );
    let two = auth::canonical_request(
        &req.method_raw,
        &req.path,
        &req.query,
        &signed,
        |n| req.header_joined(n),
        "UNSIGNED-PAYLOAD",
        false,
    );
    assert_eq!(one.is_ok(), two.is_ok());
    if let (Ok(a), Ok(b)) = (one, two) {
        assert_eq!(a, b);
        assert!(a.starts_with(&req.method_raw));
    }
    assert_eq!(
        auth::v2_string_to_sign(&req, "x", None, auth::V2Resource::AsSent),
        auth::v2_string_to_sign(&req, "x", None, auth::V2Resource::AsSent)
    );
    if let Some(a) = req.header("authorization")
        && let Ok(h) = auth::parse_v4_header(a)
    {
        assert!(a.contains(h.signature) && a.contains(h.signed_headers));
    }
}

/// A node record that decodes re-encodes to the same record (D24).
pub fn node_record(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(r) = engine::membership::NodeRecord::decode(text) {
        let again = engine::membership::NodeRecord::decode(&r.encode()).expect("re-encoded record decodes");
        assert_eq!(again, r);
    }
}

/// What cluster members send each other (listing and upload pages) and what a node reads at
/// start (its stamp, its settings) or from etcd (rebalance progress): no input panics, and a page that decodes re-encodes to
/// the same page.
pub fn cluster_wire(data: &[u8]) {
    use crate::cluster::peer;
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Some(page) = peer::decode_page(text) {
        assert_eq!(peer::decode_page(&peer::encode_page(&page)), Some(page));
    }
    if let Some(page) = peer::decode_uploads(text) {
        assert_eq!(peer::decode_uploads(&peer::encode_uploads(&page)), Some(page));
    }
    let _ = crate::cluster::parse_endpoints(text);
    let _ = crate::cluster::split_url(text);
    if let Ok(s) = crate::cluster::Stamp::parse(text) {
        assert_eq!(crate::cluster::Stamp::parse(&s.encode()), Ok(s));
    }
    // A member's rebalance progress (etcd): read leniently, re-encoded the same.
    let p = crate::cluster::rebalance::Progress::decode(text);
    assert_eq!(crate::cluster::rebalance::Progress::decode(&p.encode()), p);
    let _ = p.eta_secs(u64::from_le_bytes(data.get(..8).and_then(|b| b.try_into().ok()).unwrap_or([0; 8])));
    let _ = p.line();
}

/// The dates signed requests carry: no input panics, and a date that parses, printed back in
/// the forms keel writes, parses to the same instant.
pub fn dates(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for parsed in [crate::time::parse_any_date(text), crate::time::parse_iso8601(text)] {
        let Some(secs) = parsed else { continue };
        if !(0..=253_402_300_799).contains(&secs) {
            continue;
        }
        let ms = secs as u64 * 1000;
        assert_eq!(crate::time::parse_any_date(&crate::time::http_date(ms)), Some(secs), "{text:?}");
        assert_eq!(crate::time::parse_iso8601(&crate::time::iso8601_ms(ms)), Some(secs), "{text:?}");
    }
}

/// Tag sets (`x-amz-tagging` and the `Tagging` document): arbitrary input never panics, and a
/// set either form accepts reads back unchanged from what keel writes.
pub fn tagging(data: &[u8]) {
    use crate::s3::handlers::tagging::{document, from_document, from_query, to_query};
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(tags) = from_query(text)
        && engine::validate_tags(&tags, engine::OBJECT_TAGS_MAX).is_ok()
    {
        assert_eq!(from_query(&to_query(&tags)).expect("written query form reads"), tags);
    }
    if let Ok(root) = xml::parse(data)
        && let Ok(tags) = from_document(&root, engine::BUCKET_TAGS_MAX)
    {
        let back = xml::parse(&document(&tags)).expect("written document parses");
        assert_eq!(from_document(&back, engine::BUCKET_TAGS_MAX).expect("written document reads"), tags);
    }
}

/// Bucket configuration documents (lifecycle rules, object lock, CORS, public access block,
/// AccessControlPolicy):
/// arbitrary input never panics, and a lifecycle or CORS configuration keel accepts reads back
/// the same from what it writes.
pub fn bucket_configs(data: &[u8]) {
    use crate::s3::handlers::{cors, lifecycle, lock, policy};
    let Ok(root) = xml::parse(data) else { return };
    if let Ok(l) = lifecycle::parse(&root) {
        let back = xml::parse(&lifecycle::document(&l)).expect("written document parses");
        assert_eq!(lifecycle::parse(&back).expect("written document reads"), l);
    }
    if let Ok(c) = cors::parse(&root) {
        let back = xml::parse(&cors::document(&c)).expect("written document parses");
        assert_eq!(cors::parse(&back).expect("written document reads"), c);
        let stored = engine::Cors::decode(&c.encode()).expect("encoded rules decode");
        assert_eq!(stored, c);
    }
    let _ = lock::parse_configuration(&root);
    let _ = policy::parse_block(&root);
    let users = crate::s3::auth::Credentials::new([("fuzz".to_string(), "secret".to_string())]);
    if let Ok(grants) = crate::s3::handlers::acl::from_document(&root, &users) {
        assert!(grants.len() <= engine::GRANTS_MAX);
    }
}

/// Bucket policy documents (JSON): arbitrary input never panics; a policy keel accepts parses
/// again from its stored text to the same verdicts, and evaluating it never panics.
pub fn bucket_policy(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(p) = ::policy::Policy::parse(text, "fuzz") else { return };
    let again = ::policy::Policy::parse_stored(p.text()).expect("a stored policy parses again");
    assert_eq!(again.is_public(), p.is_public());
    struct Some3;
    impl ::policy::Facts for Some3 {
        fn values(&self, key: &str) -> Option<Vec<String>> {
            Some(vec![key.to_owned(), "10.0.0.1".into(), "2026-12-08T00:00:00Z".into(), "5".into()])
        }
    }
    for caller in [::policy::Caller::Anonymous, ::policy::Caller::User("fuzz")] {
        for (action, resource) in [("s3:GetObject", "arn:aws:s3:::fuzz/k"), ("s3:ListBucket", "arn:aws:s3:::fuzz")] {
            let req = ::policy::Request { caller, action, resource, facts: &Some3 };
            assert_eq!(p.evaluate(&req), again.evaluate(&req));
        }
    }
}

/// Browser form uploads: a `multipart/form-data` body gives the same parts whole and fed in
/// any two pieces (the split point is the input's first byte), and a POST policy document
/// (the input, base64-encoded) never panics its parser.
pub fn post_form(data: &[u8]) {
    use crate::s3::post::{form, policy};
    use base64::Engine;
    let _ = policy::parse(&base64::engine::general_purpose::STANDARD.encode(data));
    let Some((&split, body)) = data.split_first() else { return };
    let run = |pieces: &[&[u8]]| {
        let mut m = form::Multipart::new("XyZ");
        let mut parts: Vec<(form::PartHead, Vec<u8>)> = Vec::new();
        let mut bytes = 0usize;
        for piece in pieces {
            let fed = m.feed(piece, &mut |e| {
                match e {
                    form::Event::Part(h) => parts.push((h, Vec::new())),
                    form::Event::Data(d) => {
                        bytes += d.len();
                        parts.last_mut().expect("data only inside a part").1.extend_from_slice(d);
                    }
                    form::Event::PartEnd | form::Event::End => {}
                }
                Ok(())
            });
            if fed.is_err() {
                return None;
            }
        }
        assert!(bytes <= body.len(), "never more bytes out than in");
        Some((parts, m.done()))
    };
    let at = (split as usize).min(body.len());
    let whole = run(&[body]);
    let pieces = run(&[&body[..at], &body[at..]]);
    if let (Some(w), Some(p)) = (&whole, &pieces) {
        assert_eq!(w, p, "the same parts whatever the split");
    }
}

/// Every target by name, for the regression replay.
/// A property over one fuzz input; panics when it does not hold.
pub type Property = fn(&[u8]);

pub const TARGETS: &[(&str, Property)] = &[
    ("http_request", http_request),
    ("chunked", chunked),
    ("range_header", range_header),
    ("list_query", list_query),
    ("xml_body", xml_body),
    ("meta_decode", meta_decode),
    ("xml_complete_multipart", xml_complete_multipart),
    ("aws_chunked", aws_chunked),
    ("sig_canonical", sig_canonical),
    ("node_record", node_record),
    ("dates", dates),
    ("cluster_wire", cluster_wire),
    ("tagging", tagging),
    ("bucket_configs", bucket_configs),
    ("bucket_policy", bucket_policy),
    ("post_form", post_form),
];
