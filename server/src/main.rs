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
    };
    if let Err(e) = result {
        eprintln!("keel: {e}");
        std::process::exit(1);
    }
}
