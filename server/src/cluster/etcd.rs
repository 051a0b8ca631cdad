//! The cluster agent: one thread with a tokio runtime for the `etcd-client` crate. It registers
//! the node (a lease-bound key), keeps the lease alive, watches the cluster's keys and publishes
//! a new `ClusterMap` on every change. Shards call its bucket methods, which run on its runtime
//! and answer over a oneshot, each bounded in time.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::Duration;

use etcd_client::{Client, Compare, CompareOp, ConnectOptions, GetOptions, PutOptions, Txn, TxnOp, WatchOptions};
use futures_channel::oneshot;

use super::{Boot, Cluster, ClusterConfig, ClusterError, ClusterMap, Node, NodeState, Stamp, node_hash};

/// Bound on one etcd call.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// Attempts of one call from a shard (each within `CALL_TIMEOUT * 2`) that fail fast.
const CALL_TRIES: u32 = 3;
/// A failure sooner than this is a refused connection, worth another attempt.
const FAST_FAILURE: Duration = Duration::from_secs(1);
/// How long a starting node waits for etcd to answer.
const BOOT_WAIT: Duration = Duration::from_secs(30);

pub struct Agent {
    rt: tokio::runtime::Runtime,
    client: Client,
    prefix: String,
    config: ClusterConfig,
    first_mountpath: PathBuf,
}

fn unavailable(e: impl std::fmt::Display) -> ClusterError {
    ClusterError::Unavailable(e.to_string())
}

async fn connect(endpoints: &[String]) -> Result<Client, ClusterError> {
    let opts = ConnectOptions::new()
        .with_connect_timeout(CALL_TIMEOUT)
        .with_timeout(CALL_TIMEOUT)
        .with_keep_alive(Duration::from_secs(10), Duration::from_secs(5));
    Client::connect(endpoints, Some(opts)).await.map_err(unavailable)
}

fn random_hex(bytes: usize) -> String {
    let mut s = String::with_capacity(bytes * 2);
    while s.len() < bytes * 2 {
        s.push_str(&format!("{:016x}", engine::mountpath::random_u64()));
    }
    s.truncate(bytes * 2);
    s
}

/// Reads every key of the cluster and builds the map; also the cluster id and secret.
pub(super) async fn load(client: &mut Client, prefix: &str) -> Result<(ClusterMap, String, Vec<u8>), ClusterError> {
    let resp = client.get(prefix, Some(GetOptions::new().with_prefix())).await.map_err(unavailable)?;
    let revision = resp.header().map_or(0, |h| h.revision());
    let mut members: Vec<(String, String, String, bool)> = Vec::new();
    let mut alive: Vec<(String, String)> = Vec::new();
    let mut map = ClusterMap { revision, ..Default::default() };
    let (mut id, mut secret) = (String::new(), Vec::new());
    for kv in resp.kvs() {
        let Some(rest) = kv.key_str().ok().and_then(|k| k.strip_prefix(prefix)) else { continue };
        let value = String::from_utf8_lossy(kv.value()).into_owned();
        if let Some(name) = rest.strip_prefix("members/") {
            let mut lines = value.lines();
            let url = lines.next().unwrap_or("").to_owned();
            let state = lines.next().unwrap_or("active").to_owned();
            members.push((name.to_owned(), url, state, lines.next() == Some("gateway")));
        } else if let Some(name) = rest.strip_prefix("nodes/") {
            alive.push((name.to_owned(), value));
        } else if let Some(name) = rest.strip_prefix("rebalance/") {
            map.rebalance.insert(name.to_owned(), kv.mod_revision());
        } else if let Some(name) = rest.strip_prefix("progress/") {
            map.progress.insert(name.to_owned(), value);
        } else if let Some(name) = rest.strip_prefix("reconcile/") {
            map.reconciling.insert(name.to_owned());
        } else if let Some(name) = rest.strip_prefix("repair/") {
            let mut it = value.split_whitespace().map(str::parse::<u64>);
            let report = match (it.next(), it.next(), it.next()) {
                (Some(Ok(short)), Some(Ok(out)), Some(Ok(shape))) => Some((short, out as usize, shape)),
                _ => None,
            };
            map.under_replicated.insert(name.to_owned(), report);
        } else if let Some(name) = rest.strip_prefix("buckets/") {
            map.buckets.insert(name.to_owned(), (kv.mod_revision(), kv.value().to_vec()));
        } else if rest == "settings/id" {
            id = value;
        } else if rest == "settings/secret" {
            secret = hex::decode(value.trim()).unwrap_or_default();
        }
    }
    for (nid, url, recorded, gateway) in members {
        let state = match (alive.iter().any(|(a, _)| *a == nid), recorded.as_str()) {
            (false, _) => NodeState::Down,
            (true, "joining") => NodeState::Joining,
            (true, "leaving") => NodeState::Leaving,
            (true, _) => NodeState::Active,
        };
        let leaving = recorded == "leaving";
        map.nodes.push(Node { hash: node_hash(&nid), id: nid, url, state, gateway, leaving });
    }
    map.nodes.sort_by(|a, b| a.id.cmp(&b.id));
    Ok((map, id, secret))
}

/// The cluster's id and secret, made by the first node that asks.
async fn settings(client: &mut Client, prefix: &str) -> Result<(String, Vec<u8>), ClusterError> {
    let id_key = format!("{prefix}settings/id");
    let txn = Txn::new().when([Compare::create_revision(id_key.as_str(), CompareOp::Equal, 0)]).and_then([
        TxnOp::put(id_key.as_str(), random_hex(8), None),
        TxnOp::put(format!("{prefix}settings/secret"), random_hex(32), None),
    ]);
    client.txn(txn).await.map_err(unavailable)?;
    let (_, id, secret) = load(client, prefix).await?;
    if id.is_empty() || secret.len() != 32 {
        return Err(ClusterError::Unavailable("the cluster's settings in etcd are malformed".into()));
    }
    Ok((id, secret))
}

/// A member record: `<url>\n<active|joining|leaving>[\ngateway]`.
fn member_value(config: &ClusterConfig, state: &str) -> String {
    member_line(&config.advertise, state, config.gateway)
}

fn member_line(url: &str, state: &str, gateway: bool) -> String {
    format!("{url}\n{state}{}", if gateway { "\ngateway" } else { "" })
}

/// The member record this registration writes: a member's own state kept (its URL updated);
/// a new one `joining` when other members hold data (it owns nothing until it is let in),
/// `active` when it is the first or a gateway.
async fn member_record(client: &mut Client, config: &ClusterConfig) -> Result<String, ClusterError> {
    let prefix = config.prefix();
    let (map, _, _) = load(client, &prefix).await?;
    if let Some(me) = map.node(&config.node_id) {
        let state = match (me.state, me.leaving) {
            (_, true) => "leaving",
            (NodeState::Joining, _) => "joining",
            _ => "active",
        };
        return Ok(member_value(config, state));
    }
    let others_hold_data = map.nodes.iter().any(|n| !n.gateway);
    Ok(member_value(config, if others_hold_data && !config.gateway { "joining" } else { "active" }))
}

/// Puts this node's lease-bound key (and its member record), unless another live node holds
/// the id. The lease this node held before a restart (its stamp) is taken over.
async fn register(client: &mut Client, config: &ClusterConfig, lease: i64, previous: i64) -> Result<(), ClusterError> {
    let prefix = config.prefix();
    let node_key = format!("{prefix}nodes/{}", config.node_id);
    let member_key = format!("{prefix}members/{}", config.node_id);
    for _ in 0..2 {
        let record = member_record(client, config).await?;
        // Back after a restart or a lost lease, it may have missed writes and deletes: its
        // copies are checked against the other holders' before it holds any (D38).
        let txn = Txn::new().when([Compare::create_revision(node_key.as_str(), CompareOp::Equal, 0)]).and_then([
            TxnOp::put(node_key.as_str(), config.advertise.as_str(), Some(PutOptions::new().with_lease(lease))),
            TxnOp::put(member_key.as_str(), record, None),
            TxnOp::put(format!("{prefix}reconcile/{}", config.node_id), "", None),
        ]);
        if client.txn(txn).await.map_err(unavailable)?.succeeded() {
            return Ok(());
        }
        let held = client.get(node_key.as_str(), None).await.map_err(unavailable)?;
        let Some(kv) = held.kvs().first() else { continue };
        if kv.lease() == lease {
            return Ok(());
        }
        if previous != 0 && kv.lease() == previous {
            // Our own key from before a restart: its lease goes, and the key with it.
            let _ = client.lease_revoke(previous).await;
            continue;
        }
        return Err(ClusterError::Conflict(format!(
            "node id {:?} is in use by a running node at {} (or one stopped less than --lease-ttl ago); give this node another --node-id",
            config.node_id,
            String::from_utf8_lossy(kv.value())
        )));
    }
    Err(ClusterError::Conflict(format!("could not register node {:?}", config.node_id)))
}

impl Agent {
    /// Connects, checks this node's data belongs to the cluster, registers it and loads the map.
    pub fn start(config: &ClusterConfig, first_mountpath: &Path) -> Result<(Agent, Boot), String> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("keel-cluster")
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the cluster agent: {e}"))?;
        let prefix = config.prefix();
        // etcd may be starting with this node: wait for it a while.
        let deadline = std::time::Instant::now() + BOOT_WAIT;
        let boot = loop {
            match rt.block_on(boot(config, first_mountpath, &prefix)) {
                Err(ClusterError::Unavailable(e)) if std::time::Instant::now() < deadline => {
                    tracing::warn!(error = e, "cluster: waiting for etcd");
                    std::thread::sleep(Duration::from_secs(1));
                }
                other => break other,
            }
        };
        let (client, boot) = boot.map_err(|e| format!("cannot join the cluster: {e}"))?;
        let agent = Agent { rt, client, prefix, config: config.clone(), first_mountpath: first_mountpath.to_owned() };
        Ok((agent, boot))
    }
}

/// Connects, checks the data's stamp, registers, writes the stamp and loads the map.
async fn boot(config: &ClusterConfig, first_mountpath: &Path, prefix: &str) -> Result<(Client, Boot), ClusterError> {
    let mut client = connect(&config.endpoints).await?;
    let (cluster_id, secret) = settings(&mut client, prefix).await?;
    let stamp = Stamp::read(first_mountpath).map_err(ClusterError::Conflict)?;
    if let Some(s) = &stamp {
        s.check(&config.name, &cluster_id, &config.node_id, first_mountpath).map_err(ClusterError::Conflict)?;
    }
    let ttl = config.lease_ttl_secs as i64;
    let lease = client.lease_grant(ttl, None).await.map_err(unavailable)?.id();
    register(&mut client, config, lease, stamp.as_ref().map_or(0, |s| s.lease)).await?;
    let stamp = Stamp { cluster: config.name.clone(), cluster_id, node_id: config.node_id.clone(), lease };
    stamp.write(first_mountpath).map_err(ClusterError::Conflict)?;
    let (map, _, _) = load(&mut client, prefix).await?;
    Ok((client, Boot { map, secret, lease }))
}

impl Agent {
    /// Starts the lease keeper and the watcher; both stop when the cluster is dropped.
    pub fn run_background(&self, cluster: &Arc<Cluster>, lease: i64) {
        let weak = Arc::downgrade(cluster);
        let (client, config, dir) = (self.client.clone(), self.config.clone(), self.first_mountpath.clone());
        self.rt.spawn(keep_lease(weak.clone(), client.clone(), config, dir, lease));
        self.rt.spawn(watch(weak.clone(), client, self.prefix.clone()));
        self.rt.spawn(watch_quorum(weak, self.config.endpoints.clone()));
    }

    /// Runs `f` on the agent's runtime; its answer within the call timeout. An etcd member that
    /// is down fails the calls the client's balancer sends it: tried again (on another member).
    async fn call<T: Send + 'static, F>(&self, f: impl Fn(Client, String) -> F) -> Result<T, ClusterError>
    where
        F: Future<Output = Result<T, ClusterError>> + Send + 'static,
    {
        let mut tries = 0;
        loop {
            tries += 1;
            let started = std::time::Instant::now();
            match self.call_once(f(self.client.clone(), self.prefix.clone())).await {
                // A member refusing connections fails at once: another may answer. A call that
                // timed out is not tried again (etcd is slow or has no quorum: the caller waited
                // enough).
                Err(ClusterError::Unavailable(_)) if tries < CALL_TRIES && started.elapsed() < FAST_FAILURE => {
                    compio::time::sleep(Duration::from_millis(50)).await;
                }
                other => return other,
            }
        }
    }

    async fn call_once<T: Send + 'static, F>(&self, fut: F) -> Result<T, ClusterError>
    where
        F: Future<Output = Result<T, ClusterError>> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let task = self.rt.spawn(async move {
            let _ = tx.send(fut.await);
        });
        match compio::time::timeout(CALL_TIMEOUT * 2, rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(ClusterError::Unavailable("the cluster agent stopped".into())),
            Err(_) => {
                task.abort();
                Err(ClusterError::Unavailable("etcd did not answer in time".into()))
            }
        }
    }

    /// Creates the bucket's record unless it exists: `Ok(revision)` when created, else
    /// `Err((its revision, the record that won))`.
    pub async fn create_bucket(&self, name: &str, meta: Vec<u8>) -> Result<Result<i64, (i64, Vec<u8>)>, ClusterError> {
        let name = name.to_owned();
        self.call(move |mut c, prefix| {
            let name = name.clone();
            let meta = meta.clone();
            async move {
                let key = format!("{prefix}buckets/{name}");
                let txn = Txn::new()
                    .when([Compare::create_revision(key.as_str(), CompareOp::Equal, 0)])
                    .and_then([TxnOp::put(key.as_str(), meta, None)])
                    .or_else([TxnOp::get(key.as_str(), None)]);
                let resp = c.txn(txn).await.map_err(unavailable)?;
                if resp.succeeded() {
                    return Ok(Ok(resp.header().map_or(0, |h| h.revision())));
                }
                for r in resp.op_responses() {
                    if let etcd_client::TxnOpResponse::Get(g) = r
                        && let Some(kv) = g.kvs().first()
                    {
                        return Ok(Err((kv.mod_revision(), kv.value().to_vec())));
                    }
                }
                Err(ClusterError::Conflict("the bucket was deleted while being created".into()))
            }
        })
        .await
    }

    /// A joining member becomes active: it owns its share of keys from now on, and every member
    /// that holds data (itself too) is told to move what it no longer owns, in the same
    /// transaction. Returns the change's etcd revision.
    pub async fn activate(&self) -> Result<i64, ClusterError> {
        let config = self.config.clone();
        self.call(move |mut c, prefix| {
            let config = config.clone();
            async move {
                let (map, _, _) = load(&mut c, &prefix).await?;
                let holders: Vec<String> = map.holders().map(|n| n.id.clone()).collect();
                let key = format!("{prefix}members/{}", config.node_id);
                let mut ops = vec![TxnOp::put(key, member_value(&config, "active"), None)];
                ops.extend(holders.iter().map(|id| TxnOp::put(format!("{prefix}rebalance/{id}"), "", None)));
                let resp = c.txn(Txn::new().and_then(ops)).await.map_err(unavailable)?;
                Ok(resp.header().map_or(0, |h| h.revision()))
            }
        })
        .await
    }

    /// This node's rebalance progress, for `keel cluster status`.
    pub async fn rebalance_progress(&self, text: String) -> Result<(), ClusterError> {
        let id = self.config.node_id.clone();
        self.call(move |mut c, prefix| {
            let (id, text) = (id.clone(), text.clone());
            async move {
                c.put(format!("{prefix}progress/{id}"), text, None).await.map_err(unavailable)?;
                Ok(())
            }
        })
        .await
    }

    /// This node moved everything it held for others: its rebalance record goes, unless a
    /// newer membership change rewrote it since (revision `rev`). Whether it went.
    pub async fn rebalance_done(&self, rev: i64, progress: String) -> Result<bool, ClusterError> {
        let id = self.config.node_id.clone();
        self.call(move |mut c, prefix| {
            let (id, progress) = (id.clone(), progress.clone());
            async move {
                let key = format!("{prefix}rebalance/{id}");
                let txn = Txn::new().when([Compare::mod_revision(key.as_str(), CompareOp::Equal, rev)]).and_then([
                    TxnOp::delete(key.as_str(), None),
                    TxnOp::put(format!("{prefix}progress/{id}"), progress, None),
                ]);
                Ok(c.txn(txn).await.map_err(unavailable)?.succeeded())
            }
        })
        .await
    }

    /// This node checked its copies against the other holders' (D38): it holds copies again.
    pub async fn reconcile_done(&self) -> Result<(), ClusterError> {
        let id = self.config.node_id.clone();
        self.call(move |mut c, prefix| {
            let id = id.clone();
            async move {
                c.delete(format!("{prefix}reconcile/{id}"), None).await.map_err(unavailable)?;
                Ok(())
            }
        })
        .await
    }

    /// How many objects this node, as their first holder, found short of copies (`None`:
    /// unknown until its pass ends).
    pub async fn report_under_replicated(&self, n: Option<(u64, usize, u64)>) -> Result<(), ClusterError> {
        let id = self.config.node_id.clone();
        self.call(move |mut c, prefix| {
            let id = id.clone();
            async move {
                c.put(
                    format!("{prefix}repair/{id}"),
                    n.map_or("?".to_owned(), |(short, out, shape)| format!("{short} {out} {shape}")),
                    None,
                )
                .await
                .map_err(unavailable)?;
                Ok(())
            }
        })
        .await
    }

    /// Every bucket's record, as etcd holds them now, by name.
    pub async fn buckets(&self) -> Result<Vec<(String, Vec<u8>)>, ClusterError> {
        self.call(move |mut c, prefix| async move {
            let from = format!("{prefix}buckets/");
            let resp = c.get(from.as_str(), Some(GetOptions::new().with_prefix())).await.map_err(unavailable)?;
            Ok(resp
                .kvs()
                .iter()
                .filter_map(|kv| Some((kv.key_str().ok()?.strip_prefix(&from)?.to_owned(), kv.value().to_vec())))
                .collect())
        })
        .await
    }

    /// One bucket's record as etcd holds it now.
    pub async fn bucket(&self, name: &str) -> Result<Option<(i64, Vec<u8>)>, ClusterError> {
        let name = name.to_owned();
        self.call(move |mut c, prefix| {
            let name = name.clone();
            async move {
                let resp = c.get(format!("{prefix}buckets/{name}"), None).await.map_err(unavailable)?;
                Ok(resp.kvs().first().map(|kv| (kv.mod_revision(), kv.value().to_vec())))
            }
        })
        .await
    }

    /// Replaces an existing bucket's record: the change's revision; `None` when there is none.
    pub async fn put_bucket(&self, name: &str, meta: Vec<u8>) -> Result<Option<i64>, ClusterError> {
        let name = name.to_owned();
        self.call(move |mut c, prefix| {
            let name = name.clone();
            let meta = meta.clone();
            async move {
                let key = format!("{prefix}buckets/{name}");
                let txn = Txn::new()
                    .when([Compare::create_revision(key.as_str(), CompareOp::Greater, 0)])
                    .and_then([TxnOp::put(key.as_str(), meta, None)]);
                let resp = c.txn(txn).await.map_err(unavailable)?;
                Ok(resp.succeeded().then(|| resp.header().map_or(0, |h| h.revision())))
            }
        })
        .await
    }

    /// Removes the bucket's record: the deletion's revision; `None` when there was none.
    pub async fn delete_bucket(&self, name: &str) -> Result<Option<i64>, ClusterError> {
        let name = name.to_owned();
        self.call(move |mut c, prefix| {
            let name = name.clone();
            async move {
                let resp = c.delete(format!("{prefix}buckets/{name}"), None).await.map_err(unavailable)?;
                Ok((resp.deleted() > 0).then(|| resp.header().map_or(0, |h| h.revision())))
            }
        })
        .await
    }
}

/// Keeps the node's lease alive; when it is lost (etcd unreachable past the TTL), registers
/// again with a new one as soon as etcd answers.
async fn keep_lease(cluster: Weak<Cluster>, mut client: Client, config: ClusterConfig, dir: PathBuf, mut lease: i64) {
    let period = Duration::from_millis(config.lease_ttl_secs * 1000 / 3);
    loop {
        if cluster.upgrade().is_none_or(|c| c.removed()) {
            return;
        }
        let alive = async {
            let (mut keeper, mut stream) = client.lease_keep_alive(lease).await.map_err(unavailable)?;
            loop {
                keeper.keep_alive().await.map_err(unavailable)?;
                match tokio::time::timeout(CALL_TIMEOUT, stream.message()).await {
                    Ok(Ok(Some(r))) if r.ttl() > 0 => {}
                    Ok(Ok(_)) => return Err(ClusterError::Unavailable("the node's lease expired".into())),
                    Ok(Err(e)) => return Err(unavailable(e)),
                    Err(_) => return Err(ClusterError::Unavailable("etcd did not answer the keep-alive".into())),
                }
                let Some(c) = cluster.upgrade() else { return Ok(()) };
                if c.removed() {
                    return Ok(());
                }
                c.set_etcd(Ok(()));
                drop(c);
                tokio::time::sleep(period).await;
            }
        }
        .await;
        let Some(c) = cluster.upgrade() else { return };
        if let Err(e) = alive {
            tracing::warn!(error = %e, "cluster: lease keep-alive failed");
            c.set_etcd(Err(e.to_string()));
        }
        drop(c);
        tokio::time::sleep(Duration::from_secs(1)).await;
        if cluster.upgrade().is_none_or(|c| c.removed()) {
            // Decommissioned: never registered again.
            return;
        }
        // The lease may have expired meanwhile: take a new one and register again.
        let again = async {
            let ttl = client.lease_time_to_live(lease, None).await.map_err(unavailable)?;
            if ttl.ttl() > 0 {
                return Ok(lease);
            }
            let fresh = client.lease_grant(config.lease_ttl_secs as i64, None).await.map_err(unavailable)?.id();
            register(&mut client, &config, fresh, lease).await?;
            Ok::<_, ClusterError>(fresh)
        }
        .await;
        match again {
            Ok(l) if l != lease => {
                lease = l;
                tracing::info!(lease, "cluster: registered again with a new lease");
                if let Ok(Some(mut s)) = Stamp::read(&dir) {
                    s.lease = lease;
                    let _ = s.write(&dir);
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "cluster: cannot register again yet"),
        }
    }
}

/// While etcd does not answer, asks its members twice a second whether it lost its quorum (a
/// member that lost its leader says so only after its election timeout).
async fn watch_quorum(cluster: Weak<Cluster>, endpoints: Vec<String>) {
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let Some(c) = cluster.upgrade() else { return };
        if c.etcd_ok() || c.removed() {
            continue;
        }
        drop(c);
        let lost = quorum_lost(&endpoints).await;
        let Some(c) = cluster.upgrade() else { return };
        if !c.etcd_ok() {
            c.set_quorum_lost(lost);
        }
    }
}

/// Whether etcd has lost its quorum: a member answers, and has no leader. (Then nothing in etcd
/// can change — no lease expires, no member joins — so the map every node holds stays true.)
async fn quorum_lost(endpoints: &[String]) -> bool {
    // Every member at once, each bounded: dead ones must not delay the answer of a live one.
    let probes = endpoints.iter().map(|e| async move {
        let probe = async {
            let mut c = connect(std::slice::from_ref(e)).await.ok()?;
            c.status().await.ok()
        };
        tokio::time::timeout(Duration::from_secs(1), probe).await.ok().flatten().map(|s| s.leader() == 0)
    });
    let answers = futures_util::future::join_all(probes).await;
    // Lost when a member answers and none of those that answer knows a leader.
    let answered: Vec<bool> = answers.into_iter().flatten().collect();
    !answered.is_empty() && answered.iter().all(|no_leader| *no_leader)
}

/// Watches the cluster's keys; every change reloads the (small) map and publishes it.
async fn watch(cluster: Weak<Cluster>, mut client: Client, prefix: String) {
    let mut from = 0i64;
    loop {
        let round = async {
            let (map, _, _) = load(&mut client, &prefix).await?;
            from = map.revision + 1;
            let c = cluster.upgrade().ok_or(ClusterError::Conflict("stopped".into()))?;
            c.publish(map);
            c.set_etcd(Ok(()));
            drop(c);
            let opts = WatchOptions::new().with_prefix().with_start_revision(from);
            let mut stream = client.watch(prefix.as_str(), Some(opts)).await.map_err(unavailable)?;
            while let Some(resp) = stream.message().await.map_err(unavailable)? {
                if resp.canceled() {
                    return Err(ClusterError::Unavailable(format!("watch cancelled: {}", resp.cancel_reason())));
                }
                if resp.events().is_empty() {
                    continue;
                }
                let (map, _, _) = load(&mut client, &prefix).await?;
                cluster.upgrade().ok_or(ClusterError::Conflict("stopped".into()))?.publish(map);
            }
            Err::<(), _>(ClusterError::Unavailable("the watch ended".into()))
        }
        .await;
        let Some(c) = cluster.upgrade() else { return };
        if let Err(e) = round {
            tracing::warn!(error = %e, "cluster: watch failed; reloading");
            c.set_etcd(Err(e.to_string()));
        }
        drop(c);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// `keel cluster decommission ID`: drains a member and removes it. A gateway (or a node that
/// holds nothing) goes at once; a data node is marked `leaving` (it owns no key from then on) and
/// told to move what it holds to the owners; once it has, its records go. Waits for the drain,
/// printing progress; run again after an interruption, it waits on. The node itself sees its
/// record go and serves nothing after.
pub fn decommission(endpoints: &[String], name: &str, id: &str) -> Result<String, String> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    let prefix = format!("/keel/{name}/");
    let snapshot = |rt: &tokio::runtime::Runtime| {
        rt.block_on(async {
            let mut client = connect(endpoints).await?;
            let (map, _, _) = load(&mut client, &prefix).await?;
            Ok::<_, ClusterError>(map)
        })
        .map_err(|e| e.to_string())
    };
    let map = snapshot(&rt)?;
    let node = map.node(id).ok_or_else(|| format!("cluster {name} has no member {id:?}"))?.clone();
    if !node.gateway {
        if node.state == NodeState::Down && !node.leaving {
            return Err(format!("{id} is down: what it holds cannot be moved; start it first"));
        }
        if !map.nodes.iter().any(|n| n.id != id && n.owns_keys()) {
            return Err(format!("{id} is the cluster's last data node: its objects would have nowhere to go"));
        }
        if !node.leaving {
            rt.block_on(async {
                let mut client = connect(endpoints).await?;
                let txn = Txn::new().and_then([
                    TxnOp::put(format!("{prefix}members/{id}"), member_line(&node.url, "leaving", false), None),
                    TxnOp::put(format!("{prefix}rebalance/{id}"), "", None),
                ]);
                client.txn(txn).await.map_err(unavailable)?;
                Ok::<_, ClusterError>(())
            })
            .map_err(|e| e.to_string())?;
            eprintln!("{id} is leaving: it moves what it holds to the other nodes");
        }
        let mut last = String::new();
        loop {
            let map = snapshot(&rt)?;
            // Moved off, and with copies (D38) every object has its copies on the others.
            if !map.rebalance.contains_key(id) && copies_complete(&map, id) {
                break;
            }
            let line = map.progress.get(id).map(|p| super::rebalance::Progress::decode(p).line()).unwrap_or_default();
            if line != last && !line.is_empty() {
                eprintln!("{id}: {line}");
                last = line;
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    }
    rt.block_on(async {
        let mut client = connect(endpoints).await?;
        for k in ["members", "nodes", "progress", "rebalance", "reconcile", "repair"] {
            client.delete(format!("{prefix}{k}/{id}"), None).await.map_err(unavailable)?;
        }
        Ok::<_, ClusterError>(())
    })
    .map_err(|e| e.to_string())?;
    Ok(format!("{id} left cluster {name}"))
}

/// Whether the live members other than `leaving` found no object short of copies at the end
/// of their last repair pass (true where no member repairs copies).
fn copies_complete(map: &ClusterMap, leaving: &str) -> bool {
    map.under_replicated
        .iter()
        .filter(|(n, _)| n.as_str() != leaving && map.node(n).is_some_and(|n| n.state != NodeState::Down))
        .all(|(_, r)| r.is_some_and(|(short, _, shape)| short == 0 && shape == map.shape()))
}

/// `keel cluster status`: the map as etcd holds it now.
pub fn snapshot(endpoints: &[String], name: &str) -> Result<ClusterMap, String> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    rt.block_on(async {
        let mut client = connect(endpoints).await?;
        let (map, _, _) = load(&mut client, &format!("/keel/{name}/")).await?;
        Ok::<_, ClusterError>(map)
    })
    .map_err(|e| e.to_string())
}
