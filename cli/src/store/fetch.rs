//! Getting the archive a restore reads onto this machine: by timestamp from
//! the backup destination, or from a path, a `file://`, `http(s)://` or
//! bucket URL.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use stowage_local_tree::write_atomically;
use stowage_plugin_api::{Location, RemoteUrl};

use crate::exit::NotFound;
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

/// How often an HTTP download is tried.
const HTTP_ATTEMPTS: u32 = 3;

/// Brings the archive `source` names into `download_dir` if it is not a
/// local file already.
pub fn fetch_archive(
    source: &ArchiveSource,
    destination: &Location,
    registry: &Registry,
    download_dir: &Path,
    quiet: bool,
) -> Result<FetchedArchive> {
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
            if let Some(path) = store.local_path(&archive.file_name) {
                return Ok(FetchedArchive {
                    path,
                    file_name: archive.file_name.clone(),
                    downloaded: false,
                });
            }
            let path = download_dir.join(&archive.file_name);
            let shown = Spinner::new(
                &format!("download {} from {destination}", archive.file_name),
                quiet,
            );
            store.download(&archive.file_name, &path)?;
            drop(shown);
            Ok(FetchedArchive {
                path,
                file_name: archive.file_name.clone(),
                downloaded: true,
            })
        }
        ArchiveSource::File(text) => fetch_file(text, registry, download_dir, quiet),
    }
}

fn fetch_file(
    text: &str,
    registry: &Registry,
    download_dir: &Path,
    quiet: bool,
) -> Result<FetchedArchive> {
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
            Ok(FetchedArchive {
                file_name: file_name(&path.to_string_lossy()),
                path,
                downloaded: false,
            })
        }
        Some("http") | Some("https") => {
            let name = file_name(text.split(['?', '#']).next().unwrap_or(text));
            let path = download_dir.join(if name.is_empty() {
                "archive.tar"
            } else {
                &name
            });
            download_http(text, &path, quiet)?;
            Ok(FetchedArchive {
                path,
                file_name: name,
                downloaded: true,
            })
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
            let path = download_dir.join(key);
            let shown = Spinner::new(&format!("download {text}"), quiet);
            plugin.get(&parent, key, &path)?;
            drop(shown);
            Ok(FetchedArchive {
                path,
                file_name: key.to_string(),
                downloaded: true,
            })
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
