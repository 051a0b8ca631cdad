//! The operator's subcommands besides `serve`: `config check`, `bucket props show|set`, `ls`,
//! `stat` (the last three offline on the mountpaths, or props through a running server's admin
//! endpoint on loopback).

use std::io::{Read, Write};

use crate::config::{ServeArgs, ServeConfig};

/// `keel config check FILE`: the effective settings, secrets masked, or the error with its line.
pub fn config_check(file: &std::path::Path) -> Result<(), String> {
    let args = ServeArgs { config: Some(file.to_path_buf()), ..Default::default() };
    let c = ServeConfig::resolve(&args, &|_| None)?;
    println!("listen = {:?}", c.listen.to_string());
    println!("mountpaths = {:?}", c.mountpaths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>());
    println!("threads = {}", c.threads);
    println!("sync = {:?}", if c.sync == engine::SyncMode::Always { "always" } else { "none" });
    println!("users = {:?}", c.users.iter().map(|(ak, _)| format!("{ak}:****")).collect::<Vec<_>>());
    println!("admins = {:?}", c.admins);
    println!("anonymous = {}", c.anonymous);
    println!("s3_prefix = {:?}", c.s3_prefix);
    println!("domain = {:?}", c.domain.as_deref().unwrap_or(""));
    println!("region = {:?}", c.region);
    println!("min_part_size = {}", c.min_part_size);
    println!("upload_ttl = {}", c.upload_ttl_secs);
    println!("splice_min = {}", c.splice_min);
    println!("odirect = {}", c.odirect);
    println!("validate_on_read = {}", c.validate_on_read);
    println!("backend_timeout = {}", c.backend_timeout.as_secs());
    for b in &c.backends {
        let t = &b.table;
        println!(
            "[backends.{}] provider = {:?}, endpoint = {:?}, region = {:?}, access_key = {:?}, secret_key = {:?}",
            b.name,
            t.provider,
            t.endpoint.as_deref().unwrap_or(""),
            t.region.as_deref().unwrap_or(""),
            t.access_key.as_deref().unwrap_or(""),
            if t.secret_key.is_some() { "****" } else { "" }
        );
    }
    Ok(())
}

fn open_offline(cfg: &ServeConfig) -> Result<std::sync::Arc<engine::Store>, String> {
    engine::Store::open(&engine::StoreConfig {
        mountpaths: cfg.mountpaths.clone(),
        sync: engine::SyncMode::Always,
        index: engine::IndexConfig::default(),
        odirect: false,
        faults: None,
    })
    .map_err(|e| format!("cannot open the mountpaths (is keel running on them? use --endpoint): {e}"))
}

/// The key pair the admin subcommands sign with: `--access-key/--secret-key`, else the
/// `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY` or `KEEL_ACCESS_KEY`/`KEEL_SECRET_KEY` environment,
/// else the credentials keel generated in the first mountpath.
fn client_keys(args: &ServeArgs) -> Result<(String, String), String> {
    if let (Some(a), Some(s)) = (&args.access_key, &args.secret_key) {
        return Ok((a.clone(), s.clone()));
    }
    for (a, s) in [("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"), ("KEEL_ACCESS_KEY", "KEEL_SECRET_KEY")] {
        if let (Ok(a), Ok(s)) = (std::env::var(a), std::env::var(s))
            && !a.is_empty()
            && !s.is_empty()
        {
            return Ok((a, s));
        }
    }
    let cfg = ServeConfig::resolve(args, &|_| None)?;
    match crate::server::stored_credentials(&cfg.mountpaths[0]) {
        Some(pair) => pair,
        None => Err("no credentials to sign with: give --access-key and --secret-key, or set AWS_ACCESS_KEY_ID and \
             AWS_SECRET_ACCESS_KEY"
            .to_owned()),
    }
}

/// One signed HTTP/1.1 request to a running keel's admin endpoint.
fn admin_request(endpoint: &str, method: &str, target: &str, keys: (&str, &str)) -> Result<String, String> {
    let addr = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let mut headers = vec![("Host".to_owned(), addr.to_owned())];
    let now = (crate::time::now_ms() / 1000) as i64;
    crate::s3::auth::sign_v4_client(
        method,
        target,
        &mut headers,
        crate::s3::auth::EMPTY_SHA256,
        keys,
        "us-east-1",
        now,
    )
    .map_err(|e| e.message)?;
    let mut s = std::net::TcpStream::connect(addr).map_err(|e| format!("cannot reach {addr}: {e}"))?;
    let mut head = format!("{method} {target} HTTP/1.1\r\n");
    for (k, v) in &headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("Content-Length: 0\r\nConnection: close\r\n\r\n");
    s.write_all(head.as_bytes()).map_err(|e| e.to_string())?;
    let mut out = String::new();
    s.read_to_string(&mut out).map_err(|e| e.to_string())?;
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    if head.starts_with("HTTP/1.1 200") {
        Ok(body.to_owned())
    } else {
        Err(format!("{}\n{body}", head.lines().next().unwrap_or("")))
    }
}

/// `keel bucket props show|set`: through `--endpoint` when given, else offline.
pub fn bucket_props(
    endpoint: Option<&str>,
    offline: &ServeArgs,
    bucket: &str,
    settings: &[String],
) -> Result<(), String> {
    let pairs: Vec<(String, String)> = settings
        .iter()
        .map(|s| {
            s.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .ok_or_else(|| format!("{s:?} is not KEY=VALUE"))
        })
        .collect::<Result<_, _>>()?;
    if let Some(ep) = endpoint {
        let q: Vec<String> = pairs
            .iter()
            .map(|(k, v)| {
                format!("{}={}", crate::http::uri::uri_encode(k, true), crate::http::uri::uri_encode(v, true))
            })
            .collect();
        let (method, path) = if pairs.is_empty() {
            ("GET", format!("/_keel/buckets/{bucket}/props"))
        } else {
            ("PUT", format!("/_keel/buckets/{bucket}/props?{}", q.join("&")))
        };
        let (ak, sk) = client_keys(offline)?;
        print!("{}", admin_request(ep, method, &path, (&ak, &sk))?);
        return Ok(());
    }
    let cfg = ServeConfig::resolve(offline, &|k| std::env::var(k).ok())?;
    let store = open_offline(&cfg)?;
    let mut meta = store.bucket(bucket).map_err(|e| format!("{bucket}: {e}"))?;
    if !pairs.is_empty() {
        crate::admin::apply(&mut meta, &pairs)?;
        if let Some(b) = &meta.backend
            && !cfg.backends.iter().any(|c| c.name == b.backend)
        {
            return Err(format!("no backend named {:?} in the config ([backends.NAME])", b.backend));
        }
        let want = meta.clone();
        let rt = compio::runtime::Runtime::new().map_err(|e| e.to_string())?;
        meta = rt
            .block_on(store.update_bucket(bucket, |m| *m = want.clone()))
            .map_err(|e| format!("cannot update {bucket}: {e}"))?;
        for mp in store.mountpaths() {
            mp.index.persist().map_err(|e| e.to_string())?;
        }
    }
    print!("{}", crate::admin::props_json(bucket, &meta));
    Ok(())
}

fn human(n: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 { format!("{n} B") } else { format!("{v:.2} {}", units[u]) }
}

/// `keel ls`: buckets with their object counts and bytes (offline).
pub fn ls(args: &ServeArgs) -> Result<(), String> {
    let cfg = ServeConfig::resolve(args, &|k| std::env::var(k).ok())?;
    let store = open_offline(&cfg)?;
    let usage = store.usage().map_err(|e| e.to_string())?;
    println!("{:<40} {:>12} {:>14}", "BUCKET", "OBJECTS", "SIZE");
    for (b, (n, bytes)) in &usage.buckets {
        println!("{b:<40} {n:>12} {:>14}", human(*bytes));
    }
    Ok(())
}

/// `keel stat`: per mountpath, objects, bytes, uploads in progress and free space (offline).
pub fn stat(args: &ServeArgs) -> Result<(), String> {
    let cfg = ServeConfig::resolve(args, &|k| std::env::var(k).ok())?;
    let store = open_offline(&cfg)?;
    let usage = store.usage().map_err(|e| e.to_string())?;
    println!("{:<40} {:>10} {:>12} {:>8} {:>12} {:>12}", "MOUNTPATH", "OBJECTS", "SIZE", "UPLOADS", "FREE", "TOTAL");
    for (mp, n, bytes, uploads, space) in &usage.mountpaths {
        let (free, total) = space.map_or(("?".into(), "?".into()), |(f, t)| (human(f), human(t)));
        println!("{mp:<40} {n:>10} {:>12} {uploads:>8} {free:>12} {total:>12}", human(*bytes));
    }
    println!("{} buckets", usage.buckets.len());
    Ok(())
}

/// `keel rebalance`: moves objects to their owner mountpath (offline).
pub fn rebalance(args: &ServeArgs) -> Result<(), String> {
    let cfg = ServeConfig::resolve(args, &|k| std::env::var(k).ok())?;
    let store = open_offline(&cfg)?;
    let rt = compio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    let r = rt.block_on(store.rebalance()).map_err(|e| format!("rebalance failed: {e}"))?;
    println!("moved {} objects ({}), removed {} superseded copies", r.moved, human(r.bytes), r.superseded);
    Ok(())
}

/// `keel mountpath list`: the node record the given mountpaths hold (the newest).
pub fn mountpath_list(args: &ServeArgs) -> Result<(), String> {
    let cfg = ServeConfig::resolve(args, &|k| std::env::var(k).ok())?;
    let seen: Vec<engine::membership::Seen> = cfg
        .mountpaths
        .iter()
        .map(|p| engine::membership::peek(p))
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    let Some(record) = seen.iter().filter_map(|s| s.record.clone()).max_by_key(|r| r.epoch) else {
        println!("no node record on the mountpaths given (a node that never started with them)");
        return Ok(());
    };
    print_record(&record);
    Ok(())
}

fn print_record(record: &engine::membership::NodeRecord) {
    println!("node {:016x}, epoch {}", record.node, record.epoch);
    println!("{:<18} {:<22} PATH", "ID", "STATE");
    for m in &record.members {
        let state = match m.state {
            engine::membership::MemberState::Active => "active".to_owned(),
            engine::membership::MemberState::Detached { at } => format!("detached at epoch {at}"),
        };
        println!("{:016x}   {state:<22} {}", m.id, m.path.display());
    }
}

/// `keel mountpath detach DIR`: with the node's other mountpaths given, records DIR as detached.
pub fn mountpath_detach(args: &ServeArgs, dir: &str) -> Result<(), String> {
    let cfg = ServeConfig::resolve(args, &|k| std::env::var(k).ok())?;
    // Holding the indexes proves no keel serves them while their records change.
    let mut held = Vec::new();
    for root in &cfg.mountpaths {
        held.push(
            engine::Mountpath::open(root, engine::SyncMode::Always, &engine::IndexConfig::default(), None)
                .map_err(|e| format!("cannot open {} (is keel running on it?): {e}", root.display()))?,
        );
    }
    let record = engine::membership::detach(&cfg.mountpaths, dir).map_err(|e| e.to_string())?;
    drop(held);
    println!("detached {dir}: keel now starts without it; give it again to bring it back (it is reconciled first)");
    print_record(&record);
    Ok(())
}
