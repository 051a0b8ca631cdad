//! Put/Get/DeleteBucketLifecycleConfiguration (D48): the `LifecycleConfiguration` document both
//! ways. The node's lifecycle worker (`crate::lifecycle`) applies the rules.

use engine::meta::LIFECYCLE_RULES_MAX;
use engine::{Expiration, Lifecycle, LifecycleRule, RuleFilter};

use crate::http::Response;
use crate::s3::call::Call;
use crate::s3::error::{S3Error, S3ErrorCode};
use crate::s3::xml::{self, XmlWriter};
use crate::time;

fn malformed() -> S3Error {
    S3Error::code(S3ErrorCode::MalformedXML)
}

fn invalid(what: &str) -> S3Error {
    S3Error::new(S3ErrorCode::InvalidArgument, what.to_owned())
}

/// A whole number of days (or versions): positive, or 400.
fn days(e: &xml::Element, name: &str, zero_ok: bool) -> Result<Option<u32>, S3Error> {
    let Some(t) = e.child_text(name) else { return Ok(None) };
    let n: i64 = t.trim().parse().map_err(|_| invalid(&format!("'{name}' must be a whole number")))?;
    match u32::try_from(n) {
        Ok(n) if n > 0 || zero_ok => Ok(Some(n)),
        _ => Err(invalid(&format!("'{name}' for a rule must be a positive integer"))),
    }
}

fn size(e: &xml::Element, name: &str) -> Result<Option<u64>, S3Error> {
    e.child_text(name).map(|t| t.trim().parse().map_err(|_| malformed())).transpose()
}

fn tag(e: &xml::Element) -> Result<(String, String), S3Error> {
    let k = e.child_text("Key").ok_or_else(malformed)?;
    Ok((k.to_owned(), e.child_text("Value").unwrap_or("").to_owned()))
}

/// Refuses an element holding children other than `known` (an unknown rule field).
fn only(e: &xml::Element, known: &[&str]) -> Result<(), S3Error> {
    match e.children.iter().all(|c| known.contains(&c.name.as_str())) {
        true => Ok(()),
        false => Err(malformed()),
    }
}

/// A rule's `Filter`.
fn filter(f: &xml::Element) -> Result<RuleFilter, S3Error> {
    let mut out = RuleFilter::default();
    let (body, and) = match f.child("And") {
        Some(a) if f.children.len() == 1 => (a, true),
        Some(_) => return Err(malformed()),
        None if f.children.len() > 1 => return Err(malformed()),
        None => (f, false),
    };
    out.and = and;
    only(body, &["Prefix", "Tag", "ObjectSizeGreaterThan", "ObjectSizeLessThan"])?;
    out.prefix = body.child_text("Prefix").map(str::to_owned);
    out.tags = body.children_named("Tag").map(tag).collect::<Result<_, _>>()?;
    engine::validate_tags(&out.tags, engine::OBJECT_TAGS_MAX)?;
    out.size_greater_than = size(body, "ObjectSizeGreaterThan")?;
    out.size_less_than = size(body, "ObjectSizeLessThan")?;
    Ok(out)
}

fn rule(r: &xml::Element, n: usize) -> Result<LifecycleRule, S3Error> {
    only(
        r,
        &[
            "ID",
            "Prefix",
            "Filter",
            "Status",
            "Expiration",
            "NoncurrentVersionExpiration",
            "AbortIncompleteMultipartUpload",
            "Transition",
            "NoncurrentVersionTransition",
        ],
    )?;
    // A transition's date is checked like an expiration's (400), before the transition itself is
    // refused as not implemented.
    for t in r.children_named("Transition") {
        if let Some(d) = t.child_text("Date") {
            match time::parse_iso8601(d.trim()) {
                None => return Err(invalid("'Date' must be in ISO 8601 format")),
                Some(secs) if secs % 86_400 != 0 => return Err(invalid("'Date' must be at midnight GMT")),
                Some(_) => {}
            }
        }
    }
    if r.child("Transition").is_some() || r.child("NoncurrentVersionTransition").is_some() {
        return Err(S3Error::new(
            S3ErrorCode::NotImplemented,
            "Lifecycle transitions to other storage classes are not implemented (keel stores everything as STANDARD).",
        ));
    }
    let id = match r.child_text("ID") {
        Some(id) if id.chars().count() > 255 => {
            return Err(invalid("ID length should not exceed allowed limit of 255"));
        }
        Some(id) => id.to_owned(),
        None => format!("rule-{n}"),
    };
    let enabled = match r.child_text("Status").map(str::trim) {
        Some("Enabled") => true,
        Some("Disabled") => false,
        _ => return Err(malformed()),
    };
    let filter = match (r.child_text("Prefix"), r.child("Filter")) {
        (Some(p), None) => RuleFilter { legacy: true, prefix: Some(p.to_owned()), ..Default::default() },
        (None, Some(f)) => filter(f)?,
        _ => return Err(malformed()),
    };
    let expiration = match r.child("Expiration") {
        None => None,
        Some(e) => {
            only(e, &["Days", "Date", "ExpiredObjectDeleteMarker"])?;
            let marker = e.child_text("ExpiredObjectDeleteMarker").map(str::trim);
            match (days(e, "Days", false)?, e.child_text("Date"), marker) {
                (Some(d), None, None) => Some(Expiration::Days(d)),
                (None, Some(date), None) => {
                    let secs =
                        time::parse_iso8601(date.trim()).ok_or_else(|| invalid("'Date' must be in ISO 8601 format"))?;
                    if secs % 86_400 != 0 {
                        return Err(invalid("'Date' must be at midnight GMT"));
                    }
                    Some(Expiration::Date(u64::try_from(secs).map_err(|_| invalid("'Date' is out of range"))? * 1000))
                }
                (None, None, Some("true")) => Some(Expiration::ExpiredObjectDeleteMarker),
                (None, None, Some("false")) => None,
                _ => return Err(malformed()),
            }
        }
    };
    let (noncurrent_days, newer_noncurrent) = match r.child("NoncurrentVersionExpiration") {
        None => (None, None),
        Some(n) => {
            (Some(days(n, "NoncurrentDays", false)?.ok_or_else(malformed)?), days(n, "NewerNoncurrentVersions", false)?)
        }
    };
    let abort_upload_days = match r.child("AbortIncompleteMultipartUpload") {
        None => None,
        Some(a) => Some(days(a, "DaysAfterInitiation", false)?.ok_or_else(malformed)?),
    };
    if expiration.is_none() && noncurrent_days.is_none() && abort_upload_days.is_none() {
        return Err(S3Error::new(S3ErrorCode::InvalidRequest, "At least one action needs to be specified in a rule"));
    }
    Ok(LifecycleRule { id, enabled, filter, expiration, noncurrent_days, newer_noncurrent, abort_upload_days })
}

/// The rules of a `LifecycleConfiguration` document.
pub(crate) fn parse(root: &xml::Element) -> Result<Lifecycle, S3Error> {
    if root.name != "LifecycleConfiguration" {
        return Err(malformed());
    }
    let rules: Vec<LifecycleRule> =
        root.children_named("Rule").enumerate().map(|(n, r)| rule(r, n + 1)).collect::<Result<_, _>>()?;
    if rules.is_empty() || rules.len() > LIFECYCLE_RULES_MAX {
        return Err(malformed());
    }
    for (i, r) in rules.iter().enumerate() {
        if rules[..i].iter().any(|o| o.id == r.id) {
            return Err(invalid("Rule ID must be unique. Found same ID for more than one rule"));
        }
    }
    Ok(Lifecycle { rules })
}

fn write_filter(w: &mut XmlWriter, f: &RuleFilter) {
    if f.legacy {
        w.elem("Prefix", f.prefix.as_deref().unwrap_or(""));
        return;
    }
    w.open("Filter");
    if f.and {
        w.open("And");
    }
    if let Some(p) = &f.prefix {
        w.elem("Prefix", p);
    }
    for (k, v) in &f.tags {
        w.open("Tag");
        w.elem("Key", k);
        w.elem("Value", v);
        w.close("Tag");
    }
    if let Some(n) = f.size_greater_than {
        w.elem_num("ObjectSizeGreaterThan", n);
    }
    if let Some(n) = f.size_less_than {
        w.elem_num("ObjectSizeLessThan", n);
    }
    if f.and {
        w.close("And");
    }
    w.close("Filter");
}

/// The document GetBucketLifecycleConfiguration answers.
pub(crate) fn document(l: &Lifecycle) -> Vec<u8> {
    let mut w = XmlWriter::new();
    w.open_root("LifecycleConfiguration");
    for r in &l.rules {
        w.open("Rule");
        w.elem("ID", &r.id);
        write_filter(&mut w, &r.filter);
        w.elem("Status", if r.enabled { "Enabled" } else { "Disabled" });
        match r.expiration {
            None => {}
            Some(e) => {
                w.open("Expiration");
                match e {
                    Expiration::Days(d) => w.elem_num("Days", u64::from(d)),
                    Expiration::Date(ms) => w.elem("Date", &time::iso8601_ms(ms)),
                    Expiration::ExpiredObjectDeleteMarker => w.elem("ExpiredObjectDeleteMarker", "true"),
                }
                w.close("Expiration");
            }
        }
        if let Some(d) = r.noncurrent_days {
            w.open("NoncurrentVersionExpiration");
            w.elem_num("NoncurrentDays", u64::from(d));
            if let Some(n) = r.newer_noncurrent {
                w.elem_num("NewerNoncurrentVersions", u64::from(n));
            }
            w.close("NoncurrentVersionExpiration");
        }
        if let Some(d) = r.abort_upload_days {
            w.open("AbortIncompleteMultipartUpload");
            w.elem_num("DaysAfterInitiation", u64::from(d));
            w.close("AbortIncompleteMultipartUpload");
        }
        w.close("Rule");
    }
    w.close("LifecycleConfiguration");
    w.finish()
}

/// Lifecycle rules are applied by one node's worker to its own store: not in a cluster (each
/// node would apply them to its keys without the others' copies) nor to a backend bucket's
/// cache (expiring the cache is eviction's business, the remote has its own rules).
fn refuse_where_unsupported(call: &Call<'_>, bucket: &engine::BucketMeta) -> Result<(), S3Error> {
    let why = if call.ctx.config.cluster.is_some() {
        "in a cluster"
    } else if bucket.backend.is_some() {
        "in a backend bucket"
    } else {
        return Ok(());
    };
    Err(S3Error::new(S3ErrorCode::NotImplemented, format!("Lifecycle rules are not implemented {why}.")))
}

pub async fn put(call: &mut Call<'_>) -> Result<Response, S3Error> {
    let bucket = call.ctx.store.bucket(call.bucket())?;
    refuse_where_unsupported(call, &bucket)?;
    let root = call.read_xml().await?.ok_or_else(malformed)?;
    let lifecycle = parse(&root)?;
    call.ctx.store.update_bucket(call.bucket(), |m| m.lifecycle = Some(lifecycle)).await?;
    Ok(Response::new(200))
}

pub async fn get(call: &mut Call<'_>) -> Result<Response, S3Error> {
    let bucket = call.ctx.store.bucket(call.bucket())?;
    match &bucket.lifecycle {
        Some(l) => Ok(Response::with_body(200, "application/xml", document(l))),
        None => {
            Err(S3Error::new(S3ErrorCode::NoSuchLifecycleConfiguration, "The lifecycle configuration does not exist"))
        }
    }
}

pub async fn delete(call: &mut Call<'_>) -> Result<Response, S3Error> {
    call.ctx.store.update_bucket(call.bucket(), |m| m.lifecycle = None).await?;
    Ok(Response::new(204))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(doc: &str) -> Option<S3ErrorCode> {
        parse(&xml::parse(doc.as_bytes()).unwrap()).err().map(|e| e.code)
    }

    #[test]
    fn documents_both_ways() {
        let doc = "<LifecycleConfiguration>\
            <Rule><ID>a</ID><Prefix>logs/</Prefix><Status>Enabled</Status><Expiration><Days>3</Days></Expiration></Rule>\
            <Rule><Filter><And><Prefix>x/</Prefix><Tag><Key>k</Key><Value>v</Value></Tag><ObjectSizeGreaterThan>10</ObjectSizeGreaterThan></And></Filter>\
            <Status>Disabled</Status><NoncurrentVersionExpiration><NoncurrentDays>2</NoncurrentDays><NewerNoncurrentVersions>1</NewerNoncurrentVersions></NoncurrentVersionExpiration>\
            <AbortIncompleteMultipartUpload><DaysAfterInitiation>7</DaysAfterInitiation></AbortIncompleteMultipartUpload></Rule>\
            <Rule><ID>m</ID><Filter></Filter><Status>Enabled</Status><Expiration><ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration></Rule>\
            <Rule><ID>d</ID><Filter><Prefix>p</Prefix></Filter><Status>Enabled</Status><Expiration><Date>2017-09-27T00:00:00Z</Date></Expiration></Rule>\
            </LifecycleConfiguration>";
        let l = parse(&xml::parse(doc.as_bytes()).unwrap()).unwrap();
        assert_eq!(l.rules.len(), 4);
        assert_eq!(l.rules[1].id, "rule-2");
        assert_eq!(l.rules[3].expiration, Some(Expiration::Date(1_506_470_400_000)));
        // What keel writes reads back the same.
        assert_eq!(parse(&xml::parse(&document(&l)).unwrap()).unwrap(), l);
        let one = |rule: &str| format!("<LifecycleConfiguration><Rule>{rule}</Rule></LifecycleConfiguration>");
        let exp = "<Expiration><Days>1</Days></Expiration>";
        assert_eq!(
            code(&one(&format!("<ID>r</ID><Prefix>a</Prefix><Status>enabled</Status>{exp}"))),
            Some(S3ErrorCode::MalformedXML)
        );
        assert_eq!(
            code(&one(&format!("<ID>{}</ID><Prefix>a</Prefix><Status>Enabled</Status>{exp}", "i".repeat(256)))),
            Some(S3ErrorCode::InvalidArgument)
        );
        assert_eq!(
            code(&one("<Prefix>a</Prefix><Status>Enabled</Status><Expiration><Days>0</Days></Expiration>")),
            Some(S3ErrorCode::InvalidArgument)
        );
        assert_eq!(
            code(&one("<Prefix>a</Prefix><Status>Enabled</Status><Expiration><Date>20200101</Date></Expiration>")),
            Some(S3ErrorCode::InvalidArgument)
        );
        assert_eq!(code(&one("<Prefix>a</Prefix><Status>Enabled</Status>")), Some(S3ErrorCode::InvalidRequest));
        assert_eq!(code(&one(&format!("<Status>Enabled</Status>{exp}"))), Some(S3ErrorCode::MalformedXML));
        // Unknown fields are refused, not ignored.
        assert_eq!(
            code(&one(&format!("<Prefix>a</Prefix><Status>Enabled</Status><Colour>red</Colour>{exp}"))),
            Some(S3ErrorCode::MalformedXML)
        );
        assert_eq!(
            code(&one("<Prefix>a</Prefix><Status>Enabled</Status><Expiration><Weeks>1</Weeks></Expiration>")),
            Some(S3ErrorCode::MalformedXML)
        );
        assert_eq!(
            code(&one(&format!("<Filter><Suffix>x</Suffix></Filter><Status>Enabled</Status>{exp}"))),
            Some(S3ErrorCode::MalformedXML)
        );
        assert_eq!(
            code(&one(
                "<Prefix>a</Prefix><Status>Enabled</Status><Transition><Days>1</Days><StorageClass>GLACIER</StorageClass></Transition>"
            )),
            Some(S3ErrorCode::NotImplemented)
        );
        // A transition's date is checked first (boto3 turns "20220927" into a time of day).
        let odd = "<Prefix>a</Prefix><Status>Enabled</Status><Transition><Date>1970-08-23T00:55:27Z</Date><StorageClass>GLACIER</StorageClass></Transition>";
        assert_eq!(code(&one(odd)), Some(S3ErrorCode::InvalidArgument));
        let twice = format!(
            "<LifecycleConfiguration><Rule><ID>r</ID><Prefix>a</Prefix><Status>Enabled</Status>{exp}</Rule><Rule><ID>r</ID><Prefix>b</Prefix><Status>Enabled</Status>{exp}</Rule></LifecycleConfiguration>"
        );
        assert_eq!(code(&twice), Some(S3ErrorCode::InvalidArgument));
    }
}
