//! `keel`: an S3-compatible object storage node.

use clap::{Parser, Subcommand};
use keel::config::{ServeArgs, ServeConfig};

/// The system allocator, counting shard threads' allocations (`keel_shard_heap_allocations_total`).
#[global_allocator]
static ALLOCATOR: keel::alloc_count::Counting = keel::alloc_count::Counting;

#[derive(Parser)]
#[command(name = "keel", version, about = "An S3-compatible object storage node for NVMe servers")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the S3 API.
    Serve(ServeArgs),
    /// Check every object on the mountpaths against its stored checksums (offline: the server
    /// must not be running on them). Exits 1 if any object is corrupt.
    Scrub(ServeArgs),
    /// Configuration files.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Bucket properties (stored checksum, validate-on-read, versioning, ACL).
    Bucket {
        #[command(subcommand)]
        command: BucketCommand,
    },
    /// Buckets with their object counts and sizes (offline).
    Ls(ServeArgs),
    /// Mountpaths with objects, sizes, uploads in progress and free space (offline).
    Stat(ServeArgs),
    /// Move objects to the mountpath that owns them after mountpaths were added (offline).
    Rebalance(ServeArgs),
    /// Fetch a backend bucket's objects into the cache ahead of reading (through a running keel):
    /// the remote's listing under --prefix, or the keys in --list FILE (one per line); objects
    /// already cached are skipped, so an interrupted prefetch resumes where it stopped.
    Prefetch {
        bucket: String,
        /// The running keel, e.g. http://127.0.0.1:8080.
        #[arg(long)]
        endpoint: String,
        #[arg(long)]
        prefix: Option<String>,
        #[arg(long, value_name = "FILE")]
        list: Option<std::path::PathBuf>,
        /// Objects fetched at once.
        #[arg(long, default_value_t = 16)]
        parallel: usize,
        #[command(flatten)]
        keys: ServeArgs,
    },
    /// Drop cached copies of a backend bucket's objects (the remote keeps them; objects that
    /// exist only locally are never dropped), through a running keel.
    Evict {
        bucket: String,
        #[arg(long)]
        endpoint: String,
        #[arg(long)]
        prefix: Option<String>,
        #[command(flatten)]
        keys: ServeArgs,
    },
    /// A keel cluster: its members and their states, from etcd.
    Cluster {
        #[command(subcommand)]
        command: ClusterCommand,
    },
    /// The node's mountpaths: list them, detach one that is gone, attach a replacement (offline).
    Mountpath {
        #[command(subcommand)]
        command: MountpathCommand,
    },
}

#[derive(Subcommand)]
enum MountpathCommand {
    /// The node's members (active or detached), as the mountpaths given record them.
    List(ServeArgs),
    /// Lets the node start without the member DIR (a path or an id in hex), given the others
    /// with --mountpath or --config. Its objects are unavailable until it is given again; it is
    /// then reconciled (what was written or deleted meanwhile wins) before it serves.
    Detach {
        dir: String,
        #[command(flatten)]
        args: ServeArgs,
    },
    /// Records the new, empty directory DIR (a replacement drive) as a member, given the node's
    /// mountpaths with --mountpath or --config; the member it replaces (--replaces, else the
    /// member whose path DIR is) leaves for good. The next start takes DIR; with copies, the
    /// repair copies its share onto it (a resilver). DIR a detached member: it returns as is.
    Attach {
        dir: String,
        /// The member replaced for good (a path or an id in hex); default: the one at DIR's path.
        #[arg(long)]
        replaces: Option<String>,
        #[command(flatten)]
        args: ServeArgs,
    },
}

#[derive(Subcommand)]
enum ClusterCommand {
    /// Nodes (id, url, state), rebalance progress and under-replicated objects.
    Status {
        /// etcd endpoints, http://HOST:PORT[,…].
        #[arg(long)]
        cluster: String,
        #[arg(long, default_value = "keel")]
        cluster_name: String,
        /// One JSON object, for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Remove a member from the cluster. A node that holds objects is refused (draining one
    /// needs rebalancing, not done yet); a gateway or a node whose buckets are empty leaves.
    Decommission {
        id: String,
        #[arg(long)]
        cluster: String,
        #[arg(long, default_value = "keel")]
        cluster_name: String,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate a TOML file and print the effective settings, secrets masked.
    Check { file: std::path::PathBuf },
}

#[derive(Subcommand)]
enum BucketCommand {
    /// Show or set properties: `keel bucket props BUCKET [KEY=VALUE]...` with KEY in checksum
    /// (xxhash|crc32c|md5|none), validate_on_read (true|false), versioning, acl (private|public-read).
    Props {
        bucket: String,
        settings: Vec<String>,
        /// A running keel to talk to over its admin endpoint, e.g. 127.0.0.1:8080; requests are
        /// signed with --access-key/--secret-key (or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or
        /// the generated credentials in the first mountpath) of the bucket's owner or an admin.
        /// Without it the mountpaths are opened offline.
        #[arg(long)]
        endpoint: Option<String>,
        #[command(flatten)]
        offline: ServeArgs,
    },
}

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,fjall=warn,lsm_tree=warn".into());
    // Colours only on a terminal: piped into a file or journald, ANSI escapes are noise.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let b = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    if json { b.json().init() } else { b.init() }
}

fn main() {
    let cli = Cli::parse();
    if let Command::Serve(args) = &cli.command {
        let resolved = ServeConfig::resolve(args, &|k| std::env::var(k).ok());
        init_logging(resolved.as_ref().is_ok_and(|c| c.log_json));
        if let Err(e) = resolved.and_then(keel::server::serve) {
            eprintln!("keel: {e}");
            std::process::exit(1);
        }
        return;
    }
    init_logging(false);
    let result = match cli.command {
        Command::Serve(_) => unreachable!("handled above"),
        Command::Scrub(args) => ServeConfig::resolve(&args, &|k| std::env::var(k).ok()).and_then(keel::server::scrub),
        Command::Config { command: ConfigCommand::Check { file } } => keel::cli::config_check(&file),
        Command::Bucket { command: BucketCommand::Props { bucket, settings, endpoint, offline } } => {
            keel::cli::bucket_props(endpoint.as_deref(), &offline, &bucket, &settings)
        }
        Command::Prefetch { bucket, endpoint, prefix, list, parallel, keys } => {
            keel::cli::prefetch(&endpoint, &keys, &bucket, prefix.as_deref(), list.as_deref(), parallel)
        }
        Command::Evict { bucket, endpoint, prefix, keys } => {
            keel::cli::evict(&endpoint, &keys, &bucket, prefix.as_deref())
        }
        Command::Ls(args) => keel::cli::ls(&args),
        Command::Stat(args) => keel::cli::stat(&args),
        Command::Rebalance(args) => keel::cli::rebalance(&args),
        Command::Cluster { command: ClusterCommand::Status { cluster, cluster_name, json } } => {
            keel::cluster::status::run(&cluster, &cluster_name, json)
        }
        Command::Cluster { command: ClusterCommand::Decommission { id, cluster, cluster_name } } => {
            keel::cluster::status::decommission(&cluster, &cluster_name, &id)
        }
        Command::Mountpath { command: MountpathCommand::List(args) } => keel::cli::mountpath_list(&args),
        Command::Mountpath { command: MountpathCommand::Detach { dir, args } } => {
            keel::cli::mountpath_detach(&args, &dir)
        }
        Command::Mountpath { command: MountpathCommand::Attach { dir, replaces, args } } => {
            keel::cli::mountpath_attach(&args, &dir, replaces.as_deref())
        }
    };
    if let Err(e) = result {
        eprintln!("keel: {e}");
        std::process::exit(1);
    }
}
