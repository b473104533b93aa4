//! # stowage-plugin-memdir — the template for a Stowage plugin
//!
//! Copy this crate to start a plugin of your own; docs/PLUGINS.md ("Writing
//! one") walks through it. It is a real provider, kept small enough to read
//! top to bottom:
//!
//! - `memdir://bucket/prefix` is the directory `<root>/bucket/prefix`, and
//!   an object's key is its path below it, `/`-separated. `root` is the one
//!   key of the plugin's table in `plugins.toml`:
//!
//!   ```toml
//!   [schemes]
//!   memdir = "memdir"
//!
//!   [plugins.memdir]
//!   library = "stowage_plugin_memdir"
//!
//!   [plugins.memdir.config]
//!   root = "/srv/memdir"   # one directory per bucket
//!   ```
//!
//! - A bucket is a directory directly below `root`. A bucket that is not
//!   there is an error of kind `BucketMissing`; a prefix that is not there
//!   is empty, as in S3 (its directory appears with its first object).
//! - Objects appear whole or not at all: a write fills a temporary file in
//!   `<root>/.staging` and renames it into place, and `create_if_absent`
//!   hard-links it into place instead, which fails if the name is taken.
//!   Bucket names starting with `.` are refused, so none is `.staging`.
//!
//! Where to read: [`MemdirProvider`]'s [`StorageProvider`] impl is the whole
//! interface, one method after the other; `sync.rs` decides and carries out
//! a sync; `files.rs` maps keys to files and writes them. The conformance
//! suite runs against the built library in `tests/conformance.rs`.

mod files;
mod sync;

use std::path::{Path, PathBuf};

use serde::Deserialize;
use stowage_plugin_api::{
    export_plugin, ActionKind, ConfigKey, ConfigKind, ErrorKind, Location, ObjectEntry,
    PluginError, PluginInfo, ProgressSink, StorageProvider, SyncOptions, SyncReport, ToolStatus,
};

use crate::files::{io_error, md5_hex, relative_path, write_whole, Tree};

// The root module `stowage` looks for when it loads the library: every
// call goes through `MemdirProvider`, converted to FFI-safe types and
// guarded against panics.
export_plugin!(MemdirProvider::from_config);

/// The plugin's name, as `stowage plugins` shows it and `plugins.toml` uses it.
const NAME: &str = "memdir";

/// The URL scheme it serves.
const SCHEME: &str = "memdir";

/// Where writes are staged, below the root; no bucket can have this name.
const STAGING: &str = ".staging";

/// The plugin's table in `plugins.toml`. Every key here is declared in
/// [`StorageProvider::describe`] as well, so that `stowage` can check a
/// table before handing it over.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    root: String,
}

/// The `memdir://` provider: buckets are directories below `root`.
#[derive(Debug)]
pub struct MemdirProvider {
    root: PathBuf,
}

impl MemdirProvider {
    /// Builds the provider from its table in `plugins.toml` (TOML text, as
    /// the host passes it). Only reads it: whether `root` is usable is
    /// [`StorageProvider::check`]'s question, asked when the plugin is used.
    pub fn from_config(config: &str) -> Result<MemdirProvider, PluginError> {
        let config: Config = toml::from_str(config).map_err(|e| {
            PluginError::new(
                ErrorKind::Config,
                format!("plugin {NAME}: bad config in plugins.toml: {}", e.message()),
            )
        })?;
        Ok(MemdirProvider {
            root: expand_home(&config.root),
        })
    }

    /// The directory of `location`'s bucket, checking that `location` is a
    /// `memdir://bucket/prefix` URL with a plain bucket name; and its prefix.
    fn bucket_and_prefix(&self, location: &Location) -> Result<(PathBuf, String), PluginError> {
        let url = location
            .remote()
            .filter(|url| url.scheme == SCHEME)
            .ok_or_else(|| {
                PluginError::new(
                    ErrorKind::InvalidInput,
                    format!("plugin {NAME} serves {SCHEME}://bucket/prefix URLs, not {location}"),
                )
            })?;
        if url.bucket.is_empty() || url.bucket.starts_with('.') {
            return Err(PluginError::new(
                ErrorKind::InvalidInput,
                format!("{location}: {:?} is not a bucket name", url.bucket),
            ));
        }
        Ok((self.root.join(&url.bucket), url.prefix))
    }

    /// The directory `location` names, and where writes into it are staged.
    /// A bucket must exist; a prefix need not, nor a local directory.
    fn tree(&self, location: &Location) -> Result<Tree, PluginError> {
        if let Location::Local { path } = location {
            return Ok(Tree::local(Path::new(path)));
        }
        let (bucket, prefix) = self.bucket_and_prefix(location)?;
        if !bucket.is_dir() {
            return Err(PluginError::new(
                ErrorKind::BucketMissing,
                format!(
                    "bucket {location} does not exist (no directory {})",
                    bucket.display()
                ),
            ));
        }
        let dir = match prefix.as_str() {
            "" => bucket,
            prefix => bucket.join(relative_path(prefix)?),
        };
        Ok(Tree {
            dir,
            staging: self.root.join(STAGING),
        })
    }
}

impl StorageProvider for MemdirProvider {
    fn describe(&self) -> PluginInfo {
        PluginInfo::new(
            NAME,
            env!("CARGO_PKG_VERSION"),
            "Buckets as directories below a root (memdir://bucket/prefix); the plugin template.",
            None,
            &[SCHEME],
            vec![ConfigKey::new(
                "root",
                ConfigKind::Path,
                "The directory holding one directory per bucket (required).",
            )],
        )
    }

    fn check(&self) -> Result<ToolStatus, PluginError> {
        if !self.root.is_dir() {
            return Err(PluginError::new(
                ErrorKind::Config,
                format!(
                    "plugin {NAME}: root {} is not a directory; create it or change `root` in plugins.toml",
                    self.root.display()
                ),
            ));
        }
        Ok(ToolStatus {
            tool_version: None,
            endpoint: self.root.display().to_string(),
        })
    }

    fn list(&self, location: &Location) -> Result<Vec<ObjectEntry>, PluginError> {
        let mut entries = Vec::new();
        for object in self.tree(location)?.objects()? {
            let md5 = match md5_hex(&object.path) {
                Ok(md5) => md5,
                // Deleted since its directory was read: not there any more.
                Err(e) if e.kind == ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            entries.push(ObjectEntry {
                last_modified: Some(object.unix_mtime()),
                key: object.key,
                size: object.size,
                etag: Some(md5.clone()),
                md5: Some(md5),
            });
        }
        Ok(entries)
    }

    fn sync(
        &self,
        source: &Location,
        destination: &Location,
        options: &SyncOptions,
        progress: &dyn ProgressSink,
    ) -> Result<SyncReport, PluginError> {
        let from = self.tree(source)?;
        if !from.dir.is_dir() && source.remote().is_none() {
            // Never read a missing local source as empty: with `delete`,
            // that would empty the bucket.
            return Err(PluginError::new(
                ErrorKind::NotFound,
                format!("source directory {source} does not exist"),
            ));
        }
        let to = self.tree(destination)?;
        let kind = match (source, destination) {
            (Location::Local { .. }, _) => ActionKind::Upload,
            (_, Location::Local { .. }) => ActionKind::Download,
            _ => ActionKind::Copy,
        };
        sync::sync(&from, &to, kind, options, progress)
    }

    fn put(&self, file: &str, destination: &Location, key: &str) -> Result<(), PluginError> {
        let to = self.tree(destination)?;
        to.write_copy(key, Path::new(file))
    }

    fn get(&self, source: &Location, key: &str, file: &str) -> Result<(), PluginError> {
        let object = self.tree(source)?.path_of(key)?;
        if !object.is_file() {
            return Err(PluginError::new(
                ErrorKind::NotFound,
                format!("object {key} not found in {source}"),
            ));
        }
        let file = Path::new(file);
        write_whole(file.parent().unwrap_or(Path::new(".")), file, &object)
    }

    fn copy(
        &self,
        source: &Location,
        destination: &Location,
        keys: &[String],
    ) -> Result<SyncReport, PluginError> {
        let (from, to) = (self.tree(source)?, self.tree(destination)?);
        let mut report = SyncReport::default();
        for key in keys {
            let object = from.path_of(key)?;
            to.write_copy(key, &object)?;
            let size = object.metadata().map_or(0, |m| m.len());
            report.push(ActionKind::Copy, key.as_str(), size);
        }
        Ok(report)
    }

    fn delete(&self, location: &Location, keys: &[String]) -> Result<SyncReport, PluginError> {
        let tree = self.tree(location)?;
        let mut report = SyncReport::default();
        for key in keys {
            tree.remove(key)?;
            report.push(ActionKind::Delete, key.as_str(), 0);
        }
        Ok(report)
    }

    fn ensure_bucket(&self, location: &Location) -> Result<bool, PluginError> {
        let (bucket, _) = self.bucket_and_prefix(location)?;
        // Not create_dir_all: a missing root is a configuration mistake to
        // report, not a directory to conjure.
        match std::fs::create_dir(&bucket) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(io_error("cannot create bucket directory", &bucket)(e)),
        }
    }

    fn create_if_absent(
        &self,
        location: &Location,
        key: &str,
        bytes: &[u8],
    ) -> Result<bool, PluginError> {
        self.tree(location)?.create_new(key, bytes)
    }

    fn conditional_create(&self) -> bool {
        // create_if_absent hard-links a finished file to the key's name:
        // link(2) refuses a name that exists, atomically.
        true
    }

    // `list_keys`, `get_range` and `reads_ranges` (API 1.1), and
    // `list_page` and `lists_pages` (API 1.2) keep their defaults: `list`
    // filtered to the keys, no byte ranges (the host then downloads whole
    // objects), and pages cut out of one whole `list` (the host then lists
    // once). Implement them when the store can look up one object, read
    // part of one, or list from a key on, cheaply.
}

/// `path` with a leading `~/` replaced by the home directory, as
/// [`ConfigKind::Path`] promises.
fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => Path::new(&home).join(rest),
        _ => PathBuf::from(path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider(root: &Path) -> MemdirProvider {
        MemdirProvider::from_config(&format!("root = {:?}", root.display().to_string())).unwrap()
    }

    #[test]
    fn an_unknown_or_missing_config_key_is_a_config_error() {
        for table in ["root = \"/x\"\nroot_dir = \"/y\"", ""] {
            let error = MemdirProvider::from_config(table).unwrap_err();
            assert_eq!(error.kind, ErrorKind::Config, "{error}");
            assert!(!error.message.contains('\n'), "{error}");
        }
    }

    #[test]
    fn a_missing_root_fails_the_check_and_names_the_directory() {
        let error = provider(Path::new("/nonexistent/memdir"))
            .check()
            .unwrap_err();
        assert_eq!(error.kind, ErrorKind::Config);
        assert!(error.message.contains("/nonexistent/memdir"), "{error}");
    }

    #[test]
    fn other_schemes_and_odd_bucket_names_are_refused() {
        let root = tempfile::tempdir().unwrap();
        let memdir = provider(root.path());
        for url in ["s3://bucket", "memdir:///no-bucket", "memdir://.staging/x"] {
            let error = memdir.list(&Location::parse(url)).unwrap_err();
            assert_eq!(error.kind, ErrorKind::InvalidInput, "{url}: {error}");
        }
    }

    #[test]
    fn keys_cannot_leave_the_bucket() {
        let root = tempfile::tempdir().unwrap();
        let memdir = provider(root.path());
        let bucket = Location::parse("memdir://b");
        assert!(memdir.ensure_bucket(&bucket).unwrap());
        for key in ["../escaped", "a/../../escaped", "/etc/passwd", "a//b", ""] {
            let error = memdir.create_if_absent(&bucket, key, b"x").unwrap_err();
            assert_eq!(error.kind, ErrorKind::InvalidInput, "{key:?}: {error}");
        }
        let error = memdir
            .list(&Location::parse("memdir://b/../.."))
            .unwrap_err();
        assert_eq!(error.kind, ErrorKind::InvalidInput, "{error}");
    }
}
