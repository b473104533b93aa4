//! The conformance suite against the s3cmd plugin, on the S3 test server
//! (moto), read back with boto3.

use stowage_conformance::{
    built_library, conformance_suite, infrastructure_missing, restore_suite, BucketToolStores,
    Harness,
};

fn harness() -> Option<Harness> {
    let (Some(stores), Ok(s3cfg)) = (
        BucketToolStores::from_env("s3"),
        std::env::var("STOWAGE_TEST_S3CFG"),
    ) else {
        return infrastructure_missing(
            "the S3 test server (STOWAGE_TEST_VENV, STOWAGE_TEST_S3CFG)",
        );
    };
    // Every sync of two files or more is split into parallel shards, so the
    // whole suite runs the sharded path (see the plugin's docs).
    let config = format!("config_file = {s3cfg:?}\nparallelism = 3\nshard_min_files = 1\n");
    let library = built_library("stowage_plugin_s3cmd");
    Some(Harness::load(&library, &config, Box::new(stores)).expect("the s3cmd plugin loads"))
}

conformance_suite!(harness);
restore_suite!(harness);
