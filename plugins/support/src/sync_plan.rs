//! Deciding a sync from two listings, for plugins that carry it out
//! themselves instead of running a tool's sync: what to skip, what to
//! transfer, what to delete — every rule of [`SyncOptions`] but the
//! transfers themselves, decided before anything is done, so that a dry run
//! reports exactly what the real run does and a refused sync changes
//! nothing.

use std::collections::HashMap;

use stowage_exclude::ExcludeMatcher;
use stowage_plugin_api::{ActionKind, ErrorKind, Location, PluginError, SyncOptions, SyncReport};

/// One object of either side of a sync, as the planner needs it.
pub trait PlanEntry {
    /// Its key, relative to the sync root.
    fn key(&self) -> &str;
    /// Its size in bytes.
    fn size(&self) -> u64;
}

/// What a sync will do, decided from both sides' listings.
#[derive(Debug)]
pub struct SyncPlan<E> {
    /// Source objects the destination already holds, reported as skipped.
    pub skips: Vec<E>,
    /// Source objects to transfer, in key order.
    pub transfers: Vec<E>,
    /// Destination objects the source lacks, in key order (empty unless
    /// `options.delete`).
    pub deletes: Vec<E>,
}

impl<E: PlanEntry> SyncPlan<E> {
    /// Decides the sync of `sources` onto `destinations` (the listings of
    /// `destination`): excluded keys are left out on both sides, a source
    /// object that `unchanged(source, destination)` says is there already is
    /// skipped, and with `delete` the destination objects the source lacks
    /// are deleted — unless they are more than `max_deletes`, which refuses
    /// the whole sync (`LimitExceeded`).
    pub fn new(
        sources: Vec<E>,
        destinations: Vec<E>,
        destination: &Location,
        options: &SyncOptions,
        mut unchanged: impl FnMut(&E, &E) -> Result<bool, PluginError>,
    ) -> Result<SyncPlan<E>, PluginError> {
        let excludes = ExcludeMatcher::new(&options.excludes)
            .map_err(|e| PluginError::new(ErrorKind::InvalidInput, e))?;
        let mut there: HashMap<String, E> = destinations
            .into_iter()
            .filter(|e| !excludes.is_excluded(e.key()))
            .map(|e| (e.key().to_string(), e))
            .collect();
        let mut sources: Vec<E> = sources
            .into_iter()
            .filter(|e| !excludes.is_excluded(e.key()))
            .collect();
        sources.sort_by(|a, b| a.key().cmp(b.key()));
        let (mut skips, mut transfers) = (Vec::new(), Vec::new());
        for source in sources {
            let up_to_date = match there.remove(source.key()) {
                Some(existing) => unchanged(&source, &existing)?,
                None => false,
            };
            if up_to_date {
                skips.push(source);
            } else {
                transfers.push(source);
            }
        }
        let mut deletes: Vec<E> = if options.delete {
            there.into_values().collect()
        } else {
            Vec::new()
        };
        deletes.sort_by(|a, b| a.key().cmp(b.key()));
        if let Some(max) = options.max_deletes {
            if deletes.len() as u64 > max {
                return Err(PluginError::new(
                    ErrorKind::LimitExceeded,
                    format!(
                        "sync would delete {} objects from {destination}, more than the limit of {max}; nothing was changed",
                        deletes.len()
                    ),
                ));
            }
        }
        Ok(SyncPlan {
            skips,
            transfers,
            deletes,
        })
    }

    /// The report of the skips alone, to which the sync adds what it did.
    pub fn skip_report(&self) -> SyncReport {
        let mut report = SyncReport::default();
        for entry in &self.skips {
            report.push(ActionKind::Skip, entry.key(), entry.size());
        }
        report
    }

    /// The report of a dry run: the skips, and every transfer (as `kind`)
    /// and delete the sync would make.
    pub fn dry_run_report(&self, kind: ActionKind) -> SyncReport {
        let mut report = self.skip_report();
        for entry in &self.transfers {
            report.push(kind, entry.key(), entry.size());
        }
        for entry in &self.deletes {
            report.push(ActionKind::Delete, entry.key(), 0);
        }
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq)]
    struct Obj(&'static str, u64);

    impl PlanEntry for Obj {
        fn key(&self) -> &str {
            self.0
        }
        fn size(&self) -> u64 {
            self.1
        }
    }

    fn keys(entries: &[Obj]) -> Vec<&str> {
        entries.iter().map(|e| e.0).collect()
    }

    fn plan(options: &SyncOptions) -> Result<SyncPlan<Obj>, PluginError> {
        let sources = vec![Obj("b", 1), Obj("a", 1), Obj("skip.tmp", 1)];
        let destinations = vec![Obj("a", 1), Obj("b", 2), Obj("old", 3), Obj("keep.tmp", 1)];
        SyncPlan::new(
            sources,
            destinations,
            &Location::parse("s3://bkt"),
            options,
            |s, d| Ok(s.1 == d.1),
        )
    }

    #[test]
    fn unchanged_objects_are_skipped_and_excluded_ones_ignored_on_both_sides() {
        let options = SyncOptions {
            delete: true,
            excludes: vec!["*.tmp".into()],
            ..SyncOptions::default()
        };
        let plan = plan(&options).unwrap();
        assert_eq!(keys(&plan.skips), ["a"]);
        assert_eq!(keys(&plan.transfers), ["b"]);
        assert_eq!(keys(&plan.deletes), ["old"]);
        let report = plan.dry_run_report(ActionKind::Upload);
        assert_eq!(report.keys(ActionKind::Upload), ["b"]);
        assert_eq!(report.keys(ActionKind::Delete), ["old"]);
        assert_eq!(report.keys(ActionKind::Skip), ["a"]);
    }

    #[test]
    fn nothing_is_deleted_without_delete_and_too_many_deletes_refuse_the_sync() {
        let plan = plan(&SyncOptions::default()).unwrap();
        assert!(plan.deletes.is_empty());
        let limited = SyncOptions {
            delete: true,
            max_deletes: Some(1),
            ..SyncOptions::default()
        };
        let error = super::tests::plan(&limited).unwrap_err();
        assert_eq!(error.kind, ErrorKind::LimitExceeded);
        assert!(error.message.contains("s3://bkt"), "{error}");
    }
}
