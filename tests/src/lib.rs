//! # stowage-conformance — one suite for every plugin
//!
//! Like rclone's `fstests` and object_store's `integration` module: the same
//! scenarios run against every plugin library, through the same code path
//! `stowage sync` uses (plan → the plugin's tool → verify), and check real
//! outcomes with an *independent* reader of the bucket (never the plugin
//! under test).
//!
//! ## Running it against your own plugin (out of tree)
//!
//! Add this crate as a dev-dependency, and your plugin crate (built as
//! `["cdylib", "rlib"]`) too, so `cargo test` builds its library. Then in
//! `tests/conformance.rs`:
//!
//! ```ignore
//! use stowage_conformance::{conformance_suite, Harness, LocalDirStores};
//!
//! fn harness() -> Option<Harness> {
//!     let library = stowage_conformance::built_library("my_stowage_plugin");
//!     // Return None (the suite reports the skip loudly; under CI=true it
//!     // fails instead) when the test server is not available.
//!     Some(Harness::load(&library, "endpoint = \"...\"", Box::new(MyScratchStores)).unwrap())
//! }
//!
//! conformance_suite!(harness);
//! ```
//!
//! `MyScratchStores` implements [`ScratchStores`]: it creates empty scratch
//! buckets and reads them back with a client that is not your plugin.
//! `restore_suite!(harness);` adds the end-to-end backup and restore
//! scenarios ([`restore_scenarios`]) for the same plugin.

pub mod data;
pub mod harness;
pub mod restore_scenarios;
pub mod scenarios;
pub mod scenarios_1_1;
pub mod scenarios_1_2;
pub mod scratch;

pub use harness::{
    built_library, infrastructure_missing, local_dir_harness, objstore_harness, run_scenario,
    s3_test_endpoint, s3_tool_harness, Harness,
};
pub use scratch::{BucketToolStores, LocalDirStores, ScratchStore, ScratchStores};

/// Writes one `#[test]` per conformance scenario, each building its
/// harness with `$harness: fn() -> Option<Harness>`.
#[macro_export]
macro_rules! conformance_suite {
    ($harness:path) => {
        $crate::conformance_suite!(@tests $harness;
            first_sync_into_an_empty_bucket,
            a_second_sync_uploads_nothing,
            a_same_size_change_with_an_older_mtime_is_uploaded,
            new_and_deleted_files_are_synced_with_delete,
            without_delete_nothing_is_removed,
            excluded_paths_are_neither_uploaded_nor_deleted,
            awkward_keys_round_trip,
            an_empty_source_empties_the_bucket_only_with_delete,
            the_dry_run_plan_equals_the_real_actions,
            a_bucket_syncs_into_another_bucket,
            a_bucket_syncs_down_into_a_directory,
            listings_report_sizes_and_checksums,
            single_object_operations_work,
            a_missing_bucket_is_a_clear_error,
            objects_that_move_during_a_sync_are_left_as_found,
            creating_only_if_absent_lets_exactly_one_writer_win,
            listing_chosen_keys_gives_the_entries_of_the_full_listing,
            byte_ranges_read_exactly_those_bytes,
            a_planned_sync_leaves_the_destination_equal_to_the_source,
            pages_of_a_listing_concatenate_to_the_sorted_listing,
            a_page_starts_after_any_key_below_any_prefix,
        );
    };
    (@tests $harness:path; $($scenario:ident),* $(,)?) => {
        $(
            #[test]
            fn $scenario() {
                $crate::run_scenario(stringify!($scenario), $harness, $crate::scenarios::$scenario);
            }
        )*
    };
}

/// Writes one `#[test]` per end-to-end backup/restore scenario, each
/// building its harness with `$harness: fn() -> Option<Harness>`.
#[macro_export]
macro_rules! restore_suite {
    ($harness:path) => {
        $crate::restore_suite!(@tests $harness;
            a_restore_moves_only_the_changes_and_snapshots_what_it_replaces,
            a_restore_into_a_fresh_instance_creates_the_buckets_and_a_second_changes_nothing,
            a_gitlab_made_archive_restores,
            invalid_archives_are_refused_before_any_bucket_changes,
            a_second_restore_into_the_same_bucket_refuses,
            safety_rules_refuse_before_anything_changes,
            a_live_application_writing_during_a_restore_loses_nothing,
            a_failed_restore_names_its_snapshot,
            snapshots_are_listed_and_pruned_below_their_prefixes_only,
            two_backups_in_the_same_second_both_survive,
        );
    };
    (@tests $harness:path; $($scenario:ident),* $(,)?) => {
        $(
            #[test]
            fn $scenario() {
                $crate::run_scenario(stringify!($scenario), $harness, $crate::restore_scenarios::$scenario);
            }
        )*
    };
}
