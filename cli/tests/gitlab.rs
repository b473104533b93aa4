//! `stowage gitlab-backup-utility` driven as GitLab's toolbox drives
//! backup-utility: with the Helm chart's variables set (the chart's default
//! bucket names), backup-utility's flags, and no stowage.toml. The buckets
//! are directories on the fs plugin: `STOWAGE_GITLAB_BUCKET_ROOT` gives the
//! chart's bare bucket names a `file://` root instead of `s3://`.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{plugin_dir, repo_root, stderr, stdout};
use stowage_conformance::scratch::{md5_hex, ScratchStore, ScratchStores};
use stowage_conformance::{infrastructure_missing, BucketToolStores};

/// The variables the chart's toolbox backup job sets
/// (charts/gitlab/charts/toolbox/templates/backup-job.yaml), with the
/// chart's default bucket names (values.yaml).
const CHART_VARIABLES: [(&str, &str); 12] = [
    ("BACKUP_BACKEND", "s3"),
    ("BACKUP_BUCKET_NAME", "gitlab-backups"),
    ("TMP_BUCKET_NAME", "tmp"),
    ("REGISTRY_BUCKET_NAME", "registry"),
    ("UPLOADS_BUCKET_NAME", "gitlab-uploads"),
    ("ARTIFACTS_BUCKET_NAME", "gitlab-artifacts"),
    ("LFS_BUCKET_NAME", "git-lfs"),
    ("PACKAGES_BUCKET_NAME", "gitlab-packages"),
    ("EXTERNAL_DIFFS_BUCKET_NAME", "gitlab-mr-diffs"),
    ("TERRAFORM_STATE_BUCKET_NAME", "gitlab-terraform-state"),
    ("CI_SECURE_FILES_BUCKET_NAME", "gitlab-ci-secure-files"),
    ("PAGES_BUCKET_NAME", "gitlab-pages"),
];

/// Every object-storage component skipped: nothing left for Stowage.
const EVERY_OBJECT_COMPONENT: &str =
    "registry,uploads,artifacts,lfs,packages,external_diffs,terraform_state,pages,ci_secure_files";

/// A small GitLab: uploads, artifacts, LFS and registry buckets with
/// objects; the buckets of features the chart leaves disabled by default
/// (external diffs, Terraform state, CI secure files, packages, pages) do
/// not exist.
struct Toolbox {
    work: tempfile::TempDir,
    home: tempfile::TempDir,
}

impl Toolbox {
    fn new() -> Toolbox {
        let toolbox = Toolbox {
            work: tempfile::tempdir().unwrap(),
            home: tempfile::tempdir().unwrap(),
        };
        toolbox.write("gitlab-uploads", "@hashed/aa/bb/avatar.png", b"avatar");
        toolbox.write("gitlab-uploads", "@hashed/cc/dd/logo.svg", b"<svg/>");
        toolbox.write("gitlab-artifacts", "2025_11/job.log", b"job output");
        toolbox.write("git-lfs", "ab/cd/object", b"large file");
        toolbox.write("registry", "docker/registry/v2/blob", b"layer");
        toolbox
    }

    /// The directory of the bucket named `name`.
    fn bucket(&self, name: &str) -> PathBuf {
        self.work.path().join("buckets").join(name)
    }

    fn write(&self, bucket: &str, key: &str, content: &[u8]) {
        let path = self.bucket(bucket).join(key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }

    /// `program ARGS` in the toolbox's environment: the chart's variables,
    /// the repository's plugins.toml, staging in the work directory.
    fn command(&self, program: &Path, args: &[&str]) -> Command {
        let mut command = Command::new(program);
        command
            .args(args)
            .current_dir(repo_root())
            .envs(CHART_VARIABLES)
            .env(
                "STOWAGE_GITLAB_BUCKET_ROOT",
                format!("file://{}", self.bucket("").display()),
            )
            .env("STOWAGE_STAGING_DIR", self.work.path().join("staging"))
            .env("STOWAGE_PLUGIN_PATH", plugin_dir())
            .env("HOME", self.home.path())
            .env("XDG_CONFIG_HOME", self.home.path())
            .env_remove("STOWAGE_PLUGINS")
            .env_remove("S3_TOOL")
            .stdin(std::process::Stdio::null());
        command
    }

    /// `stowage gitlab-backup-utility ARGS`.
    fn backup_utility(&self, args: &[&str]) -> Output {
        let args = [&["gitlab-backup-utility"], args].concat();
        let stowage = Path::new(env!("CARGO_BIN_EXE_stowage"));
        self.command(stowage, &args).output().unwrap()
    }

    /// The archives in the backup bucket, oldest first.
    fn archives(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.bucket("gitlab-backups")) else {
            return Vec::new();
        };
        let mut names: Vec<String> = entries
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with("_backup.tar"))
            .collect();
        names.sort();
        names
    }
}

/// Every file below `dir` and its content, read straight from the disk.
fn contents(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, into: &mut BTreeMap<String, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, into);
            } else {
                let key = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                into.insert(key, std::fs::read(&path).unwrap());
            }
        }
    }
    let mut files = BTreeMap::new();
    walk(dir, dir, &mut files);
    files
}

fn assert_success(out: &Output) {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        stdout(out),
        stderr(out)
    );
}

/// Fails unless stdout holds `text`.
fn assert_says(out: &Output, text: &str) {
    assert!(stdout(out).contains(text), "{}", stdout(out));
}

/// The lines of stderr that are not progress output.
fn notes(out: &Output) -> Vec<String> {
    stderr(out)
        .lines()
        .filter(|l| l.starts_with("note:") || l.starts_with("error:"))
        .map(str::to_string)
        .collect()
}

#[test]
fn backs_up_and_restores_by_sync_with_backup_utilitys_flags_and_the_charts_variables() {
    let toolbox = Toolbox::new();
    let uploads = toolbox.bucket("gitlab-uploads");
    let backed_up = contents(&uploads);

    // The chart's cron job with extraArgs: GitLab's parts skipped, LFS too.
    let first = toolbox.backup_utility(&[
        "--skip",
        "db",
        "--skip",
        "repositories,builds",
        "--skip",
        "lfs",
        "--maximum-backups",
        "1",
    ]);
    assert_success(&first);
    assert!(notes(&first).is_empty(), "{}", stderr(&first));
    assert_says(&first, "skipped external_diffs: its bucket does not exist");
    let [first_archive] = toolbox.archives().try_into().unwrap();
    assert!(
        first_archive.ends_with("_stowage_gitlab_backup.tar"),
        "{first_archive}"
    );

    // A second backup prunes the first (one kept), the skips as one list.
    let second = toolbox.backup_utility(&[
        "--skip=db,repositories,builds,lfs",
        "--maximum-backups",
        "1",
    ]);
    assert_success(&second);
    assert_says(&second, &format!("pruned {first_archive}"));
    let [archive] = toolbox.archives().try_into().unwrap();
    assert_ne!(archive, first_archive);
    let sidecar: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            toolbox
                .bucket("gitlab-backups")
                .join(format!("{archive}.json")),
        )
        .unwrap(),
    )
    .unwrap();
    let components: Vec<&str> = sidecar["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(components, ["artifacts", "registry", "uploads"]);

    // The buckets drift; LFS (not in the backup) too.
    toolbox.write("gitlab-uploads", "@hashed/aa/bb/avatar.png", b"replaced");
    toolbox.write("gitlab-uploads", "@hashed/ee/ff/new.txt", b"extraneous");
    std::fs::remove_file(uploads.join("@hashed/cc/dd/logo.svg")).unwrap();
    toolbox.write("git-lfs", "ab/cd/object", b"changed after the backup");

    // The restore step as the chart documents it, unchanged: by backup ID.
    let backup_id = archive.strip_suffix("_gitlab_backup.tar").unwrap();
    let restore = toolbox.backup_utility(&["--restore", "-t", backup_id]);
    assert_success(&restore);
    assert_eq!(
        notes(&restore),
        ["note: db, repositories, builds: not done here; GitLab's rake tasks do them (backup-utility --skip <object components>, or gitlab-backup)"]
    );
    assert_eq!(contents(&uploads), backed_up);
    assert_eq!(
        std::fs::read(toolbox.bucket("git-lfs").join("ab/cd/object")).unwrap(),
        b"changed after the backup",
        "LFS was skipped in the backup: the restore leaves it alone"
    );
    // What the restore replaced or deleted is in the tmp bucket.
    let snapshots: Vec<String> = std::fs::read_dir(toolbox.bucket("tmp"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        snapshots.iter().any(|s| s.starts_with("uploads.")),
        "{snapshots:?}"
    );
}

/// Builds `<backup ID>_gitlab_backup.tar` in `dir` as backup-utility does,
/// with GNU tar: db/, repositories/, backup_information.yml and
/// uploads.tar.gz holding `uploads`.
fn gitlab_made_archive(dir: &Path, backup_id: &str, uploads: &Path) -> PathBuf {
    let outer = tempfile::tempdir().unwrap();
    let outer = outer.path();
    std::fs::create_dir_all(outer.join("db")).unwrap();
    std::fs::create_dir_all(outer.join("repositories")).unwrap();
    std::fs::write(outer.join("db/database.sql.gz"), b"not object storage").unwrap();
    std::fs::write(
        outer.join("backup_information.yml"),
        ":gitlab_version: 17.5.1\n:installation_type: gitlab-helm-chart\n:skipped: \n",
    )
    .unwrap();
    let tar = |args: &[&std::ffi::OsStr]| {
        let status = Command::new("tar").args(args).status().unwrap();
        assert!(status.success(), "tar {args:?}");
    };
    let uploads_tarball = outer.join("uploads.tar.gz");
    tar(&[
        "-cf".as_ref(),
        uploads_tarball.as_os_str(),
        "-I".as_ref(),
        "gzip".as_ref(),
        "-C".as_ref(),
        uploads.as_os_str(),
        ".".as_ref(),
    ]);
    std::fs::create_dir_all(dir).unwrap();
    let archive = dir.join(format!("{backup_id}_gitlab_backup.tar"));
    tar(&[
        "-cf".as_ref(),
        archive.as_os_str(),
        "-C".as_ref(),
        outer.as_os_str(),
        ".".as_ref(),
    ]);
    archive
}

#[test]
fn a_gitlab_made_archive_in_the_backup_bucket_restores_by_its_backup_id() {
    let toolbox = Toolbox::new();
    let from_gitlab = tempfile::tempdir().unwrap();
    std::fs::write(from_gitlab.path().join("from-gitlab.png"), b"restored").unwrap();
    gitlab_made_archive(
        &toolbox.bucket("gitlab-backups"),
        "1700000000_2023_11_14_17.5.1",
        from_gitlab.path(),
    );

    let restore = toolbox.backup_utility(&[
        "--restore",
        "-t",
        "1700000000_2023_11_14_17.5.1",
        "--skip",
        "db,repositories,builds",
    ]);
    assert_success(&restore);
    assert!(notes(&restore).is_empty(), "{}", stderr(&restore));
    assert_says(
        &restore,
        "note: db in 1700000000_2023_11_14_17.5.1_gitlab_backup.tar is not object storage; skipped",
    );
    assert_eq!(
        contents(&toolbox.bucket("gitlab-uploads")),
        contents(from_gitlab.path())
    );

    // A bare timestamp finds it too; the buckets match, nothing changes.
    let again = toolbox.backup_utility(&[
        "--restore",
        "-t",
        "1700000000",
        "--skip",
        "db,repositories,builds",
    ]);
    assert_success(&again);
    assert_says(&again, "uploads: uploaded 0");
}

#[test]
fn requests_only_gitlabs_rake_tasks_can_carry_out_are_refused_in_one_line_and_change_nothing() {
    let toolbox = Toolbox::new();
    for (args, says) in [
        (
            &["--skip", "db", "--skip", EVERY_OBJECT_COMPONENT][..],
            "stay with GitLab's rake tasks",
        ),
        (
            &[
                "--restore",
                "-t",
                "1700000000",
                "--skip",
                EVERY_OBJECT_COMPONENT,
            ],
            "stay with GitLab's rake tasks",
        ),
        (&["--repositories-server-side"], "repositories are GitLab's"),
        (
            &["--storage-class", "STANDARD_IA"],
            "--storage-class is not supported",
        ),
    ] {
        let out = toolbox.backup_utility(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        let error = stderr(&out);
        let lines: Vec<&str> = error.lines().collect();
        assert_eq!(lines.len(), 1, "{args:?}: {lines:?}");
        assert!(
            lines[0].starts_with("error: ") && lines[0].contains(says),
            "{args:?}: {lines:?}"
        );
    }
    assert!(!toolbox.bucket("gitlab-backups").exists());
    assert!(!toolbox.bucket("tmp").exists());
}

#[test]
fn a_link_named_backup_utility_runs_the_command() {
    let toolbox = Toolbox::new();
    let bin = tempfile::tempdir().unwrap();
    let link = bin.path().join("backup-utility");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_stowage"), &link).unwrap();
    let backup = toolbox
        .command(&link, &["--skip", "db,repositories,builds"])
        .output()
        .unwrap();
    assert_success(&backup);
    assert_eq!(toolbox.archives().len(), 1);
    let cleanup = toolbox
        .command(&link, &["--cleanup", "--maximum-backups", "1"])
        .output()
        .unwrap();
    assert_success(&cleanup);
    assert_eq!(toolbox.archives().len(), 1);
}

/// The chart's variables as a toolbox on the S3 test server has them: each
/// bucket named after the chart's default but unique there (the tests
/// running at once share the server), with the buckets by variable (not
/// created yet).
struct ChartOnS3 {
    variables: Vec<(&'static str, String)>,
    buckets: BTreeMap<&'static str, Box<dyn ScratchStore>>,
}

impl ChartOnS3 {
    fn new(stores: &BucketToolStores) -> ChartOnS3 {
        let mut chart = ChartOnS3 {
            variables: Vec::new(),
            buckets: BTreeMap::new(),
        };
        for (variable, value) in CHART_VARIABLES {
            let value = match variable.ends_with("_BUCKET_NAME") {
                true => {
                    let bucket = stores.new_store(value);
                    let name = bucket.url().trim_start_matches("s3://").to_string();
                    chart.buckets.insert(variable, bucket);
                    name
                }
                false => value.to_string(),
            };
            chart.variables.push((variable, value));
        }
        chart
    }
}

#[test]
fn backs_up_and_restores_real_s3_buckets_with_s3cmd_as_the_chart_configures_it() {
    let (Some(stores), Ok(s3cfg)) = (
        BucketToolStores::from_env("s3"),
        std::env::var("STOWAGE_TEST_S3CFG"),
    ) else {
        infrastructure_missing::<()>("the S3 test server (STOWAGE_TEST_VENV, STOWAGE_TEST_S3CFG)");
        return;
    };
    let chart = ChartOnS3::new(&stores);
    let bucket = |variable: &str| &chart.buckets[variable];
    // The buckets the chart enables by default, with objects, and the
    // backup bucket (the chart creates them); no tmp bucket yet.
    let uploads = bucket("UPLOADS_BUCKET_NAME");
    let seeded = [
        ("UPLOADS_BUCKET_NAME", "@hashed/aa/bb/avatar.png", "avatar"),
        ("UPLOADS_BUCKET_NAME", "@hashed/cc/dd/logo.svg", "<svg/>"),
        ("ARTIFACTS_BUCKET_NAME", "2025_11/job.log", "job output"),
        ("LFS_BUCKET_NAME", "ab/cd/object", "large file"),
        ("REGISTRY_BUCKET_NAME", "docker/registry/v2/blob", "layer"),
    ];
    bucket("BACKUP_BUCKET_NAME").create().unwrap();
    for (variable, key, content) in seeded {
        if !bucket(variable).exists().unwrap() {
            bucket(variable).create().unwrap();
        }
        bucket(variable).put(key, content.as_bytes()).unwrap();
    }
    let backed_up = uploads.contents().unwrap();

    let home = tempfile::tempdir().unwrap();
    let staging = tempfile::tempdir().unwrap();
    let backup_utility = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_stowage"))
            .arg("gitlab-backup-utility")
            .args(["--s3tool", "s3cmd", "--s3config", &s3cfg])
            .args(args)
            .current_dir(repo_root())
            .envs(
                chart
                    .variables
                    .iter()
                    .map(|(v, value)| (*v, value.as_str())),
            )
            .env_remove("STOWAGE_GITLAB_BUCKET_ROOT")
            .env("STOWAGE_STAGING_DIR", staging.path())
            .env("STOWAGE_PLUGIN_PATH", plugin_dir())
            .env("HOME", home.path())
            .env("XDG_CONFIG_HOME", home.path())
            .env_remove("STOWAGE_PLUGINS")
            .env_remove("S3_TOOL")
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    };

    let backup = backup_utility(&["--skip", "db,repositories,builds"]);
    assert_success(&backup);
    assert_says(&backup, "skipped external_diffs: its bucket does not exist");
    let archives: Vec<String> = bucket("BACKUP_BUCKET_NAME")
        .contents()
        .unwrap()
        .into_keys()
        .filter(|key| key.ends_with("_stowage_gitlab_backup.tar"))
        .collect();
    let [archive] = archives.try_into().unwrap();

    // The buckets drift; then the restore step as the chart documents it.
    uploads
        .put("@hashed/aa/bb/avatar.png", b"replaced")
        .unwrap();
    uploads.put("@hashed/ee/ff/new.txt", b"extraneous").unwrap();
    uploads.delete("@hashed/cc/dd/logo.svg").unwrap();
    let backup_id = archive.strip_suffix("_gitlab_backup.tar").unwrap();
    let restore = backup_utility(&["--restore", "-t", backup_id]);
    assert_success(&restore);
    assert_eq!(
        uploads.contents().unwrap(),
        backed_up,
        "read back with boto3"
    );
    // What it replaced or deleted is in the tmp bucket, read back too.
    let snapshots = bucket("TMP_BUCKET_NAME").contents().unwrap();
    for (key, content) in [
        ("@hashed/aa/bb/avatar.png", "replaced"),
        ("@hashed/ee/ff/new.txt", "extraneous"),
    ] {
        assert!(
            snapshots.iter().any(|(k, md5)| k.starts_with("uploads.")
                && k.ends_with(key)
                && *md5 == md5_hex(content.as_bytes())),
            "{key} not in the snapshot: {snapshots:?}"
        );
    }
}
