//! The `stowage` binary, run as a user runs it, with the repository's
//! plugins.toml and the fs plugin built by `cargo test`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The directory `cargo test` builds plugin libraries into.
fn plugin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().to_path_buf()
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// `stowage ARGS` in `cwd`, with no plugins file from the user's home.
fn stowage(cwd: &Path, args: &[&str]) -> Output {
    let home = tempfile::tempdir().unwrap();
    Command::new(env!("CARGO_BIN_EXE_stowage"))
        .args(args)
        .current_dir(cwd)
        .env("STOWAGE_PLUGIN_PATH", plugin_dir())
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path())
        .env_remove("STOWAGE_PLUGINS")
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn plugins_lists_the_fs_plugin_loaded_from_its_library() {
    let out = stowage(&repo_root(), &["plugins"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let line = stdout(&out)
        .lines()
        .find(|l| l.starts_with("fs "))
        .map(str::to_string);
    let line = line.unwrap_or_else(|| panic!("no fs line in {}", stdout(&out)));
    assert!(line.contains("file://") && line.ends_with("ok"), "{line}");

    let json = stowage(&repo_root(), &["plugins", "--json"]);
    let rows: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let fs = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "fs")
        .unwrap();
    assert!(fs["library"]
        .as_str()
        .unwrap()
        .ends_with("libstowage_plugin_fs.so"));
    assert_eq!(fs["ok"], true);
}

#[test]
fn without_a_plugins_file_there_is_one_line_naming_where_it_looked() {
    let empty = tempfile::tempdir().unwrap();
    let out = stowage(empty.path(), &["plugins"]);
    assert_eq!(out.status.code(), Some(3));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("error: no plugins.toml found (looked for plugins.toml"),
        "{err}"
    );
}

#[test]
fn a_missing_explicit_plugins_file_is_named() {
    let empty = tempfile::tempdir().unwrap();
    let out = stowage(empty.path(), &["--plugins", "nowhere.toml", "plugins"]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(stderr(&out), "error: plugins file nowhere.toml not found\n");
}

#[test]
fn sync_dry_run_shows_the_plan_and_changes_nothing_then_the_real_run_does_it() {
    let work = tempfile::tempdir().unwrap();
    let source = work.path().join("src");
    std::fs::create_dir_all(source.join("d")).unwrap();
    std::fs::write(source.join("d/a.txt"), b"hello").unwrap();
    let bucket = work.path().join("bucket");
    std::fs::create_dir_all(&bucket).unwrap();
    std::fs::write(bucket.join("old.txt"), b"old").unwrap();
    let url = format!("file://{}", bucket.display());
    let src = source.to_str().unwrap();

    let dry = stowage(&repo_root(), &["sync", src, &url, "--delete", "--dry-run"]);
    assert!(dry.status.success(), "{}", stderr(&dry));
    assert!(
        stdout(&dry).contains("transfer             5  d/a.txt"),
        "{}",
        stdout(&dry)
    );
    assert!(
        stdout(&dry).contains("delete               3  old.txt"),
        "{}",
        stdout(&dry)
    );
    assert!(bucket.join("old.txt").exists() && !bucket.join("d").exists());

    let real = stowage(&repo_root(), &["sync", src, &url, "--delete", "--json"]);
    assert!(real.status.success(), "{}", stderr(&real));
    let report: serde_json::Value = serde_json::from_slice(&real.stdout).unwrap();
    assert_eq!(report["verification"]["verified"], 1);
    assert_eq!(std::fs::read(bucket.join("d/a.txt")).unwrap(), b"hello");
    assert!(!bucket.join("old.txt").exists());
}

#[test]
fn a_sync_deleting_more_than_max_delete_is_refused_with_exit_code_5() {
    let work = tempfile::tempdir().unwrap();
    let source = work.path().join("src");
    std::fs::create_dir_all(&source).unwrap();
    let bucket = work.path().join("bucket");
    std::fs::create_dir_all(&bucket).unwrap();
    std::fs::write(bucket.join("a"), b"1").unwrap();
    std::fs::write(bucket.join("b"), b"2").unwrap();
    let url = format!("file://{}", bucket.display());
    let out = stowage(
        &repo_root(),
        &[
            "sync",
            source.to_str().unwrap(),
            &url,
            "--delete",
            "--max-delete",
            "1",
        ],
    );
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("more than --max-delete 1"),
        "{}",
        stderr(&out)
    );
    assert!(bucket.join("a").exists() && bucket.join("b").exists());
}

#[test]
fn an_unknown_scheme_is_a_configuration_error() {
    let out = stowage(&repo_root(), &["ls", "nosuch://bucket"]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(stderr(&out).lines().count(), 1);
}

#[test]
fn help_documents_the_exit_codes() {
    let out = stowage(&repo_root(), &["--help"]);
    assert!(stdout(&out).contains("Exit codes:"));
    assert!(stdout(&out).contains("5  refused by a safety rule"));
}

#[test]
fn a_restore_without_a_terminal_never_prompts_and_refuses_without_yes() {
    let work = tempfile::tempdir().unwrap();
    let bucket = work.path().join("buckets/uploads");
    std::fs::create_dir_all(&bucket).unwrap();
    std::fs::write(bucket.join("a.txt"), b"backed up").unwrap();
    let config = work.path().join("stowage.toml");
    std::fs::write(
        &config,
        format!(
            "label = \"stowage_gitlab\"\nbackup_destination = {:?}\ntmp_bucket = \"file://{}/buckets/tmp\"\nstaging_dir = {:?}\n[components.uploads]\nbucket = \"file://{}\"\n",
            work.path().join("backups"),
            work.path().display(),
            work.path().join("staging"),
            bucket.display()
        ),
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let backup = stowage(&repo_root(), &["backup", "--config", config, "--json"]);
    assert!(backup.status.success(), "{}", stderr(&backup));
    let report: serde_json::Value = serde_json::from_slice(&backup.stdout).unwrap();
    let timestamp = report["information"]["created_at"].to_string();
    std::fs::write(bucket.join("a.txt"), b"changed!!").unwrap();

    let out = stowage(&repo_root(), &["restore", &timestamp, "--config", config]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no terminal to confirm on; add --yes"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read(bucket.join("a.txt")).unwrap(), b"changed!!");

    let out = stowage(
        &repo_root(),
        &["restore", &timestamp, "--config", config, "--yes"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read(bucket.join("a.txt")).unwrap(), b"backed up");
}

#[test]
fn two_backups_started_in_the_same_second_are_both_kept_and_listed() {
    let work = tempfile::tempdir().unwrap();
    let bucket = work.path().join("buckets/uploads");
    std::fs::create_dir_all(&bucket).unwrap();
    std::fs::write(bucket.join("a.txt"), b"backed up").unwrap();
    // Two machines: one backup destination, a staging directory each.
    let config = |machine: &str| {
        let path = work.path().join(format!("{machine}.toml"));
        std::fs::write(
            &path,
            format!(
                "label = \"stowage_gitlab\"\nbackup_destination = {:?}\nstaging_dir = {:?}\n[components.uploads]\nbucket = \"file://{}\"\n",
                work.path().join("backups"),
                work.path().join(machine),
                bucket.display()
            ),
        )
        .unwrap();
        path.to_string_lossy().into_owned()
    };
    let configs = [config("one"), config("two")];
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    // Start both just after the clock turns, so they start in the same second.
    std::thread::sleep(std::time::Duration::from_nanos(
        1_000_000_000 - u64::from(now.subsec_nanos()) + 20_000_000,
    ));
    let outputs = std::thread::scope(|scope| {
        let runs: Vec<_> = configs
            .iter()
            .map(|c| {
                scope.spawn(move || stowage(&repo_root(), &["backup", "--config", c, "--json"]))
            })
            .collect();
        runs.into_iter()
            .map(|r| r.join().unwrap())
            .collect::<Vec<_>>()
    });
    let mut made = Vec::new();
    for out in &outputs {
        assert!(out.status.success(), "{}", stderr(out));
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        made.push(
            report["information"]["archive"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    made.sort();
    assert_ne!(made[0], made[1], "both backups made one archive name");

    let list = stowage(
        &repo_root(),
        &["backups", "list", "--config", &configs[0], "--json"],
    );
    assert!(list.status.success(), "{}", stderr(&list));
    let rows: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    let listed: Vec<(String, serde_json::Value)> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["file_name"].as_str().unwrap().to_string(),
                r["components"].clone(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        made.iter()
            .map(|name| (name.clone(), serde_json::json!(["uploads"])))
            .collect::<Vec<_>>()
    );
}
