//! Starting and stopping a node: open the store, resolve credentials, start the shards, print
//! the banner, wait for SIGTERM/SIGINT, drain, persist, exit.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Arc;

use futures_util::future::{Either, select};

use crate::config::ServeConfig;
use crate::s3::S3Config;
use crate::s3::auth::Credentials;
use crate::shard::{self, Started, Stopper};

const CREDENTIALS_FILE: &str = "keel-credentials";

/// Where the credentials came from, for the banner.
enum CredentialSource {
    Configured,
    Stored,
    Generated,
    Anonymous,
}

fn random_key(len: usize, alphabet: &[u8]) -> String {
    let mut out = String::with_capacity(len);
    while out.len() < len {
        let r = engine::mountpath::random_u64();
        for i in 0..8 {
            if out.len() < len {
                out.push(alphabet[((r >> (i * 8)) & 0xff) as usize % alphabet.len()] as char);
            }
        }
    }
    out
}

/// The generated pair kept in a mountpath, if there is one.
pub fn stored_credentials(first_mountpath: &Path) -> Option<Result<(String, String), String>> {
    let path = first_mountpath.join(CREDENTIALS_FILE);
    let text = std::fs::read_to_string(&path).ok()?;
    let mut ak = None;
    let mut sk = None;
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("access_key = ") {
            ak = Some(v.trim().trim_matches('"').to_owned());
        } else if let Some(v) = line.strip_prefix("secret_key = ") {
            sk = Some(v.trim().trim_matches('"').to_owned());
        }
    }
    Some(match (ak, sk) {
        (Some(a), Some(s)) => Ok((a, s)),
        _ => Err(format!("{} is malformed; remove it to generate new credentials", path.display())),
    })
}

/// Reads the generated pair kept in the first mountpath, or makes and stores one (mode 0600).
fn stored_or_generated(first_mountpath: &Path) -> Result<((String, String), CredentialSource), String> {
    let path = first_mountpath.join(CREDENTIALS_FILE);
    if let Some(stored) = stored_credentials(first_mountpath) {
        return stored.map(|pair| (pair, CredentialSource::Stored));
    }
    let ak = format!("KEEL{}", random_key(16, b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"));
    let sk = random_key(40, b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| format!("cannot store credentials in {}: {e}", path.display()))?;
    writeln!(
        f,
        "# keel generated these on first start; keep this file private.\naccess_key = \"{ak}\"\nsecret_key = \"{sk}\""
    )
    .and_then(|()| f.sync_all())
    .map_err(|e| format!("cannot store credentials in {}: {e}", path.display()))?;
    Ok(((ak, sk), CredentialSource::Generated))
}

/// Runs `keel serve` until a signal stops it.
pub fn serve(cfg: ServeConfig) -> Result<(), String> {
    if cfg.tls.is_some() {
        block_sighup();
    }
    if cfg.sync == engine::SyncMode::None {
        tracing::warn!("--sync none: acknowledged writes live in the page cache only and can be lost on a power cut");
    }
    let store = engine::Store::open(&engine::StoreConfig {
        mountpaths: cfg.mountpaths.clone(),
        sync: cfg.sync,
        index: engine::IndexConfig::default(),
        odirect: cfg.odirect,
        faults: faults_from_env()?,
    })
    .map_err(|e| format!("cannot open the mountpaths: {e}"))?;
    if cfg.cluster.is_some() {
        store.set_copies_across_nodes();
    } else {
        store.set_default_copies(cfg.copies);
    }
    // Bucket records missing on a mountpath added since the buckets were made, before anything
    // commits there (a repair's copy onto it is refused without its bucket's record).
    let rt = compio::runtime::Runtime::new().map_err(|e| format!("cannot start the control runtime: {e}"))?;
    rt.block_on(store.repair_buckets()).map_err(|e| format!("cannot repair bucket records: {e}"))?;
    start_housekeeping(&store)?;
    start_repair(&store, cfg.repair_rate, cfg.repair_interval)?;
    let cluster = join_cluster(&cfg, &store)?;
    let (s3, banner_user, source) = s3_config(&cfg, &store, cluster.clone())?;
    let tls = s3.tls.clone();

    let listeners =
        shard::bind_shards(cfg.listen, cfg.threads).map_err(|e| format!("cannot listen on {}: {e}", cfg.listen))?;
    let addr = listeners[0].local_addr().map_err(|e| e.to_string())?;
    let stopper = Arc::new(Stopper::new());
    let (handles, io_uring) = start_shards(&cfg, listeners, &store, s3, &stopper)?;

    if let Some(cluster) = cluster {
        // A new member is let in (becomes an owner) only now that it takes requests: until
        // then it forwards every key, like a gateway.
        rt.block_on(crate::cluster::peer::admit(&store, &cluster))?;
        let syncing = store.clone();
        rt.block_on(async move {
            compio::runtime::spawn(crate::cluster::rebalance::run(syncing.clone(), cluster.clone())).detach();
            compio::runtime::spawn(crate::cluster::copies::run(syncing.clone(), cluster.clone())).detach();
            compio::runtime::spawn(crate::cluster::route::sync_buckets(syncing, cluster)).detach()
        });
    }
    print_banner(&cfg, addr, io_uring, banner_user.as_ref(), &source, &store);
    if cfg.upload_ttl_secs > 0 {
        let ttl = cfg.upload_ttl_secs;
        let expiring = store.clone();
        rt.block_on(async move { compio::runtime::spawn(expire_uploads(expiring, ttl)).detach() });
    }
    // Lifecycle rules are refused in a cluster (D48): no worker there.
    if cfg.cluster.is_none() {
        let (applying, day) = (store.clone(), cfg.lifecycle_day_secs);
        rt.block_on(async move { compio::runtime::spawn(crate::lifecycle::run(applying, day)).detach() });
    }
    if !cfg.backends.is_empty() {
        let (evicting, marks) = (store.clone(), cfg.space_watermarks);
        let configured: Vec<String> = cfg.backends.iter().map(|b| b.name.clone()).collect();
        rt.block_on(async move { compio::runtime::spawn(evict_when_full(evicting, marks, configured)).detach() });
    }
    if let Some(tls) = tls {
        reload_on_sighup(tls)?;
    }
    rt.block_on(stop_on_signal(&stopper, handles));
    for mp in store.mountpaths() {
        if let Err(e) = mp.index.persist() {
            tracing::error!(mountpath = mp.name(), error = %e, "could not persist the index at shutdown");
        }
    }
    tracing::info!("stopped");
    Ok(())
}

/// How soon a pass that left objects short runs again.
const REPAIR_RETRY: std::time::Duration = std::time::Duration::from_secs(5);

/// The repair thread (issue 15): a pass over every copies bucket at start, whenever a mountpath
/// is poisoned, soon again while objects stay short, else every `interval`; keys a read or a
/// write found a bad copy of, within a second.
fn start_repair(store: &Arc<engine::Store>, rate: u64, interval: std::time::Duration) -> Result<(), String> {
    let store = store.clone();
    std::thread::Builder::new()
        .name("keel-repair".into())
        .spawn(move || {
            let rt = match compio::runtime::Runtime::new() {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!(error = %e, "cannot start the repair thread's runtime: lost copies are not repaired");
                    return;
                }
            };
            rt.block_on(repair_loop(store, rate, interval));
        })
        .map_err(|e| format!("cannot start the repair thread: {e}"))?;
    Ok(())
}

async fn repair_loop(store: Arc<engine::Store>, rate: u64, interval: std::time::Duration) {
    let mut last: Option<(std::time::Instant, usize, u64)> = None;
    loop {
        if store.repair_wanted() {
            match store.repair_suspects(rate).await {
                Ok(r) if r.repaired > 0 => {
                    tracing::warn!(repaired = r.repaired, bytes = r.bytes, "copies: bad copies rewritten")
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "copies: repairing reported keys failed"),
            }
        }
        let sick = store.failed_mountpaths();
        if sick > 0 && store.copies_in_use() {
            // Its copies may miss changes from now on (a no-op once recorded).
            store.record_failures();
        }
        let due = match last {
            _ if store.repair_pass_asked() => true,
            None => true,
            Some((at, was_sick, left)) => {
                sick != was_sick || at.elapsed() >= interval || (left > 0 && at.elapsed() >= REPAIR_RETRY)
            }
        };
        if due {
            let started = std::time::Instant::now();
            match store.repair_pass(true, false, rate).await {
                Ok(r) => {
                    if r.under_replicated > 0 {
                        tracing::warn!(
                            examined = r.examined,
                            under_replicated = r.under_replicated,
                            repaired = r.repaired,
                            bytes = r.bytes,
                            left = r.left,
                            secs = started.elapsed().as_secs_f64(),
                            "copies: repair pass"
                        );
                    }
                    last = Some((started, sick, r.left));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "copies: repair pass failed");
                    last = Some((started, sick, 1));
                }
            }
        }
        compio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

/// The background threads every node runs: the orphan collector, once, and the mountpath prober.
fn start_housekeeping(store: &Arc<engine::Store>) -> Result<(), String> {
    // Data files a crash left without a record (or a record without its unlink) go, in the
    // background: only files older than this start, so nothing written from now on. File
    // times come from the kernel's coarse clock, which lags this one by up to a tick: a file
    // a PUT made right after the start could look older and, its record not yet in the
    // collector's snapshot, be taken for an orphan (seen once: a GET of a key PUT at start
    // answered 503). Files from the last 2 s before the start wait for the next start.
    let started = std::time::SystemTime::now() - std::time::Duration::from_secs(2);
    let collector = store.clone();
    std::thread::Builder::new()
        .name("keel-orphans".into())
        .spawn(move || match collector.collect_orphans(started) {
            Ok(reports) => {
                for (mp, r) in reports.into_iter().filter(|(_, r)| r.removed > 0) {
                    tracing::warn!(
                        mountpath = mp,
                        removed = r.removed,
                        bytes = r.bytes_removed,
                        "removed orphaned data files"
                    );
                }
            }
            Err(e) => tracing::warn!(error = %e, "orphan collection failed"),
        })
        .map_err(|e| format!("cannot start the orphan collector: {e}"))?;

    // Every few seconds, each mountpath checks that its directory is still the one opened: a
    // drive unmounted or a directory removed under keel is poisoned, and /health says so.
    let prober = store.clone();
    std::thread::Builder::new()
        .name("keel-probe".into())
        .spawn(move || {
            loop {
                std::thread::sleep(crate::limits::MOUNTPATH_PROBE_INTERVAL);
                for mp in prober.mountpaths() {
                    mp.probe();
                }
            }
        })
        .map_err(|e| format!("cannot start the mountpath prober: {e}"))?;
    Ok(())
}

/// `--cluster`: registers the node in etcd and loads the map. A node joining for the first time
/// (no `keel-cluster` stamp) brings its buckets into the cluster.
fn join_cluster(cfg: &ServeConfig, store: &Arc<engine::Store>) -> Result<Option<Arc<crate::cluster::Cluster>>, String> {
    let Some(cc) = &cfg.cluster else { return Ok(None) };
    let first = store.mountpaths()[0].root().to_owned();
    let fresh = crate::cluster::Stamp::read(&first)?.is_none();
    let cluster = crate::cluster::start(cc.clone(), &first)?;
    let rt = compio::runtime::Runtime::new().map_err(|e| format!("cannot start the control runtime: {e}"))?;
    if fresh {
        for (name, meta) in store.list_buckets() {
            match rt.block_on(cluster.agent.create_bucket(&name, meta.encode())) {
                Ok(Ok(_)) => tracing::info!(bucket = name, "cluster: this node's bucket joined the cluster"),
                Ok(Err(_)) => {
                    tracing::warn!(bucket = name, "cluster: the cluster already has this bucket; its record wins")
                }
                Err(e) => return Err(format!("cannot bring bucket {name} into the cluster: {e}")),
            }
        }
    }
    tracing::info!(node = cc.node_id, nodes = cluster.map().nodes.len(), "cluster: joined");
    Ok(Some(cluster))
}

/// The S3 front end's settings: the users (configured, stored or generated on first start),
/// the admins, and the first user for the banner.
fn s3_config(
    cfg: &ServeConfig,
    store: &engine::Store,
    cluster: Option<Arc<crate::cluster::Cluster>>,
) -> Result<(Arc<S3Config>, Option<(String, String)>, CredentialSource), String> {
    let mut users = cfg.users.clone();
    let mut admins = cfg.admins.clone();
    let source = if cfg.anonymous {
        CredentialSource::Anonymous
    } else if users.is_empty() {
        let (pair, src) = stored_or_generated(store.mountpaths()[0].root())?;
        // The operator's own generated key administers the node.
        admins.push(pair.0.clone());
        users.push(pair);
        src
    } else {
        CredentialSource::Configured
    };
    if let Some(stray) = admins.iter().find(|a| !cfg.anonymous && !users.iter().any(|(ak, _)| ak == *a)) {
        return Err(format!("--admin {stray} names no user (add it with --user {stray}:SECRET)"));
    }
    let banner_user = users.first().cloned();
    let s3 = Arc::new(S3Config {
        prefix: cfg.s3_prefix.clone(),
        domain: cfg.domain.clone(),
        region: cfg.region.clone(),
        anonymous: cfg.anonymous,
        credentials: Credentials::new(users).with_admins(admins),
        min_part_size: cfg.min_part_size,
        splice_min: cfg.splice_min,
        validate_on_read: cfg.validate_on_read,
        max_connections: cfg.max_connections,
        body_grace: body_grace_from_env(),
        timeouts: timeouts_from_env(),
        backends: crate::backend::Agent::start(cfg.backends.clone(), cfg.backend_timeout)
            .map_err(|e| format!("cannot start the backend agent: {e}"))?,
        cluster,
        tls: match &cfg.tls {
            Some((cert, key)) => Some(Arc::new(crate::http::tls::Tls::load(cert, key)?)),
            None => None,
        },
    });
    Ok((s3, banner_user, source))
}

/// Starts one shard thread per listener and waits until each has started; returns their
/// handles and whether all of them run on io_uring.
fn start_shards(
    cfg: &ServeConfig,
    listeners: Vec<std::net::TcpListener>,
    store: &Arc<engine::Store>,
    s3: Arc<S3Config>,
    stopper: &Arc<Stopper>,
) -> Result<(Vec<std::thread::JoinHandle<()>>, bool), String> {
    // Shard i is pinned to the i-th CPU this process may run on (taskset, cgroup cpuset), not to
    // CPU i: `taskset -c 4-7 keel serve --threads 4` keeps the shards on 4-7.
    let cores = crate::shard::allowed_cpus();
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let mut handles = Vec::new();
    let metrics = Arc::new(crate::metrics::Metrics::new(cfg.threads));
    for (i, l) in listeners.into_iter().enumerate() {
        let shared = shard::Shared {
            store: store.clone(),
            config: s3.clone(),
            stopper: stopper.clone(),
            metrics: metrics.clone(),
        };
        let tx = started_tx.clone();
        let core = if cfg.pin && cfg.threads <= cores.len() { Some(cores[i]) } else { None };
        let h = std::thread::Builder::new()
            .name(format!("keel-shard-{i}"))
            .spawn(move || shard::run_shard(i, core, l, shared, tx))
            .map_err(|e| format!("cannot start shard {i}: {e}"))?;
        handles.push(h);
    }
    drop(started_tx);
    let mut io_uring = true;
    for _ in 0..cfg.threads {
        match started_rx.recv() {
            Ok(Ok(Started { io_uring: u, .. })) => io_uring &= u,
            Ok(Err(e)) => {
                stopper.stop();
                return Err(e);
            }
            Err(_) => return Err("a shard stopped during start".to_owned()),
        }
    }
    if !io_uring {
        tracing::warn!(
            "io_uring is not available here: shards run on the poll driver (slower file I/O through a thread pool)"
        );
    }
    Ok((handles, io_uring))
}

/// Waits for SIGTERM or SIGINT, then stops the shards and waits for them; a second signal exits
/// at once.
async fn stop_on_signal(stopper: &Stopper, handles: Vec<std::thread::JoinHandle<()>>) {
    wait_signal().await;
    tracing::info!("stopping: no new connections; finishing requests in flight");
    stopper.stop();
    let joined = std::pin::pin!(compio::runtime::spawn_blocking(move || {
        for h in handles {
            let _ = h.join();
        }
    }));
    let second = std::pin::pin!(wait_signal());
    // Shards give up on busy connections after SHUTDOWN_DRAIN_TIMEOUT; should one still hang
    // (an I/O operation that never completes), exit anyway: every acknowledged write is
    // already durable in the index.
    let bound =
        std::pin::pin!(compio::time::sleep(crate::limits::SHUTDOWN_DRAIN_TIMEOUT + std::time::Duration::from_secs(10)));
    match select(joined, select(second, bound)).await {
        Either::Left(_) => {}
        Either::Right((Either::Left(_), _)) => {
            tracing::warn!("second signal: exiting now");
            std::process::exit(130);
        }
        Either::Right((Either::Right(_), _)) => {
            tracing::error!("shards did not stop in time: persisting the index and exiting");
        }
    }
}

/// Aborts uploads older than `ttl_secs`, checking a few times per TTL (at least hourly).
async fn expire_uploads(store: Arc<engine::Store>, ttl_secs: u64) {
    let period = std::time::Duration::from_secs((ttl_secs / 4).clamp(1, 3600));
    loop {
        let cutoff = crate::time::now_ms().saturating_sub(ttl_secs.saturating_mul(1000));
        match store.abort_uploads_before(cutoff).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(aborted = n, ttl_secs, "aborted expired multipart uploads"),
            Err(e) => tracing::warn!(error = %e, "could not expire multipart uploads"),
        }
        compio::time::sleep(period).await;
    }
}

/// Keeps each mountpath under its high watermark: past it, cached copies of backend buckets'
/// objects (least recently read first) are dropped until the low watermark. Objects that exist
/// only here, and copies in buckets whose backend is not configured, are never dropped.
async fn evict_when_full(store: Arc<engine::Store>, (high, low): (u8, u8), configured: Vec<String>) {
    let reachable = |r: &engine::RemoteBucket| configured.contains(&r.backend);
    loop {
        for mp in store.mountpaths() {
            let Some((free, total)) = mp.space() else { continue };
            let used = total.saturating_sub(free);
            if total == 0 || used.saturating_mul(100) < total.saturating_mul(u64::from(high)) {
                continue;
            }
            let want = used.saturating_sub(total / 100 * u64::from(low));
            match store.evict_cold(mp, want, &reachable).await {
                Ok(r) if r.objects > 0 => {
                    tracing::info!(mountpath = mp.name(), objects = r.objects, bytes = r.bytes, "evicted cached copies")
                }
                Ok(_) => tracing::debug!(mountpath = mp.name(), "above the high watermark, nothing cached to evict"),
                Err(e) => tracing::warn!(mountpath = mp.name(), error = %e, "eviction failed"),
            }
        }
        compio::time::sleep(crate::limits::EVICTION_CHECK_INTERVAL).await;
    }
}

/// SIGHUP as a signal set, for blocking it and waiting for it.
fn sighup_set() -> libc::sigset_t {
    // SAFETY: sigemptyset/sigaddset fill the set they are given.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGHUP);
        set
    }
}

/// Blocks SIGHUP in this thread and so in every thread started from it later: its default
/// action (ending the process) can no longer strike; `reload_on_sighup` takes it instead.
fn block_sighup() {
    let set = sighup_set();
    // SAFETY: changes this thread's signal mask only.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
}

/// Reads the TLS certificate and key again at every SIGHUP (D43) on a thread of its own: new
/// handshakes get the new pair, open connections keep theirs; a pair that does not load leaves
/// the old one in use. SIGHUP is blocked in every thread (`block_sighup`, before any started),
/// so signals that come close together are all taken here, never the default action.
fn reload_on_sighup(tls: Arc<crate::http::tls::Tls>) -> Result<(), String> {
    let set = sighup_set();
    std::thread::Builder::new()
        .name("keel-sighup".into())
        .spawn(move || {
            loop {
                let mut sig = 0;
                // SAFETY: waits for a signal of `set`, which every thread blocks.
                if unsafe { libc::sigwait(&set, &mut sig) } != 0 {
                    tracing::error!("cannot wait for SIGHUP: the certificate is not reloaded");
                    return;
                }
                match tls.reload() {
                    Ok(()) => tracing::info!("SIGHUP: TLS certificate reloaded"),
                    Err(e) => tracing::error!(error = %e, "SIGHUP: TLS certificate not reloaded; the old one stays"),
                }
            }
        })
        .map(drop)
        .map_err(|e| format!("cannot start the SIGHUP thread: {e}"))
}

async fn wait_signal() {
    let term = std::pin::pin!(compio::signal::unix::signal(libc::SIGTERM));
    let int = std::pin::pin!(compio::signal::ctrl_c());
    let _ = select(term, int).await;
}

fn print_banner(
    cfg: &ServeConfig,
    addr: std::net::SocketAddr,
    io_uring: bool,
    user: Option<&(String, String)>,
    source: &CredentialSource,
    store: &engine::Store,
) {
    let scheme = if cfg.tls.is_some() { "https" } else { "http" };
    let endpoint = format!("{scheme}://{addr}{}", cfg.s3_prefix);
    let mut out = String::new();
    out.push_str(&format!(
        "keel {} listening on {endpoint} ({} shards, {}, {}, sync {})\n",
        env!("CARGO_PKG_VERSION"),
        cfg.threads,
        if cfg.pin { "pinned" } else { "unpinned" },
        if io_uring { "io_uring" } else { "poll driver" },
        if cfg.sync == engine::SyncMode::Always { "always" } else { "none (page cache only)" }
    ));
    for mp in store.mountpaths() {
        let space = mp.space().map_or(String::new(), |(free, total)| {
            format!(" ({:.1} of {:.1} GiB free)", free as f64 / (1u64 << 30) as f64, total as f64 / (1u64 << 30) as f64)
        });
        out.push_str(&format!("  mountpath {}{space}\n", mp.name()));
    }
    if let Some((cert, _)) = &cfg.tls {
        out.push_str(&format!(
            "  HTTPS with {} (rustls in user space: kernel TLS is not used, bodies are encrypted, not spliced; SIGHUP reloads)\n",
            cert.display()
        ));
    }
    if cfg.copies > 1 {
        out.push_str(&format!("  copies {} (each object on {} distinct mountpaths)\n", cfg.copies, cfg.copies));
    }
    match (source, user) {
        (CredentialSource::Anonymous, _) => {
            out.push_str("  WARNING: --anonymous: requests are not authenticated; anyone who can reach this port can read and write everything\n");
            out.push_str(&format!("  try: aws --no-sign-request --endpoint-url {endpoint} s3 ls\n"));
        }
        (src, Some((ak, sk))) => {
            match src {
                CredentialSource::Generated => out.push_str(&format!(
                    "  generated credentials (stored in {}):\n",
                    store.mountpaths()[0].root().join(CREDENTIALS_FILE).display()
                )),
                CredentialSource::Stored => out.push_str(&format!(
                    "  credentials from {}:\n",
                    store.mountpaths()[0].root().join(CREDENTIALS_FILE).display()
                )),
                _ => out.push_str("  credentials as configured:\n"),
            }
            let shown_sk = if matches!(src, CredentialSource::Configured) { "<your secret key>" } else { sk.as_str() };
            out.push_str(&format!("    access key {ak}\n    secret key {shown_sk}\n"));
            out.push_str(&format!(
                "  try: AWS_ACCESS_KEY_ID={ak} AWS_SECRET_ACCESS_KEY={shown_sk} aws --endpoint-url {endpoint} s3 ls\n"
            ));
        }
        _ => {}
    }
    print!("{out}");
    let _ = std::io::stdout().flush();
}

/// `keel scrub`: reads every object and reports what does not match its stored checksum.
pub fn scrub(cfg: ServeConfig) -> Result<(), String> {
    // Durable writes: the repair of copies below commits what it rewrites.
    let store = engine::Store::open(&engine::StoreConfig {
        mountpaths: cfg.mountpaths.clone(),
        sync: engine::SyncMode::Always,
        index: engine::IndexConfig::default(),
        odirect: false,
        faults: None,
    })
    .map_err(|e| format!("cannot open the mountpaths (is keel running on them?): {e}"))?;
    let r = store.scrub().map_err(|e| format!("scrub failed: {e}"))?;
    println!(
        "scrubbed {} objects, {} bytes: {} corrupt, {} without a stored checksum (size checked only)",
        r.objects,
        r.bytes,
        r.corrupt.len(),
        r.unchecked
    );
    for (bucket, key, why) in &r.corrupt {
        println!("CORRUPT {bucket}/{key}: {why}");
    }
    // Buckets with copies: a copy that failed is rewritten from one that verifies (on this
    // node's drives; a cluster's copies live on other nodes).
    if cfg.cluster.is_some() {
        store.set_copies_across_nodes();
    } else {
        store.set_default_copies(cfg.copies);
    }
    let rt = compio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    rt.block_on(store.repair_buckets()).map_err(|e| format!("cannot repair bucket records: {e}"))?;
    let c = rt.block_on(store.repair_pass(true, true, 0)).map_err(|e| format!("repairing copies failed: {e}"))?;
    if c.repaired > 0 || c.left > 0 {
        println!(
            "copies: {} objects rewritten from a good copy ({} bytes), {} still short",
            c.repaired, c.bytes, c.left
        );
    }
    if r.corrupt.is_empty() { Ok(()) } else { Err(format!("{} corrupt objects", r.corrupt.len())) }
}

/// `KEEL_BODY_GRACE_MS` (testing only): a shorter grace before request bodies must keep their
/// minimum rate, so tests need not wait `limits::BODY_GRACE`.
fn body_grace_from_env() -> std::time::Duration {
    std::env::var("KEEL_BODY_GRACE_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(crate::limits::BODY_GRACE, std::time::Duration::from_millis)
}

/// `KEEL_IDLE_TIMEOUT_MS`, `KEEL_HEAD_TIMEOUT_MS`, `KEEL_STALL_TIMEOUT_MS` and
/// `KEEL_COMPLETE_KEEPALIVE_MS` (testing only): shorter waits for a connection's next request,
/// for a whole request head and for a client that takes no more of a response, and a shorter
/// pace of a long completion's keep-alive spaces (0: from its start), so tests need not wait
/// `limits::IDLE_TIMEOUT`, `limits::HEADER_READ_TIMEOUT`, `limits::IO_STALL_TIMEOUT` or
/// `limits::COMPLETE_KEEPALIVE`.
fn timeouts_from_env() -> crate::s3::ctx::Timeouts {
    let ms = |name: &str, default: std::time::Duration| {
        std::env::var(name).ok().and_then(|v| v.parse().ok()).map_or(default, std::time::Duration::from_millis)
    };
    crate::s3::ctx::Timeouts {
        idle: ms("KEEL_IDLE_TIMEOUT_MS", crate::limits::IDLE_TIMEOUT),
        head: ms("KEEL_HEAD_TIMEOUT_MS", crate::limits::HEADER_READ_TIMEOUT),
        stall: ms("KEEL_STALL_TIMEOUT_MS", crate::limits::IO_STALL_TIMEOUT),
        complete_keepalive: ms("KEEL_COMPLETE_KEEPALIVE_MS", crate::limits::COMPLETE_KEEPALIVE),
    }
}

/// `KEEL_FAULTS` (testing only): faults to inject, e.g. `fsync=3` fails the third data fsync.
fn faults_from_env() -> Result<Option<Arc<engine::Faults>>, String> {
    match std::env::var("KEEL_FAULTS") {
        Ok(spec) if !spec.is_empty() => {
            tracing::warn!(spec, "KEEL_FAULTS is set: injecting faults (testing only)");
            engine::Faults::parse(&spec).map(|f| Some(Arc::new(f)))
        }
        _ => Ok(None),
    }
}
