//! The transfer step: the planned files extracted from the archive into
//! staging, and the plugin's tool syncing them into the bucket — uploading
//! only; the planned deletes come after verification has listed the bucket
//! again.

use std::collections::HashSet;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, Context, Result};
use stowage_plugin_api::{ActionKind, CompareMode, Location, SyncOptions};

use crate::archive::read::extract_component;
use crate::progress::ProgressBarSink;
use crate::restore::planning::{ComponentPlan, Target};
use crate::restore::{ComponentStep, RestoreRequest, RestoreRun};
use crate::store::fetch::FetchedArchive;
use crate::sync::plan::{Inventory, SyncPlan};

impl ComponentStep<'_, '_> {
    /// Extracts the component's files whose keys `wanted` accepts into the
    /// staging directory (`bucket`: the bucket's objects as last listed).
    pub(super) fn extract(
        &self,
        plan: &ComponentPlan,
        wanted: &dyn Fn(&str) -> bool,
        bucket: &Inventory,
    ) -> Result<()> {
        extract(
            self.target,
            wanted,
            &plan.plan,
            bucket,
            self.run.archive,
            self.run.request,
            self.staging,
        )
    }
}

/// Extracts the files of the component `wanted` accepts into the staging
/// directory. Files the plan uploads get the current time as mtime (tools
/// that compare mtimes then upload them); all others get the bucket
/// object's time, so no tool rewrites an object the plan did not name.
fn extract(
    target: &Target<'_>,
    wanted: &dyn Fn(&str) -> bool,
    plan: &SyncPlan,
    bucket: &Inventory,
    archive: &FetchedArchive,
    request: &RestoreRequest,
    staging: &Path,
) -> Result<()> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs() as i64;
    let uploads: HashSet<&str> = plan.transfer.iter().map(|o| &*o.key).collect();
    let mtime = |key: &str| match uploads.contains(key) {
        true => Some(now),
        false => bucket.get(key).and_then(|f| f.modified),
    };
    extract_component(
        &archive.path,
        &target.component.name,
        staging,
        &target.inventory,
        wanted,
        request.limits,
        mtime,
    )
    .map_err(|e| anyhow!("component {}: {e:#}", target.component.name))
}

impl RestoreRun<'_> {
    /// The tool's sync from `staging` into the bucket, uploading only (the
    /// planned deletes follow once every upload has succeeded and the
    /// bucket was listed again). Returns the objects and bytes uploaded.
    pub(super) fn upload(
        &self,
        target: &Target<'_>,
        staging: &Location,
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
        let report = target.plugin.sync(staging, bucket, &options, &bar);
        bar.finish();
        let report = report.with_context(|| format!("plugin {}", target.plugin.name))?;
        let (mut objects, mut bytes) = (0, 0);
        for kind in [ActionKind::Upload, ActionKind::Copy] {
            objects += report.total(kind).objects;
            bytes += report.total(kind).bytes;
        }
        Ok((objects, bytes))
    }
}
