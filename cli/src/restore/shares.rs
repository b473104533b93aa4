//! Which shard restores what: whole components first, and the keys of a
//! component only when it is too big for one shard.
//!
//! A shard fetches (and validates) the tarball of every component it has a
//! share of, so spreading every component's keys over all shards would
//! make every shard fetch the whole archive. Instead the components are
//! dealt out by their tarballs' sizes, the biggest first, each to the
//! least loaded shard (ties to the lowest index). A component of one and a
//! half fair shares or more (a fair share: the archive's tarball bytes / N) is
//! first cut into `round(size / share)` pieces, dealt to that many
//! different shards;
//! its keys go to the pieces by [`Shard::of_key`] modulo the piece count.
//! Every shard reads the same outer tar headers, so every shard deals the
//! same way, whatever it restores: the split depends only on the archive
//! and N (not on `--only` or `--skip`, so a shard re-run with other
//! options still owns the same keys).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::restore::shard::Shard;

/// This shard's share of each component of an archive.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ShardShares {
    /// The shard that restores.
    #[serde(skip)]
    shard: Shard,
    /// Per component, the shard of each of its pieces: a key's piece is
    /// [`Shard::of_key`] modulo the piece count.
    pieces: BTreeMap<String, Vec<u32>>,
}

impl ShardShares {
    /// Every key of every component: an unsharded restore.
    pub fn whole() -> ShardShares {
        ShardShares {
            shard: Shard::WHOLE,
            pieces: BTreeMap::new(),
        }
    }

    /// `shard`'s share of an archive whose component tarballs have these
    /// names and sizes (in bytes), dealt as the module docs say.
    pub fn deal<'a>(shard: Shard, tarballs: impl IntoIterator<Item = (&'a str, u64)>) -> Self {
        let mut tarballs: Vec<(&str, u64)> = tarballs.into_iter().collect();
        tarballs.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let count = shard.count as usize;
        let total: u64 = tarballs.iter().map(|(_, size)| size).sum();
        let fair_share = total.div_ceil(count as u64).max(1);
        let mut loads = vec![0u64; count];
        let mut pieces = BTreeMap::new();
        for (component, size) in tarballs {
            let piece_count = (((size + fair_share / 2) / fair_share) as usize).clamp(1, count);
            let piece_size = size.div_ceil(piece_count as u64);
            let mut owners: Vec<u32> = Vec::with_capacity(piece_count);
            for _ in 0..piece_count {
                let least_loaded = (0..count)
                    .filter(|&s| !owners.contains(&(s as u32)))
                    .min_by_key(|&s| (loads[s], s))
                    .expect("fewer pieces than shards");
                loads[least_loaded] += piece_size;
                owners.push(least_loaded as u32);
            }
            pieces.insert(component.to_string(), owners);
        }
        ShardShares { shard, pieces }
    }

    /// The shard whose share this is.
    pub fn shard(&self) -> Shard {
        self.shard
    }

    /// The shard of each piece of each component.
    pub fn pieces(&self) -> &BTreeMap<String, Vec<u32>> {
        &self.pieces
    }

    /// Whether this shard has a share of `component`: then it fetches and
    /// validates its tarball.
    pub fn has_part_of(&self, component: &str) -> bool {
        !self.shard.is_sharded()
            || self
                .pieces
                .get(component)
                .is_some_and(|owners| owners.contains(&self.shard.index))
    }

    /// Whether `component` is in the archive but wholly other shards'.
    pub fn is_others(&self, component: &str) -> bool {
        self.shard.is_sharded()
            && self
                .pieces
                .get(component)
                .is_some_and(|owners| !owners.contains(&self.shard.index))
    }

    /// Whether `key` of `component` is this shard's to restore.
    pub fn owns(&self, component: &str, key: &str) -> bool {
        if !self.shard.is_sharded() {
            return true;
        }
        match self.pieces.get(component).map(Vec::as_slice) {
            None | Some([]) => false,
            Some([owner]) => *owner == self.shard.index,
            Some(owners) => {
                let piece = Shard::of_key(component, key, owners.len() as u32);
                owners[piece as usize] == self.shard.index
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::sync::plan::{Fingerprint, Inventory, Key, SyncPlan};
    use crate::sync::planned::PlannedObjects;

    fn shares(index: u32, count: u32, tarballs: &[(&str, u64)]) -> ShardShares {
        ShardShares::deal(Shard::new(index, count).unwrap(), tarballs.iter().copied())
    }

    #[test]
    fn components_smaller_than_a_share_go_whole_to_the_least_loaded_shard() {
        let tarballs = [
            ("artifacts", 40),
            ("lfs", 30),
            ("registry", 20),
            ("uploads", 10),
        ];
        let dealt = shares(0, 3, &tarballs);
        let expected: BTreeMap<String, Vec<u32>> = [
            ("artifacts", vec![0]),
            ("lfs", vec![1]),
            ("registry", vec![2]),
            ("uploads", vec![2]),
        ]
        .into_iter()
        .map(|(c, o)| (c.to_string(), o))
        .collect();
        assert_eq!(dealt.pieces(), &expected);
        assert!(dealt.has_part_of("artifacts") && !dealt.has_part_of("lfs"));
        assert!(dealt.is_others("lfs") && !dealt.is_others("artifacts"));
        assert!(!dealt.is_others("not in the archive"));
        assert!(dealt.owns("artifacts", "any key") && !dealt.owns("uploads", "any key"));
    }

    #[test]
    fn a_component_bigger_than_a_share_is_cut_over_several_shards() {
        // 1000 of 1030 bytes: a fair share is 258, so registry is cut in 4.
        // lfs and uploads, far below a share, stay whole.
        let tarballs = [("registry", 1000), ("lfs", 20), ("uploads", 10)];
        let dealt = shares(1, 4, &tarballs);
        assert_eq!(dealt.pieces()["registry"], vec![0, 1, 2, 3]);
        assert_eq!(dealt.pieces()["lfs"], vec![0]);
        assert_eq!(dealt.pieces()["uploads"], vec![1]);
        // Half as big: two pieces, on two shards.
        let tarballs = [("registry", 500), ("lfs", 500), ("uploads", 30)];
        let dealt = shares(0, 4, &tarballs);
        assert_eq!(dealt.pieces()["lfs"], vec![0, 1]);
        assert_eq!(dealt.pieces()["registry"], vec![2, 3]);
    }

    #[test]
    fn every_shard_deals_alike_whatever_the_order_it_read() {
        let tarballs = [("a", 5), ("b", 7), ("c", 7), ("d", 1), ("e", 30)];
        let mut reversed = tarballs;
        reversed.reverse();
        for index in 0..3 {
            assert_eq!(
                shares(index, 3, &tarballs).pieces(),
                shares(0, 3, &reversed).pieces()
            );
        }
    }

    #[test]
    fn every_key_belongs_to_exactly_one_shard() {
        let tarballs = [("registry", 900), ("lfs", 60), ("uploads", 40)];
        for count in 1..=5 {
            for component in ["registry", "lfs", "uploads"] {
                for i in 0..200 {
                    let key = format!("dir {i}/object-{i}.bin");
                    let owners = (0..count)
                        .filter(|&index| shares(index, count, &tarballs).owns(component, &key))
                        .count();
                    assert_eq!(owners, 1, "{component}/{key} of {count}");
                }
            }
        }
        assert!(ShardShares::whole().owns("uploads", "anything"));
        assert!(ShardShares::whole().has_part_of("uploads"));
    }

    /// Archive keys 0..300; the bucket holds 150..400, the odd ones of
    /// 150..300 changed: uploads, changes, deletions and unchanged objects.
    fn archive_and_bucket() -> (Inventory, Inventory) {
        let object = |i: u32, version: u8| {
            let key: Key = format!("dir {}/object {i}", i % 7).into();
            (key, Fingerprint::content(100, [version; 16].into()))
        };
        let archive = (0..300).map(|i| object(i, 0)).collect();
        let bucket = (150..400).map(|i| object(i, (i % 2) as u8)).collect();
        (archive, bucket)
    }

    fn keys(objects: &PlannedObjects) -> BTreeSet<Key> {
        objects.iter().map(|o| o.key).collect()
    }

    #[test]
    fn the_plans_of_the_shards_together_are_the_unsharded_plan() {
        let (archive, bucket) = archive_and_bucket();
        let whole_plan = SyncPlan::new(&archive, &bucket, true);
        // uploads is cut in three pieces, one per shard.
        let tarballs = [("uploads", 3000), ("lfs", 1)];
        let (mut transfer, mut delete, mut unchanged) = (BTreeSet::new(), BTreeSet::new(), 0);
        for index in 0..3 {
            let (mut archive, mut bucket) = archive_and_bucket();
            let shares = shares(index, 3, &tarballs);
            archive.retain(|key, _| shares.owns("uploads", key));
            bucket.retain(|key, _| shares.owns("uploads", key));
            let plan = SyncPlan::new(&archive, &bucket, true);
            let shard_transfer = keys(&plan.transfer);
            assert!(
                transfer.is_disjoint(&shard_transfer),
                "two shards upload a key"
            );
            assert!(!shard_transfer.is_empty(), "shard {index} has no share");
            transfer.extend(shard_transfer);
            delete.extend(keys(&plan.delete));
            unchanged += plan.unchanged;
        }
        assert_eq!(transfer, keys(&whole_plan.transfer));
        assert_eq!(delete, keys(&whole_plan.delete));
        assert_eq!(unchanged, whole_plan.unchanged);
        assert_eq!((transfer.len(), delete.len(), unchanged), (225, 100, 75));
    }
}
