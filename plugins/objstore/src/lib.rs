//! # stowage-plugin-objstore — object storage without external tools
//!
//! A native provider on Apache Arrow's [`object_store`]: it talks to S3
//! (and S3-compatible stores: MinIO, Ceph, moto), Google Cloud Storage
//! (`gs://`, its XML API) and Azure Blob Storage (`az://`, `azure://`;
//! Azurite) itself, over HTTP, from a
//! tokio runtime of its own — two worker threads, created with the
//! provider. The plugin boundary stays synchronous: every method is one
//! `runtime.block_on(...)`. Each provider is a module of `backend`; this
//! one plugin serves them all, each scheme mapped to it in `plugins.toml`.
//!
//! - Transfers, copies and MD5 look-ups run `concurrency` at a time;
//!   deletes go 1,000 keys to a multi-object delete request (GCS: one
//!   DELETE each, several at once).
//! - Files from `multipart_threshold_mib` up are uploaded in 8 MiB parts.
//!   The content that transfers hold in memory is bounded, for all of them
//!   together, by `transfer_memory_mib` (`memory_budget.rs`).
//!   Every upload stores the content's MD5 in the object's metadata
//!   (`x-amz-meta-md5chksum` / `x-goog-meta-md5chksum`, base64, as rclone
//!   does), so an object whose ETag is not its MD5 (multipart, SSE-KMS,
//!   GCS composite) still compares by content:
//!   a listing takes the MD5 from the ETag when it is one, and from a HEAD
//!   of the object otherwise. Azure ETags never are: its backend lists
//!   `Content-MD5` and metadata in one List Blobs request of its own.
//! - `list_keys` looks each key up by itself, `concurrency` at a time: a
//!   HEAD (ETag, size, time and the metadata MD5 at once), or on Azure a
//!   List Blobs request with the key as prefix and room for one blob, so
//!   each entry is exactly what the listing gives. `get_range` is one
//!   ranged GET. A `Planned` sync that deletes nothing does not list its
//!   destination.
//! - `list_page` asks the store to start after the given key (S3's and
//!   GCS's `start-after`, through object_store's `list_with_offset`) and
//!   drops the listing once it has the page, each entry as `list` gives
//!   it. Azure's listing (the plugin's own requests, above) cannot start
//!   after a key: its pages are cut out of a whole listing, and an
//!   instance that serves Azure (an account is set) answers `lists_pages`
//!   with `false` — for every scheme, as the capability is the instance's.
//! - `create_if_absent` is a conditional PUT: `If-None-Match: *` on S3 and
//!   Azure, `x-goog-if-generation-match: 0` on GCS.
//! - Credentials: the plugin's table names files and a profile, never a
//!   secret. S3 keys come from `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`
//!   (and `AWS_SESSION_TOKEN`), else from the profile's section of the
//!   shared credentials and config files; failing both, from
//!   object_store's own chain (web identity, container, instance metadata).
//!   GCS credentials are a service-account file (`gcs_service_account_file`,
//!   else `$GOOGLE_APPLICATION_CREDENTIALS`), else gcloud's application
//!   default credentials or the instance metadata server. Azure's key or
//!   SAS comes from the connection string in the file
//!   `azure_credentials_file` names, else from `AZURE_STORAGE_ACCOUNT_KEY`,
//!   `AZURE_STORAGE_SAS_TOKEN` or `AZURE_STORAGE_CONNECTION_STRING`, else
//!   object_store's chain. Secrets sign requests in this process and are
//!   redacted from every error.
//!
//! ```toml
//! [plugins.objstore]
//! library = "stowage_plugin_objstore"
//!
//! [plugins.objstore.config]
//! # concurrency = 16
//! # ca_file = "/etc/ssl/private-ca.pem"
//! # s3_endpoint = "https://minio.example.com:9000"
//! # s3_profile = "backup"
//! # gcs_service_account_file = "~/.config/stowage/gcs-backup.json"
//! # azure_credentials_file = "/etc/stowage/azure-connection-string"
//! ```

mod backend;
mod config;
mod memory_budget;
mod store;
mod sync;
mod targeted;

use std::collections::HashMap;
use std::path::{Path as LocalPath, PathBuf};
use std::sync::{Arc, Mutex};

use object_store::ObjectStore;
use stowage_plugin_api::{
    export_plugin, ActionKind, ErrorKind, IgnoreProgress, Location, ObjectEntry, PluginError,
    PluginInfo, ProgressSink, RemoteUrl, StorageProvider, SyncOptions, SyncReport, ToolStatus,
};
use stowage_plugin_support::config::parse_config;
use stowage_plugin_support::paths::{check_remote_sides, remote, unserved};
use stowage_plugin_support::sync_plan::SyncPlan;

use crate::backend::{Backend, Backends};
use crate::config::{
    Clients, ObjstoreConfig, DEFAULT_CONCURRENCY, DEFAULT_MULTIPART_THRESHOLD_MIB,
    DEFAULT_TRANSFER_MEMORY_MIB,
};
use crate::memory_budget::MemoryBudget;
use crate::store::{Errors, TransferLimits};
use crate::sync::{local_entries, unchanged, DeleteSide, Entry};

export_plugin!(ObjstoreProvider::from_config);

/// The plugin's name, as `plugins.toml` and `stowage plugins` show it.
const NAME: &str = "objstore";

/// A remote location of a served scheme: its bucket and prefix, and the
/// provider that reaches it.
struct Remote<'a> {
    url: RemoteUrl,
    backend: &'a dyn Backend,
}

/// The stores built so far, by the provider's first scheme and the bucket.
type StoreCache = HashMap<(&'static str, String), Arc<dyn ObjectStore>>;

/// The native object-storage provider.
pub struct ObjstoreProvider {
    backends: Backends,
    clients: Clients,
    concurrency: usize,
    limits: TransferLimits,
    errors: Errors,
    /// Its own runtime: the host knows nothing of tokio.
    runtime: tokio::runtime::Runtime,
    /// One store per provider and bucket (object_store binds a store to a
    /// bucket).
    stores: Mutex<StoreCache>,
}

impl std::fmt::Debug for ObjstoreProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjstoreProvider")
            .field("schemes", &self.backends.schemes())
            .field("concurrency", &self.concurrency)
            .finish_non_exhaustive()
    }
}

impl ObjstoreProvider {
    /// Builds the provider from its `plugins.toml` table (TOML text).
    pub fn from_config(config: &str) -> Result<ObjstoreProvider, PluginError> {
        let config: ObjstoreConfig = parse_config(NAME, config)?;
        let backends = Backends::new(&config, &|name| std::env::var(name).ok())?;
        // rustls is linked into this library alone: its process-wide
        // provider is this plugin's, whatever the host uses.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let clients = Clients::new(config.ca_file.as_deref())?;
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
            errors: Errors::new(backends.secrets()),
            backends,
            clients,
            concurrency: config.concurrency.unwrap_or(DEFAULT_CONCURRENCY).max(1) as usize,
            limits: TransferLimits {
                multipart_threshold: config
                    .multipart_threshold_mib
                    .unwrap_or(DEFAULT_MULTIPART_THRESHOLD_MIB)
                    .max(1)
                    << 20,
                memory: MemoryBudget::new(
                    config
                        .transfer_memory_mib
                        .unwrap_or(DEFAULT_TRANSFER_MEMORY_MIB),
                ),
            },
            runtime,
            stores: Mutex::new(HashMap::new()),
        })
    }

    /// The bucket, prefix and provider of a location of a served scheme.
    fn remote(&self, location: &Location) -> Result<Remote<'_>, PluginError> {
        let served = || {
            let schemes: Vec<String> = self
                .backends
                .schemes()
                .iter()
                .map(|s| format!("{s}://"))
                .collect();
            unserved(NAME, &schemes.join(", "), location)
        };
        let backend = match location.scheme() {
            Some(scheme) => self.backends.for_scheme(&scheme).ok_or_else(served)?,
            None => return Err(served()),
        };
        Ok(Remote {
            url: remote(location)?,
            backend,
        })
    }

    /// The store of a remote location's bucket, built on first use.
    fn store(&self, remote: &Remote<'_>) -> Result<Arc<dyn ObjectStore>, PluginError> {
        let key = (remote.backend.schemes()[0], remote.url.bucket.clone());
        let mut stores = self.stores.lock().expect("no panics while held");
        if let Some(store) = stores.get(&key) {
            return Ok(Arc::clone(store));
        }
        let store = remote
            .backend
            .store(&remote.url.bucket, &self.clients.options)?;
        stores.insert(key, Arc::clone(&store));
        Ok(store)
    }

    /// Every object below a remote location, keys relative to it.
    fn remote_entries(&self, remote: &Remote<'_>) -> Result<Vec<store::Listed>, PluginError> {
        let store = self.store(remote)?;
        let listed = self.runtime.block_on(remote.backend.list(
            store.as_ref(),
            &remote.url.bucket,
            &remote.url.prefix,
            &self.clients.http,
            self.concurrency,
            &self.errors,
        ))?;
        // A missing bucket lists as an error, but an empty prefix as empty.
        Ok(relative_to(remote, listed))
    }

    /// Up to `limit` objects below a remote location whose keys (relative
    /// to it) are strictly greater than `after`, in key order, each as
    /// [`ObjstoreProvider::remote_entries`] gives it.
    fn remote_page(
        &self,
        remote: &Remote<'_>,
        after: &str,
        limit: usize,
    ) -> Result<Vec<store::Listed>, PluginError> {
        let store = self.store(remote)?;
        let full_after = match after {
            "" => String::new(),
            after => remote.url.key_for(after),
        };
        let span = backend::PageSpan {
            prefix: &remote.url.prefix,
            after: &full_after,
            limit,
        };
        let listed = self.runtime.block_on(remote.backend.list_page(
            store.as_ref(),
            &remote.url.bucket,
            span,
            &self.clients.http,
            self.concurrency,
            &self.errors,
        ))?;
        Ok(relative_to(remote, listed))
    }

    /// The objects of `keys` (relative to a remote location) that exist,
    /// each as [`ObjstoreProvider::remote_entries`] gives it.
    fn remote_entries_of(
        &self,
        remote: &Remote<'_>,
        keys: &[String],
    ) -> Result<Vec<store::Listed>, PluginError> {
        let store = self.store(remote)?;
        let full_keys: Vec<String> = keys.iter().map(|k| remote.url.key_for(k)).collect();
        let listed = self.runtime.block_on(remote.backend.list_keys(
            store.as_ref(),
            &remote.url.bucket,
            &full_keys,
            &self.clients.http,
            self.concurrency,
            &self.errors,
        ))?;
        Ok(relative_to(remote, listed))
    }

    /// A listing of a remote location as sync entries.
    fn sync_entries(&self, remote: &Remote<'_>) -> Result<Vec<Entry>, PluginError> {
        Ok(self
            .remote_entries(remote)?
            .into_iter()
            .map(|o| Entry {
                key: o.key,
                size: o.size,
                mtime: o.last_modified,
                md5: o.md5,
                root: None,
            })
            .collect())
    }

    /// Carries out `plan` from the bucket location `from` to `to`:
    /// server-side copies within one bucket, streamed ones between two
    /// (of one provider or two).
    /// `listed`: whether the plan's entries carry their objects' listed
    /// sizes and MD5s (else each copy finds them out).
    fn copy_plan(
        &self,
        plan: SyncPlan<Entry>,
        from: &Remote<'_>,
        to: &Remote<'_>,
        concurrency: usize,
        listed: bool,
        progress: &dyn ProgressSink,
    ) -> Result<SyncReport, PluginError> {
        let (from_store, to_store) = (self.store(from)?, self.store(to)?);
        let same_bucket = Arc::ptr_eq(&from_store, &to_store);
        let (from_store, to_store, errors) = (&from_store, &to_store, &self.errors);
        let (from, to) = (&from.url, &to.url);
        let limits = &self.limits;
        self.runtime.block_on(sync::run(
            plan,
            ActionKind::Copy,
            concurrency,
            progress,
            |entry| async move {
                let source = store::CopySource {
                    store: from_store.as_ref(),
                    key: &from.key_for(&entry.key),
                    size: listed.then_some(entry.size),
                    md5: entry.md5.as_deref().filter(|_| listed),
                };
                let to_key = to.key_for(&entry.key);
                let size = store::copy(
                    source,
                    to_store.as_ref(),
                    &to_key,
                    same_bucket,
                    limits,
                    errors,
                )
                .await?;
                Ok(Entry { size, ..entry })
            },
            DeleteSide::Remote,
            |keys| async move {
                let keys: Vec<String> = keys.iter().map(|k| to.key_for(k)).collect();
                store::delete(to_store.as_ref(), &keys, errors).await
            },
        ))
    }

    /// Checks the two sides of a sync: each remote side of a served scheme,
    /// and at least one side remote.
    fn check_sync_sides(
        &self,
        source: &Location,
        destination: &Location,
    ) -> Result<(), PluginError> {
        check_remote_sides(NAME, "bucket", source, destination, |location| {
            self.remote(location).map(|_| ())
        })
    }
}

impl StorageProvider for ObjstoreProvider {
    fn describe(&self) -> PluginInfo {
        PluginInfo::new(
            NAME,
            env!("CARGO_PKG_VERSION"),
            "Object storage natively, on Apache Arrow's object_store: S3 and S3-compatible \
             stores, Google Cloud Storage, Azure Blob; no external tool.",
            None,
            &self.backends.schemes(),
            config::options(),
        )
    }

    fn check(&self) -> Result<ToolStatus, PluginError> {
        let endpoints: Vec<String> = self
            .backends
            .iter()
            .map(|b| format!("{}: {}", b.schemes()[0], b.endpoint()))
            .collect();
        Ok(ToolStatus {
            tool_version: None,
            endpoint: endpoints.join("; "),
        })
    }

    fn list(&self, location: &Location) -> Result<Vec<ObjectEntry>, PluginError> {
        let remote = self.remote(location)?;
        let listed = self.remote_entries(&remote)?;
        Ok(listed.into_iter().map(object_entry).collect())
    }

    fn sync(
        &self,
        source: &Location,
        destination: &Location,
        options: &SyncOptions,
        progress: &dyn ProgressSink,
    ) -> Result<SyncReport, PluginError> {
        self.check_sync_sides(source, destination)?;
        let concurrency = sync::parallelism(options, self.concurrency);
        let entries = |location: &Location, is_source: bool| match location {
            Location::Local { path } => local_entries(LocalPath::new(path), is_source),
            Location::Remote { .. } => self.sync_entries(&self.remote(location)?),
        };
        let sources = entries(source, true)?;
        let destinations = if sync::lists_destination(options) {
            entries(destination, false)?
        } else {
            Vec::new()
        };
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
        let (errors, limits) = (&self.errors, &self.limits);
        match (source, destination) {
            (Location::Local { .. }, Location::Remote { .. }) => {
                let to = self.remote(destination)?;
                let store = self.store(&to)?;
                let (store, to) = (store.as_ref(), &to.url);
                self.runtime.block_on(sync::run(
                    plan,
                    kind,
                    concurrency,
                    progress,
                    |entry| async move {
                        let file = entry.path().expect("local entries have a root");
                        store::upload(store, file, &to.key_for(&entry.key), limits, errors).await?;
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
                let store = self.store(&from)?;
                let (store, from, root) = (store.as_ref(), &from.url, PathBuf::from(path));
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
                self.copy_plan(plan, &from, &to, concurrency, true, progress)
            }
        }
    }

    fn put(&self, file: &str, destination: &Location, key: &str) -> Result<(), PluginError> {
        let to = self.remote(destination)?;
        let store = self.store(&to)?;
        self.runtime.block_on(store::upload(
            store.as_ref(),
            PathBuf::from(file),
            &to.url.key_for(key),
            &self.limits,
            &self.errors,
        ))?;
        Ok(())
    }

    fn get(&self, source: &Location, key: &str, file: &str) -> Result<(), PluginError> {
        let from = self.remote(source)?;
        let store = self.store(&from)?;
        self.runtime.block_on(store::download(
            store.as_ref(),
            &from.url.key_for(key),
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
        // No listing of the source: each copy's GET tells its size and
        // stored MD5 (a listing of a large bucket costs more than the few
        // keys a snapshot copies).
        let entries = keys
            .iter()
            .map(|key| Entry {
                key: key.clone(),
                size: 0,
                mtime: 0,
                md5: None,
                root: None,
            })
            .collect();
        let plan = SyncPlan {
            skips: Vec::new(),
            transfers: entries,
            deletes: Vec::new(),
        };
        self.copy_plan(plan, &from, &to, self.concurrency, false, &IgnoreProgress)
    }

    fn delete(&self, location: &Location, keys: &[String]) -> Result<SyncReport, PluginError> {
        let remote = self.remote(location)?;
        let store = self.store(&remote)?;
        let full: Vec<String> = keys.iter().map(|k| remote.url.key_for(k)).collect();
        self.runtime
            .block_on(store::delete(store.as_ref(), &full, &self.errors))?;
        let mut report = SyncReport::default();
        for key in keys {
            report.push(ActionKind::Delete, key.as_str(), 0);
        }
        Ok(report)
    }

    fn ensure_bucket(&self, location: &Location) -> Result<bool, PluginError> {
        let remote = self.remote(location)?;
        self.runtime.block_on(remote.backend.ensure_bucket(
            &remote.url.bucket,
            &self.clients.http,
            &self.errors,
        ))
    }

    fn create_if_absent(
        &self,
        location: &Location,
        key: &str,
        bytes: &[u8],
    ) -> Result<bool, PluginError> {
        let remote = self.remote(location)?;
        let store = self.store(&remote)?;
        self.runtime.block_on(store::create_if_absent(
            store.as_ref(),
            &remote.url.key_for(key),
            bytes,
            &self.errors,
        ))
    }

    fn list_keys(
        &self,
        location: &Location,
        keys: &[String],
    ) -> Result<Vec<ObjectEntry>, PluginError> {
        let remote = self.remote(location)?;
        let listed = self.remote_entries_of(&remote, keys)?;
        Ok(listed.into_iter().map(object_entry).collect())
    }

    fn get_range(
        &self,
        source: &Location,
        key: &str,
        offset: u64,
        length: u64,
        file: &str,
    ) -> Result<(), PluginError> {
        let from = self.remote(source)?;
        let store = self.store(&from)?;
        self.runtime.block_on(targeted::download_range(
            store.as_ref(),
            &format!("{key} in {source}"),
            &from.url.key_for(key),
            (offset, length),
            PathBuf::from(file),
            &self.errors,
        ))
    }

    fn reads_ranges(&self) -> bool {
        true
    }

    fn conditional_create(&self) -> bool {
        // Every provider served has a conditional PUT (store::create_if_absent).
        true
    }

    fn list_page(
        &self,
        location: &Location,
        after: &str,
        limit: u32,
    ) -> Result<Vec<ObjectEntry>, PluginError> {
        let remote = self.remote(location)?;
        let listed = self.remote_page(&remote, after, limit as usize)?;
        Ok(listed.into_iter().map(object_entry).collect())
    }

    fn lists_pages(&self) -> bool {
        self.backends.iter().all(|backend| backend.lists_pages())
    }
}

/// Listed objects with their keys made relative to `remote`, those below it.
fn relative_to(remote: &Remote<'_>, listed: Vec<store::Listed>) -> Vec<store::Listed> {
    listed
        .into_iter()
        .filter_map(|mut object| {
            object.key = remote.url.relative_key(&object.key)?.to_string();
            Some(object)
        })
        .collect()
}

/// A listed object as the API reports it.
fn object_entry(listed: store::Listed) -> ObjectEntry {
    ObjectEntry {
        key: listed.key,
        size: listed.size,
        md5: listed.md5,
        etag: listed.etag,
        last_modified: Some(listed.last_modified),
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
    use super::*;

    #[test]
    fn an_unknown_key_is_a_config_error() {
        let error = ObjstoreProvider::from_config("endpoints = \"x\"").unwrap_err();
        assert_eq!(error.kind, ErrorKind::Config);
    }

    #[test]
    fn other_schemes_and_local_paths_are_refused() {
        let provider = ObjstoreProvider::from_config("s3_region = \"us-east-1\"").unwrap();
        for url in ["ftp://bucket", "/tmp/x"] {
            let error = provider.list(&Location::parse(url)).unwrap_err();
            assert_eq!(error.kind, ErrorKind::InvalidInput, "{url}: {error}");
        }
    }
}
