//! A loaded plugin as the host calls it: one facade whose methods take the
//! host's arguments and return the host's errors, so no caller converts a
//! plugin's result by hand.
//!
//! Each error names what was being done ("cannot list s3://b/p: ...") and
//! keeps the plugin's [`ErrorKind`] for the exit code and for callers that
//! act on it ([`plugin_error_kind`]). The secret values of the plugin's
//! table are cut out of every message it returns ([`Secrets`]).

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use stowage_plugin_api::{
    ErrorKind, Location, ObjectEntry, PluginError, PluginInfo, ProgressSink, StorageProvider,
    SyncOptions, SyncReport, ToolStatus,
};

use crate::exit::{ConfigError, Refused};
use crate::output::counted;
use crate::plugin_table::Secrets;

/// How many entries the host asks a plugin that lists pages for at once
/// (S3 answers 1,000 a request).
pub const LISTING_PAGE: u32 = 1000;

/// A plugin whose library loaded and whose provider was built.
pub struct LoadedPlugin {
    /// Its name in `plugins.toml`.
    pub name: String,
    /// The library it came from.
    pub library: PathBuf,
    /// The plugin API version it was built against.
    pub api_version: String,
    /// What the plugin says about itself.
    pub info: PluginInfo,
    provider: Box<dyn StorageProvider>,
    secrets: Secrets,
}

impl LoadedPlugin {
    /// The plugin `name` from `library`, built against `api_version`, calling `provider`.
    pub fn new(
        name: &str,
        library: &Path,
        api_version: String,
        provider: Box<dyn StorageProvider>,
    ) -> LoadedPlugin {
        LoadedPlugin {
            name: name.to_string(),
            library: library.to_path_buf(),
            api_version,
            info: provider.describe(),
            provider,
            secrets: Secrets::default(),
        }
    }

    /// The same plugin, cutting `secrets` out of every message it returns.
    pub fn redacting(mut self, secrets: Secrets) -> LoadedPlugin {
        self.secrets = secrets;
        self
    }

    /// The plugin's own interface, with its own errors: for callers that
    /// test the plugin contract itself (the conformance suite).
    pub fn provider(&self) -> &dyn StorageProvider {
        self.provider.as_ref()
    }

    /// Whether the plugin can work (its tool, endpoint and credentials).
    pub fn check(&self) -> Result<ToolStatus> {
        let name = &self.name;
        let mut status = self
            .provider
            .check()
            .map_err(|e| self.failure(format_args!("plugin {name}"), e))?;
        status.endpoint = self.secrets.redact(&status.endpoint);
        Ok(status)
    }

    /// Every object below `location`.
    pub fn list(&self, location: &Location) -> Result<Vec<ObjectEntry>> {
        self.provider
            .list(location)
            .map_err(|e| self.failure(format_args!("cannot list {location}"), e))
    }

    /// Every object below `location`, handed to `on_entries` a part at a
    /// time: what `on_entries` keeps of them is all the host holds of the
    /// listing. A plugin that lists pages gives them [`LISTING_PAGE`]
    /// entries at a time, in key order; any other its whole listing at
    /// once, in its own order.
    pub fn list_each(
        &self,
        location: &Location,
        on_entries: &mut dyn FnMut(Vec<ObjectEntry>) -> Result<()>,
    ) -> Result<()> {
        if !self.provider.lists_pages() {
            return on_entries(self.list(location)?);
        }
        let mut after = String::new();
        loop {
            let page = self
                .provider
                .list_page(location, &after, LISTING_PAGE)
                .map_err(|e| self.failure(format_args!("cannot list {location}"), e))?;
            let last = page.len() < LISTING_PAGE as usize;
            if let Some(entry) = page.last() {
                if entry.key <= after {
                    bail!(
                        "plugin {}: a page of {location} did not move past {after:?}",
                        self.name
                    );
                }
                after.clone_from(&entry.key);
            }
            on_entries(page)?;
            if last {
                return Ok(());
            }
        }
    }

    /// The entries `list` gives for exactly `keys` below `location`.
    pub fn list_keys(&self, location: &Location, keys: &[String]) -> Result<Vec<ObjectEntry>> {
        self.provider.list_keys(location, keys).map_err(|e| {
            self.failure(
                format_args!(
                    "cannot list {} of {location}",
                    counted(keys.len() as u64, "key")
                ),
                e,
            )
        })
    }

    /// Makes `destination` hold what `source` holds, as `options` say.
    pub fn sync(
        &self,
        source: &Location,
        destination: &Location,
        options: &SyncOptions,
        progress: &dyn ProgressSink,
    ) -> Result<SyncReport> {
        self.provider
            .sync(source, destination, options, progress)
            .map_err(|e| self.failure(format_args!("cannot sync {source} to {destination}"), e))
    }

    /// Uploads the local `file` as `key` below `destination`.
    pub fn put(&self, file: &Path, destination: &Location, key: &str) -> Result<()> {
        self.provider
            .put(&file.to_string_lossy(), destination, key)
            .map_err(|e| self.failure(format_args!("cannot upload {key} to {destination}"), e))
    }

    /// Downloads `key` below `source` into the local `file`.
    pub fn get(&self, source: &Location, key: &str, file: &Path) -> Result<()> {
        self.provider
            .get(source, key, &file.to_string_lossy())
            .map_err(|e| self.failure(format_args!("cannot download {key} from {source}"), e))
    }

    /// Downloads the bytes `[offset, offset + length)` of `key` below
    /// `source` into the local `file`.
    pub fn get_range(
        &self,
        source: &Location,
        key: &str,
        offset: u64,
        length: u64,
        file: &Path,
    ) -> Result<()> {
        self.provider
            .get_range(source, key, offset, length, &file.to_string_lossy())
            .map_err(|e| {
                self.failure(
                    format_args!(
                        "cannot download {length} bytes at {offset} of {key} from {source}"
                    ),
                    e,
                )
            })
    }

    /// Whether [`LoadedPlugin::get_range`] reads a range (else only whole
    /// objects can be downloaded).
    pub fn reads_ranges(&self) -> bool {
        self.provider.reads_ranges()
    }

    /// Copies `keys` from below `source` to the same keys below `destination`.
    pub fn copy(
        &self,
        source: &Location,
        destination: &Location,
        keys: &[String],
    ) -> Result<SyncReport> {
        self.provider.copy(source, destination, keys).map_err(|e| {
            self.failure(
                format_args!(
                    "cannot copy {} from {source} to {destination}",
                    counted(keys.len() as u64, "object")
                ),
                e,
            )
        })
    }

    /// Deletes `keys` below `location`.
    pub fn delete(&self, location: &Location, keys: &[String]) -> Result<SyncReport> {
        self.provider.delete(location, keys).map_err(|e| {
            self.failure(
                format_args!(
                    "cannot delete {} from {location}",
                    counted(keys.len() as u64, "object")
                ),
                e,
            )
        })
    }

    /// Creates the bucket of `location` if it does not exist; whether it did.
    pub fn ensure_bucket(&self, location: &Location) -> Result<bool> {
        self.provider
            .ensure_bucket(location)
            .map_err(|e| self.failure(format_args!("cannot create bucket {location}"), e))
    }

    /// Stores `bytes` as `key` below `location` only if no object has that
    /// key; whether it did.
    pub fn create_if_absent(&self, location: &Location, key: &str, bytes: &[u8]) -> Result<bool> {
        self.provider
            .create_if_absent(location, key, bytes)
            .map_err(|e| self.failure(format_args!("cannot create {key} in {location}"), e))
    }

    /// Whether [`LoadedPlugin::create_if_absent`] is a real conditional create.
    pub fn conditional_create(&self) -> bool {
        self.provider.conditional_create()
    }

    /// `error`, prefixed with `context` and with the secrets cut out, as an
    /// `anyhow::Error` whose exit code follows its kind: a refused limit
    /// exits 5, a missing tool or bad plugin config exits 3, anything else 1
    /// (as a [`PluginFailure`]).
    fn failure(&self, context: impl fmt::Display, error: PluginError) -> anyhow::Error {
        let message = self.secrets.redact(&format!("{context}: {error}"));
        match error.kind {
            ErrorKind::LimitExceeded => Refused(message).into(),
            ErrorKind::Config | ErrorKind::ToolMissing => ConfigError(message).into(),
            kind => PluginFailure { kind, message }.into(),
        }
    }
}

/// A plugin call that failed, with the plugin's kind kept.
#[derive(Debug)]
pub struct PluginFailure {
    /// What went wrong, as the plugin classified it.
    pub kind: ErrorKind,
    /// The message, with the caller's context in front.
    pub message: String,
}

impl fmt::Display for PluginFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for PluginFailure {}

/// The plugin error kind behind `error`, if a plugin call caused it.
pub fn plugin_error_kind(error: &anyhow::Error) -> Option<ErrorKind> {
    error
        .chain()
        .find_map(|e| e.downcast_ref::<PluginFailure>().map(|f| f.kind))
}
