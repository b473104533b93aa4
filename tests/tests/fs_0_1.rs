//! The conformance and restore suites against the fs plugin as released
//! with plugin API 0.1 (tests/fixtures/fs-0.1.0, built against the frozen
//! stowage-core 0.1.0): a plugin built against the previous API release
//! loads in the current host and passes the suites the current plugins
//! pass. Where API 0.1 lacks something the host answers for it: the plugin
//! has no conditional create, so `create_if_absent` is refused without
//! writing, restores lock the weaker way, and backups claim their names
//! after an existence check (`two_backups_in_the_same_second_both_survive`
//! then checks that a claimed name is passed over, not two simultaneous
//! starts, which an existence check can let through: docs/SAFETY.md).

use stowage_conformance::{conformance_suite, local_dir_harness, restore_suite, Harness};

fn harness() -> Option<Harness> {
    let h = local_dir_harness("stowage_plugin_fs_0_1_0");
    // Loaded through the API 0.1 interface, not rebuilt against the current one.
    assert_eq!(h.plugin.api_version, "0.1.0");
    assert!(!h.plugin.conditional_create());
    Some(h)
}

conformance_suite!(harness);
restore_suite!(harness);
