//! A keel cluster (CLUSTER.md, issue 14): membership and bucket metadata in etcd, placement by
//! rendezvous hashing over the member nodes, any node takes any request and forwards it to the
//! key's owner.
//!
//! Shards never call etcd. The cluster agent (`etcd.rs`, one thread with a tokio runtime)
//! watches the cluster's keys and publishes an immutable [`ClusterMap`]; the hot path reads the
//! snapshot through an `ArcSwap`, lock-free.
//!
//! Keys in etcd, under `/keel/<cluster-name>/`:
//! ```text
//! settings/id          the cluster's id (random, written once; stamped into every member's data)
//! settings/secret      hex of 32 random bytes: the HMAC key of node-to-node requests
//!                      (`x-keel-peer: <node> <unix seconds> <hex HMAC-SHA256 of node, time,
//!                      method and target>`)
//! members/<node-id>    "<url>\n<state>[\ngateway]" — a member until decommissioned (state:
//!                      active, joining, leaving)
//! nodes/<node-id>      "<url>" bound to the node's lease: the member is alive
//! buckets/<name>       the bucket's record (engine::BucketMeta::encode)
//! rebalance/<node-id>  "" — this member may hold objects others own (written with the
//!                      membership change; removed by the member once it moved them all)
//! progress/<node-id>   the member's rebalance progress (`rebalance::Progress::encode`)
//! reconcile/<node-id>  "" — the member (re)registered and has not yet checked its copies
//!                      against the other holders' (DESIGN D38): it holds no copy meanwhile
//! repair/<node-id>     "<under-replicated objects>" this member counted as the first holder
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arc_swap::ArcSwap;
use hmac::{Hmac, Mac};
use sha2::Sha256;

mod applied;
pub mod copies;
#[cfg(feature = "cluster")]
mod etcd;
#[cfg(not(feature = "cluster"))]
#[path = "etcd_none.rs"]
mod etcd;
pub mod forward;
pub mod part_copies;
pub mod peer;
pub mod rebalance;
pub mod route;
pub mod status;

pub use etcd::Agent;

/// The header node-to-node requests carry: `<node-id> <unix seconds> <hex HMAC-SHA256>`.
pub const PEER_HEADER: &str = "x-keel-peer";
/// The etcd revision of the bucket's record the forwarding node had applied: the owner catches
/// up to it before serving (a bucket change made through one node binds the next request sent
/// through it, wherever its key lives). Trusted only with a valid `PEER_HEADER`.
pub const BUCKET_REV_HEADER: &str = "x-keel-bucket-rev";
/// The address of the client a member forwards a request for (bucket policies'
/// `aws:SourceIp` on the owner). Trusted only with a valid `PEER_HEADER`.
pub const CLIENT_IP_HEADER: &str = "x-keel-client-ip";
/// How far a peer request's time may stray from ours.
const PEER_SKEW_SECS: i64 = 300;
/// The stamp a member's first mountpath keeps: which cluster and node its data belongs to.
pub const STAMP_FILE: &str = "keel-cluster";

/// `--cluster`, `--node-id`, `--advertise`, `--cluster-name`, `--lease-ttl`, `--redirect`.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    pub endpoints: Vec<String>,
    pub name: String,
    pub node_id: String,
    /// The URL other nodes (and redirected clients) reach this node at.
    pub advertise: String,
    pub lease_ttl_secs: u64,
    pub redirect: bool,
    /// A member that holds no objects: it takes requests and forwards every key (AIStore's
    /// proxy; `--gateway`).
    pub gateway: bool,
    /// Bytes per second a rebalance moves from this node (`--rebalance-rate`; 0: unpaced).
    pub rebalance_rate: u64,
    /// Copies of each object on distinct nodes (`--copies`; a bucket's `copies` prop overrides).
    pub copies: u8,
}

impl ClusterConfig {
    /// Checks the settings; `None` without `--cluster`.
    pub fn resolve(
        endpoints: Option<&str>,
        node_id: Option<&str>,
        advertise: Option<&str>,
        name: Option<&str>,
        lease_ttl: Option<u64>,
        (redirect, gateway): (bool, bool),
    ) -> Result<Option<ClusterConfig>, String> {
        let Some(endpoints) = endpoints.filter(|e| !e.trim().is_empty()) else {
            if node_id.is_some() || advertise.is_some() || redirect || gateway {
                return Err("--node-id, --advertise, --redirect and --gateway need --cluster".to_owned());
            }
            return Ok(None);
        };
        let endpoints = parse_endpoints(endpoints)?;
        let node_id = node_id.ok_or("--cluster needs --node-id")?.to_owned();
        if !valid_name(&node_id) {
            return Err(format!("--node-id {node_id:?}: use 1-64 letters, digits, '-', '_' or '.'"));
        }
        let advertise = advertise.ok_or("--cluster needs --advertise (the URL other nodes reach this one at)")?;
        let advertise = advertise.trim_end_matches('/').to_owned();
        if split_url(&advertise).is_none() {
            return Err(format!("--advertise {advertise:?} must be http://HOST:PORT"));
        }
        let name = name.unwrap_or("keel").to_owned();
        if !valid_name(&name) {
            return Err(format!("--cluster-name {name:?}: use 1-64 letters, digits, '-', '_' or '.'"));
        }
        let lease_ttl_secs = lease_ttl.unwrap_or(10);
        if !(2..=3600).contains(&lease_ttl_secs) {
            return Err("--lease-ttl must be 2 to 3600 seconds".to_owned());
        }
        Ok(Some(ClusterConfig {
            endpoints,
            name,
            node_id,
            advertise,
            lease_ttl_secs,
            redirect,
            gateway,
            rebalance_rate: 256 << 20,
            copies: 1,
        }))
    }

    /// The prefix of every key of this cluster in etcd.
    pub fn prefix(&self) -> String {
        format!("/keel/{}/", self.name)
    }
}

/// `http://a:2379,http://b:2379` → the list; each must be http://HOST:PORT.
pub fn parse_endpoints(s: &str) -> Result<Vec<String>, String> {
    let out: Vec<String> =
        s.split(',').map(|e| e.trim().trim_end_matches('/').to_owned()).filter(|e| !e.is_empty()).collect();
    if out.is_empty() || out.iter().any(|e| split_url(e).is_none()) {
        return Err(format!("--cluster {s:?}: give etcd endpoints as http://HOST:PORT[,http://HOST:PORT…]"));
    }
    Ok(out)
}

fn valid_name(s: &str) -> bool {
    (1..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// `http://host:port` → `host:port`.
pub fn split_url(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("http://")?;
    let (host, port) = rest.rsplit_once(':')?;
    (!host.is_empty() && !rest.contains('/') && port.parse::<u16>().is_ok()).then_some(rest)
}

/// A member's state as `keel cluster status` shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeState {
    /// A member whose lease is alive.
    Active,
    /// A new member, alive, not yet let in: it owns no key.
    Joining,
    /// A member being drained (`keel cluster decommission`): it owns no key and moves what it
    /// holds to the owners.
    Leaving,
    /// A member whose lease expired (or that never came back): its keys cannot be served.
    Down,
}

impl NodeState {
    pub fn name(self) -> &'static str {
        match self {
            NodeState::Active => "active",
            NodeState::Joining => "joining",
            NodeState::Leaving => "leaving",
            NodeState::Down => "down",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    pub id: String,
    pub url: String,
    pub state: NodeState,
    /// Holds no objects (`--gateway`): never an owner.
    pub gateway: bool,
    /// Being drained (`keel cluster decommission`), live or down: never an owner.
    pub leaving: bool,
    /// The id's placement weight seed.
    pub hash: u64,
}

/// One consistent view of the cluster, replaced whole on every change (never changed once
/// `owner` was asked: the placement is derived from `nodes` once).
#[derive(Debug, Default)]
pub struct ClusterMap {
    /// etcd's revision this view reflects.
    pub revision: i64,
    /// Members, by id.
    pub nodes: Vec<Node>,
    /// Bucket records, by name: (etcd's revision of the record's last change, the record).
    pub buckets: BTreeMap<String, (i64, Vec<u8>)>,
    /// Members that may hold objects another node owns (after a membership change), with the
    /// etcd revision of that change: while any does, a key's owner may not have it yet.
    pub rebalance: BTreeMap<String, i64>,
    /// Each member's rebalance progress as it reports it (`rebalance::Progress`).
    pub progress: BTreeMap<String, String>,
    /// Members that (re)registered and have not yet reconciled their copies (D38): skipped as
    /// holders of copies buckets' keys.
    pub reconciling: std::collections::BTreeSet<String>,
    /// Each member's count of under-replicated objects (those it is the first holder of), with
    /// how many members were down or reconciling when its pass began and the map's `shape`
    /// then; `None` while its repair pass after a membership change is under way.
    pub under_replicated: BTreeMap<String, Option<(u64, usize, u64)>>,
    /// Each bucket's `copies` prop (0: the nodes' `--copies`), decoded once per map.
    bucket_copies: std::sync::OnceLock<std::collections::HashMap<String, u8>>,
    /// The members keys are placed on (indices into `nodes`) and their placement seeds, derived
    /// once per map on first use (the hot path places every request).
    placement: std::sync::OnceLock<(Vec<usize>, Vec<u64>)>,
}

impl ClusterMap {
    /// The node that owns `bucket/key`: rendezvous hashing over every member that holds data,
    /// live or not (a down owner's keys are unavailable, never written elsewhere: no two owners
    /// of one key). `None` when no member holds data.
    pub fn owner(&self, bucket: &str, key: &str) -> Option<&Node> {
        let (data, ids) = self.placement();
        if data.is_empty() {
            return None;
        }
        Some(&self.nodes[data[engine::placement::owner(ids, bucket, key.as_bytes())]])
    }

    pub fn node(&self, id: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.id == id)
    }

    /// A bucket's `copies` prop as etcd has it (0: the nodes' default).
    pub fn bucket_copies(&self, bucket: &str) -> u8 {
        let all = self.bucket_copies.get_or_init(|| {
            self.buckets
                .iter()
                .filter_map(|(name, (_, rec))| Some((name.clone(), engine::BucketMeta::decode(rec).ok()?.copies)))
                .collect()
        });
        all.get(bucket).copied().unwrap_or(0)
    }

    /// Where `bucket/key`'s `copies` copies live (DESIGN D38). One copy: its owner, live or not
    /// (a down owner's keys are unavailable, never written elsewhere). More: the first
    /// `copies` members of the key's HRW order that are up and reconciled — a member that goes
    /// down (or comes back and has not reconciled yet) is skipped, so the next one takes its
    /// place and the repair copies the keys there. The first is the primary: it takes the
    /// key's writes and reads. Fewer than `copies` when fewer members are up.
    pub fn holders_of(&self, bucket: &str, key: &str, copies: usize) -> Vec<&Node> {
        if copies <= 1 {
            return self.owner(bucket, key).into_iter().collect();
        }
        let (data, ids) = self.placement();
        let order = engine::placement::order(ids, bucket, key.as_bytes());
        order
            .into_iter()
            .map(|i| &self.nodes[data[i]])
            .filter(|n| n.state == NodeState::Active && !self.reconciling.contains(&n.id))
            .take(copies)
            .collect()
    }

    /// What placement with copies depends on, hashed: the members, their states, who
    /// reconciles, and each bucket's copies prop.
    pub fn shape(&self) -> u64 {
        let mut s = String::new();
        for n in &self.nodes {
            s.push_str(&format!("{}:{}:{}:{} ", n.id, n.state.name(), n.leaving, self.reconciling.contains(&n.id)));
        }
        for name in self.buckets.keys() {
            s.push_str(&format!("{name}={} ", self.bucket_copies(name)));
        }
        xxhash_rust::xxh3::xxh3_64(s.as_bytes())
    }

    /// Data members down or reconciling: their copies may be missing or out of date.
    pub fn out_of_date(&self) -> usize {
        self.nodes
            .iter()
            .filter(|n| !n.gateway && (n.state == NodeState::Down || self.reconciling.contains(&n.id)))
            .count()
    }

    /// Whether every object of a bucket with `copies` copies has one on a member neither down
    /// nor reconciling: fewer such members than copies, or fewer more than when every live
    /// member last found nothing short.
    pub fn copies_cover(&self, copies: usize) -> bool {
        let now = self.out_of_date();
        if now < copies {
            return true;
        }
        let live = |id: &String| self.node(id).is_some_and(|n| n.state != NodeState::Down);
        let reports: Vec<&Option<(u64, usize, u64)>> =
            self.under_replicated.iter().filter(|(id, _)| live(id)).map(|(_, r)| r).collect();
        let whole_with = reports.iter().map(|r| r.filter(|(short, _, _)| *short == 0).map(|(_, out, _)| out));
        match whole_with.collect::<Option<Vec<usize>>>() {
            Some(outs) if !outs.is_empty() => now - outs.into_iter().min().unwrap_or(0).min(now) < copies,
            _ => false,
        }
    }

    /// The first `copies` members of `bucket/key`'s HRW order over the data members, up or not:
    /// where its copies live when every member is up (the members a missed change was made on).
    pub fn placed_on(&self, bucket: &str, key: &str, copies: usize) -> Vec<&Node> {
        let (data, ids) = self.placement();
        let order = engine::placement::order(ids, bucket, key.as_bytes());
        order.into_iter().take(copies).map(|i| &self.nodes[data[i]]).collect()
    }

    fn placement(&self) -> &(Vec<usize>, Vec<u64>) {
        self.placement.get_or_init(|| {
            let data: Vec<usize> = (0..self.nodes.len()).filter(|&i| self.nodes[i].owns_keys()).collect();
            let ids = data.iter().map(|&i| self.nodes[i].hash).collect();
            (data, ids)
        })
    }

    /// Whether objects may lie elsewhere than on their owner (a rebalance is under way).
    pub fn rebalancing(&self) -> bool {
        !self.rebalance.is_empty()
    }

    /// Members that may hold objects (every one but gateways).
    pub fn holders(&self) -> impl Iterator<Item = &Node> {
        self.nodes.iter().filter(|n| !n.gateway)
    }
}

impl Node {
    /// Whether keys are placed on this member: it holds data and is neither joining nor leaving.
    pub fn owns_keys(&self) -> bool {
        !self.gateway && !self.leaving && self.state != NodeState::Joining
    }
}

/// The placement seed of a node id.
pub fn node_hash(id: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64_with_seed(id.as_bytes(), 0x6e6f_6465)
}

/// What shards see of the cluster.
pub struct Cluster {
    pub config: ClusterConfig,
    map: ArcSwap<ClusterMap>,
    /// The node-to-node HMAC key (from etcd).
    secret: Vec<u8>,
    /// Whether the agent's last exchange with etcd succeeded.
    etcd_ok: AtomicBool,
    /// Decommissioned: the member record is gone.
    removed: AtomicBool,
    /// When it last did (ms since the epoch).
    etcd_ok_ms: std::sync::atomic::AtomicU64,
    /// etcd answers but has no leader (quorum lost): the map cannot change meanwhile.
    quorum_lost: AtomicBool,
    /// Why etcd is unreachable, for /health.
    etcd_error: std::sync::Mutex<String>,
    /// The etcd revision of each bucket record this node's store holds (an older one never
    /// replaces a newer one).
    applied: std::sync::Mutex<std::collections::HashMap<String, i64>>,
    /// Counts the bucket records applied here: a "no such bucket" remembered before the last
    /// one may be out of date.
    buckets_applied: std::sync::atomic::AtomicU64,
    /// Buckets being made here from a cluster record right now (`apply_bucket`): a request
    /// applying the same record waits for the bucket instead of finding none.
    making: Arc<crate::flights::Flights<String>>,
    /// What this node's rebalance knows (keys deleted meanwhile, completions to move).
    pub moves: rebalance::Moves,
    /// Object writes in progress here (a rebalance waits for those begun under an older map).
    pub writes: rebalance::Writes,
    pub agent: Agent,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster").field("config", &self.config).finish()
    }
}

impl Cluster {
    /// The current map (lock-free).
    pub fn map(&self) -> Arc<ClusterMap> {
        self.map.load_full()
    }

    pub fn me(&self) -> &str {
        &self.config.node_id
    }

    pub fn etcd_ok(&self) -> bool {
        self.etcd_ok.load(Ordering::Relaxed)
    }

    pub fn etcd_error(&self) -> String {
        self.etcd_error.lock().map(|e| e.clone()).unwrap_or_default()
    }

    /// Whether this node may place writes (its map is current): etcd answers; or it answered
    /// less than a lease's life ago (a member joining in that window, an operator's act, is the
    /// one change it could miss); or etcd lost its quorum (then nothing in it can change).
    pub fn may_write(&self) -> bool {
        let recent = crate::time::now_ms().saturating_sub(self.etcd_ok_ms.load(Ordering::Relaxed))
            < self.config.lease_ttl_secs * 1000;
        self.etcd_ok() || recent || self.quorum_lost.load(Ordering::Relaxed)
    }

    pub fn quorum_lost(&self) -> bool {
        self.quorum_lost.load(Ordering::Relaxed)
    }

    pub fn set_quorum_lost(&self, lost: bool) {
        self.quorum_lost.store(lost, Ordering::Relaxed);
    }

    pub fn set_etcd(&self, ok: Result<(), String>) {
        self.etcd_ok.store(ok.is_ok(), Ordering::Relaxed);
        if ok.is_ok() {
            self.etcd_ok_ms.store(crate::time::now_ms(), Ordering::Relaxed);
            self.quorum_lost.store(false, Ordering::Relaxed);
        }
        if let (Err(e), Ok(mut slot)) = (ok, self.etcd_error.lock()) {
            *slot = e;
        }
    }

    pub fn publish(&self, map: ClusterMap) {
        if map.node(self.me()).is_none() && !self.removed() {
            tracing::error!(node = self.me(), "cluster: this node was decommissioned; it serves nothing from now on");
            self.removed.store(true, Ordering::Relaxed);
        }
        self.map.store(Arc::new(map));
    }

    /// How many copies `bucket`'s objects want across nodes: its prop, else `--copies`.
    pub fn copies_of(&self, map: &ClusterMap, bucket: &str) -> usize {
        match map.bucket_copies(bucket) {
            0 => usize::from(self.config.copies.max(1)),
            n => usize::from(n),
        }
    }

    /// Whether the copies machinery (D38) keeps `bucket`: it wants copies, or its `copies` prop
    /// is set at all — `copies=1` set on a bucket that had two keeps its deletes reaching every
    /// member and the repair dropping the extra copies (left alone they would be dead weight,
    /// and a key deleted meanwhile could come back from one if copies went up again).
    pub fn copies_managed(&self, map: &ClusterMap, bucket: &str) -> bool {
        map.bucket_copies(bucket) >= 1 || self.copies_of(map, bucket) > 1
    }

    /// The node that takes `bucket/key`'s requests: its owner, or with copies its first live
    /// holder (`ClusterMap::holders_of`).
    pub fn primary<'m>(&self, map: &'m ClusterMap, bucket: &str, key: &str) -> Option<&'m Node> {
        match self.copies_of(map, bucket) {
            // Every request of a one-copy bucket: no placement order, no allocation.
            1 => map.owner(bucket, key),
            n => map.holders_of(bucket, key, n).into_iter().next(),
        }
    }

    /// The `x-keel-peer` value for a request this node sends.
    pub fn peer_token(&self, method: &str, target: &str) -> String {
        peer_token_for(&self.secret, self.me(), method, target)
    }

    /// Whether this node was decommissioned (its member record is gone): it serves nothing.
    pub fn removed(&self) -> bool {
        self.removed.load(Ordering::Relaxed)
    }

    /// Whether a request's `x-keel-peer` value was made with the cluster secret for this method
    /// and target, less than `PEER_SKEW_SECS` away. Not checked against this node's map: a
    /// member that joined a moment ago may not be in it yet. (Failures are logged at debug level
    /// only: anyone can send a bad token.)
    pub fn peer_check(&self, value: &str, method: &str, target: &str) -> bool {
        let mut it = value.split(' ');
        let (Some(id), Some(ts), Some(mac), None) = (it.next(), it.next(), it.next(), it.next()) else {
            return false;
        };
        let Ok(ts) = ts.parse::<i64>() else { return false };
        let now = (crate::time::now_ms() / 1000) as i64;
        if (now - ts).abs() > PEER_SKEW_SECS {
            tracing::debug!(from = id, skew = now - ts, "cluster: a node-to-node token out of time");
            return false;
        }
        let want = peer_mac(&self.secret, id, ts, method, target);
        // Constant time.
        let same = want.len() == mac.len() && want.bytes().zip(mac.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0;
        if !same {
            tracing::debug!(from = id, "cluster: a node-to-node token with a wrong MAC");
        }
        same
    }
}

/// What a node-to-node call's token signs besides its method: the target and the SHA-256 of
/// its body (a captured token cannot be replayed with another body).
pub fn peer_signed_target(target: &str, body: &[u8]) -> String {
    use sha2::Digest;
    format!("{target} {}", hex::encode(Sha256::digest(body)))
}

/// An `x-keel-peer` value made with `secret` as member `id`.
pub fn peer_token_for(secret: &[u8], id: &str, method: &str, target: &str) -> String {
    let now = (crate::time::now_ms() / 1000) as i64;
    format!("{id} {now} {}", peer_mac(secret, id, now, method, target))
}

fn peer_mac(secret: &[u8], id: &str, ts: i64, method: &str, target: &str) -> String {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes any key length");
    m.update(format!("{id}\n{ts}\n{method}\n{target}").as_bytes());
    hex::encode(m.finalize().into_bytes())
}

/// The cluster identity kept in a member's first mountpath (`keel-cluster`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stamp {
    pub cluster: String,
    pub cluster_id: String,
    pub node_id: String,
    /// The lease this node last held (so a restart within the lease's life takes its place).
    pub lease: i64,
}

impl Stamp {
    pub fn path(first_mountpath: &Path) -> PathBuf {
        first_mountpath.join(STAMP_FILE)
    }

    pub fn read(first_mountpath: &Path) -> Result<Option<Stamp>, String> {
        let path = Stamp::path(first_mountpath);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        Stamp::parse(&text).map(Some).map_err(|e| format!("{} {e}", path.display()))
    }

    /// The stamp's text form: `cluster`, `cluster-id`, `node` and `lease` lines.
    pub fn parse(text: &str) -> Result<Stamp, String> {
        let mut s = Stamp::default();
        for line in text.lines() {
            match line.split_once(' ') {
                Some(("cluster", v)) => s.cluster = v.to_owned(),
                Some(("cluster-id", v)) => s.cluster_id = v.to_owned(),
                Some(("node", v)) => s.node_id = v.to_owned(),
                Some(("lease", v)) => s.lease = v.parse().unwrap_or(0),
                _ => {}
            }
        }
        let one_word = |v: &str| !v.is_empty() && !v.contains(char::is_whitespace);
        if !one_word(&s.cluster) || !one_word(&s.cluster_id) || !one_word(&s.node_id) {
            return Err("is malformed".to_owned());
        }
        Ok(s)
    }

    pub fn encode(&self) -> String {
        format!(
            "cluster {}\ncluster-id {}\nnode {}\nlease {}\n",
            self.cluster, self.cluster_id, self.node_id, self.lease
        )
    }

    pub fn write(&self, first_mountpath: &Path) -> Result<(), String> {
        let path = Stamp::path(first_mountpath);
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, self.encode())
            .and_then(|()| std::fs::File::open(&tmp)?.sync_all())
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))
    }

    /// Refuses data that belongs to another cluster or another node.
    pub fn check(&self, cluster: &str, cluster_id: &str, node_id: &str, dir: &Path) -> Result<(), String> {
        if self.cluster != cluster || self.cluster_id != cluster_id {
            return Err(format!(
                "{} belongs to cluster {:?} (id {}), not to {cluster:?} (id {cluster_id}): \
                 start this node on its own data, or on empty mountpaths",
                dir.display(),
                self.cluster,
                self.cluster_id
            ));
        }
        if self.node_id != node_id {
            return Err(format!(
                "{} holds node {:?}'s data, not {node_id:?}'s: start it with --node-id {}",
                dir.display(),
                self.node_id,
                self.node_id
            ));
        }
        Ok(())
    }
}

/// Starts the cluster agent: registers this node, loads the map, and keeps both current.
pub fn start(config: ClusterConfig, first_mountpath: &Path) -> Result<Arc<Cluster>, String> {
    let (agent, boot) = Agent::start(&config, first_mountpath)?;
    let cluster = Arc::new(Cluster {
        config,
        map: ArcSwap::from_pointee(boot.map),
        secret: boot.secret,
        etcd_ok: AtomicBool::new(true),
        etcd_ok_ms: std::sync::atomic::AtomicU64::new(crate::time::now_ms()),
        quorum_lost: AtomicBool::new(false),
        removed: AtomicBool::new(false),
        etcd_error: std::sync::Mutex::new(String::new()),
        applied: Default::default(),
        buckets_applied: Default::default(),
        making: Default::default(),
        moves: Default::default(),
        writes: Default::default(),
        agent,
    });
    cluster.agent.run_background(&cluster, boot.lease);
    Ok(cluster)
}

/// What the agent learnt at start.
pub struct Boot {
    pub map: ClusterMap,
    pub secret: Vec<u8>,
    pub lease: i64,
}

/// Errors of cluster operations, in domain words (mapped to S3 codes in `s3::error`).
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClusterError {
    /// etcd cannot be reached or has no quorum.
    #[error("the cluster's metadata store (etcd) is unreachable: {0}")]
    Unavailable(String),
    /// The owner node of the key is down or unreachable.
    #[error("node {0} that holds this key is unreachable: {1}")]
    NodeUnreachable(String, String),
    /// Someone else's change won the race.
    #[error("conflict: {0}")]
    Conflict(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_checked() {
        let ok = ClusterConfig::resolve(
            Some("http://127.0.0.1:2379,http://127.0.0.1:2380"),
            Some("n1"),
            Some("http://127.0.0.1:9001/"),
            None,
            None,
            (false, false),
        )
        .unwrap()
        .unwrap();
        assert_eq!(ok.endpoints.len(), 2);
        assert_eq!(ok.advertise, "http://127.0.0.1:9001");
        assert_eq!((ok.name.as_str(), ok.lease_ttl_secs), ("keel", 10));
        assert!(ClusterConfig::resolve(None, None, None, None, None, (false, false)).unwrap().is_none());
        assert!(ClusterConfig::resolve(None, Some("n1"), None, None, None, (false, false)).is_err());
        assert!(
            ClusterConfig::resolve(Some("http://e:1"), None, Some("http://a:1"), None, None, (false, false)).is_err()
        );
        assert!(
            ClusterConfig::resolve(Some("http://e:1"), Some("a b"), Some("http://a:1"), None, None, (false, false))
                .is_err()
        );
        assert!(
            ClusterConfig::resolve(Some("http://e:1"), Some("n"), Some("a:1"), None, None, (false, false)).is_err()
        );
        assert!(
            ClusterConfig::resolve(Some("e:1"), Some("n"), Some("http://a:1"), None, None, (false, false)).is_err()
        );
        assert!(
            ClusterConfig::resolve(Some("http://e:1"), Some("n"), Some("http://a:1"), None, Some(1), (false, false))
                .is_err()
        );
    }

    #[test]
    fn owners_spread_and_move_little_when_a_node_joins() {
        let node = |id: &str| Node {
            id: id.into(),
            url: String::new(),
            state: NodeState::Active,
            gateway: false,
            leaving: false,
            hash: node_hash(id),
        };
        // A map is never changed once placed on (its placement is derived once): each
        // membership is a map of its own.
        let map_of = |nodes: Vec<Node>| ClusterMap { nodes, ..Default::default() };
        let map = map_of(vec![node("a"), node("b"), node("c")]);
        let keys: Vec<String> = (0..3000).map(|i| format!("k{i}")).collect();
        let before: Vec<String> = keys.iter().map(|k| map.owner("b", k).unwrap().id.clone()).collect();
        for id in ["a", "b", "c"] {
            let n = before.iter().filter(|o| *o == id).count();
            assert!((800..1200).contains(&n), "{id} owns {n} of 3000");
        }
        let mut gw = node("gw");
        gw.gateway = true;
        let map = map_of(vec![node("a"), node("b"), node("c"), gw]);
        assert!(keys.iter().zip(&before).all(|(k, o)| map.owner("b", k).unwrap().id == *o), "gateways own nothing");
        let map = map_of(vec![node("a"), node("b"), node("c"), node("d")]);
        let moved = keys.iter().zip(&before).filter(|(k, o)| map.owner("b", k).unwrap().id != **o).count();
        // Only keys that now weigh highest on the new node move: about a quarter.
        assert!((600..900).contains(&moved), "{moved} of 3000 moved");
        assert!(keys.iter().zip(&before).all(|(k, o)| {
            let now = &map.owner("b", k).unwrap().id;
            now == o || now == "d"
        }));
    }

    #[test]
    fn copies_go_to_distinct_live_reconciled_members() {
        let node = |id: &str, state| Node {
            id: id.into(),
            url: String::new(),
            state,
            gateway: false,
            leaving: false,
            hash: node_hash(id),
        };
        let ids = ["a", "b", "c", "d"];
        let map = ClusterMap { nodes: ids.iter().map(|i| node(i, NodeState::Active)).collect(), ..Default::default() };
        let keys: Vec<String> = (0..2000).map(|i| format!("k{i}")).collect();
        let mut seconds = std::collections::HashMap::new();
        for k in &keys {
            let h: Vec<&str> = map.holders_of("b", k, 2).iter().map(|n| n.id.as_str()).collect();
            assert_eq!(h.len(), 2);
            assert_ne!(h[0], h[1]);
            // The primary is the one-copy owner: adding copies moves no key's requests.
            assert_eq!(h[0], map.owner("b", k).unwrap().id);
            *seconds.entry(h[1].to_owned()).or_insert(0) += 1;
            assert_eq!(map.holders_of("b", k, 1).len(), 1);
            assert_eq!(map.holders_of("b", k, 9).len(), 4, "never more than the members");
        }
        assert!(seconds.values().all(|n| (350..650).contains(n)), "{seconds:?}");
        // One member down, another reconciling: each key's holders are the next live ones in
        // its order, and only keys they held move.
        let mut nodes: Vec<Node> = ids.iter().map(|i| node(i, NodeState::Active)).collect();
        nodes[2].state = NodeState::Down;
        let mut degraded = ClusterMap { nodes, ..Default::default() };
        degraded.reconciling.insert("d".into());
        for k in &keys {
            let before: Vec<&str> = map.holders_of("b", k, 2).iter().map(|n| n.id.as_str()).collect();
            let after: Vec<&str> = degraded.holders_of("b", k, 2).iter().map(|n| n.id.as_str()).collect();
            assert_eq!(after.len(), 2);
            assert!(after.iter().all(|h| *h == "a" || *h == "b"));
            if !before.contains(&"c") && !before.contains(&"d") {
                assert_eq!(before, after);
            }
        }
        // Every key has a copy on a live, reconciled member while fewer than `copies` members
        // are out, or fewer more than when every live member last found nothing short.
        assert_eq!(degraded.out_of_date(), 2);
        assert!(degraded.copies_cover(3) && !degraded.copies_cover(2));
        degraded.under_replicated.insert("a".into(), Some((0, 1, 0)));
        degraded.under_replicated.insert("b".into(), Some((0, 1, 0)));
        degraded.under_replicated.insert("c".into(), Some((7, 0, 0)));
        assert!(degraded.copies_cover(2), "c is down: its report does not count");
        degraded.under_replicated.insert("b".into(), Some((1, 1, 0)));
        assert!(!degraded.copies_cover(2));
        degraded.under_replicated.insert("b".into(), None);
        assert!(!degraded.copies_cover(2));
        // With one copy a down owner stays the owner (its keys are unavailable, not moved).
        let down = degraded.nodes.iter().find(|n| n.id == "c").unwrap();
        assert!(keys.iter().any(|k| degraded.holders_of("b", k, 1)[0].id == down.id));
    }

    #[test]
    fn stamps_refuse_foreign_data() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Stamp::read(dir.path()).unwrap(), None);
        let s = Stamp { cluster: "keel".into(), cluster_id: "c1".into(), node_id: "n1".into(), lease: 7 };
        s.write(dir.path()).unwrap();
        let back = Stamp::read(dir.path()).unwrap().unwrap();
        assert_eq!(back, s);
        assert!(back.check("keel", "c1", "n1", dir.path()).is_ok());
        assert!(back.check("keel", "c2", "n1", dir.path()).unwrap_err().contains("belongs to cluster"));
        assert!(back.check("keel", "c1", "n2", dir.path()).unwrap_err().contains("--node-id n1"));
    }
}
