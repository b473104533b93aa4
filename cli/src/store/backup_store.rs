//! Where archives live: a local directory, or a bucket served by a plugin.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use stowage_local_tree::{create_new_atomically, write_atomically};
use stowage_plugin_api::{ErrorKind, Location};

use crate::archive::name::ArchiveName;
use crate::exit::NotFound;
use crate::plugin::plugin_error_kind;
use crate::plugin::LoadedPlugin;
use crate::registry::Registry;
use crate::sync::verify::owned_keys;

/// One archive found in a store.
#[derive(Clone, Debug, serde::Serialize)]
pub struct StoredArchive {
    /// Its file name.
    pub file_name: String,
    /// Its timestamp (seconds since the epoch).
    pub timestamp: u64,
    /// Its label.
    pub label: String,
    /// Its size in bytes.
    pub size: u64,
}

/// The backup destination.
pub struct BackupStore<'r> {
    location: Location,
    plugin: Option<&'r LoadedPlugin>,
}

impl<'r> BackupStore<'r> {
    /// The store at `location`, with the plugin that serves it if it is a bucket.
    pub fn open(location: &Location, registry: &'r Registry) -> Result<Self> {
        let plugin = match location {
            Location::Local { .. } => None,
            Location::Remote { .. } => Some(registry.for_location(location, None)?),
        };
        Ok(BackupStore {
            location: location.clone(),
            plugin,
        })
    }

    /// Where it is.
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// The plugin that serves it, when it is a bucket.
    pub fn plugin(&self) -> Option<&'r LoadedPlugin> {
        self.plugin
    }

    fn local_dir(&self) -> Option<PathBuf> {
        match &self.location {
            Location::Local { path } => Some(PathBuf::from(path.as_str())),
            Location::Remote { .. } => None,
        }
    }

    /// The name and size of every file at the top level.
    fn files(&self) -> Result<Vec<(String, u64)>> {
        if let Some(dir) = self.local_dir() {
            if !dir.is_dir() {
                bail!(NotFound(format!(
                    "backup destination {} does not exist",
                    dir.display()
                )));
            }
            let mut files = Vec::new();
            for entry in
                std::fs::read_dir(&dir).with_context(|| format!("cannot read {}", dir.display()))?
            {
                let entry = entry?;
                if !entry.file_type()?.is_file() {
                    continue;
                }
                // Restores beside this one (the shards of a run) create and
                // remove lock files here: one gone since the directory was
                // read is not listed.
                let size = match entry.metadata() {
                    Ok(metadata) => metadata.len(),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e.into()),
                };
                files.push((entry.file_name().to_string_lossy().into_owned(), size));
            }
            return Ok(files);
        }
        let plugin = self.plugin.expect("a remote store has a plugin");
        let entries = match plugin.list(&self.location) {
            Ok(entries) => entries,
            Err(e) if plugin_error_kind(&e) == Some(ErrorKind::BucketMissing) => bail!(NotFound(
                format!("backup destination {} does not exist", self.location)
            )),
            Err(e) => return Err(e),
        };
        Ok(entries
            .into_iter()
            .filter(|e| !e.key.contains('/'))
            .map(|e| (e.key, e.size))
            .collect())
    }

    /// The names of the files at the top level that begin with `prefix`.
    pub fn file_names_starting_with(&self, prefix: &str) -> Result<Vec<String>> {
        Ok(self
            .files()?
            .into_iter()
            .map(|(name, _)| name)
            .filter(|name| name.starts_with(prefix))
            .collect())
    }

    /// Every archive in the store, oldest first.
    pub fn archives(&self) -> Result<Vec<StoredArchive>> {
        let mut archives: Vec<StoredArchive> = self
            .files()?
            .into_iter()
            .filter_map(|(file_name, size)| {
                let name = ArchiveName::parse(&file_name)?;
                Some(StoredArchive {
                    file_name,
                    timestamp: name.timestamp,
                    label: name.label,
                    size,
                })
            })
            .collect();
        archives.sort_by(|a, b| (a.timestamp, &a.file_name).cmp(&(b.timestamp, &b.file_name)));
        Ok(archives)
    }

    /// Stores the local `file` as `file_name`, then checks it is there with its size.
    pub fn upload(&self, file: &Path, file_name: &str) -> Result<()> {
        let size = std::fs::metadata(file)?.len();
        if let Some(dir) = self.local_dir() {
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            write_atomically(&dir.join(file_name), |partial| {
                std::fs::copy(file, partial).map(drop)
            })?;
        } else {
            let plugin = self.plugin.expect("a remote store has a plugin");
            plugin.ensure_bucket(&self.location)?;
            plugin.put(file, &self.location, file_name)?;
        }
        let stored = self
            .files()?
            .into_iter()
            .find(|(name, _)| name == file_name);
        match stored {
            Some((_, stored_size)) if stored_size == size => Ok(()),
            Some((_, stored_size)) => bail!(
                "{file_name} in {} has {stored_size} bytes, not {size}",
                self.location
            ),
            None => bail!("{file_name} is not in {} after the upload", self.location),
        }
    }

    /// Fetches `file_name` into the local `file`.
    pub fn download(&self, file_name: &str, file: &Path) -> Result<()> {
        if let Some(dir) = self.local_dir() {
            write_atomically(file, |partial| {
                std::fs::copy(dir.join(file_name), partial).map(drop)
            })?;
            return Ok(());
        }
        let plugin = self.plugin.expect("a remote store has a plugin");
        plugin.get(&self.location, file_name, file)
    }

    /// Stores `bytes` as `file_name`.
    pub fn put_bytes(&self, file_name: &str, bytes: &[u8]) -> Result<()> {
        let scratch = tempfile::NamedTempFile::new()?;
        std::fs::write(scratch.path(), bytes)?;
        self.upload(scratch.path(), file_name)
    }

    /// Whether [`BackupStore::create_if_absent`] is a real conditional
    /// create here: always for a local directory, and for a bucket when its
    /// plugin says so (a plugin built before the operation existed says no).
    pub fn conditional_create(&self) -> bool {
        self.plugin.is_none_or(|plugin| plugin.conditional_create())
    }

    /// Stores `bytes` as `file_name` only if the store has no such file,
    /// atomically (see [`BackupStore::conditional_create`]): `true` when
    /// this call created it, `false` when the name was taken. A missing
    /// destination bucket is created first.
    pub fn create_if_absent(&self, file_name: &str, bytes: &[u8]) -> Result<bool> {
        if let Some(dir) = self.local_dir() {
            return Ok(create_new_atomically(&dir.join(file_name), bytes)?);
        }
        let plugin = self.plugin.expect("a remote store has a plugin");
        let create = || plugin.create_if_absent(&self.location, file_name, bytes);
        match create() {
            Err(e) if plugin_error_kind(&e) == Some(ErrorKind::BucketMissing) => {
                plugin.ensure_bucket(&self.location)?;
                create()
            }
            created => created,
        }
    }

    /// Whether the store has a file called `file_name` (a destination that
    /// does not exist yet has none).
    pub fn contains(&self, file_name: &str) -> Result<bool> {
        match self.files() {
            Ok(files) => Ok(files.iter().any(|(name, _)| name == file_name)),
            Err(e) if e.is::<NotFound>() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The content of `file_name`, or `None` if the store has no such file
    /// (also when it is removed between the listing and the download).
    pub fn get_bytes(&self, file_name: &str) -> Result<Option<Vec<u8>>> {
        if !self.contains(file_name)? {
            return Ok(None);
        }
        let scratch = tempfile::tempdir()?;
        let path = scratch.path().join("content");
        match self.download(file_name, &path) {
            Ok(()) => Ok(Some(std::fs::read(path)?)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The content of `file_name`, which a listing just showed (unlike
    /// [`BackupStore::get_bytes`], not listed again first).
    pub fn get_listed(&self, file_name: &str) -> Result<Vec<u8>> {
        let scratch = tempfile::tempdir()?;
        let path = scratch.path().join("content");
        self.download(file_name, &path)?;
        Ok(std::fs::read(path)?)
    }

    /// The local path of `file_name` when the store is a local directory
    /// (no copy needed), else `None`.
    pub fn local_path(&self, file_name: &str) -> Option<PathBuf> {
        self.local_dir().map(|dir| dir.join(file_name))
    }

    /// Removes `file_names` (missing ones are not an error).
    pub fn delete(&self, file_names: &[String]) -> Result<()> {
        if file_names.is_empty() {
            return Ok(());
        }
        if let Some(dir) = self.local_dir() {
            for name in file_names {
                match std::fs::remove_file(dir.join(name)) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        return Err(e).with_context(|| format!("cannot delete {name}"))
                    }
                    _ => {}
                }
            }
            return Ok(());
        }
        let plugin = self.plugin.expect("a remote store has a plugin");
        plugin
            .delete(&self.location, &owned_keys(file_names))
            .context("cannot delete old archives")?;
        Ok(())
    }
}

/// Whether `error` says a file or object does not exist.
fn is_not_found(error: &anyhow::Error) -> bool {
    plugin_error_kind(error) == Some(ErrorKind::NotFound)
        || error.chain().any(|e| {
            e.downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::NotFound)
        })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    #[test]
    fn a_local_listing_leaves_out_files_removed_while_it_reads() {
        // The shards of one run list the destination while the others
        // create and remove files there (a lock's partial file, a released
        // lock): a file gone between the directory read and its size is
        // not in the listing, and not an error.
        let dir = tempfile::tempdir().unwrap();
        let store = BackupStore {
            location: Location::parse(dir.path().to_str().unwrap()),
            plugin: None,
        };
        std::fs::write(dir.path().join("archive.tar"), b"kept").unwrap();
        let done = AtomicBool::new(false);
        std::thread::scope(|scope| {
            scope.spawn(|| {
                let churned = dir.path().join(".stowage-lock.partial");
                while !done.load(Ordering::Relaxed) {
                    std::fs::write(&churned, b"lock").unwrap();
                    std::fs::remove_file(&churned).unwrap();
                }
            });
            let listings: Vec<_> = (0..20_000).map(|_| store.files()).collect();
            done.store(true, Ordering::Relaxed);
            for files in listings {
                let files = files.expect("a listing while files come and go");
                assert!(files.contains(&("archive.tar".to_string(), 4)));
            }
        });
    }
}
