//! Stowage's conformance suite against this plugin, loaded from the library
//! `cargo test` built, the way `stowage` loads it.
//!
//! The suite prepares its buckets and checks what they hold through
//! [`ScratchStore`], a client that is not the plugin under test — for a
//! memdir bucket, plain `std::fs` on its directory.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use stowage_conformance::scratch::{md5_hex, unique_name};
use stowage_conformance::{
    built_library, conformance_suite, restore_suite, Harness, ScratchStore, ScratchStores,
};

/// The plugin under test with its `root` in a new temporary directory, and
/// scratch buckets below that root.
fn harness() -> Option<Harness> {
    let buckets = Buckets {
        root: tempfile::tempdir().expect("a temporary directory"),
    };
    let config = format!("root = {:?}\n", buckets.root.path().display().to_string());
    let library = built_library("stowage_plugin_memdir");
    Some(Harness::load(&library, &config, Box::new(buckets)).expect("the plugin loads"))
}

// One #[test] per scenario: syncs every way, excludes, dry runs, listings,
// single-object operations, conditional create...
conformance_suite!(harness);
// ...and Stowage's own backups and restores through the plugin.
restore_suite!(harness);

/// Makes scratch buckets: directories below the plugin's root.
struct Buckets {
    root: tempfile::TempDir,
}

impl ScratchStores for Buckets {
    fn new_store(&self, hint: &str) -> Box<dyn ScratchStore> {
        let name = unique_name(hint);
        Box::new(Bucket {
            url: format!("memdir://{name}"),
            dir: self.root.path().join(name),
        })
    }
}

/// One scratch bucket, written and read with `std::fs`.
struct Bucket {
    url: String,
    dir: PathBuf,
}

impl ScratchStore for Bucket {
    fn url(&self) -> String {
        self.url.clone()
    }

    fn create(&self) -> Result<()> {
        Ok(fs::create_dir(&self.dir)?)
    }

    fn put(&self, key: &str, data: &[u8]) -> Result<()> {
        let path = self.dir.join(key);
        fs::create_dir_all(path.parent().context("a key has a parent")?)?;
        Ok(fs::write(path, data)?)
    }

    fn seed(&self, dir: &Path) -> Result<()> {
        for (key, path) in files_below(dir)? {
            self.put(&key, &fs::read(path)?)?;
        }
        Ok(())
    }

    fn delete(&self, key: &str) -> Result<()> {
        Ok(fs::remove_file(self.dir.join(key))?)
    }

    fn get(&self, key: &str) -> Result<Vec<u8>> {
        Ok(fs::read(self.dir.join(key))?)
    }

    fn contents(&self) -> Result<BTreeMap<String, String>> {
        files_below(&self.dir)?
            .into_iter()
            .map(|(key, path)| Ok((key, md5_hex(&fs::read(path)?))))
            .collect()
    }

    fn exists(&self) -> Result<bool> {
        Ok(self.dir.is_dir())
    }
}

/// Every regular file below `dir`, keyed by its `/`-separated path
/// relative to `dir`.
fn files_below(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut files = Vec::new();
    for entry in walkdir::WalkDir::new(dir) {
        let entry = entry?;
        if entry.file_type().is_file() {
            let relative = entry.path().strip_prefix(dir)?;
            let key = relative.to_str().context("a key is UTF-8")?.to_string();
            files.push((key, entry.into_path()));
        }
    }
    Ok(files)
}
