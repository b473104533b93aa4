//! The provider interface: what a plugin implements. **Read this file first.**
//!
//! A plugin author implements [`StorageProvider`] — plain Rust: `&str`,
//! `String`, `Vec`, `Result` — and writes one line at the crate root:
//!
//! ```ignore
//! stowage_plugin_api::export_plugin!(MyProvider::from_config);
//! ```
//!
//! where `MyProvider::from_config(config_toml: &str) -> Result<MyProvider, PluginError>`
//! receives the plugin's table from `plugins.toml`, serialised as TOML, as-is.
//! The crate is built as a `cdylib` and depends on `abi_stable` (the export
//! attribute names it) as well as on `stowage-plugin-api`.
//!
//! The macro exports the root module and wraps the provider so every call is
//! converted to FFI-safe types and runs inside [`crate::guard::guard`]
//! ([`crate::ffi`] has the details; no plugin needs them). The host sees the
//! plugin through the same trait.
//!
//! Keys in every call are relative to the location given; the host never
//! passes a key with a leading `/` or a `..` segment.
//!
//! The first nine methods are the whole job; the rest have defaults that
//! are always correct, and a plugin overrides them where its store does
//! better: a real conditional create, looking up chosen keys without a
//! full listing, reading a byte range, listing one page at a time.

use crate::types::{
    ErrorKind, Location, ObjectEntry, PluginError, PluginInfo, Progress, SyncOptions, SyncReport,
    ToolStatus,
};

/// The operations a backup and a restore need. Every method blocks until
/// done; the host may call any of them from several threads at once.
pub trait StorageProvider: Send + Sync + 'static {
    /// Who this plugin is, which schemes it serves and which config keys it
    /// takes. Cheap: runs no tool.
    fn describe(&self) -> PluginInfo;

    /// Whether the plugin can work: the tool is installed, the endpoint
    /// answers, the credentials are accepted. One clear error when not.
    fn check(&self) -> Result<ToolStatus, PluginError>;

    /// Every object below `location`, recursively, with its size, and its
    /// content MD5 wherever the store can tell it (at least for objects
    /// uploaded in one part, unencrypted). A missing bucket is an error of
    /// kind `BucketMissing`.
    fn list(&self, location: &Location) -> Result<Vec<ObjectEntry>, PluginError>;

    /// Makes `destination` hold what `source` holds, as `options` say. One
    /// side is remote; the other is local, or remote too (bucket to bucket,
    /// server-side where the store can). Reports every action taken, or in
    /// a dry run, every action it would take; calls `progress` as it goes.
    fn sync(
        &self,
        source: &Location,
        destination: &Location,
        options: &SyncOptions,
        progress: &dyn ProgressSink,
    ) -> Result<SyncReport, PluginError>;

    /// Uploads the local `file` as `key` below `destination`.
    fn put(&self, file: &str, destination: &Location, key: &str) -> Result<(), PluginError>;

    /// Downloads `key` below `source` into the local `file`.
    fn get(&self, source: &Location, key: &str, file: &str) -> Result<(), PluginError>;

    /// Copies `keys` from below `source` to the same keys below
    /// `destination` (server-side where the provider can). A missing
    /// destination bucket is an error of kind `BucketMissing` (the host then
    /// creates it and copies again).
    fn copy(
        &self,
        source: &Location,
        destination: &Location,
        keys: &[String],
    ) -> Result<SyncReport, PluginError>;

    /// Deletes `keys` below `location`; a key that is already gone is not an error.
    fn delete(&self, location: &Location, keys: &[String]) -> Result<SyncReport, PluginError>;

    /// Creates the bucket of `location` if it does not exist; returns whether
    /// it created one.
    fn ensure_bucket(&self, location: &Location) -> Result<bool, PluginError>;

    /// Stores `bytes` as `key` below `location` only if no object has that
    /// key, atomically: of several callers racing for one key, exactly one
    /// gets `Ok(true)`; the others get `Ok(false)`, and the object holds the
    /// winner's bytes, whole. A missing bucket is an error of kind
    /// `BucketMissing`.
    ///
    /// Implement it only with the store's own conditional create (S3
    /// `If-None-Match: *`, GCS `ifGenerationMatch=0`, a hard link or
    /// `O_EXCL` on a filesystem), never as a check followed by a write, and
    /// then say so with [`StorageProvider::conditional_create`]. The default
    /// says the plugin cannot. The host uses it for its restore locks and to
    /// claim archive names.
    fn create_if_absent(
        &self,
        location: &Location,
        key: &str,
        bytes: &[u8],
    ) -> Result<bool, PluginError> {
        let _ = (location, key, bytes);
        Err(PluginError::new(
            ErrorKind::InvalidInput,
            format!(
                "plugin {} cannot create an object only if it is absent",
                self.describe().name
            ),
        ))
    }

    /// Whether [`StorageProvider::create_if_absent`] is a real conditional
    /// create here. The host reads it before choosing how to lock; `false`
    /// (the default) makes it fall back to a weaker protocol.
    fn conditional_create(&self) -> bool {
        false
    }

    // API 1.1 added the methods below; a plugin built against 1.0 gets
    // their default bodies (the host's loader answers for it).

    /// The entries [`StorageProvider::list`] would give for exactly these
    /// `keys` below `location`, those that exist: absent keys are left out,
    /// the order is unspecified. A missing bucket is an error of kind
    /// `BucketMissing`, as for `list`.
    ///
    /// Each entry must equal the one `list` gives for that object (size,
    /// MD5, ETag, last modification): the host compares them with an
    /// earlier listing to tell whether an object moved. It asks for a few
    /// hundred keys of a bucket of many thousands, so a plugin that can
    /// should answer with one cheap request per key, several at once. The
    /// default lists the whole location and keeps the asked keys.
    fn list_keys(
        &self,
        location: &Location,
        keys: &[String],
    ) -> Result<Vec<ObjectEntry>, PluginError> {
        let asked: std::collections::HashSet<&str> = keys.iter().map(String::as_str).collect();
        let mut entries = self.list(location)?;
        entries.retain(|entry| asked.contains(entry.key.as_str()));
        Ok(entries)
    }

    /// Downloads the bytes `[offset, offset + length)` of `key` below
    /// `source` into the local `file` (created, or truncated). A range that
    /// ends past the end of the object is an error of kind `InvalidInput`.
    ///
    /// Implement it with the store's own ranged read, and then say so with
    /// [`StorageProvider::reads_ranges`]. The default says the plugin
    /// cannot; the host then downloads the whole object with
    /// [`StorageProvider::get`].
    fn get_range(
        &self,
        source: &Location,
        key: &str,
        offset: u64,
        length: u64,
        file: &str,
    ) -> Result<(), PluginError> {
        let _ = (source, key, offset, length, file);
        Err(PluginError::new(
            ErrorKind::InvalidInput,
            format!(
                "plugin {} cannot read a byte range of an object",
                self.describe().name
            ),
        ))
    }

    /// Whether [`StorageProvider::get_range`] reads a range here. `false`
    /// (the default) makes the host download whole objects.
    fn reads_ranges(&self) -> bool {
        false
    }

    // API 1.2 added the methods below; a plugin built against 1.0 or 1.1
    // gets their default bodies (the host's loader answers for it).

    /// Up to `limit` entries of [`StorageProvider::list`]`(location)`, in
    /// ascending key order (the byte order of the UTF-8 keys, as
    /// [`str::cmp`] orders them), every key strictly greater than `after`
    /// (`""`: from the first key). A page of fewer than `limit` entries is
    /// the last one: a plugin whose store answers in smaller pages keeps
    /// asking until it has `limit` entries or the listing ends. Each entry
    /// is identical to the one `list` gives (size, MD5, ETag, last
    /// modification). A missing bucket is an error of kind `BucketMissing`,
    /// as for `list`.
    ///
    /// The host walks a bucket with `list_page(location, "", 1000)`, then
    /// `after` = the last key of the previous page, until a short page, so
    /// that it never holds a whole listing. Implement it where a page costs
    /// about one store request, and then say so with
    /// [`StorageProvider::lists_pages`]. The default lists the whole
    /// location and keeps one page: correct, never cheaper.
    fn list_page(
        &self,
        location: &Location,
        after: &str,
        limit: u32,
    ) -> Result<Vec<ObjectEntry>, PluginError> {
        let mut entries = self.list(location)?;
        entries.retain(|entry| entry.key.as_str() > after);
        entries.sort_unstable_by(|a, b| a.key.cmp(&b.key));
        entries.truncate(limit as usize);
        Ok(entries)
    }

    /// Whether [`StorageProvider::list_page`] pages natively here: each page
    /// costs about one store request, not a whole listing. `false` (the
    /// default) makes the host call [`StorageProvider::list`] once instead.
    fn lists_pages(&self) -> bool {
        false
    }
}

/// Receives progress updates; the host implements it (a progress bar).
pub trait ProgressSink: Sync {
    /// Called by the plugin whenever it finishes an object (or more often).
    /// Cheap and never blocking; must not panic.
    fn report(&self, progress: &Progress);
}

/// A sink that drops every update, for callers that show no progress.
pub struct IgnoreProgress;

impl ProgressSink for IgnoreProgress {
    fn report(&self, _progress: &Progress) {}
}
