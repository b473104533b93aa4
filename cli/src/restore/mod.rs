//! `stowage restore`: make each component's bucket equal to the archive,
//! moving only what differs, and prove it.
//!
//! The story, top to bottom — [`run_restore`] and, per component,
//! `restore_into` below tell it; each step has its file in `restore/`:
//! 1. **fetch** the archive onto this machine ([`crate::store::fetch`]);
//! 2. **validate** all of it before any bucket is changed
//!    ([`read_outer`], [`crate::archive::read::OuterArchive::validate`]),
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
//! (`--shard I/N`) answers for its share of the keys only (`shard.rs`):
//! they are cut where the archive and the listing meet, before planning.
//!
//! A re-run after a crash converges: every step reads the bucket afresh,
//! and a second identical restore plans nothing and changes nothing.

mod planning;
mod report;
mod request;
mod shard;
mod snapshot;
mod transfer;
mod verification;

pub use planning::ComponentPlan;
pub use report::{ComponentOutcome, RestoreReport, StepTime};
pub use request::{
    PlanViewer, RestoreObserver, RestorePoint, RestoreRequest, SnapshotMode, DEFAULT_JOBS,
};
pub use shard::{Shard, WholeComponent, JOB_COMPLETION_INDEX};

use std::collections::HashSet;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Result};
use stowage_plugin_api::Location;

use crate::archive::read::read_outer;
use crate::config::{Component, Settings};
use crate::exit::Refused;
use crate::memory::release_free_memory;
use crate::parallel::map_in_parallel;
use crate::progress::{ByteProgress, Spinner};
use crate::registry::Registry;
use crate::restore::planning::{
    check_rules, list_bucket, plan_components, summary, targets, Planned, Target,
};
use crate::restore::report::{outcome_of, StepClock};
use crate::store::backup_store::BackupStore;
use crate::store::fetch::{fetch_archive, FetchedArchive};
use crate::store::lock::RestoreLocks;
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

    // 1. Fetch.
    let archive = clock.time("fetch", || {
        fetch_archive(
            &request.source,
            &settings.destination,
            registry,
            &work.join("archives"),
            request.quiet,
        )
    })?;

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
        false => Some(RestoreLocks::take(
            &store,
            &buckets,
            request.shard,
            request.break_lock,
        )?),
    };
    let validating = ByteProgress::new(
        &format!("validate {}", archive.file_name),
        Some(outer.tarball_bytes()),
        request.quiet,
    );
    let validation_started = std::time::Instant::now();
    let (index, listings) = std::thread::scope(|scope| {
        let validation = scope.spawn(|| {
            let index = outer.validate(&archive.path, request.limits, &|n| validating.add(n));
            validating.finish();
            index
        });
        let listings = map_in_parallel(in_archive, request.jobs, |component| {
            let listing_shown = Spinner::new(
                &format!("list {} ({})", component.bucket, component.name),
                request.quiet,
            );
            let listing = registry
                .for_location(&component.bucket, None)
                .and_then(|plugin| list_bucket(component, plugin));
            listing_shown.finish();
            (component.name.clone(), listing)
        });
        (
            validation.join().expect("validation does not panic"),
            listings,
        )
    });
    let index = index?;
    clock.steps.push(StepTime {
        step: "validate and list",
        seconds: validation_started.elapsed().as_secs_f64(),
    });
    release_free_memory();
    let ignored_entries = index.ignored.iter().cloned().collect();

    // 3. Plan every component from its listing and the archive.
    let (mut targets, not_restored) = targets(registry, request, index, selected, listings)?;
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
            planned.bucket,
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
    /// delete. `bucket` is the bucket as the plan found it; the planned
    /// keys are brought up to date in it by the confirmation.
    /// `snapshot_target` names the snapshot as soon as copying into it began.
    fn restore_into(
        &self,
        target: &Target<'_>,
        mut bucket: Inventory,
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
        let wanted: HashSet<&str> = plan
            .transfer
            .iter()
            .chain(&plan.possibly_changed)
            .map(|o| &*o.key)
            .collect();
        let quiet = self.request.quiet;
        let mut clock = StepClock::default();
        let snapshot = clock.time("snapshot and extract", || {
            let _shown = Spinner::new(&format!("snapshot and extract {name}"), quiet);
            step.snapshot_while_extracting(&outcome.plan, &wanted, &bucket, snapshot_target)
        });
        outcome.steps = std::mem::take(&mut clock.steps);
        let snapshot = snapshot?;
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

        let confirmed = clock.time("confirm", || {
            let _shown = Spinner::new(
                &format!(
                    "list the planned keys of {} again ({name})",
                    target.component.bucket
                ),
                quiet,
            );
            step.confirm_plan(&outcome.plan, snapshot.as_ref(), &wanted, &bucket)
        });
        outcome.steps.append(&mut clock.steps);
        let confirmed = confirmed?;
        confirmed.bring_up_to_date(&mut bucket);
        let planned = confirmed.planned_changes(&outcome.plan, &bucket);
        outcome.snapshot = snapshot.map(|s| s.to_string());
        if !confirmed.bucket_exists {
            target.plugin.ensure_bucket(&target.component.bucket)?;
        }
        let source = Location::Local {
            path: staging.to_string_lossy().into_owned(),
        };
        if !planned.transfers.is_empty() {
            observer.tell(name, RestorePoint::Uploading);
            let uploaded = clock.time("upload", || {
                self.upload(target, &source, planned.transfers.len())
            });
            outcome.steps.append(&mut clock.steps);
            let (objects, bytes) = uploaded?;
            outcome.uploaded = objects;
            outcome.uploaded_bytes = bytes;
            observer.tell(name, RestorePoint::Uploaded);
        }
        crate::interrupt::check()?;
        let verification = clock.time("verify", || {
            let _shown = Spinner::new(&format!("verify {name}"), quiet);
            step.verify(&outcome.plan, &source, &planned, &bucket)
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
