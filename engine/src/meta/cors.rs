//! A bucket's CORS configuration (PutBucketCors): the rules browsers' cross-origin requests
//! are checked against. Matching is the S3 front end's; the engine keeps the rules.
//!
//! Encoding: `u8 rule count`, then per rule `opt<str> id`, four string lists (`u16` count, then
//! `str` each: allowed methods, origins, headers, expose headers) and `opt<u32> max age`.

use crate::error::{Error, Result};

use super::codec::{Reader, Writer};

/// Most rules a configuration holds (S3's limit).
pub const CORS_RULES_MAX: usize = 100;
/// Most entries in one of a rule's lists (keel's limit; S3 bounds the document at 64 KiB).
pub const CORS_LIST_MAX: usize = 1000;

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct CorsRule {
    pub id: Option<String>,
    pub allowed_methods: Vec<String>,
    pub allowed_origins: Vec<String>,
    pub allowed_headers: Vec<String>,
    pub expose_headers: Vec<String>,
    pub max_age_secs: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Cors {
    pub rules: Vec<CorsRule>,
}

fn write_list(w: &mut Writer, list: &[String]) {
    w.u16(list.len() as u16);
    for s in list {
        w.bytes(s.as_bytes());
    }
}

fn read_list(r: &mut Reader<'_>) -> Result<Vec<String>> {
    (0..r.u16()?).map(|_| r.str()).collect()
}

impl Cors {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer(Vec::new());
        w.u8(self.rules.len() as u8);
        for rule in &self.rules {
            w.opt_str(rule.id.as_deref());
            write_list(&mut w, &rule.allowed_methods);
            write_list(&mut w, &rule.allowed_origins);
            write_list(&mut w, &rule.allowed_headers);
            write_list(&mut w, &rule.expose_headers);
            match rule.max_age_secs {
                None => w.u8(0),
                Some(s) => {
                    w.u8(1);
                    w.u32(s);
                }
            }
        }
        w.0
    }

    pub fn decode(buf: &[u8]) -> Result<Cors> {
        let mut r = Reader(buf);
        let rules = (0..r.u8()?)
            .map(|_| {
                Ok(CorsRule {
                    id: r.opt_str()?,
                    allowed_methods: read_list(&mut r)?,
                    allowed_origins: read_list(&mut r)?,
                    allowed_headers: read_list(&mut r)?,
                    expose_headers: read_list(&mut r)?,
                    max_age_secs: match r.u8()? {
                        0 => None,
                        1 => Some(r.u32()?),
                        _ => return Err(Error::BadMeta("cors max age presence")),
                    },
                })
            })
            .collect::<Result<Vec<_>>>()?;
        if !r.0.is_empty() {
            return Err(Error::BadMeta("trailing bytes in cors"));
        }
        Ok(Cors { rules })
    }
}
