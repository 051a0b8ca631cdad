//! Built without the `cluster` feature (the fuzz targets): no etcd client; `--cluster` is refused.

use std::path::Path;
use std::sync::Arc;

use super::{Boot, Cluster, ClusterConfig, ClusterError, ClusterMap};

const WHY: &str = "this keel was built without cluster support (the `cluster` feature)";

pub struct Agent;

impl Agent {
    pub fn start(_config: &ClusterConfig, _first_mountpath: &Path) -> Result<(Agent, Boot), String> {
        Err(WHY.to_owned())
    }

    pub fn run_background(&self, _cluster: &Arc<Cluster>, _lease: i64) {}

    pub async fn create_bucket(
        &self,
        _name: &str,
        _meta: Vec<u8>,
    ) -> Result<Result<i64, (i64, Vec<u8>)>, ClusterError> {
        Err(ClusterError::Unavailable(WHY.to_owned()))
    }

    pub async fn activate(&self) -> Result<i64, ClusterError> {
        Err(ClusterError::Unavailable(WHY.to_owned()))
    }

    pub async fn rebalance_progress(&self, _text: String) -> Result<(), ClusterError> {
        Err(ClusterError::Unavailable(WHY.to_owned()))
    }

    pub async fn rebalance_done(&self, _rev: i64, _progress: String) -> Result<bool, ClusterError> {
        Err(ClusterError::Unavailable(WHY.to_owned()))
    }

    pub async fn reconcile_done(&self) -> Result<(), ClusterError> {
        Err(ClusterError::Unavailable(WHY.to_owned()))
    }

    pub async fn report_under_replicated(&self, _n: Option<(u64, usize, u64)>) -> Result<(), ClusterError> {
        Err(ClusterError::Unavailable(WHY.to_owned()))
    }

    pub async fn buckets(&self) -> Result<Vec<(String, Vec<u8>)>, ClusterError> {
        Err(ClusterError::Unavailable(WHY.to_owned()))
    }

    pub async fn bucket(&self, _name: &str) -> Result<Option<(i64, Vec<u8>)>, ClusterError> {
        Err(ClusterError::Unavailable(WHY.to_owned()))
    }

    pub async fn put_bucket(&self, _name: &str, _meta: Vec<u8>) -> Result<Option<i64>, ClusterError> {
        Err(ClusterError::Unavailable(WHY.to_owned()))
    }

    pub async fn delete_bucket(&self, _name: &str) -> Result<Option<i64>, ClusterError> {
        Err(ClusterError::Unavailable(WHY.to_owned()))
    }
}

pub fn snapshot(_endpoints: &[String], _name: &str) -> Result<ClusterMap, String> {
    Err(WHY.to_owned())
}

pub fn decommission(_endpoints: &[String], _name: &str, _id: &str) -> Result<String, String> {
    Err(WHY.to_owned())
}
