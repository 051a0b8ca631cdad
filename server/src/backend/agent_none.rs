//! The backend agent of a build without the `backends` feature: its types have no values, so no
//! call can be made; `Agent::start` refuses a configuration that names backends.

use std::sync::Arc;
use std::time::Duration;

use engine::RemoteBucket;

use super::{BackendConfig, BackendStats, Flights, RemoteError, RemoteListQuery, RemoteObject, RemotePage};

#[derive(Debug)]
pub enum Agent {}

pub enum Chunks {}

pub enum BodySink {}

impl Chunks {
    pub async fn next(&mut self) -> Option<Result<Vec<u8>, RemoteError>> {
        match *self {}
    }

    pub async fn md5(&mut self) -> Option<[u8; 16]> {
        match *self {}
    }

    pub fn hashes_md5(&self) -> bool {
        match *self {}
    }
}

impl BodySink {
    pub fn failed(&self) -> Option<&RemoteError> {
        match *self {}
    }

    pub async fn send(&mut self, _bytes: &[u8]) -> Result<(), RemoteError> {
        match *self {}
    }

    pub async fn finish(self) -> Result<RemoteObject, RemoteError> {
        match self {}
    }
}

impl Agent {
    pub fn start(backends: Vec<BackendConfig>, _timeout: Duration) -> std::io::Result<Option<Arc<Agent>>> {
        if backends.is_empty() {
            return Ok(None);
        }
        Err(std::io::Error::other("this keel was built without the `backends` feature"))
    }

    pub fn flights(&self) -> &Arc<Flights> {
        match *self {}
    }

    pub fn timeout(&self) -> Duration {
        match *self {}
    }

    pub fn has(&self, _name: &str) -> bool {
        match *self {}
    }

    pub fn stats(&self) -> std::iter::Empty<(&str, &BackendStats)> {
        match *self {}
    }

    pub async fn head(&self, _remote: &RemoteBucket, _key: &str) -> Result<RemoteObject, RemoteError> {
        match *self {}
    }

    pub async fn get_range(
        &self,
        _remote: &RemoteBucket,
        _key: &str,
        _range: super::RemoteRange,
    ) -> Result<(RemoteObject, u64, u64, Chunks), RemoteError> {
        match *self {}
    }

    pub fn nameable(&self, _key: &str) -> Result<(), RemoteError> {
        match *self {}
    }

    pub fn forward_put(
        &self,
        _remote: &RemoteBucket,
        _url: String,
        _headers: Vec<(String, String)>,
        _len: u64,
    ) -> Result<BodySink, RemoteError> {
        match *self {}
    }

    pub fn passes_presigned(&self, _backend: &str) -> bool {
        match *self {}
    }

    pub fn presigned_url(
        &self,
        _remote: &RemoteBucket,
        _raw_key: &str,
        _raw_query: &str,
        _style: Option<super::SignedStyle>,
    ) -> Result<String, RemoteError> {
        match *self {}
    }

    pub async fn forward(
        &self,
        _remote: &RemoteBucket,
        _head: bool,
        _url: String,
        _headers: Vec<(String, String)>,
    ) -> Result<super::Forwarded, RemoteError> {
        match *self {}
    }

    pub async fn get(
        &self,
        _remote: &RemoteBucket,
        _key: &str,
        _md5: bool,
    ) -> Result<(RemoteObject, Chunks), RemoteError> {
        match *self {}
    }

    pub fn put(
        &self,
        _remote: &RemoteBucket,
        _key: &str,
        _size: Option<u64>,
        _meta: (Option<String>, Vec<(String, String)>),
        _condition: super::RemoteCondition,
    ) -> Result<BodySink, RemoteError> {
        match *self {}
    }

    pub async fn delete(&self, _remote: &RemoteBucket, _key: &str) -> Result<(), RemoteError> {
        match *self {}
    }

    pub async fn list(&self, _remote: &RemoteBucket, _q: RemoteListQuery) -> Result<RemotePage, RemoteError> {
        match *self {}
    }
}
