//! The evaluator against a table of (policy, request) → decision, and the parser's refusals.

use std::collections::HashMap;

use crate::*;

struct Map(HashMap<String, Vec<String>>);

impl Facts for Map {
    fn values(&self, key: &str) -> Option<Vec<String>> {
        self.0.get(key).cloned()
    }
}

fn facts(pairs: &[(&str, &[&str])]) -> Map {
    Map(pairs.iter().map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect())).collect())
}

fn policy(statements: &str) -> Policy {
    let text = format!(r#"{{"Version":"2012-10-17","Statement":[{statements}]}}"#);
    Policy::parse(&text, "b").unwrap_or_else(|e| panic!("{e}: {text}"))
}

const PUBLIC_GET: &str = r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}"#;

/// (statements, caller, action, resource, facts, expected)
type Case<'a> = (&'a str, Caller<'a>, &'a str, &'a str, &'a [(&'a str, &'a [&'a str])], Decision);

#[test]
fn decisions() {
    use Caller::{Anonymous, User};
    use Decision::{Allow, Deny, NotApplicable as Na};
    let obj = "arn:aws:s3:::b/k";
    let bkt = "arn:aws:s3:::b";
    let deny_alt = r#"{"Effect":"Deny","Principal":{"AWS":"arn:aws:iam::alt:root"},"Action":"s3:*","Resource":["arn:aws:s3:::b","arn:aws:s3:::b/*"]}"#;
    let prefix = r#"{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"s3:ListBucket","Resource":"arn:aws:s3:::b","Condition":{"StringLike":{"s3:prefix":"public/*"}}}"#;
    let ip = r#"{"Effect":"Allow","Principal":"*","Action":"s3:Get*","Resource":"arn:aws:s3:::b/*","Condition":{"IpAddress":{"aws:SourceIp":["10.0.0.0/8","::1"]}}}"#;
    let not_ip = r#"{"Effect":"Deny","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::b/*","Condition":{"NotIpAddress":{"aws:SourceIp":"127.0.0.0/8"}}}"#;
    let tls = r#"{"Effect":"Deny","Principal":"*","Action":"*","Resource":"arn:aws:s3:::b/*","Condition":{"Bool":{"aws:SecureTransport":"false"}}}"#;
    let tag = r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*","Condition":{"StringEquals":{"s3:ExistingObjectTag/Security":"public"}}}"#;
    let not_action =
        r#"{"Effect":"Deny","Principal":"*","NotAction":["s3:Get*","s3:List*"],"Resource":"arn:aws:s3:::b/*"}"#;
    let not_resource =
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","NotResource":"arn:aws:s3:::b/private/*"}"#;
    let if_exists = r#"{"Effect":"Deny","Principal":"*","Action":"s3:PutObject","Resource":"arn:aws:s3:::b/*","Condition":{"StringNotEqualsIfExists":{"s3:x-amz-acl":"private"}}}"#;
    let numeric = r#"{"Effect":"Allow","Principal":"*","Action":"s3:ListBucket","Resource":"arn:aws:s3:::b","Condition":{"NumericLessThanEquals":{"s3:max-keys":"10"}}}"#;
    let date = r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*","Condition":{"DateGreaterThan":{"aws:CurrentTime":"2026-01-01T00:00:00Z"}}}"#;
    let all_values = r#"{"Effect":"Allow","Principal":"*","Action":"s3:PutObject","Resource":"arn:aws:s3:::b/*","Condition":{"ForAllValues:StringEquals":{"s3:RequestObjectTagKeys":["a","b"]}}}"#;
    let any_value = r#"{"Effect":"Allow","Principal":"*","Action":"s3:PutObject","Resource":"arn:aws:s3:::b/*","Condition":{"ForAnyValue:StringEquals":{"s3:RequestObjectTagKeys":["a"]}}}"#;
    let null = r#"{"Effect":"Deny","Principal":"*","Action":"s3:PutObject","Resource":"arn:aws:s3:::b/*","Condition":{"Null":{"s3:x-amz-server-side-encryption":"true"}}}"#;
    let canonical = r#"{"Effect":"Allow","Principal":{"CanonicalUser":"alt"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}"#;
    let cases: &[Case] = &[
        (PUBLIC_GET, Anonymous, "s3:GetObject", obj, &[], Allow),
        (PUBLIC_GET, User("alt"), "s3:GetObject", obj, &[], Allow),
        (PUBLIC_GET, Anonymous, "s3:PutObject", obj, &[], Na),
        (PUBLIC_GET, Anonymous, "s3:GetObject", bkt, &[], Na),
        (PUBLIC_GET, Anonymous, "s3:GetObject", "arn:aws:s3:::other/k", &[], Na),
        (&format!("{PUBLIC_GET},{deny_alt}"), User("alt"), "s3:GetObject", obj, &[], Deny),
        (&format!("{PUBLIC_GET},{deny_alt}"), User("main"), "s3:GetObject", obj, &[], Allow),
        (deny_alt, Anonymous, "s3:GetObject", obj, &[], Na),
        (prefix, User("alt"), "s3:ListBucket", bkt, &[("s3:prefix", &["public/a"])], Allow),
        (prefix, User("alt"), "s3:ListBucket", bkt, &[("s3:prefix", &["private/a"])], Na),
        (prefix, User("alt"), "s3:ListBucket", bkt, &[], Na),
        (ip, Anonymous, "s3:GetObject", obj, &[("aws:sourceip", &["10.1.2.3"])], Allow),
        (ip, Anonymous, "s3:GetObject", obj, &[("aws:sourceip", &["11.1.2.3"])], Na),
        (ip, Anonymous, "s3:GetObject", obj, &[("aws:sourceip", &["::1"])], Allow),
        (ip, Anonymous, "s3:GetObject", obj, &[("aws:sourceip", &["::ffff:10.0.0.1"])], Allow),
        (not_ip, Anonymous, "s3:GetObject", obj, &[("aws:sourceip", &["127.0.0.1"])], Na),
        (not_ip, Anonymous, "s3:GetObject", obj, &[("aws:sourceip", &["192.168.0.1"])], Deny),
        (tls, User("main"), "s3:GetObject", obj, &[("aws:securetransport", &["false"])], Deny),
        (tls, User("main"), "s3:GetObject", obj, &[("aws:securetransport", &["true"])], Na),
        (tag, Anonymous, "s3:GetObject", obj, &[("s3:existingobjecttag/Security", &["public"])], Allow),
        (tag, Anonymous, "s3:GetObject", obj, &[("s3:existingobjecttag/security", &["public"])], Na),
        (tag, Anonymous, "s3:GetObject", obj, &[], Na),
        (not_action, Anonymous, "s3:PutObject", obj, &[], Deny),
        (not_action, Anonymous, "s3:GetObject", obj, &[], Na),
        (not_resource, Anonymous, "s3:GetObject", obj, &[], Allow),
        (not_resource, Anonymous, "s3:GetObject", "arn:aws:s3:::b/private/x", &[], Na),
        (if_exists, User("alt"), "s3:PutObject", obj, &[], Deny),
        (if_exists, User("alt"), "s3:PutObject", obj, &[("s3:x-amz-acl", &["private"])], Na),
        (if_exists, User("alt"), "s3:PutObject", obj, &[("s3:x-amz-acl", &["public-read"])], Deny),
        (numeric, Anonymous, "s3:ListBucket", bkt, &[("s3:max-keys", &["5"])], Allow),
        (numeric, Anonymous, "s3:ListBucket", bkt, &[("s3:max-keys", &["1000"])], Na),
        (numeric, Anonymous, "s3:ListBucket", bkt, &[("s3:max-keys", &["x"])], Na),
        (date, Anonymous, "s3:GetObject", obj, &[("aws:currenttime", &["2026-12-08T00:00:00Z"])], Allow),
        (date, Anonymous, "s3:GetObject", obj, &[("aws:currenttime", &["2025-12-08T00:00:00Z"])], Na),
        (all_values, Anonymous, "s3:PutObject", obj, &[("s3:requestobjecttagkeys", &["a"])], Allow),
        (all_values, Anonymous, "s3:PutObject", obj, &[("s3:requestobjecttagkeys", &["a", "c"])], Na),
        (all_values, Anonymous, "s3:PutObject", obj, &[], Allow),
        (any_value, Anonymous, "s3:PutObject", obj, &[("s3:requestobjecttagkeys", &["c", "a"])], Allow),
        (any_value, Anonymous, "s3:PutObject", obj, &[], Na),
        (null, User("alt"), "s3:PutObject", obj, &[], Deny),
        (null, User("alt"), "s3:PutObject", obj, &[("s3:x-amz-server-side-encryption", &["AES256"])], Na),
        (canonical, User("alt"), "s3:GetObject", obj, &[], Allow),
        (canonical, User("other"), "s3:GetObject", obj, &[], Na),
        (canonical, Anonymous, "s3:GetObject", obj, &[], Na),
    ];
    for (i, (statements, caller, action, resource, f, want)) in cases.iter().enumerate() {
        let p = policy(statements);
        let facts = facts(f);
        let got = p.evaluate(&Request { caller: *caller, action, resource, facts: &facts });
        assert_eq!(got, *want, "case {i}: {statements} {caller:?} {action} {resource}");
    }
}

#[test]
fn principals_by_arn_account_and_user() {
    let p = policy(
        r#"{"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::alt:root","arn:aws:iam::third:user/x","fourth"]},"Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}"#,
    );
    for (who, want) in [("alt", true), ("third", true), ("fourth", true), ("main", false)] {
        let got = p.evaluate(&Request {
            caller: Caller::User(who),
            action: "s3:GetObject",
            resource: "arn:aws:s3:::b/k",
            facts: &NoFacts,
        });
        assert_eq!(got == Decision::Allow, want, "{who}");
    }
}

#[test]
fn refusals_say_why() {
    let bad = |doc: &str| Policy::parse(doc, "b").unwrap_err().0;
    let st = |s: &str| format!(r#"{{"Version":"2012-10-17","Statement":[{s}]}}"#);
    assert!(bad("").contains("JSON"));
    assert!(bad("[]").contains("JSON"));
    assert!(bad("{").contains("JSON"));
    assert!(bad(r#"{"Version":"2012-10-17"}"#).contains("Statement"));
    assert!(bad(r#"{"Version":"2020-01-01","Statement":[]}"#).contains("version"));
    assert!(bad(&st("")).contains("empty"));
    assert!(bad(&st(r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject"}"#)).contains("Resource"));
    assert!(
        bad(&st(r#"{"Effect":"Maybe","Principal":"*","Action":"s3:GetObject","Resource":"*"}"#)).contains("effect")
    );
    assert!(bad(&st(r#"{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}"#)).contains("Principal"));
    assert!(
        bad(&st(
            r#"{"Effect":"Allow","NotPrincipal":{"AWS":"arn:aws:iam::x:root"},"Action":"s3:GetObject","Resource":"*"}"#
        ))
        .contains("NotPrincipal")
    );
    assert!(
        bad(&st(r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObjekt","Resource":"*"}"#)).contains("action")
    );
    assert!(bad(&st(r#"{"Effect":"Allow","Principal":"*","Action":"iam:*","Resource":"*"}"#)).contains("action"));
    assert!(
        bad(&st(r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::other/*"}"#))
            .contains("resource")
    );
    assert!(
        bad(&st(r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:sqs:::b"}"#))
            .contains("resource")
    );
    assert!(
        bad(&st(
            r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"*","Condition":{"StringFoo":{"a:b":"c"}}}"#
        ))
        .contains("Condition type")
    );
    assert!(
        bad(&st(
            r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"nope"}}}"#
        ))
        .contains("IP")
    );
    assert!(
        bad(&st(r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"*","Extra":1}"#))
            .contains("Extra")
    );
    assert!(bad(&"x".repeat(MAX_POLICY_BYTES + 1)).contains("larger"));
    // Another bucket's ARN with a wildcard that can name this one is fine.
    for r in ["arn:aws:s3:::*", "arn:aws:s3:::*/*", "arn:aws:s3:::b*", "arn:aws:s3:::b/x*", "*"] {
        Policy::parse(&st(&format!(r#"{{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"{r}"}}"#)), "b")
            .unwrap_or_else(|e| panic!("{r}: {e}"));
    }
    // A single statement object is accepted as well as a list; the text is kept verbatim.
    let doc = r#"{"Statement": {"Effect":"Deny","Principal":"*","Action":"s3:*","Resource":"*"}}"#;
    assert_eq!(Policy::parse(doc, "b").unwrap().text(), doc);
}

#[test]
fn public_or_not() {
    let public = |s: &str| policy(s).is_public();
    assert!(public(PUBLIC_GET));
    assert!(public(
        r#"{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"s3:ListBucket","Resource":"arn:aws:s3:::b","Condition":{"IpAddress":{"aws:SourceIp":"0.0.0.0/0"}}}"#
    ));
    assert!(!public(
        r#"{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"s3:ListBucket","Resource":"arn:aws:s3:::b","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/32"}}}"#
    ));
    assert!(!public(
        r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::t:root"},"Action":"s3:ListBucket","Resource":"arn:aws:s3:::b"}"#
    ));
    assert!(!public(r#"{"Effect":"Deny","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::b"}"#));
    assert!(!public(
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*","Condition":{"StringEquals":{"aws:SourceAccount":"123"}}}"#
    ));
}

#[test]
fn dates() {
    use crate::cond::date_secs;
    assert_eq!(date_secs("1970-01-01"), Some(0.0));
    assert_eq!(date_secs("2026-12-08T10:00:00Z"), Some(1_796_724_000.0));
    assert_eq!(date_secs("2026-12-08T11:00:00+01:00"), Some(1_796_724_000.0));
    assert_eq!(date_secs("2026-12-08T10:00:00.5Z"), Some(1_796_724_000.5));
    assert_eq!(date_secs("1796724000"), Some(1_796_724_000.0));
    for bad in ["", "2026-13-01", "2026-12-08T25:00:00Z", "2026-12-08T10:00:00", "yesterday", "2026-12-08T10:00:00.Z"] {
        assert_eq!(date_secs(bad), None, "{bad}");
    }
}
