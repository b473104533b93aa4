//! `stowage sync SRC DST`.

use anyhow::{bail, Result};
use clap::{Args, ValueEnum};
use stowage_plugin_api::{ActionKind, CompareMode, Location, SyncOptions};

use crate::exit::Drifted;
use crate::output::{counted, write_json};
use crate::progress::ProgressBarSink;
use crate::registry::Registry;
use crate::sync::{run_sync, SyncOutcome};

/// How the tool compares objects (Stowage itself always verifies by checksum).
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum CompareArg {
    /// Size and MD5.
    Checksum,
    /// Size and modification time.
    SizeMtime,
    /// Size only.
    Size,
}

impl From<CompareArg> for CompareMode {
    fn from(value: CompareArg) -> Self {
        match value {
            CompareArg::Checksum => CompareMode::Checksum,
            CompareArg::SizeMtime => CompareMode::SizeMtime,
            CompareArg::Size => CompareMode::Size,
        }
    }
}

/// Arguments of `stowage sync`.
#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Source: a local directory or a bucket URL.
    pub source: String,
    /// Destination: a local directory or a bucket URL.
    pub destination: String,
    /// Delete destination objects that are not in the source.
    #[arg(long)]
    pub delete: bool,
    /// Leave keys matching GLOB (relative to the sync root; `*` stops at `/`,
    /// `**` crosses it; a match on a folder covers everything below) alone:
    /// neither transferred nor deleted. Repeatable.
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// Show the plan (from listings and checksums) and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// How the plugin's tool decides an object is unchanged.
    #[arg(long, value_enum, default_value = "checksum")]
    pub compare: CompareArg,
    /// Refuse the sync, before changing anything, if it would delete more than N objects.
    #[arg(long, value_name = "N")]
    pub max_delete: Option<u64>,
    /// Parallel transfers (0: the plugin's default).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub parallelism: u32,
    /// Use this plugin instead of the one plugins.toml maps the scheme to.
    #[arg(long, value_name = "NAME")]
    pub plugin: Option<String>,
}

/// Runs the sync and prints its report.
pub fn run(registry: &Registry, args: &SyncArgs, json: bool) -> Result<()> {
    let source = Location::parse(&args.source);
    let destination = Location::parse(&args.destination);
    let remote_side = if source.remote().is_some() {
        &source
    } else {
        &destination
    };
    let plugin = registry.for_location(remote_side, args.plugin.as_deref())?;
    let options = SyncOptions {
        delete: args.delete,
        excludes: args.exclude.iter().map(|e| e.as_str().into()).collect(),
        dry_run: args.dry_run,
        compare: args.compare.into(),
        parallelism: args.parallelism,
        max_deletes: args.max_delete,
    };
    let bar = ProgressBarSink::new("sync", 0, json);
    let outcome = run_sync(plugin, &source, &destination, &options, &bar);
    bar.finish();
    let outcome = outcome?;
    if json {
        write_json(&outcome)?;
    } else {
        print_human(&outcome);
    }
    let drifted = outcome.verification.as_ref().map_or(0, |v| v.drifted.len());
    if drifted > 0 {
        bail!(Drifted(format!(
            "{drifted} object(s) in {destination} changed after planning and were left as found; run the sync again to converge"
        )));
    }
    Ok(())
}

fn print_human(outcome: &SyncOutcome) {
    let plan = &outcome.plan;
    let Some(report) = &outcome.tool_report else {
        for object in plan.transfer.iter() {
            outln!("transfer  {:>12}  {}", object.size, object.key);
        }
        for object in plan.possibly_changed.iter() {
            outln!("maybe     {:>12}  {}", object.size, object.key);
        }
        for object in plan.delete.iter() {
            outln!("delete    {:>12}  {}", object.size, object.key);
        }
        outln!(
            "plan: {} to transfer ({} bytes), {} to delete, {} possibly changed, {} unchanged (dry run: nothing was changed)",
            plan.transfer.len(),
            plan.transfer_bytes(),
            plan.delete.len(),
            plan.possibly_changed.len(),
            plan.unchanged
        );
        return;
    };
    let transferred: u64 = [ActionKind::Upload, ActionKind::Download, ActionKind::Copy]
        .iter()
        .map(|k| report.total(*k).objects)
        .sum();
    let bytes: u64 = [ActionKind::Upload, ActionKind::Download, ActionKind::Copy]
        .iter()
        .map(|k| report.total(*k).bytes)
        .sum();
    let v = outcome.verification.clone().unwrap_or_default();
    for drift in &v.drifted {
        outln!(
            "left as found ({} after planning): {}",
            drift.change,
            drift.key
        );
    }
    // Repairs are transfers too: objects the tool skipped or got wrong,
    // sent again after it.
    let transferred = transferred + v.repaired.len() as u64;
    outln!(
        "transferred {} ({}; {} after the tool), deleted {}, unchanged {}; verified {}, checked by size only {}, left as found {}",
        counted(transferred, "object"),
        counted(bytes, "byte"),
        counted(v.repaired.len() as u64, "repair"),
        v.deleted.len(),
        plan.unchanged,
        v.verified,
        v.size_only.len(),
        v.drifted.len()
    );
}
