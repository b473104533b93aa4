//! Finishing a sync and proving its result: list the destination, compare
//! every object with the source's checksums, repair and delete what the
//! plan named, and say what could only be checked by size and what someone
//! else changed meanwhile.
//!
//! This lives once in the host rather than in each plugin: the tools
//! disagree on what "changed" means (`aws s3 sync` skips a same-size file
//! with an older mtime; s3cmd falls back to size-only for multipart ETags),
//! and a sync must be right whichever tool runs it.
//!
//! **The invariant, enforced here.** An existing destination object is
//! overwritten or deleted only if the plan named it *and* it is still the
//! version the plan found ([`PlannedChanges::found`]: in a restore, the
//! version the snapshot holds). An object that appeared, changed or vanished
//! after planning is left as found and reported as [`Drift`]; the caller
//! then knows the destination does not equal the source, and a re-run plans
//! it (snapshot first) like any other difference.

use std::collections::HashSet;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::Serialize;
use stowage_exclude::ExcludeMatcher;
use stowage_local_tree::{key_to_relative_path, remove_file_and_empty_parents};
use stowage_plugin_api::Location;

use crate::plugin::LoadedPlugin;
use crate::sync::merge::{merge_listing, Met, SourceObjects, Taking};
use crate::sync::plan::{
    compare, forget_listed_md5s, inventory_of, inventory_of_keys, Comparison, Fingerprint,
    Inventory, Key, SmallestDoubt, SyncPlan,
};

/// What verification found and did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Verification {
    /// Objects whose size and MD5 match the source.
    pub verified: u64,
    /// Objects whose MD5 cannot be known (multipart ETag): checked by size only.
    pub size_only: Vec<Key>,
    /// Planned objects the tool left missing or wrong, transferred again.
    pub repaired: Vec<Key>,
    /// Planned deletions, done once the transfers had succeeded.
    pub deleted: Vec<Key>,
    /// Objects someone else created, changed or deleted after planning:
    /// left as found, so the destination does not equal the source.
    pub drifted: Vec<Drift>,
    /// The destination's ETags are not content MD5s (SSE-KMS, SSE-C, some
    /// S3-compatible stores): its objects were compared by size only.
    pub etags_not_md5s: bool,
}

/// An object that moved under the sync: left as found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Drift {
    /// Its key.
    pub key: Key,
    /// What happened to it after the plan was made.
    pub change: DriftKind,
}

/// How an object moved after planning.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftKind {
    /// It was not there when planned, and now is.
    Appeared,
    /// It holds another version than the one planned (and snapshotted).
    Changed,
    /// It was there when planned (or was to be), and now is not.
    Vanished,
}

impl std::fmt::Display for DriftKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DriftKind::Appeared => "appeared",
            DriftKind::Changed => "changed",
            DriftKind::Vanished => "vanished",
        })
    }
}

/// What the plan lets a sync change in the destination: the keys it named
/// and, for each, the version it found there.
pub struct PlannedChanges<'a> {
    /// The destination as last listed before anything changed it (in a
    /// restore: the listing the snapshot was checked against), at least
    /// the objects of every key the plan named (a restore keeps no more).
    pub found: &'a Inventory,
    /// The plan: the keys it transfers (and may therefore overwrite) and
    /// deletes. A source key it did not name was there, unchanged.
    pub plan: &'a SyncPlan,
    /// Keys the plan named that moved since (a restore's confirmation
    /// found them): neither written nor deleted.
    pub moved: HashSet<&'a str>,
    /// Whether objects missing from the source must be gone (`--delete`).
    pub delete: bool,
    /// Whether the destination's listed MD5s may be content MD5s (false
    /// once planning found they are not; see [`crate::sync::plan::listed_md5s_are_content`]).
    pub listed_md5s: bool,
}

impl<'a> PlannedChanges<'a> {
    /// Everything `plan` names, against the destination it was made from.
    pub fn of(plan: &'a SyncPlan, found: &'a Inventory, delete: bool) -> Self {
        PlannedChanges {
            found,
            plan,
            moved: HashSet::new(),
            delete,
            listed_md5s: true,
        }
    }

    /// How many objects the plan still transfers (those that moved left out).
    pub fn transfer_count(&self) -> usize {
        let plan = self.plan;
        let moved = self.moved.iter().filter(|key| plan.transfers(key)).count();
        plan.transfer.len() + plan.possibly_changed.len() - moved
    }

    /// Whether the plan still transfers `key`.
    fn transfers(&self, key: &str) -> bool {
        self.plan.transfers(key) && !self.moved.contains(key)
    }

    /// Whether the plan still deletes `key`.
    fn deletes(&self, key: &str) -> bool {
        self.plan.deletes(key) && !self.moved.contains(key)
    }

    /// Whether `key` was in the destination when last listed before
    /// anything changed (`in_source`: whether the source has it).
    fn was_found(&self, key: &str, in_source: bool) -> bool {
        match self.plan.transfers(key) || self.plan.deletes(key) {
            true => self.found.contains_key(key),
            // Unnamed: a source key compared equal, so it was there; any
            // other key would have been named for deletion.
            false => in_source,
        }
    }

    /// Whether `key`, now `now`, may be written: the plan transfers it and
    /// nobody else has written it since (writing where nothing is destroys
    /// no version).
    fn may_overwrite(&self, key: &str, now: Option<&Fingerprint>) -> bool {
        self.transfers(key)
            && match (self.found.get(key), now) {
                (_, None) => true,
                (Some(found), Some(now)) => same_version(found, now),
                (None, Some(_)) => false,
            }
    }

    /// Whether `key`, now `now`, is a planned transfer still exactly the
    /// version found: the transfer did not happen.
    fn left_as_found(&self, key: &str, now: Option<&Fingerprint>) -> bool {
        self.transfers(key)
            && matches!((self.found.get(key), now), (Some(found), Some(now)) if same_version(found, now))
    }

    /// Whether `key`, now `now`, may be deleted: the plan deletes it and it
    /// is still the version found.
    fn may_delete(&self, key: &str, now: &Fingerprint) -> bool {
        self.deletes(key) && self.found.get(key).is_some_and(|f| same_version(f, now))
    }

    /// How `key` (of the source, if `in_source`), now `now`, moved since
    /// it was planned.
    fn drift(&self, key: &Key, in_source: bool, now: Option<&Fingerprint>) -> Drift {
        let change = match (self.was_found(key, in_source), now) {
            (false, Some(_)) => DriftKind::Appeared,
            (true, Some(_)) => DriftKind::Changed,
            (_, None) => DriftKind::Vanished,
        };
        Drift {
            key: key.clone(),
            change,
        }
    }
}

/// Whether two listings of one key show the same version: the same content
/// where checksums tell, else the same modification time.
pub fn same_version(a: &Fingerprint, b: &Fingerprint) -> bool {
    if a.size != b.size {
        return false;
    }
    match (&a.md5, &b.md5, &a.etag, &b.etag) {
        (Some(x), Some(y), _, _) => x == y,
        (_, _, Some(x), Some(y)) => x == y,
        _ => a.modified == b.modified,
    }
}

/// Callbacks a caller of [`verify_and_finish`] hooks in.
pub struct FinishHooks<'a> {
    /// Called with the keys about to be transferred again, to make their
    /// files present (a restore extracts them from the archive).
    pub prepare: &'a dyn Fn(&[Key]) -> Result<()>,
    /// Called once the destination was listed, before anything is repaired
    /// or deleted.
    pub before_changes: &'a dyn Fn(),
    /// Whether a destination key is this sync's to answer for: one shard of
    /// a sharded restore neither deletes nor reports the others' keys.
    pub answers_for: &'a dyn Fn(&str) -> bool,
}

impl FinishHooks<'_> {
    /// Hooks for a source that holds every file, with nobody watching.
    pub fn none() -> FinishHooks<'static> {
        FinishHooks {
            prepare: &|_| Ok(()),
            before_changes: &|| {},
            answers_for: &|_| true,
        }
    }
}

/// After the tool's transfer (which never deletes): lists `destination`,
/// compares it with `source_objects`, repairs the planned objects the
/// tool got wrong, deletes the planned deletions, and lists what it
/// repaired and deleted once more to prove both. Objects that moved after
/// planning are left and reported.
///
/// The listing is walked beside the source ([`merge_listing`]), so no more
/// of it is held than what it found to do: a page at a time from a plugin
/// that lists pages.
///
/// Repaired objects that still differ, and deleted ones still there
/// unchanged, fail the call.
pub fn verify_and_finish(
    provider: &LoadedPlugin,
    source: &Location,
    destination: &Location,
    source_objects: &dyn SourceObjects,
    planned: &PlannedChanges<'_>,
    excludes: &ExcludeMatcher,
    hooks: &FinishHooks<'_>,
) -> Result<Verification> {
    crate::interrupt::check()?;
    let walk = ListingWalk {
        provider,
        destination,
        source_objects,
        planned,
        excludes,
        hooks,
    };
    let mut found = walk.compare(!planned.listed_md5s)?;
    let doubt = std::mem::take(&mut found.doubt);
    if !doubt.settle(provider, destination)? {
        found = walk.compare(true)?;
    }
    let FoundByListing {
        mut verification,
        repair,
        delete,
        objects,
        ..
    } = found;
    (hooks.before_changes)();
    if repair.is_empty() && delete.is_empty() {
        return Ok(verification);
    }
    crate::interrupt::check()?;

    let repairing: Vec<Key> = repair.iter().map(|(key, _)| key.clone()).collect();
    if !repair.is_empty() {
        (hooks.prepare)(&repairing)?;
    }
    let deleting: Vec<Key> = delete.iter().map(|(key, _)| key.clone()).collect();
    transfer_again(provider, source, destination, &repairing)?;
    remove(provider, destination, &deleting)?;

    let mut after = match destination {
        Location::Remote { .. } => {
            let changed: Vec<Key> = repairing.iter().chain(&deleting).cloned().collect();
            inventory_of_keys(provider, destination, &changed, objects as usize, excludes)?
        }
        Location::Local { .. } => inventory_of(destination, provider, excludes, &Inventory::new())?,
    };
    if verification.etags_not_md5s {
        forget_listed_md5s(&mut after);
    }
    for (key, wanted) in &repair {
        match compare(wanted, after.get(key)) {
            Comparison::Same => verification.verified += 1,
            Comparison::SizeOnly => verification.size_only.push(key.clone()),
            Comparison::Differs => {
                bail!(
                    "verification failed: {key} in {} still differs from the source after a repair",
                    destination
                )
            }
        }
    }
    for (key, listed) in delete {
        match after.get(&key) {
            None => verification.deleted.push(key),
            Some(now) if same_version(&listed, now) => bail!(
                "verification failed: {key} in {} could not be deleted",
                destination
            ),
            // Written again by someone else after the delete: theirs now.
            Some(_) => verification.drifted.push(Drift {
                key,
                change: DriftKind::Appeared,
            }),
        }
    }
    verification.repaired = repairing;
    Ok(verification)
}

/// What one walk of the destination's listing found.
struct FoundByListing {
    /// Verified, checked by size only, drifted.
    verification: Verification,
    /// Planned objects to transfer again, each with the source's object.
    repair: Vec<(Key, Fingerprint)>,
    /// Planned deletions, each with the version listed.
    delete: Vec<(Key, Fingerprint)>,
    /// The objects listed.
    objects: u64,
    /// The listed object whose MD5 is most cheaply proven or disproven,
    /// when MD5s were compared.
    doubt: SmallestDoubt,
}

/// A walk of the destination's listing beside the source, for
/// [`verify_and_finish`].
struct ListingWalk<'a, 'p> {
    provider: &'a LoadedPlugin,
    destination: &'a Location,
    source_objects: &'a dyn SourceObjects,
    planned: &'a PlannedChanges<'p>,
    excludes: &'a ExcludeMatcher,
    hooks: &'a FinishHooks<'a>,
}

impl ListingWalk<'_, '_> {
    /// Walks the listing and sorts every object into what
    /// [`FoundByListing`] holds; `md5s_forgotten`: compare by size only
    /// (the listed MD5s are not content MD5s).
    fn compare(&self, md5s_forgotten: bool) -> Result<FoundByListing> {
        let planned = self.planned;
        let mut found = FoundByListing {
            verification: Verification {
                etags_not_md5s: md5s_forgotten,
                ..Verification::default()
            },
            repair: Vec::new(),
            delete: Vec::new(),
            objects: 0,
            doubt: SmallestDoubt::default(),
        };
        // Kept apart to report them as before: the source's first, then the rest.
        let mut drifted_elsewhere = Vec::new();
        let verification = &mut found.verification;
        found.objects = merge_listing(
            self.provider,
            self.destination,
            self.source_objects,
            self.excludes,
            Taking {
                keep: self.hooks.answers_for,
                md5s_forgotten,
            },
            &mut |Met {
                      key,
                      source,
                      listed,
                  }| {
                let now = listed.as_ref();
                let Some(wanted) = source else {
                    let now = listed.expect("a key the source lacks was listed");
                    if planned.delete {
                        match planned.may_delete(key, &now) {
                            true => found.delete.push((key.clone(), now)),
                            false => drifted_elsewhere.push(planned.drift(key, false, Some(&now))),
                        }
                    }
                    return Ok(());
                };
                found.doubt.consider(key, wanted, now);
                match compare(wanted, now) {
                    Comparison::Same => verification.verified += 1,
                    // Where ETags are not MD5s, a planned object the tool left as
                    // it was (the tool compared sizes or times) is sent again.
                    Comparison::SizeOnly if md5s_forgotten && planned.left_as_found(key, now) => {
                        found.repair.push((key.clone(), wanted.clone()))
                    }
                    Comparison::SizeOnly => verification.size_only.push(key.clone()),
                    Comparison::Differs if planned.may_overwrite(key, now) => {
                        found.repair.push((key.clone(), wanted.clone()))
                    }
                    Comparison::Differs => verification.drifted.push(planned.drift(key, true, now)),
                }
                Ok(())
            },
        )?;
        verification.drifted.append(&mut drifted_elsewhere);
        Ok(found)
    }
}

fn transfer_again(
    provider: &LoadedPlugin,
    source: &Location,
    destination: &Location,
    keys: &[Key],
) -> Result<()> {
    match (source, destination) {
        (Location::Local { path }, Location::Remote { .. }) => {
            for key in keys {
                let file = Path::new(path.as_str()).join(key_to_relative_path(key)?);
                provider
                    .put(&file, destination, key)
                    .context("repairing the upload")?;
            }
        }
        (Location::Remote { .. }, Location::Local { path }) => {
            for key in keys {
                let file = Path::new(path.as_str()).join(key_to_relative_path(key)?);
                if let Some(parent) = file.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                provider
                    .get(source, key, &file)
                    .context("repairing the download")?;
            }
        }
        (Location::Remote { .. }, Location::Remote { .. }) => {
            if !keys.is_empty() {
                provider
                    .copy(source, destination, &owned_keys(keys))
                    .context("repairing the copy")?;
            }
        }
        (Location::Local { .. }, Location::Local { .. }) => {
            bail!("cannot sync two local directories: one side must be a bucket URL")
        }
    }
    Ok(())
}

fn remove(provider: &LoadedPlugin, destination: &Location, keys: &[Key]) -> Result<()> {
    if keys.is_empty() {
        return Ok(());
    }
    match destination {
        Location::Local { path } => {
            let root = Path::new(path.as_str());
            for key in keys {
                remove_file_and_empty_parents(root, &root.join(key_to_relative_path(key)?))?;
            }
        }
        Location::Remote { .. } => {
            provider.delete(destination, &owned_keys(keys))?;
        }
    }
    Ok(())
}

/// Keys as the owned strings the provider calls take.
pub fn owned_keys<K: AsRef<str>>(keys: impl IntoIterator<Item = K>) -> Vec<String> {
    keys.into_iter().map(|k| k.as_ref().to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::md5_digest::Md5Digest;
    use crate::sync::plan::PlannedObject;

    fn version(size: u64, md5: u8) -> Fingerprint {
        Fingerprint::content(size, Md5Digest::from([md5; 16]))
    }

    /// A plan transferring `transfer` and deleting `delete` (each in key order).
    fn plan(transfer: &[&str], delete: &[&str]) -> SyncPlan {
        let objects = |keys: &[&str]| {
            keys.iter()
                .map(|k| PlannedObject {
                    key: Key::from(*k),
                    size: 1,
                })
                .collect()
        };
        SyncPlan {
            transfer: objects(transfer),
            delete: objects(delete),
            ..SyncPlan::default()
        }
    }

    fn inventory(entries: &[(&str, Fingerprint)]) -> Inventory {
        entries
            .iter()
            .map(|(k, f)| (Key::from(*k), f.clone()))
            .collect()
    }

    #[test]
    fn only_a_planned_key_still_as_found_may_be_overwritten_or_deleted() {
        let found = inventory(&[("changed", version(3, 1)), ("extra", version(2, 2))]);
        let plan = plan(&["changed", "missing"], &["extra", "moved"]);
        let mut planned = PlannedChanges::of(&plan, &found, true);
        planned.moved = ["moved"].into();
        assert!(planned.may_overwrite("changed", Some(&version(3, 1))));
        assert!(planned.may_overwrite("missing", None));
        assert!(!planned.may_overwrite("changed", Some(&version(3, 9))));
        assert!(!planned.may_overwrite("missing", Some(&version(1, 1))));
        assert!(!planned.may_overwrite("unplanned", None));
        assert!(planned.may_delete("extra", &version(2, 2)));
        assert!(!planned.may_delete("extra", &version(2, 7)));
        assert!(!planned.may_delete("changed", &version(3, 1)));
        assert!(!planned.may_delete("moved", &version(1, 1)));
        assert_eq!(planned.transfer_count(), 2);
    }

    #[test]
    fn drift_says_how_an_object_moved() {
        // Planned: "was" changed, "gone" deleted; "kept" unchanged.
        let found = inventory(&[("was", version(1, 1)), ("gone", version(1, 3))]);
        let plan = plan(&["missing", "was"], &["gone"]);
        let mut planned = PlannedChanges::of(&plan, &found, true);
        // Moved since planning: still named, so still told from `found`.
        planned.moved = ["was"].into();
        let kind = |key: &str, in_source, now: Option<&Fingerprint>| {
            planned.drift(&Key::from(key), in_source, now).change
        };
        let now = version(1, 2);
        assert_eq!(kind("new", false, Some(&now)), DriftKind::Appeared);
        assert_eq!(kind("missing", true, Some(&now)), DriftKind::Appeared);
        assert_eq!(kind("was", true, Some(&now)), DriftKind::Changed);
        assert_eq!(kind("gone", false, Some(&now)), DriftKind::Changed);
        // Not named, in the source: it compared equal, so it was there.
        assert_eq!(kind("kept", true, Some(&now)), DriftKind::Changed);
        assert_eq!(kind("kept", true, None), DriftKind::Vanished);
        assert_eq!(kind("was", true, None), DriftKind::Vanished);
    }

    #[test]
    fn versions_without_checksums_are_told_apart_by_their_time() {
        let at = |modified| Fingerprint {
            size: 4,
            md5: None,
            etag: None,
            modified: Some(modified),
        };
        assert!(same_version(&at(10), &at(10)));
        assert!(!same_version(&at(10), &at(11)));
        assert!(!same_version(&version(4, 1), &version(4, 2)));
    }
}
