//! `stowage restore`: make each component's bucket equal to the archive,
//! moving only what differs, and prove it.
//!
//! The story, top to bottom:
//! 1. **fetch** the archive onto this machine ([`crate::fetch`]);
//! 2. **validate** all of it before any bucket is changed
//!    ([`read_outer`], [`crate::archive::read::OuterArchive::validate`]),
//!    while the bucket of each component it holds is **listed** — under a
//!    lock per bucket (one restore into a bucket at a time, see
//!    [`crate::lock`]); both only read;
//! 3. **plan** each component from the bucket's listing and the archive's
//!    MD5s — not from a tool's dry run, which can miss changes;
//! 4. refuse what the safety rules forbid, stop here on `--dry-run`, ask;
//! 5. per component, `--jobs` at a time: **snapshot** what the plan will
//!    overwrite or delete into the tmp bucket, **extract** into staging,
//!    **sync** with the plugin's tool (deleting only after the uploads
//!    succeeded), **verify** and repair;
//! 6. **report**.
//!
//! A re-run after a crash converges: every step reads the bucket afresh,
//! and a second identical restore plans nothing and changes nothing.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Result};
use serde::Serialize;
use stowage_core::abi_stable::std_types::RVec;
use stowage_core::provider::progress_reporter;
use stowage_core::{ActionKind, ErrorKind, ExcludeMatcher, Location, SyncOptions};
use stowage_local_tree::{key_to_relative_path, remove_file_and_empty_parents};

use crate::archive::read::{extract_component, read_files, read_outer, ArchiveIndex, Limits};
use crate::backup_store::BackupStore;
use crate::config::{Component, Settings};
use crate::exit::{ConfigError, Refused};
use crate::fetch::{fetch_archive, ArchiveSource, FetchedArchive};
use crate::lock::RestoreLocks;
use crate::memory::release_free_memory;
use crate::multipart_etag::{candidate_part_sizes, multipart_etags, part_count};
use crate::parallel::map_in_parallel;
use crate::plan::{
    forget_listed_md5s, listed_inventory, listed_md5s_are_content, Fingerprint, Inventory, Key,
    PlannedObject, SyncPlan,
};
use crate::plugin_errors::from_plugin;
use crate::progress::ProgressBarSink;
use crate::registry::{LoadedPlugin, Registry};
use crate::snapshots::snapshot_name;
use crate::verify::{
    same_version, to_rvec, verify_and_finish, FinishHooks, PlannedChanges, Verification,
};

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
    /// Told at each point of each component's restore.
    pub observer: RestoreObserver,
}

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

    fn tell(&self, component: &str, point: RestorePoint) {
        if let Some(tell) = &self.0 {
            tell(component, point);
        }
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
            observer: RestoreObserver::default(),
        }
    }
}

/// Components planned and restored at once unless asked otherwise.
pub const DEFAULT_JOBS: usize = 4;

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

/// One component's outcome.
#[derive(Debug, Serialize)]
pub struct ComponentOutcome {
    /// The plan it followed.
    #[serde(flatten)]
    pub plan: ComponentPlan,
    /// Where the snapshot went, if one was taken.
    pub snapshot: Option<String>,
    /// Objects uploaded (by the tool, plus repairs).
    pub uploaded: u64,
    /// Bytes uploaded.
    pub uploaded_bytes: u64,
    /// Objects deleted.
    pub deleted: u64,
    /// What verification found.
    pub verification: Option<Verification>,
    /// Seconds taken.
    pub duration_secs: f64,
    /// Why it failed, if it did.
    pub error: Option<String>,
}

/// What a restore did (or, in a dry run, would do).
#[derive(Debug, Serialize)]
pub struct RestoreReport {
    /// The archive's file name.
    pub archive: String,
    /// Whether this was a dry run.
    pub dry_run: bool,
    /// Top-level archive entries that are not object storage.
    pub ignored_entries: Vec<String>,
    /// Archive components not restored (not configured, or not selected).
    pub not_restored: Vec<String>,
    /// Per component.
    pub components: Vec<ComponentOutcome>,
    /// Why the restore locks could not be released, if they could not (they
    /// are left in the backup destination, named here, to remove by hand).
    pub lock_release_error: Option<String>,
}

impl RestoreReport {
    /// Whether every component succeeded.
    pub fn succeeded(&self) -> bool {
        self.components.iter().all(|c| c.error.is_none())
    }

    /// Objects someone else changed during the restore, left as found:
    /// while there are any, the buckets do not equal the backup.
    pub fn drifted(&self) -> usize {
        self.components
            .iter()
            .filter_map(|c| c.verification.as_ref())
            .map(|v| v.drifted.len())
            .sum()
    }
}

/// A plan and the bucket's inventory it was made from (the snapshot is
/// checked, and extracted files get their mtimes, against it).
struct Planned {
    plan: ComponentPlan,
    bucket: Inventory,
}

/// A component ready to plan: its config, plugin and archive inventory.
struct Target<'r> {
    component: Component,
    plugin: &'r LoadedPlugin,
    inventory: Inventory,
    /// Its bucket's listing, until the plan takes it over.
    listing: Option<Listing>,
}

/// Runs a restore. `confirm` is asked (with a summary) before any bucket
/// changes, unless `request.yes`.
pub fn run_restore(
    settings: &Settings,
    registry: &Registry,
    request: &RestoreRequest,
    confirm: &dyn Fn(&str) -> Result<bool>,
) -> Result<RestoreReport> {
    let restore_time = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let work = settings.staging_dir.join("restore");

    // 1. Fetch.
    let archive = fetch_archive(
        &request.source,
        &settings.destination,
        registry,
        &work.join("archives"),
        request.quiet,
    )?;

    // 2. Validate the whole archive while the buckets are listed: both only
    //    read, and nothing below changes a bucket before validation passed.
    //    The outer tar comes first (quick): only the buckets of components
    //    the archive holds are locked and listed. The listings are taken
    //    under the locks (unless nothing will change), so that no other
    //    restore moves the buckets meanwhile.
    let outer = read_outer(&archive.path)?;
    let selected = settings.select(&request.only, &request.skip)?;
    let in_archive: Vec<&Component> = selected
        .iter()
        .filter(|c| outer.has_component(&c.name))
        .collect();
    let store = BackupStore::open(&settings.destination, registry)?;
    let buckets: Vec<Location> = in_archive.iter().map(|c| c.bucket.clone()).collect();
    let locks = match request.dry_run {
        true => None,
        false => Some(RestoreLocks::take(&store, &buckets, request.break_lock)?),
    };
    let (index, listings) = std::thread::scope(|scope| {
        let validation = scope.spawn(|| outer.validate(&archive.path, request.limits));
        let listings = map_in_parallel(in_archive, request.jobs, |component| {
            let listing = registry
                .for_location(&component.bucket, None)
                .and_then(|plugin| list_bucket(component, plugin));
            (component.name.clone(), listing)
        });
        (
            validation.join().expect("validation does not panic"),
            listings,
        )
    });
    let index = index?;
    release_free_memory();
    let ignored_entries = index.ignored.iter().cloned().collect();

    // 3. Plan every component from its listing and the archive.
    let (mut targets, not_restored) = targets(registry, request, index, selected, listings)?;
    let plans = plan_components(&mut targets, request, &archive.path)?;
    if let Some(locks) = &locks {
        locks.confirm()?;
    }

    // 4. Safety rules, dry run, confirmation.
    check_rules(settings, request, &targets, &plans)?;
    let mut report = RestoreReport {
        archive: archive.file_name.clone(),
        dry_run: request.dry_run,
        ignored_entries,
        not_restored,
        components: Vec::new(),
        lock_release_error: None,
    };
    if request.dry_run {
        report.components = plans
            .into_iter()
            .map(|planned| outcome_of(planned.plan))
            .collect();
        return Ok(report);
    }
    if !request.yes && !confirm(&summary(&plans))? {
        bail!(Refused(
            "restore cancelled; nothing was changed".to_string()
        ));
    }

    // 5. Each component: snapshot, extract, sync, verify — `jobs` at a time.
    let run = RestoreRun {
        archive: &archive,
        settings,
        request,
        restore_time,
        work: &work,
        tmp_bucket_creation: Mutex::new(()),
    };
    report.components = map_in_parallel(
        targets.iter().zip(plans).collect(),
        request.jobs,
        |(target, planned)| {
            let outcome = run.restore_component(target, planned);
            release_free_memory();
            outcome
        },
    );
    // A finished restore's report is never lost to a lock left behind.
    if let Some(locks) = locks {
        report.lock_release_error = locks.release().err().map(|e| format!("{e:#}"));
    }
    if archive.downloaded && report.succeeded() {
        let _ = std::fs::remove_file(&archive.path);
    }
    Ok(report)
}

/// A bucket as its listing found it.
struct Listing {
    /// Its objects (excluded paths left out).
    inventory: Inventory,
    /// Whether it exists (a fresh instance has none yet).
    exists: bool,
}

/// Lists a component's bucket. A missing bucket is an empty one (a fresh
/// instance); the restore will create it.
fn list_bucket(component: &Component, plugin: &LoadedPlugin) -> Result<Listing> {
    let bucket = &component.bucket;
    let (listing, exists) = match plugin.provider.list(bucket).into_result() {
        Ok(entries) => (entries, true),
        Err(e) if e.kind == ErrorKind::BucketMissing => (RVec::new(), false),
        Err(e) => {
            return Err(from_plugin(
                format_args!("component {}: cannot list {bucket}", component.name),
                e,
            ))
        }
    };
    let excludes = ExcludeMatcher::new(&component.excludes).map_err(anyhow::Error::msg)?;
    Ok(Listing {
        inventory: listed_inventory(listing, &excludes),
        exists,
    })
}

/// The components to restore: selected and in the archive, each with its
/// bucket's listing (`listings`: component name and listing). Takes the
/// archive's inventories over (one copy of them in memory).
fn targets<'r>(
    registry: &'r Registry,
    request: &RestoreRequest,
    mut index: ArchiveIndex,
    selected: Vec<Component>,
    listings: Vec<(String, Result<Listing>)>,
) -> Result<(Vec<Target<'r>>, Vec<String>)> {
    let mut listings: BTreeMap<String, Result<Listing>> = listings.into_iter().collect();
    let mut not_restored: Vec<String> = index
        .components
        .keys()
        .filter(|name| !selected.iter().any(|c| &c.name == *name))
        .cloned()
        .collect();
    let mut targets = Vec::new();
    for component in selected {
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
        let excludes = ExcludeMatcher::new(&component.excludes).map_err(anyhow::Error::msg)?;
        let mut inventory = found.inventory;
        inventory.retain(|key, _| !excludes.is_excluded(key));
        let plugin = registry.for_location(&component.bucket, None)?;
        let listing = listings
            .remove(&component.name)
            .expect("a component in the archive was listed")?;
        targets.push(Target {
            component,
            plugin,
            inventory,
            listing: Some(listing),
        });
    }
    Ok((targets, not_restored))
}

/// Plans every target, `jobs` at a time (resolving multipart ETags reads
/// the archive).
fn plan_components(
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

/// Compares the bucket's listing with the archive.
fn plan_component(
    target: &mut Target<'_>,
    request: &RestoreRequest,
    archive: &Path,
) -> Result<Planned> {
    let bucket = target.component.bucket.clone();
    let Listing {
        inventory: mut bucket_inventory,
        exists: bucket_exists,
    } = target.listing.take().expect("planned once");
    let mut plan = SyncPlan::new(&target.inventory, &bucket_inventory, true);
    let etags_are_md5s = listed_md5s_are_content(
        &target.plugin.provider,
        &bucket,
        &bucket_inventory,
        &target.inventory,
    )?;
    if !etags_are_md5s {
        forget_listed_md5s(&mut bucket_inventory);
        plan =
            SyncPlan::new(&target.inventory, &bucket_inventory, true).transferring_the_doubtful();
    }
    if !plan.possibly_changed.is_empty() {
        resolve_multipart_etags(
            target,
            &bucket_inventory,
            &plan.possibly_changed,
            archive,
            request.limits,
        )?;
        plan = SyncPlan::new(&target.inventory, &bucket_inventory, true);
    }
    let snapshot_keys = match request.snapshot {
        SnapshotMode::None => Vec::new(),
        SnapshotMode::Full => bucket_inventory.keys().cloned().collect(),
        SnapshotMode::Changed => {
            let existing = |o: &PlannedObject| bucket_inventory.contains_key(&o.key);
            let mut keys: Vec<Key> = plan
                .transfer
                .iter()
                .chain(&plan.possibly_changed)
                .chain(&plan.delete)
                .filter(|o| existing(o))
                .map(|o| o.key.clone())
                .collect();
            keys.sort();
            keys
        }
    };
    Ok(Planned {
        plan: ComponentPlan {
            component: target.component.name.clone(),
            bucket: bucket.to_string(),
            plugin: target.plugin.name.clone(),
            bucket_exists,
            etags_are_md5s,
            objects: target.inventory.len() as u64,
            plan,
            snapshot_keys,
        },
        bucket: bucket_inventory,
    })
}

/// For objects only *possibly changed* because their ETag is a multipart
/// one, works out from the archive the multipart ETags their content would
/// have (see [`crate::multipart_etag`]); where one equals the bucket's, the
/// source's fingerprint carries it and the object compares as the same.
fn resolve_multipart_etags(
    target: &mut Target<'_>,
    bucket_inventory: &Inventory,
    possibly_changed: &[PlannedObject],
    archive: &Path,
    limits: Limits,
) -> Result<()> {
    let candidates: BTreeMap<&str, (&str, Vec<u64>)> = possibly_changed
        .iter()
        .filter_map(|o| {
            let etag = bucket_inventory.get(&o.key)?.etag.as_deref()?;
            let sizes = candidate_part_sizes(o.size, part_count(etag)?);
            (!sizes.is_empty()).then_some((&*o.key, (etag, sizes)))
        })
        .collect();
    if candidates.is_empty() {
        return Ok(());
    }
    let inventory = &mut target.inventory;
    read_files(
        archive,
        &target.component.name,
        limits,
        |key| candidates.contains_key(key),
        |key, _size, _mtime, content| {
            let (etag, sizes) = &candidates[key];
            if multipart_etags(content, sizes)?.iter().any(|e| e == etag) {
                if let Some(source) = inventory.get_mut(key) {
                    source.etag = Some((*etag).into());
                }
            }
            Ok(())
        },
    )
}

/// Refuses, before anything changes, what the safety rules forbid.
fn check_rules(
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
    for (target, Planned { plan, bucket }) in targets.iter().zip(plans) {
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
        if target.inventory.is_empty() && !bucket.is_empty() && !request.allow_empty {
            bail!(Refused(format!(
                "component {} is empty in the archive but its bucket {} holds {} objects; restoring would empty it (add --allow-empty to do that)",
                plan.component,
                plan.bucket,
                bucket.len()
            )));
        }
        if let Some(max) = request.max_delete {
            if plan.plan.delete.len() as u64 > max {
                bail!(Refused(format!(
                    "component {} would delete {} objects from {}, more than --max-delete {max}; nothing was changed",
                    plan.component,
                    plan.plan.delete.len(),
                    plan.bucket
                )));
            }
        }
    }
    Ok(())
}

/// The one-paragraph summary shown before asking.
fn summary(plans: &[Planned]) -> String {
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

fn outcome_of(plan: ComponentPlan) -> ComponentOutcome {
    ComponentOutcome {
        plan,
        snapshot: None,
        uploaded: 0,
        uploaded_bytes: 0,
        deleted: 0,
        verification: None,
        duration_secs: 0.0,
        error: None,
    }
}

/// What every component's restore shares.
struct RestoreRun<'a> {
    archive: &'a FetchedArchive,
    settings: &'a Settings,
    request: &'a RestoreRequest,
    /// Names the snapshots: `<tmp>/<component>.<restore_time>/`.
    restore_time: u64,
    work: &'a Path,
    /// Held while the tmp bucket is created (by the first snapshot that
    /// finds it missing).
    tmp_bucket_creation: Mutex<()>,
}

impl RestoreRun<'_> {
    /// Snapshot, extract, sync, verify one component; failures end up in the outcome.
    fn restore_component(&self, target: &Target<'_>, planned: Planned) -> ComponentOutcome {
        let started = Instant::now();
        let staging = self.work.join("extract").join(&target.component.name);
        let mut outcome = outcome_of(planned.plan);
        let mut snapshot_target = None;
        let result = self.restore_into(
            target,
            &planned.bucket,
            &mut outcome,
            &staging,
            &mut snapshot_target,
        );
        let _ = std::fs::remove_dir_all(&staging);
        outcome.error = result.err().map(|e| match &snapshot_target {
            Some(snapshot) => format!(
                "{e:#}; what this restore had replaced or was about to replace is in the snapshot {snapshot} (perhaps partly)"
            ),
            None => format!("{e:#}"),
        });
        outcome.duration_secs = started.elapsed().as_secs_f64();
        outcome
    }

    /// The steps of [`RestoreRun::restore_component`]: snapshot (while the
    /// planned files are extracted), confirm the plan against a fresh
    /// listing, let the tool upload, then verify, repair and delete.
    /// `snapshot_target` names the snapshot as soon as copying into it began.
    fn restore_into(
        &self,
        target: &Target<'_>,
        found_at_planning: &Inventory,
        outcome: &mut ComponentOutcome,
        staging: &Path,
        snapshot_target: &mut Option<String>,
    ) -> Result<()> {
        crate::interrupt::check()?;
        let name = &target.component.name;
        let observer = &self.request.observer;
        observer.tell(name, RestorePoint::Planned);
        // Only what the plan uploads (or the tool may) is extracted — while
        // the snapshot is taken, both only read.
        let plan = &outcome.plan.plan;
        let wanted: HashSet<&str> = plan
            .transfer
            .iter()
            .chain(&plan.possibly_changed)
            .map(|o| &*o.key)
            .collect();
        let extract = |wanted: &dyn Fn(&str) -> bool| {
            extract(
                target,
                wanted,
                plan,
                found_at_planning,
                self.archive,
                self.request,
                staging,
            )
        };
        let (snapshot, extracted) = std::thread::scope(|scope| {
            let extraction = (!wanted.is_empty()).then(|| {
                scope.spawn(|| {
                    let _ = std::fs::remove_dir_all(staging);
                    extract(&|key| wanted.contains(key))
                })
            });
            let snapshot = self.copy_snapshot(target, &outcome.plan, snapshot_target);
            let extracted =
                extraction.map_or(Ok(()), |h| h.join().expect("extraction does not panic"));
            (snapshot, extracted)
        });
        let snapshot = snapshot?;
        extracted?;
        let nothing_to_do = plan.transfer.is_empty() && plan.delete.is_empty() && wanted.is_empty();
        if nothing_to_do && outcome.plan.bucket_exists {
            // The listing just taken is the proof: every object already matches.
            outcome.verification = Some(Verification {
                verified: plan.unchanged,
                ..Verification::default()
            });
            return Ok(());
        }
        crate::interrupt::check()?;
        observer.tell(name, RestorePoint::SnapshotCopied);

        // What moved since planning is left out of this round.
        let mut current = list_bucket(&target.component, target.plugin)?;
        if !outcome.plan.etags_are_md5s {
            forget_listed_md5s(&mut current.inventory);
        }
        let snapshot_listing = match &snapshot {
            Some(location) => Some(self.list_snapshot(target, location)?),
            None => None,
        };
        let moved = moved_since_planning(
            &outcome.plan,
            found_at_planning,
            &current.inventory,
            snapshot_listing.as_ref(),
        )?;
        outcome.snapshot = snapshot.map(|s| s.to_string());
        for key in &moved {
            if wanted.contains(&**key) {
                remove_file_and_empty_parents(staging, &staging.join(key_to_relative_path(key)?))?;
            }
        }
        let mut planned = PlannedChanges::of(plan, &current.inventory, true);
        planned.listed_md5s = outcome.plan.etags_are_md5s;
        for key in &moved {
            planned.transfers.remove(&**key);
            planned.deletes.remove(&**key);
        }

        let bucket = &target.component.bucket;
        let provider = &target.plugin.provider;
        if !current.exists {
            provider
                .ensure_bucket(bucket)
                .into_result()
                .map_err(|e| from_plugin(format_args!("cannot create bucket {bucket}"), e))?;
        }
        let source = Location::Local {
            path: staging.to_string_lossy().as_ref().into(),
        };
        if !planned.transfers.is_empty() {
            observer.tell(name, RestorePoint::Uploading);
            let (objects, bytes) = self.upload(target, &source, planned.transfers.len())?;
            outcome.uploaded = objects;
            outcome.uploaded_bytes = bytes;
            observer.tell(name, RestorePoint::Uploaded);
        }
        crate::interrupt::check()?;
        let matcher =
            ExcludeMatcher::new(&target.component.excludes).map_err(anyhow::Error::msg)?;
        let verification = verify_and_finish(
            provider,
            &source,
            bucket,
            &target.inventory,
            &planned,
            &matcher,
            &FinishHooks {
                prepare: &|keys: &[Key]| {
                    let keys: HashSet<&str> = keys.iter().map(|k| &**k).collect();
                    extract(&|key| keys.contains(key))
                },
                before_changes: &|| observer.tell(name, RestorePoint::Verifying),
            },
        )?;
        outcome.uploaded += verification.repaired.len() as u64;
        outcome.deleted = verification.deleted.len() as u64;
        outcome.verification = Some(verification);
        Ok(())
    }

    /// The tool's sync from `staging` into the bucket, uploading only (the
    /// planned deletes follow once every upload has succeeded and the
    /// bucket was listed again). Returns the objects and bytes uploaded.
    fn upload(
        &self,
        target: &Target<'_>,
        staging: &Location,
        planned: usize,
    ) -> Result<(u64, u64)> {
        let bucket = &target.component.bucket;
        let options = SyncOptions {
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
        let report = target
            .plugin
            .provider
            .sync(staging, bucket, &options, &progress_reporter(&bar))
            .into_result();
        bar.finish();
        let report = report.map_err(|e| {
            from_plugin(
                format_args!("sync into {bucket} with plugin {}", target.plugin.name),
                e,
            )
        })?;
        let (mut objects, mut bytes) = (0, 0);
        for kind in [ActionKind::Upload, ActionKind::Copy] {
            objects += report.total(kind).objects;
            bytes += report.total(kind).bytes;
        }
        Ok((objects, bytes))
    }

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
        let provider = &target.plugin.provider;
        let snapshot = self.free_snapshot_location(target, tmp)?;
        *snapshot_target = Some(snapshot.to_string());
        let copy = || {
            provider.copy(
                &target.component.bucket,
                &snapshot,
                &to_rvec(&plan.snapshot_keys),
            )
        };
        // The tmp bucket exists on every restore but the first, so it is
        // created only when a copy finds it missing (a check costs requests).
        match copy().into_result() {
            Err(e) if e.kind == ErrorKind::BucketMissing => {
                let _one_at_a_time = self.tmp_bucket_creation.lock().expect("not poisoned");
                provider
                    .ensure_bucket(tmp)
                    .into_result()
                    .map_err(|e| from_plugin(snapshot_context(target, &snapshot), e))?;
                copy().into_result()
            }
            other => other,
        }
        .map_err(|e| from_plugin(snapshot_context(target, &snapshot), e))?;
        Ok(Some(snapshot))
    }

    /// `<tmp>/<component>.<restore time>/`, or the next second that holds
    /// no snapshot: a restore run again within the same second never
    /// writes into the snapshot of the one before.
    fn free_snapshot_location(&self, target: &Target<'_>, tmp: &Location) -> Result<Location> {
        let provider = &target.plugin.provider;
        let mut time = self.restore_time;
        loop {
            let candidate = snapshot_location(tmp, &target.component.name, time);
            match provider.list(&candidate).into_result() {
                Ok(objects) if !objects.is_empty() => time += 1,
                Ok(_) => return Ok(candidate),
                Err(e) if e.kind == ErrorKind::BucketMissing => return Ok(candidate),
                Err(e) => return Err(from_plugin(snapshot_context(target, &candidate), e)),
            }
        }
    }

    /// The snapshot's objects, as listed after copying.
    fn list_snapshot(&self, target: &Target<'_>, snapshot: &Location) -> Result<Inventory> {
        let copied = target
            .plugin
            .provider
            .list(snapshot)
            .into_result()
            .map_err(|e| from_plugin(snapshot_context(target, snapshot), e))?;
        let excludes =
            ExcludeMatcher::new(&target.component.excludes).map_err(anyhow::Error::msg)?;
        Ok(listed_inventory(copied, &excludes))
    }
}

/// Where a component's snapshot goes: `<tmp>/<component>.<restore time>/`.
fn snapshot_location(tmp: &Location, component: &str, restore_time: u64) -> Location {
    tmp.join(&snapshot_name(component, restore_time))
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
    let planned = plan
        .plan
        .transfer
        .iter()
        .chain(&plan.plan.possibly_changed)
        .chain(&plan.plan.delete);
    let mut moved = Vec::new();
    for PlannedObject { key, .. } in planned {
        let unmoved = match (found.get(key), current.get(key)) {
            // Gone meanwhile: no version left to protect.
            (_, None) => true,
            (None, Some(_)) => false,
            (Some(then), Some(now)) => {
                same_version(then, now) || copy_of(key).is_some_and(|c| copy_holds_exactly(c, now))
            }
        };
        if !unmoved {
            moved.push(key.clone());
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
