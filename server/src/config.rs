//! `keel serve` settings: command-line flags over a TOML file over defaults.
//!
//! The file's keys are the long flags with `-` turned into `_`; repeatable flags become arrays
//! under their plural (`mountpaths`, `users`). Unknown keys are errors that name their line.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::Args;
use serde::Deserialize;

/// Flags of `keel serve`. Every one is optional so that a config file can supply it.
#[derive(Args, Debug, Clone, Default)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long)]
    pub listen: Option<String>,
    /// A data directory on its own drive; repeat for several drives [default: ./keel-data].
    #[arg(long = "mountpath", value_name = "DIR")]
    pub mountpaths: Vec<PathBuf>,
    /// Shards (one OS thread each) [default: all cores].
    #[arg(long)]
    pub threads: Option<usize>,
    /// Pin shard i to the i-th allowed CPU: `on`, `off`, or `auto` (DESIGN D39) [default: auto].
    #[arg(long, value_name = "auto|on|off")]
    pub pin: Option<String>,
    /// `always`: data and index are durable before 200; `none`: page cache only [default: always].
    #[arg(long, value_name = "always|none")]
    pub sync: Option<String>,
    /// Access key of the (first) user.
    #[arg(long)]
    pub access_key: Option<String>,
    /// Secret key of the (first) user.
    #[arg(long)]
    pub secret_key: Option<String>,
    /// A user as ACCESS_KEY:SECRET_KEY (split at the first ':'); repeatable.
    #[arg(long = "user", value_name = "AK:SK")]
    pub users: Vec<String>,
    /// An access key that may change any bucket's properties through the admin endpoint
    /// (`/_keel/...`); repeatable. Bucket owners may always change their own buckets'.
    #[arg(long = "admin", value_name = "AK")]
    pub admins: Vec<String>,
    /// Accept unsigned requests and ignore signatures.
    #[arg(long)]
    pub anonymous: bool,
    /// Serve the S3 API under this path prefix, e.g. /s3 (AIStore-style endpoints).
    #[arg(long)]
    pub s3_prefix: Option<String>,
    /// Base domain for virtual-hosted-style requests (bucket.DOMAIN).
    #[arg(long)]
    pub domain: Option<String>,
    /// Region reported to clients [default: us-east-1].
    #[arg(long)]
    pub region: Option<String>,
    /// Smallest non-final multipart part, in bytes (K/M/G/KiB/MiB/GiB suffixes accepted)
    /// [default: 5MiB, as on S3; 0 accepts any size, as AIStore does].
    #[arg(long, value_name = "BYTES")]
    pub min_part_size: Option<String>,
    /// Abort multipart uploads older than this many seconds, in the background; 0 never
    /// [default: 604800, a week].
    #[arg(long, value_name = "SECS")]
    pub upload_ttl: Option<u64>,
    /// How long a "day" of lifecycle rules is, in seconds (shorter for tests, as RGW's debug
    /// interval) [default: 86400].
    #[arg(long, value_name = "SECS")]
    pub lifecycle_day_secs: Option<u64>,
    /// Object bodies (or ranges) at least this long are sent file → pipe → socket without a
    /// user-space copy; 0 disables splicing [default: 256KiB].
    #[arg(long, value_name = "BYTES")]
    pub splice_min: Option<String>,
    /// Check every object against its stored checksum before serving it (per part for
    /// multipart objects); corrupt objects answer 500 instead of sending bad bytes.
    #[arg(long)]
    pub validate_on_read: bool,
    /// Connections one shard serves at once; more are answered 503 and closed [default: 16384].
    #[arg(long, value_name = "N")]
    pub max_connections: Option<usize>,
    /// Log lines as `text` or `json` [default: text]; the level comes from RUST_LOG.
    #[arg(long, value_name = "text|json")]
    pub log_format: Option<String>,
    /// Write data files with O_DIRECT: no page-cache copy on PUT (reads still use the cache).
    #[arg(long)]
    pub odirect: bool,
    /// Bound on one call to a backend bucket's remote, in seconds; an uncached object whose
    /// remote does not answer in time is 504 [default: 30].
    #[arg(long, value_name = "SECS")]
    pub backend_timeout: Option<u64>,
    /// When a mountpath's filesystem is this full (percent), cached copies of backend buckets'
    /// objects are evicted, least recently read first, down to --space-lowwm [default: 90].
    #[arg(long, value_name = "PERCENT")]
    pub space_highwm: Option<u8>,
    /// Where eviction stops (percent full) [default: 75].
    #[arg(long, value_name = "PERCENT")]
    pub space_lowwm: Option<u8>,
    /// Join a keel cluster whose membership and buckets live in these etcd endpoints
    /// (http://HOST:PORT[,…]); needs --node-id and --advertise.
    #[arg(long, value_name = "URLS")]
    pub cluster: Option<String>,
    /// This node's id in the cluster (letters, digits, '-', '_', '.'); kept with its data.
    #[arg(long, value_name = "ID")]
    pub node_id: Option<String>,
    /// The URL other nodes (and redirected clients) reach this node at, http://HOST:PORT.
    #[arg(long, value_name = "URL")]
    pub advertise: Option<String>,
    /// Several clusters can share one etcd [default: keel].
    #[arg(long, value_name = "NAME")]
    pub cluster_name: Option<String>,
    /// Seconds a node stays a live member without reaching etcd [default: 10].
    #[arg(long, value_name = "SECS")]
    pub lease_ttl: Option<u64>,
    /// Answer requests for keys another node owns with a 307 to it instead of forwarding.
    #[arg(long)]
    pub redirect: bool,
    /// Hold no objects: take requests and forward every key to its owner.
    #[arg(long)]
    pub gateway: bool,
    /// Bytes per second this node moves to other nodes when membership changes (0: unpaced)
    /// [default: 256MiB].
    #[arg(long, value_name = "BYTES")]
    pub rebalance_rate: Option<String>,
    /// Copies of every object, on distinct mountpaths (a bucket's `copies` prop overrides);
    /// lost copies are made again in the background [default: 1].
    #[arg(long, value_name = "N")]
    pub copies: Option<u8>,
    /// Bytes per second the background repair copies (0: unpaced) [default: 256MiB].
    #[arg(long, value_name = "BYTES")]
    pub repair_rate: Option<String>,
    /// Seconds between the repair's passes over every copies bucket when nothing asks for one
    /// sooner (a failed mountpath, a prop change, a bad copy read) [default: 60].
    #[arg(long, value_name = "SECS")]
    pub repair_interval: Option<u64>,
    /// Serve HTTPS with this PEM certificate chain (needs --tls-key); read again on SIGHUP.
    #[arg(long, value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert (PKCS#8, PKCS#1 or SEC1).
    #[arg(long, value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// TOML file with any of the settings above, and `[backends.NAME]` tables.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// The config file's shape.
#[derive(Deserialize, Debug, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<String>,
    pub mountpaths: Option<Vec<PathBuf>>,
    pub threads: Option<usize>,
    pub pin: Option<String>,
    pub sync: Option<String>,
    pub access_key: Option<String>,
    pub secret_key: Option<String>,
    pub users: Option<Vec<UserEntry>>,
    pub admins: Option<Vec<String>>,
    pub anonymous: Option<bool>,
    pub s3_prefix: Option<String>,
    pub domain: Option<String>,
    pub region: Option<String>,
    pub min_part_size: Option<toml::Value>,
    pub upload_ttl: Option<u64>,
    pub lifecycle_day_secs: Option<u64>,
    pub splice_min: Option<toml::Value>,
    pub odirect: Option<bool>,
    pub validate_on_read: Option<bool>,
    pub log_format: Option<String>,
    pub max_connections: Option<usize>,
    pub backend_timeout: Option<u64>,
    pub space_highwm: Option<u8>,
    pub space_lowwm: Option<u8>,
    pub cluster: Option<String>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub node_id: Option<String>,
    pub advertise: Option<String>,
    pub cluster_name: Option<String>,
    pub lease_ttl: Option<u64>,
    pub redirect: Option<bool>,
    pub gateway: Option<bool>,
    pub rebalance_rate: Option<toml::Value>,
    pub copies: Option<u8>,
    pub repair_rate: Option<toml::Value>,
    pub repair_interval: Option<u64>,
    /// Remote stores backend buckets may name (`keel bucket props B backend=NAME/BUCKET`).
    pub backends: Option<std::collections::BTreeMap<String, crate::backend::BackendTable>>,
}

/// A user in the config file: `"AK:SK"`, or a table
/// `{ access_key = "AK", secret_key = "SK", admin = true }`.
#[derive(Deserialize, Debug, Clone)]
#[serde(untagged)]
pub enum UserEntry {
    Pair(String),
    Table(UserTable),
}

#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct UserTable {
    pub access_key: String,
    pub secret_key: String,
    #[serde(default)]
    pub admin: bool,
}

/// The effective settings.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    pub mountpaths: Vec<PathBuf>,
    pub threads: usize,
    /// Whether shard i runs pinned to the i-th allowed CPU.
    pub pin: bool,
    pub sync: engine::SyncMode,
    /// Users from flags, file and environment (before any generated pair).
    pub users: Vec<(String, String)>,
    /// Access keys allowed to change any bucket's properties (`--admin`, `admins`, `admin = true`).
    pub admins: Vec<String>,
    pub anonymous: bool,
    pub s3_prefix: String,
    pub domain: Option<String>,
    pub region: String,
    pub min_part_size: u64,
    pub upload_ttl_secs: u64,
    pub lifecycle_day_secs: u64,
    pub splice_min: u64,
    pub odirect: bool,
    pub validate_on_read: bool,
    pub log_json: bool,
    pub max_connections: usize,
    pub backends: Vec<crate::backend::BackendConfig>,
    pub backend_timeout: std::time::Duration,
    /// Eviction of cached copies: (start above, stop at) percent of a mountpath's filesystem.
    pub space_watermarks: (u8, u8),
    /// `--cluster` and its companions (`None`: a single node).
    pub cluster: Option<crate::cluster::ClusterConfig>,
    /// Copies of each object on distinct mountpaths (`--copies`).
    pub copies: u8,
    /// Bytes per second the repair of lost copies moves (0: unpaced).
    pub repair_rate: u64,
    /// Time between repair passes when nothing asks for one sooner.
    pub repair_interval: std::time::Duration,
    /// HTTPS: the certificate chain and key files (`--tls-cert`, `--tls-key`).
    pub tls: Option<(PathBuf, PathBuf)>,
}

/// Parses a byte count: digits with an optional K, M, G (powers of 1000) or KiB, MiB, GiB
/// (powers of 1024) suffix.
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("{s:?} is not a byte count"))?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "K" | "KB" => 1000,
        "M" | "MB" => 1000 * 1000,
        "G" | "GB" => 1000 * 1000 * 1000,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        other => return Err(format!("unknown unit {other:?} in {s:?}")),
    };
    n.checked_mul(mult).ok_or_else(|| format!("{s:?} is too large"))
}

/// A byte-count setting from a flag (string) or the file (integer or string).
fn bytes_setting(name: &str, flag: &Option<String>, file: &Option<toml::Value>) -> Result<Option<u64>, String> {
    match (flag, file) {
        (Some(s), _) => parse_bytes(s).map(Some).map_err(|e| format!("--{}: {e}", name.replace('_', "-"))),
        (None, Some(toml::Value::Integer(n))) if *n >= 0 => Ok(Some(*n as u64)),
        (None, Some(toml::Value::String(s))) => parse_bytes(s).map(Some).map_err(|e| format!("{name}: {e}")),
        (None, Some(_)) => Err(format!("{name} must be a byte count")),
        (None, None) => Ok(None),
    }
}

pub fn read_file(path: &Path) -> Result<FileConfig, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    parse_file(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Parses a config file; errors name the line.
pub fn parse_file(text: &str) -> Result<FileConfig, String> {
    toml::from_str::<FileConfig>(text).map_err(|e| {
        let line =
            e.span().map(|s| text.as_bytes()[..s.start.min(text.len())].iter().filter(|&&b| b == b'\n').count() + 1);
        match line {
            Some(l) => format!("line {l}: {}", e.message()),
            None => e.message().to_owned(),
        }
    })
}

fn split_user(s: &str) -> Result<(String, String), String> {
    match s.split_once(':') {
        Some((ak, sk)) if !ak.is_empty() && !sk.is_empty() => Ok((ak.to_owned(), sk.to_owned())),
        _ => Err(format!("a user must be ACCESS_KEY:SECRET_KEY, got {s:?}")),
    }
}

/// Users from flags, file and environment, and the admins among them.
fn users_and_admins(
    args: &ServeArgs,
    file: &FileConfig,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(Vec<(String, String)>, Vec<String>), String> {
    let mut users = Vec::new();
    let ak = args.access_key.clone().or(file.access_key.clone());
    let sk = args.secret_key.clone().or(file.secret_key.clone());
    match (ak, sk) {
        (Some(a), Some(s)) => users.push((a, s)),
        (None, None) => {}
        _ => return Err("--access-key and --secret-key go together".to_owned()),
    }
    let mut admins: Vec<String> = args.admins.iter().chain(file.admins.iter().flatten()).cloned().collect();
    for u in &args.users {
        users.push(split_user(u)?);
    }
    for u in file.users.iter().flatten() {
        match u {
            UserEntry::Pair(p) => users.push(split_user(p)?),
            UserEntry::Table(t) => {
                if t.access_key.is_empty() || t.secret_key.is_empty() {
                    return Err("a user needs a non-empty access_key and secret_key".to_owned());
                }
                users.push((t.access_key.clone(), t.secret_key.clone()));
                if t.admin {
                    admins.push(t.access_key.clone());
                }
            }
        }
    }
    if let (Some(a), Some(s)) = (env("KEEL_ACCESS_KEY"), env("KEEL_SECRET_KEY"))
        && !a.is_empty()
        && !s.is_empty()
    {
        users.push((a, s));
    }
    Ok((users, admins))
}

/// The `[backends.NAME]` tables, checked, and the bound on one remote call.
fn backends_of(
    args: &ServeArgs,
    file: &FileConfig,
) -> Result<(Vec<crate::backend::BackendConfig>, std::time::Duration), String> {
    let backends = file
        .backends
        .iter()
        .flatten()
        .map(|(name, t)| crate::backend::BackendConfig::from_table(name, t.clone()))
        .collect::<Result<Vec<_>, _>>()?;
    let timeout = match args.backend_timeout.or(file.backend_timeout) {
        Some(0) => return Err("--backend-timeout must be at least 1 second".to_owned()),
        Some(s) => std::time::Duration::from_secs(s),
        None => crate::backend::DEFAULT_TIMEOUT,
    };
    Ok((backends, timeout))
}

/// `--space-highwm` / `--space-lowwm`: AIStore's 90/75 by default; low below high, high ≤ 100.
fn watermarks_of(args: &ServeArgs, file: &FileConfig) -> Result<(u8, u8), String> {
    let high = args.space_highwm.or(file.space_highwm).unwrap_or(90);
    let low = args.space_lowwm.or(file.space_lowwm).unwrap_or(75.min(high.saturating_sub(1)));
    if high == 0 || high > 100 || low >= high {
        return Err(format!("space watermarks must satisfy low < high <= 100 (percent), got low {low}, high {high}"));
    }
    Ok((high, low))
}

impl ServeConfig {
    /// Merges flags over the file (if any) over the environment over defaults.
    pub fn resolve(args: &ServeArgs, env: &dyn Fn(&str) -> Option<String>) -> Result<ServeConfig, String> {
        let file = match &args.config {
            Some(p) => read_file(p)?,
            None => FileConfig::default(),
        };
        let listen_s = args.listen.clone().or(file.listen.clone()).unwrap_or_else(|| "127.0.0.1:8080".to_owned());
        let listen: SocketAddr =
            listen_s.parse().map_err(|_| format!("--listen: {listen_s:?} is not an address like 127.0.0.1:8080"))?;
        let mountpaths = if !args.mountpaths.is_empty() {
            args.mountpaths.clone()
        } else {
            file.mountpaths.clone().filter(|m| !m.is_empty()).unwrap_or_else(|| vec![PathBuf::from("keel-data")])
        };
        let (threads, pin) = threads_and_pin(args, &file)?;
        let sync = match args.sync.clone().or(file.sync.clone()).as_deref() {
            None | Some("always") => engine::SyncMode::Always,
            Some("none") => engine::SyncMode::None,
            Some(other) => return Err(format!("--sync must be always or none, got {other:?}")),
        };
        let (users, admins) = users_and_admins(args, &file, env)?;
        let s3_prefix = prefix_of(args.s3_prefix.clone().or(file.s3_prefix.clone()).unwrap_or_default());
        let min_part_size = bytes_setting("min_part_size", &args.min_part_size, &file.min_part_size)?
            .unwrap_or(engine::limits::PART_BYTES_MIN_DEFAULT);
        let splice_min = bytes_setting("splice_min", &args.splice_min, &file.splice_min)?.unwrap_or(256 * 1024);
        let (backends, backend_timeout) = backends_of(args, &file)?;
        let rebalance_rate =
            bytes_setting("rebalance_rate", &args.rebalance_rate, &file.rebalance_rate)?.unwrap_or(256 << 20);
        let copies = args.copies.or(file.copies).unwrap_or(1);
        if copies == 0 || usize::from(copies) > engine::limits::MOUNTPATHS_MAX {
            return Err(format!("--copies must be between 1 and {}", engine::limits::MOUNTPATHS_MAX));
        }
        let clustered = args.cluster.is_some() || file.cluster.is_some();
        // In a cluster copies go to distinct nodes (D38), not drives.
        if usize::from(copies) > mountpaths.len() && !clustered {
            return Err(format!(
                "--copies {copies} needs at least {copies} mountpaths (copies go to distinct drives); {} given",
                mountpaths.len()
            ));
        }
        let repair_rate = bytes_setting("repair_rate", &args.repair_rate, &file.repair_rate)?.unwrap_or(256 << 20);
        let repair_interval =
            std::time::Duration::from_secs(args.repair_interval.or(file.repair_interval).unwrap_or(60).max(1));
        let tls = match (args.tls_cert.clone().or(file.tls_cert.clone()), args.tls_key.clone().or(file.tls_key.clone()))
        {
            (None, None) => None,
            (Some(cert), Some(key)) if !clustered => Some((cert, key)),
            (Some(_), Some(_)) => {
                return Err("--tls-cert: HTTPS is not available in a cluster yet (nodes talk plain HTTP to each other on the same port)".into());
            }
            _ => return Err("--tls-cert and --tls-key go together".into()),
        };
        Ok(ServeConfig {
            tls,
            copies,
            repair_rate,
            repair_interval,
            backends,
            backend_timeout,
            space_watermarks: watermarks_of(args, &file)?,
            cluster: crate::cluster::ClusterConfig::resolve(
                args.cluster.as_deref().or(file.cluster.as_deref()),
                args.node_id.as_deref().or(file.node_id.as_deref()),
                args.advertise.as_deref().or(file.advertise.as_deref()),
                args.cluster_name.as_deref().or(file.cluster_name.as_deref()),
                args.lease_ttl.or(file.lease_ttl),
                (args.redirect || file.redirect.unwrap_or(false), args.gateway || file.gateway.unwrap_or(false)),
            )?
            .map(|c| crate::cluster::ClusterConfig { rebalance_rate, copies, ..c }),
            listen,
            mountpaths,
            threads,
            pin,
            sync,
            users,
            admins,
            anonymous: args.anonymous || file.anonymous.unwrap_or(false),
            s3_prefix,
            domain: args.domain.clone().or(file.domain.clone()),
            region: args.region.clone().or(file.region.clone()).unwrap_or_else(|| "us-east-1".to_owned()),
            min_part_size,
            upload_ttl_secs: args.upload_ttl.or(file.upload_ttl).unwrap_or(7 * 24 * 3600),
            lifecycle_day_secs: args.lifecycle_day_secs.or(file.lifecycle_day_secs).unwrap_or(86_400).max(1),
            splice_min,
            odirect: args.odirect || file.odirect.unwrap_or(false),
            validate_on_read: args.validate_on_read || file.validate_on_read.unwrap_or(false),
            max_connections: args
                .max_connections
                .or(file.max_connections)
                .unwrap_or(crate::limits::CONNECTIONS_PER_SHARD_MAX)
                .max(1),
            log_json: match args.log_format.clone().or(file.log_format.clone()).as_deref() {
                None | Some("text") => false,
                Some("json") => true,
                Some(other) => return Err(format!("--log-format must be text or json, got {other:?}")),
            },
        })
    }
}

/// `--s3-prefix` made `/a/b` (or left empty).
fn prefix_of(mut p: String) -> String {
    if !p.is_empty() {
        if !p.starts_with('/') {
            p.insert(0, '/');
        }
        while p.ends_with('/') {
            p.pop();
        }
    }
    p
}

/// The shard count and whether shards are pinned (`--pin`, DESIGN D39): `auto` pins only when
/// the shards leave a CPU of those allowed to this process free (a client, a benchmark or the
/// kernel's work then has a core the shards never take; all cores pinned lost 15% to an
/// unpinned single shard with the load generator on the same machine).
fn threads_and_pin(args: &ServeArgs, file: &FileConfig) -> Result<(usize, bool), String> {
    let threads =
        args.threads.or(file.threads).unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if threads == 0 || threads > 1024 {
        return Err("--threads must be between 1 and 1024".to_owned());
    }
    let pin = match args.pin.clone().or(file.pin.clone()).as_deref() {
        None | Some("auto") => threads < crate::shard::allowed_cpus().len(),
        Some("on") => true,
        Some("off") => false,
        Some(other) => return Err(format!("--pin must be auto, on or off, got {other:?}")),
    };
    Ok((threads, pin))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn defaults() {
        let c = ServeConfig::resolve(&ServeArgs::default(), &no_env).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.mountpaths, vec![PathBuf::from("keel-data")]);
        assert_eq!(c.sync, engine::SyncMode::Always);
        assert!(c.users.is_empty() && !c.anonymous && c.s3_prefix.is_empty());
        assert_eq!(c.space_watermarks, (90, 75));
    }

    #[test]
    fn copies_need_as_many_mountpaths_unless_on_nodes() {
        let two = vec![PathBuf::from("a"), PathBuf::from("b")];
        let with = |copies: u8, mountpaths: Vec<PathBuf>, cluster: Option<&str>| {
            let args = ServeArgs {
                copies: Some(copies),
                mountpaths,
                cluster: cluster.map(str::to_owned),
                node_id: cluster.map(|_| "n1".into()),
                advertise: cluster.map(|_| "http://127.0.0.1:9000".into()),
                ..Default::default()
            };
            ServeConfig::resolve(&args, &no_env).map(|c| c.copies)
        };
        assert_eq!(with(2, two.clone(), None), Ok(2));
        assert!(with(3, two.clone(), None).unwrap_err().contains("needs at least 3 mountpaths"));
        assert!(with(0, two.clone(), None).unwrap_err().contains("between 1 and"));
        // In a cluster copies go to distinct nodes: the drives do not bound them.
        assert_eq!(with(3, two.clone(), Some("http://127.0.0.1:2379")), Ok(3));
        assert_eq!(ServeConfig::resolve(&ServeArgs::default(), &no_env).unwrap().copies, 1);
    }

    #[test]
    fn tls_files_go_together_and_not_in_a_cluster_yet() {
        let with = |cert: Option<&str>, key: Option<&str>, cluster: Option<&str>| {
            let args = ServeArgs {
                tls_cert: cert.map(PathBuf::from),
                tls_key: key.map(PathBuf::from),
                cluster: cluster.map(str::to_owned),
                node_id: cluster.map(|_| "n1".into()),
                advertise: cluster.map(|_| "http://127.0.0.1:9000".into()),
                ..Default::default()
            };
            ServeConfig::resolve(&args, &no_env).map(|c| c.tls)
        };
        assert_eq!(with(None, None, None), Ok(None));
        assert_eq!(
            with(Some("c.pem"), Some("k.pem"), None),
            Ok(Some((PathBuf::from("c.pem"), PathBuf::from("k.pem"))))
        );
        assert!(with(Some("c.pem"), None, None).unwrap_err().contains("go together"));
        assert!(with(None, Some("k.pem"), None).unwrap_err().contains("go together"));
        let clustered = with(Some("c.pem"), Some("k.pem"), Some("http://127.0.0.1:2379")).unwrap_err();
        assert!(clustered.contains("not available in a cluster"), "{clustered}");
    }

    #[test]
    fn space_watermarks() {
        let with = |high: Option<u8>, low: Option<u8>| {
            let args = ServeArgs { space_highwm: high, space_lowwm: low, ..Default::default() };
            ServeConfig::resolve(&args, &no_env).map(|c| c.space_watermarks)
        };
        assert_eq!(with(Some(60), Some(40)), Ok((60, 40)));
        assert_eq!(with(Some(50), None), Ok((50, 49)), "the default low mark stays below a low high mark");
        assert!(with(Some(50), Some(50)).is_err());
        assert!(with(Some(101), None).is_err());
        assert!(with(Some(0), None).is_err());
    }

    #[test]
    fn flags_override_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("keel.toml");
        std::fs::write(&f, "listen = \"127.0.0.1:9000\"\nsync = \"none\"\nmountpaths = [\"/a\", \"/b\"]\nusers = [\"x:y:z\"]\ns3_prefix = \"s3/\"\n").unwrap();
        let args = ServeArgs { config: Some(f), sync: Some("always".into()), ..Default::default() };
        let c = ServeConfig::resolve(&args, &no_env).unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.sync, engine::SyncMode::Always);
        assert_eq!(c.mountpaths.len(), 2);
        assert_eq!(c.users, vec![("x".into(), "y:z".into())]);
        assert_eq!(c.s3_prefix, "/s3");
    }

    #[test]
    fn byte_counts() {
        assert_eq!(parse_bytes("0"), Ok(0));
        assert_eq!(parse_bytes("5MiB"), Ok(5 << 20));
        assert_eq!(parse_bytes("5M"), Ok(5_000_000));
        assert_eq!(parse_bytes("10 KiB"), Ok(10 << 10));
        assert!(parse_bytes("5 parsecs").is_err());
        assert!(parse_bytes("-1").is_err());
        let c = ServeConfig::resolve(&ServeArgs { min_part_size: Some("0".into()), ..Default::default() }, &no_env)
            .unwrap();
        assert_eq!(c.min_part_size, 0);
        assert_eq!(ServeConfig::resolve(&ServeArgs::default(), &no_env).unwrap().min_part_size, 5 << 20);
        assert_eq!(
            parse_file("min_part_size = \"1MiB\"\n").unwrap().min_part_size,
            Some(toml::Value::String("1MiB".into()))
        );
    }

    #[test]
    fn users_as_pairs_or_tables_and_admins() {
        let f = parse_file(
            "users = [\"a:b\", { access_key = \"c\", secret_key = \"d\", admin = true }]\nadmins = [\"a\"]\n",
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.toml");
        std::fs::write(
            &path,
            "users = [\"a:b\", { access_key = \"c\", secret_key = \"d\", admin = true }]\nadmins = [\"a\"]\n",
        )
        .unwrap();
        assert_eq!(f.users.as_ref().map(Vec::len), Some(2));
        let args = ServeArgs { config: Some(path), admins: vec!["x".into()], ..Default::default() };
        let c = ServeConfig::resolve(&args, &no_env).unwrap();
        assert_eq!(c.users, vec![("a".into(), "b".into()), ("c".into(), "d".into())]);
        assert_eq!(c.admins, vec!["x".to_owned(), "a".into(), "c".into()]);
        assert!(parse_file("users = [{ access_key = \"c\", secret_key = \"d\", root = true }]\n").is_err());
    }

    #[test]
    fn unknown_keys_name_their_line() {
        let e = parse_file("listen = \"127.0.0.1:1\"\n\nbogus = 1\n").unwrap_err();
        assert!(e.starts_with("line 3:"), "{e}");
    }

    #[test]
    fn bad_values() {
        let bad = |a: ServeArgs| ServeConfig::resolve(&a, &no_env).unwrap_err();
        bad(ServeArgs { sync: Some("sometimes".into()), ..Default::default() });
        bad(ServeArgs { listen: Some("nowhere".into()), ..Default::default() });
        bad(ServeArgs { access_key: Some("a".into()), ..Default::default() });
        bad(ServeArgs { users: vec!["nocolon".into()], ..Default::default() });
        bad(ServeArgs { threads: Some(0), ..Default::default() });
        bad(ServeArgs { pin: Some("always".into()), ..Default::default() });
        let pin = |p: &str, t| {
            let args = ServeArgs { pin: Some(p.into()), threads: Some(t), ..Default::default() };
            ServeConfig::resolve(&args, &|_| None).unwrap().pin
        };
        assert!(pin("on", 1) && !pin("off", 1));
        // auto: pinned only while a CPU allowed to this process stays free of shards.
        let cpus = crate::shard::allowed_cpus().len();
        assert!(!pin("auto", cpus));
        assert_eq!(pin("auto", 1), cpus > 1);
        let env = |k: &str| Some(if k == "KEEL_ACCESS_KEY" { "ak" } else { "sk" }.to_owned());
        assert_eq!(ServeConfig::resolve(&ServeArgs::default(), &env).unwrap().users, vec![("ak".into(), "sk".into())]);
    }
}
