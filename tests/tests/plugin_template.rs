//! The plugin template (`templates/plugin`) works out of tree, as a third
//! party's copy of it does: it builds without a warning, passes the
//! conformance suite, and is formatted and clippy-clean.
//!
//! The copy depends on the workspace's crates by absolute path and uses the
//! workspace's Cargo.lock and target directory, so it builds offline, with
//! the same dependency versions, reusing what is already built.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use tempfile::TempDir;

/// The workspace root: the parent of this crate's directory.
fn workspace() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the workspace")
}

/// The workspace's target directory: `$CARGO_TARGET_DIR` (relative to the
/// workspace when relative), else `<workspace>/target`.
fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => workspace().join(dir),
        None => workspace().join("target"),
    }
}

/// Whether cargo set the environment variable `name` for this test
/// process to describe this package (`CARGO_MANIFEST_DIR`,
/// `CARGO_PKG_NAME`, ...). A build script that watches one (ring's does)
/// would take the copy's value for a change, and the workspace's build and
/// the copy's would each rebuild it every time.
fn set_by_cargo_for_this_package(name: &str) -> bool {
    name.starts_with("CARGO_PKG_")
        || name.starts_with("CARGO_BIN_")
        || [
            "CARGO_MANIFEST_DIR",
            "CARGO_MANIFEST_PATH",
            "CARGO_CRATE_NAME",
            "CARGO_PRIMARY_PACKAGE",
            "CARGO_TARGET_TMPDIR",
            "CARGO_RUSTC_CURRENT_DIR",
            "OUT_DIR",
        ]
        .contains(&name)
}

/// A copy of the template in a temporary directory, its path dependencies
/// made absolute, with the workspace's Cargo.lock.
struct OutOfTree {
    dir: TempDir,
}

impl OutOfTree {
    fn new() -> OutOfTree {
        let out_of_tree = OutOfTree {
            dir: tempfile::tempdir().unwrap(),
        };
        let template = workspace().join("templates/plugin");
        let entries = walkdir::WalkDir::new(&template)
            .into_iter()
            // What a build inside the template may have left.
            .filter_entry(|e| !matches!(e.file_name().to_str(), Some("target" | "Cargo.lock")));
        for entry in entries {
            let entry = entry.expect("the template is readable");
            let copy = out_of_tree
                .crate_dir()
                .join(entry.path().strip_prefix(&template).unwrap());
            if entry.file_type().is_dir() {
                fs::create_dir_all(&copy).unwrap();
            } else {
                fs::copy(entry.path(), &copy).unwrap();
            }
        }
        let manifest = out_of_tree.crate_dir().join("Cargo.toml");
        let relative = fs::read_to_string(&manifest).unwrap();
        let absolute = relative.replace(
            "path = \"../../",
            &format!("path = \"{}/", workspace().display()),
        );
        assert_ne!(
            absolute, relative,
            "the template has no path dependencies to rewrite"
        );
        fs::write(&manifest, absolute).unwrap();
        fs::copy(
            workspace().join("Cargo.lock"),
            out_of_tree.crate_dir().join("Cargo.lock"),
        )
        .unwrap();
        out_of_tree
    }

    fn crate_dir(&self) -> PathBuf {
        self.dir.path().join("plugin")
    }

    /// Runs `cargo <args>` in the copy with the workspace's target
    /// directory; returns its output, stdout and stderr in the order they
    /// were written. Panics, showing the output, if cargo fails.
    fn cargo(&self, args: &[&str]) -> String {
        let log_path = self.dir.path().join("cargo.log");
        let log = File::create(&log_path).unwrap();
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut command = Command::new(&cargo);
        for (name, _) in std::env::vars_os() {
            if name.to_str().is_some_and(set_by_cargo_for_this_package) {
                command.env_remove(name);
            }
        }
        let started = Instant::now();
        let status = command
            .args(args)
            .env("CARGO_TARGET_DIR", target_dir())
            .current_dir(self.crate_dir())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .status()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", Path::new(&cargo).display()));
        let output = fs::read_to_string(&log_path).unwrap();
        let command = format!("cargo {}", args.join(" "));
        eprintln!(
            "{command} in the copied template took {:.1?}",
            started.elapsed()
        );
        assert!(
            status.success(),
            "{command} failed ({status}) in the copied template:\n{output}"
        );
        output
    }
}

/// The number of tests that passed in the test binary whose `cargo test`
/// header line contains `binary`.
fn passed_in(cargo_test_output: &str, binary: &str) -> Option<usize> {
    let mut lines = cargo_test_output
        .lines()
        .skip_while(|l| !l.contains(binary));
    let result = lines.find_map(|l| l.strip_prefix("test result: ok. "))?;
    result.split(' ').next()?.parse().ok()
}

#[test]
fn the_template_builds_out_of_tree_and_passes_the_conformance_suite() {
    let output = OutOfTree::new().cargo(&["test", "--offline"]);
    let scenarios = passed_in(&output, "Running tests/conformance.rs");
    assert!(
        scenarios.is_some_and(|n| n > 0),
        "no conformance scenario passed:\n{output}"
    );
    assert!(
        !output.contains("warning"),
        "the template builds with warnings:\n{output}"
    );
}

#[test]
fn the_template_is_formatted_and_clippy_clean() {
    let out_of_tree = OutOfTree::new();
    out_of_tree.cargo(&["fmt", "--check"]);
    out_of_tree.cargo(&[
        "clippy",
        "--offline",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]);
}
