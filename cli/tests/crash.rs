//! kill -9 at random points of a restore, then run it again: the bucket
//! equals the backup and the snapshots still hold the old versions of
//! everything the restore replaced. The real `stowage` binary, the real
//! s3cmd, the S3 test server, read back with boto3.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::Instant;

use stowage_conformance::data::{content, LocalTree};
use stowage_conformance::scratch::{ScratchStore, ScratchStores};
use stowage_conformance::{infrastructure_missing, BucketToolStores};

/// How many kill points one run tries.
const KILL_POINTS: u64 = 20;

struct Setup {
    dir: tempfile::TempDir,
    uploads: Box<dyn ScratchStore>,
}

impl Setup {
    fn stowage(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_stowage"));
        command
            .args(args)
            .arg("--config")
            .arg(self.dir.path().join("stowage.toml"))
            .arg("--plugins")
            .arg(self.dir.path().join("plugins.toml"))
            .env("STOWAGE_PLUGIN_PATH", plugin_dir())
            .stdin(Stdio::null());
        command
    }
}

fn plugin_dir() -> std::path::PathBuf {
    std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf()
}

fn setup(stores: &BucketToolStores, s3cfg: &str) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let uploads = stores.new_store("crash-uploads");
    let backups = stores.new_store("crash-backups");
    uploads.create().unwrap();
    let tree = LocalTree::new().unwrap();
    for i in 0..40u64 {
        tree.write(
            &format!("@hashed/{:02}/file {i}.bin", i % 7),
            &content(i, 2_000 + 500 * i as usize),
        )
        .unwrap();
    }
    tree.write("big.bin", &content(77, 6 << 20)).unwrap();
    uploads.seed(tree.path()).unwrap();
    std::fs::write(
        dir.path().join("plugins.toml"),
        format!("[schemes]\ns3 = \"s3cmd\"\n[plugins.s3cmd]\nlibrary = \"stowage_plugin_s3cmd\"\n[plugins.s3cmd.config]\nconfig_file = {s3cfg:?}\n"),
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
    Setup { dir, uploads }
}

/// Changes the bucket the way a live instance drifts; each round writes
/// content of its own, so a snapshot's copy can be told from older ones.
fn drift(setup: &Setup, round: u64) {
    let tree = LocalTree::new().unwrap();
    for i in [3u64, 11, 25] {
        tree.write(
            &format!("@hashed/{:02}/file {i}.bin", i % 7),
            &content(1000 * round + i, 2_000 + 500 * i as usize),
        )
        .unwrap();
    }
    tree.write(
        &format!("added/round {round}.bin"),
        &content(1000 * round + 99, 3000),
    )
    .unwrap();
    tree.write("big.bin", &content(1000 * round + 77, 6 << 20))
        .unwrap();
    setup.uploads.seed(tree.path()).unwrap();
    setup
        .uploads
        .delete(&format!(
            "@hashed/{:02}/file {}.bin",
            round % 7,
            28 + round % 7
        ))
        .ok();
}

/// A restore whose snapshots go below `tmp`.
fn restore(setup: &Setup, timestamp: &str, tmp: &dyn ScratchStore) -> std::process::Child {
    use std::os::unix::process::CommandExt;
    setup
        .stowage(&[
            "restore",
            timestamp,
            "--yes",
            "--json",
            "--tmp-bucket",
            &tmp.url(),
        ])
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Every snapshot object of the tmp bucket: key → the MD5s it was saved with.
fn snapshot_versions(tmp: &dyn ScratchStore) -> BTreeMap<String, Vec<String>> {
    let mut versions: BTreeMap<String, Vec<String>> = BTreeMap::new();
    if !tmp.exists().unwrap() {
        return versions;
    }
    for (key, md5) in tmp.contents().unwrap() {
        if let Some((_, rest)) = key.split_once('/') {
            versions.entry(rest.to_string()).or_default().push(md5);
        }
    }
    versions
}

fn backup_timestamp(setup: &Setup) -> String {
    let out = setup.stowage(&["backup", "--json"]).output().unwrap();
    assert!(
        out.status.success(),
        "backup failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    report["information"]["created_at"].to_string()
}

#[test]
fn a_restore_killed_at_random_points_converges_when_run_again() {
    let (Some(stores), Ok(s3cfg)) = (
        BucketToolStores::from_env("s3"),
        std::env::var("STOWAGE_TEST_S3CFG"),
    ) else {
        return infrastructure_missing(
            "the S3 test server (STOWAGE_TEST_VENV, STOWAGE_TEST_S3CFG)",
        )
        .unwrap_or(());
    };
    let setup = setup(&stores, &s3cfg);
    let timestamp = backup_timestamp(&setup);
    let backed_up = setup.uploads.contents().unwrap();

    // How long a whole restore takes, to spread the kill points over it.
    drift(&setup, 0);
    let started = Instant::now();
    let tmp = stores.new_store("crash-tmp");
    let full = restore(&setup, &timestamp, &*tmp)
        .wait_with_output()
        .unwrap();
    assert!(
        full.status.success(),
        "{}",
        String::from_utf8_lossy(&full.stderr)
    );
    let duration = started.elapsed();
    assert_eq!(setup.uploads.contents().unwrap(), backed_up);

    for round in 1..=KILL_POINTS {
        drift(&setup, round);
        let drifted = setup.uploads.contents().unwrap();
        // Evenly spread over the whole run, so every phase gets hit.
        let delay = duration.mul_f64(round as f64 / (KILL_POINTS + 1) as f64);
        // A tmp bucket per round: its snapshots are this round's only.
        let tmp = stores.new_store("crash-tmp");
        let mut child = restore(&setup, &timestamp, &*tmp);
        std::thread::sleep(delay);
        let group = child.id().to_string();
        Command::new("kill")
            .args(["-KILL", "--", &format!("-{group}")])
            .status()
            .unwrap();
        let _ = child.wait();

        let rerun = restore(&setup, &timestamp, &*tmp)
            .wait_with_output()
            .unwrap();
        assert!(
            rerun.status.success(),
            "round {round} (killed after {delay:?}): the re-run failed: {}",
            String::from_utf8_lossy(&rerun.stderr)
        );
        assert_eq!(
            setup.uploads.contents().unwrap(),
            backed_up,
            "round {round}: the bucket differs from the backup"
        );
        let snapshots = snapshot_versions(&*tmp);
        for (key, md5) in &drifted {
            if backed_up.get(key) != Some(md5) {
                assert!(
                    snapshots.get(key).is_some_and(|v| v.contains(md5)),
                    "round {round} (killed after {delay:?}): no snapshot holds the replaced version of {key}"
                );
            }
        }
    }
}
