//! CORS (issue 18 item 4, D50): Put/Get/DeleteBucketCors, preflight `OPTIONS` answered from
//! the bucket's rules without authentication, and `Access-Control-*` headers on the answers to
//! cross-origin requests (errors included, so a page can read them).

use engine::meta::{CORS_LIST_MAX, CORS_RULES_MAX};
use engine::{Cors, CorsRule};

use crate::http::{Request, Response};
use crate::s3::Ctx;
use crate::s3::call::Call;
use crate::s3::error::{S3Error, S3ErrorCode};
use crate::s3::xml::{self, XmlWriter};

const METHODS: [&str; 5] = ["GET", "PUT", "POST", "DELETE", "HEAD"];

fn malformed() -> S3Error {
    S3Error::code(S3ErrorCode::MalformedXML)
}

fn invalid(why: String) -> S3Error {
    S3Error::new(S3ErrorCode::InvalidRequest, why)
}

/// The `CORSConfiguration` document, checked as S3 checks it.
pub fn parse(root: &xml::Element) -> Result<Cors, S3Error> {
    if root.name != "CORSConfiguration" || root.children.iter().any(|c| c.name != "CORSRule") {
        return Err(malformed());
    }
    if root.children.is_empty() || root.children.len() > CORS_RULES_MAX {
        return Err(malformed());
    }
    let rules = root.children.iter().map(rule).collect::<Result<Vec<_>, _>>()?;
    Ok(Cors { rules })
}

fn rule(e: &xml::Element) -> Result<CorsRule, S3Error> {
    let mut r = CorsRule::default();
    for c in &e.children {
        let text = c.text.trim().to_owned();
        match c.name.as_str() {
            "ID" if r.id.is_none() && text.len() <= 255 => r.id = Some(text),
            "AllowedMethod" => r.allowed_methods.push(text),
            "AllowedOrigin" => r.allowed_origins.push(text),
            "AllowedHeader" => r.allowed_headers.push(text),
            "ExposeHeader" => r.expose_headers.push(text),
            "MaxAgeSeconds" if r.max_age_secs.is_none() => {
                r.max_age_secs = Some(text.parse().map_err(|_| malformed())?);
            }
            _ => return Err(malformed()),
        }
    }
    if r.allowed_methods.is_empty() || r.allowed_origins.is_empty() {
        return Err(malformed());
    }
    if let Some(m) = r.allowed_methods.iter().find(|m| !METHODS.contains(&m.as_str())) {
        return Err(invalid(format!("Found unsupported HTTP method in CORS config. Unsupported method is {m}")));
    }
    if let Some(o) = r.allowed_origins.iter().find(|o| o.matches('*').count() > 1) {
        return Err(invalid(format!("AllowedOrigin \"{o}\" can not have more than one wildcard.")));
    }
    if let Some(h) = r.allowed_headers.iter().find(|h| h.matches('*').count() > 1) {
        return Err(invalid(format!("AllowedHeader \"{h}\" can not have more than one wildcard.")));
    }
    let lists = [&r.allowed_methods, &r.allowed_origins, &r.allowed_headers, &r.expose_headers];
    if lists.iter().any(|l| l.len() > CORS_LIST_MAX) {
        return Err(invalid(format!("A CORS rule may list at most {CORS_LIST_MAX} entries of each kind.")));
    }
    Ok(r)
}

pub fn document(cors: &Cors) -> Vec<u8> {
    let mut w = XmlWriter::new();
    w.open_root("CORSConfiguration");
    for r in &cors.rules {
        w.open("CORSRule");
        if let Some(id) = &r.id {
            w.elem("ID", id);
        }
        let lists = [
            ("AllowedHeader", &r.allowed_headers),
            ("AllowedMethod", &r.allowed_methods),
            ("AllowedOrigin", &r.allowed_origins),
            ("ExposeHeader", &r.expose_headers),
        ];
        for (name, list) in lists {
            for v in list {
                w.elem(name, v);
            }
        }
        if let Some(s) = r.max_age_secs {
            w.elem_num("MaxAgeSeconds", u64::from(s));
        }
        w.close("CORSRule");
    }
    w.close("CORSConfiguration");
    w.finish()
}

/// PutBucketCors.
pub async fn put(call: &mut Call<'_>) -> Result<Response, S3Error> {
    call.ctx.store.bucket(call.bucket())?;
    let root = call.read_xml().await?.ok_or_else(malformed)?;
    let cors = parse(&root)?;
    call.ctx.store.update_bucket(call.bucket(), |m| m.cors = Some(cors)).await?;
    super::bucket::publish_bucket(call.ctx, call.bucket()).await?;
    Ok(Response::new(200))
}

/// GetBucketCors.
pub async fn get(call: &mut Call<'_>) -> Result<Response, S3Error> {
    let meta = call.ctx.store.bucket(call.bucket())?;
    let cors = meta.cors.ok_or_else(|| S3Error::code(S3ErrorCode::NoSuchCORSConfiguration))?;
    Ok(Response::with_body(200, "application/xml", document(&cors)))
}

/// DeleteBucketCors.
pub async fn delete(call: &mut Call<'_>) -> Result<Response, S3Error> {
    call.ctx.store.update_bucket(call.bucket(), |m| m.cors = None).await?;
    super::bucket::publish_bucket(call.ctx, call.bucket()).await?;
    Ok(Response::new(204))
}

/// S3's origin and header patterns: at most one `*`, standing for any run of characters.
fn wildcard(pattern: &str, text: &str, ignore_case: bool) -> bool {
    let eq = |a: &str, b: &str| if ignore_case { a.eq_ignore_ascii_case(b) } else { a == b };
    match pattern.split_once('*') {
        None => eq(pattern, text),
        Some((head, tail)) => {
            text.len() >= head.len() + tail.len()
                && text.is_char_boundary(head.len())
                && text.is_char_boundary(text.len() - tail.len())
                && eq(&text[..head.len()], head)
                && eq(&text[text.len() - tail.len()..], tail)
        }
    }
}

/// The first rule that allows `origin` to use `method` with these request headers.
fn find<'c>(cors: &'c Cors, origin: &str, method: &str, headers: &[&str]) -> Option<&'c CorsRule> {
    cors.rules.iter().find(|r| {
        r.allowed_origins.iter().any(|o| wildcard(o, origin, false))
            && r.allowed_methods.iter().any(|m| m == method)
            && headers.iter().all(|h| r.allowed_headers.iter().any(|a| wildcard(a, h, true)))
    })
}

/// The headers a matched rule puts on an answer (`requested`: a preflight's header list).
fn allow(resp: &mut Response, rule: &CorsRule, origin: &str, requested: Option<&str>) {
    let any = rule.allowed_origins.iter().any(|o| o == "*");
    resp.push_header("Access-Control-Allow-Origin", if any { "*".to_owned() } else { origin.to_owned() });
    resp.push_header("Access-Control-Allow-Methods", rule.allowed_methods.join(", "));
    if !any {
        resp.push_header("Access-Control-Allow-Credentials", "true");
    }
    if let Some(h) = requested.filter(|h| !h.trim().is_empty()) {
        resp.push_header("Access-Control-Allow-Headers", h.trim().to_owned());
    }
    if !rule.expose_headers.is_empty() {
        resp.push_header("Access-Control-Expose-Headers", rule.expose_headers.join(", "));
    }
    if let (Some(age), Some(_)) = (rule.max_age_secs, requested) {
        resp.push_header("Access-Control-Max-Age", age.to_string());
    }
    resp.push_header("Vary", "Origin, Access-Control-Request-Headers, Access-Control-Request-Method");
}

fn forbidden(why: &str) -> S3Error {
    S3Error::new(S3ErrorCode::AccessForbidden, format!("CORSResponse: {why}"))
}

/// A preflight (`OPTIONS` on a bucket or object): answered from the bucket's rules, unsigned.
pub fn preflight(ctx: &Ctx, req: &Request, bucket: Option<&str>) -> Result<Response, S3Error> {
    let (Some(origin), Some(method)) = (req.header("origin"), req.header("access-control-request-method")) else {
        return Err(S3Error::new(
            S3ErrorCode::InvalidRequest,
            "Insufficient information. Origin request header needed.",
        ));
    };
    let bucket = bucket.ok_or_else(|| forbidden("CORS is not enabled for the service endpoint."))?;
    let cors = ctx.store.bucket(bucket)?.cors.ok_or_else(|| forbidden("CORS is not enabled for this bucket."))?;
    let requested = req.header("access-control-request-headers");
    let headers: Vec<&str> =
        requested.map(|h| h.split(',').map(str::trim).filter(|h| !h.is_empty()).collect()).unwrap_or_default();
    let rule = find(&cors, origin.trim(), method.trim(), &headers).ok_or_else(|| {
        forbidden(
            "This CORS request is not allowed. This is usually because the evalution of Origin, request method / \
             Access-Control-Request-Method or Access-Control-Request-Headers are not whitelisted by the resource's CORS spec.",
        )
    })?;
    let mut resp = Response::new(200);
    allow(&mut resp, rule, origin.trim(), Some(requested.unwrap_or_default()));
    Ok(resp)
}

/// Adds the `Access-Control-*` headers to the answer to a cross-origin request (one with
/// `Origin`) when a rule of the bucket allows it: the method is the request's, or the one an
/// `Access-Control-Request-Method` header names.
pub fn decorate(ctx: &Ctx, req: &Request, bucket: Option<&str>, resp: &mut Response) {
    let (Some(origin), Some(bucket)) = (req.header("origin"), bucket) else { return };
    let method = req.header("access-control-request-method").map_or(req.method_raw.as_str(), str::trim);
    // Decided on the shard's bucket map as it is (no copy of the rules per request).
    ctx.store.with_bucket(bucket, |m| {
        if let Some(rule) = m.cors.as_ref().and_then(|cors| find(cors, origin.trim(), method, &[])) {
            allow(resp, rule, origin.trim(), None);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_and_headers() {
        assert!(wildcard("*", "anything", false));
        assert!(wildcard("*.suffix", "foo.suffix", false));
        assert!(wildcard("start*end", "startend", false));
        assert!(wildcard("start*end", "start12end", false));
        assert!(!wildcard("start*end", "0start12end", false));
        assert!(!wildcard("start*end", "startenx", false));
        assert!(!wildcard("ab*ba", "aba", false), "head and tail may not overlap");
        assert!(wildcard("prefix*", "prefix", false));
        assert!(!wildcard("https://a.com", "https://A.com", false));
        assert!(wildcard("X-Amz-*", "x-amz-meta-a", true));
    }

    #[test]
    fn documents() {
        let doc = |s: &str| parse(&xml::parse(s.as_bytes()).unwrap());
        let ok = doc(
            "<CORSConfiguration><CORSRule><ID>a</ID><AllowedMethod>GET</AllowedMethod><AllowedOrigin>*</AllowedOrigin>\
             <MaxAgeSeconds>30</MaxAgeSeconds></CORSRule></CORSConfiguration>",
        )
        .unwrap();
        assert_eq!(ok.rules[0].max_age_secs, Some(30));
        assert_eq!(parse(&xml::parse(&document(&ok)).unwrap()).unwrap(), ok);
        let code = |s: &str| doc(s).unwrap_err().code;
        assert_eq!(code("<CORSConfiguration/>"), S3ErrorCode::MalformedXML);
        assert_eq!(
            code("<CORSConfiguration><CORSRule><AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>"),
            S3ErrorCode::MalformedXML
        );
        assert_eq!(
            code(
                "<CORSConfiguration><CORSRule><AllowedMethod>PATCH</AllowedMethod><AllowedOrigin>*</AllowedOrigin></CORSRule></CORSConfiguration>"
            ),
            S3ErrorCode::InvalidRequest
        );
        assert_eq!(
            code(
                "<CORSConfiguration><CORSRule><AllowedMethod>GET</AllowedMethod><AllowedOrigin>*a*</AllowedOrigin></CORSRule></CORSConfiguration>"
            ),
            S3ErrorCode::InvalidRequest
        );
        assert_eq!(
            code(
                "<CORSConfiguration><CORSRule><AllowedMethod>GET</AllowedMethod><AllowedOrigin>*</AllowedOrigin><Bogus/></CORSRule></CORSConfiguration>"
            ),
            S3ErrorCode::MalformedXML
        );
    }
}
