//! What `stowage restore` can be asked, and who is told as it goes.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::archive::read::Limits;
use crate::restore::planning::ComponentPlan;
use crate::restore::Shard;
use crate::store::fetch::ArchiveSource;

/// What the snapshot before a restore holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotMode {
    /// Only the existing objects the restore will overwrite, delete, or may overwrite.
    Changed,
    /// Every object of the bucket (what GitLab's backup-utility does).
    Full,
    /// Nothing (needs --yes).
    None,
}

/// What `stowage restore` was asked.
#[derive(Clone, Debug)]
pub struct RestoreRequest {
    /// The archive.
    pub source: ArchiveSource,
    /// Only these components (all when empty).
    pub only: Vec<String>,
    /// Leave these out.
    pub skip: Vec<String>,
    /// Plan and stop.
    pub dry_run: bool,
    /// What to snapshot first.
    pub snapshot: SnapshotMode,
    /// Do not ask before changing buckets.
    pub yes: bool,
    /// Allow restoring an empty component over a non-empty bucket.
    pub allow_empty: bool,
    /// Refuse a component whose restore would delete more objects.
    pub max_delete: Option<u64>,
    /// Components restored at once.
    pub jobs: usize,
    /// Hide progress bars.
    pub quiet: bool,
    /// Bounds on decompression.
    pub limits: Limits,
    /// Take over restore locks even when their holder may be alive.
    pub break_lock: bool,
    /// The share of the keys this restore answers for (all by default).
    pub shard: Shard,
    /// How long a shard that read its part of the archive by ranges waits
    /// for the other shards to validate theirs.
    pub shard_wait: Duration,
    /// How many files one tool sync uploads at most.
    pub upload_batch: usize,
    /// Told at each point of each component's restore.
    pub observer: RestoreObserver,
    /// Shown every component's plan as soon as it is made: before the
    /// safety rules, the dry run's end or the question, so that a refused
    /// plan is seen too.
    pub plan_viewer: PlanViewer,
}

impl RestoreRequest {
    /// A request to restore `source` with the command line's defaults:
    /// every component, snapshot of what changes, ask before changing
    /// anything, one component at a time.
    pub fn new(source: ArchiveSource) -> RestoreRequest {
        RestoreRequest {
            source,
            only: Vec::new(),
            skip: Vec::new(),
            dry_run: false,
            snapshot: SnapshotMode::Changed,
            yes: false,
            allow_empty: false,
            max_delete: None,
            jobs: DEFAULT_JOBS,
            quiet: false,
            limits: Limits::default(),
            break_lock: false,
            shard: Shard::WHOLE,
            shard_wait: DEFAULT_SHARD_WAIT,
            upload_batch: DEFAULT_UPLOAD_BATCH,
            observer: RestoreObserver::default(),
            plan_viewer: PlanViewer::default(),
        }
    }
}

/// How long a shard waits for the others' validation unless asked otherwise.
pub const DEFAULT_SHARD_WAIT: Duration = Duration::from_secs(3600);

/// How many files one tool sync uploads at most unless asked otherwise:
/// what a plugin holds for one sync (its walk of the files, its report of
/// each) stays bounded, and few enough syncs that a tool which lists the
/// bucket for each (s3cmd, gsutil) does so a few times per million files.
pub const DEFAULT_UPLOAD_BATCH: usize = 25_000;

/// Components planned and restored at once unless asked otherwise.
pub const DEFAULT_JOBS: usize = 4;

/// A point of one component's restore at which the observer is told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestorePoint {
    /// Planned from the bucket's listing; nothing copied or changed yet.
    Planned,
    /// The snapshot's copies are made; the bucket is about to be listed
    /// again to confirm the plan.
    SnapshotCopied,
    /// The plan is confirmed; the tool is about to upload.
    Uploading,
    /// The tool has uploaded; the bucket is about to be listed to verify.
    Uploaded,
    /// The bucket was listed to verify; repairs and deletes follow.
    Verifying,
}

/// Told, with the component's name, at each [`RestorePoint`]: a display of
/// progress, or a test acting as the live application.
#[derive(Clone, Default)]
pub struct RestoreObserver(Option<Arc<ObserverFn>>);

/// What a [`RestoreObserver`] calls: component name, point reached.
type ObserverFn = dyn Fn(&str, RestorePoint) + Send + Sync;

impl RestoreObserver {
    /// An observer calling `tell`.
    pub fn new(tell: impl Fn(&str, RestorePoint) + Send + Sync + 'static) -> Self {
        RestoreObserver(Some(Arc::new(tell)))
    }

    pub(super) fn tell(&self, component: &str, point: RestorePoint) {
        if let Some(tell) = &self.0 {
            tell(component, point);
        }
    }
}

/// Shown the plans of a restore once they are made (see
/// [`RestoreRequest::plan_viewer`]); by default, nobody.
#[derive(Clone, Default)]
pub struct PlanViewer(Option<Arc<PlanViewerFn>>);

/// What a [`PlanViewer`] calls.
type PlanViewerFn = dyn Fn(&[&ComponentPlan]) + Send + Sync;

impl PlanViewer {
    /// A viewer calling `show`.
    pub fn new(show: impl Fn(&[&ComponentPlan]) + Send + Sync + 'static) -> Self {
        PlanViewer(Some(Arc::new(show)))
    }

    pub(super) fn show(&self, plans: &[&ComponentPlan]) {
        if let Some(show) = &self.0 {
            show(plans);
        }
    }
}

impl std::fmt::Debug for PlanViewer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "PlanViewer"
        } else {
            "None"
        })
    }
}

impl std::fmt::Debug for RestoreObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "RestoreObserver"
        } else {
            "None"
        })
    }
}
