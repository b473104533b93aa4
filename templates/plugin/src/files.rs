//! The store's files: keys as paths, walking a directory, hashing a file,
//! and writing one so that it appears whole or not at all.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use md5::{Digest, Md5};
use stowage_plugin_api::{ErrorKind, PluginError};
use tempfile::NamedTempFile;

/// A directory of objects — a prefix of a bucket, or a local directory —
/// and where files written into it are staged first.
#[derive(Debug)]
pub struct Tree {
    /// Where the objects are: a key is a path relative to it. May be
    /// missing: then it holds no objects yet.
    pub dir: PathBuf,
    /// Where a file is written before it is renamed into `dir`: outside
    /// the bucket, so listings never see a half-written file, but on the
    /// same filesystem, so the rename is atomic.
    pub staging: PathBuf,
}

/// One object found in a [`Tree`].
#[derive(Debug)]
pub struct Object {
    /// Its key: the path relative to the tree, `/`-separated.
    pub key: String,
    /// The file that holds it.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// When it was last written.
    pub modified: SystemTime,
}

impl Object {
    /// [`Object::modified`] in seconds since the Unix epoch.
    pub fn unix_mtime(&self) -> i64 {
        self.modified
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64)
    }
}

impl Tree {
    /// A local directory, whose files are staged in the directory itself.
    pub fn local(dir: &Path) -> Tree {
        Tree {
            dir: dir.to_path_buf(),
            staging: dir.to_path_buf(),
        }
    }

    /// The file that holds `key`.
    pub fn path_of(&self, key: &str) -> Result<PathBuf, PluginError> {
        Ok(self.dir.join(relative_path(key)?))
    }

    /// Every object below the tree, sorted by key; none if its directory is
    /// missing. Only regular files are objects: symbolic links are not
    /// followed, and empty directories hold nothing.
    pub fn objects(&self) -> Result<Vec<Object>, PluginError> {
        let mut objects = Vec::new();
        collect_objects(&self.dir, "", &mut objects)?;
        objects.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(objects)
    }

    /// Writes a copy of the local file `from` as `key`, replacing it whole.
    pub fn write_copy(&self, key: &str, from: &Path) -> Result<(), PluginError> {
        write_whole(&self.staging, &self.path_of(key)?, from)
    }

    /// Writes `bytes` as `key` only if no object has that key; `Ok(false)`
    /// when one has. The bytes go into a staged file, which is then
    /// hard-linked to the key's name: `link(2)` fails if the name exists,
    /// atomically, so of several writers racing for one key exactly one
    /// wins, and the object never holds part of its bytes.
    pub fn create_new(&self, key: &str, bytes: &[u8]) -> Result<bool, PluginError> {
        let target = self.path_of(key)?;
        let mut staged = staged_file(&self.staging, &target)?;
        staged
            .write_all(bytes)
            .map_err(io_error("cannot write", staged.path()))?;
        // The staged file is removed when `staged` is dropped; the link stays.
        match std::fs::hard_link(staged.path(), &target) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(io_error("cannot create", &target)(e)),
        }
    }

    /// Deletes `key`; an object already gone is not an error.
    pub fn remove(&self, key: &str) -> Result<(), PluginError> {
        let path = self.path_of(key)?;
        unless_gone(std::fs::remove_file(&path)).map_err(io_error("cannot delete", &path))?;
        Ok(())
    }
}

/// Adds the regular files below `dir` to `objects`, their keys prefixed
/// with `prefix` (the keys of `dir` itself, `""` or ending in `/`). Files
/// and directories deleted while it reads them are left out, as a bucket
/// listing leaves out the objects deleted before it reaches them.
fn collect_objects(dir: &Path, prefix: &str, objects: &mut Vec<Object>) -> Result<(), PluginError> {
    let Some(entries) =
        unless_gone(std::fs::read_dir(dir)).map_err(io_error("cannot read directory", dir))?
    else {
        return Ok(());
    };
    for entry in entries {
        let entry = entry.map_err(io_error("cannot read directory", dir))?;
        let path = entry.path();
        let name = entry.file_name().into_string().map_err(|_| {
            PluginError::new(
                ErrorKind::InvalidInput,
                format!("file name is not UTF-8, so not a key: {}", path.display()),
            )
        })?;
        let file_type = entry.file_type().map_err(io_error("cannot stat", &path))?;
        if file_type.is_dir() {
            collect_objects(&path, &format!("{prefix}{name}/"), objects)?;
        } else if file_type.is_file() {
            let Some(metadata) =
                unless_gone(entry.metadata()).map_err(io_error("cannot stat", &path))?
            else {
                continue;
            };
            objects.push(Object {
                key: format!("{prefix}{name}"),
                size: metadata.len(),
                modified: metadata.modified().unwrap_or(UNIX_EPOCH),
                path,
            });
        }
    }
    Ok(())
}

/// `None` for a file or directory that is not there (any more).
fn unless_gone<T>(result: io::Result<T>) -> io::Result<Option<T>> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// The relative path `key` maps to, refusing every key that could name a
/// file outside the tree: empty, absolute, with `.`, `..` or empty segments.
pub fn relative_path(key: &str) -> Result<PathBuf, PluginError> {
    let plain = !key.contains('\0') && key.split('/').all(|s| !matches!(s, "" | "." | ".."));
    if !plain {
        return Err(PluginError::new(
            ErrorKind::InvalidInput,
            format!("unsafe object key {key:?}: it must be a plain relative path"),
        ));
    }
    Ok(PathBuf::from(key))
}

/// The lowercase hex MD5 of a file's content.
pub fn md5_hex(path: &Path) -> Result<String, PluginError> {
    let mut file = File::open(path).map_err(io_error("cannot open", path))?;
    let mut md5 = Md5::new();
    io::copy(&mut file, &mut md5).map_err(io_error("cannot read", path))?;
    Ok(format!("{:x}", md5.finalize()))
}

/// Makes `target` a copy of the local file `from`, whole or not at all:
/// the copy is written to a file in `staging` (on the same filesystem as
/// `target`) and renamed to `target` once complete.
pub fn write_whole(staging: &Path, target: &Path, from: &Path) -> Result<(), PluginError> {
    let mut source = File::open(from).map_err(io_error("cannot open", from))?;
    let mut staged = staged_file(staging, target)?;
    io::copy(&mut source, &mut staged).map_err(io_error("cannot write", staged.path()))?;
    staged
        .persist(target)
        .map_err(|e| io_error("cannot write", target)(e.error))?;
    Ok(())
}

/// A new temporary file in `staging`, for `target`, creating both their
/// directories. It is removed when dropped unless persisted.
fn staged_file(staging: &Path, target: &Path) -> Result<NamedTempFile, PluginError> {
    let parent = target.parent().unwrap_or(Path::new("."));
    for dir in [staging, parent] {
        std::fs::create_dir_all(dir).map_err(io_error("cannot create directory", dir))?;
    }
    NamedTempFile::new_in(staging).map_err(io_error("cannot create a file in", staging))
}

/// Turns an I/O error about `path` into a one-line plugin error: "`what`
/// `path`: `error`", of the kind the host can act on.
pub fn io_error<'a>(what: &'a str, path: &'a Path) -> impl FnOnce(io::Error) -> PluginError + 'a {
    move |error| {
        let kind = match error.kind() {
            io::ErrorKind::NotFound => ErrorKind::NotFound,
            io::ErrorKind::PermissionDenied => ErrorKind::Unauthorized,
            _ => ErrorKind::Other,
        };
        PluginError::new(kind, format!("{what} {}: {error}", path.display()))
    }
}
