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
use tempfile::TempDir;

/// A plugins.toml and the registry it loads, a local backup destination
/// and a staging directory.
struct Scene {
    dir: TempDir,
    registry: Registry,
}

impl Scene {
    /// A scene whose plugins.toml is `plugins`.
    fn new(plugins: &str) -> Scene {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plugins.toml");
        std::fs::write(&file, plugins).unwrap();
        let registry = Registry::load(&PluginsFile::read(&file).unwrap(), false);
        Scene { dir, registry }
    }

    /// The component's settings, its bucket `bucket`.
    fn settings(&self, bucket: &dyn ScratchStore) -> Settings {
        let backups = self.dir.path().join("backups");
        Settings {
            label: Some("stowage_gitlab".to_string()),
            destination: Location::parse(backups.to_str().unwrap()),
            tmp_bucket: None,
            staging_dir: self.dir.path().join("staging"),
            components: vec![Component {
                name: "uploads".to_string(),
                bucket: Location::parse(&bucket.url()),
                excludes: Vec::new(),
            }],
        }
    }

    /// Backs `source` up; the backup's timestamp.
    fn back_up(&self, source: &dyn ScratchStore) -> u64 {
        let backup = backup_quietly(&self.settings(source), &self.registry).unwrap();
        backup.information.created_at
    }

    /// Restores the backup made at `created_at` into `target` (no snapshot).
    fn restore_into(&self, target: &dyn ScratchStore, created_at: u64) -> RestoreReport {
        let request = RestoreRequest {
            snapshot: SnapshotMode::None,
            yes: true,
            quiet: true,
            ..RestoreRequest::new(ArchiveSource::Timestamp(created_at))
        };
        let settings = self.settings(target);
        let report = run_restore(&settings, &self.registry, &request, &|_| Ok(true)).unwrap();
        assert!(
            report.succeeded(),
            "{}: {:?}",
            target.url(),
            report.components[0].error
        );
        report
    }
}

/// Eight small files below `@hashed/`, as GitLab's uploads hold them.
fn uploads_tree() -> LocalTree {
    let tree = LocalTree::new().unwrap();
    for i in 0..8u64 {
        tree.write(
            &format!("@hashed/{i}/file {i}.bin"),
            &content(i, 3_000 + 100 * i as usize),
        )
        .unwrap();
    }
    tree
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
    let scene = Scene::new(&format!(
        "[schemes]\nfile = \"fs\"\ns3 = \"s3cmd\"\ngs = \"gsutil\"\n\
         [plugins.fs]\nlibrary = {:?}\n\
         [plugins.s3cmd]\nlibrary = {:?}\n[plugins.s3cmd.config]\nconfig_file = {s3cfg:?}\n\
         [plugins.gsutil]\nlibrary = {:?}\n[plugins.gsutil.config]\nboto_config = {boto:?}\n",
        built_library("stowage_plugin_fs"),
        built_library("stowage_plugin_s3cmd"),
        built_library("stowage_plugin_gsutil"),
    ));
    let local = LocalDirStores::new().unwrap();
    let source = local.new_store("uploads");
    let tree = uploads_tree();
    source.create().unwrap();
    source.seed(tree.path()).unwrap();
    let created_at = scene.back_up(&*source);

    for target in [s3.new_store("from-fs"), gs.new_store("from-fs")] {
        scene.restore_into(&*target, created_at);
        assert_eq!(
            target.contents().unwrap(),
            tree.contents().unwrap(),
            "{} differs",
            target.url()
        );
    }
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
    // One native plugin serves both sides.
    let scene = Scene::new(&format!(
        "[schemes]\nfile = \"fs\"\ns3 = \"objstore\"\naz = \"objstore\"\n\
         [plugins.fs]\nlibrary = {:?}\n\
         [plugins.objstore]\nlibrary = {:?}\n[plugins.objstore.config]\n\
         s3_config_file = {aws_config:?}\ns3_credentials_file = {aws_credentials:?}\n\
         s3_endpoint = {s3_endpoint:?}\nazure_credentials_file = {azure:?}\n\
         multipart_threshold_mib = 1\n",
        built_library("stowage_plugin_fs"),
        built_library("stowage_plugin_objstore"),
    ));
    let source = s3.new_store("to-azure");
    let tree = uploads_tree();
    // Over the multipart threshold: a Put Block List upload on Azure,
    // whose MD5 only the metadata holds.
    tree.write("lfs/big.bin", &content(99, 3 << 20)).unwrap();
    source.create().unwrap();
    source.seed(tree.path()).unwrap();
    let created_at = scene.back_up(&*source);

    // The container does not exist yet: the restore creates it.
    let target = az.new_store("from-s3");
    scene.restore_into(&*target, created_at);
    assert_eq!(
        target.contents().unwrap(),
        source.contents().unwrap(),
        "{} differs from {}",
        target.url(),
        source.url()
    );
    // Every object listed with its MD5: the second restore moves nothing.
    let again = scene.restore_into(&*target, created_at);
    let component = &again.components[0];
    assert_eq!(
        (component.uploaded, component.deleted),
        (0, 0),
        "a second restore into {} changed it: {:?}",
        target.url(),
        component.plan.plan
    );
}
