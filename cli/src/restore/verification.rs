//! The verification step: the bucket listed after the upload and compared
//! with the archive; what the tool missed is repaired, and the planned
//! deletes done — only for objects still as the plan found them.

use std::collections::HashSet;

use anyhow::Result;
use stowage_exclude::ExcludeMatcher;
use stowage_plugin_api::Location;

use crate::restore::planning::ComponentPlan;
use crate::restore::{ComponentStep, RestorePoint};
use crate::sync::plan::{Inventory, Key};
use crate::sync::verify::{verify_and_finish, FinishHooks, PlannedChanges, Verification};

impl ComponentStep<'_, '_> {
    /// Verifies the bucket against the archive after the upload, repairing
    /// and deleting what is still planned (see [`verify_and_finish`]).
    /// What it sends again is extracted into [`ComponentStep::repairs`].
    pub(super) fn verify(
        &self,
        plan: &ComponentPlan,
        planned: &PlannedChanges<'_>,
        bucket: &Inventory,
    ) -> Result<Verification> {
        let component = &self.target.component;
        let repairs = self.repairs();
        let source = Location::Local {
            path: repairs.to_string_lossy().into_owned(),
        };
        let observer = &self.run.request.observer;
        let matcher = ExcludeMatcher::new(&component.excludes).map_err(anyhow::Error::msg)?;
        verify_and_finish(
            self.target.plugin,
            &source,
            &component.bucket,
            &self.target.archive,
            planned,
            &matcher,
            &FinishHooks {
                prepare: &|keys: &[Key]| {
                    let keys: HashSet<&str> = keys.iter().map(|k| &**k).collect();
                    let wanted = |key: &str| keys.contains(key);
                    self.extract(plan, &wanted, &|_| repairs.clone(), bucket)
                },
                before_changes: &|| observer.tell(&component.name, RestorePoint::Verifying),
                answers_for: &|key| self.run.shares.owns(&component.name, key),
            },
        )
    }
}
