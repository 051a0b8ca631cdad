//! Integration tests: the real `keel` binary over TCP, driven by raw sockets for exact bytes.
//! Client tests (aws CLI, boto3, s3cmd) live in `tests/clients/` at the repository root.

mod auth;
mod aws_chunked;
mod backend;
mod common;
mod cors;
mod expiry;
mod http_shell;
mod lifecycle;
mod lock;
mod mountpaths;
mod multipart;
mod objects;
mod ops;
mod ownership;
mod policy;
mod post_object;
mod reliability;
mod tagging;
mod trust;
mod versioning;
