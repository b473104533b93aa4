//! The conformance suite against the fs plugin.

use stowage_conformance::{conformance_suite, local_dir_harness, restore_suite, Harness};

fn harness() -> Option<Harness> {
    Some(local_dir_harness("stowage_plugin_fs"))
}

conformance_suite!(harness);
restore_suite!(harness);
