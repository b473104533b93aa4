//! kill -9 at random points of a restore, then run it again: the bucket
//! equals the backup and the snapshots still hold the old versions of
//! everything the restore replaced; no restore lock is left, and the re-run
//! removed the unfinished writes the killed one left in staging. The real
//! `stowage` binary, the real s3cmd, the S3 test server, read back with boto3.

mod common;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::Instant;

use common::s3::{s3_test_server, Instance};
use stowage_conformance::data::{content, LocalTree};
use stowage_conformance::scratch::{ScratchStore, ScratchStores};

/// How many kill points one run tries.
const KILL_POINTS: u64 = 20;

fn setup(stores: &stowage_conformance::BucketToolStores, s3cfg: &str) -> Instance {
    let tree = LocalTree::new().unwrap();
    for i in 0..40u64 {
        tree.write(
            &format!("@hashed/{:02}/file {i}.bin", i % 7),
            &content(i, 2_000 + 500 * i as usize),
        )
        .unwrap();
    }
    tree.write("big.bin", &content(77, 6 << 20)).unwrap();
    Instance::new(stores, s3cfg, &tree, "")
}

/// Changes the bucket the way a live instance drifts; each round writes
/// content of its own, so a snapshot's copy can be told from older ones.
fn drift(setup: &Instance, round: u64) {
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
fn restore(setup: &Instance, timestamp: &str, tmp: &dyn ScratchStore) -> std::process::Child {
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

/// kill -9 of the restore and of every tool it runs (in process groups of
/// their own), as when its machine or container dies: the restore is
/// stopped first, so it starts no tool meanwhile.
fn kill_with_its_tools(restore: &std::process::Child) {
    let signal = |signal: &str, group: String| {
        Command::new("kill")
            .args([signal, "--", &format!("-{group}")])
            .status()
            .unwrap();
    };
    signal("-STOP", restore.id().to_string());
    let tools = stowage::interrupt::descendant_groups(restore.id() as i32);
    signal("-KILL", restore.id().to_string());
    for group in tools.keys() {
        signal("-KILL", group.to_string());
    }
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

#[test]
fn a_restore_killed_at_random_points_converges_when_run_again() {
    let Some((stores, s3cfg)) = s3_test_server() else {
        return;
    };
    let setup = setup(&stores, &s3cfg);
    let timestamp = setup.backup();
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
        kill_with_its_tools(&child);
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
        assert_eq!(
            setup.locks(),
            Vec::<String>::new(),
            "round {round}: a lock is left"
        );
        assert_eq!(
            setup.partial_writes(),
            Vec::<std::path::PathBuf>::new(),
            "round {round}: the re-run left the killed run's unfinished writes"
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
