//! Scratch buckets, prepared and read back independently of the plugin
//! under test.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{bail, Context, Result};
use md5::{Digest, Md5};
use serde::Deserialize;
use stowage_local_tree::{hex, key_to_relative_path, md5_file, walk};

/// One scratch bucket.
pub trait ScratchStore: Send + Sync {
    /// Its URL as the plugin takes it (`s3://name`, `file:///tmp/x`).
    fn url(&self) -> String;
    /// Creates it, empty.
    fn create(&self) -> Result<()>;
    /// Writes one object.
    fn put(&self, key: &str, data: &[u8]) -> Result<()>;
    /// Writes every file below `dir` as an object keyed by its relative path.
    fn seed(&self, dir: &Path) -> Result<()>;
    /// Deletes one object.
    fn delete(&self, key: &str) -> Result<()>;
    /// Reads one object's bytes. (The default cannot: a store written
    /// before this method existed still compiles; the scenarios that read
    /// objects back whole fail with this message.)
    fn get(&self, key: &str) -> Result<Vec<u8>> {
        bail!("this scratch store cannot read {key}: implement ScratchStore::get")
    }
    /// Key → hex MD5 of the bytes actually stored (read back, not from ETags).
    fn contents(&self) -> Result<BTreeMap<String, String>>;
    /// Whether the bucket exists.
    fn exists(&self) -> Result<bool>;
}

/// Makes fresh scratch buckets with unique names.
pub trait ScratchStores: Send + Sync {
    /// A new bucket (not yet created) whose name contains `hint`.
    fn new_store(&self, hint: &str) -> Box<dyn ScratchStore>;
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A bucket name unique to this process: lowercase, digits and `-`.
pub fn unique_name(hint: &str) -> String {
    let hint: String = hint
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .take(30)
        .collect();
    format!(
        "st-{}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst),
        hint.trim_matches('-')
    )
}

/// Hex MD5 of bytes.
pub fn md5_hex(data: &[u8]) -> String {
    hex(&Md5::digest(data))
}

/// `file://` buckets: directories below a temporary root, read with `std::fs`.
pub struct LocalDirStores {
    root: tempfile::TempDir,
}

impl LocalDirStores {
    /// Buckets below a new temporary directory.
    pub fn new() -> Result<Self> {
        Ok(LocalDirStores {
            root: tempfile::tempdir()?,
        })
    }
}

struct LocalDirStore {
    dir: PathBuf,
}

impl ScratchStores for LocalDirStores {
    fn new_store(&self, hint: &str) -> Box<dyn ScratchStore> {
        Box::new(LocalDirStore {
            // One level deeper than the root, so that a bucket never created
            // has no parent directory either: a missing bucket, not an empty prefix.
            dir: self.root.path().join(unique_name(hint)).join("bucket"),
        })
    }
}

impl ScratchStore for LocalDirStore {
    fn url(&self) -> String {
        format!("file://{}", self.dir.display())
    }
    fn create(&self) -> Result<()> {
        Ok(std::fs::create_dir_all(&self.dir)?)
    }
    fn put(&self, key: &str, data: &[u8]) -> Result<()> {
        let path = self.dir.join(key_to_relative_path(key)?);
        std::fs::create_dir_all(path.parent().expect("a key has a parent"))?;
        Ok(std::fs::write(path, data)?)
    }
    fn seed(&self, dir: &Path) -> Result<()> {
        for file in walk(dir)? {
            self.put(&file.key, &std::fs::read(&file.path)?)?;
        }
        Ok(())
    }
    fn delete(&self, key: &str) -> Result<()> {
        Ok(std::fs::remove_file(
            self.dir.join(key_to_relative_path(key)?),
        )?)
    }
    fn get(&self, key: &str) -> Result<Vec<u8>> {
        Ok(std::fs::read(self.dir.join(key_to_relative_path(key)?))?)
    }
    fn contents(&self) -> Result<BTreeMap<String, String>> {
        walk(&self.dir)?
            .into_iter()
            .map(|f| Ok((f.key, md5_file(&f.path)?)))
            .collect()
    }
    fn exists(&self) -> Result<bool> {
        Ok(self.dir.is_dir())
    }
}

/// S3 buckets, GCS buckets or Azure containers on the test servers,
/// prepared and read with `tests/servers/bucket_tool.py` (boto3 / the GCS
/// JSON API / azure-storage-blob — not s3cmd, aws, gsutil nor a Stowage
/// plugin).
pub struct BucketToolStores {
    scheme: &'static str,
    python: PathBuf,
    script: PathBuf,
}

impl BucketToolStores {
    /// Stores for `scheme` (`s3`, `gs` or `az`), using the test venv's
    /// Python (`$STOWAGE_TEST_VENV`). `None` when the test environment is
    /// not set up, or its server for `scheme` is not running (Azurite is
    /// optional outside CI).
    pub fn from_env(scheme: &'static str) -> Option<Self> {
        let venv = std::env::var_os("STOWAGE_TEST_VENV")?;
        if scheme == "az" {
            std::env::var_os("STOWAGE_TEST_AZURE_ENDPOINT")?;
        }
        Some(BucketToolStores {
            scheme,
            python: Path::new(&venv).join("bin/python"),
            script: Path::new(env!("CARGO_MANIFEST_DIR")).join("servers/bucket_tool.py"),
        })
    }
}

struct BucketToolStore {
    scheme: &'static str,
    python: PathBuf,
    script: PathBuf,
    bucket: String,
}

#[derive(Deserialize)]
struct DumpedObject {
    key: String,
    md5: String,
}

impl BucketToolStore {
    fn run(&self, args: &[&str]) -> Result<std::process::Output> {
        let output = Command::new(&self.python)
            .arg(&self.script)
            .arg(self.scheme)
            .args(args)
            .output()
            .with_context(|| format!("cannot run {}", self.script.display()))?;
        Ok(output)
    }

    fn run_ok(&self, args: &[&str]) -> Result<Vec<u8>> {
        let output = self.run(args)?;
        if !output.status.success() {
            bail!(
                "bucket_tool {} {}: {}",
                self.scheme,
                args.join(" "),
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(output.stdout)
    }
}

impl ScratchStores for BucketToolStores {
    fn new_store(&self, hint: &str) -> Box<dyn ScratchStore> {
        Box::new(BucketToolStore {
            scheme: self.scheme,
            python: self.python.clone(),
            script: self.script.clone(),
            bucket: unique_name(hint),
        })
    }
}

impl ScratchStore for BucketToolStore {
    fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.bucket)
    }
    fn create(&self) -> Result<()> {
        self.run_ok(&["mb", &self.bucket]).map(drop)
    }
    fn put(&self, key: &str, data: &[u8]) -> Result<()> {
        let file = tempfile::NamedTempFile::new()?;
        std::fs::write(file.path(), data)?;
        let path = file.path().to_string_lossy();
        self.run_ok(&["put", &self.bucket, key, &path]).map(drop)
    }
    fn seed(&self, dir: &Path) -> Result<()> {
        let dir = dir.to_string_lossy();
        self.run_ok(&["seed", &self.bucket, &dir]).map(drop)
    }
    fn delete(&self, key: &str) -> Result<()> {
        self.run_ok(&["rm", &self.bucket, key]).map(drop)
    }
    fn get(&self, key: &str) -> Result<Vec<u8>> {
        let file = tempfile::NamedTempFile::new()?;
        let path = file.path().to_string_lossy();
        self.run_ok(&["get", &self.bucket, key, &path])?;
        Ok(std::fs::read(file.path())?)
    }
    fn contents(&self) -> Result<BTreeMap<String, String>> {
        let out = self.run_ok(&["dump", &self.bucket])?;
        let objects: Vec<DumpedObject> = serde_json::from_slice(&out)?;
        Ok(objects.into_iter().map(|o| (o.key, o.md5)).collect())
    }
    fn exists(&self) -> Result<bool> {
        Ok(self.run(&["exists", &self.bucket])?.status.success())
    }
}
