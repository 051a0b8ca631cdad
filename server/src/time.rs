//! Time formats S3 uses: RFC 1123 in headers, `YYYY-MM-DDTHH:MM:SS.mmmZ` in XML, and the
//! compact ISO 8601 `YYYYMMDDTHHMMSSZ` of SigV4.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// `Tue, 08 Apr 2025 14:51:53 GMT`
pub fn http_date(ms: u64) -> String {
    httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_millis(ms))
}

/// `http_date` as a header value (inline: no allocation).
pub fn http_date_value(ms: u64) -> crate::http::HeaderValue {
    let date = httpdate::HttpDate::from(UNIX_EPOCH + Duration::from_millis(ms));
    crate::http::HeaderValue::format(format_args!("{date}"))
}

/// Calls `f` with the current time as an HTTP date, formatted once a second per thread (every
/// response's `Date`).
pub fn with_date_now<T>(f: impl FnOnce(&[u8]) -> T) -> T {
    use std::cell::Cell;
    thread_local! {
        static DATE: Cell<(u64, [u8; 29])> = const { Cell::new((u64::MAX, [0; 29])) };
    }
    let secs = now_ms() / 1000;
    let (at, mut bytes) = DATE.with(Cell::get);
    if at != secs {
        let v = http_date_value(secs * 1000);
        if v.len() == bytes.len() {
            bytes.copy_from_slice(v.as_bytes());
            DATE.with(|d| d.set((secs, bytes)));
        } else {
            return f(v.as_bytes());
        }
    }
    f(&bytes)
}

/// Parses an HTTP date (RFC 1123, RFC 850 or asctime) to seconds since the epoch.
pub fn parse_http_date(s: &str) -> Option<u64> {
    let t = httpdate::parse_http_date(s.trim()).ok()?;
    t.duration_since(UNIX_EPOCH).ok().map(|d| d.as_secs())
}

/// Parses the dates signed requests carry: HTTP dates (RFC 1123 with a `GMT`, `+0000` or `-0000`
/// zone, as botocore, s3cmd and Python's `formatdate` write them; RFC 850 and asctime), or SigV4's
/// compact ISO 8601. The weekday of an RFC 1123 date is not checked (S3 does not: a date with
/// the wrong weekday is still that date). Dates before 1970 are refused.
pub fn parse_any_date(s: &str) -> Option<i64> {
    let t = s.trim();
    if let Some(secs) = parse_rfc1123(t) {
        return Some(secs);
    }
    if let Some(secs) = parse_http_date(t) {
        return Some(secs as i64);
    }
    parse_amz_date(t).filter(|s| *s >= 0)
}

/// `Www, DD Mon YYYY HH:MM:SS GMT` (or `+0000`, `-0000`), weekday ignored.
fn parse_rfc1123(t: &str) -> Option<i64> {
    let (_, rest) = t.split_once(", ")?;
    let mut it = rest.split(' ');
    let (d, mon, y, hms, zone) = (it.next()?, it.next()?, it.next()?, it.next()?, it.next()?);
    if it.next().is_some() || !matches!(zone, "GMT" | "UTC" | "+0000" | "-0000") {
        return None;
    }
    let num = |s: &str, len: std::ops::RangeInclusive<usize>| -> Option<i64> {
        (len.contains(&s.len()) && s.bytes().all(|c| c.is_ascii_digit())).then(|| s.parse().ok()).flatten()
    };
    let d = num(d, 1..=2)?;
    let y = num(y, 4..=4)?;
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let mo = MONTHS.iter().position(|m| *m == mon)? as u32 + 1;
    let mut hms = hms.split(':');
    let (h, mi, se) = (num(hms.next()?, 2..=2)?, num(hms.next()?, 2..=2)?, num(hms.next()?, 2..=2)?);
    if hms.next().is_some() || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 || y < 1970 {
        return None;
    }
    Some(days_from_civil(y, mo, d as u32) * 86_400 + h * 3600 + mi * 60 + se)
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `2025-04-08T14:51:53.000Z`: whole seconds, as S3 writes XML times, so a listing's
/// `LastModified` is the same instant as the object's `Last-Modified` header.
pub fn iso8601_ms(ms: u64) -> String {
    let secs = (ms / 1000) as i64;
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    format!("{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.000Z", sod / 3600, sod / 60 % 60, sod % 60)
}

/// Parses an XML/ISO 8601 time `2025-04-08T14:51:53Z` (fractional seconds allowed) to seconds
/// since the epoch.
pub fn parse_iso8601(s: &str) -> Option<i64> {
    let t = s.trim().strip_suffix('Z')?;
    let (date, time) = t.split_once('T')?;
    let time = time
        .split_once('.')
        .map_or(time, |(whole, frac)| if frac.bytes().all(|c| c.is_ascii_digit()) { whole } else { "invalid" });
    let compact = format!("{}T{}Z", date.replace('-', ""), time.replace(':', ""));
    (date.len() == 10 && time.len() == 8).then(|| parse_amz_date(&compact)).flatten()
}

/// Parses SigV4's `20130524T000000Z` to seconds since the epoch.
pub fn parse_amz_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        if !t.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        t.parse().ok()
    };
    let (y, mo, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (h, mi, se) = (num(9..11)?, num(11..13)?, num(13..15)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    Some(days_from_civil(y, mo as u32, d as u32) * 86_400 + h * 3600 + mi * 60 + se)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(iso8601_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601_ms(1_744_123_913_042), "2025-04-08T14:51:53.000Z");
        assert_eq!(http_date(1_744_123_913_042), "Tue, 08 Apr 2025 14:51:53 GMT");
        assert_eq!(parse_http_date("Tue, 08 Apr 2025 14:51:53 GMT"), Some(1_744_123_913));
        assert_eq!(parse_amz_date("20250408T145153Z"), Some(1_744_123_913));
        assert_eq!(parse_amz_date("20000229T000000Z"), Some(951_782_400));
        assert_eq!(parse_amz_date("2025-04-08T14:51:53Z"), None);
        assert_eq!(parse_any_date("Tue, 08 Apr 2025 14:51:53 +0000"), Some(1_744_123_913));
        assert_eq!(parse_any_date("20250408T145153Z"), Some(1_744_123_913));
        // Python's formatdate(usegmt=False), as botocore's SigV4 sends Date.
        assert_eq!(parse_any_date("Tue, 08 Apr 2025 14:51:53 -0000"), Some(1_744_123_913));
        // The weekday is not checked (2010-07-07 was a Wednesday); before 1970 is refused.
        assert_eq!(parse_any_date("Tue, 07 Jul 2010 21:53:04 GMT"), Some(1_278_539_584));
        assert!(parse_any_date("Tue, 07 Jul 9999 21:53:04 GMT").is_some());
        assert_eq!(parse_any_date("Tue, 07 Jul 1950 21:53:04 GMT"), None);
        assert_eq!(parse_any_date("Bad Date"), None);
        assert_eq!(parse_any_date(""), None);
        assert_eq!(parse_iso8601("2025-04-08T14:51:53Z"), Some(1_744_123_913));
        assert_eq!(parse_iso8601("2025-04-08T14:51:53.042Z"), Some(1_744_123_913));
        assert_eq!(parse_iso8601("2025-04-08 14:51:53Z"), None);
        assert_eq!(parse_amz_date("20251308T145153Z"), None);
        for days in [-1000i64, 0, 11_016, 20_000, 60_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
