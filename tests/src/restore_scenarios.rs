//! End-to-end backup and restore scenarios, run for every plugin against
//! its real server: the `stowage backup` and `stowage restore` workflows,
//! checked with the independent reader.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use anyhow::{ensure, Context, Result};
use stowage::archive::name::ArchiveName;
use stowage::archive::read::Limits;
use stowage::backup::{
    claim_name, run_backup, sidecar_name, BackupInformation, BackupReport, BackupRequest,
};
use stowage::config::{Component, Settings};
use stowage::exit::{InvalidArchive, Refused};
use stowage::registry::Registry;
use stowage::restore::{
    run_restore, ComponentOutcome, RestoreObserver, RestorePoint, RestoreReport, RestoreRequest,
    SnapshotMode,
};
use stowage::store::backup_store::BackupStore;
use stowage::store::fetch::ArchiveSource;
use stowage::store::lock::{hostname, lock_name, RestoreLocks};
use stowage::store::snapshots::{PrunePlan, PruneRequest, PruneRules, TmpBucket};
use stowage::sync::plan::OBJECTS_PER_KEY_WORTH_ASKING;
use stowage::unix_time::now;
use stowage_plugin_api::Location;

use crate::data::{content, LocalTree};
use crate::harness::Harness;
use crate::scratch::{md5_hex, ScratchStore};

/// `stowage backup` of every component of `settings`, without progress bars.
pub fn backup_quietly(settings: &Settings, registry: &Registry) -> Result<BackupReport> {
    let request = BackupRequest {
        quiet: true,
        ..BackupRequest::default()
    };
    run_backup(settings, registry, &request)
}

/// Three populated buckets, a backup bucket, a tmp bucket (not created)
/// and a staging directory: a small GitLab.
struct Instance {
    uploads: Box<dyn ScratchStore>,
    artifacts: Box<dyn ScratchStore>,
    lfs: Box<dyn ScratchStore>,
    backups: Box<dyn ScratchStore>,
    tmp: Box<dyn ScratchStore>,
    staging: tempfile::TempDir,
}

impl Instance {
    /// Its stores, named but not created (but for the backup bucket), nothing in them.
    fn unseeded(h: &Harness) -> Result<Instance> {
        Ok(Instance {
            uploads: h.missing_bucket("uploads"),
            artifacts: h.missing_bucket("artifacts"),
            lfs: h.missing_bucket("lfs"),
            backups: h.bucket("backups")?,
            tmp: h.missing_bucket("tmp"),
            staging: tempfile::tempdir()?,
        })
    }

    fn new(h: &Harness) -> Result<Instance> {
        let instance = Instance::unseeded(h)?;
        for bucket in [&instance.uploads, &instance.artifacts, &instance.lfs] {
            bucket.create()?;
        }
        let uploads = LocalTree::new()?;
        for i in 0..6u64 {
            uploads.write(
                &format!("@hashed/{i:02x}/upload {i}'s #{i}.bin"),
                &content(100 + i, 1000 + 37 * i as usize),
            )?;
        }
        uploads.write("avatars/ünïcødé + more%.png", &content(110, 2048))?;
        instance.uploads.seed(uploads.path())?;
        let artifacts = LocalTree::new()?;
        artifacts.write("2026/job 1/artifacts.zip", &content(120, 5000))?;
        artifacts.write("2026/job 2/artifacts.zip", &content(121, 5000))?;
        artifacts.write("tmp/builds/7/trace.log", &content(122, 300))?;
        instance.artifacts.seed(artifacts.path())?;
        let lfs = LocalTree::new()?;
        lfs.write("aa/bb/object", &content(130, 70_000))?;
        instance.lfs.seed(lfs.path())?;
        Ok(instance)
    }

    /// A new instance, backed up.
    fn backed_up(h: &Harness) -> Result<(Instance, Settings, BackupReport)> {
        let instance = Instance::new(h)?;
        let settings = instance.settings();
        let backup = backup_quietly(&settings, &h.registry()?)?;
        Ok((instance, settings, backup))
    }

    fn settings(&self) -> Settings {
        let component = |name: &str, store: &dyn ScratchStore, excludes: &[&str]| Component {
            name: name.to_string(),
            bucket: Location::parse(&store.url()),
            excludes: excludes.iter().map(|e| e.to_string()).collect(),
        };
        Settings {
            label: Some("stowage_gitlab".to_string()),
            destination: Location::parse(&self.backups.url()),
            tmp_bucket: Some(Location::parse(&self.tmp.url())),
            staging_dir: self.staging.path().to_path_buf(),
            components: vec![
                component("artifacts", &*self.artifacts, &["tmp/builds/*"]),
                component("lfs", &*self.lfs, &[]),
                component("uploads", &*self.uploads, &[]),
            ],
        }
    }
}

/// Settings with one component, `uploads`, in `bucket`: backed up into
/// `backups`, snapshotted into `tmp`, staged below `staging`.
pub fn uploads_only(
    bucket: &dyn ScratchStore,
    backups: &dyn ScratchStore,
    tmp: &dyn ScratchStore,
    staging: &Path,
) -> Settings {
    Settings {
        label: Some("stowage_gitlab".to_string()),
        destination: Location::parse(&backups.url()),
        tmp_bucket: Some(Location::parse(&tmp.url())),
        staging_dir: staging.to_path_buf(),
        components: vec![Component {
            name: "uploads".to_string(),
            bucket: Location::parse(&bucket.url()),
            excludes: Vec::new(),
        }],
    }
}

fn request(source: ArchiveSource) -> RestoreRequest {
    RestoreRequest {
        yes: true,
        jobs: 2,
        quiet: true,
        limits: Limits {
            max_component_bytes: 1 << 30,
        },
        ..RestoreRequest::new(source)
    }
}

fn restore(h: &Harness, settings: &Settings, source: ArchiveSource) -> Result<RestoreReport> {
    let report = run_restore(settings, &h.registry()?, &request(source), &|_| Ok(true))?;
    for c in &report.components {
        ensure!(
            c.error.is_none(),
            "component {} failed: {:?}",
            c.plan.component,
            c.error
        );
    }
    Ok(report)
}

fn component<'r>(report: &'r RestoreReport, name: &str) -> &'r ComponentOutcome {
    report
        .components
        .iter()
        .find(|c| c.plan.component == name)
        .unwrap_or_else(|| panic!("no component {name} in the report"))
}

fn keys(objects: &stowage::sync::planned::PlannedObjects) -> BTreeSet<String> {
    objects.iter().map(|o| o.key.to_string()).collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn without(mut contents: BTreeMap<String, String>, prefix: &str) -> BTreeMap<String, String> {
    contents.retain(|k, _| !k.starts_with(prefix));
    contents
}

/// Objects of `store` below `prefix/`, keyed relative to it.
fn below(store: &dyn ScratchStore, prefix: &str) -> Result<BTreeMap<String, String>> {
    Ok(store
        .contents()?
        .into_iter()
        .filter_map(|(k, m)| {
            k.strip_prefix(&format!("{prefix}/"))
                .map(|k| (k.to_string(), m))
        })
        .collect())
}

/// Back up three buckets, change them (a same-size rewrite, an added and a
/// deleted object), restore: every bucket equals the backup byte for byte,
/// only the changed and missing objects were uploaded and only the
/// extraneous one deleted, and the snapshot holds exactly the old versions
/// of what the restore overwrote or deleted.
pub fn a_restore_moves_only_the_changes_and_snapshots_what_it_replaces(h: &Harness) -> Result<()> {
    let (instance, settings, backup) = Instance::backed_up(h)?;
    let archive = backup.information.archive.clone();
    let stored = instance.backups.contents()?;
    ensure!(
        stored.contains_key(&archive),
        "{archive} not in the backup bucket: {stored:?}"
    );
    let backed_up = [
        ("uploads", instance.uploads.contents()?),
        (
            "artifacts",
            without(instance.artifacts.contents()?, "tmp/builds/"),
        ),
        ("lfs", instance.lfs.contents()?),
    ];

    let overwritten = "@hashed/02/upload 2's #2.bin";
    instance
        .uploads
        .put(overwritten, &content(999, 1000 + 37 * 2))?;
    instance.uploads.put("added later.bin", &content(998, 10))?;
    instance.uploads.delete("@hashed/04/upload 4's #4.bin")?;
    instance
        .artifacts
        .put("tmp/builds/7/trace.log", &content(997, 300))?;
    let before_restore = instance.uploads.contents()?;

    let report = restore(
        h,
        &settings,
        ArchiveSource::Timestamp(backup.information.created_at),
    )?;

    for (name, expected) in &backed_up {
        let store = match *name {
            "uploads" => &instance.uploads,
            "artifacts" => &instance.artifacts,
            _ => &instance.lfs,
        };
        let actual = without(store.contents()?, "tmp/builds/");
        ensure!(
            &actual == expected,
            "{name} differs from the backup:\n {actual:?}\n {expected:?}"
        );
    }
    ensure!(
        instance.artifacts.contents()?.get("tmp/builds/7/trace.log")
            == Some(&md5_hex(&content(997, 300))),
        "the excluded object was touched"
    );
    let uploads = component(&report, "uploads");
    ensure!(
        keys(&uploads.plan.plan.transfer) == set(&[overwritten, "@hashed/04/upload 4's #4.bin"]),
        "uploads plan {:?}",
        uploads.plan.plan
    );
    ensure!(
        keys(&uploads.plan.plan.delete) == set(&["added later.bin"]),
        "deletes {:?}",
        uploads.plan.plan.delete
    );
    ensure!(
        (uploads.uploaded, uploads.deleted) == (2, 1),
        "uploaded {} deleted {}",
        uploads.uploaded,
        uploads.deleted
    );
    for quiet in ["artifacts", "lfs"] {
        let c = component(&report, quiet);
        ensure!(
            (c.uploaded, c.deleted) == (0, 0),
            "{quiet}: uploaded {} deleted {}",
            c.uploaded,
            c.deleted
        );
    }

    let snapshot = uploads.snapshot.as_deref().context("no snapshot taken")?;
    let prefix = snapshot.rsplit('/').next().unwrap_or_default();
    let expected_snapshot: BTreeMap<String, String> = [overwritten, "added later.bin"]
        .iter()
        .map(|k| (k.to_string(), before_restore[*k].clone()))
        .collect();
    ensure!(
        below(&*instance.tmp, prefix)? == expected_snapshot,
        "snapshot {prefix}: {:?}",
        below(&*instance.tmp, prefix)?
    );
    ensure!(
        component(&report, "lfs").snapshot.is_none(),
        "a snapshot of an unchanged bucket"
    );
    Ok(())
}

/// A restore into buckets that were never created (a fresh instance) makes
/// them; a second identical restore uploads and deletes nothing.
pub fn a_restore_into_a_fresh_instance_creates_the_buckets_and_a_second_changes_nothing(
    h: &Harness,
) -> Result<()> {
    let (instance, settings, backup) = Instance::backed_up(h)?;
    let fresh: Vec<Box<dyn ScratchStore>> = ["fresh-art", "fresh-lfs", "fresh-upl"]
        .iter()
        .map(|n| h.missing_bucket(n))
        .collect();
    let mut fresh_settings = settings.clone();
    for (component, store) in fresh_settings.components.iter_mut().zip(&fresh) {
        component.bucket = Location::parse(&store.url());
    }
    let source = || ArchiveSource::Timestamp(backup.information.created_at);
    restore(h, &fresh_settings, source())?;
    let originals = [&instance.artifacts, &instance.lfs, &instance.uploads];
    for (store, original) in fresh.iter().zip(originals) {
        let expected = without(original.contents()?, "tmp/builds/");
        ensure!(
            store.contents()? == expected,
            "{} differs from the backup",
            store.url()
        );
    }
    let again = restore(h, &fresh_settings, source())?;
    for c in &again.components {
        ensure!(
            (c.uploaded, c.deleted) == (0, 0),
            "{}: second restore uploaded {} deleted {}",
            c.plan.component,
            c.uploaded,
            c.deleted
        );
        ensure!(
            c.plan.plan.transfer.is_empty() && c.plan.plan.delete.is_empty(),
            "{}: plan {:?}",
            c.plan.component,
            c.plan.plan
        );
        ensure!(
            c.snapshot.is_none(),
            "{}: a snapshot on a no-op restore",
            c.plan.component
        );
    }
    Ok(())
}

fn run(command: &mut Command) -> Result<()> {
    let status = command
        .status()
        .with_context(|| format!("cannot run {command:?}"))?;
    ensure!(status.success(), "{command:?} failed: {status}");
    Ok(())
}

/// Builds an archive the way GitLab's backup-utility does, with GNU tar.
fn gitlab_made_archive(dir: &Path, uploads: &LocalTree) -> Result<std::path::PathBuf> {
    let outer = dir.join("outer");
    std::fs::create_dir_all(outer.join("db"))?;
    std::fs::create_dir_all(outer.join("repositories/@hashed/aa"))?;
    std::fs::write(
        outer.join("backup_information.yml"),
        ":db_version: 20240101\n:gitlab_version: 17.5.1\n",
    )?;
    std::fs::write(outer.join("db/database.sql.gz"), content(140, 500))?;
    std::fs::write(
        outer.join("repositories/@hashed/aa/repo.bundle"),
        content(141, 700),
    )?;
    run(Command::new("tar")
        .arg("-cf")
        .arg(outer.join("uploads.tar.gz"))
        .args(["-I", "gzip", "-C"])
        .arg(uploads.path())
        .arg("."))?;
    let archive = dir.join("1700000000_2023_11_14_17.5.1_gitlab_backup.tar");
    run(Command::new("tar")
        .arg("-cf")
        .arg(&archive)
        .arg("-C")
        .arg(&outer)
        .args([
            "backup_information.yml",
            "db",
            "repositories",
            "uploads.tar.gz",
        ]))?;
    Ok(archive)
}

/// An archive made by GitLab's backup-utility layout with GNU tar (no
/// manifest; `db/` and `repositories/` entries) restores its object storage.
pub fn a_gitlab_made_archive_restores(h: &Harness) -> Result<()> {
    let instance = Instance::new(h)?;
    let settings = instance.settings();
    let tree = LocalTree::new()?;
    tree.write("@hashed/11/22/from gitlab.png", &content(150, 4000))?;
    tree.write("tmp/uploads/partial", &content(151, 10))?;
    let dir = tempfile::tempdir()?;
    let archive = gitlab_made_archive(dir.path(), &tree)?;
    let mut request = request(ArchiveSource::File(archive.to_string_lossy().into_owned()));
    request.only = vec!["uploads".to_string()];
    let report = run_restore(&settings, &h.registry()?, &request, &|_| Ok(true))?;
    ensure!(
        report.succeeded(),
        "restore failed: {:?}",
        report
            .components
            .iter()
            .map(|c| &c.error)
            .collect::<Vec<_>>()
    );
    ensure!(
        report.ignored_entries == ["db", "repositories"],
        "ignored {:?}",
        report.ignored_entries
    );
    ensure!(
        instance.uploads.contents()? == tree.contents()?,
        "uploads differ from the GitLab archive"
    );
    Ok(())
}

/// One entry of a hand-made tar, written with exactly these bytes (the tar
/// crate's own setters refuse most of what these tests need).
struct RawEntry {
    name: &'static [u8],
    kind: tar::EntryType,
    declared_size: u64,
    data: Vec<u8>,
    link: &'static [u8],
}

fn file(name: &'static [u8], data: &[u8]) -> RawEntry {
    RawEntry {
        name,
        kind: tar::EntryType::Regular,
        declared_size: data.len() as u64,
        data: data.to_vec(),
        link: b"",
    }
}

fn special(name: &'static [u8], kind: tar::EntryType, link: &'static [u8]) -> RawEntry {
    RawEntry {
        name,
        kind,
        declared_size: 0,
        data: Vec::new(),
        link,
    }
}

fn raw_tar(entries: &[RawEntry]) -> Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    for entry in entries {
        let mut header = tar::Header::new_old();
        header.as_old_mut().name[..entry.name.len()].copy_from_slice(entry.name);
        header.as_old_mut().linkname[..entry.link.len()].copy_from_slice(entry.link);
        header.set_size(entry.declared_size);
        header.set_mode(0o644);
        header.set_entry_type(entry.kind);
        header.set_cksum();
        builder.append(&header, entry.data.as_slice())?;
    }
    Ok(builder.into_inner()?)
}

fn gzip(data: &[u8]) -> Result<Vec<u8>> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data)?;
    Ok(encoder.finish()?)
}

/// An outer archive holding one `uploads.tar.gz` made of `entries`.
fn archive_with_uploads(entries: &[RawEntry]) -> Result<Vec<u8>> {
    raw_tar(&[file(b"uploads.tar.gz", &gzip(&raw_tar(entries)?)?)])
}

/// An outer archive holding `uploads.tar.gz` made of `entries` and a
/// manifest for it listing `objects` (key, content).
fn archive_with_uploads_manifest(
    entries: &[RawEntry],
    objects: &[(&str, &[u8])],
) -> Result<Vec<u8>> {
    let objects: Vec<serde_json::Value> = objects
        .iter()
        .map(
            |(key, data)| serde_json::json!({"key": key, "size": data.len(), "md5": md5_hex(data)}),
        )
        .collect();
    let manifest = serde_json::json!({"component": "uploads", "objects": objects});
    raw_tar(&[
        file(b"uploads.tar.gz", &gzip(&raw_tar(entries)?)?),
        file(b"manifests/uploads.json", manifest.to_string().as_bytes()),
    ])
}

/// Hostile and broken archives, each with the reason it must be refused.
fn hostile_archives(good: &[u8]) -> Result<Vec<(&'static str, Vec<u8>)>> {
    use tar::EntryType::{Char, Link, Symlink};
    let ok = || file(b"ok.txt", b"fine");
    let bomb = RawEntry {
        data: vec![0; 64 << 20],
        ..file(b"zeros", b"")
    };
    let bomb = RawEntry {
        declared_size: bomb.data.len() as u64,
        ..bomb
    };
    let enormous = RawEntry {
        declared_size: 1 << 50,
        ..file(b"enormous", b"short")
    };
    let mut corrupt_gzip = gzip(&raw_tar(&[ok(), file(b"b.bin", &content(170, 50_000))])?)?;
    let middle = corrupt_gzip.len() / 2;
    corrupt_gzip[middle] ^= 0xff;
    let mut trailing_garbage = good.to_vec();
    trailing_garbage.extend_from_slice(b"garbage after the end");
    Ok(vec![
        (
            "an absolute path",
            archive_with_uploads(&[ok(), file(b"/etc/evil", b"x")])?,
        ),
        (
            "a '..' segment",
            archive_with_uploads(&[file(b"../escaped", b"evil")])?,
        ),
        (
            "a symbolic link out",
            archive_with_uploads(&[special(b"link", Symlink, b"/etc/passwd")])?,
        ),
        (
            "a hard link out",
            archive_with_uploads(&[special(b"hard", Link, b"../../etc/passwd")])?,
        ),
        (
            "a device",
            archive_with_uploads(&[special(b"tty", Char, b"")])?,
        ),
        ("a duplicate name", archive_with_uploads(&[ok(), ok()])?),
        (
            "a newline in a name",
            archive_with_uploads(&[file(b"a\nb", b"x")])?,
        ),
        (
            "a name that is not UTF-8",
            archive_with_uploads(&[file(b"bad\xff", b"x")])?,
        ),
        (
            "a header claiming an enormous size",
            archive_with_uploads(&[enormous])?,
        ),
        ("a gzip bomb", archive_with_uploads(&[bomb])?),
        (
            "a corrupt gzip member",
            raw_tar(&[file(b"uploads.tar.gz", &corrupt_gzip)])?,
        ),
        ("a truncated archive", good[..good.len() / 2].to_vec()),
        (
            "a database dump cut short (an entry validation skips)",
            raw_tar(&[file(b"db/database.sql.gz", &content(171, 100_000))])?[..60_000].to_vec(),
        ),
        ("trailing garbage", trailing_garbage),
        (
            "a manifest that differs from its tarball",
            archive_with_uploads_manifest(&[ok()], &[("ok.txt", b"FINE")])?,
        ),
        (
            "a manifest that lists an object twice",
            archive_with_uploads_manifest(
                &[ok(), file(b"b.txt", b"b")],
                &[("ok.txt", b"fine"), ("ok.txt", b"fine")],
            )?,
        ),
        (
            "a link in the outer archive",
            raw_tar(&[special(b"uploads.tar.gz", Symlink, b"/etc/passwd")])?,
        ),
    ])
}

/// Hostile and broken archives — absolute paths, `..`, links pointing out,
/// devices, duplicate names, newlines and invalid UTF-8 in names, an
/// enormous size, a gzip bomb (refused at the extraction limit), a corrupt
/// gzip member, truncation (also inside an entry that is not object
/// storage, which validation skips), trailing garbage, a manifest that
/// differs from its tarball — are each refused with one line, as invalid,
/// before any bucket changes.
pub fn invalid_archives_are_refused_before_any_bucket_changes(h: &Harness) -> Result<()> {
    let instance = Instance::new(h)?;
    let settings = instance.settings();
    let dir = tempfile::tempdir()?;
    let tree = LocalTree::new()?;
    tree.write("replacement.bin", &content(160, 100_000))?;
    let good = std::fs::read(gitlab_made_archive(dir.path(), &tree)?)?;

    let before: Vec<_> = [&instance.uploads, &instance.artifacts, &instance.lfs]
        .iter()
        .map(|s| s.contents())
        .collect::<Result<_>>()?;
    for (what, bytes) in hostile_archives(&good)? {
        let path = dir.path().join("hostile_backup.tar");
        std::fs::write(&path, bytes)?;
        let mut request = request(ArchiveSource::File(path.to_string_lossy().into_owned()));
        request.limits.max_component_bytes = 16 << 20;
        let error = run_restore(&settings, &h.registry()?, &request, &|_| Ok(true))
            .err()
            .with_context(|| format!("an archive with {what} was accepted"))?;
        ensure!(
            error.chain().any(|e| e.is::<InvalidArchive>()),
            "{what}: not refused as invalid: {error:#}"
        );
        ensure!(
            !format!("{error:#}").contains('\n'),
            "{what}: multi-line error: {error:#}"
        );
    }
    let after: Vec<_> = [&instance.uploads, &instance.artifacts, &instance.lfs]
        .iter()
        .map(|s| s.contents())
        .collect::<Result<_>>()?;
    ensure!(before == after, "a bucket changed");
    ensure!(!instance.tmp.exists()?, "the tmp bucket was created");
    Ok(())
}

/// While one restore holds a bucket, a second one refuses (exit code 5)
/// and changes nothing; a lock left by a process that died is taken over;
/// a restore does not lock the bucket of a component its archive lacks.
pub fn a_second_restore_into_the_same_bucket_refuses(h: &Harness) -> Result<()> {
    let instance = Instance::new(h)?;
    let settings = instance.settings();
    let registry = h.registry()?;
    let backup = backup_quietly(&settings, &registry)?;
    instance.uploads.put("added later.bin", &content(996, 10))?;
    let before = instance.uploads.contents()?;
    let source = || ArchiveSource::Timestamp(backup.information.created_at);

    let store = BackupStore::open(&settings.destination, &registry)?;
    let held = RestoreLocks::acquire(&store, &[settings.components[2].bucket.clone()], false)?;
    let error = run_restore(&settings, &registry, &request(source()), &|_| Ok(true))
        .err()
        .context("a restore ran while another held the bucket")?;
    ensure!(
        error.chain().any(|e| e.is::<Refused>()),
        "not refused: {error:#}"
    );
    ensure!(
        format!("{error:#}").contains("another restore into"),
        "{error:#}"
    );
    ensure!(
        instance.uploads.contents()? == before,
        "the refused restore changed the bucket"
    );
    held.release()?;

    // A lock whose holder died on this host is stale: the restore takes it over.
    let dead =
        serde_json::json!({"host": hostname(), "pid": u32::MAX - 1, "started": 0, "token": "dead"});
    store.put_bytes(
        &lock_name(&settings.components[2].bucket),
        dead.to_string().as_bytes(),
    )?;
    restore(h, &settings, source())?;
    ensure!(
        !instance.uploads.contents()?.contains_key("added later.bin"),
        "the restore did not run"
    );
    let lock = lock_name(&settings.components[2].bucket);
    ensure!(
        store.get_bytes(&lock)?.is_none(),
        "the lock was left behind"
    );
    ensure!(
        !store.contains(&format!("{lock}.taken-over.dead"))?,
        "the claim of the takeover was left behind"
    );

    // Only the buckets of components the archive holds are locked (and
    // listed): a restore of an archive without this component goes on
    // while another restore holds its bucket.
    // (Archives are named by the second; a backup in the same second as the
    // first takes the next one.)
    let uploads = &settings.components[2];
    let without_uploads = run_backup(
        &settings,
        &registry,
        &BackupRequest {
            skip: vec![uploads.name.clone()],
            ..BackupRequest::default()
        },
    )?;
    let held = RestoreLocks::acquire(&store, std::slice::from_ref(&uploads.bucket), false)?;
    let report = restore(
        h,
        &settings,
        ArchiveSource::Timestamp(without_uploads.information.created_at),
    )?;
    held.release()?;
    ensure!(
        report
            .not_restored
            .iter()
            .any(|c| c.starts_with(&uploads.name))
            && !report.components.is_empty(),
        "restored {:?}, not restored {:?}",
        report
            .components
            .iter()
            .map(|c| &c.plan.component)
            .collect::<Vec<_>>(),
        report.not_restored
    );
    Ok(())
}

/// `stowage snapshots prune --keep N` of `settings`, planned and carried out.
fn prune_keeping(settings: &Settings, registry: &Registry, keep: usize) -> Result<Vec<String>> {
    let request = PruneRequest {
        rules: PruneRules {
            keep: Some(keep),
            older_than: None,
        },
        ..PruneRequest::default()
    };
    let plan = PrunePlan::new(settings, registry, &request)?;
    let deleted = plan.deletions().iter().map(|s| s.name()).collect();
    plan.execute()?;
    Ok(deleted)
}

/// Snapshots in the tmp bucket are listed newest first with their objects
/// and bytes; a prune deletes, through the plugin, only what is below a
/// `<component>.<unix-ts>/` prefix, never another object of the tmp
/// bucket, and never a snapshot of a component whose restore holds its
/// lock.
pub fn snapshots_are_listed_and_pruned_below_their_prefixes_only(h: &Harness) -> Result<()> {
    let instance = Instance::unseeded(h)?;
    let settings = instance.settings();
    let registry = h.registry()?;
    let tree = LocalTree::new()?;
    let snapshots = [
        ("artifacts.1700000000/2026/job 1/artifacts.zip", 10),
        ("uploads.1600000000/@hashed/01/ünï cødé #1.bin", 20),
        ("uploads.1600000000/avatars/a.png", 30),
        ("lfs.1550000000/aa/bb/object", 40),
        ("uploads.1500000000/@hashed/02/b.bin", 50),
    ];
    let others = [
        "notes.txt",
        "uploads.1400000000",
        "uploads.old/a.bin",
        "kept/uploads.1500000000/a.bin",
    ];
    for (key, size) in snapshots {
        tree.write(key, &content(size as u64, size))?;
    }
    for key in others {
        tree.write(key, b"not a snapshot")?;
    }
    instance.tmp.create()?;
    instance.tmp.seed(tree.path())?;

    let listed: Vec<(String, u64, u64)> = TmpBucket::open(&settings, &registry)?
        .snapshots(&[])?
        .into_iter()
        .map(|s| (s.name(), s.objects, s.bytes))
        .collect();
    let expected = [
        ("artifacts.1700000000", 1, 10),
        ("uploads.1600000000", 2, 50),
        ("lfs.1550000000", 1, 40),
        ("uploads.1500000000", 1, 50),
    ];
    ensure!(
        listed
            == expected
                .iter()
                .map(|(n, o, b)| (n.to_string(), *o, *b))
                .collect::<Vec<_>>(),
        "listed {listed:?}"
    );

    // A restore into the lfs bucket holds its lock: its snapshot stays.
    let store = BackupStore::open(&settings.destination, &registry)?;
    let lfs = RestoreLocks::acquire(&store, &[settings.components[1].bucket.clone()], false)?;
    let deleted = prune_keeping(&settings, &registry, 0)?;
    lfs.release()?;
    ensure!(
        deleted
            == [
                "artifacts.1700000000",
                "uploads.1600000000",
                "uploads.1500000000"
            ],
        "deleted {deleted:?}"
    );
    let left: BTreeSet<String> = instance.tmp.contents()?.into_keys().collect();
    let expected: BTreeSet<String> = others
        .iter()
        .chain(&["lfs.1550000000/aa/bb/object"])
        .map(|k| k.to_string())
        .collect();
    ensure!(left == expected, "left in the tmp bucket: {left:?}");

    let deleted = prune_keeping(&settings, &registry, 0)?;
    ensure!(deleted == ["lfs.1550000000"], "deleted {deleted:?}");
    let left: BTreeSet<String> = instance.tmp.contents()?.into_keys().collect();
    ensure!(
        left == others.iter().map(|k| k.to_string()).collect(),
        "left in the tmp bucket: {left:?}"
    );
    Ok(())
}

/// How a restore asks for confirmation.
type Confirm = dyn Fn(&str) -> Result<bool>;

/// The safety rules refuse before anything changes (exit code 5): an empty
/// component over a bucket with objects (unless `--allow-empty`), more
/// deletions than `--max-delete`, `--snapshot none` without `--yes`, and a
/// confirmation that is not given.
pub fn safety_rules_refuse_before_anything_changes(h: &Harness) -> Result<()> {
    let instance = Instance::new(h)?;
    let mut settings = instance.settings();
    let registry = h.registry()?;
    let empty = h.bucket("empty")?;
    settings.components[1].bucket = Location::parse(&empty.url());
    let backup = backup_quietly(&settings, &registry)?;
    settings.components[1].bucket = Location::parse(&instance.lfs.url());
    instance.uploads.put("added 1.bin", b"1")?;
    instance.uploads.put("added 2.bin", b"2")?;
    let before = [instance.uploads.contents()?, instance.lfs.contents()?];
    let source = || ArchiveSource::Timestamp(backup.information.created_at);

    let refusals: [(&str, RestoreRequest, &Confirm); 4] = [
        ("is empty in the archive", request(source()), &|_| Ok(true)),
        (
            "more than --max-delete 1",
            RestoreRequest {
                allow_empty: true,
                max_delete: Some(1),
                ..request(source())
            },
            &|_| Ok(true),
        ),
        (
            "--snapshot none",
            RestoreRequest {
                allow_empty: true,
                snapshot: SnapshotMode::None,
                yes: false,
                ..request(source())
            },
            &|_| Ok(true),
        ),
        (
            "cancelled",
            RestoreRequest {
                allow_empty: true,
                yes: false,
                ..request(source())
            },
            &|_| Ok(false),
        ),
    ];
    for (words, request, confirm) in refusals {
        let error = run_restore(&settings, &registry, &request, confirm)
            .err()
            .with_context(|| format!("not refused: {words}"))?;
        ensure!(
            error.chain().any(|e| e.is::<Refused>()),
            "{words}: not a refusal: {error:#}"
        );
        ensure!(format!("{error:#}").contains(words), "{words}: {error:#}");
        ensure!(
            [instance.uploads.contents()?, instance.lfs.contents()?] == before,
            "{words}: a bucket changed"
        );
    }
    let allowed = RestoreRequest {
        allow_empty: true,
        ..request(source())
    };
    let report = run_restore(&settings, &registry, &allowed, &|_| Ok(true))?;
    ensure!(report.succeeded(), "the allowed restore failed");
    ensure!(
        instance.lfs.contents()?.is_empty(),
        "--allow-empty did not empty the bucket"
    );
    Ok(())
}

/// The points of a component's restore at which the live application of
/// [`a_live_application_writing_during_a_restore_loses_nothing`] acts, in
/// the order they come.
const LIVE_POINTS: [RestorePoint; 5] = [
    RestorePoint::Planned,
    RestorePoint::SnapshotCopied,
    RestorePoint::Uploading,
    RestorePoint::Uploaded,
    RestorePoint::Verifying,
];

/// What the live application writes and deletes at the `round`-th point:
/// a new object, a rewrite of an object the restore does not plan to touch,
/// a deletion of another such object, a rewrite of an object the restore
/// plans to delete, and one of an object it plans to overwrite. Left out:
/// the two writes that land in a window no tool-driven restore can close
/// (docs/SAFETY.md): a rewrite of a planned upload once the tool runs
/// (`Uploading`), and of a planned delete after the last listing (`Verifying`).
fn live_writes(round: usize, point: RestorePoint) -> (Vec<(String, Vec<u8>)>, Vec<String>) {
    let data = |n: u64| content(5000 + 10 * round as u64 + n, 700 + round);
    let mut puts = vec![
        (format!("new/{round}"), data(0)),
        (format!("same/{round}/a"), data(1)),
    ];
    if point != RestorePoint::Verifying {
        puts.push((format!("extra/{round}"), data(2)));
    }
    if point != RestorePoint::Uploading {
        puts.push((format!("changed/{round}"), data(3)));
    }
    (puts, vec![format!("same/{round}/b")])
}

/// The keys whose moves the restore saw (those made before its
/// verification listing) and must report as left as found.
fn reported_moves() -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    for (round, point) in LIVE_POINTS.iter().enumerate() {
        if *point == RestorePoint::Verifying {
            continue;
        }
        keys.extend([
            format!("new/{round}"),
            format!("same/{round}/a"),
            format!("same/{round}/b"),
        ]);
        if *point != RestorePoint::Planned {
            // Moved after the snapshot was taken: left for the next round.
            keys.insert(format!("extra/{round}"));
            if *point != RestorePoint::Uploading {
                keys.insert(format!("changed/{round}"));
            }
        }
    }
    keys
}

/// Every version that must survive a restore: those the bucket held
/// before it (less those the application itself replaced or deleted) and
/// every one the application wrote. Key → MD5s.
type Versions = BTreeSet<(String, String)>;

/// Checks that every version of `required` is in `bucket` or in a snapshot
/// below `tmp` (`<component>.<time>/<key>`).
fn ensure_kept(
    required: &Versions,
    bucket: &dyn ScratchStore,
    tmp: &dyn ScratchStore,
) -> Result<()> {
    let mut kept: Versions = bucket.contents()?.into_iter().collect();
    if tmp.exists()? {
        kept.extend(
            tmp.contents()?.into_iter().filter_map(|(key, md5)| {
                key.split_once('/').map(|(_, key)| (key.to_string(), md5))
            }),
        );
    }
    let lost: Vec<&(String, String)> = required.difference(&kept).collect();
    ensure!(lost.is_empty(), "versions lost: {lost:?}");
    Ok(())
}

/// A live application writes into a bucket while it is restored: at each
/// point of the restore it creates, rewrites and deletes objects, planned
/// and unplanned. No version is lost: each is in the bucket or in a
/// snapshot. What moved after planning is left as found and named in the
/// report (the buckets then do not equal the backup), and a second restore
/// converges, snapshotting what it replaces.
pub fn a_live_application_writing_during_a_restore_loses_nothing(h: &Harness) -> Result<()> {
    let live = std::sync::Arc::<dyn ScratchStore>::from(h.bucket("live")?);
    let (backups, tmp, staging) = (
        h.bucket("live-bak")?,
        h.missing_bucket("live-tmp"),
        tempfile::tempdir()?,
    );
    let tree = LocalTree::new()?;
    // Enough objects no round touches that the restore confirms its plan
    // by listing only its planned keys (a changed and an extra object per
    // round), as in a large bucket.
    let planned = 2 * LIVE_POINTS.len();
    for n in 0..planned * OBJECTS_PER_KEY_WORTH_ASKING {
        tree.write(&format!("untouched/{n}"), &content(n as u64, 100))?;
    }
    for round in 0..LIVE_POINTS.len() {
        for (n, key) in ["same/{}/a", "same/{}/b", "changed/{}"].iter().enumerate() {
            let key = key.replace("{}", &round.to_string());
            tree.write(&key, &content(4000 + 10 * round as u64 + n as u64, 500))?;
        }
    }
    live.seed(tree.path())?;
    let settings = uploads_only(&*live, &*backups, &*tmp, staging.path());
    let registry = h.registry()?;
    let backup = backup_quietly(&settings, &registry)?;
    let backed_up = live.contents()?;
    for round in 0..LIVE_POINTS.len() {
        live.put(
            &format!("changed/{round}"),
            &content(4900 + round as u64, 500),
        )?;
        live.put(
            &format!("extra/{round}"),
            &content(4950 + round as u64, 300),
        )?;
    }

    let mut required: Versions = live.contents()?.into_iter().collect();
    for (round, point) in LIVE_POINTS.iter().enumerate() {
        let (puts, deletes) = live_writes(round, *point);
        for key in puts.iter().map(|(k, _)| k).chain(&deletes) {
            required.retain(|(k, _)| k != key);
        }
        required.extend(puts.iter().map(|(k, data)| (k.clone(), md5_hex(data))));
    }
    let writer = live.clone();
    let failures = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = failures.clone();
    let observer = RestoreObserver::new(move |_component, point| {
        let round = LIVE_POINTS
            .iter()
            .position(|p| *p == point)
            .expect("a live point");
        let (puts, deletes) = live_writes(round, point);
        let written = puts
            .iter()
            .try_for_each(|(key, data)| writer.put(key, data))
            .and_then(|()| deletes.iter().try_for_each(|key| writer.delete(key)));
        if let Err(e) = written {
            seen.lock()
                .expect("not poisoned")
                .push(format!("{point:?}: {e:#}"));
        }
    });
    let source = || ArchiveSource::Timestamp(backup.information.created_at);
    let report = run_restore(
        &settings,
        &registry,
        &RestoreRequest {
            observer,
            ..request(source())
        },
        &|_| Ok(true),
    )?;
    let failures = failures.lock().expect("not poisoned").clone();
    ensure!(
        failures.is_empty(),
        "the live application failed: {failures:?}"
    );
    let uploads = component(&report, "uploads");
    ensure!(
        uploads.error.is_none(),
        "the restore failed: {:?}",
        uploads.error
    );
    let verification = uploads.verification.as_ref().context("no verification")?;
    let reported: BTreeSet<String> = verification
        .drifted
        .iter()
        .map(|d| d.key.to_string())
        .collect();
    ensure!(
        reported == reported_moves(),
        "reported as left as found: {reported:?}, expected {:?}",
        reported_moves()
    );
    ensure!(
        report.drifted() > 0,
        "the report says the bucket equals the backup"
    );
    ensure_kept(&required, &*live, &*tmp)?;

    // The application has stopped: a second restore (within the same
    // second, as like as not) makes the bucket equal the backup,
    // snapshotting every version it replaces into a snapshot of its own.
    let again = restore(h, &settings, source())?;
    ensure!(again.drifted() == 0, "the second restore saw drift");
    ensure!(
        live.contents()? == backed_up,
        "the second restore did not converge"
    );
    ensure_kept(&required, &*live, &*tmp)
}

/// A restore that fails after its snapshot was taken says where the
/// snapshot is, and the snapshot holds what the bucket had.
pub fn a_failed_restore_names_its_snapshot(h: &Harness) -> Result<()> {
    let (instance, settings, backup) = Instance::backed_up(h)?;
    instance.uploads.put("added later.bin", &content(995, 10))?;
    let before = instance.uploads.contents()?;
    // As the upload starts, the staging tree becomes a plain file: the
    // tool's sync cannot read it, nor can a repair extract into it.
    let staging = settings.staging_dir.join("restore/extract/uploads");
    let observer = RestoreObserver::new(move |component, point| {
        if component == "uploads" && point == RestorePoint::Uploading {
            let _ = std::fs::remove_dir_all(&staging);
            let _ = std::fs::write(&staging, b"not a directory");
        }
    });
    instance.uploads.delete("@hashed/04/upload 4's #4.bin")?;
    let report = run_restore(
        &settings,
        &h.registry()?,
        &RestoreRequest {
            observer,
            ..request(ArchiveSource::Timestamp(backup.information.created_at))
        },
        &|_| Ok(true),
    )?;
    let uploads = component(&report, "uploads");
    let error = uploads
        .error
        .as_deref()
        .context("the restore did not fail")?;
    let snapshot = uploads.snapshot.as_deref().unwrap_or_default();
    ensure!(
        error.contains("snapshot") && error.contains(&format!("{}/uploads.", instance.tmp.url())),
        "the error does not name the snapshot: {error}"
    );
    let name = error
        .split(&format!("{}/", instance.tmp.url()))
        .nth(1)
        .and_then(|rest| rest.split([' ', '/']).next())
        .context("no snapshot path in the error")?;
    ensure!(
        below(&*instance.tmp, name)?.get("added later.bin") == before.get("added later.bin"),
        "the named snapshot {name} (report: {snapshot:?}) lacks the object the restore was to delete"
    );
    Ok(())
}

/// Two backups started in the same second (from two machines: separate
/// staging directories) both survive as distinct archives with their
/// sidecars, as `stowage backups list` reads them; an archive name that
/// exists is never replaced, and no claim is left behind. Without a
/// conditional create, what the host promises instead: a name another
/// backup has claimed is passed over.
pub fn two_backups_in_the_same_second_both_survive(h: &Harness) -> Result<()> {
    let uploads = h.bucket("same-second-uploads")?;
    uploads.put("a.bin", &content(140, 3000))?;
    let backups = h.bucket("same-second-backups")?;
    let staging = tempfile::tempdir()?;
    let registry = h.registry()?;
    let settings = |machine: &str| Settings {
        label: Some("stowage_gitlab".to_string()),
        destination: Location::parse(&backups.url()),
        tmp_bucket: None,
        staging_dir: staging.path().join(machine),
        components: vec![Component {
            name: "uploads".to_string(),
            bucket: Location::parse(&uploads.url()),
            excludes: Vec::new(),
        }],
    };
    let (first, second) = (settings("one"), settings("two"));
    wait_for_a_new_second();
    let (a, b) = if h.plugin.conditional_create() {
        let (a, b) = std::thread::scope(|scope| {
            let a = scope.spawn(|| backup_quietly(&first, &registry));
            let b = scope.spawn(|| backup_quietly(&second, &registry));
            (a.join(), b.join())
        });
        (
            a.expect("a backup does not panic")?,
            b.expect("a backup does not panic")?,
        )
    } else {
        // Without it a name is claimed after checking that it is free, which
        // two backups starting at the same instant can both pass
        // (docs/SAFETY.md). Another backup holds this second's name; these
        // two start in the same second, one after the other.
        let held = ArchiveName {
            timestamp: now(),
            label: first.label()?.to_string(),
        }
        .file_name();
        backups.put(&claim_name(&held), b"another-host 1")?;
        let a = backup_quietly(&first, &registry)?;
        let b = backup_quietly(&second, &registry)?;
        ensure!(
            a.information.archive != held && b.information.archive != held,
            "a backup took the name {held} another backup had claimed"
        );
        ensure!(
            backups.contents()?.contains_key(&claim_name(&held)),
            "another backup's claim was removed"
        );
        (a, b)
    };
    let names = set(&[&a.information.archive, &b.information.archive]);
    ensure!(names.len() == 2, "both backups were named {names:?}");
    let store = BackupStore::open(&first.destination, &registry)?;
    let listed: BTreeSet<String> = store
        .archives()?
        .into_iter()
        .map(|archive| archive.file_name)
        .collect();
    ensure!(listed == names, "listed {listed:?}, made {names:?}");
    for report in [&a, &b] {
        let archive = &report.information.archive;
        let sidecar = store
            .get_bytes(&sidecar_name(archive))?
            .with_context(|| format!("no sidecar for {archive}"))?;
        let information: BackupInformation = serde_json::from_slice(&sidecar)?;
        ensure!(
            &information.archive == archive,
            "{archive}'s sidecar names {}",
            information.archive
        );
        ensure!(
            !store.contains(&claim_name(archive))?,
            "the claim of {archive} was left behind"
        );
    }
    Ok(())
}

/// Sleeps until just after the clock turns to a new second, so that what
/// starts next starts in the same second.
fn wait_for_a_new_second() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is after 1970");
    let rest = std::time::Duration::from_secs(1)
        - std::time::Duration::from_nanos(now.subsec_nanos().into());
    std::thread::sleep(rest + std::time::Duration::from_millis(20));
}
