//! A sharded restore as a Kubernetes Indexed Job runs it, simulated on one
//! machine: three `stowage restore --shards 3` processes at once, each with
//! its own `JOB_COMPLETION_INDEX` and staging directory, restore a
//! 4-component archive over buckets with changed, missing and extraneous
//! objects on the S3 test server (the objstore plugin, as in
//! `deploy/kubernetes/`: no tool process per request keeps it quick). The
//! buckets, read back
//! with the independent client, equal the archive; the shards together did
//! exactly the unsharded plan, each change once; the snapshots hold what
//! was overwritten or deleted; a second run changes nothing; one shard run
//! again alone converges its own keys; and an unsharded restore, or shards
//! of another N, refuse while a shard's lock is live.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Output, Stdio};

use common::{stderr, stowage_configured_in};
use serde_json::Value;
use stowage::restore::{Shard, JOB_COMPLETION_INDEX};
use stowage::store::lock::{hostname, lock_name};
use stowage_conformance::data::{content, LocalTree};
use stowage_conformance::scratch::{ScratchStore, ScratchStores};
use stowage_conformance::{infrastructure_missing, BucketToolStores};
use stowage_plugin_api::Location;

/// The archive's components.
const COMPONENTS: [&str; 4] = ["artifacts", "lfs", "registry", "uploads"];

/// Objects per component in the backup.
const OBJECTS: u64 = 40;

/// Shards of the run.
const SHARDS: u32 = 3;

/// Four component buckets, a backup destination and a tmp bucket on the S3
/// test server, and the config files that name them.
struct Instance {
    dir: tempfile::TempDir,
    buckets: BTreeMap<&'static str, Box<dyn ScratchStore>>,
    backups: Box<dyn ScratchStore>,
    tmp: Box<dyn ScratchStore>,
}

/// A component's bucket as the independent client lists it: key → MD5.
type Contents = BTreeMap<String, String>;

/// The S3 test server's stores, and the objstore plugin's config table for
/// it (the test environment's AWS config and credentials files); `None`
/// (after saying so, or failing under CI) without the test environment.
fn s3_test_server() -> Option<(BucketToolStores, String)> {
    let variables = [
        "STOWAGE_TEST_AWS_CONFIG",
        "STOWAGE_TEST_AWS_CREDENTIALS",
        "STOWAGE_TEST_S3_ENDPOINT",
    ];
    let values: Vec<String> = variables
        .iter()
        .filter_map(|name| std::env::var(name).ok())
        .collect();
    let (Some(stores), [config, credentials, endpoint]) =
        (BucketToolStores::from_env("s3"), values.as_slice())
    else {
        return infrastructure_missing(&format!(
            "the S3 test server (STOWAGE_TEST_VENV, {})",
            variables.join(", ")
        ));
    };
    let table = format!(
        "s3_config_file = {config:?}\ns3_credentials_file = {credentials:?}\ns3_endpoint = {endpoint:?}\n"
    );
    Some((stores, table))
}

impl Instance {
    fn new(stores: &BucketToolStores, objstore_config: &str) -> Instance {
        let dir = tempfile::tempdir().unwrap();
        let backups = stores.new_store("shard-backups");
        backups.create().unwrap();
        let tmp = stores.new_store("shard-tmp");
        let mut config = format!(
            "label = \"stowage_gitlab\"\nbackup_destination = {:?}\ntmp_bucket = {:?}\n",
            backups.url(),
            tmp.url()
        );
        let mut buckets = BTreeMap::new();
        for (n, component) in COMPONENTS.into_iter().enumerate() {
            let bucket = stores.new_store(&format!("shard-{component}"));
            bucket.create().unwrap();
            let tree = LocalTree::new().unwrap();
            for i in 0..OBJECTS {
                let key = format!("@hashed/{:02}/object {i}.bin", i % 5);
                tree.write(&key, &content(n as u64 * 1000 + i, 300 + i as usize))
                    .unwrap();
            }
            bucket.seed(tree.path()).unwrap();
            config.push_str(&format!(
                "[components.{component}]\nbucket = {:?}\n",
                bucket.url()
            ));
            buckets.insert(component, bucket);
        }
        std::fs::write(dir.path().join("stowage.toml"), config).unwrap();
        std::fs::write(
            dir.path().join("plugins.toml"),
            format!("[schemes]\ns3 = \"objstore\"\n[plugins.objstore]\nlibrary = \"stowage_plugin_objstore\"\n[plugins.objstore.config]\n{objstore_config}"),
        )
        .unwrap();
        Instance {
            dir,
            buckets,
            backups,
            tmp,
        }
    }

    /// `stowage ARGS` with this instance's config files, staging in
    /// `staging` (each pod has its own), no input.
    fn stowage(&self, staging: &str, args: &[&str]) -> Command {
        let mut command = stowage_configured_in(self.dir.path(), args);
        command
            .env("STOWAGE_STAGING_DIR", self.dir.path().join(staging))
            .env_remove(JOB_COMPLETION_INDEX)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    fn backup(&self) -> String {
        let out = self
            .stowage("backup", &["backup", "--json"])
            .output()
            .unwrap();
        assert!(out.status.success(), "backup failed: {}", stderr(&out));
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        report["information"]["created_at"].to_string()
    }

    /// `stowage restore TIMESTAMP --yes --json ARGS`, one process per
    /// entry of `indices` at once, each with `JOB_COMPLETION_INDEX` set to
    /// it and its own staging directory: the pods of an Indexed Job.
    fn restore_as_pods(&self, timestamp: &str, indices: &[u32], args: &[&str]) -> Vec<Output> {
        let pods: Vec<_> = indices
            .iter()
            .map(|index| {
                let mut command = self.stowage(
                    &format!("pod-{index}"),
                    &[&["restore", timestamp, "--yes", "--json"], args].concat(),
                );
                command.env(JOB_COMPLETION_INDEX, index.to_string());
                command.spawn().unwrap()
            })
            .collect();
        pods.into_iter()
            .map(|pod| pod.wait_with_output().unwrap())
            .collect()
    }

    /// The reports of [`Instance::restore_as_pods`], each pod having succeeded.
    fn restore_shards(&self, timestamp: &str, indices: &[u32]) -> Vec<Value> {
        let shards = SHARDS.to_string();
        self.restore_as_pods(timestamp, indices, &["--shards", &shards])
            .iter()
            .map(|out| {
                assert!(out.status.success(), "a shard failed: {}", stderr(out));
                serde_json::from_slice(&out.stdout).unwrap()
            })
            .collect()
    }

    fn contents(&self) -> BTreeMap<&'static str, Contents> {
        self.buckets
            .iter()
            .map(|(component, bucket)| (*component, bucket.contents().unwrap()))
            .collect()
    }

    /// What a live application does meanwhile: in every bucket, changes
    /// one in 8 of the archive's objects, deletes one in 20 and adds 6.
    /// Returns the versions a restore must snapshot (it overwrites or
    /// deletes them): key → MD5, per component.
    fn live_application_writes(
        &self,
        archive: &BTreeMap<&'static str, Contents>,
        round: u64,
    ) -> BTreeMap<&'static str, Contents> {
        let mut replaced = BTreeMap::new();
        for (component, bucket) in &self.buckets {
            let written = LocalTree::new().unwrap();
            for (i, key) in archive[component].keys().enumerate() {
                match (i % 8, i % 20) {
                    (0, _) => written
                        .write(key, &content(round * 7 + i as u64, 50))
                        .unwrap(),
                    (_, 1) => bucket.delete(key).unwrap(),
                    _ => {}
                }
            }
            for i in 0..6 {
                let key = format!("added/{round}/extra {i}.bin");
                written.write(&key, &content(round * 100 + i, 20)).unwrap();
            }
            bucket.seed(written.path()).unwrap();
            replaced.insert(*component, written.contents().unwrap());
        }
        replaced
    }

    /// The restore locks left in the backup destination.
    fn locks(&self) -> Vec<String> {
        let contents = self.backups.contents().unwrap();
        contents
            .into_keys()
            .filter(|key| key.starts_with(".stowage-lock."))
            .collect()
    }
}

/// A component's planned keys of one kind (`transfer`, `delete`) in a report.
fn planned(component: &Value, kind: &str) -> BTreeSet<String> {
    component[kind]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["key"].as_str().unwrap().to_string())
        .collect()
}

/// A report's components by name.
fn components(report: &Value) -> BTreeMap<String, &Value> {
    report["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["component"].as_str().unwrap().to_string(), c))
        .collect()
}

/// How many objects all components of all reports uploaded and deleted.
fn changes(reports: &[Value]) -> (u64, u64) {
    let mut totals = (0, 0);
    for report in reports {
        for component in components(report).values() {
            totals.0 += component["uploaded"].as_u64().unwrap();
            totals.1 += component["deleted"].as_u64().unwrap();
        }
    }
    totals
}

/// The keys of a component each shard owns, by the same hash the binary uses.
fn owned_by(component: &str, key: &str) -> u32 {
    Shard::of_key(component, key, SHARDS)
}

#[test]
fn three_pods_restore_a_four_component_archive_together_as_one_would() {
    let Some((stores, objstore_config)) = s3_test_server() else {
        return;
    };
    let instance = Instance::new(&stores, &objstore_config);
    let timestamp = instance.backup();
    let archive = instance.contents();
    let replaced = instance.live_application_writes(&archive, 1);
    let before_restore = instance.contents();

    // The plan one unsharded process would follow.
    let out = instance
        .stowage("plan", &["restore", &timestamp, "--dry-run", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let whole: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(whole["shard"].is_null());

    // A live shard lock keeps out an unsharded restore and other shard counts.
    let uploads_bucket = Location::parse(&instance.buckets["uploads"].url());
    let foreign_lock = format!("{}@shard-0-of-{SHARDS}", lock_name(&uploads_bucket));
    let record = serde_json::json!({
        "host": hostname(), "pid": std::process::id(), "started": unix_now(), "token": "held-by-the-test"
    });
    instance
        .backups
        .put(&foreign_lock, record.to_string().as_bytes())
        .unwrap();
    for args in [&["--yes"][..], &["--yes", "--shard", "0/2"][..]] {
        let out = instance
            .stowage("refused", &[&["restore", &timestamp][..], args].concat())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(5), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("a restore in 3 shards into")
                && stderr(&out).contains(&foreign_lock),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    assert_eq!(
        instance.contents(),
        before_restore,
        "a refused restore changed a bucket"
    );
    instance.backups.delete(&foreign_lock).unwrap();

    // The pods, all at once.
    let started = std::time::Instant::now();
    let reports = instance.restore_shards(&timestamp, &[0, 1, 2]);
    eprintln!(
        "3 shards restored in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(
        instance.contents(),
        archive,
        "the buckets do not equal the archive"
    );
    assert!(
        instance.locks().is_empty(),
        "locks left: {:?}",
        instance.locks()
    );

    // Together they did the unsharded plan, each change once, each shard
    // only its own keys.
    for (component, unsharded) in components(&whole) {
        let (mut transfer, mut delete) = (BTreeSet::new(), BTreeSet::new());
        let (mut uploaded, mut deleted) = (0, 0);
        for (index, report) in reports.iter().enumerate() {
            assert_eq!(report["shard"]["index"], index);
            assert_eq!(report["shard"]["count"], SHARDS);
            let shard = components(report)[&component];
            for (kind, all) in [("transfer", &mut transfer), ("delete", &mut delete)] {
                let keys = planned(shard, kind);
                assert!(
                    keys.iter().all(|k| owned_by(&component, k) == index as u32),
                    "shard {index} planned another shard's key"
                );
                assert!(all.is_disjoint(&keys), "two shards planned one key");
                all.extend(keys);
            }
            assert_eq!(shard["verification"]["drifted"], serde_json::json!([]));
            uploaded += shard["uploaded"].as_u64().unwrap();
            deleted += shard["deleted"].as_u64().unwrap();
        }
        assert_eq!(transfer, planned(unsharded, "transfer"), "{component}");
        assert_eq!(delete, planned(unsharded, "delete"), "{component}");
        assert_eq!(uploaded, transfer.len() as u64, "{component}: uploads");
        assert_eq!(deleted, delete.len() as u64, "{component}: deletions");
        assert!(!transfer.is_empty() && !delete.is_empty());
    }

    // Each replaced version is in the snapshot of the shard that owns it.
    let snapshots = instance.tmp.contents().unwrap();
    for (component, overwritten) in &replaced {
        for (key, md5) in overwritten {
            let series = format!(
                "{component}.shard-{}-of-{SHARDS}.",
                owned_by(component, key)
            );
            let copies: Vec<&String> = snapshots
                .iter()
                .filter(|(k, m)| {
                    k.starts_with(&series) && k.ends_with(&format!("/{key}")) && *m == md5
                })
                .map(|(k, _)| k)
                .collect();
            assert_eq!(
                copies.len(),
                1,
                "{component}/{key} in the snapshots: {copies:?}"
            );
        }
    }

    // A second run of the job changes nothing.
    let again = instance.restore_shards(&timestamp, &[0, 1, 2]);
    assert_eq!(changes(&again), (0, 0));
    assert_eq!(instance.contents(), archive);
    assert_eq!(
        instance.tmp.contents().unwrap(),
        snapshots,
        "a no-op run snapshotted"
    );

    // One failed pod run again alone converges its own keys, and only them.
    instance.live_application_writes(&archive, 2);
    let shards = SHARDS.to_string();
    let out = &instance.restore_as_pods(&timestamp, &[1], &["--shards", &shards])[0];
    assert!(out.status.success(), "{}", stderr(out));
    let mut left_to_the_others = 0;
    for (component, now) in instance.contents() {
        let keys: BTreeSet<&String> = now.keys().chain(archive[component].keys()).collect();
        for key in keys {
            let restored = now.get(key) == archive[component].get(key);
            match owned_by(component, key) {
                1 => assert!(restored, "shard 1 left {component}/{key}"),
                _ => left_to_the_others += usize::from(!restored),
            }
        }
    }
    assert!(
        left_to_the_others > 0,
        "shard 1 restored other shards' keys"
    );
    instance.restore_shards(&timestamp, &[0, 2]);
    assert_eq!(instance.contents(), archive);
    assert!(instance.locks().is_empty());
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}
