//! `stowage backup` and `stowage backups list`.

use anyhow::Result;
use clap::{Args, Subcommand};

use crate::backup::{run_backup, sidecar_name, BackupInformation, BackupReport, BackupRequest};
use crate::config::{ConfigArgs, Settings};
use crate::output::write_json;
use crate::registry::Registry;
use crate::store::backup_store::{BackupStore, StoredArchive};

/// Arguments of `stowage backup`.
#[derive(Debug, Args)]
pub struct BackupArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Leave this component out (repeatable).
    #[arg(long, value_name = "COMPONENT")]
    skip: Vec<String>,
    /// Keep at most N archives with this label in the destination (the new
    /// one included); older ones are deleted.
    #[arg(long, value_name = "N")]
    maximum_backups: Option<usize>,
    /// Compress component tarballs like `gzip --rsyncable`, so successive
    /// archives of mostly the same data share most of their bytes (for
    /// rsync or deduplicating storage); about 1% larger.
    #[arg(long)]
    rsyncable: bool,
}

/// Runs a backup and prints what it stored.
pub fn run(registry: &Registry, args: &BackupArgs, json: bool) -> Result<()> {
    let settings = Settings::resolve(&args.config)?;
    settings.remove_abandoned_partials();
    let request = BackupRequest {
        skip: args.skip.clone(),
        maximum_backups: args.maximum_backups,
        quiet: json,
        rsyncable: args.rsyncable,
        skip_missing_buckets: false,
    };
    let report = run_backup(&settings, registry, &request)?;
    print_backup_report(&report, json)
}

/// Prints what a backup stored: one line per component, the components
/// left out for a missing bucket, the archives pruned, the archive; or the
/// report as JSON.
pub(super) fn print_backup_report(report: &BackupReport, json: bool) -> Result<()> {
    if json {
        write_json(&report)?;
        return Ok(());
    }
    for c in &report.information.components {
        outln!(
            "{:<16} {:>8} objects {:>14} bytes  ({} downloaded)  from {}",
            c.name,
            c.objects,
            c.bytes,
            c.downloaded,
            c.bucket
        );
    }
    for name in &report.missing_buckets {
        outln!("skipped {name}: its bucket does not exist");
    }
    for name in &report.pruned {
        outln!("pruned {name}");
    }
    outln!(
        "backup {} ({} bytes) stored in {} in {:.1}s",
        report.information.archive,
        report.size,
        report.destination,
        report.duration_secs
    );
    Ok(())
}

/// Arguments of `stowage backups`.
#[derive(Debug, Args)]
pub struct BackupsArgs {
    #[command(subcommand)]
    command: BackupsCommand,
}

/// What to do with the stored backups.
#[derive(Debug, Subcommand)]
enum BackupsCommand {
    /// List the archives in the backup destination: timestamp, size, components.
    List {
        #[command(flatten)]
        config: ConfigArgs,
    },
}

/// One row of `stowage backups list`.
#[derive(serde::Serialize)]
struct BackupRow {
    #[serde(flatten)]
    archive: StoredArchive,
    components: Option<Vec<String>>,
}

/// Lists the stored archives, oldest first.
pub fn run_backups(registry: &Registry, args: &BackupsArgs, json: bool) -> Result<()> {
    let BackupsCommand::List { config } = &args.command;
    let settings = Settings::resolve(config)?;
    let store = BackupStore::open(&settings.destination, registry)?;
    let scratch = tempfile::tempdir()?;
    let rows: Vec<BackupRow> = store
        .archives()?
        .into_iter()
        .map(|archive| {
            let sidecar = scratch.path().join(sidecar_name(&archive.file_name));
            let components = store
                .download(&sidecar_name(&archive.file_name), &sidecar)
                .ok()
                .and_then(|()| std::fs::read(&sidecar).ok())
                .and_then(|bytes| serde_json::from_slice::<BackupInformation>(&bytes).ok())
                .map(|info| info.components.into_iter().map(|c| c.name).collect());
            BackupRow {
                archive,
                components,
            }
        })
        .collect();
    if json {
        write_json(&rows)?;
        return Ok(());
    }
    for row in &rows {
        let components = row
            .components
            .as_ref()
            .map_or("?".to_string(), |c| c.join(","));
        outln!(
            "{}  {:>14} bytes  {}  {}",
            row.archive.timestamp,
            row.archive.size,
            row.archive.file_name,
            components
        );
    }
    Ok(())
}
