//! A bucket's lifecycle configuration (D48): rules that expire current versions, delete markers
//! left alone, noncurrent versions and unfinished multipart uploads. Kept in the bucket record
//! (`opt<bytes>`, encoded here) and applied by the node's lifecycle worker.

use crate::error::{Error, Result};

use super::Tags;
use super::codec::{Reader, Writer};
use super::tags::{read_tags, write_tags};

/// Which objects a rule applies to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RuleFilter {
    /// Given as the rule's own `Prefix` (the legacy form) rather than inside `Filter`.
    pub legacy: bool,
    /// The filter's conditions were wrapped in `And`.
    pub and: bool,
    pub prefix: Option<String>,
    pub tags: Tags,
    pub size_greater_than: Option<u64>,
    pub size_less_than: Option<u64>,
}

impl RuleFilter {
    /// Whether an object of this key and size, whose tags are `tags`, is one the rule applies
    /// to.
    pub fn matches(&self, key: &str, size: u64, tags: &Tags) -> bool {
        self.prefix.as_deref().is_none_or(|p| key.starts_with(p))
            && self.tags.iter().all(|t| tags.contains(t))
            && self.size_greater_than.is_none_or(|n| size > n)
            && self.size_less_than.is_none_or(|n| size < n)
    }
}

/// When current versions expire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expiration {
    /// This many days after the version was written.
    Days(u32),
    /// From this time (ms since the epoch, midnight UTC) on.
    Date(u64),
    /// A delete marker with no other version left is removed.
    ExpiredObjectDeleteMarker,
}

/// One rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LifecycleRule {
    pub id: String,
    pub enabled: bool,
    pub filter: RuleFilter,
    pub expiration: Option<Expiration>,
    /// Noncurrent versions expire this many days after they stopped being current, keeping
    /// the newest `newer` of them.
    pub noncurrent_days: Option<u32>,
    pub newer_noncurrent: Option<u32>,
    /// Unfinished multipart uploads are aborted this many days after they began.
    pub abort_upload_days: Option<u32>,
}

/// The rules of one bucket.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Lifecycle {
    pub rules: Vec<LifecycleRule>,
}

fn opt_u32(w: &mut Writer, v: Option<u32>) {
    match v {
        None => w.u8(0),
        Some(n) => {
            w.u8(1);
            w.u32(n);
        }
    }
}

fn opt_u64(w: &mut Writer, v: Option<u64>) {
    match v {
        None => w.u8(0),
        Some(n) => {
            w.u8(1);
            w.u64(n);
        }
    }
}

fn read_opt_u32(r: &mut Reader<'_>) -> Result<Option<u32>> {
    match r.u8()? {
        0 => Ok(None),
        1 => Ok(Some(r.u32()?)),
        _ => Err(Error::BadMeta("lifecycle option")),
    }
}

fn read_opt_u64(r: &mut Reader<'_>) -> Result<Option<u64>> {
    match r.u8()? {
        0 => Ok(None),
        1 => Ok(Some(r.u64()?)),
        _ => Err(Error::BadMeta("lifecycle option")),
    }
}

fn flag(r: &mut Reader<'_>) -> Result<bool> {
    match r.u8()? {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(Error::BadMeta("lifecycle flag")),
    }
}

/// Most rules a configuration may hold (S3's limit).
pub const LIFECYCLE_RULES_MAX: usize = 1000;

impl Lifecycle {
    /// `u16` rule count; each rule: `str` id, `u8` enabled, `u8` legacy, `u8` and,
    /// `opt<str>` prefix, tags, `opt<u64>` size greater than, `opt<u64>` size less than, `u8`
    /// expiration (0 none, 1 days `u32`, 2 date `u64` ms, 3 expired delete markers),
    /// `opt<u32>` noncurrent days, `opt<u32>` newer noncurrent versions, `opt<u32>` abort days.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer(Vec::with_capacity(64 * self.rules.len()));
        w.u16(u16::try_from(self.rules.len()).expect("rules are bounded by LIFECYCLE_RULES_MAX"));
        for rule in &self.rules {
            w.bytes(rule.id.as_bytes());
            w.u8(rule.enabled as u8);
            w.u8(rule.filter.legacy as u8);
            w.u8(rule.filter.and as u8);
            w.opt_str(rule.filter.prefix.as_deref());
            write_tags(&mut w, &rule.filter.tags);
            opt_u64(&mut w, rule.filter.size_greater_than);
            opt_u64(&mut w, rule.filter.size_less_than);
            match rule.expiration {
                None => w.u8(0),
                Some(Expiration::Days(d)) => {
                    w.u8(1);
                    w.u32(d);
                }
                Some(Expiration::Date(ms)) => {
                    w.u8(2);
                    w.u64(ms);
                }
                Some(Expiration::ExpiredObjectDeleteMarker) => w.u8(3),
            }
            opt_u32(&mut w, rule.noncurrent_days);
            opt_u32(&mut w, rule.newer_noncurrent);
            opt_u32(&mut w, rule.abort_upload_days);
        }
        w.0
    }

    pub fn decode(buf: &[u8]) -> Result<Lifecycle> {
        let mut r = Reader(buf);
        let n = r.u16()? as usize;
        if n > LIFECYCLE_RULES_MAX {
            return Err(Error::BadMeta("lifecycle rule count"));
        }
        let mut rules = Vec::with_capacity(n);
        for _ in 0..n {
            let id = r.str()?;
            let enabled = flag(&mut r)?;
            let legacy = flag(&mut r)?;
            let and = flag(&mut r)?;
            let prefix = r.opt_str()?;
            let tags = read_tags(&mut r)?;
            let size_greater_than = read_opt_u64(&mut r)?;
            let size_less_than = read_opt_u64(&mut r)?;
            let expiration = match r.u8()? {
                0 => None,
                1 => Some(Expiration::Days(r.u32()?)),
                2 => Some(Expiration::Date(r.u64()?)),
                3 => Some(Expiration::ExpiredObjectDeleteMarker),
                _ => return Err(Error::BadMeta("lifecycle expiration")),
            };
            rules.push(LifecycleRule {
                id,
                enabled,
                filter: RuleFilter { legacy, and, prefix, tags, size_greater_than, size_less_than },
                expiration,
                noncurrent_days: read_opt_u32(&mut r)?,
                newer_noncurrent: read_opt_u32(&mut r)?,
                abort_upload_days: read_opt_u32(&mut r)?,
            });
        }
        if !r.0.is_empty() {
            return Err(Error::BadMeta("trailing bytes"));
        }
        Ok(Lifecycle { rules })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let l = Lifecycle {
            rules: vec![
                LifecycleRule {
                    id: "a".into(),
                    enabled: true,
                    filter: RuleFilter { legacy: true, prefix: Some("logs/".into()), ..Default::default() },
                    expiration: Some(Expiration::Days(3)),
                    noncurrent_days: Some(1),
                    newer_noncurrent: Some(2),
                    abort_upload_days: Some(7),
                },
                LifecycleRule {
                    id: "b".into(),
                    enabled: false,
                    filter: RuleFilter {
                        and: true,
                        tags: vec![("k".into(), "v".into())],
                        size_greater_than: Some(10),
                        size_less_than: Some(20),
                        ..Default::default()
                    },
                    expiration: Some(Expiration::Date(1_700_000_000_000)),
                    noncurrent_days: None,
                    newer_noncurrent: None,
                    abort_upload_days: None,
                },
            ],
        };
        let enc = l.encode();
        assert_eq!(Lifecycle::decode(&enc).unwrap(), l);
        for cut in 0..enc.len() {
            assert!(Lifecycle::decode(&enc[..cut]).is_err());
        }
    }
}
