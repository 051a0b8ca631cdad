//! AWS's rule for a "public" policy: it grants to everyone, unless a condition pins each such
//! grant to fixed sources, accounts or networks.

use crate::cond::{Operator, cidr};
use crate::{Effect, Principals, Statement, glob};

/// Condition keys whose fixed values make a grant to `*` non-public.
const PINNING_KEYS: &[&str] = &[
    "aws:sourcearn",
    "aws:sourcevpc",
    "aws:sourcevpce",
    "aws:sourceaccount",
    "aws:sourceowner",
    "aws:principalorgid",
    "aws:principalaccount",
    "aws:principalarn",
    "aws:userid",
    "aws:username",
    "s3:dataaccesspointarn",
    "s3:dataaccesspointaccount",
];

pub fn grants_everyone(s: &Statement) -> bool {
    s.effect == Effect::Allow
        && !s.principal.negated
        && s.principal.items == Principals::Any
        && !s.conditions.iter().any(|c| {
            if c.negated() {
                return false;
            }
            let fixed = |v: &String| !glob::is_pattern(v);
            match c.operator() {
                Operator::IpAddress if c.key() == "aws:sourceip" => c.values().iter().all(|v| narrow(v)),
                Operator::StringEquals | Operator::StringEqualsIgnoreCase | Operator::ArnEquals => {
                    PINNING_KEYS.contains(&c.key())
                }
                Operator::StringLike | Operator::ArnLike => {
                    PINNING_KEYS.contains(&c.key()) && c.values().iter().all(fixed)
                }
                _ => false,
            }
        })
}

/// An address block small enough not to count as "everyone" (AWS: IPv4 /8 or longer, IPv6 /32
/// or longer).
fn narrow(v: &str) -> bool {
    match cidr(v) {
        Some((ip, len)) if ip.is_ipv4() => len >= 8,
        Some((_, len)) => len >= 32,
        None => false,
    }
}
