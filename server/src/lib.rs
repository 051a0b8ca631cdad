//! keel's server: the HTTP/1.1 shell, the S3 front end and the shards. The binary is `keel`.

pub mod admin;
pub mod alloc_count;
pub mod backend;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod endpoints;
pub mod flights;
pub mod fuzzing;
pub mod http;
pub mod lifecycle;
pub mod limits;
pub mod metrics;
pub mod s3;
pub mod server;
pub mod shard;
pub mod time;
