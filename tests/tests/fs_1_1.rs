//! The conformance and restore suites against the fs plugin as released
//! with plugin API 1.1 (tests/fixtures/fs-1.1.0, built against the frozen
//! stowage-plugin-api 1.1.0): a plugin built against the previous API
//! release loads in the current host and passes the suites the current
//! plugins pass. What API 1.1 lacks the host answers for it: `list_page`
//! cuts pages out of the plugin's listing, and `lists_pages` is false.

use stowage_conformance::{conformance_suite, local_dir_harness, restore_suite, Harness};

fn harness() -> Option<Harness> {
    let h = local_dir_harness("stowage_plugin_fs_1_1_0");
    // Loaded through the API 1.1 interface, not rebuilt against the current one.
    assert_eq!(h.plugin.api_version, "1.1.0");
    assert!(h.plugin.conditional_create());
    assert!(h.plugin.provider().reads_ranges());
    assert!(!h.plugin.provider().lists_pages());
    Some(h)
}

conformance_suite!(harness);
restore_suite!(harness);
