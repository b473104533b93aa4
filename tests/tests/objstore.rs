//! The conformance and restore suites against the native objstore plugin,
//! on the S3 test server (moto), read back with boto3. The credentials
//! come from the test environment's AWS files, as a user's would from
//! ~/.aws; multipart uploads start at 1 MiB so the suites store and read
//! back MD5s from metadata too.

use stowage_conformance::{
    conformance_suite, infrastructure_missing, objstore_harness, restore_suite, BucketToolStores,
    Harness,
};

fn harness() -> Option<Harness> {
    let (Some(stores), Ok(config_file), Ok(credentials_file), Ok(endpoint)) = (
        BucketToolStores::from_env("s3"),
        std::env::var("STOWAGE_TEST_AWS_CONFIG"),
        std::env::var("STOWAGE_TEST_AWS_CREDENTIALS"),
        std::env::var("STOWAGE_TEST_S3_ENDPOINT"),
    ) else {
        return infrastructure_missing(
            "the S3 test server (STOWAGE_TEST_VENV, STOWAGE_TEST_AWS_CONFIG, STOWAGE_TEST_AWS_CREDENTIALS, STOWAGE_TEST_S3_ENDPOINT)",
        );
    };
    let mut table = toml::Table::new();
    table.insert("s3_config_file".into(), config_file.into());
    table.insert("s3_credentials_file".into(), credentials_file.into());
    table.insert("s3_endpoint".into(), endpoint.into());
    let h = objstore_harness(table, stores);
    // Its listing starts after a key on the server (start-after).
    assert!(h.plugin.provider().lists_pages());
    Some(h)
}

conformance_suite!(harness);
restore_suite!(harness);
