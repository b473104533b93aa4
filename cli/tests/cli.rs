//! The `stowage` binary, run as a user runs it, with the repository's
//! plugins.toml and the fs plugin built by `cargo test`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{
    output_with_stdout_closed, plugin_dir, plugins_file, repo_root, stderr, stdout, stowage,
    stowage_command, stowage_without_drop_ins, FsInstance,
};
use stowage::restore::Shard;
use stowage_conformance::data::partial_writes;
use stowage_plugin_loader::host_api_version;

/// A plugins.toml with the fs plugin, mapped to `file://`, and `more`.
fn fs_and(more: &str) -> tempfile::TempDir {
    plugins_file(&format!(
        "[schemes]\nfile = \"fs\"\n[plugins.fs]\nlibrary = {{lib:stowage_plugin_fs}}\n{more}"
    ))
}

#[test]
fn plugins_lists_the_fs_plugin_loaded_from_its_library() {
    let dir = fs_and("");
    let out = stowage_without_drop_ins(dir.path(), &["plugins"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let line = text.lines().find(|l| l.starts_with("fs "));
    let line = line.unwrap_or_else(|| panic!("no fs line in {text}"));
    let api = host_api_version().to_string();
    for part in [api.as_str(), "no external tool", "file://"] {
        assert!(line.contains(part), "{part:?} not in {line}");
    }
    assert!(line.ends_with(" ok"), "{line}");
    assert!(!text.contains("(built in)"), "{text}");
}

#[test]
fn a_reader_that_goes_away_ends_the_output_quietly() {
    // `stowage plugins --verbose | head -1`: the reader closes the pipe
    // before stowage has written; its writes fail with EPIPE.
    let dir = fs_and("");
    let home = tempfile::tempdir().unwrap();
    let out = output_with_stdout_closed(stowage_command(
        dir.path(),
        &["plugins", "--verbose"],
        home.path(),
        home.path(),
    ));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stderr(&out), "");
}

#[test]
fn plugins_json_carries_each_plugin_its_api_version_and_its_options() {
    let dir = fs_and("[plugins.fs.config]\nparallelism = 2\n");
    let out = stowage_without_drop_ins(dir.path(), &["plugins", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let [fs] = rows.as_array().unwrap().as_slice() else {
        panic!("one row expected: {rows}");
    };
    let keys: Vec<&str> = fs.as_object().unwrap().keys().map(String::as_str).collect();
    let mut expected = [
        "name",
        "library",
        "api_version",
        "version",
        "description",
        "tool",
        "tool_version",
        "schemes",
        "endpoint",
        "options",
        "ok",
        "problem",
    ];
    expected.sort_unstable();
    assert_eq!(keys, expected);
    assert_eq!(fs["name"], "fs");
    assert!(fs["library"]
        .as_str()
        .unwrap()
        .ends_with("libstowage_plugin_fs.so"));
    assert_eq!(fs["api_version"], host_api_version().to_string());
    assert_eq!(fs["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(fs["tool"], serde_json::Value::Null);
    assert_eq!(fs["schemes"], serde_json::json!(["file"]));
    assert_eq!(fs["ok"], true);
    assert_eq!(fs["problem"], serde_json::Value::Null);
    assert_eq!(
        fs["options"],
        serde_json::json!([{
            "name": "parallelism",
            "kind": "integer",
            "default": "4",
            "help": "Files copied at once when a sync does not set its own parallelism.",
            "secret": false,
            "value": 2,
        }])
    );
}

#[test]
fn plugins_exits_3_when_a_plugin_cannot_load_after_listing_them_all() {
    let dir = fs_and("[plugins.gone]\nlibrary = \"/nonexistent/libstowage_plugin_gone.so\"\n");
    let out = stowage_without_drop_ins(dir.path(), &["plugins"]);
    assert_eq!(out.status.code(), Some(3));
    let text = stdout(&out);
    assert!(
        text.lines()
            .any(|l| l.starts_with("fs ") && l.ends_with(" ok")),
        "{text}"
    );
    let gone = text.lines().find(|l| l.starts_with("gone "));
    let gone = gone.unwrap_or_else(|| panic!("no line for the broken plugin in {text}"));
    assert!(
        gone.contains("/nonexistent/libstowage_plugin_gone.so: no such file"),
        "{gone}"
    );
    assert_eq!(stderr(&out), "error: 1 of 2 plugins not ready: gone\n");

    let out = stowage_without_drop_ins(dir.path(), &["plugins", "--json"]);
    assert_eq!(out.status.code(), Some(3));
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ok: Vec<(&str, bool)> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["name"].as_str().unwrap(), r["ok"].as_bool().unwrap()))
        .collect();
    assert_eq!(ok, [("fs", true), ("gone", false)]);
}

#[test]
fn a_misspelt_or_mistyped_plugin_key_is_a_configuration_error_naming_it() {
    let dir = fs_and("[plugins.fs.config]\nparallelsm = 4\n");
    let out = stowage_without_drop_ins(dir.path(), &["ls", "file:///nonexistent"]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(
        stderr(&out),
        "error: plugin fs: unknown key `parallelsm` in plugins.toml; did you mean `parallelism`?\n"
    );

    let dir = fs_and("[plugins.fs.config]\nparallelism = \"four\"\n");
    let out = stowage_without_drop_ins(dir.path(), &["ls", "file:///nonexistent"]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(
        stderr(&out),
        "error: plugin fs: key `parallelism` in plugins.toml must be an integer, not a string\n"
    );
}

#[test]
fn secret_values_are_never_shown_in_listings_or_messages() {
    const TOKEN: &str = "hunter2-probe-token";
    let dir = plugins_file(&format!(
        "[plugins.probe]\nlibrary = {{lib:stowage_probe_plugin}}\n[plugins.probe.config]\ntoken = {TOKEN:?}\n"
    ));
    for args in [
        &["plugins", "--verbose"][..],
        &["plugins", "--json"],
        &["plugins", "--json", "--verbose"],
    ] {
        let out = stowage_without_drop_ins(dir.path(), args);
        // The probe's check fails, echoing its token.
        assert_eq!(out.status.code(), Some(3), "{args:?}");
        let (text, err) = (stdout(&out), stderr(&out));
        assert!(
            !text.contains(TOKEN) && !err.contains(TOKEN),
            "{args:?}: {text}{err}"
        );
        assert!(
            text.contains("the probe's token *** was refused"),
            "{args:?}: {text}"
        );
        if args.contains(&"--json") {
            let rows: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(rows[0]["options"][0]["value"], "***", "{text}");
            assert_eq!(rows[0]["options"][0]["secret"], true, "{text}");
        } else {
            assert!(
                text.contains("    token = ***   (string, secret)"),
                "{text}"
            );
        }
    }
    let wrong_type = plugins_file(
        "[plugins.probe]\nlibrary = {lib:stowage_probe_plugin}\n[plugins.probe.config]\ntoken = 31337421\n",
    );
    let out = stowage_without_drop_ins(wrong_type.path(), &["plugins", "--verbose"]);
    assert_eq!(out.status.code(), Some(3));
    let (text, err) = (stdout(&out), stderr(&out));
    assert!(
        text.contains("key `token` in plugins.toml must be a string, not an integer"),
        "{text}"
    );
    assert!(
        !text.contains("31337421") && !err.contains("31337421"),
        "{text}{err}"
    );
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
    assert!(
        stdout(&out).contains("for `stowage plugins`: any plugin that cannot load or is not ready")
    );
    assert!(stdout(&out).contains("7  finished, but someone else changed the destination"));
    assert!(stdout(&out).contains("130  interrupted by SIGINT"));
    assert!(stdout(&out).contains("143  interrupted by SIGTERM"));
}

#[test]
fn a_misspelt_bucket_is_not_found_not_empty() {
    // The bucket's directory is gone; its parent (the "buckets" directory)
    // is still there, as with a typo in stowage.toml.
    let instance = FsInstance::new("{work}/backups");
    let bucket = instance.bucket();
    std::fs::remove_dir_all(&bucket).unwrap();
    let url = format!("file://{}", bucket.display());

    let out = stowage(&repo_root(), &["ls", &url]);
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    assert!(stderr(&out).contains("does not exist"), "{}", stderr(&out));
    assert_eq!(stdout(&out), "");

    let out = instance.run(&["backup"]);
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    let message = stderr(&out);
    assert_eq!(message.lines().count(), 1, "{message}");
    for part in [
        "component uploads",
        &url,
        "does not exist",
        "--skip uploads",
    ] {
        assert!(message.contains(part), "{part:?} not in {message}");
    }
    assert!(
        !instance.path().join("backups").exists()
            || std::fs::read_dir(instance.path().join("backups"))
                .unwrap()
                .next()
                .is_none()
    );
}

#[test]
fn bad_input_gets_one_readable_line_each() {
    let instance = FsInstance::new("{work}/backups");
    let random = instance.path().join("random.bin");
    let bytes: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&random, &bytes).unwrap();
    let bad_toml = instance.path().join("bad.toml");
    std::fs::write(
        &bad_toml,
        "label = \"stowage_gitlab\"\nstaging_dir = \"/tmp\n",
    )
    .unwrap();
    let (random, config) = (random.to_str().unwrap(), instance.config());
    let (config, bad_toml) = (config.to_str().unwrap(), bad_toml.to_str().unwrap());
    let cases: [(&[&str], i32, &str); 4] = [
        (
            &["restore", "--file", random, "--dry-run", "--config", config],
            4,
            "not a tar archive (it begins with ",
        ),
        (
            &["restore", "--file", "/tmp", "--dry-run", "--config", config],
            6,
            "/tmp is a directory",
        ),
        (
            &["restore", "latest", "--dry-run", "--config", config],
            2,
            "name it by its timestamp",
        ),
        (&["backup", "--config", bad_toml], 3, "(line 2, column 20)"),
    ];
    for (args, code, part) in cases {
        let out = stowage(&repo_root(), args);
        let message = stderr(&out);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {message}");
        assert!(
            message.contains(part),
            "{args:?}: {part:?} not in {message}"
        );
        assert!(
            !message
                .chars()
                .any(|c| c.is_control() && c != '\n' || c == char::REPLACEMENT_CHARACTER),
            "{args:?}: {message:?}"
        );
    }
}

#[test]
fn the_plan_is_shown_before_the_work_and_a_refused_one_too() {
    let instance = FsInstance::new("{work}/backups");
    let timestamp = instance.backup(&[]);
    std::fs::write(instance.bucket().join("a.txt"), b"changed!!").unwrap();
    std::fs::write(instance.bucket().join("new.txt"), b"new").unwrap();

    let out = instance.run(&["restore", &timestamp, "--dry-run", "-v"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("component "), "{text}");
    assert!(
        text.contains("possibly-changed  unchanged  bucket"),
        "{text}"
    );
    for line in ["uploads: upload", "uploads: delete", "uploads: snapshot"] {
        assert!(text.contains(line), "{line:?} not in {text}");
    }
    assert!(text.contains("a.txt") && text.contains("new.txt"), "{text}");

    let out = instance.run(&["restore", &timestamp, "--yes", "--max-delete", "0"]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    let text = stdout(&out);
    let row = text.lines().find(|l| l.starts_with("uploads "));
    assert!(
        row.is_some_and(|r| r.contains(" 1 ")),
        "no plan row in {text}"
    );
    assert!(
        stderr(&out).contains("more than --max-delete 0"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_restore_of_a_file_asks_only_for_what_it_uses_and_names_all_of_it_at_once() {
    let instance = FsInstance::new("{work}/backups");
    instance.backup(&[]);
    let archive = std::fs::read_dir(instance.path().join("backups"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "tar"))
        .unwrap();
    let archive = archive.to_str().unwrap();
    let plugins = repo_root().join("plugins.toml");
    let plugins = plugins.to_str().unwrap();
    let empty = tempfile::tempdir().unwrap();

    let out = stowage(
        empty.path(),
        &[
            "--plugins",
            plugins,
            "restore",
            "--file",
            archive,
            "--dry-run",
        ],
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let message = stderr(&out);
    assert_eq!(message.lines().count(), 1, "{message}");
    for part in ["backup destination", "tmp bucket", "components"] {
        assert!(message.contains(part), "{part:?} not in {message}");
    }
    assert!(!message.contains("label"), "{message}");
    assert!(!message.contains("staging"), "{message}");

    // No label and no staging directory: the cache directory serves.
    let bucket = format!("uploads=file://{}", instance.bucket().display());
    let destination = instance.path().join("backups");
    let out = stowage(
        empty.path(),
        &[
            "--plugins",
            plugins,
            "restore",
            "--file",
            archive,
            "--dry-run",
            "--bucket",
            &bucket,
            "--destination",
            destination.to_str().unwrap(),
            "--snapshot",
            "none",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("dry run: nothing was changed"));
}

#[test]
fn on_a_terminal_progress_moves_while_the_archive_is_validated() {
    // 12 MiB that does not compress: validating it takes long enough to draw.
    let instance = FsInstance::new("{work}/backups");
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for i in 0..24 {
        let bytes: Vec<u8> = (0..512 * 1024)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        std::fs::write(instance.bucket().join(format!("big{i}.bin")), bytes).unwrap();
    }
    let timestamp = instance.backup(&[]);
    let home = tempfile::tempdir().unwrap();
    // script(1) runs the restore under a pseudo-terminal and copies what it
    // draws (stdout and stderr alike) to its own stdout.
    let out = Command::new("script")
        .args([
            "-qec",
            "\"$STOWAGE\" restore \"$TIMESTAMP\" --dry-run --config \"$CONFIG\"",
            "/dev/null",
        ])
        .current_dir(repo_root())
        .env("STOWAGE", env!("CARGO_BIN_EXE_stowage"))
        .env("TIMESTAMP", &timestamp)
        .env("CONFIG", instance.config())
        .env("STOWAGE_PLUGIN_PATH", plugin_dir())
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path())
        .env("TERM", "xterm")
        .env_remove("STOWAGE_PLUGINS")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("script(1) (util-linux) runs");
    let drawn = stdout(&out);
    assert!(out.status.success(), "{drawn}{}", stderr(&out));
    // The bar was drawn more than once, with more bytes each time.
    let done: std::collections::BTreeSet<&str> = drawn
        .split("validate ")
        .skip(1)
        .filter_map(|bar| bar.split_once("] ")?.1.split_once('/').map(|(d, _)| d))
        .collect();
    assert!(done.len() >= 2, "no validation bar moving in {drawn:?}");
    assert!(drawn.contains("dry run: nothing was changed"), "{drawn:?}");
}

#[test]
fn a_restore_without_a_terminal_never_prompts_and_refuses_without_yes() {
    let instance = FsInstance::new("{work}/backups");
    let timestamp = instance.backup(&[]);
    std::fs::write(instance.bucket().join("a.txt"), b"changed!!").unwrap();

    let out = instance.run(&["restore", &timestamp]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no terminal to confirm on; add --yes"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read(instance.bucket().join("a.txt")).unwrap(),
        b"changed!!"
    );

    let out = instance.run(&["restore", &timestamp, "--yes"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        std::fs::read(instance.bucket().join("a.txt")).unwrap(),
        b"backed up"
    );
}

/// A restore that cannot release its lock (the store refuses to delete it:
/// the sticky-lock fixture is the fs plugin denying those deletes) still
/// prints its whole report, text and JSON, then one line naming the lock
/// left behind, and exits 1.
#[test]
fn a_restore_whose_lock_cannot_be_released_prints_its_report_then_names_the_lock() {
    let instance = FsInstance::new("file://{work}/backups");
    let plugins = instance.path().join("plugins.toml");
    std::fs::write(
        &plugins,
        format!(
            "[schemes]\nfile = \"sticky-lock\"\n[plugins.sticky-lock]\nlibrary = \"stowage_sticky_lock_plugin\"\n[plugins.sticky-lock.config]\nfs_library = {:?}\n",
            plugin_dir().join("libstowage_plugin_fs.so")
        ),
    )
    .unwrap();
    let plugins = plugins.to_str().unwrap();
    let timestamp = instance.backup(&["--plugins", plugins]);
    let lock = instance.path().join("backups").join(format!(
        ".stowage-lock.file___{}",
        instance.bucket().display().to_string().replace('/', "_")
    ));

    for (round, json) in [(1, false), (2, true)] {
        std::fs::write(instance.bucket().join("a.txt"), format!("changed {round}")).unwrap();
        let mut args = vec!["restore", &timestamp, "--yes", "--plugins", plugins];
        if json {
            args.push("--json");
        }
        let out = instance.run(&args);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert_eq!(
            std::fs::read(instance.bucket().join("a.txt")).unwrap(),
            b"backed up"
        );
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.starts_with("error: the restore lock .stowage-lock.file___")
                && err.contains("could not be removed; remove it by hand")
                && err.contains("access denied"),
            "{err}"
        );
        assert!(lock.is_file(), "{} is not there: {err}", lock.display());
        let report = stdout(&out);
        if json {
            let report: serde_json::Value = serde_json::from_str(&report).unwrap();
            assert_eq!(report["components"][0]["uploaded"], 1, "{report}");
            assert!(report["components"][0]["error"].is_null(), "{report}");
            assert!(
                report["lock_release_error"]
                    .as_str()
                    .is_some_and(|e| e.contains(".stowage-lock.file___")),
                "{report}"
            );
        } else {
            assert!(report.contains("uploads: uploaded 1 ("), "{report}");
        }
        // The lock is this process's own and stale once it ended: the next
        // restore takes it over.
    }
}

/// Leaves `<file>.<pid>.stowage-partial` as a writer killed mid-write does
/// (a shell that writes it, then kills itself with SIGKILL).
fn write_partially_and_die(file: &Path) {
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    let status = Command::new("sh")
        .args([
            "-c",
            "echo half > \"$1.$$.stowage-partial\"; kill -9 $$",
            "sh",
        ])
        .arg(file)
        .status()
        .unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9)
    );
}

#[test]
fn unfinished_writes_of_a_killed_run_are_removed_by_the_next_run() {
    let instance = FsInstance::new("{work}/backups");
    let timestamp = instance.backup(&[]);
    std::fs::write(instance.bucket().join("a.txt"), b"changed!!").unwrap();
    let (work, bucket) = (instance.path(), instance.bucket());
    // Where runs write atomically: the bucket, the download and extraction
    // areas of staging, the backup destination.
    write_partially_and_die(&bucket.join("d/new.bin"));
    write_partially_and_die(&work.join("staging/restore/archives/x_backup.tar"));
    write_partially_and_die(&work.join("staging/restore/extract/uploads/a.txt"));
    write_partially_and_die(&work.join("backups/y_backup.tar"));
    assert_eq!(partial_writes(work).len(), 4);
    // A write in progress, by a live process (this one): left alone.
    let live = bucket.join(format!("b.txt.{}.stowage-partial", std::process::id()));
    std::fs::write(&live, b"half").unwrap();

    let out = instance.run(&["restore", &timestamp, "--yes"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(partial_writes(work), [live]);
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

/// `stowage restore TIMESTAMP ARGS` of `instance`, with
/// `JOB_COMPLETION_INDEX` set to `job_index`, or unset.
fn restore_as_shard(
    instance: &FsInstance,
    timestamp: &str,
    args: &[&str],
    job_index: Option<&str>,
) -> std::process::Output {
    let home = tempfile::tempdir().unwrap();
    let config = instance.config();
    let args = [
        &["restore", timestamp, "--config", config.to_str().unwrap()],
        args,
    ]
    .concat();
    let mut command = stowage_command(&repo_root(), &args, &plugin_dir(), home.path());
    match job_index {
        Some(index) => command.env("JOB_COMPLETION_INDEX", index),
        None => command.env_remove("JOB_COMPLETION_INDEX"),
    };
    command.output().unwrap()
}

#[test]
fn a_bad_shard_is_one_line_with_exit_code_3() {
    let instance = FsInstance::new("{work}/backups");
    let timestamp = instance.backup(&[]);
    let cases: [(&[&str], Option<&str>, &str); 6] = [
        (
            &["--shard", "3/3"],
            None,
            "shard index 3 is not below the shard count 3",
        ),
        (&["--shard", "2"], None, "--shard \"2\": expected I/N"),
        (
            &["--shards", "3"],
            None,
            "from JOB_COMPLETION_INDEX (set by a Kubernetes Indexed Job), which is not set",
        ),
        (
            &["--shards", "3"],
            Some("x"),
            "JOB_COMPLETION_INDEX \"x\" is not a whole number",
        ),
        (&["--shards", "0"], Some("0"), "shard count 0"),
        (
            &["--shard", "0/2", "--shards", "2"],
            Some("0"),
            "both given",
        ),
    ];
    for (args, job_index, part) in cases {
        let out = restore_as_shard(&instance, &timestamp, args, job_index);
        let message = stderr(&out);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {message}");
        assert!(
            message.contains(part),
            "{args:?}: {part:?} not in {message}"
        );
        assert_eq!(message.trim().lines().count(), 1, "{args:?}: {message}");
    }
    assert_eq!(
        std::fs::read(instance.bucket().join("a.txt")).unwrap(),
        b"backed up"
    );
}

#[test]
fn each_shard_says_which_it_was_and_together_they_restore() {
    let instance = FsInstance::new("{work}/backups");
    for i in 0..20 {
        std::fs::write(
            instance.bucket().join(format!("file {i}.txt")),
            format!("v1 {i}"),
        )
        .unwrap();
    }
    let timestamp = instance.backup(&[]);
    for i in 0..20 {
        std::fs::write(instance.bucket().join(format!("file {i}.txt")), "changed").unwrap();
    }
    let out = restore_as_shard(
        &instance,
        &timestamp,
        &["--shards", "2", "--yes"],
        Some("1"),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(
            "shard 1/2: this restore planned, changed and verified only the keys of shard 1 of 2"
        ),
        "{}",
        stdout(&out)
    );
    let restored = |i: u32| {
        std::fs::read_to_string(instance.bucket().join(format!("file {i}.txt"))).unwrap()
            == format!("v1 {i}")
    };
    let by_shard_1: Vec<u32> = (0..20).filter(|&i| restored(i)).collect();
    assert!(
        !by_shard_1.is_empty() && by_shard_1.len() < 20,
        "{by_shard_1:?}"
    );

    let out = restore_as_shard(
        &instance,
        &timestamp,
        &["--shard", "0/2", "--yes", "--json"],
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["shard"], serde_json::json!({"index": 0, "count": 2}));
    assert!((0..20).all(restored), "the two shards left a file changed");
}

#[test]
fn safety_rules_apply_per_shard_and_a_shard_owning_no_key_is_not_an_empty_component() {
    let instance = FsInstance::new("{work}/backups");
    let timestamp = instance.backup(&[]); // the archive holds only a.txt
    let extras: Vec<String> = (0..12).map(|i| format!("extra {i}.txt")).collect();
    for key in &extras {
        std::fs::write(instance.bucket().join(key), "not in the backup").unwrap();
    }
    let without_a = 1 - Shard::of_key("uploads", "a.txt", 2);
    let its_extras = extras
        .iter()
        .filter(|key| Shard::of_key("uploads", key, 2) == without_a)
        .count();
    assert!(its_extras > 0 && its_extras < extras.len());
    let shard = format!("{without_a}/2");

    // --max-delete counts this shard's deletions, not the run's.
    let below = (its_extras - 1).to_string();
    let out = restore_as_shard(
        &instance,
        &timestamp,
        &["--shard", &shard, "--yes", "--max-delete", &below],
        None,
    );
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("would delete {its_extras} object")),
        "{}",
        stderr(&out)
    );

    // This shard owns none of the archive's keys: its share of the
    // component is empty, the component is not, so it goes on.
    let exactly = its_extras.to_string();
    let out = restore_as_shard(
        &instance,
        &timestamp,
        &["--shard", &shard, "--yes", "--max-delete", &exactly],
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let left: Vec<&String> = extras
        .iter()
        .filter(|k| instance.bucket().join(k).exists())
        .collect();
    assert_eq!(left.len(), extras.len() - its_extras, "{left:?}");
    assert!(left
        .iter()
        .all(|k| Shard::of_key("uploads", k, 2) != without_a));
}

#[test]
fn a_restore_uploads_in_batches_and_leaves_its_staging_empty() {
    let instance = FsInstance::new("{work}/backups");
    let file = |i: u32| {
        instance
            .bucket()
            .join(format!("dir {}/file {i}.txt", i % 3))
    };
    for i in 0..20 {
        std::fs::create_dir_all(file(i).parent().unwrap()).unwrap();
        std::fs::write(file(i), format!("v1 {i}")).unwrap();
    }
    let timestamp = instance.backup(&[]);
    // 9 changed, 4 gone, 2 extraneous: 13 uploads in 4 batches of 4.
    for i in 0..9 {
        std::fs::write(file(i), "changed").unwrap();
    }
    for i in 9..13 {
        std::fs::remove_file(file(i)).unwrap();
    }
    std::fs::write(instance.bucket().join("extra 1.txt"), "x").unwrap();
    std::fs::write(instance.bucket().join("dir 0/extra 2.txt"), "x").unwrap();

    let out = instance.run(&[
        "restore",
        &timestamp,
        "--upload-batch",
        "4",
        "--yes",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let component = &report["components"][0];
    assert_eq!(
        (&component["uploaded"], &component["deleted"]),
        (&serde_json::json!(13), &serde_json::json!(2)),
        "{component}"
    );
    for i in 0..20 {
        assert_eq!(std::fs::read_to_string(file(i)).unwrap(), format!("v1 {i}"));
    }
    assert!(!instance.bucket().join("extra 1.txt").exists());
    assert!(!instance.bucket().join("dir 0/extra 2.txt").exists());
    // Neither the batches nor the listings are left in staging.
    let left: Vec<_> = walkdir(&instance.path().join("staging/restore"));
    assert!(left.is_empty(), "left in staging: {left:?}");

    let out = instance.run(&["restore", &timestamp, "--upload-batch", "0", "--yes"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

/// Every file below `root` (none if it does not exist).
fn walkdir(root: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    entries
        .flatten()
        .flat_map(|entry| match entry.path().is_dir() {
            true => walkdir(&entry.path()),
            false => vec![entry.path()],
        })
        .collect()
}
