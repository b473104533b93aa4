//! A bucket's listing walked beside the source's inventory, in key order,
//! one object at a time: what planning and verification compare without
//! holding the listing (at 1,000,000 objects a listing held whole is
//! hundreds of MiB). Where the plugin lists pages
//! ([`LoadedPlugin::list_each`]), no more than a page of it is in memory
//! at once; a listing taken before the source was known is read back from
//! disk ([`SpilledObjects`]).

use std::iter::Peekable;
use std::path::Path;

use anyhow::{bail, Result};
use stowage_exclude::ExcludeMatcher;
use stowage_local_tree::{md5_file_digest, KeyOrderWalk};
use stowage_plugin_api::Location;

use crate::plugin::LoadedPlugin;
use crate::sync::md5_digest::Md5Digest;
use crate::sync::plan::{is_listed_object, listed_fingerprint};
use crate::sync::plan::{Fingerprint, Inventory, Key};
use crate::sync::spill::SpilledObjects;

/// A sync's source objects, walked in key order as often as a step
/// needs: held in memory ([`Inventory`]), or read back from disk (a
/// restore's archive, which would be hundreds of MiB at 1,000,000 objects).
pub trait SourceObjects: Sync {
    /// Its objects, in key order.
    fn walk(&self) -> Result<SourceWalk<'_>>;
}

/// A walk of [`SourceObjects`].
pub type SourceWalk<'a> = Box<dyn Iterator<Item = Result<(Key, Fingerprint)>> + 'a>;

/// A [`SourceWalk`] taken one object at a time, each looked at first.
pub struct SourceCursor<'a>(Peekable<SourceWalk<'a>>);

impl<'a> SourceCursor<'a> {
    /// The objects of `walk`, none taken yet.
    pub fn new(walk: SourceWalk<'a>) -> Self {
        SourceCursor(walk.peekable())
    }

    /// The next object, if `is_next` accepts its key (an object that
    /// cannot be read is an error).
    pub fn next_if(
        &mut self,
        is_next: impl FnOnce(&str) -> bool,
    ) -> Result<Option<(Key, Fingerprint)>> {
        self.0
            .next_if(|object| object.as_ref().map_or(true, |(key, _)| is_next(key)))
            .transpose()
    }
}

impl SourceObjects for Inventory {
    fn walk(&self) -> Result<SourceWalk<'_>> {
        Ok(Box::new(
            self.iter()
                .map(|(key, found)| Ok((key.clone(), found.clone()))),
        ))
    }
}

/// One key as the merge meets it: the source's fingerprint, the listed
/// one, or both.
pub struct Met<'a> {
    /// The key: the source's own where it has one.
    pub key: &'a Key,
    /// The source's object.
    pub source: Option<&'a Fingerprint>,
    /// The destination's object, as listed.
    pub listed: Option<Fingerprint>,
}

/// How a merge takes the listed objects.
#[derive(Clone, Copy)]
pub struct Taking<'k> {
    /// Listed keys are skipped unless this accepts them.
    pub keep: &'k dyn Fn(&str) -> bool,
    /// Whether their MD5s are forgotten: compared by size only, because
    /// they are not content MD5s (the bucket's ETags are not).
    pub md5s_forgotten: bool,
}

/// Walks the destination `location` (listed through `provider`, or, if
/// local, its files in key order, each hashed as it comes) beside `source`, calling `visit` once for every key of either
/// in key order. Listed keys are taken as `taking` says; excluded ones and
/// folder markers are skipped (the source is taken as it is). Returns how
/// many listed objects were met.
pub fn merge_listing(
    provider: &LoadedPlugin,
    location: &Location,
    source: &dyn SourceObjects,
    excludes: &ExcludeMatcher,
    taking: Taking<'_>,
    visit: &mut dyn FnMut(Met<'_>) -> Result<()>,
) -> Result<u64> {
    let mut merge = Merge::new(source.walk()?, taking.md5s_forgotten);
    let keep = |key: &str| is_listed_object(key, excludes) && (taking.keep)(key);
    match location {
        Location::Local { path } => {
            // One file at a time, in key order, each hashed as it comes.
            let mut files = KeyOrderWalk::after(Path::new(path.as_str()), "")?;
            while let Some(file) = files.next_file()? {
                if keep(&file.key) {
                    let md5 = Md5Digest::from(md5_file_digest(&file.path)?);
                    merge.listed(file.key, Fingerprint::content(file.size, md5), visit)?;
                }
            }
        }
        Location::Remote { .. } => provider.list_each(location, &mut |mut entries| {
            // A whole listing comes in any order; a page is sorted already.
            entries.sort_unstable_by(|a, b| a.key.cmp(&b.key));
            for entry in entries.into_iter().filter(|e| keep(&e.key)) {
                let (key, fingerprint) = listed_fingerprint(entry);
                merge.listed(key, fingerprint, visit)?;
            }
            Ok(())
        })?,
    }
    merge.finish(visit)
}

/// Walks a listing spilled to disk beside `source`, as [`merge_listing`]
/// does a live one: `visit` meets every key of either in key order, the
/// listed ones taken as `taking` says. Returns how many listed objects
/// were met.
pub fn merge_spilled(
    spilled: &SpilledObjects,
    source: &dyn SourceObjects,
    taking: Taking<'_>,
    visit: &mut dyn FnMut(Met<'_>) -> Result<()>,
) -> Result<u64> {
    let mut merge = Merge::new(source.walk()?, taking.md5s_forgotten);
    for object in spilled.read()? {
        let (key, fingerprint) = object?;
        if (taking.keep)(&key) {
            merge.listed(key, fingerprint, visit)?;
        }
    }
    merge.finish(visit)
}

/// The state of one merge: the source objects not met yet, and the last
/// listed key (a listing must come in key order).
struct Merge<'s> {
    pending: SourceCursor<'s>,
    last: Option<String>,
    listed: u64,
    /// Whether the listed MD5s are forgotten.
    md5s_forgotten: bool,
}

impl<'s> Merge<'s> {
    fn new(source: SourceWalk<'s>, md5s_forgotten: bool) -> Self {
        Merge {
            pending: SourceCursor::new(source),
            last: None,
            listed: 0,
            md5s_forgotten,
        }
    }

    /// Meets the listed `key`: first every source key before it.
    fn listed(
        &mut self,
        key: String,
        mut listed: Fingerprint,
        visit: &mut dyn FnMut(Met<'_>) -> Result<()>,
    ) -> Result<()> {
        if let Some(last) = self.last.as_ref().filter(|last| **last >= key) {
            bail!("the listing is not in key order: {key:?} came after {last:?}");
        }
        if self.md5s_forgotten {
            listed.md5 = None;
        }
        while let Some((source_key, fingerprint)) = self.pending.next_if(|k| k < key.as_str())? {
            visit(Met {
                key: &source_key,
                source: Some(&fingerprint),
                listed: None,
            })?;
        }
        match self.pending.next_if(|k| k == key)? {
            Some((source_key, fingerprint)) => visit(Met {
                key: &source_key,
                source: Some(&fingerprint),
                listed: Some(listed),
            })?,
            None => visit(Met {
                key: &Key::from(key.as_str()),
                source: None,
                listed: Some(listed),
            })?,
        }
        self.listed += 1;
        self.last = Some(key);
        Ok(())
    }

    /// Meets the source keys after the last listed one; the listed count.
    fn finish(mut self, visit: &mut dyn FnMut(Met<'_>) -> Result<()>) -> Result<u64> {
        while let Some((key, fingerprint)) = self.pending.next_if(|_| true)? {
            visit(Met {
                key: &key,
                source: Some(&fingerprint),
                listed: None,
            })?;
        }
        Ok(self.listed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::md5_digest::Md5Digest;
    use crate::sync::plan::SyncPlan;

    fn fingerprint(size: u64) -> Fingerprint {
        Fingerprint {
            size,
            md5: None,
            etag: None,
            modified: None,
        }
    }

    /// A key met, with the sizes of its source and listed objects.
    type MetSizes = (String, Option<u64>, Option<u64>);

    /// What a merge of `source` with the `listed` keys meets.
    fn met(source: &[(&str, u64)], listed: &[(&str, u64)]) -> Result<Vec<MetSizes>> {
        let source: Inventory = source
            .iter()
            .map(|(k, size)| (Key::from(*k), fingerprint(*size)))
            .collect();
        let mut merge = Merge::new(source.walk().unwrap(), false);
        let mut seen = Vec::new();
        let mut visit = |met: Met<'_>| {
            seen.push((
                met.key.to_string(),
                met.source.map(|f| f.size),
                met.listed.map(|f| f.size),
            ));
            Ok(())
        };
        for (key, size) in listed {
            merge.listed(key.to_string(), fingerprint(*size), &mut visit)?;
        }
        let count = merge.finish(&mut visit)?;
        assert_eq!(count, listed.len() as u64);
        Ok(seen)
    }

    #[test]
    fn every_key_of_either_side_is_met_once_in_key_order() {
        let seen = met(
            &[("a", 1), ("b/c", 2), ("d", 3)],
            &[("a", 10), ("a/x", 11), ("d", 13), ("e", 14)],
        )
        .unwrap();
        assert_eq!(
            seen,
            [
                ("a".to_string(), Some(1), Some(10)),
                ("a/x".to_string(), None, Some(11)),
                ("b/c".to_string(), Some(2), None),
                ("d".to_string(), Some(3), Some(13)),
                ("e".to_string(), None, Some(14)),
            ]
        );
    }

    #[test]
    fn a_plan_made_walking_the_listing_is_the_plan_of_the_whole_listing() {
        let version = |size, md5: Option<u8>| Fingerprint {
            md5: md5.map(|byte| Md5Digest::from([byte; 16])),
            ..fingerprint(size)
        };
        let inventory = |objects: &[(&str, Fingerprint)]| -> Inventory {
            objects
                .iter()
                .map(|(k, f)| (Key::from(*k), f.clone()))
                .collect()
        };
        let source = inventory(&[
            ("a", version(1, Some(1))),
            ("b", version(2, Some(2))),
            ("c", version(3, Some(3))),
            ("d/e", version(4, Some(4))),
        ]);
        let listed = inventory(&[
            ("a", version(1, Some(1))),
            ("b", version(2, Some(9))),
            ("c", version(3, None)),
            ("d", version(5, Some(5))),
            ("z", version(6, Some(6))),
        ]);
        let mut plan = SyncPlan::default();
        let mut named = Vec::new();
        let mut visit = |met: Met<'_>| {
            if plan.meet(met.key, met.source, met.listed.as_ref(), true) {
                named.push(met.key.to_string());
            }
            Ok(())
        };
        let mut merge = Merge::new(source.walk().unwrap(), false);
        for (key, listed) in &listed {
            merge
                .listed(key.to_string(), listed.clone(), &mut visit)
                .unwrap();
        }
        merge.finish(&mut visit).unwrap();
        assert_eq!(plan, SyncPlan::new(&source, &listed, true));
        assert_eq!(named, ["b", "c", "d", "d/e", "z"]);
    }

    #[test]
    fn a_listing_out_of_key_order_is_refused() {
        let error = met(&[], &[("b", 1), ("a", 1)]).unwrap_err();
        assert!(error.to_string().contains("not in key order"), "{error}");
        assert!(met(&[], &[("a", 1), ("a", 1)]).is_err());
    }
}
