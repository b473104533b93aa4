//! # stowage-plugin-fs — the local-filesystem provider
//!
//! A bucket is a directory: `file:///srv/buckets/uploads` is the directory
//! `/srv/buckets/uploads`, and an object's key is its path below it. It runs
//! no external tool, which makes it the default behind the README's main
//! command and the reference plugin to copy when writing a new one: read
//! [`FsProvider`]'s `StorageProvider` impl top to bottom.
//!
//! A location whose directory is missing but whose parent directory exists
//! is an empty prefix of an existing bucket (it is created on the first
//! write); one whose parent is missing too is a missing bucket.
//!
//! Writes are atomic (a partial file renamed into place), so a crash never
//! leaves half an object under its real name. `create_if_absent` hard-links
//! a partial file to the name, which fails if the name exists: a real
//! conditional create. Deletes run only after every
//! transfer of the same sync succeeded. `list_keys` stats each asked path,
//! `get_range` seeks, a `Planned` sync copies every source file without
//! walking the destination (unless it deletes), and `list_page` walks the
//! tree in key order from the page's first key on, resuming the walk of
//! the previous page where it can (`pages.rs`).
//!
//! Config table in `plugins.toml` (all optional):
//!
//! ```toml
//! [plugins.fs.config]
//! parallelism = 4   # files copied at once when a sync does not say
//! ```

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use serde::Deserialize;
use stowage_exclude::ExcludeMatcher;
use stowage_local_tree::{
    create_new_atomically, key_to_relative_path, md5_file, remove_file_and_empty_parents,
    stat_file, walk_each, with_path, write_atomically, LocalFile,
};
use stowage_plugin_api::{
    export_plugin, ActionKind, CompareMode, ConfigKey, ConfigKind, ErrorKind, Location,
    ObjectEntry, PluginError, PluginInfo, Progress, ProgressSink, StorageProvider, SyncOptions,
    SyncReport, ToolStatus,
};
use stowage_plugin_support::byte_range::range_end;
use stowage_plugin_support::config::parse_config;
use stowage_plugin_support::io_errors::from_io;
use stowage_plugin_support::paths::unserved;

mod pages;

export_plugin!(FsProvider::from_config);

/// The plugin's config table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FsConfig {
    parallelism: Option<u32>,
}

/// The keys of [`FsConfig`], as `describe` declares them.
fn options() -> Vec<ConfigKey> {
    vec![ConfigKey::new(
        "parallelism",
        ConfigKind::Integer,
        "Files copied at once when a sync does not set its own parallelism.",
    )
    .default("4")]
}

/// The local-filesystem provider.
#[derive(Debug)]
pub struct FsProvider {
    default_parallelism: u32,
    /// The walks of `list_page` kept for the next page.
    paused_walks: pages::PausedWalks,
}

impl FsProvider {
    /// Builds the provider from its `plugins.toml` table (TOML text).
    pub fn from_config(config: &str) -> Result<FsProvider, PluginError> {
        let config: FsConfig = parse_config("fs", config)?;
        Ok(FsProvider {
            default_parallelism: config.parallelism.unwrap_or(4).max(1),
            paused_walks: pages::PausedWalks::default(),
        })
    }
}

/// The directory a location names: a local path, or the path of a `file://` URL.
fn directory(location: &Location) -> Result<PathBuf, PluginError> {
    match location {
        Location::Local { path } => Ok(PathBuf::from(path.as_str())),
        Location::Remote { .. } => match location.remote() {
            Some(remote) if remote.scheme == "file" && remote.bucket.is_empty() => {
                Ok(PathBuf::from(format!("/{}", remote.prefix)))
            }
            _ => Err(unserved("fs", "file:///absolute/path", location)),
        },
    }
}

/// The directory of a location written to, inside an existing bucket. A
/// missing directory whose parent exists is a prefix not made yet (as in
/// S3, a prefix with no objects yet); if the parent is missing too, the
/// bucket is.
fn existing_directory(location: &Location) -> Result<PathBuf, PluginError> {
    directory_where(location, |dir| {
        dir.is_dir() || dir.parent().is_some_and(Path::is_dir)
    })
}

/// The directory of a location read from: it must exist, or the bucket
/// is missing. (A write may name a prefix not made yet, see
/// [`existing_directory`]; a read of a directory that is not there is a
/// misspelt bucket far more often than an empty prefix.)
fn readable_directory(location: &Location) -> Result<PathBuf, PluginError> {
    directory_where(location, Path::is_dir)
}

/// The directory of `location` if `usable` says so, else `BucketMissing`.
fn directory_where(
    location: &Location,
    usable: impl Fn(&Path) -> bool,
) -> Result<PathBuf, PluginError> {
    let dir = directory(location)?;
    if usable(&dir) {
        return Ok(dir);
    }
    Err(PluginError::new(
        ErrorKind::BucketMissing,
        format!(
            "bucket {location} does not exist (no directory {})",
            dir.display()
        ),
    ))
}

fn object_path(root: &Path, key: &str) -> Result<PathBuf, PluginError> {
    Ok(root.join(key_to_relative_path(key).map_err(from_io)?))
}

/// A file of a walked tree, without its path (made again from the root and
/// the key when needed): a million paths held at once are ~150 MB.
#[derive(Debug)]
struct TreeFile {
    /// Path relative to the root, `/`-separated.
    key: String,
    /// Size in bytes.
    size: u64,
    /// Modification time, seconds since the Unix epoch.
    mtime: i64,
}

impl TreeFile {
    /// The file's path below `root`.
    fn path(&self, root: &Path) -> Result<PathBuf, PluginError> {
        object_path(root, &self.key)
    }
}

/// The files below `root` that `excludes` lets through, sorted by key,
/// each path dropped as soon as its file was found.
fn tree_files(root: &Path, excludes: &ExcludeMatcher) -> Result<Vec<TreeFile>, PluginError> {
    let mut files = Vec::new();
    walk_each(root, |file| {
        if !excludes.is_excluded(&file.key) {
            files.push(TreeFile {
                key: file.key,
                size: file.size,
                mtime: file.mtime,
            });
        }
        Ok(())
    })
    .map_err(from_io)?;
    files.sort_unstable_by(|a, b| a.key.cmp(&b.key));
    Ok(files)
}

fn copy_file(from: &Path, to: &Path) -> Result<(), PluginError> {
    write_atomically(to, |partial| std::fs::copy(from, partial).map(|_| ())).map_err(from_io)
}

/// Whether the destination copy of a file is up to date under `mode`
/// (`roots`: the source's and the destination's).
fn unchanged(
    source: &TreeFile,
    destination: &TreeFile,
    roots: (&Path, &Path),
    mode: CompareMode,
) -> Result<bool, PluginError> {
    if source.size != destination.size {
        return Ok(false);
    }
    Ok(match mode {
        CompareMode::Size => true,
        CompareMode::SizeMtime => destination.mtime >= source.mtime,
        CompareMode::Checksum => {
            md5_file(&source.path(roots.0)?).map_err(from_io)?
                == md5_file(&destination.path(roots.1)?).map_err(from_io)?
        }
        // The host planned this transfer: make it.
        CompareMode::Planned => false,
        newer => {
            return Err(PluginError::new(
                ErrorKind::InvalidInput,
                format!("plugin fs does not know the compare mode {newer:?}"),
            ))
        }
    })
}

/// The kind of transfer between two locations.
fn transfer_kind(source: &Location, destination: &Location) -> ActionKind {
    match (source, destination) {
        (Location::Local { .. }, Location::Remote { .. }) => ActionKind::Upload,
        (Location::Remote { .. }, Location::Local { .. }) => ActionKind::Download,
        _ => ActionKind::Copy,
    }
}

impl StorageProvider for FsProvider {
    fn describe(&self) -> PluginInfo {
        PluginInfo::new(
            "fs",
            env!("CARGO_PKG_VERSION"),
            "Local filesystem: a bucket is a directory (file:///path).",
            None,
            &["file"],
            options(),
        )
    }

    fn check(&self) -> Result<ToolStatus, PluginError> {
        Ok(ToolStatus {
            tool_version: None,
            endpoint: "local filesystem".into(),
        })
    }

    fn list(&self, location: &Location) -> Result<Vec<ObjectEntry>, PluginError> {
        let root = readable_directory(location)?;
        let mut entries = Vec::new();
        walk_each(&root, |file| {
            entries.extend(listed_entry(file)?);
            Ok(())
        })
        .map_err(from_io)?;
        entries.sort_unstable_by(|a, b| a.key.cmp(&b.key));
        Ok(entries)
    }

    fn sync(
        &self,
        source: &Location,
        destination: &Location,
        options: &SyncOptions,
        progress: &dyn ProgressSink,
    ) -> Result<SyncReport, PluginError> {
        let source_root = match source {
            Location::Local { .. } => directory(source)?,
            Location::Remote { .. } => readable_directory(source)?,
        };
        let destination_root = match destination {
            Location::Local { .. } => directory(destination)?,
            Location::Remote { .. } => existing_directory(destination)?,
        };
        let excludes = ExcludeMatcher::new(&options.excludes)
            .map_err(|e| PluginError::new(ErrorKind::InvalidInput, e))?;
        let source_files = if source_root.is_dir() || source.remote().is_none() {
            tree_files(&source_root, &excludes)?
        } else {
            Vec::new()
        };
        // A planned sync that deletes nothing need not know the destination.
        let destination_needed = options.delete || options.compare != CompareMode::Planned;
        let mut destination_files: HashMap<String, TreeFile> =
            if destination_needed && destination_root.is_dir() {
                tree_files(&destination_root, &excludes)?
                    .into_iter()
                    .map(|f| (f.key.clone(), f))
                    .collect()
            } else {
                HashMap::new()
            };

        // Decide every action before doing any.
        let kind = transfer_kind(source, destination);
        let mut report = SyncReport::default();
        let mut transfers = Vec::new();
        for file in source_files {
            let up_to_date = match destination_files.remove(&file.key) {
                Some(existing) => unchanged(
                    &file,
                    &existing,
                    (&source_root, &destination_root),
                    options.compare,
                )?,
                None => false,
            };
            if up_to_date {
                report.push(ActionKind::Skip, file.key, file.size);
            } else {
                transfers.push(file);
            }
        }
        let mut deletes: Vec<TreeFile> = if options.delete {
            destination_files.into_values().collect()
        } else {
            Vec::new()
        };
        deletes.sort_by(|a, b| a.key.cmp(&b.key));
        if let Some(max) = options.max_deletes {
            if deletes.len() as u64 > max {
                return Err(PluginError::new(
                    ErrorKind::LimitExceeded,
                    format!(
                        "sync would delete {} objects from {destination}, more than the limit of {max}; nothing was changed",
                        deletes.len()
                    ),
                ));
            }
        }
        if options.dry_run {
            for file in transfers {
                report.push(kind, file.key, file.size);
            }
            for file in deletes {
                report.push(ActionKind::Delete, file.key, 0);
            }
            return Ok(report);
        }

        // Transfers first, in parallel; deletes only once all of them succeeded.
        let parallelism = match options.parallelism {
            0 => self.default_parallelism,
            n => n,
        };
        let roots = (source_root.as_path(), destination_root.as_path());
        copy_in_parallel(&transfers, roots, parallelism, progress)?;
        // The keys move into the report: no second copy of every key.
        for file in transfers {
            report.push(kind, file.key, file.size);
        }
        for file in deletes {
            remove_file_and_empty_parents(&destination_root, &file.path(&destination_root)?)
                .map_err(from_io)?;
            report.push(ActionKind::Delete, file.key, 0);
        }
        Ok(report)
    }

    fn put(&self, file: &str, destination: &Location, key: &str) -> Result<(), PluginError> {
        let root = existing_directory(destination)?;
        copy_file(Path::new(file), &object_path(&root, key)?)
    }

    fn get(&self, source: &Location, key: &str, file: &str) -> Result<(), PluginError> {
        let root = readable_directory(source)?;
        let object = object_path(&root, key)?;
        if !object.is_file() {
            return Err(not_found(source, key));
        }
        copy_file(&object, Path::new(file))
    }

    fn copy(
        &self,
        source: &Location,
        destination: &Location,
        keys: &[String],
    ) -> Result<SyncReport, PluginError> {
        let from = readable_directory(source)?;
        let to = existing_directory(destination)?;
        let mut report = SyncReport::default();
        for key in keys {
            let object = object_path(&from, key)?;
            copy_file(&object, &object_path(&to, key)?)?;
            let size = std::fs::metadata(&object).map(|m| m.len()).unwrap_or(0);
            report.push(ActionKind::Copy, key.clone(), size);
        }
        Ok(report)
    }

    fn delete(&self, location: &Location, keys: &[String]) -> Result<SyncReport, PluginError> {
        let root = existing_directory(location)?;
        let mut report = SyncReport::default();
        for key in keys {
            remove_file_and_empty_parents(&root, &object_path(&root, key)?).map_err(from_io)?;
            report.push(ActionKind::Delete, key.clone(), 0);
        }
        Ok(report)
    }

    fn ensure_bucket(&self, location: &Location) -> Result<bool, PluginError> {
        let dir = directory(location)?;
        if dir.is_dir() {
            return Ok(false);
        }
        std::fs::create_dir_all(&dir)
            .map_err(|e| from_io(with_path("cannot create directory", &dir, e)))?;
        Ok(true)
    }

    fn create_if_absent(
        &self,
        location: &Location,
        key: &str,
        bytes: &[u8],
    ) -> Result<bool, PluginError> {
        let root = existing_directory(location)?;
        create_new_atomically(&object_path(&root, key)?, bytes).map_err(from_io)
    }

    fn conditional_create(&self) -> bool {
        true
    }

    fn list_keys(
        &self,
        location: &Location,
        keys: &[String],
    ) -> Result<Vec<ObjectEntry>, PluginError> {
        let root = readable_directory(location)?;
        let mut entries = Vec::new();
        for key in keys {
            if let Some(file) = stat_file(&root, key).map_err(from_io)? {
                entries.extend(listed_entry(file).map_err(from_io)?);
            }
        }
        Ok(entries)
    }

    fn get_range(
        &self,
        source: &Location,
        key: &str,
        offset: u64,
        length: u64,
        file: &str,
    ) -> Result<(), PluginError> {
        let root = readable_directory(source)?;
        let object = object_path(&root, key)?;
        let mut reader = std::fs::File::open(&object).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => not_found(source, key),
            _ => from_io(with_path("cannot open", &object, e)),
        })?;
        let size = reader.metadata().map_err(from_io)?.len();
        range_end(&format!("{key} in {source}"), offset, length, size)?;
        reader
            .seek(SeekFrom::Start(offset))
            .map_err(|e| from_io(with_path("cannot seek", &object, e)))?;
        write_atomically(Path::new(file), |partial| {
            let mut out = std::fs::File::create(partial)?;
            std::io::copy(&mut (&mut reader).take(length), &mut out).map(|_| ())
        })
        .map_err(from_io)
    }

    fn reads_ranges(&self) -> bool {
        true
    }

    fn list_page(
        &self,
        location: &Location,
        after: &str,
        limit: u32,
    ) -> Result<Vec<ObjectEntry>, PluginError> {
        let root = readable_directory(location)?;
        let mut walk = self.paused_walks.resume(&root, after).map_err(from_io)?;
        let mut entries = Vec::new();
        while entries.len() < limit as usize {
            let Some(file) = walk.next_file().map_err(from_io)? else {
                return Ok(entries);
            };
            entries.extend(listed_entry(file).map_err(from_io)?);
        }
        if let Some(last) = entries.last() {
            self.paused_walks.pause(&root, &last.key, walk);
        }
        Ok(entries)
    }

    fn lists_pages(&self) -> bool {
        true
    }
}

/// A listing's entry for `file`, with its content's MD5; none for a file
/// deleted since it was found, as in S3. A directory has no ETag, and
/// repeating the MD5 as one would cost ~100 bytes an object while a
/// listing crosses to the host.
fn listed_entry(file: LocalFile) -> std::io::Result<Option<ObjectEntry>> {
    let md5 = match md5_file(&file.path) {
        Ok(md5) => md5,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok(Some(ObjectEntry {
        key: file.key,
        size: file.size,
        etag: None,
        md5: Some(md5),
        last_modified: Some(file.mtime),
    }))
}

/// The error for an object that is not there.
fn not_found(source: &Location, key: &str) -> PluginError {
    PluginError::new(
        ErrorKind::NotFound,
        format!("object {key} not found in {source}"),
    )
}

/// Copies `files` from the first root to below the second with
/// `parallelism` threads, reporting progress; fails with the first error
/// once every started copy has finished.
fn copy_in_parallel(
    files: &[TreeFile],
    (source_root, destination_root): (&Path, &Path),
    parallelism: u32,
    progress: &dyn ProgressSink,
) -> Result<(), PluginError> {
    let next = AtomicUsize::new(0);
    let objects_done = AtomicU64::new(0);
    let bytes_done = AtomicU64::new(0);
    let first_error: Mutex<Option<PluginError>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..parallelism.min(files.len().max(1) as u32) {
            scope.spawn(|| loop {
                if first_error.lock().expect("no panics while held").is_some() {
                    return;
                }
                let Some(file) = files.get(next.fetch_add(1, Ordering::SeqCst)) else {
                    return;
                };
                let result = object_path(destination_root, &file.key)
                    .and_then(|target| copy_file(&file.path(source_root)?, &target));
                if let Err(e) = result {
                    first_error
                        .lock()
                        .expect("no panics while held")
                        .get_or_insert(e);
                    return;
                }
                progress.report(&Progress {
                    objects_done: objects_done.fetch_add(1, Ordering::SeqCst) + 1,
                    bytes_done: bytes_done.fetch_add(file.size, Ordering::SeqCst) + file.size,
                    current_key: file.key.as_str().into(),
                });
            });
        }
    });
    match first_error.into_inner().expect("no panics while held") {
        Some(error) => Err(error),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use stowage_plugin_support::config::assert_declared_options;

    use super::*;

    #[test]
    fn the_declared_options_are_the_config_keys() {
        let info = FsProvider::from_config("").unwrap().describe();
        assert_declared_options::<FsConfig>(&info.options);
    }
}
