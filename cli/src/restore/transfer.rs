//! The transfer step: the planned files extracted from the archive into
//! staging, and the plugin's tool syncing them into the bucket — uploading
//! only; the planned deletes come after verification has listed the bucket
//! again.
//!
//! The files go up in batches (`--upload-batch`), one tool sync each
//! (`<staging>/upload/<batch>/`): what a plugin holds for one sync (its
//! walk of the source, its report of every file) is then bounded however
//! many objects a restore uploads, and each batch's files leave the disk
//! once it is up. What verification sends again is extracted apart
//! (`<staging>/repair/`).

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, Context, Result};
use stowage_plugin_api::{
    ActionKind, CompareMode, Location, Progress, ProgressSink, SyncOptions, SyncReport,
};

use crate::archive::read::{extract_component, ExpectedFiles};
use crate::progress::ProgressBarSink;
use crate::restore::planning::{ComponentPlan, Target};
use crate::restore::{ComponentStep, RestoreRun};
use crate::sync::merge::SourceObjects;
use crate::sync::plan::{Inventory, SyncPlan};

/// The files a restore uploads (the plan's transfers and possibly changed
/// objects, in key order), each in the staging directory of its batch.
pub(super) struct UploadBatches<'p> {
    plan: &'p SyncPlan,
    /// Files a batch.
    batch: usize,
    /// `<staging>/upload`.
    root: PathBuf,
}

impl<'p> UploadBatches<'p> {
    /// The files `plan` uploads, staged below `staging`, `batch` files a
    /// batch.
    pub(super) fn new(plan: &'p SyncPlan, staging: &Path, batch: usize) -> Self {
        UploadBatches {
            plan,
            batch: batch.max(1),
            root: staging.join("upload"),
        }
    }

    /// Whether the plan uploads `key`.
    pub(super) fn contains(&self, key: &str) -> bool {
        self.plan.transfers(key)
    }

    /// How many files the plan uploads.
    fn len(&self) -> usize {
        self.plan.transfer.len() + self.plan.possibly_changed.len()
    }

    /// Whether the plan uploads nothing.
    pub(super) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The staging directory of `key`'s batch: by its place among the
    /// uploads in key order.
    pub(super) fn directory_of(&self, key: &str) -> PathBuf {
        let plan = self.plan;
        let position = plan.transfer.count_before(key) + plan.possibly_changed.count_before(key);
        self.directory(position / self.batch)
    }

    /// The staging directory of batch `index`.
    fn directory(&self, index: usize) -> PathBuf {
        self.root.join(index.to_string())
    }

    /// Every batch's staging directory, in order.
    fn directories(&self) -> impl Iterator<Item = PathBuf> + '_ {
        (0..self.len().div_ceil(self.batch)).map(|index| self.directory(index))
    }
}

impl ComponentStep<'_, '_> {
    /// Extracts the component's files whose keys `wanted` accepts, each
    /// into the directory `directory_of` gives for it. Files the plan
    /// uploads get the current time as mtime (tools that compare mtimes
    /// then upload them); all others get the bucket object's time
    /// (`bucket`: what the plan found of the bucket), so no tool rewrites
    /// an object the plan did not name.
    pub(super) fn extract(
        &self,
        plan: &ComponentPlan,
        wanted: &dyn Fn(&str) -> bool,
        directory_of: &dyn Fn(&str) -> PathBuf,
        bucket: &Inventory,
    ) -> Result<()> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs() as i64;
        let transfer = &plan.plan.transfer;
        let uploaded = |key: &str| transfer.contains(key);
        let mtime = |key: &str| match uploaded(key) {
            true => Some(now),
            false => bucket.get(key).and_then(|f| f.modified),
        };
        let component = &self.target.component.name;
        let archive = &self.target.archive;
        let objects = archive
            .walk()?
            .filter(|object| object.as_ref().map_or(true, |(key, _)| wanted(key)));
        let expected = ExpectedFiles::new(Box::new(objects), archive.in_key_order)?;
        extract_component(
            &self.run.archive.path,
            component,
            directory_of,
            expected,
            self.run.request.limits,
            mtime,
        )
        .map_err(|e| anyhow!("component {component}: {e:#}"))
    }

    /// Where verification's repairs are extracted, and sent from.
    pub(super) fn repairs(&self) -> PathBuf {
        self.staging.join("repair")
    }
}

impl RestoreRun<'_> {
    /// The tool's syncs of the `batches` into the bucket, one batch after
    /// the other, uploading only (the planned deletes follow once every
    /// upload has succeeded and the bucket was listed again); each batch's
    /// files are removed once it is up. Returns the objects and bytes
    /// uploaded.
    pub(super) fn upload(
        &self,
        target: &Target<'_>,
        batches: &UploadBatches<'_>,
        planned: usize,
    ) -> Result<(u64, u64)> {
        let bucket = &target.component.bucket;
        // Staging holds exactly the planned files: the plugin need not list
        // the bucket to compare (verification proves the result).
        let options = SyncOptions {
            compare: CompareMode::Planned,
            excludes: target
                .component
                .excludes
                .iter()
                .map(|e| e.as_str().into())
                .collect(),
            ..SyncOptions::default()
        };
        let bar = ProgressBarSink::new(
            &format!("restore {}", target.component.name),
            planned as u64,
            self.request.quiet,
        );
        let mut done = Progress::default();
        for directory in batches.directories() {
            crate::interrupt::check()?;
            // A batch whose every object moved since planning is gone.
            if !directory.is_dir() {
                continue;
            }
            let source = Location::Local {
                path: directory.to_string_lossy().into_owned(),
            };
            let sink = AfterEarlierBatches {
                bar: &bar,
                earlier: &done,
            };
            let report = target.plugin.sync(&source, bucket, &options, &sink);
            let report = report.with_context(|| format!("plugin {}", target.plugin.name))?;
            let (objects, bytes) = uploaded_by(&report);
            done.objects_done += objects;
            done.bytes_done += bytes;
            std::fs::remove_dir_all(&directory)
                .with_context(|| format!("cannot remove {}", directory.display()))?;
        }
        bar.finish();
        Ok((done.objects_done, done.bytes_done))
    }
}

/// The objects and bytes a sync report says were uploaded (or copied).
fn uploaded_by(report: &SyncReport) -> (u64, u64) {
    [ActionKind::Upload, ActionKind::Copy]
        .into_iter()
        .map(|kind| report.total(kind))
        .fold((0, 0), |(objects, bytes), total| {
            (objects + total.objects, bytes + total.bytes)
        })
}

/// A batch's progress, shown after what the earlier batches did.
struct AfterEarlierBatches<'a> {
    bar: &'a ProgressBarSink,
    earlier: &'a Progress,
}

impl ProgressSink for AfterEarlierBatches<'_> {
    fn report(&self, progress: &Progress) {
        self.bar.report(&Progress {
            objects_done: self.earlier.objects_done + progress.objects_done,
            bytes_done: self.earlier.bytes_done + progress.bytes_done,
            current_key: progress.current_key.clone(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::plan::{Key, PlannedObject};
    use crate::sync::planned::PlannedObjects;

    fn planned(keys: &[&str]) -> PlannedObjects {
        keys.iter()
            .map(|k| PlannedObject {
                key: Key::from(*k),
                size: 1,
            })
            .collect()
    }

    #[test]
    fn uploads_are_cut_into_batches_in_key_order() {
        let plan = SyncPlan {
            transfer: planned(&["a", "c", "e"]),
            possibly_changed: planned(&["b", "d"]),
            ..SyncPlan::default()
        };
        let batches = UploadBatches::new(&plan, Path::new("/s"), 2);
        let batch_of = |key| batches.directory_of(key);
        assert_eq!(batch_of("a"), Path::new("/s/upload/0"));
        assert_eq!(batch_of("b"), Path::new("/s/upload/0"));
        assert_eq!(batch_of("c"), Path::new("/s/upload/1"));
        assert_eq!(batch_of("d"), Path::new("/s/upload/1"));
        assert_eq!(batch_of("e"), Path::new("/s/upload/2"));
        assert_eq!(batches.directories().count(), 3);
        assert!(batches.contains("d") && !batches.contains("f"));
        let whole = UploadBatches::new(&plan, Path::new("/s"), 25_000);
        assert_eq!(
            whole.directories().collect::<Vec<_>>(),
            [Path::new("/s/upload/0")]
        );
    }
}
