//! The S3 bucket policy language (DESIGN D49): a JSON document parsed and checked once, when
//! `PutBucketPolicy` stores it, then evaluated for every request to its bucket.
//!
//! What is understood: `Version`, `Id`, `Statement` (one object or a list), and in each
//! statement `Sid`, `Effect` (`Allow`/`Deny`), `Principal`/`NotPrincipal` (`"*"`,
//! `{"AWS": …}`, `{"CanonicalUser": …}`, `{"Service": …}`, `{"Federated": …}`),
//! `Action`/`NotAction` and `Resource`/`NotResource` with `*` and `?` wildcards, and `Condition`
//! with the IAM operators (`String*`, `Numeric*`, `Date*`, `Bool`, `BinaryEquals`,
//! `IpAddress`/`NotIpAddress`, `Arn*`, `Null`, each with `…IfExists`, and the
//! `ForAnyValue:`/`ForAllValues:` set qualifiers). Anything else is refused with the reason
//! (S3's `MalformedPolicy`): a policy keel would read differently from AWS must not be stored.
//!
//! Evaluation is IAM's: an explicit Deny wins, then an Allow; otherwise the policy says nothing
//! and the caller's ACL grants decide (`Decision::NotApplicable`).

mod actions;
mod cond;
mod glob;
mod parse;
mod public;
#[cfg(test)]
mod tests;

use std::fmt;

use cond::Condition;
pub use cond::date_secs;

/// The largest policy document S3 accepts (20 KiB).
pub const MAX_POLICY_BYTES: usize = 20 * 1024;

/// Why a policy document was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyError(pub String);

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PolicyError {}

fn err<T>(why: impl Into<String>) -> Result<T, PolicyError> {
    Err(PolicyError(why.into()))
}

/// A parsed bucket policy; keeps the document as given (GetBucketPolicy answers it verbatim).
#[derive(Clone, Debug)]
pub struct Policy {
    text: String,
    statements: Vec<Statement>,
    /// Some Allow statement can grant `s3:ListBucket` (decided once, at parse).
    may_allow_listing: bool,
}

impl PartialEq for Policy {
    fn eq(&self, other: &Policy) -> bool {
        self.text == other.text
    }
}

impl Eq for Policy {}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

/// Who a statement is about.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Principals {
    /// `"*"` or `{"AWS": "*"}`: everyone, anonymous callers included.
    Any,
    /// Named principals: AWS ARNs or account ids, canonical user ids; service and federated
    /// principals are kept but never match a caller of keel.
    Named { aws: Vec<String>, canonical: Vec<String>, other: Vec<String> },
}

/// A list that either names what matches or, negated (`NotAction`, `NotResource`,
/// `NotPrincipal`), everything else.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Either<T> {
    negated: bool,
    items: T,
}

#[derive(Clone, Debug)]
struct Statement {
    effect: Effect,
    principal: Either<Principals>,
    actions: Either<Vec<String>>,
    resources: Either<Vec<String>>,
    conditions: Vec<Condition>,
}

/// Who is asking.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Caller<'a> {
    Anonymous,
    /// A known user, by its id (the canonical id S3 calls it; the account id of its ARNs).
    User(&'a str),
}

/// The values of condition keys for one request. Keys are given as written in policies, with
/// the part before any `/` in lower case (`s3:existingobjecttag/Project`); `None` when the
/// request has no such key.
pub trait Facts {
    fn values(&self, key: &str) -> Option<Vec<String>>;
}

/// No condition key at all.
pub struct NoFacts;

impl Facts for NoFacts {
    fn values(&self, _key: &str) -> Option<Vec<String>> {
        None
    }
}

/// One request as a policy sees it.
pub struct Request<'a> {
    pub caller: Caller<'a>,
    /// `s3:GetObject`, …
    pub action: &'a str,
    /// `arn:aws:s3:::bucket` or `arn:aws:s3:::bucket/key`.
    pub resource: &'a str,
    pub facts: &'a dyn Facts,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny,
    /// No statement applies: the caller's other grants decide.
    NotApplicable,
}

impl Policy {
    /// Parses and checks a document for `bucket`: every resource must be an S3 ARN that can
    /// name the bucket or its objects, every action an S3 action.
    pub fn parse(text: &str, bucket: &str) -> Result<Policy, PolicyError> {
        parse::document(text, Some(bucket))
    }

    /// Parses a document stored before (checked when it was stored).
    pub fn parse_stored(text: &str) -> Result<Policy, PolicyError> {
        parse::document(text, None)
    }

    /// The document as it was given.
    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn evaluate(&self, req: &Request<'_>) -> Decision {
        let mut allowed = false;
        for s in &self.statements {
            if s.applies(req) {
                match s.effect {
                    Effect::Deny => return Decision::Deny,
                    Effect::Allow => allowed = true,
                }
            }
        }
        if allowed { Decision::Allow } else { Decision::NotApplicable }
    }

    /// Whether some Allow statement can grant `s3:ListBucket`: when none can, a caller's right
    /// to list is the ACLs' alone and needs no evaluation.
    pub fn may_allow_listing(&self) -> bool {
        self.may_allow_listing
    }

    /// Whether the policy grants anything to everyone (AWS's "public"): an Allow statement
    /// whose principal is `*` and that no condition pins to fixed sources or accounts.
    pub fn is_public(&self) -> bool {
        self.statements.iter().any(public::grants_everyone)
    }

    /// Whether any condition reads a key starting with `prefix` (lower case): the caller then
    /// gathers it before evaluating (`s3:existingobjecttag/` costs a record lookup).
    pub fn uses_key(&self, prefix: &str) -> bool {
        self.statements.iter().flat_map(|s| &s.conditions).any(|c| c.key().starts_with(prefix))
    }
}

impl Statement {
    fn applies(&self, req: &Request<'_>) -> bool {
        self.principal.matches(|p| p.matches(req.caller))
            && self.actions.matches(|a| a.iter().any(|p| glob::matches_ignore_case(p, req.action)))
            && self.resources.matches(|r| r.iter().any(|p| glob::matches(p, req.resource)))
            && self.conditions.iter().all(|c| c.holds(req.facts))
    }
}

impl<T> Either<T> {
    fn matches(&self, f: impl FnOnce(&T) -> bool) -> bool {
        f(&self.items) != self.negated
    }
}

impl Principals {
    fn matches(&self, caller: Caller<'_>) -> bool {
        match self {
            Principals::Any => true,
            Principals::Named { aws, canonical, .. } => {
                let Caller::User(id) = caller else { return false };
                aws.iter().any(|p| aws_principal_is(p, id)) || canonical.iter().any(|c| c == id)
            }
        }
    }
}

/// Whether an `AWS` principal names the user `id`: its account id (`"ID"`), the account's root
/// ARN (`arn:aws:iam::ID:root`) or a user of it (`arn:aws:iam::ID:user/…`).
fn aws_principal_is(p: &str, id: &str) -> bool {
    if p == id {
        return true;
    }
    let Some(rest) = p.strip_prefix("arn:aws:iam::") else { return false };
    match rest.split_once(':') {
        Some((account, what)) => account == id && (what == "root" || what.starts_with("user/")),
        None => false,
    }
}
