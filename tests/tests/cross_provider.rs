//! A backup taken from one provider restores into another: buckets backed
//! up on the filesystem plugin come back into S3 (s3cmd) and GCS (gsutil)
//! buckets, and an S3 bucket (moto) backed up by the native objstore
//! plugin comes back into an Azure container (Azurite), byte for byte.

use stowage::config::{Component, Settings};
use stowage::plugins_file::PluginsFile;
use stowage::registry::Registry;
use stowage::restore::{run_restore, RestoreReport, RestoreRequest, SnapshotMode};
use stowage::store::fetch::ArchiveSource;
use stowage_conformance::data::{content, LocalTree};
use stowage_conformance::restore_scenarios::backup_quietly;
use stowage_conformance::scratch::{ScratchStore, ScratchStores};
use stowage_conformance::{
    built_library, infrastructure_missing, BucketToolStores, LocalDirStores,
};
use stowage_plugin_api::Location;

fn settings(bucket: &dyn ScratchStore, destination: &str, staging: &std::path::Path) -> Settings {
    Settings {
        label: "stowage_gitlab".to_string(),
        destination: Location::parse(destination),
        tmp_bucket: None,
        staging_dir: staging.to_path_buf(),
        components: vec![Component {
            name: "uploads".to_string(),
            bucket: Location::parse(&bucket.url()),
            excludes: Vec::new(),
        }],
    }
}

#[test]
fn a_filesystem_backup_restores_into_s3_and_gcs() {
    let (Some(s3), Some(gs), Ok(s3cfg), Ok(boto)) = (
        BucketToolStores::from_env("s3"),
        BucketToolStores::from_env("gs"),
        std::env::var("STOWAGE_TEST_S3CFG"),
        std::env::var("STOWAGE_TEST_BOTO_CONFIG"),
    ) else {
        return infrastructure_missing("the S3 and GCS test servers").unwrap_or(());
    };
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins.toml");
    std::fs::write(
        &plugins,
        format!(
            "[schemes]\nfile = \"fs\"\ns3 = \"s3cmd\"\ngs = \"gsutil\"\n\
             [plugins.fs]\nlibrary = {:?}\n\
             [plugins.s3cmd]\nlibrary = {:?}\n[plugins.s3cmd.config]\nconfig_file = {s3cfg:?}\n\
             [plugins.gsutil]\nlibrary = {:?}\n[plugins.gsutil.config]\nboto_config = {boto:?}\n",
            built_library("stowage_plugin_fs"),
            built_library("stowage_plugin_s3cmd"),
            built_library("stowage_plugin_gsutil"),
        ),
    )
    .unwrap();
    let registry = Registry::load(&PluginsFile::read(&plugins).unwrap(), false);

    let local = LocalDirStores::new().unwrap();
    let source = local.new_store("uploads");
    let tree = LocalTree::new().unwrap();
    for i in 0..8u64 {
        tree.write(
            &format!("@hashed/{i}/file {i}.bin"),
            &content(i, 3_000 + 100 * i as usize),
        )
        .unwrap();
    }
    source.create().unwrap();
    source.seed(tree.path()).unwrap();
    let backups = dir.path().join("backups");
    let staging = dir.path().join("staging");
    let backup = backup_quietly(
        &settings(&*source, backups.to_str().unwrap(), &staging),
        &registry,
    )
    .unwrap();

    for target in [s3.new_store("from-fs"), gs.new_store("from-fs")] {
        let created_at = backup.information.created_at;
        restore_into(&*target, &backups, &staging, &registry, created_at);
        assert_eq!(
            target.contents().unwrap(),
            tree.contents().unwrap(),
            "{} differs",
            target.url()
        );
    }
}

/// Restores the backup made at `created_at` into `target` (no snapshot).
fn restore_into(
    target: &dyn ScratchStore,
    backups: &std::path::Path,
    staging: &std::path::Path,
    registry: &Registry,
    created_at: u64,
) -> RestoreReport {
    let request = RestoreRequest {
        snapshot: SnapshotMode::None,
        yes: true,
        quiet: true,
        ..RestoreRequest::new(ArchiveSource::Timestamp(created_at))
    };
    let settings = settings(target, backups.to_str().unwrap(), staging);
    let report = run_restore(&settings, registry, &request, &|_| Ok(true)).unwrap();
    assert!(
        report.succeeded(),
        "{}: {:?}",
        target.url(),
        report.components[0].error
    );
    report
}

#[test]
fn an_s3_backup_restores_into_azure() {
    let (Some(s3), Some(az), Ok(aws_config), Ok(aws_credentials), Ok(s3_endpoint), Ok(azure)) = (
        BucketToolStores::from_env("s3"),
        BucketToolStores::from_env("az"),
        std::env::var("STOWAGE_TEST_AWS_CONFIG"),
        std::env::var("STOWAGE_TEST_AWS_CREDENTIALS"),
        std::env::var("STOWAGE_TEST_S3_ENDPOINT"),
        std::env::var("STOWAGE_TEST_AZURE_CREDENTIALS"),
    ) else {
        return infrastructure_missing("the S3 test server and Azurite").unwrap_or(());
    };
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins.toml");
    // One native plugin serves both sides; the container does not exist
    // yet, so the restore creates it.
    std::fs::write(
        &plugins,
        format!(
            "[schemes]\nfile = \"fs\"\ns3 = \"objstore\"\naz = \"objstore\"\n\
             [plugins.fs]\nlibrary = {:?}\n\
             [plugins.objstore]\nlibrary = {:?}\n[plugins.objstore.config]\n\
             s3_config_file = {aws_config:?}\ns3_credentials_file = {aws_credentials:?}\n\
             s3_endpoint = {s3_endpoint:?}\nazure_credentials_file = {azure:?}\n\
             multipart_threshold_mib = 1\n",
            built_library("stowage_plugin_fs"),
            built_library("stowage_plugin_objstore"),
        ),
    )
    .unwrap();
    let registry = Registry::load(&PluginsFile::read(&plugins).unwrap(), false);

    let source = s3.new_store("to-azure");
    let tree = LocalTree::new().unwrap();
    for i in 0..8u64 {
        tree.write(
            &format!("@hashed/{i}/file {i}.bin"),
            &content(i, 3_000 + 100 * i as usize),
        )
        .unwrap();
    }
    // Over the multipart threshold: a Put Block List upload on Azure,
    // whose MD5 only the metadata holds.
    tree.write("lfs/big.bin", &content(99, 3 << 20)).unwrap();
    source.create().unwrap();
    source.seed(tree.path()).unwrap();
    let backups = dir.path().join("backups");
    let staging = dir.path().join("staging");
    let backup = backup_quietly(
        &settings(&*source, backups.to_str().unwrap(), &staging),
        &registry,
    )
    .unwrap();

    let target = az.new_store("from-s3");
    let created_at = backup.information.created_at;
    restore_into(&*target, &backups, &staging, &registry, created_at);
    assert_eq!(
        target.contents().unwrap(),
        source.contents().unwrap(),
        "{} differs from {}",
        target.url(),
        source.url()
    );
    // Every object listed with its MD5: the second restore moves nothing.
    let again = restore_into(&*target, &backups, &staging, &registry, created_at);
    let component = &again.components[0];
    assert_eq!(
        (component.uploaded, component.deleted),
        (0, 0),
        "a second restore into {} changed it: {:?}",
        target.url(),
        component.plan.plan
    );
}
