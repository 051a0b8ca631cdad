//! Object lock (D47): a bucket's lock configuration and default retention, a version's
//! retention and legal hold, and the `x-amz-object-lock-*` headers of writes. The engine
//! decides what a lock forbids (`ObjectLock::check_removable`, `check_retention_change`).

use engine::{DefaultRetention, LockMode, ObjectLock, Retention};

use crate::http::Response;
use crate::s3::call::Call;
use crate::s3::error::{S3Error, S3ErrorCode};
use crate::s3::xml::{self, XmlWriter};
use crate::time;

fn malformed() -> S3Error {
    S3Error::code(S3ErrorCode::MalformedXML)
}

fn missing_lock() -> S3Error {
    S3Error::new(S3ErrorCode::InvalidRequest, "Bucket is missing Object Lock Configuration")
}

/// Whether the request asks to bypass GOVERNANCE retention.
pub fn bypass(call: &Call<'_>) -> bool {
    call.header("x-amz-bypass-governance-retention").is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// The lock a write gives its version (`x-amz-object-lock-mode` with
/// `x-amz-object-lock-retain-until-date`, `x-amz-object-lock-legal-hold`); none without them.
pub fn for_write(call: &Call<'_>) -> Result<ObjectLock, S3Error> {
    let mode = call.header("x-amz-object-lock-mode").map(str::trim);
    let until = call.header("x-amz-object-lock-retain-until-date").map(str::trim);
    let hold = call.header("x-amz-object-lock-legal-hold").map(str::trim);
    if mode.is_none() && until.is_none() && hold.is_none() {
        return Ok(ObjectLock::default());
    }
    let invalid = |what: &str| S3Error::new(S3ErrorCode::InvalidArgument, what.to_owned());
    let retention = match (mode, until) {
        (None, None) => None,
        (Some(m), Some(u)) => {
            let mode = LockMode::parse(m).ok_or_else(|| invalid("Unknown wormMode directive."))?;
            let secs = time::parse_iso8601(u).ok_or_else(|| invalid("The retain until date is not valid."))?;
            let until_ms = u64::try_from(secs).map_err(|_| invalid("The retain until date is not valid."))? * 1000;
            if until_ms <= time::now_ms() {
                return Err(invalid("The retain until date must be in the future!"));
            }
            Some(Retention { mode, until_ms })
        }
        _ => {
            return Err(invalid(
                "x-amz-object-lock-retain-until-date and x-amz-object-lock-mode must both be supplied",
            ));
        }
    };
    let legal_hold = match hold {
        None | Some("OFF") => false,
        Some("ON") => true,
        Some(_) => return Err(invalid("Legal Hold must be either of 'ON' or 'OFF'")),
    };
    if !call.ctx.store.bucket(call.bucket())?.object_lock {
        return Err(missing_lock());
    }
    Ok(ObjectLock { retention, legal_hold })
}

/// The lock headers of a GET or HEAD answer.
pub fn headers(resp: &mut Response, lock: &ObjectLock) {
    if let Some(r) = lock.retention {
        resp.push_header("x-amz-object-lock-mode", r.mode.name());
        resp.push_header("x-amz-object-lock-retain-until-date", time::iso8601_ms(r.until_ms));
    }
    if *lock != ObjectLock::default() {
        resp.push_header("x-amz-object-lock-legal-hold", if lock.legal_hold { "ON" } else { "OFF" });
    }
}

/// PutObjectLockConfiguration: the default retention of a bucket created with object lock.
pub async fn put_configuration(call: &mut Call<'_>) -> Result<Response, S3Error> {
    let bucket = call.ctx.store.bucket(call.bucket())?;
    let root = call.read_xml().await?.ok_or_else(malformed)?;
    let default = parse_configuration(&root)?;
    // A versioned bucket may turn object lock on here (for good, as at creation).
    if !bucket.object_lock && bucket.versioning != engine::Versioning::Enabled {
        return Err(S3Error::new(
            S3ErrorCode::InvalidBucketState,
            "Versioning must be 'Enabled' on the bucket to apply a Object Lock configuration",
        ));
    }
    call.ctx
        .store
        .update_bucket(call.bucket(), |m| {
            m.object_lock = true;
            m.default_retention = default;
        })
        .await?;
    super::bucket::publish_bucket(call.ctx, call.bucket()).await?;
    Ok(Response::new(200))
}

/// The default retention an `ObjectLockConfiguration` document names.
pub(crate) fn parse_configuration(root: &xml::Element) -> Result<Option<DefaultRetention>, S3Error> {
    if root.name != "ObjectLockConfiguration" || root.child_text("ObjectLockEnabled").map(str::trim) != Some("Enabled")
    {
        return Err(malformed());
    }
    let Some(rule) = root.child("Rule") else { return Ok(None) };
    let d = rule.child("DefaultRetention").ok_or_else(malformed)?;
    let mode = d.child_text("Mode").map(str::trim).and_then(LockMode::parse).ok_or_else(malformed)?;
    let (amount, years) = match (d.child_text("Days"), d.child_text("Years")) {
        (Some(n), None) => (n, false),
        (None, Some(n)) => (n, true),
        _ => return Err(malformed()),
    };
    let period =
        || S3Error::new(S3ErrorCode::InvalidRetentionPeriod, "The retention period must be a positive integer.");
    let amount: i64 = amount.trim().parse().map_err(|_| period())?;
    let amount =
        u32::try_from(amount).ok().filter(|n| *n > 0 && *n <= if years { 100 } else { 36_500 }).ok_or_else(period)?;
    Ok(Some(DefaultRetention { mode, amount, years }))
}

/// GetObjectLockConfiguration.
pub async fn get_configuration(call: &mut Call<'_>) -> Result<Response, S3Error> {
    let bucket = call.ctx.store.bucket(call.bucket())?;
    if !bucket.object_lock {
        return Err(S3Error::new(
            S3ErrorCode::ObjectLockConfigurationNotFoundError,
            "Object Lock configuration does not exist for this bucket",
        ));
    }
    let mut w = XmlWriter::new();
    w.open_root("ObjectLockConfiguration");
    w.elem("ObjectLockEnabled", "Enabled");
    if let Some(d) = bucket.default_retention {
        w.open("Rule");
        w.open("DefaultRetention");
        w.elem("Mode", d.mode.name());
        w.elem_num(if d.years { "Years" } else { "Days" }, u64::from(d.amount));
        w.close("DefaultRetention");
        w.close("Rule");
    }
    w.close("ObjectLockConfiguration");
    Ok(Response::with_body(200, "application/xml", w.finish()))
}

fn answer(version: engine::ObjectVersion) -> Response {
    let mut resp = Response::new(200);
    if version.stamp != 0 {
        resp.push_header("x-amz-version-id", version.id());
    }
    resp
}

/// PutObjectRetention.
pub async fn put_retention(call: &mut Call<'_>) -> Result<Response, S3Error> {
    let root = call.read_xml().await?.ok_or_else(malformed)?;
    if root.name != "Retention" {
        return Err(malformed());
    }
    let retention = match (root.child_text("Mode"), root.child_text("RetainUntilDate")) {
        (None, None) => None,
        (Some(m), Some(u)) => {
            let mode = LockMode::parse(m.trim()).ok_or_else(malformed)?;
            let secs = time::parse_iso8601(u.trim()).ok_or_else(malformed)?;
            let until_ms = u64::try_from(secs).map_err(|_| malformed())? * 1000;
            if until_ms <= time::now_ms() {
                return Err(S3Error::new(S3ErrorCode::InvalidArgument, "The retain until date must be in the future!"));
            }
            Some(Retention { mode, until_ms })
        }
        _ => return Err(malformed()),
    };
    let target = (call.bucket(), call.key(), call.version());
    let version = call.ctx.store.set_retention(target, retention, bypass(call)).await?;
    Ok(answer(version))
}

/// GetObjectRetention.
pub async fn get_retention(call: &mut Call<'_>) -> Result<Response, S3Error> {
    let meta = read(call)?;
    let Some(r) = meta.lock.retention else {
        return Err(S3Error::new(
            S3ErrorCode::NoSuchObjectLockConfiguration,
            "The specified object does not have a ObjectLock configuration",
        ));
    };
    let mut w = XmlWriter::new();
    w.open_root("Retention");
    w.elem("Mode", r.mode.name());
    w.elem("RetainUntilDate", &time::iso8601_ms(r.until_ms));
    w.close("Retention");
    Ok(Response::with_body(200, "application/xml", w.finish()))
}

/// PutObjectLegalHold.
pub async fn put_legal_hold(call: &mut Call<'_>) -> Result<Response, S3Error> {
    let root = call.read_xml().await?.ok_or_else(malformed)?;
    let on = match (root.name.as_str(), root.child_text("Status").map(str::trim)) {
        ("LegalHold", Some("ON")) => true,
        ("LegalHold", Some("OFF")) => false,
        _ => return Err(malformed()),
    };
    let version = call.ctx.store.set_legal_hold((call.bucket(), call.key(), call.version()), on).await?;
    Ok(answer(version))
}

/// GetObjectLegalHold.
pub async fn get_legal_hold(call: &mut Call<'_>) -> Result<Response, S3Error> {
    let meta = read(call)?;
    let mut w = XmlWriter::new();
    w.open_root("LegalHold");
    w.elem("Status", if meta.lock.legal_hold { "ON" } else { "OFF" });
    w.close("LegalHold");
    Ok(Response::with_body(200, "application/xml", w.finish()))
}

/// The version a Get*Retention/LegalHold names, in a bucket with object lock.
fn read(call: &Call<'_>) -> Result<engine::ObjectMeta, S3Error> {
    if !call.ctx.store.bucket(call.bucket())?.object_lock {
        return Err(missing_lock());
    }
    let meta = match call.version() {
        Some(v) => call.ctx.store.head_version(call.bucket(), call.key(), v)?,
        None => call.ctx.store.head_object(call.bucket(), call.key())?,
    };
    if meta.version.delete_marker {
        return Err(engine::Error::DeleteMarker { version_id: meta.version.id() }.into());
    }
    Ok(meta)
}
