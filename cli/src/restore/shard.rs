//! Sharded restores: `stowage restore --shard I/N` (or `--shards N` with
//! `I` from Kubernetes' `JOB_COMPLETION_INDEX`) restores only the keys of
//! shard `I` of `N`, so that N processes on N machines together do what
//! one process does.
//!
//! Components are dealt out to the shards whole, and only the big ones cut
//! by key (`shares.rs`); a key of a cut component goes by the first 8
//! bytes (big-endian) of the MD5 of `<component> NUL <key>`
//! ([`Shard::of_key`]): the same on every machine, Rust version and run
//! (std's `DefaultHasher` promises none of that). The filter is applied
//! once, where the archive's objects and the bucket's listing meet
//! (`ArchiveObjects` in `planning.rs`, as the listing is walked beside
//! them, by `ShardShares::owns`), and again where verification lists the
//! bucket; everything between (plan, snapshot, upload, delete) only sees
//! this shard's keys.

use std::fmt;

use anyhow::{bail, Result};
use md5::{Digest, Md5};
use serde::Serialize;

use crate::exit::ConfigError;
use crate::store::snapshots::shard_series;

/// The environment variable a Kubernetes Indexed Job sets in each pod:
/// the pod's index, `0` to `completions - 1`.
pub const JOB_COMPLETION_INDEX: &str = "JOB_COMPLETION_INDEX";

/// Which share of the keys a restore answers for: shard `index` of `count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Shard {
    /// 0-based: `0 <= index < count`.
    pub index: u32,
    /// How many shards the run has (1: not sharded).
    pub count: u32,
}

impl Default for Shard {
    fn default() -> Self {
        Shard::WHOLE
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// The share of a component a shard answers for, and the whole of it (the
/// empty-component rule looks at the whole, which every shard sees).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WholeComponent {
    /// Objects of the component in the archive, all shards.
    pub archive_objects: usize,
    /// Objects in its bucket, all shards.
    pub bucket_objects: usize,
}

impl Shard {
    /// Every key: an unsharded restore.
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    /// Shard `index` of `count`, or a configuration error.
    pub fn new(index: u32, count: u32) -> Result<Shard> {
        if count == 0 {
            bail!(ConfigError(
                "shard count 0: a restore has at least 1 shard".to_string()
            ));
        }
        if index >= count {
            bail!(ConfigError(format!(
                "shard index {index} is not below the shard count {count} (indices are 0 to {})",
                count - 1
            )));
        }
        Ok(Shard { index, count })
    }

    /// The shard the command line chose: `--shard I/N`, or `--shards N`
    /// with `I` from `job_index` (the value of [`JOB_COMPLETION_INDEX`]),
    /// or [`Shard::WHOLE`] when neither flag is given.
    pub fn chosen(
        shard: Option<&str>,
        shards: Option<&str>,
        job_index: Option<&str>,
    ) -> Result<Shard> {
        match (shard, shards) {
            (None, None) => Ok(Shard::WHOLE),
            (Some(_), Some(_)) => bail!(ConfigError(
                "--shard I/N and --shards N both given: use one (--shards takes I from JOB_COMPLETION_INDEX)"
                    .to_string()
            )),
            (Some(text), None) => {
                let Some((index, count)) = text.split_once('/') else {
                    bail!(ConfigError(format!(
                        "--shard {text:?}: expected I/N, e.g. 0/4"
                    )));
                };
                Shard::new(number("--shard index", index)?, number("--shard count", count)?)
            }
            (None, Some(count)) => {
                let count = number("--shards", count)?;
                let Some(index) = job_index else {
                    bail!(ConfigError(format!(
                        "--shards {count} takes this shard's index from {JOB_COMPLETION_INDEX} (set by a Kubernetes Indexed Job), which is not set; or use --shard I/{count}"
                    )));
                };
                Shard::new(number(JOB_COMPLETION_INDEX, index)?, count)
            }
        }
    }

    /// Whether this restore is one shard of several.
    pub fn is_sharded(&self) -> bool {
        self.count > 1
    }

    /// Which of `count` pieces of `component` holds `key`.
    pub fn of_key(component: &str, key: &str, count: u32) -> u32 {
        let mut hasher = Md5::new();
        hasher.update(component.as_bytes());
        hasher.update([0]);
        hasher.update(key.as_bytes());
        let digest = hasher.finalize();
        let first = u64::from_be_bytes(digest[..8].try_into().expect("an MD5 has 16 bytes"));
        (first % u64::from(count)) as u32
    }

    /// What this shard's snapshots of `component` are named after: the
    /// component itself, or when sharded `<component>.shard-<I>-of-<N>`,
    /// so that no two shards ever write into one snapshot.
    pub fn snapshot_series(&self, component: &str) -> String {
        match self.is_sharded() {
            true => shard_series(component, self.index, self.count),
            false => component.to_string(),
        }
    }
}

/// `text` as a non-negative number, or a configuration error naming `what`.
fn number(what: &str, text: &str) -> Result<u32> {
    text.trim().parse().map_err(|_| {
        ConfigError(format!(
            "{what} {text:?} is not a whole number of 0 or more"
        ))
        .into()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::exit::exit_code_for;

    fn error_of(result: Result<Shard>) -> (u8, String) {
        let error = result.expect_err("refused");
        (exit_code_for(&error), format!("{error:#}"))
    }

    #[test]
    fn the_shard_of_a_key_is_pinned_across_machines_and_releases() {
        // Computed apart from this code (Python: int.from_bytes(hashlib.md5(
        // component + b"\0" + key).digest()[:8], "big") % n); a change here
        // moves keys between the shards of a run whose pods run different builds.
        let pinned = [
            ("uploads", "@hashed/ab/cd/file.png", 3, 1),
            ("uploads", "@hashed/00/01/a.txt", 3, 0),
            ("artifacts", "2024/01/job.log", 3, 1),
            ("lfs", "objects/aa/bb/oid", 4, 0),
            ("registry", "docker/registry/v2/blobs/sha256/00/data", 2, 0),
        ];
        for (component, key, count, shard) in pinned {
            assert_eq!(
                Shard::of_key(component, key, count),
                shard,
                "{component} {key} of {count}"
            );
        }
    }

    #[test]
    fn the_component_name_is_part_of_the_hash() {
        let spread: std::collections::BTreeSet<u32> = ["a", "b", "c", "d", "e", "f", "g", "h"]
            .iter()
            .map(|component| Shard::of_key(component, "same/key", 4))
            .collect();
        assert!(spread.len() > 1, "every component put the key in one shard");
    }

    #[test]
    fn the_command_line_chooses_the_shard() {
        assert_eq!(Shard::chosen(None, None, Some("2")).unwrap(), Shard::WHOLE);
        assert_eq!(
            Shard::chosen(Some("1/3"), None, None).unwrap(),
            Shard { index: 1, count: 3 }
        );
        assert_eq!(
            Shard::chosen(None, Some("4"), Some("3")).unwrap(),
            Shard { index: 3, count: 4 }
        );
    }

    #[test]
    fn bad_shards_are_one_clear_configuration_error() {
        let cases = [
            (
                Some("3/3"),
                None,
                None,
                "shard index 3 is not below the shard count 3",
            ),
            (Some("0/0"), None, None, "shard count 0"),
            (Some("1"), None, None, "expected I/N"),
            (
                Some("x/2"),
                None,
                None,
                "--shard index \"x\" is not a whole number",
            ),
            (Some("-1/2"), None, None, "is not a whole number"),
            (None, Some("3"), None, "JOB_COMPLETION_INDEX"),
            (
                None,
                Some("3"),
                Some("one"),
                "JOB_COMPLETION_INDEX \"one\" is not a whole number",
            ),
            (
                None,
                Some("3"),
                Some("5"),
                "shard index 5 is not below the shard count 3",
            ),
            (None, Some("0"), Some("0"), "shard count 0"),
            (Some("0/2"), Some("2"), Some("0"), "both given"),
        ];
        for (shard, shards, job_index, expected) in cases {
            let (code, message) = error_of(Shard::chosen(shard, shards, job_index));
            assert_eq!(code, 3, "{message}");
            assert!(message.contains(expected), "{message:?} lacks {expected:?}");
            assert!(!message.contains('\n'), "{message:?}");
        }
    }

    #[test]
    fn sharded_snapshots_are_named_per_shard() {
        assert_eq!(Shard::WHOLE.snapshot_series("uploads"), "uploads");
        let shard = Shard::new(1, 3).unwrap();
        assert_eq!(shard.snapshot_series("uploads"), "uploads.shard-1-of-3");
    }
}
