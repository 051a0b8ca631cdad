//! A browser upload's policy document (base64 JSON: `expiration` and `conditions`) and its
//! signature (SigV4: `x-amz-signature` over the base64 text; SigV2: `signature`).

use base64::Engine;

use crate::s3::auth::{self, Credentials};
use crate::s3::error::{S3Error, S3ErrorCode};

/// One condition of the document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Condition {
    /// `{"field": "value"}` or `["eq", "$field", "value"]` (field names in lower case).
    Eq(String, String),
    /// `["starts-with", "$field", "prefix"]`.
    StartsWith(String, String),
    /// `["content-length-range", min, max]`.
    Length(u64, u64),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostPolicy {
    pub expiration_secs: i64,
    pub conditions: Vec<Condition>,
}

fn invalid(why: impl Into<String>) -> S3Error {
    S3Error::new(S3ErrorCode::InvalidPolicyDocument, why)
}

fn denied(why: impl Into<String>) -> S3Error {
    S3Error::new(S3ErrorCode::AccessDenied, why)
}

/// Parses the base64 document.
pub fn parse(policy_b64: &str) -> Result<PostPolicy, S3Error> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(policy_b64.trim())
        .map_err(|_| invalid("Invalid Policy: Invalid Base64 Encoding."))?;
    let doc: serde_json::Value = serde_json::from_slice(&raw).map_err(|_| invalid("Invalid Policy: Invalid JSON."))?;
    let serde_json::Value::Object(root) = doc else { return Err(invalid("Invalid Policy: Invalid JSON.")) };
    let mut expiration = None;
    let mut conditions = None;
    for (k, v) in &root {
        match k.as_str() {
            "expiration" => expiration = Some(v),
            "conditions" => conditions = Some(v),
            other => return Err(invalid(format!("Invalid Policy: Unexpected field {other}."))),
        }
    }
    let expiration = expiration
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| invalid("Invalid Policy: Policy missing expiration."))?;
    let expiration_secs =
        iso8601_secs(expiration).ok_or_else(|| invalid("Invalid Policy: Invalid 'expiration' value."))?;
    let list = conditions
        .and_then(serde_json::Value::as_array)
        .ok_or_else(|| invalid("Invalid Policy: Policy missing conditions."))?;
    let conditions = list.iter().map(condition).collect::<Result<Vec<_>, _>>()?;
    Ok(PostPolicy { expiration_secs, conditions })
}

/// `2026-12-08T10:00:00Z` or `2026-12-08T10:00:00.000Z`: the form AWS documents (a space
/// instead of `T`, or an offset, is refused).
fn iso8601_secs(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[10] != b'T' || !s.ends_with('Z') {
        return None;
    }
    let frac = &s[19..s.len() - 1];
    if !(frac.is_empty() || (frac.starts_with('.') && frac.len() > 1 && frac[1..].bytes().all(|c| c.is_ascii_digit())))
    {
        return None;
    }
    ::policy::date_secs(&format!("{}Z", &s[..19])).map(|f| f as i64)
}

fn text(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn field_name(v: &serde_json::Value) -> Result<String, S3Error> {
    let s = v.as_str().ok_or_else(|| invalid("Invalid Policy: a condition names no field."))?;
    let name = s.strip_prefix('$').ok_or_else(|| invalid(format!("Invalid Policy: field {s:?} must begin with $.")))?;
    Ok(name.to_ascii_lowercase())
}

fn condition(v: &serde_json::Value) -> Result<Condition, S3Error> {
    match v {
        serde_json::Value::Object(m) => {
            let mut it = m.iter();
            match (it.next(), it.next()) {
                (Some((k, v)), None) => {
                    let value = text(v).ok_or_else(|| invalid("Invalid Policy: a condition's value must be text."))?;
                    Ok(Condition::Eq(k.to_ascii_lowercase(), value))
                }
                _ => Err(invalid("Invalid Policy: a condition object must name exactly one field.")),
            }
        }
        serde_json::Value::Array(a) => {
            let op = a.first().and_then(serde_json::Value::as_str).unwrap_or_default().to_ascii_lowercase();
            match (op.as_str(), a.len()) {
                ("eq" | "starts-with", 3) => {
                    let name = field_name(&a[1])?;
                    let value =
                        text(&a[2]).ok_or_else(|| invalid("Invalid Policy: a condition's value must be text."))?;
                    Ok(if op == "eq" { Condition::Eq(name, value) } else { Condition::StartsWith(name, value) })
                }
                ("content-length-range", 3) => {
                    let n = |v: &serde_json::Value| {
                        v.as_u64().ok_or_else(|| invalid("Invalid Policy: content-length-range needs whole numbers."))
                    };
                    let (min, max) = (n(&a[1])?, n(&a[2])?);
                    if min > max {
                        return Err(invalid("Invalid Policy: content-length-range's minimum is above its maximum."));
                    }
                    Ok(Condition::Length(min, max))
                }
                _ => Err(invalid(format!("Invalid Policy: Invalid condition {v}."))),
            }
        }
        _ => Err(invalid("Invalid Policy: a condition must be an object or a list.")),
    }
}

/// Fields that need no condition (AWS's list, the signature fields of SigV2, and the file's
/// checksum, which the upload verifies).
fn exempt(name: &str) -> bool {
    matches!(name, "file" | "policy" | "x-amz-signature" | "signature" | "awsaccesskeyid")
        || name.starts_with("x-ignore-")
        || name.starts_with("x-amz-checksum-")
}

impl PostPolicy {
    /// Checks the form against the document: not expired, every condition met, every field
    /// (but the exempt ones) named by a condition. `fields` are (lower-case name, value),
    /// `bucket` the one the URL names. The length range is checked as the file arrives.
    pub fn check(&self, fields: &[(String, String)], bucket: &str, now_secs: i64) -> Result<(), S3Error> {
        if now_secs > self.expiration_secs {
            return Err(denied("Invalid according to Policy: Policy expired."));
        }
        let value = |name: &str| -> Option<&str> {
            if name == "bucket" {
                return Some(bucket);
            }
            fields.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
        };
        for c in &self.conditions {
            let ok = match c {
                Condition::Eq(name, want) => value(name) == Some(want.as_str()),
                Condition::StartsWith(name, prefix) => value(name).is_some_and(|v| {
                    // Content-Type may list several types; each must start with the prefix.
                    if name == "content-type" {
                        v.split(',').all(|t| t.trim().starts_with(prefix.as_str()))
                    } else {
                        v.starts_with(prefix.as_str())
                    }
                }),
                Condition::Length(..) => true,
            };
            if !ok {
                return Err(denied(format!("Invalid according to Policy: Policy Condition failed: {c:?}")));
            }
        }
        for (name, _) in fields {
            let named = self
                .conditions
                .iter()
                .any(|c| matches!(c, Condition::Eq(n, _) | Condition::StartsWith(n, _) if n == name));
            if !exempt(name) && !named {
                return Err(denied(format!("Invalid according to Policy: Extra input fields: {name}")));
            }
        }
        Ok(())
    }

    /// The size range the file must fall in, if the document sets one.
    pub fn length_range(&self) -> Option<(u64, u64)> {
        self.conditions.iter().find_map(|c| match c {
            Condition::Length(min, max) => Some((*min, *max)),
            _ => None,
        })
    }
}

/// The access key whose signature the form carries, once the signature over the policy is
/// checked (SigV4 fields, else SigV2's). `None`: the form is unsigned (anonymous).
pub fn verify(fields: &[(String, String)], creds: &Credentials) -> Result<Option<String>, S3Error> {
    let get = |n: &str| fields.iter().find(|(k, _)| k == n).map(|(_, v)| v.trim());
    let policy = get("policy");
    let v4 = get("x-amz-signature");
    let v2 = get("signature");
    let Some(policy) = policy else {
        if v4.is_some() || v2.is_some() || get("awsaccesskeyid").is_some() || get("x-amz-credential").is_some() {
            return Err(S3Error::new(S3ErrorCode::InvalidArgument, "A signed form needs its policy document."));
        }
        return Ok(None);
    };
    let no_key = || S3Error::code(S3ErrorCode::InvalidAccessKeyId);
    let mismatch = || S3Error::code(S3ErrorCode::SignatureDoesNotMatch);
    if let Some(sig) = v4 {
        if get("x-amz-algorithm") != Some("AWS4-HMAC-SHA256") {
            return Err(S3Error::new(S3ErrorCode::InvalidArgument, "x-amz-algorithm must be AWS4-HMAC-SHA256."));
        }
        let cred = get("x-amz-credential")
            .ok_or_else(|| S3Error::new(S3ErrorCode::InvalidArgument, "A SigV4 form needs x-amz-credential."))?;
        let parts: Vec<&str> = cred.split('/').collect();
        let [ak, date, region, service, "aws4_request"] = parts[..] else {
            return Err(S3Error::new(S3ErrorCode::InvalidArgument, "x-amz-credential is malformed."));
        };
        let secret = creds.secret(ak).ok_or_else(no_key)?;
        let key = auth::signing_key(secret, date, region, service);
        let want = hex::encode(auth::hmac(&key, policy.as_bytes()));
        return if auth::constant_time_eq(want.as_bytes(), sig.to_ascii_lowercase().as_bytes()) {
            Ok(Some(ak.to_owned()))
        } else {
            Err(mismatch())
        };
    }
    let sig =
        v2.ok_or_else(|| S3Error::new(S3ErrorCode::InvalidArgument, "The form has a policy but no signature."))?;
    let ak = get("awsaccesskeyid")
        .ok_or_else(|| S3Error::new(S3ErrorCode::InvalidArgument, "A SigV2 form needs AWSAccessKeyId."))?;
    let secret = creds.secret(ak).ok_or_else(no_key)?;
    let want = base64::engine::general_purpose::STANDARD.encode(auth::hmac_sha1(secret.as_bytes(), policy.as_bytes()));
    if auth::constant_time_eq(want.as_bytes(), sig.as_bytes()) { Ok(Some(ak.to_owned())) } else { Err(mismatch()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    fn fields(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn documents_and_conditions() {
        let doc = r#"{"expiration":"2030-01-01T00:00:00.000Z","conditions":[{"bUcKeT":"b"},["StArTs-WiTh","$Key","user/"],{"acl":"private"},["content-length-range",1,10],["eq","$x-amz-meta-a",""],["starts-with","$Content-Type","image/"]]}"#;
        let p = parse(&b64(doc)).unwrap();
        assert_eq!(p.length_range(), Some((1, 10)));
        let ok = fields(&[
            ("key", "user/x"),
            ("acl", "private"),
            ("x-amz-meta-a", ""),
            ("content-type", "image/png, image/jpeg"),
            ("policy", "…"),
            ("x-ignore-me", "1"),
        ]);
        p.check(&ok, "b", 0).unwrap();
        let code = |f: &[(String, String)], bucket: &str, now: i64| p.check(f, bucket, now).unwrap_err().code;
        assert_eq!(code(&ok, "other", 0), S3ErrorCode::AccessDenied);
        assert_eq!(code(&ok, "b", 1_900_000_000), S3ErrorCode::AccessDenied, "expired");
        let mut extra = ok.clone();
        extra.push(("x-amz-meta-b".into(), "1".into()));
        assert_eq!(code(&extra, "b", 0), S3ErrorCode::AccessDenied, "a field no condition names");
        let mut wrong = ok.clone();
        wrong[0].1 = "admin/x".into();
        assert_eq!(code(&wrong, "b", 0), S3ErrorCode::AccessDenied);
        for bad in [
            r#"{"conditions":[]}"#,
            r#"{"expiration":"2030-01-01T00:00:00Z"}"#,
            r#"{"expiration":"2030-01-01 00:00:00","conditions":[]}"#,
            r#"{"expiration":"2030-01-01T00:00:00Z","CONDITIONS":[]}"#,
            r#"{"expiration":"2030-01-01T00:00:00Z","conditions":[{}]}"#,
            r#"{"expiration":"2030-01-01T00:00:00Z","conditions":[["content-length-range",0]]}"#,
            r#"{"expiration":"2030-01-01T00:00:00Z","conditions":[["content-length-range",-1,0]]}"#,
            r#"{"expiration":"2030-01-01T00:00:00Z","conditions":[["eq","key","x"]]}"#,
        ] {
            assert_eq!(parse(&b64(bad)).unwrap_err().code, S3ErrorCode::InvalidPolicyDocument, "{bad}");
        }
        assert!(parse("!!").is_err());
    }

    #[test]
    fn signatures() {
        let creds = Credentials::new([("AK".to_string(), "SK".to_string())]);
        let policy = b64(r#"{"expiration":"2030-01-01T00:00:00Z","conditions":[]}"#);
        let v2 = base64::engine::general_purpose::STANDARD.encode(auth::hmac_sha1(b"SK", policy.as_bytes()));
        let f = fields(&[("policy", &policy), ("awsaccesskeyid", "AK"), ("signature", &v2)]);
        assert_eq!(verify(&f, &creds).unwrap().as_deref(), Some("AK"));
        let key = auth::signing_key("SK", "20261208", "us-east-1", "s3");
        let v4 = hex::encode(auth::hmac(&key, policy.as_bytes()));
        let f = fields(&[
            ("policy", &policy),
            ("x-amz-algorithm", "AWS4-HMAC-SHA256"),
            ("x-amz-credential", "AK/20261208/us-east-1/s3/aws4_request"),
            ("x-amz-signature", &v4),
        ]);
        assert_eq!(verify(&f, &creds).unwrap().as_deref(), Some("AK"));
        let f = fields(&[("policy", &policy), ("awsaccesskeyid", "AK"), ("signature", "bm9wZQ==")]);
        assert_eq!(verify(&f, &creds).unwrap_err().code, S3ErrorCode::SignatureDoesNotMatch);
        let f = fields(&[("policy", &policy), ("awsaccesskeyid", "KA"), ("signature", &v2)]);
        assert_eq!(verify(&f, &creds).unwrap_err().code, S3ErrorCode::InvalidAccessKeyId);
        let f = fields(&[("policy", &policy), ("awsaccesskeyid", "AK")]);
        assert_eq!(verify(&f, &creds).unwrap_err().code, S3ErrorCode::InvalidArgument);
        assert_eq!(verify(&fields(&[("key", "k")]), &creds).unwrap(), None);
    }
}
