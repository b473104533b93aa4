//! The conformance suite against the gsutil plugin, on the GCS test server
//! (gcp-storage-emulator behind `tests/servers/gcs_server.py`), read back
//! with the GCS JSON API.

use stowage_conformance::{
    built_library, conformance_suite, infrastructure_missing, restore_suite, BucketToolStores,
    Harness,
};

fn harness() -> Option<Harness> {
    let (Some(stores), Ok(boto_config)) = (
        BucketToolStores::from_env("gs"),
        std::env::var("STOWAGE_TEST_BOTO_CONFIG"),
    ) else {
        return infrastructure_missing(
            "the GCS test server (STOWAGE_TEST_VENV, STOWAGE_TEST_BOTO_CONFIG)",
        );
    };
    let config = format!("boto_config = {boto_config:?}\n");
    let library = built_library("stowage_plugin_gsutil");
    Some(Harness::load(&library, &config, Box::new(stores)).expect("the gsutil plugin loads"))
}

conformance_suite!(harness);
restore_suite!(harness);
