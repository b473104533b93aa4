//! `stowage restore`.

use anyhow::{bail, Result};
use clap::Args;

use crate::archive::read::Limits;
use crate::config::{ConfigArgs, Settings};
use crate::confirm::confirm_on_terminal;
use crate::exit::Drifted;
use crate::registry::Registry;
use crate::restore::{run_restore, RestoreReport, RestoreRequest, SnapshotMode, DEFAULT_JOBS};
use crate::store::fetch::ArchiveSource;

/// Arguments of `stowage restore`.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The backup's timestamp (the first field of its name), from the backup destination.
    #[arg(required_unless_present = "file", conflicts_with = "file")]
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
}

/// Runs the restore and prints its report.
pub fn run(registry: &Registry, args: &RestoreArgs, json: bool) -> Result<()> {
    let settings = Settings::resolve(&args.config)?;
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
        ..RestoreRequest::new(source)
    };
    let confirm = |summary: &str| {
        confirm_on_terminal(
            "restore changes buckets",
            summary,
            "Restore these components now?",
        )
    };
    let report = run_restore(&settings, registry, &request, &confirm)?;
    if json {
        outln!("{}", serde_json::to_string_pretty(&report)?);
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

fn print_human(report: &RestoreReport) {
    for entry in &report.ignored_entries {
        outln!(
            "note: {entry} in {} is not object storage; skipped",
            report.archive
        );
    }
    for name in &report.not_restored {
        outln!("note: {name} not restored");
    }
    outln!("component          upload          bytes   delete  possibly unchanged  bucket");
    for c in &report.components {
        let p = &c.plan.plan;
        outln!(
            "{:<16} {:>8} {:>14} {:>8} {:>9} {:>9}  {}",
            c.plan.component,
            p.transfer.len(),
            p.transfer_bytes(),
            p.delete.len(),
            p.possibly_changed.len(),
            p.unchanged,
            c.plan.bucket
        );
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
    }
}
