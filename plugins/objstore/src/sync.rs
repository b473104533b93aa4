//! A sync: both sides listed, every action decided by
//! [`SyncPlan`](stowage_plugin_support::sync_plan::SyncPlan) before any is
//! taken, then the transfers, `concurrency` at a time, and — only once all
//! of them succeeded — the deletes, batched.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use futures_util::{StreamExt, TryStreamExt};
use stowage_local_tree::{is_missing_root, md5_file, remove_file_and_empty_parents, walk_each};
use stowage_plugin_api::{
    ActionKind, CompareMode, ErrorKind, PluginError, Progress, ProgressSink, SyncOptions,
    SyncReport,
};
use stowage_plugin_support::io_errors::from_io;
use stowage_plugin_support::sync_plan::{PlanEntry, SyncPlan};

/// One object of either side.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Key relative to the sync root.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// Last modification, seconds since the Unix epoch.
    pub mtime: i64,
    /// The content's MD5 when known without reading it (a bucket's listing).
    pub md5: Option<String>,
    /// For a local side: the directory synced, which holds the file at the
    /// key (shared by every entry: a path each was ~16 MiB at 100,000).
    pub root: Option<Arc<Path>>,
}

impl PlanEntry for Entry {
    fn key(&self) -> &str {
        &self.key
    }
    fn size(&self) -> u64 {
        self.size
    }
}

impl Entry {
    /// The local file, for an entry of a local side.
    pub fn path(&self) -> Option<PathBuf> {
        self.root.as_ref().map(|root| root.join(&self.key))
    }

    /// Its MD5: from the listing, or read from the local file.
    fn md5(&self) -> Result<Option<String>, PluginError> {
        match (&self.md5, self.path()) {
            (Some(md5), _) => Ok(Some(md5.clone())),
            (None, Some(path)) => md5_file(&path).map(Some).map_err(from_io),
            (None, None) => Ok(None),
        }
    }
}

/// The files of a local directory as entries. A missing directory is
/// empty when it is the destination (a restore creates it) and an error
/// when it is the source: read as empty, it would empty the bucket.
///
/// The tree is walked a file at a time, each file's path dropped as soon as
/// its entry is made (holding them all cost ~16 MiB at 100,000 files).
pub fn local_entries(dir: &Path, is_source: bool) -> Result<Vec<Entry>, PluginError> {
    let root: Arc<Path> = Arc::from(dir);
    let mut entries = Vec::new();
    let walked = walk_each(dir, |file| {
        entries.push(Entry {
            key: file.key,
            size: file.size,
            mtime: file.mtime,
            md5: None,
            root: Some(root.clone()),
        });
        Ok(())
    });
    match walked {
        Ok(()) => {
            entries.sort_unstable_by(|a, b| a.key.cmp(&b.key));
            Ok(entries)
        }
        Err(e) if is_missing_root(&e) && !is_source => Ok(Vec::new()),
        Err(e) if is_missing_root(&e) => Err(PluginError::new(
            ErrorKind::NotFound,
            format!("source directory {} does not exist", dir.display()),
        )),
        Err(e) => Err(from_io(e)),
    }
}

/// Whether `there` (in the destination) is already a copy of `source` under `mode`.
pub fn unchanged(source: &Entry, there: &Entry, mode: CompareMode) -> Result<bool, PluginError> {
    if source.size != there.size {
        return Ok(false);
    }
    match mode {
        CompareMode::Size => Ok(true),
        CompareMode::SizeMtime => Ok(there.mtime >= source.mtime),
        CompareMode::Checksum => match (source.md5()?, there.md5()?) {
            (Some(a), Some(b)) => Ok(a == b),
            // An object whose MD5 nobody knows is transferred again.
            _ => Ok(false),
        },
        // The host planned this transfer: make it.
        CompareMode::Planned => Ok(false),
        newer => Err(PluginError::new(
            ErrorKind::InvalidInput,
            format!("plugin objstore does not know the compare mode {newer:?}"),
        )),
    }
}

/// Whether a sync must list its destination: not for a planned one that
/// deletes nothing, which transfers every source object.
pub fn lists_destination(options: &SyncOptions) -> bool {
    options.delete || options.compare != CompareMode::Planned
}

/// Where the deletes of a sync go.
pub enum DeleteSide<'a> {
    /// A local directory: files removed, with the directories they empty.
    Local(&'a Path),
    /// A bucket: the full keys are given to the function, in batches.
    Remote,
}

/// Carries out `plan`: `transfer` on each transfer, `concurrency` at a
/// time (the first failure stops the sync before any delete), then the
/// deletes: local files one by one, remote keys through `delete_remote`.
pub async fn run<F, Fut, D, DFut>(
    plan: SyncPlan<Entry>,
    kind: ActionKind,
    concurrency: usize,
    progress: &dyn ProgressSink,
    transfer: F,
    delete_side: DeleteSide<'_>,
    delete_remote: D,
) -> Result<SyncReport, PluginError>
where
    F: Fn(Entry) -> Fut,
    Fut: std::future::Future<Output = Result<Entry, PluginError>>,
    D: FnOnce(Vec<String>) -> DFut,
    DFut: std::future::Future<Output = Result<(), PluginError>>,
{
    let mut report = plan.skip_report();
    let objects_done = AtomicU64::new(0);
    let bytes_done = AtomicU64::new(0);
    let transferred: Vec<Entry> = futures_util::stream::iter(plan.transfers)
        .map(|entry| {
            let done = transfer(entry);
            let (objects_done, bytes_done) = (&objects_done, &bytes_done);
            async move {
                let entry = done.await?;
                progress.report(&Progress {
                    objects_done: objects_done.fetch_add(1, Ordering::SeqCst) + 1,
                    bytes_done: bytes_done.fetch_add(entry.size, Ordering::SeqCst) + entry.size,
                    current_key: entry.key.clone(),
                });
                Ok::<_, PluginError>(entry)
            }
        })
        .buffer_unordered(concurrency.max(1))
        .try_collect()
        .await?;
    for entry in transferred {
        report.push(kind, entry.key, entry.size);
    }
    if plan.deletes.is_empty() {
        return Ok(report);
    }
    match delete_side {
        DeleteSide::Local(root) => {
            for entry in &plan.deletes {
                let path = entry.path().expect("local entries have a root");
                remove_file_and_empty_parents(root, &path).map_err(from_io)?;
            }
        }
        DeleteSide::Remote => {
            delete_remote(plan.deletes.iter().map(|e| e.key.clone()).collect()).await?;
        }
    }
    for entry in plan.deletes {
        report.push(ActionKind::Delete, entry.key, 0);
    }
    Ok(report)
}

/// The parallelism of a sync: its own, else the plugin's `concurrency`.
pub fn parallelism(options: &SyncOptions, concurrency: usize) -> usize {
    match options.parallelism {
        0 => concurrency,
        n => n as usize,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str, size: u64, mtime: i64, md5: Option<&str>) -> Entry {
        Entry {
            key: key.into(),
            size,
            mtime,
            md5: md5.map(str::to_string),
            root: None,
        }
    }

    #[test]
    fn compare_modes_decide_as_documented() {
        let source = entry("k", 3, 100, Some("aa"));
        let same = entry("k", 3, 100, Some("aa"));
        let older_other = entry("k", 3, 50, Some("bb"));
        assert!(unchanged(&source, &same, CompareMode::Checksum).unwrap());
        assert!(!unchanged(&source, &older_other, CompareMode::Checksum).unwrap());
        assert!(!unchanged(&source, &older_other, CompareMode::SizeMtime).unwrap());
        assert!(unchanged(&source, &older_other, CompareMode::Size).unwrap());
        let unknown = entry("k", 3, 100, None);
        assert!(!unchanged(&source, &unknown, CompareMode::Checksum).unwrap());
        assert!(!unchanged(&source, &entry("k", 4, 100, Some("aa")), CompareMode::Size).unwrap());
    }

    #[test]
    fn a_missing_local_source_is_an_error_and_a_missing_destination_empty() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        assert!(local_entries(&missing, false).unwrap().is_empty());
        let error = local_entries(&missing, true).unwrap_err();
        assert_eq!(error.kind, ErrorKind::NotFound);
    }
}
