//! The conformance and restore suites against the native objstore plugin's
//! `gs://`, on the GCS test server (gcp-storage-emulator with the XML API
//! object_store speaks, `tests/servers/gcs_xml_api.py`), read back with the
//! GCS JSON API. The credentials are a service-account file as a user's
//! would be, the emulator's kind (`disable_oauth`, `gcs_base_url`); its
//! certificate is trusted through `ca_file` (the test CA), never by turning
//! checks off. Multipart uploads start at 1 MiB so the suites store and
//! read back MD5s from metadata too.

use stowage_conformance::{
    conformance_suite, infrastructure_missing, objstore_harness, restore_suite, BucketToolStores,
    Harness,
};

fn harness() -> Option<Harness> {
    let (Some(stores), Ok(service_account), Ok(ca_cert)) = (
        BucketToolStores::from_env("gs"),
        std::env::var("STOWAGE_TEST_GCS_SERVICE_ACCOUNT"),
        std::env::var("STOWAGE_TEST_GCS_CA_CERT"),
    ) else {
        return infrastructure_missing(
            "the GCS test server (STOWAGE_TEST_VENV, STOWAGE_TEST_GCS_SERVICE_ACCOUNT, STOWAGE_TEST_GCS_CA_CERT)",
        );
    };
    let mut table = toml::Table::new();
    table.insert("gcs_service_account_file".into(), service_account.into());
    table.insert("ca_file".into(), ca_cert.into());
    let h = objstore_harness(table, stores);
    // Its listing starts after a key on the server (start-after).
    assert!(h.plugin.provider().lists_pages());
    Some(h)
}

conformance_suite!(harness);
restore_suite!(harness);
