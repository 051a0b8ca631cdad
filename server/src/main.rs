//! `keel`: an S3-compatible object storage node.

use clap::{Parser, Subcommand};
use keel::config::{ServeArgs, ServeConfig};

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
}

fn main() {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,fjall=warn,lsm_tree=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Serve(args) => ServeConfig::resolve(&args, &|k| std::env::var(k).ok()).and_then(keel::server::serve),
        Command::Scrub(args) => ServeConfig::resolve(&args, &|k| std::env::var(k).ok()).and_then(keel::server::scrub),
    };
    if let Err(e) = result {
        eprintln!("keel: {e}");
        std::process::exit(1);
    }
}
