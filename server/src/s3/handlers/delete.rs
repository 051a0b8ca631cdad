//! DeleteObject and DeleteObjects: plain deletes, and in a versioned bucket delete markers and
//! deletes of named versions (D46).

use crate::http::Response;
use crate::limits;
use crate::s3::Call;
use crate::s3::error::{S3Error, S3ErrorCode};
use crate::s3::params;
use crate::s3::xml::XmlWriter;

use super::remote;

pub async fn delete_object(call: &mut Call<'_>) -> Result<Response, S3Error> {
    // A versioned bucket keeps what a delete hides (a delete marker); a named version goes.
    let version = call.version();
    if version.is_some() || call.versioned() {
        let bypass = super::lock::bypass(call);
        let d = call.ctx.store.delete_version(call.bucket(), call.key(), version, bypass).await?;
        return Ok(deleted_answer(Response::new(204), &d));
    }
    // A backend bucket's object goes on the remote first: if that fails, nothing changes here.
    if let Some((agent, remote)) = remote::remote_of(call)? {
        agent.delete(&remote, call.key()).await?;
    }
    // While a cluster rebalances, a copy of the key on the member it moves from goes too.
    if let Some(cluster) = &call.ctx.config.cluster {
        crate::cluster::rebalance::delete_elsewhere(cluster, call.bucket(), &[call.key()]).await?;
    }
    match call.ctx.store.delete_object(call.bucket(), call.key()).await {
        Ok(()) | Err(engine::Error::NoSuchObject) => {}
        Err(e) => return Err(e.into()),
    }
    // Then, with copies, the other holders' copies (the key is locked: `cluster::copies::serve`).
    if let Some(cluster) = &call.ctx.config.cluster {
        crate::cluster::copies::delete_elsewhere(cluster, call.bucket(), &[call.key()]).await?;
    }
    Ok(Response::new(204))
}

/// Whether the bucket's policy lets the caller delete this key.
fn key_allowed(call: &Call<'_>, key: &str, versioned: bool) -> bool {
    let origin = (call.conn.peer(), call.conn.is_tls());
    crate::s3::access::key_allowed(
        call.ctx,
        (call.req, call.bucket()),
        (&call.auth.identity, call.access.write),
        origin,
        (key, versioned),
    )
}

pub async fn delete_objects(call: &mut Call<'_>) -> Result<Response, S3Error> {
    call.ctx.store.bucket(call.bucket())?;
    let root = call.read_xml().await?.ok_or_else(|| S3Error::code(S3ErrorCode::MalformedXML))?;
    if root.name != "Delete" {
        return Err(S3Error::code(S3ErrorCode::MalformedXML));
    }
    let quiet = root.child_text("Quiet").is_some_and(|q| q.trim().eq_ignore_ascii_case("true"));
    let objects: Vec<_> = root.children_named("Object").collect();
    if objects.is_empty() || objects.len() > limits::DELETE_OBJECTS_KEYS_MAX {
        return Err(S3Error::code(S3ErrorCode::MalformedXML));
    }
    let mut keys = Vec::with_capacity(objects.len());
    let mut named = Vec::with_capacity(objects.len());
    let mut refused = Vec::new();
    for o in &objects {
        let key = o.child_text("Key").ok_or_else(|| S3Error::code(S3ErrorCode::MalformedXML))?;
        let version = o.child_text("VersionId").map(str::trim);
        if call.access.per_key && !key_allowed(call, key, version.is_some()) {
            refused.push((key, S3Error::code(S3ErrorCode::AccessDenied)));
            continue;
        }
        match version {
            None => named.push((key, None)),
            Some(v) => match engine::VersionRef::parse(v) {
                Some(r) => named.push((key, Some(r))),
                None => refused.push((key, params::invalid_version(v))),
            },
        }
    }
    if call.versioned() || named.iter().any(|(_, v)| v.is_some()) {
        if call.ctx.config.cluster.is_some() || remote::remote_of(call)?.is_some() {
            return Err(S3Error::new(
                S3ErrorCode::NotImplemented,
                "Deleting versions is not implemented in a cluster or a backend bucket.",
            ));
        }
        return delete_versions(call, named, quiet, refused).await;
    }
    keys.extend(named.into_iter().map(|(k, _)| k));
    // A backend bucket's keys go on the remote first; a key the remote would not delete stays.
    if let Some((agent, remote)) = remote::remote_of(call)? {
        let mut local = Vec::with_capacity(keys.len());
        for key in keys {
            match agent.delete(&remote, key).await {
                Ok(()) => local.push(key),
                Err(e) => refused.push((key, e.into())),
            }
        }
        keys = local;
    }
    let results: Vec<Result<(), S3Error>> = match &call.ctx.config.cluster {
        Some(cluster) => crate::cluster::peer::delete_objects(call.ctx, cluster, call.bucket(), &keys).await,
        None => call
            .ctx
            .store
            .delete_objects(call.bucket(), &keys)
            .await
            .into_iter()
            .map(|r| r.map_err(S3Error::from))
            .collect(),
    };
    let mut w = XmlWriter::new();
    w.open_root("DeleteResult");
    for (key, result) in keys.iter().zip(results) {
        match result {
            Ok(()) => {
                if !quiet {
                    w.open("Deleted");
                    w.elem("Key", key);
                    w.close("Deleted");
                }
            }
            Err(e) => delete_error(&mut w, key, &e),
        }
    }
    for (key, e) in &refused {
        delete_error(&mut w, key, e);
    }
    w.close("DeleteResult");
    Ok(Response::with_body(200, "application/xml", w.finish()))
}

/// The headers of a versioned delete's answer.
fn deleted_answer(mut resp: Response, d: &engine::Deleted) -> Response {
    if d.delete_marker {
        resp.push_header("x-amz-delete-marker", "true");
    }
    if let Some(id) = &d.version_id {
        resp.push_header("x-amz-version-id", id.clone());
    }
    resp
}

/// DeleteObjects in a versioned bucket, or naming versions: one versioned delete per key.
async fn delete_versions(
    call: &mut Call<'_>,
    objects: Vec<(&str, Option<engine::VersionRef>)>,
    quiet: bool,
    refused: Vec<(&str, S3Error)>,
) -> Result<Response, S3Error> {
    let bypass = super::lock::bypass(call);
    let mut w = XmlWriter::new();
    w.open_root("DeleteResult");
    for (key, version) in objects {
        match call.ctx.store.delete_version(call.bucket(), key, version, bypass).await {
            Ok(d) if !quiet => {
                w.open("Deleted");
                w.elem("Key", key);
                if let Some(v) = version {
                    w.elem("VersionId", &v.id());
                }
                if d.delete_marker {
                    w.elem_bool("DeleteMarker", true);
                    if version.is_none()
                        && let Some(id) = &d.version_id
                    {
                        w.elem("DeleteMarkerVersionId", id);
                    }
                }
                w.close("Deleted");
            }
            Ok(_) => {}
            Err(e) => delete_error_of(&mut w, (key, version.map(|v| v.id()).as_deref()), &e.into()),
        }
    }
    for (key, e) in &refused {
        delete_error(&mut w, key, e);
    }
    w.close("DeleteResult");
    Ok(Response::with_body(200, "application/xml", w.finish()))
}

fn delete_error(w: &mut XmlWriter, key: &str, e: &S3Error) {
    delete_error_of(w, (key, None), e);
}

/// One `Error` of a DeleteObjects answer, naming the version it was about.
fn delete_error_of(w: &mut XmlWriter, (key, version): (&str, Option<&str>), e: &S3Error) {
    w.open("Error");
    w.elem("Key", key);
    if let Some(v) = version {
        w.elem("VersionId", v);
    }
    w.elem("Code", e.code.as_str());
    w.elem("Message", &e.message);
    w.close("Error");
}
