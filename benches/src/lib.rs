//! Benchmark support shared by keel's benchmark binaries.

pub mod plot;
