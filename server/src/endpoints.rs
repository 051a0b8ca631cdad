//! Which front end a request is for: the operator's endpoints (health, metrics, `/_keel/` admin)
//! or the S3 API. The shard calls this for every request head it reads.

use crate::http::{Conn, Request, Response};
use crate::s3::{Ctx, dispatch};

/// Handles one request whose head has been read; returns the response to send and the name it
/// is counted under. The body may be left partly unread (the caller drains it or closes the
/// connection).
pub async fn serve(ctx: &Ctx, conn: &mut Conn, req: &Request, loopback: bool) -> (Response, &'static str) {
    let request_id = ctx.next_request_id();
    // Operator endpoints: unsigned, outside any bucket name (`_` is not allowed in one), or the
    // classic GET /health and /metrics when no signed request claims them and no bucket of that
    // name exists (creating or listing a bucket called `metrics` stays S3).
    let unsigned = req.header("authorization").is_none();
    let classic = |name: &str| {
        matches!(req.method_raw.as_str(), "GET" | "HEAD")
            && req.path.strip_prefix('/') == Some(name)
            && req.query.is_empty()
            && !ctx.store.bucket_exists(name)
    };
    if unsigned && (req.path == "/_keel/health" || classic("health")) {
        return (health(ctx).for_head(req.method), "Health");
    }
    if unsigned && (req.path == "/_keel/metrics" || classic("metrics")) {
        let body = ctx.metrics.render(&ctx.store, ctx.config.backends.as_deref()).into_bytes();
        return (Response::with_body(200, "text/plain; version=0.0.4", body).for_head(req.method), "Metrics");
    }
    if let Some(what) = req.path.strip_prefix("/_keel/peer/") {
        return (crate::cluster::peer::serve(ctx, conn, req, what).await, "Peer");
    }
    if let Some(rest) = req.path.strip_prefix("/_keel/") {
        let resp = crate::admin::serve(ctx, conn, req, rest, loopback, &request_id).await;
        return (resp.for_head(req.method), "Admin");
    }
    dispatch::serve(ctx, conn, req, &request_id).await
}

/// Whether `op` (a name `serve` returns) is an operator endpoint's, not an S3 operation.
pub fn is_operator(op: &str) -> bool {
    matches!(op, "Health" | "Metrics" | "Peer" | "Admin")
}

/// `/health`: `ok` when every mountpath is, `degraded` when one has had I/O errors lately or is
/// poisoned (503 when all are).
fn health(ctx: &Ctx) -> Response {
    let mps = ctx.store.mountpaths();
    let states: Vec<engine::Health> = mps.iter().map(|m| m.health()).collect();
    let all_ok = states.iter().all(|h| *h == engine::Health::Ok);
    let mut s = String::from("{\"status\":\"");
    let etcd_ok = ctx.config.cluster.as_ref().is_none_or(|c| c.etcd_ok() && !c.removed());
    s.push_str(if all_ok && etcd_ok { "ok" } else { "degraded" });
    s.push_str("\",\"mountpaths\":[");
    for (i, (m, h)) in mps.iter().zip(&states).enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&format!("{{\"path\":{:?},\"state\":\"{}\",\"io_errors\":{}}}", m.name(), h.name(), m.io_errors()));
    }
    s.push(']');
    // Backends are reported, not judged: a failing remote leaves the node serving what it holds.
    if let Some(agent) = &ctx.config.backends {
        s.push_str(",\"backends\":[");
        for (i, (name, st)) in agent.stats().enumerate() {
            if i > 0 {
                s.push(',');
            }
            s.push_str(&format!(
                "{{\"name\":{name:?},\"state\":\"{}\",\"requests\":{},\"errors\":{}}}",
                st.state(),
                st.requests.load(std::sync::atomic::Ordering::Relaxed),
                st.errors.load(std::sync::atomic::Ordering::Relaxed)
            ));
        }
        s.push(']');
    }
    if let Some(c) = &ctx.config.cluster {
        let map = c.map();
        let live = map.nodes.iter().filter(|n| n.state == crate::cluster::NodeState::Active).count();
        s.push_str(&format!(",\"cluster\":{{\"node\":{:?},\"nodes\":{},\"live\":{live},", c.me(), map.nodes.len()));
        if c.removed() {
            s.push_str("\"decommissioned\":true,");
        }
        if c.etcd_ok() {
            s.push_str("\"etcd\":\"ok\"}");
        } else {
            let why = if c.quorum_lost() {
                format!("{}; etcd has no quorum: bucket changes fail, object writes go on", c.etcd_error())
            } else if c.may_write() {
                format!("{}; writes go on for less than the lease's life", c.etcd_error())
            } else {
                format!("{}; writes are refused until it answers", c.etcd_error())
            };
            s.push_str(&format!("\"etcd\":\"unreachable\",\"why\":{why:?}}}"));
        }
    }
    s.push_str("}\n");
    let dead = states.iter().all(|h| *h == engine::Health::Poisoned);
    Response::with_body(if dead { 503 } else { 200 }, "application/json", s.into_bytes())
}
