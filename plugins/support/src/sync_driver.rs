//! Running a tool's own sync command (`s3cmd sync`, `aws s3 sync`,
//! `gsutil rsync`) the same way for every adapter: the adapter says which
//! arguments to pass and how to read one line of output; this module
//! enforces the rules every sync keeps.
//!
//! - `max_deletes`: the tool's own dry run is run first, and a sync that
//!   would delete more is refused before anything changes.
//! - Deletes never run before every transfer has succeeded. A tool that
//!   can promise that itself (s3cmd `--delete-after`) does it in one run;
//!   for the others the sync runs twice: first without deleting, then — only
//!   if that succeeded — with deleting, when nothing is left to transfer.
//! - Every line that reports an action becomes a [`SyncAction`] and a
//!   progress update, from stdout or stderr (gsutil reports on stderr).

use std::collections::HashSet;
use std::ffi::OsString;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Mutex;

use stowage_plugin_api::{
    ActionKind, ErrorKind, Location, PluginError, Progress, ProgressSink, SyncAction, SyncOptions,
    SyncReport,
};

use crate::tool::Tool;

/// What one tool's sync command looks like.
pub trait SyncCommand: Sync {
    /// Whether the tool, given the arguments from [`SyncCommand::arguments`]
    /// with `delete`, runs every delete only after every transfer succeeded.
    const DELETES_AFTER_TRANSFERS: bool;

    /// The arguments of one run. `delete` and `dry_run` may differ from
    /// `options` (the driver runs dry-runs and no-delete passes itself).
    fn arguments(
        &self,
        source: &Location,
        destination: &Location,
        options: &SyncOptions,
        delete: bool,
        dry_run: bool,
    ) -> Result<Vec<OsString>, PluginError>;

    /// The action one line of output reports, if any. `source` and
    /// `destination` are the locations of the sync, to turn the tool's
    /// paths and URLs back into keys.
    fn parse_action(
        &self,
        line: &str,
        source: &Location,
        destination: &Location,
    ) -> Option<SyncAction>;
}

/// Runs the sync `options` ask for with `tool`, as described above.
pub fn run_sync<C: SyncCommand>(
    tool: &Tool,
    command: &C,
    source: &Location,
    destination: &Location,
    options: &SyncOptions,
    progress: &dyn ProgressSink,
) -> Result<SyncReport, PluginError> {
    let run = |delete: bool, dry_run: bool| {
        let args = command.arguments(source, destination, options, delete, dry_run)?;
        run_once(
            tool,
            &args,
            |line| command.parse_action(line, source, destination),
            progress,
        )
    };
    if let (true, Some(max)) = (options.delete, options.max_deletes) {
        let plan = run(true, true)?;
        let deletes = plan.total(ActionKind::Delete).objects;
        if deletes > max {
            return Err(PluginError::new(
                ErrorKind::LimitExceeded,
                format!(
                    "sync would delete {deletes} objects from {destination}, more than the limit of {max}; nothing was changed"
                ),
            ));
        }
        if options.dry_run {
            return Ok(plan);
        }
    }
    if options.dry_run || !options.delete || C::DELETES_AFTER_TRANSFERS {
        return run(options.delete, options.dry_run);
    }
    let mut report = run(false, false)?;
    let deletes = run(true, false)?;
    report.actions.extend(deletes.actions);
    Ok(report)
}

/// Runs the tool once, turning output lines into actions and progress.
fn run_once(
    tool: &Tool,
    args: &[OsString],
    parse: impl Fn(&str) -> Option<SyncAction> + Sync,
    progress: &dyn ProgressSink,
) -> Result<SyncReport, PluginError> {
    run_concurrently(tool, std::slice::from_ref(&args.to_vec()), parse, progress)
}

/// Runs the tool once per argument list, all at the same time, turning
/// output lines into actions and one progress count across the runs (a
/// sync split into shards). Every run is waited for; the first failure
/// is the result.
pub fn run_concurrently(
    tool: &Tool,
    runs: &[Vec<OsString>],
    parse: impl Fn(&str) -> Option<SyncAction> + Sync,
    progress: &dyn ProgressSink,
) -> Result<SyncReport, PluginError> {
    let report = Mutex::new(SyncReport::default());
    let totals = Mutex::new(Progress::default());
    // A tool may report one object on several lines (s3cmd, one per part).
    // Seen actions are remembered by a 64-bit hash, not a copy of the key:
    // the report already holds the keys once.
    let seen = Mutex::new(HashSet::new());
    let on_line = |line: &str| {
        let Some(action) = parse(line) else { return };
        let mut hasher = DefaultHasher::new();
        (action.kind, action.key.as_str()).hash(&mut hasher);
        if !seen
            .lock()
            .expect("no panics while held")
            .insert(hasher.finish())
        {
            return;
        }
        let update = {
            let mut totals = totals.lock().expect("no panics while held");
            totals.objects_done += 1;
            totals.bytes_done += action.bytes;
            totals.current_key = action.key.clone();
            totals.clone()
        };
        progress.report(&update);
        report
            .lock()
            .expect("no panics while held")
            .actions
            .push(action);
    };
    let results: Vec<Result<(), PluginError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = runs
            .iter()
            .map(|args| scope.spawn(|| tool.run_streaming(args, on_line, on_line)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a tool run does not panic"))
            .collect()
    });
    results.into_iter().collect::<Result<Vec<()>, _>>()?;
    Ok(report.into_inner().expect("no panics while held"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tool::Tool;
    use stowage_plugin_api::IgnoreProgress;

    /// A "tool" (sh) that logs each pass to a file, reports one upload per
    /// pass and one delete on the delete pass, and fails its first pass
    /// when told to.
    struct LoggingSync {
        log: std::path::PathBuf,
        fail_transfers: bool,
    }

    impl SyncCommand for LoggingSync {
        const DELETES_AFTER_TRANSFERS: bool = false;

        fn arguments(
            &self,
            _source: &Location,
            _destination: &Location,
            _options: &SyncOptions,
            delete: bool,
            dry_run: bool,
        ) -> Result<Vec<OsString>, PluginError> {
            let pass = match (delete, dry_run) {
                (_, true) => "plan",
                (true, false) => "delete",
                (false, false) => "transfer",
            };
            let fail = self.fail_transfers && pass == "transfer";
            let script = format!(
                "echo {pass} >> '{}'; echo 'upload: a'; {}; [ {pass} = transfer ] || echo 'delete: old'",
                self.log.display(),
                if fail { "exit 1" } else { "true" }
            );
            Ok(vec!["-c".into(), script.into()])
        }

        fn parse_action(&self, line: &str, _: &Location, _: &Location) -> Option<SyncAction> {
            let (kind, key) = match line.split_once(": ")? {
                ("upload", key) => (ActionKind::Upload, key),
                ("delete", key) => (ActionKind::Delete, key),
                _ => return None,
            };
            Some(SyncAction {
                kind,
                key: key.into(),
                bytes: 0,
            })
        }
    }

    fn sync(
        fail_transfers: bool,
        options: SyncOptions,
    ) -> (Result<SyncReport, PluginError>, String) {
        let dir = tempfile::tempdir().unwrap();
        let command = LoggingSync {
            log: dir.path().join("passes"),
            fail_transfers,
        };
        let tool = Tool::new("test", "sh", "apt install dash");
        let (source, destination) = (Location::parse("/src"), Location::parse("s3://b"));
        let result = run_sync(
            &tool,
            &command,
            &source,
            &destination,
            &options,
            &IgnoreProgress,
        );
        (
            result,
            std::fs::read_to_string(&command.log).unwrap_or_default(),
        )
    }

    #[test]
    fn deletes_wait_for_every_transfer() {
        let delete = SyncOptions {
            delete: true,
            ..SyncOptions::default()
        };
        let (report, passes) = sync(false, delete.clone());
        assert_eq!(passes, "transfer\ndelete\n");
        assert_eq!(report.unwrap().keys(ActionKind::Delete), ["old"]);

        let (result, passes) = sync(true, delete);
        assert!(result.is_err(), "a failed transfer pass is an error");
        assert_eq!(
            passes, "transfer\n",
            "a delete pass ran after a failed transfer"
        );
    }

    #[test]
    fn a_delete_limit_is_checked_with_a_dry_run_before_anything_runs() {
        let limited = SyncOptions {
            delete: true,
            max_deletes: Some(0),
            ..SyncOptions::default()
        };
        let (result, passes) = sync(false, limited);
        assert_eq!(result.unwrap_err().kind, ErrorKind::LimitExceeded);
        assert_eq!(passes, "plan\n");
    }
}
