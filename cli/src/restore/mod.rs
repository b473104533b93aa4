//! `stowage restore`: make each component's bucket equal to the archive,
//! moving only what differs, and prove it.
//!
//! The story, top to bottom — [`run_restore`] and, per component,
//! `restore_into` below tell it; each step has its file in `restore/`:
//! 1. **fetch** the archive onto this machine ([`crate::store::fetch`]; a
//!    shard of an archive in a bucket fetches only its part,
//!    [`crate::store::ranged`]);
//! 2. **validate** all of it before any bucket is changed
//!    ([`read_outer`], [`crate::archive::read::OuterArchive::validate`];
//!    a shard that fetched its part validates that part and waits for
//!    the other shards' verdicts on the rest, `shared_validation.rs`),
//!    while the bucket of each component it holds is **listed** — under a
//!    lock per bucket (one restore into a bucket at a time, see
//!    [`crate::store::lock`]); both only read;
//! 3. **plan** each component from the bucket's listing and the archive's
//!    MD5s — not from a tool's dry run, which can miss changes
//!    (`planning.rs`);
//! 4. refuse what the safety rules forbid, stop here on `--dry-run`, ask
//!    (`planning.rs`);
//! 5. per component, `--jobs` at a time: **snapshot** what the plan will
//!    overwrite or delete into the tmp bucket (`snapshot.rs`), **extract**
//!    into staging and **sync** with the plugin's tool (`transfer.rs`;
//!    deleting only after the uploads succeeded), **verify** and repair
//!    (`verification.rs`);
//! 6. **report** (`report.rs`).
//!
//! What a restore can be asked is in `request.rs`; a sharded restore
//! (`--shard I/N`, `shard.rs`) answers for its share of the components
//! and keys only (`shares.rs`): they are cut where the archive and the
//! listing meet, before planning.
//!
//! A re-run after a crash converges: every step reads the bucket afresh,
//! and a second identical restore plans nothing and changes nothing.

mod planning;
mod report;
mod request;
mod shard;
mod shared_validation;
mod shares;
mod snapshot;
mod transfer;
mod verification;

pub use planning::ComponentPlan;
pub use report::{ComponentOutcome, RestoreReport, StepTime};
pub use request::{
    PlanViewer, RestoreObserver, RestorePoint, RestoreRequest, SnapshotMode, DEFAULT_JOBS,
    DEFAULT_SHARD_WAIT, DEFAULT_UPLOAD_BATCH,
};
pub use shard::{Shard, WholeComponent, JOB_COMPLETION_INDEX};
pub use shares::ShardShares;

use std::path::Path;
use std::sync::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Result};
use stowage_plugin_api::Location;

use crate::archive::read::{read_outer, ArchiveIndex, OuterArchive};
use crate::config::{Component, Settings};
use crate::exit::{InvalidArchive, Refused};
use crate::memory::release_free_memory;
use crate::parallel::map_in_parallel;
use crate::progress::{ByteProgress, Spinner};
use crate::registry::Registry;
use crate::restore::planning::{
    check_rules, list_bucket, plan_components, summary, targets, Planned, Target,
};
use crate::restore::report::{outcome_of, StepClock};
use crate::restore::shared_validation::SharedValidation;
use crate::restore::transfer::UploadBatches;
use crate::store::backup_store::BackupStore;
use crate::store::fetch::{locate_archive, ArchiveAt, FetchedArchive};
use crate::store::lock::RestoreLocks;
use crate::store::ranged::{fetch_outer, fetch_tarballs};
use crate::sync::md5_digest::Md5Digest;
use crate::sync::plan::Inventory;
use crate::sync::verify::Verification;

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
    let mut clock = StepClock::default();

    // 1. Fetch: the whole archive, or a shard's part of it (by ranges).
    let store = BackupStore::open(&settings.destination, registry)?;
    let OpenedArchive {
        archive,
        outer,
        shares,
        shared_validation,
    } = clock.time("fetch", || {
        open_archive(settings, registry, request, &store, &work)
    })?;

    // 2. Validate the archive (a shard reading by ranges: its part, the
    //    other shards the rest) while the buckets are listed: both only
    //    read, and nothing below changes a bucket before validation passed.
    //    The outer tar was read first (quick): only the buckets of
    //    components the archive holds (and this shard has a part of) are
    //    locked and listed. The listings are taken under the locks (unless
    //    nothing will change), so that no other restore moves the buckets
    //    meanwhile.
    let selected = settings.select(&request.only, &request.skip)?;
    let in_archive: Vec<&Component> = selected
        .iter()
        .filter(|c| outer.has_component(&c.name) && !shares.is_others(&c.name))
        .collect();
    let buckets: Vec<Location> = in_archive.iter().map(|c| c.bucket.clone()).collect();
    let locks = match request.dry_run {
        true => None,
        false => Some(RestoreLocks::take(
            &store,
            &buckets,
            request.shard,
            &archive.file_name,
            request.break_lock,
        )?),
    };
    let validates_all = shared_validation.is_none();
    let validating = |component: &str| validates_all || shares.has_part_of(component);
    let (own, validated_bytes): (Vec<String>, u64) = outer
        .tarballs()
        .filter(|t| validating(t.component))
        .fold((Vec::new(), 0), |(mut own, bytes), t| {
            own.push(t.component.to_string());
            (own, bytes + t.len)
        });
    let shown = ByteProgress::new(
        &format!("validate {}", archive.file_name),
        Some(validated_bytes),
        request.quiet,
    );
    let validation_started = std::time::Instant::now();
    // Where the archive's objects and the listings wait, in key order.
    let objects = work.join("objects");
    let (index, listings) = std::thread::scope(|scope| {
        let validation = scope.spawn(|| {
            let on_read = |n| shown.add(n);
            let index = outer.validate(
                &archive.path,
                request.limits,
                &validating,
                &on_read,
                &objects,
            );
            shown.finish();
            index
        });
        let listings = map_in_parallel(in_archive, request.jobs, |component| {
            let listing_shown = Spinner::new(
                &format!("list {} ({})", component.bucket, component.name),
                request.quiet,
            );
            let listing = registry
                .for_location(&component.bucket, None)
                .and_then(|plugin| list_bucket(component, plugin, &objects));
            listing_shown.finish();
            (component.name.clone(), listing)
        });
        (
            validation.join().expect("validation does not panic"),
            listings,
        )
    });
    let index = match &shared_validation {
        Some(shared) if !request.dry_run => share_validation(shared, index, &own, request)?,
        _ => index?,
    };
    clock.steps.push(StepTime {
        step: "validate and list",
        seconds: validation_started.elapsed().as_secs_f64(),
    });
    release_free_memory();
    let ignored_entries = index.ignored.iter().cloned().collect();

    // 3. Plan every component from its listing and the archive.
    let (mut targets, not_restored) =
        targets(registry, request, &shares, index, selected, listings)?;
    let plans = clock.time("plan", || {
        plan_components(&mut targets, request, &archive.path)
    })?;
    if let Some(locks) = &locks {
        locks.confirm()?;
    }

    // 4. The plan shown; safety rules, dry run, confirmation.
    let shown: Vec<&ComponentPlan> = plans.iter().map(|p| &p.plan).collect();
    request.plan_viewer.show(&shown);
    check_rules(settings, request, &targets, &plans)?;
    let mut report = RestoreReport {
        archive: archive.file_name.clone(),
        shard: request.shard.is_sharded().then_some(request.shard),
        shard_pieces: request.shard.is_sharded().then(|| shares.pieces().clone()),
        dry_run: request.dry_run,
        ignored_entries,
        not_restored,
        components: Vec::new(),
        lock_release_error: None,
        steps: clock.steps,
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
        shares: &shares,
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

/// The archive a restore reads, on this machine (whole, or a shard's part
/// of it), its outer tar, and this restore's share of it.
struct OpenedArchive<'s, 'r> {
    archive: FetchedArchive,
    outer: OuterArchive,
    shares: ShardShares,
    /// Set when this shard validates only its part (it read by ranges).
    shared_validation: Option<SharedValidation<'s, 'r>>,
}

/// Brings the archive onto this machine and reads its outer tar. A shard
/// of an archive in a bucket whose plugin reads ranges fetches only its
/// part ([`crate::store::ranged`]); anything else fetches all of it.
fn open_archive<'s, 'r>(
    settings: &Settings,
    registry: &'r Registry,
    request: &RestoreRequest,
    store: &'s BackupStore<'r>,
    work: &Path,
) -> Result<OpenedArchive<'s, 'r>> {
    let download_dir = work.join("archives");
    let located = locate_archive(
        &request.source,
        &settings.destination,
        registry,
        &download_dir,
        request.quiet,
    )?;
    let shares_of = |outer: &OuterArchive| match request.shard.is_sharded() {
        true => ShardShares::deal(
            request.shard,
            outer.tarballs().map(|t| (t.component, t.len)),
        ),
        false => ShardShares::whole(),
    };
    let remote = match located {
        ArchiveAt::InBucket(remote)
            if request.shard.is_sharded() && remote.plugin.reads_ranges() =>
        {
            remote
        }
        located => {
            let archive = match located {
                ArchiveAt::Here(archive) => archive,
                ArchiveAt::InBucket(remote) => remote.download(&download_dir, request.quiet)?,
            };
            let outer = read_outer(&archive.path)?;
            return Ok(OpenedArchive {
                shares: shares_of(&outer),
                archive,
                outer,
                shared_validation: None,
            });
        }
    };
    let path = download_dir.join(&remote.file_name);
    let outer = fetch_outer(&remote, &path)?;
    let shares = shares_of(&outer);
    let own = outer
        .tarballs()
        .filter(|t| shares.has_part_of(t.component))
        .collect();
    fetch_tarballs(&remote, &path, own, request.jobs, request.quiet)?;
    let shared_validation = SharedValidation::new(
        store,
        &remote.file_name,
        &remote.identity(),
        &outer,
        request.shard,
    );
    Ok(OpenedArchive {
        archive: FetchedArchive {
            path,
            file_name: remote.file_name.clone(),
            downloaded: true,
        },
        outer,
        shares,
        shared_validation: Some(shared_validation),
    })
}

/// Records what this shard's validation of its part (`own`) found, then
/// waits until the other shards have validated the rest: the index when
/// the whole archive passed.
fn share_validation(
    shared: &SharedValidation<'_, '_>,
    validated: Result<ArchiveIndex>,
    own: &[String],
    request: &RestoreRequest,
) -> Result<ArchiveIndex> {
    let index = match validated {
        Ok(index) => index,
        Err(e) => {
            if e.chain().any(|cause| cause.is::<InvalidArchive>()) {
                // Best effort: the others stop waiting with this reason.
                let _ = shared.record_failed(own, &format!("{e:#}"));
            }
            return Err(e);
        }
    };
    let passed: Vec<(String, Md5Digest)> = index
        .components
        .iter()
        .filter_map(|(component, found)| Some((component.clone(), found.tarball_md5?)))
        .collect();
    shared.record_passed(&passed)?;
    shared.wait_for_all(own, request.shard_wait, request.quiet)?;
    Ok(index)
}

/// What every component's restore shares.
struct RestoreRun<'a> {
    archive: &'a FetchedArchive,
    settings: &'a Settings,
    request: &'a RestoreRequest,
    /// Names the snapshots: `<tmp>/<component>.<restore_time>/`.
    restore_time: u64,
    /// This restore's share of the keys.
    shares: &'a ShardShares,
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
            planned.bucket,
            planned.bucket_objects,
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
    /// planned files are extracted), confirm the plan against the planned
    /// keys listed again, let the tool upload, then verify, repair and
    /// delete. `bucket` is what the plan found of the bucket (the objects of
    /// the keys it names, of `bucket_objects` listed); the planned keys are
    /// brought up to date in it by the confirmation.
    /// `snapshot_target` names the snapshot as soon as copying into it began.
    fn restore_into(
        &self,
        target: &Target<'_>,
        mut bucket: Inventory,
        bucket_objects: usize,
        outcome: &mut ComponentOutcome,
        staging: &Path,
        snapshot_target: &mut Option<String>,
    ) -> Result<()> {
        crate::interrupt::check()?;
        let name = &target.component.name;
        let observer = &self.request.observer;
        observer.tell(name, RestorePoint::Planned);
        let step = ComponentStep {
            run: self,
            target,
            staging,
        };
        let plan = &outcome.plan.plan;
        // Only what the plan uploads (or the tool may) is extracted.
        let uploads = UploadBatches::new(plan, staging, self.request.upload_batch);
        let quiet = self.request.quiet;
        let mut clock = StepClock::default();
        let snapshot = clock.time("snapshot and extract", || {
            let _shown = Spinner::new(&format!("snapshot and extract {name}"), quiet);
            step.snapshot_while_extracting(&outcome.plan, &uploads, &bucket, snapshot_target)
        });
        outcome.steps = std::mem::take(&mut clock.steps);
        let snapshot = snapshot?;
        let nothing_to_do =
            plan.transfer.is_empty() && plan.delete.is_empty() && uploads.is_empty();
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

        let confirmed = clock.time("confirm", || {
            let _shown = Spinner::new(
                &format!(
                    "list the planned keys of {} again ({name})",
                    target.component.bucket
                ),
                quiet,
            );
            step.confirm_plan(
                &outcome.plan,
                snapshot.as_ref(),
                &uploads,
                (&bucket, bucket_objects),
            )
        });
        outcome.steps.append(&mut clock.steps);
        let confirmed = confirmed?;
        confirmed.bring_up_to_date(&mut bucket);
        let planned = confirmed.planned_changes(&outcome.plan, &bucket);
        outcome.snapshot = snapshot.map(|s| s.to_string());
        if !confirmed.bucket_exists {
            target.plugin.ensure_bucket(&target.component.bucket)?;
        }
        let transfers = planned.transfer_count();
        if transfers > 0 {
            observer.tell(name, RestorePoint::Uploading);
            let uploaded = clock.time("upload", || self.upload(target, &uploads, transfers));
            outcome.steps.append(&mut clock.steps);
            let (objects, bytes) = uploaded?;
            outcome.uploaded = objects;
            outcome.uploaded_bytes = bytes;
            observer.tell(name, RestorePoint::Uploaded);
        }
        crate::interrupt::check()?;
        let verification = clock.time("verify", || {
            let _shown = Spinner::new(&format!("verify {name}"), quiet);
            step.verify(&outcome.plan, &planned, &bucket)
        });
        outcome.steps.append(&mut clock.steps);
        let verification = verification?;
        outcome.uploaded += verification.repaired.len() as u64;
        outcome.deleted = verification.deleted.len() as u64;
        outcome.verification = Some(verification);
        Ok(())
    }
}

/// One component's restore, between planning and the outcome: what its
/// steps share.
struct ComponentStep<'s, 'r> {
    run: &'s RestoreRun<'r>,
    target: &'s Target<'s>,
    /// Where the component's planned files are extracted.
    staging: &'s Path,
}
