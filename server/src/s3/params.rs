//! The query parameters of S3 operations, parsed once when the request is routed (`op.rs`), into
//! the types the handlers use. Every parser here is the only one of its parameter.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use engine::limits as engine_limits;

use crate::http::uri::{Query, uri_encode};
use crate::s3::error::{S3Error, S3ErrorCode};

/// `partNumber` (1..=10000).
pub fn part_number(v: &str) -> Result<u32, S3Error> {
    match v.trim().parse::<u32>() {
        Ok(n) if (1..=engine_limits::PART_NUMBER_MAX).contains(&n) => Ok(n),
        _ => Err(S3Error::new(
            S3ErrorCode::InvalidArgument,
            "Part number must be an integer between 1 and 10000, inclusive",
        )),
    }
}

/// `?versionId=`: `null` or an id as keel writes them; anything else is refused (400).
pub fn version(q: &Query) -> Result<Option<engine::VersionRef>, S3Error> {
    match q.get("versionId") {
        None => Ok(None),
        Some(v) => engine::VersionRef::parse(v).map(Some).ok_or_else(|| invalid_version(v)),
    }
}

pub fn invalid_version(v: &str) -> S3Error {
    S3Error::new(S3ErrorCode::InvalidArgument, "Invalid version id specified")
        .with_detail("ArgumentName", "versionId")
        .with_detail("ArgumentValue", v)
}

/// Continuation tokens are base64 of the last name of the page before (keys, buckets).
pub fn decode_token(t: &str) -> Result<String, S3Error> {
    let bad = || S3Error::new(S3ErrorCode::InvalidArgument, "The continuation token provided is incorrect");
    let bytes = B64.decode(t.trim()).map_err(|_| bad())?;
    String::from_utf8(bytes).map_err(|_| bad())
}

pub fn encode_token(last: &str) -> String {
    B64.encode(last.as_bytes())
}

/// A non-empty string parameter (an empty marker or delimiter is no marker or delimiter).
fn non_empty(q: &Query, name: &str) -> Option<String> {
    q.get(name).filter(|v| !v.is_empty()).map(str::to_owned)
}

/// `encoding-type=url`: names in the answer are URL-encoded (keys may hold bytes XML cannot).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Encoding {
    pub url: bool,
}

impl Encoding {
    pub fn parse(q: &Query) -> Result<Encoding, S3Error> {
        match q.get("encoding-type") {
            None => Ok(Encoding { url: false }),
            Some(v) if v.eq_ignore_ascii_case("url") => Ok(Encoding { url: true }),
            Some(_) => Err(S3Error::new(S3ErrorCode::InvalidArgument, "Invalid Encoding Method specified in Request")),
        }
    }

    /// A name as the answer carries it.
    pub fn name(self, s: &str) -> String {
        if self.url { uri_encode(s, false) } else { s.to_owned() }
    }
}

/// A bounded page size (`max-parts`, `max-uploads`): absent is the largest page.
fn max_param(q: &Query, name: &str) -> Result<usize, S3Error> {
    match q.get(name) {
        None => Ok(engine_limits::LIST_PAGE_KEYS_MAX),
        Some(v) => match v.trim().parse::<i64>() {
            Ok(n) if n >= 0 => Ok((n as usize).min(engine_limits::LIST_PAGE_KEYS_MAX)),
            _ => Err(S3Error::new(S3ErrorCode::InvalidArgument, format!("{name} must be a non-negative integer"))),
        },
    }
}

/// ListBuckets: `max-buckets` (1..=10000), `prefix`, `continuation-token`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListBuckets {
    pub max: Option<usize>,
    /// `None` when the request names no prefix (the answer then has no Prefix element).
    pub prefix: Option<String>,
    pub after: Option<String>,
}

impl ListBuckets {
    pub fn parse(q: &Query) -> Result<ListBuckets, S3Error> {
        let max = match q.get("max-buckets") {
            None => None,
            Some(v) => match v.trim().parse::<usize>() {
                Ok(n) if (1..=10_000).contains(&n) => Some(n),
                _ => {
                    return Err(S3Error::new(
                        S3ErrorCode::InvalidArgument,
                        "max-buckets must be an integer from 1 to 10000",
                    )
                    .with_detail("ArgumentName", "max-buckets")
                    .with_detail("ArgumentValue", v));
                }
            },
        };
        let prefix = q.get("prefix").map(str::to_owned);
        let after = q.get("continuation-token").map(decode_token).transpose()?;
        Ok(ListBuckets { max, prefix, after })
    }
}

/// What every object listing takes: `prefix`, `delimiter`, `max-keys`, `encoding-type`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Listing {
    pub prefix: String,
    pub delimiter: Option<String>,
    pub max_keys: usize,
    pub encoding: Encoding,
    /// `x-keel-cached=true`: a backend bucket lists what it holds locally, not its remote.
    pub cached: bool,
}

impl Listing {
    pub fn parse(q: &Query) -> Result<Listing, S3Error> {
        let max_keys = match q.get("max-keys") {
            None => engine_limits::LIST_PAGE_KEYS_MAX,
            Some(v) => {
                let n: i64 = v.trim().parse().map_err(|_| {
                    S3Error::new(
                        S3ErrorCode::InvalidArgument,
                        "Provided max-keys not an integer or within integer range",
                    )
                })?;
                if n < 0 {
                    return Err(S3Error::new(
                        S3ErrorCode::InvalidArgument,
                        "Argument maxKeys must be an integer between 0 and 2147483647",
                    ));
                }
                (n as usize).min(engine_limits::LIST_PAGE_KEYS_MAX)
            }
        };
        Ok(Listing {
            cached: q.get("x-keel-cached").is_some_and(|v| v.eq_ignore_ascii_case("true")),
            prefix: q.get("prefix").unwrap_or("").to_owned(),
            delimiter: non_empty(q, "delimiter"),
            max_keys,
            encoding: Encoding::parse(q)?,
        })
    }
}

/// ListObjects (v1): `marker`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListV1 {
    pub listing: Listing,
    pub marker: Option<String>,
}

impl ListV1 {
    pub fn parse(q: &Query) -> Result<ListV1, S3Error> {
        Ok(ListV1 { listing: Listing::parse(q)?, marker: non_empty(q, "marker") })
    }
}

/// ListObjectsV2: `continuation-token` (which wins over `start-after`), `start-after`,
/// `fetch-owner`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListV2 {
    pub listing: Listing,
    /// The token as sent, echoed back.
    pub token: Option<String>,
    pub start_after: Option<String>,
    /// Where the page starts: the token's key, else `start_after`.
    pub after: Option<String>,
    pub fetch_owner: bool,
}

impl ListV2 {
    pub fn parse(q: &Query) -> Result<ListV2, S3Error> {
        let listing = Listing::parse(q)?;
        let token = q.get("continuation-token").map(str::to_owned);
        let start_after = non_empty(q, "start-after");
        let after = match &token {
            Some(t) => Some(decode_token(t)?),
            None => start_after.clone(),
        };
        let fetch_owner = q.get("fetch-owner").is_some_and(|v| v.eq_ignore_ascii_case("true"));
        Ok(ListV2 { listing, token, start_after, after, fetch_owner })
    }
}

/// ListObjectVersions: `key-marker`, `version-id-marker`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListVersions {
    pub listing: Listing,
    pub key_marker: Option<String>,
    pub version_id_marker: String,
}

impl ListVersions {
    pub fn parse(q: &Query) -> Result<ListVersions, S3Error> {
        Ok(ListVersions {
            listing: Listing::parse(q)?,
            key_marker: non_empty(q, "key-marker"),
            version_id_marker: q.get("version-id-marker").unwrap_or("").to_owned(),
        })
    }
}

/// ListMultipartUploads.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListUploads {
    pub encoding: Encoding,
    pub prefix: String,
    pub delimiter: Option<String>,
    pub key_marker: Option<String>,
    pub upload_id_marker: Option<String>,
    pub max_uploads: usize,
}

impl ListUploads {
    pub fn parse(q: &Query) -> Result<ListUploads, S3Error> {
        let encoding = Encoding::parse(q)?;
        Ok(ListUploads {
            encoding,
            prefix: q.get("prefix").unwrap_or("").to_owned(),
            delimiter: non_empty(q, "delimiter"),
            key_marker: non_empty(q, "key-marker"),
            upload_id_marker: non_empty(q, "upload-id-marker"),
            max_uploads: max_param(q, "max-uploads")?,
        })
    }
}

/// The part an UploadPart or UploadPartCopy writes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PartTarget {
    pub upload_id: String,
    pub part_number: u32,
}

impl PartTarget {
    /// Routed only when both parameters are present.
    pub fn parse(q: &Query) -> Result<PartTarget, S3Error> {
        let upload_id = q.get("uploadId").unwrap_or_default().to_owned();
        let part_number = part_number(q.get("partNumber").unwrap_or_default())?;
        Ok(PartTarget { upload_id, part_number })
    }
}

/// ListParts: `part-number-marker`, `max-parts`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListParts {
    pub upload_id: String,
    pub marker: u32,
    pub max_parts: usize,
}

impl ListParts {
    pub fn parse(q: &Query) -> Result<ListParts, S3Error> {
        let marker = match q.get("part-number-marker") {
            None | Some("") => 0,
            Some(v) => v
                .trim()
                .parse::<u32>()
                .map_err(|_| S3Error::new(S3ErrorCode::InvalidArgument, "part-number-marker must be an integer"))?,
        };
        let max_parts = max_param(q, "max-parts")?;
        Ok(ListParts { upload_id: q.get("uploadId").unwrap_or_default().to_owned(), marker, max_parts })
    }
}

/// The `response-*` parameters of GET and HEAD: headers the answer carries instead of the
/// stored ones, in the order `OVERRIDES` names them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Overrides(pub [Option<String>; 6]);

/// (response header, query parameter) of each override.
pub const OVERRIDES: [(&str, &str); 6] = [
    ("Content-Type", "response-content-type"),
    ("Content-Encoding", "response-content-encoding"),
    ("Content-Disposition", "response-content-disposition"),
    ("Cache-Control", "response-cache-control"),
    ("Expires", "response-expires"),
    ("Content-Language", "response-content-language"),
];

impl Overrides {
    pub fn parse(q: &Query) -> Result<Overrides, S3Error> {
        let mut out = Overrides::default();
        for (slot, (_, param)) in out.0.iter_mut().zip(OVERRIDES) {
            if let Some(v) = q.get(param) {
                // A header value must not carry control characters (response splitting).
                if v.bytes().any(|b| b < 0x20 && b != b'\t' || b == 0x7f) {
                    return Err(S3Error::new(
                        S3ErrorCode::InvalidArgument,
                        format!("{param} holds a control character"),
                    ));
                }
                *slot = Some(v.to_owned());
            }
        }
        Ok(out)
    }
}

/// GetObject and HeadObject: `partNumber`, `response-*`, `versionId`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Read {
    pub part: Option<u32>,
    pub overrides: Overrides,
    pub version: Option<engine::VersionRef>,
}

impl Read {
    pub fn parse(q: &Query) -> Result<Read, S3Error> {
        let part = q.get("partNumber").map(part_number).transpose()?;
        let version = version(q)?;
        Ok(Read { part, overrides: Overrides::parse(q)?, version })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Query {
        Query::parse(s).unwrap()
    }

    #[test]
    fn parsed_once() {
        assert_eq!(part_number(" 7 ").unwrap(), 7);
        assert!(part_number("0").is_err() && part_number("10001").is_err() && part_number("x").is_err());
        assert_eq!(version(&q("versionId=null")).unwrap(), Some(engine::VersionRef::Null));
        assert!(version(&q("versionId=3")).is_err());
        assert_eq!(
            version(&q("versionId=0123456789abcdef0011223344556677")).unwrap(),
            Some(engine::VersionRef::Id(0x0123456789abcdef0011223344556677))
        );
        assert_eq!(decode_token(&encode_token("a/b")).unwrap(), "a/b");
        assert!(decode_token("!!").is_err());
        assert!(Encoding::parse(&q("encoding-type=URL")).unwrap().url);
        assert!(Encoding::parse(&q("encoding-type=gzip")).is_err());
        let l = ListV2::parse(&q("start-after=b&max-keys=5000&delimiter=")).unwrap();
        assert_eq!((l.after.as_deref(), l.listing.max_keys, l.listing.delimiter), (Some("b"), 1000, None));
        let l = ListV2::parse(&q(&format!("continuation-token={}&start-after=b", encode_token("c")))).unwrap();
        assert_eq!(l.after.as_deref(), Some("c"));
        assert!(Listing::parse(&q("max-keys=-1")).is_err());
        assert_eq!(ListParts::parse(&q("uploadId=u&part-number-marker=3")).unwrap().marker, 3);
        assert!(ListUploads::parse(&q("max-uploads=x")).is_err());
        let r = Read::parse(&q("partNumber=2&response-content-type=text/plain")).unwrap();
        assert_eq!((r.part, r.overrides.0[0].as_deref()), (Some(2), Some("text/plain")));
        assert!(Read::parse(&q("response-expires=a%0Db")).is_err());
        assert!(ListBuckets::parse(&q("max-buckets=0")).is_err());
    }
}
