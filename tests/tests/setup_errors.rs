//! Wrong set-up gives one clear line, a documented exit code, and changes
//! nothing: an unknown plugin, a plugin built against an incompatible
//! core, a missing tool, wrong credentials, an unreachable endpoint, a
//! missing bucket, a missing backup destination, a timestamp that does not
//! exist.

use std::path::Path;

use stowage::backup::{run_backup, BackupRequest};
use stowage::config::{Component, Settings};
use stowage::exit::exit_code_for;
use stowage::plugins_file::PluginsFile;
use stowage::registry::Registry;
use stowage::restore::{run_restore, RestoreRequest, SnapshotMode};
use stowage::store::fetch::ArchiveSource;
use stowage_conformance::scratch::ScratchStores;
use stowage_conformance::{built_library, infrastructure_missing, BucketToolStores};
use stowage_plugin_api::Location;

/// A registry from plugins.toml text.
fn registry(text: &str) -> Registry {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plugins.toml");
    std::fs::write(&path, text).unwrap();
    Registry::load(&PluginsFile::read(&path).unwrap(), false)
}

/// A plugins.toml serving s3:// with s3cmd, configured by `config`.
fn s3cmd_registry(config: &str) -> Registry {
    registry(&format!(
        "[schemes]\ns3 = \"s3cmd\"\n[plugins.s3cmd]\nlibrary = {:?}\n[plugins.s3cmd.config]\n{config}\n",
        built_library("stowage_plugin_s3cmd")
    ))
}

/// Asserts `error` is one line with exit code `code` and mentions `words`.
fn assert_clear(error: &anyhow::Error, code: u8, words: &str) {
    let text = format!("{error:#}");
    assert!(!text.contains('\n'), "not one line: {text}");
    assert!(text.contains(words), "{text:?} does not say {words:?}");
    assert_eq!(exit_code_for(error), code, "exit code of {text}");
}

fn settings(buckets: &[(&str, String)], destination: &str, staging: &Path) -> Settings {
    Settings {
        label: Some("stowage_gitlab".to_string()),
        destination: Location::parse(destination),
        tmp_bucket: None,
        staging_dir: staging.to_path_buf(),
        components: buckets
            .iter()
            .map(|(name, url)| Component {
                name: name.to_string(),
                bucket: Location::parse(url),
                excludes: Vec::new(),
            })
            .collect(),
    }
}

fn restore_request(source: ArchiveSource) -> RestoreRequest {
    RestoreRequest {
        snapshot: SnapshotMode::None,
        yes: true,
        quiet: true,
        ..RestoreRequest::new(source)
    }
}

#[test]
fn an_unknown_plugin_is_a_configuration_error() {
    let registry = registry(&format!(
        "[plugins.fs]\nlibrary = {:?}\n",
        built_library("stowage_plugin_fs")
    ));
    let error = registry
        .for_location(&Location::parse("file:///tmp"), Some("nope"))
        .err()
        .unwrap();
    assert_clear(&error, 3, "unknown plugin \"nope\"; known plugins: fs");
}

#[test]
fn a_plugin_built_against_an_incompatible_core_is_a_configuration_error() {
    let registry = registry(&format!(
        "[schemes]\nbad = \"bad\"\n[plugins.bad]\nlibrary = {:?}\n",
        built_library("stowage_incompatible_plugin")
    ));
    let error = registry
        .for_location(&Location::parse("bad://bucket"), None)
        .err()
        .unwrap();
    let words = format!(
        "built against API 1.0.0 (this stowage: {}), types differ at",
        stowage_plugin_loader::host_api_version()
    );
    assert_clear(&error, 3, &words);
}

#[test]
fn a_missing_tool_is_a_configuration_error_naming_the_fix() {
    let registry = s3cmd_registry("program = \"/nonexistent/s3cmd\"");
    let plugin = registry.get("s3cmd").unwrap();
    let error = plugin.list(&Location::parse("s3://bucket")).unwrap_err();
    assert_clear(
        &error,
        3,
        "/nonexistent/s3cmd not found at that path: `pip install s3cmd`",
    );
}

#[test]
fn wrong_credentials_unreachable_endpoints_and_missing_buckets_are_one_line_each() {
    let (Ok(auth_endpoint), Some(stores)) = (
        std::env::var("STOWAGE_TEST_S3_AUTH_ENDPOINT"),
        BucketToolStores::from_env("s3"),
    ) else {
        return infrastructure_missing("the S3 test servers (STOWAGE_TEST_S3_AUTH_ENDPOINT)")
            .unwrap_or(());
    };
    let staging = tempfile::tempdir().unwrap();
    let config_dir = tempfile::tempdir().unwrap();
    let s3cfg = |endpoint: &str, secret: &str| {
        let host = endpoint.trim_start_matches("http://");
        let path = config_dir
            .path()
            .join(format!("{}.s3cfg", host.replace(':', "_")));
        std::fs::write(
            &path,
            format!(
                "[default]\naccess_key = NOSUCHKEY\nsecret_key = {secret}\nhost_base = {host}\nhost_bucket = {host}\nuse_https = False\nsignature_v2 = False\n"
            ),
        )
        .unwrap();
        format!(
            "config_file = {:?}\nextra_args = [\"--max-retries=1\"]",
            path
        )
    };

    // Wrong credentials: a server that checks them refuses ours.
    let wrong = s3cmd_registry(&s3cfg(&auth_endpoint, "not-the-secret"));
    let backup = run_backup(
        &settings(
            &[("uploads", "s3://gitlab-uploads".into())],
            "s3://gitlab-backups",
            staging.path(),
        ),
        &wrong,
        &BackupRequest::default(),
    );
    let error = backup.expect_err("a backup with wrong credentials failed");
    assert_clear(&error, 1, "InvalidAccessKeyId");
    assert!(
        !format!("{error:#}").contains("not-the-secret"),
        "the secret is in the error"
    );

    // An endpoint nothing listens on.
    let unreachable = s3cmd_registry(&s3cfg("http://127.0.0.1:9", "x"));
    let error = run_restore(
        &settings(
            &[("uploads", "s3://gitlab-uploads".into())],
            "s3://gitlab-backups",
            staging.path(),
        ),
        &unreachable,
        &restore_request(ArchiveSource::Timestamp(1_700_000_000)),
        &|_| Ok(true),
    )
    .expect_err("a restore from an unreachable endpoint failed");
    assert_clear(&error, 1, "cannot list s3://gitlab-backups");

    // A missing bucket, a missing backup destination, a timestamp that does not exist.
    let s3cfg = std::env::var("STOWAGE_TEST_S3CFG").unwrap();
    let good = s3cmd_registry(&format!("config_file = {s3cfg:?}"));
    let missing = stores.new_store("missing").url();
    let error = run_backup(
        &settings(
            &[("uploads", missing.clone())],
            "s3://gitlab-backups",
            staging.path(),
        ),
        &good,
        &BackupRequest::default(),
    )
    .expect_err("a backup of a missing bucket failed");
    assert_clear(&error, 6, "--skip uploads");

    let uploads = stores.new_store("uploads");
    uploads.create().unwrap();
    uploads.put("keep.txt", b"keep").unwrap();
    let before = uploads.contents().unwrap();
    let restore = |destination: &str| {
        run_restore(
            &settings(&[("uploads", uploads.url())], destination, staging.path()),
            &good,
            &restore_request(ArchiveSource::Timestamp(1_700_000_000)),
            &|_| Ok(true),
        )
        .expect_err("the restore failed")
    };
    assert_clear(
        &restore(&missing),
        6,
        &format!("backup destination {missing} does not exist"),
    );
    let backups = stores.new_store("backups");
    backups.create().unwrap();
    assert_clear(
        &restore(&backups.url()),
        6,
        "no backup with timestamp 1700000000",
    );
    assert_eq!(
        uploads.contents().unwrap(),
        before,
        "a failed restore changed the bucket"
    );
}
