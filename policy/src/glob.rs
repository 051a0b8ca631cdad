//! IAM wildcards: `*` matches any run of characters (`/` included), `?` any one character.

/// `text` matched against `pattern`, case-sensitive (resources, string conditions).
pub fn matches(pattern: &str, text: &str) -> bool {
    run(pattern.as_bytes(), text.as_bytes(), |a, b| a == b)
}

/// Case-insensitive (actions: `s3:getobject` is `s3:GetObject`).
pub fn matches_ignore_case(pattern: &str, text: &str) -> bool {
    run(pattern.as_bytes(), text.as_bytes(), |a, b| a.eq_ignore_ascii_case(&b))
}

/// Whether the pattern has a wildcard.
pub fn is_pattern(s: &str) -> bool {
    s.contains(['*', '?'])
}

/// Greedy match with one backtrack point (the last `*`): linear in practice, never exponential.
/// `?` matches one byte of a multi-byte character too: patterns and ARNs are ASCII in practice,
/// and a non-ASCII `?` only ever widens a match by bytes that are part of the same text.
fn run(p: &[u8], t: &[u8], eq: impl Fn(u8, u8) -> bool) -> bool {
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some(b'*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(&c) if c == b'?' || eq(c, t[ti]) => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(matches("arn:aws:s3:::b/*", "arn:aws:s3:::b/x/y"));
        assert!(matches("arn:aws:s3:::b/*", "arn:aws:s3:::b/"));
        assert!(!matches("arn:aws:s3:::b/*", "arn:aws:s3:::b"));
        assert!(matches("arn:aws:s3:::*", "arn:aws:s3:::b/k"));
        assert!(matches("a?c", "abc"));
        assert!(!matches("a?c", "ac"));
        assert!(matches("*a*b*", "xxaxxbxx"));
        assert!(!matches("*a*b", "xxaxxbxxc"));
        assert!(matches("", ""));
        assert!(!matches("", "a"));
        assert!(matches("**", ""));
        assert!(!matches("ABC", "abc"));
        assert!(matches_ignore_case("s3:Get*", "s3:getobject"));
        assert!(!matches_ignore_case("s3:Get*", "s3:PutObject"));
    }
}
