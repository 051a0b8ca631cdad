//! Condition blocks: `{"StringLike": {"s3:prefix": ["home/", "public/*"]}}`.

use std::net::IpAddr;

use crate::{Facts, PolicyError, err, glob};

/// The comparison an operator makes (its negation, `IfExists` and set qualifier aside).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operator {
    StringEquals,
    StringEqualsIgnoreCase,
    StringLike,
    NumericEquals,
    NumericLessThan,
    NumericLessThanEquals,
    NumericGreaterThan,
    NumericGreaterThanEquals,
    DateEquals,
    DateLessThan,
    DateLessThanEquals,
    DateGreaterThan,
    DateGreaterThanEquals,
    Bool,
    BinaryEquals,
    IpAddress,
    ArnEquals,
    ArnLike,
    /// `Null`: `"true"` holds when the key is absent, `"false"` when present.
    Null,
}

/// How several request values combine (`ForAnyValue:`, `ForAllValues:`; none for single-valued
/// keys, which then behave as `ForAnyValue`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Qualifier {
    Single,
    AnyValue,
    AllValues,
}

#[derive(Clone, Debug)]
pub struct Condition {
    op: Operator,
    negated: bool,
    if_exists: bool,
    qualifier: Qualifier,
    /// As `Facts` wants it: lower case up to the first `/`.
    key: String,
    values: Vec<String>,
}

/// Operator names with their comparison and whether they negate it.
const OPERATORS: &[(&str, Operator, bool)] = &[
    ("StringEquals", Operator::StringEquals, false),
    ("StringNotEquals", Operator::StringEquals, true),
    ("StringEqualsIgnoreCase", Operator::StringEqualsIgnoreCase, false),
    ("StringNotEqualsIgnoreCase", Operator::StringEqualsIgnoreCase, true),
    ("StringLike", Operator::StringLike, false),
    ("StringNotLike", Operator::StringLike, true),
    ("NumericEquals", Operator::NumericEquals, false),
    ("NumericNotEquals", Operator::NumericEquals, true),
    ("NumericLessThan", Operator::NumericLessThan, false),
    ("NumericLessThanEquals", Operator::NumericLessThanEquals, false),
    ("NumericGreaterThan", Operator::NumericGreaterThan, false),
    ("NumericGreaterThanEquals", Operator::NumericGreaterThanEquals, false),
    ("DateEquals", Operator::DateEquals, false),
    ("DateNotEquals", Operator::DateEquals, true),
    ("DateLessThan", Operator::DateLessThan, false),
    ("DateLessThanEquals", Operator::DateLessThanEquals, false),
    ("DateGreaterThan", Operator::DateGreaterThan, false),
    ("DateGreaterThanEquals", Operator::DateGreaterThanEquals, false),
    ("Bool", Operator::Bool, false),
    ("BinaryEquals", Operator::BinaryEquals, false),
    ("IpAddress", Operator::IpAddress, false),
    ("NotIpAddress", Operator::IpAddress, true),
    ("ArnEquals", Operator::ArnEquals, false),
    ("ArnNotEquals", Operator::ArnEquals, true),
    ("ArnLike", Operator::ArnLike, false),
    ("ArnNotLike", Operator::ArnLike, true),
    ("Null", Operator::Null, false),
];

/// A condition key as `Facts` is asked for it.
pub fn normal_key(key: &str) -> String {
    match key.split_once('/') {
        Some((head, tail)) => format!("{}/{tail}", head.to_ascii_lowercase()),
        None => key.to_ascii_lowercase(),
    }
}

impl Condition {
    /// One `operator: {key: value(s)}` entry, its values already turned into strings.
    pub(crate) fn new(operator: &str, key: &str, values: Vec<String>) -> Result<Condition, PolicyError> {
        let (qualifier, name) = if let Some(rest) = operator.strip_prefix("ForAnyValue:") {
            (Qualifier::AnyValue, rest)
        } else if let Some(rest) = operator.strip_prefix("ForAllValues:") {
            (Qualifier::AllValues, rest)
        } else {
            (Qualifier::Single, operator)
        };
        let (name, if_exists) = match name.strip_suffix("IfExists") {
            Some(n) if n != "Null" => (n, true),
            _ => (name, false),
        };
        let Some(&(_, op, negated)) = OPERATORS.iter().find(|(n, ..)| *n == name) else {
            return err(format!("Invalid Condition type : {operator}"));
        };
        if !key.contains(':') || key.len() > 256 {
            return err(format!("Invalid Condition key : {key}"));
        }
        if values.is_empty() {
            return err(format!("Condition {operator} has no value for {key}"));
        }
        for v in &values {
            check_value(op, v).map_err(|why| PolicyError(format!("Invalid value {v:?} for {operator}: {why}")))?;
        }
        Ok(Condition { op, negated, if_exists, qualifier, key: normal_key(key), values })
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn operator(&self) -> Operator {
        self.op
    }

    pub fn negated(&self) -> bool {
        self.negated
    }

    pub fn values(&self) -> &[String] {
        &self.values
    }

    /// Whether the condition holds for a request with these facts.
    pub fn holds(&self, facts: &dyn Facts) -> bool {
        let got = facts.values(&self.key);
        if self.op == Operator::Null {
            let absent = got.as_ref().is_none_or(Vec::is_empty);
            return self.values.iter().any(|v| v.eq_ignore_ascii_case("true") == absent);
        }
        let got = match got {
            Some(v) if !v.is_empty() => v,
            // IAM: a missing key fails a condition, except with IfExists, with a negated
            // operator and with ForAllValues (vacuously true).
            _ => return self.if_exists || self.negated || self.qualifier == Qualifier::AllValues,
        };
        let one = |g: &String| self.values.iter().any(|v| compare(self.op, v, g)) != self.negated;
        match self.qualifier {
            Qualifier::AllValues => got.iter().all(one),
            Qualifier::Single | Qualifier::AnyValue => got.iter().any(one),
        }
    }
}

/// Refuses a policy value its operator cannot compare.
fn check_value(op: Operator, v: &str) -> Result<(), &'static str> {
    match op {
        Operator::NumericEquals
        | Operator::NumericLessThan
        | Operator::NumericLessThanEquals
        | Operator::NumericGreaterThan
        | Operator::NumericGreaterThanEquals => v.trim().parse::<f64>().map(drop).map_err(|_| "not a number"),
        Operator::DateEquals
        | Operator::DateLessThan
        | Operator::DateLessThanEquals
        | Operator::DateGreaterThan
        | Operator::DateGreaterThanEquals => date_secs(v).map(drop).ok_or("not an ISO 8601 date or epoch seconds"),
        Operator::Bool | Operator::Null => {
            if v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("false") {
                Ok(())
            } else {
                Err("not true or false")
            }
        }
        Operator::IpAddress => cidr(v).map(drop).ok_or("not an IP address or CIDR block"),
        _ => Ok(()),
    }
}

/// Whether the request's value `got` matches the policy's value `want`.
fn compare(op: Operator, want: &str, got: &str) -> bool {
    let num = |f: fn(f64, f64) -> bool| match (got.trim().parse::<f64>(), want.trim().parse::<f64>()) {
        (Ok(g), Ok(w)) => f(g, w),
        _ => false,
    };
    let date = |f: fn(f64, f64) -> bool| match (date_secs(got), date_secs(want)) {
        (Some(g), Some(w)) => f(g, w),
        _ => false,
    };
    match op {
        Operator::StringEquals | Operator::BinaryEquals | Operator::ArnEquals => want == got,
        Operator::StringEqualsIgnoreCase => want.eq_ignore_ascii_case(got),
        Operator::StringLike | Operator::ArnLike => glob::matches(want, got),
        Operator::NumericEquals => num(|g, w| g == w),
        Operator::NumericLessThan => num(|g, w| g < w),
        Operator::NumericLessThanEquals => num(|g, w| g <= w),
        Operator::NumericGreaterThan => num(|g, w| g > w),
        Operator::NumericGreaterThanEquals => num(|g, w| g >= w),
        Operator::DateEquals => date(|g, w| g == w),
        Operator::DateLessThan => date(|g, w| g < w),
        Operator::DateLessThanEquals => date(|g, w| g <= w),
        Operator::DateGreaterThan => date(|g, w| g > w),
        Operator::DateGreaterThanEquals => date(|g, w| g >= w),
        Operator::Bool => want.eq_ignore_ascii_case(got),
        Operator::IpAddress => match (cidr(want), got.parse::<IpAddr>()) {
            (Some(block), Ok(ip)) => in_block(block, ip),
            _ => false,
        },
        Operator::Null => false,
    }
}

/// An address and prefix length (`10.0.0.0/8`; a bare address is its own /32 or /128).
pub fn cidr(s: &str) -> Option<(IpAddr, u8)> {
    let s = s.trim();
    let (addr, len) = match s.split_once('/') {
        Some((a, l)) => (a.parse::<IpAddr>().ok()?, l.parse::<u8>().ok()?),
        None => {
            let a = s.parse::<IpAddr>().ok()?;
            (a, if a.is_ipv4() { 32 } else { 128 })
        }
    };
    let max = if addr.is_ipv4() { 32 } else { 128 };
    (len <= max).then_some((addr, len))
}

fn in_block((net, len): (IpAddr, u8), ip: IpAddr) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    let bits = |a: IpAddr| -> (u128, u32) {
        match a {
            IpAddr::V4(v) => (u128::from(u32::from(v)), 32),
            IpAddr::V6(v) => (u128::from(v), 128),
        }
    };
    let ((n, nw), (i, iw)) = (bits(net), bits(ip));
    if nw != iw {
        return false;
    }
    let shift = nw - u32::from(len);
    shift >= 128 || (n >> shift) == (i >> shift)
}

/// Seconds since the epoch of an ISO 8601 date (`2026-12-08`, `2026-12-08T10:00:00Z`, with
/// fractions or a `±hh:mm` offset) or of a plain number of seconds.
pub fn date_secs(s: &str) -> Option<f64> {
    let s = s.trim();
    if let Ok(n) = s.parse::<f64>() {
        return Some(n);
    }
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        if part.bytes().all(|c| c.is_ascii_digit()) { part.parse().ok() } else { None }
    };
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let days = days_from_civil(y, m, d);
    if b.len() == 10 {
        return Some((days * 86400) as f64);
    }
    if b.len() < 19 || !matches!(b[10], b'T' | b't') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    let mut rest = &s[19..];
    let mut frac = 0.0;
    if let Some(r) = rest.strip_prefix('.') {
        let digits = r.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        frac = format!("0.{}", &r[..digits]).parse().ok()?;
        rest = &r[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        r if r.len() == 6 && (r.starts_with('+') || r.starts_with('-')) && &r[3..4] == ":" => {
            let h: i64 = r[1..3].parse().ok()?;
            let m: i64 = r[4..6].parse().ok()?;
            let o = h * 3600 + m * 60;
            if r.starts_with('+') { o } else { -o }
        }
        _ => return None,
    };
    Some((days * 86400 + hh * 3600 + mm * 60 + ss - offset) as f64 + frac)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}
