//! The conformance and restore suites against the native objstore plugin's
//! `az://` backend, on Azurite, read back with azure-storage-blob. The
//! account and key come from a file holding the account's connection
//! string, as `az storage account show-connection-string` prints it;
//! multipart uploads (Put Block List) start at 1 MiB so the suites store
//! and read back MD5s from metadata too.

use stowage_conformance::{
    conformance_suite, infrastructure_missing, objstore_harness, restore_suite, BucketToolStores,
    Harness,
};

fn harness() -> Option<Harness> {
    let (Some(stores), Ok(credentials_file)) = (
        BucketToolStores::from_env("az"),
        std::env::var("STOWAGE_TEST_AZURE_CREDENTIALS"),
    ) else {
        return infrastructure_missing(
            "Azurite (STOWAGE_TEST_VENV, STOWAGE_TEST_AZURE_ENDPOINT, STOWAGE_TEST_AZURE_CREDENTIALS)",
        );
    };
    let mut table = toml::Table::new();
    table.insert("azure_credentials_file".into(), credentials_file.into());
    let h = objstore_harness(table, stores);
    // Azure's listing (the plugin's own) cannot start after a key.
    assert!(!h.plugin.provider().lists_pages());
    Some(h)
}

conformance_suite!(harness);
restore_suite!(harness);
