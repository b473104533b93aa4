//! The snapshot step: copy what the plan will overwrite or delete into the
//! tmp bucket (while the planned files are extracted), then confirm the
//! plan against the planned keys listed again — a planned object that
//! moved since planning is left out of this round, and a copy that did not
//! arrive intact stops the restore before anything changed.

use anyhow::{bail, Context, Result};
use stowage_exclude::ExcludeMatcher;
use stowage_local_tree::{key_to_relative_path, remove_file_and_empty_parents};
use stowage_plugin_api::{ErrorKind, Location};

use crate::plugin::plugin_error_kind;
use crate::restore::planning::{ComponentPlan, Target};
use crate::restore::transfer::UploadBatches;
use crate::restore::{ComponentStep, RestoreRun};
use crate::store::snapshots::snapshot_name;
use crate::sync::plan::{
    forget_listed_md5s, inventory_of_keys, inventory_of_listed, listed_inventory, worth_asking_for,
    Fingerprint, Inventory, Key, PlannedObject, SyncPlan,
};
use crate::sync::verify::{owned_keys, same_version, PlannedChanges};

impl ComponentStep<'_, '_> {
    /// Copies the snapshot while the files to upload are extracted into
    /// their batches (both only read); the snapshot's location, if there
    /// is one. `bucket`: what the plan found of the bucket.
    pub(super) fn snapshot_while_extracting(
        &self,
        plan: &ComponentPlan,
        uploads: &UploadBatches<'_>,
        bucket: &Inventory,
        snapshot_target: &mut Option<String>,
    ) -> Result<Option<Location>> {
        let (snapshot, extracted) = std::thread::scope(|scope| {
            let extraction = (!uploads.is_empty()).then(|| {
                scope.spawn(|| {
                    let _ = std::fs::remove_dir_all(self.staging);
                    let wanted = |key: &str| uploads.contains(key);
                    self.extract(plan, &wanted, &|key| uploads.directory_of(key), bucket)
                })
            });
            let snapshot = self.run.copy_snapshot(self.target, plan, snapshot_target);
            let extracted =
                extraction.map_or(Ok(()), |h| h.join().expect("extraction does not panic"));
            (snapshot, extracted)
        });
        let snapshot = snapshot?;
        extracted?;
        Ok(snapshot)
    }

    /// Lists the planned keys again and finds every planned object that
    /// moved since planning (`found`: what the plan found of the bucket,
    /// and how many objects it listed), to
    /// be left out of this round (its extracted file is removed, so the
    /// tool cannot upload it).
    pub(super) fn confirm_plan(
        &self,
        plan: &ComponentPlan,
        snapshot: Option<&Location>,
        uploads: &UploadBatches<'_>,
        (found, objects): (&Inventory, usize),
    ) -> Result<ConfirmedPlan> {
        let (mut current, bucket_exists) = self.list_planned_keys(&plan.plan, objects)?;
        if !plan.etags_are_md5s {
            forget_listed_md5s(&mut current);
        }
        let snapshot_listing = match snapshot {
            Some(location) => Some(self.run.list_snapshot(self.target, location)?),
            None => None,
        };
        let moved = moved_since_planning(plan, found, &current, snapshot_listing.as_ref())?;
        for key in &moved {
            if uploads.contains(key) {
                let batch = uploads.directory_of(key);
                let file = batch.join(key_to_relative_path(key)?);
                remove_file_and_empty_parents(&batch, &file)?;
            }
        }
        Ok(ConfirmedPlan {
            current,
            bucket_exists,
            moved,
        })
    }

    /// The keys `plan` names as the bucket holds them now, and whether the
    /// bucket exists (of a bucket of `objects`): asked for one by one if
    /// they are few, else found in a listing, never all held at once.
    fn list_planned_keys(&self, plan: &SyncPlan, objects: usize) -> Result<(Inventory, bool)> {
        let component = &self.target.component;
        let (plugin, bucket) = (self.target.plugin, &component.bucket);
        let excludes = ExcludeMatcher::new(&component.excludes).map_err(anyhow::Error::msg)?;
        let listed = match worth_asking_for(plan.named_count(), objects) {
            true => {
                let keys: Vec<Key> = plan.named().map(|o| o.key).collect();
                inventory_of_keys(plugin, bucket, &keys, objects, &excludes)
            }
            false => inventory_of_listed(plugin, bucket, &excludes, &|key| plan.names(key)),
        };
        match listed {
            Ok(current) => Ok((current, true)),
            Err(e) if plugin_error_kind(&e) == Some(ErrorKind::BucketMissing) => {
                Ok((Inventory::new(), false))
            }
            Err(e) => Err(e.context(format!("component {}", component.name))),
        }
    }
}

/// The planned keys as listed after the snapshot, whether the bucket
/// exists, and the planned keys that moved since planning.
pub(super) struct ConfirmedPlan {
    /// The planned keys the bucket holds now, as listed.
    current: Inventory,
    pub(super) bucket_exists: bool,
    moved: Vec<Key>,
}

impl ConfirmedPlan {
    /// Brings `bucket` (what the plan found of it: objects of planned keys
    /// only) up to date: as its planned keys were listed again.
    pub(super) fn bring_up_to_date(&self, bucket: &mut Inventory) {
        bucket.retain(|key, _| self.current.contains_key(key));
        for (key, now) in &self.current {
            bucket.insert(key.clone(), now.clone());
        }
    }

    /// What the restore may still change: the plan without what moved,
    /// against `bucket` brought up to date.
    pub(super) fn planned_changes<'p>(
        &'p self,
        plan: &'p ComponentPlan,
        bucket: &'p Inventory,
    ) -> PlannedChanges<'p> {
        let mut planned = PlannedChanges::of(&plan.plan, bucket, true);
        planned.listed_md5s = plan.etags_are_md5s;
        planned.moved = self.moved.iter().map(|key| &**key).collect();
        planned
    }
}

impl RestoreRun<'_> {
    /// Copies the plan's snapshot keys to `<tmp>/<component>.<restore
    /// time>/` (they are checked by [`moved_since_planning`]). Names the
    /// snapshot in `snapshot_target` before the first copy.
    fn copy_snapshot(
        &self,
        target: &Target<'_>,
        plan: &ComponentPlan,
        snapshot_target: &mut Option<String>,
    ) -> Result<Option<Location>> {
        if plan.snapshot_keys.is_empty() {
            return Ok(None);
        }
        let tmp = self
            .settings
            .tmp_bucket
            .as_ref()
            .expect("checked by check_rules");
        let plugin = target.plugin;
        let snapshot = self.free_snapshot_location(target, tmp)?;
        *snapshot_target = Some(snapshot.to_string());
        let copy = || {
            plugin.copy(
                &target.component.bucket,
                &snapshot,
                &owned_keys(&plan.snapshot_keys),
            )
        };
        // The tmp bucket exists on every restore but the first, so it is
        // created only when a copy finds it missing (a check costs requests).
        match copy() {
            Err(e) if plugin_error_kind(&e) == Some(ErrorKind::BucketMissing) => {
                let _one_at_a_time = self.tmp_bucket_creation.lock().expect("not poisoned");
                plugin.ensure_bucket(tmp)?;
                copy()
            }
            other => other,
        }
        .with_context(|| snapshot_context(target, &snapshot))?;
        Ok(Some(snapshot))
    }

    /// `<tmp>/<series>.<restore time>/` (see [`snapshot_location`]), or
    /// the next second that holds no snapshot: a restore run again within
    /// the same second never writes into the snapshot of the one before.
    fn free_snapshot_location(&self, target: &Target<'_>, tmp: &Location) -> Result<Location> {
        let mut time = self.restore_time;
        let series = self.request.shard.snapshot_series(&target.component.name);
        loop {
            let candidate = snapshot_location(tmp, &series, time);
            match target.plugin.list(&candidate) {
                Ok(objects) if !objects.is_empty() => time += 1,
                Ok(_) => return Ok(candidate),
                Err(e) if plugin_error_kind(&e) == Some(ErrorKind::BucketMissing) => {
                    return Ok(candidate)
                }
                Err(e) => return Err(e.context(snapshot_context(target, &candidate))),
            }
        }
    }

    /// The snapshot's objects, as listed after copying.
    fn list_snapshot(&self, target: &Target<'_>, snapshot: &Location) -> Result<Inventory> {
        let copied = target
            .plugin
            .list(snapshot)
            .with_context(|| snapshot_context(target, snapshot))?;
        let excludes =
            ExcludeMatcher::new(&target.component.excludes).map_err(anyhow::Error::msg)?;
        Ok(listed_inventory(copied, &excludes, &Inventory::new()))
    }
}

/// Where a component's snapshot goes: `<tmp>/<series>.<restore time>/`,
/// the series being the component (or its shard, see
/// [`crate::restore::Shard::snapshot_series`]).
fn snapshot_location(tmp: &Location, series: &str, restore_time: u64) -> Location {
    tmp.join(&snapshot_name(series, restore_time))
}

fn snapshot_context(target: &Target<'_>, snapshot: &Location) -> String {
    format!(
        "component {}: snapshot into {snapshot}",
        target.component.name
    )
}

/// The planned keys that moved between planning (`found`) and the listing
/// taken after the snapshot (`current`): an object that appeared where the
/// plan would upload, or whose version changed while the snapshot does not
/// hold its current version for certain. They are left out of this round.
///
/// Fails, before anything changed, if the snapshot copy of an object that
/// did not move is missing or differs from it.
fn moved_since_planning(
    plan: &ComponentPlan,
    found: &Inventory,
    current: &Inventory,
    snapshot: Option<&Inventory>,
) -> Result<Vec<Key>> {
    let copy_of = |key: &Key| snapshot.and_then(|s| s.get(key));
    for key in &plan.snapshot_keys {
        let (Some(then), Some(now)) = (found.get(key), current.get(key)) else {
            continue;
        };
        if same_version(then, now) && !copy_of(key).is_some_and(|copy| copy_holds(copy, now)) {
            bail!("{key} did not arrive intact in the snapshot; nothing was changed");
        }
    }
    let mut moved = Vec::new();
    for PlannedObject { key, .. } in plan.plan.named() {
        let unmoved = match (found.get(&key), current.get(&key)) {
            // Gone meanwhile: no version left to protect.
            (_, None) => true,
            (None, Some(_)) => false,
            (Some(then), Some(now)) => {
                same_version(then, now) || copy_of(&key).is_some_and(|c| copy_holds_exactly(c, now))
            }
        };
        if !unmoved {
            moved.push(key);
        }
    }
    Ok(moved)
}

/// Whether a snapshot copy holds `version`, as far as the listings tell
/// (a multipart ETag is no MD5: then the size decides).
fn copy_holds(copy: &Fingerprint, version: &Fingerprint) -> bool {
    copy.size == version.size
        && (copy.md5.is_none() || version.md5.is_none() || copy.md5 == version.md5)
}

/// Whether a snapshot copy holds `version` for certain: same size and MD5.
fn copy_holds_exactly(copy: &Fingerprint, version: &Fingerprint) -> bool {
    copy.size == version.size && copy.md5.is_some() && copy.md5 == version.md5
}
