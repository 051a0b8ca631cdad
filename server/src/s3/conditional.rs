//! Conditional requests (RFC 9110 section 13, as S3 applies them): If-Match, If-None-Match,
//! If-Modified-Since, If-Unmodified-Since, and the `x-amz-copy-source-if-*` family of CopyObject.

use crate::time;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Proceed,
    /// 304 for GET/HEAD.
    NotModified,
    /// 412.
    PreconditionFailed,
}

/// The four conditional header values.
#[derive(Clone, Copy, Debug, Default)]
pub struct Conditions<'a> {
    pub if_match: Option<&'a str>,
    pub if_none_match: Option<&'a str>,
    pub if_modified_since: Option<&'a str>,
    pub if_unmodified_since: Option<&'a str>,
}

pub use engine::etag_list_matches;

impl Conditions<'_> {
    /// Evaluates in RFC order: If-Match, else If-Unmodified-Since; then If-None-Match, else
    /// If-Modified-Since. `mtime_secs` is the object's Last-Modified in whole seconds.
    /// `read` is true for GET/HEAD, where a failed If-None-Match or If-Modified-Since is 304;
    /// elsewhere (CopyObject's copy-source conditions) every failure is 412.
    pub fn evaluate(&self, etag: &str, mtime_secs: u64, read: bool) -> Outcome {
        if let Some(m) = self.if_match {
            if !etag_list_matches(m, etag) {
                return Outcome::PreconditionFailed;
            }
        } else if let Some(since) = self.if_unmodified_since.and_then(time::parse_http_date)
            && mtime_secs > since
        {
            return Outcome::PreconditionFailed;
        }
        if let Some(m) = self.if_none_match {
            if etag_list_matches(m, etag) {
                return if read { Outcome::NotModified } else { Outcome::PreconditionFailed };
            }
        } else if let Some(since) = self.if_modified_since.and_then(time::parse_http_date)
            && mtime_secs <= since
        {
            return if read { Outcome::NotModified } else { Outcome::PreconditionFailed };
        }
        Outcome::Proceed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: u64 = 1_744_123_913; // Tue, 08 Apr 2025 14:51:53 GMT
    const BEFORE: &str = "Tue, 08 Apr 2025 14:51:52 GMT";
    const AT: &str = "Tue, 08 Apr 2025 14:51:53 GMT";
    const AFTER: &str = "Tue, 08 Apr 2025 14:51:54 GMT";

    fn eval(c: Conditions<'_>) -> Outcome {
        c.evaluate("abc", T, true)
    }

    #[test]
    fn table() {
        use Outcome::*;
        let none = Conditions::default();
        assert_eq!(eval(none), Proceed);
        assert_eq!(eval(Conditions { if_match: Some("\"abc\""), ..none }), Proceed);
        assert_eq!(eval(Conditions { if_match: Some("abc"), ..none }), Proceed);
        assert_eq!(eval(Conditions { if_match: Some("\"x\", \"abc\""), ..none }), Proceed);
        assert_eq!(eval(Conditions { if_match: Some("*"), ..none }), Proceed);
        assert_eq!(eval(Conditions { if_match: Some("\"x\""), ..none }), PreconditionFailed);
        assert_eq!(eval(Conditions { if_none_match: Some("\"abc\""), ..none }), NotModified);
        assert_eq!(eval(Conditions { if_none_match: Some("W/\"abc\""), ..none }), NotModified);
        assert_eq!(eval(Conditions { if_none_match: Some("\"x\""), ..none }), Proceed);
        assert_eq!(eval(Conditions { if_modified_since: Some(AT), ..none }), NotModified);
        assert_eq!(eval(Conditions { if_modified_since: Some(BEFORE), ..none }), Proceed);
        assert_eq!(eval(Conditions { if_unmodified_since: Some(BEFORE), ..none }), PreconditionFailed);
        assert_eq!(eval(Conditions { if_unmodified_since: Some(AFTER), ..none }), Proceed);
        // If-Match true wins over a failing If-Unmodified-Since (S3 and RFC agree).
        assert_eq!(eval(Conditions { if_match: Some("\"abc\""), if_unmodified_since: Some(BEFORE), ..none }), Proceed);
        // If-None-Match false (no match) wins over If-Modified-Since.
        assert_eq!(eval(Conditions { if_none_match: Some("\"x\""), if_modified_since: Some(AFTER), ..none }), Proceed);
        // Unparseable dates are ignored.
        assert_eq!(eval(Conditions { if_modified_since: Some("yesterday"), ..none }), Proceed);
        // Writes answer 412 where reads answer 304.
        assert_eq!(Conditions { if_none_match: Some("*"), ..none }.evaluate("abc", T, false), PreconditionFailed);
        assert_eq!(Conditions { if_modified_since: Some(AT), ..none }.evaluate("abc", T, false), PreconditionFailed);
    }
}
