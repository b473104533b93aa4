//! The loader against real built libraries: good plugins, a missing file, a
//! library that is not a plugin, one built against an incompatible API,
//! one that needs a newer API, one built against API 1.1, one built against
//! API 1.0, one built against API 0.1, and a plugin that panics.

use std::path::Path;

use stowage_conformance::built_library;
use stowage_plugin_api::{
    ActionKind, CompareMode, ErrorKind, IgnoreProgress, Location, StorageProvider, SyncOptions,
};
use stowage_plugin_loader::{host_api_version, load_library, LoadErrorKind};

/// The provider of the built library `name`, with an empty config.
fn provider(name: &str) -> Box<dyn StorageProvider> {
    load_library(&built_library(name))
        .unwrap()
        .new_provider("")
        .unwrap()
}

#[test]
fn two_plugins_in_one_process_each_answer_with_their_own_name() {
    let fs = provider("stowage_plugin_fs");
    let probe = provider("stowage_probe_plugin");
    assert_eq!(fs.describe().name, "fs");
    assert_eq!(probe.describe().name, "probe");
    // Loading the first again still gives the first.
    assert_eq!(provider("stowage_plugin_fs").describe().name, "fs");
}

#[test]
fn a_missing_library_is_one_line_naming_the_file() {
    let err = load_library(Path::new("/nonexistent/libstowage_plugin_x.so"))
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
    let err = load_library(&built_library("stowage_not_a_plugin"))
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
    let err = load_library(&fake).err().expect("the load fails");
    assert_eq!(err.kind, LoadErrorKind::NotALibrary);
    assert!(!err.to_string().contains('\n'), "{err}");
}

#[test]
fn a_plugin_built_against_an_incompatible_api_is_refused_in_one_line_naming_both_versions() {
    let err = load_library(&built_library("stowage_incompatible_plugin"))
        .err()
        .expect("the load fails");
    assert_eq!(err.kind, LoadErrorKind::LayoutMismatch);
    let line = err.to_string();
    assert!(!line.contains('\n'), "{line}");
    assert!(
        line.contains(&format!(
            "built against API 1.0.0 (this stowage: {}), types differ at ",
            host_api_version()
        )),
        "{line}"
    );
    // The first type and field that differ, and how: the fixture's root
    // module is a `PluginModule` of another package.
    assert!(
        line.contains(
            "at `PrefixRef<PluginModule>.0: PluginModule`: package \
             stowage-incompatible-plugin, expected stowage-plugin-api;"
        ),
        "{line}"
    );
    assert!(
        line.len() < 300,
        "the one-line error is {} bytes: {line}",
        line.len()
    );
    assert!(
        err.details().len() > line.len(),
        "the full report is kept for --verbose"
    );
}

#[test]
fn a_panicking_plugin_returns_an_error_and_the_host_goes_on() {
    let probe = provider("stowage_probe_plugin");
    let location = Location::parse("probe://bucket");
    for _ in 0..2 {
        let err = probe.list(&location).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Panicked);
        assert!(
            err.message
                .contains("probe plugin asked to list probe://bucket"),
            "{}",
            err.message
        );
    }
    assert_eq!(probe.describe().name, "probe");
}

#[test]
fn a_plugin_that_needs_a_newer_api_is_refused_in_one_line_naming_both_versions() {
    let err = load_library(&built_library("stowage_future_plugin"))
        .err()
        .expect("the load fails");
    assert_eq!(err.kind, LoadErrorKind::VersionMismatch);
    let line = err.to_string();
    assert!(!line.contains('\n'), "{line}");
    assert!(
        line.contains(&format!(
            "built against stowage plugin API 2.0.0, but this stowage loads plugins built \
             against API {}.x (or 0.1): it needs a newer stowage",
            host_api_version().major
        )),
        "{line}"
    );
}

#[test]
fn a_plugin_built_against_api_0_1_loads_and_the_host_answers_for_what_it_lacks() {
    let library = load_library(&built_library("stowage_plugin_0_1_0")).unwrap();
    assert_eq!(library.api_version, "0.1.0");
    let old = library.new_provider("").unwrap();
    assert_eq!(old.describe().name, "old");
    assert!(old.describe().options.is_empty());
    let location = Location::parse("old://bucket");
    let listed = old.list(&location).unwrap();
    assert_eq!(listed[0].key, "listed by 0.1.0");
    // API 0.1 had no conditional create: the defaults answer.
    assert!(!old.conditional_create());
    let err = old.create_if_absent(&location, "lock", b"x").unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidInput);
    assert_eq!(
        err.message,
        "plugin old cannot create an object only if it is absent"
    );
    // A plugin built now has the methods.
    let fs = load_library(&built_library("stowage_plugin_fs")).unwrap();
    assert_eq!(fs.api_version, host_api_version().to_string());
    assert!(fs.new_provider("").unwrap().conditional_create());
}

#[test]
fn a_plugin_built_against_api_1_0_loads_and_the_new_methods_give_their_defaults() {
    let library = load_library(&built_library("stowage_plugin_1_0_0")).unwrap();
    assert_eq!(library.api_version, "1.0.0");
    let old = library.new_provider("").unwrap();
    assert_eq!(old.describe().name, "old10");
    let location = Location::parse("old10://bucket");
    // list_keys: the plugin's own listing, filtered to exactly the asked
    // keys ("a" does not pull in "a/b"; "absent" is left out).
    let asked = ["a".to_string(), "absent".to_string()];
    let entries = old.list_keys(&location, &asked).unwrap();
    let all = old.list(&location).unwrap();
    assert_eq!(entries, vec![all[0].clone()]);
    assert_eq!(entries[0].key, "a");
    // get_range: refused, and said so by reads_ranges.
    assert!(!old.reads_ranges());
    let err = old
        .get_range(&location, "a", 0, 1, "/nonexistent/file")
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidInput);
    assert_eq!(
        err.message,
        "plugin old10 cannot read a byte range of an object"
    );
    // A planned sync reaches it as the checksum comparison it knows.
    let planned = SyncOptions {
        compare: CompareMode::Planned,
        ..SyncOptions::default()
    };
    let report = old
        .sync(&location, &location, &planned, &IgnoreProgress)
        .unwrap();
    assert_eq!(report.actions.len(), 1);
    assert_eq!(report.actions[0].kind, ActionKind::Skip);
    assert_eq!(report.actions[0].key, "Checksum");
}

#[test]
fn a_plugin_built_against_api_1_1_loads_passes_its_methods_through_and_pages_by_default() {
    let library = load_library(&built_library("stowage_plugin_1_1_0")).unwrap();
    assert_eq!(library.api_version, "1.1.0");
    let old = library.new_provider("").unwrap();
    assert_eq!(old.describe().name, "old11");
    let location = Location::parse("old11://bucket");
    // The 1.1 methods reach the plugin: its list_keys answers for an absent
    // key (the default would leave it out), its get_range writes a file.
    let entries = old.list_keys(&location, &["absent".to_string()]).unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].etag.as_deref(), Some("etag-absent"));
    assert!(old.reads_ranges());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("range");
    old.get_range(&location, "k", 5, 7, file.to_str().unwrap())
        .unwrap();
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "k 5 7");
    // A planned sync reaches it as planned: 1.1 knows the mode.
    let planned = SyncOptions {
        compare: CompareMode::Planned,
        ..SyncOptions::default()
    };
    let report = old
        .sync(&location, &location, &planned, &IgnoreProgress)
        .unwrap();
    assert_eq!(report.actions[0].key, "Planned");
    // list_page, which 1.1 lacks: pages cut out of the plugin's own
    // (unsorted) listing, in key order, and no claim to page natively.
    assert!(!old.lists_pages());
    let keys = |after: &str, limit: u32| -> Vec<String> {
        let page = old.list_page(&location, after, limit).unwrap();
        page.into_iter().map(|entry| entry.key).collect()
    };
    assert_eq!(keys("", 2), ["a", "a/b"]);
    assert_eq!(keys("a/b", 2), ["b"]);
    assert_eq!(keys("b", 2), Vec::<String>::new());
    let all = old.list(&location).unwrap();
    let first = old.list_page(&location, "", 1).unwrap();
    assert_eq!(first, vec![all[2].clone()], "entries are list's own");
}

#[test]
fn a_plugin_built_against_api_1_0_pages_by_default() {
    let old = provider("stowage_plugin_1_0_0");
    assert!(!old.lists_pages());
    let location = Location::parse("old10://bucket");
    let page = old.list_page(&location, "a", 10).unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].key, "a/b");
}

#[test]
fn a_plugin_built_against_the_current_api_answers_the_1_1_methods_itself() {
    let fs = load_library(&built_library("stowage_plugin_fs")).unwrap();
    assert_eq!(fs.api_version, host_api_version().to_string());
    assert!(fs.new_provider("").unwrap().reads_ranges());
}

#[test]
fn a_plugin_built_against_the_current_api_answers_the_1_2_methods_itself() {
    let fs = provider("stowage_plugin_fs");
    assert!(fs.lists_pages());
}
