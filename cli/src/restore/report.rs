//! What a restore reports: per component, the plan it followed and what it
//! did, verified and failed at.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::restore::planning::ComponentPlan;
use crate::restore::Shard;
use crate::sync::verify::Verification;

/// What a restore did (or, in a dry run, would do).
#[derive(Debug, Serialize)]
pub struct RestoreReport {
    /// The archive's file name.
    pub archive: String,
    /// The shard this restore was, if it was one of several: it planned,
    /// changed and verified only that shard's keys.
    pub shard: Option<Shard>,
    /// When sharded: per component of the archive, the shard of each of
    /// its pieces (one piece: the component is that shard's whole; a key
    /// of a cut component is in piece `Shard::of_key` mod the count).
    pub shard_pieces: Option<BTreeMap<String, Vec<u32>>>,
    /// Whether this was a dry run.
    pub dry_run: bool,
    /// Top-level archive entries that are not object storage.
    pub ignored_entries: Vec<String>,
    /// Archive components not restored (not configured, or not selected).
    pub not_restored: Vec<String>,
    /// Per component.
    pub components: Vec<ComponentOutcome>,
    /// Why the restore locks could not be released, if they could not (they
    /// are left in the backup destination, named here, to remove by hand).
    pub lock_release_error: Option<String>,
    /// The wall time of each step before the components' own.
    pub steps: Vec<StepTime>,
}

/// How long one step took.
#[derive(Clone, Debug, Serialize)]
pub struct StepTime {
    /// The step.
    pub step: &'static str,
    /// Its wall time.
    pub seconds: f64,
}

/// Times steps as they run, in order.
#[derive(Debug, Default)]
pub(super) struct StepClock {
    pub(super) steps: Vec<StepTime>,
}

impl StepClock {
    /// Runs `run`, the step `step`, and records its wall time.
    pub(super) fn time<T>(&mut self, step: &'static str, run: impl FnOnce() -> T) -> T {
        let started = std::time::Instant::now();
        let result = run();
        self.steps.push(StepTime {
            step,
            seconds: started.elapsed().as_secs_f64(),
        });
        result
    }
}

impl RestoreReport {
    /// Whether every component succeeded.
    pub fn succeeded(&self) -> bool {
        self.components.iter().all(|c| c.error.is_none())
    }

    /// Objects someone else changed during the restore, left as found:
    /// while there are any, the buckets do not equal the backup.
    pub fn drifted(&self) -> usize {
        self.components
            .iter()
            .filter_map(|c| c.verification.as_ref())
            .map(|v| v.drifted.len())
            .sum()
    }
}

/// One component's outcome.
#[derive(Debug, Serialize)]
pub struct ComponentOutcome {
    /// The plan it followed.
    #[serde(flatten)]
    pub plan: ComponentPlan,
    /// Where the snapshot went, if one was taken.
    pub snapshot: Option<String>,
    /// Objects uploaded (by the tool, plus repairs).
    pub uploaded: u64,
    /// Bytes uploaded.
    pub uploaded_bytes: u64,
    /// Objects deleted.
    pub deleted: u64,
    /// What verification found.
    pub verification: Option<Verification>,
    /// Seconds taken.
    pub duration_secs: f64,
    /// The wall time of each of its steps.
    pub steps: Vec<StepTime>,
    /// Why it failed, if it did.
    pub error: Option<String>,
}

/// A component's outcome before anything was done: its plan, no changes.
pub(super) fn outcome_of(plan: ComponentPlan) -> ComponentOutcome {
    ComponentOutcome {
        plan,
        snapshot: None,
        uploaded: 0,
        uploaded_bytes: 0,
        deleted: 0,
        verification: None,
        duration_secs: 0.0,
        steps: Vec::new(),
        error: None,
    }
}
