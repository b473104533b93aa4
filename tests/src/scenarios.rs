//! The conformance scenarios. Each takes a [`Harness`], builds what it needs
//! in fresh scratch buckets and temporary trees, and checks the bytes in the
//! bucket with the independent reader.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{ensure, Result};
use stowage::sync::{run_sync, SyncOutcome};
use stowage_plugin_api::{ActionKind, ErrorKind, Location, Progress, SyncOptions};
use stowage_plugin_api::{IgnoreProgress, ProgressSink};

use crate::data::{content, LocalTree};
use crate::harness::Harness;
use crate::scratch::{md5_hex, ScratchStore};

// The scenarios of the methods API 1.1 added, in a module of their own.
pub use crate::scenarios_1_1::{
    a_planned_sync_leaves_the_destination_equal_to_the_source,
    byte_ranges_read_exactly_those_bytes,
    listing_chosen_keys_gives_the_entries_of_the_full_listing,
};
// And those of what API 1.2 added.
pub use crate::scenarios_1_2::{
    a_page_starts_after_any_key_below_any_prefix,
    pages_of_a_listing_concatenate_to_the_sorted_listing,
};

const THIRTY_DAYS: Duration = Duration::from_secs(30 * 24 * 3600);

fn remote(store: &dyn ScratchStore) -> Location {
    Location::parse(&store.url())
}

fn options(delete: bool) -> SyncOptions {
    SyncOptions {
        delete,
        ..SyncOptions::default()
    }
}

fn keys<'a>(items: impl IntoIterator<Item = &'a str>) -> BTreeSet<String> {
    items.into_iter().map(str::to_string).collect()
}

/// A small tree: nested folders, an empty file, sizes from 0 to 70 KB.
fn standard_tree() -> Result<LocalTree> {
    let tree = LocalTree::new()?;
    tree.write("a.txt", &content(1, 10))?;
    tree.write("empty", b"")?;
    tree.write("dir/b.bin", &content(2, 1000))?;
    tree.write("dir/sub/c.bin", &content(3, 5000))?;
    tree.write("dir/sub/d.bin", &content(4, 70_000))?;
    tree.write("other/e.txt", &content(5, 77))?;
    Ok(tree)
}

/// Keys the tool transferred plus those Stowage had to repair.
fn transferred(outcome: &SyncOutcome) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    if let Some(report) = &outcome.tool_report {
        for kind in [ActionKind::Upload, ActionKind::Download, ActionKind::Copy] {
            keys.extend(report.keys(kind));
        }
    }
    if let Some(v) = &outcome.verification {
        keys.extend(v.repaired.iter().map(|k| k.to_string()));
    }
    keys
}

/// Keys the tool deleted plus those Stowage deleted as planned.
fn deleted(outcome: &SyncOutcome) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    if let Some(report) = &outcome.tool_report {
        keys.extend(report.keys(ActionKind::Delete));
    }
    if let Some(v) = &outcome.verification {
        keys.extend(v.deleted.iter().map(|k| k.to_string()));
    }
    keys
}

fn ensure_same(
    actual: &BTreeMap<String, String>,
    expected: &BTreeMap<String, String>,
    what: &str,
) -> Result<()> {
    ensure!(
        actual == expected,
        "{what}: bucket differs from the expected content\n  bucket:   {actual:?}\n  expected: {expected:?}"
    );
    Ok(())
}

/// Syncing a tree into an empty bucket uploads every file, byte for byte.
pub fn first_sync_into_an_empty_bucket(h: &Harness) -> Result<()> {
    let tree = standard_tree()?;
    let bucket = h.bucket("first")?;
    let outcome = h.sync(&tree.location(), &remote(&*bucket), &options(true))?;
    ensure_same(
        &bucket.contents()?,
        &tree.contents()?,
        "after the first sync",
    )?;
    let all: BTreeSet<String> = tree.contents()?.into_keys().collect();
    ensure!(
        transferred(&outcome) == all,
        "uploads {:?} != files {all:?}",
        transferred(&outcome)
    );
    let v = outcome.verification.expect("a real run verifies");
    ensure!(
        v.repaired.is_empty(),
        "the tool missed uploads on a first sync: {:?}",
        v.repaired
    );
    ensure!(
        v.verified as usize + v.size_only.len() == all.len(),
        "not every object was verified: {v:?}"
    );
    Ok(())
}

/// Re-syncing an unchanged tree uploads and deletes nothing.
pub fn a_second_sync_uploads_nothing(h: &Harness) -> Result<()> {
    let tree = standard_tree()?;
    let bucket = h.bucket("resync")?;
    h.sync(&tree.location(), &remote(&*bucket), &options(true))?;
    let again = h.sync(&tree.location(), &remote(&*bucket), &options(true))?;
    ensure!(
        again.plan.transfer.is_empty() && again.plan.delete.is_empty(),
        "plan is not empty: {:?}",
        again.plan
    );
    ensure!(
        transferred(&again).is_empty(),
        "second sync uploaded {:?}",
        transferred(&again)
    );
    ensure!(
        deleted(&again).is_empty(),
        "second sync deleted {:?}",
        deleted(&again)
    );
    ensure_same(
        &bucket.contents()?,
        &tree.contents()?,
        "after the second sync",
    )
}

/// A file rewritten with the same size and an *older* mtime — what restoring
/// an old backup looks like — is uploaded.
pub fn a_same_size_change_with_an_older_mtime_is_uploaded(h: &Harness) -> Result<()> {
    let tree = standard_tree()?;
    let bucket = h.bucket("older")?;
    h.sync(&tree.location(), &remote(&*bucket), &options(true))?;
    tree.write("dir/b.bin", &content(99, 1000))?;
    tree.set_age("dir/b.bin", THIRTY_DAYS)?;
    let outcome = h.sync(&tree.location(), &remote(&*bucket), &options(true))?;
    let planned: BTreeSet<String> = outcome
        .plan
        .transfer
        .iter()
        .map(|o| o.key.to_string())
        .collect();
    ensure!(planned == keys(["dir/b.bin"]), "plan {planned:?}");
    ensure!(
        transferred(&outcome) == keys(["dir/b.bin"]),
        "uploads {:?}",
        transferred(&outcome)
    );
    ensure_same(
        &bucket.contents()?,
        &tree.contents()?,
        "after the same-size change",
    )
}

/// New files are uploaded and removed ones deleted when deleting.
pub fn new_and_deleted_files_are_synced_with_delete(h: &Harness) -> Result<()> {
    let tree = standard_tree()?;
    let bucket = h.bucket("newdel")?;
    h.sync(&tree.location(), &remote(&*bucket), &options(true))?;
    tree.write("new/file.txt", &content(6, 321))?;
    tree.remove("a.txt")?;
    tree.remove("dir/sub/c.bin")?;
    let outcome = h.sync(&tree.location(), &remote(&*bucket), &options(true))?;
    ensure!(
        transferred(&outcome) == keys(["new/file.txt"]),
        "uploads {:?}",
        transferred(&outcome)
    );
    ensure!(
        deleted(&outcome) == keys(["a.txt", "dir/sub/c.bin"]),
        "deletes {:?}",
        deleted(&outcome)
    );
    ensure_same(
        &bucket.contents()?,
        &tree.contents()?,
        "after adding and deleting",
    )
}

/// Without `delete`, objects missing from the source stay.
pub fn without_delete_nothing_is_removed(h: &Harness) -> Result<()> {
    let tree = standard_tree()?;
    let bucket = h.bucket("nodelete")?;
    h.sync(&tree.location(), &remote(&*bucket), &options(true))?;
    let before = bucket.contents()?;
    tree.remove("a.txt")?;
    let outcome = h.sync(&tree.location(), &remote(&*bucket), &options(false))?;
    ensure!(
        deleted(&outcome).is_empty(),
        "deleted {:?}",
        deleted(&outcome)
    );
    ensure_same(&bucket.contents()?, &before, "after a sync without delete")
}

/// Excluded paths are neither uploaded nor deleted, even with `delete`.
pub fn excluded_paths_are_neither_uploaded_nor_deleted(h: &Harness) -> Result<()> {
    let bucket = h.bucket("exclude")?;
    bucket.put("tmp/builds/old.log", &content(7, 50))?;
    bucket.put("tmp/builds/7/trace.log", &content(8, 60))?;
    bucket.put("stale.txt", &content(9, 20))?;
    let tree = LocalTree::new()?;
    tree.write("tmp/builds/new.log", &content(10, 40))?;
    tree.write("tmp/other.txt", &content(11, 30))?;
    tree.write("x.txt", &content(12, 10))?;
    let mut opts = options(true);
    opts.excludes = vec!["tmp/builds/*".to_string()];
    h.sync(&tree.location(), &remote(&*bucket), &opts)?;
    let expected = BTreeMap::from([
        ("tmp/builds/old.log".to_string(), md5_hex(&content(7, 50))),
        (
            "tmp/builds/7/trace.log".to_string(),
            md5_hex(&content(8, 60)),
        ),
        ("tmp/other.txt".to_string(), md5_hex(&content(11, 30))),
        ("x.txt".to_string(), md5_hex(&content(12, 10))),
    ]);
    ensure_same(&bucket.contents()?, &expected, "after a sync with excludes")
}

/// The keys users really have: spaces, unicode, `+`, `%`, `#`, `'`, deep
/// nesting — up into the bucket and back down, unchanged.
pub fn awkward_keys_round_trip(h: &Harness) -> Result<()> {
    let tree = LocalTree::new()?;
    let names = [
        "with space/file name.txt",
        "unicodé/ñandú/文件.bin",
        "plus+sign.txt",
        "percent%20encoded.txt",
        "hash#tag.txt",
        "quote'single.txt",
        "deep/a/b/c/d/e/f/g/h/i/j/k.txt",
    ];
    for (i, name) in names.iter().enumerate() {
        tree.write(name, &content(20 + i as u64, 100 + i))?;
    }
    let bucket = h.bucket("awkward")?;
    h.sync(&tree.location(), &remote(&*bucket), &options(true))?;
    ensure_same(
        &bucket.contents()?,
        &tree.contents()?,
        "awkward keys uploaded",
    )?;
    let again = h.sync(&tree.location(), &remote(&*bucket), &options(true))?;
    ensure!(
        transferred(&again).is_empty(),
        "awkward keys uploaded twice: {:?}",
        transferred(&again)
    );
    let back = LocalTree::new()?;
    h.sync(&remote(&*bucket), &back.location(), &options(true))?;
    ensure_same(
        &back.contents()?,
        &tree.contents()?,
        "awkward keys downloaded",
    )
}

/// An empty source syncs as nothing into an empty bucket, empties a bucket
/// with `delete`, and leaves it alone without.
pub fn an_empty_source_empties_the_bucket_only_with_delete(h: &Harness) -> Result<()> {
    let empty = LocalTree::new()?;
    let bucket = h.bucket("empty")?;
    let outcome = h.sync(&empty.location(), &remote(&*bucket), &options(true))?;
    ensure!(
        transferred(&outcome).is_empty() && deleted(&outcome).is_empty(),
        "actions on empty sync"
    );
    ensure!(bucket.contents()?.is_empty(), "bucket not empty");
    bucket.put("one.txt", b"1")?;
    bucket.put("two/three.txt", b"3")?;
    h.sync(&empty.location(), &remote(&*bucket), &options(false))?;
    ensure!(
        bucket.contents()?.len() == 2,
        "a sync without delete removed objects"
    );
    let outcome = h.sync(&empty.location(), &remote(&*bucket), &options(true))?;
    ensure!(
        deleted(&outcome) == keys(["one.txt", "two/three.txt"]),
        "deletes {:?}",
        deleted(&outcome)
    );
    ensure!(bucket.contents()?.is_empty(), "bucket not emptied");
    Ok(())
}

/// A dry run changes nothing, Stowage's plan names exactly what the real run
/// then does, and the tool's own dry run names what the tool then does.
pub fn the_dry_run_plan_equals_the_real_actions(h: &Harness) -> Result<()> {
    let tree = standard_tree()?;
    let bucket = h.bucket("dryrun")?;
    let location = remote(&*bucket);
    h.sync(&tree.location(), &location, &options(true))?;
    tree.write("dir/b.bin", &content(98, 1000))?;
    tree.set_age("dir/b.bin", THIRTY_DAYS)?;
    tree.write("added.txt", &content(13, 500))?;
    tree.remove("other/e.txt")?;
    let before = bucket.contents()?;

    let mut dry = options(true);
    dry.dry_run = true;
    let plan = h.sync(&tree.location(), &location, &dry)?.plan;
    let tool_plan = h
        .plugin
        .provider()
        .sync(&tree.location(), &location, &dry, &IgnoreProgress)?;
    ensure_same(&bucket.contents()?, &before, "after the dry runs")?;

    let planned: BTreeSet<String> = plan.transfer.iter().map(|o| o.key.to_string()).collect();
    let planned_deletes: BTreeSet<String> = plan.delete.iter().map(|o| o.key.to_string()).collect();
    ensure!(
        planned == keys(["added.txt", "dir/b.bin"]),
        "planned uploads {planned:?}"
    );
    ensure!(
        planned_deletes == keys(["other/e.txt"]),
        "planned deletes {planned_deletes:?}"
    );

    let outcome = h.sync(&tree.location(), &location, &options(true))?;
    ensure!(
        transferred(&outcome) == planned,
        "real uploads {:?} != plan {planned:?}",
        transferred(&outcome)
    );
    ensure!(
        deleted(&outcome) == planned_deletes,
        "real deletes {:?} != plan {planned_deletes:?}",
        deleted(&outcome)
    );
    // The tool transfers; the deletes are Stowage's, after the transfers.
    let report = outcome
        .tool_report
        .as_ref()
        .expect("a real run has a tool report");
    ensure!(
        tool_plan.keys(ActionKind::Upload) == report.keys(ActionKind::Upload),
        "the tool's dry run (uploads {:?}) differs from its real run ({:?})",
        tool_plan.keys(ActionKind::Upload),
        report.keys(ActionKind::Upload)
    );
    let tool_deletes: BTreeSet<String> = tool_plan.keys(ActionKind::Delete).into_iter().collect();
    ensure!(
        tool_deletes == deleted(&outcome),
        "the tool's dry run (deletes {tool_deletes:?}) differs from the real run ({:?})",
        deleted(&outcome)
    );
    ensure_same(&bucket.contents()?, &tree.contents()?, "after the real run")
}

/// One bucket syncs into another (and into a prefix of it), copying only
/// what differs.
pub fn a_bucket_syncs_into_another_bucket(h: &Harness) -> Result<()> {
    let source = h.bucket("b2b-src")?;
    for i in 0..5u64 {
        source.put(&format!("f/{i}.bin"), &content(30 + i, 200 + i as usize))?;
    }
    let destination = h.bucket("b2b-dst")?;
    destination.put("f/0.bin", &content(30, 200))?;
    destination.put("extra.txt", b"x")?;
    let into = remote(&*destination).join("snapshot.1");
    let outcome = h.sync(&remote(&*source), &into, &options(true))?;
    ensure!(
        transferred(&outcome).len() == 5,
        "copied {:?}",
        transferred(&outcome)
    );
    let expected: BTreeMap<String, String> = source
        .contents()?
        .into_iter()
        .map(|(k, m)| (format!("snapshot.1/{k}"), m))
        .chain([
            ("f/0.bin".to_string(), md5_hex(&content(30, 200))),
            ("extra.txt".to_string(), md5_hex(b"x")),
        ])
        .collect();
    ensure_same(
        &destination.contents()?,
        &expected,
        "after bucket-to-bucket sync",
    )?;
    let again = h.sync(&remote(&*source), &into, &options(true))?;
    ensure!(
        transferred(&again).is_empty(),
        "copied again {:?}",
        transferred(&again)
    );
    Ok(())
}

/// A bucket syncs down into a directory that does not exist yet, and a
/// same-size change in the bucket comes down on the next sync.
pub fn a_bucket_syncs_down_into_a_directory(h: &Harness) -> Result<()> {
    let bucket = h.bucket("down")?;
    bucket.put("a/1.bin", &content(40, 3000))?;
    bucket.put("b.txt", &content(41, 12))?;
    let parent = LocalTree::new()?;
    let target = Location::Local {
        path: parent
            .path()
            .join("staging")
            .to_string_lossy()
            .as_ref()
            .into(),
    };
    h.sync(&remote(&*bucket), &target, &options(true))?;
    let staged = || -> Result<BTreeMap<String, String>> {
        Ok(parent
            .contents()?
            .into_iter()
            .filter_map(|(k, m)| k.strip_prefix("staging/").map(|k| (k.to_string(), m)))
            .collect())
    };
    ensure_same(&staged()?, &bucket.contents()?, "after the download")?;
    bucket.put("b.txt", &content(42, 12))?;
    h.sync(&remote(&*bucket), &target, &options(true))?;
    ensure_same(
        &staged()?,
        &bucket.contents()?,
        "after a same-size change in the bucket",
    )
}

/// `list` reports every object with its size, and a correct MD5 where it
/// reports one (always, for single-part objects, if the plugin says so).
pub fn listings_report_sizes_and_checksums(h: &Harness) -> Result<()> {
    let bucket = h.bucket("list")?;
    let objects: Vec<(String, Vec<u8>)> = (0..6u64)
        .map(|i| {
            (
                format!("p/{i}/obj {i}.bin"),
                content(50 + i, (i * 997) as usize),
            )
        })
        .collect();
    for (key, data) in &objects {
        bucket.put(key, data)?;
    }
    let listed = h.plugin.provider().list(&remote(&*bucket))?;
    ensure!(
        listed.len() == objects.len(),
        "listed {} of {} objects",
        listed.len(),
        objects.len()
    );
    for (key, data) in &objects {
        let entry = listed
            .iter()
            .find(|e| e.key.as_str() == key)
            .ok_or_else(|| anyhow::anyhow!("{key} missing from the listing"))?;
        ensure!(
            entry.size == data.len() as u64,
            "{key}: size {} != {}",
            entry.size,
            data.len()
        );
        match &entry.md5 {
            Some(md5) => ensure!(md5.as_str() == md5_hex(data), "{key}: wrong md5 {md5}"),
            None => anyhow::bail!("{key}: no md5 listed for an object uploaded in one part"),
        }
    }
    Ok(())
}

/// Make bucket, put, get, copy and delete, one object at a time; a copy
/// into a missing bucket fails as `BucketMissing`.
pub fn single_object_operations_work(h: &Harness) -> Result<()> {
    let p = h.plugin.provider();
    let bucket = h.missing_bucket("single");
    let location = remote(&*bucket);
    ensure!(
        p.ensure_bucket(&location)?,
        "ensure_bucket did not create a missing bucket"
    );
    ensure!(
        bucket.exists()?,
        "the bucket does not exist after ensure_bucket"
    );
    ensure!(
        !p.ensure_bucket(&location)?,
        "ensure_bucket created an existing bucket again"
    );

    let tree = LocalTree::new()?;
    tree.write("in.bin", &content(60, 4321))?;
    let file = tree.path().join("in.bin").to_string_lossy().into_owned();
    p.put(file.as_str(), &location, "dir/one file.bin")?;
    let out = tree.path().join("out.bin").to_string_lossy().into_owned();
    p.get(&location, "dir/one file.bin", out.as_str())?;
    ensure!(
        std::fs::read(&out)? == content(60, 4321),
        "get returned other bytes"
    );

    let keys = vec!["dir/one file.bin".to_string()];
    // The host creates a missing snapshot bucket when a copy says so.
    let missing = remote(&*h.missing_bucket("single-copy-missing")).join("snapshot");
    let err = p
        .copy(&location, &missing, &keys)
        .expect_err("copying into a missing bucket");
    ensure!(
        err.kind == ErrorKind::BucketMissing,
        "copying into a missing bucket: kind {:?}: {}",
        err.kind,
        err.message
    );

    let other = h.bucket("single-copy")?;
    let copied = p.copy(&location, &remote(&*other), &keys)?;
    ensure!(
        copied.keys(ActionKind::Copy) == ["dir/one file.bin"],
        "copy report {copied:?}"
    );
    ensure!(
        other.contents()?.get("dir/one file.bin") == Some(&md5_hex(&content(60, 4321))),
        "copy"
    );

    p.delete(&location, &keys)?;
    ensure!(bucket.contents()?.is_empty(), "delete left the object");
    p.delete(&location, &keys)?;
    Ok(())
}

/// Listing or syncing into a bucket that does not exist is one clear error.
pub fn a_missing_bucket_is_a_clear_error(h: &Harness) -> Result<()> {
    let missing = remote(&*h.missing_bucket("missing"));
    let err = h
        .plugin
        .provider()
        .list(&missing)
        .expect_err("listing a missing bucket");
    ensure!(
        err.kind == ErrorKind::BucketMissing,
        "kind {:?}: {}",
        err.kind,
        err.message
    );
    ensure!(
        !err.message.contains('\n'),
        "multi-line error: {}",
        err.message
    );
    let tree = standard_tree()?;
    let err = h
        .sync(&tree.location(), &missing, &options(true))
        .expect_err("syncing into a missing bucket");
    ensure!(
        !format!("{err:#}").contains('\n'),
        "multi-line error: {err:#}"
    );
    Ok(())
}

/// Acts as the application on the first progress report of a sync: writes
/// straight into the destination while the tool uploads.
struct WritesOnFirstProgress<'a> {
    store: &'a dyn ScratchStore,
    writes: &'a [(&'a str, &'a [u8])],
    /// `None` until the first report; then what the writes came to.
    done: Mutex<Option<Result<(), String>>>,
}

impl ProgressSink for WritesOnFirstProgress<'_> {
    fn report(&self, _progress: &Progress) {
        let mut done = self.done.lock().expect("not poisoned");
        if done.is_none() {
            let written = self
                .writes
                .iter()
                .try_for_each(|(key, data)| self.store.put(key, data));
            *done = Some(written.map_err(|e| format!("{e:#}")));
        }
    }
}

/// While `stowage sync --delete --max-delete 1` uploads, the application
/// creates an object and rewrites the one the plan deletes: both are left
/// as found and reported, nothing else is deleted, and the bucket holds
/// the source's files besides.
pub fn objects_that_move_during_a_sync_are_left_as_found(h: &Harness) -> Result<()> {
    let tree = standard_tree()?;
    let bucket = h.bucket("moving")?;
    bucket.put("planned delete.txt", b"extraneous")?;
    let writes: [(&str, &[u8]); 2] = [
        ("appeared.txt", b"written by the application"),
        ("planned delete.txt", b"rewritten by the application"),
    ];
    let writer = WritesOnFirstProgress {
        store: &*bucket,
        writes: &writes,
        done: Mutex::new(None),
    };
    let outcome = run_sync(
        &h.plugin,
        &tree.location(),
        &remote(&*bucket),
        &SyncOptions {
            max_deletes: Some(1),
            ..options(true)
        },
        &writer,
    )?;
    let written = writer.done.into_inner().expect("not poisoned");
    ensure!(
        written == Some(Ok(())),
        "the application did not write: {written:?}"
    );
    let v = outcome.verification.expect("a real run verifies");
    let drifted: BTreeSet<String> = v.drifted.iter().map(|d| d.key.to_string()).collect();
    ensure!(
        drifted == keys(["appeared.txt", "planned delete.txt"]),
        "left as found: {drifted:?}"
    );
    ensure!(v.deleted.is_empty(), "deleted {:?}", v.deleted);
    let mut expected = tree.contents()?;
    for (key, data) in writes {
        expected.insert(key.to_string(), md5_hex(data));
    }
    ensure_same(&bucket.contents()?, &expected, "after the sync")
}

/// `create_if_absent` on a plugin that claims the `conditional_create`
/// capability: the first create of a key succeeds, a second returns
/// `false` and leaves the first content whole, of racing creates exactly
/// one wins, and a missing bucket is `BucketMissing`. A plugin without the
/// capability says so with an error, and writes nothing.
pub fn creating_only_if_absent_lets_exactly_one_writer_win(h: &Harness) -> Result<()> {
    let p = h.plugin.provider();
    let bucket = h.bucket("create-if-absent")?;
    let location = remote(&*bucket).join("locks");
    let create = |key: &str, bytes: &[u8]| p.create_if_absent(&location, key, bytes);
    if !p.conditional_create() {
        let err = create("one", b"first").expect_err("an unsupported create_if_absent");
        ensure!(
            err.kind == ErrorKind::InvalidInput,
            "kind {:?}: {}",
            err.kind,
            err.message
        );
        ensure!(bucket.contents()?.is_empty(), "an unsupported create wrote");
        return Ok(());
    }
    ensure!(create("one", b"first")?, "the first create did not create");
    ensure!(
        !create("one", b"second")?,
        "a second create replaced the object"
    );
    let expected = BTreeMap::from([("locks/one".to_string(), md5_hex(b"first"))]);
    ensure!(bucket.contents()? == expected, "{:?}", bucket.contents()?);

    const RACERS: usize = 4;
    let start = std::sync::Barrier::new(RACERS);
    let outcomes: Vec<Result<bool, String>> = std::thread::scope(|scope| {
        let racers: Vec<_> = (0..RACERS)
            .map(|i| {
                let (start, create) = (&start, &create);
                scope.spawn(move || {
                    start.wait();
                    create("race", format!("writer {i}").as_bytes())
                        .map_err(|e| e.message.to_string())
                })
            })
            .collect();
        racers
            .into_iter()
            .map(|r| r.join().expect("a racer does not panic"))
            .collect()
    });
    let winners: Vec<usize> = outcomes
        .iter()
        .enumerate()
        .filter(|(_, outcome)| matches!(outcome, Ok(true)))
        .map(|(i, _)| i)
        .collect();
    ensure!(winners.len() == 1, "racing creates: {outcomes:?}");
    let won = md5_hex(format!("writer {}", winners[0]).as_bytes());
    ensure!(
        bucket.contents()?.get("locks/race") == Some(&won),
        "the object does not hold the winner's bytes"
    );

    let missing = remote(&*h.missing_bucket("create-if-absent-missing"));
    let err = p
        .create_if_absent(&missing, "one", b"x")
        .expect_err("creating in a missing bucket");
    ensure!(
        err.kind == ErrorKind::BucketMissing,
        "creating in a missing bucket: kind {:?}: {}",
        err.kind,
        err.message
    );
    Ok(())
}
