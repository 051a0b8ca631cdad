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
    println!("lifecycle_day_secs = {}", c.lifecycle_day_secs);
    println!("splice_min = {}", c.splice_min);
    println!("odirect = {}", c.odirect);
    println!("validate_on_read = {}", c.validate_on_read);
    println!("backend_timeout = {}", c.backend_timeout.as_secs());
    println!("space_highwm = {}", c.space_watermarks.0);
    println!("space_lowwm = {}", c.space_watermarks.1);
    match &c.tls {
        // The pair is read as `serve` would read it: a bad file fails the check.
        Some((cert, key)) => {
            crate::http::tls::Tls::load(cert, key)?;
            println!("tls_cert = {:?}", cert.display().to_string());
            println!("tls_key = {:?}", key.display().to_string());
        }
        None => println!("tls_cert = \"\""),
    }
    match &c.cluster {
        None => println!("cluster = \"\""),
        Some(cc) => {
            println!("cluster = {:?}", cc.endpoints.join(","));
            println!("node_id = {:?}", cc.node_id);
            println!("advertise = {:?}", cc.advertise);
            println!("cluster_name = {:?}", cc.name);
            println!("lease_ttl = {}", cc.lease_ttl_secs);
            println!("redirect = {}", cc.redirect);
            println!("gateway = {}", cc.gateway);
            println!("rebalance_rate = {}", cc.rebalance_rate);
        }
    }
    for b in &c.backends {
        let t = &b.table;
        println!(
            "[backends.{}] provider = {:?}, endpoint = {:?}, region = {:?}, access_key = {:?}, secret_key = {:?}, \
             account = {:?}, anonymous = {}, passthrough = {}, parallel_reads = {}",
            b.name,
            t.provider,
            t.endpoint.as_deref().unwrap_or(""),
            t.region.as_deref().unwrap_or(""),
            t.access_key.as_deref().unwrap_or(""),
            if t.secret_key.is_some() { "****" } else { "" },
            t.account.as_deref().unwrap_or(""),
            t.anonymous,
            t.passthrough,
            t.parallel_reads
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

/// One signed HTTP/1.1 request to a running keel's admin endpoint; the body of a 200.
fn admin_request(endpoint: &str, method: &str, target: &str, keys: (&str, &str)) -> Result<String, String> {
    let (status, head, body) = signed_request(endpoint, method, target, &[], keys)?;
    let body = String::from_utf8_lossy(&body).into_owned();
    if status == 200 { Ok(body) } else { Err(format!("{head}\n{body}")) }
}

/// A connection to a running keel: a socket, or a TLS session over one.
trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

/// One signed HTTP/1.1 request with an empty body (`endpoint`: `HOST:PORT`, `http://…` or
/// `https://…`): status, status line, body.
fn signed_request(
    endpoint: &str,
    method: &str,
    target: &str,
    extra: &[(&str, &str)],
    keys: (&str, &str),
) -> Result<(u16, String, Vec<u8>), String> {
    let https = endpoint.starts_with("https://");
    let addr = endpoint.trim_start_matches("http://").trim_start_matches("https://").trim_end_matches('/');
    let mut headers = vec![("Host".to_owned(), addr.to_owned())];
    headers.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
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
    let mut s: Box<dyn ReadWrite> = if https {
        Box::new(crate::http::tls::connect_blocking(addr)?)
    } else {
        Box::new(std::net::TcpStream::connect(addr).map_err(|e| format!("cannot reach {addr}: {e}"))?)
    };
    let mut head = format!("{method} {target} HTTP/1.1\r\n");
    for (k, v) in &headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("Content-Length: 0\r\nConnection: close\r\n\r\n");
    s.write_all(head.as_bytes()).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    match s.read_to_end(&mut out) {
        Ok(_) => {}
        // A TLS peer that closed without its close_notify, after the whole response.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !out.is_empty() => {}
        Err(e) => return Err(e.to_string()),
    }
    let split = out.windows(4).position(|w| w == b"\r\n\r\n").ok_or("a response without a head")?;
    let head = String::from_utf8_lossy(&out[..split]).into_owned();
    let status_line = head.lines().next().unwrap_or("").to_owned();
    let status = status_line.split(' ').nth(1).and_then(|c| c.parse().ok()).ok_or("a response without a status")?;
    Ok((status, status_line, out[split + 4..].to_vec()))
}

/// The keys (and sizes) a bucket lists under `prefix`; `cached`: what a backend bucket holds
/// locally rather than its remote's listing.
fn list_keys(
    endpoint: &str,
    bucket: &str,
    prefix: &str,
    cached: bool,
    keys: (&str, &str),
) -> Result<Vec<(String, u64)>, String> {
    use crate::http::uri::{percent_decode, uri_encode};
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut target = format!("/{bucket}?list-type=2&encoding-type=url&prefix={}", uri_encode(prefix, true));
        if cached {
            target.push_str("&x-keel-cached=true");
        }
        if let Some(t) = &token {
            target.push_str(&format!("&continuation-token={}", uri_encode(t, true)));
        }
        let (status, line, body) = signed_request(endpoint, "GET", &target, &[], keys)?;
        if status != 200 {
            return Err(format!("listing {bucket}: {line}\n{}", String::from_utf8_lossy(&body)));
        }
        let root = crate::s3::xml::parse(&body).map_err(|e| format!("listing {bucket}: {}", e.0))?;
        for c in root.children_named("Contents") {
            let key = c.child_text("Key").and_then(percent_decode).ok_or("a listing without keys")?;
            out.push((key, c.child_text("Size").and_then(|s| s.parse().ok()).unwrap_or(0)));
        }
        match root.child_text("NextContinuationToken") {
            Some(t) if root.child_text("IsTruncated") == Some("true") => token = Some(t.to_owned()),
            _ => return Ok(out),
        }
    }
}

/// `keel prefetch`: a ranged GET of one byte makes keel fetch the whole object into the cache;
/// `parallel` of them at once, with progress on stderr.
pub fn prefetch(
    endpoint: &str,
    args: &ServeArgs,
    bucket: &str,
    prefix: Option<&str>,
    list: Option<&std::path::Path>,
    parallel: usize,
) -> Result<(), String> {
    use std::sync::atomic::{AtomicU64, Ordering};
    let (ak, sk) = client_keys(args)?;
    let prefix = prefix.unwrap_or("");
    let wanted: Vec<(String, u64)> = match list {
        Some(f) => std::fs::read_to_string(f)
            .map_err(|e| format!("{}: {e}", f.display()))?
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(|l| (l.to_owned(), 0))
            .collect(),
        None => list_keys(endpoint, bucket, prefix, false, (&ak, &sk))?,
    };
    let cached: std::collections::HashSet<String> =
        list_keys(endpoint, bucket, prefix, true, (&ak, &sk))?.into_iter().map(|(k, _)| k).collect();
    let total = wanted.len();
    let todo: Vec<(String, u64)> = wanted.into_iter().filter(|(k, _)| !cached.contains(k)).collect();
    eprintln!("prefetch {bucket}: {total} objects, {} already cached", total - todo.len());
    let left = todo.len() as u64;
    let queue = std::sync::Arc::new(std::sync::Mutex::new(todo));
    let (done, bytes, failed) = (AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0));
    let started = std::time::Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..parallel.max(1) {
            let (queue, done, bytes, failed, ak, sk) = (&queue, &done, &bytes, &failed, &ak, &sk);
            scope.spawn(move || {
                loop {
                    let next = queue.lock().unwrap_or_else(|p| p.into_inner()).pop();
                    let Some((key, size)) = next else { return };
                    let target = format!("/{bucket}/{}", crate::http::uri::uri_encode(&key, false));
                    match signed_request(endpoint, "GET", &target, &[("Range", "bytes=0-0")], (ak, sk)) {
                        Ok((200 | 206, _, _)) => {
                            bytes.fetch_add(size, Ordering::Relaxed);
                        }
                        Ok((_, line, body)) => {
                            failed.fetch_add(1, Ordering::Relaxed);
                            eprintln!("\nprefetch {key}: {line} {}", String::from_utf8_lossy(&body));
                        }
                        Err(e) => {
                            failed.fetch_add(1, Ordering::Relaxed);
                            eprintln!("\nprefetch {key}: {e}");
                        }
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        let progress = || {
            let secs = started.elapsed().as_secs_f64().max(1e-3);
            let b = bytes.load(Ordering::Relaxed) as f64 / (1 << 20) as f64;
            eprint!(
                "\rprefetch {bucket}: {}/{left} objects, {b:.1} MiB, {:.1} MiB/s, {} failed   ",
                done.load(Ordering::Relaxed),
                b / secs,
                failed.load(Ordering::Relaxed)
            );
        };
        while done.load(Ordering::Relaxed) < left {
            progress();
            std::thread::sleep(std::time::Duration::from_millis(250));
        }
        progress();
        eprintln!();
    });
    match failed.load(Ordering::Relaxed) {
        0 => Ok(()),
        n => Err(format!("{n} objects were not prefetched (run again to retry them)")),
    }
}

/// `keel evict`: drops the cached copies under a prefix through the admin endpoint.
pub fn evict(endpoint: &str, args: &ServeArgs, bucket: &str, prefix: Option<&str>) -> Result<(), String> {
    let (ak, sk) = client_keys(args)?;
    let target =
        format!("/_keel/buckets/{bucket}/evict?prefix={}", crate::http::uri::uri_encode(prefix.unwrap_or(""), true));
    print!("{}", admin_request(endpoint, "PUT", &target, (&ak, &sk))?);
    Ok(())
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
    // In a cluster copies live on other nodes: `keel cluster status` counts them.
    if cfg.cluster.is_some() {
        store.set_copies_across_nodes();
    } else {
        store.set_default_copies(cfg.copies);
    }
    let usage = store.usage().map_err(|e| e.to_string())?;
    println!("{:<40} {:>10} {:>12} {:>8} {:>12} {:>12}", "MOUNTPATH", "OBJECTS", "SIZE", "UPLOADS", "FREE", "TOTAL");
    for (mp, n, bytes, uploads, space) in &usage.mountpaths {
        let (free, total) = space.map_or(("?".into(), "?".into()), |(f, t)| (human(f), human(t)));
        println!("{mp:<40} {n:>10} {:>12} {uploads:>8} {free:>12} {total:>12}", human(*bytes));
    }
    println!("{} buckets", usage.buckets.len());
    // Copies (issue 15): counted, not repaired (a running keel repairs).
    let rt = compio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    let copies = rt.block_on(store.repair_pass(false, false, 0)).map_err(|e| format!("cannot count copies: {e}"))?;
    println!("under_replicated {} (objects with fewer copies than their bucket wants)", copies.left);
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

/// `keel mountpath attach DIR [--replaces MEMBER]`: with the node's mountpaths given, records a
/// new, empty drive as a member (replacing a dead one for good); the next start takes it and,
/// with copies, the repair resilvers it.
pub fn mountpath_attach(args: &ServeArgs, dir: &str, replaces: Option<&str>) -> Result<(), String> {
    let cfg = ServeConfig::resolve(args, &|k| std::env::var(k).ok())?;
    let target = engine::membership::absolute(std::path::Path::new(dir));
    // Holding the indexes proves no keel serves them while their records change.
    let mut held = Vec::new();
    for root in cfg.mountpaths.iter().filter(|r| engine::membership::absolute(r) != target) {
        held.push(
            engine::Mountpath::open(root, engine::SyncMode::Always, &engine::IndexConfig::default(), None)
                .map_err(|e| format!("cannot open {} (is keel running on it?): {e}", root.display()))?,
        );
    }
    let attached =
        engine::membership::attach(&cfg.mountpaths, std::path::Path::new(dir), replaces).map_err(|e| e.to_string())?;
    drop(held);
    match attached {
        engine::membership::Attached::Returning { id } => {
            println!(
                "{dir} is the detached member {id:016x}: give it again at the next start and it is reconciled before it serves"
            );
            return Ok(());
        }
        engine::membership::Attached::New { record, id, replaced } => {
            println!("attached {dir} as member {id:016x}: give it at the next start");
            if let Some(old) = replaced {
                println!(
                    "it replaces member {:016x} (was {}) for good; with copies, the repair gives the new drive its share",
                    old.id,
                    old.path.display()
                );
            }
            print_record(&record);
        }
    }
    Ok(())
}
