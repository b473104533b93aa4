//! Syncing as Stowage does it: [`plan`] from listings, let the plugin's
//! tool transfer (never delete), then [`verify`], repair and delete what
//! the plan named — and only what is still as the plan found it.
//!
//! [`run_sync`] is the whole of `stowage sync` and of a backup's mirror of
//! each bucket; a restore runs the same steps itself, with a snapshot in
//! between (see [`crate::restore`]). [`md5_digest`] is how inventories hold
//! checksums; [`multipart_etag`] tells whether a multipart ETag matches a file.

pub mod md5_digest;
pub mod merge;
pub mod multipart_etag;
pub mod plan;
pub mod planned;
pub mod spill;
pub mod verify;

use anyhow::{anyhow, bail, Context, Result};
use serde::Serialize;
use stowage_exclude::ExcludeMatcher;
use stowage_plugin_api::{ErrorKind, Location, ProgressSink, SyncOptions, SyncReport};

use crate::exit::Refused;
use crate::output::counted;
use crate::plugin::{plugin_error_kind, LoadedPlugin};
use crate::sync::plan::{
    forget_listed_md5s, inventory_of, listed_md5s_are_content, Inventory, SyncPlan,
};
use crate::sync::verify::{verify_and_finish, FinishHooks, PlannedChanges, Verification};

/// What a sync decided, did and proved.
#[derive(Debug, Serialize)]
pub struct SyncOutcome {
    /// The plan, computed from listings and checksums before anything ran.
    pub plan: SyncPlan,
    /// What the plugin's tool reported doing (absent in a dry run).
    pub tool_report: Option<SyncReport>,
    /// What verification found and repaired (absent in a dry run).
    pub verification: Option<Verification>,
}

/// Runs one sync from `source` to `destination` with `plugin`.
pub fn run_sync(
    plugin: &LoadedPlugin,
    source: &Location,
    destination: &Location,
    options: &SyncOptions,
    progress: &dyn ProgressSink,
) -> Result<SyncOutcome> {
    let excludes = ExcludeMatcher::new(&options.excludes).map_err(|e| anyhow!(e))?;
    let source_inventory = inventory_of(source, plugin, &excludes, &Inventory::new())?;
    run_sync_from(
        plugin,
        source,
        &source_inventory,
        destination,
        options,
        progress,
    )
}

/// [`run_sync`] once the source's inventory is known.
fn run_sync_from(
    plugin: &LoadedPlugin,
    source: &Location,
    source_inventory: &Inventory,
    destination: &Location,
    options: &SyncOptions,
    progress: &dyn ProgressSink,
) -> Result<SyncOutcome> {
    if source.remote().is_none() && destination.remote().is_none() {
        bail!("cannot sync two local directories: one side must be a bucket URL");
    }
    let excludes = ExcludeMatcher::new(&options.excludes).map_err(|e| anyhow!(e))?;
    let mut destination_inventory = match destination {
        Location::Local { path } if !std::path::Path::new(path.as_str()).exists() => {
            Inventory::new()
        }
        _ => match inventory_of(destination, plugin, &excludes, source_inventory) {
            Err(e) if is_prefix_not_made_yet(destination, &e) => Inventory::new(),
            other => other?,
        },
    };
    let listed_md5s = listed_md5s_are_content(
        plugin,
        destination,
        &destination_inventory,
        source_inventory,
    )?;
    if !listed_md5s {
        forget_listed_md5s(&mut destination_inventory);
    }
    let mut plan = SyncPlan::new(source_inventory, &destination_inventory, options.delete);
    if !listed_md5s {
        plan = plan.transferring_the_doubtful();
    }
    if let Some(max) = options.max_deletes {
        if plan.delete.len() as u64 > max {
            return Err(Refused(format!(
                "sync would delete {} from {destination}, more than --max-delete {max}; nothing was changed",
                counted(plan.delete.len() as u64, "object")
            ))
            .into());
        }
    }
    if options.dry_run {
        return Ok(SyncOutcome {
            plan,
            tool_report: None,
            verification: None,
        });
    }
    crate::interrupt::check()?;
    // The tool transfers only; deleting is left to the verification, which
    // deletes what the plan named and nothing that appeared meanwhile.
    let transfer_only = SyncOptions {
        delete: false,
        ..options.clone()
    };
    let report = plugin
        .sync(source, destination, &transfer_only, progress)
        .with_context(|| format!("plugin {}", plugin.name))?;
    let verification = verify_and_finish(
        plugin,
        source,
        destination,
        source_inventory,
        &PlannedChanges {
            listed_md5s,
            ..PlannedChanges::of(&plan, &destination_inventory, options.delete)
        },
        &excludes,
        &FinishHooks::none(),
    )?;
    Ok(SyncOutcome {
        plan,
        tool_report: Some(report),
        verification: Some(verification),
    })
}

/// Whether listing `destination` failed only because a prefix below a
/// bucket has no objects yet: a missing bucket, reported for a location
/// with a prefix (the fs plugin cannot tell a directory not made yet from
/// a missing bucket). If the bucket itself is missing, the transfer says
/// so; a bucket's own URL (no prefix) that is missing fails here.
fn is_prefix_not_made_yet(destination: &Location, error: &anyhow::Error) -> bool {
    plugin_error_kind(error) == Some(ErrorKind::BucketMissing)
        && destination
            .remote()
            .is_some_and(|url| !url.prefix.is_empty())
}
