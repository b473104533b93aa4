//! `gsutil -m rsync` as the sync driver runs it: its arguments, and the
//! actions read from its messages.

use std::ffi::OsString;
use std::path::Path;

use stowage_local_tree::with_path;
use stowage_plugin_api::{
    ActionKind, CompareMode, ErrorKind, Location, PluginError, ProgressSink, SyncAction,
    SyncOptions, SyncReport,
};
use stowage_plugin_support::exclude_translation::to_regex;
use stowage_plugin_support::io_errors::from_io;
use stowage_plugin_support::paths::check_sync_sides;
use stowage_plugin_support::sync_driver::{run_sync, SyncCommand};
use stowage_plugin_support::tool::Tool;

use crate::config::gsutil_option;
use crate::locations::{is_local_root, rsync_root};
use crate::messages::{messages, parse_rsync_message};

/// Syncs `source` to `destination` (at least one of them a bucket) with
/// [`GsutilSync`] through the sync driver.
pub fn sync(
    tool: &Tool,
    source: &Location,
    destination: &Location,
    options: &SyncOptions,
    progress: &dyn ProgressSink,
) -> Result<SyncReport, PluginError> {
    // gsutil refuses a local destination that does not exist. A real
    // run creates it; a dry run must not, so it runs against an empty
    // stand-in directory (whose contents are what a missing one has).
    let mut stand_in = None;
    if let Location::Local { path } = destination {
        let dir = Path::new(path.as_str());
        if !dir.is_dir() {
            if options.dry_run {
                let empty = tempfile::tempdir().map_err(|e| {
                    PluginError::new(
                        ErrorKind::Other,
                        format!("cannot create a temporary directory: {e}"),
                    )
                })?;
                stand_in = Some(empty);
            } else {
                std::fs::create_dir_all(dir)
                    .map_err(|e| from_io(with_path("cannot create directory", dir, e)))?;
            }
        }
    }
    let target = match &stand_in {
        Some(empty) => Location::Local {
            path: empty.path().to_string_lossy().as_ref().into(),
        },
        None => destination.clone(),
    };
    let command = GsutilSync::new(source, &target)?;
    let mut report = run_sync(tool, &command, source, &target, options, progress)?;
    if !options.dry_run {
        // gsutil names a download before writing it; the file is there now.
        for action in report.actions.iter_mut() {
            if action.kind == ActionKind::Download {
                action.bytes = GsutilSync::local_size(&command.destination, &action.key);
            }
        }
    }
    Ok(report)
}

/// `gsutil -m rsync` between two roots, as the sync driver runs it.
pub struct GsutilSync {
    /// The source root as passed to gsutil (see [`rsync_root`]).
    pub source: String,
    /// The destination root as passed to gsutil.
    pub destination: String,
}

impl GsutilSync {
    /// The sync from `source` to `destination`; two local directories are
    /// refused.
    pub fn new(source: &Location, destination: &Location) -> Result<GsutilSync, PluginError> {
        check_sync_sides("gsutil", "gs", source, destination)?;
        Ok(GsutilSync {
            source: rsync_root(source)?,
            destination: rsync_root(destination)?,
        })
    }

    /// The size of the local file a key came from or went to, when there is one.
    fn local_size(root: &str, key: &str) -> u64 {
        if !is_local_root(root) {
            return 0;
        }
        std::fs::metadata(format!("{root}{key}")).map_or(0, |m| m.len())
    }
}

impl SyncCommand for GsutilSync {
    const DELETES_AFTER_TRANSFERS: bool = false;

    fn arguments(
        &self,
        _source: &Location,
        _destination: &Location,
        options: &SyncOptions,
        delete: bool,
        dry_run: bool,
    ) -> Result<Vec<OsString>, PluginError> {
        let mut args: Vec<OsString> = Vec::new();
        if options.parallelism > 0 {
            // Threads in one process: exactly `parallelism` transfers.
            args.push(gsutil_option("parallel_process_count", 1));
            args.push(gsutil_option("parallel_thread_count", options.parallelism));
        }
        args.extend(["-m".into(), "rsync".into(), "-r".into()]);
        if delete {
            args.push("-d".into());
        }
        // A planned sync compares as a checksum one (rsync always compares).
        if matches!(
            options.compare,
            CompareMode::Checksum | CompareMode::Planned
        ) {
            args.push("-c".into());
        }
        if dry_run {
            args.push("-n".into());
        }
        if !options.excludes.is_empty() {
            // gsutil keeps only the last -x, so all globs go into one.
            let patterns: Vec<String> = options.excludes.iter().map(|g| to_regex(g)).collect();
            args.push("-x".into());
            args.push(patterns.join("|").into());
        }
        args.push(self.source.as_str().into());
        args.push(self.destination.as_str().into());
        Ok(args)
    }

    fn parse_action(
        &self,
        line: &str,
        _source: &Location,
        _destination: &Location,
    ) -> Option<SyncAction> {
        let (kind, key) =
            messages(line).find_map(|m| parse_rsync_message(m, &self.source, &self.destination))?;
        let bytes = match kind {
            ActionKind::Upload => Self::local_size(&self.source, &key),
            _ => 0,
        };
        Some(SyncAction { kind, key, bytes })
    }
}

#[cfg(test)]
mod tests {

    use super::*;

    #[test]
    fn messages_after_a_progress_display_are_found() {
        let sync = GsutilSync {
            source: "/nonexistent-stowage/src/".into(),
            destination: "gs://bkt/".into(),
        };
        let line = "/ [0/7 files][    0.0 B/  4.9 KiB]   0% Done     \rCopying file:///nonexistent-stowage/src/a.txt [Content-Type=text/plain]...";
        let here = Location::parse("/");
        let action = sync.parse_action(line, &here, &here).unwrap();
        assert_eq!(
            (action.kind, action.key.as_str(), action.bytes),
            (ActionKind::Upload, "a.txt", 0)
        );
        assert!(sync
            .parse_action("Operation completed over 7 objects/4.9 KiB.", &here, &here)
            .is_none());
    }

    #[test]
    fn sync_arguments_follow_the_options() {
        let sync =
            GsutilSync::new(&Location::parse("/srv/x"), &Location::parse("gs://bkt/p")).unwrap();
        let options = SyncOptions {
            excludes: vec![String::from("tmp/*"), String::from("*.log")],
            parallelism: 3,
            ..SyncOptions::default()
        };
        let here = Location::parse("/");
        let args = sync.arguments(&here, &here, &options, true, true).unwrap();
        let args: Vec<&str> = args.iter().map(|a| a.to_str().unwrap()).collect();
        assert_eq!(
            args,
            [
                "-oGSUtil:parallel_process_count=1",
                "-oGSUtil:parallel_thread_count=3",
                "-m",
                "rsync",
                "-r",
                "-d",
                "-c",
                "-n",
                "-x",
                r"^tmp/[^/]*(?:/.*)?$|^[^/]*\.log(?:/.*)?$",
                "/srv/x/",
                "gs://bkt/p/",
            ]
        );
        let plain = SyncOptions {
            compare: CompareMode::SizeMtime,
            ..SyncOptions::default()
        };
        let args = sync.arguments(&here, &here, &plain, false, false).unwrap();
        assert_eq!(args, ["-m", "rsync", "-r", "/srv/x/", "gs://bkt/p/"]);
    }

    #[test]
    fn a_sync_needs_a_bucket_on_one_side() {
        assert!(GsutilSync::new(&Location::parse("/a"), &Location::parse("/b")).is_err());
    }
}
