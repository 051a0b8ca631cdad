//! The condition keys of one request, as a bucket policy reads them (D49).

use std::cell::OnceCell;
use std::net::IpAddr;

use crate::http::Request;
use crate::http::uri::Query;
use crate::s3::Ctx;
use crate::s3::auth::Identity;
use crate::s3::handlers::tagging;
use crate::time;

/// What a policy may ask about a request. Built only for buckets that have a policy.
pub struct RequestFacts<'a> {
    pub ctx: &'a Ctx,
    pub req: &'a Request,
    pub identity: &'a Identity,
    pub peer: Option<IpAddr>,
    pub secure: bool,
    /// The object whose tags `s3:ExistingObjectTag/…` reads: bucket, key, `versionId`.
    pub object: Option<(&'a str, &'a str, Option<engine::VersionRef>)>,
    /// `s3:prefix` as a list permission for one key is asked with (the key itself), instead of
    /// the query's.
    pub prefix: Option<&'a str>,
    existing_tags: OnceCell<Option<engine::Tags>>,
    query: OnceCell<Option<Query>>,
}

impl<'a> RequestFacts<'a> {
    pub fn new(ctx: &'a Ctx, req: &'a Request, identity: &'a Identity, (peer, secure): (Option<IpAddr>, bool)) -> Self {
        RequestFacts {
            ctx,
            req,
            identity,
            peer,
            secure,
            object: None,
            prefix: None,
            existing_tags: OnceCell::new(),
            query: OnceCell::new(),
        }
    }

    /// The same request's facts, without what was read for another question.
    pub fn clone_basic(&self) -> RequestFacts<'a> {
        RequestFacts {
            object: self.object,
            prefix: self.prefix,
            ..RequestFacts::new(self.ctx, self.req, self.identity, (self.peer, self.secure))
        }
    }

    fn query(&self, name: &str) -> Option<String> {
        let q = self.query.get_or_init(|| Query::parse(&self.req.query));
        q.as_ref()?.get(name).map(str::to_owned)
    }

    /// The tags of the object the request is about (read once, only when a policy asks).
    fn existing_tags(&self) -> Option<&engine::Tags> {
        self.existing_tags
            .get_or_init(|| {
                let (bucket, key, version) = self.object?;
                let meta = match version {
                    Some(v) => self.ctx.store.head_version(bucket, key, v),
                    None => self.ctx.store.head_object(bucket, key),
                };
                meta.ok().map(|m| m.tags)
            })
            .as_ref()
    }

    /// The tags a write asks for (`x-amz-tagging`).
    fn request_tags(&self) -> Option<engine::Tags> {
        tagging::from_query(self.req.header("x-amz-tagging")?).ok()
    }

    fn header(&self, name: &str) -> Option<String> {
        self.req.header(name).map(|v| v.trim().to_owned())
    }
}

fn one(v: Option<String>) -> Option<Vec<String>> {
    v.map(|s| vec![s])
}

impl policy::Facts for RequestFacts<'_> {
    fn values(&self, key: &str) -> Option<Vec<String>> {
        if let Some(tag) = key.strip_prefix("s3:existingobjecttag/") {
            return one(self.existing_tags()?.iter().find(|(k, _)| k == tag).map(|(_, v)| v.clone()));
        }
        if let Some(tag) = key.strip_prefix("s3:requestobjecttag/") {
            return one(self.request_tags()?.into_iter().find(|(k, _)| k == tag).map(|(_, v)| v));
        }
        let user = match self.identity {
            Identity::User(id) => Some(id.clone()),
            Identity::Anonymous => None,
        };
        match key {
            "aws:sourceip" => one(self.peer.map(|ip| ip.to_string())),
            "aws:securetransport" => one(Some(self.secure.to_string())),
            "aws:currenttime" => one(Some(time::iso8601_ms(time::now_ms()))),
            "aws:epochtime" => one(Some((time::now_ms() / 1000).to_string())),
            "aws:userid" | "aws:username" | "aws:principalaccount" => one(user),
            "aws:principaltype" => one(Some(if user.is_some() { "Account" } else { "Anonymous" }.to_owned())),
            "aws:referer" => one(self.header("referer")),
            "aws:useragent" => one(self.header("user-agent")),
            "s3:prefix" => one(self.prefix.map(str::to_owned).or_else(|| self.query("prefix"))),
            "s3:delimiter" => one(self.query("delimiter")),
            "s3:max-keys" => one(self.query("max-keys")),
            "s3:versionid" => one(self.query("versionId")),
            "s3:requestobjecttagkeys" => Some(self.request_tags()?.into_iter().map(|(k, _)| k).collect()),
            "s3:x-amz-copy-source" => one(self.header("x-amz-copy-source").map(|v| copy_source(&v))),
            "s3:object-lock-mode" => one(self.header("x-amz-object-lock-mode")),
            "s3:object-lock-retain-until-date" => one(self.header("x-amz-object-lock-retain-until-date")),
            "s3:object-lock-legal-hold" => one(self.header("x-amz-object-lock-legal-hold")),
            "s3:signatureversion" => one(signature_version(self.req)),
            "s3:authtype" => one(auth_type(self.req)),
            k => match k.strip_prefix("s3:") {
                // s3:x-amz-acl, s3:x-amz-server-side-encryption, s3:x-amz-metadata-directive, …
                Some(h) if h.starts_with("x-amz-") => one(self.header(h)),
                _ => None,
            },
        }
    }
}

/// `x-amz-copy-source` as policies compare it: `bucket/key`, decoded, without a version.
fn copy_source(v: &str) -> String {
    let v = v.strip_prefix('/').unwrap_or(v);
    let v = v.split_once("?versionId=").map_or(v, |(path, _)| path);
    percent_encoding::percent_decode_str(v).decode_utf8_lossy().into_owned()
}

fn signature_version(req: &Request) -> Option<String> {
    let auth = req.header("authorization").unwrap_or_default();
    if auth.starts_with("AWS4-HMAC-SHA256") || req.query.contains("X-Amz-Signature=") {
        Some("AWS4-HMAC-SHA256".into())
    } else if auth.starts_with("AWS ") || req.query.contains("Signature=") {
        Some("AWS".into())
    } else {
        None
    }
}

fn auth_type(req: &Request) -> Option<String> {
    if req.header("authorization").is_some() {
        Some("REST-HEADER".into())
    } else if req.query.contains("Signature=") {
        Some("REST-QUERY-STRING".into())
    } else {
        None
    }
}
