//! `[backends.NAME]` tables of the config file, and the `object_store` client each one builds.

#[cfg(feature = "backends")]
use std::sync::Arc;
#[cfg(feature = "backends")]
use std::time::Duration;

#[cfg(feature = "backends")]
use object_store::ObjectStore;
use serde::Deserialize;

#[cfg(feature = "backends")]
use super::RemoteError;

/// A backend as the config file writes it.
#[derive(Deserialize, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct BackendTable {
    /// `s3`, `gcs`, `azure` or `http` (read-only).
    pub provider: String,
    /// The service's URL; optional for the public clouds.
    pub endpoint: Option<String>,
    pub region: Option<String>,
    /// S3: access key id; Azure: the storage account's key goes in `secret_key`.
    pub access_key: Option<String>,
    pub secret_key: Option<String>,
    /// Azure: the storage account.
    pub account: Option<String>,
    /// GCS: a service account JSON file.
    pub service_account: Option<String>,
    /// Send unsigned requests: public buckets and emulators that want no credentials.
    #[serde(default)]
    pub anonymous: bool,
    /// S3: requests presigned for the remote itself (by a key keel does not know) are sent there
    /// unchanged, and what they read is cached (presigned pass-through). Off by default.
    #[serde(default)]
    pub passthrough: bool,
    /// Objects of 64 MiB and more are read as 16 MiB ranged reads, this many at once besides
    /// the first answer (AIStore's blob downloader): for remotes whose one connection is slow.
    /// 0 (the default) reads every object with one GET.
    #[serde(default)]
    pub parallel_reads: usize,
}

/// Never prints the secret.
impl std::fmt::Debug for BackendTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackendTable")
            .field("provider", &self.provider)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key", &self.access_key)
            .field("secret_key", &self.secret_key.as_ref().map(|_| "****"))
            .field("account", &self.account)
            .field("service_account", &self.service_account)
            .field("anonymous", &self.anonymous)
            .field("passthrough", &self.passthrough)
            .field("parallel_reads", &self.parallel_reads)
            .finish()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Provider {
    S3,
    Gcs,
    Azure,
    Http,
}

/// A checked backend.
#[derive(Clone, Debug)]
pub struct BackendConfig {
    pub name: String,
    pub provider: Provider,
    pub table: BackendTable,
}

impl BackendConfig {
    /// Checks a table; the message names the backend and the problem.
    pub fn from_table(name: &str, table: BackendTable) -> Result<BackendConfig, String> {
        if name.is_empty() || name.contains('/') {
            return Err(format!("backend name {name:?} must be non-empty and without '/'"));
        }
        let provider = match table.provider.as_str() {
            "s3" | "aws" => Provider::S3,
            "gcs" | "gcp" => Provider::Gcs,
            "azure" => Provider::Azure,
            "http" => Provider::Http,
            other => return Err(format!("backends.{name}: provider must be s3, gcs, azure or http, not {other:?}")),
        };
        if table.passthrough && provider != Provider::S3 {
            return Err(format!("backends.{name}: passthrough is for s3 backends (presigned S3 requests)"));
        }
        if table.parallel_reads > super::PARALLEL_READS_MAX {
            return Err(format!("backends.{name}: parallel_reads is at most {}", super::PARALLEL_READS_MAX));
        }
        if provider == Provider::Http && table.endpoint.is_none() {
            return Err(format!("backends.{name}: an http backend needs an endpoint"));
        }
        if table.access_key.is_some() != table.secret_key.is_some() && provider == Provider::S3 {
            return Err(format!("backends.{name}: access_key and secret_key go together"));
        }
        Ok(BackendConfig { name: name.to_owned(), provider, table })
    }

    /// A client for `bucket` on this backend. Unset credentials come from the provider's usual
    /// environment variables (`AWS_*`, `GOOGLE_*`, `AZURE_*`).
    #[cfg(feature = "backends")]
    pub fn client(&self, bucket: &str, timeout: Duration) -> Result<Arc<dyn ObjectStore>, RemoteError> {
        let t = &self.table;
        let http = t.endpoint.as_deref().is_some_and(|e| e.starts_with("http://"));
        let options = object_store::ClientOptions::new()
            .with_allow_http(http)
            .with_timeout(timeout)
            .with_connect_timeout(timeout.min(Duration::from_secs(5)));
        let retry = object_store::RetryConfig {
            max_retries: 3,
            retry_timeout: timeout,
            backoff: object_store::BackoffConfig::default(),
        };
        let built: object_store::Result<Arc<dyn ObjectStore>> = match self.provider {
            Provider::S3 => {
                let mut b = object_store::aws::AmazonS3Builder::from_env()
                    .with_bucket_name(bucket)
                    .with_client_options(options)
                    .with_retry(retry)
                    .with_virtual_hosted_style_request(false)
                    .with_skip_signature(t.anonymous);
                if let Some(e) = &t.endpoint {
                    b = b.with_endpoint(e);
                }
                b = b.with_region(t.region.as_deref().unwrap_or("us-east-1"));
                if let (Some(ak), Some(sk)) = (&t.access_key, &t.secret_key) {
                    b = b.with_access_key_id(ak).with_secret_access_key(sk);
                }
                b.build().map(|s| Arc::new(s) as Arc<dyn ObjectStore>)
            }
            Provider::Gcs => {
                let mut b = object_store::gcp::GoogleCloudStorageBuilder::from_env()
                    .with_bucket_name(bucket)
                    .with_client_options(options)
                    .with_retry(retry)
                    .with_skip_signature(t.anonymous);
                if let Some(e) = &t.endpoint {
                    b = b.with_base_url(e);
                }
                if let Some(p) = &t.service_account {
                    b = b.with_service_account_path(p);
                }
                b.build().map(|s| Arc::new(s) as Arc<dyn ObjectStore>)
            }
            Provider::Azure => {
                let mut b = object_store::azure::MicrosoftAzureBuilder::from_env()
                    .with_container_name(bucket)
                    .with_client_options(options)
                    .with_retry(retry)
                    .with_skip_signature(t.anonymous);
                if let Some(a) = &t.account {
                    b = b.with_account(a);
                }
                if let Some(k) = &t.secret_key {
                    b = b.with_access_key(k);
                }
                if let Some(e) = &t.endpoint {
                    b = b.with_endpoint(e.clone()).with_allow_http(http);
                }
                b.build().map(|s| Arc::new(s) as Arc<dyn ObjectStore>)
            }
            Provider::Http => {
                let url = t.endpoint.clone().unwrap_or_default();
                let url = format!("{}/{bucket}", url.trim_end_matches('/'));
                object_store::http::HttpBuilder::new()
                    .with_url(url)
                    .with_client_options(options)
                    .with_retry(retry)
                    .build()
                    .map(|s| Arc::new(s) as Arc<dyn ObjectStore>)
            }
        };
        built.map_err(|e| RemoteError::Unavailable(format!("backend {}: {e}", self.name)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(provider: &str) -> BackendTable {
        BackendTable { provider: provider.into(), ..Default::default() }
    }

    #[test]
    fn tables_are_checked_with_the_backend_named() {
        assert!(BackendConfig::from_table("up", table("s3")).is_ok());
        let err = |name: &str, t: BackendTable| BackendConfig::from_table(name, t).unwrap_err();
        assert!(err("a/b", table("s3")).contains("without '/'"));
        assert!(err("up", table("ftp")).contains("backends.up: provider must be"));
        assert!(err("up", table("http")).contains("needs an endpoint"));
        let half = BackendTable { access_key: Some("AK".into()), ..table("s3") };
        assert!(err("up", half).contains("go together"));
        let passthrough = BackendTable { passthrough: true, ..table("azure") };
        assert!(err("az", passthrough).contains("passthrough is for s3"));
        let many = BackendTable { parallel_reads: super::super::PARALLEL_READS_MAX + 1, ..table("s3") };
        assert!(err("up", many).contains("parallel_reads is at most 16"));
        let ok = BackendTable { parallel_reads: super::super::PARALLEL_READS_MAX, ..table("s3") };
        assert!(BackendConfig::from_table("up", ok).is_ok());
    }
}
