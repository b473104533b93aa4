//! Credentials never reach a child process's argv, nor Stowage's reports or
//! errors: a sync runs with each S3 plugin while every process's command
//! line is read from /proc, and everything Stowage returns is scanned. The
//! native objstore plugin starts no process: for it, no command line on the
//! machine may hold the secret while it syncs — the S3 secret key, and on
//! `az://` the Azure account key (nor may Azurite's log) or a SAS.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use stowage_conformance::data::{content, LocalTree};
use stowage_conformance::{built_library, infrastructure_missing, BucketToolStores, Harness};
use stowage_plugin_api::{Location, SyncOptions};

/// The S3 test secret, or `None` (skip, or fail under CI) without the test server.
fn secret() -> Option<String> {
    match std::env::var("STOWAGE_TEST_SECRET_KEY") {
        Ok(s) if !s.is_empty() => Some(s),
        _ => infrastructure_missing("the S3 test server (STOWAGE_TEST_SECRET_KEY)"),
    }
}

fn s3cmd() -> Harness {
    let config = format!(
        "config_file = {:?}\n",
        std::env::var("STOWAGE_TEST_S3CFG").unwrap()
    );
    let stores = BucketToolStores::from_env("s3").unwrap();
    Harness::load(
        &built_library("stowage_plugin_s3cmd"),
        &config,
        Box::new(stores),
    )
    .unwrap()
}

fn aws() -> Harness {
    let env = |name: &str| std::env::var(name).unwrap();
    let config = format!(
        "config_file = {:?}\ncredentials_file = {:?}\nendpoint_url = {:?}\n",
        env("STOWAGE_TEST_AWS_CONFIG"),
        env("STOWAGE_TEST_AWS_CREDENTIALS"),
        env("STOWAGE_TEST_S3_ENDPOINT")
    );
    let stores = BucketToolStores::from_env("s3").unwrap();
    Harness::load(
        &built_library("stowage_plugin_aws"),
        &config,
        Box::new(stores),
    )
    .unwrap()
}

fn objstore() -> Harness {
    let env = |name: &str| std::env::var(name).unwrap();
    let config = format!(
        "s3_config_file = {:?}\ns3_credentials_file = {:?}\ns3_endpoint = {:?}\nmultipart_threshold_mib = 1\n",
        env("STOWAGE_TEST_AWS_CONFIG"),
        env("STOWAGE_TEST_AWS_CREDENTIALS"),
        env("STOWAGE_TEST_S3_ENDPOINT")
    );
    let stores = BucketToolStores::from_env("s3").unwrap();
    Harness::load(
        &built_library("stowage_plugin_objstore"),
        &config,
        Box::new(stores),
    )
    .unwrap()
}

/// The objstore plugin on `az://`, its credential read from the
/// connection-string file the test environment's variable `file` names.
fn objstore_azure(file: &str) -> Harness {
    let config = format!(
        "azure_credentials_file = {:?}\nmultipart_threshold_mib = 1\n",
        std::env::var(file).unwrap()
    );
    let stores = BucketToolStores::from_env("az").unwrap();
    Harness::load(
        &built_library("stowage_plugin_objstore"),
        &config,
        Box::new(stores),
    )
    .unwrap()
}

/// Command lines of every process on the machine whose argv mentions `tool`.
fn command_lines_mentioning(tool: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .chars()
                .all(|c| c.is_ascii_digit())
        })
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|raw| String::from_utf8_lossy(&raw).replace('\0', " "))
        .filter(|line| line.contains(tool))
        .collect()
}

/// Runs a sync with `harness` while watching argv; returns what was seen.
fn sync_while_watching(harness: &Harness, tool: &str) -> (Vec<String>, String) {
    let tree = LocalTree::new().unwrap();
    for i in 0..40u64 {
        tree.write(&format!("dir {i}/file {i}.bin"), &content(i, 20_000))
            .unwrap();
    }
    tree.write("big.bin", &content(99, 6 << 20)).unwrap();
    let bucket = harness.bucket("secrets").unwrap();
    let done = AtomicBool::new(false);
    let seen = Mutex::new(Vec::new());
    let outcome = std::thread::scope(|scope| {
        scope.spawn(|| {
            while !done.load(Ordering::SeqCst) {
                seen.lock().unwrap().extend(command_lines_mentioning(tool));
                std::thread::sleep(Duration::from_millis(2));
            }
        });
        let options = SyncOptions {
            delete: true,
            ..SyncOptions::default()
        };
        let outcome = harness.sync(&tree.location(), &Location::parse(&bucket.url()), &options);
        done.store(true, Ordering::SeqCst);
        outcome
    });
    let report = serde_json::to_string(&outcome.unwrap()).unwrap();
    (seen.into_inner().unwrap(), report)
}

fn assert_no_secret_leaks(harness: Harness, tool: &str, secret: &str) {
    let (command_lines, report) = sync_while_watching(&harness, tool);
    assert!(
        command_lines.iter().any(|l| l.contains(" sync ")),
        "the watcher never saw `{tool} sync` running, so it proves nothing: {command_lines:?}"
    );
    assert_clean(&harness, &command_lines, &report, secret, MISSING_S3_BUCKET);
}

/// A bucket no test creates.
const MISSING_S3_BUCKET: &str = "s3://stowage-no-such-bucket-for-secrets";

/// A container no test creates.
const MISSING_CONTAINER: &str = "az://stowage-no-such-container-for-secrets";

/// The secret is in none of `command_lines`, nor in `report`, nor in the
/// error of a listing of the missing bucket `missing`.
fn assert_clean(
    harness: &Harness,
    command_lines: &[String],
    report: &str,
    secret: &str,
    missing: &str,
) {
    for line in command_lines {
        assert!(
            !line.contains(secret),
            "the secret is in a child's argv: {line}"
        );
    }
    assert!(!report.contains(secret), "the secret is in the report");
    let error = harness
        .plugin
        .provider()
        .list(&Location::parse(missing))
        .unwrap_err();
    assert!(
        !error.message.contains(secret),
        "the secret is in an error: {}",
        error.message
    );
}

#[test]
fn s3cmd_never_shows_the_secret_key() {
    let Some(secret) = secret() else { return };
    assert_no_secret_leaks(s3cmd(), "s3cmd", &secret);
}

#[test]
fn aws_never_shows_the_secret_key() {
    let Some(secret) = secret() else { return };
    assert_no_secret_leaks(aws(), "aws", &secret);
}

#[test]
fn objstore_never_shows_the_secret_key() {
    let Some(secret) = secret() else { return };
    let harness = objstore();
    // Every command line on the machine that holds the secret, watched
    // while the sync runs: the plugin starts no process, so none may.
    let (command_lines, report) = sync_while_watching(&harness, &secret);
    assert_clean(
        &harness,
        &command_lines,
        &report,
        &secret,
        MISSING_S3_BUCKET,
    );
}

#[test]
fn objstore_never_shows_the_azure_account_key() {
    let (Some(_), Ok(key), Ok(run_dir)) = (
        BucketToolStores::from_env("az"),
        std::env::var("STOWAGE_TEST_AZURE_KEY"),
        std::env::var("STOWAGE_TEST_RUN_DIR"),
    ) else {
        return infrastructure_missing("Azurite (STOWAGE_TEST_AZURE_KEY)").unwrap_or(());
    };
    let harness = objstore_azure("STOWAGE_TEST_AZURE_CREDENTIALS");
    let (command_lines, report) = sync_while_watching(&harness, &key);
    assert_clean(&harness, &command_lines, &report, &key, MISSING_CONTAINER);
    let status = harness.plugin.provider().check().unwrap();
    assert!(!status.endpoint.contains(&key), "the key is in `check`");
    let log = std::fs::read_to_string(std::path::Path::new(&run_dir).join("azurite.log")).unwrap();
    assert!(!log.contains(&key), "the key is in Azurite's log");
}

#[test]
fn objstore_never_shows_the_azure_sas() {
    let (Some(_), Ok(file)) = (
        BucketToolStores::from_env("az"),
        std::env::var("STOWAGE_TEST_AZURE_SAS_CREDENTIALS"),
    ) else {
        return infrastructure_missing("Azurite (STOWAGE_TEST_AZURE_SAS_CREDENTIALS)")
            .unwrap_or(());
    };
    let connection_string = std::fs::read_to_string(file).unwrap();
    // The SAS's signature, percent-encoded as it travels in URLs.
    let signature = connection_string
        .split(['&', ';'])
        .find_map(|part| part.strip_prefix("sig="))
        .expect("the SAS has a signature")
        .to_string();
    // The sync (a multipart upload among its files) works with the SAS alone.
    let harness = objstore_azure("STOWAGE_TEST_AZURE_SAS_CREDENTIALS");
    let (command_lines, report) = sync_while_watching(&harness, &signature);
    assert_clean(
        &harness,
        &command_lines,
        &report,
        &signature,
        MISSING_CONTAINER,
    );
    let decoded = signature
        .replace("%2B", "+")
        .replace("%2F", "/")
        .replace("%3D", "=");
    assert!(!report.contains(&decoded), "the signature is in the report");
}
