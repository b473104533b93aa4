//! `stowage snapshots list` and `stowage snapshots prune`.

use std::time::Duration;

use anyhow::{bail, Result};
use clap::{Args, Subcommand};

use crate::config::{ConfigArgs, Settings};
use crate::confirm::confirm_on_terminal;
use crate::exit::Refused;
use crate::output::{counted, write_json};
use crate::registry::Registry;
use crate::store::snapshots::{
    PruneAction, PruneDecision, PrunePlan, PruneRequest, PruneRules, Snapshot, TmpBucket,
};

/// Arguments of `stowage snapshots`.
#[derive(Debug, Args)]
pub struct SnapshotsArgs {
    #[command(subcommand)]
    command: SnapshotsCommand,
}

/// What to do with the restore snapshots.
#[derive(Debug, Subcommand)]
enum SnapshotsCommand {
    /// List the snapshots in the tmp bucket, newest first: component,
    /// time (RFC 3339 and Unix), objects, bytes.
    List {
        #[command(flatten)]
        config: ConfigArgs,
        /// Only this component's snapshots (repeatable).
        #[arg(long, value_name = "COMPONENT")]
        component: Vec<String>,
    },
    /// Delete old snapshots from the tmp bucket, per component.
    ///
    /// Give --keep, --older-than or both; a snapshot is deleted only when
    /// no rule given keeps it. The plan is shown first; without a terminal
    /// the prune needs --yes. Only objects below a <component>.<unix-ts>/
    /// prefix are ever deleted, and a component whose restore may be
    /// running (its restore lock is in the backup destination) keeps every
    /// snapshot; so does a component that is not configured (its lock
    /// cannot be found: name its bucket with --bucket NAME=URL). The tmp
    /// bucket is listed again afterwards to prove the pruned snapshots are
    /// gone.
    Prune(PruneArgs),
}

/// Arguments of `stowage snapshots prune`.
#[derive(Debug, Args)]
struct PruneArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Keep the newest N snapshots of each component (of each shard of a
    /// sharded restore); delete the others (with --older-than: those also
    /// older than DURATION).
    #[arg(long, value_name = "N")]
    keep: Option<usize>,
    /// Delete the snapshots older than DURATION, e.g. 30d, 12h, 1w (with
    /// --keep: those not among the newest N either).
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    older_than: Option<Duration>,
    /// Only this component's snapshots (repeatable).
    #[arg(long, value_name = "COMPONENT")]
    component: Vec<String>,
    /// Show the plan, delete nothing.
    #[arg(long)]
    dry_run: bool,
    /// Do not ask for confirmation (needed without a terminal).
    #[arg(long)]
    yes: bool,
}

/// Runs `stowage snapshots ...`.
pub fn run(registry: &Registry, args: &SnapshotsArgs, json: bool) -> Result<()> {
    match &args.command {
        SnapshotsCommand::List { config, component } => list(registry, config, component, json),
        SnapshotsCommand::Prune(prune_args) => prune(registry, prune_args, json),
    }
}

fn list(registry: &Registry, config: &ConfigArgs, only: &[String], json: bool) -> Result<()> {
    let settings = Settings::resolve(config)?;
    let tmp = TmpBucket::open(&settings, registry)?;
    let snapshots = tmp.snapshots(only)?;
    if json {
        write_json(&snapshots)?;
        return Ok(());
    }
    if snapshots.is_empty() {
        outln!("no snapshots in {}", tmp.location());
    }
    for snapshot in &snapshots {
        outln!("{}", row(snapshot));
    }
    Ok(())
}

/// A snapshot on one line: name, time, Unix time, objects, bytes.
fn row(s: &Snapshot) -> String {
    format!(
        "{:<28} {}  {:>10}  {:>8} objects  {:>14} bytes",
        s.name(),
        s.time,
        s.timestamp,
        s.objects,
        s.bytes
    )
}

fn prune(registry: &Registry, args: &PruneArgs, json: bool) -> Result<()> {
    let settings = Settings::resolve(&args.config)?;
    let request = PruneRequest {
        components: args.component.clone(),
        rules: PruneRules {
            keep: args.keep,
            older_than: args.older_than,
        },
    };
    let plan = PrunePlan::new(&settings, registry, &request)?;
    let shown = plan_text(&plan.decisions);
    if !json {
        outln!("{shown}");
    }
    if args.dry_run || plan.deletions().is_empty() {
        let report = plan.dry_run();
        match json {
            true => write_json(&report)?,
            false if args.dry_run => outln!("dry run: nothing was deleted"),
            false => outln!("nothing to prune"),
        }
        return Ok(());
    }
    // The plan is on stdout already unless stdout carries JSON.
    let summary = if json { shown.as_str() } else { "" };
    let question = format!("Delete {} snapshots now?", plan.deletions().len());
    if !args.yes && !confirm_on_terminal("prune deletes snapshots", summary, &question)? {
        bail!(Refused("prune cancelled; nothing was deleted".to_string()));
    }
    let report = plan.execute()?;
    if json {
        write_json(&report)?;
    } else {
        outln!(
            "deleted {} ({}, {}) from {}; listed again, they are gone",
            counted(report.deleted_snapshots, "snapshot"),
            counted(report.deleted_objects, "object"),
            counted(report.deleted_bytes, "byte"),
            report.tmp_bucket
        );
    }
    Ok(())
}

/// The plan, a snapshot a line: delete or keep, the snapshot, why.
fn plan_text(decisions: &[PruneDecision]) -> String {
    if decisions.is_empty() {
        return "no snapshots".to_string();
    }
    decisions
        .iter()
        .map(|d| {
            let action = match d.action {
                PruneAction::Delete => "delete",
                PruneAction::Keep => "keep  ",
            };
            format!("{action}  {}  {}", row(&d.snapshot), d.reason)
        })
        .collect::<Vec<_>>()
        .join("\n")
}
