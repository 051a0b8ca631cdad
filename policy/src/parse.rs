//! From JSON text to a checked `Policy`; every refusal says why (S3's MalformedPolicy message).

use serde_json::{Map, Value};

use crate::cond::Condition;
use crate::{Effect, Either, MAX_POLICY_BYTES, Policy, PolicyError, Principals, Statement, actions, err, glob};

pub fn document(text: &str, bucket: Option<&str>) -> Result<Policy, PolicyError> {
    if text.len() > MAX_POLICY_BYTES {
        return err(format!("Policies must be no larger than {MAX_POLICY_BYTES} bytes"));
    }
    if text.trim().is_empty() {
        return err("Policies must be valid JSON and the first byte must be '{'");
    }
    let root: Value =
        serde_json::from_str(text).map_err(|e| PolicyError(format!("Policies must be valid JSON: {e}")))?;
    let Value::Object(root) = root else { return err("Policies must be valid JSON and the first byte must be '{'") };
    let mut statements = None;
    for (k, v) in &root {
        match k.as_str() {
            "Version" => match v.as_str() {
                Some("2012-10-17" | "2008-10-17") => {}
                _ => return err("The policy must contain a valid version string"),
            },
            "Id" => {
                v.as_str().ok_or_else(|| PolicyError("Id must be a string".into()))?;
            }
            "Statement" => statements = Some(v),
            other => return err(format!("Unknown field {other}")),
        }
    }
    let list = match statements {
        None => return err("Missing required field Statement"),
        Some(Value::Array(a)) => a.iter().collect::<Vec<_>>(),
        Some(v @ Value::Object(_)) => vec![v],
        Some(_) => return err("Statement must be an object or a list of objects"),
    };
    if list.is_empty() {
        return err("Could not parse the policy: Statement is empty!");
    }
    let statements = list.into_iter().map(|s| statement(s, bucket)).collect::<Result<Vec<_>, _>>()?;
    let may_allow_listing = statements.iter().any(|s| {
        s.effect == Effect::Allow
            && s.actions.matches(|a| a.iter().any(|p| glob::matches_ignore_case(p, "s3:ListBucket")))
    });
    Ok(Policy { text: text.to_owned(), statements, may_allow_listing })
}

fn statement(v: &Value, bucket: Option<&str>) -> Result<Statement, PolicyError> {
    let Value::Object(m) = v else { return err("Each statement must be a JSON object") };
    const FIELDS: &[&str] =
        &["Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Resource", "NotResource", "Condition"];
    if let Some(k) = m.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return err(format!("Unknown field {k}"));
    }
    if let Some(sid) = m.get("Sid")
        && !sid.as_str().is_some_and(|s| s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b' '))
    {
        return err("Statement IDs (SID) must be alpha-numeric");
    }
    let effect = match m.get("Effect").and_then(Value::as_str) {
        Some("Allow") => Effect::Allow,
        Some("Deny") => Effect::Deny,
        Some(other) => return err(format!("Invalid effect: {other}")),
        None => return err("Missing required field Effect"),
    };
    let principal = match one_of(m, "Principal", "NotPrincipal")? {
        Some((negated, v)) => {
            if negated && effect == Effect::Allow {
                return err("NotPrincipal is not allowed with Effect Allow");
            }
            Either { negated, items: principals(v)? }
        }
        None => return err("Missing required field Principal"),
    };
    let actions = match one_of(m, "Action", "NotAction")? {
        Some((negated, v)) => Either { negated, items: strings(v, "Action")? },
        None => return err("Missing required field Action"),
    };
    if let Some(a) = actions.items.iter().find(|a| !actions::is_known(a)) {
        return err(format!("Policy has invalid action: {a}"));
    }
    let resources = match one_of(m, "Resource", "NotResource")? {
        Some((negated, v)) => Either { negated, items: strings(v, "Resource")? },
        None => return err("Missing required field Resource"),
    };
    for r in &resources.items {
        check_resource(r, bucket)?;
    }
    let conditions = match m.get("Condition") {
        None => Vec::new(),
        Some(v) => conditions(v)?,
    };
    Ok(Statement { effect, principal, actions, resources, conditions })
}

/// The field or its negation (never both).
fn one_of<'v>(m: &'v Map<String, Value>, yes: &str, no: &str) -> Result<Option<(bool, &'v Value)>, PolicyError> {
    match (m.get(yes), m.get(no)) {
        (Some(_), Some(_)) => err(format!("A statement may not have both {yes} and {no}")),
        (Some(v), None) => Ok(Some((false, v))),
        (None, Some(v)) => Ok(Some((true, v))),
        (None, None) => Ok(None),
    }
}

/// A string or a non-empty list of strings.
fn strings(v: &Value, what: &str) -> Result<Vec<String>, PolicyError> {
    let out: Vec<String> = match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .map(|x| x.as_str().map(str::to_owned).ok_or_else(|| PolicyError(format!("{what} must be strings"))))
            .collect::<Result<_, _>>()?,
        _ => return err(format!("{what} must be a string or a list of strings")),
    };
    if out.is_empty() {
        return err(format!("{what} must not be empty"));
    }
    Ok(out)
}

fn principals(v: &Value) -> Result<Principals, PolicyError> {
    match v {
        Value::String(s) if s == "*" => Ok(Principals::Any),
        Value::Object(m) if !m.is_empty() => {
            let (mut aws, mut canonical, mut other) = (Vec::new(), Vec::new(), Vec::new());
            for (kind, ids) in m {
                let ids = strings(ids, "Principal")?;
                match kind.as_str() {
                    "AWS" if ids.iter().any(|i| i == "*") => return Ok(Principals::Any),
                    "AWS" => aws.extend(ids),
                    "CanonicalUser" => canonical.extend(ids),
                    "Service" | "Federated" => other.extend(ids),
                    k => return err(format!("Invalid principal in policy: unknown principal type {k}")),
                }
            }
            if let Some(bad) = aws.iter().find(|a| a.is_empty() || glob::is_pattern(a)) {
                return err(format!("Invalid principal in policy: {bad:?}"));
            }
            Ok(Principals::Named { aws, canonical, other })
        }
        _ => err("Invalid principal in policy: a principal is \"*\" or an object such as {\"AWS\": [...]}"),
    }
}

/// A resource must be an S3 ARN; in a bucket's policy, one that can name the bucket or
/// objects in it.
fn check_resource(r: &str, bucket: Option<&str>) -> Result<(), PolicyError> {
    if r == "*" {
        return Ok(());
    }
    let Some(rest) = r.strip_prefix("arn:aws:s3:::") else {
        return err(format!("Policy has invalid resource: {r}"));
    };
    let Some(bucket) = bucket else { return Ok(()) };
    let bucket_part = rest.split('/').next().unwrap_or(rest);
    // `*` inside the bucket part may stand for `/…` too: compare against both forms.
    let fits = glob::matches(bucket_part, bucket) || glob::matches(rest, bucket) || {
        let object = format!("{bucket}/x");
        glob::matches(rest, &object) || glob::matches(rest, &format!("{bucket}/"))
    };
    if fits { Ok(()) } else { err(format!("Policy has invalid resource: {r} (not in bucket {bucket})")) }
}

fn conditions(v: &Value) -> Result<Vec<Condition>, PolicyError> {
    let Value::Object(ops) = v else { return err("Condition must be an object") };
    let mut out = Vec::new();
    for (op, block) in ops {
        let Value::Object(keys) = block else { return err(format!("Condition {op} must be an object")) };
        for (key, values) in keys {
            out.push(Condition::new(op, key, scalars(values, op)?)?);
        }
    }
    Ok(out)
}

/// Condition values: strings, numbers and booleans, alone or in a list, compared as text.
fn scalars(v: &Value, op: &str) -> Result<Vec<String>, PolicyError> {
    let one = |x: &Value| match x {
        Value::String(s) => Ok(s.clone()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Number(n) => Ok(n.to_string()),
        _ => err(format!("Condition {op}: values must be strings, numbers or booleans")),
    };
    match v {
        Value::Array(a) => a.iter().map(one).collect(),
        x => Ok(vec![one(x)?]),
    }
}
