//! ACLs as requests state them (D53): a canned ACL (`x-amz-acl`), explicit grants
//! (`x-amz-grant-read: id="…", uri="…"`) or an AccessControlPolicy document; and the document
//! Get*Acl answers.

use engine::{CannedAcl, Grant, Grantee, Grants, Permission};

use crate::http::Request;
use crate::s3::access::{AclTarget, canned_from};
use crate::s3::auth::Credentials;
use crate::s3::error::{S3Error, S3ErrorCode};
use crate::s3::xml::{self, XmlWriter};

const ALL_USERS: &str = "http://acs.amazonaws.com/groups/global/AllUsers";
const AUTHENTICATED_USERS: &str = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers";
const LOG_DELIVERY: &str = "http://acs.amazonaws.com/groups/s3/LogDelivery";

/// The grant headers and the permission each gives.
const GRANT_HEADERS: [(&str, Permission); 5] = [
    ("x-amz-grant-read", Permission::Read),
    ("x-amz-grant-write", Permission::Write),
    ("x-amz-grant-read-acp", Permission::ReadAcp),
    ("x-amz-grant-write-acp", Permission::WriteAcp),
    ("x-amz-grant-full-control", Permission::FullControl),
];

fn invalid(why: impl Into<String>) -> S3Error {
    S3Error::new(S3ErrorCode::InvalidArgument, why)
}

fn group(uri: &str) -> Result<Grantee, S3Error> {
    match uri {
        ALL_USERS => Ok(Grantee::AllUsers),
        AUTHENTICATED_USERS => Ok(Grantee::AuthenticatedUsers),
        LOG_DELIVERY => Ok(Grantee::LogDelivery),
        u => Err(invalid(format!("Invalid group uri {u:?}"))),
    }
}

fn user(id: &str, creds: &Credentials) -> Result<Grantee, S3Error> {
    if creds.secret(id).is_none() {
        return Err(invalid(format!("Invalid id {id:?}: no such user")));
    }
    Ok(Grantee::User(id.to_owned()))
}

fn by_email(email: &str) -> S3Error {
    S3Error::new(
        S3ErrorCode::UnresolvableGrantByEmailAddress,
        format!("The e-mail address {email:?} does not match a user (keel's users have no e-mail addresses)."),
    )
}

/// The grants of the `x-amz-grant-*` headers: `None` when there are none.
pub fn from_headers(req: &Request, creds: &Credentials) -> Result<Option<Grants>, S3Error> {
    let mut out = Vec::new();
    for (header, permission) in GRANT_HEADERS {
        let Some(v) = req.header(header) else { continue };
        for item in v.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (kind, value) = item.split_once('=').ok_or_else(|| invalid(format!("Invalid grant {item:?}")))?;
            let value = value.trim().trim_matches('"');
            let grantee = match kind.trim().to_ascii_lowercase().as_str() {
                "id" => user(value, creds)?,
                "uri" => group(value)?,
                "emailaddress" => return Err(by_email(value)),
                _ => return Err(invalid(format!("Invalid grantee {kind:?}"))),
            };
            out.push(Grant { grantee, permission });
        }
    }
    if out.len() > engine::GRANTS_MAX {
        return Err(invalid("An ACL may hold at most 100 grants."));
    }
    Ok(if out.is_empty() { None } else { Some(out) })
}

/// What a write (an object's, or a bucket's creation: `target`) states: its canned ACL or its
/// grants (never both; neither: private).
pub fn for_write(req: &Request, creds: &Credentials, target: AclTarget) -> Result<(CannedAcl, Grants), S3Error> {
    let canned = canned_from(req, target)?;
    match (canned, from_headers(req, creds)?) {
        (Some(_), Some(_)) => Err(both()),
        (canned, grants) => Ok((canned.unwrap_or_default(), grants.unwrap_or_default())),
    }
}

fn both() -> S3Error {
    S3Error::new(S3ErrorCode::InvalidRequest, "Specifying both Canned ACLs and Header Grants is not allowed")
}

/// An AccessControlPolicy document's grants.
pub fn from_document(root: &xml::Element, creds: &Credentials) -> Result<Grants, S3Error> {
    let bad = || S3Error::code(S3ErrorCode::MalformedACLError);
    if root.name != "AccessControlPolicy" {
        return Err(bad());
    }
    let list = root.child("AccessControlList").ok_or_else(bad)?;
    let mut out = Vec::new();
    for g in list.children_named("Grant") {
        let grantee = g.child("Grantee").ok_or_else(bad)?;
        let permission = g.child_text("Permission").and_then(|p| Permission::parse(p.trim())).ok_or_else(bad)?;
        let grantee = if let Some(id) = grantee.child_text("ID") {
            user(id.trim(), creds)?
        } else if let Some(uri) = grantee.child_text("URI") {
            group(uri.trim())?
        } else if let Some(email) = grantee.child_text("EmailAddress") {
            return Err(by_email(email.trim()));
        } else {
            return Err(bad());
        };
        out.push(Grant { grantee, permission });
    }
    if out.len() > engine::GRANTS_MAX {
        return Err(invalid("An ACL may hold at most 100 grants."));
    }
    Ok(out)
}

/// What a Put*Acl request sets: a canned ACL, header grants, or a document (exactly one).
/// Grants the owner gives itself are dropped (the owner always has full control).
pub fn for_put_acl(
    req: &Request,
    body: &[u8],
    (creds, owner): (&Credentials, &str),
    target: AclTarget,
) -> Result<(CannedAcl, Grants), S3Error> {
    let canned = canned_from(req, target)?;
    let headers = from_headers(req, creds)?;
    let document = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        let root = xml::parse(body).map_err(|_| S3Error::code(S3ErrorCode::MalformedACLError))?;
        Some(from_document(&root, creds)?)
    };
    let (acl, mut grants) = match (canned, headers, document) {
        (Some(c), None, None) => (c, Vec::new()),
        (None, Some(g), None) | (None, None, Some(g)) => (CannedAcl::Private, g),
        (None, None, None) => {
            return Err(S3Error::new(
                S3ErrorCode::MissingSecurityHeader,
                "Your request was missing a required header: x-amz-acl",
            ));
        }
        _ => return Err(both()),
    };
    grants.retain(|g| !(g.grantee == Grantee::User(owner.to_owned()) && g.permission == Permission::FullControl));
    Ok((acl, grants))
}

/// Writes explicit grants into an AccessControlList.
pub fn write_grants(w: &mut XmlWriter, grants: &[Grant]) {
    for g in grants {
        match &g.grantee {
            Grantee::User(id) => w.open_grant_canonical(id),
            Grantee::AllUsers => w.open_grant_group(ALL_USERS),
            Grantee::AuthenticatedUsers => w.open_grant_group(AUTHENTICATED_USERS),
            Grantee::LogDelivery => w.open_grant_group(LOG_DELIVERY),
        }
        w.elem("Permission", g.permission.name());
        w.close("Grant");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds() -> Credentials {
        Credentials::new([("alice".to_string(), "s".to_string()), ("bob".to_string(), "t".to_string())])
    }

    fn req(headers: &[(&str, &str)]) -> Request {
        let mut raw = "PUT /b/k HTTP/1.1\r\nHost: x\r\n".to_string();
        for (k, v) in headers {
            raw.push_str(&format!("{k}: {v}\r\n"));
        }
        raw.push_str("\r\n");
        Request::parse(raw.as_bytes()).unwrap().0
    }

    #[test]
    fn headers_and_documents() {
        let g = from_headers(&req(&[("x-amz-grant-read", &format!("id=\"bob\", uri=\"{ALL_USERS}\""))]), &creds())
            .unwrap()
            .unwrap();
        assert_eq!(
            g,
            vec![
                Grant { grantee: Grantee::User("bob".into()), permission: Permission::Read },
                Grant { grantee: Grantee::AllUsers, permission: Permission::Read },
            ]
        );
        let code = |h: &[(&str, &str)]| from_headers(&req(h), &creds()).unwrap_err().code;
        assert_eq!(code(&[("x-amz-grant-write", "id=\"nobody\"")]), S3ErrorCode::InvalidArgument);
        assert_eq!(
            code(&[("x-amz-grant-write", "emailAddress=\"a@b.c\"")]),
            S3ErrorCode::UnresolvableGrantByEmailAddress
        );
        assert_eq!(code(&[("x-amz-grant-write", "uri=\"http://example.com/g\"")]), S3ErrorCode::InvalidArgument);
        assert_eq!(
            for_write(
                &req(&[("x-amz-acl", "private"), ("x-amz-grant-read", "id=\"bob\"")]),
                &creds(),
                AclTarget::Bucket
            )
            .unwrap_err()
            .code,
            S3ErrorCode::InvalidRequest
        );
        let doc = format!(
            "<AccessControlPolicy><Owner><ID>alice</ID></Owner><AccessControlList>\
             <Grant><Grantee xsi:type=\"CanonicalUser\"><ID>alice</ID></Grantee><Permission>FULL_CONTROL</Permission></Grant>\
             <Grant><Grantee xsi:type=\"Group\"><URI>{AUTHENTICATED_USERS}</URI></Grantee><Permission>READ_ACP</Permission></Grant>\
             </AccessControlList></AccessControlPolicy>"
        );
        let (acl, grants) = for_put_acl(&req(&[]), doc.as_bytes(), (&creds(), "alice"), AclTarget::Bucket).unwrap();
        assert_eq!(acl, CannedAcl::Private);
        assert_eq!(grants, vec![Grant { grantee: Grantee::AuthenticatedUsers, permission: Permission::ReadAcp }]);
        let bad = for_put_acl(&req(&[]), b"<AccessControlPolicy/>", (&creds(), "alice"), AclTarget::Bucket);
        assert_eq!(bad.unwrap_err().code, S3ErrorCode::MalformedACLError);
        let none = for_put_acl(&req(&[]), b"", (&creds(), "alice"), AclTarget::Bucket);
        assert_eq!(none.unwrap_err().code, S3ErrorCode::MissingSecurityHeader);
    }
}
