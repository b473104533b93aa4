//! Deciding what a sync must do, from listings and checksums — never from a
//! tool's own idea of "changed" (aws compares size and mtime, s3cmd size and
//! MD5, gsutil mtime then checksum).

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use serde::Serialize;
use stowage_exclude::ExcludeMatcher;
use stowage_local_tree::{md5_file_digest, walk};
use stowage_plugin_api::{Location, ObjectEntry};

use crate::memory::release_free_memory;
use crate::plugin::LoadedPlugin;
use crate::sync::md5_digest::Md5Digest;
use crate::sync::planned::PlannedObjects;
use crate::sync::verify::owned_keys;

/// What is known about one object's content.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Fingerprint {
    /// Size in bytes.
    pub size: u64,
    /// Content MD5, when known.
    pub md5: Option<Md5Digest>,
    /// An ETag that is not an MD5: for a listed object, its multipart ETag
    /// (`<hex>-<parts>`); for a source, the multipart ETag its content was
    /// found to have when uploaded the same way (see [`crate::sync::multipart_etag`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etag: Option<Box<str>>,
    /// When a listed object was last modified (seconds since the epoch).
    #[serde(skip)]
    pub modified: Option<i64>,
}

impl Fingerprint {
    /// An object whose size and content MD5 are known.
    pub fn content(size: u64, md5: Md5Digest) -> Fingerprint {
        Fingerprint {
            size,
            md5: Some(md5),
            etag: None,
            modified: None,
        }
    }
}

/// An object key. Shared, not copied, between an inventory and the plans
/// and reports made from it (at 100,000 objects a copy of every key is
/// ~13 MB).
pub type Key = Arc<str>;

/// Key → fingerprint, for one side of a sync.
pub type Inventory = BTreeMap<Key, Fingerprint>;

/// `key` as a [`Key`]: the one `known` holds, if it holds it (one copy of a
/// key for both sides of a comparison: at typical key lengths ~100 bytes an
/// object), else a new one.
pub fn shared_key(known: &Inventory, key: &str) -> Key {
    match known.get_key_value(key) {
        Some((shared, _)) => shared.clone(),
        None => Key::from(key),
    }
}

/// The inventory of a local directory, with MD5s computed from the files,
/// leaving out excluded keys (keys `known` holds are shared, see [`shared_key`]).
pub fn local_inventory(
    root: &Path,
    excludes: &ExcludeMatcher,
    known: &Inventory,
) -> Result<Inventory> {
    let mut inventory = Inventory::new();
    for file in walk(root)? {
        if excludes.is_excluded(&file.key) {
            continue;
        }
        let md5 = Md5Digest::from(md5_file_digest(&file.path)?);
        inventory.insert(
            shared_key(known, &file.key),
            Fingerprint::content(file.size, md5),
        );
    }
    Ok(inventory)
}

/// Whether a listed key is an object to compare: not excluded, and not a
/// folder marker (a key ending in `/`, which some consoles create: not an
/// object a file can hold, and no tool syncs it as such).
pub fn is_listed_object(key: &str, excludes: &ExcludeMatcher) -> bool {
    !key.ends_with('/') && !excludes.is_excluded(key)
}

/// A listed object's key and fingerprint (an ETag is kept only when it is
/// a multipart one: otherwise it is the MD5).
pub fn listed_fingerprint(entry: ObjectEntry) -> (String, Fingerprint) {
    let fingerprint = Fingerprint {
        size: entry.size,
        md5: entry.md5.and_then(|m| Md5Digest::from_hex(&m)),
        etag: entry
            .etag
            .filter(|t| t.contains('-'))
            .map(|t| t.as_str().into()),
        modified: entry.last_modified,
    };
    (entry.key, fingerprint)
}

/// The inventory of a listing, leaving out excluded keys and folder
/// markers (see [`is_listed_object`]).
///
/// Takes the plugin's list as it came (turning it into a `Vec` first would
/// copy it: it was allocated by the plugin's library). Keys `known` holds
/// are shared (see [`shared_key`]).
pub fn listed_inventory(
    entries: Vec<ObjectEntry>,
    excludes: &ExcludeMatcher,
    known: &Inventory,
) -> Inventory {
    let inventory = listed_objects(entries, excludes, known).collect();
    release_free_memory();
    inventory
}

/// The objects of listed `entries`, as [`listed_inventory`] takes them.
fn listed_objects<'a>(
    entries: impl IntoIterator<Item = ObjectEntry> + 'a,
    excludes: &'a ExcludeMatcher,
    known: &'a Inventory,
) -> impl Iterator<Item = (Key, Fingerprint)> + 'a {
    entries
        .into_iter()
        .filter(|e| is_listed_object(&e.key, excludes))
        .map(|e| {
            let (key, fingerprint) = listed_fingerprint(e);
            (shared_key(known, &key), fingerprint)
        })
}

/// The inventory of either side of a sync: local directories are hashed,
/// remote ones listed through `provider`. Keys `known` holds (the other
/// side's inventory) are shared, see [`shared_key`].
pub fn inventory_of(
    location: &Location,
    provider: &LoadedPlugin,
    excludes: &ExcludeMatcher,
    known: &Inventory,
) -> Result<Inventory> {
    match location {
        Location::Local { path } => local_inventory(Path::new(path.as_str()), excludes, known),
        Location::Remote { .. } => {
            let entries = provider.list(location)?;
            Ok(listed_inventory(entries, excludes, known))
        }
    }
}

/// Asking for keys one by one (a request each) pays when they are fewer than
/// one in this many of the objects a listing returns (1,000 a request): 50
/// single-key requests, several at once, for each listing page saved.
pub const OBJECTS_PER_KEY_WORTH_ASKING: usize = 20;

/// The entries of `keys` below `location`, those that exist: asked for one
/// by one (the plugin's `list_keys`) when they are few next to the
/// `objects` a whole listing would return, else picked from a whole
/// listing as it comes.
/// Either way they are exactly what a listing shows of them.
pub fn inventory_of_keys(
    provider: &LoadedPlugin,
    location: &Location,
    keys: &[Key],
    objects: usize,
    excludes: &ExcludeMatcher,
) -> Result<Inventory> {
    if worth_asking_for(keys.len(), objects) {
        let entries = provider.list_keys(location, &owned_keys(keys))?;
        return Ok(listed_inventory(entries, excludes, &Inventory::new()));
    }
    let asked: HashSet<&str> = keys.iter().map(|k| &**k).collect();
    inventory_of_listed(provider, location, excludes, &|key| asked.contains(key))
}

/// Whether `keys` keys of a location of `objects` objects are cheaper
/// asked for one by one than found in a listing.
pub fn worth_asking_for(keys: usize, objects: usize) -> bool {
    keys * OBJECTS_PER_KEY_WORTH_ASKING <= objects
}

/// The objects of `location` whose keys `asked` accepts, found in its
/// listing (walked a page at a time where the plugin lists pages).
pub fn inventory_of_listed(
    provider: &LoadedPlugin,
    location: &Location,
    excludes: &ExcludeMatcher,
    asked: &dyn Fn(&str) -> bool,
) -> Result<Inventory> {
    let mut inventory = Inventory::new();
    let none = Inventory::new();
    provider.list_each(location, &mut |entries| {
        let entries = entries.into_iter().filter(|e| asked(&e.key));
        inventory.extend(listed_objects(entries, excludes, &none));
        Ok(())
    })?;
    Ok(inventory)
}

/// Whether the MD5s listed for `location` are its objects' content MD5s.
///
/// A listed MD5 comes from the ETag, which is the content's MD5 only for a
/// single-part object in a bucket without SSE-KMS or SSE-C encryption (and
/// not on every S3-compatible store). Where an object of the same size as
/// its source lists another MD5, the smallest such object is downloaded and
/// hashed: a changed object lists its content's MD5, an opaque ETag does
/// not. Nothing doubtful, or a local directory: `true`, without a request.
pub fn listed_md5s_are_content(
    provider: &LoadedPlugin,
    location: &Location,
    listed: &Inventory,
    source: &Inventory,
) -> Result<bool> {
    let mut doubt = SmallestDoubt::default();
    for (key, wanted) in source {
        doubt.consider(key, wanted, listed.get(key));
    }
    doubt.settle(provider, location)
}

/// Whether the object `there` puts its listed MD5 in doubt: the same size
/// as the source object `wanted`, another listed MD5 (a changed object, or
/// an ETag that is no MD5).
fn doubts(wanted: &Fingerprint, there: &Fingerprint) -> bool {
    there.size == wanted.size
        && there.md5.is_some()
        && wanted.md5.is_some()
        && there.md5 != wanted.md5
}

/// Of the listed objects that put their listed MD5 in doubt (see
/// [`listed_md5s_are_content`]), the smallest, met one at a time.
#[derive(Default)]
pub struct SmallestDoubt(Option<(u64, Key, Fingerprint)>);

impl SmallestDoubt {
    /// Meets the source object `wanted` and the object listed for its `key`.
    pub fn consider(&mut self, key: &Key, wanted: &Fingerprint, there: Option<&Fingerprint>) {
        let Some(there) = there.filter(|there| doubts(wanted, there)) else {
            return;
        };
        if self.0.as_ref().is_none_or(|(size, ..)| there.size < *size) {
            self.0 = Some((there.size, key.clone(), there.clone()));
        }
    }

    /// Whether the MD5s listed below `location` are content MD5s: `true`
    /// with nothing in doubt or for a local directory; else the smallest
    /// doubtful object is downloaded and hashed.
    pub fn settle(self, provider: &LoadedPlugin, location: &Location) -> Result<bool> {
        match self.0 {
            Some((_, key, there)) if location.remote().is_some() => {
                md5_is_content(provider, location, &key, &there)
            }
            _ => Ok(true),
        }
    }
}

/// Whether the MD5 listed for `key` below `location` (`listed`) is its
/// content's: the object is downloaded and hashed.
fn md5_is_content(
    provider: &LoadedPlugin,
    location: &Location,
    key: &str,
    listed: &Fingerprint,
) -> Result<bool> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("checksum-probe");
    provider
        .get(location, key, &file)
        .context("cannot read an object to check what its ETag is")?;
    let content = Md5Digest::from(md5_file_digest(&file)?);
    Ok(listed.md5 == Some(content))
}

/// Forgets the MD5s of a listing whose ETags are not content MD5s (see
/// [`listed_md5s_are_content`]): its objects then compare by size only,
/// and tell versions apart by their modification time.
pub fn forget_listed_md5s(inventory: &mut Inventory) {
    for fingerprint in inventory.values_mut() {
        fingerprint.md5 = None;
    }
}

/// How one destination object compares with its source.
///
/// MD5s decide when both are known. When one is not (a multipart upload's
/// ETag is no MD5), equal multipart ETags decide; otherwise only the size
/// can be checked, and the object is [`Comparison::SizeOnly`] — never
/// silently "same".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Comparison {
    /// Same size and same MD5.
    Same,
    /// Missing, another size, or another MD5.
    Differs,
    /// Same size, but one MD5 is unknown (e.g. a multipart ETag).
    SizeOnly,
}

/// Compares a destination object (if any) with its source.
pub fn compare(source: &Fingerprint, destination: Option<&Fingerprint>) -> Comparison {
    match destination {
        None => Comparison::Differs,
        Some(d) if d.size != source.size => Comparison::Differs,
        Some(d) => match (&source.md5, &d.md5, &source.etag, &d.etag) {
            (Some(a), Some(b), _, _) if a == b => Comparison::Same,
            (Some(_), Some(_), _, _) => Comparison::Differs,
            // The same multipart ETag: the same parts, so the same content.
            (_, _, Some(a), Some(b)) if a == b => Comparison::Same,
            _ => Comparison::SizeOnly,
        },
    }
}

/// One object in a plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PlannedObject {
    /// Key relative to the sync root.
    pub key: Key,
    /// Its size in bytes (the source's for transfers, the destination's for deletes).
    pub size: u64,
}

/// What a sync must do to make the destination equal the source. Each
/// list is in key order (the order the two sides are compared in), held
/// compactly ([`PlannedObjects`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SyncPlan {
    /// Missing or changed in the destination: to transfer.
    pub transfer: PlannedObjects,
    /// In the destination only: to delete (when deleting).
    pub delete: PlannedObjects,
    /// Same size, checksum unknowable: the tool may or may not transfer them.
    pub possibly_changed: PlannedObjects,
    /// Objects already equal.
    pub unchanged: u64,
}

impl SyncPlan {
    /// Compares the two inventories; deletes are planned only if `delete`.
    pub fn new(source: &Inventory, destination: &Inventory, delete: bool) -> SyncPlan {
        let mut plan = SyncPlan::default();
        for (key, fingerprint) in source {
            plan.meet(key, Some(fingerprint), destination.get(key), delete);
        }
        for (key, fingerprint) in destination {
            if !source.contains_key(key) {
                plan.meet(key, None, Some(fingerprint), delete);
            }
        }
        plan
    }

    /// Plans one key, met in key order (as the source has it, and as the
    /// destination's listing has it); deletes are planned only if
    /// `delete`. Returns whether the plan names the key.
    pub fn meet(
        &mut self,
        key: &Key,
        source: Option<&Fingerprint>,
        destination: Option<&Fingerprint>,
        delete: bool,
    ) -> bool {
        let (object, list) = match (source, destination) {
            (Some(wanted), there) => {
                let list = match compare(wanted, there) {
                    Comparison::Same => {
                        self.unchanged += 1;
                        return false;
                    }
                    Comparison::Differs => &mut self.transfer,
                    Comparison::SizeOnly => &mut self.possibly_changed,
                };
                (wanted, list)
            }
            (None, Some(there)) if delete => (there, &mut self.delete),
            (None, _) => return false,
        };
        list.push(key, object.size);
        true
    }

    /// This plan with every possibly changed object to be transferred: where
    /// the destination's ETags are not MD5s, the size cannot tell a changed
    /// object from an unchanged one, and only transferring it again makes
    /// the destination certainly equal the source.
    pub fn transferring_the_doubtful(mut self) -> SyncPlan {
        let doubtful = std::mem::take(&mut self.possibly_changed);
        self.transfer = self.transfer.merged_with(&doubtful);
        self
    }

    /// Whether the plan transfers `key`, or leaves it to the tool
    /// (possibly changed).
    pub fn transfers(&self, key: &str) -> bool {
        self.transfer.contains(key) || self.possibly_changed.contains(key)
    }

    /// Whether the plan deletes `key`.
    pub fn deletes(&self, key: &str) -> bool {
        self.delete.contains(key)
    }

    /// Whether the plan names `key` at all.
    pub fn names(&self, key: &str) -> bool {
        self.transfers(key) || self.deletes(key)
    }

    /// How many keys it names.
    pub fn named_count(&self) -> usize {
        self.transfer.len() + self.possibly_changed.len() + self.delete.len()
    }

    /// Every key it names: transfers, possibly changed, deletes.
    pub fn named(&self) -> impl Iterator<Item = PlannedObject> + '_ {
        let named = self.transfer.iter().chain(self.possibly_changed.iter());
        named.chain(self.delete.iter())
    }

    /// Total bytes to transfer.
    pub fn transfer_bytes(&self) -> u64 {
        self.transfer.total_size()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fingerprint whose MD5 (if any) is `md5` repeated 16 times.
    fn fp(size: u64, md5: Option<u8>) -> Fingerprint {
        Fingerprint {
            size,
            md5: md5.map(|byte| Md5Digest::from([byte; 16])),
            etag: None,
            modified: None,
        }
    }

    #[test]
    fn a_same_size_object_with_another_checksum_is_transferred() {
        let source = Inventory::from([("a".into(), fp(3, Some(1))), ("b".into(), fp(3, Some(2)))]);
        let destination = Inventory::from([
            ("a".into(), fp(3, Some(1))),
            ("b".into(), fp(3, Some(3))),
            ("c".into(), fp(1, None)),
        ]);
        let plan = SyncPlan::new(&source, &destination, true);
        assert_eq!(plan.unchanged, 1);
        let planned = |key: &str, size| {
            PlannedObjects::from_iter([PlannedObject {
                key: key.into(),
                size,
            }])
        };
        assert_eq!(plan.transfer, planned("b", 3));
        assert_eq!(plan.delete, planned("c", 1));
        assert!(SyncPlan::new(&source, &destination, false)
            .delete
            .is_empty());
    }

    #[test]
    fn an_unknown_checksum_of_the_same_size_is_only_possibly_changed() {
        let source = Inventory::from([("a".into(), fp(3, Some(1)))]);
        let destination = Inventory::from([("a".into(), fp(3, None))]);
        let plan = SyncPlan::new(&source, &destination, true);
        assert_eq!(plan.possibly_changed.len(), 1);
        assert!(plan.transfer.is_empty());
    }
}
