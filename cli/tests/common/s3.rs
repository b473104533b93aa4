//! What the tests that drive the `stowage` binary against the S3 test
//! server share: a GitLab-like instance (an uploads bucket and a backup
//! destination on the server) served by the s3cmd plugin.

use std::path::PathBuf;
use std::process::Command;

use stowage_conformance::data::{partial_writes, LocalTree};
use stowage_conformance::scratch::{ScratchStore, ScratchStores};
use stowage_conformance::{infrastructure_missing, BucketToolStores};

use super::stowage_configured_in;

/// The S3 test server's stores and its s3cmd config file; `None` (after
/// saying so, or failing under CI) when the test environment is not set up.
pub fn s3_test_server() -> Option<(BucketToolStores, String)> {
    match (
        BucketToolStores::from_env("s3"),
        std::env::var("STOWAGE_TEST_S3CFG"),
    ) {
        (Some(stores), Ok(s3cfg)) => Some((stores, s3cfg)),
        _ => infrastructure_missing("the S3 test server (STOWAGE_TEST_VENV, STOWAGE_TEST_S3CFG)"),
    }
}

/// An uploads bucket seeded with a tree, a backup destination, and the
/// stowage.toml and plugins.toml that name them.
pub struct Instance {
    /// Holds stowage.toml, plugins.toml and the staging directory.
    pub dir: tempfile::TempDir,
    /// The component's bucket.
    pub uploads: Box<dyn ScratchStore>,
    /// The backup destination (restore locks live there too).
    pub backups: Box<dyn ScratchStore>,
}

impl Instance {
    /// Creates the buckets, seeds `uploads` with `tree`, and writes the
    /// config files; `s3cmd_config` holds extra lines for the s3cmd
    /// plugin's config table.
    pub fn new(
        stores: &BucketToolStores,
        s3cfg: &str,
        tree: &LocalTree,
        s3cmd_config: &str,
    ) -> Instance {
        let dir = tempfile::tempdir().unwrap();
        let uploads = stores.new_store("uploads");
        let backups = stores.new_store("backups");
        uploads.create().unwrap();
        uploads.seed(tree.path()).unwrap();
        std::fs::write(
            dir.path().join("plugins.toml"),
            format!("[schemes]\ns3 = \"s3cmd\"\n[plugins.s3cmd]\nlibrary = \"stowage_plugin_s3cmd\"\n[plugins.s3cmd.config]\nconfig_file = {s3cfg:?}\n{s3cmd_config}"),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("stowage.toml"),
            format!(
                "label = \"stowage_gitlab\"\nbackup_destination = {:?}\nstaging_dir = {:?}\n[components.uploads]\nbucket = {:?}\n",
                backups.url(),
                dir.path().join("staging"),
                uploads.url()
            ),
        )
        .unwrap();
        Instance {
            dir,
            uploads,
            backups,
        }
    }

    /// The staging directory.
    pub fn staging(&self) -> PathBuf {
        self.dir.path().join("staging")
    }

    /// The unfinished writes (`*.stowage-partial`) below the staging directory.
    pub fn partial_writes(&self) -> Vec<PathBuf> {
        partial_writes(&self.staging())
    }

    /// `stowage ARGS` with this instance's config files and no input.
    pub fn stowage(&self, args: &[&str]) -> Command {
        stowage_configured_in(self.dir.path(), args)
    }

    /// Backs the instance up and returns the backup's timestamp.
    pub fn backup(&self) -> String {
        let out = self.stowage(&["backup", "--json"]).output().unwrap();
        assert!(
            out.status.success(),
            "backup failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        report["information"]["created_at"].to_string()
    }

    /// The restore locks left in the backup destination.
    pub fn locks(&self) -> Vec<String> {
        let contents = self.backups.contents().unwrap();
        contents
            .into_keys()
            .filter(|key| key.starts_with(".stowage-lock."))
            .collect()
    }
}
