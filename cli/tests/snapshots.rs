//! `stowage snapshots list` and `stowage snapshots prune`, run as a user
//! runs them, on the fs plugin: real snapshots made by a restore, older
//! ones laid out the same way, and objects in the tmp bucket that are no
//! snapshot and must never be touched.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::{stderr, stdout, FsInstance};

/// Objects in the tmp bucket that are not in a `<component>.<unix-ts>/` prefix.
const NOT_SNAPSHOTS: [&str; 4] = [
    "notes.txt",
    "uploads.1400000000",
    "uploads.old/a.txt",
    "archive/uploads.1500000000/a.txt",
];

/// An instance with a real snapshot (a restore over a changed bucket),
/// older snapshots of `uploads` and of `lfs` laid out like it, and the
/// objects of [`NOT_SNAPSHOTS`]. Returns it and the real snapshot's name.
fn instance_with_snapshots() -> (FsInstance, String) {
    let instance = FsInstance::new("{work}/backups");
    let timestamp = instance.backup(&[]);
    std::fs::write(instance.bucket().join("a.txt"), b"changed").unwrap();
    let out = instance.run(&["restore", &timestamp, "--yes", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let real = report["components"][0]["snapshot"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    for (snapshot, objects) in [
        ("uploads.1600000000", 2),
        ("uploads.1500000000", 1),
        ("lfs.1550000000", 3),
    ] {
        for i in 0..objects {
            write(
                &instance.tmp(),
                &format!("{snapshot}/dir/{i}.bin"),
                b"12345",
            );
        }
    }
    for key in NOT_SNAPSHOTS {
        write(&instance.tmp(), key, b"not a snapshot");
    }
    (instance, real)
}

fn write(root: &Path, key: &str, content: &[u8]) {
    let path = root.join(key);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

/// Every file below `root`, as keys.
fn keys(root: &Path) -> BTreeSet<String> {
    fn walk(root: &Path, dir: &Path, found: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, found);
            } else {
                let key = path.strip_prefix(root).unwrap().to_string_lossy();
                found.insert(key.into_owned());
            }
        }
    }
    let mut found = BTreeSet::new();
    walk(root, root, &mut found);
    found
}

/// The snapshot names of a JSON report's rows (`snapshots list --json`,
/// or a prune report's `snapshots` filtered by `action`).
fn names(rows: &serde_json::Value, action: Option<&str>) -> Vec<String> {
    rows.as_array()
        .unwrap()
        .iter()
        .filter(|r| action.is_none_or(|a| r["action"] == a))
        .map(|r| format!("{}.{}", r["component"].as_str().unwrap(), r["timestamp"]))
        .collect()
}

#[test]
fn snapshots_list_shows_each_snapshot_newest_first_with_its_size() {
    let (instance, real) = instance_with_snapshots();

    let out = instance.run(&["snapshots", "list", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        names(&rows, None),
        [
            &real,
            "uploads.1600000000",
            "lfs.1550000000",
            "uploads.1500000000"
        ]
    );
    let lfs = &rows[2];
    assert_eq!(lfs["time"], "2019-02-12T19:33:20Z");
    assert_eq!(
        (lfs["objects"].as_u64(), lfs["bytes"].as_u64()),
        (Some(3), Some(15))
    );
    assert_eq!(
        rows[0]["objects"], 1,
        "the restore snapshotted a.txt: {rows}"
    );

    let out = instance.run(&["snapshots", "list", "--component", "lfs"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(
        text.starts_with("lfs.1550000000")
            && text.contains("2019-02-12T19:33:20Z  1550000000")
            && text.contains("3 objects")
            && text.contains("15 bytes"),
        "{text}"
    );
}

#[test]
fn a_prune_shows_its_plan_asks_and_deletes_only_what_its_rules_let_go() {
    let (instance, real) = instance_with_snapshots();
    let before = keys(&instance.tmp());

    // Neither rule: refused, one line.
    let out = instance.run(&["snapshots", "prune", "--yes"]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
    assert!(stderr(&out).contains("needs --keep N, --older-than DURATION or both"));

    // A dry run shows the plan and changes nothing.
    let out = instance.run(&["snapshots", "prune", "--keep", "1", "--dry-run"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let plan = stdout(&out);
    assert!(
        plan.contains("delete  uploads.1600000000") && plan.contains("not among the newest 1"),
        "{plan}"
    );
    assert!(
        plan.contains(&format!("keep    {real}")) && plan.contains("keep    lfs.1550000000"),
        "{plan}"
    );
    assert!(plan.ends_with("dry run: nothing was deleted\n"), "{plan}");
    assert_eq!(keys(&instance.tmp()), before);

    // Without a terminal and without --yes: refused, nothing deleted.
    let out = instance.run(&["snapshots", "prune", "--keep", "1"]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no terminal to confirm on; add --yes"),
        "{}",
        stderr(&out)
    );
    assert_eq!(keys(&instance.tmp()), before);

    // Both rules: a snapshot goes only when neither keeps it.
    let out = instance.run(&[
        "snapshots",
        "prune",
        "--keep",
        "1",
        "--older-than",
        "3000d",
        "--yes",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        names(&report["snapshots"], Some("delete")),
        ["uploads.1500000000"]
    );
    assert_eq!(report["deleted_snapshots"], 1);
    assert_eq!(
        (
            report["deleted_objects"].as_u64(),
            report["deleted_bytes"].as_u64()
        ),
        (Some(1), Some(5))
    );
    let after = keys(&instance.tmp());
    assert!(
        after.iter().all(|k| !k.starts_with("uploads.1500000000/")),
        "{after:?}"
    );
    assert_eq!(before.len() - 1, after.len(), "{after:?}");

    // --older-than alone, for one component.
    let out = instance.run(&[
        "snapshots",
        "prune",
        "--older-than",
        "30d",
        "--component",
        "uploads",
        "--yes",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("deleted 1 snapshot (2 objects, 10 bytes)"),
        "{}",
        stdout(&out)
    );
    assert!(
        stdout(&out).contains("older than 30days"),
        "{}",
        stdout(&out)
    );

    let left = keys(&instance.tmp());
    let expected: BTreeSet<String> = NOT_SNAPSHOTS
        .iter()
        .map(|k| k.to_string())
        .chain((0..3).map(|i| format!("lfs.1550000000/dir/{i}.bin")))
        .chain([format!("{real}/a.txt")])
        .collect();
    assert_eq!(left, expected);
    assert!(
        !instance.tmp().join("uploads.1600000000").exists(),
        "an emptied snapshot directory is left"
    );
}

#[test]
fn a_prune_keeps_the_snapshots_of_a_component_whose_restore_may_be_running() {
    let (instance, real) = instance_with_snapshots();
    // A live lock on the uploads bucket: held by this (running) test process.
    let lock = instance.path().join("backups").join(format!(
        ".stowage-lock.file___{}",
        instance.bucket().display().to_string().replace('/', "_")
    ));
    let record = serde_json::json!({
        "host": std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap().trim(),
        "pid": std::process::id(),
        "started": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs(),
        "token": "running",
    });
    std::fs::write(&lock, record.to_string()).unwrap();
    let before = keys(&instance.tmp());

    // uploads is locked; lfs is not configured, so its lock cannot be found.
    let out = instance.run(&["snapshots", "prune", "--keep", "0", "--yes", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        names(&report["snapshots"], Some("delete")),
        Vec::<String>::new()
    );
    assert_eq!(report["deleted_snapshots"], 0);
    for row in report["snapshots"].as_array().unwrap() {
        let reason = row["reason"].as_str().unwrap();
        let expected = match row["component"].as_str().unwrap() {
            "uploads" => format!(
                "may be running (lock {}",
                lock.file_name().unwrap().to_string_lossy()
            ),
            _ => "name its bucket with --bucket lfs=URL to prune it".to_string(),
        };
        assert!(reason.contains(&expected), "{reason}");
    }
    assert_eq!(keys(&instance.tmp()), before);

    let lfs = format!("lfs=file://{}/buckets/lfs", instance.path().display());
    let out = instance.run(&[
        "snapshots",
        "prune",
        "--keep",
        "0",
        "--yes",
        "--bucket",
        &lfs,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("deleted 1 snapshot (3 objects"),
        "{}",
        stdout(&out)
    );
    assert!(instance.tmp().join(&real).join("a.txt").is_file());
    assert!(!instance.tmp().join("lfs.1550000000").exists());

    // The restore ended (its lock is gone): now they go.
    std::fs::remove_file(&lock).unwrap();
    let out = instance.run(&["snapshots", "prune", "--keep", "0", "--yes"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("deleted 3 snapshots"),
        "{}",
        stdout(&out)
    );
    let left: BTreeSet<String> = NOT_SNAPSHOTS.iter().map(|k| k.to_string()).collect();
    assert_eq!(keys(&instance.tmp()), left);
}
