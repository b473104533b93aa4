//! The conformance suite against the aws plugin (AWS CLI v1), on the S3 test
//! server (moto), read back with boto3.

use stowage_conformance::{
    built_library, conformance_suite, infrastructure_missing, restore_suite, BucketToolStores,
    Harness,
};

fn harness() -> Option<Harness> {
    let (Some(stores), Ok(config_file), Ok(credentials_file), Ok(endpoint_url)) = (
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
    table.insert("config_file".into(), config_file.into());
    table.insert("credentials_file".into(), credentials_file.into());
    table.insert("endpoint_url".into(), endpoint_url.into());
    // Makes aws read a private copy of the test config with this setting
    // merged into its `s3` block: a broken merge would lose path addressing.
    table.insert("max_concurrent_requests".into(), 4.into());
    let config = toml::to_string(&table).expect("a table serialises");
    let library = built_library("stowage_plugin_aws");
    Some(Harness::load(&library, &config, Box::new(stores)).expect("the aws plugin loads"))
}

conformance_suite!(harness);
restore_suite!(harness);
