//! The conformance and restore suites against the fs plugin as released
//! with plugin API 1.0 (tests/fixtures/fs-1.0.0, built against the frozen
//! stowage-plugin-api 1.0.0): a plugin built against the previous API
//! release loads in the current host and passes the suites the current
//! plugins pass. What API 1.0 lacks the host answers for it: `list_keys`
//! filters the plugin's listing, byte ranges are refused (`reads_ranges` is
//! false), and a `Planned` sync reaches the plugin as `Checksum`.

use stowage_conformance::{conformance_suite, local_dir_harness, restore_suite, Harness};

fn harness() -> Option<Harness> {
    let h = local_dir_harness("stowage_plugin_fs_1_0_0");
    // Loaded through the API 1.0 interface, not rebuilt against the current one.
    assert_eq!(h.plugin.api_version, "1.0.0");
    assert!(h.plugin.conditional_create());
    assert!(!h.plugin.provider().reads_ranges());
    Some(h)
}

conformance_suite!(harness);
restore_suite!(harness);
