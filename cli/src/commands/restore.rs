//! `stowage restore`.

use anyhow::{bail, Result};
use clap::Args;

use crate::archive::name::timestamp_in;
use crate::archive::read::Limits;
use crate::config::{ConfigArgs, Needs, Settings};
use crate::confirm::confirm_on_terminal;
use crate::exit::Drifted;
use crate::output::write_json;
use crate::registry::Registry;
use crate::restore::{
    run_restore, ComponentPlan, PlanViewer, RestoreReport, RestoreRequest, Shard, SnapshotMode,
    StepTime, DEFAULT_JOBS, DEFAULT_UPLOAD_BATCH, JOB_COMPLETION_INDEX,
};
use crate::store::fetch::ArchiveSource;

/// Arguments of `stowage restore`.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The backup to restore, from the backup destination: its timestamp (the
    /// first field of its name, e.g. 1764124800), or its archive's name.
    #[arg(
        required_unless_present = "file",
        conflicts_with = "file",
        value_parser = parse_timestamp
    )]
    timestamp: Option<u64>,
    /// Restore this archive instead: a path, or a file://, http(s):// or bucket URL.
    #[arg(long, value_name = "PATH|URL")]
    file: Option<String>,
    #[command(flatten)]
    config: ConfigArgs,
    /// Restore only this component (repeatable).
    #[arg(long, value_name = "COMPONENT")]
    component: Vec<String>,
    /// Leave this component out (repeatable).
    #[arg(long, value_name = "COMPONENT")]
    skip: Vec<String>,
    /// Validate the archive, plan, print the plan, change nothing.
    #[arg(long)]
    dry_run: bool,
    /// What to copy into the tmp bucket before changing a bucket.
    #[arg(long, value_enum, default_value = "changed")]
    snapshot: SnapshotMode,
    /// Do not ask for confirmation (needed without a terminal).
    #[arg(long)]
    yes: bool,
    /// Allow restoring an empty component over a bucket that has objects.
    #[arg(long)]
    allow_empty: bool,
    /// Refuse a component whose restore would delete more than N objects.
    #[arg(long, value_name = "N")]
    max_delete: Option<u64>,
    /// Components planned and restored at once (each runs its tool; the
    /// s3cmd plugin also splits a large upload into its own parallel runs).
    #[arg(long, default_value_t = DEFAULT_JOBS, value_name = "N")]
    jobs: usize,
    /// Take over the restore lock of a bucket even if its holder may still
    /// be running (it ran on another host and died).
    #[arg(long)]
    break_lock: bool,
    /// Refuse a component whose content decompresses to more than this many bytes.
    #[arg(long, default_value_t = 1 << 40, value_name = "BYTES")]
    max_component_bytes: u64,
    /// Restore only shard I of N (0-based): run N restores with I =
    /// 0..N-1, on as many machines, and together they do what one restore
    /// does. Components are dealt out whole by their size, and only the
    /// big ones split by a stable hash of the key; from an archive in a
    /// bucket, each shard fetches only its components' part of it and
    /// waits for the others to validate the rest before it changes
    /// anything. Shards of one run share the buckets' locks; --max-delete
    /// counts each shard's deletions.
    #[arg(long, value_name = "I/N")]
    shard: Option<String>,
    /// Restore shard I of N, taking I from JOB_COMPLETION_INDEX (set in
    /// each pod of a Kubernetes Indexed Job); see docs/KUBERNETES.md.
    #[arg(long, value_name = "N")]
    shards: Option<String>,
    /// How long a shard that fetched only its part of the archive waits for
    /// the other shards to validate theirs before it changes anything
    /// (e.g. 30m, 2h); then it stops, having changed nothing.
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = humantime::parse_duration)]
    shard_wait: std::time::Duration,
    /// Upload at most this many files with one run of the plugin's sync;
    /// a bigger restore syncs batch after batch (the plugin's memory and
    /// the staging disk then hold one batch at a time).
    #[arg(long, value_name = "FILES", default_value_t = DEFAULT_UPLOAD_BATCH, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    upload_batch: usize,
}

/// Runs the restore and prints its report: as text, the plan first (with
/// `verbose`, every key it names), as soon as it is made; or one JSON
/// document at the end.
pub fn run(registry: &Registry, args: &RestoreArgs, json: bool, verbose: bool) -> Result<()> {
    let needs = Needs {
        tmp_bucket: args.snapshot != SnapshotMode::None,
    };
    let shard = Shard::chosen(
        args.shard.as_deref(),
        args.shards.as_deref(),
        std::env::var(JOB_COMPLETION_INDEX).ok().as_deref(),
    )?;
    let settings = Settings::resolve_needing(&args.config, needs)?;
    settings.remove_abandoned_partials();
    let source = match (&args.file, args.timestamp) {
        (Some(file), _) => ArchiveSource::File(file.clone()),
        (None, Some(timestamp)) => ArchiveSource::Timestamp(timestamp),
        (None, None) => bail!("name a backup timestamp or --file"),
    };
    let request = RestoreRequest {
        source: source.clone(),
        only: args.component.clone(),
        skip: args.skip.clone(),
        dry_run: args.dry_run,
        snapshot: args.snapshot,
        yes: args.yes,
        allow_empty: args.allow_empty,
        max_delete: args.max_delete,
        jobs: args.jobs,
        quiet: json,
        limits: Limits {
            max_component_bytes: args.max_component_bytes,
        },
        break_lock: args.break_lock,
        shard,
        shard_wait: args.shard_wait,
        upload_batch: args.upload_batch,
        plan_viewer: plan_viewer(json, verbose),
        ..RestoreRequest::new(source)
    };
    restore_and_report(&settings, registry, &request, json)
}

/// What shows each component's plan as soon as it is made: nothing with
/// `json` (the report carries the plan), else [`print_plan`].
pub(super) fn plan_viewer(json: bool, verbose: bool) -> PlanViewer {
    match json {
        true => PlanViewer::default(),
        false => PlanViewer::new(move |plans| print_plan(plans, verbose)),
    }
}

/// Runs `request` (asking on a terminal first unless it says `yes`),
/// prints its report, and fails if a component failed, the restore lock
/// stayed, or someone else changed a bucket meanwhile (exit code 7).
pub(super) fn restore_and_report(
    settings: &Settings,
    registry: &Registry,
    request: &RestoreRequest,
    json: bool,
) -> Result<()> {
    let confirm = |summary: &str| {
        confirm_on_terminal(
            "restore changes buckets",
            summary,
            "Restore these components now?",
        )
    };
    let report = run_restore(settings, registry, request, &confirm)?;
    if json {
        write_json(&report)?;
    } else {
        print_human(&report);
    }
    let failed: Vec<(&str, &str)> = report
        .components
        .iter()
        .filter_map(|c| Some((c.plan.component.as_str(), c.error.as_deref()?)))
        .collect();
    let mut problems = Vec::new();
    if let Some((first, error)) = failed.first() {
        let names: Vec<&str> = failed.iter().map(|(name, _)| *name).collect();
        // The first failure's cause, so the one error line says what to fix.
        problems.push(format!(
            "restore failed for {}; {first}: {error}",
            names.join(", ")
        ));
    }
    problems.extend(report.lock_release_error.clone());
    if !problems.is_empty() {
        bail!("{}", problems.join("; "));
    }
    let drifted = report.drifted();
    if drifted > 0 {
        bail!(Drifted(format!(
            "{drifted} object(s) changed by someone else during the restore were left as found (listed above); the buckets do not equal the backup: run the same restore again to converge"
        )));
    }
    Ok(())
}

/// The plan of each component, one row each, then with `verbose` every
/// key it will upload, delete or snapshot.
fn print_plan(plans: &[&ComponentPlan], verbose: bool) {
    outln!(
        "{:<16} {:>8} {:>14} {:>8} {:>17} {:>10}  bucket",
        "component",
        "upload",
        "bytes",
        "delete",
        "possibly-changed",
        "unchanged"
    );
    for c in plans {
        let p = &c.plan;
        let created = match c.bucket_exists {
            true => "",
            false => "  (bucket will be created)",
        };
        outln!(
            "{:<16} {:>8} {:>14} {:>8} {:>17} {:>10}  {}{created}",
            c.component,
            p.transfer.len(),
            p.transfer_bytes(),
            p.delete.len(),
            p.possibly_changed.len(),
            p.unchanged,
            c.bucket
        );
    }
    if !verbose {
        return;
    }
    for c in plans {
        let p = &c.plan;
        for object in p.transfer.iter() {
            outln!(
                "{}: upload    {:>12}  {}",
                c.component,
                object.size,
                object.key
            );
        }
        for object in p.possibly_changed.iter() {
            outln!(
                "{}: maybe     {:>12}  {}",
                c.component,
                object.size,
                object.key
            );
        }
        for object in p.delete.iter() {
            outln!(
                "{}: delete    {:>12}  {}",
                c.component,
                object.size,
                object.key
            );
        }
        for key in &c.snapshot_keys {
            outln!("{}: snapshot  {:>12}  {key}", c.component, "");
        }
    }
}

fn print_human(report: &RestoreReport) {
    if let Some(shard) = report.shard {
        outln!(
            "shard {shard}: this restore planned, changed and verified only the keys of shard {} of {}",
            shard.index,
            shard.count
        );
    }
    for (component, owners) in report.shard_pieces.iter().flatten() {
        let whose = match owners.as_slice() {
            [owner] => format!("shard {owner}"),
            many => format!("{} pieces, shards {many:?}", many.len()),
        };
        outln!("shard: {component} is restored by {whose}");
    }
    for entry in &report.ignored_entries {
        outln!(
            "note: {entry} in {} is not object storage; skipped",
            report.archive
        );
    }
    for name in &report.not_restored {
        outln!("note: {name} not restored");
    }
    if report.dry_run {
        outln!("dry run: nothing was changed");
        return;
    }
    for c in &report.components {
        if let Some(error) = &c.error {
            outln!("{}: FAILED: {error}", c.plan.component);
            continue;
        }
        let v = c.verification.clone().unwrap_or_default();
        if v.etags_not_md5s {
            outln!(
                "{}: the bucket's ETags are not MD5s (SSE-KMS, SSE-C or such a store): objects compared by size only",
                c.plan.component
            );
        }
        for drift in &v.drifted {
            outln!(
                "{}: left as found ({} during the restore): {}",
                c.plan.component,
                drift.change,
                drift.key
            );
        }
        outln!(
            "{}: uploaded {} ({} bytes), deleted {}; verified {}, repaired {}, size-only {}; snapshot {}; {:.1}s",
            c.plan.component,
            c.uploaded,
            c.uploaded_bytes,
            c.deleted,
            v.verified,
            v.repaired.len(),
            v.size_only.len(),
            c.snapshot.as_deref().unwrap_or("none needed"),
            c.duration_secs
        );
        if !c.steps.is_empty() {
            outln!("{}: took {}", c.plan.component, step_times(&c.steps));
        }
    }
    outln!("took {}", step_times(&report.steps));
}

/// "fetch 0.0s, validate and list 1.2s, plan 0.1s".
fn step_times(steps: &[StepTime]) -> String {
    let times: Vec<String> = steps
        .iter()
        .map(|s| format!("{} {:.1}s", s.step, s.seconds))
        .collect();
    times.join(", ")
}

/// A backup named on the command line: see [`timestamp_in`].
fn parse_timestamp(text: &str) -> Result<u64, String> {
    timestamp_in(text).ok_or_else(|| {
        "not a backup: name it by its timestamp, the number its archive's name begins with \
         (1764124800 for 1764124800_2025_11_26_stowage_gitlab_backup.tar), or by that name"
            .to_string()
    })
}
