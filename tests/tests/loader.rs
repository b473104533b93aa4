//! The loader against real built libraries: good plugins, a missing file, a
//! library that is not a plugin, one built against an incompatible core,
//! and a plugin that panics.

use std::path::{Path, PathBuf};
use std::process::Command;

use stowage_conformance::built_library;
use stowage_core::loader::{load_module, new_provider, LoadErrorKind};
use stowage_core::{ErrorKind, Location};

#[test]
fn two_plugins_in_one_process_each_answer_with_their_own_name() {
    let fs = new_provider(
        load_module(&built_library("stowage_plugin_fs")).unwrap(),
        "",
    )
    .unwrap();
    let probe = new_provider(
        load_module(&built_library("stowage_probe_plugin")).unwrap(),
        "",
    )
    .unwrap();
    assert_eq!(fs.describe().name.as_str(), "fs");
    assert_eq!(probe.describe().name.as_str(), "probe");
    // Loading the first again still gives the first.
    let fs_again = new_provider(
        load_module(&built_library("stowage_plugin_fs")).unwrap(),
        "",
    )
    .unwrap();
    assert_eq!(fs_again.describe().name.as_str(), "fs");
}

#[test]
fn a_missing_library_is_one_line_naming_the_file() {
    let err = load_module(Path::new("/nonexistent/libstowage_plugin_x.so"))
        .err()
        .expect("the load fails");
    assert_eq!(err.kind, LoadErrorKind::Missing);
    let text = err.to_string();
    assert!(
        text.contains("/nonexistent/libstowage_plugin_x.so"),
        "{text}"
    );
    assert!(!text.contains('\n'), "{text}");
}

#[test]
fn a_library_that_is_not_a_plugin_is_refused_in_one_line() {
    let err = load_module(&built_library("stowage_not_a_plugin"))
        .err()
        .expect("the load fails");
    assert_eq!(err.kind, LoadErrorKind::NotAPlugin);
    assert!(err.to_string().contains("not a Stowage plugin"), "{err}");
    assert!(!err.to_string().contains('\n'), "{err}");
}

#[test]
fn a_file_that_is_not_a_library_is_refused_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("libstowage_plugin_fake.so");
    std::fs::write(&fake, b"this is not an ELF file").unwrap();
    let err = load_module(&fake).err().expect("the load fails");
    assert_eq!(err.kind, LoadErrorKind::NotALibrary);
    assert!(!err.to_string().contains('\n'), "{err}");
}

#[test]
fn a_plugin_built_against_an_incompatible_core_is_refused_in_one_line() {
    let err = load_module(&built_library("stowage_incompatible_plugin"))
        .err()
        .expect("the load fails");
    assert_eq!(err.kind, LoadErrorKind::LayoutMismatch);
    let line = err.to_string();
    assert!(!line.contains('\n'), "{line}");
    assert!(line.contains("incompatible stowage-core"), "{line}");
    assert!(
        line.len() < 1000,
        "the one-line error is {} bytes",
        line.len()
    );
    assert!(
        err.details().len() > line.len(),
        "the full report is kept for --verbose"
    );
}

#[test]
fn a_panicking_plugin_returns_an_error_and_the_host_goes_on() {
    let probe = new_provider(
        load_module(&built_library("stowage_probe_plugin")).unwrap(),
        "",
    )
    .unwrap();
    let location = Location::parse("probe://bucket");
    for _ in 0..2 {
        let err = probe.list(&location).into_result().unwrap_err();
        assert_eq!(err.kind, ErrorKind::Panicked);
        assert!(
            err.message
                .contains("probe plugin asked to list probe://bucket"),
            "{}",
            err.message
        );
    }
    assert_eq!(probe.describe().name.as_str(), "probe");
}

/// `tests/fixtures/plugin-0.1.0`, built against the frozen stowage-core
/// 0.1.0 interface in a workspace of its own (offline, from its lock file)
/// below this test's scratch directory; the path of its library.
fn plugin_built_against_0_1_0() -> PathBuf {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/plugin-0.1.0");
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("plugin-0.1.0");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "--quiet",
            "--offline",
            "--locked",
            "--manifest-path",
        ])
        .arg(fixture.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target)
        .env_remove("RUSTFLAGS")
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building the 0.1.0 fixture failed");
    target.join(format!(
        "debug/{}stowage_plugin_0_1_0{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ))
}

#[test]
fn a_plugin_built_before_create_if_absent_loads_and_the_host_answers_for_it() {
    let old = new_provider(load_module(&plugin_built_against_0_1_0()).unwrap(), "").unwrap();
    assert_eq!(old.describe().name.as_str(), "old");
    let location = Location::parse("old://bucket");
    let listed = old.list(&location).into_result().unwrap();
    assert_eq!(listed[0].key.as_str(), "listed by 0.1.0");
    // Its vtable ends at ensure_bucket: the host's defaults answer.
    assert!(!old.conditional_create());
    let err = old
        .create_if_absent(&location, "lock".into(), b"x".as_slice().into())
        .into_result()
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidInput);
    assert_eq!(
        err.message.as_str(),
        "plugin old cannot create an object only if it is absent"
    );
    // A plugin built now has the methods.
    let fs = new_provider(
        load_module(&built_library("stowage_plugin_fs")).unwrap(),
        "",
    )
    .unwrap();
    assert!(fs.conditional_create());
}
