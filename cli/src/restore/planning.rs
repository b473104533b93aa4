//! Planning a restore: each component's bucket listed, compared with the
//! archive's objects by size and MD5 (multipart ETags worked out from the
//! archive), the snapshot chosen; then the safety rules checked and the
//! summary shown before asking.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Result};
use serde::Serialize;
use stowage_exclude::ExcludeMatcher;
use stowage_plugin_api::ErrorKind;

use crate::archive::read::{read_files, ArchiveIndex, Limits};
use crate::config::{Component, Settings};
use crate::exit::{ConfigError, Refused};
use crate::memory::release_free_memory;
use crate::output::counted;
use crate::parallel::map_in_parallel;
use crate::plugin::{plugin_error_kind, LoadedPlugin};
use crate::registry::Registry;
use crate::restore::{RestoreRequest, ShardShares, SnapshotMode, WholeComponent};
use crate::sync::merge::{merge_spilled, Met, SourceObjects, SourceWalk, Taking};
use crate::sync::multipart_etag::{candidate_part_sizes, multipart_etags, part_count};
use crate::sync::plan::{Inventory, Key, SmallestDoubt, SyncPlan};
use crate::sync::planned::PlannedObjects;
use crate::sync::spill::SpilledObjects;

/// One component's plan.
#[derive(Debug, Serialize)]
pub struct ComponentPlan {
    /// The component.
    pub component: String,
    /// Its bucket.
    pub bucket: String,
    /// The plugin that serves it.
    pub plugin: String,
    /// Whether the bucket exists (a fresh instance has none yet).
    pub bucket_exists: bool,
    /// Whether the bucket's ETags are content MD5s; when not (SSE-KMS,
    /// SSE-C), its objects are compared by size only.
    pub etags_are_md5s: bool,
    /// Objects in the archive.
    pub objects: u64,
    /// Upload, delete, possibly changed, unchanged.
    #[serde(flatten)]
    pub plan: SyncPlan,
    /// The keys the snapshot will copy.
    pub snapshot_keys: Vec<Key>,
}

/// A plan and what it found of the bucket: the objects of the keys it
/// names (the snapshot is checked, extracted files get their mtimes, and
/// verification tells what moved, against them). The rest of the listing
/// is not kept: at 1,000,000 objects it is hundreds of MiB.
pub(super) struct Planned {
    pub(super) plan: ComponentPlan,
    pub(super) bucket: Inventory,
    /// How many objects the bucket's listing held.
    pub(super) bucket_objects: usize,
}

/// A component ready to plan: its config, plugin and archive objects.
pub(super) struct Target<'r> {
    pub(super) component: Component,
    pub(super) plugin: &'r LoadedPlugin,
    pub(super) archive: ArchiveObjects<'r>,
    /// Its bucket's listing, until the plan is made.
    listing: Option<Listing>,
    /// This restore's share of the keys.
    shares: &'r ShardShares,
    /// How many objects the archive and the bucket hold, all shards.
    whole: WholeComponent,
}

/// A component's objects in the archive as this restore takes them: on
/// disk in key order (as validation found them), excluded keys and other
/// shards' keys left out, with the multipart ETags planning worked out.
pub(super) struct ArchiveObjects<'r> {
    found: SpilledObjects,
    /// Whether the tarball holds its files in key order.
    pub(super) in_key_order: bool,
    excludes: ExcludeMatcher,
    component: String,
    shares: &'r ShardShares,
    /// Key → the multipart ETag its content has ([`resolve_multipart_etags`]).
    multipart_etags: BTreeMap<Key, Box<str>>,
}

impl ArchiveObjects<'_> {
    /// How many objects the archive holds that are not excluded, all
    /// shards' (one walk of them where some keys are excluded).
    fn whole_count(&self) -> Result<usize> {
        if self.excludes.is_empty() {
            return Ok(self.found.objects);
        }
        let mut count = 0;
        for object in self.found.read()? {
            count += usize::from(!self.excludes.is_excluded(&object?.0));
        }
        Ok(count)
    }
}

impl SourceObjects for ArchiveObjects<'_> {
    fn walk(&self) -> Result<SourceWalk<'_>> {
        let taken =
            |key: &str| !self.excludes.is_excluded(key) && self.shares.owns(&self.component, key);
        let objects = self.found.read()?.filter_map(move |object| {
            let (key, mut found) = match object {
                Ok(object) => object,
                Err(e) => return Some(Err(e)),
            };
            if !taken(&key) {
                return None;
            }
            let key = Key::from(key);
            if let Some(etag) = self.multipart_etags.get(&key) {
                found.etag = Some(etag.clone());
            }
            Some(Ok((key, found)))
        });
        Ok(Box::new(objects))
    }
}

/// A bucket as its listing found it.
pub(super) struct Listing {
    /// Its objects (excluded paths left out), on disk.
    spilled: SpilledObjects,
    /// Whether it exists (a fresh instance has none yet).
    exists: bool,
}

/// Lists a component's bucket into a file in `directory`. A missing
/// bucket is an empty one (a fresh instance); the restore will create it.
pub(super) fn list_bucket(
    component: &Component,
    plugin: &LoadedPlugin,
    directory: &Path,
) -> Result<Listing> {
    let excludes = ExcludeMatcher::new(&component.excludes).map_err(anyhow::Error::msg)?;
    match SpilledObjects::write(plugin, &component.bucket, &excludes, directory) {
        Ok(spilled) => Ok(Listing {
            spilled,
            exists: true,
        }),
        Err(e) if plugin_error_kind(&e) == Some(ErrorKind::BucketMissing) => Ok(Listing {
            spilled: SpilledObjects::empty(directory)?,
            exists: false,
        }),
        Err(e) => Err(e.context(format!("component {}", component.name))),
    }
}

/// The components to restore: selected, in the archive and not wholly
/// other shards' (`shares`), each with its bucket's listing (`listings`:
/// component name and listing) and its archive objects, taken over from
/// the index.
pub(super) fn targets<'r>(
    registry: &'r Registry,
    request: &RestoreRequest,
    shares: &'r ShardShares,
    mut index: ArchiveIndex,
    selected: Vec<Component>,
    listings: Vec<(String, Result<Listing>)>,
) -> Result<(Vec<Target<'r>>, Vec<String>)> {
    let mut listings: BTreeMap<String, Result<Listing>> = listings.into_iter().collect();
    let mut not_restored: Vec<String> = index
        .components
        .keys()
        .filter(|name| !selected.iter().any(|c| &c.name == *name) && !shares.is_others(name))
        .cloned()
        .collect();
    let mut targets = Vec::new();
    for component in selected {
        if shares.is_others(&component.name) {
            continue;
        }
        let Some(found) = index.components.remove(&component.name) else {
            if !request.only.is_empty() {
                bail!(ConfigError(format!(
                    "component {} is not in the archive",
                    component.name
                )));
            }
            not_restored.push(format!(
                "{} (configured, not in the archive)",
                component.name
            ));
            continue;
        };
        let archive = ArchiveObjects {
            found: found.objects,
            in_key_order: found.in_key_order,
            excludes: ExcludeMatcher::new(&component.excludes).map_err(anyhow::Error::msg)?,
            component: component.name.clone(),
            shares,
            multipart_etags: BTreeMap::new(),
        };
        let plugin = registry.for_location(&component.bucket, None)?;
        let listing = listings
            .remove(&component.name)
            .expect("a component in the archive was listed")?;
        let whole = WholeComponent {
            archive_objects: archive.whole_count()?,
            bucket_objects: listing.spilled.objects,
        };
        targets.push(Target {
            component,
            plugin,
            archive,
            listing: Some(listing),
            shares,
            whole,
        });
    }
    Ok((targets, not_restored))
}

/// Plans every target, `jobs` at a time (resolving multipart ETags reads
/// the archive).
pub(super) fn plan_components(
    targets: &mut [Target<'_>],
    request: &RestoreRequest,
    archive: &Path,
) -> Result<Vec<Planned>> {
    map_in_parallel(targets.iter_mut().collect(), request.jobs, |target| {
        plan_component(target, request, archive)
    })
    .into_iter()
    .collect()
}

/// Compares the bucket's listing with the archive: the listing is walked
/// from disk beside the archive's objects, and only what the plan names
/// of it is kept.
fn plan_component(
    target: &mut Target<'_>,
    request: &RestoreRequest,
    archive: &Path,
) -> Result<Planned> {
    let bucket = target.component.bucket.clone();
    let Listing {
        spilled,
        exists: bucket_exists,
    } = target.listing.take().expect("planned once");
    let keeping_keys = request.snapshot == SnapshotMode::Full;
    let mut merged = merge_plan(target, &spilled, false, keeping_keys)?;
    let etags_are_md5s = merged.doubt.settle(target.plugin, &bucket)?;
    if !etags_are_md5s {
        merged = merge_plan(target, &spilled, true, keeping_keys)?;
        merged.plan = merged.plan.transferring_the_doubtful();
    }
    if !merged.plan.possibly_changed.is_empty() {
        resolve_multipart_etags(
            target,
            &merged.found,
            &merged.plan.possibly_changed,
            archive,
            request.limits,
        )?;
        merged = merge_plan(target, &spilled, false, keeping_keys)?;
    }
    let MergedPlan {
        plan,
        found,
        archive_objects,
        listed,
        listed_keys,
        ..
    } = merged;
    let snapshot_keys = match request.snapshot {
        SnapshotMode::None => Vec::new(),
        SnapshotMode::Full => listed_keys,
        // The objects the plan names that exist, in key order.
        SnapshotMode::Changed => found.keys().cloned().collect(),
    };
    release_free_memory();
    Ok(Planned {
        plan: ComponentPlan {
            component: target.component.name.clone(),
            bucket: bucket.to_string(),
            plugin: target.plugin.name.clone(),
            bucket_exists,
            etags_are_md5s,
            objects: archive_objects,
            plan,
            snapshot_keys,
        },
        bucket: found,
        bucket_objects: listed,
    })
}

/// A plan, and what it found of the bucket.
struct MergedPlan {
    plan: SyncPlan,
    /// The listed objects of the keys the plan names.
    found: Inventory,
    /// How many objects the archive holds (this shard's).
    archive_objects: u64,
    /// How many objects were listed (this shard's).
    listed: usize,
    /// Every listed key, when asked for (a full snapshot copies them all).
    listed_keys: Vec<Key>,
    /// The listed object whose MD5 is most cheaply proven or disproven.
    doubt: SmallestDoubt,
}

/// Walks the bucket's listing (`spilled`) beside the archive's objects,
/// this shard's keys only, and plans: what differs is transferred, what
/// the archive lacks deleted. `md5s_forgotten`: compare by size only (the
/// bucket's ETags are not MD5s); `keeping_keys`: keep every listed key.
fn merge_plan(
    target: &Target<'_>,
    spilled: &SpilledObjects,
    md5s_forgotten: bool,
    keeping_keys: bool,
) -> Result<MergedPlan> {
    let component = &target.component.name;
    let mut merged = MergedPlan {
        plan: SyncPlan::default(),
        found: Inventory::new(),
        archive_objects: 0,
        listed: 0,
        listed_keys: Vec::new(),
        doubt: SmallestDoubt::default(),
    };
    let owns = |key: &str| target.shares.owns(component, key);
    let taking = Taking {
        keep: &owns,
        md5s_forgotten,
    };
    merged.listed = merge_spilled(spilled, &target.archive, taking, &mut |met| {
        let Met {
            key,
            source,
            listed,
        } = met;
        if keeping_keys && listed.is_some() {
            merged.listed_keys.push(key.clone());
        }
        if let Some(wanted) = source {
            merged.archive_objects += 1;
            merged.doubt.consider(key, wanted, listed.as_ref());
        }
        if merged.plan.meet(key, source, listed.as_ref(), true) {
            if let Some(there) = listed {
                merged.found.insert(key.clone(), there);
            }
        }
        Ok(())
    })? as usize;
    Ok(merged)
}

/// For objects only *possibly changed* because their ETag is a multipart
/// one, works out from the archive the multipart ETags their content would
/// have (see [`crate::sync::multipart_etag`]); where one equals the bucket's, the
/// source's fingerprint carries it and the object compares as the same.
fn resolve_multipart_etags(
    target: &mut Target<'_>,
    bucket_inventory: &Inventory,
    possibly_changed: &PlannedObjects,
    archive: &Path,
    limits: Limits,
) -> Result<()> {
    let candidates: BTreeMap<Key, (&str, Vec<u64>)> = possibly_changed
        .iter()
        .filter_map(|o| {
            let etag = bucket_inventory.get(&o.key)?.etag.as_deref()?;
            let sizes = candidate_part_sizes(o.size, part_count(etag)?);
            (!sizes.is_empty()).then_some((o.key, (etag, sizes)))
        })
        .collect();
    if candidates.is_empty() {
        return Ok(());
    }
    let resolved = &mut target.archive.multipart_etags;
    read_files(
        archive,
        &target.component.name,
        limits,
        |key| candidates.contains_key(key),
        |key, _size, _mtime, content| {
            let (etag, sizes) = &candidates[key];
            if multipart_etags(content, sizes)?.iter().any(|e| e == etag) {
                resolved.insert(key.into(), (*etag).into());
            }
            Ok(())
        },
    )
}

/// Refuses, before anything changes, what the safety rules forbid.
pub(super) fn check_rules(
    settings: &Settings,
    request: &RestoreRequest,
    targets: &[Target<'_>],
    plans: &[Planned],
) -> Result<()> {
    if request.snapshot == SnapshotMode::None && !request.yes && !request.dry_run {
        bail!(Refused(
            "--snapshot none restores without a way back; add --yes to confirm".to_string()
        ));
    }
    if request.snapshot != SnapshotMode::None && settings.tmp_bucket.is_none() {
        bail!(ConfigError(
            "no tmp bucket for restore snapshots: set tmp_bucket in stowage.toml or --tmp-bucket (or --snapshot none --yes)"
                .to_string()
        ));
    }
    for (target, Planned { plan, .. }) in targets.iter().zip(plans) {
        if let Some(tmp) = settings
            .tmp_bucket
            .as_ref()
            .filter(|_| !plan.snapshot_keys.is_empty())
        {
            if tmp.scheme() != target.component.bucket.scheme() {
                bail!(ConfigError(format!(
                    "component {}: the tmp bucket {tmp} must be on the same storage as {} to snapshot it",
                    plan.component, plan.bucket
                )));
            }
        }
        // Whole, not this shard's share: a shard may own no key of a
        // small component.
        let whole = target.whole;
        if whole.archive_objects == 0 && whole.bucket_objects > 0 && !request.allow_empty {
            bail!(Refused(format!(
                "component {} is empty in the archive but its bucket {} holds {}; restoring would empty it (add --allow-empty to do that)",
                plan.component,
                plan.bucket,
                counted(whole.bucket_objects as u64, "object")
            )));
        }
        if let Some(max) = request.max_delete {
            if plan.plan.delete.len() as u64 > max {
                bail!(Refused(format!(
                    "component {} would delete {} from {}, more than --max-delete {max}; nothing was changed",
                    plan.component,
                    counted(plan.plan.delete.len() as u64, "object"),
                    plan.bucket
                )));
            }
        }
    }
    Ok(())
}

/// The one-paragraph summary shown before asking.
pub(super) fn summary(plans: &[Planned]) -> String {
    plans
        .iter()
        .map(|Planned { plan: p, .. }| {
            format!(
                "{}: upload {} ({} bytes), delete {}, possibly changed {}, unchanged {} in {}",
                p.component,
                p.plan.transfer.len(),
                p.plan.transfer_bytes(),
                p.plan.delete.len(),
                p.plan.possibly_changed.len(),
                p.plan.unchanged,
                p.bucket
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}
