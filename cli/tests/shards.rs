//! A sharded restore as a Kubernetes Indexed Job runs it, simulated on one
//! machine: three `stowage restore --shards 3` processes at once, each with
//! its own `JOB_COMPLETION_INDEX`, staging directory and request-counting
//! proxy, restore a 4-component archive over buckets with changed, missing
//! and extraneous objects on the S3 test server (the objstore plugin, as in
//! `deploy/kubernetes/`: no tool process per request keeps it quick). The
//! buckets, read back with the independent client, equal the archive; the
//! shards together did exactly the unsharded plan, each change once; each
//! pod fetched only its own components' byte ranges of the archive, and the
//! pods together made about as many requests as one process does; the
//! snapshots hold what was overwritten or deleted; a second run changes
//! nothing; one shard run again alone converges its own keys; an unsharded
//! restore, or shards of another N or archive, refuse while a shard's lock
//! is live; and no shard changes anything when another shard's part of the
//! archive is corrupt, or when the others never validate theirs.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Output, Stdio};

use common::{plugin_dir, stderr};
use serde_json::Value;
use stowage::archive::read::read_outer;
use stowage::restore::{Shard, ShardShares, JOB_COMPLETION_INDEX};
use stowage::store::lock::{hostname, lock_name};
use stowage_conformance::data::{content, LocalTree};
use stowage_conformance::scratch::{ScratchStore, ScratchStores};
use stowage_conformance::{infrastructure_missing, BucketToolStores};
use stowage_plugin_api::Location;
use stowage_test_proxy::{Proxy, Stats};

/// The archive's components.
const COMPONENTS: [&str; 4] = ["artifacts", "lfs", "registry", "uploads"];

/// Objects per component in the backup.
const OBJECTS: u64 = 40;

/// Shards of the run.
const SHARDS: u32 = 3;

/// Four component buckets, a backup destination and a tmp bucket on the S3
/// test server, and the config file that names them.
struct Instance {
    dir: tempfile::TempDir,
    s3: S3TestServer,
    buckets: BTreeMap<&'static str, Box<dyn ScratchStore>>,
    backups: Box<dyn ScratchStore>,
    tmp: Box<dyn ScratchStore>,
}

/// A component's bucket as the independent client lists it: key → MD5.
type Contents = BTreeMap<String, String>;

/// The S3 test server: its stores (for the independent client), and what
/// the objstore plugin needs to reach it.
struct S3TestServer {
    stores: BucketToolStores,
    config: String,
    credentials: String,
    endpoint: String,
}

/// The S3 test server; `None` (after saying so, or failing under CI)
/// without the test environment.
fn s3_test_server() -> Option<S3TestServer> {
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
    Some(S3TestServer {
        stores,
        config: config.clone(),
        credentials: credentials.clone(),
        endpoint: endpoint.clone(),
    })
}

/// What a pod (one `stowage` process) did: its output, and every request
/// it sent, as its own proxy counted them.
struct Pod {
    output: Output,
    requests: Stats,
}

impl Instance {
    fn new(s3: S3TestServer) -> Instance {
        let dir = tempfile::tempdir().unwrap();
        let backups = s3.stores.new_store("shard-backups");
        backups.create().unwrap();
        let tmp = s3.stores.new_store("shard-tmp");
        let mut config = format!(
            "label = \"stowage_gitlab\"\nbackup_destination = {:?}\ntmp_bucket = {:?}\n",
            backups.url(),
            tmp.url()
        );
        let mut buckets = BTreeMap::new();
        for (n, component) in COMPONENTS.into_iter().enumerate() {
            let bucket = s3.stores.new_store(&format!("shard-{component}"));
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
        Instance {
            dir,
            s3,
            buckets,
            backups,
            tmp,
        }
    }

    /// A plugins.toml that reaches the S3 test server at `endpoint` (the
    /// server itself, or a proxy in front of it).
    fn plugins_file(&self, endpoint: &str) -> std::path::PathBuf {
        let s3 = &self.s3;
        let path = self.dir.path().join(format!(
            "plugins-{}.toml",
            endpoint.replace([':', '/', '.'], "_")
        ));
        std::fs::write(
            &path,
            format!(
                "[schemes]\ns3 = \"objstore\"\n[plugins.objstore]\nlibrary = \"stowage_plugin_objstore\"\n[plugins.objstore.config]\ns3_config_file = {:?}\ns3_credentials_file = {:?}\ns3_endpoint = {endpoint:?}\n",
                s3.config, s3.credentials
            ),
        )
        .unwrap();
        path
    }

    /// The backup archive's name in the backup destination.
    fn archive_name(&self) -> String {
        let contents = self.backups.contents().unwrap();
        let mut archives = contents.keys().filter(|k| k.ends_with("_backup.tar"));
        archives.next().expect("a backup archive").clone()
    }

    /// `stowage ARGS` with this instance's config, staging in `staging`
    /// (each pod has its own), reaching the S3 test server at `endpoint`,
    /// no input.
    fn stowage_at(&self, endpoint: &str, staging: &str, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_stowage"));
        command
            .args(args)
            .arg("--config")
            .arg(self.dir.path().join("stowage.toml"))
            .arg("--plugins")
            .arg(self.plugins_file(endpoint))
            .env("STOWAGE_PLUGIN_PATH", plugin_dir())
            .env("STOWAGE_STAGING_DIR", self.dir.path().join(staging))
            .env_remove(JOB_COMPLETION_INDEX)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    /// `stowage ARGS`, reaching the S3 test server directly.
    fn stowage(&self, staging: &str, args: &[&str]) -> Command {
        self.stowage_at(&self.s3.endpoint, staging, args)
    }

    /// `stowage ARGS` through a proxy of its own, which counts its requests.
    fn stowage_counted(&self, staging: &str, args: &[&str]) -> Pod {
        let proxy = Proxy::start(&self.s3.endpoint).expect("the proxy starts");
        let output = self
            .stowage_at(&proxy.url(), staging, args)
            .output()
            .unwrap();
        Pod {
            output,
            requests: proxy.stats(),
        }
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

    /// `stowage restore SOURCE --yes --json ARGS`, one process per entry
    /// of `indices` at once, each with `JOB_COMPLETION_INDEX` set to it,
    /// its own staging directory and its own counting proxy: the pods of
    /// an Indexed Job.
    fn restore_as_pods(&self, source: &[&str], indices: &[u32], args: &[&str]) -> Vec<Pod> {
        let pods: Vec<_> = indices
            .iter()
            .map(|index| {
                let proxy = Proxy::start(&self.s3.endpoint).expect("the proxy starts");
                let mut command = self.stowage_at(
                    &proxy.url(),
                    &format!("pod-{index}"),
                    &[&["restore"], source, &["--yes", "--json"], args].concat(),
                );
                command.env(JOB_COMPLETION_INDEX, index.to_string());
                (proxy, command.spawn().unwrap())
            })
            .collect();
        pods.into_iter()
            .map(|(proxy, pod)| Pod {
                output: pod.wait_with_output().unwrap(),
                requests: proxy.stats(),
            })
            .collect()
    }

    /// The reports of [`Instance::restore_as_pods`] of the backup
    /// `timestamp` in shards of [`SHARDS`], each pod having succeeded, with
    /// each pod's requests.
    fn restore_shards(&self, timestamp: &str, indices: &[u32]) -> Vec<(Value, Stats)> {
        let shards = SHARDS.to_string();
        self.restore_as_pods(&[timestamp], indices, &["--shards", &shards])
            .into_iter()
            .map(|pod| {
                assert!(
                    pod.output.status.success(),
                    "a shard failed: {}",
                    stderr(&pod.output)
                );
                (
                    serde_json::from_slice(&pod.output.stdout).unwrap(),
                    pod.requests,
                )
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
fn changes<'a>(reports: impl IntoIterator<Item = &'a Value>) -> (u64, u64) {
    let mut totals = (0, 0);
    for report in reports {
        for component in components(report).values() {
            totals.0 += component["uploaded"].as_u64().unwrap();
            totals.1 += component["deleted"].as_u64().unwrap();
        }
    }
    totals
}

/// The shard that owns `key` of `component`, by the pieces a shard's
/// report names (every shard deals the same) and the same hash the binary
/// uses.
fn owner(pieces: &Value, component: &str, key: &str) -> u32 {
    let owners: Vec<u32> = pieces[component]
        .as_array()
        .unwrap_or_else(|| panic!("{component} is dealt to no shard: {pieces}"))
        .iter()
        .map(|o| o.as_u64().unwrap() as u32)
        .collect();
    let piece = Shard::of_key(component, key, owners.len() as u32);
    owners[piece as usize]
}

/// The byte ranges (offset, length) of `path` a pod fetched, from the
/// `Range` headers its proxy saw; panics on a GET of the whole object.
fn ranges_fetched(requests: &Stats, path: &str) -> Vec<(u64, u64)> {
    let gets = requests.gets.get(path).cloned().unwrap_or_default();
    gets.iter()
        .map(|range| {
            let (first, last) = range
                .strip_prefix("bytes=")
                .and_then(|r| r.split_once('-'))
                .unwrap_or_else(|| panic!("{path} fetched whole ({range:?}), not by range"));
            let (first, last): (u64, u64) = (first.parse().unwrap(), last.parse().unwrap());
            (first, last - first + 1)
        })
        .collect()
}

/// Where each component's tarball lies in the archive `bytes`:
/// component → (offset, length).
fn tarball_spans(bytes: &[u8]) -> BTreeMap<String, (u64, u64)> {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), bytes).unwrap();
    read_outer(file.path())
        .unwrap()
        .tarballs()
        .map(|t| (t.component.to_string(), (t.start, t.len)))
        .collect()
}

#[test]
fn three_pods_restore_a_four_component_archive_together_as_one_would() {
    let Some(s3) = s3_test_server() else {
        return;
    };
    let instance = Instance::new(s3);
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
    assert!(whole["shard"].is_null() && whole["shard_pieces"].is_null());

    // A live shard lock keeps out of its bucket an unsharded restore, the
    // shards of another count, and those of a run restoring another
    // archive (the shards with a part of uploads, by the deal every shard
    // makes from the archive's tarball sizes).
    let archive_bytes = instance.backups.get(&instance.archive_name()).unwrap();
    let spans = tarball_spans(&archive_bytes);
    let with_uploads = |count: u32| {
        (0..count)
            .find(|&index| {
                let sizes = spans.iter().map(|(c, (_, len))| (c.as_str(), *len));
                ShardShares::deal(Shard::new(index, count).unwrap(), sizes).has_part_of("uploads")
            })
            .unwrap()
    };
    let uploads_bucket = Location::parse(&instance.buckets["uploads"].url());
    let foreign_index = (with_uploads(SHARDS) + 1) % SHARDS;
    let foreign_lock = format!(
        "{}@shard-{foreign_index}-of-{SHARDS}",
        lock_name(&uploads_bucket)
    );
    let record = serde_json::json!({
        "host": hostname(), "pid": std::process::id(), "started": unix_now(),
        "token": "held-by-the-test", "archive": "1_2020_01_01_another_backup.tar"
    });
    instance
        .backups
        .put(&foreign_lock, record.to_string().as_bytes())
        .unwrap();
    let of_two = format!("{}/2", with_uploads(2));
    let of_three = format!("{}/{SHARDS}", with_uploads(SHARDS));
    let refusals = [
        (&["--yes"][..], "a restore in 3 shards into"),
        (
            &["--yes", "--shard", &of_two][..],
            "a restore in 3 shards into",
        ),
        (
            &["--yes", "--shard", &of_three][..],
            "a restore in 3 shards of another archive (1_2020_01_01_another_backup.tar) into",
        ),
    ];
    for (args, expected) in refusals {
        let out = instance
            .stowage("refused", &[&["restore", &timestamp][..], args].concat())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(5), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(expected) && stderr(&out).contains(&foreign_lock),
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
    let pods = instance.restore_shards(&timestamp, &[0, 1, 2]);
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
    let reports: Vec<&Value> = pods.iter().map(|(report, _)| report).collect();
    let pieces = &reports[0]["shard_pieces"];
    assert!(
        reports.iter().all(|r| &r["shard_pieces"] == pieces),
        "the shards dealt the components differently"
    );
    let owned_by = |component: &str, key: &str| owner(pieces, component, key);

    // Together they did the unsharded plan, each change once, each shard
    // only its own keys.
    for (component, unsharded) in components(&whole) {
        let (mut transfer, mut delete) = (BTreeSet::new(), BTreeSet::new());
        let (mut uploaded, mut deleted) = (0, 0);
        for (index, report) in reports.iter().enumerate() {
            assert_eq!(report["shard"]["index"], index);
            assert_eq!(report["shard"]["count"], SHARDS);
            let Some(shard) = components(report).get(&component).copied() else {
                continue;
            };
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

    // Each pod fetched its own components' tarballs, one range each, and
    // nothing of the others': the rest it read was the outer tar's headers
    // and small entries.
    let archive_name = instance.archive_name();
    let tarball_bytes: u64 = spans.values().map(|(_, len)| len).sum();
    let archive_path = format!(
        "/{}/{archive_name}",
        instance.backups.url().trim_start_matches("s3://")
    );
    let mut fetched_in_all = 0;
    for (index, (_, requests)) in pods.iter().enumerate() {
        let ranges = ranges_fetched(requests, &archive_path);
        let mut own_bytes = 0;
        for (component, &(start, len)) in &spans {
            let touching: Vec<(u64, u64)> = ranges
                .iter()
                .copied()
                .filter(|&(offset, length)| offset < start + len && start < offset + length)
                .collect();
            let owners = pieces[component].as_array().unwrap();
            match owners.iter().any(|o| o == index) {
                true => {
                    assert_eq!(touching, [(start, len)], "pod {index}: {component}");
                    own_bytes += len;
                }
                false => assert!(
                    touching.is_empty(),
                    "pod {index} fetched {touching:?} of {component}.tar.gz, another shard's"
                ),
            }
        }
        let fetched: u64 = ranges.iter().map(|(_, length)| length).sum();
        assert!(
            fetched <= own_bytes + (archive_bytes.len() as u64 - tarball_bytes),
            "pod {index} fetched {fetched} bytes of the archive"
        );
        fetched_in_all += fetched;
    }
    eprintln!(
        "the pods fetched {fetched_in_all} bytes of the {}-byte archive in all",
        archive_bytes.len()
    );

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
    assert_eq!(changes(again.iter().map(|(report, _)| report)), (0, 0));
    assert_eq!(instance.contents(), archive);
    assert_eq!(
        instance.tmp.contents().unwrap(),
        snapshots,
        "a no-op run snapshotted"
    );

    // One failed pod run again alone converges its own keys, and only them.
    instance.live_application_writes(&archive, 2);
    let shards = SHARDS.to_string();
    let pod = &instance.restore_as_pods(&[&timestamp], &[1], &["--shards", &shards])[0];
    assert!(pod.output.status.success(), "{}", stderr(&pod.output));
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

    // The same restore by one process, then by the three pods: about as
    // many requests in all (the pods' extra: each walks the outer tar's
    // headers, reads the others' locks and validation verdicts).
    instance.live_application_writes(&archive, 3);
    let one = instance.stowage_counted("one", &["restore", &timestamp, "--yes", "--json"]);
    assert!(one.output.status.success(), "{}", stderr(&one.output));
    instance.live_application_writes(&archive, 4);
    let pods = instance.restore_shards(&timestamp, &[0, 1, 2]);
    assert_eq!(instance.contents(), archive);
    let one_process = one.requests.total.requests;
    let in_pods: u64 = pods.iter().map(|(_, r)| r.total.requests).sum();
    eprintln!("requests: one process {one_process}, three pods {in_pods} in all");
    for (_, requests) in &pods {
        eprintln!(
            "  a pod: {:?}",
            requests
                .classes
                .iter()
                .map(|(c, n)| (c, n.requests))
                .collect::<Vec<_>>()
        );
    }
    eprintln!(
        "  one process: {:?}",
        one.requests
            .classes
            .iter()
            .map(|(c, n)| (c, n.requests))
            .collect::<Vec<_>>()
    );
    assert!(
        in_pods <= one_process * 3 / 2,
        "three pods made {in_pods} requests, one process {one_process}"
    );
}

/// Copies the backup archive into the backup destination under another
/// name (so that no verdict of the original speaks for it), with
/// `damage` applied to its bytes; its `s3://` URL.
fn archive_copy(instance: &Instance, name: &str, damage: impl FnOnce(&mut Vec<u8>)) -> String {
    let mut bytes = instance.backups.get(&instance.archive_name()).unwrap();
    damage(&mut bytes);
    instance.backups.put(name, &bytes).unwrap();
    format!("{}/{name}", instance.backups.url())
}

#[test]
fn no_shard_changes_anything_unless_every_part_of_the_archive_validated() {
    let Some(s3) = s3_test_server() else {
        return;
    };
    let instance = Instance::new(s3);
    instance.backup();
    let archive = instance.contents();
    instance.live_application_writes(&archive, 1);
    let before = instance.contents();
    let shards = SHARDS.to_string();

    // One component's tarball damaged in the middle, the archive's layout
    // unchanged: the shard that fetches it refuses it, and the others,
    // whose own parts are sound, stop with its reason.
    let original = instance.backups.get(&instance.archive_name()).unwrap();
    let spans = tarball_spans(&original);
    let (start, len) = spans["lfs"];
    let damaged = archive_copy(&instance, "damaged.tar", |bytes| {
        let middle = (start + len / 2) as usize;
        bytes[middle] ^= 0xff;
    });
    let pods = instance.restore_as_pods(&["--file", &damaged], &[0, 1, 2], &["--shards", &shards]);
    for (index, pod) in pods.iter().enumerate() {
        assert_eq!(
            pod.output.status.code(),
            Some(4),
            "pod {index}: {}",
            stderr(&pod.output)
        );
    }
    let others_reason = pods
        .iter()
        .filter(|pod| stderr(&pod.output).contains("found damaged.tar invalid"))
        .count();
    assert!(
        others_reason >= 1,
        "no shard stopped with another's reason: {:?}",
        pods.iter().map(|p| stderr(&p.output)).collect::<Vec<_>>()
    );
    assert_eq!(instance.contents(), before, "a bucket changed");

    // A shard whose partners never come changes nothing, and says so.
    let lonely = archive_copy(&instance, "lonely.tar", |_| {});
    let pod = &instance.restore_as_pods(
        &["--file", &lonely],
        &[0],
        &["--shards", &shards, "--shard-wait", "1s"],
    )[0];
    assert_eq!(pod.output.status.code(), Some(5), "{}", stderr(&pod.output));
    assert!(
        stderr(&pod.output).contains("no other shard validated")
            && stderr(&pod.output).contains("nothing was changed"),
        "{}",
        stderr(&pod.output)
    );
    assert_eq!(instance.contents(), before, "a bucket changed");
    assert!(instance.locks().is_empty(), "{:?}", instance.locks());
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}
