//! The files below a root one at a time in ascending key order, from just
//! after a given key: a page of a listing without walking the whole tree.
//!
//! Keys sort by their UTF-8 bytes (`str::cmp`), and every key below a
//! directory `d` starts with `d/`, so a directory sorts among its siblings
//! as its name followed by `/`: `a-b` < `a.txt` < `a/…` < `a0`. The walk
//! reads one directory at a time, sorts its entries so, and descends into
//! a subdirectory when it reaches it; a subtree whose keys are all at or
//! before the starting key is never read.
//!
//! What it yields are the files [`crate::walk`] finds (regular files;
//! symbolic links and unfinished writes left out, abandoned writes
//! removed), as that tree is when each directory is read.

use std::fs::DirEntry;
use std::io;
use std::path::{Path, PathBuf};

use crate::PARTIAL_SUFFIX;
use crate::{missing_root, mtime_seconds, remove_if_abandoned, with_path, LocalFile};

/// A walk of the files below a root in ascending key order; it holds the
/// sorted entry names of each directory from the root down to where it is.
#[derive(Debug)]
pub struct KeyOrderWalk {
    /// The directories being read, the root first.
    levels: Vec<Level>,
}

/// One directory of a [`KeyOrderWalk`]: its entries in key order, a
/// directory's name ending with `/`, and the next one to visit.
#[derive(Debug)]
struct Level {
    dir: PathBuf,
    /// The key prefix of the directory's entries (`""`, `a/`, `a/y/`).
    prefix: String,
    names: Vec<Box<str>>,
    next: usize,
}

impl KeyOrderWalk {
    /// A walk of the files below `root` whose keys are strictly greater
    /// than `after` (`""`: every file). A missing `root` is a `NotFound`
    /// error for which [`crate::is_missing_root`] holds.
    pub fn after(root: &Path, after: &str) -> io::Result<KeyOrderWalk> {
        if !root.is_dir() {
            return Err(missing_root(root));
        }
        let mut walk = KeyOrderWalk { levels: Vec::new() };
        let (mut dir, mut prefix, mut rest) = (root.to_path_buf(), String::new(), after);
        loop {
            let names = sorted_names(&dir)?;
            let next = names.partition_point(|name| **name <= *rest);
            // The directory holding `after` sorts before it but may hold
            // keys after it: its subtree is walked first, from `after` on.
            let holding = next
                .checked_sub(1)
                .map(|i| &names[i])
                .filter(|name| name.ends_with('/') && rest.starts_with(&***name))
                .map(|name| name.to_string());
            walk.levels.push(Level {
                dir: dir.clone(),
                prefix: prefix.clone(),
                names,
                next,
            });
            let Some(name) = holding else {
                return Ok(walk);
            };
            dir = dir.join(name.trim_end_matches('/'));
            prefix.push_str(&name);
            rest = &rest[name.len()..];
        }
    }

    /// The next file in key order, or `None` when the walk is done.
    pub fn next_file(&mut self) -> io::Result<Option<LocalFile>> {
        loop {
            let Some(level) = self.levels.last_mut() else {
                return Ok(None);
            };
            let Some(name) = level.names.get(level.next) else {
                self.levels.pop();
                continue;
            };
            level.next += 1;
            let path = level.dir.join(name.trim_end_matches('/'));
            let key = format!("{}{name}", level.prefix);
            if name.ends_with('/') {
                match sorted_names(&path) {
                    Ok(names) => self.levels.push(Level {
                        dir: path,
                        prefix: key,
                        names,
                        next: 0,
                    }),
                    // Removed since its parent was read: not there any more.
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
                continue;
            }
            if name.ends_with(PARTIAL_SUFFIX) {
                remove_if_abandoned(&path, name);
                continue;
            }
            if let Some(file) = regular_file(key, path)? {
                return Ok(Some(file));
            }
        }
    }
}

/// The file `key` at `path`, or `None` if it is no longer a regular file.
fn regular_file(key: String, path: PathBuf) -> io::Result<Option<LocalFile>> {
    let meta = match std::fs::symlink_metadata(&path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(with_path("cannot stat", &path, e)),
    };
    if !meta.file_type().is_file() {
        return Ok(None);
    }
    Ok(Some(LocalFile {
        key,
        size: meta.len(),
        mtime: mtime_seconds(&meta),
        path,
    }))
}

/// The names of the regular files and directories in `dir`, a directory's
/// with a `/` after it, in byte order: the order of the keys below them.
fn sorted_names(dir: &Path) -> io::Result<Vec<Box<str>>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| with_path("cannot read directory", dir, e))? {
        let entry = entry.map_err(|e| with_path("cannot read directory", dir, e))?;
        if let Some(name) = sort_name(&entry)? {
            names.push(name);
        }
    }
    names.sort_unstable();
    Ok(names)
}

/// How `entry` sorts among keys: a file by its name, a directory by its
/// name and `/`; `None` for anything else (a symbolic link, a socket).
fn sort_name(entry: &DirEntry) -> io::Result<Option<Box<str>>> {
    let file_type = entry
        .file_type()
        .map_err(|e| with_path("cannot stat", &entry.path(), e))?;
    let name = entry.file_name().into_string().map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("file name is not valid UTF-8: {}", entry.path().display()),
        )
    })?;
    Ok(if file_type.is_dir() {
        Some(format!("{name}/").into())
    } else if file_type.is_file() {
        Some(name.into())
    } else {
        None
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every key of a walk from just after `after`.
    fn keys_after(root: &Path, after: &str) -> Vec<String> {
        let mut walk = KeyOrderWalk::after(root, after).unwrap();
        let mut keys = Vec::new();
        while let Some(file) = walk.next_file().unwrap() {
            keys.push(file.key);
        }
        keys
    }

    #[test]
    fn files_come_in_key_order_not_directory_order() {
        let root = tempfile::tempdir().unwrap();
        let keys = [
            "a-b", "a.txt", "a/x", "a/y/z", "a/y0", "a0", "ab", "B", "é/e", "z",
        ];
        for key in keys {
            let path = root.path().join(key);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, key).unwrap();
        }
        let mut sorted = keys.map(String::from).to_vec();
        sorted.sort();
        assert_eq!(keys_after(root.path(), ""), sorted);
        assert_eq!(
            keys_after(root.path(), ""),
            crate::walk(root.path())
                .unwrap()
                .into_iter()
                .map(|f| f.key)
                .collect::<Vec<_>>()
        );
        for after in [
            "", "a", "a/", "a/x", "a/y", "a/y/", "a/y/z", "a/y/zz", "a0", "zz", "é",
        ] {
            let expected: Vec<String> = sorted
                .iter()
                .filter(|k| k.as_str() > after)
                .cloned()
                .collect();
            assert_eq!(keys_after(root.path(), after), expected, "after {after:?}");
        }
    }

    #[test]
    fn a_missing_root_is_a_missing_root() {
        let root = tempfile::tempdir().unwrap();
        let error = KeyOrderWalk::after(&root.path().join("missing"), "").unwrap_err();
        assert!(crate::is_missing_root(&error));
    }
}
