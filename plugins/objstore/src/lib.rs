//! # stowage-plugin-objstore — object storage without external tools
//!
//! A native provider on Apache Arrow's [`object_store`]: it talks to S3
//! (and S3-compatible stores: MinIO, Ceph, moto) itself, over HTTP, from a
//! tokio runtime of its own — two worker threads, created with the
//! provider. The plugin boundary stays synchronous: every method is one
//! `runtime.block_on(...)`. This first step serves `s3://`; GCS and Azure
//! Blob come next, on the same crate.
//!
//! - Transfers, copies and MD5 look-ups run `concurrency` at a time;
//!   deletes go 1,000 keys to a multi-object delete request.
//! - Files from `multipart_threshold_mib` up are uploaded in 8 MiB parts.
//!   Every upload stores the content's MD5 in the object's metadata
//!   (`x-amz-meta-md5chksum`, base64, as rclone does), so an object whose
//!   ETag is not its MD5 (multipart, SSE-KMS) still compares by content:
//!   a listing takes the MD5 from the ETag when it is one, and from a HEAD
//!   of the object otherwise.
//! - `create_if_absent` is a PUT with `If-None-Match: *`.
//! - Credentials: the plugin's table names files and a profile, never a
//!   secret. Keys come from `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`
//!   (and `AWS_SESSION_TOKEN`), else from the profile's section of the
//!   shared credentials and config files; failing both, from
//!   object_store's own chain (web identity, container, instance metadata).
//!   Secrets sign requests in this process and are redacted from every
//!   error.
//!
//! ```toml
//! [plugins.objstore]
//! library = "stowage_plugin_objstore"
//!
//! [plugins.objstore.config]
//! # endpoint = "https://minio.example.com:9000"
//! # profile = "backup"
//! # concurrency = 16
//! ```

mod credentials;
mod store;
mod sync;

use std::collections::HashMap;
use std::path::{Path as LocalPath, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use object_store::aws::{AmazonS3, AmazonS3Builder};
use serde::Deserialize;
use stowage_plugin_api::{
    export_plugin, ActionKind, ConfigKey, ConfigKind, ErrorKind, IgnoreProgress, Location,
    ObjectEntry, PluginError, PluginInfo, ProgressSink, RemoteUrl, StorageProvider, SyncOptions,
    SyncReport, ToolStatus,
};
use stowage_plugin_support::config::parse_config;
use stowage_plugin_support::paths::{check_sync_sides, served_remote};
use stowage_plugin_support::sync_plan::SyncPlan;

use crate::credentials::{Overrides, S3Settings};
use crate::store::Errors;
use crate::sync::{local_entries, unchanged, DeleteSide, Entry};

export_plugin!(ObjstoreProvider::from_config);

/// The plugin's name, as `plugins.toml` and `stowage plugins` show it.
const NAME: &str = "objstore";

/// The URL scheme served so far.
const SCHEME: &str = "s3";

/// Requests at once when neither the table nor a sync says.
const DEFAULT_CONCURRENCY: u32 = 16;

/// Files from this size (MiB) up are uploaded in parts, by default.
const DEFAULT_MULTIPART_THRESHOLD_MIB: u64 = 16;

/// The plugin's config table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ObjstoreConfig {
    endpoint: Option<String>,
    region: Option<String>,
    profile: Option<String>,
    config_file: Option<String>,
    credentials_file: Option<String>,
    concurrency: Option<u32>,
    multipart_threshold_mib: Option<u64>,
}

/// The keys of [`ObjstoreConfig`], as `describe` declares them.
fn options() -> Vec<ConfigKey> {
    vec![
        ConfigKey::new(
            "endpoint",
            ConfigKind::String,
            "URL of an S3-compatible server (http only on loopback); unset: $AWS_ENDPOINT_URL_S3, \
             else $AWS_ENDPOINT_URL, else the profile's endpoint_url, else AWS.",
        ),
        ConfigKey::new(
            "region",
            ConfigKind::String,
            "The buckets' region; unset: $AWS_REGION, else $AWS_DEFAULT_REGION, else the \
             profile's, else us-east-1.",
        ),
        ConfigKey::new(
            "profile",
            ConfigKind::String,
            "The profile of the AWS config and credentials files; unset: $AWS_PROFILE, else \
             default.",
        ),
        ConfigKey::new(
            "config_file",
            ConfigKind::Path,
            "The AWS config file; unset: $AWS_CONFIG_FILE, else ~/.aws/config.",
        ),
        ConfigKey::new(
            "credentials_file",
            ConfigKind::Path,
            "The AWS credentials file; unset: $AWS_SHARED_CREDENTIALS_FILE, else \
             ~/.aws/credentials.",
        ),
        ConfigKey::new(
            "concurrency",
            ConfigKind::Integer,
            "Requests at once (transfers, copies, MD5 look-ups, delete batches) when a sync \
             does not set its own parallelism.",
        )
        .default(&DEFAULT_CONCURRENCY.to_string()),
        ConfigKey::new(
            "multipart_threshold_mib",
            ConfigKind::Integer,
            "Files of this many MiB or more are uploaded in 8 MiB parts (at least 1).",
        )
        .default(&DEFAULT_MULTIPART_THRESHOLD_MIB.to_string()),
    ]
}

/// The native object-storage provider.
pub struct ObjstoreProvider {
    settings: S3Settings,
    concurrency: usize,
    multipart_threshold: u64,
    errors: Errors,
    /// Its own runtime: the host knows nothing of tokio.
    runtime: tokio::runtime::Runtime,
    /// One store per bucket (object_store binds a store to a bucket).
    stores: Mutex<HashMap<String, Arc<AmazonS3>>>,
    /// For the bucket-level requests object_store does not make.
    http: OnceLock<reqwest::Client>,
}

impl std::fmt::Debug for ObjstoreProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjstoreProvider")
            .field("settings", &self.settings)
            .field("concurrency", &self.concurrency)
            .finish_non_exhaustive()
    }
}

impl ObjstoreProvider {
    /// Builds the provider from its `plugins.toml` table (TOML text).
    pub fn from_config(config: &str) -> Result<ObjstoreProvider, PluginError> {
        let config: ObjstoreConfig = parse_config(NAME, config)?;
        let overrides = Overrides {
            endpoint: config.endpoint,
            region: config.region,
            profile: config.profile,
            config_file: config.config_file,
            credentials_file: config.credentials_file,
        };
        let settings = S3Settings::resolve(&overrides, &|name| std::env::var(name).ok());
        if let Some(endpoint) = &settings.endpoint {
            check_endpoint(endpoint)?;
        }
        // rustls is linked into this library alone: its process-wide
        // provider is this plugin's, whatever the host uses.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("stowage-objstore")
            .enable_all()
            .build()
            .map_err(|e| {
                PluginError::new(
                    ErrorKind::Other,
                    format!("plugin {NAME}: cannot start its runtime: {e}"),
                )
            })?;
        Ok(ObjstoreProvider {
            errors: Errors::new(settings.secrets()),
            settings,
            concurrency: config.concurrency.unwrap_or(DEFAULT_CONCURRENCY).max(1) as usize,
            multipart_threshold: config
                .multipart_threshold_mib
                .unwrap_or(DEFAULT_MULTIPART_THRESHOLD_MIB)
                .max(1)
                << 20,
            runtime,
            stores: Mutex::new(HashMap::new()),
            http: OnceLock::new(),
        })
    }

    /// The bucket and prefix of an `s3://` location.
    fn remote(&self, location: &Location) -> Result<RemoteUrl, PluginError> {
        served_remote(NAME, SCHEME, location)
    }

    /// The store of `bucket`, built on first use.
    fn store(&self, bucket: &str) -> Result<Arc<AmazonS3>, PluginError> {
        let mut stores = self.stores.lock().expect("no panics while held");
        if let Some(store) = stores.get(bucket) {
            return Ok(Arc::clone(store));
        }
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .with_region(&self.settings.region);
        if let Some(endpoint) = &self.settings.endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"));
        }
        if let Some(keys) = &self.settings.keys {
            builder = builder
                .with_access_key_id(&keys.access_key_id)
                .with_secret_access_key(&keys.secret_access_key);
            if let Some(token) = &keys.session_token {
                builder = builder.with_token(token);
            }
        }
        let store = builder.build().map_err(|e| {
            let error = self.errors.convert(&format!("bucket {bucket}"), e);
            PluginError::new(ErrorKind::Config, error.message)
        })?;
        let store = Arc::new(store);
        stores.insert(bucket.to_string(), Arc::clone(&store));
        Ok(store)
    }

    fn http(&self) -> &reqwest::Client {
        self.http.get_or_init(reqwest::Client::new)
    }

    /// Every object below a remote location, keys relative to it.
    fn remote_entries(&self, url: &RemoteUrl) -> Result<Vec<store::Listed>, PluginError> {
        let store = self.store(&url.bucket)?;
        let listed = self.runtime.block_on(store::list(
            &store,
            &url.prefix,
            self.concurrency,
            &self.errors,
        ))?;
        // S3 lists a missing bucket as an error, but an empty prefix as empty.
        Ok(listed
            .into_iter()
            .filter_map(|mut object| {
                object.key = url.relative_key(&object.key)?.to_string();
                Some(object)
            })
            .collect())
    }

    /// A listing of `url` as sync entries.
    fn sync_entries(&self, url: &RemoteUrl) -> Result<Vec<Entry>, PluginError> {
        Ok(self
            .remote_entries(url)?
            .into_iter()
            .map(|o| Entry {
                key: o.key,
                size: o.size,
                mtime: o.last_modified,
                md5: o.md5,
                path: None,
            })
            .collect())
    }

    /// Carries out `plan` from the bucket location `from` to `to`:
    /// server-side copies within one bucket, streamed ones between two.
    fn copy_plan(
        &self,
        plan: SyncPlan<Entry>,
        from: &RemoteUrl,
        to: &RemoteUrl,
        concurrency: usize,
        progress: &dyn ProgressSink,
    ) -> Result<SyncReport, PluginError> {
        let (from_store, to_store) = (self.store(&from.bucket)?, self.store(&to.bucket)?);
        let same_bucket = from.bucket == to.bucket;
        let (from_store, to_store, errors) = (&from_store, &to_store, &self.errors);
        self.runtime.block_on(sync::run(
            plan,
            ActionKind::Copy,
            concurrency,
            progress,
            |entry| async move {
                store::copy(
                    from_store,
                    &from.key_for(&entry.key),
                    to_store,
                    &to.key_for(&entry.key),
                    same_bucket,
                    entry.md5.as_deref(),
                    errors,
                )
                .await?;
                Ok(entry)
            },
            DeleteSide::Remote,
            |keys| async move {
                let keys: Vec<String> = keys.iter().map(|k| to.key_for(k)).collect();
                store::delete(to_store, &keys, errors).await
            },
        ))
    }
}

/// Refuses an endpoint that is not an http(s) URL, or plain http to a
/// host other than this machine (credentials would cross the network
/// signed but the data unencrypted).
fn check_endpoint(endpoint: &str) -> Result<(), PluginError> {
    let refused = |why: &str| {
        PluginError::new(
            ErrorKind::Config,
            format!("plugin {NAME}: endpoint {endpoint}: {why}"),
        )
    };
    let Some((scheme, rest)) = endpoint.split_once("://") else {
        return Err(refused(
            "not a URL; write it as https://host[:port] (http:// only on loopback)",
        ));
    };
    let host = rest.split(['/', '?']).next().unwrap_or_default();
    let host = match host.rsplit_once(':') {
        Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) => name,
        _ => host,
    };
    let loopback = host == "localhost"
        || host == "[::1]"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback());
    match scheme {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        "http" => Err(refused(
            "plain http is allowed only on loopback (localhost, 127.0.0.1, [::1]); use https",
        )),
        _ => Err(refused("the scheme must be https (or http on loopback)")),
    }
}

impl StorageProvider for ObjstoreProvider {
    fn describe(&self) -> PluginInfo {
        PluginInfo::new(
            NAME,
            env!("CARGO_PKG_VERSION"),
            "S3 and S3-compatible storage, natively (Apache Arrow's object_store); no external tool.",
            None,
            &[SCHEME],
            options(),
        )
    }

    fn check(&self) -> Result<ToolStatus, PluginError> {
        let endpoint = self
            .settings
            .endpoint
            .clone()
            .unwrap_or_else(|| format!("AWS S3 ({})", self.settings.region));
        Ok(ToolStatus {
            tool_version: None,
            endpoint: format!("{endpoint}, credentials from {}", self.settings.source),
        })
    }

    fn list(&self, location: &Location) -> Result<Vec<ObjectEntry>, PluginError> {
        let url = self.remote(location)?;
        Ok(self
            .remote_entries(&url)?
            .into_iter()
            .map(|o| ObjectEntry {
                key: o.key,
                size: o.size,
                md5: o.md5,
                etag: o.etag,
                last_modified: Some(o.last_modified),
            })
            .collect())
    }

    fn sync(
        &self,
        source: &Location,
        destination: &Location,
        options: &SyncOptions,
        progress: &dyn ProgressSink,
    ) -> Result<SyncReport, PluginError> {
        check_sync_sides(NAME, SCHEME, source, destination)?;
        let concurrency = sync::parallelism(options, self.concurrency);
        let entries = |location: &Location, is_source: bool| match location {
            Location::Local { path } => local_entries(LocalPath::new(path), is_source),
            Location::Remote { .. } => self.sync_entries(&self.remote(location)?),
        };
        let sources = entries(source, true)?;
        let destinations = entries(destination, false)?;
        let plan = SyncPlan::new(sources, destinations, destination, options, |s, d| {
            unchanged(s, d, options.compare)
        })?;
        let kind = match (source, destination) {
            (Location::Local { .. }, _) => ActionKind::Upload,
            (_, Location::Local { .. }) => ActionKind::Download,
            _ => ActionKind::Copy,
        };
        if options.dry_run {
            return Ok(plan.dry_run_report(kind));
        }
        let errors = &self.errors;
        let threshold = self.multipart_threshold;
        match (source, destination) {
            (Location::Local { .. }, Location::Remote { .. }) => {
                let to = self.remote(destination)?;
                let store = self.store(&to.bucket)?;
                let (store, to) = (&store, &to);
                self.runtime.block_on(sync::run(
                    plan,
                    kind,
                    concurrency,
                    progress,
                    |entry| async move {
                        let file = entry.path.clone().expect("local entries have paths");
                        store::upload(store, file, &to.key_for(&entry.key), threshold, errors)
                            .await?;
                        Ok(entry)
                    },
                    DeleteSide::Remote,
                    |keys| async move {
                        let keys: Vec<String> = keys.iter().map(|k| to.key_for(k)).collect();
                        store::delete(store, &keys, errors).await
                    },
                ))
            }
            (Location::Remote { .. }, Location::Local { path }) => {
                let from = self.remote(source)?;
                let store = self.store(&from.bucket)?;
                let (store, from, root) = (&store, &from, PathBuf::from(path));
                let root_ref = &root;
                self.runtime.block_on(sync::run(
                    plan,
                    kind,
                    concurrency,
                    progress,
                    |entry| async move {
                        let target = local_target(root_ref, &entry.key)?;
                        store::download(store, &from.key_for(&entry.key), target, errors).await?;
                        Ok(entry)
                    },
                    DeleteSide::Local(&root),
                    |_| async { Ok(()) },
                ))
            }
            _ => {
                let (from, to) = (self.remote(source)?, self.remote(destination)?);
                self.copy_plan(plan, &from, &to, concurrency, progress)
            }
        }
    }

    fn put(&self, file: &str, destination: &Location, key: &str) -> Result<(), PluginError> {
        let to = self.remote(destination)?;
        let store = self.store(&to.bucket)?;
        self.runtime.block_on(store::upload(
            &store,
            PathBuf::from(file),
            &to.key_for(key),
            self.multipart_threshold,
            &self.errors,
        ))?;
        Ok(())
    }

    fn get(&self, source: &Location, key: &str, file: &str) -> Result<(), PluginError> {
        let from = self.remote(source)?;
        let store = self.store(&from.bucket)?;
        self.runtime.block_on(store::download(
            &store,
            &from.key_for(key),
            PathBuf::from(file),
            &self.errors,
        ))?;
        Ok(())
    }

    fn copy(
        &self,
        source: &Location,
        destination: &Location,
        keys: &[String],
    ) -> Result<SyncReport, PluginError> {
        let (from, to) = (self.remote(source)?, self.remote(destination)?);
        // One listing gives every size (and MD5) for the report, instead
        // of a HEAD per key.
        let listed: HashMap<String, Entry> = self
            .sync_entries(&from)?
            .into_iter()
            .map(|e| (e.key.clone(), e))
            .collect();
        let entries = keys
            .iter()
            .map(|key| {
                listed.get(key).cloned().ok_or_else(|| {
                    PluginError::new(
                        ErrorKind::NotFound,
                        format!("object {key} not found in {source}"),
                    )
                })
            })
            .collect::<Result<Vec<Entry>, _>>()?;
        let plan = SyncPlan {
            skips: Vec::new(),
            transfers: entries,
            deletes: Vec::new(),
        };
        self.copy_plan(plan, &from, &to, self.concurrency, &IgnoreProgress)
    }

    fn delete(&self, location: &Location, keys: &[String]) -> Result<SyncReport, PluginError> {
        let url = self.remote(location)?;
        let store = self.store(&url.bucket)?;
        let full: Vec<String> = keys.iter().map(|k| url.key_for(k)).collect();
        self.runtime
            .block_on(store::delete(&store, &full, &self.errors))?;
        let mut report = SyncReport::default();
        for key in keys {
            report.push(ActionKind::Delete, key.as_str(), 0);
        }
        Ok(report)
    }

    fn ensure_bucket(&self, location: &Location) -> Result<bool, PluginError> {
        let url = self.remote(location)?;
        let store = self.store(&url.bucket)?;
        self.runtime.block_on(store::ensure_bucket(
            &store,
            self.http(),
            &url.bucket,
            &self.settings.region,
            &self.errors,
        ))
    }

    fn create_if_absent(
        &self,
        location: &Location,
        key: &str,
        bytes: &[u8],
    ) -> Result<bool, PluginError> {
        let url = self.remote(location)?;
        let store = self.store(&url.bucket)?;
        self.runtime.block_on(store::create_if_absent(
            &store,
            &url.key_for(key),
            bytes,
            &self.errors,
        ))
    }

    fn conditional_create(&self) -> bool {
        // A PUT with If-None-Match: *, which S3 refuses (412) when the key exists.
        true
    }
}

/// The local file of `key` below `root`, refusing keys that would leave it.
fn local_target(root: &LocalPath, key: &str) -> Result<PathBuf, PluginError> {
    stowage_local_tree::key_to_relative_path(key)
        .map(|relative| root.join(relative))
        .map_err(stowage_plugin_support::io_errors::from_io)
}

#[cfg(test)]
mod tests {
    use stowage_plugin_support::config::assert_declared_options;

    use super::*;

    #[test]
    fn the_declared_options_are_the_config_keys() {
        assert_declared_options::<ObjstoreConfig>(&options());
    }

    #[test]
    fn an_unknown_key_is_a_config_error() {
        let error = ObjstoreProvider::from_config("endpoints = \"x\"").unwrap_err();
        assert_eq!(error.kind, ErrorKind::Config);
    }

    #[test]
    fn plain_http_is_for_loopback_only() {
        for ok in [
            "https://s3.example.com",
            "http://127.0.0.1:9000",
            "http://localhost:4566/",
            "http://[::1]:9000",
        ] {
            check_endpoint(ok).unwrap();
        }
        for refused in ["http://minio.lan:9000", "minio:9000", "ftp://127.0.0.1"] {
            let error = check_endpoint(refused).unwrap_err();
            assert_eq!(error.kind, ErrorKind::Config, "{refused}");
        }
    }

    #[test]
    fn other_schemes_and_local_paths_are_refused() {
        let provider = ObjstoreProvider::from_config("region = \"us-east-1\"").unwrap();
        for url in ["gs://bucket", "/tmp/x"] {
            let error = provider.list(&Location::parse(url)).unwrap_err();
            assert_eq!(error.kind, ErrorKind::InvalidInput, "{url}: {error}");
        }
    }
}
