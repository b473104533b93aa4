//! The conformance suite against the fs plugin.

use stowage_conformance::{
    built_library, conformance_suite, restore_suite, Harness, LocalDirStores,
};

fn harness() -> Option<Harness> {
    let stores = LocalDirStores::new().expect("a temporary directory");
    let library = built_library("stowage_plugin_fs");
    Some(Harness::load(&library, "", Box::new(stores)).expect("the fs plugin loads"))
}

conformance_suite!(harness);
restore_suite!(harness);
