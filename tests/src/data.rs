//! Local trees the scenarios sync from and into.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::Result;
use filetime::FileTime;
use stowage_local_tree::{key_to_relative_path, md5_file, walk, PARTIAL_SUFFIX};
use stowage_plugin_api::Location;

/// Deterministic pseudo-random bytes: the same `seed` and `size` always
/// give the same content, different seeds different content.
pub fn content(seed: u64, size: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..size)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// A temporary local directory of files.
pub struct LocalTree {
    dir: tempfile::TempDir,
}

impl LocalTree {
    /// A new, empty tree.
    pub fn new() -> Result<Self> {
        Ok(LocalTree {
            dir: tempfile::tempdir()?,
        })
    }

    /// Its root directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Its root as a sync location.
    pub fn location(&self) -> Location {
        Location::Local {
            path: self.path().to_string_lossy().as_ref().into(),
        }
    }

    fn file(&self, key: &str) -> Result<PathBuf> {
        Ok(self.path().join(key_to_relative_path(key)?))
    }

    /// Writes `key` with `data`.
    pub fn write(&self, key: &str, data: &[u8]) -> Result<()> {
        let file = self.file(key)?;
        std::fs::create_dir_all(file.parent().expect("a key has a parent"))?;
        Ok(std::fs::write(file, data)?)
    }

    /// Removes `key`.
    pub fn remove(&self, key: &str) -> Result<()> {
        Ok(std::fs::remove_file(self.file(key)?)?)
    }

    /// Sets the modification time of `key` to `age` ago.
    pub fn set_age(&self, key: &str, age: Duration) -> Result<()> {
        let when = FileTime::from_system_time(SystemTime::now() - age);
        Ok(filetime::set_file_mtime(self.file(key)?, when)?)
    }

    /// Key → hex MD5 of every file.
    pub fn contents(&self) -> Result<BTreeMap<String, String>> {
        walk(self.path())?
            .into_iter()
            .map(|f| Ok((f.key, md5_file(&f.path)?)))
            .collect()
    }
}

/// Every unfinished write (`*.stowage-partial`) below `root`.
pub fn partial_writes(root: &Path) -> Vec<PathBuf> {
    walkdir::WalkDir::new(root)
        .into_iter()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(PARTIAL_SUFFIX))
        .map(|e| e.into_path())
        .collect()
}
