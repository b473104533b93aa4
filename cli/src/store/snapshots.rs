//! Restore snapshots in the tmp bucket: list them, prune them.
//!
//! Before a restore changes a bucket it copies what it will overwrite or
//! delete to `<tmp bucket>/<component>.<unix-ts>/` (GitLab's backup-utility
//! names its copies the same way); shard I of N of a sharded restore to
//! `<tmp bucket>/<component>.shard-<I>-of-<N>.<unix-ts>/`, so no two shards
//! write into one snapshot. Those snapshots are the way back, so a prune:
//! - deletes only objects below such a prefix of the tmp bucket — anything
//!   else there is neither listed nor touched;
//! - counts `--keep N` per component and shard: each shard's snapshots are
//!   a series of their own;
//! - keeps every snapshot of a component while a restore into its bucket
//!   may be running (its restore lock is in the backup destination, see
//!   [`crate::store::lock`]), and says so;
//! - lists the tmp bucket again afterwards, to prove the pruned snapshots
//!   are gone.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::Serialize;
use stowage_plugin_api::{ErrorKind, Location};

use crate::config::{valid_component_name, Settings};
use crate::exit::{ConfigError, Refused};
use crate::plugin::{plugin_error_kind, LoadedPlugin};
use crate::registry::Registry;
use crate::store::backup_store::BackupStore;
use crate::store::lock::running_restore;
use crate::sync::verify::owned_keys;
use crate::unix_time::{now, rfc3339};

/// One snapshot: the objects below `<tmp bucket>/<component>.<unix-ts>/`.
#[derive(Clone, Debug, Serialize)]
pub struct Snapshot {
    /// The component whose bucket it copies.
    pub component: String,
    /// The shard of a sharded restore that took it (`I-of-N`), if one did.
    pub shard: Option<String>,
    /// When its restore started (seconds since the epoch).
    pub timestamp: u64,
    /// The same, as RFC 3339.
    pub time: String,
    /// Objects in it.
    pub objects: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Where it is: `<tmp bucket>/<component>.<unix-ts>`.
    pub location: String,
    /// Its objects' keys, relative to the tmp bucket (each below its prefix).
    #[serde(skip)]
    keys: Vec<String>,
}

impl Snapshot {
    /// Its name in the tmp bucket: `<component>.<unix-ts>`, or
    /// `<component>.shard-<I>-of-<N>.<unix-ts>`.
    pub fn name(&self) -> String {
        snapshot_name(&self.series(), self.timestamp)
    }

    /// The series it belongs to: its component, and its shard if any.
    fn series(&self) -> String {
        match &self.shard {
            Some(shard) => format!("{}{SHARD_MARK}{shard}", self.component),
            None => self.component.clone(),
        }
    }
}

/// What separates a component from its shard in a snapshot's name.
const SHARD_MARK: &str = ".shard-";

/// The snapshot series of shard `index` of `count` of a sharded restore of
/// `component`: `<component>.shard-<I>-of-<N>`.
pub fn shard_series(component: &str, index: u32, count: u32) -> String {
    format!("{component}{SHARD_MARK}{index}-of-{count}")
}

/// A series name split into its component and shard (`I-of-N`), if it is
/// one: a valid component name, optionally followed by a shard.
fn series_of(series: &str) -> Option<(&str, Option<&str>)> {
    let (component, shard) = match series.split_once(SHARD_MARK) {
        Some((component, shard)) => (component, Some(shard)),
        None => (series, None),
    };
    let shard_ok = shard.is_none_or(|s| {
        s.split_once("-of-").is_some_and(|(i, n)| {
            [i, n]
                .iter()
                .all(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
        })
    });
    (valid_component_name(component) && shard_ok).then_some((component, shard))
}

/// The name of a snapshot in the tmp bucket: `<series>.<unix-ts>`, the
/// unix time its restore started; the series is the component's name (see
/// [`shard_series`] for a shard's).
pub fn snapshot_name(series: &str, timestamp: u64) -> String {
    format!("{series}.{timestamp}")
}

/// The component, shard and timestamp of the snapshot `key` (relative to
/// the tmp bucket) is in, if its first segment is `<component>.<unix-ts>`
/// or `<component>.shard-<I>-of-<N>.<unix-ts>` and something follows it.
fn snapshot_of(key: &str) -> Option<(&str, Option<&str>, u64)> {
    let (first, _) = key.split_once('/')?;
    let (series, timestamp) = first.rsplit_once('.')?;
    let digits = !timestamp.is_empty() && timestamp.bytes().all(|b| b.is_ascii_digit());
    let (component, shard) = series_of(series).filter(|_| digits)?;
    Some((component, shard, timestamp.parse().ok()?))
}

/// The tmp bucket and the plugin that serves it.
pub struct TmpBucket<'r> {
    location: Location,
    plugin: &'r LoadedPlugin,
}

impl<'r> TmpBucket<'r> {
    /// The tmp bucket `settings` name; a configuration error without one.
    pub fn open(settings: &Settings, registry: &'r Registry) -> Result<Self> {
        let Some(location) = settings.tmp_bucket.clone() else {
            bail!(ConfigError(
                "no tmp bucket: set tmp_bucket in stowage.toml or --tmp-bucket".to_string()
            ));
        };
        let plugin = registry.for_location(&location, None)?;
        Ok(TmpBucket { location, plugin })
    }

    /// Where it is.
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// The snapshots in it of the components `only` names (all when
    /// empty), newest first. A tmp bucket that does not exist holds none.
    pub fn snapshots(&self, only: &[String]) -> Result<Vec<Snapshot>> {
        let entries = match self.plugin.list(&self.location) {
            Ok(entries) => entries,
            Err(e) if plugin_error_kind(&e) == Some(ErrorKind::BucketMissing) => {
                return Ok(Vec::new())
            }
            Err(e) => return Err(e.context("cannot list the tmp bucket")),
        };
        let mut found: BTreeMap<(u64, String), Snapshot> = BTreeMap::new();
        for entry in entries {
            let Some((component, shard, timestamp)) = snapshot_of(&entry.key) else {
                continue;
            };
            if !only.is_empty() && !only.iter().any(|c| c == component) {
                continue;
            }
            let series = entry.key.split_once('/').map_or("", |(first, _)| first);
            let snapshot = found
                .entry((timestamp, series.to_string()))
                .or_insert_with(|| self.empty_snapshot(component, shard, timestamp));
            snapshot.objects += 1;
            snapshot.bytes += entry.size;
            snapshot.keys.push(entry.key);
        }
        Ok(found.into_values().rev().collect())
    }

    fn empty_snapshot(&self, component: &str, shard: Option<&str>, timestamp: u64) -> Snapshot {
        let mut snapshot = Snapshot {
            component: component.to_string(),
            shard: shard.map(str::to_string),
            timestamp,
            time: rfc3339(timestamp),
            objects: 0,
            bytes: 0,
            location: String::new(),
            keys: Vec::new(),
        };
        snapshot.location = self.location.join(&snapshot.name()).to_string();
        snapshot
    }

    /// Deletes every object of `snapshots` through the plugin, then lists
    /// the tmp bucket again: an error names any snapshot still there.
    fn delete(&self, snapshots: &[&Snapshot]) -> Result<()> {
        let keys = owned_keys(snapshots.iter().flat_map(|s| &s.keys));
        self.plugin
            .delete(&self.location, &keys)
            .context("cannot delete snapshots")?;
        let pruned: BTreeSet<String> = snapshots.iter().map(|s| s.name()).collect();
        let left: Vec<String> = self
            .snapshots(&[])?
            .iter()
            .map(Snapshot::name)
            .filter(|name| pruned.contains(name))
            .collect();
        if !left.is_empty() {
            bail!(
                "{} still in {} after the prune",
                left.join(", "),
                self.location
            );
        }
        Ok(())
    }
}

/// Which snapshots a prune keeps. A snapshot is deleted only when no rule
/// given keeps it.
#[derive(Clone, Debug, Default)]
pub struct PruneRules {
    /// Keep the newest N snapshots of each component (of each shard of a
    /// sharded restore: see the module docs).
    pub keep: Option<usize>,
    /// Keep the snapshots younger than this.
    pub older_than: Option<Duration>,
}

/// What a prune does with a snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PruneAction {
    /// Delete it.
    Delete,
    /// Keep it.
    Keep,
}

/// A snapshot, what the prune does with it, and why.
#[derive(Clone, Debug, Serialize)]
pub struct PruneDecision {
    /// The snapshot.
    #[serde(flatten)]
    pub snapshot: Snapshot,
    /// Delete or keep.
    pub action: PruneAction,
    /// Why.
    pub reason: String,
}

/// Decides each snapshot (newest first, as [`TmpBucket::snapshots`] lists
/// them) by `rules` at the time `now`.
pub fn decide(snapshots: Vec<Snapshot>, rules: &PruneRules, now: u64) -> Vec<PruneDecision> {
    let mut newer_of: HashMap<String, usize> = HashMap::new();
    snapshots
        .into_iter()
        .map(|snapshot| {
            let newer = newer_of.entry(snapshot.series()).or_default();
            let age = Duration::from_secs(now.saturating_sub(snapshot.timestamp));
            let verdicts = rules.verdicts(*newer, age);
            *newer += 1;
            let kept_by: Vec<&str> = verdicts
                .iter()
                .filter(|(keeps, _)| *keeps)
                .map(|(_, why)| why.as_str())
                .collect();
            let (action, reasons) = match kept_by.is_empty() {
                true => (
                    PruneAction::Delete,
                    verdicts.iter().map(|(_, why)| why.as_str()).collect(),
                ),
                false => (PruneAction::Keep, kept_by),
            };
            PruneDecision {
                snapshot,
                action,
                reason: reasons.join(" and "),
            }
        })
        .collect()
}

impl PruneRules {
    /// What each rule given says of a snapshot with `newer` snapshots of
    /// its component before it and of age `age`: whether it keeps it, and why.
    fn verdicts(&self, newer: usize, age: Duration) -> Vec<(bool, String)> {
        let by_rank = self.keep.map(|n| match newer < n {
            true => (true, format!("one of the newest {n}")),
            false => (false, format!("not among the newest {n}")),
        });
        let by_age = self.older_than.map(|limit| {
            let shown = humantime::format_duration(limit);
            match age <= limit {
                true => (true, format!("younger than {shown}")),
                false => (false, format!("older than {shown}")),
            }
        });
        by_rank.into_iter().chain(by_age).collect()
    }
}

/// What `stowage snapshots prune` was asked.
#[derive(Clone, Debug, Default)]
pub struct PruneRequest {
    /// Only these components' snapshots (all when empty).
    pub components: Vec<String>,
    /// Which to keep.
    pub rules: PruneRules,
}

/// A prune, planned: every snapshot with its decision.
pub struct PrunePlan<'r> {
    tmp: TmpBucket<'r>,
    /// Newest first.
    pub decisions: Vec<PruneDecision>,
}

/// What a prune did (or, in a dry run, would do).
#[derive(Debug, Serialize)]
pub struct PruneReport {
    /// The tmp bucket.
    pub tmp_bucket: String,
    /// Whether this was a dry run (nothing deleted).
    pub dry_run: bool,
    /// Every snapshot, newest first, with its decision.
    pub snapshots: Vec<PruneDecision>,
    /// Snapshots deleted (and, listed again, gone).
    pub deleted_snapshots: u64,
    /// Their objects.
    pub deleted_objects: u64,
    /// Their bytes.
    pub deleted_bytes: u64,
}

impl<'r> PrunePlan<'r> {
    /// Lists the snapshots and decides each; a snapshot of a component
    /// whose restore may be running is kept. Refused (exit code 5) without
    /// a rule: a prune never deletes every snapshot by default.
    pub fn new(
        settings: &Settings,
        registry: &'r Registry,
        request: &PruneRequest,
    ) -> Result<Self> {
        if request.rules.keep.is_none() && request.rules.older_than.is_none() {
            bail!(Refused(
                "snapshots prune needs --keep N, --older-than DURATION or both; nothing was deleted"
                    .to_string()
            ));
        }
        let tmp = TmpBucket::open(settings, registry)?;
        // Listed before the locks are read: a snapshot being written now
        // has its restore's lock in place until that restore ends.
        let snapshots = tmp.snapshots(&request.components)?;
        let mut decisions = decide(snapshots, &request.rules, now());
        keep_while_restoring(&mut decisions, settings, registry)?;
        Ok(PrunePlan { tmp, decisions })
    }

    /// The snapshots it deletes.
    pub fn deletions(&self) -> Vec<&Snapshot> {
        self.decisions
            .iter()
            .filter(|d| d.action == PruneAction::Delete)
            .map(|d| &d.snapshot)
            .collect()
    }

    /// Deletes the snapshots decided so, and proves them gone.
    pub fn execute(self) -> Result<PruneReport> {
        let deletions = self.deletions();
        if !deletions.is_empty() {
            self.tmp.delete(&deletions)?;
        }
        let mut report = self.report(false);
        for snapshot in deletions {
            report.deleted_snapshots += 1;
            report.deleted_objects += snapshot.objects;
            report.deleted_bytes += snapshot.bytes;
        }
        Ok(report)
    }

    /// The report of a dry run: what it would do.
    pub fn dry_run(&self) -> PruneReport {
        self.report(true)
    }

    fn report(&self, dry_run: bool) -> PruneReport {
        PruneReport {
            tmp_bucket: self.tmp.location().to_string(),
            dry_run,
            snapshots: self.decisions.clone(),
            deleted_snapshots: 0,
            deleted_objects: 0,
            deleted_bytes: 0,
        }
    }
}

/// Keeps every snapshot of a component whose bucket's restore lock is
/// live (its restore may still be writing it), or whose bucket is not
/// configured (its lock cannot be found).
fn keep_while_restoring(
    decisions: &mut [PruneDecision],
    settings: &Settings,
    registry: &Registry,
) -> Result<()> {
    let pruned: BTreeSet<String> = decisions
        .iter()
        .filter(|d| d.action == PruneAction::Delete)
        .map(|d| d.snapshot.component.clone())
        .collect();
    if pruned.is_empty() {
        return Ok(());
    }
    let store = BackupStore::open(&settings.destination, registry)?;
    let mut held: HashMap<String, String> = HashMap::new();
    for name in pruned {
        let reason = match settings.components.iter().find(|c| c.name == name) {
            None => Some(format!(
                "component {name} is not configured, so whether a restore into its bucket runs cannot be checked; name its bucket with --bucket {name}=URL to prune it"
            )),
            Some(component) => running_restore(&store, &component.bucket)
                .with_context(|| format!("cannot check the restore lock of {}", component.bucket))?
                .map(|lock| format!("a restore into {} may be running ({lock})", component.bucket)),
        };
        if let Some(reason) = reason {
            held.insert(name, reason);
        }
    }
    for decision in decisions {
        if let Some(reason) = held.get(&decision.snapshot.component) {
            if decision.action == PruneAction::Delete {
                decision.action = PruneAction::Keep;
                decision.reason = reason.clone();
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(component: &str, timestamp: u64) -> Snapshot {
        Snapshot {
            component: component.to_string(),
            shard: None,
            timestamp,
            time: rfc3339(timestamp),
            objects: 1,
            bytes: 1,
            location: format!("s3://tmp/{component}.{timestamp}"),
            keys: vec![format!("{component}.{timestamp}/a")],
        }
    }

    /// Newest first, as the tmp bucket lists them.
    fn snapshots() -> Vec<Snapshot> {
        vec![
            snapshot("uploads", 1000),
            snapshot("lfs", 900),
            snapshot("uploads", 800),
            snapshot("uploads", 100),
        ]
    }

    fn deleted(decisions: &[PruneDecision]) -> Vec<String> {
        decisions
            .iter()
            .filter(|d| d.action == PruneAction::Delete)
            .map(|d| d.snapshot.name())
            .collect()
    }

    #[test]
    fn only_keys_below_a_component_and_timestamp_prefix_are_snapshots() {
        assert_eq!(
            snapshot_of("uploads.1700000000/a/b"),
            Some(("uploads", None, 1_700_000_000))
        );
        assert_eq!(snapshot_of("my-comp_2.5/x"), Some(("my-comp_2", None, 5)));
        assert_eq!(
            snapshot_of("uploads.shard-1-of-3.17/a"),
            Some(("uploads", Some("1-of-3"), 17))
        );
        for key in [
            "uploads.shard-1.17/a",
            "uploads.shard-x-of-3.17/a",
            "uploads.shard-1-of-3/a",
            "uploads.1700000000",
            "uploads.17x/a",
            "uploads./a",
            ".17/a",
            "up loads.17/a",
            "notes.txt",
            "a/uploads.17/b",
        ] {
            assert_eq!(snapshot_of(key), None, "{key}");
        }
    }

    #[test]
    fn keep_n_keeps_the_newest_n_of_each_component() {
        let rules = PruneRules {
            keep: Some(1),
            older_than: None,
        };
        let decisions = decide(snapshots(), &rules, 1000);
        assert_eq!(deleted(&decisions), ["uploads.800", "uploads.100"]);
        assert_eq!(decisions[3].reason, "not among the newest 1");
        assert_eq!(decisions[1].reason, "one of the newest 1");
    }

    #[test]
    fn keep_n_counts_each_shard_of_a_sharded_restore_on_its_own() {
        let of_shard = |shard: &str, timestamp| Snapshot {
            shard: Some(shard.to_string()),
            ..snapshot("uploads", timestamp)
        };
        let newest_first = vec![
            of_shard("1-of-2", 1000),
            of_shard("0-of-2", 999),
            snapshot("uploads", 900),
            of_shard("1-of-2", 500),
            of_shard("0-of-2", 499),
        ];
        let rules = PruneRules {
            keep: Some(1),
            older_than: None,
        };
        let decisions = decide(newest_first, &rules, 1000);
        assert_eq!(
            deleted(&decisions),
            ["uploads.shard-1-of-2.500", "uploads.shard-0-of-2.499"]
        );
    }

    #[test]
    fn older_than_deletes_by_age_and_both_rules_must_agree() {
        let older_than = PruneRules {
            keep: None,
            older_than: Some(Duration::from_secs(150)),
        };
        let decisions = decide(snapshots(), &older_than, 1000);
        assert_eq!(deleted(&decisions), ["uploads.800", "uploads.100"]);
        assert_eq!(decisions[3].reason, "older than 2m 30s");

        let both = PruneRules {
            keep: Some(2),
            older_than: Some(Duration::from_secs(150)),
        };
        let decisions = decide(snapshots(), &both, 1000);
        assert_eq!(deleted(&decisions), ["uploads.100"]);
        assert_eq!(
            decisions[3].reason,
            "not among the newest 2 and older than 2m 30s"
        );
        assert_eq!(decisions[2].reason, "one of the newest 2");
    }
}
