//! Getting the archive a restore reads onto this machine: by timestamp from
//! the backup destination, or from a path, a `file://`, `http(s)://` or
//! bucket URL.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use stowage_local_tree::write_atomically;
use stowage_plugin_api::{ErrorKind, Location, ObjectEntry, RemoteUrl};

use crate::exit::NotFound;
use crate::plugin::{plugin_error_kind, LoadedPlugin};
use crate::progress::{ByteProgress, Spinner};
use crate::registry::Registry;
use crate::store::backup_store::BackupStore;

/// Which archive to restore.
#[derive(Clone, Debug)]
pub enum ArchiveSource {
    /// The archive with this timestamp in the backup destination.
    Timestamp(u64),
    /// A local path, or a `file://`, `http(s)://` or bucket URL.
    File(String),
}

/// An archive on this machine.
#[derive(Debug)]
pub struct FetchedArchive {
    /// Where it is.
    pub path: PathBuf,
    /// Its file name.
    pub file_name: String,
    /// Whether it was downloaded into the staging area (and may be removed after).
    pub downloaded: bool,
}

/// An archive in a bucket, found but not fetched.
pub struct RemoteArchive<'r> {
    /// The plugin that serves its bucket.
    pub plugin: &'r LoadedPlugin,
    /// Where it is: the folder of the bucket that holds it.
    pub folder: Location,
    /// Its file name (its key below `folder`).
    pub file_name: String,
    /// It, as its folder's listing shows it.
    pub entry: ObjectEntry,
}

impl RemoteArchive<'_> {
    /// Its size in bytes.
    pub fn size(&self) -> u64 {
        self.entry.size
    }

    /// What tells this archive from another of the same name (one written
    /// over it): its size, ETag and modification time as listed.
    pub fn identity(&self) -> String {
        let entry = &self.entry;
        format!(
            "{} {} {}",
            entry.size,
            entry
                .etag
                .as_deref()
                .or(entry.md5.as_deref())
                .unwrap_or("-"),
            entry.last_modified.unwrap_or(0)
        )
    }

    /// Downloads it whole into `download_dir`.
    pub fn download(&self, download_dir: &Path, quiet: bool) -> Result<FetchedArchive> {
        let path = download_dir.join(&self.file_name);
        let shown = Spinner::new(
            &format!("download {} from {}", self.file_name, self.folder),
            quiet,
        );
        self.plugin.get(&self.folder, &self.file_name, &path)?;
        drop(shown);
        Ok(FetchedArchive {
            path,
            file_name: self.file_name.clone(),
            downloaded: true,
        })
    }
}

/// Where the archive a restore reads is.
pub enum ArchiveAt<'r> {
    /// On this machine (a local file, or downloaded from a web server).
    Here(FetchedArchive),
    /// In a bucket: downloaded whole, or read by ranges.
    InBucket(RemoteArchive<'r>),
}

/// How often an HTTP download is tried.
const HTTP_ATTEMPTS: u32 = 3;

/// Finds the archive `source` names: a local file, one in a bucket (not
/// fetched yet), or one downloaded into `download_dir` from a web server.
pub fn locate_archive<'r>(
    source: &ArchiveSource,
    destination: &Location,
    registry: &'r Registry,
    download_dir: &Path,
    quiet: bool,
) -> Result<ArchiveAt<'r>> {
    std::fs::create_dir_all(download_dir)
        .with_context(|| format!("cannot create {}", download_dir.display()))?;
    match source {
        ArchiveSource::Timestamp(timestamp) => {
            let store = BackupStore::open(destination, registry)?;
            let archives = store.archives()?;
            let matching: Vec<_> = archives
                .iter()
                .filter(|a| a.timestamp == *timestamp)
                .collect();
            let archive = match matching.as_slice() {
                [one] => *one,
                [] => bail!(NotFound(format!(
                    "no backup with timestamp {timestamp} in {destination} ({} there; see `stowage backups list`)",
                    archives.len()
                ))),
                many => bail!(NotFound(format!(
                    "several backups have timestamp {timestamp}: {}; restore one with --file",
                    many.iter().map(|a| a.file_name.as_str()).collect::<Vec<_>>().join(", ")
                ))),
            };
            match (store.local_path(&archive.file_name), store.plugin()) {
                (Some(path), _) => Ok(ArchiveAt::Here(FetchedArchive {
                    path,
                    file_name: archive.file_name.clone(),
                    downloaded: false,
                })),
                (None, Some(plugin)) => {
                    remote_archive(plugin, destination.clone(), &archive.file_name)
                }
                (None, None) => unreachable!("a store is a local directory or has a plugin"),
            }
        }
        ArchiveSource::File(text) => locate_file(text, registry, download_dir, quiet),
    }
}

/// The archive `file_name` in `folder`, as the plugin lists it.
fn remote_archive<'r>(
    plugin: &'r LoadedPlugin,
    folder: Location,
    file_name: &str,
) -> Result<ArchiveAt<'r>> {
    let listed = plugin.list_keys(&folder, &[file_name.to_string()]);
    let entry = match listed {
        Err(e) if plugin_error_kind(&e) == Some(ErrorKind::BucketMissing) => None,
        listed => listed?.into_iter().next(),
    };
    let Some(entry) = entry else {
        bail!(NotFound(format!("{folder}/{file_name} does not exist")));
    };
    Ok(ArchiveAt::InBucket(RemoteArchive {
        plugin,
        folder,
        file_name: file_name.to_string(),
        entry,
    }))
}

fn locate_file<'r>(
    text: &str,
    registry: &'r Registry,
    download_dir: &Path,
    quiet: bool,
) -> Result<ArchiveAt<'r>> {
    let url = RemoteUrl::parse(text);
    let file_name = |path: &str| path.rsplit('/').next().unwrap_or(path).to_string();
    match url.as_ref().map(|u| u.scheme.as_str()) {
        None | Some("file") => {
            let path = PathBuf::from(text.strip_prefix("file://").unwrap_or(text));
            if path.is_dir() {
                bail!(NotFound(format!(
                    "archive {} is a directory; name the archive file in it",
                    path.display()
                )));
            }
            if !path.is_file() {
                bail!(NotFound(format!(
                    "archive {} does not exist",
                    path.display()
                )));
            }
            Ok(ArchiveAt::Here(FetchedArchive {
                file_name: file_name(&path.to_string_lossy()),
                path,
                downloaded: false,
            }))
        }
        Some("http") | Some("https") => {
            let name = file_name(text.split(['?', '#']).next().unwrap_or(text));
            let path = download_dir.join(if name.is_empty() {
                "archive.tar"
            } else {
                &name
            });
            download_http(text, &path, quiet)?;
            Ok(ArchiveAt::Here(FetchedArchive {
                path,
                file_name: name,
                downloaded: true,
            }))
        }
        Some(_) => {
            let url = url.expect("matched a scheme");
            let (parent, key) = url
                .prefix
                .rsplit_once('/')
                .unwrap_or(("", url.prefix.as_str()));
            if key.is_empty() {
                bail!(NotFound(format!("{text} names a bucket, not an archive")));
            }
            let parent = Location::parse(&format!("{}://{}/{parent}", url.scheme, url.bucket));
            let plugin = registry.for_location(&parent, None)?;
            remote_archive(plugin, parent, key)
        }
    }
}

/// Downloads `url` into `path`, trying up to [`HTTP_ATTEMPTS`] times.
fn download_http(url: &str, path: &Path, quiet: bool) -> Result<()> {
    let mut last_error = None;
    for attempt in 1..=HTTP_ATTEMPTS {
        match download_http_once(url, path, quiet) {
            Ok(()) => return Ok(()),
            Err(e) if e.downcast_ref::<NotFound>().is_some() => return Err(e),
            Err(e) => last_error = Some(e),
        }
        if attempt < HTTP_ATTEMPTS {
            std::thread::sleep(Duration::from_secs(u64::from(attempt)));
        }
    }
    Err(last_error
        .expect("at least one attempt")
        .context(format!("downloading {url} failed {HTTP_ATTEMPTS} times")))
}

fn download_http_once(url: &str, path: &Path, quiet: bool) -> Result<()> {
    let response = match ureq::get(url).timeout(Duration::from_secs(60)).call() {
        Ok(response) => response,
        Err(ureq::Error::Status(404, _)) => {
            bail!(NotFound(format!("{url} does not exist (HTTP 404)")))
        }
        Err(e) => return Err(anyhow!("{url}: {e}")),
    };
    let length = response
        .header("Content-Length")
        .and_then(|l| l.parse::<u64>().ok());
    let bar = ByteProgress::new("download", length, quiet);
    let mut reader = response.into_reader();
    let result = write_atomically(path, |partial| {
        let mut file = std::io::BufWriter::new(std::fs::File::create(partial)?);
        let mut buffer = vec![0u8; 256 * 1024];
        let mut total = 0u64;
        loop {
            let n = reader.read(&mut buffer)?;
            if n == 0 {
                break;
            }
            file.write_all(&buffer[..n])?;
            total += n as u64;
            bar.set(total);
        }
        if length.is_some_and(|l| l != total) {
            return Err(std::io::Error::other(format!(
                "got {total} bytes of {}",
                length.unwrap_or(0)
            )));
        }
        file.flush()
    });
    bar.finish();
    result.map_err(|e| anyhow!("{url}: {e}"))
}
