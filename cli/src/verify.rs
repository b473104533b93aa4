//! Proving a sync's result: list the destination, compare every object with
//! the source's checksums, repair what the tool got wrong, and say what
//! could only be checked by size.
//!
//! This lives once in the host rather than in each plugin: the tools
//! disagree on what "changed" means (`aws s3 sync` skips a same-size file
//! with an older mtime; s3cmd falls back to size-only for multipart ETags),
//! and a restore must be right whichever tool runs it.

use std::path::Path;

use anyhow::{anyhow, bail, Result};
use serde::Serialize;
use stowage_core::abi_stable::std_types::{RString, RVec};
use stowage_core::{ExcludeMatcher, Location, ProviderBox};
use stowage_plugin_support::local_tree::{key_to_relative_path, remove_file_and_empty_parents};

use crate::plan::{compare, inventory_of, Comparison, Inventory, Key};

/// What verification found and did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Verification {
    /// Objects whose size and MD5 match the source.
    pub verified: u64,
    /// Objects whose MD5 cannot be known (multipart ETag): checked by size only.
    pub size_only: Vec<Key>,
    /// Objects the tool left missing or wrong, transferred again.
    pub repaired: Vec<Key>,
    /// Extraneous objects the tool left behind, deleted.
    pub removed: Vec<Key>,
}

/// Verifies `destination` against `source_inventory` and repairs it.
///
/// `delete` says whether objects not in the source must be gone. Repaired
/// objects are checked once more; any that still differ fail the call.
pub fn verify_and_repair(
    provider: &ProviderBox,
    source: &Location,
    destination: &Location,
    source_inventory: &Inventory,
    excludes: &ExcludeMatcher,
    delete: bool,
) -> Result<Verification> {
    let already_there = |_: &[Key]| Ok(());
    verify_and_repair_with(
        provider,
        source,
        destination,
        source_inventory,
        excludes,
        delete,
        &already_there,
    )
}

/// [`verify_and_repair`] for a source that holds only some of its objects
/// as files: `prepare(keys)` is called before those keys are transferred
/// again, to make them present (a restore extracts them from the archive).
pub fn verify_and_repair_with(
    provider: &ProviderBox,
    source: &Location,
    destination: &Location,
    source_inventory: &Inventory,
    excludes: &ExcludeMatcher,
    delete: bool,
    prepare: &dyn Fn(&[Key]) -> Result<()>,
) -> Result<Verification> {
    crate::interrupt::check()?;
    let destination_inventory = inventory_of(destination, provider, excludes)?;
    let mut verification = Verification::default();
    let mut wrong = Vec::new();
    for (key, fingerprint) in source_inventory {
        match compare(fingerprint, destination_inventory.get(key)) {
            Comparison::Same => verification.verified += 1,
            Comparison::SizeOnly => verification.size_only.push(key.clone()),
            Comparison::Differs => wrong.push(key.clone()),
        }
    }
    let extraneous: Vec<Key> = if delete {
        destination_inventory
            .keys()
            .filter(|k| !source_inventory.contains_key(*k))
            .cloned()
            .collect()
    } else {
        Vec::new()
    };
    if wrong.is_empty() && extraneous.is_empty() {
        return Ok(verification);
    }

    if !wrong.is_empty() {
        prepare(&wrong)?;
    }
    transfer_again(provider, source, destination, &wrong)?;
    remove(provider, destination, &extraneous)?;

    let after = inventory_of(destination, provider, excludes)?;
    for key in &wrong {
        match compare(&source_inventory[key], after.get(key)) {
            Comparison::Same => verification.verified += 1,
            Comparison::SizeOnly => verification.size_only.push(key.clone()),
            Comparison::Differs => {
                bail!("verification failed: {key} in {destination} still differs from the source after a repair")
            }
        }
    }
    if let Some(key) = extraneous.iter().find(|k| after.contains_key(*k)) {
        bail!("verification failed: {key} in {destination} could not be deleted");
    }
    verification.repaired = wrong;
    verification.removed = extraneous;
    Ok(verification)
}

fn transfer_again(
    provider: &ProviderBox,
    source: &Location,
    destination: &Location,
    keys: &[Key],
) -> Result<()> {
    match (source, destination) {
        (Location::Local { path }, Location::Remote { .. }) => {
            for key in keys {
                let file = Path::new(path.as_str()).join(key_to_relative_path(key)?);
                let file = file.to_string_lossy();
                provider
                    .put(file.as_ref().into(), destination, key.as_ref().into())
                    .into_result()
                    .map_err(|e| anyhow!("repair upload of {key} failed: {e}"))?;
            }
        }
        (Location::Remote { .. }, Location::Local { path }) => {
            for key in keys {
                let file = Path::new(path.as_str()).join(key_to_relative_path(key)?);
                if let Some(parent) = file.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                let file = file.to_string_lossy();
                provider
                    .get(source, key.as_ref().into(), file.as_ref().into())
                    .into_result()
                    .map_err(|e| anyhow!("repair download of {key} failed: {e}"))?;
            }
        }
        (Location::Remote { .. }, Location::Remote { .. }) => {
            if !keys.is_empty() {
                provider
                    .copy(source, destination, &to_rvec(keys))
                    .into_result()
                    .map_err(|e| anyhow!("repair copy into {destination} failed: {e}"))?;
            }
        }
        (Location::Local { .. }, Location::Local { .. }) => {
            bail!("cannot sync two local directories: one side must be a bucket URL")
        }
    }
    Ok(())
}

fn remove(provider: &ProviderBox, destination: &Location, keys: &[Key]) -> Result<()> {
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
            provider
                .delete(destination, &to_rvec(keys))
                .into_result()
                .map_err(|e| {
                    anyhow!("deleting extraneous objects from {destination} failed: {e}")
                })?;
        }
    }
    Ok(())
}

/// Keys as the FFI vector the provider calls take.
pub fn to_rvec<K: AsRef<str>>(keys: impl IntoIterator<Item = K>) -> RVec<RString> {
    keys.into_iter()
        .map(|k| RString::from(k.as_ref()))
        .collect()
}
