//! The providers the plugin reaches, one module each: how a provider's
//! stores are built for a bucket, how its buckets are created, which of
//! its listed ETags are MD5s, and which secrets its messages must never
//! show. Everything else (transfers, copies, deletes, the conditional
//! create) is object_store's one interface, in [`crate::store`].
//!
//! Adding a provider: a module with a type implementing [`Backend`], its
//! config keys in [`crate::config`], and one line in [`Backends::new`].

pub mod azure;
pub mod gcs;
pub mod s3;

use std::sync::Arc;

use futures_util::future::BoxFuture;
use object_store::{ClientOptions, ObjectStore};
use stowage_plugin_api::PluginError;

use crate::config::ObjstoreConfig;
use crate::store::{self, Errors, Listed};
use crate::targeted;

/// One provider.
pub trait Backend: Send + Sync {
    /// The URL schemes it serves, the first being the one it is known by.
    fn schemes(&self) -> &'static [&'static str];

    /// The store of `bucket`, its requests sent with `client` options.
    fn store(
        &self,
        bucket: &str,
        client: &ClientOptions,
    ) -> Result<Arc<dyn ObjectStore>, PluginError>;

    /// Where requests go and where the credentials came from, for `check`
    /// (never a secret).
    fn endpoint(&self) -> String;

    /// The secret values its settings hold, to redact from every message.
    fn secrets(&self) -> Vec<String>;

    /// Creates `bucket` unless it exists, with requests of the plugin's own
    /// sent by `http` (object_store has no bucket calls); `Ok(true)` when
    /// this call created it.
    fn ensure_bucket<'a>(
        &'a self,
        bucket: &'a str,
        http: &'a reqwest::Client,
        errors: &'a Errors,
    ) -> BoxFuture<'a, Result<bool, PluginError>>;

    /// The content MD5 a listed ETag is, if it is one. S3 and GCS: the ETag
    /// of an object stored in one request.
    fn etag_md5(&self, etag: &str) -> Option<String> {
        store::etag_md5(etag)
    }

    /// Every object below `prefix` of `store`, the store of `bucket` (the
    /// whole bucket when empty), with its MD5: from the ETag when
    /// [`Backend::etag_md5`] says it is one, else from the object's
    /// metadata (a HEAD each, `concurrency` at a time). A provider whose
    /// listing can carry the MD5s lists with requests of its own, sent by
    /// `http`.
    fn list<'a>(
        &'a self,
        store: &'a dyn ObjectStore,
        _bucket: &'a str,
        prefix: &'a str,
        _http: &'a reqwest::Client,
        concurrency: usize,
        errors: &'a Errors,
    ) -> BoxFuture<'a, Result<Vec<Listed>, PluginError>> {
        Box::pin(store::list(
            store,
            prefix,
            move |etag: &str| self.etag_md5(etag),
            concurrency,
            errors,
        ))
    }

    /// Whether [`Backend::list_page`] costs about one list request a page,
    /// for every bucket this backend serves: its listing starts after a key
    /// on the server. S3 and GCS: yes (`start-after`).
    fn lists_pages(&self) -> bool {
        true
    }

    /// The page `span` of the listing of `store`, the store of `bucket`:
    /// its objects in key order, each as [`Backend::list`] gives it.
    fn list_page<'a>(
        &'a self,
        store: &'a dyn ObjectStore,
        _bucket: &'a str,
        span: PageSpan<'a>,
        _http: &'a reqwest::Client,
        concurrency: usize,
        errors: &'a Errors,
    ) -> BoxFuture<'a, Result<Vec<Listed>, PluginError>> {
        Box::pin(store::list_page(
            store,
            span,
            move |etag: &str| self.etag_md5(etag),
            concurrency,
            errors,
        ))
    }

    /// The objects of `keys` (full keys in `bucket`) that exist, each as
    /// [`Backend::list`] gives it: a HEAD each, `concurrency` at a time, its
    /// MD5 from the ETag or the metadata as `list` takes it. A provider that
    /// lists with requests of its own looks keys up with them too.
    fn list_keys<'a>(
        &'a self,
        store: &'a dyn ObjectStore,
        _bucket: &'a str,
        keys: &'a [String],
        _http: &'a reqwest::Client,
        concurrency: usize,
        errors: &'a Errors,
    ) -> BoxFuture<'a, Result<Vec<Listed>, PluginError>> {
        Box::pin(targeted::head_each(
            store,
            keys,
            move |etag: &str| self.etag_md5(etag),
            concurrency,
            errors,
        ))
    }
}

/// One page of a listing: up to `limit` objects below `prefix` (the whole
/// bucket when empty) whose full keys are strictly greater than `after`
/// (`""`: from the first).
#[derive(Clone, Copy, Debug)]
pub struct PageSpan<'a> {
    /// The key prefix listed below.
    pub prefix: &'a str,
    /// The full key the page starts after.
    pub after: &'a str,
    /// The most objects the page holds.
    pub limit: usize,
}

/// The providers of one plugin instance.
pub struct Backends {
    all: Vec<Box<dyn Backend>>,
}

impl Backends {
    /// Every provider, its settings resolved from `config` and the
    /// environment `env`. Settings a provider lacks (no credentials) are an
    /// error only when one of its buckets is used.
    pub fn new(
        config: &ObjstoreConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Backends, PluginError> {
        let all: Vec<Box<dyn Backend>> = vec![
            Box::new(s3::S3Backend::new(config, env)?),
            Box::new(gcs::GcsBackend::new(config, env)?),
            Box::new(azure::AzureBackend::new(config, env)?),
        ];
        Ok(Backends { all })
    }

    /// The provider serving `scheme`, if any.
    pub fn for_scheme(&self, scheme: &str) -> Option<&dyn Backend> {
        self.all
            .iter()
            .find(|b| b.schemes().contains(&scheme))
            .map(|b| b.as_ref())
    }

    /// Every scheme served, in order.
    pub fn schemes(&self) -> Vec<&'static str> {
        self.all
            .iter()
            .flat_map(|b| b.schemes().iter().copied())
            .collect()
    }

    /// Every provider.
    pub fn iter(&self) -> impl Iterator<Item = &dyn Backend> {
        self.all.iter().map(|b| b.as_ref())
    }

    /// The secret values of every provider's settings.
    pub fn secrets(&self) -> Vec<String> {
        self.all.iter().flat_map(|b| b.secrets()).collect()
    }
}
