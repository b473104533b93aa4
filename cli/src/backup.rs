//! `stowage backup`: mirror each component's bucket into staging with its
//! plugin, pack it with a manifest, write the archive, store it, prune.

use std::path::Path;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, Context, Result};
use serde::{Deserialize, Serialize};
use stowage_plugin_api::{ErrorKind, Location, SyncOptions};

use crate::archive::manifest::Manifest;
use crate::archive::name::ArchiveName;
use crate::archive::write::{pack_component, write_archive, ArchiveContents};
use crate::config::{Component, Settings};
use crate::exit::NotFound;
use crate::plugin::plugin_error_kind;
use crate::progress::{ProgressBarSink, Spinner};
use crate::registry::Registry;
use crate::store::backup_store::BackupStore;
use crate::sync::run_sync;
use crate::unix_time::rfc3339;

/// What `stowage backup` was asked.
#[derive(Debug, Clone, Default)]
pub struct BackupRequest {
    /// Components to leave out.
    pub skip: Vec<String>,
    /// Keep at most this many archives of this label (the new one included).
    pub maximum_backups: Option<usize>,
    /// Hide progress bars.
    pub quiet: bool,
    /// Compress component tarballs like `gzip --rsyncable`.
    pub rsyncable: bool,
    /// Leave out a component whose bucket does not exist (naming it in the
    /// report and in `skipped`), as GitLab's backup-utility does, instead
    /// of failing the backup.
    pub skip_missing_buckets: bool,
}

/// What one component contributed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ComponentSummary {
    /// Its name.
    pub name: String,
    /// Its bucket.
    pub bucket: String,
    /// Objects in the archive.
    pub objects: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Objects downloaded this time (the staging mirror keeps the rest).
    pub downloaded: u64,
}

/// The sidecar stored next to each archive (`<archive>.json`), so listing
/// backups needs no download of the archives themselves.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BackupInformation {
    /// The archive's file name.
    pub archive: String,
    /// Seconds since the epoch.
    pub created_at: u64,
    /// The Stowage version that made it.
    pub stowage_version: String,
    /// The components in it.
    pub components: Vec<ComponentSummary>,
    /// Components left out: with `--skip`, or for a missing bucket.
    pub skipped: Vec<String>,
}

/// What a backup did.
#[derive(Debug, Serialize)]
pub struct BackupReport {
    /// The archive and its contents.
    pub information: BackupInformation,
    /// Where it was stored.
    pub destination: String,
    /// Its size in bytes.
    pub size: u64,
    /// Components left out because their bucket does not exist (see
    /// [`BackupRequest::skip_missing_buckets`]).
    pub missing_buckets: Vec<String>,
    /// Archives removed by `--maximum-backups`.
    pub pruned: Vec<String>,
    /// Seconds taken.
    pub duration_secs: f64,
}

/// The name of an archive's sidecar.
pub fn sidecar_name(archive: &str) -> String {
    format!("{archive}.json")
}

/// Runs a backup of the selected components.
pub fn run_backup(
    settings: &Settings,
    registry: &Registry,
    request: &BackupRequest,
) -> Result<BackupReport> {
    let started = Instant::now();
    let components = settings.select(&[], &request.skip)?;
    let store = BackupStore::open(&settings.destination, registry)?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let label = settings.label()?;
    let timestamp = claim_archive_name(&store, label, now)?;
    let name = ArchiveName {
        timestamp,
        label: label.to_string(),
    }
    .file_name();
    let work = settings.staging_dir.join("backup");
    let run_dir = work.join(format!("run.{timestamp}"));
    std::fs::create_dir_all(&run_dir)
        .with_context(|| format!("cannot create {}", run_dir.display()))?;

    let result = (|| -> Result<BackupReport> {
        let mut summaries = Vec::new();
        let mut manifests = Vec::new();
        let mut tarballs = Vec::new();
        let mut missing_buckets = Vec::new();
        for component in &components {
            crate::interrupt::check()?;
            let mirror = work.join("mirror").join(&component.name);
            let downloaded = match mirror_component(component, &mirror, registry, request.quiet) {
                Err(e) if request.skip_missing_buckets && e.is::<NotFound>() => {
                    missing_buckets.push(component.name.clone());
                    continue;
                }
                downloaded => downloaded?,
            };
            let tarball = run_dir.join(format!("{}.tar.gz", component.name));
            let inventory = {
                let _shown = Spinner::new(&format!("pack {}", component.name), request.quiet);
                pack_component(&mirror, &tarball, &component.excludes, request.rsyncable)?
            };
            summaries.push(ComponentSummary {
                name: component.name.clone(),
                bucket: component.bucket.to_string(),
                objects: inventory.len() as u64,
                bytes: inventory.values().map(|f| f.size).sum(),
                downloaded,
            });
            manifests.push(Manifest::new(&component.name, &inventory));
            tarballs.push((component.name.clone(), tarball));
        }
        let information = BackupInformation {
            archive: name.clone(),
            created_at: timestamp,
            stowage_version: env!("CARGO_PKG_VERSION").to_string(),
            components: summaries,
            skipped: [request.skip.as_slice(), &missing_buckets].concat(),
        };
        let archive = run_dir.join(&name);
        let shown = Spinner::new(&format!("write {name}"), request.quiet);
        write_archive(
            &archive,
            &ArchiveContents {
                information: information_yml(&information),
                manifests: &manifests,
                tarballs: &tarballs,
            },
        )?;
        drop(shown);
        let size = std::fs::metadata(&archive)?.len();
        let shown = Spinner::new(
            &format!("store {name} in {}", store.location()),
            request.quiet,
        );
        store.upload(&archive, &name)?;
        drop(shown);
        let sidecar = run_dir.join(sidecar_name(&name));
        std::fs::write(&sidecar, serde_json::to_vec_pretty(&information)?)?;
        store.upload(&sidecar, &sidecar_name(&name))?;
        let pruned = match request.maximum_backups {
            Some(keep) => prune(&store, label, keep)?,
            None => Vec::new(),
        };
        Ok(BackupReport {
            information,
            destination: store.location().to_string(),
            size,
            missing_buckets,
            pruned,
            duration_secs: started.elapsed().as_secs_f64(),
        })
    })();
    let _ = std::fs::remove_dir_all(&run_dir);
    // The archive is stored (or the backup failed): the name needs no claim.
    let _ = store.delete(&[claim_name(&name)]);
    result
}

/// How many seconds after its own a backup tries when names are taken.
const NAME_ATTEMPTS: u64 = 60;

/// The object that claims an archive name while its archive is made.
pub fn claim_name(archive: &str) -> String {
    format!("{archive}.claim")
}

/// The timestamp of the first free archive name of `label` from
/// `timestamp` on, claimed for this backup: an existing archive is never
/// replaced, and two backups started in the same second get two names.
fn claim_archive_name(store: &BackupStore<'_>, label: &str, timestamp: u64) -> Result<u64> {
    for candidate in timestamp..timestamp + NAME_ATTEMPTS {
        let name = ArchiveName {
            timestamp: candidate,
            label: label.to_string(),
        }
        .file_name();
        if claim(store, &name)? {
            return Ok(candidate);
        }
    }
    Err(anyhow!(
        "no free archive name in the {NAME_ATTEMPTS} seconds from {timestamp} in {}: every one is taken by an archive or another backup",
        store.location()
    ))
}

/// Claims the archive name `archive`: creates its claim object — where
/// the store can, only if it is absent, so of two backups exactly one gets
/// it; elsewhere after checking it is absent, which two backups in the
/// same second can both pass — then checks that no archive has the name
/// (one made by another tool). `false` when it is taken.
fn claim(store: &BackupStore<'_>, archive: &str) -> Result<bool> {
    let claim = claim_name(archive);
    let holder = format!("{} {}", crate::store::lock::hostname(), std::process::id());
    let claimed = if store.conditional_create() {
        store.create_if_absent(&claim, holder.as_bytes())?
    } else if store.contains(&claim)? {
        false
    } else {
        store.put_bytes(&claim, holder.as_bytes())?;
        true
    };
    if claimed && store.contains(archive)? {
        store.delete(&[claim])?;
        return Ok(false);
    }
    Ok(claimed)
}

/// Mirrors one component's bucket into `mirror` (verified against the
/// bucket's listing) and returns how many objects it downloaded. A missing
/// bucket is an error that says how to skip it.
fn mirror_component(
    component: &Component,
    mirror: &Path,
    registry: &Registry,
    quiet: bool,
) -> Result<u64> {
    let plugin = registry.for_location(&component.bucket, None)?;
    std::fs::create_dir_all(mirror)
        .with_context(|| format!("cannot create {}", mirror.display()))?;
    let destination = Location::Local {
        path: mirror.to_string_lossy().as_ref().into(),
    };
    let options = SyncOptions {
        delete: true,
        excludes: component
            .excludes
            .iter()
            .map(|e| e.as_str().into())
            .collect(),
        ..SyncOptions::default()
    };
    let bar = ProgressBarSink::new(&format!("backup {}", component.name), 0, quiet);
    let outcome = run_sync(plugin, &component.bucket, &destination, &options, &bar);
    bar.finish();
    let outcome = outcome.map_err(|e| match plugin_error_kind(&e) {
        Some(ErrorKind::BucketMissing) => anyhow::Error::new(NotFound(format!(
            "component {}: bucket {} does not exist (leave it out with --skip {})",
            component.name, component.bucket, component.name
        ))),
        _ => e.context(format!("component {}", component.name)),
    })?;
    Ok(outcome.plan.transfer.len() as u64)
}

/// GitLab-style `backup_information.yml`.
fn information_yml(information: &BackupInformation) -> String {
    let created = rfc3339(information.created_at);
    let names: Vec<&str> = information
        .components
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    format!(
        ":backup_created_at: {created}\n:stowage_version: {}\n:object_storage_components: {}\n:skipped: {}\n",
        information.stowage_version,
        names.join(","),
        information.skipped.join(",")
    )
}

/// Deletes the oldest archives of `label` (and their sidecars) beyond
/// `keep` (at least one is kept), and returns their names.
pub fn prune(store: &BackupStore<'_>, label: &str, keep: usize) -> Result<Vec<String>> {
    let ours: Vec<_> = store
        .archives()?
        .into_iter()
        .filter(|a| a.label == label)
        .collect();
    let excess = ours.len().saturating_sub(keep.max(1));
    let doomed: Vec<String> = ours[..excess].iter().map(|a| a.file_name.clone()).collect();
    let with_sidecars: Vec<String> = doomed
        .iter()
        .flat_map(|n| [n.clone(), sidecar_name(n)])
        .collect();
    store.delete(&with_sidecars)?;
    Ok(doomed)
}
